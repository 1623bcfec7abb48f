/*
 * store.c - the store front end: URL dispatch to a backend, the store
 * mutex, the group-commit committer thread and the worker wake-up signal.
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
 * without sync_log commit with a flush inside intake_batch instead.
 * Invariants: a req is completed exactly once; done is never called with
 * the store mutex held; close drains both stages before stopping.
 */
#include "store.h"

#include "base/str.h"
#include "store_impl.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define STORE_DEFLATE_MIN 512 /* bytes; smaller bodies are stored raw */

struct hl_store {
	struct hl_store_backend *b;
	const struct hl_store_ops *ops;
	pthread_mutex_t db_lock; /* guards b */

	pthread_mutex_t q_lock; /* guards the fields below */
	pthread_cond_t q_cond;  /* committer: work queued or stop */
	struct hl_intake_req *q_head, *q_tail;
	bool stopping;
	pthread_t committer;
	bool committer_started;
	bool committer_done; /* the committer exited; the syncer may too */

	pthread_mutex_t s_lock; /* syncer: batches written, waiting for the flush */
	pthread_cond_t s_cond;
	struct hl_intake_req *s_head, *s_tail;
	int s_queued; /* received deliveries among them */
	pthread_t syncer;
	bool syncer_started;

	pthread_mutex_t w_lock; /* worker wake-up */
	pthread_cond_t w_cond;
	uint64_t w_seq; /* bumped when received deliveries were stored */
	bool w_wake_all;
};

