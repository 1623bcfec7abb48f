/*
 * cmd_pod.c - the pod-failure flow (contract section 8):
 *
 *  healer fetch-logs --pod-name P --namespace N --output-dir D [--tail N]
 *      talks to the Kubernetes API directly (no kubectl) and writes
 *      P-current.log (every container, each headed "==> container X <=="),
 *      P-previous.log (only when a container restarted or has a terminated
 *      last state), P-events.yaml (the EventList as YAML) and P-describe.txt
 *      (a kubectl-describe-like report). Exit 0 when at least one of
 *      current/events/describe was written, naming on stderr what could not
 *      be fetched; exit 1 otherwise.
 *
 *  healer spawn-remediation --alert A --task-id T --issue-file F [--target-pod P]
 *      builds the heal CodeRun (prompt = the issue file) and dispatches it
 *      per HEALER_DISPATCH, refusing while a CodeRun for the same alert and
 *      target pod is Pending/Running or has no phase yet (label selector
 *      "remediation=true,alert-type=A,target-pod=P"; without --target-pod,
 *      "...,!target-pod", so pod-less runs of one alert are deduplicated
 *      too). kubernetes mode prints the created name, directory mode the
 *      file written, none mode the manifest.
 *
 * Files are written atomically; untrusted log bytes are copied verbatim.
 */
#include "base/buf.h"
#include "base/clock.h"
#include "base/file.h"
#include "base/str.h"
#include "cmd.h"
#include "config/config.h"
#include "dispatch/coderun.h"
#include "dispatch/dispatch.h"
#include "net/kube.h"

#include "json/json.h"
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#define POD_LOG_CAP   (64u * 1024 * 1024)
#define POD_ISSUE_CAP (1u * 1024 * 1024)

/* ---- JSON -> YAML (libyaml emitter) ---- */

static int
pod_yaml_write(void *data, unsigned char *buffer, size_t size)
{
	return hl_buf_append(data, buffer, size) == 0;
}

/* True when a plain scalar would not read back as the same string. */
static bool
pod_yaml_needs_quotes(const char *s)
{
	static const char *const special[] = { "true", "false", "yes", "no",  "on",   "off",
		                               "null", "~",     "y",   "n",   "True", "False",
		                               "Yes",  "No",    "On",  "Off", "NULL", "Null" };
	char *end;
	size_t i;

	if (!*s)
		return true;
	for (i = 0; i < sizeof(special) / sizeof(special[0]); i++)
		if (strcmp(s, special[i]) == 0)
			return true;
	strtod(s, &end);
	if (*end == '\0')
		return true;
	return false;
}

static int
pod_yaml_scalar(yaml_emitter_t *em, const char *s, yaml_scalar_style_t style)
{
	yaml_event_t ev;

	if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)strlen(s), 1, 1,
	                                  style))
		return -1;
	return yaml_emitter_emit(em, &ev) ? 0 : -1;
}

