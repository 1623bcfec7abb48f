/*
 * test_log.c - the logger's redaction (src/base/log.c): registered secrets
 * of any length are replaced, blank ones are not registered, and a URL's
 * user:password@ never reaches a log line, in the message or in a field,
 * nor a buffer redacted for a prompt (linearly, NULs kept); a field the
 * caller gives is not written again from the thread's context;
 * deferred lines are written by themselves within a bounded time, in order
 * with the others, and whole when the buffer fills.
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
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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
log_context_and_own_fields(void)
{
	hl_log_set_context("d-ctx", "t-ctx");
	hl_log_kv(HL_LOG_WARN, "own", "task_id", "t-own", "outcome", "x", NULL);
	hl_log_kv(HL_LOG_WARN, "context", "outcome", "y", NULL);
	hl_log_set_context(NULL, NULL);
}

/* A field the caller names is written once: the thread's context (delivery
 * and task) does not write a second "task_id" beside it. */
static void
test_log_context_field_given_by_the_caller_is_written_once(void **state)
{
	char *out = capture(log_context_and_own_fields), *second;

	(void)state;
	second = strchr(out, '\n');
	assert_non_null(second);
	*second++ = '\0';
	assert_non_null(strstr(out, "\"delivery_id\":\"d-ctx\""));
	assert_non_null(strstr(out, "\"task_id\":\"t-own\""));
	assert_null(strstr(out, "t-ctx"));
	assert_non_null(strstr(second, "\"delivery_id\":\"d-ctx\",\"task_id\":\"t-ctx\""));
	free(out);
}

static atomic_bool rotating;

/* Redacts a fixed secret over and over while the other thread rotates
 * tokens (ThreadSanitizer watches the table's slots). */
static void *
redact_while_rotating(void *arg)
{
	(void)arg;
	while (atomic_load(&rotating)) {
		char *out = hl_log_redact("fixed-pw and ghs_rot000001");

		assert_non_null(out);
		assert_non_null(strstr(out, "[REDACTED] and"));
		free(out);
	}
	return NULL;
}

/* An installation token minted every hour takes the expired one's place:
 * after 500 of them each new one is still redacted, and the table still
 * has room for a secret added later. */
static void
test_log_replaced_secrets_do_not_fill_the_table(void **state)
{
	char prev[32] = "", tok[32], line[64], *out;
	pthread_t reader;
	int i;

	(void)state;
	hl_log_add_secret("fixed-pw");
	atomic_store(&rotating, true);
	assert_int_equal(pthread_create(&reader, NULL, redact_while_rotating, NULL), 0);
	for (i = 1; i <= 500; i++) {
		snprintf(tok, sizeof(tok), "ghs_rot%06d", i);
		hl_log_replace_secret(prev[0] ? prev : NULL, tok);
		snprintf(line, sizeof(line), "token %s used", tok);
		out = hl_log_redact(line);
		assert_string_equal(out, "token [REDACTED] used");
		free(out);
		memcpy(prev, tok, sizeof(prev));
	}
	atomic_store(&rotating, false);
	assert_int_equal(pthread_join(reader, NULL), 0);
	hl_log_add_secret("added-after");
	out = hl_log_redact("added-after, fixed-pw");
	assert_string_equal(out, "[REDACTED], [REDACTED]");
	free(out);
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

/* A buffer (a job log: any bytes, NULs too) loses every secret, however
 * often it occurs: a short secret a million times is one pass per secret
 * (a search per occurrence per secret would not end in the test's time). */
/* Under a sanitizer every memmem call checks its whole range, so the
 * million occurrences would be quadratic there: fewer then (the plain
 * build checks the million). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define LOG_TEST_OCCURRENCES (1u << 12)
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define LOG_TEST_OCCURRENCES (1u << 12)
#endif
#endif
#ifndef LOG_TEST_OCCURRENCES
#define LOG_TEST_OCCURRENCES (1u << 20)
#endif

static void
test_log_redact_str_replaces_only_what_quotes_a_secret(void **state)
{
	char *clean = strdup("build and test"), *url = strdup("https://github.com/a/b");
	char *quoting = strdup("job str-secret-77 and https://u:pw@h.example/x");
	const char *clean_before = clean, *url_before = url;

	(void)state;
	hl_log_add_secret("str-secret-77");
	assert_int_equal(hl_log_redact_str(&clean), 0);
	assert_int_equal(hl_log_redact_str(&url), 0);
	assert_int_equal(hl_log_redact_str(&quoting), 0);
	/* clean text is left in place, not copied */
	assert_ptr_equal(clean, clean_before);
	assert_ptr_equal(url, url_before);
	assert_string_equal(quoting, "job [REDACTED] and https://h.example/x");
	free(clean);
	free(url);
	free(quoting);
}

