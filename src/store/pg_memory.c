/*
 * pg_memory.c - the memory on PostgreSQL (see store/memory.h): memories
 * with a generated tsvector (the 'simple' configuration) under a GIN index;
 * agent records and the insights' rows from the ledger.
 *
 * A search is the type's memories whose text matches any of the words
 * (to_tsquery of "w1 | w2 ..."), ranked by ts_rank times the memory's
 * weight, the repository's memories first; without words, the type's
 * memories by weight and recency.
 */
#include "base/buf.h"
#include "base/clock.h"
#include "base/str.h"
#include "pg_impl.h"

#include <stdlib.h>
#include <string.h>

int
hl_pg_memory_put(struct hl_store_backend *b, bool *created, const struct hl_memory_in *m,
                 struct hl_err *err)
{
	struct pg_params p = { .n = 0 };
	PGresult *r = NULL;
	int rc;

	*created = false;
	hl_pg_text(&p, m->task_id);
	hl_pg_text(&p, m->repository);
	hl_pg_text(&p, m->workflow);
	hl_pg_text(&p, m->job);
	hl_pg_text(&p, m->failure_type);
	hl_pg_text(&p, m->event);
	hl_pg_text(&p, m->outcome);
	hl_pg_text(&p, m->evidence);
	hl_pg_text(&p, m->first_agent);
	hl_pg_text(&p, m->fixed_by);
	hl_pg_text(&p, m->attempts_json);
	hl_pg_int(&p, m->n_attempts);
	hl_pg_int_or_null(&p, m->time_to_fix_ms);
	hl_pg_text(&p, m->pr_url);
	hl_pg_text(&p, m->commits);
	hl_pg_text(&p, m->summary);
	hl_pg_int(&p, m->created_ms > 0 ? m->created_ms : hl_time_wall_ms());
	rc = hl_pg_exec(
	        b, &r,
	        "INSERT INTO memories (task_id, repository, workflow, job, failure_type,"
	        " event, outcome, evidence, first_agent, fixed_by, attempts_json,"
	        " n_attempts, time_to_fix_ms, pr_url, commits, summary, created_ms)"
	        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,"
	        " $15, $16, $17) ON CONFLICT (task_id) DO UPDATE SET event = EXCLUDED.event,"
	        " outcome = EXCLUDED.outcome, fixed_by = EXCLUDED.fixed_by,"
	        " attempts_json = EXCLUDED.attempts_json,"
	        " n_attempts = EXCLUDED.n_attempts,"
	        " time_to_fix_ms = EXCLUDED.time_to_fix_ms, pr_url = EXCLUDED.pr_url,"
	        " commits = EXCLUDED.commits, summary = EXCLUDED.summary"
	        " WHERE memories.outcome IS DISTINCT FROM EXCLUDED.outcome",
	        &p, false, "memory", err);
	if (rc < 0)
		return rc;
	*created = strcmp(PQcmdTuples(r), "1") == 0;
	PQclear(r);
	return 0;
}

#define PG_MEMORY_COLS                                                                    \
	"id, task_id, repository, workflow, job, failure_type, event, outcome, evidence," \
	" first_agent, fixed_by, attempts_json, pr_url, commits, summary, n_attempts,"    \
	" COALESCE(time_to_fix_ms, 0), created_ms, weight"

static void
pg_memory_hit(struct hl_memory_hit *h, const PGresult *r, int i)
{
	h->id = hl_pg_int_at(r, i, 0);
	h->task_id = hl_pg_dup(r, i, 1);
	h->repository = hl_pg_dup(r, i, 2);
	h->workflow = hl_pg_dup(r, i, 3);
	h->job = hl_pg_dup(r, i, 4);
	h->failure_type = hl_pg_dup(r, i, 5);
	h->event = hl_pg_dup(r, i, 6);
	h->outcome = hl_pg_dup(r, i, 7);
	h->evidence = hl_pg_dup(r, i, 8);
	h->first_agent = hl_pg_dup(r, i, 9);
	h->fixed_by = hl_pg_dup(r, i, 10);
	h->attempts_json = hl_pg_dup(r, i, 11);
	h->pr_url = hl_pg_dup(r, i, 12);
	h->commits = hl_pg_dup(r, i, 13);
	h->summary = hl_pg_dup(r, i, 14);
	h->n_attempts = (int)hl_pg_int_at(r, i, 15);
	h->time_to_fix_ms = hl_pg_int_at(r, i, 16);
	h->created_ms = hl_pg_int_at(r, i, 17);
	h->weight = strtod(PQgetvalue(r, i, 18), NULL);
	h->score = strtod(PQgetvalue(r, i, 19), NULL);
}

