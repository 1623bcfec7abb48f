/*
 * sqlite_memory.c - the memory on SQLite (see store/memory.h): memories
 * with a contentless FTS5 index (memories_fts, rowid = memories.id) holding
 * the failure type and the searchable text; agent records and the insights'
 * rows from the ledger.
 *
 * A memory and its index row are written in one transaction, only when the
 * memory is new, so the index never holds a row twice. A search is one
 * FTS5 MATCH of the type's column AND any of the words, ranked by BM25
 * times the memory's weight, the repository's memories first.
 */
#include "base/buf.h"
#include "base/clock.h"
#include "base/str.h"
#include "sqlite_impl.h"

#include <stdlib.h>
#include <string.h>

/* The text the index searches (besides the type). */
static void
sq_memory_body(struct hl_buf *b, const struct hl_memory_in *m)
{
	const char *parts[] = { m->workflow, m->job, m->evidence, m->summary, m->commits };
	size_t i;

	for (i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
		if (parts[i] && *parts[i])
			hl_buf_appendf(b, "%s%s", b->len ? "\n" : "", parts[i]);
}

int
hl_sq_memory_put(struct hl_store_backend *b, bool *created, const struct hl_memory_in *m,
                 struct hl_err *err)
{
	struct hl_buf body = HL_BUF_INIT(1 << 20);
	sqlite3_stmt *st = NULL;
	int64_t id;
	int rc;

	*created = false;
	sq_memory_body(&body, m);
	if (hl_buf_error(&body)) {
		hl_buf_release(&body);
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	}
	if ((rc = hl_sq_begin(b, "memory", err)) < 0)
		goto out;
	st = hl_sq_prepare(
	        b, "INSERT INTO memories (task_id, repository, workflow, job, failure_type, event,"
	           " outcome, evidence, first_agent, fixed_by, attempts_json, n_attempts,"
	           " time_to_fix_ms, pr_url, commits, summary, created_ms)"
	           " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,"
	           " ?17) ON CONFLICT (task_id) DO NOTHING");
	if (!st) {
		rc = hl_sq_fail(err, b->db, "memory");
		goto fail;
	}
	hl_sq_bind_text(st, 1, m->task_id);
	hl_sq_bind_text(st, 2, m->repository);
	hl_sq_bind_text(st, 3, m->workflow);
	hl_sq_bind_text(st, 4, m->job);
	hl_sq_bind_text(st, 5, m->failure_type);
	hl_sq_bind_text(st, 6, m->event);
	hl_sq_bind_text(st, 7, m->outcome);
	hl_sq_bind_text(st, 8, m->evidence);
	hl_sq_bind_text(st, 9, m->first_agent);
	hl_sq_bind_text(st, 10, m->fixed_by);
	hl_sq_bind_text(st, 11, m->attempts_json);
	sqlite3_bind_int(st, 12, m->n_attempts);
	if (m->time_to_fix_ms > 0)
		sqlite3_bind_int64(st, 13, m->time_to_fix_ms);
	hl_sq_bind_text(st, 14, m->pr_url);
	hl_sq_bind_text(st, 15, m->commits);
	hl_sq_bind_text(st, 16, m->summary);
	sqlite3_bind_int64(st, 17, m->created_ms > 0 ? m->created_ms : hl_time_wall_ms());
	rc = hl_sq_step_done(st);
	hl_sq_done(b, st);
	if (rc < 0) {
		rc = hl_sq_fail(err, b->db, "memory");
		goto fail;
	}
	if (sqlite3_changes(b->db) == 0) { /* remembered before */
		rc = hl_sq_commit(b, "memory", err);
		goto out;
	}
	id = sqlite3_last_insert_rowid(b->db);
	st = hl_sq_prepare(b, "INSERT INTO memories_fts (rowid, failure_type, body)"
	                      " VALUES (?1, ?2, ?3)");
	if (!st) {
		rc = hl_sq_fail(err, b->db, "memory index");
		goto fail;
	}
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, m->failure_type ? m->failure_type : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, body.data, (int)body.len, SQLITE_STATIC);
	rc = hl_sq_step_done(st);
	hl_sq_done(b, st);
	if (rc < 0) {
		rc = hl_sq_fail(err, b->db, "memory index");
		goto fail;
	}
	if ((rc = hl_sq_commit(b, "memory", err)) < 0)
		goto fail;
	*created = true;
	goto out;
fail:
	hl_sq_rollback(b);
out:
	hl_buf_release(&body);
	return rc;
}

