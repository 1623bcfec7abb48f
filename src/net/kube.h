/*
 * kube.h - a small Kubernetes API client over the fetch engine: client
 * configuration (kubeconfig or in-cluster), pods, logs, events, CodeRuns
 * (agents.platform/v1), watches, and ArgoCD Application objects.
 *
 * Configuration sources (hl_kube_load): the KUBECONFIG file when given; else
 * in-cluster (KUBERNETES_SERVICE_HOST/PORT plus the service-account token,
 * CA and namespace files); else ~/.kube/config. From a kubeconfig the
 * current-context selects the cluster (server, certificate-authority file or
 * certificate-authority-data, insecure-skip-tls-verify), the user (token,
 * tokenFile, client-certificate(-data) + client-key(-data)) and the
 * namespace ("default" when unset). Exec/auth-provider plugins are not
 * supported (HL_EUNSUPPORTED). Relative file paths are resolved against the
 * kubeconfig's directory. A token file is re-read on every call, so rotated
 * service-account tokens are picked up.
 *
 * A struct hl_kube is immutable after loading and safe to share between
 * threads. Every call returns 0 or -HL_E*: HL_ENOTFOUND for 404,
 * HL_ECONFLICT for 409, HL_EAUTH for 401/403, HL_EINVAL for 400/422 (the
 * message carries the API's Status message), HL_EIO / HL_ETIMEOUT for
 * transport failures, HL_EUPSTREAM otherwise. Tokens are never put in error
 * messages.
 */
#ifndef HL_NET_KUBE_H
#define HL_NET_KUBE_H

#include "base/buf.h"
#include "base/err.h"
#include "fetch.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define HL_CODERUN_GROUP       "agents.platform"
#define HL_CODERUN_VERSION     "v1"
#define HL_CODERUN_API_VERSION "agents.platform/v1"
#define HL_CODERUN_PREFIX      "/apis/" HL_CODERUN_GROUP "/" HL_CODERUN_VERSION

struct hl_kube {
	char *server;  /* "https://host:port", no trailing slash */
	char *ca_data; /* PEM bytes (decoded certificate-authority-data) or NULL */
	char *ca_file; /* absolute path or NULL */
	bool insecure;
	char *token;        /* static bearer token or NULL */
	char *token_file;   /* re-read per call, or NULL */
	char *client_cert;  /* PEM bytes or NULL */
	char *client_key;   /* PEM bytes or NULL */
	char *namespace;    /* the context's namespace, "default" when unset */
	char *source;       /* where the configuration came from (for messages) */
	int64_t timeout_ms; /* per call; default 15000 */
};

/*
 * Loads the client configuration: kubeconfig (a path; NULL means in-cluster,
 * else $HOME/.kube/config). HL_ENOTFOUND when no configuration exists,
 * HL_EPARSE / HL_EINVAL for a bad file. Free with hl_kube_free.
 */
int hl_kube_load(struct hl_kube **out, const char *kubeconfig, struct hl_err *err);

/* Parses kubeconfig YAML text; base_dir resolves relative paths (may be NULL). */
int hl_kube_config_parse(struct hl_kube **out, const char *yaml, size_t n, const char *base_dir,
                         struct hl_err *err);

/* In-cluster configuration from the environment and sa_dir (NULL means
 * /var/run/secrets/kubernetes.io/serviceaccount). */
int hl_kube_load_incluster(struct hl_kube **out, const char *sa_dir, struct hl_err *err);

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
                     struct hl_buf *auth, const char *method, const char *path, struct hl_err *err);

/*
 * One JSON call: method on path with an optional JSON body. On 2xx *out (may
 * be NULL to discard) receives the parsed answer (caller decrefs; an empty
 * answer reads as an empty object). status_out (may be NULL) gets the HTTP
 * status even on failure.
 */
int hl_kube_call(const struct hl_kube *k, json_t **out, long *status_out, const char *method,
                 const char *path, const json_t *body, struct hl_err *err);

/* Converts a YAML document to JSON (mappings, sequences, scalars as strings;
 * a null/~ or empty scalar becomes JSON null). Used for kubeconfig files. */
