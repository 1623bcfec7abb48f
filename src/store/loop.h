/*
 * loop.h - the remediation loop's state in the store (contract section 9):
 * which tasks need attention and when, who drives each task, the CodeRun
 * of each attempt, the CI results that belong to a task, the budgets, and
 * a small key/value table (the watch's resume point).
 *
 * Replicas: a task is driven by one process at a time, under a lease
 * (hl_store_task_lease) that expires when its holder dies; every loop
 * write also goes through the ledger's transition check, so a stale
 * holder cannot move a task backwards. Work that only one replica may do
 * at all (the CodeRun watch) has one leader (hl_store_leader); a check
 * and what it allows (one heal CodeRun per pod) can be made under a named
 * lock held across the processes (hl_store_lock_take).
 */
#ifndef HL_STORE_LOOP_H
#define HL_STORE_LOOP_H

#include "store/store.h"

/* A completed CI run of the failing workflow + job, recorded on the task. */
struct hl_ci_result {
	const char *task_id;
	const char *delivery_id; /* the event that reported it, or NULL (GitHub's API) */
	const char *head_sha;
	const char *branch;
	const char *conclusion; /* success, failure, timed_out, ... */
	int64_t run_id, run_attempt, job_id;
	const char *url;
	int64_t completed_ms;
	const char *source; /* "webhook", "api" */
};

/* A CI result as read back; fixed-size strings. */
struct hl_ci_result_record {
	char head_sha[64], branch[256], conclusion[24], url[512], source[16];
	int64_t run_id, run_attempt, job_id, completed_ms;
};

/* Up to max task ids whose next check is due at now_ms (oldest first) into
 * ids (HL_TASK_ID_MAX bytes each); *n gets how many. */
int hl_store_tasks_due(struct hl_store *s, char (*ids)[HL_TASK_ID_MAX], size_t max, size_t *n,
                       int64_t now_ms, struct hl_err *err) HL_MUST_CHECK;
/* Up to max queued task ids in queue order (FIFO). */
int hl_store_tasks_queued(struct hl_store *s, char (*ids)[HL_TASK_ID_MAX], size_t max, size_t *n,
                          struct hl_err *err) HL_MUST_CHECK;
/* Up to max ids of tasks whose memory is still to be written (ended
 * succeeded or escalated since it was last written: the write that ended
 * them marked it), any order. */
int hl_store_tasks_remember(struct hl_store *s, char (*ids)[HL_TASK_ID_MAX], size_t max, size_t *n,
                            struct hl_err *err) HL_MUST_CHECK;
/* Marks task_id's memory written (hl_store_tasks_remember no longer lists
 * it); a task that is not there is no error. */
int hl_store_task_remembered(struct hl_store *s, const char *task_id,
                             struct hl_err *err) HL_MUST_CHECK;
/* The soonest next check of any task (wall ms), or 0 when none is set. */
int hl_store_next_check(struct hl_store *s, int64_t *out, struct hl_err *err) HL_MUST_CHECK;

/*
 * Takes (or renews) the lease on a task for owner until until_ms: *got is
 * true when owner now holds it (it was free, expired at now_ms, or owner's
 * already). hl_store_task_release gives it up (only owner's); a release
 * that fails is harmless (the lease expires), so its result may be ignored.
 */
int hl_store_task_lease(struct hl_store *s, bool *got, const char *task_id, const char *owner,
                        int64_t now_ms, int64_t until_ms, struct hl_err *err) HL_MUST_CHECK;
int hl_store_task_release(struct hl_store *s, const char *task_id, const char *owner,
                          struct hl_err *err);

/*
 * Takes or keeps the leadership called name (e.g. "watch") for this
 * process: *leader is true while it holds it. Call it again at least every
 * ttl_ms / 2 to keep it, and act as leader only while it answers true.
 * On PostgreSQL leadership is a session advisory lock held by the store's
 * own listener connection: the database frees it the moment the leader's
 * process (or its connection) dies, and another replica gets it at its
 * next call; owner and ttl_ms are not needed there. On SQLite (one
 * process per store) the caller is always the leader. -HL_EDB (with
 * *leader false) while the database cannot be reached: a replica cut off
 * from the database must not act as leader.
 */
