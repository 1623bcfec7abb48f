/*
 * sqlite.c - the SQLite backend of the store (see store.h): its connection,
 * migrations, checkpoints and log flushes, and its operation table.
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
 * Migrations are the .sql files of migrations/sqlite/, embedded at build
 * time and recorded in schema_migrations; each runs in its own transaction.
 * SQLite only ever has one server per data directory (HL_STORE_SERVER
 * takes a lock on "<path>.lock"; commands open beside it), so signals
 * are delivered in-process by the front end (no publish operation). An
 * existing empty file is refused: SQLite would take it for a new database.
 */
#include "base/clock.h"
#include "base/file.h"
#include "base/str.h"
#include "sqlite_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* WAL pages (4 KiB) after which the checkpointer is woken. */
#define SQ_CHECKPOINT_PAGES  1024
#define SQ_CHECKPOINT_INLINE 4096
#define SQ_CHECKPOINT_GAP_MS 100

int
hl_sq_fail(struct hl_err *err, sqlite3 *db, const char *what)
{
	return hl_err_set(err, HL_EDB, "sqlite %s: %s", what, sqlite3_errmsg(db));
}

int
hl_sq_exec(sqlite3 *db, const char *sql, struct hl_err *err)
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
int
hl_sq_step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

void
hl_sq_bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

char *
hl_sq_col_dup(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return t ? strdup((const char *)t) : NULL;
}

void
hl_sq_col_copy(char *out, size_t size, sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	hl_strlcpy(out, t ? (const char *)t : "", size);
}

