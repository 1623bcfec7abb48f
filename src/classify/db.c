/*
 * db.c - the Vectorscan side of a classifier: all log patterns of all rules
 * in ONE block-mode database (for the built-in rules compiled at build time
 * by gen_db.c and embedded; compiled here for any other rule set or a CPU
 * the embedded one does not fit), its serialization, the allocator that maps
 * big blocks with their pages populated, and the pool of scratch spaces
 * (one per concurrent scan; the database itself is read-only).
 *
 * On a CPU with AVX-512, the scans run Vectorscan's AVX2 code: Debian 12's
 * Vectorscan 5.4.9 picks its AVX-512 code there, which misses matches (a
 * '^ *FAIL ...' line after a long line, with some other patterns in the
 * same database: found by fuzz_classify, whose input is in its corpus) and
 * reports false ones (verify.c); its AVX2 code, in the same library, scans
 * those logs right. The databases are then compiled for the CPU without
 * its AVX-512 features, which the AVX2 code expects.
 */
#include "classify/classify_int.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

void *
cl_big_alloc(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
	               -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* Vectorscan database and scratch allocator: a 64-byte header records how
 * the block was obtained. */
static void *
cl_hs_alloc(size_t n)
{
	size_t total = n + 64;
	size_t *h = total >= CL_POPULATE_MIN ? cl_big_alloc(total) : malloc(total);

	if (h == NULL)
		return NULL;
	h[0] = total;
	h[1] = total >= CL_POPULATE_MIN;
	return (char *)h + 64;
}

static void
cl_hs_free(void *p)
{
	size_t *h;

	if (p == NULL)
		return;
	h = (size_t *)(void *)((char *)p - 64);
	if (h[1])
		munmap(h, h[0]);
	else
		free(h);
}

static pthread_once_t cl_hs_once = PTHREAD_ONCE_INIT;

/* The block-mode scan the classifier runs, and the platform its databases
 * are compiled for (NULL: this CPU as Vectorscan sees it). */
static hs_error_t (*cl_hs_scan_fn)(const hs_database_t *, const char *, unsigned, unsigned,
                                   hs_scratch_t *, match_event_handler, void *) = hs_scan;
static hs_platform_info_t cl_hs_platform;
static const hs_platform_info_t *cl_hs_target;

/* Before any database or scratch exists (hs_serialize_database output
 * keeps the default allocator: callers free it with free()). */
static void
cl_hs_setup(void)
{
	hs_set_database_allocator(cl_hs_alloc, cl_hs_free);
	hs_set_scratch_allocator(cl_hs_alloc, cl_hs_free);
#if defined(__x86_64__) && defined(__GNUC__)
	/* the fat library's AVX2 entry point, where its dispatcher would pick
	 * the AVX-512 one (see the top of this file) */
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") &&
	    hs_populate_platform(&cl_hs_platform) == HS_SUCCESS) {
		void *avx2_scan = dlsym(RTLD_DEFAULT, "avx2_hs_scan");

		if (avx2_scan != NULL) {
			*(void **)&cl_hs_scan_fn = avx2_scan;
			cl_hs_platform.cpu_features &=
			        ~(unsigned long long)(HS_CPU_FEATURES_AVX512 |
			                              HS_CPU_FEATURES_AVX512VBMI);
			cl_hs_target = &cl_hs_platform;
		}
	}
#endif
}

hs_error_t
cl_hs_scan(const hs_database_t *db, const char *data, unsigned len, hs_scratch_t *scratch,
           match_event_handler on_match, void *ctx)
{
	return cl_hs_scan_fn(db, data, len, 0, scratch, on_match, ctx);
}

/* Maps the pages of a read-only block in one call instead of a fault each. */
static void
cl_populate_read(const void *p, size_t n)
{
#ifdef MADV_POPULATE_READ
	uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t a = (uintptr_t)p & ~(pg - 1), e = ((uintptr_t)p + n + pg - 1) & ~(pg - 1);
	(void)madvise((void *)a, e - a, MADV_POPULATE_READ); /* a hint */
#else
	(void)p;
	(void)n;
#endif
}

void
cl_db_init(struct hl_classifier *c)
{
	pthread_mutex_init(&c->lock, NULL);
}

void
cl_db_release(struct hl_classifier *c)
{
	for (size_t i = 0; i < c->n_pool; i++)
		hs_free_scratch(c->pool[i]);
	free(c->pool);
	c->pool = NULL;
	c->n_pool = 0;
	hs_free_scratch(c->proto);
	c->proto = NULL;
	hs_free_database(c->db);
	c->db = NULL;
	hs_free_database(c->gate_db);
	c->gate_db = NULL;
	free(c->gated);
	c->gated = NULL;
	pthread_mutex_destroy(&c->lock);
}

