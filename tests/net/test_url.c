/*
 * test_url.c - path safety of the HTTP clients (src/base/url.c): path
 * segments and query values under hostile input ("..", "%2e%2e", '#', '?',
 * spaces, UTF-8, long strings), userinfo stripping, and the request-path
 * check the GitHub and Kubernetes clients apply to every path.
 */
/* cmocka needs these first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include "base/url.h"

#include <stdlib.h>
#include <string.h>

static void
seg_is(const char *in, const char *want)
{
	struct hl_buf b = HL_BUF_INIT(0);

	assert_int_equal(hl_url_append_segment(&b, in), 0);
	assert_string_equal(b.data, want);
	hl_buf_release(&b);
}

static void
test_url_segment_encodes_everything_but_unreserved(void **state)
{
	(void)state;
	seg_is("abcXYZ019-._~", "abcXYZ019-._~");
	seg_is("a/b", "a%2Fb");
	seg_is("x#y", "x%23y");
	seg_is("x?y=1", "x%3Fy%3D1");
	seg_is("100%", "100%25");
	seg_is("wid gets", "wid%20gets");
	seg_is("ü€", "%C3%BC%E2%82%AC");
	seg_is("a\\b", "a%5Cb");
	seg_is("a..b", "a..b");
	seg_is(".hidden", ".hidden");
	/* an already-encoded dot-segment is data, not a dot-segment */
	seg_is("%2e%2e", "%252e%252e");
	seg_is("x/../../../orgs/acme/actions/secrets#",
	       "x%2F..%2F..%2F..%2Forgs%2Facme%2Factions%2Fsecrets%23");
}

static void
test_url_segment_dot_segments_are_encoded(void **state)
{
	(void)state;
	seg_is(".", "%2E");
	seg_is("..", "%2E%2E");
	seg_is("...", "%2E%2E%2E");
}

static void
test_url_segment_refuses_empty(void **state)
{
	struct hl_buf b = HL_BUF_INIT(0);

	(void)state;
	hl_buf_append_str(&b, "/repos/");
	assert_int_equal(hl_url_append_segment(&b, ""), -HL_EINVAL);
	assert_int_equal(hl_url_append_segment(&b, NULL), -HL_EINVAL);
	assert_string_equal(b.data, "/repos/");
	hl_buf_release(&b);
}

static void
test_url_segment_long_input_stays_one_segment(void **state)
{
	struct hl_buf b = HL_BUF_INIT(0), capped = HL_BUF_INIT(1000);
	size_t n = 100000, i, encoded = 0, want = 0;
	char *s = malloc(n + 1);

	(void)state;
	assert_non_null(s);
	for (i = 0; i < n; i++) {
		s[i] = "a/.%#? "[i % 7];
		if (s[i] != 'a' && s[i] != '.')
			want++;
	}
	s[n] = '\0';
	assert_int_equal(hl_url_append_segment(&b, s), 0);
	for (i = 0; i < b.len; i++) {
		assert_true(b.data[i] != '/' && b.data[i] != '#' && b.data[i] != '?' &&
		            b.data[i] != ' ');
		if (b.data[i] == '%')
			encoded++;
	}
	/* every '/', '%', '#', '?' and ' ' became one %XX */
	assert_int_equal(encoded, want);
	assert_int_equal(b.len, n + 2 * want);
	assert_int_equal(hl_url_append_segment(&capped, s), -HL_ETOOBIG);
	free(s);
	hl_buf_release(&b);
	hl_buf_release(&capped);
}

static void
test_url_query_value(void **state)
{
	struct hl_buf b = HL_BUF_INIT(0);

	(void)state;
	assert_int_equal(hl_url_append_query_value(&b, "involvedObject.name=p1,type!=x"), 0);
	assert_string_equal(b.data, "involvedObject.name%3Dp1%2Ctype%21%3Dx");
	hl_buf_reset(&b);
	assert_int_equal(hl_url_append_query_value(&b, "a b&c=d+e#f"), 0);
	assert_string_equal(b.data, "a%20b%26c%3Dd%2Be%23f");
	hl_buf_reset(&b);
	assert_int_equal(hl_url_append_query_value(&b, ""), 0);
	assert_int_equal(hl_url_append_query_value(&b, NULL), 0);
	assert_string_equal(b.data, "");
	hl_buf_release(&b);
}

static void
strip_is(const char *in, const char *want)
{
	struct hl_buf b = HL_BUF_INIT(0);

	assert_int_equal(hl_url_strip_userinfo(&b, in), 0);
	assert_string_equal(b.data, want);
	hl_buf_release(&b);
}

static void
test_url_strip_userinfo(void **state)
{
	(void)state;
	strip_is("https://user:pa%40ss@host:8443/x?y=1#z", "https://host:8443/x?y=1#z");
	strip_is("smtps://mailer@smtp.example.com", "smtps://smtp.example.com");
	strip_is("postgres://a:b@db/healer", "postgres://db/healer");
	strip_is("https://host/path@not-userinfo", "https://host/path@not-userinfo");
	strip_is("https://host?q=a@b", "https://host?q=a@b");
	strip_is("u:p@host:1/x", "host:1/x");
	strip_is("https://host", "https://host");
	strip_is("", "");
}

