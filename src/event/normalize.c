/*
 * normalize.c - turns a GitHub webhook or sensor payload into struct hl_event.
 *
 * One function per event family reads the payload through the borrowed
 * path accessors of json.h, so a missing key, a null or a value of the wrong
 * type reads as absent and never crashes: only the object an event cannot
 * exist without (workflow_job for workflow_job, alert for alerts, ...) and
 * the repository are required, and their absence fails with HL_EINVAL.
 *
 * Invariants: every string in the event is a private copy (the payload can
 * be freed right after), empty strings are stored as NULL, and intent is set
 * from the payload alone (validation against the configuration lives in
 * validate.c).
 *
 * Where the fields come from (besides repository / sender / installation):
 *   workflow_job   workflow_job.{id, run_id, run_attempt, workflow_name, name,
 *                  status, conclusion, head_branch, head_sha, html_url};
 *                  failed_step = first steps[] with conclusion failure. No
 *                  commit message: GitHub does not send one.
 *   workflow_run   workflow_run.{id, name, run_attempt, check_suite_id, status,
 *                  conclusion, head_branch, head_sha, head_commit.message,
 *                  html_url, logs_url, pull_requests[0].number / base.ref,
 *                  head_repository.full_name}
 *   check_run      check_run.{id, name, status, conclusion, head_sha, html_url,
 *                  output.*, check_suite.{id, head_branch},
 *                  pull_requests[0]}, requested_action.identifier; for the
 *                  github-actions app also job_id (= id) and run_id (from
 *                  details_url)
 *   check_suite    check_suite.{id, status, conclusion, head_branch, head_sha,
 *                  head_commit.message, pull_requests[0]}
 *   status         state (as status and conclusion), sha, context (job_name),
 *                  target_url, description, commit.commit.message, and the
 *                  branch of branches[] whose head is sha
 *   pull_request   number, pull_request.{title, state, html_url, head.ref,
 *                  head.sha, base.ref}
 *   push           ref (branches only), after, head_commit.message, compare
 *   issue_comment  comment.{id, body, html_url}; on PRs (issue.pull_request
 *                  present) issue.{number, title} and the /healer command
 *   pull_request_review  review.{id, state, body, html_url,
 *                  author_association}, pull_request.*; submitted with a
 *                  /healer command in its body, that command
 *   pull_request_review_comment  comment.{id, body, html_url} (a comment on
 *                  a line of the PR's diff), pull_request.{number, title}
 *                  and the /healer command
 *   merge_group    merge_group.{head_sha, head_ref, base_ref,
 *                  head_commit.message}
 *   dependabot_alert  alert.{number, state, html_url}, severity of the
 *                  advisory (else the vulnerability), dependency.{package,
 *                  manifest_path}, security_vulnerability.{range, first
 *                  patched}, security_advisory.{cve_id, ghsa_id, summary,
 *                  description}
 *   code_scanning_alert  alert.{number, state, html_url, rule.id,
 *                  rule.security_severity_level else rule.severity, tool.name,
 *                  most_recent_instance.location.path, rule.description,
 *                  rule.full_description}, ref (branch or PR), commit_oid
 *   secret_scanning_alert  alert.{number, state, html_url,
 *                  secret_type_display_name else secret_type}
 *   repository_vulnerability_alert  alert.{number else id, state,
 *                  affected_package_name, affected_range, fixed_in, severity,
 *                  ghsa_id, external_reference, external_identifier (CVE)}
 */
#include "base/buf.h"
#include "base/str.h"
#include "event/event.h"

#include "json/json.h"
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const event_kind_names[HL_EVENT_KIND_MAX] = {
	[HL_EVENT_UNKNOWN] = "unknown",
	[HL_EVENT_WORKFLOW_JOB] = "workflow_job",
	[HL_EVENT_WORKFLOW_RUN] = "workflow_run",
	[HL_EVENT_CHECK_RUN] = "check_run",
	[HL_EVENT_CHECK_SUITE] = "check_suite",
	[HL_EVENT_STATUS] = "status",
	[HL_EVENT_PULL_REQUEST] = "pull_request",
	[HL_EVENT_PUSH] = "push",
	[HL_EVENT_ISSUE_COMMENT] = "issue_comment",
	[HL_EVENT_PULL_REQUEST_REVIEW] = "pull_request_review",
	[HL_EVENT_PULL_REQUEST_REVIEW_COMMENT] = "pull_request_review_comment",
	[HL_EVENT_MERGE_GROUP] = "merge_group",
	[HL_EVENT_DEPENDABOT_ALERT] = "dependabot_alert",
	[HL_EVENT_CODE_SCANNING_ALERT] = "code_scanning_alert",
	[HL_EVENT_SECRET_SCANNING_ALERT] = "secret_scanning_alert",
	[HL_EVENT_REPOSITORY_VULNERABILITY_ALERT] = "repository_vulnerability_alert",
	[HL_EVENT_PING] = "ping",
};

const char *
hl_event_kind_name(enum hl_event_kind kind)
{
	if ((int)kind < 0 || kind >= HL_EVENT_KIND_MAX)
		return "unknown";
	return event_kind_names[kind];
}

enum hl_event_kind
hl_event_kind_from_name(const char *name)
{
	int k;

	if (!name)
		return HL_EVENT_UNKNOWN;
	for (k = 1; k < HL_EVENT_KIND_MAX; k++)
		if (strcmp(event_kind_names[k], name) == 0)
			return (enum hl_event_kind)k;
	return HL_EVENT_UNKNOWN;
}

const char *
hl_event_intent_name(enum hl_event_intent intent)
{
	switch (intent) {
	case HL_INTENT_NONE:
		return "none";
	case HL_INTENT_CI_FAILURE:
		return "ci_failure";
	case HL_INTENT_SECURITY:
		return "security";
	case HL_INTENT_COMMAND:
		return "command";
	case HL_INTENT_ACTION:
		return "action";
	case HL_INTENT_TRACK:
		return "track";
	}
	return "none";
}

const char *
hl_comment_command_name(enum hl_comment_command cmd)
{
	switch (cmd) {
	case HL_CMD_NONE:
		return "none";
	case HL_CMD_FIX:
		return "fix";
	case HL_CMD_RETRY:
		return "retry";
	case HL_CMD_STATUS:
		return "status";
	case HL_CMD_STOP:
		return "stop";
	}
	return "none";
}

