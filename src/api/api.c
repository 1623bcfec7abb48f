/*
 * api.c - the JSON documents of the API from typed store records (see
 * api.h). Absent strings are JSON null, so every key is always present.
 */
#include "api.h"

#include "base/buf.h"
#include "base/clock.h"
#include "base/str.h"

#include <string.h>

/* A stored string as JSON, or null. A stored text may hold bytes that are
 * not UTF-8 (an attempt's reason quotes a CodeRun's message, cut by the
 * loop's fixed buffer in the middle of a character), and json_string
 * refuses them: the key would go missing from the document. Such bytes
 * become U+FFFD. */
static json_t *
api_str(const char *s)
{
	struct hl_buf b = HL_BUF_INIT(0);
	size_t n;
	json_t *v;

	if (!s)
		return json_null();
	n = strlen(s);
	if (hl_utf8_valid_len(s, n) == n)
		return json_stringn(s, n);
	if (hl_buf_append_utf8(&b, s, n) < 0) {
		hl_buf_release(&b);
		return json_null();
	}
	v = json_stringn(b.data, b.len);
	hl_buf_release(&b);
	return v ? v : json_null();
}

/* A string of a store summary's fixed-size field. A bounded copy may have
 * cut the last character in two, and json_string refuses invalid UTF-8 (the
 * key would go missing): that half is dropped. */
static json_t *
api_fstr(const char *s)
{
	return json_stringn(s, hl_utf8_valid_len(s, strlen(s)));
}

/* The same, with "" (or NULL) as null. */
static json_t *
api_nstr(const char *s)
{
	return s && *s ? api_fstr(s) : json_null();
}

/* api_str, with "" as null (a list's absent names). */
static json_t *
api_str_or_null(const char *s)
{
	return s && *s ? api_str(s) : json_null();
}

static json_t *
api_time(int64_t ms)
{
	char ts[40];

	if (!ms)
		return json_null();
	hl_time_rfc3339(ts, sizeof(ts), ms);
	return json_string(ts);
}

/* Seconds from a task's creation to its verified success; null for a task
 * that has not succeeded. The task document and the lists both use it. */
static json_t *
api_time_to_fix(enum hl_task_state state, int64_t created_ms, int64_t finished_ms)
{
	if (state != HL_TASK_SUCCEEDED || !finished_ms)
		return json_null();
	return json_real((double)(finished_ms - created_ms) / 1000.0);
}

static json_t *
api_attempt_json(const struct hl_attempt_record *a)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	json_object_set_new(o, "number", json_integer(a->n));
	json_object_set_new(o, "kind", json_string(hl_attempt_kind_name(a->kind)));
	json_object_set_new(o, "agent", api_str(a->agent));
	json_object_set_new(o, "coderun", api_str(a->coderun_name));
	json_object_set_new(o, "phase", json_string(hl_attempt_phase_name(a->phase)));
	json_object_set_new(o, "outcome",
	                    a->outcome == HL_OUTCOME_INVALID
	                            ? json_null()
	                            : json_string(hl_attempt_outcome_name(a->outcome)));
	json_object_set_new(o, "reason", api_str(a->reason));
	json_object_set_new(o, "status_message", api_str(a->status_message));
	json_object_set_new(o, "pr_url", api_str(a->pr_url));
	json_object_set_new(o, "started_at", api_time(a->started_ms));
	json_object_set_new(o, "finished_at", api_time(a->finished_ms));
	return o;
}

/* What the timeline shows of the event that started a task (the stored
 * normalized event), or null. */
static json_t *
api_event_json(const char *event_json)
{
	static const char *const keys[] = {
		"kind",
		"event_name",
		"action",
		"repository_url",
		"sender",
		"run_id",
		"run_attempt",
		"job_id",
		"workflow_name",
		"job_name",
		"failed_step",
		"conclusion",
		"branch",
		"base_branch",
		"head_sha",
		"html_url",
		"pr_number",
		"pr_title",
		"alert_number",
		"severity",
		"package_name",
		"summary",
		"command_hint",
		"comment_id",
		"author_association",
		"requested_action",
	};
	json_t *ev = event_json ? json_loads(event_json, 0, NULL) : NULL, *o;
	size_t i;

	if (!json_is_object(ev)) {
		json_decref(ev);
		return json_null();
	}
	o = json_object();
	for (i = 0; o && i < sizeof(keys) / sizeof(keys[0]); i++) {
		json_t *v = json_object_get(ev, keys[i]);
		if (v)
			json_object_set(o, keys[i], v);
	}
	json_decref(ev);
	return o ? o : json_null();
}

