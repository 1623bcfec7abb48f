/*
 * pg_loop.c - the loop's state and the outbox on PostgreSQL (see
 * store/loop.h and store/outbox.h): due and queued tasks, task leases,
 * CodeRun lookups, CI results, budgets, key/value state, notifications.
 *
 * Every statement is one autocommit transaction; what replicas could race
 * on is decided inside it: a task lease is one conditional UPDATE (the
 * row lock orders two replicas, the second sees the first's lease), CI
 * results and notifications are inserted ON CONFLICT DO NOTHING against
 * their unique keys, an outbox result is recorded only while the
 * notification is pending, and the budget check that begins an attempt
 * runs under an advisory lock, so two replicas never take the last slot.
 */
#include "base/clock.h"
#include "base/str.h"
#include "pg_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Copies up to max task ids from column 0 of r. */
static void
pg_read_ids(const PGresult *r, char (*ids)[HL_TASK_ID_MAX], size_t max, size_t *n)
{
	size_t k;

	for (k = 0; k < max && (int)k < PQntuples(r); k++)
		hl_pg_copy(ids[k], HL_TASK_ID_MAX, r, (int)k, 0);
	*n = k;
}

int
hl_pg_tasks_due(struct hl_store_backend *b, char (*ids)[HL_TASK_ID_MAX], size_t max, size_t *n,
                int64_t now_ms, struct hl_err *err)
{
	struct pg_params p = { .n = 0 };
	PGresult *r = NULL;
	int rc;

	hl_pg_int(&p, now_ms);
	hl_pg_int(&p, (int64_t)max);
	rc = hl_pg_exec(b, &r,
	                "SELECT task_id FROM remediation_tasks"
	                " WHERE next_check_ms IS NOT NULL AND next_check_ms <= $1"
	                " ORDER BY next_check_ms LIMIT $2",
	                &p, false, "due tasks", err);
	if (rc < 0)
		return rc;
	pg_read_ids(r, ids, max, n);
	PQclear(r);
	return 0;
}

/* Up to max task ids the query (its one parameter: the limit) reads. */
static int
pg_task_ids(struct hl_store_backend *b, const char *sql, const char *what,
            char (*ids)[HL_TASK_ID_MAX], size_t max, size_t *n, struct hl_err *err)
{
	struct pg_params p = { .n = 0 };
	PGresult *r = NULL;
	int rc;

	hl_pg_int(&p, (int64_t)max);
	if ((rc = hl_pg_exec(b, &r, sql, &p, false, what, err)) < 0)
		return rc;
	pg_read_ids(r, ids, max, n);
	PQclear(r);
	return 0;
}

int
hl_pg_tasks_queued(struct hl_store_backend *b, char (*ids)[HL_TASK_ID_MAX], size_t max, size_t *n,
                   struct hl_err *err)
{
	return pg_task_ids(b,
	                   "SELECT task_id FROM remediation_tasks WHERE state = 'queued'"
	                   " ORDER BY queued_ms, task_id LIMIT $1",
	                   "queued tasks", ids, max, n, err);
}

int
hl_pg_tasks_remember(struct hl_store_backend *b, char (*ids)[HL_TASK_ID_MAX], size_t max, size_t *n,
                     struct hl_err *err)
{
	return pg_task_ids(b,
	                   "SELECT task_id FROM remediation_tasks WHERE remember_pending = 1"
	                   " LIMIT $1",
	                   "tasks to remember", ids, max, n, err);
}

int
hl_pg_task_remembered(struct hl_store_backend *b, const char *task_id, struct hl_err *err)
{
	struct pg_params p = { .n = 0 };

	hl_pg_text(&p, task_id);
	return hl_pg_exec(b, NULL,
	                  "UPDATE remediation_tasks SET remember_pending = 0"
	                  " WHERE task_id = $1 AND remember_pending = 1",
	                  &p, false, "task remembered", err);
}

/* Runs a query of one number (NULL counts as 0). */
static int
pg_one_int(struct hl_store_backend *b, int64_t *out, const char *sql, const struct pg_params *p,
           const char *what, struct hl_err *err)
{
	PGresult *r = NULL;
	int rc;

	if ((rc = hl_pg_exec(b, &r, sql, p, false, what, err)) < 0)
		return rc;
	*out = PQntuples(r) ? hl_pg_int_at(r, 0, 0) : 0;
	PQclear(r);
	return 0;
}

