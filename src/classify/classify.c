/*
 * classify.c - rules loading, one-pass log scanning and scoring.
 *
 * Rules (YAML, see rules/default.yaml for the format) are validated with
 * positions (PCRE2 gives the column of a bad regex) and all their log
 * patterns are compiled into ONE Vectorscan block-mode database (for the
 * built-in rules at build time, see gen_db.c). The log is cleaned in chunks
 * of whole lines into one reusable 256 KB buffer and each chunk is scanned
 * once; the scan records, per pattern, the number of matches and the line of
 * the last one. Nothing else is done per byte, so the cost is one pass
 * whatever the number of rules. A log in memory is read in place; a log file
 * (hl_classify_fd) is read with pread through a 256 KB window per thread,
 * and with AVX2 its plain lines take a branch-light copy (cl_fast_lines_avx2).
 * Logs of 16 MB and more are split into segments scanned by up to 4 threads.
 * Rules are then scored (see rules/default.yaml) and the best one wins.
 *
 * Throughput notes (2-core VM, 100 MB bench log): about half the CPU time is
 * the Vectorscan scan, a fifth the cleaning, the rest the kernel (page
 * cache copies, page faults: ~14 us each there, hence the populated
 * mappings) and process start-up.
 *
 * Preprocessing per line: GitHub Actions timestamps, ANSI escapes,
 * ##[group]/##[endgroup] markers, BuildKit "#N 1.234 " progress prefixes and
 * "Process completed with exit code N" boilerplate (except 137) go.
 *
 * Invariants:
 *  - preprocessing never adds or removes a '\n', so line N of the cleaned log
 *    is line N of the original;
 *  - the classifier is read-only after construction; scratch space comes from
 *    a mutex-protected pool (one scratch per concurrent scan);
 *  - every string that leaves this module as evidence is valid UTF-8 without
 *    control characters (logs are untrusted bytes).
 */
#include "classify/classify.h"

#include "catalog/catalog.h"

#include <errno.h>
#include <fnmatch.h>
#include <hs/hs.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <yaml.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#define PCRE2_CODE_UNIT_WIDTH 8
#include "base/file.h"

#include <pcre2.h>

/* Bigger logs are scanned from the end: the error is near the end. */
#define CL_MAX_LINE_TEXT  400
#define CL_MAX_RULES_FILE (4u << 20)

/* ---------------------------------------------------------------------- */
/* failure types (contract section 5): the catalogue (src/catalog)         */

const char *
hl_classify_type_category(const char *failure_type)
{
	const struct hl_catalog_type *t = hl_catalog_type_find(failure_type);
	return t ? t->category->name : NULL;
}

const char *
hl_classify_type_fix_approach(const char *failure_type)
{
	const struct hl_catalog_type *t = hl_catalog_type_find(failure_type);
	return t ? t->fix_approach : NULL;
}

const char *
hl_classify_category_agent(const char *category)
{
	const struct hl_catalog_category *c = hl_catalog_category_find(category);
	return c ? c->agent->id : hl_catalog_default_agent()->id;
}

/* ---------------------------------------------------------------------- */
/* changed-file classes                                                   */

static bool
cl_glob_path(const char *glob, const char *path)
{
	/* A glob without '/' matches the base name (gitignore-like). */
	if (strchr(glob, '/') == NULL) {
		const char *base = strrchr(path, '/');
		if (base != NULL && fnmatch(glob, base + 1, FNM_CASEFOLD) == 0)
			return true;
	}
	return fnmatch(glob, path, FNM_CASEFOLD) == 0;
}

static bool
cl_glob_any(const char *const *globs, const char *path)
{
	for (size_t i = 0; globs[i] != NULL; i++)
		if (cl_glob_path(globs[i], path))
			return true;
	return false;
}

const char *
hl_classify_file_class(const char *path)
{
	if (path == NULL || *path == '\0')
		return NULL;
	/* the first category whose globs match (the catalogue lists the more
	 * specific ones first) */
	for (size_t i = 0; i < hl_catalog_category_count(); i++) {
		const struct hl_catalog_category *c = hl_catalog_category_at(i);
		if (c->files[0] != NULL && cl_glob_any(c->files, path))
			return c->name;
	}
	return NULL;
}

const char *
hl_classify_alternate_agent(const char *current_agent, bool security_event,
                            const char *const *changed_files, size_t n_changed)
{
	const struct hl_catalog_category *security = hl_catalog_category_find("security");
	const struct hl_catalog_agent *def = hl_catalog_default_agent();
	size_t count[HL_CATALOG_MAX_CATEGORIES] = { 0 };
	size_t nc = hl_catalog_category_count(), best = SIZE_MAX;

	if (security_event && security != NULL)
		return security->agent->id;
	for (size_t i = 0; i < n_changed; i++) {
		const struct hl_catalog_category *c =
		        hl_catalog_category_find(hl_classify_file_class(changed_files[i]));
		if (c != NULL)
			count[c->index]++;
	}
	/* the specialist with the most changed files, other than the current
	 * agent; the default agent is the fallback, so its files do not count */
	for (size_t k = 0; k < nc; k++) {
		const struct hl_catalog_agent *a = hl_catalog_category_at(k)->agent;
		if (count[k] == 0 || a == def)
			continue;
		if (current_agent != NULL && strcmp(current_agent, a->id) == 0)
			continue;
		if (best == SIZE_MAX || count[k] > count[best])
			best = k;
	}
	return best == SIZE_MAX ? def->id : hl_catalog_category_at(best)->agent->id;
}

/* ---------------------------------------------------------------------- */
/* rules                                                                  */

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
};

/* The rule's glob/name list for a rules-file key ("workflow", "job", "step",
 * "files", "events", "argocd"), or NULL for any other key. */
static struct cl_list *
cl_rule_list(struct cl_rule *r, const char *key)
{
	static const struct {
		const char *key;
		size_t offset;
	} lists[] = {
		{ "workflow", offsetof(struct cl_rule, workflow) },
		{ "job", offsetof(struct cl_rule, job) },
		{ "step", offsetof(struct cl_rule, step) },
		{ "files", offsetof(struct cl_rule, files) },
		{ "events", offsetof(struct cl_rule, events) },
		{ "argocd", offsetof(struct cl_rule, argocd) },
	};

	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
		if (strcmp(lists[i].key, key) == 0)
			return (struct cl_list *)(void *)((char *)r + lists[i].offset);
	return NULL;
}

