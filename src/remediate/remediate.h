/*
 * remediate.h - from an accepted event to one CodeRun: deduplicate, gather
 * context in parallel, classify, render the agent's prompt, dispatch, and
 * record the task with its decision and evidence.
 *
 * Exactly once: a remediation is keyed by the failure's identity
 * (hl_event_failure_key: one per repository + run + job), claimed in the
 * store atomically before any side effect, and its CodeRun is named from
 * that key, so a second claim, a concurrent worker or a restart mid-way all
 * end as "existing", never as a second CodeRun. Two more guards from the
 * design: a CodeRun still Pending/Running for the same workflow run (read
 * from the dispatch target, the source of truth after a restart) makes the
 * event "existing"; a remediation on the same branch for another run within
 * HEALER_TIME_WINDOW_MINS makes it "skipped".
 *
 * A struct hl_remediator is shared by the worker threads: it is immutable
 * after hl_remediator_new and its clients are thread-safe.
 */
#ifndef HL_REMEDIATE_REMEDIATE_H
#define HL_REMEDIATE_REMEDIATE_H

#include "base/err.h"
#include "config/config.h"
#include "event/event.h"
#include "store/store.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct hl_remediator;

/* The outcome of one remediation, as the sensor's answer needs it. */
struct hl_remediation {
	char task_id[96];
	char agent[16]; /* "" when no decision was made */
	char failure_type[48];
	char coderun_name[64];
	char dedup_status[16]; /* "new", "existing", "skipped" */
	char reason[192];      /* why existing/skipped, or "" */
	char outcome[32];      /* "dispatched", "decided" (dispatch none), "existing", "skipped",
	                          "queued" (over budget), "rerun" (a flaky runner's re-run),
	                          "refused" (the API refused the CodeRun: reason says why) */
};

/* What the loop knows for a later attempt (or a queued first one). */
struct hl_attempt_plan {
	int n;                             /* the attempt's number (1 = first) */
	const struct hl_task_record *task; /* the task with its attempts so far */
	const char *agent;                 /* NULL: the classification's */
	const char *failure_type;          /* NULL: the classification's */
	const char *hint;                  /* a human's /healer hint, or NULL */
	const char *hint_author;           /* who asked for it (/healer retry), or NULL */
	const char *agent_pod;             /* the previous attempt's pod (its output), or NULL */
	int64_t current_job_id;            /* the job whose log shows the current failure, or 0 */
	const char *ci_status;             /* one line on the current CI status, or NULL */
	const char *failure_output;        /* why the previous attempt failed, or NULL */
};

/* Builds the shared clients from cfg: the classifier (HEALER_RULES_FILE or
 * the built-in rules), the prompt set, the GitHub client, the Kubernetes
 * client when a cluster is configured, and the dispatcher. store and cfg are
 * borrowed and must outlive the remediator. */
int hl_remediator_new(struct hl_remediator **out, const struct hl_config *cfg,
                      struct hl_store *store, struct hl_err *err);
void hl_remediator_free(struct hl_remediator *r);

/*
 * Remediates ev (intent CI_FAILURE, SECURITY, ACTION or COMMAND fix/retry)
 * under task_id and failure_key, the identity decided at intake and stored
 * with the delivery (failure_key NULL: derived from ev). Starts attempt 1
 * of the task, or queues the task when a budget is used up (outcome
 * "queued"). A CI failure classified infra_runner is re-run through GitHub
 * before an agent is spent (outcome "rerun"). *out is filled on success.
 * Errors are infrastructure failures (store, dispatch target) after which
 * the delivery may be retried: every step before them is idempotent.
 */
int hl_remediate(struct hl_remediator *r, struct hl_remediation *out, const struct hl_event *ev,
                 const char *task_id, const char *failure_key, struct hl_err *err) HL_MUST_CHECK;

/*
 * Whether a pull request (GitHub's PR object) comes from a fork of
 * repository: its head.repo is another repository, or null (a fork since
 * deleted). Its head ref then names a branch of the fork, not of
 * repository. A PR object without head.repo is taken as repository's own.
 */
bool hl_remediate_pr_from_fork(const json_t *pr, const char *repository);

/*
 * Starts attempt plan->n of a claimed task. A task whose kind has a
 * registered handler (hl_remediator_set_kind_handler) goes to it; any other
 * is rebuilt from the task's stored event:
 * context (with, for n > 1, the previous attempt's output, the commits
 * since the failing sha and the current failure's log), the prompt
 * (ci/retry.hbs from the second attempt on, carrying every previous
 * attempt) and a CodeRun named for the attempt. Idempotent like
 * hl_remediate.
 */
