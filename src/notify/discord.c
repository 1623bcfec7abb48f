/*
 * discord.c - the Discord webhook message (one embed, after the design's
 * escalation example) and its sender.
 *
 * Invariants: the embed stays within Discord's limits, counted in UTF-16
 * units (title 256, description 4096, fields 25 of 256/1024, footer 2048,
 * 6000 in all; the builder checks the totals before returning), no field
 * value is empty, untrusted text is markdown-escaped (or fenced with its
 * backticks broken) and mentions are off ("allowed_mentions": {"parse":
 * []}, '@' followed by a zero-width space). The sender never names the
 * webhook's id or token.
 */
#include "base/clock.h"
#include "text.h"

#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DC_TITLE_MAX       256
#define DC_DESC_MAX        4096
#define DC_FIELDS_MAX      25
#define DC_FIELD_NAME_MAX  256
#define DC_FIELD_VALUE_MAX 1024
#define DC_FOOTER_MAX      2048
#define DC_TOTAL_MAX       6000

/* Our own caps, so that the fields never starve the description. */
#define DC_TITLE_CAP    200
#define DC_FIELD_CAP    200
#define DC_LINK_URL_MAX 180
#define DC_FOOTER_CAP   150
#define DC_LINE_CAP     300
#define DC_EVIDENCE_CAP 1000
#define DC_MORE_RESERVE 40

#define DC_SUMMARY_HEAD "\n\n**Summary of attempts**:"

#define DC_COLOR_CRITICAL 0xe74c3c
#define DC_COLOR_INFO     0x3498db

struct dc_embed {
	json_t *fields;
	size_t units; /* title + fields + footer + description so far */
	size_t n_fields;
};

/* Adds an inline field; an empty value becomes "-". */
static int
dc_field(struct dc_embed *e, const char *name, struct hl_buf *value)
{
	json_t *f;
	size_t u;

	if (value->len == 0)
		hl_buf_append_str(value, "-");
	if (hl_buf_error(value))
		return -HL_ENOMEM;
	u = hl_notify_text_units(value->data, value->len);
	if (u > DC_FIELD_VALUE_MAX || strlen(name) > DC_FIELD_NAME_MAX ||
	    e->n_fields >= DC_FIELDS_MAX)
		return -HL_EINTERNAL;
	f = json_pack("{s:s, s:s%, s:b}", "name", name, "value", value->data, value->len, "inline",
	              1);
	if (!f || json_array_append_new(e->fields, f) < 0)
		return -HL_ENOMEM;
	e->units += strlen(name) + u;
	e->n_fields++;
	return 0;
}

/* A field whose value is one escaped untrusted text. */
static int
dc_text_field(struct dc_embed *e, const char *name, const char *text)
{
	struct hl_buf v = HL_BUF_INIT(0);
	int ret;

	hl_notify_text_append(&v, text, DC_FIELD_CAP, HL_NOTIFY_ESC_DISCORD, HL_NOTIFY_TEXT_TRIM,
	                      NULL);
	ret = dc_field(e, name, &v);
	hl_buf_release(&v);
	return ret;
}

/* A field whose value the builder composed (no untrusted text). */
static int
dc_own_field(struct dc_embed *e, const char *name, const char *value)
{
	struct hl_buf v = HL_BUF_INIT(0);
	int ret;

	hl_buf_append_str(&v, value);
	ret = dc_field(e, name, &v);
	hl_buf_release(&v);
	return ret;
}

/* A link field: "[label](url)" when url is usable, else the label (escaped
 * unless own, the builder's text), or nothing when both are empty. */
static int
dc_link_field(struct dc_embed *e, const char *name, const char *label, bool own, const char *url)
{
	struct hl_buf v = HL_BUF_INIT(0);
	bool link = hl_notify_text_url_ok(url, DC_LINK_URL_MAX);
	int ret = 0;

	if (!link && (!label || !*label))
		return 0;
	if (link)
		hl_buf_append_char(&v, '[');
	if (own)
		hl_buf_append_str(&v, label);
	else
		hl_notify_text_append(&v, label && *label ? label : "open", DC_FIELD_CAP / 2,
		                      HL_NOTIFY_ESC_DISCORD, HL_NOTIFY_TEXT_TRIM, NULL);
	if (link)
		hl_buf_appendf(&v, "](%s)", url);
	ret = dc_field(e, name, &v);
	hl_buf_release(&v);
	return ret;
}

