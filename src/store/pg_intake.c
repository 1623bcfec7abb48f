/*
 * pg_intake.c - the delivery queue on PostgreSQL (see store/intake.h):
 * group-committed intake batches with their deduplication, claims with
 * FOR UPDATE SKIP LOCKED under leases, finishes, recovery of dead
 * replicas' claims, replays and the delivery counters.
 *
 * An intake batch is one transaction on the intake connection: one
 * statement per delivery in the common case (the delivery and its event
 * key inserted together, each ON CONFLICT DO NOTHING, so the unique
 * delivery id and event key decide between replicas), then the summed
 * counter increments, then COMMIT; the batch is answered only after COMMIT
 * returned. The statements go in pipelines: BEGIN and up to PG_PIPE_CHUNK
 * deliveries in one round trip, the increments and COMMIT in another (a
 * round trip per statement cost more than the statements). A delivery of
 * an event the front end saw committed goes without its body (it is most
 * likely a duplicate, which keeps none); the body follows only when the
 * event was not known after all. When a statement fails the batch is
 * redone: a deadlock with another replica's batch (both inserting the same
 * ids) from the start, anything else statement by statement with one
 * savepoint per delivery, so one bad delivery fails alone.
 * delivery_counts is changed in the same statement or transaction as the
 * rows it counts, in the shard of the connection (migration 0013: others
 * never wait for its commit), its rows always locked in (event, state,
 * reason) order, so counter updates of concurrent transactions never
 * deadlock; a count is the sum of its shards.
 */
#include "base/clock.h"
#include "base/log.h"
#include "base/str.h"
#include "body.h"
#include "pg_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PG_BATCH_TRIES 3
#define PG_PIPE_CHUNK  64 /* deliveries per pipeline */

/*
 * One delivery in one statement: its event key is claimed first (unless
 * the key is known, or the delivery itself is: then it is a duplicate
 * delivery and stores nothing), and the delivery is stored as the event's
 * skipped duplicate when the key was someone else's, carrying the first
 * delivery's id and task id, and no body of its own when that first
 * delivery is known (encoding "duplicate", body.h). Returns the row id
 * (NULL: a duplicate delivery), its state, duplicate_of and task id. A key
 * claimed by a transaction still open when this one started is not in
 * `prior`: the insert waits for it and the row is a duplicate without
 * duplicate_of (pg_intake_answer reads it then).
 */
static const char pg_ins_sql[] =
        "WITH prior AS (SELECT delivery_id, task_id FROM event_keys"
        " WHERE $17::boolean AND dedup_key = $12),"
        " k AS (INSERT INTO event_keys (dedup_key, delivery_id, task_id, first_seen_ms)"
        " SELECT $12, $1, $13, $8 WHERE $17::boolean"
        " AND NOT EXISTS (SELECT 1 FROM prior)"
        " AND NOT EXISTS (SELECT 1 FROM deliveries WHERE delivery_id = $1)"
        " ON CONFLICT (dedup_key) DO NOTHING RETURNING 1),"
        " x AS (SELECT $17::boolean AND NOT EXISTS (SELECT 1 FROM k) AS dup,"
        " EXISTS (SELECT 1 FROM prior) AS known),"
        " d AS (INSERT INTO deliveries (delivery_id, hook_id, source, event_name, action,"
        " headers_json, body, received_ms, state, answer, reason, dedup_key, duplicate_of,"
        " task_id, updated_ms, body_encoding, body_size, failure_key, not_before_ms, claims,"
        " claimed_by, lease_until_ms)"
        " SELECT $1, $2, $3, $4, $5, $6, CASE WHEN x.known THEN ''::bytea ELSE $7 END, $8,"
        " CASE WHEN x.dup THEN 'skipped' ELSE $9 END,"
        " CASE WHEN x.dup THEN 'duplicate' ELSE $10 END,"
        " CASE WHEN x.dup THEN 'duplicate_event' ELSE $11 END, $12,"
        " CASE WHEN x.dup THEN (SELECT delivery_id FROM prior) END,"
        " CASE WHEN x.dup THEN (SELECT task_id FROM prior) ELSE $13 END,"
        " $8, CASE WHEN x.known THEN 'duplicate' ELSE $14 END, $15, $16, $8,"
        " CASE WHEN x.dup THEN 0 ELSE $18::integer END,"
        " CASE WHEN x.dup THEN NULL ELSE $19 END,"
        " CASE WHEN x.dup THEN NULL ELSE " PG_NOW_MS " + $20::bigint END FROM x"
        " ON CONFLICT (delivery_id) DO NOTHING RETURNING id, state, duplicate_of, task_id)"
        " SELECT id, state, duplicate_of, task_id FROM d"
        " UNION ALL SELECT NULL, NULL, NULL, NULL WHERE NOT EXISTS (SELECT 1 FROM d)";

/*
 * The statement of a delivery whose body was withheld: one of an event the
 * front end saw committed, so most likely a duplicate, which keeps no body.
 * It is stored as the skipped duplicate of the key's first delivery when
 * the key is known; else nothing is written, the key is not claimed, and
 * the fifth column says so: the delivery is then sent again as pg_ins_sql,
 * with its body. Otherwise the same results as pg_ins_sql, from a plan a
 * fraction of its size to start per row. $1-$6 as there, $7 the event key,
 * $8 received_ms, $9 body_size, $10 failure_key.
 */
static const char pg_known_sql[] =
        "WITH prior AS (SELECT delivery_id, task_id FROM event_keys WHERE dedup_key = $7),"
        " d AS (INSERT INTO deliveries (delivery_id, hook_id, source, event_name, action,"
        " headers_json, body, received_ms, state, answer, reason, dedup_key, duplicate_of,"
        " task_id, updated_ms, body_encoding, body_size, failure_key, not_before_ms, claims)"
        " SELECT $1, $2, $3, $4, $5, $6, ''::bytea, $8, 'skipped', 'duplicate',"
        " 'duplicate_event', $7, delivery_id, task_id, $8, 'duplicate', $9, $10, $8, 0"
        " FROM prior ON CONFLICT (delivery_id) DO NOTHING"
        " RETURNING id, state, duplicate_of, task_id)"
        " SELECT id, state, duplicate_of, task_id, false FROM d"
        " UNION ALL SELECT NULL, NULL, NULL, NULL, NOT EXISTS (SELECT 1 FROM prior)"
        " WHERE NOT EXISTS (SELECT 1 FROM d)";

static const char pg_count_bump_sql[] =
        "INSERT INTO delivery_counts (event_name, state, reason, n) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (event_name, state, reason, shard) DO UPDATE SET n = delivery_counts.n"
        " + excluded.n";

#define PG_COUNTS_UPSERT                                                                      \
	" ON CONFLICT (event_name, state, reason, shard) DO UPDATE SET n = delivery_counts.n" \
	" + excluded.n"

/* True when s is valid UTF-8 (PostgreSQL refuses anything else in text). */
static bool
pg_utf8_ok(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (p && *p) {
		int n = *p < 0x80             ? 0
		        : (*p & 0xe0) == 0xc0 ? 1
		        : (*p & 0xf0) == 0xe0 ? 2
		        : (*p & 0xf8) == 0xf0 ? 3
		                              : -1;
		if (n < 0 || (n == 1 && *p < 0xc2))
			return false;
		for (p++; n > 0; n--, p++)
			if ((*p & 0xc0) != 0x80)
				return false;
	}
	return true;
}

/* The counter increments of a batch, summed per (event, state, reason). */
struct pg_tally {
	const char *event, *state, *reason;
	int64_t n;
};

static void
pg_tally_add(struct pg_tally *t, size_t *len, const char *event, const char *state,
             const char *reason)
{
	size_t i;

	reason = reason ? reason : "";
	for (i = 0; i < *len; i++) {
		if (strcmp(t[i].event, event) == 0 && strcmp(t[i].state, state) == 0 &&
		    strcmp(t[i].reason, reason) == 0) {
			t[i].n++;
			return;
		}
	}
	t[*len] = (struct pg_tally){ event, state, reason, 1 };
	(*len)++;
}

