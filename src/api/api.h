/*
 * api.h - the JSON documents of healer's API (contract sections 4 and 9),
 * built from the store's typed records. One place shapes them, so
 * `GET /api/remediations/{id}`, `GET /api/status` and `healer status`
 * agree. Times are RFC 3339 UTC strings (null when absent).
 *
 * Every function returns a new reference (NULL on allocation failure).
 */
#ifndef HL_API_API_H
#define HL_API_API_H

#include "store/store.h"

#include <jansson.h>

/*
 * A remediation: task_id, state, reason, repository, run_id, job, branch,
 * agent, failure_type, coderun_name, dedup_key, attempt (the current
 * attempt's number), decision (the stored decision object, or null),
 * created_at, updated_at, finished_at, queued_at (while queued), and attempts[]: number, kind,
 * agent, coderun, phase, outcome (null while running), reason, status_message, pr_url, started_at,
 * finished_at; notifications[]: channel, kind, ref, state (pending, delivered, failed), attempts,
 * last_error, created_at, delivered_at; then kind, workflow, head_sha, target_branch, pr_number and
 * event (what the dashboard's timeline shows of the stored event: kind, event_name, action,
 * html_url, sender, workflow_name, job_name, failed_step, branch, head_sha, pr_number, pr_title,
 * ... when present; null when none was stored).
 */
json_t *hl_api_task_json(const struct hl_task_record *t);

/* One task of a list (GET /api/remediations): task_id, state, reason,
 * kind, repository, branch, workflow, job, agent, failure_type, attempts,
 * pr_number, created_at, updated_at, finished_at, time_to_fix_seconds
 * (succeeded tasks, else null). */
json_t *hl_api_task_summary_json(const struct hl_task_summary *t);

/* One delivery of the status page: delivery_id, event, action, source,
 * state, answer, reason, task_id, received_at, claims. */
json_t *hl_api_delivery_json(const struct hl_delivery_summary *d);

#endif
