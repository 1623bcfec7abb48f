/*
 * store.c - the store front end: URL dispatch to a backend, the store
 * mutex, migrations, the signals (store.h), named locks (store/loop.h) and
 * the lease keeper.
 *
 * Signals go through the backend when it reaches other processes
 * (conn.publish); otherwise, and for what a backend receives, they are
 * handed to this process's listeners by hl_store_deliver. A HL_CHANNEL_WORK
 * signal also wakes the workers waiting in hl_store_wait_work.
 * A signal is always handed to this process's listeners at once; a
 * backend with publish also sends it to the other processes, and its
 * listener skips the ones this process sent.
 * Invariant: listeners are called without the store mutex held; they
 * must never call back into the store.
 * The lease keeper thread renews this handle's claims and the task leases
 * it holds every third of the claim lease, gives back the claims its
 * workers abandoned, and on a shared backend requeues the claims of
 * processes that died; a read-only handle has none.
 */
#include "base/clock.h"
#include "base/str.h"
#include "store_front.h"

#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STORE_MAX_PAYLOAD    7000
#define STORE_CLAIM_LEASE_MS 15000

int
hl_store_migration_version(const char *path)
{
	const char *base = strrchr(path, '/');
	int v = 0, digits = 0;

	for (base = base ? base + 1 : path; *base >= '0' && *base <= '9'; base++, digits++)
		v = v * 10 + (*base - '0');
	return digits == 4 && *base == '_' ? v : -1;
}

bool
hl_store_url_is_postgres(const char *url)
{
	const char *p = url;

	if (!url)
		return false;
	if (hl_str_starts_with(url, "postgres://") || hl_str_starts_with(url, "postgresql://"))
		return true;
	/* libpq key/value settings: "keyword = value ..." */
	while (*p == ' ' || *p == '\t')
		p++;
	if (!((*p >= 'a' && *p <= 'z') || *p == '_'))
		return false;
	while ((*p >= 'a' && *p <= 'z') || *p == '_')
		p++;
	while (*p == ' ' || *p == '\t')
		p++;
	return *p == '=';
}

/*
 * True for a libpq parameter whose value is a secret: password, and
 * sslpassword (the passphrase of the client key). In a URL, libpq decodes
 * %XX in parameter names too (pct), so "%70assword" is a password.
 */
static bool
store_param_secret(const char *k, size_t n, bool pct)
{
	static const char hex[] = "0123456789abcdef";
	const char *hi, *lo;
	char name[16];
	size_t i, j = 0;

	for (i = 0; i < n; i++, j++) {
		if (j == sizeof(name) - 1)
			return false;
		name[j] = k[i];
		if (pct && k[i] == '%' && i + 2 < n && k[i + 1] && k[i + 2] &&
		    (hi = strchr(hex, tolower((unsigned char)k[i + 1]))) &&
		    (lo = strchr(hex, tolower((unsigned char)k[i + 2])))) {
			name[j] = (char)((hi - hex) * 16 + (lo - hex));
			i += 2;
		}
	}
	name[j] = '\0';
	return strcmp(name, "password") == 0 || strcmp(name, "sslpassword") == 0;
}

/* Appends libpq key/value settings with the passwords' values masked. A
 * word that is not "keyword = value" (a password with an unquoted space,
 * which libpq refuses) is masked too: it may be the rest of a password. */
static void
store_kv_display(struct hl_buf *out, const char *s)
{
	const char *p = s, *k, *ke, *eq, *v;
	bool first = true;

	while (*p) {
		for (k = p; *k == ' ' || *k == '\t'; k++)
			;
		if (!*k)
			break;
		for (ke = k; *ke && *ke != '=' && *ke != ' ' && *ke != '\t'; ke++)
			;
		for (eq = ke; *eq == ' ' || *eq == '\t'; eq++)
			;
		if (!first)
			hl_buf_append_char(out, ' ');
		first = false;
		if (*eq != '=' || ke == k) {
			/* not a setting: skip the word as libpq reads an unquoted value */
			for (p = k; *p && *p != ' ' && *p != '\t' && *p != '='; p++)
				if (*p == '\\' && p[1])
					p++;
			if (*p == '=')
				p++;
			hl_buf_append_str(out, "***");
			continue;
		}
		for (v = eq + 1; *v == ' ' || *v == '\t'; v++)
			;
		hl_buf_append(out, k, (size_t)(v - k));
		p = v;
		if (*p == '\'') {
			for (p++; *p && *p != '\''; p++)
				if (*p == '\\' && p[1])
					p++;
			if (*p)
				p++;
		} else {
			/* unquoted: a backslash escapes the next character (a space) */
			for (; *p && *p != ' ' && *p != '\t'; p++)
				if (*p == '\\' && p[1])
					p++;
		}
		if (store_param_secret(k, (size_t)(ke - k), false))
			hl_buf_append_str(out, "***");
		else
			hl_buf_append(out, v, (size_t)(p - v));
	}
}

