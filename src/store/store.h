/*
 * store.h - healer's durable store: the handle, its schema, and the
 * signals between the parts of healer (and between replicas) that share it.
 *
 * One interface, two backends selected by URL: "sqlite:/path/healer.db"
 * (embedded, WAL) and PostgreSQL (shared by replicas): "postgres://...",
 * "postgresql://..." or libpq key/value settings ("host=/run/pg dbname=x").
 * Backends sit behind a vtable (store_impl.h); the operations are split by
 * concern:
 *   store/intake.h   the delivery queue: group-committed intake, claims
 *   store/ledger.h   remediation tasks, attempts and decisions (typed records)
 *   store/loop.h     the loop's state: due tasks, leases, CI results, budgets
 *   store/outbox.h   notifications waiting to be delivered
 * Migrations are .sql files per backend (src/store/migrations/<backend>/),
 * embedded at build time and recorded in schema_migrations.
 *
 * Signals: a few named channels carry short payloads to every subscriber
 * of every process sharing the store. SQLite delivers them in-process (one
 * server per data directory); a replicated backend delivers them to every
 * replica (PostgreSQL LISTEN/NOTIFY, one channel, payload
 * "<channel>|<payload>"). Listeners run on a store thread and must be quick
 * and must not call back into the store.
 *
 * Thread-safety: every function may be called from any thread. The backend
 * connection(s) are guarded by one store mutex.
 */
#ifndef HL_STORE_STORE_H
#define HL_STORE_STORE_H

#include "base/buf.h"
#include "base/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hl_store;

#define HL_DELIVERY_ID_MAX 128 /* longer ids are refused by the store */
#define HL_TASK_ID_MAX     96

/* What a signal is about. */
enum hl_store_channel {
	HL_CHANNEL_WORK,     /* deliveries were queued (payload "") */
	HL_CHANNEL_DECISION, /* a remediation was decided (payload: "<delivery id> <json>",
	                        or "" for any: decisions may have been missed) */
	HL_CHANNEL_TASK,     /* a task needs the loop's attention (payload: the task id,
	                        or "" for any: a replica whose connection to the
	                        database came back may have missed some) */
	HL_CHANNEL_MAX,
	HL_CHANNEL_INVALID = -1,
};

typedef void (*hl_store_listener_fn)(void *arg, enum hl_store_channel ch, const char *payload);

/*
 * Opens the store named by url and applies pending migrations:
 *   "sqlite:PATH"                          SQLite (the directory must exist)
 *   "postgres://..." / "postgresql://..."  PostgreSQL, a libpq URL
 *   "host=... dbname=..."                  PostgreSQL, libpq key/value settings
 *                                          (host may be a socket directory)
 * PostgreSQL passwords come from the URL, PGPASSFILE (~/.pgpass) or the
 * other libpq environment variables; sslmode and the rest of libpq's
 * settings are honoured. connect_timeout defaults to 5 s and TCP
 * keepalives are on, so a database that went away fails calls quickly.
 * Starts the committer thread and the lease keeper (which renews the
 * leases of this handle's claims). Does not re-queue interrupted
 * deliveries: call hl_store_recover for that. Error messages never hold
 * the url's credentials.
 * Errors: HL_EINVAL (bad url), HL_EDB (cannot open or connect).
 */
int hl_store_open(struct hl_store **out, const char *url, struct hl_err *err) HL_MUST_CHECK;

/* Flags of hl_store_open_with. */
enum hl_store_open_flags {
	/* Reads only: no migrations (the schema must be there and not newer
	 * than this healer's), no intake, no lease keeper, no signals from
	 * other processes; writes fail. SQLite opens the file read-only (a
	 * WAL reader beside a running server). For commands that inspect. */
	HL_STORE_READ_ONLY = 1u << 0,
	/* The caller is a server. SQLite has one server per store: another
	 * server's open fails (-HL_EDB) while this handle is open (a lock the
	 * kernel frees when the process dies). PostgreSQL takes any number. */
	HL_STORE_SERVER = 1u << 1,
};

