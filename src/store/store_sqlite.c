/*
 * store_sqlite.c - the SQLite backend of the store (see store.h).
 *
 * One connection, used only under the store mutex (so its page cache
 * stays warm), with synchronous=NORMAL: commits write the WAL but do not
 * flush it. Intake batches are made durable by sq_sync_log, an fdatasync of
 * the WAL through our own descriptor, run by the store's syncer thread
 * outside the mutex (store.c); only then are they answered. If that
 * descriptor cannot be opened, intake batches commit with
 * synchronous=FULL instead. Claims, finishes and task writes are never
 * flushed on their own: crash-safe for a killed process; after a power
 * loss they may be redone. Checkpoints run on a second connection in their
 * own thread (PASSIVE, FULL: the WAL is flushed before frames are copied),
 * and inline only when a busy WAL outgrows them (sq_wal_hook).
 * Migrations are SQL text embedded below and recorded in schema_migrations;
 * each runs in its own transaction. The SQL is portable to PostgreSQL
 * except where noted (INTEGER PRIMARY KEY -> BIGSERIAL, BLOB -> BYTEA).
 * delivery_counts is maintained in the same transaction as every state
 * change, so status and metrics never scan the deliveries table (intake
 * batches sum their increments and write them just before the commit).
 */
#include "base/clock.h"
#include "base/str.h"
#include "store_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

static const char *const sqlite_migrations[] = {
	/* 1: deliveries, normalized events, event identity keys, counters. */
	"CREATE TABLE deliveries ("
	" id INTEGER PRIMARY KEY," /* PG: BIGSERIAL PRIMARY KEY */
	" delivery_id TEXT NOT NULL UNIQUE,"
	" hook_id TEXT,"
	" source TEXT NOT NULL,"
	" event_name TEXT NOT NULL,"
	" action TEXT,"
	" headers_json TEXT NOT NULL,"
	" body BLOB NOT NULL," /* PG: BYTEA */
	" received_ms BIGINT NOT NULL,"
	" state TEXT NOT NULL,"
	" answer TEXT NOT NULL,"
	" reason TEXT,"
	" attempts INTEGER NOT NULL DEFAULT 0,"
	" process_count INTEGER NOT NULL DEFAULT 0,"
	" dedup_key TEXT,"
	" duplicate_of TEXT,"
	" task_id TEXT,"
	" updated_ms BIGINT NOT NULL,"
	" finished_ms BIGINT);"
	"CREATE INDEX deliveries_state ON deliveries (state, id);"
	"CREATE INDEX deliveries_task ON deliveries (task_id);"
	"CREATE TABLE event_keys ("
	" dedup_key TEXT PRIMARY KEY,"
	" delivery_id TEXT NOT NULL,"
	" task_id TEXT,"
	" first_seen_ms BIGINT NOT NULL);"
	"CREATE TABLE events ("
	" delivery_id TEXT PRIMARY KEY REFERENCES deliveries (delivery_id),"
	" event_json TEXT NOT NULL,"
	" created_ms BIGINT NOT NULL);"
	"CREATE TABLE delivery_counts ("
	" event_name TEXT NOT NULL,"
	" state TEXT NOT NULL,"
	" reason TEXT NOT NULL,"
	" n BIGINT NOT NULL,"
	" PRIMARY KEY (event_name, state, reason));",
	/* 2: remediation tasks, attempts, outcomes (filled by the dispatch work). */
	"CREATE TABLE remediation_tasks ("
	" task_id TEXT PRIMARY KEY,"
	" dedup_key TEXT,"
	" repository TEXT,"
	" run_id BIGINT,"
	" job TEXT,"
	" branch TEXT,"
	" agent TEXT,"
	" failure_type TEXT,"
	" status TEXT NOT NULL,"
	" coderun_name TEXT,"
	" decision_json TEXT,"
	" created_ms BIGINT NOT NULL,"
	" updated_ms BIGINT NOT NULL);"
	"CREATE INDEX remediation_tasks_dedup ON remediation_tasks (dedup_key);"
	"CREATE TABLE attempts ("
	" task_id TEXT NOT NULL,"
	" n INTEGER NOT NULL,"
	" agent TEXT,"
	" coderun_name TEXT,"
	" outcome TEXT,"
	" started_ms BIGINT NOT NULL,"
	" finished_ms BIGINT,"
	" PRIMARY KEY (task_id, n));"
	"CREATE TABLE outcomes ("
	" id INTEGER PRIMARY KEY," /* PG: BIGSERIAL PRIMARY KEY */
	" task_id TEXT,"
	" delivery_id TEXT,"
	" outcome TEXT NOT NULL,"
	" detail TEXT,"
	" recorded_ms BIGINT NOT NULL);"
	"CREATE INDEX outcomes_task ON outcomes (task_id);",
	/* 3: bodies may be stored deflated (zlib; body_size is the raw size);
	 * indexes for task lookups. */
	"ALTER TABLE deliveries ADD COLUMN body_encoding TEXT NOT NULL DEFAULT 'identity';"
	"ALTER TABLE deliveries ADD COLUMN body_size BIGINT;"
	/* task lookups by run and by branch window (hl_store_task_find) */
	"CREATE INDEX remediation_tasks_run ON remediation_tasks (repository, run_id);"
	"CREATE INDEX remediation_tasks_branch ON remediation_tasks"
	" (repository, branch, created_ms);",
	/* 4: lighter per-delivery index upkeep: only waiting deliveries are
	 * indexed by state (a partial index, PG has them too), and the unused
	 * task index goes. */
	"DROP INDEX deliveries_task;"
	"DROP INDEX deliveries_state;"
	"CREATE INDEX deliveries_received ON deliveries (id) WHERE state = 'received';",
	/* 5: task lookups by run answer the newest task from the index: the
	 * run index is ordered by creation, and run-level tasks (job IS NULL)
	 * have their own partial index, so a run with many job tasks is not
	 * scanned for its one run-level task. */
	"DROP INDEX remediation_tasks_run;"
	"CREATE INDEX remediation_tasks_run ON remediation_tasks"
	" (repository, run_id, created_ms);"
	"CREATE INDEX remediation_tasks_run_level ON remediation_tasks"
	" (repository, run_id, created_ms) WHERE job IS NULL;",
};

#define N_MIGRATIONS ((int)(sizeof(sqlite_migrations) / sizeof(sqlite_migrations[0])))

enum sq_stmt {
	SQ_SYNC_FULL,
	SQ_SYNC_NORMAL,
	SQ_BEGIN,
	SQ_COMMIT,
	SQ_ROLLBACK,
	SQ_SP,
	SQ_SP_RELEASE,
	SQ_SP_ROLLBACK,
	SQ_SEL_DELIVERY,
	SQ_INS_KEY,
	SQ_SEL_KEY,
	SQ_INS_DELIVERY,
	SQ_COUNT_BUMP,
	SQ_CLAIM_SEL,
	SQ_CLAIM_MARK,
	SQ_FIN_DONE,
	SQ_FIN_BACK,
	SQ_FIN_EVENT,
	SQ_MAX
};

