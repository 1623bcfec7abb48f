/*
 * store_impl.h - the backend vtable behind store.h (private to src/store).
 *
 * A backend owns its connection(s) and is NOT thread-safe: the front end
 * (store.c) holds the store mutex around every call except sync_log. Every
 * operation is one transaction; intake_batch writes a whole batch in one
 * transaction. The operations are grouped by concern, as the public
 * headers are: the connection and its schema, the intake queue, the
 * ledger, the loop's state and the outbox.
 */
#ifndef HL_STORE_STORE_IMPL_H
#define HL_STORE_STORE_IMPL_H

#include "base/embed.h"
#include "store.h"
#include "store/memory.h"
#include "store/redeliver.h"

struct hl_store_backend;

/*
 * The SQL of an attempt's phase on update, for both backends: a phase never
 * goes back (preparing < pending < running < verifying < done). A replayed
 * remediation records its attempt again as pending, and the agent's pod is
 * recorded as running; neither may undo a CodeRun status the watch recorded
 * meanwhile.
 */
#define HL_STORE_PHASE_RANK(x)                                                            \
	"(CASE " x " WHEN 'preparing' THEN 0 WHEN 'pending' THEN 1 WHEN 'running' THEN 2" \
	" WHEN 'verifying' THEN 3 WHEN 'done' THEN 4 ELSE 0 END)"
#define HL_STORE_ATTEMPT_PHASE_SET                                                              \
	" phase = CASE WHEN " HL_STORE_PHASE_RANK("excluded.phase") " >= " HL_STORE_PHASE_RANK( \
	        "attempts.phase") " THEN excluded.phase ELSE attempts.phase END"

/*
 * The SQL of the CodeRun's status on an attempt's update: its phase, message,
 * PR and Job come from one look at the CodeRun (Pending < Running <
 * Succeeded, Failed). A look whose phase ranks below the recorded one is
 * stale (read before a newer one was written, then written after it) and
 * changes none of them; NULL keeps the stored value.
 */
#define HL_STORE_CODERUN_RANK(x)                                                          \
	"(CASE " x " WHEN 'Pending' THEN 0 WHEN 'Running' THEN 1 WHEN 'Succeeded' THEN 2" \
	" WHEN 'Failed' THEN 2 ELSE -1 END)"
#define HL_STORE_CODERUN_STALE                                            \
	"(excluded.coderun_phase IS NOT NULL AND " HL_STORE_CODERUN_RANK( \
	        "excluded.coderun_phase") " < " HL_STORE_CODERUN_RANK("attempts.coderun_phase") ")"
#define HL_STORE_CODERUN_FIELD_SET(f)                                                      \
	" " f " = CASE WHEN " HL_STORE_CODERUN_STALE " THEN attempts." f " ELSE COALESCE(" \
	"excluded." f ", attempts." f ") END"
#define HL_STORE_ATTEMPT_CODERUN_SET                                             \
	HL_STORE_CODERUN_FIELD_SET("status_message")                             \
	"," HL_STORE_CODERUN_FIELD_SET("pr_url") "," HL_STORE_CODERUN_FIELD_SET( \
	        "coderun_phase") "," HL_STORE_CODERUN_FIELD_SET("job_name")

/*
 * An attempt's row, for both backends: the insert's columns (each backend
 * adds its VALUES placeholders) and the update of a row that exists. NULL
 * keeps a stored value; the phase and the CodeRun's status never go back.
 */
#define HL_STORE_ATTEMPT_INSERT                                                       \
	"INSERT INTO attempts (task_id, n, agent, coderun_name, outcome, started_ms," \
	" finished_ms, kind, phase, reason, status_message, pr_url, coderun_phase,"   \
	" job_name, agent_done_ms, prompt, repository, pod_name)"
#define HL_STORE_ATTEMPT_UPSERT                                                                  \
	" ON CONFLICT (task_id, n) DO UPDATE SET"                                                \
	" agent = COALESCE(excluded.agent, attempts.agent),"                                     \
	" coderun_name = COALESCE(excluded.coderun_name, attempts.coderun_name),"                \
	" outcome = COALESCE(excluded.outcome, attempts.outcome),"                               \
	" finished_ms = COALESCE(excluded.finished_ms, attempts.finished_ms),"                   \
	" kind = excluded.kind," HL_STORE_ATTEMPT_PHASE_SET ","                                  \
	" reason = COALESCE(excluded.reason, attempts.reason)," HL_STORE_ATTEMPT_CODERUN_SET "," \
	" agent_done_ms = COALESCE(excluded.agent_done_ms, attempts.agent_done_ms),"             \
	" prompt = COALESCE(excluded.prompt, attempts.prompt),"                                  \
	" repository = COALESCE(excluded.repository, attempts.repository),"                      \
	" pod_name = COALESCE(excluded.pod_name, attempts.pod_name)"