struct hl_classifier {
	struct cl_rule *rules;
	size_t n_rules;
	char **patterns;     /* as written */
	char **exported;     /* with "(?i)" for caseless rules */
	unsigned *pat_flags; /* Vectorscan flags */
	size_t *pat_rule;
	size_t n_pat;
	double recency_bonus, context_bonus, files_bonus;
	hs_database_t *db;
	hs_scratch_t *proto;
	pthread_mutex_t lock;
	hs_scratch_t **pool;
	size_t n_pool, cap_pool;
};

static void
cl_list_free(struct cl_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

void
hl_classifier_free(struct hl_classifier *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->n_rules; i++) {
		struct cl_rule *r = &c->rules[i];
		free(r->name);
		cl_list_free(&r->workflow);
		cl_list_free(&r->job);
		cl_list_free(&r->step);
		cl_list_free(&r->files);
		cl_list_free(&r->events);
		cl_list_free(&r->argocd);
	}
	free(c->rules);
	for (size_t i = 0; i < c->n_pat; i++) {
		free(c->patterns ? c->patterns[i] : NULL);
		free(c->exported ? c->exported[i] : NULL);
	}
	free(c->patterns);
	free(c->exported);
	free(c->pat_flags);
	free(c->pat_rule);
	for (size_t i = 0; i < c->n_pool; i++)
		hs_free_scratch(c->pool[i]);
	free(c->pool);
	hs_free_scratch(c->proto);
	hs_free_database(c->db);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

size_t
hl_classifier_rule_count(const struct hl_classifier *c)
{
	return c->n_rules;
}

size_t
hl_classifier_pattern_count(const struct hl_classifier *c)
{
	return c->n_pat;
}

const char *
hl_classifier_pattern(const struct hl_classifier *c, size_t i)
{
	return i < c->n_pat ? c->exported[i] : NULL;
}

/* Parsing state: the document, the file name and the rule being read. */
struct cl_parse {
	yaml_document_t doc;
	const char *file;
	const char *rule; /* name of the current rule, or a "#N" label */
	char label[32];
	struct hl_err *err;
	/* The built-in rules: their regexes were checked with PCRE2 when the
	 * build compiled them (gen_db), so start-up skips that (~1 ms). */
	bool trusted;
};

static int cl_perr(struct cl_parse *ps, const yaml_node_t *node, int col_add, const char *fmt, ...)
        HL_PRINTF(4, 5);

static int
cl_perr(struct cl_parse *ps, const yaml_node_t *node, int col_add, const char *fmt, ...)
{
	char msg[200];
	va_list ap;
	size_t line = node ? node->start_mark.line + 1 : 1;
	size_t col = node ? node->start_mark.column + 1 + (size_t)col_add : 1;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (ps->rule != NULL)
		return hl_err_set(ps->err, HL_EPARSE, "%s:%zu:%zu: rule '%s': %s", ps->file, line,
		                  col, ps->rule, msg);
	return hl_err_set(ps->err, HL_EPARSE, "%s:%zu:%zu: %s", ps->file, line, col, msg);
}

static const char *
cl_scalar(const yaml_node_t *n)
{
	if (n == NULL || n->type != YAML_SCALAR_NODE)
		return NULL;
	return (const char *)n->data.scalar.value;
}

/* Reads a string or a sequence of strings into l. */
static int
cl_read_list(struct cl_parse *ps, const yaml_node_t *n, const char *key, struct cl_list *l)
{
	size_t cnt;

	if (l->v != NULL)
		return cl_perr(ps, n, 0, "duplicate key '%s'", key);
	if (n->type == YAML_SCALAR_NODE) {
		cnt = 1;
	} else if (n->type == YAML_SEQUENCE_NODE) {
		cnt = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	} else {
		return cl_perr(ps, n, 0, "'%s' must be a string or a list of strings", key);
	}
	l->v = calloc(cnt + 1, sizeof(char *));
	if (l->v == NULL)
		return hl_err_set(ps->err, HL_ENOMEM, "out of memory");
	for (size_t i = 0; i < cnt; i++) {
		const yaml_node_t *item = n;
		const char *s;
		if (n->type == YAML_SEQUENCE_NODE)
			item = yaml_document_get_node(&ps->doc, n->data.sequence.items.start[i]);
		s = cl_scalar(item);
		if (s == NULL)
			return cl_perr(ps, item ? item : n, 0, "'%s' items must be strings", key);
		if (*s == '\0')
			return cl_perr(ps, item, 0, "empty string in '%s'", key);
		l->v[i] = strdup(s);
		if (l->v[i] == NULL)
			return hl_err_set(ps->err, HL_ENOMEM, "out of memory");
		l->n = i + 1;
	}
	return 0;
}

static int
cl_read_bool(struct cl_parse *ps, const yaml_node_t *n, const char *key, bool *out)
{
	const char *s = cl_scalar(n);
	if (s != NULL && (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0)) {
		*out = true;
		return 0;
	}
	if (s != NULL && (strcmp(s, "false") == 0 || strcmp(s, "no") == 0)) {
		*out = false;
		return 0;
	}
	return cl_perr(ps, n, 0, "'%s' must be true or false", key);
}

static int
cl_read_number(struct cl_parse *ps, const yaml_node_t *n, const char *key, double lo, double hi,
               double *out)
{
	const char *s = cl_scalar(n);
	char *end = NULL;
	double v;

	if (s == NULL || *s == '\0')
		return cl_perr(ps, n, 0, "'%s' must be a number", key);
	v = strtod(s, &end);
	if (end == NULL || *end != '\0' || v != v)
		return cl_perr(ps, n, 0, "'%s' must be a number, not '%s'", key, s);
	if (v < lo || v > hi)
		return cl_perr(ps, n, 0, "'%s' must be between %g and %g", key, lo, hi);
	*out = v;
	return 0;
}

/* Growable arrays for the patterns while parsing. */
struct cl_pats {
	char **pat;
	unsigned *flags;
	size_t *rule;
	const yaml_node_t **node;
	size_t n, cap;
};

static int
cl_pats_push(struct cl_pats *p, const char *s, unsigned flags, size_t rule, const yaml_node_t *node)
{
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 64;
		char **a = realloc(p->pat, cap * sizeof(*a));
		if (a == NULL)
			return -HL_ENOMEM;
		p->pat = a;
		unsigned *b = realloc(p->flags, cap * sizeof(*b));
		if (b == NULL)
			return -HL_ENOMEM;
		p->flags = b;
		size_t *c = realloc(p->rule, cap * sizeof(*c));
		if (c == NULL)
			return -HL_ENOMEM;
		p->rule = c;
		const yaml_node_t **d = realloc(p->node, cap * sizeof(*d));
		if (d == NULL)
			return -HL_ENOMEM;
		p->node = d;
		p->cap = cap;
	}
	p->pat[p->n] = strdup(s);
	if (p->pat[p->n] == NULL)
		return -HL_ENOMEM;
	p->flags[p->n] = flags;
	p->rule[p->n] = rule;
	p->node[p->n] = node;
	p->n++;
	return 0;
}

