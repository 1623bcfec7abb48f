/*
 * pg_impl.h - what the PostgreSQL backend's files share (private to
 * src/store): the backend struct, statement parameters, the statement
 * runner with its per-session cache of prepared statements, and results.
 *
 *   pg.c         connections (the main one, the listener), reconnects,
 *                migrations, signals (LISTEN/NOTIFY), leadership, ops
 *   pg_intake.c  the delivery queue
 *   pg_ledger.c  tasks and attempts
 *   pg_loop.c    the loop's state and the outbox
 *   pg_memory.c  memories (tsvector/GIN), agent records, the insights' rows
 *
 * The main connection is used only under the store mutex; intake batches
 * run on a backend of their own (b->intake). Every statement
 * goes through hl_pg_exec: it reconnects a lost connection first (at most
 * once per backoff period, so calls fail fast while the database is
 * away), prepares the statement once per session, and turns a failure
 * into -HL_EDB with PostgreSQL's message. Parameters travel as text
 * (numbers formatted here) except bodies, which travel as binary bytea.
 */
#ifndef HL_STORE_PG_IMPL_H
#define HL_STORE_PG_IMPL_H

#include "store/loop.h"
#include "store_impl.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#define PG_MAX_PARAMS  24
#define PG_CACHE_MAX   128
#define PG_MAX_LEADERS 8

/* The database's clock in milliseconds since the epoch: every lease
 * (claims, task leases, sends, redeliveries) is measured on it, so
 * replicas whose clocks differ agree on when one ran out; a replica's own
 * clock only tells how long a lease lasts. */
#define PG_NOW_MS "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"

/* Advisory locks and LISTEN channels belong to the database, not to a
 * schema: a store in another schema than public (search_path) names its
 * locks after it, so two deployments in one database each elect their own
 * leaders and serialize only their own work (public keeps the names older
 * replicas use). */
#define PG_SCHEMA_KEY                                                                           \
	"CASE COALESCE(current_schema(), 'public') WHEN 'public' THEN '' ELSE current_schema()" \
	" || ':' END"
/* The store's LISTEN/NOTIFY channel: "healer" in public (as older
 * replicas), else "healer_" and a hash of the schema's name (an
 * identifier of at most 23 bytes). */
#define PG_CHANNEL_SQL                                                                \
	"(CASE COALESCE(current_schema(), 'public') WHEN 'public' THEN 'healer' ELSE" \
	" 'healer_' || to_hex(hashtextextended(current_schema(), 0)) END)"

/* Parameters of one statement; numbers are formatted into num. */
struct pg_params {
	int n;
	const char *v[PG_MAX_PARAMS];
	int len[PG_MAX_PARAMS];
	int fmt[PG_MAX_PARAMS];
	char num[PG_MAX_PARAMS][24];
};

struct hl_store_backend {
	char *conninfo;    /* as given (may hold a password: never shown) */
	char display[256]; /* for messages: without credentials */
	char owner[96];    /* the handle's claimer id */
	bool read_only;
	struct hl_store_sink sink;

	/* the main connection, under the store mutex */
	PGconn *conn;
	int64_t retry_at_ms; /* no reconnect before this (monotonic) */
	int backoff_ms;
	bool lost;          /* the last failure was the connection */
	bool txn;           /* inside BEGIN ... COMMIT/ROLLBACK: never reconnect */
	bool pipe_synced;   /* the pipeline being read ends with a sync */
	char sqlstate[6];   /* of the last failed statement, "" when none */
	char down_msg[200]; /* why the last connect failed */
	struct {
		const char *sql; /* static SQL text, compared by content */
		bool ready;      /* prepared in this session */
		uint32_t uses;   /* since prepared: pg_cache_ready re-prepares it */
	} cache[PG_CACHE_MAX];
	int ncache;
	/* the session's lock_timeout: asked for (0: none), and set (applied
	 * between transactions, see hl_pg_lock_timeout) */
	_Atomic int64_t lock_timeout_ms;
	int64_t lock_timeout_set;
	/* backend pids of the main connection (now and before its last
	 * reconnect): the listener skips the signals this process sent */
	_Atomic int own_pid[2];

	/* the listener: its own connection, LISTENing on PG_CHANNEL_SQL, holding
	 * the handle's liveness lock, its leaderships and its named locks */
	pthread_mutex_t l_lock; /* guards lconn and the fields below */
	PGconn *lconn;
	bool l_stop;
	bool owner_locked;
	char leaders[PG_MAX_LEADERS][72]; /* leaderships held on lconn */
	int nleaders;
	/* named locks (hl_store_lock_take) held on lconn; emptied with it */
	char locks[HL_STORE_MAX_LOCKS][HL_STORE_LOCK_NAME_MAX + 1];
	int nlocks;
	int wake[2]; /* a pipe: wakes the listener thread */
	pthread_t l_thread;
	bool l_started;

