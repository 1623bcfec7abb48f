/*
 * metrics.h - in-process counters for the Prometheus exposition (/metrics):
 * HTTP requests by route and status code, a request latency histogram per
 * route, and intake answers by event and status. Lock-free (C11 atomics);
 * every function is thread-safe.
 */
#ifndef HL_HTTP_METRICS_H
#define HL_HTTP_METRICS_H

#include "base/buf.h"

#include <stdint.h>

/* Routes are counted by their index in the server's route table (a fixed
 * set, so label cardinality is bounded); index n_routes - 1 is "other". */
#define HL_METRICS_ROUTES_MAX 32

struct hl_metrics;

struct hl_metrics *hl_metrics_new(void);
void hl_metrics_free(struct hl_metrics *m);

/* Counts one finished request of route (an index below
 * HL_METRICS_ROUTES_MAX) and its duration in microseconds. */
void hl_metrics_request(struct hl_metrics *m, int route, unsigned code, int64_t duration_us);
/* Counts one intake answer of event, status 0..2 (accepted, skipped,
 * duplicate). event is the name the delivery is stored under
 * (hl_event_stored_name: a GitHub event name or "other"), or an alert
 * source; a string that lives as long as m (the labels are bounded by
 * those names). NULL or "" counts as "other". */
void hl_metrics_intake(struct hl_metrics *m, const char *event, int status);

/* Counts n alerts Alertmanager cut from a notification (its
 * truncatedAlerts). */
void hl_metrics_alerts_truncated(struct hl_metrics *m, int64_t n);

/* Appends the counters in Prometheus text format 0.0.4. route_name(i)
 * names route i for i < n_routes. */
void hl_metrics_render(struct hl_metrics *m, struct hl_buf *out, const char *(*route_name)(int i),
                       int n_routes);

/* Appends s as a Prometheus label value (escapes \, " and newline). */
void hl_metrics_label(struct hl_buf *out, const char *s);

#endif
