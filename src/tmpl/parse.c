/*
 * parse.c - the template parser: a recursive-descent parser over the tokens
 * of lex.c that accepts the language of handlebars.js' handlebars.yy minus
 * the constructs healer does not support (which are parse errors), and builds
 * the AST of tmpl_int.h the way compiler/helpers.js prepares its nodes
 * (preparePath, prepareBlock, else-if chains). tmpl_parse runs the lexer, the
 * parser and whitespace control (whitespace.c). Errors are
 * "name:line:col: message" with 1-based line and column.
 */
#include "tmpl/tmpl_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const tmpl_tok_names[] = {
	"text",   "comment",  "'{{'",        "'{{{'",  "'{{#'",     "'{{/'",
	"'{{^'",  "'{{else'", "'{{else}}'",  "'{{>'",  "'}}'",      "'}}}'",
	"'('",    "')'",      "'='",         "name",   "separator", "string",
	"number", "boolean",  "'undefined'", "'null'", "'@'",       "end of template",
	"'{{{{'", "'}}}}'",   "'{{{{/'",     "'{{#>'", "'as |'",    "'|'",
};

void
tmpl_line_col(struct tmpl_parser *p, size_t off, int *line, int *col)
{
	size_t i;

	if (off < p->lc_off) {
		p->lc_off = 0;
		p->lc_line = 1;
		p->lc_col = 1;
	}
	for (i = p->lc_off; i < off && i < p->n; i++) {
		if (p->src[i] == '\n') {
			p->lc_line++;
			p->lc_col = 1;
		} else if (((unsigned char)p->src[i] & 0xc0) != 0x80) {
			p->lc_col++;
		}
	}
	p->lc_off = off;
	*line = p->lc_line;
	*col = p->lc_col;
}

int
tmpl_perr_at(struct tmpl_parser *p, size_t off, const char *fmt, ...)
{
	char msg[200];
	va_list ap;
	int line, col;

	if (p->rc)
		return p->rc;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	tmpl_line_col(p, off, &line, &col);
	p->rc = hl_err_set(p->err, HL_EPARSE, "%s:%d:%d: %s", p->name, line, col, msg);
	return p->rc;
}

int
tmpl_perr_tok(struct tmpl_parser *p, const struct tmpl_tok *t, const char *msg)
{
	if (p->rc)
		return p->rc;
	p->rc = hl_err_set(p->err, HL_EPARSE, "%s:%d:%d: %s", p->name, t->line, t->col, msg);
	return p->rc;
}

int
tmpl_oom(struct tmpl_parser *p)
{
	if (!p->rc)
		p->rc = hl_err_set(p->err, HL_ENOMEM, "%s: out of memory", p->name);
	return p->rc;
}

/* ---- AST construction ---- */

static void expr_free(struct tmpl_expr *e);

static void
call_free(struct tmpl_call *c)
{
	size_t i;

	if (!c)
		return;
	expr_free(c->path);
	for (i = 0; i < c->nparams; i++)
		expr_free(c->params[i]);
	free(c->params);
	for (i = 0; i < c->nhash; i++) {
		free(c->hkeys[i]);
		expr_free(c->hvals[i]);
	}
	free(c->hkeys);
	free(c->hvals);
	free(c);
}

static void
expr_free(struct tmpl_expr *e)
{
	size_t i;

	if (!e)
		return;
	for (i = 0; i < e->nparts; i++)
		free(e->parts[i]);
	free(e->parts);
	free(e->original);
	free(e->str);
	call_free(e->call);
	free(e);
}

static void
node_free(struct tmpl_node *nd)
{
	if (!nd)
		return;
	free(nd->text);
	call_free(nd->call);
	tmpl_program_free(nd->program);
	tmpl_program_free(nd->inverse);
	free(nd->indent);
	free(nd);
}

void
tmpl_program_free(struct tmpl_program *prog)
{
	size_t i;

	if (!prog)
		return;
	for (i = 0; i < prog->n; i++)
		node_free(prog->body[i]);
	free(prog->body);
	free(prog);
}

static struct tmpl_program *
program_new(struct tmpl_parser *p)
{
	struct tmpl_program *prog = calloc(1, sizeof(*prog));
	if (!prog)
		tmpl_oom(p);
	return prog;
}

static int
program_push(struct tmpl_parser *p, struct tmpl_program *prog, struct tmpl_node *nd)
{
	if (prog->n == prog->cap) {
		size_t ncap = prog->cap ? prog->cap * 2 : 8;
		struct tmpl_node **nb = realloc(prog->body, ncap * sizeof(*nb));
		if (!nb) {
			node_free(nd);
			return tmpl_oom(p);
		}
		prog->body = nb;
		prog->cap = ncap;
	}
	prog->body[prog->n++] = nd;
	return 0;
}

static struct tmpl_tok *
peek(struct tmpl_parser *p)
{
	return &p->toks[p->pos < p->ntok ? p->pos : p->ntok - 1];
}

static struct tmpl_tok *
peek2(struct tmpl_parser *p)
{
	size_t i = p->pos + 1;
	return &p->toks[i < p->ntok ? i : p->ntok - 1];
}

static struct tmpl_tok *
next(struct tmpl_parser *p)
{
	struct tmpl_tok *t = peek(p);
	if (p->pos < p->ntok - 1)
		p->pos++;
	return t;
}

