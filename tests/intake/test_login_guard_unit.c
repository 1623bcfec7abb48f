/*
 * test_login_guard_unit.c - the failed-login table (src/http/login_guard.c)
 * at its limits, without a server: a blocked client keeps its slot while
 * many others fail; with every slot blocked a new client counts as blocked
 * (it takes no slot); an IPv6 client is its /64; the ceiling across all
 * clients. Slot 0 of the table is the count across all clients
 * (login_guard.c): the test that fills every other slot with blocked
 * clients clears it between them, so the ceiling does not stop it first.
 */
#include "http/http_impl.h"

/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */
#include <string.h>

static struct http_addr
v4(int a, int b, int c, int d)
{
	struct http_addr x = { .b = { (unsigned char)a, (unsigned char)b, (unsigned char)c,
		                      (unsigned char)d },
		               .len = 4 };

	return x;
}

static struct http_addr
v6(unsigned hi, unsigned lo)
{
	struct http_addr x = { .b = { 0x20, 0x01, 0x0d, 0xb8 }, .len = 16 };

	x.b[6] = (unsigned char)(hi >> 8);
	x.b[7] = (unsigned char)hi;
	x.b[14] = (unsigned char)(lo >> 8);
	x.b[15] = (unsigned char)lo;
	return x;
}

static void
fail_n(struct http_login_guard *g, struct http_addr a, int n)
{
	while (n-- > 0)
		hl_http_login_failed(g, &a);
}

static void
test_blocked_slot_kept(void **state)
{
	struct http_login_guard g;
	struct http_addr a = v4(10, 0, 0, 1);
	int i;

	(void)state;
	hl_http_login_guard_init(&g, NULL);
	fail_n(&g, a, HTTP_LOGIN_MAX_FAILURES);
	assert_true(hl_http_login_blocked_s(&g, &a) > 0);
	for (i = 0; i < 2 * HTTP_LOGIN_SLOTS; i++)
		fail_n(&g, v4(10, 1, i / 256, i % 256), 1);
	assert_true(hl_http_login_blocked_s(&g, &a) > 0);
	assert_int_equal(hl_http_login_blocked_s(&g, &(struct http_addr){ 0 }), 0);
	hl_http_login_guard_destroy(&g);
}

static void
test_full_of_blocked_refuses_newcomer(void **state)
{
	struct http_login_guard g;
	struct http_addr fresh = v4(10, 9, 9, 9);
	int i;

	(void)state;
	hl_http_login_guard_init(&g, NULL);
	for (i = 0; i < HTTP_LOGIN_SLOTS - 1; i++) {
		fail_n(&g, v4(10, 2, i / 256, i % 256), HTTP_LOGIN_MAX_FAILURES);
		g.slots[0].failures = 0; /* not the ceiling across clients */
	}
	assert_true(hl_http_login_blocked_s(&g, &fresh) > 0);
	fail_n(&g, fresh, 1);
	g.slots[0].failures = 0;
	/* the newcomer took no slot: it and every blocked client stay blocked */
	assert_true(hl_http_login_blocked_s(&g, &fresh) > 0);
	for (i = 0; i < HTTP_LOGIN_SLOTS - 1; i++) {
		struct http_addr a = v4(10, 2, i / 256, i % 256);

		assert_true(hl_http_login_blocked_s(&g, &a) > 0);
	}
	hl_http_login_guard_destroy(&g);
}

static void
test_ipv6_per_64(void **state)
{
	struct http_login_guard g;
	struct http_addr other = v6(2, 1);
	int i;

	(void)state;
	hl_http_login_guard_init(&g, NULL);
	for (i = 0; i < HTTP_LOGIN_MAX_FAILURES; i++) {
		struct http_addr a = v6(1, (unsigned)i + 1);

		assert_int_equal(hl_http_login_blocked_s(&g, &a), 0);
		hl_http_login_failed(&g, &a);
	}
	{
		struct http_addr same = v6(1, 0xfffe);

		assert_true(hl_http_login_blocked_s(&g, &same) > 0);
	}
	assert_int_equal(hl_http_login_blocked_s(&g, &other), 0);
	hl_http_login_guard_destroy(&g);
}

static void
test_ceiling_across_clients(void **state)
{
	struct http_login_guard g;
	struct http_addr fresh = v4(10, 9, 9, 9);
	int i, n = 0;

	(void)state;
	hl_http_login_guard_init(&g, NULL);
	/* clients that each stay under their own limit */
	for (i = 0; hl_http_login_blocked_s(&g, &fresh) == 0 && i < 10000; i++) {
		fail_n(&g, v4(10, 3, i / 256, i % 256), HTTP_LOGIN_MAX_FAILURES - 1);
		n += HTTP_LOGIN_MAX_FAILURES - 1;
	}
	assert_true(hl_http_login_blocked_s(&g, &fresh) > 0);
	assert_true(hl_http_login_blocked_s(&g, &fresh) <= HTTP_LOGIN_WINDOW_MS / 1000);
	assert_in_range(n, 600, 600 + HTTP_LOGIN_MAX_FAILURES);
	hl_http_login_guard_destroy(&g);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_blocked_slot_kept),
		cmocka_unit_test(test_full_of_blocked_refuses_newcomer),
		cmocka_unit_test(test_ipv6_per_64),
		cmocka_unit_test(test_ceiling_across_clients),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
