/*
 * scan.c - one pass over the log: its lines are cleaned in chunks into one
 * reusable 256 KB buffer and each chunk is scanned once by the rule set's
 * Vectorscan database; per pattern the scan records the number of matches
 * and the lines of the first and the last one. Nothing else is done per
 * byte, so the cost is one pass whatever the number of rules. Patterns
 * gated by a literal (gate.c) are then scanned whole over the lines where
 * it matched, copied together.
 *
 * A log in memory is read in place; a log file (hl_classify_fd) is read with
 * pread through a 256 KB window per thread, and with AVX2 its plain lines
 * take a branch-light copy (cl_fast_lines_avx2). Logs of 16 MB and more are
 * split at line ends into segments scanned by up to 4 threads, whose results
 * are merged (counts add up, the last match is in the latest segment).
 *
 * Throughput notes (2-core VM, 100 MB bench log): about half the CPU time is
 * the Vectorscan scan, a fifth the cleaning, the rest the kernel (page
 * cache copies, page faults: ~14 us each there, hence the populated
 * mappings) and process start-up.
 */
#include "classify/classify_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

static size_t cl_chunk_line(const struct cl_scan *s, size_t end);

/* Whether pattern id matches on the line of a match ending at to
 * (verify.c), asked once per line and pattern. */
static bool
cl_confirm(struct cl_scan *s, unsigned id, size_t to)
{
	size_t lo, start, end;

	/* the line of the pattern's last match end: its answer stands */
	if (s->vgen[id] == s->gen && to > s->vstart[id] && to <= s->vend[id])
		return s->vok[id];
	lo = cl_chunk_line(s, to);
	start = s->lc[lo];
	end = lo + 1 < s->n_lines ? s->lc[lo + 1] : s->chunk_len;
	if (end > start && s->chunk[end - 1] == '\n')
		end--;
	s->vgen[id] = s->gen;
	s->vstart[id] = start;
	s->vend[id] = end;
	s->vok[id] = cl_verify_line(s->cls, s->md, id, s->chunk + start, end - start);
	return s->vok[id];
}

static inline void
cl_record(struct cl_scan *s, unsigned id, size_t to)
{
	if (!cl_verify_skip(s->cls, id) && !cl_confirm(s, id, to))
		return; /* a false match of Vectorscan's */
	s->local[id] = to;
	if (s->first[id] == 0 && s->flocal[id] == 0)
		s->flocal[id] = to; /* > 0: patterns never match empty */
	s->count[id]++;
	if (!s->in_dirty[id]) {
		s->in_dirty[id] = 1;
		s->dirty[s->n_dirty++] = id;
	}
}

static int
cl_on_match(unsigned int id, unsigned long long from, unsigned long long to, unsigned int flags,
            void *ctx)
{
	struct cl_scan *s = ctx;
	(void)from;
	(void)flags;
	if (s->gated[id]) { /* a gate: its line is scanned for the whole patterns */
		if (s->n_gate == 0 || to > s->gate_skip) {
			const char *nl = memchr(s->chunk + to, '\n', s->chunk_len - (size_t)to);
			s->gate_skip = nl ? (size_t)(nl - s->chunk) : s->chunk_len;
			s->gate_at[s->n_gate++] = (size_t)to;
		}
		return 0;
	}
	cl_record(s, id, (size_t)to);
	return 0;
}

static int
cl_on_gated_match(unsigned int id, unsigned long long from, unsigned long long to,
                  unsigned int flags, void *ctx)
{
	struct cl_scan *s = ctx;
	size_t end = (size_t)to;
	(void)from;
	(void)flags;
	/* an offset in gbuf: back to the chunk's (gate_off[lo] <= the last byte) */
	if (s->gate_copied) {
		size_t lo = 0, hi = s->n_gate;
		while (hi - lo > 1) {
			size_t mid = lo + (hi - lo) / 2;
			if (s->gate_off[mid] <= end - 1)
				lo = mid;
			else
				hi = mid;
		}
		end = s->lc[s->gate_at[lo]] + (end - s->gate_off[lo]);
	}
	cl_record(s, id, end);
	return 0;
}

