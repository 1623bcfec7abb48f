/*
 * bench_memory.c - the embedded memory's similar-failures query at scale:
 * N stored outcomes (default 100,000: 50 repositories, 24 failure types,
 * evidence lines and summaries drawn from a 3,000-word vocabulary, each
 * with a task and two attempts in the ledger), then Q queries (a fresh
 * evidence line of a random repository and type, k = 5):
 *
 *   fts      hl_store_memory_similar (FTS5 MATCH within the type, BM25 x
 *            weight, the repository's first) through the store's front end
 *   recall   what a remediation adds: hl_memory_recall (the search and the
 *            prompt's history) plus hl_store_agent_records
 *   like     the baseline: the same question as a plain LIKE scan of the
 *            table (any of the words in the text, of the type, the
 *            repository's first), no index and no full-text search
 *
 * Prints p50/p99 of each in ms and the ratio like/fts at p50 and p99.
 * The data is loaded in one transaction with raw SQLite (the store's own
 * schema from its migrations, the rows its put writes: the memory, its
 * index row, its words' counts); the queries go through healer's code.
 *
 * usage: bench_memory [N] [Q]
 */
#include "base/clock.h"
#include "memory/memory.h"
#include "store/store.h"
#include "store/store_impl.h" /* hl_store_memory_words: the store's word rule */

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REPOS 50
#define TYPES 24
#define VOCAB 3000
#define WORDS 12 /* of an evidence line */

static unsigned long long rng = 88172645463325252ULL;

static unsigned
rnd(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)(rng % n);
}

static char vocab[VOCAB][16];

static void
make_vocab(void)
{
	static const char *const syll[] = { "ka", "ro", "mi", "te", "su", "na", "lo", "pe",
		                            "ri", "zu", "an", "el", "or", "ux", "ty", "be" };
	int i;

	for (i = 0; i < VOCAB; i++)
		snprintf(vocab[i], sizeof(vocab[i]), "%s%s%s%s", syll[i % 16], syll[(i / 16) % 16],
		         syll[(i / 256) % 16], i >= 4096 ? "x" : "");
}

/* A word of type t: half of them from the type's own 100 words (what makes
 * failures of one type alike), half from the whole vocabulary. */
static const char *
word(int t)
{
	return rnd(2) ? vocab[(t * 100 + rnd(100)) % VOCAB] : vocab[rnd(VOCAB)];
}

static void
line(char *out, size_t size, int t, int n)
{
	size_t len = (size_t)snprintf(out, size, "error[E%04d]:", t * 7);
	int i;

	for (i = 0; i < n && len + 20 < size; i++)
		len += (size_t)snprintf(out + len, size - len, " %s", word(t));
}

static int
cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return x < y ? -1 : x > y;
}

/* BENCH_CLOCK=cpu measures the thread's CPU time instead of the wall
 * clock (on a machine shared with other work, the wall clock mostly
 * measures the scheduler). */
static clockid_t bench_clock = CLOCK_MONOTONIC;

