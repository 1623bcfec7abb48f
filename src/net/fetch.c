/*
 * fetch.c - the libcurl multi engine behind every healer HTTP client.
 *
 * One hl_fetch_run call owns one multi handle and a job per request. A job
 * is waiting (next_start in the future: backoff, rate limit), running (its
 * easy handle is in the multi) or done. The loop starts due jobs, lets curl
 * progress, classifies each finished transfer (answer, redirect, retry,
 * rate-limit wait, failure) and sleeps in curl_multi_poll until the next
 * event or due time, so all requests advance together and a slow one never
 * holds up the others. Invariants: every job ends done with res->err set or
 * an answer recorded; a job never outlives its deadline; the auth header is
 * attached only while the job is still on its original URL.
 */
#include "fetch.h"

#include "base/clock.h"
#include "base/log.h"
#include "base/str.h"
#include "base/url.h"

#include <ctype.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define FETCH_DEFAULT_MAX_BODY (16u * 1024 * 1024)
#define FETCH_MAX_REDIRECTS    5
#define FETCH_MAX_RATE_WAITS   3
#define FETCH_MAX_BACKOFF_MS   10000
/* An error answer's first bytes scanned for secrets before its excerpt
 * (160 bytes) is cut: room for a secret across the cut. */
#define FETCH_EXCERPT_SCAN 4096

/* Retry-After and X-RateLimit-Reset are clamped to this (seconds, past any
 * deadline), so turning them into milliseconds cannot overflow */
#define FETCH_HDR_INT_MAX 1000000000000LL

struct fetch_job {
	const struct hl_fetch_req *req;
	struct hl_fetch_res *res;
	CURL *easy;
	struct curl_slist *hdrs;
	struct curl_slist *connect_to; /* req->connect_to as libcurl takes it */
	char *url;                     /* current URL (changes on redirects) */
	bool use_auth;                 /* false once a redirect left the origin */
	bool running, done;
	bool overflow, stopped;
	int64_t deadline;   /* monotonic ms */
	int64_t next_start; /* monotonic ms */
	int retries_left;
	int rate_waits;
	int redirects;
	int64_t backoff;
	size_t max_body;
	char errbuf[CURL_ERROR_SIZE];
};

static pthread_once_t fetch_once = PTHREAD_ONCE_INIT;

/* A process-wide share of DNS answers, guarded by one mutex per data kind.
 * Connections are not shared (each batch owns its own), and neither are TLS
 * sessions: OpenSSL 3.0 copies and frees parts of a resumed SSL_SESSION
 * while two connections on different threads use it, which
 * ThreadSanitizer reports as a data race (tests/net/test_fetch_threads.py). */
static CURLSH *fetch_share;
static pthread_mutex_t fetch_share_mu[CURL_LOCK_DATA_LAST];

static void
fetch_share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *ud)
{
	(void)h;
	(void)access;
	(void)ud;
	if (data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&fetch_share_mu[data]);
}

static void
fetch_share_unlock(CURL *h, curl_lock_data data, void *ud)
{
	(void)h;
	(void)ud;
	if (data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&fetch_share_mu[data]);
}

static void
fetch_do_global_init(void)
{
	int i;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&fetch_share_mu[i], NULL);
	fetch_share = curl_share_init();
	if (fetch_share) {
		curl_share_setopt(fetch_share, CURLSHOPT_LOCKFUNC, fetch_share_lock);
		curl_share_setopt(fetch_share, CURLSHOPT_UNLOCKFUNC, fetch_share_unlock);
		curl_share_setopt(fetch_share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	}
}

void
hl_fetch_global_init(void)
{
	pthread_once(&fetch_once, fetch_do_global_init);
}

void
hl_fetch_res_init(struct hl_fetch_res *res)
{
	memset(res, 0, sizeof(*res));
	hl_buf_init(&res->body, 0);
	res->retry_after_s = -1;
	res->ratelimit_remaining = -1;
	res->ratelimit_reset = -1;
	res->ratelimit_reset_after_ms = -1;
	res->date_s = -1;
}

void
hl_fetch_res_release(struct hl_fetch_res *res)
{
	hl_buf_release(&res->body);
}

/* Forgets what one attempt saw, before the next one. */
static void
fetch_res_reset_attempt(struct hl_fetch_res *res)
{
	hl_buf_reset(&res->body);
	res->truncated = false;
	res->content_type[0] = '\0';
	res->link[0] = '\0';
	res->retry_after_s = -1;
	res->ratelimit_remaining = -1;
	res->ratelimit_reset = -1;
	res->ratelimit_reset_after_ms = -1;
	res->date_s = -1;
}

