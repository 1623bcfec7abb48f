/*
 * pipeline.h - THE seam between intake and remediation.
 *
 * The worker (worker.h) claims a stored delivery, normalizes it from the
 * stored body and calls hl_pipeline_process exactly once per claim. The
 * pipeline decides what to do and RECORDS THE OUTCOME ITSELF by calling
 * hl_store_finish_delivery before returning 0. pipeline.c sends CI
 * failures, security alerts, requested actions and /healer fix|retry
 * commands through the remediator (remediate.h: context -> classify ->
 * prompt -> CodeRun, recorded as a task with its attempt), finishes the
 * delivery with the outcome ("dispatched", "decided", "existing",
 * "skipped", "queued", "rerun") and the decision, and publishes the
 * decision on the store's decision channel (the sensor's synchronous
 * answer, on any replica). A CI result of a job an active task is fixing
 * goes to the loop instead ("attached" for a failure, "ci_result" for a
 * success); /healer commands go to the loop ("command_<what it did>"),
 * and so does a pull request closed or merged (its running remediations
 * stop: "pr_closed_stopped"); other events are "recorded".
 *
 * Contract for implementations:
 *  - Return 0 after finishing the delivery; return -HL_E* (err filled)
 *    without finishing it, and the worker marks it failed with the error
 *    code name as the reason.
 *  - A delivery whose process died mid-pipeline is claimed again after
 *    restart (d->claims > 1): external side effects must be idempotent
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

/* A delivery that fails for a transient reason (an upstream down, the
 * network, the store) is given back with a pause from 1 s doubling to 60 s
 * while it is younger than HL_PIPELINE_KEEP_MS, and at least
 * HL_PIPELINE_MAX_CLAIMS times (a replayed old one); then it fails. */
#define HL_PIPELINE_MAX_CLAIMS 5
#define HL_PIPELINE_KEEP_MS    (60 * 60 * 1000LL)

/* cfg, store, remediator and loop (may be NULL: no loop) are borrowed
 * and must outlive the pipeline. */
struct hl_remediator;
struct hl_loop;
int hl_pipeline_new(struct hl_pipeline **out, const struct hl_config *cfg, struct hl_store *store,
                    struct hl_remediator *remediator, struct hl_loop *loop, struct hl_err *err);
void hl_pipeline_free(struct hl_pipeline *p);

/* How long a finish is retried while the store fails (a full disk, a
 * lock held elsewhere) before it is left to the store's take-back of stale
 * claims. */
#define HL_PIPELINE_FINISH_RETRY_MS (2 * 60 * 1000)

/*
 * hl_store_finish_delivery, retried while the store fails (-HL_EDB,
 * -HL_EIO) with a pause from 50 ms doubling to 5 s, for up to
 * HL_PIPELINE_FINISH_RETRY_MS; logs a warning on the first failure.
 * Other errors (-HL_ECONFLICT: it was finished already) are returned at
 * once. For the worker threads.
 */
int hl_pipeline_finish(struct hl_store *store, const char *delivery_id,
                       const struct hl_delivery_result *r, struct hl_err *err);

/*
 * Alerts from running systems (contract section 14): deliveries whose
 * source is "alertmanager" or "argocd" carry no GitHub event; the worker
 * hands them over with ev NULL (hl_pipeline_raw_delivery) and the pipeline
 * gives them to alerts (src/alerts), finishing them with its outcome
 * ("dispatched", "skipped", "existing", "queued", "resolved", "nothing").
 * A transient failure (the cluster does not answer) keeps the delivery for
 * retry, with the same growing pause, for HL_PIPELINE_KEEP_MS after it
 * arrived. alerts is borrowed; NULL leaves alert deliveries recorded only
 * ("no_processor"). Call before the workers start.
 */
struct hl_alerts;
void hl_pipeline_set_alerts(struct hl_pipeline *p, struct hl_alerts *alerts);
/* True for a delivery the pipeline takes without a normalized event. */
bool hl_pipeline_raw_delivery(const struct hl_delivery_record *d);

/*
 * Processes one claimed delivery d whose normalized event is ev (see
 * above; NULL for a raw delivery). A transient failure (an upstream, the
 * network, the store) gives the delivery back with a not-before time
 * growing with its claims (no worker waits), as HL_PIPELINE_KEEP_MS says.
 * A finish (or give-back) the store refuses through HL_PIPELINE_FINISH_RETRY_MS
 * leaves the claim to the store's lease keeper, which gives the delivery
 * back once the store answers, and returns -HL_ECONFLICT: nothing is left
 * for the worker to do (it must not mark the delivery failed).
 */
int hl_pipeline_process(struct hl_pipeline *p, const struct hl_delivery_record *d,
                        const struct hl_event *ev, struct hl_err *err);

#endif
