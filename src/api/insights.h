/*
 * insights.h - how well healer does against the design's targets
 * (contract section 10), computed from the ledger: one document for
 * `healer insights --json`, `GET /api/insights` and the dashboard, a
 * terminal table, and Prometheus gauges.
 *
 * Definitions (tasks remediated, i.e. not skipped, created in the window):
 *   tasks                 how many
 *   routing_correct       succeeded tasks fixed by an agent whose first agent
 *                         was that agent / succeeded tasks fixed by an agent
 *   duplicates_prevented  duplicates dropped (deliveries answered duplicate,
 *                         remediations found already running) / (those +
 *                         failures remediated by more than one task)
 *   time_to_fix_p50/p90   first failure (task creation) to verified success
 *                         of succeeded tasks, seconds, nearest rank
 *   attempt1_success      succeeded on attempt 1 / finished (succeeded or
 *                         escalated)
 *   within_max_success    succeeded within max_attempts / finished
 *   escalation_rate       escalated / finished
 * Rates are fractions 0-1, null when their denominator is 0. by_agent
 * groups tasks by their first agent, by_failure_type by their type (their
 * duplicates_prevented is null: deliveries have no agent).
 *
 * Time is linear in the ledger (rows are folded as they stream; routes are
 * found through a hash index and grouped by sorting), memory in the number
 * of tasks (their times to fix) and routes.
 */
#ifndef HL_API_INSIGHTS_H
#define HL_API_INSIGHTS_H

#include "base/buf.h"
#include "store/store.h"

#include <jansson.h>

struct hl_insights_opts {
	int64_t since_ms;       /* tasks created at or after (0: all time) */
	const char *since;      /* as given ("7d"), for the document; may be NULL */
	const char *repository; /* NULL: all */
	int max_attempts;       /* HEALER_MAX_ATTEMPTS */
	bool learned_routing;   /* HEALER_LEARNED_ROUTING */
	int64_t now_ms;         /* 0: now */
};

/*
 * The insights document: the keys above, targets (the same keys),
 * meets ({key: true|false|null}), by_agent, by_failure_type (objects of the
 * same shape), routing ([{agent, failure_type, attempts, successes, rate,
 * switched_away}] over finished agent attempts), learned ({enabled,
 * switches: [{repository, failure_type, from, to, evidence}]}, all time,
 * by repository and type),
 * series ([{date, tasks, succeeded, escalated, time_to_fix_p50_seconds}]
 * per UTC day of creation), and since, repository, max_attempts,
 * deliveries, duplicates, generated_at. Errors are the store's.
 */
int hl_api_insights(json_t **out, struct hl_store *s, const struct hl_insights_opts *o,
                    struct hl_err *err);

/* The document as a readable table (a terminal's `healer insights`). */
void hl_api_insights_text(struct hl_buf *b, const json_t *doc);

/* Prometheus gauges of n documents, one per window (windows[i] names
 * docs[i]'s): healer_insights_<key>{window[, agent | failure_type]}, each
 * family's samples together after its HELP and TYPE, and
 * healer_insights_target{metric} (from docs[0]). */
void hl_api_insights_metrics(struct hl_buf *b, const json_t *const *docs,
                             const char *const *windows, size_t n);

/* A duration "90s", "30m", "24h", "7d", "2w" (a bare number: seconds) in
 * ms; -HL_EINVAL naming the text when malformed, zero or above 10 years. */
int hl_api_parse_duration(int64_t *ms, const char *text, struct hl_err *err);

#endif
