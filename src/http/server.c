/*
 * server.c - the libmicrohttpd plumbing: listening socket, daemon options
 * and limits, the access handler state machine, routing, replies, request
 * logging and metrics, graceful drain.
 *
 * Request state machine (struct http_req, one per request):
 *   first call      -> route; refusals that need no body, answered before a
 *                      body byte is read (the connection then closes):
 *                      too many query arguments or an encoded NUL byte
 *                      (400), conflicting
 *                      Content-Length or Transfer-Encoding headers (400), a
 *                      transfer coding other than chunked (501), a missing
 *                      signature or bearer token where the route needs one
 *                      (401), Content-Length above the route's cap (25 MiB,
 *                      a dashboard form 16 KiB: 413), no room in the body
 *                      budget for the first 64 KiB (503);
 *                      count in flight. Only what a body can fill at once is
 *                      taken from the budget here, not its announced length:
 *                      a few connections announcing 25 MiB and sending
 *                      nothing would hold the whole budget, refusing every
 *                      delivery until their deadline
 *   body calls      -> append to a buffer capped by the route whose growth is
 *                      taken from the budget: the server's, and at most half
 *                      of it for one client address other than a trusted
 *                      proxy (chunked overflow:
 *                      discard and answer 413 at the end; budget spent:
 *                      discard and answer 503); routes without a body
 *                      discard it
 *   final call      -> run the route; an intake suspends the connection and
 *                      queues the delivery for the group commit; a slow read
 *                      route suspends it and queues itself for a reader
 *                      thread (readers.c), which builds its reply
 *   resumed call    -> the commit finished: answer 202; or send the reply
 *                      the reader built
 *   completed       -> log one JSON line, count, give the budget back, free.
 * Invariant: a suspended request is freed only after the store (or its
 * reader) completed it; drain waits for every in-flight request before
 * MHD_stop_daemon.
 *
 * Connections (struct http_conn, MHD's socket context) are admitted by an
 * accept policy: at most HEALER_HTTP_MAX_CONNECTIONS in all, at most
 * HEALER_HTTP_MAX_CONNECTIONS_PER_IP from one address, and the last eighth
 * of the slots only for addresses holding fewer than two, so one busy
 * address (or a few) cannot keep probes and other clients out. Every
 * connection has an absolute deadline for what it waits for, whatever
 * trickles in: a new connection's headers (HEALER_HTTP_HEADER_TIMEOUT_S), a
 * request's body (HEALER_HTTP_REQUEST_TIMEOUT_S), the next request on a
 * kept-alive connection (the idle timeout). The reaper thread shuts down a
 * connection past its deadline; libmicrohttpd then closes it. The reaper
 * holds conn_lock while it calls shutdown(), and libmicrohttpd reports a
 * connection closed (which takes conn_lock) before it closes the socket, so
 * the descriptor it shuts down is never another connection's.
 */
#include "server.h"

#include "base/clock.h"
#include "base/log.h"
#include "base/str.h"
#include "crypto/hmac.h"
#include "decisions.h"
#include "http_impl.h"

#include "json/fast.h"
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HTTP_TIMEOUT_S        30 /* idle, and the keep-alive deadline */
#define HTTP_MAX_THREADS      4
#define HTTP_MAX_QUERY_ARGS   64
#define HTTP_REAP_TICK_MS     200
#define HTTP_STOP_WAIT_MS     10000         /* for suspended requests at stop */
#define HTTP_BODYLESS_DISCARD (64u * 1024u) /* body bytes a GET may bring */
#define HTTP_FEW_CONNECTIONS  2             /* fewer than this may use the reserved slots */
#define HTTP_BODY_FIRST       (64u * 1024u) /* body bytes buffered before any arrived */
/* libmicrohttpd's memory per connection (request line, headers, its read
 * and write buffers; bodies are copied out as they come), zeroed for every
 * request of a kept-alive connection: a webhook's headers take about 1 KB,
 * and half the pool, its first read buffer, holds a whole ~10 KB delivery,
 * so one recv takes it */
#define HTTP_POOL_BYTES (24u * 1024u)

/* The URI log callback's marks for a request refused by its request line
 * (a mark becomes the request's initial con_cls): too many query arguments,
 * or an encoded NUL byte (%00), which libmicrohttpd's decoding turns into
 * the end of the path or of a parameter's value: "/health%00x" would be
 * /health, and "/api/remediations/ID%00junk" the task ID. */
static char http_too_many_args, http_nul_in_uri;

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
	return hl_http_reply_hdrs(r, code, ctype, body, len, NULL);
}

