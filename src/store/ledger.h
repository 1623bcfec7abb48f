/*
 * ledger.h - the remediation ledger: tasks, their attempts, the decision
 * and evidence behind them, and outcome events.
 *
 * A task is keyed by its task id (answered at intake) and claimed by its
 * failure key (one remediation per failure, however many deliveries report
 * it). Task states and attempt outcomes are the lifecycle's enums
 * (lifecycle/lifecycle.h); every state change the ledger writes passes
 * hl_task_transition inside the same transaction, so an illegal move is
 * refused (-HL_ECONFLICT) whichever process tries it.
 *
 * Records read back are typed (struct hl_task_record); JSON documents are
 * the API layer's business (src/api/).
 */
#ifndef HL_STORE_LEDGER_H
#define HL_STORE_LEDGER_H

#include "lifecycle/lifecycle.h"
#include "store/store.h"

/*
 * A task as written by hl_store_task_claim / hl_store_task_put. NULL
 * strings and zero numbers keep what is stored (on insert: absent).
 */
struct hl_task {
	const char *task_id; /* required */
	const char *dedup_key;
	const char *repository;
	int64_t run_id;
	const char *job;
	const char *branch;
	const char *agent;
	const char *failure_type;
	enum hl_task_state state; /* required */
	const char *reason;       /* why the task is in its state (skipped, escalated...) */
	int attempts;             /* the number of its current attempt */
	const char *coderun_name;
	const char *decision_json; /* the classification/routing decision as JSON text */
	/* what the loop needs for the next attempt */
	const char *kind;          /* "ci", "security", "command", "action", "alert" */
	const char *workflow;      /* the failing workflow's name */
	const char *head_sha;      /* the failing commit */
	int64_t pr_number;         /* the PR concerned, 0 keeps */
	const char *target_branch; /* where the agents push */
	const char *event_json;    /* the originating normalized event */
	/* when the loop must look at the task again (wall ms); 0 keeps what
	 * is stored, HL_TASK_NO_CHECK clears it */
	int64_t next_check_ms;
};

#define HL_TASK_NO_CHECK (-1)

/* One attempt of a task, as written by hl_store_attempt_put (an upsert on
 * (task_id, n); NULL strings, zero times and HL_OUTCOME_INVALID keep what
 * is stored). */
struct hl_attempt {
	const char *task_id;
	int n; /* 1-based */
	enum hl_attempt_kind kind;
	enum hl_attempt_phase phase;
	enum hl_attempt_outcome outcome; /* HL_OUTCOME_INVALID while unfinished */
	const char *agent;
	const char *coderun_name;
	const char *reason;         /* why the outcome (one line) */
	const char *status_message; /* the CodeRun's status.message */
	const char *pr_url;         /* the CodeRun's status.pullRequestUrl */
	int64_t started_ms;         /* 0 on insert means now */
	int64_t finished_ms;
	const char *coderun_phase; /* Pending, Running, Succeeded, Failed as last seen */
	const char *job_name;      /* the CodeRun's status.jobName */
	const char *pod_name;      /* the pod of that Job (the agent's output) */
	int64_t agent_done_ms;     /* when the CodeRun ended (Succeeded or Failed) */
	const char *prompt;        /* the rendered prompt */
	const char *repository;    /* the task's repository (per-repository budgets) */
	/* hl_store_attempt_begin only: a stopped or escalated task given this
	 * attempt runs again, with this reason, in the same transaction */
	const char *reopen_reason;
	/* hl_store_attempt_begin only: when it begins, the task's decision
	 * becomes this (a /healer retry's hint kept with the task for a
	 * restart that resumes the attempt), in the same transaction */
	const char *decision_json;
};

/* An attempt as read back; strings owned by the record (may be NULL). */
struct hl_attempt_record {
	int n;
	enum hl_attempt_kind kind;
	enum hl_attempt_phase phase;
	enum hl_attempt_outcome outcome; /* HL_OUTCOME_INVALID while unfinished */
	char *agent, *coderun_name, *reason, *status_message, *pr_url;
	char *coderun_phase, *job_name, *pod_name;
	int64_t started_ms, finished_ms; /* finished_ms 0 while unfinished */
	int64_t agent_done_ms;           /* 0 while the CodeRun runs */
};

