/*
 * driver.c - stepping tasks: each due task is taken under its lease,
 * judged (decide.h) and the step applied; queued tasks start when the
 * budgets allow, oldest first.
 *
 * Applying a step writes the attempt's outcome before anything follows
 * from it, and every consequence is idempotent (the next CodeRun is named
 * for its attempt, the escalation is enqueued once per channel and
 * round), so a driver that dies half-way is finished by the next one to
 * take the lease.
 */
#include "base/clock.h"
#include "base/log.h"
#include "base/str.h"
#include "catalog/catalog.h"
#include "loop_impl.h"

#include "json/json.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DRIVER_RANKED_MAX 8
#define DRIVER_RETRY_MS   60000 /* a step that failed on an upstream is tried again then */

/* The classification's agents in rank order, from the stored decision. */
static size_t
driver_ranked(const char **out, size_t max, json_t *decision)
{
	json_t *arr = json_object_get(decision, "ranked_agents"), *v;
	size_t i, n = 0;

	json_array_foreach(arr, i, v)
	{
		if (n < max && json_is_string(v))
			out[n++] = json_string_value(v);
	}
	return n;
}

/* Security work stays with its agent (the catalogue says which categories). */
static bool
driver_sticky(const struct hl_task_record *t)
{
	const struct hl_catalog_type *ft = hl_catalog_type_find(t->failure_type);

	if (t->kind && strcmp(t->kind, "security") == 0)
		return true;
	return ft && ft->category && ft->category->stays_with_agent;
}

static const struct hl_attempt_record *
driver_current(const struct hl_task_record *t)
{
	size_t i;

	for (i = t->n_attempts; i > 0; i--)
		if (t->attempt[i - 1].n == t->attempts)
			return &t->attempt[i - 1];
	return NULL;
}

/*
 * The attempt left being prepared: recorded (phase preparing, its CodeRun
 * slot taken) by hl_remediate_begin but not yet given its CodeRun, because
 * the process preparing it died or failed half-way (the task's attempts
 * still count the one before; a queued task's first attempt counts
 * already). It is resumed under its own number, so a restart or another
 * replica taking the lease never skips a number, and never leaves it
 * holding its slot. NULL when there is none.
 */
static const struct hl_attempt_record *
driver_preparing(const struct hl_task_record *t)
{
	const struct hl_attempt_record *a = t->n_attempts ? &t->attempt[t->n_attempts - 1] : NULL;

	if (!a || a->kind != HL_ATTEMPT_AGENT || a->phase != HL_PHASE_PREPARING)
		return NULL;
	return a->n > t->attempts || t->state == HL_TASK_QUEUED ? a : NULL;
}

/*
 * The CI result that judges attempt a, as hl_store_ci_result_latest. An
 * agent's work is judged by the job's latest result completed once its
 * CodeRun Succeeded ("Succeeded and the same workflow + job then passed");
 * before that, only by a pass that is the latest result since the attempt
 * started (an agent that waits for CI before it ends): a failure met while
 * the agent was still at work may be of a commit it has replaced since, and
 * says nothing of what it finished. A re-run is judged by the results since
 * it was asked for.
 */
static int
driver_ci_latest(struct hl_loop *l, struct hl_ci_result_record *ci, const struct hl_task_record *t,
                 const struct hl_attempt_record *a, struct hl_err *err)
{
	bool done = a->kind == HL_ATTEMPT_AGENT && a->agent_done_ms > 0;
	/* an agent pushing to a branch of its own is judged there only: the
	 * task's branch failing again meanwhile hides no pass of it */
	const char *on = a->kind == HL_ATTEMPT_AGENT && t->target_branch && t->branch &&
	                                 strcmp(t->target_branch, t->branch) != 0
	                         ? t->target_branch
	                         : NULL;
	int rc = hl_store_ci_result_latest(l->store, ci, t->task_id,
	                                   done ? a->agent_done_ms : a->started_ms, on, err);

	if (rc != -HL_ENOTFOUND || !done)
		return rc;
	rc = hl_store_ci_result_latest(l->store, ci, t->task_id, a->started_ms, on, err);
	if (rc == 0 && strcmp(ci->conclusion, "success") != 0)
		rc = -HL_ENOTFOUND;
	return rc;
}

/* Records what GitHub says of the job as a CI result of the task. */
static int
driver_record_api(struct hl_loop *l, const struct hl_task_record *t, int64_t run_id, int64_t job_id,
                  const char *sha, const char *conclusion, struct hl_err *err)
{
	char key[96];

	snprintf(key, sizeof(key), "api:%lld:%lld:%s", (long long)run_id, (long long)job_id,
	         conclusion);
	return hl_store_ci_result_add(l->store,
	                              &(struct hl_ci_result){ .task_id = t->task_id,
	                                                      .delivery_id = key,
	                                                      .head_sha = sha,
	                                                      .branch = t->target_branch,
	                                                      .conclusion = conclusion,
	                                                      .run_id = run_id,
	                                                      .job_id = job_id,
	                                                      .completed_ms = hl_time_wall_ms(),
	                                                      .source = "api" },
	                              err);
}

/* A re-run: the jobs of the run's latest attempt (a re-run keeps the run). */
static int
driver_ask_rerun(struct hl_loop *l, const struct hl_task_record *t, struct hl_err *err)
{
	json_t *jobs = NULL, *j;
	size_t i;
	int rc = hl_github_run_jobs(l->github, &jobs, t->repository, t->run_id, err);

	if (rc < 0)
		return rc;
	json_array_foreach(jobs, i, j)
	{
		const char *name = hl_json_str(j, "name"), *c = hl_json_str(j, "conclusion");
		if (name && t->job && strcmp(name, t->job) == 0 && c &&
		    strcmp(hl_json_str_or(j, "status", ""), "completed") == 0) {
			rc = driver_record_api(l, t, t->run_id, hl_json_int(j, "id", 0),
			                       hl_json_str(j, "head_sha"), c, err);
			break;
		}
	}
	json_decref(jobs);
	return rc;
}

/* Another CI's check (no Actions run behind it): its newest check run of
 * that name on the branch completed since the attempt began. */
