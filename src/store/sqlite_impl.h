/*
 * sqlite_impl.h - what the SQLite backend's files share (private to
 * src/store): the backend struct, the hot intake statements prepared once
 * at open, the statement cache of the other paths, and small helpers.
 *
 *   sqlite.c         connection, migrations, checkpoints, log flushes, ops
 *   sqlite_intake.c  the delivery queue
 *   sqlite_ledger.c  tasks and attempts
 *   sqlite_loop.c    the loop's state and the outbox
 *   sqlite_memory.c  memories (FTS5), agent records, the insights' rows
 */
#ifndef HL_STORE_SQLITE_IMPL_H
#define HL_STORE_SQLITE_IMPL_H

#include "store_impl.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>

/* Statements of the intake path, prepared once at open. */
enum sq_stmt {
	SQ_SYNC_FULL,
	SQ_SYNC_NORMAL,
	SQ_BEGIN,
	SQ_COMMIT,
	SQ_ROLLBACK,
	SQ_SP,
	SQ_SP_RELEASE,
	SQ_SP_ROLLBACK,
	SQ_SEL_DELIVERY,
	SQ_INS_KEY,
	SQ_SEL_KEY,
	SQ_INS_DELIVERY,
	SQ_COUNT_BUMP,
	SQ_CLAIM_SEL,
	SQ_CLAIM_MARK,
	SQ_FIN_DONE,
	SQ_FIN_BACK,
	SQ_FIN_EVENT,
	SQ_MAX
};

/* Their SQL (sqlite_intake.c). */
extern const char *const hl_sq_sql[SQ_MAX];

#define SQ_CACHE_MAX 64

struct hl_store_backend {
	sqlite3 *db; /* the connection (under the store mutex) */
	sqlite3 *ck; /* checkpointer connection (its own thread) */
	sqlite3_stmt *in_st[SQ_MAX];
	pthread_t ck_thread;
	bool ck_started;
	int migrated_unasked; /* migrations applied by the open, not yet reported */
	pthread_mutex_t ck_lock;
	pthread_cond_t ck_cond;
	bool ck_wanted, ck_stop;
	int walfd;  /* our handle on the -wal file for deferred flushes, or -1 */
	int lockfd; /* HL_STORE_SERVER: the "<path>-server" lock, or -1 */
	bool read_only;
	struct {
		char *sql;
		sqlite3_stmt *st;
	} cache[SQ_CACHE_MAX]; /* statements of the less hot paths, by SQL text */
	int ncache;
};

/* err = "sqlite WHAT: <sqlite's message>"; returns -HL_EDB. */
int hl_sq_fail(struct hl_err *err, sqlite3 *db, const char *what);
/* The name of the VFS store connections open with (sqlite_vfs.c: WAL
 * frames written together), or NULL for the default. */
const char *hl_sq_vfs(void);
/* Runs SQL text (several statements allowed). */
int hl_sq_exec(sqlite3 *db, const char *sql, struct hl_err *err);
/* Runs a prepared statement that returns no rows, then resets it: 0 or -1. */
int hl_sq_step_done(sqlite3_stmt *st);
/* Binds s, or NULL when s is NULL. */
void hl_sq_bind_text(sqlite3_stmt *st, int i, const char *s);
/* A malloc'd copy of a text column, NULL for NULL. */
char *hl_sq_col_dup(sqlite3_stmt *st, int i);
/* Copies a text column into out ("" for NULL). */
void hl_sq_col_copy(char *out, size_t size, sqlite3_stmt *st, int i);
/* A prepared statement for sql from the cache (or prepared and cached);
 * every use ends with hl_sq_done. NULL when sql does not prepare. */
sqlite3_stmt *hl_sq_prepare(struct hl_store_backend *b, const char *sql);
void hl_sq_done(struct hl_store_backend *b, sqlite3_stmt *st);
/* BEGIN IMMEDIATE / COMMIT / ROLLBACK through the prepared statements. */
int hl_sq_begin(struct hl_store_backend *b, const char *what, struct hl_err *err);
int hl_sq_commit(struct hl_store_backend *b, const char *what, struct hl_err *err);
void hl_sq_rollback(struct hl_store_backend *b);

/* The operations of each concern. */
int hl_sq_recover(struct hl_store_backend *b, int64_t *n, const char *owner, struct hl_err *err);
int hl_sq_intake_batch(struct hl_store_backend *b, struct hl_intake_req *head);
int hl_sq_claim_next(struct hl_store_backend *b, struct hl_delivery_record **out, const char *owner,
                     int64_t lease_ms, struct hl_err *err);
int hl_sq_renew(struct hl_store_backend *b, const char *owner, int64_t until_ms,
                const char *const *ids, size_t n, struct hl_err *err);
int hl_sq_compact(struct hl_store_backend *b, int64_t *freed_bytes, int max_pages,
                  struct hl_err *err);
