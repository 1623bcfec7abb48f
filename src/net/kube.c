/*
 * kube.c - Kubernetes API calls over the fetch engine: the request set-up
 * (server, TLS, bearer token re-read per call), JSON calls whose errors carry
 * the API's Status message, pods, logs, events and ArgoCD Application
 * objects. Configuration loading is in kubeconfig.c, CodeRuns in
 * kube_coderun.c, the watch in kube_watch.c.
 *
 * Invariants: tokens live only in the Authorization value built per call
 * (wiped after use) and never reach an error message.
 */
#include "kube.h"

#include "base/file.h"
#include "base/log.h"
#include "base/str.h"
#include "base/url.h"
#include "kube_impl.h"

#include "json/json.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Guards every client's logged_token. */
static pthread_mutex_t kube_token_lock = PTHREAD_MUTEX_INITIALIZER;

/* A token read from the token file is redacted from every log, the one it
 * rotated away from (a projected token is renewed hourly) in its place. */
static void
kube_log_token(struct hl_kube *k, const char *token)
{
	char *copy;

	pthread_mutex_lock(&kube_token_lock);
	if ((!k->logged_token || strcmp(k->logged_token, token) != 0) &&
	    (copy = strdup(token)) != NULL) {
		hl_log_replace_secret(k->logged_token, copy);
		if (k->logged_token) {
			explicit_bzero(k->logged_token, strlen(k->logged_token));
			free(k->logged_token);
		}
		k->logged_token = copy;
	}
	pthread_mutex_unlock(&kube_token_lock);
}

/* ---- calls ---- */

int
hl_kube_req_init(const struct hl_kube *k, struct hl_fetch_req *req, struct hl_buf *url,
                 struct hl_buf *auth, const char *method, const char *path, struct hl_err *err)
{
	int ret;

	memset(req, 0, sizeof(*req));
	if ((ret = hl_url_check_path(path, err)) < 0) {
		hl_err_wrap(err, "kubernetes %s", method ? method : "GET");
		return ret;
	}
	hl_buf_reset(url);
	hl_buf_append_str(url, k->url_base ? k->url_base : k->server);
	hl_buf_append_str(url, path);
	if (hl_buf_error(url))
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	hl_buf_reset(auth);
	if (k->token_file) {
		struct hl_buf t = HL_BUF_INIT(64 * 1024);
		struct hl_err e = HL_ERR_INIT;
		char *trim;

		if (hl_file_read(&t, k->token_file, &e) < 0) {
			hl_buf_release(&t);
			return hl_err_set(err, HL_EAUTH, "kubernetes token file '%s': %s",
			                  k->token_file, e.msg);
		}
		trim = hl_str_trim_dup(t.data);
		explicit_bzero(t.data, t.len);
		hl_buf_release(&t);
		if (!trim)
			return hl_err_set(err, HL_ENOMEM, "out of memory");
		/* logged_token is the client's one mutable member, under its lock */
		kube_log_token((struct hl_kube *)k, trim);
		hl_buf_appendf(auth, "Bearer %s", trim);
		explicit_bzero(trim, strlen(trim));
		free(trim);
	} else if (k->token && *k->token) {
		hl_buf_appendf(auth, "Bearer %s", k->token);
	}
	if (hl_buf_error(auth))
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	req->method = method;
	req->url = url->data;
	req->auth = auth->len ? auth->data : NULL;
	req->ca_data = k->ca_data;
	req->ca_file = k->ca_file;
	req->insecure = k->insecure;
	req->client_cert = k->client_cert;
	req->client_key = k->client_key;
	req->proxy = k->proxy;
	req->connect_to = k->connect_to;
	req->timeout_ms = k->timeout_ms > 0 ? k->timeout_ms : 15000;
	req->max_retries = -1;
	req->headers[0] = "Accept: application/json";
	req->headers[1] = k->host_header; /* NULL ends the list when unset */
	return 0;
}

void
hl_kube_auth_release(struct hl_buf *auth)
{
	if (auth->len)
		explicit_bzero(auth->data, auth->len);
	hl_buf_release(auth);
}

int
hl_kube_status_error(const struct hl_fetch_res *res, const char *method, const char *path,
                     struct hl_err *err)
{
	json_t *st = NULL;
	const char *msg = NULL;
	int code, ret;
	char what[320];

	snprintf(what, sizeof(what), "kubernetes %s '%.256s'", method, path);
	if (res->err.code || (res->status >= 200 && res->status < 300))
		return hl_fetch_check(res, what, err);
	if (hl_json_parse(&st, res->body.data, res->body.len, NULL) == 0)
		msg = hl_json_str(st, "message");
	if (!msg) {
		ret = hl_fetch_check(res, what, err);
		json_decref(st);
		return ret;
	}
	/* a namespace's ResourceQuota used up answers 403 "exceeded quota":
	 * not the credentials, and gone once other objects finish */
	if (res->status == 403 && hl_str_casestr(msg, "exceeded quota"))
		code = HL_EUPSTREAM;
	else if (res->status == 401 || res->status == 403)
		code = HL_EAUTH;
	else if (res->status == 404)
		code = HL_ENOTFOUND;
	else if (res->status == 409)
		code = HL_ECONFLICT;
	else if (res->status == 400 || res->status == 422)
		code = HL_EINVAL;
	else
		code = HL_EUPSTREAM;
	ret = hl_err_set(err, code, "%s: status %ld: %s", what, res->status, msg);
	json_decref(st);
	return ret;
}