static int
driver_ask_check(struct hl_loop *l, const struct hl_task_record *t,
                 const struct hl_attempt_record *a, struct hl_err *err)
{
	json_t *runs = NULL, *c;
	int64_t best_ms = -1;
	const json_t *best = NULL;
	size_t i;
	int rc = hl_github_check_runs(l->github, &runs, t->repository,
	                              t->target_branch ? t->target_branch : t->branch, 0, err);

	if (rc < 0)
		return rc;
	json_array_foreach(runs, i, c)
	{
		const char *concl = hl_json_str_or(c, "conclusion", "");
		int64_t done = hl_time_parse_rfc3339(hl_json_str_or(c, "completed_at", ""));

		if (strcmp(hl_json_str_or(c, "name", ""), t->job) != 0 ||
		    strcmp(hl_json_str_or(c, "status", ""), "completed") != 0 || !*concl ||
		    strcmp(concl, "skipped") == 0 || strcmp(concl, "neutral") == 0 ||
		    strcmp(concl, "cancelled") == 0 || done < a->started_ms || done <= best_ms)
			continue;
		best = c;
		best_ms = done;
	}
	/* keyed by the check run's id: each attempt's answer is recorded */
	if (best)
		rc = driver_record_api(l, t, 0, hl_json_int(best, "id", 0),
		                       hl_json_str(best, "head_sha"),
		                       hl_json_str(best, "conclusion"), err);
	json_decref(runs);
	return rc;
}

/* Whether pod is in trouble since since_ms: not running (Pending, Failed,
 * Unknown), a container waiting (CrashLoopBackOff, ImagePullBackOff...),
 * not ready while the pod runs, or ended by anything but completion after
 * it. why names it. */
static bool
driver_pod_failing(const json_t *pod, int64_t since_ms, char *why, size_t size)
{
	const char *phase = hl_json_str_or(pod, "status.phase", "");
	json_t *statuses = hl_json_path(pod, "status.containerStatuses"), *c;
	size_t i;

	/* Pending: unschedulable, or its images never pulled (what
	 * KubePodNotReady fires for) */
	if (strcmp(phase, "Failed") == 0 || strcmp(phase, "Unknown") == 0 ||
	    strcmp(phase, "Pending") == 0) {
		snprintf(why, size, "the pod is %s", phase);
		return true;
	}
	json_array_foreach(statuses, i, c)
	{
		const char *name = hl_json_str_or(c, "name", "?");
		const char *waiting = hl_json_str(c, "state.waiting.reason");
		const char *ended = hl_json_str(c, "lastState.terminated.reason");
		int64_t at = hl_time_parse_rfc3339(
		        hl_json_str_or(c, "lastState.terminated.finishedAt", ""));

		if (waiting) {
			snprintf(why, size, "container %.60s is waiting: %.60s", name, waiting);
			return true;
		}
		if (ended && strcmp(ended, "Completed") != 0 && at >= since_ms) {
			snprintf(why, size, "container %.60s ended since the fix: %.60s", name,
			         ended);
			return true;
		}
		if (strcmp(phase, "Running") == 0 && !json_is_true(json_object_get(c, "ready"))) {
			snprintf(why, size, "container %.60s is not ready", name);
			return true;
		}
	}
	return false;
}

/*
 * A pod alert's task whose alert did not resolve by the verify timeout: the
 * pod's own state since the CodeRun ended, recorded as the attempt's CI
 * result (once per attempt): failing (a container waiting, not ready, or
 * ended since the fix) or healthy; a pod that is gone was replaced (a
 * rollout of the fix) and counts as healthy, its successor's trouble being
 * an alert of its own.
 */
static int
driver_ask_pod(struct hl_loop *l, const struct hl_task_record *t, const struct hl_attempt_record *a,
               struct hl_err *err)
{
	json_t *ev = t->event_json ? json_loads(t->event_json, 0, NULL) : NULL, *pod = NULL;
	const char *ns = hl_json_str(ev, "alert.labels.namespace");
	const char *name = hl_json_str(ev, "alert.labels.pod");
	char key[HL_TASK_ID_MAX + 48], why[160] = "";
	bool failing = false;
	int rc = 0;

	if (!l->kube || !ns || !name)
		goto out;
	rc = hl_kube_get_pod(l->kube, &pod, ns, name, err);
	if (rc == -HL_ENOTFOUND) {
		*err = (struct hl_err)HL_ERR_INIT;
		rc = 0;
	} else if (rc < 0) {
		goto out;
	} else {
		failing = driver_pod_failing(
		        pod, a->agent_done_ms ? a->agent_done_ms : a->started_ms, why, sizeof(why));
	}
	hl_log_kv(HL_LOG_INFO, "the alert's pod was looked at", "task_id", t->task_id, "pod", name,
	          "state",
	          failing ? why
	          : pod   ? "healthy"
	                  : "replaced",
	          NULL);
	snprintf(key, sizeof(key), "pod:%s:%d", t->task_id, a->n);
	rc = hl_store_ci_result_add(
	        l->store,
	        &(struct hl_ci_result){ .task_id = t->task_id,
	                                .delivery_id = key,
	                                .branch = t->target_branch,
	                                .conclusion = failing ? "failure" : "success",
	                                .completed_ms = hl_time_wall_ms(),
	                                .source = "pod" },
	        err);
out:
	json_decref(pod);
	json_decref(ev);
	return rc;
}

/* The job's latest result on the branch since the attempt began (for a
 * whole run's task, the run's), asked of GitHub (the verify timeout passed
 * without a webhook event). Recorded as a CI result when found. */
static int
driver_ask_ci(struct hl_loop *l, const struct hl_task_record *t, const struct hl_attempt_record *a,
              struct hl_err *err)
{
	struct hl_github_job_verdict v;
	json_t *run = NULL;
	char workflow[32];
	int rc;

