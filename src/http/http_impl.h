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
};

enum http_phase {
	HTTP_READING = 0, /* headers or body arriving */
	HTTP_WAITING,     /* suspended until the store commits the delivery */
	HTTP_DONE,        /* the commit finished; answer on the next call */
};

struct http_req {
	struct hl_http_server *srv;
	struct MHD_Connection *conn;
	enum hl_route route;
	int64_t t0_us;
	char method[12];
	char path[160];
	struct hl_buf body;
	bool too_big;
	size_t discarded;
	atomic_int phase;
	unsigned code;
	bool sensor;
	int kind; /* event kind index for metrics */
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
};

/* Queues a response; takes body (malloc'd, may be NULL when len is 0). */
enum MHD_Result hl_http_reply(struct http_req *r, unsigned code, const char *ctype, char *body,
                              size_t len);
/* Queues {"error": code, "message": ...}. */
enum MHD_Result hl_http_reply_error(struct http_req *r, unsigned code, const char *error,
                                    const char *fmt, ...) HL_PRINTF(4, 5);

/* The intake routes (intake.c). */
enum MHD_Result hl_http_webhook(struct http_req *r);
enum MHD_Result hl_http_remediate(struct http_req *r);
/* Answers a delivery once its commit finished. */
enum MHD_Result hl_http_intake_reply(struct http_req *r);

/* The read-only routes (api.c). */
enum MHD_Result hl_http_health(struct http_req *r);
enum MHD_Result hl_http_ready(struct http_req *r);
enum MHD_Result hl_http_status(struct http_req *r);
enum MHD_Result hl_http_metrics(struct http_req *r);
enum MHD_Result hl_http_remediation(struct http_req *r, const char *task_id);

#endif
