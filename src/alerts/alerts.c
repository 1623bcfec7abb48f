/*
 * alerts.c - the alert processor (see alerts.h): its clients, what a stored
 * alert delivery leads to, the remediator's kind handlers, and the helpers
 * the heal (heal.c) and ArgoCD (argocd.c) flows share.
 */
#include "alerts_impl.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/str.h"
#include "store/loop.h"

#include "json/json.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int
hl_alerts_new(struct hl_alerts **out, const struct hl_config *cfg, struct hl_store *store,
              struct hl_remediator *rem, struct hl_err *err)
{
	struct hl_alerts *a = calloc(1, sizeof(*a));
	struct hl_err kerr = HL_ERR_INIT;
	int rc;

	if (!a)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	a->cfg = cfg;
	a->store = store;
	a->rem = rem;
	pthread_mutex_init(&a->busy_mu, NULL);
	pthread_cond_init(&a->busy_cv, NULL);
	if ((rc = hl_classifier_new(&a->classifier, cfg->rules_file, err)) < 0)
		goto fail;
	hl_classifier_warm(a->classifier); /* the server's: memory taken at start */
	if ((rc = hl_prompt_builder_new(&a->prompts, cfg->prompts_dir, err)) < 0)
		goto fail;
	if ((rc = hl_dispatch_open(&a->dispatch, cfg, err)) < 0)
		goto fail;
	/* the pods' diagnostics need the cluster whatever the dispatch mode;
	 * without one a pod alert is recorded and skipped */
	if (hl_kube_load(&a->kube, cfg->kubeconfig, &kerr) < 0)
		a->kube = NULL;
	*out = a;
	return 0;
fail:
	hl_alerts_free(a);
	return rc;
}

void
hl_alerts_free(struct hl_alerts *a)
{
	if (!a)
		return;
	hl_classifier_free(a->classifier);
	hl_prompt_builder_free(a->prompts);
	hl_dispatch_close(a->dispatch);
	hl_kube_free(a->kube);
	pthread_cond_destroy(&a->busy_cv);
	pthread_mutex_destroy(&a->busy_mu);
	free(a);
}

int
hl_alerts_register(struct hl_alerts *a, struct hl_err *err)
{
	int rc = hl_remediator_set_kind_handler(a->rem, "alert", alerts_heal_kind, a, err);

	if (rc == 0)
		rc = hl_remediator_set_kind_handler(a->rem, "argocd", alerts_argocd_kind, a, err);
	return rc;
}

void
alerts_set(char *dst, size_t size, const char *s)
{
	hl_strlcpy(dst, s ? s : "", size);
}

/* The slot holding key, or a free one when key is "", or -1. */
static int
alerts_busy_slot(const struct hl_alerts *a, const char *key)
{
	int i;

	for (i = 0; i < ALERTS_BUSY_SLOTS; i++)
		if (strcmp(a->busy[i], key) == 0)
			return i;
	return -1;
}

/* The in-process half: waits until no other worker of this process holds
 * key (a holder of this process always finishes its bounded work). */
static void
alerts_lock_local(struct hl_alerts *a, const char *key)
{
	int i;

	pthread_mutex_lock(&a->busy_mu);
	while (alerts_busy_slot(a, key) >= 0 || (i = alerts_busy_slot(a, "")) < 0)
		pthread_cond_wait(&a->busy_cv, &a->busy_mu);
	hl_strlcpy(a->busy[i], key, sizeof(a->busy[i]));
	pthread_mutex_unlock(&a->busy_mu);
}

static void
alerts_unlock_local(struct hl_alerts *a, const char *key)
{
	int i;

	pthread_mutex_lock(&a->busy_mu);
	if ((i = alerts_busy_slot(a, key)) >= 0)
		a->busy[i][0] = '\0';
	pthread_cond_broadcast(&a->busy_cv);
	pthread_mutex_unlock(&a->busy_mu);
}

static void
alerts_lock_key(char *key, size_t size, const char *kind, const char *ns, const char *name)
{
	snprintf(key, size, "alerts:%s:%s/%s", kind, ns, name);
}

int
alerts_lock(struct hl_alerts *a, const char *kind, const char *ns, const char *name,
            struct hl_err *err)
{
	char key[sizeof(a->busy[0])];
	struct hl_err lerr = HL_ERR_INIT;
	bool got = false;
	int rc;

