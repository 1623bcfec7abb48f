/*
 * pipeline.h - THE seam between intake and remediation.
 *
 * The worker (worker.h) claims a stored delivery, re-normalizes it from the
 * stored body and calls hl_pipeline_process exactly once per claim. The
 * pipeline decides what to do and RECORDS THE OUTCOME ITSELF by calling
 * hl_store_finish_delivery(store, d->delivery_id, state, outcome, event_json)
 * before returning 0. The default implementation (pipeline.c) records:
 *   - "recorded" for HL_INTENT_TRACK and HL_INTENT_NONE events;
 *   - "queued_for_remediation" for CI_FAILURE, SECURITY, COMMAND, ACTION.
 * The dispatch work replaces the body of hl_pipeline_process with
 * classify -> prompt -> CodeRun (and tasks/attempts via hl_store_task_put /
 * hl_store_attempt_put), keeping this contract.
 *
 * Contract for implementations:
 *  - Return 0 after finishing the delivery; return -HL_E* (err filled)
 *    without finishing it, and the worker marks it failed with the error
 *    code name as the reason.
 *  - A delivery whose process died mid-pipeline is claimed again after
 *    restart (d->attempts > 1): external side effects must be idempotent
 *    (e.g. name the CodeRun from d->task_id and treat "already exists" as
 *    success). hl_store_finish_delivery succeeds once per delivery.
 *  - Called concurrently from cfg->workers threads: the pipeline object is
 *    shared and must be thread-safe (the default one is immutable).
 */
#ifndef HL_CORE_PIPELINE_H
#define HL_CORE_PIPELINE_H

#include "base/err.h"
#include "config/config.h"
#include "event/event.h"
#include "store/store.h"

struct hl_pipeline;

/* cfg and store are borrowed and must outlive the pipeline. */
int hl_pipeline_new(struct hl_pipeline **out, const struct hl_config *cfg, struct hl_store *store,
                    struct hl_err *err);
void hl_pipeline_free(struct hl_pipeline *p);

/* Processes one claimed delivery d whose normalized event is ev (see above). */
int hl_pipeline_process(struct hl_pipeline *p, const struct hl_delivery_record *d,
                        const struct hl_event *ev, struct hl_err *err);

#endif