static int
pod_yaml_value(yaml_emitter_t *em, const json_t *v, int depth)
{
	yaml_event_t ev;
	char num[64];

	if (depth > 64)
		return -1;
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		const char *k;
		json_t *c;

		if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
		                                         YAML_BLOCK_MAPPING_STYLE) ||
		    !yaml_emitter_emit(em, &ev))
			return -1;
		json_object_foreach((json_t *)v, k, c)
		{
			if (pod_yaml_scalar(em, k,
			                    pod_yaml_needs_quotes(k)
			                            ? YAML_DOUBLE_QUOTED_SCALAR_STYLE
			                            : YAML_ANY_SCALAR_STYLE) < 0 ||
			    pod_yaml_value(em, c, depth + 1) < 0)
				return -1;
		}
		if (!yaml_mapping_end_event_initialize(&ev) || !yaml_emitter_emit(em, &ev))
			return -1;
		return 0;
	}
	case JSON_ARRAY: {
		size_t i;
		json_t *c;

		if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
		                                          YAML_BLOCK_SEQUENCE_STYLE) ||
		    !yaml_emitter_emit(em, &ev))
			return -1;
		json_array_foreach(v, i, c)
		{
			if (pod_yaml_value(em, c, depth + 1) < 0)
				return -1;
		}
		if (!yaml_sequence_end_event_initialize(&ev) || !yaml_emitter_emit(em, &ev))
			return -1;
		return 0;
	}
	case JSON_STRING: {
		const char *s = json_string_value(v);

		return pod_yaml_scalar(em, s,
		                       pod_yaml_needs_quotes(s) ? YAML_DOUBLE_QUOTED_SCALAR_STYLE
		                                                : YAML_ANY_SCALAR_STYLE);
	}
	case JSON_INTEGER:
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return pod_yaml_scalar(em, num, YAML_PLAIN_SCALAR_STYLE);
	case JSON_REAL:
		snprintf(num, sizeof(num), "%.17g", json_real_value(v));
		return pod_yaml_scalar(em, num, YAML_PLAIN_SCALAR_STYLE);
	case JSON_TRUE:
		return pod_yaml_scalar(em, "true", YAML_PLAIN_SCALAR_STYLE);
	case JSON_FALSE:
		return pod_yaml_scalar(em, "false", YAML_PLAIN_SCALAR_STYLE);
	case JSON_NULL:
		return pod_yaml_scalar(em, "null", YAML_PLAIN_SCALAR_STYLE);
	}
	return -1;
}

static int
pod_json_to_yaml(struct hl_buf *out, const json_t *v)
{
	yaml_emitter_t em;
	yaml_event_t ev;
	int ret = -1;

	if (!yaml_emitter_initialize(&em))
		return -1;
	yaml_emitter_set_output(&em, pod_yaml_write, out);
	yaml_emitter_set_unicode(&em, 1);
	yaml_emitter_set_width(&em, -1);
	if (!yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) ||
	    !yaml_emitter_emit(&em, &ev))
		goto out;
	if (!yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) ||
	    !yaml_emitter_emit(&em, &ev))
		goto out;
	if (pod_yaml_value(&em, v, 0) < 0)
		goto out;
	if (!yaml_document_end_event_initialize(&ev, 1) || !yaml_emitter_emit(&em, &ev))
		goto out;
	if (!yaml_stream_end_event_initialize(&ev) || !yaml_emitter_emit(&em, &ev))
		goto out;
	ret = hl_buf_error(out) ? -1 : 0;
out:
	yaml_emitter_delete(&em);
	return ret;
}

/* ---- fetch-logs ---- */

struct pod_out {
	const char *dir;
	const char *pod;
	int failures;
};

static int
pod_write(struct pod_out *po, const char *suffix, const struct hl_buf *b)
{
	char path[PATH_MAX];
	struct hl_err err = HL_ERR_INIT;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s-%s", po->dir, po->pod, suffix) >=
	    sizeof(path)) {
		fprintf(stderr, "healer: could not write %s: path too long\n", suffix);
		return -1;
	}
	if (hl_file_write_atomic(path, b->data, b->len, &err) < 0) {
		fprintf(stderr, "healer: could not write '%s': %s\n", path, err.msg);
		return -1;
	}
	return 0;
}

static void
pod_note(struct pod_out *po, const char *what, const struct hl_err *err)
{
	fprintf(stderr, "healer: could not get %s for pod '%s': %s\n", what, po->pod, err->msg);
	po->failures++;
}

/* Appends every container name (init, regular, ephemeral) in order. */
static void
pod_containers(json_t *names, const json_t *pod)
{
	static const char *const lists[] = { "spec.initContainers", "spec.containers",
		                             "spec.ephemeralContainers" };
	size_t i, j;
	json_t *c;

	for (i = 0; i < 3; i++) {
		json_array_foreach(hl_json_path(pod, lists[i]), j, c)
		{
			const char *n = hl_json_str(c, "name");

			if (n)
				json_array_append_new(names, json_string(n));
		}
	}
}

