/*
 * clock.c - clocks and RFC 3339; see clock.h.
 */
#include "clock.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t
hl_time_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
hl_time_deadline(struct timespec *ts, clockid_t clock, int64_t ms)
{
	clock_gettime(clock, ts);
	ts->tv_sec += (time_t)(ms / 1000);
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

int
hl_cond_init_mono(pthread_cond_t *cond)
{
	pthread_condattr_t ca;
	int rc;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	rc = pthread_cond_init(cond, &ca);
	pthread_condattr_destroy(&ca);
	return rc;
}

int64_t
hl_time_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Every log line carries one: the date and time of the second are kept per
 * thread, so within a second a stamp costs three digits (glibc's gmtime_r
 * takes a process-wide lock, and snprintf is most of a log line's cost).
 */
void
hl_time_rfc3339(char *out, size_t size, int64_t wall_ms)
{
	static _Thread_local int64_t last_secs = -1;
	static _Thread_local char last[24]; /* "YYYY-MM-DDTHH:MM:SS" */
	static _Thread_local size_t last_len;
	int64_t secs = wall_ms / 1000;
	char stamp[32];
	int ms = (int)(wall_ms % 1000);

	if (wall_ms < 0 || size == 0) {
		time_t t = (time_t)secs;
		struct tm tm;

		gmtime_r(&t, &tm);
		snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
		return;
	}
	if (secs != last_secs) {
		time_t t = (time_t)secs;
		struct tm tm;
		int n;

		gmtime_r(&t, &tm);
		n = snprintf(last, sizeof(last), "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
		             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
		last_len = n > 0 && (size_t)n < sizeof(last) ? (size_t)n : strlen(last);
		last_secs = secs;
	}
	memcpy(stamp, last, last_len);
	stamp[last_len] = '.';
	stamp[last_len + 1] = (char)('0' + ms / 100);
	stamp[last_len + 2] = (char)('0' + ms / 10 % 10);
	stamp[last_len + 3] = (char)('0' + ms % 10);
	stamp[last_len + 4] = 'Z';
	stamp[last_len + 5] = '\0';
	/* snprintf's truncation, as before */
	if (last_len + 5 < size) {
		memcpy(out, stamp, last_len + 6);
	} else {
		memcpy(out, stamp, size - 1);
		out[size - 1] = '\0';
	}
}

void
hl_time_rfc3339_now(char *out, size_t size)
{
	hl_time_rfc3339(out, size, hl_time_wall_ms());
}

int64_t
hl_time_parse_rfc3339(const char *s)
{
	struct tm tm;
	int y, mo, d, h, mi, sec, n = 0, off = 0;
	int64_t ms = 0;
	const char *p;

	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6)
		return -1;
	p = s + n;
	if (*p == '.') {
		int digits = 0;
		for (p++; *p >= '0' && *p <= '9'; p++, digits++)
			if (digits < 3)
				ms = ms * 10 + (*p - '0');
		while (digits > 0 && digits < 3) {
			ms *= 10;
			digits++;
		}
	}
	if (*p == '+' || *p == '-') {
		int oh, om;
		if (sscanf(p + 1, "%2d:%2d", &oh, &om) != 2)
			return -1;
		off = (oh * 60 + om) * 60 * (*p == '+' ? 1 : -1);
	} else if (*p != 'Z' && *p != 'z') {
		return -1;
	}
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	return ((int64_t)timegm(&tm) - off) * 1000 + ms;
}
