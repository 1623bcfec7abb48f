/*
 * kube.h - a small Kubernetes API client over the fetch engine: client
 * configuration (kubeconfig or in-cluster; kubeconfig.c), pods, logs,
 * events and ArgoCD Application objects (kube.c), CodeRuns
 * (agents.platform/v1): create, read, delete, their status and their Job's
 * output (kube_coderun.c), and the list+watch loop (kube_watch.c).
 *
 * Configuration sources (hl_kube_load): the KUBECONFIG file when given (a
 * ':' list is merged as kubectl merges it: missing files skipped,
 * current-context from the first file that sets it, each cluster, user and
 * context from the first file that names it); else in-cluster
 * (KUBERNETES_SERVICE_HOST/PORT plus the service-account token, CA and
 * namespace files) when a token is mounted; else ~/.kube/config. From a
 * kubeconfig the
 * current-context selects the cluster (server, certificate-authority file or
 * certificate-authority-data, insecure-skip-tls-verify, tls-server-name,
 * proxy-url: http, https or socks5, as kubectl takes them), the user (token,
 * tokenFile, client-certificate(-data) + client-key(-data)) and the
 * namespace ("default" when unset). Exec/auth-provider plugins are not
 * supported (HL_EUNSUPPORTED). Relative file paths are resolved against the
 * directory of the kubeconfig file that names them. A token file is re-read on every call, so
 * rotated service-account tokens are picked up.
 *
 * A struct hl_kube is immutable after loading and safe to share between
 * threads. Every call returns 0 or -HL_E*: HL_ENOTFOUND for 404,
 * HL_ECONFLICT for 409, HL_EAUTH for 401/403, HL_EINVAL for 400/422 (the
 * message carries the API's Status message), HL_EIO / HL_ETIMEOUT for
 * transport failures, HL_EUPSTREAM otherwise (also for a 2xx answer that is
 * not JSON: not the API server's, a proxy's page). Tokens are never put in error
 * messages. Namespaces and object names are checked (hl_kube_name_valid)
 * and encoded as one path segment each; a refused name is HL_EINVAL before
 * any request.
 */
#ifndef HL_NET_KUBE_H
#define HL_NET_KUBE_H

#include "base/buf.h"
#include "base/err.h"
#include "fetch.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define HL_CODERUN_GROUP       "agents.platform"
#define HL_CODERUN_VERSION     "v1"
#define HL_CODERUN_API_VERSION "agents.platform/v1"
#define HL_CODERUN_PREFIX      "/apis/" HL_CODERUN_GROUP "/" HL_CODERUN_VERSION

struct hl_kube {
	char *server; /* "https://host:port", no trailing slash */
	/* what request URLs start with: server, or, with a tls-server-name,
	 * server with that name as its host (the TLS SNI and the name its
	 * certificate is checked against), the connection still made to the
	 * server's own address (connect_to) and its Host header kept
	 * (host_header), as client-go does */
	char *url_base;
	char *tls_server_name; /* clusters[].cluster.tls-server-name, or NULL */
	char *connect_to;      /* "NAME:PORT:HOST:PORT" (CURLOPT_CONNECT_TO), or NULL */
	char *host_header;     /* "Host: host[:port]" of server, or NULL */
	/* clusters[].cluster.proxy-url as libcurl takes it (socks5 becomes
	 * socks5h: the proxy resolves names, as client-go's SOCKS5 dialer has
	 * it), or NULL: the *_proxy environment, as client-go without one.
	 * Its credentials are registered as log secrets. */
	char *proxy;
	char *proxy_shown; /* proxy without its credentials, for messages */
	char *ca_data;     /* PEM bytes (decoded certificate-authority-data) or NULL */
	char *ca_file;     /* absolute path or NULL */
	bool insecure;
	char *token;        /* static bearer token or NULL */
	char *token_file;   /* re-read per call, or NULL */
	char *logged_token; /* its last token, redacted from logs (kube.c) */
	char *client_cert;  /* PEM bytes or NULL */
	char *client_key;   /* PEM bytes or NULL */
	char *namespace;    /* the context's namespace, "default" when unset */
	char *source;       /* where the configuration came from (for messages) */
	int64_t timeout_ms; /* per call; default 15000 */
};

