/*
 * clock.h - monotonic clocks for deadlines and wall-clock formatting.
 */
#ifndef HL_BASE_CLOCK_H
#define HL_BASE_CLOCK_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Monotonic milliseconds, for deadlines and durations. */
int64_t hl_time_mono_ms(void);
/* *ts = now on `clock` plus ms: the absolute deadline pthread_cond_timedwait
 * takes (CLOCK_REALTIME, or the clock its condition variable was made with). */
void hl_time_deadline(struct timespec *ts, clockid_t clock, int64_t ms);
/* Initializes *cond to time its waits on CLOCK_MONOTONIC, so a step of the
 * wall clock neither stalls nor hurries them: deadlines for it come from
 * hl_time_deadline(&ts, CLOCK_MONOTONIC, ms). Returns pthread_cond_init's. */
int hl_cond_init_mono(pthread_cond_t *cond);
/* Wall-clock milliseconds since the epoch. */
int64_t hl_time_wall_ms(void);
/* Formats a wall-clock time (ms since epoch) as RFC 3339 UTC with millis. */
void hl_time_rfc3339(char *out, size_t size, int64_t wall_ms);
void hl_time_rfc3339_now(char *out, size_t size);
/* Parses "2025-01-15T10:30:00Z" (fraction and offset optional) to ms since
 * the epoch; returns -1 on a malformed string. */
int64_t hl_time_parse_rfc3339(const char *s);

#endif
