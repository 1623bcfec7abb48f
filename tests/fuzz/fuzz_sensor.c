/*
 * fuzz_sensor.c - libFuzzer target for the sensor routes' parsing
 * (POST /api/remediate/ci-failure and /security-alert, src/http/intake.c
 * hl_http_remediate): the input is an optional X-GitHub-Event value on the
 * first line, then the body. The body is parsed, unwrapped the way the
 * route does it (a {"body": ...} wrapper holding an object or a JSON
 * string is replaced by what it holds and re-serialized for the store),
 * named (the header, else hl_event_guess_name), normalized and validated;
 * the stored text is read back as a worker reads it.
 *
 * Oracle: the re-serialized body parses back to an equal value.
 */
#include "config/config.h"
#include "event/event.h"
#include "fuzz.h"

#include "json/fast.h"
#include <jansson.h>
#include <string.h>

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct hl_config cfg;
	char header[64];
	const uint8_t *body;
	size_t n;
	struct hl_err err = HL_ERR_INIT;
	struct hl_event *ev = NULL;
	json_t *root = NULL, *inner, *back = NULL;
	char *stored = NULL, *key;
	const char *event;

	fuzz_split_line(header, sizeof(header), &body, &n, data, size);
	if (hl_json_fast_parse(&root, (const char *)body, n, &err) < 0)
		return 0;
	inner = json_object_get(root, "body");
	if (json_is_string(inner)) {
		json_t *parsed = NULL;

		if (hl_json_fast_parse(&parsed, json_string_value(inner), json_string_length(inner),
		                       &err) < 0)
			goto out;
		json_object_set_new(root, "body", parsed);
		inner = parsed;
	}
	if (json_is_object(inner)) {
		stored = json_dumps(inner, JSON_COMPACT);
		if (!stored)
			goto out;
		json_incref(inner);
		json_decref(root);
		root = inner;
		FUZZ_CHECK(hl_json_fast_parse(&back, stored, strlen(stored), &err) == 0);
		FUZZ_CHECK(json_equal(back, root));
	}
	if (!json_is_object(root))
		goto out;
	event = header[0] ? header : hl_event_guess_name(root);
	if (!event)
		goto out;
	if (hl_event_normalize(&ev, event, back ? back : root, &err) == 0) {
		(void)hl_event_skip_reason(ev, &cfg);
		key = hl_event_remediation_key(ev);
		free(key);
		key = hl_event_dedup_key(ev);
		free(key);
		hl_event_free(ev);
	}
out:
	json_decref(back);
	json_decref(root);
	free(stored);
	return 0;
}