static const char *const sq_sql[SQ_MAX] = {
	[SQ_SYNC_FULL] = "PRAGMA synchronous=FULL",
	[SQ_SYNC_NORMAL] = "PRAGMA synchronous=NORMAL",
	[SQ_BEGIN] = "BEGIN IMMEDIATE",
	[SQ_COMMIT] = "COMMIT",
	[SQ_ROLLBACK] = "ROLLBACK",
	[SQ_SP] = "SAVEPOINT item",
	[SQ_SP_RELEASE] = "RELEASE item",
	[SQ_SP_ROLLBACK] = "ROLLBACK TO item",
	[SQ_SEL_DELIVERY] = "SELECT answer, reason, task_id FROM deliveries WHERE delivery_id = ?1",
	[SQ_INS_KEY] = "INSERT INTO event_keys (dedup_key, delivery_id, task_id, first_seen_ms)"
	               " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (dedup_key) DO NOTHING",
	[SQ_SEL_KEY] = "SELECT delivery_id, task_id FROM event_keys WHERE dedup_key = ?1",
	[SQ_INS_DELIVERY] =
	        "INSERT INTO deliveries (delivery_id, hook_id, source, event_name, action,"
	        " headers_json, body, received_ms, state, answer, reason, dedup_key,"
	        " duplicate_of, task_id, updated_ms, body_encoding, body_size)"
	        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?8, ?15,"
	        " ?16)",
	[SQ_COUNT_BUMP] = "INSERT INTO delivery_counts (event_name, state, reason, n)"
	                  " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (event_name, state, reason)"
	                  " DO UPDATE SET n = delivery_counts.n + excluded.n",
	/* PG: claim with SELECT ... FOR UPDATE SKIP LOCKED. */
	[SQ_CLAIM_SEL] =
	        "SELECT id, delivery_id, hook_id, source, event_name, action, headers_json, body,"
	        " dedup_key, task_id, received_ms, attempts, body_encoding, body_size"
	        " FROM deliveries WHERE state = 'received' ORDER BY id LIMIT 1",
	[SQ_CLAIM_MARK] = "UPDATE deliveries SET state = 'processing', attempts = attempts + 1,"
	                  " updated_ms = ?2 WHERE id = ?1",
	[SQ_FIN_DONE] =
	        "UPDATE deliveries SET state = ?2, reason = ?3, updated_ms = ?4, finished_ms = ?4,"
	        " process_count = process_count + 1"
	        " WHERE delivery_id = ?1 AND state = 'processing' RETURNING event_name",
	[SQ_FIN_BACK] = "UPDATE deliveries SET state = 'received', updated_ms = ?4"
	                " WHERE delivery_id = ?1 AND state = 'processing' RETURNING event_name",
	[SQ_FIN_EVENT] =
	        "INSERT INTO events (delivery_id, event_json, created_ms) VALUES (?1, ?2, ?3)"
	        " ON CONFLICT (delivery_id) DO UPDATE SET event_json = excluded.event_json",
};

/* WAL pages (4 KiB) after which the checkpointer is woken. */
#define SQ_CHECKPOINT_PAGES  1024
#define SQ_CHECKPOINT_INLINE 4096
#define SQ_CHECKPOINT_GAP_MS 500

#define SQ_CACHE_MAX 32

struct hl_store_backend {
	sqlite3 *db; /* the connection (under the store mutex) */
	sqlite3 *ck; /* checkpointer connection (its own thread) */
	sqlite3_stmt *in_st[SQ_MAX];
	pthread_t ck_thread;
	bool ck_started;
	pthread_mutex_t ck_lock;
	pthread_cond_t ck_cond;
	bool ck_wanted, ck_stop;
	int walfd; /* our handle on the -wal file for deferred flushes, or -1 */
	struct {
		char *sql;
		sqlite3_stmt *st;
	} cache[SQ_CACHE_MAX]; /* statements of the less hot paths, by SQL text */
	int ncache;
};

static int
sq_fail(struct hl_err *err, sqlite3 *db, const char *what)
{
	return hl_err_set(err, HL_EDB, "sqlite %s: %s", what, sqlite3_errmsg(db));
}

static int
sq_exec(sqlite3 *db, const char *sql, struct hl_err *err)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		int rc = hl_err_set(err, HL_EDB, "sqlite: %s", msg ? msg : sqlite3_errmsg(db));

		sqlite3_free(msg);
		return rc;
	}
	return 0;
}

/* Runs a prepared statement that returns no rows, then resets it. */
static int
sq_step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static void
sq_bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

static char *
sq_col_dup(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return t ? strdup((const char *)t) : NULL;
}

static void
sq_col_copy(char *out, size_t size, sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	hl_strlcpy(out, t ? (const char *)t : "", size);
}