/* A notification of a task as read back (store/outbox.h). */
struct hl_notification_record {
	int64_t id;
	char *channel, *kind, *ref, *state, *last_error;
	int attempts;
	int64_t created_ms, next_ms, delivered_ms;
};

/* A task as read back with its attempts; free with hl_task_record_free. */
struct hl_task_record {
	char *task_id, *dedup_key, *repository, *job, *branch, *agent, *failure_type;
	char *reason, *coderun_name, *decision_json; /* may be NULL */
	int64_t run_id;                              /* 0 when none */
	enum hl_task_state state;
	int attempts;
	int64_t created_ms, updated_ms, finished_ms; /* finished_ms 0 while open */
	char *kind, *workflow, *head_sha, *target_branch, *event_json; /* may be NULL */
	int64_t pr_number, next_check_ms, queued_ms;                   /* 0 when none */
	struct hl_attempt_record *attempt;                             /* ordered by n */
	size_t n_attempts;
	struct hl_notification_record *notification; /* ordered by id */
	size_t n_notifications;
};

/*
 * Claims the remediation of t->dedup_key atomically: when a task with the
 * same task_id or the same dedup_key exists, nothing is written, *created is
 * false and existing (HL_TASK_ID_MAX bytes) gets that task's id; otherwise
 * t is inserted, *created is true and existing gets t->task_id.
 */
int hl_store_task_claim(struct hl_store *s, bool *created, char *existing, const struct hl_task *t,
                        struct hl_err *err) HL_MUST_CHECK;

/* What hl_store_task_find looks for. Tasks that decided nothing (skipped
 * without an agent) never match. */
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
                       const char *exclude_task_id, struct hl_err *err) HL_MUST_CHECK;

/* Which tasks hl_store_task_page returns. Zero/NULL fields do not filter. */
struct hl_task_filter {
	unsigned states; /* a bit (1u << state) per enum hl_task_state; 0: any */
	const char *repository, *agent, *failure_type, *kind;
	int64_t since_ms;   /* created at or after */
	const char *cursor; /* from a previous page's next_cursor, or NULL */
	size_t limit;       /* at most HL_TASK_LIST_MAX; 0: 50 */
	bool by_finished;   /* the last finished first (for ended states); no cursor */
};

#define HL_TASK_LIST_MAX 500
#define HL_CURSOR_MAX    128

/* One task of a list. The names a task carries from its event (repository,
 * branch, workflow, job) and its reason are whole, as stored (NULL when
 * absent), so a list shows what the task's document shows; the short
 * names are fixed-size ("" when absent). Free the strings of a page with
 * hl_task_summaries_release. */
struct hl_task_summary {
	char task_id[HL_TASK_ID_MAX];
	char *repository, *branch, *workflow, *job, *reason;
	char agent[16], failure_type[48], kind[16];
	enum hl_task_state state;
	int attempts;
	int64_t pr_number, created_ms, updated_ms, finished_ms;
};

/*
 * Tasks matching f, newest first (creation time, then task id), at most
 * f->limit; *n gets how many. next_cursor (HL_CURSOR_MAX bytes) gets the
 * cursor of the next page, "" when this was the last. A malformed cursor
 * is HL_EINVAL. Served from indexes: fast at any size. On failure *n is 0
 * and nothing is left to release.
 */
int hl_store_task_page(struct hl_store *s, struct hl_task_summary *out, size_t *n,
                       char *next_cursor, const struct hl_task_filter *f,
                       struct hl_err *err) HL_MUST_CHECK;
/* Frees the strings of n summaries (not the array). */
void hl_task_summaries_release(struct hl_task_summary *list, size_t n);

