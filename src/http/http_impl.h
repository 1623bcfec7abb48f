/*
 * http_impl.h - shared between the HTTP server files (private to src/http):
 * the server and per-request state, and the reply helpers.
 */
#ifndef HL_HTTP_HTTP_IMPL_H
#define HL_HTTP_HTTP_IMPL_H

#include "base/buf.h"
#include "config/config.h"
#include "metrics.h"
#include "store/store.h"

#include <jansson.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct hl_http_server {
	struct MHD_Daemon *daemon;
	int listen_fd;
	int port;
	const struct hl_config *cfg;
	struct hl_store *store;
	const char *version;
	struct hl_metrics *metrics;
	int64_t started_ms;
	atomic_int inflight; /* requests between their first byte and completion */
	atomic_bool stopping;
	struct hl_decision_board *decisions; /* sensor answers waiting for a decision */
	struct {
		void (*fn)(void *arg, struct hl_buf *out);
		void *arg;
	} extra_metrics[4]; /* an entry is written before n_extra_metrics counts it */
	atomic_int n_extra_metrics;
};

/* What a route accepts (routes.c). */
enum { HTTP_GET = 1u << 0, HTTP_POST = 1u << 1 };
enum http_match { HTTP_MATCH_EXACT, HTTP_MATCH_PREFIX };
enum http_auth {
	HTTP_AUTH_NONE,      /* open (probes, read-only status) */
	HTTP_AUTH_SIGNATURE, /* X-Hub-Signature-256 over the body, by the handler */
	HTTP_AUTH_TOKEN,     /* Authorization: Bearer HEALER_API_TOKEN, by the dispatcher */
};

struct http_req;

struct hl_http_route {
	const char *name; /* the metrics label */
	const char *path; /* NULL for the catch-all last entry */
	enum http_match match;
	unsigned methods; /* HTTP_GET (GET and HEAD) | HTTP_POST */
	enum http_auth auth;
	bool body; /* reads a request body (capped at HL_HTTP_MAX_BODY) */
	enum MHD_Result (*handler)(struct http_req *r, const char *arg);
};

/* The table; its index is the route id of the request metrics. */
extern const struct hl_http_route hl_http_routes[];
extern const size_t hl_http_n_routes;

enum http_phase {
	HTTP_READING = 0, /* headers or body arriving */
	HTTP_WAITING,     /* suspended until the store commits the delivery */
	HTTP_DONE,        /* the commit finished; answer on the next call */
};

struct http_req {
	struct hl_http_server *srv;
	struct MHD_Connection *conn;
	const struct hl_http_route *rt; /* never NULL: unknown paths get the catch-all */
	const char *route_arg;          /* what follows a prefix route's path */
	int64_t t0_us;
	char method[12];
	char path[160];
	struct hl_buf body;
	bool too_big;
	size_t discarded;
	atomic_int phase;
	unsigned code;
	bool sensor;
	int kind;   /* event kind index for metrics */
	int intent; /* the event's intent (enum hl_event_intent) */
	char delivery_id[HL_DELIVERY_ID_MAX + 1];
	char event_name[65];
	char task_id[HL_TASK_ID_MAX];
	char skip[64];
	char *action;
	char *dedup_key;
	char *failure_key;
	char *headers_json;
	char *stored_body; /* the JSON stored when it differs from the raw body */
	struct hl_intake_req ireq;
	/* ci-failure sensor calls waiting for the decision (decisions.c) */
	json_t *decision;
	int64_t wait_deadline_ms;
	struct http_req *wait_next;
	/* the alert routes: one delivery per alert (alerts.c), or NULL */
	struct http_alerts *alerts;
};

/* Queues a response; takes body (malloc'd, may be NULL when len is 0). */
enum MHD_Result hl_http_reply(struct http_req *r, unsigned code, const char *ctype, char *body,
                              size_t len);
/* Queues {"error": code, "message": ...}. */
enum MHD_Result hl_http_reply_error(struct http_req *r, unsigned code, const char *error,
                                    const char *fmt, ...) HL_PRINTF(4, 5);

/* The route of a path (the catch-all when none matches); *arg gets what
 * follows a prefix route's path (inside url). */
const struct hl_http_route *hl_http_route_of(const char *url, const char **arg);
/* The name of route index i (for metrics labels). */
const char *hl_http_route_name(int i);
/* The Allow header of a route. */
const char *hl_http_route_allow(const struct hl_http_route *rt);
/* Method, authentication and size checks of r's route, then its handler. */
enum MHD_Result hl_http_dispatch(struct http_req *r, const char *method);

/* The intake routes (intake.c). */
enum MHD_Result hl_http_webhook(struct http_req *r);
enum MHD_Result hl_http_remediate(struct http_req *r);
/* Answers a delivery once its commit finished. */
enum MHD_Result hl_http_intake_reply(struct http_req *r);

/* The alert routes (alerts.c): POST /api/alerts/alertmanager and
 * /api/alerts/argocd; the answer once every alert's commit finished; the
 * request's alert state (NULL is a no-op). */
struct http_alerts;
enum MHD_Result hl_http_alerts(struct http_req *r, const char *arg);
enum MHD_Result hl_http_alerts_reply(struct http_req *r);
void hl_http_alerts_free(struct http_alerts *al);

/* The read-only routes (api.c). */
enum MHD_Result hl_http_health(struct http_req *r);
enum MHD_Result hl_http_ready(struct http_req *r);
enum MHD_Result hl_http_status(struct http_req *r);
enum MHD_Result hl_http_metrics(struct http_req *r);
enum MHD_Result hl_http_remediation(struct http_req *r, const char *task_id);

#endif
