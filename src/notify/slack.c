/*
 * slack.c - the Slack incoming-webhook message (Block Kit blocks plus a
 * "text" fallback) and its sender.
 *
 * Invariants: the message stays within Slack's limits, counted in UTF-16
 * units (header 150, section text 3000, 10 fields of 2000, 50 blocks; the
 * builder checks before returning); untrusted text in mrkdwn has &, < and >
 * escaped as Slack requires (so it can open no link or mention such as
 * <!channel>), '@' is followed by a zero-width space, and fenced text has its
 * backticks broken. Links are made only from checked URLs.
 */
#include "text.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SL_HEADER_MAX  150
#define SL_SECTION_MAX 3000
#define SL_FIELD_MAX   2000
#define SL_FIELDS_MAX  10
#define SL_BLOCKS_MAX  50

#define SL_FIELD_CAP    200
#define SL_LINE_CAP     300
#define SL_FALLBACK_CAP 300
#define SL_LINK_URL_MAX 500
#define SL_MORE_RESERVE 40

static json_t *
sl_mrkdwn(const struct hl_buf *b)
{
	return json_pack("{s:s, s:s%}", "type", "mrkdwn", "text", b->data, b->len);
}

static json_t *
sl_section(const struct hl_buf *b)
{
	return json_pack("{s:s, s:o}", "type", "section", "text", sl_mrkdwn(b));
}

/* A field "*Name*\nvalue" (value escaped unless own, the builder's
 * text); an empty value becomes "-". */
static int
sl_field(json_t *fields, const char *name, const char *text, bool own, const char *url)
{
	struct hl_buf v = HL_BUF_INIT(0);
	bool link = hl_notify_text_url_ok(url, SL_LINK_URL_MAX);
	size_t mark;
	int ret = 0;

	hl_buf_appendf(&v, "*%s*\n", name);
	mark = v.len;
	if (link)
		hl_buf_appendf(&v, "<%s|", url);
	if (own)
		hl_buf_append_str(&v, text);
	else
		hl_notify_text_append(&v, text, SL_FIELD_CAP, HL_NOTIFY_ESC_SLACK,
		                      HL_NOTIFY_TEXT_TRIM, NULL);
	if (link)
		hl_buf_append_char(&v, '>');
	if (v.len == mark)
		hl_buf_append_str(&v, "-");
	if (hl_buf_error(&v))
		ret = -HL_ENOMEM;
	else if (json_array_size(fields) >= SL_FIELDS_MAX ||
	         hl_notify_text_units(v.data, v.len) > SL_FIELD_MAX)
		ret = -HL_EINTERNAL;
	else if (json_array_append_new(fields, sl_mrkdwn(&v)) < 0)
		ret = -HL_ENOMEM;
	hl_buf_release(&v);
	return ret;
}

static int
sl_fields(json_t *fields, const struct hl_notify_report *r)
{
	struct hl_buf agents = HL_BUF_INIT(0);
	char count[64], pr[32];
	int ret;

	if (r->pr_number > 0)
		snprintf(pr, sizeof(pr), "#%lld", (long long)r->pr_number);
	else
		snprintf(pr, sizeof(pr), "%s",
		         hl_notify_text_url_ok(r->pr_url, SL_LINK_URL_MAX) ? "open" : "(no PR)");
	hl_notify_text_attempts_count(count, sizeof(count), r);
	ret = hl_notify_text_agents(&agents, r, HL_NOTIFY_ESC_SLACK);
	if (ret == 0 && r->alert) {
		/* a running system's failure: what failed, no CI fields */
		if ((ret = sl_field(fields, "Alert", r->alert, false, NULL)) < 0 ||
		    (r->namespace &&
		     (ret = sl_field(fields, "Namespace", r->namespace, false, NULL)) < 0) ||
		    (r->pod && (ret = sl_field(fields, "Pod", r->pod, false, NULL)) < 0) ||
		    (r->application &&
		     (ret = sl_field(fields, "Application", r->application, false, NULL)) < 0) ||
		    (r->summary &&
		     (ret = sl_field(fields, "Summary", r->summary, false, NULL)) < 0))
			goto out;
	} else if (ret == 0 &&
	           ((ret = sl_field(fields, "Repository", r->repository, false, NULL)) < 0 ||
	            (ret = sl_field(fields, "Workflow", r->workflow, false, NULL)) < 0 ||
	            (ret = sl_field(fields, "Job", r->job, false, NULL)) < 0 ||
	            (ret = sl_field(fields, "Branch", r->branch, false, NULL)) < 0)) {
		goto out;
	}
	if (ret < 0 || (ret = sl_field(fields, "PR", pr, true, r->pr_url)) < 0 ||
	    (ret = sl_field(fields, "Attempts", count, true, NULL)) < 0 ||
	    (ret = sl_field(fields, "Agents tried", agents.data, true, NULL)) < 0 ||
	    (ret = sl_field(fields, "Failure type", r->failure_type, false, NULL)) < 0)
		goto out;
	if (r->kind == HL_NOTIFY_REPORT && r->state && *r->state)
		ret = sl_field(fields, "State", r->state, false, NULL);
out:
	hl_buf_release(&agents);
	return ret;
}