int hl_store_leader(struct hl_store *s, bool *leader, const char *name, const char *owner,
                    int64_t ttl_ms, struct hl_err *err) HL_MUST_CHECK;

/*
 * A named lock held across every process sharing the store ("heal:pod:NS/POD"):
 * hl_store_lock_take tries for it for at most wait_ms (a few tries a
 * second) and sets *got when this handle now holds it, until
 * hl_store_lock_release. A handle holds a name once: another of its threads
 * taking it waits like another process would. On PostgreSQL it is a
 * session advisory lock ("healer:lock:<name>") on the store's listener
 * connection, so the database frees it the moment the holder's process (or
 * that connection) dies; on SQLite (one process per store) it is held
 * within the handle only. -HL_EINVAL for a name longer than
 * HL_STORE_LOCK_NAME_MAX. At most HL_STORE_MAX_LOCKS names per handle at
 * once (more waits). -HL_EDB (with *got false) while the database cannot
 * be reached. Not under the store mutex: a wait holds up no other store
 * call.
 */
#define HL_STORE_MAX_LOCKS     64
#define HL_STORE_LOCK_NAME_MAX 400 /* bytes of a lock's name */
int hl_store_lock_take(struct hl_store *s, bool *got, const char *name, int wait_ms,
                       struct hl_err *err) HL_MUST_CHECK;
/* Gives a lock taken by hl_store_lock_take back (nothing when not held). */
void hl_store_lock_release(struct hl_store *s, const char *name);
/* True while this handle still holds the lock: on PostgreSQL false once
 * the listener's session was lost (its locks went with it). */
bool hl_store_lock_held(struct hl_store *s, const char *name);

/* Sets when the loop must look at a task again (HL_TASK_NO_CHECK: never),
 * without touching anything else. */
int hl_store_task_schedule(struct hl_store *s, const char *task_id, int64_t next_check_ms,
                           struct hl_err *err) HL_MUST_CHECK;

/* Calls fn for every (agent, failure type, outcome) of finished attempts
 * with its count (for healer_attempts_total; agent "rerun" for re-runs). */
int hl_store_attempt_outcomes(struct hl_store *s,
                              void (*fn)(void *arg, const char *agent, const char *failure_type,
                                         const char *outcome, int64_t n),
                              void *arg, struct hl_err *err) HL_MUST_CHECK;
/* The times to fix (seconds, first failure to verified success) of
 * succeeded tasks, as a histogram: counts[i] tasks took at most bounds[i]
 * (n_bounds entries, ascending), counts[n_bounds] all of them; *sum gets
 * the total seconds. */
int hl_store_time_to_fix(struct hl_store *s, const double *bounds, size_t n_bounds, int64_t *counts,
                         double *sum, struct hl_err *err) HL_MUST_CHECK;

/* The task and attempt number of a CodeRun; -HL_ENOTFOUND when unknown. */
int hl_store_attempt_of_coderun(struct hl_store *s, char *task_id, int *n, const char *coderun_name,
                                struct hl_err *err) HL_MUST_CHECK;

/*
 * The most recent task still being worked on (queued, running, verifying)
 * for the failing workflow + job of repository on branch (the task's
 * branch or its target branch) other than exclude (may be NULL): a new
 * result of that job belongs to it. A NULL workflow matches any (whether a
 * job of that name is being fixed at all); a NULL job matches the tasks of
 * a whole workflow run (a workflow_run failure, no job named).
 * -HL_ENOTFOUND when none.
 */
int hl_store_task_active_for(struct hl_store *s, char *out, const char *repository,
                             const char *branch, const char *workflow, const char *job,
                             const char *exclude, struct hl_err *err) HL_MUST_CHECK;
/* The most recent task of a PR (any state, or only queued, running or
 * verifying ones when active_only); -HL_ENOTFOUND when none. */
int hl_store_task_of_pr(struct hl_store *s, char *out, const char *repository, int64_t pr_number,
                        bool active_only, struct hl_err *err) HL_MUST_CHECK;

/* Up to max ids of a PR's tasks (any state), newest first; *n gets how
 * many, *total how many the PR has in all. */
int hl_store_tasks_of_pr(struct hl_store *s, char (*ids)[HL_TASK_ID_MAX], size_t max, size_t *n,
                         size_t *total, const char *repository, int64_t pr_number,
                         struct hl_err *err) HL_MUST_CHECK;

