/*
 * store_loop.c - the front end of the loop's state and of the outbox
 * (store/loop.h, store/outbox.h): argument checks, the store mutex, names.
 */
#include "base/clock.h"
#include "store_front.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
hl_store_tasks_due(struct hl_store *s, char (*ids)[HL_TASK_ID_MAX], size_t max, size_t *n,
                   int64_t now_ms, struct hl_err *err)
{
	STORE_CALL(s, s->ops->loop.tasks_due(s->b, ids, max, n, now_ms, err));
}

int
hl_store_tasks_queued(struct hl_store *s, char (*ids)[HL_TASK_ID_MAX], size_t max, size_t *n,
                      struct hl_err *err)
{
	STORE_CALL(s, s->ops->loop.tasks_queued(s->b, ids, max, n, err));
}

int
hl_store_tasks_remember(struct hl_store *s, char (*ids)[HL_TASK_ID_MAX], size_t max, size_t *n,
                        struct hl_err *err)
{
	STORE_CALL(s, s->ops->loop.tasks_remember(s->b, ids, max, n, err));
}

int
hl_store_task_remembered(struct hl_store *s, const char *task_id, struct hl_err *err)
{
	STORE_CALL(s, s->ops->loop.task_remembered(s->b, task_id, err));
}

int
hl_store_next_check(struct hl_store *s, int64_t *out, struct hl_err *err)
{
	STORE_CALL(s, s->ops->loop.next_check(s->b, out, err));
}

int
hl_store_task_lease(struct hl_store *s, bool *got, const char *task_id, const char *owner,
                    int64_t now_ms, int64_t until_ms, struct hl_err *err)
{
	int rc;

	if (!task_id || !owner || !*owner)
		return hl_err_set(err, HL_EINVAL, "a lease needs a task and an owner");
	pthread_mutex_lock(&s->db_lock);
	rc = s->ops->loop.task_lease(s->b, got, task_id, owner, now_ms, until_ms, err);
	pthread_mutex_unlock(&s->db_lock);
	/* held until released: the keeper renews it, so a step that takes
	 * longer than the lease (a slow upstream while an attempt is
	 * prepared) keeps it, and a process that dies loses it within it */
	if (rc == 0 && *got && s->keeper_started && until_ms > hl_time_wall_ms())
		hl_store_hold_task(s, task_id, owner, until_ms - now_ms);
	return rc;
}

int
hl_store_task_release(struct hl_store *s, const char *task_id, const char *owner,
                      struct hl_err *err)
{
	if (task_id && owner)
		hl_store_unhold_task(s, task_id, owner);
	STORE_CALL(s, s->ops->loop.task_release(s->b, task_id, owner, err));
}

int
hl_store_attempt_of_coderun(struct hl_store *s, char *task_id, int *n, const char *coderun_name,
                            struct hl_err *err)
{
	if (!coderun_name || !*coderun_name)
		return hl_err_set(err, HL_EINVAL, "no CodeRun name");
	STORE_CALL(s, s->ops->loop.attempt_of_coderun(s->b, task_id, n, coderun_name, err));
}

int
hl_store_task_active_for(struct hl_store *s, char *out, const char *repository, const char *branch,
                         const char *workflow, const char *job, const char *exclude,
                         struct hl_err *err)
{
	/* a whole run's task is found by its workflow */
	if (!repository || !branch || (!job && !workflow))
		return hl_err_set(err, HL_ENOTFOUND, "no job to match");
	STORE_CALL(s, s->ops->loop.task_active_for(s->b, out, repository, branch, workflow, job,
	                                           exclude, err));
}

int
hl_store_task_of_pr(struct hl_store *s, char *out, const char *repository, int64_t pr_number,
                    bool active_only, struct hl_err *err)
{
	if (!repository || pr_number <= 0)
		return hl_err_set(err, HL_ENOTFOUND, "no pull request");
	STORE_CALL(s, s->ops->loop.task_of_pr(s->b, out, repository, pr_number, active_only, err));
}

int
hl_store_tasks_of_pr(struct hl_store *s, char (*ids)[HL_TASK_ID_MAX], size_t max, size_t *n,
                     size_t *total, const char *repository, int64_t pr_number, struct hl_err *err)
{
	*n = *total = 0;
	if (!repository || pr_number <= 0 || max == 0)
		return 0;
	STORE_CALL(s,
	           s->ops->loop.tasks_of_pr(s->b, ids, max, n, total, repository, pr_number, err));
}

int
hl_store_ci_result_add(struct hl_store *s, const struct hl_ci_result *r, struct hl_err *err)
{
	if (!r->task_id || !r->conclusion)
		return hl_err_set(err, HL_EINVAL, "a CI result needs a task and a conclusion");
	STORE_CALL(s, s->ops->loop.ci_result_add(s->b, r, err));
}

