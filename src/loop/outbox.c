/*
 * outbox.c - telling people (contract section 9, escalation): messages are
 * built from the task when they are enqueued (the outbox stores the exact
 * bytes, so every retry sends the same message), and the outbox thread
 * delivers them: a delivered message is recorded once; a failed send is
 * retried with backoff (at least the wait the service asked for: Discord's
 * retry_after, Slack's Retry-After, GitHub's rate-limit reset) up to
 * LOOP_OUTBOX_MAX times; a permanent failure is recorded as failed.
 *
 * A channel that asked to wait (a rate limit: Discord's and Slack's
 * webhook, GitHub's token) or did not answer (a timeout, a refused
 * connection) is held: its other messages wait until then too, without
 * an attempt counted, so no request goes to a service inside the wait it
 * named, and a hanging service costs one timeout per hold, not one per
 * message while the other channels wait behind it. Sends answer a rate
 * limit at once (no_rate_wait) rather than sleep inside this thread,
 * which sends every channel. A channel whose answer said its next request
 * would be refused for now (Discord's X-RateLimit-Remaining 0 with
 * X-RateLimit-Reset-After, sent with a delivery; GitHub's
 * X-RateLimit-Remaining 0 with X-RateLimit-Reset, on a created comment or
 * a page of the marker look-up) is held the same way until the reset (at
 * most HL_NOTIFY_HOLD_MAX_MS, an hour for GitHub's token), so two
 * escalations back to back earn no 429 or 403. GitHub's client also shares
 * the spent budget with every client and replica (every call shares the
 * token's budget, remediate/github_shared.h): a send it refuses unsent is
 * RETRY "rate_limited" with the wait.
 * A hold is shared through the store (key "outbox:hold:<channel>", its end
 * in wall-clock ms): every replica's outbox reads it once a pass, so the
 * other replicas wait with the one that was told to, and a restarted one
 * too, instead of each earning its own 429.
 *
 * Every replica runs an outbox over the same notifications: each attempt is
 * made under the notification's lock ("outbox:<id>", hl_store_lock_take,
 * which the database frees the moment its holder dies), after checking
 * that it is still due, and recorded before the lock is given back; so
 * replicas that read a notification due together send it once, and a
 * restart finds nothing held.
 *
 * An attempt is counted when its row is taken (in the take's statement),
 * so a send that kills the process has used one and the limit holds; a
 * send answered with a rate limit gives its attempt back (a limit refused
 * nothing), and a row a channel keeps limiting is given up
 * OUTBOX_LIMITED_MS after it was enqueued. A row taken again after
 * another process's take left no result (its sender died mid-send), or
 * one whose sent result this process lost, is a resend "in doubt", logged
 * at WARN: Discord, Slack and SMTP take no idempotency key, so these are
 * at least once across a crash in that window. A row this process left
 * taken without a send (a hold or give-back it could not write) is not. A result the store refuses
 * past OUTBOX_RECORD_MS is never given up while this process runs: it is kept in memory and written
 * before anything else at every later pass, and its row keeps its lock and
 * its lease meanwhile, so no outbox sends it again.
 *
 * An email's row holds its envelope with the message ({from, rcpt,
 * message}, outbox_email_payload; a bare message is a row from before,
 * sent to the settings' addresses). Recipients refused for now (4xx) do
 * not hold it back from the others: the row keeps only them as its
 * recipients, still pending, and the others never get it twice; a
 * delivery some recipients refused keeps their text as last_error.
 *
 * A PR comment carries a random marker (an HTML comment, not shown); its
 * send first looks for the marker among the PR's comments, so a comment
 * GitHub created although its answer was lost is not posted again.
 *
 * Channels: "discord", "slack", "email" (when configured), "github" (a
 * PR comment, when the task has a PR) and "openmemory" (a memory of a
 * finished task or a reinforcement: {path, body}, src/memory). A GitHub payload is a JSON object
 * {repo, number, body}; the others are the channel's own body.
 *
 * An escalation is keyed by its round: ref is the number of the attempt
 * after which the task was escalated. The same round enqueued again (a
 * driver that died before recording the task escalated, another replica)
 * is the same row; the round after a `/healer retry` whose attempts failed
 * too is a new message on every channel with the attempts so far (a new
 * PR comment, which notifies the people who asked for the retry where an
 * edit would not; an email with its own Message-ID).
 */
#include "base/clock.h"
#include "base/log.h"
#include "base/str.h"
#include "loop_impl.h"
#include "memory/memory.h"
#include "notify/notify.h"

#include "json/json.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#define OUTBOX_BATCH      16
#define OUTBOX_BACKOFF_MS 5000
#define OUTBOX_WAIT_MAX   (15 * 60 * 1000)
#define OUTBOX_TIMEOUT_MS 15000
#define OUTBOX_ATTEMPTS   32
/* how long a sent result is tried again before the pass stops and keeps it
 * (nothing is sent either way while the store refuses: the kept result is
 * written first at every later pass) */
#define OUTBOX_RECORD_MS (15 * 1000)
/* a rate-limited send uses no attempt; a row the channel keeps limiting
 * is given up this long after it was enqueued */
#define OUTBOX_LIMITED_MS (24 * 60 * 60 * 1000LL)
#define OUTBOX_LOST       8 /* ids whose sent result this process lost */

static bool
outbox_set(const char *s)
{
	return s && *s;
}

/* url when it names a pull request of the task's repository
 * ("<repository html url>/pull/N", else "https://github.com/<repo>/pull/N"),
 * NULL otherwise: a CodeRun's pullRequestUrl is the agent's word, and a
 * message links it as the PR healer worked on. */
