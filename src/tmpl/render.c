/*
 * render.c - evaluates a compiled template against jansson data with the
 * runtime semantics of handlebars.js 4.7 (javascript-compiler.js and
 * runtime.js):
 *
 * - calls as the parser classified them (helper, ambiguous name or value;
 *   helpers from the table in helpers.c), lookups that see own properties
 *   only, `../` over the stack of distinct contexts (depths), @data frames,
 *   blockHelperMissing for plain sections, the nullContext handed to block
 *   helpers when the context is null, and a program's value computed as the
 *   generated JavaScript computes it (one `+` expression);
 * - a block's programs are instantiated like container.program(): a wrapper
 *   (struct wrapper) remembers the depths, data and block parameters of the
 *   place that made it, and runs the program's decorators then (`inline`,
 *   the only decorator handlebars.js has, registers an inline partial);
 * - block parameters are handlebars' blockParams array: one entry per
 *   program invocation, indexed by the depth the parser resolved;
 * - partials: a partial call looks its name up in the current partial scope
 *   (inline partials over the template set) or, for @partial-block, in the
 *   data frame; a partial block passes its block as @partial-block and runs
 *   it when the partial is missing. Each template has a current scope (the
 *   JS container.partials) that a program with inline partials extends
 *   while it runs.
 *
 * Every render is bounded: output (HL_TMPL_MAX_OUTPUT), a work budget of
 * steps, a budget of bytes the helpers and string lookups read and make (one
 * large value handed to a helper in a loop costs its size each time), the
 * bytes its arena holds, and a nesting depth, so hostile templates and data
 * cannot hang or exhaust it.
 */
#include "tmpl/tmpl_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RENDER_MAX_DEPTH 200
#define RENDER_MAX_WORK  20000000L
/* bytes helpers and string lookups may read and make in one render */
#define RENDER_MAX_BYTES (64u * 1024 * 1024)
/* bytes the arena may hold (helper results, program values as strings) */
#define RENDER_MAX_ARENA (32u * 1024 * 1024)

/* The output cap of the render running on this thread. */
static _Thread_local size_t tmpl_max_output = HL_TMPL_MAX_OUTPUT;

/* depths: the distinct contexts, innermost first; NULL is [] */
struct dnode {
	struct tv v;
	const struct dnode *next;
};

struct pblock;

/* A @data frame (createFrame copies the fields and links the parent). */
struct frame {
	const struct frame *parent;
	struct tv root, index, key, first, last;
	const struct pblock *pb; /* 'partial-block' (NULL: undefined) */
	bool has_root, has_index, has_key, has_first, has_last, has_pb;
};

/* One entry of handlebars' blockParams array, innermost first; NULL is []. */
enum { BP_UNDEF, BP_VALS, BP_CHAIN };

struct bpnode {
	int kind;
	const struct tv *vals; /* BP_VALS: what the helper passed */
	size_t n;
	const struct bpnode *chain; /* BP_CHAIN: a whole blockParams array */
	const struct bpnode *next;
};

struct wrapper;

/* An inline partial registered by a decorator (w NULL: registered as
 * undefined, which hides a partial of that name). */
struct pentry {
	const char *name;
	const struct wrapper *w;
};

/* A partial scope: inline partials over a parent scope; NULL is the set. */
struct scope {
	const struct scope *parent;
	const struct pentry *e;
	size_t n;
};

/* container.program(): a program with the place it was made at. */
struct wrapper {
	const struct tmpl_program *prog; /* NULL: noop */
	const struct hl_tmpl *owner;
	const struct dnode *depths;
	const struct frame *data;
	const struct bpnode *bp;
	/* the inline partials its decorators registered (props.partials) and
	 * the wrappers made for them */
	struct pentry *own;
	size_t nown;
	struct wrapper **kids;
	size_t nkids;
};

/* A @partial-block: the block and the @partial-block it restores. */
struct pblock {
	const struct wrapper *w;
	const struct pblock *outer;
};

/* A template's current partial scope (the JS container.partials). */
struct cont {
	const struct hl_tmpl *t;
	const struct scope *scope;
};

struct rstate {
	const struct hl_tmpl_set *partials;
	unsigned flags;
	struct hl_err *err;
	int rc;
	const char *tname;
	long work;
	size_t bytes;       /* read and made by helpers and string lookups */
	size_t arena_bytes; /* held by strs */
	int depth;
	int no_helpers; /* evaluating decorator arguments: `helpers` is not defined */
	/* arena: strings and json values created while rendering */
	char **strs;
	size_t nstrs, capstrs;
	json_t **jsons;
	size_t njsons, capjsons;
	json_t *null_ctx;
	struct cont *conts;
	size_t nconts, capconts;
};

/* Where a statement runs: the variables of the generated function. */
struct ectx {
	struct tv ctx;              /* depth0 */
	const struct dnode *depths; /* depths[0] first */
	const struct frame *data;
	const struct bpnode *bp;
	const struct scope *scope; /* `partials` */
	const struct tmpl_program *prog;
	const struct hl_tmpl *owner;
};

/* A block statement being run: its node and its two program wrappers. */
struct blk {
	const struct tmpl_node *nd;
	const struct wrapper *fn, *inverse;
};

static int rerr(struct rstate *st, int code, int line, int col, const char *fmt, ...)
        HL_PRINTF(5, 6);

static int
rerr(struct rstate *st, int code, int line, int col, const char *fmt, ...)
{
	char msg[220];
	va_list ap;

	if (st->rc)
		return st->rc;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	st->rc = hl_err_set(st->err, code, "%s:%d:%d: %s", st->tname, line, col, msg);
	return st->rc;
}

static const char *
arena_str(struct rstate *st, const char *s, size_t n)
{
	char *d;

	/* the caller reports NULL as out of memory: say why it is not */
	if (n >=
	    RENDER_MAX_ARENA - st->arena_bytes) { /* the NUL too: arena_bytes stays <= the cap */
		if (!st->rc)
			st->rc = hl_err_set(st->err, HL_ETOOBIG,
			                    "%s: values made while rendering exceed %u bytes",
			                    st->tname, RENDER_MAX_ARENA);
		return NULL;
	}
	if (st->nstrs == st->capstrs) {
		size_t nc = st->capstrs ? st->capstrs * 2 : 16;
		char **ns = realloc(st->strs, nc * sizeof(*ns));
		if (!ns)
			return NULL;
		st->strs = ns;
		st->capstrs = nc;
	}
	d = malloc(n + 1);
	if (!d)
		return NULL;
	memcpy(d, s, n);
	d[n] = '\0';
	st->strs[st->nstrs++] = d;
	st->arena_bytes += n + 1;
	return d;
}

static int
arena_json(struct rstate *st, json_t *j)
{
	if (st->njsons == st->capjsons) {
		size_t nc = st->capjsons ? st->capjsons * 2 : 8;
		json_t **nj = realloc(st->jsons, nc * sizeof(*nj));
		if (!nj) {
			json_decref(j);
			return -1;
		}
		st->jsons = nj;
		st->capjsons = nc;
	}
	st->jsons[st->njsons++] = j;
	return 0;
}

static int
out_check(struct rstate *st, struct hl_buf *out, int line, int col)
{
	int e = hl_buf_error(out);

	if (!e)
		return 0;
	if (e == -HL_ETOOBIG)
		return rerr(st, HL_ETOOBIG, line, col, "output larger than %zu bytes",
		            tmpl_max_output);
	return rerr(st, HL_ENOMEM, line, col, "out of memory");
}

static bool
work(struct rstate *st, int line, int col)
{
	if (++st->work > RENDER_MAX_WORK) {
		rerr(st, HL_ETOOBIG, line, col, "render exceeds its work budget");
		return false;
	}
	if (st->bytes > RENDER_MAX_BYTES) {
		rerr(st, HL_ETOOBIG, line, col,
		     "render exceeds its work budget (helpers read or made more than %u bytes)",
		     RENDER_MAX_BYTES);
		return false;
	}
	return !st->rc;
}

/* Charges n bytes read or made to the render's byte budget (checked by the
 * next work()). */
static void
charge(struct rstate *st, size_t n)
{
	st->bytes = n > SIZE_MAX - st->bytes ? SIZE_MAX : st->bytes + n;
}

/* A string's UTF-16 code unit at idx as a one-character string (lone
 * surrogates become U+FFFD, as they do on output). */
