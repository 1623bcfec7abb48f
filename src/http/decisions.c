/*
 * decisions.c - the sensor's synchronous answer: a POST to
 * /api/remediate/ci-failure whose delivery was accepted stays suspended
 * after its commit until a worker publishes the remediation decision
 * (agent, failure type, CodeRun) on the store's decision channel — from
 * this process or, on a shared store, another replica — or
 * HEALER_DECISION_WAIT_MS passes; then it is answered 202, with the
 * decision when there is one (the reply also reads the stored decision).
 *
 * The board is a list of waiting requests under one mutex, plus a ring of
 * the latest decisions so that one published before its request registered
 * (a very fast remediation) is not lost. A timer thread resumes requests
 * whose wait is over; shutdown resumes them all. No HTTP thread blocks.
 * Signals can be lost (a replica's connection to a shared store dropped
 * while another replica decided): hl_decisions_recheck has the reader
 * thread read each waiting request's decision from the store, and resume
 * those already decided. A signal can also be lost where nobody can tell:
 * the replica that decided could not send it (its NOTIFY failed on a
 * broken connection; the decision itself is stored). So on a shared store
 * (PostgreSQL), while requests wait, the reader thread also reads their
 * decisions from the store every BOARD_RECHECK_MS: a lost signal costs at
 * most that, not the whole wait. (On SQLite every decision is this
 * process's, handed over in memory.) The reads are the reader's, never the
 * timer's: a database that stalls holds up the reads, not the end of a
 * wait, so a sensor is answered on time whatever the store does. A
 * duplicate sensor call waits the same way for its first delivery's
 * decision (hl_decisions_task_read): the reader reads it from the store
 * once; when the first call is still being decided, the duplicate waits
 * for that decision's signal like the first call does (every waiter of a
 * delivery is resumed by it), so concurrent repeats carry the decision,
 * not null keys read before it was made.
 */
#include "decisions.h"

#include "base/clock.h"
#include "base/str.h"
#include "store/intake.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BOARD_RECENT 64
/* How often the decisions of waiting requests are read from the store (a
 * signal lost by its sender is noticed within this). */
#define BOARD_RECHECK_MS 1000

struct board_recent {
	char delivery_id[HL_DELIVERY_ID_MAX + 1];
	json_t *decision;
};

struct hl_decision_board {
	struct hl_store *store; /* borrowed: where decisions are stored */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct http_req *waiters;
	struct board_recent recent[BOARD_RECENT];
	size_t recent_pos;
	pthread_t timer;
	pthread_t reader; /* the store reads (board_reader) */
	bool reader_started;
	bool stop;
	bool recheck; /* signals may have been lost: read the waiters' decisions */
	/* other replicas decide too (a shared store): their signals can be
	 * lost by their sender, so waiters' decisions are read periodically */
	bool shared;
	/* duplicates waiting for their task's read (hl_decisions_task_read)
	 * that the reader has not taken yet */
	size_t task_reads;
	uint64_t next_ticket;
};

/* The delivery whose decision r waits for: its own, or for a duplicate
 * (wait_task) the first delivery of its event. */
static const char *
board_key(const struct http_req *r)
{
	if (r->wait_task && r->ireq.answer.duplicate_of[0])
		return r->ireq.answer.duplicate_of;
	return r->delivery_id;
}

/* Called with the lock held: unlinks r. */
static void
board_unlink(struct hl_decision_board *b, struct http_req *r)
{
	struct http_req **pp;

	for (pp = &b->waiters; *pp; pp = &(*pp)->wait_next) {
		if (*pp == r) {
			*pp = r->wait_next;
			r->wait_next = NULL;
			return;
		}
	}
}

/* Called with the lock held (released meanwhile): the decisions of the
 * waiting requests that the store already has are published, which
 * resumes those requests. */
static void
board_recheck(struct hl_decision_board *b)
{
	char(*ids)[HL_DELIVERY_ID_MAX + 1];
	struct http_req *r;
	size_t n = 0, i;

	/* (a duplicate not read yet is the task reads' to read first) */
	for (r = b->waiters; r; r = r->wait_next)
		n += !r->wait_task || r->task_reading;
	if (n == 0 || !(ids = malloc(n * sizeof(*ids)))) {
		b->recheck = n > 0; /* out of memory: the next round tries again */
		return;
	}
	n = 0;
	for (r = b->waiters; r; r = r->wait_next)
		if (!r->wait_task || r->task_reading)
			hl_strlcpy(ids[n++], board_key(r), sizeof(ids[0]));
	pthread_mutex_unlock(&b->lock);
	for (i = 0; i < n; i++) {
		char *text = NULL;

		if (hl_store_delivery_decision(b->store, &text, ids[i], NULL) == 0 && text)
			hl_decisions_publish(b, ids[i], strlen(ids[i]), text);
		free(text);
	}
	free(ids);
	pthread_mutex_lock(&b->lock);
}

/* A duplicate's part of its first delivery's decision: the same delivery
 * sent again gets the whole of it (its dedup status, reason and decision as
 * the first call was answered); another delivery of the event the task that
 * remediates the failure and its agent, failure type and CodeRun (not the
 * first call's dedup status). A new object. */