	alerts_lock_key(key, sizeof(key), kind, ns, name);
	alerts_lock_local(a, key);
	/* then across the replicas sharing the store, waiting a bounded time:
	 * a worker never blocks on another replica's slow flow */
	rc = hl_store_lock_take(a->store, &got, key, ALERTS_LOCK_WAIT_MS, &lerr);
	if (rc == 0 && got)
		return 0;
	alerts_unlock_local(a, key);
	if (rc < 0)
		return hl_err_set(err, lerr.code == HL_EINVAL ? HL_EINVAL : HL_EDB,
		                  "locking %s %s/%s: %s", kind, ns, name, lerr.msg);
	return hl_err_set(
	        err, HL_EUPSTREAM, "%s %s/%s is being worked on by another replica (waited %d ms)",
	        strcmp(kind, "pod") == 0 ? "pod" : "application", ns, name, ALERTS_LOCK_WAIT_MS);
}

bool
alerts_lock_held(struct hl_alerts *a, const char *kind, const char *ns, const char *name)
{
	char key[sizeof(a->busy[0])];

	alerts_lock_key(key, sizeof(key), kind, ns, name);
	return hl_store_lock_held(a->store, key);
}

int
alerts_withdraw_doubled(struct hl_alerts *a, const char *kind, const char *ns, const char *name,
                        const char *other, const char *coderun, const char *task_id,
                        struct hl_err *err)
{
	const char *what = strcmp(kind, "pod") == 0 ? "pod" : "application";
	struct hl_err derr = HL_ERR_INIT;

	if (hl_dispatch_delete(a->dispatch, coderun, &derr) < 0)
		return hl_err_set(err, HL_EUPSTREAM,
		                  "CodeRun %s of another task of %s %s/%s appeared while %s was "
		                  "created (the lock was lost), and deleting %s failed: %s",
		                  other, what, ns, name, coderun, coderun, derr.msg);
	hl_log_kv(HL_LOG_WARN,
	          "the lock was lost while a CodeRun was created and another replica created "
	          "one too: this one is deleted, the delivery retried",
	          "kind", what, "namespace", ns, "name", name, "coderun", coderun, "other", other,
	          "task_id", task_id, NULL);
	return hl_err_set(err, HL_EUPSTREAM,
	                  "CodeRun %s of another task of %s %s/%s appeared while %s was created "
	                  "(the lock was lost); %s is deleted, retried later",
	                  other, what, ns, name, coderun, coderun);
}

void
alerts_unlock(struct hl_alerts *a, const char *kind, const char *ns, const char *name)
{
	char key[sizeof(a->busy[0])];

	alerts_lock_key(key, sizeof(key), kind, ns, name);
	hl_store_lock_release(a->store, key);
	alerts_unlock_local(a, key);
}

void
alerts_to_remediation(struct hl_remediation *res, const struct hl_alerts_outcome *o)
{
	memset(res, 0, sizeof(*res));
	alerts_set(res->task_id, sizeof(res->task_id), o->task_id);
	alerts_set(res->agent, sizeof(res->agent), o->agent);
	alerts_set(res->failure_type, sizeof(res->failure_type), o->failure_type);
	alerts_set(res->coderun_name, sizeof(res->coderun_name), o->coderun_name);
	alerts_set(res->dedup_status, sizeof(res->dedup_status),
	           o->dedup_status[0] ? o->dedup_status : "new");
	alerts_set(res->reason, sizeof(res->reason), o->reason);
	alerts_set(res->outcome, sizeof(res->outcome), o->outcome);
}

const char *
alerts_default_repo(const struct hl_alerts *a)
{
	return a->cfg->heal_repository && *a->cfg->heal_repository ? a->cfg->heal_repository : NULL;
}

/* Ends attempt n of task_id before any CodeRun (outcome stopped, the task
 * in state with reason why) and fills out as outcome / dedup say. */
static int
alerts_end_retry(struct hl_alerts *a, struct hl_alerts_outcome *out, const char *task_id, int n,
                 const char *agent, enum hl_task_state state, const char *why, const char *outcome,
                 const char *dedup, struct hl_err *err)
{
	int64_t now = hl_time_wall_ms();
	int rc;

	rc = hl_store_attempt_put(a->store,
	                          &(struct hl_attempt){ .task_id = task_id,
	                                                .n = n,
	                                                .kind = HL_ATTEMPT_AGENT,
	                                                .phase = HL_PHASE_DONE,
	                                                .outcome = HL_OUTCOME_STOPPED,
	                                                .agent = agent,
	                                                .reason = why,
	                                                .started_ms = now,
	                                                .finished_ms = now },
	                          err);
	if (rc == 0)
		rc = hl_store_task_put(a->store,
		                       &(struct hl_task){ .task_id = task_id,
		                                          .state = state,
		                                          .reason = why,
		                                          .next_check_ms = HL_TASK_NO_CHECK },
		                       err);
	if (rc < 0)
		return rc;
	alerts_set(out->task_id, sizeof(out->task_id), task_id);
	alerts_set(out->agent, sizeof(out->agent), agent);
	alerts_set(out->outcome, sizeof(out->outcome), outcome);
	alerts_set(out->dedup_status, sizeof(out->dedup_status), dedup);
	alerts_set(out->coderun_name, sizeof(out->coderun_name), "");
	alerts_set(out->reason, sizeof(out->reason), why);
	return 0;
}

