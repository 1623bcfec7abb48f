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
 * without sync_log commit with a flush inside their batch instead; a
 * batch on a connection of its own (PostgreSQL) runs outside the store
 * mutex, so workers and status queries do not wait for its commit.
 * Invariants: a req is completed exactly once; done is never called with
 * the store mutex held; stop drains both stages before returning.
 * Claims are made for this handle's owner id under the claim lease; a
 * finish that lost the database connection waits for it (outside the
 * mutex) instead of leaving done work to be done again.
 */
#include "base/clock.h"
#include "base/str.h"
#include "body.h"
#include "store_front.h"

#include <stdlib.h>
#include <string.h>

#define STORE_HANDOFF_MAX     65536 /* bytes; larger bodies wait in the store */
#define STORE_FINISH_RETRY_MS 60000 /* at least this long for a lost connection */

/* ---- the hand-off ------------------------------------------------------
 *
 * A delivery that would wait in the store for a worker is stored already
 * claimed by this process (under the claim lease, renewed by the keeper
 * like any claim) and handed to its workers in memory, so the usual path
 * costs no claim query, and on a shared database no other replica is woken
 * for it. What is handed off is bounded by the ring (bodies under 64 KiB),
 * and only while the store is not known to hold waiting deliveries: any
 * work signal (a delivery stored waiting, a claim given back or requeued,
 * another replica's) turns it off until a claim finds the store empty, so
 * older deliveries are never overtaken by newer ones. A process that dies
 * leaves its hand-off as claims, taken back like any dead claim. */

static void store_claim_held(struct hl_store *s, const char *delivery_id);
static void store_claim_dropped(struct hl_store *s, const char *delivery_id, int rc);

/* Slots a batch may take: none while the store may hold waiting work. The
 * ones taken count as held from here (store_complete forgets those not
 * stored as taken), so the lease keeper renews a claim from its commit on
 * and never gives back, as held by no worker, one whose batch outlasted
 * its lease. */
static void
store_handoff_reserve(struct hl_store *s, struct hl_intake_req *list)
{
	struct hl_intake_req *r;
	int64_t now, until;
	int room;

	pthread_mutex_lock(&s->h_lock);
	room = s->h_max - s->h_len - s->h_reserved;
	if (s->h_db_seq != s->h_db_seen)
		room = 0;
	now = hl_time_wall_ms();
	until = now + atomic_load(&s->claim_lease_ms);
	for (r = list; r; r = r->next) {
		r->take = room > 0 && !r->in.skip_reason && r->in.body_len < STORE_HANDOFF_MAX &&
		          r->in.delivery_id && *r->in.delivery_id;
		r->taken_id = 0;
		if (!r->take)
			continue;
		r->take_owner = s->owner;
		r->take_at_ms = now;
		r->take_until_ms = until;
		s->h_reserved++;
		room--;
	}
	pthread_mutex_unlock(&s->h_lock);
	for (r = list; r; r = r->next)
		if (r->take)
			store_claim_held(s, r->in.delivery_id);
}

static char *
store_strdup_or(const char *v, const char *dflt, bool *oom)
{
	char *c;

	if (!v)
		v = dflt;
	if (!v)
		return NULL;
	if (!(c = strdup(v)))
		*oom = true;
	return c;
}

/* The worker's record of a delivery the backend stored claimed. */
static struct hl_delivery_record *
store_handoff_record(const struct hl_intake_req *r)
{
	const struct hl_delivery_in *in = &r->in;
	struct hl_delivery_record *d = calloc(1, sizeof(*d));
	bool oom = false;

	if (!d)
		return NULL;
	d->id = r->taken_id;
	d->delivery_id = store_strdup_or(in->delivery_id, NULL, &oom);
	d->hook_id = store_strdup_or(in->hook_id, NULL, &oom);
	d->source = store_strdup_or(in->source, "webhook", &oom);
	d->event_name = store_strdup_or(in->event_name, NULL, &oom);
	d->action = store_strdup_or(in->action, NULL, &oom);
	d->headers_json = store_strdup_or(in->headers_json, "{}", &oom);
	d->dedup_key = store_strdup_or(in->dedup_key, NULL, &oom);
	d->failure_key = store_strdup_or(in->failure_key, NULL, &oom);
	d->task_id = store_strdup_or(in->task_id, NULL, &oom);
	d->body = malloc(in->body_len + 1);
	if (oom || !d->body) {
		hl_delivery_record_free(d);
		return NULL;
	}
	if (in->body_len)
		memcpy(d->body, in->body, in->body_len);
	d->body[in->body_len] = '\0';
	d->body_len = in->body_len;
	d->received_ms = r->take_at_ms;
	d->claims = 1;
	return d;
}