#define SQ_MEMORY_COLS                                                                      \
	"m.id, m.task_id, m.repository, m.workflow, m.job, m.failure_type, m.event,"        \
	" m.outcome, m.evidence, m.first_agent, m.fixed_by, m.attempts_json, m.pr_url,"     \
	" m.commits, m.summary, m.n_attempts, COALESCE(m.time_to_fix_ms, 0), m.created_ms," \
	" m.weight"

static void
sq_memory_hit(struct hl_memory_hit *h, sqlite3_stmt *st)
{
	h->id = sqlite3_column_int64(st, 0);
	h->task_id = hl_sq_col_dup(st, 1);
	h->repository = hl_sq_col_dup(st, 2);
	h->workflow = hl_sq_col_dup(st, 3);
	h->job = hl_sq_col_dup(st, 4);
	h->failure_type = hl_sq_col_dup(st, 5);
	h->event = hl_sq_col_dup(st, 6);
	h->outcome = hl_sq_col_dup(st, 7);
	h->evidence = hl_sq_col_dup(st, 8);
	h->first_agent = hl_sq_col_dup(st, 9);
	h->fixed_by = hl_sq_col_dup(st, 10);
	h->attempts_json = hl_sq_col_dup(st, 11);
	h->pr_url = hl_sq_col_dup(st, 12);
	h->commits = hl_sq_col_dup(st, 13);
	h->summary = hl_sq_col_dup(st, 14);
	h->n_attempts = sqlite3_column_int(st, 15);
	h->time_to_fix_ms = sqlite3_column_int64(st, 16);
	h->created_ms = sqlite3_column_int64(st, 17);
	h->weight = sqlite3_column_double(st, 18);
	h->score = sqlite3_column_double(st, 19);
}

int
hl_sq_memory_similar(struct hl_store_backend *b, struct hl_memory_hit **out, size_t *n,
                     const struct hl_memory_query *q, char (*words)[HL_MEMORY_WORD_MAX],
                     size_t n_words, struct hl_err *err)
{
	struct hl_buf match = HL_BUF_INIT(4096);
	struct hl_memory_hit *hits = NULL;
	sqlite3_stmt *st = NULL;
	size_t k = 0, i;
	int rc = 0, step;

	/* the type as one quoted token; words are [a-z0-9_] only (the front end) */
	hl_buf_append_str(&match, "failure_type : \"");
	for (i = 0; q->failure_type[i]; i++)
		if (q->failure_type[i] != '"')
			hl_buf_append_char(&match, q->failure_type[i]);
	hl_buf_append_char(&match, '"');
	for (i = 0; i < n_words; i++)
		hl_buf_appendf(&match, "%s\"%s\"", i ? " OR " : " AND body : (", words[i]);
	if (n_words)
		hl_buf_append_char(&match, ')');
	if (hl_buf_error(&match) || !(hits = calloc(q->k, sizeof(*hits)))) {
		rc = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	st = hl_sq_prepare(b, "SELECT " SQ_MEMORY_COLS ", -bm25(memories_fts) * m.weight AS score"
	                      " FROM memories_fts JOIN memories m ON m.id = memories_fts.rowid"
	                      " WHERE memories_fts MATCH ?1 AND m.task_id IS NOT ?3"
	                      " ORDER BY m.repository = ?2 DESC, score DESC, m.id DESC"
	                      " LIMIT ?4");
	if (!st) {
		rc = hl_sq_fail(err, b->db, "memory search");
		goto out;
	}
	sqlite3_bind_text(st, 1, match.data, (int)match.len, SQLITE_STATIC);
	hl_sq_bind_text(st, 2, q->repository ? q->repository : "");
	hl_sq_bind_text(st, 3, q->exclude_task);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)q->k);
	while (k < q->k && (step = sqlite3_step(st)) == SQLITE_ROW)
		sq_memory_hit(&hits[k++], st);
	if (k < q->k && step != SQLITE_DONE)
		rc = hl_sq_fail(err, b->db, "memory search");
	hl_sq_done(b, st);
