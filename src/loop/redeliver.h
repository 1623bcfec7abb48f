/*
 * redeliver.h - asks GitHub to deliver again the webhook deliveries that
 * failed while healer could not take them (contract section 11). GitHub
 * never redelivers by itself.
 *
 * The hook: GITHUB_HOOK_ID with GITHUB_HOOK_REPOSITORY (a repository hook)
 * or GITHUB_HOOK_ORG (an organization hook); without GITHUB_HOOK_ID but
 * with GitHub App credentials, the App's own hook (/app/hook, with the
 * App's JWT). Neither, or HEALER_REDELIVER_INTERVAL_MINS=0: off.
 *
 * A pass lists the hook's deliveries newest first back to where the last
 * pass got to (less a margin; the first pass goes back 72 hours, GitHub's
 * redelivery window), at most 1000, and asks GitHub to redeliver each
 * delivery that failed (status_code not 2xx), whose guid no attempt in
 * the listing delivered with a 2xx, that the store never saw (no stored
 * delivery has that X-GitHub-Delivery), and that was not asked for
 * before (hl_store_redelivery_claim: once each, across replicas). A pass
 * runs at start and every HEALER_REDELIVER_INTERVAL_MINS, only on the
 * replica leading "redeliver" (hl_store_leader); where the last pass got
 * to is kept in the store, so a new leader continues from there.
 *
 * A rate limit ends the pass early and gives back the claim it was
 * making (the request never reached GitHub); the next pass lists from
 * the same point again.
 */
#ifndef HL_LOOP_REDELIVER_H
#define HL_LOOP_REDELIVER_H

#include "base/buf.h"
#include "base/err.h"
#include "config/config.h"
#include "store/store.h"

#include <stdint.h>

struct hl_redeliver;

/* What one pass did. */
struct hl_redeliver_pass {
	int64_t listed;    /* deliveries listed */
	int64_t failed;    /* of them failed and never delivered (per guid) */
	int64_t stored;    /* ... of which the store had the guid anyway */
	int64_t claimed;   /* ... asked before (by this replica or another) */
	int64_t requested; /* redeliveries GitHub accepted (202) */
	int64_t refused;   /* redeliveries GitHub refused or whose answer was lost */
	bool complete;     /* listed to the end (not stopped by a rate limit or error) */
	bool more;         /* older deliveries than those listed are left for the
	                    * next pass, due at once */
};

/*
 * Starts the redelivery thread. *out is NULL (and 0 returned) when
 * redelivery is off. cfg and store are borrowed and must outlive it.
 * Errors: HL_EINVAL (no GitHub client can be built), HL_ENOMEM.
 */
int hl_redeliver_start(struct hl_redeliver **out, const struct hl_config *cfg,
                       struct hl_store *store, struct hl_err *err) HL_MUST_CHECK;

/* Stops the thread (a pass under way finishes its current request) and
 * frees. NULL is a no-op. */
void hl_redeliver_stop(struct hl_redeliver *r);

/*
 * Runs one pass now on the calling thread, leader or not (the claims
 * still keep each guid to one request). *out (may be NULL) gets what it
 * did. Errors from the store or from listing the deliveries (HL_EAUTH,
 * HL_ENOTFOUND for an unknown hook, HL_EUPSTREAM, ...).
 */
int hl_redeliver_run(struct hl_redeliver *r, struct hl_redeliver_pass *out, struct hl_err *err);

/*
 * Appends healer_redeliveries_total{result="requested"|"failed"} (this
 * process's requests) and healer_redeliver_passes_total{result="ok"|
 * "error"} to out in Prometheus text. r may be NULL (redelivery off):
 * the counters are then all zero.
 */
void hl_redeliver_metrics(struct hl_redeliver *r, struct hl_buf *out);

#endif