static int
sq_connect(sqlite3 **out, const char *path, const char *sync, struct hl_err *err)
{
	sqlite3 *db = NULL;
	char sql[256];
	int rc;

	rc = sqlite3_open_v2(
	        path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		rc = hl_err_set(err, HL_EDB, "cannot open '%s': %s", path,
		                db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return rc;
	}
	sqlite3_busy_timeout(db, 5000);
	snprintf(sql, sizeof(sql),
	         "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; PRAGMA foreign_keys=OFF;"
	         " PRAGMA temp_store=MEMORY; PRAGMA journal_size_limit=67108864;",
	         sync);
	rc = sq_exec(db, sql, err);
	if (rc < 0) {
		hl_err_wrap(err, "'%s'", path);
		sqlite3_close(db);
		return rc;
	}
	*out = db;
	return 0;
}

static void
sq_close(struct hl_store_backend *b)
{
	int i;

	if (!b)
		return;
	if (b->ck_started) {
		pthread_mutex_lock(&b->ck_lock);
		b->ck_stop = true;
		pthread_cond_signal(&b->ck_cond);
		pthread_mutex_unlock(&b->ck_lock);
		pthread_join(b->ck_thread, NULL);
	}
	if (b->walfd >= 0)
		close(b->walfd);
	if (b->ck)
		sqlite3_close(b->ck);
	pthread_mutex_destroy(&b->ck_lock);
	pthread_cond_destroy(&b->ck_cond);
	for (i = 0; i < SQ_MAX; i++)
		sqlite3_finalize(b->in_st[i]);
	for (i = 0; i < b->ncache; i++) {
		sqlite3_finalize(b->cache[i].st);
		free(b->cache[i].sql);
	}
	if (b->db) {
		/* Fold the WAL into the database on a clean close. */
		sqlite3_wal_checkpoint_v2(b->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
		sqlite3_close(b->db);
	}
	free(b);
}

/*
 * A prepared statement for sql on b->db (under the store mutex): from the
 * cache, or prepared and cached (while there is room). Every use ends with
 * sq_done, which resets a cached statement (releasing its read) and
 * finalizes one that could not be cached. NULL when sql does not prepare.
 */
static sqlite3_stmt *
sq_prepare(struct hl_store_backend *b, const char *sql)
{
	sqlite3_stmt *st = NULL;
	char *copy;
	int i;

	for (i = 0; i < b->ncache; i++)
		if (strcmp(b->cache[i].sql, sql) == 0)
			return b->cache[i].st;
	if (sqlite3_prepare_v3(b->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
		sqlite3_finalize(st);
		return NULL;
	}
	if (b->ncache < SQ_CACHE_MAX && (copy = strdup(sql))) {
		b->cache[b->ncache].sql = copy;
		b->cache[b->ncache].st = st;
		b->ncache++;
	}
	return st;
}

static void
sq_done(struct hl_store_backend *b, sqlite3_stmt *st)
{
	int i;

	if (!st)
		return;
	for (i = 0; i < b->ncache; i++) {
		if (b->cache[i].st == st) {
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			return;
		}
	}
	sqlite3_finalize(st);
}

static int
sq_schema_version(struct hl_store_backend *b, int *out, struct hl_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(b->db, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", -1,
	                       &st, NULL) != SQLITE_OK)
		return sq_fail(err, b->db, "schema version");
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : sq_fail(err, b->db, "schema version");
}

static int
sq_migrate(struct hl_store_backend *b, int *applied, struct hl_err *err)
{
	char sql[160];
	int version = 0, v, n = 0, rc;

	rc = sq_exec(b->db,
	             "CREATE TABLE IF NOT EXISTS schema_migrations ("
	             " version INTEGER PRIMARY KEY, applied_ms BIGINT NOT NULL)",
	             err);
	if (rc < 0)
		return rc;
	for (v = 1; v <= N_MIGRATIONS; v++) {
		rc = sq_exec(b->db, "BEGIN IMMEDIATE", err);
		if (rc < 0)
			return rc;
		/* Re-read inside the write transaction: another process may
		 * have migrated meanwhile. */
		rc = sq_schema_version(b, &version, err);
		if (rc < 0 || version >= v) {
			sq_exec(b->db, "ROLLBACK", NULL);
			if (rc < 0)
				return rc;
			continue;
		}
		rc = sq_exec(b->db, sqlite_migrations[v - 1], err);
		if (rc == 0) {
			snprintf(sql, sizeof(sql),
			         "INSERT INTO schema_migrations (version, applied_ms)"
			         " VALUES (%d, %lld)",
			         v, (long long)hl_time_wall_ms());
			rc = sq_exec(b->db, sql, err);
		}
		if (rc == 0)
			rc = sq_exec(b->db, "COMMIT", err);
		if (rc < 0) {
			sq_exec(b->db, "ROLLBACK", NULL);
			return hl_err_wrap(err, "migration %d", v);
		}
		n++;
	}
	if (applied)
		*applied = n;
	return 0;
}

static int
sq_bump(sqlite3_stmt *st, const char *event, const char *state, const char *reason, int64_t delta)
{
	sqlite3_bind_text(st, 1, event, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, reason ? reason : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, delta);
	return sq_step_done(st);
}

/*
 * delivery_counts increments of one intake batch, summed per (event,
 * state, reason) and written once before the commit: a batch of
 * deliveries of one kind costs one upsert, not one per delivery. The
 * strings are borrowed from the batch's requests (or static).
 */
#define SQ_TALLY_MAX 16

struct sq_tally {
	struct {
		const char *event, *state, *reason;
		int64_t n;
	} k[SQ_TALLY_MAX];
	int len;
};

static bool
sq_str_eq(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/* Counts one delivery; -1 when the tally is full (bump it directly). */
static int
sq_tally_add(struct sq_tally *t, const char *event, const char *state, const char *reason)
{
	int i;

	for (i = 0; i < t->len; i++) {
		if (sq_str_eq(t->k[i].event, event) && sq_str_eq(t->k[i].state, state) &&
		    sq_str_eq(t->k[i].reason, reason)) {
			t->k[i].n++;
			return 0;
		}
	}
	if (t->len == SQ_TALLY_MAX)
		return -1;
	t->k[t->len].event = event;
	t->k[t->len].state = state;
	t->k[t->len].reason = reason;
	t->k[t->len].n = 1;
	t->len++;
	return 0;
}

static int
sq_tally_write(struct hl_store_backend *b, const struct sq_tally *t)
{
	int i;

	for (i = 0; i < t->len; i++)
		if (sq_bump(b->in_st[SQ_COUNT_BUMP], t->k[i].event, t->k[i].state, t->k[i].reason,
		            t->k[i].n) < 0)
			return -1;
	return 0;
}

/* One intake inside the batch transaction and its savepoint; its count
 * goes to tally (written by the caller before the commit). */
static int
sq_intake_one(struct hl_store_backend *b, struct hl_intake_req *r, int64_t now, bool *queued,
              struct sq_tally *tally)
{
	const struct hl_delivery_in *in = &r->in;
	struct hl_intake_answer *a = &r->answer;
	sqlite3_stmt *st;
	const char *state, *answer, *reason;
	char dup_of[HL_DELIVERY_ID_MAX + 1] = "";
	int rc;

	memset(a, 0, sizeof(*a));
	*queued = false;
	if (!in->delivery_id || !*in->delivery_id || strlen(in->delivery_id) > HL_DELIVERY_ID_MAX)
		return hl_err_set(&r->err, HL_EINVAL, "bad delivery id");
	if (!in->event_name || !*in->event_name)
		return hl_err_set(&r->err, HL_EINVAL, "missing event name");

	/* 1. The same delivery again: the first answer, as a duplicate. */
	st = b->in_st[SQ_SEL_DELIVERY];
	sqlite3_bind_text(st, 1, in->delivery_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *orig = (const char *)sqlite3_column_text(st, 0);

		a->status = HL_INTAKE_DUPLICATE;
		a->original = orig && strcmp(orig, "accepted") == 0  ? HL_INTAKE_ACCEPTED
		              : orig && strcmp(orig, "skipped") == 0 ? HL_INTAKE_SKIPPED
		                                                     : HL_INTAKE_DUPLICATE;
		sq_col_copy(a->task_id, sizeof(a->task_id), st, 2);
		hl_strlcpy(a->reason, "duplicate_delivery", sizeof(a->reason));
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc != SQLITE_DONE)
		return sq_fail(&r->err, b->db, "select delivery");

	state = "received";
	answer = "accepted";
	reason = NULL;
	a->status = a->original = HL_INTAKE_ACCEPTED;
	hl_strlcpy(a->task_id, in->task_id ? in->task_id : "", sizeof(a->task_id));
	if (in->skip_reason) {
		state = "skipped";
		answer = "skipped";
		reason = in->skip_reason;
		a->status = a->original = HL_INTAKE_SKIPPED;
		a->task_id[0] = '\0';
	} else if (in->dedup_key && *in->dedup_key) {
		/* 2. The same event through another delivery. */
		st = b->in_st[SQ_INS_KEY];
		sqlite3_bind_text(st, 1, in->dedup_key, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, in->delivery_id, -1, SQLITE_STATIC);
		sq_bind_text(st, 3, in->task_id);
		sqlite3_bind_int64(st, 4, now);
		if (sq_step_done(st) < 0)
			return sq_fail(&r->err, b->db, "insert event key");
		if (sqlite3_changes(b->db) == 0) {
			st = b->in_st[SQ_SEL_KEY];
			sqlite3_bind_text(st, 1, in->dedup_key, -1, SQLITE_STATIC);
			rc = sqlite3_step(st);
			if (rc == SQLITE_ROW) {
				sq_col_copy(dup_of, sizeof(dup_of), st, 0);
				sq_col_copy(a->task_id, sizeof(a->task_id), st, 1);
			}
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			if (rc != SQLITE_ROW)
				return sq_fail(&r->err, b->db, "select event key");
			state = "skipped";
			answer = "duplicate";
			reason = "duplicate_event";
			a->status = a->original = HL_INTAKE_DUPLICATE;
			hl_strlcpy(a->duplicate_of, dup_of, sizeof(a->duplicate_of));
		}
	}
	if (reason)
		hl_strlcpy(a->reason, reason, sizeof(a->reason));

	/* 3. Store it. */
	st = b->in_st[SQ_INS_DELIVERY];
	sqlite3_bind_text(st, 1, in->delivery_id, -1, SQLITE_STATIC);
	sq_bind_text(st, 2, in->hook_id);
	sqlite3_bind_text(st, 3, in->source ? in->source : "webhook", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, in->event_name, -1, SQLITE_STATIC);
	sq_bind_text(st, 5, in->action);
	sqlite3_bind_text(st, 6, in->headers_json ? in->headers_json : "{}", -1, SQLITE_STATIC);
	if (r->zbody)
		sqlite3_bind_blob64(st, 7, r->zbody, r->zlen, SQLITE_STATIC);
	else
		sqlite3_bind_blob64(st, 7, in->body ? in->body : "", in->body_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 8, now);
	sqlite3_bind_text(st, 9, state, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 10, answer, -1, SQLITE_STATIC);
	sq_bind_text(st, 11, reason);
	sq_bind_text(st, 12, in->dedup_key);
	sq_bind_text(st, 13, dup_of[0] ? dup_of : NULL);
	sq_bind_text(st, 14, a->task_id[0] ? a->task_id : NULL);
	sqlite3_bind_text(st, 15, r->zbody ? "deflate" : "identity", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 16, (sqlite3_int64)in->body_len);
	if (sq_step_done(st) < 0)
		return sq_fail(&r->err, b->db, "insert delivery");
	if (sq_tally_add(tally, in->event_name, state, reason) < 0 &&
	    sq_bump(b->in_st[SQ_COUNT_BUMP], in->event_name, state, reason, 1) < 0)
		return sq_fail(&r->err, b->db, "count delivery");
	*queued = strcmp(state, "received") == 0;
	return 0;
}

static int
sq_intake_batch(struct hl_store_backend *b, struct hl_intake_req *head)
{
	struct hl_intake_req *r;
	struct hl_err err = HL_ERR_INIT;
	int64_t now = hl_time_wall_ms();
	struct sq_tally tally = { .len = 0 };
	int queued = 0;
	bool q;

	/* With our own handle on the WAL, the flush is sq_sync_log's job. */
	if ((b->walfd < 0 && sq_step_done(b->in_st[SQ_SYNC_FULL]) < 0) ||
	    sq_step_done(b->in_st[SQ_BEGIN]) < 0) {
		sq_fail(&err, b->db, "begin");
		goto fail;
	}
	for (r = head; r; r = r->next) {
		struct sq_tally one = { .len = 0 };

		if (sq_step_done(b->in_st[SQ_SP]) < 0) {
			sq_fail(&err, b->db, "savepoint");
			goto rollback;
		}
		r->rc = sq_intake_one(b, r, now, &q, &one);
		if (r->rc < 0) {
			if (sq_step_done(b->in_st[SQ_SP_ROLLBACK]) < 0) {
				sq_fail(&err, b->db, "rollback to savepoint");
				goto rollback;
			}
		} else {
			/* The row stays: count it in the batch's tally. */
			if (one.len == 1 &&
			    sq_tally_add(&tally, one.k[0].event, one.k[0].state, one.k[0].reason) <
			            0 &&
			    sq_bump(b->in_st[SQ_COUNT_BUMP], one.k[0].event, one.k[0].state,
			            one.k[0].reason, 1) < 0) {
				sq_fail(&err, b->db, "count delivery");
				goto rollback;
			}
			if (q)
				queued++;
		}
		if (sq_step_done(b->in_st[SQ_SP_RELEASE]) < 0) {
			sq_fail(&err, b->db, "release savepoint");
			goto rollback;
		}
	}
	if (sq_tally_write(b, &tally) < 0) {
		sq_fail(&err, b->db, "count deliveries");
		goto rollback;
	}
	if (sq_step_done(b->in_st[SQ_COMMIT]) < 0) {
		sq_fail(&err, b->db, "commit");
		goto rollback;
	}
	sq_step_done(b->in_st[SQ_SYNC_NORMAL]);
	return queued;
rollback:
	sq_step_done(b->in_st[SQ_ROLLBACK]);
fail:
	sq_step_done(b->in_st[SQ_SYNC_NORMAL]);
	for (r = head; r; r = r->next) {
		r->rc = -HL_EDB;
		r->err = err;
	}
	return 0;
}

static int
sq_recover(struct hl_store_backend *b, int64_t *n, struct hl_err *err)
{
	int rc;

	rc = sq_exec(b->db, "BEGIN IMMEDIATE", err);
	if (rc < 0)
		return rc;
	rc = sq_exec(b->db, "UPDATE deliveries SET state = 'received' WHERE state = 'processing'",
	             err);
	if (rc == 0)
		*n = sqlite3_changes64(b->db);
	/* Rebuild the counters from the rows, the source of truth. */
	if (rc == 0)
		rc = sq_exec(b->db,
		             "DELETE FROM delivery_counts;"
		             "INSERT INTO delivery_counts (event_name, state, reason, n)"
		             " SELECT event_name, state, COALESCE(reason, ''), COUNT(*)"
		             " FROM deliveries GROUP BY event_name, state, COALESCE(reason, '')",
		             err);
	if (rc == 0)
		rc = sq_exec(b->db, "COMMIT", err);
	if (rc < 0)
		sq_exec(b->db, "ROLLBACK", NULL);
	return rc;
}

/* Marks a delivery whose stored body cannot be decoded as failed. */
static int
sq_claim_poison(struct hl_store_backend *b, int64_t id, const char *event, struct hl_err *err)
{
	char upd[200];

	snprintf(upd, sizeof(upd),
	         "UPDATE deliveries SET state = 'failed', reason = 'corrupt_body',"
	         " updated_ms = %lld WHERE id = %lld",
	         (long long)hl_time_wall_ms(), (long long)id);
	if (sq_exec(b->db, upd, err) < 0 ||
	    sq_bump(b->in_st[SQ_COUNT_BUMP], event, "received", "", -1) < 0 ||
	    sq_bump(b->in_st[SQ_COUNT_BUMP], event, "failed", "corrupt_body", 1) < 0)
		return sq_fail(err, b->db, "mark corrupt body");
	return 0;
}

/* Copies (identity) or inflates (deflate) the stored body; 0 or -1. */
static int
sq_decode_body(struct hl_delivery_record *d, sqlite3_stmt *st, int col, const char *enc,
               int64_t size)
{
	const void *blob = sqlite3_column_blob(st, col);
	size_t n = (size_t)sqlite3_column_bytes(st, col);
	uLongf got;

	if (!enc || strcmp(enc, "identity") == 0) {
		d->body = malloc(n + 1);
		if (!d->body)
			return -1;
		if (n)
			memcpy(d->body, blob, n);
		d->body[n] = '\0';
		d->body_len = n;
		return 0;
	}
	if (strcmp(enc, "deflate") != 0 || size < 0 || size > HL_STORE_MAX_BODY || !blob)
		return -1;
	d->body = malloc((size_t)size + 1);
	if (!d->body)
		return -1;
	got = (uLongf)size;
	if (uncompress((Bytef *)d->body, &got, blob, (uLong)n) != Z_OK || got != (uLongf)size) {
		free(d->body);
		d->body = NULL;
		return -1;
	}
	d->body[size] = '\0';
	d->body_len = (size_t)size;
	return 0;
}

static int
sq_claim_next(struct hl_store_backend *b, struct hl_delivery_record **out, struct hl_err *err)
{
	struct hl_delivery_record *d = NULL;
	sqlite3_stmt *st = b->in_st[SQ_CLAIM_SEL], *mark = b->in_st[SQ_CLAIM_MARK];
	int rc, tries;

	if (sq_step_done(b->in_st[SQ_BEGIN]) < 0)
		return sq_fail(err, b->db, "claim");
	for (tries = 0;; tries++) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_DONE || tries == 64) {
			rc = hl_err_set(err, HL_ENOTFOUND, "no delivery waiting");
			goto out;
		}
		if (rc != SQLITE_ROW) {
			rc = sq_fail(err, b->db, "claim");
			goto out;
		}
		d = calloc(1, sizeof(*d));
		if (!d) {
			rc = hl_err_set(err, HL_ENOMEM, "out of memory");
			goto out;
		}
		d->id = sqlite3_column_int64(st, 0);
		d->event_name = sq_col_dup(st, 4);
		if (!d->event_name) {
			rc = hl_err_set(err, HL_ENOMEM, "out of memory");
			goto out;
		}
		if (sq_decode_body(d, st, 7, (const char *)sqlite3_column_text(st, 12),
		                   sqlite3_column_type(st, 13) == SQLITE_NULL
		                           ? -1
		                           : sqlite3_column_int64(st, 13)) == 0)
			break;
		/* Never hand out (or loop on) a body that cannot be decoded. */
		sqlite3_reset(st);
		rc = sq_claim_poison(b, d->id, d->event_name, err);
		hl_delivery_record_free(d);
		d = NULL;
		if (rc < 0)
			goto out;
	}
	d->delivery_id = sq_col_dup(st, 1);
	d->hook_id = sq_col_dup(st, 2);
	d->source = sq_col_dup(st, 3);
	d->action = sq_col_dup(st, 5);
	d->headers_json = sq_col_dup(st, 6);
	d->dedup_key = sq_col_dup(st, 8);
	d->task_id = sq_col_dup(st, 9);
	d->received_ms = sqlite3_column_int64(st, 10);
	d->attempts = sqlite3_column_int(st, 11) + 1;
	sqlite3_reset(st);
	if (!d->delivery_id || !d->source || !d->headers_json) {
		rc = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	sqlite3_bind_int64(mark, 1, d->id);
	sqlite3_bind_int64(mark, 2, hl_time_wall_ms());
	rc = 0;
	if (sq_step_done(mark) < 0 ||
	    sq_bump(b->in_st[SQ_COUNT_BUMP], d->event_name, "received", "", -1) < 0 ||
	    sq_bump(b->in_st[SQ_COUNT_BUMP], d->event_name, "processing", "", 1) < 0 ||
	    sq_step_done(b->in_st[SQ_COMMIT]) < 0)
		rc = sq_fail(err, b->db, "claim");
out:
	sqlite3_reset(st);
	if (rc < 0) {
		/* Keep what a poisoned row was marked even when nothing else waits. */
		if (rc != -HL_ENOTFOUND || sq_step_done(b->in_st[SQ_COMMIT]) < 0)
			sq_step_done(b->in_st[SQ_ROLLBACK]);
		hl_delivery_record_free(d);
		return rc;
	}
	*out = d;
	return 0;
}

static int
sq_finish(struct hl_store_backend *b, const char *delivery_id, enum hl_delivery_state state,
          const char *reason, const char *event_json, struct hl_err *err)
{
	const char *sname = hl_delivery_state_name(state);
	bool back = state == HL_DELIVERY_RECEIVED;
	sqlite3_stmt *st = b->in_st[back ? SQ_FIN_BACK : SQ_FIN_DONE];
	char *event = NULL;
	int64_t now = hl_time_wall_ms();
	int rc;

	if (sq_step_done(b->in_st[SQ_BEGIN]) < 0)
		return sq_fail(err, b->db, "finish");
	sqlite3_bind_text(st, 1, delivery_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, sname, -1, SQLITE_STATIC);
	sq_bind_text(st, 3, reason);
	sqlite3_bind_int64(st, 4, now);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		event = sq_col_dup(st, 0);
		rc = sqlite3_step(st);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE) {
		rc = sq_fail(err, b->db, "finish");
		goto out;
	}
	if (!event) {
		rc = hl_err_set(err, HL_ECONFLICT, "delivery '%s' is not being processed",
		                delivery_id);
		goto out;
	}
	rc = 0;
	if (sq_bump(b->in_st[SQ_COUNT_BUMP], event, "processing", "", -1) < 0 ||
	    sq_bump(b->in_st[SQ_COUNT_BUMP], event, sname, back ? "" : reason, 1) < 0) {
		rc = sq_fail(err, b->db, "count finish");
		goto out;
	}
	if (event_json) {
		st = b->in_st[SQ_FIN_EVENT];
		sqlite3_bind_text(st, 1, delivery_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, event_json, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, now);
		if (sq_step_done(st) < 0) {
			rc = sq_fail(err, b->db, "store event");
			goto out;
		}
	}
	if (sq_step_done(b->in_st[SQ_COMMIT]) < 0)
		rc = sq_fail(err, b->db, "commit finish");
out:
	free(event);
	if (rc < 0)
		sq_step_done(b->in_st[SQ_ROLLBACK]);
	return rc;
}

static int
sq_ping(struct hl_store_backend *b, struct hl_err *err)
{
	return sq_exec(b->db, "SELECT 1 FROM schema_migrations LIMIT 1", err);
}

static int
sq_query_int(struct hl_store_backend *b, const char *sql, int64_t *out, struct hl_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (!(st = sq_prepare(b, sql)))
		return sq_fail(err, b->db, "query");
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	sq_done(b, st);
	return rc == SQLITE_ROW ? 0 : sq_fail(err, b->db, "query");
}

static int
sq_queue_depth(struct hl_store_backend *b, int64_t *out, struct hl_err *err)
{
	return sq_query_int(b,
	                    "SELECT COALESCE(SUM(n), 0) FROM delivery_counts"
	                    " WHERE state IN ('received', 'processing')",
	                    out, err);
}

static int
sq_counts(struct hl_store_backend *b,
          void (*fn)(void *, const char *, const char *, const char *, int64_t), void *arg,
          struct hl_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (!(st = sq_prepare(b, "SELECT event_name, state, reason, n FROM delivery_counts"
	                         " WHERE n > 0 ORDER BY event_name, state, reason LIMIT 1000")))
		return sq_fail(err, b->db, "counts");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		fn(arg, (const char *)sqlite3_column_text(st, 0),
		   (const char *)sqlite3_column_text(st, 1),
		   (const char *)sqlite3_column_text(st, 2), sqlite3_column_int64(st, 3));
	sq_done(b, st);
	return rc == SQLITE_DONE ? 0 : sq_fail(err, b->db, "counts");
}

static void
sq_json_set_col(json_t *o, const char *key, sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	json_object_set_new(o, key, t ? json_string((const char *)t) : json_null());
}

static void
sq_json_set_time(json_t *o, const char *key, sqlite3_stmt *st, int i)
{
	char ts[40];

	if (sqlite3_column_type(st, i) == SQLITE_NULL) {
		json_object_set_new(o, key, json_null());
		return;
	}
	hl_time_rfc3339(ts, sizeof(ts), sqlite3_column_int64(st, i));
	json_object_set_new(o, key, json_string(ts));
}

static int
sq_recent(struct hl_store_backend *b, json_t *arr, int limit, struct hl_err *err)
{
	sqlite3_stmt *st = NULL;
	json_t *o;
	int rc;

	if (!(st = sq_prepare(
	              b, "SELECT delivery_id, event_name, action, source, state, answer, reason,"
	                 " task_id, received_ms, attempts FROM deliveries"
	                 " ORDER BY id DESC LIMIT ?1")))
		return sq_fail(err, b->db, "recent");
	sqlite3_bind_int(st, 1, limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		o = json_object();
		if (!o)
			break;
		sq_json_set_col(o, "delivery_id", st, 0);
		sq_json_set_col(o, "event", st, 1);
		sq_json_set_col(o, "action", st, 2);
		sq_json_set_col(o, "source", st, 3);
		sq_json_set_col(o, "state", st, 4);
		sq_json_set_col(o, "answer", st, 5);
		sq_json_set_col(o, "reason", st, 6);
		sq_json_set_col(o, "task_id", st, 7);
		sq_json_set_time(o, "received_at", st, 8);
		json_object_set_new(o, "attempts", json_integer(sqlite3_column_int64(st, 9)));
		json_array_append_new(arr, o);
	}
	sq_done(b, st);
	return rc == SQLITE_DONE ? 0 : sq_fail(err, b->db, "recent");
}

static int
sq_write1(struct hl_store_backend *b, const char *sql, const char *what,
          void (*bind)(sqlite3_stmt *, const void *), const void *arg, struct hl_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = 0;

	if (!(st = sq_prepare(b, sql)))
		return sq_fail(err, b->db, what);
	bind(st, arg);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = sq_fail(err, b->db, what);
	sq_done(b, st);
	return rc;
}

static void
sq_bind_task(sqlite3_stmt *st, const void *arg)
{
	const struct hl_task *t = arg;

	sq_bind_text(st, 1, t->task_id);
	sq_bind_text(st, 2, t->dedup_key);
	sq_bind_text(st, 3, t->repository);
	sqlite3_bind_int64(st, 4, t->run_id);
	sq_bind_text(st, 5, t->job);
	sq_bind_text(st, 6, t->branch);
	sq_bind_text(st, 7, t->agent);
	sq_bind_text(st, 8, t->failure_type);
	sq_bind_text(st, 9, t->status);
	sq_bind_text(st, 10, t->coderun_name);
	sq_bind_text(st, 11, t->decision_json);
	sqlite3_bind_int64(st, 12, hl_time_wall_ms());
}

static int
sq_task_put(struct hl_store_backend *b, const struct hl_task *t, struct hl_err *err)
{
	return sq_write1(
	        b,
	        "INSERT INTO remediation_tasks (task_id, dedup_key, repository, run_id, job, branch,"
	        " agent, failure_type, status, coderun_name, decision_json, created_ms, updated_ms)"
	        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)"
	        " ON CONFLICT (task_id) DO UPDATE SET"
	        " dedup_key = COALESCE(excluded.dedup_key, remediation_tasks.dedup_key),"
	        " repository = COALESCE(excluded.repository, remediation_tasks.repository),"
	        " run_id = COALESCE(excluded.run_id, remediation_tasks.run_id),"
	        " job = COALESCE(excluded.job, remediation_tasks.job),"
	        " branch = COALESCE(excluded.branch, remediation_tasks.branch),"
	        " agent = COALESCE(excluded.agent, remediation_tasks.agent),"
	        " failure_type = COALESCE(excluded.failure_type, remediation_tasks.failure_type),"
	        " status = excluded.status,"
	        " coderun_name = COALESCE(excluded.coderun_name, remediation_tasks.coderun_name),"
	        " decision_json = COALESCE(excluded.decision_json, remediation_tasks.decision_json),"
	        " updated_ms = excluded.updated_ms",
	        "put task", sq_bind_task, t, err);
}