int
hl_store_ci_result_latest(struct hl_store *s, struct hl_ci_result_record *out, const char *task_id,
                          int64_t since_ms, const char *branch, struct hl_err *err)
{
	STORE_CALL(s, s->ops->loop.ci_result_latest(s->b, out, task_id, since_ms, branch, err));
}

int
hl_store_budget_usage(struct hl_store *s, int64_t *active_coderuns, int64_t *repo_attempts_since,
                      const char *repository, int64_t since_ms, struct hl_err *err)
{
	STORE_CALL(s, s->ops->loop.budget_usage(s->b, active_coderuns, repo_attempts_since,
	                                        repository, since_ms, err));
}

int
hl_store_attempt_begin(struct hl_store *s, enum hl_budget_wait *over, char *why, size_t why_size,
                       const struct hl_attempt *a, int max_active, int max_recent, int64_t since_ms,
                       struct hl_err *err)
{
	if (!a->task_id || a->n < 1)
		return hl_err_set(err, HL_EINVAL, "an attempt needs a task_id and n >= 1");
	STORE_CALL(s, s->ops->loop.attempt_begin(s->b, over, why, why_size, a, max_active,
	                                         max_recent, since_ms, err));
}

int
hl_store_task_schedule(struct hl_store *s, const char *task_id, int64_t next_check_ms,
                       struct hl_err *err)
{
	STORE_CALL(s, s->ops->loop.task_schedule(s->b, task_id, next_check_ms, err));
}

int
hl_store_attempt_outcomes(struct hl_store *s,
                          void (*fn)(void *arg, const char *agent, const char *failure_type,
                                     const char *outcome, int64_t n),
                          void *arg, struct hl_err *err)
{
	STORE_CALL(s, s->ops->loop.attempt_outcomes(s->b, fn, arg, err));
}

int
hl_store_time_to_fix(struct hl_store *s, const double *bounds, size_t n_bounds, int64_t *counts,
                     double *sum, struct hl_err *err)
{
	STORE_CALL(s, s->ops->loop.time_to_fix(s->b, bounds, n_bounds, counts, sum, err));
}

int
hl_store_kv_get(struct hl_store *s, char **out, const char *key, struct hl_err *err)
{
	STORE_CALL(s, s->ops->loop.kv_get(s->b, out, key, err));
}

int
hl_store_kv_put(struct hl_store *s, const char *key, const char *value, struct hl_err *err)
{
	if (!key || !value)
		return hl_err_set(err, HL_EINVAL, "a key and a value are needed");
	STORE_CALL(s, s->ops->loop.kv_put(s->b, key, value, err));
}

int
hl_store_hold_get(struct hl_store *s, int64_t *until_ms, const char *key, struct hl_err *err)
{
	char *value = NULL, *end = NULL;
	long long until;
	int rc;

	*until_ms = 0;
	rc = hl_store_kv_get(s, &value, key, err);
	if (rc == -HL_ENOTFOUND) {
		if (err)
			*err = (struct hl_err)HL_ERR_INIT;
		return 0;
	}
	if (rc < 0)
		return rc;
	until = strtoll(value, &end, 10);
	if (end != value && *end == '\0' && until > 0)
		*until_ms = until;
	free(value);
	return 0;
}

int
hl_store_hold_put(struct hl_store *s, const char *key, int64_t until_ms, struct hl_err *err)
{
	if (!key)
		return hl_err_set(err, HL_EINVAL, "a hold needs a key");
	if (until_ms <= 0)
		return 0;
	/* one statement: two replicas' puts keep the later end */
	STORE_CALL(s, s->ops->loop.kv_raise(s->b, key, until_ms, err));
}

/* Aliases are key/value pairs under this prefix. */
#define STORE_ALIAS_PREFIX "task:alias:"

int
hl_store_task_alias_put(struct hl_store *s, const char *alias, const char *task_id,
                        struct hl_err *err)
{
	char key[sizeof(STORE_ALIAS_PREFIX) + HL_TASK_ID_MAX];

	if (!alias || !*alias || !task_id || strlen(alias) >= HL_TASK_ID_MAX)
		return hl_err_set(err, HL_EINVAL, "an alias and its task are needed");
	snprintf(key, sizeof(key), STORE_ALIAS_PREFIX "%s", alias);
	return hl_store_kv_put(s, key, task_id, err);
}

int
hl_store_task_alias_get(struct hl_store *s, char **task_id, const char *alias, struct hl_err *err)
{
	char key[sizeof(STORE_ALIAS_PREFIX) + HL_TASK_ID_MAX];

	*task_id = NULL;
	if (!alias || !*alias || strlen(alias) >= HL_TASK_ID_MAX)
		return hl_err_set(err, HL_ENOTFOUND, "no alias '%.100s'", alias ? alias : "");
	snprintf(key, sizeof(key), STORE_ALIAS_PREFIX "%s", alias);
	return hl_store_kv_get(s, task_id, key, err);
}

