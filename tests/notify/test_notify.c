/*
 * test_notify.c - the notify builders and text shaping (src/notify):
 * UTF-8 cut points and cleaning, escapes per channel (never split), the
 * Discord and Slack limits under huge inputs, hostile text (@everyone,
 * <!channel>, '|' in a cell, backticks, HTML, CRLF in a subject or a To
 * header), the email's headers, encoded words and lines, addresses, the
 * GitHub tables and fences, the refusal, and the senders' answers to bad
 * URLs and addresses (no network needed) and a refused connection.
 */
/* cmocka needs these first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include "base/buf.h"
#include "base/log.h"
#include "notify/notify.h"
#include "notify/text.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

/* True when s (n bytes) is valid UTF-8 without C0 controls other than LF. */
static bool
valid_utf8_text(const char *s, size_t n, bool allow_lf)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = (unsigned char)s[i];
		size_t k, len;
		uint32_t cp;

		if (c < 0x80) {
			if ((c < 0x20 && !(allow_lf && c == '\n')) || c == 0x7f)
				return false;
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			len = 2, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			len = 3, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			len = 4, cp = c & 0x07;
		else
			return false;
		if (i + len > n)
			return false;
		for (k = 1; k < len; k++) {
			if (((unsigned char)s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | ((unsigned char)s[i + k] & 0x3f);
		}
		if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

/* UTF-16 units of a valid UTF-8 string (independent of the library's). */
static size_t
u16len(const char *s)
{
	size_t n = 0;

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c & 0xc0) != 0x80)
			n += c >= 0xf0 ? 2 : 1;
	}
	return n;
}

static char *
repeat(const char *s, size_t times)
{
	size_t n = strlen(s), i;
	char *out = malloc(n * times + 1);

	assert_non_null(out);
	for (i = 0; i < times; i++)
		memcpy(out + i * n, s, n);
	out[n * times] = '\0';
	return out;
}

static char *
append(const char *s, size_t cap, enum hl_notify_esc esc, unsigned flags, bool *cut)
{
	struct hl_buf b = HL_BUF_INIT(0);
	size_t units, len;
	char *out;

	units = hl_notify_text_append(&b, s, cap, esc, flags, cut);
	assert_int_equal(hl_buf_error(&b), 0);
	assert_int_equal(units, u16len(b.data));
	if (cap)
		assert_true(units <= cap);
	out = hl_buf_detach(&b, &len);
	assert_non_null(out);
	return out;
}

#define T0 1764000000000LL

static const struct hl_notify_attempt base_attempts[] = {
	{ 1, "Rex", "healer-ci-rex-1", "ci_still_failing",
	  "Fixed clippy lint, but new test failure appeared", NULL,
	  "https://github.com/5dlabs/cto/pull/1234", T0 - 3600000, T0 - 3600000 + 252000 },
	{ 2, "Rex", "healer-ci-rex-2", "ci_still_failing",
	  "Fixed test, but introduced new clippy error", NULL,
	  "https://github.com/5dlabs/cto/pull/1234", T0 - 1800000, T0 - 1800000 + 95000 },
	{ 3, "Atlas", "healer-ci-atlas-3", "agent_failed", NULL,
	  "Tried general fix approach, still failing", NULL, T0 - 900000, 0 },
};

static struct hl_notify_report
base_report(void)
{
	struct hl_notify_report r;

	memset(&r, 0, sizeof(r));
	r.task_id = "ci-9876543210-clippy";
	r.repository = "5dlabs/cto";
	r.workflow = "Controller CI";
	r.job = "clippy";
	r.branch = "feat/new-feature";
	r.run_url = "https://github.com/5dlabs/cto/actions/runs/9876543210";
	r.pr_number = 1234;
	r.pr_url = "https://github.com/5dlabs/cto/pull/1234";
	r.failure_type = "rust_clippy";
	r.evidence = "error[E0382]: borrow of moved value: `config`";
	r.max_attempts = 3;
	r.time_ms = T0;
	r.attempts = base_attempts;
	r.n_attempts = 3;
	return r;
}

#define HOSTILE                                                                                    \
	"@everyone @here <!channel> <!here> <@U123> <#C1> | a|b ``` `x` <script>alert(1)</script>" \
	" [x](javascript:alert(1)) **b** &amp; \r\nBcc: evil@example.com\r\n.\n\xe2\x80\xae"

/* A report whose every text is hostile and huge, with many attempts. */
struct huge {
	struct hl_notify_report r;
	struct hl_notify_attempt *a;
	char *big, *evidence, *emoji;
};

static void
huge_init(struct huge *h, size_t n_attempts)
{
	size_t i;

	h->big = repeat(HOSTILE, 200);
	h->emoji = repeat("\xf0\x9f\x9a\x80\xc3\xa9", 20000);
	h->evidence = repeat("error: `x` @everyone <!channel>\n" HOSTILE "\n", 20000);
	h->a = calloc(n_attempts, sizeof(*h->a));
	assert_non_null(h->a);
	for (i = 0; i < n_attempts; i++) {
		h->a[i].number = (int)i + 1;
		h->a[i].agent = i % 2 ? h->emoji : h->big;
		h->a[i].coderun = h->big;
		h->a[i].outcome = i % 3 ? "ci_still_failing" : h->big;
		h->a[i].reason = h->big;
		h->a[i].status_message = h->emoji;
		h->a[i].pr_url = i % 2 ? "https://github.com/5dlabs/cto/pull/1" : h->big;
		h->a[i].started_ms = T0;
		h->a[i].finished_ms = T0 + 1000;
	}
	h->r = base_report();
	h->r.task_id = h->big;
	h->r.repository = h->emoji;
	h->r.workflow = h->big;
	h->r.job = h->emoji;
	h->r.branch = h->big;
	h->r.failure_type = h->big;
	h->r.state = h->big;
	h->r.evidence = h->evidence;
	h->r.task_url = h->big;
	h->r.run_url = h->big;
	h->r.attempts = h->a;
	h->r.n_attempts = n_attempts;
}

