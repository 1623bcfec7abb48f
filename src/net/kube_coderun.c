/*
 * kube_coderun.c - CodeRuns (agents.platform/v1) for the remediation loop:
 * create, read, list, delete, their status as typed fields, and what the
 * agent printed (the logs of the pods of the CodeRun's Job).
 *
 * Invariants: names reach a path only through hl_kube_path (validated and
 * encoded); status strings are borrowed, never copied; the agent's output
 * is bounded (4 pods, 1 MiB per log, the caller's buffer cap).
 */
#include "base/clock.h"
#include "base/str.h"
#include "kube.h"
#include "kube_impl.h"

#include "json/json.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CODERUN_JOB_MAX_PODS       4
#define CODERUN_JOB_MAX_CONTAINERS 16
#define CODERUN_JOB_LOG_CAP        (1u * 1024 * 1024)
#define CODERUN_DEFAULT_TAIL       200

static int
coderun_get(const struct hl_kube *k, json_t **out, struct hl_buf *path, int ret, struct hl_err *err)
{
	if (ret == 0)
		ret = hl_kube_call(k, out, NULL, "GET", path->data, NULL, err);
	hl_buf_release(path);
	return ret;
}

int
hl_kube_create_coderun(const struct hl_kube *k, json_t **out, const char *ns,
                       const json_t *manifest, struct hl_err *err)
{
	struct hl_buf p = HL_BUF_INIT(0);
	bool named = hl_json_str(manifest, "metadata.name") != NULL;
	int ret;

	ret = hl_kube_path(&p, HL_CODERUN_PREFIX, hl_kube_ns(k, ns), "coderuns", NULL, NULL, err);
	/* a named create is idempotent (a retried POST answers 409), so it may
	 * be retried; a generateName create may not */
	if (ret == 0)
		ret = hl_kube_call_ex(k, out, NULL, "POST", p.data, manifest, named ? 3 : 0, err);
	hl_buf_release(&p);
	return ret;
}

int
hl_kube_get_coderun(const struct hl_kube *k, json_t **out, const char *ns, const char *name,
                    struct hl_err *err)
{
	struct hl_buf p = HL_BUF_INIT(0);
	int ret =
	        hl_kube_path(&p, HL_CODERUN_PREFIX, hl_kube_ns(k, ns), "coderuns", name, NULL, err);

	return coderun_get(k, out, &p, ret, err);
}

int
hl_kube_list_coderuns(const struct hl_kube *k, json_t **out, const char *ns,
                      const char *label_selector, struct hl_err *err)
{
	struct hl_buf p = HL_BUF_INIT(0);
	int ret =
	        hl_kube_path(&p, HL_CODERUN_PREFIX, hl_kube_ns(k, ns), "coderuns", NULL, NULL, err);

	if (ret == 0 && label_selector && *label_selector)
		ret = hl_kube_query(&p, "labelSelector", label_selector, err);
	return coderun_get(k, out, &p, ret, err);
}

int
hl_kube_delete_coderun(const struct hl_kube *k, const char *ns, const char *name,
                       struct hl_err *err)
{
	struct hl_buf p = HL_BUF_INIT(0);
	struct hl_err e = HL_ERR_INIT;
	int ret;

	ret = hl_kube_path(&p, HL_CODERUN_PREFIX, hl_kube_ns(k, ns), "coderuns", name, NULL, err);
	if (ret == 0)
		ret = hl_kube_query(&p, "propagationPolicy", "Background", err);
	if (ret == 0) {
		ret = hl_kube_call(k, NULL, NULL, "DELETE", p.data, NULL, &e);
		if (ret == -HL_ENOTFOUND)
			ret = 0; /* already gone: what was asked for */
		else if (ret < 0 && err)
			*err = e;
	}
	hl_buf_release(&p);
	return ret;
}

static enum hl_kube_phase
coderun_phase(const char *s)
{
	if (!s || !*s)
		return HL_KUBE_PHASE_NONE;
	if (strcasecmp(s, "Pending") == 0)
		return HL_KUBE_PHASE_PENDING;
	if (strcasecmp(s, "Running") == 0)
		return HL_KUBE_PHASE_RUNNING;
	if (strcasecmp(s, "Succeeded") == 0)
		return HL_KUBE_PHASE_SUCCEEDED;
	if (strcasecmp(s, "Failed") == 0)
		return HL_KUBE_PHASE_FAILED;
	return HL_KUBE_PHASE_UNKNOWN;
}