static int
dc_fields(struct dc_embed *e, const struct hl_notify_report *r)
{
	struct hl_buf agents = HL_BUF_INIT(0);
	char count[64], pr[32];
	int ret;

	if (r->alert) {
		/* a running system's failure: what failed, no CI fields */
		if ((ret = dc_text_field(e, "Alert", r->alert)) < 0 ||
		    (r->namespace && (ret = dc_text_field(e, "Namespace", r->namespace)) < 0) ||
		    (r->pod && (ret = dc_text_field(e, "Pod", r->pod)) < 0) ||
		    (r->application &&
		     (ret = dc_text_field(e, "Application", r->application)) < 0) ||
		    (r->summary && (ret = dc_text_field(e, "Summary", r->summary)) < 0) ||
		    (r->repository && (ret = dc_text_field(e, "Repository", r->repository)) < 0))
			goto out;
	} else if ((ret = dc_text_field(e, "Repository", r->repository)) < 0 ||
	           (ret = dc_text_field(e, "Workflow", r->workflow)) < 0 ||
	           (ret = dc_text_field(e, "Job", r->job)) < 0 ||
	           (ret = dc_text_field(e, "Branch", r->branch)) < 0) {
		goto out;
	}
	if (r->pr_number > 0) {
		snprintf(pr, sizeof(pr), "#%lld", (long long)r->pr_number);
		ret = dc_link_field(e, "PR", pr, true, r->pr_url);
	} else if (hl_notify_text_url_ok(r->pr_url, DC_LINK_URL_MAX)) {
		ret = dc_link_field(e, "PR", "open", true, r->pr_url);
	} else {
		ret = dc_own_field(e, "PR", "(no PR)");
	}
	if (ret < 0)
		goto out;
	hl_notify_text_attempts_count(count, sizeof(count), r);
	if ((ret = dc_own_field(e, "Attempts", count)) < 0)
		goto out;
	if ((ret = hl_notify_text_agents(&agents, r, HL_NOTIFY_ESC_DISCORD)) < 0 ||
	    (ret = dc_field(e, "Agents Tried", &agents)) < 0 ||
	    (ret = dc_text_field(e, "Failure Type", r->failure_type)) < 0 ||
	    (!(r->alert && !hl_notify_text_url_ok(r->run_url, DC_LINK_URL_MAX)) &&
	     (ret = dc_link_field(e, "Run", "workflow run", true, r->run_url)) < 0) ||
	    (ret = dc_link_field(e, "Task", r->task_id, false, r->task_url)) < 0)
		goto out;
	if (r->kind == HL_NOTIFY_REPORT && r->state && *r->state)
		ret = dc_text_field(e, "State", r->state);
out:
	hl_buf_release(&agents);
	return ret;
}

/* The description, within avail units: intro, summary of attempts (as
 * many lines as fit, then "… and N more"), the current failure fenced,
 * the link to investigate. */
