/*
 * test_dashboard.c - the dashboard module: the embedded files with their
 * content types and ETags, If-None-Match matching, and the signed session
 * (valid, expired, tampered, another token's, never holding the token).
 */
#include "crypto/hmac.h"
#include "dashboard/dashboard.h"

/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <stdio.h>
#include <string.h>

static void
test_dashboard_files_have_types_and_etags(void **state)
{
	const struct hl_dash_file *f;
	char etag[HL_DASH_ETAG_MAX];

	(void)state;
	f = hl_dash_file("index.html");
	assert_non_null(f);
	assert_string_equal(f->ctype, "text/html; charset=utf-8");
	assert_non_null(strstr(f->data, "/assets/app.js"));
	hl_dash_etag(etag, f->data, f->len);
	assert_string_equal(f->etag, etag);
	assert_int_equal(strlen(f->etag), 34);
	f = hl_dash_file("app.js");
	assert_non_null(f);
	assert_string_equal(f->ctype, "text/javascript; charset=utf-8");
	assert_string_not_equal(f->etag, hl_dash_file("index.html")->etag);
	assert_string_equal(hl_dash_file("app.css")->ctype, "text/css; charset=utf-8");
	assert_non_null(hl_dash_file("login.html"));
	assert_null(hl_dash_file("nope.js"));
	assert_null(hl_dash_file(""));
}

static void
test_dashboard_no_inline_script(void **state)
{
	static const char *const pages[] = { "index.html", "login.html" };
	size_t i;

	(void)state;
	/* the CSP forbids inline script: every <script> has a src, no on*= */
	for (i = 0; i < 2; i++) {
		const char *p = hl_dash_file(pages[i])->data, *s = p;
		while ((s = strstr(s, "<script"))) {
			const char *end = strchr(s, '>');
			assert_non_null(end);
			assert_true(strstr(s, " src=") && strstr(s, " src=") < end);
			s = end;
		}
		assert_null(strstr(p, " onclick="));
		assert_null(strstr(p, " onload="));
		assert_null(strstr(p, "style="));
	}
	assert_null(strstr(hl_dash_file("app.js")->data, "innerHTML"));
	assert_null(strstr(hl_dash_file("app.js")->data, "insertAdjacentHTML"));
	assert_null(strstr(hl_dash_file("app.js")->data, "eval("));
}

static void
test_dashboard_etag_match(void **state)
{
	const char *e = "\"0123456789abcdef0123456789abcdef\"";

	(void)state;
	assert_true(hl_dash_etag_match(e, e));
	assert_true(hl_dash_etag_match("W/\"0123456789abcdef0123456789abcdef\"", e));
	assert_true(hl_dash_etag_match("\"x\", \"0123456789abcdef0123456789abcdef\"", e));
	assert_true(hl_dash_etag_match("*", e));
	assert_false(hl_dash_etag_match(NULL, e));
	assert_false(hl_dash_etag_match("", e));
	assert_false(hl_dash_etag_match("\"0123456789abcdef0123456789abcdee\"", e));
	assert_false(hl_dash_etag_match("\"0123456789abcdef0123456789abcdef\"x", e));
}

static void
test_dashboard_session(void **state)
{
	const char *token = "s3cret-token";
	char v[HL_DASH_SESSION_MAX], v2[HL_DASH_SESSION_MAX], bad[256];
	char sig[HL_SHA256_HEX_LEN + 1], key[HL_SHA256_HEX_LEN + 1], text[80];
	char sid[HL_DASH_SID_MAX], sid2[HL_DASH_SID_MAX];
	const char *id = "0123456789abcdef0123456789abcdef";
	int64_t now = 1800000000, exp_s = 0;

	(void)state;
	assert_int_equal(hl_dash_session_new(v, token, now), 0);
	assert_null(strstr(v, token));
	assert_true(hl_dash_session_ok(v, token, now, sid, &exp_s));
	assert_int_equal(exp_s, now + HL_DASH_SESSION_S);
	assert_int_equal(strlen(sid), HL_DASH_SID_MAX - 1);
	/* each login its own id (what a logout revokes) */
	assert_int_equal(hl_dash_session_new(v2, token, now), 0);
	assert_true(hl_dash_session_ok(v2, token, now, sid2, NULL));
	assert_string_not_equal(sid, sid2);
	assert_true(hl_dash_session_ok(v, token, now + HL_DASH_SESSION_S - 1, NULL, NULL));
	assert_false(hl_dash_session_ok(v, token, now + HL_DASH_SESSION_S, NULL, NULL));
	assert_false(hl_dash_session_ok(v, "another-token", now, NULL, NULL));
	assert_false(hl_dash_session_ok(v, "", now, NULL, NULL));
	assert_false(hl_dash_session_ok(NULL, token, now, NULL, NULL));
	assert_false(hl_dash_session_ok("", token, now, NULL, NULL));
	assert_false(hl_dash_session_ok("123", token, now, NULL, NULL));
	/* a flipped signature digit */
	snprintf(bad, sizeof(bad), "%s", v);
	bad[strlen(bad) - 1] = bad[strlen(bad) - 1] == '0' ? '1' : '0';
	assert_false(hl_dash_session_ok(bad, token, now, NULL, NULL));
	/* a later expiry, or another id, with the old signature */
	snprintf(bad, sizeof(bad), "%lld%s", (long long)now + HL_DASH_SESSION_S + 5,
	         strchr(v, '.'));
	assert_false(hl_dash_session_ok(bad, token, now, NULL, NULL));
	snprintf(bad, sizeof(bad), "%lld.%s%s", (long long)now + HL_DASH_SESSION_S, id,
	         strrchr(v, '.'));
	assert_false(hl_dash_session_ok(bad, token, now, NULL, NULL));
	/* the documented derivation: HMAC(HMAC(token, label) as hex,
	 * "<expiry>.<id>") */
	assert_int_equal(
	        hl_hmac_sha256_hex(key, token, strlen(token), "healer dashboard session v1", 27),
	        0);
	snprintf(text, sizeof(text), "%lld.%s", (long long)now + 60, id);
	assert_int_equal(hl_hmac_sha256_hex(sig, key, strlen(key), text, strlen(text)), 0);
	snprintf(bad, sizeof(bad), "%s.%s", text, sig);
	assert_true(hl_dash_session_ok(bad, token, now, sid, NULL));
	assert_string_equal(sid, id);
	/* the old form without an id is no session */
	snprintf(text, sizeof(text), "%lld", (long long)now + 60);
	assert_int_equal(hl_hmac_sha256_hex(sig, key, strlen(key), text, strlen(text)), 0);
	snprintf(bad, sizeof(bad), "%s.%s", text, sig);
	assert_false(hl_dash_session_ok(bad, token, now, NULL, NULL));
	/* an expiry beyond the lifetime is refused even when signed */
	snprintf(text, sizeof(text), "%lld.%s", (long long)now + HL_DASH_SESSION_S + 60, id);
	assert_int_equal(hl_hmac_sha256_hex(sig, key, strlen(key), text, strlen(text)), 0);
	snprintf(bad, sizeof(bad), "%s.%s", text, sig);
	assert_false(hl_dash_session_ok(bad, token, now, NULL, NULL));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dashboard_files_have_types_and_etags),
		cmocka_unit_test(test_dashboard_no_inline_script),
		cmocka_unit_test(test_dashboard_etag_match),
		cmocka_unit_test(test_dashboard_session),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
