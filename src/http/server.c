/*
 * server.c - the libmicrohttpd plumbing: listening socket, daemon options
 * and limits, the access handler state machine, routing, replies, request
 * logging and metrics, graceful drain.
 *
 * Request state machine (struct http_req, one per request):
 *   first call      -> route, early 413 from Content-Length, count in flight
 *   body calls      -> append to a 25 MiB-capped buffer (chunked overflow:
 *                      discard and answer 413 at the end)
 *   final call      -> run the route; an intake suspends the connection and
 *                      queues the delivery for the group commit
 *   resumed call    -> the commit finished: answer 202
 *   completed       -> log one JSON line, count, free.
 * Invariant: a suspended request is freed only after the store completed
 * it; drain waits for every in-flight request before MHD_stop_daemon.
 */
#include "server.h"

#include "base/clock.h"
#include "base/log.h"
#include "base/str.h"
#include "decisions.h"
#include "http_impl.h"

#include "json/fast.h"
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HTTP_CONNECTION_LIMIT 1024
#define HTTP_PER_IP_LIMIT     256
#define HTTP_TIMEOUT_S        30
#define HTTP_MAX_THREADS      4

static int64_t
http_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

enum MHD_Result
hl_http_reply(struct http_req *r, unsigned code, const char *ctype, char *body, size_t len)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(
	        len, len ? body : (void *)"", len ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	if (!resp) {
		free(body);
		return MHD_NO;
	}
	if (!len)
		free(body);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	if (atomic_load(&r->srv->stopping))
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	if (code == 405)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, hl_http_route_allow(r->rt));
	ret = MHD_queue_response(r->conn, code, resp);
	MHD_destroy_response(resp);
	r->code = code;
	return ret;
}

enum MHD_Result
hl_http_reply_error(struct http_req *r, unsigned code, const char *error, const char *fmt, ...)
{
	struct hl_buf b = HL_BUF_INIT(0);
	char msg[512];
	va_list ap;
	char *body;
	size_t len;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	hl_buf_append_str(&b, "{\"error\":\"");
	hl_buf_append_json_escaped(&b, error, strlen(error));
	hl_buf_append_str(&b, "\",\"message\":\"");
	hl_buf_append_json_escaped(&b, msg, strlen(msg));
	hl_buf_append_str(&b, "\"}");
	body = hl_buf_detach(&b, &len);
	if (!body)
		return MHD_NO;
	return hl_http_reply(r, code, "application/json; charset=utf-8", body, len);
}

static enum MHD_Result
http_access(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
            const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	struct hl_http_server *srv = cls;
	struct http_req *r = *con_cls;
	const char *cl;

	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r)
			return MHD_NO;
		r->srv = srv;
		r->conn = conn;
		r->t0_us = http_now_us();
		hl_strlcpy(r->method, method, sizeof(r->method));
		hl_strlcpy(r->path, url, sizeof(r->path));
		r->rt = hl_http_route_of(r->path, &r->route_arg);
		hl_buf_init(&r->body, HL_HTTP_MAX_BODY);
		atomic_init(&r->phase, HTTP_READING);
		*con_cls = r;
		atomic_fetch_add(&srv->inflight, 1);
		if (atomic_load(&srv->stopping))
			return hl_http_reply_error(r, 503, "shutting_down",
			                           "the server is shutting down");
		cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
		                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && strtoull(cl, NULL, 10) > HL_HTTP_MAX_BODY) {
			/* Answer before reading the body; MHD closes the
			 * connection after this response. */
			r->too_big = true;
			return hl_http_reply_error(r, 413, "payload_too_large",
			                           "the body exceeds %u bytes", HL_HTTP_MAX_BODY);
		}
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (!r->too_big && hl_buf_append(&r->body, upload_data, *upload_data_size) < 0) {
			r->too_big = true;
			hl_buf_release(&r->body);
		}
		if (r->too_big) {
			r->discarded += *upload_data_size;
			if (r->discarded > 2 * (size_t)HL_HTTP_MAX_BODY)
				return MHD_NO; /* an endless stream: drop the connection */
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (atomic_load(&r->phase) == HTTP_DONE)
		return r->alerts ? hl_http_alerts_reply(r) : hl_http_intake_reply(r);
	return hl_http_dispatch(r, method);
}

static void
http_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
               enum MHD_RequestTerminationCode toe)
{
	struct hl_http_server *srv = cls;
	struct http_req *r = *con_cls;
	char code[16], dur[32];
	int64_t us;

	if (!r)
		return;
	*con_cls = NULL;
	if (atomic_load(&r->phase) == HTTP_WAITING) {
		/* Cannot happen (suspended connections do not complete); never
		 * free memory the committer still holds. */
		hl_error("request completed while its delivery was being committed");
		return;
	}
	us = http_now_us() - r->t0_us;
	if (!r->code)
		r->code = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? 200 : 499;
	hl_metrics_request(srv->metrics, (int)(r->rt - hl_http_routes), r->code, us);
	snprintf(code, sizeof(code), "%u", r->code);
	snprintf(dur, sizeof(dur), "%.3f", (double)us / 1000.0);
	hl_log_kv(HL_LOG_INFO, "request", "method", r->method, "path", r->path, "status", code,
	          "duration_ms", dur, "delivery_id", r->delivery_id, NULL);
	hl_buf_release(&r->body);
	free(r->action);
	free(r->dedup_key);
	free(r->failure_key);
	free(r->headers_json);
	free(r->stored_body);
	json_decref(r->decision);
	hl_http_alerts_free(r->alerts);
	free(r);
	atomic_fetch_sub(&srv->inflight, 1);
}

