/*
 * sqlite_memory.c - the memory on SQLite (see store/memory.h): memories
 * with a contentless FTS5 index (memories_fts, rowid = -memories.id: the
 * newest first in the index's forward order, which FTS5 walks lazily, where
 * a reverse walk reads each term's whole doclist) holding the failure type
 * and the searchable text; agent records and the insights' rows from the
 * ledger.
 *
 * A memory and its index row are written in one transaction, only when the
 * memory is new, so the index never holds a row twice; a later outcome of
 * the same task updates the memory's outcome fields, not its index row. The index has the
 * type, the repository (one hashed token) and the text; memory_terms counts
 * the memories holding each word. A search takes the query's rarest words
 * that occur at all (one seek each in memory_terms) and matches the type
 * AND any of them, first in the repository, then elsewhere. Each pass
 * ranks the newest SQ_MEMORY_CANDIDATES matches inside the index by BM25's
 * term weights (hl_rank: the IDF of the words a memory holds, the term
 * frequency saturated at 1), then by that times the memory's weight. Its
 * cost is bounded by those constants, not by the size of the store.
 */
#include "base/buf.h"
#include "base/clock.h"
#include "base/str.h"
#include "sqlite_impl.h"

#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SQ_MEMORY_TERMS      4
#define SQ_MEMORY_BODY_WORDS 256 /* words of a memory counted in memory_terms */
#define SQ_MEMORY_CANDIDATES 64  /* matches ranked per pass, the newest */

/* A repository as one index token: "r" and 16 hex digits of the FNV-1a
 * hash of its lower-cased name (a name's '/', '-' and '.' would split it
 * into words; GitHub's names ignore case, as the scopes do). */
static void
sq_memory_repo_token(char *out, size_t size, const char *repository)
{
	uint64_t h = 14695981039346656037ULL;
	const unsigned char *p = (const unsigned char *)(repository ? repository : "");

	for (; *p; p++) {
		h ^= (unsigned char)tolower(*p);
		h *= 1099511628211ULL;
	}
	snprintf(out, size, "r%016llx", (unsigned long long)h);
}

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

/* The words the index's tokenizer makes of some text (sq_memory_tokens). */
struct sq_tokens {
	char (*out)[HL_MEMORY_WORD_MAX];
	size_t n, max;
};

/* Keeps a token as the front end keeps a word (hl_store_memory_words): at
 * least three characters, not all digits, each once. */
static int
sq_memory_token(void *ctx, int flags, const char *tok, int len, int start, int end)
{
	struct sq_tokens *t = ctx;
	size_t chars = 0, i;
	bool digits = true;

	(void)start;
	(void)end;
	if (flags & FTS5_TOKEN_COLOCATED)
		return SQLITE_OK;
	if (t->n >= t->max)
		return SQLITE_DONE;
	for (i = 0; i < (size_t)len; i++) {
		chars += ((unsigned char)tok[i] & 0xc0) != 0x80;
		digits &= tok[i] >= '0' && tok[i] <= '9';
	}
	if (chars < 3 || (size_t)len >= HL_MEMORY_WORD_MAX || digits)
		return SQLITE_OK;
	memcpy(t->out[t->n], tok, (size_t)len);
	t->out[t->n][len] = '\0';
	for (i = 0; i < t->n; i++)
		if (strcmp(t->out[i], t->out[t->n]) == 0)
			return SQLITE_OK;
	t->n++;
	return SQLITE_OK;
}

/*
 * Appends to out[*n..max) the terms memories_fts's own tokenizer (unicode61,
 * '_' a word character: case folded, diacritics removed) makes of text, so
 * a word is looked up as the index holds it ("Überweisung" is
 * "uberweisung"). Returns 0, or -1 when FTS5's tokenizer is unavailable.
 */