bool
hl_event_conclusion_is_failure(const char *conclusion)
{
	if (!conclusion)
		return false;
	return strcmp(conclusion, "failure") == 0 || strcmp(conclusion, "timed_out") == 0 ||
	       strcmp(conclusion, "startup_failure") == 0;
}

/* ---- small helpers ---------------------------------------------------- */

/* The first member this thread's normalization read that holds a NUL
 * (hl_event_normalize refuses the payload), or NULL. */
static _Thread_local const char *event_nul_path;

/*
 * The string at path, or NULL. A string holding a NUL ("n\u0000ul") is
 * noted (event_nul_path) and read as absent: cut at the NUL it would be
 * another name ("n"), and two jobs, branches or contexts would share a key.
 */
static const char *
event_str(const json_t *root, const char *path)
{
	const json_t *v = hl_json_path(root, path);
	const char *s = json_string_value(v);

	if (s && strlen(s) != json_string_length(v)) {
		if (!event_nul_path)
			event_nul_path = path;
		return NULL;
	}
	return s;
}

/* A private copy of s; NULL for NULL or "". Sets *oom on allocation failure. */
static char *
event_dup(const char *s, bool *oom)
{
	char *d;

	if (!s || !*s)
		return NULL;
	d = strdup(s);
	if (!d)
		*oom = true;
	return d;
}

/* Copies the string at path (if any) into *dst, replacing nothing already set. */
static void
event_take(char **dst, const json_t *root, const char *path, bool *oom)
{
	if (*dst)
		return;
	*dst = event_dup(event_str(root, path), oom);
}

/*
 * A GitHub id: a positive JSON integer, a whole real up to 2^53 (exact in
 * a double: 1.0), or a string of decimal digits (as sensors may forward
 * it) that fits int64; 0 for anything else. A fraction (7.9), a sign,
 * spaces or a value out of range is no id: read leniently they would name
 * another object's id (7, or INT64_MAX for every huge one) and two
 * failures would share one key.
 */
static int64_t
event_id(const json_t *root, const char *path)
{
	const json_t *v = hl_json_path(root, path);
	const char *s, *p;
	int64_t n = 0;

	if (json_is_integer(v))
		return json_integer_value(v) > 0 ? (int64_t)json_integer_value(v) : 0;
	if (json_is_real(v)) {
		double d = json_real_value(v);
		return d >= 1 && d <= 0x1p53 && d == (double)(int64_t)d ? (int64_t)d : 0;
	}
	if (!json_is_string(v) || !*(s = json_string_value(v)) ||
	    strlen(s) != json_string_length(v))
		return 0;
	for (p = s; *p; p++) {
		if (*p < '0' || *p > '9' || n > (INT64_MAX - (*p - '0')) / 10)
			return 0;
		n = n * 10 + (*p - '0');
	}
	return n;
}

/* "refs/heads/main" -> "main"; other refs are kept as they are. */
static void
event_take_branch(char **dst, const json_t *root, const char *path, bool *oom)
{
	const char *ref = event_str(root, path);

	if (*dst || !ref)
		return;
	if (hl_str_starts_with(ref, "refs/heads/"))
		ref += strlen("refs/heads/");
	*dst = event_dup(ref, oom);
}

/* ---- /healer comment commands ----------------------------------------- */

static bool
event_is_hspace(char c)
{
	return c == ' ' || c == '\t';
}

/*
 * Parses one line [p, e) of a comment. A command is "/healer" (any case)
 * followed by a space or tab and one of fix / retry / status / stop (any
 * case), followed by a space, tab or the end of the line. The rest of the
 * line is the hint of fix and retry.
 */
static enum hl_comment_command
event_parse_line(const char *p, const char *e, const char **rest)
{
	static const struct {
		const char *word;
		enum hl_comment_command cmd;
	} verbs[] = {
		{ "fix", HL_CMD_FIX },
		{ "retry", HL_CMD_RETRY },
		{ "status", HL_CMD_STATUS },
		{ "stop", HL_CMD_STOP },
	};
	size_t i, n;

	if ((size_t)(e - p) < 8 || strncasecmp(p, "/healer", 7) != 0 || !event_is_hspace(p[7]))
		return HL_CMD_NONE;
	p += 7;
	while (p < e && event_is_hspace(*p))
		p++;
	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		n = strlen(verbs[i].word);
		if ((size_t)(e - p) >= n && strncasecmp(p, verbs[i].word, n) == 0 &&
		    (p + n == e || event_is_hspace(p[n]))) {
			*rest = p + n;
			return verbs[i].cmd;
		}
	}
	return HL_CMD_NONE;
}

/* The column after n bytes of leading spaces and tabs at p (tab stops of 4). */
static size_t
event_columns(const char *p, size_t n)
{
	size_t i, col = 0;

	for (i = 0; i < n; i++)
		col = p[i] == '\t' ? (col + 4) & ~(size_t)3 : col + 1;
	return col;
}

/*
 * Skips the block quote ('>') and list item markers ("-", "*", "+", "N."
 * or "N)" followed by a space or tab) that open a line [*pp, e), each after
 * at most three spaces, and the spaces after them. *bq gets the number of
 * '>'; the return is the column the rest starts at, counted from the last
 * '>' (a list item's content column: its later lines are indented as much).
 */
static size_t
event_containers(const char **pp, const char *e, int *bq)
{
	const char *p = *pp, *base = *pp, *q;
	size_t col = 0;

	*bq = 0;
	for (;;) {
		q = p;
		while (q < e && *q == ' ' && q - p < 3)
			q++;
		if (q < e && *q == '>') {
			p = q + 1;
			if (p < e && event_is_hspace(*p))
				p++;
			base = p;
			col = 0;
			(*bq)++;
			continue;
		}
		if (q < e && (*q == '-' || *q == '*' || *q == '+')) {
			q++;
		} else {
			const char *d = q;

			while (q < e && *q >= '0' && *q <= '9' && q - d < 9)
				q++;
			if (q == d || q >= e || (*q != '.' && *q != ')'))
				break;
			q++;
		}
		if (q >= e || !event_is_hspace(*q))
			break;
		while (q < e && event_is_hspace(*q))
			q++;
		col = event_columns(base, (size_t)(q - base));
		p = q;
	}
	*pp = p;
	return col;
}

/* Raw HTML whose content GitHub shows as code or not at all. */
/* Tags whose content GitHub shows as code or not at all; the first
 * EVENT_HTML_BLOCK_TAGS open an HTML block at a line's start (CommonMark
 * type 1), the others only inline HTML. */