static size_t
fetch_write_cb(char *data, size_t size, size_t nmemb, void *ud)
{
	struct fetch_job *job = ud;
	struct hl_fetch_res *res = job->res;
	size_t total = size * nmemb, n = total;
	long status = 0;

	if (job->req->on_data) {
		curl_easy_getinfo(job->easy, CURLINFO_RESPONSE_CODE, &status);
		if (status >= 200 && status < 300) {
			if (job->req->on_data(job->req->on_data_ud, data, n) < 0) {
				job->stopped = true;
				return 0;
			}
			return n;
		}
	}
	if (res->body.len + n > job->max_body) {
		if (!job->req->keep_tail) {
			job->overflow = true;
			return 0;
		}
		res->truncated = true;
		if (n >= job->max_body) {
			hl_buf_reset(&res->body);
			data += n - job->max_body;
			n = job->max_body;
		} else if (res->body.len + n > 2 * job->max_body) {
			/* the buffer holds up to twice the cap and drops its head
			 * once per max_body bytes, so a log of hundreds of MB
			 * costs linear time (fetch_tail_trim keeps the last
			 * max_body bytes at the end) */
			size_t keep = job->max_body - n;

			memmove(res->body.data, res->body.data + res->body.len - keep, keep);
			hl_buf_setlen(&res->body, keep);
		}
	}
	if (hl_buf_append(&res->body, data, n) < 0)
		return 0;
	return total;
}

/* keep_tail: the last max_body bytes of what arrived (the write callback
 * lets the buffer run up to twice the cap). */
static void
fetch_tail_trim(struct fetch_job *job)
{
	struct hl_buf *b = &job->res->body;

	if (!job->req->keep_tail || b->len <= job->max_body)
		return;
	memmove(b->data, b->data + b->len - job->max_body, job->max_body);
	hl_buf_setlen(b, job->max_body);
}

/* Copies a header value, trimmed, into out. */
static void
fetch_copy_value(char *out, size_t size, const char *v, size_t n)
{
	while (n > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		n--;
	}
	while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
		n--;
	if (n >= size)
		n = size - 1;
	memcpy(out, v, n);
	out[n] = '\0';
}

static int64_t
fetch_parse_int(const char *v, size_t n)
{
	char tmp[32];
	char *end;
	long long x;

	fetch_copy_value(tmp, sizeof(tmp), v, n);
	if (!tmp[0])
		return -1;
	x = strtoll(tmp, &end, 10);
	if (*end || x < 0)
		return -1;
	return (int64_t)(x > FETCH_HDR_INT_MAX ? FETCH_HDR_INT_MAX : x);
}

/* An HTTP-date (Date) in epoch seconds; -1 when it is none. */
static int64_t
fetch_parse_date(const char *v, size_t n)
{
	char tmp[64];
	time_t when;

	fetch_copy_value(tmp, sizeof(tmp), v, n);
	if (!tmp[0])
		return -1;
	when = curl_getdate(tmp, NULL);
	return when == (time_t)-1 || when < 0 ? -1 : (int64_t)when;
}

/* Retry-After: delay-seconds, or an HTTP-date (RFC 9110 section 10.2.3,
 * what proxies and CDNs send) turned into the seconds until it (0 when it
 * has passed); -1 when it is neither. */
static int64_t
fetch_parse_retry_after(const char *v, size_t n)
{
	char tmp[64];
	int64_t when, secs = fetch_parse_int(v, n);

	if (secs >= 0)
		return secs;
	fetch_copy_value(tmp, sizeof(tmp), v, n);
	if (!tmp[0] || (tmp[0] >= '0' && tmp[0] <= '9') || tmp[0] == '-' || tmp[0] == '+')
		return -1; /* a number that is not one: no date either */
	if ((when = fetch_parse_date(v, n)) < 0)
		return -1;
	secs = when - hl_time_wall_ms() / 1000;
	if (secs < 0)
		return 0;
	return secs > FETCH_HDR_INT_MAX ? FETCH_HDR_INT_MAX : secs;
}

/* A non-negative number of seconds with decimals ("1.25") in ms, rounded
 * up and clamped like the integer headers; -1 when it is not one. */
static int64_t
fetch_parse_seconds_ms(const char *v, size_t n)
{
	char tmp[32];
	char *end;
	double x;
	int64_t ms;

	fetch_copy_value(tmp, sizeof(tmp), v, n);
	if (!tmp[0] || !((tmp[0] >= '0' && tmp[0] <= '9') || tmp[0] == '.'))
		return -1;
	x = strtod(tmp, &end);
	if (*end || !(x >= 0.0))
		return -1;
	if (x > (double)FETCH_HDR_INT_MAX)
		x = (double)FETCH_HDR_INT_MAX;
	ms = (int64_t)(x * 1000.0);
	return (double)ms < x * 1000.0 ? ms + 1 : ms;
}