	/* the lease keeper's own backend (a connection, no listener), used
	 * only by the store's keeper thread, never under the store mutex, so
	 * a statement waiting on a lock there never holds up the renewals;
	 * connected when first used; NULL on a read-only handle */
	struct hl_store_backend *keep;

	/* intake batches' own backend (a connection, no listener), used only
	 * by the store's committer thread, never under the store mutex;
	 * connected when first used; NULL on a read-only handle */
	struct hl_store_backend *intake;
};

/* Adds a parameter: text (NULL for SQL NULL), a number, NULL unless
 * nonzero, a boolean, binary bytes. */
void hl_pg_text(struct pg_params *p, const char *s);
void hl_pg_int(struct pg_params *p, int64_t v);
void hl_pg_int_or_null(struct pg_params *p, int64_t v);
void hl_pg_bool(struct pg_params *p, bool v);
void hl_pg_bytes(struct pg_params *p, const void *data, size_t len);

/*
 * Runs sql (static text, prepared once per session) with p (may be NULL)
 * on the main connection. result_binary asks for binary results. On
 * success *out (may be NULL: cleared) gets the result. On failure: -HL_EDB
 * with err = "postgres WHAT: <message>"; b->lost tells a lost connection
 * and b->sqlstate the error's code.
 */
int hl_pg_exec(struct hl_store_backend *b, PGresult **out, const char *sql,
               const struct pg_params *p, bool result_binary, const char *what, struct hl_err *err);
/*
 * Pipelines, for many statements in one round trip: prepare each statement
 * (once per session) first; start; send the statements (prepared SQL with
 * parameters, or commands); sync; read each statement's result in order
 * with next (< 0: it failed, or was not run after an earlier failure);
 * end reads up to the sync and leaves pipeline mode (< 0: the session is
 * dropped). A failure inside a transaction leaves it to be rolled back.
 */
int hl_pg_prepare(struct hl_store_backend *b, const char *sql, const char *what,
                  struct hl_err *err);
int hl_pg_pipe_start(struct hl_store_backend *b, struct hl_err *err);
int hl_pg_pipe_send(struct hl_store_backend *b, const char *sql, const struct pg_params *p,
                    const char *what, struct hl_err *err);
int hl_pg_pipe_send_cmd(struct hl_store_backend *b, const char *sql, const char *what,
                        struct hl_err *err);
int hl_pg_pipe_sync(struct hl_store_backend *b, const char *what, struct hl_err *err);
int hl_pg_pipe_next(struct hl_store_backend *b, PGresult **out, const char *what,
                    struct hl_err *err);
int hl_pg_pipe_end(struct hl_store_backend *b, struct hl_err *err);
/* Runs a command without parameters (BEGIN, COMMIT, ...), not prepared. */
int hl_pg_cmd(struct hl_store_backend *b, const char *sql, const char *what, struct hl_err *err);
/* BEGIN / COMMIT / ROLLBACK on the main connection. */
int hl_pg_begin(struct hl_store_backend *b, const char *what, struct hl_err *err);
int hl_pg_commit(struct hl_store_backend *b, const char *what, struct hl_err *err);
void hl_pg_rollback(struct hl_store_backend *b);
/* True when the last failure was a deadlock, a serialization failure or a
 * lock not granted within the session's lock_timeout. */
bool hl_pg_retryable(const struct hl_store_backend *b);
/* How long a statement of b's session may wait for a lock (0: as long as
 * it takes); set on the session before its next statement outside a
 * transaction: one waiting statement fails (lock_not_available,
 * retryable) instead of holding up the store mutex and every caller
 * queued behind it. */
void hl_pg_lock_timeout(struct hl_store_backend *b, int64_t ms);

/* Result helpers (text or binary results): a NUL-terminated value or
 * NULL; a malloc'd copy or NULL; a copy into out ("" for NULL); a number
 * (0 for NULL). */
const char *hl_pg_get(const PGresult *r, int row, int col);
char *hl_pg_dup(const PGresult *r, int row, int col);
void hl_pg_copy(char *out, size_t size, const PGresult *r, int row, int col);
int64_t hl_pg_int_at(const PGresult *r, int row, int col);

/* The operations of each concern. */
int hl_pg_recover(struct hl_store_backend *b, int64_t *n, const char *owner, struct hl_err *err);
int hl_pg_intake_batch(struct hl_store_backend *b, struct hl_intake_req *head);
int hl_pg_claim_many(struct hl_store_backend *b, struct hl_delivery_record **out, int max, int *n,
                     const char *owner, int64_t lease_ms, struct hl_err *err);
int hl_pg_claim_next(struct hl_store_backend *b, struct hl_delivery_record **out, const char *owner,
                     int64_t lease_ms, struct hl_err *err);
