/*
 * comment.c - the GitHub PR comments: the escalation comment with its
 * table of attempts, the `/healer status` reply, the refusal for an
 * unauthorised `/healer` author, and the sender (through the GitHub
 * client, so its auth and API origin rules apply).
 *
 * Invariants: untrusted text reaches the Markdown only through
 * HL_NOTIFY_ESC_GITHUB (backslash before Markdown punctuation, &amp; &lt;
 * &gt; so no HTML opens, '@' and '#' followed by a zero-width space so no
 * one is mentioned and no issue is referenced (GitHub links "#N" and
 * "owner/repo#N" even after a backslash), a zero-width space inside "://"
 * and "www." so no URL is autolinked (a link to another repository's issue
 * cross-references it too), '|' escaped and line breaks flattened so a table cell
 * stays one cell), or inside a fenced block whose fence is longer than any backtick run of its
 * content. Links are made only from checked URLs. The comment stays under GitHub's 65536
 * characters.
 */
#include "base/clock.h"
#include "base/str.h"
#include "net/github.h"
#include "text.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GH_COMMENT_MAX  65536
#define GH_CELL_CAP     80
#define GH_LINE_CAP     300
#define GH_EVIDENCE_CAP 2000
#define GH_ROWS_MAX     50
#define GH_URL_MAX      500
/* GitHub: a secondary rate limit that names no wait (no Retry-After, no
 * exhausted X-RateLimit-Remaining) is waited out "at least one minute";
 * asking sooner prolongs it and risks the integration being banned. */
#define GH_RATE_LIMIT_WAIT_MS 60000

/* One table cell: escaped, one line, "-" when empty. */
static void
gh_cell(struct hl_buf *b, const char *text)
{
	size_t mark;

	hl_buf_append_str(b, " ");
	mark = b->len;
	hl_notify_text_append(b, text, GH_CELL_CAP, HL_NOTIFY_ESC_GITHUB, HL_NOTIFY_TEXT_TRIM,
	                      NULL);
	if (b->len == mark)
		hl_buf_append_str(b, "-");
	hl_buf_append_str(b, " |");
}

/* A link "[label](url)" when url is usable, else the escaped label. */
static void
gh_link(struct hl_buf *b, const char *label, const char *url)
{
	bool link = hl_notify_text_url_ok(url, GH_URL_MAX);

	if (link)
		hl_buf_append_char(b, '[');
	hl_notify_text_append(b, label, GH_CELL_CAP, HL_NOTIFY_ESC_GITHUB, HL_NOTIFY_TEXT_TRIM,
	                      NULL);
	if (link)
		hl_buf_appendf(b, "](%s)", url);
}

/* The PR cell of an attempt: "[#N](url)" for a pull-request URL. */
static void
gh_pr_cell(struct hl_buf *b, const char *url)
{
	const char *p = url ? strstr(url, "/pull/") : NULL;
	char label[32] = "PR";

	hl_buf_append_str(b, " ");
	if (!hl_notify_text_url_ok(url, GH_URL_MAX)) {
		hl_buf_append_str(b, "- |");
		return;
	}
	if (p) {
		long long n = strtoll(p + 6, NULL, 10);

		if (n > 0)
			snprintf(label, sizeof(label), "#%lld", n);
	}
	hl_buf_appendf(b, "[%s](%s) |", label, url);
}

static void
gh_escalation_table(struct hl_buf *b, const struct hl_notify_report *r)
{
	size_t i, n = r->n_attempts < GH_ROWS_MAX ? r->n_attempts : GH_ROWS_MAX;

	hl_buf_append_str(b, "| # | Agent | Outcome | Duration | CodeRun | PR |\n"
	                     "| ---: | --- | --- | --- | --- | --- |\n");
	for (i = 0; i < n; i++) {
		const struct hl_notify_attempt *a = &r->attempts[i];
		char dur[32];

		hl_notify_text_duration(dur, sizeof(dur), a->started_ms, a->finished_ms);
		hl_buf_appendf(b, "| %d |", a->number > 0 ? a->number : (int)i + 1);
		gh_cell(b, a->agent);
		gh_cell(b, hl_notify_outcome_label(a->outcome));
		gh_cell(b, dur);
		gh_cell(b, a->coderun);
		gh_pr_cell(b, a->pr_url);
		hl_buf_append_char(b, '\n');
	}
	if (n < r->n_attempts)
		hl_buf_appendf(b, "\n" HL_NOTIFY_ELLIPSIS " and %zu more attempts\n",
		               r->n_attempts - n);
}

