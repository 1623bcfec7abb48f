/*
 * sqlite_loop.c - the loop's state and the outbox on SQLite (see
 * store/loop.h and store/outbox.h): due and queued tasks, task leases,
 * CodeRun lookups, CI results, budgets, key/value state, notifications.
 */
#include "base/clock.h"
#include "base/str.h"
#include "sqlite_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads up to max task ids from a prepared SELECT task_id ... statement;
 * total, when not NULL, gets its second column (a count over every row). */
static int
sq_read_ids(struct hl_store_backend *b, sqlite3_stmt *st, char (*ids)[HL_TASK_ID_MAX], size_t max,
            size_t *n, size_t *total, const char *what, struct hl_err *err)
{
	size_t k = 0;
	int rc = SQLITE_DONE;

	if (total)
		*total = 0;
	while (k < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		hl_sq_col_copy(ids[k++], HL_TASK_ID_MAX, st, 0);
		if (total)
			*total = (size_t)sqlite3_column_int64(st, 1);
	}
	if (k == max)
		rc = SQLITE_DONE;
	hl_sq_done(b, st);
	if (rc != SQLITE_DONE)
		return hl_sq_fail(err, b->db, what);
	*n = k;
	return 0;
}

int
hl_sq_tasks_due(struct hl_store_backend *b, char (*ids)[HL_TASK_ID_MAX], size_t max, size_t *n,
                int64_t now_ms, struct hl_err *err)
{
	sqlite3_stmt *st =
	        hl_sq_prepare(b, "SELECT task_id FROM remediation_tasks"
	                         " WHERE next_check_ms IS NOT NULL AND next_check_ms <= ?1"
	                         " ORDER BY next_check_ms LIMIT ?2");

	if (!st)
		return hl_sq_fail(err, b->db, "due tasks");
	sqlite3_bind_int64(st, 1, now_ms);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
	return sq_read_ids(b, st, ids, max, n, NULL, "due tasks", err);
}

int
hl_sq_tasks_queued(struct hl_store_backend *b, char (*ids)[HL_TASK_ID_MAX], size_t max, size_t *n,
                   struct hl_err *err)
{
	sqlite3_stmt *st = hl_sq_prepare(b, "SELECT task_id FROM remediation_tasks"
	                                    " WHERE state = 'queued' ORDER BY queued_ms, task_id"
	                                    " LIMIT ?1");

	if (!st)
		return hl_sq_fail(err, b->db, "queued tasks");
	sqlite3_bind_int64(st, 1, (sqlite3_int64)max);
	return sq_read_ids(b, st, ids, max, n, NULL, "queued tasks", err);
}

int
hl_sq_tasks_remember(struct hl_store_backend *b, char (*ids)[HL_TASK_ID_MAX], size_t max, size_t *n,
                     struct hl_err *err)
{
	sqlite3_stmt *st = hl_sq_prepare(b, "SELECT task_id FROM remediation_tasks"
	                                    " WHERE remember_pending = 1 LIMIT ?1");

	if (!st)
		return hl_sq_fail(err, b->db, "tasks to remember");
	sqlite3_bind_int64(st, 1, (sqlite3_int64)max);
	return sq_read_ids(b, st, ids, max, n, NULL, "tasks to remember", err);
}

int
hl_sq_task_remembered(struct hl_store_backend *b, const char *task_id, struct hl_err *err)
{
	sqlite3_stmt *st = hl_sq_prepare(b, "UPDATE remediation_tasks SET remember_pending = 0"
	                                    " WHERE task_id = ?1 AND remember_pending = 1");
	int rc;

	if (!st)
		return hl_sq_fail(err, b->db, "task remembered");
	sqlite3_bind_text(st, 1, task_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : hl_sq_fail(err, b->db, "task remembered");
	hl_sq_done(b, st);
	return rc;
}

static int
sq_one_int(struct hl_store_backend *b, sqlite3_stmt *st, int64_t *out, const char *what,
           struct hl_err *err)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW)
		*out = sqlite3_column_type(st, 0) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, 0);
	hl_sq_done(b, st);
	return rc == SQLITE_ROW ? 0 : hl_sq_fail(err, b->db, what);
}

