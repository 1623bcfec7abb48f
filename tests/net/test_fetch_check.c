/*
 * test_fetch_check.c - hl_fetch_check, the error an HTTP answer becomes:
 * its class by status, and its excerpt of the answer, which never quotes a
 * credential the answer echoes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "net/fetch.h"

#include <stdio.h>
#include <string.h>

#define SECRET "ghs_fetchcheck_secret_0123456789abcdef"

static int
check_answer(struct hl_err *err, long status, const char *body)
{
	struct hl_fetch_res res;
	int rc;

	hl_fetch_res_init(&res);
	res.status = status;
	assert_int_equal(hl_buf_append(&res.body, body, strlen(body)), 0);
	rc = hl_fetch_check(&res, "probe", err);
	hl_fetch_res_release(&res);
	return rc;
}

static void
test_fetch_check_classes(void **state)
{
	struct hl_err err = HL_ERR_INIT;

	(void)state;
	assert_int_equal(check_answer(&err, 200, "{}"), 0);
	assert_int_equal(check_answer(&err, 401, "no"), -HL_EAUTH);
	assert_int_equal(check_answer(&err, 404, "gone"), -HL_ENOTFOUND);
	assert_int_equal(check_answer(&err, 422, "bad"), -HL_EINVAL);
	assert_int_equal(check_answer(&err, 503, "down\nnow"), -HL_EUPSTREAM);
	assert_string_equal(err.msg, "probe: status 503: down now");
}

static void
test_fetch_check_excerpt_redacts_an_echoed_secret(void **state)
{
	struct hl_err err = HL_ERR_INIT;
	char body[600];

	(void)state;
	hl_log_add_secret(SECRET);
	snprintf(body, sizeof(body), "{\"message\":\"token %s is not allowed\"}", SECRET);
	assert_int_equal(check_answer(&err, 400, body), -HL_EINVAL);
	assert_null(strstr(err.msg, SECRET));
	assert_non_null(strstr(err.msg, "token [REDACTED] is not allowed"));
	/* across the 160-byte cut: no part of it is left */
	snprintf(body, sizeof(body), "%0150d %s and more", 0, SECRET);
	assert_int_equal(check_answer(&err, 403, body), -HL_EAUTH);
	assert_null(strstr(err.msg, "ghs_"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fetch_check_classes),
		cmocka_unit_test(test_fetch_check_excerpt_redacts_an_echoed_secret),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