static void
huge_release(struct huge *h)
{
	free(h->a);
	free(h->big);
	free(h->evidence);
	free(h->emoji);
}

static json_t *
parse(const char *text)
{
	json_error_t je;
	json_t *v = json_loads(text, 0, &je);

	if (!v)
		fail_msg("not JSON: %s", je.text);
	return v;
}

static size_t
trimmed_units(const json_t *s)
{
	const char *p = json_string_value(s);
	size_t n;
	char *t;

	if (!p)
		return 0;
	while (*p == ' ' || *p == '\n')
		p++;
	t = strdup(p);
	n = strlen(t);
	while (n > 0 && (t[n - 1] == ' ' || t[n - 1] == '\n'))
		t[--n] = '\0';
	n = u16len(t);
	free(t);
	return n;
}

/* ---- text shaping ---- */

static void
test_notify_text_utf8_cut_points(void **state)
{
	/* "a" (1) "é" (1 unit, 2 bytes) "🚀" (2 units, 4 bytes) "b" (1) = 5 units */
	const char *s = "a\xc3\xa9\xf0\x9f\x9a\x80"
	                "b";
	bool cut;
	char *o;
	size_t cap;

	(void)state;
	o = append(s, 5, HL_NOTIFY_ESC_NONE, 0, &cut);
	assert_false(cut);
	assert_string_equal(o, s);
	free(o);
	/* the rocket (2 units) and the marker (1) need 5: it does not fit, and is not split */
	o = append(s, 4, HL_NOTIFY_ESC_NONE, 0, &cut);
	assert_true(cut);
	assert_string_equal(o, "a\xc3\xa9" HL_NOTIFY_ELLIPSIS);
	free(o);
	o = append("a\xc3\xa9\xf0\x9f\x9a\x80"
	           "bc",
	           5, HL_NOTIFY_ESC_NONE, 0, &cut);
	assert_true(cut);
	assert_string_equal(o, "a\xc3\xa9\xf0\x9f\x9a\x80" HL_NOTIFY_ELLIPSIS);
	free(o);
	o = append(s, 3, HL_NOTIFY_ESC_NONE, 0, &cut);
	assert_true(cut);
	assert_string_equal(o, "a\xc3\xa9" HL_NOTIFY_ELLIPSIS);
	free(o);
	o = append(s, 1, HL_NOTIFY_ESC_NONE, 0, &cut);
	assert_string_equal(o, HL_NOTIFY_ELLIPSIS);
	free(o);
	/* every cap gives valid UTF-8 within the cap, ending with the marker when cut */
	for (cap = 1; cap <= 8; cap++) {
		o = append("\xf0\x9f\x9a\x80\xf0\x9f\x9a\x80\xc3\xa9x\xf0\x9f\x9a\x80", cap,
		           HL_NOTIFY_ESC_NONE, 0, &cut);
		assert_true(valid_utf8_text(o, strlen(o), false));
		assert_true(u16len(o) <= cap);
		if (cut)
			assert_non_null(strstr(o, HL_NOTIFY_ELLIPSIS));
		free(o);
	}
}

static void
test_notify_text_cleans_invalid_utf8_and_controls(void **state)
{
	/* bad lead, overlong, surrogate, > U+10FFFF, truncated sequence */
	const char *bad = "x\xff"
	                  "y\xc0\x80"
	                  "z\xed\xa0\x80"
	                  "w\xf4\x90\x80\x80"
	                  "v\xe2\x82";
	char *o;

	(void)state;
	o = append(bad, 0, HL_NOTIFY_ESC_NONE, 0, NULL);
	assert_true(valid_utf8_text(o, strlen(o), false));
	assert_non_null(strstr(o, "\xef\xbf\xbd")); /* U+FFFD */
	assert_non_null(strchr(o, 'x'));
	assert_non_null(strchr(o, 'v'));
	free(o);
	o = append("a\x01"
	           "b\x7f"
	           "c\r\nd\te\xe2\x80\xae"
	           "f\xc2\x85"
	           "g\rh\xe2\x80\xa8i\xef\xbb\xbf",
	           0, HL_NOTIFY_ESC_NONE, 0, NULL);
	assert_string_equal(o, "abc d efg h i");
	free(o);
	o = append("a\r\nb\rc\nd", 0, HL_NOTIFY_ESC_NONE, HL_NOTIFY_TEXT_MULTILINE, NULL);
	assert_string_equal(o, "a\nb\nc\nd");
	free(o);
	o = append("  \n\t x  y \n ", 0, HL_NOTIFY_ESC_NONE, HL_NOTIFY_TEXT_TRIM, NULL);
	assert_string_equal(o, "x  y");
	free(o);
	o = append(NULL, 10, HL_NOTIFY_ESC_DISCORD, 0, NULL);
	assert_string_equal(o, "");
	free(o);
}

