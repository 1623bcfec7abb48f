/*
 * pg_memory.c - the memory on PostgreSQL (see store/memory.h): memories
 * with a generated tsvector (the 'simple' configuration) under a GIN index;
 * agent records and the insights' rows from the ledger.
 *
 * memory_terms counts the memories holding each lexeme (kept with each new
 * memory). A search takes the query's rarest lexemes that occur at all and
 * reads candidates: the newest PG_MEMORY_CANDIDATES memories of the type
 * whose text holds any of them, in the repository (compared without case),
 * and as many elsewhere; only those are ranked, by ts_rank times the
 * memory's weight, the repository's first, so ranking costs the same
 * whatever the store's size. Without words the candidates are the newest
 * of the type, by weight.
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
	/* one statement: the memory, and for a new one the count of each of
	 * its lexemes in memory_terms (in the order of the terms, so two
	 * writers never wait for each other's rows in turn) */
	rc = hl_pg_exec(
	        b, &r,
	        "WITH m AS (INSERT INTO memories (task_id, repository, workflow, job, failure_type,"
	        " event, outcome, evidence, first_agent, fixed_by, attempts_json,"
	        " n_attempts, time_to_fix_ms, pr_url, commits, summary, created_ms)"
	        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,"
	        " $15, $16, $17) ON CONFLICT (task_id) DO UPDATE SET event = EXCLUDED.event,"
	        " outcome = EXCLUDED.outcome, fixed_by = EXCLUDED.fixed_by,"
	        " attempts_json = EXCLUDED.attempts_json,"
	        " n_attempts = EXCLUDED.n_attempts,"
	        " time_to_fix_ms = EXCLUDED.time_to_fix_ms, pr_url = EXCLUDED.pr_url,"
	        " commits = EXCLUDED.commits, summary = EXCLUDED.summary"
	        " WHERE memories.outcome IS DISTINCT FROM EXCLUDED.outcome"
	        " RETURNING search, xmax = 0 AS fresh),"
	        " t AS (INSERT INTO memory_terms (term, docs)"
	        " SELECT w, 1 FROM m, unnest(tsvector_to_array(m.search)) w WHERE m.fresh"
	        " ORDER BY w ON CONFLICT (term) DO UPDATE SET docs = memory_terms.docs + 1)"
	        " SELECT COUNT(*) FROM m",
	        &p, false, "memory", err);
	if (rc < 0)
		return rc;
	*created = hl_pg_int_at(r, 0, 0) == 1;
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

/* Matches ranked per search and side (the repository's, the others'): the
 * newest, as on SQLite (SQ_MEMORY_CANDIDATES). */
#define PG_MEMORY_CANDIDATES "64"
/* Words searched: the rarest that some memory holds (SQ_MEMORY_TERMS). */
#define PG_MEMORY_TERMS "4"

/* clang-format off */
/* The ids of the candidates: the newest PG_MEMORY_CANDIDATES memories of
 * the type (not $3's) matching `match`, in the repository $2 (without case),
 * then as many elsewhere; newest by `id` (an expression of it keeps the
 * primary key's order out of the plan). */
#define PG_MEMORY_CANDIDATE_IDS(match, id)                                            \
	"(SELECT id FROM memories WHERE failure_type = $1"                            \
	" AND lower(repository) = lower($2) AND task_id <> $3" match                   \
	" ORDER BY " id " DESC LIMIT " PG_MEMORY_CANDIDATES ")"                       \
	" UNION ALL (SELECT id FROM memories WHERE failure_type = $1"                 \
	" AND lower(repository) <> lower($2) AND task_id <> $3" match                  \
	" ORDER BY " id " DESC LIMIT " PG_MEMORY_CANDIDATES ")"

/* The query's words folded as the index folds them (to_tsvector with its
 * configuration): the PG_MEMORY_TERMS rarest that some memory holds (one
 * seek each in memory_terms), as a tsquery text matching any of them, and
 * how many memories hold them at most (the sum). */
#define PG_MEMORY_RAREST                                                              \
	"SELECT string_agg(quote_literal(term), ' | '), COALESCE(SUM(docs), 0) FROM"  \
	" (SELECT t.term, t.docs FROM memory_terms t WHERE t.term IN"                 \
	" (SELECT unnest(tsvector_to_array(to_tsvector('simple', $1))))"              \
	" ORDER BY t.docs, t.term LIMIT " PG_MEMORY_TERMS ") w"

