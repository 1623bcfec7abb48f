/*
 * pause.h - a background thread's stop signal and its interruptible sleep:
 * the thread sleeps between rounds with hl_pause_sleep, and whoever stops
 * it calls hl_pause_stop, which wakes it at once (then joins it).
 */
#ifndef HL_BASE_PAUSE_H
#define HL_BASE_PAUSE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct hl_pause {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* on CLOCK_MONOTONIC */
	bool stop;
};

void hl_pause_init(struct hl_pause *p);
void hl_pause_destroy(struct hl_pause *p);
/* Sleeps up to ms, or less once stopped; false when stopped. */
bool hl_pause_sleep(struct hl_pause *p, int64_t ms);
/* Whether hl_pause_stop was called. */
bool hl_pause_stopped(struct hl_pause *p);
/* Wakes the sleeper; every later sleep returns false at once. */
void hl_pause_stop(struct hl_pause *p);

#endif
