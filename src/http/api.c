/*
 * api.c - the read-only routes: /health, /ready, /api/status, /metrics,
 * /api/insights and /api/remediations/{task_id} (and .../attempts/{n}/prompt).
 * /health, /ready and /metrics read the store under its mutex; the
 * insights, which read every task, go through the server's read-only
 * handle of the store, and /api/status, the lists, a task and its prompts
 * through another one on SQLite (http_impl.h), so neither a scan of the
 * tasks nor an insights computation holds up intake; none scans the
 * deliveries table (counts come from delivery_counts). /api/status,
 * /metrics, /api/insights, the lists, a task and its prompts run on the
 * server's reader threads (readers.c), not on libmicrohttpd's request
 * threads, so a poll does not keep a delivery waiting for a free one; their
 * replies are kept there and sent once the connection resumed. The documents the dashboard
 * polls carry an ETag and answer 304 to a matching If-None-Match: a strong
 * one of their bytes, or for /api/status and /api/insights, which carry the
 * uptime or the time they were made, a weak one of the rest.
 */
#include "api/api.h"

#include "alerts/alerts.h"
#include "api/insights.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/str.h"
#include "catalog/catalog.h"
#include "dashboard/dashboard.h"
#include "event/event.h"
#include "http_impl.h"
#include "store/loop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define API_JSON   "application/json; charset=utf-8"
#define API_RECENT 20
/* The read routes' answers: revalidated on every use (their ETag makes
 * that a 304), and private: they need the token or a session, so a shared
 * cache (a proxy, a CDN before the ingress) must not keep them. */
#define API_CACHE_CONTROL "private, no-cache"
/* Numbers as `healer insights --json` writes them: 15 significant digits,
 * so a target of 0.9 reads 0.9, not 0.90000000000000002 (the shortest
 * 17-digit form jansson writes by default). */
#define API_DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))

static enum MHD_Result
api_reply_json(struct http_req *r, unsigned code, json_t *o)
{
	char *body = json_dumps(o, API_DUMP_FLAGS);

	json_decref(o);
	if (!body)
		return hl_http_reply_error(r, 500, "internal", "out of memory");
	return hl_http_reply(r, code, API_JSON, body, strlen(body));
}

/* Remove the dotted paths ("a" or "a.b") of keys from o. */
static void
api_drop_keys(json_t *o, const char *const *keys)
{
	for (; keys && *keys; keys++) {
		const char *dot = strchr(*keys, '.');
		char head[64];

		if (!dot) {
			json_object_del(o, *keys);
			continue;
		}
		if ((size_t)(dot - *keys) >= sizeof(head))
			continue;
		memcpy(head, *keys, (size_t)(dot - *keys));
		head[dot - *keys] = '\0';
		json_object_del(json_object_get(o, head), dot + 1);
	}
}

/* The answer with its ETag, 304 on a matching If-None-Match. With
 * clock_keys (a document that carries its uptime or the time it was made),
 * the tag is weak and taken over the document without those keys: two such
 * answers are equivalent, not byte-identical, and a poll of an unchanged
 * document still costs a 304. */
static enum MHD_Result
api_reply_etag(struct http_req *r, json_t *o, const char *const *clock_keys)
{
	char *body = json_dumps(o, API_DUMP_FLAGS), *stable = NULL;
	char opaque[HL_DASH_ETAG_MAX], etag[HL_DASH_ETAG_MAX + 2];
	const char *inm;

	if (body && clock_keys) {
		api_drop_keys(o, clock_keys);
		stable = json_dumps(o, API_DUMP_FLAGS);
	}
	json_decref(o);
	if (!body || (clock_keys && !stable)) {
		free(body);
		return hl_http_reply_error(r, 500, "internal", "out of memory");
	}
	hl_dash_etag(opaque, stable ? stable : body, strlen(stable ? stable : body));
	snprintf(etag, sizeof(etag), "%s%s", stable ? "W/" : "", opaque);
	free(stable);
	inm = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
	const char *hdrs[] = { "ETag", etag, "Cache-Control", API_CACHE_CONTROL, NULL };
	if (hl_dash_etag_match(inm, opaque)) {
		free(body);
		return hl_http_reply_hdrs(r, 304, API_JSON, NULL, 0, hdrs);
	}
	return hl_http_reply_hdrs(r, 200, API_JSON, body, strlen(body), hdrs);
}

enum MHD_Result
hl_http_reply_json_etag(struct http_req *r, json_t *o)
{
	return api_reply_etag(r, o, NULL);
}

enum MHD_Result
hl_http_health(struct http_req *r)
{
	return api_reply_json(r, 200,
	                      json_pack("{s:s, s:s}", "status", "ok", "version", r->srv->version));
}