int
hl_pg_next_check(struct hl_store_backend *b, int64_t *out, struct hl_err *err)
{
	return pg_one_int(b, out,
	                  "SELECT MIN(next_check_ms) FROM remediation_tasks"
	                  " WHERE next_check_ms IS NOT NULL",
	                  NULL, "next check", err);
}

/* Runs a statement and tells how many rows it changed. */
static int
pg_changes(struct hl_store_backend *b, int64_t *changed, const char *sql, const struct pg_params *p,
           const char *what, struct hl_err *err)
{
	PGresult *r = NULL;
	int rc;

	if ((rc = hl_pg_exec(b, &r, sql, p, false, what, err)) < 0)
		return rc;
	*changed = strtoll(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	return 0;
}

/*
 * Task leases last until_ms - now_ms from the database's clock (replicas'
 * clocks may differ), and are granted when free, run out, owner's own, or
 * held by "P@O" when owner is "P@O2" and O's liveness lock is free (a
 * process that died holding it: its "healer:owner:<O>" lock, pg.c). A live holder's lease
 * is never taken before it ran out.
 */
static const char pg_task_lease_sql[] =
        "UPDATE remediation_tasks SET lease_owner = $2, lease_until_ms = " PG_NOW_MS
        " + $3::bigint WHERE task_id = $1 AND (lease_owner IS NULL OR lease_owner = $2"
        " OR lease_until_ms IS NULL OR lease_until_ms < " PG_NOW_MS
        " OR (strpos($2, '@') > 0 AND left(lease_owner, strpos(lease_owner, '@'))"
        " = left($2, strpos($2, '@')) AND pg_try_advisory_xact_lock(hashtextextended("
        "'healer:owner:' || substr(lease_owner, strpos(lease_owner, '@') + 1), 0))))";

int
hl_pg_task_lease(struct hl_store_backend *b, bool *got, const char *task_id, const char *owner,
                 int64_t now_ms, int64_t until_ms, struct hl_err *err)
{
	struct pg_params p = { .n = 0 };
	int64_t changed = 0;
	int rc;

	hl_pg_text(&p, task_id);
	hl_pg_text(&p, owner);
	hl_pg_int(&p, until_ms - now_ms);
	rc = pg_changes(b, &changed, pg_task_lease_sql, &p, "lease task", err);
	if (rc == 0)
		*got = changed == 1;
	return rc;
}

int
hl_pg_task_release(struct hl_store_backend *b, const char *task_id, const char *owner,
                   struct hl_err *err)
{
	struct pg_params p = { .n = 0 };

	hl_pg_text(&p, task_id);
	hl_pg_text(&p, owner);
	return hl_pg_exec(b, NULL,
	                  "UPDATE remediation_tasks SET lease_owner = NULL, lease_until_ms = NULL"
	                  " WHERE task_id = $1 AND lease_owner = $2",
	                  &p, false, "release task", err);
}

int
hl_pg_attempt_of_coderun(struct hl_store_backend *b, char *task_id, int *n,
                         const char *coderun_name, struct hl_err *err)
{
	struct pg_params p = { .n = 0 };
	PGresult *r = NULL;
	int rc;

	hl_pg_text(&p, coderun_name);
	rc = hl_pg_exec(b, &r, "SELECT task_id, n FROM attempts WHERE coderun_name = $1", &p, false,
	                "attempt of coderun", err);
	if (rc < 0)
		return rc;
	if (PQntuples(r) == 1) {
		hl_pg_copy(task_id, HL_TASK_ID_MAX, r, 0, 0);
		*n = (int)hl_pg_int_at(r, 0, 1);
	} else {
		rc = hl_err_set(err, HL_ENOTFOUND, "no attempt has CodeRun '%s'", coderun_name);
	}
	PQclear(r);
	return rc;
}

/* Runs a query of one task id; -HL_ENOTFOUND when it finds none. */
static int
pg_one_id(struct hl_store_backend *b, char *out, const char *sql, const struct pg_params *p,
          const char *what, struct hl_err *err)
{
	PGresult *r = NULL;
	int rc;

	if ((rc = hl_pg_exec(b, &r, sql, p, false, what, err)) < 0)
		return rc;
	if (PQntuples(r) == 1)
		hl_pg_copy(out, HL_TASK_ID_MAX, r, 0, 0);
	else
		rc = hl_err_set(err, HL_ENOTFOUND, "no matching task");
	PQclear(r);
	return rc;
}

int
hl_pg_task_active_for(struct hl_store_backend *b, char *out, const char *repository,
                      const char *branch, const char *workflow, const char *job,
                      const char *exclude, struct hl_err *err)
{
	struct pg_params p = { .n = 0 };

	hl_pg_text(&p, repository);
	hl_pg_text(&p, branch);
	hl_pg_text(&p, workflow);
	hl_pg_text(&p, job);
	hl_pg_text(&p, exclude);
	return pg_one_id(
	        b, out,
	        "SELECT task_id FROM remediation_tasks"
	        " WHERE repository = $1 AND ($3::text IS NULL OR workflow = $3)"
	        " AND job IS NOT DISTINCT FROM $4"
	        " AND state IN ('queued', 'running', 'verifying')"
	        " AND (branch = $2 OR target_branch = $2)"
	        " AND ($5::text IS NULL OR task_id <> $5) ORDER BY created_ms DESC LIMIT 1",
	        &p, "active task", err);
}

int
hl_pg_task_of_pr(struct hl_store_backend *b, char *out, const char *repository, int64_t pr_number,
                 bool active_only, struct hl_err *err)
{
	struct pg_params p = { .n = 0 };

	hl_pg_text(&p, repository);
	hl_pg_int(&p, pr_number);
	hl_pg_bool(&p, active_only);
	return pg_one_id(b, out,
	                 "SELECT task_id FROM remediation_tasks"
	                 " WHERE repository = $1 AND pr_number = $2"
	                 " AND NOT (state = 'skipped' AND agent IS NULL)"
	                 " AND (NOT $3 OR state IN ('queued', 'running', 'verifying'))"
	                 " ORDER BY created_ms DESC LIMIT 1",
	                 &p, "task of pr", err);
}

int
hl_pg_tasks_of_pr(struct hl_store_backend *b, char (*ids)[HL_TASK_ID_MAX], size_t max, size_t *n,
                  size_t *total, const char *repository, int64_t pr_number, struct hl_err *err)
{
	struct pg_params p = { .n = 0 };
	PGresult *r = NULL;
	int rc;

	hl_pg_text(&p, repository);
	hl_pg_int(&p, pr_number);
	hl_pg_int(&p, (int64_t)max);
	if ((rc = hl_pg_exec(b, &r,
	                     /* the count over every row the filter keeps,
	                      * before the limit */
	                     "SELECT task_id, count(*) OVER () FROM remediation_tasks"
	                     " WHERE repository = $1 AND pr_number = $2"
	                     " AND NOT (state = 'skipped' AND agent IS NULL)"
	                     " ORDER BY created_ms DESC, task_id DESC LIMIT $3",
	                     &p, false, "tasks of pr", err)) < 0)
		return rc;
	pg_read_ids(r, ids, max, n);
	*total = PQntuples(r) ? (size_t)hl_pg_int_at(r, 0, 1) : 0;
	PQclear(r);
	return 0;
}

int
hl_pg_ci_result_add(struct hl_store_backend *b, const struct hl_ci_result *r, struct hl_err *err)
{
	struct pg_params p = { .n = 0 };

	hl_pg_text(&p, r->task_id);
	hl_pg_text(&p, r->delivery_id);
	hl_pg_text(&p, r->head_sha);
	hl_pg_text(&p, r->branch);
	hl_pg_text(&p, r->conclusion);
	hl_pg_int(&p, r->run_id);
	hl_pg_int(&p, r->run_attempt);
	hl_pg_int(&p, r->job_id);
	hl_pg_text(&p, r->url);
	hl_pg_int(&p, r->completed_ms ? r->completed_ms : hl_time_wall_ms());
	hl_pg_text(&p, r->source ? r->source : "webhook");
	return hl_pg_exec(
	        b, NULL,
	        "INSERT INTO ci_results (task_id, delivery_id, head_sha, branch, conclusion,"
	        " run_id, run_attempt, job_id, url, completed_ms, source)"
	        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
	        " ON CONFLICT (task_id, delivery_id) DO NOTHING",
	        &p, false, "add ci result", err);
}

#define PG_CI_COLUMNS \
	"head_sha, branch, conclusion, url, source, run_id, run_attempt, job_id, completed_ms"
/* the latest result of task $1 since $2 among those matching cond */
#define PG_CI_LATEST_ON(cond, name)                                                                \
	"SELECT * FROM (SELECT id, " PG_CI_COLUMNS " FROM ci_results WHERE task_id = $1 AND " cond \
	" AND completed_ms >= $2 ORDER BY completed_ms DESC, id DESC LIMIT 1) AS " name
/* ... on branch $3 or naming none */
/* clang-format off */
#define PG_CI_LATEST_ON_BRANCH \
	"SELECT " PG_CI_COLUMNS " FROM (" PG_CI_LATEST_ON("branch = $3", "named") \
	" UNION ALL " PG_CI_LATEST_ON("branch IS NULL", "unnamed") \
	" UNION ALL " PG_CI_LATEST_ON("branch = ''", "empty") \
	") AS latest ORDER BY completed_ms DESC, id DESC LIMIT 1"
/* clang-format on */
/* ... on any branch */
#define PG_CI_LATEST_ANY                                                                     \
	"SELECT " PG_CI_COLUMNS " FROM ci_results WHERE task_id = $1 AND completed_ms >= $2" \
	" ORDER BY completed_ms DESC, id DESC LIMIT 1"

int
hl_pg_ci_result_latest(struct hl_store_backend *b, struct hl_ci_result_record *out,
                       const char *task_id, int64_t since_ms, const char *branch,
                       struct hl_err *err)
{
	struct pg_params p = { .n = 0 };
	PGresult *r = NULL;
	int rc;

	hl_pg_text(&p, task_id);
	hl_pg_int(&p, since_ms);
	/* as on SQLite: with a branch, each kind through ci_results_task_branch */
	if (branch)
		hl_pg_text(&p, branch);
	rc = hl_pg_exec(b, &r, branch ? PG_CI_LATEST_ON_BRANCH : PG_CI_LATEST_ANY, &p, false,
	                "ci result", err);
	if (rc < 0)
		return rc;
	if (PQntuples(r) == 1) {
		memset(out, 0, sizeof(*out));
		hl_pg_copy(out->head_sha, sizeof(out->head_sha), r, 0, 0);
		hl_pg_copy(out->branch, sizeof(out->branch), r, 0, 1);
		hl_pg_copy(out->conclusion, sizeof(out->conclusion), r, 0, 2);
		hl_pg_copy(out->url, sizeof(out->url), r, 0, 3);
		hl_pg_copy(out->source, sizeof(out->source), r, 0, 4);
		out->run_id = hl_pg_int_at(r, 0, 5);
		out->run_attempt = hl_pg_int_at(r, 0, 6);
		out->job_id = hl_pg_int_at(r, 0, 7);
		out->completed_ms = hl_pg_int_at(r, 0, 8);
	} else {
		rc = hl_err_set(err, HL_ENOTFOUND, "no CI result for '%s' yet", task_id);
	}
	PQclear(r);
	return rc;
}

int
hl_pg_budget_usage(struct hl_store_backend *b, int64_t *active, int64_t *repo_since,
                   const char *repository, int64_t since_ms, struct hl_err *err)
{
	struct pg_params p = { .n = 0 };
	int rc;

	rc = pg_one_int(b, active,
	                "SELECT COUNT(*) FROM attempts WHERE kind = 'agent'"
	                " AND phase IN ('preparing', 'pending', 'running')",
	                NULL, "budget", err);
	if (rc < 0)
		return rc;
	hl_pg_text(&p, repository ? repository : "");
	hl_pg_int(&p, since_ms);
	return pg_one_int(
	        b, repo_since,
	        "SELECT COUNT(*) FROM attempts WHERE repository = $1 AND started_ms >= $2", &p,
	        "budget", err);
}

int
hl_pg_attempt_begin(struct hl_store_backend *b, enum hl_budget_wait *over, char *why,
                    size_t why_size, const struct hl_attempt *a, int max_active, int max_recent,
                    int64_t since_ms, struct hl_err *err)
{
	struct pg_params p = { .n = 0 };
	int64_t active = 0, recent = 0, exists = 0;
	int rc;

	*over = HL_BUDGET_NONE;
	why[0] = '\0';
	if ((rc = hl_pg_begin(b, "begin attempt", err)) < 0)
		return rc;
	/* every replica's budget check waits for the one before to commit
	 * (without caps there is nothing to count, nor to wait for) */
	if (max_active > 0 || max_recent > 0)
		rc = hl_pg_exec(
		        b, NULL,
		        "SELECT pg_advisory_xact_lock(hashtextextended('healer:' || " PG_SCHEMA_KEY
		        " || 'budget', 0))",
		        NULL, false, "begin attempt", err);
	if (rc < 0)
		goto out;
	hl_pg_text(&p, a->task_id);
	hl_pg_int(&p, a->n);
	if ((rc = pg_one_int(b, &exists,
	                     "SELECT COUNT(*) FROM attempts WHERE task_id = $1 AND n = $2", &p,
	                     "begin attempt", err)) < 0 ||
	    exists)
		goto out;
	if ((max_active > 0 || max_recent > 0) &&
	    (rc = hl_pg_budget_usage(b, &active, &recent, a->repository, since_ms, err)) < 0)
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
	rc = hl_pg_attempt_put(b,
	                       &(struct hl_attempt){ .task_id = a->task_id,
	                                             .n = a->n,
	                                             .kind = a->kind,
	                                             .phase = HL_PHASE_PREPARING,
	                                             .outcome = HL_OUTCOME_INVALID,
	                                             .agent = a->agent,
	                                             .repository = a->repository,
	                                             .started_ms = a->started_ms },
	                       err);
	if (rc == 0 && a->reopen_reason) {
		struct pg_params q = { .n = 0 };

		hl_pg_text(&q, a->task_id);
		hl_pg_text(&q, a->reopen_reason);
		hl_pg_int(&q, hl_time_wall_ms());
		rc = hl_pg_exec(b, NULL,
		                "UPDATE remediation_tasks SET state = 'running', reason = $2,"
		                " updated_ms = $3, finished_ms = NULL, queued_ms = NULL"
		                " WHERE task_id = $1 AND state IN ('stopped', 'escalated')",
		                &q, false, "reopen task", err);
	}
	if (rc == 0 && a->decision_json) {
		struct pg_params q = { .n = 0 };

		hl_pg_text(&q, a->task_id);
		hl_pg_text(&q, a->decision_json);
		rc = hl_pg_exec(
		        b, NULL,
		        "UPDATE remediation_tasks SET decision_json = $2 WHERE task_id = $1", &q,
		        false, "keep task decision", err);
	}
out:
	if (rc == 0)
		return hl_pg_commit(b, "begin attempt", err);
	hl_pg_rollback(b);
	return rc;
}

int
hl_pg_task_schedule(struct hl_store_backend *b, const char *task_id, int64_t next_check_ms,
                    struct hl_err *err)
{
	struct pg_params p = { .n = 0 };
	int64_t changed = 0;
	int rc;

	hl_pg_text(&p, task_id);
	if (next_check_ms == HL_TASK_NO_CHECK)
		hl_pg_text(&p, NULL);
	else
		hl_pg_int(&p, next_check_ms);
	rc = pg_changes(
	        b, &changed,
	        "UPDATE remediation_tasks SET next_check_ms = $2::bigint WHERE task_id = $1", &p,
	        "schedule task", err);
	if (rc == 0 && changed == 0)
		return hl_err_set(err, HL_ENOTFOUND, "no task '%s'", task_id);
	return rc;
}

int
hl_pg_attempt_outcomes(struct hl_store_backend *b,
                       void (*fn)(void *, const char *, const char *, const char *, int64_t),
                       void *arg, struct hl_err *err)
{
	PGresult *r = NULL;
	int rc, i;

	rc = hl_pg_exec(
	        b, &r,
	        "SELECT CASE WHEN a.kind = 'rerun' THEN 'rerun' ELSE COALESCE(a.agent, '') END,"
	        " COALESCE(t.failure_type, ''), a.outcome, COUNT(*)"
	        " FROM attempts a JOIN remediation_tasks t ON t.task_id = a.task_id"
	        " WHERE a.outcome IS NOT NULL GROUP BY 1, 2, 3 LIMIT 2000",
	        NULL, false, "attempt outcomes", err);
	if (rc < 0)
		return rc;
	for (i = 0; i < PQntuples(r); i++)
		fn(arg, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2),
		   hl_pg_int_at(r, i, 3));
	PQclear(r);
	return 0;
}

