/*
 * test_memory_store.c - the memory's store operations (store/memory.h) on
 * the real backends: full-text search of similar failures (SQLite FTS5 with
 * BM25; PostgreSQL tsvector/GIN when HEALER_TEST_PG_SOCKET / _PORT name a
 * throw-away server, tests/pg/pgrun.py), the repository's memories first,
 * one memory per task, reinforcement, agent records and the insights'
 * rows read from the ledger.
 */
#include "store/store.h"

#include <libpq-fe.h>
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
#include <unistd.h>

struct fixture {
	char dir[64];
	char db[64];
	char url[512];
	struct hl_store *s;
};

static bool pg_mode;

static void
pg_conninfo(char *out, size_t size, const char *db)
{
	snprintf(out, size, "host=%s port=%s user=postgres dbname=%s",
	         getenv("HEALER_TEST_PG_SOCKET"), getenv("HEALER_TEST_PG_PORT"), db);
}

static int
pg_run_in(const char *db, const char *sql)
{
	char ci[512];
	PGconn *c;
	PGresult *r;
	int rc;

	pg_conninfo(ci, sizeof(ci), db);
	c = PQconnectdb(ci);
	if (PQstatus(c) != CONNECTION_OK) {
		PQfinish(c);
		return -1;
	}
	r = PQexec(c, sql);
	rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : -1;
	PQclear(r);
	PQfinish(c);
	return rc;
}

static int
pg_run(const char *sql)
{
	return pg_run_in("postgres", sql);
}

static int
setup(void **state)
{
	static int seq;
	struct fixture *f = calloc(1, sizeof(*f));
	struct hl_err err = HL_ERR_INIT;
	char sql[160];

	strcpy(f->dir, "/tmp/hl-test-memory-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	if (pg_mode) {
		snprintf(f->db, sizeof(f->db), "hl_memory_%ld_%d", (long)getpid(), seq++);
		snprintf(sql, sizeof(sql), "CREATE DATABASE \"%s\"", f->db);
		if (pg_run(sql) < 0)
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
		if (pg_run(cmd) < 0)
			return -1;
	}
	free(f);
	return 0;
}

static void
remember(struct fixture *f, const char *task, const char *repo, const char *type,
         const char *evidence, const char *fixed_by, const char *pr)
{
	struct hl_err err = HL_ERR_INIT;
	bool created = false;
	struct hl_memory_in m = {
		.task_id = task,
		.repository = repo,
		.workflow = "CI",
		.job = "lint",
		.failure_type = type,
		.event = fixed_by ? "first_attempt_success" : "escalation",
		.outcome = fixed_by ? "succeeded" : "escalated",
		.evidence = evidence,
		.first_agent = "rex",
		.fixed_by = fixed_by,
		.attempts_json = "[]",
		.n_attempts = 1,
		.time_to_fix_ms = fixed_by ? 600000 : 0,
		.pr_url = pr,
	};

	assert_int_equal(hl_store_memory_put(f->s, &created, &m, &err), 0);
	assert_true(created);
}

/* Words of the evidence find the memory; the type restricts; the
 * repository's memories come first; another type never shows. */
