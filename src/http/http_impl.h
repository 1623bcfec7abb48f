/*
 * http_impl.h - shared between the HTTP server files (private to src/http):
 * the server and per-request state, and the reply helpers.
 */
#ifndef HL_HTTP_HTTP_IMPL_H
#define HL_HTTP_HTTP_IMPL_H

#include "base/buf.h"
#include "base/cidr.h"
#include "config/config.h"
#include "event/event.h"
#include "metrics.h"
#include "store/store.h"

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* A client address: 4 bytes (IPv4, also IPv4-mapped IPv6) or 16 (IPv6). */
struct http_addr {
	unsigned char b[16];
	unsigned char len;
};

/* Open connections of one client address. */
struct http_ip {
	struct http_addr addr;
	int n;
	size_t buffered; /* bytes of the body budget its requests hold */
};

/* Failed dashboard logins of one client address (login_guard.c). */
#define HTTP_LOGIN_SLOTS        256
#define HTTP_LOGIN_MAX_FAILURES 10
#define HTTP_LOGIN_WINDOW_MS    60000
struct http_login_slot {
	struct http_addr addr;
	int failures;            /* 0: a free slot */
	int64_t window_start_ms; /* monotonic: the window's first failure */
};
struct http_login_guard {
	pthread_mutex_t lock;
	struct http_login_slot slots[HTTP_LOGIN_SLOTS];
	struct hl_cidr proxies[HL_CIDR_MAX]; /* HEALER_TRUSTED_PROXIES */
	size_t n_proxies;
};

/* What a connection is waiting for (its deadline, server.c). */
enum http_conn_state {
	HTTP_CONN_HEADERS = 0, /* a new connection's first request line and headers */
	HTTP_CONN_KEEPALIVE,   /* the next request on a kept-alive connection */
	HTTP_CONN_BODY,        /* a request's body */
	HTTP_CONN_BUSY,        /* the route runs or answers: no deadline here */
};

/* One open connection (MHD's socket context), in the server's list. */
struct http_conn {
	struct http_conn *prev, *next; /* under conn_lock */
	struct MHD_Connection *mhd;    /* valid while listed */
	int fd;
	struct http_addr addr;
	bool counted;          /* counted in the address table */
	bool reaped;           /* its deadline passed and it was shut down */
	atomic_int state;      /* enum http_conn_state */
	atomic_llong since_ms; /* when that state began (monotonic) */
};

struct http_req;

/* The slow read routes' own threads and their queue (readers.c). */
#define HTTP_READERS       2  /* threads */
#define HTTP_READERS_QUEUE 16 /* requests waiting beyond those being read */
#define HTTP_READERS_AHEAD 4  /* the monitoring reads' own places; they go first */
struct http_readers {
	struct hl_http_server *srv;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct http_req *head, *tail; /* queued, under lock */
	int queued, queued_ahead;     /* waiting: all, and monitoring reads; under lock */
	bool took_ahead;              /* the last one taken was a monitoring read */
	bool quit;                    /* under lock */
	bool inited;
	int n_threads;
	pthread_t threads[HTTP_READERS];
};

/* A reply a reader thread built, sent once the connection resumed. */
#define HTTP_DEFERRED_HDRS 9 /* four name, value pairs and the NULL */
struct http_deferred {
	bool kept;
	enum MHD_Result result; /* what the route returned */
	unsigned code;
	const char *ctype; /* a string constant */
	char *body;        /* malloc'd */
	size_t len;
	char *hdrs[HTTP_DEFERRED_HDRS]; /* malloc'd copies, NULL-terminated */
};

