/*
 * outbox.h - the durable outbox of notifications (contract section 9,
 * escalation): a message is stored before anyone is told, delivered by the
 * outbox thread with retries and backoff, and recorded once delivered or
 * given up. A (task, channel, kind, ref) is enqueued at most once, so an
 * escalation written twice (a restart, a second replica) is sent once; ref
 * tells apart the messages a task really has several of (a reply per
 * comment, an escalation per round: the attempt it came after).
 */
#ifndef HL_STORE_OUTBOX_H
#define HL_STORE_OUTBOX_H

#include "store/store.h"

enum hl_notification_state {
	HL_OUTBOX_PENDING,   /* waiting for (another) delivery attempt */
	HL_OUTBOX_DELIVERED, /* the channel accepted it */
	HL_OUTBOX_FAILED,    /* given up: a permanent error or too many attempts */
	HL_OUTBOX_STATE_MAX,
	HL_OUTBOX_STATE_INVALID = -1,
};

struct hl_notification_in {
	const char *task_id;
	const char *channel; /* "discord", "slack", "email", "github" */
	const char *kind;    /* "escalation", "status", "refusal", ... */
	const char *ref;     /* distinguishes several of one kind (a comment id, an
	                        escalation's round), or NULL */
	const char *payload; /* what to send, ready for the channel */
};

/* A notification to deliver; owned, free with hl_notification_free. */
struct hl_notification {
	int64_t id;
	char *task_id, *channel, *kind, *ref, *payload;
	int attempts;
	int64_t created_ms;
};

/* Enqueues a notification due now. *created (may be NULL) is false when
 * the same (task, channel, kind, ref) was enqueued before. */
int hl_store_outbox_add(struct hl_store *s, bool *created, const struct hl_notification_in *n,
                        struct hl_err *err) HL_MUST_CHECK;
/* Up to max pending notifications due at now_ms, oldest first; *out is an
 * array of n records (release each with hl_notification_release, then free the
 * array). */
int hl_store_outbox_due(struct hl_store *s, struct hl_notification **out, size_t max, size_t *n,
                        int64_t now_ms, struct hl_err *err) HL_MUST_CHECK;
/* Takes notification id for one send by this handle when it is still
 * pending and due at now_ms (*taken): in the same statement its next try
 * moves to the end of the handle's lease (hl_store_set_claim_lease), which
 * the lease keeper renews until hl_store_outbox_update records a result.
 * While the send runs no other outbox finds it due, even one that took
 * its lock once this outbox's lock was lost with its database session; a
 * sender that died is due again when its lease ends. On PostgreSQL the
 * lease is kept by the database's clock (a row under a lease is due by
 * it, not by now_ms), as task leases and delivery claims are, so replicas
 * whose clocks differ agree on it. An outbox that holds
 * the notification's lock (hl_store_lock_take) takes it before a send,
 * since another replica's outbox may have delivered it, or put it off,
 * after this one read it due; *taken is false then. */
int hl_store_outbox_take(struct hl_store *s, bool *taken, int64_t id, int64_t now_ms,
                         struct hl_err *err) HL_MUST_CHECK;

/* What hl_store_outbox_claim found. */
struct hl_outbox_claim {
	bool taken;
	/* the previous take left no result and was another process's (one
	 * that died, or could not record it) once its send may have begun,
	 * which may have arrived */
	bool in_doubt;
	/* the previous take left no result and was this process's own (it
	 * could not write what it knows: a hold, a give-back, a lost result) */
	bool own;
	int attempts; /* the row's attempts, this one included when counted */
};
/* hl_store_outbox_take, which also counts an attempt in the same
 * statement when count (a send follows): a sender that dies during its
 * send has used one, so a message that kills its sender is not tried
 * forever. hl_store_outbox_take counts one too. */
int hl_store_outbox_claim(struct hl_store *s, struct hl_outbox_claim *out, int64_t id,
                          int64_t now_ms, bool count, struct hl_err *err) HL_MUST_CHECK;
/* Records a delivery attempt's result: state, the attempts made so far
 * (never fewer than recorded: an outbox that read the row before another's
 * retries counts from a stale number), when to try again (pending) and the
 * last error (NULL on a clean success; a delivery some recipients refused
 * keeps their text). attempts HL_OUTBOX_GIVE_BACK gives back the attempt
 * the take counted (a rate-limited send, which uses none). */
#define HL_OUTBOX_GIVE_BACK (-1)
int hl_store_outbox_update(struct hl_store *s, int64_t id, enum hl_notification_state state,
                           int attempts, int64_t next_ms, const char *last_error,
                           struct hl_err *err) HL_MUST_CHECK;
/* hl_store_outbox_update that also replaces the payload (what is left to
 * send: an email's recipients that were refused for now); payload NULL
 * keeps it. */
int hl_store_outbox_update_payload(struct hl_store *s, int64_t id, enum hl_notification_state state,
                                   int attempts, int64_t next_ms, const char *last_error,
                                   const char *payload, struct hl_err *err) HL_MUST_CHECK;
/* Calls fn for every (channel, state) with its number of notifications. */
int hl_store_outbox_counts(struct hl_store *s,
                           void (*fn)(void *arg, const char *channel, const char *state, int64_t n),
                           void *arg, struct hl_err *err) HL_MUST_CHECK;
void hl_notification_release(struct hl_notification *n);

const char *hl_notification_state_name(enum hl_notification_state st);
enum hl_notification_state hl_notification_state_from_name(const char *name);

#endif
