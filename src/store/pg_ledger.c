/*
 * pg_ledger.c - the remediation ledger on PostgreSQL (see
 * store/ledger.h): task claims and lookups, task and attempt upserts,
 * typed records.
 *
 * Every task write reads the stored state FOR UPDATE inside its
 * transaction and asks hl_task_transition whether the move is legal; the
 * upsert then applies only if the state is still the one read, so two
 * replicas writing one task serialize and an illegal move writes nothing.
 * A task claim inserts ON CONFLICT DO NOTHING: of two replicas claiming
 * one failure key, the unique key decides and the loser reads the
 * winner's task. Tasks enter the queue one at a time (an advisory lock
 * for the transaction), so queue times strictly increase. Writes are
 * upserts whose NULL/zero fields keep what is stored, as on SQLite.
 */
#include "base/clock.h"
#include "base/str.h"
#include "pg_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PG_TASK_INSERT                                                                           \
	"INSERT INTO remediation_tasks (task_id, dedup_key, repository, run_id, job, branch,"    \
	" agent, failure_type, state, coderun_name, decision_json, created_ms, updated_ms,"      \
	" reason, attempts, finished_ms, kind, workflow, head_sha, pr_number, target_branch,"    \
	" event_json, next_check_ms, queued_ms, remember_pending)"                               \
	" VALUES ($1, $2, $3, $4::bigint, $5, $6, $7, $8, $9::text, $10, $11, $12::bigint, $12," \
	" $13, COALESCE($14::int, 0), $15::bigint, $16, $17, $18, $19::bigint, $20, $21,"        \
	" CASE WHEN $22::bigint = -1 THEN NULL ELSE $22 END,"                                    \
	" CASE WHEN $9 = 'queued' THEN GREATEST($12, COALESCE((SELECT MAX(queued_ms) + 1"        \
	"  FROM remediation_tasks), 0)) END,"                                                    \
	" CASE WHEN $9 IN ('succeeded', 'escalated') THEN 1 ELSE 0 END)"

static const char pg_task_upsert_sql[] = PG_TASK_INSERT
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
        " attempts = CASE WHEN $14 IS NULL THEN remediation_tasks.attempts ELSE $14 END,"
        " finished_ms = CASE WHEN $15 IS NULL THEN NULL"
        "  ELSE COALESCE(remediation_tasks.finished_ms, $15) END,"
        " kind = COALESCE(excluded.kind, remediation_tasks.kind),"
        " workflow = COALESCE(excluded.workflow, remediation_tasks.workflow),"
        " head_sha = COALESCE(excluded.head_sha, remediation_tasks.head_sha),"
        " pr_number = COALESCE(excluded.pr_number, remediation_tasks.pr_number),"
        " target_branch = COALESCE(excluded.target_branch, remediation_tasks.target_branch),"
        " event_json = COALESCE(excluded.event_json, remediation_tasks.event_json),"
        " next_check_ms = CASE WHEN $22 IS NULL THEN remediation_tasks.next_check_ms"
        "  WHEN $22 = -1 THEN NULL ELSE $22 END,"
        " queued_ms = CASE WHEN excluded.state <> 'queued' THEN NULL"
        "  WHEN remediation_tasks.state = 'queued' THEN remediation_tasks.queued_ms"
        "  ELSE GREATEST(excluded.updated_ms, COALESCE((SELECT MAX(q.queued_ms) + 1"
        "   FROM remediation_tasks q), 0)) END,"
        " remember_pending = CASE WHEN excluded.state IN ('succeeded', 'escalated')"
        "  AND excluded.state <> remediation_tasks.state THEN 1"
        "  ELSE remediation_tasks.remember_pending END"
        " WHERE remediation_tasks.state IS NOT DISTINCT FROM $23::text"
        " RETURNING 1";

static const char pg_task_claim_sql[] = PG_TASK_INSERT " ON CONFLICT DO NOTHING RETURNING task_id";