int
hl_pg_time_to_fix(struct hl_store_backend *b, const double *bounds, size_t n_bounds,
                  int64_t *counts, double *sum, struct hl_err *err)
{
	PGresult *r = NULL;
	size_t i;
	int rc, k;

	rc = hl_pg_exec(b, &r,
	                "SELECT (finished_ms - created_ms) / 1000.0 FROM remediation_tasks"
	                " WHERE state = 'succeeded' AND finished_ms IS NOT NULL",
	                NULL, false, "time to fix", err);
	if (rc < 0)
		return rc;
	memset(counts, 0, (n_bounds + 1) * sizeof(*counts));
	*sum = 0;
	for (k = 0; k < PQntuples(r); k++) {
		double v = strtod(PQgetvalue(r, k, 0), NULL);

		for (i = 0; i < n_bounds; i++)
			if (v <= bounds[i])
				counts[i]++;
		counts[n_bounds]++;
		*sum += v;
	}
	PQclear(r);
	return 0;
}

int
hl_pg_kv_get(struct hl_store_backend *b, char **out, const char *key, struct hl_err *err)
{
	struct pg_params p = { .n = 0 };
	PGresult *r = NULL;
	char *v = NULL;
	int rc;

	hl_pg_text(&p, key);
	rc = hl_pg_exec(b, &r, "SELECT value FROM kv WHERE key = $1", &p, false, "kv", err);
	if (rc < 0)
		return rc;
	if (PQntuples(r) == 0)
		rc = hl_err_set(err, HL_ENOTFOUND, "no value for '%s'", key);
	else if (!(v = hl_pg_dup(r, 0, 0)))
		rc = hl_err_set(err, HL_ENOMEM, "out of memory");
	PQclear(r);
	if (rc == 0)
		*out = v;
	return rc;
}

