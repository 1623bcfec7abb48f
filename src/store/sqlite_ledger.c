/*
 * sqlite_ledger.c - the remediation ledger on SQLite (see store/ledger.h):
 * task claims and lookups, task and attempt upserts, typed records.
 *
 * Every task write reads the stored state first, inside the same
 * transaction, and asks hl_task_transition whether the move is legal; an
 * illegal move writes nothing. Writes are upserts whose NULL/zero fields
 * keep what is stored, so callers write only what they know.
 */
#include "base/buf.h"
#include "base/clock.h"
#include "base/str.h"
#include "sqlite_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
sq_bind_int_or_null(sqlite3_stmt *st, int i, int64_t v)
{
	if (v)
		sqlite3_bind_int64(st, i, v);
	else
		sqlite3_bind_null(st, i);
}

/* The stored state of a task: HL_TASK_STATE_INVALID when there is none. */
static int
sq_task_state(struct hl_store_backend *b, enum hl_task_state *out, const char *task_id,
              struct hl_err *err)
{
	sqlite3_stmt *st = hl_sq_prepare(b, "SELECT state FROM remediation_tasks"
	                                    " WHERE task_id = ?1");
	int rc;

	if (!st)
		return hl_sq_fail(err, b->db, "task state");
	sqlite3_bind_text(st, 1, task_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	*out = HL_TASK_STATE_INVALID;
	if (rc == SQLITE_ROW)
		*out = hl_task_state_from_name((const char *)sqlite3_column_text(st, 0));
	hl_sq_done(b, st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return hl_sq_fail(err, b->db, "task state");
	return 0;
}

/* The upsert, inside the caller's transaction. */
static int
sq_task_write(struct hl_store_backend *b, const struct hl_task *t, struct hl_err *err)
{
	enum hl_task_state cur;
	sqlite3_stmt *st;
	int64_t now = hl_time_wall_ms();
	bool ends;
	int rc;

	if ((rc = sq_task_state(b, &cur, t->task_id, err)) < 0)
		return rc;
	/* Writing the same state again updates the other fields only; a new
	 * state takes the new reason, none included (not the queue's). */
	if (cur != t->state && (rc = hl_task_transition(cur, t->state, err)) < 0)
		return hl_err_wrap(err, "task '%s'", t->task_id);
	ends = hl_task_state_is_final(t->state) || t->state == HL_TASK_ESCALATED;
	st = hl_sq_prepare(
	        b,
	        "INSERT INTO remediation_tasks (task_id, dedup_key, repository, run_id, job, branch,"
	        " agent, failure_type, state, coderun_name, decision_json, created_ms, updated_ms,"
	        " reason, attempts, finished_ms, kind, workflow, head_sha, pr_number, target_branch,"
	        " event_json, next_check_ms, queued_ms, remember_pending)"
	        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13,"
	        " COALESCE(?14, 0), ?15, ?16, ?17, ?18, ?19, ?20, ?21,"
	        " CASE WHEN ?22 = -1 THEN NULL ELSE ?22 END,"
	        " CASE WHEN ?9 = 'queued' THEN MAX(?12, COALESCE((SELECT MAX(queued_ms) + 1"
	        "  FROM remediation_tasks), 0)) END,"
	        " ?9 IN ('succeeded', 'escalated'))"
	        " ON CONFLICT (task_id) DO UPDATE SET"
	        " dedup_key = COALESCE(excluded.dedup_key, remediation_tasks.dedup_key),"
	        " repository = COALESCE(excluded.repository, remediation_tasks.repository),"
	        " run_id = COALESCE(excluded.run_id, remediation_tasks.run_id),"
	        " job = COALESCE(excluded.job, remediation_tasks.job),"
	        " branch = COALESCE(excluded.branch, remediation_tasks.branch),"
	        " agent = COALESCE(excluded.agent, remediation_tasks.agent),"
	        " failure_type = COALESCE(excluded.failure_type, remediation_tasks.failure_type),"
	        " state = excluded.state,"
	        " coderun_name = COALESCE(excluded.coderun_name, remediation_tasks.coderun_name),"
	        " decision_json = COALESCE(excluded.decision_json, remediation_tasks.decision_json),"
	        " updated_ms = excluded.updated_ms,"
	        " reason = CASE WHEN excluded.state = remediation_tasks.state"
	        "  THEN COALESCE(excluded.reason, remediation_tasks.reason) ELSE excluded.reason END,"
	        " attempts = CASE WHEN ?14 IS NULL THEN remediation_tasks.attempts ELSE ?14 END,"
	        " finished_ms = CASE WHEN ?15 IS NULL THEN NULL"
	        "  ELSE COALESCE(remediation_tasks.finished_ms, ?15) END,"
	        " kind = COALESCE(excluded.kind, remediation_tasks.kind),"
	        " workflow = COALESCE(excluded.workflow, remediation_tasks.workflow),"
	        " head_sha = COALESCE(excluded.head_sha, remediation_tasks.head_sha),"
	        " pr_number = COALESCE(excluded.pr_number, remediation_tasks.pr_number),"
	        " target_branch = COALESCE(excluded.target_branch, remediation_tasks.target_branch),"
	        " event_json = COALESCE(excluded.event_json, remediation_tasks.event_json),"
	        " next_check_ms = CASE WHEN ?22 IS NULL THEN remediation_tasks.next_check_ms"
	        "  WHEN ?22 = -1 THEN NULL ELSE ?22 END,"
	        " queued_ms = CASE WHEN excluded.state <> 'queued' THEN NULL"
	        "  WHEN remediation_tasks.state = 'queued' THEN remediation_tasks.queued_ms"
	        "  ELSE MAX(excluded.updated_ms, COALESCE((SELECT MAX(q.queued_ms) + 1"
	        "   FROM remediation_tasks q), 0)) END,"
	        " remember_pending = CASE WHEN excluded.state IN ('succeeded', 'escalated')"
	        "  AND excluded.state <> remediation_tasks.state THEN 1"
	        "  ELSE remediation_tasks.remember_pending END");
	if (!st)
		return hl_sq_fail(err, b->db, "put task");
	hl_sq_bind_text(st, 1, t->task_id);
	hl_sq_bind_text(st, 2, t->dedup_key);
	hl_sq_bind_text(st, 3, t->repository);
	sq_bind_int_or_null(st, 4, t->run_id);
	hl_sq_bind_text(st, 5, t->job);
	hl_sq_bind_text(st, 6, t->branch);
	hl_sq_bind_text(st, 7, t->agent);
	hl_sq_bind_text(st, 8, t->failure_type);
	sqlite3_bind_text(st, 9, hl_task_state_name(t->state), -1, SQLITE_STATIC);
	hl_sq_bind_text(st, 10, t->coderun_name);
	hl_sq_bind_text(st, 11, t->decision_json);
	sqlite3_bind_int64(st, 12, now);
	hl_sq_bind_text(st, 13, t->reason);
	sq_bind_int_or_null(st, 14, t->attempts);
	sq_bind_int_or_null(st, 15, ends ? now : 0);
	hl_sq_bind_text(st, 16, t->kind);
	hl_sq_bind_text(st, 17, t->workflow);
	hl_sq_bind_text(st, 18, t->head_sha);
	sq_bind_int_or_null(st, 19, t->pr_number);
	hl_sq_bind_text(st, 20, t->target_branch);
	hl_sq_bind_text(st, 21, t->event_json);
	sq_bind_int_or_null(st, 22, t->next_check_ms);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : hl_sq_fail(err, b->db, "put task");
	hl_sq_done(b, st);
	return rc;
}

int
hl_sq_task_put(struct hl_store_backend *b, const struct hl_task *t, struct hl_err *err)
{
	int rc;

	if (hl_sq_begin(b, "put task", err) < 0)
		return -HL_EDB;
	rc = sq_task_write(b, t, err);
	if (rc == 0)
		rc = hl_sq_commit(b, "put task", err);
	if (rc < 0)
		hl_sq_rollback(b);
	return rc;
}

int
hl_sq_task_claim(struct hl_store_backend *b, bool *created, char *existing, const struct hl_task *t,
                 struct hl_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (hl_sq_begin(b, "claim task", err) < 0)
		return -HL_EDB;
	if (!(st = hl_sq_prepare(b, "SELECT task_id FROM remediation_tasks WHERE task_id = ?1"
	                            " OR (?2 IS NOT NULL AND dedup_key = ?2)"
	                            " ORDER BY task_id = ?1 DESC, created_ms LIMIT 1"))) {
		rc = hl_sq_fail(err, b->db, "claim task");
		goto out;
	}
	sqlite3_bind_text(st, 1, t->task_id, -1, SQLITE_STATIC);
	hl_sq_bind_text(st, 2, t->dedup_key);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		hl_sq_col_copy(existing, HL_TASK_ID_MAX, st, 0);
		*created = false;
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		hl_sq_done(b, st);
		st = NULL;
		rc = sq_task_write(b, t, err);
		if (rc == 0) {
			hl_strlcpy(existing, t->task_id, HL_TASK_ID_MAX);
			*created = true;
		}
	} else {
		rc = hl_sq_fail(err, b->db, "claim task");
	}
	hl_sq_done(b, st);
	if (rc == 0)
		rc = hl_sq_commit(b, "claim task", err);
out:
	if (rc < 0)
		hl_sq_rollback(b);
	return rc;
}

int
hl_sq_task_find(struct hl_store_backend *b, char *out, const char *repository, const char *branch,
                int64_t run_id, enum hl_task_find mode, int64_t since_ms, const char *exclude,
                struct hl_err *err)
{
	static const char *const where[] = {
		[HL_TASK_FIND_ANY] = "run_id = ?3",
		[HL_TASK_FIND_RUN_LEVEL] = "run_id = ?3 AND job IS NULL",
		[HL_TASK_FIND_OTHER_RUN] = ("branch = ?2 AND (run_id IS NULL OR run_id <> ?3)"
		                            " AND created_ms >= ?4"),
	};
	sqlite3_stmt *st = NULL;
	char sql[512];
	int rc;