static int
sq_task_claim(struct hl_store_backend *b, bool *created, char *existing, const struct hl_task *t,
              struct hl_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sq_step_done(b->in_st[SQ_BEGIN]) < 0)
		return sq_fail(err, b->db, "claim task");
	if (!(st = sq_prepare(b, "SELECT task_id FROM remediation_tasks WHERE task_id = ?1"
	                         " OR (?2 IS NOT NULL AND dedup_key = ?2)"
	                         " ORDER BY task_id = ?1 DESC, created_ms LIMIT 1"))) {
		rc = sq_fail(err, b->db, "claim task");
		goto out;
	}
	sqlite3_bind_text(st, 1, t->task_id, -1, SQLITE_STATIC);
	sq_bind_text(st, 2, t->dedup_key);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		sq_col_copy(existing, HL_TASK_ID_MAX, st, 0);
		*created = false;
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		rc = sq_task_put(b, t, err);
		if (rc == 0) {
			hl_strlcpy(existing, t->task_id, HL_TASK_ID_MAX);
			*created = true;
		}
	} else {
		rc = sq_fail(err, b->db, "claim task");
	}
	sq_done(b, st);
	if (rc == 0 && sq_step_done(b->in_st[SQ_COMMIT]) < 0)
		rc = sq_fail(err, b->db, "claim task");