static json_t *
board_dup_decision(const struct http_req *r, const json_t *first)
{
	static const char *const keys[] = { "task_id", "agent", "failure_type", "coderun_name" };
	json_t *o;
	size_t i;

	if (!r->ireq.answer.duplicate_of[0])
		return json_deep_copy(first);
	o = json_object();
	for (i = 0; o && i < sizeof(keys) / sizeof(keys[0]); i++) {
		const char *v = json_string_value(json_object_get(first, keys[i]));
		if (v && *v)
			json_object_set_new(o, keys[i], json_string(v));
	}
	return o;
}

/* Called with the lock held: resumes r with decision (borrowed), as its
 * own or, for a duplicate, as its first delivery's. */
static void
board_answer(struct hl_decision_board *b, struct http_req *r, const json_t *decision)
{
	board_unlink(b, r);
	r->decision = r->wait_task ? board_dup_decision(r, decision) : json_deep_copy(decision);
	hl_http_resume(r);
}

/* Called with the lock held (released meanwhile): reads the first
 * delivery's decision of the duplicates waiting for it, one at a time, and
 * resumes each request still waiting (the timer or the decision's signal
 * may have answered it meanwhile: its ticket is then gone from the list).
 * One whose first delivery is not decided yet goes on waiting for its
 * signal. */
static void
board_read_tasks(struct hl_decision_board *b)
{
	while (b->task_reads > 0 && !b->stop) {
		char first[HL_DELIVERY_ID_MAX + 1];
		struct http_req *r;
		uint64_t ticket;
		char *text = NULL;
		json_t *d = NULL;

		for (r = b->waiters; r && (!r->wait_task || r->task_reading); r = r->wait_next)
			;
		if (!r) {
			b->task_reads = 0;
			return;
		}
		r->task_reading = true;
		b->task_reads--;
		ticket = r->wait_ticket;
		hl_strlcpy(first, board_key(r), sizeof(first));
		pthread_mutex_unlock(&b->lock);
		if (hl_store_delivery_decision(b->store, &text, first, NULL) == 0 && text)
			d = json_loads(text, 0, NULL);
		free(text);
		pthread_mutex_lock(&b->lock);
		for (r = b->waiters; d && r && r->wait_ticket != ticket; r = r->wait_next)
			;
		if (d && r)
			board_answer(b, r, d);
		json_decref(d);
	}
}

/* Reads the waiting requests' decisions from the store: on demand
 * (hl_decisions_recheck) and, on a shared store while requests wait, every
 * BOARD_RECHECK_MS. */
static void *
board_reader(void *arg)
{
	struct hl_decision_board *b = arg;
	int64_t recheck_at = 0; /* the next periodic read, 0: none waits */

	pthread_setname_np(pthread_self(), "hl-decisions-rd");
	pthread_mutex_lock(&b->lock);
	while (!b->stop) {
		int64_t now = hl_time_mono_ms();
		struct timespec ts;

		if (!b->waiters || !b->shared)
			recheck_at = 0;
		else if (recheck_at == 0)
			recheck_at = now + BOARD_RECHECK_MS;
		else if (now >= recheck_at)
			b->recheck = true;
		if (b->task_reads > 0) {
			board_read_tasks(b);
			continue;
		}
		if (b->recheck) {
			b->recheck = false;
			recheck_at = now + BOARD_RECHECK_MS;
			board_recheck(b);
			continue;
		}
		hl_time_deadline(&ts, CLOCK_MONOTONIC,
		                 recheck_at ? recheck_at - now : BOARD_RECHECK_MS);
		pthread_cond_timedwait(&b->cond, &b->lock, &ts);
	}
	pthread_mutex_unlock(&b->lock);
	return NULL;
}

static void *
board_timer(void *arg)
{
	struct hl_decision_board *b = arg;

	pthread_setname_np(pthread_self(), "hl-decisions");
	pthread_mutex_lock(&b->lock);
	while (!b->stop) {
		int64_t now = hl_time_mono_ms(), next = now + 1000;
		struct http_req **pp = &b->waiters;
		struct timespec ts;

		while (*pp) {
			struct http_req *r = *pp;
			if (r->wait_deadline_ms <= now) {
				*pp = r->wait_next;
				r->wait_next = NULL;
				if (r->wait_task && !r->task_reading)
					b->task_reads--;
				hl_http_resume(r);
				continue;
			}
			if (r->wait_deadline_ms < next)
				next = r->wait_deadline_ms;
			pp = &r->wait_next;
		}
		hl_time_deadline(&ts, CLOCK_MONOTONIC, next - now);
		pthread_cond_timedwait(&b->cond, &b->lock, &ts);
	}
	while (b->waiters) {
		struct http_req *r = b->waiters;
		b->waiters = r->wait_next;
		r->wait_next = NULL;
		hl_http_resume(r);
	}
	b->task_reads = 0;
	pthread_mutex_unlock(&b->lock);
	return NULL;
}