static int
cl_check_regex(struct cl_parse *ps, const yaml_node_t *node, const char *pat, bool caseless)
{
	int errcode = 0;
	PCRE2_SIZE erroff = 0;
	pcre2_code *re;
	PCRE2_UCHAR msg[160];
	int quote = node->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
	                            node->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE
	                    ? 1
	                    : 0;

	re = ps->trusted ? NULL
	                 : pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED,
	                                 PCRE2_MULTILINE | (caseless ? PCRE2_CASELESS : 0),
	                                 &errcode, &erroff, NULL);
	if (re == NULL && !ps->trusted) {
		pcre2_get_error_message(errcode, msg, sizeof(msg));
		return cl_perr(ps, node, quote + (int)erroff, "bad regex at offset %zu: %s",
		               (size_t)erroff, (const char *)msg);
	}
	pcre2_code_free(re);
	/* A pattern must not match across lines (ripgrep and the line mapping
	 * are line-oriented): reject a literal newline in the text. */
	if (strchr(pat, '\n') != NULL)
		return cl_perr(ps, node, 0, "pattern contains a newline");
	for (const char *p = pat; *p != '\0'; p++) {
		if (*p == '\\' && p[1] != '\0') {
			p++;
			continue;
		}
		if (p[0] != '[' || p[1] != '^')
			continue;
		/* A negated class must exclude '\n' or it matches across lines. */
		const char *q = p + 2;
		bool has_nl = false;
		if (*q == ']')
			q++;
		for (; *q != '\0' && *q != ']'; q++) {
			if (*q == '\\' && q[1] != '\0') {
				has_nl = has_nl || q[1] == 'n' || q[1] == 's';
				q++;
			}
		}
		if (!has_nl)
			return cl_perr(
			        ps, node, quote + (int)(p - pat),
			        "negated class must exclude \\n (patterns are line-oriented)");
		p = *q ? q : q - 1;
	}
	return 0;
}

static const char *const cl_rule_keys[] = {
	"name", "type",  "priority", "patterns", "caseless",        "workflow",    "job",
	"step", "files", "events",   "argocd",   "require_context", "description", NULL
};

static int
cl_parse_rule(struct cl_parse *ps, const yaml_node_t *rn, size_t idx, struct cl_rule *r,
              struct cl_pats *pats)
{
	const yaml_node_t *name_node = NULL, *type_node = NULL, *prio_node = NULL;
	const yaml_node_t *pats_node = NULL;
	bool have_prio = false;
	int rc;

	snprintf(ps->label, sizeof(ps->label), "#%zu", idx + 1);
	ps->rule = ps->label;
	if (rn->type != YAML_MAPPING_NODE)
		return cl_perr(ps, rn, 0, "a rule must be a mapping");

	/* First pass: the name, so later errors can name the rule. */
	for (yaml_node_pair_t *p = rn->data.mapping.pairs.start; p < rn->data.mapping.pairs.top;
	     p++) {
		const yaml_node_t *k = yaml_document_get_node(&ps->doc, p->key);
		const char *ks = cl_scalar(k);
		if (ks != NULL && strcmp(ks, "name") == 0) {
			name_node = yaml_document_get_node(&ps->doc, p->value);
			const char *nm = cl_scalar(name_node);
			if (r->name != NULL)
				return cl_perr(ps, k, 0, "duplicate key 'name'");
			if (nm == NULL || *nm == '\0')
				return cl_perr(ps, name_node, 0,
				               "'name' must be a non-empty string");
			r->name = strdup(nm);
			if (r->name == NULL)
				return hl_err_set(ps->err, HL_ENOMEM, "out of memory");
			ps->rule = r->name;
		}
	}
	if (r->name == NULL)
		return cl_perr(ps, rn, 0, "missing 'name'");

	for (yaml_node_pair_t *p = rn->data.mapping.pairs.start; p < rn->data.mapping.pairs.top;
	     p++) {
		const yaml_node_t *k = yaml_document_get_node(&ps->doc, p->key);
		const yaml_node_t *v = yaml_document_get_node(&ps->doc, p->value);
		const char *ks = cl_scalar(k);
		bool known = false;

		if (ks == NULL || v == NULL)
			return cl_perr(ps, k, 0, "keys must be strings");
		for (size_t i = 0; cl_rule_keys[i] != NULL; i++)
			known = known || strcmp(cl_rule_keys[i], ks) == 0;
		if (!known)
			return cl_perr(ps, k, 0, "unknown key '%s'", ks);

		if (strcmp(ks, "type") == 0) {
			type_node = v;
			r->type = hl_catalog_type_find(cl_scalar(v));
			if (r->type == NULL)
				return cl_perr(ps, v, 0, "unknown failure type '%s'",
				               cl_scalar(v) ? cl_scalar(v) : "(not a string)");
		} else if (strcmp(ks, "priority") == 0) {
			prio_node = v;
			rc = cl_read_number(ps, v, "priority", 0, 10000, &r->priority);
			if (rc)
				return rc;
			have_prio = true;
		} else if (strcmp(ks, "patterns") == 0) {
			if (v->type != YAML_SEQUENCE_NODE)
				return cl_perr(ps, v, 0, "'patterns' must be a list of regexes");
			pats_node = v;
		} else if (strcmp(ks, "caseless") == 0) {
			rc = cl_read_bool(ps, v, ks, &r->caseless);
			if (rc)
				return rc;
		} else if (strcmp(ks, "require_context") == 0) {
			rc = cl_read_bool(ps, v, ks, &r->require_context);
			if (rc)
				return rc;
		} else if (cl_rule_list(r, ks) != NULL) {
			rc = cl_read_list(ps, v, ks, cl_rule_list(r, ks));
			if (rc)
				return rc;
		} else if (strcmp(ks, "description") == 0) {
			if (cl_scalar(v) == NULL)
				return cl_perr(ps, v, 0, "'description' must be a string");
		}
	}
	if (type_node == NULL)
		return cl_perr(ps, rn, 0, "missing 'type'");
	if (!have_prio)
		return cl_perr(ps, rn, 0, "missing 'priority'");
	(void)prio_node;