out:
	if (rc < 0)
		sq_step_done(b->in_st[SQ_ROLLBACK]);
	return rc;
}

static int
sq_task_find(struct hl_store_backend *b, char *out, const char *repository, const char *branch,
             int64_t run_id, enum hl_task_find mode, int64_t since_ms, const char *exclude,
             struct hl_err *err)
{
	static const char *const where[] = {
		[HL_TASK_FIND_ANY] = "run_id = ?3",
		[HL_TASK_FIND_RUN_LEVEL] = "run_id = ?3 AND job IS NULL",
		[HL_TASK_FIND_OTHER_RUN] = "branch = ?2 AND (run_id IS NULL OR run_id <> ?3)"
		                           " AND created_ms >= ?4",
	};
	sqlite3_stmt *st = NULL;
	char sql[512];
	int rc;

	if ((unsigned)mode > HL_TASK_FIND_OTHER_RUN)
		return hl_err_set(err, HL_EINVAL, "bad task search mode %d", (int)mode);
	snprintf(sql, sizeof(sql),
	         "SELECT task_id FROM remediation_tasks WHERE repository = ?1 AND %s"
	         " AND status NOT IN ('skipped', 'existing')"
	         " AND (?5 IS NULL OR task_id <> ?5) ORDER BY created_ms DESC LIMIT 1",
	         where[mode]);
	if (!(st = sq_prepare(b, sql)))
		return sq_fail(err, b->db, "find task");
	sqlite3_bind_text(st, 1, repository, -1, SQLITE_STATIC);
	sq_bind_text(st, 2, branch);
	sqlite3_bind_int64(st, 3, run_id);
	sqlite3_bind_int64(st, 4, since_ms);
	sq_bind_text(st, 5, exclude);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		sq_col_copy(out, HL_TASK_ID_MAX, st, 0);
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		rc = hl_err_set(err, HL_ENOTFOUND, "no matching task");
	} else {
		rc = sq_fail(err, b->db, "find task");
	}
	sq_done(b, st);
	return rc;
}