struct hl_http_server {
	struct MHD_Daemon *daemon;
	int listen_fd;
	int port;
	const struct hl_config *cfg;
	struct hl_store *store;
	/* The insights' own read-only handle of the same store (NULL: store).
	 * They read every task: on a second connection (a SQLite WAL reader, or
	 * a PostgreSQL connection of their own) they never hold the store's
	 * mutex, so intake and the loop do not wait for a dashboard that polls
	 * them. */
	struct hl_store *reader;
	/* The other read routes' own read-only handle (/api/status, the
	 * /api/remediations lists, a task and its prompts): a list filtered on
	 * an unindexed column scans every task, and under the store's mutex
	 * (SQLite's intake commits, PostgreSQL's main connection, which every
	 * worker and loop operation takes) the rest waited for it; on a
	 * handle of its own (a WAL reader, a PostgreSQL connection) it holds
	 * neither that mutex nor waits for an insights computation on reader.
	 * A new read transaction sees every commit, so a task is listed as
	 * soon as its delivery was answered. NULL (it could not be opened):
	 * store. */
	struct hl_store *lister;
	const char *version;
	struct hl_metrics *metrics;
	int64_t started_ms;
	atomic_int inflight;  /* requests between their first byte and completion */
	atomic_int suspended; /* requests suspended until the store answers */
	atomic_bool stopping;
	atomic_bool leaving; /* /ready answers 503: shutting down (hl_http_server_leave) */
	/* intake could not store its last delivery (a full disk...): /ready
	 * answers 503 until a delivery or /ready's own write probe is stored
	 * (api.c); probe_ms: when /ready last tried a write (monotonic) */
	atomic_bool intake_failing;
	atomic_llong intake_failed_ms; /* monotonic ms of the last delivery not stored */
	atomic_llong ready_probe_ms;
	struct hl_decision_board *decisions;  /* sensor answers waiting for a decision */
	struct hl_webhook_keys *webhook_keys; /* NULL: no webhook secret configured */
	struct {
		void (*fn)(void *arg, struct hl_store *reader, struct hl_buf *out);
		void *arg;
	} extra_metrics[4]; /* an entry is written before n_extra_metrics counts it */
	atomic_int n_extra_metrics;
	/* what they gave, kept as the insights' gauges are (insights_lock) */
	char *extra_text;
	size_t extra_len;
	int64_t extra_until_ms; /* monotonic */
	/* connection limits and deadlines (server.c) */
	pthread_mutex_t conn_lock;
	pthread_cond_t reaper_cond;
	struct http_conn *conns; /* open connections */
	int n_conns;
	struct http_ip *ips; /* addresses with open connections */
	int n_ips, cap_ips;
	bool reaper_started, reaper_stop;
	pthread_t reaper;
	atomic_size_t buffered; /* bytes of request bodies held, all requests */
	size_t max_buffered;
	size_t peer_share; /* of it, what the requests of one address may hold */
	/* the insights' gauges of /metrics, kept for ten times what computing
	 * them took (at most a minute): a scrape of a large store costs at most
	 * a tenth of a core, a small one is always fresh (api.c) */
	pthread_mutex_t insights_lock;
	char *insights_text;
	size_t insights_len;
	json_t *insights_doc;                /* the all-time document, for /api/status */
	int64_t insights_until_ms;           /* monotonic */
	int64_t insights_at_ms;              /* monotonic: when they were computed */
	int64_t insights_took_ms;            /* how long that took */
	struct http_login_guard login_guard; /* POST /login's failures (login_guard.c) */
	struct http_readers readers;         /* the slow read routes' threads (readers.c) */
};

/* What a route accepts (routes.c). */
enum { HTTP_GET = 1u << 0, HTTP_POST = 1u << 1 };
enum http_match { HTTP_MATCH_EXACT, HTTP_MATCH_PREFIX };
enum http_auth {
	HTTP_AUTH_NONE,      /* open (probes, read-only status) */
	HTTP_AUTH_SIGNATURE, /* X-Hub-Signature-256 over the body, by the handler */
	HTTP_AUTH_TOKEN,     /* Authorization: Bearer HEALER_API_TOKEN, by the dispatcher */
	HTTP_AUTH_READ,      /* read access: the bearer token or the dashboard's session
	                        cookie, by the dispatcher */
};

struct http_req;

