/*
 * intake.h - the delivery queue: webhook and sensor deliveries stored
 * durably, deduplicated, and claimed by workers exactly once.
 *
 * Durability: an intake (hl_store_intake_submit / hl_store_insert_delivery)
 * completes only after the transaction holding the delivery was committed
 * AND the log was flushed to disk. Intakes are group-committed in a
 * two-stage pipeline (store.c): a committer thread writes every queued
 * intake in ONE transaction (a bad row does not sink the batch: the
 * backend writes it again with a savepoint per delivery, or has one
 * already), a syncer thread flushes once for all batches written so
 * far and completes them, while the next batch is being written. On SQLite,
 * claims and finishes are not flushed on their own: they survive a process
 * crash, and after a power loss (which ends healer too) they may be redone
 * (the worker is at-least-once there, exactly-once across process crashes);
 * on PostgreSQL every commit is durable when it returns. Bodies are stored compressed
 * (LZ4, or deflate from 64 KiB: store/body.h), encoded on the submitting
 * thread; records handed to the worker always carry the raw bytes.
 *
 * Identity is computed once, at intake: the event's dedup key, its failure
 * key (what one remediation is keyed by) and the task id are stored with
 * the delivery and handed back with each claim.
 *
 * A worker taking a delivery is a claim (counted in claims); a delivery
 * given back after a transient failure waits until its not-before time.
 * A claim names its claimer (the store handle's owner id) and holds the
 * delivery under a lease that the handle's lease keeper renews while the
 * process lives; a delivery whose lease ran out (its claimer died) is
 * claimed again. On PostgreSQL the claims of replicas sharing the database
 * never take the same delivery (FOR UPDATE SKIP LOCKED), and the unique
 * delivery id and event key are the last line of dedup between them.
 *
 * A server's handle hands deliveries straight to its own workers
 * (hl_store_set_handoff): stored already claimed, so the usual delivery
 * costs no claim query and wakes no other replica.
 */
#ifndef HL_STORE_INTAKE_H
#define HL_STORE_INTAKE_H

#include "store/store.h"

/* Life cycle of a stored delivery. */
enum hl_delivery_state {
	HL_DELIVERY_RECEIVED = 0, /* stored, waiting for a worker */
	HL_DELIVERY_PROCESSING,   /* claimed by a worker */
	HL_DELIVERY_PROCESSED,    /* the pipeline finished it */
	HL_DELIVERY_SKIPPED,      /* never processed: skip reason or duplicate event */
	HL_DELIVERY_FAILED,       /* the pipeline gave up on it */
	HL_DELIVERY_STATE_MAX
};

/* The answer given to the sender (contract section 4). */
enum hl_intake_status {
	HL_INTAKE_ACCEPTED = 0,
	HL_INTAKE_SKIPPED,
	HL_INTAKE_DUPLICATE,
};

#define HL_STORE_MAX_BODY (64 * 1024 * 1024) /* larger bodies are refused */

/* One delivery to store. All pointers are borrowed until the intake completes. */
struct hl_delivery_in {
	const char *delivery_id;  /* X-GitHub-Delivery (required, unique) */
	const char *hook_id;      /* X-GitHub-Hook-ID, or NULL */
	const char *source;       /* "webhook", "ci-failure", "security-alert" */
	const char *event_name;   /* required */
	const char *action;       /* payload action, or NULL */
	const char *headers_json; /* request headers as a JSON object, secrets removed */
	const void *body;         /* raw body bytes */
	size_t body_len;
	const char *dedup_key;   /* event identity (hl_event_dedup_key) or NULL */
	const char *failure_key; /* what its remediation is keyed by, or NULL */
	const char *task_id;     /* the task id this event will use, or NULL */
	const char *skip_reason; /* non-NULL: stored as skipped and never processed */
};

/* What the intake decided. */
struct hl_intake_answer {
	enum hl_intake_status status;
	/* For a duplicate, what the first delivery was answered; else == status. */
	enum hl_intake_status original;
	char task_id[HL_TASK_ID_MAX];              /* "" when none */
	char reason[64];                           /* skip reason, "duplicate_delivery",
	                                              "duplicate_event", or "" */
	char duplicate_of[HL_DELIVERY_ID_MAX + 1]; /* event duplicates: the first delivery */
	char first_reason[64]; /* a repeated delivery id: the first answer's reason */
};

/*
 * An asynchronous intake request, owned by the caller. The store fills
 * answer, rc and err, then calls done(req) on a store thread after the
 * commit (rc < 0: nothing was stored, answer is unset). done must be quick
 * and must not call back into the store; it may free req.
 */
