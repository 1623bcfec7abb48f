/*
 * lifecycle.c - name tables and the transition table of the remediation
 * lifecycle (see lifecycle.h). The transition table is the single place
 * that says which task state may follow which; the loop, the commands and
 * the store's callers all go through hl_task_transition.
 */
#include "lifecycle.h"

#include <string.h>

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static const char *const task_state_names[HL_TASK_STATE_MAX] = {
	[HL_TASK_QUEUED] = "queued",       [HL_TASK_RUNNING] = "running",
	[HL_TASK_VERIFYING] = "verifying", [HL_TASK_SUCCEEDED] = "succeeded",
	[HL_TASK_ESCALATED] = "escalated", [HL_TASK_STOPPED] = "stopped",
	[HL_TASK_SKIPPED] = "skipped",
};

static const char *const outcome_names[HL_OUTCOME_MAX] = {
	[HL_OUTCOME_SUCCESS] = "success",
	[HL_OUTCOME_CI_STILL_FAILING] = "ci_still_failing",
	[HL_OUTCOME_AGENT_FAILED] = "agent_failed",
	[HL_OUTCOME_TIMEOUT] = "timeout",
	[HL_OUTCOME_STOPPED] = "stopped",
	[HL_OUTCOME_RERUN_PASSED] = "rerun_passed",
	[HL_OUTCOME_RERUN_FAILED] = "rerun_failed",
};

static const char *const kind_names[HL_ATTEMPT_KIND_MAX] = {
	[HL_ATTEMPT_AGENT] = "agent",
	[HL_ATTEMPT_RERUN] = "rerun",
};

static const char *const phase_names[HL_PHASE_MAX] = {
	[HL_PHASE_PREPARING] = "preparing", [HL_PHASE_PENDING] = "pending",
	[HL_PHASE_RUNNING] = "running",     [HL_PHASE_VERIFYING] = "verifying",
	[HL_PHASE_DONE] = "done",
};

/* allowed[from] is a bit set of the states `from` may move to. */
#define BIT(s) (1u << (s))
static const unsigned task_moves[HL_TASK_STATE_MAX] = {
	[HL_TASK_QUEUED] = BIT(HL_TASK_RUNNING) | BIT(HL_TASK_STOPPED) | BIT(HL_TASK_SKIPPED),
	[HL_TASK_RUNNING] = BIT(HL_TASK_RUNNING) | BIT(HL_TASK_VERIFYING) | BIT(HL_TASK_QUEUED) |
	                    BIT(HL_TASK_SUCCEEDED) | BIT(HL_TASK_ESCALATED) | BIT(HL_TASK_STOPPED) |
	                    BIT(HL_TASK_SKIPPED),
	[HL_TASK_VERIFYING] = BIT(HL_TASK_SUCCEEDED) | BIT(HL_TASK_RUNNING) | BIT(HL_TASK_QUEUED) |
	                      BIT(HL_TASK_ESCALATED) | BIT(HL_TASK_STOPPED),
	[HL_TASK_ESCALATED] = BIT(HL_TASK_RUNNING) | BIT(HL_TASK_QUEUED),
	[HL_TASK_SUCCEEDED] = 0,
	/* /healer retry after /healer stop: one more attempt, as after an
	 * escalation */
	[HL_TASK_STOPPED] = BIT(HL_TASK_RUNNING) | BIT(HL_TASK_QUEUED),
	[HL_TASK_SKIPPED] = 0,
};
static const unsigned task_initial =
        BIT(HL_TASK_QUEUED) | BIT(HL_TASK_RUNNING) | BIT(HL_TASK_SKIPPED);

static int
name_find(const char *const *names, size_t n, const char *name)
{
	size_t i;

	for (i = 0; name && i < n; i++)
		if (names[i] && strcmp(names[i], name) == 0)
			return (int)i;
	return -1;
}

const char *
hl_task_state_name(enum hl_task_state s)
{
	return s >= 0 && s < HL_TASK_STATE_MAX ? task_state_names[s] : "invalid";
}

enum hl_task_state
hl_task_state_from_name(const char *name)
{
	return (enum hl_task_state)name_find(task_state_names, N_ELEMS(task_state_names), name);
}

bool
hl_task_state_is_final(enum hl_task_state s)
{
	return s == HL_TASK_SUCCEEDED || s == HL_TASK_STOPPED || s == HL_TASK_SKIPPED;
}

bool
hl_task_state_is_active(enum hl_task_state s)
{
	return s == HL_TASK_RUNNING || s == HL_TASK_VERIFYING;
}

int
hl_task_transition(enum hl_task_state from, enum hl_task_state to, struct hl_err *err)
{
	unsigned allowed;

	if (to < 0 || to >= HL_TASK_STATE_MAX)
		return hl_err_set(err, HL_EINVAL, "no task state %d", (int)to);
	if (from == HL_TASK_STATE_INVALID)
		allowed = task_initial;
	else if (from < 0 || from >= HL_TASK_STATE_MAX)
		return hl_err_set(err, HL_EINVAL, "no task state %d", (int)from);
	else
		allowed = task_moves[from];
	if (!(allowed & BIT(to)))
		return hl_err_set(err, HL_ECONFLICT, "a task cannot move from '%s' to '%s'",
		                  from == HL_TASK_STATE_INVALID ? "new" : hl_task_state_name(from),
		                  hl_task_state_name(to));
	return 0;
}

const char *
hl_attempt_outcome_name(enum hl_attempt_outcome o)
{
	return o >= 0 && o < HL_OUTCOME_MAX ? outcome_names[o] : "invalid";
}

enum hl_attempt_outcome
hl_attempt_outcome_from_name(const char *name)
{
	return (enum hl_attempt_outcome)name_find(outcome_names, N_ELEMS(outcome_names), name);
}

bool
hl_attempt_outcome_is_success(enum hl_attempt_outcome o)
{
	return o == HL_OUTCOME_SUCCESS || o == HL_OUTCOME_RERUN_PASSED;
}

const char *
hl_attempt_kind_name(enum hl_attempt_kind k)
{
	return k >= 0 && k < HL_ATTEMPT_KIND_MAX ? kind_names[k] : "invalid";
}

enum hl_attempt_kind
hl_attempt_kind_from_name(const char *name)
{
	return (enum hl_attempt_kind)name_find(kind_names, N_ELEMS(kind_names), name);
}

const char *
hl_attempt_phase_name(enum hl_attempt_phase p)
{
	return p >= 0 && p < HL_PHASE_MAX ? phase_names[p] : "invalid";
}

enum hl_attempt_phase
hl_attempt_phase_from_name(const char *name)
{
	return (enum hl_attempt_phase)name_find(phase_names, N_ELEMS(phase_names), name);
}