static void
test_log_redact_buf_linear_and_byte_exact(void **state)
{
	struct hl_buf b = HL_BUF_INIT(64);
	size_t i, n = LOG_TEST_OCCURRENCES;
	char *big;

	(void)state;
	hl_log_add_secret("k4");
	hl_log_add_secret("tok-long-k4-secret");
	/* NUL bytes kept; a secret inside a longer one goes with it */
	assert_int_equal(hl_buf_append(&b, "a\0k4\0tok-long-k4-secret!", 24), 0);
	assert_int_equal(hl_log_redact_buf(&b), 0);
	assert_int_equal(b.len, 24);
	assert_memory_equal(b.data, "a\0[REDACTED]\0[REDACTED]!", 24);
	/* URLs keep their userinfo when the text holds a NUL (no text to read) */
	hl_buf_release(&b);
	assert_int_equal(hl_buf_append_str(&b, "push https://ci:hunter2@r.example/x k4"), 0);
	assert_int_equal(hl_log_redact_buf(&b), 0);
	assert_string_equal(b.data, "push https://r.example/x [REDACTED]");
	hl_buf_release(&b);
	/* a million occurrences, past the buffer's bound (64) once redacted */
	big = malloc(2 * n + 1);
	assert_non_null(big);
	for (i = 0; i < n; i++)
		memcpy(big + 2 * i, "k4", 2);
	big[2 * n] = '\0';
	b.max = 0;
	assert_int_equal(hl_buf_append(&b, big, 2 * n), 0);
	b.max = 64;
	assert_int_equal(hl_log_redact_buf(&b), 0);
	assert_int_equal(b.len, n * strlen("[REDACTED]"));
	assert_null(memmem(b.data, b.len, "k4", 2));
	free(big);
	hl_buf_release(&b);
}

static char *
read_all(int fd)
{
	off_t n = lseek(fd, 0, SEEK_END);
	char *out = calloc(1, (size_t)n + 1);

	assert_non_null(out);
	assert_int_equal(pread(fd, out, (size_t)n, 0), n);
	return out;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* A deferred line waits, then is written with no other log call, within a
 * bounded time; an ordinary line writes the deferred ones before itself. */
static void
test_log_deferred_lines_are_written_in_time_and_in_order(void **state)
{
	char path[] = "/tmp/healer-log-XXXXXX", *out, *a, *b, *c;
	int fd = mkstemp(path), saved = dup(STDERR_FILENO), i;

	(void)state;
	assert_true(fd >= 0 && saved >= 0);
	assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	hl_log_kv_deferred(HL_LOG_INFO, "request", "path", "/first", NULL);
	/* written by the flusher alone, HL_LOG_DEFER_MS later (allow 5 s) */
	for (i = 0; i < 500 && lseek(fd, 0, SEEK_END) == 0; i++)
		sleep_ms(10);
	out = read_all(fd);
	assert_non_null(strstr(out, "\"path\":\"/first\""));
	free(out);
	hl_log_kv_deferred(HL_LOG_INFO, "request", "path", "/second", NULL);
	hl_log(HL_LOG_WARN, "after the second");
	out = read_all(fd);
	a = strstr(out, "/first");
	b = strstr(out, "/second");
	c = strstr(out, "after the second");
	assert_true(a && b && c && a < b && b < c);
	free(out);
	hl_log_kv_deferred(HL_LOG_INFO, "request", "path", "/third", NULL);
	hl_log_flush();
	out = read_all(fd);
	assert_non_null(strstr(out, "/third"));
	free(out);
	assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
	close(saved);
	close(fd);
	unlink(path);
}

/* More deferred lines than the buffer holds: every line arrives whole and
 * in order. */
static void
test_log_deferred_lines_survive_a_full_buffer(void **state)
{
	char path[] = "/tmp/healer-log-XXXXXX", *out, *p, want[32], pad[300];
	int fd = mkstemp(path), saved = dup(STDERR_FILENO), i, n = 2000;

	(void)state;
	memset(pad, 'x', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	assert_true(fd >= 0 && saved >= 0);
	assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	for (i = 0; i < n; i++) {
		snprintf(want, sizeof(want), "/%d", i);
		hl_log_kv_deferred(HL_LOG_INFO, "request", "path", want, "pad", pad, NULL);
	}
	hl_log_flush();
	assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
	close(saved);
	out = read_all(fd);
	p = out;
	for (i = 0; i < n; i++) {
		snprintf(want, sizeof(want), "\"path\":\"/%d\"", i);
		p = strstr(p, want);
		assert_non_null(p);
	}
	for (i = 0, p = out; (p = strchr(p, '\n')) != NULL; p++)
		i++;
	assert_int_equal(i, n);
	free(out);
	close(fd);
	unlink(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_log_redacts_short_secrets),
		cmocka_unit_test(test_log_context_field_given_by_the_caller_is_written_once),
		cmocka_unit_test(test_log_replaced_secrets_do_not_fill_the_table),
		cmocka_unit_test(test_log_strips_url_userinfo),
		cmocka_unit_test(test_log_redact_buf_linear_and_byte_exact),
		cmocka_unit_test(test_log_redact_str_replaces_only_what_quotes_a_secret),
		cmocka_unit_test(test_log_deferred_lines_are_written_in_time_and_in_order),
		cmocka_unit_test(test_log_deferred_lines_survive_a_full_buffer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