int
hl_sq_next_check(struct hl_store_backend *b, int64_t *out, struct hl_err *err)
{
	sqlite3_stmt *st = hl_sq_prepare(b, "SELECT MIN(next_check_ms) FROM remediation_tasks"
	                                    " WHERE next_check_ms IS NOT NULL");

	if (!st)
		return hl_sq_fail(err, b->db, "next check");
	return sq_one_int(b, st, out, "next check", err);
}

int
hl_sq_task_lease(struct hl_store_backend *b, bool *got, const char *task_id, const char *owner,
                 int64_t now_ms, int64_t until_ms, struct hl_err *err)
{
	sqlite3_stmt *st = hl_sq_prepare(
	        b, "UPDATE remediation_tasks SET lease_owner = ?2, lease_until_ms = ?4"
	           " WHERE task_id = ?1 AND (lease_owner IS NULL OR lease_owner = ?2"
	           " OR lease_until_ms IS NULL OR lease_until_ms < ?3"
	           /* "P@O" of another handle: a process before this one (one
	            * process per SQLite store), dead */
	           " OR (instr(?2, '@') > 0 AND substr(lease_owner, 1, instr(lease_owner, '@'))"
	           " = substr(?2, 1, instr(?2, '@'))))");
	int rc;

	if (!st)
		return hl_sq_fail(err, b->db, "lease task");
	sqlite3_bind_text(st, 1, task_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, owner, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now_ms);
	sqlite3_bind_int64(st, 4, until_ms);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : hl_sq_fail(err, b->db, "lease task");
	hl_sq_done(b, st);
	if (rc == 0)
		*got = sqlite3_changes(b->db) == 1;
	return rc;
}

int
hl_sq_task_release(struct hl_store_backend *b, const char *task_id, const char *owner,
                   struct hl_err *err)
{
	sqlite3_stmt *st = hl_sq_prepare(b, "UPDATE remediation_tasks SET lease_owner = NULL,"
	                                    " lease_until_ms = NULL"
	                                    " WHERE task_id = ?1 AND lease_owner = ?2");
	int rc;

	if (!st)
		return hl_sq_fail(err, b->db, "release task");
	sqlite3_bind_text(st, 1, task_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, owner, -1, SQLITE_STATIC);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : hl_sq_fail(err, b->db, "release task");
	hl_sq_done(b, st);
	return rc;
}

int
hl_sq_attempt_of_coderun(struct hl_store_backend *b, char *task_id, int *n,
                         const char *coderun_name, struct hl_err *err)
{
	sqlite3_stmt *st = hl_sq_prepare(b, "SELECT task_id, n FROM attempts"
	                                    " WHERE coderun_name = ?1");
	int rc;

	if (!st)
		return hl_sq_fail(err, b->db, "attempt of coderun");
	sqlite3_bind_text(st, 1, coderun_name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		hl_sq_col_copy(task_id, HL_TASK_ID_MAX, st, 0);
		*n = sqlite3_column_int(st, 1);
	}
	hl_sq_done(b, st);
	if (rc == SQLITE_DONE)
		return hl_err_set(err, HL_ENOTFOUND, "no attempt has CodeRun '%s'", coderun_name);
	return rc == SQLITE_ROW ? 0 : hl_sq_fail(err, b->db, "attempt of coderun");
}

static int
sq_one_id(struct hl_store_backend *b, sqlite3_stmt *st, char *out, const char *what,
          struct hl_err *err)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW)
		hl_sq_col_copy(out, HL_TASK_ID_MAX, st, 0);
	hl_sq_done(b, st);
	if (rc == SQLITE_DONE)
		return hl_err_set(err, HL_ENOTFOUND, "no matching task");
	return rc == SQLITE_ROW ? 0 : hl_sq_fail(err, b->db, what);
}

int
hl_sq_task_active_for(struct hl_store_backend *b, char *out, const char *repository,
                      const char *branch, const char *workflow, const char *job,
                      const char *exclude, struct hl_err *err)
{
	sqlite3_stmt *st = hl_sq_prepare(
	        b, "SELECT task_id FROM remediation_tasks INDEXED BY remediation_tasks_open"
	           " WHERE repository = ?1 AND (?3 IS NULL OR workflow = ?3) AND job IS ?4"
	           " AND state IN ('queued', 'running', 'verifying')"
	           " AND (branch = ?2 OR target_branch = ?2)"
	           " AND (?5 IS NULL OR task_id <> ?5) ORDER BY created_ms DESC LIMIT 1");

	if (!st)
		return hl_sq_fail(err, b->db, "active task");
	sqlite3_bind_text(st, 1, repository, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, branch, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, workflow, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, job, -1, SQLITE_STATIC);
	hl_sq_bind_text(st, 5, exclude);
	return sq_one_id(b, st, out, "active task", err);
}

