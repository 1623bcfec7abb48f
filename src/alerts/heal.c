/*
 * heal.c - the heal flow of a pod alert (seed 004, contract section 14):
 *
 *   firing    the namespace (HEALER_ALERT_NAMESPACES), the pod's workload
 *             and the repository its run goes to (the service map's, else
 *             HEALER_HEAL_REPOSITORY; allowed by HEALER_REPOSITORIES), else
 *             the task is skipped before anything is fetched ->
 *             diagnostics as `healer fetch-logs` writes them under
 *             HEALER_HEAL_WORKSPACE/logs/ -> the workload's context (one
 *             parallel batch) -> the pod's logs, events and description
 *             classified into a runtime failure type with its evidence line
 *             and first stack frame -> alerts/A7-<pod>.md -> the task claimed
 *             (kind "alert") -> the budget -> the heal CodeRun as
 *             `healer spawn-remediation` creates it (heal template,
 *             heal-workspace PVC, target pod), labelled for the loop ->
 *             the task and attempt recorded;
 *   resolved  the task ends stopped (one resolved before its firing was
 *             handled is claimed and ends skipped, so the firing finds it;
 *             a firing holds the task's lease from its claim until its
 *             CodeRun is recorded); a CodeRun that has not started is
 *             deleted (one already running is left to finish; one that
 *             already succeeded makes the task succeeded);
 *   retries   the loop's next attempt (alerts_heal_kind) does the same with
 *             the previous attempts in the analysis; while another task's
 *             CodeRun is active for the pod it makes none and the task ends
 *             stopped, superseded by that one (alerts_superseded).
 *
 * Guards: one task per alert fingerprint and firing (the task id); a
 * CodeRun still active for the pod (its name and namespace; the files of
 * same-named pods of two namespaces kept apart: see HEAL_LOCK_NS) under
 * another task (found by its
 * labels, or, its labels edited, by the name the store recorded for
 * another running task of the pod) makes the alert skipped, as spawn-remediation refuses a second
 * one: the check and the creation run under the pod's lock (alerts_lock), held in this process and
 * across the replicas sharing the store, so two alerts of a pod handled at
 * once, here or on another replica, do not both miss the other's CodeRun;
 * a replica that cannot get the lock in a few seconds gives the delivery
 * back for a later retry; a CodeRun whose create landed after the lock was
 * lost and another replica's create is withdrawn (alerts_withdraw_doubled).
 * An unreachable
 * cluster is a transient error (the delivery is kept and retried); a pod
 * that does not exist, or no cluster at all, is recorded as skipped.
 */
#include "alerts_impl.h"
#include "base/clock.h"
#include "base/file.h"
#include "base/log.h"
#include "base/str.h"
#include "catalog/catalog.h"
#include "dispatch/coderun.h"

#include "json/json.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEAL_MAX_DOC (4u << 20)

/* The namespace part of a pod's lock: every namespace. Each pod has its
 * own active remediation (the CodeRun's target-pod and target-namespace
 * labels), but same-named pods of two namespaces share the plain file
 * stem (logs/<pod>-*, alerts/A7-<pod>.md): their alerts are handled one
 * after the other, so the second sees the first's CodeRun and takes the
 * namespace-qualified stem (heal_stem) instead of rewriting the files an
 * agent of the first is reading. */
#define HEAL_LOCK_NS "*"

struct heal_alert {
	const json_t *doc; /* the stored body */
	const json_t *alert, *labels;
	const char *key, *alertname, *namespace, *pod, *container, *severity, *starts_at;
	const char *fingerprint, *summary, *description;
};

static int
heal_parse(struct heal_alert *al, const json_t *doc, struct hl_err *err)
{
	memset(al, 0, sizeof(*al));
	al->doc = doc;
	al->alert = json_object_get(doc, "alert");
	al->labels = json_object_get(al->alert, "labels");
	al->key = hl_json_str(doc, "key");
	al->namespace = hl_json_str(al->labels, "namespace");
	al->pod = hl_json_str(al->labels, "pod");
	if (!al->key || !al->namespace || !al->pod || !hl_diag_pod_name_valid(al->pod) ||
	    !hl_kube_name_valid(al->namespace))
		return hl_err_set(err, HL_EINVAL, "the stored alert names no pod");
	al->alertname = hl_json_str(al->labels, "alertname");
	al->container = hl_json_str(al->labels, "container");
	if (al->container && !hl_kube_name_valid(al->container))
		al->container = NULL;
	al->severity = hl_json_str(al->labels, "severity");
	al->starts_at = hl_json_str(al->alert, "startsAt");
	al->fingerprint = hl_json_str(al->alert, "fingerprint");
	al->summary = hl_json_str(al->alert, "annotations.summary");
	al->description = hl_json_str(al->alert, "annotations.description");
	if (!al->description)
		al->description = hl_json_str(al->alert, "annotations.message");
	return 0;
}

static void heal_out(struct hl_alerts_outcome *out, const char *outcome, const char *dedup,
                     const char *fmt, ...) HL_PRINTF(4, 5);

static void
heal_out(struct hl_alerts_outcome *out, const char *outcome, const char *dedup, const char *fmt,
         ...)
{
	va_list ap;

	alerts_set(out->outcome, sizeof(out->outcome), outcome);
	alerts_set(out->dedup_status, sizeof(out->dedup_status), dedup);
	va_start(ap, fmt);
	vsnprintf(out->reason, sizeof(out->reason), fmt, ap);
	va_end(ap);
}

/* Records the alert's task as skipped (nothing to remediate with). */
static int
heal_skip(struct hl_alerts *a, struct hl_alerts_outcome *out, const struct heal_alert *al,
          const char *task_id, const struct hl_task_record *t, const char *dedup,
          struct hl_err *err)
{
	char existing[HL_TASK_ID_MAX], *evs = json_dumps(al->doc, JSON_COMPACT);
	struct hl_task task = { .task_id = task_id,
		                .dedup_key = al->key,
		                .state = HL_TASK_SKIPPED,
		                .reason = out->reason,
		                .attempts = 1,
		                .kind = "alert",
		                .event_json = evs,
		                .next_check_ms = HL_TASK_NO_CHECK };
	bool created = false;
	int rc;

	alerts_set(out->outcome, sizeof(out->outcome), "skipped");
	alerts_set(out->dedup_status, sizeof(out->dedup_status), dedup);
	if (t)
		rc = hl_store_task_put(a->store, &task, err);
	else if ((rc = hl_store_task_claim(a->store, &created, existing, &task, err)) == 0 &&
	         !created)
		rc = hl_store_task_put(a->store, &task, err);
	free(evs);
	if (rc == -HL_ECONFLICT) {
		/* ended meanwhile (resolved first): that end stands */
		heal_out(out, "existing", "existing", "the alert's task already ended");
		rc = 0;
	}
	return rc;
}

/* The workload a pod belongs to: its controller's name, a ReplicaSet's
 * without the pod-template-hash (the Deployment); the pod's own name
 * without one. */