static void
test_notify_text_escapes_per_channel(void **state)
{
	char *o;

	(void)state;
	o = append("*a_b~c`d|e>f<g#h[i](j)\\ @everyone:-", 0, HL_NOTIFY_ESC_DISCORD, 0, NULL);
	assert_string_equal(o, "\\*a\\_b\\~c\\`d\\|e\\>f\\<g\\#h\\[i\\]\\(j\\)\\\\ "
	                       "@" HL_NOTIFY_ZWSP "everyone:-");
	free(o);
	o = append("<!channel> & <@U1> @here *b*", 0, HL_NOTIFY_ESC_SLACK, 0, NULL);
	assert_string_equal(o, "&lt;!channel&gt; &amp; &lt;@" HL_NOTIFY_ZWSP
	                       "U1&gt; @" HL_NOTIFY_ZWSP "here *b*");
	free(o);
	o = append("<b>|x|</b> & [l](u) `c` $m$ @org/team", 0, HL_NOTIFY_ESC_GITHUB, 0, NULL);
	assert_string_equal(o, "&lt;b&gt;\\|x\\|&lt;/b&gt; &amp; \\[l\\]\\(u\\) \\`c\\` \\$m\\$ "
	                       "@" HL_NOTIFY_ZWSP "org/team");
	free(o);
	o = append("```x``` <a>", 0, HL_NOTIFY_ESC_DISCORD_CODE, 0, NULL);
	assert_string_equal(o, "`" HL_NOTIFY_ZWSP "`" HL_NOTIFY_ZWSP "`" HL_NOTIFY_ZWSP
	                       "x`" HL_NOTIFY_ZWSP "`" HL_NOTIFY_ZWSP "`" HL_NOTIFY_ZWSP " <a>");
	free(o);
	o = append("``` <a> &", 0, HL_NOTIFY_ESC_SLACK_CODE, 0, NULL);
	assert_string_equal(o, "`" HL_NOTIFY_ZWSP "`" HL_NOTIFY_ZWSP "`" HL_NOTIFY_ZWSP
	                       " &lt;a&gt; &amp;");
	free(o);
	o = append("@everyone <b>", 0, HL_NOTIFY_ESC_PLAIN, 0, NULL);
	assert_string_equal(o, "@" HL_NOTIFY_ZWSP "everyone <b>");
	free(o);
}

static void
test_notify_text_escape_never_split(void **state)
{
	bool cut;
	char *o;

	(void)state;
	/* "&amp;" is 5 units: with 4 left it must not appear at all */
	o = append("a&b", 5, HL_NOTIFY_ESC_SLACK, 0, &cut);
	assert_true(cut);
	assert_string_equal(o, "a" HL_NOTIFY_ELLIPSIS);
	free(o);
	o = append("a&b", 7, HL_NOTIFY_ESC_SLACK, 0, &cut);
	assert_false(cut);
	assert_string_equal(o, "a&amp;b");
	free(o);
	o = append("x*y", 3, HL_NOTIFY_ESC_DISCORD, 0, &cut);
	assert_true(cut);
	assert_string_equal(o, "x" HL_NOTIFY_ELLIPSIS);
	free(o);
	/* whitespace before the marker is dropped */
	o = append("ab   cdef", 6, HL_NOTIFY_ESC_NONE, 0, &cut);
	assert_string_equal(o, "ab" HL_NOTIFY_ELLIPSIS);
	free(o);
}

/* A service's error text that echoes a credential healer sent: the
 * excerpt says [REDACTED], even where the cut would have fallen inside it. */
static void
test_notify_text_excerpt_redacts_secrets(void **state)
{
	static const char secret[] = "xoxb-notify-excerpt-secret-0123456789";
	char text[400], out[200];

	(void)state;
	hl_log_add_secret(secret);
	snprintf(text, sizeof(text), "invalid_token: %s was revoked", secret);
	hl_notify_text_excerpt(out, sizeof(out), text, strlen(text));
	assert_null(strstr(out, secret));
	assert_non_null(strstr(out, "[REDACTED] was revoked"));
	/* the secret across the 120-character cut: no part of it is left */
	snprintf(text, sizeof(text), "%0100d %s", 0, secret);
	hl_notify_text_excerpt(out, sizeof(out), text, strlen(text));
	assert_null(strstr(out, "xoxb-notify"));
	assert_non_null(strstr(out, "[REDACTED]"));
}

static void
test_notify_text_url_checks(void **state)
{
	(void)state;
	assert_true(hl_notify_text_url_ok("https://github.com/5dlabs/cto/pull/1", 100));
	assert_true(hl_notify_text_url_ok("http://127.0.0.1:8080/a?b=c&d=%20#x", 100));
	assert_false(hl_notify_text_url_ok("javascript:alert(1)", 100));
	assert_false(hl_notify_text_url_ok("https://x.com/a)b", 100));
	assert_false(hl_notify_text_url_ok("https://x.com/a b", 100));
	assert_false(hl_notify_text_url_ok("https://x.com/<b>", 100));
	assert_false(hl_notify_text_url_ok("https://x.com/a|b", 100));
	assert_false(hl_notify_text_url_ok("https://x.com/\r\n", 100));
	assert_false(hl_notify_text_url_ok("https:///path", 100));
	assert_false(hl_notify_text_url_ok("https://x.com/\xc3\xa9", 100));
	assert_false(hl_notify_text_url_ok("https://x.com/long", 10));
	assert_false(hl_notify_text_url_ok(NULL, 100));
}

static void
test_notify_text_durations_and_labels(void **state)
{
	char d[32];

	(void)state;
	hl_notify_text_duration(d, sizeof(d), T0, T0 + 35000);
	assert_string_equal(d, "35s");
	hl_notify_text_duration(d, sizeof(d), T0, T0 + 252000);
	assert_string_equal(d, "4m 12s");
	hl_notify_text_duration(d, sizeof(d), T0, T0 + 3720000);
	assert_string_equal(d, "1h 02m");
	hl_notify_text_duration(d, sizeof(d), T0, T0 + 90000000);
	assert_string_equal(d, "1d 01h");
	hl_notify_text_duration(d, sizeof(d), T0, 0);
	assert_string_equal(d, "-");
	hl_notify_text_duration(d, sizeof(d), T0, T0 - 1);
	assert_string_equal(d, "-");
	assert_string_equal(hl_notify_outcome_label("success"), "fixed");
	assert_string_equal(hl_notify_outcome_label("ci_still_failing"), "CI still failing");
	assert_string_equal(hl_notify_outcome_label("rerun_failed"), "re-run failed");
	assert_string_equal(hl_notify_outcome_label(NULL), "running");
	assert_string_equal(hl_notify_outcome_label("weird"), "weird");
	assert_string_equal(hl_notify_status_name(HL_NOTIFY_RETRY), "retry");
	assert_string_equal(hl_notify_channel_name(HL_NOTIFY_SLACK), "slack");
}