/* The container's status object (from any of the status lists), or NULL. */
static json_t *
pod_container_status(const json_t *pod, const char *name)
{
	static const char *const lists[] = { "status.initContainerStatuses",
		                             "status.containerStatuses",
		                             "status.ephemeralContainerStatuses" };
	size_t i, j;
	json_t *c;

	for (i = 0; i < 3; i++) {
		json_array_foreach(hl_json_path(pod, lists[i]), j, c)
		{
			if (strcmp(hl_json_str_or(c, "name", ""), name) == 0)
				return c;
		}
	}
	return NULL;
}

static bool
pod_has_previous(const json_t *st)
{
	return st && (hl_json_int(st, "restartCount", 0) > 0 ||
	              json_is_object(hl_json_path(st, "lastState.terminated")));
}

/*
 * Fetches the current log of every container in names and the previous log
 * of every container in prevnames, all in one parallel batch, into cur and
 * prev (one "==> container X <==" section each). Returns through cur_ok and
 * prev_ok how many sections succeeded.
 */
static void
pod_fetch_logs(const struct hl_kube *k, struct pod_out *po, const char *ns, const json_t *names,
               const json_t *prevnames, long tail, struct hl_buf *cur, struct hl_buf *prev,
               int *cur_ok, int *prev_ok)
{
	size_t nc = json_array_size(names), np = json_array_size(prevnames), n = nc + np, i;
	struct hl_fetch_req *reqs = calloc(n ? n : 1, sizeof(*reqs));
	struct hl_fetch_res *res = calloc(n ? n : 1, sizeof(*res));
	struct hl_buf *urls = calloc(n ? n : 1, sizeof(*urls));
	struct hl_buf *auths = calloc(n ? n : 1, sizeof(*auths));
	struct hl_err err = HL_ERR_INIT;

	*cur_ok = *prev_ok = 0;
	if (!reqs || !res || !urls || !auths) {
		err.code = HL_ENOMEM;
		hl_strlcpy(err.msg, "out of memory", sizeof(err.msg));
		pod_note(po, "logs", &err);
		goto out;
	}
	for (i = 0; i < n; i++) {
		bool previous = i >= nc;
		const char *c = json_string_value(previous ? json_array_get(prevnames, i - nc)
		                                           : json_array_get(names, i));

		hl_buf_init(&urls[i], 0);
		hl_buf_init(&auths[i], 0);
		if (hl_kube_pod_log_req(k, &reqs[i], &urls[i], &auths[i], ns, po->pod, c, tail,
		                        previous, POD_LOG_CAP, &err) < 0) {
			pod_note(po, "logs", &err);
			n = i + 1; /* release what was initialized */
			goto out;
		}
	}
	if (hl_fetch_run(reqs, res, n, 0, &err) < 0) {
		pod_note(po, "logs", &err);
		goto out;
	}
	for (i = 0; i < n; i++) {
		bool previous = i >= nc;
		const char *c = json_string_value(previous ? json_array_get(prevnames, i - nc)
		                                           : json_array_get(names, i));
		struct hl_buf *out = previous ? prev : cur;
		struct hl_err e = HL_ERR_INIT;
		char what[160];

		snprintf(what, sizeof(what), "%s log of container '%s'",
		         previous ? "previous" : "current", c ? c : "(default)");
		hl_buf_appendf(out, "==> container %s <==\n", c ? c : "(default)");
		if (hl_kube_check(&res[i], what, &e) < 0) {
			hl_buf_appendf(out, "(log unavailable: %s)\n", e.msg);
			pod_note(po, what, &e);
			continue;
		}
		if (previous)
			(*prev_ok)++;
		else
			(*cur_ok)++;
		if (res[i].truncated)
			hl_buf_appendf(out, "(log truncated to its last %zu bytes)\n",
			               res[i].body.len);
		hl_buf_append(out, res[i].body.data, res[i].body.len);
		if (res[i].body.len && res[i].body.data[res[i].body.len - 1] != '\n')
			hl_buf_append_char(out, '\n');
	}
out:
	for (i = 0; res && urls && auths && i < n; i++) {
		hl_fetch_res_release(&res[i]);
		hl_buf_release(&urls[i]);
		if (auths[i].len)
			explicit_bzero(auths[i].data, auths[i].len);
		hl_buf_release(&auths[i]);
	}
	free(reqs);
	free(res);
	free(urls);
	free(auths);
}

