/*
 * fetch.h - the one HTTP engine every client (GitHub, Kubernetes, ArgoCD,
 * Loki, Prometheus) goes through: a libcurl multi loop that runs a batch of
 * requests in parallel until all are done or an overall deadline passes.
 *
 * Per request it handles:
 *  - a per-request timeout (the request's own deadline is the earlier of
 *    start + timeout_ms and the batch deadline);
 *  - retries of connection errors and 5xx answers with exponential backoff
 *    plus jitter (a 5xx's Retry-After, when longer, is waited instead), as
 *    long as the next attempt still fits in the deadline (Retry-After in
 *    seconds or as an HTTP-date, RFC 9110 section 10.2.3);
 *  - rate limits: 429, or 403 with Retry-After, or 403 with
 *    X-RateLimit-Remaining: 0 + X-RateLimit-Reset. The request waits when the
 *    limit lifts before its deadline, else fails with HL_EUPSTREAM
 *    "rate limited";
 *  - redirects (opt-in: GitHub's API, whose job logs answer 302 to a
 *    storage host and a renamed repository 301 or 307): followed manually,
 *    at most 5 hops; the auth header is dropped as soon as a hop leaves the
 *    original scheme://host:port (and is never sent again in that request);
 *    a method other than GET or HEAD is sent again as itself with its body
 *    (never turned into a GET), to another origin only on a 307 or 308 (a
 *    301, 302 or 303 leaving the origin fails with HL_EUPSTREAM);
 *  - a response size cap: over max_body the request fails with HL_ETOOBIG,
 *    or, with keep_tail, keeps the last max_body bytes and sets truncated;
 *  - TLS: a CA file or in-memory PEM CA data, or (explicitly) no
 *    verification;
 *  - streaming: with on_data set, body bytes go to the callback instead of
 *    the buffer (Kubernetes watches); the callback may stop the transfer,
 *    and TCP keep-alive probes notice a peer that vanished;
 *  - cancellation: a request with a cancel flag ends within about 100 ms
 *    of the flag becoming true, whether it is running, waiting to retry or
 *    idle on a quiet stream.
 *
 * The auth header is sent only to the request's original origin, and it is
 * never logged; error messages name the URL without its userinfo
 * (user:password@) and query. One slow source never blocks the others: all requests in a
 * batch progress in the same loop. Thread-safety: hl_fetch_run may be called
 * from several threads at once (each call owns its curl multi handle);
 * hl_fetch_global_init must run once before any thread starts (it is also
 * called lazily by hl_fetch_run, which is fine for single-threaded use).
 */
#ifndef HL_NET_FETCH_H
#define HL_NET_FETCH_H

#include "base/buf.h"
#include "base/err.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HL_FETCH_MAX_HEADERS 16

/*
 * A streaming sink: called with each chunk of the body of a 2xx answer.
 * Return 0 to go on, -1 to stop the transfer (the request then completes
 * with result err code 0 and stopped = true).
 */
typedef int (*hl_fetch_data_fn)(void *ud, const char *data, size_t n);

struct hl_fetch_req {
	const char *method;                        /* NULL means GET */
	const char *url;                           /* absolute http(s) URL */
	const char *headers[HL_FETCH_MAX_HEADERS]; /* "Name: value", NULL-terminated */
	const char *auth; /* full Authorization value ("Bearer x"), or NULL */
	const void *body; /* request body or NULL */
	size_t body_len;
	int64_t timeout_ms;    /* per request, all attempts; 0 means the batch deadline */
	size_t max_body;       /* response cap; 0 means 16 MiB */
	bool keep_tail;        /* over the cap keep the last max_body bytes */
	bool follow_redirects; /* follow 3xx Location manually (auth kept within the origin) */
	/* extra attempts for 5xx / connection errors; -1 means 3 for idempotent
	 * methods (GET, HEAD, PUT, DELETE) and 0 otherwise: a POST is never
	 * repeated unless asked */
	int max_retries;
	int64_t backoff_ms;      /* first backoff; 0 means 200 ms */
	const char *ca_file;     /* PEM CA file, or NULL */
	const char *ca_data;     /* PEM CA bytes (NUL-terminated), or NULL */
	bool insecure;           /* skip TLS verification (kubeconfig insecure-skip-tls-verify) */
	const char *client_cert; /* PEM client certificate bytes (mutual TLS), or NULL */
	const char *client_key;  /* PEM client key bytes, or NULL */
	/* the proxy (http://, https://, socks5h://..., credentials in the URL
	 * allowed) for this request only, the *_proxy and no_proxy environment
	 * then ignored; an https proxy is verified with ca_file / ca_data and
	 * insecure like the server. NULL: libcurl's default (the environment) */
	const char *proxy;
	/* "HOST:PORT:CONNECT-HOST:CONNECT-PORT": connect to CONNECT-HOST:
	 * CONNECT-PORT while the URL's HOST:PORT stays the TLS server name
	 * (CURLOPT_CONNECT_TO), or NULL */
	const char *connect_to;
	hl_fetch_data_fn on_data; /* streaming sink or NULL */
	void *on_data_ud;
	/* when *cancel becomes true the request ends (err HL_ETIMEOUT
	 * "cancelled", res.cancelled set) within about 100 ms; NULL: never */
	const atomic_bool *cancel;
	/* answer a rate limit (429, 403 + Retry-After or X-RateLimit-Remaining:
	 * 0) as is, with its headers, instead of waiting and asking again */
	bool no_rate_wait;
	/* the wait for a rate limit that says neither Retry-After nor a reset
	 * (0: a short backoff); GitHub asks for at least a minute */
	int64_t rate_wait_unsaid_ms;
};