	if ((unsigned)mode > HL_TASK_FIND_OTHER_RUN)
		return hl_err_set(err, HL_EINVAL, "bad task search mode %d", (int)mode);
	snprintf(sql, sizeof(sql),
	         "SELECT task_id FROM remediation_tasks WHERE repository = ?1 AND %s"
	         " AND NOT (state = 'skipped' AND agent IS NULL)"
	         " AND (?5 IS NULL OR task_id <> ?5) ORDER BY created_ms DESC LIMIT 1",
	         where[mode]);
	if (!(st = hl_sq_prepare(b, sql)))
		return hl_sq_fail(err, b->db, "find task");
	sqlite3_bind_text(st, 1, repository, -1, SQLITE_STATIC);
	hl_sq_bind_text(st, 2, branch);
	sqlite3_bind_int64(st, 3, run_id);
	sqlite3_bind_int64(st, 4, since_ms);
	hl_sq_bind_text(st, 5, exclude);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		hl_sq_col_copy(out, HL_TASK_ID_MAX, st, 0);
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		rc = hl_err_set(err, HL_ENOTFOUND, "no matching task");
	} else {
		rc = hl_sq_fail(err, b->db, "find task");
	}
	hl_sq_done(b, st);
	return rc;
}

int
hl_sq_attempt_put(struct hl_store_backend *b, const struct hl_attempt *a, struct hl_err *err)
{
	sqlite3_stmt *st =
	        hl_sq_prepare(b, HL_STORE_ATTEMPT_INSERT
	                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,"
	                      " ?12, ?13, ?14, ?15, ?16, ?17, ?18)" HL_STORE_ATTEMPT_UPSERT);
	int rc;

	if (!st)
		return hl_sq_fail(err, b->db, "put attempt");
	hl_sq_bind_text(st, 1, a->task_id);
	sqlite3_bind_int(st, 2, a->n);
	hl_sq_bind_text(st, 3, a->agent);
	hl_sq_bind_text(st, 4, a->coderun_name && *a->coderun_name ? a->coderun_name : NULL);
	hl_sq_bind_text(st, 5,
	                a->outcome == HL_OUTCOME_INVALID ? NULL
	                                                 : hl_attempt_outcome_name(a->outcome));
	sqlite3_bind_int64(st, 6, a->started_ms ? a->started_ms : hl_time_wall_ms());
	sq_bind_int_or_null(st, 7, a->finished_ms);
	sqlite3_bind_text(st, 8, hl_attempt_kind_name(a->kind), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 9, hl_attempt_phase_name(a->phase), -1, SQLITE_STATIC);
	hl_sq_bind_text(st, 10, a->reason);
	hl_sq_bind_text(st, 11, a->status_message);
	hl_sq_bind_text(st, 12, a->pr_url);
	hl_sq_bind_text(st, 13, a->coderun_phase);
	hl_sq_bind_text(st, 14, a->job_name);
	sq_bind_int_or_null(st, 15, a->agent_done_ms);
	hl_sq_bind_text(st, 16, a->prompt);
	hl_sq_bind_text(st, 17, a->repository);
	hl_sq_bind_text(st, 18, a->pod_name);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : hl_sq_fail(err, b->db, "put attempt");
	hl_sq_done(b, st);
	return rc;
}

