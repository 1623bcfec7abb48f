/*
 * lifecycle.h - the remediation lifecycle as types (contract section 9).
 *
 * A task is one failure being remediated; it moves through the states of
 * enum hl_task_state, and every move goes through hl_task_transition, which
 * refuses the moves the loop must never make (a finished task restarting by
 * itself, a skipped task running). An attempt is one CodeRun (or one re-run
 * of a flaky job) of a task; it ends with one enum hl_attempt_outcome.
 * "Attempt" always means this; a worker taking a stored delivery is a
 * "claim" (store/intake.h).
 *
 * Every enum has a _MAX and an _INVALID value and a name table; names are
 * what the store, the API and the metrics use. Thread-safe (pure functions
 * over constant tables).
 */
#ifndef HL_LIFECYCLE_LIFECYCLE_H
#define HL_LIFECYCLE_LIFECYCLE_H

#include "base/err.h"

#include <stdbool.h>

enum hl_task_state {
	HL_TASK_QUEUED,    /* waiting for a CodeRun slot or the hourly budget */
	HL_TASK_RUNNING,   /* an attempt is being prepared or its CodeRun runs */
	HL_TASK_VERIFYING, /* the CodeRun succeeded; waiting for CI's verdict */
	HL_TASK_SUCCEEDED, /* CI passed after an attempt (final) */
	HL_TASK_ESCALATED, /* the attempts ran out; people were told */
	HL_TASK_STOPPED,   /* /healer stop (final; /healer retry restarts it) */
	HL_TASK_SKIPPED,   /* nothing to remediate: a duplicate or a guard (final) */
	HL_TASK_STATE_MAX,
	HL_TASK_STATE_INVALID = -1,
};

enum hl_attempt_outcome {
	HL_OUTCOME_SUCCESS,          /* CodeRun Succeeded and the job then passed */
	HL_OUTCOME_CI_STILL_FAILING, /* CodeRun Succeeded but the job failed again */
	HL_OUTCOME_AGENT_FAILED,     /* CodeRun Failed */
	HL_OUTCOME_TIMEOUT,          /* no end within HEALER_ATTEMPT_TIMEOUT_MINS */
	HL_OUTCOME_STOPPED,          /* /healer stop */
	HL_OUTCOME_RERUN_PASSED,     /* a flaky job's re-run passed */
	HL_OUTCOME_RERUN_FAILED,     /* a flaky job's re-run failed again */
	HL_OUTCOME_MAX,
	HL_OUTCOME_INVALID = -1,
};

/* What an attempt is. */
enum hl_attempt_kind {
	HL_ATTEMPT_AGENT, /* a CodeRun for an agent */
	HL_ATTEMPT_RERUN, /* GitHub's rerun-failed-jobs of the failing run */
	HL_ATTEMPT_KIND_MAX,
	HL_ATTEMPT_KIND_INVALID = -1,
};

/* Where an unfinished attempt is; finished attempts have an outcome. */
enum hl_attempt_phase {
	HL_PHASE_PREPARING, /* context, prompt and dispatch under way */
	HL_PHASE_PENDING,   /* CodeRun created, not started (or re-run requested) */
	HL_PHASE_RUNNING,   /* CodeRun Running */
	HL_PHASE_VERIFYING, /* CodeRun Succeeded (or re-run requested): waiting for CI */
	HL_PHASE_DONE,      /* outcome decided */
	HL_PHASE_MAX,
	HL_PHASE_INVALID = -1,
};

const char *hl_task_state_name(enum hl_task_state s);
/* HL_TASK_STATE_INVALID for NULL or an unknown name. */
enum hl_task_state hl_task_state_from_name(const char *name);
/* Succeeded, stopped and skipped: the task is finished (only /healer retry
 * moves a stopped one again). */
bool hl_task_state_is_final(enum hl_task_state s);
/* Running or verifying: a CodeRun or a CI verdict is awaited. */
bool hl_task_state_is_active(enum hl_task_state s);

/*
 * Whether a task may move from `from` to `to`. A task is created queued,
 * running or skipped (from == HL_TASK_STATE_INVALID). Legal moves:
 *   queued    -> running, stopped, skipped
 *   running   -> running (the next attempt), verifying, queued (the next
 *                attempt waits for budget), succeeded (a re-run passed),
 *                escalated, stopped, skipped (decided only, or a guard found
 *                the failure already handled before anything ran)
 *   verifying -> succeeded, running, queued, escalated, stopped
 *   escalated -> running, queued (/healer retry after escalation)
 *   stopped   -> running, queued (/healer retry after /healer stop)
 * Staying in the same state is legal for running (the next attempt) only.
 * Returns 0, or -HL_ECONFLICT with err naming both states.
 */
int hl_task_transition(enum hl_task_state from, enum hl_task_state to,
                       struct hl_err *err) HL_MUST_CHECK;

const char *hl_attempt_outcome_name(enum hl_attempt_outcome o);
enum hl_attempt_outcome hl_attempt_outcome_from_name(const char *name);
/* success and rerun_passed. */
bool hl_attempt_outcome_is_success(enum hl_attempt_outcome o);

const char *hl_attempt_kind_name(enum hl_attempt_kind k);
enum hl_attempt_kind hl_attempt_kind_from_name(const char *name);
const char *hl_attempt_phase_name(enum hl_attempt_phase p);
enum hl_attempt_phase hl_attempt_phase_from_name(const char *name);

#endif