/* ---- Discord ---- */

static void
check_discord_limits(const char *text)
{
	json_t *v = parse(text), *e, *f;
	size_t i, total;

	assert_true(
	        json_is_array(json_object_get(json_object_get(v, "allowed_mentions"), "parse")));
	assert_int_equal(
	        json_array_size(json_object_get(json_object_get(v, "allowed_mentions"), "parse")),
	        0);
	assert_int_equal(json_array_size(json_object_get(v, "embeds")), 1);
	e = json_array_get(json_object_get(v, "embeds"), 0);
	assert_true(trimmed_units(json_object_get(e, "title")) <= 256);
	assert_true(trimmed_units(json_object_get(e, "description")) <= 4096);
	assert_true(trimmed_units(json_object_get(json_object_get(e, "footer"), "text")) <= 2048);
	assert_true(json_array_size(json_object_get(e, "fields")) <= 25);
	total = trimmed_units(json_object_get(e, "title")) +
	        trimmed_units(json_object_get(e, "description")) +
	        trimmed_units(json_object_get(json_object_get(e, "footer"), "text"));
	json_array_foreach(json_object_get(e, "fields"), i, f)
	{
		size_t nu = trimmed_units(json_object_get(f, "name"));
		size_t vu = trimmed_units(json_object_get(f, "value"));

		assert_true(nu > 0 && nu <= 256);
		assert_true(vu > 0 && vu <= 1024);
		total += nu + vu;
	}
	assert_true(total <= 6000);
	json_decref(v);
}

static void
test_notify_discord_design_example(void **state)
{
	struct hl_notify_report r = base_report();
	struct hl_err err = HL_ERR_INIT;
	char *text = NULL;
	json_t *v, *e;
	const char *d;

	(void)state;
	assert_int_equal(hl_notify_discord_build(&text, &r, &err), 0);
	check_discord_limits(text);
	v = parse(text);
	e = json_array_get(json_object_get(v, "embeds"), 0);
	d = json_string_value(json_object_get(e, "description"));
	assert_non_null(strstr(d, "\n3. Atlas: agent failed - Tried general fix approach, still "
	                          "failing"));
	assert_non_null(strstr(d, "```\nerror[E0382]: borrow of moved value: `" HL_NOTIFY_ZWSP
	                          "config`" HL_NOTIFY_ZWSP "\n```"));
	assert_int_equal(json_integer_value(json_object_get(e, "color")), 0xe74c3c);
	assert_string_equal(json_string_value(json_object_get(e, "timestamp")),
	                    "2025-11-24T16:00:00.000Z");
	json_decref(v);
	free(text);
}

/* Outside ``` blocks (the input's backticks are broken, so the only fences
 * are the builder's), no "](" of a masked link appears. */
static void
assert_no_link_outside_code(const char *d)
{
	const char *p = d, *f;
	bool in_code = false;

	while (*p) {
		size_t n;

		f = strstr(p, "```");
		n = f ? (size_t)(f - p) : strlen(p);
		if (!in_code) {
			char *seg = strndup(p, n);

			assert_null(strstr(seg, "]("));
			free(seg);
		}
		if (!f)
			break;
		in_code = !in_code;
		p = f + 3;
	}
	assert_false(in_code);
}

static void
test_notify_discord_limits_with_huge_input(void **state)
{
	struct hl_err err = HL_ERR_INIT;
	struct huge h;
	char *text = NULL;
	json_t *v, *e;
	size_t n;

	(void)state;
	for (n = 0; n <= 500; n += 250) {
		huge_init(&h, n);
		assert_int_equal(hl_notify_discord_build(&text, &h.r, &err), 0);
		assert_true(valid_utf8_text(text, strlen(text), false));
		check_discord_limits(text);
		v = parse(text);
		e = json_array_get(json_object_get(v, "embeds"), 0);
		if (n > 0)
			assert_non_null(strstr(json_string_value(json_object_get(e, "description")),
			                       " more"));
		/* hostile text: no live mention, no masked link outside code blocks */
		assert_null(strstr(text, "@everyone"));
		assert_null(strstr(text, "@here"));
		assert_no_link_outside_code(json_string_value(json_object_get(e, "description")));
		assert_null(strstr(json_string_value(json_object_get(e, "title")), "]("));
		assert_null(strstr(text, "\xe2\x80\xae"));
		json_decref(v);
		free(text);
		text = NULL;
		huge_release(&h);
	}
}

/* ---- Slack ---- */

static void
check_slack_limits(const char *text)
{
	json_t *v = parse(text), *b, *f;
	size_t i, j;

	assert_true(json_string_length(json_object_get(v, "text")) > 0);
	assert_true(json_array_size(json_object_get(v, "blocks")) <= 50);
	json_array_foreach(json_object_get(v, "blocks"), i, b)
	{
		const char *type = json_string_value(json_object_get(b, "type"));
		const char *t =
		        json_string_value(json_object_get(json_object_get(b, "text"), "text"));

		if (strcmp(type, "header") == 0)
			assert_true(u16len(t) <= 150);
		else if (t)
			assert_true(u16len(t) > 0 && u16len(t) <= 3000);
		assert_true(json_array_size(json_object_get(b, "fields")) <= 10);
		json_array_foreach(json_object_get(b, "fields"), j, f)
		{
			t = json_string_value(json_object_get(f, "text"));
			assert_true(u16len(t) > 0 && u16len(t) <= 2000);
		}
		json_array_foreach(json_object_get(b, "elements"), j, f)
		{
			t = json_string_value(json_object_get(f, "text"));
			assert_true(u16len(t) > 0 && u16len(t) <= 3000);
		}
	}
	json_decref(v);
}