/* The parameters of PG_TASK_INSERT ($1..$22). */
static void
pg_task_params(struct pg_params *p, const struct hl_task *t, int64_t now)
{
	bool ends = hl_task_state_is_final(t->state) || t->state == HL_TASK_ESCALATED;

	hl_pg_text(p, t->task_id);
	hl_pg_text(p, t->dedup_key);
	hl_pg_text(p, t->repository);
	hl_pg_int_or_null(p, t->run_id);
	hl_pg_text(p, t->job);
	hl_pg_text(p, t->branch);
	hl_pg_text(p, t->agent);
	hl_pg_text(p, t->failure_type);
	hl_pg_text(p, hl_task_state_name(t->state));
	hl_pg_text(p, t->coderun_name);
	hl_pg_text(p, t->decision_json);
	hl_pg_int(p, now);
	hl_pg_text(p, t->reason);
	hl_pg_int_or_null(p, t->attempts);
	hl_pg_int_or_null(p, ends ? now : 0);
	hl_pg_text(p, t->kind);
	hl_pg_text(p, t->workflow);
	hl_pg_text(p, t->head_sha);
	hl_pg_int_or_null(p, t->pr_number);
	hl_pg_text(p, t->target_branch);
	hl_pg_text(p, t->event_json);
	hl_pg_int_or_null(p, t->next_check_ms);
}

static const char pg_queue_lock_sql[] =
        "SELECT pg_advisory_xact_lock(hashtextextended('healer:' || " PG_SCHEMA_KEY
        " || 'queue', 0))";

/* The stored state of a task, locked for this transaction:
 * HL_TASK_STATE_INVALID when there is none. */
static int
pg_task_state(struct hl_store_backend *b, enum hl_task_state *out, const char *task_id,
              struct hl_err *err)
{
	struct pg_params p = { .n = 0 };
	PGresult *r = NULL;
	int rc;

	hl_pg_text(&p, task_id);
	rc = hl_pg_exec(b, &r, "SELECT state FROM remediation_tasks WHERE task_id = $1 FOR UPDATE",
	                &p, false, "task state", err);
	if (rc < 0)
		return rc;
	*out = PQntuples(r) ? hl_task_state_from_name(hl_pg_get(r, 0, 0)) : HL_TASK_STATE_INVALID;
	PQclear(r);
	return 0;
}

int
hl_pg_task_put(struct hl_store_backend *b, const struct hl_task *t, struct hl_err *err)
{
	enum hl_task_state cur;
	PGresult *r = NULL;
	int rc, tries;

	for (tries = 0; tries < 3; tries++) {
		struct pg_params p = { .n = 0 };

		if ((rc = hl_pg_begin(b, "put task", err)) < 0)
			return rc;
		/* entering the queue: one at a time, so queue times strictly
		 * increase across replicas */
		if (t->state == HL_TASK_QUEUED &&
		    (rc = hl_pg_exec(b, NULL, pg_queue_lock_sql, NULL, false, "put task", err)) < 0)
			goto fail;
		if ((rc = pg_task_state(b, &cur, t->task_id, err)) < 0)
			goto fail;
		/* writing the same state again updates the other fields only; a
		 * new state takes the new reason, none included */
		if (cur != t->state && (rc = hl_task_transition(cur, t->state, err)) < 0) {
			hl_err_wrap(err, "task '%s'", t->task_id);
			goto fail;
		}
		pg_task_params(&p, t, hl_time_wall_ms());
		/* $23: the state read, which the update requires */
		hl_pg_text(&p, cur == HL_TASK_STATE_INVALID ? NULL : hl_task_state_name(cur));
		if ((rc = hl_pg_exec(b, &r, pg_task_upsert_sql, &p, false, "put task", err)) < 0)
			goto fail;
		if (PQntuples(r) == 1) {
			PQclear(r);
			return hl_pg_commit(b, "put task", err);
		}
		/* inserted meanwhile by another replica: read it again */
		PQclear(r);
		hl_pg_rollback(b);
	}
	return hl_err_set(err, HL_ECONFLICT, "task '%s' keeps changing", t->task_id);
fail:
	hl_pg_rollback(b);
	return rc;
}

static const char pg_task_existing_sql[] =
        "SELECT task_id FROM remediation_tasks WHERE task_id = $1"
        " OR ($2::text IS NOT NULL AND dedup_key = $2)"
        " ORDER BY (task_id = $1) DESC, created_ms LIMIT 1";

