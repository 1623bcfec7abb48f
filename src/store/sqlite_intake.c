/*
 * sqlite_intake.c - the delivery queue on SQLite (see store/intake.h):
 * group-committed intake batches with their deduplication, claims,
 * finishes, recovery and the delivery counters.
 *
 * delivery_counts is maintained in the same transaction as every state
 * change, so status and metrics never scan the deliveries table (intake
 * batches sum their increments and write them just before the commit).
 */
#include "base/clock.h"
#include "base/str.h"
#include "body.h"
#include "sqlite_impl.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const hl_sq_sql[SQ_MAX] = {
	[SQ_SYNC_FULL] = "PRAGMA synchronous=FULL",
	[SQ_SYNC_NORMAL] = "PRAGMA synchronous=NORMAL",
	[SQ_BEGIN] = "BEGIN IMMEDIATE",
	[SQ_COMMIT] = "COMMIT",
	[SQ_ROLLBACK] = "ROLLBACK",
	[SQ_SP] = "SAVEPOINT item",
	[SQ_SP_RELEASE] = "RELEASE item",
	[SQ_SP_ROLLBACK] = "ROLLBACK TO item",
	[SQ_SEL_DELIVERY] = "SELECT answer, reason, task_id FROM deliveries WHERE delivery_id = ?1",
	[SQ_INS_KEY] = "INSERT INTO event_keys (dedup_key, delivery_id, task_id, first_seen_ms)"
	               " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (dedup_key) DO NOTHING",
	[SQ_SEL_KEY] = "SELECT delivery_id, task_id FROM event_keys WHERE dedup_key = ?1",
	[SQ_INS_DELIVERY] =
	        "INSERT INTO deliveries (delivery_id, hook_id, source, event_name, action,"
	        " headers_json, body, received_ms, state, answer, reason, dedup_key,"
	        " duplicate_of, task_id, updated_ms, body_encoding, body_size, failure_key,"
	        " claims, claimed_by, lease_until_ms)"
	        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?8, ?15,"
	        " ?16, ?17, ?18, ?19, ?20) ON CONFLICT (delivery_id) DO NOTHING",
	[SQ_COUNT_BUMP] = "INSERT INTO delivery_counts (event_name, state, reason, n)"
	                  " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (event_name, state, reason)"
	                  " DO UPDATE SET n = delivery_counts.n + excluded.n",
	/* a claim whose lease ran out first (its claimer died: never this
	 * process's own, whose workers are still on them when their renewals
	 * failed), else the oldest waiting delivery; each from its partial
	 * index */
	[SQ_CLAIM_SEL] =
	        "SELECT id, delivery_id, hook_id, source, event_name, action, headers_json, body,"
	        " dedup_key, task_id, received_ms, claims, body_encoding, body_size, failure_key,"
	        " state FROM deliveries WHERE id = COALESCE("
	        "(SELECT id FROM deliveries WHERE state = 'processing' AND lease_until_ms < ?1"
	        " AND claimed_by IS NOT ?2 ORDER BY lease_until_ms LIMIT 1),"
	        " (SELECT id FROM deliveries WHERE state = 'received' AND not_before_ms <= ?1"
	        " ORDER BY id LIMIT 1))",
	[SQ_CLAIM_MARK] = "UPDATE deliveries SET state = 'processing', claims = claims + 1,"
	                  " updated_ms = ?2, claimed_by = ?3, lease_until_ms = ?4 WHERE id = ?1",
	[SQ_FIN_DONE] =
	        "UPDATE deliveries SET state = ?2, reason = ?3, updated_ms = ?4, finished_ms = ?4,"
	        " process_count = process_count + 1,"
	        " decision_json = COALESCE(?5, decision_json), claimed_by = NULL,"
	        " lease_until_ms = NULL"
	        " WHERE delivery_id = ?1 AND state = 'processing' RETURNING event_name",
	[SQ_FIN_BACK] = "UPDATE deliveries SET state = 'received', updated_ms = ?4,"
	                " not_before_ms = ?6, claimed_by = NULL, lease_until_ms = NULL"
	                " WHERE delivery_id = ?1 AND state = 'processing' RETURNING event_name",
	[SQ_FIN_EVENT] =
	        "INSERT INTO events (delivery_id, event_json, created_ms) VALUES (?1, ?2, ?3)"
	        " ON CONFLICT (delivery_id) DO UPDATE SET event_json = excluded.event_json",
};

static int
sq_bump(sqlite3_stmt *st, const char *event, const char *state, const char *reason, int64_t delta)
{
	sqlite3_bind_text(st, 1, event, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, reason ? reason : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, delta);
	return hl_sq_step_done(st);
}

/*
 * delivery_counts increments of one intake batch, summed per (event,
 * state, reason) and written once before the commit: a batch of
 * deliveries of one kind costs one upsert, not one per delivery. The
 * strings are borrowed from the batch's requests (or static).
 */
#define SQ_TALLY_MAX 16

struct sq_tally {
	struct {
		const char *event, *state, *reason;
		int64_t n;
	} k[SQ_TALLY_MAX];
	int len;
};