static void
heal_workload(char *out, size_t size, const json_t *pod, const char *pod_name)
{
	const json_t *refs = hl_json_path(pod, "metadata.ownerReferences"), *r, *owner = NULL;
	const char *hash = hl_json_str(pod, "metadata.labels.pod-template-hash");
	const char *name;
	size_t i, n, hl;

	json_array_foreach(refs, i, r)
	{
		if (!owner || json_is_true(json_object_get(r, "controller")))
			owner = r;
	}
	name = hl_json_str(owner, "name");
	/* an object name as Kubernetes allows it: the workload is quoted in
	 * the Prometheus query, where a '"' would end the label value */
	if (!name || !hl_str_k8s_subdomain_valid(name)) {
		alerts_set(out, size, pod_name);
		return;
	}
	alerts_set(out, size, name);
	n = strlen(out);
	hl = hash ? strlen(hash) : 0;
	if (strcmp(hl_json_str_or(owner, "kind", ""), "ReplicaSet") == 0 && hl && n > hl + 1 &&
	    out[n - hl - 1] == '-' && strcmp(out + n - hl, hash) == 0)
		out[n - hl - 1] = '\0';
}

/* A label selector for the workload's pods, from the labels its pods share. */
static void
heal_selector(char *out, size_t size, const json_t *pod, const char *workload)
{
	static const char *const keys[] = { "app.kubernetes.io/instance", "app.kubernetes.io/name",
		                            "app", "k8s-app", "name" };
	const json_t *labels = hl_json_path(pod, "metadata.labels");
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		/* the key as it is: hl_json_str would split it at its dots */
		const char *v = json_string_value(json_object_get(labels, keys[i]));
		if (v && *v && hl_coderun_label_value_valid(v)) {
			snprintf(out, size, "%s=%s", keys[i], v);
			return;
		}
	}
	snprintf(out, size, "app=%s", workload);
}

/* What names the pod's service in the context sources: the service map's
 * entry of its workload, else the pod's own names. */
static void
heal_view(struct hl_alerts *a, struct hl_service_view *v, const struct heal_alert *al,
          const json_t *pod)
{
	const struct hl_service *s;
	const json_t *labels;
	const char *inst;
	char workload[254];

	heal_workload(workload, sizeof(workload), pod, al->pod);
	s = hl_config_service_by_workload(a->cfg, al->namespace, workload);
	if (s) {
		hl_service_resolve(v, a->cfg, s, NULL);
		return;
	}
	hl_service_resolve(v, a->cfg, NULL, NULL);
	alerts_set(v->service, sizeof(v->service), workload);
	alerts_set(v->workload, sizeof(v->workload), workload);
	alerts_set(v->namespace, sizeof(v->namespace), al->namespace);
	/* ArgoCD's tracking label, else the instance label it sets by default */
	labels = hl_json_path(pod, "metadata.labels");
	inst = json_string_value(json_object_get(labels, "argocd.argoproj.io/instance"));
	if (!inst)
		inst = json_string_value(json_object_get(labels, "app.kubernetes.io/instance"));
	alerts_set(v->argocd_app, sizeof(v->argocd_app),
	           inst && hl_str_k8s_subdomain_valid(inst) ? inst : workload);
	snprintf(v->loki_selector, sizeof(v->loki_selector), "{namespace=\"%s\", pod=\"%s\"}",
	         al->namespace, al->pod);
	heal_selector(v->pod_selector, sizeof(v->pod_selector), pod, workload);
}

/* The runtime failure type of a verdict: the winner's when it is a runtime
 * type, else the best runtime candidate's, else runtime_crash (the pod
 * failed, and nothing says how). *cand gets the candidate (NULL: the
 * verdict's own evidence). */
static const struct hl_catalog_type *
heal_runtime_type(const struct hl_verdict *v, const struct hl_classify_candidate **cand)
{
	size_t i;

	*cand = NULL;
	if (v->type && v->type->domain == HL_CATALOG_DOMAIN_RUNTIME)
		return v->type;
	for (i = 0; i < v->n_candidates; i++) {
		const struct hl_catalog_type *t =
		        hl_catalog_type_find(v->candidates[i].failure_type);
		if (t && t->domain == HL_CATALOG_DOMAIN_RUNTIME) {
			*cand = &v->candidates[i];
			return t;
		}
	}
	return hl_catalog_type_find("runtime_crash");
}

/* The agents in the order a retry takes them: the type's, the best runtime
 * candidate of another agent, then the other of Rex and Bolt. */
static json_t *
heal_ranked(const struct hl_verdict *v, const char *agent)
{
	const char *second = NULL;
	size_t i;

	for (i = 0; i < v->n_candidates && !second; i++) {
		const struct hl_catalog_type *t =
		        hl_catalog_type_find(v->candidates[i].failure_type);
		if (t && t->domain == HL_CATALOG_DOMAIN_RUNTIME && t->agent &&
		    strcmp(t->agent->id, agent) != 0)
			second = t->agent->id;
	}
	if (!second)
		second = strcmp(agent, "rex") == 0 ? "bolt" : "rex";
	return json_pack("[s, s]", agent, second);
}

static json_t *
heal_paths_json(char *const paths[HL_DIAG_NFILES])
{
	return json_pack("{s:s?, s:s?, s:s?, s:s?}", "current", paths[HL_DIAG_CURRENT_LOG],
	                 "previous", paths[HL_DIAG_PREVIOUS_LOG], "events", paths[HL_DIAG_EVENTS],
	                 "describe", paths[HL_DIAG_DESCRIBE]);
}

static bool
heal_transient(int code)
{
	return code == HL_EIO || code == HL_ETIMEOUT || code == HL_EUPSTREAM || code == HL_EAUTH ||
	       code == HL_EDB;
}

/* The cause at the end of a problem line ("could not get X: kubernetes GET
 * 'path': 'url': Failed to connect ...": what follows the last "': "). */
static const char *
heal_cause(const char *problem)
{
	const char *p = problem, *q;

	while ((q = strstr(p, "': ")) != NULL)
		p = q + 3;
	return p;
}

/* Retries after the pod is gone: the files an earlier attempt wrote, in
 * logs/ as opened (dirfd; dir names it). The agent can write the heal
 * workspace: only a regular file is taken, opened without following a
 * symbolic link (anything else is left out, logged). */
