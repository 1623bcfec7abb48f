/*
 * value.c - the JavaScript semantics the renderer must reproduce so output
 * is byte-identical to handlebars.js: String(v) (arrays comma-joined, objects
 * "[object Object]", numbers as Number::toString), ToNumber, truthiness,
 * strict and loose equality, Object.keys order (integer keys first) and
 * JSON.stringify(v, null, 2).
 */
#include "tmpl/tmpl_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tv
tv_undef(void)
{
	struct tv v = { 0 };
	v.t = TV_UNDEF;
	return v;
}

/*
 * Values JSON cannot hold (NaN, Infinity, undefined) that a render stores in
 * an object it builds (a partial's context extended by hash arguments): a
 * fresh placeholder json_t stands for each, and this per-thread table maps it
 * back to its JavaScript value.
 */
struct special {
	json_t *j;
	struct tv v;
};

static _Thread_local struct special *specials;
static _Thread_local size_t nspecials, capspecials;

json_t *
tv_special_new(struct tv v)
{
	json_t *j;

	if (nspecials == capspecials) {
		size_t nc = capspecials ? capspecials * 2 : 8;
		struct special *ns = realloc(specials, nc * sizeof(*ns));
		if (!ns)
			return NULL;
		specials = ns;
		capspecials = nc;
	}
	if (!(j = json_real(0.0)))
		return NULL;
	specials[nspecials].j = j;
	specials[nspecials].v = v;
	nspecials++;
	return j;
}

void
tv_special_clear(void)
{
	free(specials);
	specials = NULL;
	nspecials = capspecials = 0;
}

struct tv
tv_from_json(json_t *j)
{
	struct tv v = { 0 };
	size_t i;

	if (!j) {
		v.t = TV_UNDEF;
		return v;
	}
	if (nspecials && json_is_real(j)) {
		for (i = 0; i < nspecials; i++) {
			if (specials[i].j == j)
				return specials[i].v;
		}
	}
	switch (json_typeof(j)) {
	case JSON_OBJECT:
		v.t = TV_OBJ;
		v.j = j;
		break;
	case JSON_ARRAY:
		v.t = TV_ARR;
		v.j = j;
		break;
	case JSON_STRING:
		v.t = TV_STR;
		v.s = json_string_value(j);
		v.len = json_string_length(j);
		break;
	case JSON_INTEGER:
		v.t = TV_NUM;
		v.n = (double)json_integer_value(j);
		break;
	case JSON_REAL:
		v.t = TV_NUM;
		v.n = json_real_value(j);
		break;
	case JSON_TRUE:
		v.t = TV_BOOL;
		v.b = true;
		break;
	case JSON_FALSE:
		v.t = TV_BOOL;
		v.b = false;
		break;
	default:
		v.t = TV_NULL;
		break;
	}
	return v;
}

void
tv_format_number(struct hl_buf *out, double d)
{
	char tmp[40], digits[24];
	int prec, exp10 = 0, k = 0, n, i;

	if (isnan(d)) {
		hl_buf_append_str(out, "NaN");
		return;
	}
	if (isinf(d)) {
		hl_buf_append_str(out, d < 0 ? "-Infinity" : "Infinity");
		return;
	}
	if (d == 0) {
		hl_buf_append_char(out, '0');
		return;
	}
	if (d < 0) {
		hl_buf_append_char(out, '-');
		d = -d;
	}
	/* the shortest digit string that round-trips */
	for (prec = 1; prec <= 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, d);
		if (strtod(tmp, NULL) == d)
			break;
	}
	/* tmp = "d.ddde+XX" */
	for (i = 0; tmp[i] && tmp[i] != 'e'; i++) {
		if (tmp[i] >= '0' && tmp[i] <= '9')
			digits[k++] = tmp[i];
	}
	digits[k] = '\0';
	exp10 = atoi(tmp + i + 1);
	while (k > 1 && digits[k - 1] == '0')
		digits[--k] = '\0';
	n = exp10 + 1; /* the decimal point position, as in ECMA-262 */
	if (k <= n && n <= 21) {
		hl_buf_append(out, digits, (size_t)k);
		for (i = 0; i < n - k; i++)
			hl_buf_append_char(out, '0');
	} else if (0 < n && n <= 21) {
		hl_buf_append(out, digits, (size_t)n);
		hl_buf_append_char(out, '.');
		hl_buf_append(out, digits + n, (size_t)(k - n));
	} else if (-6 < n && n <= 0) {
		hl_buf_append_str(out, "0.");
		for (i = 0; i < -n; i++)
			hl_buf_append_char(out, '0');
		hl_buf_append(out, digits, (size_t)k);
	} else {
		hl_buf_append_char(out, digits[0]);
		if (k > 1) {
			hl_buf_append_char(out, '.');
			hl_buf_append(out, digits + 1, (size_t)(k - 1));
		}
		hl_buf_appendf(out, "e%c%d", n - 1 >= 0 ? '+' : '-', abs(n - 1));
	}
}

