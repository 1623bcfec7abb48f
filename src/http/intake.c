/*
 * intake.c - the delivery routes: POST /webhook and the sensor routes
 * POST /api/remediate/{ci-failure,security-alert}.
 *
 * Webhook checks, in order (contract section 4): body size (server.c) ->
 * signature over the raw body when GITHUB_WEBHOOK_SECRET is set (401) ->
 * content type (415) -> X-GitHub-Event (400) -> JSON (400). Accepted
 * content types: application/json (any parameters) and, as GitHub can be
 * configured to send, application/x-www-form-urlencoded with the JSON in a
 * `payload=` field (the signature covers the form body; the JSON is stored).
 * Then the event is normalized: an unknown event name is stored and skipped
 * ("event_not_handled"), under "other" when it is none of GitHub's
 * (hl_event_stored_name: status and metrics stay bounded); a known event
 * whose payload lacks what the event requires (or whose repository is not a GitHub owner/name) is
 * stored and skipped ("invalid_payload", the answer's "message" says why); otherwise the skip
 * reason comes from hl_event_skip_reason (a bot's or skip-tagged CI failure
 * is stored for the worker: it may be an active task's result). Deliveries without
 * X-GitHub-Delivery get "gen-<sha256(event, body)>" so a resend of the same
 * bytes deduplicates.
 *
 * Sensor routes: bearer token when HEALER_API_TOKEN is set (401); JSON or
 * no content type (415 otherwise); payload bare or wrapped as {"body": ...};
 * event from X-GitHub-Event or hl_event_guess_name; ci-failure takes
 * workflow_run, workflow_job and check_run, security-alert takes the four
 * alert events (400 otherwise). Delivery id: X-GitHub-Delivery, else
 * "sensor-<sha256(event, payload)>", so a sensor retry is a duplicate.
 *
 * The webhook's payload tree is built in the thread's jansson arena
 * (json/fast.h): the scope spans parse -> normalize -> decref and produces
 * nothing that is freed with free().
 *
 * Identity is decided here, once (event/identity.c): the intake key (a CI
 * failure's failure key, else the event's dedup key), and for events that
 * will be remediated the remediation key and the task id ("hl-<20 hex of
 * sha256(intake key or delivery id)>", stable across deliveries of the
 * same event and of the same failure: a job's check run after its
 * workflow_job is a duplicate naming the job's task); all three are
 * stored with the delivery.
 */
#include "base/log.h"
#include "base/str.h"
#include "crypto/hmac.h"
#include "decisions.h"
#include "event/event.h"
#include "http_impl.h"

#include "json/fast.h"
#include "json/json.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The CI sensor's route. */
static bool
intake_ci_route(const struct http_req *r)
{
	return strcmp(r->rt->name, "ci_failure") == 0;
}

/* A sensor's route whose answer waits for the decision: the CI and the
 * security sensor's. */
static bool
intake_decides(const struct http_req *r)
{
	return intake_ci_route(r) || strcmp(r->rt->name, "security_alert") == 0;
}