	r->pat_first = pats->n;
	if (pats_node != NULL) {
		size_t cnt = (size_t)(pats_node->data.sequence.items.top -
		                      pats_node->data.sequence.items.start);
		if (cnt == 0)
			return cl_perr(ps, pats_node, 0, "'patterns' is empty");
		for (size_t i = 0; i < cnt; i++) {
			const yaml_node_t *pn = yaml_document_get_node(
			        &ps->doc, pats_node->data.sequence.items.start[i]);
			const char *pat = cl_scalar(pn);
			if (pat == NULL || *pat == '\0')
				return cl_perr(ps, pn ? pn : pats_node, 0,
				               "patterns must be non-empty strings");
			rc = cl_check_regex(ps, pn, pat, r->caseless);
			if (rc)
				return rc;
			unsigned fl = HS_FLAG_MULTILINE | (r->caseless ? HS_FLAG_CASELESS : 0);
			if (cl_pats_push(pats, pat, fl, idx, pn) < 0)
				return hl_err_set(ps->err, HL_ENOMEM, "out of memory");
		}
	}
	r->n_pat = pats->n - r->pat_first;
	if (r->n_pat == 0 && r->workflow.n == 0 && r->job.n == 0 && r->step.n == 0 &&
	    r->files.n == 0 && r->events.n == 0 && r->argocd.n == 0)
		return cl_perr(ps, rn, 0,
		               "a rule needs patterns, name globs, files, events or argocd");
	if (r->require_context && r->workflow.n == 0 && r->job.n == 0 && r->step.n == 0)
		return cl_perr(ps, rn, 0, "'require_context' without workflow/job/step globs");
	return 0;
}

static int
cl_parse_scoring(struct cl_parse *ps, const yaml_node_t *n, struct hl_classifier *c)
{
	if (n->type != YAML_MAPPING_NODE)
		return cl_perr(ps, n, 0, "'scoring' must be a mapping");
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
	     p++) {
		const yaml_node_t *k = yaml_document_get_node(&ps->doc, p->key);
		const yaml_node_t *v = yaml_document_get_node(&ps->doc, p->value);
		const char *ks = cl_scalar(k);
		double *dst = NULL;
		if (ks != NULL && strcmp(ks, "recency") == 0)
			dst = &c->recency_bonus;
		else if (ks != NULL && strcmp(ks, "context") == 0)
			dst = &c->context_bonus;
		else if (ks != NULL && strcmp(ks, "files") == 0)
			dst = &c->files_bonus;
		if (dst == NULL || v == NULL)
			return cl_perr(ps, k, 0, "unknown scoring key '%s'", ks ? ks : "?");
		int rc = cl_read_number(ps, v, ks, 0, 1000, dst);
		if (rc)
			return rc;
	}
	return 0;
}

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

static void *
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

static int
cl_build_db(struct cl_parse *ps, struct hl_classifier *c, struct cl_pats *pats, bool embedded)
{
	hs_compile_error_t *cerr = NULL;
	unsigned *ids = NULL;
	int rc = 0;

	if (pats->n == 0) {
		ps->rule = NULL;
		return cl_perr(ps, NULL, 0, "no rule has log patterns");
	}
	/* The built-in rules come with their database compiled at build time;
	 * a database for another CPU or another rule set is compiled anew. */
	pthread_once(&cl_hs_once, cl_hs_setup);
	if (embedded && hl_classify_default_db_len > 0 && hl_classify_default_db_npat == pats->n)
		cl_populate_read(hl_classify_default_db, hl_classify_default_db_len);
	if (embedded && hl_classify_default_db_len > 0 && hl_classify_default_db_npat == pats->n &&
	    hs_deserialize_database((const char *)hl_classify_default_db,
	                            hl_classify_default_db_len, &c->db) == HS_SUCCESS) {
		if (hs_alloc_scratch(c->db, &c->proto) != HS_SUCCESS)
			return hl_err_set(ps->err, HL_ENOMEM, "allocating scan scratch");
		return 0;
	}
	ids = malloc(pats->n * sizeof(*ids));
	if (ids == NULL)
		return hl_err_set(ps->err, HL_ENOMEM, "out of memory");
	for (size_t i = 0; i < pats->n; i++)
		ids[i] = (unsigned)i;
	if (hs_compile_multi((const char *const *)pats->pat, pats->flags, ids, (unsigned)pats->n,
	                     HS_MODE_BLOCK, NULL, &c->db, &cerr) != HS_SUCCESS) {
		int e = cerr ? cerr->expression : -1;
		if (e >= 0 && (size_t)e < pats->n) {
			ps->rule = c->rules[pats->rule[e]].name;
			rc = cl_perr(ps, pats->node[e], 0, "pattern not supported: %s",
			             cerr->message);
		} else {
			ps->rule = NULL;
			rc = cl_perr(ps, NULL, 0, "compiling the patterns: %s",
			             cerr ? cerr->message : "unknown error");
		}
		hs_free_compile_error(cerr);
		goto out;
	}
	if (hs_alloc_scratch(c->db, &c->proto) != HS_SUCCESS) {
		rc = hl_err_set(ps->err, HL_ENOMEM, "allocating scan scratch");
		goto out;
	}
out:
	free(ids);
	return rc;
}

static int
cl_new(struct hl_classifier **out, const char *text, size_t n, const char *name, bool embedded,
       struct hl_err *err)
{
	struct cl_parse ps;
	yaml_parser_t parser;
	struct hl_classifier *c = NULL;
	struct cl_pats pats = { 0 };
	bool have_doc = false;
	const yaml_node_t *root, *rules = NULL;
	int rc = 0;

	memset(&ps, 0, sizeof(ps));
	ps.file = name ? name : "rules";
	ps.err = err;
	ps.trusted = embedded;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	pthread_mutex_init(&c->lock, NULL);
	c->recency_bonus = 10;
	c->context_bonus = 12;
	c->files_bonus = 10;

	if (!yaml_parser_initialize(&parser)) {
		rc = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, n);
	if (!yaml_parser_load(&parser, &ps.doc)) {
		rc = hl_err_set(err, HL_EPARSE, "%s:%zu:%zu: %s", ps.file,
		                parser.problem_mark.line + 1, parser.problem_mark.column + 1,
		                parser.problem ? parser.problem : "YAML syntax error");
		yaml_parser_delete(&parser);
		goto out;
	}
	yaml_parser_delete(&parser);
	have_doc = true;

