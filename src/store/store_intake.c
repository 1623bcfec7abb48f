/*
 * store_intake.c - the delivery queue's front end (store/intake.h): the
 * group-commit pipeline, body compression, claims and finishes.
 *
 * Group commit, pipelined in two stages:
 *   committer: takes the whole intake FIFO, has the backend write it in one
 *              transaction under the store mutex (no fsync), hands the batch
 *              to the syncer and goes on with the next batch at once;
 *   syncer:    takes every handed batch, makes the log durable with ONE
 *              fsync outside the mutex, then calls every req->done.
 * So the disk flush of batch N overlaps the writing of batch N+1, and
 * workers and status queries are not blocked by a flush. A batch is
 * answered only after a flush that started after it was written. Backends
 * without sync_log commit with a flush inside their batch instead.
 * Invariants: a req is completed exactly once; done is never called with
 * the store mutex held; stop drains both stages before returning.
 * Claims are made for this handle's owner id under the claim lease; a
 * finish that lost the database connection waits for it (outside the
 * mutex) instead of leaving done work to be done again.
 */
#include "base/clock.h"
#include "base/str.h"
#include "store_front.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define STORE_DEFLATE_MIN     65536 /* bytes; smaller bodies are stored raw */
#define STORE_FINISH_RETRY_MS 60000 /* at least this long for a lost connection */

static void
store_complete(struct hl_intake_req *list)
{
	struct hl_intake_req *r, *next;

	for (r = list; r; r = next) {
		next = r->next;
		r->next = NULL;
		free(r->zbody);
		r->zbody = NULL;
		r->done(r);
	}
}

static void *
store_syncer(void *arg)
{
	struct hl_store *s = arg;
	struct hl_intake_req *list, *r;
	int queued, rc;

	pthread_mutex_lock(&s->s_lock);
	for (;;) {
		while (!s->s_head && !s->committer_done)
			pthread_cond_wait(&s->s_cond, &s->s_lock);
		if (!s->s_head)
			break;
		list = s->s_head;
		queued = s->s_queued;
		s->s_head = s->s_tail = NULL;
		s->s_queued = 0;
		pthread_mutex_unlock(&s->s_lock);

		rc = s->ops->intake.sync_log(s->b);
		for (r = list; rc < 0 && r; r = r->next)
			if (r->rc == 0)
				r->rc = hl_err_set(&r->err, HL_EIO,
				                   "flushing the store log failed");
		if (queued > 0)
			hl_store_publish(s, HL_CHANNEL_WORK, "", NULL);
		store_complete(list);
		pthread_mutex_lock(&s->s_lock);
	}
	pthread_mutex_unlock(&s->s_lock);
	return NULL;
}

static void *
store_committer(void *arg)
{
	struct hl_store *s = arg;
	struct hl_intake_req *list, *tail, *r;
	bool failed;
	int queued;

	pthread_mutex_lock(&s->q_lock);
	for (;;) {
		while (!s->q_head && !s->stopping)
			pthread_cond_wait(&s->q_cond, &s->q_lock);
		if (!s->q_head && s->stopping)
			break;
		list = s->q_head;
		s->q_head = s->q_tail = NULL;
		pthread_mutex_unlock(&s->q_lock);

		pthread_mutex_lock(&s->db_lock);
		queued = s->ops->intake.batch(s->b, list);
		pthread_mutex_unlock(&s->db_lock);
		/* A failed batch (every req failed) needs no flush. */
		failed = true;
		for (r = tail = list; r; tail = r, r = r->next)
			failed = failed && r->rc == -HL_EDB;
		if (!s->syncer_started || failed) {
			if (queued > 0)
				hl_store_publish(s, HL_CHANNEL_WORK, "", NULL);
			store_complete(list);
		} else {
			pthread_mutex_lock(&s->s_lock);
			if (s->s_tail)
				s->s_tail->next = list;
			else
				s->s_head = list;
			s->s_tail = tail;
			s->s_queued += queued;
			pthread_cond_signal(&s->s_cond);
			pthread_mutex_unlock(&s->s_lock);
		}
		pthread_mutex_lock(&s->q_lock);
	}
	pthread_mutex_unlock(&s->q_lock);
	pthread_mutex_lock(&s->s_lock);
	s->committer_done = true;
	pthread_cond_signal(&s->s_cond);
	pthread_mutex_unlock(&s->s_lock);
	return NULL;
}

int
hl_store_intake_start(struct hl_store *s, struct hl_err *err)
{
	if (s->ops->intake.sync_log) {
		if (pthread_create(&s->syncer, NULL, store_syncer, s) != 0)
			return hl_err_set(err, HL_EINTERNAL,
			                  "cannot start the store syncer thread");
		s->syncer_started = true;
	}
	if (pthread_create(&s->committer, NULL, store_committer, s) != 0)
		return hl_err_set(err, HL_EINTERNAL, "cannot start the store committer thread");
	s->committer_started = true;
	return 0;
}