int
hl_sq_outcome_add(struct hl_store_backend *b, const char *task_id, const char *delivery_id,
                  const char *outcome, const char *detail, struct hl_err *err)
{
	sqlite3_stmt *st = hl_sq_prepare(b, "INSERT INTO outcomes (task_id, delivery_id, outcome,"
	                                    " detail, recorded_ms) VALUES (?1, ?2, ?3, ?4, ?5)");
	int rc;

	if (!st)
		return hl_sq_fail(err, b->db, "add outcome");
	hl_sq_bind_text(st, 1, task_id);
	hl_sq_bind_text(st, 2, delivery_id);
	hl_sq_bind_text(st, 3, outcome);
	hl_sq_bind_text(st, 4, detail);
	sqlite3_bind_int64(st, 5, hl_time_wall_ms());
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : hl_sq_fail(err, b->db, "add outcome");
	hl_sq_done(b, st);
	return rc;
}

int
hl_sq_task_counts(struct hl_store_backend *b,
                  void (*fn)(void *, const char *, const char *, int64_t), void *arg,
                  struct hl_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (!(st = hl_sq_prepare(
	              b,
	              "SELECT 'state', state, COUNT(*) FROM remediation_tasks"
	              " GROUP BY state UNION ALL"
	              " SELECT 'outcome', CASE WHEN outcome IS NOT NULL THEN outcome"
	              " WHEN phase = 'done' THEN 'not_run' ELSE 'running' END, COUNT(*) FROM attempts"
	              " GROUP BY 2 LIMIT 200")))
		return hl_sq_fail(err, b->db, "task counts");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		fn(arg, (const char *)sqlite3_column_text(st, 0),
		   (const char *)sqlite3_column_text(st, 1), sqlite3_column_int64(st, 2));
	hl_sq_done(b, st);
	return rc == SQLITE_DONE ? 0 : hl_sq_fail(err, b->db, "task counts");
}