static struct tv
string_index(struct rstate *st, struct tv s, unsigned long idx)
{
	const unsigned char *u = (const unsigned char *)s.s;
	size_t i = 0, unit = 0;

	while (i < s.len) {
		size_t k = 1, units = 1;
		if (u[i] >= 0x80) {
			if ((u[i] & 0xe0) == 0xc0 && i + 1 < s.len)
				k = 2;
			else if ((u[i] & 0xf0) == 0xe0 && i + 2 < s.len)
				k = 3;
			else if ((u[i] & 0xf8) == 0xf0 && i + 3 < s.len) {
				k = 4;
				units = 2;
			}
		}
		if (idx < unit + units) {
			struct tv r = { 0 };
			r.t = TV_STR;
			if (units == 2)
				r.s = arena_str(st, "\xef\xbf\xbd", 3);
			else
				r.s = arena_str(st, s.s + i, k);
			r.len = units == 2 ? 3 : k;
			if (!r.s)
				return tv_undef();
			return r;
		}
		unit += units;
		i += k;
	}
	return tv_undef();
}

/* lookupProperty: own properties only. *found says whether the key exists. */
static struct tv
lookup_prop(struct rstate *st, struct tv parent, const char *name, bool *found)
{
	unsigned long idx;
	struct tv r = tv_undef();

	*found = false;
	switch (parent.t) {
	case TV_OBJ: {
		json_t *v = json_object_get(parent.j, name);
		if (v) {
			*found = true;
			r = tv_from_json(v);
		}
		break;
	}
	case TV_ARR:
		if (strcmp(name, "length") == 0) {
			*found = true;
			r.t = TV_NUM;
			r.n = (double)json_array_size(parent.j);
		} else if (tv_is_index(name, &idx) && idx < json_array_size(parent.j)) {
			*found = true;
			r = tv_from_json(json_array_get(parent.j, idx));
		}
		break;
	case TV_STR:
		/* UTF-16 lengths and indexes scan the string */
		if (strcmp(name, "length") == 0) {
			*found = true;
			charge(st, parent.len);
			r.t = TV_NUM;
			r.n = (double)tv_utf16_len(parent.s, parent.len);
		} else if (tv_is_index(name, &idx)) {
			charge(st, 2 * parent.len);
			if (idx < tv_utf16_len(parent.s, parent.len)) {
				*found = true;
				r = string_index(st, parent, idx);
			}
		}
		break;
	case TV_FUNC:
		/* partialBlockWrapper(context): own length, name and prototype */
		if (strcmp(name, "length") == 0) {
			*found = true;
			r.t = TV_NUM;
			r.n = 1;
		} else if (strcmp(name, "name") == 0) {
			*found = true;
			r.t = TV_STR;
			r.s = "partialBlockWrapper";
			r.len = strlen(r.s);
		} else if (strcmp(name, "prototype") == 0) {
			*found = true;
			r.t = TV_OBJ;
			r.j = st->null_ctx;
		}
		break;
	default:
		break;
	}
	return r;
}

static struct tv
frame_field(const struct frame *f, const char *name, bool *found)
{
	struct tv v = tv_undef();

	*found = true;
	if (strcmp(name, "root") == 0 && f->has_root)
		return f->root;
	if (strcmp(name, "index") == 0 && f->has_index)
		return f->index;
	if (strcmp(name, "key") == 0 && f->has_key)
		return f->key;
	if (strcmp(name, "first") == 0 && f->has_first)
		return f->first;
	if (strcmp(name, "last") == 0 && f->has_last)
		return f->last;
	if (strcmp(name, "partial-block") == 0 && f->has_pb) {
		if (f->pb) {
			v.t = TV_FUNC;
			v.fn = f->pb;
		}
		return v;
	}
	*found = false;
	return v;
}

static bool
is_nullish(struct tv v)
{
	return v.t == TV_UNDEF || v.t == TV_NULL;
}

/* An entry of a blockParams array as a JavaScript value (an array). */
static struct tv
bp_entry_value(struct rstate *st, const struct bpnode *e, int depth, int line, int col)
{
	struct tv r = tv_undef();
	json_t *a;
	size_t i;

	if (!e || e->kind == BP_UNDEF)
		return r;
	if (!(a = json_array()) || arena_json(st, a)) {
		rerr(st, HL_ENOMEM, line, col, "out of memory");
		return r;
	}
	if (e->kind == BP_VALS) {
		for (i = 0; i < e->n; i++) {
			if (json_array_append_new(a, tv_to_json(e->vals[i]))) {
				rerr(st, HL_ENOMEM, line, col, "out of memory");
				return r;
			}
		}
	} else {
		const struct bpnode *c;
		for (c = e->chain; c && !st->rc && depth < RENDER_MAX_DEPTH; c = c->next) {
			struct tv v = bp_entry_value(st, c, depth + 1, line, col);
			if (json_array_append_new(a, tv_to_json(v))) {
				rerr(st, HL_ENOMEM, line, col, "out of memory");
				return r;
			}
		}
	}
	r.t = TV_ARR;
	r.j = a;
	return r;
}

/* blockParams[depth][index]; an entry that is not there is a TypeError. */
static struct tv
bp_lookup(struct rstate *st, const struct ectx *ec, const struct tmpl_expr *e)
{
	const struct bpnode *b = ec->bp;
	int d = e->bp_depth, i;

	while (b && d-- > 0)
		b = b->next;
	if (!b || b->kind == BP_UNDEF) {
		rerr(st, HL_EPARSE, e->line, e->col,
		     "block parameter '%s' has no value here (the helper passes none)",
		     e->parts[0]);
		return tv_undef();
	}
	if (b->kind == BP_VALS)
		return (size_t)e->bp_index < b->n ? b->vals[e->bp_index] : tv_undef();
	b = b->chain;
	for (i = e->bp_index; b && i > 0; i--)
		b = b->next;
	return bp_entry_value(st, b, 0, e->line, e->col);
}

/* Resolves a path expression. falsy selects the `&&` chaining handlebars
 * uses for data paths and helper names instead of `!= null`. */
static struct tv
eval_path(struct rstate *st, const struct ectx *ec, const struct tmpl_expr *e, bool falsy,
          bool strict)
{
	struct tv cur;
	size_t i = 0;
	bool found;

	if (e->bp_depth >= 0) {
		/* lookupBlockParam, then the rest of the path with != null */
		cur = bp_lookup(st, ec, e);
		if (st->rc)
			return tv_undef();
		i = 1;
		falsy = false;
	} else if (e->nparts >= 1 && e->parts[0][0] == '\0') {
		/* an empty first name is the context itself (compiler.js: !name) */
		const struct dnode *dn = ec->depths;
		int d = e->depth;
		if (d == 0)
			return ec->ctx;
		while (dn && d-- > 0)
			dn = dn->next;
		return dn ? dn->v : tv_undef();
	} else if (e->data) {
		const struct frame *f = ec->data;
		int d = e->depth;
		while (f && d-- > 0)
			f = f->parent;
		if (!f) {
			if (strict && (st->flags & HL_TMPL_STRICT))
				rerr(st, HL_EINVAL, e->line, e->col, "'%s' not defined",
				     e->original);
			return tv_undef();
		}
		if (e->nparts == 0)
			return tv_undef();
		cur = frame_field(f, e->parts[0], &found);
		if (!found && strict && (st->flags & HL_TMPL_STRICT)) {
			rerr(st, HL_EINVAL, e->line, e->col, "'%s' not defined", e->original);
			return tv_undef();
		}
		i = 1;
		falsy = true;
	} else if (e->depth == 0) {
		cur = ec->ctx;
	} else {
		const struct dnode *dn = ec->depths;
		int d = e->depth;
		while (dn && d-- > 0)
			dn = dn->next;
		if (!dn) {
			if (strict && (st->flags & HL_TMPL_STRICT))
				rerr(st, HL_EINVAL, e->line, e->col,
				     "'%s' not defined: no parent context", e->original);
			return tv_undef();
		}
		cur = dn->v;
	}
	for (; i < e->nparts; i++) {
		if (falsy ? !tv_truthy(cur) : is_nullish(cur)) {
			if (strict && (st->flags & HL_TMPL_STRICT)) {
				rerr(st, HL_EINVAL, e->line, e->col, "'%s' not defined: '%s' is %s",
				     e->original, i ? e->parts[i - 1] : "this",
				     cur.t == TV_NULL ? "null" : "empty");
			}
			return cur;
		}
		cur = lookup_prop(st, cur, e->parts[i], &found);
		if (!found && strict && (st->flags & HL_TMPL_STRICT)) {
			rerr(st, HL_EINVAL, e->line, e->col, "'%s' not defined", e->original);
			return tv_undef();
		}
	}
	return cur;
}