/* "*Summary of attempts*" and as many lines as fit in a section. */
static int
sl_summary(struct hl_buf *s, const struct hl_notify_report *r)
{
	struct hl_buf line = HL_BUF_INIT(0);
	size_t used, i;
	int ret = 0;

	hl_buf_append_str(s, "*Summary of attempts*");
	used = hl_notify_text_units(s->data, s->len);
	for (i = 0; i < r->n_attempts; i++) {
		const struct hl_notify_attempt *a = &r->attempts[i];
		size_t lu;

		hl_buf_reset(&line);
		hl_buf_appendf(&line, "\n%d. ", a->number > 0 ? a->number : (int)i + 1);
		hl_notify_text_attempt_line(&line, a, SL_LINE_CAP, HL_NOTIFY_ESC_SLACK);
		if (hl_buf_error(&line)) {
			ret = -HL_ENOMEM;
			goto out;
		}
		lu = hl_notify_text_units(line.data, line.len);
		if (used + lu + SL_MORE_RESERVE > SL_SECTION_MAX)
			break;
		hl_buf_append(s, line.data, line.len);
		used += lu;
	}
	if (i < r->n_attempts)
		hl_buf_appendf(s, "\n" HL_NOTIFY_ELLIPSIS " and %zu more", r->n_attempts - i);
	if (hl_buf_error(s))
		ret = -HL_ENOMEM;
out:
	hl_buf_release(&line);
	return ret;
}

/* The context line: healer, the task, links to the run and the task. */
static void
sl_context(struct hl_buf *c, const struct hl_notify_report *r)
{
	hl_buf_append_str(c, "healer");
	if (r->task_id && *r->task_id) {
		hl_buf_append_str(c, " \xc2\xb7 task ");
		hl_notify_text_append(c, r->task_id, 100, HL_NOTIFY_ESC_SLACK, HL_NOTIFY_TEXT_TRIM,
		                      NULL);
	}
	if (hl_notify_text_url_ok(r->run_url, SL_LINK_URL_MAX))
		hl_buf_appendf(c, " \xc2\xb7 <%s|workflow run>", r->run_url);
	if (hl_notify_text_url_ok(r->task_url, SL_LINK_URL_MAX))
		hl_buf_appendf(c, " \xc2\xb7 <%s|task page>", r->task_url);
}

/* Checks every text of the built message against Slack's limits. */
static bool
sl_within_limits(const json_t *root)
{
	const json_t *blocks = json_object_get(root, "blocks"), *b, *f;
	size_t i, j;

	if (json_array_size(blocks) > SL_BLOCKS_MAX)
		return false;
	json_array_foreach(blocks, i, b)
	{
		const char *type = json_string_value(json_object_get(b, "type"));
		const char *t =
		        json_string_value(json_object_get(json_object_get(b, "text"), "text"));
		size_t max = type && strcmp(type, "header") == 0 ? SL_HEADER_MAX : SL_SECTION_MAX;

		if (t && hl_notify_text_units(t, strlen(t)) > max)
			return false;
		if (json_array_size(json_object_get(b, "fields")) > SL_FIELDS_MAX)
			return false;
		json_array_foreach(json_object_get(b, "fields"), j, f)
		{
			t = json_string_value(json_object_get(f, "text"));
			if (t && hl_notify_text_units(t, strlen(t)) > SL_FIELD_MAX)
				return false;
		}
		json_array_foreach(json_object_get(b, "elements"), j, f)
		{
			t = json_string_value(json_object_get(f, "text"));
			if (t && hl_notify_text_units(t, strlen(t)) > SL_SECTION_MAX)
				return false;
		}
	}
	return true;
}

