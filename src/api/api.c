/*
 * api.c - the JSON documents of the API from typed store records (see
 * api.h). Absent strings are JSON null, so every key is always present.
 */
#include "api.h"

#include "base/clock.h"

static json_t *
api_str(const char *s)
{
	return s ? json_string(s) : json_null();
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
	json_object_set_new(o, "queued_at", api_time(t->queued_ms));
	arr = json_array();
	for (i = 0; arr && i < t->n_attempts; i++)
		json_array_append_new(arr, api_attempt_json(&t->attempt[i]));
	json_object_set_new(o, "attempts", arr ? arr : json_array());
	arr = json_array();
	for (i = 0; arr && i < t->n_notifications; i++) {
		const struct hl_notification_record *n = &t->notification[i];
		json_array_append_new(
		        arr, json_pack("{s:s?, s:s?, s:s?, s:s?, s:i, s:s?, s:o, s:o}", "channel",
		                       n->channel, "kind", n->kind, "ref",
		                       n->ref && *n->ref ? n->ref : NULL, "state", n->state,
		                       "attempts", n->attempts, "last_error", n->last_error,
		                       "created_at", api_time(n->created_ms), "delivered_at",
		                       api_time(n->delivered_ms)));
	}
	json_object_set_new(o, "notifications", arr ? arr : json_array());
	return o;
}

json_t *
hl_api_delivery_json(const struct hl_delivery_summary *d)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	json_object_set_new(o, "delivery_id", json_string(d->delivery_id));
	json_object_set_new(o, "event", json_string(d->event));
	json_object_set_new(o, "action", d->action[0] ? json_string(d->action) : json_null());
	json_object_set_new(o, "source", json_string(d->source));
	json_object_set_new(o, "state", json_string(d->state));
	json_object_set_new(o, "answer", json_string(d->answer));
	json_object_set_new(o, "reason", d->reason[0] ? json_string(d->reason) : json_null());
	json_object_set_new(o, "task_id", d->task_id[0] ? json_string(d->task_id) : json_null());
	json_object_set_new(o, "received_at", api_time(d->received_ms));
	json_object_set_new(o, "claims", json_integer(d->claims));
	return o;
}