static void
sq_bind_attempt(sqlite3_stmt *st, const void *arg)
{
	const struct hl_attempt *a = arg;

	sq_bind_text(st, 1, a->task_id);
	sqlite3_bind_int(st, 2, a->n);
	sq_bind_text(st, 3, a->agent);
	sq_bind_text(st, 4, a->coderun_name);
	sq_bind_text(st, 5, a->outcome);
	sqlite3_bind_int64(st, 6, a->started_ms ? a->started_ms : hl_time_wall_ms());
	if (a->finished_ms)
		sqlite3_bind_int64(st, 7, a->finished_ms);
	else
		sqlite3_bind_null(st, 7);
}

static int
sq_attempt_put(struct hl_store_backend *b, const struct hl_attempt *a, struct hl_err *err)
{
	return sq_write1(
	        b,
	        "INSERT INTO attempts (task_id, n, agent, coderun_name, outcome, started_ms,"
	        " finished_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
	        " ON CONFLICT (task_id, n) DO UPDATE SET"
	        " agent = COALESCE(excluded.agent, attempts.agent),"
	        " coderun_name = COALESCE(excluded.coderun_name, attempts.coderun_name),"
	        " outcome = COALESCE(excluded.outcome, attempts.outcome),"
	        " finished_ms = COALESCE(excluded.finished_ms, attempts.finished_ms)",
	        "put attempt", sq_bind_attempt, a, err);
}