int hl_sq_prune(struct hl_store_backend *b, int64_t *removed, int64_t before_ms, int max,
                struct hl_err *err);
int hl_sq_requeue(struct hl_store_backend *b, int64_t *n, const char *delivery_id,
                  struct hl_err *err);
int hl_sq_task_list(struct hl_store_backend *b, struct hl_task_record ***out, size_t *n,
                    const struct hl_task_query *q, struct hl_err *err);
int hl_sq_finish(struct hl_store_backend *b, const char *delivery_id,
                 const struct hl_delivery_result *r, struct hl_err *err);
int hl_sq_decision(struct hl_store_backend *b, char **out, const char *delivery_id,
                   struct hl_err *err);
int hl_sq_queue_depth(struct hl_store_backend *b, int64_t *out, struct hl_err *err);
int hl_sq_counts(struct hl_store_backend *b,
                 void (*fn)(void *, const char *, const char *, const char *, int64_t), void *arg,
                 struct hl_err *err);
int hl_sq_recent(struct hl_store_backend *b, struct hl_delivery_summary *out, size_t max, size_t *n,
                 struct hl_err *err);

int hl_sq_task_claim(struct hl_store_backend *b, bool *created, char *existing,
                     const struct hl_task *t, struct hl_err *err);
int hl_sq_task_find(struct hl_store_backend *b, char *out, const char *repository,
                    const char *branch, int64_t run_id, enum hl_task_find mode, int64_t since_ms,
                    const char *exclude, struct hl_err *err);
int hl_sq_task_put(struct hl_store_backend *b, const struct hl_task *t, struct hl_err *err);
int hl_sq_task_get(struct hl_store_backend *b, struct hl_task_record **out, const char *task_id,
                   struct hl_err *err);
int hl_sq_attempt_put(struct hl_store_backend *b, const struct hl_attempt *a, struct hl_err *err);
int hl_sq_outcome_add(struct hl_store_backend *b, const char *task_id, const char *delivery_id,
                      const char *outcome, const char *detail, struct hl_err *err);
int hl_sq_task_counts(struct hl_store_backend *b,
                      void (*fn)(void *, const char *, const char *, int64_t), void *arg,
                      struct hl_err *err);

int hl_sq_task_waiting(struct hl_store_backend *b, struct hl_task_waiting *out, const char *task_id,
                       struct hl_err *err);
int hl_sq_task_page(struct hl_store_backend *b, struct hl_task_summary *out, size_t *n,
                    char *next_cursor, const struct hl_task_filter *f, struct hl_err *err);
int hl_sq_attempt_prompt(struct hl_store_backend *b, char **out, const char *task_id, int n,
                         struct hl_err *err);

int hl_sq_tasks_due(struct hl_store_backend *b, char (*ids)[HL_TASK_ID_MAX], size_t max, size_t *n,
                    int64_t now_ms, struct hl_err *err);
int hl_sq_tasks_remember(struct hl_store_backend *b, char (*ids)[HL_TASK_ID_MAX], size_t max,
                         size_t *n, struct hl_err *err);
int hl_sq_task_remembered(struct hl_store_backend *b, const char *task_id, struct hl_err *err);
int hl_sq_tasks_queued(struct hl_store_backend *b, char (*ids)[HL_TASK_ID_MAX], size_t max,
                       size_t *n, struct hl_err *err);
int hl_sq_next_check(struct hl_store_backend *b, int64_t *out, struct hl_err *err);
int hl_sq_task_lease(struct hl_store_backend *b, bool *got, const char *task_id, const char *owner,
                     int64_t now_ms, int64_t until_ms, struct hl_err *err);
int hl_sq_task_release(struct hl_store_backend *b, const char *task_id, const char *owner,
                       struct hl_err *err);
int hl_sq_attempt_of_coderun(struct hl_store_backend *b, char *task_id, int *n,
                             const char *coderun_name, struct hl_err *err);
int hl_sq_task_active_for(struct hl_store_backend *b, char *out, const char *repository,
                          const char *branch, const char *workflow, const char *job,
                          const char *exclude, struct hl_err *err);
int hl_sq_tasks_of_pr(struct hl_store_backend *b, char (*ids)[HL_TASK_ID_MAX], size_t max,
                      size_t *n, size_t *total, const char *repository, int64_t pr_number,
                      struct hl_err *err);
int hl_sq_task_of_pr(struct hl_store_backend *b, char *out, const char *repository,
                     int64_t pr_number, bool active_only, struct hl_err *err);
int hl_sq_ci_result_add(struct hl_store_backend *b, const struct hl_ci_result *r,
                        struct hl_err *err);
int hl_sq_ci_result_latest(struct hl_store_backend *b, struct hl_ci_result_record *out,
                           const char *task_id, int64_t since_ms, const char *branch,
                           struct hl_err *err);