static const char *
pod_age(char *out, size_t size, const char *ts)
{
	int64_t t = ts ? hl_time_parse_rfc3339(ts) : -1, d;

	if (t < 0) {
		hl_strlcpy(out, "<unknown>", size);
		return out;
	}
	d = (hl_time_wall_ms() - t) / 1000;
	if (d < 0)
		d = 0;
	if (d < 120)
		snprintf(out, size, "%llds", (long long)d);
	else if (d < 7200)
		snprintf(out, size, "%lldm", (long long)(d / 60));
	else if (d < 172800)
		snprintf(out, size, "%lldh", (long long)(d / 3600));
	else
		snprintf(out, size, "%lldd", (long long)(d / 86400));
	return out;
}

static void
pod_describe_state(struct hl_buf *b, const char *title, const json_t *state)
{
	static const char *const kinds[] = { "running", "waiting", "terminated" };
	size_t i;

	for (i = 0; i < 3; i++) {
		json_t *s = json_object_get(state, kinds[i]);

		if (!json_is_object(s))
			continue;
		hl_buf_appendf(b, "    %-16s%c%s\n", title, kinds[i][0] - 32, kinds[i] + 1);
		if (hl_json_str(s, "reason"))
			hl_buf_appendf(b, "      Reason:       %s\n", hl_json_str(s, "reason"));
		if (hl_json_str(s, "message"))
			hl_buf_appendf(b, "      Message:      %s\n", hl_json_str(s, "message"));
		if (json_object_get(s, "exitCode"))
			hl_buf_appendf(b, "      Exit Code:    %lld\n",
			               (long long)hl_json_int(s, "exitCode", 0));
		if (json_object_get(s, "signal"))
			hl_buf_appendf(b, "      Signal:       %lld\n",
			               (long long)hl_json_int(s, "signal", 0));
		if (hl_json_str(s, "startedAt"))
			hl_buf_appendf(b, "      Started:      %s\n", hl_json_str(s, "startedAt"));
		if (hl_json_str(s, "finishedAt"))
			hl_buf_appendf(b, "      Finished:     %s\n", hl_json_str(s, "finishedAt"));
		return;
	}
}

static void
pod_describe_resources(struct hl_buf *b, const char *title, const json_t *res)
{
	const char *k;
	json_t *v;

	if (!json_is_object(res) || json_object_size(res) == 0)
		return;
	hl_buf_appendf(b, "    %s:\n", title);
	json_object_foreach((json_t *)res, k, v)
	{
		hl_buf_appendf(b, "      %s:  %s\n", k,
		               json_is_string(v) ? json_string_value(v) : "?");
	}
}

static void
pod_describe_container(struct hl_buf *b, const json_t *pod, const json_t *c)
{
	const char *name = hl_json_str_or(c, "name", "");
	json_t *st = pod_container_status(pod, name);
	json_t *ports = json_object_get(c, "ports"), *p;
	size_t i;

	hl_buf_appendf(b, "  %s:\n", name);
	hl_buf_appendf(b, "    Image:          %s\n", hl_json_str_or(c, "image", ""));
	if (st && hl_json_str(st, "imageID"))
		hl_buf_appendf(b, "    Image ID:       %s\n", hl_json_str(st, "imageID"));
	json_array_foreach(ports, i, p)
	{
		hl_buf_appendf(b, "    Port:           %lld/%s\n",
		               (long long)hl_json_int(p, "containerPort", 0),
		               hl_json_str_or(p, "protocol", "TCP"));
	}
	if (st) {
		pod_describe_state(b, "State:", json_object_get(st, "state"));
		pod_describe_state(b, "Last State:", json_object_get(st, "lastState"));
		hl_buf_appendf(b, "    Ready:          %s\n",
		               hl_json_bool(st, "ready", false) ? "True" : "False");
		hl_buf_appendf(b, "    Restart Count:  %lld\n",
		               (long long)hl_json_int(st, "restartCount", 0));
	} else {
		hl_buf_append_str(b, "    State:          <no status>\n");
	}
	pod_describe_resources(b, "Limits", hl_json_path(c, "resources.limits"));
	pod_describe_resources(b, "Requests", hl_json_path(c, "resources.requests"));
}