int
hl_sq_task_of_pr(struct hl_store_backend *b, char *out, const char *repository, int64_t pr_number,
                 bool active_only, struct hl_err *err)
{
	sqlite3_stmt *st =
	        hl_sq_prepare(b, "SELECT task_id FROM remediation_tasks"
	                         " WHERE repository = ?1 AND pr_number = ?2"
	                         " AND NOT (state = 'skipped' AND agent IS NULL)"
	                         " AND (?3 = 0 OR state IN ('queued', 'running', 'verifying'))"
	                         " ORDER BY created_ms DESC LIMIT 1");

	if (!st)
		return hl_sq_fail(err, b->db, "task of pr");
	sqlite3_bind_text(st, 1, repository, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, pr_number);
	sqlite3_bind_int(st, 3, active_only ? 1 : 0);
	return sq_one_id(b, st, out, "task of pr", err);
}

int
hl_sq_tasks_of_pr(struct hl_store_backend *b, char (*ids)[HL_TASK_ID_MAX], size_t max, size_t *n,
                  size_t *total, const char *repository, int64_t pr_number, struct hl_err *err)
{
	/* the count over every row the filter keeps, before the limit */
	sqlite3_stmt *st =
	        hl_sq_prepare(b, "SELECT task_id, count(*) OVER () FROM remediation_tasks"
	                         " WHERE repository = ?1 AND pr_number = ?2"
	                         " AND NOT (state = 'skipped' AND agent IS NULL)"
	                         " ORDER BY created_ms DESC, task_id DESC LIMIT ?3");

	if (!st)
		return hl_sq_fail(err, b->db, "tasks of pr");
	sqlite3_bind_text(st, 1, repository, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, pr_number);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)max);
	return sq_read_ids(b, st, ids, max, n, total, "tasks of pr", err);
}

int
hl_sq_ci_result_add(struct hl_store_backend *b, const struct hl_ci_result *r, struct hl_err *err)
{
	sqlite3_stmt *st = hl_sq_prepare(
	        b, "INSERT INTO ci_results (task_id, delivery_id, head_sha, branch, conclusion,"
	           " run_id, run_attempt, job_id, url, completed_ms, source)"
	           " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
	           " ON CONFLICT (task_id, delivery_id) DO NOTHING");
	int rc;

	if (!st)
		return hl_sq_fail(err, b->db, "add ci result");
	hl_sq_bind_text(st, 1, r->task_id);
	hl_sq_bind_text(st, 2, r->delivery_id);
	hl_sq_bind_text(st, 3, r->head_sha);
	hl_sq_bind_text(st, 4, r->branch);
	hl_sq_bind_text(st, 5, r->conclusion);
	sqlite3_bind_int64(st, 6, r->run_id);
	sqlite3_bind_int64(st, 7, r->run_attempt);
	sqlite3_bind_int64(st, 8, r->job_id);
	hl_sq_bind_text(st, 9, r->url);
	sqlite3_bind_int64(st, 10, r->completed_ms ? r->completed_ms : hl_time_wall_ms());
	hl_sq_bind_text(st, 11, r->source ? r->source : "webhook");
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : hl_sq_fail(err, b->db, "add ci result");
	hl_sq_done(b, st);
	return rc;
}

#define SQ_CI_COLUMNS \
	"head_sha, branch, conclusion, url, source, run_id, run_attempt, job_id, completed_ms"
/* the latest result of task ?1 since ?2 among those matching cond */
#define SQ_CI_LATEST_ON(cond, name)                                                                \
	"SELECT * FROM (SELECT id, " SQ_CI_COLUMNS " FROM ci_results WHERE task_id = ?1 AND " cond \
	" AND completed_ms >= ?2 ORDER BY completed_ms DESC, id DESC LIMIT 1) AS " name
/* ... on branch ?3 or naming none */
/* clang-format off */
#define SQ_CI_LATEST_ON_BRANCH \
	"SELECT " SQ_CI_COLUMNS " FROM (" SQ_CI_LATEST_ON("branch = ?3", "named") \
	" UNION ALL " SQ_CI_LATEST_ON("branch IS NULL", "unnamed") \
	" UNION ALL " SQ_CI_LATEST_ON("branch = ''", "empty") \
	") AS latest ORDER BY completed_ms DESC, id DESC LIMIT 1"