/* A delivery not stored keeps /ready 503 this long whatever the probe says:
 * a write of the probe's size may still go through (pages the store
 * reuses) where a delivery's commit does not. Deliveries failing one after
 * another keep it 503 for as long as the readiness probe needs to take the
 * pod out (deploy/: 3 x 5 s). */
#define READY_INTAKE_HOLD_MS 10000

/* While intake could not store its last delivery (a full disk, a store
 * refusing writes), after READY_INTAKE_HOLD_MS without another failure,
 * whether a write of about a delivery's size goes through now: one
 * key/value record rewritten, at most once a second (between probes the
 * last answer stands). Success clears the failure, as does a delivery
 * stored, so a server the Service stopped sending deliveries to becomes
 * ready again once the store can write. */
static int
api_ready_probe(struct hl_http_server *srv, struct hl_err *err)
{
	enum { PROBE_BYTES = 16384 };
	int64_t now = hl_time_mono_ms(), last = atomic_load(&srv->ready_probe_ms);
	int64_t failed = atomic_load(&srv->intake_failed_ms);
	char *value;
	int rc;

	if (now - failed < READY_INTAKE_HOLD_MS)
		return hl_err_set(err, HL_EDB, "the last delivery could not be stored %lld ms ago",
		                  (long long)(now - failed));
	if (last && now - last < 1000)
		return hl_err_set(err, HL_EDB, "the last delivery could not be stored");
	atomic_store(&srv->ready_probe_ms, now);
	if (!(value = malloc(PROBE_BYTES + 1)))
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	/* varied bytes, so a compressing file system stores about as many */
	for (size_t i = 0; i < PROBE_BYTES; i++)
		value[i] = (char)('a' + (i * 7919 + (size_t)now) % 26);
	value[PROBE_BYTES] = '\0';
	rc = hl_store_kv_put(srv->store, "ready:probe", value, err);
	free(value);
	if (rc == 0)
		atomic_store(&srv->intake_failing, false);
	return rc;
}

enum MHD_Result
hl_http_ready(struct http_req *r)
{
	struct hl_err err = HL_ERR_INIT;

	if (atomic_load(&r->srv->leaving))
		return hl_http_reply_error(r, 503, "not_ready", "shutting down");
	if (hl_store_ping(r->srv->store, &err) < 0)
		return hl_http_reply_error(r, 503, "not_ready", "store unavailable: %s", err.msg);
	if (atomic_load(&r->srv->intake_failing) && api_ready_probe(r->srv, &err) < 0)
		return hl_http_reply_error(r, 503, "not_ready", "the store cannot write: %s",
		                           err.msg);
	return api_reply_json(r, 200, json_pack("{s:s}", "status", "ready"));
}

struct api_counts {
	json_t *by_event, *by_state, *by_reason, *by_event_state;
	int64_t total;
};

static void
api_add(json_t *o, const char *key, int64_t n)
{
	json_t *v = json_object_get(o, key);

	json_object_set_new(o, key, json_integer((v ? json_integer_value(v) : 0) + n));
}

static void
api_count_cb(void *arg, const char *event, const char *state, const char *reason, int64_t n)
{
	struct api_counts *c = arg;
	json_t *es = json_object_get(c->by_event_state, event);

	c->total += n;
	api_add(c->by_event, event, n);
	api_add(c->by_state, state, n);
	if (reason && *reason)
		api_add(c->by_reason, reason, n);
	if (!es) {
		es = json_object();
		json_object_set_new(c->by_event_state, event, es);
	}
	api_add(es, state, n);
}

static void
api_task_count_cb(void *arg, const char *kind, const char *name, int64_t n)
{
	json_t *o = arg;

	api_add(json_object_get(o, strcmp(kind, "state") == 0 ? "by_state" : "attempts_by_outcome"),
	        name, n);
}

static enum MHD_Result
api_arg_utf8_cb(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	const char **bad = cls;

	(void)kind;
	if ((key && hl_utf8_valid_len(key, strlen(key)) != strlen(key)) ||
	    (value && hl_utf8_valid_len(value, strlen(value)) != strlen(value))) {
		*bad = key ? key : "";
		return MHD_NO;
	}
	return MHD_YES;
}

/* True when every query parameter is UTF-8: the store compares them with
 * text columns, and PostgreSQL refuses other bytes (a 503, not a 400). */
static bool
api_args_utf8(struct http_req *r)
{
	const char *bad = NULL;

	MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, api_arg_utf8_cb, &bad);
	return bad == NULL;
}

/* The value of text when it is a whole decimal number from 0 to max: only
 * digits (no sign, no space: "+2", " 2" and "2.0" are not numbers); -1
 * otherwise. */