struct hl_http_route {
	const char *name; /* the metrics label */
	const char *path; /* NULL for the catch-all last entry */
	enum http_match match;
	unsigned methods; /* HTTP_GET (GET and HEAD) | HTTP_POST */
	enum http_auth auth;
	size_t max_body; /* the request body it reads, at most (0: none) */
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
	bool over_budget; /* the server's body budget was spent: answer 503 */
	size_t reserved;  /* bytes of the server's body budget this request holds */
	struct http_addr peer; /* the connection's address, its share of that budget */
	size_t discarded;
	atomic_int phase;
	unsigned code;
	bool sensor;
	const char *event_label; /* the stored event name, the metrics' label */
	int intent;              /* the event's intent (enum hl_event_intent) */
	char delivery_id[HL_DELIVERY_ID_MAX + 1];
	char event_name[65];
	char hook_id[24]; /* X-GitHub-Hook-ID trimmed (intake.c) */
	char task_id[HL_TASK_ID_MAX];
	char skip[64];
	char skip_msg[200]; /* why the payload is invalid_payload, for the answer */
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
	/* a duplicate's answer waits for the reader thread's read of the
	 * first delivery's task (hl_decisions_task_read): never read on an
	 * HTTP thread, where a stalled store would hold it */
	bool wait_task;
	bool task_reading; /* the reader has taken it */
	uint64_t wait_ticket;
	/* the alert routes: one delivery per alert (alerts.c), or NULL */
	struct http_alerts *alerts;
	/* a read route handed to a reader thread (readers.c): its route runs
	 * there with on_reader set, and its reply is kept in deferred */
	bool on_reader;
	struct http_req *read_next; /* in the readers' queue */
	bool read_ahead;            /* queued ahead of the others (a monitoring read) */
	struct http_deferred deferred;
};

/* Suspends r's connection until hl_http_resume (phase HTTP_WAITING), and
 * resumes it (phase HTTP_DONE): the server counts suspended requests, as
 * libmicrohttpd must not be stopped while one is. hl_http_suspend is false
 * (nothing suspended) once the server is stopping: answer 503, queue
 * nothing. */
bool hl_http_suspend(struct http_req *r) HL_MUST_CHECK;
void hl_http_resume(struct http_req *r);

/* The reader threads (readers.c). start: before libmicrohttpd starts;
 * stop: after it stopped (no request is queued or being read any more), or
 * on a failed start. */
int hl_http_readers_start(struct hl_http_server *srv, struct hl_err *err);
void hl_http_readers_stop(struct hl_http_server *srv);
/* Called by a slow read route (after the dispatcher's checks) when
 * !r->on_reader: suspends the connection and queues r for a reader thread,
 * which runs the route again; 503 when the queue is full or the server is
 * stopping. */
enum MHD_Result hl_http_readers_submit(struct http_req *r);
/* The same for a monitoring read: queued before every other waiting
 * request, in HTTP_READERS_AHEAD places of its own (a flood of them takes
 * none of the others' places, and every other turn of a reader). */
enum MHD_Result hl_http_readers_submit_ahead(struct http_req *r);
/* hl_http_reply_hdrs on a reader thread: keeps the reply (takes body,
 * copies hdrs) for hl_http_readers_reply, which queues it once the
 * connection resumed; forget frees a reply never sent. */
void hl_http_readers_keep(struct http_req *r, unsigned code, const char *ctype, char *body,
                          size_t len, const char *const *hdrs);
enum MHD_Result hl_http_readers_reply(struct http_req *r);
void hl_http_readers_forget(struct http_req *r);

/* Appends s[0..n) JSON-escaped with its invalid UTF-8 bytes as U+FFFD (a
 * JSON text is UTF-8; clients send header bytes as they please). */
void hl_http_append_utf8_escaped(struct hl_buf *b, const char *s, size_t n);

/* The address r's connection comes from (len 0 when unknown). */
void hl_http_client_addr(struct http_req *r, struct http_addr *out);

/* The limit on failed logins (login_guard.c): the seconds address a must
 * still wait before it may try again (0: it may), and a failure to count. */
void hl_http_login_guard_init(struct http_login_guard *g, const char *trusted_proxies);
void hl_http_login_guard_destroy(struct http_login_guard *g);
/* The address a login counts against: the connection's peer, or behind
 * trusted proxies the client their X-Forwarded-For names. */
void hl_http_login_client(struct http_login_guard *g, struct http_req *r, struct http_addr *out);
int hl_http_login_blocked_s(struct http_login_guard *g, const struct http_addr *a);
/* The same, by a's client's own failures only: for the routes the sensors
 * and alert webhooks call, which many addresses guessing together must not
 * shut for everyone. */