/*
 * A program's value. handlebars.js compiles a program body to one JavaScript
 * expression joined with `+` (javascript-compiler.js mergeSource), so its
 * value is not always a string: `{{a}}{{b}}` with numbers adds them, and a
 * one-statement program returns its value raw. PV_NONE is an empty fold.
 */
enum { PV_NONE, PV_STR, PV_VAL };

struct pval {
	int kind;
	struct hl_buf s;
	struct tv v;
};

static void
pv_init(struct pval *p)
{
	p->kind = PV_NONE;
	hl_buf_init(&p->s, tmpl_max_output);
	p->v = tv_undef();
}

static void
pv_release(struct pval *p)
{
	hl_buf_release(&p->s);
	p->kind = PV_NONE;
}

static void
pv_set_str(struct pval *p, const char *s, size_t n)
{
	hl_buf_reset(&p->s);
	hl_buf_append(&p->s, s, n);
	p->kind = PV_STR;
}

static void
pv_to_str(struct pval *p)
{
	if (p->kind == PV_VAL)
		tv_to_string(&p->s, p->v);
	p->kind = PV_STR;
}

static bool
tv_is_obj(struct tv v)
{
	return v.t == TV_ARR || v.t == TV_OBJ;
}

/* acc = acc + v (JavaScript's +); v is never null or undefined */
static void
pv_add_tv(struct pval *acc, struct tv v)
{
	if (acc->kind == PV_NONE) {
		if (v.t == TV_STR) {
			pv_set_str(acc, v.s, v.len);
		} else {
			acc->kind = PV_VAL;
			acc->v = v;
		}
		return;
	}
	if (acc->kind == PV_STR || v.t == TV_STR || tv_is_obj(v) || tv_is_obj(acc->v)) {
		pv_to_str(acc);
		tv_to_string(&acc->s, v);
		return;
	}
	acc->v.n = tv_to_number(acc->v) + tv_to_number(v);
	acc->v.t = TV_NUM;
}

/* acc = acc + item; consumes item */
static void
pv_add_pv(struct pval *acc, struct pval *item)
{
	if (item->kind == PV_VAL) {
		pv_add_tv(acc, item->v);
	} else if (acc->kind == PV_NONE) {
		hl_buf_release(&acc->s);
		acc->s = item->s;
		hl_buf_init(&item->s, tmpl_max_output);
		acc->kind = PV_STR;
	} else {
		pv_to_str(acc);
		hl_buf_append(&acc->s, item->s.data, item->s.len);
	}
	pv_release(item);
}

static void
pv_move(struct pval *dst, struct pval *src)
{
	pv_release(dst);
	*dst = *src;
	pv_init(src);
}

static int
pv_check(struct rstate *st, struct pval *p, int line, int col)
{
	return out_check(st, &p->s, line, col);
}

/* A program value as a JavaScript value (its text moved to the arena). */
static struct tv
pv_value(struct rstate *st, struct pval *p, int line, int col)
{
	struct tv v = { 0 };

	if (p->kind == PV_VAL)
		return p->v;
	v.t = TV_STR;
	v.s = arena_str(st, p->kind == PV_STR ? p->s.data : "", p->kind == PV_STR ? p->s.len : 0);
	v.len = p->kind == PV_STR ? p->s.len : 0;
	if (!v.s) {
		rerr(st, HL_ENOMEM, line, col, "out of memory");
		return tv_undef();
	}
	return v;
}

static int run_program(struct rstate *st, const struct ectx *ec, struct pval *res);
static struct tv eval_call(struct rstate *st, const struct ectx *ec, const struct tmpl_call *c,
                           int kind, const struct blk *b, struct pval *bres, bool *has_pv);

enum { K_MUSTACHE, K_BLOCK, K_SEXPR };

static struct tv
eval_expr(struct rstate *st, const struct ectx *ec, const struct tmpl_expr *e)
{
	struct tv v = tv_undef();

	switch (e->type) {
	case TE_PATH:
		if (e->nparts == 0 && !e->data && e->depth == 0)
			return ec->ctx;
		return eval_path(st, ec, e, false, true);
	case TE_STRING:
		v.t = TV_STR;
		v.s = e->str;
		v.len = e->slen;
		return v;
	case TE_NUMBER:
		v.t = TV_NUM;
		v.n = e->num;
		return v;
	case TE_BOOL:
		v.t = TV_BOOL;
		v.b = e->b;
		return v;
	case TE_NULL:
		v.t = TV_NULL;
		return v;
	case TE_UNDEF:
		return v;
	case TE_SEXPR: {
		bool has_pv = false;
		struct pval pv;
		pv_init(&pv);
		v = eval_call(st, ec, e->call, K_SEXPR, NULL, &pv, &has_pv);
		pv_release(&pv);
		return v;
	}
	}
	return v;
}

/* ---- partial scopes ---- */

static struct cont *
cont_of(struct rstate *st, const struct hl_tmpl *t)
{
	size_t i;

	for (i = 0; i < st->nconts; i++) {
		if (st->conts[i].t == t)
			return &st->conts[i];
	}
	if (st->nconts == st->capconts) {
		size_t nc = st->capconts ? st->capconts * 2 : 8;
		struct cont *n = realloc(st->conts, nc * sizeof(*n));
		if (!n)
			return NULL;
		st->conts = n;
		st->capconts = nc;
	}
	st->conts[st->nconts].t = t;
	st->conts[st->nconts].scope = NULL;
	return &st->conts[st->nconts++];
}

/* What a partial name finds: an inline partial (*w), a template (*t), or
 * nothing. An inline partial registered as undefined hides the rest. */
static void
scope_find(const struct rstate *st, const struct scope *sc, const char *name,
           const struct wrapper **w, const struct hl_tmpl **t)
{
	size_t i;

	*w = NULL;
	*t = NULL;
	for (; sc; sc = sc->parent) {
		for (i = sc->n; i-- > 0;) {
			if (strcmp(sc->e[i].name, name) == 0) {
				*w = sc->e[i].w;
				return;
			}
		}
	}
	*t = hl_tmpl_set_get(st->partials, name);
}

/* ---- program wrappers ---- */

static void
wrapper_release(struct wrapper *w)
{
	size_t i;

	if (!w)
		return;
	for (i = 0; i < w->nkids; i++) {
		wrapper_release(w->kids[i]);
		free(w->kids[i]);
	}
	for (i = 0; i < w->nown; i++)
		free((char *)w->own[i].name);
	free(w->kids);
	free(w->own);
	w->kids = NULL;
	w->own = NULL;
	w->nkids = w->nown = 0;
}

static int prepare(struct rstate *st, const struct ectx *at, const struct tmpl_program *prog,
                   struct wrapper *w);

/* Is this decorator `inline` (the name as written: a path or a string)? */
static bool
is_inline(const struct tmpl_expr *e)
{
	return (e->type == TE_PATH && strcmp(e->original, "inline") == 0) ||
	       (e->type == TE_STRING && e->slen == 6 && memcmp(e->str, "inline", 6) == 0);
}

/* Runs one decorator of w's program (executeDecorators): its arguments are
 * evaluated where the wrapper was made, with depth0 = depths[0]. */