	root = yaml_document_get_root_node(&ps.doc);
	if (root == NULL || root->type != YAML_MAPPING_NODE) {
		rc = cl_perr(&ps, root, 0, "the rules file must be a mapping with a 'rules' list");
		goto out;
	}
	for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
	     p++) {
		const yaml_node_t *k = yaml_document_get_node(&ps.doc, p->key);
		const yaml_node_t *v = yaml_document_get_node(&ps.doc, p->value);
		const char *ks = cl_scalar(k);
		if (ks != NULL && strcmp(ks, "rules") == 0 && v != NULL) {
			rules = v;
		} else if (ks != NULL && strcmp(ks, "version") == 0) {
			const char *vs = cl_scalar(v);
			if (vs == NULL || strcmp(vs, "1") != 0) {
				rc = cl_perr(&ps, v, 0, "unsupported 'version' (want 1)");
				goto out;
			}
		} else if (ks != NULL && strcmp(ks, "scoring") == 0 && v != NULL) {
			rc = cl_parse_scoring(&ps, v, c);
			if (rc)
				goto out;
		} else {
			rc = cl_perr(&ps, k, 0, "unknown top-level key '%s'", ks ? ks : "?");
			goto out;
		}
	}
	if (rules == NULL || rules->type != YAML_SEQUENCE_NODE) {
		rc = cl_perr(&ps, rules ? rules : root, 0, "'rules' must be a list");
		goto out;
	}
	size_t nr = (size_t)(rules->data.sequence.items.top - rules->data.sequence.items.start);
	if (nr == 0) {
		rc = cl_perr(&ps, rules, 0, "'rules' is empty");
		goto out;
	}
	c->rules = calloc(nr, sizeof(*c->rules));
	if (c->rules == NULL) {
		rc = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < nr; i++) {
		const yaml_node_t *rn =
		        yaml_document_get_node(&ps.doc, rules->data.sequence.items.start[i]);
		c->n_rules = i + 1;
		rc = cl_parse_rule(&ps, rn, i, &c->rules[i], &pats);
		if (rc)
			goto out;
		for (size_t j = 0; j < i; j++) {
			if (strcmp(c->rules[j].name, c->rules[i].name) == 0) {
				rc = cl_perr(&ps, rn, 0, "duplicate rule name");
				goto out;
			}
		}
	}
	rc = cl_build_db(&ps, c, &pats, embedded);
	if (rc)
		goto out;

	c->n_pat = pats.n;
	c->patterns = pats.pat;
	c->pat_flags = pats.flags;
	c->pat_rule = pats.rule;
	pats.pat = NULL;
	pats.flags = NULL;
	pats.rule = NULL;
	c->exported = calloc(c->n_pat ? c->n_pat : 1, sizeof(char *));
	if (c->exported == NULL) {
		rc = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < c->n_pat; i++) {
		bool ci = (c->pat_flags[i] & HS_FLAG_CASELESS) != 0;
		size_t len = strlen(c->patterns[i]);
		c->exported[i] = malloc(len + 5);
		if (c->exported[i] == NULL) {
			rc = hl_err_set(err, HL_ENOMEM, "out of memory");
			goto out;
		}
		snprintf(c->exported[i], len + 5, "%s%s", ci ? "(?i)" : "", c->patterns[i]);
	}
out:
	if (pats.pat != NULL) {
		for (size_t i = 0; i < pats.n; i++)
			free(pats.pat[i]);
	}
	free(pats.pat);
	free(pats.flags);
	free(pats.rule);
	free(pats.node);
	if (have_doc)
		yaml_document_delete(&ps.doc);
	if (rc) {
		if (c->patterns == NULL)
			c->n_pat = 0;
		hl_classifier_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

int
hl_classifier_new_from_text(struct hl_classifier **out, const char *text, size_t n,
                            const char *name, struct hl_err *err)
{
	return cl_new(out, text, n, name, false, err);
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

int
hl_classifier_new(struct hl_classifier **out, const char *path, struct hl_err *err)
{
	struct hl_buf b = HL_BUF_INIT(CL_MAX_RULES_FILE);
	int rc;

	if (path == NULL)
		return cl_new(out, hl_classify_default_rules, hl_classify_default_rules_len,
		              "rules/default.yaml", true, err);
	rc = hl_file_read(&b, path, err);
	if (rc == 0)
		rc = hl_classifier_new_from_text(out, b.data, b.len, path, err);
	hl_buf_release(&b);
	return rc;
}

/* ---------------------------------------------------------------------- */
/* scratch pool                                                           */

static hs_scratch_t *
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

static void
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

/* ---------------------------------------------------------------------- */
/* preprocessing                                                          */

/* Length of a GitHub Actions timestamp prefix "2024-01-15T10:30:00.1234567Z "
 * at p (0 if none). */
static size_t
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
	if (p[i] == '.') {
		i++;
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

/* Length of the escape sequence starting with ESC at p[0]. */
static size_t
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
	if (p[1] == ']') { /* OSC: up to BEL or ESC \ */
		for (i = 2; i < n && i < 512; i++) {
			if (p[i] == '\n')
				return i; /* never swallow a line end */
			if (p[i] == '\a')
				return i + 1;
			if (p[i] == 0x1b && i + 1 < n && p[i + 1] == '\\')
				return i + 2;
		}
		return 2;
	}
	return p[1] == '\n' ? 1 : 2; /* two-byte sequence: ESC + one char */
}

static bool
cl_has_prefix(const char *p, size_t n, const char *lit)
{
	size_t l = strlen(lit);
	return n >= l && memcmp(p, lit, l) == 0;
}

/* Post-processes one cleaned line in place; returns its new length. */
static size_t
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
	/* ... except exit code 137 (SIGKILL, usually the OOM killer). */
	if ((cl_has_prefix(q, m, "Process completed with exit code") ||
	     cl_has_prefix(q, m, "[error]Process completed with exit code")) &&
	    memmem(q, m, "code 137", 8) == NULL)
		return 0;
	return n;
}

/*
 * Copies bytes from src[*i] to dst[*o] until a '\n' or ESC (returned, and left
 * at src[*i]) or until n or the output limit lim (returns 0). dst must have 16
 * bytes of slack past lim.
 */
static int
cl_copy_until_special(char *dst, size_t *o, size_t lim, const char *src, size_t *i, size_t n)
{
	size_t ii = *i, oo = *o;
#if defined(__SSE2__)
	const __m128i vnl = _mm_set1_epi8('\n'), vesc = _mm_set1_epi8(0x1b);
	while (ii + 16 <= n && oo < lim) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(src + ii));
		int m = _mm_movemask_epi8(
		        _mm_or_si128(_mm_cmpeq_epi8(v, vnl), _mm_cmpeq_epi8(v, vesc)));
		_mm_storeu_si128((__m128i *)(void *)(dst + oo), v);
		if (m != 0) {
			unsigned k = (unsigned)__builtin_ctz((unsigned)m);
			ii += k;
			oo += k;
			if (oo > lim) {
				ii -= oo - lim;
				oo = lim;
				break;
			}
			*i = ii;
			*o = oo;
			return (unsigned char)src[ii];
		}
		ii += 16;
		oo += 16;
	}
	if (oo > lim) {
		ii -= oo - lim;
		oo = lim;
	}