static size_t
fetch_header_cb(char *data, size_t size, size_t nmemb, void *ud)
{
	struct fetch_job *job = ud;
	struct hl_fetch_res *res = job->res;
	size_t n = size * nmemb;
	const char *colon;
	size_t klen;

	if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		/* a new response (interim 100, or after a proxy CONNECT) */
		fetch_res_reset_attempt(res);
		return n;
	}
	colon = memchr(data, ':', n);
	if (!colon)
		return n;
	klen = (size_t)(colon - data);
	colon++;
#define HDR_IS(name) (klen == sizeof(name) - 1 && strncasecmp(data, name, klen) == 0)
	if (HDR_IS("content-type"))
		fetch_copy_value(res->content_type, sizeof(res->content_type), colon, n - klen - 1);
	else if (HDR_IS("location"))
		fetch_copy_value(res->location, sizeof(res->location), colon, n - klen - 1);
	else if (HDR_IS("link"))
		fetch_copy_value(res->link, sizeof(res->link), colon, n - klen - 1);
	else if (HDR_IS("retry-after"))
		res->retry_after_s = fetch_parse_retry_after(colon, n - klen - 1);
	else if (HDR_IS("x-ratelimit-remaining"))
		res->ratelimit_remaining = fetch_parse_int(colon, n - klen - 1);
	else if (HDR_IS("x-ratelimit-reset"))
		res->ratelimit_reset = fetch_parse_int(colon, n - klen - 1);
	else if (HDR_IS("x-ratelimit-reset-after"))
		res->ratelimit_reset_after_ms = fetch_parse_seconds_ms(colon, n - klen - 1);
	else if (HDR_IS("date"))
		res->date_s = fetch_parse_date(colon, n - klen - 1);
#undef HDR_IS
	return n;
}

static uint64_t
fetch_rand(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*state = x;
	return x;
}

static void fetch_finish(struct fetch_job *job, int64_t start, int code, const char *fmt, ...)
        HL_PRINTF(4, 5);

static void
fetch_finish(struct fetch_job *job, int64_t start, int code, const char *fmt, ...)
{
	job->done = true;
	job->res->elapsed_ms = hl_time_mono_ms() - start;
	if (code) {
		va_list ap;

		va_start(ap, fmt);
		hl_err_vset(&job->res->err, code, fmt, ap);
		va_end(ap);
	}
}

/* The URL for messages: without credentials (a LOKI_URL may carry
 * user:password@) and without its query (selectors, not secrets, but keep
 * messages short). */
static const char *
fetch_url_for_msg(const struct fetch_job *job, char *tmp, size_t size)
{
	struct hl_buf b = HL_BUF_INIT(0);
	size_t n;

	if (hl_url_strip_userinfo(&b, job->url) < 0) {
		hl_strlcpy(tmp, "(url)", size);
		hl_buf_release(&b);
		return tmp;
	}
	n = strcspn(b.data, "?#");
	if (n >= size)
		n = size - 1;
	memcpy(tmp, b.data, n);
	tmp[n] = '\0';
	hl_buf_release(&b);
	return tmp;
}

