/*
 * pipeline.c - what a worker does with one claimed delivery (the contract is
 * in pipeline.h): remediation intents go through the remediator (context,
 * classification, prompt, CodeRun); tracking events are recorded. The
 * decision is published to whoever waits for it (the sensor's synchronous
 * answer) and the delivery is finished with the outcome as its reason.
 *
 * Transient failures (an upstream, the network, the store) give the
 * delivery back for another claim after a growing pause (a not-before time
 * in the store: no worker sleeps holding it) for an hour after it arrived
 * (HL_PIPELINE_KEEP_MS; a replayed old delivery still gets
 * HL_PIPELINE_MAX_CLAIMS claims); every remediation step is idempotent, so a
 * retry never doubles a CodeRun. After that the worker marks it failed. A finish that the store
 * refuses (a full disk, a lock) is retried with backoff (hl_pipeline_finish)
 * so no delivery stays `processing` once the store recovers; past that the
 * worker hands the claim to the store's lease keeper to give back.
 */
#include "pipeline.h"

#include "alerts/alerts.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/log.h"
#include "loop/loop.h"
#include "remediate/remediate.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

struct hl_pipeline {
	const struct hl_config *cfg;
	struct hl_store *store;
	struct hl_remediator *remediator;
	struct hl_loop *loop;
	struct hl_alerts *alerts; /* alert deliveries; NULL: recorded only */
};

void
hl_pipeline_set_alerts(struct hl_pipeline *p, struct hl_alerts *alerts)
{
	p->alerts = alerts;
}

bool
hl_pipeline_raw_delivery(const struct hl_delivery_record *d)
{
	return hl_alerts_owns(d->source);
}

int
hl_pipeline_new(struct hl_pipeline **out, const struct hl_config *cfg, struct hl_store *store,
                struct hl_remediator *remediator, struct hl_loop *loop, struct hl_err *err)
{
	struct hl_pipeline *p = calloc(1, sizeof(*p));

	if (!p)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	p->cfg = cfg;
	p->store = store;
	p->remediator = remediator;
	p->loop = loop;
	*out = p;
	return 0;
}

void
hl_pipeline_free(struct hl_pipeline *p)
{
	free(p);
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

/* A conflict met while processing (an upstream's 409, a task's state move
 * refused to a writer that raced another) is retried like a transient
 * error: the worker takes HL_ECONFLICT from the pipeline to mean another
 * process finished the delivery, and would leave it claimed for good. */
static int
pipeline_step(int rc, struct hl_err *err)
{
	if (rc != -HL_ECONFLICT)
		return rc;
	err->code = HL_EUPSTREAM;
	return -HL_EUPSTREAM;
}

/* The decision as the sensor's answer needs it; malloc'd JSON text. */
static char *
pipeline_decision_json(const struct hl_remediation *res)
{
	json_t *d = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "task_id", res->task_id, "agent",
	                      res->agent, "failure_type", res->failure_type, "coderun_name",
	                      res->coderun_name, "dedup_status", res->dedup_status, "outcome",
	                      res->outcome);
	char *text;

	if (!d)
		return NULL;
	if (strcmp(res->outcome, "queued") == 0) {
		/* over a budget: a code as the other reasons, the prose beside it */
		json_object_set_new(d, "reason", json_string("queued"));
		json_object_set_new(d, "decision", json_string("queued"));
		if (res->reason[0])
			json_object_set_new(d, "message", json_string(res->reason));
	} else if (res->reason[0]) {
		json_object_set_new(d, "reason", json_string(res->reason));
	}
	text = json_dumps(d, JSON_COMPACT);
	json_decref(d);
	return text;
}

/* The decision of a failure skipped for why: it starts no task. */
static char *
pipeline_skipped_json(const char *why)
{
	json_t *d = json_pack("{s:s, s:s, s:s}", "dedup_status", "skipped", "outcome", "skipped",
	                      "reason", why);
	char *text = d ? json_dumps(d, JSON_COMPACT) : NULL;

	json_decref(d);
	return text;
}

/* Hands the decision to whoever waits for it (any replica's sensor call). */
static void
pipeline_publish(struct hl_pipeline *p, const char *delivery_id, const char *decision)
{
	struct hl_buf b = HL_BUF_INIT(8192);
	struct hl_err err = HL_ERR_INIT;

	hl_buf_appendf(&b, "%s %s", delivery_id, decision);
	if (!hl_buf_error(&b) && hl_store_publish(p->store, HL_CHANNEL_DECISION, b.data, &err) < 0)
		hl_warn("publishing the decision of '%s' failed: %s", delivery_id, err.msg);
	hl_buf_release(&b);
}

#define PIPELINE_DECISION_WAIT_MS 1000 /* a failure waiting for its task's decision */