/* Records delivery_id among the claims this handle holds (the lease
 * keeper renews only those); out of memory, c_lost makes it renew every
 * claim of the owner from then on. */
static void
store_claim_held(struct hl_store *s, const char *delivery_id)
{
	char **grown, *id = strdup(delivery_id);

	pthread_mutex_lock(&s->c_lock);
	if (id && s->c_n == s->c_cap) {
		size_t cap = s->c_cap ? s->c_cap * 2 : 16;

		if ((grown = realloc(s->c_ids, cap * sizeof(*grown)))) {
			s->c_ids = grown;
			s->c_cap = cap;
		}
	}
	if (id && s->c_n < s->c_cap) {
		s->c_ids[s->c_n++] = id;
		id = NULL;
	} else {
		s->c_lost = true;
	}
	pthread_mutex_unlock(&s->c_lock);
	free(id);
}

/* Forgets a claim this handle no longer holds (ended, given back, or
 * another process's now: rc 0, -HL_ECONFLICT, -HL_ENOTFOUND). */
static void
store_claim_dropped(struct hl_store *s, const char *delivery_id, int rc)
{
	size_t i;

	if (rc != 0 && rc != -HL_ECONFLICT && rc != -HL_ENOTFOUND)
		return; /* still this process's until the store says otherwise */
	pthread_mutex_lock(&s->c_lock);
	for (i = 0; i < s->c_n; i++) {
		if (strcmp(s->c_ids[i], delivery_id) == 0) {
			free(s->c_ids[i]);
			s->c_ids[i] = s->c_ids[--s->c_n];
			break;
		}
	}
	pthread_mutex_unlock(&s->c_lock);
}

/* Gives a claim back; one the store refused now goes to the lease keeper,
 * which gives it back once the store takes it (else it would be held, and
 * renewed, with no worker on it). */
static void
store_give_back_or_abandon(struct hl_store *s, const char *delivery_id)
{
	int rc = hl_store_give_back(s, delivery_id);

	if (rc < 0 && rc != -HL_ECONFLICT && rc != -HL_ENOTFOUND)
		(void)hl_store_abandon_claim(s, delivery_id);
}

int
hl_store_give_back(struct hl_store *s, const char *delivery_id)
{
	struct hl_err err = HL_ERR_INIT;
	int rc;

	pthread_mutex_lock(&s->db_lock);
	rc = s->ops->intake.finish(
	        s->b, delivery_id,
	        &(struct hl_delivery_result){ .state = HL_DELIVERY_RECEIVED, .not_before_ms = 0 },
	        &err);
	pthread_mutex_unlock(&s->db_lock);
	store_claim_dropped(s, delivery_id, rc);
	return rc;
}

/* ---- known event keys ------------------------------------------------
 *
 * A duplicate delivery of a known event keeps no body (body.h), so
 * compressing its body is wasted work: LZ4 is the largest single cost of
 * answering one (~5 us for 10 KB). The keys this process saw committed are
 * remembered as hashes in a table where each key has two slots (the one
 * a newer key takes when both are full is the first), so two keys that
 * share a slot do not push each other out; a delivery whose key is there
 * goes to the backend uncompressed (on PostgreSQL, without its body). The
 * table is only a hint: should the event turn out not to be known (both
 * its slots were taken by other keys, or its key row is gone), the body is
 * stored as it came (identity), which is as correct, only larger. */

