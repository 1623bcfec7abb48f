/*
 * sources.c - ArgoCD, Loki and Prometheus: URL builders, answer parsers and
 * one-shot calls over the fetch engine. Kept deliberately thin: healer only
 * needs a status summary and a few query results as prompt context.
 */
#include "sources.h"

#include "base/str.h"
#include "base/url.h"
#include "kube.h"

#include "json/json.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
sources_base(struct hl_buf *url, const char *base)
{
	size_t n;

	if (!base || !*base)
		return -HL_EINVAL;
	n = strlen(base);
	while (n > 0 && base[n - 1] == '/')
		n--;
	if (!hl_str_starts_with(base, "http://") && !hl_str_starts_with(base, "https://"))
		hl_buf_append_str(url, "https://"); /* ARGOCD_SERVER is often host:port */
	return hl_buf_append(url, base, n);
}

int
hl_argocd_app_url(struct hl_buf *url, const char *server, const char *name)
{
	/* an Application is a Kubernetes object: its name follows their rule */
	if (!hl_kube_name_valid(name) || sources_base(url, server) < 0)
		return -HL_EINVAL;
	hl_buf_append_str(url, "/api/v1/applications/");
	hl_url_append_segment(url, name);
	return hl_buf_error(url);
}

static int
sources_get_json(json_t **out, const char *url, const char *token, int64_t timeout_ms,
                 const char *what, struct hl_fetch_res *res, struct hl_err *err)
{
	struct hl_buf auth = HL_BUF_INIT(0);
	struct hl_fetch_req req;
	int ret;

	memset(&req, 0, sizeof(req));
	req.url = url;
	req.timeout_ms = timeout_ms > 0 ? timeout_ms : 10000;
	req.max_retries = -1;
	req.max_body = 16u * 1024 * 1024;
	req.headers[0] = "Accept: application/json";
	if (token && *token) {
		hl_buf_appendf(&auth, "Bearer %s", token);
		req.auth = auth.data;
	}
	hl_fetch_run(&req, res, 1, 0, err);
	if (auth.len)
		explicit_bzero(auth.data, auth.len);
	hl_buf_release(&auth);
	ret = hl_fetch_check(res, what, err);
	if (ret == 0 && out)
		ret = hl_json_parse(out, res->body.data, res->body.len, err);
	return ret;
}

int
hl_argocd_app(json_t **out, const char *server, const char *token, const char *name,
              int64_t timeout_ms, struct hl_err *err)
{
	struct hl_buf url = HL_BUF_INIT(0);
	struct hl_fetch_res res;
	int ret;

	hl_fetch_res_init(&res);
	if (hl_argocd_app_url(&url, server, name) < 0) {
		hl_buf_release(&url);
		if (!hl_kube_name_valid(name))
			return hl_err_set(err, HL_EINVAL,
			                  "argocd application '%.200s' is not a valid name",
			                  name ? name : "");
		return hl_err_set(err, HL_EINVAL, "ARGOCD_SERVER is not set or invalid");
	}
	ret = sources_get_json(out, url.data, token, timeout_ms, "argocd application", &res, err);
	hl_buf_release(&url);
	hl_fetch_res_release(&res);
	return ret;
}

json_t *
hl_argocd_summary(const json_t *app)
{
	return json_pack("{s:s, s:s, s:s, s:s}", "name", hl_json_str_or(app, "metadata.name", ""),
	                 "health", hl_json_str_or(app, "status.health.status", "Unknown"), "sync",
	                 hl_json_str_or(app, "status.sync.status", "Unknown"), "message",
	                 hl_json_str_or(app, "status.operationState.message",
	                                hl_json_str_or(app, "status.health.message", "")));
}