int
hl_pg_kv_put(struct hl_store_backend *b, const char *key, const char *value, struct hl_err *err)
{
	struct pg_params p = { .n = 0 };

	hl_pg_text(&p, key);
	hl_pg_text(&p, value);
	hl_pg_int(&p, hl_time_wall_ms());
	return hl_pg_exec(b, NULL,
	                  "INSERT INTO kv (key, value, updated_ms) VALUES ($1, $2, $3)"
	                  " ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
	                  " updated_ms = excluded.updated_ms",
	                  &p, false, "kv", err);
}

int
hl_pg_kv_raise(struct hl_store_backend *b, const char *key, int64_t value, struct hl_err *err)
{
	struct pg_params p = { .n = 0 };

	hl_pg_text(&p, key);
	hl_pg_int(&p, value);
	hl_pg_int(&p, hl_time_wall_ms());
	/* what is not a number counts as 0, as hl_store_hold_get reads it */
	return hl_pg_exec(b, NULL,
	                  "INSERT INTO kv (key, value, updated_ms) VALUES ($1, $2::text, $3)"
	                  " ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
	                  " updated_ms = excluded.updated_ms"
	                  " WHERE (CASE WHEN kv.value ~ '^[0-9]{1,18}$' THEN kv.value::bigint"
	                  " ELSE 0 END) < $2::bigint",
	                  &p, false, "kv", err);
}

