/*
 * commands.c - /healer commands in PR comments (contract section 9), in the
 * PR's conversation (issue_comment), on a line of its diff
 * (pull_request_review_comment) or in a review's body (pull_request_review):
 *   fix [hint]    remediate the PR's failing checks (on its head sha), with
 *                 the hint in each prompt; one task per failing check (the
 *                 checks of one Actions run are one, as that run's
 *                 workflow_job events are), so a failure already being
 *                 remediated answers as existing;
 *   retry [hint]  one more attempt on the PR's last task (also after
 *                 escalation);
 *   status        a reply with the attempts of each task of the PR (the
 *                 newest CMD_STATUS_MAX, and how many more there are);
 *   stop          deletes the active CodeRun of every active task of the
 *                 PR; those tasks end stopped.
 * A PR closed or merged stops its tasks still queued or running the same
 * way, without a command (hl_loop_pr_closed).
 * Only authors whose author_association is in HEALER_COMMAND_ASSOCIATIONS
 * are obeyed (OWNER, MEMBER, COLLABORATOR by default, as Prow and OpenHands
 * decide); others get a short reply, at most one per (repository, PR,
 * author) and CMD_REFUSAL_WINDOW_MS: anyone may comment, and a reply per
 * refused comment would let anyone make healer post hundreds of comments.
 * The time of the last reply is kept in the store's key/value state
 * ("refusal:<repo>#<pr>:<author>", lower case) and read and written under
 * the store's named lock of that key, so the limit holds across restarts
 * and replicas; a suppressed reply is logged, and records older than the
 * window are removed as a new one is written. An obeyed command gets an
 * `eyes` reaction (but in a review's body: GitHub has no reactions for
 * reviews). Replies go through the outbox, keyed by the comment (cmd_ref),
 * so a comment delivered twice is answered once. Replies are posted in the
 * PR's conversation.
 */
#include "base/clock.h"
#include "base/log.h"
#include "base/str.h"
#include "loop_impl.h"
#include "notify/notify.h"

#include "json/json.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* One refusal reply per (repository, PR, author) within this long. */
#define CMD_REFUSAL_WINDOW_MS  (60LL * 60 * 1000)
#define CMD_REFUSAL_KEY_PREFIX "refusal:"
/* How long a refusal waits for another worker's or replica's decision on
 * the same key (the lock is held for a store read and write). */
#define CMD_REFUSAL_LOCK_WAIT_MS 5000
/* "review-comment-" and a 64-bit id (cmd_ref) */
#define CMD_REF_MAX 40

static void cmd_set(struct hl_loop_command_result *out, const char *outcome, const char *task_id,
                    const char *fmt, ...) HL_PRINTF(4, 5);

static void
cmd_set(struct hl_loop_command_result *out, const char *outcome, const char *task_id,
        const char *fmt, ...)
{
	va_list ap;

	hl_strlcpy(out->outcome, outcome, sizeof(out->outcome));
	hl_strlcpy(out->task_id, task_id ? task_id : "", sizeof(out->task_id));
	va_start(ap, fmt);
	vsnprintf(out->detail, sizeof(out->detail), fmt, ap);
	va_end(ap);
}

/* Whether association is in the comma list allowed (case-insensitive). */
static bool
cmd_allowed(const char *allowed, const char *association)
{
	const char *p = allowed;
	size_t n;

	if (!association || !*association || !allowed)
		return false;
	n = strlen(association);
	while (*p) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		while (len && (*p == ' ' || *p == '\t'))
			p++, len--;
		while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (len == n && strncasecmp(p, association, n) == 0)
			return true;
		if (!comma)
			break;
		p = comma + 1;
	}
	return false;
}

/*
 * What a command's replies are keyed by in the outbox: the comment it came
 * in. Issue comments, review comments and reviews are numbered apart, so
 * the last two are prefixed (an issue comment's key stays its bare id, as
 * replies already enqueued are keyed).
 */
static void
cmd_ref(char *out, size_t size, const struct hl_event *ev)
{
	if (ev->kind == HL_EVENT_PULL_REQUEST_REVIEW)
		snprintf(out, size, "review-%lld", (long long)ev->review_id);
	else if (ev->kind == HL_EVENT_PULL_REQUEST_REVIEW_COMMENT)
		snprintf(out, size, "review-comment-%lld", (long long)ev->comment_id);
	else if (ev->kind == HL_EVENT_PULL_REQUEST)
		snprintf(out, size, "pr-%lld-%s", (long long)ev->pr_number,
		         ev->conclusion ? ev->conclusion : "closed");
	else
		snprintf(out, size, "%lld", (long long)ev->comment_id);
}