/* Compiles pats[0, n) into *db; on a pattern Vectorscan rejects, *bad is
 * its index (else SIZE_MAX). */
static int
cl_compile(hs_database_t **db, const char *const *pats, const unsigned *flags, const unsigned *ids,
           size_t n, size_t *bad, struct hl_err *err)
{
	hs_compile_error_t *cerr = NULL;
	int rc = 0;

	*bad = SIZE_MAX;
	pthread_once(&cl_hs_once, cl_hs_setup);
	if (hs_compile_multi(pats, flags, ids, (unsigned)n, HS_MODE_BLOCK, cl_hs_target, db,
	                     &cerr) == HS_SUCCESS)
		return 0;
	int e = cerr ? cerr->expression : -1;
	if (e >= 0 && (size_t)e < n) {
		*bad = (size_t)e;
		rc = hl_err_set(err, HL_EPARSE, "pattern not supported: %s", cerr->message);
	} else {
		rc = hl_err_set(err, HL_EPARSE, "compiling the patterns: %s",
		                cerr ? cerr->message : "unknown error");
	}
	hs_free_compile_error(cerr);
	return rc;
}

/* The databases serialized by hl_classifier_serialize, if they fit. */
static bool
cl_db_load(struct hl_classifier *c, const unsigned char *blob, size_t len)
{
	uint64_t len1 = 0;

	if (len < 8)
		return false;
	for (int i = 7; i >= 0; i--)
		len1 = len1 << 8 | blob[i];
	if (len1 == 0 || len1 > len - 8)
		return false;
	if (hs_deserialize_database((const char *)blob + 8, (size_t)len1, &c->db) != HS_SUCCESS)
		return false;
	if (len - 8 - len1 > 0 &&
	    hs_deserialize_database((const char *)blob + 8 + len1, (size_t)(len - 8 - len1),
	                            &c->gate_db) != HS_SUCCESS) {
		hs_free_database(c->db);
		c->db = NULL;
		return false;
	}
	return true;
}

/* The built-in rules' databases, if they are what the rules compile to
 * (n_all patterns, the gated ones valid ids) and fit this CPU. */
static bool
cl_db_embedded(struct hl_classifier *c, size_t n_all)
{
	size_t n_gated = hl_classify_default_db_ngated;

	if (hl_classify_default_db_len == 0 || hl_classify_default_db_npat != n_all)
		return false;
	for (size_t k = 0; k < n_gated; k++)
		if (hl_classify_default_db_gated[k] >= n_all)
			return false;
	cl_populate_read(hl_classify_default_db, hl_classify_default_db_len);
	if (!cl_db_load(c, hl_classify_default_db, hl_classify_default_db_len))
		return false;
	if ((c->gate_db != NULL) != (n_gated > 0)) {
		hs_free_database(c->db);
		hs_free_database(c->gate_db);
		c->db = c->gate_db = NULL;
		return false;
	}
	for (size_t k = 0; k < n_gated; k++)
		c->gated[hl_classify_default_db_gated[k]] = 1;
	c->n_gated = n_gated;
	return true;
}

