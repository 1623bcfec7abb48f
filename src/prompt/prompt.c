/*
 * prompt.c - the prompt set and rendering. The set starts from the prompts/
 * files embedded into the binary at build time (prompts_embedded.c, made by
 * embed_prompts.py), so `healer render ci/rust-fix.hbs` works from any
 * directory; a directory (HEALER_PROMPTS_DIR, --partials) overrides or adds
 * files. Files under partials/ are registered twice: by path and, as
 * partials, by base name without .hbs.
 */
#include "prompt/prompt.h"

#include "base/buf.h"
#include "base/file.h"
#include "base/str.h"
#include "catalog/catalog.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PROMPT_FILE_MAX (1024 * 1024)
/* Every agent's retries use this one (it carries the previous attempts);
 * first attempts use the agent's template from the catalogue. */
#define PROMPT_RETRY_TEMPLATE "ci/retry.hbs"
#define PROMPT_DIR_DEPTH      4

struct hl_prompt_set {
	struct hl_tmpl_set *tmpls;
};

/* "partials/failure-details.hbs" -> "failure-details"; NULL otherwise. */
static char *
partial_name_of(const char *path)
{
	const char *base;
	size_t n;

	if (!hl_str_starts_with(path, "partials/") || !hl_str_ends_with(path, ".hbs"))
		return NULL;
	base = strrchr(path, '/') + 1;
	n = strlen(base) - 4;
	if (n == 0)
		return NULL;
	return strndup(base, n);
}

int
hl_prompt_set_add(struct hl_prompt_set *set, const char *name, const char *src, size_t n,
                  struct hl_err *err)
{
	struct hl_tmpl *t = NULL;
	char *pname;
	int rc;

	if ((rc = hl_tmpl_set_add(set->tmpls, name, src, n, err)))
		return rc;
	pname = partial_name_of(name);
	if (!pname)
		return 0;
	rc = hl_tmpl_compile(&t, name, src, n, err);
	if (rc == 0)
		rc = hl_tmpl_set_add_compiled(set->tmpls, pname, t, err);
	free(pname);
	return rc;
}

static int
add_file(struct hl_prompt_set *set, const char *name, const char *path, struct hl_err *err)
{
	struct hl_buf b = HL_BUF_INIT(PROMPT_FILE_MAX);
	int rc = hl_file_read(&b, path, err);

	if (rc == 0)
		rc = hl_prompt_set_add(set, name, b.data, b.len, err);
	hl_buf_release(&b);
	return rc;
}

/* Adds every *.hbs under dir/rel, recursively, named by its path from dir. */
static int
add_tree(struct hl_prompt_set *set, const char *dir, const char *rel, int depth, struct hl_err *err)
{
	char path[4096], name[4096];
	struct dirent *de;
	DIR *d;
	int rc = 0;

	snprintf(path, sizeof(path), "%s%s%s", dir, *rel ? "/" : "", rel);
	if (!(d = opendir(path)))
		return hl_err_set(err, HL_EIO, "cannot open prompts directory '%s'", path);
	while (rc == 0 && (de = readdir(d))) {
		struct stat st;
		char full[8192];

		if (de->d_name[0] == '.')
			continue;
		snprintf(name, sizeof(name), "%s%s%s", rel, *rel ? "/" : "", de->d_name);
		snprintf(full, sizeof(full), "%s/%s", dir, name);
		if (stat(full, &st) != 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			if (depth < PROMPT_DIR_DEPTH)
				rc = add_tree(set, dir, name, depth + 1, err);
		} else if (S_ISREG(st.st_mode) && hl_str_ends_with(de->d_name, ".hbs")) {
			rc = add_file(set, name, full, err);
		}
	}
	closedir(d);
	return rc;
}

int
hl_prompt_set_load(struct hl_prompt_set **out, const char *dir, struct hl_err *err)
{
	struct hl_prompt_set *set = calloc(1, sizeof(*set));
	size_t i;
	int rc = 0;

	if (!set || !(set->tmpls = hl_tmpl_set_new())) {
		free(set);
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	}
	for (i = 0; rc == 0 && i < hl_prompt_n_builtins; i++)
		rc = hl_prompt_set_add(set, hl_prompt_builtins[i].path, hl_prompt_builtins[i].text,
		                       hl_prompt_builtins[i].len, err);
	if (rc == 0 && dir && *dir)
		rc = add_tree(set, dir, "", 0, err);
	if (rc) {
		hl_prompt_set_free(set);
		return rc;
	}
	*out = set;
	return 0;
}

int
hl_prompt_set_add_partials(struct hl_prompt_set *set, const char *dir, struct hl_err *err)
{
	struct dirent *de;
	DIR *d;
	int rc = 0;

	if (!(d = opendir(dir)))
		return hl_err_set(err, HL_EIO, "cannot open partials directory '%s'", dir);
	while (rc == 0 && (de = readdir(d))) {
		char full[4096], *name;
		struct stat st;
		size_t n = strlen(de->d_name);

		if (de->d_name[0] == '.' || n <= 4 || !hl_str_ends_with(de->d_name, ".hbs"))
			continue;
		snprintf(full, sizeof(full), "%s/%s", dir, de->d_name);
		if (stat(full, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		if (!(name = strndup(de->d_name, n - 4))) {
			rc = hl_err_set(err, HL_ENOMEM, "out of memory");
			break;
		}
		rc = add_file(set, name, full, err);
		free(name);
	}
	closedir(d);
	return rc;
}

void
hl_prompt_set_free(struct hl_prompt_set *set)
{
	if (!set)
		return;
	hl_tmpl_set_free(set->tmpls);
	free(set);
}

const struct hl_tmpl_set *
hl_prompt_set_templates(const struct hl_prompt_set *set)
{
	return set->tmpls;
}

const char *
hl_prompt_template_for(const char *agent, int64_t attempt)
{
	const struct hl_catalog_agent *a;

	if (agent && hl_str_ends_with(agent, ".hbs"))
		return agent;
	if (attempt > 1)
		return PROMPT_RETRY_TEMPLATE;
	a = hl_catalog_agent_find(agent);
	return (a ? a : hl_catalog_default_agent())->template;
}

int
hl_prompt_render(char **out, const struct hl_prompt_set *set, const char *name, const json_t *data,
                 unsigned flags, struct hl_err *err)
{
	const struct hl_tmpl *t = hl_tmpl_set_get(set->tmpls, name);

	if (!t)
		return hl_err_set(err, HL_ENOTFOUND, "no prompt template '%s'", name);
	return hl_tmpl_render(out, NULL, t, data, set->tmpls, flags, err);
}

int
hl_prompt_render_for_agent(char **out, const struct hl_prompt_set *set, const char *agent,
                           const struct hl_prompt_context *ctx, struct hl_err *err)
{
	json_t *data = hl_prompt_data_build(ctx);
	int rc;

	if (!data)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	rc = hl_prompt_render(out, set, hl_prompt_template_for(agent, ctx->attempt), data, 0, err);
	json_decref(data);
	return rc;
}