static int
fetch_start(struct fetch_job *job, CURLM *multi, int64_t now, struct hl_err *err)
{
	const struct hl_fetch_req *req = job->req;
	const char *method = req->method ? req->method : "GET";
	struct curl_slist *l;
	char *authhdr = NULL;
	int64_t left = job->deadline - now;
	size_t i;

	if (!job->easy) {
		job->easy = curl_easy_init();
		if (!job->easy)
			return hl_err_set(err, HL_ENOMEM, "curl_easy_init failed");
	} else {
		curl_easy_reset(job->easy);
	}
	curl_slist_free_all(job->hdrs);
	job->hdrs = NULL;
	curl_slist_free_all(job->connect_to);
	job->connect_to = NULL;
	if (req->connect_to && !(job->connect_to = curl_slist_append(NULL, req->connect_to)))
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	for (i = 0; i < HL_FETCH_MAX_HEADERS && req->headers[i]; i++) {
		l = curl_slist_append(job->hdrs, req->headers[i]);
		if (!l)
			return hl_err_set(err, HL_ENOMEM, "out of memory");
		job->hdrs = l;
	}
	if (req->auth && job->use_auth) {
		size_t alen = strlen(req->auth) + sizeof("Authorization: ");

		authhdr = malloc(alen);
		if (!authhdr)
			return hl_err_set(err, HL_ENOMEM, "out of memory");
		snprintf(authhdr, alen, "Authorization: %s", req->auth);
		l = curl_slist_append(job->hdrs, authhdr);
		explicit_bzero(authhdr, alen);
		free(authhdr);
		if (!l)
			return hl_err_set(err, HL_ENOMEM, "out of memory");
		job->hdrs = l;
	}
	l = curl_slist_append(job->hdrs, "Expect:");
	if (!l)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	job->hdrs = l;

	fetch_res_reset_attempt(job->res);
	job->res->location[0] = '\0';
	job->overflow = false;
	job->stopped = false;
	job->errbuf[0] = '\0';

	curl_easy_setopt(job->easy, CURLOPT_URL, job->url);
	curl_easy_setopt(job->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(job->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(job->easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(job->easy, CURLOPT_HTTPHEADER, job->hdrs);
	curl_easy_setopt(job->easy, CURLOPT_WRITEFUNCTION, fetch_write_cb);
	curl_easy_setopt(job->easy, CURLOPT_WRITEDATA, job);
	curl_easy_setopt(job->easy, CURLOPT_HEADERFUNCTION, fetch_header_cb);
	curl_easy_setopt(job->easy, CURLOPT_HEADERDATA, job);
	curl_easy_setopt(job->easy, CURLOPT_ERRORBUFFER, job->errbuf);
	curl_easy_setopt(job->easy, CURLOPT_PRIVATE, job);
	curl_easy_setopt(job->easy, CURLOPT_USERAGENT, "healer");
	if (fetch_share)
		curl_easy_setopt(job->easy, CURLOPT_SHARE, fetch_share);
	if (req->on_data) {
		/* a stream may be quiet for minutes: probe the peer */
		curl_easy_setopt(job->easy, CURLOPT_TCP_KEEPALIVE, 1L);
		curl_easy_setopt(job->easy, CURLOPT_TCP_KEEPIDLE, 30L);
		curl_easy_setopt(job->easy, CURLOPT_TCP_KEEPINTVL, 10L);
	}
	curl_easy_setopt(job->easy, CURLOPT_TIMEOUT_MS, (long)(left > 0 ? left : 1));
	curl_easy_setopt(job->easy, CURLOPT_CONNECTTIMEOUT_MS,
	                 (long)(left > 10000 ? 10000 : (left > 0 ? left : 1)));
	if (req->insecure) {
		curl_easy_setopt(job->easy, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(job->easy, CURLOPT_SSL_VERIFYHOST, 0L);
	} else if (req->ca_data) {
		struct curl_blob blob = { (void *)req->ca_data, strlen(req->ca_data),
			                  CURL_BLOB_COPY };

		curl_easy_setopt(job->easy, CURLOPT_CAINFO_BLOB, &blob);
	} else if (req->ca_file) {
		curl_easy_setopt(job->easy, CURLOPT_CAINFO, req->ca_file);
	}
	if (job->connect_to)
		curl_easy_setopt(job->easy, CURLOPT_CONNECT_TO, job->connect_to);
	if (req->proxy) {
		/* this proxy, whatever the environment says (no_proxy too) */
		curl_easy_setopt(job->easy, CURLOPT_PROXY, req->proxy);
		curl_easy_setopt(job->easy, CURLOPT_NOPROXY, "");
		if (req->insecure) {
			curl_easy_setopt(job->easy, CURLOPT_PROXY_SSL_VERIFYPEER, 0L);
			curl_easy_setopt(job->easy, CURLOPT_PROXY_SSL_VERIFYHOST, 0L);
		} else if (req->ca_data) {
			struct curl_blob blob = { (void *)req->ca_data, strlen(req->ca_data),
				                  CURL_BLOB_COPY };

			curl_easy_setopt(job->easy, CURLOPT_PROXY_CAINFO_BLOB, &blob);
		} else if (req->ca_file) {
			curl_easy_setopt(job->easy, CURLOPT_PROXY_CAINFO, req->ca_file);
		}
	}
	if (req->client_cert && req->client_key) {
		struct curl_blob cb = { (void *)req->client_cert, strlen(req->client_cert),
			                CURL_BLOB_COPY };
		struct curl_blob kb = { (void *)req->client_key, strlen(req->client_key),
			                CURL_BLOB_COPY };

		curl_easy_setopt(job->easy, CURLOPT_SSLCERT_BLOB, &cb);
		curl_easy_setopt(job->easy, CURLOPT_SSLCERTTYPE, "PEM");
		curl_easy_setopt(job->easy, CURLOPT_SSLKEY_BLOB, &kb);
		curl_easy_setopt(job->easy, CURLOPT_SSLKEYTYPE, "PEM");
	}
	if (strcmp(method, "GET") == 0) {
		curl_easy_setopt(job->easy, CURLOPT_HTTPGET, 1L);
	} else if (strcmp(method, "HEAD") == 0) {
		curl_easy_setopt(job->easy, CURLOPT_NOBODY, 1L);
	} else {
		if (strcmp(method, "POST") != 0)
			curl_easy_setopt(job->easy, CURLOPT_CUSTOMREQUEST, method);
		curl_easy_setopt(job->easy, CURLOPT_POSTFIELDSIZE_LARGE,
		                 (curl_off_t)(req->body ? req->body_len : 0));
		curl_easy_setopt(job->easy, CURLOPT_POSTFIELDS, req->body ? req->body : "");
	}
	if (curl_multi_add_handle(multi, job->easy) != CURLM_OK)
		return hl_err_set(err, HL_EINTERNAL, "curl_multi_add_handle failed");
	job->running = true;
	job->res->attempts++;
	return 0;
}

/* Schedules another attempt after delay ms if it fits before the deadline. */
static bool
fetch_schedule(struct fetch_job *job, int64_t now, int64_t delay)
{
	if (now + delay >= job->deadline)
		return false;
	job->next_start = now + delay;
	return true;
}

static int64_t
fetch_backoff(struct fetch_job *job, uint64_t *rng)
{
	int64_t d = job->backoff, half;

	if (job->backoff < FETCH_MAX_BACKOFF_MS)
		job->backoff *= 2;
	if (d > FETCH_MAX_BACKOFF_MS)
		d = FETCH_MAX_BACKOFF_MS;
	half = d / 2;
	return half + (half > 0 ? (int64_t)(fetch_rand(rng) % (uint64_t)(half + 1)) : 0);
}

/* Length of the "scheme://host[:port]" prefix of url. */
static size_t
fetch_origin_len(const char *url)
{
	const char *p = strstr(url, "://");

	if (!p)
		return 0;
	p += 3;
	return (size_t)(p - url) + strcspn(p, "/?#");
}

static bool
fetch_same_origin(const char *a, const char *b)
{
	size_t n = fetch_origin_len(a);

	return n > 0 && n == fetch_origin_len(b) && strncasecmp(a, b, n) == 0;
}

/* Whether req is a GET or a HEAD (a redirect may take it anywhere). */
static bool
fetch_is_get(const struct hl_fetch_req *req)
{
	return !req->method || strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
}

static bool
fetch_is_conn_error(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return true;
	default:
		return false;
	}
}

/* True when a proxy refused the request's credentials: an HTTP proxy's 407
 * to the CONNECT, a SOCKS5 proxy's refused user and password. */
static bool
fetch_proxy_refused(struct fetch_job *job)
{
	long connect_code = 0, proxy_error = 0;

	curl_easy_getinfo(job->easy, CURLINFO_HTTP_CONNECTCODE, &connect_code);
	curl_easy_getinfo(job->easy, CURLINFO_PROXY_ERROR, &proxy_error);
	return connect_code == 407 || proxy_error == CURLPX_USER_REJECTED;
}

static void
fetch_completed(struct fetch_job *job, CURLcode rc, int64_t start, uint64_t *rng)
{
	struct hl_fetch_res *res = job->res;
	int64_t now = hl_time_mono_ms();
	char u[512];
	long status = 0;

	curl_easy_getinfo(job->easy, CURLINFO_RESPONSE_CODE, &status);
	res->status = status;
	fetch_url_for_msg(job, u, sizeof(u));
	fetch_tail_trim(job);

	if (rc == CURLE_WRITE_ERROR && job->stopped) {
		res->stopped = true;
		fetch_finish(job, start, 0, NULL);
		return;
	}
	if (rc == CURLE_WRITE_ERROR && job->overflow) {
		fetch_finish(job, start, HL_ETOOBIG, "'%s': response over %zu bytes", u,
		             job->max_body);
		return;
	}
	if (rc != CURLE_OK && fetch_proxy_refused(job)) {
		/* the proxy's credentials are wrong: asking again cannot help */
		fetch_finish(job, start, HL_EAUTH,
		             "'%s': the proxy refused the credentials it was given (%s)", u,
		             job->errbuf[0] ? job->errbuf : curl_easy_strerror(rc));
		return;
	}
	if (rc != CURLE_OK) {
		if (now >= job->deadline || (rc == CURLE_OPERATION_TIMEDOUT && status)) {
			fetch_finish(job, start, HL_ETIMEOUT, "'%s': timed out after %lld ms", u,
			             (long long)(now - start));
			return;
		}
		if (fetch_is_conn_error(rc) && job->retries_left > 0 &&
		    fetch_schedule(job, now, fetch_backoff(job, rng))) {
			job->retries_left--;
			return;
		}
		job->res->unsent =
		        job->res->attempts == 1 && job->redirects == 0 &&
		        (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
		         rc == CURLE_COULDNT_RESOLVE_PROXY || rc == CURLE_SSL_CONNECT_ERROR);
		fetch_finish(job, start, rc == CURLE_OPERATION_TIMEDOUT ? HL_ETIMEOUT : HL_EIO,
		             "'%s': %s", u, job->errbuf[0] ? job->errbuf : curl_easy_strerror(rc));
		return;
	}

	if (job->req->follow_redirects && res->location[0] &&
	    (status == 301 || status == 302 || status == 303 || status == 307 || status == 308)) {
		char *next = NULL;
		char *abs = NULL;

		if (job->redirects >= FETCH_MAX_REDIRECTS) {
			fetch_finish(job, start, HL_EUPSTREAM, "'%s': too many redirects", u);
			return;
		}
		curl_easy_getinfo(job->easy, CURLINFO_REDIRECT_URL, &abs);
		next = strdup(abs ? abs : res->location);
		if (!next) {
			fetch_finish(job, start, HL_ENOMEM, "out of memory");
			return;
		}
		/* never from https to plain http: what comes back (a job's log,
		 * then evidence and prompt text) could be read or changed on
		 * the way */
		if (strncasecmp(job->url, "https:", 6) == 0 &&
		    strncasecmp(next, "https:", 6) != 0) {
			free(next);
			fetch_finish(
			        job, start, HL_EUPSTREAM,
			        "'%s': a redirect from https to another scheme is not followed", u);
			return;
		}
		/* a method other than GET or HEAD keeps its method and body on
		 * every hop (never turned into a GET); only a 307 or 308 says so
		 * for another origin, so a 301, 302 or 303 of it is followed
		 * within the origin only */
		if (!fetch_same_origin(job->url, next) && status != 307 && status != 308 &&
		    !fetch_is_get(job->req)) {
			free(next);
			fetch_finish(
			        job, start, HL_EUPSTREAM,
			        "'%s': a %ld redirect of a %s to another origin is not followed", u,
			        status, job->req->method);
			return;
		}
		/* never send the credentials to another origin (a storage host);
		 * a redirect within the same scheme://host:port keeps them */
		if (!fetch_same_origin(job->url, next)) {
			job->use_auth = false;
			res->off_origin = true;
		}
		free(job->url);
		job->url = next;
		job->redirects++;
		job->next_start = now;
		return;
	}

	if (!job->req->no_rate_wait &&
	    (status == 429 ||
	     (status == 403 && (res->retry_after_s >= 0 || res->ratelimit_remaining == 0)))) {
		int64_t wait = -1;

		if (res->retry_after_s >= 0) {
			wait = res->retry_after_s * 1000;
		} else if (res->ratelimit_remaining == 0 && res->ratelimit_reset >= 0) {
			wait = res->ratelimit_reset * 1000 - hl_time_wall_ms();
			if (wait < 0)
				wait = 0;
			wait += 100; /* the reset second has to have passed */
		} else if (job->req->rate_wait_unsaid_ms > 0) {
			wait = job->req->rate_wait_unsaid_ms;
		} else {
			wait = fetch_backoff(job, rng);
		}
		if (job->rate_waits < FETCH_MAX_RATE_WAITS && fetch_schedule(job, now, wait)) {
			job->rate_waits++;
			return;
		}
		fetch_finish(job, start, HL_EUPSTREAM,
		             "'%s': rate limited (status %ld, limit lifts in %lld ms, past the "
		             "deadline)",
		             u, status, (long long)wait);
		return;
	}

	if (status >= 500) {
		/* a 503 (or a Kubernetes 504) may say when to come back: never
		 * sooner (client-go does the same) */
		int64_t delay = fetch_backoff(job, rng);

		if (res->retry_after_s >= 0 && res->retry_after_s * 1000 > delay)
			delay = res->retry_after_s * 1000;
		if (job->retries_left > 0 && fetch_schedule(job, now, delay)) {
			job->retries_left--;
			return;
		}
		fetch_finish(job, start, HL_EUPSTREAM, "'%s': status %ld after %d attempts", u,
		             status, res->attempts);
		return;
	}
	fetch_finish(job, start, 0, NULL);
}

/* Methods that may be repeated without changing the outcome (RFC 9110 9.2.2). */
static bool
fetch_idempotent(const char *method)
{
	return !method || strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0 ||
	       strcmp(method, "PUT") == 0 || strcmp(method, "DELETE") == 0 ||
	       strcmp(method, "OPTIONS") == 0;
}

static void
fetch_jobs_free(struct fetch_job *jobs, size_t n, CURLM *multi)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (jobs[i].easy) {
			if (jobs[i].running)
				curl_multi_remove_handle(multi, jobs[i].easy);
			curl_easy_cleanup(jobs[i].easy);
		}
		curl_slist_free_all(jobs[i].hdrs);
		curl_slist_free_all(jobs[i].connect_to);
		free(jobs[i].url);
	}
	free(jobs);
}

int
hl_fetch_run(const struct hl_fetch_req *reqs, struct hl_fetch_res *res, size_t n,
             int64_t deadline_ms, struct hl_err *err)
{
	struct fetch_job *jobs = NULL;
	CURLM *multi = NULL;
	int64_t start = hl_time_mono_ms();
	uint64_t rng = (uint64_t)hl_time_wall_ms() ^ ((uint64_t)(uintptr_t)reqs << 16) ^
	               0x9e3779b97f4a7c15ull;
	size_t i, left = n;
	bool cancellable = false;
	int ret = 0;

	hl_fetch_global_init();
	for (i = 0; i < n; i++)
		hl_fetch_res_init(&res[i]);
	if (n == 0)
		return 0;
	jobs = calloc(n, sizeof(*jobs));
	multi = curl_multi_init();
	if (!jobs || !multi) {
		ret = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		struct fetch_job *job = &jobs[i];
		const struct hl_fetch_req *r = &reqs[i];

		job->req = r;
		job->res = &res[i];
		if (r->cancel)
			cancellable = true;
		job->use_auth = true;
		job->max_body = r->max_body ? r->max_body : FETCH_DEFAULT_MAX_BODY;
		job->retries_left = r->max_retries >= 0           ? r->max_retries
		                    : fetch_idempotent(r->method) ? 3
		                                                  : 0;
		job->backoff = r->backoff_ms > 0 ? r->backoff_ms : 200;
		job->deadline = r->timeout_ms > 0 ? start + r->timeout_ms : INT64_MAX;
		if (deadline_ms > 0 && deadline_ms < job->deadline)
			job->deadline = deadline_ms;
		if (job->deadline == INT64_MAX)
			job->deadline = start + 60000;
		job->next_start = start;
		if (!r->url || !r->url[0]) {
			hl_err_set(&res[i].err, HL_EINVAL, "request %zu has no url", i);
			job->done = true;
			left--;
			continue;
		}
		job->url = strdup(r->url);
		if (!job->url) {
			ret = hl_err_set(err, HL_ENOMEM, "out of memory");
			goto out;
		}
	}

	while (left > 0) {
		int64_t now = hl_time_mono_ms(), wake = now + (cancellable ? 100 : 1000);
		int still = 0, msgs = 0;
		CURLMsg *msg;
		CURLcode result;

		for (i = 0; i < n; i++) {
			struct fetch_job *job = &jobs[i];

			if (!job->done && job->req->cancel && atomic_load(job->req->cancel)) {
				char u[512];

				if (job->running) {
					curl_multi_remove_handle(multi, job->easy);
					job->running = false;
				}
				job->res->cancelled = true;
				fetch_finish(job, start, HL_ETIMEOUT, "'%s': cancelled",
				             fetch_url_for_msg(job, u, sizeof(u)));
				left--;
				continue;
			}
			if (job->done || job->running)
				continue;
			if (now >= job->deadline) {
				char u[512];

				fetch_finish(job, start, HL_ETIMEOUT,
				             "'%s': deadline passed before the request could run",
				             fetch_url_for_msg(job, u, sizeof(u)));
				left--;
				continue;
			}
			if (job->next_start <= now) {
				ret = fetch_start(job, multi, now, err);
				if (ret < 0)
					goto out;
			} else if (job->next_start < wake) {
				wake = job->next_start;
			}
		}
		if (left == 0)
			break;
		if (curl_multi_perform(multi, &still) != CURLM_OK) {
			ret = hl_err_set(err, HL_EINTERNAL, "curl_multi_perform failed");
			goto out;
		}
		while ((msg = curl_multi_info_read(multi, &msgs)) != NULL) {
			struct fetch_job *job = NULL;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&job);
			if (!job)
				continue;
			/* the message is valid until the handle is removed */
			result = msg->data.result;
			curl_multi_remove_handle(multi, job->easy);
			job->running = false;
			fetch_completed(job, result, start, &rng);
			if (job->done)
				left--;
		}
		if (left == 0)
			break;
		now = hl_time_mono_ms();
		{
			int64_t t;
			bool due = false;

			/* completions may have scheduled retries sooner than wake */
			for (i = 0; i < n; i++) {
				if (jobs[i].done || jobs[i].running)
					continue;
				if (jobs[i].next_start <= now)
					due = true;
				else if (jobs[i].next_start < wake)
					wake = jobs[i].next_start;
			}
			t = wake - now;
			if (due)
				continue;
			if (t < 1)
				t = 1;
			if (t > (cancellable ? 100 : 1000))
				t = cancellable ? 100 : 1000;
			curl_multi_poll(multi, NULL, 0, (int)t, NULL);
		}
	}
out:
	if (jobs)
		fetch_jobs_free(jobs, n, multi);
	if (multi)
		curl_multi_cleanup(multi);
	return ret;
}