static int
pg_tally_cmp(const void *a, const void *b)
{
	const struct pg_tally *x = a, *y = b;
	int c = strcmp(x->event, y->event);

	if (!c)
		c = strcmp(x->state, y->state);
	return c ? c : strcmp(x->reason, y->reason);
}

static enum hl_intake_status
pg_status_of(const char *answer)
{
	return answer && strcmp(answer, "accepted") == 0  ? HL_INTAKE_ACCEPTED
	       : answer && strcmp(answer, "skipped") == 0 ? HL_INTAKE_SKIPPED
	                                                  : HL_INTAKE_DUPLICATE;
}

/* What one delivery of a batch stores, between its statement and its
 * answer. */
struct pg_item {
	const char *state, *reason; /* of what is stored (state NULL: nothing) */
	bool claim_key;             /* the statement claims the event key */
	bool withheld;              /* its statement went without the body */
	bool sent;                  /* its statement is in the pipeline */
	const char *sql;            /* pg_ins_sql, or pg_known_sql when withheld */
};

/*
 * Checks one delivery and fills the parameters of its statement (p);
 * sets the answer of a stored delivery in r and the item. The body is
 * withheld when may_withhold and the front end saw the event's key
 * committed (r->known): the statement (it->sql) is then pg_known_sql.
 * Returns 0, or 1 when the delivery is refused (r->rc, r->err set; nothing
 * to write).
 */
static int
pg_intake_params(struct hl_intake_req *r, int64_t now, bool may_withhold, struct pg_item *it,
                 struct pg_params *p)
{
	const struct hl_delivery_in *in = &r->in;
	struct hl_intake_answer *a = &r->answer;
	const char *answer;

	memset(a, 0, sizeof(*a));
	it->state = it->reason = NULL;
	it->claim_key = it->sent = false;
	p->n = 0;
	if (!in->delivery_id || !*in->delivery_id || strlen(in->delivery_id) > HL_DELIVERY_ID_MAX) {
		r->rc = hl_err_set(&r->err, HL_EINVAL, "bad delivery id");
		return 1;
	}
	if (!in->event_name || !*in->event_name) {
		r->rc = hl_err_set(&r->err, HL_EINVAL, "missing event name");
		return 1;
	}
	if (!pg_utf8_ok(in->delivery_id) || !pg_utf8_ok(in->event_name) ||
	    !pg_utf8_ok(in->action) || !pg_utf8_ok(in->headers_json) ||
	    !pg_utf8_ok(in->dedup_key) || !pg_utf8_ok(in->failure_key) ||
	    !pg_utf8_ok(in->task_id) || !pg_utf8_ok(in->skip_reason) || !pg_utf8_ok(in->source)) {
		r->rc = hl_err_set(&r->err, HL_EINVAL, "delivery has text that is not UTF-8");
		return 1;
	}
	it->state = "received";
	answer = "accepted";
	a->status = a->original = HL_INTAKE_ACCEPTED;
	hl_strlcpy(a->task_id, in->task_id ? in->task_id : "", sizeof(a->task_id));
	if (in->skip_reason) {
		it->state = "skipped";
		answer = "skipped";
		it->reason = in->skip_reason;
		a->status = a->original = HL_INTAKE_SKIPPED;
		a->task_id[0] = '\0';
	}
	it->claim_key = !in->skip_reason && in->dedup_key && *in->dedup_key;
	it->withheld = may_withhold && it->claim_key && r->known;
	it->sql = it->withheld ? pg_known_sql : pg_ins_sql;
	/* taken by this process's workers at once: stored as their claim */
	if (r->take && !in->skip_reason)
		it->state = "processing";

	hl_pg_text(p, in->delivery_id);
	hl_pg_text(p, pg_utf8_ok(in->hook_id) ? in->hook_id : NULL); /* informational */
	hl_pg_text(p, in->source ? in->source : "webhook");
	hl_pg_text(p, in->event_name);
	hl_pg_text(p, in->action);
	hl_pg_text(p, in->headers_json ? in->headers_json : "{}");
	if (it->withheld) {
		hl_pg_text(p, in->dedup_key);
		hl_pg_int(p, now);
		hl_pg_int(p, (int64_t)in->body_len);
		hl_pg_text(p, in->failure_key);
		return 0;
	}
	if (r->zbody)
		hl_pg_bytes(p, r->zbody, r->zlen);
	else
		hl_pg_bytes(p, in->body ? in->body : "", in->body_len);
	hl_pg_int(p, now);
	hl_pg_text(p, it->state);
	hl_pg_text(p, answer);
	hl_pg_text(p, it->reason);
	hl_pg_text(p, in->dedup_key);
	hl_pg_text(p, a->task_id[0] ? a->task_id : NULL);
	hl_pg_text(p, hl_body_encoding_name((enum hl_body_encoding)r->zenc));
	hl_pg_int(p, (int64_t)in->body_len);
	hl_pg_text(p, in->failure_key);
	hl_pg_bool(p, it->claim_key);
	if (strcmp(it->state, "processing") == 0) {
		hl_pg_int(p, 1);
		hl_pg_text(p, r->take_owner);
		/* the lease runs from the row's write, on the database's
		 * clock (after what the statement waited for: its locks, its
		 * preparation, a reconnect): a claim stored with its lease
		 * already spent would be taken back at once */
		hl_pg_int(p, r->take_until_ms - r->take_at_ms);
	} else {
		hl_pg_int(p, 0);
		hl_pg_text(p, NULL);
		hl_pg_text(p, NULL);
	}
	return 0;
}

/*
 * The answer of one delivery from its statement's result (res, cleared
 * here), reading what else it needs inside the batch transaction (a
 * statement that went without the body and was told to, sent again with
 * it). Returns 0, with it->state / it->reason of what was stored (state
 * NULL when nothing was); < 0 when a statement failed (err).
 */
static int
pg_intake_answer(struct hl_store_backend *b, struct hl_intake_req *r, int64_t now, PGresult *res,
                 struct pg_item *it, struct hl_err *err)
{
	const struct hl_delivery_in *in = &r->in;
	struct hl_intake_answer *a = &r->answer;
	struct pg_params p = { .n = 0 };
	const char *id = hl_pg_get(res, 0, 0);
	int rc;

