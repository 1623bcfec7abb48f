/*
 * decide.h - the remediation loop's judgement, as a pure function: given a
 * task, its attempts, the latest CI result and the time, what happens
 * next (contract section 9). No I/O and no clock: the driver (driver.c)
 * gathers the inputs and applies the step, so every rule here is tested
 * directly and a replayed input always gives the same step.
 *
 * Outcome of an agent attempt, in order:
 *   CodeRun Failed                        -> agent_failed
 *   CodeRun Succeeded, then the workflow + job completed on the target
 *     branch at another sha than the failing one: success -> success,
 *     anything else -> ci_still_failing
 *   CodeRun Succeeded and no CI result by verify_timeout -> ask GitHub
 *     (ci_asked); still none -> ci_still_failing
 *   CodeRun not ended by attempt_timeout  -> timeout (the CodeRun is deleted)
 *   a task from a running system (kind "alert" or "argocd") has no CI job:
 *   CodeRun Succeeded -> success
 * Outcome of a re-run attempt (flaky runner): the job's next result,
 *   success -> rerun_passed, else rerun_failed; none by verify_timeout ->
 *   ask GitHub, still none -> rerun_failed.
 * After a failing outcome: escalate when the task used its attempts, else
 * retry: the same agent, the runner-up after the same agent failed twice in
 * a row, the classified agent after a failed re-run; a sticky category
 * (security) always keeps its agent.
 */
#ifndef HL_LOOP_DECIDE_H
#define HL_LOOP_DECIDE_H

#include "store/store.h"

#include <stdbool.h>
#include <stdint.h>

struct hl_loop_limits {
	int max_attempts;
	int64_t attempt_timeout_ms;
	int64_t verify_timeout_ms;
	/* a pod alert's Succeeded CodeRun is judged by its alert resolving,
	 * else, after the verify timeout, by the pod's own state (kubernetes
	 * dispatch: the cluster can be asked); false: the agent's word */
	bool verify_pods;
};

/* What the loop knows beside the task record. */
struct hl_loop_input {
	const struct hl_task_record *task;
	/* the latest CI result of the task that may judge the current
	 * attempt (for an agent's, completed once its CodeRun Succeeded; for
	 * a re-run's, since it started), or NULL */
	const struct hl_ci_result_record *ci;
	bool ci_asked; /* GitHub was asked after the verify timeout */
	/* the agents in the classification's order (winner first), for the
	 * runner-up; may be empty (n_ranked 0) */
	const char *const *ranked;
	size_t n_ranked;
	bool sticky; /* the task's category keeps its agent (security) */
	/* the failing run's attempt number: a re-run's result has a higher one
	 * (0: unknown, any result counts) */
	int64_t failing_run_attempt;
	/* the failing job's id: its own result (a check_run and a workflow_job
	 * report the same job, in either order) judges nothing (0: unknown) */
	int64_t failing_job_id;
	const struct hl_loop_limits *lim;
	int64_t now_ms;
};

/* A pod alert's task (kind "alert"): no CI, its pod is what is judged. */
bool hl_loop_task_is_pod_alert(const struct hl_task_record *t);

enum hl_loop_verdict {
	HL_LOOP_WAIT,      /* nothing to do before `until` (0: only when signalled) */
	HL_LOOP_VERIFYING, /* the CodeRun succeeded: wait for CI until `until` */
	HL_LOOP_ASK_CI,    /* the verify timeout passed: ask GitHub for the job's result */
	HL_LOOP_TIMEOUT,   /* the attempt timed out: delete its CodeRun, outcome timeout */
	HL_LOOP_FINISHED,  /* the attempt ended with `outcome`; then `next` */
	HL_LOOP_NOTHING,   /* the task is not the loop's to drive (queued, final, escalated) */
};

enum hl_loop_next {
	HL_NEXT_NONE,
	HL_NEXT_SUCCEED,  /* the task succeeded */
	HL_NEXT_RETRY,    /* start attempt task->attempts + 1 with next_agent */
	HL_NEXT_ESCALATE, /* the attempts ran out: tell people */
};

struct hl_loop_step {
	enum hl_loop_verdict verdict;
	enum hl_attempt_outcome outcome; /* FINISHED, TIMEOUT */
	enum hl_loop_next next;          /* FINISHED, TIMEOUT */
	const char *next_agent;          /* RETRY: borrowed from the input */
	int64_t until;                   /* WAIT, VERIFYING: when to look again */
	char reason[256];                /* one line: why this outcome */
};

void hl_loop_decide(struct hl_loop_step *out, const struct hl_loop_input *in);

/* The agent of the next attempt after the task's attempts so far (see the
 * file comment); NULL when the task has no agent. */
const char *hl_loop_next_agent(const struct hl_task_record *t, const char *const *ranked,
                               size_t n_ranked, bool sticky);

const char *hl_loop_verdict_name(enum hl_loop_verdict v);
const char *hl_loop_next_name(enum hl_loop_next n);

#endif