int
hl_kube_call_ex(const struct hl_kube *k, json_t **out, long *status_out, const char *method,
                const char *path, const json_t *body, int max_retries, struct hl_err *err)
{
	struct hl_buf url = HL_BUF_INIT(0), auth = HL_BUF_INIT(0);
	struct hl_fetch_req req;
	struct hl_fetch_res res;
	char *text = NULL;
	json_t *v = NULL;
	int ret;

	hl_fetch_res_init(&res);
	ret = hl_kube_req_init(k, &req, &url, &auth, method, path, err);
	if (ret < 0)
		goto out;
	if (body && (ret = hl_fetch_req_set_json(&req, &text, body, err)) < 0)
		goto out;
	req.max_retries = max_retries;
	hl_fetch_run(&req, &res, 1, 0, err);
	if (status_out)
		*status_out = res.status;
	ret = hl_kube_status_error(&res, method, path, err);
	if (ret < 0)
		goto out;
	if (out) {
		if (res.body.len == 0) {
			v = json_object();
		} else if (hl_json_parse(&v, res.body.data, res.body.len, NULL) < 0) {
			/* a 2xx that is not JSON is not the API server's (a
			 * proxy's login page, a portal): asked again later like
			 * a 5xx (a named create is idempotent), not taken for a
			 * refusal */
			ret = hl_err_set(err, HL_EUPSTREAM,
			                 "kubernetes %s '%s': status %ld but the answer is not "
			                 "JSON (%.60s): is a proxy in the way?",
			                 method, path, res.status,
			                 res.content_type[0] ? res.content_type
			                                     : "no content type");
			goto out;
		}
		*out = v;
	}
out:
	free(text);
	hl_buf_release(&url);
	hl_kube_auth_release(&auth);
	hl_fetch_res_release(&res);
	return ret;
}

int
hl_kube_call(const struct hl_kube *k, json_t **out, long *status_out, const char *method,
             const char *path, const json_t *body, struct hl_err *err)
{
	/* the engine retries idempotent methods only */
	return hl_kube_call_ex(k, out, status_out, method, path, body, -1, err);
}

bool
hl_kube_name_valid(const char *s)
{
	return s && *s && strcmp(s, ".") != 0 && strcmp(s, "..") != 0 && !strchr(s, '/') &&
	       !strchr(s, '%');
}

/* Appends a namespace or object name as one path segment, refusing what
 * the API itself refuses (apimachinery path.IsValidPathSegmentName). */
static int
kube_append_name(struct hl_buf *p, const char *what, const char *s, struct hl_err *err)
{
	if (!hl_kube_name_valid(s))
		return hl_err_set(err, HL_EINVAL, "kubernetes %s '%.200s' is not a valid name",
		                  what, s ? s : "");
	if (hl_url_append_segment(p, s) < 0)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	return 0;
}

int
hl_kube_path(struct hl_buf *p, const char *prefix, const char *ns, const char *kind,
             const char *name, const char *sub, struct hl_err *err)
{
	int ret;

	hl_buf_append_str(p, prefix);
	hl_buf_append_str(p, "/namespaces/");
	if ((ret = kube_append_name(p, "namespace", ns, err)) < 0)
		return ret;
	hl_buf_append_char(p, '/');
	hl_buf_append_str(p, kind);
	if (name) {
		hl_buf_append_char(p, '/');
		if ((ret = kube_append_name(p, kind, name, err)) < 0)
			return ret;
	}
	if (sub) {
		hl_buf_append_char(p, '/');
		hl_buf_append_str(p, sub);
	}
	return hl_buf_error(p) ? hl_err_set(err, HL_ENOMEM, "out of memory") : 0;
}

int
hl_kube_query(struct hl_buf *p, const char *key, const char *value, struct hl_err *err)
{
	hl_buf_append_char(p, strchr(p->data, '?') ? '&' : '?');
	hl_buf_append_str(p, key);
	hl_buf_append_char(p, '=');
	hl_url_append_query_value(p, value);
	return hl_buf_error(p) ? hl_err_set(err, HL_ENOMEM, "out of memory") : 0;
}

/* GET of a path built by the caller (ret is the build's result); releases
 * the path. */
static int
kube_get(const struct hl_kube *k, json_t **out, struct hl_buf *path, int ret, struct hl_err *err)
{
	if (ret == 0)
		ret = hl_kube_call(k, out, NULL, "GET", path->data, NULL, err);
	hl_buf_release(path);
	return ret;
}

const char *
hl_kube_ns(const struct hl_kube *k, const char *ns)
{
	return ns && *ns ? ns : k->namespace;
}

