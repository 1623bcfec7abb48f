/*
 * metrics.c - lock-free request/intake counters and their Prometheus text
 * rendering. Invariant: histogram buckets are stored per bucket and made
 * cumulative only when rendered, so an observation is two relaxed adds.
 */
#include "metrics.h"

#include "base/prom.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Event labels: GitHub's webhook event names (about 80), "other" and the
 * alert sources. */
#define METRICS_EVENTS_MAX 128

/* Every code healer answers (a dashboard's poll is mostly 304s, its login
 * 303s), and 499 for a client that went away; anything else is "other". */
static const unsigned metrics_codes[] = { 200, 202, 303, 304, 400, 401, 403, 404,
	                                  405, 413, 415, 499, 500, 501, 503, 0 /* other */ };
#define N_CODES (sizeof(metrics_codes) / sizeof(metrics_codes[0]))

static const double metrics_bounds[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	                                 0.1,    0.25,  0.5,    1,     2.5,  5,     10 };
#define N_BOUNDS (sizeof(metrics_bounds) / sizeof(metrics_bounds[0]))

struct hl_metrics {
	atomic_uint_fast64_t requests[HL_METRICS_ROUTES_MAX][N_CODES];
	atomic_uint_fast64_t buckets[HL_METRICS_ROUTES_MAX][N_BOUNDS + 1]; /* last: +Inf only */
	atomic_uint_fast64_t sum_us[HL_METRICS_ROUTES_MAX];
	/* an event label's slot is taken once, by its first answer */
	_Atomic(const char *) intake_event[METRICS_EVENTS_MAX];
	atomic_uint_fast64_t intake[METRICS_EVENTS_MAX][3];
	atomic_uint_fast64_t alerts_truncated;
};

struct hl_metrics *
hl_metrics_new(void)
{
	return calloc(1, sizeof(struct hl_metrics));
}

void
hl_metrics_free(struct hl_metrics *m)
{
	free(m);
}

