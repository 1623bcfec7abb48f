/*
 * test_clock.c - timed waits on the monotonic clock (src/base/clock.c): a
 * condition variable made by hl_cond_init_mono waits out a deadline taken
 * on CLOCK_MONOTONIC, neither returning at once (a realtime condvar reads a
 * monotonic deadline as long past) nor sleeping far beyond it.
 */
/* cmocka.h needs these headers before it */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */
#include "base/clock.h"

#include <errno.h>
#include <pthread.h>
#include <time.h>

/* A 200 ms monotonic deadline is waited out, not taken as past. */
static void
test_cond_mono_waits(void **state)
{
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cond;
	struct timespec ts;
	int64_t t0, took;
	int rc;

	(void)state;
	assert_int_equal(hl_cond_init_mono(&cond), 0);
	pthread_mutex_lock(&lock);
	t0 = hl_time_mono_ms();
	hl_time_deadline(&ts, CLOCK_MONOTONIC, 200);
	do
		rc = pthread_cond_timedwait(&cond, &lock, &ts);
	while (rc == 0);
	took = hl_time_mono_ms() - t0;
	pthread_mutex_unlock(&lock);
	assert_int_equal(rc, ETIMEDOUT);
	assert_true(took >= 190);
	assert_true(took < 5000);
	pthread_cond_destroy(&cond);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cond_mono_waits),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