int
hl_kube_get_pod(const struct hl_kube *k, json_t **out, const char *ns, const char *name,
                struct hl_err *err)
{
	struct hl_buf p = HL_BUF_INIT(0);
	int ret = hl_kube_path(&p, "/api/v1", hl_kube_ns(k, ns), "pods", name, NULL, err);

	return kube_get(k, out, &p, ret, err);
}

int
hl_kube_list_pods(const struct hl_kube *k, json_t **out, const char *ns, const char *label_selector,
                  struct hl_err *err)
{
	struct hl_buf p = HL_BUF_INIT(0);
	int ret = hl_kube_path(&p, "/api/v1", hl_kube_ns(k, ns), "pods", NULL, NULL, err);

	if (ret == 0 && label_selector && *label_selector)
		ret = hl_kube_query(&p, "labelSelector", label_selector, err);
	return kube_get(k, out, &p, ret, err);
}

int
hl_kube_pod_log_req(const struct hl_kube *k, struct hl_fetch_req *req, struct hl_buf *url,
                    struct hl_buf *auth, const char *ns, const char *pod, const char *container,
                    long tail_lines, bool previous, size_t max, struct hl_err *err)
{
	struct hl_buf p = HL_BUF_INIT(0);
	char n[32];
	int ret;

	ret = hl_kube_path(&p, "/api/v1", hl_kube_ns(k, ns), "pods", pod, "log", err);
	if (ret == 0 && container && *container)
		ret = hl_kube_query(&p, "container", container, err);
	if (ret == 0 && tail_lines > 0) {
		snprintf(n, sizeof(n), "%ld", tail_lines);
		ret = hl_kube_query(&p, "tailLines", n, err);
	}
	if (ret == 0 && previous)
		ret = hl_kube_query(&p, "previous", "true", err);
	if (ret == 0)
		ret = hl_kube_req_init(k, req, url, auth, "GET", p.data, err);
	hl_buf_release(&p);
	if (ret < 0)
		return ret;
	req->headers[0] = "Accept: */*";
	req->max_body = max ? max : 64u * 1024 * 1024;
	req->keep_tail = true;
	return 0;
}

bool
hl_kube_err_forbidden(const struct hl_err *err)
{
	return err && err->code == HL_EAUTH && strstr(err->msg, ": status 403: ") != NULL;
}

int
hl_kube_check(const struct hl_fetch_res *res, const char *what, struct hl_err *err)
{
	return hl_kube_status_error(res, "GET", what, err);
}

int
hl_kube_pod_log(const struct hl_kube *k, struct hl_buf *out, bool *truncated_out, const char *ns,
                const char *pod, const char *container, long tail_lines, bool previous,
                struct hl_err *err)
{
	struct hl_buf url = HL_BUF_INIT(0), auth = HL_BUF_INIT(0);
	struct hl_fetch_req req;
	struct hl_fetch_res res;
	int ret;

	hl_fetch_res_init(&res);
	ret = hl_kube_pod_log_req(k, &req, &url, &auth, ns, pod, container, tail_lines, previous,
	                          out->max, err);
	if (ret < 0)
		goto out;
	hl_fetch_run(&req, &res, 1, 0, err);
	ret = hl_kube_status_error(&res, "GET",
	                           url.data + strlen(k->url_base ? k->url_base : k->server), err);
	if (ret < 0)
		goto out;
	if (truncated_out)
		*truncated_out = res.truncated;
	if (hl_buf_append(out, res.body.data, res.body.len) < 0)
		ret = hl_err_set(err, HL_ETOOBIG, "pod log for '%s' over the cap", pod);
out:
	hl_buf_release(&url);
	hl_kube_auth_release(&auth);
	hl_fetch_res_release(&res);
	return ret;
}

int
hl_kube_list_events(const struct hl_kube *k, json_t **out, const char *ns, const char *name,
                    struct hl_err *err)
{
	struct hl_buf p = HL_BUF_INIT(0), sel = HL_BUF_INIT(0);
	int ret;

	if (!hl_kube_name_valid(name))
		return hl_err_set(err, HL_EINVAL, "kubernetes object '%.200s' is not a valid name",
		                  name ? name : "");
	ret = hl_kube_path(&p, "/api/v1", hl_kube_ns(k, ns), "events", NULL, NULL, err);
	hl_buf_appendf(&sel, "involvedObject.name=%s", name);
	if (ret == 0)
		ret = hl_buf_error(&sel) ? hl_err_set(err, HL_ENOMEM, "out of memory")
		                         : hl_kube_query(&p, "fieldSelector", sel.data, err);
	hl_buf_release(&sel);
	return kube_get(k, out, &p, ret, err);
}

int
hl_kube_get_argocd_app(const struct hl_kube *k, json_t **out, const char *ns, const char *name,
                       struct hl_err *err)
{
	struct hl_buf p = HL_BUF_INIT(0);
	int ret = hl_kube_path(&p, "/apis/argoproj.io/v1alpha1", ns && *ns ? ns : "argocd",
	                       "applications", name, NULL, err);

	return kube_get(k, out, &p, ret, err);
}
