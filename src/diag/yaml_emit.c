/*
 * yaml_emit.c - JSON to YAML through libyaml's event emitter; see
 * yaml_emit.h. Keys and strings that a YAML 1.1 reader would turn into a
 * boolean, null or number are double-quoted; numbers, booleans and null are
 * plain. Recursion is bounded at 64 levels.
 */
#include "yaml_emit.h"

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

/* True when a plain scalar would not read back as the same string. */
static bool
yaml_emit_needs_quotes(const char *s)
{
	static const char *const special[] = { "true", "false", "yes", "no",  "on",   "off",
		                               "null", "~",     "y",   "n",   "True", "False",
		                               "Yes",  "No",    "On",  "Off", "NULL", "Null" };
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
yaml_emit_value(yaml_emitter_t *em, const json_t *v, int depth)
{
	yaml_event_t ev;
	char num[64];

	if (depth > YAML_EMIT_MAX_DEPTH)
		return -1;
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		const char *k;
		json_t *c;

		if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
		                                         YAML_BLOCK_MAPPING_STYLE) ||
		    !yaml_emitter_emit(em, &ev))
			return -1;
		json_object_foreach((json_t *)v, k, c)
		{
			if (yaml_emit_scalar(em, k,
			                     yaml_emit_needs_quotes(k)
			                             ? YAML_DOUBLE_QUOTED_SCALAR_STYLE
			                             : YAML_ANY_SCALAR_STYLE) < 0 ||
			    yaml_emit_value(em, c, depth + 1) < 0)
				return -1;
		}
		if (!yaml_mapping_end_event_initialize(&ev) || !yaml_emitter_emit(em, &ev))
			return -1;
		return 0;
	}
	case JSON_ARRAY: {
		size_t i;
		json_t *c;

		if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
		                                          YAML_BLOCK_SEQUENCE_STYLE) ||
		    !yaml_emitter_emit(em, &ev))
			return -1;
		json_array_foreach(v, i, c)
		{
			if (yaml_emit_value(em, c, depth + 1) < 0)
				return -1;
		}
		if (!yaml_sequence_end_event_initialize(&ev) || !yaml_emitter_emit(em, &ev))
			return -1;
		return 0;
	}
	case JSON_STRING: {
		const char *s = json_string_value(v);

		return yaml_emit_scalar(em, s,
		                        yaml_emit_needs_quotes(s) ? YAML_DOUBLE_QUOTED_SCALAR_STYLE
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
	yaml_emitter_t em;
	yaml_event_t ev;
	int ret = 0;

	if (!yaml_emitter_initialize(&em))
		return hl_err_set(err, HL_ENOMEM, "yaml emitter init failed");
	yaml_emitter_set_output(&em, yaml_emit_write, out);
	yaml_emitter_set_unicode(&em, 1);
	yaml_emitter_set_width(&em, -1);
	if (!yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) ||
	    !yaml_emitter_emit(&em, &ev) ||
	    !yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) ||
	    !yaml_emitter_emit(&em, &ev) || yaml_emit_value(&em, v, 0) < 0 ||
	    !yaml_document_end_event_initialize(&ev, 1) || !yaml_emitter_emit(&em, &ev) ||
	    !yaml_stream_end_event_initialize(&ev) || !yaml_emitter_emit(&em, &ev)) {
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
	yaml_emitter_delete(&em);
	return ret;
}