static const char *const event_html_tags[] = { "pre", "script", "style", "textarea", "code" };
#define EVENT_HTML_BLOCK_TAGS 4
/* event_html_scan's states besides 0 (outside) */
#define EVENT_HTML_COMMENT_BLOCK  (-1)
#define EVENT_HTML_COMMENT_INLINE (-2)
#define EVENT_HTML_TAG_BLOCK      1  /* + the tag's index */
#define EVENT_HTML_TAG_INLINE     11 /* + the tag's index */

/* Finds needle (ASCII, any case) in [p, e); NULL when absent. */
static const char *
event_find_ci(const char *p, const char *e, const char *needle)
{
	size_t n = strlen(needle);

	for (; (size_t)(e - p) >= n; p++)
		if (strncasecmp(p, needle, n) == 0)
			return p;
	return NULL;
}

/* Whether [p, e) holds only spaces and tabs. */
static bool
event_blank(const char *p, const char *e)
{
	while (p < e && event_is_hspace(*p))
		p++;
	return p >= e;
}

/*
 * Follows raw HTML that hides text or shows it as code, over the line
 * [p, e) (outside: p is the line's content, past indentation and container
 * markers): *html is 0 outside, else one of the EVENT_HTML_ states. An HTML
 * comment or a block tag starting the content opens a block (CommonMark
 * types 1 and 2) that ends with the line holding its "-->" or "</tag" (the
 * rest of that line is still the block's); elsewhere in a line, raw HTML is
 * inline, inside its paragraph: it ends at its closer or at a blank line.
 * Code spans are skipped: "a stray `<!--`" hides nothing, as GitHub renders
 * it.
 */
static void
event_html_scan(const char *p, const char *e, int *html)
{
	const char *content = p;
	char close[16];
	size_t i, n, run;

	if (*html != 0) {
		bool block = *html == EVENT_HTML_COMMENT_BLOCK ||
		             (*html >= EVENT_HTML_TAG_BLOCK && *html < EVENT_HTML_TAG_INLINE);
		const char *q;

		if (!block && event_blank(p, e)) {
			*html = 0; /* the paragraph ended */
			return;
		}
		if (*html < 0)
			snprintf(close, sizeof(close), "-->");
		else
			snprintf(close, sizeof(close), "</%s",
			         event_html_tags[*html - (block ? EVENT_HTML_TAG_BLOCK
			                                        : EVENT_HTML_TAG_INLINE)]);
		q = event_find_ci(p, e, close);
		if (!q)
			return;
		*html = 0;
		if (block)
			return;
		p = q + strlen(close);
		content = NULL; /* the rest of the line is no line start */
	}
	while (p < e) {
		const char *q, *end;
		bool start = p == content;

		if (*p == '`') {
			for (run = 0; p + run < e && p[run] == '`'; run++)
				;
			/* a code span: the next run of as many backticks */
			for (q = p + run; q < e; q++) {
				size_t r = 0;

				while (q + r < e && q[r] == '`')
					r++;
				if (r == run)
					break;
				q += r;
			}
			p = q < e ? q + run : p + run;
			continue;
		}
		if (*p != '<') {
			p++;
			continue;
		}
		q = p + 1;
		if (e - q >= 3 && strncmp(q, "!--", 3) == 0) {
			end = event_find_ci(q + 3, e, "-->");
			if (!end) {
				*html = start ? EVENT_HTML_COMMENT_BLOCK
				              : EVENT_HTML_COMMENT_INLINE;
				return;
			}
			if (start)
				return; /* a block of one line */
			p = end + 3;
			continue;
		}
		for (i = 0; i < sizeof(event_html_tags) / sizeof(event_html_tags[0]); i++) {
			n = strlen(event_html_tags[i]);
			if ((size_t)(e - q) >= n && strncasecmp(q, event_html_tags[i], n) == 0 &&
			    (q + n == e || q[n] == '>' || event_is_hspace(q[n])))
				break;
		}
		if (i == sizeof(event_html_tags) / sizeof(event_html_tags[0])) {
			p++;
			continue;
		}
		snprintf(close, sizeof(close), "</%s", event_html_tags[i]);
		end = event_find_ci(q + n, e, close);
		if (start && i < EVENT_HTML_BLOCK_TAGS) {
			if (!end)
				*html = EVENT_HTML_TAG_BLOCK + (int)i;
			return;
		}
		if (!end) {
			*html = EVENT_HTML_TAG_INLINE + (int)i;
			return;
		}
		p = end + strlen(close);
	}
}

/*
 * Whether a line [line, e) inside a fence opened in fence_bq block quotes
 * and at content column fence_col still belongs to it (false: its block
 * quote or list item ended, which closes the fence). *closes tells whether
 * the line is the closing fence.
 */
static bool
event_fence_line(const char *line, const char *e, int fence_bq, size_t fence_col, char fence_ch,
                 size_t fence_len, bool *closes)
{
	const char *q;
	size_t run, lead;
	int i;

	*closes = false;
	for (i = 0; i < fence_bq; i++) {
		while (line < e && *line == ' ')
			line++;
		if (line >= e || *line != '>')
			return false;
		line++;
		if (line < e && event_is_hspace(*line))
			line++;
	}
	for (q = line; q < e && event_is_hspace(*q);)
		q++;
	if (q == e)
		return true; /* a blank line ends no list item */
	lead = event_columns(line, (size_t)(q - line));
	if (lead < fence_col)
		return false;
	if (lead - fence_col > 3)
		return true;
	for (run = 0; q + run < e && q[run] == fence_ch; run++)
		;
	q += run;
	while (q < e && event_is_hspace(*q))
		q++;
	*closes = run >= fence_len && q == e;
	return true;
}