struct sq_outcome {
	const char *task_id, *delivery_id, *outcome, *detail;
};

static void
sq_bind_outcome(sqlite3_stmt *st, const void *arg)
{
	const struct sq_outcome *o = arg;

	sq_bind_text(st, 1, o->task_id);
	sq_bind_text(st, 2, o->delivery_id);
	sq_bind_text(st, 3, o->outcome);
	sq_bind_text(st, 4, o->detail);
	sqlite3_bind_int64(st, 5, hl_time_wall_ms());
}

static int
sq_outcome_add(struct hl_store_backend *b, const char *task_id, const char *delivery_id,
               const char *outcome, const char *detail, struct hl_err *err)
{
	struct sq_outcome o = { task_id, delivery_id, outcome, detail };

	return sq_write1(b,
	                 "INSERT INTO outcomes (task_id, delivery_id, outcome, detail, recorded_ms)"
	                 " VALUES (?1, ?2, ?3, ?4, ?5)",
	                 "add outcome", sq_bind_outcome, &o, err);
}

static int
sq_task_counts(struct hl_store_backend *b, void (*fn)(void *, const char *, const char *, int64_t),
               void *arg, struct hl_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (!(st = sq_prepare(
	              b, "SELECT 'status', status, COUNT(*) FROM remediation_tasks"
	                 " GROUP BY status UNION ALL"
	                 " SELECT 'outcome', COALESCE(outcome, 'running'), COUNT(*) FROM attempts"
	                 " GROUP BY COALESCE(outcome, 'running') LIMIT 200")))
		return sq_fail(err, b->db, "task counts");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		fn(arg, (const char *)sqlite3_column_text(st, 0),
		   (const char *)sqlite3_column_text(st, 1), sqlite3_column_int64(st, 2));
	sq_done(b, st);
	return rc == SQLITE_DONE ? 0 : sq_fail(err, b->db, "task counts");
}

static int
sq_task_json(struct hl_store_backend *b, json_t **out, const char *task_id, struct hl_err *err)
{
	static const char *const cols[] = { "task_id", "dedup_key",   "repository", "run_id",
		                            "job",     "branch",      "agent",      "failure_type",
		                            "status",  "coderun_name" };
	sqlite3_stmt *st = NULL;
	json_t *task = NULL, *arr, *o, *dec;
	const char *txt;
	int rc, i;

	if (!(st = sq_prepare(b,
	                      "SELECT task_id, dedup_key, repository, run_id, job, branch, agent,"
	                      " failure_type, status, coderun_name, decision_json, created_ms,"
	                      " updated_ms FROM remediation_tasks WHERE task_id = ?1")))
		return sq_fail(err, b->db, "task");
	sqlite3_bind_text(st, 1, task_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sq_done(b, st);
		if (rc == SQLITE_DONE)
			return hl_err_set(err, HL_ENOTFOUND, "no task '%s'", task_id);
		return sq_fail(err, b->db, "task");
	}
	task = json_object();
	for (i = 0; i < 10; i++) {
		if (i == 3)
			json_object_set_new(task, cols[i],
			                    sqlite3_column_type(st, i) == SQLITE_NULL
			                            ? json_null()
			                            : json_integer(sqlite3_column_int64(st, i)));
		else
			sq_json_set_col(task, cols[i], st, i);
	}
	txt = (const char *)sqlite3_column_text(st, 10);
	dec = txt ? json_loads(txt, 0, NULL) : NULL;
	json_object_set_new(task, "decision", dec ? dec : json_null());
	sq_json_set_time(task, "created_at", st, 11);
	sq_json_set_time(task, "updated_at", st, 12);
	sq_done(b, st);
	st = NULL;

	arr = json_array();
	json_object_set_new(task, "attempts", arr);
	if (!(st = sq_prepare(b, "SELECT n, agent, coderun_name, outcome, started_ms, finished_ms"
	                         " FROM attempts WHERE task_id = ?1 ORDER BY n"))) {
		rc = sq_fail(err, b->db, "attempts");
		goto fail;
	}
	sqlite3_bind_text(st, 1, task_id, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		o = json_object();
		json_object_set_new(o, "n", json_integer(sqlite3_column_int64(st, 0)));
		sq_json_set_col(o, "agent", st, 1);
		sq_json_set_col(o, "coderun_name", st, 2);
		sq_json_set_col(o, "outcome", st, 3);
		sq_json_set_time(o, "started_at", st, 4);
		sq_json_set_time(o, "finished_at", st, 5);
		json_array_append_new(arr, o);
	}
	sq_done(b, st);
	st = NULL;
	if (rc != SQLITE_DONE) {
		rc = sq_fail(err, b->db, "attempts");
		goto fail;
	}
	*out = task;
	return 0;
fail:
	json_decref(task);
	return rc;
}

