/*
 * test_store.c - unit tests for the durable store (src/store/): embedded
 * migrations, delivery and event-key deduplication, group-committed
 * concurrent intakes, claim/finish, crash recovery and counters, leases,
 * replays, task lists, leadership; and, on PostgreSQL, two store handles
 * on one database racing (replicas): the unique constraints decide.
 *
 * The same tests run on both backends: on SQLite by default, on
 * PostgreSQL when HEALER_TEST_PG_SOCKET / _PORT name a throw-away server
 * (tests/pg/pgrun.py); each test then gets a database of its own. What
 * a test checks in the store's tables directly goes through raw_exec /
 * raw_row, with each backend's SQL where the dialects differ.
 */
#include "base/clock.h"
#include "base/str.h"
#include "store/redeliver.h"
#include "store/store.h"
#include "store/store_impl.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <sqlite3.h>
/* cmocka.h needs setjmp.h, stdarg.h and stddef.h first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct fixture {
	char dir[64];
	char db[64]; /* PostgreSQL: the test's database */
	char url[512];
	struct hl_store *s;
};

static bool pg_mode; /* the tests run on PostgreSQL */

/* libpq settings of a database of the test server. */
static void
pg_conninfo(char *out, size_t size, const char *db)
{
	snprintf(out, size, "host=%s port=%s user=postgres dbname=%s",
	         getenv("HEALER_TEST_PG_SOCKET"), getenv("HEALER_TEST_PG_PORT"), db);
}

static PGconn *
pg_session(const char *db)
{
	char ci[512];
	PGconn *c;

	pg_conninfo(ci, sizeof(ci), db);
	c = PQconnectdb(ci);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "connect '%s': %s", db, PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	return c;
}

/* Runs sql in db (a statement without results); 0 or -1. */
static int
pg_run(const char *db, const char *sql)
{
	PGconn *c = pg_session(db);
	PGresult *r;
	int rc;

	if (!c)
		return -1;
	r = PQexec(c, sql);
	rc = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK ? 0 : -1;
	if (rc < 0)
		fprintf(stderr, "%s: %s", sql, PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
	return rc;
}

static char pg_template[64]; /* a migrated database the tests' ones copy */

/* A fresh database named into out (PostgreSQL): a copy of the migrated
 * template once there is one (opening it then finds nothing to do). */
static int
pg_new_database_from(char *out, size_t size, const char *tmpl)
{
	static int n;
	char sql[256];

	snprintf(out, size, "hl_store_%ld_%d", (long)getpid(), n++);
	snprintf(sql, sizeof(sql), "CREATE DATABASE \"%s\" TEMPLATE \"%s\" STRATEGY FILE_COPY", out,
	         tmpl);
	return pg_run("postgres", sql);
}

static int
pg_new_database(char *out, size_t size)
{
	return pg_new_database_from(out, size, pg_template[0] ? pg_template : "template1");
}

/* Migrates a fresh database once, as the template of the tests' ones. */
static int
pg_make_template(void)
{
	struct hl_store *s = NULL;
	struct hl_err err = HL_ERR_INIT;
	char db[64], ci[512];

	if (pg_new_database(db, sizeof(db)) < 0)
		return -1;
	pg_conninfo(ci, sizeof(ci), db);
	if (hl_store_open(&s, ci, &err) < 0) {
		fprintf(stderr, "open: %s\n", err.msg);
		return -1;
	}
	hl_store_close(s);
	hl_strlcpy(pg_template, db, sizeof(pg_template));
	return 0;
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct hl_err err = HL_ERR_INIT;

	strcpy(f->dir, "/tmp/hl-test-store-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	if (pg_mode) {
		if (pg_new_database(f->db, sizeof(f->db)) < 0)
			return -1;
		pg_conninfo(f->url, sizeof(f->url), f->db);
	} else {
		snprintf(f->url, sizeof(f->url), "sqlite:%s/healer.db", f->dir);
	}
	if (hl_store_open(&f->s, f->url, &err) < 0) {
		fprintf(stderr, "open: %s\n", err.msg);
		return -1;
	}
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[160];

	hl_store_close(f->s);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	if (pg_mode) {
		snprintf(cmd, sizeof(cmd), "DROP DATABASE \"%s\" WITH (FORCE)", f->db);
		if (pg_run("postgres", cmd) < 0)
			return -1;
	}
	free(f);
	return 0;
}

/* Runs sql on the fixture's store directly (outside the store); 0 or -1. */
static int
raw_exec(struct fixture *f, const char *sql)
{
	char path[128];
	sqlite3 *db;
	int rc;

	if (pg_mode)
		return pg_run(f->db, sql);
	snprintf(path, sizeof(path), "%s/healer.db", f->dir);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		return -1;
	sqlite3_busy_timeout(db, 5000);
	rc = sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
	sqlite3_close(db);
	return rc;
}

#define RAW_COLS 4

/* The first row of a query on the fixture's store as text (NULL as ""),
 * up to RAW_COLS columns; 0 when there was a row, else -1. */
static int
raw_row(struct fixture *f, const char *sql, char out[RAW_COLS][256])
{
	char path[128];
	sqlite3 *db;
	sqlite3_stmt *st = NULL;
	int rc = -1, i;

	memset(out, 0, RAW_COLS * 256);
	if (pg_mode) {
		PGconn *c = pg_session(f->db);
		PGresult *r = c ? PQexec(c, sql) : NULL;

		if (r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0) {
			for (i = 0; i < PQnfields(r) && i < RAW_COLS; i++)
				snprintf(out[i], 256, "%s", PQgetvalue(r, 0, i));
			rc = 0;
		}
		PQclear(r);
		PQfinish(c);
		return rc;
	}
	snprintf(path, sizeof(path), "%s/healer.db", f->dir);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		for (i = 0; i < sqlite3_column_count(st) && i < RAW_COLS; i++) {
			const unsigned char *t = sqlite3_column_text(st, i);
			snprintf(out[i], 256, "%s", t ? (const char *)t : "");
		}
		rc = 0;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

/* The number of migrations of the backend under test. */
static int
migrations_count(void)
{
	return (int)(pg_mode ? hl_store_postgres_migrations_count
	                     : hl_store_sqlite_migrations_count);
}

static void
reopen(struct fixture *f)
{
	struct hl_err err = HL_ERR_INIT;

	hl_store_close(f->s);
	f->s = NULL;
	assert_int_equal(hl_store_open(&f->s, f->url, &err), 0);
}

/* Finishes a claimed delivery the way the pipeline does. */
static int
finish(struct hl_store *s, const char *id, enum hl_delivery_state state, const char *reason,
       const char *event_json, struct hl_err *err)
{
	return hl_store_finish_delivery(s, id,
	                                &(struct hl_delivery_result){ .state = state,
	                                                              .reason = reason,
	                                                              .event_json = event_json },
	                                err);
}

static struct hl_delivery_in
delivery(const char *id, const char *key, const char *skip)
{
	struct hl_delivery_in in = {
		.delivery_id = id,
		.hook_id = "42",
		.source = "webhook",
		.event_name = "workflow_job",
		.action = "completed",
		.headers_json = "{\"X-GitHub-Event\":\"workflow_job\"}",
		.body = "{\"action\":\"completed\"}",
		.body_len = 22,
		.dedup_key = key,
		.task_id = key ? "task-for-key" : "task-own",
		.skip_reason = skip,
	};
	return in;
}

static struct hl_intake_answer
insert(struct fixture *f, const char *id, const char *key, const char *skip)
{
	struct hl_delivery_in in = delivery(id, key, skip);
	struct hl_intake_answer a;
	struct hl_err err = HL_ERR_INIT;

	memset(&a, 0xaa, sizeof(a));
	assert_int_equal(hl_store_insert_delivery(f->s, &a, &in, &err), 0);
	return a;
}

static void
test_store_migrations_idempotent(void **state)
{
	struct fixture *f = *state;
	struct hl_err err = HL_ERR_INIT;
	int version = 0, applied = -1;

	assert_int_equal(hl_store_schema_version(f->s, &version, &err), 0);
	assert_int_equal(version, migrations_count());
	assert_int_equal(hl_store_migrate(f->s, &applied, &err), 0);
	assert_int_equal(applied, 0);
	insert(f, "d-keep", NULL, NULL);
	reopen(f);
	assert_int_equal(hl_store_migrate(f->s, &applied, &err), 0);
	assert_int_equal(applied, 0);
	assert_int_equal(hl_store_schema_version(f->s, &version, &err), 0);
	assert_int_equal(version, migrations_count());
	/* The data survived the reopen. */
	assert_int_equal(insert(f, "d-keep", NULL, NULL).status, HL_INTAKE_DUPLICATE);
}

static void
test_store_open_rejects_bad_urls(void **state)
{
	struct hl_store *s = NULL;
	struct hl_err err = HL_ERR_INIT;

	assert_int_equal(hl_store_open(&s, "mysql://x", &err), -HL_EINVAL);
	assert_int_equal(hl_store_open(&s, "sqlite:", &err), -HL_EINVAL);
	assert_int_equal(hl_store_open(&s, "sqlite:/nonexistent-dir/x/healer.db", &err), -HL_EDB);
	/* a database that is not there fails at once, without showing the
	 * password of its URL */
	assert_int_equal(hl_store_open(&s,
	                               "postgres://healer:s3cret-pw@127.0.0.1:1/healer"
	                               "?connect_timeout=2",
	                               &err),
	                 -HL_EDB);
	assert_non_null(strstr(err.msg, "127.0.0.1"));
	assert_null(strstr(err.msg, "s3cret-pw"));
	assert_int_equal(
	        hl_store_open(&s, "host=127.0.0.1 port=1 password=s3cret-pw dbname=x", &err),
	        -HL_EDB);
	assert_null(strstr(err.msg, "s3cret-pw"));
	assert_null(s);
}

static void
test_store_duplicate_delivery_gets_first_answer(void **state)
{
	struct fixture *f = *state;
	struct hl_intake_answer a = insert(f, "d-1", NULL, NULL);
	struct hl_intake_answer b;

	assert_int_equal(a.status, HL_INTAKE_ACCEPTED);
	assert_string_equal(a.task_id, "task-own");
	assert_string_equal(a.reason, "");
	b = insert(f, "d-1", NULL, NULL);
	assert_int_equal(b.status, HL_INTAKE_DUPLICATE);
	assert_int_equal(b.original, HL_INTAKE_ACCEPTED);
	assert_string_equal(b.task_id, "task-own");
	assert_string_equal(b.reason, "duplicate_delivery");

	/* A skipped delivery sent again is a duplicate whose original was skipped. */
	a = insert(f, "d-skip", NULL, "not_failure");
	assert_int_equal(a.status, HL_INTAKE_SKIPPED);
	assert_string_equal(a.reason, "not_failure");
	assert_string_equal(a.task_id, "");
	b = insert(f, "d-skip", NULL, "not_failure");
	assert_int_equal(b.status, HL_INTAKE_DUPLICATE);
	assert_int_equal(b.original, HL_INTAKE_SKIPPED);
}

static void
test_store_event_key_duplicate(void **state)
{
	struct fixture *f = *state;
	struct hl_intake_answer a, b, c;
	int64_t depth = -1;

	a = insert(f, "org-hook-1", "o/r:run:1:job:2:completed", NULL);
	assert_int_equal(a.status, HL_INTAKE_ACCEPTED);
	b = insert(f, "repo-hook-1", "o/r:run:1:job:2:completed", NULL);
	assert_int_equal(b.status, HL_INTAKE_DUPLICATE);
	assert_string_equal(b.reason, "duplicate_event");
	assert_string_equal(b.duplicate_of, "org-hook-1");
	assert_string_equal(b.task_id, a.task_id);
	/* A different job is a different event. */
	c = insert(f, "org-hook-2", "o/r:run:1:job:3:completed", NULL);
	assert_int_equal(c.status, HL_INTAKE_ACCEPTED);
	/* Skipped events do not claim the key. */
	c = insert(f, "org-hook-3", "o/r:run:9:job:9:completed", "bot_sender");
	assert_int_equal(c.status, HL_INTAKE_SKIPPED);
	c = insert(f, "org-hook-4", "o/r:run:9:job:9:completed", NULL);
	assert_int_equal(c.status, HL_INTAKE_ACCEPTED);
	assert_int_equal(hl_store_queue_depth(f->s, &depth, NULL), 0);
	assert_int_equal(depth, 3);
}

static void
test_store_rejects_bad_delivery_id(void **state)
{
	struct fixture *f = *state;
	char longid[HL_DELIVERY_ID_MAX + 2];
	struct hl_delivery_in in = delivery("", NULL, NULL);
	struct hl_intake_answer a;
	struct hl_err err = HL_ERR_INIT;

	assert_int_equal(hl_store_insert_delivery(f->s, &a, &in, &err), -HL_EINVAL);
	memset(longid, 'x', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	in.delivery_id = longid;
	assert_int_equal(hl_store_insert_delivery(f->s, &a, &in, &err), -HL_EINVAL);
	/* The batch goes on: a good one after a bad one is stored. */
	assert_int_equal(insert(f, "d-good", NULL, NULL).status, HL_INTAKE_ACCEPTED);
}

static void
test_store_claim_finish_once(void **state)
{
	struct fixture *f = *state;
	struct hl_delivery_record *d = NULL, *e = NULL, *e2;
	struct hl_err err = HL_ERR_INIT;
	int64_t depth = -1;

	insert(f, "d-a", NULL, NULL);
	insert(f, "d-b", NULL, NULL);
	insert(f, "d-c", NULL, "ping");
	assert_int_equal(hl_store_claim_next(f->s, &d, &err), 0);
	assert_string_equal(d->delivery_id, "d-a");
	assert_string_equal(d->event_name, "workflow_job");
	assert_string_equal(d->action, "completed");
	assert_string_equal(d->hook_id, "42");
	assert_int_equal(d->body_len, 22);
	assert_string_equal(d->body, "{\"action\":\"completed\"}");
	assert_int_equal(d->claims, 1);
	assert_int_equal(hl_store_claim_next(f->s, &e, &err), 0);
	assert_string_equal(e->delivery_id, "d-b");
	/* The skipped one is never claimed. */
	e2 = NULL;
	assert_int_equal(hl_store_claim_next(f->s, &e2, &err), -HL_ENOTFOUND);
	assert_null(e2);
	assert_int_equal(finish(f->s, "d-a", HL_DELIVERY_PROCESSED, "recorded",
	                        "{\"kind\":\"workflow_job\"}", &err),
	                 0);
	assert_int_equal(finish(f->s, "d-a", HL_DELIVERY_PROCESSED, "recorded", NULL, &err),
	                 -HL_ECONFLICT);
	assert_int_equal(finish(f->s, "d-b", HL_DELIVERY_PROCESSING, NULL, NULL, &err), -HL_EINVAL);
	/* Giving one back re-queues it. */
	assert_int_equal(finish(f->s, "d-b", HL_DELIVERY_RECEIVED, NULL, NULL, &err), 0);
	assert_int_equal(hl_store_queue_depth(f->s, &depth, NULL), 0);
	assert_int_equal(depth, 1);
	hl_delivery_record_free(e);
	e = NULL;
	assert_int_equal(hl_store_claim_next(f->s, &e, &err), 0);
	assert_string_equal(e->delivery_id, "d-b");
	assert_int_equal(e->claims, 2);
	assert_int_equal(finish(f->s, "d-b", HL_DELIVERY_FAILED, "bad_payload", NULL, &err), 0);
	assert_int_equal(hl_store_queue_depth(f->s, &depth, NULL), 0);
	assert_int_equal(depth, 0);
	hl_delivery_record_free(e);
	hl_delivery_record_free(d);
}

static void
test_store_recovers_processing_after_reopen(void **state)
{
	struct fixture *f = *state;
	struct hl_delivery_record *d = NULL;
	struct hl_err err = HL_ERR_INIT;
	int64_t requeued = -1, depth = -1, total;
	int i;

	insert(f, "d-crash", NULL, NULL);
	insert(f, "d-waiting", NULL, NULL);
	assert_int_equal(hl_store_claim_next(f->s, &d, &err), 0);
	assert_string_equal(d->delivery_id, "d-crash");
	hl_delivery_record_free(d);
	d = NULL;
	/* The process "dies" here: closed without finishing. */
	reopen(f);
	/* on PostgreSQL the dead session's liveness lock is free only once
	 * the server has ended that session, a moment after the close: its
	 * claim comes back at one of the first recoveries, exactly once */
	for (i = 0, total = 0; i < 250 && total == 0; i++) {
		if (i)
			usleep(20000);
		assert_int_equal(hl_store_recover(f->s, &requeued, &err), 0);
		total += requeued;
	}
	assert_int_equal(total, 1);
	assert_int_equal(hl_store_queue_depth(f->s, &depth, NULL), 0);
	assert_int_equal(depth, 2);
	assert_int_equal(hl_store_claim_next(f->s, &d, &err), 0);
	assert_string_equal(d->delivery_id, "d-crash");
	assert_int_equal(d->claims, 2);
	assert_int_equal(
	        finish(f->s, d->delivery_id, HL_DELIVERY_PROCESSED, "recorded", NULL, &err), 0);
	hl_delivery_record_free(d);
	assert_int_equal(hl_store_recover(f->s, &requeued, &err), 0);
	assert_int_equal(requeued, 0);
}

/* An empty healer.db is not a new store: refused, and left as it was. */
static void
test_store_refuses_an_empty_file(void **state)
{
	struct hl_err err = HL_ERR_INIT;
	struct hl_store *s = NULL;
	char dir[] = "/tmp/hl-test-empty-XXXXXX", path[128], url[160];
	struct stat st;
	FILE *fp;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/healer.db", dir);
	snprintf(url, sizeof(url), "sqlite:%s", path);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fclose(fp);
	assert_int_equal(hl_store_open(&s, url, &err), -HL_EDB);
	assert_null(s);
	assert_non_null(strstr(err.msg, "empty"));
	assert_non_null(strstr(err.msg, path));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 0);
	/* a store healer creates itself is fine */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(hl_store_open(&s, url, &err), 0);
	hl_store_close(s);
	s = NULL;
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_size > 0);
	assert_int_equal(hl_store_open(&s, url, &err), 0);
	hl_store_close(s);
	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	assert_int_equal(system(path), 0);
}

struct count_sum {
	int64_t received, processed, skipped_ping, total;
};

static void
count_cb(void *arg, const char *event, const char *state, const char *reason, int64_t n)
{
	struct count_sum *c = arg;

	assert_string_equal(event, "workflow_job");
	c->total += n;
	if (strcmp(state, "received") == 0)
		c->received += n;
	if (strcmp(state, "processed") == 0)
		c->processed += n;
	if (strcmp(state, "skipped") == 0 && strcmp(reason, "ping") == 0)
		c->skipped_ping += n;
}

static void
test_store_counters_follow_states(void **state)
{
	struct fixture *f = *state;
	struct hl_delivery_record *d = NULL;
	struct count_sum c = { 0 };
	struct hl_delivery_summary recent[2];
	size_t n_recent = 0;

	insert(f, "c-1", NULL, NULL);
	insert(f, "c-2", NULL, NULL);
	insert(f, "c-3", NULL, "ping");
	insert(f, "c-3", NULL, "ping"); /* duplicate delivery: not stored twice */
	assert_int_equal(hl_store_claim_next(f->s, &d, NULL), 0);
	assert_int_equal(
	        finish(f->s, d->delivery_id, HL_DELIVERY_PROCESSED, "recorded", NULL, NULL), 0);
	hl_delivery_record_free(d);
	assert_int_equal(hl_store_counts(f->s, count_cb, &c, NULL), 0);
	assert_int_equal(c.total, 3);
	assert_int_equal(c.received, 1);
	assert_int_equal(c.processed, 1);
	assert_int_equal(c.skipped_ping, 1);
	/* Recovery rebuilds the same counters from the rows. */
	reopen(f);
	assert_int_equal(hl_store_recover(f->s, NULL, NULL), 0);
	memset(&c, 0, sizeof(c));
	assert_int_equal(hl_store_counts(f->s, count_cb, &c, NULL), 0);
	assert_int_equal(c.total, 3);
	assert_int_equal(c.processed, 1);
	assert_int_equal(hl_store_recent_deliveries(f->s, recent, 2, &n_recent, NULL), 0);
	assert_int_equal(n_recent, 2);
	assert_string_equal(recent[0].delivery_id, "c-3");
}

/* Retention (hl_store_prune): ended deliveries received before the cut go,
 * oldest first and at most the batch, with their normalized events and
 * event keys; a delivery still waiting and a newer one stay; the counters
 * count the removed ones still, also when rebuilt from the rows; the event
 * of a removed key is new again. */
static void
test_store_prune(void **state)
{
	struct fixture *f = *state;
	struct hl_delivery_record *d = NULL;
	struct hl_err err = HL_ERR_INIT;
	struct count_sum c = { 0 };
	struct hl_intake_answer a;
	int64_t removed = -1, cut;
	bool known = true;
	char row[RAW_COLS][256];

	insert(f, "p-1", "k-p1", NULL);
	insert(f, "p-2", NULL, "ping");
	insert(f, "p-3", NULL, NULL);
	assert_int_equal(hl_store_claim_next(f->s, &d, &err), 0);
	assert_string_equal(d->delivery_id, "p-1");
	assert_int_equal(finish(f->s, "p-1", HL_DELIVERY_PROCESSED, "recorded",
	                        "{\"event\":\"workflow_job\"}", &err),
	                 0);
	hl_delivery_record_free(d);
	usleep(5000);
	cut = hl_time_wall_ms();
	usleep(5000);
	insert(f, "p-4", NULL, "ping");

	assert_int_equal(hl_store_prune(f->s, &removed, cut, 1, &err), 0);
	assert_int_equal(removed, 1);
	assert_int_equal(hl_store_delivery_known(f->s, &known, "p-1", &err), 0);
	assert_false(known);
	assert_int_equal(raw_row(f, "SELECT COUNT(*) FROM events", row), 0);
	assert_string_equal(row[0], "0");
	assert_int_equal(hl_store_prune(f->s, &removed, cut, 1, &err), 0);
	assert_int_equal(removed, 1); /* p-2 */
	assert_int_equal(hl_store_prune(f->s, &removed, cut, 100, &err), 0);
	assert_int_equal(removed, 0); /* p-3 waits, p-4 is newer */
	assert_int_equal(hl_store_delivery_known(f->s, &known, "p-3", &err), 0);
	assert_true(known);
	assert_int_equal(hl_store_delivery_known(f->s, &known, "p-4", &err), 0);
	assert_true(known);
	assert_int_equal(raw_row(f, "SELECT COUNT(*) FROM deliveries", row), 0);
	assert_string_equal(row[0], "2");
	assert_int_equal(hl_store_prune(f->s, &removed, cut, 0, &err), -HL_EINVAL);

	assert_int_equal(hl_store_counts(f->s, count_cb, &c, NULL), 0);
	assert_int_equal(c.total, 4);
	assert_int_equal(c.processed, 1);
	assert_int_equal(c.skipped_ping, 2);
	assert_int_equal(c.received, 1);
	reopen(f);
	assert_int_equal(hl_store_recover(f->s, NULL, NULL), 0);
	memset(&c, 0, sizeof(c));
	assert_int_equal(hl_store_counts(f->s, count_cb, &c, NULL), 0);
	assert_int_equal(c.total, 4);
	assert_int_equal(c.processed, 1);
	assert_int_equal(c.skipped_ping, 2);
	assert_int_equal(c.received, 1);

	a = insert(f, "p-5", "k-p1", NULL);
	assert_int_equal(a.status, HL_INTAKE_ACCEPTED);
}

/* The size of the fixture's SQLite file after a clean close (the WAL
 * folded in). */
static int64_t
sqlite_file_size(struct fixture *f)
{
	char path[128];
	struct stat st;

	reopen(f);
	snprintf(path, sizeof(path), "%s/healer.db", f->dir);
	assert_int_equal(stat(path, &st), 0);
	return (int64_t)st.st_size;
}

/* After retention the free space goes back to the file system when the
 * SQLite file was converted to auto_vacuum incremental (offline): it
 * shrinks. A store as healer creates it keeps its pages for reuse (no
 * page bookkeeping on intake), and PostgreSQL gives nothing back here
 * (its autovacuum reuses the space). */
static void
test_store_compact_gives_space_back(void **state)
{
	struct fixture *f = *state;
	struct hl_delivery_record *d = NULL;
	struct hl_err err = HL_ERR_INIT;
	int64_t removed = 0, freed = -1, total = 0, full = 0, after;
	static char body[16384 + 1];
	char id[32], row[RAW_COLS][256];
	int i, k;

	if (!pg_mode) {
		assert_int_equal(raw_row(f, "PRAGMA auto_vacuum", row), 0);
		assert_string_equal(row[0], "0"); /* none: intake pays nothing */
		assert_int_equal(hl_store_compact(f->s, &freed, 64, &err), 0);
		assert_int_equal(freed, 0);
		/* the operator's conversion, with the server stopped */
		hl_store_close(f->s);
		f->s = NULL;
		assert_int_equal(raw_exec(f, "PRAGMA auto_vacuum=INCREMENTAL; VACUUM"), 0);
		reopen(f);
		assert_int_equal(raw_row(f, "PRAGMA auto_vacuum", row), 0);
		assert_string_equal(row[0], "2"); /* incremental */
	}
	srand(7);
	for (i = 0; i < 300; i++) {
		struct hl_delivery_in in;

		/* random hex: LZ4 does not shrink it */
		for (k = 0; k < (int)sizeof(body) - 1; k++)
			body[k] = "0123456789abcdef"[rand() % 16];
		snprintf(id, sizeof(id), "c-%d", i);
		in = delivery(id, NULL, NULL);
		in.body = body;
		in.body_len = sizeof(body) - 1;
		assert_int_equal(
		        hl_store_insert_delivery(f->s, &(struct hl_intake_answer){ 0 }, &in, &err),
		        0);
		assert_int_equal(hl_store_claim_next(f->s, &d, &err), 0);
		assert_int_equal(
		        finish(f->s, d->delivery_id, HL_DELIVERY_PROCESSED, "recorded", NULL, &err),
		        0);
		hl_delivery_record_free(d);
	}
	if (!pg_mode)
		full = sqlite_file_size(f);
	assert_int_equal(hl_store_prune(f->s, &removed, hl_time_wall_ms() + 1000, 1000, &err), 0);
	assert_int_equal(removed, 300);
	do {
		assert_int_equal(hl_store_compact(f->s, &freed, 64, &err), 0);
		total += freed;
	} while (freed > 0);
	assert_int_equal(hl_store_compact(f->s, &freed, 0, &err), -HL_EINVAL);
	if (pg_mode) {
		assert_int_equal(total, 0);
		return;
	}
	after = sqlite_file_size(f);
	/* 300 x 16 KiB went; the file is smaller by about that */
	assert_true(total >= 4 * 1024 * 1024);
	assert_true(full - after >= 4 * 1024 * 1024);
	assert_int_equal(hl_store_compact(f->s, &freed, 64, &err), 0);
	assert_int_equal(freed, 0);
}

/* On PostgreSQL a delivery's (already compressed) body stays in its row up
 * to about a page: TOAST neither compresses it again nor moves it out of
 * line (storage MAIN and toast_tuple_target, migrations 0014 and 0015). */
static void
test_store_bodies_stay_inline(void **state)
{
	struct fixture *f = *state;
	struct hl_err err = HL_ERR_INIT;
	struct hl_delivery_in in = delivery("inline-1", NULL, NULL);
	static char body[6000 + 1];
	char row[RAW_COLS][256], sql[320];
	size_t k;

	if (!pg_mode)
		return; /* SQLite has no TOAST */
	srand(11);
	for (k = 0; k < sizeof(body) - 1; k++)
		body[k] = "0123456789abcdef"[rand() % 16];
	in.body = body;
	in.body_len = sizeof(body) - 1;
	assert_int_equal(hl_store_insert_delivery(f->s, &(struct hl_intake_answer){ 0 }, &in, &err),
	                 0);
	assert_int_equal(raw_row(f,
	                         "SELECT reltoastrelid::regclass FROM pg_class"
	                         " WHERE relname = 'deliveries'",
	                         row),
	                 0);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", row[0]);
	assert_int_equal(raw_row(f, sql, row), 0);
	assert_string_equal(row[0], "0");
	assert_int_equal(raw_row(f,
	                         "SELECT pg_column_size(body) >= 6000 FROM deliveries"
	                         " WHERE delivery_id = 'inline-1'",
	                         row),
	                 0);
	assert_string_equal(row[0], "t"); /* stored as it came, not compressed again */
}

static void
count_map_cb(void *arg, const char *event, const char *state, const char *reason, int64_t n)
{
	char key[256];

	snprintf(key, sizeof(key), "%s|%s|%s", event, state, reason);
	json_object_set_new(arg, key, json_integer(n));
}

struct batch_wait {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int done;
};

static void
batch_done(struct hl_intake_req *req)
{
	struct batch_wait *w = req->arg;

	pthread_mutex_lock(&w->lock);
	w->done++;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

/* Submits reqs[0..n) to the committer together and waits for every answer. */
static void
submit_batch(struct fixture *f, struct hl_intake_req *reqs, int n)
{
	struct batch_wait w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };
	int i;

	for (i = 0; i < n; i++) {
		reqs[i].done = batch_done;
		reqs[i].arg = &w;
	}
	for (i = 0; i < n; i++)
		hl_store_intake_submit(f->s, &reqs[i]);
	pthread_mutex_lock(&w.lock);
	while (w.done < n)
		pthread_cond_wait(&w.cond, &w.lock);
	pthread_mutex_unlock(&w.lock);
}

/* The counters (before: read from the store, freed here) equal the ones
 * recovery rebuilds from the rows after a reopen. */
static void
assert_counts_rebuilt_alike(struct fixture *f, json_t *before)
{
	json_t *after = json_object();

	reopen(f);
	assert_int_equal(hl_store_recover(f->s, NULL, NULL), 0);
	assert_int_equal(hl_store_counts(f->s, count_map_cb, after, NULL), 0);
	assert_true(json_equal(before, after));
	json_decref(before);
	json_decref(after);
}

#define N_BATCH 120

/* Batches sum their counter increments: with more distinct (event, state,
 * reason) kinds than the per-batch tally holds, rejected rows among them
 * and duplicates, the counters still equal the ones rebuilt from rows. */
static void
test_store_batched_counters_match_rows(void **state)
{
	struct fixture *f = *state;
	static struct hl_intake_req reqs[N_BATCH];
	static char ids[N_BATCH][32], events[N_BATCH][32];
	json_t *before = json_object();
	int i, failed = 0, stored = 0;
	json_int_t total = 0;
	const char *k;
	json_t *v;

	memset(reqs, 0, sizeof(reqs));
	for (i = 0; i < N_BATCH; i++) {
		/* every tenth id is empty: that row is rejected inside the batch */
		if (i % 10 != 3)
			snprintf(ids[i], sizeof(ids[i]), "b-%d", i % 100);
		snprintf(events[i], sizeof(events[i]), "event_%d", i % 23);
		reqs[i].in = delivery(ids[i], NULL, i % 3 == 0 ? "ping" : NULL);
		reqs[i].in.event_name = events[i];
	}
	submit_batch(f, reqs, N_BATCH);
	for (i = 0; i < N_BATCH; i++) {
		failed += reqs[i].rc < 0;
		stored += reqs[i].rc == 0 && reqs[i].answer.status != HL_INTAKE_DUPLICATE;
	}
	assert_int_equal(failed, 12); /* the empty ids */
	assert_int_equal(stored, 90); /* b-0..b-99 minus the bad ones */
	assert_int_equal(hl_store_counts(f->s, count_map_cb, before, NULL), 0);
	json_object_foreach(before, k, v) total += json_integer_value(v);
	assert_int_equal(total, stored);
	assert_true(json_object_size(before) > 16);
	assert_counts_rebuilt_alike(f, before);
}

/* No two indexes are the same (each costs every write of its table). */
static void
test_store_no_duplicate_indexes(void **state)
{
	struct fixture *f = *state;
	char row[RAW_COLS][256];

	assert_int_equal(
	        raw_row(f,
	                pg_mode ? "SELECT count(*), string_agg(d, ' | ') FROM (SELECT"
	                          " substr(indexdef, strpos(indexdef, ' ON ')) AS d FROM pg_indexes"
	                          " WHERE schemaname = current_schema() GROUP BY d"
	                          " HAVING count(*) > 1) x"
	                        : "SELECT count(*), group_concat(d, ' | ') FROM (SELECT"
	                          " substr(sql, instr(sql, ' ON ')) AS d FROM sqlite_master"
	                          " WHERE type = 'index' AND sql IS NOT NULL GROUP BY d"
	                          " HAVING count(*) > 1)",
	                row),
	        0);
	if (strcmp(row[0], "0") != 0)
		fail_msg("duplicate indexes: %s", row[1]);
}

/* Duplicates inside one batch are what they are across batches: the first
 * delivery of an event claims it and the later ones are its skipped
 * duplicates (with its id and task), a delivery id given twice is stored
 * once and answered with the first answer, a key claimed before the batch
 * is found, and a refused delivery fails alone. */
static void
test_store_batch_dedups_inside_it(void **state)
{
	struct fixture *f = *state;
	enum { N = 8 };
	static struct hl_intake_req reqs[N];
	static const char *const ids[N] = { "in-1", "in-2", "in-3", "in-3",
		                            "in-4", "in-5", "",     "in-6" };
	static const char *const keys[N] = { "key-A", "key-A", "key-B", "key-B",
		                             "key-A", "key-C", "key-D", NULL };
	static const char *const tasks[N] = { "t-1", "t-2", "t-3", "t-3b",
		                              "t-4", "t-5", "t-x", "t-6" };
	json_t *before = json_object();
	struct hl_intake_answer a0 = insert(f, "in-0", "key-C", NULL);
	char row[RAW_COLS][256];
	int i;

	assert_int_equal(a0.status, HL_INTAKE_ACCEPTED);
	memset(reqs, 0, sizeof(reqs));
	for (i = 0; i < N; i++) {
		reqs[i].in = delivery(ids[i], keys[i], NULL);
		reqs[i].in.task_id = tasks[i];
	}
	submit_batch(f, reqs, N);
	/* key-A: in-1 first, in-2 and in-4 its duplicates */
	assert_int_equal(reqs[0].rc, 0);
	assert_int_equal(reqs[0].answer.status, HL_INTAKE_ACCEPTED);
	assert_string_equal(reqs[0].answer.task_id, "t-1");
	for (i = 1; i <= 4; i += 3) {
		assert_int_equal(reqs[i].rc, 0);
		assert_int_equal(reqs[i].answer.status, HL_INTAKE_DUPLICATE);
		assert_string_equal(reqs[i].answer.reason, "duplicate_event");
		assert_string_equal(reqs[i].answer.duplicate_of, "in-1");
		assert_string_equal(reqs[i].answer.task_id, "t-1");
	}
	/* in-3 twice: stored once, the second answered as the first */
	assert_int_equal(reqs[2].answer.status, HL_INTAKE_ACCEPTED);
	assert_int_equal(reqs[3].answer.status, HL_INTAKE_DUPLICATE);
	assert_string_equal(reqs[3].answer.reason, "duplicate_delivery");
	assert_int_equal(reqs[3].answer.original, HL_INTAKE_ACCEPTED);
	assert_string_equal(reqs[3].answer.task_id, "t-3");
	/* key-C was claimed before the batch */
	assert_int_equal(reqs[5].answer.status, HL_INTAKE_DUPLICATE);
	assert_string_equal(reqs[5].answer.duplicate_of, "in-0");
	assert_string_equal(reqs[5].answer.task_id, a0.task_id);
	/* the empty id fails alone; no key: its own */
	assert_true(reqs[6].rc < 0);
	assert_int_equal(reqs[7].rc, 0);
	assert_int_equal(reqs[7].answer.status, HL_INTAKE_ACCEPTED);
	/* stored: in-0, in-1, in-2, in-3, in-4, in-5, in-6; the rows agree */
	assert_int_equal(raw_row(f, "SELECT count(*) FROM deliveries", row), 0);
	assert_string_equal(row[0], "7");
	assert_int_equal(raw_row(f,
	                         "SELECT count(*) FROM deliveries WHERE state = 'skipped'"
	                         " AND duplicate_of = 'in-1' AND task_id = 't-1'",
	                         row),
	                 0);
	assert_string_equal(row[0], "2");
	assert_int_equal(hl_store_counts(f->s, count_map_cb, before, NULL), 0);
	assert_counts_rebuilt_alike(f, before);
}

/* A delivery whose row the database refuses inside a batch fails alone,
 * and leaves nothing behind: the event key it claimed is not kept, so the
 * event's next delivery in the same batch is new; the others are stored
 * and counted once. (A batch is written first without a savepoint per
 * delivery, then again with them when one fails.) */
static void
test_store_refused_row_leaves_no_key(void **state)
{
	struct fixture *f = *state;
	enum { N = 5 };
	static struct hl_intake_req reqs[N];
	static const char *const ids[N] = { "ok-1", "poison", "ok-2", "ok-3", "ok-4" };
	static const char *const keys[N] = { "key-1", "key-P", "key-2", "key-P", "key-1" };
	json_t *counts = json_object();
	json_int_t total = 0;
	char row[RAW_COLS][256];
	const char *k;
	json_t *v;
	int i;

	assert_int_equal(
	        raw_exec(f, pg_mode ? "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql"
	                              " AS $$BEGIN IF NEW.delivery_id = 'poison' THEN"
	                              " RAISE EXCEPTION 'poisoned row'; END IF; RETURN NEW;"
	                              " END$$; CREATE TRIGGER poison BEFORE INSERT ON deliveries"
	                              " FOR EACH ROW EXECUTE FUNCTION poison()"
	                            : "CREATE TRIGGER poison BEFORE INSERT ON deliveries"
	                              " WHEN NEW.delivery_id = 'poison'"
	                              " BEGIN SELECT RAISE(ABORT, 'poisoned row'); END"),
	        0);
	memset(reqs, 0, sizeof(reqs));
	for (i = 0; i < N; i++)
		reqs[i].in = delivery(ids[i], keys[i], NULL);
	submit_batch(f, reqs, N);
	assert_true(reqs[1].rc < 0);
	assert_non_null(strstr(reqs[1].err.msg, "poisoned row"));
	for (i = 0; i < N; i++)
		if (i != 1)
			assert_int_equal(reqs[i].rc, 0);
	assert_int_equal(reqs[0].answer.status, HL_INTAKE_ACCEPTED);
	assert_int_equal(reqs[2].answer.status, HL_INTAKE_ACCEPTED);
	/* key-P is ok-3's, not the refused delivery's */
	assert_int_equal(reqs[3].answer.status, HL_INTAKE_ACCEPTED);
	assert_string_equal(reqs[3].answer.duplicate_of, "");
	assert_int_equal(reqs[4].answer.status, HL_INTAKE_DUPLICATE);
	assert_string_equal(reqs[4].answer.duplicate_of, "ok-1");
	assert_int_equal(
	        raw_row(f, "SELECT delivery_id FROM event_keys WHERE dedup_key = 'key-P'", row), 0);
	assert_string_equal(row[0], "ok-3");
	assert_int_equal(
	        raw_row(f, "SELECT count(*) FROM event_keys WHERE delivery_id = 'poison'", row), 0);
	assert_string_equal(row[0], "0");
	assert_int_equal(raw_row(f, "SELECT count(*) FROM deliveries", row), 0);
	assert_string_equal(row[0], "4");
	assert_int_equal(hl_store_counts(f->s, count_map_cb, counts, NULL), 0);
	json_object_foreach(counts, k, v) total += json_integer_value(v);
	assert_int_equal(total, 4);
	assert_counts_rebuilt_alike(f, counts);
}

/* Another connection (another process would be the same: the default VFS,
 * its own descriptors) sees every batch the moment it is answered, reads
 * every body, and finds the database intact: the store's VFS writes a
 * transaction's WAL frames together, but never later than its commit. */
static void
test_store_batches_are_visible_to_other_connections_at_once(void **state)
{
	struct fixture *f = *state;
	enum { ROUNDS = 30, PER = 25 };
	static struct hl_intake_req reqs[PER];
	static char ids[PER][32], bodies[PER][6000];
	char path[160];
	sqlite3 *db;
	sqlite3_stmt *st;
	int round, i, k;
	unsigned x = 777;

	if (pg_mode) /* SQLite's WAL */
		return;
	snprintf(path, sizeof(path), "%s/healer.db", f->dir);
	insert(f, "first", NULL, NULL); /* the WAL exists */
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	for (round = 0; round < ROUNDS; round++) {
		memset(reqs, 0, sizeof(reqs));
		for (i = 0; i < PER; i++) {
			snprintf(ids[i], sizeof(ids[i]), "vis-%d-%d", round, i);
			for (k = 0; k < (int)sizeof(bodies[i]) - 1; k++) {
				x = x * 1103515245u + 12345u;
				bodies[i][k] =
				        (char)('a' +
				               (x >> 16) % 4); /* compresses, not to nothing */
			}
			reqs[i].in = delivery(ids[i], NULL, NULL);
			reqs[i].in.body = bodies[i];
			reqs[i].in.body_len = sizeof(bodies[i]) - 1;
		}
		submit_batch(f, reqs, PER);
		for (i = 0; i < PER; i++) {
			if (reqs[i].rc < 0)
				fprintf(stderr, "# intake: %s\n", reqs[i].err.msg);
			assert_int_equal(reqs[i].rc, 0);
		}
		assert_int_equal(
		        sqlite3_prepare_v2(db,
		                           "SELECT count(*), sum(length(body)) FROM deliveries"
		                           " WHERE delivery_id LIKE 'vis-%'",
		                           -1, &st, NULL),
		        SQLITE_OK);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_int_equal(sqlite3_column_int(st, 0), (round + 1) * PER);
		assert_true(sqlite3_column_int64(st, 1) > 0);
		sqlite3_finalize(st);
	}
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL),
	                 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
	sqlite3_finalize(st);
	sqlite3_close(db);
	/* and the store's own reads of what it wrote */
	for (i = 0; i < 3; i++) {
		struct hl_delivery_record *d = NULL;
		struct hl_err err = HL_ERR_INIT;

		k = hl_store_claim_next(f->s, &d, &err);
		if (k < 0)
			fprintf(stderr, "# claim: %s\n", err.msg);
		assert_int_equal(k, 0);
		assert_non_null(d);
		hl_delivery_record_free(d);
	}
}

