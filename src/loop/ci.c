/*
 * ci.c - CI results that belong to a task (contract section 9): a completed
 * run of the workflow + job a task is remediating, on the task's branch or
 * the branch its agents push to, is that task's "current CI status". It is
 * recorded on the task (once per delivery) and the task is judged at once.
 * A check_run event names no workflow: an Actions check run's is its run's;
 * another CI's check run (no Actions run) is the result of the task fixing
 * the check of that name on the branch. A task fixing a whole workflow run
 * (a workflow_run failure, no job named) takes the workflow's completed
 * runs on the branch, and its jobs' failures. A failure that belongs to a
 * task never starts a new one. A run of a fork's pull request is named by
 * the fork's branch: it is never the result of this repository's branch of
 * that name.
 */
#include "base/clock.h"
#include "base/log.h"
#include "base/str.h"
#include "loop_impl.h"

#include "json/json.h"
#include <string.h>
#include <strings.h>

/* Events that report a finished job with its workflow and job names. */
static bool
ci_is_job_result(const struct hl_event *ev, const char *workflow)
{
	if (!ev->repository || !ev->branch || !workflow || !ev->job_name || !ev->conclusion)
		return false;
	if (ev->status && strcmp(ev->status, "completed") != 0)
		return false;
	return ev->kind == HL_EVENT_WORKFLOW_JOB || ev->kind == HL_EVENT_CHECK_RUN;
}

/* A completed workflow run (workflow_run) with its workflow's name. */
static bool
ci_is_run_result(const struct hl_event *ev)
{
	return ev->kind == HL_EVENT_WORKFLOW_RUN && ev->repository && ev->branch &&
	       ev->workflow_name && ev->conclusion &&
	       (!ev->status || strcmp(ev->status, "completed") == 0);
}

/*
 * What GitHub says of an Actions run (GET .../actions/runs/{id}): its
 * workflow's name (a check_run payload names none) and whether it ran a
 * fork's commit. Remembered for the last LOOP_RUN_NAMES runs, so the jobs of
 * one run cost one request. -HL_ENOTFOUND without GitHub credentials or
 * when GitHub does not show the run; another error when it did not answer.
 */
static int
ci_run_of(struct hl_loop *l, struct hl_loop_run *out, const struct hl_event *ev, struct hl_err *err)
{
	json_t *run = NULL;
	const char *name;
	bool found = false;
	size_t i;
	int rc;

	if (ev->run_id <= 0 || !l->github || !ev->repository)
		return hl_err_set(err, HL_ENOTFOUND, "no Actions run to ask GitHub of");
	pthread_mutex_lock(&l->runs_lock);
	for (i = 0; i < LOOP_RUN_NAMES && !found; i++)
		if (l->runs[i].run_id == ev->run_id) {
			*out = l->runs[i];
			found = true;
		}
	pthread_mutex_unlock(&l->runs_lock);
	if (found)
		return 0;
	/* a spent budget is waited out by the delivery, not by this worker */
	if (hl_github_budget_wait_ms(l->github) > 0)
		return hl_err_set(err, HL_EUPSTREAM, "GitHub's rate limit is spent");
	if ((rc = hl_github_run(l->github, &run, ev->repository, ev->run_id, err)) < 0)
		return rc;
	memset(out, 0, sizeof(*out));
	out->run_id = ev->run_id;
	out->fork = hl_github_run_is_fork(run, ev->repository);
	if ((name = hl_json_str(run, "name")) && strlen(name) < sizeof(out->name))
		hl_strlcpy(out->name, name, sizeof(out->name));
	json_decref(run);
	pthread_mutex_lock(&l->runs_lock);
	l->runs[l->runs_next++ % LOOP_RUN_NAMES] = *out;
	pthread_mutex_unlock(&l->runs_lock);
	return 0;
}

/*
 * The workflow of a GitHub Actions check run (its details_url names the
 * run, whose "name" is the workflow's), written to out; false for another
 * app's check run, without GitHub credentials, or when GitHub does not
 * answer (an Actions check run is then the task's that fixes its job on
 * its branch, hl_loop_ci_event).
 */
static bool
ci_check_run_workflow(struct hl_loop *l, char *out, size_t size, const struct hl_event *ev)
{
	struct hl_err err = HL_ERR_INIT;
	struct hl_loop_run run;

	if (ev->kind != HL_EVENT_CHECK_RUN || ev->job_id <= 0 || ev->run_id <= 0 || !l->github ||
	    !ev->repository)
		return false;
	if (ci_run_of(l, &run, ev, &err) == 0 && run.name[0] && strlen(run.name) < size) {
		hl_strlcpy(out, run.name, size);
		return true;
	}
	hl_log_kv(HL_LOG_WARN, "finding the workflow of a check run failed", "repository",
	          ev->repository, "error", err.msg[0] ? err.msg : "the run has no name", NULL);
	return false;
}

/*
 * 1 when ev is a run of a fork's pull request: GitHub sends the base
 * repository the runs of its forks' pull requests, named by the fork's
 * branch, with the workflow the fork wrote; such a result says nothing of
 * this repository's branch of that name. From the payload for a
 * workflow_run, else asked of GitHub; 0 when it is not, or cannot be known
 * (another CI's check run, no GitHub credentials, a run GitHub does not
 * show); another error when GitHub did not answer (asked again later).
 */
