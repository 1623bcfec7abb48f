/*
 * event_json.c - struct hl_event as a JSON object with stable snake_case
 * keys (the field names of the struct), for golden files and the store.
 *
 * Only fields the payload carried are written: NULL strings and zero ids
 * are left out, sender_is_bot only when true, command only when set. kind
 * and intent are always present. Keys are emitted in a fixed order; callers
 * that need byte-stable text dump with sorted keys (hl_json_dump_sorted).
 */
#include "event/event.h"

#include "json/json.h"

static int
event_json_str(json_t *o, const char *key, const char *v)
{
	if (!v)
		return 0;
	return json_object_set_new(o, key, json_string(v));
}

static int
event_json_int(json_t *o, const char *key, int64_t v)
{
	if (!v)
		return 0;
	return json_object_set_new(o, key, json_integer((json_int_t)v));
}

json_t *
hl_event_to_json(const struct hl_event *ev)
{
	json_t *o = json_object();
	int rc = 0;

	if (!o)
		return NULL;
	rc |= event_json_str(o, "kind", hl_event_kind_name(ev->kind));
	rc |= event_json_str(o, "intent", hl_event_intent_name(ev->intent));
	rc |= event_json_str(o, "event_name", ev->event_name);
	rc |= event_json_str(o, "action", ev->action);

	rc |= event_json_str(o, "repository", ev->repository);
	rc |= event_json_str(o, "repository_url", ev->repository_url);
	rc |= event_json_str(o, "default_branch", ev->default_branch);
	rc |= event_json_str(o, "sender", ev->sender);
	if (ev->sender_is_bot)
		rc |= json_object_set_new(o, "sender_is_bot", json_true());
	rc |= event_json_int(o, "installation_id", ev->installation_id);

	rc |= event_json_int(o, "run_id", ev->run_id);
	rc |= event_json_int(o, "run_attempt", ev->run_attempt);
	rc |= event_json_int(o, "job_id", ev->job_id);
	rc |= event_json_int(o, "check_run_id", ev->check_run_id);
	rc |= event_json_int(o, "check_suite_id", ev->check_suite_id);
	rc |= event_json_str(o, "workflow_name", ev->workflow_name);
	rc |= event_json_str(o, "job_name", ev->job_name);
	rc |= event_json_str(o, "failed_step", ev->failed_step);
	rc |= event_json_str(o, "status", ev->status);
	rc |= event_json_str(o, "conclusion", ev->conclusion);
	rc |= event_json_str(o, "branch", ev->branch);
	rc |= event_json_str(o, "base_branch", ev->base_branch);
	rc |= event_json_str(o, "head_sha", ev->head_sha);
	rc |= event_json_str(o, "commit_message", ev->commit_message);
	rc |= event_json_str(o, "html_url", ev->html_url);
	rc |= event_json_str(o, "logs_url", ev->logs_url);
	rc |= event_json_str(o, "check_output_title", ev->check_output_title);
	rc |= event_json_str(o, "check_output_summary", ev->check_output_summary);
	rc |= event_json_str(o, "check_output_text", ev->check_output_text);
	rc |= event_json_int(o, "pr_number", ev->pr_number);
	rc |= event_json_str(o, "pr_title", ev->pr_title);

	rc |= event_json_int(o, "alert_number", ev->alert_number);
	rc |= event_json_str(o, "alert_state", ev->alert_state);
	rc |= event_json_str(o, "severity", ev->severity);
	rc |= event_json_str(o, "package_name", ev->package_name);
	rc |= event_json_str(o, "package_ecosystem", ev->package_ecosystem);
	rc |= event_json_str(o, "manifest_path", ev->manifest_path);
	rc |= event_json_str(o, "vulnerable_range", ev->vulnerable_range);
	rc |= event_json_str(o, "fixed_version", ev->fixed_version);
	rc |= event_json_str(o, "cve_id", ev->cve_id);
	rc |= event_json_str(o, "ghsa_id", ev->ghsa_id);
	rc |= event_json_str(o, "summary", ev->summary);
	rc |= event_json_str(o, "description", ev->description);
	rc |= event_json_str(o, "rule_id", ev->rule_id);
	rc |= event_json_str(o, "tool_name", ev->tool_name);
	rc |= event_json_str(o, "location_path", ev->location_path);
	rc |= event_json_str(o, "secret_type", ev->secret_type);

	if (ev->command != HL_CMD_NONE)
		rc |= event_json_str(o, "command", hl_comment_command_name(ev->command));
	rc |= event_json_str(o, "command_hint", ev->command_hint);
	rc |= event_json_str(o, "comment_body", ev->comment_body);
	rc |= event_json_int(o, "comment_id", ev->comment_id);
	rc |= event_json_str(o, "requested_action", ev->requested_action);
	rc |= event_json_str(o, "review_state", ev->review_state);
	rc |= event_json_int(o, "review_id", ev->review_id);
	if (rc) {
		json_decref(o);
		return NULL;
	}
	return o;
}
