/*
 * worker.c - the worker threads (see worker.h). Invariant: a worker checks
 * the stop flag only between deliveries, so a claimed delivery is always
 * finished (or left `processing` for recovery if the process dies).
 *
 * Finishes go through hl_pipeline_finish: a store that fails for a while
 * (a full disk, a held lock) delays the finish, it does not lose it; one
 * the store still refuses after that is handed to the lease keeper to be
 * given back (hl_store_abandon_claim), so the delivery runs again.
 *
 * Workers run at a lower scheduling priority (nice +WORKER_NICE) than the
 * HTTP threads: answering GitHub within its timeout matters more than how
 * soon a stored delivery is remediated, and under a burst the backlog is
 * durable anyway.
 */
#include "worker.h"

#include "base/clock.h"
#include "base/log.h"

#include "json/fast.h"
#include "json/json.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

struct hl_workers {
	const struct hl_config *cfg;
	struct hl_store *store;
	struct hl_pipeline *pipeline;
	atomic_bool stop;
	atomic_long processed;
	int n;
	pthread_t *threads;
};

/* How long the task's lease is taken to end it (worker_end_task). */
#define WORKER_TASK_LEASE_MS 15000

/*
 * A delivery failed for good: the task it claimed is given up too, or it
 * would wait for a remediation nobody makes (contract section 9: every
 * task ends final or queued). A task with no attempt yet (a claim only)
 * ends skipped with the reason; the first attempt still being prepared
 * ends timed out, the task due at once, so the loop judges it (the next
 * attempt from the stored event, or an escalation saying why). A task
 * the loop or another replica holds, one past its first attempt, or none
 * at all is left alone. Failures are logged.
 */
static void
worker_end_task(struct hl_store *store, const char *task_id, const char *reason)
{
	struct hl_err err = HL_ERR_INIT;
	struct hl_task_record *t = NULL;
	char owner[HL_TASK_ID_MAX + 16], why[160];
	int64_t now = hl_time_wall_ms();
	bool got = false;
	int rc;

	if (!task_id || !*task_id)
		return;
	snprintf(owner, sizeof(owner), "failed:%s", task_id);
	snprintf(why, sizeof(why), "the delivery failed (%s)", reason);
	if (hl_store_task_lease(store, &got, task_id, owner, now, now + WORKER_TASK_LEASE_MS,
	                        &err) < 0 ||
	    !got)
		goto out;
	if ((rc = hl_store_task_get(store, &t, task_id, &err)) < 0 || t->state != HL_TASK_RUNNING) {
		rc = rc == -HL_ENOTFOUND ? 0 : rc;
	} else if (t->n_attempts == 0) {
		rc = hl_store_task_put(store,
		                       &(struct hl_task){ .task_id = task_id,
		                                          .state = HL_TASK_SKIPPED,
		                                          .reason = why,
		                                          .next_check_ms = HL_TASK_NO_CHECK },
		                       &err);
	} else if (t->n_attempts == 1 && t->attempt[0].phase == HL_PHASE_PREPARING) {
		rc = hl_store_attempt_put(store,
		                          &(struct hl_attempt){ .task_id = task_id,
		                                                .n = t->attempt[0].n,
		                                                .kind = t->attempt[0].kind,
		                                                .phase = HL_PHASE_DONE,
		                                                .outcome = HL_OUTCOME_TIMEOUT,
		                                                .reason = why,
		                                                .finished_ms = now },
		                          &err);
		if (rc == 0)
			rc = hl_store_task_schedule(store, task_id, now, &err);
	} else {
		rc = 0;
	}
	if (rc < 0)
		hl_log_kv(HL_LOG_ERROR, "cannot end the task of a failed delivery", "task_id",
		          task_id, "error", err.msg, NULL);
	else if (t && t->state == HL_TASK_RUNNING &&
	         (t->n_attempts == 0 ||
	          (t->n_attempts == 1 && t->attempt[0].phase == HL_PHASE_PREPARING)))
		hl_log_kv(HL_LOG_WARN, "the task of a failed delivery was given up", "task_id",
		          task_id, "reason", why, NULL);
	(void)hl_store_task_release(store, task_id, owner, NULL);
out:
	hl_task_record_free(t);
}

int
hl_worker_process_one(const struct hl_config *cfg, struct hl_store *store,
                      struct hl_pipeline *pipeline, const struct hl_delivery_record *d)
{
	struct hl_err err = HL_ERR_INIT;
	struct hl_event *ev = NULL;
	json_t *payload = NULL;
	const char *reason = NULL;
	int rc;

