/*
 * render.c - evaluates a compiled template against jansson data with the
 * runtime semantics of handlebars.js 4.x (javascript-compiler.js and
 * runtime.js): calls as the parser classified them (helper, ambiguous name
 * or value; helpers from the table in helpers.c), lookups that
 * see own properties only, `../` over the stack of distinct contexts
 * (depths), @data frames created by #each, blockHelperMissing for plain
 * sections, the nullContext handed to block helpers when the context is
 * null, partial contexts extended by hash arguments and partial indentation.
 *
 * Every render is bounded: output (HL_TMPL_MAX_OUTPUT), a work budget, and a
 * nesting depth, so hostile templates and data cannot hang or exhaust it.
 */
#include "tmpl/tmpl_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RENDER_MAX_DEPTH 200
#define RENDER_MAX_WORK  20000000L

/* The output cap of the render running on this thread. */
static _Thread_local size_t tmpl_max_output = HL_TMPL_MAX_OUTPUT;

struct dnode {
	struct tv v;
	const struct dnode *next;
};

struct frame {
	const struct frame *parent;
	struct tv root, index, key, first, last;
	bool has_root, has_index, has_key, has_first, has_last;
};

struct rstate {
	const struct hl_tmpl_set *partials;
	unsigned flags;
	struct hl_err *err;
	int rc;
	const char *tname;
	long work;
	int depth;
	/* arena: strings and json values created while rendering */
	char **strs;
	size_t nstrs, capstrs;
	json_t **jsons;
	size_t njsons, capjsons;
	json_t *null_ctx;
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
	return !st->rc;
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
		if (strcmp(name, "length") == 0) {
			*found = true;
			r.t = TV_NUM;
			r.n = (double)tv_utf16_len(parent.s, parent.len);
		} else if (tv_is_index(name, &idx) && idx < tv_utf16_len(parent.s, parent.len)) {
			*found = true;
			r = string_index(st, parent, idx);
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
	*found = false;
	return tv_undef();
}

static bool
is_nullish(struct tv v)
{
	return v.t == TV_UNDEF || v.t == TV_NULL;
}

struct ectx {
	struct tv ctx;              /* depth0 */
	const struct dnode *depths; /* depths[0] first */
	const struct frame *data;
};

/* Resolves a path expression. falsy selects the `&&` chaining handlebars
 * uses for data paths and helper names instead of `!= null`. */
static struct tv
eval_path(struct rstate *st, const struct ectx *ec, const struct tmpl_expr *e, bool falsy,
          bool strict)
{
	struct tv cur;
	size_t i = 0;
	bool found;

	if (e->nparts >= 1 && e->parts[0][0] == '\0') {
		/* an empty first name is the context itself (compiler.js: !name) */
		const struct dnode *dn = ec->depths;
		int d = e->depth;
		if (d == 0)
			return ec->ctx;
		while (dn && d-- > 0)
			dn = dn->next;
		return dn ? dn->v : tv_undef();
	}
	if (e->data) {
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

static int run_program(struct rstate *st, const struct tmpl_program *prog, struct tv ctx,
                       const struct dnode *depths, const struct frame *data, struct pval *res);
static struct tv eval_call(struct rstate *st, const struct ectx *ec, const struct tmpl_call *c,
                           int kind, const struct tmpl_node *blk, struct pval *bres, bool *has_pv);

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

/* Runs a block's fn/inverse with a context (noop, "", when prog is NULL). */
static int
invoke(struct rstate *st, const struct ectx *ec, const struct tmpl_program *prog, struct tv ctx,
       const struct frame *data, struct pval *res)
{
	struct dnode dn;
	const struct dnode *depths = ec->depths;

	if (!prog) {
		pv_set_str(res, "", 0);
		return 0;
	}
	/* wrapProgram: context != depths[0] && !(context === nullContext &&
	 * depths[0] === null) */
	if (!depths || !tv_loose_eq(ctx, depths->v)) {
		if (!(ctx.t == TV_OBJ && ctx.j == st->null_ctx && depths &&
		      depths->v.t == TV_NULL)) {
			dn.v = ctx;
			dn.next = depths;
			depths = &dn;
		}
	}
	return run_program(st, prog, ctx, depths, data, res);
}

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

/* ret = ret + fn(item) */
static int
each_iter(struct rstate *st, const struct ectx *ec, const struct tmpl_node *blk, struct frame *fr,
          struct tv item, struct pval *res)
{
	struct pval r;

	if (!work(st, blk->line, blk->col))
		return st->rc;
	pv_init(&r);
	if (invoke(st, ec, blk->program, item, fr, &r) == 0) {
		pv_add_pv(res, &r);
		pv_check(st, res, blk->line, blk->col);
	}
	pv_release(&r);
	return st->rc;
}

static int
do_each(struct rstate *st, const struct ectx *ec, const struct tmpl_node *blk, struct tv ctx,
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
			if (each_iter(st, ec, blk, &fr, tv_from_json(json_array_get(ctx.j, i)),
			              res))
				return st->rc;
		}
	} else if (ctx.t == TV_OBJ) {
		const char **keys = tv_object_keys(ctx.j, &n);
		if (n == 0 && json_object_size(ctx.j) > 0) {
			free(keys);
			return rerr(st, HL_ENOMEM, blk->line, blk->col, "out of memory");
		}
		for (i = 0; i < n && !st->rc; i++) {
			fr.index.n = (double)i;
			fr.key.t = TV_STR;
			fr.key.s = keys[i];
			fr.key.len = strlen(keys[i]);
			fr.first.b = i == 0;
			fr.last.b = i == n - 1;
			if (each_iter(st, ec, blk, &fr,
			              tv_from_json(json_object_get(ctx.j, keys[i])), res)) {
				free(keys);
				return st->rc;
			}
		}
		free(keys);
	}
	if (n == 0)
		return invoke(st, ec, blk->inverse, this_ctx(st, ec->ctx), ec->data, res);
	return st->rc;
}

/* blockHelperMissing(context, options). The generated code calls it with
 * `this` = depth0 itself (not the nullContext helpers get). */
static int
block_missing(struct rstate *st, const struct ectx *ec, const struct tmpl_node *blk, struct tv v,
              struct pval *res)
{
	if (v.t == TV_BOOL && v.b)
		return invoke(st, ec, blk->program, ec->ctx, ec->data, res);
	if ((v.t == TV_BOOL && !v.b) || is_nullish(v))
		return invoke(st, ec, blk->inverse, ec->ctx, ec->data, res);
	if (v.t == TV_ARR) {
		if (json_array_size(v.j) > 0)
			return do_each(st, ec, blk, v, res);
		return invoke(st, ec, blk->inverse, ec->ctx, ec->data, res);
	}
	return invoke(st, ec, blk->program, v, ec->data, res);
}

/* What a built-in helper needs from the renderer. */
struct tmpl_rt {
	struct rstate *st;
	const struct ectx *ec;
	const struct tmpl_call *c;
	const struct tmpl_node *blk; /* the block statement, or NULL */
	struct pval *pres;           /* a block helper's result */
	bool has_pv;                 /* pres holds the result */
	int line, col;
};

int
tmpl_bi_log(struct tmpl_hcall *hc)
{
	hc->res = tv_undef();
	return 0;
}

int
tmpl_bi_helper_missing(struct tmpl_hcall *hc)
{
	struct tmpl_rt *rt = hc->rt;

	hc->res = tv_undef();
	if (hc->nargs)
		return rerr(rt->st, HL_EPARSE, rt->line, rt->col, "missing helper 'helperMissing'");
	return 0;
}

int
tmpl_bi_block_helper_missing(struct tmpl_hcall *hc)
{
	struct tmpl_rt *rt = hc->rt;

	return rerr(rt->st, HL_EPARSE, rt->line, rt->col, "'blockHelperMissing' cannot be called");
}

int
tmpl_bi_lookup(struct tmpl_hcall *hc)
{
	struct tmpl_rt *rt = hc->rt;
	struct hl_buf key = HL_BUF_INIT(0);
	bool found;

	if (hc->nargs == 0)
		return rerr(rt->st, HL_EPARSE, rt->line, rt->col, "lookup needs arguments");
	if (!tv_truthy(hc->args[0])) {
		hc->res = hc->args[0];
		return 0;
	}
	if (hc->nargs > 2)
		return rerr(rt->st, HL_EPARSE, rt->line, rt->col, "lookup takes two arguments");
	if (hc->nargs == 1)
		hl_buf_append_str(&key, "[object Object]");
	else
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

	rt->has_pv = true;
	if (hc->args[0].t == TV_ARR || hc->args[0].t == TV_OBJ)
		return do_each(st, ec, rt->blk, hc->args[0], rt->pres);
	return invoke(st, ec, rt->blk->inverse, this_ctx(st, ec->ctx), ec->data, rt->pres);
}

int
tmpl_bi_with(struct tmpl_hcall *hc)
{
	struct tmpl_rt *rt = hc->rt;
	struct rstate *st = rt->st;
	const struct ectx *ec = rt->ec;

	rt->has_pv = true;
	if (!is_empty(hc->args[0]))
		return invoke(st, ec, rt->blk->program, hc->args[0], ec->data, rt->pres);
	return invoke(st, ec, rt->blk->inverse, this_ctx(st, ec->ctx), ec->data, rt->pres);
}

/* if and unless (which is if with fn and inverse swapped) */
int
tmpl_bi_if(struct tmpl_hcall *hc)
{
	struct tmpl_rt *rt = hc->rt;
	struct rstate *st = rt->st;
	const struct ectx *ec = rt->ec;
	struct tv cond = hc->args[0];
	bool include_zero = false, neg;
	size_t i;

	rt->has_pv = true;
	for (i = 0; i < hc->nhash; i++) {
		if (strcmp(hc->hkeys[i], "includeZero") == 0)
			include_zero = tv_truthy(hc->hvals[i]);
	}
	neg = (!include_zero && !tv_truthy(cond)) || is_empty(cond);
	if (hc->h->name[0] == 'u')
		neg = !neg;
	return invoke(st, ec, neg ? rt->blk->inverse : rt->blk->program, this_ctx(st, ec->ctx),
	              ec->data, rt->pres);
}

/*
 * Calls helper h with evaluated arguments (the hash is evaluated here). A
 * block helper fills bres and sets *has_pv; any other returns its value in
 * *res.
 */
static int
call_helper(struct rstate *st, const struct ectx *ec, const struct tmpl_helper *h,
            const struct tmpl_call *c, const struct tv *args, size_t nargs, int kind,
            const struct tmpl_node *blk, struct pval *bres, bool *has_pv, struct tv *res, int line,
            int col)
{
	struct tmpl_rt rt = { st, ec, c, kind == K_BLOCK ? blk : NULL, bres, false, line, col };
	struct tmpl_hcall hc = { 0 };
	struct tv hv_local[8], *hv = hv_local;
	struct hl_buf sb = HL_BUF_INIT(tmpl_max_output);
	size_t i;
	int rc;

	*res = tv_undef();
	if ((h->flags & TH_BLOCK) && kind != K_BLOCK)
		return rerr(st, HL_EPARSE, line, col, "'%s' must be used as a block: {{#%s}}",
		            h->name, h->name);
	if ((h->min_args >= 0 && nargs < (size_t)h->min_args) ||
	    (h->max_args >= 0 && nargs > (size_t)h->max_args))
		return rerr(st, HL_EPARSE, line, col, "#%s requires exactly one argument", h->name);
	if (c->nhash > sizeof(hv_local) / sizeof(hv_local[0])) {
		hv = calloc(c->nhash, sizeof(*hv));
		if (!hv)
			return rerr(st, HL_ENOMEM, line, col, "out of memory");
	}
	for (i = 0; i < c->nhash && !st->rc; i++)
		hv[i] = eval_expr(st, ec, c->hvals[i]);
	if (st->rc)
		goto out;
	hc.h = h;
	hc.args = args;
	hc.nargs = nargs;
	hc.hkeys = (const char *const *)c->hkeys;
	hc.hvals = hv;
	hc.nhash = c->nhash;
	hc.res = tv_undef();
	hc.sbuf = &sb;
	hc.rt = &rt;
	rc = h->fn(&hc);
	if (st->rc)
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
 * Evaluates a mustache, block or subexpression call. For blocks whose output
 * goes straight to out (builtins, sections), *appended is set; otherwise the
 * returned value is to be appended by the caller.
 */

/*
 * Evaluates a mustache, block or subexpression call (classifySexpr). Blocks
 * run by a built-in or as a section (blockHelperMissing) fill bres and set
 * *has_pv; otherwise the value is returned.
 */
static struct tv
eval_call(struct rstate *st, const struct ectx *ec, const struct tmpl_call *c, int kind,
          const struct tmpl_node *blk, struct pval *bres, bool *has_pv)
{
	const struct tmpl_expr *path = c->path;
	struct tv args_local[8], *args = args_local, res = tv_undef();
	size_t i;

	*has_pv = false;
	if (!work(st, path->line, path->col))
		return res;
	switch (c->cls) {
	case TC_HELPER:
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
			call_helper(st, ec, c->helper, c, args, c->nparams, kind, blk, bres, has_pv,
			            &res, path->line, path->col);
			break;
		}
		/* (helpers.name || value || helperMissing).call(...) */
		res = eval_path(st, ec, path, true, false);
		if (st->rc)
			break;
		if (tv_truthy(res))
			rerr(st, HL_EPARSE, path->line, path->col, "'%s' is not a function",
			     path->original);
		else if (c->nparams)
			rerr(st, HL_EPARSE, path->line, path->col, "missing helper '%s'",
			     path->original);
		res = tv_undef();
		break;
	case TC_AMBIGUOUS:
		if (c->helper) {
			/* resolved to the helper (its value, even for a block) */
			call_helper(st, ec, c->helper, c, args, 0, K_MUSTACHE, NULL, bres, has_pv,
			            &res, path->line, path->col);
			break;
		}
		/* fall through */
	case TC_SIMPLE:
		res = eval_path(st, ec, path, false, true);
		if (st->rc)
			break;
		if (kind == K_BLOCK) {
			block_missing(st, ec, blk, res, bres);
			*has_pv = true;
			res = tv_undef();
		}
		break;
	}
	if (args != args_local)
		free(args);
	return res;
}

/* Is this block compiled as an ambiguous block (its own statement in the
 * generated code, which breaks the `+` chain)? */
static bool
block_is_explicit(const struct tmpl_node *nd)
{
	return nd->call->cls == TC_AMBIGUOUS;
}
static const char *
partial_name(struct rstate *st, const struct ectx *ec, const struct tmpl_expr *e,
             struct hl_buf *tmp)
{
	struct tv v;

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
		if (!tv_truthy(v))
			hl_buf_append_str(tmp, "undefined");
		else
			tv_to_string(tmp, v);
		return tmp->data;
	}
	return "";
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
	for (i = 0; i < nd->call->nhash; i++) {
		struct tv v = eval_expr(st, ec, nd->call->hvals[i]);
		json_t *j = NULL;
		if (st->rc)
			return st->rc;
		switch (v.t) {
		case TV_UNDEF:
			j = tv_special_new(v); /* an own property holding undefined */
			break;
		case TV_NULL:
			j = json_null();
			break;
		case TV_BOOL:
			j = json_boolean(v.b);
			break;
		case TV_NUM:
			j = isfinite(v.n) ? json_real(v.n) : tv_special_new(v);
			break;
		case TV_STR:
			j = json_stringn_nocheck(v.s, v.len);
			break;
		default:
			j = json_incref(v.j);
			break;
		}
		if (!j || json_object_set_new(o, nd->call->hkeys[i], j))
			return rerr(st, HL_ENOMEM, nd->line, nd->col, "out of memory");
	}
	res->t = TV_OBJ;
	res->j = o;
	return 0;
}