static bool
sq_str_eq(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/* Counts one delivery; -1 when the tally is full (bump it directly). */
static int
sq_tally_add(struct sq_tally *t, const char *event, const char *state, const char *reason)
{
	int i;

	for (i = 0; i < t->len; i++) {
		if (sq_str_eq(t->k[i].event, event) && sq_str_eq(t->k[i].state, state) &&
		    sq_str_eq(t->k[i].reason, reason)) {
			t->k[i].n++;
			return 0;
		}
	}
	if (t->len == SQ_TALLY_MAX)
		return -1;
	t->k[t->len].event = event;
	t->k[t->len].state = state;
	t->k[t->len].reason = reason;
	t->k[t->len].n = 1;
	t->len++;
	return 0;
}

static int
sq_tally_write(struct hl_store_backend *b, const struct sq_tally *t)
{
	int i;

	for (i = 0; i < t->len; i++)
		if (sq_bump(b->in_st[SQ_COUNT_BUMP], t->k[i].event, t->k[i].state, t->k[i].reason,
		            t->k[i].n) < 0)
			return -1;
	return 0;
}

/* The answer to a delivery id stored before: 1 (a repeat, answered as a
 * duplicate of what it was answered then), 0 (new), or -1. */
static int
sq_repeat_delivery(struct hl_store_backend *b, struct hl_intake_req *r)
{
	struct hl_intake_answer *a = &r->answer;
	sqlite3_stmt *st = b->in_st[SQ_SEL_DELIVERY];
	int rc;

	sqlite3_bind_text(st, 1, r->in.delivery_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *orig = (const char *)sqlite3_column_text(st, 0);

		memset(a, 0, sizeof(*a));
		a->status = HL_INTAKE_DUPLICATE;
		a->original = orig && strcmp(orig, "accepted") == 0  ? HL_INTAKE_ACCEPTED
		              : orig && strcmp(orig, "skipped") == 0 ? HL_INTAKE_SKIPPED
		                                                     : HL_INTAKE_DUPLICATE;
		hl_sq_col_copy(a->task_id, sizeof(a->task_id), st, 2);
		hl_sq_col_copy(a->first_reason, sizeof(a->first_reason), st, 1);
		hl_strlcpy(a->reason, "duplicate_delivery", sizeof(a->reason));
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc != SQLITE_DONE)
		return hl_sq_fail(&r->err, b->db, "select delivery");
	return 0;
}

/* The first delivery of r's event, when its key is stored:
 * 1 (dup_of and task_id written), 0 (a new event), or -1. */
static int
sq_known_event(struct hl_store_backend *b, struct hl_intake_req *r, char *dup_of, size_t dup_size)
{
	sqlite3_stmt *st = b->in_st[SQ_SEL_KEY];
	int rc;

	sqlite3_bind_text(st, 1, r->in.dedup_key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		hl_sq_col_copy(dup_of, dup_size, st, 0);
		hl_sq_col_copy(r->answer.task_id, sizeof(r->answer.task_id), st, 1);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc != SQLITE_DONE)
		return hl_sq_fail(&r->err, b->db, "select event key");
	return 0;
}

/* Refuses what the store cannot key, before any statement. */
static int
sq_intake_check(struct hl_intake_req *r)
{
	const struct hl_delivery_in *in = &r->in;

	memset(&r->answer, 0, sizeof(r->answer));
	if (!in->delivery_id || !*in->delivery_id || strlen(in->delivery_id) > HL_DELIVERY_ID_MAX)
		return hl_err_set(&r->err, HL_EINVAL, "bad delivery id");
	if (!in->event_name || !*in->event_name)
		return hl_err_set(&r->err, HL_EINVAL, "missing event name");
	return 0;
}

/*
 * One intake inside the batch transaction (sq_intake_check passed); its
 * count goes to tally (written by the caller before the commit). On
 * failure the caller undoes whatever it wrote.
 *
 * The event key is looked up first: most deliveries of a busy hook are
 * repeats of a known event (redeliveries, the same event from the
 * webhook and from a sensor), and such a delivery costs two statements,
 * the lookup and its row, whose insert also finds a repeated delivery id
 * (delivery_id is unique), as it does for a delivery without a key. Only
 * a new event's delivery is looked up by id first, so that a repeated id
 * never claims a key.
 */
static int
sq_intake_one(struct hl_store_backend *b, struct hl_intake_req *r, int64_t now, bool *queued,
              struct sq_tally *tally)
{
	const struct hl_delivery_in *in = &r->in;
	struct hl_intake_answer *a = &r->answer;
	sqlite3_stmt *st;
	const char *state, *answer, *reason;
	char dup_of[HL_DELIVERY_ID_MAX + 1] = "";
	enum hl_body_encoding enc;
	int rc;

	*queued = false;
	state = "received";
	answer = "accepted";
	reason = NULL;
	a->status = a->original = HL_INTAKE_ACCEPTED;
	hl_strlcpy(a->task_id, in->task_id ? in->task_id : "", sizeof(a->task_id));
	if (in->skip_reason) {
		state = "skipped";
		answer = "skipped";
		reason = in->skip_reason;
		a->status = a->original = HL_INTAKE_SKIPPED;
		a->task_id[0] = '\0';
	} else if (in->dedup_key && *in->dedup_key) {
		rc = sq_known_event(b, r, dup_of, sizeof(dup_of));
		if (rc < 0)
			return rc;
		if (rc == 0) {
			/* 1. The same delivery again: the first answer, as a duplicate. */
			rc = sq_repeat_delivery(b, r);
			if (rc != 0)
				return rc < 0 ? rc : 0;
			/* 2. A new event: its key names this delivery. */
			st = b->in_st[SQ_INS_KEY];
			sqlite3_bind_text(st, 1, in->dedup_key, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 2, in->delivery_id, -1, SQLITE_STATIC);
			hl_sq_bind_text(st, 3, in->task_id);
			sqlite3_bind_int64(st, 4, now);
			if (hl_sq_step_done(st) < 0)
				return hl_sq_fail(&r->err, b->db, "insert event key");
			/* the writer holds the database: no one added it since */
			if (sqlite3_changes(b->db) == 0)
				return hl_err_set(&r->err, HL_EDB, "event key stored twice");
		} else {
			/* 2. The same event through another delivery. */
			state = "skipped";
			answer = "duplicate";
			reason = "duplicate_event";
			a->status = a->original = HL_INTAKE_DUPLICATE;
			hl_strlcpy(a->duplicate_of, dup_of, sizeof(a->duplicate_of));
		}
	}
	if (reason)
		hl_strlcpy(a->reason, reason, sizeof(a->reason));
	/* taken by this process's workers at once: stored as their claim */
	if (r->take && strcmp(state, "received") == 0)
		state = "processing";

	/* 3. Store it (a repeated delivery id stores nothing). */
	st = b->in_st[SQ_INS_DELIVERY];
	sqlite3_bind_text(st, 1, in->delivery_id, -1, SQLITE_STATIC);
	hl_sq_bind_text(st, 2, in->hook_id);
	sqlite3_bind_text(st, 3, in->source ? in->source : "webhook", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, in->event_name, -1, SQLITE_STATIC);
	hl_sq_bind_text(st, 5, in->action);
	sqlite3_bind_text(st, 6, in->headers_json ? in->headers_json : "{}", -1, SQLITE_STATIC);
	/* a duplicate of a known event keeps no body (body.h) */
	enc = dup_of[0] ? HL_BODY_DUPLICATE : (enum hl_body_encoding)r->zenc;
	if (enc == HL_BODY_DUPLICATE)
		sqlite3_bind_zeroblob(st, 7, 0);
	else if (r->zbody)
		sqlite3_bind_blob64(st, 7, r->zbody, r->zlen, SQLITE_STATIC);
	else
		sqlite3_bind_blob64(st, 7, in->body ? in->body : "", in->body_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 8, now);
	sqlite3_bind_text(st, 9, state, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 10, answer, -1, SQLITE_STATIC);
	hl_sq_bind_text(st, 11, reason);
	hl_sq_bind_text(st, 12, in->dedup_key);
	hl_sq_bind_text(st, 13, dup_of[0] ? dup_of : NULL);
	hl_sq_bind_text(st, 14, a->task_id[0] ? a->task_id : NULL);
	sqlite3_bind_text(st, 15, hl_body_encoding_name(enc), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 16, (sqlite3_int64)in->body_len);
	hl_sq_bind_text(st, 17, in->failure_key);
	if (strcmp(state, "processing") == 0) {
		sqlite3_bind_int(st, 18, 1);
		sqlite3_bind_text(st, 19, r->take_owner, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 20, r->take_until_ms);
	} else {
		sqlite3_bind_int(st, 18, 0);
		sqlite3_bind_null(st, 19);
		sqlite3_bind_null(st, 20);
	}
	if (hl_sq_step_done(st) < 0)
		return hl_sq_fail(&r->err, b->db, "insert delivery");
	if (sqlite3_changes(b->db) == 0) {
		/* 1. The same delivery again (a new event's was looked up above). */
		rc = sq_repeat_delivery(b, r);
		if (rc == 0)
			return hl_err_set(&r->err, HL_EDB, "delivery neither stored nor found");
		return rc < 0 ? rc : 0;
	}
	if (strcmp(state, "processing") == 0)
		r->taken_id = sqlite3_last_insert_rowid(b->db);
	if (sq_tally_add(tally, in->event_name, state, reason) < 0 &&
	    sq_bump(b->in_st[SQ_COUNT_BUMP], in->event_name, state, reason, 1) < 0)
		return hl_sq_fail(&r->err, b->db, "count delivery");
	*queued = strcmp(state, "received") == 0;
	return 0;
}

/* Back to synchronous=NORMAL after a batch that committed with FULL (no
 * handle of our own on the WAL). Only then: a PRAGMA that sets a value
 * does its work when compiled, so each run of the prepared statement
 * compiles it again. */
static void
sq_sync_restore(struct hl_store_backend *b)
{
	if (b->walfd < 0)
		hl_sq_step_done(b->in_st[SQ_SYNC_NORMAL]);
}

/*
 * One transaction for the batch. It is first written without savepoints
 * (two statements fewer per delivery); when a delivery fails, the whole
 * batch is rolled back and written again with a savepoint per delivery,
 * so the one that fails fails alone.
 */
int
hl_sq_intake_batch(struct hl_store_backend *b, struct hl_intake_req *head)
{
	struct hl_intake_req *r;
	struct hl_err err = HL_ERR_INIT;
	int64_t now;
	struct sq_tally tally;
	bool savepoints = false, q;
	int queued;

again:
	now = hl_time_wall_ms();
	tally.len = 0;
	queued = 0;
	/* With our own handle on the WAL, the flush is sq_sync_log's job. */
	if ((b->walfd < 0 && hl_sq_step_done(b->in_st[SQ_SYNC_FULL]) < 0) ||
	    hl_sq_step_done(b->in_st[SQ_BEGIN]) < 0) {
		hl_sq_fail(&err, b->db, "begin");
		goto fail;
	}
	for (r = head; r; r = r->next) {
		r->taken_id = 0;
		r->err = (struct hl_err)HL_ERR_INIT;
	}
	for (r = head; r; r = r->next) {
		struct sq_tally one = { .len = 0 };

		r->rc = sq_intake_check(r);
		if (r->rc < 0)
			continue;
		if (savepoints && hl_sq_step_done(b->in_st[SQ_SP]) < 0) {
			hl_sq_fail(&err, b->db, "savepoint");
			goto rollback;
		}
		r->rc = sq_intake_one(b, r, now, &q, &one);
		if (r->rc < 0) {
			r->taken_id = 0;
			if (!savepoints) {
				hl_sq_step_done(b->in_st[SQ_ROLLBACK]);
				sq_sync_restore(b);
				savepoints = true;
				goto again;
			}
			if (hl_sq_step_done(b->in_st[SQ_SP_ROLLBACK]) < 0) {
				hl_sq_fail(&err, b->db, "rollback to savepoint");
				goto rollback;
			}
		} else {
			/* The row stays: count it in the batch's tally. */
			if (one.len == 1 &&
			    sq_tally_add(&tally, one.k[0].event, one.k[0].state, one.k[0].reason) <
			            0 &&
			    sq_bump(b->in_st[SQ_COUNT_BUMP], one.k[0].event, one.k[0].state,
			            one.k[0].reason, 1) < 0) {
				hl_sq_fail(&err, b->db, "count delivery");
				goto rollback;
			}
			if (q)
				queued++;
		}
		if (savepoints && hl_sq_step_done(b->in_st[SQ_SP_RELEASE]) < 0) {
			hl_sq_fail(&err, b->db, "release savepoint");
			goto rollback;
		}
	}
	if (sq_tally_write(b, &tally) < 0) {
		hl_sq_fail(&err, b->db, "count deliveries");
		goto rollback;
	}
	if (hl_sq_step_done(b->in_st[SQ_COMMIT]) < 0) {
		hl_sq_fail(&err, b->db, "commit");
		goto rollback;
	}
	sq_sync_restore(b);
	return queued;
rollback:
	hl_sq_step_done(b->in_st[SQ_ROLLBACK]);
fail:
	sq_sync_restore(b);
	for (r = head; r; r = r->next) {
		r->rc = -HL_EDB;
		r->err = err;
		r->taken_id = 0;
	}
	return 0;
}

int
hl_sq_recover(struct hl_store_backend *b, int64_t *n, const char *owner, struct hl_err *err)
{
	int rc;

	/* one process per SQLite store: every claim is a dead process's */
	(void)owner;
	rc = hl_sq_exec(b->db, "BEGIN IMMEDIATE", err);
	if (rc < 0)
		return rc;
	rc = hl_sq_exec(b->db,
	                "UPDATE deliveries SET state = 'received', claimed_by = NULL,"
	                " lease_until_ms = NULL WHERE state = 'processing'",
	                err);
	if (rc == 0)
		*n = sqlite3_changes64(b->db);
	/* Rebuild the counters from the rows, the source of truth, and the
	 * counts of the rows retention removed. */
	if (rc == 0)
		rc = hl_sq_exec(b->db,
		                "DELETE FROM delivery_counts;"
		                "INSERT INTO delivery_counts (event_name, state, reason, n)"
		                " SELECT event_name, state, reason, SUM(n) FROM ("
		                " SELECT event_name, state, COALESCE(reason, '') AS reason,"
		                " COUNT(*) AS n FROM deliveries"
		                " GROUP BY event_name, state, COALESCE(reason, '')"
		                " UNION ALL SELECT event_name, state, reason, n"
		                " FROM delivery_counts_pruned)"
		                " GROUP BY event_name, state, reason",
		                err);
	if (rc == 0)
		rc = hl_sq_exec(b->db, "COMMIT", err);
	if (rc < 0)
		hl_sq_exec(b->db, "ROLLBACK", NULL);
	return rc;
}

/* Marks a delivery whose stored body cannot be decoded as failed. */
static int
sq_claim_poison(struct hl_store_backend *b, int64_t id, const char *event, const char *was,
                struct hl_err *err)
{
	char upd[240];

	snprintf(upd, sizeof(upd),
	         "UPDATE deliveries SET state = 'failed', reason = 'corrupt_body',"
	         " updated_ms = %lld, claimed_by = NULL, lease_until_ms = NULL WHERE id = %lld",
	         (long long)hl_time_wall_ms(), (long long)id);
	if (hl_sq_exec(b->db, upd, err) < 0 ||
	    sq_bump(b->in_st[SQ_COUNT_BUMP], event, was, "", -1) < 0 ||
	    sq_bump(b->in_st[SQ_COUNT_BUMP], event, "failed", "corrupt_body", 1) < 0)
		return hl_sq_fail(err, b->db, "mark corrupt body");
	return 0;
}

/* Decodes the stored body (see body.h); 0 or -1. */
static int
sq_decode_body(struct hl_delivery_record *d, sqlite3_stmt *st, int col, const char *enc,
               int64_t size)
{
	return hl_body_decode(enc, sqlite3_column_blob(st, col),
	                      (size_t)sqlite3_column_bytes(st, col), size, HL_STORE_MAX_BODY,
	                      &d->body, &d->body_len);
}

int
hl_sq_claim_next(struct hl_store_backend *b, struct hl_delivery_record **out, const char *owner,
                 int64_t lease_ms, struct hl_err *err)
{
	struct hl_delivery_record *d = NULL;
	sqlite3_stmt *st = b->in_st[SQ_CLAIM_SEL], *mark = b->in_st[SQ_CLAIM_MARK];
	int64_t now = hl_time_wall_ms();
	bool was_received = true;
	int rc, tries;

	if (hl_sq_begin(b, "claim", err) < 0)
		return -HL_EDB;
	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_text(st, 2, owner, -1, SQLITE_STATIC);
	for (tries = 0;; tries++) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_DONE || tries == 64) {
			rc = hl_err_set(err, HL_ENOTFOUND, "no delivery waiting");
			goto out;
		}
		if (rc != SQLITE_ROW) {
			rc = hl_sq_fail(err, b->db, "claim");
			goto out;
		}
		d = calloc(1, sizeof(*d));
		if (!d) {
			rc = hl_err_set(err, HL_ENOMEM, "out of memory");
			goto out;
		}
		d->id = sqlite3_column_int64(st, 0);
		d->event_name = hl_sq_col_dup(st, 4);
		if (!d->event_name) {
			rc = hl_err_set(err, HL_ENOMEM, "out of memory");
			goto out;
		}
		was_received = strcmp((const char *)sqlite3_column_text(st, 15), "received") == 0;
		if (sq_decode_body(d, st, 7, (const char *)sqlite3_column_text(st, 12),
		                   sqlite3_column_type(st, 13) == SQLITE_NULL
		                           ? -1
		                           : sqlite3_column_int64(st, 13)) == 0)
			break;
		/* Never hand out (or loop on) a body that cannot be decoded. */
		sqlite3_reset(st);
		rc = sq_claim_poison(b, d->id, d->event_name,
		                     was_received ? "received" : "processing", err);
		hl_delivery_record_free(d);
		d = NULL;
		if (rc < 0)
			goto out;
	}
	d->delivery_id = hl_sq_col_dup(st, 1);
	d->hook_id = hl_sq_col_dup(st, 2);
	d->source = hl_sq_col_dup(st, 3);
	d->action = hl_sq_col_dup(st, 5);
	d->headers_json = hl_sq_col_dup(st, 6);
	d->dedup_key = hl_sq_col_dup(st, 8);
	d->task_id = hl_sq_col_dup(st, 9);
	d->received_ms = sqlite3_column_int64(st, 10);
	d->claims = sqlite3_column_int(st, 11) + 1;
	d->failure_key = hl_sq_col_dup(st, 14);
	sqlite3_reset(st);
	if (!d->delivery_id || !d->source || !d->headers_json) {
		rc = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	sqlite3_bind_int64(mark, 1, d->id);
	sqlite3_bind_int64(mark, 2, now);
	sqlite3_bind_text(mark, 3, owner, -1, SQLITE_STATIC);
	sqlite3_bind_int64(mark, 4, now + lease_ms);
	rc = 0;
	/* an expired claim taken again stays processing: no count moves */
	if (hl_sq_step_done(mark) < 0 ||
	    (was_received &&
	     (sq_bump(b->in_st[SQ_COUNT_BUMP], d->event_name, "received", "", -1) < 0 ||
	      sq_bump(b->in_st[SQ_COUNT_BUMP], d->event_name, "processing", "", 1) < 0)) ||
	    hl_sq_step_done(b->in_st[SQ_COMMIT]) < 0)
		rc = hl_sq_fail(err, b->db, "claim");
out:
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc < 0) {
		/* Keep what a poisoned row was marked even when nothing else waits. */
		if (rc != -HL_ENOTFOUND || hl_sq_step_done(b->in_st[SQ_COMMIT]) < 0)
			hl_sq_step_done(b->in_st[SQ_ROLLBACK]);
		hl_delivery_record_free(d);
		return rc;
	}
	*out = d;
	return 0;
}