	if (hl_loop_task_is_pod_alert(t))
		return driver_ask_pod(l, t, a, err);
	if (!l->github)
		return hl_err_set(err, HL_EUNSUPPORTED,
		                  "no GitHub credentials to ask for CI results");
	if (!t->repository)
		return 0;
	if (t->run_id <= 0) /* another CI's check */
		return t->job ? driver_ask_check(l, t, a, err) : 0;
	if (a->kind == HL_ATTEMPT_RERUN)
		return t->job ? driver_ask_rerun(l, t, err) : 0;
	/* the workflow's id, from the failing run (events carry only its name) */
	if ((rc = hl_github_run(l->github, &run, t->repository, t->run_id, err)) < 0)
		goto out;
	snprintf(workflow, sizeof(workflow), "%lld", (long long)hl_json_int(run, "workflow_id", 0));
	rc = hl_github_job_verdict(l->github, &v, t->repository, workflow,
	                           t->target_branch ? t->target_branch : t->branch, t->job,
	                           a->started_ms, err);
	if (rc == 0 &&
	    (v.verdict == HL_GITHUB_VERDICT_PASSED || v.verdict == HL_GITHUB_VERDICT_FAILED))
		rc = driver_record_api(
		        l, t, v.run_id, v.job_id, v.head_sha,
		        v.verdict == HL_GITHUB_VERDICT_PASSED ? "success" : v.conclusion, err);
out:
	json_decref(run);
	return rc;
}

/* What the next attempt knows of the one before. */
static void
driver_plan(struct hl_attempt_plan *p, const struct hl_task_record *t, const char *agent,
            const char *hint, const char *hint_author, const struct hl_ci_result_record *ci,
            char *ci_line, size_t ci_size)
{
	const struct hl_attempt_record *last = driver_current(t), *prep = driver_preparing(t);

	memset(p, 0, sizeof(*p));
	/* an attempt left preparing is this one (never skipped) */
	p->n = prep ? prep->n : (int)(t->n_attempts ? t->attempt[t->n_attempts - 1].n + 1 : 1);
	p->task = t;
	p->agent = agent;
	p->failure_type = t->failure_type;
	p->hint = hint;
	p->hint_author = hint ? hint_author : NULL;
	if (last) {
		p->agent_pod = last->pod_name;
		p->failure_output = last->status_message;
	}
	if (ci && ci->conclusion[0]) {
		snprintf(ci_line, ci_size, "%s: %s at %.12s%s%s", t->job ? t->job : "the job",
		         ci->conclusion, ci->head_sha, ci->url[0] ? " " : "", ci->url);
		p->ci_status = ci_line;
		if (strcmp(ci->conclusion, "success") != 0 && ci->job_id > 0)
			p->current_job_id = ci->job_id;
	}
}

/* Whether a remediation's outcome is a CodeRun at work: not refused by the
 * API, skipped, or superseded by another task's CodeRun. */
static bool
driver_attempt_started(const char *outcome)
{
	return strcmp(outcome, "dispatched") == 0 || strcmp(outcome, "existing") == 0 ||
	       strcmp(outcome, "decided") == 0 || strcmp(outcome, "rerun") == 0;
}

/* The key of a task's decision that keeps the hint of a /healer retry
 * while its attempt waits for a budget: the queued attempt starts with it. */
#define DRIVER_QUEUED_HINT "queued_hint"
/* ... and the login of the human who gave it (the prompt credits them) */
#define DRIVER_QUEUED_HINT_AUTHOR "queued_hint_author"

/* The decision JSON text with hint under DRIVER_QUEUED_HINT and its author
 * under DRIVER_QUEUED_HINT_AUTHOR (hint NULL: without either); NULL when out
 * of memory. */
static char *
driver_decision_hint(const char *decision_json, const char *hint, const char *author)
{
	json_t *d = decision_json ? json_loads(decision_json, 0, NULL) : NULL;
	char *text;

	if (!json_is_object(d)) {
		json_decref(d);
		d = json_object();
	}
	if (hint)
		json_object_set_new(d, DRIVER_QUEUED_HINT, json_string(hint));
	else
		json_object_del(d, DRIVER_QUEUED_HINT);
	if (hint && author && *author)
		json_object_set_new(d, DRIVER_QUEUED_HINT_AUTHOR, json_string(author));
	else
		json_object_del(d, DRIVER_QUEUED_HINT_AUTHOR);
	text = d ? json_dumps(d, JSON_COMPACT) : NULL;
	json_decref(d);
	return text;
}

/* The hint a queued /healer retry left in the task's decision (NULL when
 * none) and, when author is not NULL, who gave it in *author (NULL when not
 * kept); the caller frees both. */
static char *
driver_queued_hint(const struct hl_task_record *t, char **author)
{
	json_t *d = t->decision_json ? json_loads(t->decision_json, 0, NULL) : NULL;
	const char *h = hl_json_str(d, DRIVER_QUEUED_HINT);
	const char *a = hl_json_str(d, DRIVER_QUEUED_HINT_AUTHOR);
	char *hint = h && *h ? strdup(h) : NULL;

	if (author)
		*author = hint && a && *a ? strdup(a) : NULL;
	json_decref(d);
	return hint;
}

/* Whether t's decision holds a queued hint. */
static bool
driver_has_queued_hint(const struct hl_task_record *t)
{
	char *hint = driver_queued_hint(t, NULL);
	bool has = hint != NULL;

	free(hint);
	return has;
}

/* Takes the queued hint out of the task's decision once an attempt has
 * started (left there, a later wait would give it again). */
static void
driver_hint_used(struct hl_loop *l, const char *task_id)
{
	struct hl_task_record *t = NULL;
	struct hl_err err = HL_ERR_INIT;
	char *decision = NULL;
	int rc;

	rc = hl_store_task_get(l->store, &t, task_id, &err);
	if (rc == 0 && !driver_has_queued_hint(t)) {
		hl_task_record_free(t);
		return;
	}
	if (rc == 0 && !(decision = driver_decision_hint(t->decision_json, NULL, NULL)))
		rc = hl_err_set(&err, HL_ENOMEM, "out of memory");
	if (rc == 0)
		rc = hl_store_task_put(l->store,
		                       &(struct hl_task){ .task_id = task_id,
		                                          .state = t->state,
		                                          .decision_json = decision },
		                       &err);
	if (rc < 0)
		hl_log_kv(HL_LOG_WARN, "clearing a queued retry's hint failed", "task_id", task_id,
		          "error", err.msg, NULL);
	free(decision);
	hl_task_record_free(t);
}

