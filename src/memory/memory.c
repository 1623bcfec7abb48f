/*
 * memory.c - the note of a finished task and the embedded memory's reads
 * (see memory.h).
 *
 * A note's summary is one paragraph a later agent can act on: who fixed
 * it, on which attempt, how long it took, the PR and its commits; or, for
 * an escalation, what each attempt ended as and why. Text from outside
 * (evidence, reasons, commit messages) is kept as data: the prompt fences
 * it (docs/PROMPT_DATA.md, the `code` helper).
 */
#include "memory.h"

#include "base/buf.h"
#include "base/clock.h"
#include "base/str.h"
#include "base/url.h"

#include "json/json.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOTE_SUMMARY_MAX (16u << 10)
#define NOTE_REASON_MAX  160
#define NOTE_TEXT_MAX    2048 /* a reason, a PR URL, an evidence line as kept */

static const char *
note_str(const char *s)
{
	return s ? s : "";
}

/*
 * The first line of s, at most max bytes, into b, as a note keeps outside
 * text: a character the cut would split is left out, invalid UTF-8 becomes
 * U+FFFD (a reason may end in half a character: the loop's buffer cut it),
 * and no URL keeps its credentials (a CodeRun's message may quote a push
 * URL with its token; notes are replayed into later prompts and sent to
 * OpenMemory).
 */