/* The pause before the claims-th claim of a delivery given back: 1, 2, 4,
 * 8 ... seconds, at most a minute. */
static int64_t
pipeline_backoff_ms(int claims)
{
	int64_t ms = 1000;

	while (--claims > 0 && ms < 60000)
		ms *= 2;
	return ms < 60000 ? ms : 60000;
}

int
hl_pipeline_finish(struct hl_store *store, const char *delivery_id,
                   const struct hl_delivery_result *r, struct hl_err *err)
{
	int64_t deadline = hl_time_mono_ms() + HL_PIPELINE_FINISH_RETRY_MS, pause = 50;
	struct timespec ts;
	int rc, tries = 0;

	for (;;) {
		rc = hl_store_finish_delivery(store, delivery_id, r, err);
		if ((rc != -HL_EDB && rc != -HL_EIO) || hl_time_mono_ms() + pause > deadline)
			break;
		if (tries++ == 0)
			hl_warn("finishing delivery '%s' failed, retrying: %s", delivery_id,
			        err->msg);
		ts.tv_sec = pause / 1000;
		ts.tv_nsec = (pause % 1000) * 1000000L;
		nanosleep(&ts, NULL);
		pause = pause * 2 > 5000 ? 5000 : pause * 2;
	}
	if (rc == 0 && tries)
		hl_info("finished delivery '%s' after %d retries", delivery_id, tries);
	return rc;
}

/*
 * hl_pipeline_finish of a delivery this worker processed or gives back. A
 * store that kept refusing it through every retry leaves the claim to the
 * lease keeper, which gives the delivery back once the store takes it (to
 * be processed again: its side effects are keyed), and -HL_ECONFLICT tells
 * the worker there is nothing left for it to do: it must not mark the
 * delivery failed (work done would read as failed, a retry as given up).
 */
static int
pipeline_finish_held(struct hl_store *store, const char *delivery_id,
                     const struct hl_delivery_result *r, struct hl_err *err)
{
	int rc = hl_pipeline_finish(store, delivery_id, r, err);

	if (rc != -HL_EDB && rc != -HL_EIO)
		return rc;
	hl_error("finishing delivery '%s' failed through its retries; it is given back once "
	         "the store answers: %s",
	         delivery_id, err->msg);
	if (hl_store_abandon_claim(store, delivery_id) < 0)
		return rc; /* out of memory: the worker's own path */
	return hl_err_set(err, HL_ECONFLICT, "delivery '%s' given back to the store", delivery_id);
}

/* Sets key to value in d when value is a non-empty string. */
static void
pipeline_set_text(json_t *d, const char *key, const char *value)
{
	if (d && value && *value)
		json_object_set_new(d, key, json_string(value));
}

/* A decision that names another task (the failure belongs to it), with
 * that task's agent, type and current CodeRun as the store has them (left
 * out when it cannot be read: the answer's keys are then null). */
static char *
pipeline_attached_json(struct hl_pipeline *p, const char *task_id, const char *message)
{
	json_t *d = json_pack("{s:s, s:s, s:s, s:s, s:s}", "task_id", task_id, "dedup_status",
	                      "existing", "outcome", "attached", "reason", "attached", "message",
	                      message);
	struct hl_task_record *t = NULL;
	char *text;

	if (d && hl_store_task_get(p->store, &t, task_id, NULL) == 0) {
		pipeline_set_text(d, "agent", t->agent);
		pipeline_set_text(d, "failure_type", t->failure_type);
		/* the latest attempt's (a re-run of the job has none) */
		pipeline_set_text(d, "coderun_name",
		                  t->n_attempts ? t->attempt[t->n_attempts - 1].coderun_name
		                                : t->coderun_name);
		hl_task_record_free(t);
	}
	text = d ? json_dumps(d, JSON_COMPACT) : NULL;
	json_decref(d);
	return text;
}

/*
 * The delivery was answered at intake with its own task id, then its
 * failure went to the active task owner: that id becomes an alias of
 * owner, so the id the sender was given names a task (GET
 * /api/remediations/{id} answers owner's).
 */
static int
pipeline_record_attached(struct hl_pipeline *p, const struct hl_delivery_record *d,
                         const char *owner, struct hl_err *err)
{
	if (!d->task_id || strcmp(d->task_id, owner) == 0)
		return 0;
	return hl_store_task_alias_put(p->store, d->task_id, owner, err);
}