/* clang-format on */
/* ... on any branch */
#define SQ_CI_LATEST_ANY                                                                     \
	"SELECT " SQ_CI_COLUMNS " FROM ci_results WHERE task_id = ?1 AND completed_ms >= ?2" \
	" ORDER BY completed_ms DESC, id DESC LIMIT 1"

int
hl_sq_ci_result_latest(struct hl_store_backend *b, struct hl_ci_result_record *out,
                       const char *task_id, int64_t since_ms, const char *branch,
                       struct hl_err *err)
{
	/* With a branch, the results on it and those naming none are each
	 * sought through ci_results_task_branch: one condition over all three
	 * would walk every result of the task on other branches (thousands, for
	 * the jobs of a big workflow run) at every step of the loop. */
	sqlite3_stmt *st = hl_sq_prepare(b, branch ? SQ_CI_LATEST_ON_BRANCH : SQ_CI_LATEST_ANY);
	int rc;

	if (!st)
		return hl_sq_fail(err, b->db, "ci result");
	sqlite3_bind_text(st, 1, task_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, since_ms);
	if (branch)
		sqlite3_bind_text(st, 3, branch, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		memset(out, 0, sizeof(*out));
		hl_sq_col_copy(out->head_sha, sizeof(out->head_sha), st, 0);
		hl_sq_col_copy(out->branch, sizeof(out->branch), st, 1);
		hl_sq_col_copy(out->conclusion, sizeof(out->conclusion), st, 2);
		hl_sq_col_copy(out->url, sizeof(out->url), st, 3);
		hl_sq_col_copy(out->source, sizeof(out->source), st, 4);
		out->run_id = sqlite3_column_int64(st, 5);
		out->run_attempt = sqlite3_column_int64(st, 6);
		out->job_id = sqlite3_column_int64(st, 7);
		out->completed_ms = sqlite3_column_int64(st, 8);
	}
	hl_sq_done(b, st);
	if (rc == SQLITE_DONE)
		return hl_err_set(err, HL_ENOTFOUND, "no CI result for '%s' yet", task_id);
	return rc == SQLITE_ROW ? 0 : hl_sq_fail(err, b->db, "ci result");
}

int
hl_sq_budget_usage(struct hl_store_backend *b, int64_t *active, int64_t *repo_since,
                   const char *repository, int64_t since_ms, struct hl_err *err)
{
	sqlite3_stmt *st = hl_sq_prepare(b, "SELECT COUNT(*) FROM attempts WHERE kind = 'agent'"
	                                    " AND phase IN ('preparing', 'pending', 'running')");
	int rc;

	if (!st)
		return hl_sq_fail(err, b->db, "budget");
	if ((rc = sq_one_int(b, st, active, "budget", err)) < 0)
		return rc;
	st = hl_sq_prepare(b, "SELECT COUNT(*) FROM attempts WHERE repository = ?1"
	                      " AND started_ms >= ?2");
	if (!st)
		return hl_sq_fail(err, b->db, "budget");
	sqlite3_bind_text(st, 1, repository ? repository : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, since_ms);
	return sq_one_int(b, st, repo_since, "budget", err);
}

/* A stopped or escalated task runs again (inside the caller's transaction). */
static int
sq_task_reopen(struct hl_store_backend *b, const char *task_id, const char *reason,
               struct hl_err *err)
{
	sqlite3_stmt *st = hl_sq_prepare(
	        b, "UPDATE remediation_tasks SET state = 'running', reason = ?2, updated_ms = ?3,"
	           " finished_ms = NULL, queued_ms = NULL"
	           " WHERE task_id = ?1 AND state IN ('stopped', 'escalated')");
	int rc;

	if (!st)
		return hl_sq_fail(err, b->db, "reopen task");
	sqlite3_bind_text(st, 1, task_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, reason, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, hl_time_wall_ms());
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : hl_sq_fail(err, b->db, "reopen task");
	hl_sq_done(b, st);
	return rc;
}

/* Sets a task's decision (its attempt's begin, in its transaction). */
static int
sq_task_decision(struct hl_store_backend *b, const char *task_id, const char *decision,
                 struct hl_err *err)
{
	sqlite3_stmt *st = hl_sq_prepare(b, "UPDATE remediation_tasks SET decision_json = ?2"
	                                    " WHERE task_id = ?1");
	int rc;