static const char *
intake_header(struct http_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

/*
 * A header's value without the spaces and tabs around it (RFC 9110 section
 * 5.5: they are not part of the value), copied into buf; a value that does
 * not fit buf trimmed is returned as it came (too long for the header that
 * reads it, it is refused as malformed). NULL when the header is absent.
 */
static const char *
intake_header_value(struct http_req *r, const char *name, char *buf, size_t size)
{
	const char *v = intake_header(r, name), *e;
	size_t n;

	if (!v)
		return NULL;
	while (*v == ' ' || *v == '\t')
		v++;
	e = v + strlen(v);
	while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	n = (size_t)(e - v);
	if (n >= size)
		return intake_header(r, name);
	memcpy(buf, v, n);
	buf[n] = '\0';
	return buf;
}

/* True when the media type of ctype (before ';') is type, case-insensitive. */
static bool
intake_ctype_is(const char *ctype, const char *type)
{
	size_t n = strlen(type);

	if (!ctype)
		return false;
	while (*ctype == ' ' || *ctype == '\t')
		ctype++;
	if (strncasecmp(ctype, type, n) != 0)
		return false;
	ctype += n;
	while (*ctype == ' ' || *ctype == '\t')
		ctype++;
	return *ctype == '\0' || *ctype == ';';
}

static bool
intake_token_ok(const char *s, size_t max, bool lower_only)
{
	size_t n = 0;

	for (; *s; s++, n++) {
		unsigned char c = (unsigned char)*s;

		if (lower_only ? !(islower(c) || isdigit(c) || c == '_')
		               : !(isalnum(c) || c == '-' || c == '_' || c == '.' || c == ':'))
			return false;
	}
	return n > 0 && n <= max;
}

static int
intake_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Extracts and URL-decodes the payload= field of a form body; malloc'd. */
static char *
intake_form_payload(const char *body, size_t len, size_t *out_len)
{
	const char *p = body, *end = body + len, *v = NULL, *ve;
	struct hl_buf b = HL_BUF_INIT(0);
	int hi, lo;

	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));

		ve = amp ? amp : end;
		if ((size_t)(ve - p) >= 8 && memcmp(p, "payload=", 8) == 0) {
			v = p + 8;
			break;
		}
		p = amp ? amp + 1 : end;
	}
	if (!v)
		return NULL;
	for (; v < ve; v++) {
		if (*v == '+') {
			hl_buf_append_char(&b, ' ');
		} else if (*v == '%' && ve - v >= 3 && (hi = intake_hexval(v[1])) >= 0 &&
		           (lo = intake_hexval(v[2])) >= 0) {
			hl_buf_append_char(&b, (char)(hi * 16 + lo));
			v += 2;
		} else {
			hl_buf_append_char(&b, *v);
		}
	}
	return hl_buf_detach(&b, out_len);
}

/*
 * The request headers stored with a delivery: an allowlist of those that
 * identify it or its sender (GitHub's delivery headers, the client and
 * the proxy in front of healer), never the credentials a client may send
 * in any other header (Authorization, Cookie, X-Api-Key, signatures).
 */
static const char *const intake_stored_headers[] = {
	"X-GitHub-Event",
	"X-GitHub-Delivery",
	"X-GitHub-Hook-ID",
	"X-GitHub-Hook-Installation-Target-ID",
	"X-GitHub-Hook-Installation-Target-Type",
	"X-GitHub-Enterprise-Host",
	"X-GitHub-Enterprise-Version",
	"User-Agent",
	"Content-Type",
	"Content-Length",
	"X-Forwarded-For",
	"X-Forwarded-Proto",
	"X-Real-IP",
	"X-Request-ID",
	NULL,
};

static bool
intake_header_stored(const char *key)
{
	const char *const *n;

	for (n = intake_stored_headers; key && *n; n++)
		if (strcasecmp(key, *n) == 0)
			return true;
	return false;
}

static enum MHD_Result
intake_header_json(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct hl_buf *b = cls;

	if (!intake_header_stored(key))
		return MHD_YES;
	/* UTF-8 whatever the client sent: the stored headers are JSON (and
	 * PostgreSQL refuses text that is not UTF-8) */
	hl_buf_append_str(b, b->len > 1 ? ",\"" : "\"");
	hl_http_append_utf8_escaped(b, key, strlen(key));
	hl_buf_append_str(b, "\":\"");
	hl_http_append_utf8_escaped(b, value ? value : "", value ? strlen(value) : 0);
	hl_buf_append_char(b, '"');
	return MHD_YES;
}

static char *
intake_headers(struct http_req *r)
{
	struct hl_buf b = HL_BUF_INIT(64 * 1024);

	hl_buf_append_char(&b, '{');
	MHD_get_connection_values(r->conn, MHD_HEADER_KIND, intake_header_json, &b);
	hl_buf_append_char(&b, '}');
	return hl_buf_detach(&b, NULL);
}

/* "prefix" + the first 32 hex digits of sha256(a "\n" b). */
static void
intake_hash_id(char *out, size_t size, const char *prefix, const char *a, const char *b,
               size_t blen)
{
	struct hl_buf t = HL_BUF_INIT(0);
	char hex[HL_SHA256_HEX_LEN + 1] = "";

	hl_buf_append_str(&t, a);
	hl_buf_append_char(&t, '\n');
	hl_buf_append(&t, b, blen);
	if (hl_buf_error(&t) || hl_sha256_hex(hex, t.data, t.len) < 0)
		hex[0] = '\0';
	hex[32] = '\0';
	snprintf(out, size, "%s%s", prefix, hex);
	hl_buf_release(&t);
}