static const char *
outbox_pr_url(const char *url, const struct hl_task_record *t, json_t *event)
{
	const char *base = hl_json_str(event, "repository_url");
	char fallback[300];
	size_t n;
	const char *p;

	if (!url || !t->repository)
		return NULL;
	if (!base || !hl_str_starts_with(base, "https://")) {
		snprintf(fallback, sizeof(fallback), "https://github.com/%s", t->repository);
		base = fallback;
	}
	n = strlen(base);
	while (n > 0 && base[n - 1] == '/')
		n--;
	if (strncasecmp(url, base, n) != 0 || strncmp(url + n, "/pull/", 6) != 0)
		return NULL;
	for (p = url + n + 6; *p >= '0' && *p <= '9'; p++)
		;
	return p > url + n + 6 && (!*p || *p == '/' || *p == '#') ? url : NULL;
}

/* A task from a running system: what failed, from its stored alert (an
 * Alertmanager pod alert: {"alert": {labels, annotations}}) or ArgoCD
 * notification ({"trigger", "application"}), in place of the CI fields. */
static void
outbox_report_alert(struct hl_notify_report *r, const struct hl_task_record *t, json_t *event)
{
	const json_t *al = json_object_get(event, "alert"), *app;

	if (t->kind && strcmp(t->kind, "alert") == 0) {
		r->alert = hl_json_str_or(al, "labels.alertname", "pod alert");
		r->namespace = hl_json_str(al, "labels.namespace");
		r->pod = hl_json_str(al, "labels.pod");
		r->summary = hl_json_str(al, "annotations.summary");
		if (!r->summary)
			r->summary = hl_json_str(al, "annotations.description");
	} else if (t->kind && strcmp(t->kind, "argocd") == 0) {
		app = json_object_get(event, "application");
		r->alert = strcmp(hl_json_str_or(event, "trigger", "degraded"), "sync_failed") == 0
		                   ? "ArgoCD sync failed"
		                   : "ArgoCD application degraded";
		r->namespace = hl_json_str_or(app, "metadata.namespace", "argocd");
		r->application = hl_json_str(app, "metadata.name");
		r->summary = hl_json_str(app, "status.operationState.message");
	}
}

#define OUTBOX_MAX_ATTEMPTS 32

/* The outside texts of a report as every channel sends them: an alert's
 * summary, ArgoCD's message, the attempts' reasons (which may quote an
 * upstream's error) and messages, redacted like a prompt (a secret or a
 * URL's password they quote is not sent); the copies live here until the
 * report is rendered. */
struct outbox_texts {
	char *s[2 + 2 * OUTBOX_MAX_ATTEMPTS];
	size_t n;
};

static const char *
outbox_redacted(struct outbox_texts *own, const char *s)
{
	char *r;

	if (!s || !*s)
		return s;
	if (own->n >= sizeof(own->s) / sizeof(own->s[0]) || !(r = hl_log_redact(s)))
		return ""; /* no room or no memory: left out, never sent as is */
	own->s[own->n++] = r;
	return r;
}

static void
outbox_texts_free(struct outbox_texts *own)
{
	while (own->n > 0)
		free(own->s[--own->n]);
}

/* The task as the notify module reports it; attempts point into t, the
 * outside texts into own (released with outbox_texts_free). */
static void
outbox_report(struct hl_notify_report *r, struct hl_notify_attempt *att, size_t max_att,
              struct outbox_texts *own, const struct hl_task_record *t, const struct hl_loop *l,
              json_t *decision, json_t *event, enum hl_notify_kind kind)
{
	size_t i, n = 0;

	own->n = 0;
	if (max_att > OUTBOX_MAX_ATTEMPTS)
		max_att = OUTBOX_MAX_ATTEMPTS;

	memset(r, 0, sizeof(*r));
	r->kind = kind;
	r->task_id = t->task_id;
	r->repository = t->repository;
	r->workflow = t->workflow;
	r->job = t->job;
	r->branch = t->target_branch ? t->target_branch : t->branch;
	r->run_url = hl_json_str(event, "html_url");
	r->pr_number = t->pr_number;
	r->failure_type = t->failure_type;
	r->evidence = hl_json_str(decision, "evidence.line");
	r->state = hl_task_state_name(t->state);
	r->max_attempts = l->cfg->max_attempts;
	r->time_ms = hl_time_wall_ms();
	for (i = 0; i < t->n_attempts && n < max_att; i++) {
		const struct hl_attempt_record *a = &t->attempt[i];
		att[n++] = (struct hl_notify_attempt){
			.number = a->n,
			.agent = a->kind == HL_ATTEMPT_RERUN ? "re-run" : a->agent,
			.coderun = a->coderun_name,
			.outcome = a->outcome == HL_OUTCOME_INVALID
			                   ? NULL
			                   : hl_attempt_outcome_name(a->outcome),
			.reason = a->reason,
			.status_message = a->status_message,
			.pr_url = outbox_pr_url(a->pr_url, t, event),
			.started_ms = a->started_ms,
			.finished_ms = a->finished_ms,
		};
		if (att[n - 1].pr_url)
			r->pr_url = att[n - 1].pr_url;
	}
	r->attempts = att;
	r->n_attempts = n;
	outbox_report_alert(r, t, event);
	r->summary = outbox_redacted(own, r->summary);
	r->evidence = outbox_redacted(own, r->evidence);
	for (i = 0; i < n; i++) {
		att[i].reason = outbox_redacted(own, att[i].reason);
		att[i].status_message = outbox_redacted(own, att[i].status_message);
	}
}

static int
outbox_add(struct hl_loop *l, const char *task_id, const char *channel, const char *kind,
           const char *ref, const char *payload, struct hl_err *err)
{
	bool created = false;
	int rc = hl_store_outbox_add(l->store, &created,
	                             &(struct hl_notification_in){ .task_id = task_id,
	                                                           .channel = channel,
	                                                           .kind = kind,
	                                                           .ref = ref,
	                                                           .payload = payload },
	                             err);

	if (rc == 0 && created)
		hl_log_kv(HL_LOG_INFO, "notification enqueued", "task_id", task_id, "channel",
		          channel, "kind", kind, "ref", ref, NULL);
	return rc;
}