int
alerts_retry_skipped(struct hl_alerts *a, struct hl_alerts_outcome *out, const char *task_id, int n,
                     const char *agent, const char *why, struct hl_err *err)
{
	int rc = alerts_end_retry(a, out, task_id, n, agent, HL_TASK_SKIPPED, why, "skipped",
	                          "skipped", err);

	if (rc == 0)
		hl_log_kv(HL_LOG_INFO, "a retry is skipped", "task_id", task_id, "reason", why,
		          NULL);
	return rc;
}

int
alerts_lease(struct hl_alerts *a, const char *owner, const char *task_id, struct hl_err *err)
{
	struct timespec ts = { 0, 100 * 1000000L };
	int i, rc;

	for (i = 0; i < 50; i++) {
		int64_t now = hl_time_wall_ms();
		bool got = false;

		if ((rc = hl_store_task_lease(a->store, &got, task_id, owner, now,
		                              now + (int64_t)a->cfg->lease_seconds * 1000, err)) <
		    0)
			return rc;
		if (got)
			return 0;
		nanosleep(&ts, NULL);
	}
	return hl_err_set(err, HL_EUPSTREAM, "task '%s' is busy", task_id);
}

int
alerts_refused(struct hl_alerts *a, struct hl_alerts_outcome *out, const char *kind,
               const char *task_id, int n, const char *agent, const char *failure_type,
               const char *repository, const char *prompt, struct hl_err *err)
{
	struct hl_err why = err ? *err : (struct hl_err)HL_ERR_INIT;
	char reason[sizeof(why.msg) + 32];
	int rc;

	rc = hl_store_task_put(a->store,
	                       &(struct hl_task){ .task_id = task_id,
	                                          .state = HL_TASK_RUNNING,
	                                          .agent = agent,
	                                          .failure_type = failure_type,
	                                          .attempts = n,
	                                          .kind = kind,
	                                          .next_check_ms = hl_time_wall_ms() },
	                       err);
	if (rc < 0)
		return rc;
	if (err)
		*err = why;
	rc = hl_remediate_record_refusal(a->rem, reason, sizeof(reason), task_id, n, agent,
	                                 repository, prompt, err);
	alerts_set(out->outcome, sizeof(out->outcome), "refused");
	alerts_set(out->dedup_status, sizeof(out->dedup_status), "new");
	alerts_set(out->reason, sizeof(out->reason), reason);
	out->reason[hl_utf8_valid_len(out->reason, strlen(out->reason))] = '\0';
	alerts_set(out->coderun_name, sizeof(out->coderun_name), "");
	return rc;
}

int
alerts_find_coderun(struct hl_alerts *a, char *name, const char *task_id, int n, struct hl_err *err)
{
	struct hl_buf sel = HL_BUF_INIT(1024);
	char tid[64];
	json_t *list = NULL;
	int rc;

	hl_str_label_value(tid, task_id);
	hl_buf_appendf(&sel, "app.kubernetes.io/name=healer,healer/task-id=%s,healer/attempt=%d",
	               tid, n);
	rc = hl_buf_error(&sel) ? hl_err_set(err, HL_ENOMEM, "out of memory")
	                        : hl_dispatch_list(a->dispatch, &list, sel.data, err);
	hl_buf_release(&sel);
	if (rc < 0)
		return rc;
	rc = 1;
	if (json_array_size(list) > 0 && hl_json_str(json_array_get(list, 0), "metadata.name")) {
		alerts_set(name, 64, hl_json_str(json_array_get(list, 0), "metadata.name"));
		rc = 0;
	}
	json_decref(list);
	return rc;
}

/* One task of alerts_active_recorded: 0 and name when its CodeRun is
 * still active, 1 when not. */