static int
pg_task_existing(struct hl_store_backend *b, bool *found, char *existing, const struct hl_task *t,
                 struct hl_err *err)
{
	struct pg_params p = { .n = 0 };
	PGresult *r = NULL;
	int rc;

	hl_pg_text(&p, t->task_id);
	hl_pg_text(&p, t->dedup_key);
	if ((rc = hl_pg_exec(b, &r, pg_task_existing_sql, &p, false, "claim task", err)) < 0)
		return rc;
	*found = PQntuples(r) == 1;
	if (*found)
		hl_pg_copy(existing, HL_TASK_ID_MAX, r, 0, 0);
	PQclear(r);
	return 0;
}

int
hl_pg_task_claim(struct hl_store_backend *b, bool *created, char *existing, const struct hl_task *t,
                 struct hl_err *err)
{
	struct pg_params p = { .n = 0 };
	PGresult *r = NULL;
	bool found = false;
	int rc;

	if ((rc = hl_pg_begin(b, "claim task", err)) < 0)
		return rc;
	if ((rc = pg_task_existing(b, &found, existing, t, err)) < 0)
		goto fail;
	if (found) {
		*created = false;
		return hl_pg_commit(b, "claim task", err);
	}
	if ((rc = hl_task_transition(HL_TASK_STATE_INVALID, t->state, err)) < 0) {
		hl_err_wrap(err, "task '%s'", t->task_id);
		goto fail;
	}
	pg_task_params(&p, t, hl_time_wall_ms());
	if ((rc = hl_pg_exec(b, &r, pg_task_claim_sql, &p, false, "claim task", err)) < 0)
		goto fail;
	*created = PQntuples(r) == 1;
	PQclear(r);
	if (*created) {
		hl_strlcpy(existing, t->task_id, HL_TASK_ID_MAX);
	} else {
		/* another replica claimed it first: the constraint decided */
		if ((rc = pg_task_existing(b, &found, existing, t, err)) < 0)
			goto fail;
		if (!found) {
			rc = hl_err_set(err, HL_EDB,
			                "postgres claim task: the conflicting task of"
			                " '%s' is gone",
			                t->task_id);
			goto fail;
		}
	}
	return hl_pg_commit(b, "claim task", err);
fail:
	hl_pg_rollback(b);
	return rc;
}

int
hl_pg_task_find(struct hl_store_backend *b, char *out, const char *repository, const char *branch,
                int64_t run_id, enum hl_task_find mode, int64_t since_ms, const char *exclude,
                struct hl_err *err)
{
#define PG_FIND(where, ex)                                                       \
	"SELECT task_id FROM remediation_tasks WHERE repository = $1 AND " where \
	" AND NOT (state = 'skipped' AND agent IS NULL)"                         \
	" AND (" ex "::text IS NULL OR task_id <> " ex ") ORDER BY created_ms DESC LIMIT 1"
	static const char *const sql[] = {
		[HL_TASK_FIND_ANY] = PG_FIND("run_id = $2", "$3"),
		[HL_TASK_FIND_RUN_LEVEL] = PG_FIND("run_id = $2 AND job IS NULL", "$3"),
		[HL_TASK_FIND_OTHER_RUN] =
		        PG_FIND("branch = $2 AND (run_id IS NULL OR run_id <> $3)"
		                " AND created_ms >= $4",
		                "$5"),
	};
#undef PG_FIND
	struct pg_params p = { .n = 0 };
	PGresult *r = NULL;
	int rc;

	if ((unsigned)mode > HL_TASK_FIND_OTHER_RUN)
		return hl_err_set(err, HL_EINVAL, "bad task search mode %d", (int)mode);
	hl_pg_text(&p, repository);
	if (mode == HL_TASK_FIND_OTHER_RUN)
		hl_pg_text(&p, branch);
	hl_pg_int(&p, run_id);
	if (mode == HL_TASK_FIND_OTHER_RUN)
		hl_pg_int(&p, since_ms);
	hl_pg_text(&p, exclude);
	if ((rc = hl_pg_exec(b, &r, sql[mode], &p, false, "find task", err)) < 0)
		return rc;
	if (PQntuples(r) == 1)
		hl_pg_copy(out, HL_TASK_ID_MAX, r, 0, 0);
	else
		rc = hl_err_set(err, HL_ENOTFOUND, "no matching task");
	PQclear(r);
	return rc;
}

