/*
 * pg.c - the PostgreSQL backend of the store (see store.h): its
 * connections, reconnects, migrations, signals, leadership and its
 * operation table. Shared by any number of healer replicas.
 *
 * Four connections per store handle (a read-only one has the main one only):
 *   the main connection, used only under the store mutex for every
 *     operation but intake batches. A lost connection is reset by the next
 *     operation, at most once per backoff period (250 ms doubling to 2 s),
 *     so while the database is away every operation fails at once with
 *     -HL_EDB ("database ... unavailable"); never in the middle of a
 *     transaction (the transaction is gone with its session).
 *   the intake connection (b->intake, a backend of its own), on which
 *     the store's committer thread writes and commits intake batches
 *     outside the store mutex, their statements sent in pipelines (see
 *     pg_intake.c).
 *   the keeper connection (b->keep, a backend of its own), on which the
 *     store's lease keeper renews this handle's claims and task leases and
 *     requeues dead processes' claims, outside the store mutex: a
 *     statement waiting on a lock on the main connection (which gives up
 *     after a third of the lease: lock_timeout) never holds them up.
 *   the listener connection, owned by the listener thread: it LISTENs on
 *     one channel, delivers other processes' signals ("<channel>@<owner>|
 *     <payload>" NOTIFY payloads; its own, recognised by the owner they
 *     name, were delivered when sent) to the store's sink, and holds session
 *     advisory locks that die with the process: the handle's liveness
 *     lock ("healer:owner:<owner>", see hl_pg_reap) and its leaderships
 *     ("healer:leader:<name>"). When it drops, the thread reconnects with
 *     backoff and then delivers a signal on every channel with payload ""
 *     (work to claim, tasks to look at, decisions to read from the store),
 *     since it may have missed some.
 * Every commit is durable when it returns (synchronous_commit on), so
 * intake batches need no separate log flush, and no write healer builds
 * on is lost when the database server crashes (see hl_store_pg_open).
 * Migrations are the .sql files of migrations/postgres/ (same versions as
 * SQLite's), each in its own transaction under an advisory lock, so
 * replicas starting together migrate once.
 * Messages name the database by its URL without credentials.
 */
#include "base/clock.h"
#include "base/str.h"
#include "pg_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PG_BACKOFF_MIN_MS 250
#define PG_BACKOFF_MAX_MS 2000
#define PG_NOTIFY_BATCH   64

/* ---- parameters and results --------------------------------------------- */

static void
pg_param(struct pg_params *p, const char *v, int len, int fmt)
{
	if (p->n >= PG_MAX_PARAMS)
		return; /* a programming error: the statement then fails */
	p->v[p->n] = v;
	p->len[p->n] = len;
	p->fmt[p->n] = fmt;
	p->n++;
}

void
hl_pg_text(struct pg_params *p, const char *s)
{
	pg_param(p, s, 0, 0);
}

void
hl_pg_int(struct pg_params *p, int64_t v)
{
	if (p->n >= PG_MAX_PARAMS)
		return;
	snprintf(p->num[p->n], sizeof(p->num[p->n]), "%lld", (long long)v);
	pg_param(p, p->num[p->n], 0, 0);
}

void
hl_pg_int_or_null(struct pg_params *p, int64_t v)
{
	if (v)
		hl_pg_int(p, v);
	else
		hl_pg_text(p, NULL);
}

void
hl_pg_bool(struct pg_params *p, bool v)
{
	pg_param(p, v ? "t" : "f", 0, 0);
}

void
hl_pg_bytes(struct pg_params *p, const void *data, size_t len)
{
	pg_param(p, len ? data : "", (int)len, 1);
}