	hl_log_set_context(d->delivery_id, d->task_id);
	if (hl_pipeline_raw_delivery(d)) {
		/* alerts from running systems: no GitHub event to normalize */
		rc = hl_pipeline_process(pipeline, d, NULL, &err);
		if (rc < 0)
			reason = hl_err_name(-rc);
		goto finish;
	}
	rc = hl_json_fast_parse(&payload, d->body, d->body_len, &err);
	if (rc == 0)
		rc = hl_event_normalize(&ev, d->event_name, payload, &err);
	if (rc < 0) {
		reason = "invalid_payload";
	} else {
		rc = hl_pipeline_process(pipeline, d, ev, &err);
		if (rc < 0)
			reason = hl_err_name(-rc);
	}
finish:
	if (reason) {
		hl_log_kv(HL_LOG_WARN, "delivery failed", "event", d->event_name, "reason", reason,
		          "error", err.msg, NULL);
		/* ECONFLICT: someone else finished it, or the pipeline left it
		 * to the store to give back; nothing left to do. */
		if (rc != -HL_ECONFLICT &&
		    hl_pipeline_finish(store, d->delivery_id,
		                       &(struct hl_delivery_result){ .state = HL_DELIVERY_FAILED,
		                                                     .reason = reason },
		                       &err) < 0) {
			hl_log_kv(HL_LOG_ERROR, "cannot mark the delivery failed", "error", err.msg,
			          NULL);
			/* still ours: given back once the store takes it */
			if (hl_store_abandon_claim(store, d->delivery_id) < 0)
				hl_log_kv(HL_LOG_ERROR, "cannot give the delivery back", "error",
				          "out of memory", NULL);
		} else if (rc != -HL_ECONFLICT) {
			worker_end_task(store, d->task_id, reason);
		}
	} else {
		hl_log_kv(HL_LOG_DEBUG, "delivery processed", "event", d->event_name, NULL);
	}
	hl_event_free(ev);
	json_decref(payload);
	hl_log_set_context(NULL, NULL);
	return rc;
}

#define WORKER_NICE 10

static void *
worker_main(void *arg)
{
	struct hl_workers *w = arg;
	struct hl_delivery_record *d;
	struct hl_err err;
	int rc;

	pthread_setname_np(pthread_self(), "hl-worker");
	/* per-thread on Linux: only this worker is deprioritized */
	(void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), WORKER_NICE);
	while (!atomic_load(&w->stop)) {
		d = NULL;
		err.code = 0;
		err.msg[0] = '\0';
		rc = hl_store_claim_next(w->store, &d, &err);
		if (rc == -HL_ENOTFOUND) {
			hl_store_wait_work(w->store, 1000);
			continue;
		}
		if (rc < 0) {
			hl_error("claiming a delivery failed: %s", err.msg);
			hl_store_wait_work(w->store, 1000);
			continue;
		}
		hl_worker_process_one(w->cfg, w->store, w->pipeline, d);
		atomic_fetch_add(&w->processed, 1);
		hl_delivery_record_free(d);
	}
	return NULL;
}

int
hl_workers_start(struct hl_workers **out, int n, const struct hl_config *cfg,
                 struct hl_store *store, struct hl_pipeline *pipeline, struct hl_err *err)
{
	struct hl_workers *w = calloc(1, sizeof(*w));
	int i;

	if (!w || n < 1 || !(w->threads = calloc((size_t)n, sizeof(pthread_t)))) {
		free(w);
		return hl_err_set(err, n < 1 ? HL_EINVAL : HL_ENOMEM, "cannot start %d workers", n);
	}
	w->cfg = cfg;
	w->store = store;
	w->pipeline = pipeline;
	atomic_init(&w->stop, false);
	atomic_init(&w->processed, 0);
	for (i = 0; i < n; i++) {
		if (pthread_create(&w->threads[i], NULL, worker_main, w) != 0) {
			w->n = i;
			hl_workers_stop(w);
			return hl_err_set(err, HL_EINTERNAL, "cannot start worker thread %d", i);
		}
	}
	w->n = n;
	*out = w;
	return 0;
}

void
hl_workers_quiesce(struct hl_workers *w)
{
	if (!w)
		return;
	/* no hl_store_wake_all: its flag stays set, and would end every
	 * store pause and lock wait of the loop and the workers still
	 * finishing a delivery during the drain; an idle worker sees the
	 * flag within its 1 s wait */
	atomic_store(&w->stop, true);
}

void
hl_workers_stop(struct hl_workers *w)
{
	int i;

	if (!w)
		return;
	atomic_store(&w->stop, true);
	hl_store_wake_all(w->store);
	for (i = 0; i < w->n; i++)
		pthread_join(w->threads[i], NULL);
	free(w->threads);
	free(w);
}

long
hl_workers_processed(struct hl_workers *w)
{
	return atomic_load(&w->processed);
}