int
hl_decisions_new(struct hl_decision_board **out, struct hl_store *store, struct hl_err *err)
{
	struct hl_decision_board *b = calloc(1, sizeof(*b));

	if (!b)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	b->store = store;
	b->shared = store && strcmp(hl_store_backend_name(store), "postgres") == 0;
	pthread_mutex_init(&b->lock, NULL);
	hl_cond_init_mono(&b->cond);
	if (pthread_create(&b->timer, NULL, board_timer, b) != 0) {
		pthread_cond_destroy(&b->cond);
		pthread_mutex_destroy(&b->lock);
		free(b);
		return hl_err_set(err, HL_EINTERNAL, "cannot start the decision timer");
	}
	if (pthread_create(&b->reader, NULL, board_reader, b) != 0) {
		hl_decisions_free(b);
		return hl_err_set(err, HL_EINTERNAL, "cannot start the decision reader");
	}
	b->reader_started = true;
	*out = b;
	return 0;
}

void
hl_decisions_release_all(struct hl_decision_board *b)
{
	if (!b)
		return;
	pthread_mutex_lock(&b->lock);
	if (!b->stop) {
		b->stop = true;
		pthread_cond_broadcast(&b->cond);
		pthread_mutex_unlock(&b->lock);
		pthread_join(b->timer, NULL);
		if (b->reader_started)
			pthread_join(b->reader, NULL);
		return;
	}
	pthread_mutex_unlock(&b->lock);
}

void
hl_decisions_free(struct hl_decision_board *b)
{
	size_t i;

	if (!b)
		return;
	hl_decisions_release_all(b);
	for (i = 0; i < BOARD_RECENT; i++)
		json_decref(b->recent[i].decision);
	pthread_cond_destroy(&b->cond);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

bool
hl_decisions_reply_reads(const struct hl_decision_board *b)
{
	return !b->shared;
}

void
hl_decisions_recheck(struct hl_decision_board *b)
{
	pthread_mutex_lock(&b->lock);
	b->recheck = true;
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
}

bool
hl_decisions_wait(struct hl_decision_board *b, struct http_req *r, int wait_ms)
{
	size_t i;
	bool waiting = false;

	pthread_mutex_lock(&b->lock);
	for (i = 0; i < BOARD_RECENT; i++) {
		if (b->recent[i].decision &&
		    strcmp(b->recent[i].delivery_id, r->delivery_id) == 0) {
			r->decision = json_incref(b->recent[i].decision);
			goto out;
		}
	}
	if (b->stop)
		goto out;
	r->wait_deadline_ms = hl_time_mono_ms() + wait_ms;
	r->wait_next = b->waiters;
	b->waiters = r;
	waiting = true;
	pthread_cond_broadcast(&b->cond);
out:
	pthread_mutex_unlock(&b->lock);
	return waiting;
}

bool
hl_decisions_task_read(struct hl_decision_board *b, struct http_req *r, int wait_ms)
{
	bool waiting = false;

	size_t i;

	pthread_mutex_lock(&b->lock);
	r->wait_task = true;
	for (i = 0; i < BOARD_RECENT; i++) {
		if (b->recent[i].decision && strcmp(b->recent[i].delivery_id, board_key(r)) == 0) {
			/* decided a moment ago: answered now */
			r->decision = board_dup_decision(r, b->recent[i].decision);
			pthread_mutex_unlock(&b->lock);
			return false;
		}
	}
	if (!b->stop) {
		r->task_reading = false;
		r->wait_ticket = ++b->next_ticket;
		r->wait_deadline_ms = hl_time_mono_ms() + wait_ms;
		r->wait_next = b->waiters;
		b->waiters = r;
		b->task_reads++;
		waiting = true;
		pthread_cond_broadcast(&b->cond);
	}
	pthread_mutex_unlock(&b->lock);
	return waiting;
}

void
hl_decisions_publish(struct hl_decision_board *b, const char *id, size_t id_len,
                     const char *decision_json)
{
	char delivery_id[HL_DELIVERY_ID_MAX + 1];
	struct board_recent *slot;
	struct http_req *r;
	json_t *decision;

	if (id_len == 0 || id_len > HL_DELIVERY_ID_MAX)
		return;
	memcpy(delivery_id, id, id_len);
	delivery_id[id_len] = '\0';
	decision = json_loads(decision_json, 0, NULL);
	if (!decision)
		return;
	pthread_mutex_lock(&b->lock);
	slot = &b->recent[b->recent_pos++ % BOARD_RECENT];
	json_decref(slot->decision);
	hl_strlcpy(slot->delivery_id, delivery_id, sizeof(slot->delivery_id));
	slot->decision = json_incref(decision);
	/* the call and every repeat of it waiting for this decision */
	for (r = b->waiters; r;) {
		struct http_req *next = r->wait_next;

		if (strcmp(board_key(r), delivery_id) == 0) {
			if (r->wait_task && !r->task_reading)
				b->task_reads--;
			board_answer(b, r, decision);
		}
		r = next;
	}
	pthread_mutex_unlock(&b->lock);
	json_decref(decision);
}