static int
ci_from_fork(struct hl_loop *l, const struct hl_event *ev, struct hl_err *err)
{
	struct hl_loop_run run;
	int rc;

	if (ev->kind == HL_EVENT_WORKFLOW_RUN && ev->head_repository)
		return strcasecmp(ev->head_repository, ev->repository) != 0;
	rc = ci_run_of(l, &run, ev, err);
	if (rc == -HL_ENOTFOUND) {
		*err = (struct hl_err)HL_ERR_INIT;
		return 0;
	}
	return rc < 0 ? rc : run.fork;
}

int
hl_loop_ci_event(struct hl_loop *l, char *task_id, const struct hl_event *ev,
                 const char *delivery_id, const char *own_task, struct hl_err *err)
{
	const char *workflow = ev->workflow_name;
	char run_name[256];
	bool by_job = false, whole_run = ci_is_run_result(ev);
	int rc;

	/* skipped, cancelled, neutral say nothing about the fix */
	if (!ev->conclusion || (strcmp(ev->conclusion, "success") != 0 &&
	                        !hl_event_conclusion_is_failure(ev->conclusion)))
		return 0;
	if (!whole_run && !workflow && ci_is_job_result(ev, "")) {
		/* GitHub is asked for the run's workflow only when a task fixes
		 * a job of that name on that branch: not for every check run */
		char any[HL_TASK_ID_MAX];

		rc = hl_store_task_active_for(l->store, any, ev->repository, ev->branch, NULL,
		                              ev->job_name, NULL, err);
		if (rc == -HL_ENOTFOUND)
			return 0;
		if (rc < 0)
			return rc;
		if (ev->kind == HL_EVENT_CHECK_RUN && ev->run_id <= 0) {
			/* another CI's check run (no Actions run behind it):
			 * the result of the task fixing the check of that name
			 * on the branch, never of an Actions job's of that name */
			struct hl_task_record *t = NULL;
			bool other_ci;

			if ((rc = hl_store_task_get(l->store, &t, any, err)) < 0)
				return rc == -HL_ENOTFOUND ? 0 : rc;
			other_ci = t->run_id <= 0;
			hl_task_record_free(t);
			if (!other_ci)
				return 0;
			hl_strlcpy(task_id, any, HL_TASK_ID_MAX);
			by_job = true;
		} else if (ci_check_run_workflow(l, run_name, sizeof(run_name), ev)) {
			workflow = run_name;
		} else if (ev->kind == HL_EVENT_CHECK_RUN && ev->run_id > 0) {
			/* an Actions check run (its details name a run) whose run
			 * GitHub did not show (not visible yet, gone, GitHub
			 * away): what it says itself, the job's name on the
			 * branch, makes it the result of the task fixing that job
			 * there, never the start of a second task for it */
			hl_strlcpy(task_id, any, HL_TASK_ID_MAX);
			by_job = true;
		}
	}
	if (!by_job) {
		if (!whole_run && !ci_is_job_result(ev, workflow))
			return 0;
		/* a whole run's result is the task's fixing that workflow's runs
		 * on the branch (a job's task is judged by its job) */
		rc = hl_store_task_active_for(l->store, task_id, ev->repository, ev->branch,
		                              workflow, whole_run ? NULL : ev->job_name, NULL, err);
		/* a failing job of a workflow whose whole run a task fixes is
		 * that task's result (a passing one says nothing of the run) */
		if (rc == -HL_ENOTFOUND && !whole_run &&
		    hl_event_conclusion_is_failure(ev->conclusion))
			rc = hl_store_task_active_for(l->store, task_id, ev->repository, ev->branch,
			                              workflow, NULL, NULL, err);
		if (rc == -HL_ENOTFOUND)
			return 0;
		if (rc < 0)
			return rc;
	}
	/* a fork's pull request run on a branch of the same name */
	if ((rc = ci_from_fork(l, ev, err)) != 0)
		return rc < 0 ? rc : 0;
	if (ev->intent == HL_INTENT_CI_FAILURE && (!own_task || strcmp(task_id, own_task) != 0)) {
		/* a task claimed (it records its workflow and job from the
		 * claim on) whose remediation is still being decided may yet
		 * end skipped: a failure waits for the decision, then belongs
		 * to the task, or starts its own. A claim undecided for long
		 * (its process died, its delivery waits for a retry) no longer
		 * holds it back. Deciding only (HEALER_DISPATCH=none), every
		 * task ends skipped: the failure starts its own at once. */
		struct hl_task_record *t = NULL;
		bool deciding;

		if ((rc = hl_store_task_get(l->store, &t, task_id, err)) < 0)
			return rc;
		/* or ended since it was found: looked for again */
		deciding = hl_loop_task_deciding(t) ||
		           (t->state != HL_TASK_RUNNING && t->state != HL_TASK_VERIFYING &&
		            t->state != HL_TASK_QUEUED);
		hl_task_record_free(t);
		if (deciding)
			return l->cfg->dispatch == HL_DISPATCH_NONE ? 0 : 2;
	}
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
