/*
 * classify_int.h - what the files of src/classify share (private to the
 * module; everything public is in classify.h):
 *
 *   rules.c    rules loading: YAML -> struct cl_rule, validation with positions
 *   db.c       the Vectorscan database (compile, embedded database, serialize),
 *              its allocator and the scratch pool
 *   clean.c    log cleaning: the copy loops and evidence text; the per-line
 *              primitives are inline below so the scanner's loop keeps them
 *   scan.c     the scan: chunks of cleaned lines, the pread window, threads
 *   score.c    scoring the rules that fired into ranked candidates
 *   verdict.c  the entry points, routing and the verdict; retry helpers
 *   explain.c  the readable account of a verdict
 *
 * Invariants (all files):
 *  - preprocessing never adds or removes a '\n', so line N of the cleaned log
 *    is line N of the original;
 *  - the classifier is read-only after construction; scratch space comes from
 *    a mutex-protected pool (one scratch per concurrent scan);
 *  - every string that leaves the module as evidence is valid UTF-8 without
 *    control characters (logs are untrusted bytes).
 */
#ifndef HL_CLASSIFY_CLASSIFY_INT_H
#define HL_CLASSIFY_CLASSIFY_INT_H

#include "catalog/catalog.h"
#include "classify/classify.h"

#include <hs/hs.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Evidence text is clipped to this many bytes. */
#define CL_MAX_LINE_TEXT 400

/* ---------------------------------------------------------------------- */
/* the rules and the classifier (rules.c, db.c)                           */

struct cl_list {
	char **v; /* NULL-terminated */
	size_t n;
};

struct cl_rule {
	char *name;
	const struct hl_catalog_type *type;
	double priority;
	bool caseless;
	bool require_context;
	struct cl_list workflow, job, step, files, events, argocd;
	size_t pat_first, n_pat;
	/* patterns [quote_first, quote_first + n_quote) only choose the line
	 * quoted when the rule wins (the first line of the first of them that
	 * matched); they never fire it */
	size_t quote_first, n_quote;
};

struct hl_classifier {
	struct cl_rule *rules;
	size_t n_rules;
	char **patterns;     /* as written */
	char **exported;     /* with "(?i)" for caseless rules */
	unsigned *pat_flags; /* Vectorscan flags */
	size_t *pat_rule;    /* the rule of a pattern; SIZE_MAX for error-line ones */
	/* the pattern whose scan results a pattern shares: identical patterns
	 * (same text and flags) are compiled once, under the first one's id */
	size_t *pat_canon;
	size_t n_pat;
	/* patterns [quote_first, n_pat) are built in, not a rule's: they find the
	 * last error-looking line, quoted when no log rule fired */
	size_t quote_first;
	double recency_bonus, context_bonus, files_bonus;
	hs_database_t *db;
	/* the whole patterns of those db holds only by literals (gate.c),
	 * run over the lines where a gate matched; gated[id] marks their ids */
	hs_database_t *gate_db;
	unsigned char *gated;
	size_t n_gated;
	hs_scratch_t *proto; /* fits both databases */
	pthread_mutex_t lock;
	hs_scratch_t **pool;
	size_t n_pool, cap_pool;
	/* per pattern id: its PCRE2 code confirming Vectorscan's matches
	 * (verify.c), CL_VERIFY_NONE for none, 0 until first needed */
	_Atomic uintptr_t *verify;
	_Atomic unsigned *verify_n; /* its matches confirmed so far */
	void **verify_old;          /* the code a JIT-compiled copy replaced */
};

/* verify.c: whether pattern id matches line[0, len) (a line of the scanned
 * text, without its '\n'): if not, Vectorscan's matches ending on it are
 * false ones; md from cl_verify_md_new, one per thread. */
#define CL_VERIFY_NONE ((uintptr_t)1)
int cl_verify_init(struct hl_classifier *c);
void cl_verify_release(struct hl_classifier *c);
bool cl_verify_line(struct hl_classifier *c, void *md, unsigned id, const char *line, size_t len);
void *cl_verify_md_new(void);
void cl_verify_md_free(void *md);

/* Whether a match of pattern id is taken as Vectorscan reports it (one of
 * a pattern verify.c does not confirm, once its slot says so). */
static inline bool
cl_verify_skip(const struct hl_classifier *c, unsigned id)
{
	return atomic_load_explicit(&c->verify[id], memory_order_relaxed) == CL_VERIFY_NONE;
}

