/*
 * tmpl.c - compiled templates and the named template set (the partial
 * registry). A set is an insertion-ordered array searched linearly: prompt
 * sets hold a few dozen templates.
 */
#include "tmpl/tmpl_int.h"

#include <stdlib.h>
#include <string.h>

struct set_entry {
	char *name;
	struct hl_tmpl *t;
};

struct hl_tmpl_set {
	struct set_entry *e;
	size_t n, cap;
};

int
hl_tmpl_compile(struct hl_tmpl **out, const char *name, const char *src, size_t n,
                struct hl_err *err)
{
	struct hl_tmpl *t = calloc(1, sizeof(*t));
	int rc;

	if (!t)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	t->name = strdup(name ? name : "template");
	if (!t->name) {
		free(t);
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	}
	rc = tmpl_parse(&t->root, t->name, src, n, err);
	if (rc) {
		hl_tmpl_free(t);
		return rc;
	}
	*out = t;
	return 0;
}

void
hl_tmpl_free(struct hl_tmpl *t)
{
	if (!t)
		return;
	tmpl_program_free(t->root);
	free(t->name);
	free(t);
}

const char *
hl_tmpl_name(const struct hl_tmpl *t)
{
	return t->name;
}

struct hl_tmpl_set *
hl_tmpl_set_new(void)
{
	return calloc(1, sizeof(struct hl_tmpl_set));
}

void
hl_tmpl_set_free(struct hl_tmpl_set *set)
{
	size_t i;

	if (!set)
		return;
	for (i = 0; i < set->n; i++) {
		free(set->e[i].name);
		hl_tmpl_free(set->e[i].t);
	}
	free(set->e);
	free(set);
}

int
hl_tmpl_set_add_compiled(struct hl_tmpl_set *set, const char *name, struct hl_tmpl *t,
                         struct hl_err *err)
{
	size_t i;
	char *nm;

	for (i = 0; i < set->n; i++) {
		if (strcmp(set->e[i].name, name) == 0) {
			hl_tmpl_free(set->e[i].t);
			set->e[i].t = t;
			return 0;
		}
	}
	if (set->n == set->cap) {
		size_t nc = set->cap ? set->cap * 2 : 16;
		struct set_entry *ne = realloc(set->e, nc * sizeof(*ne));
		if (!ne) {
			hl_tmpl_free(t);
			return hl_err_set(err, HL_ENOMEM, "out of memory");
		}
		set->e = ne;
		set->cap = nc;
	}
	if (!(nm = strdup(name))) {
		hl_tmpl_free(t);
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	}
	set->e[set->n].name = nm;
	set->e[set->n].t = t;
	set->n++;
	return 0;
}

int
hl_tmpl_set_add(struct hl_tmpl_set *set, const char *name, const char *src, size_t n,
                struct hl_err *err)
{
	struct hl_tmpl *t = NULL;
	int rc = hl_tmpl_compile(&t, name, src, n, err);

	if (rc)
		return rc;
	return hl_tmpl_set_add_compiled(set, name, t, err);
}

const struct hl_tmpl *
hl_tmpl_set_get(const struct hl_tmpl_set *set, const char *name)
{
	size_t i;

	if (!set || !name)
		return NULL;
	for (i = 0; i < set->n; i++) {
		if (strcmp(set->e[i].name, name) == 0)
			return set->e[i].t;
	}
	return NULL;
}

size_t
hl_tmpl_set_count(const struct hl_tmpl_set *set)
{
	return set ? set->n : 0;
}

/* ---- the partials a set calls ---- */

struct partial_check {
	const struct hl_tmpl_set *set;
	const char **inl; /* the inline partials' names */
	size_t ninl, capinl;
	bool dynamic_inline; /* an inline partial named by a value */
	const char *tmpl;    /* the template walked */
	struct hl_err *err;
};

/* A static name as the renderer reads it, or NULL. */
static const char *
partial_static_name(const struct tmpl_expr *e)
{
	if (e->type == TE_PATH && !e->data)
		return e->original;
	if (e->type == TE_STRING)
		return e->str;
	return NULL;
}

static bool
partial_is_inline(const struct tmpl_expr *e)
{
	const char *n = partial_static_name(e);

	return n && strcmp(n, "inline") == 0;
}

/* Pass 1 collects inline partials' names; pass 2 checks the calls. */
static int
partial_walk(struct partial_check *pc, const struct tmpl_program *p, int pass)
{
	const struct tmpl_node *nd;
	const char *name;
	size_t i, j;
	int rc = 0;

	for (i = 0; p && rc == 0 && i < p->n; i++) {
		nd = p->body[i];
		switch (nd->type) {
		case TN_DECORATOR_BLOCK:
		case TN_DECORATOR:
			if (pass != 1 || !nd->call || !partial_is_inline(nd->call->path))
				break;
			name = nd->call->nparams ? partial_static_name(nd->call->params[0]) : NULL;
			if (!name || nd->call->params[0]->type != TE_STRING) {
				pc->dynamic_inline = true;
				break;
			}
			if (pc->ninl == pc->capinl) {
				size_t nc = pc->capinl ? pc->capinl * 2 : 8;
				const char **n = realloc(pc->inl, nc * sizeof(*n));
				if (!n)
					return hl_err_set(pc->err, HL_ENOMEM, "out of memory");
				pc->inl = n;
				pc->capinl = nc;
			}
			pc->inl[pc->ninl++] = name;
			break;
		case TN_PARTIAL:
			if (pass != 2 || nd->program || !nd->call)
				break;
			if (!(name = partial_static_name(nd->call->path)) ||
			    hl_tmpl_set_get(pc->set, name))
				break;
			for (j = 0; j < pc->ninl && strcmp(pc->inl[j], name) != 0; j++)
				;
			if (j == pc->ninl)
				return hl_err_set(
				        pc->err, HL_ENOTFOUND,
				        "%s:%d:%d: the partial '%.200s' could not be found",
				        pc->tmpl, nd->line, nd->col, name);
			break;
		default:
			break;
		}
		if (rc == 0)
			rc = partial_walk(pc, nd->program, pass);
		if (rc == 0)
			rc = partial_walk(pc, nd->inverse, pass);
	}
	return rc;
}

int
hl_tmpl_set_check_partials(const struct hl_tmpl_set *set, struct hl_err *err)
{
	struct partial_check pc = { .set = set, .err = err };
	size_t i;
	int pass, rc = 0;

	for (pass = 1; pass <= 2 && rc == 0 && !pc.dynamic_inline; pass++) {
		for (i = 0; set && rc == 0 && i < set->n; i++) {
			pc.tmpl = set->e[i].name;
			rc = partial_walk(&pc, set->e[i].t->root, pass);
		}
	}
	free(pc.inl);
	return rc;
}

const char *
hl_tmpl_set_name_at(const struct hl_tmpl_set *set, size_t i)
{
	return set && i < set->n ? set->e[i].name : NULL;
}