/* Starts the next attempt, or queues the task when a budget is used up
 * (a hint then waits in its decision, DRIVER_QUEUED_HINT). Returns 0 when
 * it started, 1 when the task waits for a CodeRun slot, 2 when it waits
 * for its repository's hourly budget, <0 on errors. */
static int
driver_next_attempt(struct hl_loop *l, const struct hl_task_record *t, const char *agent,
                    const char *hint, const char *hint_author, const struct hl_ci_result_record *ci,
                    struct hl_err *err)
{
	struct hl_attempt_plan plan;
	struct hl_remediation res;
	const struct hl_attempt_record *cur;
	char why[160], ci_line[640], agent_pod[254], *kept = NULL;
	enum hl_budget_wait over = HL_BUDGET_NONE;
	bool hinted = hint && *hint;
	int rc;

	driver_plan(&plan, t, agent, hint, hint_author, ci, ci_line, sizeof(ci_line));
	/* a hint is kept with the task as its attempt begins (in that
	 * transaction): a restart resuming the attempt left preparing still
	 * has it (driver_step), until the attempt is made */
	if (hinted && !(kept = driver_decision_hint(t->decision_json, hint, hint_author)))
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	/* a stopped or escalated task given one more attempt (/healer retry)
	 * runs again as the attempt begins, in its transaction, as every other
	 * task does: not still stopped, with an end time, while it is prepared */
	rc = hl_remediate_begin_keep(l->remediator, &over, why, sizeof(why), t->task_id, plan.n,
	                             t->repository, agent,
	                             t->state == HL_TASK_STOPPED || t->state == HL_TASK_ESCALATED
	                                     ? "one more attempt (/healer retry)"
	                                     : NULL,
	                             kept, err);
	free(kept);
	if (rc < 0)
		return rc;
	/* a task nothing would look at again (a /healer retry of an escalated
	 * or stopped one) is due once this lease runs out: if this process
	 * dies while the attempt is prepared, the next lease holder resumes it
	 * (its own schedule replaces this one when it is made) */
	if (!over && t->state != HL_TASK_QUEUED && t->next_check_ms <= 0 &&
	    (rc = hl_store_task_schedule(l->store, t->task_id,
	                                 hl_time_wall_ms() + (int64_t)l->cfg->lease_seconds * 1000,
	                                 err)) < 0)
		return rc;
	if (over) {
		char *decision = NULL;

		if (t->state == HL_TASK_QUEUED)
			return over == HL_BUDGET_SLOTS ? 1 : 2;
		/* the hint waits with the task; a wait without one drops an
		 * older one's (a /healer retry queued, then stopped) */
		if ((hint && *hint) || driver_has_queued_hint(t)) {
			decision = driver_decision_hint(t->decision_json,
			                                hint && *hint ? hint : NULL, hint_author);
			if (!decision)
				return hl_err_set(err, HL_ENOMEM, "out of memory");
		}
		rc = hl_store_task_put(l->store,
		                       &(struct hl_task){ .task_id = t->task_id,
		                                          .state = HL_TASK_QUEUED,
		                                          .reason = why,
		                                          .agent = agent,
		                                          .decision_json = decision,
		                                          .next_check_ms = HL_TASK_NO_CHECK },
		                       err);
		free(decision);
		return rc < 0 ? rc : over == HL_BUDGET_SLOTS ? 1 : 2;
	}
	/* the watch found no pod when the CodeRun ended (none yet, or the
	 * cluster did not answer): asked once more */
	if ((!plan.agent_pod || !*plan.agent_pod) && (cur = driver_current(t)) &&
	    cur->kind == HL_ATTEMPT_AGENT &&
	    hl_loop_job_pod(l, cur->job_name, agent_pod, sizeof(agent_pod)))
		plan.agent_pod = agent_pod;
	rc = hl_remediate_attempt(l->remediator, &res, t, &plan, err);
	if (rc == 0 && (hinted || driver_has_queued_hint(t)))
		driver_hint_used(l, t->task_id);
	if (rc == 0 && driver_attempt_started(res.outcome))
		hl_log_kv(HL_LOG_INFO, "next attempt started", "task_id", t->task_id, "agent",
		          res.agent, "coderun", res.coderun_name, "outcome", res.outcome, NULL);
	else if (rc == 0)
		hl_log_kv(HL_LOG_INFO, "next attempt not started", "task_id", t->task_id, "agent",
		          res.agent, "outcome", res.outcome, "reason", res.reason, NULL);
	return rc;
}

/* The task's latest CI result once an attempt was made (the current CI
 * log of the next attempt's prompt), in *ci; NULL when none. */
static const struct hl_ci_result_record *
driver_current_ci(struct hl_loop *l, struct hl_ci_result_record *ci, const struct hl_task_record *t)
{
	if (!driver_current(t) ||
	    hl_store_ci_result_latest(l->store, ci, t->task_id, 0, NULL, NULL) < 0)
		return NULL;
	return ci;
}

int
hl_loop_next_attempt(struct hl_loop *l, const struct hl_task_record *t, const char *agent,
                     const char *hint, const char *hint_author, struct hl_err *err)
{
	struct hl_ci_result_record ci;
	int rc = driver_next_attempt(l, t, agent, hint, hint_author, driver_current_ci(l, &ci, t),
	                             err);

	return rc < 0 ? rc : rc > 0;
}

/* Records the outcome of the current attempt (once: a judged attempt is done). */
static int
driver_finish_attempt(struct hl_loop *l, const struct hl_task_record *t,
                      const struct hl_attempt_record *a, const struct hl_loop_step *st,
                      struct hl_err *err)
{
	if (a->phase == HL_PHASE_DONE)
		return 0;
	hl_log_kv(HL_LOG_INFO, "attempt finished", "task_id", t->task_id, "attempt",
	          a->coderun_name ? a->coderun_name : "rerun", "outcome",
	          hl_attempt_outcome_name(st->outcome), "reason", st->reason, NULL);
	return hl_store_attempt_put(l->store,
	                            &(struct hl_attempt){ .task_id = t->task_id,
	                                                  .n = a->n,
	                                                  .kind = a->kind,
	                                                  .phase = HL_PHASE_DONE,
	                                                  .outcome = st->outcome,
	                                                  .reason = st->reason,
	                                                  .finished_ms = hl_time_wall_ms() },
	                            err);
}