enum MHD_Result
hl_http_reply_hdrs(struct http_req *r, unsigned code, const char *ctype, char *body, size_t len,
                   const char *const *hdrs)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	size_t i;

	if (r->on_reader && atomic_load(&r->phase) == HTTP_WAITING) {
		/* on a reader thread: sent once the connection resumed */
		hl_http_readers_keep(r, code, ctype, body, len, hdrs);
		return MHD_YES;
	}
	resp = MHD_create_response_from_buffer(
	        len, len ? body : (void *)"", len ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	if (!resp) {
		free(body);
		return MHD_NO;
	}
	if (!len)
		free(body);
	/* a 304 carries no representation metadata (RFC 9110 15.4.5) */
	if (code != 304)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	/* no client may guess another type than the one named (a JSON error
	 * that quotes the request is never rendered as HTML) */
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	for (i = 0; hdrs && hdrs[i] && hdrs[i + 1] && i < 32; i += 2)
		MHD_add_response_header(resp, hdrs[i], hdrs[i + 1]);
	if (atomic_load(&r->srv->stopping))
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	if (code == 405)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, hl_http_route_allow(r->rt));
	/* a 401 names its scheme (RFC 9110 11.6.1) */
	if (code == 401 && (r->rt->auth == HTTP_AUTH_TOKEN || r->rt->auth == HTTP_AUTH_READ))
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
		                        "Bearer realm=\"healer\"");
	if (code == 503)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "5");
	ret = MHD_queue_response(r->conn, code, resp);
	MHD_destroy_response(resp);
	r->code = code;
	return ret;
}

/* s JSON-escaped, its invalid UTF-8 bytes (a message may quote a path or a
 * parameter as the client sent it, or a bounded copy may have cut a
 * character) as U+FFFD: a JSON text is UTF-8 (RFC 8259). */
void
hl_http_append_utf8_escaped(struct hl_buf *b, const char *s, size_t n)
{
	size_t i = 0, k;

	while (i < n) {
		k = hl_utf8_valid_len(s + i, n - i);
		hl_buf_append_json_escaped(b, s + i, k);
		i += k;
		if (i < n) {
			hl_buf_append_str(b, "\\ufffd");
			i++;
		}
	}
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
	hl_http_append_utf8_escaped(&b, msg, strlen(msg));
	hl_buf_append_str(&b, "\"}");
	body = hl_buf_detach(&b, &len);
	if (!body)
		return MHD_NO;
	return hl_http_reply(r, code, "application/json; charset=utf-8", body, len);
}

/* ---- connections: addresses, admission, deadlines ------------------------ */

static int64_t
http_now_ms(void)
{
	return http_now_us() / 1000;
}

static void
http_addr_of(struct http_addr *out, const struct sockaddr *sa)
{
	memset(out, 0, sizeof(*out));
	if (!sa)
		return;
	if (sa->sa_family == AF_INET) {
		memcpy(out->b, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
		out->len = 4;
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a =
		        &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a)) {
			memcpy(out->b, a->s6_addr + 12, 4);
			out->len = 4;
		} else {
			memcpy(out->b, a->s6_addr, 16);
			out->len = 16;
		}
	}
}

void
hl_http_client_addr(struct http_req *r, struct http_addr *out)
{
	const union MHD_ConnectionInfo *ci =
	        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

	http_addr_of(out, ci ? ci->client_addr : NULL);
}

/* The address's entry, or NULL. Under conn_lock. */
static struct http_ip *
http_ip_find(struct hl_http_server *srv, const struct http_addr *a)
{
	int i;

	for (i = 0; i < srv->n_ips; i++)
		if (srv->ips[i].addr.len == a->len && memcmp(srv->ips[i].addr.b, a->b, a->len) == 0)
			return &srv->ips[i];
	return NULL;
}

/* Whether an address is one of HEALER_TRUSTED_PROXIES (an ingress or load
 * balancer, carrying many clients' connections). The list is set before the
 * daemon starts and only read after. */
static bool
http_peer_trusted(const struct hl_http_server *srv, const struct http_addr *a)
{
	return srv->login_guard.n_proxies > 0 &&
	       hl_cidr_match(srv->login_guard.proxies, srv->login_guard.n_proxies, a->b, a->len);
}

/* Whether one more connection from address a holding n may be admitted: a
 * trusted proxy is exempt from the per-address limit, not from the global
 * one nor the reserved slots. Under conn_lock. */
static bool
http_admissible(const struct hl_http_server *srv, const struct http_addr *a, int n)
{
	int max = srv->cfg->http_max_connections, reserve = max / 8;

	return srv->n_conns < max && (n < srv->cfg->http_max_per_ip || http_peer_trusted(srv, a)) &&
	       (srv->n_conns < max - reserve || n < HTTP_FEW_CONNECTIONS);
}

/* Refuses a connection early (called by libmicrohttpd before it creates the
 * connection). Each thread of the pool accepts on its own, so two may pass
 * here for an address's last slot: http_notify_connection decides. */