int
hl_store_kv_prune(struct hl_store *s, int64_t *removed, const char *prefix, int64_t before_ms,
                  struct hl_err *err)
{
	int64_t n = 0;

	if (removed)
		*removed = 0;
	if (!prefix || !*prefix)
		return hl_err_set(err, HL_EINVAL, "pruning needs a key prefix");
	STORE_CALL(s, s->ops->loop.kv_prune(s->b, removed ? removed : &n, prefix, before_ms, err));
}

int
hl_store_outbox_add(struct hl_store *s, bool *created, const struct hl_notification_in *n,
                    struct hl_err *err)
{
	if (!n->task_id || !n->channel || !n->kind || !n->payload)
		return hl_err_set(err, HL_EINVAL,
		                  "a notification needs a task, a channel, a kind and a payload");
	STORE_CALL(s, s->ops->outbox.add(s->b, created, n, err));
}

int
hl_store_outbox_due(struct hl_store *s, struct hl_notification **out, size_t max, size_t *n,
                    int64_t now_ms, struct hl_err *err)
{
	STORE_CALL(s, s->ops->outbox.due(s->b, out, max, n, now_ms, err));
}

int
hl_store_outbox_claim(struct hl_store *s, struct hl_outbox_claim *out, int64_t id, int64_t now_ms,
                      bool count, struct hl_err *err)
{
	int64_t until = now_ms + atomic_load(&s->claim_lease_ms);

	int rc;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&s->db_lock);
	rc = s->ops->outbox.take(s->b, out, id, now_ms, until, s->owner, count, err);
	pthread_mutex_unlock(&s->db_lock);
	if (rc == 0 && out->taken)
		atomic_store(&s->o_sending, id);
	return rc;
}

int
hl_store_outbox_take(struct hl_store *s, bool *taken, int64_t id, int64_t now_ms,
                     struct hl_err *err)
{
	struct hl_outbox_claim c;
	int rc = hl_store_outbox_claim(s, &c, id, now_ms, true, err);

	*taken = c.taken;
	return rc;
}

int
hl_store_outbox_update(struct hl_store *s, int64_t id, enum hl_notification_state state,
                       int attempts, int64_t next_ms, const char *last_error, struct hl_err *err)
{
	return hl_store_outbox_update_payload(s, id, state, attempts, next_ms, last_error, NULL,
	                                      err);
}

int
hl_store_outbox_update_payload(struct hl_store *s, int64_t id, enum hl_notification_state state,
                               int attempts, int64_t next_ms, const char *last_error,
                               const char *payload, struct hl_err *err)
{
	int64_t sending = id;
	int rc;

	if (state < 0 || state >= HL_OUTBOX_STATE_MAX)
		return hl_err_set(err, HL_EINVAL, "no notification state %d", (int)state);
	pthread_mutex_lock(&s->db_lock);
	rc = s->ops->outbox.update(s->b, id, state, attempts, next_ms, last_error, payload, err);
	pthread_mutex_unlock(&s->db_lock);
	/* the send is over once its result is written (or another outbox
	 * wrote one): until then its lease is renewed, so no other replica
	 * takes the row and sends it again while the result waits */
	if (rc == 0 || err->code == HL_ECONFLICT)
		atomic_compare_exchange_strong(&s->o_sending, &sending, 0);
	return rc;
}

int
hl_store_outbox_counts(struct hl_store *s,
                       void (*fn)(void *arg, const char *channel, const char *state, int64_t n),
                       void *arg, struct hl_err *err)
{
	STORE_CALL(s, s->ops->outbox.counts(s->b, fn, arg, err));
}

void
hl_notification_release(struct hl_notification *n)
{
	if (!n)
		return;
	free(n->task_id);
	free(n->channel);
	free(n->kind);
	free(n->ref);
	free(n->payload);
	memset(n, 0, sizeof(*n));
}

static const char *const notification_state_names[HL_OUTBOX_STATE_MAX] = {
	[HL_OUTBOX_PENDING] = "pending",
	[HL_OUTBOX_DELIVERED] = "delivered",
	[HL_OUTBOX_FAILED] = "failed",
};

const char *
hl_notification_state_name(enum hl_notification_state st)
{
	return st >= 0 && st < HL_OUTBOX_STATE_MAX ? notification_state_names[st] : "invalid";
}

enum hl_notification_state
hl_notification_state_from_name(const char *name)
{
	int i;

	for (i = 0; name && i < HL_OUTBOX_STATE_MAX; i++)
		if (strcmp(notification_state_names[i], name) == 0)
			return (enum hl_notification_state)i;
	return HL_OUTBOX_STATE_INVALID;
}