int
hl_notify_slack_build(char **out, const struct hl_notify_report *r, struct hl_err *err)
{
	struct hl_buf fb = HL_BUF_INIT(0), intro = HL_BUF_INIT(0), sum = HL_BUF_INIT(0);
	struct hl_buf ev = HL_BUF_INIT(0), ctx = HL_BUF_INIT(0), plain = HL_BUF_INIT(0);
	json_t *root = NULL, *blocks = NULL, *fields = NULL;
	bool esc = r->kind == HL_NOTIFY_ESCALATION;
	char *text = NULL;
	int ret = 0;

	/* the notification fallback */
	if (esc)
		hl_buf_appendf(&plain, "%s failed after %zu attempts: ",
		               r->alert ? "Remediation" : "CI remediation", r->n_attempts);
	else
		hl_buf_append_str(&plain,
		                  r->alert ? "Remediation report: " : "CI remediation report: ");
	hl_notify_text_subject(&plain, r);
	hl_notify_text_append(&fb, plain.data, SL_FALLBACK_CAP, HL_NOTIFY_ESC_SLACK,
	                      HL_NOTIFY_TEXT_TRIM, NULL);

	if (esc)
		hl_buf_append_str(&intro, "*Human intervention needed*: agents tried but couldn't "
		                          "fix this.");
	else
		hl_buf_append_str(&intro, "*CI remediation report*");
	if (hl_notify_text_url_ok(r->pr_url, SL_LINK_URL_MAX))
		hl_buf_appendf(&intro, "\nPlease investigate: <%s>", r->pr_url);
	else if (hl_notify_text_url_ok(r->run_url, SL_LINK_URL_MAX))
		hl_buf_appendf(&intro, "\nPlease investigate: <%s>", r->run_url);

	if (r->evidence && *r->evidence) {
		size_t mark;

		hl_buf_append_str(&ev, "*Current failure*\n```");
		mark = ev.len;
		hl_notify_text_append(&ev, r->evidence, SL_SECTION_MAX - 40,
		                      HL_NOTIFY_ESC_SLACK_CODE,
		                      HL_NOTIFY_TEXT_MULTILINE | HL_NOTIFY_TEXT_TRIM, NULL);
		if (ev.len == mark)
			hl_buf_reset(&ev);
		else
			hl_buf_append_str(&ev, "```");
	}
	sl_context(&ctx, r);
	if (r->n_attempts > 0 && (ret = sl_summary(&sum, r)) < 0)
		goto out;
	if (hl_buf_error(&fb) || hl_buf_error(&intro) || hl_buf_error(&ev) || hl_buf_error(&ctx) ||
	    hl_buf_error(&plain)) {
		ret = -HL_ENOMEM;
		goto out;
	}

	fields = json_array();
	if (!fields) {
		ret = -HL_ENOMEM;
		goto out;
	}
	if ((ret = sl_fields(fields, r)) < 0)
		goto out;
	blocks = json_array();
	if (!blocks) {
		ret = -HL_ENOMEM;
		goto out;
	}
	json_array_append_new(
	        blocks, json_pack("{s:s, s:{s:s, s:s, s:b}}", "type", "header", "text", "type",
	                          "plain_text", "text",
	                          esc ? (r->alert ? "\xf0\x9f\x9a\xa8 Remediation Failed"
	                                          : "\xf0\x9f\x9a\xa8 CI Remediation Failed")
	                              : (r->alert ? "Remediation Report" : "CI Remediation Report"),
	                          "emoji", 1));
	json_array_append_new(blocks, sl_section(&intro));
	json_array_append_new(blocks, json_pack("{s:s, s:O}", "type", "section", "fields", fields));
	if (sum.len)
		json_array_append_new(blocks, sl_section(&sum));
	if (ev.len)
		json_array_append_new(blocks, sl_section(&ev));
	json_array_append_new(
	        blocks, json_pack("{s:s, s:[o]}", "type", "context", "elements", sl_mrkdwn(&ctx)));
	root = json_pack("{s:s%, s:O, s:b, s:b}", "text", fb.data, fb.len, "blocks", blocks,
	                 "unfurl_links", 0, "unfurl_media", 0);
	if (!root || json_array_size(blocks) != (size_t)(4 + (sum.len > 0) + (ev.len > 0))) {
		ret = -HL_ENOMEM;
		goto out;
	}
	if (!sl_within_limits(root)) {
		ret = -HL_EINTERNAL;
		goto out;
	}
	text = json_dumps(root, JSON_COMPACT);
	if (!text) {
		ret = -HL_ENOMEM;
		goto out;
	}
	*out = text;
out:
	json_decref(root);
	json_decref(blocks);
	json_decref(fields);
	hl_buf_release(&fb);
	hl_buf_release(&intro);
	hl_buf_release(&sum);
	hl_buf_release(&ev);
	hl_buf_release(&ctx);
	hl_buf_release(&plain);
	if (ret == -HL_EINTERNAL)
		return hl_err_set(err, HL_EINTERNAL, "slack message over its limits");
	if (ret < 0)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	return 0;
}