static void
cmd_react(struct hl_loop *l, const struct hl_event *ev)
{
	struct hl_err err = HL_ERR_INIT;

	/* a review's body is no comment: GitHub has no reactions for it */
	if (!l->github || ev->comment_id <= 0 || ev->kind == HL_EVENT_PULL_REQUEST_REVIEW)
		return;
	if (hl_github_add_reaction(l->github, NULL, ev->repository,
	                           ev->kind == HL_EVENT_PULL_REQUEST_REVIEW_COMMENT
	                                   ? HL_GITHUB_REVIEW_COMMENT
	                                   : HL_GITHUB_ISSUE_COMMENT,
	                           ev->comment_id, "eyes", &err) < 0)
		hl_log_kv(HL_LOG_WARN, "the eyes reaction failed", "error", err.msg, NULL);
}

/* The PR is closed or merged: no agent is sent to push to it. */
static bool
cmd_pr_closed(struct hl_loop_command_result *out, const json_t *pr, const char *task_id)
{
	const char *state = hl_json_str(pr, "state");

	if (!state || strcmp(state, "closed") != 0)
		return false;
	cmd_set(out, "nothing", task_id, "the pull request is %s",
	        hl_json_bool(pr, "merged", false) || hl_json_str(pr, "merged_at") ? "merged"
	                                                                          : "closed");
	return true;
}

/* /healer fix: one remediation per failing check of the PR's head. */
static int
cmd_fix(struct hl_loop *l, struct hl_loop_command_result *out, const struct hl_event *ev,
        const char *task_id, struct hl_err *err)
{
	json_t *pr = NULL, *checks = NULL, *c;
	const char *sha, *head;
	int started = 0, existing = 0, rc;
	size_t i;

	if (!l->github) {
		cmd_set(out, "nothing", task_id, "no GitHub credentials to read the PR's checks");
		return 0;
	}
	if ((rc = hl_github_pull(l->github, &pr, ev->repository, ev->pr_number, err)) < 0)
		goto out;
	if (cmd_pr_closed(out, pr, task_id))
		goto out;
	sha = hl_json_str(pr, "head.sha");
	/* a fork's branch is named by its label ("owner:branch"): its ref is
	 * no branch of this repository, whose CI results would be taken for
	 * the task's (a fork's "main" and this repository's main) */
	head = hl_json_str(pr, hl_remediate_pr_from_fork(pr, ev->repository) ? "head.label"
	                                                                     : "head.ref");
	if (!sha) {
		cmd_set(out, "nothing", task_id, "the PR has no head commit");
		goto out;
	}
	if ((rc = hl_github_check_runs(l->github, &checks, ev->repository, sha, 0, err)) < 0)
		goto out;
	json_array_foreach(checks, i, c)
	{
		struct hl_event fe = { 0 };
		struct hl_remediation res;
		char id[HL_TASK_ID_MAX], ident[512], *key;
		const char *app = hl_json_str(c, "app.slug");

		if (!hl_event_conclusion_is_failure(hl_json_str(c, "conclusion")))
			continue;
		/* the failing check as a CI failure carrying the human's hint */
		fe.kind = HL_EVENT_CHECK_RUN;
		fe.intent = HL_INTENT_CI_FAILURE;
		fe.event_name = "check_run";
		fe.action = "completed";
		fe.repository = ev->repository;
		fe.repository_url = ev->repository_url;
		fe.default_branch = ev->default_branch;
		fe.sender = ev->sender;
		fe.check_run_id = hl_json_int(c, "id", 0);
		if (app && strcmp(app, "github-actions") == 0) {
			/* an Actions check run is its job, and its details_url
			 * names the run (as for a check_run event) */
			fe.job_id = fe.check_run_id;
			fe.run_id = hl_event_run_id_from_url(hl_json_str(c, "details_url"));
		}
		fe.job_name = (char *)hl_json_str(c, "name");
		fe.conclusion = (char *)hl_json_str(c, "conclusion");
		fe.status = "completed";
		fe.branch = (char *)head;
		fe.head_sha = (char *)sha;
		fe.html_url = (char *)hl_json_str(c, "html_url");
		fe.check_output_title = (char *)hl_json_str(c, "output.title");
		fe.check_output_summary = (char *)hl_json_str(c, "output.summary");
		fe.check_output_text = (char *)hl_json_str(c, "output.text");
		fe.pr_number = ev->pr_number;
		fe.pr_title = ev->pr_title;
		fe.command = HL_CMD_FIX;
		fe.command_hint = ev->command_hint;
		snprintf(ident, sizeof(ident), "%s|check=%lld", task_id,
		         (long long)fe.check_run_id);
		if (hl_event_task_id(id, sizeof(id), ident) < 0 ||
		    !(key = hl_event_failure_key(&fe)))
			continue;
		rc = hl_remediate(l->remediator, &res, &fe, id, key, err);
		free(key);
		if (rc < 0)
			goto out;
		if (strcmp(res.dedup_status, "new") == 0)
			started++;
		else
			existing++;
		if (!out->task_id[0])
			hl_strlcpy(out->task_id, strcmp(res.outcome, "attached") ? id : res.task_id,
			           sizeof(out->task_id));
	}
	if (started + existing == 0)
		cmd_set(out, "nothing", task_id, "no failing check on %.12s", sha);
	else
		cmd_set(out, "fixing", out->task_id, "%d check(s) to fix, %d already being fixed",
		        started, existing);
	rc = 0;
out:
	json_decref(pr);
	json_decref(checks);
	return rc;
}

