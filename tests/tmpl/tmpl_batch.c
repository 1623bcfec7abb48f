/*
 * tmpl_batch.c - the C side of the differential test: renders a JSON array of
 * cases {"template", "data", "partials": {name: source}} with healer's engine
 * and prints [{"ok": true, "out": "..."} | {"ok": false, "error": "..."}],
 * the same shape tests/tmpl/hbs_render.js prints for handlebars.js.
 *
 *   tmpl_batch [CASES.json|-]
 */
#include "base/buf.h"
#include "base/file.h"
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

int
main(int argc, char **argv)
{
	struct hl_buf in = HL_BUF_INIT(0);
	struct hl_err err = HL_ERR_INIT;
	json_error_t jerr;
	json_t *cases, *results, *c;
	size_t i;
	char *dump;

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