/* db.c: the pool lock; the database, scratch space and lock are released by
 * cl_db_release (a NULL database is fine). */
void cl_db_init(struct hl_classifier *c);
void cl_db_release(struct hl_classifier *c);

/*
 * The gate of a pattern scanned in two steps: the literals, one of which
 * every match holds (its longest literal, or a few when that has
 * alternatives: "npm (ERR!|error) "), as patterns in a NULL-terminated
 * array (one malloc'd block). The main database holds the gate, the
 * gated database the whole pattern, scanned over the lines where the gate
 * matched. NULL when the pattern is scanned whole (or on OOM, which scans
 * it whole too).
 */
char **cl_gate_literals(const char *pat);

/*
 * Compiles the n patterns (with their Vectorscan flags and match ids) into
 * c->db and c->gate_db: gate[k] (NULL on entry) becomes pattern k's gate
 * (cl_gate_literals), whose literals c->db holds under the pattern's id
 * and flags, and the whole pattern goes to c->gate_db (c->gated set); the
 * caller frees the gates. A gate Vectorscan rejects is dropped (the
 * pattern is compiled whole). Allocates the prototype scratch. With
 * embedded, the databases built into the binary (gen_db.c) are used
 * instead when they were built for a rule set of n_all patterns and fit
 * this CPU. When Vectorscan rejects pattern k, *bad is k and err says why;
 * any other failure leaves *bad at SIZE_MAX.
 */
int cl_db_build(struct hl_classifier *c, char *const *pats, const unsigned *flags,
                const unsigned *ids, char ***gate, size_t n, size_t n_all, bool embedded,
                size_t *bad, struct hl_err *err);

/* hs_scan (flags 0) with the code this CPU scans right with (db.c). */
hs_error_t cl_hs_scan(const hs_database_t *db, const char *data, unsigned len,
                      hs_scratch_t *scratch, match_event_handler on_match, void *ctx);

/* A scratch for one scan (from the pool or cloned; NULL on OOM), and back. */
hs_scratch_t *cl_scratch_get(struct hl_classifier *c);
void cl_scratch_put(struct hl_classifier *c, hs_scratch_t *s);

/*
 * Memory for big buffers is mapped with its pages populated in one call: on
 * the VMs we measured, a page fault costs ~14 us per 4 KB page and populating
 * ~4 us, and a classification touches a few hundred fresh pages (the
 * 470 KB pattern database, scratch space, per-thread buffers).
 */
#if defined(__SANITIZE_ADDRESS__)
#define CL_POPULATE_MIN SIZE_MAX /* keep every buffer on the checked heap */
#else
#define CL_POPULATE_MIN (64u << 10)
#endif

/* n bytes of zeroed memory mapped with its pages populated (munmap it);
 * NULL on failure. */
void *cl_big_alloc(size_t n);

/* ---------------------------------------------------------------------- */
/* cleaning (clean.c; the per-line primitives inline here)                */

/* Length of a GitHub Actions timestamp prefix "2024-01-15T10:30:00.1234567Z "
 * at p (0 if none). Always inlined: a copy called from the AVX2 line loop
 * (scan.c) would run its SSE code after 256-bit instructions left the
 * registers' upper halves in use, which Intel CPUs make slow. */
