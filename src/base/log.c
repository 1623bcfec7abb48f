/*
 * log.c - JSON-lines logger with secret redaction; see log.h. Every text
 * that goes into a line (the message, the context ids, every field) first
 * loses the userinfo of any URL in it (a configured URL may carry a
 * password), then every registered secret, whatever its length.
 */
#include "log.h"

#include "buf.h"
#include "clock.h"
#include "url.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOG_MAX_SECRETS 64

static enum hl_log_level log_level = HL_LOG_INFO;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char *log_secrets[LOG_MAX_SECRETS];
static int log_nsecrets;
static _Thread_local char log_delivery[96];
static _Thread_local char log_task[96];

void
hl_log_set_level(enum hl_log_level level)
{
	log_level = level;
}

int
hl_log_parse_level(const char *name)
{
	static const char *const names[] = { "debug", "info", "warn", "error" };
	int i;

	for (i = 0; i < 4; i++)
		if (strcmp(name, names[i]) == 0)
			return i;
	if (strcmp(name, "warning") == 0)
		return HL_LOG_WARN;
	return -1;
}

void
hl_log_add_secret(const char *secret)
{
	int i;

	/* short secrets too: a 3-character password is still a password
	 * (but blank text is nobody's secret, and would blank the log) */
	if (!secret || !secret[strspn(secret, " \t\r\n")])
		return;
	pthread_mutex_lock(&log_lock);
	for (i = 0; i < log_nsecrets; i++)
		if (strcmp(log_secrets[i], secret) == 0)
			goto out;
	if (log_nsecrets < LOG_MAX_SECRETS) {
		char *copy = strdup(secret);
		if (copy)
			log_secrets[log_nsecrets++] = copy;
	}
out:
	pthread_mutex_unlock(&log_lock);
}

void
hl_log_set_context(const char *delivery_id, const char *task_id)
{
	snprintf(log_delivery, sizeof(log_delivery), "%s", delivery_id ? delivery_id : "");
	snprintf(log_task, sizeof(log_task), "%s", task_id ? task_id : "");
}

/* The earliest registered secret in p (NULL if none); *len_out gets its
 * length. Called with log_lock held. */
static const char *
log_next_secret(const char *p, size_t *len_out)
{
	const char *best = NULL;
	int i;

	for (i = 0; i < log_nsecrets; i++) {
		const char *hit = strstr(p, log_secrets[i]);
		if (hit && (!best || hit < best)) {
			best = hit;
			*len_out = strlen(log_secrets[i]);
		}
	}
	return best;
}

/* Appends s with every secret replaced by [REDACTED], JSON-escaped or raw.
 * Called with log_lock held. */
static void
log_append_redacted_as(struct hl_buf *b, const char *s, bool json)
{
	struct hl_buf plain = HL_BUF_INIT(0);
	const char *p, *hit;
	size_t n = 0;

	/* "scheme://user:pass@host" -> "scheme://host" first */
	if (strstr(s, "://")) {
		hl_url_strip_userinfo_text(&plain, s);
		if (!hl_buf_error(&plain))
			s = plain.data;
	}
	p = s;

	while ((hit = log_next_secret(p, &n)) != NULL) {
		if (json)
			hl_buf_append_json_escaped(b, p, (size_t)(hit - p));
		else
			hl_buf_append(b, p, (size_t)(hit - p));
		hl_buf_append_str(b, "[REDACTED]");
		p = hit + n;
	}
	if (json)
		hl_buf_append_json_escaped(b, p, strlen(p));
	else
		hl_buf_append_str(b, p);
	hl_buf_release(&plain);
}

static void
log_append_redacted(struct hl_buf *b, const char *s)
{
	log_append_redacted_as(b, s, true);
}

char *
hl_log_redact(const char *s)
{
	struct hl_buf b = HL_BUF_INIT(0);

	pthread_mutex_lock(&log_lock);
	log_append_redacted_as(&b, s, false);
	pthread_mutex_unlock(&log_lock);
	return hl_buf_detach(&b, NULL);
}

static void
log_emit(enum hl_log_level level, const char *msg, va_list *kv)
{
	static const char *const names[] = { "debug", "info", "warn", "error" };
	struct hl_buf b = HL_BUF_INIT(1 << 20);
	char ts[40];
	ssize_t w;
	size_t off = 0;

	hl_time_rfc3339_now(ts, sizeof(ts));
	pthread_mutex_lock(&log_lock);
	hl_buf_appendf(&b, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts, names[level]);
	log_append_redacted(&b, msg);
	hl_buf_append_char(&b, '"');
	if (log_delivery[0]) {
		hl_buf_append_str(&b, ",\"delivery_id\":\"");
		log_append_redacted(&b, log_delivery);
		hl_buf_append_char(&b, '"');
	}
	if (log_task[0]) {
		hl_buf_append_str(&b, ",\"task_id\":\"");
		log_append_redacted(&b, log_task);
		hl_buf_append_char(&b, '"');
	}
	if (kv) {
		const char *k, *v;
		while ((k = va_arg(*kv, const char *)) != NULL) {
			v = va_arg(*kv, const char *);
			hl_buf_append_char(&b, ',');
			hl_buf_append_char(&b, '"');
			hl_buf_append_json_escaped(&b, k, strlen(k));
			hl_buf_append_str(&b, "\":\"");
			log_append_redacted(&b, v ? v : "");
			hl_buf_append_char(&b, '"');
		}
	}
	pthread_mutex_unlock(&log_lock);
	hl_buf_append_str(&b, "}\n");
	if (!hl_buf_error(&b)) {
		while (off < b.len) {
			w = write(STDERR_FILENO, b.data + off, b.len - off);
			if (w <= 0)
				break;
			off += (size_t)w;
		}
	}
	hl_buf_release(&b);
}

void
hl_log(enum hl_log_level level, const char *fmt, ...)
{
	char msg[4096];
	va_list ap;

	if (level < log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_emit(level, msg, NULL);
}

void
hl_log_kv(enum hl_log_level level, const char *msg, ...)
{
	va_list ap;

	if (level < log_level)
		return;
	va_start(ap, msg);
	log_emit(level, msg, &ap);
	va_end(ap);
}
