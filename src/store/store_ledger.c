/*
 * store_ledger.c - the ledger's front end (store/ledger.h): argument checks,
 * the store mutex around each backend call, and record ownership.
 */
#include "base/str.h"
#include "store_front.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool
ledger_state_ok(enum hl_task_state st)
{
	return st >= 0 && st < HL_TASK_STATE_MAX;
}

int
hl_store_task_put(struct hl_store *s, const struct hl_task *t, struct hl_err *err)
{
	if (!t->task_id || !*t->task_id || strlen(t->task_id) >= HL_TASK_ID_MAX ||
	    !ledger_state_ok(t->state))
		return hl_err_set(err, HL_EINVAL, "a task needs a task_id and a state");
	STORE_CALL(s, s->ops->ledger.task_put(s->b, t, err));
}

int
hl_store_task_claim(struct hl_store *s, bool *created, char *existing, const struct hl_task *t,
                    struct hl_err *err)
{
	if (!t->task_id || !*t->task_id || strlen(t->task_id) >= HL_TASK_ID_MAX ||
	    !ledger_state_ok(t->state))
		return hl_err_set(err, HL_EINVAL, "a task needs a task_id and a state");
	STORE_CALL(s, s->ops->ledger.task_claim(s->b, created, existing, t, err));
}

int
hl_store_task_find(struct hl_store *s, char *out, const char *repository, const char *branch,
                   int64_t run_id, enum hl_task_find mode, int64_t since_ms,
                   const char *exclude_task_id, struct hl_err *err)
{
	if (!repository || (mode == HL_TASK_FIND_OTHER_RUN && !branch))
		return hl_err_set(err, HL_EINVAL, "task search needs a repository (and a branch)");
	STORE_CALL(s, s->ops->ledger.task_find(s->b, out, repository, branch, run_id, mode,
	                                       since_ms, exclude_task_id, err));
}

int
hl_store_task_get(struct hl_store *s, struct hl_task_record **out, const char *task_id,
                  struct hl_err *err)
{
	if (!task_id || !*task_id)
		return hl_err_set(err, HL_EINVAL, "no task id");
	STORE_CALL(s, s->ops->ledger.task_get(s->b, out, task_id, err));
}

int
hl_store_attempt_put(struct hl_store *s, const struct hl_attempt *a, struct hl_err *err)
{
	if (!a->task_id || !*a->task_id || a->n < 1 || a->kind < 0 ||
	    a->kind >= HL_ATTEMPT_KIND_MAX || a->phase < 0 || a->phase >= HL_PHASE_MAX ||
	    a->outcome >= HL_OUTCOME_MAX || a->outcome < HL_OUTCOME_INVALID)
		return hl_err_set(err, HL_EINVAL,
		                  "an attempt needs a task_id, n >= 1, a kind and a phase");
	STORE_CALL(s, s->ops->ledger.attempt_put(s->b, a, err));
}

int
hl_store_outcome_add(struct hl_store *s, const char *task_id, const char *delivery_id,
                     const char *outcome, const char *detail, struct hl_err *err)
{
	if (!outcome || !*outcome)
		return hl_err_set(err, HL_EINVAL, "an outcome needs a name");
	STORE_CALL(s, s->ops->ledger.outcome_add(s->b, task_id, delivery_id, outcome, detail, err));
}

int
hl_store_task_counts(struct hl_store *s,
                     void (*fn)(void *arg, const char *kind, const char *name, int64_t n),
                     void *arg, struct hl_err *err)
{
	STORE_CALL(s, s->ops->ledger.task_counts(s->b, fn, arg, err));
}

int
hl_store_cursor_parse(const char *c, int64_t *ms, char *id, size_t id_size, struct hl_err *err)
{
	char *end;
	long long v;

	if (!c || !*c)
		return 0;
	errno = 0;
	/* as hl_store_cursor_make writes it: digits first (strtoll would also
	 * take " 1.x" and "+1.x") */
	v = *c >= '0' && *c <= '9' ? strtoll(c, &end, 10) : -1;
	if (v < 0 || errno || *end != '.' || !end[1] || strlen(end + 1) >= id_size)
		return hl_err_set(err, HL_EINVAL, "malformed cursor");
	*ms = v;
	hl_strlcpy(id, end + 1, id_size);
	return 1;
}

void
hl_store_cursor_make(char out[HL_CURSOR_MAX], const struct hl_task_summary *last)
{
	snprintf(out, HL_CURSOR_MAX, "%lld.%s", (long long)last->created_ms, last->task_id);
}