/* X-GitHub-Hook-ID when it is one (a number), else NULL. */
static const char *
intake_hook_id(struct http_req *r)
{
	const char *id = intake_header_value(r, "X-GitHub-Hook-ID", r->hook_id, sizeof(r->hook_id));
	size_t n = id ? strspn(id, "0123456789") : 0;

	return n > 0 && n <= 20 && !id[n] ? id : NULL;
}

/* For the same delivery id sent again, what its first delivery was
 * answered (accepted or skipped); else HL_INTAKE_DUPLICATE. */
static enum hl_intake_status
intake_repeat_of(const struct http_req *r)
{
	const struct hl_intake_answer *a = &r->ireq.answer;

	if (a->status != HL_INTAKE_DUPLICATE || a->duplicate_of[0] ||
	    strcmp(a->reason, "duplicate_delivery") != 0)
		return HL_INTAKE_DUPLICATE;
	return a->original;
}

/* How long a duplicate's answer waits for its task's read when the
 * decision wait is off. */
#define INTAKE_TASK_READ_MS 1000

static void
intake_done(struct hl_intake_req *req)
{
	struct http_req *r = req->arg;
	int wait_ms = r->srv->cfg->decision_wait_ms;

	/* a sensor's call waits for the decision (decisions.c) */
	if (r->sensor && intake_decides(r) && req->rc == 0 && r->intent != HL_INTENT_TRACK &&
	    req->answer.status == HL_INTAKE_ACCEPTED && wait_ms > 0 &&
	    hl_decisions_wait(r->srv->decisions, r, wait_ms))
		return;
	/* a sensor's duplicate answers with the first delivery's task, read
	 * by the board's reader thread (bounded by the decision wait); the
	 * same delivery sent again with its first answer's decision, a task
	 * or none (a skipped failure; a tracked success has none to read) */
	if (r->sensor && req->rc == 0 && req->answer.status == HL_INTAKE_DUPLICATE &&
	    (req->answer.task_id[0] ||
	     (intake_repeat_of(r) == HL_INTAKE_ACCEPTED && r->intent != HL_INTENT_TRACK)) &&
	    hl_decisions_task_read(r->srv->decisions, r,
	                           wait_ms > 0 ? wait_ms : INTAKE_TASK_READ_MS))
		return;
	hl_http_resume(r);
}

/*
 * Normalizes, decides the skip reason, dedup key and task id, then suspends
 * the connection and queues the delivery. body/len is the JSON to store
 * (borrowed from r until the reply). Takes payload.
 */