/*
 * Where a postgres:// URL's host part starts (just after "scheme://" when
 * it has no user info). libpq ends the user info at the first '@' before
 * the first '/' (so an unencoded '?' or '#' is part of the password); an
 * '@' still before the query after that is a password with an unencoded
 * '@' or '/' that libpq splits elsewhere (into a host name, a port, a
 * database name): all of it up to that last '@' is hidden too, and so it
 * is up to an '@' in a query parameter that is not "name=value".
 */
static const char *
store_pg_url_host(const char *url)
{
	const char *auth = strstr(url, "://") + 3, *p, *start, *q, *last = NULL;

	for (p = auth; *p && *p != '@' && *p != '/'; p++)
		;
	start = *p == '@' ? p + 1 : auth;
	q = start + strcspn(start, "?");
	for (p = start; *p; p++)
		if (*p == '@')
			last = p;
	if (last && last > q) {
		/* in the query: a value's '@' (application_name=a@b), or a
		 * password's after an unencoded '/' and '?' ("u:p/x?y@host") */
		for (p = last; p > q && p[-1] != '&'; p--)
			;
		if (memchr(p, '=', (size_t)(last - p)))
			last = NULL;
	}
	return last ? last + 1 : start;
}

int
hl_store_url_display(struct hl_buf *out, const char *url)
{
	struct hl_buf tmp = HL_BUF_INIT(0);
	const char *q, *p, *host;
	int rc;

	if (!url)
		return hl_buf_append_str(out, "");
	if (!hl_store_url_is_postgres(url)) {
		hl_buf_append_str(out, url);
		return hl_buf_error(out);
	}
	if (!strstr(url, "://")) {
		store_kv_display(out, url);
		return hl_buf_error(out);
	}
	/* a URL: no user-info, and no password or sslpassword among its
	 * parameters; a parameter that is not "name=value" (which libpq
	 * refuses) may be the rest of a password with an unencoded '/' */
	host = store_pg_url_host(url);
	hl_buf_append(&tmp, url, (size_t)(strstr(url, "://") + 3 - url));
	hl_buf_append_str(&tmp, host);
	if ((rc = hl_buf_error(&tmp)) < 0) {
		hl_buf_release(&tmp);
		return rc;
	}
	q = strchr(tmp.data, '?');
	if (!q) {
		hl_buf_append_str(out, tmp.data);
	} else {
		hl_buf_append(out, tmp.data, (size_t)(q - tmp.data));
		for (p = q + 1; *p;) {
			const char *amp = strchr(p, '&');
			size_t n = amp ? (size_t)(amp - p) : strlen(p);

			const char *eq = memchr(p, '=', n);

			hl_buf_append_char(out, p == q + 1 ? '?' : '&');
			if (!eq) {
				hl_buf_append_str(out, "***");
			} else if (store_param_secret(p, (size_t)(eq - p), true)) {
				hl_buf_append(out, p, (size_t)(eq - p) + 1);
				hl_buf_append_str(out, "***");
			} else {
				hl_buf_append(out, p, n);
			}
			p += n;
			if (*p == '&')
				p++;
		}
	}
	hl_buf_release(&tmp);
	return hl_buf_error(out);
}

/* "host:pid:random": unique among the processes sharing a store. */
static void
store_make_owner(char *out, size_t size)
{
	char host[64] = "host";
	unsigned char rnd[6] = { 0 };
	char hex[13];
	int fd;

	if (gethostname(host, sizeof(host)) != 0)
		strcpy(host, "host");
	host[sizeof(host) - 1] = '\0';
	fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, rnd, sizeof(rnd)) != (ssize_t)sizeof(rnd)) {
		int64_t t = hl_time_mono_ms() ^ (int64_t)(uintptr_t)out;
		memcpy(rnd, &t, sizeof(rnd));
	}
	if (fd >= 0)
		close(fd);
	hl_str_hex(hex, rnd, sizeof(rnd));
	snprintf(out, size, "%s:%ld:%s", host, (long)getpid(), hex);
}