int
hl_pg_kv_prune(struct hl_store_backend *b, int64_t *removed, const char *prefix, int64_t before_ms,
               struct hl_err *err)
{
	struct pg_params p = { .n = 0 };

	hl_pg_text(&p, prefix);
	hl_pg_int(&p, before_ms);
	/* starts_with, not LIKE: a prefix may hold % or _ */
	return pg_changes(b, removed,
	                  "DELETE FROM kv WHERE starts_with(key, $1) AND updated_ms < $2", &p, "kv",
	                  err);
}

/* ---- the outbox --------------------------------------------------------- */

int
hl_pg_outbox_add(struct hl_store_backend *b, bool *created, const struct hl_notification_in *n,
                 struct hl_err *err)
{
	struct pg_params p = { .n = 0 };
	int64_t changed = 0;
	int rc;

	hl_pg_text(&p, n->task_id);
	hl_pg_text(&p, n->channel);
	hl_pg_text(&p, n->kind);
	hl_pg_text(&p, n->ref ? n->ref : "");
	hl_pg_int(&p, hl_time_wall_ms());
	hl_pg_text(&p, n->payload);
	rc = pg_changes(b, &changed,
	                "INSERT INTO notifications (task_id, channel, kind, ref, state, attempts,"
	                " next_ms, payload, created_ms)"
	                " VALUES ($1, $2, $3, $4, 'pending', 0, $5, $6, $5)"
	                " ON CONFLICT (task_id, channel, kind, ref) DO NOTHING",
	                &p, "outbox add", err);
	if (rc == 0 && created)
		*created = changed == 1;
	return rc;
}