static enum MHD_Result
intake_submit(struct http_req *r, const char *source, json_t *payload, const char *body, size_t len)
{
	struct hl_event *ev = NULL;
	struct hl_err err = HL_ERR_INIT;
	const char *skip = NULL;
	bool result_only;
	int rc;

	/* counted under the name it is stored under, normalized or not */
	r->event_label = hl_event_stored_name(r->event_name);
	rc = hl_event_normalize(&ev, r->event_name, payload, &err);
	if (rc == -HL_EUNSUPPORTED) {
		skip = "event_not_handled";
	} else if (rc < 0) {
		skip = "invalid_payload";
		hl_strlcpy(r->skip_msg, err.msg, sizeof(r->skip_msg));
	} else {
		skip = hl_event_skip_reason(ev, r->srv->cfg);
	}
	/* a bot's or skip-tagged failure starts no task, but may be an active
	 * task's result (an agent's push failing again): the worker decides
	 * (hl_pipeline_process), so it is stored with no task of its own */
	result_only = hl_event_skip_starts_nothing(ev, skip);
	if (result_only)
		skip = NULL;
	if (ev) {
		r->intent = (int)ev->intent;
		if (ev->action)
			r->action = strdup(ev->action);
		r->dedup_key = hl_event_intake_key(ev);
		/* identity once: the worker and the remediator use these */
		if (!skip && !result_only && hl_event_remediable(ev)) {
			r->failure_key = hl_event_remediation_key(ev);
			if (hl_event_task_id(r->task_id, sizeof(r->task_id),
			                     r->dedup_key ? r->dedup_key : r->delivery_id) < 0)
				r->task_id[0] = '\0';
			/* nothing names the failure: it cannot be claimed */
			if (!r->failure_key) {
				skip = "invalid_payload";
				r->task_id[0] = '\0';
				hl_strlcpy(r->skip_msg, "the event does not identify a failure",
				           sizeof(r->skip_msg));
			}
		}
	}
	if (skip)
		hl_strlcpy(r->skip, skip, sizeof(r->skip));
	hl_event_free(ev);
	json_decref(payload);
	/* Ends the webhook's arena scope (hl_http_webhook); no-op otherwise. */
	hl_json_arena_end();
	r->headers_json = intake_headers(r);
	if (!r->headers_json)
		return hl_http_reply_error(r, 500, "internal", "out of memory");

	r->ireq.in = (struct hl_delivery_in){
		.delivery_id = r->delivery_id,
		.hook_id = intake_hook_id(r),
		.source = source,
		/* bounded: a made-up X-GitHub-Event is stored as "other" */
		.event_name = hl_event_stored_name(r->event_name),
		.action = r->action,
		.headers_json = r->headers_json,
		.body = body,
		.body_len = len,
		.dedup_key = r->dedup_key,
		.failure_key = r->failure_key,
		.task_id = r->task_id[0] ? r->task_id : NULL,
		.skip_reason = r->skip[0] ? r->skip : NULL,
	};
	r->ireq.done = intake_done;
	r->ireq.arg = r;
	if (!hl_http_suspend(r))
		return hl_http_reply_error(r, 503, "shutting_down", "the server is shutting down");
	hl_store_intake_submit(r->srv->store, &r->ireq);
	return MHD_YES;
}

/* The decision's part of a sensor's answer (contract section 4). */
#define INTAKE_DECISION_KEYS 3
static const char *const intake_decision_keys[INTAKE_DECISION_KEYS] = { "agent", "failure_type",
	                                                                "coderun_name" };

/*
 * The sensor's answer carries the decision (contract section 4): the one the
 * worker published for this delivery, or for a duplicate the recorded task
 * of the first (read by the decision board's reader, never here). Without
 * one yet, the answer has the task id and the decision follows at
 * /api/remediations/{task_id}.
 */
static void
intake_add_decision(struct http_req *r, json_t *o)
{
	const char *const *keys = intake_decision_keys;
	const struct hl_intake_answer *a = &r->ireq.answer;
	json_t *stored = NULL;
	const json_t *src = r->decision;
	/* accepted: the first call, or the same delivery sent again (answered
	 * as the first was) */
	bool accepted =
	        a->status == HL_INTAKE_ACCEPTED || intake_repeat_of(r) == HL_INTAKE_ACCEPTED;
	char *text = NULL;
	size_t i;

	/* missed while waiting (decided before the wait began, or the signal
	 * was lost): the decision stored with the delivery (a repeat's was
	 * read by the board's reader, which a stalled store never holds up) */
	if (!src && a->status == HL_INTAKE_ACCEPTED &&
	    hl_decisions_reply_reads(r->srv->decisions) &&
	    hl_store_delivery_decision(r->srv->store, &text, r->delivery_id, NULL) == 0) {
		src = stored = json_loads(text, 0, NULL);
		free(text);
	}
	if (src) {
		const char *ds = json_string_value(json_object_get(src, "dedup_status"));
		const char *why = json_string_value(json_object_get(src, "reason"));
		const char *tid = json_string_value(json_object_get(src, "task_id"));
		/* "existing" / "attached": the task the failure belongs to */
		if (tid && *tid)
			json_object_set_new(o, "task_id", json_string(tid));
		for (i = 0; i < INTAKE_DECISION_KEYS; i++) {
			const char *v = json_string_value(json_object_get(src, keys[i]));
			if (v && *v)
				json_object_set_new(o, keys[i], json_string(v));
		}
		if (ds)
			json_object_set_new(o, "dedup_status", json_string(ds));
		if (why)
			json_object_set_new(o, "reason", json_string(why));
		else if (a->status == HL_INTAKE_DUPLICATE &&
		         intake_repeat_of(r) == HL_INTAKE_ACCEPTED)
			json_object_set_new(o, "reason", json_null()); /* as the first call's */
		/* what became of it when nothing was dispatched ("queued") */
		if (json_is_string(json_object_get(src, "decision")))
			json_object_set(o, "decision", json_object_get(src, "decision"));
		/* the reason's prose, when the reason is a code ("attached") */
		if (json_is_string(json_object_get(src, "message")) &&
		    !json_object_get(o, "message"))
			json_object_set(o, "message", json_object_get(src, "message"));
	} else if (accepted && intake_ci_route(r) && r->intent == HL_INTENT_TRACK) {
		/* a successful run: kept as a CI result for verification, never
		 * remediated */
		json_object_set_new(o, "dedup_status", json_string("skipped"));
		json_object_set_new(o, "decision", json_string("tracked"));
		json_object_set_new(
		        o, "reason",
		        json_string("not_failure: a successful run is recorded to verify "
		                    "fixes, not remediated"));
	} else if (accepted && intake_decides(r)) {
		json_object_set_new(o, "decision", json_string("pending"));
	}
	json_decref(stored);
}