/*
 * Checkpoints run on their own connection and thread (PASSIVE: they never
 * block writers), so an intake commit normally never pays for copying the
 * WAL into the database. Commits wake the checkpointer once the WAL holds
 * SQ_CHECKPOINT_PAGES frames; it also runs every 2 s.
 * Under a steady stream of commits a PASSIVE checkpoint never catches up
 * with the end of the WAL, so the WAL is never restarted and keeps growing
 * (and a flush of a growing file also has to commit its new size). So once
 * the WAL holds SQ_CHECKPOINT_INLINE frames, the committing connection
 * (which holds the store mutex: no other writer) finishes the checkpoint
 * itself; most frames were already copied in the background, and the next
 * transaction restarts the WAL from its start, overwriting it in place.
 */
static int
sq_wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
	struct hl_store_backend *b = arg;

	if (pages >= SQ_CHECKPOINT_INLINE)
		sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	else if (pages >= SQ_CHECKPOINT_PAGES) {
		pthread_mutex_lock(&b->ck_lock);
		b->ck_wanted = true;
		pthread_cond_signal(&b->ck_cond);
		pthread_mutex_unlock(&b->ck_lock);
	}
	return SQLITE_OK;
}

static void
sq_deadline(struct timespec *ts, long ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Checkpoints when the WAL grew past SQ_CHECKPOINT_PAGES or every 2 s, and
 * at most every SQ_CHECKPOINT_GAP_MS: each one costs two flushes, which
 * compete with the intake flushes for the disk. */
static void *
sq_checkpointer(void *arg)
{
	struct hl_store_backend *b = arg;
	struct timespec ts;

	pthread_mutex_lock(&b->ck_lock);
	while (!b->ck_stop) {
		sq_deadline(&ts, SQ_CHECKPOINT_GAP_MS);
		while (!b->ck_stop && pthread_cond_timedwait(&b->ck_cond, &b->ck_lock, &ts) == 0)
			;
		sq_deadline(&ts, 2000 - SQ_CHECKPOINT_GAP_MS);
		while (!b->ck_stop && !b->ck_wanted &&
		       pthread_cond_timedwait(&b->ck_cond, &b->ck_lock, &ts) == 0)
			;
		if (b->ck_stop)
			break;
		b->ck_wanted = false;
		pthread_mutex_unlock(&b->ck_lock);
		sqlite3_wal_checkpoint_v2(b->ck, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
		pthread_mutex_lock(&b->ck_lock);
	}
	pthread_mutex_unlock(&b->ck_lock);
	return NULL;
}

/*
 * Makes every committed intake durable: one fdatasync of the WAL, on our
 * own descriptor, outside the store mutex. The WAL keeps its inode while
 * connections are open (SQLite truncates or rewrites it, never replaces
 * it), and frames a checkpoint copied before this flush were made durable
 * by the checkpointer's FULL sync of the WAL and the database. Without a
 * descriptor every intake commit was already flushed (synchronous=FULL).
 */
static int
sq_sync_log(struct hl_store_backend *b)
{
	if (b->walfd < 0)
		return 0;
	while (fdatasync(b->walfd) < 0)
		if (errno != EINTR)
			return -HL_EIO;
	return 0;
}

static const struct hl_store_ops sq_ops = {
	.name = "sqlite",
	.close = sq_close,
	.migrate = sq_migrate,
	.schema_version = sq_schema_version,
	.recover = sq_recover,
	.intake_batch = sq_intake_batch,
	.sync_log = sq_sync_log,
	.claim_next = sq_claim_next,
	.finish = sq_finish,
	.ping = sq_ping,
	.queue_depth = sq_queue_depth,
	.counts = sq_counts,
	.recent = sq_recent,
	.task_put = sq_task_put,
	.task_claim = sq_task_claim,
	.task_find = sq_task_find,
	.attempt_put = sq_attempt_put,
	.outcome_add = sq_outcome_add,
	.task_counts = sq_task_counts,
	.task_json = sq_task_json,
};

int
hl_store_sqlite_open(struct hl_store_backend **out, const struct hl_store_ops **ops,
                     const char *path, struct hl_err *err)
{
	struct hl_store_backend *b;
	char walpath[4096];
	int rc, i;

	if (strlen(path) + 5 > sizeof(walpath))
		return hl_err_set(err, HL_EINVAL, "store path too long");
	b = calloc(1, sizeof(*b));
	if (!b)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	b->walfd = -1;
	pthread_mutex_init(&b->ck_lock, NULL);
	pthread_cond_init(&b->ck_cond, NULL);
	rc = sq_connect(&b->db, path, "NORMAL", err);
	if (rc == 0)
		rc = sq_connect(&b->ck, path, "FULL", err);
	if (rc < 0)
		goto fail;
	sqlite3_wal_autocheckpoint(b->db, 0);
	sqlite3_wal_hook(b->db, sq_wal_hook, b);
	if (pthread_create(&b->ck_thread, NULL, sq_checkpointer, b) != 0) {
		rc = hl_err_set(err, HL_EINTERNAL, "cannot start the checkpointer thread");
		goto fail;
	}
	b->ck_started = true;
	/* Tables must exist before statements on them can be prepared. */
	rc = sq_migrate(b, NULL, err);
	if (rc < 0)
		goto fail;
	/* The WAL exists once the first write committed (the migrations). */
	snprintf(walpath, sizeof(walpath), "%s-wal", path);
	b->walfd = open(walpath, O_RDWR | O_CLOEXEC);
	for (i = 0; i < SQ_MAX; i++) {
		if (sqlite3_prepare_v3(b->db, sq_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
		                       &b->in_st[i], NULL) != SQLITE_OK) {
			rc = sq_fail(err, b->db, "prepare");
			goto fail;
		}
	}
	*out = b;
	*ops = &sq_ops;
	return 0;
fail:
	sq_close(b);
	return rc;
}