int
hl_pg_outbox_due(struct hl_store_backend *b, struct hl_notification **out, size_t max, size_t *n,
                 int64_t now_ms, struct hl_err *err)
{
	struct pg_params p = { .n = 0 };
	struct hl_notification *arr;
	PGresult *r = NULL;
	size_t k;
	int rc;

	hl_pg_int(&p, now_ms);
	hl_pg_int(&p, (int64_t)max);
	rc = hl_pg_exec(b, &r,
	                "SELECT id, task_id, channel, kind, ref, payload, attempts, created_ms"
	                " FROM notifications WHERE state = 'pending' AND next_ms <= $1"
	                " ORDER BY next_ms, id LIMIT $2",
	                &p, false, "outbox due", err);
	if (rc < 0)
		return rc;
	arr = calloc(max ? max : 1, sizeof(*arr));
	if (!arr) {
		PQclear(r);
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	}
	for (k = 0; k < max && (int)k < PQntuples(r); k++) {
		struct hl_notification *nt = &arr[k];
		int i = (int)k;

		nt->id = hl_pg_int_at(r, i, 0);
		nt->task_id = hl_pg_dup(r, i, 1);
		nt->channel = hl_pg_dup(r, i, 2);
		nt->kind = hl_pg_dup(r, i, 3);
		nt->ref = hl_pg_dup(r, i, 4);
		nt->payload = hl_pg_dup(r, i, 5);
		nt->attempts = (int)hl_pg_int_at(r, i, 6);
		nt->created_ms = hl_pg_int_at(r, i, 7);
	}
	PQclear(r);
	*out = arr;
	*n = k;
	return 0;
}