const char *
hl_pg_get(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

char *
hl_pg_dup(const PGresult *r, int row, int col)
{
	const char *v = hl_pg_get(r, row, col);

	return v ? strdup(v) : NULL;
}

void
hl_pg_copy(char *out, size_t size, const PGresult *r, int row, int col)
{
	const char *v = hl_pg_get(r, row, col);

	hl_strlcpy(out, v ? v : "", size);
}

int64_t
hl_pg_int_at(const PGresult *r, int row, int col)
{
	const unsigned char *v;
	uint64_t x = 0;
	int len, i;

	if (PQgetisnull(r, row, col))
		return 0;
	if (PQfformat(r, col) == 0)
		return strtoll(PQgetvalue(r, row, col), NULL, 10);
	/* binary: a big-endian int2, int4 or int8 */
	v = (const unsigned char *)PQgetvalue(r, row, col);
	len = PQgetlength(r, row, col);
	for (i = 0; i < len && i < 8; i++)
		x = (x << 8) | v[i];
	if (len == 2)
		return (int16_t)x;
	if (len == 4)
		return (int32_t)x;
	return (int64_t)x;
}

/* ---- the main connection ------------------------------------------------ */

/* The first line of a libpq message, without "FATAL:  "-style prefixes. */
static void
pg_first_line(char *out, size_t size, const char *msg)
{
	size_t n;

	if (!msg || !*msg)
		msg = "unknown error";
	n = strcspn(msg, "\n");
	if (n >= size)
		n = size - 1;
	memcpy(out, msg, n);
	out[n] = '\0';
}

static void
pg_notice_none(void *arg, const char *message)
{
	(void)arg;
	(void)message; /* NOTICEs (IF NOT EXISTS ...) are not errors */
}

/* libpq's message for settings it cannot parse, without what it quotes:
 * it quotes the offending text, which can be the password or the whole
 * URL with it ('invalid percent-encoded token: "p%zz"'). A quoted single
 * character ("=", "]") is kept. */
static void
pg_parse_error_line(char *out, size_t size, const char *msg)
{
	char line[200];
	const char *p, *close;
	size_t n = 0;

	pg_first_line(line, sizeof(line), msg);
	for (p = line; *p && n + 1 < size;) {
		if (*p == '"' && (close = strchr(p + 1, '"'))) {
			size_t len = close - p > 2 ? 5 : (size_t)(close - p) + 1;

			if (n + len >= size)
				break;
			memcpy(out + n, close - p > 2 ? "\"...\"" : p, len);
			n += len;
			p = close + 1;
			continue;
		}
		out[n++] = *p++;
	}
	out[n] = '\0';
}

/*
 * Refuses settings libpq would read otherwise than written, before any
 * connection: settings it cannot parse (why without the quoted text, see
 * pg_parse_error_line), and a URL whose password has an unencoded '@' or
 * '/', which libpq splits into a host name, a port or a database name
 * that its connection errors would then show (the user info ends at the
 * first '@' before the first '/'; another '@' before the query is one of
 * those).
 */
static int
pg_check_conninfo(const char *conninfo, const char *display, struct hl_err *err)
{
	PQconninfoOption *opts;
	const char *auth, *p;
	char *msg = NULL, why[200];

	opts = PQconninfoParse(conninfo, &msg);
	if (!opts) {
		pg_parse_error_line(why, sizeof(why), msg ? msg : "out of memory");
		PQfreemem(msg);
		return hl_err_set(err, HL_EINVAL, "libpq cannot read the settings '%s': %s",
		                  display, why);
	}
	PQconninfoFree(opts);
	if (!(auth = strstr(conninfo, "://")))
		return 0;
	auth += 3;
	for (p = auth; *p && *p != '@' && *p != '/'; p++)
		;
	if (*p == '@')
		auth = p + 1;
	for (p = auth; *p && *p != '?'; p++)
		if (*p == '@')
			return hl_err_set(err, HL_EINVAL,
			                  "libpq cannot read the settings '%s': an '@' or '/' in"
			                  " the user name or password must be percent-encoded"
			                  " (%%40, %%2F)",
			                  display);
	return 0;
}

int
hl_store_pg_check(const char *conninfo, struct hl_err *err)
{
	struct hl_buf shown = HL_BUF_INIT(0);
	int rc;

	hl_store_url_display(&shown, conninfo);
	rc = pg_check_conninfo(conninfo, hl_buf_error(&shown) ? "" : shown.data, err);
	hl_buf_release(&shown);
	return rc;
}

/* A new connection with healer's defaults under the given settings. */
static PGconn *
pg_connect(const struct hl_store_backend *b)
{
	/* a statement sent into a dead network gives up after 20 s, not the
	 * system's 15 minutes of retransmissions (with the store's mutex held) */
	static const char *const keys[] = {
		"connect_timeout",           "keepalives",       "keepalives_idle",
		"keepalives_interval",       "keepalives_count", "tcp_user_timeout",
		"fallback_application_name", "dbname",           NULL
	};
	const char *vals[] = { "5", "1", "10", "5", "3", "20000", "healer", b->conninfo, NULL };
	PGconn *c = PQconnectdbParams(keys, vals, 1);

	if (c)
		PQsetNoticeProcessor(c, pg_notice_none, NULL);
	return c;
}

/*
 * How soon the database server ends a session whose replica died without
 * a word (its node lost, a network partition: no FIN, no RST), and with it
 * the session's advisory locks (the listener's leaderships and liveness
 * lock) and a transaction's row locks. PostgreSQL's default is the
 * system's TCP keepalive, two hours and more, so another replica would
 * not take the CodeRun watch over within HEALER_LEASE_SECONDS (15 s): it
 * asks every third of it, so the server gives up on a silent peer after
 * 9 s (3 s idle, then three probes 2 s apart; data left unacknowledged
 * for 9 s, such as a NOTIFY sent to the dead listener). A Unix socket
 * session ignores these.
 */
#define PG_PEER_TIMEOUT_SQL                                               \
	"SET tcp_keepalives_idle TO 3; SET tcp_keepalives_interval TO 2;" \
	" SET tcp_keepalives_count TO 3; SET tcp_user_timeout TO 9000"

/* Session settings: read-only handles cannot write; commits are durable
 * when they return (see hl_store_pg_open); a silent peer's session ends
 * (PG_PEER_TIMEOUT_SQL). */
static int
pg_session(const struct hl_store_backend *b, PGconn *c)
{
	PGresult *r =
	        PQexec(c, b->read_only ? "SET synchronous_commit TO on;"
	                                 " SET default_transaction_read_only TO on"
	                               : "SET synchronous_commit TO on; " PG_PEER_TIMEOUT_SQL);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK;

	PQclear(r);
	return ok ? 0 : -1;
}

static int
pg_unavailable(struct hl_store_backend *b, struct hl_err *err)
{
	b->lost = true;
	return hl_err_set(err, HL_EDB, "database '%s' unavailable: %s", b->display, b->down_msg);
}

/* Gives the session the lock timeout asked for (hl_pg_lock_timeout), between
 * transactions; a failure leaves it to the next statement. */
static void
pg_apply_lock_timeout(struct hl_store_backend *b, bool in_txn)
{
	int64_t want = atomic_load(&b->lock_timeout_ms);
	char sql[64];
	PGresult *r;

	if (in_txn || want == b->lock_timeout_set)
		return;
	snprintf(sql, sizeof(sql), "SET lock_timeout TO %lld", (long long)want);
	r = PQexec(b->conn, sql);
	if (PQresultStatus(r) == PGRES_COMMAND_OK)
		b->lock_timeout_set = want;
	PQclear(r);
}

/* A working main connection: reconnects a lost one (not inside a
 * transaction, not twice within the backoff period). */
static int
pg_ensure(struct hl_store_backend *b, bool in_txn, struct hl_err *err)
{
	int64_t now;
	int i;

	if (b->conn && PQstatus(b->conn) == CONNECTION_OK && !b->lost) {
		pg_apply_lock_timeout(b, in_txn);
		return 0;
	}
	if (in_txn) {
		snprintf(b->down_msg, sizeof(b->down_msg), "the connection was lost");
		return pg_unavailable(b, err);
	}
	now = hl_time_mono_ms();
	if (now < b->retry_at_ms)
		return pg_unavailable(b, err);
	if (b->conn)
		PQreset(b->conn);
	else
		b->conn = pg_connect(b);
	if (!b->conn || PQstatus(b->conn) != CONNECTION_OK || pg_session(b, b->conn) < 0) {
		pg_first_line(b->down_msg, sizeof(b->down_msg),
		              b->conn ? PQerrorMessage(b->conn) : "out of memory");
		b->backoff_ms = b->backoff_ms ? b->backoff_ms * 2 : PG_BACKOFF_MIN_MS;
		if (b->backoff_ms > PG_BACKOFF_MAX_MS)
			b->backoff_ms = PG_BACKOFF_MAX_MS;
		b->retry_at_ms = hl_time_mono_ms() + b->backoff_ms;
		return pg_unavailable(b, err);
	}
	b->backoff_ms = 0;
	b->lost = false;
	for (i = 0; i < b->ncache; i++) {
		b->cache[i].ready = false; /* prepared statements died with the session */
		b->cache[i].uses = 0;
	}
	atomic_store(&b->own_pid[1], atomic_load(&b->own_pid[0]));
	atomic_store(&b->own_pid[0], PQbackendPID(b->conn));
	b->lock_timeout_set = 0; /* a new session's */
	pg_apply_lock_timeout(b, in_txn);
	return 0;
}

/* Records a failed statement: err, its SQLSTATE, and whether it was the
 * connection (class 08, an administrator's shutdown, or a dead socket). */
static int
pg_failed(struct hl_store_backend *b, PGresult *r, const char *what, struct hl_err *err)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	char line[200];
	int rc;

	hl_strlcpy(b->sqlstate, state ? state : "", sizeof(b->sqlstate));
	pg_first_line(line, sizeof(line), msg ? msg : PQerrorMessage(b->conn));
	if (PQstatus(b->conn) != CONNECTION_OK ||
	    (state && (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0))) {
		b->lost = true;
		hl_strlcpy(b->down_msg, line, sizeof(b->down_msg));
	}
	rc = hl_err_set(err, HL_EDB, "postgres %s: %s", what, line);
	PQclear(r);
	return rc;
}

