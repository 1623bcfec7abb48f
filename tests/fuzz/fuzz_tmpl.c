/*
 * fuzz_tmpl.c - libFuzzer target for the template engine: the input is a
 * template, optionally followed by a NUL byte and JSON data. It is compiled,
 * registered as the partial "p" (so it may call itself) next to "q" and a
 * layout "lay" that takes a partial block, rendered plainly and
 * in strict mode against the given data or a fixed rich context, and passed
 * through the fence. Nothing may crash, leak, hang or exceed its bounds.
 *
 * Built with clang -fsanitize=fuzzer when meson -Dfuzz=true; the corpus in
 * tests/fuzz/corpus/tmpl/ is replayed in every build by replay.c.
 */
#include "base/buf.h"
#include "fuzz.h"
#include "tmpl/tmpl.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char fixed_data[] =
        "{\"name\": \"N\", \"items\": [1, \"two\", null, [3, 4], {\"a\": 5}], \"obj\": {\"a\": 1, "
        "\"b\": {\"c\": \"deep\"}, \"10\": true}, \"zero\": 0, \"empty\": [], \"s\": \"h\\u00e9llo "
        "```\", \"flag\": false, \"n\": 1.5e300, \"log\": \"line\\nerror here\\n\"}";

/* a layout for partial blocks, with an inline partial of its own */
static const char lay[] = "{{#*inline \"t\"}}<{{this}}>{{/inline}}{{#if @partial-block}}"
                          "{{> @partial-block}}{{else}}{{> t}}{{/if}}";

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *src = (const char *)data;
	const uint8_t *nul = memchr(data, 0, size);
	size_t tlen = nul ? (size_t)(nul - data) : size;
	struct hl_tmpl_set *set = hl_tmpl_set_new();
	struct hl_err err = HL_ERR_INIT;
	struct hl_buf fb = HL_BUF_INIT(0);
	struct hl_tmpl *t = NULL;
	json_t *ctx = NULL;
	char *out = NULL;

	if (!set)
		return 0;
	if (nul)
		ctx = json_loadb((const char *)nul + 1, size - tlen - 1,
		                 JSON_DECODE_INT_AS_REAL | JSON_DECODE_ANY, NULL);
	if (!ctx)
		ctx = json_loads(fixed_data, JSON_DECODE_INT_AS_REAL, NULL);
	if (hl_tmpl_compile(&t, "fuzz", src, tlen, &err) == 0) {
		hl_tmpl_set_add(set, "p", src, tlen, &err);
		hl_tmpl_set_add(set, "q", "[{{this}}|{{@index}}]", 21, &err);
		hl_tmpl_set_add(set, "lay", lay, sizeof(lay) - 1, &err);
		if (hl_tmpl_render(&out, NULL, t, ctx, set, 0, &err) == 0)
			free(out);
		out = NULL;
		if (hl_tmpl_render(&out, NULL, t, ctx, set, HL_TMPL_STRICT, &err) == 0)
			free(out);
	}
	hl_tmpl_fence(&fb, src, tlen, "text", 64 + (int64_t)(size % 512), (int64_t)(size % 7));
	hl_buf_release(&fb);
	hl_tmpl_free(t);
	hl_tmpl_set_free(set);
	json_decref(ctx);
	return 0;
}