struct hl_intake_req {
	struct hl_delivery_in in;
	struct hl_intake_answer answer;
	int rc;
	struct hl_err err;
	void (*done)(struct hl_intake_req *req);
	void *arg;                  /* for the caller */
	struct hl_intake_req *next; /* private to the store */
	void *zbody;                /* private: the encoded body, or NULL */
	size_t zlen;                /* private */
	int zenc;                   /* private: its enum hl_body_encoding */
	bool known; /* private: the event's key was seen committed (most likely a duplicate) */
	/* private: the front end asks the backend to store a delivery that
	 * would wait as already claimed by take_owner until take_until_ms
	 * (it goes to this process's workers without a claim query); the
	 * backend sets taken_id to its row id when it did, and committed */
	bool take;
	const char *take_owner;
	int64_t take_at_ms;
	int64_t take_until_ms;
	int64_t taken_id;
};

/* A stored delivery as the worker sees it; owned, free with hl_delivery_record_free. */
struct hl_delivery_record {
	int64_t id; /* row id, increasing with arrival */
	char *delivery_id;
	char *hook_id; /* may be NULL */
	char *source;
	char *event_name;
	char *action; /* may be NULL */
	char *headers_json;
	char *body; /* NUL-terminated copy of the raw body */
	size_t body_len;
	char *dedup_key;   /* may be NULL */
	char *failure_key; /* may be NULL */
	char *task_id;     /* may be NULL */
	int64_t received_ms;
	int claims; /* claims so far, including this one */
};

/* How a claimed delivery ends (hl_store_finish_delivery). */
struct hl_delivery_result {
	/* PROCESSED, SKIPPED or FAILED; RECEIVED gives it back for another claim */
	enum hl_delivery_state state;
	const char *reason;        /* outcome or reason code, or NULL */
	const char *event_json;    /* the normalized event, stored with it; may be NULL */
	const char *decision_json; /* the decision answered for it; may be NULL */
	int64_t not_before_ms;     /* RECEIVED: no claim before this wall-clock time */
};

/* One stored delivery for status pages (fixed-size, no ownership). */
struct hl_delivery_summary {
	char delivery_id[HL_DELIVERY_ID_MAX + 1];
	char event[65];
	char action[64];
	char source[24];
	char state[16];
	char answer[16];
	char reason[64];
	char task_id[HL_TASK_ID_MAX];
	int64_t received_ms;
	int claims;
};

/* Startup recovery: deliveries left in `processing` by a dead process go
 * back to `received` (deliveries in `received` are queued anyway), and
 * the delivery counters are made to agree with the rows. SQLite has one
 * process per store, so every `processing` delivery is requeued and the
 * counters rebuilt. PostgreSQL is shared: only the claims of dead processes
 * (whose session is gone, so their liveness lock is free) and expired
 * claims are requeued (the lease keeper of every replica does the same
 * every few seconds), and the counters are compared with the rows in a
 * snapshot, without a lock on them, and only a difference is added.
 * *requeued_out (may be NULL) gets the number moved. */
int hl_store_recover(struct hl_store *s, int64_t *requeued_out, struct hl_err *err) HL_MUST_CHECK;

/*
 * Queues an intake for the next group commit and returns at once; req->done
 * runs later. Deduplication, in this order: a known delivery_id answers
 * duplicate with the first answer's task id (reason "duplicate_delivery",
 * nothing stored); else a non-skipped delivery whose dedup_key was already
 * claimed is stored as skipped and answered duplicate (reason
 * "duplicate_event", duplicate_of and task_id of the first); else it is
 * stored as received (queued for the worker) or skipped (skip_reason).
 * After hl_store_close began, done runs at once with rc -HL_EDB.
 */
void hl_store_intake_submit(struct hl_store *s, struct hl_intake_req *req);
/* The same, waiting for the commit; out is written on success. */
int hl_store_insert_delivery(struct hl_store *s, struct hl_intake_answer *out,
                             const struct hl_delivery_in *in, struct hl_err *err) HL_MUST_CHECK;

/*
 * Lets up to max deliveries go straight to this process's workers: one
 * that would wait is stored already claimed by this handle and taken by
 * the next hl_store_claim_next without a query (only while the store is
 * not known to hold older waiting deliveries, and for bodies under
 * 64 KiB). 0 (the default) turns it off: a handle without workers must
 * leave deliveries waiting. Those still in hand at hl_store_close are
 * given back; a process that dies leaves them as expired claims.
 */