/* Where a backend hands the signals it receives (see hl_store_publish). */
struct hl_store_sink {
	void (*deliver)(void *arg, enum hl_store_channel ch, const char *payload);
	void *arg;
};

struct hl_store_conn_ops {
	const char *name;
	void (*close)(struct hl_store_backend *b);
	int (*migrate)(struct hl_store_backend *b, int *applied, struct hl_err *err);
	int (*schema_version)(struct hl_store_backend *b, int *out, struct hl_err *err);
	int (*ping)(struct hl_store_backend *b, struct hl_err *err);
	/* Sends a signal to every process sharing the store, which deliver it
	 * to their sinks (this one's included). NULL for a backend that only
	 * ever has one process: the front end then delivers it itself. */
	int (*publish)(struct hl_store_backend *b, enum hl_store_channel ch, const char *payload,
	               struct hl_err *err);
	/* True when the last failure was the connection to the database
	 * (the operation may succeed once it is back). NULL: never. */
	bool (*lost)(struct hl_store_backend *b);
	/* hl_store_leader. */
	int (*leader)(struct hl_store_backend *b, bool *leader, const char *name, const char *owner,
	              int64_t ttl_ms, struct hl_err *err);
	/* hl_store_lock_take's one try, hl_store_lock_release and
	 * hl_store_lock_held: called WITHOUT the store mutex (safe on their
	 * own), never twice for a name before its release. NULL: one process
	 * per store, the front end's own table is the lock. */
	int (*lock_try)(struct hl_store_backend *b, bool *got, const char *name,
	                struct hl_err *err);
	void (*lock_release)(struct hl_store_backend *b, const char *name);
	bool (*lock_held)(struct hl_store_backend *b, const char *name);
	/* The backend the lease keeper renews and reaps on, WITHOUT the store
	 * mutex (a connection of its own, used by the keeper thread alone).
	 * NULL, or NULL returned: the store's own, under the mutex. */
	struct hl_store_backend *(*keeper)(struct hl_store_backend *b);
	/* Told the handle's lease (hl_store_set_claim_lease). NULL: unused. */
	void (*set_lease)(struct hl_store_backend *b, int64_t lease_ms);
};

struct hl_store_intake_ops {
	/* owner: this handle's own claims are never requeued (PostgreSQL). */
	int (*recover)(struct hl_store_backend *b, int64_t *n, const char *owner,
	               struct hl_err *err);
	/* Stores the list (linked by next) in one transaction and sets each
	 * req's rc, err and answer; returns how many were stored as received. */
	int (*batch)(struct hl_store_backend *b, struct hl_intake_req *head);
	/* Non-NULL when the backend can commit a batch without syncing and
	 * make it durable later: batch then only writes (its pages are in the
	 * OS), and sync_log(b) — called WITHOUT the store mutex, from another
	 * thread, concurrently with later batches — makes everything committed
	 * before the call durable. Returns 0 or -HL_EIO. */
	int (*sync_log)(struct hl_store_backend *b);
	/* True when batch runs on a connection of its own (PostgreSQL): it is
	 * called WITHOUT the store mutex, so the other operations do not wait
	 * for a batch's commit. */
	bool batch_own_conn;
	/* Claims for owner under a lease until now + lease_ms. */
	int (*claim_next)(struct hl_store_backend *b, struct hl_delivery_record **out,
	                  const char *owner, int64_t lease_ms, struct hl_err *err);
	/* Optional: claims up to max at once (out[0..*n), oldest first),
	 * -HL_ENOTFOUND when none waits. */
	int (*claim_many)(struct hl_store_backend *b, struct hl_delivery_record **out, int max,
	                  int *n, const char *owner, int64_t lease_ms, struct hl_err *err);
	/* Extends the lease of the deliveries owner is processing and holds
	 * (ids[0..n); NULL: every one); on a shared backend the others of
	 * owner's whose lease ran out go back to received (a claim whose
	 * answer was lost: nobody works on it). */
	int (*renew)(struct hl_store_backend *b, const char *owner, int64_t until_ms,
	             const char *const *ids, size_t n, struct hl_err *err);
	/* Requeues the claims of dead processes (not owner's); lease_ms is
	 * the claim lease (claims renewed within it are a live process's);
	 * NULL when the backend only ever has one process. */
	int (*reap)(struct hl_store_backend *b, int64_t *n, const char *owner, int64_t lease_ms,
	            struct hl_err *err);
	int (*requeue)(struct hl_store_backend *b, int64_t *n, const char *delivery_id,
	               struct hl_err *err);
	/* Retention (hl_store_prune). */
	int (*prune)(struct hl_store_backend *b, int64_t *removed, int64_t before_ms, int max,
	             struct hl_err *err);
	/* Returns free pages to the file system (hl_store_compact); NULL when
	 * the database does that itself. */
	int (*compact)(struct hl_store_backend *b, int64_t *freed, int max_pages,
	               struct hl_err *err);
	int (*finish)(struct hl_store_backend *b, const char *delivery_id,
	              const struct hl_delivery_result *r, struct hl_err *err);
	int (*decision)(struct hl_store_backend *b, char **out, const char *delivery_id,
	                struct hl_err *err);
	int (*queue_depth)(struct hl_store_backend *b, int64_t *out, struct hl_err *err);
	int (*counts)(struct hl_store_backend *b,
	              void (*fn)(void *, const char *, const char *, const char *, int64_t),
	              void *arg, struct hl_err *err);
	int (*recent)(struct hl_store_backend *b, struct hl_delivery_summary *out, size_t max,
	              size_t *n, struct hl_err *err);
};

