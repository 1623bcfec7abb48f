/*
 * tmpl_batch.c - the C side of the differential test: renders a JSON array of
 * cases {"template", "data", "partials": {name: source}} with healer's engine
 * and prints [{"ok": true, "out": "..."} | {"ok": false, "error": "..."}],
 * the same shape tests/tmpl/hbs_render.js prints for handlebars.js.
 *
 *   tmpl_batch [CASES.json|-]
 *   tmpl_batch --prompt-cases   prints the cases "every shipped template x
 *                               every sample context" (tests/tmpl/samples.c)
 */
#include "base/buf.h"
#include "base/file.h"
#include "prompt/prompt.h"
#include "samples.h"
#include "tmpl/tmpl.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *
render_case(const json_t *c)
{
	struct hl_err err = HL_ERR_INIT;
	struct hl_tmpl_set *set = hl_tmpl_set_new();
	struct hl_tmpl *t = NULL;
	const char *src = json_string_value(json_object_get(c, "template"));
	json_t *partials = json_object_get(c, "partials"), *v, *res;
	const char *name;
	char *out = NULL;
	size_t len = 0;
	int rc = 0;

	if (!set || !src) {
		hl_tmpl_set_free(set);
		return json_pack("{s:b,s:s}", "ok", 0, "error", "bad case");
	}
	json_object_foreach(partials, name, v)
	{
		if (rc == 0)
			rc = hl_tmpl_set_add(set, name, json_string_value(v), json_string_length(v),
			                     &err);
	}
	if (rc == 0)
		rc = hl_tmpl_compile(&t, "case", src,
		                     json_string_length(json_object_get(c, "template")), &err);
	if (rc == 0)
		rc = hl_tmpl_render(&out, &len, t, json_object_get(c, "data"), set,
		                    json_is_true(json_object_get(c, "strict")) ? HL_TMPL_STRICT : 0,
		                    &err);
	if (rc == 0)
		res = json_pack("{s:b,s:o}", "ok", 1, "out", json_stringn_nocheck(out, len));
	else
		res = json_pack("{s:b,s:s}", "ok", 0, "error", err.msg);
	free(out);
	hl_tmpl_free(t);
	hl_tmpl_set_free(set);
	return res;
}

/* Every shipped template (ci/, alerts/) with every sample context, and all
 * partials by name, as differential cases. */
static int
prompt_cases(void)
{
	json_t *cases = json_array(), *partials = json_object();
	size_t i;
	int s;
	char *dump;

	for (i = 0; i < hl_prompt_n_builtins; i++) {
		const struct hl_prompt_builtin *b = &hl_prompt_builtins[i];
		const char *base;
		if (strncmp(b->path, "partials/", 9) != 0)
			continue;
		base = b->path + 9;
		/* registered by base name without .hbs, as hl_prompt_set does */
		{
			char name[256];
			size_t n = strlen(base) - 4;
			if (n < sizeof(name)) {
				memcpy(name, base, n);
				name[n] = '\0';
				json_object_set_new(partials, name, json_stringn(b->text, b->len));
			}
		}
	}
	for (i = 0; i < hl_prompt_n_builtins; i++) {
		const struct hl_prompt_builtin *b = &hl_prompt_builtins[i];
		if (strncmp(b->path, "partials/", 9) == 0)
			continue;
		for (s = 0; hl_sample_name(s); s++) {
			char id[300];
			snprintf(id, sizeof(id), "%s x %s", b->path, hl_sample_name(s));
			json_array_append_new(cases,
			                      json_pack("{s:s,s:s%,s:o,s:O}", "id", id, "template",
			                                b->text, b->len, "data", hl_sample_data(s),
			                                "partials", partials));
		}
	}
	dump = json_dumps(cases, JSON_COMPACT);
	fputs(dump, stdout);
	free(dump);
	json_decref(cases);
	json_decref(partials);
	hl_samples_cleanup();
	return 0;
}

int
main(int argc, char **argv)
{
	struct hl_buf in = HL_BUF_INIT(0);
	struct hl_err err = HL_ERR_INIT;
	json_error_t jerr;
	json_t *cases, *results, *c;
	size_t i;
	char *dump;

	if (argc > 1 && strcmp(argv[1], "--prompt-cases") == 0)
		return prompt_cases();
	if (hl_file_read(&in, argc > 1 ? argv[1] : "-", &err)) {
		fprintf(stderr, "tmpl_batch: %s\n", err.msg);
		return 1;
	}
	cases = json_loadb(in.data, in.len, JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, &jerr);
	hl_buf_release(&in);
	if (!json_is_array(cases)) {
		fprintf(stderr, "tmpl_batch: bad input: %s\n", jerr.text);
		return 1;
	}
	results = json_array();
	json_array_foreach(cases, i, c)
	{
		json_array_append_new(results, render_case(c));
	}
	dump = json_dumps(results, JSON_COMPACT);
	fputs(dump, stdout);
	free(dump);
	json_decref(results);
	json_decref(cases);
	return 0;
}