#define N_PIPE 150

/* A statement that fails inside a batch (on PostgreSQL: an event key too
 * large for its index, found only by the server, in the middle of the
 * batch's pipelines) fails only its own delivery: the others are stored
 * and answered, and the counters equal the rows. */
static void
test_store_failing_statement_fails_alone(void **state)
{
	struct fixture *f = *state;
	static struct hl_intake_req reqs[N_PIPE];
	static char ids[N_PIPE][32], keys[N_PIPE][32], big[9001];
	char row[RAW_COLS][256];
	json_t *counts = json_object();
	json_int_t total = 0;
	const char *k;
	json_t *v;
	unsigned x = 12345;
	int i, stored = 0;

	for (i = 0; i < (int)sizeof(big) - 1; i++) { /* incompressible */
		x = x * 1103515245u + 12345u;
		big[i] = "0123456789abcdef"[(x >> 16) & 15];
	}
	memset(reqs, 0, sizeof(reqs));
	for (i = 0; i < N_PIPE; i++) {
		snprintf(ids[i], sizeof(ids[i]), "pipe-%d", i);
		snprintf(keys[i], sizeof(keys[i]), "key-%d", i);
		reqs[i].in = delivery(ids[i], i == 100 ? big : keys[i], NULL);
	}
	submit_batch(f, reqs, N_PIPE);
	for (i = 0; i < N_PIPE; i++) {
		if (i == 100 && pg_mode) {
			assert_int_equal(reqs[i].rc, -HL_EDB);
			assert_non_null(strstr(reqs[i].err.msg, "insert delivery"));
			continue;
		}
		assert_int_equal(reqs[i].rc, 0);
		assert_int_equal(reqs[i].answer.status, HL_INTAKE_ACCEPTED);
		stored++;
	}
	assert_int_equal(stored, pg_mode ? N_PIPE - 1 : N_PIPE);
	assert_int_equal(raw_row(f, "SELECT COUNT(*) FROM deliveries", row), 0);
	assert_int_equal(atoi(row[0]), stored);
	assert_int_equal(hl_store_counts(f->s, count_map_cb, counts, NULL), 0);
	json_object_foreach(counts, k, v) total += json_integer_value(v);
	assert_int_equal(total, stored);
	json_decref(counts);
}

#define N_THREADS 16

struct racer {
	struct fixture *f;
	struct hl_intake_answer a;
	int rc;
};

static void *
race_insert(void *arg)
{
	struct racer *r = arg;
	struct hl_delivery_in in = delivery("same-delivery", NULL, NULL);

	r->rc = hl_store_insert_delivery(r->f->s, &r->a, &in, NULL);
	return NULL;
}

static void
test_store_concurrent_same_delivery_accepted_once(void **state)
{
	struct fixture *f = *state;
	struct racer r[N_THREADS];
	pthread_t t[N_THREADS];
	int i, accepted = 0, dup = 0;
	int64_t depth = -1;

	for (i = 0; i < N_THREADS; i++) {
		r[i].f = f;
		assert_int_equal(pthread_create(&t[i], NULL, race_insert, &r[i]), 0);
	}
	for (i = 0; i < N_THREADS; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(r[i].rc, 0);
		accepted += r[i].a.status == HL_INTAKE_ACCEPTED;
		dup += r[i].a.status == HL_INTAKE_DUPLICATE;
	}
	assert_int_equal(accepted, 1);
	assert_int_equal(dup, N_THREADS - 1);
	assert_int_equal(hl_store_queue_depth(f->s, &depth, NULL), 0);
	assert_int_equal(depth, 1);
}

struct task_counts {
	int64_t running_tasks, success_attempts, running_attempts, not_run_attempts;
};

static void
task_count_cb(void *arg, const char *kind, const char *name, int64_t n)
{
	struct task_counts *c = arg;

	if (strcmp(kind, "state") == 0 && strcmp(name, "running") == 0)
		c->running_tasks += n;
	if (strcmp(kind, "outcome") == 0 && strcmp(name, "success") == 0)
		c->success_attempts += n;
	if (strcmp(kind, "outcome") == 0 && strcmp(name, "running") == 0)
		c->running_attempts += n;
	if (strcmp(kind, "outcome") == 0 && strcmp(name, "not_run") == 0)
		c->not_run_attempts += n;
}

static void
test_store_tasks_and_attempts(void **state)
{
	struct task_counts tc = { 0, 0, 0, 0 };
	struct fixture *f = *state;
	struct hl_task t = { .task_id = "t-1",
		             .repository = "o/r",
		             .run_id = 7,
		             .agent = "rex",
		             .failure_type = "rust_clippy",
		             .state = HL_TASK_QUEUED,
		             .decision_json = "{\"rule\":\"clippy\"}" };
	struct hl_attempt a = { .task_id = "t-1",
		                .n = 1,
		                .kind = HL_ATTEMPT_AGENT,
		                .phase = HL_PHASE_PENDING,
		                .outcome = HL_OUTCOME_INVALID,
		                .agent = "rex",
		                .coderun_name = "healer-t-1-1" };
	struct hl_err err = HL_ERR_INIT;
	struct hl_task_record *r = NULL;

	assert_int_equal(hl_store_task_get(f->s, &r, "t-1", &err), -HL_ENOTFOUND);
	assert_int_equal(hl_store_task_put(f->s, &t, &err), 0);
	t.state = HL_TASK_RUNNING;
	t.attempts = 1;
	t.agent = NULL; /* NULL keeps the stored value */
	assert_int_equal(hl_store_task_put(f->s, &t, &err), 0);
	assert_int_equal(hl_store_attempt_put(f->s, &a, &err), 0);
	/* the watch records the CodeRun's end; a replayed remediation then
	 * records its attempt as pending again: the phase does not go back */
	a.phase = HL_PHASE_VERIFYING;
	a.coderun_phase = "Failed";
	a.status_message = "the agent gave up";
	a.job_name = "healer-t-1-1-job";
	assert_int_equal(hl_store_attempt_put(f->s, &a, &err), 0);
	a.phase = HL_PHASE_PENDING;
	a.coderun_phase = NULL;
	a.status_message = NULL;
	a.job_name = NULL;
	assert_int_equal(hl_store_attempt_put(f->s, &a, &err), 0);
	a.phase = HL_PHASE_RUNNING; /* the agent's pod, recorded late */
	assert_int_equal(hl_store_attempt_put(f->s, &a, &err), 0);
	/* a stale look at the CodeRun (read before the watch wrote its end,
	 * written after it) changes none of its status */
	a.phase = HL_PHASE_PENDING;
	a.coderun_phase = "Pending";
	a.status_message = "waiting for a node";
	a.job_name = "stale-job";
	assert_int_equal(hl_store_attempt_put(f->s, &a, &err), 0);
	a.coderun_phase = "Running";
	assert_int_equal(hl_store_attempt_put(f->s, &a, &err), 0);
	assert_int_equal(hl_store_task_get(f->s, &r, "t-1", &err), 0);
	assert_int_equal(r->attempt[0].phase, HL_PHASE_VERIFYING);
	assert_string_equal(r->attempt[0].coderun_phase, "Failed");
	assert_string_equal(r->attempt[0].status_message, "the agent gave up");
	assert_string_equal(r->attempt[0].job_name, "healer-t-1-1-job");
	hl_task_record_free(r);
	r = NULL;
	/* a look of the same rank is taken (the controller's later message) */
	a.coderun_phase = "Failed";
	a.status_message = "the agent gave up: out of turns";
	a.job_name = NULL;
	assert_int_equal(hl_store_attempt_put(f->s, &a, &err), 0);
	assert_int_equal(hl_store_task_get(f->s, &r, "t-1", &err), 0);
	assert_string_equal(r->attempt[0].status_message, "the agent gave up: out of turns");
	assert_string_equal(r->attempt[0].job_name, "healer-t-1-1-job");
	hl_task_record_free(r);
	a.coderun_phase = NULL;
	a.status_message = NULL;
	r = NULL;
	a.outcome = HL_OUTCOME_SUCCESS;
	a.phase = HL_PHASE_DONE;
	a.finished_ms = 1700000000000;
	a.pr_url = "https://github.com/o/r/pull/9";
	assert_int_equal(hl_store_attempt_put(f->s, &a, &err), 0);
	assert_int_equal(hl_store_outcome_add(f->s, "t-1", NULL, "succeeded", NULL, &err), 0);
	assert_int_equal(hl_store_task_counts(f->s, task_count_cb, &tc, &err), 0);
	assert_int_equal(tc.running_tasks, 1);
	assert_int_equal(tc.success_attempts, 1);
	assert_int_equal(tc.running_attempts, 0);
	assert_int_equal(tc.not_run_attempts, 0);
	/* an attempt decided only (no dispatch) is done without an outcome: it
	 * is not running; an unfinished one is, whatever its phase */
	{
		struct hl_task d = { .task_id = "t-2",
			             .repository = "o/r",
			             .run_id = 8,
			             .state = HL_TASK_SKIPPED,
			             .reason = "decide_only" };
		struct hl_task v = { .task_id = "t-3",
			             .repository = "o/r",
			             .run_id = 9,
			             .state = HL_TASK_RUNNING,
			             .attempts = 1 };
		struct hl_attempt da = { .task_id = "t-2",
			                 .n = 1,
			                 .kind = HL_ATTEMPT_AGENT,
			                 .phase = HL_PHASE_DONE,
			                 .outcome = HL_OUTCOME_INVALID,
			                 .agent = "rex" };
		struct hl_attempt va = { .task_id = "t-3",
			                 .n = 1,
			                 .kind = HL_ATTEMPT_RERUN,
			                 .phase = HL_PHASE_VERIFYING,
			                 .outcome = HL_OUTCOME_INVALID };

		assert_int_equal(hl_store_task_put(f->s, &d, &err), 0);
		assert_int_equal(hl_store_attempt_put(f->s, &da, &err), 0);
		assert_int_equal(hl_store_task_put(f->s, &v, &err), 0);
		assert_int_equal(hl_store_attempt_put(f->s, &va, &err), 0);
		tc = (struct task_counts){ 0, 0, 0, 0 };
		assert_int_equal(hl_store_task_counts(f->s, task_count_cb, &tc, &err), 0);
		assert_int_equal(tc.running_tasks, 2);
		assert_int_equal(tc.success_attempts, 1);
		assert_int_equal(tc.running_attempts, 1);
		assert_int_equal(tc.not_run_attempts, 1);
	}
	assert_int_equal(hl_store_task_get(f->s, &r, "t-1", &err), 0);
	assert_int_equal(r->state, HL_TASK_RUNNING);
	assert_string_equal(r->agent, "rex");
	assert_int_equal(r->run_id, 7);
	assert_int_equal(r->attempts, 1);
	assert_string_equal(r->decision_json, "{\"rule\":\"clippy\"}");
	assert_int_equal(r->n_attempts, 1);
	assert_int_equal(r->attempt[0].outcome, HL_OUTCOME_SUCCESS);
	assert_int_equal(r->attempt[0].phase, HL_PHASE_DONE);
	assert_string_equal(r->attempt[0].pr_url, "https://github.com/o/r/pull/9");
	assert_int_equal(r->finished_ms, 0);
	hl_task_record_free(r);
}

/* n bytes of a repeating JSON-ish pattern: a body that compresses well
 * (malloc'd). */
static char *
compressible_body(size_t n)
{
	static const char pattern[] = "{\"key\": [1, 2, 3], \"v\": \"abc\"}";
	char *body = malloc(n);
	size_t i;

	assert_non_null(body);
	for (i = 0; i < n; i++)
		body[i] = pattern[i % (sizeof(pattern) - 1)];
	return body;
}

/* The ledger refuses illegal moves of the lifecycle, whoever writes. */
static void
test_store_task_transitions_are_checked(void **state)
{
	struct fixture *f = *state;
	struct hl_task t = { .task_id = "t-tr", .repository = "o/r", .state = HL_TASK_RUNNING };
	struct hl_task_record *r = NULL;
	struct hl_err err = HL_ERR_INIT;

	assert_int_equal(hl_store_task_put(f->s, &t, &err), 0);
	t.state = HL_TASK_SUCCEEDED;
	assert_int_equal(hl_store_task_put(f->s, &t, &err), 0);
	/* a finished task never runs again, and nothing was written */
	t.state = HL_TASK_RUNNING;
	t.reason = "should not stick";
	assert_int_equal(hl_store_task_put(f->s, &t, &err), -HL_ECONFLICT);
	assert_non_null(strstr(err.msg, "succeeded"));
	assert_int_equal(hl_store_task_get(f->s, &r, "t-tr", NULL), 0);
	assert_int_equal(r->state, HL_TASK_SUCCEEDED);
	assert_null(r->reason);
	assert_true(r->finished_ms > 0);
	hl_task_record_free(r);
	/* a new task cannot start verified */
	t.task_id = "t-new";
	t.state = HL_TASK_VERIFYING;
	assert_int_equal(hl_store_task_put(f->s, &t, &err), -HL_ECONFLICT);
	assert_int_equal(hl_store_task_get(f->s, &r, "t-new", NULL), -HL_ENOTFOUND);
}