/*
 * Loads the client configuration: kubeconfig (a path or a ':' list of them;
 * NULL means in-cluster, else $HOME/.kube/config). HL_ENOTFOUND when no
 * configuration exists (no file of a list exists),
 * HL_EPARSE / HL_EINVAL for a bad file. Free with hl_kube_free.
 */
int hl_kube_load(struct hl_kube **out, const char *kubeconfig, struct hl_err *err) HL_MUST_CHECK;

/* Parses kubeconfig YAML text; base_dir resolves relative paths (may be NULL). */
int hl_kube_config_parse(struct hl_kube **out, const char *yaml, size_t n, const char *base_dir,
                         struct hl_err *err) HL_MUST_CHECK;

/* In-cluster configuration from the environment and sa_dir (NULL means
 * /var/run/secrets/kubernetes.io/serviceaccount). */
int hl_kube_load_incluster(struct hl_kube **out, const char *sa_dir,
                           struct hl_err *err) HL_MUST_CHECK;

void hl_kube_free(struct hl_kube *k);

/*
 * True when s may be used as a namespace or object name in a request path:
 * not empty, not "." or "..", no '/' and no '%' (the API server's own rule
 * for path segment names). Every call below checks its names with it and
 * answers HL_EINVAL for one it refuses, before any request is made.
 */
bool hl_kube_name_valid(const char *s);

/*
 * Prepares req for a call to path (which starts with "/"): sets the URL into
 * url (caller-owned, must outlive the request), TLS and auth (into auth,
 * likewise caller-owned; released with hl_buf_release). For batching Kubernetes
 * calls with other sources in one hl_fetch_run. A path that
 * hl_url_check_path refuses (a '#', a "." or ".." segment, an unencoded
 * byte) is refused with HL_EINVAL: build paths with hl_url_append_segment.
 */
int hl_kube_req_init(const struct hl_kube *k, struct hl_fetch_req *req, struct hl_buf *url,
                     struct hl_buf *auth, const char *method, const char *path,
                     struct hl_err *err) HL_MUST_CHECK;

/*
 * One JSON call: method on path with an optional JSON body. On 2xx *out (may
 * be NULL to discard) receives the parsed answer (caller decrefs; an empty
 * answer reads as an empty object). status_out (may be NULL) gets the HTTP
 * status even on failure.
 */
int hl_kube_call(const struct hl_kube *k, json_t **out, long *status_out, const char *method,
                 const char *path, const json_t *body, struct hl_err *err) HL_MUST_CHECK;

/* Converts a YAML document to JSON (mappings, sequences, scalars as strings;
 * a null/~ or empty scalar becomes JSON null). Used for kubeconfig files. */
int hl_kube_yaml_to_json(json_t **out, const char *yaml, size_t n,
                         struct hl_err *err) HL_MUST_CHECK;

/* GET /api/v1/namespaces/{ns}/pods/{name}. */
int hl_kube_get_pod(const struct hl_kube *k, json_t **out, const char *ns, const char *name,
                    struct hl_err *err) HL_MUST_CHECK;

/* Lists pods matching a label selector (NULL: all); *out is the PodList. */
int hl_kube_list_pods(const struct hl_kube *k, json_t **out, const char *ns,
                      const char *label_selector, struct hl_err *err) HL_MUST_CHECK;

/*
 * Appends a container's log to out (out->max caps it; over the cap the TAIL
 * is kept and *truncated_out (may be NULL) set). tail_lines 0 means all;
 * previous asks for the previous (terminated) instance.
 */
int hl_kube_pod_log(const struct hl_kube *k, struct hl_buf *out, bool *truncated_out,
                    const char *ns, const char *pod, const char *container, long tail_lines,
                    bool previous, struct hl_err *err) HL_MUST_CHECK;

/*
 * Prepares (without running) the request hl_kube_pod_log makes, so several
 * containers' logs can be fetched in one hl_fetch_run; url and auth as for
 * hl_kube_req_init. max caps the body (0: 64 MiB), keeping the tail.
 */
int hl_kube_pod_log_req(const struct hl_kube *k, struct hl_fetch_req *req, struct hl_buf *url,
                        struct hl_buf *auth, const char *ns, const char *pod, const char *container,
                        long tail_lines, bool previous, size_t max,
                        struct hl_err *err) HL_MUST_CHECK;