/* Records a CI result on its task (idempotent per task + delivery id). */
int hl_store_ci_result_add(struct hl_store *s, const struct hl_ci_result *r,
                           struct hl_err *err) HL_MUST_CHECK;
/* The latest CI result of a task completed at or after since_ms, on
 * branch when it is not NULL (or naming none: GitHub's answers); -HL_ENOTFOUND
 * when none. */
int hl_store_ci_result_latest(struct hl_store *s, struct hl_ci_result_record *out,
                              const char *task_id, int64_t since_ms, const char *branch,
                              struct hl_err *err) HL_MUST_CHECK;

/* CodeRuns healer is waiting on (attempts pending or running, all
 * repositories) and attempts started for repository since since_ms. */
int hl_store_budget_usage(struct hl_store *s, int64_t *active_coderuns,
                          int64_t *repo_attempts_since, const char *repository, int64_t since_ms,
                          struct hl_err *err) HL_MUST_CHECK;

/* Why an attempt did not begin (hl_store_attempt_begin); 0 when it did. */
enum hl_budget_wait {
	HL_BUDGET_NONE = 0,
	HL_BUDGET_SLOTS,  /* max_active CodeRuns are in flight */
	HL_BUDGET_HOURLY, /* the repository used its attempts of the last hour */
};

/*
 * Begins attempt a->n of a task when the budgets allow: counting the
 * CodeRuns in flight (attempts preparing, pending or running, all
 * repositories; cap max_active) and the attempts of a->repository started
 * since since_ms (cap max_recent), and inserting the attempt (its phase
 * preparing), are one transaction, so two workers or replicas cannot both
 * take the last slot. *over is HL_BUDGET_NONE when it began (or had
 * begun: an existing attempt is not counted again), else the cap reached;
 * why (why_size bytes) says it in words. A cap of 0 is no cap. When it
 * begins and a->reopen_reason is set, a task still stopped or escalated is
 * running again (that reason, no end time) in the same transaction.
 */
int hl_store_attempt_begin(struct hl_store *s, enum hl_budget_wait *over, char *why,
                           size_t why_size, const struct hl_attempt *a, int max_active,
                           int max_recent, int64_t since_ms, struct hl_err *err) HL_MUST_CHECK;

/* Key/value state (malloc'd value); -HL_ENOTFOUND when unset. */
int hl_store_kv_get(struct hl_store *s, char **out, const char *key,
                    struct hl_err *err) HL_MUST_CHECK;
int hl_store_kv_put(struct hl_store *s, const char *key, const char *value,
                    struct hl_err *err) HL_MUST_CHECK;
/*
 * A hold shared by the replicas (a rate limit's end, wall-clock ms, kept
 * under key as a key/value pair): hl_store_hold_get reads its end into
 * *until_ms (0 when there is none, or the value is not a number);
 * hl_store_hold_put records one ending at until_ms unless the one there
 * ends later (in one statement, so of two replicas' puts the later end
 * stays; an until_ms of 0 or less holds nothing).
 */
int hl_store_hold_get(struct hl_store *s, int64_t *until_ms, const char *key,
                      struct hl_err *err) HL_MUST_CHECK;
int hl_store_hold_put(struct hl_store *s, const char *key, int64_t until_ms,
                      struct hl_err *err) HL_MUST_CHECK;
/*
 * A task id that stands for another task: the id a delivery was answered
 * with when its failure then went to an active task (kept, like the
 * tasks, for good). hl_store_task_alias_get: -HL_ENOTFOUND when alias is
 * no alias.
 */
int hl_store_task_alias_put(struct hl_store *s, const char *alias, const char *task_id,
                            struct hl_err *err) HL_MUST_CHECK;
int hl_store_task_alias_get(struct hl_store *s, char **task_id, const char *alias,
                            struct hl_err *err) HL_MUST_CHECK;
/* Removes the keys starting with prefix (not empty) last written before
 * before_ms (wall clock); *removed (may be NULL) gets how many. */
int hl_store_kv_prune(struct hl_store *s, int64_t *removed, const char *prefix, int64_t before_ms,
                      struct hl_err *err) HL_MUST_CHECK;

#endif