int
hl_pg_attempt_put(struct hl_store_backend *b, const struct hl_attempt *a, struct hl_err *err)
{
	struct pg_params p = { .n = 0 };

	hl_pg_text(&p, a->task_id);
	hl_pg_int(&p, a->n);
	hl_pg_text(&p, a->agent);
	hl_pg_text(&p, a->coderun_name && *a->coderun_name ? a->coderun_name : NULL);
	hl_pg_text(&p,
	           a->outcome == HL_OUTCOME_INVALID ? NULL : hl_attempt_outcome_name(a->outcome));
	hl_pg_int(&p, a->started_ms ? a->started_ms : hl_time_wall_ms());
	hl_pg_int_or_null(&p, a->finished_ms);
	hl_pg_text(&p, hl_attempt_kind_name(a->kind));
	hl_pg_text(&p, hl_attempt_phase_name(a->phase));
	hl_pg_text(&p, a->reason);
	hl_pg_text(&p, a->status_message);
	hl_pg_text(&p, a->pr_url);
	hl_pg_text(&p, a->coderun_phase);
	hl_pg_text(&p, a->job_name);
	hl_pg_int_or_null(&p, a->agent_done_ms);
	hl_pg_text(&p, a->prompt);
	hl_pg_text(&p, a->repository);
	hl_pg_text(&p, a->pod_name);
	return hl_pg_exec(b, NULL,
	                  HL_STORE_ATTEMPT_INSERT
	                  " VALUES ($1, $2, $3, $4, $5, $6, $7::bigint, $8, $9, $10, $11,"
	                  " $12, $13, $14, $15::bigint, $16, $17, $18)" HL_STORE_ATTEMPT_UPSERT,
	                  &p, false, "put attempt", err);
}

int
hl_pg_outcome_add(struct hl_store_backend *b, const char *task_id, const char *delivery_id,
                  const char *outcome, const char *detail, struct hl_err *err)
{
	struct pg_params p = { .n = 0 };

	hl_pg_text(&p, task_id);
	hl_pg_text(&p, delivery_id);
	hl_pg_text(&p, outcome);
	hl_pg_text(&p, detail);
	hl_pg_int(&p, hl_time_wall_ms());
	return hl_pg_exec(
	        b, NULL,
	        "INSERT INTO outcomes (task_id, delivery_id, outcome, detail, recorded_ms)"
	        " VALUES ($1, $2, $3, $4, $5)",
	        &p, false, "add outcome", err);
}

int
hl_pg_task_counts(struct hl_store_backend *b,
                  void (*fn)(void *, const char *, const char *, int64_t), void *arg,
                  struct hl_err *err)
{
	PGresult *r = NULL;
	int rc, i;

	rc = hl_pg_exec(b, &r,
	                "SELECT 'state', state, COUNT(*) FROM remediation_tasks GROUP BY state"
	                " UNION ALL SELECT 'outcome', CASE WHEN outcome IS NOT NULL THEN outcome"
	                " WHEN phase = 'done' THEN 'not_run' ELSE 'running' END, COUNT(*)"
	                " FROM attempts GROUP BY 2 LIMIT 200",
	                NULL, false, "task counts", err);
	if (rc < 0)
		return rc;
	for (i = 0; i < PQntuples(r); i++)
		fn(arg, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), hl_pg_int_at(r, i, 2));
	PQclear(r);
	return 0;
}

