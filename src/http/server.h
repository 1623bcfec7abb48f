/*
 * server.h - healer's HTTP API (contract section 4) on libmicrohttpd.
 *
 * Routes: one table in routes.c (path, methods, authentication, body,
 * handler): POST /webhook, POST /api/remediate/ci-failure,
 * POST /api/remediate/security-alert, GET /health, /ready, /api/status,
 * /metrics, /api/remediations/{task_id}. Deliveries are stored durably
 * (group commit, see store.h) before the 202 is sent; the connection is
 * suspended meanwhile, so no HTTP thread blocks on the disk.
 *
 * Threads: libmicrohttpd's thread pool (one thread per CPU, at most 4),
 * each polling its connections with poll(2): a suspended connection is
 * left out of the next poll, where epoll costs two epoll_ctl calls per
 * delivery to take it out and put it back; and a reaper thread for
 * connection deadlines. Limits: 25 MiB bodies
 * (413 from Content-Length before the body is read, and while streaming
 * chunked bodies); request bodies in memory, all connections together, at
 * most HEALER_HTTP_MAX_BUFFERED_MB (503 beyond); HEALER_HTTP_MAX_CONNECTIONS
 * connections (1024), HEALER_HTTP_MAX_CONNECTIONS_PER_IP from one address
 * (64; no such limit for HEALER_TRUSTED_PROXIES, an ingress), the last
 * eighth of the slots kept for addresses holding fewer than two; absolute
 * deadlines for a new connection's headers
 * (HEALER_HTTP_HEADER_TIMEOUT_S, 10 s), a request's body
 * (HEALER_HTTP_REQUEST_TIMEOUT_S, 60 s) and the next request on a kept-alive
 * connection (30 s, also the idle timeout). A webhook without a signature
 * header (when a secret is set) or a sensor call without the bearer token
 * (when a token is set) is refused before its body is read.
 */
#ifndef HL_HTTP_SERVER_H
#define HL_HTTP_SERVER_H

#include "base/buf.h"
#include "base/err.h"
#include "config/config.h"
#include "store/store.h"

#include <jansson.h>
#include <stdbool.h>

#define HL_HTTP_MAX_BODY (25u * 1024u * 1024u)
/* The body of a dashboard form (/login, /logout): a token and a few fields. */
#define HL_HTTP_MAX_FORM_BODY (16u * 1024u)

struct hl_http_server;

/*
 * Binds cfg->listen_host:cfg->listen_port (port 0 picks a free port) and
 * starts serving. cfg and store are borrowed and must outlive the server.
 * version is reported by /health. Errors: HL_EINVAL (hl_config_check_auth:
 * no authentication beyond loopback), HL_EIO (bind/listen), HL_EINTERNAL.
 */
int hl_http_server_start(struct hl_http_server **out, const struct hl_config *cfg,
                         struct hl_store *store, const char *version, struct hl_err *err);
/* Adds a producer of more metrics to /metrics (at most 4); fn appends
 * Prometheus text to out, reading the store through reader (the server's
 * read-only handle, or its own), and runs on an HTTP thread. What they
 * give is kept as the insights are (api.c): a scrape never costs more
 * than a tenth of a core, however large the store. */
int hl_http_server_add_metrics(struct hl_http_server *srv,
                               void (*fn)(void *arg, struct hl_store *reader, struct hl_buf *out),
                               void *arg);
/* The bound TCP port. */
int hl_http_server_port(const struct hl_http_server *srv);
/*
 * Graceful stop, step 1: stop accepting connections, answer 503 to new
 * requests on open connections, and wait up to timeout_ms for requests in
 * flight (including deliveries waiting for their commit) to be answered.
 * Returns true when none is left. The store must still be open.
 */
bool hl_http_server_drain(struct hl_http_server *srv, int timeout_ms);
/*
 * Before the drain, on the way out: /ready answers 503 ("shutting down")
 * so load balancers stop sending, while every route keeps being served.
 */
void hl_http_server_leave(struct hl_http_server *srv);
/* Step 2: closes every connection and frees the server. NULL is a no-op. */
void hl_http_server_stop(struct hl_http_server *srv);

#endif
