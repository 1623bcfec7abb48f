/*
 * payload.c - alert bodies to stored deliveries (see alerts.h): checks an
 * Alertmanager or ArgoCD notifications body and gives each alert its
 * identity. Pure (no I/O) and thread-safe.
 *
 * Invariants: an item's body is the JSON the worker reads back (one alert
 * with the group's context, or the application with its trigger); its
 * delivery id is "am-" / "argocd-" + 32 hex digits of sha256(dedup key),
 * so a resend of the same alert in any batch is the same delivery; key
 * values are escaped so no value can forge a separator.
 */
#include "alerts.h"
#include "base/buf.h"
#include "base/str.h"
#include "crypto/hmac.h"
#include "event/event.h"

#include "json/json.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
hl_alert_batch_release(struct hl_alert_batch *b)
{
	size_t i;

	for (i = 0; b->items && i < b->n; i++) {
		free(b->items[i].dedup_key);
		free(b->items[i].body);
	}
	free(b->items);
	b->items = NULL;
	b->n = 0;
}

bool
hl_alerts_owns(const char *source)
{
	return source && (strcmp(source, HL_ALERTS_SOURCE_ALERTMANAGER) == 0 ||
	                  strcmp(source, HL_ALERTS_SOURCE_ARGOCD) == 0);
}

/* A key part's longest value kept as written; a longer one (a made-up
 * startsAt, an episode of 16 KiB) is named by its hash, so the key fits
 * its buffers and the alert is stored, not refused with a 5xx that its
 * sender would retry forever. */
#define PAYLOAD_KEY_PART_MAX 256

/* Appends "|name=value" with '%', '|' and control bytes percent-encoded;
 * "|name=h:<sha256 hex>" for a value longer than PAYLOAD_KEY_PART_MAX
 * (written whole if it cannot be hashed: the key's buffer says it is too
 * long). */
static void
payload_key_part(struct hl_buf *b, const char *name, const char *v)
{
	hl_buf_appendf(b, "|%s=", name);
	if (v && strlen(v) > PAYLOAD_KEY_PART_MAX) {
		char hex[HL_SHA256_HEX_LEN + 1] = "";

		if (hl_sha256_hex(hex, v, strlen(v)) == 0) {
			hl_buf_appendf(b, "h:%s", hex);
			return;
		}
	}
	for (; v && *v; v++) {
		unsigned char c = (unsigned char)*v;
		if (c == '%' || c == '|' || c < 0x20 || c == 0x7f)
			hl_buf_appendf(b, "%%%02X", c);
		else
			hl_buf_append_char(b, (char)c);
	}
}

/* prefix + the first 32 hex digits of sha256(s). */
static void
payload_hash_id(char *out, size_t size, const char *prefix, const char *s, size_t n)
{
	char hex[HL_SHA256_HEX_LEN + 1] = "";

	if (hl_sha256_hex(hex, s, n) < 0)
		hex[0] = '\0';
	hex[32] = '\0';
	snprintf(out, size, "%s%s", prefix, hex);
}

/* The length of s cut to at most max bytes, never inside a UTF-8
 * character (the answer's JSON needs whole characters). */
static int
payload_utf8_len(const char *s, size_t max)
{
	size_t n = strnlen(s, max);

	if (n == max && s[n] != '\0')
		while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
			n--;
	return (int)n;
}

static int
payload_add(struct hl_alert_batch *b, size_t cap, struct hl_alert_item **out, struct hl_err *err)
{
	if (!b->items) {
		b->items = calloc(cap ? cap : 1, sizeof(*b->items));
		if (!b->items)
			return hl_err_set(err, HL_ENOMEM, "out of memory");
	}
	*out = &b->items[b->n++];
	return 0;
}

/* Fills the identity of an item from its dedup key (and task key). */
static int
payload_identity(struct hl_alert_item *it, const char *prefix, struct hl_buf *dedup,
                 const char *task_key, struct hl_err *err)
{
	if (hl_buf_error(dedup))
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	payload_hash_id(it->delivery_id, sizeof(it->delivery_id), prefix, dedup->data, dedup->len);
	it->dedup_key = hl_buf_detach(dedup, NULL);
	if (!it->dedup_key)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	if (task_key && hl_event_task_id(it->task_id, sizeof(it->task_id), task_key) < 0)
		it->task_id[0] = '\0';
	return 0;
}