static enum MHD_Result
http_accept_policy(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	struct hl_http_server *srv = cls;
	struct http_addr a;
	struct http_ip *ip;
	bool ok;
	int n, open;

	(void)addrlen;
	if (atomic_load(&srv->stopping))
		return MHD_NO;
	http_addr_of(&a, addr);
	pthread_mutex_lock(&srv->conn_lock);
	ip = http_ip_find(srv, &a);
	n = ip ? ip->n : 0;
	ok = http_admissible(srv, &a, n);
	open = srv->n_conns; /* read under the lock: other threads change it */
	pthread_mutex_unlock(&srv->conn_lock);
	if (!ok)
		hl_debug("refusing a connection (%d open, %d from its address)", open, n);
	return ok ? MHD_YES : MHD_NO;
}

static void
http_conn_set(struct http_conn *c, enum http_conn_state st)
{
	if (!c)
		return;
	atomic_store(&c->since_ms, http_now_ms());
	atomic_store(&c->state, (int)st);
}

static struct http_conn *
http_conn_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
	        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci ? ci->socket_context : NULL;
}

static void
http_notify_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                       enum MHD_ConnectionNotificationCode code)
{
	struct hl_http_server *srv = cls;
	struct http_conn *c = *socket_context;
	const union MHD_ConnectionInfo *ci;
	struct http_ip *ip;
	bool admitted;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		c = calloc(1, sizeof(*c));
		if (!c)
			return; /* untracked: no deadline, not counted */
		ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		c->fd = ci ? ci->connect_fd : -1;
		c->mhd = conn;
		ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		http_addr_of(&c->addr, ci ? ci->client_addr : NULL);
		http_conn_set(c, HTTP_CONN_HEADERS);
		pthread_mutex_lock(&srv->conn_lock);
		ip = http_ip_find(srv, &c->addr);
		admitted = http_admissible(srv, &c->addr, ip ? ip->n : 0);
		c->next = srv->conns;
		if (srv->conns)
			srv->conns->prev = c;
		srv->conns = c;
		srv->n_conns++;
		if (!admitted) {
			/* another thread took the last slot since the accept
			 * policy: libmicrohttpd sees the end and closes it */
			if (c->fd >= 0)
				shutdown(c->fd, SHUT_RDWR);
			c->reaped = true;
		} else if (ip) {
			ip->n++;
			c->counted = true;
		} else if (srv->n_ips < srv->cap_ips) {
			srv->ips[srv->n_ips].addr = c->addr;
			srv->ips[srv->n_ips].n = 1;
			srv->ips[srv->n_ips].buffered = 0; /* the slot may hold a removed one's */
			srv->n_ips++;
			c->counted = true;
		}
		pthread_mutex_unlock(&srv->conn_lock);
		if (!admitted)
			hl_debug("refusing a connection: its address's last slot was taken");
		*socket_context = c;
		return;
	}
	if (!c)
		return;
	pthread_mutex_lock(&srv->conn_lock);
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	srv->n_conns--;
	if (c->counted && (ip = http_ip_find(srv, &c->addr)) != NULL && --ip->n == 0)
		*ip = srv->ips[--srv->n_ips];
	pthread_mutex_unlock(&srv->conn_lock);
	free(c);
	*socket_context = NULL;
}

/* Shuts down every connection past its deadline, every HTTP_REAP_TICK_MS. */
static void *
http_reaper_main(void *arg)
{
	struct hl_http_server *srv = arg;
	const int64_t limits[] = {
		[HTTP_CONN_HEADERS] = (int64_t)srv->cfg->http_header_timeout_s * 1000,
		[HTTP_CONN_KEEPALIVE] = (int64_t)(srv->cfg->http_header_timeout_s > HTTP_TIMEOUT_S
		                                          ? srv->cfg->http_header_timeout_s
		                                          : HTTP_TIMEOUT_S) *
		                        1000,
		[HTTP_CONN_BODY] = (int64_t)srv->cfg->http_request_timeout_s * 1000,
		[HTTP_CONN_BUSY] = 0,
	};
	struct timespec ts;
	struct http_conn *c;
	int64_t now;
	int st;

	pthread_setname_np(pthread_self(), "hl-reaper");
	pthread_mutex_lock(&srv->conn_lock);
	while (!srv->reaper_stop) {
		hl_time_deadline(&ts, CLOCK_MONOTONIC, HTTP_REAP_TICK_MS);
		pthread_cond_timedwait(&srv->reaper_cond, &srv->conn_lock, &ts);
		now = http_now_ms();
		for (c = srv->conns; c && !srv->reaper_stop; c = c->next) {
			st = atomic_load(&c->state);
			if (c->reaped || c->fd < 0 || st < 0 || st > HTTP_CONN_BUSY ||
			    !limits[st] || now - atomic_load(&c->since_ms) <= limits[st])
				continue;
			/* libmicrohttpd sees the end of the stream and closes it */
			shutdown(c->fd, SHUT_RDWR);
			c->reaped = true;
			hl_debug("closed a connection past its %s deadline",
			         st == HTTP_CONN_BODY ? "body" : "header");
		}
	}
	pthread_mutex_unlock(&srv->conn_lock);
	return NULL;
}