int hl_http_login_blocked_own_s(struct http_login_guard *g, const struct http_addr *a);
void hl_http_login_failed(struct http_login_guard *g, const struct http_addr *a);
/* 429 for a login (or a bearer token) from an address with too many
 * failures, with Retry-After: for a browser (Accept names text/html, as
 * the login form's post does) a page saying when to try again with a link
 * back to the form, else {"error":"too_many_attempts","message":...,
 * "retry_after":S} (dashboard.c). */
enum MHD_Result hl_http_too_many_logins(struct http_req *r, int wait_s);

/* Queues a response; takes body (malloc'd, may be NULL when len is 0). */
enum MHD_Result hl_http_reply(struct http_req *r, unsigned code, const char *ctype, char *body,
                              size_t len);
/* hl_http_reply with extra headers: hdrs is NULL or a NULL-terminated
 * list of name, value pairs. */
enum MHD_Result hl_http_reply_hdrs(struct http_req *r, unsigned code, const char *ctype, char *body,
                                   size_t len, const char *const *hdrs);
/* Queues {"error": code, "message": ...}. */
enum MHD_Result hl_http_reply_error(struct http_req *r, unsigned code, const char *error,
                                    const char *fmt, ...) HL_PRINTF(4, 5);

/* The route of a path (the catch-all when none matches); *arg gets what
 * follows a prefix route's path (inside url). */
const struct hl_http_route *hl_http_route_of(const char *url, const char **arg);
/* The catch-all route (404) for a path that is no route's; *arg gets "". */
const struct hl_http_route *hl_http_route_other(const char **arg);
/* The name of route index i (for metrics labels). */
const char *hl_http_route_name(int i);
/* The Allow header of a route. */
const char *hl_http_route_allow(const struct hl_http_route *rt);
/* The bearer token check of HTTP_AUTH_TOKEN routes (constant time): true
 * when no token is configured or the request carries it. */
bool hl_http_token_ok(struct http_req *r);
/* The check of HTTP_AUTH_READ routes: true when no token is configured,
 * the request carries the bearer token, or it carries no bearer header (it
 * may carry another scheme's) and a valid session cookie. */
bool hl_http_read_ok(struct http_req *r);
/* The authentication of r's route (HTTP_AUTH_TOKEN, HTTP_AUTH_READ) with
 * the failed-login limit: a wrong bearer token counts as a failed login of
 * its client address (the same secret), and while the address is blocked
 * every bearer token, the right one too, is answered 429. True when r is
 * refused: *out holds the answer (401 or 429). */
bool hl_http_auth_refused(struct http_req *r, enum MHD_Result *out);
/* The store keys of the dashboard sessions a logout revoked (the value is
 * the session's expiry; pruned once it passed). */
#define HL_HTTP_REVOKED_PREFIX "session:revoked:"
/* False for a browser's request from another origin: Sec-Fetch-Site, when
 * sent, must say same-origin (or none: typed by the user), and Origin, when
 * sent, must name this host ("null", an opaque origin, only when null_ok).
 * Other clients send neither. */
bool hl_http_same_origin(struct http_req *r, bool null_ok);
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
enum MHD_Result hl_http_remediations(struct http_req *r);
/* A JSON GET answer with a strong ETag and 304 for a matching
 * If-None-Match (api.c); takes o. */
enum MHD_Result hl_http_reply_json_etag(struct http_req *r, json_t *o);

/* The dashboard (dashboard.c): GET / (the app, or the login page when a
 * token is set and the request has no session), GET /assets/NAME, POST
 * /login (a form with the token: sets the session cookie) and POST
 * /logout. */
enum MHD_Result hl_http_dashboard(struct http_req *r, const char *arg);
enum MHD_Result hl_http_dashboard_asset(struct http_req *r, const char *arg);
enum MHD_Result hl_http_login(struct http_req *r, const char *arg);
enum MHD_Result hl_http_logout(struct http_req *r, const char *arg);

/* GET /api/insights?since=&repository= (contract section 10). */
enum MHD_Result hl_http_insights(struct http_req *r);

#endif
