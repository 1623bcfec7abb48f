/*
 * test_decide.c - the loop's judgement (src/loop/decide.c): every outcome
 * of contract section 9 from the inputs that produce it, the retry agent
 * rules, and the escalation after the last attempt.
 */
#include "base/str.h"
#include "loop/decide.h"

/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <stdio.h>
#include <string.h>

#define MIN 60000

static const struct hl_loop_limits lim = { 3, 60 * MIN, 45 * MIN };

struct fx {
	struct hl_task_record t;
	struct hl_attempt_record a[5];
	struct hl_ci_result_record ci;
	struct hl_loop_input in;
	struct hl_loop_step st;
};

static char failing_sha[] = "aaaa", clippy[] = "clippy", feat[] = "feat";

static void
fx_init(struct fx *f, int n_attempts)
{
	static char rex[] = "rex";
	int i;

	memset(f, 0, sizeof(*f));
	f->t.state = HL_TASK_RUNNING;
	f->t.agent = rex;
	f->t.head_sha = failing_sha;
	f->t.job = clippy;
	f->t.target_branch = feat;
	f->t.attempt = f->a;
	f->t.n_attempts = (size_t)n_attempts;
	f->t.attempts = n_attempts;
	for (i = 0; i < n_attempts; i++) {
		f->a[i].n = i + 1;
		f->a[i].kind = HL_ATTEMPT_AGENT;
		f->a[i].phase = i + 1 < n_attempts ? HL_PHASE_DONE : HL_PHASE_RUNNING;
		f->a[i].outcome = i + 1 < n_attempts ? HL_OUTCOME_AGENT_FAILED : HL_OUTCOME_INVALID;
		f->a[i].agent = rex;
		f->a[i].started_ms = 1000 * MIN;
	}
	f->in.task = &f->t;
	f->in.lim = &lim;
	f->in.now_ms = 1001 * MIN;
}

static void
fx_ci(struct fx *f, const char *sha, const char *conclusion)
{
	memset(&f->ci, 0, sizeof(f->ci));
	snprintf(f->ci.head_sha, sizeof(f->ci.head_sha), "%s", sha);
	snprintf(f->ci.conclusion, sizeof(f->ci.conclusion), "%s", conclusion);
	f->in.ci = &f->ci;
}

static void
decide(struct fx *f)
{
	hl_loop_decide(&f->st, &f->in);
}

static void
test_decide_running_waits_for_its_timeout(void **state)
{
	struct fx f;

	(void)state;
	fx_init(&f, 1);
	decide(&f);
	assert_int_equal(f.st.verdict, HL_LOOP_WAIT);
	assert_int_equal(f.st.until, 1060 * MIN);
	f.in.now_ms = 1060 * MIN;
	decide(&f);
	assert_int_equal(f.st.verdict, HL_LOOP_TIMEOUT);
	assert_int_equal(f.st.outcome, HL_OUTCOME_TIMEOUT);
	assert_int_equal(f.st.next, HL_NEXT_RETRY);
	assert_non_null(strstr(f.st.reason, "60 minutes"));
}

static void
test_decide_failed_coderun_is_agent_failed_with_its_message(void **state)
{
	struct fx f;

	(void)state;
	fx_init(&f, 1);
	f.a[0].coderun_phase = "Failed";
	f.a[0].status_message = "cargo not found";
	decide(&f);
	assert_int_equal(f.st.verdict, HL_LOOP_FINISHED);
	assert_int_equal(f.st.outcome, HL_OUTCOME_AGENT_FAILED);
	assert_int_equal(f.st.next, HL_NEXT_RETRY);
	assert_string_equal(f.st.next_agent, "rex");
	assert_non_null(strstr(f.st.reason, "cargo not found"));
}

/* A long message of two-byte characters: the reason's buffer cuts one in
 * two, and the half is left out (the reason stays UTF-8). */