static int
payload_body(struct hl_alert_item *it, json_t *doc, struct hl_err *err)
{
	it->body = json_dumps(doc, JSON_COMPACT);
	if (!it->body)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	it->body_len = strlen(it->body);
	return 0;
}

/* The fingerprint Alertmanager sends (hex), else a hash of the sorted
 * labels (what identifies an alert). */
static void
payload_fingerprint(char *out, size_t size, const json_t *alert)
{
	const char *fp = hl_json_str(alert, "fingerprint");
	char *labels;
	size_t i, n = fp ? strlen(fp) : 0;
	bool ok = n > 0 && n <= 64;

	for (i = 0; ok && i < n; i++)
		ok = isalnum((unsigned char)fp[i]);
	if (ok) {
		hl_strlcpy(out, fp, size);
		return;
	}
	labels = json_dumps(json_object_get(alert, "labels"), JSON_COMPACT | JSON_SORT_KEYS);
	payload_hash_id(out, size, "labels-", labels ? labels : "", labels ? strlen(labels) : 0);
	out[7 + 16 < size ? 7 + 16 : size - 1] = '\0';
	free(labels);
}

static int
payload_am_alert(struct hl_alert_batch *b, size_t cap, const json_t *body, const json_t *alert,
                 size_t idx, struct hl_err *err)
{
	const char *status = hl_json_str(alert, "status");
	const json_t *labels = json_object_get(alert, "labels");
	const char *ns, *pod, *name, *starts;
	struct hl_buf key = HL_BUF_INIT(4096), dedup = HL_BUF_INIT(4096);
	struct hl_alert_item *it = NULL;
	char fp[80];
	json_t *doc = NULL;
	int rc;

	if (!json_is_object(alert))
		return hl_err_set(err, HL_EINVAL, "alerts[%zu] is not an object", idx);
	if (!json_is_object(labels))
		return hl_err_set(err, HL_EINVAL, "alerts[%zu] has no 'labels' object", idx);
	if (!status)
		status = hl_json_str(body, "status");
	if (!status || (strcmp(status, "firing") != 0 && strcmp(status, "resolved") != 0))
		return hl_err_set(err, HL_EINVAL,
		                  "alerts[%zu]: 'status' must be firing or resolved", idx);
	ns = hl_json_str(labels, "namespace");
	pod = hl_json_str(labels, "pod");
	name = hl_json_str_or(labels, "alertname", "alert");
	starts = hl_json_str_or(alert, "startsAt", "");
	if ((rc = payload_add(b, cap, &it, err)) < 0)
		return rc;
	it->source = HL_ALERTS_SOURCE_ALERTMANAGER;
	hl_strlcpy(it->action, status, sizeof(it->action));
	snprintf(it->subject, sizeof(it->subject), "%.*s %.*s/%.*s", payload_utf8_len(name, 100),
	         name, payload_utf8_len(ns ? ns : "-", 63), ns ? ns : "-",
	         payload_utf8_len(pod ? pod : "-", 150), pod ? pod : "-");
	payload_fingerprint(fp, sizeof(fp), alert);

	hl_buf_append_str(&key, "alertmanager");
	payload_key_part(&key, "fp", fp);
	payload_key_part(&key, "starts", starts);
	hl_buf_append(&dedup, key.data, key.len);
	payload_key_part(&dedup, "status", status);
	if (!ns || !pod)
		hl_strlcpy(it->skip, "not_pod_alert", sizeof(it->skip));
	else if (!hl_str_k8s_label_valid(ns) || !hl_str_k8s_subdomain_valid(pod))
		hl_strlcpy(it->skip, "invalid_pod_name", sizeof(it->skip));
	if (hl_buf_error(&key)) {
		rc = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = payload_identity(it, "am-", &dedup, it->skip[0] ? NULL : key.data, err)) < 0)
		goto out;
	/* the alert with what the group says around it */
	doc = json_pack("{s:s, s:s?, s:s?, s:s?, s:O}", "version", "4", "receiver",
	                hl_json_str(body, "receiver"), "externalURL",
	                hl_json_str(body, "externalURL"), "groupKey", hl_json_str(body, "groupKey"),
	                "alert", alert);
	if (!doc) {
		rc = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	json_object_set_new(json_object_get(doc, "alert"), "status", json_string(status));
	json_object_set_new(json_object_get(doc, "alert"), "fingerprint", json_string(fp));
	if (!it->skip[0])
		json_object_set_new(doc, "key", json_string(key.data));
	rc = payload_body(it, doc, err);
out:
	json_decref(doc);
	hl_buf_release(&key);
	hl_buf_release(&dedup);
	return rc;
}