int hl_store_set_handoff(struct hl_store *s, int max, struct hl_err *err) HL_MUST_CHECK;

/* Claims the oldest delivery that is received and whose not-before time
 * has come, or processing under an expired lease: marks it processing,
 * claimed by this handle under a new lease, and counts the claim,
 * atomically. Returns -HL_ENOTFOUND when none is waiting. */
int hl_store_claim_next(struct hl_store *s, struct hl_delivery_record **out,
                        struct hl_err *err) HL_MUST_CHECK;
/*
 * Finishes a claimed delivery as result says, storing the normalized event
 * and the decision with it, in one transaction, and ends its lease. A
 * delivery is finished once: when it is no longer `processing`, nothing
 * changes and -HL_ECONFLICT is returned. When the connection to the
 * database was lost, the finish is retried (the work is done; only its
 * record is missing) until it returns, the claim lease runs out, or
 * hl_store_wake_all is called; then -HL_EDB.
 */
int hl_store_finish_delivery(struct hl_store *s, const char *delivery_id,
                             const struct hl_delivery_result *result,
                             struct hl_err *err) HL_MUST_CHECK;
void hl_delivery_record_free(struct hl_delivery_record *d);

/*
 * Queues deliveries again (`healer replay`): with delivery_id, that one
 * delivery, whatever it ended as (processed, skipped, failed), unless it
 * waits already (*n = 0); NULL: every failed delivery. A queued delivery
 * starts over: its claims count from zero and it may be claimed at once.
 * Counters follow; a work signal is sent when any was queued. *n (may be
 * NULL) gets how many. -HL_ENOTFOUND for an unknown delivery id,
 * -HL_ECONFLICT for one being processed, and for a duplicate of an event
 * whose first delivery keeps the body: the message names that delivery,
 * which is the one to replay.
 */
int hl_store_requeue(struct hl_store *s, int64_t *n, const char *delivery_id,
                     struct hl_err *err) HL_MUST_CHECK;

/*
 * Retention: removes at most max deliveries received before before_ms that
 * ended (processed, skipped, failed), oldest first, with their normalized
 * events; the delivery counters keep counting them. Also at most max event
 * keys first seen before before_ms (a later delivery of such an event is
 * new again) and redelivery records requested before it. *removed gets the
 * deliveries removed: fewer than max when no more are that old.
 */
int hl_store_prune(struct hl_store *s, int64_t *removed, int64_t before_ms, int max,
                   struct hl_err *err) HL_MUST_CHECK;

/*
 * After retention: gives at most max_pages of the store's free pages back
 * to the file system; *freed_bytes gets how many bytes that was (fewer
 * than max_pages' worth: none are left). Only a SQLite file converted to
 * auto_vacuum incremental does (the file then shrinks at the next
 * checkpoint; the conversion is an operator's choice, offline, since the
 * page bookkeeping costs intake about 3% CPU); any other SQLite file
 * reuses its free pages, and PostgreSQL's autovacuum reclaims them: both
 * give back nothing here.
 */
int hl_store_compact(struct hl_store *s, int64_t *freed_bytes, int max_pages,
                     struct hl_err *err) HL_MUST_CHECK;

/* The decision stored for a delivery (malloc'd JSON text in *out), or
 * -HL_ENOTFOUND when the delivery is unknown or has none yet. */
int hl_store_delivery_decision(struct hl_store *s, char **out, const char *delivery_id,
                               struct hl_err *err) HL_MUST_CHECK;

/* Deliveries waiting or being processed. */
int hl_store_queue_depth(struct hl_store *s, int64_t *out, struct hl_err *err) HL_MUST_CHECK;
/* Calls fn for every (event, state, reason) with its delivery count; reason
 * is "" when none. Counts are maintained incrementally (no table scan). */
int hl_store_counts(struct hl_store *s,
                    void (*fn)(void *arg, const char *event, const char *state, const char *reason,
                               int64_t n),
                    void *arg, struct hl_err *err) HL_MUST_CHECK;
/* The up to max most recent deliveries, newest first; *n gets how many. */
int hl_store_recent_deliveries(struct hl_store *s, struct hl_delivery_summary *out, size_t max,
                               size_t *n, struct hl_err *err) HL_MUST_CHECK;

const char *hl_delivery_state_name(enum hl_delivery_state st);
const char *hl_intake_status_name(enum hl_intake_status st);

#endif