int
hl_event_parse_command(enum hl_comment_command *out, char **hint_out, const char *body)
{
	const char *p = body, *e, *line, *f, *rest = NULL;
	char fence_ch = 0; /* the open fence's character, 0 outside */
	size_t fence_len = 0, fence_col = 0, run;
	enum hl_comment_command cmd = HL_CMD_NONE;
	char *hint = NULL;
	int indent, fence_bq = 0, bq, html = 0;
	bool closes;

	while (body && *p) {
		e = strchr(p, '\n');
		if (!e)
			e = p + strlen(p);
		line = p;
		p = *e ? e + 1 : e;
		if (e > line && e[-1] == '\r')
			e--;
		if (fence_ch) {
			if (event_fence_line(line, e, fence_bq, fence_col, fence_ch, fence_len,
			                     &closes)) {
				if (closes)
					fence_ch = 0;
				continue;
			}
			fence_ch = 0; /* its block quote or list item ended */
		}
		if (html) {
			/* inside an HTML comment or <pre>: hidden or code */
			event_html_scan(line, e, &html);
			continue;
		}
		/* Markdown: up to three spaces of indentation keep a line a line;
		 * four make it a code block, and fenced blocks are code too. */
		f = line;
		for (indent = 0; line < e && *line == ' ' && indent < 4; indent++)
			line++;
		if (indent == 4 || (line < e && *line == '\t'))
			continue;
		/* a fence opens with three or more ` or ~, also in a block quote
		 * or list item; only a run of the same character at least as
		 * long, and nothing else, closes it */
		fence_col = event_containers(&f, e, &bq);
		if (!bq && !fence_col) {
			f = line;
			fence_col = 0;
		}
		for (run = 0; f + run < e && (f[run] == '`' || f[run] == '~') && f[run] == f[0];
		     run++)
			;
		/* (a backtick fence's info string holds no backtick: "```x```" is
		 * inline code) */
		if (run >= 3 && !(f[0] == '`' && memchr(f + run, '`', (size_t)(e - f - run)))) {
			fence_ch = f[0];
			fence_len = run;
			fence_bq = bq;
			continue;
		}
		cmd = event_parse_line(line, e, &rest);
		if (cmd != HL_CMD_NONE)
			break;
		event_html_scan(f, e, &html);
	}
	if (cmd == HL_CMD_FIX || cmd == HL_CMD_RETRY) {
		size_t n = (size_t)(e - rest);
		char *raw = malloc(n + 1);

		if (!raw)
			return -HL_ENOMEM;
		memcpy(raw, rest, n);
		raw[n] = '\0';
		hint = hl_str_trim_dup(raw);
		free(raw);
		if (!hint)
			return -HL_ENOMEM;
		if (!*hint) {
			free(hint);
			hint = NULL;
		}
	}
	*out = cmd;
	if (hint_out)
		*hint_out = hint;
	else
		free(hint);
	return 0;
}

/* ---- per-event normalization ------------------------------------------ */

static const char *const event_repository_keys[] = { "full_name", "html_url", "default_branch",
	                                             NULL };
static const char *const event_sender_keys[] = { "login", "type", NULL };
static const char *const event_installation_keys[] = { "id", NULL };

/* Keep in step with event_common and hl_event_normalize's checks: the
 * only reads of these members. */
const struct hl_json_prune_rule hl_event_prune_rules[] = {
	{ "repository", event_repository_keys },
	{ "sender", event_sender_keys },
	{ "installation", event_installation_keys },
	{ "organization", NULL },
	{ "enterprise", NULL },
	{ NULL, NULL },
};

/* Repository, sender, installation: present on (almost) every event. */
static void
event_common(struct hl_event *ev, const json_t *pl, bool *oom)
{
	const char *type = event_str(pl, "sender.type");

	event_take(&ev->repository, pl, "repository.full_name", oom);
	event_take(&ev->repository_url, pl, "repository.html_url", oom);
	event_take(&ev->default_branch, pl, "repository.default_branch", oom);
	event_take(&ev->sender, pl, "sender.login", oom);
	ev->sender_is_bot = (ev->sender && hl_str_ends_with(ev->sender, "[bot]")) ||
	                    (type && strcmp(type, "Bot") == 0);
	ev->installation_id = event_id(pl, "installation.id");
}

/* The first step whose conclusion is failure. */
static void
event_failed_step(struct hl_event *ev, const json_t *steps, bool *oom)
{
	size_t i;
	json_t *step;

	if (!json_is_array(steps))
		return;
	json_array_foreach(steps, i, step)
	{
		const char *c = event_str(step, "conclusion");
		if (c && strcmp(c, "failure") == 0) {
			event_take(&ev->failed_step, step, "name", oom);
			if (ev->failed_step)
				return;
		}
	}
}

/* The first entry of a pull_requests array: number and base branch. */
static void
event_first_pr(struct hl_event *ev, const json_t *obj, bool *oom)
{
	if (!ev->pr_number)
		ev->pr_number = event_id(obj, "pull_requests[0].number");
	event_take(&ev->base_branch, obj, "pull_requests[0].base.ref", oom);
}

static void
event_ci_intent(struct hl_event *ev)
{
	ev->intent = hl_event_conclusion_is_failure(ev->conclusion) ? HL_INTENT_CI_FAILURE
	                                                            : HL_INTENT_TRACK;
}

static void
event_workflow_job(struct hl_event *ev, const json_t *j, bool *oom)
{
	ev->job_id = event_id(j, "id");
	ev->run_id = event_id(j, "run_id");
	ev->run_attempt = event_id(j, "run_attempt");
	event_take(&ev->workflow_name, j, "workflow_name", oom);
	event_take(&ev->job_name, j, "name", oom);
	event_take(&ev->status, j, "status", oom);
	event_take(&ev->conclusion, j, "conclusion", oom);
	event_take(&ev->branch, j, "head_branch", oom);
	event_take(&ev->head_sha, j, "head_sha", oom);
	event_take(&ev->html_url, j, "html_url", oom);
	event_failed_step(ev, json_object_get(j, "steps"), oom);
	event_ci_intent(ev);
}

static void
event_workflow_run(struct hl_event *ev, const json_t *r, bool *oom)
{
	ev->run_id = event_id(r, "id");
	ev->run_attempt = event_id(r, "run_attempt");
	ev->check_suite_id = event_id(r, "check_suite_id");
	event_take(&ev->workflow_name, r, "name", oom);
	event_take(&ev->status, r, "status", oom);
	event_take(&ev->conclusion, r, "conclusion", oom);
	event_take(&ev->branch, r, "head_branch", oom);
	event_take(&ev->head_sha, r, "head_sha", oom);
	event_take(&ev->head_repository, r, "head_repository.full_name", oom);
	event_take(&ev->commit_message, r, "head_commit.message", oom);
	event_take(&ev->html_url, r, "html_url", oom);
	event_take(&ev->logs_url, r, "logs_url", oom);
	event_first_pr(ev, r, oom);
	event_ci_intent(ev);
}