int
hl_store_abandon_claim(struct hl_store *s, const char *delivery_id)
{
	char *id = strdup(delivery_id), **grown;
	size_t cap;

	if (!id)
		return -HL_ENOMEM;
	pthread_mutex_lock(&s->k_lock);
	if (s->k_n_abandoned == s->k_cap_abandoned) {
		cap = s->k_cap_abandoned ? s->k_cap_abandoned * 2 : 8;
		if (!(grown = realloc(s->k_abandoned, cap * sizeof(*grown)))) {
			pthread_mutex_unlock(&s->k_lock);
			free(id);
			return -HL_ENOMEM;
		}
		s->k_abandoned = grown;
		s->k_cap_abandoned = cap;
	}
	s->k_abandoned[s->k_n_abandoned++] = id;
	s->k_wake = true;
	pthread_cond_signal(&s->k_cond);
	pthread_mutex_unlock(&s->k_lock);
	return 0;
}

/* Gives back the abandoned claims (k_lock held, dropped while the store is
 * asked); those the store refused stay for the next round. The number
 * given back. */
static int64_t
store_give_back_abandoned(struct hl_store *s)
{
	size_t i, kept = 0;
	int64_t n = 0;
	int rc;

	for (i = 0; i < s->k_n_abandoned; i++) {
		char *id = s->k_abandoned[i];

		pthread_mutex_unlock(&s->k_lock);
		rc = hl_store_give_back(s, id);
		pthread_mutex_lock(&s->k_lock);
		/* ECONFLICT: no longer this process's claim */
		if (rc == 0 || rc == -HL_ECONFLICT || rc == -HL_ENOTFOUND) {
			n += rc == 0;
			free(id);
		} else {
			s->k_abandoned[kept++] = id;
		}
	}
	s->k_n_abandoned = kept;
	return n;
}

void
hl_store_hold_task(struct hl_store *s, const char *task_id, const char *owner, int64_t span_ms)
{
	struct store_held *grown;
	size_t i, cap;

	pthread_mutex_lock(&s->k_lock);
	for (i = 0; i < s->k_n_held; i++) {
		if (strcmp(s->k_held[i].task_id, task_id) == 0 &&
		    strcmp(s->k_held[i].owner, owner) == 0) {
			s->k_held[i].span_ms = span_ms;
			goto out;
		}
	}
	if (s->k_n_held == s->k_cap_held) {
		cap = s->k_cap_held ? s->k_cap_held * 2 : 8;
		if (!(grown = realloc(s->k_held, cap * sizeof(*grown))))
			goto out; /* not renewed: it lasts its span, as taken */
		s->k_held = grown;
		s->k_cap_held = cap;
	}
	s->k_held[s->k_n_held] = (struct store_held){ strdup(task_id), strdup(owner), span_ms };
	if (!s->k_held[s->k_n_held].task_id || !s->k_held[s->k_n_held].owner) {
		free(s->k_held[s->k_n_held].task_id);
		free(s->k_held[s->k_n_held].owner);
		goto out;
	}
	s->k_n_held++;
	/* a span shorter than the keeper's round needs an earlier round */
	if (span_ms < atomic_load(&s->claim_lease_ms)) {
		s->k_wake = true;
		pthread_cond_signal(&s->k_cond);
	}
out:
	pthread_mutex_unlock(&s->k_lock);
}

static void
store_held_free(struct store_held *h)
{
	free(h->task_id);
	free(h->owner);
}

void
hl_store_unhold_task(struct hl_store *s, const char *task_id, const char *owner)
{
	size_t i;

	pthread_mutex_lock(&s->k_lock);
	for (i = 0; i < s->k_n_held; i++) {
		if (strcmp(s->k_held[i].task_id, task_id) == 0 &&
		    strcmp(s->k_held[i].owner, owner) == 0) {
			store_held_free(&s->k_held[i]);
			s->k_held[i] = s->k_held[--s->k_n_held];
			break;
		}
	}
	pthread_mutex_unlock(&s->k_lock);
}