json_t *
hl_api_task_json(const struct hl_task_record *t)
{
	json_t *o = json_object(), *arr, *dec = NULL;
	size_t i;

	if (!o)
		return NULL;
	json_object_set_new(o, "task_id", api_str(t->task_id));
	json_object_set_new(o, "state", json_string(hl_task_state_name(t->state)));
	json_object_set_new(o, "reason", api_str(t->reason));
	json_object_set_new(o, "repository", api_str(t->repository));
	json_object_set_new(o, "run_id", t->run_id ? json_integer(t->run_id) : json_null());
	json_object_set_new(o, "job", api_str(t->job));
	json_object_set_new(o, "branch", api_str(t->branch));
	json_object_set_new(o, "agent", api_str(t->agent));
	json_object_set_new(o, "failure_type", api_str(t->failure_type));
	json_object_set_new(o, "coderun_name", api_str(t->coderun_name));
	json_object_set_new(o, "dedup_key", api_str(t->dedup_key));
	json_object_set_new(o, "attempt", json_integer(t->attempts));
	if (t->decision_json)
		dec = json_loads(t->decision_json, 0, NULL);
	json_object_set_new(o, "decision", dec ? dec : json_null());
	json_object_set_new(o, "created_at", api_time(t->created_ms));
	json_object_set_new(o, "updated_at", api_time(t->updated_ms));
	json_object_set_new(o, "finished_at", api_time(t->finished_ms));
	json_object_set_new(o, "time_to_fix_seconds",
	                    api_time_to_fix(t->state, t->created_ms, t->finished_ms));
	json_object_set_new(o, "queued_at", api_time(t->queued_ms));
	arr = json_array();
	for (i = 0; arr && i < t->n_attempts; i++)
		json_array_append_new(arr, api_attempt_json(&t->attempt[i]));
	json_object_set_new(o, "attempts", arr ? arr : json_array());
	arr = json_array();
	for (i = 0; arr && i < t->n_notifications; i++) {
		const struct hl_notification_record *n = &t->notification[i];
		/* api_str: a last error quotes a channel's answer, cut to fit */
		json_array_append_new(
		        arr,
		        json_pack("{s:o, s:o, s:o, s:o, s:i, s:o, s:o, s:o}", "channel",
		                  api_str(n->channel), "kind", api_str(n->kind), "ref",
		                  api_str(n->ref && *n->ref ? n->ref : NULL), "state",
		                  api_str(n->state), "attempts", n->attempts, "last_error",
		                  api_str(n->last_error), "created_at", api_time(n->created_ms),
		                  "delivered_at", api_time(n->delivered_ms)));
	}
	json_object_set_new(o, "notifications", arr ? arr : json_array());
	json_object_set_new(o, "kind", api_str(t->kind));
	json_object_set_new(o, "workflow", api_str(t->workflow));
	json_object_set_new(o, "head_sha", api_str(t->head_sha));
	json_object_set_new(o, "target_branch", api_str(t->target_branch));
	json_object_set_new(o, "pr_number",
	                    t->pr_number ? json_integer(t->pr_number) : json_null());
	json_object_set_new(o, "event", api_event_json(t->event_json));
	return o;
}

json_t *
hl_api_delivery_json(const struct hl_delivery_summary *d)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	json_object_set_new(o, "delivery_id", api_fstr(d->delivery_id));
	json_object_set_new(o, "event", api_fstr(d->event));
	json_object_set_new(o, "action", api_nstr(d->action));
	json_object_set_new(o, "source", api_fstr(d->source));
	json_object_set_new(o, "state", api_fstr(d->state));
	json_object_set_new(o, "answer", api_fstr(d->answer));
	json_object_set_new(o, "reason", api_nstr(d->reason));
	json_object_set_new(o, "task_id", api_nstr(d->task_id));
	json_object_set_new(o, "received_at", api_time(d->received_ms));
	json_object_set_new(o, "claims", json_integer(d->claims));
	return o;
}

json_t *
hl_api_task_summary_json(const struct hl_task_summary *t)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	json_object_set_new(o, "task_id", api_fstr(t->task_id));
	json_object_set_new(o, "state", json_string(hl_task_state_name(t->state)));
	/* the names whole, as the task's document shows them (api_str) */
	json_object_set_new(o, "reason", api_str_or_null(t->reason));
	json_object_set_new(o, "kind", api_nstr(t->kind));
	json_object_set_new(o, "repository", api_str_or_null(t->repository));
	json_object_set_new(o, "branch", api_str_or_null(t->branch));
	json_object_set_new(o, "workflow", api_str_or_null(t->workflow));
	json_object_set_new(o, "job", api_str_or_null(t->job));
	json_object_set_new(o, "agent", api_nstr(t->agent));
	json_object_set_new(o, "failure_type", api_nstr(t->failure_type));
	json_object_set_new(o, "attempts", json_integer(t->attempts));
	json_object_set_new(o, "pr_number",
	                    t->pr_number ? json_integer(t->pr_number) : json_null());
	json_object_set_new(o, "created_at", api_time(t->created_ms));
	json_object_set_new(o, "updated_at", api_time(t->updated_ms));
	json_object_set_new(o, "finished_at", api_time(t->finished_ms));
	json_object_set_new(o, "time_to_fix_seconds",
	                    api_time_to_fix(t->state, t->created_ms, t->finished_ms));
	return o;
}