int64_t
hl_event_run_id_from_url(const char *url)
{
	const char *p = url ? strstr(url, "/actions/runs/") : NULL;
	char *end;
	long long n;

	if (!p)
		return 0;
	p += strlen("/actions/runs/");
	if (!isdigit((unsigned char)*p))
		return 0;
	errno = 0;
	n = strtoll(p, &end, 10);
	return (n > 0 && !errno && (*end == '/' || *end == '\0' || *end == '?' || *end == '#')) ? n
	                                                                                        : 0;
}

static void
event_check_run(struct hl_event *ev, const json_t *pl, const json_t *c, bool *oom)
{
	const char *app = event_str(c, "app.slug");

	ev->check_run_id = event_id(c, "id");
	/* A GitHub Actions check run is a workflow job: same id, and its
	 * details_url names the run (.../actions/runs/RUN/job/JOB). */
	if (app && strcmp(app, "github-actions") == 0) {
		ev->job_id = ev->check_run_id;
		ev->run_id = hl_event_run_id_from_url(event_str(c, "details_url"));
	}
	ev->check_suite_id = event_id(c, "check_suite.id");
	event_take(&ev->job_name, c, "name", oom);
	event_take(&ev->status, c, "status", oom);
	event_take(&ev->conclusion, c, "conclusion", oom);
	event_take(&ev->branch, c, "check_suite.head_branch", oom);
	event_take(&ev->head_sha, c, "head_sha", oom);
	event_take(&ev->head_sha, c, "check_suite.head_sha", oom);
	event_take(&ev->html_url, c, "html_url", oom);
	event_take(&ev->check_output_title, c, "output.title", oom);
	event_take(&ev->check_output_summary, c, "output.summary", oom);
	event_take(&ev->check_output_text, c, "output.text", oom);
	event_first_pr(ev, c, oom);
	event_take(&ev->requested_action, pl, "requested_action.identifier", oom);
	if (ev->action && strcmp(ev->action, "requested_action") == 0)
		ev->intent = HL_INTENT_ACTION;
	else
		event_ci_intent(ev);
}

static void
event_check_suite(struct hl_event *ev, const json_t *s, bool *oom)
{
	ev->check_suite_id = event_id(s, "id");
	event_take(&ev->status, s, "status", oom);
	event_take(&ev->conclusion, s, "conclusion", oom);
	event_take(&ev->branch, s, "head_branch", oom);
	event_take(&ev->head_sha, s, "head_sha", oom);
	event_take(&ev->commit_message, s, "head_commit.message", oom);
	event_first_pr(ev, s, oom);
	event_ci_intent(ev);
}

static void
event_status(struct hl_event *ev, const json_t *pl, bool *oom)
{
	const char *sha = event_str(pl, "sha");
	json_t *branches = json_object_get(pl, "branches"), *b;
	size_t i;

	event_take(&ev->status, pl, "state", oom);
	event_take(&ev->conclusion, pl, "state", oom);
	event_take(&ev->head_sha, pl, "sha", oom);
	event_take(&ev->job_name, pl, "context", oom);
	event_take(&ev->html_url, pl, "target_url", oom);
	event_take(&ev->description, pl, "description", oom);
	event_take(&ev->commit_message, pl, "commit.commit.message", oom);
	/* branches lists every branch containing the commit; the one whose
	 * head is this commit is the branch the status is about. */
	if (json_is_array(branches) && sha) {
		json_array_foreach(branches, i, b)
		{
			const char *head = event_str(b, "commit.sha");
			if (head && strcmp(head, sha) == 0) {
				event_take(&ev->branch, b, "name", oom);
				break;
			}
		}
	}
	if (ev->conclusion &&
	    (strcmp(ev->conclusion, "failure") == 0 || strcmp(ev->conclusion, "error") == 0))
		ev->intent = HL_INTENT_CI_FAILURE;
	else
		ev->intent = HL_INTENT_TRACK;
}

/* head/base/sha/title of a pull_request object. */
static void
event_pr_object(struct hl_event *ev, const json_t *pr, bool *oom)
{
	if (!ev->pr_number)
		ev->pr_number = event_id(pr, "number");
	event_take(&ev->pr_title, pr, "title", oom);
	event_take(&ev->branch, pr, "head.ref", oom);
	event_take(&ev->base_branch, pr, "base.ref", oom);
	event_take(&ev->head_sha, pr, "head.sha", oom);
}

static void
event_pull_request(struct hl_event *ev, const json_t *pl, const json_t *pr, bool *oom)
{
	ev->pr_number = event_id(pl, "number");
	event_pr_object(ev, pr, oom);
	event_take(&ev->status, pr, "state", oom);
	event_take(&ev->html_url, pr, "html_url", oom);
	/* how a closed PR ended: merged (GitHub's `merged`, or a merge time),
	 * or closed unmerged; the loop stops the PR's remediations either way */
	if (ev->action && strcmp(ev->action, "closed") == 0)
		ev->conclusion = event_dup(json_is_true(hl_json_path(pr, "merged")) ||
		                                           event_str(pr, "merged_at")
		                                   ? "merged"
		                                   : "closed",
		                           oom);
	ev->intent = HL_INTENT_TRACK;
}

static void
event_push(struct hl_event *ev, const json_t *pl, bool *oom)
{
	const char *ref = event_str(pl, "ref");

	/* Only branch pushes have a branch; a tag push leaves it NULL. */
	if (ref && hl_str_starts_with(ref, "refs/heads/"))
		event_take_branch(&ev->branch, pl, "ref", oom);
	event_take(&ev->head_sha, pl, "after", oom);
	event_take(&ev->commit_message, pl, "head_commit.message", oom);
	event_take(&ev->html_url, pl, "compare", oom);
	ev->intent = HL_INTENT_TRACK;
}

/* The comment's id, author, body and link; no command yet. */
static void
event_comment(struct hl_event *ev, const json_t *pl, bool *oom)
{
	const char *type = event_str(pl, "comment.user.type");

	ev->comment_id = event_id(pl, "comment.id");
	/* The comment's author is who gives a command: the sender for real
	 * deliveries, comment.user when a sensor forwards only the comment. */
	if (!ev->sender) {
		event_take(&ev->sender, pl, "comment.user.login", oom);
		ev->sender_is_bot = ev->sender && hl_str_ends_with(ev->sender, "[bot]");
	}
	if (type && strcmp(type, "Bot") == 0)
		ev->sender_is_bot = true;
	event_take(&ev->comment_body, pl, "comment.body", oom);
	event_take(&ev->html_url, pl, "comment.html_url", oom);
	event_take(&ev->author_association, pl, "comment.author_association", oom);
	ev->intent = HL_INTENT_NONE;
}

