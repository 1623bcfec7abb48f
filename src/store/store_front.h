/*
 * store_front.h - the store front end's state, shared by its files
 * (private to src/store): store.c (the handle, signals and the lease
 * keeper), store_intake.c (the group-commit pipeline and the delivery
 * queue), store_ledger.c (tasks and attempts) and store_loop.c.
 */
#ifndef HL_STORE_STORE_FRONT_H
#define HL_STORE_STORE_FRONT_H

#include "store/loop.h"
#include "store_impl.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define STORE_MAX_LISTENERS 8
#define STORE_OWNER_MAX     96
#define STORE_KNOWN_KEYS    16384 /* slots of the known event keys (a power of 2) */

/* A task lease this handle took (hl_store_task_lease) and has not released:
 * the keeper renews it for span_ms at every round. */
struct store_held {
	char *task_id, *owner;
	int64_t span_ms;
};

struct hl_store {
	struct hl_store_backend *b;
	const struct hl_store_ops *ops;
	pthread_mutex_t db_lock; /* guards b */
	unsigned flags;          /* enum hl_store_open_flags */
	int migrated;            /* migrations this handle's open applied */
	char owner[STORE_OWNER_MAX];
	_Atomic int64_t claim_lease_ms;

	pthread_mutex_t k_lock; /* the lease keeper; guards the fields below */
	pthread_cond_t k_cond;
	bool k_stop;
	bool k_wake;        /* run now: claims were abandoned */
	char **k_abandoned; /* delivery ids of claims to give back */
	size_t k_n_abandoned, k_cap_abandoned;
	struct store_held *k_held; /* task leases taken here, renewed until released */
	size_t k_n_held, k_cap_held;
	pthread_t keeper;
	bool keeper_started;

	pthread_mutex_t c_lock; /* guards the fields below */
	char **c_ids;           /* the claims this handle holds: only these are renewed */
	size_t c_n, c_cap;
	bool c_lost; /* one could not be recorded (out of memory): renew them all */
	/* the notification this handle's outbox is sending (0: none): the
	 * only one whose lease the keeper renews */
	_Atomic int64_t o_sending;

	pthread_mutex_t q_lock; /* guards the fields below */
	pthread_cond_t q_cond;  /* committer: work queued or stop */
	struct hl_intake_req *q_head, *q_tail;
	bool stopping;
	pthread_t committer;
	bool committer_started;
	bool committer_done; /* the committer exited; the syncer may too */

	pthread_mutex_t s_lock; /* syncer: batches written, waiting for the flush */
	pthread_cond_t s_cond;
	struct hl_intake_req *s_head, *s_tail;
	int s_queued; /* received deliveries among them */
	pthread_t syncer;
	bool syncer_started;

	pthread_mutex_t w_lock; /* worker wake-up */
	pthread_cond_t w_cond;
	uint64_t w_seq; /* bumped by every HL_CHANNEL_WORK signal and hand-off */
	bool w_wake_all;

	/* The hand-off (store_intake.c): deliveries stored already claimed by
	 * this process, waiting for its workers. */
	pthread_mutex_t h_lock; /* guards the fields below */
	struct hl_delivery_record **h_ring;
	int h_max;             /* capacity; 0: no hand-off (no workers here) */
	int h_first;           /* oldest record's index */
	int h_len;             /* records waiting */
	int h_reserved;        /* slots promised to batches not yet completed */
	uint64_t h_db_seq;     /* bumped by every HL_CHANNEL_WORK signal */
	uint64_t h_db_seen;    /* the last one a claim found the store empty after */
	int64_t h_db_tried_ms; /* when a claim last asked the store */

	/* Hashes of event keys this process saw committed, one per slot
	 * (direct-mapped, 0: empty). Lossy both ways, so only a hint: a
	 * delivery whose key is here is most likely a duplicate, which keeps
	 * no body, so its body is not compressed (store_intake.c). */
	_Atomic uint64_t known_keys[STORE_KNOWN_KEYS];

	/* named locks this handle holds (hl_store_lock_take) */
	pthread_mutex_t n_lock;                                      /* guards the field below */
	char n_held[HL_STORE_MAX_LOCKS][HL_STORE_LOCK_NAME_MAX + 1]; /* "" free */

	pthread_mutex_t l_lock; /* listeners */
	struct {
		hl_store_listener_fn fn;
		void *arg;
	} listeners[STORE_MAX_LISTENERS];
	int n_listeners;
};

/* Gives one claim of this process back to the store (waiting, due now);
 * the backend's finish result (store_intake.c). */
int hl_store_give_back(struct hl_store *s, const char *delivery_id);

/* Runs expr (a backend call) under the store mutex and returns its result. */
#define STORE_CALL(s, expr)                          \
	do {                                         \
		int rc_;                             \
		pthread_mutex_lock(&(s)->db_lock);   \
		rc_ = (expr);                        \
		pthread_mutex_unlock(&(s)->db_lock); \
		return rc_;                          \
	} while (0)

/* Task leases the keeper renews (store.c): hl_store_task_lease records
 * the lease it took, hl_store_task_release forgets it before releasing it
 * (the keeper renews under k_lock, so never after the forgetting). */
void hl_store_hold_task(struct hl_store *s, const char *task_id, const char *owner,
                        int64_t span_ms);
void hl_store_unhold_task(struct hl_store *s, const char *task_id, const char *owner);

/* Hands a signal to this process's listeners (the backend's sink). */
void hl_store_deliver(void *store, enum hl_store_channel ch, const char *payload);

/* Waits up to ms or until hl_store_wake_all; false after hl_store_wake_all. */
bool hl_store_pause(struct hl_store *s, int ms);

/* Starts / stops the intake pipeline threads (store_intake.c). */
int hl_store_intake_start(struct hl_store *s, struct hl_err *err);
void hl_store_intake_stop(struct hl_store *s);
/* Gives the deliveries still waiting in the hand-off back to the store
 * (called by hl_store_close once the intake has stopped). */
void hl_store_handoff_release(struct hl_store *s);

#endif