int hl_pg_renew(struct hl_store_backend *b, const char *owner, int64_t until_ms,
                const char *const *ids, size_t n, struct hl_err *err);
int hl_pg_reap(struct hl_store_backend *b, int64_t *n, const char *owner, int64_t lease_ms,
               struct hl_err *err);
int hl_pg_prune(struct hl_store_backend *b, int64_t *removed, int64_t before_ms, int max,
                struct hl_err *err);
int hl_pg_requeue(struct hl_store_backend *b, int64_t *n, const char *delivery_id,
                  struct hl_err *err);
int hl_pg_finish(struct hl_store_backend *b, const char *delivery_id,
                 const struct hl_delivery_result *r, struct hl_err *err);
int hl_pg_decision(struct hl_store_backend *b, char **out, const char *delivery_id,
                   struct hl_err *err);
int hl_pg_queue_depth(struct hl_store_backend *b, int64_t *out, struct hl_err *err);
int hl_pg_counts(struct hl_store_backend *b,
                 void (*fn)(void *, const char *, const char *, const char *, int64_t), void *arg,
                 struct hl_err *err);
int hl_pg_recent(struct hl_store_backend *b, struct hl_delivery_summary *out, size_t max, size_t *n,
                 struct hl_err *err);

int hl_pg_task_claim(struct hl_store_backend *b, bool *created, char *existing,
                     const struct hl_task *t, struct hl_err *err);
int hl_pg_task_find(struct hl_store_backend *b, char *out, const char *repository,
                    const char *branch, int64_t run_id, enum hl_task_find mode, int64_t since_ms,
                    const char *exclude, struct hl_err *err);
int hl_pg_task_put(struct hl_store_backend *b, const struct hl_task *t, struct hl_err *err);
int hl_pg_task_get(struct hl_store_backend *b, struct hl_task_record **out, const char *task_id,
                   struct hl_err *err);
int hl_pg_attempt_put(struct hl_store_backend *b, const struct hl_attempt *a, struct hl_err *err);
int hl_pg_outcome_add(struct hl_store_backend *b, const char *task_id, const char *delivery_id,
                      const char *outcome, const char *detail, struct hl_err *err);
int hl_pg_task_counts(struct hl_store_backend *b,
                      void (*fn)(void *, const char *, const char *, int64_t), void *arg,
                      struct hl_err *err);
int hl_pg_attempt_prompt(struct hl_store_backend *b, char **out, const char *task_id, int n,
                         struct hl_err *err);
int hl_pg_task_waiting(struct hl_store_backend *b, struct hl_task_waiting *out, const char *task_id,
                       struct hl_err *err);
int hl_pg_task_page(struct hl_store_backend *b, struct hl_task_summary *out, size_t *n,
                    char *next_cursor, const struct hl_task_filter *f, struct hl_err *err);
int hl_pg_task_list(struct hl_store_backend *b, struct hl_task_record ***out, size_t *n,
                    const struct hl_task_query *q, struct hl_err *err);

int hl_pg_tasks_due(struct hl_store_backend *b, char (*ids)[HL_TASK_ID_MAX], size_t max, size_t *n,
                    int64_t now_ms, struct hl_err *err);
int hl_pg_tasks_remember(struct hl_store_backend *b, char (*ids)[HL_TASK_ID_MAX], size_t max,
                         size_t *n, struct hl_err *err);
int hl_pg_task_remembered(struct hl_store_backend *b, const char *task_id, struct hl_err *err);
int hl_pg_tasks_queued(struct hl_store_backend *b, char (*ids)[HL_TASK_ID_MAX], size_t max,
                       size_t *n, struct hl_err *err);
int hl_pg_next_check(struct hl_store_backend *b, int64_t *out, struct hl_err *err);
int hl_pg_task_lease(struct hl_store_backend *b, bool *got, const char *task_id, const char *owner,
                     int64_t now_ms, int64_t until_ms, struct hl_err *err);
int hl_pg_task_release(struct hl_store_backend *b, const char *task_id, const char *owner,
                       struct hl_err *err);
int hl_pg_attempt_of_coderun(struct hl_store_backend *b, char *task_id, int *n,
                             const char *coderun_name, struct hl_err *err);
int hl_pg_task_active_for(struct hl_store_backend *b, char *out, const char *repository,
                          const char *branch, const char *workflow, const char *job,
                          const char *exclude, struct hl_err *err);
int hl_pg_tasks_of_pr(struct hl_store_backend *b, char (*ids)[HL_TASK_ID_MAX], size_t max,
                      size_t *n, size_t *total, const char *repository, int64_t pr_number,
                      struct hl_err *err);
int hl_pg_task_of_pr(struct hl_store_backend *b, char *out, const char *repository,
                     int64_t pr_number, bool active_only, struct hl_err *err);