/* The /healer command of a comment on a PR, if any. */
static int
event_comment_command(struct hl_event *ev, const json_t *pr, bool *oom)
{
	int rc;

	ev->pr_number = event_id(pr, "number");
	event_take(&ev->pr_title, pr, "title", oom);
	rc = hl_event_parse_command(&ev->command, &ev->command_hint, ev->comment_body);
	if (rc)
		return rc;
	if (ev->command != HL_CMD_NONE)
		ev->intent = HL_INTENT_COMMAND;
	return 0;
}

static int
event_issue_comment(struct hl_event *ev, const json_t *pl, bool *oom)
{
	const json_t *issue = json_object_get(pl, "issue");

	event_comment(ev, pl, oom);
	/* a comment on a plain issue gives no command */
	if (!json_is_object(json_object_get(issue, "pull_request")))
		return 0;
	return event_comment_command(ev, issue, oom);
}

/* The longest file path a review comment's hint names. */
#define EVENT_HINT_PATH_MAX 300

/*
 * A comment on a line of the PR's diff: commands as in the PR's
 * conversation (the PR's head is read from GitHub when one is obeyed).
 * Where it points is part of what a fix or retry asks: the hint begins
 * with "on <path> line <n>" (lines <start>-<n> for a range; the line it
 * was written on when the diff moved since), or is that alone.
 */
static int
event_pull_request_review_comment(struct hl_event *ev, const json_t *pl, bool *oom)
{
	const char *path;
	int64_t line, start;
	struct hl_buf b = HL_BUF_INIT(0);
	size_t n;
	int rc;

	event_comment(ev, pl, oom);
	rc = event_comment_command(ev, json_object_get(pl, "pull_request"), oom);
	path = event_str(pl, "comment.path");
	if (rc || !path || !*path || (ev->command != HL_CMD_FIX && ev->command != HL_CMD_RETRY))
		return rc;
	line = event_id(pl, "comment.line");
	start = event_id(pl, "comment.start_line");
	if (line <= 0) {
		line = event_id(pl, "comment.original_line");
		start = event_id(pl, "comment.original_start_line");
	}
	/* cut on a character's first byte */
	n = strlen(path);
	if (n > EVENT_HINT_PATH_MAX)
		for (n = EVENT_HINT_PATH_MAX; n > 0 && ((unsigned char)path[n] & 0xC0) == 0x80; n--)
			;
	hl_buf_appendf(&b, "on %.*s", (int)n, path);
	if (line > 0 && start > 0 && start < line)
		hl_buf_appendf(&b, " lines %lld-%lld", (long long)start, (long long)line);
	else if (line > 0)
		hl_buf_appendf(&b, " line %lld", (long long)line);
	if (ev->command_hint)
		hl_buf_appendf(&b, ": %s", ev->command_hint);
	if (hl_buf_error(&b)) {
		hl_buf_release(&b);
		*oom = true;
		return 0;
	}
	free(ev->command_hint);
	ev->command_hint = hl_buf_detach(&b, NULL);
	if (!ev->command_hint)
		*oom = true;
	return 0;
}

/* A review: tracked, or, submitted with a /healer command in its body, that
 * command (a review has no comment id: no reaction is possible). */
static int
event_pull_request_review(struct hl_event *ev, const json_t *pl, bool *oom)
{
	ev->review_id = event_id(pl, "review.id");
	event_pr_object(ev, json_object_get(pl, "pull_request"), oom);
	event_take(&ev->review_state, pl, "review.state", oom);
	event_take(&ev->comment_body, pl, "review.body", oom);
	event_take(&ev->html_url, pl, "review.html_url", oom);
	event_take(&ev->author_association, pl, "review.author_association", oom);
	ev->intent = HL_INTENT_TRACK;
	if (!ev->action || strcmp(ev->action, "submitted") != 0)
		return 0;
	if (!ev->sender) {
		event_take(&ev->sender, pl, "review.user.login", oom);
		ev->sender_is_bot = ev->sender && hl_str_ends_with(ev->sender, "[bot]");
	}
	return event_comment_command(ev, json_object_get(pl, "pull_request"), oom);
}

static void
event_merge_group(struct hl_event *ev, const json_t *mg, bool *oom)
{
	event_take(&ev->head_sha, mg, "head_sha", oom);
	event_take_branch(&ev->branch, mg, "head_ref", oom);
	event_take_branch(&ev->base_branch, mg, "base_ref", oom);
	event_take(&ev->commit_message, mg, "head_commit.message", oom);
	ev->intent = HL_INTENT_TRACK;
}

static void
event_dependabot_alert(struct hl_event *ev, const json_t *a, bool *oom)
{
	ev->alert_number = event_id(a, "number");
	event_take(&ev->alert_state, a, "state", oom);
	event_take(&ev->alert_updated_at, a, "updated_at", oom);
	event_take(&ev->html_url, a, "html_url", oom);
	event_take(&ev->severity, a, "security_advisory.severity", oom);
	event_take(&ev->severity, a, "security_vulnerability.severity", oom);
	event_take(&ev->package_name, a, "dependency.package.name", oom);
	event_take(&ev->package_name, a, "security_vulnerability.package.name", oom);
	event_take(&ev->package_ecosystem, a, "dependency.package.ecosystem", oom);
	event_take(&ev->package_ecosystem, a, "security_vulnerability.package.ecosystem", oom);
	event_take(&ev->manifest_path, a, "dependency.manifest_path", oom);
	event_take(&ev->vulnerable_range, a, "security_vulnerability.vulnerable_version_range",
	           oom);
	event_take(&ev->fixed_version, a, "security_vulnerability.first_patched_version.identifier",
	           oom);
	event_take(&ev->cve_id, a, "security_advisory.cve_id", oom);
	event_take(&ev->ghsa_id, a, "security_advisory.ghsa_id", oom);
	event_take(&ev->summary, a, "security_advisory.summary", oom);
	event_take(&ev->description, a, "security_advisory.description", oom);
	ev->intent = HL_INTENT_SECURITY;
}

/* An analysed ref: "refs/heads/B" is branch B, "refs/pull/N/merge" (or
 * /head) is PR N; the first ref that says something wins. */