static void
test_decide_failed_coderun_reason_is_cut_between_characters(void **state)
{
	char message[601];
	struct fx f;
	size_t i, n;

	(void)state;
	/* "the CodeRun failed: xx" is 22 bytes: the 255th is a first half */
	memcpy(message, "xx", 2);
	for (i = 2; i + 1 < sizeof(message); i += 2)
		memcpy(message + i, "\xc3\xa9", 2); /* U+00E9 */
	message[sizeof(message) - 1] = '\0';
	fx_init(&f, 1);
	f.a[0].coderun_phase = "Failed";
	f.a[0].status_message = message;
	decide(&f);
	assert_int_equal(f.st.outcome, HL_OUTCOME_AGENT_FAILED);
	n = strlen(f.st.reason);
	assert_true(n > sizeof(f.st.reason) - 4);
	assert_int_equal(hl_utf8_valid_len(f.st.reason, n), n);
	assert_memory_equal(f.st.reason + n - 2, "\xc3\xa9", 2);
}

static void
test_decide_success_needs_ci_at_another_sha(void **state)
{
	struct fx f;

	(void)state;
	fx_init(&f, 1);
	f.a[0].coderun_phase = "Succeeded";
	f.a[0].agent_done_ms = 1001 * MIN;
	decide(&f);
	assert_int_equal(f.st.verdict, HL_LOOP_VERIFYING);
	assert_int_equal(f.st.until, 1046 * MIN);
	/* the failing sha again says nothing about the fix */
	fx_ci(&f, failing_sha, "success");
	decide(&f);
	assert_int_equal(f.st.verdict, HL_LOOP_VERIFYING);
	fx_ci(&f, "bbbb", "success");
	decide(&f);
	assert_int_equal(f.st.verdict, HL_LOOP_FINISHED);
	assert_int_equal(f.st.outcome, HL_OUTCOME_SUCCESS);
	assert_int_equal(f.st.next, HL_NEXT_SUCCEED);
	/* the reason reads as one sentence (it is shown in the task's
	 * document, the status reply and the escalation) */
	assert_string_equal(f.st.reason, "clippy passed at bbbb");
	fx_ci(&f, "bbbb", "failure");
	decide(&f);
	assert_int_equal(f.st.outcome, HL_OUTCOME_CI_STILL_FAILING);
	assert_int_equal(f.st.next, HL_NEXT_RETRY);
	assert_string_equal(f.st.reason, "clippy failed again: failure at bbbb");
}

static void
test_decide_alert_tasks_succeed_with_their_coderun(void **state)
{
	static char alert[] = "alert";
	struct fx f;

	(void)state;
	fx_init(&f, 1);
	f.t.kind = alert;
	f.a[0].coderun_phase = "Succeeded";
	decide(&f);
	assert_int_equal(f.st.verdict, HL_LOOP_FINISHED);
	assert_int_equal(f.st.outcome, HL_OUTCOME_SUCCESS);
	assert_int_equal(f.st.next, HL_NEXT_SUCCEED);
}

/* With a cluster to ask, a pod alert's Succeeded CodeRun is no verdict: the
 * task verifies (its alert resolving ends it), and past the verify timeout
 * the pod's state judges: still failing is a retry */
static void
test_decide_pod_alerts_verified_by_their_pod(void **state)
{
	static const struct hl_loop_limits pods = { 3, 60 * MIN, 45 * MIN, true };
	static char alert[] = "alert";
	struct hl_ci_result_record ci = { .conclusion = "failure" };
	struct fx f;

	(void)state;
	fx_init(&f, 1);
	f.in.lim = &pods;
	f.t.kind = alert;
	f.t.head_sha = NULL;
	f.a[0].coderun_phase = "Succeeded";
	f.a[0].agent_done_ms = 1001 * MIN;
	f.in.now_ms = 1002 * MIN;
	decide(&f);
	assert_int_equal(f.st.verdict, HL_LOOP_VERIFYING);
	f.in.now_ms = 1046 * MIN;
	decide(&f);
	assert_int_equal(f.st.verdict, HL_LOOP_ASK_CI);
	f.in.ci_asked = true;
	f.in.ci = &ci;
	decide(&f);
	assert_int_equal(f.st.verdict, HL_LOOP_FINISHED);
	assert_int_equal(f.st.outcome, HL_OUTCOME_CI_STILL_FAILING);
	assert_int_equal(f.st.next, HL_NEXT_RETRY);
	assert_non_null(strstr(f.st.reason, "pod still fails"));
	snprintf(ci.conclusion, sizeof(ci.conclusion), "success");
	decide(&f);
	assert_int_equal(f.st.outcome, HL_OUTCOME_SUCCESS);
}