static int
sq_memory_tokens(sqlite3 *db, char (*out)[HL_MEMORY_WORD_MAX], size_t *n, size_t max,
                 const char *text)
{
	static const char *args[] = { "tokenchars", "_" };
	struct sq_tokens t = { .out = out, .n = *n, .max = max };
	fts5_api *api = NULL;
	fts5_tokenizer tok;
	Fts5Tokenizer *tk = NULL;
	sqlite3_stmt *st = NULL;
	void *ud = NULL;

	if (sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_pointer(st, 1, (void *)&api, "fts5_api_ptr", NULL);
	(void)sqlite3_step(st);
	sqlite3_finalize(st);
	if (!api || api->xFindTokenizer(api, "unicode61", &ud, &tok) != SQLITE_OK ||
	    tok.xCreate(ud, args, 2, &tk) != SQLITE_OK)
		return -1;
	if (text && *text)
		(void)tok.xTokenize(tk, &t, FTS5_TOKENIZE_DOCUMENT, text, (int)strlen(text),
		                    sq_memory_token);
	tok.xDelete(tk);
	*n = t.n;
	return 0;
}

/* Counts a new memory's words in memory_terms (inside its transaction). */
static int
sq_memory_count_terms(struct hl_store_backend *b, const char *text, struct hl_err *err)
{
	char(*words)[HL_MEMORY_WORD_MAX] = calloc(SQ_MEMORY_BODY_WORDS, HL_MEMORY_WORD_MAX);
	sqlite3_stmt *st = hl_sq_prepare(b, "INSERT INTO memory_terms (term, docs) VALUES (?1, 1)"
	                                    " ON CONFLICT (term) DO UPDATE SET docs = docs + 1");
	size_t n, i;
	int rc = 0;

	if (!words || !st) {
		free(words);
		hl_sq_done(b, st);
		return words ? hl_sq_fail(err, b->db, "memory terms")
		             : hl_err_set(err, HL_ENOMEM, "out of memory");
	}
	n = 0;
	if (sq_memory_tokens(b->db, words, &n, SQ_MEMORY_BODY_WORDS, text) < 0)
		rc = hl_err_set(err, HL_EDB, "sqlite: FTS5's tokenizer is not available");
	for (i = 0; i < n && rc == 0; i++) {
		sqlite3_bind_text(st, 1, words[i], -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			rc = hl_sq_fail(err, b->db, "memory terms");
		sqlite3_reset(st);
	}
	hl_sq_done(b, st);
	free(words);
	return rc;
}

/* A task remembered before whose outcome has changed since (escalated, then
 * fixed after a /healer retry): its outcome fields take the new values; the
 * index keeps the first text (inside the memory's transaction). */
static int
sq_memory_update(struct hl_store_backend *b, bool *changed, const struct hl_memory_in *m,
                 struct hl_err *err)
{
	sqlite3_stmt *st = hl_sq_prepare(
	        b, "UPDATE memories SET event = ?2, outcome = ?3, fixed_by = ?4,"
	           " attempts_json = ?5, n_attempts = ?6, time_to_fix_ms = ?7, pr_url = ?8,"
	           " commits = ?9, summary = ?10 WHERE task_id = ?1 AND outcome IS NOT ?3");
	int rc;

	if (!st)
		return hl_sq_fail(err, b->db, "memory");
	hl_sq_bind_text(st, 1, m->task_id);
	hl_sq_bind_text(st, 2, m->event);
	hl_sq_bind_text(st, 3, m->outcome);
	hl_sq_bind_text(st, 4, m->fixed_by);
	hl_sq_bind_text(st, 5, m->attempts_json);
	sqlite3_bind_int(st, 6, m->n_attempts);
	if (m->time_to_fix_ms > 0)
		sqlite3_bind_int64(st, 7, m->time_to_fix_ms);
	hl_sq_bind_text(st, 8, m->pr_url);
	hl_sq_bind_text(st, 9, m->commits);
	hl_sq_bind_text(st, 10, m->summary);
	rc = hl_sq_step_done(st);
	hl_sq_done(b, st);
	if (rc < 0)
		return hl_sq_fail(err, b->db, "memory");
	*changed = sqlite3_changes(b->db) > 0;
	return 0;
}

int
hl_sq_memory_put(struct hl_store_backend *b, bool *created, const struct hl_memory_in *m,
                 struct hl_err *err)
{
	struct hl_buf body = HL_BUF_INIT(1 << 20);
	sqlite3_stmt *st = NULL;
	char repo[24];
	int64_t id;
	int rc;

	*created = false;
	sq_memory_body(&body, m);
	sq_memory_repo_token(repo, sizeof(repo), m->repository);
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
		if ((rc = sq_memory_update(b, created, m, err)) < 0 ||
		    (rc = hl_sq_commit(b, "memory", err)) < 0)
			goto fail; /* a refused COMMIT leaves the transaction open */
		goto out;
	}
	id = sqlite3_last_insert_rowid(b->db);
	st = hl_sq_prepare(b, "INSERT INTO memories_fts (rowid, failure_type, repo, body)"
	                      " VALUES (?1, ?2, ?3, ?4)");
	if (!st) {
		rc = hl_sq_fail(err, b->db, "memory index");
		goto fail;
	}
	sqlite3_bind_int64(st, 1, -id);
	sqlite3_bind_text(st, 2, m->failure_type ? m->failure_type : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, repo, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, body.data, (int)body.len, SQLITE_STATIC);
	rc = hl_sq_step_done(st);
	hl_sq_done(b, st);
	if (rc < 0) {
		rc = hl_sq_fail(err, b->db, "memory index");
		goto fail;
	}
	if ((rc = sq_memory_count_terms(b, body.data, err)) < 0)
		goto fail;
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

/* Indexes every memory again under rowid -id and counts its words in
 * memory_terms again, once, when the index still holds rows under +id (a
 * store written before the newest-first order) or memory_reindex asks for it
 * (migration 24: repository tokens without case, words as the tokenizer
 * folds them). */
int
hl_sq_memory_upgrade(struct hl_store_backend *b, struct hl_err *err)
{
	struct hl_buf body = HL_BUF_INIT(1 << 20);
	sqlite3_stmt *rd = NULL, *wr = NULL;
	char repo[24];
	int rc, step;

	rc = sqlite3_prepare_v2(
	        b->db,
	        "SELECT 1 FROM memory_reindex UNION ALL"
	        " SELECT * FROM (SELECT 1 FROM memories_fts WHERE rowid > 0 LIMIT 1)",
	        -1, &rd, NULL);
	if (rc != SQLITE_OK)
		return hl_sq_fail(err, b->db, "memory index check");
	step = sqlite3_step(rd);
	sqlite3_finalize(rd);
	rd = NULL;
	if (step == SQLITE_DONE)
		return 0;
	if (step != SQLITE_ROW)
		return hl_sq_fail(err, b->db, "memory index check");
	if ((rc = hl_sq_begin(b, "memory index", err)) < 0)
		return rc;
	if (sqlite3_exec(b->db,
	                 "INSERT INTO memories_fts (memories_fts) VALUES ('delete-all');"
	                 " DELETE FROM memory_terms; DELETE FROM memory_reindex",
	                 NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(b->db,
	                       "SELECT id, repository, failure_type, workflow, job, evidence,"
	                       " summary, commits FROM memories",
	                       -1, &rd, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(b->db,
	                       "INSERT INTO memories_fts (rowid, failure_type, repo, body)"
	                       " VALUES (?1, ?2, ?3, ?4)",
	                       -1, &wr, NULL) != SQLITE_OK) {
		rc = hl_sq_fail(err, b->db, "memory index rebuild");
		goto fail;
	}
	while ((step = sqlite3_step(rd)) == SQLITE_ROW) {
		struct hl_memory_in m = {
			.workflow = (const char *)sqlite3_column_text(rd, 3),
			.job = (const char *)sqlite3_column_text(rd, 4),
			.evidence = (const char *)sqlite3_column_text(rd, 5),
			.summary = (const char *)sqlite3_column_text(rd, 6),
			.commits = (const char *)sqlite3_column_text(rd, 7),
		};
		const char *type = (const char *)sqlite3_column_text(rd, 2);

		hl_buf_reset(&body);
		sq_memory_body(&body, &m);
		sq_memory_repo_token(repo, sizeof(repo), (const char *)sqlite3_column_text(rd, 1));
		if (hl_buf_error(&body)) {
			rc = hl_err_set(err, HL_ENOMEM, "out of memory");
			goto fail;
		}
		sqlite3_bind_int64(wr, 1, -sqlite3_column_int64(rd, 0));
		sqlite3_bind_text(wr, 2, type ? type : "", -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(wr, 3, repo, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(wr, 4, body.data ? body.data : "", (int)body.len,
		                  SQLITE_TRANSIENT);
		if (sqlite3_step(wr) != SQLITE_DONE) {
			rc = hl_sq_fail(err, b->db, "memory index rebuild");
			goto fail;
		}
		sqlite3_reset(wr);
		if ((rc = sq_memory_count_terms(b, body.data ? body.data : "", err)) < 0)
			goto fail;
	}
	if (step != SQLITE_DONE) {
		rc = hl_sq_fail(err, b->db, "memory index rebuild");
		goto fail;
	}
	sqlite3_finalize(rd);
	sqlite3_finalize(wr);
	hl_buf_release(&body);
	if ((rc = hl_sq_commit(b, "memory index", err)) < 0)
		hl_sq_rollback(b); /* a refused COMMIT leaves the transaction open */
	return rc;
fail:
	sqlite3_finalize(rd);
	sqlite3_finalize(wr);
	hl_sq_rollback(b);
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

/*
 * hl_rank(memories_fts, 'w0 w1 ...'): the BM25 weight of the query terms a
 * row holds: the sum of w_i over the phrases i that occur in it (w_i is
 * the IDF of phrase i's word, 0 for the type and repository filters; the
 * term frequency saturates at 1: memories are short). Unlike bm25() it
 * needs no statistics over the whole index, so ranking costs only the
 * rows ranked.
 */
static void
sq_rank(const Fts5ExtensionApi *api, Fts5Context *fts, sqlite3_context *ctx, int nval,
        sqlite3_value **val)
{
	const char *w = nval > 0 ? (const char *)sqlite3_value_text(val[0]) : NULL;
	double score = 0;
	int i, n = api->xPhraseCount(fts);

	for (i = 0; i < n && w && *w; i++) {
		Fts5PhraseIter it;
		char *end;
		double wi = strtod(w, &end);
		int col = -1, off = 0;

		if (end == w)
			break;
		w = end;
		if (wi > 0 && api->xPhraseFirst(fts, i, &it, &col, &off) == SQLITE_OK && col >= 0)
			score += wi;
	}
	sqlite3_result_double(ctx, score);
}

int
hl_sq_memory_register(sqlite3 *db, struct hl_err *err)
{
	fts5_api *api = NULL;
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &st, NULL) != SQLITE_OK)
		return hl_sq_fail(err, db, "fts5");
	sqlite3_bind_pointer(st, 1, (void *)&api, "fts5_api_ptr", NULL);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW || !api)
		return hl_err_set(err, HL_EDB, "sqlite: FTS5 is not available");
	if (api->xCreateFunction(api, "hl_rank", NULL, sq_rank, NULL) != SQLITE_OK)
		return hl_sq_fail(err, db, "fts5 function");
	return 0;
}

/* The words of a search, rarest first, that occur in some memory: at most
 * SQ_MEMORY_TERMS of them (a common word matches most memories of a type
 * and says little; each lookup is one seek in the index's vocabulary). */
static size_t
sq_memory_terms(struct hl_store_backend *b, const char **out, int64_t *out_docs,
                char (*words)[HL_MEMORY_WORD_MAX], size_t n_words)
{
	sqlite3_stmt *st = hl_sq_prepare(b, "SELECT docs FROM memory_terms WHERE term = ?1");
	int64_t docs[HL_MEMORY_WORDS_MAX];
	const char *w[HL_MEMORY_WORDS_MAX];
	size_t n = 0, i, j;

	if (!st)
		return 0;
	for (i = 0; i < n_words; i++) {
		int64_t d = 0;

		sqlite3_bind_text(st, 1, words[i], -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			d = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
		if (d <= 0)
			continue;
		/* insertion by rarity (then the text's order) */
		for (j = n; j > 0 && docs[j - 1] > d; j--) {
			docs[j] = docs[j - 1];
			w[j] = w[j - 1];
		}
		docs[j] = d;
		w[j] = words[i];
		n++;
	}
	hl_sq_done(b, st);
	if (n > SQ_MEMORY_TERMS)
		n = SQ_MEMORY_TERMS;
	memcpy(out, w, n * sizeof(*w));
	memcpy(out_docs, docs, n * sizeof(*docs));
	return n;
}

/* How many memories there are (the highest id: one seek). */
static int64_t
sq_memory_total(struct hl_store_backend *b)
{
	sqlite3_stmt *st = hl_sq_prepare(b, "SELECT MAX(id) FROM memories");
	int64_t n = 0;

	if (st && sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	hl_sq_done(b, st);
	return n;
}

/* One pass of a search: the newest SQ_MEMORY_CANDIDATES matches (one walk
 * of the index in its forward order, ranked by BM25 inside the index as it goes),
 * then ordered by BM25 x weight; appends to hits[*k..max). */
static int
sq_memory_pass(struct hl_store_backend *b, struct hl_memory_hit *hits, size_t *k, size_t max,
               const char *match, const char *weights, const char *exclude, struct hl_err *err)
{
	sqlite3_stmt *st = hl_sq_prepare(
	        b,
	        weights ? "SELECT " SQ_MEMORY_COLS ", f.r * m.weight AS score FROM"
	                  " (SELECT -rowid AS id, hl_rank(memories_fts, ?5) AS r FROM memories_fts"
	                  " WHERE memories_fts MATCH ?1 ORDER BY rowid LIMIT ?3) f"
	                  " CROSS JOIN memories m ON m.id = f.id WHERE m.task_id IS NOT ?2"
	                  " ORDER BY score DESC, m.id DESC LIMIT ?4"
	                : "SELECT " SQ_MEMORY_COLS ", m.weight AS score FROM"
	                  " (SELECT -rowid AS id FROM memories_fts WHERE memories_fts MATCH ?1"
	                  " ORDER BY rowid LIMIT ?3) f"
	                  " CROSS JOIN memories m ON m.id = f.id WHERE m.task_id IS NOT ?2"
	                  " ORDER BY score DESC, m.id DESC LIMIT ?4");
	int step = SQLITE_DONE;

	if (!st)
		return hl_sq_fail(err, b->db, "memory search");
	sqlite3_bind_text(st, 1, match, -1, SQLITE_STATIC);
	hl_sq_bind_text(st, 2, exclude);
	sqlite3_bind_int64(st, 3, SQ_MEMORY_CANDIDATES);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)(max - *k));
	if (weights)
		sqlite3_bind_text(st, 5, weights, -1, SQLITE_STATIC);
	while (*k < max && (step = sqlite3_step(st)) == SQLITE_ROW)
		sq_memory_hit(&hits[(*k)++], st);
	hl_sq_done(b, st);
	return step == SQLITE_ROW || step == SQLITE_DONE ? 0
	                                                 : hl_sq_fail(err, b->db, "memory search");
}

int
hl_sq_memory_similar(struct hl_store_backend *b, struct hl_memory_hit **out, size_t *n,
                     const struct hl_memory_query *q, char (*words)[HL_MEMORY_WORD_MAX],
                     size_t n_words, struct hl_err *err)
{
	struct hl_buf base = HL_BUF_INIT(4096), match = HL_BUF_INIT(4096);
	struct hl_memory_hit *hits = NULL;
	const char *terms[HL_MEMORY_WORDS_MAX];
	int64_t docs[HL_MEMORY_WORDS_MAX], total = sq_memory_total(b);
	char repo[24], weights[256] = "0", folded[HL_MEMORY_WORDS_MAX][HL_MEMORY_WORD_MAX];
	size_t k = 0, i, nt, len, nf = 0;
	int rc = 0;

	/* each word as the index holds it (one word may be several terms) */
	for (i = 0; i < n_words; i++)
		if (sq_memory_tokens(b->db, folded, &nf, HL_MEMORY_WORDS_MAX, words[i]) < 0)
			return hl_err_set(err, HL_EDB, "sqlite: FTS5's tokenizer is not available");
	nt = sq_memory_terms(b, terms, docs, folded, nf);

	/* BM25's IDF of each word; the phrases are numbered as they appear in
	 * the query: the type, the words, then the repository (weight 0) */
	for (i = 0; i < nt; i++) {
		double idf = log(1.0 +
		                 ((double)total - (double)docs[i] + 0.5) / ((double)docs[i] + 0.5));
		len = strlen(weights);
		snprintf(weights + len, sizeof(weights) - len, " %.4f", idf > 0 ? idf : 0.0001);
	}

	/* the type as one quoted token; terms are the tokenizer's (letters,
	 * digits and '_': never a quote) */
	hl_buf_append_str(&base, "failure_type : \"");
	for (i = 0; q->failure_type[i]; i++)
		if (q->failure_type[i] != '"')
			hl_buf_append_char(&base, q->failure_type[i]);
	hl_buf_append_char(&base, '"');
	for (i = 0; i < nt; i++)
		hl_buf_appendf(&base, "%s\"%s\"", i ? " OR " : " AND body : (", terms[i]);
	if (nt)
		hl_buf_append_char(&base, ')');
	sq_memory_repo_token(repo, sizeof(repo), q->repository);
	if (hl_buf_error(&base) || !(hits = calloc(q->k, sizeof(*hits)))) {
		rc = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	if (n_words && !nt)
		goto out; /* words, none of which any memory holds: nothing is similar */
	/* the repository's memories first, then the others */
	if (q->repository && *q->repository) {
		hl_buf_appendf(&match, "%s AND repo : \"%s\"", base.data, repo);
		if (hl_buf_error(&match) ||
		    (rc = sq_memory_pass(b, hits, &k, q->k, match.data, nt ? weights : NULL,
		                         q->exclude_task, err)) < 0)
			goto out;
		hl_buf_reset(&match);
		hl_buf_appendf(&match, "%s NOT repo : \"%s\"", base.data, repo);
	} else {
		hl_buf_append_str(&match, base.data);
	}
	if (hl_buf_error(&match)) {
		rc = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	if (k < q->k)
		rc = sq_memory_pass(b, hits, &k, q->k, match.data, nt ? weights : NULL,
		                    q->exclude_task, err);
out:
	hl_buf_release(&base);
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
	        b,
	        "SELECT a.agent, COUNT(*),"
	        " SUM(CASE WHEN a.outcome = 'success' THEN 1 ELSE 0 END)"
	        " FROM attempts a JOIN remediation_tasks t ON t.task_id = a.task_id"
	        " WHERE a.repository = ?1 COLLATE NOCASE AND t.failure_type = ?2 AND a.kind = 'agent'"
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
	           " WHERE t.created_ms >= ?1 AND (?2 IS NULL OR t.repository = ?2 COLLATE NOCASE)"
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
	           " AND t.repository = ?2 COLLATE NOCASE))");
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
	st = hl_sq_prepare(
	        b, "SELECT COALESCE(SUM(c - 1), 0) FROM (SELECT COUNT(*) AS c"
	           " FROM remediation_tasks WHERE created_ms >= ?1"
	           " AND (?2 IS NULL OR repository = ?2 COLLATE NOCASE) AND state <> 'skipped'"
	           " AND run_id > 0 GROUP BY lower(repository), run_id, COALESCE(job, '')"
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