static void
array_join(struct hl_buf *out, json_t *arr, int depth)
{
	size_t i;

	for (i = 0; i < json_array_size(arr); i++) {
		struct tv e = tv_from_json(json_array_get(arr, i));
		if (i)
			hl_buf_append_char(out, ',');
		if (e.t == TV_UNDEF || e.t == TV_NULL)
			continue;
		if (e.t == TV_ARR) {
			if (depth < 2100) /* deeper than jansson parses */
				array_join(out, e.j, depth + 1);
			continue;
		}
		tv_to_string(out, e);
	}
}

/* String() of the one function a template can meet: the @partial-block of
 * a partial block, handlebars.js' partialBlockWrapper as node prints it from
 * dist/cjs/handlebars/runtime.js (4.7.8). */
static const char partial_block_source[] =
        "function partialBlockWrapper(context) {\n"
        "        var options = arguments.length <= 1 || arguments[1] === undefined ? {} : "
        "arguments[1];\n"
        "\n"
        "        // Restore the partial-block from the closure for the execution of the block\n"
        "        // i.e. the part inside the block of the partial call.\n"
        "        options.data = _base.createFrame(options.data);\n"
        "        options.data['partial-block'] = currentPartialBlock;\n"
        "        return fn(context, options);\n"
        "      }";

void
tv_to_string(struct hl_buf *out, struct tv v)
{
	switch (v.t) {
	case TV_UNDEF:
		hl_buf_append_str(out, "undefined");
		break;
	case TV_NULL:
		hl_buf_append_str(out, "null");
		break;
	case TV_BOOL:
		hl_buf_append_str(out, v.b ? "true" : "false");
		break;
	case TV_NUM:
		tv_format_number(out, v.n);
		break;
	case TV_STR:
		hl_buf_append(out, v.s, v.len);
		break;
	case TV_ARR:
		array_join(out, v.j, 0);
		break;
	case TV_OBJ:
		hl_buf_append_str(out, "[object Object]");
		break;
	case TV_FUNC:
		hl_buf_append(out, partial_block_source, sizeof(partial_block_source) - 1);
		break;
	}
}

void
tv_append_output(struct hl_buf *out, struct tv v)
{
	if (v.t == TV_UNDEF || v.t == TV_NULL)
		return;
	tv_to_string(out, v);
}