struct hl_store_ledger_ops {
	int (*task_claim)(struct hl_store_backend *b, bool *created, char *existing,
	                  const struct hl_task *t, struct hl_err *err);
	int (*task_find)(struct hl_store_backend *b, char *out, const char *repository,
	                 const char *branch, int64_t run_id, enum hl_task_find mode,
	                 int64_t since_ms, const char *exclude, struct hl_err *err);
	int (*task_put)(struct hl_store_backend *b, const struct hl_task *t, struct hl_err *err);
	int (*task_get)(struct hl_store_backend *b, struct hl_task_record **out,
	                const char *task_id, struct hl_err *err);
	int (*attempt_put)(struct hl_store_backend *b, const struct hl_attempt *a,
	                   struct hl_err *err);
	int (*outcome_add)(struct hl_store_backend *b, const char *task_id, const char *delivery_id,
	                   const char *outcome, const char *detail, struct hl_err *err);
	int (*task_counts)(struct hl_store_backend *b,
	                   void (*fn)(void *, const char *, const char *, int64_t), void *arg,
	                   struct hl_err *err);
	int (*attempt_prompt)(struct hl_store_backend *b, char **out, const char *task_id, int n,
	                      struct hl_err *err);
	int (*task_page)(struct hl_store_backend *b, struct hl_task_summary *out, size_t *n,
	                 char *next_cursor, const struct hl_task_filter *f, struct hl_err *err);
	int (*task_list)(struct hl_store_backend *b, struct hl_task_record ***out, size_t *n,
	                 const struct hl_task_query *q, struct hl_err *err);
	int (*task_waiting)(struct hl_store_backend *b, struct hl_task_waiting *out,
	                    const char *task_id, struct hl_err *err);
};

/* requeue's refusal of a duplicate that keeps no body of its own (body.h):
 * -HL_ECONFLICT, naming the delivery that keeps it. */
int hl_store_duplicate_refusal(struct hl_err *err, const char *delivery_id, const char *first);
/* requeue's refusal of a delivery that is being processed: -HL_ECONFLICT,
 * saying what becomes of it should its process have died. */
int hl_store_processing_refusal(struct hl_err *err, const char *delivery_id);

/* A task page's cursor is "<created_ms>.<task_id>" of the page's last
 * task. Parse: 0 when c is NULL or "", 1 with *ms and id set, or
 * -HL_EINVAL when malformed. */
int hl_store_cursor_parse(const char *c, int64_t *ms, char *id, size_t id_size, struct hl_err *err);
void hl_store_cursor_make(char out[HL_CURSOR_MAX], const struct hl_task_summary *last);