static bool
pg_ok(const PGresult *r)
{
	ExecStatusType st = PQresultStatus(r);

	return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

/* A statement's result r: into *out (cleared when out is NULL), or its
 * failure as -HL_EDB. */
static int
pg_take(struct hl_store_backend *b, PGresult *r, PGresult **out, const char *what,
        struct hl_err *err)
{
	if (!pg_ok(r))
		return pg_failed(b, r, what, err);
	if (out)
		*out = r;
	else
		PQclear(r);
	return 0;
}

/* The statement's slot in the session's cache of prepared statements
 * (added when new), -1 when the cache is full. */
static int
pg_cache_slot(struct hl_store_backend *b, const char *sql)
{
	char *copy;
	int i;

	for (i = 0; i < b->ncache; i++)
		if (strcmp(b->cache[i].sql, sql) == 0)
			return i;
	if (b->ncache >= PG_CACHE_MAX || !(copy = strdup(sql)))
		return -1;
	b->cache[b->ncache].sql = copy;
	b->cache[b->ncache].ready = false;
	b->cache[b->ncache].uses = 0;
	return b->ncache++;
}

/*
 * Makes the slot's statement prepared in this session (as "hl<slot>").
 * PostgreSQL picks a statement's generic plan after its first executions
 * and keeps it until the statistics of its tables change. On a fresh
 * database the tables are nearly empty then and autovacuum has not
 * analyzed them yet, so that plan can be a sequential scan that each
 * later execution pays for as the table grows (one replica's claims of
 * tasks read the whole task table each). So a statement is prepared again
 * after its 100th, 1,000th and 10,000th use: the plan is chosen anew
 * against the table as it is by then (an unanalyzed table is planned from
 * its current size), a handful of times in a session's life.
 */
static int
pg_cache_ready(struct hl_store_backend *b, int slot, const char *what, struct hl_err *err)
{
	char name[16], sql[32];
	uint32_t uses = ++b->cache[slot].uses;
	PGresult *r;

	snprintf(name, sizeof(name), "hl%d", slot);
	if (b->cache[slot].ready && (uses == 100 || uses == 1000 || uses == 10000)) {
		snprintf(sql, sizeof(sql), "DEALLOCATE %s", name);
		r = PQexec(b->conn, sql);
		if (!pg_ok(r))
			return pg_failed(b, r, what, err);
		PQclear(r);
		b->cache[slot].ready = false;
	}
	if (b->cache[slot].ready)
		return 0;
	r = PQprepare(b->conn, name, b->cache[slot].sql, 0, NULL);
	if (!pg_ok(r))
		return pg_failed(b, r, what, err);
	PQclear(r);
	b->cache[slot].ready = true;
	return 0;
}

/* Whether a statement that just failed is sent once more on a new
 * session: on a read-only handle, outside a transaction, when the failure
 * was the session (ended by a restart or failover of the server, an
 * administrator, a pooler while the handle was idle). Reading twice
 * changes nothing; a write is never repeated (it may have committed). */
static bool
pg_read_again(const struct hl_store_backend *b, bool in_txn, bool *again)
{
	if (*again || !b->read_only || in_txn || !b->lost)
		return false;
	*again = true;
	return true;
}

int
hl_pg_exec(struct hl_store_backend *b, PGresult **out, const char *sql, const struct pg_params *p,
           bool result_binary, const char *what, struct hl_err *err)
{
	static const struct pg_params none = { .n = 0 };
	char name[16];
	PGresult *r;
	bool in_txn = b->txn, again = false;
	int slot, rc;

	if (out)
		*out = NULL;
	if (!p)
		p = &none;
	do {
		b->sqlstate[0] = '\0';
		if (pg_ensure(b, b->txn, err) < 0)
			return -HL_EDB;
		slot = pg_cache_slot(b, sql);
		if (slot >= 0) {
			if (pg_cache_ready(b, slot, what, err) < 0) {
				rc = -HL_EDB;
				continue;
			}
			snprintf(name, sizeof(name), "hl%d", slot);
			r = PQexecPrepared(b->conn, name, p->n, p->v, p->len, p->fmt,
			                   result_binary);
		} else {
			r = PQexecParams(b->conn, sql, p->n, NULL, p->v, p->len, p->fmt,
			                 result_binary);
		}
		rc = pg_take(b, r, out, what, err);
	} while (rc < 0 && pg_read_again(b, in_txn, &again));
	return rc;
}

/* ---- pipelines ---------------------------------------------------------
 * Statements sent one after another without waiting for their results,
 * then read in order: one round trip (two context switches) for many
 * statements. The statements are prepared before (hl_pg_prepare), so the
 * pipeline holds only their executions; a sync ends each pipeline. */

int
hl_pg_prepare(struct hl_store_backend *b, const char *sql, const char *what, struct hl_err *err)
{
	int slot;

	b->sqlstate[0] = '\0';
	if (pg_ensure(b, b->txn, err) < 0)
		return -HL_EDB;
	if ((slot = pg_cache_slot(b, sql)) < 0)
		return hl_err_set(err, HL_EDB, "postgres %s: too many statements", what);
	return pg_cache_ready(b, slot, what, err) < 0 ? -HL_EDB : 0;
}

int
hl_pg_pipe_start(struct hl_store_backend *b, struct hl_err *err)
{
	b->sqlstate[0] = '\0';
	if (pg_ensure(b, b->txn, err) < 0)
		return -HL_EDB;
	if (!PQenterPipelineMode(b->conn))
		return pg_failed(b, NULL, "pipeline", err);
	b->pipe_synced = false;
	return 0;
}

int
hl_pg_pipe_send(struct hl_store_backend *b, const char *sql, const struct pg_params *p,
                const char *what, struct hl_err *err)
{
	static const struct pg_params none = { .n = 0 };
	char name[16];
	int slot;

	if (!p)
		p = &none;
	for (slot = 0; slot < b->ncache; slot++)
		if (strcmp(b->cache[slot].sql, sql) == 0)
			break;
	if (slot == b->ncache || !b->cache[slot].ready)
		return hl_err_set(err, HL_EINTERNAL, "postgres %s: not prepared", what);
	snprintf(name, sizeof(name), "hl%d", slot);
	if (!PQsendQueryPrepared(b->conn, name, p->n, p->v, p->len, p->fmt, 0))
		return pg_failed(b, NULL, what, err);
	return 0;
}

int
hl_pg_pipe_send_cmd(struct hl_store_backend *b, const char *sql, const char *what,
                    struct hl_err *err)
{
	if (!PQsendQueryParams(b->conn, sql, 0, NULL, NULL, NULL, NULL, 0))
		return pg_failed(b, NULL, what, err);
	return 0;
}

int
hl_pg_pipe_sync(struct hl_store_backend *b, const char *what, struct hl_err *err)
{
	if (!PQpipelineSync(b->conn))
		return pg_failed(b, NULL, what, err);
	b->pipe_synced = true;
	return 0;
}

int
hl_pg_pipe_next(struct hl_store_backend *b, PGresult **out, const char *what, struct hl_err *err)
{
	PGresult *r;

	if (out)
		*out = NULL;
	if (!(r = PQgetResult(b->conn)))
		return pg_failed(b, NULL, what, err); /* the connection */
	/* each statement's results end with a NULL */
	PQclear(PQgetResult(b->conn));
	if (PQresultStatus(r) == PGRES_PIPELINE_ABORTED) {
		PQclear(r);
		return hl_err_set(err, HL_EDB, "postgres %s: not run after an error", what);
	}
	return pg_take(b, r, out, what, err);
}

int
hl_pg_pipe_end(struct hl_store_backend *b, struct hl_err *err)
{
	PGresult *r;
	int i;

	/* what is left up to the sync (statements not read after a failure) */
	for (i = 0; b->pipe_synced && i < 1000000; i++) {
		r = PQgetResult(b->conn);
		if (!r) {
			if (PQstatus(b->conn) != CONNECTION_OK)
				break;
			continue; /* the end of one statement's results */
		}
		if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
			PQclear(r);
			if (PQexitPipelineMode(b->conn))
				return 0;
			break;
		}
		PQclear(r);
	}
	b->lost = true; /* the session's state is unknown: start a new one */
	hl_strlcpy(b->down_msg, "a pipeline did not end", sizeof(b->down_msg));
	return hl_err_set(err, HL_EDB, "postgres pipeline: %s", PQerrorMessage(b->conn));
}