int hl_sq_budget_usage(struct hl_store_backend *b, int64_t *active, int64_t *repo_since,
                       const char *repository, int64_t since_ms, struct hl_err *err);
int hl_sq_attempt_begin(struct hl_store_backend *b, enum hl_budget_wait *over, char *why,
                        size_t why_size, const struct hl_attempt *a, int max_active, int max_recent,
                        int64_t since_ms, struct hl_err *err);
int hl_sq_task_schedule(struct hl_store_backend *b, const char *task_id, int64_t next_check_ms,
                        struct hl_err *err);
int hl_sq_attempt_outcomes(struct hl_store_backend *b,
                           void (*fn)(void *, const char *, const char *, const char *, int64_t),
                           void *arg, struct hl_err *err);
int hl_sq_time_to_fix(struct hl_store_backend *b, const double *bounds, size_t n_bounds,
                      int64_t *counts, double *sum, struct hl_err *err);
int hl_sq_kv_get(struct hl_store_backend *b, char **out, const char *key, struct hl_err *err);
int hl_sq_kv_prune(struct hl_store_backend *b, int64_t *removed, const char *prefix,
                   int64_t before_ms, struct hl_err *err);
int hl_sq_kv_put(struct hl_store_backend *b, const char *key, const char *value,
                 struct hl_err *err);
int hl_sq_kv_raise(struct hl_store_backend *b, const char *key, int64_t value, struct hl_err *err);

int hl_sq_outbox_add(struct hl_store_backend *b, bool *created, const struct hl_notification_in *n,
                     struct hl_err *err);
int hl_sq_outbox_due(struct hl_store_backend *b, struct hl_notification **out, size_t max,
                     size_t *n, int64_t now_ms, struct hl_err *err);
int hl_sq_outbox_take(struct hl_store_backend *b, struct hl_outbox_claim *out, int64_t id,
                      int64_t now_ms, int64_t until_ms, const char *owner, bool count,
                      struct hl_err *err);
int hl_sq_outbox_renew(struct hl_store_backend *b, const char *owner, int64_t id,
                      int64_t now_ms, int64_t until_ms, struct hl_err *err);
int hl_sq_outbox_update(struct hl_store_backend *b, int64_t id, enum hl_notification_state state,
                        int attempts, int64_t next_ms, const char *last_error, const char *payload,
                        struct hl_err *err);
int hl_sq_outbox_counts(struct hl_store_backend *b,
                        void (*fn)(void *, const char *, const char *, int64_t), void *arg,
                        struct hl_err *err);

/* store/redeliver.h */
int hl_sq_delivery_known(struct hl_store_backend *b, bool *known, const char *delivery_id,
                         struct hl_err *err);
int hl_sq_redelivery_claim(struct hl_store_backend *b, bool *claimed,
                           struct hl_redelivery_history *hist, const struct hl_redelivery *r,
                           struct hl_err *err);
int hl_sq_redelivery_finish(struct hl_store_backend *b, const char *guid, const char *owner,
                           const char *outcome, const char *detail, struct hl_err *err);
int hl_sq_redelivery_release(struct hl_store_backend *b, const char *guid, const char *owner,
                            bool not_taken, const char *detail, struct hl_err *err);

/* store/memory.h */
/* Registers the memory search's ranking function on db (sqlite_memory.c). */
int hl_sq_memory_register(sqlite3 *db, struct hl_err *err);
/* Indexes the memories again, once, if the index predates its newest-first
 * order (sqlite_memory.c; after the migrations). */
int hl_sq_memory_upgrade(struct hl_store_backend *b, struct hl_err *err);
int hl_sq_memory_put(struct hl_store_backend *b, bool *created, const struct hl_memory_in *m,
                     struct hl_err *err);
int hl_sq_memory_similar(struct hl_store_backend *b, struct hl_memory_hit **out, size_t *n,
                         const struct hl_memory_query *q, char (*words)[HL_MEMORY_WORD_MAX],
                         size_t n_words, struct hl_err *err);
int hl_sq_memory_reinforce(struct hl_store_backend *b, int64_t id, double boost,
                           struct hl_err *err);
int hl_sq_memory_count(struct hl_store_backend *b, int64_t *out, struct hl_err *err);
int hl_sq_agent_records(struct hl_store_backend *b, struct hl_agent_record *out, size_t max,
                        size_t *n, const char *repository, const char *failure_type,
                        struct hl_err *err);
int hl_sq_insight_rows(struct hl_store_backend *b, const struct hl_insight_filter *f,
                       void (*fn)(void *, const struct hl_insight_row *), void *arg,
                       struct hl_err *err);
int hl_sq_insight_dedup(struct hl_store_backend *b, struct hl_insight_dedup *out,
                        const struct hl_insight_filter *f, struct hl_err *err);

#endif