int hl_pg_ci_result_add(struct hl_store_backend *b, const struct hl_ci_result *r,
                        struct hl_err *err);
int hl_pg_ci_result_latest(struct hl_store_backend *b, struct hl_ci_result_record *out,
                           const char *task_id, int64_t since_ms, const char *branch,
                           struct hl_err *err);
int hl_pg_budget_usage(struct hl_store_backend *b, int64_t *active, int64_t *repo_since,
                       const char *repository, int64_t since_ms, struct hl_err *err);
int hl_pg_attempt_begin(struct hl_store_backend *b, enum hl_budget_wait *over, char *why,
                        size_t why_size, const struct hl_attempt *a, int max_active, int max_recent,
                        int64_t since_ms, struct hl_err *err);
int hl_pg_task_schedule(struct hl_store_backend *b, const char *task_id, int64_t next_check_ms,
                        struct hl_err *err);
int hl_pg_attempt_outcomes(struct hl_store_backend *b,
                           void (*fn)(void *, const char *, const char *, const char *, int64_t),
                           void *arg, struct hl_err *err);
int hl_pg_time_to_fix(struct hl_store_backend *b, const double *bounds, size_t n_bounds,
                      int64_t *counts, double *sum, struct hl_err *err);
int hl_pg_kv_get(struct hl_store_backend *b, char **out, const char *key, struct hl_err *err);
int hl_pg_kv_prune(struct hl_store_backend *b, int64_t *removed, const char *prefix,
                   int64_t before_ms, struct hl_err *err);
int hl_pg_kv_put(struct hl_store_backend *b, const char *key, const char *value,
                 struct hl_err *err);
int hl_pg_kv_raise(struct hl_store_backend *b, const char *key, int64_t value, struct hl_err *err);

int hl_pg_outbox_add(struct hl_store_backend *b, bool *created, const struct hl_notification_in *n,
                     struct hl_err *err);
int hl_pg_outbox_due(struct hl_store_backend *b, struct hl_notification **out, size_t max,
                     size_t *n, int64_t now_ms, struct hl_err *err);
int hl_pg_outbox_take(struct hl_store_backend *b, struct hl_outbox_claim *out, int64_t id,
                      int64_t now_ms, int64_t until_ms, const char *owner, bool count,
                      struct hl_err *err);
int hl_pg_outbox_renew(struct hl_store_backend *b, const char *owner, int64_t id,
                      int64_t now_ms, int64_t until_ms, struct hl_err *err);
int hl_pg_outbox_update(struct hl_store_backend *b, int64_t id, enum hl_notification_state state,
                        int attempts, int64_t next_ms, const char *last_error, const char *payload,
                        struct hl_err *err);
int hl_pg_outbox_counts(struct hl_store_backend *b,
                        void (*fn)(void *, const char *, const char *, int64_t), void *arg,
                        struct hl_err *err);

/* store/redeliver.h */
int hl_pg_delivery_known(struct hl_store_backend *b, bool *known, const char *delivery_id,
                         struct hl_err *err);
int hl_pg_redelivery_claim(struct hl_store_backend *b, bool *claimed,
                           struct hl_redelivery_history *hist, const struct hl_redelivery *r,
                           struct hl_err *err);
int hl_pg_redelivery_finish(struct hl_store_backend *b, const char *guid, const char *owner,
                           const char *outcome, const char *detail, struct hl_err *err);
int hl_pg_redelivery_release(struct hl_store_backend *b, const char *guid, const char *owner,
                            bool not_taken, const char *detail, struct hl_err *err);

/* store/memory.h */
int hl_pg_memory_put(struct hl_store_backend *b, bool *created, const struct hl_memory_in *m,
                     struct hl_err *err);
int hl_pg_memory_similar(struct hl_store_backend *b, struct hl_memory_hit **out, size_t *n,
                         const struct hl_memory_query *q, char (*words)[HL_MEMORY_WORD_MAX],
                         size_t n_words, struct hl_err *err);
int hl_pg_memory_reinforce(struct hl_store_backend *b, int64_t id, double boost,
                           struct hl_err *err);
int hl_pg_memory_count(struct hl_store_backend *b, int64_t *out, struct hl_err *err);
int hl_pg_agent_records(struct hl_store_backend *b, struct hl_agent_record *out, size_t max,
                        size_t *n, const char *repository, const char *failure_type,
                        struct hl_err *err);
int hl_pg_insight_rows(struct hl_store_backend *b, const struct hl_insight_filter *f,
                       void (*fn)(void *, const struct hl_insight_row *), void *arg,
                       struct hl_err *err);
int hl_pg_insight_dedup(struct hl_store_backend *b, struct hl_insight_dedup *out,
                        const struct hl_insight_filter *f, struct hl_err *err);

#endif