static inline __attribute__((always_inline)) size_t
cl_timestamp_len(const char *p, size_t n)
{
	size_t i;

	if (n < 20 || p[4] != '-' || p[10] != 'T' || p[13] != ':')
		return 0;
#if defined(__SSE2__)
	{
		/* "dddd-dd-ddTdd:dd:dd": bytes 0-15 and 3-18 at once. */
		const __m128i lo = _mm_set1_epi8('0' - 1), hi = _mm_set1_epi8('9' + 1);
		__m128i a = _mm_loadu_si128((const __m128i *)(const void *)p);
		__m128i b = _mm_loadu_si128((const __m128i *)(const void *)(p + 3));
		unsigned da = (unsigned)_mm_movemask_epi8(
		        _mm_and_si128(_mm_cmpgt_epi8(a, lo), _mm_cmplt_epi8(a, hi)));
		unsigned db = (unsigned)_mm_movemask_epi8(
		        _mm_and_si128(_mm_cmpgt_epi8(b, lo), _mm_cmplt_epi8(b, hi)));
		/* digits at 0-3,5-6,8-9,11-12,14-15 (a) and 17-18 (b bits 14-15) */
		if ((da & 0xdb6f) != 0xdb6f || (db & 0xc000) != 0xc000 || p[7] != '-' ||
		    p[16] != ':')
			return 0;
		i = 19;
		if (p[19] == '.' && n >= 36) {
			/* the fraction's digits: bytes 20-35 at once */
			__m128i c = _mm_loadu_si128((const __m128i *)(const void *)(p + 20));
			unsigned dc = (unsigned)_mm_movemask_epi8(
			        _mm_and_si128(_mm_cmpgt_epi8(c, lo), _mm_cmplt_epi8(c, hi)));
			i = 20 + (size_t)__builtin_ctz(~dc); /* at most 36 */
		}
	}
#else
	{
		static const char shape[] = "dddd-dd-ddTdd:dd:dd";
		for (i = 0; i < 19; i++) {
			if (shape[i] == 'd' ? (p[i] < '0' || p[i] > '9') : p[i] != shape[i])
				return 0;
		}
	}
#endif
	if (i == 19 && p[i] == '.') {
		i++;
		while (i < n && i < 40 && p[i] >= '0' && p[i] <= '9')
			i++;
	} else if (i == 36) { /* 16 digits: the rest, up to byte 40 */
		while (i < n && i < 40 && p[i] >= '0' && p[i] <= '9')
			i++;
	}
	if (i < n && p[i] == 'Z')
		i++;
	else if (i + 6 <= n && (p[i] == '+' || p[i] == '-') && p[i + 3] == ':' && p[i + 1] >= '0' &&
	         p[i + 1] <= '9' && p[i + 5] >= '0' && p[i + 5] <= '9')
		i += 6;
	else
		return 0;
	if (i < n && p[i] == ' ')
		i++;
	return i;
}

/* Length of the escape sequence starting with ESC at p[0] (ECMA-48): a CSI,
 * an OSC (its string runs to BEL or ESC \\; one left open runs to the line
 * end), an nF escape (intermediates 0x20-0x2f and a final byte, such as the
 * "ESC ( B" of tput sgr0) or ESC and one byte. Never past a '\n'. */
static inline size_t
cl_escape_len(const char *p, size_t n)
{
	size_t i = 1;

	if (n < 2)
		return 1;
	if (p[1] == '[') { /* CSI: params, intermediates, final byte */
		i = 2;
		while (i < n && (unsigned char)p[i] >= 0x20 && (unsigned char)p[i] <= 0x3f)
			i++;
		if (i < n && (unsigned char)p[i] >= 0x40 && (unsigned char)p[i] <= 0x7e)
			i++;
		return i;
	}
	if (p[1] == ']') { /* OSC: up to BEL or ESC \, else the line end */
		/* one pass over what it consumes: the cost of a log stays linear
		 * however many OSCs a line holds */
		for (i = 2; i < n && p[i] != '\n'; i++) {
			if (p[i] == '\a')
				return i + 1;
			if (p[i] == 0x1b && i + 1 < n && p[i + 1] == '\\')
				return i + 2;
		}
		return i; /* never swallow a line end */
	}
	if ((unsigned char)p[1] >= 0x20 && (unsigned char)p[1] <= 0x2f) { /* nF */
		i = 2;
		while (i < n && (unsigned char)p[i] >= 0x20 && (unsigned char)p[i] <= 0x2f)
			i++;
		if (i < n && (unsigned char)p[i] >= 0x30 && (unsigned char)p[i] <= 0x7e)
			i++;
		return i;
	}
	return p[1] == '\n' ? 1 : 2; /* two-byte sequence: ESC + one char */
}

static inline bool
cl_has_prefix(const char *p, size_t n, const char *lit)
{
	size_t l = strlen(lit);
	return n >= l && memcmp(p, lit, l) == 0;
}

/*
 * Whether p[0, n) is a CI system's own "the step failed with exit code N"
 * line, which only says that something above failed: GitHub Actions,
 * Azure Pipelines (after "##[error]"), Jenkins, GitLab and CircleCI.
 */