static void
http_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	hl_debug("libmicrohttpd: %s", msg);
}

static int
http_listen(int *fd_out, int *port_out, const char *host, int port, struct hl_err *err)
{
	struct addrinfo hints, *res = NULL, *ai;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char service[16];
	int fd = -1, one = 1, rc, e = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(service, sizeof(service), "%d", port);
	rc = getaddrinfo(host && *host ? host : NULL, service, &hints, &res);
	if (rc != 0)
		return hl_err_set(err, HL_EIO, "cannot resolve '%s': %s", host, gai_strerror(rc));
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
		            ai->ai_protocol);
		if (fd < 0) {
			e = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 1024) == 0)
			break;
		e = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return hl_err_set(err, HL_EIO, "cannot listen on '%s:%d': %s", host, port,
		                  strerror(e));
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
		port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
		                                      : ((struct sockaddr_in *)&ss)->sin_port);
	*fd_out = fd;
	*port_out = port;
	return 0;
}

/* Store signals: a decision ("<delivery id> <json>") for a waiting sensor call. */
static void
http_on_signal(void *arg, enum hl_store_channel ch, const char *payload)
{
	struct hl_http_server *srv = arg;
	const char *sp;

	if (ch != HL_CHANNEL_DECISION || !(sp = strchr(payload, ' ')))
		return;
	hl_decisions_publish(srv->decisions, payload, (size_t)(sp - payload), sp + 1);
}

int
hl_http_server_start(struct hl_http_server **out, const struct hl_config *cfg,
                     struct hl_store *store, const char *version, struct hl_err *err)
{
	struct hl_http_server *srv;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned threads;
	bool subscribed = false;
	int rc;

	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	srv->listen_fd = -1;
	srv->cfg = cfg;
	srv->store = store;
	srv->version = version;
	srv->started_ms = hl_time_mono_ms();
	atomic_init(&srv->inflight, 0);
	atomic_init(&srv->stopping, false);
	srv->metrics = hl_metrics_new();
	if (!srv->metrics) {
		rc = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto fail;
	}
	rc = hl_decisions_new(&srv->decisions, err);
	if (rc < 0)
		goto fail;
	/* decisions made by any worker (of any replica) reach waiting sensor calls */
	rc = hl_store_subscribe(store, http_on_signal, srv, err);
	if (rc < 0)
		goto fail;
	subscribed = true;
	rc = http_listen(&srv->listen_fd, &srv->port, cfg->listen_host, cfg->listen_port, err);
	if (rc < 0)
		goto fail;
	hl_json_arena_install();
	threads = ncpu < 1 ? 1 : ncpu > HTTP_MAX_THREADS ? HTTP_MAX_THREADS : (unsigned)ncpu;
	srv->daemon = MHD_start_daemon(
	        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
	                MHD_USE_TURBO | MHD_USE_ERROR_LOG,
	        0, NULL, NULL, http_access, srv, MHD_OPTION_LISTEN_SOCKET, srv->listen_fd,
	        MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_LIMIT,
	        (unsigned)HTTP_CONNECTION_LIMIT, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
	        (unsigned)HTTP_PER_IP_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
	        (unsigned)HTTP_TIMEOUT_S, MHD_OPTION_NOTIFY_COMPLETED, http_completed, srv,
	        MHD_OPTION_EXTERNAL_LOGGER, http_mhd_log, srv, MHD_OPTION_END);
	if (!srv->daemon) {
		rc = hl_err_set(err, HL_EINTERNAL, "cannot start the HTTP daemon on port %d",
		                srv->port);
		goto fail;
	}
	*out = srv;
	return 0;
fail:
	if (subscribed)
		hl_store_unsubscribe(store, http_on_signal, srv);
	if (srv->listen_fd >= 0)
		close(srv->listen_fd);
	hl_decisions_free(srv->decisions);
	hl_metrics_free(srv->metrics);
	free(srv);
	return rc;
}

int
hl_http_server_add_metrics(struct hl_http_server *srv, void (*fn)(void *arg, struct hl_buf *out),
                           void *arg)
{
	int n = atomic_load(&srv->n_extra_metrics);

	if (n == 4)
		return -HL_ETOOBIG;
	srv->extra_metrics[n].fn = fn;
	srv->extra_metrics[n].arg = arg;
	atomic_store(&srv->n_extra_metrics, n + 1);
	return 0;
}

int
hl_http_server_port(const struct hl_http_server *srv)
{
	return srv->port;
}

bool
hl_http_server_drain(struct hl_http_server *srv, int timeout_ms)
{
	int64_t deadline = hl_time_mono_ms() + timeout_ms;
	struct timespec ts = { 0, 5 * 1000000L };

	atomic_store(&srv->stopping, true);
	MHD_quiesce_daemon(srv->daemon);
	hl_decisions_release_all(srv->decisions);
	while (atomic_load(&srv->inflight) > 0) {
		if (hl_time_mono_ms() >= deadline)
			return false;
		nanosleep(&ts, NULL);
	}
	return true;
}

void
hl_http_server_stop(struct hl_http_server *srv)
{
	if (!srv)
		return;
	atomic_store(&srv->stopping, true);
	hl_store_unsubscribe(srv->store, http_on_signal, srv);
	hl_decisions_release_all(srv->decisions);
	MHD_stop_daemon(srv->daemon);
	if (srv->listen_fd >= 0)
		close(srv->listen_fd);
	hl_decisions_free(srv->decisions);
	hl_metrics_free(srv->metrics);
	free(srv);
}