/*
 * Whether the pull request of t (pr_number > 0) was closed or merged since
 * the task began: *reason then says which ("the pull request was closed",
 * "... was merged", as /healer commands tell a closed from a merged one).
 * Asked only before something would follow for the PR (an agent pushing to
 * its branch, an escalation to people), one read of the PR each time. A
 * task without a PR, a process without GitHub credentials, and a GitHub
 * that does not answer (an error, a rate limit held, a 404) count as open:
 * the loop goes on as it did before it asked, never waiting on GitHub.
 */
static bool
driver_pr_ended(struct hl_loop *l, const struct hl_task_record *t, const char **reason)
{
	struct hl_err gerr = HL_ERR_INIT;
	json_t *pr = NULL;
	const char *state;
	bool ended = false;

	if (!l->github || t->pr_number <= 0 || !t->repository)
		return false;
	if (hl_github_pull(l->github, &pr, t->repository, t->pr_number, &gerr) < 0) {
		hl_log_kv(HL_LOG_WARN, "reading the task's pull request failed; going on",
		          "task_id", t->task_id, "error", gerr.msg, NULL);
		return false;
	}
	state = hl_json_str(pr, "state");
	if (state && strcmp(state, "closed") == 0) {
		ended = true;
		*reason = hl_json_bool(pr, "merged", false) || hl_json_str(pr, "merged_at")
		                  ? "the pull request was merged"
		                  : "the pull request was closed";
	}
	json_decref(pr);
	return ended;
}

/* Ends t stopped because its pull request ended (reason): no further
 * attempt, no escalation. Its attempts are all judged (a task whose
 * attempt was begun is not stopped so, driver_start_check). */
static int
driver_stop_ended(struct hl_loop *l, const struct hl_task_record *t, const char *reason,
                  struct hl_err *err)
{
	int rc = hl_store_task_put(l->store,
	                           &(struct hl_task){ .task_id = t->task_id,
	                                              .state = HL_TASK_STOPPED,
	                                              .reason = reason,
	                                              .next_check_ms = HL_TASK_NO_CHECK },
	                           err);

	if (rc == 0)
		hl_log_kv(HL_LOG_INFO, "remediation stopped", "task_id", t->task_id, "reason",
		          reason, NULL);
	return rc;
}

/*
 * A task whose agent is at work (running) on a pull request: the PR is read
 * every HEALER_PR_CHECK_SECONDS from the attempt's start, so that a PR
 * closed or merged meanwhile stops the agent although no webhook told
 * (the sensors forward failures only; with the webhook, the PR's `closed`
 * event stops it at once, hl_loop_pr_closed). 1 when the task was stopped
 * (its CodeRun deleted), 0 when it goes on, *until then moved to the next
 * read when that comes sooner; < 0 on a store error. A GitHub that does
 * not answer counts as an open PR (driver_pr_ended).
 */
static int
driver_pr_watch(struct hl_loop *l, const struct hl_task_record *t,
                const struct hl_attempt_record *a, int64_t now, int64_t *until, struct hl_err *err)
{
	int64_t every = (int64_t)l->cfg->pr_check_seconds * 1000, next;
	struct hl_loop_pr_read *r = NULL;
	const char *why = NULL;
	bool read = false;
	unsigned i;

	if (every <= 0 || !l->github || t->state != HL_TASK_RUNNING || t->pr_number <= 0 || !a ||
	    a->kind != HL_ATTEMPT_AGENT)
		return 0;
	/* the attempt's start read the PR (a queued task's) or was made
	 * for an open one: the first read is one period later, the next one
	 * a period after the last this process made */
	next = a->started_ms + every;
	pthread_mutex_lock(&l->pr_reads_lock);
	for (i = 0; i < LOOP_PR_READS && !r; i++)
		if (strcmp(l->pr_reads[i].task_id, t->task_id) == 0)
			r = &l->pr_reads[i];
	if (r && r->at_ms + every > next)
		next = r->at_ms + every;
	if (now >= next) {
		if (!r) {
			r = &l->pr_reads[l->pr_reads_next++ % LOOP_PR_READS];
			hl_strlcpy(r->task_id, t->task_id, sizeof(r->task_id));
		}
		r->at_ms = now;
		next = now + every;
		read = true;
	}
	pthread_mutex_unlock(&l->pr_reads_lock);
	if (read && driver_pr_ended(l, t, &why))
		return hl_loop_stop_task(l, t, why, err);
	if (!*until || next < *until)
		*until = next;
	return 0;
}

/* Applies a finished attempt's consequence. */
static int
driver_follow(struct hl_loop *l, const struct hl_task_record *t, const struct hl_loop_step *st,
              const struct hl_ci_result_record *ci, struct hl_err *err)
{
	const char *why = NULL;
	int rc;

	/* a PR closed or merged while the attempt ran: no agent pushes to its
	 * branch again, nobody is told of a failure that no longer matters */
	if ((st->next == HL_NEXT_RETRY || st->next == HL_NEXT_ESCALATE) &&
	    driver_pr_ended(l, t, &why))
		return driver_stop_ended(l, t, why, err);
	switch (st->next) {
	case HL_NEXT_SUCCEED:
		rc = hl_store_task_put(l->store,
		                       &(struct hl_task){ .task_id = t->task_id,
		                                          .state = HL_TASK_SUCCEEDED,
		                                          .reason = st->reason,
		                                          .next_check_ms = HL_TASK_NO_CHECK },
		                       err);
		if (rc == 0) {
			hl_log_kv(HL_LOG_INFO, "remediation succeeded", "task_id", t->task_id,
			          NULL);
			/* the put marked the memory pending: a failure here is
			 * the loop's next pass's (hl_loop_remember_pending) */
			(void)hl_loop_remember(l, t->task_id);
		}
		return rc;
	case HL_NEXT_RETRY:
		rc = driver_next_attempt(l, t, st->next_agent, NULL, NULL, ci, err);
		return rc < 0 ? rc : 0;
	case HL_NEXT_ESCALATE:
		if ((rc = hl_loop_escalate(l, t, err)) < 0)
			return rc;
		rc = hl_store_task_put(l->store,
		                       &(struct hl_task){ .task_id = t->task_id,
		                                          .state = HL_TASK_ESCALATED,
		                                          .reason = st->reason,
		                                          .next_check_ms = HL_TASK_NO_CHECK },
		                       err);
		if (rc == 0) {
			hl_log_kv(HL_LOG_WARN, "remediation escalated", "task_id", t->task_id,
			          NULL);
			(void)hl_loop_remember(l, t->task_id);
			hl_loop_wake(l); /* the outbox */
		}
		return rc;
	case HL_NEXT_NONE:
		break;
	}
	return hl_store_task_schedule(l->store, t->task_id, HL_TASK_NO_CHECK, err);
}