void
hl_alerts_screen(struct hl_alert_batch *b, const struct hl_config *cfg)
{
	size_t i;

	for (i = 0; i < b->n; i++) {
		struct hl_alert_item *it = &b->items[i];
		json_t *doc = NULL;

		/* a resolution only stops or ends its task's work and reads
		 * nothing: it reaches a task opened before the screens
		 * narrowed (the worker skips one without a task that the
		 * screens would refuse) */
		if (it->skip[0] || !it->source ||
		    strcmp(it->source, HL_ALERTS_SOURCE_ALERTMANAGER) != 0 ||
		    strcmp(it->action, "resolved") == 0 ||
		    hl_json_parse(&doc, it->body, it->body_len, NULL) < 0)
			continue;
		if (!hl_config_alert_namespace_allowed(
		            cfg,
		            hl_json_str(json_object_get(json_object_get(doc, "alert"), "labels"),
		                        "namespace"))) {
			hl_strlcpy(it->skip, "namespace_not_allowed", sizeof(it->skip));
			it->task_id[0] = '\0';
		}
		json_decref(doc);
	}
	hl_alerts_argocd_screen(b, cfg);
}

int
hl_alerts_parse_alertmanager(struct hl_alert_batch *out, const json_t *body, struct hl_err *err)
{
	struct hl_alert_batch b = { 0 };
	const json_t *alerts = json_object_get(body, "alerts"),
	             *v = json_object_get(body, "version");
	json_t *alert;
	size_t i, n;
	int rc = 0;

	if (!json_is_object(body))
		return hl_err_set(err, HL_EINVAL, "the body must be a JSON object");
	if (v && !(json_is_string(v) && strcmp(json_string_value(v), "4") == 0))
		return hl_err_set(err, HL_EINVAL,
		                  "unsupported webhook 'version' (Alertmanager sends \"4\")");
	if (!json_is_array(alerts))
		return hl_err_set(err, HL_EINVAL, "no 'alerts' array");
	n = json_array_size(alerts);
	if (n == 0)
		return hl_err_set(err, HL_EINVAL, "'alerts' is empty");
	if (n > HL_ALERTS_MAX_PER_BODY)
		return hl_err_set(err, HL_EINVAL, "more than %d alerts in one body",
		                  HL_ALERTS_MAX_PER_BODY);
	json_array_foreach(alerts, i, alert)
	{
		if ((rc = payload_am_alert(&b, n, body, alert, i, err)) < 0)
			break;
	}
	if (rc < 0) {
		hl_alert_batch_release(&b);
		return rc;
	}
	/* the alerts max_alerts cut: never sent, so the caller says so */
	v = json_object_get(body, "truncatedAlerts");
	if (json_is_integer(v) && json_integer_value(v) > 0)
		b.truncated = (int64_t)json_integer_value(v);
	*out = b;
	return 0;
}

/* ---- ArgoCD ---------------------------------------------------------------- */

static const char *
payload_first(const json_t *o, const char *const *keys)
{
	for (; *keys; keys++) {
		const char *v = hl_json_str(o, *keys);
		if (v && *v)
			return v;
	}
	return NULL;
}