static int
alerts_task_active(struct hl_alerts *a, char *name, const struct hl_task_record *t,
                   alerts_same_fn same, const void *arg, struct hl_err *err)
{
	json_t *doc = NULL, *cr = NULL;
	bool match;
	int rc;

	if (!t->coderun_name || !*t->coderun_name || !t->event_json ||
	    hl_json_parse(&doc, t->event_json, strlen(t->event_json), NULL) < 0)
		return 1;
	match = same(doc, arg);
	json_decref(doc);
	if (!match)
		return 1;
	rc = hl_dispatch_get(a->dispatch, &cr, t->coderun_name, err);
	if (rc == -HL_ENOTFOUND)
		return 1;
	if (rc < 0)
		return rc;
	rc = hl_dispatch_phase_active(hl_json_str(cr, "status.phase")) ? 0 : 1;
	if (rc == 0)
		alerts_set(name, 64, t->coderun_name);
	json_decref(cr);
	return rc;
}

/* What alerts_active_recorded looks for, for hl_store_task_each. */
struct alerts_active_scan {
	struct hl_alerts *a;
	char *name;
	const char *kind, *task_id;
	alerts_same_fn same;
	const void *arg;
};

/* One running task: 1 (stop) when it is another task of the kind whose
 * CodeRun is still active (name set), 0 to go on, < 0 on an error. */
static int
alerts_active_one(void *p, const struct hl_task_record *t, struct hl_err *err)
{
	struct alerts_active_scan *sc = p;
	int rc;

	if (!t->kind || strcmp(t->kind, sc->kind) != 0 || strcmp(t->task_id, sc->task_id) == 0)
		return 0;
	rc = alerts_task_active(sc->a, sc->name, t, sc->same, sc->arg, err);
	return rc < 0 ? rc : rc == 0 ? 1 : 0;
}

int
alerts_active_recorded(struct hl_alerts *a, char *name, const char *kind, const char *task_id,
                       alerts_same_fn same, const void *arg, struct hl_err *err)
{
	struct hl_task_query q = { .state = "running", .limit = 200 };
	struct alerts_active_scan sc = { a, name, kind, task_id, same, arg };
	int rc = hl_store_task_each(a->store, &q, alerts_active_one, &sc, err);

	return rc < 0 ? rc : rc == 1 ? 0 : 1;
}

int
alerts_superseded(struct hl_alerts *a, struct hl_alerts_outcome *out, const char *task_id, int n,
                  const char *agent, const char *what, const char *other, struct hl_err *err)
{
	char why[256];
	int rc;

	snprintf(why, sizeof(why),
	         "superseded: CodeRun %s of another task is active for %s; no second CodeRun is "
	         "made for it",
	         other, what);
	why[hl_utf8_valid_len(why, strlen(why))] = '\0';
	rc = alerts_end_retry(a, out, task_id, n, agent, HL_TASK_STOPPED, why, "superseded",
	                      "existing", err);
	if (rc == 0)
		hl_log_kv(HL_LOG_INFO, "a retry is superseded by another task's active CodeRun",
		          "task_id", task_id, "target", what, "coderun", other, NULL);
	return rc;
}

int
hl_alerts_process(struct hl_alerts *a, struct hl_alerts_outcome *out, const char *source,
                  const char *action, const char *task_id, const char *delivery_id,
                  const char *body, size_t len, struct hl_err *err)
{
	json_t *doc = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	alerts_set(out->task_id, sizeof(out->task_id), task_id);
	if ((rc = hl_json_parse(&doc, body, len, err)) < 0)
		return hl_err_set(err, HL_EINVAL, "stored alert '%s' does not parse", delivery_id);
	if (!task_id || !*task_id) {
		alerts_set(out->outcome, sizeof(out->outcome), "nothing");
		alerts_set(out->reason, sizeof(out->reason), "the alert has no task");
		rc = 0;
	} else if (source && strcmp(source, HL_ALERTS_SOURCE_ALERTMANAGER) == 0) {
		if (action && strcmp(action, "resolved") == 0)
			rc = alerts_heal_resolved(a, out, doc, task_id, delivery_id, err);
		else
			rc = alerts_heal_firing(a, out, doc, task_id, err);
	} else if (source && strcmp(source, HL_ALERTS_SOURCE_ARGOCD) == 0) {
		rc = alerts_argocd(a, out, doc, task_id, err);
	} else {
		rc = hl_err_set(err, HL_EINVAL, "'%s' is not an alert source",
		                source ? source : "");
	}
	json_decref(doc);
	return rc;
}