struct hl_fetch_res {
	long status;        /* final HTTP status, 0 if none arrived */
	struct hl_buf body; /* the response body (empty when streamed) */
	bool truncated;     /* keep_tail dropped the head */
	bool stopped;       /* on_data asked to stop */
	bool cancelled;     /* the request's cancel flag ended it */
	bool off_origin;    /* a redirect left the request's origin: the answer is another host's */
	/* the request never reached the server: its one transfer made no
	 * connection (refused, a name that did not resolve, a failed TLS
	 * handshake), so a POST may be sent again without being doubled */
	bool unsent;
	char content_type[128];
	char location[1024];         /* last Location header seen */
	char link[2048];             /* Link header (pagination) */
	int64_t retry_after_s;       /* Retry-After seconds (an HTTP-date: the seconds
	                                until it), -1 if absent */
	int64_t ratelimit_remaining; /* X-RateLimit-Remaining, -1 if absent */
	int64_t ratelimit_reset;     /* X-RateLimit-Reset (epoch seconds), -1 if absent */
	/* X-RateLimit-Reset-After (Discord: seconds with decimals, on every
	 * answer) in ms, rounded up; -1 if absent or not a number */
	int64_t ratelimit_reset_after_ms;
	int64_t date_s;     /* Date (epoch seconds, the server's clock), -1 if absent */
	int attempts;       /* transfers made, redirects included */
	int64_t elapsed_ms; /* from batch start to completion */
	struct hl_err err;  /* err.code 0 when an HTTP answer arrived (any status) */
};

/* Initializes libcurl once (thread-safe via pthread_once). */
void hl_fetch_global_init(void);

/* Sets every field of res to its empty state. */
void hl_fetch_res_init(struct hl_fetch_res *res);
/* Frees res's body. */
void hl_fetch_res_release(struct hl_fetch_res *res);

/*
 * Runs n requests in parallel until all complete or deadline_ms (monotonic,
 * hl_time_mono_ms; 0 means none beyond the per-request timeouts) passes.
 * res[i] (initialized by this call) receives the outcome of reqs[i]; a
 * request's failure is in res[i].err (HL_ETIMEOUT, HL_EIO for connection/TLS
 * errors, HL_EUPSTREAM after exhausted retries or a rate limit, HL_ETOOBIG),
 * while any HTTP answer, 4xx included, has err.code 0 and its status. Returns
 * 0, or -HL_E* if the batch itself could not run (then err says why). The
 * caller releases every res[i].
 */
int hl_fetch_run(const struct hl_fetch_req *reqs, struct hl_fetch_res *res, size_t n,
                 int64_t deadline_ms, struct hl_err *err);

/*
 * Convenience: one request; returns 0 when an answer arrived (any status;
 * check res->status), else -code with err filled from res->err.
 */
int hl_fetch_one(const struct hl_fetch_req *req, struct hl_fetch_res *res, struct hl_err *err);

/*
 * Maps a finished result to an error for a JSON API call: transport errors
 * pass through; 401/403 -> HL_EAUTH, 404 -> HL_ENOTFOUND, 409 -> HL_ECONFLICT,
 * 400/422 -> HL_EINVAL, other non-2xx -> HL_EUPSTREAM; the message names
 * what ("'github get /repos/...'") plus the status and a short body excerpt.
 * Returns 0 for 2xx.
 */
int hl_fetch_check(const struct hl_fetch_res *res, const char *what, struct hl_err *err);

/*
 * Gives req a JSON body: body (borrowed) is serialized into *text_out (the
 * caller frees it after the request) and "Content-Type: application/json"
 * takes the first free header slot. HL_ENOMEM, or HL_EINVAL when no header
 * slot is left.
 */
int hl_fetch_req_set_json(struct hl_fetch_req *req, char **text_out, const json_t *body,
                          struct hl_err *err);

/* Extracts the rel="next" URL from a Link header into out; false if none. */
bool hl_fetch_link_next(char *out, size_t size, const char *link);

/* Appends s to b percent-encoded for a URL query value (unreserved
 * characters kept): hl_url_append_query_value. A path segment needs
 * hl_url_append_segment (base/url.h), which also guards "." and "..". */
int hl_fetch_url_escape(struct hl_buf *b, const char *s);

#endif