	if (!id && it->withheld && hl_pg_get(res, 0, 4) && *hl_pg_get(res, 0, 4) == 't') {
		/* 0. The key was not known after all: again, with the body. */
		PQclear(res);
		res = NULL;
		pg_intake_params(r, now, false, it, &p);
		if ((rc = hl_pg_exec(b, &res, pg_ins_sql, &p, false, "insert delivery", err)) < 0)
			return rc;
		return pg_intake_answer(b, r, now, res, it, err);
	}
	if (!id) {
		/* 1. The same delivery again (here or at another replica): the
		 * first answer, as a duplicate. Nothing was stored. */
		PQclear(res);
		hl_pg_text(&p, in->delivery_id);
		rc = hl_pg_exec(
		        b, &res,
		        "SELECT answer, task_id, reason FROM deliveries WHERE delivery_id = $1", &p,
		        false, "select delivery", err);
		if (rc < 0)
			return rc;
		memset(a, 0, sizeof(*a));
		a->status = HL_INTAKE_DUPLICATE;
		a->original =
		        PQntuples(res) ? pg_status_of(hl_pg_get(res, 0, 0)) : HL_INTAKE_DUPLICATE;
		if (PQntuples(res)) {
			hl_pg_copy(a->task_id, sizeof(a->task_id), res, 0, 1);
			hl_pg_copy(a->first_reason, sizeof(a->first_reason), res, 0, 2);
		}
		hl_strlcpy(a->reason, "duplicate_delivery", sizeof(a->reason));
		PQclear(res);
		it->state = it->reason = NULL;
		return 0;
	}
	if (it->claim_key && strcmp(hl_pg_get(res, 0, 1), "skipped") == 0 &&
	    !PQgetisnull(res, 0, 2)) {
		/* 2. The same event through another delivery: stored as a
		 * skipped duplicate of the first. */
		hl_pg_copy(a->duplicate_of, sizeof(a->duplicate_of), res, 0, 2);
		hl_pg_copy(a->task_id, sizeof(a->task_id), res, 0, 3);
		PQclear(res);
		a->status = a->original = HL_INTAKE_DUPLICATE;
		it->state = "skipped";
		it->reason = "duplicate_event";
	} else if (it->claim_key && strcmp(hl_pg_get(res, 0, 1), "skipped") == 0) {
		/* 2b. The same, the first one committed while this statement ran:
		 * its id and task id are read now. */
		char row_id[24];

		hl_strlcpy(row_id, id, sizeof(row_id));
		PQclear(res);
		hl_pg_text(&p, in->dedup_key);
		rc = hl_pg_exec(b, &res,
		                "SELECT delivery_id, task_id FROM event_keys WHERE dedup_key = $1",
		                &p, false, "select event key", err);
		if (rc < 0)
			return rc;
		if (PQntuples(res) != 1) {
			PQclear(res);
			return hl_err_set(err, HL_EDB, "postgres select event key: no key '%s'",
			                  in->dedup_key);
		}
		hl_pg_copy(a->duplicate_of, sizeof(a->duplicate_of), res, 0, 0);
		hl_pg_copy(a->task_id, sizeof(a->task_id), res, 0, 1);
		PQclear(res);
		a->status = a->original = HL_INTAKE_DUPLICATE;
		it->state = "skipped";
		it->reason = "duplicate_event";
		p.n = 0;
		hl_pg_text(&p, row_id);
		hl_pg_text(&p, a->duplicate_of);
		hl_pg_text(&p, a->task_id[0] ? a->task_id : NULL);
		rc = hl_pg_exec(
		        b, NULL,
		        "UPDATE deliveries SET duplicate_of = $2, task_id = $3 WHERE id = $1", &p,
		        false, "mark duplicate", err);
		if (rc < 0)
			return rc;
	} else {
		if (strcmp(it->state, "processing") == 0)
			r->taken_id = strtoll(id, NULL, 10);
		PQclear(res);
	}
	if (it->reason)
		hl_strlcpy(a->reason, it->reason, sizeof(a->reason));
	return 0;
}

/* One intake inside the batch transaction, statement by statement (under
 * a savepoint): 0 stored or answered, 1 refused, < 0 failed (err). */
static int
pg_intake_one(struct hl_store_backend *b, struct hl_intake_req *r, int64_t now, struct pg_item *it,
              struct hl_err *err)
{
	struct pg_params p = { .n = 0 };
	PGresult *res = NULL;
	int rc;

	if (pg_intake_params(r, now, true, it, &p))
		return 1;
	if ((rc = hl_pg_exec(b, &res, it->sql, &p, false, "insert delivery", err)) < 0)
		return rc;
	return pg_intake_answer(b, r, now, res, it, err);
}

/*
 * Up to PG_PIPE_CHUNK deliveries from order[*i] in one pipeline (one round
 * trip; chunks keep the results the server writes ahead of our reading
 * small), BEGIN first when begin; their answers after. 0, or < 0 (err).
 */
static int
pg_intake_chunk(struct hl_store_backend *b, struct hl_intake_req **order, struct pg_item *items,
                size_t n, size_t *i, int64_t now, bool begin, struct hl_err *err)
{
	struct pg_params p;
	PGresult *res[PG_PIPE_CHUNK] = { NULL };
	size_t first = *i, k, end = *i;
	int rc;

	if ((rc = hl_pg_pipe_start(b, err)) < 0)
		return rc;
	if (begin) {
		if ((rc = hl_pg_pipe_send_cmd(b, "BEGIN", "begin intake", err)) < 0)
			goto out;
		b->txn = true;
	}
	for (end = first; end < n && end - first < PG_PIPE_CHUNK; end++) {
		if (pg_intake_params(order[end], now, true, &items[end], &p))
			continue;
		if ((rc = hl_pg_pipe_send(b, items[end].sql, &p, "insert delivery", err)) < 0)
			goto out;
		items[end].sent = true;
	}
	if ((rc = hl_pg_pipe_sync(b, "insert delivery", err)) < 0)
		goto out;
	if (begin && (rc = hl_pg_pipe_next(b, NULL, "begin intake", err)) < 0)
		goto out;
	for (k = first; k < end; k++)
		if (items[k].sent &&
		    (rc = hl_pg_pipe_next(b, &res[k - first], "insert delivery", err)) < 0)
			goto out;
out:
	if (hl_pg_pipe_end(b, rc < 0 ? &(struct hl_err)HL_ERR_INIT : err) < 0 && rc == 0)
		rc = -HL_EDB;
	for (k = first; k < end; k++) {
		if (rc < 0 || !items[k].sent) {
			PQclear(res[k - first]);
			continue;
		}
		if ((rc = pg_intake_answer(b, order[k], now, res[k - first], &items[k], err)) < 0) {
			for (k++; k < end; k++)
				PQclear(res[k - first]);
			break;
		}
	}
	*i = end;
	return rc;
}

enum pg_batch_mode { PG_FAST, PG_SAVEPOINTS };

/* The tally, in counter-row order (no deadlock with other writers), and
 * COMMIT in one pipeline. */
static int
pg_batch_commit(struct hl_store_backend *b, struct pg_tally *t, size_t len, struct hl_err *err)
{
	struct pg_params p;
	size_t i;
	int rc;

	qsort(t, len, sizeof(*t), pg_tally_cmp);
	if ((rc = hl_pg_pipe_start(b, err)) < 0)
		return rc;
	for (i = 0; i < len; i++) {
		p.n = 0;
		hl_pg_text(&p, t[i].event);
		hl_pg_text(&p, t[i].state);
		hl_pg_text(&p, t[i].reason);
		hl_pg_int(&p, t[i].n);
		if ((rc = hl_pg_pipe_send(b, pg_count_bump_sql, &p, "count deliveries", err)) < 0)
			goto out;
	}
	if ((rc = hl_pg_pipe_send_cmd(b, "COMMIT", "commit intake", err)) < 0 ||
	    (rc = hl_pg_pipe_sync(b, "commit intake", err)) < 0)
		goto out;
	for (i = 0; i < len && rc == 0; i++)
		rc = hl_pg_pipe_next(b, NULL, "count deliveries", err);
	if (rc == 0)
		rc = hl_pg_pipe_next(b, NULL, "commit intake", err);
out:
	if (hl_pg_pipe_end(b, rc < 0 ? &(struct hl_err)HL_ERR_INIT : err) < 0 && rc == 0)
		rc = -HL_EDB;
	if (rc == 0)
		b->txn = false;
	return rc;
}

/*
 * One try of the batch; 0 committed, < 0 failed (err, b->sqlstate;
 * *committing true when COMMIT may have been sent).
 * PG_FAST: every statement in pipelines (a round trip per PG_PIPE_CHUNK
 * deliveries, one for the tally and COMMIT); any failure fails the try.
 * PG_SAVEPOINTS: statement by statement, each delivery under a savepoint,
 * so a bad one fails alone. Both end with pg_batch_commit.
 */