static void
pod_describe(struct hl_buf *b, const json_t *pod, const json_t *events)
{
	const char *k;
	json_t *v, *it;
	size_t i;
	char age[32];
	bool first = true;

	hl_buf_appendf(b, "Name:             %s\n", hl_json_str_or(pod, "metadata.name", ""));
	hl_buf_appendf(b, "Namespace:        %s\n", hl_json_str_or(pod, "metadata.namespace", ""));
	hl_buf_appendf(b, "Priority:         %lld\n",
	               (long long)hl_json_int(pod, "spec.priority", 0));
	if (hl_json_str(pod, "spec.serviceAccountName"))
		hl_buf_appendf(b, "Service Account:  %s\n",
		               hl_json_str(pod, "spec.serviceAccountName"));
	hl_buf_appendf(b, "Node:             %s/%s\n",
	               hl_json_str_or(pod, "spec.nodeName", "<none>"),
	               hl_json_str_or(pod, "status.hostIP", ""));
	if (hl_json_str(pod, "status.startTime"))
		hl_buf_appendf(b, "Start Time:       %s\n", hl_json_str(pod, "status.startTime"));
	hl_buf_append_str(b, "Labels:           ");
	json_object_foreach(hl_json_path(pod, "metadata.labels"), k, v)
	{
		hl_buf_appendf(b, "%s%s=%s\n", first ? "" : "                  ", k,
		               json_is_string(v) ? json_string_value(v) : "");
		first = false;
	}
	if (first)
		hl_buf_append_str(b, "<none>\n");
	hl_buf_appendf(b, "Status:           %s\n", hl_json_str_or(pod, "status.phase", "Unknown"));
	if (hl_json_str(pod, "status.reason"))
		hl_buf_appendf(b, "Reason:           %s\n", hl_json_str(pod, "status.reason"));
	if (hl_json_str(pod, "status.message"))
		hl_buf_appendf(b, "Message:          %s\n", hl_json_str(pod, "status.message"));
	hl_buf_appendf(b, "IP:               %s\n", hl_json_str_or(pod, "status.podIP", ""));
	json_array_foreach(hl_json_path(pod, "metadata.ownerReferences"), i, it)
	{
		hl_buf_appendf(b, "Controlled By:    %s/%s\n", hl_json_str_or(it, "kind", ""),
		               hl_json_str_or(it, "name", ""));
	}
	if (json_array_size(hl_json_path(pod, "spec.initContainers"))) {
		hl_buf_append_str(b, "Init Containers:\n");
		json_array_foreach(hl_json_path(pod, "spec.initContainers"), i, it)
		        pod_describe_container(b, pod, it);
	}
	hl_buf_append_str(b, "Containers:\n");
	json_array_foreach(hl_json_path(pod, "spec.containers"), i, it)
	        pod_describe_container(b, pod, it);
	hl_buf_append_str(b, "Conditions:\n  Type              Status\n");
	json_array_foreach(hl_json_path(pod, "status.conditions"), i, it)
	{
		hl_buf_appendf(b, "  %-17s %s\n", hl_json_str_or(it, "type", ""),
		               hl_json_str_or(it, "status", ""));
	}
	if (hl_json_str(pod, "status.qosClass"))
		hl_buf_appendf(b, "QoS Class:        %s\n", hl_json_str(pod, "status.qosClass"));
	hl_buf_append_str(b, "Events:\n");
	if (!events) {
		hl_buf_append_str(b, "  <unavailable>\n");
		return;
	}
	if (json_array_size(json_object_get(events, "items")) == 0) {
		hl_buf_append_str(b, "  <none>\n");
		return;
	}
	hl_buf_append_str(b, "  Type     Reason     Age    From     Message\n"
	                     "  ----     ------     ----   ----     -------\n");
	json_array_foreach(json_object_get(events, "items"), i, it)
	{
		const char *ts = hl_json_str(it, "lastTimestamp");

		if (!ts)
			ts = hl_json_str(it, "eventTime");
		if (!ts)
			ts = hl_json_str(it, "metadata.creationTimestamp");
		hl_buf_appendf(b, "  %-8s %-10s %-6s %-8s %s", hl_json_str_or(it, "type", ""),
		               hl_json_str_or(it, "reason", ""), pod_age(age, sizeof(age), ts),
		               hl_json_str_or(it, "source.component",
		                              hl_json_str_or(it, "reportingComponent", "")),
		               hl_json_str_or(it, "message", ""));
		if (hl_json_int(it, "count", 1) > 1)
			hl_buf_appendf(b, " (x%lld)", (long long)hl_json_int(it, "count", 1));
		hl_buf_append_char(b, '\n');
	}
}