/* The longest run of backticks in s. */
static size_t
gh_longest_backticks(const char *s, size_t n)
{
	size_t i, run = 0, best = 0;

	for (i = 0; i < n; i++) {
		run = s[i] == '`' ? run + 1 : 0;
		if (run > best)
			best = run;
	}
	return best;
}

/* A fenced block of untrusted text: the fence is longer than any backtick
 * run inside, so the text cannot close it. */
static void
gh_fenced(struct hl_buf *b, const char *text, size_t cap)
{
	struct hl_buf t = HL_BUF_INIT(0);
	size_t fence, i;

	hl_notify_text_append(&t, text, cap, HL_NOTIFY_ESC_NONE,
	                      HL_NOTIFY_TEXT_MULTILINE | HL_NOTIFY_TEXT_TRIM, NULL);
	fence = gh_longest_backticks(t.data, t.len) + 1;
	if (fence < 3)
		fence = 3;
	for (i = 0; i < fence; i++)
		hl_buf_append_char(b, '`');
	hl_buf_append_str(b, "text\n");
	hl_buf_append(b, t.data, t.len);
	if (hl_buf_error(&t))
		b->err = t.err;
	hl_buf_append_char(b, '\n');
	for (i = 0; i < fence; i++)
		hl_buf_append_char(b, '`');
	hl_buf_append_char(b, '\n');
	hl_buf_release(&t);
}

/* "- **Label**: value" where value is the builder's own Markdown. */
static void
gh_own_item(struct hl_buf *b, const char *label, const char *value)
{
	hl_buf_appendf(b, "- **%s**: %s\n", label, value);
}

/* "- **Label**: text" with the text escaped; nothing when text is empty. */
static void
gh_item(struct hl_buf *b, const char *label, const char *text)
{
	if (!text || !*text)
		return;
	hl_buf_appendf(b, "- **%s**: ", label);
	hl_notify_text_append(b, text, GH_LINE_CAP, HL_NOTIFY_ESC_GITHUB, HL_NOTIFY_TEXT_TRIM,
	                      NULL);
	hl_buf_append_char(b, '\n');
}

static int
gh_finish(char **out, struct hl_buf *b, struct hl_err *err)
{
	char *text;
	size_t len;

	if (hl_buf_error(b)) {
		hl_buf_release(b);
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	}
	if (hl_notify_text_units(b->data, b->len) > GH_COMMENT_MAX) {
		hl_buf_release(b);
		return hl_err_set(err, HL_EINTERNAL, "github comment over 65536 characters");
	}
	text = hl_buf_detach(b, &len);
	if (!text)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	*out = text;
	return 0;
}