static int64_t
sq_col_int(sqlite3_stmt *st, int i)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, i);
}

static int
sq_read_attempts(struct hl_store_backend *b, struct hl_task_record *t, struct hl_err *err)
{
	sqlite3_stmt *st = hl_sq_prepare(
	        b, "SELECT n, kind, phase, outcome, agent, coderun_name, reason, status_message,"
	           " pr_url, started_ms, finished_ms, coderun_phase, job_name, agent_done_ms,"
	           " pod_name FROM attempts WHERE task_id = ?1 ORDER BY n");
	size_t cap = 0;
	int rc;

	if (!st)
		return hl_sq_fail(err, b->db, "attempts");
	sqlite3_bind_text(st, 1, t->task_id, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct hl_attempt_record *a;

		if (t->n_attempts == cap) {
			size_t ncap = cap ? cap * 2 : 4;
			void *p = realloc(t->attempt, ncap * sizeof(*t->attempt));
			if (!p) {
				hl_sq_done(b, st);
				return hl_err_set(err, HL_ENOMEM, "out of memory");
			}
			t->attempt = p;
			cap = ncap;
		}
		a = &t->attempt[t->n_attempts++];
		memset(a, 0, sizeof(*a));
		a->n = sqlite3_column_int(st, 0);
		a->kind = hl_attempt_kind_from_name((const char *)sqlite3_column_text(st, 1));
		a->phase = hl_attempt_phase_from_name((const char *)sqlite3_column_text(st, 2));
		a->outcome = hl_attempt_outcome_from_name((const char *)sqlite3_column_text(st, 3));
		a->agent = hl_sq_col_dup(st, 4);
		a->coderun_name = hl_sq_col_dup(st, 5);
		a->reason = hl_sq_col_dup(st, 6);
		a->status_message = hl_sq_col_dup(st, 7);
		a->pr_url = hl_sq_col_dup(st, 8);
		a->started_ms = sq_col_int(st, 9);
		a->finished_ms = sq_col_int(st, 10);
		a->coderun_phase = hl_sq_col_dup(st, 11);
		a->job_name = hl_sq_col_dup(st, 12);
		a->agent_done_ms = sq_col_int(st, 13);
		a->pod_name = hl_sq_col_dup(st, 14);
	}
	hl_sq_done(b, st);
	return rc == SQLITE_DONE ? 0 : hl_sq_fail(err, b->db, "attempts");
}

