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

const char *
hl_tmpl_set_name_at(const struct hl_tmpl_set *set, size_t i)
{
	return set && i < set->n ? set->e[i].name : NULL;
}