int
hl_notify_github_build(char **out, const struct hl_notify_report *r, struct hl_err *err)
{
	struct hl_buf b = HL_BUF_INIT(0), plain = HL_BUF_INIT(0);
	size_t i, n = r->n_attempts < GH_ROWS_MAX ? r->n_attempts : GH_ROWS_MAX;
	char count[64];

	if (r->kind == HL_NOTIFY_ESCALATION)
		hl_buf_appendf(&b,
		               "## \xe2\x9a\xa0\xef\xb8\x8f Healer: automatic remediation "
		               "failed\n\nI tried %zu time%s to fix this CI failure but wasn't "
		               "successful. A human needs to take a look at this one.\n\n",
		               r->n_attempts, r->n_attempts == 1 ? "" : "s");
	else
		hl_buf_append_str(&b, "## Healer: CI remediation report\n\n");
	gh_item(&b, "Repository", r->repository);
	gh_item(&b, "Workflow", r->workflow);
	gh_item(&b, "Job", r->job);
	gh_item(&b, "Branch", r->branch);
	gh_item(&b, "Failure type", r->failure_type);
	if (r->kind == HL_NOTIFY_REPORT)
		gh_item(&b, "State", r->state);
	hl_notify_text_attempts_count(count, sizeof(count), r);
	gh_own_item(&b, "Attempts", count);
	if (hl_notify_text_agents(&plain, r, HL_NOTIFY_ESC_GITHUB) == 0)
		gh_own_item(&b, "Agents tried", plain.data);
	if (hl_notify_text_url_ok(r->run_url, GH_URL_MAX))
		hl_buf_appendf(&b, "- **Run**: [workflow run](%s)\n", r->run_url);

	if (r->n_attempts > 0) {
		hl_buf_append_str(&b, "\n### Attempts\n\n");
		gh_escalation_table(&b, r);
		hl_buf_append_str(&b, "\n### What was tried\n\n");
		for (i = 0; i < n; i++) {
			const struct hl_notify_attempt *a = &r->attempts[i];

			hl_buf_appendf(&b, "%d. ", a->number > 0 ? a->number : (int)i + 1);
			hl_notify_text_attempt_line(&b, a, GH_LINE_CAP, HL_NOTIFY_ESC_GITHUB);
			hl_buf_append_char(&b, '\n');
		}
	}
	if (r->evidence && *r->evidence) {
		hl_buf_append_str(&b, "\n### Current failure\n\n");
		gh_fenced(&b, r->evidence, GH_EVIDENCE_CAP);
	}
	if (hl_notify_text_url_ok(r->task_url, GH_URL_MAX) || (r->task_id && *r->task_id)) {
		hl_buf_append_str(&b, "\nTask: ");
		gh_link(&b, r->task_id && *r->task_id ? r->task_id : "healer task", r->task_url);
		hl_buf_append_char(&b, '\n');
	}
	hl_buf_append_str(&b, r->kind == HL_NOTIFY_ESCALATION ? "\n---\n*Escalated by Healer*\n"
	                                                      : "\n---\n*Reported by Healer*\n");
	if (hl_buf_error(&plain))
		b.err = plain.err;
	hl_buf_release(&plain);
	return gh_finish(out, &b, err);
}

int
hl_notify_github_status(char **out, const struct hl_notify_report *r, struct hl_err *err)
{
	struct hl_buf b = HL_BUF_INIT(0);
	size_t i, n = r->n_attempts < GH_ROWS_MAX ? r->n_attempts : GH_ROWS_MAX;

	hl_buf_append_str(&b, "### Healer status\n\n");
	gh_item(&b, "Task", r->task_id);
	gh_item(&b, "State", r->state && *r->state ? r->state : "unknown");
	gh_item(&b, "Workflow", r->workflow);
	gh_item(&b, "Job", r->job);
	gh_item(&b, "Branch", r->branch);
	hl_buf_append_char(&b, '\n');
	if (r->n_attempts == 0) {
		hl_buf_append_str(&b, "No attempts yet.\n");
	} else {
		hl_buf_append_str(&b, "| # | Agent | CodeRun | Outcome | PR |\n"
		                      "| ---: | --- | --- | --- | --- |\n");
		for (i = 0; i < n; i++) {
			const struct hl_notify_attempt *a = &r->attempts[i];

			hl_buf_appendf(&b, "| %d |", a->number > 0 ? a->number : (int)i + 1);
			gh_cell(&b, a->agent);
			gh_cell(&b, a->coderun);
			gh_cell(&b, hl_notify_outcome_label(a->outcome));
			gh_pr_cell(&b, a->pr_url);
			hl_buf_append_char(&b, '\n');
		}
		if (n < r->n_attempts)
			hl_buf_appendf(&b, "\n" HL_NOTIFY_ELLIPSIS " and %zu more attempts\n",
			               r->n_attempts - n);
	}
	if (hl_notify_text_url_ok(r->task_url, GH_URL_MAX))
		hl_buf_appendf(&b, "\n[Task details](%s)\n", r->task_url);
	return gh_finish(out, &b, err);
}