void
hl_metrics_request(struct hl_metrics *m, int route, unsigned code, int64_t duration_us)
{
	size_t c, b;
	double secs = (double)duration_us / 1e6;

	if (route < 0 || route >= HL_METRICS_ROUTES_MAX)
		return;
	for (c = 0; c < N_CODES - 1 && metrics_codes[c] != code; c++)
		;
	for (b = 0; b < N_BOUNDS && secs > metrics_bounds[b]; b++)
		;
	atomic_fetch_add_explicit(&m->requests[route][c], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->buckets[route][b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->sum_us[route],
	                          (uint_fast64_t)(duration_us > 0 ? duration_us : 0),
	                          memory_order_relaxed);
}

/* The slot of an event label: the one holding it, else the first free one,
 * taken (compare-and-swap: two threads taking one slot agree on its
 * label); -1 when all are taken by others. */
static int
metrics_event_slot(struct hl_metrics *m, const char *event)
{
	for (int i = 0; i < METRICS_EVENTS_MAX; i++) {
		const char *cur = atomic_load_explicit(&m->intake_event[i], memory_order_acquire);

		if (!cur && atomic_compare_exchange_strong_explicit(&m->intake_event[i], &cur,
		                                                    event, memory_order_acq_rel,
		                                                    memory_order_acquire))
			return i;
		/* cur is the label the slot holds (also after a lost race) */
		if (cur == event || strcmp(cur, event) == 0)
			return i;
	}
	return -1;
}

void
hl_metrics_intake(struct hl_metrics *m, const char *event, int status)
{
	int i;

	if (status < 0 || status > 2)
		return;
	if ((i = metrics_event_slot(m, event && *event ? event : "other")) < 0)
		return;
	atomic_fetch_add_explicit(&m->intake[i][status], 1, memory_order_relaxed);
}

void
hl_metrics_alerts_truncated(struct hl_metrics *m, int64_t n)
{
	if (n > 0)
		atomic_fetch_add_explicit(&m->alerts_truncated, (uint_fast64_t)n,
		                          memory_order_relaxed);
}

void
hl_metrics_label(struct hl_buf *out, const char *s)
{
	hl_prom_label(out, s);
}

void
hl_metrics_render(struct hl_metrics *m, struct hl_buf *out, const char *(*route_name)(int i),
                  int n_routes)
{
	static const char *const status_names[] = { "accepted", "skipped", "duplicate" };
	uint_fast64_t v, cum;
	size_t r, c, b;
	int e, s;

	hl_buf_append_str(out,
	                  "# HELP healer_http_requests_total HTTP requests by route and status "
	                  "code.\n# TYPE healer_http_requests_total counter\n");
	for (r = 0; r < (size_t)n_routes && r < HL_METRICS_ROUTES_MAX; r++)
		for (c = 0; c < N_CODES; c++) {
			v = atomic_load_explicit(&m->requests[r][c], memory_order_relaxed);
			if (!v)
				continue;
			if (metrics_codes[c])
				hl_buf_appendf(
				        out,
				        "healer_http_requests_total{route=\"%s\",code=\"%u\"} "
				        "%llu\n",
				        route_name((int)r), metrics_codes[c],
				        (unsigned long long)v);
			else
				hl_buf_appendf(
				        out,
				        "healer_http_requests_total{route=\"%s\",code=\"other\"}"
				        " %llu\n",
				        route_name((int)r), (unsigned long long)v);
		}

	hl_buf_append_str(out, "# HELP healer_http_request_duration_seconds HTTP request latency "
	                       "from the first byte to the response, by route.\n"
	                       "# TYPE healer_http_request_duration_seconds histogram\n");
	for (r = 0; r < (size_t)n_routes && r < HL_METRICS_ROUTES_MAX; r++) {
		const char *rn = route_name((int)r);

		cum = 0;
		for (b = 0; b <= N_BOUNDS; b++) {
			cum += atomic_load_explicit(&m->buckets[r][b], memory_order_relaxed);
			if (b < N_BOUNDS)
				hl_buf_appendf(
				        out,
				        "healer_http_request_duration_seconds_bucket{route=\"%s\","
				        "le=\"%g\"} %llu\n",
				        rn, metrics_bounds[b], (unsigned long long)cum);
			else
				hl_buf_appendf(
				        out,
				        "healer_http_request_duration_seconds_bucket{route=\"%s\","
				        "le=\"+Inf\"} %llu\n",
				        rn, (unsigned long long)cum);
		}
		hl_buf_appendf(
		        out, "healer_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n", rn,
		        (double)atomic_load_explicit(&m->sum_us[r], memory_order_relaxed) / 1e6);
		hl_buf_appendf(out,
		               "healer_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
		               rn, (unsigned long long)cum);
	}

	hl_buf_append_str(out, "# HELP healer_intake_total Deliveries answered at intake, by event "
	                       "and answer (accepted, skipped, duplicate).\n"
	                       "# TYPE healer_intake_total counter\n");
	for (e = 0; e < METRICS_EVENTS_MAX; e++) {
		const char *name = atomic_load_explicit(&m->intake_event[e], memory_order_acquire);

		if (!name)
			break; /* slots are taken in order */
		for (s = 0; s < 3; s++) {
			v = atomic_load_explicit(&m->intake[e][s], memory_order_relaxed);
			if (!v)
				continue;
			hl_buf_append_str(out, "healer_intake_total{event=\"");
			hl_metrics_label(out, name);
			hl_buf_appendf(out, "\",status=\"%s\"} %llu\n", status_names[s],
			               (unsigned long long)v);
		}
	}
	hl_buf_appendf(out,
	               "# HELP healer_alerts_truncated_total Alerts Alertmanager cut from its "
	               "notifications (the receiver's max_alerts): never seen by healer.\n"
	               "# TYPE healer_alerts_truncated_total counter\n"
	               "healer_alerts_truncated_total %llu\n",
	               (unsigned long long)atomic_load_explicit(&m->alerts_truncated,
	                                                        memory_order_relaxed));
}
