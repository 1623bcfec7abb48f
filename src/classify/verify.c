/*
 * verify.c - a second opinion on the matches of regex patterns.
 *
 * Vectorscan 5.4.9 (Debian 12's) scans with its AVX-512 code on CPUs that
 * have it (db.c runs its AVX2 code there instead: the AVX-512 code also
 * misses matches), and there an accelerator searching a region for a byte
 * can miss the region's last bytes (VectorCamp/vectorscan#375, #378). A run
 * of '.', or of a class without '\n', then seems to go on past a line end,
 * and a pattern is reported as matching across two lines (seen: "The hosted
 * runner: .* lost communication" ending on a later "The self-hosted runner:
 * ... lost communication" line). Whether it happens depends on how the
 * database was laid out when compiled, so it comes and goes between builds.
 *
 * So the matches of a pattern that repeats something (what the accelerators
 * run) are confirmed with PCRE2: the pattern must match on the line a match
 * ends on, or Vectorscan's matches ending there are dropped. The same
 * confirmation keeps patterns line-oriented: one that can match a line end
 * ('\s', '\W', '[^a]', "(?s).") would otherwise match across two lines, or
 * not, as the 256 KB chunks and the threads' segments fall. One
 * confirmation serves all the ends one line gives a pattern (a repeat at
 * its end gives one per byte). A pattern's PCRE2 code is compiled at its
 * first confirmation, and JIT-compiled once CL_VERIFY_JIT_AFTER lines were
 * confirmed (a JIT compile costs about as much as a few hundred interpreted
 * matches of a line: most patterns match a log a few times, some on every
 * other line).
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "classify/classify_int.h"

#include <ctype.h>
#include <pcre2.h>
#include <stdlib.h>

/* Whether a POSIX class name ("space" of "[:space:]") holds '\n'. */
static bool
cl_posix_has_nl(const char *name, size_t len)
{
	if (len > 0 && name[0] == '^')
		return true; /* "[:^alpha:]" and the like */
	return (len == 5 && memcmp(name, "space", 5) == 0) ||
	       (len == 5 && memcmp(name, "cntrl", 5) == 0);
}

/* Whether the pattern's matches are confirmed: it repeats something ('*',
 * '+' or a '{n,m}' count; only a repeat is run through an accelerator that
 * can miss a line end), or something in it can match a line end (or the
 * buffer's start or end), whose matches may then span lines or lean on where
 * a chunk or segment starts: an escape such as '\s', '\n', '\W', '\D', '\H',
 * '\v', '\R', '\p', a code ('\x0a'), '\A'; a class holding '\n' ("[\s]",
 * "[[:^alpha:]]", a negated one that leaves '\n' in); "(?s)". Such a
 * pattern matches only within a line: its matches are kept on a line it
 * matches on its own, wherever the log was cut. Others are taken as
 * reported. */
static bool
cl_verify_wanted(const char *p)
{
	static const char spans[] = "snDWHvRxocpPXCAzZGgk0123456789Q";
	bool in_class = false, negated = false, excludes_nl = false, repeats = false;

	for (; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 && *p != '\t')
			return true; /* a control byte: a range may hold '\n' */
		if (*p == '\\') {
			if (p[1] == '\0')
				break;
			if (in_class && negated)
				excludes_nl = excludes_nl || p[1] == 'n' || p[1] == 's';
			else if (strchr(spans, p[1]) != NULL)
				return true;
			p++;
			continue;
		}
		if (in_class) {
			if (p[0] == '[' && p[1] == ':') {
				const char *end = strstr(p + 2, ":]");
				if (end != NULL) {
					bool nl = cl_posix_has_nl(p + 2, (size_t)(end - p - 2));
					if (!negated && nl)
						return true;
					if (negated && nl && p[2] != '^')
						excludes_nl = true;
					p = end + 1;
					continue;
				}
			}
			if (*p == ']') {
				in_class = false;
				if (negated && !excludes_nl)
					return true;
			}
			continue;
		}
		if (*p == '[') {
			in_class = true;
			negated = p[1] == '^';
			excludes_nl = false;
			if (negated)
				p++;
			if (p[1] == ']')
				p++; /* a leading ']' is a member */
			continue;
		}
		if (p[0] == '(' && p[1] == '?') { /* inline options: "(?s)", "(?is:" */
			for (const char *q = p + 2;
			     *q != '\0' && *q != '-' && *q != ')' && *q != ':'; q++)
				if (*q == 's')
					return true;
		}
		if (*p == '*' || *p == '+' || (*p == '{' && isdigit((unsigned char)p[1])))
			repeats = true;
	}
	return repeats;
}

/* The slot of pattern id: its PCRE2 code, or CL_VERIFY_NONE; compiled
 * here the first time (a thread losing the race frees its own). */
