/*
 * catalog.h - the agent roster and the failure-type catalogue (contract
 * sections 5 and 7), defined once in rules/catalog.yaml and compiled into a
 * static table at build time (src/catalog/gen_catalog.py).
 *
 * Three tables, each in the order of the data file:
 *  - agents: who fixes what (id, display name, role, GitHub App, CI prompt
 *    template); exactly one is the default (Atlas);
 *  - categories: a category routes to one agent, may be pinned to it on
 *    retries (security stays with Cipher) and owns the changed-file globs;
 *  - failure types: category, agent (the category's unless overridden),
 *    short name for CodeRun names, fix-approach sentence and domain.
 * Code asks the catalogue instead of naming agents or types, so adding an
 * agent or a failure type is one edit of the data file plus its template.
 *
 * Lookups return pointers into the static tables (valid for the life of the
 * program) or NULL when the name is unknown. Everything here is immutable:
 * any thread may call any function at any time.
 */
#ifndef HL_CATALOG_CATALOG_H
#define HL_CATALOG_CATALOG_H

#include "base/err.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>

/* Bounds the generator and hl_catalog_check enforce, so callers may keep
 * per-agent or per-category state in fixed arrays. */
#define HL_CATALOG_MAX_AGENTS     16
#define HL_CATALOG_MAX_CATEGORIES 32

/* Where failures of a type come from. */
enum hl_catalog_domain {
	HL_CATALOG_DOMAIN_CI,      /* a CI job (its log) */
	HL_CATALOG_DOMAIN_ALERT,   /* a security alert: the event is the failure */
	HL_CATALOG_DOMAIN_RUNTIME, /* a running system (ArgoCD, pods) */
	_HL_CATALOG_DOMAIN_MAX,
	_HL_CATALOG_DOMAIN_INVALID = -EINVAL,
};

struct hl_catalog_agent {
	const char *id;         /* "rex": routing name, [a-z0-9], <= 15 chars */
	const char *name;       /* "Rex" */
	const char *role;       /* "Rust specialist" */
	const char *github_app; /* "5DLabs-Rex" (CodeRun spec.githubApp) */
	const char *template;   /* CI prompt template for a first attempt */
	bool is_default;        /* takes what no specialist claims */
	unsigned index;         /* position in the agent table */
};

struct hl_catalog_category {
	const char *name;                     /* "rust" */
	const struct hl_catalog_agent *agent; /* who gets its work */
	bool stays_with_agent;                /* retries never move it */
	const char *const *files;             /* changed-file globs, NULL-terminated */
	unsigned index;
};

struct hl_catalog_type {
	const char *name; /* "rust_clippy" (also a label value) */
	const struct hl_catalog_category *category;
	const struct hl_catalog_agent *agent; /* the override or the category's */
	const char *short_name;               /* "clippy": [a-z0-9-], <= 20 chars, unique */
	const char *fix_approach;             /* one sentence for the agent's prompt */
	enum hl_catalog_domain domain;
	bool is_default; /* the type of a verdict without evidence */
	unsigned index;
};

/* Agents: by id (case-insensitive), by position, how many; the default one
 * (never NULL). */
const struct hl_catalog_agent *hl_catalog_agent_find(const char *id);
const struct hl_catalog_agent *hl_catalog_agent_at(size_t i);
size_t hl_catalog_agent_count(void);
const struct hl_catalog_agent *hl_catalog_default_agent(void);

/* Agent by GitHub App name ("5DLabs-Rex"), exact; NULL if none. */
const struct hl_catalog_agent *hl_catalog_agent_by_app(const char *app);

/* Categories: by name (exact), by position, how many. */
const struct hl_catalog_category *hl_catalog_category_find(const char *name);
const struct hl_catalog_category *hl_catalog_category_at(size_t i);
size_t hl_catalog_category_count(void);

/* Failure types: by name (exact), by position, how many; the default one
 * (never NULL, "general"). */
const struct hl_catalog_type *hl_catalog_type_find(const char *name);
const struct hl_catalog_type *hl_catalog_type_at(size_t i);
size_t hl_catalog_type_count(void);
const struct hl_catalog_type *hl_catalog_default_type(void);

/* "ci", "alert", "runtime"; NULL for a value out of range. */
const char *hl_catalog_domain_to_string(enum hl_catalog_domain d);
/* The reverse; _HL_CATALOG_DOMAIN_INVALID for an unknown or NULL name. */
enum hl_catalog_domain hl_catalog_domain_from_string(const char *s);

/*
 * Checks the catalogue as a whole: at most HL_CATALOG_MAX_AGENTS agents and
 * HL_CATALOG_MAX_CATEGORIES categories; exactly one default agent and one default
 * type (routed to the default agent); every category has an agent; every
 * type has a category, an agent and a fix sentence; every agent has a GitHub
 * App and a template, ids and names are unique and label-safe, short names
 * unique and label-safe (<= 20 characters). When prompts_dir is not NULL,
 * each agent's template must exist as a file under it. 0, or -HL_EINVAL with
 * err naming the first problem. Run by tests/catalog.
 */
int hl_catalog_check(const char *prompts_dir, struct hl_err *err);

#endif