static void
test_decide_verify_timeout_asks_github_then_fails(void **state)
{
	struct fx f;

	(void)state;
	fx_init(&f, 1);
	f.a[0].coderun_phase = "Succeeded";
	f.a[0].agent_done_ms = 1001 * MIN;
	f.in.now_ms = 1046 * MIN;
	decide(&f);
	assert_int_equal(f.st.verdict, HL_LOOP_ASK_CI);
	f.in.ci_asked = true;
	decide(&f);
	assert_int_equal(f.st.verdict, HL_LOOP_FINISHED);
	assert_int_equal(f.st.outcome, HL_OUTCOME_CI_STILL_FAILING);
	assert_non_null(strstr(f.st.reason, "no CI run"));
}

static void
test_decide_last_attempt_escalates(void **state)
{
	struct fx f;

	(void)state;
	fx_init(&f, 3);
	f.a[2].coderun_phase = "Failed";
	decide(&f);
	assert_int_equal(f.st.outcome, HL_OUTCOME_AGENT_FAILED);
	assert_int_equal(f.st.next, HL_NEXT_ESCALATE);
}

static void
test_decide_runner_up_after_two_failures_of_one_agent(void **state)
{
	static const char *const ranked[] = { "rex", "atlas", "bolt" };
	static char cipher[] = "cipher";
	struct fx f;

	(void)state;
	fx_init(&f, 2);
	f.a[1].coderun_phase = "Failed";
	f.in.ranked = ranked;
	f.in.n_ranked = 3;
	decide(&f);
	assert_int_equal(f.st.next, HL_NEXT_RETRY);
	assert_string_equal(f.st.next_agent, "atlas");
	/* one failure is not enough to switch */
	fx_init(&f, 1);
	f.a[0].coderun_phase = "Failed";
	f.in.ranked = ranked;
	f.in.n_ranked = 3;
	decide(&f);
	assert_string_equal(f.st.next_agent, "rex");
	/* security stays with its agent */
	fx_init(&f, 2);
	f.a[0].agent = f.a[1].agent = f.t.agent = cipher;
	f.a[1].coderun_phase = "Failed";
	f.in.ranked = ranked;
	f.in.n_ranked = 3;
	f.in.sticky = true;
	decide(&f);
	assert_string_equal(f.st.next_agent, "cipher");
}

/* An attempt still being prepared (left so by a crash: no CodeRun yet)
 * has not failed: the agent after one real failure stays the same. */
static void
test_decide_preparing_attempt_is_no_failure(void **state)
{
	static const char *const ranked[] = { "rex", "atlas", "bolt" };
	struct fx f;

	(void)state;
	fx_init(&f, 2);
	f.a[0].phase = HL_PHASE_DONE;
	f.a[1].phase = HL_PHASE_PREPARING;
	f.t.attempts = 1;
	assert_string_equal(hl_loop_next_agent(&f.t, ranked, 3, false), "rex");
	/* once it ran and failed, the runner-up takes over */
	f.a[1].phase = HL_PHASE_DONE;
	f.a[1].outcome = HL_OUTCOME_AGENT_FAILED;
	f.t.attempts = 2;
	assert_string_equal(hl_loop_next_agent(&f.t, ranked, 3, false), "atlas");
}