static uintptr_t
cl_verify_code(struct hl_classifier *c, unsigned id)
{
	uintptr_t v = atomic_load_explicit(&c->verify[id], memory_order_acquire), want = 0;
	pcre2_code *re;
	int errcode;
	PCRE2_SIZE erroff;

	if (v != 0)
		return v;
	if (!cl_verify_wanted(c->patterns[id])) {
		re = NULL;
	} else {
		re = pcre2_compile(
		        (PCRE2_SPTR)c->patterns[id], PCRE2_ZERO_TERMINATED,
		        PCRE2_MULTILINE |
		                ((c->pat_flags[id] & HS_FLAG_CASELESS) ? PCRE2_CASELESS : 0),
		        &errcode, &erroff, NULL);
	}
	/* a pattern PCRE2 cannot read (or no memory) keeps Vectorscan's word */
	v = re != NULL ? (uintptr_t)re : CL_VERIFY_NONE;
	if (!atomic_compare_exchange_strong_explicit(&c->verify[id], &want, v, memory_order_acq_rel,
	                                             memory_order_acquire)) {
		pcre2_code_free(re);
		v = want;
	}
	return v;
}

/* Confirmations of a pattern before its code is JIT-compiled. */
#define CL_VERIFY_JIT_AFTER 256

/* Pattern id's code, now confirming often, replaced by a JIT-compiled copy;
 * the interpreted one stays until the classifier is freed (other threads
 * may be running it). Called by one thread per pattern. */
static void
cl_verify_jit(struct hl_classifier *c, unsigned id, uintptr_t v)
{
	pcre2_code *jit = pcre2_code_copy((const pcre2_code *)v);

	if (jit == NULL || pcre2_jit_compile(jit, PCRE2_JIT_COMPLETE) != 0) {
		pcre2_code_free(jit); /* no JIT here: interpreted it stays */
		return;
	}
	c->verify_old[id] = (void *)v;
	atomic_store_explicit(&c->verify[id], (uintptr_t)jit, memory_order_release);
}

bool
cl_verify_line(struct hl_classifier *c, void *md, unsigned id, const char *line, size_t len)
{
	uintptr_t v = cl_verify_code(c, id);
	int rc;

	if (v == CL_VERIFY_NONE || md == NULL)
		return true;
	/* counted up to the JIT compile only (no wrap in a long life) */
	if (atomic_load_explicit(&c->verify_n[id], memory_order_relaxed) <= CL_VERIFY_JIT_AFTER &&
	    atomic_fetch_add_explicit(&c->verify_n[id], 1, memory_order_relaxed) ==
	            CL_VERIFY_JIT_AFTER)
		cl_verify_jit(c, id, v);
	rc = pcre2_match((const pcre2_code *)v, (PCRE2_SPTR)line, len, 0, 0, md, NULL);
	/* no match on the line: Vectorscan's were false; any other error (a
	 * match limit) keeps them */
	return rc != PCRE2_ERROR_NOMATCH;
}

void
hl_classifier_warm(struct hl_classifier *c)
{
	for (size_t i = 0; c->verify != NULL && i < c->n_pat; i++) {
		uintptr_t v;

		if (c->pat_canon != NULL && c->pat_canon[i] != i)
			continue; /* scanned under another pattern's id */
		v = cl_verify_code(c, (unsigned)i);
		if (v == CL_VERIFY_NONE || atomic_load(&c->verify_n[i]) > CL_VERIFY_JIT_AFTER)
			continue;
		atomic_store(&c->verify_n[i], CL_VERIFY_JIT_AFTER + 1);
		cl_verify_jit(c, (unsigned)i, v);
	}
}

void *
cl_verify_md_new(void)
{
	return pcre2_match_data_create(1, NULL);
}

void
cl_verify_md_free(void *md)
{
	pcre2_match_data_free(md);
}

int
cl_verify_init(struct hl_classifier *c)
{
	size_t n = c->n_pat ? c->n_pat : 1;

	c->verify = calloc(n, sizeof(*c->verify));
	c->verify_n = calloc(n, sizeof(*c->verify_n));
	c->verify_old = calloc(n, sizeof(*c->verify_old));
	return c->verify != NULL && c->verify_n != NULL && c->verify_old != NULL ? 0 : -HL_ENOMEM;
}

void
cl_verify_release(struct hl_classifier *c)
{
	for (size_t i = 0; c->verify != NULL && i < c->n_pat; i++) {
		uintptr_t v = atomic_load(&c->verify[i]);
		if (v != 0 && v != CL_VERIFY_NONE)
			pcre2_code_free((pcre2_code *)v);
		if (c->verify_old != NULL)
			pcre2_code_free(c->verify_old[i]);
	}
	free(c->verify);
	free(c->verify_n);
	free(c->verify_old);
	c->verify = NULL;
	c->verify_n = NULL;
	c->verify_old = NULL;
}