static void
strip_text(const char *in, const char *want)
{
	struct hl_buf b = HL_BUF_INIT(0);

	assert_int_equal(hl_url_strip_userinfo_text(&b, in), 0);
	assert_string_equal(b.data, want);
	hl_buf_release(&b);
}

static void
test_url_strip_userinfo_in_text(void **state)
{
	(void)state;
	strip_text("loki: 'http://user:pass@loki:3100/loki/api/v1/query': HTTP 500",
	           "loki: 'http://loki:3100/loki/api/v1/query': HTTP 500");
	strip_text("store postgres://healer:s3cr3t@db:5432/healer?sslmode=require ok",
	           "store postgres://db:5432/healer?sslmode=require ok");
	strip_text("a https://u:p@h and http://x:y@k", "a https://h and http://k");
	strip_text("https://tok@api.github.com", "https://api.github.com");
	strip_text("pw with sub-delims http://u:p(a)'s!@h/x", "pw with sub-delims http://h/x");
	strip_text("at in the path http://h/x@y and mail a@b.c",
	           "at in the path http://h/x@y and mail a@b.c");
	strip_text("no url at all", "no url at all");
	strip_text("http://u:p@", "http://");
	strip_text("", "");
}

static void
path_ok(const char *p)
{
	struct hl_err err = HL_ERR_INIT;

	if (hl_url_check_path(p, &err) != 0)
		fail_msg("'%s' refused: %s", p, err.msg);
}

static void
path_refused(const char *p)
{
	struct hl_err err = HL_ERR_INIT;

	if (hl_url_check_path(p, &err) != -HL_EINVAL)
		fail_msg("'%s' accepted", p);
	assert_non_null(strstr(err.msg, "refused"));
}

static void
test_url_check_path(void **state)
{
	(void)state;
	path_ok("/");
	path_ok("/repos/acme/widgets/actions/runs/1/jobs?filter=latest&per_page=100");
	path_ok("/repos/acme/wid%20gets/commits/abc");
	path_ok("/repos/a/b/compare/main...feat%2Fx");
	path_ok("/api/v1/namespaces/prod/pods/p1/log?tailLines=3");
	path_ok("/a/.../b");
	path_ok("/a/%2E%2E%2E/b");
	path_ok("/a/..b/.c/");
	path_ok("/a/b?q=../../x&r=%2F");
	path_refused("/repos/acme/x/../../../orgs/acme/actions/secrets#/actions/jobs/1/logs");
	path_refused("/repos/acme/x/../../orgs");
	path_refused("/repos/acme/./x");
	path_refused("/repos/acme/..");
	path_refused("/repos/acme/.");
	path_refused("/repos/%2e%2E/x");
	path_refused("/repos/%2E/x");
	path_refused("/repos/a%2F..%2Fb");
	path_refused("/repos/a%5C..%5Cb");
	path_refused("/repos/a/b#frag");
	path_refused("/repos/a/b?q=#");
	path_refused("/repos//b");
	path_refused("/repos/a b");
	path_refused("/repos/a\\b");
	path_refused("/repos/\xc3\xbc");
	path_refused("/repos/a\tb");
	path_refused("/repos/a%zzb");
	path_refused("/repos/a%4");
	path_refused("repos/a");
	path_refused("");
	path_refused(NULL);
}

static void
test_url_encoded_segments_never_climb(void **state)
{
	static const char *const hostile[] = {
		"%2e%2e", "a?b", "a#b", "a b", "ü", "a%2F..%2Fb", "...", "\t", "feat/x", "a/b",
	};
	/* an encoded slash or backslash next to a dot-segment stays refused:
	 * a server that decodes before routing would climb */
	static const char *const climbing[] = {
		"acme/x/../../../orgs/acme/actions/secrets#",
		"a\\..\\b",
		"../x",
		"x/.",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		struct hl_buf b = HL_BUF_INIT(0);

		hl_buf_append_str(&b, "/x/");
		assert_int_equal(hl_url_append_segment(&b, hostile[i]), 0);
		hl_buf_append_str(&b, "/y");
		path_ok(b.data);
		hl_buf_release(&b);
	}
	for (i = 0; i < sizeof(climbing) / sizeof(climbing[0]); i++) {
		struct hl_buf b = HL_BUF_INIT(0);

		hl_buf_append_str(&b, "/x/");
		assert_int_equal(hl_url_append_segment(&b, climbing[i]), 0);
		hl_buf_append_str(&b, "/y");
		path_refused(b.data);
		hl_buf_release(&b);
	}
	/* a bare dot-segment is encoded, and the check still refuses it: a
	 * server that decodes before routing would climb one level */
	{
		struct hl_buf b = HL_BUF_INIT(0);

		hl_buf_append_str(&b, "/x/");
		assert_int_equal(hl_url_append_segment(&b, ".."), 0);
		path_refused(b.data);
		hl_buf_release(&b);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_segment_encodes_everything_but_unreserved),
		cmocka_unit_test(test_url_segment_dot_segments_are_encoded),
		cmocka_unit_test(test_url_segment_refuses_empty),
		cmocka_unit_test(test_url_segment_long_input_stays_one_segment),
		cmocka_unit_test(test_url_query_value),
		cmocka_unit_test(test_url_strip_userinfo),
		cmocka_unit_test(test_url_strip_userinfo_in_text),
		cmocka_unit_test(test_url_check_path),
		cmocka_unit_test(test_url_encoded_segments_never_climb),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