struct hl_store_loop_ops {
	int (*tasks_due)(struct hl_store_backend *b, char (*ids)[HL_TASK_ID_MAX], size_t max,
	                 size_t *n, int64_t now_ms, struct hl_err *err);
	int (*tasks_queued)(struct hl_store_backend *b, char (*ids)[HL_TASK_ID_MAX], size_t max,
	                    size_t *n, struct hl_err *err);
	int (*tasks_remember)(struct hl_store_backend *b, char (*ids)[HL_TASK_ID_MAX], size_t max,
	                      size_t *n, struct hl_err *err);
	int (*task_remembered)(struct hl_store_backend *b, const char *task_id, struct hl_err *err);
	int (*next_check)(struct hl_store_backend *b, int64_t *out, struct hl_err *err);
	int (*task_lease)(struct hl_store_backend *b, bool *got, const char *task_id,
	                  const char *owner, int64_t now_ms, int64_t until_ms, struct hl_err *err);
	int (*task_release)(struct hl_store_backend *b, const char *task_id, const char *owner,
	                    struct hl_err *err);
	int (*attempt_of_coderun)(struct hl_store_backend *b, char *task_id, int *n,
	                          const char *coderun_name, struct hl_err *err);
	int (*task_active_for)(struct hl_store_backend *b, char *out, const char *repository,
	                       const char *branch, const char *workflow, const char *job,
	                       const char *exclude, struct hl_err *err);
	int (*task_of_pr)(struct hl_store_backend *b, char *out, const char *repository,
	                  int64_t pr_number, bool active_only, struct hl_err *err);
	int (*tasks_of_pr)(struct hl_store_backend *b, char (*ids)[HL_TASK_ID_MAX], size_t max,
	                   size_t *n, size_t *total, const char *repository, int64_t pr_number,
	                   struct hl_err *err);
	int (*ci_result_add)(struct hl_store_backend *b, const struct hl_ci_result *r,
	                     struct hl_err *err);
	int (*ci_result_latest)(struct hl_store_backend *b, struct hl_ci_result_record *out,
	                        const char *task_id, int64_t since_ms, const char *branch,
	                        struct hl_err *err);
	int (*budget_usage)(struct hl_store_backend *b, int64_t *active, int64_t *repo_since,
	                    const char *repository, int64_t since_ms, struct hl_err *err);
	int (*attempt_begin)(struct hl_store_backend *b, enum hl_budget_wait *over, char *why,
	                     size_t why_size, const struct hl_attempt *a, int max_active,
	                     int max_recent, int64_t since_ms, struct hl_err *err);
	int (*task_schedule)(struct hl_store_backend *b, const char *task_id, int64_t next_check_ms,
	                     struct hl_err *err);
	int (*attempt_outcomes)(struct hl_store_backend *b,
	                        void (*fn)(void *, const char *, const char *, const char *,
	                                   int64_t),
	                        void *arg, struct hl_err *err);
	int (*time_to_fix)(struct hl_store_backend *b, const double *bounds, size_t n_bounds,
	                   int64_t *counts, double *sum, struct hl_err *err);
	int (*kv_get)(struct hl_store_backend *b, char **out, const char *key, struct hl_err *err);
	int (*kv_prune)(struct hl_store_backend *b, int64_t *removed, const char *prefix,
	                int64_t before_ms, struct hl_err *err);
	int (*kv_put)(struct hl_store_backend *b, const char *key, const char *value,
	              struct hl_err *err);
	/* in one statement: key's value becomes value (a positive number)
	 * unless the number there is at least as large */
	int (*kv_raise)(struct hl_store_backend *b, const char *key, int64_t value,
	                struct hl_err *err);
};

struct hl_store_outbox_ops {
	int (*add)(struct hl_store_backend *b, bool *created, const struct hl_notification_in *n,
	           struct hl_err *err);
	int (*due)(struct hl_store_backend *b, struct hl_notification **out, size_t max, size_t *n,
	           int64_t now_ms, struct hl_err *err);
	/* pending and due at now_ms -> next_ms until_ms, sending_by owner,
	 * attempts + 1 when count; out says what the row held before */
	int (*take)(struct hl_store_backend *b, struct hl_outbox_claim *out, int64_t id,
	            int64_t now_ms, int64_t until_ms, const char *owner, bool count,
	            struct hl_err *err);
	/* notification id while owner sends it and its lease has not ended
	 * at now_ms -> next_ms until_ms (the lease keeper) */
	int (*renew)(struct hl_store_backend *b, const char *owner, int64_t id, int64_t now_ms,
	             int64_t until_ms, struct hl_err *err);
	/* payload NULL: unchanged */
	int (*update)(struct hl_store_backend *b, int64_t id, enum hl_notification_state state,
	              int attempts, int64_t next_ms, const char *last_error, const char *payload,
	              struct hl_err *err);
	int (*counts)(struct hl_store_backend *b,
	              void (*fn)(void *, const char *, const char *, int64_t), void *arg,
	              struct hl_err *err);
};

