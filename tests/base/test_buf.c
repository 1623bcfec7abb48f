/*
 * test_buf.c - unit tests for the growable buffer (src/base/buf.c).
 */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */
#include "base/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
test_buf_starts_empty_and_terminated(void **state)
{
	struct hl_buf b = HL_BUF_INIT(0);

	assert_non_null(b.data);
	assert_string_equal(b.data, "");
	assert_int_equal(b.len, 0);
	hl_buf_release(&b);
	assert_string_equal(b.data, "");
}

static void
test_buf_append_grows_and_keeps_nul(void **state)
{
	struct hl_buf b = HL_BUF_INIT(0);
	int i;

	for (i = 0; i < 1000; i++)
		assert_int_equal(hl_buf_append_str(&b, "abc"), 0);
	assert_int_equal(b.len, 3000);
	assert_int_equal(b.data[3000], '\0');
	assert_memory_equal(b.data + 2997, "abc", 3);
	hl_buf_release(&b);
}

static void
test_buf_cap_is_sticky_error(void **state)
{
	struct hl_buf b = HL_BUF_INIT(8);

	assert_int_equal(hl_buf_append_str(&b, "12345678"), 0);
	assert_int_equal(hl_buf_append_str(&b, "9"), -HL_ETOOBIG);
	/* sticky: later appends fail too, even small ones */
	assert_int_equal(hl_buf_append(&b, "", 0), -HL_ETOOBIG);
	assert_int_equal(hl_buf_error(&b), -HL_ETOOBIG);
	assert_string_equal(b.data, "12345678");
	assert_null(hl_buf_detach(&b, NULL));
}

static void
test_buf_appendf_formats(void **state)
{
	struct hl_buf b = HL_BUF_INIT(0);

	hl_buf_appendf(&b, "%s=%d;", "a", 1);
	hl_buf_appendf(&b, "%05.1f", 3.14159);
	assert_string_equal(b.data, "a=1;003.1");
	hl_buf_release(&b);
}

static void
test_buf_json_escape_controls_and_quotes(void **state)
{
	struct hl_buf b = HL_BUF_INIT(0);
	const char in[] = "a\"b\\c\n\x01\x1b[0m";

	hl_buf_append_json_escaped(&b, in, sizeof(in) - 1);
	assert_string_equal(b.data, "a\\\"b\\\\c\\n\\u0001\\u001b[0m");
	hl_buf_release(&b);
}

static void
test_buf_detach_hands_ownership(void **state)
{
	struct hl_buf b = HL_BUF_INIT(0);
	size_t n = 0;
	char *s;

	s = hl_buf_detach(&b, &n);
	assert_non_null(s);
	assert_string_equal(s, "");
	free(s);
	hl_buf_append_str(&b, "xyz");
	s = hl_buf_detach(&b, &n);
	assert_string_equal(s, "xyz");
	assert_int_equal(n, 3);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.data, "");
	free(s);
}

static void
test_buf_embedded_nul_kept(void **state)
{
	struct hl_buf b = HL_BUF_INIT(0);

	hl_buf_append(&b, "a\0b", 3);
	assert_int_equal(b.len, 3);
	assert_memory_equal(b.data, "a\0b", 4);
	hl_buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.data, "");
	hl_buf_release(&b);
}

/* Text from a log made valid UTF-8: invalid bytes as U+FFFD, NULs dropped,
 * valid sequences (2 to 4 bytes) kept. */
static void
test_buf_append_utf8_repairs(void **state)
{
	static const char in[] = "a\xc3\xa9\0b\xff\xe2\x82\xac\xf0\x9f\x98\x80\xed\xa0\x80\xe2\x82";
	struct hl_buf b = HL_BUF_INIT(0);

	(void)state;
	assert_int_equal(hl_buf_append_utf8(&b, in, sizeof(in) - 1), 0);
	assert_string_equal(b.data, "a\xc3\xa9"
	                            "b\xef\xbf\xbd\xe2\x82\xac\xf0\x9f\x98\x80"
	                            "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
	                            "\xef\xbf\xbd\xef\xbf\xbd");
	assert_int_equal(b.len, strlen(b.data));
	hl_buf_release(&b);
}

static void
test_buf_append_i64_is_lld(void **state)
{
	static const int64_t vs[] = { 0, 1, -1, 9, 10, -10, 1234567890123LL, INT64_MAX, INT64_MIN };
	struct hl_buf b = HL_BUF_INIT(0);
	char want[32];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(vs) / sizeof(vs[0]); i++) {
		hl_buf_reset(&b);
		assert_int_equal(hl_buf_append_i64(&b, vs[i]), 0);
		snprintf(want, sizeof(want), "%lld", (long long)vs[i]);
		assert_string_equal(b.data, want);
	}
	hl_buf_release(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_starts_empty_and_terminated),
		cmocka_unit_test(test_buf_append_i64_is_lld),
		cmocka_unit_test(test_buf_append_grows_and_keeps_nul),
		cmocka_unit_test(test_buf_cap_is_sticky_error),
		cmocka_unit_test(test_buf_appendf_formats),
		cmocka_unit_test(test_buf_json_escape_controls_and_quotes),
		cmocka_unit_test(test_buf_detach_hands_ownership),
		cmocka_unit_test(test_buf_embedded_nul_kept),
		cmocka_unit_test(test_buf_append_utf8_repairs),
	};
	return cmocka_run_group_tests_name("buf", tests, NULL, NULL);
}