static int
pg_read_attempts(struct hl_store_backend *b, struct hl_task_record *t, struct hl_err *err)
{
	struct pg_params p = { .n = 0 };
	PGresult *r = NULL;
	int rc, i, n;

	hl_pg_text(&p, t->task_id);
	rc = hl_pg_exec(
	        b, &r,
	        "SELECT n, kind, phase, outcome, agent, coderun_name, reason, status_message,"
	        " pr_url, started_ms, finished_ms, coderun_phase, job_name, agent_done_ms,"
	        " pod_name FROM attempts WHERE task_id = $1 ORDER BY n",
	        &p, false, "attempts", err);
	if (rc < 0)
		return rc;
	n = PQntuples(r);
	if (n > 0 && !(t->attempt = calloc((size_t)n, sizeof(*t->attempt)))) {
		PQclear(r);
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	}
	for (i = 0; i < n; i++) {
		struct hl_attempt_record *a = &t->attempt[t->n_attempts++];

		a->n = (int)hl_pg_int_at(r, i, 0);
		a->kind = hl_attempt_kind_from_name(hl_pg_get(r, i, 1));
		a->phase = hl_attempt_phase_from_name(hl_pg_get(r, i, 2));
		a->outcome = hl_attempt_outcome_from_name(hl_pg_get(r, i, 3));
		a->agent = hl_pg_dup(r, i, 4);
		a->coderun_name = hl_pg_dup(r, i, 5);
		a->reason = hl_pg_dup(r, i, 6);
		a->status_message = hl_pg_dup(r, i, 7);
		a->pr_url = hl_pg_dup(r, i, 8);
		a->started_ms = hl_pg_int_at(r, i, 9);
		a->finished_ms = hl_pg_int_at(r, i, 10);
		a->coderun_phase = hl_pg_dup(r, i, 11);
		a->job_name = hl_pg_dup(r, i, 12);
		a->agent_done_ms = hl_pg_int_at(r, i, 13);
		a->pod_name = hl_pg_dup(r, i, 14);
	}
	PQclear(r);
	return 0;
}

static int
pg_read_notifications(struct hl_store_backend *b, struct hl_task_record *t, struct hl_err *err)
{
	struct pg_params p = { .n = 0 };
	PGresult *r = NULL;
	int rc, i, n;

	hl_pg_text(&p, t->task_id);
	rc = hl_pg_exec(b, &r,
	                "SELECT id, channel, kind, ref, state, last_error, attempts, created_ms,"
	                " next_ms, delivered_ms FROM notifications WHERE task_id = $1"
	                " ORDER BY id LIMIT 100",
	                &p, false, "notifications", err);
	if (rc < 0)
		return rc;
	n = PQntuples(r);
	if (n > 0 && !(t->notification = calloc((size_t)n, sizeof(*t->notification)))) {
		PQclear(r);
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	}
	for (i = 0; i < n; i++) {
		struct hl_notification_record *nr = &t->notification[t->n_notifications++];

		nr->id = hl_pg_int_at(r, i, 0);
		nr->channel = hl_pg_dup(r, i, 1);
		nr->kind = hl_pg_dup(r, i, 2);
		nr->ref = hl_pg_dup(r, i, 3);
		nr->state = hl_pg_dup(r, i, 4);
		nr->last_error = hl_pg_dup(r, i, 5);
		nr->attempts = (int)hl_pg_int_at(r, i, 6);
		nr->created_ms = hl_pg_int_at(r, i, 7);
		nr->next_ms = hl_pg_int_at(r, i, 8);
		nr->delivered_ms = hl_pg_int_at(r, i, 9);
	}
	PQclear(r);
	return 0;
}

int
hl_pg_attempt_prompt(struct hl_store_backend *b, char **out, const char *task_id, int n,
                     struct hl_err *err)
{
	struct pg_params p = { .n = 0 };
	PGresult *r = NULL;
	char *v = NULL;
	int rc;

	hl_pg_text(&p, task_id);
	hl_pg_int(&p, n);
	rc = hl_pg_exec(b, &r, "SELECT prompt FROM attempts WHERE task_id = $1 AND n = $2", &p,
	                false, "prompt", err);
	if (rc < 0)
		return rc;
	if (PQntuples(r) == 1)
		v = hl_pg_dup(r, 0, 0);
	PQclear(r);
	if (!v)
		return hl_err_set(err, HL_ENOTFOUND, "no prompt for attempt %d of '%s'", n,
		                  task_id);
	*out = v;
	return 0;
}