/*
 * True when err is the API server's 403 (HL_EAUTH "...: status 403: ..."):
 * the Role does not allow the call, which asking again does not change (a
 * 401, a token rotated under the client, may pass on the next try).
 */
bool hl_kube_err_forbidden(const struct hl_err *err);

/* Turns a finished Kubernetes call into an error carrying the API's Status
 * message (0 for 2xx); what names the call. */
int hl_kube_check(const struct hl_fetch_res *res, const char *what,
                  struct hl_err *err) HL_MUST_CHECK;

/* Lists events whose involvedObject.name is name; *out is the EventList. */
int hl_kube_list_events(const struct hl_kube *k, json_t **out, const char *ns, const char *name,
                        struct hl_err *err) HL_MUST_CHECK;

/* ---- CodeRuns (kube_coderun.c) ---- */

/*
 * Creates a CodeRun (manifest borrowed). On 201 *out (may be NULL) gets the
 * created object. A name clash returns -HL_ECONFLICT ("exists"): creation by
 * a deterministic name is idempotent (and is retried on 5xx for that
 * reason; a generateName create is not).
 */
int hl_kube_create_coderun(const struct hl_kube *k, json_t **out, const char *ns,
                           const json_t *manifest, struct hl_err *err) HL_MUST_CHECK;

/* GET one CodeRun; HL_ENOTFOUND when absent. */
int hl_kube_get_coderun(const struct hl_kube *k, json_t **out, const char *ns, const char *name,
                        struct hl_err *err) HL_MUST_CHECK;

/* Lists CodeRuns matching a label selector (NULL: all); *out is the list
 * object (items[], metadata.resourceVersion). */
int hl_kube_list_coderuns(const struct hl_kube *k, json_t **out, const char *ns,
                          const char *label_selector, struct hl_err *err) HL_MUST_CHECK;

/*
 * Deletes a CodeRun with propagationPolicy=Background, so the controller's
 * Job and its pods are collected too. A CodeRun that is already gone (404)
 * counts as deleted: returns 0. Retried on 5xx and connection errors
 * (DELETE is idempotent). HL_EAUTH, HL_EINVAL (bad name), HL_EUPSTREAM.
 */
int hl_kube_delete_coderun(const struct hl_kube *k, const char *ns, const char *name,
                           struct hl_err *err) HL_MUST_CHECK;

/* A CodeRun's phase (seed-system-facts section 1.4). */
enum hl_kube_phase {
	HL_KUBE_PHASE_NONE = 0,  /* no phase yet: just created, the controller has not seen it */
	HL_KUBE_PHASE_PENDING,   /* "Pending" */
	HL_KUBE_PHASE_RUNNING,   /* "Running" */
	HL_KUBE_PHASE_SUCCEEDED, /* "Succeeded" */
	HL_KUBE_PHASE_FAILED,    /* "Failed" */
	HL_KUBE_PHASE_UNKNOWN,   /* some other text (in phase_text) */
};

/*
 * The status of a CodeRun as typed fields. Every string is borrowed from
 * the object it was read from (valid while that object lives) and NULL when
 * absent or not a string.
 */
struct hl_kube_coderun_status {
	enum hl_kube_phase phase;
	const char *phase_text;         /* status.phase as written (or the condition's type) */
	const char *message;            /* status.message, else the condition's message */
	const char *pull_request_url;   /* status.pullRequestUrl */
	const char *job_name;           /* status.jobName: the agent's Job */
	const char *last_update;        /* status.lastUpdate */
	const char *finished_at;        /* status.finishedAt */
	const char *remediation_status; /* status.remediationStatus (seed) */
	const char *qa_status;          /* status.qaStatus (seed) */
	int64_t retry_count;            /* status.retryCount, 0 when absent */
	bool work_completed;            /* status.workCompleted */
	/* the last entry of status.conditions (the seed writes exactly one,
	 * type = the phase, reason JobStarted / JobCompleted / JobFailed) */
	const char *condition_type, *condition_status, *condition_reason, *condition_message;
	const char *name, *namespace, *uid, *resource_version; /* metadata */
	bool deleting; /* metadata.deletionTimestamp is set */
};