int
hl_pg_cmd(struct hl_store_backend *b, const char *sql, const char *what, struct hl_err *err)
{
	PGresult *r;
	bool in_txn = b->txn, again = false;
	int rc;

	do {
		b->sqlstate[0] = '\0';
		if (pg_ensure(b, b->txn, err) < 0)
			return -HL_EDB;
		r = PQexec(b->conn, sql);
		if (pg_ok(r)) {
			PQclear(r);
			return 0;
		}
		rc = pg_failed(b, r, what, err);
	} while (pg_read_again(b, in_txn, &again));
	return rc;
}

int
hl_pg_begin(struct hl_store_backend *b, const char *what, struct hl_err *err)
{
	int rc = hl_pg_cmd(b, "BEGIN", what, err);

	b->txn = rc == 0;
	return rc;
}

int
hl_pg_commit(struct hl_store_backend *b, const char *what, struct hl_err *err)
{
	int rc = hl_pg_cmd(b, "COMMIT", what, err);

	b->txn = false;
	return rc;
}

void
hl_pg_rollback(struct hl_store_backend *b)
{
	PGresult *r;

	if (b->txn && b->conn && PQstatus(b->conn) == CONNECTION_OK) {
		r = PQexec(b->conn, "ROLLBACK");
		PQclear(r);
	}
	b->txn = false;
}

bool
hl_pg_retryable(const struct hl_store_backend *b)
{
	return strcmp(b->sqlstate, "40001") == 0 || strcmp(b->sqlstate, "40P01") == 0 ||
	       strcmp(b->sqlstate, "55P03") == 0; /* lock_timeout */
}

void
hl_pg_lock_timeout(struct hl_store_backend *b, int64_t ms)
{
	atomic_store(&b->lock_timeout_ms, ms > 0 ? ms : 0);
}

static bool
pg_lost(struct hl_store_backend *b)
{
	return b->lost;
}

/* ---- migrations --------------------------------------------------------- */

static int
pg_schema_version(struct hl_store_backend *b, int *out, struct hl_err *err)
{
	PGresult *r = NULL;
	int rc;

	rc = hl_pg_exec(b, &r, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", NULL,
	                false, "schema version", err);
	if (rc < 0)
		return rc;
	*out = (int)hl_pg_int_at(r, 0, 0);
	PQclear(r);
	return 0;
}

/* Creates the schema_migrations table when it is missing. */
static int
pg_migrations_table(struct hl_store_backend *b, struct hl_err *err)
{
	PGresult *r = NULL;
	bool missing;
	int rc;

	rc = hl_pg_exec(b, &r, "SELECT to_regclass('schema_migrations') IS NULL", NULL, false,
	                "migrate", err);
	if (rc < 0)
		return rc;
	missing = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	PQclear(r);
	if (!missing)
		return 0;
	return hl_pg_cmd(b,
	                 "CREATE TABLE schema_migrations ("
	                 " version INTEGER PRIMARY KEY, applied_ms BIGINT NOT NULL)",
	                 "migrate", err);
}

static const char pg_migrate_lock[] =
        "SELECT pg_advisory_xact_lock(hashtextextended('healer:migrate', 0))";