int
hl_sq_finish(struct hl_store_backend *b, const char *delivery_id,
             const struct hl_delivery_result *r, struct hl_err *err)
{
	const char *sname = hl_delivery_state_name(r->state);
	const char *reason = r->reason, *event_json = r->event_json;
	bool back = r->state == HL_DELIVERY_RECEIVED;
	sqlite3_stmt *st = b->in_st[back ? SQ_FIN_BACK : SQ_FIN_DONE];
	char *event = NULL;
	int64_t now = hl_time_wall_ms();
	int rc;

	if (hl_sq_begin(b, "finish", err) < 0)
		return -HL_EDB;
	sqlite3_bind_text(st, 1, delivery_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, sname, -1, SQLITE_STATIC);
	hl_sq_bind_text(st, 3, reason);
	sqlite3_bind_int64(st, 4, now);
	if (back)
		sqlite3_bind_int64(st, 6, r->not_before_ms);
	else
		hl_sq_bind_text(st, 5, r->decision_json);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		event = hl_sq_col_dup(st, 0);
		rc = sqlite3_step(st);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE) {
		rc = hl_sq_fail(err, b->db, "finish");
		goto out;
	}
	if (!event) {
		rc = hl_err_set(err, HL_ECONFLICT, "delivery '%s' is not being processed",
		                delivery_id);
		goto out;
	}
	rc = 0;
	if (sq_bump(b->in_st[SQ_COUNT_BUMP], event, "processing", "", -1) < 0 ||
	    sq_bump(b->in_st[SQ_COUNT_BUMP], event, sname, back ? "" : reason, 1) < 0) {
		rc = hl_sq_fail(err, b->db, "count finish");
		goto out;
	}
	if (event_json) {
		st = b->in_st[SQ_FIN_EVENT];
		sqlite3_bind_text(st, 1, delivery_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, event_json, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, now);
		if (hl_sq_step_done(st) < 0) {
			rc = hl_sq_fail(err, b->db, "store event");
			goto out;
		}
	}
	if (hl_sq_step_done(b->in_st[SQ_COMMIT]) < 0)
		rc = hl_sq_fail(err, b->db, "commit finish");