/* Looks at the request line's target before libmicrohttpd decodes and
 * parses it. An encoded NUL byte marks the request (answered 400). Query
 * arguments are counted: past HTTP_MAX_QUERY_ARGS the request is marked
 * (answered 400) and the query is cut at '?' so that libmicrohttpd does not
 * parse it at all (the line is its own read buffer, which it modifies right
 * after this call). */
static void *
http_uri_log(void *cls, const char *uri, struct MHD_Connection *conn)
{
	const char *q = uri ? strchr(uri, '?') : NULL;
	size_t n = 1;

	(void)cls;
	(void)conn;
	if (uri && strstr(uri, "%00"))
		return &http_nul_in_uri;
	if (!q)
		return NULL;
	for (const char *p = q + 1; *p; p++)
		if (*p == '&' && ++n > HTTP_MAX_QUERY_ARGS)
			break;
	if (n <= HTTP_MAX_QUERY_ARGS)
		return NULL;
	((char *)q)[1] = '\0';
	return &http_too_many_args;
}

/* ---- the request body budget --------------------------------------------- */

/* Takes n bytes of the body budget for r: the server's, and its address's
 * share (srv->peer_share), so one address cannot hold it all with bodies
 * it never finishes (a webhook's signature is checked at its end); a
 * trusted proxy (an ingress, whose one address carries every client) is
 * held to the server's budget alone. False when they do not fit. */
static bool
http_budget_take(struct http_req *r, size_t n)
{
	struct hl_http_server *srv = r->srv;
	size_t share = srv->peer_share;
	size_t cur = atomic_load(&srv->buffered);
	struct http_ip *ip;
	bool ok = true;

	pthread_mutex_lock(&srv->conn_lock);
	ip = r->peer.len ? http_ip_find(srv, &r->peer) : NULL;
	if (ip && !http_peer_trusted(srv, &r->peer) && (n > share || ip->buffered > share - n))
		ok = false;
	while (ok) {
		if (n > srv->max_buffered || cur > srv->max_buffered - n)
			ok = false;
		else if (atomic_compare_exchange_weak(&srv->buffered, &cur, cur + n))
			break;
	}
	if (ok && ip)
		ip->buffered += n;
	pthread_mutex_unlock(&srv->conn_lock);
	return ok;
}

/* Gives n bytes of r's budget back. */
static void
http_budget_give(struct http_req *r, size_t n)
{
	struct hl_http_server *srv = r->srv;
	struct http_ip *ip;

	if (!n)
		return;
	atomic_fetch_sub(&srv->buffered, n);
	pthread_mutex_lock(&srv->conn_lock);
	ip = r->peer.len ? http_ip_find(srv, &r->peer) : NULL;
	if (ip)
		ip->buffered -= n < ip->buffered ? n : ip->buffered;
	pthread_mutex_unlock(&srv->conn_lock);
}

/* The capacity hl_buf_grow gives a buffer of capacity cap that must hold
 * need bytes (it doubles from 64). */
static size_t
http_cap_for(size_t cap, size_t need)
{
	size_t c = cap ? cap : 64;

	while (c < need)
		c = c > ((size_t)-1) / 2 ? need : c * 2;
	return c;
}

/* Gives up the request's buffer and its share of the budget. */
static void
http_budget_drop(struct http_req *r)
{
	hl_buf_release(&r->body);
	http_budget_give(r, r->reserved);
	r->reserved = 0;
}

/* Matches the budget to the buffer's capacity after it grew. */
static void
http_budget_sync(struct http_req *r)
{
	if (r->body.cap > r->reserved) {
		struct http_ip *ip;

		atomic_fetch_add(&r->srv->buffered, r->body.cap - r->reserved);
		pthread_mutex_lock(&r->srv->conn_lock);
		if (r->peer.len && (ip = http_ip_find(r->srv, &r->peer)) != NULL)
			ip->buffered += r->body.cap - r->reserved;
		pthread_mutex_unlock(&r->srv->conn_lock);
		r->reserved = r->body.cap;
	}
}

/* Appends a body chunk within the route's cap and the budget. */
static void
http_body_append(struct http_req *r, const char *data, size_t n)
{
	size_t need = r->body.len + n + 1;

	if (r->too_big || r->over_budget)
		return;
	if (need > r->body.cap && need <= r->rt->max_body + 1) {
		size_t cap = http_cap_for(r->body.cap, need);

		if (cap > r->reserved) {
			if (!http_budget_take(r, cap - r->reserved)) {
				r->over_budget = true;
				http_budget_drop(r);
				return;
			}
			r->reserved = cap;
		}
	}
	if (hl_buf_append(&r->body, data, n) < 0) {
		r->too_big = true;
		http_budget_drop(r);
		return;
	}
	http_budget_sync(r);
}