static int
pod_load_kube(struct hl_kube **out)
{
	struct hl_err err = HL_ERR_INIT;
	struct hl_config *cfg = NULL;
	int ret;

	if (hl_config_load(&cfg, NULL, NULL, 0, &err) < 0)
		return hl_cmd_fail("invalid configuration: %s", err.msg);
	ret = hl_kube_load(out, cfg->kubeconfig, &err);
	hl_config_free(cfg);
	if (ret < 0)
		return hl_cmd_fail("%s", err.msg);
	return 0;
}

int
hl_cmd_fetch_logs(int argc, char **argv)
{
	static const struct hl_opt opts[] = {
		{ "pod-name", true, 'p' }, { "namespace", true, 'n' }, { "output-dir", true, 'o' },
		{ "tail", true, 't' },     { NULL, false, 0 },
	};
	const char *pod = NULL, *ns = NULL, *dir = NULL, *arg;
	struct hl_err err = HL_ERR_INIT;
	struct hl_kube *k = NULL;
	json_t *podj = NULL, *events = NULL, *names = NULL;
	struct hl_buf cur = HL_BUF_INIT(0), prev = HL_BUF_INIT(0), ev = HL_BUF_INIT(0),
	              desc = HL_BUF_INIT(0);
	struct pod_out po;
	long tail = 10000;
	int idx = 1, opt, wrote = 0, rc = 1;
	bool down = false;
	size_t i;
	json_t *n;

	while ((opt = hl_cmd_getopt("fetch-logs", argc, argv, opts, &arg, &idx)) != -1) {
		char *end;

		switch (opt) {
		case '?':
			return 2;
		case 'p':
			pod = arg;
			break;
		case 'n':
			ns = arg;
			break;
		case 'o':
			dir = arg;
			break;
		case 't':
			errno = 0;
			tail = strtol(arg, &end, 10);
			if (errno || *end || tail < 0 || end == arg)
				return hl_cmd_usage_error("fetch-logs",
				                          "--tail '%s' must be a number >= 0", arg);
			break;
		}
	}
	if (idx < argc)
		return hl_cmd_usage_error("fetch-logs", "unexpected argument '%s'", argv[idx]);
	if (!pod || !*pod)
		return hl_cmd_usage_error("fetch-logs", "missing --pod-name");
	if (!ns || !*ns)
		return hl_cmd_usage_error("fetch-logs", "missing --namespace");
	if (!dir || !*dir)
		return hl_cmd_usage_error("fetch-logs", "missing --output-dir");
	if (strchr(pod, '/') || strcmp(pod, "..") == 0 || strcmp(pod, ".") == 0)
		return hl_cmd_usage_error("fetch-logs", "--pod-name '%s' is not a pod name", pod);
	if (hl_file_mkdirs(dir, &err) < 0)
		return hl_cmd_fail("output directory '%s': %s", dir, err.msg);
	if (pod_load_kube(&k) != 0)
		return 1;
	po.dir = dir;
	po.pod = pod;
	po.failures = 0;

	names = json_array();
	if (hl_kube_get_pod(k, &podj, ns, pod, &err) < 0) {
		pod_note(&po, "the pod object", &err);
		podj = NULL;
		/* the API is unreachable: do not try every other call too */
		down = err.code == HL_EIO || err.code == HL_ETIMEOUT || err.code == HL_EAUTH;
		json_array_append_new(names, json_null()); /* the default container */
	} else {
		pod_containers(names, podj);
	}
	err.code = 0;
	if (down) {
		events = NULL;
	} else if (hl_kube_list_events(k, &events, ns, pod, &err) < 0) {
		pod_note(&po, "events", &err);
		events = NULL;
	}

	/* logs: every container's current log and, for containers that
	 * restarted, the previous one, in one parallel batch; skipped when the
	 * API is unreachable */
	if (!down) {
		json_t *prevnames = json_array();
		int cur_ok = 0, prev_ok = 0;

		json_array_foreach(names, i, n)
		{
			if (podj &&
			    pod_has_previous(pod_container_status(podj, json_string_value(n))))
				json_array_append(prevnames, n);
		}
		pod_fetch_logs(k, &po, ns, names, prevnames, tail, &cur, &prev, &cur_ok, &prev_ok);
		if (cur_ok > 0 && pod_write(&po, "current.log", &cur) == 0)
			wrote++;
		if (prev_ok > 0)
			pod_write(&po, "previous.log", &prev);
		json_decref(prevnames);
	}

	if (events) {
		json_t *items = json_object_get(events, "items");
		json_t *list = json_is_array(items)
		                       ? json_pack("{s:s, s:O, s:s, s:{s:s}}", "apiVersion", "v1",
		                                   "items", items, "kind", "List", "metadata",
		                                   "resourceVersion", "")
		                       : json_pack("{s:s, s:[], s:s, s:{s:s}}", "apiVersion", "v1",
		                                   "items", "kind", "List", "metadata",
		                                   "resourceVersion", "");

		if (list && pod_json_to_yaml(&ev, list) == 0) {
			if (pod_write(&po, "events.yaml", &ev) == 0)
				wrote++;
		} else {
			fprintf(stderr, "healer: could not render events of pod '%s' as YAML\n",
			        pod);
		}
		json_decref(list);
	}

	if (podj) {
		pod_describe(&desc, podj, events);
		if (!hl_buf_error(&desc) && pod_write(&po, "describe.txt", &desc) == 0)
			wrote++;
	}

	if (wrote > 0) {
		printf("wrote diagnostics for pod '%s' to '%s'\n", pod, dir);
		rc = 0;
	} else {
		rc = hl_cmd_fail("could not fetch any diagnostics for pod '%s' in namespace '%s'",
		                 pod, ns);
	}
	json_decref(podj);
	json_decref(events);
	json_decref(names);
	hl_buf_release(&cur);
	hl_buf_release(&prev);
	hl_buf_release(&ev);
	hl_buf_release(&desc);
	hl_kube_free(k);
	return rc;
}