static int
pg_batch_try(struct hl_store_backend *b, struct hl_intake_req **order, struct pg_item *items,
             size_t n, enum pg_batch_mode mode, struct pg_tally *tally, int *queued,
             bool *committing, struct hl_err *err)
{
	struct hl_intake_req *r;
	int64_t now = hl_time_wall_ms();
	size_t len = 0, i;
	int rc, item_tries;

	*queued = 0;
	for (i = 0; i < n; i++) {
		r = order[i];
		r->rc = 0;
		r->err.code = 0;
		r->err.msg[0] = '\0';
		r->taken_id = 0;
		items[i].state = NULL;
	}
	/* durable when COMMIT returns (synchronous_commit on): an
	 * asynchronous commit made durable later by another connection is
	 * lost if the server restarts in between, and that connection may
	 * by then reach the restarted server */
	if ((rc = hl_pg_prepare(b, pg_count_bump_sql, "count deliveries", err)) < 0)
		goto fail;
	if (mode == PG_FAST) {
		if ((rc = hl_pg_prepare(b, pg_ins_sql, "insert delivery", err)) < 0 ||
		    (rc = hl_pg_prepare(b, pg_known_sql, "insert known delivery", err)) < 0)
			goto fail;
		for (i = 0; i < n;)
			if ((rc = pg_intake_chunk(b, order, items, n, &i, now, i == 0, err)) < 0)
				goto fail;
	} else {
		if ((rc = hl_pg_begin(b, "begin intake", err)) < 0)
			goto fail;
		for (i = 0; i < n; i++) {
			r = order[i];
			item_tries = 0;
		again:
			if ((rc = hl_pg_cmd(b, "SAVEPOINT item", "savepoint", err)) < 0)
				goto fail;
			rc = pg_intake_one(b, r, now, &items[i], &r->err);
			if (rc < 0) {
				/* read before the rollback, which clears it */
				bool retryable = hl_pg_retryable(b);

				if (b->lost)
					goto fail;
				/* this delivery alone fails (or, in a deadlock, retries) */
				if (hl_pg_cmd(b, "ROLLBACK TO SAVEPOINT item",
				              "rollback to savepoint", err) < 0) {
					rc = -HL_EDB;
					goto fail;
				}
				r->taken_id = 0;
				items[i].state = NULL;
				if (retryable && ++item_tries < PG_BATCH_TRIES)
					goto again;
				r->rc = rc;
				continue;
			}
			if ((rc = hl_pg_cmd(b, "RELEASE SAVEPOINT item", "release savepoint",
			                    err)) < 0)
				goto fail;
		}
	}
	for (i = 0; i < n; i++) {
		if (order[i]->rc != 0 || !items[i].state)
			continue;
		pg_tally_add(tally, &len, order[i]->in.event_name, items[i].state, items[i].reason);
		if (strcmp(items[i].state, "received") == 0)
			(*queued)++;
	}
	*committing = true;
	rc = pg_batch_commit(b, tally, len, err);
	if (rc == 0)
		return 0;
fail:
	hl_pg_rollback(b);
	return rc;
}

/* Replicas' batches take their rows' locks in one order (event key, then
 * delivery id): two batches sharing events wait for each other, they
 * never deadlock (a deadlock costs a second before PostgreSQL breaks it). */
static int
pg_req_cmp(const void *a, const void *b)
{
	const struct hl_intake_req *x = *(struct hl_intake_req *const *)a;
	const struct hl_intake_req *y = *(struct hl_intake_req *const *)b;
	const char *kx = x->in.dedup_key ? x->in.dedup_key : "";
	const char *ky = y->in.dedup_key ? y->in.dedup_key : "";
	int c = strcmp(kx, ky);

	return c ? c
	         : strcmp(x->in.delivery_id ? x->in.delivery_id : "",
	                  y->in.delivery_id ? y->in.delivery_id : "");
}

/* The batch on the intake connection (b is its backend). */
static int
pg_intake_batch(struct hl_store_backend *b, struct hl_intake_req *head)
{
	struct hl_intake_req *r, **order = NULL;
	struct hl_err err = HL_ERR_INIT;
	enum pg_batch_mode mode = PG_FAST;
	struct pg_tally *tally;
	struct pg_item *items;
	size_t n = 0;
	int queued = 0, tries = 0, reconnects = 0, rc;

	for (r = head; r; r = r->next)
		n++;
	tally = calloc(n + 1, sizeof(*tally));
	order = calloc(n + 1, sizeof(*order));
	items = calloc(n + 1, sizeof(*items));
	if (!tally || !order || !items) {
		free(tally);
		free(order);
		free(items);
		hl_err_set(&err, HL_ENOMEM, "out of memory");
		goto fail;
	}
	n = 0;
	for (r = head; r; r = r->next)
		order[n++] = r;
	qsort(order, n, sizeof(*order), pg_req_cmp);
	for (;;) {
		bool committing = false;

		rc = pg_batch_try(b, order, items, n, mode, tally, &queued, &committing, &err);
		if (rc == 0)
			break;
		/* a session found dead before COMMIT was sent (the server
		 * restarted, an administrator or a pooler ended it): nothing of
		 * the batch was committed, so it is tried once on a new one */
		if (b->lost) {
			if (committing || reconnects++ > 0)
				break;
			continue;
		}
		if (++tries >= PG_BATCH_TRIES + 1)
			break;
		/* a deadlock with another batch: again; anything else: one
		 * savepoint per delivery, so the bad one fails alone */
		if (!hl_pg_retryable(b))
			mode = PG_SAVEPOINTS;
	}
	free(tally);
	free(order);
	free(items);
	if (rc == 0)
		return queued;
fail:
	for (r = head; r; r = r->next) {
		r->rc = -HL_EDB;
		r->err = err;
		r->taken_id = 0;
	}
	return 0;
}

int
hl_pg_intake_batch(struct hl_store_backend *b, struct hl_intake_req *head)
{
	struct hl_intake_req *r;

	if (b->intake)
		return pg_intake_batch(b->intake, head);
	for (r = head; r; r = r->next) /* a read-only handle has none */
		r->rc = hl_err_set(&r->err, HL_EINVAL, "the store was opened read-only");
	return 0;
}

/* ---- claims ----------------------------------------------------------- */

/* Claims: the oldest deliveries waiting and due (in the order they became
 * due: a new one is due when it arrives), each locked SKIP LOCKED (another
 * replica's picks are skipped, not waited for), straight from the partial
 * index in its order so the walk stops after $4 rows; the counts move for
 * them. Only when none waits: claims of dead processes (their liveness
 * lock is free: "healer:owner:<owner>", pg.c) whose lease ran out on the database's clock
 * (the lease keeper also gives those back), no count moving. No process's
 * claims are taken while it lives: its workers are still on them (a lease
 * runs out when the renewals failed, as while the database was away, or
 * looks run out to a replica whose clock is ahead); one it cannot finish
 * it gives back itself (hl_store_abandon_claim). Leases: $3 ms from the
 * database's clock. */
#define PG_CLAIM_RETURNING                                                             \
	" RETURNING d.id, d.delivery_id, d.hook_id, d.source, d.event_name, d.action," \
	" d.headers_json, d.body, d.dedup_key, d.task_id, d.received_ms, d.claims,"    \
	" d.body_encoding, d.body_size, d.failure_key"
#define PG_CLAIM_SET                                                                     \
	" UPDATE deliveries d SET state = 'processing', claims = d.claims + 1,"          \
	" updated_ms = $1, claimed_by = $2, lease_until_ms = " PG_NOW_MS " + $3::bigint" \
	" FROM c WHERE d.id = c.id"

static const char pg_claim_sql[] =
        "WITH c AS (SELECT id FROM deliveries WHERE state = 'received' AND not_before_ms <= $1"
        " ORDER BY not_before_ms, id LIMIT $4 FOR UPDATE SKIP LOCKED),"
        " u AS (" PG_CLAIM_SET PG_CLAIM_RETURNING "),"
        " g AS (SELECT event_name, count(*) AS k FROM u GROUP BY event_name),"
        " n AS (INSERT INTO delivery_counts (event_name, state, reason, n)"
        " SELECT g.event_name, v.state, '', v.sign * g.k FROM g,"
        " (VALUES ('processing', 1), ('received', -1)) v (state, sign)"
        " ORDER BY 1, 2" PG_COUNTS_UPSERT ")"
        " SELECT * FROM u ORDER BY id";

