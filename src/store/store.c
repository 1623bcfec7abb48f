/*
 * store.c - the store front end: URL dispatch to a backend, the store
 * mutex, migrations, and the signals (store.h).
 *
 * Signals go through the backend when it reaches other processes
 * (conn.publish); otherwise, and for what a backend receives, they are
 * handed to this process's listeners by hl_store_deliver. A HL_CHANNEL_WORK
 * signal also wakes the workers waiting in hl_store_wait_work.
 * Invariant: listeners are called without the store mutex held, except
 * when a backend without publish delivers from inside a store call: they
 * must never call back into the store.
 */
#include "base/str.h"
#include "store_front.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STORE_MAX_PAYLOAD 7000

int
hl_store_migration_version(const char *path)
{
	const char *base = strrchr(path, '/');
	int v = 0, digits = 0;

	for (base = base ? base + 1 : path; *base >= '0' && *base <= '9'; base++, digits++)
		v = v * 10 + (*base - '0');
	return digits == 4 && *base == '_' ? v : -1;
}

int
hl_store_open(struct hl_store **out, const char *url, struct hl_err *err)
{
	struct hl_store *s;
	int rc;

	if (!url || !*url)
		return hl_err_set(err, HL_EINVAL, "empty store url");
	if (hl_str_starts_with(url, "postgres://") || hl_str_starts_with(url, "postgresql://"))
		return hl_err_set(err, HL_EUNSUPPORTED,
		                  "postgres store is not implemented yet; use 'sqlite:PATH'");
	if (!hl_str_starts_with(url, "sqlite:") || !url[7])
		return hl_err_set(err, HL_EINVAL, "store url '%s' must be 'sqlite:PATH'", url);
	s = calloc(1, sizeof(*s));
	if (!s)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	pthread_mutex_init(&s->db_lock, NULL);
	pthread_mutex_init(&s->q_lock, NULL);
	pthread_cond_init(&s->q_cond, NULL);
	pthread_mutex_init(&s->w_lock, NULL);
	pthread_cond_init(&s->w_cond, NULL);
	pthread_mutex_init(&s->s_lock, NULL);
	pthread_cond_init(&s->s_cond, NULL);
	pthread_mutex_init(&s->l_lock, NULL);
	rc = hl_store_sqlite_open(&s->b, &s->ops, url + 7,
	                          &(struct hl_store_sink){ hl_store_deliver, s }, err);
	if (rc < 0)
		goto fail;
	rc = s->ops->conn.migrate(s->b, NULL, err);
	if (rc < 0)
		goto fail;
	if ((rc = hl_store_intake_start(s, err)) < 0)
		goto fail;
	*out = s;
	return 0;
fail:
	hl_store_close(s);
	return rc;
}

void
hl_store_close(struct hl_store *s)
{
	if (!s)
		return;
	hl_store_intake_stop(s);
	hl_store_wake_all(s);
	if (s->b)
		s->ops->conn.close(s->b);
	pthread_mutex_destroy(&s->db_lock);
	pthread_mutex_destroy(&s->q_lock);
	pthread_cond_destroy(&s->q_cond);
	pthread_mutex_destroy(&s->w_lock);
	pthread_cond_destroy(&s->w_cond);
	pthread_mutex_destroy(&s->s_lock);
	pthread_cond_destroy(&s->s_cond);
	pthread_mutex_destroy(&s->l_lock);
	free(s);
}

int
hl_store_migrate(struct hl_store *s, int *applied_out, struct hl_err *err)
{
	STORE_CALL(s, s->ops->conn.migrate(s->b, applied_out, err));
}

int
hl_store_schema_version(struct hl_store *s, int *out, struct hl_err *err)
{
	STORE_CALL(s, s->ops->conn.schema_version(s->b, out, err));
}

int
hl_store_ping(struct hl_store *s, struct hl_err *err)
{
	STORE_CALL(s, s->ops->conn.ping(s->b, err));
}