static int
run_decorator(struct rstate *st, struct wrapper *w, const struct tmpl_node *nd)
{
	const struct tmpl_call *c = nd->call;
	struct ectx dec = { 0 };
	struct hl_buf key = HL_BUF_INIT(0);
	struct tv a0 = tv_undef();
	struct wrapper *kid = NULL;
	size_t i;

	dec.ctx = w->depths ? w->depths->v : tv_undef();
	dec.depths = w->depths;
	dec.data = w->data;
	dec.bp = w->bp;
	dec.owner = w->owner;
	dec.prog = w->prog;
	st->no_helpers++;
	for (i = 0; i < c->nparams && !st->rc; i++) {
		struct tv v = eval_expr(st, &dec, c->params[i]);
		if (i == 0)
			a0 = v;
	}
	for (i = 0; i < c->nhash && !st->rc; i++)
		eval_expr(st, &dec, c->hvals[i]);
	st->no_helpers--;
	if (st->rc)
		return st->rc;
	if (!is_inline(c->path))
		return rerr(st, HL_EPARSE, nd->line, nd->col, "unknown decorator '%s'",
		            c->path->type == TE_PATH     ? c->path->original
		            : c->path->type == TE_STRING ? c->path->str
		                                         : "(literal)");
	/* props.partials[options.args[0]] = options.fn */
	tv_to_string(&key, a0);
	if (nd->program) {
		struct wrapper **nk = realloc(w->kids, (w->nkids + 1) * sizeof(*nk));
		if (!nk || !(kid = calloc(1, sizeof(*kid)))) {
			if (nk)
				w->kids = nk;
			rerr(st, HL_ENOMEM, nd->line, nd->col, "out of memory");
			goto out;
		}
		w->kids = nk;
		w->kids[w->nkids++] = kid;
		if (prepare(st, &dec, nd->program, kid))
			goto out;
	}
	{
		struct pentry *ne = realloc(w->own, (w->nown + 1) * sizeof(*ne));
		char *name = ne ? hl_buf_detach(&key, NULL) : NULL;
		if (ne)
			w->own = ne;
		if (!name) {
			rerr(st, HL_ENOMEM, nd->line, nd->col, "out of memory");
			goto out;
		}
		ne[w->nown].name = name;
		ne[w->nown].w = kid;
		w->nown++;
	}
out:
	hl_buf_release(&key);
	return st->rc;
}

/*
 * container.program(): a wrapper of prog made at `at` (its depths, data and
 * block parameters), whose decorators run now. NULL prog makes a noop.
 */
static int
prepare(struct rstate *st, const struct ectx *at, const struct tmpl_program *prog,
        struct wrapper *w)
{
	size_t i;

	memset(w, 0, sizeof(*w));
	w->prog = prog;
	w->owner = at->owner;
	w->depths = at->depths;
	w->data = at->data;
	w->bp = at->bp;
	if (!prog || !prog->ndecorators)
		return 0;
	if (st->depth >= RENDER_MAX_DEPTH)
		return rerr(st, HL_ETOOBIG, 1, 1, "templates nested too deeply");
	st->depth++;
	for (i = 0; i < prog->n && !st->rc; i++) {
		const struct tmpl_node *nd = prog->body[i];
		if (nd->type == TN_DECORATOR || nd->type == TN_DECORATOR_BLOCK)
			run_decorator(st, w, nd);
	}
	st->depth--;
	return st->rc;
}

/*
 * Runs a wrapper's program with a context (wrapProgram's prog): the context
 * joins depths when it differs from depths[0], entry is prepended to the
 * block parameters, data defaults to the wrapper's, and the program's
 * inline partials extend its template's scope while it runs.
 */
static int
invoke(struct rstate *st, const struct wrapper *w, struct tv ctx, const struct frame *data,
       struct bpnode entry, struct pval *res)
{
	struct dnode dn;
	struct ectx ec = { 0 };
	struct scope layer;
	struct cont *ct;
	const struct scope *saved;
	const char *saved_name = st->tname;

	if (!w || !w->prog) {
		pv_set_str(res, "", 0);
		return 0;
	}
	ec.depths = w->depths;
	/* depths && context != depths[0] && !(context === nullContext &&
	 * depths[0] === null) */
	if (w->depths ? !tv_loose_eq(ctx, w->depths->v) &&
	                        !(ctx.t == TV_OBJ && ctx.j == st->null_ctx &&
	                          w->depths->v.t == TV_NULL)
	              : !is_nullish(ctx)) {
		dn.v = ctx;
		dn.next = w->depths;
		ec.depths = &dn;
	}
	ec.ctx = ctx;
	ec.data = data ? data : w->data;
	entry.next = w->bp;
	ec.bp = &entry;
	ec.prog = w->prog;
	ec.owner = w->owner;
	if (!(ct = cont_of(st, w->owner)))
		return rerr(st, HL_ENOMEM, 1, 1, "out of memory");
	saved = ct->scope;
	ec.scope = saved;
	if (w->nown) {
		layer.parent = saved;
		layer.e = w->own;
		layer.n = w->nown;
		ct->scope = &layer;
		ec.scope = &layer;
	}
	st->tname = w->owner->name;
	run_program(st, &ec, res);
	st->tname = saved_name;
	if (w->nown && (ct = cont_of(st, w->owner)))
		ct->scope = saved;
	return st->rc;
}

static struct bpnode
bp_undef(void)
{
	struct bpnode e = { 0 };
	e.kind = BP_UNDEF;
	return e;
}

static struct bpnode
bp_vals(const struct tv *vals, size_t n)
{
	struct bpnode e = { 0 };
	e.kind = BP_VALS;
	e.vals = vals;
	e.n = n;
	return e;
}

/* options.blockParams as a helper at this statement passes it: the whole
 * array when the compiler had block parameters in use there. */
static struct bpnode
bp_opts(const struct ectx *ec, const struct tmpl_node *nd)
{
	struct bpnode e = { 0 };

	if (nd->bp_own || (ec->prog && ec->prog->bp_desc)) {
		e.kind = BP_CHAIN;
		e.chain = ec->bp;
	} else {
		e.kind = BP_UNDEF;
	}
	return e;
}

/*
 * Calls a @partial-block as a function (partialBlockWrapper(context,
 * options)): the block runs with a new data frame (over base, or over
 * nothing when the call passes no options) that restores the outer
 * @partial-block.
 */
static int
call_pblock(struct rstate *st, const struct pblock *pb, struct tv ctx, const struct frame *base,
            struct bpnode entry, struct pval *res)
{
	struct frame fr;

	if (base)
		fr = *base;
	else
		memset(&fr, 0, sizeof(fr));
	fr.parent = base;
	fr.pb = pb->outer;
	fr.has_pb = true;
	return invoke(st, pb->w, ctx, &fr, entry, res);
}

/* How handlebars calls a function value: as a lambda or by isFunction()
 * (no arguments), as an ambiguous helper (the options object only), or as a
 * helper with one argument (and options). */
enum { CALL_BARE, CALL_OPTIONS, CALL_ARG };

/* A @partial-block used as a value that handlebars calls: its result. More
 * than one argument is refused (partialBlockWrapper would take the second
 * as its options). */
static struct tv
call_func(struct rstate *st, const struct ectx *ec, struct tv f, int how, size_t nargs,
          struct tv a0, const char *name, int line, int col)
{
	const struct pblock *pb = f.fn;
	struct tv v = tv_undef();
	struct pval r;

	if (nargs > 1) {
		rerr(st, HL_EUNSUPPORTED, line, col,
		     "calling '%s' with more than one argument is not supported", name);
		return v;
	}
	if (!work(st, line, col))
		return v;
	pv_init(&r);
	if (how == CALL_ARG) {
		/* fn(arg, options): options.data is the caller's */
		call_pblock(st, pb, a0, ec->data, bp_undef(), &r);
	} else if (how == CALL_BARE) {
		/* fn.call(this): no context, no options */
		call_pblock(st, pb, tv_undef(), NULL, bp_undef(), &r);
	} else {
		/* helper.call(this, options): the options object is the context
		 * (approximated by its name and hash) */
		json_t *o = json_object();
		if (!o || arena_json(st, o) || json_object_set_new(o, "name", json_string(name)) ||
		    json_object_set_new(o, "hash", json_object())) {
			rerr(st, HL_ENOMEM, line, col, "out of memory");
		} else {
			v.t = TV_OBJ;
			v.j = o;
			call_pblock(st, pb, v, NULL, bp_undef(), &r);
		}
	}
	v = st->rc ? tv_undef() : pv_value(st, &r, line, col);
	pv_release(&r);
	return v;
}

/* A conditional or context a built-in resolves first: isFunction(x) ->
 * x.call(this). */
static struct tv
resolve_func(struct rstate *st, const struct ectx *ec, struct tv v, int line, int col)
{
	if (v.t != TV_FUNC)
		return v;
	return call_func(st, ec, v, CALL_BARE, 0, tv_undef(), "partial-block", line, col);
}