/* store/redeliver.h */
struct hl_store_redeliver_ops {
	int (*known)(struct hl_store_backend *b, bool *known, const char *delivery_id,
	             struct hl_err *err);
	int (*claim)(struct hl_store_backend *b, bool *claimed, struct hl_redelivery_history *hist,
	             const struct hl_redelivery *r, struct hl_err *err);
	/* a row pending under owner -> outcome */
	int (*finish)(struct hl_store_backend *b, const char *guid, const char *owner,
	              const char *outcome, const char *detail, struct hl_err *err);
	/* a row pending under owner -> "retry" (not_taken: counted as one
	 * GitHub did not take) */
	int (*release)(struct hl_store_backend *b, const char *guid, const char *owner,
	               bool not_taken, const char *detail, struct hl_err *err);
};

#define HL_MEMORY_WORDS_MAX 16
#define HL_MEMORY_WORD_MAX  48

/* Cuts text into words: runs of letters, digits and '_' of at least three
 * characters, lower-cased, not all digits, each once, at most max; returns
 * how many (store_memory.c). */
size_t hl_store_memory_words(char (*out)[HL_MEMORY_WORD_MAX], size_t max, const char *text);

struct hl_store_memory_ops {
	int (*put)(struct hl_store_backend *b, bool *created, const struct hl_memory_in *m,
	           struct hl_err *err);
	/* words: the query's words (letters, digits and '_' only, lower case),
	 * any of which may match; none: the type's memories */
	int (*similar)(struct hl_store_backend *b, struct hl_memory_hit **out, size_t *n,
	               const struct hl_memory_query *q, char (*words)[HL_MEMORY_WORD_MAX],
	               size_t n_words, struct hl_err *err);
	int (*reinforce)(struct hl_store_backend *b, int64_t id, double boost, struct hl_err *err);
	int (*count)(struct hl_store_backend *b, int64_t *out, struct hl_err *err);
	int (*agent_records)(struct hl_store_backend *b, struct hl_agent_record *out, size_t max,
	                     size_t *n, const char *repository, const char *failure_type,
	                     struct hl_err *err);
	int (*insight_rows)(struct hl_store_backend *b, const struct hl_insight_filter *f,
	                    void (*fn)(void *, const struct hl_insight_row *), void *arg,
	                    struct hl_err *err);
	int (*insight_dedup)(struct hl_store_backend *b, struct hl_insight_dedup *out,
	                     const struct hl_insight_filter *f, struct hl_err *err);
};

struct hl_store_ops {
	struct hl_store_conn_ops conn;
	struct hl_store_intake_ops intake;
	struct hl_store_ledger_ops ledger;
	struct hl_store_loop_ops loop;
	struct hl_store_outbox_ops outbox;
	struct hl_store_redeliver_ops redeliver;
	struct hl_store_memory_ops memory;
};

/* The embedded migrations of each backend (scripts/embed.py), in order;
 * both have the same versions, meaning the same schema. */
extern const struct hl_embed hl_store_sqlite_migrations[];
extern const size_t hl_store_sqlite_migrations_count;
extern const struct hl_embed hl_store_postgres_migrations[];
extern const size_t hl_store_postgres_migrations_count;

/* Opens the SQLite backend on path (flags: enum hl_store_open_flags). */
int hl_store_sqlite_open(struct hl_store_backend **out, const struct hl_store_ops **ops,
                         const char *path, unsigned flags, const struct hl_store_sink *sink,
                         struct hl_err *err);
/* Opens the PostgreSQL backend on conninfo (a libpq URL or key/value
 * settings); owner is the handle's claimer id (its liveness lock). */
int hl_store_pg_open(struct hl_store_backend **out, const struct hl_store_ops **ops,
                     const char *conninfo, unsigned flags, const char *owner,
                     const struct hl_store_sink *sink, struct hl_err *err);
/* Whether libpq reads conninfo as written (no connection): the errors of
 * hl_store_pg_open before it connects, without the credentials. */
int hl_store_pg_check(const char *conninfo, struct hl_err *err);

/* Shared by backends: the version number of a migration file name
 * ("0006_lifecycle.sql" -> 6), or -1. */
int hl_store_migration_version(const char *path);

#endif