static const char pg_claim_expired_sql[] =
        "WITH c AS (SELECT id FROM deliveries WHERE state = 'processing'"
        " AND lease_until_ms < " PG_NOW_MS " AND claimed_by IS DISTINCT FROM $2"
        " AND (claimed_by IS NULL"
        " OR pg_try_advisory_xact_lock(hashtextextended('healer:owner:' || claimed_by, 0)))"
        " ORDER BY lease_until_ms LIMIT $4 FOR UPDATE SKIP LOCKED)" PG_CLAIM_SET PG_CLAIM_RETURNING;

static const char pg_give_back_sql[] =
        "WITH u AS (UPDATE deliveries SET state = 'received', updated_ms = $2,"
        " claimed_by = NULL, lease_until_ms = NULL"
        " WHERE id = $1 AND state = 'processing' RETURNING event_name)"
        " INSERT INTO delivery_counts (event_name, state, reason, n)"
        " SELECT u.event_name, v.state, '', v.n FROM u,"
        " (VALUES ('processing', -1), ('received', 1)) v (state, n)"
        " ORDER BY v.state" PG_COUNTS_UPSERT;

static const char pg_poison_sql[] =
        "WITH u AS (UPDATE deliveries SET state = 'failed', reason = 'corrupt_body',"
        " updated_ms = $2, claimed_by = NULL, lease_until_ms = NULL"
        " WHERE id = $1 AND state = 'processing' RETURNING event_name)"
        " INSERT INTO delivery_counts (event_name, state, reason, n)"
        " SELECT u.event_name, v.state, v.reason, v.n FROM u,"
        " (VALUES ('failed', 'corrupt_body', 1), ('processing', '', -1)) v (state, reason, n)"
        " ORDER BY v.state" PG_COUNTS_UPSERT;

/* Decodes the stored body (see body.h); 0 or -1. */
static int
pg_decode_body(struct hl_delivery_record *d, const PGresult *r, int row, int col, const char *enc,
               int64_t size)
{
	return hl_body_decode(enc, PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col), size,
	                      HL_STORE_MAX_BODY, &d->body, &d->body_len);
}

/* The record of claimed row i; NULL when out of memory or its body cannot
 * be decoded (*corrupt set). */
static struct hl_delivery_record *
pg_claim_record(const PGresult *r, int i, bool *corrupt)
{
	struct hl_delivery_record *d = calloc(1, sizeof(*d));

	*corrupt = false;
	if (!d)
		return NULL;
	d->id = hl_pg_int_at(r, i, 0);
	if (pg_decode_body(d, r, i, 7, hl_pg_get(r, i, 12),
	                   PQgetisnull(r, i, 13) ? -1 : hl_pg_int_at(r, i, 13)) < 0) {
		*corrupt = true;
		hl_delivery_record_free(d);
		return NULL;
	}
	d->delivery_id = hl_pg_dup(r, i, 1);
	d->hook_id = hl_pg_dup(r, i, 2);
	d->source = hl_pg_dup(r, i, 3);
	d->event_name = hl_pg_dup(r, i, 4);
	d->action = hl_pg_dup(r, i, 5);
	d->headers_json = hl_pg_dup(r, i, 6);
	d->dedup_key = hl_pg_dup(r, i, 8);
	d->task_id = hl_pg_dup(r, i, 9);
	d->received_ms = hl_pg_int_at(r, i, 10);
	d->claims = (int)hl_pg_int_at(r, i, 11);
	d->failure_key = hl_pg_dup(r, i, 14);
	if (!d->delivery_id || !d->source || !d->headers_json || !d->event_name) {
		hl_delivery_record_free(d);
		return NULL;
	}
	return d;
}

int
hl_pg_claim_many(struct hl_store_backend *b, struct hl_delivery_record **out, int max, int *n,
                 const char *owner, int64_t lease_ms, struct hl_err *err)
{
	const char *sql = pg_claim_sql;
	PGresult *r = NULL;
	bool corrupt, poisoned = false;
	int rc, i, k = 0, tries = 0;
	int64_t now;

	*n = 0;
again:
	for (;;) {
		struct pg_params p = { .n = 0 };

		now = hl_time_wall_ms();
		hl_pg_int(&p, now);
		hl_pg_text(&p, owner);
		hl_pg_int(&p, lease_ms);
		hl_pg_int(&p, max);
		if ((rc = hl_pg_exec(b, &r, sql, &p, true, "claim", err)) < 0)
			return rc;
		if (PQntuples(r) > 0 || sql == pg_claim_expired_sql)
			break;
		PQclear(r);
		sql = pg_claim_expired_sql;
	}
	rc = 0;
	for (i = 0; i < PQntuples(r) && i < max; i++) {
		struct pg_params p = { .n = 0 };

		if ((out[k] = pg_claim_record(r, i, &corrupt))) {
			k++;
			continue;
		}
		hl_pg_int(&p, hl_pg_int_at(r, i, 0));
		hl_pg_int(&p, hl_time_wall_ms());
		if (corrupt) {
			/* never hand out (or loop on) a body that cannot be decoded */
			rc = hl_pg_exec(b, NULL, pg_poison_sql, &p, false, "mark corrupt body",
			                err);
			poisoned = true;
		} else {
			/* out of memory: give it back, due now */
			rc = hl_pg_exec(b, NULL, pg_give_back_sql, &p, false, "give back", err);
			if (rc == 0)
				rc = hl_err_set(err, HL_ENOMEM, "out of memory");
		}
		if (rc < 0)
			break;
	}
	PQclear(r);
	*n = k;
	if (k > 0)
		return 0;
	/* every one claimed was corrupt (and is failed now): the next ones */
	if (rc == 0 && poisoned && ++tries < 64) {
		sql = pg_claim_sql;
		poisoned = false;
		goto again;
	}
	return rc < 0 ? rc : hl_err_set(err, HL_ENOTFOUND, "no delivery waiting");
}

int
hl_pg_claim_next(struct hl_store_backend *b, struct hl_delivery_record **out, const char *owner,
                 int64_t lease_ms, struct hl_err *err)
{
	int n;

	return hl_pg_claim_many(b, out, 1, &n, owner, lease_ms, err);
}

/* Renews owner's claims it holds ($3) for $2 ms from the database's clock,
 * and gives back its claims it does not hold whose lease ran out: a claim
 * committed while its answer was lost (the connection went at COMMIT), or
 * an intake batch's hand-off committed so; nobody works on those, and no
 * other process takes a live owner's claims. A claim being made as the
 * list was copied has a fresh lease. */
static const char pg_renew_sql[] =
        "WITH r AS (UPDATE deliveries SET lease_until_ms = " PG_NOW_MS " + $2::bigint"
        " WHERE state = 'processing'"
        " AND claimed_by = $1 AND delivery_id = ANY ($3::text[]) RETURNING 1),"
        " u AS (UPDATE deliveries d SET state = 'received', claimed_by = NULL,"
        " lease_until_ms = NULL, updated_ms = $4 WHERE d.state = 'processing'"
        " AND d.claimed_by = $1 AND d.lease_until_ms < " PG_NOW_MS
        " AND NOT (d.delivery_id = ANY ($3::text[])) RETURNING d.event_name),"
        " g AS (SELECT event_name, count(*) AS k FROM u GROUP BY event_name),"
        " c AS (INSERT INTO delivery_counts (event_name, state, reason, n)"
        " SELECT g.event_name, v.state, '', v.sign * g.k FROM g,"
        " (VALUES ('processing', -1), ('received', 1)) v (state, sign)"
        " ORDER BY 1, 2" PG_COUNTS_UPSERT ")"
        " SELECT (SELECT count(*) FROM r), (SELECT count(*) FROM u)";