/* A GitHub login: 1-39 of [A-Za-z0-9-], no leading, trailing or double '-'. */
static bool
gh_login_ok(const char *s)
{
	size_t i, n = s ? strlen(s) : 0;

	if (n == 0 || n > 39 || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-'))
			return false;
		if (c == '-' && s[i + 1] == '-')
			return false;
	}
	return true;
}

int
hl_notify_github_refusal(char **out, const char *author, const char *association,
                         const char *allowed, struct hl_err *err)
{
	struct hl_buf b = HL_BUF_INIT(0);
	char **list = NULL;
	size_t n = 0, i;

	if (gh_login_ok(author))
		hl_buf_appendf(&b, "@%s, sorry: ", author);
	else
		hl_buf_append_str(&b, "Sorry: ");
	hl_buf_append_str(&b, "`/healer` commands are only accepted from authors whose "
	                      "association with this repository is ");
	list = hl_str_split_list(allowed ? allowed : "", &n);
	if (!list) {
		hl_buf_release(&b);
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	}
	for (i = 0; i < n && i < 16; i++) {
		if (i > 0)
			hl_buf_append_str(&b, i + 1 == n ? " or " : ", ");
		hl_buf_append_str(&b, "**");
		hl_notify_text_append(&b, list[i], 40, HL_NOTIFY_ESC_GITHUB, HL_NOTIFY_TEXT_TRIM,
		                      NULL);
		hl_buf_append_str(&b, "**");
	}
	if (n == 0)
		hl_buf_append_str(&b, "(none configured)");
	hl_buf_append_str(&b, " (yours: ");
	hl_notify_text_append(&b, association && *association ? association : "NONE", 40,
	                      HL_NOTIFY_ESC_GITHUB, HL_NOTIFY_TEXT_TRIM, NULL);
	hl_buf_append_str(&b, "). The command was not run.\n");
	hl_str_list_free(list);
	return gh_finish(out, &b, err);
}

/* How long the token's budget stays spent after an answer with
 * X-RateLimit-Remaining remaining and -Reset reset (epoch s), in ms: 0
 * when it is not spent or the reset has passed, at most
 * HL_GITHUB_BUDGET_HOLD_MAX_MS (the reset second has to have passed). */
static int64_t
github_budget_hold_ms(int64_t remaining, int64_t reset)
{
	int64_t wait;

	if (remaining != 0 || reset < 0)
		return 0;
	wait = reset * 1000 + 1000 - hl_time_wall_ms();
	if (wait <= 0)
		return 0;
	return wait < HL_GITHUB_BUDGET_HOLD_MAX_MS ? wait : HL_GITHUB_BUDGET_HOLD_MAX_MS;
}

/* The result of a send not made because the token's budget is spent for
 * wait_ms more: RETRY "rate_limited", the channel held until the reset. */
static void
github_budget_spent(struct hl_notify_result *r, const char *origin, int64_t wait_ms)
{
	hl_notify_result_set(r, HL_NOTIFY_RETRY, 0, wait_ms, "rate_limited",
	                     "'%s': not sent: the token's rate-limit budget is spent "
	                     "(X-RateLimit-Remaining 0), it resets in %lld ms",
	                     origin, (long long)wait_ms);
	r->hold_ms = wait_ms;
}

