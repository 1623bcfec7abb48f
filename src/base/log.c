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
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_MAX_SECRETS 64
#define LOG_DEFER_MAX   65536 /* bytes of deferred lines */

static enum hl_log_level log_level = HL_LOG_INFO;
/* The secrets to redact, each with its length in one immutable record.
 * Slots are only ever added (under log_lock), each written before the count
 * that shows it, so a line reads them without the lock; a token that
 * replaces an earlier one (hl_log_replace_secret) swaps its slot's record,
 * and the old record is freed at a later replacement once LOG_RETIRE_MS
 * have passed (a line holds a record for the length of one redaction, so
 * what waits is what was replaced in the last ten minutes). */
struct log_secret {
	size_t len;
	char s[];
};
#define LOG_RETIRE_MS (10 * 60 * 1000)
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(struct log_secret *) log_secrets[LOG_MAX_SECRETS];
static atomic_int log_nsecrets;
static struct log_retired {
	struct log_secret *rec;
	int64_t at_ms;
} * log_retired; /* the replaced records not yet freed, oldest first (log_lock) */
static size_t log_nretired, log_retired_cap;
static _Thread_local char log_delivery[96];
static _Thread_local char log_task[96];

/* Deferred lines, and the order of every write: under out_lock. */
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t out_cond = PTHREAD_COND_INITIALIZER;
static char out_pend[LOG_DEFER_MAX];
static size_t out_len;
static pthread_once_t out_once = PTHREAD_ONCE_INIT;
static bool out_flusher; /* the flusher thread runs */

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

static struct log_secret *
log_secret_new(const char *secret)
{
	size_t len = strlen(secret);
	struct log_secret *rec = malloc(sizeof(*rec) + len + 1);

	if (rec) {
		rec->len = len;
		memcpy(rec->s, secret, len + 1);
	}
	return rec;
}

static bool
log_secret_blank(const char *secret)
{
	/* short secrets count: a 3-character password is still a password
	 * (but blank text is nobody's secret, and would blank the log) */
	return !secret || !secret[strspn(secret, " \t\r\n")];
}

/* The slot holding secret, or -1; called with log_lock held. */
static int
log_secret_slot(const char *secret, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (strcmp(atomic_load_explicit(&log_secrets[i], memory_order_relaxed)->s,
		           secret) == 0)
			return i;
	return -1;
}

/* Adds secret in a new slot; called with log_lock held. */
static void
log_secret_append(const char *secret, int n)
{
	struct log_secret *rec;

	if (n >= LOG_MAX_SECRETS || !(rec = log_secret_new(secret)))
		return;
	atomic_store_explicit(&log_secrets[n], rec, memory_order_release);
	atomic_store_explicit(&log_nsecrets, n + 1, memory_order_release);
}

void
hl_log_add_secret(const char *secret)
{
	int n;

	if (log_secret_blank(secret))
		return;
	pthread_mutex_lock(&log_lock);
	n = atomic_load_explicit(&log_nsecrets, memory_order_relaxed);
	if (log_secret_slot(secret, n) < 0)
		log_secret_append(secret, n);
	pthread_mutex_unlock(&log_lock);
}

void
hl_log_replace_secret(const char *old, const char *secret)
{
	struct log_secret *rec;
	int64_t now = hl_time_mono_ms();
	size_t done = 0;
	int n, slot;

	if (log_secret_blank(secret))
		return;
	pthread_mutex_lock(&log_lock);
	/* free what was replaced long enough ago */
	while (done < log_nretired && now - log_retired[done].at_ms >= LOG_RETIRE_MS)
		free(log_retired[done++].rec);
	if (done) {
		memmove(log_retired, log_retired + done,
		        (log_nretired - done) * sizeof(*log_retired));
		log_nretired -= done;
	}
	n = atomic_load_explicit(&log_nsecrets, memory_order_relaxed);
	if (log_secret_slot(secret, n) >= 0)
		goto out;
	slot = old && !log_secret_blank(old) ? log_secret_slot(old, n) : -1;
	if (slot >= 0 && log_nretired == log_retired_cap) {
		size_t cap = log_retired_cap ? 2 * log_retired_cap : 8;
		struct log_retired *grown = realloc(log_retired, cap * sizeof(*grown));

		if (grown) {
			log_retired = grown;
			log_retired_cap = cap;
		}
	}
	if (slot < 0 || log_nretired == log_retired_cap || !(rec = log_secret_new(secret))) {
		log_secret_append(secret, n); /* nothing to replace (or no memory) */
		goto out;
	}
	log_retired[log_nretired].rec =
	        atomic_exchange_explicit(&log_secrets[slot], rec, memory_order_acq_rel);
	log_retired[log_nretired++].at_ms = now;
out:
	pthread_mutex_unlock(&log_lock);
}