/* StringToNumber: trimmed; "" -> 0; decimal, 0x/0o/0b, Infinity; else NaN. */
static double
string_to_number(const char *s, size_t n)
{
	size_t a = 0, b = n, k, i;
	char tmp[512];
	bool neg = false;
	int base = 0;
	double v = 0;

	while (a < b && (k = tmpl_js_space(s + a, b - a)) > 0)
		a += k;
	/* trailing: scan forward for the last non-space end */
	{
		size_t i2 = a, last = a;
		while (i2 < b) {
			if ((k = tmpl_js_space(s + i2, b - i2)) > 0) {
				i2 += k;
			} else {
				i2++;
				last = i2;
			}
		}
		b = last;
	}
	if (a == b)
		return 0;
	if (b - a >= 2 && s[a] == '0' &&
	    (s[a + 1] == 'x' || s[a + 1] == 'X' || s[a + 1] == 'o' || s[a + 1] == 'O' ||
	     s[a + 1] == 'b' || s[a + 1] == 'B')) {
		char c = (char)(s[a + 1] | 0x20);
		base = c == 'x' ? 16 : c == 'o' ? 8 : 2;
		if (b - a == 2)
			return NAN;
		for (i = a + 2; i < b; i++) {
			int d;
			char ch = s[i];
			if (ch >= '0' && ch <= '9')
				d = ch - '0';
			else if ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'f')
				d = (ch | 0x20) - 'a' + 10;
			else
				return NAN;
			if (d >= base)
				return NAN;
			v = v * base + d;
		}
		return v;
	}
	i = a;
	if (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-';
		i++;
	}
	if (b - i == 8 && memcmp(s + i, "Infinity", 8) == 0)
		return neg ? -INFINITY : INFINITY;
	{
		size_t j = i, digits = 0;
		while (j < b && s[j] >= '0' && s[j] <= '9') {
			j++;
			digits++;
		}
		if (j < b && s[j] == '.') {
			j++;
			while (j < b && s[j] >= '0' && s[j] <= '9') {
				j++;
				digits++;
			}
		}
		if (!digits)
			return NAN;
		if (j < b && (s[j] == 'e' || s[j] == 'E')) {
			size_t ed = 0;
			j++;
			if (j < b && (s[j] == '+' || s[j] == '-'))
				j++;
			while (j < b && s[j] >= '0' && s[j] <= '9') {
				j++;
				ed++;
			}
			if (!ed)
				return NAN;
		}
		if (j != b)
			return NAN;
	}
	if (b - a >= sizeof(tmp)) {
		char *big = malloc(b - a + 1);
		if (!big)
			return NAN;
		memcpy(big, s + a, b - a);
		big[b - a] = '\0';
		v = strtod(big, NULL);
		free(big);
		return v;
	}
	memcpy(tmp, s + a, b - a);
	tmp[b - a] = '\0';
	return strtod(tmp, NULL);
}

double
tv_to_number(struct tv v)
{
	struct hl_buf b = HL_BUF_INIT(0);
	double d;

	switch (v.t) {
	case TV_UNDEF:
		return NAN;
	case TV_NULL:
		return 0;
	case TV_BOOL:
		return v.b ? 1 : 0;
	case TV_NUM:
		return v.n;
	case TV_STR:
		return string_to_number(v.s, v.len);
	case TV_ARR:
		tv_to_string(&b, v);
		d = hl_buf_error(&b) ? NAN : string_to_number(b.data, b.len);
		hl_buf_release(&b);
		return d;
	case TV_OBJ:
	case TV_FUNC:
	default:
		return NAN;
	}
}

bool
tv_truthy(struct tv v)
{
	switch (v.t) {
	case TV_UNDEF:
	case TV_NULL:
		return false;
	case TV_BOOL:
		return v.b;
	case TV_NUM:
		return !(v.n == 0 || isnan(v.n));
	case TV_STR:
		return v.len > 0;
	default:
		return true;
	}
}

bool
tv_strict_eq(struct tv a, struct tv b)
{
	if (a.t != b.t)
		return false;
	switch (a.t) {
	case TV_UNDEF:
	case TV_NULL:
		return true;
	case TV_BOOL:
		return a.b == b.b;
	case TV_NUM:
		return a.n == b.n;
	case TV_STR:
		return a.len == b.len && memcmp(a.s, b.s, a.len) == 0;
	case TV_FUNC:
		return a.fn == b.fn;
	default:
		return a.j == b.j;
	}
}

/* ToPrimitive of an array, object or function: its String(). */
static struct tv
to_primitive(struct tv v, struct hl_buf *store)
{
	struct tv r = { 0 };

	tv_to_string(store, v);
	r.t = TV_STR;
	r.s = store->data;
	r.len = store->len;
	return r;
}