int
hl_loki_query_range_url(struct hl_buf *url, const char *base, const char *query, int64_t start_ns,
                        int64_t end_ns, int limit)
{
	if (sources_base(url, base) < 0)
		return -HL_EINVAL;
	hl_buf_append_str(url, "/loki/api/v1/query_range?query=");
	hl_url_append_query_value(url, query);
	hl_buf_appendf(url, "&start=%lld&end=%lld&limit=%d&direction=backward", (long long)start_ns,
	               (long long)end_ns, limit > 0 ? limit : 100);
	return hl_buf_error(url);
}

static int
sources_parse(json_t **out, const struct hl_fetch_res *res, const char *what, struct hl_err *err)
{
	json_t *v = NULL, *result;
	int ret;

	ret = hl_fetch_check(res, what, err);
	if (ret < 0) {
		/* Prometheus and Loki explain 4xx/5xx in JSON */
		if (res->body.len && hl_json_parse(&v, res->body.data, res->body.len, NULL) == 0 &&
		    hl_json_str(v, "error"))
			ret = hl_err_set(err, -ret, "%s: %s: %s", what,
			                 hl_json_str_or(v, "errorType", "error"),
			                 hl_json_str(v, "error"));
		json_decref(v);
		return ret;
	}
	ret = hl_json_parse(&v, res->body.data, res->body.len, err);
	if (ret < 0)
		return hl_err_wrap(err, "%s", what);
	if (strcmp(hl_json_str_or(v, "status", ""), "success") != 0) {
		ret = hl_err_set(err, HL_EUPSTREAM, "%s: status '%s': %s", what,
		                 hl_json_str_or(v, "status", ""), hl_json_str_or(v, "error", ""));
		json_decref(v);
		return ret;
	}
	result = hl_json_path(v, "data.result");
	if (!json_is_array(result) && !json_is_object(result)) {
		json_decref(v);
		return hl_err_set(err, HL_EPARSE, "%s: no data.result", what);
	}
	*out = json_incref(result);
	json_decref(v);
	return 0;
}

int
hl_loki_parse(json_t **out, const struct hl_fetch_res *res, struct hl_err *err)
{
	return sources_parse(out, res, "loki query", err);
}

int
hl_loki_query_range(json_t **out, const char *base, const char *query, int64_t start_ns,
                    int64_t end_ns, int limit, int64_t timeout_ms, struct hl_err *err)
{
	struct hl_buf url = HL_BUF_INIT(0);
	struct hl_fetch_res res;
	int ret;

	hl_fetch_res_init(&res);
	if (hl_loki_query_range_url(&url, base, query, start_ns, end_ns, limit) < 0) {
		hl_buf_release(&url);
		return hl_err_set(err, HL_EINVAL, "LOKI_URL is not set or invalid");
	}
	sources_get_json(NULL, url.data, NULL, timeout_ms, "loki query", &res, NULL);
	ret = hl_loki_parse(out, &res, err);
	hl_buf_release(&url);
	hl_fetch_res_release(&res);
	return ret;
}

int
hl_prom_query_url(struct hl_buf *url, const char *base, const char *query)
{
	if (sources_base(url, base) < 0)
		return -HL_EINVAL;
	hl_buf_append_str(url, "/api/v1/query?query=");
	hl_url_append_query_value(url, query);
	return hl_buf_error(url);
}

int
hl_prom_parse(json_t **out, const struct hl_fetch_res *res, struct hl_err *err)
{
	return sources_parse(out, res, "prometheus query", err);
}

int
hl_prom_query(json_t **out, const char *base, const char *query, int64_t timeout_ms,
              struct hl_err *err)
{
	struct hl_buf url = HL_BUF_INIT(0);
	struct hl_fetch_res res;
	int ret;

	hl_fetch_res_init(&res);
	if (hl_prom_query_url(&url, base, query) < 0) {
		hl_buf_release(&url);
		return hl_err_set(err, HL_EINVAL, "PROMETHEUS_URL is not set or invalid");
	}
	sources_get_json(NULL, url.data, NULL, timeout_ms, "prometheus query", &res, NULL);
	ret = hl_prom_parse(out, &res, err);
	hl_buf_release(&url);
	hl_fetch_res_release(&res);
	return ret;
}
