/*
 * worker.h - background workers that process stored deliveries after the
 * HTTP answer was sent.
 *
 * Each worker thread loops: claim the oldest `received` delivery
 * (hl_store_claim_next), re-normalize it from the stored body, and hand it
 * to hl_pipeline_process (pipeline.h), which finishes it. A delivery that
 * cannot be re-normalized is finished as failed. When nothing is waiting a
 * worker sleeps until the store signals a new delivery (at most 1 s).
 * Deliveries left `processing` by a dead process are re-queued by
 * hl_store_recover at startup, so each stored delivery is finished once. A
 * finish the store refuses is retried with backoff (hl_pipeline_finish);
 * a claim left unfinished anyway is taken back by a later claim once stale.
 */
#ifndef HL_CORE_WORKER_H
#define HL_CORE_WORKER_H

#include "base/err.h"
#include "config/config.h"
#include "pipeline.h"
#include "store/store.h"

struct hl_workers;

/* Starts n threads. cfg, store and pipeline must outlive the workers. */
int hl_workers_start(struct hl_workers **out, int n, const struct hl_config *cfg,
                     struct hl_store *store, struct hl_pipeline *pipeline, struct hl_err *err);
/* Asks every worker to claim no further delivery (the current one is
 * finished) without waiting for them; NULL is a no-op. */
void hl_workers_quiesce(struct hl_workers *w);
/* Asks every worker to stop, lets each finish its current delivery, joins
 * them and frees. NULL is a no-op. */
void hl_workers_stop(struct hl_workers *w);
/* Deliveries finished by these workers so far. */
long hl_workers_processed(struct hl_workers *w);

/* Processes one claimed delivery (what a worker does per item; for tests). */
int hl_worker_process_one(const struct hl_config *cfg, struct hl_store *store,
                          struct hl_pipeline *pipeline, const struct hl_delivery_record *d);

#endif
