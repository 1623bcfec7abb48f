/*
 * catalog.c - lookups over the agent, category and failure-type tables that
 * gen_catalog.py generates from rules/catalog.yaml (catalog_data.c), and the
 * catalogue-wide check.
 *
 * The tables are small (a handful of agents, a few dozen types) and read-only,
 * so lookups are linear scans; nothing here allocates or locks. The generator
 * already refuses a malformed data file (unknown keys, dangling references,
 * duplicates, not exactly one default); hl_catalog_check re-checks the
 * compiled tables for what callers rely on (label-safe names, templates that
 * exist) so a bad edit fails a unit test rather than a CodeRun.
 */
#include "catalog/catalog_int.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

static const char *const catalog_domain_names[_HL_CATALOG_DOMAIN_MAX] = {
	[HL_CATALOG_DOMAIN_CI] = "ci",
	[HL_CATALOG_DOMAIN_ALERT] = "alert",
	[HL_CATALOG_DOMAIN_RUNTIME] = "runtime",
};

const char *
hl_catalog_domain_to_string(enum hl_catalog_domain d)
{
	if ((int)d < 0 || d >= _HL_CATALOG_DOMAIN_MAX)
		return NULL;
	return catalog_domain_names[d];
}

enum hl_catalog_domain
hl_catalog_domain_from_string(const char *s)
{
	for (int i = 0; s != NULL && i < _HL_CATALOG_DOMAIN_MAX; i++)
		if (strcmp(catalog_domain_names[i], s) == 0)
			return (enum hl_catalog_domain)i;
	return _HL_CATALOG_DOMAIN_INVALID;
}

const struct hl_catalog_agent *
hl_catalog_agent_find(const char *id)
{
	for (size_t i = 0; id != NULL && i < hl_catalog_agent_table_len; i++)
		if (strcasecmp(hl_catalog_agent_table[i].id, id) == 0)
			return &hl_catalog_agent_table[i];
	return NULL;
}

const struct hl_catalog_agent *
hl_catalog_agent_at(size_t i)
{
	return i < hl_catalog_agent_table_len ? &hl_catalog_agent_table[i] : NULL;
}

size_t
hl_catalog_agent_count(void)
{
	return hl_catalog_agent_table_len;
}

const struct hl_catalog_agent *
hl_catalog_default_agent(void)
{
	for (size_t i = 0; i < hl_catalog_agent_table_len; i++)
		if (hl_catalog_agent_table[i].is_default)
			return &hl_catalog_agent_table[i];
	return &hl_catalog_agent_table[0]; /* not reached: the generator checks */
}

const struct hl_catalog_agent *
hl_catalog_agent_by_app(const char *app)
{
	for (size_t i = 0; app != NULL && i < hl_catalog_agent_table_len; i++)
		if (strcmp(hl_catalog_agent_table[i].github_app, app) == 0)
			return &hl_catalog_agent_table[i];
	return NULL;
}

const struct hl_catalog_category *
hl_catalog_category_find(const char *name)
{
	for (size_t i = 0; name != NULL && i < hl_catalog_category_table_len; i++)
		if (strcmp(hl_catalog_category_table[i].name, name) == 0)
			return &hl_catalog_category_table[i];
	return NULL;
}

const struct hl_catalog_category *
hl_catalog_category_at(size_t i)
{
	return i < hl_catalog_category_table_len ? &hl_catalog_category_table[i] : NULL;
}

size_t
hl_catalog_category_count(void)
{
	return hl_catalog_category_table_len;
}

const struct hl_catalog_type *
hl_catalog_type_find(const char *name)
{
	for (size_t i = 0; name != NULL && i < hl_catalog_type_table_len; i++)
		if (strcmp(hl_catalog_type_table[i].name, name) == 0)
			return &hl_catalog_type_table[i];
	return NULL;
}

const struct hl_catalog_type *
hl_catalog_type_at(size_t i)
{
	return i < hl_catalog_type_table_len ? &hl_catalog_type_table[i] : NULL;
}

size_t
hl_catalog_type_count(void)
{
	return hl_catalog_type_table_len;
}

const struct hl_catalog_type *
hl_catalog_default_type(void)
{
	for (size_t i = 0; i < hl_catalog_type_table_len; i++)
		if (hl_catalog_type_table[i].is_default)
			return &hl_catalog_type_table[i];
	return &hl_catalog_type_table[0]; /* not reached: the generator checks */
}

/* True when s is 1..max characters, each in the set (letters lower-case
 * only), starting and ending with a letter or digit: a valid label value and
 * a DNS-1123 label fragment. */
static bool
catalog_token_ok(const char *s, size_t max, const char *punct)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      (c != '\0' && strchr(punct, c) != NULL)))
			return false;
	}
	return strchr(punct, s[0]) == NULL && strchr(punct, s[n - 1]) == NULL;
}

static bool
catalog_nonempty(const char *s)
{
	return s != NULL && *s != '\0';
}

