/*
 * helpers.c - healer's template helpers. Their reference semantics are the
 * JavaScript implementations in tests/tmpl/hbs_render.js (kept short and
 * obvious); this file reproduces them exactly so output stays byte-identical
 * with handlebars.js. Missing arguments are `undefined`; extra ones ignored.
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
 */
#include "tmpl/tmpl_int.h"

#include <math.h>
#include <string.h>

int tmpl_helper(const char *name, const struct tv *args, size_t nargs, const char *const *hkeys,
                const struct tv *hvals, size_t nhash, struct tv *res, struct hl_buf *sbuf);
bool tmpl_is_helper(const char *name);

static const char *const helper_names[] = {
	"eq",       "ne",  "gt",       "gte",  "lt",   "lte",     "and",   "or",    "not",   "add",
	"subtract", "len", "truncate", "join", "json", "default", "upper", "lower", "fence",
};

bool
tmpl_is_helper(const char *name)
{
	size_t i;

	if (!name)
		return false;
	for (i = 0; i < sizeof(helper_names) / sizeof(helper_names[0]); i++) {
		if (strcmp(name, helper_names[i]) == 0)
			return true;
	}
	return false;
}

static struct tv
arg(const struct tv *args, size_t nargs, size_t i)
{
	return i < nargs ? args[i] : tv_undef();
}

static struct tv
hash_get(const char *const *hkeys, const struct tv *hvals, size_t nhash, const char *key)
{
	size_t i;
	struct tv v = tv_undef();

	/* a repeated key: the last one wins, as in a JS object literal */
	for (i = 0; i < nhash; i++) {
		if (strcmp(hkeys[i], key) == 0)
			v = hvals[i];
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

int
tmpl_helper(const char *name, const struct tv *args, size_t nargs, const char *const *hkeys,
            const struct tv *hvals, size_t nhash, struct tv *res, struct hl_buf *sbuf)
{
	struct tv a = arg(args, nargs, 0), b = arg(args, nargs, 1);
	size_t i;

	if (strcmp(name, "eq") == 0) {
		*res = boolean(tv_strict_eq(a, b));
	} else if (strcmp(name, "ne") == 0) {
		*res = boolean(!tv_strict_eq(a, b));
	} else if (strcmp(name, "gt") == 0) {
		*res = boolean(tv_to_number(a) > tv_to_number(b));
	} else if (strcmp(name, "gte") == 0) {
		*res = boolean(tv_to_number(a) >= tv_to_number(b));
	} else if (strcmp(name, "lt") == 0) {
		*res = boolean(tv_to_number(a) < tv_to_number(b));
	} else if (strcmp(name, "lte") == 0) {
		*res = boolean(tv_to_number(a) <= tv_to_number(b));
	} else if (strcmp(name, "and") == 0) {
		bool all = true;
		for (i = 0; i < nargs; i++)
			all = all && tv_truthy(args[i]);
		*res = boolean(all);
	} else if (strcmp(name, "or") == 0) {
		bool any = false;
		for (i = 0; i < nargs; i++)
			any = any || tv_truthy(args[i]);
		*res = boolean(any);
	} else if (strcmp(name, "not") == 0) {
		*res = boolean(!tv_truthy(a));
	} else if (strcmp(name, "add") == 0) {
		*res = number(tv_to_number(a) + tv_to_number(b));
	} else if (strcmp(name, "subtract") == 0) {
		*res = number(tv_to_number(a) - tv_to_number(b));
	} else if (strcmp(name, "len") == 0) {
		if (a.t == TV_ARR)
			*res = number((double)json_array_size(a.j));
		else if (a.t == TV_STR)
			*res = number((double)tv_utf16_len(a.s, a.len));
		else if (a.t == TV_OBJ)
			*res = number((double)json_object_size(a.j));
		else
			*res = number(0);
	} else if (strcmp(name, "truncate") == 0) {
		truncate_cps(sbuf, a, b);
		*res = string_in_buf();
	} else if (strcmp(name, "join") == 0) {
		if (a.t == TV_ARR) {
			struct hl_buf sep = HL_BUF_INIT(0);
			if (b.t == TV_UNDEF)
				hl_buf_append_str(&sep, ", ");
			else
				str(&sep, b);
			for (i = 0; i < json_array_size(a.j); i++) {
				if (i)
					hl_buf_append(sbuf, sep.data, sep.len);
				str(sbuf, tv_from_json(json_array_get(a.j, i)));
			}
			hl_buf_release(&sep);
		} else {
			str(sbuf, a);
		}
		*res = string_in_buf();
	} else if (strcmp(name, "json") == 0) {
		tv_json_pretty(sbuf, a);
		*res = string_in_buf();
	} else if (strcmp(name, "default") == 0) {
		bool missing = a.t == TV_UNDEF || a.t == TV_NULL || (a.t == TV_STR && a.len == 0);
		*res = missing ? b : a;
	} else if (strcmp(name, "upper") == 0 || strcmp(name, "lower") == 0) {
		ascii_case(sbuf, a, name[0] == 'u');
		*res = string_in_buf();
	} else if (strcmp(name, "fence") == 0) {
		struct hl_buf text = HL_BUF_INIT(0), lang = HL_BUF_INIT(0);
		struct tv lv = hash_get(hkeys, hvals, nhash, "lang");
		struct tv bv = hash_get(hkeys, hvals, nhash, "budget");
		struct tv fv = hash_get(hkeys, hvals, nhash, "focus");
		int64_t budget = HL_TMPL_FENCE_DEFAULT_BUDGET, focus = 0;
		int rc;

		str(&text, a);
		str(&lang, lv);
		if (bv.t != TV_UNDEF)
			budget = clamp_int(tv_to_number(bv), 64, 64);
		if (!(fv.t == TV_UNDEF || fv.t == TV_NULL))
			focus = clamp_int(tv_to_number(fv), 1, 0);
		rc = hl_buf_error(&text) ? hl_buf_error(&text) : hl_buf_error(&lang);
		if (!rc)
			rc = hl_tmpl_fence(sbuf, text.data, text.len, lang.data, budget, focus);
		hl_buf_release(&text);
		hl_buf_release(&lang);
		if (rc)
			return rc;
		*res = string_in_buf();
	} else {
		return -HL_ENOTFOUND;
	}
	return hl_buf_error(sbuf);
}