static void
test_memory_store_similar_repository_first(void **state)
{
	struct fixture *f = *state;
	struct hl_err err = HL_ERR_INIT;
	struct hl_memory_hit *h = NULL;
	size_t n = 0;

	remember(f, "t-other", "acme/web", "rust_clippy",
	         "error: unused variable `count` in src/lib.rs", "rex",
	         "https://github.com/acme/web/pull/1");
	remember(f, "t-same", "acme/platform", "rust_clippy",
	         "error: unused variable `total` in src/main.rs", "atlas",
	         "https://github.com/acme/platform/pull/7");
	remember(f, "t-far", "acme/platform", "rust_clippy",
	         "error: this loop never actually loops", "rex", NULL);
	remember(f, "t-type", "acme/platform", "js_lint", "error: unused variable `x`", "blaze",
	         NULL);

	assert_int_equal(hl_store_memory_similar(
	                         f->s, &h, &n,
	                         &(struct hl_memory_query){
	                                 .repository = "acme/platform",
	                                 .failure_type = "rust_clippy",
	                                 .text = "error: unused variable `n` (unused_variables)",
	                                 .k = 5 },
	                         &err),
	                 0);
	/* "error" is in all three rust_clippy memories; the same repository's
	 * come first, the closer one (more shared words) before the other */
	assert_int_equal(n, 3);
	assert_string_equal(h[0].task_id, "t-same");
	assert_string_equal(h[0].pr_url, "https://github.com/acme/platform/pull/7");
	assert_string_equal(h[0].fixed_by, "atlas");
	assert_string_equal(h[1].task_id, "t-far");
	assert_string_equal(h[2].task_id, "t-other");
	assert_true(h[0].score > 0);
	assert_int_equal(h[0].time_to_fix_ms, 600000);
	hl_memory_hits_free(h, n);

	/* no word shared: nothing but the type's memories without words */
	assert_int_equal(
	        hl_store_memory_similar(f->s, &h, &n,
	                                &(struct hl_memory_query){ .repository = "acme/platform",
	                                                           .failure_type = "rust_clippy",
	                                                           .text = "segfault zzz",
	                                                           .exclude_task = "t-same",
	                                                           .k = 5 },
	                                &err),
	        0);
	assert_int_equal(n, 0);
	hl_memory_hits_free(h, n);
	assert_int_equal(
	        hl_store_memory_similar(f->s, &h, &n,
	                                &(struct hl_memory_query){ .repository = "acme/platform",
	                                                           .failure_type = "rust_clippy",
	                                                           .text = NULL,
	                                                           .exclude_task = "t-same",
	                                                           .k = 1 },
	                                &err),
	        0);
	assert_int_equal(n, 1);
	assert_string_equal(h[0].task_id, "t-far");
	hl_memory_hits_free(h, n);
	assert_int_equal(hl_store_memory_similar(
	                         f->s, &h, &n,
	                         &(struct hl_memory_query){ .failure_type = "", .k = 5 }, &err),
	                 -HL_EINVAL);
}

/* A SQLite store whose index still holds memories under +id (written before
 * the newest-first order) is indexed again when it is opened: the search
 * finds every memory, newest first, and no row is left under +id. */