/* A task leaving a state leaves its reason too (a queued task's wait);
 * the same state written again without one keeps it. */
static void
test_store_task_reason_follows_its_state(void **state)
{
	struct fixture *f = *state;
	struct hl_task t = { .task_id = "t-why",
		             .repository = "o/r",
		             .state = HL_TASK_QUEUED,
		             .reason = "waiting for a CodeRun slot (1 of 1 running)" };
	struct hl_task_record *r = NULL;
	struct hl_err err = HL_ERR_INIT;

	assert_int_equal(hl_store_task_put(f->s, &t, &err), 0);
	t.reason = NULL;
	assert_int_equal(hl_store_task_put(f->s, &t, &err), 0);
	assert_int_equal(hl_store_task_get(f->s, &r, "t-why", NULL), 0);
	assert_string_equal(r->reason, "waiting for a CodeRun slot (1 of 1 running)");
	hl_task_record_free(r);
	r = NULL;
	t.state = HL_TASK_RUNNING;
	assert_int_equal(hl_store_task_put(f->s, &t, &err), 0);
	assert_int_equal(hl_store_task_get(f->s, &r, "t-why", NULL), 0);
	assert_int_equal(r->state, HL_TASK_RUNNING);
	assert_null(r->reason);
	hl_task_record_free(r);
	r = NULL;
	t.state = HL_TASK_ESCALATED;
	t.reason = "attempts exhausted";
	assert_int_equal(hl_store_task_put(f->s, &t, &err), 0);
	t.reason = NULL;
	assert_int_equal(hl_store_task_put(f->s, &t, &err), 0);
	assert_int_equal(hl_store_task_get(f->s, &r, "t-why", NULL), 0);
	assert_string_equal(r->reason, "attempts exhausted");
	hl_task_record_free(r);
}

static void
test_store_large_body_round_trips_deflated(void **state)
{
	struct fixture *f = *state;
	struct hl_delivery_in in = delivery("d-big", NULL, NULL);
	struct hl_delivery_record *d = NULL;
	struct hl_intake_answer a;
	char row[RAW_COLS][256], *big;
	size_t n = 200000;

	big = compressible_body(n);
	in.body = big;
	in.body_len = n;
	assert_int_equal(hl_store_insert_delivery(f->s, &a, &in, NULL), 0);
	/* Stored deflated and much smaller. */
	assert_int_equal(raw_row(f,
	                         "SELECT body_encoding, length(body), body_size FROM"
	                         " deliveries WHERE delivery_id = 'd-big'",
	                         row),
	                 0);
	assert_string_equal(row[0], "deflate");
	assert_true(atoll(row[1]) > 0 && atoll(row[1]) < (long long)n / 10);
	assert_int_equal(atoll(row[2]), n);
	/* The worker gets the raw bytes back. */
	assert_int_equal(hl_store_claim_next(f->s, &d, NULL), 0);
	assert_int_equal(d->body_len, n);
	assert_memory_equal(d->body, big, n);
	assert_int_equal(d->body[n], '\0');
	hl_delivery_record_free(d);
	free(big);
}

/* A payload of GitHub's usual size (here 40 KB) is stored as an LZ4 block:
 * a fraction of the bytes for the log, the checkpoint and the flush. */
static void
test_store_typical_body_round_trips_lz4(void **state)
{
	struct fixture *f = *state;
	struct hl_delivery_in in = delivery("d-typical", NULL, NULL);
	struct hl_delivery_record *d = NULL;
	struct hl_intake_answer a;
	char row[RAW_COLS][256], *body;
	size_t n = 40000;

	body = compressible_body(n);
	in.body = body;
	in.body_len = n;
	assert_int_equal(hl_store_insert_delivery(f->s, &a, &in, NULL), 0);
	assert_int_equal(raw_row(f,
	                         "SELECT body_encoding, length(body), body_size FROM"
	                         " deliveries WHERE delivery_id = 'd-typical'",
	                         row),
	                 0);
	assert_string_equal(row[0], "lz4");
	assert_true(atoll(row[1]) > 0 && atoll(row[1]) < (long long)n / 10);
	assert_int_equal(atoll(row[2]), n);
	assert_int_equal(hl_store_claim_next(f->s, &d, NULL), 0);
	assert_int_equal(d->body_len, n);
	assert_memory_equal(d->body, body, n);
	assert_int_equal(d->body[n], '\0');
	hl_delivery_record_free(d);
	free(body);
}

/* A delivery of an event this process saw committed is most likely a
 * duplicate, which keeps no body: its body is not compressed (and on
 * PostgreSQL its statement goes without it). Should the event not be
 * known after all (here: its key row removed), the body is stored as it
 * came, whole (sent after all), and is claimed intact. */
static void
test_store_known_event_body_is_not_compressed(void **state)
{
	struct fixture *f = *state;
	struct hl_delivery_in in = delivery("d-kfirst", "k-hint", NULL);
	struct hl_delivery_record *d = NULL;
	struct hl_intake_answer a;
	char row[RAW_COLS][256], *body;
	size_t n = 20000;

	body = compressible_body(n);
	in.body = body;
	in.body_len = n;
	assert_int_equal(hl_store_insert_delivery(f->s, &a, &in, NULL), 0);
	assert_int_equal(a.status, HL_INTAKE_ACCEPTED);
	in.delivery_id = "d-kagain";
	assert_int_equal(hl_store_insert_delivery(f->s, &a, &in, NULL), 0);
	assert_string_equal(a.reason, "duplicate_event");
	assert_int_equal(raw_row(f,
	                         "SELECT body_encoding, length(body), body_size FROM"
	                         " deliveries WHERE delivery_id = 'd-kagain'",
	                         row),
	                 0);
	assert_string_equal(row[0], "duplicate");
	assert_string_equal(row[1], "0");
	assert_int_equal(atoll(row[2]), n);
	/* the hint is wrong now: the event is new again */
	assert_int_equal(raw_exec(f, "DELETE FROM event_keys WHERE dedup_key = 'k-hint'"), 0);
	assert_int_equal(hl_store_claim_next(f->s, &d, NULL), 0);
	assert_string_equal(d->delivery_id, "d-kfirst");
	assert_int_equal(finish(f->s, "d-kfirst", HL_DELIVERY_PROCESSED, "recorded", NULL, NULL),
	                 0);
	hl_delivery_record_free(d);
	d = NULL;
	in.delivery_id = "d-knew";
	assert_int_equal(hl_store_insert_delivery(f->s, &a, &in, NULL), 0);
	assert_int_equal(a.status, HL_INTAKE_ACCEPTED);
	assert_int_equal(raw_row(f,
	                         "SELECT body_encoding, length(body), body_size FROM"
	                         " deliveries WHERE delivery_id = 'd-knew'",
	                         row),
	                 0);
	assert_string_equal(row[0], "identity");
	assert_int_equal(atoll(row[1]), n);
	assert_int_equal(atoll(row[2]), n);
	assert_int_equal(hl_store_claim_next(f->s, &d, NULL), 0);
	assert_string_equal(d->delivery_id, "d-knew");
	assert_int_equal(d->body_len, n);
	assert_memory_equal(d->body, body, n);
	hl_delivery_record_free(d);
	free(body);
}

/* What compression would not pay for stays as it came: a small body, and
 * one that does not shrink (random bytes). */
static void
test_store_small_or_random_body_is_stored_raw(void **state)
{
	struct fixture *f = *state;
	struct hl_delivery_in in;
	struct hl_delivery_record *d = NULL;
	struct hl_intake_answer a;
	char row[RAW_COLS][256], small[] = "{\"zen\": \"Keep it logically awesome.\"}", *noise;
	size_t i, n = 20000;
	uint32_t x = 2463534242u;

	noise = malloc(n);
	assert_non_null(noise);
	for (i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		noise[i] = (char)(x & 0xff);
	}
	in = delivery("d-small", NULL, NULL);
	in.body = small;
	in.body_len = strlen(small);
	assert_int_equal(hl_store_insert_delivery(f->s, &a, &in, NULL), 0);
	in = delivery("d-noise", NULL, NULL);
	in.body = noise;
	in.body_len = n;
	assert_int_equal(hl_store_insert_delivery(f->s, &a, &in, NULL), 0);
	assert_int_equal(raw_row(f,
	                         "SELECT body_encoding, length(body) FROM"
	                         " deliveries WHERE delivery_id = 'd-small'",
	                         row),
	                 0);
	assert_string_equal(row[0], "identity");
	assert_int_equal(atoll(row[1]), strlen(small));
	assert_int_equal(raw_row(f,
	                         "SELECT body_encoding, length(body) FROM"
	                         " deliveries WHERE delivery_id = 'd-noise'",
	                         row),
	                 0);
	assert_string_equal(row[0], "identity");
	assert_int_equal(atoll(row[1]), n);
	assert_int_equal(hl_store_claim_next(f->s, &d, NULL), 0);
	assert_string_equal(d->delivery_id, "d-small");
	assert_memory_equal(d->body, small, strlen(small) + 1);
	hl_delivery_record_free(d);
	assert_int_equal(hl_store_claim_next(f->s, &d, NULL), 0);
	assert_string_equal(d->delivery_id, "d-noise");
	assert_int_equal(d->body_len, n);
	assert_memory_equal(d->body, noise, n);
	hl_delivery_record_free(d);
	/* PostgreSQL keeps a body that fits its row's page in the row
	 * (migration 0014): its TOAST table does not grow by ten 4 KB ones */
	if (pg_mode) {
		static const char toast[] =
		        "SELECT pg_total_relation_size(reltoastrelid) FROM pg_class"
		        " WHERE relname = 'deliveries'";
		long long before;
		char id[32];

		assert_int_equal(raw_row(f, toast, row), 0);
		before = atoll(row[0]);
		for (i = 0; i < 10; i++) {
			snprintf(id, sizeof(id), "d-noise4k-%zu", i);
			in = delivery(id, NULL, NULL);
			in.body = noise + i * 1000;
			in.body_len = 4000;
			assert_int_equal(hl_store_insert_delivery(f->s, &a, &in, NULL), 0);
		}
		assert_int_equal(raw_row(f, toast, row), 0);
		assert_int_equal(atoll(row[0]), before);
		/* nor is a row under its page's size compressed again
		 * (migration 0015): 4000 compressible bytes stay as they are */
		assert_int_equal(raw_exec(f,
		                          "UPDATE deliveries SET body = decode(repeat('61', 4000),"
		                          " 'hex') WHERE delivery_id = 'd-noise4k-0'"),
		                 0);
		assert_int_equal(
		        raw_row(f,
		                "SELECT coalesce(pg_column_compression(body)::text, 'none'),"
		                " length(body) FROM deliveries WHERE delivery_id = 'd-noise4k-0'",
		                row),
		        0);
		assert_string_equal(row[0], "none");
		assert_string_equal(row[1], "4000");
	}
	free(noise);
}

static void
test_store_corrupt_body_is_failed_not_claimed(void **state)
{
	struct fixture *f = *state;
	struct hl_delivery_in in;
	struct hl_delivery_record *d = NULL;
	struct hl_intake_answer a;
	char row[RAW_COLS][256], *body;
	static const struct {
		const char *id, *enc;
		size_t n;
	} kinds[] = {
		{ "d-corrupt", "identity", 300 }, /* too small to compress */
		{ "d-corrupt-l", "lz4", 4096 },
		{ "d-corrupt-z", "deflate", 100000 },
	};
	char q[256];
	size_t i, n = 100000;

	body = malloc(n);
	assert_non_null(body);
	memset(body, 'a', n);
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		in = delivery(kinds[i].id, NULL, NULL);
		in.body = body;
		in.body_len = kinds[i].n;
		assert_int_equal(hl_store_insert_delivery(f->s, &a, &in, NULL), 0);
		snprintf(q, sizeof(q),
		         "SELECT body_encoding FROM deliveries WHERE delivery_id = '%s'",
		         kinds[i].id);
		assert_int_equal(raw_row(f, q, row), 0);
		assert_string_equal(row[0], kinds[i].enc);
	}
	free(body);
	insert(f, "d-after", NULL, NULL);
	assert_int_equal(raw_exec(f, pg_mode ? "UPDATE deliveries SET body = '\\x00112233'::bytea"
	                                       " WHERE delivery_id LIKE 'd-corrupt%'"
	                                     : "UPDATE deliveries SET body = x'00112233'"
	                                       " WHERE delivery_id LIKE 'd-corrupt%'"),
	                 0);
	/* The corrupt ones (raw, LZ4 and deflated) are skipped over and marked failed. */
	assert_int_equal(hl_store_claim_next(f->s, &d, NULL), 0);
	assert_string_equal(d->delivery_id, "d-after");
	hl_delivery_record_free(d);
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		snprintf(q, sizeof(q),
		         "SELECT state, reason FROM deliveries WHERE delivery_id = '%s'",
		         kinds[i].id);
		assert_int_equal(raw_row(f, q, row), 0);
		assert_string_equal(row[0], "failed");
		assert_string_equal(row[1], "corrupt_body");
	}
}

static void
test_store_task_claim_and_find(void **state)
{
	struct fixture *f = *state;
	struct hl_task t = { .task_id = "t-run",
		             .dedup_key = "k-run",
		             .repository = "o/r",
		             .run_id = 10,
		             .branch = "main",
		             .state = HL_TASK_RUNNING };
	struct hl_task job = { .task_id = "t-job",
		               .dedup_key = "k-job",
		               .repository = "o/r",
		               .run_id = 11,
		               .job = "build",
		               .branch = "main",
		               .state = HL_TASK_RUNNING };
	char existing[HL_TASK_ID_MAX], out[HL_TASK_ID_MAX];
	bool created = false;

	assert_int_equal(hl_store_task_claim(f->s, &created, existing, &t, NULL), 0);
	assert_true(created);
	assert_string_equal(existing, "t-run");
	/* The same key under another id: not created, the first id. */
	t.task_id = "t-other";
	assert_int_equal(hl_store_task_claim(f->s, &created, existing, &t, NULL), 0);
	assert_false(created);
	assert_string_equal(existing, "t-run");
	/* The same id again (a resumed claim). */
	t.task_id = "t-run";
	assert_int_equal(hl_store_task_claim(f->s, &created, existing, &t, NULL), 0);
	assert_false(created);
	assert_string_equal(existing, "t-run");
	assert_int_equal(hl_store_task_claim(f->s, &created, existing, &job, NULL), 0);
	assert_true(created);

	assert_int_equal(hl_store_task_find(f->s, out, "o/r", NULL, 10, HL_TASK_FIND_RUN_LEVEL, 0,
	                                    NULL, NULL),
	                 0);
	assert_string_equal(out, "t-run");
	assert_int_equal(hl_store_task_find(f->s, out, "o/r", NULL, 10, HL_TASK_FIND_RUN_LEVEL, 0,
	                                    "t-run", NULL),
	                 -HL_ENOTFOUND);
	assert_int_equal(hl_store_task_find(f->s, out, "o/r", NULL, 11, HL_TASK_FIND_RUN_LEVEL, 0,
	                                    NULL, NULL),
	                 -HL_ENOTFOUND);
	assert_int_equal(
	        hl_store_task_find(f->s, out, "o/r", NULL, 11, HL_TASK_FIND_ANY, 0, NULL, NULL), 0);
	assert_string_equal(out, "t-job");
	assert_int_equal(hl_store_task_find(f->s, out, "o/r", "main", 11, HL_TASK_FIND_OTHER_RUN, 0,
	                                    NULL, NULL),
	                 0);
	assert_string_equal(out, "t-run");
	assert_int_equal(hl_store_task_find(f->s, out, "o/r", "main", 11, HL_TASK_FIND_OTHER_RUN,
	                                    INT64_MAX, NULL, NULL),
	                 -HL_ENOTFOUND);
	assert_int_equal(
	        hl_store_task_find(f->s, out, "x/y", NULL, 10, HL_TASK_FIND_ANY, 0, NULL, NULL),
	        -HL_ENOTFOUND);
	/* Tasks that decided nothing do not match. */
	t.state = HL_TASK_SKIPPED;
	assert_int_equal(hl_store_task_put(f->s, &t, NULL), 0);
	assert_int_equal(
	        hl_store_task_find(f->s, out, "o/r", NULL, 10, HL_TASK_FIND_ANY, 0, NULL, NULL),
	        -HL_ENOTFOUND);
}

/* The query plan of sql (no parameters) on the backend under test, steps
 * joined by ';'. */
static void
query_plan(struct fixture *f, const char *sql, char *out, size_t size)
{
	char path[160], q[1024];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;

	out[0] = '\0';
	if (pg_mode) {
		PGconn *c = pg_session(f->db);
		PGresult *r;
		int i;

		assert_non_null(c);
		/* a test's few hundred rows are read whole; which index a big
		 * table's read takes shows once scanning the table is ruled out */
		PQclear(PQexec(c, "ANALYZE remediation_tasks; ANALYZE attempts;"
		                  " SET enable_seqscan = off"));
		snprintf(q, sizeof(q), "EXPLAIN %s", sql);
		r = PQexec(c, q);
		assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
		for (i = 0; i < PQntuples(r); i++)
			snprintf(out + strlen(out), size - strlen(out), "%s;", PQgetvalue(r, i, 0));
		PQclear(r);
		PQfinish(c);
		return;
	}
	snprintf(path, sizeof(path), "%s/healer.db", f->dir);
	snprintf(q, sizeof(q), "EXPLAIN QUERY PLAN %s", sql);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW)
		snprintf(out + strlen(out), size - strlen(out), "%s;",
		         (const char *)sqlite3_column_text(st, 3));
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/* The plan of the run-level task find (its query, with the test's values). */
static void
run_level_plan(struct fixture *f, char *out, size_t size)
{
	query_plan(f,
	           "SELECT task_id FROM remediation_tasks WHERE repository = 'o/r'"
	           " AND run_id = 77 AND job IS NULL AND NOT (state = 'skipped' AND agent IS NULL)"
	           " AND (NULL IS NULL OR task_id <> NULL) ORDER BY created_ms DESC LIMIT 1",
	           out, size);
}

/* A run with many job tasks: its run-level task is found from the partial
 * index (newest first, no scan of the job tasks, no sort). */
static void
test_store_run_level_find_uses_its_index(void **state)
{
	struct fixture *f = *state;
	char id[32], job[32], out[HL_TASK_ID_MAX], plan[2048];
	struct hl_task t = {
		.repository = "o/r", .run_id = 77, .branch = "main", .state = HL_TASK_RUNNING
	};
	int i;

	for (i = 0; i < 300; i++) {
		snprintf(id, sizeof(id), "job-task-%d", i);
		snprintf(job, sizeof(job), "job-%d", i);
		t.task_id = id;
		t.job = job;
		assert_int_equal(hl_store_task_put(f->s, &t, NULL), 0);
	}
	assert_int_equal(hl_store_task_find(f->s, out, "o/r", NULL, 77, HL_TASK_FIND_RUN_LEVEL, 0,
	                                    NULL, NULL),
	                 -HL_ENOTFOUND);
	t.task_id = "run-task";
	t.job = NULL;
	assert_int_equal(hl_store_task_put(f->s, &t, NULL), 0);
	assert_int_equal(hl_store_task_find(f->s, out, "o/r", NULL, 77, HL_TASK_FIND_RUN_LEVEL, 0,
	                                    NULL, NULL),
	                 0);
	assert_string_equal(out, "run-task");
	assert_int_equal(hl_store_task_find(f->s, out, "o/r", NULL, 77, HL_TASK_FIND_RUN_LEVEL, 0,
	                                    "run-task", NULL),
	                 -HL_ENOTFOUND);
	run_level_plan(f, plan, sizeof(plan));
	assert_non_null(strstr(plan, "remediation_tasks_run_level"));
	assert_null(strstr(plan, "TEMP B-TREE")); /* SQLite: no sort */
	assert_null(strstr(plan, "Sort"));        /* PostgreSQL: no sort */
}

/* The reads every CI failure makes of history (is its job's task still
 * open? how did each agent do on this repository's failures of its type?)
 * go through indexes of open tasks and finished agent attempts, not
 * through every task of the repository; the answers are unchanged. */
static void
test_store_history_reads_use_their_indexes(void **state)
{
	struct fixture *f = *state;
	char id[32], out[HL_TASK_ID_MAX], plan[2048];
	struct hl_agent_record rec[4];
	struct hl_task t = { .repository = "o/r",
		             .workflow = "ci",
		             .job = "build",
		             .branch = "main",
		             .failure_type = "rust_build",
		             .state = HL_TASK_SKIPPED };
	size_t n = 0;
	int i;

	for (i = 0; i < 400; i++) {
		snprintf(id, sizeof(id), "hist-%d", i);
		t.task_id = id;
		t.run_id = 1000 + i;
		/* ten ran (one still does, nine succeeded), the rest were skipped */
		t.state = i < 10 ? HL_TASK_RUNNING : HL_TASK_SKIPPED;
		assert_int_equal(hl_store_task_put(f->s, &t, NULL), 0);
		t.state = HL_TASK_SUCCEEDED;
		if (i < 10 && i != 7)
			assert_int_equal(hl_store_task_put(f->s, &t, NULL), 0);
		assert_int_equal(
		        hl_store_attempt_put(
		                f->s,
		                &(struct hl_attempt){ .task_id = id,
		                                      .n = 1,
		                                      .kind = HL_ATTEMPT_AGENT,
		                                      .phase = HL_PHASE_DONE,
		                                      .agent = i % 2 ? "rex" : "atlas",
		                                      .outcome = i < 10 ? HL_OUTCOME_SUCCESS
		                                                        : HL_OUTCOME_INVALID,
		                                      .repository = "o/r",
		                                      .started_ms = 1000 + i },
		                NULL),
		        0);
	}
	assert_int_equal(
	        hl_store_task_active_for(f->s, out, "o/r", "main", "ci", "build", NULL, NULL), 0);
	assert_string_equal(out, "hist-7");
	assert_int_equal(hl_store_agent_records(f->s, rec, 4, &n, "o/r", "rust_build", NULL), 0);
	assert_int_equal(n, 2);
	assert_string_equal(rec[0].agent, "atlas");
	assert_int_equal(rec[0].finished, 5);
	assert_int_equal(rec[0].succeeded, 5);
	assert_string_equal(rec[1].agent, "rex");
	assert_int_equal(rec[1].finished, 5);

	query_plan(
	        f,
	        pg_mode ? "SELECT task_id FROM remediation_tasks WHERE repository = 'o/r'"
	                  " AND workflow = 'ci' AND job = 'build'"
	                  " AND state IN ('queued', 'running', 'verifying')"
	                  " AND (branch = 'main' OR target_branch = 'main')"
	                  " ORDER BY created_ms DESC LIMIT 1"
	                : "SELECT task_id FROM remediation_tasks INDEXED BY remediation_tasks_open"
	                  " WHERE repository = 'o/r' AND workflow = 'ci' AND job = 'build'"
	                  " AND state IN ('queued', 'running', 'verifying')"
	                  " AND (branch = 'main' OR target_branch = 'main')"
	                  " ORDER BY created_ms DESC LIMIT 1",
	        plan, sizeof(plan));
	assert_non_null(strstr(plan, "remediation_tasks_open"));
	query_plan(f,
	           "SELECT a.agent, COUNT(*) FROM attempts a JOIN remediation_tasks t"
	           " ON t.task_id = a.task_id WHERE a.repository = 'o/r'"
	           " AND t.failure_type = 'rust_build' AND a.kind = 'agent' AND a.agent IS NOT NULL"
	           " AND a.outcome IN ('success', 'ci_still_failing', 'agent_failed', 'timeout')"
	           " GROUP BY a.agent ORDER BY a.agent LIMIT 4",
	           plan, sizeof(plan));
	assert_non_null(strstr(plan, "attempts_agent_finished"));
}

/* SQLite's virtual-machine steps of the statements that read ci_results,
 * counted by a profile hook every connection of the process gets (an auto
 * extension, registered in main before any store opens): a deterministic
 * measure of how many rows a read walked. */
static long long ci_read_steps;

static int
ci_read_profile(unsigned type, void *ctx, void *p, void *x)
{
	sqlite3_stmt *st = p;
	const char *sql = sqlite3_sql(st);

	(void)ctx;
	(void)x;
	if (type == SQLITE_TRACE_PROFILE && sql && strncmp(sql, "SELECT", 6) == 0 &&
	    strstr(sql, "FROM ci_results"))
		__atomic_add_fetch(&ci_read_steps,
		                   sqlite3_stmt_status(st, SQLITE_STMTSTATUS_VM_STEP, 0),
		                   __ATOMIC_RELAXED);
	return 0;
}

static int
ci_read_profile_install(sqlite3 *db, const char **errmsg, const sqlite3_api_routines *api)
{
	(void)errmsg;
	(void)api;
	sqlite3_trace_v2(db, SQLITE_TRACE_PROFILE, ci_read_profile, NULL);
	return SQLITE_OK;
}

/* A task whose agent works on a branch of its own, while the task's
 * workflow run records thousands of results on the task's branch: the
 * loop's read of the latest result on the agent's branch (or naming none)
 * seeks it through an index instead of walking every result on the other
 * branch, and the answer is unchanged. */
static void
test_store_ci_latest_on_a_branch_seeks(void **state)
{
	struct fixture *f = *state;
	struct hl_err err = HL_ERR_INIT;
	struct hl_ci_result_record cr;
	char id[32];
	struct hl_ci_result res = { .task_id = "t-big",
		                    .head_sha = "abc",
		                    .conclusion = "failure" };
	long long steps;
	int i;

	res.delivery_id = "unnamed";
	res.completed_ms = 500;
	res.conclusion = "success";
	assert_int_equal(hl_store_ci_result_add(f->s, &res, &err), 0);
	res.conclusion = "failure";
	res.branch = "main";
	for (i = 0; i < 2000; i++) {
		snprintf(id, sizeof(id), "main-%d", i);
		res.delivery_id = id;
		res.completed_ms = 1000 + i;
		assert_int_equal(hl_store_ci_result_add(f->s, &res, &err), 0);
	}
	/* nothing on the agent's branch yet: the result naming no branch */
	__atomic_store_n(&ci_read_steps, 0, __ATOMIC_RELAXED);
	assert_int_equal(hl_store_ci_result_latest(f->s, &cr, "t-big", 0, "fix/x", &err), 0);
	steps = __atomic_load_n(&ci_read_steps, __ATOMIC_RELAXED);
	assert_string_equal(cr.conclusion, "success");
	assert_int_equal(cr.completed_ms, 500);
	assert_int_equal(hl_store_ci_result_latest(f->s, &cr, "t-big", 600, "fix/x", &err),
	                 -HL_ENOTFOUND);
	/* the agent's branch passes later */
	res.delivery_id = "fix-1";
	res.branch = "fix/x";
	res.conclusion = "success";
	res.completed_ms = 1500;
	assert_int_equal(hl_store_ci_result_add(f->s, &res, &err), 0);
	assert_int_equal(hl_store_ci_result_latest(f->s, &cr, "t-big", 600, "fix/x", &err), 0);
	assert_string_equal(cr.branch, "fix/x");
	assert_int_equal(cr.completed_ms, 1500);
	assert_int_equal(hl_store_ci_result_latest(f->s, &cr, "t-big", 0, "main", &err), 0);
	assert_int_equal(cr.completed_ms, 2999);
	assert_int_equal(hl_store_ci_result_latest(f->s, &cr, "t-big", 0, NULL, &err), 0);
	assert_int_equal(cr.completed_ms, 2999);
	if (!pg_mode) {
		/* a walk over the 2,000 rows on main takes tens of thousands of
		 * steps; three index seeks take a few hundred */
		print_message("steps of the read on fix/x: %lld\n", steps);
		assert_true(steps > 0);
		assert_true(steps < 1000);
	}
}