static long
api_whole_number(const char *text, long max)
{
	long v = 0;
	size_t i;

	for (i = 0; text[i]; i++) {
		if (text[i] < '0' || text[i] > '9' || i >= 9)
			return -1;
		v = v * 10 + (text[i] - '0');
	}
	return i > 0 && v <= max ? v : -1;
}

struct api_args_seen {
	const char *const *names; /* the parameters the route knows, NULL-ended */
	unsigned seen;            /* a bit per name */
	char msg[128];            /* why the query is refused ("" when it is not) */
};

static enum MHD_Result
api_args_known_cb(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct api_args_seen *a = cls;
	unsigned i;

	(void)kind;
	(void)value;
	for (i = 0; a->names[i] && strcmp(a->names[i], key ? key : "") != 0; i++)
		;
	if (!a->names[i])
		snprintf(a->msg, sizeof(a->msg), "unknown query parameter '%.64s'", key ? key : "");
	else if (a->seen & (1u << i))
		snprintf(a->msg, sizeof(a->msg), "query parameter '%s' given more than once",
		         a->names[i]);
	a->seen |= 1u << i;
	return a->msg[0] ? MHD_NO : MHD_YES;
}

/* Writes into msg (size bytes) why the query is refused, and returns false,
 * when it names a parameter not in names (NULL-ended, at most 32) or one of
 * them twice: a misspelt filter must not answer an unfiltered list. *seen
 * gets a bit per name present (with or without a value). */
static bool
api_args_known(unsigned *seen, struct http_req *r, const char *const *names, char *msg, size_t size)
{
	struct api_args_seen a = { .names = names, .seen = 0, .msg = "" };

	MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, api_args_known_cb, &a);
	snprintf(msg, size, "%s", a.msg);
	*seen = a.seen;
	return a.msg[0] == '\0';
}

static const char *
api_arg(struct http_req *r, const char *name)
{
	const char *v = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);

	return v && *v ? v : NULL;
}

/* The store /api/status, the lists, a task and its prompts read: the
 * server's read-only handle of them on SQLite (see http_impl.h), or the
 * store itself (PostgreSQL, or when that could not be opened). */
static struct hl_store *
api_list_store(struct hl_http_server *srv)
{
	return srv->lister ? srv->lister : srv->store;
}

/* A list page as {"remediations": [...], "next_cursor": ...}. */
static int
api_list(json_t **out, struct hl_store *store, const struct hl_task_filter *f, struct hl_err *err)
{
	struct hl_task_summary *page = calloc(f->limit ? f->limit : 50, sizeof(*page));
	char next[HL_CURSOR_MAX];
	json_t *arr;
	size_t n = 0, i;
	int rc;

	if (!page)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	rc = hl_store_task_page(store, page, &n, next, f, err);
	if (rc == 0) {
		arr = json_array();
		for (i = 0; arr && i < n; i++)
			json_array_append_new(arr, hl_api_task_summary_json(&page[i]));
		*out = json_pack("{s:o, s:o}", "remediations", arr ? arr : json_array(),
		                 "next_cursor", next[0] ? json_string(next) : json_null());
		if (!*out)
			rc = hl_err_set(err, HL_ENOMEM, "out of memory");
		hl_task_summaries_release(page, n);
	}
	free(page);
	return rc;
}

static int
api_summary_newer(const void *a, const void *b)
{
	const struct hl_task_summary *x = a, *y = b;

	if (x->created_ms != y->created_ms)
		return x->created_ms > y->created_ms ? -1 : 1;
	return -strcmp(x->task_id, y->task_id);
}

static int
api_summary_finished_later(const void *a, const void *b)
{
	const struct hl_task_summary *x = a, *y = b;

	if (x->finished_ms != y->finished_ms)
		return x->finished_ms > y->finished_ms ? -1 : 1;
	return -strcmp(x->task_id, y->task_id);
}

/*
 * The newest limit tasks in any of the states (a mask), as a JSON array:
 * the last created, or with by_finished the last finished (for ended
 * states). One indexed page per state, merged: a single query over several
 * states would walk the index past every task in other states (all of them,
 * when the states are rare).
 */
static int
api_newest(json_t **out, struct hl_store *store, unsigned states, bool by_finished, size_t limit,
           struct hl_err *err)
{
	struct hl_task_summary *all = calloc(limit * HL_TASK_STATE_MAX, sizeof(*all));
	char next[HL_CURSOR_MAX];
	size_t n = 0, got, i;
	json_t *arr;
	int rc = 0, s;