/*
 * Reads the row as it is before the take (was its previous take left
 * without a result, how many attempts), then takes it only if no other
 * take or result came in between (next_ms changes with each). A send's
 * lease lasts until_ms - now_ms from the database's clock, as task leases
 * and delivery claims do, and a row under a lease (sending_by set) is due
 * by that clock: a replica whose clock runs ahead never takes a row whose
 * sender still lives. A retry's time (sending_by unset) is the caller's.
 */
int
hl_pg_outbox_take(struct hl_store_backend *b, struct hl_outbox_claim *out, int64_t id,
                  int64_t now_ms, int64_t until_ms, const char *owner, bool count,
                  struct hl_err *err)
{
	struct pg_params p = { .n = 0 };
	int64_t changed = 0, was_next;
	PGresult *r = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	hl_pg_int(&p, id);
	hl_pg_int(&p, now_ms);
	hl_pg_text(&p, owner);
	rc = hl_pg_exec(b, &r,
	                "SELECT CASE WHEN sending_by IS NULL THEN 0 WHEN sending_by = $3 THEN 2"
	                " ELSE 1 END, attempts, next_ms"
	                " FROM notifications WHERE id = $1 AND state = 'pending' AND next_ms <= $2"
	                " AND (sending_by IS NULL OR next_ms <= " PG_NOW_MS ")",
	                &p, false, "outbox take", err);
	if (rc < 0)
		return rc;
	if (PQntuples(r) != 1) {
		PQclear(r);
		return 0;
	}
	out->in_doubt = hl_pg_int_at(r, 0, 0) == 1;
	out->own = hl_pg_int_at(r, 0, 0) == 2;
	out->attempts = (int)hl_pg_int_at(r, 0, 1) + (count ? 1 : 0);
	was_next = hl_pg_int_at(r, 0, 2);
	PQclear(r);