/* /healer retry: one more attempt on the PR's last task, escalated or
 * stopped. */
static int
cmd_retry(struct hl_loop *l, struct hl_loop_command_result *out, const struct hl_event *ev,
          const struct hl_task_record *t, struct hl_err *err)
{
	const char *ranked[8];
	size_t n_ranked = 0;
	json_t *decision = t->decision_json ? json_loads(t->decision_json, 0, NULL) : NULL, *v;
	size_t i;
	int rc;

	if (hl_task_state_is_active(t->state) || t->state == HL_TASK_QUEUED) {
		cmd_set(out, "busy", t->task_id, "the task is %s", hl_task_state_name(t->state));
		json_decref(decision);
		return 0;
	}
	/* after an escalation or a stop (whose failure stays the task's:
	 * /healer fix finds it taken), one more attempt */
	if (t->state != HL_TASK_ESCALATED && t->state != HL_TASK_STOPPED) {
		cmd_set(out, "ended", t->task_id, "the task ended %s; use /healer fix",
		        hl_task_state_name(t->state));
		json_decref(decision);
		return 0;
	}
	if (l->github) {
		/* a PR closed meanwhile gets no more attempts; a GitHub that
		 * cannot tell does not stop the retry */
		struct hl_err gerr = HL_ERR_INIT;
		json_t *pr = NULL;
		bool closed =
		        hl_github_pull(l->github, &pr, ev->repository, ev->pr_number, &gerr) == 0 &&
		        cmd_pr_closed(out, pr, t->task_id);

		json_decref(pr);
		if (closed) {
			json_decref(decision);
			return 0;
		}
	}
	json_array_foreach(json_object_get(decision, "ranked_agents"), i, v)
	{
		if (n_ranked < 8 && json_is_string(v))
			ranked[n_ranked++] = json_string_value(v);
	}
	rc = hl_loop_next_attempt(l, t, hl_loop_next_agent(t, ranked, n_ranked, false),
	                          ev->command_hint, ev->sender, err);
	json_decref(decision);
	if (rc == 0)
		cmd_set(out, "retrying", t->task_id, "attempt %d", (int)t->n_attempts + 1);
	else if (rc > 0) /* it keeps the hint */
		cmd_set(out, "queued", t->task_id,
		        "attempt %d waits for a CodeRun slot or the repository's hourly budget",
		        (int)t->n_attempts + 1);
	return rc < 0 ? rc : 0;
}

/* 2 (out says so) when a stop of t waits for its decision: its first
 * CodeRun may exist, its attempt not yet, and the decision would overwrite
 * the stop and leave that agent running; the command comes back. */
static int
cmd_stop_waits(struct hl_loop_command_result *out, const struct hl_task_record *t)
{
	if (!hl_loop_task_deciding(t))
		return 0;
	cmd_set(out, "waiting", t->task_id, "the task is being decided");
	return 2;
}

/* Deletes every active CodeRun labelled with task_id: one whose name the
 * task never recorded (its create answered late or failed, yet the API
 * server stored it, and the stop came before the decision was retried)
 * would run on, orphaned. */
static int
cmd_delete_unnamed(struct hl_loop *l, const char *task_id, struct hl_err *err)
{
	char sel[HL_TASK_ID_MAX + 64];
	json_t *active = NULL, *c;
	size_t i;
	int rc;

	if (!l->dispatch)
		return 0;
	snprintf(sel, sizeof(sel), "app.kubernetes.io/name=healer,healer/task-id=%s", task_id);
	if ((rc = hl_dispatch_find_active(l->dispatch, &active, sel, err)) < 0)
		return rc;
	json_array_foreach(active, i, c)
	{
		if ((rc = hl_loop_delete_coderun(l, hl_json_str(c, "metadata.name"), err)) < 0)
			break;
	}
	json_decref(active);
	return rc;
}