static void
event_code_scanning_ref(struct hl_event *ev, const char *ref, bool *oom)
{
	char *end;
	long long n;

	if (!ref || ev->branch || ev->pr_number)
		return;
	if (hl_str_starts_with(ref, "refs/heads/")) {
		ev->branch = event_dup(ref + strlen("refs/heads/"), oom);
	} else if (hl_str_starts_with(ref, "refs/pull/")) {
		errno = 0;
		n = strtoll(ref + strlen("refs/pull/"), &end, 10);
		if (n > 0 && !errno && *end == '/')
			ev->pr_number = n;
	}
}

static void
event_code_scanning_alert(struct hl_event *ev, const json_t *pl, const json_t *a, bool *oom)
{
	ev->alert_number = event_id(a, "number");
	event_take(&ev->alert_state, a, "state", oom);
	event_take(&ev->alert_updated_at, a, "updated_at", oom);
	event_take(&ev->html_url, a, "html_url", oom);
	event_take(&ev->rule_id, a, "rule.id", oom);
	event_take(&ev->severity, a, "rule.security_severity_level", oom);
	event_take(&ev->severity, a, "rule.severity", oom);
	event_take(&ev->tool_name, a, "tool.name", oom);
	event_take(&ev->location_path, a, "most_recent_instance.location.path", oom);
	event_take(&ev->summary, a, "rule.description", oom);
	event_take(&ev->description, a, "rule.full_description", oom);
	event_code_scanning_ref(ev, event_str(pl, "ref"), oom);
	event_code_scanning_ref(ev, event_str(a, "most_recent_instance.ref"), oom);
	event_take(&ev->head_sha, pl, "commit_oid", oom);
	event_take(&ev->head_sha, a, "most_recent_instance.commit_sha", oom);
	ev->intent = HL_INTENT_SECURITY;
}

static void
event_secret_scanning_alert(struct hl_event *ev, const json_t *a, bool *oom)
{
	ev->alert_number = event_id(a, "number");
	event_take(&ev->alert_state, a, "state", oom);
	event_take(&ev->alert_updated_at, a, "updated_at", oom);
	event_take(&ev->html_url, a, "html_url", oom);
	event_take(&ev->secret_type, a, "secret_type_display_name", oom);
	event_take(&ev->secret_type, a, "secret_type", oom);
	ev->intent = HL_INTENT_SECURITY;
}

static void
event_repository_vulnerability_alert(struct hl_event *ev, const json_t *a, bool *oom)
{
	const char *ext;

	ev->alert_number = event_id(a, "number");
	if (!ev->alert_number)
		ev->alert_number = event_id(a, "id");
	event_take(&ev->alert_state, a, "state", oom);
	event_take(&ev->alert_updated_at, a, "updated_at", oom);
	event_take(&ev->package_name, a, "affected_package_name", oom);
	event_take(&ev->vulnerable_range, a, "affected_range", oom);
	event_take(&ev->fixed_version, a, "fixed_in", oom);
	event_take(&ev->severity, a, "severity", oom);
	event_take(&ev->ghsa_id, a, "ghsa_id", oom);
	event_take(&ev->html_url, a, "external_reference", oom);
	event_take(&ev->manifest_path, a, "manifest_path", oom);
	/* external_identifier is a CVE id when the advisory has one. */
	ext = event_str(a, "external_identifier");
	if (ext && hl_str_starts_with(ext, "CVE-"))
		event_take(&ev->cve_id, a, "external_identifier", oom);
	ev->intent = HL_INTENT_SECURITY;
}

/* The object an event kind cannot be normalized without, or NULL. */
static const char *
event_required_object(enum hl_event_kind kind)
{
	switch (kind) {
	case HL_EVENT_WORKFLOW_JOB:
		return "workflow_job";
	case HL_EVENT_WORKFLOW_RUN:
		return "workflow_run";
	case HL_EVENT_CHECK_RUN:
		return "check_run";
	case HL_EVENT_CHECK_SUITE:
		return "check_suite";
	case HL_EVENT_PULL_REQUEST:
	case HL_EVENT_PULL_REQUEST_REVIEW:
		return "pull_request";
	case HL_EVENT_ISSUE_COMMENT:
	case HL_EVENT_PULL_REQUEST_REVIEW_COMMENT:
		return "comment";
	case HL_EVENT_MERGE_GROUP:
		return "merge_group";
	case HL_EVENT_DEPENDABOT_ALERT:
	case HL_EVENT_CODE_SCANNING_ALERT:
	case HL_EVENT_SECRET_SCANNING_ALERT:
	case HL_EVENT_REPOSITORY_VULNERABILITY_ALERT:
		return "alert";
	default:
		return NULL;
	}
}

int
hl_event_normalize(struct hl_event **out, const char *event_name, const json_t *payload,
                   struct hl_err *err)
{
	enum hl_event_kind kind = hl_event_kind_from_name(event_name);
	struct hl_event *ev = NULL;
	const char *req, *repo;
	const json_t *obj = NULL;
	bool oom = false;
	int rc = 0;

	event_nul_path = NULL;
	if (kind == HL_EVENT_UNKNOWN)
		return hl_err_set(err, HL_EUNSUPPORTED, "unsupported event '%s'",
		                  event_name ? event_name : "");
	if (!json_is_object(payload))
		return hl_err_set(err, HL_EINVAL, "'%s' payload is not a JSON object", event_name);
	req = event_required_object(kind);
	if (req) {
		obj = json_object_get(payload, req);
		if (!json_is_object(obj))
			return hl_err_set(err, HL_EINVAL, "'%s' payload has no '%s' object",
			                  event_name, req);
	}
	if (kind == HL_EVENT_ISSUE_COMMENT && !json_is_object(json_object_get(payload, "issue")))
		return hl_err_set(err, HL_EINVAL, "'%s' payload has no '%s' object", event_name,
		                  "issue");
	if ((kind == HL_EVENT_PULL_REQUEST_REVIEW ||
	     kind == HL_EVENT_PULL_REQUEST_REVIEW_COMMENT) &&
	    !json_is_object(json_object_get(
	            payload, kind == HL_EVENT_PULL_REQUEST_REVIEW ? "review" : "pull_request")))
		return hl_err_set(err, HL_EINVAL, "'%s' payload has no '%s' object", event_name,
		                  kind == HL_EVENT_PULL_REQUEST_REVIEW ? "review" : "pull_request");
	if (kind == HL_EVENT_STATUS && !event_str(payload, "state"))
		return hl_err_set(err, HL_EINVAL, "'%s' payload has no '%s' string", event_name,
		                  "state");
	if (kind == HL_EVENT_PUSH && !event_str(payload, "ref"))
		return hl_err_set(err, HL_EINVAL, "'%s' payload has no '%s' string", event_name,
		                  "ref");
	/* Every event but an organization ping concerns one repository. */
	/* (a NUL in it is refused below as no owner/name) */
	repo = hl_json_str(payload, "repository.full_name");
	if (kind != HL_EVENT_PING && !repo)
		return hl_err_set(err, HL_EINVAL, "'%s' payload has no 'repository.full_name'",
		                  event_name);
	/* The name becomes API paths used with healer's token: only what
	 * GitHub itself allows as an owner and a repository name (all of it:
	 * "a/b\u0000x" is not "a/b"). */
	if (repo &&
	    (!hl_str_github_repo_valid(repo) ||
	     strlen(repo) != json_string_length(hl_json_path(payload, "repository.full_name"))))
		return hl_err_set(err, HL_EINVAL,
		                  "'%s' payload: 'repository.full_name' is not a valid owner/name",
		                  event_name);

