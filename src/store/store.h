/*
 * store.h - healer's durable store: webhook deliveries, normalized events,
 * remediation tasks, attempts and outcomes.
 *
 * One interface, two backends selected by URL: "sqlite:/path/healer.db"
 * (embedded, WAL, implemented) and "postgres://..." (shared by replicas;
 * reserved: opening one fails with HL_EUNSUPPORTED for now). Backends sit
 * behind a vtable (store_impl.h) and use portable SQL only: upserts are
 * "INSERT ... ON CONFLICT (...) DO NOTHING / DO UPDATE", which SQLite >= 3.24
 * and PostgreSQL >= 9.5 both accept.
 *
 * Durability: an intake (hl_store_intake_submit / hl_store_insert_delivery)
 * completes only after the transaction holding the delivery was committed
 * AND the log was flushed to disk (fdatasync of the SQLite WAL). Intakes
 * are group-committed in a two-stage pipeline (store.c): a committer thread
 * writes every queued intake in ONE transaction (one savepoint each, so one
 * bad row does not sink the batch), a syncer thread flushes once for all
 * batches written so far and completes them, while the next batch is being
 * written. Background operations (claim, finish, tasks) are not flushed on
 * their own: they survive a process crash, and after a power loss they may
 * be redone (the worker is at-least-once there, exactly-once across
 * process crashes). Bodies of 512 bytes and more are stored deflated (zlib,
 * level 1) on the submitting thread; records handed to the worker always
 * carry the raw bytes.
 *
 * Thread-safety: every function may be called from any thread. The backend
 * connection(s) are guarded by one store mutex; intake batches, worker
 * claims and status queries are serialized on it.
 */
#ifndef HL_STORE_STORE_H
#define HL_STORE_STORE_H

#include "base/err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hl_store;

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

#define HL_DELIVERY_ID_MAX 128                /* longer ids are refused by the store */
#define HL_STORE_MAX_BODY  (64 * 1024 * 1024) /* larger bodies are refused */
#define HL_TASK_ID_MAX     96

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
};

/*
 * An asynchronous intake request, owned by the caller. The store fills
 * answer, rc and err, then calls done(req) on the committer thread after the
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
	void *zbody;                /* private: the deflated body, or NULL */
	size_t zlen;                /* private */
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
	char *dedup_key; /* may be NULL */
	char *task_id;   /* may be NULL */
	int64_t received_ms;
	int attempts; /* claims so far, including this one */
};

/* A remediation task row (filled by the dispatch work). Strings may be NULL. */
struct hl_task {
	const char *task_id;
	const char *dedup_key;
	const char *repository;
	int64_t run_id;
	const char *job;
	const char *branch;
	const char *agent;
	const char *failure_type;
	const char *status; /* e.g. "pending", "running", "succeeded", "failed", "escalated" */
	const char *coderun_name;
	const char *decision_json; /* the classification/routing decision as JSON text */
};

/* One attempt of a task. */
struct hl_attempt {
	const char *task_id;
	int n; /* 1-based */
	const char *agent;
	const char *coderun_name;
	const char *outcome; /* NULL while running */
	int64_t started_ms;
	int64_t finished_ms; /* 0 while running */
};

/*
 * Opens the store named by url ("sqlite:PATH"; the directory must exist),
 * applies pending migrations, and starts the committer thread. Does not
 * re-queue interrupted deliveries: call hl_store_recover for that.
 * Errors: HL_EINVAL (bad url), HL_EUNSUPPORTED (postgres), HL_EDB.
 */
int hl_store_open(struct hl_store **out, const char *url, struct hl_err *err);
/* Completes every queued intake, stops the committer and closes. NULL is a no-op. */
void hl_store_close(struct hl_store *s);

/* Applies embedded migrations not yet in schema_migrations (idempotent);
 * *applied_out (may be NULL) gets how many ran. hl_store_open calls it. */
int hl_store_migrate(struct hl_store *s, int *applied_out, struct hl_err *err);
/* The schema version after migrations. */
int hl_store_schema_version(struct hl_store *s, int *out, struct hl_err *err);

/* Startup recovery: deliveries left in `processing` by a dead process go
 * back to `received` (deliveries in `received` are queued anyway).
 * *requeued_out (may be NULL) gets the number moved. */
int hl_store_recover(struct hl_store *s, int64_t *requeued_out, struct hl_err *err);

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
                             const struct hl_delivery_in *in, struct hl_err *err);

/* Claims the oldest received delivery: marks it processing and counts the
 * attempt, atomically. Returns -HL_ENOTFOUND when none is waiting. */