	if (!all)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	for (s = 0; s < HL_TASK_STATE_MAX && rc == 0; s++) {
		struct hl_task_filter f = { .states = 1u << s,
			                    .limit = limit,
			                    .by_finished = by_finished };
		if (!(states & (1u << s)))
			continue;
		got = 0;
		rc = hl_store_task_page(store, all + n, &got, next, &f, err);
		n += got;
	}
	if (rc == 0) {
		qsort(all, n, sizeof(*all),
		      by_finished ? api_summary_finished_later : api_summary_newer);
		arr = json_array();
		for (i = 0; arr && i < n && i < limit; i++)
			json_array_append_new(arr, hl_api_task_summary_json(&all[i]));
		if (!arr)
			rc = hl_err_set(err, HL_ENOMEM, "out of memory");
		*out = arr;
	}
	hl_task_summaries_release(all, n);
	free(all);
	return rc;
}

/* The store the insights read: the server's read-only handle of it (see
 * http_impl.h), or the store itself when that could not be opened. */
static struct hl_store *
api_insights_store(struct hl_http_server *srv)
{
	return srv->reader ? srv->reader : srv->store;
}

/* The insights' gauges, all time and the last 7 days, and the all-time
 * document (a store error only leaves them out: the other metrics and
 * counters still answer). They read every task, so they are kept for ten
 * times what they took to compute, at most a minute: on a small store every
 * call is fresh, on a large one /metrics and /api/status cost at most a
 * tenth of a core. Called with insights_lock held. */
#define API_INSIGHTS_CACHE_FACTOR 10
#define API_INSIGHTS_CACHE_MAX_MS 60000

static void
api_insights_refresh(struct hl_http_server *srv)
{
	static const char *const windows[] = { "all", "7d" };
	struct hl_insights_opts o = { .max_attempts = srv->cfg->max_attempts,
		                      .learned_routing = srv->cfg->learned_routing };
	struct hl_err err = HL_ERR_INIT;
	struct hl_buf text = HL_BUF_INIT(4 << 20);
	json_t *docs[2] = { NULL, NULL };
	int64_t t0 = hl_time_mono_ms(), took;

	if (srv->insights_text && t0 < srv->insights_until_ms)
		return;
	if (hl_api_insights(&docs[0], api_insights_store(srv), &o, &err) == 0) {
		o.since_ms = hl_time_wall_ms() - 7 * 86400000LL;
		if (hl_api_insights(&docs[1], api_insights_store(srv), &o, &err) == 0)
			hl_api_insights_metrics(&text, (const json_t *const *)docs, windows, 2);
	}
	if (docs[1] && !hl_buf_error(&text)) {
		free(srv->insights_text);
		srv->insights_text = hl_buf_detach(&text, &srv->insights_len);
		json_decref(srv->insights_doc);
		srv->insights_doc = json_incref(docs[0]);
		took = hl_time_mono_ms() - t0;
		srv->insights_at_ms = t0;
		srv->insights_took_ms = took;
		srv->insights_until_ms =
		        t0 + (took * API_INSIGHTS_CACHE_FACTOR < API_INSIGHTS_CACHE_MAX_MS
		                      ? took * API_INSIGHTS_CACHE_FACTOR
		                      : API_INSIGHTS_CACHE_MAX_MS);
	}
	json_decref(docs[0]);
	json_decref(docs[1]);
	hl_buf_release(&text);
}

static void
api_insights_metrics(struct http_req *r, struct hl_buf *b)
{
	struct hl_http_server *srv = r->srv;

	pthread_mutex_lock(&srv->insights_lock);
	api_insights_refresh(srv);
	if (srv->insights_text)
		hl_buf_append(b, srv->insights_text, srv->insights_len);
	pthread_mutex_unlock(&srv->insights_lock);
}

/* The other modules' metrics (the loop's read every task and attempt), read
 * through the reader handle (a scrape never waits for, nor holds up, the
 * intake's writes) and kept as the insights' gauges are: for ten times
 * what they took, at most a minute, so an unauthenticated /metrics flood on
 * a large store costs at most a tenth of a core. */
static void
api_extra_metrics(struct hl_http_server *srv, struct hl_buf *out)
{
	int64_t t0, took;

	pthread_mutex_lock(&srv->insights_lock);
	t0 = hl_time_mono_ms();
	if (!srv->extra_text || t0 >= srv->extra_until_ms) {
		struct hl_buf b = HL_BUF_INIT(4 << 20);

		for (int i = 0; i < atomic_load(&srv->n_extra_metrics); i++)
			srv->extra_metrics[i].fn(srv->extra_metrics[i].arg, api_insights_store(srv),
			                         &b);
		took = hl_time_mono_ms() - t0;
		if (!hl_buf_error(&b)) {
			free(srv->extra_text);
			srv->extra_text = hl_buf_detach(&b, &srv->extra_len);
			srv->extra_until_ms =
			        t0 + (took * API_INSIGHTS_CACHE_FACTOR < API_INSIGHTS_CACHE_MAX_MS
			                      ? took * API_INSIGHTS_CACHE_FACTOR
			                      : API_INSIGHTS_CACHE_MAX_MS);
		}
		hl_buf_release(&b);
	}
	if (srv->extra_text)
		hl_buf_append(out, srv->extra_text, srv->extra_len);
	pthread_mutex_unlock(&srv->insights_lock);
}