static int
sq_read_notifications(struct hl_store_backend *b, struct hl_task_record *t, struct hl_err *err)
{
	sqlite3_stmt *st = hl_sq_prepare(
	        b,
	        "SELECT id, channel, kind, ref, state, last_error, attempts, created_ms, next_ms,"
	        " delivered_ms FROM notifications WHERE task_id = ?1 ORDER BY id LIMIT 100");
	size_t cap = 0;
	int rc;

	if (!st)
		return hl_sq_fail(err, b->db, "notifications");
	sqlite3_bind_text(st, 1, t->task_id, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct hl_notification_record *nr;

		if (t->n_notifications == cap) {
			size_t ncap = cap ? cap * 2 : 4;
			void *p = realloc(t->notification, ncap * sizeof(*t->notification));
			if (!p) {
				hl_sq_done(b, st);
				return hl_err_set(err, HL_ENOMEM, "out of memory");
			}
			t->notification = p;
			cap = ncap;
		}
		nr = &t->notification[t->n_notifications++];
		memset(nr, 0, sizeof(*nr));
		nr->id = sqlite3_column_int64(st, 0);
		nr->channel = hl_sq_col_dup(st, 1);
		nr->kind = hl_sq_col_dup(st, 2);
		nr->ref = hl_sq_col_dup(st, 3);
		nr->state = hl_sq_col_dup(st, 4);
		nr->last_error = hl_sq_col_dup(st, 5);
		nr->attempts = sqlite3_column_int(st, 6);
		nr->created_ms = sq_col_int(st, 7);
		nr->next_ms = sq_col_int(st, 8);
		nr->delivered_ms = sq_col_int(st, 9);
	}
	hl_sq_done(b, st);
	return rc == SQLITE_DONE ? 0 : hl_sq_fail(err, b->db, "notifications");
}

int
hl_sq_attempt_prompt(struct hl_store_backend *b, char **out, const char *task_id, int n,
                     struct hl_err *err)
{
	sqlite3_stmt *st = hl_sq_prepare(b, "SELECT prompt FROM attempts WHERE task_id = ?1"
	                                    " AND n = ?2");
	char *p = NULL;
	int rc;