/* The flat form as an Application object. */
static json_t *
payload_flat_app(const json_t *body, const char *name)
{
	static const char *const k_ns[] = { "namespace", "app_namespace", "appNamespace", NULL };
	static const char *const k_health[] = { "health", "health_status", "healthStatus", NULL };
	static const char *const k_sync[] = { "sync", "sync_status", "syncStatus", NULL };
	static const char *const k_msg[] = { "message", "operation_message", "operationMessage",
		                             NULL };
	static const char *const k_phase[] = { "phase", "operation_phase", "operationPhase", NULL };
	static const char *const k_rev[] = { "revision", "sync_revision", NULL };
	const char *phase = payload_first(body, k_phase);
	const char *sync = payload_first(body, k_sync);
	json_t *app;

	/* "sync status: Failed" in a flat body is the operation's phase */
	if (!phase && sync &&
	    (strcmp(sync, "Failed") == 0 || strcmp(sync, "SyncFailed") == 0 ||
	     strcmp(sync, "Error") == 0)) {
		phase = "Failed";
		sync = "OutOfSync";
	}
	app = json_pack("{s:{s:s, s:s?}, s:{s:{s:s?}, s:{s:s?, s:s?}}}", "metadata", "name", name,
	                "namespace", payload_first(body, k_ns), "status", "health", "status",
	                payload_first(body, k_health), "sync", "status", sync, "revision",
	                payload_first(body, k_rev));
	if (app && (phase || payload_first(body, k_msg)))
		json_object_set_new(json_object_get(app, "status"), "operationState",
		                    json_pack("{s:s?, s:s?}", "phase", phase, "message",
		                              payload_first(body, k_msg)));
	return app;
}