static void
store_wake_workers(struct hl_store *s)
{
	pthread_mutex_lock(&s->w_lock);
	s->w_seq++;
	pthread_cond_broadcast(&s->w_cond);
	pthread_mutex_unlock(&s->w_lock);
}

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

		rc = s->ops->sync_log(s->b);
		for (r = list; rc < 0 && r; r = r->next)
			if (r->rc == 0)
				r->rc = hl_err_set(&r->err, HL_EIO,
				                   "flushing the store log failed");
		if (queued > 0)
			store_wake_workers(s);
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
		queued = s->ops->intake_batch(s->b, list);
		pthread_mutex_unlock(&s->db_lock);
		/* A failed batch (every req failed) needs no flush. */
		failed = true;
		for (r = tail = list; r; tail = r, r = r->next)
			failed = failed && r->rc == -HL_EDB;
		if (!s->syncer_started || failed) {
			if (queued > 0)
				store_wake_workers(s);
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
hl_store_open(struct hl_store **out, const char *url, struct hl_err *err)
{
	struct hl_store *s;
	int rc;

	if (!url || !*url)
		return hl_err_set(err, HL_EINVAL, "empty store url");
	if (hl_str_starts_with(url, "postgres://") || hl_str_starts_with(url, "postgresql://"))
		return hl_err_set(err, HL_EUNSUPPORTED,
		                  "postgres store is not implemented yet; use 'sqlite:PATH'");
	if (!hl_str_starts_with(url, "sqlite:") || !url[7])
		return hl_err_set(err, HL_EINVAL, "store url '%s' must be 'sqlite:PATH'", url);
	s = calloc(1, sizeof(*s));
	if (!s)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	pthread_mutex_init(&s->db_lock, NULL);
	pthread_mutex_init(&s->q_lock, NULL);
	pthread_cond_init(&s->q_cond, NULL);
	pthread_mutex_init(&s->w_lock, NULL);
	pthread_cond_init(&s->w_cond, NULL);
	pthread_mutex_init(&s->s_lock, NULL);
	pthread_cond_init(&s->s_cond, NULL);
	rc = hl_store_sqlite_open(&s->b, &s->ops, url + 7, err);
	if (rc < 0)
		goto fail;
	rc = s->ops->migrate(s->b, NULL, err);
	if (rc < 0)
		goto fail;
	if (s->ops->sync_log) {
		if (pthread_create(&s->syncer, NULL, store_syncer, s) != 0) {
			rc = hl_err_set(err, HL_EINTERNAL, "cannot start the store syncer thread");
			goto fail;
		}
		s->syncer_started = true;
	}
	if (pthread_create(&s->committer, NULL, store_committer, s) != 0) {
		rc = hl_err_set(err, HL_EINTERNAL, "cannot start the store committer thread");
		goto fail;
	}
	s->committer_started = true;
	*out = s;
	return 0;
fail:
	hl_store_close(s);
	return rc;
}

void
hl_store_close(struct hl_store *s)
{
	if (!s)
		return;
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
	hl_store_wake_all(s);
	if (s->b)
		s->ops->close(s->b);
	pthread_mutex_destroy(&s->db_lock);
	pthread_mutex_destroy(&s->q_lock);
	pthread_cond_destroy(&s->q_cond);
	pthread_mutex_destroy(&s->w_lock);
	pthread_cond_destroy(&s->w_cond);
	pthread_mutex_destroy(&s->s_lock);
	pthread_cond_destroy(&s->s_cond);
	free(s);
}

#define STORE_CALL(s, expr)                          \
	do {                                         \
		int rc_;                             \
		pthread_mutex_lock(&(s)->db_lock);   \
		rc_ = (expr);                        \
		pthread_mutex_unlock(&(s)->db_lock); \
		return rc_;                          \
	} while (0)

int
hl_store_migrate(struct hl_store *s, int *applied_out, struct hl_err *err)
{
	STORE_CALL(s, s->ops->migrate(s->b, applied_out, err));
}

int
hl_store_schema_version(struct hl_store *s, int *out, struct hl_err *err)
{
	STORE_CALL(s, s->ops->schema_version(s->b, out, err));
}

int
hl_store_recover(struct hl_store *s, int64_t *requeued_out, struct hl_err *err)
{
	int64_t n = 0;
	int rc;

	pthread_mutex_lock(&s->db_lock);
	rc = s->ops->recover(s->b, &n, err);
	pthread_mutex_unlock(&s->db_lock);
	if (rc == 0 && requeued_out)
		*requeued_out = n;
	return rc;
}

/*
 * Deflates the body on the caller's thread (so request threads share the
 * CPU cost, not the committer): GitHub payloads shrink ~5x, which is what
 * the disk and the fsync pay for. Small or incompressible bodies stay raw.
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
	STORE_CALL(s, s->ops->claim_next(s->b, out, err));
}

int
hl_store_finish_delivery(struct hl_store *s, const char *delivery_id, enum hl_delivery_state state,
                         const char *reason, const char *event_json, struct hl_err *err)
{
	int rc;

	if (state == HL_DELIVERY_PROCESSING || state >= HL_DELIVERY_STATE_MAX)
		return hl_err_set(err, HL_EINVAL, "cannot finish a delivery as '%s'",
		                  hl_delivery_state_name(state));
	pthread_mutex_lock(&s->db_lock);
	rc = s->ops->finish(s->b, delivery_id, state, reason, event_json, err);
	pthread_mutex_unlock(&s->db_lock);
	if (rc == 0 && state == HL_DELIVERY_RECEIVED) {
		pthread_mutex_lock(&s->w_lock);
		s->w_seq++;
		pthread_cond_broadcast(&s->w_cond);
		pthread_mutex_unlock(&s->w_lock);
	}
	return rc;
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
	free(d->task_id);
	free(d);
}

bool
hl_store_wait_work(struct hl_store *s, int timeout_ms)
{
	static __thread uint64_t seen;
	struct timespec ts;
	bool work;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&s->w_lock);
	while (s->w_seq == seen && !s->w_wake_all) {
		if (pthread_cond_timedwait(&s->w_cond, &s->w_lock, &ts) != 0)
			break;
	}
	work = s->w_seq != seen;
	seen = s->w_seq;
	pthread_mutex_unlock(&s->w_lock);
	return work;
}

void
hl_store_wake_all(struct hl_store *s)
{
	pthread_mutex_lock(&s->w_lock);
	s->w_wake_all = true;
	pthread_cond_broadcast(&s->w_cond);
	pthread_mutex_unlock(&s->w_lock);
}

int
hl_store_ping(struct hl_store *s, struct hl_err *err)
{
	STORE_CALL(s, s->ops->ping(s->b, err));
}

int
hl_store_queue_depth(struct hl_store *s, int64_t *out, struct hl_err *err)
{
	STORE_CALL(s, s->ops->queue_depth(s->b, out, err));
}

int
hl_store_counts(struct hl_store *s,
                void (*fn)(void *arg, const char *event, const char *state, const char *reason,
                           int64_t n),
                void *arg, struct hl_err *err)
{
	STORE_CALL(s, s->ops->counts(s->b, fn, arg, err));
}

int
hl_store_recent(struct hl_store *s, json_t *arr, int limit, struct hl_err *err)
{
	STORE_CALL(s, s->ops->recent(s->b, arr, limit, err));
}

int
hl_store_task_put(struct hl_store *s, const struct hl_task *t, struct hl_err *err)
{
	if (!t->task_id || !*t->task_id || !t->status)
		return hl_err_set(err, HL_EINVAL, "a task needs a task_id and a status");
	STORE_CALL(s, s->ops->task_put(s->b, t, err));
}

int
hl_store_task_claim(struct hl_store *s, bool *created, char *existing, const struct hl_task *t,
                    struct hl_err *err)
{
	if (!t->task_id || !*t->task_id || strlen(t->task_id) >= HL_TASK_ID_MAX || !t->status)
		return hl_err_set(err, HL_EINVAL, "a task needs a task_id and a status");
	STORE_CALL(s, s->ops->task_claim(s->b, created, existing, t, err));
}

int
hl_store_task_find(struct hl_store *s, char *out, const char *repository, const char *branch,
                   int64_t run_id, enum hl_task_find mode, int64_t since_ms,
                   const char *exclude_task_id, struct hl_err *err)
{
	if (!repository || (mode == HL_TASK_FIND_OTHER_RUN && !branch))
		return hl_err_set(err, HL_EINVAL, "task search needs a repository (and a branch)");
	STORE_CALL(s, s->ops->task_find(s->b, out, repository, branch, run_id, mode, since_ms,
	                                exclude_task_id, err));
}

int
hl_store_attempt_put(struct hl_store *s, const struct hl_attempt *a, struct hl_err *err)
{
	if (!a->task_id || !*a->task_id || a->n < 1)
		return hl_err_set(err, HL_EINVAL, "an attempt needs a task_id and n >= 1");
	STORE_CALL(s, s->ops->attempt_put(s->b, a, err));
}

int
hl_store_outcome_add(struct hl_store *s, const char *task_id, const char *delivery_id,
                     const char *outcome, const char *detail, struct hl_err *err)
{
	if (!outcome || !*outcome)
		return hl_err_set(err, HL_EINVAL, "an outcome needs a name");
	STORE_CALL(s, s->ops->outcome_add(s->b, task_id, delivery_id, outcome, detail, err));
}

int
hl_store_task_counts(struct hl_store *s,
                     void (*fn)(void *arg, const char *kind, const char *name, int64_t n),
                     void *arg, struct hl_err *err)
{
	STORE_CALL(s, s->ops->task_counts(s->b, fn, arg, err));
}

int
hl_store_task_json(struct hl_store *s, json_t **out, const char *task_id, struct hl_err *err)
{
	STORE_CALL(s, s->ops->task_json(s->b, out, task_id, err));
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
