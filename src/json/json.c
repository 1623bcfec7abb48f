/*
 * json.c - path accessors and small helpers over jansson; see json.h.
 */
#include "json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

json_t *
hl_json_path(const json_t *root, const char *path)
{
	const json_t *cur = root;
	const char *p = path;
	char key[256];

	while (cur && *p) {
		size_t n = strcspn(p, ".[");
		if (n) {
			if (n >= sizeof(key) || !json_is_object(cur))
				return NULL;
			memcpy(key, p, n);
			key[n] = '\0';
			cur = json_object_get(cur, key);
			p += n;
		}
		if (*p == '[') {
			char *end;
			unsigned long idx = strtoul(p + 1, &end, 10);
			if (*end != ']' || !json_is_array(cur))
				return NULL;
			cur = json_array_get(cur, idx);
			p = end + 1;
		}
		if (*p == '.')
			p++;
	}
	return (json_t *)cur;
}

const char *
hl_json_str(const json_t *root, const char *path)
{
	return json_string_value(hl_json_path(root, path));
}

const char *
hl_json_str_or(const json_t *root, const char *path, const char *fallback)
{
	const char *s = hl_json_str(root, path);

	return s ? s : fallback;
}

int64_t
hl_json_int(const json_t *root, const char *path, int64_t fallback)
{
	json_t *v = hl_json_path(root, path);

	if (json_is_integer(v))
		return (int64_t)json_integer_value(v);
	/* (a real outside int64 has no integer value: the cast is undefined) */
	if (json_is_real(v) && json_real_value(v) >= -0x1p63 && json_real_value(v) < 0x1p63)
		return (int64_t)json_real_value(v);
	if (json_is_string(v)) {
		char *end;
		long long x;
		errno = 0;
		x = strtoll(json_string_value(v), &end, 10);
		if (end != json_string_value(v) && !*end && !errno)
			return x;
	}
	return fallback;
}

bool
hl_json_bool(const json_t *root, const char *path, bool fallback)
{
	json_t *v = hl_json_path(root, path);

	return json_is_boolean(v) ? json_is_true(v) : fallback;
}

int
hl_json_parse(json_t **out, const char *text, size_t n, struct hl_err *err)
{
	json_error_t je;
	json_t *v = json_loadb(text, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);

	if (!v)
		return hl_err_set(err, HL_EPARSE, "line %d column %d: %s", je.line, je.column,
		                  je.text);
	*out = v;
	return 0;
}

int
hl_json_set_str(json_t *obj, const char *key, const char *s)
{
	return json_object_set_new(obj, key, s ? json_string(s) : json_null());
}

char *
hl_json_dump_sorted(const json_t *v, bool pretty)
{
	size_t flags = JSON_SORT_KEYS | JSON_ENCODE_ANY;

	flags |= pretty ? JSON_INDENT(2) : JSON_COMPACT;
	return json_dumps(v, flags);
}