/* ---- refusals before the body -------------------------------------------- */

struct http_framing {
	int n_cl, n_te;
	const char *cl, *te;
	bool cl_differ;
};

static enum MHD_Result
http_framing_cb(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct http_framing *f = cls;

	(void)kind;
	if (!key)
		return MHD_YES;
	if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
		if (f->n_cl++ && (!value || !f->cl || strcmp(value, f->cl) != 0))
			f->cl_differ = true;
		f->cl = value;
	} else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
		f->n_te++;
		f->te = value;
	}
	return MHD_YES;
}

/* "chunked", any case, after optional whitespace (the parser strips it).
 * Not with trailing whitespace: libmicrohttpd 0.9.75 keeps it in the value,
 * does not frame such a body as chunked, and never ends the request. */
static bool
http_is_chunked(const char *te)
{
	while (*te == ' ' || *te == '\t')
		te++;
	return strcasecmp(te, "chunked") == 0;
}

/* "sha256=" and 64 hex digits, between optional spaces and tabs (RFC
 * 9110 section 5.5: not part of the value; intake.c trims them). */
static bool
http_signature_shaped(const char *sig)
{
	size_t i;

	while (sig && (*sig == ' ' || *sig == '\t'))
		sig++;
	if (!sig || strncmp(sig, "sha256=", 7) != 0)
		return false;
	for (i = 0; i < 64; i++)
		if (!isxdigit((unsigned char)sig[7 + i]))
			return false;
	sig += 7 + 64;
	while (*sig == ' ' || *sig == '\t')
		sig++;
	return *sig == '\0';
}

static unsigned
http_method_bit(const char *method)
{
	if (strcmp(method, MHD_HTTP_METHOD_POST) == 0)
		return HTTP_POST;
	if (strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0)
		return HTTP_GET;
	return 0;
}

/*
 * Everything that can be refused before a body byte is read, and the body
 * budget of a Content-Length body. Returns MHD_YES with nothing queued
 * when the request may go on; otherwise the result of queueing the refusal
 * (libmicrohttpd then reads no body and closes the connection).
 */