void
hl_log_set_context(const char *delivery_id, const char *task_id)
{
	snprintf(log_delivery, sizeof(log_delivery), "%s", delivery_id ? delivery_id : "");
	snprintf(log_task, sizeof(log_task), "%s", task_id ? task_id : "");
}

/*
 * Appends s[0..n) (any bytes, NULs too) to b, JSON-escaped or raw, with
 * every registered secret replaced by [REDACTED]. Linear: each secret's
 * next occurrence is searched for again only once the text before it has
 * been written, so a text holding a short secret a million times costs
 * one pass per secret, not one per occurrence.
 */
static void
log_append_secrets_redacted(struct hl_buf *b, const char *s, size_t n, bool json)
{
	const struct log_secret *sec[LOG_MAX_SECRETS];
	const char *next[LOG_MAX_SECRETS];
	int i, k = atomic_load_explicit(&log_nsecrets, memory_order_acquire);
	size_t p = 0;

	for (i = 0; i < k; i++) {
		sec[i] = atomic_load_explicit(&log_secrets[i], memory_order_acquire);
		next[i] = memmem(s, n, sec[i]->s, sec[i]->len);
	}
	for (;;) {
		const char *hit = NULL;
		size_t len = 0;

		for (i = 0; i < k; i++) {
			if (next[i] &&
			    (!hit || next[i] < hit || (next[i] == hit && sec[i]->len > len))) {
				hit = next[i];
				len = sec[i]->len;
			}
		}
		if (!hit)
			break;
		if (json)
			hl_buf_append_json_escaped(b, s + p, (size_t)(hit - s) - p);
		else
			hl_buf_append(b, s + p, (size_t)(hit - s) - p);
		hl_buf_append_str(b, "[REDACTED]");
		p = (size_t)(hit - s) + len;
		/* the occurrences the redaction passed over are searched for again */
		for (i = 0; i < k; i++)
			if (next[i] && next[i] < s + p)
				next[i] = memmem(s + p, n - p, sec[i]->s, sec[i]->len);
	}
	if (json)
		hl_buf_append_json_escaped(b, s + p, n - p);
	else
		hl_buf_append(b, s + p, n - p);
}

/* Appends s with URL userinfo removed and every secret replaced by
 * [REDACTED], JSON-escaped or raw. */
static void
log_append_redacted_as(struct hl_buf *b, const char *s, bool json)
{
	struct hl_buf plain = HL_BUF_INIT(0);

	/* "scheme://user:pass@host" -> "scheme://host" first */
	if (strstr(s, "://")) {
		hl_url_strip_userinfo_text(&plain, s);
		if (!hl_buf_error(&plain))
			s = plain.data;
	}
	log_append_secrets_redacted(b, s, strlen(s), json);
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

	log_append_redacted_as(&b, s, false);
	return hl_buf_detach(&b, NULL);
}

bool
hl_log_quotes_secret(const char *s, size_t min_len)
{
	int i, k = atomic_load_explicit(&log_nsecrets, memory_order_acquire);

	for (i = 0; s && i < k; i++) {
		const struct log_secret *sec =
		        atomic_load_explicit(&log_secrets[i], memory_order_acquire);
		if (sec->len >= min_len && strstr(s, sec->s))
			return true;
	}
	return false;
}

int
hl_log_redact_str(char **s)
{
	int i, k = atomic_load_explicit(&log_nsecrets, memory_order_acquire);
	bool hit = false;
	char *r;

	if (!*s || !**s)
		return 0;
	for (i = 0; i < k && !hit; i++) {
		const struct log_secret *sec =
		        atomic_load_explicit(&log_secrets[i], memory_order_acquire);
		hit = strstr(*s, sec->s) != NULL;
	}
	if (!hit && !strstr(*s, "://"))
		return 0;
	if (!(r = hl_log_redact(*s)))
		return -1;
	if (strcmp(r, *s) == 0) {
		free(r); /* a URL without userinfo */
		return 0;
	}
	free(*s);
	*s = r;
	return 0;
}

int
hl_log_redact_buf(struct hl_buf *b)
{
	struct hl_buf plain = HL_BUF_INIT(0), out = HL_BUF_INIT(0), old;
	const char *s = b->data;
	size_t n = b->len;
	bool urls;

	if (!n || hl_buf_error(b))
		return 0;
	urls = !memchr(s, '\0', n) && memmem(s, n, "://", 3);
	if (!urls && atomic_load_explicit(&log_nsecrets, memory_order_acquire) == 0)
		return 0;
	/* URL userinfo: the stripping reads text, so only a text with no NUL */
	if (urls && hl_url_strip_userinfo_text(&plain, s) == 0 && !hl_buf_error(&plain)) {
		s = plain.data;
		n = plain.len;
	}
	log_append_secrets_redacted(&out, s, n, false);
	hl_buf_release(&plain);
	if (hl_buf_error(&out)) {
		hl_buf_release(&out);
		return -1;
	}
	/* the redacted bytes take b's place (a short secret's [REDACTED] may
	 * be longer than b's bound allows to append) */
	old = *b;
	*b = out;
	b->max = old.max;
	hl_buf_release(&old);
	return 0;
}