out:
	free(event);
	if (rc < 0)
		hl_sq_step_done(b->in_st[SQ_ROLLBACK]);
	return rc;
}

static int
sq_query_int(struct hl_store_backend *b, const char *sql, int64_t *out, struct hl_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (!(st = hl_sq_prepare(b, sql)))
		return hl_sq_fail(err, b->db, "query");
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	hl_sq_done(b, st);
	return rc == SQLITE_ROW ? 0 : hl_sq_fail(err, b->db, "query");
}

int
hl_sq_queue_depth(struct hl_store_backend *b, int64_t *out, struct hl_err *err)
{
	return sq_query_int(b,
	                    "SELECT COALESCE(SUM(n), 0) FROM delivery_counts"
	                    " WHERE state IN ('received', 'processing')",
	                    out, err);
}

int
hl_sq_counts(struct hl_store_backend *b,
             void (*fn)(void *, const char *, const char *, const char *, int64_t), void *arg,
             struct hl_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (!(st = hl_sq_prepare(b, "SELECT event_name, state, reason, n FROM delivery_counts"
	                            " WHERE n > 0 ORDER BY event_name, state, reason LIMIT 1000")))
		return hl_sq_fail(err, b->db, "counts");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		fn(arg, (const char *)sqlite3_column_text(st, 0),
		   (const char *)sqlite3_column_text(st, 1),
		   (const char *)sqlite3_column_text(st, 2), sqlite3_column_int64(st, 3));
	hl_sq_done(b, st);
	return rc == SQLITE_DONE ? 0 : hl_sq_fail(err, b->db, "counts");
}

