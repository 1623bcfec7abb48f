/*
 * rules.c - loading a rules file (YAML, see rules/default.yaml for the
 * format) into a classifier: every rule validated with its position (file,
 * line, column; PCRE2 gives the column of a bad regex), its failure type
 * looked up in the catalogue, its patterns collected for the one Vectorscan
 * database (db.c), and the patterns exported for ripgrep. A rule set is
 * immutable once built.
 */
#include "base/buf.h"
#include "base/file.h"
#include "classify/classify_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#define CL_MAX_RULES_FILE (4u << 20)

/*
 * Bounds on what a rules file may ask the regex compilers for, so a file
 * cannot take minutes and gigabytes to load (`healer check-rules` and the
 * server's start): rules, patterns per rule, bytes per pattern, nesting,
 * and a compile weight (see cl_regex_weight) per pattern and for all of
 * them together. The built-in rules use a small part of each.
 */
#define CL_MAX_RULES          1000
#define CL_MAX_RULE_PATTERNS  100
#define CL_MAX_PATTERN_BYTES  2048
#define CL_MAX_GROUP_DEPTH    32
#define CL_MAX_PATTERN_WEIGHT 10000
#define CL_MAX_TOTAL_WEIGHT   100000

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
	free(c->pat_canon);
	cl_verify_release(c);
	cl_db_release(c);
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

size_t
hl_classifier_gated_count(const struct hl_classifier *c)
{
	return c->n_gated;
}

/* Parsing state: the document, the file name and the rule being read. */
struct cl_parse {
	uint64_t weight; /* compile weight of the patterns so far */
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

/* A mapping whose key appears twice is an error, not "the last one wins"
 * (a second 'rules:' list dropped the first one's rules without a word). */
static int
cl_check_keys(struct cl_parse *ps, const yaml_node_t *map)
{
	if (map == NULL || map->type != YAML_MAPPING_NODE)
		return 0;
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		const yaml_node_t *k = yaml_document_get_node(&ps->doc, p->key);
		const char *ks = cl_scalar(k);

		for (yaml_node_pair_t *q = map->data.mapping.pairs.start; ks && q < p; q++)
			if (cl_scalar(yaml_document_get_node(&ps->doc, q->key)) &&
			    strcmp(cl_scalar(yaml_document_get_node(&ps->doc, q->key)), ks) == 0)
				return cl_perr(ps, k, 0, "duplicate key '%s'", ks);
	}
	return 0;
}