int
hl_pg_renew(struct hl_store_backend *b, const char *owner, int64_t until_ms,
            const char *const *ids, size_t n, struct hl_err *err)
{
	struct hl_buf arr = HL_BUF_INIT(0);
	struct pg_params p = { .n = 0 };
	PGresult *r = NULL;
	int rc;

	hl_pg_text(&p, owner);
	/* how long, from the database's clock: the store gives a time on
	 * this process's clock, which may differ */
	hl_pg_int(&p, until_ms - hl_time_wall_ms());
	if (!ids)
		return hl_pg_exec(b, NULL,
		                  "UPDATE deliveries SET lease_until_ms = " PG_NOW_MS
		                  " + $2::bigint"
		                  " WHERE state = 'processing' AND claimed_by = $1",
		                  &p, false, "renew claims", err);
	/* a text[] literal: every element quoted, '"' and '\' escaped */
	hl_buf_append_char(&arr, '{');
	for (size_t i = 0; i < n; i++) {
		hl_buf_append_str(&arr, i ? ",\"" : "\"");
		for (const char *c = ids[i]; *c; c++) {
			if (*c == '"' || *c == '\\')
				hl_buf_append_char(&arr, '\\');
			hl_buf_append_char(&arr, *c);
		}
		hl_buf_append_char(&arr, '"');
	}
	hl_buf_append_char(&arr, '}');
	if (hl_buf_error(&arr)) {
		hl_buf_release(&arr);
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	}
	hl_pg_text(&p, arr.data);
	hl_pg_int(&p, hl_time_wall_ms());
	rc = hl_pg_exec(b, &r, pg_renew_sql, &p, false, "renew claims", err);
	if (rc == 0 && hl_pg_int_at(r, 0, 1) > 0) {
		char back[24];

		snprintf(back, sizeof(back), "%lld", (long long)hl_pg_int_at(r, 0, 1));
		hl_log_kv(HL_LOG_WARN,
		          "claims of this process that no worker holds (their answer was lost "
		          "with the connection) are waiting again",
		          "deliveries", back, NULL);
	}
	PQclear(r);
	hl_buf_release(&arr);
	return rc;
}

/* Requeues the claims of dead processes: their liveness lock is free (the
 * session that held it is gone) and they were not renewed lately (their
 * lease ends within $3 ms on the database's clock; NULL: at once), and
 * claims without an owner or lease. A live process's claims are never
 * taken, however late its lease looks (a replica's clock ahead, its
 * renewals held up): its workers are on them. A live process's listener
 * session can be gone for a moment (terminated, cut by a proxy, the
 * database restarted) before it reconnects and locks again; its keeper
 * still renews its claims every third of the lease. */
static const char pg_reap_sql[] =
        "WITH dead AS (SELECT o.claimed_by FROM (SELECT DISTINCT claimed_by FROM deliveries"
        " WHERE state = 'processing' AND claimed_by IS NOT NULL AND claimed_by <> $2) o"
        " WHERE pg_try_advisory_xact_lock(hashtextextended('healer:owner:' || o.claimed_by, 0))),"
        " u AS (UPDATE deliveries d SET state = 'received', claimed_by = NULL,"
        " lease_until_ms = NULL, updated_ms = $1 WHERE d.state = 'processing'"
        " AND d.claimed_by IS DISTINCT FROM $2"
        " AND (d.claimed_by IS NULL OR d.lease_until_ms IS NULL"
        " OR (($3::bigint IS NULL OR d.lease_until_ms < " PG_NOW_MS " + $3::bigint)"
        " AND d.claimed_by IN (SELECT claimed_by FROM dead)))"
        " RETURNING d.event_name),"
        " g AS (SELECT event_name, count(*) AS k FROM u GROUP BY event_name),"
        " c AS (INSERT INTO delivery_counts (event_name, state, reason, n)"
        " SELECT g.event_name, v.state, '', v.sign * g.k FROM g,"
        " (VALUES ('processing', -1), ('received', 1)) v (state, sign)"
        " ORDER BY 1, 2" PG_COUNTS_UPSERT ")"
        " SELECT count(*) FROM u";

int
hl_pg_reap(struct hl_store_backend *b, int64_t *n, const char *owner, int64_t lease_ms,
           struct hl_err *err)
{
	struct pg_params p = { .n = 0 };
	PGresult *r = NULL;
	int64_t now = hl_time_wall_ms();
	int rc;

	hl_pg_int(&p, now);
	hl_pg_text(&p, owner);
	/* a live process renewed within the last third of its lease (its
	 * claims then last two thirds more): renewed longer ago than two
	 * thirds, a process without its lock is dead; lease_ms 0: at once */
	hl_pg_int_or_null(&p, lease_ms > 0 ? lease_ms / 3 : 0);
	if ((rc = hl_pg_exec(b, &r, pg_reap_sql, &p, false, "requeue dead claims", err)) < 0)
		return rc;
	*n = hl_pg_int_at(r, 0, 0);
	PQclear(r);
	return 0;
}

/* How far the counters are from the rows (the source of truth) and the
 * counts of the rows retention removed: rows + pruned - counters, by
 * event, state and reason, only where they differ. */
static const char pg_count_drift_sql[] =
        "SELECT event_name, state, reason, SUM(n)::bigint FROM ("
        " SELECT event_name, state, COALESCE(reason, '') AS reason, COUNT(*) AS n"
        " FROM deliveries GROUP BY 1, 2, 3"
        " UNION ALL SELECT event_name, state, reason, n FROM delivery_counts_pruned"
        " UNION ALL SELECT event_name, state, reason, -n FROM delivery_counts) c"
        " GROUP BY 1, 2, 3 HAVING SUM(n) <> 0 ORDER BY 1, 2, 3";

/*
 * Brings the counters back to the rows when something changed rows
 * without them (an edit by hand, a build that miscounted): every healer
 * transaction changes the counters with the rows it counts, so a crash
 * leaves none wrong, and no table is locked for this. The
 * difference is read in one snapshot (REPEATABLE READ, no table lock: it
 * reads every row, bodies and all, for as long as that takes, while the
 * other replicas go on taking deliveries and counting them). What they
 * commit after that snapshot moves rows and counters alike, so the
 * difference still holds when it is added to the counters, in a
 * transaction of its own (their rows in (event, state, reason) order, as
 * every counter update takes them), which only waits for the counter rows
 * it adds to. Nothing is written when the counters are right. Replicas
 * starting together repair one after the other (an advisory lock of the
 * store's schema, held from before the snapshot until the repair
 * committed), so a difference is never added twice.
 */