/* Classifies GitHub's answer to the comment POST. */
static void
github_classify(struct hl_notify_result *out, const char *origin, const struct hl_notify_http *h)
{
	json_t *v = json_loadb(h->body, h->body_len, 0, NULL);
	const char *m = json_string_value(json_object_get(v, "message"));
	char msg[160], tok[32];
	int64_t wait = -1;
	bool limited;

	hl_notify_text_excerpt(msg, sizeof(msg), m ? m : h->body, m ? strlen(m) : h->body_len);
	if (h->retry_after_s >= 0) {
		wait = h->retry_after_s * 1000;
	} else if (h->rl_remaining == 0 && h->rl_reset >= 0) {
		wait = h->rl_reset * 1000 - hl_time_wall_ms();
		wait = (wait < 0 ? 0 : wait) + 1000;
	}
	/* GitHub's primary and secondary rate limits answer 403 or 429 */
	limited = h->status == 429 ||
	          (h->status == 403 && (h->retry_after_s >= 0 || h->rl_remaining == 0 ||
	                                (m && hl_str_casestr(m, "rate limit"))));
	if (limited && wait < 0)
		wait = GH_RATE_LIMIT_WAIT_MS;
	snprintf(tok, sizeof(tok), "http_%ld", h->status);
	if (h->status >= 200 && h->status < 300)
		hl_notify_result_set(out, HL_NOTIFY_DELIVERED, h->status, -1, "",
		                     "'%s': comment created (status %ld)", origin, h->status);
	else if (limited)
		hl_notify_result_set(out, HL_NOTIFY_RETRY, h->status, wait, "rate_limited",
		                     "'%s': rate limited (status %ld), retry after %lld ms", origin,
		                     h->status, (long long)wait);
	else if (h->status >= 300 && h->status < 400)
		/* the fetch engine follows GitHub's redirects (a renamed
		 * repository's 307): one left is a loop, has no Location or
		 * would take the POST to another origin */
		hl_notify_result_set(out, HL_NOTIFY_FAILED, h->status, -1, "redirect",
		                     "'%s': status %ld: a redirect that cannot be followed", origin,
		                     h->status);
	else if (h->status >= 500 || h->status == 408)
		hl_notify_result_set(out, HL_NOTIFY_RETRY, h->status, wait,
		                     h->status == 408 ? tok : "server_error",
		                     "'%s': status %ld: %s", origin, h->status, msg);
	else
		hl_notify_result_set(out, HL_NOTIFY_FAILED, h->status, -1, tok,
		                     "'%s': status %ld: %s", origin, h->status, msg);
	/* the token's budget is spent (on a success too): every request before
	 * the reset would be refused, so the channel waits for it */
	out->hold_ms = github_budget_hold_ms(h->rl_remaining, h->rl_reset);
	json_decref(v);
}

/* The most pages of an issue's comments github_posted reads (100 each):
 * GitHub lists them oldest first and this endpoint takes no sort order, so
 * a marker is looked for on every page, bounded. */
#define GH_LOOKUP_PAGES 30
/* The most bytes of one page (100 comments of up to 65536 characters). */
#define GH_LOOKUP_PAGE_MAX (32u << 20)
/* since_ms is healer's clock, updated_at GitHub's: moved by the offset of
 * GitHub's clock the client knows, and while it knows none (no answer yet)
 * this much earlier besides (a page more at most); the first page's answer
 * names GitHub's clock, and the look-up starts again when that puts since
 * earlier still. */
#define GH_LOOKUP_CLOCK_MARGIN_MS (10 * 60 * 1000)

/* The look-up's answers, as github_posted saw them. */
enum gh_lookup {
	GH_LOOKUP_ABSENT = 0, /* no comment holds the marker (or the look-up was
	                         refused for good: the post then tells) */
	GH_LOOKUP_FOUND,      /* an earlier attempt's comment is there */
	GH_LOOKUP_RETRY,      /* could not tell for now: *r says why and how long */
};

/* The wait a refused look-up asks for: its answer classified as the POST's
 * (a rate limit is RETRY rate_limited with GitHub's wait, 5xx RETRY, other
 * 4xx FAILED), and a transport failure as any send's. Fills *r; true when
 * it is worth a retry. */