/* The backend the keeper works on: its own connection (no store mutex),
 * or the store's, under the mutex; store_keep_done ends the use. */
static struct hl_store_backend *
store_keep_begin(struct hl_store *s)
{
	struct hl_store_backend *kb = s->ops->conn.keeper ? s->ops->conn.keeper(s->b) : NULL;

	if (kb)
		return kb;
	pthread_mutex_lock(&s->db_lock);
	return s->b;
}

static void
store_keep_done(struct hl_store *s, struct hl_store_backend *kb)
{
	if (kb == s->b)
		pthread_mutex_unlock(&s->db_lock);
}

/* Renews the task leases held here (k_lock held, so a release that forgot
 * one is never undone); a lease another holder took over once it ran out
 * is forgotten; a failure (the database away, the table locked) ends the
 * round. The shortest span, for the next round. */
static int64_t
store_renew_held(struct hl_store *s, int64_t shortest)
{
	struct hl_store_backend *kb;
	struct hl_err err;
	size_t i = 0;
	int64_t now;
	bool got;
	int rc;

	while (i < s->k_n_held) {
		struct store_held *h = &s->k_held[i];

		err.code = 0;
		got = false;
		now = hl_time_wall_ms();
		kb = store_keep_begin(s);
		rc = s->ops->loop.task_lease(kb, &got, h->task_id, h->owner, now, now + h->span_ms,
		                             &err);
		store_keep_done(s, kb);
		if (rc < 0)
			break;
		if (!got) {
			store_held_free(h);
			s->k_held[i] = s->k_held[--s->k_n_held];
			continue;
		}
		if (h->span_ms < shortest)
			shortest = h->span_ms;
		i++;
	}
	return shortest;
}

/* Renews the claims this handle holds (a copy of the list, so claims and
 * finishes do not wait for the store); on a shared backend its own claims
 * it does not hold (their claim's or its intake batch's answer was lost
 * with the connection) then run out and are given back. */
static void
store_renew_claims(struct hl_store *s, int64_t lease, struct hl_err *err)
{
	static const char *const none[1] = { NULL };
	struct hl_store_backend *kb;
	const char **ids = NULL;
	size_t n = 0, i;
	bool oom;

	pthread_mutex_lock(&s->c_lock);
	oom = s->c_lost;
	if (s->c_n && !(ids = malloc(s->c_n * sizeof(*ids))))
		oom = true;
	for (i = 0; ids && i < s->c_n; i++)
		if (!(ids[n] = strdup(s->c_ids[i])))
			oom = true;
		else
			n++;
	pthread_mutex_unlock(&s->c_lock);
	kb = store_keep_begin(s);
	/* out of memory: every claim of the owner renewed, none given back */
	(void)s->ops->intake.renew(kb, s->owner, hl_time_wall_ms() + lease,
	                           oom   ? NULL
	                           : ids ? ids
	                                 : none,
	                           n, err);
	store_keep_done(s, kb);
	for (i = 0; i < n; i++)
		free((char *)ids[i]);
	free(ids);
}

/* Renews this handle's claims and task leases every third of the lease
 * (of the shortest task lease, when shorter), gives back the abandoned
 * claims, and (on a shared backend) requeues the claims of processes that
 * died; on the backend's keeper connection when it has one, so no
 * statement of the others' waiting on a lock holds the renewals up. */