static enum MHD_Result
http_first_checks(struct http_req *r, const char *mark)
{
	const struct hl_config *cfg = r->srv->cfg;
	const struct hl_http_route *rt = r->rt;
	struct http_framing f = { 0 };
	unsigned long long cl = 0;
	enum MHD_Result ret;
	bool has_body;

	if (atomic_load(&r->srv->stopping))
		return hl_http_reply_error(r, 503, "shutting_down", "the server is shutting down");
	if (mark == &http_too_many_args)
		return hl_http_reply_error(r, 400, "bad_request", "more than %d query arguments",
		                           HTTP_MAX_QUERY_ARGS);
	if (mark == &http_nul_in_uri)
		return hl_http_reply_error(r, 400, "bad_request",
		                           "the URL holds an encoded NUL byte (%%00)");
	MHD_get_connection_values(r->conn, MHD_HEADER_KIND, http_framing_cb, &f);
	if (f.cl_differ)
		return hl_http_reply_error(r, 400, "bad_request",
		                           "conflicting 'Content-Length' headers");
	if (f.n_te && f.n_cl)
		return hl_http_reply_error(
		        r, 400, "bad_request",
		        "a request must not have both 'Transfer-Encoding' and 'Content-Length'");
	if (f.n_te > 1)
		return hl_http_reply_error(r, 400, "bad_request",
		                           "more than one 'Transfer-Encoding' header");
	if (f.n_te && !http_is_chunked(f.te ? f.te : ""))
		return hl_http_reply_error(r, 501, "not_implemented",
		                           "'Transfer-Encoding' must be chunked");
	if (f.cl)
		cl = strtoull(f.cl, NULL, 10);
	has_body = f.n_te || cl > 0;
	/* the route's own checks, early only when a body would follow */
	if (!rt->handler || !(http_method_bit(r->method) & rt->methods)) {
		if (has_body)
			return hl_http_dispatch(r, r->method); /* 404 or 405 */
		return MHD_YES;
	}
	if (cl > (rt->max_body ? rt->max_body : HTTP_BODYLESS_DISCARD)) {
		/* MHD closes the connection after this response */
		r->too_big = true;
		return hl_http_reply_error(r, 413, "payload_too_large", "the body exceeds %zu bytes",
		                           rt->max_body ? rt->max_body : (size_t)HTTP_BODYLESS_DISCARD);
	}
	if (hl_http_auth_refused(r, &ret))
		return ret;
	if (rt->auth == HTTP_AUTH_SIGNATURE && cfg->n_webhook_secrets > 0 &&
	    !http_signature_shaped(
	            MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Hub-Signature-256")))
		return hl_http_reply_error(r, 401, "invalid_signature",
		                           "missing or malformed 'X-Hub-Signature-256' header");
	if (rt->max_body && cl > 0) {
		/* the rest is taken as it arrives (http_body_append) */
		size_t first = cl < HTTP_BODY_FIRST ? (size_t)cl : HTTP_BODY_FIRST;
		size_t want = http_cap_for(0, first + 1);

		if (!http_budget_take(r, want))
			return hl_http_reply_error(
			        r, 503, "overloaded",
			        "too many request bodies in memory; retry later");
		r->reserved = want;
		if (hl_buf_grow(&r->body, first) < 0) {
			http_budget_drop(r);
			return hl_http_reply_error(r, 503, "overloaded", "out of memory");
		}
		http_budget_sync(r);
	}
	return MHD_YES;
}

static enum MHD_Result
http_access(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
            const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	struct hl_http_server *srv = cls;
	struct http_req *r = *con_cls;
	const char *mark = NULL;

	if (r == (void *)&http_too_many_args || r == (void *)&http_nul_in_uri) {
		mark = (const char *)r;
		r = NULL;
	}
	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r)
			return MHD_NO;
		r->srv = srv;
		r->conn = conn;
		r->t0_us = http_now_us();
		hl_strlcpy(r->method, method, sizeof(r->method));
		/* a path longer than any route's is no route's: cut to fit,
		 * it could name another resource (a prefix route's) */
		if (hl_strlcpy(r->path, url, sizeof(r->path)) < sizeof(r->path))
			r->rt = hl_http_route_of(r->path, &r->route_arg);
		else
			r->rt = hl_http_route_other(&r->route_arg);
		hl_buf_init(&r->body, r->rt->max_body); /* unused by a body-less route */
		hl_http_client_addr(r, &r->peer);
		atomic_init(&r->phase, HTTP_READING);
		*con_cls = r;
		atomic_fetch_add(&srv->inflight, 1);
		http_conn_set(http_conn_of(conn), HTTP_CONN_BODY);
		return http_first_checks(r, mark);
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;

		*upload_data_size = 0;
		if (r->rt->max_body) {
			http_body_append(r, upload_data, n);
			if (!r->too_big && !r->over_budget)
				return MHD_YES;
		}
		r->discarded += n;
		if (r->discarded >
		    (r->rt->max_body ? 2 * r->rt->max_body : HTTP_BODYLESS_DISCARD))
			return MHD_NO; /* an endless stream: drop the connection */
		return MHD_YES;
	}
	if (atomic_load(&r->phase) == HTTP_DONE && r->on_reader)
		return hl_http_readers_reply(r);
	if (atomic_load(&r->phase) == HTTP_DONE) {
		/* what /ready reports: whether intake can store a delivery */
		if (!r->alerts) {
			if (r->ireq.rc < 0)
				atomic_store(&r->srv->intake_failed_ms, hl_time_mono_ms());
			atomic_store(&r->srv->intake_failing, r->ireq.rc < 0);
		}
		return r->alerts ? hl_http_alerts_reply(r) : hl_http_intake_reply(r);
	}
	http_conn_set(http_conn_of(conn), HTTP_CONN_BUSY);
	if (r->over_budget)
		return hl_http_reply_error(r, 503, "overloaded",
		                           "too many request bodies in memory; retry later");
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
	if (r == (void *)&http_too_many_args || r == (void *)&http_nul_in_uri)
		return; /* marked by the URI log, never reached the handler */
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
	hl_log_kv_deferred(HL_LOG_INFO, "request", "method", r->method, "path", r->path, "status",
	                   code, "duration_ms", dur, "delivery_id", r->delivery_id, NULL);
	http_budget_drop(r);
	/* the connection now waits for its next request */
	http_conn_set(http_conn_of(conn), HTTP_CONN_KEEPALIVE);
	free(r->action);
	free(r->dedup_key);
	free(r->failure_key);
	free(r->headers_json);
	free(r->stored_body);
	json_decref(r->decision);
	hl_http_alerts_free(r->alerts);
	hl_http_readers_forget(r);
	free(r);
	atomic_fetch_sub(&srv->inflight, 1);
}

bool
hl_http_suspend(struct http_req *r)
{
	struct hl_http_server *srv = r->srv;

	/* Counted before the stop flag is read, and the stop sets the flag
	 * before it waits for the count to reach zero: either the stop waits
	 * for this request, or the request sees the stop (a request already
	 * past its first check when the stop began would otherwise be queued
	 * after the server was freed). */
	atomic_fetch_add(&srv->suspended, 1);
	if (atomic_load(&srv->stopping)) {
		atomic_fetch_sub(&srv->suspended, 1);
		return false;
	}
	atomic_store(&r->phase, HTTP_WAITING);
	MHD_suspend_connection(r->conn);
	return true;
}