	if (!st)
		return hl_sq_fail(err, b->db, "prompt");
	sqlite3_bind_text(st, 1, task_id, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, n);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		p = hl_sq_col_dup(st, 0);
	hl_sq_done(b, st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return hl_sq_fail(err, b->db, "prompt");
	if (!p)
		return hl_err_set(err, HL_ENOTFOUND, "no prompt for attempt %d of '%s'", n,
		                  task_id);
	*out = p;
	return 0;
}

#define SQ_TASK_COLS                                                                       \
	"task_id, dedup_key, repository, run_id, job, branch, agent, failure_type, state," \
	" coderun_name, decision_json, created_ms, updated_ms, reason, attempts,"          \
	" finished_ms, kind, workflow, head_sha, pr_number, target_branch, event_json,"    \
	" next_check_ms, queued_ms"

/* A task record from a row of SQ_TASK_COLS; NULL when out of memory. */
static struct hl_task_record *
sq_task_row(sqlite3_stmt *st)
{
	struct hl_task_record *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->task_id = hl_sq_col_dup(st, 0);
	t->dedup_key = hl_sq_col_dup(st, 1);
	t->repository = hl_sq_col_dup(st, 2);
	t->run_id = sq_col_int(st, 3);
	t->job = hl_sq_col_dup(st, 4);
	t->branch = hl_sq_col_dup(st, 5);
	t->agent = hl_sq_col_dup(st, 6);
	t->failure_type = hl_sq_col_dup(st, 7);
	t->state = hl_task_state_from_name((const char *)sqlite3_column_text(st, 8));
	t->coderun_name = hl_sq_col_dup(st, 9);
	t->decision_json = hl_sq_col_dup(st, 10);
	t->created_ms = sq_col_int(st, 11);
	t->updated_ms = sq_col_int(st, 12);
	t->reason = hl_sq_col_dup(st, 13);
	t->attempts = (int)sq_col_int(st, 14);
	t->finished_ms = sq_col_int(st, 15);
	t->kind = hl_sq_col_dup(st, 16);
	t->workflow = hl_sq_col_dup(st, 17);
	t->head_sha = hl_sq_col_dup(st, 18);
	t->pr_number = sq_col_int(st, 19);
	t->target_branch = hl_sq_col_dup(st, 20);
	t->event_json = hl_sq_col_dup(st, 21);
	t->next_check_ms = sq_col_int(st, 22);
	t->queued_ms = sq_col_int(st, 23);
	if (!t->task_id) {
		hl_task_record_free(t);
		return NULL;
	}
	return t;
}

static int
sq_task_read(struct hl_store_backend *b, struct hl_task_record **out, const char *task_id,
             struct hl_err *err)
{
	sqlite3_stmt *st = hl_sq_prepare(b, "SELECT " SQ_TASK_COLS " FROM remediation_tasks"
	                                    " WHERE task_id = ?1");
	struct hl_task_record *t;
	int rc;

	if (!st)
		return hl_sq_fail(err, b->db, "task");
	sqlite3_bind_text(st, 1, task_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		hl_sq_done(b, st);
		if (rc == SQLITE_DONE)
			return hl_err_set(err, HL_ENOTFOUND, "no task '%s'", task_id);
		return hl_sq_fail(err, b->db, "task");
	}
	t = sq_task_row(st);
	hl_sq_done(b, st);
	if (!t)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	if ((rc = sq_read_attempts(b, t, err)) < 0 || (rc = sq_read_notifications(b, t, err)) < 0) {
		hl_task_record_free(t);
		return rc;
	}
	*out = t;
	return 0;
}

/* The task, its attempts and notifications as of one moment: read in one
 * transaction (a deferred one: a reader, never a writer), so a state is
 * never shown with attempts committed after it was read. */
int
hl_sq_task_get(struct hl_store_backend *b, struct hl_task_record **out, const char *task_id,
               struct hl_err *err)
{
	sqlite3_stmt *st = hl_sq_prepare(b, "BEGIN DEFERRED");
	int rc;