int
hl_store_task_page(struct hl_store *s, struct hl_task_summary *out, size_t *n, char *next_cursor,
                   const struct hl_task_filter *f, struct hl_err *err)
{
	if (f->by_finished && f->cursor && *f->cursor)
		return hl_err_set(err, HL_EINVAL, "a task list by finish time has no pages");
	STORE_CALL(s, s->ops->ledger.task_page(s->b, out, n, next_cursor, f, err));
}

void
hl_task_summaries_release(struct hl_task_summary *list, size_t n)
{
	for (size_t i = 0; list && i < n; i++) {
		free(list[i].repository);
		free(list[i].branch);
		free(list[i].workflow);
		free(list[i].job);
		free(list[i].reason);
		list[i].repository = list[i].branch = list[i].workflow = list[i].job =
		        list[i].reason = NULL;
	}
}

int
hl_store_task_waiting(struct hl_store *s, struct hl_task_waiting *out, const char *task_id,
                      struct hl_err *err)
{
	if (!task_id || !*task_id)
		return hl_err_set(err, HL_ENOTFOUND, "no task id");
	STORE_CALL(s, s->ops->ledger.task_waiting(s->b, out, task_id, err));
}

int
hl_store_attempt_prompt(struct hl_store *s, char **out, const char *task_id, int n,
                        struct hl_err *err)
{
	STORE_CALL(s, s->ops->ledger.attempt_prompt(s->b, out, task_id, n, err));
}

int
hl_store_task_list(struct hl_store *s, struct hl_task_record ***out, size_t *n,
                   const struct hl_task_query *q, struct hl_err *err)
{
	struct hl_task_query qq = q ? *q : (struct hl_task_query){ 0 };

	if (qq.limit == 0)
		qq.limit = 20;
	if (qq.limit > 1000)
		return hl_err_set(err, HL_EINVAL, "a task list holds at most 1000 tasks");
	if (qq.state && hl_task_state_from_name(qq.state) == HL_TASK_STATE_INVALID)
		return hl_err_set(err, HL_EINVAL, "no task state '%s'", qq.state);
	STORE_CALL(s, s->ops->ledger.task_list(s->b, out, n, &qq, err));
}

int
hl_store_task_each(struct hl_store *s, const struct hl_task_query *q, hl_task_each_fn fn, void *arg,
                   struct hl_err *err)
{
	struct hl_task_query page = q ? *q : (struct hl_task_query){ 0 };
	struct hl_task_record **list = NULL;
	char after[HL_TASK_ID_MAX];
	size_t n = 0, i;
	int rc;

	if (page.limit == 0)
		page.limit = 20;
	for (;;) {
		if ((rc = hl_store_task_list(s, &list, &n, &page, err)) < 0)
			return rc;
		for (i = 0; rc == 0 && i < n; i++)
			rc = fn(arg, list[i], err);
		if (rc != 0 || n < page.limit)
			break;
		page.before_created_ms = list[n - 1]->created_ms;
		hl_strlcpy(after, list[n - 1]->task_id, sizeof(after));
		page.before_task_id = after;
		hl_task_list_free(list, n);
		list = NULL;
		n = 0;
	}
	hl_task_list_free(list, n);
	return rc;
}

void
hl_task_list_free(struct hl_task_record **list, size_t n)
{
	size_t i;

	if (!list)
		return;
	for (i = 0; i < n; i++)
		hl_task_record_free(list[i]);
	free(list);
}

void
hl_task_record_free(struct hl_task_record *t)
{
	size_t i;

	if (!t)
		return;
	for (i = 0; i < t->n_attempts; i++) {
		struct hl_attempt_record *a = &t->attempt[i];
		free(a->agent);
		free(a->coderun_name);
		free(a->reason);
		free(a->status_message);
		free(a->pr_url);
		free(a->coderun_phase);
		free(a->job_name);
		free(a->pod_name);
	}
	free(t->attempt);
	for (i = 0; i < t->n_notifications; i++) {
		struct hl_notification_record *n = &t->notification[i];
		free(n->channel);
		free(n->kind);
		free(n->ref);
		free(n->state);
		free(n->last_error);
	}
	free(t->notification);
	free(t->kind);
	free(t->workflow);
	free(t->head_sha);
	free(t->target_branch);
	free(t->event_json);
	free(t->task_id);
	free(t->dedup_key);
	free(t->repository);
	free(t->job);
	free(t->branch);
	free(t->agent);
	free(t->failure_type);
	free(t->reason);
	free(t->coderun_name);
	free(t->decision_json);
	free(t);
}