static void
note_line(struct hl_buf *b, const char *s, size_t max)
{
	struct hl_buf raw = HL_BUF_INIT(0);
	size_t n = 0, back = 0;

	while (s && s[n] && s[n] != '\n' && n < max)
		n++;
	while (n > 0 && back++ < 3 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	if (!n)
		return;
	if (hl_buf_append_utf8(&raw, s, n) < 0 || hl_url_strip_userinfo_text(b, raw.data) < 0)
		b->err = b->err ? b->err : HL_ENOMEM;
	hl_buf_release(&raw);
}

/* note_line as a new string; NULL for NULL (or out of memory). */
static char *
note_dup(const char *s, size_t max)
{
	struct hl_buf b = HL_BUF_INIT(0);

	if (!s)
		return NULL;
	note_line(&b, s, max);
	if (hl_buf_error(&b)) {
		hl_buf_release(&b);
		return NULL;
	}
	if (!b.len)
		hl_buf_append(&b, "", 0);
	return hl_buf_detach(&b, NULL);
}

static void
note_duration(char *out, size_t size, int64_t ms)
{
	int64_t s = ms / 1000;

	if (s >= 3600)
		snprintf(out, size, "%lldh%02lldm", (long long)(s / 3600),
		         (long long)(s % 3600 / 60));
	else if (s >= 60)
		snprintf(out, size, "%lldm", (long long)(s / 60));
	else
		snprintf(out, size, "%llds", (long long)s);
}

int
hl_memory_note_build(struct hl_memory_note *out, const struct hl_task_record *t,
                     const char *commits, struct hl_err *err)
{
	struct hl_memory_note n;
	struct hl_buf sum = HL_BUF_INIT(NOTE_SUMMARY_MAX);
	json_t *atts = json_array(), *decision = NULL;
	const struct hl_attempt_record *fix = NULL;
	bool succeeded = t->state == HL_TASK_SUCCEEDED;
	char took[32], *reason, *pr;
	size_t i;
	int agents = 0;

	memset(&n, 0, sizeof(n));
	if (!succeeded && t->state != HL_TASK_ESCALATED) {
		json_decref(atts);
		return hl_err_set(err, HL_EINVAL, "task '%s' is not finished", t->task_id);
	}
	for (i = 0; atts && i < t->n_attempts; i++) {
		const struct hl_attempt_record *a = &t->attempt[i];
		const char *agent = a->kind == HL_ATTEMPT_RERUN ? "re-run" : note_str(a->agent);

		if (a->kind == HL_ATTEMPT_AGENT && a->agent && !n.first_agent[0])
			hl_strlcpy(n.first_agent, a->agent, sizeof(n.first_agent));
		if (!fix &&
		    (a->outcome == HL_OUTCOME_SUCCESS || a->outcome == HL_OUTCOME_RERUN_PASSED))
			fix = a;
		agents += a->kind == HL_ATTEMPT_AGENT;
		reason = note_dup(a->reason, NOTE_TEXT_MAX);
		pr = note_dup(a->pr_url, NOTE_TEXT_MAX);
		json_array_append_new(atts, json_pack("{s:i, s:s, s:s?, s:s?, s:s?}", "n", a->n,
		                                      "agent", agent, "outcome",
		                                      a->outcome == HL_OUTCOME_INVALID
		                                              ? NULL
		                                              : hl_attempt_outcome_name(a->outcome),
		                                      "reason", reason, "pr_url", pr));
		free(reason);
		free(pr);
	}
	if (fix && fix->kind == HL_ATTEMPT_AGENT && fix->agent)
		hl_strlcpy(n.fixed_by, fix->agent, sizeof(n.fixed_by));
	if (!succeeded)
		hl_strlcpy(n.event, "escalation", sizeof(n.event));
	else if (fix && fix->n == 1)
		hl_strlcpy(n.event, "first_attempt_success", sizeof(n.event));
	else if (n.fixed_by[0] && n.first_agent[0] && strcmp(n.fixed_by, n.first_agent) != 0)
		hl_strlcpy(n.event, "routing_mismatch", sizeof(n.event));
	else
		hl_strlcpy(n.event, "retry_success", sizeof(n.event));
	/* the PR of the fix, else the last one an attempt opened */
	if (fix && fix->pr_url)
		n.pr_url = note_dup(fix->pr_url, NOTE_TEXT_MAX);
	for (i = t->n_attempts; !n.pr_url && i > 0; i--)
		if (t->attempt[i - 1].pr_url)
			n.pr_url = note_dup(t->attempt[i - 1].pr_url, NOTE_TEXT_MAX);
	if (t->decision_json && (decision = json_loads(t->decision_json, 0, NULL))) {
		const char *line = hl_json_str(decision, "evidence.line");
		if (line && *line)
			n.evidence = note_dup(line, NOTE_TEXT_MAX);
	}
	json_decref(decision);

	note_duration(took, sizeof(took),
	              t->finished_ms > t->created_ms ? t->finished_ms - t->created_ms : 0);
	if (succeeded) {
		hl_buf_appendf(&sum, "Fixed by %s on attempt %d",
		               n.fixed_by[0] ? n.fixed_by : "a re-run", fix ? fix->n : t->attempts);
		hl_buf_appendf(&sum, " in %s", took);
		if (n.pr_url)
			hl_buf_appendf(&sum, ": PR %s", n.pr_url);
		hl_buf_append_char(&sum, '.');
	} else {
		hl_buf_appendf(&sum, "Escalated to people after %d attempt%s in %s.", agents,
		               agents == 1 ? "" : "s", took);
	}
	for (i = 0; i < t->n_attempts; i++) {
		const struct hl_attempt_record *a = &t->attempt[i];
		if (a == fix || a->outcome == HL_OUTCOME_INVALID)
			continue;
		hl_buf_appendf(&sum, " Attempt %d (%s) %s", a->n,
		               a->kind == HL_ATTEMPT_RERUN ? "re-run" : note_str(a->agent),
		               hl_attempt_outcome_name(a->outcome));
		if (a->reason && *a->reason) {
			hl_buf_append_str(&sum, ": ");
			note_line(&sum, a->reason, NOTE_REASON_MAX);
		}
		hl_buf_append_char(&sum, '.');
	}
	if (succeeded && commits && *commits) {
		hl_buf_append_str(&sum, " Commits: ");
		note_line(&sum, commits, 400);
		hl_buf_append_char(&sum, '.');
		n.commits = note_dup(commits, NOTE_SUMMARY_MAX);
	}
	n.attempts_json = atts ? json_dumps(atts, JSON_COMPACT) : NULL;
	json_decref(atts);
	n.summary = hl_buf_error(&sum) ? NULL : hl_buf_detach(&sum, NULL);
	hl_buf_release(&sum);
	if (!n.attempts_json || !n.summary) {
		hl_memory_note_release(&n);
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	}
	n.in = (struct hl_memory_in){
		.task_id = t->task_id,
		.repository = t->repository ? t->repository : "",
		.workflow = t->workflow,
		.job = t->job,
		.failure_type = t->failure_type,
		.event = n.event,
		.outcome = hl_task_state_name(t->state),
		.evidence = n.evidence,
		.first_agent = n.first_agent[0] ? n.first_agent : NULL,
		.fixed_by = n.fixed_by[0] ? n.fixed_by : NULL,
		.attempts_json = n.attempts_json,
		.n_attempts = (int)t->n_attempts,
		.time_to_fix_ms = succeeded && t->finished_ms > t->created_ms
		                          ? t->finished_ms - t->created_ms
		                          : 0,
		.pr_url = n.pr_url,
		.commits = n.commits,
		.summary = n.summary,
	};
	*out = n;
	/* the pointers into n's own strings stay valid: they are heap strings,
	 * and the fixed arrays are re-pointed into *out */
	out->in.event = out->event;
	out->in.first_agent = out->first_agent[0] ? out->first_agent : NULL;
	out->in.fixed_by = out->fixed_by[0] ? out->fixed_by : NULL;
	return 0;
}

void
hl_memory_note_release(struct hl_memory_note *n)
{
	free(n->attempts_json);
	free(n->summary);
	free(n->evidence);
	free(n->commits);
	free(n->pr_url);
	memset(n, 0, sizeof(*n));
}

json_t *
hl_memory_decision_ids(const char *decision_json)
{
	json_t *d = decision_json ? json_loads(decision_json, 0, NULL) : NULL;
	json_t *ids = json_array(), *v;
	size_t i;

	json_array_foreach(hl_json_path(d, "memory.ids"), i, v)
	{
		if (json_is_string(v))
			json_array_append(ids, v);
	}
	json_decref(d);
	return ids;
}

/* "rust_clippy in acme/platform (CI / lint): <evidence>" */
static char *
recall_what(const struct hl_memory_hit *h)
{
	struct hl_buf b = HL_BUF_INIT(4096);

	hl_buf_appendf(&b, "%s in %s (%s / %s)", note_str(h->failure_type), note_str(h->repository),
	               h->workflow ? h->workflow : "?", h->job ? h->job : "?");
	if (h->evidence && *h->evidence) {
		hl_buf_append_str(&b, ": ");
		note_line(&b, h->evidence, 300);
	}
	return hl_buf_error(&b) ? (hl_buf_release(&b), NULL) : hl_buf_detach(&b, NULL);
}

bool
hl_memory_in_scope(enum hl_memory_scope scope, const char *repository, const char *other)
{
	const char *a, *b;

	if (scope == HL_MEMORY_SCOPE_ALL)
		return true;
	if (!repository || !other)
		return false;
	if (scope == HL_MEMORY_SCOPE_REPOSITORY)
		return strcasecmp(repository, other) == 0;
	a = strchr(repository, '/');
	b = strchr(other, '/');
	return a && b && a - repository == b - other &&
	       strncasecmp(repository, other, (size_t)(a - repository)) == 0;
}

/* Memories asked of the store for HL_MEMORY_K to be left within a scope. */
#define RECALL_CANDIDATES (HL_MEMORY_K * 4)

int
hl_memory_recall(json_t **history, json_t **ids, struct hl_store *s, const char *repository,
                 enum hl_memory_scope scope, const char *failure_type, const char *text,
                 const char *exclude_task, struct hl_err *err)
{
	struct hl_memory_hit *h = NULL;
	json_t *similar = json_array(), *known = json_array(), *idl = json_array();
	size_t n = 0, i;
	int rc;

	if (!similar || !known || !idl) {
		rc = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto fail;
	}
	rc = hl_store_memory_similar(
	        s, &h, &n,
	        &(struct hl_memory_query){ .repository = repository,
	                                   .failure_type = failure_type,
	                                   .text = text,
	                                   .exclude_task = exclude_task,
	                                   .k = scope == HL_MEMORY_SCOPE_REPOSITORY
	                                                ? HL_MEMORY_K
	                                                : RECALL_CANDIDATES },
	        err);
	if (rc < 0)
		goto fail;
	for (i = 0; i < n && json_array_size(similar) < HL_MEMORY_K; i++) {
		/* a memory stored by an older healer may hold a cut character
		 * or a credential: cleaned as a new note would be */
		char id[32], *what, *summary;
		double score = round(h[i].score * 1000.0) / 1000.0;

		if (!hl_memory_in_scope(scope, repository, h[i].repository))
			continue;
		what = recall_what(&h[i]);
		summary = note_dup(h[i].summary, NOTE_SUMMARY_MAX);

		snprintf(id, sizeof(id), "%lld", (long long)h[i].id);
		json_array_append_new(idl, json_string(id));
		json_array_append_new(similar,
		                      json_pack("{s:s, s:s?, s:f, s:s?}", "id", id, "summary", what,
		                                "score", score, "resolution", summary));
		if (h[i].outcome && strcmp(h[i].outcome, "succeeded") == 0)
			json_array_append_new(known, json_pack("{s:s, s:s?, s:f}", "id", id,
			                                       "summary", summary, "score", score));
		free(what);
		free(summary);
	}
	hl_memory_hits_free(h, n);
	*history = json_pack("{s:o, s:o}", "similar_failures", similar, "known_solutions", known);
	*ids = idl;
	return *history ? 0 : hl_err_set(err, HL_ENOMEM, "out of memory");
fail:
	json_decref(similar);
	json_decref(known);
	json_decref(idl);
	return rc;
}

/* A record healer wrote to OpenMemory (hl_memory_om_add_payload), parsed:
 * pointers into its content (the lengths say where each part ends). */
struct om_record {
	char task[HL_TASK_ID_MAX + 1], type[128], repo[256];
	const char *where, *evidence, *resolution; /* "workflow W, job J" */
	size_t where_len, evidence_len, resolution_len;
	bool succeeded; /* the head says so: ") succeeded." */
};

/* The outcome word of a record's head at p (") succeeded." or
 * ") escalated." ending the head): its length, 0 when p is not one. */
static size_t
om_outcome_at(const char *p, bool *succeeded)
{
	static const char ok[] = ") succeeded.", esc[] = ") escalated.";
	bool is_ok = strncmp(p, ok, sizeof(ok) - 1) == 0;
	size_t n = 0;

	if (is_ok)
		n = sizeof(ok) - 1;
	else if (strncmp(p, esc, sizeof(esc) - 1) == 0)
		n = sizeof(esc) - 1;
	if (!n || (p[n] && p[n] != ' ' && p[n] != '\n'))
		return 0;
	*succeeded = is_ok;
	return n;
}

/* The last occurrence of needle in s[0..n), or NULL. */
static const char *
om_last(const char *s, size_t n, const char *needle)
{
	size_t k = strlen(needle);
	const char *last = NULL, *p = s;

	while (n >= k && (p = memmem(p, n - (size_t)(p - s), needle, k))) {
		last = p;
		if ((size_t)(++p - s) > n - k)
			break;
	}
	return last;
}

/*
 * Parses a record healer wrote to OpenMemory: its head "healer task <id>:
 * <type> in <repo> (workflow W, job J) <succeeded|escalated>." says what
 * failed and how it ended (the outcome is read there, never from the text
 * that follows, which quotes the failure's log). What follows is, in a
 * record of this healer, the resolution (the note's summary) on the head's
 * line, then "\nEvidence: <line>."; in one of an older healer, " Evidence:
 * <line>." first, then the summary ("Fixed by ..." / "Escalated to people
 * after ..."). False for a memory healer did not write.
 */
static bool
om_record_parse(struct om_record *r, const char *content)
{
	static const char head[] = "healer task ", ev[] = "Evidence: ";
	const char *p, *colon, *in, *paren, *rest, *nl, *cut;
	size_t n = 0;

	memset(r, 0, sizeof(*r));
	if (strncmp(content, head, sizeof(head) - 1) != 0)
		return false;
	p = content + sizeof(head) - 1;
	if (!(colon = strstr(p, ": ")) || (size_t)(colon - p) >= sizeof(r->task))
		return false;
	snprintf(r->task, sizeof(r->task), "%.*s", (int)(colon - p), p);
	p = colon + 2;
	in = strstr(p, " in ");
	paren = in ? strstr(in + 4, " (") : NULL;
	if (!in || !paren || (size_t)(in - p) >= sizeof(r->type) ||
	    (size_t)(paren - in - 4) >= sizeof(r->repo))
		return false;
	snprintf(r->type, sizeof(r->type), "%.*s", (int)(in - p), p);
	snprintf(r->repo, sizeof(r->repo), "%.*s", (int)(paren - in - 4), in + 4);
	/* the head's end: the first outcome word after the repository */
	for (p = paren + 2; *p && *p != '\n'; p++)
		if ((n = om_outcome_at(p, &r->succeeded)))
			break;
	if (!n)
		return false;
	r->where = paren + 2;
	r->where_len = (size_t)(p - r->where);
	rest = p + n;
	while (*rest == ' ')
		rest++;
	if (strncmp(rest, ev, sizeof(ev) - 1) == 0) {
		/* an older healer's record: the evidence, then the summary */
		const char *e = rest + sizeof(ev) - 1;
		size_t len = strcspn(e, "\n");

		cut = om_last(e, len,
		              r->succeeded ? ". Fixed by " : ". Escalated to people after ");
		r->evidence = e;
		r->evidence_len = cut ? (size_t)(cut - e) : len;
		if (cut) {
			r->resolution = cut + 2;
			r->resolution_len = len - (size_t)(cut + 2 - e);
		}
		return true;
	}
	r->resolution = rest;
	r->resolution_len = strcspn(rest, "\n");
	nl = rest + r->resolution_len;
	if (*nl == '\n' && strncmp(nl + 1, ev, sizeof(ev) - 1) == 0) {
		r->evidence = nl + 1 + sizeof(ev) - 1;
		r->evidence_len = strcspn(r->evidence, "\n");
		if (r->evidence_len && r->evidence[r->evidence_len - 1] == '.')
			r->evidence_len--;
	}
	return true;
}

/* A record's "what failed" as the embedded recall writes it (recall_what):
 * "<type> in <repo> (workflow W, job J): <evidence>". */
static char *
om_record_what(const struct om_record *r)
{
	struct hl_buf b = HL_BUF_INIT(4096), ev = HL_BUF_INIT(NOTE_TEXT_MAX + 8);

	hl_buf_appendf(&b, "%s in %s (", r->type, r->repo);
	note_line(&b, r->where, r->where_len);
	hl_buf_append_char(&b, ')');
	if (r->evidence_len) {
		hl_buf_append(&ev, r->evidence, r->evidence_len);
		if (!hl_buf_error(&ev)) {
			hl_buf_append_str(&b, ": ");
			note_line(&b, ev.data, 300);
		}
	}
	hl_buf_release(&ev);
	return hl_buf_error(&b) ? (hl_buf_release(&b), NULL) : hl_buf_detach(&b, NULL);
}

json_t *
hl_memory_history_from_matches(const json_t *matches, const char *repository,
                               enum hl_memory_scope scope, const char *failure_type,
                               const char *exclude_task, json_t **ids)
{
	json_t *similar = json_array(), *known = json_array(), *m;
	size_t i;
	int pass;

	*ids = json_array();
	/* the repository's own records first, then the others', HL_MEMORY_K
	 * in all (OpenMemory was asked for more: most of its matches are
	 * left out here) */
	for (pass = 0; pass < 2; pass++) {
		json_array_foreach(matches, i, m)
		{
			const char *id = hl_json_str_or(m, "id", ""),
			           *content = hl_json_str_or(m, "content", "");
			json_t *score = json_object_get(m, "score");
			struct om_record r;
			char *what, *resolution = NULL;

			/* OpenMemory answers words shared with the query: only
			 * healer's records of this failure type, never this
			 * task's own (a retry's escalation record) */
			if (json_array_size(similar) >= HL_MEMORY_K ||
			    !om_record_parse(&r, content) ||
			    (exclude_task && strcmp(r.task, exclude_task) == 0) ||
			    (failure_type && strcmp(r.type, failure_type) != 0) ||
			    !hl_memory_in_scope(scope, repository, r.repo) ||
			    (pass == 0) != (repository && strcasecmp(r.repo, repository) == 0))
				continue;
			/* kept as the embedded memory's recall keeps a memory:
			 * what failed, and how it was resolved on one line of at
			 * most NOTE_SUMMARY_MAX bytes (OpenMemory takes 200,000
			 * characters a memory, and k of them would fill the
			 * prompt), no URL credentials */
			what = om_record_what(&r);
			if (r.resolution_len)
				resolution =
				        note_dup(r.resolution, r.resolution_len < NOTE_SUMMARY_MAX
				                                       ? r.resolution_len
				                                       : NOTE_SUMMARY_MAX);
			if (!what) {
				free(resolution);
				continue;
			}
			if (resolution && !*resolution) {
				free(resolution);
				resolution = NULL;
			}
			/* only ids OpenMemory gave: an empty one would be
			 * reinforced (and refused) after a success */
			if (*id)
				json_array_append_new(*ids, json_string(id));
			json_array_append_new(similar, json_pack("{s:s, s:s, s:O?, s:s?}", "id", id,
			                                         "summary", what, "score", score,
			                                         "resolution", resolution));
			/* a known solution is a record whose head says the task
			 * succeeded (never text after it: the evidence quotes the
			 * failure's log) */
			if (r.succeeded && resolution)
				json_array_append_new(known, json_pack("{s:s, s:s, s:O?}", "id", id,
				                                       "summary", resolution,
				                                       "score", score));
			free(what);
			free(resolution);
		}
	}
	return json_pack("{s:o, s:o}", "similar_failures", similar, "known_solutions", known);
}

json_t *
hl_memory_agent_records_json(const struct hl_agent_record *rec, size_t n)
{
	json_t *arr = json_array();
	size_t i;

	for (i = 0; arr && i < n; i++)
		json_array_append_new(arr, json_pack("{s:s, s:I, s:I}", "agent", rec[i].agent,
		                                     "finished", (json_int_t)rec[i].finished,
		                                     "succeeded", (json_int_t)rec[i].succeeded));
	return arr;
}
