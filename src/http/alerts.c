/*
 * alerts.c - the alert routes (contract section 14):
 *   POST /api/alerts/alertmanager  Prometheus Alertmanager's webhook (v4)
 *   POST /api/alerts/argocd        an ArgoCD notifications webhook
 *
 * Both take the bearer token like the /api/remediate routes (the route table checks
 * it), JSON or no content type (415 otherwise); a body that is not such a
 * webhook is 400 with the reason (src/alerts/payload.c). Each alert of a
 * body is one delivery stored with its identity (a repeat of a firing alert
 * is a duplicate; its resolution is new), all queued at once for the group
 * commit (which writes what is queued in one transaction, so a large body
 * takes a few), and the answer waits for every commit: 202
 * {"status": "accepted"|"duplicate"|"skipped", "task_ids": [...],
 *  "alerts": [{"delivery_id", "subject", "alert", "status", "task_id",
 *  "reason"}]} with the body's status the best of its alerts' (accepted,
 * then duplicate, then skipped), and "truncated_alerts": N when
 * Alertmanager says its max_alerts cut N alerts of the group (logged and
 * counted too: healer never sees them). A pod alert of a namespace
 * outside HEALER_ALERT_NAMESPACES is skipped ("namespace_not_allowed"). An
 * ArgoCD notification is checked against HEALER_REPOSITORIES (skipped
 * "repository_not_allowed"), the namespaces and HEALER_HEAL_REPOSITORY
 * (hl_alerts_argocd_screen) and
 * takes the first episode of its key whose task has not ended (a read of
 * the store; 503 when it cannot be read). The workers process them
 * (src/alerts).
 *
 * Invariant: the connection is suspended from the first submit until the
 * last commit completes (pending reaches 0), so the request and its items
 * outlive every intake the store holds.
 */
#include "alerts/alerts.h"

#include "base/log.h"
#include "base/str.h"
#include "http_impl.h"
#include "server.h"

#include "json/json.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Every alert of a body the route takes is taken (Alertmanager does not
 * retry a 4xx): the count bound of the parser holds a body of the smallest
 * alerts Alertmanager sends at the route's size cap. */
_Static_assert((size_t)HL_ALERTS_MAX_PER_BODY *HL_ALERTS_MIN_ALERT_BYTES >= HL_HTTP_MAX_BODY,
               "HL_ALERTS_MAX_PER_BODY must cover a body of HL_HTTP_MAX_BODY");

/* Episodes of one ArgoCD key looked for (each a read of the store). */
#define HTTP_ALERTS_EPISODES_MAX 256

struct http_alert_sub {
	struct hl_intake_req ireq;
	struct http_alerts *owner;
};

struct http_alerts {
	struct http_req *r;
	struct hl_alert_batch batch;
	struct http_alert_sub *subs;
	atomic_size_t pending;
	char *headers_json;
};

void
hl_http_alerts_free(struct http_alerts *al)
{
	if (!al)
		return;
	hl_alert_batch_release(&al->batch);
	free(al->subs);
	free(al->headers_json);
	free(al);
}

static void
alerts_done(struct hl_intake_req *req)
{
	struct http_alert_sub *s = req->arg;
	struct http_alerts *al = s->owner;

	if (atomic_fetch_sub(&al->pending, 1) == 1)
		hl_http_resume(al->r);
}

static bool
alerts_ctype_ok(const char *ctype)
{
	size_t n = strlen("application/json");

	if (!ctype)
		return true;
	while (*ctype == ' ' || *ctype == '\t')
		ctype++;
	return strncasecmp(ctype, "application/json", n) == 0 &&
	       (ctype[n] == '\0' || ctype[n] == ';' || ctype[n] == ' ');
}

/* The headers worth keeping with an alert delivery (no credentials). */
static char *
alerts_headers(struct http_req *r)
{
	const char *ua =
	        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_USER_AGENT);
	const char *ct =
	        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	struct hl_buf b = HL_BUF_INIT(0);
	const char *names[] = { "User-Agent", "Content-Type" }, *values[] = { ua, ct };
	size_t i;

	/* as the client sent them, invalid UTF-8 as U+FFFD (json_pack would
	 * refuse them: a 500 the sender retries forever) */
	hl_buf_append_char(&b, '{');
	for (i = 0; i < 2; i++) {
		if (!values[i])
			continue;
		hl_buf_appendf(&b, "%s\"%s\":\"", b.len > 1 ? "," : "", names[i]);
		hl_http_append_utf8_escaped(&b, values[i], strlen(values[i]));
		hl_buf_append_char(&b, '"');
	}
	hl_buf_append_char(&b, '}');
	return hl_buf_detach(&b, NULL);
}