int
hl_pg_memory_similar(struct hl_store_backend *b, struct hl_memory_hit **out, size_t *n,
                     const struct hl_memory_query *q, char (*words)[HL_MEMORY_WORD_MAX],
                     size_t n_words, struct hl_err *err)
{
	struct pg_params p = { .n = 0 };
	struct hl_buf tsq = HL_BUF_INIT(4096);
	struct hl_memory_hit *hits = NULL;
	PGresult *r = NULL;
	size_t i, k = 0;
	int rc;

	for (i = 0; i < n_words; i++)
		hl_buf_appendf(&tsq, "%s%s", i ? " | " : "", words[i]);
	if (hl_buf_error(&tsq)) {
		hl_buf_release(&tsq);
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	}
	hl_pg_text(&p, q->failure_type);
	hl_pg_text(&p, q->repository ? q->repository : "");
	hl_pg_text(&p, q->exclude_task ? q->exclude_task : "");
	hl_pg_int(&p, (int64_t)q->k);
	if (n_words) {
		hl_pg_text(&p, tsq.data);
		rc = hl_pg_exec(b, &r,
		                "SELECT " PG_MEMORY_COLS ", ts_rank(search, q) * weight AS score"
		                " FROM memories, to_tsquery('simple', $5) q"
		                " WHERE failure_type = $1 AND search @@ q AND task_id <> $3"
		                " ORDER BY repository = $2 DESC, score DESC, id DESC LIMIT $4",
		                &p, false, "memory search", err);
	} else {
		rc = hl_pg_exec(b, &r,
		                "SELECT " PG_MEMORY_COLS ", weight AS score FROM memories"
		                " WHERE failure_type = $1 AND task_id <> $3"
		                " ORDER BY repository = $2 DESC, score DESC, id DESC LIMIT $4",
		                &p, false, "memory search", err);
	}
	hl_buf_release(&tsq);
	if (rc < 0)
		return rc;
	if (!(hits = calloc(q->k, sizeof(*hits)))) {
		PQclear(r);
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	}
	for (k = 0; k < q->k && (int)k < PQntuples(r); k++)
		pg_memory_hit(&hits[k], r, (int)k);
	PQclear(r);
	*out = hits;
	*n = k;
	return 0;
}

int
hl_pg_memory_reinforce(struct hl_store_backend *b, int64_t id, double boost, struct hl_err *err)
{
	struct pg_params p = { .n = 0 };
	PGresult *r = NULL;
	char num[32];
	int rc;

	snprintf(num, sizeof(num), "%.6f", boost);
	hl_pg_int(&p, id);
	hl_pg_text(&p, num);
	rc = hl_pg_exec(b, &r,
	                "UPDATE memories SET weight = weight + $2::double precision WHERE id = $1",
	                &p, false, "reinforce", err);
	if (rc < 0)
		return rc;
	if (strcmp(PQcmdTuples(r), "0") == 0)
		rc = hl_err_set(err, HL_ENOTFOUND, "no memory %lld", (long long)id);
	PQclear(r);
	return rc;
}

int
hl_pg_memory_count(struct hl_store_backend *b, int64_t *out, struct hl_err *err)
{
	PGresult *r = NULL;
	int rc = hl_pg_exec(b, &r, "SELECT COUNT(*) FROM memories", NULL, false, "memory count",
	                    err);

	if (rc < 0)
		return rc;
	*out = hl_pg_int_at(r, 0, 0);
	PQclear(r);
	return 0;
}

int
hl_pg_agent_records(struct hl_store_backend *b, struct hl_agent_record *out, size_t max, size_t *n,
                    const char *repository, const char *failure_type, struct hl_err *err)
{
	struct pg_params p = { .n = 0 };
	PGresult *r = NULL;
	size_t k;
	int rc;

	hl_pg_text(&p, repository);
	hl_pg_text(&p, failure_type);
	hl_pg_int(&p, (int64_t)max);
	rc = hl_pg_exec(
	        b, &r,
	        "SELECT a.agent, COUNT(*), SUM(CASE WHEN a.outcome = 'success' THEN 1 ELSE 0 END)"
	        " FROM attempts a JOIN remediation_tasks t ON t.task_id = a.task_id"
	        " WHERE a.repository = $1 AND t.failure_type = $2 AND a.kind = 'agent'"
	        " AND a.agent IS NOT NULL"
	        " AND a.outcome IN ('success', 'ci_still_failing', 'agent_failed', 'timeout')"
	        " GROUP BY a.agent ORDER BY a.agent LIMIT $3",
	        &p, false, "agent records", err);
	if (rc < 0)
		return rc;
	for (k = 0; k < max && (int)k < PQntuples(r); k++) {
		hl_pg_copy(out[k].agent, sizeof(out[k].agent), r, (int)k, 0);
		out[k].finished = hl_pg_int_at(r, (int)k, 1);
		out[k].succeeded = hl_pg_int_at(r, (int)k, 2);
	}
	PQclear(r);
	*n = k;
	return 0;
}