	if (!st)
		return hl_sq_fail(err, b->db, "keep task decision");
	sqlite3_bind_text(st, 1, task_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, decision, -1, SQLITE_STATIC);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : hl_sq_fail(err, b->db, "keep task decision");
	hl_sq_done(b, st);
	return rc;
}

int
hl_sq_attempt_begin(struct hl_store_backend *b, enum hl_budget_wait *over, char *why,
                    size_t why_size, const struct hl_attempt *a, int max_active, int max_recent,
                    int64_t since_ms, struct hl_err *err)
{
	sqlite3_stmt *st;
	int64_t active = 0, recent = 0, exists = 0;
	int rc;

	*over = HL_BUDGET_NONE;
	why[0] = '\0';
	if (hl_sq_begin(b, "begin attempt", err) < 0)
		return -HL_EDB;
	st = hl_sq_prepare(b, "SELECT COUNT(*) FROM attempts WHERE task_id = ?1 AND n = ?2");
	if (!st) {
		rc = hl_sq_fail(err, b->db, "begin attempt");
		goto out;
	}
	sqlite3_bind_text(st, 1, a->task_id, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, a->n);
	if ((rc = sq_one_int(b, st, &exists, "begin attempt", err)) < 0 || exists)
		goto out;
	/* without caps there is nothing to count */
	if ((max_active > 0 || max_recent > 0) &&
	    (rc = hl_sq_budget_usage(b, &active, &recent, a->repository, since_ms, err)) < 0)
		goto out;
	if (max_active > 0 && active >= max_active) {
		*over = HL_BUDGET_SLOTS;
		snprintf(why, why_size, "waiting for a CodeRun slot (%lld of %d running)",
		         (long long)active, max_active);
		goto out;
	}
	if (max_recent > 0 && recent >= max_recent) {
		*over = HL_BUDGET_HOURLY;
		snprintf(why, why_size, "waiting for the hourly budget of %s (%lld of %d attempts)",
		         a->repository ? a->repository : "the repository", (long long)recent,
		         max_recent);
		goto out;
	}
	rc = hl_sq_attempt_put(b,
	                       &(struct hl_attempt){ .task_id = a->task_id,
	                                             .n = a->n,
	                                             .kind = a->kind,
	                                             .phase = HL_PHASE_PREPARING,
	                                             .outcome = HL_OUTCOME_INVALID,
	                                             .agent = a->agent,
	                                             .repository = a->repository,
	                                             .started_ms = a->started_ms },
	                       err);
	if (rc == 0 && a->reopen_reason)
		rc = sq_task_reopen(b, a->task_id, a->reopen_reason, err);
	if (rc == 0 && a->decision_json)
		rc = sq_task_decision(b, a->task_id, a->decision_json, err);
out:
	if (rc == 0)
		rc = hl_sq_commit(b, "begin attempt", err);
	if (rc < 0)
		hl_sq_rollback(b);
	return rc;
}

int
hl_sq_task_schedule(struct hl_store_backend *b, const char *task_id, int64_t next_check_ms,
                    struct hl_err *err)
{
	sqlite3_stmt *st = hl_sq_prepare(b, "UPDATE remediation_tasks SET next_check_ms = ?2"
	                                    " WHERE task_id = ?1");
	int rc;

	if (!st)
		return hl_sq_fail(err, b->db, "schedule task");
	sqlite3_bind_text(st, 1, task_id, -1, SQLITE_STATIC);
	if (next_check_ms == HL_TASK_NO_CHECK)
		sqlite3_bind_null(st, 2);
	else
		sqlite3_bind_int64(st, 2, next_check_ms);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : hl_sq_fail(err, b->db, "schedule task");
	hl_sq_done(b, st);
	if (rc == 0 && sqlite3_changes(b->db) == 0)
		return hl_err_set(err, HL_ENOTFOUND, "no task '%s'", task_id);
	return rc;
}