/* The next token when it has the given type (consumed), else NULL after
 * recording the error. */
static struct tmpl_tok *
expect(struct tmpl_parser *p, enum tmpl_tok_type type)
{
	struct tmpl_tok *t = peek(p);
	char msg[120];

	if (t->type != type) {
		snprintf(msg, sizeof(msg), "expected %s, found %s", tmpl_tok_names[type],
		         tmpl_tok_names[t->type]);
		tmpl_perr_tok(p, t, msg);
		return NULL;
	}
	return next(p);
}

char *
tmpl_xstrndup(struct tmpl_parser *p, const char *s, size_t n)
{
	char *d = malloc(n + 1);
	if (!d) {
		tmpl_oom(p);
		return NULL;
	}
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

static int
str_append(struct tmpl_parser *p, char **s, size_t *len, const char *add, size_t n)
{
	char *ns = realloc(*s, *len + n + 1);
	if (!ns)
		return tmpl_oom(p);
	memcpy(ns + *len, add, n);
	*len += n;
	ns[*len] = '\0';
	*s = ns;
	return 0;
}

/* yy.id: a [literal] segment without its brackets (when `.` can span it). */
static bool
id_is_bracketed(const char *s, size_t n)
{
	size_t i;

	if (n < 2 || s[0] != '[' || s[n - 1] != ']')
		return false;
	for (i = 1; i + 1 < n; i++) {
		if (tmpl_js_line_term(s + i, n - 1 - i))
			return false;
	}
	return true;
}

static struct tmpl_expr *
expr_new(struct tmpl_parser *p, enum tmpl_expr_type type, const struct tmpl_tok *t)
{
	struct tmpl_expr *e = calloc(1, sizeof(*e));
	if (!e) {
		tmpl_oom(p);
		return NULL;
	}
	e->type = type;
	e->line = t->line;
	e->col = t->col;
	e->bp_depth = -1;
	return e;
}

/* AST.helpers.scopedId: /^\.|this\b/ on a path's original. */
bool
tmpl_scoped_id(const char *orig)
{
	const char *s;

	if (orig[0] == '.')
		return true;
	for (s = strstr(orig, "this"); s; s = strstr(s + 1, "this")) {
		unsigned char c = (unsigned char)s[4];
		bool word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		            (c >= '0' && c <= '9') || c == '_';
		if (!word)
			return true;
	}
	return false;
}

/* ---- block parameters (compiler.js blockParamIndex) ---- */

/* Every program being parsed has a scope: its block parameter names (from
 * the `as |...|` of the block that owns it) and whether lookups of block
 * parameters happen in it (`own`) or in a program inside it (`desc`),
 * which is what handlebars' compiler calls useBlockParams. */
static int
scope_push(struct tmpl_parser *p, const char *const *names, size_t n)
{
	struct tmpl_bpscope *sc;

	if (p->nscopes == p->capscopes) {
		size_t nc = p->capscopes ? p->capscopes * 2 : 16;
		struct tmpl_bpscope *ns = realloc(p->scopes, nc * sizeof(*ns));
		if (!ns)
			return tmpl_oom(p);
		p->scopes = ns;
		p->capscopes = nc;
	}
	sc = &p->scopes[p->nscopes++];
	sc->names = names;
	sc->n = n;
	sc->own = sc->desc = false;
	return 0;
}

/* Ends the scope of prog (when not NULL, it records whether a program
 * inside it looks block parameters up). */
static void
scope_pop(struct tmpl_parser *p, struct tmpl_program *prog)
{
	struct tmpl_bpscope *sc = &p->scopes[--p->nscopes];

	if (prog)
		prog->bp_desc = sc->desc;
	if (p->nscopes)
		p->scopes[p->nscopes - 1].desc |= sc->own || sc->desc;
}

/* The innermost enclosing program that declares the path's first name as a
 * block parameter: its distance and the name's index. Only plain names
 * (no ../, not this.x or ./x) can be block parameters; @name too. */
static void
resolve_bp(struct tmpl_parser *p, struct tmpl_expr *e)
{
	size_t d, i;

	e->bp_depth = -1;
	if (e->type != TE_PATH || e->depth || !e->nparts || tmpl_scoped_id(e->original))
		return;
	for (d = 0; d < p->nscopes; d++) {
		const struct tmpl_bpscope *sc = &p->scopes[p->nscopes - 1 - d];
		for (i = 0; i < sc->n; i++) {
			if (strcmp(sc->names[i], e->parts[0]) == 0) {
				e->bp_depth = (int)d;
				e->bp_index = (int)i;
				return;
			}
		}
	}
}

/* An evaluated path that is a block parameter: the current program uses
 * block parameters from here on. */
static void
mark_bp(struct tmpl_parser *p, const struct tmpl_expr *e)
{
	if (e->type == TE_PATH && e->bp_depth >= 0 && p->nscopes)
		p->scopes[p->nscopes - 1].own = true;
}

static bool
scope_own(const struct tmpl_parser *p)
{
	return p->nscopes && p->scopes[p->nscopes - 1].own;
}

/*
 * What compiler.js does to a mustache, block or subexpression before
 * emitting it: transformLiteralToPath (a literal name becomes a one-part path
 * named by its String()), then classifySexpr with the helper table: a
 * helper call, an ambiguous name (a helper or a value, decided at run time)
 * or a simple value (a complex path, or a block parameter).
 */
static int
prepare_call(struct tmpl_parser *p, struct tmpl_call *c, bool sexpr)
{
	struct tmpl_expr *path = c->path;
	const struct tmpl_helper *h;
	bool simple, is_helper;

	if (path->type != TE_PATH) {
		struct hl_buf b = HL_BUF_INIT(0);
		struct tmpl_expr *np;
		switch (path->type) {
		case TE_STRING:
			hl_buf_append(&b, path->str, path->slen);
			break;
		case TE_NUMBER:
			tv_format_number(&b, path->num);
			break;
		case TE_BOOL:
			hl_buf_append_str(&b, path->b ? "true" : "false");
			break;
		case TE_NULL:
			hl_buf_append_str(&b, "null");
			break;
		default:
			hl_buf_append_str(&b, "undefined");
			break;
		}
		np = calloc(1, sizeof(*np));
		if (np)
			np->parts = calloc(1, sizeof(*np->parts));
		if (!np || !np->parts || hl_buf_error(&b) ||
		    !(np->parts[0] = hl_buf_detach(&b, NULL)) ||
		    !(np->original = strdup(np->parts[0]))) {
			hl_buf_release(&b);
			if (np)
				np->nparts = 1;
			expr_free(np);
			return tmpl_oom(p);
		}
		np->type = TE_PATH;
		np->nparts = 1;
		np->line = path->line;
		np->col = path->col;
		expr_free(path);
		c->path = path = np;
		resolve_bp(p, path);
	}
	simple = path->nparts == 1 && path->depth == 0 && !tmpl_scoped_id(path->original);
	c->simple = simple;
	if (simple && path->bp_depth >= 0) {
		/* a block parameter is a value, whatever follows it */
		c->cls = TC_SIMPLE;
		c->helper = NULL;
		mark_bp(p, path);
		return 0;
	}
	is_helper = sexpr || c->nparams > 0 || c->has_hash;
	h = path->nparts ? tmpl_helper_find(path->parts[0]) : NULL;
	if (simple && !is_helper && h && (h->flags & TH_KNOWN))
		is_helper = true;
	c->cls = is_helper ? TC_HELPER : simple ? TC_AMBIGUOUS : TC_SIMPLE;
	/* a known helper is called by its first name (invokeKnownHelper); a
	 * registered one only by a simple name */
	if (h && !(h->flags & TH_KNOWN) && (!simple || c->cls == TC_SIMPLE))
		h = NULL;
	c->helper = c->cls == TC_SIMPLE ? NULL : h;
	/* the path is looked up unless a known helper is called */
	if (!(c->helper && (c->helper->flags & TH_KNOWN)))
		mark_bp(p, path);
	return 0;
}

/* ---- expressions ---- */

/* path: (DATA)? ID (SEP ID)* -- preparePath */
static struct tmpl_expr *
parse_path(struct tmpl_parser *p, bool data)
{
	struct tmpl_tok *first = peek(p), *t;
	struct tmpl_expr *e = expr_new(p, TE_PATH, first);
	const char *sep = NULL;
	size_t olen = 0;

	if (!e)
		return NULL;
	e->data = data;
	e->original = tmpl_xstrndup(p, data ? "@" : "", data ? 1 : 0);
	if (!e->original)
		goto fail;
	olen = data ? 1 : 0;
	for (;;) {
		const char *part;
		size_t plen;
		bool literal;

		if (!(t = expect(p, T_ID)))
			goto fail;
		part = t->val;
		plen = t->vlen;
		literal = false;
		if (id_is_bracketed(t->val, t->vlen)) {
			part = t->val + 1;
			plen = t->vlen - 2;
			literal = true;
		}
		if (sep && str_append(p, &e->original, &olen, sep, 1))
			goto fail;
		if (str_append(p, &e->original, &olen, part, plen))
			goto fail;
		if (!literal &&
		    ((plen == 2 && memcmp(part, "..", 2) == 0) || (plen == 1 && part[0] == '.') ||
		     (plen == 4 && memcmp(part, "this", 4) == 0))) {
			if (e->nparts > 0) {
				char msg[160];
				snprintf(msg, sizeof(msg), "invalid path: '%.100s'", e->original);
				tmpl_perr_tok(p, first, msg);
				goto fail;
			}
			if (plen == 2)
				e->depth++;
		} else {
			char **np = realloc(e->parts, (e->nparts + 1) * sizeof(*np));
			if (!np) {
				tmpl_oom(p);
				goto fail;
			}
			e->parts = np;
			if (!(e->parts[e->nparts] = tmpl_xstrndup(p, part, plen)))
				goto fail;
			e->nparts++;
		}
		if (peek(p)->type != T_SEP || peek2(p)->type != T_ID)
			break;
		sep = next(p)->val;
	}
	resolve_bp(p, e);
	return e;
fail:
	expr_free(e);
	return NULL;
}

struct call_opts {
	enum tmpl_tok_type closer;
	bool sexpr_name; /* the name may be a subexpression (a partial) */
	bool no_sexpr;   /* the name may not be one (a raw block) */
	bool prepare;    /* a mustache, block or subexpression call */
	bool bparams;    /* `as |x y|` may come before the closer */
	/* out: the block parameter names, borrowed from the tokens */
	const char **bp_names;
	size_t bp_n;
};

static struct tmpl_call *parse_call_body(struct tmpl_parser *p, struct call_opts *o);

/*
 * helperName | sexpr. value: an argument (evaluated where it stands) rather
 * than the name of a call, partial or decorator.
 */
static struct tmpl_expr *
parse_param(struct tmpl_parser *p, bool allow_sexpr, bool value)
{
	struct tmpl_tok *t = peek(p);
	struct tmpl_expr *e;

	switch (t->type) {
	case T_ID:
		e = parse_path(p, false);
		if (e && value)
			mark_bp(p, e);
		return e;
	case T_DATA:
		next(p);
		if (peek(p)->type != T_ID) {
			tmpl_perr_tok(p, peek(p), "expected a name after '@'");
			return NULL;
		}
		e = parse_path(p, true);
		if (e && value)
			mark_bp(p, e);
		return e;
	case T_STRING:
		if (!(e = expr_new(p, TE_STRING, t)))
			return NULL;
		if (!(e->str = tmpl_xstrndup(p, t->val, t->vlen))) {
			expr_free(e);
			return NULL;
		}
		e->slen = t->vlen;
		next(p);
		return e;
	case T_NUMBER:
		if (!(e = expr_new(p, TE_NUMBER, t)))
			return NULL;
		e->num = strtod(t->val, NULL);
		next(p);
		return e;
	case T_BOOLEAN:
		if (!(e = expr_new(p, TE_BOOL, t)))
			return NULL;
		e->b = t->val[0] == 't';
		next(p);
		return e;
	case T_UNDEFINED:
		if (!(e = expr_new(p, TE_UNDEF, t)))
			return NULL;
		next(p);
		return e;
	case T_NULL:
		if (!(e = expr_new(p, TE_NULL, t)))
			return NULL;
		next(p);
		return e;
	case T_OPEN_SEXPR: {
		struct call_opts o = { 0 };
		if (!allow_sexpr)
			break;
		if (p->nest >= PARSE_MAX_NEST) {
			tmpl_perr_tok(p, t, "subexpressions nested too deeply");
			return NULL;
		}
		if (!(e = expr_new(p, TE_SEXPR, t)))
			return NULL;
		next(p);
		p->nest++;
		o.closer = T_CLOSE_SEXPR;
		o.prepare = true;
		e->call = parse_call_body(p, &o);
		p->nest--;
		if (!e->call || prepare_call(p, e->call, true)) {
			expr_free(e);
			return NULL;
		}
		return e;
	}
	default:
		break;
	}
	{
		char msg[120];
		snprintf(msg, sizeof(msg), "expected a name or a value, found %s",
		         tmpl_tok_names[t->type]);
		tmpl_perr_tok(p, t, msg);
	}
	return NULL;
}

static bool
starts_param(const struct tmpl_tok *t)
{
	switch (t->type) {
	case T_ID:
	case T_DATA:
	case T_STRING:
	case T_NUMBER:
	case T_BOOLEAN:
	case T_UNDEFINED:
	case T_NULL:
	case T_OPEN_SEXPR:
		return true;
	default:
		return false;
	}
}

/* blockParams: OPEN_BLOCK_PARAMS ID+ CLOSE_BLOCK_PARAMS -> yy.id($2) */
static int
parse_block_params(struct tmpl_parser *p, struct call_opts *o)
{
	struct tmpl_tok *open = next(p);
	size_t first = p->pos, n = 0, i, len = 0;
	const char **names;

	while (peek(p)->type == T_ID) {
		len += peek(p)->vlen + 1;
		next(p);
		n++;
	}
	if (!n)
		return tmpl_perr_tok(p, peek(p), "expected a block parameter name");
	if (!expect(p, T_CLOSE_BLOCK_PARAMS))
		return p->rc;
	/*
	 * yy.id() is given the array of names: it tests /^\[.*\]$/ on their
	 * comma-joined text and, when that matches, calls substring() on the
	 * array, which throws. Otherwise the names are the tokens as written
	 * (a bracketed name keeps its brackets).
	 */
	{
		const struct tmpl_tok *a = &p->toks[first], *z = &p->toks[first + n - 1];
		bool match = a->vlen && a->val[0] == '[' && z->vlen && z->val[z->vlen - 1] == ']' &&
		             len >= 3;
		for (i = 0; match && i < n; i++) {
			const struct tmpl_tok *t = &p->toks[first + i];
			size_t k;
			for (k = 0; k < t->vlen; k++) {
				if (tmpl_js_line_term(t->val + k, t->vlen - k))
					match = false;
			}
		}
		if (match)
			return tmpl_perr_tok(p, open, "bracketed block parameters are not valid");
	}
	names = malloc(n * sizeof(*names));
	if (!names)
		return tmpl_oom(p);
	for (i = 0; i < n; i++)
		names[i] = p->toks[first + i].val;
	free(o->bp_names);
	o->bp_names = names;
	o->bp_n = n;
	return 0;
}

/* helperName param* hash? blockParams? CLOSER (the closer is consumed). */
static struct tmpl_call *
parse_call_body(struct tmpl_parser *p, struct call_opts *o)
{
	struct tmpl_call *c = calloc(1, sizeof(*c));
	struct tmpl_tok *t;

	if (!c) {
		tmpl_oom(p);
		return NULL;
	}
	if (!(c->path = parse_param(p, o->sexpr_name && !o->no_sexpr, false)))
		goto fail;
	while (starts_param(peek(p)) && !(peek(p)->type == T_ID && peek2(p)->type == T_EQUALS)) {
		struct tmpl_expr **np = realloc(c->params, (c->nparams + 1) * sizeof(*np));
		if (!np) {
			tmpl_oom(p);
			goto fail;
		}
		c->params = np;
		if (!(c->params[c->nparams] = parse_param(p, true, true)))
			goto fail;
		c->nparams++;
	}
	while (peek(p)->type == T_ID && peek2(p)->type == T_EQUALS) {
		char **nk = realloc(c->hkeys, (c->nhash + 1) * sizeof(*nk));
		struct tmpl_expr **nv;
		const char *k;
		size_t kl;
		if (!nk) {
			tmpl_oom(p);
			goto fail;
		}
		c->hkeys = nk;
		nv = realloc(c->hvals, (c->nhash + 1) * sizeof(*nv));
		if (!nv) {
			tmpl_oom(p);
			goto fail;
		}
		c->hvals = nv;
		t = next(p);
		/* key: yy.id(ID), a [literal] without its brackets */
		k = t->val;
		kl = t->vlen;
		if (id_is_bracketed(k, kl)) {
			k++;
			kl -= 2;
		}
		if (!(c->hkeys[c->nhash] = tmpl_xstrndup(p, k, kl)))
			goto fail;
		c->hvals[c->nhash] = NULL;
		c->nhash++;
		next(p); /* = */
		if (!(c->hvals[c->nhash - 1] = parse_param(p, true, true)))
			goto fail;
		c->has_hash = true;
	}
	if (o->bparams && peek(p)->type == T_OPEN_BLOCK_PARAMS && parse_block_params(p, o))
		goto fail;
	if (!expect(p, o->closer))
		goto fail;
	return c;
fail:
	call_free(c);
	return NULL;
}

static struct tmpl_node *
node_new(struct tmpl_parser *p, enum tmpl_node_type type, const struct tmpl_tok *t)
{
	struct tmpl_node *nd = calloc(1, sizeof(*nd));
	if (!nd) {
		tmpl_oom(p);
		return NULL;
	}
	nd->type = type;
	nd->line = t->line;
	nd->col = t->col;
	return nd;
}

/* ---- blocks ---- */

static struct tmpl_program *parse_program(struct tmpl_parser *p, const char *const *bp_names,
                                          size_t bp_n);
struct inv_chain;
static int parse_chain_link(struct tmpl_parser *p, struct inv_chain *out);

struct open_block {
	struct tmpl_call *call;
	struct tmpl_strip strip;
	struct tmpl_tok *tok;
	bool deco; /* "{{#*": a decorator block */
	const char **bp_names;
	size_t bp_n;
};

struct inv_chain {
	bool present;
	bool chain;
	struct tmpl_strip strip;
	struct tmpl_program *program;
};

static void
open_release(struct open_block *ob)
{
	call_free(ob->call);
	ob->call = NULL;
	free(ob->bp_names);
	ob->bp_names = NULL;
}

static int
parse_open(struct tmpl_parser *p, struct open_block *ob)
{
	struct tmpl_tok *open = next(p);
	struct call_opts o = { 0 };

	ob->tok = open;
	ob->deco = open->deco;
	ob->strip.open = open->sopen;
	o.closer = T_CLOSE;
	o.bparams = true;
	ob->call = parse_call_body(p, &o);
	ob->bp_names = o.bp_names;
	ob->bp_n = o.bp_n;
	if (!ob->call)
		return p->rc;
	ob->strip.close = p->toks[p->pos - 1].sclose;
	if (ob->call->path->type == TE_SEXPR)
		return tmpl_perr_tok(p, open, "a block name cannot be a subexpression");
	return 0;
}

/* prepareBlock */
static struct tmpl_node *
prepare_block(struct tmpl_parser *p, struct open_block *ob, struct tmpl_program *program,
              struct inv_chain *inv, const struct tmpl_strip *close_strip, bool inverted)
{
	struct tmpl_node *nd = NULL;

	if (ob->deco && inv && inv->present) {
		tmpl_perr_tok(p, ob->tok, "unexpected inverse block on a decorator");
		goto fail;
	}
	if (!(nd = node_new(p, ob->deco ? TN_DECORATOR_BLOCK : TN_BLOCK, ob->tok)))
		goto fail;
	nd->call = ob->call;
	ob->call = NULL;
	nd->open_strip = ob->strip;
	/* a decorator's name is looked up as written, never as a value */
	if (!ob->deco && prepare_call(p, nd->call, false))
		goto fail;
	/* the name and arguments are looked up before the helper call */
	nd->bp_own = scope_own(p);
	if (inv && inv->present) {
		if (inv->chain && close_strip) {
			inv->program->body[0]->close_strip = *close_strip;
			inv->program->body[0]->has_close_strip = true;
		}
		nd->inverse_strip = inv->strip;
		nd->has_inverse_strip = true;
		nd->inverse = inv->program;
		inv->program = NULL;
	}
	nd->program = program;
	program = NULL;
	if (inverted) {
		struct tmpl_program *tmp = nd->inverse;
		nd->inverse = nd->program;
		nd->program = tmp;
	}
	if (close_strip) {
		nd->close_strip = *close_strip;
		nd->has_close_strip = true;
	}
	open_release(ob);
	return nd;
fail:
	node_free(nd);
	open_release(ob);
	tmpl_program_free(program);
	if (inv) {
		tmpl_program_free(inv->program);
		inv->program = NULL;
	}
	return NULL;
}

/* inverseChain: openInverseChain program inverseChain? | inverseAndProgram */
static int
parse_inverse_chain(struct tmpl_parser *p, struct inv_chain *out, bool allow_chain)
{
	struct tmpl_tok *t = peek(p);

	memset(out, 0, sizeof(*out));
	if (t->type == T_INVERSE) {
		next(p);
		out->present = true;
		out->strip.open = t->sopen;
		out->strip.close = t->sclose;
		out->program = parse_program(p, NULL, 0);
		return out->program ? 0 : p->rc;
	}
	if (t->type == T_OPEN_INVERSE_CHAIN && allow_chain) {
		int rc;

		if (p->nest >= PARSE_MAX_NEST)
			return tmpl_perr_tok(p, t, "else-if chain too long");
		p->nest++;
		rc = parse_chain_link(p, out);
		p->nest--;
		return rc;
	}
	return 0;
}

/* One {{else if ...}} link: the block it opens, wrapped in a chained program
 * (handlebars.yy's inverseChain), which is a program of its own for block
 * parameters too. */
static int
parse_chain_link(struct tmpl_parser *p, struct inv_chain *out)
{
	struct open_block ob = { 0 };
	struct tmpl_program *prog = NULL, *wrap = NULL;
	struct inv_chain nested = { 0 };
	struct tmpl_node *blk;

	if (scope_push(p, NULL, 0))
		return p->rc;
	if (parse_open(p, &ob))
		goto fail;
	if (!(prog = parse_program(p, ob.bp_names, ob.bp_n)))
		goto fail;
	if (parse_inverse_chain(p, &nested, true))
		goto fail;
	/* prepareBlock(open, program, chain, chain): the nested chain is the
	 * "close" of this link */
	blk = prepare_block(p, &ob, prog, &nested, nested.present ? &nested.strip : NULL, false);
	prog = NULL;
	if (!blk)
		goto fail;
	if (!(wrap = program_new(p))) {
		node_free(blk);
		goto fail;
	}
	if (program_push(p, wrap, blk))
		goto fail;
	wrap->chained = true;
	scope_pop(p, wrap);
	out->present = true;
	out->chain = true;
	out->strip = ob.strip;
	out->program = wrap;
	return 0;
fail:
	scope_pop(p, NULL);
	open_release(&ob);
	tmpl_program_free(prog);
	tmpl_program_free(nested.program);
	tmpl_program_free(wrap);
	return p->rc;
}

/* An open or close name's `original` as handlebars compares them in
 * validateClose (with ===): a string, or a number, boolean, null or
 * undefined (a subexpression has no original: undefined). */
struct orig {
	int kind; /* TE_STRING (paths too), TE_NUMBER, TE_BOOL, TE_NULL, TE_UNDEF */
	const char *s;
	double n;
	bool b;
};

static struct orig
orig_of(const struct tmpl_expr *e)
{
	struct orig o = { TE_UNDEF, "undefined", 0, false };

	switch (e->type) {
	case TE_PATH:
		o.kind = TE_STRING;
		o.s = e->original;
		break;
	case TE_STRING:
		o.kind = TE_STRING;
		o.s = e->str;
		break;
	case TE_NUMBER:
		o.kind = TE_NUMBER;
		o.n = e->num;
		break;
	case TE_BOOL:
		o.kind = TE_BOOL;
		o.b = e->b;
		o.s = e->b ? "true" : "false";
		break;
	case TE_NULL:
		o.kind = TE_NULL;
		o.s = "null";
		break;
	default:
		break;
	}
	return o;
}

static bool
orig_eq(struct orig a, struct orig b)
{
	if (a.kind != b.kind)
		return false;
	switch (a.kind) {
	case TE_STRING:
		return strcmp(a.s, b.s) == 0;
	case TE_NUMBER:
		return a.n == b.n;
	case TE_BOOL:
		return a.b == b.b;
	default:
		return true;
	}
}

/* String(original) for messages */
static const char *
orig_str(struct orig o, char *tmp, size_t n)
{
	if (o.kind == TE_NUMBER) {
		struct hl_buf b = HL_BUF_INIT(0);
		tv_format_number(&b, o.n);
		snprintf(tmp, n, "%s", b.data ? b.data : "");
		hl_buf_release(&b);
		return tmp;
	}
	return o.s;
}

/* validateClose: "'open' doesn't match 'close'" at the open name */
static int
validate_close(struct tmpl_parser *p, const struct tmpl_tok *at, struct orig open,
               struct orig close)
{
	char b1[64], b2[64], msg[300];

	if (orig_eq(open, close))
		return 0;
	snprintf(msg, sizeof(msg), "'%.80s' doesn't match '%.80s'", orig_str(open, b1, sizeof(b1)),
	         orig_str(close, b2, sizeof(b2)));
	return tmpl_perr_tok(p, at, msg);
}

/* closeBlock: OPEN_ENDBLOCK helperName CLOSE, checked against the open
 * name. */
static int
parse_close(struct tmpl_parser *p, const struct tmpl_tok *open_tok, const struct tmpl_expr *name,
            struct tmpl_strip *cs)
{
	struct tmpl_tok *t = peek(p), *ct;
	struct tmpl_expr *close_name = NULL;
	char b1[64], msg[300];
	int rc;

	if (t->type != T_OPEN_ENDBLOCK) {
		const char *on = orig_str(orig_of(name), b1, sizeof(b1));
		snprintf(msg, sizeof(msg),
		         "unclosed block '%.80s': expected '{{/%.80s}}', found %s", on, on,
		         tmpl_tok_names[t->type]);
		return tmpl_perr_tok(p, t->type == T_EOF ? open_tok : t, msg);
	}
	next(p);
	cs->open = t->sopen;
	if (!(close_name = parse_param(p, false, false)))
		return p->rc;
	if (!(ct = expect(p, T_CLOSE))) {
		expr_free(close_name);
		return p->rc;
	}
	cs->close = ct->sclose;
	rc = validate_close(p, open_tok, orig_of(name), orig_of(close_name));
	expr_free(close_name);
	return rc;
}

static struct tmpl_node *
parse_block(struct tmpl_parser *p)
{
	struct tmpl_tok *open = peek(p);
	bool inverted = open->type == T_OPEN_INVERSE;
	struct open_block ob = { 0 };
	struct tmpl_program *prog = NULL;
	struct inv_chain inv = { 0 };
	struct tmpl_strip cs = { 0 };

	if (parse_open(p, &ob))
		goto fail;
	if (!(prog = parse_program(p, ob.bp_names, ob.bp_n)))
		goto fail;
	if (parse_inverse_chain(p, &inv, !inverted))
		goto fail;
	if (parse_close(p, ob.tok, ob.call->path, &cs))
		goto fail;
	return prepare_block(p, &ob, prog, &inv, &cs, inverted);
fail:
	open_release(&ob);
	tmpl_program_free(prog);
	tmpl_program_free(inv.program);
	return NULL;
}

/* partialBlock: OPEN_PARTIAL_BLOCK partialName param* hash? CLOSE program
 * closeBlock (preparePartialBlock) */
static struct tmpl_node *
parse_partial_block(struct tmpl_parser *p)
{
	struct tmpl_tok *open = next(p);
	struct tmpl_node *nd = node_new(p, TN_PARTIAL, open);
	struct call_opts o = { 0 };

	if (!nd)
		return NULL;
	nd->open_strip.open = open->sopen;
	o.closer = T_CLOSE;
	o.sexpr_name = true;
	if (!(nd->call = parse_call_body(p, &o)))
		goto fail;
	nd->open_strip.close = p->toks[p->pos - 1].sclose;
	nd->bp_own = scope_own(p);
	if (!(nd->program = parse_program(p, NULL, 0)))
		goto fail;
	if (parse_close(p, open, nd->call->path, &nd->close_strip))
		goto fail;
	nd->has_close_strip = true;
	return nd;
fail:
	node_free(nd);
	return NULL;
}

/* rawBlock: OPEN_RAW_BLOCK helperName param* hash? CLOSE_RAW_BLOCK content*
 * END_RAW_BLOCK (prepareRawBlock: no strip flags, no inverse) */
static struct tmpl_node *
parse_raw_block(struct tmpl_parser *p)
{
	struct tmpl_tok *open = next(p), *end;
	struct tmpl_node *nd = node_new(p, TN_BLOCK, open);
	struct call_opts o = { 0 };
	struct orig close = { TE_STRING, "", 0, false };

	if (!nd)
		return NULL;
	nd->raw = true;
	o.closer = T_CLOSE_RAW_BLOCK;
	o.no_sexpr = true;
	if (!(nd->call = parse_call_body(p, &o)))
		goto fail;
	if (!(nd->program = program_new(p)))
		goto fail;
	while (peek(p)->type == T_CONTENT) {
		struct tmpl_tok *t = next(p);
		struct tmpl_node *c = node_new(p, TN_CONTENT, t);
		if (!c)
			goto fail;
		c->text = t->val;
		t->val = NULL;
		c->len = t->vlen;
		c->vend = c->len;
		if (program_push(p, nd->program, c))
			goto fail;
	}
	if (!(end = expect(p, T_END_RAW_BLOCK)))
		goto fail;
	close.s = end->val;
	if (validate_close(p, open, orig_of(nd->call->path), close))
		goto fail;
	if (prepare_call(p, nd->call, false))
		goto fail;
	nd->bp_own = scope_own(p);
	return nd;
fail:
	node_free(nd);
	return NULL;
}

static struct tmpl_node *
parse_statement(struct tmpl_parser *p, struct tmpl_program *prog)
{
	struct tmpl_tok *t = peek(p);
	struct tmpl_node *nd;
	struct call_opts o = { 0 };

	switch (t->type) {
	case T_CONTENT:
		if (!(nd = node_new(p, TN_CONTENT, t)))
			return NULL;
		nd->text = t->val;
		t->val = NULL;
		nd->len = t->vlen;
		nd->vstart = 0;
		nd->vend = nd->len;
		next(p);
		return nd;
	case T_COMMENT:
		if (!(nd = node_new(p, TN_COMMENT, t)))
			return NULL;
		nd->strip.open = t->sopen;
		nd->strip.close = t->sclose;
		next(p);
		return nd;
	case T_OPEN:
	case T_OPEN_UNESCAPED:
		/* prepareMustache: "{{*" makes a decorator */
		if (!(nd = node_new(p, t->deco ? TN_DECORATOR : TN_MUSTACHE, t)))
			return NULL;
		next(p);
		nd->strip.open = t->sopen;
		o.closer = t->type == T_OPEN ? T_CLOSE : T_CLOSE_UNESCAPED;
		nd->call = parse_call_body(p, &o);
		if (!nd->call || (!t->deco && prepare_call(p, nd->call, false))) {
			node_free(nd);
			return NULL;
		}
		nd->strip.close = p->toks[p->pos - 1].sclose;
		if (t->deco)
			prog->ndecorators++;
		return nd;
	case T_OPEN_PARTIAL:
		if (!(nd = node_new(p, TN_PARTIAL, t)))
			return NULL;
		next(p);
		nd->strip.open = t->sopen;
		/* partialName: helperName | sexpr (a dynamic partial) */
		o.closer = T_CLOSE;
		o.sexpr_name = true;
		nd->call = parse_call_body(p, &o);
		if (!nd->call) {
			node_free(nd);
			return NULL;
		}
		nd->strip.close = p->toks[p->pos - 1].sclose;
		nd->bp_own = scope_own(p);
		break;
	case T_OPEN_BLOCK:
	case T_OPEN_INVERSE:
	case T_OPEN_PARTIAL_BLOCK:
	case T_OPEN_RAW_BLOCK:
		if (p->nest >= PARSE_MAX_NEST) {
			tmpl_perr_tok(p, t, "blocks nested too deeply");
			return NULL;
		}
		p->nest++;
		if (t->type == T_OPEN_PARTIAL_BLOCK)
			nd = parse_partial_block(p);
		else if (t->type == T_OPEN_RAW_BLOCK)
			nd = parse_raw_block(p);
		else
			nd = parse_block(p);
		p->nest--;
		if (!nd || nd->type != TN_PARTIAL) {
			if (nd && nd->type == TN_DECORATOR_BLOCK)
				prog->ndecorators++;
			return nd;
		}
		break;
	default: {
		char msg[120];
		snprintf(msg, sizeof(msg), "unexpected %s", tmpl_tok_names[t->type]);
		tmpl_perr_tok(p, t, msg);
		return NULL;
	}
	}
	/* a partial or partial block: the compiler takes at most one context */
	if (nd->call->nparams > 1) {
		char msg[80];
		snprintf(msg, sizeof(msg), "unsupported number of partial arguments: %zu",
		         nd->call->nparams);
		tmpl_perr_tok(p, t, msg);
		node_free(nd);
		return NULL;
	}
	return nd;
}

/* program: statement*, the statements up to an else or a close (or the
 * end), in a block parameter scope of its own */
static struct tmpl_program *
parse_program(struct tmpl_parser *p, const char *const *bp_names, size_t bp_n)
{
	struct tmpl_program *prog = program_new(p);

	if (!prog || scope_push(p, bp_names, bp_n)) {
		free(prog);
		return NULL;
	}
	for (;;) {
		struct tmpl_tok *t = peek(p);
		struct tmpl_node *nd;

		if (t->type == T_EOF || t->type == T_OPEN_ENDBLOCK || t->type == T_INVERSE ||
		    t->type == T_OPEN_INVERSE_CHAIN) {
			scope_pop(p, prog);
			return prog;
		}
		if (!(nd = parse_statement(p, prog)) || program_push(p, prog, nd)) {
			scope_pop(p, NULL);
			tmpl_program_free(prog);
			return NULL;
		}
	}
}

int
tmpl_parse(struct tmpl_program **out, const char *name, const char *src, size_t n,
           struct hl_err *err)
{
	struct tmpl_parser p = { 0 };
	struct tmpl_program *prog = NULL;
	size_t i;

	p.name = name ? name : "template";
	p.src = src ? src : "";
	p.n = src ? n : 0;
	p.err = err;
	p.lc_line = 1;
	p.lc_col = 1;
	if (tmpl_lex(&p))
		goto out;
	prog = parse_program(&p, NULL, 0);
	if (!prog)
		goto out;
	if (peek(&p)->type != T_EOF) {
		struct tmpl_tok *t = peek(&p);
		char msg[120];
		if (t->type == T_OPEN_ENDBLOCK)
			snprintf(msg, sizeof(msg), "'{{/' without an open block");
		else
			snprintf(msg, sizeof(msg), "%s outside a block", tmpl_tok_names[t->type]);
		tmpl_perr_tok(&p, t, msg);
		goto out;
	}
	if (tmpl_ws_apply(&p, prog))
		goto out;
	*out = prog;
	prog = NULL;
out:
	tmpl_program_free(prog);
	for (i = 0; i < p.ntok; i++)
		free(p.toks[i].val);
	free(p.toks);
	free(p.scopes);
	return p.rc;
}