static void *
store_keeper(void *arg)
{
	struct hl_store *s = arg;
	struct hl_store_backend *kb;
	struct timespec ts;
	struct hl_err err;
	int64_t lease, n, round;

	pthread_setname_np(pthread_self(), "hl-keeper");
	pthread_mutex_lock(&s->k_lock);
	round = atomic_load(&s->claim_lease_ms);
	while (!s->k_stop) {
		lease = atomic_load(&s->claim_lease_ms);
		hl_time_deadline(&ts, CLOCK_MONOTONIC, (round < lease ? round : lease) / 3);
		while (!s->k_stop && !s->k_wake &&
		       pthread_cond_timedwait(&s->k_cond, &s->k_lock, &ts) == 0)
			;
		if (s->k_stop)
			break;
		s->k_wake = false;
		lease = atomic_load(&s->claim_lease_ms); /* it may have changed meanwhile */
		pthread_mutex_unlock(&s->k_lock);
		/* the claims first: a task lease waiting on a lock delays them
		 * by no more than its connection's lock timeout */
		err.code = 0;
		store_renew_claims(s, lease, &err);
		pthread_mutex_lock(&s->k_lock);
		n = store_give_back_abandoned(s);
		round = store_renew_held(s, lease);
		pthread_mutex_unlock(&s->k_lock);
		kb = store_keep_begin(s);
		/* the send under way; a send's lease that ran out (the store
		 * was away) is not renewed: the row is due again */
		if (atomic_load(&s->o_sending) > 0)
			(void)s->ops->outbox.renew(kb, s->owner, atomic_load(&s->o_sending),
			                           hl_time_wall_ms(), hl_time_wall_ms() + lease,
			                           &err);
		if (s->ops->intake.reap) {
			int64_t reaped = 0;

			(void)s->ops->intake.reap(kb, &reaped, s->owner, lease, &err);
			n += reaped;
		}
		store_keep_done(s, kb);
		if (n > 0)
			(void)hl_store_publish(s, HL_CHANNEL_WORK, "", NULL);
		pthread_mutex_lock(&s->k_lock);
	}
	pthread_mutex_unlock(&s->k_lock);
	return NULL;
}

int
hl_store_open(struct hl_store **out, const char *url, struct hl_err *err)
{
	return hl_store_open_with(out, url, 0, err);
}

/* The form of url: 0 for a SQLite or PostgreSQL store, else why not. */
static int
store_url_form(const char *url, struct hl_err *err)
{
	struct hl_buf shown = HL_BUF_INIT(0);
	int rc;

	if (!url || !*url)
		return hl_err_set(err, HL_EINVAL, "empty store url");
	if (hl_store_url_is_postgres(url) || (hl_str_starts_with(url, "sqlite:") && url[7]))
		return 0;
	hl_store_url_display(&shown, url);
	rc = hl_err_set(err, HL_EINVAL,
	                "store url '%s' must be 'sqlite:PATH', 'postgres://...' or libpq"
	                " settings ('host=... dbname=...')",
	                shown.data);
	hl_buf_release(&shown);
	return rc;
}

int
hl_store_url_check(const char *url, struct hl_err *err)
{
	int rc = store_url_form(url, err);

	if (rc == 0 && hl_store_url_is_postgres(url))
		rc = hl_store_pg_check(url, err);
	return rc;
}