int
hl_sq_attempt_outcomes(struct hl_store_backend *b,
                       void (*fn)(void *, const char *, const char *, const char *, int64_t),
                       void *arg, struct hl_err *err)
{
	sqlite3_stmt *st = hl_sq_prepare(
	        b, "SELECT CASE WHEN a.kind = 'rerun' THEN 'rerun' ELSE COALESCE(a.agent, '') END,"
	           " COALESCE(t.failure_type, ''), a.outcome, COUNT(*)"
	           " FROM attempts a JOIN remediation_tasks t ON t.task_id = a.task_id"
	           " WHERE a.outcome IS NOT NULL GROUP BY 1, 2, 3 LIMIT 2000");
	int rc;

	if (!st)
		return hl_sq_fail(err, b->db, "attempt outcomes");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		fn(arg, (const char *)sqlite3_column_text(st, 0),
		   (const char *)sqlite3_column_text(st, 1),
		   (const char *)sqlite3_column_text(st, 2), sqlite3_column_int64(st, 3));
	hl_sq_done(b, st);
	return rc == SQLITE_DONE ? 0 : hl_sq_fail(err, b->db, "attempt outcomes");
}

int
hl_sq_time_to_fix(struct hl_store_backend *b, const double *bounds, size_t n_bounds,
                  int64_t *counts, double *sum, struct hl_err *err)
{
	sqlite3_stmt *st = hl_sq_prepare(b, "SELECT (finished_ms - created_ms) / 1000.0"
	                                    " FROM remediation_tasks WHERE state = 'succeeded'"
	                                    " AND finished_ms IS NOT NULL");
	size_t i;
	int rc;

	if (!st)
		return hl_sq_fail(err, b->db, "time to fix");
	memset(counts, 0, (n_bounds + 1) * sizeof(*counts));
	*sum = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		double v = sqlite3_column_double(st, 0);
		for (i = 0; i < n_bounds; i++)
			if (v <= bounds[i])
				counts[i]++;
		counts[n_bounds]++;
		*sum += v;
	}
	hl_sq_done(b, st);
	return rc == SQLITE_DONE ? 0 : hl_sq_fail(err, b->db, "time to fix");
}

int
hl_sq_kv_get(struct hl_store_backend *b, char **out, const char *key, struct hl_err *err)
{
	sqlite3_stmt *st = hl_sq_prepare(b, "SELECT value FROM kv WHERE key = ?1");
	char *v = NULL;
	int rc;

	if (!st)
		return hl_sq_fail(err, b->db, "kv");
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		v = hl_sq_col_dup(st, 0);
	hl_sq_done(b, st);
	if (rc == SQLITE_DONE)
		return hl_err_set(err, HL_ENOTFOUND, "no value for '%s'", key);
	if (rc != SQLITE_ROW || !v) {
		free(v);
		return rc == SQLITE_ROW ? hl_err_set(err, HL_ENOMEM, "out of memory")
		                        : hl_sq_fail(err, b->db, "kv");
	}
	*out = v;
	return 0;
}

int
hl_sq_kv_put(struct hl_store_backend *b, const char *key, const char *value, struct hl_err *err)
{
	sqlite3_stmt *st = hl_sq_prepare(b, "INSERT INTO kv (key, value, updated_ms)"
	                                    " VALUES (?1, ?2, ?3) ON CONFLICT (key) DO UPDATE"
	                                    " SET value = excluded.value,"
	                                    " updated_ms = excluded.updated_ms");
	int rc;

	if (!st)
		return hl_sq_fail(err, b->db, "kv");
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, hl_time_wall_ms());
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : hl_sq_fail(err, b->db, "kv");
	hl_sq_done(b, st);
	return rc;
}

int
hl_sq_kv_raise(struct hl_store_backend *b, const char *key, int64_t value, struct hl_err *err)
{
	/* what is not a number counts as 0, as hl_store_hold_get reads it */
	sqlite3_stmt *st = hl_sq_prepare(b, "INSERT INTO kv (key, value, updated_ms)"
	                                    " VALUES (?1, CAST(?2 AS TEXT), ?3) ON CONFLICT (key)"
	                                    " DO UPDATE SET value = excluded.value,"
	                                    " updated_ms = excluded.updated_ms"
	                                    " WHERE (CASE WHEN kv.value <> ''"
	                                    " AND kv.value NOT GLOB '*[^0-9]*'"
	                                    " THEN CAST(kv.value AS INTEGER) ELSE 0 END) < ?2");
	int rc;

	if (!st)
		return hl_sq_fail(err, b->db, "kv");
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, value);
	sqlite3_bind_int64(st, 3, hl_time_wall_ms());
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : hl_sq_fail(err, b->db, "kv");
	hl_sq_done(b, st);
	return rc;
}

