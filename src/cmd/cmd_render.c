/*
 * cmd_render.c - `healer render TEMPLATE [DATA.json|-]` (contract section 6):
 * renders one Handlebars template with JSON data to stdout, byte-identical
 * to handlebars.js with noEscape. TEMPLATE is a file, or else the name of a
 * built-in prompt ("ci/rust-fix.hbs"). Partials are the built-in prompt set
 * (overridden by HEALER_PROMPTS_DIR) plus every *.hbs of --partials DIR.
 * Without DATA the data is {}. --strict reports the first missing variable.
 * A lone surrogate escape in the data reads as U+FFFD (as handlebars.js
 * writes it).
 * Errors exit 1 naming the template, line and column.
 */
#include "base/buf.h"
#include "base/file.h"
#include "cmd.h"
#include "prompt/prompt.h"
#include "tmpl/tmpl.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define RENDER_DATA_MAX (256u * 1024 * 1024)
#define RENDER_TMPL_MAX (16u * 1024 * 1024)

enum { OPT_PARTIALS = 1, OPT_STRICT };

static const struct hl_opt render_opts[] = {
	{ "partials", true, OPT_PARTIALS },
	{ "strict", false, OPT_STRICT },
	{ NULL, false, 0 },
};

/* The value of the four hex digits at s (-1 when they are not). */
static long
hex4(const char *s)
{
	long v = 0;
	int i;

	for (i = 0; i < 4; i++) {
		char c = s[i];
		int d = c >= '0' && c <= '9'   ? c - '0'
		        : c >= 'a' && c <= 'f' ? c - 'a' + 10
		        : c >= 'A' && c <= 'F' ? c - 'A' + 10
		                               : -1;
		if (d < 0)
			return -1;
		v = v * 16 + d;
	}
	return v;
}

/*
 * Rewrites each lone surrogate escape inside the JSON strings of s (a \uD800
 * to \uDFFF not part of a high-low pair) to \uFFFD, in place (same length):
 * JSON.parse takes them and handlebars.js writes them out as U+FFFD, where
 * jansson refuses the whole document. Escaped backslashes are skipped.
 */
static void
fix_lone_surrogates(char *s, size_t n)
{
	bool in_str = false;
	size_t i = 0;

	while (i < n) {
		long u, lo;

		if (!in_str) {
			in_str = s[i++] == '"';
			continue;
		}
		if (s[i] == '"') {
			in_str = false;
			i++;
			continue;
		}
		if (s[i] != '\\') {
			i++;
			continue;
		}
		if (i + 1 >= n || s[i + 1] != 'u' || i + 6 > n || (u = hex4(s + i + 2)) < 0xd800 ||
		    u > 0xdfff) {
			i += 2; /* \", \\, \n ... or a code unit that is no surrogate */
			continue;
		}
		if (u <= 0xdbff && i + 12 <= n && s[i + 6] == '\\' && s[i + 7] == 'u' &&
		    (lo = hex4(s + i + 8)) >= 0xdc00 && lo <= 0xdfff) {
			i += 12; /* a pair */
			continue;
		}
		memcpy(s + i + 2, "FFFD", 4);
		i += 6;
	}
}

static bool
is_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int
hl_cmd_render(int argc, char **argv)
{
	struct hl_err err = HL_ERR_INIT;
	struct hl_prompt_set *set = NULL;
	struct hl_tmpl *own = NULL;
	const struct hl_tmpl *t;
	struct hl_buf b = HL_BUF_INIT(RENDER_TMPL_MAX);
	const char *operands[2] = { NULL, NULL }, *partials = NULL, *optarg = NULL;
	const char *dir = getenv("HEALER_PROMPTS_DIR");
	json_t *data = NULL;
	json_error_t jerr;
	unsigned flags = 0;
	char *out = NULL;
	size_t nops = 0, len = 0;
	bool dashdash = false;
	int i = 1, c, rc = 1;

	while (i < argc) {
		if (!dashdash && strcmp(argv[i], "--") == 0) {
			dashdash = true;
			i++;
			continue;
		}
		if (!dashdash && argv[i][0] == '-' && argv[i][1] != '\0') {
			c = hl_cmd_getopt("render", argc, argv, render_opts, &optarg, &i);
			if (c == '?')
				return 2;
			if (c == OPT_PARTIALS)
				partials = optarg;
			else if (c == OPT_STRICT)
				flags |= HL_TMPL_STRICT;
			continue;
		}
		if (nops == 2)
			return hl_cmd_usage_error("render", "unexpected argument '%s'", argv[i]);
		operands[nops++] = argv[i++];
	}
	if (nops == 0)
		return hl_cmd_usage_error("render", "missing TEMPLATE");

	if (hl_prompt_set_load(&set, dir, &err) ||
	    (partials && hl_prompt_set_add_partials(set, partials, &err))) {
		hl_cmd_fail("%s", err.msg);
		goto out;
	}
	if (is_file(operands[0])) {
		if (hl_file_read(&b, operands[0], &err) ||
		    hl_tmpl_compile(&own, operands[0], b.data, b.len, &err)) {
			hl_cmd_fail("%s", err.msg);
			goto out;
		}
		t = own;
	} else if (!(t = hl_tmpl_set_get(hl_prompt_set_templates(set), operands[0]))) {
		hl_cmd_fail("no template '%s': not a file nor a built-in prompt", operands[0]);
		goto out;
	}
	hl_buf_release(&b);
	hl_buf_init(&b, RENDER_DATA_MAX);
	if (operands[1]) {
		if (hl_file_read(&b, operands[1], &err)) {
			hl_cmd_fail("%s", err.msg);
			goto out;
		}
		if (b.len == strspn(b.data, " \t\r\n")) {
			hl_cmd_fail("%s: no data (expected JSON, e.g. {})",
			            strcmp(operands[1], "-") == 0 ? "standard input" : operands[1]);
			goto out;
		}
		fix_lone_surrogates(b.data, b.len);
		/* numbers as doubles, as JavaScript reads them */
		data = json_loadb(b.data, b.len,
		                  JSON_DECODE_INT_AS_REAL | JSON_DECODE_ANY | JSON_ALLOW_NUL,
		                  &jerr);
		if (!data) {
			hl_cmd_fail("%s: line %d column %d: %s", operands[1], jerr.line,
			            jerr.column, jerr.text);
			goto out;
		}
	} else {
		data = json_object();
	}
	if (hl_tmpl_render(&out, &len, t, data, hl_prompt_set_templates(set), flags, &err)) {
		hl_cmd_fail("%s", err.msg);
		goto out;
	}
	if (fwrite(out, 1, len, stdout) != len || fflush(stdout) != 0) {
		hl_cmd_fail("cannot write the output");
		goto out;
	}
	rc = 0;
out:
	free(out);
	json_decref(data);
	hl_buf_release(&b);
	hl_tmpl_free(own);
	hl_prompt_set_free(set);
	return rc;
}