/* What a stop records (the attempt's and the task's reason), and whether
 * a task whose agent is done (verifying) is left to be judged by CI. */
struct cmd_stop_how {
	const char *reason;
	bool keep_verifying;
};

static const struct cmd_stop_how cmd_stop_command = { "stopped by /healer stop", false };

/* /healer stop, or the PR's end: the active CodeRun goes, the task ends
 * stopped. */
static int
cmd_stop(struct hl_loop *l, struct hl_loop_command_result *out, const struct hl_task_record *t,
         const struct cmd_stop_how *how, struct hl_err *err)
{
	const struct hl_attempt_record *a = t->n_attempts ? &t->attempt[t->n_attempts - 1] : NULL;
	int rc;

	if ((t->state != HL_TASK_QUEUED && !hl_task_state_is_active(t->state)) ||
	    (how->keep_verifying && t->state == HL_TASK_VERIFYING)) {
		cmd_set(out, "nothing", t->task_id, "the task is %s", hl_task_state_name(t->state));
		return 0;
	}
	if (cmd_stop_waits(out, t))
		return 2;
	if ((rc = cmd_delete_unnamed(l, t->task_id, err)) < 0)
		return rc;
	if (a && a->phase != HL_PHASE_DONE) {
		if ((rc = hl_loop_delete_coderun(l, a->coderun_name, err)) < 0)
			return rc;
		rc = hl_store_attempt_put(l->store,
		                          &(struct hl_attempt){ .task_id = t->task_id,
		                                                .n = a->n,
		                                                .kind = a->kind,
		                                                .phase = HL_PHASE_DONE,
		                                                .outcome = HL_OUTCOME_STOPPED,
		                                                .reason = how->reason,
		                                                .finished_ms = hl_time_wall_ms() },
		                          err);
		if (rc < 0)
			return rc;
	}
	rc = hl_store_task_put(l->store,
	                       &(struct hl_task){ .task_id = t->task_id,
	                                          .state = HL_TASK_STOPPED,
	                                          .reason = how->reason,
	                                          .next_check_ms = HL_TASK_NO_CHECK },
	                       err);
	if (rc == 0) {
		cmd_set(out, "stopped", t->task_id, "%s",
		        a && a->coderun_name ? a->coderun_name : "");
		hl_log_kv(HL_LOG_INFO, "remediation stopped", "task_id", t->task_id, "reason",
		          how->reason, "coderun", a ? a->coderun_name : NULL, NULL);
	}
	return rc;
}

/* Takes a task's lease for a command, waiting a little for a driver that
 * holds it; HL_EUPSTREAM (the delivery is retried) when it stays taken. */
static int
cmd_lease(struct hl_loop *l, const char *owner, const char *task_id, struct hl_err *err)
{
	int i, rc;

	for (i = 0; i < 50; i++) {
		int64_t now = hl_time_wall_ms();
		bool got = false;
		if ((rc = hl_store_task_lease(l->store, &got, task_id, owner, now,
		                              now + (int64_t)l->cfg->lease_seconds * 1000, err)) <
		    0)
			return rc;
		if (got)
			return 0;
		hl_loop_sleep(l, 100);
	}
	return hl_err_set(err, HL_EUPSTREAM, "task '%s' is busy", task_id);
}

/* Stops the task `id` (stop set) or gives it one more attempt (stop NULL:
 * /healer retry) under its lease. */
static int
cmd_on_task(struct hl_loop *l, struct hl_loop_command_result *out, const struct hl_event *ev,
            const char *ref, const char *id, const struct cmd_stop_how *stop, struct hl_err *err)
{
	struct hl_task_record *t = NULL;
	char owner[LOOP_OWNER_MAX + 48];
	int rc;

	if (stop) {
		/* its first attempt being decided holds the lease (seconds):
		 * no worker waits on it, the command comes back */
		if ((rc = hl_store_task_get(l->store, &t, id, err)) < 0)
			return rc;
		rc = cmd_stop_waits(out, t);
		hl_task_record_free(t);
		t = NULL;
		if (rc)
			return rc;
	}
	/* the task is driven by one owner at a time: this command, now */
	snprintf(owner, sizeof(owner), "%s/command%s", l->owner, ref);
	if ((rc = cmd_lease(l, owner, id, err)) < 0)
		return rc;
	if ((rc = hl_store_task_get(l->store, &t, id, err)) < 0) {
		(void)hl_store_task_release(l->store, id, owner, NULL);
		return rc;
	}
	rc = stop ? cmd_stop(l, out, t, stop, err) : cmd_retry(l, out, ev, t, err);
	hl_task_record_free(t);
	(void)hl_store_task_release(l->store, id, owner, NULL);
	return rc;
}