#endif
	while (ii < n && oo < lim) {
		char ch = src[ii];
		if (ch == '\n' || ch == 0x1b) {
			*i = ii;
			*o = oo;
			return (unsigned char)ch;
		}
		dst[oo++] = ch;
		ii++;
	}
	*i = ii;
	*o = oo;
	return 0;
}

#if defined(__x86_64__) && defined(__GNUC__)
/* The same with 32-byte AVX2 vectors, used when the CPU has AVX2. */
__attribute__((target("avx2"))) static int
cl_copy_until_special_avx2(char *dst, size_t *o, size_t lim, const char *src, size_t *i, size_t n)
{
	size_t ii = *i, oo = *o;
	const __m256i vnl = _mm256_set1_epi8('\n'), vesc = _mm256_set1_epi8(0x1b);

	while (ii + 32 <= n && oo < lim) {
		__m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(src + ii));
		unsigned m = (unsigned)_mm256_movemask_epi8(
		        _mm256_or_si256(_mm256_cmpeq_epi8(v, vnl), _mm256_cmpeq_epi8(v, vesc)));
		_mm256_storeu_si256((__m256i *)(void *)(dst + oo), v);
		if (m != 0) {
			unsigned k = (unsigned)__builtin_ctz(m);
			ii += k;
			oo += k;
			if (oo > lim) {
				ii -= oo - lim;
				oo = lim;
				break;
			}
			*i = ii;
			*o = oo;
			return (unsigned char)src[ii];
		}
		ii += 32;
		oo += 32;
	}
	if (oo > lim) {
		ii -= oo - lim;
		oo = lim;
	}
	*i = ii;
	*o = oo;
	return cl_copy_until_special(dst, o, lim, src, i, n);
}

static int (*cl_copy_fn)(char *, size_t *, size_t, const char *, size_t *,
                         size_t) = cl_copy_until_special;
static pthread_once_t cl_copy_once = PTHREAD_ONCE_INIT;

static bool cl_have_avx2;

static void
cl_copy_pick(void)
{
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx2")) {
		cl_copy_fn = cl_copy_until_special_avx2;
		cl_have_avx2 = true;
	}
}
#define CL_COPY_INIT() pthread_once(&cl_copy_once, cl_copy_pick)
#else
#define cl_copy_fn     cl_copy_until_special
#define CL_COPY_INIT() ((void)0)
#define cl_have_avx2   false
#endif

/* Cleans one line (without its '\n') into dst, at most max bytes: no
 * timestamp, escape sequences, group markers or boilerplate. */
static size_t
cl_clean_line_into(char *dst, size_t max, const char *src, size_t n)
{
	size_t i = cl_timestamp_len(src, n), o = 0;

	while (i < n && o < max) {
		const char *esc = memchr(src + i, 0x1b, n - i);
		size_t stop = esc ? (size_t)(esc - src) : n;
		size_t len = stop - i;
		if (len > max - o)
			len = max - o;
		memcpy(dst + o, src + i, len);
		o += len;
		i = stop;
		if (esc != NULL)
			i += cl_escape_len(src + i, n - i);
	}
	return cl_clean_line(dst, o);
}

/* ---------------------------------------------------------------------- */
/* scanning and scoring                                                   */

static char *cl_line_text(const char *p, size_t n);

/*
 * The log is cleaned and scanned in chunks of whole lines (patterns never
 * span lines, so this finds exactly what one scan of the whole cleaned log
 * would), into one reusable buffer: no copy of the whole log is made. Per
 * pattern the scan keeps the match count and the line of the last match
 * (1-based number and raw offset of its start, for re-reading the text).
 */
#define CL_CHUNK    (256u * 1024u)
#define CL_LINE_MAX (64u * 1024u) /* longer lines are matched on a prefix */

struct cl_scan {
	size_t *count;
	size_t *line;    /* line number of the last match; 0 = none */
	size_t *raw;     /* raw offset of that line */
	size_t *local;   /* chunk-local end offset of the last match */
	unsigned *dirty; /* patterns that matched in the current chunk */
	unsigned char *in_dirty;
	size_t n_dirty;
	/* line starts of the current chunk: cleaned and raw offsets */
	size_t *lc, *lr;
	size_t n_lines, cap_lines;
};

static int
cl_on_match(unsigned int id, unsigned long long from, unsigned long long to, unsigned int flags,
            void *ctx)
{
	struct cl_scan *s = ctx;
	(void)from;
	(void)flags;
	s->local[id] = (size_t)to;
	s->count[id]++;
	if (!s->in_dirty[id]) {
		s->in_dirty[id] = 1;
		s->dirty[s->n_dirty++] = id;
	}
	return 0;
}

/* Maps the chunk's matches to lines; first_line is the chunk's first line. */
static void
cl_scan_settle(struct cl_scan *s, size_t first_line)
{
	for (size_t d = 0; d < s->n_dirty; d++) {
		unsigned id = s->dirty[d];
		size_t last = s->local[id] > 0 ? s->local[id] - 1 : 0; /* last byte */
		size_t lo = 0, hi = s->n_lines;                        /* lc[lo] <= last */
		while (hi - lo > 1) {
			size_t mid = lo + (hi - lo) / 2;
			if (s->lc[mid] <= last)
				lo = mid;
			else
				hi = mid;
		}
		s->line[id] = first_line + lo;
		s->raw[id] = s->lr[lo];
		s->in_dirty[id] = 0;
	}
	s->n_dirty = 0;
}