int
hl_store_open_with(struct hl_store **out, const char *url, unsigned flags, struct hl_err *err)
{
	struct hl_store *s;
	bool pg;
	int rc;

	if ((rc = store_url_form(url, err)) < 0)
		return rc;
	pg = hl_store_url_is_postgres(url);
	s = calloc(1, sizeof(*s));
	if (!s)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	s->flags = flags;
	atomic_init(&s->claim_lease_ms, STORE_CLAIM_LEASE_MS);
	store_make_owner(s->owner, sizeof(s->owner));
	pthread_mutex_init(&s->db_lock, NULL);
	pthread_mutex_init(&s->q_lock, NULL);
	pthread_cond_init(&s->q_cond, NULL);
	pthread_mutex_init(&s->w_lock, NULL);
	hl_cond_init_mono(&s->w_cond);
	pthread_mutex_init(&s->h_lock, NULL);
	s->h_db_seq = 1; /* deliveries may wait from before this start */
	pthread_mutex_init(&s->s_lock, NULL);
	pthread_cond_init(&s->s_cond, NULL);
	pthread_mutex_init(&s->l_lock, NULL);
	pthread_mutex_init(&s->n_lock, NULL);
	pthread_mutex_init(&s->k_lock, NULL);
	hl_cond_init_mono(&s->k_cond);
	pthread_mutex_init(&s->c_lock, NULL);
	if (pg)
		rc = hl_store_pg_open(&s->b, &s->ops, url, flags, s->owner,
		                      &(struct hl_store_sink){ hl_store_deliver, s }, err);
	else
		rc = hl_store_sqlite_open(&s->b, &s->ops, url + 7, flags,
		                          &(struct hl_store_sink){ hl_store_deliver, s }, err);
	if (rc < 0)
		goto fail;
	if (flags & HL_STORE_READ_ONLY) {
		*out = s;
		return 0;
	}
	rc = s->ops->conn.migrate(s->b, &s->migrated, err);
	if (rc < 0)
		goto fail;
	if ((rc = hl_store_intake_start(s, err)) < 0)
		goto fail;
	if (pthread_create(&s->keeper, NULL, store_keeper, s) != 0) {
		rc = hl_err_set(err, HL_EINTERNAL, "cannot start the store's lease keeper");
		goto fail;
	}
	s->keeper_started = true;
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
	if (s->keeper_started) {
		pthread_mutex_lock(&s->k_lock);
		s->k_stop = true;
		pthread_cond_signal(&s->k_cond);
		pthread_mutex_unlock(&s->k_lock);
		pthread_join(s->keeper, NULL);
	}
	hl_store_intake_stop(s);
	hl_store_wake_all(s);
	if (s->b)
		hl_store_handoff_release(s);
	if (s->b)
		s->ops->conn.close(s->b);
	pthread_mutex_destroy(&s->db_lock);
	pthread_mutex_destroy(&s->q_lock);
	pthread_cond_destroy(&s->q_cond);
	pthread_mutex_destroy(&s->w_lock);
	pthread_cond_destroy(&s->w_cond);
	pthread_mutex_destroy(&s->h_lock);
	free(s->h_ring);
	pthread_mutex_destroy(&s->s_lock);
	pthread_cond_destroy(&s->s_cond);
	pthread_mutex_destroy(&s->l_lock);
	pthread_mutex_destroy(&s->n_lock);
	pthread_mutex_destroy(&s->k_lock);
	pthread_cond_destroy(&s->k_cond);
	while (s->k_n_abandoned > 0)
		free(s->k_abandoned[--s->k_n_abandoned]);
	free(s->k_abandoned);
	while (s->k_n_held > 0)
		store_held_free(&s->k_held[--s->k_n_held]);
	free(s->k_held);
	pthread_mutex_destroy(&s->c_lock);
	while (s->c_n > 0)
		free(s->c_ids[--s->c_n]);
	free(s->c_ids);
	free(s);
}

const char *
hl_store_owner(const struct hl_store *s)
{
	return s->owner;
}

void
hl_store_set_claim_lease(struct hl_store *s, int64_t lease_ms)
{
	atomic_store(&s->claim_lease_ms, lease_ms < 1000 ? 1000 : lease_ms);
	if (s->ops->conn.set_lease)
		s->ops->conn.set_lease(s->b, atomic_load(&s->claim_lease_ms));
	pthread_mutex_lock(&s->k_lock);
	s->k_wake = true; /* a round now, then every third of the new lease */
	pthread_cond_signal(&s->k_cond);
	pthread_mutex_unlock(&s->k_lock);
}

int
hl_store_leader(struct hl_store *s, bool *leader, const char *name, const char *owner,
                int64_t ttl_ms, struct hl_err *err)
{
	*leader = false;
	if (!name || !*name || strlen(name) > 64)
		return hl_err_set(err, HL_EINVAL, "a leadership needs a name (at most 64 bytes)");
	STORE_CALL(s, s->ops->conn.leader(s->b, leader, name, owner, ttl_ms, err));
}

/* ---- named locks (store/loop.h) --------------------------------------------- */

#define STORE_LOCK_PAUSE_MS 50 /* between tries while another holder has it */

/* The slot of this handle holding name, or a free one for "", or -1;
 * under n_lock. */
static int
store_lock_slot(const struct hl_store *s, const char *name)
{
	int i;

	for (i = 0; i < HL_STORE_MAX_LOCKS; i++)
		if (strcmp(s->n_held[i], name) == 0)
			return i;
	return -1;
}

/* One try: the handle's slot first (no two of its threads hold a name),
 * then the backend's lock across processes. */
static int
store_lock_try(struct hl_store *s, bool *got, const char *name, struct hl_err *err)
{
	int i, rc = 0;

	*got = false;
	pthread_mutex_lock(&s->n_lock);
	if (store_lock_slot(s, name) < 0 && (i = store_lock_slot(s, "")) >= 0) {
		hl_strlcpy(s->n_held[i], name, sizeof(s->n_held[i]));
		*got = true;
	}
	pthread_mutex_unlock(&s->n_lock);
	if (!*got || !s->ops->conn.lock_try)
		return 0;
	rc = s->ops->conn.lock_try(s->b, got, name, err);
	if (rc < 0 || !*got) {
		*got = false;
		pthread_mutex_lock(&s->n_lock);
		if ((i = store_lock_slot(s, name)) >= 0)
			s->n_held[i][0] = '\0';
		pthread_mutex_unlock(&s->n_lock);
	}
	return rc;
}