static int
do_partial(struct rstate *st, const struct ectx *ec, const struct tmpl_node *nd, struct pval *res)
{
	struct hl_buf nb = HL_BUF_INIT(0);
	struct pval pb;
	const struct hl_tmpl *pt;
	const char *name, *saved_name;
	struct tv ctx = ec->ctx;
	struct dnode dn;
	int rc = 0;

	pv_init(&pb);
	pv_set_str(res, "", 0);
	name = partial_name(st, ec, nd->call->path, &nb);
	if (st->rc || !name)
		goto out;
	if (hl_buf_error(&nb)) {
		rerr(st, HL_ENOMEM, nd->line, nd->col, "out of memory");
		goto out;
	}
	pt = st->partials ? hl_tmpl_set_get(st->partials, name) : NULL;
	if (nd->call->nparams == 1) {
		ctx = eval_expr(st, ec, nd->call->params[0]);
		if (st->rc)
			goto out;
	}
	if (nd->call->has_hash && extend_ctx(st, ec, nd, ctx, &ctx))
		goto out;
	if (!pt) {
		rerr(st, HL_EPARSE, nd->line, nd->col, "the partial '%s' could not be found", name);
		goto out;
	}
	if (st->depth >= RENDER_MAX_DEPTH / 2) {
		rerr(st, HL_ETOOBIG, nd->line, nd->col, "partials nested too deeply");
		goto out;
	}
	saved_name = st->tname;
	st->tname = pt->name;
	dn.v = ctx;
	dn.next = NULL;
	rc = run_program(st, pt->root, ctx, &dn, ec->data, &pb);
	st->tname = saved_name;
	if (rc)
		goto out;
	pv_to_str(&pb); /* '' + main(...) */
	if (nd->indent && pb.s.len) {
		/* indent every line; a final empty line is left alone */
		size_t i = 0, il = strlen(nd->indent);
		while (i < pb.s.len) {
			const char *nl = memchr(pb.s.data + i, '\n', pb.s.len - i);
			size_t e = nl ? (size_t)(nl - pb.s.data) + 1 : pb.s.len;
			hl_buf_append(&res->s, nd->indent, il);
			hl_buf_append(&res->s, pb.s.data + i, e - i);
			i = e;
		}
	} else {
		pv_move(res, &pb);
	}
	pv_check(st, res, nd->line, nd->col);
out:
	hl_buf_release(&nb);
	pv_release(&pb);
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
		return IT_NONE;
	case TN_MUSTACHE:
		*v = eval_call(st, ec, nd->call, K_MUSTACHE, nd, pv, &has_pv);
		if (is_nullish(*v)) {
			v->t = TV_STR;
			v->s = "";
			v->len = 0;
		}
		return IT_TV;
	case TN_BLOCK:
		*explicit_out = block_is_explicit(nd);
		*v = eval_call(st, ec, nd->call, K_BLOCK, nd, pv, &has_pv);
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

static int
run_program(struct rstate *st, const struct tmpl_program *prog, struct tv ctx,
            const struct dnode *depths, const struct frame *data, struct pval *res)
{
	struct ectx ec = { ctx, depths, data };
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
		it->kind = eval_stmt(st, &ec, nd, &it->v, &it->pv, &it->explicit);
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
	struct dnode dn;
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
	root.has_root = true;
	root.root = ctx;
	dn.v = ctx;
	dn.next = NULL;
	pv_init(&res);
	run_program(&st, t->root, ctx, &dn, &root, &res);
	if (!st.rc) {
		pv_to_str(&res); /* '' + main(...) */
		pv_check(&st, &res, 1, 1);
	}
	for (i = 0; i < st.nstrs; i++)
		free(st.strs[i]);
	free(st.strs);
	for (i = 0; i < st.njsons; i++)
		json_decref(st.jsons[i]);
	free(st.jsons);
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
