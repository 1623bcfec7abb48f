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

/* The fixed route set, so label cardinality is bounded. */
enum hl_route {
	HL_ROUTE_WEBHOOK = 0,
	HL_ROUTE_CI_FAILURE,
	HL_ROUTE_SECURITY_ALERT,
	HL_ROUTE_HEALTH,
	HL_ROUTE_READY,
	HL_ROUTE_STATUS,
	HL_ROUTE_METRICS,
	HL_ROUTE_REMEDIATION,
	HL_ROUTE_OTHER,
	HL_ROUTE_MAX
};

struct hl_metrics;

struct hl_metrics *hl_metrics_new(void);
void hl_metrics_free(struct hl_metrics *m);

/* Counts one finished request and its duration in microseconds. */
void hl_metrics_request(struct hl_metrics *m, enum hl_route route, unsigned code,
                        int64_t duration_us);
/* Counts one intake answer; event_index < n_events given at render time
 * (the event kind), status 0..2 (accepted, skipped, duplicate). */
void hl_metrics_intake(struct hl_metrics *m, int event_index, int status);

/* Appends the counters in Prometheus text format 0.0.4. event_name(i)
 * names event kind i for i < n_events. */
void hl_metrics_render(struct hl_metrics *m, struct hl_buf *out, const char *(*event_name)(int i),
                       int n_events);

const char *hl_route_name(enum hl_route r);

/* Appends s as a Prometheus label value (escapes \, " and newline). */
void hl_metrics_label(struct hl_buf *out, const char *s);

#endif