bool
tv_loose_eq(struct tv a, struct tv b)
{
	struct hl_buf s1 = HL_BUF_INIT(0), s2 = HL_BUF_INIT(0);
	bool r;
	int guard;

	for (guard = 0; guard < 4; guard++) {
		bool an = a.t == TV_UNDEF || a.t == TV_NULL;
		bool bn = b.t == TV_UNDEF || b.t == TV_NULL;
		bool ao = a.t == TV_ARR || a.t == TV_OBJ || a.t == TV_FUNC;
		bool bo = b.t == TV_ARR || b.t == TV_OBJ || b.t == TV_FUNC;

		if (a.t == b.t || (an && bn)) {
			r = an ? true : tv_strict_eq(a, b);
			goto out;
		}
		if (an || bn) {
			r = false;
			goto out;
		}
		if (a.t == TV_NUM && b.t == TV_STR) {
			r = a.n == tv_to_number(b);
			goto out;
		}
		if (a.t == TV_STR && b.t == TV_NUM) {
			r = tv_to_number(a) == b.n;
			goto out;
		}
		if (a.t == TV_BOOL) {
			a.t = TV_NUM;
			a.n = a.b ? 1 : 0;
			continue;
		}
		if (b.t == TV_BOOL) {
			b.t = TV_NUM;
			b.n = b.b ? 1 : 0;
			continue;
		}
		if (ao && !bo) {
			a = to_primitive(a, &s1);
			continue;
		}
		if (bo && !ao) {
			b = to_primitive(b, &s2);
			continue;
		}
		r = false;
		goto out;
	}
	r = false;
out:
	hl_buf_release(&s1);
	hl_buf_release(&s2);
	return r;
}

bool
tv_is_index(const char *k, unsigned long *idx_out)
{
	unsigned long long v = 0;
	size_t i, n = strlen(k);

	if (n == 0 || n > 10 || (n > 1 && k[0] == '0'))
		return false;
	for (i = 0; i < n; i++) {
		if (k[i] < '0' || k[i] > '9')
			return false;
		v = v * 10 + (unsigned)(k[i] - '0');
	}
	if (v > 4294967294ULL)
		return false;
	if (idx_out)
		*idx_out = (unsigned long)v;
	return true;
}

struct keyent {
	const char *k;
	unsigned long idx;
	size_t pos;
	bool is_idx;
};

static int
key_cmp(const void *a, const void *b)
{
	const struct keyent *x = a, *y = b;

	if (x->is_idx != y->is_idx)
		return x->is_idx ? -1 : 1;
	if (x->is_idx)
		return x->idx < y->idx ? -1 : x->idx > y->idx;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

const char **
tv_object_keys(json_t *obj, size_t *n_out)
{
	size_t n = json_object_size(obj), i = 0;
	struct keyent *ents;
	const char **keys;
	const char *k;
	json_t *v;

	*n_out = 0;
	if (n == 0)
		return NULL;
	ents = calloc(n, sizeof(*ents));
	keys = calloc(n, sizeof(*keys));
	if (!ents || !keys) {
		free(ents);
		free(keys);
		return NULL;
	}
	json_object_foreach(obj, k, v)
	{
		(void)v;
		if (i >= n)
			break;
		ents[i].k = k;
		ents[i].pos = i;
		ents[i].is_idx = tv_is_index(k, &ents[i].idx);
		i++;
	}
	qsort(ents, i, sizeof(*ents), key_cmp);
	for (n = 0; n < i; n++)
		keys[n] = ents[n].k;
	free(ents);
	*n_out = i;
	return keys;
}

size_t
tv_utf16_len(const char *s, size_t n)
{
	size_t i = 0, units = 0;
	const unsigned char *u = (const unsigned char *)s;

	while (i < n) {
		if (u[i] < 0x80) {
			i++;
			units++;
		} else if ((u[i] & 0xe0) == 0xc0 && i + 1 < n) {
			i += 2;
			units++;
		} else if ((u[i] & 0xf0) == 0xe0 && i + 2 < n) {
			i += 3;
			units++;
		} else if ((u[i] & 0xf8) == 0xf0 && i + 3 < n) {
			i += 4;
			units += 2;
		} else {
			i++;
			units++;
		}
	}
	return units;
}

/* JSON.stringify's QuoteJSONString */
static void
json_quote(struct hl_buf *out, const char *s, size_t n)
{
	size_t i;

	hl_buf_append_char(out, '"');
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		switch (c) {
		case '"':
			hl_buf_append_str(out, "\\\"");
			break;
		case '\\':
			hl_buf_append_str(out, "\\\\");
			break;
		case '\b':
			hl_buf_append_str(out, "\\b");
			break;
		case '\f':
			hl_buf_append_str(out, "\\f");
			break;
		case '\n':
			hl_buf_append_str(out, "\\n");
			break;
		case '\r':
			hl_buf_append_str(out, "\\r");
			break;
		case '\t':
			hl_buf_append_str(out, "\\t");
			break;
		default:
			if (c < 0x20)
				hl_buf_appendf(out, "\\u%04x", c);
			else
				hl_buf_append_char(out, (char)c);
		}
	}
	hl_buf_append_char(out, '"');
}

