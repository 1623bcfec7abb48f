/*
 * pause.h - a background thread, its stop signal and its interruptible
 * sleep: hl_pause_start runs it, it sleeps between rounds with
 * hl_pause_sleep, and hl_pause_finish wakes it at once, joins it and frees
 * what the pause holds.
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
	pthread_t thread;
};

/* Runs fn(arg) on a thread of its own; -1 (nothing to finish) when it
 * cannot start. */
int hl_pause_start(struct hl_pause *p, void *(*fn)(void *), void *arg);
/* Stops the thread, waits for it to return and releases the pause. */
void hl_pause_finish(struct hl_pause *p);
/* Sleeps up to ms, or less once stopped; false when stopped. */
bool hl_pause_sleep(struct hl_pause *p, int64_t ms);
/* Whether hl_pause_stop was called. */
bool hl_pause_stopped(struct hl_pause *p);
/* Wakes the sleeper; every later sleep returns false at once. */
void hl_pause_stop(struct hl_pause *p);

#endif