static int
dc_description(struct hl_buf *d, const struct hl_notify_report *r, size_t avail)
{
	struct hl_buf ev = HL_BUF_INIT(0), tail = HL_BUF_INIT(0), line = HL_BUF_INIT(0);
	const char *look = hl_notify_text_url_ok(r->pr_url, 500)     ? r->pr_url
	                   : hl_notify_text_url_ok(r->run_url, 500)  ? r->run_url
	                   : hl_notify_text_url_ok(r->task_url, 500) ? r->task_url
	                                                             : NULL;
	size_t used, i, cap_ev;
	int ret = 0;

	if (r->kind == HL_NOTIFY_ESCALATION)
		hl_buf_append_str(d, "**Human intervention needed**: agents tried but couldn't fix "
		                     "this.");
	else
		hl_buf_append_str(d, "**CI remediation report**");
	if (look)
		hl_buf_appendf(&tail, "\n\nPlease investigate: %s", look);
	cap_ev = avail / 3 < DC_EVIDENCE_CAP ? avail / 3 : DC_EVIDENCE_CAP;
	if (r->evidence && *r->evidence) {
		size_t mark;

		hl_buf_append_str(&ev, "\n\n**Current Failure**:\n```\n");
		mark = ev.len;
		hl_notify_text_append(&ev, r->evidence, cap_ev, HL_NOTIFY_ESC_DISCORD_CODE,
		                      HL_NOTIFY_TEXT_MULTILINE | HL_NOTIFY_TEXT_TRIM, NULL);
		if (ev.len == mark)
			hl_buf_setlen(&ev, 0);
		else
			hl_buf_append_str(&ev, "\n```");
	}
	if (hl_buf_error(d) || hl_buf_error(&ev) || hl_buf_error(&tail)) {
		ret = -HL_ENOMEM;
		goto out;
	}
	used = hl_notify_text_units(d->data, d->len) + hl_notify_text_units(ev.data, ev.len) +
	       hl_notify_text_units(tail.data, tail.len);
	if (used > avail) {
		ret = -HL_EINTERNAL;
		goto out;
	}
	if (r->n_attempts > 0 && used + strlen(DC_SUMMARY_HEAD) + DC_MORE_RESERVE <= avail) {
		hl_buf_append_str(d, DC_SUMMARY_HEAD);
		used += strlen(DC_SUMMARY_HEAD);
		for (i = 0; i < r->n_attempts; i++) {
			const struct hl_notify_attempt *a = &r->attempts[i];
			size_t lu;

			hl_buf_reset(&line);
			hl_buf_appendf(&line, "\n%d. ", a->number > 0 ? a->number : (int)i + 1);
			hl_notify_text_attempt_line(&line, a, DC_LINE_CAP, HL_NOTIFY_ESC_DISCORD);
			if (hl_buf_error(&line)) {
				ret = -HL_ENOMEM;
				goto out;
			}
			lu = hl_notify_text_units(line.data, line.len);
			if (used + lu + DC_MORE_RESERVE > avail)
				break;
			hl_buf_append(d, line.data, line.len);
			used += lu;
		}
		if (i < r->n_attempts)
			hl_buf_appendf(d, "\n" HL_NOTIFY_ELLIPSIS " and %zu more",
			               r->n_attempts - i);
	}
	hl_buf_append(d, ev.data, ev.len);
	hl_buf_append(d, tail.data, tail.len);
	if (hl_buf_error(d))
		ret = -HL_ENOMEM;
out:
	hl_buf_release(&ev);
	hl_buf_release(&tail);
	hl_buf_release(&line);
	return ret;
}