static int
pg_migrate(struct hl_store_backend *b, int *applied, struct hl_err *err)
{
	const size_t n_mig = hl_store_postgres_migrations_count;
	struct pg_params p;
	PGresult *r;
	int version = 0, v, n = 0, rc;
	size_t i;

	/* replicas starting together: one creates the table, one migrates.
	 * The table is created only when missing: CREATE TABLE IF NOT EXISTS
	 * needs CREATE on the schema even when the table is there, which a
	 * least-privilege role (its schema applied by `healer migrate` as the
	 * owner) does not have. */
	rc = hl_pg_begin(b, "migrate", err);
	if (rc == 0)
		rc = hl_pg_exec(b, NULL, pg_migrate_lock, NULL, false, "migrate", err);
	if (rc == 0)
		rc = pg_migrations_table(b, err);
	if (rc == 0)
		rc = pg_schema_version(b, &version, err);
	if (rc == 0)
		rc = hl_pg_commit(b, "migrate", err);
	if (rc < 0) {
		hl_pg_rollback(b);
		return rc;
	}
	if (version > (int)n_mig)
		return hl_err_set(err, HL_EDB,
		                  "the store's schema version %d is newer than this healer's (%zu)",
		                  version, n_mig);
	for (i = 0; i < n_mig; i++) {
		const struct hl_embed *m = &hl_store_postgres_migrations[i];

		v = (int)i + 1;
		if (hl_store_migration_version(m->path) != v)
			return hl_err_set(err, HL_EINTERNAL, "migration '%s' is out of sequence",
			                  m->path);
		if (v <= version)
			continue;
		rc = hl_pg_begin(b, "migrate", err);
		if (rc == 0)
			rc = hl_pg_exec(b, NULL, pg_migrate_lock, NULL, false, "migrate", err);
		/* re-read under the lock: another replica may have migrated */
		if (rc == 0)
			rc = pg_schema_version(b, &version, err);
		if (rc == 0 && version >= v) {
			hl_pg_rollback(b);
			continue;
		}
		if (rc == 0) {
			r = PQexec(b->conn, m->data);
			rc = pg_ok(r) ? (PQclear(r), 0) : pg_failed(b, r, "migration", err);
		}
		if (rc == 0) {
			memset(&p, 0, sizeof(p));
			hl_pg_int(&p, v);
			hl_pg_int(&p, hl_time_wall_ms());
			rc = hl_pg_exec(b, NULL,
			                "INSERT INTO schema_migrations (version, applied_ms)"
			                " VALUES ($1, $2)",
			                &p, false, "migrate", err);
		}
		if (rc == 0)
			rc = hl_pg_commit(b, "migrate", err);
		if (rc < 0) {
			hl_pg_rollback(b);
			return hl_err_wrap(err, "migration '%s'", m->path);
		}
		version = v;
		n++;
	}
	if (applied)
		*applied = n;
	return 0;
}

/* A read-only handle: the schema must be there, and not newer. */
static int
pg_check_schema(struct hl_store_backend *b, struct hl_err *err)
{
	int version = 0, rc;

	if ((rc = pg_schema_version(b, &version, err)) < 0)
		return hl_err_wrap(err, "no healer store in '%s'", b->display);
	if (version > (int)hl_store_postgres_migrations_count)
		return hl_err_set(err, HL_EDB,
		                  "the store's schema version %d is newer than this healer's (%zu)",
		                  version, hl_store_postgres_migrations_count);
	return 0;
}

static int
pg_ping(struct hl_store_backend *b, struct hl_err *err)
{
	static const char sql[] = "SELECT 1 FROM schema_migrations LIMIT 1";
	int rc = hl_pg_exec(b, NULL, sql, NULL, false, "ping", err);

	/* a session found ended (the server restarted while this one was
	 * idle): /ready asks once more on a new one before answering 503 */
	if (rc < 0 && b->lost && !b->txn)
		rc = hl_pg_exec(b, NULL, sql, NULL, false, "ping", err);
	return rc;
}

/* ---- signals ------------------------------------------------------------ */

static int
pg_publish(struct hl_store_backend *b, enum hl_store_channel ch, const char *payload,
           struct hl_err *err)
{
	struct hl_buf msg = HL_BUF_INIT(8000);
	struct pg_params p = { .n = 0 };
	int rc;

	hl_buf_appendf(&msg, "%s@%s|%s", hl_store_channel_name(ch), b->owner, payload);
	if (hl_buf_error(&msg)) {
		hl_buf_release(&msg);
		return hl_err_set(err, HL_ETOOBIG, "signal payload too large");
	}
	hl_pg_text(&p, msg.data);
	rc = hl_pg_exec(b, NULL, "SELECT pg_notify(" PG_CHANNEL_SQL ", $1)", &p, false, "notify",
	                err);
	hl_buf_release(&msg);
	return rc;
}

static void
pg_wake(struct hl_store_backend *b)
{
	char c = 1;

	if (b->wake[1] >= 0 && write(b->wake[1], &c, 1) < 0 && errno != EAGAIN)
		return;
}

/* Runs a one-value boolean query on c; true when it answered true. */
static bool
pg_try_lock(PGconn *c, const char *sql, const char *arg)
{
	const char *v[1] = { arg };
	PGresult *r = PQexecParams(c, sql, 1, NULL, v, NULL, NULL, 0);
	bool got = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
	           strcmp(PQgetvalue(r, 0, 0), "t") == 0;

	PQclear(r);
	return got;
}

/* The liveness lock: not keyed by schema, since an owner id is one
 * process's alone (host, pid, random) and replicas of every version name
 * it alike. */
static const char pg_owner_lock_sql[] =
        "SELECT pg_try_advisory_lock(hashtextextended('healer:owner:' || $1, 0))";
static const char pg_leader_lock_sql[] = "SELECT pg_try_advisory_lock(hashtextextended("
                                         "'healer:leader:' || " PG_SCHEMA_KEY " || $1, 0))";
static const char pg_named_lock_sql[] = "SELECT pg_try_advisory_lock(hashtextextended("
                                        "'healer:lock:' || " PG_SCHEMA_KEY " || $1, 0))";
static const char pg_named_unlock_sql[] = "SELECT pg_advisory_unlock(hashtextextended("
                                          "'healer:lock:' || " PG_SCHEMA_KEY " || $1, 0))";

/* A listener connection: LISTENing on the store's channel
 * (PG_CHANNEL_SQL: letters, digits and '_'), holding the liveness lock. */
static PGconn *
pg_listen_connect(struct hl_store_backend *b, char *why, size_t size)
{
	PGconn *c = pg_connect(b);
	PGresult *r;
	char sql[160];

	if (!c || PQstatus(c) != CONNECTION_OK) {
		pg_first_line(why, size, c ? PQerrorMessage(c) : "out of memory");
		PQfinish(c);
		return NULL;
	}
	r = PQexec(c, "SELECT " PG_CHANNEL_SQL);
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 ||
	    strspn(PQgetvalue(r, 0, 0), "abcdefghijklmnopqrstuvwxyz0123456789_") !=
	            strlen(PQgetvalue(r, 0, 0))) {
		pg_first_line(why, size, PQerrorMessage(c));
		PQclear(r);
		PQfinish(c);
		return NULL;
	}
	snprintf(sql, sizeof(sql), PG_PEER_TIMEOUT_SQL "; LISTEN %s", PQgetvalue(r, 0, 0));
	PQclear(r);
	r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		pg_first_line(why, size, PQerrorMessage(c));
		PQclear(r);
		PQfinish(c);
		return NULL;
	}
	PQclear(r);
	return c;
}