int hl_remediate_attempt(struct hl_remediator *r, struct hl_remediation *out,
                         const struct hl_task_record *task, const struct hl_attempt_plan *plan,
                         struct hl_err *err) HL_MUST_CHECK;

/*
 * An attempt function for tasks of one kind whose stored event is not a
 * GitHub event (an alert from a running system): it makes attempt plan->n
 * of task, as hl_remediate_attempt does for CI tasks (idempotent, records
 * the task and the attempt), and fills *out. arg is the one registered.
 */
typedef int (*hl_remediate_kind_fn)(void *arg, struct hl_remediation *out,
                                    const struct hl_task_record *task,
                                    const struct hl_attempt_plan *plan, struct hl_err *err);

/*
 * Registers fn for the tasks whose kind is `kind` ("alert", "argocd"):
 * hl_remediate_attempt hands those tasks to it (the loop's retries and its
 * start of a queued task). At most HL_REMEDIATE_MAX_KINDS kinds; registering
 * a kind again replaces it. Call before the remediator is shared (the loop
 * starts). kind is copied; arg is borrowed.
 */
#define HL_REMEDIATE_MAX_KINDS 4
int hl_remediator_set_kind_handler(struct hl_remediator *r, const char *kind,
                                   hl_remediate_kind_fn fn, void *arg,
                                   struct hl_err *err) HL_MUST_CHECK;

/* The remediator's configuration and store (borrowed), for kind handlers
 * that share its budgets. */
const struct hl_config *hl_remediator_config(const struct hl_remediator *r);

/* How many creates of an attempt's CodeRun in a row answered 401, 403
 * (not a quota) or 404 make a refusal, and after how long without one the
 * count starts again. */
#define HL_REMEDIATE_DENIED_TRIES     5
#define HL_REMEDIATE_DENIED_FORGET_MS (60 * 60 * 1000LL)

/*
 * True when the create of the CodeRun of attempt n of task_id failed (*rc)
 * for a reason retrying cannot fix: the manifest is refused (400/422, or
 * healer's own check) at once; creating not allowed (401/403) or no such
 * resource (404: the CRD or the namespace is missing) once that persists
 * for HL_REMEDIATE_DENIED_TRIES creates of the attempt in a row (counted by
 * this process), so a token being rotated, or RBAC or the CRD being
 * applied again, passes. Before that *rc and err become HL_EUPSTREAM,
 * retried like 5xx, 429 and transport errors: a delivery after its
 * growing pause (1 s doubling: the fifth try after 15 s at least), a
 * loop's attempt a minute later (4 minutes). Thread-safe.
 */
bool hl_remediate_refused(const char *task_id, int n, int *rc, struct hl_err *err);

/*
 * Attempt n of task_id ends because its CodeRun was refused
 * (hl_remediate_refused; err says why and is consumed): the attempt is
 * done without an outcome (no agent ran), its reason ("the CodeRun was
 * refused: ...", also written to reason, size bytes) quotes the API, and
 * the task is made due, so the loop escalates it: people must fix the
 * cluster (decide.c). Without this the attempt stayed unfinished and the
 * task running, holding a CodeRun slot, until the attempt timeout, and
 * every retry then failed the same way, once a minute, for ever. Returns 0
 * or a store error.
 */
int hl_remediate_record_refusal(struct hl_remediator *r, char *reason, size_t size,
                                const char *task_id, int n, const char *agent,
                                const char *repository, const char *prompt,
                                struct hl_err *err) HL_MUST_CHECK;

/*
 * Takes a slot for attempt n of a task when the budgets allow
 * (HEALER_MAX_ACTIVE_CODERUNS, HEALER_MAX_ATTEMPTS_PER_HOUR of repository;
 * none in dispatch mode none): the attempt is recorded (preparing) in the
 * same transaction that counts, so concurrent workers cannot exceed a cap.
 * *over is true when a cap is reached; why (size bytes) says which. A
 * reopen_reason (may be NULL) runs a stopped or escalated task again with
 * it, in that transaction too (hl_store_attempt_begin).
 */
int hl_remediate_begin(struct hl_remediator *r, enum hl_budget_wait *over, char *why, size_t size,
                       const char *task_id, int n, const char *repository, const char *agent,
                       const char *reopen_reason, struct hl_err *err) HL_MUST_CHECK;
/* hl_remediate_begin that, when the attempt begins, also sets the task's
 * decision to decision_json (may be NULL: kept) in that transaction. */
int hl_remediate_begin_keep(struct hl_remediator *r, enum hl_budget_wait *over, char *why,
                            size_t size, const char *task_id, int n, const char *repository,
                            const char *agent, const char *reopen_reason, const char *decision_json,
                            struct hl_err *err) HL_MUST_CHECK;

#endif