/* The chunk line holding the match that ends at chunk-local offset end. */
static size_t
cl_chunk_line(const struct cl_scan *s, size_t end)
{
	size_t last = end > 0 ? end - 1 : 0; /* the match's last byte */
	size_t lo = 0, hi = s->n_lines;      /* lc[lo] <= last */

	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->lc[mid] <= last)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/*
 * Scans the chunk's lines where a gate matched with the whole gated
 * patterns, in one call: copied one after the other into gbuf (each line
 * with its '\n': the same context as in the chunk, so the same matches),
 * or, when they make up half the chunk or more, the chunk itself (a gated
 * pattern matches only on a line where its gate did).
 */
static int
cl_scan_gated(const struct hl_classifier *c, struct cl_scan *s, hs_scratch_t *scratch)
{
	const char *p = s->chunk;
	size_t bytes = 0, o = 0;
	hs_error_t e;

	if (s->n_gate == 0)
		return 0;
	for (size_t g = 0; g < s->n_gate; g++) {
		size_t lo = cl_chunk_line(s, s->gate_at[g]);
		size_t end = lo + 1 < s->n_lines ? s->lc[lo + 1] : s->chunk_len;
		s->gate_at[g] = lo;
		bytes += end - s->lc[lo];
	}
	s->gate_copied = bytes * 2 < s->chunk_len;
	if (s->gate_copied) {
		if (bytes > s->gcap) {
			size_t cap = s->gcap ? s->gcap : 16384;
			while (cap < bytes)
				cap *= 2;
			char *b = realloc(s->gbuf, cap);
			if (b == NULL)
				return -HL_ENOMEM;
			s->gbuf = b;
			s->gcap = cap;
		}
		for (size_t g = 0; g < s->n_gate; g++) {
			size_t lo = s->gate_at[g];
			size_t end = lo + 1 < s->n_lines ? s->lc[lo + 1] : s->chunk_len;
			s->gate_off[g] = o;
			memcpy(s->gbuf + o, s->chunk + s->lc[lo], end - s->lc[lo]);
			o += end - s->lc[lo];
		}
		p = s->gbuf;
	} else {
		o = s->chunk_len;
	}
	e = cl_hs_scan(c->gate_db, p, (unsigned)o, scratch, cl_on_gated_match, s);
	s->n_gate = 0;
	return e == HS_SUCCESS ? 0 : -1;
}

/* Maps the chunk's matches to lines; first_line is the chunk's first line. */
static void
cl_scan_settle(struct cl_scan *s, size_t first_line)
{
	for (size_t d = 0; d < s->n_dirty; d++) {
		unsigned id = s->dirty[d];
		size_t lo = cl_chunk_line(s, s->local[id]);
		s->line[id] = first_line + lo;
		s->raw[id] = s->lr[lo];
		if (s->first[id] == 0) {
			lo = cl_chunk_line(s, s->flocal[id]);
			s->first[id] = first_line + lo;
			s->first_raw[id] = s->lr[lo];
			s->flocal[id] = 0;
		}
		s->in_dirty[id] = 0;
	}
	s->n_dirty = 0;
}

void
cl_scan_release(struct cl_scan *s)
{
	free(s->count);
	free(s->line);
	free(s->raw);
	free(s->local);
	free(s->first);
	free(s->first_raw);
	free(s->flocal);
	free(s->dirty);
	free(s->in_dirty);
	free(s->lc);
	free(s->lr);
	free(s->gate_at);
	free(s->gate_off);
	free(s->gbuf);
	cl_verify_md_free(s->md);
	free(s->vgen);
	free(s->vstart);
	free(s->vend);
	free(s->vok);
}

#define CL_WINDOW (256u * 1024u) /* raw bytes read at a time (> CL_LINE_MAX) */

#define CL_WORDS (CL_WINDOW / 64)

/* A view of the raw log: p[0, n) is raw bytes base.., p[0, m) whole lines. */
struct cl_win {
	const struct cl_src *src;
	char *buf; /* fd mode: CL_WINDOW bytes and 128 of slack */
	const char *p;
	size_t base, n, m, end;
	bool eof;
	bool skip_nl; /* fd mode: drop the rest of an over-long line first */
	/* fd mode with AVX2: bit j of nl[k] (esc[k]) is set when p[64k + j]
	 * is '\n' (ESC), for the n bytes read (NULL otherwise) */
	uint64_t *nl, *esc;
};

