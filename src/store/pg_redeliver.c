/*
 * pg_redeliver.c - store/redeliver.h on PostgreSQL: a lookup in the
 * delivery queue and the redeliveries table. A claim is one INSERT ... ON
 * CONFLICT that takes back only a row given back for a retry: of two
 * replicas claiming one guid, the unique key and the row lock let exactly
 * one of them in, and only it is told it claimed.
 */
#include "base/clock.h"
#include "pg_impl.h"

#include <stdlib.h>
#include <string.h>

int
hl_pg_delivery_known(struct hl_store_backend *b, bool *known, const char *delivery_id,
                     struct hl_err *err)
{
	struct pg_params p = { .n = 0 };
	PGresult *r = NULL;
	int rc;

	hl_pg_text(&p, delivery_id);
	rc = hl_pg_exec(b, &r, "SELECT 1 FROM deliveries WHERE delivery_id = $1", &p, false,
	                "delivery lookup", err);
	if (rc < 0)
		return rc;
	*known = PQntuples(r) > 0;
	PQclear(r);
	return 0;
}

/* Runs a write and tells how many rows it changed. */
static int
pg_redeliver_changes(struct hl_store_backend *b, int64_t *changed, const char *sql,
                     const struct pg_params *p, const char *what, struct hl_err *err)
{
	PGresult *r = NULL;
	int rc;

	if ((rc = hl_pg_exec(b, &r, sql, p, false, what, err)) < 0)
		return rc;
	*changed = strtoll(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	return 0;
}

int
hl_pg_redelivery_claim(struct hl_store_backend *b, bool *claimed,
                       struct hl_redelivery_history *hist, const struct hl_redelivery *r,
                       struct hl_err *err)
{
	struct pg_params p = { .n = 0 };
	PGresult *res = NULL;
	int rc;

	hl_pg_text(&p, r->guid);
	hl_pg_text(&p, r->hook);
	hl_pg_int(&p, r->github_id);
	hl_pg_text(&p, r->event);
	hl_pg_int(&p, r->status_code);
	hl_pg_text(&p, r->owner);
	hl_pg_int(&p, hl_time_wall_ms());
	hl_pg_int(&p, HL_REDELIVERY_STALE_MS);
	/* a row given back for a retry (or left pending) is taken again by one
	 * claimer: the conflicting insert re-checks the outcome on the row's
	 * newest version; a pending claim's age is told by the database's
	 * clock (replicas' clocks may differ) */
	rc = hl_pg_exec(b, &res,
	                "INSERT INTO redeliveries (guid, hook, github_id, event_name,"
	                " status_code, requested_by, requested_ms, outcome, updated_ms)"
	                " VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', " PG_NOW_MS ")"
	                " ON CONFLICT (guid) DO UPDATE SET outcome = 'pending',"
	                " requested_by = EXCLUDED.requested_by, updated_ms = EXCLUDED.updated_ms"
	                " WHERE redeliveries.outcome = 'retry' OR (redeliveries.outcome = 'pending'"
	                " AND redeliveries.updated_ms < " PG_NOW_MS " - $8::bigint)"
	                " RETURNING not_taken, requested_ms",
	                &p, false, "redelivery claim", err);
	if (rc < 0)
		return rc;
	*claimed = PQntuples(res) == 1;
	if (*claimed) {
		hist->not_taken = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
		hist->first_ms = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	}
	PQclear(res);
	if (!*claimed) {
		struct pg_params q = { .n = 0 };

		hl_pg_text(&q, r->guid);
		rc = hl_pg_exec(b, &res, "SELECT outcome = 'pending' FROM redeliveries WHERE guid = $1",
		                &q, false, "redelivery claim", err);
		if (rc < 0)
			return rc;
		hist->pending = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
		PQclear(res);
	}
	return 0;
}

/* Why no row pending under owner was changed: -HL_ENOTFOUND for an
 * unknown guid, -HL_ECONFLICT when the row is another claimer's or ended. */
static int
pg_redelivery_not_held(struct hl_store_backend *b, const char *guid, struct hl_err *err)
{
	struct pg_params p = { .n = 0 };
	PGresult *r = NULL;
	bool found;
	int rc;

	hl_pg_text(&p, guid);
	rc = hl_pg_exec(b, &r, "SELECT 1 FROM redeliveries WHERE guid = $1", &p, false,
	                "redelivery", err);
	if (rc < 0)
		return rc;
	found = PQntuples(r) > 0;
	PQclear(r);
	if (!found)
		return hl_err_set(err, HL_ENOTFOUND, "no redelivery '%s'", guid);
	return hl_err_set(err, HL_ECONFLICT, "the redelivery claim of '%s' is no longer ours",
	                  guid);
}

int
hl_pg_redelivery_finish(struct hl_store_backend *b, const char *guid, const char *owner,
                        const char *outcome, const char *detail, struct hl_err *err)
{
	struct pg_params p = { .n = 0 };
	int64_t changed = 0;
	int rc;

	hl_pg_text(&p, guid);
	hl_pg_text(&p, outcome);
	hl_pg_text(&p, detail);
	hl_pg_int(&p, hl_time_wall_ms());
	hl_pg_text(&p, owner);
	rc = pg_redeliver_changes(b, &changed,
	                          "UPDATE redeliveries SET outcome = $2, detail = $3,"
	                          " updated_ms = $4 WHERE guid = $1"
	                          " AND requested_by = $5 AND outcome = 'pending'",
	                          &p, "redelivery", err);
	if (rc == 0 && changed == 0)
		rc = pg_redelivery_not_held(b, guid, err);
	return rc;
}

int
hl_pg_redelivery_release(struct hl_store_backend *b, const char *guid, const char *owner,
                         bool not_taken, const char *detail, struct hl_err *err)
{
	struct pg_params p = { .n = 0 };
	int64_t changed = 0;

	hl_pg_text(&p, guid);
	hl_pg_int(&p, not_taken ? 1 : 0);
	hl_pg_text(&p, detail);
	hl_pg_int(&p, hl_time_wall_ms());
	hl_pg_text(&p, owner);
	return pg_redeliver_changes(b, &changed,
	                            "UPDATE redeliveries SET outcome = 'retry',"
	                            " not_taken = not_taken + $2, detail = $3, updated_ms = $4"
	                            " WHERE guid = $1 AND requested_by = $5 AND outcome = 'pending'",
	                            &p, "redelivery release", err);
}