/* Appends ,"key":"value" (value JSON-escaped), or ,"key":null. */
static void
intake_reply_field(struct hl_buf *b, const char *key, const char *value)
{
	hl_buf_append_str(b, ",\"");
	hl_buf_append_str(b, key);
	if (!value) {
		hl_buf_append_str(b, "\":null");
		return;
	}
	hl_buf_append_str(b, "\":\"");
	hl_buf_append_json_escaped(b, value, strlen(value));
	hl_buf_append_char(b, '"');
}

/* A webhook's answer, the one every delivery gets: written directly, in
 * the order and shape of the general answer below (no JSON tree). */
static enum MHD_Result
intake_reply_webhook(struct http_req *r)
{
	const struct hl_intake_answer *a = &r->ireq.answer;
	struct hl_buf b = HL_BUF_INIT(0);
	size_t len = 0;
	char *body;

	(void)hl_buf_grow(&b, 256);
	hl_buf_append_str(&b, "{\"status\":\"");
	hl_buf_append_str(&b, hl_intake_status_name(a->status));
	hl_buf_append_char(&b, '"');
	intake_reply_field(&b, "delivery_id", r->delivery_id);
	intake_reply_field(&b, "task_id", a->task_id[0] ? a->task_id : NULL);
	intake_reply_field(&b, "reason", a->reason[0] ? a->reason : NULL);
	intake_reply_field(&b, "event", r->event_name);
	if (a->duplicate_of[0])
		intake_reply_field(&b, "duplicate_of", a->duplicate_of);
	if (r->skip_msg[0] && a->status == HL_INTAKE_SKIPPED)
		intake_reply_field(&b, "message", r->skip_msg);
	hl_buf_append_char(&b, '}');
	if (hl_buf_error(&b)) {
		hl_buf_release(&b);
		return MHD_NO;
	}
	body = hl_buf_detach(&b, &len);
	return hl_http_reply(r, 202, "application/json; charset=utf-8", body, len);
}

