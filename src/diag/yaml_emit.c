/*
 * yaml_emit.c - JSON to YAML through libyaml's event emitter; see
 * yaml_emit.h. Keys and strings that a YAML 1.1 reader would turn into
 * another type (a boolean, null, number, timestamp, merge key) are
 * double-quoted; numbers, booleans and null are plain. Recursion is bounded
 * at 64 levels.
 */
#include "yaml_emit.h"

#include <regex.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define YAML_EMIT_MAX_DEPTH 64

static int
yaml_emit_write(void *data, unsigned char *buffer, size_t size)
{
	return hl_buf_append(data, buffer, size) == 0;
}

/*
 * The YAML 1.1 implicit types a plain scalar resolves to (the resolver of
 * PyYAML and go-yaml v2, the readers of such files), and YAML 1.2's 0o
 * octal: a string matching one is quoted. Booleans and null are listed in
 * yaml_emit_needs_quotes.
 */
static const char *const yaml_emit_implicit[] = {
	/* int: binary, octal, decimal, hex, sexagesimal (1:20 is 80) */
	"^[-+]?(0b[01_]+|0[0-7_]+|0|[1-9][0-9_]*|0x[0-9a-fA-F_]+|[1-9][0-9_]*(:[0-5]?[0-9])+|0o[0-7]+)$",
	/* float */
	"^([-+]?[0-9][0-9_]*\\.[0-9_]*([eE][-+][0-9]+)?|\\.[0-9_]+([eE][-+][0-9]+)?"
	"|[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+\\.[0-9_]*|[-+]?\\.(inf|Inf|INF)|\\.(nan|NaN|NAN))$",
	/* timestamp: an event's lastTimestamp would be read as a date */
	"^([0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:"
	"[0-9]{2}(\\.[0-9]*)?([ \t]*(Z|[-+][0-9]{1,2}(:[0-9]{2})?))?)$",
	/* merge and value keys */
	"^(<<|=)$",
};

#define YAML_EMIT_N_IMPLICIT (sizeof(yaml_emit_implicit) / sizeof(yaml_emit_implicit[0]))

struct yaml_emit_ctx {
	yaml_emitter_t em;
	regex_t implicit[YAML_EMIT_N_IMPLICIT];
	size_t n_compiled;
};

/* True when a plain scalar would not read back as the same string. */
static bool
yaml_emit_needs_quotes(const struct yaml_emit_ctx *c, const char *s)
{
	static const char *const special[] = {
		"true", "True", "TRUE", "false", "False", "FALSE", "yes",  "Yes", "YES",
		"no",   "No",   "NO",   "on",    "On",    "ON",    "off",  "Off", "OFF",
		"y",    "Y",    "n",    "N",     "null",  "Null",  "NULL", "~",
	};
	char *end;
	size_t i;

	if (!*s)
		return true;
	for (i = 0; i < sizeof(special) / sizeof(special[0]); i++)
		if (strcmp(s, special[i]) == 0)
			return true;
	strtod(s, &end);
	if (*end == '\0')
		return true;
	for (i = 0; i < c->n_compiled; i++)
		if (regexec(&c->implicit[i], s, 0, NULL, 0) == 0)
			return true;
	return false;
}

static int
yaml_emit_scalar(yaml_emitter_t *em, const char *s, yaml_scalar_style_t style)
{
	yaml_event_t ev;

	if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)strlen(s), 1, 1,
	                                  style))
		return -1;
	return yaml_emitter_emit(em, &ev) ? 0 : -1;
}