/* ---- spawn-remediation ---- */

int
hl_cmd_spawn_remediation(int argc, char **argv)
{
	static const struct hl_opt opts[] = {
		{ "alert", true, 'a' },      { "task-id", true, 't' }, { "issue-file", true, 'i' },
		{ "target-pod", true, 'p' }, { NULL, false, 0 },
	};
	const char *alert = NULL, *task = NULL, *issue = NULL, *target = NULL, *arg;
	struct hl_err err = HL_ERR_INIT;
	struct hl_config *cfg = NULL;
	struct hl_dispatch *d = NULL;
	struct hl_buf prompt = HL_BUF_INIT(POD_ISSUE_CAP), sel = HL_BUF_INIT(0);
	struct hl_heal_spec hs;
	enum hl_dispatch_outcome outcome;
	json_t *manifest = NULL, *active = NULL;
	char name[64], la[64], lp[64];
	struct stat st;
	int idx = 1, opt, rc = 1;

	while ((opt = hl_cmd_getopt("spawn-remediation", argc, argv, opts, &arg, &idx)) != -1) {
		switch (opt) {
		case '?':
			return 2;
		case 'a':
			alert = arg;
			break;
		case 't':
			task = arg;
			break;
		case 'i':
			issue = arg;
			break;
		case 'p':
			target = arg;
			break;
		}
	}
	if (idx < argc)
		return hl_cmd_usage_error("spawn-remediation", "unexpected argument '%s'",
		                          argv[idx]);
	if (!alert || !*alert)
		return hl_cmd_usage_error("spawn-remediation", "missing --alert");
	if (!task || !*task)
		return hl_cmd_usage_error("spawn-remediation", "missing --task-id");
	if (!issue || !*issue)
		return hl_cmd_usage_error("spawn-remediation", "missing --issue-file");
	if (stat(issue, &st) < 0 || !S_ISREG(st.st_mode))
		return hl_cmd_fail("issue file '%s' does not exist", issue);
	if (hl_file_read(&prompt, issue, &err) < 0) {
		hl_buf_release(&prompt);
		return hl_cmd_fail("issue file '%s': %s", issue, err.msg);
	}
	if (hl_config_load(&cfg, NULL, NULL, 0, &err) < 0) {
		rc = hl_cmd_fail("invalid configuration: %s", err.msg);
		goto out;
	}
	if (hl_dispatch_open(&d, cfg, &err) < 0) {
		rc = hl_cmd_fail("%s", err.msg);
		goto out;
	}

	/* one active remediation per alert and target pod */
	hl_str_label_value(la, alert);
	hl_buf_appendf(&sel, "remediation=true,alert-type=%s", la);
	if (target && *target) {
		hl_str_label_value(lp, target);
		hl_buf_appendf(&sel, ",target-pod=%s", lp);
	} else {
		hl_buf_append_str(&sel, ",!target-pod");
	}
	if (hl_dispatch_find_active(d, &active, sel.data, &err) < 0) {
		rc = hl_cmd_fail("checking for an active remediation: %s", err.msg);
		goto out;
	}
	if (json_array_size(active) > 0) {
		json_t *a = json_array_get(active, 0);

		rc = hl_cmd_fail("remediation CodeRun '%s' for alert '%s'%s%s is still %s; not "
		                 "creating another",
		                 hl_json_str_or(a, "metadata.name", "?"), alert,
		                 target ? " and pod " : "", target ? target : "",
		                 hl_json_str_or(a, "status.phase", "Pending")[0]
		                         ? hl_json_str_or(a, "status.phase", "Pending")
		                         : "Pending");
		goto out;
	}

	memset(&hs, 0, sizeof(hs));
	hs.alert = alert;
	hs.task_id = task;
	hs.issue_file = issue;
	hs.prompt = prompt.data;
	hs.target_pod = target;
	hs.repository = cfg->repository_list ? cfg->repository_list[0] : NULL;
	hs.cli = cfg->cli;
	hs.model = cfg->model;
	hs.namespace = cfg->namespace;
	if (hl_coderun_build_heal(&manifest, &hs, &err) < 0) {
		rc = hl_cmd_fail("%s", err.msg);
		goto out;
	}
	if (hl_dispatch_submit(d, &outcome, name, manifest, &err) < 0) {
		rc = hl_cmd_fail("creating the remediation CodeRun: %s", err.msg);
		goto out;
	}
	switch (outcome) {
	case HL_DISPATCH_DRY_RUN: {
		char *text = hl_json_dump_sorted(manifest, true);

		printf("%s\n", text ? text : "{}");
		free(text);
		fprintf(stderr, "healer: dispatch is 'none': CodeRun '%s' not created\n", name);
		break;
	}
	case HL_DISPATCH_EXISTING:
		printf("coderun %s already exists\n", name);
		break;
	case HL_DISPATCH_CREATED:
		if (d->mode == HL_DISPATCH_DIRECTORY)
			printf("coderun %s written to %s/%s.json\n", name, d->dir, name);
		else
			printf("coderun %s created in namespace %s\n", name, d->namespace);
		break;
	}
	rc = 0;
out:
	json_decref(manifest);
	json_decref(active);
	hl_buf_release(&prompt);
	hl_buf_release(&sel);
	hl_dispatch_close(d);
	hl_config_free(cfg);
	return rc;
}