	ev = calloc(1, sizeof(*ev));
	if (!ev)
		return hl_err_set(err, HL_ENOMEM, "out of memory normalizing '%s'", event_name);
	ev->kind = kind;
	ev->event_name = event_dup(event_kind_names[kind], &oom);
	event_take(&ev->action, payload, "action", &oom);
	event_common(ev, payload, &oom);

	switch (kind) {
	case HL_EVENT_WORKFLOW_JOB:
		event_workflow_job(ev, obj, &oom);
		break;
	case HL_EVENT_WORKFLOW_RUN:
		event_workflow_run(ev, obj, &oom);
		break;
	case HL_EVENT_CHECK_RUN:
		event_check_run(ev, payload, obj, &oom);
		break;
	case HL_EVENT_CHECK_SUITE:
		event_check_suite(ev, obj, &oom);
		break;
	case HL_EVENT_STATUS:
		event_status(ev, payload, &oom);
		break;
	case HL_EVENT_PULL_REQUEST:
		event_pull_request(ev, payload, obj, &oom);
		break;
	case HL_EVENT_PUSH:
		event_push(ev, payload, &oom);
		break;
	case HL_EVENT_ISSUE_COMMENT:
		rc = event_issue_comment(ev, payload, &oom);
		break;
	case HL_EVENT_PULL_REQUEST_REVIEW:
		rc = event_pull_request_review(ev, payload, &oom);
		break;
	case HL_EVENT_PULL_REQUEST_REVIEW_COMMENT:
		rc = event_pull_request_review_comment(ev, payload, &oom);
		break;
	case HL_EVENT_MERGE_GROUP:
		event_merge_group(ev, obj, &oom);
		break;
	case HL_EVENT_DEPENDABOT_ALERT:
		event_dependabot_alert(ev, obj, &oom);
		break;
	case HL_EVENT_CODE_SCANNING_ALERT:
		event_code_scanning_alert(ev, payload, obj, &oom);
		break;
	case HL_EVENT_SECRET_SCANNING_ALERT:
		event_secret_scanning_alert(ev, obj, &oom);
		break;
	case HL_EVENT_REPOSITORY_VULNERABILITY_ALERT:
		event_repository_vulnerability_alert(ev, obj, &oom);
		break;
	case HL_EVENT_PING:
		ev->intent = HL_INTENT_NONE;
		break;
	default:
		break;
	}
	if (event_nul_path) {
		hl_event_free(ev);
		rc = hl_err_set(err, HL_EINVAL,
		                "'%s' payload: '%s' holds a NUL character (\\u0000)", event_name,
		                event_nul_path);
		event_nul_path = NULL;
		return rc;
	}
	/* outside text quoting a secret is stored and classified redacted */
	if (oom || rc || hl_event_redact(ev) < 0) {
		hl_event_free(ev);
		return hl_err_set(err, HL_ENOMEM, "out of memory normalizing '%s'", event_name);
	}
	*out = ev;
	return 0;
}

const char *
hl_event_guess_name(const json_t *payload)
{
	const json_t *alert;

	if (!json_is_object(payload))
		return NULL;
	if (json_is_object(json_object_get(payload, "workflow_job")))
		return "workflow_job";
	if (json_is_object(json_object_get(payload, "workflow_run")))
		return "workflow_run";
	if (json_is_object(json_object_get(payload, "check_run")))
		return "check_run";
	alert = json_object_get(payload, "alert");
	if (!json_is_object(alert))
		return NULL;
	if (json_is_object(json_object_get(alert, "security_advisory")) ||
	    json_is_object(json_object_get(alert, "dependency")))
		return "dependabot_alert";
	if (json_is_object(json_object_get(alert, "rule")) &&
	    json_is_object(json_object_get(alert, "tool")))
		return "code_scanning_alert";
	if (json_is_string(json_object_get(alert, "secret_type")))
		return "secret_scanning_alert";
	if (json_is_string(json_object_get(alert, "affected_package_name")))
		return "repository_vulnerability_alert";
	return NULL;
}

void
hl_event_free(struct hl_event *ev)
{
	if (!ev)
		return;
	free(ev->event_name);
	free(ev->action);
	free(ev->repository);
	free(ev->repository_url);
	free(ev->default_branch);
	free(ev->sender);
	free(ev->workflow_name);
	free(ev->job_name);
	free(ev->failed_step);
	free(ev->status);
	free(ev->conclusion);
	free(ev->branch);
	free(ev->base_branch);
	free(ev->head_sha);
	free(ev->commit_message);
	free(ev->html_url);
	free(ev->logs_url);
	free(ev->head_repository);
	free(ev->check_output_title);
	free(ev->check_output_summary);
	free(ev->check_output_text);
	free(ev->pr_title);
	free(ev->alert_state);
	free(ev->alert_updated_at);
	free(ev->severity);
	free(ev->package_name);
	free(ev->package_ecosystem);
	free(ev->manifest_path);
	free(ev->vulnerable_range);
	free(ev->fixed_version);
	free(ev->cve_id);
	free(ev->ghsa_id);
	free(ev->summary);
	free(ev->description);
	free(ev->rule_id);
	free(ev->tool_name);
	free(ev->location_path);
	free(ev->secret_type);
	free(ev->command_hint);
	free(ev->comment_body);
	free(ev->author_association);
	free(ev->requested_action);
	free(ev->review_state);
	free(ev);
}