static void
test_notify_slack_limits_and_escapes(void **state)
{
	struct hl_notify_report r = base_report();
	struct hl_err err = HL_ERR_INIT;
	struct huge h;
	char *text = NULL;

	(void)state;
	r.branch = "<!channel> & <@U1>";
	assert_int_equal(hl_notify_slack_build(&text, &r, &err), 0);
	check_slack_limits(text);
	assert_non_null(
	        strstr(text, "*Branch*\\n&lt;!channel&gt; &amp; &lt;@" HL_NOTIFY_ZWSP "U1&gt;"));
	assert_null(strstr(text, "<!channel>"));
	free(text);
	huge_init(&h, 400);
	assert_int_equal(hl_notify_slack_build(&text, &h.r, &err), 0);
	assert_true(valid_utf8_text(text, strlen(text), false));
	check_slack_limits(text);
	assert_null(strstr(text, "<!"));
	assert_null(strstr(text, "<@"));
	assert_null(strstr(text, "@everyone"));
	assert_non_null(strstr(text, " more"));
	free(text);
	huge_release(&h);
}

/* ---- GitHub ---- */

/* Unescaped '|' in a line. */
static size_t
pipes(const char *line, size_t n)
{
	size_t i, c = 0;

	for (i = 0; i < n; i++) {
		if (line[i] == '\\') {
			i++;
			continue;
		}
		if (line[i] == '|')
			c++;
	}
	return c;
}

static void
test_notify_github_table_cells_hold(void **state)
{
	struct hl_notify_attempt a[2];
	struct hl_notify_report r = base_report();
	struct hl_err err = HL_ERR_INIT;
	char *md = NULL;
	const char *p;
	size_t rows = 0;

	(void)state;
	memcpy(a, base_attempts, sizeof(a));
	a[0].agent = "Rex|x\n| 9 | injected | row |";
	a[0].coderun = "cr`|`<b>\\|";
	a[1].outcome = "x\r\n|---|";
	a[1].pr_url = "javascript:alert(1)";
	r.attempts = a;
	r.n_attempts = 2;
	assert_int_equal(hl_notify_github_build(&md, &r, &err), 0);
	for (p = md; *p;) {
		size_t n = strcspn(p, "\n");

		if (n > 0 && p[0] == '|') {
			assert_int_equal(pipes(p, n), 7);
			rows++;
		}
		p += n + (p[n] ? 1 : 0);
	}
	assert_int_equal(rows, 4); /* header, separator, 2 attempts */
	assert_null(strstr(md, "<b>"));
	assert_null(strstr(md, "javascript"));
	assert_non_null(strstr(md, "Rex\\|x \\| 9 \\| injected"));
	free(md);
	md = NULL;
	assert_int_equal(hl_notify_github_status(&md, &r, &err), 0);
	rows = 0;
	for (p = md; *p;) {
		size_t n = strcspn(p, "\n");

		if (n > 0 && p[0] == '|') {
			assert_int_equal(pipes(p, n), 6);
			rows++;
		}
		p += n + (p[n] ? 1 : 0);
	}
	assert_int_equal(rows, 4);
	free(md);
}

static void
test_notify_github_fence_and_html(void **state)
{
	struct hl_notify_report r = base_report();
	struct hl_err err = HL_ERR_INIT;
	char *md = NULL;
	const char *fence, *end;

	(void)state;
	r.evidence = "a ```` b\n````\n<script>x</script>";
	r.workflow = "<img src=x onerror=alert(1)>";
	r.branch = "[x](javascript:alert(1)) @org/team";
	assert_int_equal(hl_notify_github_build(&md, &r, &err), 0);
	fence = strstr(md, "`````text\n");
	assert_non_null(fence);
	end = strstr(fence + 10, "\n`````\n");
	assert_non_null(end);
	/* only the fenced failure may hold '<' */
	assert_null(memchr(md, '<', (size_t)(fence - md)));
	assert_null(strchr(end, '<'));
	assert_non_null(strstr(md, "&lt;img src=x onerror=alert\\(1\\)&gt;"));
	assert_non_null(strstr(md, "\\[x\\]\\(javascript:alert\\(1\\)\\) @" HL_NOTIFY_ZWSP "org"));
	free(md);
}

static void
test_notify_github_refusal(void **state)
{
	struct hl_err err = HL_ERR_INIT;
	char *md = NULL;

	(void)state;
	assert_int_equal(
	        hl_notify_github_refusal(&md, "octo-cat", "CONTRIBUTOR", "OWNER, MEMBER", &err), 0);
	assert_string_equal(md, "@octo-cat, sorry: `/healer` commands are only accepted from "
	                        "authors whose association with this repository is **OWNER** "
	                        "or **MEMBER** (yours: CONTRIBUTOR). The command was not run.\n");
	free(md);
	md = NULL;
	assert_int_equal(hl_notify_github_refusal(&md, "x\n@everyone", "<b>", "", &err), 0);
	assert_true(strncmp(md, "Sorry: ", 7) == 0);
	assert_null(strstr(md, "@everyone"));
	assert_non_null(strstr(md, "(none configured)"));
	assert_non_null(strstr(md, "&lt;b&gt;"));
	free(md);
	md = NULL;
	assert_int_equal(hl_notify_github_refusal(&md, "bot--name", NULL, "OWNER", &err), 0);
	assert_true(strncmp(md, "Sorry: ", 7) == 0);
	free(md);
}

/* ---- email ---- */

static char *
build_email(const struct hl_notify_report *r, const char *from, const char *to, const char *key,
            int expect)
{
	struct hl_notify_email_hdr h = { from, to, key };
	struct hl_err err = HL_ERR_INIT;
	char *m = NULL;
	size_t len = 0;

	assert_int_equal(hl_notify_email_build(&m, &len, r, &h, &err), expect);
	if (expect == 0)
		assert_int_equal(len, strlen(m));
	else
		assert_true(err.msg[0] != '\0');
	return m;
}

/* Every line CRLF-terminated, at most 78 characters, none starting with '.';
 * header lines are "Name: ..." of the expected names or continuations. */