int hl_kube_yaml_to_json(json_t **out, const char *yaml, size_t n, struct hl_err *err);

/* GET /api/v1/namespaces/{ns}/pods/{name}. */
int hl_kube_get_pod(const struct hl_kube *k, json_t **out, const char *ns, const char *name,
                    struct hl_err *err);

/* Lists pods matching a label selector (NULL: all); *out is the PodList. */
int hl_kube_list_pods(const struct hl_kube *k, json_t **out, const char *ns,
                      const char *label_selector, struct hl_err *err);

/*
 * Appends a container's log to out (out->max caps it; over the cap the TAIL
 * is kept and *truncated_out (may be NULL) set). tail_lines 0 means all;
 * previous asks for the previous (terminated) instance.
 */
int hl_kube_pod_log(const struct hl_kube *k, struct hl_buf *out, bool *truncated_out,
                    const char *ns, const char *pod, const char *container, long tail_lines,
                    bool previous, struct hl_err *err);

/*
 * Prepares (without running) the request hl_kube_pod_log makes, so several
 * containers' logs can be fetched in one hl_fetch_run; url and auth as for
 * hl_kube_req_init. max caps the body (0: 64 MiB), keeping the tail.
 */
int hl_kube_pod_log_req(const struct hl_kube *k, struct hl_fetch_req *req, struct hl_buf *url,
                        struct hl_buf *auth, const char *ns, const char *pod, const char *container,
                        long tail_lines, bool previous, size_t max, struct hl_err *err);

/* Turns a finished Kubernetes call into an error carrying the API's Status
 * message (0 for 2xx); what names the call. */
int hl_kube_check(const struct hl_fetch_res *res, const char *what, struct hl_err *err);

/* Lists events whose involvedObject.name is name; *out is the EventList. */
int hl_kube_list_events(const struct hl_kube *k, json_t **out, const char *ns, const char *name,
                        struct hl_err *err);

/*
 * Creates a CodeRun (manifest borrowed). On 201 *out (may be NULL) gets the
 * created object. A name clash returns -HL_ECONFLICT ("exists"): creation by
 * a deterministic name is idempotent.
 */
int hl_kube_create_coderun(const struct hl_kube *k, json_t **out, const char *ns,
                           const json_t *manifest, struct hl_err *err);

/* GET one CodeRun; HL_ENOTFOUND when absent. */
int hl_kube_get_coderun(const struct hl_kube *k, json_t **out, const char *ns, const char *name,
                        struct hl_err *err);

/* Lists CodeRuns matching a label selector (NULL: all); *out is the list
 * object (items[], metadata.resourceVersion). */
int hl_kube_list_coderuns(const struct hl_kube *k, json_t **out, const char *ns,
                          const char *label_selector, struct hl_err *err);

/*
 * A watch callback: type is "ADDED", "MODIFIED", "DELETED" for watch events,
 * or "SYNC" for each object of a (re)list, which the watcher should treat as
 * the current state (a relist happens at the start and after 410 Gone).
 * object is borrowed. Return 0 to go on, -1 to stop the watch.
 */
typedef int (*hl_kube_watch_fn)(void *ud, const char *type, json_t *object);

/*
 * Watches CodeRuns matching the selector for up to duration_ms: lists (when
 * resource_version is empty) delivering "SYNC" objects, then streams
 * ?watch=1&resourceVersion=RV JSON lines; when the server ends the stream
 * it re-watches from the last seen resourceVersion; on 410 Gone (HTTP, or
 * an ERROR event with code 410) it re-lists and re-watches. resource_version
 * (rv_size bytes) is read and updated so a later call resumes. Returns 0 when
 * the duration passed or the callback stopped the watch.
 */
int hl_kube_watch_coderuns(const struct hl_kube *k, const char *ns, const char *label_selector,
                           char *resource_version, size_t rv_size, int64_t duration_ms,
                           hl_kube_watch_fn fn, void *ud, struct hl_err *err);

/* GET an ArgoCD Application object (argoproj.io/v1alpha1) from the cluster. */
int hl_kube_get_argocd_app(const struct hl_kube *k, json_t **out, const char *ns, const char *name,
                           struct hl_err *err);

#endif
