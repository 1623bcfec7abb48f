/*
 * store_impl.h - the backend vtable behind store.h (private to src/store).
 *
 * A backend owns its connection(s) and is NOT thread-safe: the front end
 * (store.c) holds the store mutex around every call. Every operation is one
 * transaction; intake_batch writes a whole batch in one transaction.
 */
#ifndef HL_STORE_STORE_IMPL_H
#define HL_STORE_STORE_IMPL_H

#include "store.h"

struct hl_store_backend;

struct hl_store_ops {
	const char *name;
	void (*close)(struct hl_store_backend *b);
	int (*migrate)(struct hl_store_backend *b, int *applied, struct hl_err *err);
	int (*schema_version)(struct hl_store_backend *b, int *out, struct hl_err *err);
	int (*recover)(struct hl_store_backend *b, int64_t *n, struct hl_err *err);
	/* Stores the list (linked by next) in one transaction and sets each
	 * req's rc, err and answer; returns how many were stored as received. */
	int (*intake_batch)(struct hl_store_backend *b, struct hl_intake_req *head);
	/* Non-NULL when the backend can commit a batch without syncing and
	 * make it durable later: intake_batch then only writes (its pages are
	 * in the OS), and sync_log(b) — called WITHOUT the store mutex, from
	 * another thread, concurrently with later batches — makes everything
	 * committed before the call durable. Returns 0 or -HL_EIO. */
	int (*sync_log)(struct hl_store_backend *b);
	int (*claim_next)(struct hl_store_backend *b, struct hl_delivery_record **out,
	                  struct hl_err *err);
	int (*finish)(struct hl_store_backend *b, const char *delivery_id,
	              enum hl_delivery_state state, const char *reason, const char *event_json,
	              struct hl_err *err);
	int (*ping)(struct hl_store_backend *b, struct hl_err *err);
	int (*queue_depth)(struct hl_store_backend *b, int64_t *out, struct hl_err *err);
	int (*counts)(struct hl_store_backend *b,
	              void (*fn)(void *, const char *, const char *, const char *, int64_t),
	              void *arg, struct hl_err *err);
	int (*recent)(struct hl_store_backend *b, json_t *arr, int limit, struct hl_err *err);
	int (*task_put)(struct hl_store_backend *b, const struct hl_task *t, struct hl_err *err);
	int (*task_claim)(struct hl_store_backend *b, bool *created, char *existing,
	                  const struct hl_task *t, struct hl_err *err);
	int (*task_find)(struct hl_store_backend *b, char *out, const char *repository,
	                 const char *branch, int64_t run_id, enum hl_task_find mode,
	                 int64_t since_ms, const char *exclude, struct hl_err *err);
	int (*attempt_put)(struct hl_store_backend *b, const struct hl_attempt *a,
	                   struct hl_err *err);
	int (*outcome_add)(struct hl_store_backend *b, const char *task_id, const char *delivery_id,
	                   const char *outcome, const char *detail, struct hl_err *err);
	int (*task_counts)(struct hl_store_backend *b,
	                   void (*fn)(void *, const char *, const char *, int64_t), void *arg,
	                   struct hl_err *err);
	int (*task_json)(struct hl_store_backend *b, json_t **out, const char *task_id,
	                 struct hl_err *err);
};

/* Opens the SQLite backend on path. */
int hl_store_sqlite_open(struct hl_store_backend **out, const struct hl_store_ops **ops,
                         const char *path, struct hl_err *err);

#endif