int
hl_store_lock_take(struct hl_store *s, bool *got, const char *name, int wait_ms, struct hl_err *err)
{
	int64_t deadline = hl_time_mono_ms() + (wait_ms > 0 ? wait_ms : 0), left;
	int rc;

	*got = false;
	if (!name || !*name || strlen(name) > HL_STORE_LOCK_NAME_MAX)
		return hl_err_set(err, HL_EINVAL, "a lock needs a name (at most %d bytes)",
		                  HL_STORE_LOCK_NAME_MAX);
	if (s->flags & HL_STORE_READ_ONLY)
		return hl_err_set(err, HL_EINVAL, "a read-only store takes no lock");
	/* bounded: one try per pause until the deadline */
	for (;;) {
		if ((rc = store_lock_try(s, got, name, err)) < 0 || *got)
			return rc;
		left = deadline - hl_time_mono_ms();
		if (left <= 0)
			return 0;
		if (!hl_store_pause(s,
		                    left < STORE_LOCK_PAUSE_MS ? (int)left : STORE_LOCK_PAUSE_MS))
			return 0; /* closing */
	}
}

void
hl_store_lock_release(struct hl_store *s, const char *name)
{
	int i;
	bool held;

	if (!name || !*name)
		return;
	pthread_mutex_lock(&s->n_lock);
	held = (i = store_lock_slot(s, name)) >= 0;
	pthread_mutex_unlock(&s->n_lock);
	if (!held)
		return;
	if (s->ops->conn.lock_release)
		s->ops->conn.lock_release(s->b, name);
	pthread_mutex_lock(&s->n_lock);
	if ((i = store_lock_slot(s, name)) >= 0)
		s->n_held[i][0] = '\0';
	pthread_mutex_unlock(&s->n_lock);
}

bool
hl_store_lock_held(struct hl_store *s, const char *name)
{
	bool held;

	if (!name || !*name)
		return false;
	pthread_mutex_lock(&s->n_lock);
	held = store_lock_slot(s, name) >= 0;
	pthread_mutex_unlock(&s->n_lock);
	if (held && s->ops->conn.lock_held)
		held = s->ops->conn.lock_held(s->b, name);
	return held;
}

int
hl_store_migrated_at_open(const struct hl_store *s)
{
	return s->migrated;
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
		pthread_mutex_lock(&s->h_lock);
		s->h_db_seq++;
		pthread_mutex_unlock(&s->h_lock);
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
	int rc = 0;

	if (ch < 0 || ch >= HL_CHANNEL_MAX)
		return hl_err_set(err, HL_EINVAL, "no store channel %d", (int)ch);
	if (payload && strlen(payload) > STORE_MAX_PAYLOAD)
		return hl_err_set(err, HL_ETOOBIG, "signal payload of %zu bytes is too large",
		                  strlen(payload));
	if (s->ops->conn.publish && !(s->flags & HL_STORE_READ_ONLY)) {
		pthread_mutex_lock(&s->db_lock);
		rc = s->ops->conn.publish(s->b, ch, payload ? payload : "", err);
		pthread_mutex_unlock(&s->db_lock);
	}
	/* this process's listeners at once; the backend's listener skips
	 * what this process sent */
	hl_store_deliver(s, ch, payload);
	return rc;
}

bool
hl_store_wait_work(struct hl_store *s, int timeout_ms)
{
	static __thread uint64_t seen;
	struct timespec ts;
	bool work;

	hl_time_deadline(&ts, CLOCK_MONOTONIC, timeout_ms);
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

bool
hl_store_pause(struct hl_store *s, int ms)
{
	struct timespec ts;
	bool woken;

	hl_time_deadline(&ts, CLOCK_MONOTONIC, ms);
	pthread_mutex_lock(&s->w_lock);
	while (!s->w_wake_all)
		if (pthread_cond_timedwait(&s->w_cond, &s->w_lock, &ts) != 0)
			break;
	woken = s->w_wake_all;
	pthread_mutex_unlock(&s->w_lock);
	return !woken;
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
