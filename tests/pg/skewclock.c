/*
 * skewclock.c - an LD_PRELOAD module for the PostgreSQL tests: the
 * process's wall clock (CLOCK_REALTIME, time()) runs HEALER_TEST_SKEW_MS
 * milliseconds ahead (or behind, when negative) of the system's, as on a
 * node whose clock is off; monotonic clocks are left alone.
 */
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>

/* The offset, read once. */
static long long
skew_ms(void)
{
	static long long off;
	static int read;

	if (!read) {
		const char *s = getenv("HEALER_TEST_SKEW_MS");

		off = s ? atoll(s) : 0;
		read = 1;
	}
	return off;
}

int
clock_gettime(clockid_t id, struct timespec *ts)
{
	static int (*real)(clockid_t, struct timespec *);
	long long ns;
	int rc;

	if (!real)
		real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
	rc = real(id, ts);
	if (rc == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)) {
		ns = (long long)ts->tv_sec * 1000000000LL + ts->tv_nsec + skew_ms() * 1000000LL;
		ts->tv_sec = (time_t)(ns / 1000000000LL);
		ts->tv_nsec = (long)(ns % 1000000000LL);
	}
	return rc;
}

time_t
time(time_t *t)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (t)
		*t = ts.tv_sec;
	return ts.tv_sec;
}