static inline bool
cl_is_exit_wrapper(const char *p, size_t n)
{
#define CL_PREFIX(lit) (n >= sizeof(lit) - 1 && memcmp(p, lit, sizeof(lit) - 1) == 0)
	/* by first byte: most lines are rejected by one compare */
	if (n < 21)
		return false;
	switch (p[0]) {
	case 'P':
		return CL_PREFIX("Process completed with exit code") ||
		       CL_PREFIX("PowerShell exited with code");
	case '[':
		return p[1] == 'e' && CL_PREFIX("[error]Process completed with exit code");
	case 'B':
		return CL_PREFIX("Bash exited with code");
	case 'S':
		return CL_PREFIX("Script failed with exit code");
	case 'C':
		return CL_PREFIX("Cmd.exe exited with code");
	case 'E':
		return p[1] == 'R' ? CL_PREFIX("ERROR: script returned exit code") ||
		                             CL_PREFIX("ERROR: Job failed: exit code")
		                   : CL_PREFIX("Exited with code exit status");
	default:
		return false;
	}
#undef CL_PREFIX
}

/* Post-processes one cleaned line in place; returns its new length. */
static inline size_t
cl_clean_line(char *s, size_t n)
{
	const char *q;
	size_t m;

	while (n > 0 && s[n - 1] == '\r')
		n--;
	if (n == 0 || (s[0] != '#' && s[0] != 'P' && s[0] != 'E' && s[0] != '['))
		return n;
	if (cl_has_prefix(s, n, "##[group]")) {
		memmove(s, s + 9, n - 9);
		return n - 9;
	}
	if (cl_has_prefix(s, n, "##[endgroup]"))
		return 0;
	if (s[0] == '#' && n > 1 && s[1] >= '0' && s[1] <= '9') {
		/* BuildKit plain progress "#12 4.211 text": keep the text, so
		 * anchored patterns see what the build step printed. */
		size_t k = 1;
		while (k < n && s[k] >= '0' && s[k] <= '9')
			k++;
		if (k < n && s[k] == ' ') {
			size_t t = ++k;
			while (k < n && s[k] >= '0' && s[k] <= '9')
				k++;
			if (k > t && k < n && s[k] == '.') {
				k++;
				while (k < n && s[k] >= '0' && s[k] <= '9')
					k++;
				if (k < n && s[k] == ' ') {
					k++;
					memmove(s, s + k, n - k);
					return n - k;
				}
				if (k == n)
					return 0; /* a bare "#12 4.211" */
			}
		}
		return n;
	}
	/* Boilerplate that hides the real error (after pytorch's classifier). */
	q = s;
	m = n;
	if (cl_has_prefix(q, m, "##[error]")) {
		q += 9;
		m -= 9;
	}
	if (cl_has_prefix(q, m, "Error: ")) {
		q += 7;
		m -= 7;
	}
	/* ... except exit codes 137 and 143 (SIGKILL, usually the OOM killer;
	 * SIGTERM, the runner stopping the step). */
	if (cl_is_exit_wrapper(q, m) && memmem(q, m, "137", 3) == NULL &&
	    memmem(q, m, "143", 3) == NULL)
		return 0;
	return n;
}

/*
 * Copies bytes from src[*i] to dst[*o] until a '\n' or ESC (returned, and left
 * at src[*i]) or until n or the output limit lim (returns 0). dst must have 16
 * bytes of slack past lim (32 with AVX2). cl_clean_init picks the fastest
 * version for this CPU (thread-safe, idempotent) and sets cl_have_avx2.
 */
extern int (*cl_copy_fn)(char *dst, size_t *o, size_t lim, const char *src, size_t *i, size_t n);
extern bool cl_have_avx2;
void cl_clean_init(void);

/* Cleans one line (without its '\n') into dst, at most max bytes: no
 * timestamp, escape sequences, group markers or boilerplate. */
size_t cl_clean_line_into(char *dst, size_t max, const char *src, size_t n);

/* A malloc'd copy of a line as valid UTF-8 without control characters,
 * trimmed and clipped to CL_MAX_LINE_TEXT bytes; NULL on OOM. */
char *cl_line_text(const char *p, size_t n);

/* ---------------------------------------------------------------------- */
/* scanning (scan.c)                                                      */

/*
 * The log is cleaned and scanned in chunks of whole lines (patterns never
 * span lines, so this finds exactly what one scan of the whole cleaned log
 * would), into one reusable buffer: no copy of the whole log is made. Per
 * pattern the scan keeps the match count and the lines of the first and the
 * last match (1-based number and raw offset of its start, for re-reading the
 * text): the last dates the evidence, the first is the one quoted (of errors
 * that repeat, the first is the cause and the rest cascade).
 */