void
hl_kube_coderun_status_read(struct hl_kube_coderun_status *out, const json_t *coderun)
{
	const json_t *st = json_object_get(coderun, "status");
	json_t *conds = json_object_get(st, "conditions");
	json_t *last =
	        json_array_size(conds) ? json_array_get(conds, json_array_size(conds) - 1) : NULL;

	memset(out, 0, sizeof(*out));
	out->name = hl_json_str(coderun, "metadata.name");
	out->namespace = hl_json_str(coderun, "metadata.namespace");
	out->uid = hl_json_str(coderun, "metadata.uid");
	out->resource_version = hl_json_str(coderun, "metadata.resourceVersion");
	out->deleting = hl_json_str(coderun, "metadata.deletionTimestamp") != NULL;
	if (!json_is_object(st))
		return;
	out->phase_text = hl_json_str(st, "phase");
	out->message = hl_json_str(st, "message");
	out->pull_request_url = hl_json_str(st, "pullRequestUrl");
	out->job_name = hl_json_str(st, "jobName");
	out->last_update = hl_json_str(st, "lastUpdate");
	out->finished_at = hl_json_str(st, "finishedAt");
	out->remediation_status = hl_json_str(st, "remediationStatus");
	out->qa_status = hl_json_str(st, "qaStatus");
	out->retry_count = hl_json_int(st, "retryCount", 0);
	out->work_completed = hl_json_bool(st, "workCompleted", false);
	if (json_is_object(last)) {
		out->condition_type = hl_json_str(last, "type");
		out->condition_status = hl_json_str(last, "status");
		out->condition_reason = hl_json_str(last, "reason");
		out->condition_message = hl_json_str(last, "message");
	}
	out->phase = coderun_phase(out->phase_text);
	if (out->phase == HL_KUBE_PHASE_NONE && out->condition_type && out->condition_status &&
	    strcasecmp(out->condition_status, "True") == 0) {
		enum hl_kube_phase p = coderun_phase(out->condition_type);

		if (p != HL_KUBE_PHASE_UNKNOWN) {
			out->phase = p;
			out->phase_text = out->condition_type;
		}
	}
	if (!out->message)
		out->message = out->condition_message;
}

const char *
hl_kube_phase_name(enum hl_kube_phase p)
{
	switch (p) {
	case HL_KUBE_PHASE_NONE:
		return "";
	case HL_KUBE_PHASE_PENDING:
		return "Pending";
	case HL_KUBE_PHASE_RUNNING:
		return "Running";
	case HL_KUBE_PHASE_SUCCEEDED:
		return "Succeeded";
	case HL_KUBE_PHASE_FAILED:
		return "Failed";
	case HL_KUBE_PHASE_UNKNOWN:
		break;
	}
	return "Unknown";
}

bool
hl_kube_phase_terminal(enum hl_kube_phase p)
{
	return p == HL_KUBE_PHASE_SUCCEEDED || p == HL_KUBE_PHASE_FAILED;
}

static int64_t
coderun_created(const json_t *o)
{
	const char *ts = hl_json_str(o, "metadata.creationTimestamp");

	return ts ? hl_time_parse_rfc3339(ts) : -1;
}

static int
coderun_cmp_created(const void *a, const void *b)
{
	int64_t x = coderun_created(*(json_t *const *)a), y = coderun_created(*(json_t *const *)b);

	if (x != y)
		return x < y ? -1 : 1;
	return strcmp(hl_json_str_or(*(json_t *const *)a, "metadata.name", ""),
	              hl_json_str_or(*(json_t *const *)b, "metadata.name", ""));
}

int
hl_kube_job_pods(const struct hl_kube *k, json_t **out, const char *ns, const char *job_name,
                 struct hl_err *err)
{
	struct hl_buf sel = HL_BUF_INIT(0);
	json_t *list = NULL, *items, **v = NULL, *sorted = NULL;
	size_t n, i;
	int ret;

