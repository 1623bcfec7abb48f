/*
 * pipeline.c - what a worker does with one claimed delivery (the contract is
 * in pipeline.h): remediation intents go through the remediator (context,
 * classification, prompt, CodeRun); tracking events are recorded. The
 * decision is published to whoever waits for it (the sensor's synchronous
 * answer) and the delivery is finished with the outcome as its reason.
 *
 * Transient failures (an upstream, the network, the store) give the
 * delivery back for another claim, with a growing pause, up to
 * PIPELINE_MAX_ATTEMPTS claims; every remediation step is idempotent, so a
 * retry never doubles a CodeRun. After that the worker marks it failed.
 */
#include "pipeline.h"

#include "base/log.h"
#include "remediate/remediate.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PIPELINE_MAX_ATTEMPTS 5

struct hl_pipeline {
	const struct hl_config *cfg;
	struct hl_store *store;
	struct hl_remediator *remediator;
	hl_pipeline_decision_fn on_decision;
	void *on_decision_arg;
};

int
hl_pipeline_new(struct hl_pipeline **out, const struct hl_config *cfg, struct hl_store *store,
                struct hl_err *err)
{
	struct hl_pipeline *p = calloc(1, sizeof(*p));
	int rc;

	if (!p)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	p->cfg = cfg;
	p->store = store;
	if ((rc = hl_remediator_new(&p->remediator, cfg, store, err)) < 0) {
		free(p);
		return rc;
	}
	*out = p;
	return 0;
}

void
hl_pipeline_free(struct hl_pipeline *p)
{
	if (!p)
		return;
	hl_remediator_free(p->remediator);
	free(p);
}

void
hl_pipeline_set_decision_hook(struct hl_pipeline *p, hl_pipeline_decision_fn fn, void *arg)
{
	p->on_decision = fn;
	p->on_decision_arg = arg;
}

static bool
pipeline_remediates(const struct hl_event *ev)
{
	switch (ev->intent) {
	case HL_INTENT_CI_FAILURE:
	case HL_INTENT_SECURITY:
	case HL_INTENT_ACTION:
		return true;
	case HL_INTENT_COMMAND:
		return ev->command == HL_CMD_FIX || ev->command == HL_CMD_RETRY;
	case HL_INTENT_TRACK:
	case HL_INTENT_NONE:
		break;
	}
	return false;
}

static bool
pipeline_transient(int rc)
{
	return rc == -HL_EUPSTREAM || rc == -HL_EIO || rc == -HL_ETIMEOUT || rc == -HL_EDB;
}

static void
pipeline_publish(struct hl_pipeline *p, const char *delivery_id, const struct hl_remediation *res)
{
	json_t *d;

	if (!p->on_decision)
		return;
	d = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "task_id", res->task_id, "agent",
	              res->agent, "failure_type", res->failure_type, "coderun_name",
	              res->coderun_name, "dedup_status", res->dedup_status, "outcome",
	              res->outcome);
	if (d && res->reason[0])
		json_object_set_new(d, "reason", json_string(res->reason));
	if (d)
		p->on_decision(p->on_decision_arg, delivery_id, d);
	json_decref(d);
}

int
hl_pipeline_process(struct hl_pipeline *p, const struct hl_delivery_record *d,
                    const struct hl_event *ev, struct hl_err *err)
{
	const char *outcome = "recorded";
	struct hl_remediation res;
	json_t *j = hl_event_to_json(ev);
	char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	int rc = 0;

	if (pipeline_remediates(ev)) {
		rc = hl_remediate(p->remediator, &res, ev, d->task_id ? d->task_id : d->delivery_id,
		                  err);
		if (rc < 0 && pipeline_transient(rc) && d->attempts < PIPELINE_MAX_ATTEMPTS) {
			/* give it back; the pause keeps a dead upstream from spinning a worker */
			struct timespec ts = { d->attempts, 0 };
			hl_warn("remediation of '%s' failed (attempt %d), will retry: %s",
			        d->delivery_id, d->attempts, err->msg);
			nanosleep(&ts, NULL);
			rc = hl_store_finish_delivery(p->store, d->delivery_id,
			                              HL_DELIVERY_RECEIVED, "retry", text, err);
			goto out;
		}
		if (rc < 0)
			goto out;
		outcome = res.outcome;
		hl_log_kv(HL_LOG_INFO, "remediation decided", "agent", res.agent, "failure_type",
		          res.failure_type, "coderun", res.coderun_name, "dedup_status",
		          res.dedup_status, "outcome", res.outcome, NULL);
		pipeline_publish(p, d->delivery_id, &res);
	} else if (ev->intent == HL_INTENT_COMMAND) {
		outcome = ev->command == HL_CMD_STATUS ? "command_status" : "command_stop";
	}
	rc = hl_store_finish_delivery(p->store, d->delivery_id, HL_DELIVERY_PROCESSED, outcome,
	                              text, err);
out:
	free(text);
	json_decref(j);
	return rc;
}