out:
	hl_buf_release(&match);
	if (rc < 0) {
		hl_memory_hits_free(hits, k);
		return rc;
	}
	*out = hits;
	*n = k;
	return 0;
}

int
hl_sq_memory_reinforce(struct hl_store_backend *b, int64_t id, double boost, struct hl_err *err)
{
	sqlite3_stmt *st = hl_sq_prepare(b, "UPDATE memories SET weight = weight + ?2"
	                                    " WHERE id = ?1");
	int rc;

	if (!st)
		return hl_sq_fail(err, b->db, "reinforce");
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_double(st, 2, boost);
	rc = hl_sq_step_done(st);
	hl_sq_done(b, st);
	if (rc < 0)
		return hl_sq_fail(err, b->db, "reinforce");
	if (sqlite3_changes(b->db) == 0)
		return hl_err_set(err, HL_ENOTFOUND, "no memory %lld", (long long)id);
	return 0;
}

int
hl_sq_memory_count(struct hl_store_backend *b, int64_t *out, struct hl_err *err)
{
	sqlite3_stmt *st = hl_sq_prepare(b, "SELECT COUNT(*) FROM memories");
	int rc;

	if (!st)
		return hl_sq_fail(err, b->db, "memory count");
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	hl_sq_done(b, st);
	return rc == SQLITE_ROW ? 0 : hl_sq_fail(err, b->db, "memory count");
}

int
hl_sq_agent_records(struct hl_store_backend *b, struct hl_agent_record *out, size_t max, size_t *n,
                    const char *repository, const char *failure_type, struct hl_err *err)
{
	sqlite3_stmt *st = hl_sq_prepare(
	        b, "SELECT a.agent, COUNT(*),"
	           " SUM(CASE WHEN a.outcome = 'success' THEN 1 ELSE 0 END)"
	           " FROM remediation_tasks t JOIN attempts a ON a.task_id = t.task_id"
	           " WHERE t.repository = ?1 AND t.failure_type = ?2 AND a.kind = 'agent'"
	           " AND a.agent IS NOT NULL"
	           " AND a.outcome IN ('success', 'ci_still_failing', 'agent_failed', 'timeout')"
	           " GROUP BY a.agent ORDER BY a.agent LIMIT ?3");
	size_t k = 0;
	int rc = SQLITE_DONE;

	if (!st)
		return hl_sq_fail(err, b->db, "agent records");
	sqlite3_bind_text(st, 1, repository, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, failure_type, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)max);
	while (k < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		hl_sq_col_copy(out[k].agent, sizeof(out[k].agent), st, 0);
		out[k].finished = sqlite3_column_int64(st, 1);
		out[k].succeeded = sqlite3_column_int64(st, 2);
		k++;
	}
	if (k == max)
		rc = SQLITE_DONE;
	hl_sq_done(b, st);
	if (rc != SQLITE_DONE)
		return hl_sq_fail(err, b->db, "agent records");
	*n = k;
	return 0;
}

static const char *
sq_text(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return t ? (const char *)t : "";
}