static void
test_memory_store_old_index_is_rebuilt(void **state)
{
	struct fixture *f = *state;
	struct hl_err err = HL_ERR_INIT;
	struct hl_memory_hit *h = NULL;
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	char path[128];
	size_t n = 0;

	remember(f, "t-old", "acme/web", "rust_clippy", "error: unused import `std::fmt`", "rex",
	         NULL);
	remember(f, "t-new", "acme/web", "rust_clippy", "error: unused import `std::io`", "rex",
	         NULL);
	hl_store_close(f->s);
	f->s = NULL;
	snprintf(path, sizeof(path), "%s/healer.db", f->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(
	        sqlite3_exec(db,
	                     "INSERT INTO memories_fts (memories_fts) VALUES ('delete-all');"
	                     "INSERT INTO memories_fts (rowid, failure_type, repo, body)"
	                     " SELECT id, failure_type, 'r0', evidence FROM memories;",
	                     NULL, NULL, NULL),
	        SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(hl_store_open(&f->s, f->url, &err), 0);
	assert_int_equal(hl_store_memory_similar(
	                         f->s, &h, &n,
	                         &(struct hl_memory_query){ .repository = "acme/web",
	                                                    .failure_type = "rust_clippy",
	                                                    .text = "error: unused import `x`",
	                                                    .k = 5 },
	                         &err),
	                 0);
	assert_int_equal(n, 2);
	assert_string_equal(h[0].task_id, "t-new");
	assert_string_equal(h[1].task_id, "t-old");
	hl_memory_hits_free(h, n);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT rowid FROM memories_fts WHERE rowid > 0",
	                                    -1, &st, NULL),
	                 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/* One memory per task; reinforcement raises a memory above its peer. */
static void
test_memory_store_once_per_task_and_reinforce(void **state)
{
	struct fixture *f = *state;
	struct hl_err err = HL_ERR_INIT;
	struct hl_memory_hit *h = NULL;
	bool created = true;
	int64_t count = 0;
	size_t n = 0;

	remember(f, "t-a", "o/r", "rust_build", "error[E0433]: failed to resolve", "rex", NULL);
	remember(f, "t-b", "o/r", "rust_build", "error[E0433]: failed to resolve", "bolt", NULL);
	/* the same outcome again (a replay) changes nothing */
	assert_int_equal(hl_store_memory_put(f->s, &created,
	                                     &(struct hl_memory_in){ .task_id = "t-a",
	                                                             .repository = "o/r",
	                                                             .event = "retry_success",
	                                                             .outcome = "succeeded",
	                                                             .fixed_by = "bolt",
	                                                             .attempts_json = "[]" },
	                                     &err),
	                 0);
	assert_false(created);
	assert_int_equal(hl_store_memory_count(f->s, &count, &err), 0);
	assert_int_equal(count, 2);

	/* equal text: the newer first */
	assert_int_equal(
	        hl_store_memory_similar(f->s, &h, &n,
	                                &(struct hl_memory_query){ .failure_type = "rust_build",
	                                                           .text = "failed to resolve",
	                                                           .k = 2 },
	                                &err),
	        0);
	assert_int_equal(n, 2);
	assert_string_equal(h[0].task_id, "t-b");
	assert_int_equal(hl_store_memory_reinforce(f->s, h[1].id, 1.5, &err), 0);
	hl_memory_hits_free(h, n);
	assert_int_equal(
	        hl_store_memory_similar(f->s, &h, &n,
	                                &(struct hl_memory_query){ .failure_type = "rust_build",
	                                                           .text = "failed to resolve",
	                                                           .k = 2 },
	                                &err),
	        0);
	assert_string_equal(h[0].task_id, "t-a");
	assert_true(h[0].weight > 2.4 && h[0].weight < 2.6);
	hl_memory_hits_free(h, n);
	assert_int_equal(hl_store_memory_reinforce(f->s, 999999, 1, &err), -HL_ENOTFOUND);
}

/* A task remembered escalated and fixed later (/healer retry): the memory
 * takes the later outcome, still one memory and one index row. */
static void
test_memory_store_later_outcome_replaces(void **state)
{
	struct fixture *f = *state;
	struct hl_err err = HL_ERR_INIT;
	struct hl_memory_hit *h = NULL;
	bool created = false;
	int64_t count = 0;
	size_t n = 0;

	remember(f, "t-esc", "o/r", "rust_build", "error[E0433]: failed to resolve `tokio`", NULL,
	         NULL);
	assert_int_equal(
	        hl_store_memory_put(f->s, &created,
	                            &(struct hl_memory_in){
	                                    .task_id = "t-esc",
	                                    .repository = "o/r",
	                                    .workflow = "CI",
	                                    .job = "lint",
	                                    .failure_type = "rust_build",
	                                    .event = "retry_success",
	                                    .outcome = "succeeded",
	                                    .evidence = "error[E0433]: failed to resolve `tokio`",
	                                    .first_agent = "rex",
	                                    .fixed_by = "bolt",
	                                    .attempts_json = "[{\"n\":4,\"agent\":\"bolt\"}]",
	                                    .n_attempts = 4,
	                                    .time_to_fix_ms = 7200000,
	                                    .pr_url = "https://github.com/o/r/pull/9",
	                                    .summary = "added the tokio dependency" },
	                            &err),
	        0);
	assert_true(created);
	assert_int_equal(hl_store_memory_count(f->s, &count, &err), 0);
	assert_int_equal(count, 1);
	assert_int_equal(
	        hl_store_memory_similar(f->s, &h, &n,
	                                &(struct hl_memory_query){ .failure_type = "rust_build",
	                                                           .text = "failed to resolve",
	                                                           .k = 5 },
	                                &err),
	        0);
	assert_int_equal(n, 1);
	assert_string_equal(h[0].task_id, "t-esc");
	assert_string_equal(h[0].outcome, "succeeded");
	assert_string_equal(h[0].event, "retry_success");
	assert_string_equal(h[0].fixed_by, "bolt");
	assert_int_equal(h[0].n_attempts, 4);
	assert_int_equal(h[0].time_to_fix_ms, 7200000);
	assert_string_equal(h[0].pr_url, "https://github.com/o/r/pull/9");
	assert_string_equal(h[0].summary, "added the tokio dependency");
	hl_memory_hits_free(h, n);
}

static void
task_with_attempts(struct fixture *f, const char *id, const char *repo, const char *type,
                   enum hl_task_state end, const char *const *agents,
                   const enum hl_attempt_outcome *outcomes, int n)
{
	struct hl_err err = HL_ERR_INIT;
	int i;

	assert_int_equal(hl_store_task_put(f->s,
	                                   &(struct hl_task){ .task_id = id,
	                                                      .repository = repo,
	                                                      .run_id = 100 + (int64_t)strlen(id),
	                                                      .job = id,
	                                                      .failure_type = type,
	                                                      .agent = agents[0],
	                                                      .state = HL_TASK_RUNNING,
	                                                      .attempts = n },
	                                   &err),
	                 0);
	for (i = 0; i < n; i++)
		assert_int_equal(
		        hl_store_attempt_put(f->s,
		                             &(struct hl_attempt){ .task_id = id,
		                                                   .n = i + 1,
		                                                   .kind = HL_ATTEMPT_AGENT,
		                                                   .phase = HL_PHASE_DONE,
		                                                   .outcome = outcomes[i],
		                                                   .agent = agents[i],
		                                                   .repository = repo,
		                                                   .finished_ms = 1 },
		                             &err),
		        0);
	if (end != HL_TASK_RUNNING)
		assert_int_equal(hl_store_task_put(f->s,
		                                   &(struct hl_task){ .task_id = id, .state = end },
		                                   &err),
		                 0);
}

struct rows {
	int rows, tasks;
	char last[64];
};

static void
count_rows(void *arg, const struct hl_insight_row *r)
{
	struct rows *c = arg;

	c->rows++;
	if (strcmp(c->last, r->task_id) != 0)
		c->tasks++;
	snprintf(c->last, sizeof(c->last), "%s", r->task_id);
}

/* Agent records count finished agent attempts per repository + type. */
static void
test_memory_store_agent_records_and_rows(void **state)
{
	struct fixture *f = *state;
	struct hl_err err = HL_ERR_INIT;
	struct hl_agent_record rec[HL_AGENT_RECORDS_MAX];
	struct hl_insight_dedup d;
	struct rows c = { 0 };
	size_t n = 0;

	task_with_attempts(f, "t1", "acme/platform", "rust_clippy", HL_TASK_ESCALATED,
	                   (const char *const[]){ "rex", "rex", "atlas" },
	                   (const enum hl_attempt_outcome[]){ HL_OUTCOME_AGENT_FAILED,
	                                                      HL_OUTCOME_CI_STILL_FAILING,
	                                                      HL_OUTCOME_TIMEOUT },
	                   3);
	task_with_attempts(
	        f, "t22", "acme/platform", "rust_clippy", HL_TASK_SUCCEEDED,
	        (const char *const[]){ "rex", "atlas" },
	        (const enum hl_attempt_outcome[]){ HL_OUTCOME_AGENT_FAILED, HL_OUTCOME_SUCCESS },
	        2);
	/* stopped attempts, other repositories and types do not count */
	task_with_attempts(f, "t333", "acme/platform", "rust_clippy", HL_TASK_STOPPED,
	                   (const char *const[]){ "rex" },
	                   (const enum hl_attempt_outcome[]){ HL_OUTCOME_STOPPED }, 1);
	task_with_attempts(f, "t4444", "acme/web", "rust_clippy", HL_TASK_SUCCEEDED,
	                   (const char *const[]){ "rex" },
	                   (const enum hl_attempt_outcome[]){ HL_OUTCOME_SUCCESS }, 1);
	assert_int_equal(hl_store_agent_records(f->s, rec, HL_AGENT_RECORDS_MAX, &n,
	                                        "acme/platform", "rust_clippy", &err),
	                 0);
	assert_int_equal(n, 2);
	assert_string_equal(rec[0].agent, "atlas");
	assert_int_equal(rec[0].finished, 2);
	assert_int_equal(rec[0].succeeded, 1);
	assert_string_equal(rec[1].agent, "rex");
	assert_int_equal(rec[1].finished, 3);
	assert_int_equal(rec[1].succeeded, 0);

	assert_int_equal(hl_store_insight_rows(
	                         f->s, &(struct hl_insight_filter){ .repository = "acme/platform" },
	                         count_rows, &c, &err),
	                 0);
	assert_int_equal(c.tasks, 3);
	assert_int_equal(c.rows, 6);
	assert_int_equal(hl_store_insight_dedup(f->s, &d, &(struct hl_insight_filter){ 0 }, &err),
	                 0);
	assert_int_equal(d.deliveries, 0);
	assert_int_equal(d.leaked, 0);
}

/* An exact repeat of a log line whose words are not ASCII finds its memory:
 * the words are whole UTF-8 words, folded as the index folds them (before,
 * "Überweisung" was searched as "berweisung", which no index holds). */
static void
test_memory_store_similar_non_ascii_words(void **state)
{
	struct fixture *f = *state;
	struct hl_err err = HL_ERR_INIT;
	struct hl_memory_hit *h = NULL;
	size_t n = 0;

	remember(f, "t-de", "acme/bank", "rust_test",
	         "Fehler: Überweisung für Kontoführung gescheitert", "rex", NULL);
	remember(f, "t-ru", "acme/bank", "rust_test", "Ошибка: перевод отклонён сервером", "rex",
	         NULL);
	remember(f, "t-en", "acme/bank", "rust_test", "error: transfer timed out", "rex", NULL);
	assert_int_equal(hl_store_memory_similar(
	                         f->s, &h, &n,
	                         &(struct hl_memory_query){
	                                 .repository = "acme/bank",
	                                 .failure_type = "rust_test",
	                                 .text = "Fehler: Überweisung für Kontoführung gescheitert",
	                                 .k = 5 },
	                         &err),
	                 0);
	assert_true(n >= 1);
	assert_string_equal(h[0].task_id, "t-de");
	hl_memory_hits_free(h, n);
	assert_int_equal(hl_store_memory_similar(
	                         f->s, &h, &n,
	                         &(struct hl_memory_query){ .repository = "acme/bank",
	                                                    .failure_type = "rust_test",
	                                                    .text = "ОШИБКА: перевод отклонён",
	                                                    .k = 5 },
	                         &err),
	                 0);
	assert_int_equal(n, 1);
	assert_string_equal(h[0].task_id, "t-ru");
	hl_memory_hits_free(h, n);
}

/* GitHub's repository names ignore case: a memory of Acme/Web comes first
 * for acme/web; the agent records of ACME/Platform are acme/platform's; one
 * failure remediated twice under two spellings of its repository is
 * leaked once. */
static void
test_memory_store_repository_case(void **state)
{
	struct fixture *f = *state;
	struct hl_err err = HL_ERR_INIT;
	struct hl_memory_hit *h = NULL;
	struct hl_agent_record rec[HL_AGENT_RECORDS_MAX];
	struct hl_insight_dedup d;
	size_t n = 0;
	int i;

	remember(f, "t-mine", "Acme/Web", "rust_clippy", "error: unused import `std::fmt`", "rex",
	         NULL);
	remember(f, "t-theirs", "other/web", "rust_clippy", "error: unused import `std::fmt`",
	         "rex", NULL);
	assert_int_equal(
	        hl_store_memory_similar(f->s, &h, &n,
	                                &(struct hl_memory_query){ .repository = "acme/web",
	                                                           .failure_type = "rust_clippy",
	                                                           .text = "error: unused import",
	                                                           .k = 5 },
	                                &err),
	        0);
	assert_int_equal(n, 2);
	assert_string_equal(h[0].task_id, "t-mine");
	hl_memory_hits_free(h, n);

	task_with_attempts(f, "t1", "acme/platform", "rust_clippy", HL_TASK_ESCALATED,
	                   (const char *const[]){ "rex" },
	                   (const enum hl_attempt_outcome[]){ HL_OUTCOME_AGENT_FAILED }, 1);
	assert_int_equal(hl_store_agent_records(f->s, rec, HL_AGENT_RECORDS_MAX, &n,
	                                        "ACME/Platform", "rust_clippy", &err),
	                 0);
	assert_int_equal(n, 1);
	assert_int_equal(rec[0].finished, 1);

	for (i = 0; i < 2; i++)
		assert_int_equal(
		        hl_store_task_put(
		                f->s,
		                &(struct hl_task){ .task_id = i ? "t-leak-2" : "t-leak-1",
		                                   .repository = i ? "Acme/Leak" : "acme/leak",
		                                   .run_id = 777,
		                                   .job = "lint",
		                                   .failure_type = "rust_clippy",
		                                   .state = HL_TASK_RUNNING },
		                &err),
		        0);
	assert_int_equal(hl_store_insight_dedup(f->s, &d, &(struct hl_insight_filter){ 0 }, &err),
	                 0);
	assert_int_equal(d.leaked, 1);
}

/* A search ranks a bounded number of candidates, the newest matches, on
 * either backend: a memory older than the newest 64 matches elsewhere is
 * not read, however heavy (before, PostgreSQL ranked every match of the
 * type, its cost growing with the store). */
static void
test_memory_store_similar_is_bounded(void **state)
{
	struct fixture *f = *state;
	struct hl_err err = HL_ERR_INIT;
	struct hl_memory_hit *h = NULL;
	char task[32];
	size_t n = 0, i;

	for (i = 0; i < 70; i++) {
		snprintf(task, sizeof(task), "t-many-%02zu", i);
		remember(f, task, "other/many", "go_vet", "vet: widget copies lock value", "rex",
		         NULL);
	}
	assert_int_equal(hl_store_memory_similar(
	                         f->s, &h, &n,
	                         &(struct hl_memory_query){
	                                 .failure_type = "go_vet", .text = "widget lock", .k = 5 },
	                         &err),
	                 0);
	assert_int_equal(n, 5);
	assert_string_equal(h[0].task_id, "t-many-69");
	/* the oldest made far heavier than the rest: still not a candidate */
	assert_int_equal(hl_store_memory_reinforce(f->s, h[0].id - 69, 100, &err), 0);
	hl_memory_hits_free(h, n);
	assert_int_equal(
	        hl_store_memory_similar(f->s, &h, &n,
	                                &(struct hl_memory_query){ .repository = "acme/x",
	                                                           .failure_type = "go_vet",
	                                                           .text = "widget lock",
	                                                           .k = 5 },
	                                &err),
	        0);
	assert_int_equal(n, 5);
	for (i = 0; i < n; i++)
		assert_string_not_equal(h[i].task_id, "t-many-00");
	hl_memory_hits_free(h, n);
	/* PostgreSQL: words many memories hold are searched by reading the
	 * newest memories until enough match, with the same answer */
	if (pg_mode) {
		assert_int_equal(pg_run_in(f->db, "UPDATE memory_terms SET docs = 1000000"), 0);
		assert_int_equal(
		        hl_store_memory_similar(f->s, &h, &n,
		                                &(struct hl_memory_query){ .repository = "acme/x",
		                                                           .failure_type = "go_vet",
		                                                           .text = "widget lock",
		                                                           .k = 5 },
		                                &err),
		        0);
		assert_int_equal(n, 5);
		assert_string_equal(h[0].task_id, "t-many-69");
		for (i = 0; i < n; i++)
			assert_string_not_equal(h[i].task_id, "t-many-00");
		hl_memory_hits_free(h, n);
	}
	assert_int_equal(hl_store_memory_similar(
	                         f->s, &h, &n,
	                         &(struct hl_memory_query){ .failure_type = "go_vet", .k = 5 },
	                         &err),
	                 0);
	for (i = 0; i < n; i++)
		assert_string_not_equal(h[i].task_id, "t-many-00");
	hl_memory_hits_free(h, n);
}

/* A SQLite store from before migration 24 (words counted as ASCII
 * fragments, repository tokens hashed with their case) is indexed again
 * when it is opened. */
static void
test_memory_store_reindexed_after_migration(void **state)
{
	struct fixture *f = *state;
	struct hl_err err = HL_ERR_INIT;
	struct hl_memory_hit *h = NULL;
	sqlite3 *db = NULL;
	char path[128];
	size_t n = 0;

	remember(f, "t-de", "Acme/Bank", "rust_test", "Fehler: Überweisung gescheitert", "rex",
	         NULL);
	hl_store_close(f->s);
	f->s = NULL;
	snprintf(path, sizeof(path), "%s/healer.db", f->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
	                              "DELETE FROM memory_terms;"
	                              "INSERT INTO memory_terms VALUES ('berweisung', 1);"
	                              "INSERT INTO memory_reindex (one) VALUES (1);",
	                              NULL, NULL, NULL),
	                 SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(hl_store_open(&f->s, f->url, &err), 0);
	assert_int_equal(
	        hl_store_memory_similar(f->s, &h, &n,
	                                &(struct hl_memory_query){ .repository = "acme/bank",
	                                                           .failure_type = "rust_test",
	                                                           .text = "Überweisung",
	                                                           .k = 5 },
	                                &err),
	        0);
	assert_int_equal(n, 1);
	assert_string_equal(h[0].task_id, "t-de");
	hl_memory_hits_free(h, n);
}

int
main(void)
{
	pg_mode = getenv("HEALER_TEST_PG_SOCKET") && getenv("HEALER_TEST_PG_PORT");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_memory_store_similar_repository_first, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_memory_store_later_outcome_replaces, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_memory_store_once_per_task_and_reinforce,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(test_memory_store_agent_records_and_rows, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_memory_store_similar_non_ascii_words, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_memory_store_repository_case, setup, teardown),
		cmocka_unit_test_setup_teardown(test_memory_store_similar_is_bounded, setup,
		                                teardown),
		/* SQLite only (last): the layout of its full-text index */
		cmocka_unit_test_setup_teardown(test_memory_store_reindexed_after_migration, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_memory_store_old_index_is_rebuilt, setup,
		                                teardown),
	};
	size_t n = sizeof(tests) / sizeof(tests[0]);

	return _cmocka_run_group_tests("memory-store", tests, pg_mode ? n - 2 : n, NULL, NULL);
}