int
hl_fetch_one(const struct hl_fetch_req *req, struct hl_fetch_res *res, struct hl_err *err)
{
	int ret = hl_fetch_run(req, res, 1, 0, err);

	if (ret < 0)
		return ret;
	if (res->err.code) {
		if (err)
			*err = res->err;
		return -res->err.code;
	}
	return 0;
}

int
hl_fetch_check(const struct hl_fetch_res *res, const char *what, struct hl_err *err)
{
	struct hl_buf head = HL_BUF_INIT(0);
	char excerpt[161];
	size_t i, n;
	int code;

	if (res->err.code) {
		if (err)
			*err = res->err;
		return hl_err_wrap(err, "%s", what);
	}
	if (res->status >= 200 && res->status < 300)
		return 0;
	if (res->status == 401 || res->status == 403)
		code = HL_EAUTH;
	else if (res->status == 404)
		code = HL_ENOTFOUND;
	else if (res->status == 409)
		code = HL_ECONFLICT;
	else if (res->status == 400 || res->status == 422)
		code = HL_EINVAL;
	else
		code = HL_EUPSTREAM;
	/* an answer may echo a credential it was sent: redacted before the
	 * cut (a secret across it is whole within the first bytes copied) */
	n = res->body.len < FETCH_EXCERPT_SCAN ? res->body.len : FETCH_EXCERPT_SCAN;
	hl_buf_append(&head, res->body.data, n);
	if (hl_log_redact_buf(&head) < 0 || hl_buf_error(&head))
		hl_buf_reset(&head);
	n = head.len < sizeof(excerpt) - 1 ? head.len : sizeof(excerpt) - 1;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)head.data[i];

		excerpt[i] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
	}
	excerpt[n] = '\0';
	hl_buf_release(&head);
	return hl_err_set(err, code, "%s: status %ld: %s", what, res->status, excerpt);
}