#define CL_CHUNK    (256u * 1024u)
#define CL_LINE_MAX (64u * 1024u) /* longer lines are matched on a prefix */

struct cl_scan {
	size_t *count;
	size_t *line;  /* line number of the last match; 0 = none */
	size_t *raw;   /* raw offset of that line */
	size_t *local; /* chunk-local end offset of the last match */
	size_t *first; /* line number of the first match; 0 = none */
	size_t *first_raw;
	size_t *flocal;  /* chunk-local end offset of the chunk's first match
	                  * while first is 0; 0 = none */
	unsigned *dirty; /* patterns that matched in the current chunk */
	unsigned char *in_dirty;
	size_t n_dirty;
	/* line starts of the current chunk: cleaned and raw offsets */
	size_t *lc, *lr;
	size_t n_lines, cap_lines;
	/* gated patterns (gate.c): the chunk, and a match end in each of its
	 * lines where a gate matched (at most one per line: cap_lines); the
	 * last such line ends at gate_skip. Those lines are copied into gbuf
	 * (gcap bytes), line k of it at gate_off[k], gate_at[k] becoming its
	 * chunk line, and scanned there by the gated database (or the chunk
	 * is, when those lines make up half of it). */
	const unsigned char *gated;
	const char *chunk;
	size_t chunk_len;
	size_t *gate_at, *gate_off;
	size_t n_gate, gate_skip;
	char *gbuf;
	size_t gcap;
	bool gate_copied; /* gated matches are at gbuf offsets */
	/* the classifier whose matches are confirmed (verify.c), this scan's
	 * PCRE2 match data, and per pattern the last line confirmed (chunk
	 * vgen[id], its bytes [vstart[id], vend[id]) there) and its verdict */
	struct hl_classifier *cls;
	void *md;
	size_t *vgen, *vstart, *vend;
	unsigned char *vok;
	size_t gen;
};

/*
 * Where the raw log comes from: memory (mem != NULL; the whole log) or a
 * regular file read with pread(2) into a small window that stays in cache.
 * Reading beats mmap here: mapping 100 MB costs a page-table entry per 4 KB
 * page (populated and torn down by the kernel, slow under virtualization)
 * while copying from the page cache into a reused 256 KB window runs at
 * memory speed and hands the cleaner cache-hot bytes.
 */
struct cl_src {
	const char *mem;
	int fd;
	size_t len;
};

int cl_scan_alloc(struct cl_scan *s, size_t n_pat);
void cl_scan_release(struct cl_scan *s);

/* Cleans and scans the whole log into s (allocated by the caller with
 * cl_scan_alloc), on up to 4 threads for big logs; sets *total_lines. */
int cl_scan_log(struct hl_classifier *c, struct cl_scan *s, const struct cl_src *src,
                size_t *total_lines, struct hl_err *err);

/* The cleaned, printable text of the raw line starting at raw offset off;
 * NULL on OOM or a read error. */
char *cl_raw_line_text(const struct cl_src *src, size_t off);

/* ---------------------------------------------------------------------- */
/* scoring (score.c)                                                      */

/* A rule that fired (see struct hl_classify_candidate for the parts). */
struct cl_cand {
	size_t rule;
	enum hl_classify_evidence evidence;
	double score, tiebreak, recency, context, files;
	size_t line;    /* line of the rule's last match; 0 = none */
	size_t ev_line; /* the line to quote: first match of its first listed
	                 * quote pattern, else rule pattern, that matched */
	size_t ev_raw;  /* raw offset of that line */
	size_t matches;
	const char *why;
	/* the context that fired it, for the evidence reason: what ("job
	 * name", "ArgoCD sync status", "event", ...) and the value (borrowed
	 * from the input); files_hit of the changed files matched */
	const char *ctx_what, *ctx_value;
	size_t files_hit;
	bool picked; /* verdict.c: kept among the verdict's candidates */
};

/* True when a glob matches path (a glob without '/' matches the base name). */
bool cl_glob_any(const char *const *globs, const char *path);

/*
 * Scores every rule of c that fired for in and the scan sc into cands (room
 * for c->n_rules), ranked best first (evidence kind, score, tie-break, later
 * line, file order); returns how many.
 */
size_t cl_score(struct cl_cand *cands, const struct hl_classifier *c,
                const struct hl_classify_input *in, const struct cl_scan *sc, size_t total_lines);

#endif