/* Adds the stopped task id (its CodeRun: detail) to a stop's answer: the
 * first task stopped, and the CodeRuns deleted, space-separated, while
 * they fit names (size bytes). */
static void
cmd_stopped_add(char *first, char *names, size_t size, int *stopped, const char *id,
                const char *detail)
{
	size_t len = strlen(names);

	if (!(*stopped)++)
		hl_strlcpy(first, id, HL_TASK_ID_MAX);
	if (detail[0] && len + strlen(detail) + 2 < size)
		snprintf(names + len, size - len, "%s%s", len ? " " : "", detail);
}

/*
 * /healer stop on every active task of the PR: /healer fix starts one per
 * failing check, and the newest task may have ended while an older one's
 * CodeRun still runs (stopping only the newest answered "the task is
 * succeeded" and left that agent pushing). 0 and *stopped 0 when none is
 * active. Bounded: a task is stopped once, and one that ended meanwhile is
 * not found again.
 */
#define CMD_STOP_MAX 32

static int
cmd_stop_all(struct hl_loop *l, struct hl_loop_command_result *out, const struct hl_event *ev,
             const char *ref, const struct cmd_stop_how *how, int *stopped, struct hl_err *err)
{
	struct hl_loop_command_result one;
	char id[HL_TASK_ID_MAX], first[HL_TASK_ID_MAX] = "", names[sizeof(out->detail)] = "";
	int i, rc;

	*stopped = 0;
	for (i = 0; i < CMD_STOP_MAX; i++) {
		rc = hl_store_task_of_pr(l->store, id, ev->repository, ev->pr_number, true, err);
		if (rc == -HL_ENOTFOUND)
			break;
		if (rc < 0)
			return rc;
		memset(&one, 0, sizeof(one));
		if ((rc = cmd_on_task(l, &one, ev, ref, id, how, err)) < 0)
			return rc;
		if (rc == 2) {
			/* being decided: the whole command again, later */
			*out = one;
			return 2;
		}
		if (strcmp(one.outcome, "stopped") == 0) /* else it ended meanwhile */
			cmd_stopped_add(first, names, sizeof(names), stopped, id, one.detail);
	}
	if (*stopped)
		cmd_set(out, "stopped", first, "%s", names);
	return 0;
}

/* Whether task t (of the PR's head branch name) ran on one of the PR's
 * commits: its head, or an earlier one (pushed over since). false when
 * GitHub cannot tell (logged). */
static bool
cmd_task_of_pr(struct hl_loop *l, const struct hl_task_record *t, const struct hl_event *ev,
               const char *pr_head)
{
	struct hl_err gerr = HL_ERR_INIT;
	bool has = false;

	if (!t->head_sha || !*t->head_sha)
		return false;
	if (pr_head && strcmp(pr_head, t->head_sha) == 0)
		return true;
	if (hl_github_pull_has_commit(l->github, &has, ev->repository, ev->pr_number, t->head_sha,
	                              &gerr) < 0)
		hl_log_kv(HL_LOG_WARN, "reading the commits of a stop's PR failed", "repository",
		          ev->repository, "error", gerr.msg, NULL);
	return has;
}

/*
 * /healer stop that found no active task of the PR: a failure of a job on
 * the PR's head branch (its event names no PR) whose task learns the PR
 * with its decision, or was decided without one. The branch's newest task,
 * when active without a PR or a decision, is stopped (under its lease: a
 * decision at work finishes first), or waited for (2) while it is being
 * decided. The task must be of one of the PR's commits: a fork's PR shares
 * its branch name with a branch of the repository (a fork's main), whose
 * failures are not the PR's. 0 when there is none, or GitHub cannot tell
 * (logged).
 */