/* An email's row: {from, rcpt, message}, its envelope (the settings when
 * it was enqueued, like its headers, or what is left of it once some
 * recipients took it) with the message. A row enqueued before is the bare
 * message, sent to the settings' addresses. */
static char *
outbox_email_payload(const char *from, const char *rcpt, const char *message)
{
	json_t *o = json_pack("{s:s?, s:s, s:s}", "from", from, "rcpt", rcpt, "message", message);
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	return text;
}

/* An email row's parts (*p to be released), the settings for a row in
 * the old form (the bare message). */
static void
outbox_email_parts(json_t **p, const char **from, const char **rcpt, const char **message,
                   const struct hl_config *cfg, const char *payload)
{
	*p = payload[0] == '{' ? json_loads(payload, 0, NULL) : NULL;
	*message = hl_json_str(*p, "message");
	if (!*message) {
		json_decref(*p);
		*p = NULL;
		*from = cfg->email_from;
		*rcpt = cfg->email_to;
		*message = payload;
		return;
	}
	*from = hl_json_str_or(*p, "from", cfg->email_from);
	*rcpt = hl_json_str_or(*p, "rcpt", cfg->email_to);
}

/* {repo, number, body}: what a PR comment needs. */
static char *
outbox_github_payload(const char *repo, int64_t number, const char *body)
{
	json_t *o = json_pack("{s:s, s:I, s:s}", "repo", repo, "number", (json_int_t)number, "body",
	                      body);
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	return text;
}

/* The comment's marker: an HTML comment (not shown) with a random id, by
 * which a retry finds the comment an attempt posted although its answer
 * was lost; random, so no one can post it first to keep the comment out. */
#define OUTBOX_MARKER_PREFIX "<!-- healer:"

static void
outbox_marker(char *out, size_t size)
{
	unsigned char rnd[8];
	char hex[17];
	uint64_t x;
	size_t i;

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		x = (uint64_t)hl_time_wall_ms() ^ ((uint64_t)hl_time_mono_ms() << 20) ^
		    (uint64_t)(uintptr_t)out;
		for (i = 0; i < sizeof(rnd);
		     i++, x = x * 6364136223846793005ull + 1442695040888963407ull)
			rnd[i] = (unsigned char)(x >> 56);
	}
	hl_str_hex(hex, rnd, sizeof(rnd));
	snprintf(out, size, OUTBOX_MARKER_PREFIX "%s -->", hex);
}

/* The marker at the end of a comment body, copied into out; false when
 * the body has none (enqueued before markers). Only its last line is the
 * marker hl_loop_comment wrote: the text above it quotes logs and names
 * from outside, which may hold a line that looks like one (taken for the
 * marker, a comment anyone posted with it would pass for this one). */
static bool
outbox_marker_of(char *out, size_t size, const char *body)
{
	static const char prefix[] = OUTBOX_MARKER_PREFIX, suffix[] = " -->";
	size_t n = body ? strlen(body) : 0, len, i;
	const char *m;

	while (n > 0 && body[n - 1] == '\n')
		n--;
	for (m = body + n; m > body && m[-1] != '\n'; m--)
		;
	len = (size_t)(body + n - m);
	if (m == body || len >= size || len <= sizeof(prefix) - 1 + sizeof(suffix) - 1 ||
	    memcmp(m, prefix, sizeof(prefix) - 1) != 0 ||
	    memcmp(m + len - (sizeof(suffix) - 1), suffix, sizeof(suffix) - 1) != 0)
		return false;
	for (i = sizeof(prefix) - 1; i < len - (sizeof(suffix) - 1); i++)
		if (!isxdigit((unsigned char)m[i]))
			return false;
	memcpy(out, m, len);
	out[len] = '\0';
	return true;
}

int
hl_loop_comment(struct hl_loop *l, const char *task_id, const char *repository, int64_t pr_number,
                const char *kind, const char *ref, const char *body, struct hl_err *err)
{
	struct hl_buf marked = HL_BUF_INIT(0);
	char *payload, marker[64];
	int rc;

	if (!repository || pr_number <= 0)
		return 0;
	outbox_marker(marker, sizeof(marker));
	hl_buf_appendf(&marked, "%s\n%s\n", body, marker);
	payload = hl_buf_error(&marked) ? NULL
	                                : outbox_github_payload(repository, pr_number, marked.data);
	hl_buf_release(&marked);
	if (!payload)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	rc = outbox_add(l, task_id, "github", kind, ref, payload, err);
	free(payload);
	return rc;
}