int
hl_notify_discord_build(char **out, const struct hl_notify_report *r, struct hl_err *err)
{
	struct hl_buf title = HL_BUF_INIT(0), desc = HL_BUF_INIT(0), foot = HL_BUF_INIT(0);
	struct dc_embed e = { NULL, 0, 0 };
	json_t *embed = NULL, *root = NULL;
	char ts[40];
	size_t tu, fu, avail, du;
	char *text = NULL;
	bool oom = false;
	int ret;

	e.fields = json_array();
	if (!e.fields) {
		ret = -HL_ENOMEM;
		goto out;
	}
	if (r->alert) {
		struct hl_buf what = HL_BUF_INIT(0);

		hl_buf_append_str(&title, r->kind == HL_NOTIFY_ESCALATION
		                                  ? "\xf0\x9f\x9a\xa8 Remediation Failed: "
		                                  : "Remediation Report: ");
		hl_notify_text_subject(&what, r);
		hl_notify_text_append(&title, what.data,
		                      DC_TITLE_CAP - hl_notify_text_units(title.data, title.len),
		                      HL_NOTIFY_ESC_DISCORD, HL_NOTIFY_TEXT_TRIM, NULL);
		oom = hl_buf_error(&what);
		hl_buf_release(&what);
	} else {
		hl_buf_append_str(&title, r->kind == HL_NOTIFY_ESCALATION
		                                  ? "\xf0\x9f\x9a\xa8 CI Remediation Failed: "
		                                  : "CI Remediation Report: ");
		hl_notify_text_append(&title, r->repository && *r->repository ? r->repository : "-",
		                      DC_TITLE_CAP - hl_notify_text_units(title.data, title.len),
		                      HL_NOTIFY_ESC_DISCORD, HL_NOTIFY_TEXT_TRIM, NULL);
	}
	hl_buf_append_str(&foot, "healer");
	if (r->task_id && *r->task_id) {
		hl_buf_append_str(&foot, " \xc2\xb7 task ");
		hl_notify_text_append(&foot, r->task_id, DC_FOOTER_CAP - 20, HL_NOTIFY_ESC_PLAIN,
		                      HL_NOTIFY_TEXT_TRIM, NULL);
	}
	if (oom || hl_buf_error(&title) || hl_buf_error(&foot)) {
		ret = -HL_ENOMEM;
		goto out;
	}
	ret = dc_fields(&e, r);
	if (ret < 0)
		goto out;
	tu = hl_notify_text_units(title.data, title.len);
	fu = hl_notify_text_units(foot.data, foot.len);
	if (tu > DC_TITLE_MAX || fu > DC_FOOTER_MAX || tu + fu + e.units >= DC_TOTAL_MAX) {
		ret = -HL_EINTERNAL;
		goto out;
	}
	avail = DC_TOTAL_MAX - tu - fu - e.units;
	if (avail > DC_DESC_MAX)
		avail = DC_DESC_MAX;
	ret = dc_description(&desc, r, avail);
	if (ret < 0)
		goto out;
	du = hl_notify_text_units(desc.data, desc.len);
	if (du > DC_DESC_MAX || tu + fu + e.units + du > DC_TOTAL_MAX) {
		ret = -HL_EINTERNAL;
		goto out;
	}
	hl_time_rfc3339(ts, sizeof(ts), hl_notify_text_report_time(r));
	embed = json_pack("{s:s, s:s%, s:s%, s:i, s:s, s:{s:s%}, s:O}", "type", "rich", "title",
	                  title.data, title.len, "description", desc.data, desc.len, "color",
	                  r->kind == HL_NOTIFY_ESCALATION ? DC_COLOR_CRITICAL : DC_COLOR_INFO,
	                  "timestamp", ts, "footer", "text", foot.data, foot.len, "fields",
	                  e.fields);
	if (embed && hl_notify_text_url_ok(r->pr_url, 500))
		json_object_set_new(embed, "url", json_string(r->pr_url));
	root = embed ? json_pack("{s:s, s:{s:[]}, s:[O]}", "username", "healer", "allowed_mentions",
	                         "parse", "embeds", embed)
	             : NULL;
	text = root ? json_dumps(root, JSON_COMPACT) : NULL;
	if (!text) {
		ret = -HL_ENOMEM;
		goto out;
	}
	*out = text;
	ret = 0;
out:
	json_decref(e.fields);
	json_decref(embed);
	json_decref(root);
	hl_buf_release(&title);
	hl_buf_release(&desc);
	hl_buf_release(&foot);
	if (ret == -HL_EINTERNAL)
		return hl_err_set(err, HL_EINTERNAL, "discord embed over its limits");
	if (ret < 0)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	return 0;
}

/* Classifies Discord's answer: its JSON body carries "code", "message"
 * and, on 429, "retry_after" (seconds, a float) and "global". */