void
hl_http_resume(struct http_req *r)
{
	struct hl_http_server *srv = r->srv;

	atomic_store(&r->phase, HTTP_DONE);
	MHD_resume_connection(r->conn);
	/* after the resume: stop waits for the count, then stops the daemon */
	atomic_fetch_sub(&srv->suspended, 1);
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

/* Store signals: a decision ("<delivery id> <json>") for a waiting sensor
 * call; "" when decisions may have been missed (a replica whose listener
 * reconnected): the waiting calls' decisions are read from the store. */
static void
http_on_signal(void *arg, enum hl_store_channel ch, const char *payload)
{
	struct hl_http_server *srv = arg;
	const char *sp;

	if (ch != HL_CHANNEL_DECISION)
		return;
	if (!*payload)
		hl_decisions_recheck(srv->decisions);
	else if ((sp = strchr(payload, ' ')))
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

	/* never serve unauthenticated routes beyond loopback by accident */
	if ((rc = hl_config_check_auth(cfg, err)) < 0)
		return rc;
	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	srv->listen_fd = -1;
	pthread_mutex_init(&srv->conn_lock, NULL);
	pthread_mutex_init(&srv->insights_lock, NULL);
	hl_http_login_guard_init(&srv->login_guard, cfg->trusted_proxies);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&srv->reaper_cond, &ca);
		pthread_condattr_destroy(&ca);
	}
	atomic_init(&srv->buffered, 0);
	srv->max_buffered = (size_t)cfg->http_max_buffered_mb << 20;
	/* half the budget, and at least the buffer of one body of the most */
	srv->peer_share = srv->max_buffered / 2;
	if (srv->peer_share < http_cap_for(0, (size_t)HL_HTTP_MAX_BODY + 1))
		srv->peer_share = http_cap_for(0, (size_t)HL_HTTP_MAX_BODY + 1);
	srv->cap_ips = 2 * cfg->http_max_connections + 64;
	srv->ips = calloc((size_t)srv->cap_ips, sizeof(*srv->ips));
	srv->cfg = cfg;
	srv->store = store;
	srv->version = version;
	{
		struct hl_err rerr = HL_ERR_INIT;

		if (hl_store_open_with(&srv->reader, cfg->database_url, HL_STORE_READ_ONLY, &rerr) <
		    0) {
			hl_log_kv(HL_LOG_WARN,
			          "insights read through the server's own store handle", "error",
			          rerr.msg, NULL);
			srv->reader = NULL;
		}
		if (hl_store_open_with(&srv->lister, cfg->database_url, HL_STORE_READ_ONLY, &rerr) <
		    0) {
			hl_log_kv(HL_LOG_WARN,
			          "the lists read through the server's own store handle", "error",
			          rerr.msg, NULL);
			srv->lister = NULL;
		}
	}
	srv->started_ms = hl_time_mono_ms();
	atomic_init(&srv->inflight, 0);
	atomic_init(&srv->suspended, 0);
	atomic_init(&srv->stopping, false);
	srv->metrics = hl_metrics_new();
	if (!srv->metrics || !srv->ips) {
		rc = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto fail;
	}
	rc = hl_decisions_new(&srv->decisions, store, err);
	if (rc < 0)
		goto fail;
	if (cfg->n_webhook_secrets > 0 &&
	    (rc = hl_webhook_keys_new(&srv->webhook_keys, (const char *const *)cfg->webhook_secrets,
	                              cfg->n_webhook_secrets, err)) < 0)
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
	rc = hl_http_readers_start(srv, err);
	if (rc < 0)
		goto fail;
	threads = ncpu < 1 ? 1 : ncpu > HTTP_MAX_THREADS ? HTTP_MAX_THREADS : (unsigned)ncpu;
	srv->daemon = MHD_start_daemon(
	        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_ALLOW_SUSPEND_RESUME |
	                MHD_USE_TURBO | MHD_USE_ERROR_LOG,
	        0, http_accept_policy, srv, http_access, srv, MHD_OPTION_LISTEN_SOCKET,
	        srv->listen_fd, MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_LIMIT,
	        (unsigned)cfg->http_max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
	        (unsigned)HTTP_TIMEOUT_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	        (size_t)HTTP_POOL_BYTES, MHD_OPTION_NOTIFY_COMPLETED, http_completed, srv,
	        MHD_OPTION_NOTIFY_CONNECTION, http_notify_connection, srv,
	        MHD_OPTION_URI_LOG_CALLBACK, http_uri_log, srv, MHD_OPTION_EXTERNAL_LOGGER,
	        http_mhd_log, srv, MHD_OPTION_END);
	if (!srv->daemon) {
		rc = hl_err_set(err, HL_EINTERNAL, "cannot start the HTTP daemon on port %d",
		                srv->port);
		goto fail;
	}
	if (pthread_create(&srv->reaper, NULL, http_reaper_main, srv) != 0) {
		MHD_stop_daemon(srv->daemon);
		rc = hl_err_set(err, HL_EINTERNAL, "cannot start the connection reaper");
		goto fail;
	}
	srv->reaper_started = true;
	*out = srv;
	return 0;