static long long
now_ns(void)
{
	struct timespec ts;

	clock_gettime(bench_clock, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static double
pct(long long *v, int n, double p)
{
	int i = (int)(p * n);

	qsort(v, (size_t)n, sizeof(*v), cmp_ll);
	return (double)v[i < n ? i : n - 1] / 1e6;
}

/* The store's repository token (sqlite_memory.c): "r" + FNV-1a 64 in hex. */
static void
repo_token(char *out, size_t size, const char *repo)
{
	unsigned long long h = 14695981039346656037ULL;

	for (; *repo; repo++) {
		h ^= (unsigned char)*repo;
		h *= 1099511628211ULL;
	}
	snprintf(out, size, "r%016llx", h);
}

static int
load(const char *path, int n)
{
	sqlite3 *db;
	sqlite3_stmt *mem, *fts, *task, *att, *term;
	char words[256][HL_MEMORY_WORD_MAX];
	char ev[400], sum[400], id[64], repo[64], type[32], body[900], tok[24];
	int i, rc = 0;

	if (sqlite3_open(path, &db) != SQLITE_OK)
		return -1;
	sqlite3_exec(db, "PRAGMA synchronous = OFF; BEGIN", NULL, NULL, NULL);
	sqlite3_prepare_v2(db,
	                   "INSERT INTO memories (task_id, repository, workflow, job, failure_type,"
	                   " event, outcome, evidence, first_agent, fixed_by, attempts_json,"
	                   " n_attempts, time_to_fix_ms, pr_url, summary, created_ms)"
	                   " VALUES (?1, ?2, 'CI', 'build', ?3, 'retry_success', 'succeeded', ?4,"
	                   " 'rex', 'atlas', '[]', 2, 600000, 'https://github.com/o/r/pull/1', ?5,"
	                   " ?6)",
	                   -1, &mem, NULL);
	sqlite3_prepare_v2(db,
	                   "INSERT INTO memories_fts (rowid, failure_type, repo, body)"
	                   " VALUES (?1, ?2, ?3, ?4)",
	                   -1, &fts, NULL);
	sqlite3_prepare_v2(db,
	                   "INSERT INTO memory_terms (term, docs) VALUES (?1, 1)"
	                   " ON CONFLICT (term) DO UPDATE SET docs = docs + 1",
	                   -1, &term, NULL);
	sqlite3_prepare_v2(
	        db,
	        "INSERT INTO remediation_tasks (task_id, repository, failure_type, state,"
	        " attempts, created_ms, updated_ms, finished_ms, run_id, job)"
	        " VALUES (?1, ?2, ?3, 'succeeded', 2, ?4, ?4, ?4, ?5, 'build')",
	        -1, &task, NULL);
	sqlite3_prepare_v2(
	        db,
	        "INSERT INTO attempts (task_id, n, agent, outcome, started_ms, kind, phase,"
	        " repository) VALUES (?1, ?2, ?3, ?4, ?5, 'agent', 'done', ?6)",
	        -1, &att, NULL);
	for (i = 0; i < n && rc == 0; i++) {
		int t = rnd(TYPES), r = rnd(REPOS);

		snprintf(id, sizeof(id), "hl-bench-%08d", i);
		snprintf(repo, sizeof(repo), "acme/repo-%02d", r);
		snprintf(type, sizeof(type), "type_%02d", t);
		line(ev, sizeof(ev), t, WORDS);
		line(sum, sizeof(sum), t, 20);
		snprintf(body, sizeof(body), "CI\nbuild\n%s\n%s", ev, sum);
		sqlite3_bind_text(mem, 1, id, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(mem, 2, repo, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(mem, 3, type, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(mem, 4, ev, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(mem, 5, sum, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(mem, 6, 1700000000000LL + i);
		rc |= sqlite3_step(mem) != SQLITE_DONE;
		sqlite3_reset(mem);
		sqlite3_bind_int64(fts, 1, -sqlite3_last_insert_rowid(db)); /* the store's layout */
		sqlite3_bind_text(fts, 2, type, -1, SQLITE_TRANSIENT);
		repo_token(tok, sizeof(tok), repo);
		sqlite3_bind_text(fts, 3, tok, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(fts, 4, body, -1, SQLITE_TRANSIENT);
		rc |= sqlite3_step(fts) != SQLITE_DONE;
		sqlite3_reset(fts);
		for (size_t w = 0, nw = hl_store_memory_words(words, 256, body); w < nw; w++) {
			sqlite3_bind_text(term, 1, words[w], -1, SQLITE_STATIC);
			rc |= sqlite3_step(term) != SQLITE_DONE;
			sqlite3_reset(term);
		}
		sqlite3_bind_text(task, 1, id, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(task, 2, repo, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(task, 3, type, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(task, 4, 1700000000000LL + i);
		sqlite3_bind_int64(task, 5, i + 1);
		rc |= sqlite3_step(task) != SQLITE_DONE;
		sqlite3_reset(task);
		for (int k = 1; k <= 2; k++) {
			sqlite3_bind_text(att, 1, id, -1, SQLITE_TRANSIENT);
			sqlite3_bind_int(att, 2, k);
			sqlite3_bind_text(att, 3, k == 1 ? "rex" : "atlas", -1, SQLITE_STATIC);
			sqlite3_bind_text(att, 4, k == 1 ? "agent_failed" : "success", -1,
			                  SQLITE_STATIC);
			sqlite3_bind_int64(att, 5, 1700000000000LL + i);
			sqlite3_bind_text(att, 6, repo, -1, SQLITE_TRANSIENT);
			rc |= sqlite3_step(att) != SQLITE_DONE;
			sqlite3_reset(att);
		}
	}
	if (rc)
		fprintf(stderr, "load: %s\n", sqlite3_errmsg(db));
	sqlite3_exec(db, "COMMIT; ANALYZE", NULL, NULL, NULL);
	sqlite3_finalize(mem);
	sqlite3_finalize(fts);
	sqlite3_finalize(task);
	sqlite3_finalize(att);
	sqlite3_finalize(term);
	sqlite3_close(db);
	return rc ? -1 : 0;
}

/* The baseline: the same question answered by scanning the table. */
static int
like_query(sqlite3 *db, const char *repo, const char *type, const char *text)
{
	char sql[4096], w[64];
	size_t len;
	const char *p = text;
	int n = 0, rows = 0;
	sqlite3_stmt *st = NULL;

	len = (size_t)snprintf(sql, sizeof(sql),
	                       "SELECT id, task_id, summary, pr_url FROM memories NOT INDEXED"
	                       " WHERE failure_type = ?1 AND (0");
	while (*p && n < 16) {
		size_t k = 0;
		while (*p && !(*p >= 'a' && *p <= 'z'))
			p++;
		while (*p >= 'a' && *p <= 'z' && k + 1 < sizeof(w))
			w[k++] = *p++;
		w[k] = '\0';
		if (k >= 3) {
			len += (size_t)snprintf(sql + len, sizeof(sql) - len,
			                        " OR (evidence || ' ' || summary) LIKE '%%%s%%'",
			                        w);
			n++;
		}
	}
	snprintf(sql + len, sizeof(sql) - len, ") ORDER BY repository = ?2 DESC, id DESC LIMIT 5");
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, type, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, repo, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW)
		rows++;
	sqlite3_finalize(st);
	return rows;
}

int
main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 100000, q = argc > 2 ? atoi(argv[2]) : 1000, i;
	char dir[] = "/tmp/healer-bench-memory-XXXXXX", path[128], url[160], cmd[200];
	struct hl_store *s = NULL;
	struct hl_err err = HL_ERR_INIT;
	long long *fts = calloc((size_t)q, sizeof(long long));
	long long *rec = calloc((size_t)q, sizeof(long long));
	long long *like = calloc((size_t)q, sizeof(long long));
	int64_t count = 0, hits = 0;
	sqlite3 *db = NULL;
	long long t0;

	if (!mkdtemp(dir) || !fts || !rec || !like)
		return 1;
	if (getenv("BENCH_CLOCK") && strcmp(getenv("BENCH_CLOCK"), "cpu") == 0)
		bench_clock = CLOCK_THREAD_CPUTIME_ID;
	snprintf(path, sizeof(path), "%s/healer.db", dir);
	snprintf(url, sizeof(url), "sqlite:%s", path);
	make_vocab();
	if (hl_store_open(&s, url, &err) < 0) { /* the schema */
		fprintf(stderr, "open: %s\n", err.msg);
		return 1;
	}
	hl_store_close(s);
	t0 = now_ns();
	if (load(path, n) < 0)
		return 1;
	fprintf(stderr, "loaded %d outcomes in %.1f s\n", n, (double)(now_ns() - t0) / 1e9);
	if (hl_store_open(&s, url, &err) < 0 || hl_store_memory_count(s, &count, &err) < 0) {
		fprintf(stderr, "open: %s\n", err.msg);
		return 1;
	}
	sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
	for (i = 0; i < q; i++) {
		char repo[64], type[32], ev[400];
		struct hl_memory_hit *h = NULL;
		struct hl_agent_record ar[HL_AGENT_RECORDS_MAX];
		json_t *hist = NULL, *ids = NULL;
		size_t nh = 0, na = 0;
		int t = rnd(TYPES);
		long long a;

		snprintf(repo, sizeof(repo), "acme/repo-%02d", rnd(REPOS));
		snprintf(type, sizeof(type), "type_%02d", t);
		line(ev, sizeof(ev), t, WORDS);
		a = now_ns();
		if (hl_store_memory_similar(
		            s, &h, &nh,
		            &(struct hl_memory_query){
		                    .repository = repo, .failure_type = type, .text = ev, .k = 5 },
		            &err) < 0) {
			fprintf(stderr, "similar: %s\n", err.msg);
			return 1;
		}
		fts[i] = now_ns() - a;
		hits += (int64_t)nh;
		hl_memory_hits_free(h, nh);
		a = now_ns();
		if (hl_memory_recall(&hist, &ids, s, repo, HL_MEMORY_SCOPE_ALL, type, ev, NULL,
		                     &err) < 0 ||
		    hl_store_agent_records(s, ar, HL_AGENT_RECORDS_MAX, &na, repo, type, &err) <
		            0) {
			fprintf(stderr, "recall: %s\n", err.msg);
			return 1;
		}
		rec[i] = now_ns() - a;
		json_decref(hist);
		json_decref(ids);
		a = now_ns();
		if (like_query(db, repo, type, ev) < 0) {
			fprintf(stderr, "like: %s\n", sqlite3_errmsg(db));
			return 1;
		}
		like[i] = now_ns() - a;
	}
	{
		double f50 = pct(fts, q, 0.50), f99 = pct(fts, q, 0.99);
		double r50 = pct(rec, q, 0.50), r99 = pct(rec, q, 0.99);
		double l50 = pct(like, q, 0.50), l99 = pct(like, q, 0.99);

		printf("memories %lld, queries %d, hits per query %.1f (k=5), %s time\n",
		       (long long)count, q, (double)hits / q,
		       bench_clock == CLOCK_MONOTONIC ? "wall" : "CPU");
		printf("fts     p50 %.3f ms  p99 %.3f ms   (goal p99 < 5 ms: %s)\n", f50, f99,
		       f99 < 5 ? "met" : "missed");
		printf("recall  p50 %.3f ms  p99 %.3f ms   (added per remediation: search, "
		       "history, agent records)\n",
		       r50, r99);
		printf("like    p50 %.3f ms  p99 %.3f ms   (baseline: plain LIKE scan)\n", l50,
		       l99);
		printf("ratio like/fts: p50 %.1fx  p99 %.1fx   (goal >= 20x: %s)\n", l50 / f50,
		       l99 / f99, l50 / f50 >= 20 && l99 / f99 >= 20 ? "met" : "missed");
	}
	sqlite3_close(db);
	hl_store_close(s);
	if (getenv("BENCH_KEEP")) {
		fprintf(stderr, "kept %s\n", dir);
		return 0;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		return 1;
	free(fts);
	free(rec);
	free(like);
	return 0;
}