static void
heal_files_on_disk(struct hl_diag_report *rep, int dirfd, const char *dir, const char *pod,
                   const char *stem)
{
	struct hl_err oerr = HL_ERR_INIT;
	char path[PATH_MAX], name[NAME_MAX + 1];
	size_t i;
	int fd;

	for (i = 0; i < HL_DIAG_NFILES; i++) {
		if (rep->path[i])
			continue;
		if ((size_t)snprintf(name, sizeof(name), "%s-%s", stem,
		                     hl_diag_file_suffix((enum hl_diag_file)i)) >= sizeof(name) ||
		    (size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
			continue;
		fd = hl_diag_open_at(dirfd, name, &oerr);
		if (fd == -HL_ENOTFOUND)
			continue;
		if (fd >= 0)
			rep->path[i] = strdup(path);
		else
			hl_log_kv(HL_LOG_WARN,
			          "a diagnostics file of the heal workspace is not a regular file "
			          "(a symbolic link?): left out",
			          "path", path, "pod", pod, NULL);
		if (fd >= 0)
			close(fd);
	}
}

/* logs/ or alerts/ (sub) of the heal workspace, which the agent can write,
 * opened once (created when missing): a directory of its own, never a
 * symbolic link that would send healer's reads and writes elsewhere. Every
 * read and write then goes through the descriptor, so the path swapped for
 * a link afterwards is not followed. path gets "<workspace>/<sub>". */
static int
heal_dir_open(int *fd, char path[PATH_MAX], const char *workspace, const char *sub,
              struct hl_err *err)
{
	struct hl_err derr = HL_ERR_INIT;

	*fd = -1;
	if ((size_t)snprintf(path, PATH_MAX, "%s/%s", workspace, sub) >= PATH_MAX)
		return hl_err_set(err, HL_EINVAL, "HEALER_HEAL_WORKSPACE '%s' is too long",
		                  workspace);
	if (hl_file_mkdirs(workspace, &derr) < 0)
		return hl_err_set(err, HL_EIO, "the heal workspace '%s': %s", workspace, derr.msg);
	/* mkdir does not follow a link at the last component (EEXIST) */
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return hl_err_set(err, HL_EIO, "cannot create '%s': %s", path, strerror(errno));
	*fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (*fd < 0 && (errno == ELOOP || errno == ENOTDIR))
		return hl_err_set(err, HL_EINVAL,
		                  "'%s' is %s, not a directory: refusing to read or write there",
		                  path, errno == ELOOP ? "a symbolic link" : "no directory");
	if (*fd < 0)
		return hl_err_set(err, HL_EIO, "cannot open '%s': %s", path, strerror(errno));
	return 0;
}

/* The alert may not be worked on (why: "namespace_not_allowed",
 * "repository_not_allowed", "no_repository"): the first attempt from a
 * delivery records its task skipped, a retry ends skipped. */
static int
heal_refuse(struct hl_alerts *a, struct hl_alerts_outcome *out, const struct heal_alert *al,
            const char *task_id, int n, const struct hl_task_record *task,
            const struct hl_attempt_plan *plan, const char *why, struct hl_err *err)
{
	hl_log_kv(HL_LOG_INFO, "a pod alert is skipped", "task_id", task_id, "namespace",
	          al->namespace, "pod", al->pod, "reason", why, NULL);
	if (n == 1 && !task) {
		heal_out(out, "skipped", "skipped", "%s", why);
		return heal_skip(a, out, al, task_id, NULL, "skipped", err);
	}
	return alerts_retry_skipped(a, out, task_id, n,
	                            plan && plan->agent ? plan->agent
	                            : task              ? task->agent
	                                                : NULL,
	                            why, err);
}

/* Under the task's lease, after the claim: 0 when the task is still the
 * running one this firing claimed (its CodeRun not yet recorded), 1 when
 * it was ended meanwhile (a resolution processed first) or its CodeRun is
 * recorded already, with the outcome in out. */
static int
heal_still_open(struct hl_alerts *a, struct hl_alerts_outcome *out, const char *task_id,
                struct hl_err *err)
{
	struct hl_task_record *t = NULL;
	int rc = hl_store_task_get(a->store, &t, task_id, err);

	if (rc < 0)
		return rc;
	rc = 0;
	if (t->state != HL_TASK_RUNNING) {
		heal_out(out, "existing", "existing", "the alert's task is %s%s%s",
		         hl_task_state_name(t->state), t->reason ? ": " : "",
		         t->reason ? t->reason : "");
		rc = 1;
	} else if (t->n_attempts && t->attempt[t->n_attempts - 1].coderun_name &&
	           *t->attempt[t->n_attempts - 1].coderun_name) {
		heal_out(out, "existing", "existing", "the alert's task has CodeRun %s",
		         t->attempt[t->n_attempts - 1].coderun_name);
		rc = 1;
	}
	hl_task_record_free(t);
	return rc;
}

static int heal_active_for_pod(struct hl_alerts *a, char *name, char *stem,
                               const struct heal_alert *al, const char *task_id,
                               struct hl_err *err);
static int heal_active_labelled(struct hl_alerts *a, char *name, bool *plain_taken,
                                const struct heal_alert *al, const char *task_id,
                                struct hl_err *err);

/*
 * Attempt n of the alert's task (see the file comment). task is the task
 * record (NULL for the first attempt from a delivery, which claims it);
 * plan the loop's (NULL for the first attempt); fstem the stem of the
 * pod's files (heal_active_for_pod's).
 */
static int
heal_attempt(struct hl_alerts *a, struct hl_alerts_outcome *out, const struct heal_alert *al,
             const char *fstem, const char *task_id, int n, const struct hl_task_record *task,
             const struct hl_attempt_plan *plan, struct hl_err *err)
{
	const struct hl_config *cfg = a->cfg;
	struct hl_diag_report rep;
	struct alerts_text txt;
	struct hl_context ctx;
	struct hl_verdict v;
	struct hl_service_view view;
	struct hl_context_target tgt = { 0 };
	struct hl_context_clients cc;
	struct hl_event ev = { 0 };
	struct hl_buf doc = HL_BUF_INIT(HEAL_MAX_DOC);
	struct hl_err derr = HL_ERR_INIT, perr = HL_ERR_INIT;
	struct hl_classify_input in = { 0 };
	const struct hl_classify_candidate *cand = NULL;
	const struct hl_catalog_type *type;
	enum hl_dispatch_outcome dout = HL_DISPATCH_DRY_RUN;
	char logs_dir[PATH_MAX], alerts_dir[PATH_MAX], analysis[PATH_MAX], existing[HL_TASK_ID_MAX];
	char analysis_name[NAME_MAX + 1];
	int logs_fd = -1, alerts_fd = -1;
	char frame[300] = "", name[64] = "", other[64], why[160], evfile[256] = "";
	char stem[HL_DIAG_STEM_MAX + 1]; /* A7-<stem>.md, as the diagnostics */
	const char *agent, *ftype, *repo, *rule, *evline = NULL;
	size_t evno = 0, evfile_line = 0;
	json_t *pod = NULL, *pod_sum = NULL, *manifest = NULL, *decision = NULL;
	char *evs = NULL;
	enum hl_budget_wait over = HL_BUDGET_NONE;
	bool have_verdict = false, created = false, leased = false;
	char owner[HL_TASK_ID_MAX + 16];
	int64_t now;
	int rc, part;

	hl_diag_report_init(&rep);
	alerts_text_init(&txt);
	hl_context_init(&ctx);
	memset(&v, 0, sizeof(v));
	alerts_set(out->task_id, sizeof(out->task_id), task_id);
	snprintf(owner, sizeof(owner), "alerts:firing:%s", task_id);
	if (!a->kube) {
		rc = hl_err_set(err, HL_EUNSUPPORTED,
		                "no Kubernetes cluster configured: the pod's diagnostics cannot be "
		                "fetched");
		goto out;
	}
	hl_strlcpy(stem, fstem, sizeof(stem));
	snprintf(analysis_name, sizeof(analysis_name), "A7-%s.md", stem);
	if ((size_t)snprintf(logs_dir, sizeof(logs_dir), "%s/logs", cfg->heal_workspace) >=
	            sizeof(logs_dir) ||
	    (size_t)snprintf(alerts_dir, sizeof(alerts_dir), "%s/alerts", cfg->heal_workspace) >=
	            sizeof(alerts_dir) ||
	    (size_t)snprintf(analysis, sizeof(analysis), "%s/%s", alerts_dir, analysis_name) >=
	            sizeof(analysis)) {
		rc = hl_err_set(err, HL_EINVAL, "HEALER_HEAL_WORKSPACE '%s' is too long",
		                cfg->heal_workspace);
		goto out;
	}

	/* 1. what may be diagnosed, before anything is fetched or written: the
	 * namespace, then the pod's workload (the service map) and the
	 * repository its run goes to */
	if (!hl_config_alert_namespace_allowed(cfg, al->namespace)) {
		rc = heal_refuse(a, out, al, task_id, n, task, plan, "namespace_not_allowed", err);
		goto out;
	}
	if (hl_kube_get_pod(a->kube, &pod, al->namespace, al->pod, &perr) < 0) {
		pod = NULL;
		if (hl_kube_err_forbidden(&perr)) {
			/* the Role does not cover the namespace: asking again
			 * cannot help (a 401, a rotated token, is retried) */
			hl_log_kv(HL_LOG_WARN,
			          "the Kubernetes API forbids reading the alert's pod: healer's "
			          "Role does not cover its namespace",
			          "task_id", task_id, "namespace", al->namespace, "pod", al->pod,
			          "error", perr.msg, NULL);
			rc = heal_refuse(a, out, al, task_id, n, task, plan, "forbidden", err);
			goto out;
		}
		if (heal_transient(perr.code)) {
			rc = hl_err_set(err, HL_EUPSTREAM,
			                "the Kubernetes API did not answer for pod '%s/%s': %s",
			                al->namespace, al->pod, heal_cause(perr.msg));
			goto out;
		}
	}
	pod_sum = pod ? hl_context_pod_summary(pod) : NULL;
	heal_view(a, &view, al, pod);
	/* the alert's labels never name a repository; the service map's entry
	 * of the workload may: the allowlist holds for it as for an event */
	if (view.repository[0] && !hl_config_repo_allowed(cfg, view.repository)) {
		rc = heal_refuse(a, out, al, task_id, n, task, plan, "repository_not_allowed", err);
		goto out;
	}
	repo = view.repository[0] ? view.repository : alerts_default_repo(a);
	if (!repo) {
		/* no built-in repository: HEALER_HEAL_REPOSITORY names it */
		rc = heal_refuse(a, out, al, task_id, n, task, plan, "no_repository", err);
		goto out;
	}
	if ((rc = heal_dir_open(&logs_fd, logs_dir, cfg->heal_workspace, "logs", err)) < 0 ||
	    (rc = heal_dir_open(&alerts_fd, alerts_dir, cfg->heal_workspace, "alerts", err)) < 0)
		goto out;

	/* 2. diagnostics, exactly as fetch-logs writes them */
	rc = hl_diag_fetch_pod_at(&rep, a->kube, al->namespace, al->pod, stem, logs_fd, logs_dir,
	                          cfg->heal_log_tail, &derr);
	if (rc < 0 && (rep.api_unreachable || heal_transient(derr.code))) {
		rc = hl_err_set(err, HL_EUPSTREAM,
		                "the Kubernetes API did not answer for pod '%s/%s': %s",
		                al->namespace, al->pod,
		                heal_cause(rep.nproblems ? rep.problems[0] : derr.msg));
		goto out;
	}
	if (rep.pod_missing && n == 1 && !task) {
		/* its events may still be listed: nothing runs to heal */
		heal_out(out, "skipped", "skipped", "pod '%s' does not exist in namespace '%s'",
		         al->pod, al->namespace);
		rc = heal_skip(a, out, al, task_id, NULL, "skipped", err);
		goto out;
	}
	if (rc < 0 && n == 1 && !task) {
		heal_out(out, "skipped", "skipped",
		         "no diagnostics for pod '%s' in namespace '%s': %s", al->pod,
		         al->namespace, rep.nproblems ? rep.problems[0] : derr.msg);
		rc = heal_skip(a, out, al, task_id, NULL, "skipped", err);
		goto out;
	}
	if (rc < 0)
		heal_files_on_disk(&rep, logs_fd, logs_dir, al->pod,
		                   stem); /* a retry: what is left */

	/* 3. the workload's context, in one batch */
	ev.repository = view.repository[0] ? view.repository : NULL;
	tgt.service = &view;
	cc = (struct hl_context_clients){ .cfg = cfg,
		                          .kube = a->kube,
		                          .timeout_ms = cfg->source_timeout_ms,
		                          .deadline_ms =
		                                  hl_time_mono_ms() + cfg->context_timeout_ms,
		                          .target = &tgt };
	if ((rc = hl_context_gather(&ctx, &cc, &ev, err)) < 0)
		goto out;

	/* 4. classify the pod's logs, events and description */
	if ((rc = alerts_text_read(&txt, logs_fd, rep.path, err)) < 0)
		goto out;
	in.event = "pod_alert";
	in.log = txt.text.data;
	in.log_len = txt.text.len;
	if ((rc = hl_classify(&v, a->classifier, &in, err)) < 0)
		goto out;
	have_verdict = true;
	type = heal_runtime_type(&v, &cand);
	if (cand) {
		evline = cand->line;
		evno = cand->line_number;
	} else if (v.evidence_line && *v.evidence_line) {
		evline = v.evidence_line;
		evno = v.evidence_line_number;
	}
	if (evno) {
		alerts_first_frame(frame, sizeof(frame), txt.text.data, txt.text.len, evno);
		part = alerts_text_part_of(&txt, evno);
		if (part >= 0) {
			const char *p = rep.path[txt.part[part].kind];
			alerts_set(evfile, sizeof(evfile),
			           strrchr(p, '/') ? strrchr(p, '/') + 1 : p);
			evfile_line = evno - txt.part[part].first_line + 1;
		}
	}
	rule = cand                                                              ? cand->rule
	       : v.type && v.type->domain == HL_CATALOG_DOMAIN_RUNTIME && v.rule ? v.rule
	                                                                         : "none";
	agent = plan && plan->agent ? plan->agent : type->agent->id;
	ftype = plan && plan->failure_type ? plan->failure_type : type->name;
	alerts_set(out->agent, sizeof(out->agent), agent);
	alerts_set(out->failure_type, sizeof(out->failure_type), ftype);

	/* 5. the analysis: alerts/A7-<pod>.md, also the CodeRun's prompt */
	{
		const struct hl_catalog_type *ft = hl_catalog_type_find(ftype);
		int pi = evno ? alerts_text_part_of(&txt, evno) : -1;
		struct alerts_analysis an = {
			.pod = al->pod,
			.namespace = al->namespace,
			.container = al->container,
			.alertname = al->alertname,
			.starts_at = al->starts_at,
			.severity = al->severity,
			.summary = al->summary,
			.description = al->description,
			.task_id = task_id,
			.failure_type = ftype,
			.agent = agent,
			.rule = rule,
			.fix = ft ? ft->fix_approach : type->fix_approach,
			.confidence = v.confidence,
			.evidence = evline,
			.evidence_file = evfile[0] ? evfile : NULL,
			.evidence_file_line = evfile_line,
			.excerpt = pi >= 0 ? txt.text.data + txt.part[pi].offset : NULL,
			.excerpt_len = pi >= 0 ? txt.part[pi].len : 0,
			.frame = frame,
			.pod_summary = pod_sum,
			.paths = rep.path,
			.logs_dir = logs_dir,
			.stem = stem,
			.workspace = cfg->heal_workspace,
			.problems = rep.problems,
			.n_problems = rep.nproblems,
			.ctx = &ctx,
			.task = task,
			.attempt = n,
		};
		alerts_analysis_render(&doc, &an);
	}
	/* any text from outside (Loki's lines, events, the alert's
	 * annotations, a pod's message) may quote one of healer's own
	 * credentials or a URL's password: never in the analysis, which is
	 * the CodeRun's prompt (fail closed: no memory to redact, no analysis) */
	if (!hl_buf_error(&doc) && hl_log_redact_buf(&doc) < 0) {
		rc = hl_err_set(err, HL_ENOMEM, "out of memory redacting the analysis of pod '%s'",
		                al->pod);
		goto out;
	}
	if (hl_buf_error(&doc)) {
		rc = hl_err_set(err, HL_ENOMEM, "the analysis of pod '%s' is too large", al->pod);
		goto out;
	}
	if (hl_diag_write_at(alerts_fd, analysis_name, doc.data, doc.len, &derr) < 0) {
		rc = hl_err_set(err, HL_EIO, "writing the analysis '%s': %s", analysis, derr.msg);
		goto out;
	}
	evs = json_dumps(al->doc, JSON_COMPACT);

	/* 6. claim the task (a first attempt from a delivery) and a budget slot
	 * (the loop takes it for later attempts) */
	if (!task) {
		rc = hl_store_task_claim(
		        a->store, &created, existing,
		        &(struct hl_task){ .task_id = task_id,
		                           .dedup_key = al->key,
		                           .repository = repo,
		                           .state = HL_TASK_RUNNING,
		                           .attempts = 1,
		                           .kind = "alert",
		                           .event_json = evs,
		                           .next_check_ms =
		                                   hl_time_wall_ms() +
		                                   (int64_t)cfg->attempt_timeout_mins * 60000 },
		        err);
		if (rc < 0)
			goto out;
		if (!created && strcmp(existing, task_id) != 0) {
			heal_out(out, "existing", "existing", "the alert is remediated by %s",
			         existing);
			goto out;
		}
		/* the task's lease until its CodeRun is recorded: a resolution
		 * processed meanwhile waits, then sees the CodeRun */
		if ((rc = alerts_lease(a, owner, task_id, err)) < 0)
			goto out;
		leased = true;
		if ((rc = heal_still_open(a, out, task_id, err)) != 0) {
			rc = rc > 0 ? 0 : rc;
			goto out;
		}
		if ((rc = hl_remediate_begin(a->rem, &over, why, sizeof(why), task_id, 1, repo,
		                             agent, NULL, err)) < 0)
			goto out;
		if (over) {
			heal_out(out, "queued", "new", "%s", why);
			rc = hl_store_task_put(
			        a->store,
			        &(struct hl_task){ .task_id = task_id,
			                           .state = HL_TASK_QUEUED,
			                           .reason = why,
			                           .agent = agent,
			                           .failure_type = ftype,
			                           .kind = "alert",
			                           .next_check_ms = HL_TASK_NO_CHECK },
			        err);
			goto out;
		}
	}

	/* 7. the heal CodeRun, as spawn-remediation creates it */
	if (a->dispatch->mode != HL_DISPATCH_NONE &&
	    (rc = alerts_find_coderun(a, name, task_id, n, err)) < 0)
		goto out;
	if (a->dispatch->mode != HL_DISPATCH_NONE && rc == 0) {
		dout = HL_DISPATCH_EXISTING; /* made before a restart */
	} else {
		struct hl_heal_spec hs = { .alert = ALERTS_POD_ALERT,
			                   .task_id = task_id,
			                   .issue_file = analysis,
			                   .prompt = doc.data,
			                   .target_pod = al->pod,
			                   .target_namespace = al->namespace,
			                   .file_stem = stem,
			                   .repository = repo,
			                   .cli = cfg->cli,
			                   .model = cfg->model,
			                   .namespace = cfg->namespace,
			                   .template = cfg->heal_template,
			                   .agent = agent,
			                   .failure_type = ftype,
			                   .attempt = n };
		if ((rc = hl_coderun_build_heal(&manifest, &hs, err)) < 0)
			goto out;
		/* the pod's lock, taken by the caller, must still be ours (a
		 * lost database session let it go): else another replica may
		 * be creating one for the pod now */
		if (!alerts_lock_held(a, "pod", HEAL_LOCK_NS, al->pod)) {
			rc = hl_err_set(err, HL_EUPSTREAM,
			                "the lock of pod %s/%s was lost; retried later",
			                al->namespace, al->pod);
			goto out;
		}
		if ((rc = hl_dispatch_submit(a->dispatch, &dout, name, manifest, err)) < 0) {
			if (hl_remediate_refused(task_id, n, &rc, err))
				rc = alerts_refused(a, out, "alert", task_id, n, agent, ftype, repo,
				                    doc.data, err);
			goto out;
		}
		/* a firing's, now that it exists: checked against the pod's
		 * others once more (the lock may have been lost meanwhile) */
		if (dout == HL_DISPATCH_CREATED && !plan) {
			struct hl_err lerr = HL_ERR_INIT; /* a failed look keeps ours */

			if (heal_active_for_pod(a, other, NULL, al, task_id, &lerr) == 0) {
				rc = alerts_withdraw_doubled(a, "pod", al->namespace, al->pod,
				                             other, name, task_id, err);
				goto out;
			}
		}
	}
	alerts_set(out->coderun_name, sizeof(out->coderun_name), name);
	heal_out(out,
	         dout == HL_DISPATCH_DRY_RUN    ? "decided"
	         : dout == HL_DISPATCH_EXISTING ? "existing"
	                                        : "dispatched",
	         "new", "%s", "");

	/* 8. record: the decision is the first attempt's */
	if (n == 1) {
		decision = json_pack(
		        "{s:s, s:s, s:s?, s:s, s:{s:I, s:s, s:s?}, s:f, s:s?, s:s, s:s, s:o, s:o, "
		        "s:I, s:I, s:{s:s, s:s}, s:o, s:{s:s?, s:s?, s:s, s:s, s:s?, s:s?}, "
		        "s:{s:s, s:s, s:s, s:s, s:s}}",
		        "agent", agent, "failure_type", ftype, "category",
		        type->category ? type->category->name : NULL, "rule", rule, "evidence",
		        "line_number", (json_int_t)evfile_line, "line", evline ? evline : "",
		        "file", evfile[0] ? evfile : NULL, "confidence", v.confidence,
		        "fix_approach", type->fix_approach, "first_frame", frame, "analysis_file",
		        analysis, "diagnostics", heal_paths_json(rep.path), "sources",
		        hl_context_sources_json(&ctx), "context_ms", (json_int_t)ctx.elapsed_ms,
		        "prompt_bytes", (json_int_t)doc.len, "coderun", "name", name, "dispatch",
		        hl_dispatch_outcome_name(dout), "ranked_agents", heal_ranked(&v, agent),
		        "alert", "name", al->alertname, "fingerprint", al->fingerprint, "namespace",
		        al->namespace, "pod", al->pod, "container", al->container, "starts_at",
		        al->starts_at, "service", "name", view.service, "workload", view.workload,
		        "pods", view.pod_selector, "loki", view.loki_selector, "argocd_app",
		        view.argocd_app);
		if (decision && rep.nproblems) {
			json_t *p = json_array();
			size_t i;
			for (i = 0; p && i < rep.nproblems; i++)
				json_array_append_new(p, json_string(rep.problems[i]));
			json_object_set_new(decision, "problems", p);
		}
	}
	now = hl_time_wall_ms();
	{
		char *dj = decision ? json_dumps(decision, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
		bool dry = dout == HL_DISPATCH_DRY_RUN;
		rc = hl_store_task_put(
		        a->store,
		        &(struct hl_task){ .task_id = task_id,
		                           .dedup_key = al->key,
		                           .repository = repo,
		                           .agent = agent,
		                           .failure_type = ftype,
		                           .state = dry ? HL_TASK_SKIPPED : HL_TASK_RUNNING,
		                           .reason = dry ? "decide_only" : NULL,
		                           .attempts = n,
		                           .coderun_name = name[0] ? name : NULL,
		                           .decision_json = dj,
		                           .kind = "alert",
		                           .event_json = evs,
		                           .next_check_ms =
		                                   dry ? HL_TASK_NO_CHECK
		                                       : now + (int64_t)cfg->attempt_timeout_mins *
		                                                           60000 },
		        err);
		free(dj);
		if (rc < 0)
			goto out;
		rc = hl_store_attempt_put(
		        a->store,
		        &(struct hl_attempt){ .task_id = task_id,
		                              .n = n,
		                              .kind = HL_ATTEMPT_AGENT,
		                              .phase = dry ? HL_PHASE_DONE : HL_PHASE_PENDING,
		                              .outcome = HL_OUTCOME_INVALID,
		                              .agent = agent,
		                              .coderun_name = name,
		                              .prompt = doc.data,
		                              .repository = repo,
		                              .started_ms = now },
		        err);
	}
	if (rc == 0)
		hl_log_kv(HL_LOG_INFO, "pod alert analysed", "task_id", task_id, "pod", al->pod,
		          "failure_type", ftype, "agent", agent, "coderun", name, "analysis",
		          analysis, NULL);
out:
	if (leased)
		(void)hl_store_task_release(a->store, task_id, owner, NULL);
	if (have_verdict)
		hl_verdict_release(&v);
	hl_context_release(&ctx);
	alerts_text_release(&txt);
	hl_diag_report_release(&rep);
	json_decref(pod);
	json_decref(pod_sum);
	json_decref(manifest);
	json_decref(decision);
	hl_buf_release(&doc);
	free(evs);
	if (logs_fd >= 0)
		close(logs_fd);
	if (alerts_fd >= 0)
		close(alerts_fd);
	return rc;
}

/* Whether a stored alert (a task's event_json) names the same pod (name
 * and namespace). */
static bool
heal_same_pod(const json_t *doc, const void *arg)
{
	const struct heal_alert *al = arg;
	struct heal_alert other;

	return heal_parse(&other, doc, NULL) == 0 && strcmp(other.pod, al->pod) == 0 &&
	       strcmp(other.namespace, al->namespace) == 0;
}

/* A CodeRun still active for the pod under another task, into name: one
 * its labels name, else (its labels edited while it runs) the CodeRun of
 * another running task of the pod, asked for by name. stem (when not
 * NULL) gets the stem of the pod's files: its name's, unless an active
 * CodeRun of a same-named pod in another namespace has that one. */
static int
heal_active_for_pod(struct hl_alerts *a, char *name, char *stem, const struct heal_alert *al,
                    const char *task_id, struct hl_err *err)
{
	bool plain_taken = false;
	int rc = heal_active_labelled(a, name, &plain_taken, al, task_id, err);

	if (stem && plain_taken)
		hl_diag_file_stem_ns(stem, al->namespace, al->pod);
	else if (stem)
		hl_diag_file_stem(stem, al->pod);
	if (rc != 1)
		return rc;
	return alerts_active_recorded(a, name, "alert", task_id, heal_same_pod, al, err);
}

/* A CodeRun its labels say is still active for the pod under another
 * task, into name. One without a target-namespace label (made before the
 * label was) counts for the pod in every namespace. *plain_taken: an
 * active CodeRun of a same-named pod in another namespace uses the pod's
 * plain file stem (its healer/file-stem annotation; none: the plain one). */
static int
heal_active_labelled(struct hl_alerts *a, char *name, bool *plain_taken,
                     const struct heal_alert *al, const char *task_id, struct hl_err *err)
{
	struct hl_buf sel = HL_BUF_INIT(1024);
	char lp[64], lt[64], plain[HL_DIAG_STEM_MAX + 1];
	json_t *active = NULL, *c;
	size_t i;
	int rc;

	hl_diag_file_stem(plain, al->pod);
	hl_coderun_label_id(lp, al->pod);
	hl_str_label_value(lt, task_id);
	hl_buf_appendf(&sel, "remediation=true,alert-type=%s,target-pod=%s", ALERTS_POD_ALERT, lp);
	rc = hl_buf_error(&sel) ? hl_err_set(err, HL_ENOMEM, "out of memory")
	                        : hl_dispatch_find_active(a->dispatch, &active, sel.data, err);
	hl_buf_release(&sel);
	if (rc < 0)
		return rc;
	rc = 1;
	json_array_foreach(active, i, c)
	{
		const char *owner = hl_json_str(c, "metadata.labels.healer/task-id");
		const json_t *labels = hl_json_path(c, "metadata.labels");
		const json_t *ann = hl_json_path(c, "metadata.annotations");
		const char *ns = json_string_value(json_object_get(labels, "target-namespace"));
		const char *fs = json_string_value(json_object_get(ann, "healer/file-stem"));

		if (ns && strcmp(ns, al->namespace) != 0) {
			/* a same-named pod of another namespace: its own run */
			if (!fs || strcmp(fs, plain) == 0)
				*plain_taken = true;
			continue;
		}
		if (rc == 1 && (!owner || strcmp(owner, lt) != 0)) {
			alerts_set(name, 64, hl_json_str_or(c, "metadata.name", "?"));
			rc = 0;
		}
	}
	json_decref(active);
	return rc;
}

int
alerts_heal_firing(struct hl_alerts *a, struct hl_alerts_outcome *out, const json_t *doc,
                   const char *task_id, struct hl_err *err)
{
	struct heal_alert al;
	struct hl_task_record *t = NULL;
	struct hl_err gerr = HL_ERR_INIT;
	char other[64], stem[HL_DIAG_STEM_MAX + 1];
	bool locked = false;
	int rc;

	if ((rc = heal_parse(&al, doc, err)) < 0)
		return rc;
	rc = hl_store_task_get(a->store, &t, task_id, err);
	if (rc < 0 && rc != -HL_ENOTFOUND)
		return rc;
	if (t) {
		const struct hl_attempt_record *cur =
		        t->n_attempts ? &t->attempt[t->n_attempts - 1] : NULL;
		alerts_set(out->agent, sizeof(out->agent), t->agent);
		alerts_set(out->failure_type, sizeof(out->failure_type), t->failure_type);
		alerts_set(out->coderun_name, sizeof(out->coderun_name), t->coderun_name);
		if (t->state == HL_TASK_QUEUED) {
			heal_out(out, "queued", "existing",
			         "the alert's task waits for a CodeRun slot");
			rc = 0;
			goto out;
		}
		if (!(t->state == HL_TASK_RUNNING &&
		      !(cur && cur->coderun_name && *cur->coderun_name))) {
			heal_out(out, "existing", "existing", "the alert's task is %s",
			         hl_task_state_name(t->state));
			rc = 0;
			goto out;
		}
		/* claimed, but stopped before its CodeRun was recorded: go on */
	}
	if (!a->kube) {
		heal_out(out, "skipped", "skipped",
		         "no Kubernetes cluster configured: the diagnostics of pod '%s' cannot be "
		         "fetched",
		         al.pod);
		rc = heal_skip(a, out, &al, task_id, t, "skipped", err);
		goto out;
	}
	/* one active remediation per pod (spawn-remediation's rule): another
	 * alert of the same pod waits for this one's CodeRun, then sees it */
	if ((rc = alerts_lock(a, "pod", HEAL_LOCK_NS, al.pod, err)) < 0)
		goto out;
	locked = true;
	rc = heal_active_for_pod(a, other, stem, &al, task_id, &gerr);
	if (rc < 0) {
		rc = hl_err_set(err, heal_transient(-rc) ? HL_EUPSTREAM : -rc,
		                "checking the active CodeRuns of pod '%s': %s", al.pod, gerr.msg);
		goto out;
	}
	if (rc == 0) {
		heal_out(out, "existing", "existing", "CodeRun %s is still active for pod %s",
		         other, al.pod);
		alerts_set(out->coderun_name, sizeof(out->coderun_name), other);
		rc = heal_skip(a, out, &al, task_id, t, "existing", err);
		alerts_set(out->outcome, sizeof(out->outcome), "existing");
		goto out;
	}
	rc = heal_attempt(a, out, &al, stem, task_id, 1, NULL, NULL, err);
out:
	if (locked)
		alerts_unlock(a, "pod", HEAL_LOCK_NS, al.pod);
	hl_task_record_free(t);
	return rc;
}

int
alerts_heal_kind(void *arg, struct hl_remediation *res, const struct hl_task_record *task,
                 const struct hl_attempt_plan *plan, struct hl_err *err)
{
	struct hl_alerts *a = arg;
	struct hl_alerts_outcome o;
	struct heal_alert al;
	json_t *doc = NULL;
	int rc;

	memset(&o, 0, sizeof(o));
	if (!task->event_json ||
	    hl_json_parse(&doc, task->event_json, strlen(task->event_json), err) < 0)
		return hl_err_set(err, HL_EINVAL, "task '%s' has no stored alert", task->task_id);
	rc = heal_parse(&al, doc, err);
	if (rc == 0 && (rc = alerts_lock(a, "pod", HEAL_LOCK_NS, al.pod, err)) == 0) {
		/* one active remediation per pod holds for retries too: another
		 * alert's task may have made one since this task's CodeRun ended */
		struct hl_err gerr = HL_ERR_INIT;
		char other[64], what[600], stem[HL_DIAG_STEM_MAX + 1];

		rc = heal_active_for_pod(a, other, stem, &al, task->task_id, &gerr);
		if (rc < 0) {
			rc = hl_err_set(err, heal_transient(-rc) ? HL_EUPSTREAM : -rc,
			                "checking the active CodeRuns of pod '%s': %s", al.pod,
			                gerr.msg);
		} else if (rc == 0) {
			snprintf(what, sizeof(what), "pod %s/%s", al.namespace, al.pod);
			rc = alerts_superseded(a, &o, task->task_id, plan->n,
			                       plan->agent ? plan->agent : task->agent, what, other,
			                       err);
		} else {
			rc = heal_attempt(a, &o, &al, stem, task->task_id, plan->n, task, plan,
			                  err);
		}
		alerts_unlock(a, "pod", HEAL_LOCK_NS, al.pod);
	}
	if (rc == 0)
		alerts_to_remediation(res, &o);
	json_decref(doc);
	return rc;
}

/* ---- resolved ------------------------------------------------------------ */

/* A resolution without a task (its firing not handled yet: the same
 * body, or out of order): claims the task, so the firing finds it and the
 * resolution ends it as for an existing one. 1: go on; 0: nothing to end. */
static int
heal_resolved_first(struct hl_alerts *a, struct hl_alerts_outcome *out, const json_t *doc,
                    const char *task_id, struct hl_err *err)
{
	char existing[HL_TASK_ID_MAX], *evs;
	bool created = false;
	int rc;

	if (!hl_json_str(doc, "key")) {
		heal_out(out, "nothing", "skipped", "the stored alert names no pod");
		return 0;
	}
	/* not screened at intake (it must reach a task opened before the
	 * screens narrowed): without a task, one they refuse is skipped */
	if (!hl_config_alert_namespace_allowed(
	            a->cfg, hl_json_str(json_object_get(json_object_get(doc, "alert"), "labels"),
	                                "namespace"))) {
		heal_out(out, "nothing", "skipped", "namespace_not_allowed");
		return 0;
	}
	evs = json_dumps(doc, JSON_COMPACT);
	rc = hl_store_task_claim(a->store, &created, existing,
	                         &(struct hl_task){ .task_id = task_id,
	                                            .dedup_key = hl_json_str(doc, "key"),
	                                            .state = HL_TASK_RUNNING,
	                                            .kind = "alert",
	                                            .event_json = evs,
	                                            .next_check_ms = HL_TASK_NO_CHECK },
	                         err);
	free(evs);
	return rc < 0 ? rc : 1;
}

int
alerts_heal_resolved(struct hl_alerts *a, struct hl_alerts_outcome *out, const json_t *doc,
                     const char *task_id, const char *delivery_id, struct hl_err *err)
{
	struct hl_task_record *t = NULL;
	const struct hl_attempt_record *cur = NULL;
	json_t *cr = NULL;
	char owner[HL_DELIVERY_ID_MAX + 16], why[256], name[64] = "";
	bool deleted = false, succeeded = false, never = false;
	int rc;

	rc = hl_store_task_get(a->store, &t, task_id, err);
	if (rc == -HL_ENOTFOUND) {
		/* resolved before its firing was handled (same body, or out of
		 * order): claimed here and ended below; the firing finds it */
		rc = heal_resolved_first(a, out, doc, task_id, err);
		if (rc <= 0)
			return rc;
	} else if (rc < 0) {
		return rc;
	}
	hl_task_record_free(t);
	t = NULL;
	snprintf(owner, sizeof(owner), "alerts:%s", delivery_id);
	if ((rc = alerts_lease(a, owner, task_id, err)) < 0)
		return rc;
	if ((rc = hl_store_task_get(a->store, &t, task_id, err)) < 0)
		goto out;
	alerts_set(out->agent, sizeof(out->agent), t->agent);
	alerts_set(out->failure_type, sizeof(out->failure_type), t->failure_type);
	alerts_set(out->coderun_name, sizeof(out->coderun_name), t->coderun_name);
	if (t->state != HL_TASK_QUEUED && !hl_task_state_is_active(t->state)) {
		heal_out(out, "nothing", "existing", "the task is already %s",
		         hl_task_state_name(t->state));
		if (hl_store_outcome_add(a->store, task_id, delivery_id, "alert_resolved",
		                         out->reason, NULL) < 0) {
			/* best effort: the task's own state already says it */
		}
		goto out;
	}
	/* the newest attempt, also one still being prepared: its CodeRun may
	 * exist though its name was never recorded (the create answered late
	 * or not at all, and the firing's retry had not come back yet) */
	if (t->n_attempts)
		cur = &t->attempt[t->n_attempts - 1];
	/* claimed by a resolution (heal_resolved_first): nothing was tried */
	never = t->attempts == 0 && t->n_attempts == 0;
	snprintf(why, sizeof(why), "%s",
	         cur     ? "the alert resolved"
	         : never ? "the alert resolved before its firing was handled"
	                 : "the alert resolved before a CodeRun was created");
	if (cur && cur->phase != HL_PHASE_DONE) {
		/* the CodeRun's own phase is the truth; a run that started is
		 * left to finish (its fix may still land) */
		const char *phase = NULL;

		if (cur->coderun_name && *cur->coderun_name)
			alerts_set(name, sizeof(name), cur->coderun_name);
		else if ((rc = alerts_find_coderun(a, name, task_id, cur->n, err)) < 0)
			goto out;
		else if (rc == 1)
			name[0] = '\0';
		/* seen Succeeded already (the task verifies): the CodeRun may be
		 * gone since (a controller's clean-up), its success is not */
		if (cur->phase == HL_PHASE_VERIFYING)
			rc = -HL_ENOTFOUND;
		else
			rc = name[0] ? hl_dispatch_get(a->dispatch, &cr, name, err) : -HL_ENOTFOUND;
		if (rc < 0 && rc != -HL_ENOTFOUND)
			goto out;
		phase = rc == 0                            ? hl_json_str(cr, "status.phase")
		        : cur->phase == HL_PHASE_VERIFYING ? "Succeeded"
		                                           : NULL;
		if (rc == 0 && hl_dispatch_phase_active(phase) &&
		    !(phase && strcmp(phase, "Running") == 0)) {
			if ((rc = hl_dispatch_delete(a->dispatch, name, err)) < 0)
				goto out;
			deleted = true;
			snprintf(why, sizeof(why),
			         "the alert resolved; CodeRun %s was deleted before it started",
			         name);
		} else if (rc == 0 && phase && strcmp(phase, "Running") == 0) {
			snprintf(
			        why, sizeof(why),
			        "the alert resolved; CodeRun %s was already running and is left to "
			        "finish",
			        name);
		} else if (phase && strcmp(phase, "Succeeded") == 0) {
			/* the agent's fix, not yet judged by the loop: it worked */
			succeeded = true;
			snprintf(why, sizeof(why), "CodeRun %s succeeded and the alert resolved",
			         name);
		} else if (rc == 0 && phase && strcmp(phase, "Failed") == 0) {
			snprintf(why, sizeof(why), "the alert resolved after CodeRun %s failed",
			         name);
		}
		/* done in every case: an attempt left preparing would hold its
		 * CodeRun slot for good (a stopped task is never stepped) */
		rc = hl_store_attempt_put(
		        a->store,
		        &(struct hl_attempt){ .task_id = task_id,
		                              .n = cur->n,
		                              .kind = cur->kind,
		                              .phase = HL_PHASE_DONE,
		                              .outcome = succeeded ? HL_OUTCOME_SUCCESS
		                                                   : HL_OUTCOME_STOPPED,
		                              .reason = why,
		                              .coderun_name = name[0] ? name : NULL,
		                              .finished_ms = hl_time_wall_ms() },
		        err);
		if (rc < 0)
			goto out;
	}
	rc = hl_store_task_put(a->store,
	                       &(struct hl_task){ .task_id = task_id,
	                                          .state = succeeded ? HL_TASK_SUCCEEDED
	                                                   : never   ? HL_TASK_SKIPPED
	                                                             : HL_TASK_STOPPED,
	                                          .reason = why,
	                                          .next_check_ms = HL_TASK_NO_CHECK },
	                       err);
	if (rc < 0)
		goto out;
	heal_out(out, "resolved", "existing", "%s", why);
	hl_log_kv(HL_LOG_INFO, "alert resolved", "task_id", task_id, "coderun_deleted",
	          deleted ? "true" : "false", NULL);
out:
	json_decref(cr);
	hl_task_record_free(t);
	(void)hl_store_task_release(a->store, task_id, owner, NULL);
	(void)doc;
	return rc;
}
