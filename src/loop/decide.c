/*
 * decide.c - the loop's judgement (see decide.h). Pure: reads its input,
 * writes its step, nothing else.
 */
#include "decide.h"

#include "base/str.h"

#include <stdio.h>
#include <string.h>

static const struct hl_attempt_record *
decide_current(const struct hl_task_record *t)
{
	size_t i;

	for (i = t->n_attempts; i > 0; i--)
		if (t->attempt[i - 1].n == t->attempts)
			return &t->attempt[i - 1];
	return t->n_attempts ? &t->attempt[t->n_attempts - 1] : NULL;
}

static bool
decide_eq(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

/* Tasks from running systems (an alert, an ArgoCD application) have no CI
 * job to verify a fix with. */
static bool
decide_has_ci(const struct hl_task_record *t)
{
	return !(decide_eq(t->kind, "alert") || decide_eq(t->kind, "argocd"));
}

bool
hl_loop_task_is_pod_alert(const struct hl_task_record *t)
{
	return decide_eq(t->kind, "alert");
}

const char *
hl_loop_next_agent(const struct hl_task_record *t, const char *const *ranked, size_t n_ranked,
                   bool sticky)
{
	const struct hl_attempt_record *last = NULL, *prev = NULL;
	size_t i;

	/* the last two agent attempts */
	for (i = t->n_attempts; i > 0; i--) {
		const struct hl_attempt_record *a = &t->attempt[i - 1];
		/* one still being prepared has not run (nor failed) yet */
		if (a->kind != HL_ATTEMPT_AGENT || a->phase == HL_PHASE_PREPARING)
			continue;
		if (!last)
			last = a;
		else if (!prev) {
			prev = a;
			break;
		}
	}
	if (!last || !last->agent)
		return t->agent; /* a re-run failed: the classified agent takes over */
	if (sticky)
		return last->agent;
	if (prev && decide_eq(prev->agent, last->agent) &&
	    !hl_attempt_outcome_is_success(prev->outcome)) {
		for (i = 0; i < n_ranked; i++)
			if (ranked[i] && !decide_eq(ranked[i], last->agent))
				return ranked[i];
	}
	return last->agent;
}

/* The step after a finished attempt. */
static void
decide_after(struct hl_loop_step *out, const struct hl_loop_input *in,
             enum hl_attempt_outcome outcome)
{
	const struct hl_task_record *t = in->task;

	out->outcome = outcome;
	if (hl_attempt_outcome_is_success(outcome)) {
		out->next = HL_NEXT_SUCCEED;
	} else if (outcome == HL_OUTCOME_STOPPED) {
		out->next = HL_NEXT_NONE;
	} else if (t->attempts >= in->lim->max_attempts) {
		out->next = HL_NEXT_ESCALATE;
	} else {
		out->next = HL_NEXT_RETRY;
		out->next_agent = hl_loop_next_agent(t, in->ranked, in->n_ranked, in->sticky);
	}
}

/* A CI result that judges the attempt: for an agent, one of another commit
 * than the failing one (the agent's push); for a re-run, any. */
static bool
decide_ci_counts(const struct hl_loop_input *in, const struct hl_attempt_record *a,
                 const struct hl_ci_result_record *ci)
{
	const struct hl_task_record *t = in->task;

	if (!ci || !ci->conclusion[0])
		return false;
	if (in->failing_job_id > 0 && ci->job_id == in->failing_job_id)
		return false; /* the failure itself, reported once more */
	if (a->kind == HL_ATTEMPT_RERUN)
		return !in->failing_run_attempt || !ci->run_attempt ||
		       ci->run_attempt > in->failing_run_attempt;
	/* an agent pushing to a branch of its own (fix/... off main) is judged
	 * there: the task's branch failing again meanwhile (someone else's
	 * commit) is the current CI status, not the agent's result */
	if (t->target_branch && t->branch && strcmp(t->target_branch, t->branch) != 0 &&
	    ci->branch[0] && strcmp(ci->branch, t->target_branch) != 0)
		return false;
	return !(t->head_sha && ci->head_sha[0] && strcmp(ci->head_sha, t->head_sha) == 0);
}

/* What CI runs for t: its job, or its workflow (a whole run's task). */
static const char *
decide_what(const struct hl_task_record *t)
{
	if (hl_loop_task_is_pod_alert(t))
		return "the pod";
	return t->job ? t->job : t->workflow ? t->workflow : "the job";
}

static void
decide_judge_ci(struct hl_loop_step *out, const struct hl_loop_input *in,
                const struct hl_attempt_record *a)
{
	const struct hl_ci_result_record *ci = in->ci;
	bool passed = strcmp(ci->conclusion, "success") == 0;
	bool rerun = a->kind == HL_ATTEMPT_RERUN;

	out->verdict = HL_LOOP_FINISHED;
	/* "clippy passed at 0123456789ab", "clippy failed again: failure at ..." */
	if (hl_loop_task_is_pod_alert(in->task))
		snprintf(
		        out->reason, sizeof(out->reason), "%s",
		        passed ? "the alert did not resolve, but the pod is healthy since the fix"
		               : "the alert did not resolve and the pod still fails since the fix");
	else
		snprintf(out->reason, sizeof(out->reason), "%s %s%s%s%.12s", decide_what(in->task),
		         passed ? "passed" : "failed again: ", passed ? "" : ci->conclusion,
		         ci->head_sha[0] ? " at " : "", ci->head_sha);
	decide_after(out, in,
	             rerun ? (passed ? HL_OUTCOME_RERUN_PASSED : HL_OUTCOME_RERUN_FAILED)
	                   : (passed ? HL_OUTCOME_SUCCESS : HL_OUTCOME_CI_STILL_FAILING));
}

static void decide_step(struct hl_loop_step *out, const struct hl_loop_input *in);

void
hl_loop_decide(struct hl_loop_step *out, const struct hl_loop_input *in)
{
	size_t n, valid;

	decide_step(out, in);
	/* the reason quotes names and a CodeRun's message into a fixed
	 * buffer: a character the cut split is left out (the store keeps
	 * text, PostgreSQL refuses half a character, and the API and the
	 * notifications show it) */
	n = strlen(out->reason);
	valid = hl_utf8_valid_len(out->reason, n);
	if (valid < n && n - valid < 4)
		out->reason[valid] = '\0';
}

static void
decide_step(struct hl_loop_step *out, const struct hl_loop_input *in)
{
	const struct hl_task_record *t = in->task;
	const struct hl_attempt_record *a;
	int64_t now = in->now_ms;

	memset(out, 0, sizeof(*out));
	out->outcome = HL_OUTCOME_INVALID;
	if (t->state != HL_TASK_RUNNING && t->state != HL_TASK_VERIFYING) {
		out->verdict = HL_LOOP_NOTHING;
		return;
	}
	a = decide_current(t);
	if (!a) {
		out->verdict = HL_LOOP_NOTHING;
		snprintf(out->reason, sizeof(out->reason), "the task has no attempt yet");
		return;
	}
	/* an attempt judged before a crash: only its consequence is left */
	if (a->phase == HL_PHASE_DONE) {
		out->verdict = HL_LOOP_FINISHED;
		snprintf(out->reason, sizeof(out->reason), "%s", a->reason ? a->reason : "");
		if (a->kind == HL_ATTEMPT_AGENT && a->outcome == HL_OUTCOME_INVALID) {
			/* ended without an outcome: its CodeRun was refused (a 422,
			 * a 403, no CRD; remediate.c). Another attempt would be
			 * refused alike: people must fix the cluster. */
			out->next = HL_NEXT_ESCALATE;
			return;
		}
		decide_after(out, in, a->outcome);
		return;
	}
	if (a->kind == HL_ATTEMPT_RERUN) {
		if (decide_ci_counts(in, a, in->ci)) {
			decide_judge_ci(out, in, a);
		} else if (now >= a->started_ms + in->lim->verify_timeout_ms) {
			if (!in->ci_asked) {
				out->verdict = HL_LOOP_ASK_CI;
				return;
			}
			out->verdict = HL_LOOP_FINISHED;
			snprintf(out->reason, sizeof(out->reason),
			         "no result of the re-run within %lld minutes",
			         (long long)(in->lim->verify_timeout_ms / 60000));
			decide_after(out, in, HL_OUTCOME_RERUN_FAILED);
		} else {
			out->verdict = HL_LOOP_WAIT;
			out->until = a->started_ms + in->lim->verify_timeout_ms;
		}
		return;
	}
	if (decide_eq(a->coderun_phase, "Failed")) {
		out->verdict = HL_LOOP_FINISHED;
		snprintf(out->reason, sizeof(out->reason), "the CodeRun failed%s%s",
		         a->status_message ? ": " : "", a->status_message ? a->status_message : "");
		decide_after(out, in, HL_OUTCOME_AGENT_FAILED);
		return;
	}
	if (decide_eq(a->coderun_phase, "Succeeded") && !decide_has_ci(t) &&
	    !(in->lim->verify_pods && hl_loop_task_is_pod_alert(t))) {
		/* an alert's remediation with nothing to ask: the agent's word */
		out->verdict = HL_LOOP_FINISHED;
		snprintf(out->reason, sizeof(out->reason), "the CodeRun succeeded");
		decide_after(out, in, HL_OUTCOME_SUCCESS);
		return;
	}
	if (decide_eq(a->coderun_phase, "Succeeded")) {
		int64_t done = a->agent_done_ms ? a->agent_done_ms : now;
		int64_t deadline = done + in->lim->verify_timeout_ms;

		if (decide_ci_counts(in, a, in->ci)) {
			decide_judge_ci(out, in, a);
		} else if (now >= deadline) {
			if (!in->ci_asked) {
				out->verdict = HL_LOOP_ASK_CI;
				return;
			}
			out->verdict = HL_LOOP_FINISHED;
			if (hl_loop_task_is_pod_alert(t))
				snprintf(
				        out->reason, sizeof(out->reason),
				        "the alert did not resolve within %lld minutes of the fix, "
				        "and the pod could not be read",
				        (long long)(in->lim->verify_timeout_ms / 60000));
			else
				snprintf(
				        out->reason, sizeof(out->reason),
				        "no CI run of %s passed on %s within %lld minutes of the fix",
				        decide_what(t),
				        t->target_branch ? t->target_branch : "the branch",
				        (long long)(in->lim->verify_timeout_ms / 60000));
			decide_after(out, in, HL_OUTCOME_CI_STILL_FAILING);
		} else {
			out->verdict = HL_LOOP_VERIFYING;
			out->until = deadline;
		}
		return;
	}
	/* pending or running */
	if (now >= a->started_ms + in->lim->attempt_timeout_ms) {
		out->verdict = HL_LOOP_TIMEOUT;
		snprintf(out->reason, sizeof(out->reason),
		         "the CodeRun did not finish within %lld minutes",
		         (long long)(in->lim->attempt_timeout_ms / 60000));
		decide_after(out, in, HL_OUTCOME_TIMEOUT);
		return;
	}
	out->verdict = HL_LOOP_WAIT;
	out->until = a->started_ms + in->lim->attempt_timeout_ms;
}

const char *
hl_loop_verdict_name(enum hl_loop_verdict v)
{
	static const char *const names[] = { "wait",    "verifying", "ask_ci",
		                             "timeout", "finished",  "nothing" };

	return (unsigned)v < sizeof(names) / sizeof(names[0]) ? names[v] : "invalid";
}

const char *
hl_loop_next_name(enum hl_loop_next n)
{
	static const char *const names[] = { "none", "succeed", "retry", "escalate" };

	return (unsigned)n < sizeof(names) / sizeof(names[0]) ? names[n] : "invalid";
}