/* ---- built-in helpers ---- */

static struct tv
this_ctx(struct rstate *st, struct tv ctx)
{
	if (is_nullish(ctx)) {
		struct tv v = { 0 };
		v.t = TV_OBJ;
		v.j = st->null_ctx;
		return v;
	}
	return ctx;
}

static bool
is_empty(struct tv v)
{
	if (!tv_truthy(v) && !(v.t == TV_NUM && v.n == 0))
		return true;
	return v.t == TV_ARR && json_array_size(v.j) == 0;
}

/* ret = ret + fn(item, {data, blockParams: [item, key]}) */
static int
each_iter(struct rstate *st, const struct blk *b, struct frame *fr, struct tv item, struct tv key,
          struct pval *res)
{
	struct pval r;
	struct tv bp[2];

	if (!work(st, b->nd->line, b->nd->col))
		return st->rc;
	bp[0] = item;
	bp[1] = key;
	pv_init(&r);
	if (invoke(st, b->fn, item, fr, bp_vals(bp, 2), &r) == 0) {
		pv_add_pv(res, &r);
		pv_check(st, res, b->nd->line, b->nd->col);
	}
	pv_release(&r);
	return st->rc;
}

static int
do_each(struct rstate *st, const struct ectx *ec, const struct blk *b, struct tv ctx,
        struct pval *res)
{
	struct frame fr;
	size_t i, n = 0;

	if (ec->data)
		fr = *ec->data;
	else
		memset(&fr, 0, sizeof(fr));
	fr.parent = ec->data;
	fr.has_index = fr.has_key = fr.has_first = fr.has_last = true;
	fr.index.t = TV_NUM;
	fr.first.t = fr.last.t = TV_BOOL;
	pv_set_str(res, "", 0); /* ret = '' */
	if (ctx.t == TV_ARR) {
		n = json_array_size(ctx.j);
		for (i = 0; i < n && !st->rc; i++) {
			fr.index.n = (double)i;
			fr.key.t = TV_NUM;
			fr.key.n = (double)i;
			fr.first.b = i == 0;
			fr.last.b = i == n - 1;
			if (each_iter(st, b, &fr, tv_from_json(json_array_get(ctx.j, i)), fr.key,
			              res))
				return st->rc;
		}
	} else if (ctx.t == TV_OBJ) {
		const char **keys = tv_object_keys(ctx.j, &n);
		if (n == 0 && json_object_size(ctx.j) > 0) {
			free(keys);
			return rerr(st, HL_ENOMEM, b->nd->line, b->nd->col, "out of memory");
		}
		for (i = 0; i < n && !st->rc; i++) {
			fr.index.n = (double)i;
			fr.key.t = TV_STR;
			fr.key.s = keys[i];
			fr.key.len = strlen(keys[i]);
			fr.first.b = i == 0;
			fr.last.b = i == n - 1;
			if (each_iter(st, b, &fr, tv_from_json(json_object_get(ctx.j, keys[i])),
			              fr.key, res)) {
				free(keys);
				return st->rc;
			}
		}
		free(keys);
	}
	if (n == 0)
		return invoke(st, b->inverse, this_ctx(st, ec->ctx), NULL, bp_undef(), res);
	return st->rc;
}

/* blockHelperMissing(context, options). The generated code calls it with
 * `this` = depth0 itself (not the nullContext helpers get). */
static int
block_missing(struct rstate *st, const struct ectx *ec, const struct blk *b, struct tv v,
              struct pval *res)
{
	if (v.t == TV_BOOL && v.b)
		return invoke(st, b->fn, ec->ctx, NULL, bp_undef(), res);
	if ((v.t == TV_BOOL && !v.b) || is_nullish(v))
		return invoke(st, b->inverse, ec->ctx, NULL, bp_undef(), res);
	if (v.t == TV_ARR) {
		if (json_array_size(v.j) > 0)
			return do_each(st, ec, b, v, res);
		return invoke(st, b->inverse, ec->ctx, NULL, bp_undef(), res);
	}
	/* fn(context, options): options.data and options.blockParams */
	return invoke(st, b->fn, v, ec->data, bp_opts(ec, b->nd), res);
}

/* What a built-in helper needs from the renderer. */
struct tmpl_rt {
	struct rstate *st;
	const struct ectx *ec;
	const struct blk *b; /* the block statement, or NULL */
	struct pval *pres;   /* a block helper's result */
	bool has_pv;         /* pres holds the result */
	int line, col;
};

int
tmpl_bi_log(struct tmpl_hcall *hc)
{
	/* logger.log(level, ...args) at level info: nothing is rendered */
	hc->res = tv_undef();
	return 0;
}

int
tmpl_bi_hook(struct tmpl_hcall *hc)
{
	struct tmpl_rt *rt = hc->rt;

	/* moved to container.hooks at run time: helpers[name] is undefined */
	return rerr(rt->st, HL_EPARSE, rt->line, rt->col, "'%s' cannot be called by name",
	            hc->h->name);
}

int
tmpl_bi_lookup(struct tmpl_hcall *hc)
{
	struct tmpl_rt *rt = hc->rt;
	struct hl_buf key = HL_BUF_INIT(0);
	bool found;

	/* lookup(obj, field, options): with fewer or more arguments `options`
	 * is not the options object and options.lookupProperty throws, unless
	 * obj is falsy */
	if (hc->nargs == 0)
		return rerr(rt->st, HL_EPARSE, rt->line, rt->col, "lookup needs arguments");
	if (!tv_truthy(hc->args[0])) {
		hc->res = hc->args[0];
		return 0;
	}
	if (hc->nargs != 2)
		return rerr(rt->st, HL_EPARSE, rt->line, rt->col, "lookup takes two arguments");
	tv_to_string(&key, hc->args[1]);
	if (hl_buf_error(&key)) {
		hl_buf_release(&key);
		return rerr(rt->st, HL_ENOMEM, rt->line, rt->col, "out of memory");
	}
	hc->res = lookup_prop(rt->st, hc->args[0], key.data, &found);
	hl_buf_release(&key);
	return 0;
}

int
tmpl_bi_each(struct tmpl_hcall *hc)
{
	struct tmpl_rt *rt = hc->rt;
	struct rstate *st = rt->st;
	const struct ectx *ec = rt->ec;
	struct tv ctx = resolve_func(st, ec, hc->args[0], rt->line, rt->col);

	rt->has_pv = true;
	if (st->rc)
		return st->rc;
	if (ctx.t == TV_ARR || ctx.t == TV_OBJ)
		return do_each(st, ec, rt->b, ctx, rt->pres);
	return invoke(st, rt->b->inverse, this_ctx(st, ec->ctx), NULL, bp_undef(), rt->pres);
}

int
tmpl_bi_with(struct tmpl_hcall *hc)
{
	struct tmpl_rt *rt = hc->rt;
	struct rstate *st = rt->st;
	const struct ectx *ec = rt->ec;
	struct tv ctx = resolve_func(st, ec, hc->args[0], rt->line, rt->col);

	rt->has_pv = true;
	if (st->rc)
		return st->rc;
	if (!is_empty(ctx))
		return invoke(st, rt->b->fn, ctx, ec->data, bp_vals(&ctx, 1), rt->pres);
	return invoke(st, rt->b->inverse, this_ctx(st, ec->ctx), NULL, bp_undef(), rt->pres);
}

/* if and unless (which is if with fn and inverse swapped) */
int
tmpl_bi_if(struct tmpl_hcall *hc)
{
	struct tmpl_rt *rt = hc->rt;
	struct rstate *st = rt->st;
	const struct ectx *ec = rt->ec;
	struct tv cond = resolve_func(st, ec, hc->args[0], rt->line, rt->col);
	bool include_zero = false, neg;
	size_t i;

	rt->has_pv = true;
	if (st->rc)
		return st->rc;
	for (i = 0; i < hc->nhash; i++) {
		if (strcmp(hc->hkeys[i], "includeZero") == 0) {
			include_zero = tv_truthy(hc->hvals[i]); /* the first one wins */
			break;
		}
	}
	neg = (!include_zero && !tv_truthy(cond)) || is_empty(cond);
	if (hc->h->name[0] == 'u')
		neg = !neg;
	return invoke(st, neg ? rt->b->inverse : rt->b->fn, this_ctx(st, ec->ctx), NULL, bp_undef(),
	              rt->pres);
}