static void
indent(struct hl_buf *out, int level)
{
	int i;
	hl_buf_append_char(out, '\n');
	for (i = 0; i < level; i++)
		hl_buf_append_str(out, "  ");
}

static void
json_pretty(struct hl_buf *out, struct tv v, int level)
{
	size_t i, n;

	switch (v.t) {
	case TV_UNDEF:
	case TV_NULL:
	case TV_FUNC:
		hl_buf_append_str(out, "null");
		break;
	case TV_BOOL:
		hl_buf_append_str(out, v.b ? "true" : "false");
		break;
	case TV_NUM:
		if (isnan(v.n) || isinf(v.n))
			hl_buf_append_str(out, "null");
		else
			tv_format_number(out, v.n);
		break;
	case TV_STR:
		json_quote(out, v.s, v.len);
		break;
	case TV_ARR:
		n = json_array_size(v.j);
		if (n == 0 || level > 2100) {
			hl_buf_append_str(out, "[]");
			break;
		}
		hl_buf_append_char(out, '[');
		for (i = 0; i < n; i++) {
			if (i)
				hl_buf_append_char(out, ',');
			indent(out, level + 1);
			json_pretty(out, tv_from_json(json_array_get(v.j, i)), level + 1);
		}
		indent(out, level);
		hl_buf_append_char(out, ']');
		break;
	case TV_OBJ: {
		const char **keys = tv_object_keys(v.j, &n);
		if (n == 0 || level > 2100) {
			free(keys);
			hl_buf_append_str(out, "{}");
			break;
		}
		{
			size_t shown = 0;
			for (i = 0; i < n; i++) {
				struct tv e = tv_from_json(json_object_get(v.j, keys[i]));
				if (e.t == TV_UNDEF || e.t == TV_FUNC)
					continue; /* JSON.stringify skips these members */
				hl_buf_append_str(out, shown ? "," : "{");
				shown++;
				indent(out, level + 1);
				json_quote(out, keys[i], strlen(keys[i]));
				hl_buf_append_str(out, ": ");
				json_pretty(out, e, level + 1);
			}
			if (shown) {
				indent(out, level);
				hl_buf_append_char(out, '}');
			} else {
				hl_buf_append_str(out, "{}");
			}
		}
		free(keys);
		break;
	}
	}
}

void
tv_json_pretty(struct hl_buf *out, struct tv v)
{
	json_pretty(out, v, 0);
}

json_t *
tv_to_json(struct tv v)
{
	switch (v.t) {
	case TV_NULL:
		return json_null();
	case TV_BOOL:
		return json_boolean(v.b);
	case TV_NUM:
		return isfinite(v.n) ? json_real(v.n) : tv_special_new(v);
	case TV_STR:
		return json_stringn_nocheck(v.s, v.len);
	case TV_ARR:
	case TV_OBJ:
		return json_incref(v.j);
	default:
		return tv_special_new(v); /* undefined, a function */
	}
}
