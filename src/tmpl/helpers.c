/*
 * helpers.c - the helper table (handlebars.js' built-ins, implemented in
 * render.c because they run blocks, and healer's helpers, implemented here)
 * that the parser consults to classify calls and the renderer to run them.
 * The reference semantics of healer's helpers are their JavaScript
 * implementations in tests/tmpl/hbs_render.js (kept short and obvious); this
 * file reproduces them exactly so output stays byte-identical with
 * handlebars.js. Missing arguments are `undefined`; extra ones ignored.
 *
 *   eq a b / ne a b            a === b / a !== b
 *   gt gte lt lte a b          Number(a) > Number(b) ...
 *   and a b ... / or a b ...   every / some argument is truthy (JS truthiness)
 *   not a                      !a
 *   add a b / subtract a b     Number(a) + Number(b) / Number(a) - Number(b)
 *   len v                      array or string length (UTF-16), object key
 *                              count, else 0
 *   truncate s n               the first n code points of String(s) + "..."
 *                              when longer (null/undefined -> "")
 *   join arr sep               arr.map(String).join(sep, default ", ")
 *   json v                     JSON.stringify(v, null, 2)
 *   default v d                d when v is undefined, null or ""; else v
 *   upper s / lower s          ASCII case mapping of String(s)
 *   fence text lang= budget= focus=   see hl_tmpl_fence
 *   code value max=            see hl_tmpl_code (an inline code span)
 */
#include "tmpl/tmpl_int.h"

#include <math.h>
#include <string.h>

static struct tv
arg(const struct tv *args, size_t nargs, size_t i)
{
	return i < nargs ? args[i] : tv_undef();
}

static struct tv
hash_get(const struct tmpl_hcall *hc, const char *key)
{
	size_t i;
	struct tv v = tv_undef();

	/* a repeated key: the first one wins (the compiler assigns the pairs
	 * last to first) */
	for (i = 0; i < hc->nhash; i++) {
		if (strcmp(hc->hkeys[i], key) == 0)
			return hc->hvals[i];
	}
	return v;
}

/* str(v): "" for null/undefined, else String(v) */
static void
str(struct hl_buf *b, struct tv v)
{
	if (v.t == TV_UNDEF || v.t == TV_NULL)
		return;
	tv_to_string(b, v);
}

static struct tv
boolean(bool b)
{
	struct tv v = { 0 };
	v.t = TV_BOOL;
	v.b = b;
	return v;
}

static struct tv
number(double d)
{
	struct tv v = { 0 };
	v.t = TV_NUM;
	v.n = d;
	return v;
}

static struct tv
string_in_buf(void)
{
	struct tv v = { 0 };
	v.t = TV_STR; /* s == NULL: the caller takes the text from sbuf */
	return v;
}

static size_t
utf8_char_len(const unsigned char *u, size_t n)
{
	if (u[0] < 0x80)
		return 1;
	if ((u[0] & 0xe0) == 0xc0 && n >= 2)
		return 2;
	if ((u[0] & 0xf0) == 0xe0 && n >= 3)
		return 3;
	if ((u[0] & 0xf8) == 0xf0 && n >= 4)
		return 4;
	return 1;
}

static void
truncate_cps(struct hl_buf *b, struct tv s, struct tv nv)
{
	struct hl_buf t = HL_BUF_INIT(0);
	double k = floor(tv_to_number(nv));
	size_t i = 0, cps = 0, cut = (size_t)-1;

	str(&t, s);
	if (!(k >= 0))
		k = 0;
	while (i < t.len) {
		if ((double)cps == k && cut == (size_t)-1)
			cut = i;
		i += utf8_char_len((const unsigned char *)t.data + i, t.len - i);
		cps++;
	}
	if ((double)cps <= k || cut == (size_t)-1) {
		hl_buf_append(b, t.data, t.len);
	} else {
		hl_buf_append(b, t.data, cut);
		hl_buf_append_str(b, "...");
	}
	if (hl_buf_error(&t) && !b->err)
		b->err = -hl_buf_error(&t);
	hl_buf_release(&t);
}

static void
ascii_case(struct hl_buf *b, struct tv s, bool up)
{
	size_t start = b->len, i;

	str(b, s);
	if (hl_buf_error(b))
		return;
	for (i = start; i < b->len; i++) {
		char c = b->data[i];
		if (up && c >= 'a' && c <= 'z')
			b->data[i] = (char)(c - 32);
		else if (!up && c >= 'A' && c <= 'Z')
			b->data[i] = (char)(c + 32);
	}
}

static int64_t
clamp_int(double d, double lo, double fallback)
{
	d = floor(d);
	if (!(d >= lo))
		return (int64_t)fallback;
	if (d > 9e15)
		d = 9e15;
	return (int64_t)d;
}