int
hl_sq_decision(struct hl_store_backend *b, char **out, const char *delivery_id, struct hl_err *err)
{
	sqlite3_stmt *st = hl_sq_prepare(b, "SELECT decision_json FROM deliveries"
	                                    " WHERE delivery_id = ?1");
	char *json = NULL;
	int rc;

	if (!st)
		return hl_sq_fail(err, b->db, "decision");
	sqlite3_bind_text(st, 1, delivery_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		json = hl_sq_col_dup(st, 0);
	hl_sq_done(b, st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return hl_sq_fail(err, b->db, "decision");
	if (!json)
		return hl_err_set(err, HL_ENOTFOUND, "no decision for delivery '%s'", delivery_id);
	*out = json;
	return 0;
}

int
hl_sq_recent(struct hl_store_backend *b, struct hl_delivery_summary *out, size_t max, size_t *n,
             struct hl_err *err)
{
	sqlite3_stmt *st = NULL;
	size_t k = 0;
	int rc = SQLITE_DONE;

	if (!(st = hl_sq_prepare(
	              b, "SELECT delivery_id, event_name, action, source, state, answer, reason,"
	                 /* the task the decision names (a failure an active
	                  * task owns), else the delivery's own */
	                 " COALESCE(json_extract(decision_json, '$.task_id'), task_id),"
	                 " received_ms, claims FROM deliveries"
	                 " ORDER BY id DESC LIMIT ?1")))
		return hl_sq_fail(err, b->db, "recent");
	sqlite3_bind_int64(st, 1, (sqlite3_int64)max);
	while (k < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct hl_delivery_summary *d = &out[k++];

		hl_sq_col_copy(d->delivery_id, sizeof(d->delivery_id), st, 0);
		hl_sq_col_copy(d->event, sizeof(d->event), st, 1);
		hl_sq_col_copy(d->action, sizeof(d->action), st, 2);
		hl_sq_col_copy(d->source, sizeof(d->source), st, 3);
		hl_sq_col_copy(d->state, sizeof(d->state), st, 4);
		hl_sq_col_copy(d->answer, sizeof(d->answer), st, 5);
		hl_sq_col_copy(d->reason, sizeof(d->reason), st, 6);
		hl_sq_col_copy(d->task_id, sizeof(d->task_id), st, 7);
		d->received_ms = sqlite3_column_int64(st, 8);
		d->claims = sqlite3_column_int(st, 9);
	}
	if (k == max)
		rc = SQLITE_DONE;
	hl_sq_done(b, st);
	if (rc != SQLITE_DONE)
		return hl_sq_fail(err, b->db, "recent");
	*n = k;
	return 0;
}

int
hl_sq_renew(struct hl_store_backend *b, const char *owner, int64_t until_ms,
            const char *const *ids, size_t n, struct hl_err *err)
{
	/* one process per store: its own stale claims are taken back by
	 * the claim that finds them (sqlite_intake.c) */
	(void)ids;
	(void)n;
	sqlite3_stmt *st = hl_sq_prepare(b, "UPDATE deliveries SET lease_until_ms = ?2"
	                                    " WHERE state = 'processing' AND claimed_by = ?1");
	int rc;

	if (!st)
		return hl_sq_fail(err, b->db, "renew claims");
	sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, until_ms);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : hl_sq_fail(err, b->db, "renew claims");
	hl_sq_done(b, st);
	return rc;
}

/* Moves the deliveries selected by where (binding ?1 to arg) back to
 * received, with their counts; *n gets how many. Inside a transaction. */
static int
sq_requeue_where(struct hl_store_backend *b, int64_t *n, const char *where, const char *arg,
                 struct hl_err *err)
{
	char sql[512];
	sqlite3_stmt *st;
	int64_t now = hl_time_wall_ms(), k = 0;
	int rc;

	snprintf(sql, sizeof(sql),
	         "SELECT event_name, state, COALESCE(reason, ''), COUNT(*) FROM deliveries"
	         " WHERE %s GROUP BY 1, 2, 3 LIMIT 1000",
	         where);
	if (!(st = hl_sq_prepare(b, sql)))
		return hl_sq_fail(err, b->db, "requeue");
	if (arg)
		sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *ev = (const char *)sqlite3_column_text(st, 0);
		int64_t c = sqlite3_column_int64(st, 3);

		if (sq_bump(b->in_st[SQ_COUNT_BUMP], ev, (const char *)sqlite3_column_text(st, 1),
		            (const char *)sqlite3_column_text(st, 2), -c) < 0 ||
		    sq_bump(b->in_st[SQ_COUNT_BUMP], ev, "received", "", c) < 0) {
			hl_sq_done(b, st);
			return hl_sq_fail(err, b->db, "requeue");
		}
		k += c;
	}
	hl_sq_done(b, st);
	if (rc != SQLITE_DONE)
		return hl_sq_fail(err, b->db, "requeue");
	snprintf(sql, sizeof(sql),
	         "UPDATE deliveries SET state = 'received', reason = NULL, claims = 0,"
	         " not_before_ms = 0, claimed_by = NULL, lease_until_ms = NULL,"
	         " finished_ms = NULL, updated_ms = ?2"
	         " WHERE %s",
	         where);
	if (!(st = hl_sq_prepare(b, sql)))
		return hl_sq_fail(err, b->db, "requeue");
	if (arg)
		sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : hl_sq_fail(err, b->db, "requeue");
	hl_sq_done(b, st);
	if (rc == 0)
		*n = k;
	return rc;
}