static uint64_t
store_key_hash(const char *key)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (; *key; key++)
		h = (h ^ (unsigned char)*key) * 1099511628211ULL;
	return h ? h : 1;
}

/* The two slots of hash h. */
static _Atomic uint64_t *
store_key_slot(struct hl_store *s, uint64_t h, int which)
{
	return &s->known_keys[(which ? h >> 32 : h) & (STORE_KNOWN_KEYS - 1)];
}

static bool
store_key_known(struct hl_store *s, const char *key)
{
	uint64_t h = store_key_hash(key);

	return atomic_load_explicit(store_key_slot(s, h, 0), memory_order_relaxed) == h ||
	       atomic_load_explicit(store_key_slot(s, h, 1), memory_order_relaxed) == h;
}

static void
store_key_remember(struct hl_store *s, const char *key)
{
	uint64_t h = store_key_hash(key), v0, v1;

	v0 = atomic_load_explicit(store_key_slot(s, h, 0), memory_order_relaxed);
	v1 = atomic_load_explicit(store_key_slot(s, h, 1), memory_order_relaxed);
	if (v0 == h || v1 == h)
		return;
	atomic_store_explicit(store_key_slot(s, h, v0 && !v1), h, memory_order_relaxed);
}

/* Completes a batch: what the backend stored claimed goes to the ring
 * (before the sender hears, so a delivery answered is never lost here),
 * then every req->done. */
static void
store_complete(struct hl_store *s, struct hl_intake_req *list)
{
	struct hl_intake_req *r, *next;
	struct hl_delivery_record *d;
	int pushed = 0;

	for (r = list; r; r = next) {
		next = r->next;
		r->next = NULL;
		if (r->take) {
			if (r->taken_id <= 0) /* held since the reservation */
				store_claim_dropped(s, r->in.delivery_id, 0);
			d = r->taken_id > 0 ? store_handoff_record(r) : NULL;
			pthread_mutex_lock(&s->h_lock);
			s->h_reserved--;
			if (d) {
				s->h_ring[(s->h_first + s->h_len) % s->h_max] = d;
				s->h_len++;
				pushed++;
			}
			pthread_mutex_unlock(&s->h_lock);
			/* out of memory: the store has it, claimed; hand it back */
			if (!d && r->taken_id > 0) {
				store_give_back_or_abandon(s, r->in.delivery_id);
				(void)hl_store_publish(s, HL_CHANNEL_WORK, "", NULL);
			}
			r->take = false;
		}
		free(r->zbody);
		r->zbody = NULL;
		/* the event's key is in the store now: its next deliveries are
		 * duplicates */
		if (r->rc == 0 && r->in.dedup_key &&
		    (r->answer.status == HL_INTAKE_ACCEPTED ||
		     strcmp(r->answer.reason, "duplicate_event") == 0))
			store_key_remember(s, r->in.dedup_key);
		r->done(r);
	}
	if (pushed) {
		pthread_mutex_lock(&s->w_lock);
		s->w_seq++;
		pthread_cond_broadcast(&s->w_cond);
		pthread_mutex_unlock(&s->w_lock);
	}
}