static int
pg_count_repair_locked(struct hl_store_backend *b, struct hl_err *err)
{
	PGresult *r = NULL;
	int rc, i;

	rc = hl_pg_cmd(b, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", "count drift", err);
	if (rc < 0)
		return rc;
	b->txn = true;
	if ((rc = hl_pg_exec(b, &r, pg_count_drift_sql, NULL, false, "count drift", err)) < 0) {
		hl_pg_rollback(b);
		return rc;
	}
	if ((rc = hl_pg_commit(b, "count drift", err)) < 0 || PQntuples(r) == 0) {
		PQclear(r);
		return rc;
	}
	rc = hl_pg_begin(b, "repair counts", err);
	for (i = 0; rc == 0 && i < PQntuples(r); i++) {
		struct pg_params p = { .n = 0 };

		hl_pg_text(&p, hl_pg_get(r, i, 0));
		hl_pg_text(&p, hl_pg_get(r, i, 1));
		hl_pg_text(&p, hl_pg_get(r, i, 2));
		hl_pg_int(&p, hl_pg_int_at(r, i, 3));
		rc = hl_pg_exec(b, NULL, pg_count_bump_sql, &p, false, "repair counts", err);
	}
	if (rc == 0)
		rc = hl_pg_commit(b, "repair counts", err);
	else
		hl_pg_rollback(b);
	if (rc == 0) {
		char k[24];

		snprintf(k, sizeof(k), "%d", PQntuples(r));
		hl_log_kv(HL_LOG_WARN, "delivery counters differed from the rows: corrected",
		          "counters", k, NULL);
	}
	PQclear(r);
	return rc;
}

static int
pg_count_repair(struct hl_store_backend *b, struct hl_err *err)
{
	char sqlstate[sizeof(b->sqlstate)];
	int rc;

	rc = hl_pg_cmd(b,
	               "SELECT pg_advisory_lock(hashtextextended('healer:counts:'"
	               " || COALESCE(current_schema(), ''), 0))",
	               "repair counts", err);
	if (rc < 0)
		return rc;
	rc = pg_count_repair_locked(b, err);
	/* a session that is gone took the lock with it; the repair's failure
	 * (its sqlstate: retryable or not) is the one told */
	memcpy(sqlstate, b->sqlstate, sizeof(sqlstate));
	(void)hl_pg_cmd(b,
	                "SELECT pg_advisory_unlock(hashtextextended('healer:counts:'"
	                " || COALESCE(current_schema(), ''), 0))",
	                "repair counts", NULL);
	memcpy(b->sqlstate, sqlstate, sizeof(sqlstate));
	return rc;
}

/*
 * At start: the claims of dead processes go back to the queue (what every
 * replica's lease keeper does too, here at once for every dead claim),
 * then the counters are checked against the rows (pg_count_repair). Each
 * step is its own transaction and none locks a table, so the replicas
 * already running take and count deliveries meanwhile.
 */
int
hl_pg_recover(struct hl_store_backend *b, int64_t *n, const char *owner, struct hl_err *err)
{
	int64_t lock_timeout = atomic_load(&b->lock_timeout_ms);
	int rc, tries;

	/* another replica's repair holds the counts' lock as long as it
	 * takes: waited for without the session's lock timeout */
	hl_pg_lock_timeout(b, 0);
	for (tries = 0;; tries++) {
		rc = hl_pg_reap(b, n, owner, 0, err);
		if (rc == 0)
			rc = pg_count_repair(b, err);
		if (rc == 0)
			break;
		hl_pg_rollback(b);
		if (!hl_pg_retryable(b) || tries + 1 >= PG_BATCH_TRIES)
			break;
	}
	hl_pg_lock_timeout(b, lock_timeout);
	return rc;
}

/* Moves the deliveries matching COND back to received, with counts. */
#define PG_REQUEUE_SQL(cond)                                                                                 \
	"WITH o AS (SELECT id, state AS was, COALESCE(reason, '') AS was_reason FROM deliveries"             \
	" WHERE " cond " FOR UPDATE),"                                                                       \
	" u AS (UPDATE deliveries d SET state = 'received', reason = NULL, claims = 0,"                      \
	" not_before_ms = 0, claimed_by = NULL, lease_until_ms = NULL, finished_ms = NULL,"                  \
	" updated_ms = $1 FROM o WHERE d.id = o.id RETURNING d.event_name, o.was, o.was_reason),"            \
	" g AS (SELECT event_name, was, was_reason, count(*) AS k FROM u GROUP BY 1, 2, 3),"                 \
	" c AS (INSERT INTO delivery_counts (event_name, state, reason, n)"                                  \
	" SELECT event_name, state, reason, sum(n) FROM ("                                                   \
	" SELECT event_name, was AS state, was_reason AS reason, -k AS n FROM g UNION ALL"                   \
	" SELECT event_name, 'received', '', k FROM g) x GROUP BY 1, 2, 3 ORDER BY 1, 2, 3" PG_COUNTS_UPSERT \
	")"                                                                                                  \
	" SELECT count(*) FROM u"

int
hl_pg_requeue(struct hl_store_backend *b, int64_t *n, const char *delivery_id, struct hl_err *err)
{
	struct pg_params p = { .n = 0 }, q = { .n = 0 };
	PGresult *r = NULL;
	char state[16] = "", enc[16] = "", dup_of[HL_DELIVERY_ID_MAX + 1] = "";
	int rc;

	*n = 0;
	hl_pg_int(&p, hl_time_wall_ms());
	if (!delivery_id) {
		rc = hl_pg_exec(b, &r, PG_REQUEUE_SQL("state = 'failed'"), &p, false, "requeue",
		                err);
		if (rc == 0)
			*n = hl_pg_int_at(r, 0, 0);
		PQclear(r);
		return rc;
	}
	if ((rc = hl_pg_begin(b, "requeue", err)) < 0)
		return rc;
	hl_pg_text(&q, delivery_id);
	rc = hl_pg_exec(b, &r,
	                "SELECT state, body_encoding, duplicate_of FROM deliveries"
	                " WHERE delivery_id = $1 FOR UPDATE",
	                &q, false, "requeue", err);
	if (rc < 0)
		goto out;
	if (PQntuples(r) == 1) {
		hl_pg_copy(state, sizeof(state), r, 0, 0);
		hl_pg_copy(enc, sizeof(enc), r, 0, 1);
		hl_pg_copy(dup_of, sizeof(dup_of), r, 0, 2);
	}
	PQclear(r);
	r = NULL;
	if (!state[0])
		rc = hl_err_set(err, HL_ENOTFOUND, "no delivery '%s'", delivery_id);
	else if (strcmp(state, "processing") == 0)
		rc = hl_store_processing_refusal(err, delivery_id);
	else if (strcmp(enc, hl_body_encoding_name(HL_BODY_DUPLICATE)) == 0)
		rc = hl_store_duplicate_refusal(err, delivery_id, dup_of);
	else if (strcmp(state, "received") != 0) { /* a waiting one waits already */
		hl_pg_text(&p, delivery_id);
		rc = hl_pg_exec(b, &r, PG_REQUEUE_SQL("delivery_id = $2"), &p, false, "requeue",
		                err);
	}
	if (rc == 0 && r)
		*n = hl_pg_int_at(r, 0, 0);
	PQclear(r);
	if (rc == 0)
		rc = hl_pg_commit(b, "requeue", err);
out:
	if (rc < 0)
		hl_pg_rollback(b);
	return rc;
}

/* ---- finish ------------------------------------------------------------ */

static const char pg_fin_done_sql[] =
        "WITH u AS (UPDATE deliveries SET state = $2, reason = $3, updated_ms = $4,"
        " finished_ms = $4, process_count = process_count + 1,"
        " decision_json = COALESCE($5, decision_json), claimed_by = NULL, lease_until_ms = NULL"
        " WHERE delivery_id = $1 AND state = 'processing' AND claimed_by = $7"
        " RETURNING event_name),"
        " c AS (INSERT INTO delivery_counts (event_name, state, reason, n)"
        " SELECT u.event_name, v.state, v.reason, v.n FROM u,"
        " (VALUES ('processing'::text, ''::text, -1), ($2::text, COALESCE($3::text, ''), 1))"
        " v (state, reason, n) ORDER BY v.state, v.reason" PG_COUNTS_UPSERT "),"
        " e AS (INSERT INTO events (delivery_id, event_json, created_ms)"
        " SELECT $1, $6, $4 FROM u WHERE $6::text IS NOT NULL"
        " ON CONFLICT (delivery_id) DO UPDATE SET event_json = excluded.event_json)"
        " SELECT event_name FROM u";

static const char pg_fin_back_sql[] =
        "WITH u AS (UPDATE deliveries SET state = 'received', updated_ms = $2,"
        " not_before_ms = $3, claimed_by = NULL, lease_until_ms = NULL"
        " WHERE delivery_id = $1 AND state = 'processing' AND claimed_by = $5"
        " RETURNING event_name),"
        " c AS (INSERT INTO delivery_counts (event_name, state, reason, n)"
        " SELECT u.event_name, v.state, '', v.n FROM u,"
        " (VALUES ('processing', -1), ('received', 1)) v (state, n)"
        " ORDER BY v.state" PG_COUNTS_UPSERT "),"
        " e AS (INSERT INTO events (delivery_id, event_json, created_ms)"
        " SELECT $1, $4, $2 FROM u WHERE $4::text IS NOT NULL"
        " ON CONFLICT (delivery_id) DO UPDATE SET event_json = excluded.event_json)"
        " SELECT event_name FROM u";

int
hl_pg_finish(struct hl_store_backend *b, const char *delivery_id,
             const struct hl_delivery_result *res, struct hl_err *err)
{
	struct pg_params p = { .n = 0 };
	int64_t now = hl_time_wall_ms();
	bool back = res->state == HL_DELIVERY_RECEIVED;
	PGresult *r = NULL;
	int rc;

	hl_pg_text(&p, delivery_id);
	if (back) {
		hl_pg_int(&p, now);
		hl_pg_int(&p, res->not_before_ms);
		hl_pg_text(&p, res->event_json);
	} else {
		hl_pg_text(&p, hl_delivery_state_name(res->state));
		hl_pg_text(&p, res->reason);
		hl_pg_int(&p, now);
		hl_pg_text(&p, res->decision_json);
		hl_pg_text(&p, res->event_json);
	}
	/* only its claimer's: a claim taken over (its lease ran out) is the
	 * new claimer's to end */
	hl_pg_text(&p, b->owner);
	rc = hl_pg_exec(b, &r, back ? pg_fin_back_sql : pg_fin_done_sql, &p, false, "finish", err);
	if (rc < 0)
		return rc;
	rc = PQntuples(r) ? 0
	                  : hl_err_set(err, HL_ECONFLICT,
	                               "delivery '%s' is not being processed by this process",
	                               delivery_id);
	PQclear(r);
	return rc;
}

/* ---- reads -------------------------------------------------------------- */

int
hl_pg_decision(struct hl_store_backend *b, char **out, const char *delivery_id, struct hl_err *err)
{
	struct pg_params p = { .n = 0 };
	PGresult *r = NULL;
	char *json = NULL;
	int rc;

	hl_pg_text(&p, delivery_id);
	rc = hl_pg_exec(b, &r, "SELECT decision_json FROM deliveries WHERE delivery_id = $1", &p,
	                false, "decision", err);
	if (rc < 0)
		return rc;
	if (PQntuples(r))
		json = hl_pg_dup(r, 0, 0);
	PQclear(r);
	if (!json)
		return hl_err_set(err, HL_ENOTFOUND, "no decision for delivery '%s'", delivery_id);
	*out = json;
	return 0;
}

int
hl_pg_queue_depth(struct hl_store_backend *b, int64_t *out, struct hl_err *err)
{
	PGresult *r = NULL;
	int rc;

	rc = hl_pg_exec(b, &r,
	                "SELECT COALESCE(SUM(n), 0)::bigint FROM delivery_counts"
	                " WHERE state IN ('received', 'processing')",
	                NULL, false, "queue depth", err);
	if (rc < 0)
		return rc;
	*out = hl_pg_int_at(r, 0, 0);
	PQclear(r);
	return 0;
}

int
hl_pg_counts(struct hl_store_backend *b,
             void (*fn)(void *, const char *, const char *, const char *, int64_t), void *arg,
             struct hl_err *err)
{
	PGresult *r = NULL;
	int rc, i;

	rc = hl_pg_exec(b, &r,
	                "SELECT event_name, state, reason, SUM(n)::bigint FROM delivery_counts"
	                " GROUP BY 1, 2, 3 HAVING SUM(n) > 0 ORDER BY 1, 2, 3 LIMIT 1000",
	                NULL, false, "counts", err);
	if (rc < 0)
		return rc;
	for (i = 0; i < PQntuples(r); i++)
		fn(arg, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2),
		   hl_pg_int_at(r, i, 3));
	PQclear(r);
	return 0;
}