void
hl_store_intake_stop(struct hl_store *s)
{
	pthread_mutex_lock(&s->q_lock);
	s->stopping = true;
	pthread_cond_broadcast(&s->q_cond);
	pthread_mutex_unlock(&s->q_lock);
	if (s->committer_started) {
		pthread_join(s->committer, NULL);
	} else {
		pthread_mutex_lock(&s->s_lock);
		s->committer_done = true;
		pthread_cond_signal(&s->s_cond);
		pthread_mutex_unlock(&s->s_lock);
	}
	if (s->syncer_started)
		pthread_join(s->syncer, NULL);
	s->committer_started = s->syncer_started = false;
}

int
hl_store_recover(struct hl_store *s, int64_t *requeued_out, struct hl_err *err)
{
	int64_t n = 0;
	int rc;

	pthread_mutex_lock(&s->db_lock);
	rc = s->ops->intake.recover(s->b, &n, s->owner, err);
	pthread_mutex_unlock(&s->db_lock);
	if (rc == 0 && requeued_out)
		*requeued_out = n;
	return rc;
}

int
hl_store_requeue(struct hl_store *s, int64_t *n, const char *delivery_id, struct hl_err *err)
{
	int64_t k = 0;
	int rc;

	if (delivery_id && (!*delivery_id || strlen(delivery_id) > HL_DELIVERY_ID_MAX))
		return hl_err_set(err, HL_EINVAL, "bad delivery id");
	pthread_mutex_lock(&s->db_lock);
	rc = s->ops->intake.requeue(s->b, &k, delivery_id, err);
	pthread_mutex_unlock(&s->db_lock);
	if (rc < 0)
		return rc;
	if (k > 0)
		(void)hl_store_publish(s, HL_CHANNEL_WORK, "", NULL);
	if (n)
		*n = k;
	return 0;
}

/*
 * Deflates the body on the caller's thread (so request threads share the
 * CPU cost, not the committer) when it is 64 KiB or more: those shrink
 * ~5x, which is what the disk and the fsync pay for. Below that (GitHub's
 * usual 5-30 KB) the body stays raw: level-1 deflate of a 10 KB payload
 * took ~45 us, 15% of a delivery's CPU, more than writing its extra
 * bytes to the log costs (bench/intake). Incompressible bodies stay raw.
 * Each thread keeps one deflate stream (~270 KiB of state) and resets it
 * per body: creating one per call costs more than the compression, as the
 * state is mmap'ed and page-faulted every time.
 */
static pthread_key_t store_zkey;
static pthread_once_t store_zonce = PTHREAD_ONCE_INIT;

static void
store_zfree(void *p)
{
	deflateEnd(p);
	free(p);
}

static void
store_zinit(void)
{
	pthread_key_create(&store_zkey, store_zfree);
}