/* A delivery given back with a not-before time waits for it; no worker
 * has to sleep holding the claim. */
static void
test_store_given_back_delivery_waits_for_its_time(void **state)
{
	struct fixture *f = *state;
	struct hl_delivery_record *d = NULL;
	struct hl_err err = HL_ERR_INIT;
	int64_t depth = -1;

	insert(f, "d-later", NULL, NULL);
	assert_int_equal(hl_store_claim_next(f->s, &d, &err), 0);
	assert_int_equal(hl_store_finish_delivery(
	                         f->s, "d-later",
	                         &(struct hl_delivery_result){ .state = HL_DELIVERY_RECEIVED,
	                                                       .reason = "retry",
	                                                       .not_before_ms = INT64_MAX / 2 },
	                         &err),
	                 0);
	hl_delivery_record_free(d);
	d = NULL;
	assert_int_equal(hl_store_queue_depth(f->s, &depth, NULL), 0);
	assert_int_equal(depth, 1);
	/* waiting, not claimable, and not hiding the deliveries behind it */
	assert_int_equal(hl_store_claim_next(f->s, &d, &err), -HL_ENOTFOUND);
	insert(f, "d-now", NULL, NULL);
	assert_int_equal(hl_store_claim_next(f->s, &d, &err), 0);
	assert_string_equal(d->delivery_id, "d-now");
	assert_int_equal(finish(f->s, "d-now", HL_DELIVERY_PROCESSED, "recorded", NULL, &err), 0);
	hl_delivery_record_free(d);
	d = NULL;
	/* recovery after a restart does not cut the wait short either */
	reopen(f);
	assert_int_equal(hl_store_recover(f->s, NULL, &err), 0);
	assert_int_equal(hl_store_claim_next(f->s, &d, &err), -HL_ENOTFOUND);
}

/* The hand-off: with it, a delivery that would wait is stored already
 * claimed by this handle and goes to the next claim; a skipped one, a
 * duplicate delivery or event is not; while an older delivery may wait in
 * the store none is handed off (so none overtakes it); no more than the
 * ring holds; what is still held at close is given back, counters right. */
static void
test_store_hands_deliveries_to_its_workers(void **state)
{
	struct fixture *f = *state;
	static struct hl_intake_req reqs[8];
	static char ids[8][16];
	struct hl_delivery_record *d = NULL;
	struct hl_err err = HL_ERR_INIT;
	char row[RAW_COLS][256], sql[256];
	json_t *before = json_object(), *after = json_object();
	int64_t depth = -1;
	int i, seen[8] = { 0 };

	assert_int_equal(hl_store_set_handoff(f->s, -1, &err), -HL_EINVAL);
	insert(f, "d-old", NULL, NULL);
	assert_int_equal(hl_store_set_handoff(f->s, 4, &err), 0);
	/* the store may hold older deliveries: this one waits behind them */
	insert(f, "d-new", NULL, NULL);
	assert_int_equal(
	        raw_row(f, "SELECT state FROM deliveries WHERE delivery_id = 'd-new'", row), 0);
	assert_string_equal(row[0], "received");
	assert_int_equal(hl_store_claim_next(f->s, &d, &err), 0);
	assert_string_equal(d->delivery_id, "d-old");
	assert_int_equal(finish(f->s, "d-old", HL_DELIVERY_PROCESSED, "recorded", NULL, &err), 0);
	hl_delivery_record_free(d);
	assert_int_equal(hl_store_claim_next(f->s, &d, &err), 0);
	assert_string_equal(d->delivery_id, "d-new");
	assert_int_equal(finish(f->s, "d-new", HL_DELIVERY_PROCESSED, "recorded", NULL, &err), 0);
	hl_delivery_record_free(d);
	assert_int_equal(hl_store_claim_next(f->s, &d, &err), -HL_ENOTFOUND);

	/* the store is empty: handed off, stored as this handle's claim */
	insert(f, "d-hand", "k-1", NULL);
	assert_int_equal(raw_row(f,
	                         "SELECT state, claimed_by, claims, lease_until_ms > 0"
	                         " FROM deliveries WHERE delivery_id = 'd-hand'",
	                         row),
	                 0);
	assert_string_equal(row[0], "processing");
	assert_string_equal(row[1], hl_store_owner(f->s));
	assert_string_equal(row[2], "1");
	assert_true(strcmp(row[3], "1") == 0 || strcmp(row[3], "t") == 0);
	assert_int_equal(insert(f, "d-hand", "k-1", NULL).status, HL_INTAKE_DUPLICATE);
	assert_int_equal(insert(f, "d-same-event", "k-1", NULL).status, HL_INTAKE_DUPLICATE);
	assert_int_equal(insert(f, "d-skip", NULL, "ping").status, HL_INTAKE_SKIPPED);
	assert_int_equal(raw_row(f,
	                         "SELECT COUNT(*) FROM deliveries WHERE claimed_by IS NOT NULL"
	                         " OR state = 'processing'",
	                         row),
	                 0);
	assert_string_equal(row[0], "1");
	assert_int_equal(hl_store_queue_depth(f->s, &depth, NULL), 0);
	assert_int_equal(depth, 1);
	assert_int_equal(hl_store_claim_next(f->s, &d, &err), 0);
	assert_string_equal(d->delivery_id, "d-hand");
	assert_string_equal(d->body, "{\"action\":\"completed\"}");
	assert_int_equal(d->body_len, 22);
	assert_string_equal(d->dedup_key, "k-1");
	assert_string_equal(d->task_id, "task-for-key");
	assert_string_equal(d->headers_json, "{\"X-GitHub-Event\":\"workflow_job\"}");
	assert_int_equal(d->claims, 1);
	assert_true(d->id > 0 && d->received_ms > 0);
	assert_int_equal(finish(f->s, "d-hand", HL_DELIVERY_PROCESSED, "recorded", NULL, &err), 0);
	hl_delivery_record_free(d);

	/* a batch of eight: four handed off (the ring's size), four wait;
	 * each is claimed once */
	for (i = 0; i < 8; i++) {
		snprintf(ids[i], sizeof(ids[i]), "d-b%d", i);
		reqs[i].in = delivery(ids[i], NULL, NULL);
	}
	submit_batch(f, reqs, 8);
	assert_int_equal(raw_row(f,
	                         "SELECT COUNT(*) FROM deliveries WHERE state = 'processing'"
	                         " AND delivery_id LIKE 'd-b%'",
	                         row),
	                 0);
	assert_true(atoi(row[0]) >= 1 && atoi(row[0]) <= 4);
	for (i = 0; i < 8; i++) {
		assert_int_equal(hl_store_claim_next(f->s, &d, &err), 0);
		assert_true(strncmp(d->delivery_id, "d-b", 3) == 0);
		seen[atoi(d->delivery_id + 3)]++;
		assert_int_equal(
		        finish(f->s, d->delivery_id, HL_DELIVERY_PROCESSED, "recorded", NULL, &err),
		        0);
		hl_delivery_record_free(d);
	}
	for (i = 0; i < 8; i++)
		assert_int_equal(seen[i], 1);
	assert_int_equal(hl_store_claim_next(f->s, &d, &err), -HL_ENOTFOUND);

	/* held at close: given back, waiting, counters as the rows say */
	insert(f, "d-held", NULL, NULL);
	reopen(f);
	snprintf(sql, sizeof(sql),
	         "SELECT state, COALESCE(claimed_by, '') FROM deliveries"
	         " WHERE delivery_id = 'd-held'");
	assert_int_equal(raw_row(f, sql, row), 0);
	assert_string_equal(row[0], "received");
	assert_string_equal(row[1], "");
	assert_int_equal(hl_store_counts(f->s, count_map_cb, before, NULL), 0);
	assert_int_equal(hl_store_recover(f->s, NULL, NULL), 0);
	assert_int_equal(hl_store_counts(f->s, count_map_cb, after, NULL), 0);
	assert_true(json_equal(before, after));
	json_decref(before);
	json_decref(after);
	assert_int_equal(hl_store_claim_next(f->s, &d, &err), 0);
	assert_string_equal(d->delivery_id, "d-held");
	hl_delivery_record_free(d);
}

/* The identity computed at intake comes back with the claim, and the
 * decision stored at finish can be read back by delivery id. */
static void
test_store_identity_and_decision_round_trip(void **state)
{
	struct fixture *f = *state;
	struct hl_delivery_in in = delivery("d-id", "key-1", NULL);
	struct hl_delivery_record *d = NULL;
	struct hl_intake_answer a;
	struct hl_err err = HL_ERR_INIT;
	char *dec = NULL;

	in.failure_key = "o/r|job=5";
	in.task_id = "hl-abc";
	assert_int_equal(hl_store_insert_delivery(f->s, &a, &in, &err), 0);
	assert_int_equal(hl_store_claim_next(f->s, &d, &err), 0);
	assert_string_equal(d->failure_key, "o/r|job=5");
	assert_string_equal(d->task_id, "hl-abc");
	assert_string_equal(d->dedup_key, "key-1");
	assert_int_equal(hl_store_delivery_decision(f->s, &dec, "d-id", &err), -HL_ENOTFOUND);
	assert_int_equal(hl_store_finish_delivery(f->s, "d-id",
	                                          &(struct hl_delivery_result){
	                                                  .state = HL_DELIVERY_PROCESSED,
	                                                  .reason = "dispatched",
	                                                  .decision_json = "{\"agent\":\"rex\"}" },
	                                          &err),
	                 0);
	assert_int_equal(hl_store_delivery_decision(f->s, &dec, "d-id", &err), 0);
	assert_string_equal(dec, "{\"agent\":\"rex\"}");
	free(dec);
	hl_delivery_record_free(d);
}

/* What a listener heard; on PostgreSQL the listener thread writes it
 * while the test reads, so under lock (signals_copy). */
struct signals {
	pthread_mutex_t lock;
	int work, decision;
	char last[64];
};

#define SIGNALS_INIT                                \
	{                                           \
		PTHREAD_MUTEX_INITIALIZER, 0, 0, "" \
	}

static void
signal_cb(void *arg, enum hl_store_channel ch, const char *payload)
{
	struct signals *s = arg;

	pthread_mutex_lock(&s->lock);
	if (ch == HL_CHANNEL_WORK)
		s->work++;
	if (ch == HL_CHANNEL_DECISION) {
		s->decision++;
		snprintf(s->last, sizeof(s->last), "%s", payload);
	}
	pthread_mutex_unlock(&s->lock);
}

/* A consistent copy of what s heard so far. */
static struct signals
signals_copy(struct signals *s)
{
	struct signals c = SIGNALS_INIT;

	pthread_mutex_lock(&s->lock);
	c.work = s->work;
	c.decision = s->decision;
	memcpy(c.last, s->last, sizeof(c.last));
	pthread_mutex_unlock(&s->lock);
	return c;
}

/* Signals reach every listener; queued deliveries signal work and wake
 * the workers; an unsubscribed listener hears nothing more. */
static void
test_store_signals_reach_listeners(void **state)
{
	struct fixture *f = *state;
	struct signals s1 = SIGNALS_INIT, s2 = SIGNALS_INIT;
	struct hl_err err = HL_ERR_INIT;
	char big[8000];

	assert_int_equal(hl_store_subscribe(f->s, signal_cb, &s1, &err), 0);
	assert_int_equal(hl_store_subscribe(f->s, signal_cb, &s2, &err), 0);
	assert_int_equal(hl_store_publish(f->s, HL_CHANNEL_DECISION, "d-1 {}", &err), 0);
	assert_int_equal(signals_copy(&s1).decision, 1);
	assert_string_equal(signals_copy(&s2).last, "d-1 {}");
	(void)hl_store_wait_work(f->s, 0);
	insert(f, "d-signal", NULL, NULL);
	assert_true(signals_copy(&s1).work >= 1);
	assert_true(hl_store_wait_work(f->s, 1000));
	hl_store_unsubscribe(f->s, signal_cb, &s1);
	assert_int_equal(hl_store_publish(f->s, HL_CHANNEL_DECISION, "d-2 {}", &err), 0);
	assert_int_equal(signals_copy(&s1).decision, 1);
	assert_int_equal(signals_copy(&s2).decision, 2);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(hl_store_publish(f->s, HL_CHANNEL_DECISION, big, &err), -HL_ETOOBIG);
	assert_int_equal(hl_store_publish(f->s, HL_CHANNEL_MAX, "", &err), -HL_EINVAL);
	hl_store_unsubscribe(f->s, signal_cb, &s2);
}

/* A store written by a newer healer is refused, not silently used. */
static void
test_store_refuses_a_newer_schema(void **state)
{
	struct fixture *f = *state;
	struct hl_store *s2 = NULL;
	struct hl_err err = HL_ERR_INIT;
	int v = 0;

	assert_int_equal(hl_store_schema_version(f->s, &v, &err), 0);
	assert_true(v >= 6);
	assert_int_equal(
	        raw_exec(f, "INSERT INTO schema_migrations (version, applied_ms) VALUES (999, 0)"),
	        0);
	assert_int_equal(hl_store_open(&s2, f->url, &err), -HL_EDB);
	assert_non_null(strstr(err.msg, "newer"));
	/* read-only handles refuse it too */
	assert_int_equal(hl_store_open_with(&s2, f->url, HL_STORE_READ_ONLY, &err), -HL_EDB);
	assert_non_null(strstr(err.msg, "newer"));
}

/* A store written before the lifecycle had types (schema 5) is carried
 * over: old task statuses become states with reasons, attempts count. */
/*
 * Replaces f's store with one at schema version `version`: the first
 * `version` migrations applied and recorded, then `rows` (the backend's
 * SQL), closed; f->url names it. PostgreSQL: the test's database again,
 * empty; SQLite: NAME in the test's directory.
 */