/*
 * Calls helper h with evaluated arguments (the hash is evaluated here). A
 * block helper fills bres and sets *has_pv; any other returns its value in
 * *res.
 */
static int
call_helper(struct rstate *st, const struct ectx *ec, const struct tmpl_helper *h,
            const struct tmpl_call *c, const struct tv *args, size_t nargs, int kind,
            const struct blk *b, struct pval *bres, bool *has_pv, struct tv *res, int line, int col)
{
	struct tmpl_rt rt = { st, ec, kind == K_BLOCK ? b : NULL, bres, false, line, col };
	struct tmpl_hcall hc = { 0 };
	struct tv hv_local[8], *hv = hv_local;
	struct hl_buf sb = HL_BUF_INIT(tmpl_max_output);
	size_t i;
	int rc;

	*res = tv_undef();
	if (c->nhash > sizeof(hv_local) / sizeof(hv_local[0])) {
		hv = calloc(c->nhash, sizeof(*hv));
		if (!hv)
			return rerr(st, HL_ENOMEM, line, col, "out of memory");
	}
	for (i = 0; i < c->nhash && !st->rc; i++)
		hv[i] = eval_expr(st, ec, c->hvals[i]);
	if (st->rc)
		goto out;
	if (!(h->flags & TH_HOOK)) {
		if ((h->min_args >= 0 && nargs < (size_t)h->min_args) ||
		    (h->max_args >= 0 && nargs > (size_t)h->max_args)) {
			rerr(st, HL_EPARSE, line, col, "#%s requires exactly one argument",
			     h->name);
			goto out;
		}
		if ((h->flags & TH_BLOCK) && kind != K_BLOCK) {
			rerr(st, HL_EPARSE, line, col, "'%s' must be used as a block: {{#%s}}",
			     h->name, h->name);
			goto out;
		}
	}
	hc.h = h;
	hc.args = args;
	hc.nargs = nargs;
	hc.hkeys = (const char *const *)c->hkeys;
	hc.hvals = hv;
	hc.nhash = c->nhash;
	hc.res = tv_undef();
	hc.sbuf = &sb;
	hc.rt = &rt;
	/* what a helper reads (its string arguments: the built-ins only test
	 * or pass them) and makes (its text) */
	for (i = 0; !(h->flags & TH_KNOWN) && i < nargs; i++)
		if (args[i].t == TV_STR)
			charge(st, args[i].len);
	for (i = 0; !(h->flags & TH_KNOWN) && i < c->nhash; i++)
		if (hv[i].t == TV_STR)
			charge(st, hv[i].len);
	rc = h->fn(&hc);
	if (st->rc)
		goto out;
	charge(st, sb.len);
	if (!work(st, line, col))
		goto out;
	if (rc < 0) {
		if (rc == -HL_ETOOBIG)
			rerr(st, HL_ETOOBIG, line, col, "helper '%s' output too large", h->name);
		else
			rerr(st, -rc, line, col, "helper '%s' failed", h->name);
		goto out;
	}
	if (rt.has_pv) {
		*has_pv = true;
		goto out;
	}
	*res = hc.res;
	if (res->t == TV_STR && !res->s) {
		res->s = arena_str(st, sb.data, sb.len);
		res->len = sb.len;
		if (!res->s)
			rerr(st, HL_ENOMEM, line, col, "out of memory");
	}
out:
	hl_buf_release(&sb);
	if (hv != hv_local)
		free(hv);
	return st->rc;
}

/*
 * Evaluates a mustache, block or subexpression call as the parser classified
 * it. Blocks run by a built-in or as a section (blockHelperMissing) fill
 * bres and set *has_pv; otherwise the value is returned.
 */
static struct tv
eval_call(struct rstate *st, const struct ectx *ec, const struct tmpl_call *c, int kind,
          const struct blk *b, struct pval *bres, bool *has_pv)
{
	const struct tmpl_expr *path = c->path;
	struct tv args_local[8], *args = args_local, res = tv_undef();
	size_t i;

	*has_pv = false;
	if (!work(st, path->line, path->col))
		return res;
	switch (c->cls) {
	case TC_HELPER:
		if (st->no_helpers && (c->helper || c->simple)) {
			/* decorator arguments run where `helpers` is not defined */
			rerr(st, HL_EPARSE, path->line, path->col,
			     "'%s': helpers cannot be called in decorator arguments",
			     path->original);
			break;
		}
		if (c->nparams > sizeof(args_local) / sizeof(args_local[0])) {
			args = calloc(c->nparams, sizeof(*args));
			if (!args) {
				rerr(st, HL_ENOMEM, path->line, path->col, "out of memory");
				break;
			}
		}
		for (i = 0; i < c->nparams && !st->rc; i++)
			args[i] = eval_expr(st, ec, c->params[i]);
		if (st->rc)
			break;
		if (c->helper) {
			call_helper(st, ec, c->helper, c, args, c->nparams, kind, b, bres, has_pv,
			            &res, path->line, path->col);
			break;
		}
		/* (helpers.name || value || helperMissing).call(...) */
		res = eval_path(st, ec, path, true, false);
		if (st->rc)
			break;
		if (res.t == TV_FUNC) {
			res = call_func(st, ec, res, c->nparams ? CALL_ARG : CALL_OPTIONS,
			                c->nparams, c->nparams ? args[0] : tv_undef(),
			                path->original, path->line, path->col);
			break;
		}
		if (tv_truthy(res))
			rerr(st, HL_EPARSE, path->line, path->col, "'%s' is not a function",
			     path->original);
		else if (c->nparams)
			rerr(st, HL_EPARSE, path->line, path->col, "missing helper '%s'",
			     path->original);
		res = tv_undef();
		break;
	case TC_AMBIGUOUS:
		if (st->no_helpers) {
			rerr(st, HL_EPARSE, path->line, path->col,
			     "'%s': helpers cannot be called in decorator arguments",
			     path->original);
			break;
		}
		if (c->helper) {
			/* resolved to the helper (its value, even for a block) */
			call_helper(st, ec, c->helper, c, args, 0, K_MUSTACHE, NULL, bres, has_pv,
			            &res, path->line, path->col);
			break;
		}
		res = eval_path(st, ec, path, false, true);
		if (st->rc)
			break;
		if (res.t == TV_FUNC)
			res = call_func(st, ec, res, CALL_OPTIONS, 0, tv_undef(), path->parts[0],
			                path->line, path->col);
		if (kind == K_BLOCK && !st->rc) {
			block_missing(st, ec, b, res, bres);
			*has_pv = true;
			res = tv_undef();
		}
		break;
	case TC_SIMPLE:
		res = eval_path(st, ec, path, false, true);
		if (st->rc)
			break;
		if (res.t == TV_FUNC) /* resolvePossibleLambda */
			res = call_func(st, ec, res, CALL_BARE, 0, tv_undef(), path->original,
			                path->line, path->col);
		if (kind == K_BLOCK && !st->rc) {
			block_missing(st, ec, b, res, bres);
			*has_pv = true;
			res = tv_undef();
		}
		break;
	}
	if (args != args_local)
		free(args);
	return res;
}

/* ---- partials ---- */

/* Is this block compiled as an ambiguous block (its own statement in the
 * generated code, which breaks the `+` chain)? */
static bool
block_is_explicit(const struct tmpl_node *nd)
{
	return nd->call->cls == TC_AMBIGUOUS;
}

/* A partial's name: as written, or the value of a subexpression (*fn when
 * that is a @partial-block, which is called itself). */
static const char *
partial_name(struct rstate *st, const struct ectx *ec, const struct tmpl_expr *e,
             struct hl_buf *tmp, const struct pblock **fn)
{
	struct tv v;

	*fn = NULL;
	switch (e->type) {
	case TE_PATH:
		return e->original;
	case TE_STRING:
		hl_buf_append(tmp, e->str, e->slen);
		return tmp->data;
	case TE_NUMBER:
		tv_format_number(tmp, e->num);
		return tmp->data;
	case TE_BOOL:
		return e->b ? "true" : "false";
	case TE_NULL:
		return "null";
	case TE_UNDEF:
		return "undefined";
	case TE_SEXPR:
		v = eval_expr(st, ec, e);
		if (st->rc)
			return NULL;
		if (v.t == TV_FUNC) {
			*fn = v.fn;
			return "";
		}
		/* resolvePartial: a falsy name leaves options.name undefined */
		if (!tv_truthy(v))
			hl_buf_append_str(tmp, "undefined");
		else
			tv_to_string(tmp, v);
		return tmp->data;
	}
	return "";
}