static bool
github_lookup_failed(struct hl_notify_result *r, const char *origin, const struct hl_fetch_res *res)
{
	char reason[160];

	if (res->status > 0 &&
	    (res->err.code == 0 || res->err.code == HL_EUPSTREAM || res->err.code == HL_ETOOBIG)) {
		struct hl_notify_http h;

		memset(&h, 0, sizeof(h));
		h.status = res->status;
		h.body = res->body.data ? res->body.data : "";
		h.body_len = res->body.len;
		h.retry_after_s = res->retry_after_s;
		h.rl_remaining = res->ratelimit_remaining;
		h.rl_reset = res->ratelimit_reset;
		h.rl_reset_after_ms = res->ratelimit_reset_after_ms;
		github_classify(r, origin, &h);
		if (res->status >= 200 && res->status < 300) /* too big or not JSON */
			hl_notify_result_set(r, HL_NOTIFY_FAILED, res->status, -1, "bad_answer",
			                     "'%s': the comments could not be read", origin);
	} else {
		hl_notify_text_excerpt(reason, sizeof(reason),
		                       res->err.code == HL_ETIMEOUT ? "timed out"
		                                                    : "connection failed",
		                       res->err.code == HL_ETIMEOUT ? 9 : 17);
		hl_notify_result_set(r, HL_NOTIFY_RETRY, 0, -1,
		                     res->err.code == HL_ETIMEOUT ? "timeout" : "connect",
		                     "'%s': %s", origin, reason);
	}
	return r->status == HL_NOTIFY_RETRY;
}

/*
 * Whether one of the comments (path: its comments) updated since
 * since_ms already holds marker. Follows Link rel="next" for up to
 * GH_LOOKUP_PAGES pages of 100 (past them, 3000 comments since the message
 * was enqueued, the answer is ABSENT: a second comment is better than none,
 * which a retry that could never tell would come to), all within
 * timeout_ms. Each page is asked as the POST is (the client's auth, no
 * waiting inside a rate limit), so a refused page is classified like the
 * POST's answer: RETRY with *r filled, a rate limit with GitHub's wait.
 * Returns an enum gh_lookup, or -HL_ENOMEM.
 */