int hl_store_claim_next(struct hl_store *s, struct hl_delivery_record **out, struct hl_err *err);
/*
 * Finishes a claimed delivery: state (PROCESSED, SKIPPED or FAILED) and a
 * reason/outcome code, plus the normalized event as JSON text (may be NULL)
 * stored in the events table, in one transaction. A delivery is finished
 * once: when it is no longer `processing`, nothing changes and
 * -HL_ECONFLICT is returned. To give a delivery back, pass
 * HL_DELIVERY_RECEIVED (it is re-queued).
 */
int hl_store_finish_delivery(struct hl_store *s, const char *delivery_id,
                             enum hl_delivery_state state, const char *reason,
                             const char *event_json, struct hl_err *err);
void hl_delivery_record_free(struct hl_delivery_record *d);

/* Blocks until an intake stored a received delivery since the last call,
 * timeout_ms passes, or hl_store_wake_all is called. Returns true when work
 * may be waiting. For worker threads. */
bool hl_store_wait_work(struct hl_store *s, int timeout_ms);
/* Wakes every hl_store_wait_work caller (shutdown). */
void hl_store_wake_all(struct hl_store *s);

/* Readiness probe: 0 when the backend answers a trivial query. */
int hl_store_ping(struct hl_store *s, struct hl_err *err);
/* Deliveries waiting or being processed. */
int hl_store_queue_depth(struct hl_store *s, int64_t *out, struct hl_err *err);

/* Calls fn for every (event, state, reason) with its delivery count; reason
 * is "" when none. Counts are maintained incrementally (no table scan). */
int hl_store_counts(struct hl_store *s,
                    void (*fn)(void *arg, const char *event, const char *state, const char *reason,
                               int64_t n),
                    void *arg, struct hl_err *err);
/* Appends up to limit most recent deliveries (newest first) to the JSON
 * array arr: {delivery_id, event, action, source, state, answer, reason,
 * task_id, received_at, attempts}. */
int hl_store_recent(struct hl_store *s, json_t *arr, int limit, struct hl_err *err);

/*
 * Claims the remediation of t->dedup_key atomically: when a task with the
 * same task_id or the same dedup_key exists, nothing is written, *created is
 * false and existing (HL_TASK_ID_MAX bytes) gets that task's id; otherwise
 * t is inserted, *created is true and existing gets t->task_id.
 */
int hl_store_task_claim(struct hl_store *s, bool *created, char *existing, const struct hl_task *t,
                        struct hl_err *err);

/* What hl_store_task_find looks for. Tasks whose status is "skipped" or
 * "existing" (they remediated nothing) never match. */
enum hl_task_find {
	HL_TASK_FIND_ANY = 0,   /* any task of (repository, run_id) */
	HL_TASK_FIND_RUN_LEVEL, /* a task of (repository, run_id) without a job */
	HL_TASK_FIND_OTHER_RUN, /* a task of (repository, branch) for a run other than
	                           run_id, created at or after since_ms */
};

/*
 * Finds the most recent task matching mode, other than exclude_task_id (may
 * be NULL), and writes its id into out (HL_TASK_ID_MAX bytes). branch is
 * used by HL_TASK_FIND_OTHER_RUN only. Returns -HL_ENOTFOUND when none.
 */
int hl_store_task_find(struct hl_store *s, char *out, const char *repository, const char *branch,
                       int64_t run_id, enum hl_task_find mode, int64_t since_ms,
                       const char *exclude_task_id, struct hl_err *err);

/* Inserts or updates a remediation task (keyed by task_id). */
int hl_store_task_put(struct hl_store *s, const struct hl_task *t, struct hl_err *err);
/* Inserts or updates an attempt (keyed by task_id, n). */
int hl_store_attempt_put(struct hl_store *s, const struct hl_attempt *a, struct hl_err *err);
/* Records an outcome (task_id or delivery_id may be NULL). */
int hl_store_outcome_add(struct hl_store *s, const char *task_id, const char *delivery_id,
                         const char *outcome, const char *detail, struct hl_err *err);
/* Calls fn for every task status with its number of tasks, and for every
 * attempt outcome ("running" while unfinished) with its number of attempts. */
int hl_store_task_counts(struct hl_store *s,
                         void (*fn)(void *arg, const char *kind, const char *name, int64_t n),
                         void *arg, struct hl_err *err);
/* One task with its attempts as a new JSON object; -HL_ENOTFOUND if unknown. */
int hl_store_task_json(struct hl_store *s, json_t **out, const char *task_id, struct hl_err *err);

const char *hl_delivery_state_name(enum hl_delivery_state st);
const char *hl_intake_status_name(enum hl_intake_status st);

#endif
