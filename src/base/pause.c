/*
 * pause.c - a background thread's stop signal and its interruptible sleep
 * (see pause.h).
 */
#include "base/pause.h"

#include "base/clock.h"

#include <time.h>

static void
pause_destroy(struct hl_pause *p)
{
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
}

int
hl_pause_start(struct hl_pause *p, void *(*fn)(void *), void *arg)
{
	pthread_condattr_t ca;

	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cond, &ca);
	pthread_condattr_destroy(&ca);
	p->stop = false;
	if (pthread_create(&p->thread, NULL, fn, arg) != 0) {
		pause_destroy(p);
		return -1;
	}
	return 0;
}

void
hl_pause_finish(struct hl_pause *p)
{
	hl_pause_stop(p);
	pthread_join(p->thread, NULL);
	pause_destroy(p);
}

bool
hl_pause_sleep(struct hl_pause *p, int64_t ms)
{
	struct timespec ts;
	bool stop;

	hl_time_deadline(&ts, CLOCK_MONOTONIC, ms);
	pthread_mutex_lock(&p->lock);
	while (!p->stop && pthread_cond_timedwait(&p->cond, &p->lock, &ts) == 0)
		;
	stop = p->stop;
	pthread_mutex_unlock(&p->lock);
	return !stop;
}

bool
hl_pause_stopped(struct hl_pause *p)
{
	bool stop;

	pthread_mutex_lock(&p->lock);
	stop = p->stop;
	pthread_mutex_unlock(&p->lock);
	return stop;
}

void
hl_pause_stop(struct hl_pause *p)
{
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}