int
hl_sq_kv_prune(struct hl_store_backend *b, int64_t *removed, const char *prefix, int64_t before_ms,
               struct hl_err *err)
{
	/* not LIKE: a prefix may hold % or _ */
	sqlite3_stmt *st = hl_sq_prepare(b, "DELETE FROM kv WHERE substr(key, 1, length(?1)) = ?1"
	                                    " AND updated_ms < ?2");
	int rc;

	if (!st)
		return hl_sq_fail(err, b->db, "kv");
	sqlite3_bind_text(st, 1, prefix, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, before_ms);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : hl_sq_fail(err, b->db, "kv");
	if (rc == 0)
		*removed = sqlite3_changes(b->db);
	hl_sq_done(b, st);
	return rc;
}

/* ---- the outbox --------------------------------------------------------- */

int
hl_sq_outbox_add(struct hl_store_backend *b, bool *created, const struct hl_notification_in *n,
                 struct hl_err *err)
{
	sqlite3_stmt *st = hl_sq_prepare(
	        b,
	        "INSERT INTO notifications (task_id, channel, kind, ref, state, attempts,"
	        " next_ms, payload, created_ms) VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, ?6, ?5)"
	        " ON CONFLICT (task_id, channel, kind, ref) DO NOTHING");
	int rc;

	if (!st)
		return hl_sq_fail(err, b->db, "outbox add");
	sqlite3_bind_text(st, 1, n->task_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, n->channel, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, n->kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, n->ref ? n->ref : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, hl_time_wall_ms());
	sqlite3_bind_text(st, 6, n->payload, -1, SQLITE_STATIC);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : hl_sq_fail(err, b->db, "outbox add");
	hl_sq_done(b, st);
	if (rc == 0 && created)
		*created = sqlite3_changes(b->db) == 1;
	return rc;
}

int
hl_sq_outbox_due(struct hl_store_backend *b, struct hl_notification **out, size_t max, size_t *n,
                 int64_t now_ms, struct hl_err *err)
{
	sqlite3_stmt *st = hl_sq_prepare(
	        b, "SELECT id, task_id, channel, kind, ref, payload, attempts, created_ms"
	           " FROM notifications WHERE state = 'pending' AND next_ms <= ?1"
	           " ORDER BY next_ms, id LIMIT ?2");
	struct hl_notification *arr;
	size_t k = 0;
	int rc = SQLITE_DONE;

	if (!st)
		return hl_sq_fail(err, b->db, "outbox due");
	arr = calloc(max ? max : 1, sizeof(*arr));
	if (!arr) {
		hl_sq_done(b, st);
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	}
	sqlite3_bind_int64(st, 1, now_ms);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
	while (k < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct hl_notification *nt = &arr[k++];
		nt->id = sqlite3_column_int64(st, 0);
		nt->task_id = hl_sq_col_dup(st, 1);
		nt->channel = hl_sq_col_dup(st, 2);
		nt->kind = hl_sq_col_dup(st, 3);
		nt->ref = hl_sq_col_dup(st, 4);
		nt->payload = hl_sq_col_dup(st, 5);
		nt->attempts = sqlite3_column_int(st, 6);
		nt->created_ms = sqlite3_column_int64(st, 7);
	}
	if (k == max)
		rc = SQLITE_DONE;
	hl_sq_done(b, st);
	if (rc != SQLITE_DONE) {
		while (k)
			hl_notification_release(&arr[--k]);
		free(arr);
		return hl_sq_fail(err, b->db, "outbox due");
	}
	*out = arr;
	*n = k;
	return 0;
}

/* Reads the row as it is before the take (was its previous take left
 * without a result, how many attempts), then takes it only if no other
 * take or result came in between (next_ms changes with each). */