/* Writes n bytes to stderr whole (a short write is continued). */
static void
log_write(const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = write(STDERR_FILENO, p, n);
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

/* Writes the deferred lines. Under out_lock. */
static void
log_write_pending(void)
{
	if (out_len) {
		log_write(out_pend, out_len);
		out_len = 0;
	}
}

void
hl_log_flush(void)
{
	pthread_mutex_lock(&out_lock);
	log_write_pending();
	pthread_mutex_unlock(&out_lock);
}

/* Writes the deferred lines HL_LOG_DEFER_MS after the first of them came. */
static void *
log_flusher(void *arg)
{
	struct timespec ts;

	(void)arg;
	pthread_setname_np(pthread_self(), "hl-log");
	pthread_mutex_lock(&out_lock);
	for (;;) {
		while (!out_len)
			pthread_cond_wait(&out_cond, &out_lock);
		hl_time_deadline(&ts, CLOCK_MONOTONIC, HL_LOG_DEFER_MS);
		/* woken early only by a full buffer's writer: it wrote them */
		while (out_len && pthread_cond_timedwait(&out_cond, &out_lock, &ts) == 0)
			;
		log_write_pending();
	}
	return NULL;
}

static void
log_flusher_start(void)
{
	pthread_attr_t a;
	pthread_t t;
	sigset_t all, old;

	atexit(hl_log_flush);
	/* before the flusher exists: its timed wait runs on the monotonic clock */
	hl_cond_init_mono(&out_cond);
	if (pthread_attr_init(&a) != 0)
		return;
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	/* signals stay with the threads that wait for them */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	out_flusher = pthread_create(&t, &a, log_flusher, NULL) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&a);
}

/* Writes one line: after the deferred ones, or deferred itself. */
static void
log_out(const char *line, size_t n, bool defer)
{
	if (defer)
		pthread_once(&out_once, log_flusher_start);
	pthread_mutex_lock(&out_lock);
	if (defer && out_flusher && n <= sizeof(out_pend)) {
		if (out_len + n > sizeof(out_pend))
			log_write_pending();
		memcpy(out_pend + out_len, line, n);
		if (out_len == 0)
			pthread_cond_signal(&out_cond);
		out_len += n;
	} else {
		log_write_pending();
		log_write(line, n);
	}
	pthread_mutex_unlock(&out_lock);
}

static void
log_emit(enum hl_log_level level, const char *msg, va_list *kv, bool defer)
{
	static const char *const names[] = { "debug", "info", "warn", "error" };
	struct hl_buf b = HL_BUF_INIT(1 << 20);
	bool own_delivery = false, own_task = false;
	char ts[40];

	if (kv) {
		/* a field the caller names itself is written once, as given: the
		 * thread's context does not add it again (a duplicate key) */
		const char *k;
		va_list scan;

		va_copy(scan, *kv);
		while ((k = va_arg(scan, const char *)) != NULL) {
			(void)va_arg(scan, const char *);
			own_delivery = own_delivery || strcmp(k, "delivery_id") == 0;
			own_task = own_task || strcmp(k, "task_id") == 0;
		}
		va_end(scan);
	}
	hl_time_rfc3339_now(ts, sizeof(ts));
	(void)hl_buf_grow(&b, 384); /* most lines fit: one allocation */
	hl_buf_append_str(&b, "{\"time\":\"");
	hl_buf_append_str(&b, ts);
	hl_buf_append_str(&b, "\",\"level\":\"");
	hl_buf_append_str(&b, names[level]);
	hl_buf_append_str(&b, "\",\"msg\":\"");
	log_append_redacted(&b, msg);
	hl_buf_append_char(&b, '"');
	if (log_delivery[0] && !own_delivery) {
		hl_buf_append_str(&b, ",\"delivery_id\":\"");
		log_append_redacted(&b, log_delivery);
		hl_buf_append_char(&b, '"');
	}
	if (log_task[0] && !own_task) {
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
	hl_buf_append_str(&b, "}\n");
	if (!hl_buf_error(&b))
		log_out(b.data, b.len, defer);
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
	log_emit(level, msg, NULL, false);
}

void
hl_log_kv(enum hl_log_level level, const char *msg, ...)
{
	va_list ap;

	if (level < log_level)
		return;
	va_start(ap, msg);
	log_emit(level, msg, &ap, false);
	va_end(ap);
}

void
hl_log_kv_deferred(enum hl_log_level level, const char *msg, ...)
{
	va_list ap;

	if (level < log_level)
		return;
	va_start(ap, msg);
	log_emit(level, msg, &ap, true);
	va_end(ap);
}