	p.n = 0;
	hl_pg_int(&p, id);
	hl_pg_int(&p, was_next);
	hl_pg_int(&p, until_ms - now_ms);
	hl_pg_text(&p, owner);
	hl_pg_int(&p, count ? 1 : 0);
	rc = pg_changes(b, &changed,
	                "UPDATE notifications SET next_ms = " PG_NOW_MS " + $3::bigint,"
	                " sending_by = $4,"
	                " attempts = attempts + $5"
	                " WHERE id = $1 AND state = 'pending' AND next_ms = $2",
	                &p, "outbox take", err);
	out->taken = rc == 0 && changed == 1;
	return rc;
}

int
hl_pg_outbox_renew(struct hl_store_backend *b, const char *owner, int64_t id, int64_t now_ms,
                   int64_t until_ms, struct hl_err *err)
{
	struct pg_params p = { .n = 0 };
	int64_t changed = 0;

	/* the lease is the database's clock's, as the take set it */
	hl_pg_text(&p, owner);
	hl_pg_int(&p, until_ms - now_ms);
	hl_pg_int(&p, id);
	return pg_changes(b, &changed,
	                  "UPDATE notifications SET next_ms = " PG_NOW_MS " + $2::bigint"
	                  " WHERE id = $3 AND sending_by = $1 AND state = 'pending'"
	                  " AND next_ms > " PG_NOW_MS " AND next_ms < " PG_NOW_MS " + $2::bigint",
	                  &p, "outbox renew", err);
}

int
hl_pg_outbox_update(struct hl_store_backend *b, int64_t id, enum hl_notification_state state,
                    int attempts, int64_t next_ms, const char *last_error, const char *payload,
                    struct hl_err *err)
{
	struct pg_params p = { .n = 0 };
	int64_t changed = 0;
	int rc;

	hl_pg_int(&p, id);
	hl_pg_text(&p, hl_notification_state_name(state));
	hl_pg_int(&p, attempts);
	hl_pg_int(&p, next_ms);
	hl_pg_text(&p, last_error);
	hl_pg_int(&p, hl_time_wall_ms());
	hl_pg_text(&p, payload);
	rc = pg_changes(b, &changed,
	                "UPDATE notifications SET state = $2, attempts = CASE WHEN $3 < 0"
	                " THEN GREATEST(attempts + $3, 0) ELSE GREATEST(attempts, $3) END,"
	                " next_ms = $4,"
	                " last_error = $5, sending_by = NULL, payload = COALESCE($7, payload),"
	                " delivered_ms = CASE WHEN $2 = 'delivered' THEN $6 ELSE delivered_ms END"
	                " WHERE id = $1 AND state = 'pending'",
	                &p, "outbox update", err);
	if (rc == 0 && changed != 1)
		return hl_err_set(err, HL_ECONFLICT, "notification %lld is not pending",
		                  (long long)id);
	return rc;
}

int
hl_pg_outbox_counts(struct hl_store_backend *b,
                    void (*fn)(void *, const char *, const char *, int64_t), void *arg,
                    struct hl_err *err)
{
	PGresult *r = NULL;
	int rc, i;

	rc = hl_pg_exec(b, &r,
	                "SELECT channel, state, COUNT(*) FROM notifications"
	                " GROUP BY channel, state LIMIT 200",
	                NULL, false, "outbox counts", err);
	if (rc < 0)
		return rc;
	for (i = 0; i < PQntuples(r); i++)
		fn(arg, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), hl_pg_int_at(r, i, 2));
	PQclear(r);
	return 0;
}
