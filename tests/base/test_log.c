/*
 * test_log.c - the logger's redaction (src/base/log.c): registered secrets
 * of any length are replaced, blank ones are not registered, and a URL's
 * user:password@ never reaches a log line, in the message or in a field.
 */
/* cmocka.h needs these headers before it */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */
#include "base/buf.h"
#include "base/log.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Runs fn with stderr redirected to a file and returns what it wrote. */
static char *
capture(void (*fn)(void))
{
	char path[] = "/tmp/healer-log-XXXXXX", *out;
	int fd = mkstemp(path), saved = dup(STDERR_FILENO);
	off_t n;

	assert_true(fd >= 0 && saved >= 0);
	assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	fn();
	assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
	close(saved);
	n = lseek(fd, 0, SEEK_END);
	out = calloc(1, (size_t)n + 1);
	assert_non_null(out);
	assert_int_equal(pread(fd, out, (size_t)n, 0), n);
	close(fd);
	unlink(path);
	return out;
}

static void
log_short_secret(void)
{
	hl_log_add_secret("q7z");
	hl_log_add_secret("   ");
	hl_log_kv(HL_LOG_WARN, "token q7z rejected", "detail", "upstream said q7z", NULL);
}

static void
test_log_redacts_short_secrets(void **state)
{
	char *out;

	(void)state;
	out = capture(log_short_secret);
	assert_null(strstr(out, "q7z"));
	assert_non_null(strstr(out, "token [REDACTED] rejected"));
	assert_non_null(strstr(out, "upstream said [REDACTED]"));
	/* a blank "secret" is not one: spaces survive */
	assert_non_null(strstr(out, "\"msg\":\"token "));
	free(out);
}

static void
log_urls(void)
{
	hl_log(HL_LOG_INFO, "listening, store postgres://healer:dbpass@db:5432/healer");
	hl_log_kv(HL_LOG_INFO, "source failed", "detail",
	          "loki: 'http://lokiuser:lokipass@loki:3100/x': HTTP 500", NULL);
}

static void
test_log_strips_url_userinfo(void **state)
{
	char *out, *red;

	(void)state;
	out = capture(log_urls);
	assert_null(strstr(out, "dbpass"));
	assert_null(strstr(out, "lokipass"));
	assert_null(strstr(out, "lokiuser"));
	assert_non_null(strstr(out, "postgres://db:5432/healer"));
	assert_non_null(strstr(out, "http://loki:3100/x"));
	red = hl_log_redact("see https://u:pw9@h/x");
	assert_string_equal(red, "see https://h/x");
	free(red);
	free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_log_redacts_short_secrets),
		cmocka_unit_test(test_log_strips_url_userinfo),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