	/* a Job's name (a DNS-1123 subdomain): it is a term of the label
	 * selector, where a ',' would add another */
	if (!hl_str_k8s_subdomain_valid(job_name))
		return hl_err_set(err, HL_EINVAL, "kubernetes job '%.200s' is not a valid name",
		                  job_name ? job_name : "");
	hl_buf_appendf(&sel, "job-name=%s", job_name);
	if (hl_buf_error(&sel)) {
		hl_buf_release(&sel);
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	}
	ret = hl_kube_list_pods(k, &list, ns, sel.data, err);
	hl_buf_release(&sel);
	if (ret < 0)
		return ret;
	items = json_object_get(list, "items");
	n = json_array_size(items);
	v = calloc(n ? n : 1, sizeof(*v));
	sorted = json_array();
	if (!v || !sorted) {
		ret = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++)
		v[i] = json_array_get(items, i);
	qsort(v, n, sizeof(*v), coderun_cmp_created);
	for (i = 0; i < n; i++)
		json_array_append(sorted, v[i]);
	if (json_object_set_new(list, "items", sorted) < 0) {
		sorted = NULL;
		ret = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	sorted = NULL;
	*out = list;
	list = NULL;
out:
	free(v);
	json_decref(sorted);
	json_decref(list);
	return ret;
}

/* One log to fetch: pod and container names borrowed from the PodList. */
struct coderun_log {
	const char *pod, *container;
};

int
hl_kube_job_logs(const struct hl_kube *k, struct hl_buf *out, const char *ns, const char *job_name,
                 long tail_lines, struct hl_err *err)
{
	static const char *const lists[] = { "spec.initContainers", "spec.containers" };
	struct coderun_log *logs = NULL;
	struct hl_fetch_req *reqs = NULL;
	struct hl_fetch_res *res = NULL;
	struct hl_buf *urls = NULL, *auths = NULL;
	json_t *pods = NULL, *items, *pod, *c;
	struct hl_err first = HL_ERR_INIT;
	size_t n = 0, max, npods, i, j, l, ok = 0;
	int ret;

	ret = hl_kube_job_pods(k, &pods, ns, job_name, err);
	if (ret < 0)
		return ret;
	items = json_object_get(pods, "items");
	npods = json_array_size(items);
	if (npods == 0) {
		json_decref(pods);
		return hl_err_set(err, HL_ENOTFOUND, "job '%s' has no pods", job_name);
	}
	max = CODERUN_JOB_MAX_PODS * CODERUN_JOB_MAX_CONTAINERS;
	logs = calloc(max, sizeof(*logs));
	reqs = calloc(max, sizeof(*reqs));
	res = calloc(max, sizeof(*res));
	urls = calloc(max, sizeof(*urls));
	auths = calloc(max, sizeof(*auths));
	if (!logs || !reqs || !res || !urls || !auths) {
		ret = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	for (i = npods > CODERUN_JOB_MAX_PODS ? npods - CODERUN_JOB_MAX_PODS : 0; i < npods; i++) {
		pod = json_array_get(items, i);
		for (l = 0; l < 2; l++) {
			json_array_foreach(hl_json_path(pod, lists[l]), j, c)
			{
				if (n >= max || !hl_json_str(c, "name"))
					continue;
				logs[n].pod = hl_json_str(pod, "metadata.name");
				logs[n].container = hl_json_str(c, "name");
				n++;
			}
		}
	}
	for (i = 0; i < n; i++) {
		hl_buf_init(&urls[i], 0);
		hl_buf_init(&auths[i], 0);
		hl_fetch_res_init(&res[i]);
	}
	for (i = 0; i < n; i++) {
		ret = hl_kube_pod_log_req(k, &reqs[i], &urls[i], &auths[i], ns, logs[i].pod,
		                          logs[i].container,
		                          tail_lines > 0 ? tail_lines : CODERUN_DEFAULT_TAIL, false,
		                          CODERUN_JOB_LOG_CAP, err);
		if (ret < 0)
			goto out;
	}
	if (n > 0 && (ret = hl_fetch_run(reqs, res, n, 0, err)) < 0)
		goto out;
	for (i = 0; i < n; i++) {
		struct hl_err e = HL_ERR_INIT;
		char what[300];

		snprintf(what, sizeof(what), "log of pod '%.100s' container '%.100s'", logs[i].pod,
		         logs[i].container);
		hl_buf_appendf(out, "==> pod %s container %s <==\n", logs[i].pod,
		               logs[i].container);
		if (hl_kube_check(&res[i], what, &e) < 0) {
			hl_buf_appendf(out, "(log unavailable: %s)\n", e.msg);
			if (!first.code)
				first = e;
			continue;
		}
		ok++;
		if (res[i].truncated)
			hl_buf_appendf(out, "(log truncated to its last %zu bytes)\n",
			               res[i].body.len);
		hl_buf_append(out, res[i].body.data, res[i].body.len);
		if (res[i].body.len && res[i].body.data[res[i].body.len - 1] != '\n')
			hl_buf_append_char(out, '\n');
	}
	if (hl_buf_error(out))
		ret = hl_err_set(err, -hl_buf_error(out), "output of job '%s' over its cap",
		                 job_name);
	else if (ok == 0 && first.code) {
		if (err)
			*err = first;
		ret = -first.code;
	} else if (ok == 0)
		ret = hl_err_set(err, HL_ENOTFOUND, "job '%s' has no containers", job_name);
out:
	for (i = 0; i < n; i++) {
		hl_fetch_res_release(&res[i]);
		hl_buf_release(&urls[i]);
		hl_kube_auth_release(&auths[i]);
	}
	free(logs);
	free(reqs);
	free(res);
	free(urls);
	free(auths);
	json_decref(pods);
	return ret;
}