static void
discord_classify(struct hl_notify_result *out, const char *origin, const struct hl_notify_http *h)
{
	json_t *v = json_loadb(h->body, h->body_len, 0, NULL);
	json_t *ra = json_object_get(v, "retry_after");
	long long code = json_integer_value(json_object_get(v, "code"));
	const char *m = json_string_value(json_object_get(v, "message"));
	char msg[160], tok[64];
	int64_t wait = -1;

	hl_notify_text_excerpt(msg, sizeof(msg), m ? m : h->body, m ? strlen(m) : h->body_len);
	if (h->status >= 200 && h->status < 300) {
		hl_notify_result_set(out, HL_NOTIFY_DELIVERED, h->status, -1, "",
		                     "'%s': delivered (status %ld)", origin, h->status);
	} else if (h->status == 429) {
		if (json_is_number(ra) && json_number_value(ra) >= 0 &&
		    json_number_value(ra) < 86400.0)
			wait = (int64_t)ceil(json_number_value(ra) * 1000.0);
		else if (h->retry_after_s >= 0)
			wait = h->retry_after_s * 1000;
		hl_notify_result_set(out, HL_NOTIFY_RETRY, 429, wait, "rate_limited",
		                     "'%s': rate limited%s, retry after %lld ms", origin,
		                     json_is_true(json_object_get(v, "global")) ? " (global)" : "",
		                     (long long)wait);
	} else if (h->status >= 500 || h->status == 408) {
		if (h->retry_after_s >= 0)
			wait = h->retry_after_s * 1000;
		hl_notify_result_set(out, HL_NOTIFY_RETRY, h->status, wait,
		                     h->status == 408 ? "http_408" : "server_error",
		                     "'%s': status %ld: %s", origin, h->status, msg);
	} else {
		if (code > 0)
			snprintf(tok, sizeof(tok), "discord_%lld", code);
		else
			snprintf(tok, sizeof(tok), "http_%ld", h->status);
		if (code > 0)
			hl_notify_result_set(out, HL_NOTIFY_FAILED, h->status, -1, tok,
			                     "'%s': status %ld: %s (code %lld)", origin, h->status,
			                     msg, code);
		else
			hl_notify_result_set(out, HL_NOTIFY_FAILED, h->status, -1, tok,
			                     "'%s': status %ld: %s", origin, h->status, msg);
	}
	/* the bucket is empty: a request before its reset gets a 429, even
	 * right after a delivery */
	if (h->rl_remaining == 0 && h->rl_reset_after_ms >= 0)
		out->hold_ms = h->rl_reset_after_ms < HL_NOTIFY_HOLD_MAX_MS ? h->rl_reset_after_ms
		                                                            : HL_NOTIFY_HOLD_MAX_MS;
	json_decref(v);
}

/* The webhook URL with wait=true added to its query (unless it names
 * wait already); NULL when out of memory. Free with curl_free. */
static char *
discord_wait_url(const char *url)
{
	CURLU *h = curl_url();
	char *q = NULL, *u = NULL;

	if (!h)
		return NULL;
	if (curl_url_set(h, CURLUPART_URL, url, 0) != CURLUE_OK)
		goto out;
	curl_url_get(h, CURLUPART_QUERY, &q, 0);
	if (!q || (strncmp(q, "wait=", 5) != 0 && !strstr(q, "&wait=")))
		curl_url_set(h, CURLUPART_QUERY, "wait=true", CURLU_APPENDQUERY);
	curl_url_get(h, CURLUPART_URL, &u, 0);
out:
	curl_free(q);
	curl_url_cleanup(h);
	return u;
}

int
hl_notify_discord_send(struct hl_notify_result *out, const char *webhook_url, const char *payload,
                       size_t len, const struct hl_notify_opts *opts, struct hl_err *err)
{
	static const char *const schemes[] = { "https", "http", NULL };
	struct hl_notify_result r;
	char origin[300];
	char *url;
	int ret;

	hl_fetch_global_init();
	if (!hl_notify_text_check_url(&r, origin, sizeof(origin), webhook_url, schemes)) {
		*out = r;
		return 0;
	}
	url = discord_wait_url(webhook_url);
	if (!url)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	ret = hl_notify_http_post(&r, url, origin, payload, len, opts, discord_classify, err);
	curl_free(url);
	if (ret == 0)
		*out = r;
	return ret;
}