int
hl_sq_insight_rows(struct hl_store_backend *b, const struct hl_insight_filter *f,
                   void (*fn)(void *, const struct hl_insight_row *), void *arg, struct hl_err *err)
{
	sqlite3_stmt *st = hl_sq_prepare(
	        b, "SELECT t.task_id, t.repository, t.failure_type, t.state, t.kind, t.created_ms,"
	           " COALESCE(t.finished_ms, 0), COALESCE(a.n, 0), a.kind, a.agent, a.outcome,"
	           " COALESCE(a.finished_ms, 0)"
	           " FROM remediation_tasks t LEFT JOIN attempts a ON a.task_id = t.task_id"
	           " WHERE t.created_ms >= ?1 AND (?2 IS NULL OR t.repository = ?2)"
	           " AND t.state <> 'skipped' ORDER BY t.task_id, a.n");
	int rc;

	if (!st)
		return hl_sq_fail(err, b->db, "insights");
	sqlite3_bind_int64(st, 1, f->since_ms);
	hl_sq_bind_text(st, 2, f->repository);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct hl_insight_row r = {
			.task_id = sq_text(st, 0),
			.repository = sq_text(st, 1),
			.failure_type = sq_text(st, 2),
			.state = sq_text(st, 3),
			.kind = sq_text(st, 4),
			.created_ms = sqlite3_column_int64(st, 5),
			.finished_ms = sqlite3_column_int64(st, 6),
			.n = sqlite3_column_int(st, 7),
			.attempt_kind = sq_text(st, 8),
			.agent = sq_text(st, 9),
			.outcome = sq_text(st, 10),
			.attempt_finished_ms = sqlite3_column_int64(st, 11),
		};
		fn(arg, &r);
	}
	hl_sq_done(b, st);
	return rc == SQLITE_DONE ? 0 : hl_sq_fail(err, b->db, "insights");
}

int
hl_sq_insight_dedup(struct hl_store_backend *b, struct hl_insight_dedup *out,
                    const struct hl_insight_filter *f, struct hl_err *err)
{
	sqlite3_stmt *st = hl_sq_prepare(
	        b, "SELECT COUNT(*),"
	           " COALESCE(SUM(CASE WHEN d.answer = 'duplicate' THEN 1 ELSE 0 END), 0),"
	           " COALESCE(SUM(CASE WHEN d.reason = 'existing' THEN 1 ELSE 0 END), 0)"
	           " FROM deliveries d WHERE d.received_ms >= ?1 AND (?2 IS NULL OR EXISTS"
	           " (SELECT 1 FROM remediation_tasks t WHERE t.task_id = d.task_id"
	           " AND t.repository = ?2))");
	int rc;

	if (!st)
		return hl_sq_fail(err, b->db, "insights");
	sqlite3_bind_int64(st, 1, f->since_ms);
	hl_sq_bind_text(st, 2, f->repository);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		out->deliveries = sqlite3_column_int64(st, 0);
		out->duplicates = sqlite3_column_int64(st, 1);
		out->existing = sqlite3_column_int64(st, 2);
	}
	hl_sq_done(b, st);
	if (rc != SQLITE_ROW)
		return hl_sq_fail(err, b->db, "insights");
	st = hl_sq_prepare(b, "SELECT COALESCE(SUM(c - 1), 0) FROM (SELECT COUNT(*) AS c"
	                      " FROM remediation_tasks WHERE created_ms >= ?1"
	                      " AND (?2 IS NULL OR repository = ?2) AND state <> 'skipped'"
	                      " AND run_id > 0 GROUP BY repository, run_id, COALESCE(job, '')"
	                      " HAVING COUNT(*) > 1)");
	if (!st)
		return hl_sq_fail(err, b->db, "insights");
	sqlite3_bind_int64(st, 1, f->since_ms);
	hl_sq_bind_text(st, 2, f->repository);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		out->leaked = sqlite3_column_int64(st, 0);
	hl_sq_done(b, st);
	return rc == SQLITE_ROW ? 0 : hl_sq_fail(err, b->db, "insights");
}