/* The success metrics of /api/status (contract section 4): the headline
 * numbers of the all-time insights, their targets and generated_at, or null.
 * The dashboard polls the status: on a store whose insights take longer
 * than API_STATUS_WAIT_MS it is answered from the last computation while
 * that is under API_INSIGHTS_CACHE_MAX_MS old, so at most one poll a minute
 * waits for them. */
#define API_STATUS_WAIT_MS 100

static json_t *
api_success_metrics(struct hl_http_server *srv)
{
	static const char *const keys[] = {
		"tasks",
		"routing_correct",
		"duplicates_prevented",
		"time_to_fix_p50_seconds",
		"time_to_fix_p90_seconds",
		"attempt1_success",
		"within_max_success",
		"escalation_rate",
		"targets",
		"meets",
		"generated_at",
	};
	json_t *o = NULL, *v;
	size_t i;

	pthread_mutex_lock(&srv->insights_lock);
	if (!srv->insights_doc || srv->insights_took_ms < API_STATUS_WAIT_MS ||
	    hl_time_mono_ms() - srv->insights_at_ms >= API_INSIGHTS_CACHE_MAX_MS)
		api_insights_refresh(srv);
	if (srv->insights_doc && (o = json_object())) {
		for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			if ((v = json_object_get(srv->insights_doc, keys[i])))
				json_object_set_new(o, keys[i], json_deep_copy(v));
	}
	pthread_mutex_unlock(&srv->insights_lock);
	return o ? o : json_null();
}

enum MHD_Result
hl_http_status(struct http_req *r)
{
	struct api_counts c = { json_object(), json_object(), json_object(), json_object(), 0 };
	struct hl_store *store = api_list_store(r->srv);
	struct hl_err err = HL_ERR_INIT;
	struct hl_delivery_summary last[API_RECENT];
	json_t *o, *recent = json_array(), *d;
	int64_t depth = 0;
	size_t n_last = 0, i;

	json_t *rem = json_pack("{s:o, s:o}", "by_state", json_object(), "attempts_by_outcome",
	                        json_object());

	if (hl_store_counts(store, api_count_cb, &c, &err) < 0 ||
	    hl_store_queue_depth(store, &depth, &err) < 0 ||
	    hl_store_task_counts(store, api_task_count_cb, rem, &err) < 0 ||
	    hl_store_recent_deliveries(store, last, API_RECENT, &n_last, &err) < 0) {
		json_decref(rem);
		json_decref(c.by_event);
		json_decref(c.by_state);
		json_decref(c.by_reason);
		json_decref(c.by_event_state);
		json_decref(recent);
		return hl_http_reply_error(r, 503, "store_unavailable", "%s", err.msg);
	}
	for (i = 0; i < n_last; i++)
		json_array_append_new(recent, hl_api_delivery_json(&last[i]));
	{
		struct hl_task_filter active = { .states = 1u << HL_TASK_QUEUED |
			                                   1u << HL_TASK_RUNNING |
			                                   1u << HL_TASK_VERIFYING,
			                         .limit = API_RECENT };
		struct hl_task_filter done = { .states = 1u << HL_TASK_SUCCEEDED |
			                                 1u << HL_TASK_ESCALATED |
			                                 1u << HL_TASK_STOPPED,
			                       .limit = API_RECENT };
		json_t *a = NULL, *o2 = NULL;
		if (api_newest(&a, store, active.states, false, API_RECENT, &err) == 0 &&
		    api_newest(&o2, store, done.states, true, API_RECENT, &err) == 0) {
			json_object_set(rem, "active", a);
			json_object_set(rem, "recent_outcomes", o2);
		}
		json_decref(a);
		json_decref(o2);
	}
	d = json_pack("{s:I, s:o, s:o, s:o, s:o}", "total", (json_int_t)c.total, "by_event",
	              c.by_event, "by_state", c.by_state, "by_reason", c.by_reason,
	              "by_event_state", c.by_event_state);
	o = json_pack("{s:s, s:s, s:I, s:I, s:o, s:o, s:o, s:o, s:{s:s, s:s}}", "status", "ok",
	              "version", r->srv->version, "uptime_seconds",
	              (json_int_t)((hl_time_mono_ms() - r->srv->started_ms) / 1000), "queue_depth",
	              (json_int_t)depth, "deliveries", d, "remediations", rem, "success_metrics",
	              api_success_metrics(r->srv), "recent", recent, "auth", "webhook",
	              r->srv->cfg->n_webhook_secrets > 0 ? "hmac" : "none", "api",
	              r->srv->cfg->api_token ? "bearer" : "none");
	return api_reply_etag(
	        r, o,
	        (const char *const[]){ "uptime_seconds", "success_metrics.generated_at", NULL });
}