static z_stream *
store_zstream(void)
{
	z_stream *zs;

	pthread_once(&store_zonce, store_zinit);
	zs = pthread_getspecific(store_zkey);
	if (zs)
		return deflateReset(zs) == Z_OK ? zs : NULL;
	zs = calloc(1, sizeof(*zs));
	if (!zs)
		return NULL;
	if (deflateInit2(zs, 1, Z_DEFLATED, 15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
		free(zs);
		return NULL;
	}
	if (pthread_setspecific(store_zkey, zs) != 0) {
		store_zfree(zs);
		return NULL;
	}
	return zs;
}

static void
store_deflate(struct hl_intake_req *req)
{
	z_stream *zs;
	uLong cap;
	void *z;

	req->zbody = NULL;
	req->zlen = 0;
	if (req->in.body_len < STORE_DEFLATE_MIN || !(zs = store_zstream()))
		return;
	cap = deflateBound(zs, (uLong)req->in.body_len);
	z = malloc(cap);
	if (!z)
		return;
	zs->next_in = (Bytef *)req->in.body;
	zs->avail_in = (uInt)req->in.body_len;
	zs->next_out = z;
	zs->avail_out = (uInt)cap;
	if (deflate(zs, Z_FINISH) != Z_STREAM_END || zs->total_out >= req->in.body_len) {
		free(z);
		return;
	}
	req->zbody = z;
	req->zlen = zs->total_out;
}

void
hl_store_intake_submit(struct hl_store *s, struct hl_intake_req *req)
{
	req->next = NULL;
	req->rc = 0;
	req->err.code = 0;
	req->err.msg[0] = '\0';
	req->zbody = NULL;
	if (req->in.body_len > HL_STORE_MAX_BODY) {
		req->rc = hl_err_set(&req->err, HL_ETOOBIG, "body of %zu bytes is too large",
		                     req->in.body_len);
		req->done(req);
		return;
	}
	if (s->flags & HL_STORE_READ_ONLY) {
		req->rc = hl_err_set(&req->err, HL_EINVAL, "the store was opened read-only");
		req->done(req);
		return;
	}
	store_deflate(req);
	pthread_mutex_lock(&s->q_lock);
	if (s->stopping) {
		pthread_mutex_unlock(&s->q_lock);
		free(req->zbody);
		req->zbody = NULL;
		req->rc = hl_err_set(&req->err, HL_EDB, "the store is closing");
		req->done(req);
		return;
	}
	if (s->q_tail)
		s->q_tail->next = req;
	else
		s->q_head = req;
	s->q_tail = req;
	pthread_cond_signal(&s->q_cond);
	pthread_mutex_unlock(&s->q_lock);
}

struct store_sync {
	struct hl_intake_req req;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
};

static void
store_sync_done(struct hl_intake_req *req)
{
	struct store_sync *w = req->arg;

	pthread_mutex_lock(&w->lock);
	w->done = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

int
hl_store_insert_delivery(struct hl_store *s, struct hl_intake_answer *out,
                         const struct hl_delivery_in *in, struct hl_err *err)
{
	struct store_sync w;
	int rc;

	memset(&w, 0, sizeof(w));
	pthread_mutex_init(&w.lock, NULL);
	pthread_cond_init(&w.cond, NULL);
	w.req.in = *in;
	w.req.done = store_sync_done;
	w.req.arg = &w;
	hl_store_intake_submit(s, &w.req);
	pthread_mutex_lock(&w.lock);
	while (!w.done)
		pthread_cond_wait(&w.cond, &w.lock);
	pthread_mutex_unlock(&w.lock);
	pthread_mutex_destroy(&w.lock);
	pthread_cond_destroy(&w.cond);
	rc = w.req.rc;
	if (rc < 0) {
		if (err)
			*err = w.req.err;
		return rc;
	}
	*out = w.req.answer;
	return 0;
}

int
hl_store_claim_next(struct hl_store *s, struct hl_delivery_record **out, struct hl_err *err)
{
	STORE_CALL(s, s->ops->intake.claim_next(s->b, out, s->owner,
	                                        atomic_load(&s->claim_lease_ms), err));
}

int
hl_store_finish_delivery(struct hl_store *s, const char *delivery_id,
                         const struct hl_delivery_result *result, struct hl_err *err)
{
	int64_t lease, deadline;
	int rc, pause = 100;
	bool lost;

	if (result->state == HL_DELIVERY_PROCESSING || result->state >= HL_DELIVERY_STATE_MAX)
		return hl_err_set(err, HL_EINVAL, "cannot finish a delivery as '%s'",
		                  hl_delivery_state_name(result->state));
	lease = atomic_load(&s->claim_lease_ms);
	deadline =
	        hl_time_mono_ms() + (lease > STORE_FINISH_RETRY_MS ? lease : STORE_FINISH_RETRY_MS);
	for (;;) {
		pthread_mutex_lock(&s->db_lock);
		rc = s->ops->intake.finish(s->b, delivery_id, result, err);
		lost = rc == -HL_EDB && s->ops->conn.lost && s->ops->conn.lost(s->b);
		pthread_mutex_unlock(&s->db_lock);
		/* the work is done, only its record is missing: wait for the
		 * database rather than have the delivery processed again */
		if (!lost || hl_time_mono_ms() + pause > deadline || !hl_store_pause(s, pause))
			break;
		pause = pause < 2000 ? pause * 2 : 2000;
	}
	if (rc == 0 && result->state == HL_DELIVERY_RECEIVED &&
	    result->not_before_ms <= hl_time_wall_ms())
		hl_store_publish(s, HL_CHANNEL_WORK, "", NULL);
	return rc;
}

int
hl_store_delivery_decision(struct hl_store *s, char **out, const char *delivery_id,
                           struct hl_err *err)
{
	STORE_CALL(s, s->ops->intake.decision(s->b, out, delivery_id, err));
}

void
hl_delivery_record_free(struct hl_delivery_record *d)
{
	if (!d)
		return;
	free(d->delivery_id);
	free(d->hook_id);
	free(d->source);
	free(d->event_name);
	free(d->action);
	free(d->headers_json);
	free(d->body);
	free(d->dedup_key);
	free(d->failure_key);
	free(d->task_id);
	free(d);
}

int
hl_store_queue_depth(struct hl_store *s, int64_t *out, struct hl_err *err)
{
	STORE_CALL(s, s->ops->intake.queue_depth(s->b, out, err));
}

int
hl_store_counts(struct hl_store *s,
                void (*fn)(void *arg, const char *event, const char *state, const char *reason,
                           int64_t n),
                void *arg, struct hl_err *err)
{
	STORE_CALL(s, s->ops->intake.counts(s->b, fn, arg, err));
}

int
hl_store_recent_deliveries(struct hl_store *s, struct hl_delivery_summary *out, size_t max,
                           size_t *n, struct hl_err *err)
{
	STORE_CALL(s, s->ops->intake.recent(s->b, out, max, n, err));
}

const char *
hl_delivery_state_name(enum hl_delivery_state st)
{
	static const char *const names[] = { "received", "processing", "processed", "skipped",
		                             "failed" };

	return st < HL_DELIVERY_STATE_MAX ? names[st] : "unknown";
}

const char *
hl_intake_status_name(enum hl_intake_status st)
{
	switch (st) {
	case HL_INTAKE_ACCEPTED:
		return "accepted";
	case HL_INTAKE_SKIPPED:
		return "skipped";
	case HL_INTAKE_DUPLICATE:
		return "duplicate";
	}
	return "unknown";
}