int
hl_alerts_parse_argocd(struct hl_alert_batch *out, const json_t *body, struct hl_err *err)
{
	static const char *const k_name[] = { "application", "app", "name", NULL };
	struct hl_alert_batch b = { 0 };
	struct hl_buf dedup = HL_BUF_INIT(4096), ep = HL_BUF_INIT(16384);
	struct hl_alert_item *it = NULL;
	json_t *app = NULL, *doc = NULL;
	const json_t *obj;
	const char *name, *ns, *phase, *health, *action;
	char *msgs = NULL;
	int rc;

	if (!json_is_object(body))
		return hl_err_set(err, HL_EINVAL, "the body must be a JSON object");
	obj = json_object_get(body, "application");
	if (!json_is_object(obj))
		obj = json_object_get(body, "app");
	if (json_is_object(obj)) {
		app = json_deep_copy(obj);
		name = hl_json_str(app, "metadata.name");
	} else {
		name = payload_first(body, k_name);
		app = name ? payload_flat_app(body, name) : NULL;
		name = app ? hl_json_str(app, "metadata.name") : NULL;
	}
	if (!name) {
		rc = hl_err_set(err, HL_EINVAL,
		                "no application: expected {\"application\": <Application>} or an "
		                "'application' name");
		goto out;
	}
	if (!hl_str_k8s_subdomain_valid(name)) {
		rc = hl_err_set(err, HL_EINVAL, "application name '%.80s' is not a Kubernetes name",
		                name);
		goto out;
	}
	ns = hl_json_str_or(app, "metadata.namespace", "argocd");
	if (!hl_str_k8s_label_valid(ns)) {
		rc = hl_err_set(err, HL_EINVAL, "application namespace '%.80s' is not a namespace",
		                ns);
		goto out;
	}
	phase = hl_json_str(app, "status.operationState.phase");
	health = hl_json_str(app, "status.health.status");
	if (phase && (strcmp(phase, "Failed") == 0 || strcmp(phase, "Error") == 0))
		action = "sync_failed";
	else if (health && strcmp(health, "Degraded") == 0)
		action = "degraded";
	else
		action = "other";
	if ((rc = payload_add(&b, 1, &it, err)) < 0)
		goto out;
	it->source = HL_ALERTS_SOURCE_ARGOCD;
	hl_strlcpy(it->action, action, sizeof(it->action));
	snprintf(it->subject, sizeof(it->subject), "%s/%s", ns, name);
	if (strcmp(action, "other") == 0)
		hl_strlcpy(it->skip, "not_degraded", sizeof(it->skip));

	/* the episode: what stays the same while one failure lasts */
	if (strcmp(action, "sync_failed") == 0) {
		hl_buf_appendf(&ep, "%s@%s",
		               hl_json_str_or(app, "status.operationState.startedAt", ""),
		               hl_json_str_or(app, "status.operationState.syncResult.revision",
		                              hl_json_str_or(app, "status.sync.revision", "")));
	} else {
		hl_buf_append_str(&ep, hl_json_str_or(app, "status.health.lastTransitionTime", ""));
		if (!ep.len)
			hl_buf_append_str(&ep, hl_json_str_or(app, "status.sync.revision", ""));
	}
	if (ep.len <= 1) {
		json_t *m =
		        json_pack("[s?, s?, s?]", hl_json_str(app, "status.operationState.message"),
		                  hl_json_str(app, "status.health.message"), health);
		msgs = m ? json_dumps(m, JSON_COMPACT) : NULL;
		json_decref(m);
		hl_buf_reset(&ep);
		if (msgs) {
			char hex[HL_SHA256_HEX_LEN + 1] = "";
			if (hl_sha256_hex(hex, msgs, strlen(msgs)) == 0)
				hl_buf_appendf(&ep, "h:%.16s", hex);
		}
	}
	hl_buf_append_str(&dedup, "argocd");
	hl_buf_appendf(&dedup, "|app=%s/%s", ns, name);
	payload_key_part(&dedup, "trigger", action);
	payload_key_part(&dedup, "episode", ep.data);
	if (hl_buf_error(&ep)) {
		rc = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	{
		char *key = hl_buf_error(&dedup) ? NULL : strdup(dedup.data);
		rc = payload_identity(it, "argocd-", &dedup, it->skip[0] ? NULL : key, err);
		free(key);
		if (rc < 0)
			goto out;
	}
	doc = json_pack("{s:s, s:s, s:O, s:O?}", "trigger", action, "key", it->dedup_key,
	                "application", app, "context", json_object_get(body, "context"));
	if (!doc) {
		rc = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	rc = payload_body(it, doc, err);
out:
	free(msgs);
	json_decref(doc);
	json_decref(app);
	hl_buf_release(&dedup);
	hl_buf_release(&ep);
	if (rc < 0) {
		hl_alert_batch_release(&b);
		return rc;
	}
	*out = b;
	return 0;
}

/* key + "|seq=<seq>" (seq > 0), or key itself. */
static int
payload_episode_key(struct hl_buf *b, const char *key, unsigned seq)
{
	char n[16];

	hl_buf_append_str(b, key);
	if (seq) {
		snprintf(n, sizeof(n), "%u", seq);
		payload_key_part(b, "seq", n);
	}
	return hl_buf_error(b) ? -1 : 0;
}

int
hl_alerts_argocd_episode_task(char *out, size_t size, const char *key, unsigned seq)
{
	struct hl_buf b = HL_BUF_INIT(4096 + 32);
	int rc = -1;

	if (key && payload_episode_key(&b, key, seq) == 0 &&
	    hl_event_task_id(out, size, b.data) == 0)
		rc = 0;
	hl_buf_release(&b);
	return rc;
}

int
hl_alerts_argocd_episode(struct hl_alert_item *it, unsigned seq, struct hl_err *err)
{
	struct hl_buf key = HL_BUF_INIT(4096 + 32);
	json_t *doc = NULL;
	char *body;
	int rc;

	if (!seq || it->skip[0] || !it->dedup_key || !it->body)
		return hl_err_set(err, HL_EINVAL, "not a new episode of an ArgoCD notification");
	if (payload_episode_key(&key, it->dedup_key, seq) < 0) {
		hl_buf_release(&key);
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	}
	if ((rc = hl_json_parse(&doc, it->body, it->body_len, err)) < 0) {
		hl_buf_release(&key);
		return rc;
	}
	if (json_object_set_new(doc, "key", json_string(key.data)) < 0 ||
	    !(body = json_dumps(doc, JSON_COMPACT))) {
		json_decref(doc);
		hl_buf_release(&key);
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	}
	json_decref(doc);
	free(it->dedup_key);
	it->dedup_key = NULL;
	free(it->body);
	it->body = body;
	it->body_len = strlen(body);
	{
		char *k = strdup(key.data);
		rc = k ? payload_identity(it, "argocd-", &key, k, err)
		       : hl_err_set(err, HL_ENOMEM, "out of memory");
		free(k);
	}
	hl_buf_release(&key);
	return rc;
}