static const char *
pg_text_at(const PGresult *r, int i, int c)
{
	const char *v = hl_pg_get(r, i, c);

	return v ? v : "";
}

int
hl_pg_insight_rows(struct hl_store_backend *b, const struct hl_insight_filter *f,
                   void (*fn)(void *, const struct hl_insight_row *), void *arg, struct hl_err *err)
{
	struct pg_params p = { .n = 0 };
	PGresult *r = NULL;
	int rc, i;

	hl_pg_int(&p, f->since_ms);
	hl_pg_text(&p, f->repository);
	rc = hl_pg_exec(
	        b, &r,
	        "SELECT t.task_id, t.repository, t.failure_type, t.state, t.kind,"
	        " t.created_ms, COALESCE(t.finished_ms, 0), COALESCE(a.n, 0), a.kind,"
	        " a.agent, a.outcome, COALESCE(a.finished_ms, 0)"
	        " FROM remediation_tasks t LEFT JOIN attempts a ON a.task_id = t.task_id"
	        " WHERE t.created_ms >= $1 AND ($2::text IS NULL OR lower(t.repository) = lower($2))"
	        " AND t.state <> 'skipped' ORDER BY t.task_id, a.n",
	        &p, false, "insights", err);
	if (rc < 0)
		return rc;
	for (i = 0; i < PQntuples(r); i++) {
		struct hl_insight_row row = {
			.task_id = pg_text_at(r, i, 0),
			.repository = pg_text_at(r, i, 1),
			.failure_type = pg_text_at(r, i, 2),
			.state = pg_text_at(r, i, 3),
			.kind = pg_text_at(r, i, 4),
			.created_ms = hl_pg_int_at(r, i, 5),
			.finished_ms = hl_pg_int_at(r, i, 6),
			.n = (int)hl_pg_int_at(r, i, 7),
			.attempt_kind = pg_text_at(r, i, 8),
			.agent = pg_text_at(r, i, 9),
			.outcome = pg_text_at(r, i, 10),
			.attempt_finished_ms = hl_pg_int_at(r, i, 11),
		};
		fn(arg, &row);
	}
	PQclear(r);
	return 0;
}

int
hl_pg_insight_dedup(struct hl_store_backend *b, struct hl_insight_dedup *out,
                    const struct hl_insight_filter *f, struct hl_err *err)
{
	struct pg_params p = { .n = 0 };
	PGresult *r = NULL;
	int rc;

	hl_pg_int(&p, f->since_ms);
	hl_pg_text(&p, f->repository);
	rc = hl_pg_exec(b, &r,
	                "SELECT COUNT(*),"
	                " COALESCE(SUM(CASE WHEN d.answer = 'duplicate' THEN 1 ELSE 0 END), 0),"
	                " COALESCE(SUM(CASE WHEN d.reason = 'existing' THEN 1 ELSE 0 END), 0)"
	                " FROM deliveries d WHERE d.received_ms >= $1 AND ($2::text IS NULL OR"
	                " EXISTS (SELECT 1 FROM remediation_tasks t WHERE t.task_id = d.task_id"
	                " AND lower(t.repository) = lower($2)))",
	                &p, false, "insights", err);
	if (rc < 0)
		return rc;
	out->deliveries = hl_pg_int_at(r, 0, 0);
	out->duplicates = hl_pg_int_at(r, 0, 1);
	out->existing = hl_pg_int_at(r, 0, 2);
	PQclear(r);
	rc = hl_pg_exec(
	        b, &r,
	        "SELECT COALESCE(SUM(c - 1), 0) FROM (SELECT COUNT(*) AS c"
	        " FROM remediation_tasks WHERE created_ms >= $1"
	        " AND ($2::text IS NULL OR lower(repository) = lower($2)) AND state <> 'skipped'"
	        " AND run_id > 0 GROUP BY repository, run_id, COALESCE(job, '')"
	        " HAVING COUNT(*) > 1) x",
	        &p, false, "insights", err);
	if (rc < 0)
		return rc;
	out->leaked = hl_pg_int_at(r, 0, 0);
	PQclear(r);
	return 0;
}