static void
check_email_lines(const char *m)
{
	static const char *const names[] = {
		"Date:",          "From:",         "To:",           "Subject:",
		"Message-ID:",    "MIME-Version:", "Content-Type:", "Content-Transfer-Encoding:",
		"Auto-Submitted:"
	};
	const char *p = m;
	bool body = false;
	size_t i, seen[9] = { 0 };

	while (*p) {
		const char *eol = strstr(p, "\r\n");
		size_t n;

		assert_non_null(eol);
		n = (size_t)(eol - p);
		assert_null(memchr(p, '\n', n));
		assert_null(memchr(p, '\r', n));
		assert_true(n <= 78);
		assert_false(n > 0 && p[0] == '.');
		if (!body && n == 0) {
			body = true;
		} else if (!body && p[0] != ' ') {
			bool known = false;

			for (i = 0; i < 9; i++) {
				if (strncmp(p, names[i], strlen(names[i])) == 0) {
					known = true;
					seen[i]++;
				}
			}
			if (!known)
				fail_msg("unexpected header line '%.*s'", (int)n, p);
		} else if (body) {
			assert_true(n <= 76);
			for (i = 0; i < n; i++)
				assert_true((unsigned char)p[i] >= 0x20 &&
				            (unsigned char)p[i] < 0x7f);
		}
		p = eol + 2;
	}
	assert_true(body);
	for (i = 0; i < 9; i++)
		assert_int_equal(seen[i], 1);
}

static int
b64val(char c)
{
	const char *t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const char *p = c ? strchr(t, c) : NULL;

	return p ? (int)(p - t) : -1;
}

/* Decodes the encoded-words of the Subject header into out. */
static void
decode_subject(char *out, size_t size, const char *m)
{
	const char *p = strstr(m, "\r\nSubject: ") + 11;
	size_t o = 0;

	while ((p = strstr(p, "=?UTF-8?B?")) && p < strstr(m, "\r\n\r\n")) {
		const char *end = strstr(p + 10, "?=");
		const char *q;
		unsigned v = 0;
		int bits = 0;

		assert_true(end - p + 2 <= 75); /* RFC 2047 section 2 */
		for (q = p + 10; q < end && *q != '='; q++) {
			v = (v << 6) | (unsigned)b64val(*q);
			bits += 6;
			if (bits >= 8) {
				bits -= 8;
				assert_true(o + 1 < size);
				out[o++] = (char)((v >> bits) & 0xff);
			}
		}
		p = end + 2;
	}
	out[o] = '\0';
}

static void
test_notify_email_headers_and_lines(void **state)
{
	struct hl_notify_report r = base_report();
	char *m;

	(void)state;
	m = build_email(&r, "Healer <healer@example.com>",
	                "ops@example.com, \"Dev, Team\" <dev@example.com>, "
	                "J\xc3\xb6rg <j@example.org>",
	                "outbox-42/x", 0);
	check_email_lines(m);
	assert_true(strncmp(m, "Date: Mon, 24 Nov 2025 16:00:00 +0000\r\n", 39) == 0);
	assert_non_null(strstr(m, "\r\nFrom: Healer <healer@example.com>\r\n"));
	assert_non_null(strstr(m, "\r\nTo: ops@example.com,\r\n \"Dev, Team\" <dev@example.com>,"
	                          "\r\n =?UTF-8?B?SsO2cmc=?=\r\n <j@example.org>\r\n"));
	assert_non_null(strstr(m, "\r\nMessage-ID: <healer.outbox-42-x@example.com>\r\n"));
	assert_non_null(strstr(m, "\r\nContent-Type: text/plain; charset=utf-8\r\n"));
	assert_non_null(strstr(m, "\r\nContent-Transfer-Encoding: quoted-printable\r\n"));
	assert_non_null(strstr(m, "\r\nSubject: [healer] CI remediation failed: 5dlabs/cto "
	                          "Controller CI on\r\n feat/new-feature\r\n"));
	free(m);
}

/* An escalation of a task from a running system (an Alertmanager pod
 * alert) names the alert, the namespace and pod and its summary on every
 * channel, with no CI field (repository, workflow, job, branch) and no
 * "workflow run" link without a URL. */
static void
test_notify_alert_escalation_names_the_alert(void **state)
{
	struct hl_notify_report r = base_report();
	struct hl_err err = HL_ERR_INIT;
	char *text = NULL, *m;
	json_t *v, *e, *f;
	const char *title, *fb;
	size_t i;
	bool alert = false, pod = false, summary = false;

	(void)state;
	r.repository = r.workflow = r.job = r.branch = r.run_url = r.pr_url = NULL;
	r.pr_number = 0;
	r.alert = "KubePodCrashLooping";
	r.namespace = "prod";
	r.pod = "api-7d9f8b6c5d-aaaa1";
	r.summary = "Pod is crash looping.";
	assert_int_equal(hl_notify_discord_build(&text, &r, &err), 0);
	check_discord_limits(text);
	v = parse(text);
	e = json_array_get(json_object_get(v, "embeds"), 0);
	title = json_string_value(json_object_get(e, "title"));
	assert_non_null(strstr(title, "Remediation Failed: KubePodCrashLooping on "
	                              "prod/api-7d9f8b6c5d-aaaa1"));
	json_array_foreach(json_object_get(e, "fields"), i, f)
	{
		const char *n = json_string_value(json_object_get(f, "name"));
		const char *val = json_string_value(json_object_get(f, "value"));

		assert_true(strcmp(n, "Workflow") != 0 && strcmp(n, "Job") != 0 &&
		            strcmp(n, "Branch") != 0 && strcmp(n, "Run") != 0);
		alert |= strcmp(n, "Alert") == 0 && strcmp(val, "KubePodCrashLooping") == 0;
		pod |= strcmp(n, "Pod") == 0 && strstr(val, "aaaa1");
		summary |= strcmp(n, "Summary") == 0 && strstr(val, "crash looping");
	}
	assert_true(alert && pod && summary);
	json_decref(v);
	free(text);

	text = NULL;
	assert_int_equal(hl_notify_slack_build(&text, &r, &err), 0);
	v = parse(text);
	fb = json_string_value(json_object_get(v, "text"));
	assert_non_null(strstr(fb, "Remediation failed after 3 attempts: KubePodCrashLooping on "
	                           "prod/api-7d9f8b6c5d-aaaa1"));
	assert_null(strstr(text, "*Workflow*"));
	assert_null(strstr(text, "workflow run"));
	assert_non_null(strstr(text, "*Pod*"));
	assert_null(strstr(text, "CI Remediation"));
	json_decref(v);
	free(text);

	m = build_email(&r, "healer@example.com", "ops@example.com", "k", 0);
	assert_non_null(
	        strstr(m, "\r\nSubject: [healer] remediation failed: KubePodCrashLooping on"));
	assert_non_null(strstr(m, "Namespace:    prod"));
	assert_null(strstr(m, "Workflow:"));
	assert_null(strstr(m, " - on -"));
	free(m);
}