static void
test_decide_rerun_outcomes(void **state)
{
	static char bolt[] = "bolt";
	struct fx f;

	(void)state;
	fx_init(&f, 1);
	f.t.agent = bolt;
	f.a[0].kind = HL_ATTEMPT_RERUN;
	f.a[0].agent = NULL;
	f.a[0].phase = HL_PHASE_VERIFYING;
	decide(&f);
	assert_int_equal(f.st.verdict, HL_LOOP_WAIT);
	/* the original failure reported again (its check run twin) is not the re-run */
	f.in.failing_run_attempt = 1;
	fx_ci(&f, failing_sha, "failure");
	f.ci.run_attempt = 1;
	decide(&f);
	assert_int_equal(f.st.verdict, HL_LOOP_WAIT);
	/* ... also as a check_run, which names no run attempt: the job is the
	 * failing one (an Actions check run's id is its job's) */
	f.in.failing_job_id = 7001;
	fx_ci(&f, failing_sha, "failure");
	f.ci.job_id = 7001;
	decide(&f);
	assert_int_equal(f.st.verdict, HL_LOOP_WAIT);
	/* an agent's attempt is not judged by it either */
	f.a[0].kind = HL_ATTEMPT_AGENT;
	f.a[0].coderun_phase = "Succeeded";
	f.a[0].agent_done_ms = 1001 * MIN;
	fx_ci(&f, "bbbb", "failure");
	f.ci.job_id = 7001;
	decide(&f);
	assert_int_equal(f.st.verdict, HL_LOOP_VERIFYING);
	f.a[0].kind = HL_ATTEMPT_RERUN;
	f.a[0].coderun_phase = NULL;
	f.a[0].agent_done_ms = 0;
	/* a re-run runs at the same sha, as the run's next attempt */
	fx_ci(&f, failing_sha, "success");
	f.ci.run_attempt = 2;
	decide(&f);
	assert_int_equal(f.st.outcome, HL_OUTCOME_RERUN_PASSED);
	assert_int_equal(f.st.next, HL_NEXT_SUCCEED);
	fx_ci(&f, failing_sha, "failure");
	f.ci.run_attempt = 2;
	decide(&f);
	assert_int_equal(f.st.outcome, HL_OUTCOME_RERUN_FAILED);
	assert_int_equal(f.st.next, HL_NEXT_RETRY);
	assert_string_equal(f.st.next_agent, "bolt");
}

static void
test_decide_done_attempt_resumes_its_consequence(void **state)
{
	struct fx f;

	(void)state;
	fx_init(&f, 1);
	f.a[0].phase = HL_PHASE_DONE;
	f.a[0].outcome = HL_OUTCOME_SUCCESS;
	decide(&f);
	assert_int_equal(f.st.verdict, HL_LOOP_FINISHED);
	assert_int_equal(f.st.next, HL_NEXT_SUCCEED);
	f.t.state = HL_TASK_ESCALATED;
	decide(&f);
	assert_int_equal(f.st.verdict, HL_LOOP_NOTHING);
	f.t.state = HL_TASK_QUEUED;
	decide(&f);
	assert_int_equal(f.st.verdict, HL_LOOP_NOTHING);
}

/*
 * An agent attempt ended without an outcome: its CodeRun was refused
 * (remediate.c: a 422, a 403, no CRD). Another attempt would be refused
 * alike, so the task goes to people at once, the refusal as the reason
 * (before: such an attempt was retried, with a new refused CodeRun, up to
 * the last attempt, or the step failed and was repeated every minute).
 */
static void
test_decide_refused_coderun_escalates_at_once(void **state)
{
	static char why[] = "the CodeRun was refused: status 403: forbidden";
	struct fx f;

	(void)state;
	fx_init(&f, 1);
	f.a[0].phase = HL_PHASE_DONE;
	f.a[0].outcome = HL_OUTCOME_INVALID;
	f.a[0].reason = why;
	decide(&f);
	assert_int_equal(f.st.verdict, HL_LOOP_FINISHED);
	assert_int_equal(f.st.next, HL_NEXT_ESCALATE);
	assert_string_equal(f.st.reason, why);
	/* also on a later attempt, with attempts to spare */
	fx_init(&f, 2);
	f.a[1].phase = HL_PHASE_DONE;
	f.a[1].outcome = HL_OUTCOME_INVALID;
	f.a[1].reason = why;
	decide(&f);
	assert_int_equal(f.st.next, HL_NEXT_ESCALATE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decide_running_waits_for_its_timeout),
		cmocka_unit_test(test_decide_failed_coderun_is_agent_failed_with_its_message),
		cmocka_unit_test(test_decide_failed_coderun_reason_is_cut_between_characters),
		cmocka_unit_test(test_decide_success_needs_ci_at_another_sha),
		cmocka_unit_test(test_decide_verify_timeout_asks_github_then_fails),
		cmocka_unit_test(test_decide_alert_tasks_succeed_with_their_coderun),
		cmocka_unit_test(test_decide_pod_alerts_verified_by_their_pod),
		cmocka_unit_test(test_decide_last_attempt_escalates),
		cmocka_unit_test(test_decide_runner_up_after_two_failures_of_one_agent),
		cmocka_unit_test(test_decide_preparing_attempt_is_no_failure),
		cmocka_unit_test(test_decide_rerun_outcomes),
		cmocka_unit_test(test_decide_done_attempt_resumes_its_consequence),
		cmocka_unit_test(test_decide_refused_coderun_escalates_at_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
