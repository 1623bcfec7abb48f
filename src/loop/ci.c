/*
 * ci.c - CI results that belong to a task (contract section 9): a completed
 * run of the workflow + job a task is remediating, on the task's branch or
 * the branch its agents push to, is that task's "current CI status". It is
 * recorded on the task (once per delivery) and the task is judged at once.
 * A failure that belongs to a task never starts a new one.
 */
#include "base/clock.h"
#include "base/log.h"
#include "loop_impl.h"

#include <string.h>

/* Events that report a finished job with its workflow and job names. */
static bool
ci_is_job_result(const struct hl_event *ev)
{
	if (!ev->repository || !ev->branch || !ev->workflow_name || !ev->job_name ||
	    !ev->conclusion)
		return false;
	if (ev->status && strcmp(ev->status, "completed") != 0)
		return false;
	return ev->kind == HL_EVENT_WORKFLOW_JOB || ev->kind == HL_EVENT_CHECK_RUN;
}

int
hl_loop_ci_event(struct hl_loop *l, char *task_id, const struct hl_event *ev,
                 const char *delivery_id, const char *own_task, struct hl_err *err)
{
	int rc;

	if (!ci_is_job_result(ev))
		return 0;
	/* skipped, cancelled, neutral say nothing about the fix */
	if (strcmp(ev->conclusion, "success") != 0 &&
	    !hl_event_conclusion_is_failure(ev->conclusion))
		return 0;
	rc = hl_store_task_active_for(l->store, task_id, ev->repository, ev->branch,
	                              ev->workflow_name, ev->job_name, NULL, err);
	if (rc == -HL_ENOTFOUND)
		return 0;
	if (rc < 0)
		return rc;
	if (own_task && strcmp(task_id, own_task) == 0) {
		/* the failure that started this task, processed again: a
		 * restart cut its remediation short, which resumes (a queued
		 * task keeps waiting its turn) */
		struct hl_task_record *t = NULL;
		bool queued;

		if ((rc = hl_store_task_get(l->store, &t, own_task, err)) < 0)
			return rc;
		queued = t->state == HL_TASK_QUEUED;
		hl_task_record_free(t);
		if (!queued)
			return 0;
	}
	rc = hl_store_ci_result_add(l->store,
	                            &(struct hl_ci_result){ .task_id = task_id,
	                                                    .delivery_id = delivery_id,
	                                                    .head_sha = ev->head_sha,
	                                                    .branch = ev->branch,
	                                                    .conclusion = ev->conclusion,
	                                                    .run_id = ev->run_id,
	                                                    .run_attempt = ev->run_attempt,
	                                                    .job_id = ev->job_id,
	                                                    .url = ev->html_url,
	                                                    .completed_ms = hl_time_wall_ms(),
	                                                    .source = "webhook" },
	                            err);
	if (rc < 0)
		return rc;
	hl_log_kv(HL_LOG_INFO, "ci result recorded", "task_id", task_id, "job", ev->job_name,
	          "conclusion", ev->conclusion, NULL);
	if ((rc = hl_store_task_schedule(l->store, task_id, hl_time_wall_ms(), err)) < 0)
		return rc;
	(void)hl_store_publish(l->store, HL_CHANNEL_TASK, task_id, NULL);
	return 1;
}
