/*
 * describe.c - the `kubectl describe pod`-like report and the container
 * facts of a Pod object; see describe.h. Reads only the fields it prints,
 * so a partial or odd Pod object still gives a report.
 */
#include "describe.h"

#include "base/clock.h"
#include "base/str.h"

#include "json/json.h"
#include <stdint.h>
#include <stdio.h>
#include <string.h>

size_t
hl_diag_pod_containers(json_t *names, const json_t *pod, size_t max)
{
	static const char *const lists[] = { "spec.initContainers", "spec.containers",
		                             "spec.ephemeralContainers" };
	size_t i, j, total = 0;
	json_t *c;

	for (i = 0; i < 3; i++) {
		json_array_foreach(hl_json_path(pod, lists[i]), j, c)
		{
			const char *n = hl_json_str(c, "name");

			if (!n)
				continue;
			if (total++ < max)
				json_array_append_new(names, json_string(n));
		}
	}
	return total;
}

json_t *
hl_diag_container_status(const json_t *pod, const char *name)
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

bool
hl_diag_has_previous(const json_t *st)
{
	return st && (hl_json_int(st, "restartCount", 0) > 0 ||
	              json_is_object(hl_json_path(st, "lastState.terminated")));
}

static const char *
describe_age(char *out, size_t size, const char *ts)
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
describe_state(struct hl_buf *b, const char *title, const json_t *state)
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
describe_resources(struct hl_buf *b, const char *title, const json_t *res)
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
describe_container(struct hl_buf *b, const json_t *pod, const json_t *c)
{
	const char *name = hl_json_str_or(c, "name", "");
	json_t *st = hl_diag_container_status(pod, name);
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
		describe_state(b, "State:", json_object_get(st, "state"));
		describe_state(b, "Last State:", json_object_get(st, "lastState"));
		hl_buf_appendf(b, "    Ready:          %s\n",
		               hl_json_bool(st, "ready", false) ? "True" : "False");
		hl_buf_appendf(b, "    Restart Count:  %lld\n",
		               (long long)hl_json_int(st, "restartCount", 0));
	} else {
		hl_buf_append_str(b, "    State:          <no status>\n");
	}
	describe_resources(b, "Limits", hl_json_path(c, "resources.limits"));
	describe_resources(b, "Requests", hl_json_path(c, "resources.requests"));
}

/* The first HL_DIAG_MAX_CONTAINERS containers of list, then how many more
 * there are (each one looks its status up in every status list). */
static void
describe_containers(struct hl_buf *b, const json_t *pod, const json_t *list)
{
	size_t i, n = json_array_size(list);

	for (i = 0; i < n && i < HL_DIAG_MAX_CONTAINERS; i++)
		describe_container(b, pod, json_array_get(list, i));
	if (n > HL_DIAG_MAX_CONTAINERS)
		hl_buf_appendf(b, "  (%zu more containers not shown)\n",
		               n - HL_DIAG_MAX_CONTAINERS);
}

void
hl_diag_describe_pod(struct hl_buf *b, const json_t *pod, const json_t *events)
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
		describe_containers(b, pod, hl_json_path(pod, "spec.initContainers"));
	}
	hl_buf_append_str(b, "Containers:\n");
	describe_containers(b, pod, hl_json_path(pod, "spec.containers"));
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
		               hl_json_str_or(it, "reason", ""), describe_age(age, sizeof(age), ts),
		               hl_json_str_or(it, "source.component",
		                              hl_json_str_or(it, "reportingComponent", "")),
		               hl_json_str_or(it, "message", ""));
		if (hl_json_int(it, "count", 1) > 1)
			hl_buf_appendf(b, " (x%lld)", (long long)hl_json_int(it, "count", 1));
		hl_buf_append_char(b, '\n');
	}
}