static int
catalog_check_agents(const char *prompts_dir, struct hl_err *err)
{
	size_t defaults = 0;

	for (size_t i = 0; i < hl_catalog_agent_table_len; i++) {
		const struct hl_catalog_agent *a = &hl_catalog_agent_table[i];
		char path[4096];
		struct stat st;

		if (a->index != i)
			return hl_err_set(err, HL_EINVAL, "agent #%zu: index %u", i, a->index);
		if (!catalog_token_ok(a->id, 15, ""))
			return hl_err_set(err, HL_EINVAL,
			                  "agent '%s': id must be 1-15 characters [a-z0-9]",
			                  a->id ? a->id : "");
		if (!catalog_nonempty(a->name) || !catalog_nonempty(a->role))
			return hl_err_set(err, HL_EINVAL, "agent '%s': name and role are required",
			                  a->id);
		if (!catalog_nonempty(a->github_app))
			return hl_err_set(err, HL_EINVAL, "agent '%s': no GitHub App", a->id);
		if (!catalog_nonempty(a->template))
			return hl_err_set(err, HL_EINVAL, "agent '%s': no prompt template", a->id);
		for (size_t j = 0; j < i; j++) {
			const struct hl_catalog_agent *b = &hl_catalog_agent_table[j];
			if (strcasecmp(a->id, b->id) == 0 ||
			    strcmp(a->github_app, b->github_app) == 0)
				return hl_err_set(
				        err, HL_EINVAL,
				        "agents '%s' and '%s' share an id or a GitHub App", b->id,
				        a->id);
		}
		if (prompts_dir != NULL) {
			snprintf(path, sizeof(path), "%s/%s", prompts_dir, a->template);
			if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
				return hl_err_set(err, HL_EINVAL,
				                  "agent '%s': template '%s' is not in '%s'", a->id,
				                  a->template, prompts_dir);
		}
		defaults += a->is_default;
	}
	if (defaults != 1)
		return hl_err_set(err, HL_EINVAL, "%zu default agents (want exactly 1)", defaults);
	return 0;
}

static int
catalog_check_categories(struct hl_err *err)
{
	for (size_t i = 0; i < hl_catalog_category_table_len; i++) {
		const struct hl_catalog_category *c = &hl_catalog_category_table[i];

		if (c->index != i || !catalog_nonempty(c->name))
			return hl_err_set(err, HL_EINVAL, "category #%zu: bad name or index", i);
		if (c->agent == NULL || hl_catalog_agent_at(c->agent->index) != c->agent)
			return hl_err_set(err, HL_EINVAL, "category '%s': no agent", c->name);
		if (c->files == NULL)
			return hl_err_set(err, HL_EINVAL, "category '%s': no file list", c->name);
		for (size_t j = 0; j < i; j++)
			if (strcmp(c->name, hl_catalog_category_table[j].name) == 0)
				return hl_err_set(err, HL_EINVAL, "duplicate category '%s'",
				                  c->name);
	}
	return 0;
}

static int
catalog_check_types(struct hl_err *err)
{
	size_t defaults = 0;

	for (size_t i = 0; i < hl_catalog_type_table_len; i++) {
		const struct hl_catalog_type *t = &hl_catalog_type_table[i];

		if (t->index != i)
			return hl_err_set(err, HL_EINVAL, "failure type #%zu: index %u", i,
			                  t->index);
		if (!catalog_token_ok(t->name, 63, "_"))
			return hl_err_set(err, HL_EINVAL,
			                  "failure type '%s': name must be a label value [a-z0-9_]",
			                  t->name ? t->name : "");
		if (t->category == NULL ||
		    hl_catalog_category_at(t->category->index) != t->category)
			return hl_err_set(err, HL_EINVAL, "failure type '%s': unknown category",
			                  t->name);
		if (t->agent == NULL || hl_catalog_agent_at(t->agent->index) != t->agent)
			return hl_err_set(err, HL_EINVAL, "failure type '%s': no agent", t->name);
		if (!catalog_token_ok(t->short_name, 20, "-"))
			return hl_err_set(err, HL_EINVAL,
			                  "failure type '%s': short name '%s' must be 1-20 "
			                  "characters [a-z0-9-]",
			                  t->name, t->short_name ? t->short_name : "");
		if (!catalog_nonempty(t->fix_approach))
			return hl_err_set(err, HL_EINVAL, "failure type '%s': no fix approach",
			                  t->name);
		if (hl_catalog_domain_to_string(t->domain) == NULL)
			return hl_err_set(err, HL_EINVAL, "failure type '%s': bad domain", t->name);
		for (size_t j = 0; j < i; j++) {
			const struct hl_catalog_type *u = &hl_catalog_type_table[j];
			if (strcmp(t->name, u->name) == 0)
				return hl_err_set(err, HL_EINVAL, "duplicate failure type '%s'",
				                  t->name);
			if (strcmp(t->short_name, u->short_name) == 0)
				return hl_err_set(
				        err, HL_EINVAL,
				        "failure types '%s' and '%s' share the short name '%s'",
				        u->name, t->name, t->short_name);
		}
		if (t->is_default && !t->agent->is_default)
			return hl_err_set(err, HL_EINVAL,
			                  "default failure type '%s' is not routed to the default "
			                  "agent",
			                  t->name);
		defaults += t->is_default;
	}
	if (defaults != 1)
		return hl_err_set(err, HL_EINVAL, "%zu default failure types (want exactly 1)",
		                  defaults);
	return 0;
}

int
hl_catalog_check(const char *prompts_dir, struct hl_err *err)
{
	int rc;

	if (hl_catalog_agent_table_len == 0 || hl_catalog_category_table_len == 0 ||
	    hl_catalog_type_table_len == 0)
		return hl_err_set(err, HL_EINVAL, "the catalogue is empty");
	if (hl_catalog_agent_table_len > HL_CATALOG_MAX_AGENTS ||
	    hl_catalog_category_table_len > HL_CATALOG_MAX_CATEGORIES)
		return hl_err_set(err, HL_EINVAL, "more than %d agents or %d categories",
		                  HL_CATALOG_MAX_AGENTS, HL_CATALOG_MAX_CATEGORIES);
	if ((rc = catalog_check_agents(prompts_dir, err)) != 0)
		return rc;
	if ((rc = catalog_check_categories(err)) != 0)
		return rc;
	return catalog_check_types(err);
}