#if defined(__x86_64__) && defined(__GNUC__)
/* Fills the '\n' and ESC bitmaps of p[0, n) (p readable up to n + 63). */
__attribute__((target("avx2"))) static void
cl_win_bits_avx2(const char *p, size_t n, uint64_t *nl, uint64_t *esc)
{
	const __m256i vnl = _mm256_set1_epi8('\n'), vesc = _mm256_set1_epi8(0x1b);

	for (size_t k = 0; k * 64 < n; k++) {
		__m256i a = _mm256_loadu_si256((const __m256i *)(const void *)(p + k * 64));
		__m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(p + k * 64 + 32));
		nl[k] = (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(a, vnl)) |
		        (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(b, vnl)) << 32;
		esc[k] = (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(a, vesc)) |
		         (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(b, vesc)) << 32;
	}
}

/* True when a bit in [a, b) of the bitmap is set (a < b). */
static inline bool
cl_bits_any(const uint64_t *bits, size_t a, size_t b)
{
	size_t ka = a >> 6, kb = (b - 1) >> 6;
	uint64_t last = (uint64_t)2 << ((b - 1) & 63); /* 0 when bit 63 */

	if (ka == kb)
		return ((bits[ka] & (last - 1)) >> (a & 63)) != 0;
	if ((bits[ka] >> (a & 63)) != 0 || (bits[kb] & (last - 1)) != 0)
		return true;
	for (size_t k = ka + 1; k < kb; k++)
		if (bits[k] != 0)
			return true;
	return false;
}

/*
 * The common case of cl_scan_segment's line loop, for a window with
 * bitmaps: lines shorter than CL_LINE_MAX, ended by a '\n' before w->m.
 * Without escapes they are cleaned with a fixed two-vector copy (most lines
 * fit in 64 bytes, so there is no loop exit to mispredict); with escapes the
 * text between them is copied, the escapes found from the bitmap. Stops at
 * the first other line (left to the general code), at o >= CL_CHUNK or when
 * the line arrays are full. Produces exactly what the general code would.
 */
__attribute__((target("avx2"))) static size_t
cl_fast_lines_avx2(struct cl_scan *s, char *buf, size_t o, const struct cl_win *w, size_t *ip,
                   size_t *linep)
{
	const char *log = w->p;
	size_t i = *ip, line = *linep, m = w->m;

	while (o < CL_CHUNK && s->n_lines < s->cap_lines && i < m) {
		size_t k = i >> 6, e, ts, len;
		uint64_t bits = w->nl[k] & (~(uint64_t)0 << (i & 63));
		while (bits == 0) {
			if (++k * 64 >= m)
				goto stop;
			bits = w->nl[k];
		}
		e = k * 64 + (size_t)__builtin_ctzll(bits);
		if (e >= m || e - i >= CL_LINE_MAX)
			break;
		ts = cl_timestamp_len(log + i, m - i);
		len = e - i - ts;
		s->lc[s->n_lines] = o;
		s->lr[s->n_lines] = w->base + i;
		s->n_lines++;
		if (e > i && cl_bits_any(w->esc, i, e)) {
			/* copy the text between escape sequences */
			size_t cur = i + ts, oo = o;
			while (cur < e) {
				size_t q = cur >> 6, p;
				uint64_t eb = w->esc[q] & (~(uint64_t)0 << (cur & 63));
				while (eb == 0 && (q + 1) * 64 < e)
					eb = w->esc[++q];
				p = eb ? q * 64 + (size_t)__builtin_ctzll(eb) : e;
				if (p > e)
					p = e;
				for (size_t c = 0; c < p - cur; c += 32)
					_mm256_storeu_si256(
					        (__m256i *)(void *)(buf + oo + c),
					        _mm256_loadu_si256(
					                (const __m256i *)(const void *)(log + cur +
					                                                c)));
				oo += p - cur;
				cur = p;
				if (cur < e)
					cur += cl_escape_len(log + cur, m - cur);
			}
			len = oo - o;
			if (len > 0)
				len = cl_clean_line(buf + o, len);
		} else {
			const char *src = log + i + ts;
			char *dst = buf + o;
			_mm256_storeu_si256((__m256i *)(void *)dst,
			                    _mm256_loadu_si256((const __m256i *)(const void *)src));
			_mm256_storeu_si256(
			        (__m256i *)(void *)(dst + 32),
			        _mm256_loadu_si256((const __m256i *)(const void *)(src + 32)));
			for (size_t c = 64; c < len; c += 32)
				_mm256_storeu_si256(
				        (__m256i *)(void *)(dst + c),
				        _mm256_loadu_si256(
				                (const __m256i *)(const void *)(src + c)));
			if (len > 0 && (dst[len - 1] == '\r' || dst[0] == '#' || dst[0] == 'P' ||
			                dst[0] == 'E' || dst[0] == '['))
				len = cl_clean_line(dst, len);
		}
		o += len;
		buf[o++] = '\n';
		line++;
		i = e + 1;
	}
stop:
	*ip = i;
	*linep = line;
	return o;
}
#endif