/* A delivery that carries a task id and waits for a worker. */
struct hl_task_waiting {
	char delivery_id[HL_DELIVERY_ID_MAX + 1];
	char state[16]; /* "received" or "processing" */
	int64_t received_ms;
};

/*
 * The oldest delivery answered with task_id that is still received or
 * processing (its task is not written yet); -HL_ENOTFOUND when none: the
 * delivery was processed (its task, or the task it went to, exists), or
 * it was skipped and starts none. Indexed (deliveries_waiting_task).
 */
int hl_store_task_waiting(struct hl_store *s, struct hl_task_waiting *out, const char *task_id,
                          struct hl_err *err) HL_MUST_CHECK;

/* Inserts or updates a task (keyed by task_id). A state change is checked
 * with hl_task_transition against the stored state: -HL_ECONFLICT when it
 * is illegal (nothing is written). Reaching a final or escalated state
 * records the end time (leaving it clears it); entering queued records the
 * queue time, strictly increasing over all tasks (FIFO). */
int hl_store_task_put(struct hl_store *s, const struct hl_task *t,
                      struct hl_err *err) HL_MUST_CHECK;
/* One task with its attempts; -HL_ENOTFOUND if unknown. */
int hl_store_task_get(struct hl_store *s, struct hl_task_record **out, const char *task_id,
                      struct hl_err *err) HL_MUST_CHECK;
void hl_task_record_free(struct hl_task_record *t);

/* Which tasks hl_store_task_list lists; NULL/0 fields match any. */
struct hl_task_query {
	const char *state;      /* a task state name */
	const char *repository; /* owner/repo */
	const char *agent;
	/* a page after the last task of the previous one (created_ms and
	 * task_id of that task); 0 / NULL: from the newest */
	int64_t before_created_ms;
	const char *before_task_id;
	size_t limit; /* at most this many (1..1000; 0 means 20) */
};

/* The tasks matching q, newest first (by creation, then task id), as an
 * array of *n records without attempts or notifications (n_attempts 0);
 * free it with hl_task_list_free. */
int hl_store_task_list(struct hl_store *s, struct hl_task_record ***out, size_t *n,
                       const struct hl_task_query *q, struct hl_err *err) HL_MUST_CHECK;
void hl_task_list_free(struct hl_task_record **list, size_t n);

/* Calls fn(arg, t, err) for every task q selects, in the list's order, a
 * page of q->limit (0: 20) at a time. Stops at the first call that returns
 * other than 0 and returns that value; returns 0 when every task was seen,
 * < 0 when the store failed (err says why). */
typedef int (*hl_task_each_fn)(void *arg, const struct hl_task_record *t, struct hl_err *err);
int hl_store_task_each(struct hl_store *s, const struct hl_task_query *q, hl_task_each_fn fn,
                       void *arg, struct hl_err *err) HL_MUST_CHECK;

/* The prompt of attempt n (malloc'd), -HL_ENOTFOUND when none. */
int hl_store_attempt_prompt(struct hl_store *s, char **out, const char *task_id, int n,
                            struct hl_err *err) HL_MUST_CHECK;

/* Inserts or updates an attempt (keyed by task_id, n). */
int hl_store_attempt_put(struct hl_store *s, const struct hl_attempt *a,
                         struct hl_err *err) HL_MUST_CHECK;
/* Records an outcome event (task_id or delivery_id may be NULL). */
int hl_store_outcome_add(struct hl_store *s, const char *task_id, const char *delivery_id,
                         const char *outcome, const char *detail, struct hl_err *err) HL_MUST_CHECK;
/* Calls fn for every task state with its number of tasks (kind "state"),
 * and for every attempt outcome with its number of attempts (kind
 * "outcome"): "running" while the attempt is unfinished (phase other than
 * done), "not_run" for a finished attempt without an outcome (decided only,
 * or its CodeRun refused). */
int hl_store_task_counts(struct hl_store *s,
                         void (*fn)(void *arg, const char *kind, const char *name, int64_t n),
                         void *arg, struct hl_err *err) HL_MUST_CHECK;

#endif