static int
cmd_stop_branch(struct hl_loop *l, struct hl_loop_command_result *out, const struct hl_event *ev,
                const char *ref, const struct cmd_stop_how *how, int *stopped, struct hl_err *err)
{
	struct hl_err gerr = HL_ERR_INIT;
	struct hl_task_record *t = NULL;
	char id[HL_TASK_ID_MAX];
	const char *branch;
	json_t *pr = NULL;
	bool ours;
	int rc;

	if (!l->github)
		return 0;
	if (hl_github_pull(l->github, &pr, ev->repository, ev->pr_number, &gerr) < 0) {
		hl_log_kv(HL_LOG_WARN, "reading the PR of a stop failed", "repository",
		          ev->repository, "error", gerr.msg, NULL);
		return 0;
	}
	branch = hl_json_str(pr, "head.ref");
	rc = branch ? hl_store_task_find(l->store, id, ev->repository, branch, 0,
	                                 HL_TASK_FIND_OTHER_RUN, 0, NULL, err)
	            : -HL_ENOTFOUND;
	if (rc == 0)
		rc = hl_store_task_get(l->store, &t, id, err);
	ours = rc == 0 && (t->state == HL_TASK_QUEUED || hl_task_state_is_active(t->state)) &&
	       (!t->agent || t->pr_number <= 0) &&
	       (t->pr_number <= 0 || t->pr_number == ev->pr_number);
	if (ours)
		ours = cmd_task_of_pr(l, t, ev, hl_json_str(pr, "head.sha"));
	json_decref(pr);
	if (rc == -HL_ENOTFOUND)
		return 0;
	if (rc < 0)
		return rc;
	rc = ours ? cmd_stop_waits(out, t) : 0;
	hl_task_record_free(t);
	if (!ours || rc)
		return rc;
	if ((rc = cmd_on_task(l, out, ev, ref, id, how, err)) != 0)
		return rc;
	*stopped = strcmp(out->outcome, "stopped") == 0;
	return 0;
}

/* The refusal limit's key of ev's (repository, PR, author), lower case
 * (GitHub's names ignore case); false when it does not fit. */