/*
 * Reads coderun's status into out (always fully written; a NULL or
 * non-object coderun reads as no status). The phase comes from
 * status.phase (case-insensitive); without one, from the last condition
 * whose status is "True" and whose type is a phase, as the seed controller
 * writes them.
 */
void hl_kube_coderun_status_read(struct hl_kube_coderun_status *out, const json_t *coderun);

/* "Succeeded" / "Failed" / ... ("" for NONE, "Unknown" for UNKNOWN). */
const char *hl_kube_phase_name(enum hl_kube_phase p);
/* True for SUCCEEDED and FAILED: the attempt has an outcome. */
bool hl_kube_phase_terminal(enum hl_kube_phase p);

/*
 * Lists the pods of a Job (label selector "job-name=<job_name>", the label
 * the Job controller puts on every pod, also on old servers). *out is the
 * PodList, its items sorted oldest first by metadata.creationTimestamp.
 */
int hl_kube_job_pods(const struct hl_kube *k, json_t **out, const char *ns, const char *job_name,
                     struct hl_err *err) HL_MUST_CHECK;

/*
 * The agent's output: appends to out the last tail_lines lines (0: 200) of
 * the log of every container of the Job's pods (init containers first),
 * oldest pod first, at most the 4 newest pods and 64 containers in all, all
 * fetched in one parallel batch, each under a header line "==> pod P
 * container C <==". A log that could not be read is noted in place ("(log
 * unavailable: ...)"). Each log is capped at 1 MiB keeping its tail;
 * out->max caps the whole (HL_ETOOBIG). Returns 0 when at least one log was
 * read; HL_ENOTFOUND when the Job has no pods (never started, or already
 * collected); else the first log's error.
 */
int hl_kube_job_logs(const struct hl_kube *k, struct hl_buf *out, const char *ns,
                     const char *job_name, long tail_lines, struct hl_err *err) HL_MUST_CHECK;

/* ---- watch (kube_watch.c) ---- */

/* The longest a watch waits because a server said so (Retry-After,
 * retryAfterSeconds): a hostile or broken API server or proxy cannot park
 * the CodeRun watch for longer (client-go's backoff is bounded alike). */
#define HL_KUBE_WATCH_WAIT_MAX_MS 60000

/*
 * A watch callback. type is
 *   "LIST"     a (re)list begins (object NULL): SYNCs since the last SYNCED
 *              came from a list cut short and say nothing;
 *   "SYNC"     for each object of a (re)list: its current state;
 *   "PAGE"     before each list page after the first (object NULL);
 *   "SYNCED"   once a (re)list is complete (object NULL): any object the
 *              caller knows that got no SYNC since the previous SYNCED (or
 *              since the start) vanished while the watch was not looking;
 *   "ADDED", "MODIFIED", "DELETED" for changes (DELETED carries the last
 *              state);
 *   "BOOKMARK" object is the bookmark (only metadata.resourceVersion is
 *              meaningful): the resourceVersion buffer now holds it, so the
 *              caller may persist it.
 * object is borrowed for the call. Return 0 to go on, -1 to stop the watch.
 * Called on the watching thread only.
 */
typedef int (*hl_kube_watch_fn)(void *ud, const char *type, json_t *object);

/*
 * Counters of a watch, updated live with atomic adds, so another thread
 * (a metrics scrape) may read them while the watch runs. Zero it before
 * the first use; one struct may be shared by successive watches.
 */
struct hl_kube_watch_stats {
	atomic_uint_fast64_t restarts;   /* reconnects + relists: healer_watch_restarts_total */
	atomic_uint_fast64_t reconnects; /* watches re-made after a cut connection, a transport
	                                    error, an ERROR event, a garbled line, 5xx or 429 */
	atomic_uint_fast64_t relists;    /* lists after the first (410 Gone, failed lists) */
	atomic_uint_fast64_t rewatches;  /* watches re-made after the server ended a stream
	                                    normally (its timeoutSeconds); not restarts */
	atomic_uint_fast64_t events;     /* ADDED / MODIFIED / DELETED delivered */
	atomic_uint_fast64_t bookmarks;  /* BOOKMARK delivered */
	/* a server's wait (Retry-After, retryAfterSeconds) over retry_after_max_ms, cut */
	atomic_uint_fast64_t waits_capped;
	/* the list page size a page over the body cap taught (halved each
	 * time; 0: list_limit or the default), kept for the next watches */
	atomic_int list_page;
	/* why the last restart happened; written by the watching thread, read
	 * it after hl_kube_watch returns */
	struct hl_err last_error;
};