int
hl_sq_outbox_take(struct hl_store_backend *b, struct hl_outbox_claim *out, int64_t id,
                  int64_t now_ms, int64_t until_ms, const char *owner, bool count,
                  struct hl_err *err)
{
	sqlite3_stmt *st =
	        hl_sq_prepare(b, "SELECT CASE WHEN sending_by IS NULL THEN 0"
	                         " WHEN sending_by = ?3 THEN 2 ELSE 1 END, attempts, next_ms"
	                         " FROM notifications"
	                         " WHERE id = ?1 AND state = 'pending' AND next_ms <= ?2");
	int64_t was_next;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!st)
		return hl_sq_fail(err, b->db, "outbox take");
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, now_ms);
	sqlite3_bind_text(st, 3, owner, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		rc = rc == SQLITE_DONE ? 0 : hl_sq_fail(err, b->db, "outbox take");
		hl_sq_done(b, st);
		return rc;
	}
	out->in_doubt = sqlite3_column_int(st, 0) == 1;
	out->own = sqlite3_column_int(st, 0) == 2;
	out->attempts = sqlite3_column_int(st, 1) + (count ? 1 : 0);
	was_next = sqlite3_column_int64(st, 2);
	hl_sq_done(b, st);

	st = hl_sq_prepare(b, "UPDATE notifications SET next_ms = ?3, sending_by = ?4,"
	                      " attempts = attempts + ?5"
	                      " WHERE id = ?1 AND state = 'pending' AND next_ms = ?2");
	if (!st)
		return hl_sq_fail(err, b->db, "outbox take");
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, was_next);
	sqlite3_bind_int64(st, 3, until_ms);
	sqlite3_bind_text(st, 4, owner, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 5, count ? 1 : 0);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : hl_sq_fail(err, b->db, "outbox take");
	hl_sq_done(b, st);
	out->taken = rc == 0 && sqlite3_changes(b->db) == 1;
	return rc;
}

int
hl_sq_outbox_renew(struct hl_store_backend *b, const char *owner, int64_t id, int64_t now_ms,
                   int64_t until_ms, struct hl_err *err)
{
	sqlite3_stmt *st = hl_sq_prepare(b, "UPDATE notifications SET next_ms = ?2"
	                                    " WHERE id = ?4 AND sending_by = ?1 AND state = 'pending'"
	                                    " AND next_ms > ?3 AND next_ms < ?2");
	int rc;

	if (!st)
		return hl_sq_fail(err, b->db, "outbox renew");
	sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, until_ms);
	sqlite3_bind_int64(st, 3, now_ms);
	sqlite3_bind_int64(st, 4, id);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : hl_sq_fail(err, b->db, "outbox renew");
	hl_sq_done(b, st);
	return rc;
}

int
hl_sq_outbox_update(struct hl_store_backend *b, int64_t id, enum hl_notification_state state,
                    int attempts, int64_t next_ms, const char *last_error, const char *payload,
                    struct hl_err *err)
{
	sqlite3_stmt *st = hl_sq_prepare(
	        b, "UPDATE notifications SET state = ?2, attempts = CASE WHEN ?3 < 0"
	           " THEN MAX(attempts + ?3, 0) ELSE MAX(attempts, ?3) END, next_ms = ?4,"
	           " last_error = ?5, sending_by = NULL, payload = COALESCE(?7, payload),"
	           " delivered_ms = CASE WHEN ?2 = 'delivered' THEN ?6 ELSE delivered_ms END"
	           " WHERE id = ?1 AND state = 'pending'");
	int rc;

	if (!st)
		return hl_sq_fail(err, b->db, "outbox update");
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, hl_notification_state_name(state), -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, attempts);
	sqlite3_bind_int64(st, 4, next_ms);
	hl_sq_bind_text(st, 5, last_error);
	sqlite3_bind_int64(st, 6, hl_time_wall_ms());
	hl_sq_bind_text(st, 7, payload);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : hl_sq_fail(err, b->db, "outbox update");
	hl_sq_done(b, st);
	if (rc == 0 && sqlite3_changes(b->db) != 1)
		return hl_err_set(err, HL_ECONFLICT, "notification %lld is not pending",
		                  (long long)id);
	return rc;
}

int
hl_sq_outbox_counts(struct hl_store_backend *b,
                    void (*fn)(void *, const char *, const char *, int64_t), void *arg,
                    struct hl_err *err)
{
	sqlite3_stmt *st = hl_sq_prepare(b, "SELECT channel, state, COUNT(*) FROM notifications"
	                                    " GROUP BY channel, state LIMIT 200");
	int rc;

	if (!st)
		return hl_sq_fail(err, b->db, "outbox counts");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		fn(arg, (const char *)sqlite3_column_text(st, 0),
		   (const char *)sqlite3_column_text(st, 1), sqlite3_column_int64(st, 2));
	hl_sq_done(b, st);
	return rc == SQLITE_DONE ? 0 : hl_sq_fail(err, b->db, "outbox counts");
}