/* The episode each ArgoCD item is (hl_alerts_argocd_episode): the first
 * of its key whose task has not ended, read from the store. */
static int
alerts_argocd_episodes(struct http_req *r, struct hl_alert_batch *b, struct hl_err *err)
{
	struct hl_store *st = r->srv->lister ? r->srv->lister : r->srv->store;
	size_t i;
	int rc;

	for (i = 0; i < b->n; i++) {
		struct hl_alert_item *it = &b->items[i];
		unsigned seq;

		if (it->skip[0] || !it->task_id[0])
			continue;
		for (seq = 0; seq < HTTP_ALERTS_EPISODES_MAX; seq++) {
			char tid[HL_TASK_ID_MAX];
			struct hl_task_record *t = NULL;
			bool ended;

			if (hl_alerts_argocd_episode_task(tid, sizeof(tid), it->dedup_key, seq) < 0)
				break;
			rc = hl_store_task_get(st, &t, tid, err);
			if (rc == -HL_ENOTFOUND)
				break;
			if (rc < 0)
				return rc;
			ended = t->state == HL_TASK_SUCCEEDED || t->state == HL_TASK_ESCALATED ||
			        t->state == HL_TASK_STOPPED || t->state == HL_TASK_SKIPPED;
			hl_task_record_free(t);
			if (!ended)
				break;
		}
		if (seq == HTTP_ALERTS_EPISODES_MAX)
			seq--; /* an application degraded that often: its last episode */
		if (seq && (rc = hl_alerts_argocd_episode(it, seq, err)) < 0)
			return rc;
	}
	*err = (struct hl_err)HL_ERR_INIT;
	return 0;
}

enum MHD_Result
hl_http_alerts(struct http_req *r, const char *arg)
{
	const char *ctype =
	        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	bool argocd = strcmp(r->rt->name, "alerts_argocd") == 0;
	struct hl_err err = HL_ERR_INIT;
	struct http_alerts *al = NULL;
	json_t *body = NULL;
	size_t i;
	int rc;

	r->sensor = true;
	if (!alerts_ctype_ok(ctype))
		return hl_http_reply_error(r, 415, "unsupported_media_type",
		                           "content type must be application/json, not '%s'",
		                           ctype);
	if (hl_json_parse(&body, r->body.data, r->body.len, &err) < 0)
		return hl_http_reply_error(r, 400, "invalid_json", "malformed JSON: %s", err.msg);
	al = calloc(1, sizeof(*al));
	if (!al) {
		json_decref(body);
		return hl_http_reply_error(r, 500, "internal", "out of memory");
	}
	rc = argocd ? hl_alerts_parse_argocd(&al->batch, body, &err)
	            : hl_alerts_parse_alertmanager(&al->batch, body, &err);
	if (rc == 0 && al->batch.truncated > 0) {
		/* alerts of the group its receiver's max_alerts cut: healer
		 * never sees them (Alertmanager sends the group again only
		 * when it changes, or at repeat_interval, cut the same way) */
		char n[24];

		snprintf(n, sizeof(n), "%lld", (long long)al->batch.truncated);
		hl_log_kv(
		        HL_LOG_WARN,
		        "Alertmanager cut alerts of a group from its notification (the receiver's "
		        "max_alerts): they are not seen",
		        "group_key", hl_json_str_or(body, "groupKey", "?"), "receiver",
		        hl_json_str_or(body, "receiver", "?"), "truncated_alerts", n, NULL);
		hl_metrics_alerts_truncated(r->srv->metrics, al->batch.truncated);
	}
	json_decref(body);
	if (rc == 0)
		hl_alerts_screen(&al->batch, r->srv->cfg);
	if (rc == 0 && argocd) {
		rc = alerts_argocd_episodes(r, &al->batch, &err);
		if (rc < 0 && rc != -HL_ENOMEM) {
			hl_error("reading the tasks of ArgoCD notification '%s' failed: %s",
			         al->batch.items[0].subject, err.msg);
			hl_http_alerts_free(al);
			return hl_http_reply_error(
			        r, 503, "store_unavailable",
			        "the notification could not be stored; retry later");
		}
	}
	if (rc < 0) {
		hl_http_alerts_free(al);
		if (rc == -HL_EINVAL)
			return hl_http_reply_error(r, 400, "invalid_payload", "%s", err.msg);
		return hl_http_reply_error(r, 500, "internal", "%s", err.msg);
	}
	al->subs = calloc(al->batch.n, sizeof(*al->subs));
	al->headers_json = alerts_headers(r);
	if (!al->subs || !al->headers_json) {
		hl_http_alerts_free(al);
		return hl_http_reply_error(r, 500, "internal", "out of memory");
	}
	al->r = r;
	r->alerts = al;
	hl_strlcpy(r->event_name, argocd ? HL_ALERTS_SOURCE_ARGOCD : HL_ALERTS_SOURCE_ALERTMANAGER,
	           sizeof(r->event_name));
	hl_strlcpy(r->delivery_id, al->batch.items[0].delivery_id, sizeof(r->delivery_id));
	atomic_store(&al->pending, al->batch.n);
	for (i = 0; i < al->batch.n; i++) {
		const struct hl_alert_item *it = &al->batch.items[i];
		struct http_alert_sub *s = &al->subs[i];

		s->owner = al;
		s->ireq.in = (struct hl_delivery_in){
			.delivery_id = it->delivery_id,
			.source = it->source,
			.event_name = it->source,
			.action = it->action,
			.headers_json = al->headers_json,
			.body = it->body,
			.body_len = it->body_len,
			.dedup_key = it->dedup_key,
			.task_id = it->task_id[0] ? it->task_id : NULL,
			.skip_reason = it->skip[0] ? it->skip : NULL,
		};
		s->ireq.done = alerts_done;
		s->ireq.arg = s;
	}
	if (!hl_http_suspend(r))
		return hl_http_reply_error(r, 503, "shutting_down", "the server is shutting down");
	for (i = 0; i < al->batch.n; i++)
		hl_store_intake_submit(r->srv->store, &al->subs[i].ireq);
	return MHD_YES;
}