static void
api_metric_count_cb(void *arg, const char *event, const char *state, const char *reason, int64_t n)
{
	struct hl_buf *b = arg;

	hl_buf_append_str(b, "healer_deliveries{event=\"");
	hl_metrics_label(b, event);
	hl_buf_append_str(b, "\",state=\"");
	hl_metrics_label(b, state);
	hl_buf_append_str(b, "\",reason=\"");
	hl_metrics_label(b, reason);
	hl_buf_appendf(b, "\"} %lld\n", (long long)n);
}

static long long
api_rss_bytes(void)
{
	long long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		return 0;
	if (fscanf(f, "%lld %lld", &size, &resident) != 2)
		resident = 0;
	fclose(f);
	return resident * sysconf(_SC_PAGESIZE);
}

enum MHD_Result
hl_http_insights(struct http_req *r)
{
	struct hl_insights_opts o = { .max_attempts = r->srv->cfg->max_attempts,
		                      .learned_routing = r->srv->cfg->learned_routing };
	struct hl_err err = HL_ERR_INIT;
	const char *since = api_arg(r, "since");
	json_t *doc = NULL;
	int64_t ms = 0;
	unsigned seen;
	char msg[128];

	if (!api_args_utf8(r))
		return hl_http_reply_error(r, 400, "bad_request", "a query parameter is not UTF-8");
	if (!api_args_known(&seen, r, (const char *const[]){ "since", "repository", NULL }, msg,
	                    sizeof(msg)))
		return hl_http_reply_error(r, 400, "bad_request", "%s", msg);
	if (since && *since) {
		if (hl_api_parse_duration(&ms, since, &err) < 0)
			return hl_http_reply_error(r, 400, "bad_request", "%s", err.msg);
		o.since_ms = hl_time_wall_ms() - ms;
		o.since = since;
	}
	o.repository = api_arg(r, "repository");
	if (o.repository && !*o.repository)
		o.repository = NULL;
	if (hl_api_insights(&doc, api_insights_store(r->srv), &o, &err) < 0)
		return hl_http_reply_error(r, 503, "store_unavailable", "%s", err.msg);
	return api_reply_etag(r, doc, (const char *const[]){ "generated_at", NULL });
}

enum MHD_Result
hl_http_metrics(struct http_req *r)
{
	struct hl_buf b = HL_BUF_INIT(8 << 20);
	struct hl_err err = HL_ERR_INIT;
	int64_t depth = 0;
	char *body;
	size_t len;

	hl_buf_append_str(&b, "# HELP healer_build_info Build information.\n"
	                      "# TYPE healer_build_info gauge\n");
	hl_buf_appendf(&b, "healer_build_info{version=\"%s\"} 1\n", r->srv->version);
	hl_metrics_render(r->srv->metrics, &b, hl_http_route_name, (int)hl_http_n_routes);
	hl_buf_append_str(&b, "# HELP healer_deliveries Stored deliveries by event, state and "
	                      "reason.\n# TYPE healer_deliveries gauge\n");
	if (hl_store_counts(api_insights_store(r->srv), api_metric_count_cb, &b, &err) < 0 ||
	    hl_store_queue_depth(api_insights_store(r->srv), &depth, &err) < 0) {
		hl_buf_release(&b);
		return hl_http_reply_error(r, 503, "store_unavailable", "%s", err.msg);
	}
	hl_buf_append_str(&b, "# HELP healer_queue_depth Deliveries stored and not yet "
	                      "processed.\n# TYPE healer_queue_depth gauge\n");
	hl_buf_appendf(&b, "healer_queue_depth %lld\n", (long long)depth);
	api_insights_metrics(r, &b);
	api_extra_metrics(r->srv, &b);
	hl_buf_append_str(&b, "# HELP process_resident_memory_bytes Resident memory size in "
	                      "bytes.\n# TYPE process_resident_memory_bytes gauge\n");
	hl_buf_appendf(&b, "process_resident_memory_bytes %lld\n", api_rss_bytes());
	body = hl_buf_detach(&b, &len);
	if (!body)
		return hl_http_reply_error(r, 500, "internal", "metrics too large");
	return hl_http_reply(r, 200, "text/plain; version=0.0.4; charset=utf-8", body, len);
}

/* GET /api/remediations/{task_id}/attempts/{n}/prompt: the rendered
 * prompt of attempt n as text. */