static bool
driver_same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/*
 * After a wait was scheduled: the watcher (a CodeRun's change) and the CI
 * intake (a CI result of the task, ci.c) record what they saw and then
 * make the task due, without the lease, so a change that landed between
 * this step's read and its schedule would have its "due now" overwritten
 * by the wait. Reading the task and its latest CI result again closes the
 * gap: a change seen now is judged at once; one not seen yet is recorded
 * after this read, and its own schedule comes after the wait's.
 */
#define DRIVER_RECHECK_MS 30000 /* how long the re-read waits for a store that went away */

static bool
driver_same_ci(const struct hl_ci_result_record *x, const struct hl_ci_result_record *y)
{
	if (!x || !y)
		return !x && !y;
	return x->run_id == y->run_id && x->job_id == y->job_id &&
	       x->run_attempt == y->run_attempt && x->completed_ms == y->completed_ms &&
	       strcmp(x->conclusion, y->conclusion) == 0 && strcmp(x->head_sha, y->head_sha) == 0;
}

static int
driver_recheck(struct hl_loop *l, const struct hl_task_record *t, const struct hl_attempt_record *a,
               const struct hl_ci_result_record *ci_seen, struct hl_err *err)
{
	struct hl_task_record *now = NULL;
	const struct hl_attempt_record *b;
	struct hl_ci_result_record ci;
	int64_t give_up = hl_time_mono_ms() + DRIVER_RECHECK_MS, pause = 100;
	bool changed = false, read = false;
	int rc;

	/* The wait is written already: if the store goes away now (a database
	 * restart), a change recorded just before would stay behind the wait
	 * until it expires, so the re-read (and the schedule it may need) is
	 * retried until the store answers. */
	for (;;) {
		if (!read && (rc = hl_store_task_get(l->store, &now, t->task_id, err)) == 0) {
			read = true;
			b = driver_current(now);
			changed = !a || !b || a->n != b->n || a->phase != b->phase ||
			          !driver_same(a->coderun_phase, b->coderun_phase) ||
			          !driver_same(a->status_message, b->status_message);
			hl_task_record_free(now);
			/* a CI result recorded since this step read the latest */
			if (rc == 0 && !changed) {
				rc = driver_ci_latest(l, &ci, t, a, err);
				if (rc == 0 || rc == -HL_ENOTFOUND)
					changed = !driver_same_ci(ci_seen, rc == 0 ? &ci : NULL);
				else
					read = false;
			}
		}
		if (read)
			rc = changed ? hl_store_task_schedule(l->store, t->task_id,
			                                      hl_time_wall_ms(), err)
			             : 0;
		if (rc == 0 || (rc != -HL_EDB && rc != -HL_EIO) || atomic_load(&l->stop) ||
		    hl_time_mono_ms() >= give_up)
			return rc;
		nanosleep(&(struct timespec){ .tv_sec = pause / 1000,
		                              .tv_nsec = (pause % 1000) * 1000000L },
		          NULL);
		pause = pause * 2 < 2000 ? pause * 2 : 2000;
	}
}

/*
 * At an attempt's timeout, before its CodeRun is deleted: the watch may
 * have missed how it ended (a lost event, a relist that did not finish), so
 * it is asked for by name. One that ended (Succeeded, Failed) is recorded as
 * the watch records it (hl_loop_observe), and so is one that is gone (404:
 * deleted before it finished, failed); the task is then due again and
 * judged by that: 1. 0 when it still runs, its state is unknown, or the API
 * did not answer (logged): the timeout goes on.
 */
static int
driver_timeout_look(struct hl_loop *l, const struct hl_task_record *t,
                    const struct hl_attempt_record *a, struct hl_err *err)
{
	struct hl_kube_coderun_status st;
	struct hl_err gerr = HL_ERR_INIT;
	struct hl_task_record *now = NULL;
	const struct hl_attempt_record *b;
	json_t *cr = NULL;
	bool ended;
	int rc;

	if (!l->dispatch || l->cfg->dispatch == HL_DISPATCH_NONE || !a->coderun_name ||
	    !*a->coderun_name)
		return 0;
	rc = hl_dispatch_get(l->dispatch, &cr, a->coderun_name, &gerr);
	if (rc == -HL_ENOTFOUND) {
		json_decref(cr);
		cr = json_pack("{s:{s:s}, s:{s:s, s:s}}", "metadata", "name", a->coderun_name,
		               "status", "phase", "Failed", "message",
		               "the CodeRun was deleted before it finished");
		if (!cr)
			return hl_err_set(err, HL_ENOMEM, "out of memory");
	} else if (rc < 0 || !cr) {
		hl_log_kv(
		        HL_LOG_WARN,
		        "asking for a timed-out attempt's CodeRun failed; deleting it as timed out",
		        "task_id", t->task_id, "coderun", a->coderun_name, "error",
		        gerr.msg[0] ? gerr.msg : "no object", NULL);
		json_decref(cr);
		return 0;
	}
	hl_kube_coderun_status_read(&st, cr);
	if (!hl_kube_phase_terminal(st.phase)) {
		json_decref(cr);
		return 0;
	}
	hl_log_kv(HL_LOG_WARN,
	          "an attempt's CodeRun had ended when its timeout came (the watch missed it); "
	          "judging it by that",
	          "task_id", t->task_id, "coderun", a->coderun_name, "phase",
	          hl_kube_phase_name(st.phase), NULL);
	rc = hl_loop_observe(l, cr, err);
	json_decref(cr);
	if (rc < 0)
		return rc;
	/* recorded: the next step judges it (else it times out as before) */
	if ((rc = hl_store_task_get(l->store, &now, t->task_id, err)) < 0)
		return rc;
	b = driver_current(now);
	ended = b && b->n == a->n && b->coderun_phase &&
	        (strcmp(b->coderun_phase, "Succeeded") == 0 ||
	         strcmp(b->coderun_phase, "Failed") == 0);
	hl_task_record_free(now);
	if (!ended)
		return 0;
	rc = hl_store_task_schedule(l->store, t->task_id, hl_time_wall_ms(), err);
	return rc < 0 ? rc : 1;
}