enum MHD_Result
hl_http_intake_reply(struct http_req *r)
{
	const struct hl_intake_answer *a = &r->ireq.answer;
	json_t *o;
	char *body;

	if (r->ireq.rc < 0) {
		hl_error("storing delivery '%s' failed: %s", r->delivery_id, r->ireq.err.msg);
		return hl_http_reply_error(r, 503, "store_unavailable",
		                           "the delivery could not be stored; retry later");
	}
	hl_metrics_intake(r->srv->metrics, r->event_label, (int)a->status);
	if (!r->sensor)
		return intake_reply_webhook(r);
	o = json_object();
	json_object_set_new(o, "status", json_string(hl_intake_status_name(a->status)));
	json_object_set_new(o, "delivery_id", json_string(r->delivery_id));
	json_object_set_new(o, "task_id", a->task_id[0] ? json_string(a->task_id) : json_null());
	json_object_set_new(o, "reason", a->reason[0] ? json_string(a->reason) : json_null());
	json_object_set_new(o, "event", json_string(r->event_name));
	if (a->duplicate_of[0])
		json_object_set_new(o, "duplicate_of", json_string(a->duplicate_of));
	/* why a fresh delivery's payload was refused (and again when sent again) */
	if (r->skip_msg[0] &&
	    (a->status == HL_INTAKE_SKIPPED || intake_repeat_of(r) == HL_INTAKE_SKIPPED))
		json_object_set_new(o, "message", json_string(r->skip_msg));
	if (r->sensor) {
		enum hl_intake_status first = intake_repeat_of(r);

		json_object_set_new(o, "dedup_status",
		                    json_string(a->status == HL_INTAKE_ACCEPTED  ? "new"
		                                : a->status == HL_INTAKE_SKIPPED ? "skipped"
		                                : first == HL_INTAKE_SKIPPED     ? "skipped"
		                                : first == HL_INTAKE_ACCEPTED    ? "new"
		                                                                 : "existing"));
		/* the same delivery again: the first answer's reason */
		if (first == HL_INTAKE_SKIPPED && a->first_reason[0])
			json_object_set_new(o, "reason", json_string(a->first_reason));
		intake_add_decision(r, o);
		/* the contract's answer has these keys whatever the decision:
		 * null when nothing was dispatched (skipped, pending, tracked) */
		for (size_t i = 0; i < INTAKE_DECISION_KEYS; i++)
			if (!json_object_get(o, intake_decision_keys[i]))
				json_object_set_new(o, intake_decision_keys[i], json_null());
	}
	body = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!body)
		return MHD_NO;
	return hl_http_reply(r, 202, "application/json; charset=utf-8", body, strlen(body));
}

enum MHD_Result
hl_http_webhook(struct http_req *r)
{
	char ebuf[sizeof(r->event_name) + 1], dbuf[HL_DELIVERY_ID_MAX + 2], sbuf[160];
	const char *ctype = intake_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
	const char *event = intake_header_value(r, "X-GitHub-Event", ebuf, sizeof(ebuf));
	const char *delivery = intake_header_value(r, "X-GitHub-Delivery", dbuf, sizeof(dbuf));
	struct hl_err err = HL_ERR_INIT;
	json_t *payload = NULL;
	const char *text = r->body.data;
	size_t len = r->body.len;
	bool form;

	if (r->srv->webhook_keys &&
	    hl_webhook_verify_keys(
	            r->srv->webhook_keys, r->body.data, r->body.len,
	            intake_header_value(r, "X-Hub-Signature-256", sbuf, sizeof(sbuf)), &err) < 0)
		return hl_http_reply_error(r, 401, "invalid_signature", "%s", err.msg);
	form = intake_ctype_is(ctype, "application/x-www-form-urlencoded");
	if (!form && !intake_ctype_is(ctype, "application/json"))
		return hl_http_reply_error(r, 415, "unsupported_media_type",
		                           "content type must be application/json, not '%s'",
		                           ctype ? ctype : "");
	if (!event || !*event)
		return hl_http_reply_error(r, 400, "missing_event",
		                           "missing 'X-GitHub-Event' header");
	if (!intake_token_ok(event, sizeof(r->event_name) - 1, true))
		return hl_http_reply_error(r, 400, "bad_event",
		                           "malformed 'X-GitHub-Event' header");
	hl_strlcpy(r->event_name, event, sizeof(r->event_name));
	if (delivery) {
		if (!intake_token_ok(delivery, HL_DELIVERY_ID_MAX, false))
			return hl_http_reply_error(r, 400, "bad_delivery_id",
			                           "malformed 'X-GitHub-Delivery' header");
		hl_strlcpy(r->delivery_id, delivery, sizeof(r->delivery_id));
	}
	if (form) {
		r->stored_body = intake_form_payload(r->body.data, r->body.len, &len);
		if (!r->stored_body)
			return hl_http_reply_error(r, 400, "invalid_json",
			                           "form body without a 'payload' field");
		text = r->stored_body;
	}
	/* The payload tree lives until intake_submit decrefs it: arena. Only
	 * normalization reads it (the body is stored as it came): what it
	 * does not read is checked, not built. */
	hl_json_arena_begin();
	if (hl_json_fast_parse_pruned(&payload, text, len, hl_event_prune_rules, &err) < 0) {
		hl_json_arena_end();
		return hl_http_reply_error(r, 400, "invalid_json", "malformed JSON: %s", err.msg);
	}
	if (!json_is_object(payload)) {
		json_decref(payload);
		hl_json_arena_end();
		return hl_http_reply_error(r, 400, "invalid_json", "the payload must be an object");
	}
	if (!delivery)
		intake_hash_id(r->delivery_id, sizeof(r->delivery_id), "gen-", r->event_name, text,
		               len);
	return intake_submit(r, "webhook", payload, text, len);
}