static enum MHD_Result
api_prompt(struct http_req *r, const char *arg, const char *slash)
{
	char task_id[HL_TASK_ID_MAX], number[8], *prompt = NULL;
	const char *end;
	struct hl_err err = HL_ERR_INIT;
	size_t n = (size_t)(slash - arg), digits;
	long k;
	int rc;

	if (n == 0 || n >= sizeof(task_id) || strncmp(slash, "/attempts/", 10) != 0)
		return hl_http_reply_error(r, 404, "not_found", "no such path");
	memcpy(task_id, arg, n);
	task_id[n] = '\0';
	/* the attempt's number as the task document shows it: digits only,
	 * no sign or leading zero ("+1" and "01" are no attempt's path) */
	end = strchr(slash + 10, '/');
	digits = end ? (size_t)(end - (slash + 10)) : 0;
	if (!end || strcmp(end, "/prompt") != 0 || digits == 0 || digits >= sizeof(number) ||
	    slash[10] == '0')
		return hl_http_reply_error(r, 404, "not_found", "no such path");
	memcpy(number, slash + 10, digits);
	number[digits] = '\0';
	if ((k = api_whole_number(number, 1000)) < 1)
		return hl_http_reply_error(r, 404, "not_found", "no such path");
	rc = hl_store_attempt_prompt(api_list_store(r->srv), &prompt, task_id, (int)k, &err);
	if (rc == -HL_ENOTFOUND)
		return hl_http_reply_error(r, 404, "not_found", "no prompt for attempt %ld of '%s'",
		                           k, task_id);
	if (rc < 0)
		return hl_http_reply_error(r, 503, "store_unavailable", "%s", err.msg);
	{
		/* a strong tag of its bytes, as the other documents of a task */
		char etag[HL_DASH_ETAG_MAX];
		const char *inm = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
		                                              MHD_HTTP_HEADER_IF_NONE_MATCH);

		hl_dash_etag(etag, prompt, strlen(prompt));
		const char *hdrs[] = { "ETag",
			               etag,
			               "Cache-Control",
			               API_CACHE_CONTROL,
			               "Content-Security-Policy",
			               "default-src 'none'",
			               NULL };
		if (hl_dash_etag_match(inm, etag)) {
			free(prompt);
			return hl_http_reply_hdrs(r, 304, "text/plain; charset=utf-8", NULL, 0,
			                          hdrs);
		}
		return hl_http_reply_hdrs(r, 200, "text/plain; charset=utf-8", prompt,
		                          strlen(prompt), hdrs);
	}
}

/* The task task_id names, or the one it went to: the id a failure was
 * answered with before it went to an active task names that task. */
static int
api_task_or_alias(struct hl_task_record **task, struct hl_store *store, const char *task_id,
                  struct hl_err *err)
{
	char *owner = NULL;
	int rc = hl_store_task_get(store, task, task_id, err);

	if (rc != -HL_ENOTFOUND)
		return rc;
	*err = (struct hl_err)HL_ERR_INIT;
	rc = hl_store_task_alias_get(store, &owner, task_id, err);
	if (rc == 0)
		rc = hl_store_task_get(store, task, owner, err);
	free(owner);
	return rc;
}

/* The document of a task whose delivery waits for a worker (the 202 named
 * it, its task is not written yet): the task document's keys, "queued",
 * nothing decided yet (null), no attempt; created_at is when the delivery
 * came in. */
static enum MHD_Result
api_waiting_task(struct http_req *r, const char *task_id, const struct hl_task_waiting *w)
{
	struct hl_task_record t = { .task_id = (char *)task_id,
		                    .state = HL_TASK_QUEUED,
		                    .reason = (char *)"waiting for a worker",
		                    .created_ms = w->received_ms };
	json_t *doc = hl_api_task_json(&t);

	if (!doc)
		return hl_http_reply_error(r, 500, "internal", "out of memory");
	json_object_set_new(doc, "attempt", json_null());
	json_object_set_new(doc, "delivery_id", json_string(w->delivery_id));
	return hl_http_reply_json_etag(r, doc);
}