#define A0 arg(hc->args, hc->nargs, 0)
#define A1 arg(hc->args, hc->nargs, 1)

static int
h_eq(struct tmpl_hcall *hc)
{
	hc->res = boolean(tv_strict_eq(A0, A1));
	return 0;
}

static int
h_ne(struct tmpl_hcall *hc)
{
	hc->res = boolean(!tv_strict_eq(A0, A1));
	return 0;
}

static int
h_gt(struct tmpl_hcall *hc)
{
	hc->res = boolean(tv_to_number(A0) > tv_to_number(A1));
	return 0;
}

static int
h_gte(struct tmpl_hcall *hc)
{
	hc->res = boolean(tv_to_number(A0) >= tv_to_number(A1));
	return 0;
}

static int
h_lt(struct tmpl_hcall *hc)
{
	hc->res = boolean(tv_to_number(A0) < tv_to_number(A1));
	return 0;
}

static int
h_lte(struct tmpl_hcall *hc)
{
	hc->res = boolean(tv_to_number(A0) <= tv_to_number(A1));
	return 0;
}

static int
h_and(struct tmpl_hcall *hc)
{
	bool all = true;
	size_t i;

	for (i = 0; i < hc->nargs; i++)
		all = all && tv_truthy(hc->args[i]);
	hc->res = boolean(all);
	return 0;
}

static int
h_or(struct tmpl_hcall *hc)
{
	bool any = false;
	size_t i;

	for (i = 0; i < hc->nargs; i++)
		any = any || tv_truthy(hc->args[i]);
	hc->res = boolean(any);
	return 0;
}

static int
h_not(struct tmpl_hcall *hc)
{
	hc->res = boolean(!tv_truthy(A0));
	return 0;
}

static int
h_add(struct tmpl_hcall *hc)
{
	hc->res = number(tv_to_number(A0) + tv_to_number(A1));
	return 0;
}

static int
h_subtract(struct tmpl_hcall *hc)
{
	hc->res = number(tv_to_number(A0) - tv_to_number(A1));
	return 0;
}

static int
h_len(struct tmpl_hcall *hc)
{
	struct tv a = A0;

	if (a.t == TV_ARR)
		hc->res = number((double)json_array_size(a.j));
	else if (a.t == TV_STR)
		hc->res = number((double)tv_utf16_len(a.s, a.len));
	else if (a.t == TV_OBJ)
		hc->res = number((double)json_object_size(a.j));
	else
		hc->res = number(0);
	return 0;
}

static int
h_truncate(struct tmpl_hcall *hc)
{
	truncate_cps(hc->sbuf, A0, A1);
	hc->res = string_in_buf();
	return hl_buf_error(hc->sbuf);
}

static int
h_join(struct tmpl_hcall *hc)
{
	struct tv a = A0, b = A1;
	size_t i;

	if (a.t == TV_ARR) {
		struct hl_buf sep = HL_BUF_INIT(0);
		if (b.t == TV_UNDEF)
			hl_buf_append_str(&sep, ", ");
		else
			str(&sep, b);
		for (i = 0; i < json_array_size(a.j); i++) {
			if (i)
				hl_buf_append(hc->sbuf, sep.data, sep.len);
			str(hc->sbuf, tv_from_json(json_array_get(a.j, i)));
		}
		hl_buf_release(&sep);
	} else {
		str(hc->sbuf, a);
	}
	hc->res = string_in_buf();
	return hl_buf_error(hc->sbuf);
}

static int
h_json(struct tmpl_hcall *hc)
{
	if (A0.t == TV_FUNC) {
		/* JSON.stringify(function) is undefined */
		hc->res = tv_undef();
		return 0;
	}
	tv_json_pretty(hc->sbuf, A0);
	hc->res = string_in_buf();
	return hl_buf_error(hc->sbuf);
}

static int
h_default(struct tmpl_hcall *hc)
{
	struct tv a = A0;
	bool missing = a.t == TV_UNDEF || a.t == TV_NULL || (a.t == TV_STR && a.len == 0);

	hc->res = missing ? A1 : a;
	return 0;
}

static int
h_upper(struct tmpl_hcall *hc)
{
	ascii_case(hc->sbuf, A0, true);
	hc->res = string_in_buf();
	return hl_buf_error(hc->sbuf);
}

static int
h_lower(struct tmpl_hcall *hc)
{
	ascii_case(hc->sbuf, A0, false);
	hc->res = string_in_buf();
	return hl_buf_error(hc->sbuf);
}