fail:
	hl_http_readers_stop(srv);
	if (subscribed)
		hl_store_unsubscribe(store, http_on_signal, srv);
	if (srv->listen_fd >= 0)
		close(srv->listen_fd);
	hl_decisions_free(srv->decisions);
	hl_webhook_keys_free(srv->webhook_keys);
	hl_metrics_free(srv->metrics);
	hl_store_close(srv->reader);
	hl_store_close(srv->lister);
	free(srv->ips);
	pthread_cond_destroy(&srv->reaper_cond);
	pthread_mutex_destroy(&srv->conn_lock);
	pthread_mutex_destroy(&srv->insights_lock);
	hl_http_login_guard_destroy(&srv->login_guard);
	free(srv->insights_text);
	free(srv->extra_text);
	json_decref(srv->insights_doc);
	free(srv);
	return rc;
}

int
hl_http_server_add_metrics(struct hl_http_server *srv,
                           void (*fn)(void *arg, struct hl_store *reader, struct hl_buf *out),
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

/* Waits (bounded) until no request is suspended and, with inflight_too,
 * none is in flight; false when one still is after timeout_ms.
 * libmicrohttpd aborts the process when stopped with a suspended
 * connection. */
static bool
http_wait_idle(struct hl_http_server *srv, int timeout_ms, bool inflight_too)
{
	int64_t deadline = hl_time_mono_ms() + timeout_ms;
	struct timespec ts = { 0, 5 * 1000000L };

	while (atomic_load(&srv->suspended) > 0 ||
	       (inflight_too && atomic_load(&srv->inflight) > 0)) {
		if (hl_time_mono_ms() >= deadline)
			return false;
		nanosleep(&ts, NULL);
	}
	return true;
}

void
hl_http_server_leave(struct hl_http_server *srv)
{
	atomic_store(&srv->leaving, true);
}

bool
hl_http_server_drain(struct hl_http_server *srv, int timeout_ms)
{
	/* from now on the accept policy refuses new connections and requests
	 * get 503 (MHD_quiesce_daemon is not used: with a thread pool it can
	 * race a worker removing the listening socket and abort) */
	atomic_store(&srv->stopping, true);
	hl_decisions_release_all(srv->decisions);
	return http_wait_idle(srv, timeout_ms, true);
}

void
hl_http_server_stop(struct hl_http_server *srv)
{
	if (!srv)
		return;
	atomic_store(&srv->stopping, true);
	hl_store_unsubscribe(srv->store, http_on_signal, srv);
	hl_decisions_release_all(srv->decisions);
	if (srv->reaper_started) {
		pthread_mutex_lock(&srv->conn_lock);
		srv->reaper_stop = true;
		pthread_cond_signal(&srv->reaper_cond);
		pthread_mutex_unlock(&srv->conn_lock);
		pthread_join(srv->reaper, NULL);
	}
	if (http_wait_idle(srv, HTTP_STOP_WAIT_MS, false)) {
		/* Every request was resumed, yet under load libmicrohttpd once
		 * still held a connection suspended here (a resumption it
		 * lost), and MHD_stop_daemon aborts on one. Resuming every
		 * connection is harmless now: the stop closes them all. The
		 * lock keeps each listed connection from being freed (it is
		 * unlisted, under the lock, before libmicrohttpd frees it). */
		struct http_conn *c;

		pthread_mutex_lock(&srv->conn_lock);
		for (c = srv->conns; c; c = c->next)
			MHD_resume_connection(c->mhd);
		pthread_mutex_unlock(&srv->conn_lock);
		MHD_stop_daemon(srv->daemon); /* closes the listening socket */
	} else {
		/* the store never answered: leave the daemon, and the server
		 * its threads still use, to the process exit */
		hl_error("%d requests still wait for the store; not stopping the HTTP threads",
		         atomic_load(&srv->suspended));
		return;
	}
	srv->daemon = NULL;
	srv->listen_fd = -1;
	/* nothing is queued or being read: every read was resumed */
	hl_http_readers_stop(srv);
	hl_decisions_free(srv->decisions);
	hl_webhook_keys_free(srv->webhook_keys);
	hl_metrics_free(srv->metrics);
	hl_store_close(srv->reader);
	hl_store_close(srv->lister);
	free(srv->ips);
	pthread_cond_destroy(&srv->reaper_cond);
	pthread_mutex_destroy(&srv->conn_lock);
	pthread_mutex_destroy(&srv->insights_lock);
	free(srv->insights_text);
	free(srv->extra_text);
	json_decref(srv->insights_doc);
	free(srv);
}