struct pg_signal {
	enum hl_store_channel ch;
	char *payload;
	const char *owner; /* the sender's, inside the NOTIFY's text; NULL: not said */
	size_t owner_len;
};

/* "<channel>@<owner>|<payload>" (or, from a replica of an older
 * version, "<channel>|<payload>") -> a signal, its sender's owner in
 * out->owner (NULL for the older form); false for anything else. */
static bool
pg_parse_signal(struct pg_signal *out, const char *extra)
{
	const char *bar = strchr(extra, '|'), *at;
	size_t len;
	int ch;

	if (!bar)
		return false;
	at = memchr(extra, '@', (size_t)(bar - extra));
	len = (size_t)((at ? at : bar) - extra);
	out->owner = at ? at + 1 : NULL;
	out->owner_len = at ? (size_t)(bar - at - 1) : 0;
	for (ch = 0; ch < HL_CHANNEL_MAX; ch++) {
		const char *name = hl_store_channel_name((enum hl_store_channel)ch);

		if (strlen(name) == len && strncmp(name, extra, len) == 0) {
			out->ch = (enum hl_store_channel)ch;
			out->payload = strdup(bar + 1);
			return out->payload != NULL;
		}
	}
	return false;
}

/* Waits up to ms on the wake pipe (and fd, when >= 0); drains the pipe. */
static void
pg_listen_wait(struct hl_store_backend *b, int fd, int ms)
{
	struct pollfd pf[2] = { { b->wake[0], POLLIN, 0 }, { fd, POLLIN, 0 } };
	char buf[64];

	if (poll(pf, fd >= 0 ? 2 : 1, ms) > 0 && (pf[0].revents & POLLIN))
		while (read(b->wake[0], buf, sizeof(buf)) > 0)
			;
}

static void *
pg_listener(void *arg)
{
	struct hl_store_backend *b = arg;
	struct pg_signal sig[PG_NOTIFY_BATCH];
	char why[200];
	int backoff = PG_BACKOFF_MIN_MS, n, i, fd;
	bool more = false;
	PGnotify *nt;
	PGconn *c;

	pthread_setname_np(pthread_self(), "hl-listen");
	pthread_mutex_lock(&b->l_lock);
	while (!b->l_stop) {
		if (!b->lconn) {
			/* reconnect, then signal every channel with "" (any):
			 * signals sent meanwhile were missed */
			pthread_mutex_unlock(&b->l_lock);
			c = pg_listen_connect(b, why, sizeof(why));
			pthread_mutex_lock(&b->l_lock);
			if (!c) {
				pthread_mutex_unlock(&b->l_lock);
				pg_listen_wait(b, -1, backoff);
				backoff = backoff * 2 > PG_BACKOFF_MAX_MS ? PG_BACKOFF_MAX_MS
				                                          : backoff * 2;
				pthread_mutex_lock(&b->l_lock);
				continue;
			}
			if (b->l_stop) {
				PQfinish(c);
				break;
			}
			b->lconn = c;
			b->owner_locked = pg_try_lock(c, pg_owner_lock_sql, b->owner);
			backoff = PG_BACKOFF_MIN_MS;
			pthread_mutex_unlock(&b->l_lock);
			for (i = 0; i < HL_CHANNEL_MAX; i++)
				b->sink.deliver(b->sink.arg, (enum hl_store_channel)i, "");
			pthread_mutex_lock(&b->l_lock);
			continue;
		}
		fd = PQsocket(b->lconn);
		pthread_mutex_unlock(&b->l_lock);
		if (!more)
			pg_listen_wait(b, fd, 1000);
		pthread_mutex_lock(&b->l_lock);
		if (b->l_stop)
			break;
		if (!PQconsumeInput(b->lconn) || PQstatus(b->lconn) != CONNECTION_OK) {
			/* locks held by the session are gone with it */
			PQfinish(b->lconn);
			b->lconn = NULL;
			b->owner_locked = false;
			b->nleaders = 0;
			b->nlocks = 0;
			continue;
		}
		if (!b->owner_locked)
			b->owner_locked = pg_try_lock(b->lconn, pg_owner_lock_sql, b->owner);
		n = 0;
		while (n < PG_NOTIFY_BATCH && (nt = PQnotifies(b->lconn))) {
			if (pg_parse_signal(&sig[n], nt->extra)) {
				/* this handle's own were delivered when sent; told by
				 * the owner they name (a backend pid is reused after
				 * the database restarts: another replica's would be
				 * dropped), by the pid from an older replica */
				bool own = sig[n].owner
				                   ? sig[n].owner_len == strlen(b->owner) &&
				                             strncmp(sig[n].owner, b->owner,
				                                     sig[n].owner_len) == 0
				                   : nt->be_pid == atomic_load(&b->own_pid[0]) ||
				                             nt->be_pid == atomic_load(&b->own_pid[1]);

				if (own)
					free(sig[n].payload);
				else
					n++;
			}
			PQfreemem(nt);
		}
		more = n == PG_NOTIFY_BATCH;
		pthread_mutex_unlock(&b->l_lock);
		for (i = 0; i < n; i++) {
			b->sink.deliver(b->sink.arg, sig[i].ch, sig[i].payload);
			free(sig[i].payload);
		}
		pthread_mutex_lock(&b->l_lock);
	}
	pthread_mutex_unlock(&b->l_lock);
	return NULL;
}

/* ---- leadership --------------------------------------------------------- */

