/*
 * db.c - the Vectorscan side of a classifier: all log patterns of all rules
 * in ONE block-mode database (for the built-in rules compiled at build time
 * by gen_db.c and embedded; compiled here for any other rule set or a CPU
 * the embedded one does not fit), its serialization, the allocator that maps
 * big blocks with their pages populated, and the pool of scratch spaces
 * (one per concurrent scan; the database itself is read-only).
 */
#include "classify/classify_int.h"

#include <stdlib.h>
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

/* Before any database or scratch exists (hs_serialize_database output
 * keeps the default allocator: callers free it with free()). */
static void
cl_hs_setup(void)
{
	hs_set_database_allocator(cl_hs_alloc, cl_hs_free);
	hs_set_scratch_allocator(cl_hs_alloc, cl_hs_free);
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
	pthread_mutex_destroy(&c->lock);
}

int
cl_db_build(struct hl_classifier *c, char *const *pats, const unsigned *flags, const unsigned *ids,
            size_t n, size_t n_all, bool embedded, size_t *bad, struct hl_err *err)
{
	hs_compile_error_t *cerr = NULL;
	int rc = 0;

	*bad = SIZE_MAX;
	/* The built-in rules come with their database compiled at build time;
	 * a database for another CPU or another rule set is compiled anew. */
	pthread_once(&cl_hs_once, cl_hs_setup);
	if (embedded && hl_classify_default_db_len > 0 && hl_classify_default_db_npat == n_all)
		cl_populate_read(hl_classify_default_db, hl_classify_default_db_len);
	if (embedded && hl_classify_default_db_len > 0 && hl_classify_default_db_npat == n_all &&
	    hs_deserialize_database((const char *)hl_classify_default_db,
	                            hl_classify_default_db_len, &c->db) == HS_SUCCESS) {
		if (hs_alloc_scratch(c->db, &c->proto) != HS_SUCCESS)
			return hl_err_set(err, HL_ENOMEM, "allocating scan scratch");
		return 0;
	}
	if (hs_compile_multi((const char *const *)pats, flags, ids, (unsigned)n, HS_MODE_BLOCK,
	                     NULL, &c->db, &cerr) != HS_SUCCESS) {
		int e = cerr ? cerr->expression : -1;
		if (e >= 0 && (size_t)e < n) {
			*bad = (size_t)e;
			rc = hl_err_set(err, HL_EPARSE, "pattern not supported: %s", cerr->message);
		} else {
			rc = hl_err_set(err, HL_EPARSE, "compiling the patterns: %s",
			                cerr ? cerr->message : "unknown error");
		}
		hs_free_compile_error(cerr);
		goto out;
	}
	if (hs_alloc_scratch(c->db, &c->proto) != HS_SUCCESS)
		rc = hl_err_set(err, HL_ENOMEM, "allocating scan scratch");
out:
	return rc;
}

int
hl_classifier_serialize(char **out, size_t *len, const struct hl_classifier *c, struct hl_err *err)
{
	char *bytes = NULL;
	size_t n = 0;

	if (hs_serialize_database(c->db, &bytes, &n) != HS_SUCCESS)
		return hl_err_set(err, HL_ENOMEM, "serializing the pattern database");
	*out = bytes;
	*len = n;
	return 0;
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