int
hl_sq_requeue(struct hl_store_backend *b, int64_t *n, const char *delivery_id, struct hl_err *err)
{
	sqlite3_stmt *st;
	char state[16] = "", enc[16] = "", dup_of[HL_DELIVERY_ID_MAX + 1] = "";
	int rc;

	if (hl_sq_begin(b, "requeue", err) < 0)
		return -HL_EDB;
	if (!delivery_id) {
		rc = sq_requeue_where(b, n, "state = 'failed'", NULL, err);
		goto out;
	}
	if (!(st = hl_sq_prepare(b, "SELECT state, body_encoding, duplicate_of FROM deliveries"
	                            " WHERE delivery_id = ?1"))) {
		rc = hl_sq_fail(err, b->db, "requeue");
		goto out;
	}
	sqlite3_bind_text(st, 1, delivery_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		hl_sq_col_copy(state, sizeof(state), st, 0);
		hl_sq_col_copy(enc, sizeof(enc), st, 1);
		hl_sq_col_copy(dup_of, sizeof(dup_of), st, 2);
	}
	hl_sq_done(b, st);
	if (rc == SQLITE_DONE)
		rc = hl_err_set(err, HL_ENOTFOUND, "no delivery '%s'", delivery_id);
	else if (rc != SQLITE_ROW)
		rc = hl_sq_fail(err, b->db, "requeue");
	else if (strcmp(state, "processing") == 0)
		rc = hl_store_processing_refusal(err, delivery_id);
	else if (strcmp(enc, hl_body_encoding_name(HL_BODY_DUPLICATE)) == 0)
		rc = hl_store_duplicate_refusal(err, delivery_id, dup_of);
	else if (strcmp(state, "received") == 0) {
		rc = 0; /* waiting already */
		*n = 0;
	} else
		rc = sq_requeue_where(b, n, "delivery_id = ?1", delivery_id, err);
out:
	if (rc == 0)
		rc = hl_sq_commit(b, "requeue", err);
	if (rc < 0)
		hl_sq_rollback(b);
	return rc;
}