static void
store_at_version(struct fixture *f, size_t version, const char *name, const char *sqlite_rows,
                 const char *pg_rows)
{
	char path[128];
	sqlite3 *db;
	size_t i;

	hl_store_close(f->s);
	f->s = NULL;
	if (pg_mode) {
		char sql[256];

		snprintf(sql, sizeof(sql), "DROP DATABASE \"%s\" WITH (FORCE)", f->db);
		assert_int_equal(pg_run("postgres", sql), 0);
		snprintf(sql, sizeof(sql),
		         "CREATE DATABASE \"%s\" TEMPLATE template1 STRATEGY FILE_COPY", f->db);
		assert_int_equal(pg_run("postgres", sql), 0);
		assert_int_equal(pg_run(f->db, "CREATE TABLE schema_migrations (version INTEGER"
		                               " PRIMARY KEY, applied_ms BIGINT NOT NULL)"),
		                 0);
		for (i = 0; i < version; i++) {
			assert_int_equal(pg_run(f->db, hl_store_postgres_migrations[i].data), 0);
			snprintf(sql, sizeof(sql), "INSERT INTO schema_migrations VALUES (%zu, 0)",
			         i + 1);
			assert_int_equal(pg_run(f->db, sql), 0);
		}
		assert_int_equal(pg_run(f->db, pg_rows), 0);
		return;
	}
	snprintf(path, sizeof(path), "%s/%s", f->dir, name);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
	                              "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY,"
	                              " applied_ms BIGINT NOT NULL)",
	                              NULL, NULL, NULL),
	                 SQLITE_OK);
	for (i = 0; i < version; i++) {
		char ins[96];
		assert_int_equal(
		        sqlite3_exec(db, hl_store_sqlite_migrations[i].data, NULL, NULL, NULL),
		        SQLITE_OK);
		snprintf(ins, sizeof(ins), "INSERT INTO schema_migrations VALUES (%zu, 0)", i + 1);
		assert_int_equal(sqlite3_exec(db, ins, NULL, NULL, NULL), SQLITE_OK);
	}
	assert_int_equal(sqlite3_exec(db, sqlite_rows, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	snprintf(f->url, sizeof(f->url), "sqlite:%s", path);
}

static void
test_store_upgrades_a_version_5_store(void **state)
{
#define OLD_ROWS(body)                                                                         \
	"INSERT INTO remediation_tasks (task_id, status, agent, created_ms, updated_ms)"       \
	" VALUES ('t-disp', 'dispatched', 'rex', 1, 1), ('t-dec', 'decided', 'bolt', 1, 1),"   \
	" ('t-ex', 'existing', NULL, 1, 1), ('t-claim', 'claimed', NULL, 1, 1);"               \
	"INSERT INTO attempts (task_id, n, agent, started_ms) VALUES ('t-disp', 1, 'rex', 1);" \
	"INSERT INTO deliveries (delivery_id, source, event_name, headers_json, body,"         \
	" received_ms, state, answer, attempts, updated_ms)"                                   \
	" VALUES ('d-old', 'webhook', 'ping', '{}', " body ", 1, 'received', 'accepted', 3, 1);"
	static const char *const rows = OLD_ROWS("x'7b7d'");
	struct fixture *f = *state;
	struct hl_task_record *r = NULL;
	struct hl_delivery_record *d = NULL;
	struct hl_err err = HL_ERR_INIT;

	store_at_version(f, 5, "old.db", rows, OLD_ROWS("'\\x7b7d'::bytea"));
	assert_int_equal(hl_store_open(&f->s, f->url, &err), 0);
	assert_int_equal(hl_store_task_get(f->s, &r, "t-disp", &err), 0);
	assert_int_equal(r->state, HL_TASK_RUNNING);
	assert_int_equal(r->attempts, 1);
	assert_int_equal(r->attempt[0].kind, HL_ATTEMPT_AGENT);
	hl_task_record_free(r);
	assert_int_equal(hl_store_task_get(f->s, &r, "t-dec", &err), 0);
	assert_int_equal(r->state, HL_TASK_SKIPPED);
	assert_string_equal(r->reason, "decide_only");
	hl_task_record_free(r);
	assert_int_equal(hl_store_task_get(f->s, &r, "t-ex", &err), 0);
	assert_int_equal(r->state, HL_TASK_SKIPPED);
	assert_string_equal(r->reason, "existing");
	hl_task_record_free(r);
	assert_int_equal(hl_store_task_get(f->s, &r, "t-claim", &err), 0);
	assert_int_equal(r->state, HL_TASK_RUNNING);
	hl_task_record_free(r);
	assert_int_equal(hl_store_claim_next(f->s, &d, &err), 0);
	assert_int_equal(d->claims, 4);
	hl_delivery_record_free(d);
}

/* A store of schema 16 (escalations enqueued once per task, ref ''): each
 * escalation takes the round it came after (the last attempt started before
 * it was enqueued), so the same round enqueued again after the upgrade is
 * the same row, and a round after a /healer retry is new. Other kinds keep
 * their ref. */
static void
test_store_upgrade_keys_escalations_by_round(void **state)
{
	static const char *const rows =
	        "INSERT INTO remediation_tasks (task_id, state, attempts, created_ms, updated_ms)"
	        " VALUES ('t-esc', 'escalated', 3, 1, 1), ('t-again', 'escalated', 4, 1, 1);"
	        "INSERT INTO attempts (task_id, n, started_ms) VALUES ('t-esc', 1, 100),"
	        " ('t-esc', 2, 200), ('t-esc', 3, 300), ('t-again', 1, 100), ('t-again', 2, 200),"
	        " ('t-again', 3, 300), ('t-again', 4, 900);"
	        "INSERT INTO notifications (task_id, channel, kind, ref, state, next_ms, payload,"
	        " created_ms) VALUES ('t-esc', 'discord', 'escalation', '', 'delivered', 0, 'x',"
	        " 400), ('t-esc', 'github', 'escalation', '', 'pending', 0, 'x', 400),"
	        " ('t-esc', 'github', 'status', '9001', 'delivered', 0, 'x', 500),"
	        " ('t-esc', 'openmemory', 'memory_add', '', 'delivered', 0, 'x', 400),"
	        " ('t-again', 'discord', 'escalation', '', 'delivered', 0, 'x', 400);";
	struct fixture *f = *state;
	struct hl_task_record *r = NULL;
	struct hl_err err = HL_ERR_INIT;
	bool created = true;
	size_t i;

	store_at_version(f, 16, "v16.db", rows, rows);
	assert_int_equal(hl_store_open(&f->s, f->url, &err), 0);
	assert_int_equal(hl_store_task_get(f->s, &r, "t-esc", &err), 0);
	assert_int_equal(r->n_notifications, 4);
	for (i = 0; i < r->n_notifications; i++) {
		const struct hl_notification_record *n = &r->notification[i];
		const char *want = strcmp(n->kind, "escalation") == 0 ? "3"
		                   : strcmp(n->kind, "status") == 0   ? "9001"
		                                                      : "";
		assert_string_equal(n->ref ? n->ref : "", want);
	}
	hl_task_record_free(r);
	assert_int_equal(hl_store_task_get(f->s, &r, "t-again", &err), 0);
	assert_int_equal(r->n_notifications, 1);
	assert_string_equal(r->notification[0].ref, "3");
	hl_task_record_free(r);
	/* round 3 enqueued again: the same row; round 4: a new one */
	assert_int_equal(hl_store_outbox_add(f->s, &created,
	                                     &(struct hl_notification_in){ .task_id = "t-esc",
	                                                                   .channel = "github",
	                                                                   .kind = "escalation",
	                                                                   .ref = "3",
	                                                                   .payload = "y" },
	                                     &err),
	                 0);
	assert_false(created);
	assert_int_equal(hl_store_outbox_add(f->s, &created,
	                                     &(struct hl_notification_in){ .task_id = "t-again",
	                                                                   .channel = "discord",
	                                                                   .kind = "escalation",
	                                                                   .ref = "4",
	                                                                   .payload = "y" },
	                                     &err),
	                 0);
	assert_true(created);
}

/* An attempt begun with a reopen reason runs a stopped (or escalated) task
 * again in its own transaction; without one, or over a cap, it stays. */
static void
test_store_attempt_begin_reopens_a_stopped_task(void **state)
{
	struct fixture *f = *state;
	struct hl_err err = HL_ERR_INIT;
	struct hl_task_record *r = NULL;
	enum hl_budget_wait over = HL_BUDGET_SLOTS;
	char why[160];
	struct hl_task t = { .task_id = "t-re", .repository = "o/r", .state = HL_TASK_RUNNING };
	struct hl_attempt a = { .task_id = "t-re",
		                .n = 2,
		                .kind = HL_ATTEMPT_AGENT,
		                .repository = "o/r",
		                .reopen_reason = "one more attempt" };

	assert_int_equal(hl_store_task_put(f->s, &t, &err), 0);
	t.state = HL_TASK_STOPPED;
	assert_int_equal(hl_store_task_put(f->s, &t, &err), 0);
	/* over the cap of one CodeRun in flight (another task's): still stopped */
	assert_int_equal(hl_store_attempt_put(f->s,
	                                      &(struct hl_attempt){ .task_id = "t-other",
	                                                            .n = 1,
	                                                            .kind = HL_ATTEMPT_AGENT,
	                                                            .phase = HL_PHASE_RUNNING,
	                                                            .outcome = HL_OUTCOME_INVALID,
	                                                            .repository = "o/r" },
	                                      &err),
	                 0);
	assert_int_equal(hl_store_attempt_begin(f->s, &over, why, sizeof(why), &a, 1, 0, 0, &err),
	                 0);
	assert_int_equal(over, HL_BUDGET_SLOTS);
	assert_int_equal(hl_store_task_get(f->s, &r, "t-re", &err), 0);
	assert_int_equal(r->state, HL_TASK_STOPPED);
	assert_true(r->finished_ms > 0);
	hl_task_record_free(r);
	/* begun: running, with the reason and no end time, attempt 2 preparing */
	assert_int_equal(hl_store_attempt_begin(f->s, &over, why, sizeof(why), &a, 0, 0, 0, &err),
	                 0);
	assert_int_equal(over, HL_BUDGET_NONE);
	assert_int_equal(hl_store_task_get(f->s, &r, "t-re", &err), 0);
	assert_int_equal(r->state, HL_TASK_RUNNING);
	assert_int_equal(r->finished_ms, 0);
	assert_string_equal(r->reason, "one more attempt");
	assert_int_equal(r->n_attempts, 1);
	assert_int_equal(r->attempt[0].phase, HL_PHASE_PREPARING);
	hl_task_record_free(r);
	/* without a reason a stopped task stays stopped */
	assert_int_equal(hl_store_task_put(f->s, &t, &err), 0);
	a.n = 3;
	a.reopen_reason = NULL;
	assert_int_equal(hl_store_attempt_begin(f->s, &over, why, sizeof(why), &a, 0, 0, 0, &err),
	                 0);
	assert_int_equal(hl_store_task_get(f->s, &r, "t-re", &err), 0);
	assert_int_equal(r->state, HL_TASK_STOPPED);
	assert_int_equal(r->n_attempts, 2);
	hl_task_record_free(r);
	/* a task that is running is not touched (its reason stays) */
	t.state = HL_TASK_RUNNING;
	t.reason = "working";
	assert_int_equal(hl_store_task_put(f->s, &t, &err), 0);
	a.n = 4;
	a.reopen_reason = "one more attempt";
	assert_int_equal(hl_store_attempt_begin(f->s, &over, why, sizeof(why), &a, 0, 0, 0, &err),
	                 0);
	assert_int_equal(hl_store_task_get(f->s, &r, "t-re", &err), 0);
	assert_string_equal(r->reason, "working");
	hl_task_record_free(r);
}

/* An attempt begun with a decision keeps it with the task in its own
 * transaction (a /healer retry's hint); over a cap the decision stays. */
static void
test_store_attempt_begin_keeps_the_decision(void **state)
{
	struct fixture *f = *state;
	struct hl_err err = HL_ERR_INIT;
	struct hl_task_record *r = NULL;
	enum hl_budget_wait over;
	char why[160];
	struct hl_attempt a = { .task_id = "t-dec",
		                .n = 1,
		                .kind = HL_ATTEMPT_AGENT,
		                .repository = "o/r",
		                .decision_json = "{\"queued_hint\":\"h\"}" };

	assert_int_equal(hl_store_task_put(f->s,
	                                   &(struct hl_task){ .task_id = "t-dec",
	                                                      .repository = "o/r",
	                                                      .state = HL_TASK_RUNNING,
	                                                      .decision_json = "{}" },
	                                   &err),
	                 0);
	assert_int_equal(hl_store_attempt_put(f->s,
	                                      &(struct hl_attempt){ .task_id = "t-dec-other",
	                                                            .n = 1,
	                                                            .kind = HL_ATTEMPT_AGENT,
	                                                            .phase = HL_PHASE_RUNNING,
	                                                            .outcome = HL_OUTCOME_INVALID,
	                                                            .repository = "o/r" },
	                                      &err),
	                 0);
	assert_int_equal(hl_store_attempt_begin(f->s, &over, why, sizeof(why), &a, 1, 0, 0, &err),
	                 0);
	assert_int_equal(over, HL_BUDGET_SLOTS);
	assert_int_equal(hl_store_task_get(f->s, &r, "t-dec", &err), 0);
	assert_string_equal(r->decision_json, "{}");
	hl_task_record_free(r);
	assert_int_equal(hl_store_attempt_begin(f->s, &over, why, sizeof(why), &a, 0, 0, 0, &err),
	                 0);
	assert_int_equal(over, HL_BUDGET_NONE);
	assert_int_equal(hl_store_task_get(f->s, &r, "t-dec", &err), 0);
	assert_string_equal(r->decision_json, "{\"queued_hint\":\"h\"}");
	assert_int_equal(r->n_attempts, 1);
	hl_task_record_free(r);
}

/* Ending a task succeeded or escalated marks its memory pending in that
 * write; hl_store_task_remembered clears it; other states mark nothing. */
static void
test_store_task_remember_pending(void **state)
{
	struct fixture *f = *state;
	struct hl_err err = HL_ERR_INIT;
	char ids[8][HL_TASK_ID_MAX];
	size_t n = 99;
	struct hl_task t = { .task_id = "t-mem", .repository = "o/r", .state = HL_TASK_RUNNING };

	assert_int_equal(hl_store_task_put(f->s, &t, &err), 0);
	assert_int_equal(hl_store_tasks_remember(f->s, ids, 8, &n, &err), 0);
	assert_int_equal(n, 0);
	t.state = HL_TASK_ESCALATED;
	assert_int_equal(hl_store_task_put(f->s, &t, &err), 0);
	assert_int_equal(hl_store_tasks_remember(f->s, ids, 8, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(ids[0], "t-mem");
	/* the same state written again (another field) marks nothing anew */
	assert_int_equal(hl_store_task_remembered(f->s, "t-mem", &err), 0);
	t.reason = "again";
	assert_int_equal(hl_store_task_put(f->s, &t, &err), 0);
	assert_int_equal(hl_store_tasks_remember(f->s, ids, 8, &n, &err), 0);
	assert_int_equal(n, 0);
	/* one more attempt, then success: pending again */
	t.state = HL_TASK_RUNNING;
	assert_int_equal(hl_store_task_put(f->s, &t, &err), 0);
	t.state = HL_TASK_SUCCEEDED;
	assert_int_equal(hl_store_task_put(f->s, &t, &err), 0);
	/* another ending succeeded is pending too; one skipped is not */
	t = (struct hl_task){ .task_id = "t-mem2", .repository = "o/r", .state = HL_TASK_RUNNING };
	assert_int_equal(hl_store_task_put(f->s, &t, &err), 0);
	t.state = HL_TASK_SUCCEEDED;
	assert_int_equal(hl_store_task_put(f->s, &t, &err), 0);
	t = (struct hl_task){ .task_id = "t-mem3", .repository = "o/r", .state = HL_TASK_RUNNING };
	assert_int_equal(hl_store_task_put(f->s, &t, &err), 0);
	t.state = HL_TASK_SKIPPED;
	assert_int_equal(hl_store_task_put(f->s, &t, &err), 0);
	assert_int_equal(hl_store_tasks_remember(f->s, ids, 8, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(hl_store_task_remembered(f->s, "t-mem", &err), 0);
	assert_int_equal(hl_store_task_remembered(f->s, "t-mem2", &err), 0);
	assert_int_equal(hl_store_task_remembered(f->s, "t-none", &err), 0);
	assert_int_equal(hl_store_tasks_remember(f->s, ids, 8, &n, &err), 0);
	assert_int_equal(n, 0);
}

/* A task read while another handle stops it and gives it one more attempt,
 * over and over: the record is of one moment, so a stopped task never shows
 * an attempt still open (its state and its attempts were read apart). */
struct flip {
	struct hl_store *s;
	int cycles;
	int rc;
	int done; /* __atomic */
};

static void *
flip_stop_and_retry(void *arg)
{
	struct flip *fl = arg;
	struct hl_err err = HL_ERR_INIT;
	enum hl_budget_wait over;
	char why[160];
	int n;

	for (n = 1; n <= fl->cycles && fl->rc == 0; n++) {
		fl->rc = hl_store_attempt_begin(fl->s, &over, why, sizeof(why),
		                                &(struct hl_attempt){ .task_id = "t-flip",
		                                                      .n = n,
		                                                      .kind = HL_ATTEMPT_AGENT,
		                                                      .reopen_reason = "again" },
		                                0, 0, 0, &err);
		if (fl->rc == 0)
			fl->rc = hl_store_attempt_put(
			        fl->s,
			        &(struct hl_attempt){ .task_id = "t-flip",
			                              .n = n,
			                              .kind = HL_ATTEMPT_AGENT,
			                              .phase = HL_PHASE_DONE,
			                              .outcome = HL_OUTCOME_STOPPED },
			        &err);
		if (fl->rc == 0)
			fl->rc = hl_store_task_put(
			        fl->s,
			        &(struct hl_task){ .task_id = "t-flip", .state = HL_TASK_STOPPED },
			        &err);
	}
	__atomic_store_n(&fl->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void
test_store_task_is_read_as_of_one_moment(void **state)
{
	struct fixture *f = *state;
	struct hl_err err = HL_ERR_INIT;
	struct hl_store *ro = NULL;
	struct hl_task_record *r = NULL;
	struct flip fl = { .cycles = 300 };
	pthread_t t;
	size_t k;
	int reads = 0, torn = 0;

	assert_int_equal(hl_store_task_put(f->s,
	                                   &(struct hl_task){ .task_id = "t-flip",
	                                                      .repository = "o/r",
	                                                      .state = HL_TASK_RUNNING },
	                                   &err),
	                 0);
	assert_int_equal(hl_store_task_put(
	                         f->s,
	                         &(struct hl_task){ .task_id = "t-flip", .state = HL_TASK_STOPPED },
	                         &err),
	                 0);
	assert_int_equal(hl_store_open_with(&ro, f->url, HL_STORE_READ_ONLY, &err), 0);
	fl.s = f->s;
	assert_int_equal(pthread_create(&t, NULL, flip_stop_and_retry, &fl), 0);
	while (!__atomic_load_n(&fl.done, __ATOMIC_ACQUIRE)) {
		assert_int_equal(hl_store_task_get(ro, &r, "t-flip", &err), 0);
		reads++;
		for (k = 0; r->state == HL_TASK_STOPPED && k < r->n_attempts; k++)
			torn += r->attempt[k].phase != HL_PHASE_DONE;
		hl_task_record_free(r);
	}
	pthread_join(t, NULL);
	assert_int_equal(fl.rc, 0);
	hl_store_close(ro);
	print_message("# %d reads while the task flipped %d times\n", reads, fl.cycles);
	assert_true(reads > 0);
	assert_int_equal(torn, 0);
}

/* A PR's tasks, newest first, up to the number asked for; the count is of
 * all of them (a /healer status reply says how many more there are), not
 * of those read, and leaves out other PRs and a skipped task no agent had. */
static void
test_store_tasks_of_pr_counts_every_task(void **state)
{
	struct fixture *f = *state;
	struct hl_err err = HL_ERR_INIT;
	char ids[10][HL_TASK_ID_MAX], id[32];
	size_t n = 0, total = 0;
	struct hl_task t = { .repository = "o/r",
		             .branch = "feat",
		             .kind = "ci",
		             .agent = "rex",
		             .state = HL_TASK_RUNNING,
		             .pr_number = 77,
		             .next_check_ms = HL_TASK_NO_CHECK };
	int i;

	for (i = 0; i < 1003; i++) {
		snprintf(id, sizeof(id), "pr77-%04d", i);
		t.task_id = id;
		assert_int_equal(hl_store_task_put(f->s, &t, &err), 0);
	}
	t.task_id = "pr78-0";
	t.pr_number = 78;
	assert_int_equal(hl_store_task_put(f->s, &t, &err), 0);
	t.task_id = "pr77-skipped";
	t.pr_number = 77;
	t.agent = NULL;
	t.state = HL_TASK_SKIPPED;
	t.reason = "decide_only";
	assert_int_equal(hl_store_task_put(f->s, &t, &err), 0);

	assert_int_equal(hl_store_tasks_of_pr(f->s, ids, 10, &n, &total, "o/r", 77, &err), 0);
	assert_int_equal(n, 10);
	assert_int_equal(total, 1003);
	assert_string_equal(ids[0], "pr77-1002");
	assert_string_equal(ids[9], "pr77-0993");
	assert_int_equal(hl_store_tasks_of_pr(f->s, ids, 10, &n, &total, "o/r", 78, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(total, 1);
	assert_int_equal(hl_store_tasks_of_pr(f->s, ids, 10, &n, &total, "o/r", 79, &err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(total, 0);
}

/* The loop's state: due and queued tasks, leases, CodeRun lookups, the
 * active task of a workflow + job, CI results, budgets, key/value. */
static void
test_store_loop_state(void **state)
{
	struct fixture *f = *state;
	struct hl_err err = HL_ERR_INIT;
	char ids[8][HL_TASK_ID_MAX], out[HL_TASK_ID_MAX], *v = NULL;
	struct hl_ci_result_record cr;
	struct hl_task_record *r = NULL;
	int64_t next = -1, active = -1, repo = -1, pruned = -1;
	size_t n = 0;
	bool got = false;
	int an = 0;
	struct hl_task t = { .task_id = "t-a",
		             .repository = "o/r",
		             .branch = "feat",
		             .target_branch = "feat",
		             .workflow = "CI",
		             .job = "lint",
		             .kind = "ci",
		             .state = HL_TASK_RUNNING,
		             .pr_number = 12,
		             .next_check_ms = 5000 };

	assert_int_equal(hl_store_task_put(f->s, &t, &err), 0);
	t.task_id = "t-b";
	t.job = "test";
	t.next_check_ms = 9000;
	assert_int_equal(hl_store_task_put(f->s, &t, &err), 0);
	assert_int_equal(hl_store_tasks_due(f->s, ids, 8, &n, 6000, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(ids[0], "t-a");
	assert_int_equal(hl_store_next_check(f->s, &next, &err), 0);
	assert_int_equal(next, 5000);
	/* clearing the check takes a task off the due list */
	t.task_id = "t-a";
	t.job = NULL;
	t.next_check_ms = HL_TASK_NO_CHECK;
	assert_int_equal(hl_store_task_put(f->s, &t, &err), 0);
	assert_int_equal(hl_store_tasks_due(f->s, ids, 8, &n, 10000, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(ids[0], "t-b");

	/* leases: one holder at a time, taken over once expired */
	assert_int_equal(hl_store_task_lease(f->s, &got, "t-a", "r1", 100, 200, &err), 0);
	assert_true(got);
	assert_int_equal(hl_store_task_lease(f->s, &got, "t-a", "r2", 150, 250, &err), 0);
	assert_false(got);
	assert_int_equal(hl_store_task_lease(f->s, &got, "t-a", "r1", 150, 300, &err), 0);
	assert_true(got);
	/* PostgreSQL measures leases on its own clock (their length given) */
	if (pg_mode)
		assert_int_equal(raw_exec(f, "UPDATE remediation_tasks SET lease_until_ms = 1"
		                             " WHERE task_id = 't-a'"),
		                 0);
	assert_int_equal(hl_store_task_lease(f->s, &got, "t-a", "r2", 301, 400, &err), 0);
	assert_true(got);
	assert_int_equal(hl_store_task_release(f->s, "t-a", "r1", &err), 0);
	assert_int_equal(hl_store_task_lease(f->s, &got, "t-a", "r1", 302, 400, &err), 0);
	assert_false(got);
	assert_int_equal(hl_store_task_release(f->s, "t-a", "r2", &err), 0);
	assert_int_equal(hl_store_task_lease(f->s, &got, "t-a", "r1", 303, 400, &err), 0);
	assert_true(got);

	/* the active task of a workflow + job, on its branch or target branch */
	assert_int_equal(
	        hl_store_task_active_for(f->s, out, "o/r", "feat", "CI", "lint", NULL, &err), 0);
	assert_string_equal(out, "t-a");
	assert_int_equal(
	        hl_store_task_active_for(f->s, out, "o/r", "feat", "CI", "lint", "t-a", &err),
	        -HL_ENOTFOUND);
	assert_int_equal(
	        hl_store_task_active_for(f->s, out, "o/r", "main", "CI", "lint", NULL, &err),
	        -HL_ENOTFOUND);
	assert_int_equal(hl_store_task_of_pr(f->s, out, "o/r", 12, false, &err), 0);
	/* a PR's active task, behind a newer one that ended (/healer stop) */
	t.task_id = "t-pr-old";
	t.pr_number = 13;
	t.next_check_ms = HL_TASK_NO_CHECK;
	assert_int_equal(hl_store_task_put(f->s, &t, &err), 0);
	t.task_id = "t-pr-new";
	assert_int_equal(hl_store_task_put(f->s, &t, &err), 0);
	t.state = HL_TASK_STOPPED;
	assert_int_equal(hl_store_task_put(f->s, &t, &err), 0);
	assert_int_equal(hl_store_task_of_pr(f->s, out, "o/r", 13, true, &err), 0);
	assert_string_equal(out, "t-pr-old");
	t.task_id = "t-pr-old";
	assert_int_equal(hl_store_task_put(f->s, &t, &err), 0);
	assert_int_equal(hl_store_task_of_pr(f->s, out, "o/r", 13, true, &err), -HL_ENOTFOUND);
	assert_int_equal(hl_store_task_of_pr(f->s, out, "o/r", 13, false, &err), 0);
	t.state = HL_TASK_RUNNING;
	t.pr_number = 12;

	/* attempts by CodeRun, budgets */
	assert_int_equal(hl_store_attempt_put(f->s,
	                                      &(struct hl_attempt){ .task_id = "t-a",
	                                                            .n = 2,
	                                                            .kind = HL_ATTEMPT_AGENT,
	                                                            .phase = HL_PHASE_RUNNING,
	                                                            .outcome = HL_OUTCOME_INVALID,
	                                                            .coderun_name = "healer-x-2",
	                                                            .repository = "o/r",
	                                                            .prompt = "fix it" },
	                                      &err),
	                 0);
	assert_int_equal(hl_store_attempt_of_coderun(f->s, out, &an, "healer-x-2", &err), 0);
	assert_string_equal(out, "t-a");
	assert_int_equal(an, 2);
	assert_int_equal(hl_store_attempt_of_coderun(f->s, out, &an, "nope", &err), -HL_ENOTFOUND);
	assert_int_equal(hl_store_attempt_prompt(f->s, &v, "t-a", 2, &err), 0);
	assert_string_equal(v, "fix it");
	free(v);
	v = NULL;
	assert_int_equal(hl_store_budget_usage(f->s, &active, &repo, "o/r", 0, &err), 0);
	assert_int_equal(active, 1);
	assert_int_equal(repo, 1);
	assert_int_equal(hl_store_budget_usage(f->s, &active, &repo, "x/y", 0, &err), 0);
	assert_int_equal(repo, 0);

	/* CI results: one per delivery, the latest after a time */
	struct hl_ci_result res = { .task_id = "t-a",
		                    .delivery_id = "d-1",
		                    .head_sha = "abc",
		                    .conclusion = "failure",
		                    .completed_ms = 1000 };
	assert_int_equal(hl_store_ci_result_add(f->s, &res, &err), 0);
	assert_int_equal(hl_store_ci_result_add(f->s, &res, &err), 0);
	res.delivery_id = "d-2";
	res.conclusion = "success";
	res.completed_ms = 2000;
	assert_int_equal(hl_store_ci_result_add(f->s, &res, &err), 0);
	assert_int_equal(hl_store_ci_result_latest(f->s, &cr, "t-a", 0, NULL, &err), 0);
	assert_string_equal(cr.conclusion, "success");
	assert_int_equal(hl_store_ci_result_latest(f->s, &cr, "t-a", 2001, NULL, &err),
	                 -HL_ENOTFOUND);
	/* on one branch: that branch's results and those naming none */
	res.delivery_id = "d-3";
	res.branch = "main";
	res.conclusion = "failure";
	res.completed_ms = 3000;
	assert_int_equal(hl_store_ci_result_add(f->s, &res, &err), 0);
	assert_int_equal(hl_store_ci_result_latest(f->s, &cr, "t-a", 0, NULL, &err), 0);
	assert_string_equal(cr.conclusion, "failure");
	assert_int_equal(hl_store_ci_result_latest(f->s, &cr, "t-a", 0, "fix/x", &err), 0);
	assert_string_equal(cr.conclusion, "success");
	assert_int_equal(cr.completed_ms, 2000);
	assert_int_equal(hl_store_ci_result_latest(f->s, &cr, "t-a", 0, "main", &err), 0);
	assert_int_equal(cr.completed_ms, 3000);
	res.branch = NULL;

	/* queued tasks in queue order */
	t.task_id = "t-q1";
	t.state = HL_TASK_QUEUED;
	t.next_check_ms = 0;
	assert_int_equal(hl_store_task_put(f->s, &t, &err), 0);
	t.task_id = "t-q2";
	assert_int_equal(hl_store_task_put(f->s, &t, &err), 0);
	assert_int_equal(hl_store_tasks_queued(f->s, ids, 8, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(ids[0], "t-q1");
	assert_int_equal(hl_store_task_get(f->s, &r, "t-q1", &err), 0);
	assert_true(r->queued_ms > 0);
	assert_int_equal(r->pr_number, 12);
	assert_string_equal(r->workflow, "CI");
	hl_task_record_free(r);

	assert_int_equal(hl_store_kv_get(f->s, &v, "watch", &err), -HL_ENOTFOUND);
	assert_int_equal(hl_store_kv_put(f->s, "watch", "41", &err), 0);
	assert_int_equal(hl_store_kv_put(f->s, "watch", "42", &err), 0);
	assert_int_equal(hl_store_kv_get(f->s, &v, "watch", &err), 0);
	assert_string_equal(v, "42");
	free(v);

	/* pruning: only the prefix's keys written before the cut; a prefix
	 * with LIKE's wildcards matches itself only */
	assert_int_equal(hl_store_kv_put(f->s, "refusal:a/b#1:x", "1", &err), 0);
	assert_int_equal(hl_store_kv_put(f->s, "refusal:a/b#2:y", "2", &err), 0);
	assert_int_equal(hl_store_kv_put(f->s, "refusal_x", "3", &err), 0);
	assert_int_equal(
	        hl_store_kv_prune(f->s, &pruned, "refusal:", hl_time_wall_ms() - 60000, &err), 0);
	assert_int_equal(pruned, 0);
	assert_int_equal(hl_store_kv_prune(f->s, &pruned, "refusal%", hl_time_wall_ms() + 1, &err),
	                 0);
	assert_int_equal(pruned, 0);
	assert_int_equal(hl_store_kv_prune(f->s, &pruned, "refusal:", hl_time_wall_ms() + 1, &err),
	                 0);
	assert_int_equal(pruned, 2);
	assert_int_equal(hl_store_kv_get(f->s, &v, "refusal:a/b#1:x", &err), -HL_ENOTFOUND);
	assert_int_equal(hl_store_kv_get(f->s, &v, "refusal_x", &err), 0);
	free(v);
	assert_int_equal(hl_store_kv_get(f->s, &v, "watch", &err), 0);
	free(v);
	assert_int_equal(hl_store_kv_prune(f->s, &pruned, "", hl_time_wall_ms() + 1, &err),
	                 -HL_EINVAL);
}

/* Holds shared by the replicas: the later end wins, whatever the order of
 * the puts, also when two handles put at the same moment (one statement,
 * not a read then a write). */
#define HOLD_ROUNDS 400

static struct hl_store *second_handle(struct fixture *f);

struct hold_racer {
	struct hl_store *s;
	pthread_barrier_t *bar;
	int64_t odd; /* 1: puts the later end of each round */
	int failures;
};

static void *
hold_race(void *arg)
{
	struct hold_racer *h = arg;
	struct hl_err err = HL_ERR_INIT;
	int i;

	for (i = 0; i < HOLD_ROUNDS; i++) {
		pthread_barrier_wait(h->bar);
		if (hl_store_hold_put(h->s, "hold:race", 1000 + 2 * i + h->odd, &err) < 0)
			h->failures++;
		pthread_barrier_wait(h->bar);
		pthread_barrier_wait(h->bar); /* the main thread checks */
	}
	return NULL;
}

static void
test_store_hold_keeps_the_later_end(void **state)
{
	struct fixture *f = *state;
	struct hl_err err = HL_ERR_INIT;
	struct hold_racer r[2];
	pthread_barrier_t bar;
	pthread_t th[2];
	int64_t until;
	int i, lost = 0;

	assert_int_equal(hl_store_hold_get(f->s, &until, "hold:x", &err), 0);
	assert_int_equal(until, 0);
	assert_int_equal(hl_store_hold_put(f->s, "hold:x", 500, &err), 0);
	assert_int_equal(hl_store_hold_put(f->s, "hold:x", 400, &err), 0);
	assert_int_equal(hl_store_hold_get(f->s, &until, "hold:x", &err), 0);
	assert_int_equal(until, 500);
	assert_int_equal(hl_store_hold_put(f->s, "hold:x", 0, &err), 0);
	assert_int_equal(hl_store_hold_put(f->s, "hold:x", 600, &err), 0);
	assert_int_equal(hl_store_hold_get(f->s, &until, "hold:x", &err), 0);
	assert_int_equal(until, 600);
	/* a value that is not a number is no hold: any end replaces it */
	assert_int_equal(hl_store_kv_put(f->s, "hold:y", "99999x", &err), 0);
	assert_int_equal(hl_store_hold_put(f->s, "hold:y", 7, &err), 0);
	assert_int_equal(hl_store_hold_get(f->s, &until, "hold:y", &err), 0);
	assert_int_equal(until, 7);

	/* two handles (two replicas) put at once, round after round */
	pthread_barrier_init(&bar, NULL, 3);
	for (i = 0; i < 2; i++) {
		r[i] = (struct hold_racer){ .s = i ? second_handle(f) : f->s,
			                    .bar = &bar,
			                    .odd = i };
		assert_int_equal(pthread_create(&th[i], NULL, hold_race, &r[i]), 0);
	}
	for (i = 0; i < HOLD_ROUNDS; i++) {
		pthread_barrier_wait(&bar);
		pthread_barrier_wait(&bar);
		assert_int_equal(hl_store_hold_get(f->s, &until, "hold:race", &err), 0);
		lost += until != 1000 + 2 * i + 1;
		pthread_barrier_wait(&bar);
	}
	for (i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&bar);
	hl_store_close(r[1].s);
	assert_int_equal(r[0].failures + r[1].failures, 0);
	assert_int_equal(lost, 0);
}

/* Redelivery records (store/redeliver.h): a stored delivery is known
 * whatever it became; a guid is claimed once, by one handle only (on
 * PostgreSQL a second handle, as another replica, loses); a released
 * pending claim can be taken again, a finished one cannot. */
static void
test_store_redeliveries(void **state)
{
	struct fixture *f = *state;
	struct hl_err err = HL_ERR_INIT;
	struct hl_store *s2 = NULL;
	struct hl_redelivery r = { .guid = "g-1",
		                   .hook = "repo:o/r:7",
		                   .github_id = 1001,
		                   .event = "workflow_job",
		                   .status_code = 502,
		                   .owner = "a" };
	bool known = true, claimed = false;
	struct hl_redelivery_history hist = { -1, -1 };
	int64_t before = hl_time_wall_ms();
	char row[RAW_COLS][256];

	insert(f, "d-stored", NULL, NULL);
	insert(f, "d-skipped", NULL, "not_a_failure");
	assert_int_equal(hl_store_delivery_known(f->s, &known, "d-stored", &err), 0);
	assert_true(known);
	assert_int_equal(hl_store_delivery_known(f->s, &known, "d-skipped", &err), 0);
	assert_true(known);
	assert_int_equal(hl_store_delivery_known(f->s, &known, "g-1", &err), 0);
	assert_false(known);
	assert_int_equal(hl_store_delivery_known(f->s, &known, "", &err), -HL_EINVAL);

	assert_int_equal(hl_store_redelivery_claim(f->s, &claimed, &hist, &r, &err), 0);
	assert_true(claimed);
	assert_int_equal(hist.not_taken, 0);
	assert_true(hist.first_ms >= before && hist.first_ms <= hl_time_wall_ms());
	before = hist.first_ms;
	if (pg_mode) {
		assert_int_equal(hl_store_open(&s2, f->url, &err), 0);
		r.owner = "b";
		assert_int_equal(hl_store_redelivery_claim(s2, &claimed, NULL, &r, &err), 0);
		assert_false(claimed);
		hl_store_close(s2);
		r.owner = "a";
	}
	assert_int_equal(hl_store_redelivery_claim(f->s, &claimed, &hist, &r, &err), 0);
	assert_false(claimed);
	/* released while pending: claimable again, once; a rate limit (not
	 * counted) and two requests GitHub did not take (counted) */
	assert_int_equal(hl_store_redelivery_release(f->s, &r, false, "rate limit", &err), 0);
	assert_int_equal(hl_store_redelivery_claim(f->s, &claimed, &hist, &r, &err), 0);
	assert_true(claimed);
	assert_int_equal(hist.not_taken, 0);
	assert_int_equal(hl_store_redelivery_release(f->s, &r, true, "status 502", &err), 0);
	assert_int_equal(
	        raw_row(f, "SELECT outcome, detail FROM redeliveries WHERE guid = 'g-1'", row), 0);
	assert_string_equal(row[0], "retry");
	assert_string_equal(row[1], "status 502");
	assert_int_equal(hl_store_redelivery_claim(f->s, &claimed, &hist, &r, &err), 0);
	assert_true(claimed);
	assert_int_equal(hist.not_taken, 1);
	assert_int_equal(hl_store_redelivery_claim(f->s, &claimed, &hist, &r, &err), 0);
	assert_false(claimed);
	assert_int_equal(hl_store_redelivery_release(f->s, &r, true, NULL, &err), 0);
	assert_int_equal(hl_store_redelivery_claim(f->s, &claimed, &hist, &r, &err), 0);
	assert_true(claimed);
	assert_int_equal(hist.not_taken, 2);
	assert_true(hist.first_ms == before); /* kept from the first claim */
	assert_int_equal(hl_store_redelivery_finish(f->s, &r, "requested", NULL, &err), 0);
	/* finished: a release does nothing, the guid stays taken */
	assert_int_equal(hl_store_redelivery_release(f->s, &r, true, NULL, &err), 0);
	assert_int_equal(hl_store_redelivery_claim(f->s, &claimed, &hist, &r, &err), 0);
	assert_false(claimed);
	assert_int_equal(raw_row(f,
	                         "SELECT outcome, requested_by, status_code, github_id FROM"
	                         " redeliveries WHERE guid = 'g-1'",
	                         row),
	                 0);
	assert_string_equal(row[0], "requested");
	assert_string_equal(row[1], "a");
	assert_string_equal(row[2], "502");
	assert_string_equal(row[3], "1001");
	assert_int_equal(hl_store_redelivery_finish(f->s, &r, "maybe", NULL, &err), -HL_EINVAL);
	r.guid = "g-2";
	assert_int_equal(hl_store_redelivery_finish(f->s, &r, "failed", "x", &err),
	                 -HL_ENOTFOUND);

	/* a claim that went stale while its request ran is taken by another
	 * claimer: the first one's end and release leave the row to it */
	r.guid = "g-3";
	assert_int_equal(hl_store_redelivery_claim(f->s, &claimed, NULL, &r, &err), 0);
	assert_true(claimed);
	assert_int_equal(
	        raw_exec(f, "UPDATE redeliveries SET updated_ms = 0 WHERE guid = 'g-3'"), 0);
	r.owner = "b";
	assert_int_equal(hl_store_redelivery_claim(f->s, &claimed, NULL, &r, &err), 0);
	assert_true(claimed);
	r.owner = "a";
	assert_int_equal(hl_store_redelivery_finish(f->s, &r, "failed", "late", &err),
	                 -HL_ECONFLICT);
	assert_int_equal(hl_store_redelivery_release(f->s, &r, true, "late", &err), 0);
	assert_int_equal(raw_row(f,
	                         "SELECT outcome, requested_by, not_taken FROM redeliveries"
	                         " WHERE guid = 'g-3'",
	                         row),
	                 0);
	assert_string_equal(row[0], "pending");
	assert_string_equal(row[1], "b");
	assert_string_equal(row[2], "0");
	r.owner = "b";
	assert_int_equal(hl_store_redelivery_finish(f->s, &r, "requested", NULL, &err), 0);
	assert_int_equal(hl_store_redelivery_finish(f->s, &r, "failed", NULL, &err),
	                 -HL_ECONFLICT);
	assert_int_equal(
	        raw_row(f, "SELECT outcome FROM redeliveries WHERE guid = 'g-3'", row), 0);
	assert_string_equal(row[0], "requested");
}

static void
outbox_count_cb(void *arg, const char *channel, const char *state, int64_t n)
{
	int64_t *counts = arg;
	enum hl_notification_state s = hl_notification_state_from_name(state);

	assert_true(strcmp(channel, "discord") == 0 || strcmp(channel, "slack") == 0);
	assert_int_not_equal(s, HL_OUTBOX_STATE_INVALID);
	counts[s] += n;
}

/* The outbox: one notification per (task, channel, kind, ref), due ones
 * handed out, results recorded once, listed on the task. */
static void
test_store_outbox(void **state)
{
	struct fixture *f = *state;
	struct hl_err err = HL_ERR_INIT;
	struct hl_notification *due = NULL;
	struct hl_task_record *r = NULL;
	int64_t counts[HL_OUTBOX_STATE_MAX] = { 0 };
	size_t n = 0, i;
	bool created = false;
	struct hl_notification_in in = {
		.task_id = "t-o", .channel = "discord", .kind = "escalation", .payload = "{}"
	};

	assert_int_equal(
	        hl_store_task_put(f->s,
	                          &(struct hl_task){ .task_id = "t-o", .state = HL_TASK_RUNNING },
	                          &err),
	        0);
	assert_int_equal(hl_store_outbox_add(f->s, &created, &in, &err), 0);
	assert_true(created);
	assert_int_equal(hl_store_outbox_add(f->s, &created, &in, &err), 0);
	assert_false(created);
	in.channel = "slack";
	assert_int_equal(hl_store_outbox_add(f->s, &created, &in, &err), 0);
	assert_true(created);
	assert_int_equal(hl_store_outbox_due(f->s, &due, 10, &n, INT64_MAX / 2, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(due[0].channel, "discord");
	assert_int_equal(
	        hl_store_outbox_update(f->s, due[0].id, HL_OUTBOX_DELIVERED, 1, 0, NULL, &err), 0);
	/* a result is recorded once */
	assert_int_equal(hl_store_outbox_update(f->s, due[0].id, HL_OUTBOX_FAILED, 2, 0, "x", &err),
	                 -HL_ECONFLICT);
	assert_int_equal(hl_store_outbox_update(f->s, due[1].id, HL_OUTBOX_PENDING, 1,
	                                        INT64_MAX / 2, "429", &err),
	                 0);
	for (i = 0; i < n; i++)
		hl_notification_release(&due[i]);
	free(due);
	due = NULL;
	assert_int_equal(hl_store_outbox_due(f->s, &due, 10, &n, 1, &err), 0);
	assert_int_equal(n, 0);
	free(due);
	assert_int_equal(hl_store_outbox_counts(f->s, outbox_count_cb, counts, &err), 0);
	assert_int_equal(counts[HL_OUTBOX_DELIVERED], 1);
	assert_int_equal(counts[HL_OUTBOX_PENDING], 1);
	assert_int_equal(hl_store_task_get(f->s, &r, "t-o", &err), 0);
	assert_int_equal(r->n_notifications, 2);
	assert_string_equal(r->notification[0].state, "delivered");
	assert_string_equal(r->notification[1].last_error, "429");
	hl_task_record_free(r);
}

/* A notification is due while pending and its time has come; an outbox
 * that read it due takes it under its lock, once: taken, it is not due
 * until the sender's lease ends (renewed while the sender lives), and
 * another outbox's recorded result (delivered, or put off) leaves nothing
 * to take. */
static void
test_store_outbox_take(void **state)
{
	struct fixture *f = *state;
	struct hl_err err = HL_ERR_INIT;
	struct hl_notification *due = NULL;
	size_t n = 0;
	int64_t id, id2, first, lost_until, at = 0, t0, lease_end;
	int tries;
	bool taken = false;
	char row[RAW_COLS][256], sql[128];
	struct hl_notification_in in = { .task_id = "t-c",
		                         .channel = "slack",
		                         .kind = "escalation",
		                         .ref = "3",
		                         .payload = "{}" };
	const int64_t now = hl_time_wall_ms() + 1000;

	hl_store_set_claim_lease(f->s, 60000);
	assert_int_equal(hl_store_outbox_add(f->s, NULL, &in, &err), 0);
	assert_int_equal(hl_store_outbox_due(f->s, &due, 10, &n, now, &err), 0);
	assert_int_equal(n, 1);
	id = due[0].id;
	hl_notification_release(&due[0]);
	free(due);
	assert_int_equal(hl_store_outbox_take(f->s, &taken, id + 1000, now, &err), 0);
	assert_false(taken);
	t0 = hl_time_wall_ms();
	assert_int_equal(hl_store_outbox_take(f->s, &taken, id, now, &err), 0);
	assert_true(taken);
	snprintf(sql, sizeof(sql), "SELECT sending_by, next_ms FROM notifications WHERE id = %lld",
	         (long long)id);
	assert_int_equal(raw_row(f, sql, row), 0);
	assert_string_equal(row[0], hl_store_owner(f->s));
	lease_end = atoll(row[1]);
	if (pg_mode) {
		/* the lease's 60 s from the database's clock (this host's here) */
		assert_true(lease_end >= t0 + 60000 - 1000);
		assert_true(lease_end <= hl_time_wall_ms() + 60000 + 1000);
	} else {
		assert_int_equal(lease_end, now + 60000);
	}
	/* taken: another outbox (whose lock the first one's lost session
	 * freed) neither lists nor takes it while the send may run */
	assert_int_equal(hl_store_outbox_take(f->s, &taken, id, now, &err), 0);
	assert_false(taken);
	assert_int_equal(hl_store_outbox_due(f->s, &due, 10, &n, lease_end - 1, &err), 0);
	assert_int_equal(n, 0);
	free(due);
	due = NULL;
	if (pg_mode) {
		/* nor one on a replica whose clock runs two minutes ahead: the
		 * lease is the database's clock's */
		assert_int_equal(hl_store_outbox_take(f->s, &taken, id, now + 120000, &err), 0);
		assert_false(taken);
		/* its sender died (no renewal) and the lease ran out */
		snprintf(sql, sizeof(sql),
		         "UPDATE notifications SET next_ms = next_ms - 120000 WHERE id = %lld",
		         (long long)id);
		assert_int_equal(raw_exec(f, sql), 0);
		snprintf(sql, sizeof(sql),
		         "SELECT sending_by, next_ms FROM notifications WHERE id = %lld",
		         (long long)id);
		assert_int_equal(hl_store_outbox_take(f->s, &taken, id, now, &err), 0);
		assert_true(taken);
	} else {
		/* its sender died (no renewal): due again once its lease ended */
		assert_int_equal(hl_store_outbox_take(f->s, &taken, id, now + 60000, &err), 0);
		assert_true(taken);
	}
	/* put off (a retry later, a held channel): the send ended */
	assert_int_equal(
	        hl_store_outbox_update(f->s, id, HL_OUTBOX_PENDING, 1, now + 130000, "429", &err),
	        0);
	assert_int_equal(raw_row(f, sql, row), 0);
	assert_string_equal(row[0], "");
	assert_int_equal(hl_store_outbox_take(f->s, &taken, id, now + 129999, &err), 0);
	assert_false(taken);
	/* an outbox that read it before another's retries records a smaller
	 * count: the count never goes back (the cap and backoff read it) */
	assert_int_equal(
	        hl_store_outbox_update(f->s, id, HL_OUTBOX_PENDING, 4, now + 130000, "503", &err),
	        0);
	assert_int_equal(
	        hl_store_outbox_update(f->s, id, HL_OUTBOX_PENDING, 2, now + 130000, "503", &err),
	        0);
	assert_int_equal(hl_store_outbox_due(f->s, &due, 10, &n, now + 130000, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(due[0].attempts, 4);
	hl_notification_release(&due[0]);
	free(due);
	due = NULL;
	assert_int_equal(hl_store_outbox_update(f->s, id, HL_OUTBOX_DELIVERED, 2, 0, NULL, &err),
	                 0);
	assert_int_equal(hl_store_outbox_take(f->s, &taken, id, now + 130000, &err), 0);
	assert_false(taken);

	/* the lease keeper renews a send's lease while its sender lives
	 * (every third of the lease: a lease that ran out is not renewed, so
	 * it is long enough for a keeper held up a while on a loaded machine) */
	hl_store_set_claim_lease(f->s, 9000);
	in.ref = "4";
	assert_int_equal(hl_store_outbox_add(f->s, NULL, &in, &err), 0);
	assert_int_equal(hl_store_outbox_due(f->s, &due, 10, &n, hl_time_wall_ms() + 1, &err), 0);
	assert_int_equal(n, 1);
	id2 = due[0].id;
	hl_notification_release(&due[0]);
	free(due);
	assert_int_equal(hl_store_outbox_take(f->s, &taken, id2, hl_time_wall_ms() + 1, &err), 0);
	assert_true(taken);
	snprintf(sql, sizeof(sql), "SELECT next_ms FROM notifications WHERE id = %lld",
	         (long long)id2);
	assert_int_equal(raw_row(f, sql, row), 0);
	first = atoll(row[0]);
	/* and a row taken by this process whose take's answer was lost (the
	 * connection went at COMMIT): not its send under way, not renewed */
	in.ref = "5";
	assert_int_equal(hl_store_outbox_add(f->s, NULL, &in, &err), 0);
	snprintf(sql, sizeof(sql),
	         "UPDATE notifications SET sending_by = '%s', next_ms = %lld WHERE ref = '5'",
	         hl_store_owner(f->s), (long long)(hl_time_wall_ms() + 1000));
	assert_int_equal(raw_exec(f, sql), 0);
	lost_until = hl_time_wall_ms() + 1000;
	snprintf(sql, sizeof(sql), "SELECT next_ms FROM notifications WHERE id = %lld",
	         (long long)id2);
	/* the keeper renews every 3 s: a loaded machine may hold it up for
	 * several seconds (hence the 9 s lease), so the renewal is waited
	 * for (bounded) */
	for (tries = 0; tries < 300; tries++) {
		usleep(100000);
		assert_int_equal(raw_row(f, sql, row), 0);
		at = hl_time_wall_ms();
		if (atoll(row[0]) > first && atoll(row[0]) > at && at > lost_until)
			break;
	}
	if (tries == 300)
		print_message("# not renewed in 30 s: next_ms %s, first %lld, now %lld\n", row[0],
		              (long long)first, (long long)at);
	assert_true(atoll(row[0]) > first);
	assert_true(atoll(row[0]) > at);
	assert_true(at > lost_until);
	assert_int_equal(raw_row(f, "SELECT next_ms FROM notifications WHERE ref = '5'", row), 0);
	assert_true(atoll(row[0]) <= hl_time_wall_ms());
}

/* Listing tasks: newest first, filters, pages that neither repeat nor skip. */
static void
test_store_task_page_pages_and_filters(void **state)
{
	struct fixture *f = *state;
	struct hl_err err = HL_ERR_INIT;
	struct hl_task_summary page[7];
	char cursor[HL_CURSOR_MAX], id[32], seen[40][HL_TASK_ID_MAX];
	int64_t seen_ms[40];
	size_t n = 0, total = 0, i, k;
	int j;

	for (j = 0; j < 30; j++) {
		snprintf(id, sizeof(id), "t-list-%02d", j);
		assert_int_equal(
		        hl_store_task_put(f->s,
		                          &(struct hl_task){ .task_id = id,
		                                             .repository = j % 3 ? "o/a" : "o/b",
		                                             .agent = j % 2 ? "rex" : "bolt",
		                                             .state = j % 5 ? HL_TASK_RUNNING
		                                                            : HL_TASK_QUEUED },
		                          &err),
		        0);
	}
	/* every task once, newest first, in pages of 7 */
	cursor[0] = '\0';
	do {
		struct hl_task_filter flt = { .limit = 7, .cursor = cursor[0] ? cursor : NULL };
		char next[HL_CURSOR_MAX];
		assert_int_equal(hl_store_task_page(f->s, page, &n, next, &flt, &err), 0);
		for (i = 0; i < n; i++) {
			for (k = 0; k < total; k++)
				assert_string_not_equal(seen[k], page[i].task_id);
			memcpy(seen[total], page[i].task_id, HL_TASK_ID_MAX);
			seen_ms[total++] = page[i].created_ms;
			if (total > 1)
				assert_true(seen_ms[total - 2] > seen_ms[total - 1] ||
				            (seen_ms[total - 2] == seen_ms[total - 1] &&
				             strcmp(seen[total - 2], seen[total - 1]) > 0));
		}
		hl_task_summaries_release(page, n);
		snprintf(cursor, sizeof(cursor), "%s", next);
	} while (cursor[0] && total < 40);
	assert_int_equal(total, 30);
	/* filters */
	{
		struct hl_task_filter flt = { .limit = 50,
			                      .repository = "o/b",
			                      .agent = "bolt",
			                      .states = 1u << HL_TASK_QUEUED };
		struct hl_task_summary all[50];
		char next[HL_CURSOR_MAX];
		assert_int_equal(hl_store_task_page(f->s, all, &n, next, &flt, &err), 0);
		/* j % 3 == 0, j even, j % 5 == 0: 0 and 30 -> only 0 */
		assert_int_equal(n, 1);
		assert_string_equal(all[0].task_id, "t-list-00");
		assert_int_equal(all[0].state, HL_TASK_QUEUED);
		assert_string_equal(next, "");
		hl_task_summaries_release(all, n);
		flt.cursor = "nonsense";
		assert_int_equal(hl_store_task_page(f->s, all, &n, next, &flt, &err), -HL_EINVAL);
	}
	/* the attempts listed are the ones begun, as the task's document has
	 * them: a queued task's counter names one it waits to begin */
	{
		struct hl_task_filter flt = { .limit = 50, .states = 1u << HL_TASK_QUEUED };
		struct hl_task_summary all[50];
		char next[HL_CURSOR_MAX];

		assert_int_equal(hl_store_task_put(f->s,
		                                   &(struct hl_task){ .task_id = "t-list-05",
		                                                      .state = HL_TASK_QUEUED,
		                                                      .attempts = 1 },
		                                   &err),
		                 0);
		assert_int_equal(hl_store_task_put(f->s,
		                                   &(struct hl_task){ .task_id = "t-list-10",
		                                                      .state = HL_TASK_QUEUED,
		                                                      .attempts = 2 },
		                                   &err),
		                 0);
		assert_int_equal(hl_store_attempt_put(
		                         f->s,
		                         &(struct hl_attempt){ .task_id = "t-list-10",
		                                               .n = 1,
		                                               .kind = HL_ATTEMPT_AGENT,
		                                               .phase = HL_PHASE_DONE,
		                                               .outcome = HL_OUTCOME_AGENT_FAILED,
		                                               .agent = "rex" },
		                         &err),
		                 0);
		assert_int_equal(hl_store_task_page(f->s, all, &n, next, &flt, &err), 0);
		for (i = 0, k = 0; i < n; i++) {
			if (strcmp(all[i].task_id, "t-list-05") == 0 && ++k)
				assert_int_equal(all[i].attempts, 0);
			else if (strcmp(all[i].task_id, "t-list-10") == 0 && ++k)
				assert_int_equal(all[i].attempts, 1);
		}
		assert_int_equal(k, 2);
		hl_task_summaries_release(all, n);
	}
}

/* The delivery a task id was answered with, while it waits for a worker
 * (received, then processing); a skipped or finished one is none. */
static void
test_store_task_waiting(void **state)
{
	struct fixture *f = *state;
	struct hl_err err = HL_ERR_INIT;
	struct hl_delivery_record *d = NULL;
	struct hl_task_waiting w;

	insert(f, "dlv-wait-skip", NULL, "event_not_handled");
	assert_int_equal(hl_store_task_waiting(f->s, &w, "task-own", &err), -HL_ENOTFOUND);
	insert(f, "dlv-wait-1", "k-wait", NULL);
	assert_int_equal(hl_store_task_waiting(f->s, &w, "task-for-key", &err), 0);
	assert_string_equal(w.delivery_id, "dlv-wait-1");
	assert_string_equal(w.state, "received");
	assert_true(w.received_ms > 0);
	assert_int_equal(hl_store_claim_next(f->s, &d, &err), 0);
	assert_string_equal(d->delivery_id, "dlv-wait-1");
	assert_int_equal(hl_store_task_waiting(f->s, &w, "task-for-key", &err), 0);
	assert_string_equal(w.state, "processing");
	assert_int_equal(finish(f->s, "dlv-wait-1", HL_DELIVERY_PROCESSED, NULL, NULL, &err), 0);
	hl_delivery_record_free(d);
	assert_int_equal(hl_store_task_waiting(f->s, &w, "task-for-key", &err), -HL_ENOTFOUND);
	assert_int_equal(hl_store_task_waiting(f->s, &w, "task-unknown", &err), -HL_ENOTFOUND);
}

/* A list shows a task's names whole, as its document does: a branch, a
 * workflow and a job longer than 255 bytes are not cut. */
static void
test_store_task_page_whole_names(void **state)
{
	struct fixture *f = *state;
	struct hl_err err = HL_ERR_INIT;
	struct hl_task_filter flt = { .limit = 5, .repository = "o/long-names" };
	struct hl_task_summary page[5];
	char branch[700], workflow[400], job[300], next[HL_CURSOR_MAX];
	size_t n = 0;

	memset(branch, 'b', sizeof(branch) - 1);
	branch[sizeof(branch) - 1] = '\0';
	memset(workflow, 'w', sizeof(workflow) - 1);
	workflow[sizeof(workflow) - 1] = '\0';
	memset(job, 'j', sizeof(job) - 1);
	job[sizeof(job) - 1] = '\0';
	assert_int_equal(hl_store_task_put(f->s,
	                                   &(struct hl_task){ .task_id = "t-long-names",
	                                                      .repository = "o/long-names",
	                                                      .branch = branch,
	                                                      .workflow = workflow,
	                                                      .job = job,
	                                                      .state = HL_TASK_RUNNING },
	                                   &err),
	                 0);
	assert_int_equal(hl_store_task_page(f->s, page, &n, next, &flt, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(page[0].branch, branch);
	assert_string_equal(page[0].workflow, workflow);
	assert_string_equal(page[0].job, job);
	assert_null(page[0].reason);
	hl_task_summaries_release(page, n);
}

/* URLs in messages never show credentials; every libpq form is PostgreSQL. */
static void
test_store_urls_display_without_credentials(void **state)
{
	static const struct {
		const char *url, *shown;
		bool pg;
	} cases[] = {
		{ "sqlite:/var/lib/healer/healer.db", "sqlite:/var/lib/healer/healer.db", false },
		{ "postgres://healer:pw@db:5432/healer", "postgres://db:5432/healer", true },
		{ "postgresql://db/healer?sslmode=require&password=pw&user=u",
		  "postgresql://db/healer?sslmode=require&password=***&user=u", true },
		{ "host=/run/postgresql dbname=healer", "host=/run/postgresql dbname=healer",
		  true },
		{ "host=db password='p w\\' x' dbname=h", "host=db password=*** dbname=h", true },
		{ "dbname = healer password = pw", "dbname = healer password = ***", true },
		/* the client key's passphrase, and names libpq percent-decodes */
		{ "host=db sslpassword=kp dbname=h", "host=db sslpassword=*** dbname=h", true },
		{ "postgres://db/h?sslpassword=kp&sslmode=require",
		  "postgres://db/h?sslpassword=***&sslmode=require", true },
		{ "postgres://db/h?%70assword=pw&%73slpassword=kp&x%=1",
		  "postgres://db/h?%70assword=***&%73slpassword=***&x%=1", true },
		/* libpq ends the user info at the first '@' before the first
		 * '/': an unencoded '?' or '#' is the password's */
		{ "postgres://u:p?w#d@db/h", "postgres://db/h", true },
		/* an unencoded '@' or '/' in a password (libpq refuses or
		 * misreads it): hidden up to its last '@' */
		{ "postgres://u:pa@ss@db/h", "postgres://db/h", true },
		{ "postgres://u:p/ss@db/h?sslmode=require", "postgres://db/h?sslmode=require",
		  true },
		{ "postgres://u:p/s?w@db/h", "postgres://db/h", true },
		{ "postgres://db/h?application_name=a@b&password=c@d",
		  "postgres://db/h?application_name=a@b&password=***", true },
		{ "postgres://db/h?stray&sslmode=disable", "postgres://db/h?***&sslmode=disable",
		  true },
		/* an unquoted value's backslash escapes a space; a stray word
		 * (a password's rest after an unquoted space) is hidden */
		{ "host=db password=pa\\ ss dbname=h", "host=db password=*** dbname=h", true },
		{ "host=db password=pa ss dbname=h", "host=db password=*** *** dbname=h", true },
		{ "mysql://x", "mysql://x", false },
		{ "/var/lib/healer.db", "/var/lib/healer.db", false },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct hl_buf b = HL_BUF_INIT(0);

		assert_int_equal(hl_store_url_display(&b, cases[i].url), 0);
		assert_string_equal(b.data, cases[i].shown);
		assert_int_equal(hl_store_url_is_postgres(cases[i].url), cases[i].pg);
		hl_buf_release(&b);
	}
}

/* A processing delivery whose lease ran out (its claimer died) is claimed
 * again; the counts do not move (it was processing all along). */
static void
test_store_expired_claim_is_claimed_again(void **state)
{
	struct fixture *f = *state;
	struct hl_delivery_record *d = NULL;
	struct hl_err err = HL_ERR_INIT;
	struct count_sum c = { 0 };
	char row[RAW_COLS][256];

	insert(f, "d-lease", NULL, NULL);
	assert_int_equal(hl_store_claim_next(f->s, &d, &err), 0);
	assert_int_equal(d->claims, 1);
	hl_delivery_record_free(d);
	d = NULL;
	assert_int_equal(raw_row(f, "SELECT claimed_by, lease_until_ms FROM deliveries", row), 0);
	assert_string_equal(row[0], hl_store_owner(f->s));
	assert_true(atoll(row[1]) > hl_time_wall_ms());
	/* held: nobody else gets it */
	assert_int_equal(hl_store_claim_next(f->s, &d, &err), -HL_ENOTFOUND);
	/* its lease ran out while its renewals failed (the store was away),
	 * but this process holds it still: its worker is on it */
	assert_int_equal(raw_exec(f, "UPDATE deliveries SET lease_until_ms = 1"), 0);
	assert_int_equal(hl_store_claim_next(f->s, &d, &err), -HL_ENOTFOUND);
	assert_null(d);
	/* its claimer "died" long ago */
	assert_int_equal(raw_exec(f, "UPDATE deliveries SET claimed_by = 'gone:1:x',"
	                             " lease_until_ms = 1"),
	                 0);
	assert_int_equal(hl_store_claim_next(f->s, &d, &err), 0);
	assert_string_equal(d->delivery_id, "d-lease");
	assert_int_equal(d->claims, 2);
	assert_int_equal(hl_store_counts(f->s, count_cb, &c, NULL), 0);
	assert_int_equal(c.total, 1);
	assert_int_equal(c.received, 0);
	assert_int_equal(finish(f->s, "d-lease", HL_DELIVERY_PROCESSED, "recorded", NULL, &err), 0);
	assert_int_equal(raw_row(f,
	                         "SELECT claimed_by, lease_until_ms, process_count"
	                         " FROM deliveries",
	                         row),
	                 0);
	assert_string_equal(row[0], "");
	assert_string_equal(row[1], "");
	assert_string_equal(row[2], "1");
	hl_delivery_record_free(d);
}

/* A claim its worker could not finish is given back by the lease keeper
 * (waiting, due now) and claimed again; an abandoned claim that is no
 * longer this process's is left alone. */
static void
test_store_abandoned_claim_is_given_back(void **state)
{
	struct fixture *f = *state;
	struct hl_delivery_record *d = NULL;
	struct hl_err err = HL_ERR_INIT;
	char row[RAW_COLS][256];
	int i;

	insert(f, "d-abandon", NULL, NULL);
	insert(f, "d-done", NULL, NULL);
	assert_int_equal(hl_store_claim_next(f->s, &d, &err), 0);
	assert_string_equal(d->delivery_id, "d-abandon");
	hl_delivery_record_free(d);
	d = NULL;
	assert_int_equal(hl_store_claim_next(f->s, &d, &err), 0);
	assert_string_equal(d->delivery_id, "d-done");
	assert_int_equal(finish(f->s, "d-done", HL_DELIVERY_PROCESSED, "recorded", NULL, &err), 0);
	hl_delivery_record_free(d);
	d = NULL;
	assert_int_equal(hl_store_abandon_claim(f->s, "d-done"), 0);
	assert_int_equal(hl_store_abandon_claim(f->s, "d-abandon"), 0);
	for (i = 0; i < 200; i++) {
		assert_int_equal(raw_row(f,
		                         "SELECT state, COALESCE(claimed_by, '') FROM deliveries"
		                         " WHERE delivery_id = 'd-abandon'",
		                         row),
		                 0);
		if (strcmp(row[0], "received") == 0)
			break;
		usleep(25000);
	}
	assert_string_equal(row[0], "received");
	assert_string_equal(row[1], "");
	assert_int_equal(
	        raw_row(f, "SELECT state FROM deliveries WHERE delivery_id = 'd-done'", row), 0);
	assert_string_equal(row[0], "processed");
	assert_int_equal(hl_store_claim_next(f->s, &d, &err), 0);
	assert_string_equal(d->delivery_id, "d-abandon");
	assert_int_equal(d->claims, 2);
	assert_int_equal(finish(f->s, "d-abandon", HL_DELIVERY_PROCESSED, "recorded", NULL, &err),
	                 0);
	hl_delivery_record_free(d);
}

/* healer replay: failed deliveries, or one by id, are queued again and
 * start over; the counters follow. */
static void
test_store_requeue_failed_or_one(void **state)
{
	struct fixture *f = *state;
	struct hl_delivery_record *d = NULL;
	struct hl_err err = HL_ERR_INIT;
	json_t *before = json_object(), *after = json_object();
	int64_t n = -1, depth = -1;

	insert(f, "r-fail", NULL, NULL);
	insert(f, "r-ok", NULL, NULL);
	insert(f, "r-skip", NULL, "ping");
	assert_int_equal(hl_store_claim_next(f->s, &d, &err), 0);
	assert_int_equal(
	        finish(f->s, d->delivery_id, HL_DELIVERY_FAILED, "bad_payload", NULL, &err), 0);
	hl_delivery_record_free(d);
	assert_int_equal(hl_store_claim_next(f->s, &d, &err), 0);
	assert_string_equal(d->delivery_id, "r-ok");
	/* one being processed is not taken from its worker */
	assert_int_equal(hl_store_requeue(f->s, &n, "r-ok", &err), -HL_ECONFLICT);
	assert_non_null(strstr(err.msg, "'r-ok' is being processed"));
	assert_non_null(strstr(err.msg, "taken back"));
	assert_int_equal(finish(f->s, "r-ok", HL_DELIVERY_PROCESSED, "recorded", NULL, &err), 0);
	hl_delivery_record_free(d);
	d = NULL;
	assert_int_equal(hl_store_requeue(f->s, &n, "nope", &err), -HL_ENOTFOUND);

	assert_int_equal(hl_store_requeue(f->s, &n, NULL, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(hl_store_queue_depth(f->s, &depth, NULL), 0);
	assert_int_equal(depth, 1);
	assert_int_equal(hl_store_claim_next(f->s, &d, &err), 0);
	assert_string_equal(d->delivery_id, "r-fail");
	assert_int_equal(d->claims, 1); /* it starts over */
	assert_int_equal(finish(f->s, "r-fail", HL_DELIVERY_PROCESSED, "recorded", NULL, &err), 0);
	hl_delivery_record_free(d);
	d = NULL;
	assert_int_equal(hl_store_requeue(f->s, &n, NULL, &err), 0);
	assert_int_equal(n, 0);
	/* one by id, whatever it ended as; a waiting one waits already */
	assert_int_equal(hl_store_requeue(f->s, &n, "r-skip", &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(hl_store_requeue(f->s, &n, "r-skip", &err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(hl_store_claim_next(f->s, &d, &err), 0);
	assert_string_equal(d->delivery_id, "r-skip");
	assert_int_equal(finish(f->s, "r-skip", HL_DELIVERY_PROCESSED, "recorded", NULL, &err), 0);
	hl_delivery_record_free(d);
	/* the counters kept along equal the ones rebuilt from the rows */
	assert_int_equal(hl_store_counts(f->s, count_map_cb, before, NULL), 0);
	assert_int_equal(
	        json_integer_value(json_object_get(before, "workflow_job|processed|recorded")), 3);
	assert_int_equal(hl_store_recover(f->s, NULL, &err), 0);
	assert_int_equal(hl_store_counts(f->s, count_map_cb, after, NULL), 0);
	assert_true(json_equal(before, after));
	json_decref(before);
	json_decref(after);
}

/* hl_store_task_each's call of test_store_task_list: the ids seen, in
 * order; 7 (stop) at stop_at. */
struct task_seen {
	char ids[128];
	const char *stop_at;
};

static int
task_seen_add(void *arg, const struct hl_task_record *t, struct hl_err *err)
{
	struct task_seen *s = arg;
	size_t n = strlen(s->ids);

	(void)err;
	snprintf(s->ids + n, sizeof(s->ids) - n, "%s,", t->task_id);
	return s->stop_at && strcmp(t->task_id, s->stop_at) == 0 ? 7 : 0;
}

/* Recent tasks, newest first, filtered and paged. */
static void
test_store_task_list(void **state)
{
	struct fixture *f = *state;
	struct hl_task_record **l = NULL;
	struct hl_err err = HL_ERR_INIT;
	size_t n = 0;
	char id[16];
	int i;

	for (i = 0; i < 5; i++) {
		snprintf(id, sizeof(id), "t-%d", i);
		assert_int_equal(
		        hl_store_task_put(f->s,
		                          &(struct hl_task){ .task_id = id,
		                                             .repository = i < 3 ? "o/a" : "o/b",
		                                             .agent = i % 2 ? "rex" : "bolt",
		                                             .state = i == 4 ? HL_TASK_SKIPPED
		                                                             : HL_TASK_RUNNING },
		                          &err),
		        0);
		/* distinct creation times */
		assert_int_equal(hl_store_task_list(f->s, &l, &n,
		                                    &(struct hl_task_query){ .limit = 1 }, &err),
		                 0);
		assert_int_equal(n, 1);
		while (hl_time_wall_ms() <= l[0]->created_ms)
			usleep(200);
		hl_task_list_free(l, n);
	}
	assert_int_equal(
	        hl_store_task_list(f->s, &l, &n, &(struct hl_task_query){ .limit = 3 }, &err), 0);
	assert_int_equal(n, 3);
	assert_string_equal(l[0]->task_id, "t-4");
	assert_string_equal(l[2]->task_id, "t-2");
	assert_int_equal(l[0]->state, HL_TASK_SKIPPED);
	assert_int_equal(l[0]->n_attempts, 0);
	{
		struct hl_task_record **next = NULL;
		size_t m = 0;

		assert_int_equal(hl_store_task_list(f->s, &next, &m,
		                                    &(struct hl_task_query){
		                                            .limit = 3,
		                                            .before_created_ms = l[2]->created_ms,
		                                            .before_task_id = l[2]->task_id },
		                                    &err),
		                 0);
		assert_int_equal(m, 2);
		assert_string_equal(next[0]->task_id, "t-1");
		assert_string_equal(next[1]->task_id, "t-0");
		hl_task_list_free(next, m);
	}
	hl_task_list_free(l, n);
	assert_int_equal(hl_store_task_list(f->s, &l, &n,
	                                    &(struct hl_task_query){ .repository = "o/a",
	                                                             .agent = "rex",
	                                                             .state = "running" },
	                                    &err),
	                 0);
	assert_int_equal(n, 1);
	assert_string_equal(l[0]->task_id, "t-1");
	hl_task_list_free(l, n);
	assert_int_equal(
	        hl_store_task_list(f->s, &l, &n, &(struct hl_task_query){ .state = "odd" }, &err),
	        -HL_EINVAL);

	/* every task of a filter, page by page: pages of 2 over the 4 running */
	{
		struct task_seen seen = { .stop_at = NULL };

		assert_int_equal(hl_store_task_each(
		                         f->s,
		                         &(struct hl_task_query){ .state = "running", .limit = 2 },
		                         task_seen_add, &seen, &err),
		                 0);
		assert_string_equal(seen.ids, "t-3,t-2,t-1,t-0,");
		/* a call's value other than 0 stops the walk and is returned */
		seen = (struct task_seen){ .stop_at = "t-1" };
		assert_int_equal(hl_store_task_each(
		                         f->s,
		                         &(struct hl_task_query){ .state = "running", .limit = 2 },
		                         task_seen_add, &seen, &err),
		                 7);
		assert_string_equal(seen.ids, "t-3,t-2,t-1,");
		assert_int_equal(hl_store_task_each(f->s, &(struct hl_task_query){ .state = "odd" },
		                                    task_seen_add, &seen, &err),
		                 -HL_EINVAL);
	}
}

/* A read-only handle beside the one that writes (healer status). */
static void
test_store_read_only_handle(void **state)
{
	struct fixture *f = *state;
	struct hl_store *ro = NULL;
	struct hl_task_record *r = NULL;
	struct hl_err err = HL_ERR_INIT;
	char url[600];
	int v = 0;

	assert_int_equal(
	        hl_store_task_put(f->s,
	                          &(struct hl_task){ .task_id = "t-ro", .state = HL_TASK_RUNNING },
	                          &err),
	        0);
	assert_int_equal(hl_store_open_with(&ro, f->url, HL_STORE_READ_ONLY, &err), 0);
	assert_int_equal(hl_store_schema_version(ro, &v, &err), 0);
	assert_int_equal(v, migrations_count());
	assert_int_equal(hl_store_task_get(ro, &r, "t-ro", &err), 0);
	hl_task_record_free(r);
	assert_int_not_equal(
	        hl_store_task_put(ro,
	                          &(struct hl_task){ .task_id = "t-ro2", .state = HL_TASK_RUNNING },
	                          &err),
	        0);
	{
		struct hl_delivery_in in = delivery("d-ro", NULL, NULL);
		struct hl_intake_answer a;

		assert_int_equal(hl_store_insert_delivery(ro, &a, &in, &err), -HL_EINVAL);
	}
	/* the writer goes on meanwhile */
	assert_int_equal(insert(f, "d-beside", NULL, NULL).status, HL_INTAKE_ACCEPTED);
	assert_int_equal(hl_store_ping(ro, &err), 0);
	hl_store_close(ro);
	ro = NULL;
	/* nothing there: an error, and nothing created */
	if (pg_mode) {
		char db[64];
		assert_int_equal(pg_new_database_from(db, sizeof(db), "template1"), 0);
		pg_conninfo(url, sizeof(url), db);
	} else {
		snprintf(url, sizeof(url), "sqlite:%s/none.db", f->dir);
	}
	assert_int_equal(hl_store_open_with(&ro, url, HL_STORE_READ_ONLY, &err), -HL_EDB);
	assert_null(ro);
	if (!pg_mode)
		assert_int_not_equal(access(url + 7, F_OK), 0);
}

/* One server per SQLite store (commands open beside it); PostgreSQL
 * takes any number of servers. */
static void
test_store_servers_per_store(void **state)
{
	struct fixture *f = *state;
	struct hl_store *a = NULL, *b = NULL, *c = NULL;
	struct hl_err err = HL_ERR_INIT;

	assert_int_equal(hl_store_open_with(&a, f->url, HL_STORE_SERVER, &err), 0);
	if (pg_mode) {
		assert_int_equal(hl_store_open_with(&b, f->url, HL_STORE_SERVER, &err), 0);
		hl_store_close(b);
		hl_store_close(a);
		return;
	}
	assert_int_equal(hl_store_open_with(&b, f->url, HL_STORE_SERVER, &err), -HL_EDB);
	assert_non_null(strstr(err.msg, "another healer server"));
	assert_null(b);
	assert_int_equal(hl_store_open(&c, f->url, &err), 0); /* a command */
	hl_store_close(c);
	hl_store_close(a);
	assert_int_equal(hl_store_open_with(&b, f->url, HL_STORE_SERVER, &err), 0);
	hl_store_close(b);
}

/* ---- replicas: two handles on one PostgreSQL database ------------------ */

static struct hl_store *
second_handle(struct fixture *f)
{
	struct hl_store *s2 = NULL;
	struct hl_err err = HL_ERR_INIT;

	assert_int_equal(hl_store_open(&s2, f->url, &err), 0);
	return s2;
}

/* A task lease lasts as long as its holder works on the task, however much
 * longer than the lease that is (a slow upstream while an attempt is
 * prepared), and ends with its release. */
static void
test_store_task_lease_kept_while_held(void **state)
{
	struct fixture *f = *state;
	struct hl_store *s2 = second_handle(f);
	struct hl_err err = HL_ERR_INIT;
	struct hl_task t = { .task_id = "t-held",
		             .repository = "o/r",
		             .kind = "ci",
		             .state = HL_TASK_RUNNING,
		             .next_check_ms = HL_TASK_NO_CHECK };
	/* renewed every third of it: a loaded machine (a sanitizer build
	 * beside other tests) may hold the keeper up for a second */
	int64_t now = hl_time_wall_ms(), span = 3000;
	bool got = false;
	int i;

	assert_int_equal(hl_store_task_put(f->s, &t, &err), 0);
	assert_int_equal(hl_store_task_lease(f->s, &got, "t-held", "r1", now, now + span, &err),
	                 0);
	assert_true(got);
	/* the holder works for three times the lease: another replica never
	 * gets it */
	for (i = 0; i < 9; i++) {
		usleep(span * 1000 / 3);
		now = hl_time_wall_ms();
		assert_int_equal(
		        hl_store_task_lease(s2, &got, "t-held", "r2", now, now + span, &err), 0);
		assert_false(got);
	}
	assert_int_equal(hl_store_task_release(f->s, "t-held", "r1", &err), 0);
	now = hl_time_wall_ms();
	assert_int_equal(hl_store_task_lease(s2, &got, "t-held", "r2", now, now + span, &err), 0);
	assert_true(got);
	assert_int_equal(hl_store_task_release(s2, "t-held", "r2", &err), 0);
	hl_store_close(s2);
}

/* On SQLite the one process leads; on PostgreSQL one handle at a time,
 * and another takes over as soon as the leader's session is gone. */
static void
test_store_leader(void **state)
{
	struct fixture *f = *state;
	struct hl_store *s2;
	struct hl_err err = HL_ERR_INIT;
	bool lead = false, lead2 = true;
	int64_t deadline;

	assert_int_equal(hl_store_leader(f->s, &lead, "watch", "r1", 15000, &err), 0);
	assert_true(lead);
	assert_int_equal(hl_store_leader(f->s, &lead, "watch", "r1", 15000, &err), 0);
	assert_true(lead);
	if (!pg_mode)
		return;
	s2 = second_handle(f);
	assert_int_equal(hl_store_leader(s2, &lead2, "watch", "r2", 15000, &err), 0);
	assert_false(lead2);
	/* another leadership is another lock */
	assert_int_equal(hl_store_leader(s2, &lead2, "redeliver", "r2", 15000, &err), 0);
	assert_true(lead2);
	/* the leader dies */
	hl_store_close(f->s);
	f->s = NULL;
	deadline = hl_time_mono_ms() + 10000;
	do {
		assert_int_equal(hl_store_leader(s2, &lead2, "watch", "r2", 15000, &err), 0);
	} while (!lead2 && hl_time_mono_ms() < deadline && usleep(20000) == 0);
	assert_true(lead2);
	f->s = s2;
}

struct race {
	struct hl_store *s;
	int i, rc;
	struct hl_intake_answer a;
	bool created;
	char existing[HL_TASK_ID_MAX];
};

static void *
race_intake(void *arg)
{
	struct race *r = arg;
	char id[32];
	struct hl_delivery_in in;

	snprintf(id, sizeof(id), "via-hook-%d", r->i);
	/* the same delivery id for all, or the same event under other ids */
	in = delivery(r->i % 2 ? "same-id" : id, r->i % 2 ? NULL : "same-event", NULL);
	r->rc = hl_store_insert_delivery(r->s, &r->a, &in, NULL);
	return NULL;
}

static void *
race_claim_task(void *arg)
{
	struct race *r = arg;
	char id[32];

	snprintf(id, sizeof(id), "t-race-%d", r->i);
	r->rc = hl_store_task_claim(r->s, &r->created, r->existing,
	                            &(struct hl_task){ .task_id = id,
	                                               .dedup_key = "o/r|run=1|job=2",
	                                               .state = HL_TASK_RUNNING },
	                            NULL);
	return NULL;
}

static void *
race_task_lease(void *arg)
{
	struct race *r = arg;
	char owner[16];
	int64_t now = hl_time_wall_ms();

	snprintf(owner, sizeof(owner), "replica-%d", r->i);
	r->rc = hl_store_task_lease(r->s, &r->created, r->existing, owner, now, now + 60000, NULL);
	return NULL;
}

static void *
race_attempt_begin(void *arg)
{
	struct race *r = arg;
	char task[32], why[128];
	enum hl_budget_wait over = HL_BUDGET_SLOTS;

	snprintf(task, sizeof(task), "t-budget-%d", r->i);
	r->rc = hl_store_attempt_begin(r->s, &over, why, sizeof(why),
	                               &(struct hl_attempt){ .task_id = task,
	                                                     .n = 1,
	                                                     .kind = HL_ATTEMPT_AGENT,
	                                                     .agent = "rex",
	                                                     .repository = "o/budget" },
	                               3, 0, 0, NULL);
	r->created = !over;
	return NULL;
}

static void *
race_outbox(void *arg)
{
	struct race *r = arg;

	r->rc = hl_store_outbox_add(r->s, &r->created,
	                            &(struct hl_notification_in){ .task_id = "t-x",
	                                                          .channel = "slack",
	                                                          .kind = "escalation",
	                                                          .payload = "{}" },
	                            NULL);
	return NULL;
}

#define N_RACERS 12

/* Runs fn in N_RACERS threads at once, half of them on each handle; r's
 * existing fields are kept (an input for fn). */
static void
race_keep(struct hl_store *a, struct hl_store *b, void *(*fn)(void *), struct race *r)
{
	pthread_t t[N_RACERS];
	int i;

	for (i = 0; i < N_RACERS; i++) {
		r[i].s = i % 2 ? a : b;
		r[i].i = i;
		r[i].rc = -1;
		r[i].created = false;
		assert_int_equal(pthread_create(&t[i], NULL, fn, &r[i]), 0);
	}
	for (i = 0; i < N_RACERS; i++)
		pthread_join(t[i], NULL);
}

static void
race(struct hl_store *a, struct hl_store *b, void *(*fn)(void *), struct race *r)
{
	memset(r, 0, N_RACERS * sizeof(*r));
	race_keep(a, b, fn, r);
}

/* Replicas racing on one failure: the unique delivery id, event key,
 * failure key, outbox key and CodeRun name each let exactly one win, one
 * replica takes the task's lease, and the last CodeRun slot goes once. */
static void
test_store_replicas_race_on_unique_keys(void **state)
{
	struct fixture *f = *state;
	struct race r[N_RACERS];
	struct hl_store *s2;
	struct hl_err err = HL_ERR_INIT;
	char row[RAW_COLS][256], task[HL_TASK_ID_MAX];
	int i, accepted = 0, created = 0;

	assert_true(pg_mode); /* registered on PostgreSQL only */
	s2 = second_handle(f);
	race(f->s, s2, race_intake, r);
	for (i = 0; i < N_RACERS; i++) {
		assert_int_equal(r[i].rc, 0);
		accepted += r[i].a.status == HL_INTAKE_ACCEPTED;
	}
	assert_int_equal(accepted, 2); /* one per id, one per event */
	for (i = 0; i < N_RACERS; i++) {
		if (r[i].a.status != HL_INTAKE_DUPLICATE)
			continue;
		if (i % 2) /* the same delivery: the first one's answer */
			assert_int_equal(r[i].a.original, HL_INTAKE_ACCEPTED);
		else /* the same event: names the delivery that has it */
			assert_string_not_equal(r[i].a.duplicate_of, "");
	}
	assert_int_equal(
	        raw_row(f, "SELECT count(*) FROM deliveries WHERE delivery_id = 'same-id'", row),
	        0);
	assert_string_equal(row[0], "1");
	assert_int_equal(raw_row(f,
	                         "SELECT count(*) FROM deliveries WHERE dedup_key = 'same-event'"
	                         " AND state = 'received'",
	                         row),
	                 0);
	assert_string_equal(row[0], "1");

	race(f->s, s2, race_claim_task, r);
	for (i = 0; i < N_RACERS; i++) {
		assert_int_equal(r[i].rc, 0);
		created += r[i].created;
		assert_string_equal(r[i].existing, r[0].existing);
	}
	assert_int_equal(created, 1);
	assert_int_equal(raw_row(f, "SELECT count(*) FROM remediation_tasks", row), 0);
	assert_string_equal(row[0], "1");

	snprintf(task, sizeof(task), "%s", r[0].existing);
	/* one replica drives the task */
	for (i = 0; i < N_RACERS; i++)
		snprintf(r[i].existing, sizeof(r[i].existing), "%s", task);
	race_keep(f->s, s2, race_task_lease, r);
	for (i = 0, created = 0; i < N_RACERS; i++) {
		assert_int_equal(r[i].rc, 0);
		created += r[i].created;
	}
	assert_int_equal(created, 1);
	race(f->s, s2, race_outbox, r);
	for (i = 0, created = 0; i < N_RACERS; i++) {
		assert_int_equal(r[i].rc, 0);
		created += r[i].created;
	}
	assert_int_equal(created, 1);
	/* three CodeRun slots: three attempts begin, whichever replica asks */
	race(f->s, s2, race_attempt_begin, r);
	for (i = 0, created = 0; i < N_RACERS; i++) {
		assert_int_equal(r[i].rc, 0);
		created += r[i].created;
	}
	assert_int_equal(created, 3);

	/* one CodeRun name belongs to one attempt */
	assert_int_equal(hl_store_attempt_put(f->s,
	                                      &(struct hl_attempt){ .task_id = task,
	                                                            .n = 1,
	                                                            .kind = HL_ATTEMPT_AGENT,
	                                                            .phase = HL_PHASE_PENDING,
	                                                            .outcome = HL_OUTCOME_INVALID,
	                                                            .coderun_name = "healer-x-1" },
	                                      &err),
	                 0);
	assert_int_equal(hl_store_attempt_put(s2,
	                                      &(struct hl_attempt){ .task_id = task,
	                                                            .n = 2,
	                                                            .kind = HL_ATTEMPT_AGENT,
	                                                            .phase = HL_PHASE_PENDING,
	                                                            .outcome = HL_OUTCOME_INVALID,
	                                                            .coderun_name = "healer-x-1" },
	                                      &err),
	                 -HL_EDB);
	hl_store_close(s2);
}

#define N_CLAIMED 200

struct claimer {
	struct hl_store *s;
	int n;
	char (*seen)[32];
	pthread_mutex_t *lock;
	int *total;
};

static void *
claimer_main(void *arg)
{
	struct claimer *c = arg;
	struct hl_delivery_record *d;

	for (;;) {
		d = NULL;
		if (hl_store_claim_next(c->s, &d, NULL) < 0)
			break;
		if (finish(c->s, d->delivery_id, HL_DELIVERY_PROCESSED, "recorded", NULL, NULL) ==
		    0) {
			pthread_mutex_lock(c->lock);
			snprintf(c->seen[(*c->total)++ % (N_CLAIMED * 2)], 32, "%s",
			         d->delivery_id);
			pthread_mutex_unlock(c->lock);
			c->n++;
		}
		hl_delivery_record_free(d);
	}
	return NULL;
}

/* Four workers of two replicas drain one queue: every delivery is
 * claimed and processed once (FOR UPDATE SKIP LOCKED), by both. */
static void
test_store_replicas_claim_each_delivery_once(void **state)
{
	struct fixture *f = *state;
	static char seen[N_CLAIMED * 2][32];
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	struct claimer c[4];
	pthread_t t[4];
	struct hl_store *s2;
	char id[32], row[RAW_COLS][256];
	int i, j, total = 0;

	assert_true(pg_mode); /* registered on PostgreSQL only */
	s2 = second_handle(f);
	for (i = 0; i < N_CLAIMED; i++) {
		snprintf(id, sizeof(id), "q-%d", i);
		insert(f, id, NULL, NULL);
	}
	for (i = 0; i < 4; i++) {
		c[i] = (struct claimer){ i % 2 ? f->s : s2, 0, seen, &lock, &total };
		assert_int_equal(pthread_create(&t[i], NULL, claimer_main, &c[i]), 0);
	}
	for (i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(total, N_CLAIMED);
	for (i = 0; i < total; i++)
		for (j = i + 1; j < total; j++)
			assert_string_not_equal(seen[i], seen[j]);
	assert_true(c[0].n + c[2].n > 0 && c[1].n + c[3].n > 0);
	assert_int_equal(raw_row(f,
	                         "SELECT count(*), min(process_count), max(process_count),"
	                         " max(claims) FROM deliveries",
	                         row),
	                 0);
	assert_string_equal(row[0], "200");
	assert_string_equal(row[1], "1");
	assert_string_equal(row[2], "1");
	assert_string_equal(row[3], "1");
	hl_store_close(s2);
}

/* A signal sent by one replica reaches the other's listeners (and the
 * sender's own, once). */
static void
test_store_replicas_hear_each_other(void **state)
{
	struct fixture *f = *state;
	struct signals mine = SIGNALS_INIT, other = SIGNALS_INIT;
	struct hl_store *s2;
	struct hl_err err = HL_ERR_INIT;
	int64_t deadline;

	assert_true(pg_mode); /* registered on PostgreSQL only */
	s2 = second_handle(f);
	assert_int_equal(hl_store_subscribe(f->s, signal_cb, &mine, &err), 0);
	assert_int_equal(hl_store_subscribe(s2, signal_cb, &other, &err), 0);
	assert_int_equal(
	        hl_store_publish(f->s, HL_CHANNEL_DECISION, "d-9 {\"agent\":\"rex\"}", &err), 0);
	deadline = hl_time_mono_ms() + 5000;
	while (signals_copy(&other).decision == 0 && hl_time_mono_ms() < deadline)
		usleep(5000);
	assert_int_equal(signals_copy(&other).decision, 1);
	assert_string_equal(signals_copy(&other).last, "d-9 {\"agent\":\"rex\"}");
	/* the other's intake wakes this one's workers */
	(void)hl_store_wait_work(f->s, 0);
	assert_int_equal(insert((struct fixture[]){ { .s = s2 } }, "d-far", NULL, NULL).status,
	                 HL_INTAKE_ACCEPTED);
	assert_true(hl_store_wait_work(f->s, 5000));
	usleep(200000);
	assert_int_equal(signals_copy(&mine).decision, 1);
	hl_store_unsubscribe(f->s, signal_cb, &mine);
	hl_store_unsubscribe(s2, signal_cb, &other);
	hl_store_close(s2);
}

/* A claim of this process's that no worker holds (committed while its
 * answer was lost with the connection, or an intake batch's hand-off
 * committed so) is not renewed with the others: once its lease ran out it
 * waits again, and is claimed. */
static void
test_store_lost_claim_waits_again(void **state)
{
	struct fixture *f = *state;
	struct hl_delivery_record *d = NULL, *held = NULL;
	struct hl_err err = HL_ERR_INIT;
	char sql[256], row[RAW_COLS][256];
	int64_t deadline;

	assert_true(pg_mode); /* registered on PostgreSQL only */
	hl_store_set_claim_lease(f->s, 1500); /* the keeper looks every 500 ms */
	insert(f, "d-held", NULL, NULL);
	assert_int_equal(hl_store_claim_next(f->s, &held, &err), 0);
	insert(f, "d-lost", NULL, NULL);
	/* claimed by this process in the store, its answer never arrived */
	snprintf(sql, sizeof(sql),
	         "UPDATE deliveries SET state = 'processing', claimed_by = '%s',"
	         " lease_until_ms = %lld, claims = claims + 1 WHERE delivery_id = 'd-lost'",
	         hl_store_owner(f->s), (long long)(hl_time_wall_ms() + 1500));
	assert_int_equal(raw_exec(f, sql), 0);
	deadline = hl_time_mono_ms() + 10000;
	while (hl_store_claim_next(f->s, &d, &err) == -HL_ENOTFOUND &&
	       hl_time_mono_ms() < deadline)
		usleep(50000);
	assert_non_null(d);
	assert_string_equal(d->delivery_id, "d-lost");
	assert_int_equal(d->claims, 2);
	/* the claim a worker holds stayed its, renewed */
	assert_int_equal(
	        raw_row(f,
	                "SELECT state, lease_until_ms > (extract(epoch from now()) * 1000)::bigint"
	                " FROM deliveries WHERE delivery_id = 'd-held'",
	                row),
	        0);
	assert_string_equal(row[0], "processing");
	assert_string_equal(row[1], "t");
	assert_int_equal(finish(f->s, "d-held", HL_DELIVERY_PROCESSED, "recorded", NULL, &err), 0);
	assert_int_equal(finish(f->s, "d-lost", HL_DELIVERY_PROCESSED, "recorded", NULL, &err), 0);
	hl_delivery_record_free(held);
	hl_delivery_record_free(d);
}

/* A claim taken over by another replica once its lease ran out while its
 * claimer seemed dead (its renewals failed, its listener's session gone)
 * is the new claimer's: the old claimer can neither give it back (a third
 * replica would process it) nor end it. */
static void
test_store_replicas_end_only_their_own_claims(void **state)
{
	struct fixture *f = *state;
	struct hl_delivery_record *d = NULL;
	struct hl_err err = HL_ERR_INIT;
	struct hl_store *s2;
	char row[RAW_COLS][256];

	assert_true(pg_mode); /* registered on PostgreSQL only */
	s2 = second_handle(f);
	insert(f, "d-over", NULL, NULL);
	assert_int_equal(hl_store_claim_next(f->s, &d, &err), 0);
	hl_delivery_record_free(d);
	d = NULL;
	/* as the other replica saw it: the claim of a process without its
	 * liveness lock, run out (a live one's is never taken) */
	assert_int_equal(raw_exec(f, "UPDATE deliveries SET lease_until_ms = 1,"
	                             " claimed_by = 'gone:1:000000'"),
	                 0);
	assert_int_equal(hl_store_claim_next(s2, &d, &err), 0);
	assert_string_equal(d->delivery_id, "d-over");
	hl_delivery_record_free(d);
	assert_int_equal(finish(f->s, "d-over", HL_DELIVERY_RECEIVED, NULL, NULL, &err),
	                 -HL_ECONFLICT);
	assert_int_equal(finish(f->s, "d-over", HL_DELIVERY_PROCESSED, "recorded", NULL, &err),
	                 -HL_ECONFLICT);
	assert_int_equal(raw_row(f, "SELECT state, claimed_by FROM deliveries", row), 0);
	assert_string_equal(row[0], "processing");
	assert_string_equal(row[1], hl_store_owner(s2));
	assert_int_equal(finish(s2, "d-over", HL_DELIVERY_PROCESSED, "recorded", NULL, &err), 0);
	hl_store_close(s2);
}

/* Leases are measured on the database's clock, and a live process's claims
 * and task leases are never taken, however long ago they look run out (to
 * a replica whose clock runs ahead; renewals held up): recovery, claims
 * and the lease keeper of another handle leave them. A remediation's task
 * lease ("P@<store owner>") is taken back by its own process at once, by
 * another for the same P once the holder's process is gone, and never
 * from a live holder before it ran out. */
static void
test_store_replicas_never_take_a_live_ones_leases(void **state)
{
	struct fixture *f = *state;
	struct hl_delivery_record *d = NULL;
	struct hl_err err = HL_ERR_INIT;
	struct hl_task t = { .task_id = "t-live",
		             .repository = "o/r",
		             .kind = "ci",
		             .state = HL_TASK_RUNNING,
		             .next_check_ms = HL_TASK_NO_CHECK };
	char row[RAW_COLS][256], mine[256], other[256];
	struct hl_store *s2;
	int64_t n = -1, ahead;
	bool got = false;

	assert_true(pg_mode); /* registered on PostgreSQL only */
	s2 = second_handle(f);
	insert(f, "d-live", NULL, NULL);
	assert_int_equal(hl_store_claim_next(f->s, &d, &err), 0);
	hl_delivery_record_free(d);
	d = NULL;
	/* the claim's lease runs from the database's clock */
	assert_int_equal(raw_row(f,
	                         "SELECT lease_until_ms - (extract(epoch FROM clock_timestamp())"
	                         " * 1000)::bigint BETWEEN 1000 AND 15000 FROM deliveries",
	                         row),
	                 0);
	assert_string_equal(row[0], "t");
	/* as a replica whose clock is far ahead sees it: run out */
	assert_int_equal(raw_exec(f, "UPDATE deliveries SET lease_until_ms = 1"), 0);
	assert_int_equal(hl_store_recover(s2, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(hl_store_claim_next(s2, &d, &err), -HL_ENOTFOUND);
	hl_store_set_claim_lease(s2, 1000); /* its keeper reaps every third */
	usleep(1200000);
	assert_int_equal(hl_store_claim_next(s2, &d, &err), -HL_ENOTFOUND);
	assert_int_equal(raw_row(f, "SELECT state, claimed_by, claims FROM deliveries", row), 0);
	assert_string_equal(row[0], "processing");
	assert_string_equal(row[1], hl_store_owner(f->s));
	assert_string_equal(row[2], "1");
	assert_int_equal(finish(f->s, "d-live", HL_DELIVERY_PROCESSED, "recorded", NULL, &err), 0);

	/* task leases: their length from the database's clock, whatever the
	 * caller's clock says */
	assert_int_equal(hl_store_task_put(f->s, &t, &err), 0);
	snprintf(mine, sizeof(mine), "remediate:t-live@%s", hl_store_owner(f->s));
	snprintf(other, sizeof(other), "remediate:t-live@%s", hl_store_owner(s2));
	ahead = hl_time_wall_ms() + 3600000;
	assert_int_equal(hl_store_task_lease(f->s, &got, "t-live", mine, ahead, ahead + 5000, &err),
	                 0);
	assert_true(got);
	assert_int_equal(raw_row(f,
	                         "SELECT lease_until_ms - (extract(epoch FROM clock_timestamp())"
	                         " * 1000)::bigint BETWEEN 1000 AND 5000 FROM remediation_tasks",
	                         row),
	                 0);
	assert_string_equal(row[0], "t");
	/* another process's clock two hours ahead: the live holder keeps it */
	ahead += 3600000;
	assert_int_equal(hl_store_task_lease(s2, &got, "t-live", other, ahead, ahead + 5000, &err),
	                 0);
	assert_false(got);
	/* its own process takes it back */
	assert_int_equal(hl_store_task_lease(f->s, &got, "t-live", mine, ahead, ahead + 5000, &err),
	                 0);
	assert_true(got);
	/* the holder's process gone: taken over before the lease ran out
	 * (given up here first, so this handle's lease keeper, which would
	 * take it back from the dead holder too, leaves it alone) */
	assert_int_equal(hl_store_task_release(f->s, "t-live", mine, &err), 0);
	assert_int_equal(raw_exec(f, "UPDATE remediation_tasks SET"
	                             " lease_owner = 'remediate:t-live@gone:1:000000',"
	                             " lease_until_ms = (extract(epoch FROM clock_timestamp())"
	                             " * 1000)::bigint + 60000"),
	                 0);
	assert_int_equal(hl_store_task_lease(s2, &got, "t-live", other, ahead, ahead + 5000, &err),
	                 0);
	assert_true(got);
	/* not a lease of the same kind: kept until it ran out */
	assert_int_equal(raw_exec(f, "UPDATE remediation_tasks SET lease_owner = 'loop@gone:1:0'"),
	                 0);
	assert_int_equal(hl_store_task_lease(s2, &got, "t-live", other, ahead, ahead + 5000, &err),
	                 0);
	assert_false(got);
	hl_store_close(s2);
}

struct lock_waiter {
	struct hl_store *s;
	int rc;
	int64_t took_ms;
};

/* Reads a task (its table locked by another session meanwhile). */
static void *
lock_waiter_run(void *arg)
{
	struct lock_waiter *w = arg;
	struct hl_task_record *r = NULL;
	struct hl_err err = HL_ERR_INIT;
	int64_t t0 = hl_time_mono_ms();

	w->rc = hl_store_task_get(w->s, &r, "t-busy", &err);
	w->took_ms = hl_time_mono_ms() - t0;
	hl_task_record_free(r);
	return NULL;
}

/* A statement waiting on a lock another session holds (a table locked by
 * hand, a long migration) holds up neither the renewal of the handle's
 * claims nor its task leases' (the keeper's own connection), and gives up
 * after a third of the lease (lock_timeout) instead of holding the store
 * for as long as the lock is held. */
static void
test_store_pg_renewals_not_held_up_by_a_lock(void **state)
{
	struct fixture *f = *state;
	struct hl_delivery_record *d = NULL;
	struct hl_err err = HL_ERR_INIT;
	struct hl_task t = { .task_id = "t-busy",
		             .repository = "o/r",
		             .kind = "ci",
		             .state = HL_TASK_RUNNING,
		             .next_check_ms = HL_TASK_NO_CHECK };
	struct lock_waiter w = { .s = f->s, .rc = 1 };
	char row[RAW_COLS][256];
	int64_t now = hl_time_wall_ms();
	pthread_t th;
	PGresult *r;
	PGconn *c;
	bool got = false;
	int rc;

	assert_true(pg_mode); /* registered on PostgreSQL only */
	hl_store_set_claim_lease(f->s, 1200);
	insert(f, "d-busy", NULL, NULL);
	assert_int_equal(hl_store_claim_next(f->s, &d, &err), 0);
	assert_int_equal(hl_store_task_put(f->s, &t, &err), 0);
	assert_int_equal(hl_store_task_lease(f->s, &got, "t-busy", "r1", now, now + 1200, &err), 0);
	assert_true(got);
	assert_non_null(c = pg_session(f->db));
	r = PQexec(c, "BEGIN; LOCK TABLE remediation_tasks IN ACCESS EXCLUSIVE MODE");
	assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	assert_int_equal(pthread_create(&th, NULL, lock_waiter_run, &w), 0);
	usleep(3000000); /* two and a half leases */
	/* the claim was renewed meanwhile (read before the table is freed) */
	rc = raw_row(f,
	             "SELECT lease_until_ms > (extract(epoch FROM clock_timestamp())"
	             " * 1000)::bigint FROM deliveries WHERE delivery_id = 'd-busy'",
	             row);
	r = PQexec(c, "COMMIT");
	PQclear(r);
	PQfinish(c);
	pthread_join(th, NULL);
	assert_int_equal(rc, 0);
	assert_string_equal(row[0], "t");
	/* the read gave up (a lock timeout, retryable) long before */
	assert_true(w.rc < 0);
	assert_true(w.took_ms < 2000);
	/* the task lease is renewed again once the table is free */
	usleep(800000);
	assert_int_equal(raw_row(f,
	                         "SELECT lease_owner, lease_until_ms > (extract(epoch FROM"
	                         " clock_timestamp()) * 1000)::bigint FROM remediation_tasks",
	                         row),
	                 0);
	assert_string_equal(row[0], "r1");
	assert_string_equal(row[1], "t");
	assert_int_equal(finish(f->s, "d-busy", HL_DELIVERY_PROCESSED, "recorded", NULL, &err), 0);
	hl_delivery_record_free(d);
	assert_int_equal(hl_store_task_release(f->s, "t-busy", "r1", &err), 0);
}

/* The claims of a replica that died go back to the queue: at once when
 * its session is gone (recovery, or any replica's lease keeper), never
 * while it lives. */
static void
test_store_replicas_take_over_a_dead_ones_claims(void **state)
{
	struct fixture *f = *state;
	struct hl_delivery_record *d = NULL;
	struct hl_store *s2;
	struct hl_err err = HL_ERR_INIT;
	int64_t n = -1, deadline;

	assert_true(pg_mode); /* registered on PostgreSQL only */
	s2 = second_handle(f);
	insert(f, "d-orphan", NULL, NULL);
	insert(f, "d-orphan-2", NULL, NULL);
	assert_int_equal(hl_store_claim_next(s2, &d, &err), 0);
	hl_delivery_record_free(d);
	d = NULL;
	assert_int_equal(hl_store_claim_next(s2, &d, &err), 0);
	hl_delivery_record_free(d);
	d = NULL;
	assert_int_equal(hl_store_recover(f->s, &n, &err), 0);
	assert_int_equal(n, 0); /* alive: its claims stay its own */
	hl_store_close(s2);     /* dies without finishing */
	/* its session ends (and frees its lock) a moment after it hung up */
	deadline = hl_time_mono_ms() + 5000;
	do
		assert_int_equal(hl_store_recover(f->s, &n, &err), 0);
	while (n == 0 && hl_time_mono_ms() < deadline && usleep(20000) == 0);
	assert_int_equal(n, 2);
	assert_int_equal(hl_store_claim_next(f->s, &d, &err), 0);
	assert_string_equal(d->delivery_id, "d-orphan");
	assert_int_equal(d->claims, 2);
	hl_delivery_record_free(d);
	d = NULL;
	/* the lease keeper does the same on its own, once the dead one's
	 * claims were not renewed for two thirds of the lease (a live one's
	 * listener may be reconnecting): both on the same lease here */
	s2 = second_handle(f);
	hl_store_set_claim_lease(s2, 1500);
	assert_int_equal(hl_store_claim_next(s2, &d, &err), 0);
	assert_string_equal(d->delivery_id, "d-orphan-2");
	hl_delivery_record_free(d);
	d = NULL;
	hl_store_close(s2);
	hl_store_set_claim_lease(f->s, 1500); /* the keeper looks every 500 ms */
	deadline = hl_time_mono_ms() + 10000;
	while (hl_store_claim_next(f->s, &d, &err) == -HL_ENOTFOUND && hl_time_mono_ms() < deadline)
		usleep(50000);
	assert_non_null(d);
	assert_string_equal(d->delivery_id, "d-orphan-2");
	hl_delivery_record_free(d);
}

struct heard {
	pthread_mutex_t lock;
	int work, task, decision, any_decision;
};

static void
heard_cb(void *arg, enum hl_store_channel ch, const char *payload)
{
	struct heard *h = arg;

	pthread_mutex_lock(&h->lock);
	h->work += ch == HL_CHANNEL_WORK;
	h->task += ch == HL_CHANNEL_TASK && !*payload;
	h->decision += ch == HL_CHANNEL_DECISION && *payload;
	h->any_decision += ch == HL_CHANNEL_DECISION && !*payload;
	pthread_mutex_unlock(&h->lock);
}

static int
heard_count(struct heard *h, int *field)
{
	int n;

	pthread_mutex_lock(&h->lock);
	n = *field;
	pthread_mutex_unlock(&h->lock);
	return n;
}

/* When the listener's connection drops it reconnects, signals every
 * channel with "" (work, tasks and decisions sent meanwhile were missed)
 * and hears the other replicas again. */
static void
test_store_listener_reconnects(void **state)
{
	struct fixture *f = *state;
	struct heard h = { PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, 0 };
	struct hl_store *s2;
	struct hl_err err = HL_ERR_INIT;
	char sql[300];
	int64_t deadline;

	assert_true(pg_mode); /* registered on PostgreSQL only */
	s2 = second_handle(f);
	assert_int_equal(hl_store_subscribe(f->s, heard_cb, &h, &err), 0);
	/* the listener is the session holding the handle's liveness lock */
	snprintf(sql, sizeof(sql),
	         "SELECT pg_terminate_backend(l.pid) FROM pg_locks l"
	         " JOIN pg_database d ON d.oid = l.database WHERE l.locktype = 'advisory'"
	         " AND l.granted AND d.datname = '%s' AND l.pid <> pg_backend_pid()",
	         f->db);
	assert_int_equal(pg_run("postgres", sql), 0);
	deadline = hl_time_mono_ms() + 10000;
	while ((heard_count(&h, &h.task) == 0 || heard_count(&h, &h.work) == 0 ||
	        heard_count(&h, &h.any_decision) == 0) &&
	       hl_time_mono_ms() < deadline)
		usleep(10000);
	assert_true(heard_count(&h, &h.task) >= 1);
	assert_true(heard_count(&h, &h.work) >= 1);
	/* decisions published meanwhile were missed too: "" (any) */
	assert_true(heard_count(&h, &h.any_decision) >= 1);
	assert_int_equal(hl_store_publish(s2, HL_CHANNEL_DECISION, "d-1 {}", &err), 0);
	deadline = hl_time_mono_ms() + 5000;
	while (heard_count(&h, &h.decision) == 0 && hl_time_mono_ms() < deadline)
		usleep(10000);
	assert_int_equal(heard_count(&h, &h.decision), 1);
	hl_store_unsubscribe(f->s, heard_cb, &h);
	hl_store_close(s2);
}

/* Passwords from the URL or PGPASSFILE; sslmode=require against a server
 * without SSL fails clearly; no message shows a password. */
static void
test_store_pg_passwords_and_sslmode(void **state)
{
	struct fixture *f = *state;
	struct hl_store *s = NULL;
	struct hl_err err = HL_ERR_INIT;
	char sql[256], url[512], pass[160], db[80];
	const char *port = getenv("HEALER_TEST_PG_PORT");
	FILE *fp;

	assert_true(pg_mode); /* registered on PostgreSQL only */
	/* a role of its own with a database of its own */
	snprintf(sql, sizeof(sql),
	         "DO $$BEGIN CREATE ROLE hl_pw LOGIN PASSWORD 'pw-Xy9';"
	         " EXCEPTION WHEN duplicate_object THEN NULL; END$$");
	assert_int_equal(pg_run("postgres", sql), 0);
	snprintf(db, sizeof(db), "%s_pw", f->db);
	snprintf(sql, sizeof(sql), "CREATE DATABASE \"%s\" OWNER hl_pw STRATEGY FILE_COPY", db);
	assert_int_equal(pg_run("postgres", sql), 0);

	snprintf(url, sizeof(url), "postgres://hl_pw:pw-Xy9@127.0.0.1:%s/%s", port, db);
	assert_int_equal(hl_store_open(&s, url, &err), 0);
	hl_store_close(s);
	s = NULL;
	snprintf(url, sizeof(url), "postgres://hl_pw:wrong-pw-7@127.0.0.1:%s/%s", port, db);
	assert_int_equal(hl_store_open(&s, url, &err), -HL_EDB);
	assert_non_null(strstr(err.msg, "password authentication failed"));
	assert_null(strstr(err.msg, "wrong-pw-7"));

	snprintf(pass, sizeof(pass), "%s/pgpass", f->dir);
	fp = fopen(pass, "w");
	assert_non_null(fp);
	fprintf(fp, "127.0.0.1:%s:%s:hl_pw:pw-Xy9\n", port, db);
	fclose(fp);
	assert_int_equal(chmod(pass, 0600), 0);
	setenv("PGPASSFILE", pass, 1);
	snprintf(url, sizeof(url), "host=127.0.0.1 port=%s user=hl_pw dbname=%s", port, db);
	assert_int_equal(hl_store_open(&s, url, &err), 0);
	hl_store_close(s);
	s = NULL;
	unsetenv("PGPASSFILE");
	assert_int_equal(hl_store_open(&s, url, &err), -HL_EDB);

	snprintf(url, sizeof(url), "postgresql://hl_pw:pw-Xy9@127.0.0.1:%s/%s?sslmode=require",
	         port, db);
	assert_int_equal(hl_store_open(&s, url, &err), -HL_EDB);
	assert_non_null(strstr(err.msg, "SSL"));
	assert_null(strstr(err.msg, "pw-Xy9"));
	assert_null(s);
	snprintf(sql, sizeof(sql), "DROP DATABASE \"%s\" WITH (FORCE)", db);
	assert_int_equal(pg_run("postgres", sql), 0);
}

/* The delivery counters have a shard per connection (PostgreSQL): a
 * transaction of another connection that holds its shard of a counter
 * (as another replica's batch does until its commit) does not hold up
 * this handle's intake of deliveries counted by the same counter. */
static void
test_store_intake_does_not_wait_for_others_counters(void **state)
{
	struct fixture *f = *state;
	struct batch_wait w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };
	struct hl_intake_req req;
	struct hl_intake_answer a;
	struct hl_delivery_in in = delivery("first", NULL, NULL);
	struct hl_err err = HL_ERR_INIT;
	bool taken[64] = { false };
	char sql[512];
	struct timespec until;
	PGconn *other = pg_session(f->db);
	PGresult *r;
	int i, shard;

	/* the handle's connections, the intake one among them, exist now */
	assert_int_equal(hl_store_insert_delivery(f->s, &a, &in, &err), 0);
	r = PQexec(other, "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
	                  " AND pid <> pg_backend_pid()");
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	assert_true(PQntuples(r) >= 2);
	for (i = 0; i < PQntuples(r); i++)
		taken[atoi(PQgetvalue(r, i, 0)) % 64] = true;
	PQclear(r);
	for (shard = 0; taken[shard]; shard++)
		;
	/* another connection's open transaction holds its shard of the
	 * counter the next delivery adds to */
	snprintf(sql, sizeof(sql),
	         "BEGIN; INSERT INTO delivery_counts (event_name, state, reason, shard, n)"
	         " VALUES ('workflow_job', 'received', '', %d, 0)"
	         " ON CONFLICT (event_name, state, reason, shard) DO UPDATE SET n ="
	         " delivery_counts.n",
	         shard);
	r = PQexec(other, sql);
	assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);

	memset(&req, 0, sizeof(req));
	req.in = delivery("second", NULL, NULL);
	req.done = batch_done;
	req.arg = &w;
	hl_store_intake_submit(f->s, &req);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&w.lock);
	while (w.done < 1 && pthread_cond_timedwait(&w.cond, &w.lock, &until) == 0)
		;
	i = w.done;
	pthread_mutex_unlock(&w.lock);

	r = PQexec(other, "ROLLBACK");
	PQclear(r);
	PQfinish(other);
	pthread_mutex_lock(&w.lock);
	while (w.done < 1)
		pthread_cond_wait(&w.cond, &w.lock);
	pthread_mutex_unlock(&w.lock);
	assert_int_equal(i, 1); /* answered while the other transaction was open */
	assert_int_equal(req.rc, 0);
	assert_int_equal(req.answer.status, HL_INTAKE_ACCEPTED);
}

/* An event key another replica's transaction holds when this handle's
 * batch inserts the same event (PostgreSQL): the batch waits for it, and
 * once it commits the delivery is stored and answered as that event's
 * duplicate, naming the first delivery and its task; the counters agree
 * with the rows. */
static void
test_store_intake_waits_for_a_key_claimed_elsewhere(void **state)
{
	struct fixture *f = *state;
	struct batch_wait w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };
	struct hl_intake_req req;
	char row[RAW_COLS][256];
	struct timespec until;
	PGconn *other = pg_session(f->db);
	PGresult *r;
	int early;

	r = PQexec(other, "BEGIN; INSERT INTO event_keys (dedup_key, delivery_id, task_id,"
	                  " first_seen_ms) VALUES ('held-event', 'first-elsewhere', 't-first', 1)");
	assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);

	memset(&req, 0, sizeof(req));
	req.in = delivery("second-here", "held-event", NULL);
	req.done = batch_done;
	req.arg = &w;
	hl_store_intake_submit(f->s, &req);
	usleep(300 * 1000);
	pthread_mutex_lock(&w.lock);
	early = w.done;
	pthread_mutex_unlock(&w.lock);
	r = PQexec(other, "COMMIT");
	assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	PQfinish(other);

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&w.lock);
	while (w.done < 1 && pthread_cond_timedwait(&w.cond, &w.lock, &until) == 0)
		;
	pthread_mutex_unlock(&w.lock);
	assert_int_equal(early, 0); /* it waited for the other transaction */
	assert_int_equal(w.done, 1);
	assert_int_equal(req.rc, 0);
	assert_int_equal(req.answer.status, HL_INTAKE_DUPLICATE);
	assert_string_equal(req.answer.duplicate_of, "first-elsewhere");
	assert_string_equal(req.answer.task_id, "t-first");
	assert_int_equal(raw_row(f,
	                         "SELECT state, reason, duplicate_of, task_id FROM deliveries"
	                         " WHERE delivery_id = 'second-here'",
	                         row),
	                 0);
	assert_string_equal(row[0], "skipped");
	assert_string_equal(row[1], "duplicate_event");
	assert_string_equal(row[2], "first-elsewhere");
	assert_string_equal(row[3], "t-first");
	assert_int_equal(raw_row(f,
	                         "SELECT COALESCE(sum(n), 0) FROM delivery_counts WHERE"
	                         " event_name = 'workflow_job' AND state = 'skipped'"
	                         " AND reason = 'duplicate_event'",
	                         row),
	                 0);
	assert_string_equal(row[0], "1");
}

#define PG_ONLY 12

int
main(void)
{
	pg_mode = getenv("HEALER_TEST_PG_SOCKET") && getenv("HEALER_TEST_PG_PORT");
	if (!pg_mode)
		sqlite3_auto_extension((void (*)(void))ci_read_profile_install);
	if (pg_mode && pg_make_template() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_store_migrations_idempotent, setup, teardown),
		cmocka_unit_test(test_store_open_rejects_bad_urls),
		cmocka_unit_test_setup_teardown(test_store_duplicate_delivery_gets_first_answer,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_event_key_duplicate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_rejects_bad_delivery_id, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_store_claim_finish_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_recovers_processing_after_reopen, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_store_counters_follow_states, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_prune, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_compact_gives_space_back, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_store_bodies_stay_inline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_batched_counters_match_rows, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_store_no_duplicate_indexes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_batch_dedups_inside_it, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_refused_row_leaves_no_key, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_store_failing_statement_fails_alone, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_store_concurrent_same_delivery_accepted_once,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_tasks_and_attempts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_task_transitions_are_checked, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_store_task_reason_follows_its_state, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_store_large_body_round_trips_deflated, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_store_typical_body_round_trips_lz4, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_store_tasks_of_pr_counts_every_task, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_store_known_event_body_is_not_compressed,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_small_or_random_body_is_stored_raw,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(
		        test_store_batches_are_visible_to_other_connections_at_once, setup,
		        teardown),
		cmocka_unit_test_setup_teardown(test_store_corrupt_body_is_failed_not_claimed,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_task_claim_and_find, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_run_level_find_uses_its_index, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_store_given_back_delivery_waits_for_its_time,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_hands_deliveries_to_its_workers, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_store_ci_latest_on_a_branch_seeks, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_store_history_reads_use_their_indexes, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_store_identity_and_decision_round_trip, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_store_signals_reach_listeners, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_store_refuses_a_newer_schema, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_upgrades_a_version_5_store, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_store_upgrade_keys_escalations_by_round, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_store_loop_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_task_lease_kept_while_held, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_store_hold_keeps_the_later_end, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_store_attempt_begin_reopens_a_stopped_task,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_attempt_begin_keeps_the_decision, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_store_task_remember_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_task_is_read_as_of_one_moment, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_store_outbox, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_outbox_take, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_task_page_pages_and_filters, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_store_task_page_whole_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_task_waiting, setup, teardown),
		cmocka_unit_test(test_store_refuses_an_empty_file),
		cmocka_unit_test(test_store_urls_display_without_credentials),
		cmocka_unit_test_setup_teardown(test_store_expired_claim_is_claimed_again, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_store_abandoned_claim_is_given_back, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_store_requeue_failed_or_one, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_task_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_read_only_handle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_leader, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_servers_per_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_redeliveries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_replicas_race_on_unique_keys, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_store_replicas_claim_each_delivery_once, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_store_replicas_hear_each_other, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_store_lost_claim_waits_again, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_replicas_end_only_their_own_claims,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_replicas_take_over_a_dead_ones_claims,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_pg_renewals_not_held_up_by_a_lock, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_store_replicas_never_take_a_live_ones_leases,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_listener_reconnects, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_pg_passwords_and_sslmode, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_store_intake_does_not_wait_for_others_counters,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_intake_waits_for_a_key_claimed_elsewhere,
		                                setup, teardown),
	};

	/* the last PG_ONLY tests need a second handle on a shared database */
	return _cmocka_run_group_tests("tests", tests,
	                               sizeof(tests) / sizeof(tests[0]) - (pg_mode ? 0 : PG_ONLY),
	                               NULL, NULL);
}