static void *
store_syncer(void *arg)
{
	struct hl_store *s = arg;
	struct hl_intake_req *list, *r;
	int queued, rc;

	pthread_setname_np(pthread_self(), "hl-sync");
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
		store_complete(s, list);
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

	pthread_setname_np(pthread_self(), "hl-commit");
	pthread_mutex_lock(&s->q_lock);
	for (;;) {
		while (!s->q_head && !s->stopping)
			pthread_cond_wait(&s->q_cond, &s->q_lock);
		if (!s->q_head && s->stopping)
			break;
		list = s->q_head;
		s->q_head = s->q_tail = NULL;
		pthread_mutex_unlock(&s->q_lock);

		store_handoff_reserve(s, list);
		if (s->ops->intake.batch_own_conn) {
			queued = s->ops->intake.batch(s->b, list);
		} else {
			pthread_mutex_lock(&s->db_lock);
			queued = s->ops->intake.batch(s->b, list);
			pthread_mutex_unlock(&s->db_lock);
		}
		/* A failed batch (every req failed) needs no flush. */
		failed = true;
		for (r = tail = list; r; tail = r, r = r->next)
			failed = failed && r->rc == -HL_EDB;
		if (!s->syncer_started || failed) {
			if (queued > 0)
				hl_store_publish(s, HL_CHANNEL_WORK, "", NULL);
			store_complete(s, list);
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
hl_store_duplicate_refusal(struct hl_err *err, const char *delivery_id, const char *first)
{
	return hl_err_set(err, HL_ECONFLICT,
	                  "delivery '%s' is a duplicate of delivery '%s', which keeps the event's "
	                  "body: replay '%s'",
	                  delivery_id, first && *first ? first : "?",
	                  first && *first ? first : "?");
}

int
hl_store_processing_refusal(struct hl_err *err, const char *delivery_id)
{
	return hl_err_set(err, HL_ECONFLICT,
	                  "delivery '%s' is being processed; if the process that claimed it "
	                  "died, its claim is taken back when its lease runs out (on SQLite, "
	                  "also when the server starts again)",
	                  delivery_id);
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

/* Encodes the body on the caller's thread (so request threads share the
 * CPU cost, not the committer): see body.h; not when the event is most
 * likely known (above). */
static void
store_encode(struct hl_store *s, struct hl_intake_req *req)
{
	size_t n;

	req->known = req->in.dedup_key && store_key_known(s, req->in.dedup_key);
	if (req->known) {
		req->zenc = HL_BODY_IDENTITY;
		req->zbody = NULL;
		req->zlen = 0;
		return;
	}
	req->zenc = hl_body_encode(req->in.body, req->in.body_len, &req->zbody, &n);
	req->zlen = n;
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
	store_encode(s, req);
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
hl_store_set_handoff(struct hl_store *s, int max, struct hl_err *err)
{
	struct hl_delivery_record **ring;
	int rc = 0;

	if (max < 0 || max > 4096)
		return hl_err_set(err, HL_EINVAL, "a hand-off of %d deliveries is out of range",
		                  max);
	ring = max ? calloc((size_t)max, sizeof(*ring)) : NULL;
	if (max && !ring)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	pthread_mutex_lock(&s->h_lock);
	if (s->h_len || s->h_reserved) {
		rc = hl_err_set(err, HL_ECONFLICT, "the hand-off is in use");
		free(ring);
	} else {
		free(s->h_ring);
		s->h_ring = ring;
		s->h_max = max;
		s->h_first = 0;
	}
	pthread_mutex_unlock(&s->h_lock);
	return rc;
}

/* The oldest handed-off delivery, or NULL. */
static struct hl_delivery_record *
store_handoff_pop(struct hl_store *s)
{
	struct hl_delivery_record *d = NULL;

	pthread_mutex_lock(&s->h_lock);
	if (s->h_len > 0) {
		d = s->h_ring[s->h_first];
		s->h_ring[s->h_first] = NULL;
		s->h_first = (s->h_first + 1) % s->h_max;
		s->h_len--;
	}
	pthread_mutex_unlock(&s->h_lock);
	return d;
}

#define STORE_DB_LOOK_MS 1000 /* the store is asked at least this often */
#define STORE_CLAIM_MANY 8    /* claims taken by one query, at most */

int
hl_store_claim_next(struct hl_store *s, struct hl_delivery_record **out, struct hl_err *err)
{
	int64_t now = hl_time_mono_ms();
	uint64_t seq;
	bool ask;
	int rc, room;

	/* The store first when it may hold waiting deliveries (they are
	 * older than any handed off), or when it was not asked for a while
	 * (a delivery given back for later becomes due without a signal). */
	pthread_mutex_lock(&s->h_lock);
	seq = s->h_db_seq;
	ask = s->h_len == 0 || seq != s->h_db_seen || now - s->h_db_tried_ms >= STORE_DB_LOOK_MS;
	/* what the ring can take, plus the one returned; the slots promised
	 * to batches being written stay theirs */
	room = s->h_max - s->h_len - s->h_reserved + 1;
	room = room > STORE_CLAIM_MANY ? STORE_CLAIM_MANY : room;
	pthread_mutex_unlock(&s->h_lock);
	if (ask && s->ops->intake.claim_many && room > 1) {
		/* several at once into the ring: one query for many claims */
		struct hl_delivery_record *got[STORE_CLAIM_MANY];
		int n = 0, i;

		pthread_mutex_lock(&s->db_lock);
		rc = s->ops->intake.claim_many(s->b, got, room, &n, s->owner,
		                               atomic_load(&s->claim_lease_ms), err);
		pthread_mutex_unlock(&s->db_lock);
		if (rc < 0 && rc != -HL_ENOTFOUND)
			return rc;
		for (i = 0; i < n; i++)
			store_claim_held(s, got[i]->delivery_id);
		pthread_mutex_lock(&s->h_lock);
		s->h_db_tried_ms = now;
		if (n < room && s->h_db_seq == seq)
			s->h_db_seen = seq; /* fewer than asked for: none left */
		for (i = 1; i < n && s->h_len + s->h_reserved < s->h_max; i++) {
			s->h_ring[(s->h_first + s->h_len) % s->h_max] = got[i];
			s->h_len++;
		}
		pthread_mutex_unlock(&s->h_lock);
		/* the ring filled meanwhile: the rest go back, due now */
		for (; i < n; i++) {
			store_give_back_or_abandon(s, got[i]->delivery_id);
			hl_delivery_record_free(got[i]);
		}
		if (n > 0) {
			*out = got[0];
			return 0;
		}
	} else if (ask) {
		pthread_mutex_lock(&s->db_lock);
		rc = s->ops->intake.claim_next(s->b, out, s->owner, atomic_load(&s->claim_lease_ms),
		                               err);
		pthread_mutex_unlock(&s->db_lock);
		if (rc == 0)
			store_claim_held(s, (*out)->delivery_id);
		if (rc != -HL_ENOTFOUND)
			return rc;
		pthread_mutex_lock(&s->h_lock);
		s->h_db_tried_ms = now;
		if (s->h_db_seq == seq)
			s->h_db_seen = seq;
		pthread_mutex_unlock(&s->h_lock);
	}
	if ((*out = store_handoff_pop(s)))
		return 0;
	return hl_err_set(err, HL_ENOTFOUND, "no delivery waiting");
}

void
hl_store_handoff_release(struct hl_store *s)
{
	struct hl_delivery_record *d;

	while ((d = store_handoff_pop(s))) {
		store_give_back_or_abandon(s, d->delivery_id);
		hl_delivery_record_free(d);
	}
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
	store_claim_dropped(s, delivery_id, rc);
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

int
hl_store_prune(struct hl_store *s, int64_t *removed, int64_t before_ms, int max, struct hl_err *err)
{
	int64_t k = 0;
	int rc;

	if (max <= 0)
		return hl_err_set(err, HL_EINVAL, "bad prune batch %d", max);
	pthread_mutex_lock(&s->db_lock);
	rc = s->ops->intake.prune(s->b, &k, before_ms, max, err);
	pthread_mutex_unlock(&s->db_lock);
	if (removed)
		*removed = rc == 0 ? k : 0;
	return rc;
}

int
hl_store_compact(struct hl_store *s, int64_t *freed_bytes, int max_pages, struct hl_err *err)
{
	int rc;

	*freed_bytes = 0;
	if (max_pages <= 0)
		return hl_err_set(err, HL_EINVAL, "bad compact batch %d", max_pages);
	if (!s->ops->intake.compact || (s->flags & HL_STORE_READ_ONLY))
		return 0;
	pthread_mutex_lock(&s->db_lock);
	rc = s->ops->intake.compact(s->b, freed_bytes, max_pages, err);
	pthread_mutex_unlock(&s->db_lock);
	return rc;
}