/* ---- retention -------------------------------------------------------- */

/* The deliveries a prune removes: ended, received before ?1, oldest first,
 * at most ?2 (the same rows in each statement of the transaction). */
#define SQ_PRUNE_IDS                                       \
	"SELECT id FROM deliveries WHERE received_ms < ?1" \
	" AND state IN ('processed', 'skipped', 'failed') ORDER BY received_ms, id LIMIT ?2"

static const char *const sq_prune_sql[] = {
	"INSERT INTO delivery_counts_pruned (event_name, state, reason, n)"
	" SELECT event_name, state, COALESCE(reason, ''), COUNT(*) FROM deliveries"
	" WHERE id IN (" SQ_PRUNE_IDS ") GROUP BY event_name, state, COALESCE(reason, '')"
	" ON CONFLICT (event_name, state, reason) DO UPDATE SET n = delivery_counts_pruned.n"
	" + excluded.n",
	"DELETE FROM events WHERE delivery_id IN (SELECT delivery_id FROM deliveries"
	" WHERE id IN (" SQ_PRUNE_IDS "))",
	"DELETE FROM deliveries WHERE id IN (" SQ_PRUNE_IDS ")",
	"DELETE FROM event_keys WHERE dedup_key IN (SELECT dedup_key FROM event_keys"
	" WHERE first_seen_ms < ?1 ORDER BY first_seen_ms LIMIT ?2)",
	"DELETE FROM redeliveries WHERE guid IN (SELECT guid FROM redeliveries"
	" WHERE requested_ms < ?1 ORDER BY requested_ms LIMIT ?2)",
};