static void
test_notify_email_subject_encoding(void **state)
{
	struct hl_notify_report r = base_report();
	char *m, dec[1024];

	(void)state;
	r.workflow = "Contr\xc3\xb4leur \xf0\x9f\x9a\x80 CI \xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc"
	             "\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc";
	m = build_email(&r, "healer@example.com", "ops@example.com", NULL, 0);
	check_email_lines(m);
	decode_subject(dec, sizeof(dec), m);
	assert_string_equal(dec, "[healer] CI remediation failed: 5dlabs/cto Contr\xc3\xb4leur "
	                         "\xf0\x9f\x9a\x80 CI \xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc"
	                         "\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc"
	                         " on feat/new-feature");
	free(m);
	/* a word too long for a folded line is encoded too */
	r.workflow = "x123456789x123456789x123456789x123456789x123456789x123456789x123456789"
	             "x123456789";
	m = build_email(&r, "healer@example.com", "ops@example.com", NULL, 0);
	check_email_lines(m);
	decode_subject(dec, sizeof(dec), m);
	assert_non_null(strstr(dec, r.workflow));
	free(m);
	/* ASCII that looks like an encoded word is encoded too */
	r.workflow = "=?UTF-8?B?Zm9v?=";
	m = build_email(&r, "healer@example.com", "ops@example.com", NULL, 0);
	decode_subject(dec, sizeof(dec), m);
	assert_non_null(strstr(dec, "=?UTF-8?B?Zm9v?="));
	free(m);
}

static void
test_notify_email_header_injection_impossible(void **state)
{
	struct hl_notify_report r = base_report();
	struct huge h;
	char *m;

	(void)state;
	r.workflow = "CI\r\nBcc: evil@example.com\r\n\r\nbody";
	r.branch = "b\nTo: evil@example.com";
	r.repository = "x\rSubject: forged";
	m = build_email(&r, "healer@example.com", "ops@example.com", NULL, 0);
	check_email_lines(m); /* one of each header, no other */
	assert_null(strstr(m, "\r\nBcc:"));
	free(m);
	assert_null(build_email(&r, "healer@example.com", "ops@example.com\r\nBcc: e@x.com", NULL,
	                        -HL_EINVAL));
	assert_null(
	        build_email(&r, "healer@example.com\nX: y", "ops@example.com", NULL, -HL_EINVAL));
	assert_null(build_email(&r, "H <healer@example.com>", "Ops\r\n <ops@example.com>", NULL,
	                        -HL_EINVAL));
	huge_init(&h, 300);
	m = build_email(&h.r, "healer@example.com", "ops@example.com", "k", 0);
	check_email_lines(m);
	free(m);
	huge_release(&h);
}

static void
test_notify_email_addresses(void **state)
{
	static const char *const good[] = {
		"a@b",
		"first.last+tag@sub.example.com",
		"  spaced@example.com  ",
		"Name <n@example.com>",
		"\"Quoted \\\"Name\\\"\" <q@example.com>",
		"a@example.com,b@example.com,",
		"J\xc3\xb6rg M\xc3\xbcller <j@example.de>",
	};
	static const char *const bad[] = {
		"",
		",",
		"no-at-sign",
		"two@@example.com",
		".lead@example.com",
		"trail.@example.com",
		"dou..ble@example.com",
		"a@-example.com",
		"a@example-.com",
		"a@exa_mple.com",
		"a b@example.com",
		"<a@example.com",
		"Name a@example.com",
		"\"unclosed <a@example.com>",
		"Na\"me <a@example.com>",
		"Bad \xff <a@example.com>",
		"a@example.com\t",
		"a@example.com\r\n",
		"\xc3\xa9@example.com",
	};
	struct hl_notify_report r = base_report();
	size_t i;
	char *m;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		m = build_email(&r, "healer@example.com", good[i], NULL, 0);
		check_email_lines(m);
		free(m);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct hl_notify_email_hdr h = { "healer@example.com", bad[i], NULL };
		struct hl_err err = HL_ERR_INIT;

		m = NULL;
		if (hl_notify_email_build(&m, NULL, &r, &h, &err) != -HL_EINVAL || m)
			fail_msg("bad address %zu was accepted", i);
	}
	/* the sender is exactly one address */
	assert_null(
	        build_email(&r, "a@example.com, b@example.com", "c@example.com", NULL, -HL_EINVAL));
}

static void
test_notify_email_message_id_random(void **state)
{
	struct hl_notify_report r = base_report();
	char *a, *b, ida[128], idb[128];

	(void)state;
	a = build_email(&r, "healer@example.com", "o@example.com", NULL, 0);
	b = build_email(&r, "healer@example.com", "o@example.com", NULL, 0);
	assert_int_equal(sscanf(strstr(a, "Message-ID: "), "Message-ID: %127s", ida), 1);
	assert_int_equal(sscanf(strstr(b, "Message-ID: "), "Message-ID: %127s", idb), 1);
	assert_string_not_equal(ida, idb);
	assert_true(strncmp(ida, "<healer.", 8) == 0);
	assert_non_null(strstr(ida, "@example.com>"));
	free(a);
	free(b);
}