/* The search's statement for a tsquery $5 of few memories: the full-text
 * index finds them all (id + 0: not a walk of the newest memories, which
 * would read most of the table to find a few). */
#define PG_MEMORY_SIMILAR_SPARSE                                                      \
	"SELECT " PG_MEMORY_COLS ", ts_rank(search, to_tsquery('simple', $5)) * weight" \
	" AS score FROM memories WHERE id IN ("                                       \
	PG_MEMORY_CANDIDATE_IDS(" AND search @@ to_tsquery('simple', $5)", "id + 0")  \
	")"                                                                           \
	" ORDER BY lower(repository) = lower($2) DESC, score DESC, id DESC LIMIT $4"
/* ... and of many: the newest memories of the type are read until enough
 * match (IS TRUE keeps the full-text index, which would read every match,
 * out of the plan). */
#define PG_MEMORY_SIMILAR_DENSE                                                       \
	"SELECT " PG_MEMORY_COLS ", ts_rank(search, to_tsquery('simple', $5)) * weight" \
	" AS score FROM memories WHERE id IN ("                                       \
	PG_MEMORY_CANDIDATE_IDS(" AND (search @@ to_tsquery('simple', $5)) IS TRUE",   \
	                        "id")                                                 \
	")"                                                                           \
	" ORDER BY lower(repository) = lower($2) DESC, score DESC, id DESC LIMIT $4"
/* Memories holding the words (the sum) above which a search reads the newest
 * memories rather than every match. */
#define PG_MEMORY_DENSE 2048

/* Without words: the newest candidates of the type, by weight. */
#define PG_MEMORY_SIMILAR_ANY                                                         \
	"SELECT " PG_MEMORY_COLS ", weight AS score FROM memories WHERE id IN ("      \
	PG_MEMORY_CANDIDATE_IDS("", "id") ")"                                         \
	" ORDER BY lower(repository) = lower($2) DESC, score DESC, id DESC LIMIT $4"
/* clang-format on */

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
	int64_t docs = 0;
	int rc;

	/* the words, folded as the index folds them: the rarest */
	for (i = 0; i < n_words; i++)
		hl_buf_appendf(&tsq, "%s%s", i ? " " : "", words[i]);
	if (hl_buf_error(&tsq)) {
		hl_buf_release(&tsq);
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	}
	if (n_words) {
		hl_pg_text(&p, tsq.data);
		rc = hl_pg_exec(b, &r, PG_MEMORY_RAREST, &p, false, "memory search", err);
		hl_buf_reset(&tsq);
		if (rc < 0 || !hl_pg_get(r, 0, 0)) { /* an error, or no memory holds any */
			hl_buf_release(&tsq);
			if (rc < 0)
				return rc;
			PQclear(r);
			*out = calloc(1, sizeof(**out));
			*n = 0;
			return *out ? 0 : hl_err_set(err, HL_ENOMEM, "out of memory");
		}
		hl_buf_append_str(&tsq, hl_pg_get(r, 0, 0));
		docs = hl_pg_int_at(r, 0, 1);
		PQclear(r);
		r = NULL;
		p.n = 0;
		if (hl_buf_error(&tsq)) {
			hl_buf_release(&tsq);
			return hl_err_set(err, HL_ENOMEM, "out of memory");
		}
	}
	hl_pg_text(&p, q->failure_type);
	hl_pg_text(&p, q->repository ? q->repository : "");
	hl_pg_text(&p, q->exclude_task ? q->exclude_task : "");
	hl_pg_int(&p, (int64_t)q->k);
	if (n_words)
		hl_pg_text(&p, tsq.data);
	rc = hl_pg_exec(b, &r,
	                !n_words                 ? PG_MEMORY_SIMILAR_ANY
	                : docs > PG_MEMORY_DENSE ? PG_MEMORY_SIMILAR_DENSE
	                                         : PG_MEMORY_SIMILAR_SPARSE,
	                &p, false, "memory search", err);
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
	        " WHERE lower(a.repository) = lower($1) AND t.failure_type = $2 AND a.kind = 'agent'"
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
	        " AND run_id > 0 GROUP BY lower(repository), run_id, COALESCE(job, '')"
	        " HAVING COUNT(*) > 1) x",
	        &p, false, "insights", err);
	if (rc < 0)
		return rc;
	out->leaked = hl_pg_int_at(r, 0, 0);
	PQclear(r);
	return 0;
}