static int
h_fence(struct tmpl_hcall *hc)
{
	struct hl_buf text = HL_BUF_INIT(0), lang = HL_BUF_INIT(0);
	struct tv lv = hash_get(hc, "lang");
	struct tv bv = hash_get(hc, "budget");
	struct tv fv = hash_get(hc, "focus");
	int64_t budget = HL_TMPL_FENCE_DEFAULT_BUDGET, focus = 0;
	int rc;

	str(&text, A0);
	str(&lang, lv);
	if (bv.t != TV_UNDEF)
		budget = clamp_int(tv_to_number(bv), 64, 64);
	if (!(fv.t == TV_UNDEF || fv.t == TV_NULL))
		focus = clamp_int(tv_to_number(fv), 1, 0);
	rc = hl_buf_error(&text) ? hl_buf_error(&text) : hl_buf_error(&lang);
	if (!rc)
		rc = hl_tmpl_fence(hc->sbuf, text.data, text.len, lang.data, budget, focus);
	hl_buf_release(&text);
	hl_buf_release(&lang);
	if (rc)
		return rc;
	hc->res = string_in_buf();
	return hl_buf_error(hc->sbuf);
}

static int
h_code(struct tmpl_hcall *hc)
{
	struct hl_buf text = HL_BUF_INIT(0);
	struct tv mv = hash_get(hc, "max");
	int64_t max = HL_TMPL_CODE_DEFAULT_MAX;
	int rc;

	str(&text, A0);
	if (mv.t != TV_UNDEF)
		max = clamp_int(tv_to_number(mv), 1, HL_TMPL_CODE_DEFAULT_MAX);
	rc = hl_buf_error(&text);
	if (!rc)
		rc = hl_tmpl_code(hc->sbuf, text.data, text.len, max);
	hl_buf_release(&text);
	if (rc)
		return rc;
	hc->res = string_in_buf();
	return hl_buf_error(hc->sbuf);
}

#undef A0
#undef A1

/*
 * The helper table: handlebars.js' built-ins (implemented in render.c, they
 * run blocks) and healer's helpers. TH_KNOWN marks handlebars' knownHelpers
 * (a call even without arguments, decided at compile time); the others are
 * registered helpers found by name at run time. Adding a helper is one line
 * here plus its function (and its reference in tests/tmpl/hbs_render.js).
 */
static const struct tmpl_helper helpers[] = {
	/* name                 function                  flags                    min max */
	{ "helperMissing", tmpl_bi_hook, TH_KNOWN | TH_HOOK, 0, -1 },
	{ "blockHelperMissing", tmpl_bi_hook, TH_KNOWN | TH_HOOK, 0, -1 },
	{ "if", tmpl_bi_if, TH_KNOWN | TH_BLOCK, 1, 1 },
	{ "unless", tmpl_bi_if, TH_KNOWN | TH_BLOCK, 1, 1 },
	{ "each", tmpl_bi_each, TH_KNOWN | TH_BLOCK, 1, 1 },
	{ "with", tmpl_bi_with, TH_KNOWN | TH_BLOCK, 1, 1 },
	{ "lookup", tmpl_bi_lookup, TH_KNOWN, 0, -1 },
	{ "log", tmpl_bi_log, TH_KNOWN, 0, -1 },
	{ "eq", h_eq, 0, 0, -1 },
	{ "ne", h_ne, 0, 0, -1 },
	{ "gt", h_gt, 0, 0, -1 },
	{ "gte", h_gte, 0, 0, -1 },
	{ "lt", h_lt, 0, 0, -1 },
	{ "lte", h_lte, 0, 0, -1 },
	{ "and", h_and, 0, 0, -1 },
	{ "or", h_or, 0, 0, -1 },
	{ "not", h_not, 0, 0, -1 },
	{ "add", h_add, 0, 0, -1 },
	{ "subtract", h_subtract, 0, 0, -1 },
	{ "len", h_len, 0, 0, -1 },
	{ "truncate", h_truncate, 0, 0, -1 },
	{ "join", h_join, 0, 0, -1 },
	{ "json", h_json, 0, 0, -1 },
	{ "default", h_default, 0, 0, -1 },
	{ "upper", h_upper, 0, 0, -1 },
	{ "lower", h_lower, 0, 0, -1 },
	{ "fence", h_fence, 0, 0, -1 },
	{ "code", h_code, 0, 0, -1 },
};

const struct tmpl_helper *
tmpl_helper_find(const char *name)
{
	size_t i;

	if (!name)
		return NULL;
	for (i = 0; i < sizeof(helpers) / sizeof(helpers[0]); i++) {
		if (strcmp(name, helpers[i].name) == 0)
			return &helpers[i];
	}
	return NULL;
}
