/*
 * test_cidr.c - unit tests for lists of IP address ranges (src/base/cidr.c):
 * what is accepted and refused, and which addresses match.
 */
/* cmocka.h needs these headers before it */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */
#include "base/cidr.h"

#include <stdio.h>
#include <string.h>

static bool
in(const struct hl_cidr *r, size_t n, const char *addr)
{
	unsigned char b[16], len = 0;

	assert_true(hl_cidr_addr_parse(b, &len, addr, strlen(addr)));
	return hl_cidr_match(r, n, b, len);
}

static void
test_cidr_list_parses_addresses_and_ranges(void **state)
{
	struct hl_cidr r[HL_CIDR_MAX];
	struct hl_err err = HL_ERR_INIT;
	size_t n = 99;

	(void)state;
	assert_int_equal(hl_cidr_list_parse(r, &n,
	                                    " 10.0.0.0/8 ,192.0.2.7, 2001:db8::/32 ,"
	                                    "172.16.0.0/12,::ffff:198.51.100.0/120",
	                                    &err),
	                 0);
	assert_int_equal(n, 5);
	assert_true(in(r, n, "10.200.3.4"));
	assert_false(in(r, n, "11.0.0.1"));
	assert_true(in(r, n, "192.0.2.7"));
	assert_false(in(r, n, "192.0.2.8"));
	assert_true(in(r, n, "2001:db8:1::5"));
	assert_false(in(r, n, "2001:db9::5"));
	assert_true(in(r, n, "172.31.255.255"));
	assert_false(in(r, n, "172.32.0.0"));
	/* an IPv4-mapped range and address are IPv4 */
	assert_true(in(r, n, "198.51.100.9"));
	assert_true(in(r, n, "::ffff:10.1.1.1"));
	assert_false(in(r, n, "::1"));

	assert_int_equal(hl_cidr_list_parse(r, &n, "0.0.0.0/0", &err), 0);
	assert_true(in(r, n, "203.0.113.1"));
	assert_false(in(r, n, "2001:db8::1"));
	assert_int_equal(hl_cidr_list_parse(r, &n, "10.0.0.0/9", &err), 0);
	assert_true(in(r, n, "10.127.0.1"));
	assert_false(in(r, n, "10.128.0.1"));
	n = 7;
	assert_int_equal(hl_cidr_list_parse(r, &n, "", &err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(hl_cidr_list_parse(r, &n, NULL, &err), 0);
	assert_int_equal(n, 0);
	assert_false(in(r, n, "127.0.0.1"));
}

static void
test_cidr_list_refuses_mistakes(void **state)
{
	static const char *const bad[] = {
		"10.0.0.1/8", /* host bits set */
		"10.0.0.0/33",      "10.0.0.0/", "10.0.0.0/x",  "10.0.0.0/8x", "2001:db8::/129",
		"10.0.0.0/-1",      "10.0.0",    "example.com", "1.2.3.4:80",  "[::1]",
		"1.2.3.4,,5.6.7.8", ",1.2.3.4",  "1.2.3.4,",    "1.2.3.4, ",   "::1/0",
	};
	struct hl_cidr r[HL_CIDR_MAX];
	struct hl_err err = HL_ERR_INIT;
	char many[HL_CIDR_MAX * 16 + 32] = "";
	size_t n, i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err.msg[0] = '\0';
		if (hl_cidr_list_parse(r, &n, bad[i], &err) != -HL_EINVAL)
			fail_msg("'%s' was accepted", bad[i]);
		assert_true(err.msg[0] != '\0');
	}
	for (i = 0; i <= HL_CIDR_MAX; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), "%s10.0.%zu.1",
		         i ? "," : "", i);
	assert_int_equal(hl_cidr_list_parse(r, &n, many, &err), -HL_ETOOBIG);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cidr_list_parses_addresses_and_ranges),
		cmocka_unit_test(test_cidr_list_refuses_mistakes),
	};
	return cmocka_run_group_tests_name("cidr", tests, NULL, NULL);
}