#define PG_TASK_COLS                                                                       \
	"task_id, dedup_key, repository, run_id, job, branch, agent, failure_type, state," \
	" coderun_name, decision_json, created_ms, updated_ms, reason, attempts,"          \
	" finished_ms, kind, workflow, head_sha, pr_number, target_branch, event_json,"    \
	" next_check_ms, queued_ms"

/* A task record from row i of PG_TASK_COLS; NULL when out of memory. */
static struct hl_task_record *
pg_task_row(const PGresult *r, int i)
{
	struct hl_task_record *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->task_id = hl_pg_dup(r, i, 0);
	t->dedup_key = hl_pg_dup(r, i, 1);
	t->repository = hl_pg_dup(r, i, 2);
	t->run_id = hl_pg_int_at(r, i, 3);
	t->job = hl_pg_dup(r, i, 4);
	t->branch = hl_pg_dup(r, i, 5);
	t->agent = hl_pg_dup(r, i, 6);
	t->failure_type = hl_pg_dup(r, i, 7);
	t->state = hl_task_state_from_name(hl_pg_get(r, i, 8));
	t->coderun_name = hl_pg_dup(r, i, 9);
	t->decision_json = hl_pg_dup(r, i, 10);
	t->created_ms = hl_pg_int_at(r, i, 11);
	t->updated_ms = hl_pg_int_at(r, i, 12);
	t->reason = hl_pg_dup(r, i, 13);
	t->attempts = (int)hl_pg_int_at(r, i, 14);
	t->finished_ms = hl_pg_int_at(r, i, 15);
	t->kind = hl_pg_dup(r, i, 16);
	t->workflow = hl_pg_dup(r, i, 17);
	t->head_sha = hl_pg_dup(r, i, 18);
	t->pr_number = hl_pg_int_at(r, i, 19);
	t->target_branch = hl_pg_dup(r, i, 20);
	t->event_json = hl_pg_dup(r, i, 21);
	t->next_check_ms = hl_pg_int_at(r, i, 22);
	t->queued_ms = hl_pg_int_at(r, i, 23);
	if (!t->task_id) {
		hl_task_record_free(t);
		return NULL;
	}
	return t;
}

static int
pg_task_read(struct hl_store_backend *b, struct hl_task_record **out, const char *task_id,
             struct hl_err *err)
{
	struct pg_params p = { .n = 0 };
	struct hl_task_record *t;
	PGresult *r = NULL;
	int rc;

	hl_pg_text(&p, task_id);
	rc = hl_pg_exec(b, &r, "SELECT " PG_TASK_COLS " FROM remediation_tasks WHERE task_id = $1",
	                &p, false, "task", err);
	if (rc < 0)
		return rc;
	if (PQntuples(r) != 1) {
		PQclear(r);
		return hl_err_set(err, HL_ENOTFOUND, "no task '%s'", task_id);
	}
	t = pg_task_row(r, 0);
	PQclear(r);
	if (!t)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	if ((rc = pg_read_attempts(b, t, err)) < 0 || (rc = pg_read_notifications(b, t, err)) < 0) {
		hl_task_record_free(t);
		return rc;
	}
	*out = t;
	return 0;
}

/* The task, its attempts and notifications as of one moment: one snapshot
 * (REPEATABLE READ), so a state is never shown with attempts committed
 * after it was read. */
int
hl_pg_task_get(struct hl_store_backend *b, struct hl_task_record **out, const char *task_id,
               struct hl_err *err)
{
	int rc = hl_pg_cmd(b, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", "task", err);

	if (rc < 0)
		return rc;
	b->txn = true;
	if ((rc = pg_task_read(b, out, task_id, err)) < 0) {
		hl_pg_rollback(b);
		return rc;
	}
	if ((rc = hl_pg_commit(b, "task", err)) < 0) {
		hl_task_record_free(*out);
		*out = NULL;
	}
	return rc;
}

/* A copy of column col of row i in *out, NULL for SQL NULL; -1 when out
 * of memory. */
static int
pg_dup_or_null(char **out, const PGresult *r, int i, int col)
{
	if (!hl_pg_get(r, i, col)) {
		*out = NULL;
		return 0;
	}
	*out = hl_pg_dup(r, i, col);
	return *out ? 0 : -1;
}

int
hl_pg_task_waiting(struct hl_store_backend *b, struct hl_task_waiting *out, const char *task_id,
                   struct hl_err *err)
{
	struct pg_params p = { .n = 0 };
	PGresult *r = NULL;
	int rc;

