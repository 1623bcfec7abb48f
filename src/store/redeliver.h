/*
 * redeliver.h - the store's record of GitHub webhook deliveries that
 * healer asked GitHub to deliver again (contract section 11), and the one
 * question redelivery asks of the delivery queue: was this delivery ever
 * stored?
 *
 * Once each, across replicas: hl_store_redelivery_claim inserts the guid
 * under a unique key before GitHub is asked, so of two replicas (or a
 * leader that lost its leadership mid-run and its successor) only one
 * gets to ask. A claim whose request GitHub answered it did not take (a
 * rate limit, a 5xx, credentials that may not redeliver) is given back
 * (outcome "retry", counting the requests GitHub did not take), so a later
 * run claims it again; any other end is recorded and never asked again.
 */
#ifndef HL_STORE_REDELIVER_H
#define HL_STORE_REDELIVER_H

#include "store/store.h"

/* One failed GitHub delivery about to be redelivered. Strings borrowed. */
struct hl_redelivery {
	const char *guid;  /* X-GitHub-Delivery of the failed delivery */
	const char *hook;  /* which hook ("repo:o/r:ID", "org:O:ID", "app") */
	int64_t github_id; /* GitHub's id of the delivery (the one to redeliver) */
	const char *event; /* X-GitHub-Event, or NULL */
	int status_code;   /* what the failed delivery got (0: no connection) */
	const char *owner; /* who asks (hl_store_owner) */
};

/* *known is true when a delivery with this id (X-GitHub-Delivery) was
 * ever stored, whatever it became (processed, skipped, duplicate...). */
int hl_store_delivery_known(struct hl_store *s, bool *known, const char *delivery_id,
                            struct hl_err *err) HL_MUST_CHECK;

/* What a claim knows of the earlier requests for its guid. */
struct hl_redelivery_history {
	int not_taken;    /* requests GitHub answered it did not take */
	int64_t first_ms; /* when the guid was first claimed (wall ms) */
	bool pending;     /* not claimed: a request for it began under
	                   * HL_REDELIVERY_STALE_MS ago and has not ended */
};

/* A claim whose request has not ended after this long was cut short (its
 * process died between the claim and GitHub's answer): it is claimed
 * again. */
#define HL_REDELIVERY_STALE_MS (2 * 60 * 1000)

/* Records r as being redelivered (outcome "pending"): *claimed is true
 * when this call recorded it (a new guid, one given back for a retry, or
 * one pending for HL_REDELIVERY_STALE_MS), false when its guid is pending
 * or finished (by this process or another; hist->pending says which).
 * *hist (may be NULL) gets the claimed guid's history (a new one: no
 * request not taken, first claimed now). */
int hl_store_redelivery_claim(struct hl_store *s, bool *claimed, struct hl_redelivery_history *hist,
                              const struct hl_redelivery *r, struct hl_err *err) HL_MUST_CHECK;

/* Ends r's claim (r->guid, pending under r->owner): outcome "requested"
 * (GitHub accepted) or "failed", with a detail (GitHub's message; may be
 * NULL). -HL_ENOTFOUND for an unknown guid; -HL_ECONFLICT when the claim
 * is no longer r->owner's (it went stale and another claimer took it, or
 * it ended): the row is left to its new claimer. */
int hl_store_redelivery_finish(struct hl_store *s, const struct hl_redelivery *r,
                               const char *outcome, const char *detail, struct hl_err *err);

/* Gives back r's claim while it is still pending under r->owner (outcome
 * "retry"), so a later run may claim it again: not_taken counts the
 * request as one GitHub answered it did not take (false: it never reached
 * GitHub, a rate limit); detail is GitHub's message (may be NULL).
 * Unknown, finished or another claimer's: no-op. */
int hl_store_redelivery_release(struct hl_store *s, const struct hl_redelivery *r,
                                bool not_taken, const char *detail, struct hl_err *err);

#endif