static bool
intake_event_fits(struct http_req *r, const char *event)
{
	static const char *const ci[] = { "workflow_run", "workflow_job", "check_run", NULL };
	static const char *const sec[] = { "dependabot_alert", "code_scanning_alert",
		                           "secret_scanning_alert",
		                           "repository_vulnerability_alert", NULL };
	const char *const *l = intake_ci_route(r) ? ci : sec;

	for (; event && *l; l++)
		if (strcmp(*l, event) == 0)
			return true;
	return false;
}

enum MHD_Result
hl_http_remediate(struct http_req *r)
{
	char ebuf[sizeof(r->event_name) + 1], dbuf[HL_DELIVERY_ID_MAX + 2];
	const char *ctype = intake_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
	const char *event = intake_header_value(r, "X-GitHub-Event", ebuf, sizeof(ebuf));
	const char *delivery = intake_header_value(r, "X-GitHub-Delivery", dbuf, sizeof(dbuf));
	struct hl_err err = HL_ERR_INIT;
	json_t *root = NULL, *inner;
	const char *text = r->body.data;
	size_t len = r->body.len;

	r->sensor = true;
	if (ctype && !intake_ctype_is(ctype, "application/json"))
		return hl_http_reply_error(r, 415, "unsupported_media_type",
		                           "content type must be application/json, not '%s'",
		                           ctype);
	if (hl_json_fast_parse(&root, text, len, &err) < 0)
		return hl_http_reply_error(r, 400, "invalid_json", "malformed JSON: %s", err.msg);
	inner = json_object_get(root, "body");
	if (json_is_string(inner)) {
		json_t *parsed = NULL;

		if (hl_json_fast_parse(&parsed, json_string_value(inner), json_string_length(inner),
		                       &err) < 0) {
			json_decref(root);
			return hl_http_reply_error(r, 400, "invalid_json",
			                           "malformed JSON in 'body': %s", err.msg);
		}
		json_object_set_new(root, "body", parsed);
		inner = parsed;
	}
	if (json_is_object(inner)) {
		/* Wrapped: store the inner payload. */
		r->stored_body = json_dumps(inner, JSON_COMPACT);
		if (!r->stored_body) {
			json_decref(root);
			return hl_http_reply_error(r, 500, "internal", "out of memory");
		}
		text = r->stored_body;
		len = strlen(text);
		json_incref(inner);
		json_decref(root);
		root = inner;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		return hl_http_reply_error(r, 400, "invalid_json", "the payload must be an object");
	}
	if (!event || !*event)
		event = hl_event_guess_name(root);
	if (!event || !intake_event_fits(r, event)) {
		json_decref(root);
		return hl_http_reply_error(
		        r, 400, "unsupported_event", "%s",
		        intake_ci_route(r)
		                ? "expected a workflow_run, workflow_job or check_run payload"
		                : "expected a dependabot, code scanning or secret scanning alert");
	}
	hl_strlcpy(r->event_name, event, sizeof(r->event_name));
	/* an empty header is an absent one, as X-GitHub-Event's */
	if (delivery && *delivery) {
		if (!intake_token_ok(delivery, HL_DELIVERY_ID_MAX, false)) {
			json_decref(root);
			return hl_http_reply_error(r, 400, "bad_delivery_id",
			                           "malformed 'X-GitHub-Delivery' header");
		}
		hl_strlcpy(r->delivery_id, delivery, sizeof(r->delivery_id));
	} else {
		intake_hash_id(r->delivery_id, sizeof(r->delivery_id), "sensor-", r->event_name,
		               text, len);
	}
	return intake_submit(r, intake_ci_route(r) ? "ci-failure" : "security-alert", root, text,
	                     len);
}