/* Judges and applies one step of a leased task. */
static int
driver_step(struct hl_loop *l, const struct hl_task_record *t, struct hl_err *err)
{
	const struct hl_attempt_record *a = driver_current(t);
	struct hl_ci_result_record ci;
	const char *ranked[DRIVER_RANKED_MAX];
	json_t *decision = t->decision_json ? json_loads(t->decision_json, 0, NULL) : NULL;
	struct hl_loop_input in = {
		.task = t,
		.lim = &l->lim,
		.now_ms = hl_time_wall_ms(),
		.sticky = driver_sticky(t),
	};
	struct hl_loop_step st;
	struct hl_task_record *fresh = NULL;
	const struct hl_attempt_record *prep = driver_preparing(t);
	bool have_ci = false;
	int rc = 0;

	if (prep && (t->state == HL_TASK_RUNNING || t->state == HL_TASK_VERIFYING) &&
	    in.now_ms >= prep->started_ms + l->lim.attempt_timeout_ms) {
		/* it could not be made for as long as an attempt may run: it ends
		 * timed out (its slot freed) and is judged like any other */
		hl_log_kv(HL_LOG_WARN, "an attempt left preparing timed out", "task_id", t->task_id,
		          NULL);
		rc = hl_store_attempt_put(
		        l->store,
		        &(struct hl_attempt){ .task_id = t->task_id,
		                              .n = prep->n,
		                              .kind = prep->kind,
		                              .phase = HL_PHASE_DONE,
		                              .outcome = HL_OUTCOME_TIMEOUT,
		                              .reason = "the attempt could not be prepared in time",
		                              .finished_ms = in.now_ms },
		        err);
		if (rc == 0)
			rc = hl_store_task_put(l->store,
			                       &(struct hl_task){ .task_id = t->task_id,
			                                          .state = t->state,
			                                          .attempts = prep->n,
			                                          .next_check_ms = in.now_ms },
			                       err);
		goto out;
	}
	if (prep && (t->state == HL_TASK_RUNNING || t->state == HL_TASK_VERIFYING)) {
		/* the attempt a dead process (or an expired lease) left preparing:
		 * made now under its own number with the agent it was begun for
		 * (its CodeRun, if the create got through, is adopted) */
		char *author = NULL, *hint = driver_queued_hint(t, &author);

		hl_log_kv(HL_LOG_INFO, "resuming an attempt left preparing", "task_id", t->task_id,
		          "agent", prep->agent, NULL);
		/* a /healer retry's hint was kept with the task as it began */
		rc = hl_loop_next_attempt(l, t, prep->agent, hint, author, err);
		free(hint);
		free(author);
		rc = rc < 0 ? rc : 0;
		goto out;
	}
	in.n_ranked = driver_ranked(ranked, DRIVER_RANKED_MAX, decision);
	in.ranked = ranked;
	if (t->event_json) {
		json_t *ev = json_loads(t->event_json, 0, NULL);
		in.failing_run_attempt = hl_json_int(ev, "run_attempt", 0);
		in.failing_job_id = hl_json_int(ev, "job_id", 0);
		json_decref(ev);
	}
	if (a && driver_ci_latest(l, &ci, t, a, NULL) == 0) {
		in.ci = &ci;
		have_ci = true;
	}
	hl_loop_decide(&st, &in);
	if (st.verdict == HL_LOOP_ASK_CI) {
		struct hl_err aerr = HL_ERR_INIT;
		int64_t limit = (a->agent_done_ms ? a->agent_done_ms : a->started_ms) +
		                l->lim.verify_timeout_ms + DRIVER_RETRY_MS * 15;
		if (driver_ask_ci(l, t, a, &aerr) < 0 && in.now_ms < limit) {
			/* GitHub did not answer: ask again later, but not forever */
			hl_log_kv(HL_LOG_WARN, "asking GitHub for the CI result failed", "task_id",
			          t->task_id, "error", aerr.msg, NULL);
			rc = hl_store_task_schedule(l->store, t->task_id,
			                            in.now_ms + DRIVER_RETRY_MS, err);
			goto out;
		}
		if (driver_ci_latest(l, &ci, t, a, NULL) == 0) {
			in.ci = &ci;
			have_ci = true;
		}
		in.ci_asked = true;
		hl_loop_decide(&st, &in);
	}
	switch (st.verdict) {
	case HL_LOOP_NOTHING:
		rc = hl_store_task_schedule(l->store, t->task_id, HL_TASK_NO_CHECK, err);
		break;
	case HL_LOOP_WAIT:
		if ((rc = driver_pr_watch(l, t, a, in.now_ms, &st.until, err)) != 0) {
			rc = rc < 0 ? rc : 0;
			break;
		}
		rc = hl_store_task_schedule(l->store, t->task_id,
		                            st.until ? st.until : HL_TASK_NO_CHECK, err);
		if (rc == 0)
			rc = driver_recheck(l, t, a, have_ci ? &ci : NULL, err);
		break;
	case HL_LOOP_VERIFYING:
		rc = hl_store_task_put(l->store,
		                       &(struct hl_task){ .task_id = t->task_id,
		                                          .state = HL_TASK_VERIFYING,
		                                          .next_check_ms = st.until },
		                       err);
		if (rc == 0)
			rc = driver_recheck(l, t, a, have_ci ? &ci : NULL, err);
		break;
	case HL_LOOP_TIMEOUT:
	case HL_LOOP_FINISHED:
		/* a timed-out attempt's CodeRun goes first, unless it ended
		 * unseen: then judged by how it ended */
		if (st.verdict == HL_LOOP_TIMEOUT &&
		    ((rc = driver_timeout_look(l, t, a, err)) != 0 ||
		     (rc = hl_loop_delete_coderun(l, a->coderun_name, err)) < 0)) {
			rc = rc < 0 ? rc : 0;
			break;
		}
		if ((rc = driver_finish_attempt(l, t, a, &st, err)) < 0)
			break;
		/* what follows sees the attempt as judged (its outcome, its reason) */
		if ((rc = hl_store_task_get(l->store, &fresh, t->task_id, err)) < 0)
			break;
		rc = driver_follow(l, fresh, &st, have_ci ? &ci : NULL, err);
		break;
	case HL_LOOP_ASK_CI:
		break;
	}
out:
	hl_task_record_free(fresh);
	json_decref(decision);
	return rc;
}