enum MHD_Result
hl_http_remediation(struct http_req *r, const char *task_id)
{
	struct hl_err err = HL_ERR_INIT;
	struct hl_task_record *task = NULL;
	const char *slash = strchr(task_id, '/');
	json_t *doc;
	int rc;

	/* no task id holds other bytes; PostgreSQL would refuse them (503) */
	if (hl_utf8_valid_len(task_id, strlen(task_id)) != strlen(task_id))
		return hl_http_reply_error(r, 404, "not_found", "no remediation '%s'", task_id);
	if (slash)
		return api_prompt(r, task_id, slash);
	if (!*task_id || strlen(task_id) >= HL_TASK_ID_MAX || strchr(task_id, '/'))
		return hl_http_reply_error(r, 404, "not_found", "no remediation '%s'", task_id);
	rc = api_task_or_alias(&task, api_list_store(r->srv), task_id, &err);
	if (rc == -HL_ENOTFOUND) {
		/* answered at intake, not yet taken by a worker */
		struct hl_task_waiting w;

		err = (struct hl_err)HL_ERR_INIT;
		rc = hl_store_task_waiting(api_list_store(r->srv), &w, task_id, &err);
		if (rc == 0)
			return api_waiting_task(r, task_id, &w);
		/* the worker may have written the task since the first look */
		if (rc == -HL_ENOTFOUND)
			rc = api_task_or_alias(&task, api_list_store(r->srv), task_id, &err);
	}
	if (rc == -HL_ENOTFOUND)
		return hl_http_reply_error(r, 404, "not_found", "no remediation '%s'", task_id);
	if (rc < 0)
		return hl_http_reply_error(r, 503, "store_unavailable", "%s", err.msg);
	doc = hl_api_task_json(task);
	hl_task_record_free(task);
	if (!doc)
		return hl_http_reply_error(r, 500, "internal", "out of memory");
	return hl_http_reply_json_etag(r, doc);
}

/* The kinds of task healer writes (struct hl_task's kind). */
static bool
api_task_kind_known(const char *kind)
{
	static const char *const kinds[] = { "ci",     "security", "command",
		                             "action", "alert",    "argocd" };
	size_t i;

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(kind, kinds[i]) == 0)
			return true;
	return false;
}

enum MHD_Result
hl_http_remediations(struct http_req *r)
{
	struct hl_task_filter f = { 0 };
	struct hl_err err = HL_ERR_INIT;
	const char *state = api_arg(r, "state"), *limit;
	json_t *doc = NULL;
	unsigned seen;
	char msg[128];
	int rc;

	if (!api_args_utf8(r))
		return hl_http_reply_error(r, 400, "bad_request", "a query parameter is not UTF-8");
	if (!api_args_known(&seen, r,
	                    (const char *const[]){ "limit", "state", "repository", "agent",
	                                           "failure_type", "kind", "cursor", NULL },
	                    msg, sizeof(msg)))
		return hl_http_reply_error(r, 400, "bad_request", "%s", msg);
	/* a comma list of states, every one of them checked whatever the
	 * list's length (empty items are skipped) */
	for (const char *p = state; p && *p;) {
		size_t n = strcspn(p, ",");
		char name[16];
		enum hl_task_state s = HL_TASK_STATE_INVALID;

		if (n > 0 && n < sizeof(name)) {
			memcpy(name, p, n);
			name[n] = '\0';
			s = hl_task_state_from_name(name);
		}
		if (n > 0 && s == HL_TASK_STATE_INVALID)
			return hl_http_reply_error(r, 400, "bad_request", "no task state '%.*s'",
			                           n > 64 ? 64 : (int)n, p);
		if (n > 0)
			f.states |= 1u << s;
		p += n + (p[n] == ',');
	}
	/* digits only: an empty limit ("limit=") is no number either */
	limit = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "limit");
	if (seen & 1u) { /* "limit", the first name */
		long v = api_whole_number(limit ? limit : "", HL_TASK_LIST_MAX);
		if (v < 1)
			return hl_http_reply_error(r, 400, "bad_request",
			                           "limit must be a whole number between 1 and %d",
			                           HL_TASK_LIST_MAX);
		f.limit = (size_t)v;
	}
	f.repository = api_arg(r, "repository");
	f.agent = api_arg(r, "agent");
	f.failure_type = api_arg(r, "failure_type");
	f.kind = api_arg(r, "kind");
	/* names healer knows (rules/catalog.yaml, the task kinds): another
	 * value is a mistake, not a filter that matches nothing */
	if (f.agent) {
		const struct hl_catalog_agent *ag = hl_catalog_agent_find(f.agent);

		if (!ag)
			return hl_http_reply_error(r, 400, "bad_request", "no agent '%.64s'",
			                           f.agent);
		f.agent = ag->id; /* found in any case; stored as its id ("Rex": "rex") */
	}
	if (f.failure_type && !hl_catalog_type_find(f.failure_type))
		return hl_http_reply_error(r, 400, "bad_request", "no failure type '%.64s'",
		                           f.failure_type);
	if (f.kind && !api_task_kind_known(f.kind))
		return hl_http_reply_error(r, 400, "bad_request", "no task kind '%.64s'", f.kind);
	f.cursor = api_arg(r, "cursor");
	rc = api_list(&doc, api_list_store(r->srv), &f, &err);
	if (rc == -HL_EINVAL)
		return hl_http_reply_error(r, 400, "bad_request", "%s", err.msg);
	if (rc < 0)
		return hl_http_reply_error(r, 503, "store_unavailable", "%s", err.msg);
	return hl_http_reply_json_etag(r, doc);
}