static bool
cmd_refusal_key(char *out, size_t size, const struct hl_event *ev)
{
	int n = snprintf(out, size, CMD_REFUSAL_KEY_PREFIX "%s#%lld:%s", ev->repository,
	                 (long long)ev->pr_number, ev->sender ? ev->sender : "");
	char *p;

	if (n < 0 || (size_t)n >= size)
		return false;
	for (p = out; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return true;
}

/* When the last refusal reply of key was enqueued (ms), 0 when none is
 * recorded; -1 when the store could not tell. */
static int64_t
cmd_refusal_last(struct hl_loop *l, const char *key)
{
	struct hl_err err = HL_ERR_INIT;
	char *v = NULL, *end = NULL;
	long long ms;
	int rc = hl_store_kv_get(l->store, &v, key, &err);

	if (rc == -HL_ENOTFOUND)
		return 0;
	if (rc < 0) {
		hl_log_kv(HL_LOG_WARN, "reading the last refusal reply failed", "key", key, "error",
		          err.msg, NULL);
		return -1;
	}
	ms = strtoll(v, &end, 10);
	if (!end || *end || ms < 0)
		ms = 0; /* unreadable: as if none */
	free(v);
	return (int64_t)ms;
}

/* Forgets the refusal replies older than the window: they limit nothing
 * any more. Done as a reply is recorded, so the records are at most those
 * of the last hour before the newest reply. */
static void
cmd_refusal_prune(struct hl_loop *l, int64_t now)
{
	struct hl_err err = HL_ERR_INIT;
	int64_t removed = 0;
	char count[24];

	if (hl_store_kv_prune(l->store, &removed, CMD_REFUSAL_KEY_PREFIX,
	                      now - CMD_REFUSAL_WINDOW_MS, &err) < 0) {
		hl_log_kv(HL_LOG_WARN, "forgetting old refusal replies failed", "error", err.msg,
		          NULL);
	} else if (removed > 0) {
		snprintf(count, sizeof(count), "%lld", (long long)removed);
		hl_log_kv(HL_LOG_DEBUG, "old refusal replies forgotten", "count", count, NULL);
	}
}

/* Replies to a refused command unless the same author was answered on the
 * same PR within CMD_REFUSAL_WINDOW_MS (then the refusal is only logged).
 * Without the lock (the store did not answer in time) the record is still
 * read and written: a rare second reply beats none. */
static int
cmd_refuse(struct hl_loop *l, struct hl_loop_command_result *out, const struct hl_event *ev,
           const char *task_id, const char *ref, struct hl_err *err)
{
	struct hl_err lerr = HL_ERR_INIT;
	char key[HL_STORE_LOCK_NAME_MAX], stamp[24];
	char *body = NULL;
	bool locked = false, keyed = cmd_refusal_key(key, sizeof(key), ev);
	int64_t now = hl_time_wall_ms(), last = 0;
	int rc;

	if (keyed &&
	    hl_store_lock_take(l->store, &locked, key, CMD_REFUSAL_LOCK_WAIT_MS, &lerr) < 0)
		hl_log_kv(HL_LOG_WARN, "locking the refusal limit failed", "key", key, "error",
		          lerr.msg, NULL);
	if (keyed)
		last = cmd_refusal_last(l, key);
	if (last > 0 && now - last >= 0 && now - last < CMD_REFUSAL_WINDOW_MS) {
		size_t n = strlen(out->detail);

		snprintf(stamp, sizeof(stamp), "%lld", (long long)((now - last) / 1000));
		hl_log_kv(HL_LOG_INFO,
		          "refusal reply suppressed: this author was answered on this pull "
		          "request within the hour",
		          "key", key, "author", ev->sender, "answered_s_ago", stamp, NULL);
		snprintf(out->detail + n, sizeof(out->detail) - n,
		         "; not answered again (answered %ss ago)", stamp);
		rc = 0;
		goto out;
	}
	if ((rc = hl_notify_github_refusal(&body, ev->sender, ev->author_association,
	                                   l->cfg->command_associations, err)) == 0)
		rc = hl_loop_comment(l, task_id, ev->repository, ev->pr_number, "refusal", ref,
		                     body, err);
	free(body);
	if (rc == 0 && keyed) {
		snprintf(stamp, sizeof(stamp), "%lld", (long long)now);
		if (hl_store_kv_put(l->store, key, stamp, &lerr) < 0)
			hl_log_kv(HL_LOG_WARN, "recording the refusal reply failed", "key", key,
			          "error", lerr.msg, NULL);
		cmd_refusal_prune(l, now);
	}
	hl_loop_wake(l);
out:
	if (locked)
		hl_store_lock_release(l->store, key);
	return rc;
}

/* Tasks a /healer status reply shows, and how many ids it reads to find
 * them (a task removed meanwhile is passed over). */
#define CMD_STATUS_MAX   10
#define CMD_STATUS_COUNT 100

/*
 * /healer status: one reply on every task of the PR (/healer fix starts one
 * per failing check), newest first, at most CMD_STATUS_MAX and how many
 * more; with none, that the PR has no remediation. Read-only: no lease.
 */
static int
cmd_status(struct hl_loop *l, struct hl_loop_command_result *out, const struct hl_event *ev,
           const char *task_id, const char *ref, struct hl_err *err)
{
	char(*ids)[HL_TASK_ID_MAX] = calloc(CMD_STATUS_COUNT, HL_TASK_ID_MAX);
	struct hl_task_record *tasks[CMD_STATUS_MAX];
	size_t i, n = 0, total = 0, shown = 0;
	int rc;

	if (!ids)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	rc = hl_store_tasks_of_pr(l->store, ids, CMD_STATUS_COUNT, &n, &total, ev->repository,
	                          ev->pr_number, err);
	for (i = 0; rc == 0 && i < n && shown < CMD_STATUS_MAX; i++) {
		rc = hl_store_task_get(l->store, &tasks[shown], ids[i], err);
		if (rc == -HL_ENOTFOUND) /* removed meanwhile */
			rc = 0;
		else if (rc == 0)
			shown++;
	}
	if (rc == 0) {
		if (shown)
			cmd_set(out, "status", tasks[0]->task_id, "%zu %s", total,
			        total == 1 ? "task" : "tasks");
		else
			cmd_set(out, "nothing", task_id, "no remediation for this pull request");
		/* the tasks not read: every one past the ids read */
		rc = hl_loop_report_comment(l, tasks, shown, total > i ? total - i : 0,
		                            shown ? tasks[0]->task_id : task_id, ev->repository,
		                            ref, ev->pr_number, err);
		hl_loop_wake(l);
	}
	while (shown)
		hl_task_record_free(tasks[--shown]);
	free(ids);
	return rc;
}

int
hl_loop_command(struct hl_loop *l, struct hl_loop_command_result *out, const struct hl_event *ev,
                const char *task_id, struct hl_err *err)
{
	char ref[CMD_REF_MAX], last[HL_TASK_ID_MAX];
	int rc = 0;

	memset(out, 0, sizeof(*out));
	cmd_ref(ref, sizeof(ref), ev);
	if (!ev->repository || ev->pr_number <= 0 || ev->command == HL_CMD_NONE) {
		cmd_set(out, "nothing", task_id, "not a command on a pull request");
		return 0;
	}
	if (!cmd_allowed(l->cfg->command_associations, ev->author_association)) {
		cmd_set(out, "refused", task_id, "author association '%s' may not give commands",
		        ev->author_association ? ev->author_association : "unknown");
		hl_log_kv(HL_LOG_WARN, "healer command refused", "author", ev->sender,
		          "association", ev->author_association, NULL);
		return cmd_refuse(l, out, ev, task_id, ref, err);
	}
	cmd_react(l, ev);
	if (ev->command == HL_CMD_FIX)
		return cmd_fix(l, out, ev, task_id, err);
	if (ev->command == HL_CMD_STATUS)
		return cmd_status(l, out, ev, task_id, ref, err);
	if (ev->command == HL_CMD_STOP) {
		int stopped;

		if ((rc = cmd_stop_all(l, out, ev, ref, &cmd_stop_command, &stopped, err)) != 0 ||
		    stopped)
			return rc;
		if ((rc = cmd_stop_branch(l, out, ev, ref, &cmd_stop_command, &stopped, err)) !=
		            0 ||
		    stopped)
			return rc;
		/* none active: the answer is the last task's state */
	}

	rc = hl_store_task_of_pr(l->store, last, ev->repository, ev->pr_number, false, err);
	if (rc == -HL_ENOTFOUND) {
		cmd_set(out, "nothing", task_id, "no remediation for this pull request");
		return 0;
	}
	if (rc < 0)
		return rc;
	return cmd_on_task(l, out, ev, ref, last,
	                   ev->command == HL_CMD_STOP ? &cmd_stop_command : NULL, err);
}

int
hl_loop_pr_closed(struct hl_loop *l, struct hl_loop_command_result *out, const struct hl_event *ev,
                  const char *task_id, struct hl_err *err)
{
	struct cmd_stop_how how = { .keep_verifying = true };
	struct hl_loop_command_result one;
	struct hl_task_record *t;
	char(*ids)[HL_TASK_ID_MAX] = NULL, ref[CMD_REF_MAX], first[HL_TASK_ID_MAX] = "";
	char names[sizeof(out->detail)] = "";
	size_t i, n = 0, total = 0;
	int rc, stopped = 0;
	bool stop;

	memset(out, 0, sizeof(*out));
	if (ev->kind != HL_EVENT_PULL_REQUEST || !ev->action || strcmp(ev->action, "closed") != 0 ||
	    !ev->repository || ev->pr_number <= 0) {
		cmd_set(out, "nothing", task_id, "not a closed pull request");
		return 0;
	}
	how.reason = ev->conclusion && strcmp(ev->conclusion, "merged") == 0
	                     ? "the pull request was merged"
	                     : "the pull request was closed";
	cmd_ref(ref, sizeof(ref), ev);
	if (!(ids = calloc(CMD_STATUS_COUNT, HL_TASK_ID_MAX)))
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	rc = hl_store_tasks_of_pr(l->store, ids, CMD_STATUS_COUNT, &n, &total, ev->repository,
	                          ev->pr_number, err);
	for (i = 0; rc == 0 && i < n; i++) {
		/* read first: the PR's ended tasks take no lease */
		t = NULL;
		rc = hl_store_task_get(l->store, &t, ids[i], err);
		if (rc == -HL_ENOTFOUND) { /* removed meanwhile */
			rc = 0;
			continue;
		}
		if (rc < 0)
			break;
		stop = t->state == HL_TASK_QUEUED || t->state == HL_TASK_RUNNING;
		hl_task_record_free(t);
		if (!stop)
			continue;
		memset(&one, 0, sizeof(one));
		if ((rc = cmd_on_task(l, &one, ev, ref, ids[i], &how, err)) != 0) {
			if (rc == 2) /* being decided: the whole event again, later */
				*out = one;
			break;
		}
		if (strcmp(one.outcome, "stopped") == 0) /* else it moved on meanwhile */
			cmd_stopped_add(first, names, sizeof(names), &stopped, ids[i], one.detail);
	}
	free(ids);
	if (rc != 0)
		return rc;
	if (stopped) {
		cmd_set(out, "stopped", first, "%s", names);
		return 0;
	}
	/* a failure on the PR's head branch whose task names no PR */
	if ((rc = cmd_stop_branch(l, out, ev, ref, &how, &stopped, err)) != 0 || stopped)
		return rc;
	cmd_set(out, "nothing", task_id, "no remediation of this pull request is running");
	return 0;
}

int
hl_loop_stop_task(struct hl_loop *l, const struct hl_task_record *t, const char *reason,
                  struct hl_err *err)
{
	const struct cmd_stop_how how = { .reason = reason, .keep_verifying = true };
	struct hl_loop_command_result out;
	int rc;

	memset(&out, 0, sizeof(out));
	if ((rc = cmd_stop(l, &out, t, &how, err)) < 0)
		return rc;
	return strcmp(out.outcome, "stopped") == 0;
}