int
hl_loop_step_task(struct hl_loop *l, const char *owner, const char *task_id)
{
	struct hl_err err = HL_ERR_INIT;
	struct hl_task_record *t = NULL;
	int64_t now = hl_time_wall_ms();
	bool got = false;
	int rc;

	if (hl_store_task_lease(l->store, &got, task_id, owner, now,
	                        now + (int64_t)l->cfg->lease_seconds * 1000, &err) < 0 ||
	    !got)
		return 0;
	rc = hl_store_task_get(l->store, &t, task_id, &err);
	if (rc == 0)
		rc = driver_step(l, t, &err);
	if (rc < 0) {
		hl_log_kv(HL_LOG_WARN, "stepping a task failed; trying again later", "task_id",
		          task_id, "error", err.msg, NULL);
		/* transient: look again after a while, not in a tight loop */
		if (hl_store_task_schedule(l->store, task_id, hl_time_wall_ms() + DRIVER_RETRY_MS,
		                           NULL) < 0) {
			/* the store is away: the next due scan finds the task again */
		}
	}
	hl_task_record_free(t);
	(void)hl_store_task_release(l->store, task_id, owner, NULL);
	return 1;
}

/*
 * Whether a queued task starts now: 0 when it may (its attempt is begun
 * as before, hl_remediate_begin having the last word on the budgets),
 * HL_BUDGET_SLOTS or HL_BUDGET_HOURLY when the budgets have no room for it
 * (counted as hl_store_attempt_begin counts them), 3 when its pull request
 * was closed or merged while it waited (*why says which): it then ends
 * stopped and never starts. The PR is read only when the budgets have room
 * for the task, so a task waiting for a slot costs no GitHub call on each
 * pass; and a task the count found no room for is not begun on that pass,
 * so one whose slot frees a moment later is not started unread (the next
 * pass reads its PR). A task without a PR or GitHub credentials, and one
 * whose attempt was begun already (left preparing, holding its slot),
 * start as before.
 */
static int
driver_start_check(struct hl_loop *l, const struct hl_task_record *t, const char **why)
{
	int64_t active = 0, recent = 0;
	int max_active = l->cfg->max_active_coderuns, max_hour = l->cfg->max_attempts_per_hour;

	if (!l->github || t->pr_number <= 0 || driver_preparing(t))
		return 0;
	if (l->cfg->dispatch != HL_DISPATCH_NONE && (max_active > 0 || max_hour > 0)) {
		if (hl_store_budget_usage(l->store, &active, &recent, t->repository,
		                          hl_time_wall_ms() - 3600 * 1000LL, NULL) < 0)
			return 0; /* the begin fails too, and is tried again */
		if (max_active > 0 && active >= max_active)
			return HL_BUDGET_SLOTS;
		if (max_hour > 0 && recent >= max_hour)
			return HL_BUDGET_HOURLY;
	}
	return driver_pr_ended(l, t, why) ? 3 : 0;
}

int
hl_loop_start_queued(struct hl_loop *l, const char *owner)
{
	char ids[LOOP_BATCH][HL_TASK_ID_MAX];
	struct hl_err err = HL_ERR_INIT;
	size_t n = 0, i;
	int started = 0;

	if (hl_store_tasks_queued(l->store, ids, LOOP_BATCH, &n, &err) < 0)
		return 0;
	for (i = 0; i < n && !atomic_load(&l->stop); i++) {
		struct hl_task_record *t = NULL;
		const char *why = NULL;
		int64_t now = hl_time_wall_ms();
		bool got = false;
		int rc, wait;

		if (hl_store_task_lease(l->store, &got, ids[i], owner, now,
		                        now + (int64_t)l->cfg->lease_seconds * 1000, &err) < 0 ||
		    !got) {
			/* held elsewhere (another driver trying it now): with a
			 * CodeRun slot limit, the ones behind it wait for it, or
			 * a slot freed meanwhile would go to a newer task */
			if (l->cfg->max_active_coderuns > 0)
				break;
			continue;
		}
		rc = hl_store_task_get(l->store, &t, ids[i], &err);
		/* oldest first: a task that must wait for a slot keeps the ones
		 * behind it waiting too (a repository's hourly budget does not) */
		wait = rc == 0 && t->state == HL_TASK_QUEUED ? driver_start_check(l, t, &why) : 0;
		if (wait == 3) {
			rc = driver_stop_ended(l, t, why, &err);
		} else if (wait > 0) {
			rc = wait; /* as the begin would have answered */
		} else if (rc == 0 && t->state == HL_TASK_QUEUED) {
			struct hl_ci_result_record ci;
			char *author = NULL, *hint = driver_queued_hint(t, &author);

			/* a retry that waited keeps the CI log it was decided on */
			rc = driver_next_attempt(l, t, t->agent, hint, author,
			                         driver_current_ci(l, &ci, t), &err);
			started += rc == 0;
			free(hint);
			free(author);
		}
		if (rc < 0)
			hl_log_kv(HL_LOG_WARN, "starting a queued task failed", "task_id", ids[i],
			          "error", err.msg, NULL);
		hl_task_record_free(t);
		(void)hl_store_task_release(l->store, ids[i], owner, NULL);
		/* decided by the check that made it wait: a slot freed since
		 * (another driver finishing an attempt) is the oldest task's */
		if (rc == 1)
			break;
	}
	return started;
}