/* hl_store_open with flags (enum hl_store_open_flags). */
int hl_store_open_with(struct hl_store **out, const char *url, unsigned flags,
                       struct hl_err *err) HL_MUST_CHECK;

/* url for messages and logs: without user-info and password. */
int hl_store_url_display(struct hl_buf *out, const char *url);

/* True when url names a PostgreSQL database (a libpq URL or key/value
 * settings), false for "sqlite:..." and anything else. */
bool hl_store_url_is_postgres(const char *url);
/* Whether url is a store healer can open as written, without opening it:
 * its form, and for PostgreSQL the settings libpq must read as written
 * (errors without the credentials). */
int hl_store_url_check(const char *url, struct hl_err *err) HL_MUST_CHECK;

/* This handle's identity as a claimer of deliveries ("host:pid:random"). */
const char *hl_store_owner(const struct hl_store *s);

/* How long a claim holds a delivery without being renewed (default 15 s,
 * at least 1 s). The lease keeper renews this handle's claims every third
 * of it; a claim of a process that died is taken again once it expires
 * (or at once on PostgreSQL, see hl_store_recover). */
void hl_store_set_claim_lease(struct hl_store *s, int64_t lease_ms);
/* A claim of this handle that its worker could not finish (the store
 * refused the finish for longer than the worker retries): the lease keeper
 * gives it back (waiting, due now), retrying until the store takes it.
 * Until then it stays this process's claim: a process never takes back
 * its own claims, whose leases run out only when their renewals failed
 * while the workers were still on them. 0, or -HL_ENOMEM. */
int hl_store_abandon_claim(struct hl_store *s, const char *delivery_id);
/* Completes every queued intake, stops the committer and closes. NULL is a no-op. */
void hl_store_close(struct hl_store *s);
/* "sqlite" or "postgres". */
const char *hl_store_backend_name(const struct hl_store *s);

/* Applies embedded migrations not yet in schema_migrations (idempotent);
 * *applied_out (may be NULL) gets how many ran. hl_store_open calls it. */
int hl_store_migrate(struct hl_store *s, int *applied_out, struct hl_err *err) HL_MUST_CHECK;
/* How many migrations opening s applied (0 read-only, or when another
 * process applied them first). */
int hl_store_migrated_at_open(const struct hl_store *s);
/* The schema version after migrations. */
int hl_store_schema_version(struct hl_store *s, int *out, struct hl_err *err) HL_MUST_CHECK;
/* Readiness probe: 0 when the backend answers a trivial query. */
int hl_store_ping(struct hl_store *s, struct hl_err *err);

/* Adds a listener for every channel (at most 8 per store). Listeners are
 * called one at a time; they must not (un)subscribe or call the store. */
int hl_store_subscribe(struct hl_store *s, hl_store_listener_fn fn, void *arg,
                       struct hl_err *err) HL_MUST_CHECK;
/* Removes a listener; when it returns, no call of it is running. */
void hl_store_unsubscribe(struct hl_store *s, hl_store_listener_fn fn, void *arg);
/* Sends payload (at most 7,000 bytes) on ch to every listener of every
 * process sharing the store, this one included (this process's listeners
 * get it at once, even when the database cannot be reached: the error
 * then says the others did not). */
int hl_store_publish(struct hl_store *s, enum hl_store_channel ch, const char *payload,
                     struct hl_err *err);

/* Blocks until deliveries were queued since the caller's last call (a
 * HL_CHANNEL_WORK signal), timeout_ms passes, or hl_store_wake_all is
 * called. Returns true when work may be waiting. For worker threads. */
bool hl_store_wait_work(struct hl_store *s, int timeout_ms);
/* Wakes every hl_store_wait_work caller (shutdown). */
void hl_store_wake_all(struct hl_store *s);

const char *hl_store_channel_name(enum hl_store_channel ch);

#include "store/intake.h"
#include "store/ledger.h"
#include "store/loop.h"
#include "store/memory.h"
#include "store/outbox.h"

#endif