int
cl_db_build(struct hl_classifier *c, char *const *pats, const unsigned *flags, const unsigned *ids,
            char ***gate, size_t n, size_t n_all, bool embedded, size_t *bad, struct hl_err *err)
{
	const char **main_pats = NULL, **whole = NULL;
	unsigned *main_flags = NULL, *main_ids = NULL, *whole_flags = NULL, *whole_ids = NULL;
	size_t *main_of = NULL, n_main = 0, n_whole = 0, n_gated = 0, k;
	int rc = 0;

	*bad = SIZE_MAX;
	pthread_once(&cl_hs_once, cl_hs_setup);
	c->gated = calloc(n_all ? n_all : 1, 1);
	if (c->gated == NULL) {
		rc = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	/* The built-in rules come with their databases compiled at build time;
	 * databases for another CPU or another rule set are compiled anew. */
	if (embedded && cl_db_embedded(c, n_all))
		goto scratch;
	/* the built-in error-line patterns (ids from c->quote_first) stay
	 * whole: a rule set whose patterns are all in groups has none gated */
	for (size_t i = 0; i < n; i++) {
		gate[i] = ids[i] < c->quote_first ? cl_gate_literals(pats[i]) : NULL;
		n_gated += gate[i] != NULL;
		for (size_t j = 0; gate[i] != NULL && gate[i][j] != NULL; j++)
			n_main++;
	}
	n_main += n - n_gated + 1;
	main_pats = malloc(n_main * sizeof(*main_pats));
	main_flags = malloc(n_main * sizeof(*main_flags));
	main_ids = malloc(n_main * sizeof(*main_ids));
	main_of = malloc(n_main * sizeof(*main_of));
	whole = malloc((n ? n : 1) * sizeof(*whole));
	whole_flags = malloc((n ? n : 1) * sizeof(*whole_flags));
	whole_ids = malloc((n ? n : 1) * sizeof(*whole_ids));
	if (main_pats == NULL || main_flags == NULL || main_ids == NULL || main_of == NULL ||
	    whole == NULL || whole_flags == NULL || whole_ids == NULL) {
		rc = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	/* The main database: each gated pattern by its gate's literals, under
	 * its id. A gate Vectorscan rejects is dropped: the pattern is
	 * compiled whole (at most once each). */
	for (;;) {
		size_t m = 0;
		for (size_t i = 0; i < n; i++) {
			for (size_t j = 0; gate[i] == NULL ? j < 1 : gate[i][j] != NULL; j++) {
				main_pats[m] = gate[i] != NULL ? gate[i][j] : pats[i];
				main_flags[m] = flags[i];
				main_ids[m] = ids[i];
				main_of[m++] = i;
			}
		}
		rc = cl_compile(&c->db, main_pats, main_flags, main_ids, m, &k, err);
		if (rc == 0 || k >= m)
			break;
		k = main_of[k];
		if (gate[k] == NULL)
			break;
		free(gate[k]);
		gate[k] = NULL;
		n_gated--;
	}
	if (rc) {
		*bad = k;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (gate[i] == NULL)
			continue;
		whole[n_whole] = pats[i];
		whole_flags[n_whole] = flags[i];
		whole_ids[n_whole++] = ids[i];
		c->gated[ids[i]] = 1;
	}
	if (n_whole > 0) {
		rc = cl_compile(&c->gate_db, whole, whole_flags, whole_ids, n_whole, &k, err);
		if (rc) {
			for (size_t i = 0; k < n_whole && i < n; i++)
				if (ids[i] == whole_ids[k])
					*bad = i;
			goto out;
		}
	}
	c->n_gated = n_gated;
scratch:
	if (hs_alloc_scratch(c->db, &c->proto) != HS_SUCCESS ||
	    (c->gate_db != NULL && hs_alloc_scratch(c->gate_db, &c->proto) != HS_SUCCESS))
		rc = hl_err_set(err, HL_ENOMEM, "allocating scan scratch");
out:
	free(main_pats);
	free(main_flags);
	free(main_ids);
	free(main_of);
	free(whole);
	free(whole_flags);
	free(whole_ids);
	return rc;
}

int
hl_classifier_serialize(char **out, size_t *len, const struct hl_classifier *c, struct hl_err *err)
{
	char *main_db = NULL, *gate_db = NULL, *res;
	size_t n1 = 0, n2 = 0;
	int rc = 0;

	if (hs_serialize_database(c->db, &main_db, &n1) != HS_SUCCESS ||
	    (c->gate_db != NULL && hs_serialize_database(c->gate_db, &gate_db, &n2) != HS_SUCCESS))
		return hl_err_set(err, HL_ENOMEM, "serializing the pattern database");
	res = malloc(8 + n1 + n2);
	if (res == NULL) {
		rc = hl_err_set(err, HL_ENOMEM, "serializing the pattern database");
	} else {
		for (int i = 0; i < 8; i++)
			res[i] = (char)(unsigned char)((uint64_t)n1 >> (8 * i));
		memcpy(res + 8, main_db, n1);
		if (n2 > 0)
			memcpy(res + 8 + n1, gate_db, n2);
		*out = res;
		*len = 8 + n1 + n2;
	}
	free(main_db);
	free(gate_db);
	return rc;
}

hs_scratch_t *
cl_scratch_get(struct hl_classifier *c)
{
	hs_scratch_t *s = NULL;

	pthread_mutex_lock(&c->lock);
	if (c->n_pool > 0)
		s = c->pool[--c->n_pool];
	pthread_mutex_unlock(&c->lock);
	if (s == NULL && hs_clone_scratch(c->proto, &s) != HS_SUCCESS)
		return NULL;
	return s;
}

void
cl_scratch_put(struct hl_classifier *c, hs_scratch_t *s)
{
	pthread_mutex_lock(&c->lock);
	if (c->n_pool == c->cap_pool) {
		size_t cap = c->cap_pool ? c->cap_pool * 2 : 8;
		hs_scratch_t **a = realloc(c->pool, cap * sizeof(*a));
		if (a == NULL) {
			pthread_mutex_unlock(&c->lock);
			hs_free_scratch(s);
			return;
		}
		c->pool = a;
		c->cap_pool = cap;
	}
	c->pool[c->n_pool++] = s;
	pthread_mutex_unlock(&c->lock);
}