int
hl_pg_recent(struct hl_store_backend *b, struct hl_delivery_summary *out, size_t max, size_t *n,
             struct hl_err *err)
{
	struct pg_params p = { .n = 0 };
	PGresult *r = NULL;
	size_t k;
	int rc;

	hl_pg_int(&p, (int64_t)max);
	rc = hl_pg_exec(b, &r,
	                "SELECT delivery_id, event_name, action, source, state, answer, reason,"
	                /* the task the decision names (a failure an active
	                 * task owns), else the delivery's own */
	                " COALESCE(decision_json::json->>'task_id', task_id), received_ms,"
	                " claims FROM deliveries ORDER BY id DESC LIMIT $1",
	                &p, false, "recent", err);
	if (rc < 0)
		return rc;
	for (k = 0; k < max && (int)k < PQntuples(r); k++) {
		struct hl_delivery_summary *d = &out[k];
		int i = (int)k;

		hl_pg_copy(d->delivery_id, sizeof(d->delivery_id), r, i, 0);
		hl_pg_copy(d->event, sizeof(d->event), r, i, 1);
		hl_pg_copy(d->action, sizeof(d->action), r, i, 2);
		hl_pg_copy(d->source, sizeof(d->source), r, i, 3);
		hl_pg_copy(d->state, sizeof(d->state), r, i, 4);
		hl_pg_copy(d->answer, sizeof(d->answer), r, i, 5);
		hl_pg_copy(d->reason, sizeof(d->reason), r, i, 6);
		hl_pg_copy(d->task_id, sizeof(d->task_id), r, i, 7);
		d->received_ms = hl_pg_int_at(r, i, 8);
		d->claims = (int)hl_pg_int_at(r, i, 9);
	}
	PQclear(r);
	*n = k;
	return 0;
}

/* ---- retention -------------------------------------------------------- */

/* One statement: the rows go with their counts (the counter rows in key
 * order) and their normalized events, or none of it does. */
static const char pg_prune_sql[] =
        "WITH ids AS (SELECT id, delivery_id FROM deliveries WHERE received_ms < $1"
        " AND state IN ('processed', 'skipped', 'failed') ORDER BY received_ms, id LIMIT $2"
        " FOR UPDATE SKIP LOCKED),"
        " e AS (DELETE FROM events WHERE delivery_id IN (SELECT delivery_id FROM ids)),"
        " d AS (DELETE FROM deliveries WHERE id IN (SELECT id FROM ids)"
        " RETURNING event_name, state, COALESCE(reason, '') AS reason),"
        " c AS (INSERT INTO delivery_counts_pruned (event_name, state, reason, n)"
        " SELECT event_name, state, reason, COUNT(*) FROM d GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
        " ON CONFLICT (event_name, state, reason) DO UPDATE SET n = delivery_counts_pruned.n"
        " + excluded.n)"
        " SELECT COUNT(*) FROM d";

static const char *const pg_prune_more_sql[] = {
	"DELETE FROM event_keys WHERE dedup_key IN (SELECT dedup_key FROM event_keys"
	" WHERE first_seen_ms < $1 ORDER BY first_seen_ms LIMIT $2)",
	"DELETE FROM redeliveries WHERE guid IN (SELECT guid FROM redeliveries"
	" WHERE requested_ms < $1 ORDER BY requested_ms LIMIT $2)",
};

int
hl_pg_prune(struct hl_store_backend *b, int64_t *removed, int64_t before_ms, int max,
            struct hl_err *err)
{
	struct pg_params p = { .n = 0 };
	PGresult *r = NULL;
	size_t i;
	int rc;

	*removed = 0;
	hl_pg_int(&p, before_ms);
	hl_pg_int(&p, max);
	if ((rc = hl_pg_exec(b, &r, pg_prune_sql, &p, false, "prune", err)) < 0)
		return rc;
	if (PQntuples(r) == 1)
		*removed = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	for (i = 0; i < sizeof(pg_prune_more_sql) / sizeof(pg_prune_more_sql[0]); i++) {
		if ((rc = hl_pg_exec(b, &r, pg_prune_more_sql[i], &p, false, "prune", err)) < 0)
			return rc;
		PQclear(r);
	}
	return 0;
}