static void
test_notify_result_message_stays_utf8(void **state)
{
	struct hl_notify_result res;
	char *big = repeat("\xc3\xa9\xf0\x9f\x9a\x80", 200);
	size_t pad;

	(void)state;
	/* whatever the offset, a cut message ends on a whole character */
	for (pad = 0; pad < 4; pad++) {
		hl_notify_result_set(&res, HL_NOTIFY_FAILED, 400, 5, "x", "%.*s%s\r\n", (int)pad,
		                     "abc", big);
		assert_true(valid_utf8_text(res.message, strlen(res.message), false));
		assert_true(strlen(res.message) > 200);
		assert_int_equal(res.retry_after_ms, -1); /* only a retry has a wait */
	}
	hl_notify_result_set(&res, HL_NOTIFY_RETRY, 429, 350, "rate_limited", "x");
	assert_int_equal(res.retry_after_ms, 350);
	free(big);
}

/* ---- senders without a network ---- */

static void
test_notify_send_refuses_bad_targets(void **state)
{
	struct hl_notify_result res;
	struct hl_err err = HL_ERR_INIT;
	const char *rcpt[] = { "ops@example.com" };
	const char *bad_rcpt[] = { "ops@example.com>\r\nRCPT TO:<x@y" };

	(void)state;
	assert_int_equal(hl_notify_discord_send(&res, "not a url", "{}", 2, NULL, &err), 0);
	assert_int_equal(res.status, HL_NOTIFY_FAILED);
	assert_string_equal(res.error, "bad_url");
	assert_int_equal(hl_notify_discord_send(&res, "ftp://discord.com/api/webhooks/1/SECRET",
	                                        "{}", 2, NULL, &err),
	                 0);
	assert_string_equal(res.error, "bad_url");
	assert_null(strstr(res.message, "SECRET"));
	assert_int_equal(hl_notify_slack_send(&res, NULL, "{}", 2, NULL, &err), 0);
	assert_string_equal(res.error, "bad_url");
	assert_int_equal(hl_notify_smtp_send(&res, "https://mail.example.com", "a@b", rcpt, 1, "x",
	                                     1, NULL, &err),
	                 0);
	assert_string_equal(res.error, "bad_url");
	assert_int_equal(hl_notify_smtp_send(&res, "smtp://127.0.0.1:1", "a@b", bad_rcpt, 1, "x", 1,
	                                     NULL, &err),
	                 0);
	assert_int_equal(res.status, HL_NOTIFY_FAILED);
	assert_string_equal(res.error, "bad_address");
	assert_int_equal(hl_notify_email_send(&res, "smtp://127.0.0.1:1", "a@b", "x@y\r\nBcc: z@w",
	                                      "x", 1, NULL, &err),
	                 0);
	assert_string_equal(res.error, "bad_address");
}

static void
test_notify_send_refused_connection_names_no_secret(void **state)
{
	struct hl_notify_result res;
	struct hl_notify_opts o = { 2000, NULL, NULL, NULL };
	struct hl_err err = HL_ERR_INIT;
	const char *rcpt[] = { "ops@example.com" };

	(void)state;
	assert_int_equal(hl_notify_discord_send(&res,
	                                        "http://127.0.0.1:1/api/webhooks/77/TOPSECRET",
	                                        "{}", 2, &o, &err),
	                 0);
	assert_int_equal(res.status, HL_NOTIFY_RETRY);
	assert_string_equal(res.error, "connect");
	assert_int_equal(res.retry_after_ms, -1);
	assert_null(strstr(res.message, "TOPSECRET"));
	assert_null(strstr(res.message, "/77/"));
	assert_non_null(strstr(res.message, "'http://127.0.0.1:1'"));
	assert_int_equal(hl_notify_smtp_send(&res, "smtp://u:PASSWORD@127.0.0.1:1", "a@b", rcpt, 1,
	                                     "x\r\n", 3, &o, &err),
	                 0);
	assert_int_equal(res.status, HL_NOTIFY_RETRY);
	assert_string_equal(res.error, "connect");
	assert_null(strstr(res.message, "PASSWORD"));
	assert_non_null(strstr(res.message, "'smtp://127.0.0.1:1'"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_notify_text_utf8_cut_points),
		cmocka_unit_test(test_notify_text_cleans_invalid_utf8_and_controls),
		cmocka_unit_test(test_notify_text_escapes_per_channel),
		cmocka_unit_test(test_notify_text_escape_never_split),
		cmocka_unit_test(test_notify_text_url_checks),
		cmocka_unit_test(test_notify_text_excerpt_redacts_secrets),
		cmocka_unit_test(test_notify_text_durations_and_labels),
		cmocka_unit_test(test_notify_discord_design_example),
		cmocka_unit_test(test_notify_discord_limits_with_huge_input),
		cmocka_unit_test(test_notify_slack_limits_and_escapes),
		cmocka_unit_test(test_notify_github_table_cells_hold),
		cmocka_unit_test(test_notify_github_fence_and_html),
		cmocka_unit_test(test_notify_github_refusal),
		cmocka_unit_test(test_notify_email_headers_and_lines),
		cmocka_unit_test(test_notify_alert_escalation_names_the_alert),
		cmocka_unit_test(test_notify_email_subject_encoding),
		cmocka_unit_test(test_notify_email_header_injection_impossible),
		cmocka_unit_test(test_notify_email_addresses),
		cmocka_unit_test(test_notify_email_message_id_random),
		cmocka_unit_test(test_notify_result_message_stays_utf8),
		cmocka_unit_test(test_notify_send_refuses_bad_targets),
		cmocka_unit_test(test_notify_send_refused_connection_names_no_secret),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
