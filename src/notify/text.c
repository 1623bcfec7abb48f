/*
 * text.c - text shaping shared by the notify channels, and the HTTP send
 * the webhook channels and GitHub share.
 *
 * Invariants: hl_notify_text_append never emits invalid UTF-8, a control
 * character (other than LF in multi-line mode) or an unescaped markup
 * character of its mode, and never more units than its budget; escapes
 * are emitted whole or not at all. Nothing here puts a URL's userinfo,
 * path or query into a result message.
 */
#include "text.h"

#include "base/clock.h"
#include "base/log.h"
#include "base/str.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEXT_ELLIPSIS_UNITS 1

const char *
hl_notify_channel_name(enum hl_notify_channel c)
{
	switch (c) {
	case HL_NOTIFY_DISCORD:
		return "discord";
	case HL_NOTIFY_SLACK:
		return "slack";
	case HL_NOTIFY_EMAIL:
		return "email";
	case HL_NOTIFY_GITHUB:
		return "github";
	}
	return "unknown";
}

const char *
hl_notify_status_name(enum hl_notify_status s)
{
	switch (s) {
	case HL_NOTIFY_DELIVERED:
		return "delivered";
	case HL_NOTIFY_RETRY:
		return "retry";
	case HL_NOTIFY_FAILED:
		return "failed";
	}
	return "unknown";
}

const char *
hl_notify_outcome_label(const char *outcome)
{
	static const struct {
		const char *outcome, *label;
	} labels[] = {
		{ "success", "fixed" },
		{ "ci_still_failing", "CI still failing" },
		{ "agent_failed", "agent failed" },
		{ "timeout", "timed out" },
		{ "stopped", "stopped" },
		{ "rerun_passed", "re-run passed" },
		{ "rerun_failed", "re-run failed" },
		{ "running", "running" },
	};
	size_t i;

	if (!outcome || !*outcome)
		return "running";
	for (i = 0; i < sizeof(labels) / sizeof(labels[0]); i++)
		if (strcmp(outcome, labels[i].outcome) == 0)
			return labels[i].label;
	return outcome;
}

/* Decodes one code point at *pp and advances; malformed input (a bad lead
 * byte, a missing continuation, an overlong form, a surrogate, > U+10FFFF)
 * gives U+FFFD. The string is NUL-terminated, so a NUL ends a sequence. */
static uint32_t
text_decode(const unsigned char **pp)
{
	const unsigned char *p = *pp;
	uint32_t c = p[0], min;
	int n, i;

	if (c < 0x80) {
		*pp = p + 1;
		return c;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		n = 1;
		c &= 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 2;
		c &= 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 3;
		c &= 0x07;
		min = 0x10000;
	} else {
		*pp = p + 1;
		return 0xfffd;
	}
	for (i = 1; i <= n; i++) {
		if ((p[i] & 0xc0) != 0x80) {
			*pp = p + i;
			return 0xfffd;
		}
		c = (c << 6) | (p[i] & 0x3f);
	}
	*pp = p + n + 1;
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0xfffd;
	return c;
}

