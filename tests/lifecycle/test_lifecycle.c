/*
 * test_lifecycle.c - the task state machine refuses every move the loop
 * must never make and allows exactly the documented ones; names round-trip.
 */
#include "lifecycle/lifecycle.h"

/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <stdio.h>
#include <string.h>

/* The legal moves as contract section 9 and lifecycle.h describe them,
 * written out independently of the table in lifecycle.c. */
static const char *const legal[] = {
	"new>queued",          "new>running",         "new>skipped",       "queued>running",
	"queued>stopped",      "queued>skipped",      "running>running",   "running>verifying",
	"running>queued",      "running>succeeded",   "running>escalated", "running>stopped",
	"running>skipped",     "verifying>succeeded", "verifying>running", "verifying>queued",
	"verifying>escalated", "verifying>stopped",   "escalated>running", "escalated>queued",
	"stopped>running",     "stopped>queued",
};

static int
is_legal(const char *from, const char *to)
{
	char key[64];
	size_t i;

	snprintf(key, sizeof(key), "%s>%s", from, to);
	for (i = 0; i < sizeof(legal) / sizeof(legal[0]); i++)
		if (strcmp(legal[i], key) == 0)
			return 1;
	return 0;
}

static void
test_lifecycle_transitions_match_the_contract(void **state)
{
	int from, to;

	(void)state;
	for (from = -1; from < HL_TASK_STATE_MAX; from++) {
		for (to = 0; to < HL_TASK_STATE_MAX; to++) {
			struct hl_err err = HL_ERR_INIT;
			const char *fn = from < 0 ? "new" : hl_task_state_name(from);
			int rc = hl_task_transition((enum hl_task_state)from,
			                            (enum hl_task_state)to, &err);
			if (is_legal(fn, hl_task_state_name(to))) {
				assert_int_equal(rc, 0);
			} else {
				assert_int_equal(rc, -HL_ECONFLICT);
				assert_non_null(strstr(err.msg, hl_task_state_name(to)));
			}
		}
	}
}

static void
test_lifecycle_final_states_never_move(void **state)
{
	static const enum hl_task_state finals[] = { HL_TASK_SUCCEEDED, HL_TASK_SKIPPED };
	size_t i;
	int to;

	(void)state;
	for (i = 0; i < 2; i++) {
		assert_true(hl_task_state_is_final(finals[i]));
		for (to = 0; to < HL_TASK_STATE_MAX; to++)
			assert_int_equal(
			        hl_task_transition(finals[i], (enum hl_task_state)to, NULL),
			        -HL_ECONFLICT);
	}
	/* a stopped task is finished, but /healer retry gives it one more
	 * attempt, as after an escalation */
	assert_true(hl_task_state_is_final(HL_TASK_STOPPED));
	for (to = 0; to < HL_TASK_STATE_MAX; to++)
		assert_int_equal(hl_task_transition(HL_TASK_STOPPED, (enum hl_task_state)to, NULL),
		                 to == HL_TASK_RUNNING || to == HL_TASK_QUEUED ? 0 : -HL_ECONFLICT);
	assert_false(hl_task_state_is_final(HL_TASK_ESCALATED));
	assert_true(hl_task_state_is_active(HL_TASK_VERIFYING));
	assert_false(hl_task_state_is_active(HL_TASK_QUEUED));
}

static void
test_lifecycle_bad_states_are_invalid(void **state)
{
	(void)state;
	assert_int_equal(hl_task_transition(HL_TASK_RUNNING, HL_TASK_STATE_MAX, NULL), -HL_EINVAL);
	assert_int_equal(hl_task_transition((enum hl_task_state)42, HL_TASK_RUNNING, NULL),
	                 -HL_EINVAL);
	assert_string_equal(hl_task_state_name((enum hl_task_state)42), "invalid");
	assert_int_equal(hl_task_state_from_name("nope"), HL_TASK_STATE_INVALID);
	assert_int_equal(hl_task_state_from_name(NULL), HL_TASK_STATE_INVALID);
	assert_int_equal(hl_attempt_outcome_from_name("running"), HL_OUTCOME_INVALID);
}

static void
test_lifecycle_names_round_trip(void **state)
{
	static const char *const outcomes[] = { "success",     "ci_still_failing", "agent_failed",
		                                "timeout",     "stopped",          "rerun_passed",
		                                "rerun_failed" };
	static const char *const states[] = { "queued",    "running", "verifying", "succeeded",
		                              "escalated", "stopped", "skipped" };
	int i;

	(void)state;
	assert_int_equal(HL_OUTCOME_MAX, 7);
	for (i = 0; i < HL_OUTCOME_MAX; i++) {
		assert_string_equal(hl_attempt_outcome_name((enum hl_attempt_outcome)i),
		                    outcomes[i]);
		assert_int_equal(hl_attempt_outcome_from_name(outcomes[i]), i);
	}
	assert_int_equal(HL_TASK_STATE_MAX, 7);
	for (i = 0; i < HL_TASK_STATE_MAX; i++)
		assert_int_equal(hl_task_state_from_name(states[i]), i);
	for (i = 0; i < HL_PHASE_MAX; i++)
		assert_int_equal(
		        hl_attempt_phase_from_name(hl_attempt_phase_name((enum hl_attempt_phase)i)),
		        i);
	for (i = 0; i < HL_ATTEMPT_KIND_MAX; i++)
		assert_int_equal(
		        hl_attempt_kind_from_name(hl_attempt_kind_name((enum hl_attempt_kind)i)),
		        i);
	assert_true(hl_attempt_outcome_is_success(HL_OUTCOME_RERUN_PASSED));
	assert_false(hl_attempt_outcome_is_success(HL_OUTCOME_CI_STILL_FAILING));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lifecycle_transitions_match_the_contract),
		cmocka_unit_test(test_lifecycle_final_states_never_move),
		cmocka_unit_test(test_lifecycle_bad_states_are_invalid),
		cmocka_unit_test(test_lifecycle_names_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