static int
pg_leader(struct hl_store_backend *b, bool *leader, const char *name, const char *owner,
          int64_t ttl_ms, struct hl_err *err)
{
	PGresult *r;
	int i, rc = 0;

	(void)owner;
	(void)ttl_ms; /* the lock lives as long as the listener's session */
	*leader = false;
	if (b->read_only)
		return hl_err_set(err, HL_EINVAL, "a read-only store leads nothing");
	pthread_mutex_lock(&b->l_lock);
	if (!b->lconn || PQstatus(b->lconn) != CONNECTION_OK) {
		rc = hl_err_set(err, HL_EDB, "database '%s' unavailable: reconnecting", b->display);
		goto out;
	}
	for (i = 0; i < b->nleaders; i++)
		if (strcmp(b->leaders[i], name) == 0)
			break;
	if (i < b->nleaders) {
		/* held since the session began: still held if it still lives */
		r = PQexec(b->lconn, "SELECT 1");
		*leader = PQresultStatus(r) == PGRES_TUPLES_OK;
		PQclear(r);
	} else if (pg_try_lock(b->lconn, pg_leader_lock_sql, name)) {
		*leader = true;
		if (b->nleaders < PG_MAX_LEADERS)
			hl_strlcpy(b->leaders[b->nleaders++], name, sizeof(b->leaders[0]));
	}
	if (!*leader && PQstatus(b->lconn) != CONNECTION_OK) {
		char why[200];

		pg_first_line(why, sizeof(why), PQerrorMessage(b->lconn));
		rc = hl_err_set(err, HL_EDB, "database '%s' unavailable: %s", b->display, why);
	}
out:
	pthread_mutex_unlock(&b->l_lock);
	/* the query may have read notifications: let the listener deliver */
	pg_wake(b);
	return rc;
}

/* ---- named locks (hl_store_lock_take) ------------------------------------ */

/* The index of name among the locks held on lconn, or -1; under l_lock. */
static int
pg_lock_index(const struct hl_store_backend *b, const char *name)
{
	int i;

	for (i = 0; i < b->nlocks; i++)
		if (strcmp(b->locks[i], name) == 0)
			return i;
	return -1;
}

static int
pg_lock_try(struct hl_store_backend *b, bool *got, const char *name, struct hl_err *err)
{
	int rc = 0;

	*got = false;
	if (b->read_only)
		return hl_err_set(err, HL_EINVAL, "a read-only store takes no lock");
	pthread_mutex_lock(&b->l_lock);
	if (!b->lconn || PQstatus(b->lconn) != CONNECTION_OK) {
		rc = hl_err_set(err, HL_EDB, "database '%s' unavailable: reconnecting", b->display);
	} else if (b->nlocks < HL_STORE_MAX_LOCKS && pg_lock_index(b, name) < 0 &&
	           pg_try_lock(b->lconn, pg_named_lock_sql, name)) {
		hl_strlcpy(b->locks[b->nlocks++], name, sizeof(b->locks[0]));
		*got = true;
	} else if (PQstatus(b->lconn) != CONNECTION_OK) {
		char why[200];

		pg_first_line(why, sizeof(why), PQerrorMessage(b->lconn));
		rc = hl_err_set(err, HL_EDB, "database '%s' unavailable: %s", b->display, why);
	}
	pthread_mutex_unlock(&b->l_lock);
	pg_wake(b); /* the query may have read notifications */
	return rc;
}

static void
pg_lock_release(struct hl_store_backend *b, const char *name)
{
	int i;

	pthread_mutex_lock(&b->l_lock);
	/* not held any more when its session was lost (the lock went with it) */
	if ((i = pg_lock_index(b, name)) >= 0) {
		if (b->lconn && PQstatus(b->lconn) == CONNECTION_OK &&
		    !pg_try_lock(b->lconn, pg_named_unlock_sql, name)) {
			/* not held by this session: nothing to give back */
		}
		memmove(b->locks[i], b->locks[b->nlocks - 1], sizeof(b->locks[0]));
		b->nlocks--;
	}
	pthread_mutex_unlock(&b->l_lock);
	pg_wake(b);
}

static bool
pg_lock_held(struct hl_store_backend *b, const char *name)
{
	PGresult *r;
	bool held;

	pthread_mutex_lock(&b->l_lock);
	held = b->lconn && PQstatus(b->lconn) == CONNECTION_OK && pg_lock_index(b, name) >= 0;
	if (held) {
		/* taken on this session: held while the session still lives */
		r = PQexec(b->lconn, "SELECT 1");
		held = PQresultStatus(r) == PGRES_TUPLES_OK;
		PQclear(r);
	}
	pthread_mutex_unlock(&b->l_lock);
	pg_wake(b);
	return held;
}

/* ---- the lease keeper ---------------------------------------------------- */

/* The keeper's backend: a connection of its own (NULL when read-only). */
static struct hl_store_backend *
pg_keeper(struct hl_store_backend *b)
{
	return b->keep;
}

/* A statement on the main connection waits at most a third of the lease
 * for a lock, one of the keeper's a quarter (a round of renewals, every
 * third of the lease, gets through a locked table and renews the rest). */
static void
pg_set_lease(struct hl_store_backend *b, int64_t lease_ms)
{
	hl_pg_lock_timeout(b, lease_ms / 3);
	if (b->keep)
		hl_pg_lock_timeout(b->keep, lease_ms / 4);
}

/* ---- open, close -------------------------------------------------------- */

static void
pg_close(struct hl_store_backend *b)
{
	int i;

	if (!b)
		return;
	if (b->l_started) {
		pthread_mutex_lock(&b->l_lock);
		b->l_stop = true;
		pthread_mutex_unlock(&b->l_lock);
		pg_wake(b);
		pthread_join(b->l_thread, NULL);
	}
	pg_close(b->intake);
	pg_close(b->keep);
	PQfinish(b->lconn);
	PQfinish(b->conn);
	for (i = 0; i < b->ncache; i++)
		free((char *)b->cache[i].sql);
	if (b->wake[0] >= 0)
		close(b->wake[0]);
	if (b->wake[1] >= 0)
		close(b->wake[1]);
	pthread_mutex_destroy(&b->l_lock);
	free(b->conninfo);
	free(b);
}