static int
github_posted(struct hl_notify_result *r, struct hl_github *gh, const char *origin,
              const char *path, const char *marker, int64_t since_ms,
              const struct hl_notify_opts *opts, struct hl_err *err)
{
	struct hl_buf q = HL_BUF_INIT(0), url = HL_BUF_INIT(0), auth = HL_BUF_INIT(0);
	struct hl_err gerr = HL_ERR_INIT;
	int64_t deadline =
	        hl_time_mono_ms() + (opts && opts->timeout_ms > 0 ? opts->timeout_ms : 15000);
	char *next = malloc(HL_GITHUB_LINK_MAX);
	int ret = GH_LOOKUP_ABSENT, pages = 0;
	bool known, again = false;
	int64_t off = hl_github_clock_offset_ms(gh, &known), asked;

	if (!next) {
		ret = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
restart:
	asked = since_ms > 0 ? since_ms + off - (known ? 0 : GH_LOOKUP_CLOCK_MARGIN_MS) : 0;
	{
		time_t t = (time_t)((asked > 0 ? asked : 0) / 1000);
		struct tm tm;
		char since[32];

		gmtime_r(&t, &tm);
		strftime(since, sizeof(since), "%Y-%m-%dT%H:%M:%SZ", &tm);
		hl_buf_reset(&q);
		hl_buf_appendf(&q, "%s?per_page=100&since=%s", path, since);
	}
	if (hl_buf_error(&q)) {
		ret = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	hl_strlcpy(next, q.data, HL_GITHUB_LINK_MAX);
	pages = 0;
	while (pages++ < GH_LOOKUP_PAGES && ret == GH_LOOKUP_ABSENT) {
		struct hl_fetch_req req;
		struct hl_fetch_res res;
		json_t *arr, *c;
		size_t i;
		int64_t left = deadline - hl_time_mono_ms();
		bool more;

		if (left <= 0) {
			hl_notify_result_set(r, HL_NOTIFY_RETRY, 0, -1, "timeout",
			                     "'%s': timed out reading the comments", origin);
			ret = GH_LOOKUP_RETRY;
			break;
		}
		ret = hl_github_req_init(gh, &req, &url, &auth, "GET", next, &gerr);
		if (ret == -HL_ENOMEM) {
			ret = hl_err_set(err, HL_ENOMEM, "out of memory");
			break;
		}
		if (ret < 0 && hl_github_budget_wait_ms(gh) > 0) {
			github_budget_spent(r, origin, hl_github_budget_wait_ms(gh));
			ret = GH_LOOKUP_RETRY;
			break;
		}
		if (ret < 0) {
			/* the token could not be minted, or a next link refused */
			ret = GH_LOOKUP_ABSENT;
			break;
		}
		req.no_rate_wait = true;
		req.timeout_ms = left;
		req.max_body = GH_LOOKUP_PAGE_MAX;
		if (opts && opts->ca_file)
			req.ca_file = opts->ca_file;
		hl_fetch_res_init(&res);
		if (hl_fetch_run(&req, &res, 1, 0, &gerr) == -HL_ENOMEM) {
			hl_fetch_res_release(&res);
			ret = hl_err_set(err, HL_ENOMEM, "out of memory");
			break;
		}
		hl_github_note_budget(gh, &res);
		arr = res.err.code == 0 && res.status >= 200 && res.status < 300
		              ? json_loadb(res.body.data, res.body.len, 0, NULL)
		              : NULL;
		if (!json_is_array(arr)) {
			ret = github_lookup_failed(r, origin, &res) ? GH_LOOKUP_RETRY
			                                            : GH_LOOKUP_ABSENT;
			json_decref(arr);
			hl_fetch_res_release(&res);
			break;
		}
		json_array_foreach(arr, i, c)
		{
			const char *body = json_string_value(json_object_get(c, "body"));

			if (body && strstr(body, marker))
				ret = GH_LOOKUP_FOUND;
		}
		json_decref(arr);
		more = hl_fetch_link_next(next, HL_GITHUB_LINK_MAX, res.link);
		hl_fetch_res_release(&res);
		if (ret == GH_LOOKUP_ABSENT && !known && !again && since_ms > 0) {
			/* this answer named GitHub's clock: one further apart than
			 * the margin asks again from there */
			off = hl_github_clock_offset_ms(gh, &known);
			if (known && since_ms + off < asked) {
				again = true;
				goto restart;
			}
		}
		if (!more)
			break;
	}
	if (ret == GH_LOOKUP_RETRY) {
		struct hl_notify_result was = *r;

		hl_notify_result_set(r, was.status, was.code, was.retry_after_ms, was.error,
		                     "could not tell whether an earlier attempt posted the "
		                     "comment: %s",
		                     was.message);
		r->hold_ms = was.hold_ms;
	}
out:
	free(next);
	hl_buf_release(&q);
	hl_buf_release(&url);
	if (auth.len)
		explicit_bzero(auth.data, auth.len);
	hl_buf_release(&auth);
	return ret;
}

/* "/repos/{owner}/{name}/issues/{n}/comments", owner and name checked. */
static bool
github_comment_path(struct hl_buf *p, const char *repo, int64_t number)
{
	const char *slash = repo ? strchr(repo, '/') : NULL;
	const char *s;

	if (!slash || slash == repo || !slash[1] || strchr(slash + 1, '/') || number <= 0 ||
	    strlen(repo) > 200)
		return false;
	for (s = repo; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' || *s == '.' || *s == '/'))
			return false;
	hl_buf_appendf(p, "/repos/%s/issues/%lld/comments", repo, (long long)number);
	return true;
}

int
hl_notify_github_send(struct hl_notify_result *out, struct hl_github *gh, const char *repo,
                      int64_t number, const char *body, const struct hl_notify_opts *opts,
                      struct hl_err *err)
{
	struct hl_buf path = HL_BUF_INIT(0), url = HL_BUF_INIT(0), auth = HL_BUF_INIT(0);
	struct hl_err gerr = HL_ERR_INIT;
	struct hl_notify_result r;
	struct hl_fetch_req req;
	char origin[300], *text = NULL;
	json_t *doc = NULL;
	int ret = 0;

	hl_fetch_global_init();
	if (!github_comment_path(&path, repo, number)) {
		char rq[80];

		hl_notify_text_excerpt(rq, sizeof(rq), repo, repo ? strlen(repo) : 0);
		hl_notify_result_set(&r, HL_NOTIFY_FAILED, 0, -1, "bad_target",
		                     "'%s' #%lld: not an owner/name repository and an issue number",
		                     rq, (long long)number);
		goto done;
	}
	if (hl_buf_error(&path)) {
		ret = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	ret = hl_github_req_init(gh, &req, &url, &auth, "POST", path.data, &gerr);
	if (ret == -HL_ENOMEM) {
		ret = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	if (ret < 0 && hl_github_budget_wait_ms(gh) > 0) {
		/* the token's budget is spent: nothing is sent before its reset */
		ret = 0;
		github_budget_spent(&r, "github", hl_github_budget_wait_ms(gh));
		goto done;
	}
	if (ret < 0) {
		/* the GitHub App token could not be minted */
		ret = 0;
		hl_notify_result_set(&r, gerr.code == HL_EAUTH ? HL_NOTIFY_FAILED : HL_NOTIFY_RETRY,
		                     0, -1, gerr.code == HL_EAUTH ? "auth" : "connect",
		                     "github app token: %s", hl_err_name(gerr.code));
		goto done;
	}
	{
		static const char *const schemes[] = { "https", "http", NULL };

		if (!hl_notify_text_check_url(&r, origin, sizeof(origin), url.data, schemes))
			goto done;
	}
	if (opts && opts->github_marker && *opts->github_marker) {
		int64_t t0 = hl_time_mono_ms();
		int found = github_posted(&r, gh, origin, path.data, opts->github_marker,
		                          opts->github_since_ms, opts, err);

		if (found < 0) {
			ret = found;
			goto out;
		}
		if (found != GH_LOOKUP_ABSENT) {
			if (found == GH_LOOKUP_FOUND)
				hl_notify_result_set(&r, HL_NOTIFY_DELIVERED, 200, -1, "",
				                     "'%s': already posted by an earlier attempt",
				                     origin);
			r.elapsed_ms = hl_time_mono_ms() - t0;
			goto done;
		}
	}
	if (hl_github_budget_wait_ms(gh) > 0) {
		/* the look-up spent the last of the budget: the POST would be
		 * refused */
		github_budget_spent(&r, origin, hl_github_budget_wait_ms(gh));
		goto done;
	}
	doc = json_pack("{s:s}", "body", body ? body : "");
	if (!doc || hl_fetch_req_set_json(&req, &text, doc, &gerr) < 0) {
		ret = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	req.max_retries = 0; /* never post a comment twice */
	req.max_body = 1u << 20;
	if (opts && opts->timeout_ms > 0)
		req.timeout_ms = opts->timeout_ms;
	if (opts && opts->ca_file)
		req.ca_file = opts->ca_file;
	req.no_rate_wait = opts && opts->no_rate_wait;
	ret = hl_notify_http_run(&r, &req, origin, github_classify, err);
	if (ret < 0)
		goto out;
	if (r.hold_ms > 0) /* every GitHub call of the process shares the budget */
		hl_github_hold_budget(gh, hl_time_wall_ms() + r.hold_ms);
done:
	*out = r;
out:
	json_decref(doc);
	free(text);
	hl_buf_release(&path);
	hl_buf_release(&url);
	if (auth.len)
		explicit_bzero(auth.data, auth.len);
	hl_buf_release(&auth);
	return ret;
}
