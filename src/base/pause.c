/*
 * pause.c - a background thread's stop signal and its interruptible sleep
 * (see pause.h).
 */
#include "base/pause.h"

#include "base/clock.h"

#include <time.h>

void
hl_pause_init(struct hl_pause *p)
{
	pthread_condattr_t ca;

	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cond, &ca);
	pthread_condattr_destroy(&ca);
	p->stop = false;
}

void
hl_pause_destroy(struct hl_pause *p)
{
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
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