/* A string holding a NUL would be read up to it: "a\0b" as the pattern "a". */
static int
cl_check_nul(struct cl_parse *ps)
{
	for (yaml_node_t *n = ps->doc.nodes.start; n < ps->doc.nodes.top; n++)
		if (n->type == YAML_SCALAR_NODE &&
		    memchr(n->data.scalar.value, '\0', n->data.scalar.length))
			return cl_perr(ps, n, 0, "a string holds a NUL character (after '%.40s')",
			               (const char *)n->data.scalar.value);
	return 0;
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

/* ---- compile weight --------------------------------------------------- */

#define CL_WEIGHT_CAP ((uint64_t)1 << 40)

static uint64_t
cl_wadd(uint64_t a, uint64_t b)
{
	return a + b > CL_WEIGHT_CAP ? CL_WEIGHT_CAP : a + b;
}

static uint64_t
cl_wmul(uint64_t a, uint64_t b)
{
	return b && a > CL_WEIGHT_CAP / b ? CL_WEIGHT_CAP : a * b;
}

/* A {m}, {m,}, {m,n} or {,n} quantifier at p: its length, and in *mult its
 * larger bound (at least 1); 0 when p is a literal '{'. */
static size_t
cl_quant_brace(const char *p, uint64_t *mult)
{
	const char *q = p + 1;
	uint64_t a = 0, b = 0;
	bool da = false, db = false;

	for (; *q >= '0' && *q <= '9'; q++, da = true)
		a = a > CL_WEIGHT_CAP ? a : a * 10 + (uint64_t)(*q - '0');
	if (*q == ',')
		for (q++; *q >= '0' && *q <= '9'; q++, db = true)
			b = b > CL_WEIGHT_CAP ? b : b * 10 + (uint64_t)(*q - '0');
	if (*q != '}' || (!da && !db))
		return 0;
	*mult = a > b ? a : b;
	if (*mult == 0)
		*mult = 1;
	return (size_t)(q + 1 - p);
}

/* Skips a character class starting at s[*pos] == '['. */
static void
cl_skip_class(const char *s, size_t *pos)
{
	(*pos)++;
	if (s[*pos] == '^')
		(*pos)++;
	if (s[*pos] == ']')
		(*pos)++;
	while (s[*pos] && s[*pos] != ']') {
		if (s[*pos] == '\\' && s[*pos + 1]) {
			*pos += 2;
		} else if (s[*pos] == '[' && s[*pos + 1] == ':') {
			const char *end = strstr(s + *pos + 2, ":]");
			*pos = end ? (size_t)(end - s) + 2 : *pos + 1;
		} else {
			(*pos)++;
		}
	}
	if (s[*pos] == ']')
		(*pos)++;
}

/* Skips an escape at s[*pos] == '\\'; returns the atoms it stands for. */
static uint64_t
cl_skip_escape(const char *s, size_t *pos)
{
	char c;

	(*pos)++;
	if (!s[*pos])
		return 1;
	c = s[(*pos)++];
	if (c == 'Q') { /* \Q...\E: literal text */
		const char *end = strstr(s + *pos, "\\E");
		size_t n = end ? (size_t)(end - (s + *pos)) : strlen(s + *pos);
		*pos += n + (end ? 2 : 0);
		return n ? n : 1;
	}
	if (strchr("xopPNgk", c) && s[*pos] == '{') {
		const char *end = strchr(s + *pos, '}');
		*pos = end ? (size_t)(end - s) + 1 : strlen(s);
	}
	return 1;
}

/*
 * The compile weight of the alternatives from s[*pos] to a ')' or the end:
 * about the size of the automaton the pattern unrolls to. An atom (a
 * character, a class, an escape) weighs 1, a group the sum of its
 * alternatives plus 1; a bounded repeat {m,n} multiplies what it repeats
 * by max(m, n), so nested repeats multiply, and * or + by 4. Saturates at
 * CL_WEIGHT_CAP.
 * *deep is set past CL_MAX_GROUP_DEPTH nested groups.
 */
static uint64_t
cl_weight_alts(const char *s, size_t *pos, int depth, bool *deep)
{
	uint64_t total = 0, seq = 0, atom, mult;
	size_t n;

	while (s[*pos] && s[*pos] != ')') {
		switch (s[*pos]) {
		case '|':
			total = cl_wadd(total, seq);
			seq = 0;
			(*pos)++;
			continue;
		case '(':
			(*pos)++;
			if (depth >= CL_MAX_GROUP_DEPTH) {
				*deep = true;
				return CL_WEIGHT_CAP;
			}
			atom = cl_wadd(1, cl_weight_alts(s, pos, depth + 1, deep));
			if (s[*pos] == ')')
				(*pos)++;
			break;
		case '[':
			cl_skip_class(s, pos);
			atom = 1;
			break;
		case '\\':
			atom = cl_skip_escape(s, pos);
			break;
		default:
			(*pos)++;
			atom = 1;
			break;
		}
		for (;;) {
			char c = s[*pos];

			if (c == '*' || c == '+') {
				atom = cl_wmul(atom, 4); /* a loop: its body and its back edges */
				(*pos)++;
			} else if (c == '?') {
				(*pos)++;
			} else if (c == '{' && (n = cl_quant_brace(s + *pos, &mult)) != 0) {
				atom = cl_wmul(atom, mult);
				*pos += n;
			} else {
				break;
			}
		}
		seq = cl_wadd(seq, atom);
	}
	return cl_wadd(total, seq);
}

/* The compile weight of a whole pattern (see cl_weight_alts). */
static uint64_t
cl_regex_weight(const char *pat, bool *deep)
{
	uint64_t w = 0;
	size_t pos = 0;

	*deep = false;
	while (pat[pos]) {
		w = cl_wadd(w, cl_weight_alts(pat, &pos, 0, deep));
		if (pat[pos] == ')')
			pos++; /* unbalanced: PCRE2 refuses it anyway */
	}
	return w;
}

/* The bounds of one pattern, and the running total of all of them. */
static int
cl_check_bounds(struct cl_parse *ps, const yaml_node_t *node, const char *pat)
{
	size_t len = strlen(pat);
	bool deep;
	uint64_t w;

	if (len > CL_MAX_PATTERN_BYTES)
		return cl_perr(ps, node, 0, "pattern is %zu bytes long, more than %d", len,
		               CL_MAX_PATTERN_BYTES);
	w = cl_regex_weight(pat, &deep);
	if (deep)
		return cl_perr(ps, node, 0, "pattern nests groups more than %d deep",
		               CL_MAX_GROUP_DEPTH);
	if (w > CL_MAX_PATTERN_WEIGHT)
		return cl_perr(ps, node, 0,
		               "pattern is too heavy to compile (weight %llu, at most %d): use"
		               " smaller repeat counts or fewer nested repeats",
		               (unsigned long long)w, CL_MAX_PATTERN_WEIGHT);
	ps->weight = cl_wadd(ps->weight, w);
	if (ps->weight > CL_MAX_TOTAL_WEIGHT)
		return cl_perr(ps, node, 0,
		               "the patterns up to here are too heavy to compile together"
		               " (weight %llu, at most %d): use fewer or lighter patterns",
		               (unsigned long long)ps->weight, CL_MAX_TOTAL_WEIGHT);
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
	/* A match is a line's bytes (the line mapping and the counts take one
	 * per match end): one that can be empty ('^', '$', '\b') is refused. */
	if (!ps->trusted) {
		hs_expr_info_t *info = NULL;
		hs_compile_error_t *cerr = NULL;
		unsigned fl = HS_FLAG_MULTILINE | (caseless ? HS_FLAG_CASELESS : 0);

		if (hs_expression_info(pat, fl, &info, &cerr) == HS_SUCCESS) {
			bool empty = info->min_width == 0;

			free(info);
			if (empty)
				return cl_perr(ps, node, quote,
				               "pattern can match an empty string");
		} else {
			hs_free_compile_error(cerr); /* reported when compiled */
		}
	}
	/* A pattern must not match across lines (ripgrep and the line mapping
	 * are line-oriented): reject a literal newline in the text. Other ways
	 * to match a line end ('\s', '\W') are confirmed on one line by
	 * verify.c. */
	if (strchr(pat, '\n') != NULL)
		return cl_perr(ps, node, 0, "pattern contains a newline");
	for (const char *p = pat; *p != '\0'; p++) {
		if (*p == '\\' && p[1] != '\0') {
			/* the buffer's start or end is a chunk's or segment's */
			if (strchr("AzZG", p[1]) != NULL)
				return cl_perr(
				        ps, node, quote + (int)(p - pat),
				        "'\\%c' anchors to the buffer, not a line (use '^' or"
				        " '$')",
				        p[1]);
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
	"name",  "type",   "priority",        "patterns",    "caseless", "workflow", "job", "step",
	"files", "events", "require_context", "description", "quote",    "argocd",   NULL
};

/* Validates the regexes of a 'patterns' or 'quote' list and adds them. */
static int
cl_parse_patterns(struct cl_parse *ps, const yaml_node_t *list, const char *key, size_t idx,
                  const struct cl_rule *r, struct cl_pats *pats)
{
	size_t cnt = (size_t)(list->data.sequence.items.top - list->data.sequence.items.start);
	int rc;

	if (cnt == 0)
		return cl_perr(ps, list, 0, "'%s' is empty", key);
	if (cnt > CL_MAX_RULE_PATTERNS)
		return cl_perr(ps, list, 0, "a rule has %zu %s, more than %d", cnt, key,
		               CL_MAX_RULE_PATTERNS);
	for (size_t i = 0; i < cnt; i++) {
		const yaml_node_t *pn =
		        yaml_document_get_node(&ps->doc, list->data.sequence.items.start[i]);
		const char *pat = cl_scalar(pn);
		if (pat == NULL || *pat == '\0')
			return cl_perr(ps, pn ? pn : list, 0, "%s must be non-empty strings", key);
		rc = cl_check_bounds(ps, pn, pat);
		if (rc)
			return rc;
		rc = cl_check_regex(ps, pn, pat, r->caseless);
		if (rc)
			return rc;
		unsigned fl = HS_FLAG_MULTILINE | (r->caseless ? HS_FLAG_CASELESS : 0);
		if (cl_pats_push(pats, pat, fl, idx, pn) < 0)
			return hl_err_set(ps->err, HL_ENOMEM, "out of memory");
	}
	return 0;
}

static int
cl_parse_rule(struct cl_parse *ps, const yaml_node_t *rn, size_t idx, struct cl_rule *r,
              struct cl_pats *pats)
{
	const yaml_node_t *name_node = NULL, *type_node = NULL, *prio_node = NULL;
	const yaml_node_t *pats_node = NULL, *quote_node = NULL;
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
	if ((rc = cl_check_keys(ps, rn)) != 0)
		return rc;

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
		} else if (strcmp(ks, "quote") == 0) {
			if (v->type != YAML_SEQUENCE_NODE)
				return cl_perr(ps, v, 0, "'quote' must be a list of regexes");
			quote_node = v;
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
	if (pats_node != NULL && (rc = cl_parse_patterns(ps, pats_node, "patterns", idx, r, pats)))
		return rc;
	r->n_pat = pats->n - r->pat_first;
	if (quote_node != NULL && r->n_pat == 0)
		return cl_perr(ps, quote_node, 0, "'quote' without 'patterns'");
	r->quote_first = pats->n;
	if (quote_node != NULL && (rc = cl_parse_patterns(ps, quote_node, "quote", idx, r, pats)))
		return rc;
	r->n_quote = pats->n - r->quote_first;
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
	int rc;

	if (n->type != YAML_MAPPING_NODE)
		return cl_perr(ps, n, 0, "'scoring' must be a mapping");
	if ((rc = cl_check_keys(ps, n)) != 0)
		return rc;
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
		rc = cl_read_number(ps, v, ks, 0, 1000, dst);
		if (rc)
			return rc;
	}
	return 0;
}

/*
 * Error-looking lines, whatever the rules: "error" or "fatal" as a word,
 * FAILED, a non-zero exit. Not a rule's evidence; the last line they match
 * is the one quoted when no rule's log pattern supports the verdict.
 */
static const struct {
	const char *re;
	bool caseless;
} cl_quote_patterns[] = {
	{ "\\berror\\b", true },
	{ "\\bFAILED\\b", false },
	{ "\\bfatal\\b", true },
	{ "exit(ed)? (with )?(code|status):? *[1-9]", true },
	{ "returned (a )?non-zero", true },
};

/*
 * Identical patterns (same text and flags: rules share them, a rule's quote
 * patterns repeat its own) are compiled once: c->pat_canon maps every
 * pattern to the first of its kind, whose index is its match id. Sets the
 * unique patterns, their flags and ids (malloc'd arrays of *n).
 */
static int
cl_dedup(struct hl_classifier *c, const struct cl_pats *pats, char ***upats, unsigned **uflags,
         unsigned **uids, size_t *n)
{
	size_t cap = 64, *slot = NULL;

	while (cap < 2 * pats->n)
		cap *= 2;
	c->pat_canon = malloc(pats->n * sizeof(*c->pat_canon));
	slot = malloc(cap * sizeof(*slot));
	*upats = malloc(pats->n * sizeof(**upats));
	*uflags = malloc(pats->n * sizeof(**uflags));
	*uids = malloc(pats->n * sizeof(**uids));
	if (c->pat_canon == NULL || slot == NULL || *upats == NULL || *uflags == NULL ||
	    *uids == NULL) {
		free(slot);
		return -HL_ENOMEM;
	}
	for (size_t i = 0; i < cap; i++)
		slot[i] = SIZE_MAX;
	*n = 0;
	for (size_t k = 0; k < pats->n; k++) {
		uint64_t h = 1469598103934665603ull ^ pats->flags[k]; /* FNV-1a */
		for (const char *q = pats->pat[k]; *q; q++)
			h = (h ^ (unsigned char)*q) * 1099511628211ull;
		size_t i = (size_t)h & (cap - 1);
		while (slot[i] != SIZE_MAX && (pats->flags[slot[i]] != pats->flags[k] ||
		                               strcmp(pats->pat[slot[i]], pats->pat[k]) != 0))
			i = (i + 1) & (cap - 1);
		if (slot[i] == SIZE_MAX) {
			slot[i] = k;
			(*upats)[*n] = pats->pat[k];
			(*uflags)[*n] = pats->flags[k];
			(*uids)[*n] = (unsigned)k;
			(*n)++;
		}
		c->pat_canon[k] = slot[i];
	}
	free(slot);
	return 0;
}

/* Adds the error-line patterns after the rules' and compiles them all; a
 * pattern Vectorscan rejects is reported at its position, under its rule's
 * name. */
static int
cl_rules_build_db(struct cl_parse *ps, struct hl_classifier *c, struct cl_pats *pats, bool embedded)
{
	struct hl_err dberr = HL_ERR_INIT;
	size_t bad = SIZE_MAX, n_unique = 0;
	char **upats = NULL, ***gate = NULL;
	unsigned *uflags = NULL, *uids = NULL;
	int rc;

	if (pats->n == 0) {
		ps->rule = NULL;
		return cl_perr(ps, NULL, 0, "no rule has log patterns");
	}
	c->quote_first = pats->n;
	for (size_t i = 0; i < sizeof(cl_quote_patterns) / sizeof(cl_quote_patterns[0]); i++) {
		unsigned fl =
		        HS_FLAG_MULTILINE | (cl_quote_patterns[i].caseless ? HS_FLAG_CASELESS : 0);
		if (cl_pats_push(pats, cl_quote_patterns[i].re, fl, SIZE_MAX, NULL) < 0)
			return hl_err_set(ps->err, HL_ENOMEM, "out of memory");
	}
	rc = cl_dedup(c, pats, &upats, &uflags, &uids, &n_unique);
	gate = rc == 0 ? calloc(n_unique ? n_unique : 1, sizeof(*gate)) : NULL;
	if (gate == NULL) {
		free(upats);
		free(uflags);
		free(uids);
		return hl_err_set(ps->err, HL_ENOMEM, "out of memory");
	}
	rc = cl_db_build(c, upats, uflags, uids, gate, n_unique, pats->n, embedded, &bad, &dberr);
	if (bad < n_unique)
		bad = uids[bad];
	for (size_t i = 0; i < n_unique; i++)
		free(gate[i]);
	free(upats);
	free(uflags);
	free(uids);
	free(gate);
	if (rc == 0)
		return 0;
	if (rc != -HL_EPARSE)
		return hl_err_set(ps->err, -rc, "%s", dberr.msg);
	if (bad >= pats->n || pats->rule[bad] == SIZE_MAX) {
		ps->rule = NULL;
		return cl_perr(ps, NULL, 0, "%s", dberr.msg);
	}
	ps->rule = c->rules[pats->rule[bad]].name;
	return cl_perr(ps, pats->node[bad], 0, "%s", dberr.msg);
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
	cl_db_init(c);
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
	have_doc = true;
	/* one document only: a later one would be dropped without a word */
	{
		yaml_document_t more;

		if (!yaml_parser_load(&parser, &more)) {
			rc = hl_err_set(err, HL_EPARSE, "%s:%zu:%zu: %s", ps.file,
			                parser.problem_mark.line + 1,
			                parser.problem_mark.column + 1,
			                parser.problem ? parser.problem : "YAML syntax error");
			yaml_parser_delete(&parser);
			goto out;
		}
		if (yaml_document_get_root_node(&more) != NULL) {
			rc = hl_err_set(err, HL_EPARSE, "%s:%zu:%zu: more than one YAML document",
			                ps.file, more.start_mark.line + 1,
			                more.start_mark.column + 1);
			yaml_document_delete(&more);
			yaml_parser_delete(&parser);
			goto out;
		}
		yaml_document_delete(&more);
	}
	yaml_parser_delete(&parser);

	root = yaml_document_get_root_node(&ps.doc);
	if (root == NULL || root->type != YAML_MAPPING_NODE) {
		rc = cl_perr(&ps, root, 0, "the rules file must be a mapping with a 'rules' list");
		goto out;
	}
	if ((rc = cl_check_nul(&ps)) != 0 || (rc = cl_check_keys(&ps, root)) != 0)
		goto out;
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
	if (nr > CL_MAX_RULES) {
		rc = cl_perr(&ps, rules, 0, "%zu rules, more than %d", nr, CL_MAX_RULES);
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
	rc = cl_rules_build_db(&ps, c, &pats, embedded);
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
	if (c->exported == NULL || cl_verify_init(c) < 0) {
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