static void
cl_scan_release(struct cl_scan *s)
{
	free(s->count);
	free(s->line);
	free(s->raw);
	free(s->local);
	free(s->dirty);
	free(s->in_dirty);
	free(s->lc);
	free(s->lr);
}

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
	CL_COPY_INIT();
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
		if (o > 0 &&
		    hs_scan(c->db, buf, (unsigned)o, 0, scratch, cl_on_match, s) != HS_SUCCESS) {
			rc = hl_err_set(err, HL_EINTERNAL, "vectorscan scan failed");
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

static int
cl_scan_alloc(struct cl_scan *s, size_t n_pat)
{
	memset(s, 0, sizeof(*s));
	s->count = calloc(n_pat + 1, sizeof(size_t));
	s->line = calloc(n_pat + 1, sizeof(size_t));
	s->raw = calloc(n_pat + 1, sizeof(size_t));
	s->local = calloc(n_pat + 1, sizeof(size_t));
	s->dirty = calloc(n_pat + 1, sizeof(unsigned));
	s->in_dirty = calloc(n_pat + 1, 1);
	if (s->count == NULL || s->line == NULL || s->raw == NULL || s->local == NULL ||
	    s->dirty == NULL || s->in_dirty == NULL)
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

/* Cleans and scans the whole log into s (allocated by the caller), on up to
 * CL_MAX_THREADS threads for big logs; sets *total_lines. */
static int
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
	if (k == 1)
		return cl_scan_segment(c, s, src, 0, n, total_lines, err);

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
	/* Merge: counts add up, the last match is in the latest segment. */
	for (size_t j = 0; j < k; j++) {
		for (size_t id = 0; j > 0 && id < c->n_pat; id++) {
			if (w[j].scan.count[id] == 0)
				continue;
			w[0].scan.count[id] += w[j].scan.count[id];
			w[0].scan.line[id] = base + w[j].scan.line[id];
			w[0].scan.raw[id] = w[j].scan.raw[id];
		}
		base += w[j].lines;
	}
	*total_lines = base;
out:
	*s = w[0].scan; /* the caller releases it */
	for (size_t j = 1; j < k; j++)
		cl_scan_release(&w[j].scan);
	return rc;
}

/* The cleaned, printable text of the raw line starting at raw offset off
 * (from a file: its first CL_LINE_MAX bytes, more than the text keeps). */
static char *
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

static bool
cl_list_has(const struct cl_list *l, const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	for (size_t i = 0; i < l->n; i++)
		if (strcasecmp(l->v[i], s) == 0)
			return true;
	return false;
}

static bool
cl_list_glob(const struct cl_list *l, const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	for (size_t i = 0; i < l->n; i++)
		if (fnmatch(l->v[i], s, FNM_CASEFOLD) == 0)
			return true;
	return false;
}

/* Copies a line as valid UTF-8 without control characters, trimmed and
 * clipped to CL_MAX_LINE_TEXT bytes. */
static char *
cl_line_text(const char *p, size_t n)
{
	char *out;
	size_t o = 0, i = 0;

	while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	out = malloc(CL_MAX_LINE_TEXT + 8);
	if (out == NULL)
		return NULL;
	while (i < n && o < CL_MAX_LINE_TEXT) {
		unsigned char ch = (unsigned char)p[i];
		size_t len = 0;
		if (ch < 0x80) {
			out[o++] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
			i++;
			continue;
		}
		if (ch >= 0xc2 && ch <= 0xdf)
			len = 2;
		else if (ch >= 0xe0 && ch <= 0xef)
			len = 3;
		else if (ch >= 0xf0 && ch <= 0xf4)
			len = 4;
		bool ok = len > 0 && i + len <= n;
		for (size_t k = 1; ok && k < len; k++)
			ok = ((unsigned char)p[i + k] & 0xc0) == 0x80;
		if (ok && len == 3) {
			unsigned char c1 = (unsigned char)p[i + 1];
			ok = !(ch == 0xe0 && c1 < 0xa0) && !(ch == 0xed && c1 >= 0xa0);
		}
		if (ok && len == 4) {
			unsigned char c1 = (unsigned char)p[i + 1];
			ok = !(ch == 0xf0 && c1 < 0x90) && !(ch == 0xf4 && c1 >= 0x90);
		}
		if (!ok) {
			out[o++] = '?';
			i++;
			continue;
		}
		memcpy(out + o, p + i, len);
		o += len;
		i += len;
	}
	out[o] = '\0';
	return out;
}

struct cl_cand {
	size_t rule;
	double score, recency, context, files;
	size_t line;    /* line of the rule's last match; 0 = none */
	size_t ev_line; /* last match of its first listed pattern that matched */
	size_t ev_raw;  /* raw offset of that line */
	size_t matches;
	const char *why;
};

static int
cl_cand_cmp(const void *a, const void *b)
{
	const struct cl_cand *x = a, *y = b;
	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	if (x->line != y->line)
		return x->line > y->line ? -1 : 1;
	return x->rule < y->rule ? -1 : x->rule > y->rule;
}

void
hl_verdict_release(struct hl_verdict *v)
{
	if (v == NULL)
		return;
	free(v->rule);
	free(v->evidence_line);
	for (size_t i = 0; i < v->n_candidates; i++) {
		free(v->candidates[i].rule);
		free(v->candidates[i].line);
	}
	memset(v, 0, sizeof(*v));
}

static int cl_classify(struct hl_verdict *out, struct hl_classifier *c,
                       const struct hl_classify_input *in, const struct cl_src *src,
                       struct hl_err *err);

int
hl_classify(struct hl_verdict *out, struct hl_classifier *c, const struct hl_classify_input *in,
            struct hl_err *err)
{
	struct cl_src src = { in->log ? in->log : "", -1, in->log ? in->log_len : 0 };
	return cl_classify(out, c, in, &src, err);
}

int
hl_classify_fd(struct hl_verdict *out, struct hl_classifier *c, const struct hl_classify_input *in,
               int fd, size_t size, struct hl_err *err)
{
	struct cl_src src = { NULL, fd, size };
	return cl_classify(out, c, in, &src, err);
}

static int
cl_classify(struct hl_verdict *out, struct hl_classifier *c, const struct hl_classify_input *in,
            const struct cl_src *src, struct hl_err *err)
{
	struct hl_verdict v;
	struct cl_scan sc;
	struct cl_cand *cands = NULL;
	size_t n_cands = 0, total_lines = 0;
	double share_den;
	int rc = 0;

	memset(&v, 0, sizeof(v));
	cands = calloc(c->n_rules + 1, sizeof(*cands));
	if (cl_scan_alloc(&sc, c->n_pat) != 0 || cands == NULL) {
		rc = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	rc = cl_scan_log(c, &sc, src, &total_lines, err);
	if (rc)
		goto out;

	/* Changed-file shares per rule use this denominator. */
	share_den = in->n_changed > 0 ? (double)in->n_changed : 1.0;

	for (size_t ri = 0; ri < c->n_rules; ri++) {
		const struct cl_rule *r = &c->rules[ri];
		struct cl_cand cd;
		bool ctx = false, has_ctx = r->workflow.n || r->job.n || r->step.n;

		memset(&cd, 0, sizeof(cd));
		cd.rule = ri;
		if (r->events.n && !cl_list_has(&r->events, in->event))
			continue;
		if (r->argocd.n && !cl_list_has(&r->argocd, in->argocd_sync) &&
		    !cl_list_has(&r->argocd, in->argocd_health))
			continue;
		if (has_ctx)
			ctx = cl_list_glob(&r->workflow, in->workflow_name) ||
			      cl_list_glob(&r->job, in->job_name) ||
			      cl_list_glob(&r->step, in->failed_step);
		if (r->require_context && !ctx)
			continue;
		for (size_t k = r->pat_first; k < r->pat_first + r->n_pat; k++) {
			if (sc.count[k] == 0)
				continue;
			cd.matches += sc.count[k];
			if (cd.ev_line == 0) {
				cd.ev_line = sc.line[k];
				cd.ev_raw = sc.raw[k];
			}
			if (sc.line[k] > cd.line)
				cd.line = sc.line[k];
		}
		if (r->n_pat > 0 && cd.matches == 0)
			continue;
		if (r->files.n > 0) {
			size_t hit = 0;
			for (size_t f = 0; f < in->n_changed; f++)
				if (in->changed_files[f] != NULL &&
				    cl_glob_any((const char *const *)r->files.v,
				                in->changed_files[f]))
					hit++;
			cd.files = c->files_bonus * (double)hit / share_den;
		}
		if (r->n_pat == 0 && r->events.n == 0 && r->argocd.n == 0 && !ctx && cd.files <= 0)
			continue;
		cd.context = ctx ? c->context_bonus : 0;
		if (cd.line > 0 && total_lines > 0)
			cd.recency = c->recency_bonus * (double)cd.line / (double)total_lines;
		cd.score = r->priority + cd.context + cd.files + cd.recency;
		cd.why = r->events.n   ? "event type"
		         : r->argocd.n ? "argocd status"
		         : r->n_pat    ? "log pattern"
		         : ctx         ? "workflow/job/step name"
		                       : "changed files";
		cands[n_cands++] = cd;
	}
	qsort(cands, n_cands, sizeof(*cands), cl_cand_cmp);
	if (n_cands > HL_CLASSIFY_MAX_CANDIDATES)
		n_cands = HL_CLASSIFY_MAX_CANDIDATES;

	for (size_t i = 0; i < n_cands; i++) {
		struct hl_classify_candidate *hc = &v.candidates[i];
		const struct cl_rule *r = &c->rules[cands[i].rule];
		v.n_candidates = i + 1;
		hc->rule = strdup(r->name);
		hc->failure_type = r->type->name;
		hc->agent = r->type->agent->id;
		hc->score = cands[i].score;
		hc->priority = r->priority;
		hc->recency = cands[i].recency;
		hc->context = cands[i].context;
		hc->files = cands[i].files;
		hc->matches = cands[i].matches;
		hc->why = cands[i].why;
		hc->line_number = cands[i].ev_line;
		hc->line =
		        cands[i].ev_line > 0 ? cl_raw_line_text(src, cands[i].ev_raw) : strdup("");
		if (hc->rule == NULL || hc->line == NULL) {
			rc = hl_err_set(err, HL_ENOMEM, "out of memory");
			goto out;
		}
	}

	v.log_lines = total_lines;
	{
		const struct hl_catalog_type *t = hl_catalog_default_type();
		const struct hl_classify_candidate *ev = NULL;
		if (n_cands > 0) {
			t = c->rules[cands[0].rule].type;
			ev = &v.candidates[0];
			/* A winner without log evidence borrows the best log line. */
			for (size_t i = 0; ev->line_number == 0 && i < n_cands; i++)
				if (v.candidates[i].line_number > 0)
					ev = &v.candidates[i];
		}
		v.type = t;
		v.failure_type = t->name;
		v.category = t->category->name;
		v.agent = t->agent->id;
		v.fix_approach = t->fix_approach;
		v.rule = strdup(n_cands > 0 ? v.candidates[0].rule : "default");
		v.evidence_line_number = ev ? ev->line_number : 0;
		v.evidence_line = strdup(ev && ev->line ? ev->line : "");
		if (v.rule == NULL || v.evidence_line == NULL) {
			rc = hl_err_set(err, HL_ENOMEM, "out of memory");
			goto out;
		}
	}
out:
	cl_scan_release(&sc);
	free(cands);
	if (rc) {
		hl_verdict_release(&v);
		return rc;
	}
	*out = v;
	return 0;
}

int
hl_verdict_explain(struct hl_buf *out, const struct hl_verdict *v)
{
	hl_buf_appendf(out, "verdict: agent=%s failure_type=%s category=%s rule=%s\n", v->agent,
	               v->failure_type, v->category, v->rule);
	if (v->evidence_line_number > 0)
		hl_buf_appendf(out, "evidence: line %zu of %zu: %s\n", v->evidence_line_number,
		               v->log_lines, v->evidence_line);
	else
		hl_buf_appendf(out, "evidence: none in the log (%zu lines)\n", v->log_lines);
	if (v->n_candidates == 0) {
		hl_buf_append_str(out, "candidates: none; no rule fired, so the default "
		                       "(atlas/general) applies\n");
		return hl_buf_error(out);
	}
	hl_buf_append_str(out, "candidates (best first; score = priority + recency + context "
	                       "+ files):\n");
	for (size_t i = 0; i < v->n_candidates; i++) {
		const struct hl_classify_candidate *c = &v->candidates[i];
		hl_buf_appendf(out,
		               "  %zu. %-28s %-22s -> %-6s score %6.2f = %g + %.2f + %.2f + %.2f"
		               " (%s",
		               i + 1, c->rule, c->failure_type, c->agent, c->score, c->priority,
		               c->recency, c->context, c->files, c->why);
		if (c->matches > 0)
			hl_buf_appendf(out, ", %zu match%s", c->matches,
			               c->matches == 1 ? "" : "es");
		hl_buf_append_str(out, ")\n");
		if (c->line_number > 0)
			hl_buf_appendf(out, "       line %zu: %s\n", c->line_number, c->line);
	}
	const struct hl_classify_candidate *w = &v->candidates[0];
	size_t k = 1;
	while (k < v->n_candidates && strcmp(v->candidates[k].agent, w->agent) == 0)
		k++;
	if (k < v->n_candidates)
		hl_buf_appendf(out,
		               "why: '%s' (%s) beat the best rule for another agent, '%s' (%s -> "
		               "%s), by %.2f points\n",
		               w->rule, w->why, v->candidates[k].rule,
		               v->candidates[k].failure_type, v->candidates[k].agent,
		               w->score - v->candidates[k].score);
	else
		hl_buf_appendf(out, "why: only rules for %s fired; '%s' scored highest\n", w->agent,
		               w->rule);
	return hl_buf_error(out);
}