/* An alert delivery (see pipeline.h). */
static int
pipeline_alert(struct hl_pipeline *p, const struct hl_delivery_record *d, struct hl_err *err)
{
	struct hl_alerts_outcome o;
	json_t *dj = NULL;
	char *decision = NULL;
	int rc;

	if (!p->alerts)
		return pipeline_finish_held(
		        p->store, d->delivery_id,
		        &(struct hl_delivery_result){ .state = HL_DELIVERY_PROCESSED,
		                                      .reason = "no_processor" },
		        err);
	rc = pipeline_step(hl_alerts_process(p->alerts, &o, d->source, d->action, d->task_id,
	                                     d->delivery_id, d->body, d->body_len, err),
	                   err);
	if (rc < 0 && pipeline_transient(rc)) {
		int64_t pause = pipeline_backoff_ms(d->claims);
		/* kept an hour and claimed as often as any: the worker marks it failed */
		if (d->claims >= HL_PIPELINE_MAX_CLAIMS &&
		    hl_time_wall_ms() - d->received_ms >= HL_PIPELINE_KEEP_MS)
			return rc;
		hl_warn("processing alert '%s' failed (claim %d), retrying in %lld ms: %s",
		        d->delivery_id, d->claims, (long long)pause, err->msg);
		return pipeline_finish_held(
		        p->store, d->delivery_id,
		        &(struct hl_delivery_result){ .state = HL_DELIVERY_RECEIVED,
		                                      .reason = "retry",
		                                      .not_before_ms = hl_time_wall_ms() + pause },
		        err);
	}
	if (rc < 0)
		return rc;
	dj = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "task_id", o.task_id, "agent", o.agent,
	               "failure_type", o.failure_type, "coderun_name", o.coderun_name,
	               "dedup_status", o.dedup_status[0] ? o.dedup_status : "new", "outcome",
	               o.outcome);
	if (dj && o.reason[0])
		json_object_set_new(dj, "reason", json_string(o.reason));
	decision = dj ? json_dumps(dj, JSON_COMPACT) : NULL;
	json_decref(dj);
	hl_log_kv(HL_LOG_INFO, "alert processed", "task_id", o.task_id, "outcome", o.outcome,
	          "agent", o.agent, "failure_type", o.failure_type, "coderun", o.coderun_name,
	          "reason", o.reason, NULL);
	rc = pipeline_finish_held(p->store, d->delivery_id,
	                          &(struct hl_delivery_result){ .state = HL_DELIVERY_PROCESSED,
	                                                        .reason = o.outcome,
	                                                        .decision_json = decision },
	                          err);
	free(decision);
	return rc;
}