static int
sq_connect(sqlite3 **out, const char *path, const char *sync, bool read_only, struct hl_err *err)
{
	sqlite3 *db = NULL;
	char sql[256];
	int rc;

	rc = sqlite3_open_v2(
	        path, &db,
	        (read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
	                SQLITE_OPEN_NOMUTEX,
	        hl_sq_vfs());
	if (rc != SQLITE_OK) {
		rc = hl_err_set(err, HL_EDB, "cannot open '%s': %s", path,
		                db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return rc;
	}
	sqlite3_busy_timeout(db, 5000);
	if (read_only) {
		/* a WAL reader beside the server that owns the store */
		rc = hl_sq_exec(db, "PRAGMA query_only=1; PRAGMA temp_store=MEMORY;", err);
		if (rc < 0) {
			hl_err_wrap(err, "'%s'", path);
			sqlite3_close(db);
			return rc;
		}
		*out = db;
		return 0;
	}
	snprintf(sql, sizeof(sql),
	         "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; PRAGMA foreign_keys=OFF;"
	         " PRAGMA temp_store=MEMORY; PRAGMA journal_size_limit=67108864;",
	         sync);
	rc = hl_sq_exec(db, sql, err);
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
	if (b->lockfd >= 0)
		close(b->lockfd); /* frees the server lock */
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
		if (!b->read_only)
			sqlite3_wal_checkpoint_v2(b->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL,
			                          NULL);
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
sqlite3_stmt *
hl_sq_prepare(struct hl_store_backend *b, const char *sql)
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

void
hl_sq_done(struct hl_store_backend *b, sqlite3_stmt *st)
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
		return hl_sq_fail(err, b->db, "schema version");
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : hl_sq_fail(err, b->db, "schema version");
}

static int
sq_migrate(struct hl_store_backend *b, int *applied, struct hl_err *err)
{
	const size_t n_mig = hl_store_sqlite_migrations_count;
	char sql[160];
	int version = 0, v, n = 0, rc;
	size_t i;

	rc = hl_sq_exec(b->db,
	                "CREATE TABLE IF NOT EXISTS schema_migrations ("
	                " version INTEGER PRIMARY KEY, applied_ms BIGINT NOT NULL)",
	                err);
	if (rc < 0)
		return rc;
	if ((rc = sq_schema_version(b, &version, err)) < 0)
		return rc;
	if (version > (int)n_mig)
		return hl_err_set(err, HL_EDB,
		                  "the store's schema version %d is newer than this healer's (%zu)",
		                  version, n_mig);
	for (i = 0; i < n_mig; i++) {
		const struct hl_embed *m = &hl_store_sqlite_migrations[i];

		v = (int)i + 1;
		if (hl_store_migration_version(m->path) != v)
			return hl_err_set(err, HL_EINTERNAL, "migration '%s' is out of sequence",
			                  m->path);
		rc = hl_sq_exec(b->db, "BEGIN IMMEDIATE", err);
		if (rc < 0)
			return rc;
		/* Re-read inside the write transaction: another process may
		 * have migrated meanwhile. */
		rc = sq_schema_version(b, &version, err);
		if (rc < 0 || version >= v) {
			hl_sq_exec(b->db, "ROLLBACK", NULL);
			if (rc < 0)
				return rc;
			continue;
		}
		rc = hl_sq_exec(b->db, m->data, err);
		if (rc == 0) {
			snprintf(sql, sizeof(sql),
			         "INSERT INTO schema_migrations (version, applied_ms)"
			         " VALUES (%d, %lld)",
			         v, (long long)hl_time_wall_ms());
			rc = hl_sq_exec(b->db, sql, err);
		}
		if (rc == 0)
			rc = hl_sq_exec(b->db, "COMMIT", err);
		if (rc < 0) {
			hl_sq_exec(b->db, "ROLLBACK", NULL);
			return hl_err_wrap(err, "migration '%s'", m->path);
		}
		n++;
	}
	/* the open migrates before the store asks (its statements need the
	 * tables): those are reported to the first caller that asks */
	if (applied) {
		*applied = n + b->migrated_unasked;
		b->migrated_unasked = 0;
	} else {
		b->migrated_unasked += n;
	}
	return 0;
}

static int
sq_wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
	struct hl_store_backend *b = arg;

	if (pages >= SQ_CHECKPOINT_INLINE)
		sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	else if (pages >= SQ_CHECKPOINT_PAGES) {
		/* once per checkpoint: a wake-up per commit kept the
		 * checkpointer (and the futex) busy while it waits out its gap */
		pthread_mutex_lock(&b->ck_lock);
		if (!b->ck_wanted) {
			b->ck_wanted = true;
			pthread_cond_signal(&b->ck_cond);
		}
		pthread_mutex_unlock(&b->ck_lock);
	}
	return SQLITE_OK;
}

/* Checkpoints when the WAL grew past SQ_CHECKPOINT_PAGES or every 2 s, and
 * at most every SQ_CHECKPOINT_GAP_MS: each one costs two flushes, which
 * compete with the intake flushes for the disk. Under a steady load it
 * never quite catches up with the writer, whose own (inline) checkpoint is
 * what lets the WAL start over; the gap is short so that this one has the
 * bulk of the copying done and the writer only the tail (with a 500 ms gap
 * the committer did most of it, inside its batches). */
static void *
sq_checkpointer(void *arg)
{
	struct hl_store_backend *b = arg;
	struct timespec ts;

	pthread_setname_np(pthread_self(), "hl-checkpoint");
	pthread_mutex_lock(&b->ck_lock);
	while (!b->ck_stop) {
		hl_time_deadline(&ts, CLOCK_MONOTONIC, SQ_CHECKPOINT_GAP_MS);
		while (!b->ck_stop && pthread_cond_timedwait(&b->ck_cond, &b->ck_lock, &ts) == 0)
			;
		hl_time_deadline(&ts, CLOCK_MONOTONIC, 2000 - SQ_CHECKPOINT_GAP_MS);
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

/* One process per SQLite store: it always leads. */
static int
sq_leader(struct hl_store_backend *b, bool *leader, const char *name, const char *owner,
          int64_t ttl_ms, struct hl_err *err)
{
	*leader = true;
	return 0;
}

static int
sq_ping(struct hl_store_backend *b, struct hl_err *err)
{
	return hl_sq_exec(b->db, "SELECT 1 FROM schema_migrations LIMIT 1", err);
}

int
hl_sq_begin(struct hl_store_backend *b, const char *what, struct hl_err *err)
{
	return hl_sq_step_done(b->in_st[SQ_BEGIN]) < 0 ? hl_sq_fail(err, b->db, what) : 0;
}

int
hl_sq_commit(struct hl_store_backend *b, const char *what, struct hl_err *err)
{
	return hl_sq_step_done(b->in_st[SQ_COMMIT]) < 0 ? hl_sq_fail(err, b->db, what) : 0;
}

void
hl_sq_rollback(struct hl_store_backend *b)
{
	hl_sq_step_done(b->in_st[SQ_ROLLBACK]);
}

static const struct hl_store_ops sq_ops = {
	.conn = {
		.name = "sqlite",
		.close = sq_close,
		.migrate = sq_migrate,
		.schema_version = sq_schema_version,
		.ping = sq_ping,
		.publish = NULL,
		.lost = NULL,
		.leader = sq_leader,
	},
	.intake = {
		.recover = hl_sq_recover,
		.batch = hl_sq_intake_batch,
		.sync_log = sq_sync_log,
		.claim_next = hl_sq_claim_next,
		.renew = hl_sq_renew,
		.reap = NULL,
		.requeue = hl_sq_requeue,
		.prune = hl_sq_prune,
		.compact = hl_sq_compact,
		.finish = hl_sq_finish,
		.decision = hl_sq_decision,
		.queue_depth = hl_sq_queue_depth,
		.counts = hl_sq_counts,
		.recent = hl_sq_recent,
	},
	.ledger = {
		.task_claim = hl_sq_task_claim,
		.task_find = hl_sq_task_find,
		.task_put = hl_sq_task_put,
		.task_get = hl_sq_task_get,
		.attempt_put = hl_sq_attempt_put,
		.outcome_add = hl_sq_outcome_add,
		.task_counts = hl_sq_task_counts,
		.attempt_prompt = hl_sq_attempt_prompt,
		.task_page = hl_sq_task_page,
		.task_list = hl_sq_task_list,
		.task_waiting = hl_sq_task_waiting,
	},
	.loop = {
		.tasks_due = hl_sq_tasks_due,
		.tasks_queued = hl_sq_tasks_queued,
		.tasks_remember = hl_sq_tasks_remember,
		.task_remembered = hl_sq_task_remembered,
		.next_check = hl_sq_next_check,
		.task_lease = hl_sq_task_lease,
		.task_release = hl_sq_task_release,
		.attempt_of_coderun = hl_sq_attempt_of_coderun,
		.task_active_for = hl_sq_task_active_for,
		.task_of_pr = hl_sq_task_of_pr,
		.tasks_of_pr = hl_sq_tasks_of_pr,
		.ci_result_add = hl_sq_ci_result_add,
		.ci_result_latest = hl_sq_ci_result_latest,
		.budget_usage = hl_sq_budget_usage,
		.attempt_begin = hl_sq_attempt_begin,
		.task_schedule = hl_sq_task_schedule,
		.attempt_outcomes = hl_sq_attempt_outcomes,
		.time_to_fix = hl_sq_time_to_fix,
		.kv_get = hl_sq_kv_get,
		.kv_put = hl_sq_kv_put,
		.kv_raise = hl_sq_kv_raise,
		.kv_prune = hl_sq_kv_prune,
	},
	.outbox = {
		.add = hl_sq_outbox_add,
		.due = hl_sq_outbox_due,
		.take = hl_sq_outbox_take,
		.renew = hl_sq_outbox_renew,
		.update = hl_sq_outbox_update,
		.counts = hl_sq_outbox_counts,
	},
	.redeliver = {
		.known = hl_sq_delivery_known,
		.claim = hl_sq_redelivery_claim,
		.finish = hl_sq_redelivery_finish,
		.release = hl_sq_redelivery_release,
	},
	.memory = {
		.put = hl_sq_memory_put,
		.similar = hl_sq_memory_similar,
		.reinforce = hl_sq_memory_reinforce,
		.count = hl_sq_memory_count,
		.agent_records = hl_sq_agent_records,
		.insight_rows = hl_sq_insight_rows,
		.insight_dedup = hl_sq_insight_dedup,
	},
};

/* One server per SQLite store: an exclusive lock on "<path>.lock",
 * held while the handle is open (and freed by the kernel if the process
 * dies). */
static int
sq_lock_server(struct hl_store_backend *b, const char *path, struct hl_err *err)
{
	char lockpath[4200];
	int rc;

	snprintf(lockpath, sizeof(lockpath), "%s.lock", path);
	if ((rc = hl_file_lock(&b->lockfd, lockpath, err)) == -HL_ECONFLICT)
		return hl_err_set(err, HL_EDB,
		                  "another healer server is running on '%s' (it holds '%s');"
		                  " stop it, or give this one another data directory",
		                  path, lockpath);
	if (rc < 0) {
		char why[sizeof(err->msg)];

		hl_strlcpy(why, err->msg, sizeof(why));
		return hl_err_set(err, HL_EDB, "cannot lock the store: %s", why);
	}
	return 0;
}

/* A read-only handle: the schema must be there, and not newer. */
static int
sq_check_schema(struct hl_store_backend *b, const char *path, struct hl_err *err)
{
	int version = 0, rc;

	if ((rc = sq_schema_version(b, &version, err)) < 0)
		return hl_err_wrap(err, "no healer store at '%s'", path);
	if (version > (int)hl_store_sqlite_migrations_count)
		return hl_err_set(err, HL_EDB,
		                  "the store's schema version %d is newer than this healer's (%zu)",
		                  version, hl_store_sqlite_migrations_count);
	return 0;
}

int
hl_store_sqlite_open(struct hl_store_backend **out, const struct hl_store_ops **ops,
                     const char *path, unsigned flags, const struct hl_store_sink *sink,
                     struct hl_err *err)
{
	struct hl_store_backend *b;
	char walpath[4096];
	struct stat stbuf;
	bool ro = flags & HL_STORE_READ_ONLY;
	int rc, i;

	if (strlen(path) + 5 > sizeof(walpath))
		return hl_err_set(err, HL_EINVAL, "store path too long");
	/* SQLite takes an empty file for a new database: a healer.db that was
	 * truncated (or a stray touch) would silently start from nothing.
	 * Only a file that does not exist yet is created here; one another
	 * healer has just created is empty until its first write, within
	 * milliseconds (two `healer migrate` on a new data directory), so an
	 * empty file is given two seconds to fill first. */
	for (i = 0;
	     i < 100 && stat(path, &stbuf) == 0 && S_ISREG(stbuf.st_mode) && stbuf.st_size == 0;
	     i++)
		(void)nanosleep(&(struct timespec){ .tv_nsec = 20 * 1000 * 1000 }, NULL);
	if (i == 100)
		return hl_err_set(err, HL_EDB,
		                  "'%s' is an empty file, not a healer store (truncated?); move it"
		                  " away to start a new store",
		                  path);
	b = calloc(1, sizeof(*b));
	if (!b)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	b->walfd = -1;
	b->lockfd = -1;
	b->read_only = ro;
	pthread_mutex_init(&b->ck_lock, NULL);
	hl_cond_init_mono(&b->ck_cond);
	if ((flags & HL_STORE_SERVER) && !ro && (rc = sq_lock_server(b, path, err)) < 0)
		goto fail;
	rc = sq_connect(&b->db, path, "NORMAL", ro, err);
	if (rc == 0)
		rc = hl_sq_memory_register(b->db, err);
	if (rc == 0 && ro) {
		if ((rc = sq_check_schema(b, path, err)) < 0)
			goto fail;
		goto prepare;
	}
	if (rc == 0)
		rc = sq_connect(&b->ck, path, "FULL", false, err);
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
prepare:
	for (i = 0; i < SQ_MAX; i++) {
		if (sqlite3_prepare_v3(b->db, hl_sq_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
		                       &b->in_st[i], NULL) != SQLITE_OK) {
			rc = hl_sq_fail(err, b->db, "prepare");
			goto fail;
		}
	}
	if (!ro && (rc = hl_sq_memory_upgrade(b, err)) < 0)
		goto fail;
	*out = b;
	*ops = &sq_ops;
	return 0;
fail:
	sq_close(b);
	return rc;
}