/*
 * sources.h - thin clients for the optional context sources: ArgoCD's REST
 * API (ARGOCD_SERVER + ARGOCD_TOKEN), Loki (LOKI_URL) and Prometheus
 * (PROMETHEUS_URL). An unset source is the caller's business to skip.
 *
 * Each source has a URL builder (so callers can batch several sources in one
 * hl_fetch_run and none blocks the others) and a parser for the answer, plus
 * a one-shot convenience call. All functions are thread-safe; results are
 * new jansson values the caller decrefs.
 */
#ifndef HL_NET_SOURCES_H
#define HL_NET_SOURCES_H

#include "base/buf.h"
#include "base/err.h"
#include "fetch.h"

#include <jansson.h>
#include <stdint.h>

/* Appends base + "/api/v1/applications/{name}" to url, name as one encoded
 * path segment; -HL_EINVAL when server is unset or name is not a valid
 * Kubernetes name (hl_kube_name_valid). */
int hl_argocd_app_url(struct hl_buf *url, const char *server, const char *name);
/* GET the Application with "Authorization: Bearer token" (token may be NULL);
 * *out is the Application object. */
int hl_argocd_app(json_t **out, const char *server, const char *token, const char *name,
                  int64_t timeout_ms, struct hl_err *err);
/* Summarises an Application (from ArgoCD or the cluster): health status and
 * sync status as {"name","health","sync","message"}; unknown fields read as
 * "Unknown". */
json_t *hl_argocd_summary(const json_t *app);

/* Appends base + "/loki/api/v1/query_range?query=..&start=..&end=..&limit=.."
 * (start/end in nanoseconds since the epoch; the query percent-encoded as a
 * query value) to url. */
int hl_loki_query_range_url(struct hl_buf *url, const char *base, const char *query,
                            int64_t start_ns, int64_t end_ns, int limit);
/* Parses a Loki answer: status must be "success"; *out is data.result (an
 * array of streams {stream, values[[ts, line]...]}). */
int hl_loki_parse(json_t **out, const struct hl_fetch_res *res, struct hl_err *err);
int hl_loki_query_range(json_t **out, const char *base, const char *query, int64_t start_ns,
                        int64_t end_ns, int limit, int64_t timeout_ms, struct hl_err *err);

/* Appends base + "/api/v1/query?query=.." (percent-encoded) to url. */
int hl_prom_query_url(struct hl_buf *url, const char *base, const char *query);
/* Parses a Prometheus answer: status "success"; *out is data.result. An
 * error answer gives HL_EUPSTREAM with Prometheus' errorType/error. */
int hl_prom_parse(json_t **out, const struct hl_fetch_res *res, struct hl_err *err);
int hl_prom_query(json_t **out, const char *base, const char *query, int64_t timeout_ms,
                  struct hl_err *err);

#endif