	if (!st)
		return hl_sq_fail(err, b->db, "task");
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : hl_sq_fail(err, b->db, "task");
	hl_sq_done(b, st);
	if (rc < 0)
		return rc;
	if ((rc = sq_task_read(b, out, task_id, err)) < 0) {
		hl_sq_rollback(b);
		return rc;
	}
	if ((rc = hl_sq_commit(b, "task", err)) < 0) {
		hl_sq_rollback(b);
		hl_task_record_free(*out);
		*out = NULL;
	}
	return rc;
}

/* A copy of column i in *out, NULL for SQL NULL; -1 when out of memory. */
static int
sq_col_dup_or_null(char **out, sqlite3_stmt *st, int i)
{
	if (sqlite3_column_type(st, i) == SQLITE_NULL) {
		*out = NULL;
		return 0;
	}
	*out = hl_sq_col_dup(st, i);
	return *out ? 0 : -1;
}

int
hl_sq_task_page(struct hl_store_backend *b, struct hl_task_summary *out, size_t *n,
                char *next_cursor, const struct hl_task_filter *f, struct hl_err *err)
{
	struct hl_buf sql = HL_BUF_INIT(4096);
	sqlite3_stmt *st = NULL;
	char cur_id[HL_TASK_ID_MAX];
	int64_t cur_ms = 0;
	size_t limit = f->limit ? f->limit : 50, k = 0;
	int has_cursor, rc, i, first = 1;

	if (limit > HL_TASK_LIST_MAX)
		limit = HL_TASK_LIST_MAX;
	if ((has_cursor = hl_store_cursor_parse(f->cursor, &cur_ms, cur_id, sizeof(cur_id), err)) <
	    0)
		return has_cursor;
	/* attempts: the ones begun, as the task's document lists them (a
	 * queued task's counter already names the attempt it waits to begin) */
	hl_buf_append_str(&sql, "SELECT task_id, repository, branch, workflow, job, agent,"
	                        " failure_type, kind, reason, state,"
	                        " (SELECT COUNT(*) FROM attempts a"
	                        "  WHERE a.task_id = remediation_tasks.task_id), pr_number,"
	                        " created_ms, updated_ms, finished_ms FROM remediation_tasks");
	if (f->states) {
		hl_buf_append_str(&sql, first ? " WHERE state IN (" : " AND state IN (");
		first = 0;
		for (i = 0, rc = 0; i < HL_TASK_STATE_MAX; i++)
			if (f->states & (1u << i))
				hl_buf_appendf(&sql, "%s'%s'", rc++ ? ", " : "",
				               hl_task_state_name((enum hl_task_state)i));
		hl_buf_append_str(&sql, ")");
	}
	{
		static const char *const conds[] = {
			"repository = ?1 COLLATE NOCASE",
			"agent = ?2",
			"failure_type = ?3",
			"kind = ?4",
			"created_ms >= ?5",
			"(created_ms < ?6 OR (created_ms = ?6 AND task_id < ?7))",
		};
		const bool on[] = { f->repository != NULL,   f->agent != NULL,
			            f->failure_type != NULL, f->kind != NULL,
			            f->since_ms != 0,        has_cursor == 1 };
		for (i = 0; i < (int)(sizeof(conds) / sizeof(conds[0])); i++) {
			if (!on[i])
				continue;
			hl_buf_appendf(&sql, "%s%s", first ? " WHERE " : " AND ", conds[i]);
			first = 0;
		}
	}
	hl_buf_append_str(&sql, f->by_finished
	                                ? " ORDER BY finished_ms DESC, task_id DESC LIMIT ?8"
	                                : " ORDER BY created_ms DESC, task_id DESC LIMIT ?8");
	if (hl_buf_error(&sql)) {
		hl_buf_release(&sql);
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	}
	st = hl_sq_prepare(b, sql.data);
	hl_buf_release(&sql);
	if (!st)
		return hl_sq_fail(err, b->db, "list tasks");
	hl_sq_bind_text(st, 1, f->repository);
	hl_sq_bind_text(st, 2, f->agent);
	hl_sq_bind_text(st, 3, f->failure_type);
	hl_sq_bind_text(st, 4, f->kind);
	sqlite3_bind_int64(st, 5, f->since_ms);
	sqlite3_bind_int64(st, 6, cur_ms);
	hl_sq_bind_text(st, 7, has_cursor ? cur_id : NULL);
	sqlite3_bind_int64(st, 8, (sqlite3_int64)limit + 1); /* one more: is there a next page? */
	next_cursor[0] = '\0';
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct hl_task_summary *s;
		if (k == limit) {
			if (!f->by_finished)
				hl_store_cursor_make(next_cursor, &out[k - 1]);
			rc = SQLITE_DONE;
			break;
		}
		s = &out[k++];
		memset(s, 0, sizeof(*s));
		hl_sq_col_copy(s->task_id, sizeof(s->task_id), st, 0);
		/* whole, as the task's document shows them */
		if (sq_col_dup_or_null(&s->repository, st, 1) < 0 ||
		    sq_col_dup_or_null(&s->branch, st, 2) < 0 ||
		    sq_col_dup_or_null(&s->workflow, st, 3) < 0 ||
		    sq_col_dup_or_null(&s->job, st, 4) < 0 ||
		    sq_col_dup_or_null(&s->reason, st, 8) < 0) {
			rc = SQLITE_NOMEM;
			break;
		}
		hl_sq_col_copy(s->agent, sizeof(s->agent), st, 5);
		hl_sq_col_copy(s->failure_type, sizeof(s->failure_type), st, 6);
		hl_sq_col_copy(s->kind, sizeof(s->kind), st, 7);
		s->state = hl_task_state_from_name((const char *)sqlite3_column_text(st, 9));
		s->attempts = sqlite3_column_int(st, 10);
		s->pr_number = sq_col_int(st, 11);
		s->created_ms = sq_col_int(st, 12);
		s->updated_ms = sq_col_int(st, 13);
		s->finished_ms = sq_col_int(st, 14);
	}
	/* a statement whose SQL depends on the filter: not worth caching */
	hl_sq_done(b, st);
	if (rc != SQLITE_DONE) {
		hl_task_summaries_release(out, k);
		return rc == SQLITE_NOMEM ? hl_err_set(err, HL_ENOMEM, "out of memory")
		                          : hl_sq_fail(err, b->db, "list tasks");
	}
	*n = k;
	return 0;
}