static const struct hl_store_ops pg_ops = {
	.conn = {
		.name = "postgres",
		.close = pg_close,
		.migrate = pg_migrate,
		.schema_version = pg_schema_version,
		.ping = pg_ping,
		.publish = pg_publish,
		.lost = pg_lost,
		.leader = pg_leader,
		.lock_try = pg_lock_try,
		.lock_release = pg_lock_release,
		.lock_held = pg_lock_held,
		.keeper = pg_keeper,
		.set_lease = pg_set_lease,
	},
	.intake = {
		.recover = hl_pg_recover,
		.batch = hl_pg_intake_batch,
		.sync_log = NULL,
		.batch_own_conn = true,
		.claim_next = hl_pg_claim_next,
		.claim_many = hl_pg_claim_many,
		.renew = hl_pg_renew,
		.reap = hl_pg_reap,
		.requeue = hl_pg_requeue,
		.prune = hl_pg_prune,
		.finish = hl_pg_finish,
		.decision = hl_pg_decision,
		.queue_depth = hl_pg_queue_depth,
		.counts = hl_pg_counts,
		.recent = hl_pg_recent,
	},
	.ledger = {
		.task_claim = hl_pg_task_claim,
		.task_find = hl_pg_task_find,
		.task_put = hl_pg_task_put,
		.task_get = hl_pg_task_get,
		.attempt_put = hl_pg_attempt_put,
		.outcome_add = hl_pg_outcome_add,
		.task_counts = hl_pg_task_counts,
		.attempt_prompt = hl_pg_attempt_prompt,
		.task_page = hl_pg_task_page,
		.task_list = hl_pg_task_list,
		.task_waiting = hl_pg_task_waiting,
	},
	.loop = {
		.tasks_due = hl_pg_tasks_due,
		.tasks_queued = hl_pg_tasks_queued,
		.tasks_remember = hl_pg_tasks_remember,
		.task_remembered = hl_pg_task_remembered,
		.next_check = hl_pg_next_check,
		.task_lease = hl_pg_task_lease,
		.task_release = hl_pg_task_release,
		.attempt_of_coderun = hl_pg_attempt_of_coderun,
		.task_active_for = hl_pg_task_active_for,
		.task_of_pr = hl_pg_task_of_pr,
		.tasks_of_pr = hl_pg_tasks_of_pr,
		.ci_result_add = hl_pg_ci_result_add,
		.ci_result_latest = hl_pg_ci_result_latest,
		.budget_usage = hl_pg_budget_usage,
		.attempt_begin = hl_pg_attempt_begin,
		.task_schedule = hl_pg_task_schedule,
		.attempt_outcomes = hl_pg_attempt_outcomes,
		.time_to_fix = hl_pg_time_to_fix,
		.kv_get = hl_pg_kv_get,
		.kv_put = hl_pg_kv_put,
		.kv_raise = hl_pg_kv_raise,
		.kv_prune = hl_pg_kv_prune,
	},
	.outbox = {
		.add = hl_pg_outbox_add,
		.due = hl_pg_outbox_due,
		.take = hl_pg_outbox_take,
		.renew = hl_pg_outbox_renew,
		.update = hl_pg_outbox_update,
		.counts = hl_pg_outbox_counts,
	},
	.redeliver = {
		.known = hl_pg_delivery_known,
		.claim = hl_pg_redelivery_claim,
		.finish = hl_pg_redelivery_finish,
		.release = hl_pg_redelivery_release,
	},
	.memory = {
		.put = hl_pg_memory_put,
		.similar = hl_pg_memory_similar,
		.reinforce = hl_pg_memory_reinforce,
		.count = hl_pg_memory_count,
		.agent_records = hl_pg_agent_records,
		.insight_rows = hl_pg_insight_rows,
		.insight_dedup = hl_pg_insight_dedup,
	},
};

/* A backend with its settings and no connection yet; NULL: out of memory. */
static struct hl_store_backend *
pg_backend_new(const char *conninfo, bool read_only, const char *owner)
{
	struct hl_store_backend *b = calloc(1, sizeof(*b));
	struct hl_buf shown = HL_BUF_INIT(0);

	if (!b)
		return NULL;
	b->wake[0] = b->wake[1] = -1;
	pthread_mutex_init(&b->l_lock, NULL);
	b->read_only = read_only;
	hl_strlcpy(b->owner, owner, sizeof(b->owner));
	hl_store_url_display(&shown, conninfo);
	hl_strlcpy(b->display, shown.data, sizeof(b->display));
	hl_buf_release(&shown);
	b->conninfo = strdup(conninfo);
	if (!b->conninfo) {
		pg_close(b);
		return NULL;
	}
	return b;
}

int
hl_store_pg_open(struct hl_store_backend **out, const struct hl_store_ops **ops,
                 const char *conninfo, unsigned flags, const char *owner,
                 const struct hl_store_sink *sink, struct hl_err *err)
{
	struct hl_store_backend *b;
	char why[200];
	int rc;

	b = pg_backend_new(conninfo, flags & HL_STORE_READ_ONLY, owner);
	if (!b)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	b->sink = *sink;
	if ((rc = pg_check_conninfo(b->conninfo, b->display, err)) < 0)
		goto fail;
	/* Every commit is durable when it returns (synchronous_commit on),
	 * the server's claims, finishes, tasks and loop state too: unlike a
	 * SQLite file's, a database server can crash while healer lives on,
	 * and what healer writes after it reconnects builds on what it wrote
	 * before (a delivery finished after the crash whose attempt record,
	 * made just before it, was lost would leave its task with a CodeRun
	 * nobody follows). Intake batches run on b->intake. */
	b->conn = pg_connect(b);
	if (!b->conn || PQstatus(b->conn) != CONNECTION_OK || pg_session(b, b->conn) < 0) {
		pg_first_line(why, sizeof(why),
		              b->conn ? PQerrorMessage(b->conn) : "out of memory");
		rc = hl_err_set(err, HL_EDB, "cannot connect to '%s': %s", b->display, why);
		goto fail;
	}
	atomic_store(&b->own_pid[0], PQbackendPID(b->conn));
	atomic_store(&b->own_pid[1], PQbackendPID(b->conn));
	if (b->read_only) {
		if ((rc = pg_check_schema(b, err)) < 0)
			goto fail;
		*out = b;
		*ops = &pg_ops;
		return 0;
	}
	if (!(b->intake = pg_backend_new(conninfo, false, owner)) ||
	    !(b->keep = pg_backend_new(conninfo, false, owner))) {
		rc = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto fail;
	}
	/* listening before open returns: no signal sent afterwards is missed */
	b->lconn = pg_listen_connect(b, why, sizeof(why));
	if (!b->lconn) {
		rc = hl_err_set(err, HL_EDB, "cannot connect to '%s': %s", b->display, why);
		goto fail;
	}
	b->owner_locked = pg_try_lock(b->lconn, pg_owner_lock_sql, b->owner);
	if (pipe2(b->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
		rc = hl_err_set(err, HL_EINTERNAL, "cannot create a pipe: %s", strerror(errno));
		goto fail;
	}
	if (pthread_create(&b->l_thread, NULL, pg_listener, b) != 0) {
		rc = hl_err_set(err, HL_EINTERNAL, "cannot start the store's listener thread");
		goto fail;
	}
	b->l_started = true;
	*out = b;
	*ops = &pg_ops;
	return 0;
fail:
	pg_close(b);
	return rc;
}