int
hl_sq_prune(struct hl_store_backend *b, int64_t *removed, int64_t before_ms, int max,
            struct hl_err *err)
{
	size_t i;
	int rc = 0;

	*removed = 0;
	if (hl_sq_begin(b, "prune", err) < 0)
		return -HL_EDB;
	for (i = 0; i < sizeof(sq_prune_sql) / sizeof(sq_prune_sql[0]) && rc == 0; i++) {
		sqlite3_stmt *st = hl_sq_prepare(b, sq_prune_sql[i]);

		if (!st) {
			rc = hl_sq_fail(err, b->db, "prune");
			break;
		}
		sqlite3_bind_int64(st, 1, before_ms);
		sqlite3_bind_int(st, 2, max);
		rc = sqlite3_step(st) == SQLITE_DONE ? 0 : hl_sq_fail(err, b->db, "prune");
		if (rc == 0 && i == 2)
			*removed = sqlite3_changes64(b->db);
		hl_sq_done(b, st);
	}
	if (rc == 0)
		rc = hl_sq_commit(b, "prune", err);
	if (rc < 0) {
		hl_sq_rollback(b);
		*removed = 0;
	}
	return rc;
}

/* The one integer a PRAGMA answers; -1 when it fails. */
static int64_t
sq_pragma_int(struct hl_store_backend *b, const char *sql)
{
	sqlite3_stmt *st = hl_sq_prepare(b, sql);
	int64_t v = -1;

	if (!st)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	hl_sq_done(b, st);
	return v;
}

/* Gives free pages back (incremental vacuum: the file shrinks at the next
 * checkpoint); nothing unless the file was converted to auto_vacuum
 * incremental (2). */
int
hl_sq_compact(struct hl_store_backend *b, int64_t *freed_bytes, int max_pages, struct hl_err *err)
{
	int64_t before, after, page;
	char sql[64];
	int rc;

	*freed_bytes = 0;
	if (sq_pragma_int(b, "PRAGMA auto_vacuum") != 2)
		return 0;
	before = sq_pragma_int(b, "PRAGMA freelist_count");
	page = sq_pragma_int(b, "PRAGMA page_size");
	if (before < 0 || page < 0)
		return hl_sq_fail(err, b->db, "compact");
	if (before == 0)
		return 0;
	snprintf(sql, sizeof(sql), "PRAGMA incremental_vacuum(%d)", max_pages);
	if ((rc = hl_sq_exec(b->db, sql, err)) < 0)
		return hl_err_wrap(err, "compact");
	after = sq_pragma_int(b, "PRAGMA freelist_count");
	if (after >= 0 && after < before)
		*freed_bytes = (before - after) * page;
	return 0;
}