struct hl_kube_watch_opts {
	const char *ns;             /* NULL: the client's namespace */
	const char *label_selector; /* NULL: every object */
	const char *api_prefix;     /* NULL: HL_CODERUN_PREFIX ("/apis/agents.platform/v1") */
	const char *resource;       /* NULL: "coderuns" (plural, namespaced) */
	/* in/out: the resourceVersion to resume from ("" lists first); always
	 * holds the last version delivered (event, bookmark or list) */
	char *resource_version;
	size_t rv_size;
	int64_t deadline_ms;     /* monotonic (hl_time_mono_ms); 0: none */
	const atomic_bool *stop; /* ends the watch within 500 ms of becoming true */
	hl_kube_watch_fn fn;
	void *ud;
	int64_t backoff_ms;     /* first reconnect delay; 0: 800 (client-go) */
	int64_t backoff_max_ms; /* reconnect delay cap; 0: 30000 */
	int watch_timeout_s;    /* timeoutSeconds of each watch; 0: random in [300, 600) */
	int list_limit;         /* objects per list page; 0: 500 */
	/* pages of one list before it is taken for endless (a server that
	 * always answers with a continue token) and tried again after a
	 * backoff; 0: 10000 */
	int list_max_pages;
	/* 0: a list ends at deadline_ms like a watch. Else a list begun
	 * before the deadline goes on past it to its end (its first failure,
	 * the stop flag or the callback ends it sooner), each page given at
	 * least list_extend_ms (at most the client's timeout), and fn gets
	 * "PAGE" (obj NULL) before each page after the first: the caller
	 * renews what lets it go on (a leader lease) or returns -1 */
	int64_t list_extend_ms;
	struct hl_kube_watch_stats *stats; /* may be NULL */
	/* the longest wait a server's Retry-After (429, 5xx) or an ERROR event's
	 * details.retryAfterSeconds is honoured for; 0: HL_KUBE_WATCH_WAIT_MAX_MS */
	int64_t retry_after_max_ms;
	/* called on the watching thread (with ud) when a server asked for a
	 * longer wait than that and the wait was cut to capped_ms; from names
	 * the request; may be NULL (the caller logs it) */
	void (*wait_capped)(void *ud, const char *from, int64_t asked_s, int64_t capped_ms);
};

/*
 * Watches a collection (CodeRuns unless o says otherwise) until the
 * deadline passes (a list under way with list_extend_ms: once it ends), the
 * stop flag is set or the callback returns -1, then returns 0. At least one
 * of deadline_ms and stop must be set (HL_EINVAL).
 *
 * With an empty resource_version it lists first ("SYNC"..., "SYNCED", in
 * pages of list_limit; an expired continue token restarts the list), then watches with
 * allowWatchBookmarks=true from the list's resourceVersion; with one it watches from there at once.
 * When the server ends a stream it watches again from the last version. 410 Gone (an HTTP 410, or
 * an ERROR event with code 410 in a 200 stream) relists at once. A cut connection, a transport
 * error, a garbled line, another ERROR event, 5xx or 429 reconnect after a backoff (doubling from
 * backoff_ms up to backoff_max_ms, full jitter, at least the Retry-After the server gave, but
 * never more than retry_after_max_ms: a longer one is cut and reported to wait_capped), reset
 * once a stream delivers something. Errors retrying cannot fix are returned: HL_EAUTH (401/403),
 * HL_ENOTFOUND (404: no such resource), HL_EINVAL (400/422: a bad selector), HL_ENOMEM. Thread-safe
 * for distinct opts; k is only read.
 */
int hl_kube_watch(const struct hl_kube *k, const struct hl_kube_watch_opts *o,
                  struct hl_err *err) HL_MUST_CHECK;

/* GET an ArgoCD Application object (argoproj.io/v1alpha1) from the cluster. */
int hl_kube_get_argocd_app(const struct hl_kube *k, json_t **out, const char *ns, const char *name,
                           struct hl_err *err) HL_MUST_CHECK;

#endif
