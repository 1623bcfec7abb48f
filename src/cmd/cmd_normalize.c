/*
 * cmd_normalize.c - `healer normalize --event NAME [FILE|-]`: shows what
 * healer makes of a webhook payload without a server: the normalized event,
 * the skip reason evaluated against the effective configuration (defaults,
 * HEALER_CONFIG and the environment, as the server would load them) and
 * the cross-delivery deduplication key.
 *
 * Output (stdout, pretty JSON with sorted keys):
 *   {"dedup_key": "..."|null, "event": {...}, "skip_reason": "..."|null}
 * Exit 1 for an unsupported event, unreadable input, malformed JSON (with
 * line and column) or a payload the event cannot be built from; exit 2 for
 * usage errors.
 */
#include "base/buf.h"
#include "base/file.h"
#include "cmd.h"
#include "config/config.h"
#include "event/event.h"

#include "json/json.h"
#include <stdio.h>
#include <stdlib.h>

/* The webhook intake's body limit (contract section 4). */
#define NORMALIZE_MAX_INPUT (25u * 1024u * 1024u)

int
hl_cmd_normalize(int argc, char **argv)
{
	static const struct hl_opt opts[] = {
		{ "event", true, 'e' },
		{ NULL, false, 0 },
	};
	struct hl_err err = HL_ERR_INIT;
	struct hl_buf in = HL_BUF_INIT(NORMALIZE_MAX_INPUT);
	struct hl_config *cfg = NULL;
	struct hl_event *ev = NULL;
	json_t *payload = NULL, *out = NULL, *evj = NULL;
	const char *event = NULL, *path = "-", *arg, *reason;
	char *key = NULL, *text = NULL;
	int idx = 1, opt, rc = 1;

	while ((opt = hl_cmd_getopt("normalize", argc, argv, opts, &arg, &idx)) != -1) {
		if (opt == '?')
			return 2;
		if (opt == 'e')
			event = arg;
	}
	if (!event || !*event)
		return hl_cmd_usage_error("normalize", "missing required option '--event'");
	if (idx < argc)
		path = argv[idx++];
	if (idx < argc)
		return hl_cmd_usage_error("normalize", "unexpected argument '%s'", argv[idx]);
	if (hl_event_kind_from_name(event) == HL_EVENT_UNKNOWN)
		return hl_cmd_fail("unsupported event '%s'", event);

	if (hl_file_read(&in, path, &err) < 0) {
		rc = hl_cmd_fail("%s", err.msg);
		goto out;
	}
	if (hl_json_parse(&payload, in.data, in.len, &err) < 0) {
		rc = hl_cmd_fail("malformed JSON in '%s': %s", path, err.msg);
		goto out;
	}
	if (hl_event_normalize(&ev, event, payload, &err) < 0) {
		rc = hl_cmd_fail("%s", err.msg);
		goto out;
	}
	if (hl_config_load(&cfg, NULL, NULL, 0, &err) < 0) {
		rc = hl_cmd_fail("invalid configuration: %s", err.msg);
		goto out;
	}
	reason = hl_event_skip_reason(ev, cfg);
	key = hl_event_dedup_key(ev);
	evj = hl_event_to_json(ev);
	out = json_object();
	if (!evj || !out || json_object_set(out, "event", evj) < 0 ||
	    hl_json_set_str(out, "skip_reason", reason) < 0 ||
	    hl_json_set_str(out, "dedup_key", key) < 0 ||
	    !(text = hl_json_dump_sorted(out, true))) {
		rc = hl_cmd_fail("out of memory");
		goto out;
	}
	puts(text);
	rc = fflush(stdout) == 0 ? 0 : hl_cmd_fail("cannot write the output");
out:
	free(text);
	free(key);
	json_decref(out);
	json_decref(evj);
	json_decref(payload);
	hl_event_free(ev);
	hl_config_free(cfg);
	hl_buf_release(&in);
	return rc;
}