	hl_pg_text(&p, task_id);
	/* the terms of the partial index deliveries_waiting_task (0025) */
	rc = hl_pg_exec(b, &r,
	                "SELECT delivery_id, state, received_ms FROM deliveries"
	                " WHERE task_id = $1 AND task_id IS NOT NULL"
	                " AND state IN ('received', 'processing') ORDER BY id LIMIT 1",
	                &p, false, "waiting delivery", err);
	if (rc < 0)
		return rc;
	if (PQntuples(r) != 1) {
		PQclear(r);
		return hl_err_set(err, HL_ENOTFOUND, "no delivery of '%s' waits", task_id);
	}
	memset(out, 0, sizeof(*out));
	hl_pg_copy(out->delivery_id, sizeof(out->delivery_id), r, 0, 0);
	hl_pg_copy(out->state, sizeof(out->state), r, 0, 1);
	out->received_ms = hl_pg_int_at(r, 0, 2);
	PQclear(r);
	return 0;
}

int
hl_pg_task_page(struct hl_store_backend *b, struct hl_task_summary *out, size_t *n,
                char *next_cursor, const struct hl_task_filter *f, struct hl_err *err)
{
	struct pg_params p = { .n = 0 };
	struct hl_buf states = HL_BUF_INIT(128);
	char cur_id[HL_TASK_ID_MAX];
	int64_t cur_ms = 0;
	size_t limit = f->limit ? f->limit : 50, k;
	PGresult *r = NULL;
	int has_cursor, rc, i, rows;

	if (limit > HL_TASK_LIST_MAX)
		limit = HL_TASK_LIST_MAX;
	if ((has_cursor = hl_store_cursor_parse(f->cursor, &cur_ms, cur_id, sizeof(cur_id), err)) <
	    0)
		return has_cursor;
	if (f->states) {
		/* a text[] literal of state names (they need no quoting) */
		for (i = 0, rc = 0; i < HL_TASK_STATE_MAX; i++)
			if (f->states & (1u << i))
				hl_buf_appendf(&states, "%s%s", rc++ ? "," : "{",
				               hl_task_state_name((enum hl_task_state)i));
		hl_buf_append_str(&states, "}");
		if (hl_buf_error(&states)) {
			hl_buf_release(&states);
			return hl_err_set(err, HL_ENOMEM, "out of memory");
		}
	}
	hl_pg_text(&p, f->states ? states.data : NULL);
	hl_pg_text(&p, f->repository);
	hl_pg_text(&p, f->agent);
	hl_pg_text(&p, f->failure_type);
	hl_pg_text(&p, f->kind);
	hl_pg_int(&p, f->since_ms);
	hl_pg_int_or_null(&p, has_cursor ? cur_ms : 0);
	hl_pg_text(&p, has_cursor ? cur_id : NULL);
	hl_pg_int(&p, (int64_t)limit + 1); /* one more: is there a next page? */
	/* attempts: the ones begun, as the task's document lists them */
#define PG_TASK_PAGE                                                              \
	"SELECT task_id, repository, branch, workflow, job, agent, failure_type," \
	" kind, reason, state, (SELECT COUNT(*) FROM attempts a"                  \
	"  WHERE a.task_id = remediation_tasks.task_id), pr_number,"              \
	" created_ms, updated_ms, finished_ms FROM remediation_tasks"             \
	" WHERE ($1::text[] IS NULL OR state = ANY($1::text[]))"                  \
	" AND ($2::text IS NULL OR lower(repository) = lower($2))"                \
	" AND ($3::text IS NULL OR agent = $3)"                                   \
	" AND ($4::text IS NULL OR failure_type = $4)"                            \
	" AND ($5::text IS NULL OR kind = $5)"                                    \
	" AND created_ms >= $6"                                                   \
	" AND ($7::bigint IS NULL OR created_ms < $7"                             \
	" OR (created_ms = $7 AND task_id < $8::text))"
	rc = hl_pg_exec(b, &r,
	                f->by_finished ? PG_TASK_PAGE " ORDER BY finished_ms DESC NULLS LAST,"
	                                              " task_id DESC LIMIT $9"
	                               : PG_TASK_PAGE
	                        " ORDER BY created_ms DESC, task_id DESC LIMIT $9",
	                &p, false, "list tasks", err);
#undef PG_TASK_PAGE
	hl_buf_release(&states);
	if (rc < 0)
		return rc;
	rows = PQntuples(r);
	next_cursor[0] = '\0';
	for (i = 0, k = 0; i < rows; i++) {
		struct hl_task_summary *s;

		if (k == limit) {
			if (!f->by_finished)
				hl_store_cursor_make(next_cursor, &out[k - 1]);
			break;
		}
		s = &out[k++];
		memset(s, 0, sizeof(*s));
		hl_pg_copy(s->task_id, sizeof(s->task_id), r, i, 0);
		/* whole, as the task's document shows them */
		if (pg_dup_or_null(&s->repository, r, i, 1) < 0 ||
		    pg_dup_or_null(&s->branch, r, i, 2) < 0 ||
		    pg_dup_or_null(&s->workflow, r, i, 3) < 0 ||
		    pg_dup_or_null(&s->job, r, i, 4) < 0 ||
		    pg_dup_or_null(&s->reason, r, i, 8) < 0) {
			PQclear(r);
			hl_task_summaries_release(out, k);
			return hl_err_set(err, HL_ENOMEM, "out of memory");
		}
		hl_pg_copy(s->agent, sizeof(s->agent), r, i, 5);
		hl_pg_copy(s->failure_type, sizeof(s->failure_type), r, i, 6);
		hl_pg_copy(s->kind, sizeof(s->kind), r, i, 7);
		s->state = hl_task_state_from_name(hl_pg_get(r, i, 9));
		s->attempts = (int)hl_pg_int_at(r, i, 10);
		s->pr_number = hl_pg_int_at(r, i, 11);
		s->created_ms = hl_pg_int_at(r, i, 12);
		s->updated_ms = hl_pg_int_at(r, i, 13);
		s->finished_ms = hl_pg_int_at(r, i, 14);
	}
	PQclear(r);
	*n = k;
	return 0;
}

int
hl_pg_task_list(struct hl_store_backend *b, struct hl_task_record ***out, size_t *n,
                const struct hl_task_query *q, struct hl_err *err)
{
	struct pg_params p = { .n = 0 };
	struct hl_task_record **list;
	PGresult *r = NULL;
	int rc, i, rows;

	hl_pg_text(&p, q->state);
	hl_pg_text(&p, q->repository);
	hl_pg_text(&p, q->agent);
	hl_pg_int_or_null(&p, q->before_created_ms);
	hl_pg_text(&p, q->before_created_ms ? (q->before_task_id ? q->before_task_id : "") : NULL);
	hl_pg_int(&p, (int64_t)q->limit);
	rc = hl_pg_exec(b, &r,
	                "SELECT " PG_TASK_COLS " FROM remediation_tasks"
	                " WHERE ($1::text IS NULL OR state = $1)"
	                " AND ($2::text IS NULL OR repository = $2)"
	                " AND ($3::text IS NULL OR agent = $3)"
	                " AND ($4::bigint IS NULL OR created_ms < $4"
	                " OR (created_ms = $4 AND task_id < $5::text))"
	                " ORDER BY created_ms DESC, task_id DESC LIMIT $6",
	                &p, false, "task list", err);
	if (rc < 0)
		return rc;
	rows = PQntuples(r);
	list = calloc(rows ? (size_t)rows : 1, sizeof(*list));
	if (!list) {
		PQclear(r);
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	}
	for (i = 0; i < rows; i++) {
		if (!(list[i] = pg_task_row(r, i))) {
			PQclear(r);
			hl_task_list_free(list, (size_t)i);
			return hl_err_set(err, HL_ENOMEM, "out of memory");
		}
	}
	PQclear(r);
	*out = list;
	*n = (size_t)rows;
	return 0;
}