static size_t
text_encode(uint32_t c, char *out)
{
	if (c < 0x80) {
		out[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		out[0] = (char)(0xc0 | (c >> 6));
		out[1] = (char)(0x80 | (c & 0x3f));
		return 2;
	}
	if (c < 0x10000) {
		out[0] = (char)(0xe0 | (c >> 12));
		out[1] = (char)(0x80 | ((c >> 6) & 0x3f));
		out[2] = (char)(0x80 | (c & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (c >> 18));
	out[1] = (char)(0x80 | ((c >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((c >> 6) & 0x3f));
	out[3] = (char)(0x80 | (c & 0x3f));
	return 4;
}

/* Characters dropped by cleaning (line breaks and tab are handled first). */
static bool
text_dropped(uint32_t c)
{
	return c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) || c == 0xfeff ||
	       (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
}

/* Writes the escaped form of c for esc into out (at most 8 bytes); *units
 * gets its UTF-16 units. */
static size_t
text_escape(enum hl_notify_esc esc, uint32_t c, char *out, size_t *units)
{
	const char *punct = NULL;
	size_t n;

	if (c == '@' && esc != HL_NOTIFY_ESC_NONE) {
		memcpy(out, "@" HL_NOTIFY_ZWSP, 4);
		*units = 2;
		return 4;
	}
	if (esc == HL_NOTIFY_ESC_SLACK || esc == HL_NOTIFY_ESC_GITHUB ||
	    esc == HL_NOTIFY_ESC_SLACK_CODE) {
		const char *ent = c == '&' ? "&amp;" : c == '<' ? "&lt;" : c == '>' ? "&gt;" : NULL;

		if (ent) {
			n = strlen(ent);
			memcpy(out, ent, n);
			*units = n;
			return n;
		}
	}
	if (esc == HL_NOTIFY_ESC_DISCORD)
		punct = "\\*_~`|><#[]()";
	else if (esc == HL_NOTIFY_ESC_GITHUB)
		punct = "\\`*_[]()|~#!$";
	if (esc == HL_NOTIFY_ESC_GITHUB && c == '#') {
		/* GitHub links "#N" and "owner/repo#N" (and cross-references
		 * that issue) even after a backslash; a zero-width space after
		 * the '#' breaks the reference, the backslash a heading */
		memcpy(out, "\\#" HL_NOTIFY_ZWSP, 5);
		*units = 3;
		return 5;
	}
	if (punct && c < 0x80 && c && strchr(punct, (int)c)) {
		out[0] = '\\';
		out[1] = (char)c;
		*units = 2;
		return 2;
	}
	if ((esc == HL_NOTIFY_ESC_DISCORD_CODE || esc == HL_NOTIFY_ESC_SLACK_CODE) && c == '`') {
		memcpy(out, "`" HL_NOTIFY_ZWSP, 4);
		*units = 2;
		return 4;
	}
	*units = c >= 0x10000 ? 2 : 1;
	return text_encode(c, out);
}

/* Whether c, after prev1, prev2 and prev3 (the last characters kept), would
 * complete what GitHub autolinks: the second '/' of "://", or the '.' of
 * "www." (any case). */
static bool
text_autolink(uint32_t c, uint32_t prev1, uint32_t prev2, uint32_t prev3)
{
	if (c == '/')
		return prev1 == '/' && prev2 == ':';
	if (c == '.')
		return (prev1 | 0x20) == 'w' && (prev2 | 0x20) == 'w' && (prev3 | 0x20) == 'w';
	return false;
}

/* Removes trailing spaces and line breaks after byte start; returns the
 * units removed. */
static size_t
text_rtrim(struct hl_buf *b, size_t start)
{
	size_t n = b->len, removed = 0;

	while (n > start && (b->data[n - 1] == ' ' || b->data[n - 1] == '\n')) {
		n--;
		removed++;
	}
	if (removed)
		hl_buf_setlen(b, n);
	return removed;
}

size_t
hl_notify_text_append(struct hl_buf *b, const char *s, size_t max_units, enum hl_notify_esc esc,
                      unsigned flags, bool *cut_out)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t start = b->len, units = 0, keep_len = b->len, keep_units = 0;
	size_t cap = max_units ? max_units : SIZE_MAX;
	bool cut = false, lead = (flags & HL_NOTIFY_TEXT_TRIM) != 0;
	uint32_t prev1 = 0, prev2 = 0, prev3 = 0; /* the last three characters kept */

	while (*p) {
		uint32_t c = text_decode(&p);
		char enc[8];
		size_t n, u;

		if (c == '\r') {
			if (*p == '\n')
				p++;
			c = '\n';
		} else if (c == 0x2028 || c == 0x2029) {
			c = '\n';
		}
		if (c == '\n' && !(flags & HL_NOTIFY_TEXT_MULTILINE))
			c = ' ';
		else if (c == '\t')
			c = ' ';
		else if (c != '\n' && text_dropped(c))
			continue;
		if (lead && (c == ' ' || c == '\n'))
			continue;
		lead = false;
		n = text_escape(esc, c, enc, &u);
		if (esc == HL_NOTIFY_ESC_GITHUB && c == '-' && (prev1 == 'H' || prev1 == 'h') &&
		    (prev2 == 'G' || prev2 == 'g')) {
			/* "GH-N" is an issue reference too */
			memcpy(enc + n, HL_NOTIFY_ZWSP, 3);
			n += 3;
			u += 1;
		}
		if (esc == HL_NOTIFY_ESC_GITHUB && text_autolink(c, prev1, prev2, prev3)) {
			/* GitHub autolinks "scheme://host" and "www.host" (and a
			 * link to another repository's issue cross-references it):
			 * a zero-width space inside "://" or "www." breaks it */
			memmove(enc + 3, enc, n);
			memcpy(enc, HL_NOTIFY_ZWSP, 3);
			n += 3;
			u += 1;
		}
		prev3 = prev2;
		prev2 = prev1;
		prev1 = c;
		if (units + u > cap) {
			cut = true;
			break;
		}
		if (hl_buf_append(b, enc, n) < 0)
			break;
		units += u;
		if (units + TEXT_ELLIPSIS_UNITS <= cap) {
			keep_len = b->len;
			keep_units = units;
		}
	}
	if (cut) {
		hl_buf_setlen(b, keep_len);
		units = keep_units - text_rtrim(b, start);
		hl_buf_append_str(b, HL_NOTIFY_ELLIPSIS);
		units += TEXT_ELLIPSIS_UNITS;
	} else if (flags & HL_NOTIFY_TEXT_TRIM) {
		units -= text_rtrim(b, start);
	}
	if (cut_out)
		*cut_out = cut;
	return units;
}

size_t
hl_notify_text_units(const char *s, size_t n)
{
	size_t i, units = 0;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c & 0xc0) == 0x80)
			continue;
		units += c >= 0xf0 ? 2 : 1;
	}
	return units;
}

bool
hl_notify_text_url_ok(const char *url, size_t max_len)
{
	const char *p;
	size_t n;

	if (!url)
		return false;
	if (hl_str_starts_with(url, "https://"))
		p = url + 8;
	else if (hl_str_starts_with(url, "http://"))
		p = url + 7;
	else
		return false;
	n = strlen(url);
	if (n > max_len || !*p || *p == '/' || *p == '?' || *p == '#')
		return false;
	for (p = url; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if (c <= 0x20 || c >= 0x7f || strchr("\"'\\`()<>[]{}|^", c))
			return false;
	}
	return true;
}

void
hl_notify_text_duration(char *out, size_t size, int64_t start_ms, int64_t end_ms)
{
	long long s;

	if (start_ms <= 0 || end_ms <= 0 || end_ms < start_ms) {
		snprintf(out, size, "-");
		return;
	}
	s = (long long)((end_ms - start_ms) / 1000);
	if (s < 60)
		snprintf(out, size, "%llds", s);
	else if (s < 3600)
		snprintf(out, size, "%lldm %02llds", s / 60, s % 60);
	else if (s < 86400)
		snprintf(out, size, "%lldh %02lldm", s / 3600, (s / 60) % 60);
	else
		snprintf(out, size, "%lldd %02lldh", s / 86400, (s / 3600) % 24);
}

/* At most this many attempts are read from a report, and this many
 * distinct agents shown; an agent's name or an outcome gets this many
 * units. */
#define TEXT_MAX_ATTEMPTS 1000
#define TEXT_MAX_AGENTS   10
#define TEXT_AGENT_CAP    60

/* The agent's name, "unknown" when missing. */
static const char *
text_agent(const struct hl_notify_attempt *a)
{
	return a->agent && *a->agent ? a->agent : "unknown";
}

int
hl_notify_text_agents(struct hl_buf *b, const struct hl_notify_report *r, enum hl_notify_esc esc)
{
	size_t n = r->n_attempts < TEXT_MAX_ATTEMPTS ? r->n_attempts : TEXT_MAX_ATTEMPTS;
	size_t i, j, shown = 0;

	for (i = 0; i < n && shown < TEXT_MAX_AGENTS; i++) {
		const char *a = text_agent(&r->attempts[i]);
		size_t count = 0;
		bool seen = false;

		for (j = 0; j < i && !seen; j++)
			seen = strcmp(text_agent(&r->attempts[j]), a) == 0;
		if (seen)
			continue;
		for (j = i; j < n; j++)
			if (strcmp(text_agent(&r->attempts[j]), a) == 0)
				count++;
		if (shown)
			hl_buf_append_str(b, ", ");
		hl_notify_text_append(b, a, TEXT_AGENT_CAP, esc, HL_NOTIFY_TEXT_TRIM, NULL);
		hl_buf_appendf(b, " (%zux)", count);
		shown++;
	}
	if (!shown)
		hl_buf_append_str(b, "-");
	return hl_buf_error(b);
}

int
hl_notify_text_attempt_line(struct hl_buf *b, const struct hl_notify_attempt *a, size_t max_units,
                            enum hl_notify_esc esc)
{
	const char *why = a->reason && *a->reason ? a->reason : a->status_message;
	size_t used;

	used = hl_notify_text_append(b, text_agent(a), TEXT_AGENT_CAP, esc, HL_NOTIFY_TEXT_TRIM,
	                             NULL);
	hl_buf_append_str(b, ": ");
	used += 2 + hl_notify_text_append(b, hl_notify_outcome_label(a->outcome), TEXT_AGENT_CAP,
	                                  esc, HL_NOTIFY_TEXT_TRIM, NULL);
	if (why && *why && used + 3 + 1 < max_units) {
		hl_buf_append_str(b, " - ");
		hl_notify_text_append(b, why, max_units - used - 3, esc, HL_NOTIFY_TEXT_TRIM, NULL);
	}
	return hl_buf_error(b);
}

static const char *
text_or_dash(const char *s)
{
	return s && *s ? s : "-";
}

int
hl_notify_text_subject(struct hl_buf *b, const struct hl_notify_report *r)
{
	if (r->alert) {
		const char *what = r->pod && *r->pod ? r->pod : r->application;

		hl_buf_appendf(b, "%s on %s%s%s", text_or_dash(r->alert),
		               r->namespace && *r->namespace ? r->namespace : "",
		               r->namespace && *r->namespace ? "/" : "", text_or_dash(what));
	} else {
		hl_buf_appendf(b, "%s %s on %s", text_or_dash(r->repository),
		               text_or_dash(r->workflow), text_or_dash(r->branch));
	}
	return hl_buf_error(b) ? -HL_ENOMEM : 0;
}

void
hl_notify_text_attempts_count(char *out, size_t size, const struct hl_notify_report *r)
{
	if (r->max_attempts > 0)
		snprintf(out, size, "%zu (max %d)", r->n_attempts, r->max_attempts);
	else
		snprintf(out, size, "%zu", r->n_attempts);
}

int64_t
hl_notify_text_report_time(const struct hl_notify_report *r)
{
	return r->time_ms > 0 ? r->time_ms : hl_time_wall_ms();
}

/* Drops an incomplete UTF-8 sequence at the end of s (left by a bounded
 * copy or format). */
static void
text_cut_partial(char *s)
{
	size_t n = strlen(s), k = n, need;
	unsigned char c;

	while (k > 0 && ((unsigned char)s[k - 1] & 0xc0) == 0x80)
		k--;
	if (k == 0)
		return;
	c = (unsigned char)s[k - 1];
	if (c < 0xc0)
		return;
	need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
	if (n - (k - 1) < need)
		s[k - 1] = '\0';
}

void
hl_notify_result_set(struct hl_notify_result *out, enum hl_notify_status status, long code,
                     int64_t retry_after_ms, const char *error, const char *fmt, ...)
{
	va_list ap;
	char *p;

	memset(out, 0, sizeof(*out));
	out->status = status;
	out->code = code;
	out->retry_after_ms = status == HL_NOTIFY_RETRY ? retry_after_ms : -1;
	hl_strlcpy(out->error, error ? error : "", sizeof(out->error));
	va_start(ap, fmt);
	vsnprintf(out->message, sizeof(out->message), fmt, ap);
	va_end(ap);
	for (p = out->message; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	text_cut_partial(out->message);
}

void
hl_notify_text_excerpt(char *out, size_t size, const char *s, size_t n)
{
	struct hl_buf b = HL_BUF_INIT(0), tmp = HL_BUF_INIT(0);

	/* s may hold NUL bytes or lack one: copy the first n bytes first; a
	 * service may echo a credential it was sent: redacted before the cut,
	 * so none is left half */
	hl_buf_append(&tmp, s ? s : "", s ? n : 0);
	if (hl_log_redact_buf(&tmp) < 0)
		hl_buf_reset(&tmp);
	hl_notify_text_append(&b, tmp.data, 120, HL_NOTIFY_ESC_NONE, HL_NOTIFY_TEXT_TRIM, NULL);
	if (hl_buf_error(&b) || hl_buf_error(&tmp))
		hl_strlcpy(out, "", size);
	else
		hl_strlcpy(out, b.data, size);
	/* hl_strlcpy may cut a character */
	text_cut_partial(out);
	hl_buf_release(&b);
	hl_buf_release(&tmp);
}

bool
hl_notify_text_check_url(struct hl_notify_result *out, char *origin, size_t size, const char *url,
                         const char *const *schemes)
{
	CURLU *h = NULL;
	char *scheme = NULL, *host = NULL, *port = NULL;
	const char *p;
	bool ok = false;
	size_t i;

	hl_strlcpy(origin, "?", size);
	if (!url || !*url) {
		hl_notify_result_set(out, HL_NOTIFY_FAILED, 0, -1, "bad_url", "no url configured");
		return false;
	}
	for (p = url; *p; p++) {
		if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
			hl_notify_result_set(out, HL_NOTIFY_FAILED, 0, -1, "bad_url",
			                     "the url holds a space or a control character");
			return false;
		}
	}
	h = curl_url();
	if (!h) {
		hl_notify_result_set(out, HL_NOTIFY_RETRY, 0, -1, "internal", "out of memory");
		return false;
	}
	if (curl_url_set(h, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(h, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host[0]) {
		hl_notify_result_set(out, HL_NOTIFY_FAILED, 0, -1, "bad_url",
		                     "the url does not parse as an absolute url with a host");
		goto out;
	}
	curl_url_get(h, CURLUPART_PORT, &port, 0);
	snprintf(origin, size, "%s://%s%s%s", scheme, host, port ? ":" : "", port ? port : "");
	for (i = 0; schemes[i]; i++)
		if (strcmp(scheme, schemes[i]) == 0)
			ok = true;
	if (!ok)
		hl_notify_result_set(out, HL_NOTIFY_FAILED, 0, -1, "bad_url",
		                     "'%s': the scheme '%s' is not supported here", origin, scheme);
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(h);
	return ok;
}

/* The reason part of a fetch error "'<url without query>': <reason>", or
 * a generic text; never anything holding the URL's secret parts. */
static void
text_fetch_reason(char *out, size_t size, const char *msg, const char *url, int code)
{
	size_t ulen = strcspn(url, "?"), plen = 0;
	const char *reason = NULL, *path, *at;

	if (msg[0] == '\'' && strncmp(msg + 1, url, ulen) == 0 &&
	    strncmp(msg + 1 + ulen, "': ", 3) == 0)
		reason = msg + 1 + ulen + 3;
	path = strstr(url, "://");
	path = path ? path + 3 + strcspn(path + 3, "/?#") : url;
	plen = strlen(path);
	at = strchr(url, '@');
	if (reason && plen > 1 && strstr(reason, path))
		reason = NULL;
	if (reason && at && at < path) {
		const char *ui = strstr(url, "://") + 3;
		char tmp[256];
		size_t n = (size_t)(at - ui);

		if (n >= sizeof(tmp))
			n = sizeof(tmp) - 1;
		memcpy(tmp, ui, n);
		tmp[n] = '\0';
		if (n >= 3 && strstr(reason, tmp))
			reason = NULL;
	}
	if (!reason)
		reason = code == HL_ETIMEOUT ? "timed out" : "connection failed";
	hl_notify_text_excerpt(out, size, reason, strlen(reason));
}

/* True when a transport error text is a TLS verification failure. */
static bool
text_is_tls_verify(const char *reason)
{
	return hl_str_casestr(reason, "certificate") || hl_str_casestr(reason, "self-signed") ||
	       hl_str_casestr(reason, "self signed") || hl_str_casestr(reason, "issuer");
}

int
hl_notify_http_run(struct hl_notify_result *out, const struct hl_fetch_req *req, const char *origin,
                   hl_notify_classify_fn classify, struct hl_err *err)
{
	struct hl_fetch_res res;
	struct hl_err ferr = HL_ERR_INIT;
	int64_t t0 = hl_time_mono_ms();
	char reason[160];
	int ret;

	hl_fetch_res_init(&res);
	ret = hl_fetch_run(req, &res, 1, 0, &ferr);
	if (ret == -HL_ENOMEM) {
		hl_fetch_res_release(&res);
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	}
	if (ret < 0) {
		hl_notify_result_set(out, HL_NOTIFY_RETRY, 0, -1, "internal",
		                     "'%s': the request could not run (%s)", origin,
		                     hl_err_name(-ret));
	} else if (res.status > 0 && (res.err.code == 0 || res.err.code == HL_EUPSTREAM ||
	                              res.err.code == HL_ETOOBIG)) {
		struct hl_notify_http h;

		memset(&h, 0, sizeof(h));
		h.status = res.status;
		h.body = res.body.data;
		h.body_len = res.body.len;
		h.retry_after_s = res.retry_after_s;
		h.rl_remaining = res.ratelimit_remaining;
		h.rl_reset = res.ratelimit_reset;
		h.rl_reset_after_ms = res.ratelimit_reset_after_ms;
		h.err_code = res.err.code;
		classify(out, origin, &h);
	} else {
		text_fetch_reason(reason, sizeof(reason), res.err.msg, req->url, res.err.code);
		if (res.err.code == HL_ETIMEOUT)
			hl_notify_result_set(out, HL_NOTIFY_RETRY, 0, -1, "timeout", "'%s': %s",
			                     origin, reason);
		else if (res.err.code == HL_EINVAL)
			hl_notify_result_set(out, HL_NOTIFY_FAILED, 0, -1, "bad_url", "'%s': %s",
			                     origin, reason);
		else if (text_is_tls_verify(reason))
			hl_notify_result_set(out, HL_NOTIFY_FAILED, 0, -1, "tls", "'%s': %s",
			                     origin, reason);
		else
			hl_notify_result_set(out, HL_NOTIFY_RETRY, 0, -1, "connect", "'%s': %s",
			                     origin, reason);
	}
	out->elapsed_ms = hl_time_mono_ms() - t0;
	hl_fetch_res_release(&res);
	return 0;
}

int
hl_notify_http_post(struct hl_notify_result *out, const char *url, const char *origin,
                    const char *payload, size_t len, const struct hl_notify_opts *opts,
                    hl_notify_classify_fn classify, struct hl_err *err)
{
	struct hl_fetch_req req;

	memset(&req, 0, sizeof(req));
	req.method = "POST";
	req.url = url;
	req.headers[0] = "Content-Type: application/json";
	req.body = payload;
	req.body_len = len;
	req.timeout_ms = opts && opts->timeout_ms > 0 ? opts->timeout_ms : 15000;
	req.max_body = 1u << 20;
	req.max_retries = 0;
	req.ca_file = opts ? opts->ca_file : NULL;
	req.no_rate_wait = opts && opts->no_rate_wait;
	return hl_notify_http_run(out, &req, origin, classify, err);
}