int
hl_sq_task_waiting(struct hl_store_backend *b, struct hl_task_waiting *out, const char *task_id,
                   struct hl_err *err)
{
	/* the terms of the partial index deliveries_waiting_task (0025) */
	sqlite3_stmt *st =
	        hl_sq_prepare(b, "SELECT delivery_id, state, received_ms FROM deliveries"
	                         " WHERE task_id = ?1 AND task_id IS NOT NULL"
	                         " AND state IN ('received', 'processing') ORDER BY id LIMIT 1");
	int rc;

	if (!st)
		return hl_sq_fail(err, b->db, "waiting delivery");
	sqlite3_bind_text(st, 1, task_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		memset(out, 0, sizeof(*out));
		hl_sq_col_copy(out->delivery_id, sizeof(out->delivery_id), st, 0);
		hl_sq_col_copy(out->state, sizeof(out->state), st, 1);
		out->received_ms = sq_col_int(st, 2);
	}
	hl_sq_done(b, st);
	if (rc == SQLITE_DONE)
		return hl_err_set(err, HL_ENOTFOUND, "no delivery of '%s' waits", task_id);
	if (rc != SQLITE_ROW)
		return hl_sq_fail(err, b->db, "waiting delivery");
	return 0;
}

int
hl_sq_task_list(struct hl_store_backend *b, struct hl_task_record ***out, size_t *n,
                const struct hl_task_query *q, struct hl_err *err)
{
	sqlite3_stmt *st = hl_sq_prepare(
	        b, "SELECT " SQ_TASK_COLS " FROM remediation_tasks"
	           " WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR repository = ?2)"
	           " AND (?3 IS NULL OR agent = ?3)"
	           " AND (?4 IS NULL OR created_ms < ?4 OR (created_ms = ?4 AND task_id < ?5))"
	           " ORDER BY created_ms DESC, task_id DESC LIMIT ?6");
	struct hl_task_record **list;
	size_t k = 0;
	int rc = SQLITE_DONE;

	if (!st)
		return hl_sq_fail(err, b->db, "task list");
	list = calloc(q->limit ? q->limit : 1, sizeof(*list));
	if (!list) {
		hl_sq_done(b, st);
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	}
	hl_sq_bind_text(st, 1, q->state);
	hl_sq_bind_text(st, 2, q->repository);
	hl_sq_bind_text(st, 3, q->agent);
	if (q->before_created_ms) {
		sqlite3_bind_int64(st, 4, q->before_created_ms);
		sqlite3_bind_text(st, 5, q->before_task_id ? q->before_task_id : "", -1,
		                  SQLITE_STATIC);
	}
	sqlite3_bind_int64(st, 6, (sqlite3_int64)q->limit);
	while (k < q->limit && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (!(list[k] = sq_task_row(st))) {
			rc = SQLITE_NOMEM;
			break;
		}
		k++;
	}
	if (k == q->limit)
		rc = SQLITE_DONE;
	hl_sq_done(b, st);
	if (rc != SQLITE_DONE) {
		hl_task_list_free(list, k);
		return rc == SQLITE_NOMEM ? hl_err_set(err, HL_ENOMEM, "out of memory")
		                          : hl_sq_fail(err, b->db, "task list");
	}
	*out = list;
	*n = k;
	return 0;
}
