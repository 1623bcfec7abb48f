/*
 * store.h - healer's durable store: the handle, its schema, and the
 * signals between the parts of healer (and between replicas) that share it.
 *
 * One interface, two backends selected by URL: "sqlite:/path/healer.db"
 * (embedded, WAL) and "postgres://..." (shared by replicas). Backends sit
 * behind a vtable (store_impl.h); the operations are split by concern:
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
 * replica (PostgreSQL LISTEN/NOTIFY). Listeners run on a store thread and
 * must be quick and must not call back into the store.
 *
 * Thread-safety: every function may be called from any thread. The backend
 * connection(s) are guarded by one store mutex.
 */
#ifndef HL_STORE_STORE_H
#define HL_STORE_STORE_H

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
	HL_CHANNEL_DECISION, /* a remediation was decided (payload: "<delivery id> <json>") */
	HL_CHANNEL_TASK,     /* a task needs the loop's attention (payload: the task id) */
	HL_CHANNEL_MAX,
	HL_CHANNEL_INVALID = -1,
};

typedef void (*hl_store_listener_fn)(void *arg, enum hl_store_channel ch, const char *payload);

/*
 * Opens the store named by url ("sqlite:PATH"; the directory must exist),
 * applies pending migrations, and starts the committer thread. Does not
 * re-queue interrupted deliveries: call hl_store_recover for that.
 * Errors: HL_EINVAL (bad url), HL_EUNSUPPORTED (postgres), HL_EDB.
 */
int hl_store_open(struct hl_store **out, const char *url, struct hl_err *err) HL_MUST_CHECK;
/* Completes every queued intake, stops the committer and closes. NULL is a no-op. */
void hl_store_close(struct hl_store *s);
/* "sqlite" or "postgres". */
const char *hl_store_backend_name(const struct hl_store *s);

/* Applies embedded migrations not yet in schema_migrations (idempotent);
 * *applied_out (may be NULL) gets how many ran. hl_store_open calls it. */
int hl_store_migrate(struct hl_store *s, int *applied_out, struct hl_err *err) HL_MUST_CHECK;
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
 * process sharing the store, this one included. */
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
#include "store/outbox.h"

#endif