bool
hl_fetch_link_next(char *out, size_t size, const char *link)
{
	const char *p = link;

	while (p && *p) {
		const char *lt = strchr(p, '<'), *gt, *end;

		if (!lt)
			return false;
		gt = strchr(lt, '>');
		if (!gt)
			return false;
		end = strchr(gt, ',');
		if (!end)
			end = gt + strlen(gt);
		{
			size_t seg = (size_t)(end - gt);
			char params[256];

			if (seg >= sizeof(params))
				seg = sizeof(params) - 1;
			memcpy(params, gt, seg);
			params[seg] = '\0';
			if (strstr(params, "rel=\"next\"") || strstr(params, "rel=next")) {
				size_t ulen = (size_t)(gt - lt - 1);

				if (ulen + 1 > size)
					return false;
				memcpy(out, lt + 1, ulen);
				out[ulen] = '\0';
				return true;
			}
		}
		p = *end ? end + 1 : end;
	}
	return false;
}

int
hl_fetch_url_escape(struct hl_buf *b, const char *s)
{
	return hl_url_append_query_value(b, s);
}

int
hl_fetch_req_set_json(struct hl_fetch_req *req, char **text_out, const json_t *body,
                      struct hl_err *err)
{
	size_t i = 0;
	char *text;

	while (i < HL_FETCH_MAX_HEADERS - 1 && req->headers[i])
		i++;
	if (i >= HL_FETCH_MAX_HEADERS - 1)
		return hl_err_set(err, HL_EINVAL, "no header slot left for the content type");
	text = json_dumps(body, JSON_COMPACT);
	if (!text)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	req->headers[i] = "Content-Type: application/json";
	req->body = text;
	req->body_len = strlen(text);
	*text_out = text;
	return 0;
}