/* Reads up to want bytes at off; returns how many (short only at EOF). */
static int
cl_pread_full(int fd, char *dst, size_t want, size_t off, size_t *got)
{
	*got = 0;
	while (*got < want) {
		ssize_t r = pread(fd, dst + *got, want - *got, (off_t)(off + *got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		*got += (size_t)r;
	}
	return 0;
}

/* Slides the window past p[0, *i) and reads more (fd mode). */
static int
cl_win_fill(struct cl_win *w, size_t *i, struct hl_err *err)
{
	size_t keep = w->n - *i, got = 0, want;

	memmove(w->buf, w->buf + *i, keep);
	w->base += *i;
	*i = 0;
	want = CL_WINDOW - keep;
	if (want > w->end - (w->base + keep))
		want = w->end - (w->base + keep);
	if (cl_pread_full(w->src->fd, w->buf + keep, want, w->base + keep, &got) != 0)
		return hl_err_set(err, HL_EIO, "reading the log: %s", strerror(errno));
	w->n = keep + got;
	if (got < want) /* the file shrank: stop where it ends now */
		w->end = w->base + w->n;
	w->eof = w->base + w->n >= w->end;
#if defined(__x86_64__) && defined(__GNUC__)
	if (w->nl != NULL)
		cl_win_bits_avx2(w->buf, w->n, w->nl, w->esc);
#endif
	if (w->skip_nl) {
		const char *nl = memchr(w->buf, '\n', w->n);
		*i = nl ? (size_t)(nl - w->buf) + 1 : w->n;
		w->skip_nl = nl == NULL;
	}
	if (w->eof) {
		w->m = w->n;
	} else {
		const char *nl = memrchr(w->buf + *i, '\n', w->n - *i);
		if (nl != NULL) {
			w->m = (size_t)(nl - w->buf) + 1;
		} else if (*i == 0) {
			/* One line fills the window: match its prefix (as for a
			 * log in memory) and skip its rest. */
			w->m = w->n;
			w->skip_nl = true;
		} else {
			w->m = *i; /* a partial line: read on */
		}
	}
	return 0;
}

/* Cleans and scans the whole lines in log[start, end) (start is 0 or just
 * after a '\n'); line numbers in s count from the segment's first line; raw
 * offsets are absolute. Sets *total_lines to the segment's number of lines. */
static int
cl_scan_segment(struct hl_classifier *c, struct cl_scan *s, const struct cl_src *src, size_t start,
                size_t end, size_t *total_lines, struct hl_err *err)
{
	char *buf = NULL, *mem = NULL;
	hs_scratch_t *scratch = NULL;
	size_t line = 1, first_line = 1, i = start;
	/* one block: cleaned chunk, then (file) window and bitmaps */
	const size_t buf_len = CL_CHUNK + CL_LINE_MAX + 64, win_len = CL_WINDOW + 128;
	const size_t bits_len = CL_WORDS * sizeof(uint64_t);
	size_t mem_len = buf_len;
	bool mapped = false;
	struct cl_win w;
	bool done = false;
	int rc = 0;

	*total_lines = 0;
	if (start >= end)
		return 0;
	s->gated = c->gated;
	s->cls = c;
	cl_clean_init();
	memset(&w, 0, sizeof(w));
	w.src = src;
	w.end = end;
	if (src->mem != NULL) {
		w.p = src->mem;
		w.n = w.m = end;
		w.eof = true;
	} else {
		mem_len += win_len + (cl_have_avx2 ? 2 * bits_len : 0);
	}
	/* small segments touch few pages: let them fault */
	mapped = end - start >= CL_CHUNK && mem_len >= CL_POPULATE_MIN;
	mem = mapped ? cl_big_alloc(mem_len) : calloc(1, mem_len);
	if (mem != NULL) {
		buf = mem;
		if (src->mem == NULL) {
			w.buf = mem + buf_len;
			w.p = w.buf;
			w.base = start;
			i = 0;
			if (cl_have_avx2) {
				w.nl = (uint64_t *)(void *)(mem + buf_len + win_len);
				w.esc = (uint64_t *)(void *)(mem + buf_len + win_len + bits_len);
			}
		}
	}
	scratch = cl_scratch_get(c);
	if (mem == NULL || scratch == NULL) {
		rc = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	if (src->mem == NULL && (rc = cl_win_fill(&w, &i, err)) != 0)
		goto out;
	if (start == 0 && w.n >= 3 && memcmp(w.p, "\xef\xbb\xbf", 3) == 0)
		i = 3;
	while (!done) {
		size_t o = 0;
		s->n_lines = 0;
		first_line = line;
		while (o < CL_CHUNK) {
			const char *log = w.p;
			size_t n = w.m;
			if (i >= n) {
				if (w.eof) {
					done = true;
					break;
				}
				if ((rc = cl_win_fill(&w, &i, err)) != 0)
					goto out;
				continue;
			}
			if (s->n_lines == s->cap_lines) {
				size_t cap = s->cap_lines ? s->cap_lines * 2 : 4096;
				size_t *a = realloc(s->lc, cap * sizeof(*a));
				if (a == NULL) {
					rc = hl_err_set(err, HL_ENOMEM, "out of memory");
					goto out;
				}
				s->lc = a;
				a = realloc(s->lr, cap * sizeof(*a));
				if (a == NULL) {
					rc = hl_err_set(err, HL_ENOMEM, "out of memory");
					goto out;
				}
				s->lr = a;
				a = realloc(s->gate_at, cap * sizeof(*a));
				if (a == NULL) {
					rc = hl_err_set(err, HL_ENOMEM, "out of memory");
					goto out;
				}
				s->gate_at = a;
				a = realloc(s->gate_off, cap * sizeof(*a));
				if (a == NULL) {
					rc = hl_err_set(err, HL_ENOMEM, "out of memory");
					goto out;
				}
				s->gate_off = a;
				s->cap_lines = cap;
			}
#if defined(__x86_64__) && defined(__GNUC__)
			if (w.nl != NULL) {
				size_t o0 = o;
				o = cl_fast_lines_avx2(s, buf, o, &w, &i, &line);
				if (o != o0)
					continue;
			}
#endif
			s->lc[s->n_lines] = o;
			s->lr[s->n_lines] = w.base + i;
			s->n_lines++;
			/* In memory, touch the log a few pages ahead: with 4 KB
			 * pages the hardware prefetcher stops at page ends. */
			if (w.buf == NULL && i + 16384 < n)
				__builtin_prefetch(log + i + 16384);
			i += cl_timestamp_len(log + i, n - i);
			size_t lstart = o, lim = o + CL_LINE_MAX;
			for (;;) {
				int ch = cl_copy_fn(buf, &o, lim, log, &i, n);
				if (ch == 0x1b) {
					i += cl_escape_len(log + i, n - i);
					continue;
				}
				if (ch == 0 && i < n) { /* line too long: skip its rest */
					const char *nl = memchr(log + i, '\n', n - i);
					i = nl ? (size_t)(nl - log) : n;
				}
				break;
			}
			o = lstart + cl_clean_line(buf + lstart, o - lstart);
			buf[o++] = '\n';
			line++;
			if (i < n)
				i++; /* the '\n' */
		}
		s->chunk = buf;
		s->chunk_len = o;
		s->gen++; /* the lines confirmed so far were another chunk's */
		if (o > 0 &&
		    (cl_hs_scan(c->db, buf, (unsigned)o, scratch, cl_on_match, s) != HS_SUCCESS ||
		     (rc = cl_scan_gated(c, s, scratch)) != 0)) {
			rc = rc == -HL_ENOMEM
			             ? hl_err_set(err, HL_ENOMEM, "out of memory")
			             : hl_err_set(err, HL_EINTERNAL, "vectorscan scan failed");
			goto out;
		}
		cl_scan_settle(s, first_line);
	}
	*total_lines = line - 1;
out:
	if (scratch != NULL)
		cl_scratch_put(c, scratch);
	if (mapped && mem != NULL)
		munmap(mem, mem_len);
	else
		free(mem);
	return rc;
}

int
cl_scan_alloc(struct cl_scan *s, size_t n_pat)
{
	memset(s, 0, sizeof(*s));
	s->count = calloc(n_pat + 1, sizeof(size_t));
	s->line = calloc(n_pat + 1, sizeof(size_t));
	s->raw = calloc(n_pat + 1, sizeof(size_t));
	s->local = calloc(n_pat + 1, sizeof(size_t));
	s->first = calloc(n_pat + 1, sizeof(size_t));
	s->first_raw = calloc(n_pat + 1, sizeof(size_t));
	s->flocal = calloc(n_pat + 1, sizeof(size_t));
	s->dirty = calloc(n_pat + 1, sizeof(unsigned));
	s->in_dirty = calloc(n_pat + 1, 1);
	s->md = cl_verify_md_new();
	s->vgen = calloc(n_pat + 1, sizeof(size_t));
	s->vstart = calloc(n_pat + 1, sizeof(size_t));
	s->vend = calloc(n_pat + 1, sizeof(size_t));
	s->vok = calloc(n_pat + 1, 1);
	s->gen = 1; /* vgen starts at 0: nothing confirmed yet */
	if (s->count == NULL || s->line == NULL || s->raw == NULL || s->local == NULL ||
	    s->first == NULL || s->first_raw == NULL || s->flocal == NULL || s->dirty == NULL ||
	    s->in_dirty == NULL || s->md == NULL || s->vgen == NULL || s->vstart == NULL ||
	    s->vend == NULL || s->vok == NULL)
		return -HL_ENOMEM;
	return 0;
}

/* Logs from this size on are scanned by several threads, one segment each. */
#define CL_PARALLEL_MIN (16u << 20)
#define CL_MAX_THREADS  4

struct cl_worker {
	struct hl_classifier *c;
	struct cl_scan scan;
	const struct cl_src *src;
	size_t start, end, lines;
	int rc;
	struct hl_err err;
};

static void *
cl_worker_main(void *p)
{
	struct cl_worker *w = p;
	w->rc = cl_scan_segment(w->c, &w->scan, w->src, w->start, w->end, &w->lines, &w->err);
	return NULL;
}

/* The offset just past the first '\n' at or after off, or n if none. */
static size_t
cl_next_line(const struct cl_src *src, size_t off, size_t n)
{
	char tmp[4096];

	if (src->mem != NULL) {
		const char *nl = memchr(src->mem + off, '\n', n - off);
		return nl ? (size_t)(nl - src->mem) + 1 : n;
	}
	while (off < n) {
		size_t got = 0, want = n - off < sizeof(tmp) ? n - off : sizeof(tmp);
		if (cl_pread_full(src->fd, tmp, want, off, &got) != 0 || got == 0)
			return n;
		const char *nl = memchr(tmp, '\n', got);
		if (nl != NULL)
			return off + (size_t)(nl - tmp) + 1;
		off += got;
	}
	return n;
}

/* Gives every pattern compiled under another's id (identical ones) the
 * results of that one. */
static void
cl_scan_share(const struct hl_classifier *c, struct cl_scan *s)
{
	for (size_t k = 0; k < c->n_pat; k++) {
		size_t j = c->pat_canon[k];
		if (j == k)
			continue;
		s->count[k] = s->count[j];
		s->line[k] = s->line[j];
		s->raw[k] = s->raw[j];
		s->first[k] = s->first[j];
		s->first_raw[k] = s->first_raw[j];
	}
}

/* Cleans and scans the whole log into s, on up to CL_MAX_THREADS threads for
 * big logs (see classify_int.h). */
int
cl_scan_log(struct hl_classifier *c, struct cl_scan *s, const struct cl_src *src,
            size_t *total_lines, struct hl_err *err)
{
	size_t n = src->len;
	struct cl_worker w[CL_MAX_THREADS];
	pthread_t tid[CL_MAX_THREADS];
	bool started[CL_MAX_THREADS] = { false };
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	size_t k = 1, base = 0;
	int rc = 0;

	if (n >= CL_PARALLEL_MIN && ncpu > 1)
		k = (size_t)(ncpu < CL_MAX_THREADS ? ncpu : CL_MAX_THREADS);
	if (k == 1) {
		rc = cl_scan_segment(c, s, src, 0, n, total_lines, err);
		if (rc == 0)
			cl_scan_share(c, s);
		return rc;
	}

	memset(w, 0, sizeof(w));
	for (size_t j = 0; j < k; j++) {
		size_t cut = n / k * (j + 1);
		w[j].c = c;
		w[j].src = src;
		w[j].start = j == 0 ? 0 : w[j - 1].end;
		if (j + 1 == k)
			cut = n;
		else
			cut = cut > w[j].start ? cl_next_line(src, cut, n) : w[j].start;
		w[j].end = cut;
		if (j == 0) {
			w[j].scan = *s;
		} else if (cl_scan_alloc(&w[j].scan, c->n_pat) != 0) {
			rc = hl_err_set(err, HL_ENOMEM, "out of memory");
			goto out;
		}
	}
	for (size_t j = 1; j < k; j++) {
		if (pthread_create(&tid[j], NULL, cl_worker_main, &w[j]) == 0)
			started[j] = true;
		else
			cl_worker_main(&w[j]); /* no thread: do it here */
	}
	cl_worker_main(&w[0]);
	for (size_t j = 1; j < k; j++)
		if (started[j])
			pthread_join(tid[j], NULL);
	for (size_t j = 0; j < k; j++) {
		if (w[j].rc != 0 && rc == 0) {
			rc = w[j].rc;
			if (err != NULL)
				*err = w[j].err;
		}
	}
	if (rc)
		goto out;
	/* Merge: counts add up, the first match is in the earliest segment
	 * with one, the last in the latest. */
	for (size_t j = 0; j < k; j++) {
		for (size_t id = 0; j > 0 && id < c->n_pat; id++) {
			if (w[j].scan.count[id] == 0)
				continue;
			if (w[0].scan.count[id] == 0) {
				w[0].scan.first[id] = base + w[j].scan.first[id];
				w[0].scan.first_raw[id] = w[j].scan.first_raw[id];
			}
			w[0].scan.count[id] += w[j].scan.count[id];
			w[0].scan.line[id] = base + w[j].scan.line[id];
			w[0].scan.raw[id] = w[j].scan.raw[id];
		}
		base += w[j].lines;
	}
	*total_lines = base;
	cl_scan_share(c, &w[0].scan);
out:
	*s = w[0].scan; /* the caller releases it */
	for (size_t j = 1; j < k; j++)
		cl_scan_release(&w[j].scan);
	return rc;
}

/* The cleaned, printable text of the raw line starting at raw offset off
 * (from a file: its first CL_LINE_MAX bytes, more than the text keeps). */
char *
cl_raw_line_text(const struct cl_src *src, size_t off)
{
	char *tmp, *raw = NULL, *res = NULL;
	const char *p = src->mem ? src->mem + off : NULL;
	size_t n = src->len - off, len;

	tmp = malloc(CL_LINE_MAX + 1);
	if (tmp == NULL)
		return NULL;
	if (p == NULL) {
		size_t got = 0;
		if (n > CL_LINE_MAX)
			n = CL_LINE_MAX;
		raw = malloc(n + 1);
		if (raw == NULL || cl_pread_full(src->fd, raw, n, off, &got) != 0)
			got = 0;
		p = raw ? raw : "";
		n = got;
	}
	const char *nl = memchr(p, '\n', n);
	len = cl_clean_line_into(tmp, CL_LINE_MAX, p, nl ? (size_t)(nl - p) : n);
	if (raw != NULL || src->mem != NULL)
		res = cl_line_text(tmp, len);
	free(raw);
	free(tmp);
	return res;
}