/* A template as a partial (or the template rendered): ret(context, options)
 * with its own depths and block parameters, the caller's data, and scope as
 * its container.partials. Its value is a string ('' + main()). */
static int
run_template(struct rstate *st, const struct hl_tmpl *t, struct tv ctx, const struct frame *data,
             const struct scope *scope, struct pval *res)
{
	struct cont *ct = cont_of(st, t);
	const struct scope *saved;
	const char *saved_name = st->tname;
	struct ectx at = { 0 }, ec = { 0 };
	struct wrapper w;
	struct dnode dn;
	struct scope layer;

	if (!ct)
		return rerr(st, HL_ENOMEM, 1, 1, "out of memory");
	saved = ct->scope;
	ct->scope = scope;
	st->tname = t->name;
	/* the decorators of the main program see depths [] */
	at.data = data;
	at.owner = t;
	at.scope = scope;
	if (prepare(st, &at, t->root, &w) == 0) {
		dn.v = ctx;
		dn.next = NULL;
		ec.ctx = ctx;
		ec.depths = &dn;
		ec.data = data;
		ec.scope = scope;
		ec.prog = t->root;
		ec.owner = t;
		if (w.nown) {
			layer.parent = scope;
			layer.e = w.own;
			layer.n = w.nown;
			ec.scope = &layer;
			if ((ct = cont_of(st, t)))
				ct->scope = &layer;
		}
		if (run_program(st, &ec, res) == 0)
			pv_to_str(res);
	}
	wrapper_release(&w);
	if ((ct = cont_of(st, t)))
		ct->scope = saved;
	st->tname = saved_name;
	return st->rc;
}

/* Utils.extend({}, context, hash) */
static int
extend_ctx(struct rstate *st, const struct ectx *ec, const struct tmpl_node *nd, struct tv base,
           struct tv *res)
{
	json_t *o = json_object();
	size_t i;

	if (!o || arena_json(st, o))
		return rerr(st, HL_ENOMEM, nd->line, nd->col, "out of memory");
	if (base.t == TV_OBJ) {
		size_t n;
		const char **keys = tv_object_keys(base.j, &n);
		for (i = 0; i < n; i++)
			json_object_set(o, keys[i], json_object_get(base.j, keys[i]));
		free(keys);
	} else if (base.t == TV_ARR) {
		for (i = 0; i < json_array_size(base.j); i++) {
			char k[24];
			snprintf(k, sizeof(k), "%zu", i);
			json_object_set(o, k, json_array_get(base.j, i));
		}
	} else if (base.t == TV_STR) {
		size_t n = tv_utf16_len(base.s, base.len);
		for (i = 0; i < n; i++) {
			char k[24];
			struct tv ch = string_index(st, base, i);
			snprintf(k, sizeof(k), "%zu", i);
			json_object_set_new(o, k, json_stringn(ch.s ? ch.s : "", ch.len));
		}
	}
	/* the compiler assigns the pairs last to first, so a repeated key
	 * takes its first value and the keys come in reverse order, and it
	 * leaves a key whose value is the literal `undefined` out */
	for (i = nd->call->nhash; i-- > 0 && !st->rc;) {
		const char *k = nd->call->hkeys[i];
		size_t f, later;
		struct tv v;
		json_t *j;

		for (later = i + 1; later < nd->call->nhash; later++) {
			if (strcmp(nd->call->hkeys[later], k) == 0)
				break;
		}
		if (later < nd->call->nhash)
			continue; /* placed by its last occurrence */
		for (f = 0; strcmp(nd->call->hkeys[f], k) != 0; f++)
			;
		if (nd->call->hvals[f]->type == TE_UNDEF)
			continue;
		v = eval_expr(st, ec, nd->call->hvals[f]);
		if (st->rc)
			break;
		/* an undefined value stays an own property holding undefined */
		j = tv_to_json(v);
		if (!j || json_object_set_new(o, k, j))
			return rerr(st, HL_ENOMEM, nd->line, nd->col, "out of memory");
	}
	if (st->rc)
		return st->rc;
	res->t = TV_OBJ;
	res->j = o;
	return 0;
}

/*
 * A partial statement or a partial block: invokePartialWrapper and
 * invokePartial. The name is looked up in the partial scope (and
 * @partial-block in the data); a partial block's block becomes the
 * @partial-block of a new data frame and runs in place of a missing
 * partial. The value of an inline partial or a block is the program's
 * value; a standalone partial indents every line of it.
 */
static int
do_partial(struct rstate *st, const struct ectx *ec, const struct tmpl_node *nd, struct pval *res)
{
	struct hl_buf nb = HL_BUF_INIT(0);
	struct pval pr;
	const struct hl_tmpl *t = NULL;
	const struct wrapper *w = NULL;
	const struct pblock *fn = NULL;
	const char *name;
	struct tv ctx = ec->ctx;
	struct wrapper blockw;
	struct pblock block;
	struct frame fr;
	struct scope layer;
	const struct frame *data = ec->data;
	const struct scope *scope = ec->scope;

	memset(&blockw, 0, sizeof(blockw));
	pv_init(&pr);
	pv_set_str(res, "", 0);
	name = partial_name(st, ec, nd->call->path, &nb, &fn);
	if (st->rc || !name)
		goto out;
	if (hl_buf_error(&nb)) {
		rerr(st, HL_ENOMEM, nd->line, nd->col, "out of memory");
		goto out;
	}
	if (nd->call->nparams == 1) {
		ctx = eval_expr(st, ec, nd->call->params[0]);
		if (st->rc)
			goto out;
	}
	if (nd->call->has_hash && extend_ctx(st, ec, nd, ctx, &ctx))
		goto out;
	if (nd->program) {
		/* options.fn: the block, made here; options.data gets a frame
		 * with it as @partial-block; its inline partials join
		 * options.partials */
		if (prepare(st, ec, nd->program, &blockw))
			goto out;
		block.w = &blockw;
		block.outer = ec->data && ec->data->has_pb ? ec->data->pb : NULL;
		if (ec->data)
			fr = *ec->data;
		else
			memset(&fr, 0, sizeof(fr));
		fr.parent = ec->data;
		fr.pb = &block;
		fr.has_pb = true;
		data = &fr;
		if (blockw.nown) {
			layer.parent = ec->scope;
			layer.e = blockw.own;
			layer.n = blockw.nown;
			scope = &layer;
		}
	}
	if (!fn) {
		scope_find(st, ec->scope, name, &w, &t);
		/* resolvePartial: a static name "@partial-block" not found
		 * is the data's */
		if (!w && !t && nd->call->path->type != TE_SEXPR &&
		    strcmp(name, "@partial-block") == 0 && ec->data && ec->data->has_pb)
			fn = ec->data->pb;
	}
	if (!w && !t && !fn && nd->program)
		fn = &block; /* the block stands in for the missing partial */
	if (!w && !t && !fn) {
		rerr(st, HL_EPARSE, nd->line, nd->col, "the partial '%s' could not be found", name);
		goto out;
	}
	if (st->depth >= RENDER_MAX_DEPTH / 2) {
		rerr(st, HL_ETOOBIG, nd->line, nd->col, "partials nested too deeply");
		goto out;
	}
	if (!work(st, nd->line, nd->col))
		goto out;
	if (t)
		run_template(st, t, ctx, data, scope, &pr);
	else if (w)
		invoke(st, w, ctx, data, bp_opts(ec, nd), &pr);
	else
		call_pblock(st, fn, ctx, data, bp_opts(ec, nd), &pr);
	if (st->rc)
		goto out;
	if (nd->indent && pr.kind == PV_VAL) {
		/* result.split('\n') on a value that is not a string */
		rerr(st, HL_EPARSE, nd->line, nd->col,
		     "the standalone partial '%s' did not render text", name);
		goto out;
	}
	if (nd->indent && pr.kind == PV_STR && pr.s.len) {
		/* indent every line; a final empty line is left alone */
		size_t i = 0, il = strlen(nd->indent);
		pv_set_str(res, "", 0);
		while (i < pr.s.len) {
			const char *nl = memchr(pr.s.data + i, '\n', pr.s.len - i);
			size_t e = nl ? (size_t)(nl - pr.s.data) + 1 : pr.s.len;
			hl_buf_append(&res->s, nd->indent, il);
			hl_buf_append(&res->s, pr.s.data + i, e - i);
			i = e;
		}
	} else {
		pv_move(res, &pr);
	}
	pv_check(st, res, nd->line, nd->col);
out:
	wrapper_release(&blockw);
	hl_buf_release(&nb);
	pv_release(&pr);
	return st->rc;
}