static int
yaml_emit_value(struct yaml_emit_ctx *c, const json_t *v, int depth)
{
	yaml_emitter_t *em = &c->em;
	yaml_event_t ev;
	char num[64];

	if (depth > YAML_EMIT_MAX_DEPTH)
		return -1;
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		const char *k;
		json_t *m;

		if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
		                                         YAML_BLOCK_MAPPING_STYLE) ||
		    !yaml_emitter_emit(em, &ev))
			return -1;
		json_object_foreach((json_t *)v, k, m)
		{
			if (yaml_emit_scalar(em, k,
			                     yaml_emit_needs_quotes(c, k)
			                             ? YAML_DOUBLE_QUOTED_SCALAR_STYLE
			                             : YAML_ANY_SCALAR_STYLE) < 0 ||
			    yaml_emit_value(c, m, depth + 1) < 0)
				return -1;
		}
		if (!yaml_mapping_end_event_initialize(&ev) || !yaml_emitter_emit(em, &ev))
			return -1;
		return 0;
	}
	case JSON_ARRAY: {
		size_t i;
		json_t *m;

		if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
		                                          YAML_BLOCK_SEQUENCE_STYLE) ||
		    !yaml_emitter_emit(em, &ev))
			return -1;
		json_array_foreach(v, i, m)
		{
			if (yaml_emit_value(c, m, depth + 1) < 0)
				return -1;
		}
		if (!yaml_sequence_end_event_initialize(&ev) || !yaml_emitter_emit(em, &ev))
			return -1;
		return 0;
	}
	case JSON_STRING: {
		const char *s = json_string_value(v);

		return yaml_emit_scalar(em, s,
		                        yaml_emit_needs_quotes(c, s)
		                                ? YAML_DOUBLE_QUOTED_SCALAR_STYLE
		                                : YAML_ANY_SCALAR_STYLE);
	}
	case JSON_INTEGER:
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return yaml_emit_scalar(em, num, YAML_PLAIN_SCALAR_STYLE);
	case JSON_REAL:
		snprintf(num, sizeof(num), "%.17g", json_real_value(v));
		return yaml_emit_scalar(em, num, YAML_PLAIN_SCALAR_STYLE);
	case JSON_TRUE:
		return yaml_emit_scalar(em, "true", YAML_PLAIN_SCALAR_STYLE);
	case JSON_FALSE:
		return yaml_emit_scalar(em, "false", YAML_PLAIN_SCALAR_STYLE);
	case JSON_NULL:
		return yaml_emit_scalar(em, "null", YAML_PLAIN_SCALAR_STYLE);
	}
	return -1;
}

int
hl_diag_json_to_yaml(struct hl_buf *out, const json_t *v, struct hl_err *err)
{
	struct yaml_emit_ctx c;
	yaml_emitter_t *em = &c.em;
	yaml_event_t ev;
	int ret = 0;
	size_t i;

	c.n_compiled = 0;
	for (i = 0; i < YAML_EMIT_N_IMPLICIT; i++) {
		if (regcomp(&c.implicit[i], yaml_emit_implicit[i], REG_EXTENDED | REG_NOSUB) != 0) {
			ret = hl_err_set(err, HL_ENOMEM, "yaml emitter init failed");
			goto out_regex;
		}
		c.n_compiled++;
	}
	if (!yaml_emitter_initialize(em)) {
		ret = hl_err_set(err, HL_ENOMEM, "yaml emitter init failed");
		goto out_regex;
	}
	yaml_emitter_set_output(em, yaml_emit_write, out);
	yaml_emitter_set_unicode(em, 1);
	yaml_emitter_set_width(em, -1);
	if (!yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) ||
	    !yaml_emitter_emit(em, &ev) ||
	    !yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) ||
	    !yaml_emitter_emit(em, &ev) || yaml_emit_value(&c, v, 0) < 0 ||
	    !yaml_document_end_event_initialize(&ev, 1) || !yaml_emitter_emit(em, &ev) ||
	    !yaml_stream_end_event_initialize(&ev) || !yaml_emitter_emit(em, &ev)) {
		if (hl_buf_error(out))
			ret = hl_err_set(err, -hl_buf_error(out), "yaml output over its cap");
		else
			ret = hl_err_set(
			        err, HL_EINVAL,
			        "value cannot be written as yaml (nested over %d levels or "
			        "invalid text)",
			        YAML_EMIT_MAX_DEPTH);
		goto out;
	}
	if (hl_buf_error(out))
		ret = hl_err_set(err, -hl_buf_error(out), "yaml output over its cap");
out:
	yaml_emitter_delete(em);
out_regex:
	for (i = 0; i < c.n_compiled; i++)
		regfree(&c.implicit[i]);
	return ret;
}