/* Slack's error strings are lower-case words with underscores. */
static bool
slack_token(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n >= 60)
		return false;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '_' || (s[i] >= '0' && s[i] <= '9')))
			return false;
	return true;
}

/* Classifies Slack's answer: 200 "ok", else a status with a plain-text
 * error string. */
static void
slack_classify(struct hl_notify_result *out, const char *origin, const struct hl_notify_http *h)
{
	const char *b = h->body;
	size_t n = h->body_len;
	char tok[64], msg[160];
	int64_t wait = h->retry_after_s >= 0 ? h->retry_after_s * 1000 : -1;

	while (n > 0 && (b[n - 1] == '\n' || b[n - 1] == '\r' || b[n - 1] == ' '))
		n--;
	if (slack_token(b, n))
		snprintf(tok, sizeof(tok), "%.*s", (int)n, b);
	else
		snprintf(tok, sizeof(tok), "http_%ld", h->status);
	hl_notify_text_excerpt(msg, sizeof(msg), b, n);
	if (h->status >= 200 && h->status < 300)
		hl_notify_result_set(out, HL_NOTIFY_DELIVERED, h->status, -1, "",
		                     "'%s': delivered (status %ld)", origin, h->status);
	else if (h->status == 429)
		hl_notify_result_set(out, HL_NOTIFY_RETRY, 429, wait, "rate_limited",
		                     "'%s': rate limited, retry after %lld ms", origin,
		                     (long long)wait);
	else if (h->status >= 500 || h->status == 408)
		hl_notify_result_set(out, HL_NOTIFY_RETRY, h->status, wait,
		                     slack_token(b, n)  ? tok
		                     : h->status == 408 ? "http_408"
		                                        : "server_error",
		                     "'%s': status %ld: %s", origin, h->status, msg);
	else
		hl_notify_result_set(out, HL_NOTIFY_FAILED, h->status, -1, tok,
		                     "'%s': status %ld: %s", origin, h->status, msg);
}

int
hl_notify_slack_send(struct hl_notify_result *out, const char *webhook_url, const char *payload,
                     size_t len, const struct hl_notify_opts *opts, struct hl_err *err)
{
	static const char *const schemes[] = { "https", "http", NULL };
	struct hl_notify_result r;
	char origin[300];
	int ret;

	hl_fetch_global_init();
	if (!hl_notify_text_check_url(&r, origin, sizeof(origin), webhook_url, schemes)) {
		*out = r;
		return 0;
	}
	ret = hl_notify_http_post(&r, webhook_url, origin, payload, len, opts, slack_classify, err);
	if (ret == 0)
		*out = r;
	return ret;
}
