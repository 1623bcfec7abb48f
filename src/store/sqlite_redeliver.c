/*
 * sqlite_redeliver.c - store/redeliver.h on SQLite: a lookup in the
 * delivery queue and the redeliveries table (its guid key decides which
 * claim wins; SQLite has one process per store anyway).
 */
#include "base/clock.h"
#include "sqlite_impl.h"

#include <string.h>

int
hl_sq_delivery_known(struct hl_store_backend *b, bool *known, const char *delivery_id,
                     struct hl_err *err)
{
	sqlite3_stmt *st = hl_sq_prepare(b, "SELECT 1 FROM deliveries WHERE delivery_id = ?1");
	int rc;

	if (!st)
		return hl_sq_fail(err, b->db, "delivery lookup");
	sqlite3_bind_text(st, 1, delivery_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	hl_sq_done(b, st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return hl_sq_fail(err, b->db, "delivery lookup");
	*known = rc == SQLITE_ROW;
	return 0;
}

int
hl_sq_redelivery_claim(struct hl_store_backend *b, bool *claimed,
                       struct hl_redelivery_history *hist, const struct hl_redelivery *r,
                       struct hl_err *err)
{
	sqlite3_stmt *st = hl_sq_prepare(
	        b, "INSERT INTO redeliveries (guid, hook, github_id, event_name, status_code,"
	           " requested_by, requested_ms, outcome, updated_ms)"
	           " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?7)"
	           " ON CONFLICT (guid) DO UPDATE SET outcome = 'pending',"
	           " requested_by = excluded.requested_by, updated_ms = excluded.updated_ms"
	           " WHERE redeliveries.outcome = 'retry' OR (redeliveries.outcome = 'pending'"
	           " AND redeliveries.updated_ms < ?7 - ?8)"
	           " RETURNING not_taken, requested_ms");
	int rc;

	if (!st)
		return hl_sq_fail(err, b->db, "redelivery claim");
	sqlite3_bind_text(st, 1, r->guid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, r->hook, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, r->github_id);
	if (r->event)
		sqlite3_bind_text(st, 4, r->event, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 5, r->status_code);
	sqlite3_bind_text(st, 6, r->owner, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, hl_time_wall_ms());
	sqlite3_bind_int64(st, 8, HL_REDELIVERY_STALE_MS);
	rc = sqlite3_step(st);
	*claimed = rc == SQLITE_ROW;
	if (*claimed) {
		hist->not_taken = sqlite3_column_int(st, 0);
		hist->first_ms = sqlite3_column_int64(st, 1);
	}
	/* RETURNING: the change is made when the statement runs to its end */
	while (rc == SQLITE_ROW)
		rc = sqlite3_step(st);
	rc = rc == SQLITE_DONE ? 0 : hl_sq_fail(err, b->db, "redelivery claim");
	hl_sq_done(b, st);
	if (rc == 0 && !*claimed) {
		st = hl_sq_prepare(b, "SELECT outcome = 'pending' FROM redeliveries WHERE guid = ?1");
		if (!st)
			return hl_sq_fail(err, b->db, "redelivery claim");
		sqlite3_bind_text(st, 1, r->guid, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		hist->pending = rc == SQLITE_ROW && sqlite3_column_int(st, 0) == 1;
		rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0
		                                           : hl_sq_fail(err, b->db, "redelivery claim");
		hl_sq_done(b, st);
	}
	return rc;
}

/* Why no row pending under owner was changed: -HL_ENOTFOUND for an
 * unknown guid, -HL_ECONFLICT when the row is another claimer's or ended. */
static int
sq_redelivery_not_held(struct hl_store_backend *b, const char *guid, struct hl_err *err)
{
	sqlite3_stmt *st = hl_sq_prepare(b, "SELECT 1 FROM redeliveries WHERE guid = ?1");
	int rc;

	if (!st)
		return hl_sq_fail(err, b->db, "redelivery");
	sqlite3_bind_text(st, 1, guid, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	hl_sq_done(b, st);
	if (rc == SQLITE_DONE)
		return hl_err_set(err, HL_ENOTFOUND, "no redelivery '%s'", guid);
	if (rc != SQLITE_ROW)
		return hl_sq_fail(err, b->db, "redelivery");
	return hl_err_set(err, HL_ECONFLICT, "the redelivery claim of '%s' is no longer ours",
	                  guid);
}

int
hl_sq_redelivery_finish(struct hl_store_backend *b, const char *guid, const char *owner,
                        const char *outcome, const char *detail, struct hl_err *err)
{
	sqlite3_stmt *st = hl_sq_prepare(b, "UPDATE redeliveries SET outcome = ?2, detail = ?3,"
	                                    " updated_ms = ?4 WHERE guid = ?1"
	                                    " AND requested_by = ?5 AND outcome = 'pending'");
	int rc;

	if (!st)
		return hl_sq_fail(err, b->db, "redelivery");
	sqlite3_bind_text(st, 1, guid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, outcome, -1, SQLITE_STATIC);
	if (detail)
		sqlite3_bind_text(st, 3, detail, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, hl_time_wall_ms());
	sqlite3_bind_text(st, 5, owner, -1, SQLITE_STATIC);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : hl_sq_fail(err, b->db, "redelivery");
	hl_sq_done(b, st);
	if (rc == 0 && sqlite3_changes(b->db) == 0)
		rc = sq_redelivery_not_held(b, guid, err);
	return rc;
}

int
hl_sq_redelivery_release(struct hl_store_backend *b, const char *guid, const char *owner,
                         bool not_taken, const char *detail, struct hl_err *err)
{
	sqlite3_stmt *st = hl_sq_prepare(b, "UPDATE redeliveries SET outcome = 'retry',"
	                                    " not_taken = not_taken + ?2, detail = ?3,"
	                                    " updated_ms = ?4 WHERE guid = ?1"
	                                    " AND requested_by = ?5 AND outcome = 'pending'");
	int rc;

	if (!st)
		return hl_sq_fail(err, b->db, "redelivery release");
	sqlite3_bind_text(st, 1, guid, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, not_taken ? 1 : 0);
	if (detail)
		sqlite3_bind_text(st, 3, detail, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, hl_time_wall_ms());
	sqlite3_bind_text(st, 5, owner, -1, SQLITE_STATIC);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : hl_sq_fail(err, b->db, "redelivery release");
	hl_sq_done(b, st);
	return rc;
}