int
hl_loop_escalate(struct hl_loop *l, const struct hl_task_record *t, struct hl_err *err)
{
	const struct hl_config *cfg = l->cfg;
	struct hl_notify_report r;
	struct hl_notify_attempt att[OUTBOX_MAX_ATTEMPTS];
	struct outbox_texts own;
	json_t *decision = t->decision_json ? json_loads(t->decision_json, 0, NULL) : NULL;
	json_t *event = t->event_json ? json_loads(t->event_json, 0, NULL) : NULL;
	char *body = NULL, round[24], key[HL_TASK_ID_MAX + 24];
	size_t len = 0;
	int rc = 0;

	/* the round: the attempt after which the task is escalated */
	snprintf(round, sizeof(round), "%d", t->attempts);
	snprintf(key, sizeof(key), "%s.%d", t->task_id, t->attempts);
	outbox_report(&r, att, OUTBOX_MAX_ATTEMPTS, &own, t, l, decision, event,
	              HL_NOTIFY_ESCALATION);
	if (outbox_set(cfg->discord_webhook_url)) {
		if ((rc = hl_notify_discord_build(&body, &r, err)) < 0 ||
		    (rc = outbox_add(l, t->task_id, "discord", "escalation", round, body, err)) < 0)
			goto out;
		free(body);
		body = NULL;
	}
	if (outbox_set(cfg->slack_webhook_url)) {
		if ((rc = hl_notify_slack_build(&body, &r, err)) < 0 ||
		    (rc = outbox_add(l, t->task_id, "slack", "escalation", round, body, err)) < 0)
			goto out;
		free(body);
		body = NULL;
	}
	if (outbox_set(cfg->smtp_url) && outbox_set(cfg->email_to)) {
		/* each round its own Message-ID: a mail system drops a second
		 * message with an id it has seen */
		struct hl_notify_email_hdr h = { .from = cfg->email_from,
			                         .to = cfg->email_to,
			                         .message_key = key };
		char *row = NULL;

		rc = hl_notify_email_build(&body, &len, &r, &h, err);
		if (rc == -HL_EINVAL) {
			/* a bad address is configuration, not a reason to lose the others */
			hl_log_kv(HL_LOG_ERROR, "the escalation email cannot be built", "error",
			          err->msg, NULL);
			rc = 0;
		} else if (rc < 0) {
			goto out;
		} else if (!(row = outbox_email_payload(cfg->email_from, cfg->email_to, body))) {
			rc = hl_err_set(err, HL_ENOMEM, "out of memory");
			goto out;
		} else {
			rc = outbox_add(l, t->task_id, "email", "escalation", round, row, err);
			free(row);
			if (rc < 0)
				goto out;
		}
		free(body);
		body = NULL;
	}
	if (t->pr_number > 0 && t->repository) {
		if ((rc = hl_notify_github_build(&body, &r, err)) < 0 ||
		    (rc = hl_loop_comment(l, t->task_id, t->repository, t->pr_number, "escalation",
		                          round, body, err)) < 0)
			goto out;
	}
out:
	free(body);
	outbox_texts_free(&own);
	json_decref(decision);
	json_decref(event);
	return rc;
}

/* The /healer status section of one task into *body. */
static int
outbox_status_of(struct hl_loop *l, const struct hl_task_record *t, char **body, struct hl_err *err)
{
	struct hl_notify_report r;
	struct hl_notify_attempt att[OUTBOX_MAX_ATTEMPTS];
	struct outbox_texts own;
	json_t *decision = t->decision_json ? json_loads(t->decision_json, 0, NULL) : NULL;
	json_t *event = t->event_json ? json_loads(t->event_json, 0, NULL) : NULL;
	int rc;

	outbox_report(&r, att, OUTBOX_MAX_ATTEMPTS, &own, t, l, decision, event, HL_NOTIFY_REPORT);
	rc = hl_notify_github_status(body, &r, err);
	outbox_texts_free(&own);
	json_decref(decision);
	json_decref(event);
	return rc;
}

/* A status reply stays this far under GitHub's 65536 characters (bytes
 * count at least as many), leaving room for the marker and the count. */
#define OUTBOX_STATUS_MAX 65000