enum MHD_Result
hl_http_alerts_reply(struct http_req *r)
{
	struct http_alerts *al = r->alerts;
	json_t *o, *ids, *list, *seen;
	const char *reason = NULL;
	bool accepted = false, duplicate = false;
	const char *source = strcmp(r->event_name, HL_ALERTS_SOURCE_ARGOCD) == 0
	                             ? HL_ALERTS_SOURCE_ARGOCD
	                             : HL_ALERTS_SOURCE_ALERTMANAGER;
	char *body;
	size_t i;

	for (i = 0; i < al->batch.n; i++) {
		if (al->subs[i].ireq.rc < 0) {
			hl_error("storing alert '%s' failed: %s", al->batch.items[i].delivery_id,
			         al->subs[i].ireq.err.msg);
			return hl_http_reply_error(r, 503, "store_unavailable",
			                           "the alerts could not be stored; retry later");
		}
	}
	o = json_object();
	ids = json_array();
	list = json_array();
	seen = json_object(); /* the task ids in ids: a body may hold 200,000 alerts */
	if (!o || !ids || !list || !seen) {
		json_decref(o);
		json_decref(ids);
		json_decref(list);
		json_decref(seen);
		return MHD_NO;
	}
	for (i = 0; i < al->batch.n; i++) {
		const struct hl_intake_answer *a = &al->subs[i].ireq.answer;
		const struct hl_alert_item *it = &al->batch.items[i];

		hl_metrics_intake(r->srv->metrics, source, (int)a->status);
		accepted |= a->status == HL_INTAKE_ACCEPTED;
		duplicate |= a->status == HL_INTAKE_DUPLICATE;
		if (!reason && a->reason[0])
			reason = a->reason;
		if (a->task_id[0] && a->status != HL_INTAKE_SKIPPED &&
		    !json_object_get(seen, a->task_id)) {
			json_object_set_new(seen, a->task_id, json_true());
			json_array_append_new(ids, json_string(a->task_id));
		}
		json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s?}",
		                                      "delivery_id", it->delivery_id, "subject",
		                                      it->subject, "alert", it->action, "status",
		                                      hl_intake_status_name(a->status), "task_id",
		                                      a->task_id[0] ? a->task_id : NULL, "reason",
		                                      a->reason[0] ? a->reason : NULL));
	}
	json_object_set_new(o, "status",
	                    json_string(accepted    ? "accepted"
	                                : duplicate ? "duplicate"
	                                            : "skipped"));
	json_object_set_new(o, "task_ids", ids);
	if (!accepted && reason)
		json_object_set_new(o, "reason", json_string(reason));
	json_object_set_new(o, "alerts", list);
	if (al->batch.truncated > 0)
		json_object_set_new(o, "truncated_alerts",
		                    json_integer((json_int_t)al->batch.truncated));
	json_decref(seen);
	body = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!body)
		return MHD_NO;
	return hl_http_reply(r, 202, "application/json; charset=utf-8", body, strlen(body));
}