/* One statement's value: *explicit when it is an ambiguous block. Content
 * items are returned as borrowed strings in *v; others in *pv. */
enum { IT_NONE, IT_TV, IT_PV };

static int
eval_stmt(struct rstate *st, const struct ectx *ec, const struct tmpl_node *nd, struct tv *v,
          struct pval *pv, bool *explicit_out)
{
	bool has_pv = false;
	struct wrapper fn, inverse;
	struct blk b;

	*explicit_out = false;
	switch (nd->type) {
	case TN_CONTENT:
		if (nd->vend == nd->vstart)
			return IT_NONE;
		v->t = TV_STR;
		v->s = nd->text + nd->vstart;
		v->len = nd->vend - nd->vstart;
		return IT_TV;
	case TN_COMMENT:
	case TN_DECORATOR:
	case TN_DECORATOR_BLOCK:
		/* decorators ran when the program was made */
		return IT_NONE;
	case TN_MUSTACHE:
		*v = eval_call(st, ec, nd->call, K_MUSTACHE, NULL, pv, &has_pv);
		if (is_nullish(*v)) {
			v->t = TV_STR;
			v->s = "";
			v->len = 0;
		}
		return IT_TV;
	case TN_BLOCK:
		*explicit_out = block_is_explicit(nd);
		/* options.fn and options.inverse are made before the call */
		prepare(st, ec, nd->program, &fn);
		if (!st->rc)
			prepare(st, ec, nd->inverse, &inverse);
		else
			memset(&inverse, 0, sizeof(inverse));
		b.nd = nd;
		b.fn = &fn;
		b.inverse = &inverse;
		if (!st->rc)
			*v = eval_call(st, ec, nd->call, K_BLOCK, &b, pv, &has_pv);
		wrapper_release(&fn);
		wrapper_release(&inverse);
		if (st->rc)
			return IT_NONE;
		if (has_pv)
			return IT_PV;
		if (is_nullish(*v)) {
			if (*explicit_out)
				return IT_NONE; /* if (x != null) buffer += x */
			v->t = TV_STR;
			v->s = "";
			v->len = 0;
		}
		return IT_TV;
	case TN_PARTIAL:
		do_partial(st, ec, nd, pv);
		return IT_PV;
	}
	return IT_NONE;
}

struct item {
	int kind;
	bool explicit;
	struct tv v;
	struct pval pv;
};

static void
add_item(struct pval *acc, struct item *it)
{
	if (it->kind == IT_TV)
		pv_add_tv(acc, it->v);
	else if (it->kind == IT_PV)
		pv_add_pv(acc, &it->pv);
}

/* mergeSource: `return e1 + e2...` without ambiguous blocks; otherwise
 * buffer = chain1 (or ""), `buffer += x` per ambiguous block, `buffer +=
 * (chain)` per inner chain and `return buffer + e1 + e2...` for the last. */
static void
merge(struct item *items, size_t n, bool any_explicit, struct pval *res)
{
	struct pval chain;
	size_t i = 0, k;

	if (!any_explicit) {
		for (i = 0; i < n; i++)
			add_item(res, &items[i]);
		if (res->kind == PV_NONE)
			pv_set_str(res, "", 0);
		return;
	}
	pv_init(&chain);
	if (n && !items[0].explicit) {
		for (k = 0; k < n && !items[k].explicit; k++)
			add_item(res, &items[k]);
		i = k;
	} else {
		pv_set_str(res, "", 0);
	}
	while (i < n) {
		if (items[i].explicit) {
			add_item(res, &items[i]);
			i++;
			continue;
		}
		for (k = i; k < n && !items[k].explicit; k++)
			;
		if (k == n) {
			for (; i < n; i++)
				add_item(res, &items[i]);
			break;
		}
		for (; i < k; i++)
			add_item(&chain, &items[i]);
		if (chain.kind != PV_NONE)
			pv_add_pv(res, &chain);
		pv_init(&chain);
	}
	pv_release(&chain);
	if (res->kind == PV_NONE)
		pv_set_str(res, "", 0);
}

/* Runs a program's statements in ec and computes its value. */
static int
run_program(struct rstate *st, const struct ectx *ec, struct pval *res)
{
	const struct tmpl_program *prog = ec->prog;
	struct item local[16], *items = local;
	size_t i, n = 0;
	bool any_explicit = false;

	pv_release(res);
	if (st->depth >= RENDER_MAX_DEPTH)
		return rerr(st, HL_ETOOBIG, 1, 1, "templates nested too deeply");
	if (prog->n > sizeof(local) / sizeof(local[0])) {
		items = calloc(prog->n, sizeof(*items));
		if (!items)
			return rerr(st, HL_ENOMEM, 1, 1, "out of memory");
	}
	st->depth++;
	for (i = 0; i < prog->n && !st->rc; i++) {
		const struct tmpl_node *nd = prog->body[i];
		struct item *it = &items[n];

		if (!work(st, nd->line, nd->col))
			break;
		pv_init(&it->pv);
		it->v = tv_undef();
		it->kind = eval_stmt(st, ec, nd, &it->v, &it->pv, &it->explicit);
		if (!st->rc && it->kind == IT_PV)
			pv_check(st, &it->pv, nd->line, nd->col);
		if (it->kind == IT_NONE && !it->explicit) {
			/* comments and emptied text emit no code at all */
			pv_release(&it->pv);
			continue;
		}
		n++;
		if (it->explicit)
			any_explicit = true;
	}
	st->depth--;
	if (!st->rc) {
		if (prog->n == 1) {
			/* isSimple: the one statement's value, raw */
			if (n == 0 || items[0].kind == IT_NONE)
				pv_set_str(res, "", 0);
			else
				add_item(res, &items[0]);
		} else {
			merge(items, n, any_explicit, res);
		}
		pv_check(st, res, 1, 1);
	}
	for (i = 0; i < n; i++)
		pv_release(&items[i].pv);
	if (items != local)
		free(items);
	return st->rc;
}

int
hl_tmpl_render(char **out, size_t *len_out, const struct hl_tmpl *t, const json_t *data,
               const struct hl_tmpl_set *partials, unsigned flags, struct hl_err *err)
{
	return hl_tmpl_render_max(out, len_out, t, data, partials, flags, 0, err);
}

int
hl_tmpl_render_max(char **out, size_t *len_out, const struct hl_tmpl *t, const json_t *data,
                   const struct hl_tmpl_set *partials, unsigned flags, size_t max_output,
                   struct hl_err *err)
{
	struct rstate st = { 0 };
	struct pval res;
	struct frame root = { 0 };
	struct tv ctx;
	size_t i;
	char *s;

	tmpl_max_output =
	        max_output && max_output < HL_TMPL_MAX_OUTPUT ? max_output : HL_TMPL_MAX_OUTPUT;
	st.partials = partials;
	st.flags = flags;
	st.err = err;
	st.tname = t->name;
	st.null_ctx = json_object();
	if (!st.null_ctx)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	ctx = tv_from_json((json_t *)data);
	root.has_root = true; /* initData: data.root = context */
	root.root = ctx;
	pv_init(&res);
	run_template(&st, t, ctx, &root, NULL, &res);
	if (!st.rc)
		pv_check(&st, &res, 1, 1);
	for (i = 0; i < st.nstrs; i++)
		free(st.strs[i]);
	free(st.strs);
	for (i = 0; i < st.njsons; i++)
		json_decref(st.jsons[i]);
	free(st.jsons);
	free(st.conts);
	json_decref(st.null_ctx);
	tv_special_clear();
	if (st.rc) {
		pv_release(&res);
		return st.rc;
	}
	if (!(s = hl_buf_detach(&res.s, len_out)))
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	*out = s;
	return 0;
}