int
hl_loop_report_comment(struct hl_loop *l, struct hl_task_record *const *tasks, size_t n,
                       size_t more, const char *key_task_id, const char *repository,
                       const char *ref, int64_t pr_number, struct hl_err *err)
{
	struct hl_buf b = HL_BUF_INIT(0);
	char *body = NULL;
	size_t i;
	int rc = 0;

	if (n == 0)
		hl_buf_append_str(&b, "### Healer status\n\n"
		                      "There is no remediation for this pull request.\n");
	for (i = 0; i < n; i++) {
		if ((rc = outbox_status_of(l, tasks[i], &body, err)) < 0)
			goto out;
		if (i > 0 && b.len + strlen(body) + 8 > OUTBOX_STATUS_MAX)
			break;
		if (i > 0)
			hl_buf_append_str(&b, "\n---\n\n");
		hl_buf_append_str(&b, body);
		free(body);
		body = NULL;
	}
	more += n - i;
	if (more)
		hl_buf_appendf(&b, "\n\xe2\x80\xa6 and %zu more %s of this pull request\n", more,
		               more == 1 ? "task" : "tasks");
	if (hl_buf_error(&b)) {
		rc = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	rc = hl_loop_comment(l, key_task_id, repository, pr_number, "status", ref, b.data, err);
out:
	free(body);
	hl_buf_release(&b);
	return rc;
}

/* One delivery attempt of a notification; an email refused for now by
 * some recipients, but sent to the others, names those in deferred. */
static int
outbox_send(struct hl_loop *l, struct hl_notify_result *res, const struct hl_notification *n,
            struct hl_buf *deferred, struct hl_err *err)
{
	const struct hl_config *cfg = l->cfg;
	/* a rate limit comes back at once: the channel is held (outbox_pass)
	 * while the other channels go on, rather than this thread sleeping
	 * inside the send */
	struct hl_notify_opts opts = { .timeout_ms = OUTBOX_TIMEOUT_MS, .no_rate_wait = true };
	size_t len = strlen(n->payload);

	if (strcmp(n->channel, "discord") == 0 && outbox_set(cfg->discord_webhook_url))
		return hl_notify_discord_send(res, cfg->discord_webhook_url, n->payload, len, &opts,
		                              err);
	if (strcmp(n->channel, "slack") == 0 && outbox_set(cfg->slack_webhook_url))
		return hl_notify_slack_send(res, cfg->slack_webhook_url, n->payload, len, &opts,
		                            err);
	if (strcmp(n->channel, "email") == 0 && outbox_set(cfg->smtp_url)) {
		const char *from, *rcpt, *message;
		json_t *p;
		int rc;

		outbox_email_parts(&p, &from, &rcpt, &message, cfg, n->payload);
		opts.smtp_deferred = deferred;
		rc = hl_notify_email_send(res, cfg->smtp_url, from, rcpt, message, strlen(message),
		                          &opts, err);
		json_decref(p);
		return rc;
	}
	if (strcmp(n->channel, "github") == 0 && l->github) {
		json_t *p = json_loads(n->payload, 0, NULL);
		char marker[64];
		int rc;
		if (!p) {
			memset(res, 0, sizeof(*res));
			res->status = HL_NOTIFY_FAILED;
			snprintf(res->error, sizeof(res->error), "bad_payload");
			return 0;
		}
		/* an earlier attempt may have posted it although its answer was
		 * lost (a timeout, a 502, a process killed mid-send, which left no
		 * attempt recorded): asked every time, a GET per 100 comments
		 * since it was enqueued */
		if (outbox_marker_of(marker, sizeof(marker), hl_json_str(p, "body"))) {
			opts.github_marker = marker;
			opts.github_since_ms = n->created_ms - 60000;
		}
		rc = hl_notify_github_send(res, l->github, hl_json_str(p, "repo"),
		                           hl_json_int(p, "number", 0),
		                           hl_json_str_or(p, "body", ""), &opts, err);
		json_decref(p);
		return rc;
	}
	/* the outbox's own timeout, not the prompt's read deadline
	 * (HEALER_MEMORY_TIMEOUT_MS): OpenMemory computes embeddings while it
	 * adds, and a write given up early is sent again and merged, raising
	 * the memory's salience once per retry */
	if (strcmp(n->channel, "openmemory") == 0 && outbox_set(cfg->openmemory_url))
		return hl_memory_om_send(res, cfg, n->payload, OUTBOX_TIMEOUT_MS, err);
	/* the channel is no longer configured */
	memset(res, 0, sizeof(*res));
	res->status = HL_NOTIFY_FAILED;
	snprintf(res->error, sizeof(res->error), "not_configured");
	snprintf(res->message, sizeof(res->message), "the %s channel is not configured",
	         n->channel);
	return 0;
}

static int64_t
outbox_backoff(int attempts, int64_t asked_ms)
{
	int64_t ms = OUTBOX_BACKOFF_MS;

	while (--attempts > 0 && ms < OUTBOX_WAIT_MAX)
		ms *= 2;
	if (asked_ms > ms)
		ms = asked_ms;
	return ms < OUTBOX_WAIT_MAX ? ms : OUTBOX_WAIT_MAX;
}

/* Channels held back after a rate limit or a service that did not answer
 * (the outbox thread's own state). */
#define OUTBOX_HOLDS 8

struct outbox_hold {
	char channel[16];
	int64_t until_ms; /* wall clock */
};

/* The end of channel's hold, 0 when none. */
static int64_t
outbox_held(const struct outbox_hold *h, const char *channel, int64_t now)
{
	size_t i;

	for (i = 0; i < OUTBOX_HOLDS; i++)
		if (h[i].until_ms > now && strcmp(h[i].channel, channel) == 0)
			return h[i].until_ms;
	return 0;
}

static void
outbox_hold(struct outbox_hold *h, const char *channel, int64_t until_ms)
{
	size_t i, slot = 0;

	for (i = 0; i < OUTBOX_HOLDS; i++) {
		if (strcmp(h[i].channel, channel) == 0) {
			slot = i;
			break;
		}
		if (h[i].until_ms < h[slot].until_ms)
			slot = i;
	}
	hl_strlcpy(h[slot].channel, channel, sizeof(h[slot].channel));
	h[slot].until_ms = until_ms;
}

/* The store's key of channel's shared hold. */
static void
outbox_hold_key(char *key, size_t size, const char *channel)
{
	snprintf(key, size, "outbox:hold:%s", channel);
}

/* Holds channel until until_ms here and, through the store, everywhere. */
static void
outbox_hold_shared(struct hl_loop *l, struct outbox_hold *h, const char *channel, int64_t until_ms)
{
	struct hl_err err = HL_ERR_INIT;
	char key[48];

	outbox_hold(h, channel, until_ms);
	outbox_hold_key(key, sizeof(key), channel);
	if (hl_store_hold_put(l->store, key, until_ms, &err) < 0)
		hl_log_kv(HL_LOG_WARN, "sharing a channel's hold failed", "channel", channel,
		          "error", err.msg, NULL);
}

/* Takes in a hold another replica (or this one before a restart) put on
 * channel, when it ends later than this outbox's own (at most an hour
 * from now, whatever the store says). */
static void
outbox_read_shared_hold(struct hl_loop *l, struct outbox_hold *h, const char *channel, int64_t now)
{
	struct hl_err err = HL_ERR_INIT;
	char key[48];
	int64_t until;

	outbox_hold_key(key, sizeof(key), channel);
	if (hl_store_hold_get(l->store, &until, key, &err) < 0) {
		hl_log_kv(HL_LOG_WARN, "reading a channel's hold failed", "channel", channel,
		          "error", err.msg, NULL);
		return;
	}
	if (until > now && until > outbox_held(h, channel, now))
		outbox_hold(h, channel,
		            until < now + HL_GITHUB_BUDGET_HOLD_MAX_MS
		                    ? until
		                    : now + HL_GITHUB_BUDGET_HOLD_MAX_MS);
}

/* Whether a result says the whole channel must wait (not just this message). */
static bool
outbox_holds_channel(const struct hl_notify_result *res)
{
	return res->status == HL_NOTIFY_RETRY &&
	       (strcmp(res->error, "rate_limited") == 0 || strcmp(res->error, "timeout") == 0 ||
	        strcmp(res->error, "connect") == 0);
}

/* Takes notification id's lock when no other outbox holds it, and then
 * the notification itself while it is still due, under this process's
 * lease until its result is recorded (the row is the fence should the
 * lock go with a lost database session), counting the attempt when a send
 * follows (count); false otherwise (another replica sends it, or sent it
 * or put it off after this pass read it). */
static bool
outbox_take(struct hl_loop *l, char *lock, size_t size, int64_t id, bool count,
            struct hl_outbox_claim *c)
{
	struct hl_err err = HL_ERR_INIT;
	bool got = false;
	int64_t now = hl_time_wall_ms();

	memset(c, 0, sizeof(*c));
	snprintf(lock, size, "outbox:%lld", (long long)id);
	if (hl_store_lock_take(l->store, &got, lock, 0, &err) < 0 || !got) {
		if (err.code)
			hl_log_kv(HL_LOG_WARN, "locking a notification failed", "error", err.msg,
			          NULL);
		return false;
	}
	if (hl_store_outbox_claim(l->store, c, id, now, count, &err) < 0)
		hl_log_kv(HL_LOG_WARN, "taking a notification failed", "error", err.msg, NULL);
	if (!c->taken)
		hl_store_lock_release(l->store, lock);
	return c->taken;
}

/* A sent notification's result the store has not taken yet (the outbox
 * thread's own state): written before anything else at every later pass,
 * and its row is not sent again meanwhile. A result this process sent is
 * never given up: left due, the row would be sent again. */
struct outbox_result {
	int64_t id;
	enum hl_notification_state st;
	int tries;
	int64_t next;
	char *message, *payload; /* NULL: none, the row's payload unchanged */
};

struct outbox_unrecorded {
	struct outbox_result *v;
	size_t n, cap;
	/* rows this process sent but could not record or keep the result
	 * of (no memory): their next take is in doubt although their lease
	 * was this process's own (the last OUTBOX_LOST) */
	int64_t lost[OUTBOX_LOST];
	size_t n_lost;
};

static void
outbox_lost_add(struct outbox_unrecorded *u, int64_t id)
{
	u->lost[u->n_lost++ % OUTBOX_LOST] = id;
}

/* Whether id's previous send by this process left its result unwritten
 * (forgotten once taken again). */
static bool
outbox_lost_take(struct outbox_unrecorded *u, int64_t id)
{
	size_t i;

	for (i = 0; i < OUTBOX_LOST && i < u->n_lost; i++)
		if (u->lost[i] == id) {
			u->lost[i] = 0;
			return true;
		}
	return false;
}

static bool
outbox_unrecorded_has(const struct outbox_unrecorded *u, int64_t id)
{
	size_t i;

	for (i = 0; i < u->n; i++)
		if (u->v[i].id == id)
			return true;
	return false;
}

/* Keeps a result to write later; false without memory. */
static bool
outbox_unrecorded_add(struct outbox_unrecorded *u, int64_t id, enum hl_notification_state st,
                      int tries, int64_t next, const char *message, const char *payload)
{
	struct outbox_result *r;

	if (u->n == u->cap) {
		size_t cap = u->cap ? u->cap * 2 : 8;

		r = realloc(u->v, cap * sizeof(*r));
		if (!r)
			return false;
		u->v = r;
		u->cap = cap;
	}
	r = &u->v[u->n];
	*r = (struct outbox_result){ .id = id, .st = st, .tries = tries, .next = next };
	if ((message && !(r->message = strdup(message))) ||
	    (payload && !(r->payload = strdup(payload)))) {
		free(r->message);
		return false;
	}
	u->n++;
	return true;
}

/* Writes the results kept in memory; returns how many are still not
 * written (the store still refuses). */
static size_t
outbox_unrecorded_flush(struct hl_loop *l, struct outbox_unrecorded *u)
{
	size_t i = 0;

	while (i < u->n) {
		struct outbox_result *r = &u->v[i];
		struct hl_err err = HL_ERR_INIT;
		char id[24], lock[64];

		snprintf(id, sizeof(id), "%lld", (long long)r->id);
		if (hl_store_outbox_update_payload(l->store, r->id, r->st, r->tries, r->next,
		                                   r->message, r->payload, &err) == 0) {
			hl_log_kv(HL_LOG_INFO, "a notification's result recorded late", "id", id,
			          "state", hl_notification_state_name(r->st), NULL);
		} else if (err.code == HL_ECONFLICT) {
			/* another outbox recorded it meanwhile */
			hl_log_kv(HL_LOG_WARN,
			          "a notification's result recorded late was not needed", "id", id,
			          "error", err.msg, NULL);
		} else {
			i++;
			continue;
		}
		/* the row's lock was kept with its result (outbox_pass) */
		snprintf(lock, sizeof(lock), "outbox:%lld", (long long)r->id);
		hl_store_lock_release(l->store, lock);
		free(r->message);
		free(r->payload);
		u->v[i] = u->v[--u->n];
	}
	return u->n;
}

/* Records a sent notification's result under its lock, again with a
 * growing pause while the store refuses (a full disk, a stuck writer, the
 * database restarting) for up to OUTBOX_RECORD_MS; then (or at stop) the
 * result is kept in u and written by the next passes: a delivered one
 * left due would be sent again by the next pass, of any replica. 0
 * recorded (or another outbox recorded it), 1 kept, -1 lost (no memory to
 * keep it). */
static int
outbox_record(struct hl_loop *l, struct outbox_unrecorded *u, int64_t id,
              enum hl_notification_state st, int tries, int64_t next, const char *message,
              const char *payload, struct hl_err *err)
{
	int64_t pause = 50, until = hl_time_mono_ms() + OUTBOX_RECORD_MS;

	for (;;) {
		if (hl_store_outbox_update_payload(l->store, id, st, tries, next, message, payload,
		                                   err) == 0)
			return 0;
		if (err->code == HL_ECONFLICT) {
			/* another outbox recorded it: nothing to keep */
			hl_log_kv(HL_LOG_WARN, "recording a notification failed", "error", err->msg,
			          NULL);
			return 0;
		}
		if (atomic_load(&l->stop) || hl_time_mono_ms() + pause > until)
			break;
		hl_log_kv(HL_LOG_WARN, "recording a notification failed; trying again", "error",
		          err->msg, NULL);
		hl_loop_nap(l, pause);
		pause = pause < 2500 ? pause * 2 : 5000;
	}
	return outbox_unrecorded_add(u, id, st, tries, next, message, payload) ? 1 : -1;
}

/* Delivers what is due; returns how many this outbox handled (0 also when
 * every due one is another replica's just now, or the store has not yet
 * taken an earlier result: the caller then sleeps). */
static int
outbox_pass(struct hl_loop *l, struct outbox_hold *holds, struct outbox_unrecorded *unrec)
{
	struct hl_notification *due = NULL;
	struct hl_err err = HL_ERR_INIT;
	struct hl_buf deferred = HL_BUF_INIT(0);
	size_t n = 0, i, k, handled = 0, n_read = 0;
	char read[OUTBOX_HOLDS][16]; /* channels whose shared hold this pass read */

	/* results already sent go first; nothing more is sent while the
	 * store does not take them */
	if (unrec->n && outbox_unrecorded_flush(l, unrec) > 0)
		return 0;
	if (hl_store_outbox_due(l->store, &due, OUTBOX_BATCH, &n, hl_time_wall_ms(), &err) < 0) {
		hl_log_kv(HL_LOG_WARN, "reading the outbox failed", "error", err.msg, NULL);
		return 0;
	}
	for (i = 0; i < n && !atomic_load(&l->stop); i++) {
		struct hl_notification *nt = &due[i];
		struct hl_notify_result res;
		struct hl_outbox_claim claim;
		enum hl_notification_state st;
		int tries, counted, kept;
		bool limited;
		int64_t next = 0, held;
		char lock[64], id[24], *rest = NULL;
		const char *note;

		if (outbox_unrecorded_has(unrec, nt->id))
			continue;
		for (k = 0; k < n_read && strcmp(read[k], nt->channel) != 0; k++)
			;
		if (k == n_read && n_read < OUTBOX_HOLDS) {
			outbox_read_shared_hold(l, holds, nt->channel, hl_time_wall_ms());
			hl_strlcpy(read[n_read++], nt->channel, sizeof(read[0]));
		}
		held = outbox_held(holds, nt->channel, hl_time_wall_ms());
		/* a send follows unless held: its attempt counts from the take
		 * on, so a send that kills this process has used one */
		if (!outbox_take(l, lock, sizeof(lock), nt->id, !held, &claim))
			continue;
		handled++;
		snprintf(id, sizeof(id), "%lld", (long long)nt->id);
		tries = counted = claim.attempts;
		if (held) {
			/* waits with its channel; no attempt made */
			if (hl_store_outbox_update(l->store, nt->id, HL_OUTBOX_PENDING,
			                           claim.attempts, held,
			                           "waiting: the channel asked to wait", &err) < 0)
				hl_log_kv(HL_LOG_WARN, "recording a notification failed", "error",
				          err.msg, NULL);
			hl_store_lock_release(l->store, lock);
			continue;
		}
		if (tries > OUTBOX_ATTEMPTS) {
			/* its last sends came to no result: each ended its sender */
			hl_log_kv(HL_LOG_ERROR, "notification given up: its sends left no result",
			          "id", id, "task_id", nt->task_id, "channel", nt->channel, NULL);
			if (hl_store_outbox_update(l->store, nt->id, HL_OUTBOX_FAILED, tries, 0,
			                           "given up: the last attempts left no result "
			                           "(the sender died during the send)",
			                           &err) < 0)
				hl_log_kv(HL_LOG_WARN, "recording a notification failed", "error",
				          err.msg, NULL);
			hl_store_lock_release(l->store, lock);
			continue;
		}
		/* in doubt: another process's take (dead, or it could not
		 * record) or a result this one lost; not a row this process
		 * gave back or held without writing it (nothing sent) */
		if (claim.in_doubt || (claim.own && outbox_lost_take(unrec, nt->id)))
			/* no idempotency key on Discord, Slack or SMTP: a send that
			 * arrived before its sender died arrives twice */
			hl_log_kv(HL_LOG_WARN,
			          "notification in doubt: its last send left no result (its sender "
			          "died); sending it again, which may deliver it twice",
			          "id", id, "task_id", nt->task_id, "channel", nt->channel, "kind",
			          nt->kind, "ref", nt->ref, NULL);
		hl_buf_reset(&deferred);
		if (outbox_send(l, &res, nt, &deferred, &err) < 0) {
			/* out of memory: given back, tried again later */
			if (hl_store_outbox_update(l->store, nt->id, HL_OUTBOX_PENDING, nt->attempts,
			                           hl_time_wall_ms() + OUTBOX_BACKOFF_MS,
			                           "out of memory", &err) < 0)
				hl_log_kv(HL_LOG_WARN, "recording a notification failed", "error",
				          err.msg, NULL);
			hl_store_lock_release(l->store, lock);
			continue;
		}
		if (res.status == HL_NOTIFY_DELIVERED && deferred.len > 0 &&
		    !hl_buf_error(&deferred)) {
			/* sent to the others; only the recipients refused for now
			 * are still to get it (the same message, the same
			 * Message-ID) */
			const char *from, *rcpt, *message;
			json_t *p;

			outbox_email_parts(&p, &from, &rcpt, &message, l->cfg, nt->payload);
			rest = outbox_email_payload(from, deferred.data, message);
			json_decref(p);
			if (!rest)
				hl_log_kv(
				        HL_LOG_ERROR,
				        "out of memory: an email's recipients refused for now are "
				        "not tried again",
				        "id", id, "recipients", deferred.data, NULL);
		}
		if (res.status == HL_NOTIFY_DELIVERED && !rest)
			st = HL_OUTBOX_DELIVERED;
		else if ((res.status == HL_NOTIFY_RETRY || rest) && tries < OUTBOX_ATTEMPTS)
			st = HL_OUTBOX_PENDING;
		else
			st = HL_OUTBOX_FAILED;
		/* a rate limit refused nothing: the attempt is given back, so a
		 * long limit does not use up the row's attempts; a channel that
		 * limits it for OUTBOX_LIMITED_MS since it was enqueued ends it */
		limited = res.status == HL_NOTIFY_RETRY && !rest &&
		          strcmp(res.error, "rate_limited") == 0;
		if (limited && hl_time_wall_ms() - nt->created_ms < OUTBOX_LIMITED_MS) {
			st = HL_OUTBOX_PENDING;
			counted = HL_OUTBOX_GIVE_BACK;
		} else if (limited) {
			st = HL_OUTBOX_FAILED;
			hl_log_kv(
			        HL_LOG_ERROR,
			        "notification given up: rate limited for 24 h since it was enqueued",
			        "id", id, "task_id", nt->task_id, "channel", nt->channel, NULL);
		}
		if (st == HL_OUTBOX_PENDING)
			/* a limited row waits what the service asked, not the
			 * backoff of the attempts it did not use */
			next = hl_time_wall_ms() +
			       (counted == HL_OUTBOX_GIVE_BACK && res.retry_after_ms > 0 &&
			                        res.retry_after_ms < OUTBOX_WAIT_MAX
			                ? res.retry_after_ms
			                : outbox_backoff(tries, res.retry_after_ms));
		/* (the service's wait, at most OUTBOX_WAIT_MAX like a row's own) */
		if (outbox_holds_channel(&res))
			outbox_hold_shared(
			        l, holds, nt->channel,
			        hl_time_wall_ms() +
			                (res.retry_after_ms > 0 &&
			                                 res.retry_after_ms < OUTBOX_WAIT_MAX
			                         ? res.retry_after_ms
			                         : outbox_backoff(tries, res.retry_after_ms)));
		/* the service said its next request would be refused before then
		 * (Discord's X-RateLimit-Remaining 0, on a delivery too): the
		 * channel's next message waits for it rather than earn a 429 */
		if (res.hold_ms > 0) {
			int64_t until = hl_time_wall_ms() + res.hold_ms;

			if (outbox_held(holds, nt->channel, hl_time_wall_ms()) < until)
				outbox_hold_shared(l, holds, nt->channel, until);
		}
		/* a delivery some recipients refused keeps their text */
		note = st == HL_OUTBOX_DELIVERED && !res.error[0] ? NULL
		       : limited && st == HL_OUTBOX_FAILED
		               ? "given up: rate limited for 24 h since it was enqueued"
		               : res.message;
		hl_log_kv(st == HL_OUTBOX_FAILED                                      ? HL_LOG_ERROR
		          : res.status == HL_NOTIFY_DELIVERED && res.error[0] != '\0' ? HL_LOG_WARN
		                                                                      : HL_LOG_INFO,
		          "notification sent", "id", id, "task_id", nt->task_id, "channel",
		          nt->channel, "kind", nt->kind, "result",
		          hl_notify_status_name(res.status), "error", res.error, "detail",
		          res.message, "pending_for", rest ? deferred.data : NULL, NULL);
		kept = outbox_record(l, unrec, nt->id, st, counted, next, note, rest, &err);
		if (kept < 0)
			outbox_lost_add(unrec, nt->id);
		if (kept != 0)
			hl_log_kv(kept > 0 ? HL_LOG_WARN : HL_LOG_ERROR,
			          kept > 0 ? "recording a notification failed; its result is kept "
			                     "and written before anything else is sent"
			                   : "recording a notification failed",
			          "id", id, "error", err.msg, NULL);
		free(rest);
		/* only once the result is recorded: another outbox then finds it
		 * done; a result kept in memory keeps the lock (and the row's
		 * lease is still renewed) until it is written */
		if (kept <= 0)
			hl_store_lock_release(l->store, lock);
		if (kept != 0)
			break; /* the store refuses: nothing more is sent now */
	}
	hl_buf_release(&deferred);
	for (i = 0; i < n; i++)
		hl_notification_release(&due[i]);
	free(due);
	return (int)handled;
}

void *
hl_loop_outbox_main(void *arg)
{
	struct hl_loop *l = arg;
	struct outbox_hold holds[OUTBOX_HOLDS];
	struct outbox_unrecorded unrec = { NULL, 0, 0 };
	size_t i;

	memset(holds, 0, sizeof(holds));
	pthread_setname_np(pthread_self(), "hl-outbox");
	while (!atomic_load(&l->stop))
		if (outbox_pass(l, holds, &unrec) == 0)
			hl_loop_sleep(l, l->cfg->loop_interval_ms);
	/* at stop: a last try; what the store still refuses is lost, and the
	 * row is sent again once its lease ends */
	outbox_unrecorded_flush(l, &unrec);
	for (i = 0; i < unrec.n; i++) {
		char id[24], lock[64];

		snprintf(id, sizeof(id), "%lld", (long long)unrec.v[i].id);
		hl_log_kv(HL_LOG_ERROR,
		          "a sent notification's result is lost at stop; it may be sent again",
		          "id", id, NULL);
		snprintf(lock, sizeof(lock), "outbox:%lld", (long long)unrec.v[i].id);
		hl_store_lock_release(l->store, lock);
		free(unrec.v[i].message);
		free(unrec.v[i].payload);
	}
	free(unrec.v);
	return NULL;
}