int
hl_pipeline_process(struct hl_pipeline *p, const struct hl_delivery_record *d,
                    const struct hl_event *ev, struct hl_err *err)
{
	const char *outcome = "recorded";
	char outcome_buf[48], owner[HL_TASK_ID_MAX];
	struct hl_remediation res;
	struct hl_loop_command_result cmd;
	json_t *j;
	char *text, *decision = NULL;
	const char *waiting = NULL; /* the task whose decision it waits for */
	const char *skip;
	/* a pull request closed or merged (its conclusion says which) */
	bool pr_closed = ev && ev->kind == HL_EVENT_PULL_REQUEST && ev->conclusion;
	enum hl_delivery_state state = HL_DELIVERY_PROCESSED;
	int rc = 0;

	if (!ev)
		return pipeline_alert(p, d, err);
	j = hl_event_to_json(ev);
	text = j ? json_dumps(j, JSON_COMPACT) : NULL;

	/* a result of a job an active task is fixing belongs to that task
	 * (success or failure): the loop judges with it, no new task starts */
	if (p->loop && (ev->intent == HL_INTENT_CI_FAILURE || ev->intent == HL_INTENT_TRACK)) {
		rc = pipeline_step(hl_loop_ci_event(p->loop, owner, ev, d->delivery_id,
		                                    d->task_id ? d->task_id : d->delivery_id, err),
		                   err);
		if (rc < 0 && pipeline_transient(rc))
			goto give_back;
		if (rc < 0)
			goto out;
		if (rc == 2) {
			/* its task is still being decided: back after a pause */
			hl_log_kv(HL_LOG_INFO, "a failure waits for its task's decision",
			          "delivery_id", d->delivery_id, "task_id", owner, NULL);
			hl_err_set(err, HL_ECONFLICT, "task '%s' is being decided", owner);
			waiting = owner;
			goto give_back;
		}
		if (rc == 1) {
			outcome = ev->intent == HL_INTENT_CI_FAILURE ? "attached" : "ci_result";
			if (ev->intent == HL_INTENT_CI_FAILURE) {
				decision = pipeline_attached_json(
				        p, owner,
				        "a new result of the job an active remediation is fixing");
				rc = pipeline_step(pipeline_record_attached(p, d, owner, err), err);
				if (rc < 0 && pipeline_transient(rc))
					goto give_back;
				if (rc < 0)
					goto out;
			}
			goto finish;
		}
	}
	/* a bot's or skip-tagged failure no active task took starts none */
	if (ev->intent == HL_INTENT_CI_FAILURE &&
	    hl_event_skip_starts_nothing(ev, skip = hl_event_skip_reason(ev, p->cfg))) {
		decision = pipeline_skipped_json(skip);
		state = HL_DELIVERY_SKIPPED;
		outcome = skip;
		goto finish;
	}
	if (pipeline_remediates(ev)) {
		rc = pipeline_step(hl_remediate(p->remediator, &res, ev,
		                                d->task_id ? d->task_id : d->delivery_id,
		                                d->failure_key, err),
		                   err);
		if (rc < 0 && pipeline_transient(rc))
			goto give_back;
		if (rc < 0)
			goto out;
		outcome = res.outcome;
		hl_log_kv(HL_LOG_INFO, "remediation decided", "agent", res.agent, "failure_type",
		          res.failure_type, "coderun", res.coderun_name, "dedup_status",
		          res.dedup_status, "outcome", res.outcome, NULL);
		if (strcmp(res.outcome, "attached") == 0) {
			/* the run's task at the other granularity: this delivery's
			 * task id names it */
			decision = pipeline_attached_json(p, res.task_id, res.reason);
			rc = pipeline_step(pipeline_record_attached(p, d, res.task_id, err), err);
			if (rc < 0 && pipeline_transient(rc))
				goto give_back;
			if (rc < 0)
				goto out;
		} else {
			decision = pipeline_decision_json(&res);
		}
	} else if (p->loop && (ev->intent == HL_INTENT_COMMAND || pr_closed)) {
		/* a /healer command, or a pull request closed or merged (its
		 * remediations still at work stop) */
		rc = pr_closed ? hl_loop_pr_closed(p->loop, &cmd, ev,
		                                   d->task_id ? d->task_id : d->delivery_id, err)
		               : hl_loop_command(p->loop, &cmd, ev,
		                                 d->task_id ? d->task_id : d->delivery_id, err);
		rc = pipeline_step(rc, err);
		if (rc < 0 && pipeline_transient(rc))
			goto give_back;
		if (rc < 0)
			goto out;
		if (rc == 2) {
			/* it acts on a task still being decided: back after a pause */
			hl_log_kv(HL_LOG_INFO,
			          pr_closed ? "a closed pull request waits for its task's decision"
			                    : "a command waits for its task's decision",
			          "delivery_id", d->delivery_id, "task_id", cmd.task_id, NULL);
			hl_err_set(err, HL_ECONFLICT, "task '%s' is being decided", cmd.task_id);
			waiting = cmd.task_id;
			goto give_back;
		}
		if (pr_closed) {
			if (strcmp(cmd.outcome, "stopped") == 0)
				outcome = "pr_closed_stopped";
			goto finish;
		}
		snprintf(outcome_buf, sizeof(outcome_buf), "command_%s", cmd.outcome);
		outcome = outcome_buf;
		hl_log_kv(HL_LOG_INFO, "healer command", "command",
		          hl_comment_command_name(ev->command), "outcome", cmd.outcome, "task_id",
		          cmd.task_id, "detail", cmd.detail, NULL);
	}
finish:
	rc = pipeline_finish_held(p->store, d->delivery_id,
	                          &(struct hl_delivery_result){ .state = state,
	                                                        .reason = outcome,
	                                                        .event_json = text,
	                                                        .decision_json = decision },
	                          err);
	if (rc == 0 && decision)
		pipeline_publish(p, d->delivery_id, decision);
	goto out;
give_back:
	/* give it back; the not-before time keeps a dead upstream from
	 * spinning a worker */
	if (d->claims < HL_PIPELINE_MAX_CLAIMS ||
	    hl_time_wall_ms() - d->received_ms < HL_PIPELINE_KEEP_MS) {
		/* a wait for a decision is short: the decision is seconds away */
		int64_t pause = waiting ? PIPELINE_DECISION_WAIT_MS : pipeline_backoff_ms(d->claims);

		if (!waiting)
			hl_warn("processing '%s' failed (claim %d), retrying in %lld ms: %s",
			        d->delivery_id, d->claims, (long long)pause, err->msg);
		rc = pipeline_finish_held(
		        p->store, d->delivery_id,
		        &(struct hl_delivery_result){ .state = HL_DELIVERY_RECEIVED,
		                                      .reason = "retry",
		                                      .event_json = text,
		                                      .not_before_ms = hl_time_wall_ms() + pause },
		        err);
	} else if (waiting) {
		/* kept as long as any: it fails, never stays claimed */
		rc = hl_err_set(err, HL_ETIMEOUT, "gave up waiting for task '%s' to be decided",
		                waiting);
	}
out:
	free(decision);
	free(text);
	json_decref(j);
	return rc;
}