const char *
hl_store_backend_name(const struct hl_store *s)
{
	return s->ops->conn.name;
}

int
hl_store_subscribe(struct hl_store *s, hl_store_listener_fn fn, void *arg, struct hl_err *err)
{
	int rc = 0;

	pthread_mutex_lock(&s->l_lock);
	if (s->n_listeners == STORE_MAX_LISTENERS) {
		rc = hl_err_set(err, HL_ETOOBIG, "too many store listeners");
	} else {
		s->listeners[s->n_listeners].fn = fn;
		s->listeners[s->n_listeners].arg = arg;
		s->n_listeners++;
	}
	pthread_mutex_unlock(&s->l_lock);
	return rc;
}

void
hl_store_deliver(void *store, enum hl_store_channel ch, const char *payload)
{
	struct hl_store *s = store;
	int i, n;

	if (ch == HL_CHANNEL_WORK) {
		pthread_mutex_lock(&s->w_lock);
		s->w_seq++;
		pthread_cond_broadcast(&s->w_cond);
		pthread_mutex_unlock(&s->w_lock);
	}
	/* held during the calls, so hl_store_unsubscribe waits for them */
	pthread_mutex_lock(&s->l_lock);
	n = s->n_listeners;
	for (i = 0; i < n; i++)
		s->listeners[i].fn(s->listeners[i].arg, ch, payload ? payload : "");
	pthread_mutex_unlock(&s->l_lock);
}

void
hl_store_unsubscribe(struct hl_store *s, hl_store_listener_fn fn, void *arg)
{
	int i;

	pthread_mutex_lock(&s->l_lock);
	for (i = 0; i < s->n_listeners; i++) {
		if (s->listeners[i].fn == fn && s->listeners[i].arg == arg) {
			memmove(&s->listeners[i], &s->listeners[i + 1],
			        (size_t)(s->n_listeners - i - 1) * sizeof(s->listeners[0]));
			s->n_listeners--;
			break;
		}
	}
	pthread_mutex_unlock(&s->l_lock);
}

int
hl_store_publish(struct hl_store *s, enum hl_store_channel ch, const char *payload,
                 struct hl_err *err)
{
	if (ch < 0 || ch >= HL_CHANNEL_MAX)
		return hl_err_set(err, HL_EINVAL, "no store channel %d", (int)ch);
	if (payload && strlen(payload) > STORE_MAX_PAYLOAD)
		return hl_err_set(err, HL_ETOOBIG, "signal payload of %zu bytes is too large",
		                  strlen(payload));
	if (s->ops->conn.publish)
		STORE_CALL(s, s->ops->conn.publish(s->b, ch, payload ? payload : "", err));
	hl_store_deliver(s, ch, payload);
	return 0;
}

bool
hl_store_wait_work(struct hl_store *s, int timeout_ms)
{
	static __thread uint64_t seen;
	struct timespec ts;
	bool work;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&s->w_lock);
	while (s->w_seq == seen && !s->w_wake_all) {
		if (pthread_cond_timedwait(&s->w_cond, &s->w_lock, &ts) != 0)
			break;
	}
	work = s->w_seq != seen;
	seen = s->w_seq;
	pthread_mutex_unlock(&s->w_lock);
	return work;
}

void
hl_store_wake_all(struct hl_store *s)
{
	pthread_mutex_lock(&s->w_lock);
	s->w_wake_all = true;
	pthread_cond_broadcast(&s->w_cond);
	pthread_mutex_unlock(&s->w_lock);
}

const char *
hl_store_channel_name(enum hl_store_channel ch)
{
	static const char *const names[HL_CHANNEL_MAX] = {
		[HL_CHANNEL_WORK] = "work",
		[HL_CHANNEL_DECISION] = "decision",
		[HL_CHANNEL_TASK] = "task",
	};

	return ch >= 0 && ch < HL_CHANNEL_MAX ? names[ch] : "invalid";
}
