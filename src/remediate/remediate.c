/*
 * remediate.c - the remediation of one event; see remediate.h.
 *
 * Steps, each safe to repeat after a crash:
 *   1. claim the remediation in the store by its failure key (atomic);
 *      another task holding the key -> existing (an alert's key whose task
 *      has ended: the next generation of the key is claimed);
 *   2. a task for the same run at the other granularity (run vs job), an
 *      active CodeRun for the run, or a recent remediation on the branch ->
 *      existing / skipped;
 *   3. gather context in parallel, classify, render the prompt;
 *   4. build the CodeRun (named from the key) and dispatch it; AlreadyExists
 *      counts as existing;
 *   5. record the decision, sources, prompt size and CodeRun on the task.
 */
#include "remediate.h"

#include "base/clock.h"
#include "base/log.h"
#include "base/str.h"
#include "catalog/catalog.h"
#include "classify/classify.h"
#include "context.h"
#include "dispatch/coderun.h"
#include "dispatch/dispatch.h"
#include "github_shared.h"
#include "memory/memory.h"
#include "net/github.h"
#include "net/kube.h"
#include "prompt_build.h"

#include "json/json.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct hl_remediator {
	const struct hl_config *cfg;
	struct hl_store *store;
	struct hl_classifier *classifier;
	struct hl_github *github;
	struct hl_kube *kube;
	struct hl_dispatch *dispatch;
	struct hl_prompt_builder *prompts;
	/* attempt functions of the task kinds that are not GitHub events */
	struct {
		char kind[16];
		hl_remediate_kind_fn fn;
		void *arg;
	} kinds[HL_REMEDIATE_MAX_KINDS];
	size_t n_kinds;
};

int
hl_remediator_set_kind_handler(struct hl_remediator *r, const char *kind, hl_remediate_kind_fn fn,
                               void *arg, struct hl_err *err)
{
	size_t i;

	if (!kind || !*kind || strlen(kind) >= sizeof(r->kinds[0].kind) || !fn)
		return hl_err_set(err, HL_EINVAL, "bad task kind '%s'", kind ? kind : "");
	for (i = 0; i < r->n_kinds; i++)
		if (strcmp(r->kinds[i].kind, kind) == 0)
			break;
	if (i == r->n_kinds) {
		if (r->n_kinds >= HL_REMEDIATE_MAX_KINDS)
			return hl_err_set(err, HL_ETOOBIG, "too many task kinds ('%s')", kind);
		r->n_kinds++;
	}
	hl_strlcpy(r->kinds[i].kind, kind, sizeof(r->kinds[i].kind));
	r->kinds[i].fn = fn;
	r->kinds[i].arg = arg;
	return 0;
}

const struct hl_config *
hl_remediator_config(const struct hl_remediator *r)
{
	return r->cfg;
}

int
hl_remediator_new(struct hl_remediator **out, const struct hl_config *cfg, struct hl_store *store,
                  struct hl_err *err)
{
	struct hl_remediator *r = calloc(1, sizeof(*r));
	struct hl_err kerr = HL_ERR_INIT;
	int rc;

	if (!r)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	r->cfg = cfg;
	r->store = store;
	if ((rc = hl_classifier_new(&r->classifier, cfg->rules_file, err)) < 0)
		goto fail;
	hl_classifier_warm(r->classifier); /* the server's: memory taken at start */
	if ((rc = hl_prompt_builder_new(&r->prompts, cfg->prompts_dir, err)) < 0)
		goto fail;
	/* Without credentials GitHub's sources are skipped, like any unset source:
	 * anonymous calls are limited to 60 an hour and see no private repository. */
	if (((cfg->github_token && *cfg->github_token) ||
	     (cfg->github_app_id && *cfg->github_app_id)) &&
	    (rc = hl_github_shared_new(&r->github, cfg, store, err)) < 0)
		goto fail;
	if ((rc = hl_dispatch_open(&r->dispatch, cfg, err)) < 0)
		goto fail;
	/* The cluster is a context source even when CodeRuns go to files. */
	if (cfg->dispatch == HL_DISPATCH_KUBERNETES &&
	    hl_kube_load(&r->kube, cfg->kubeconfig, &kerr) < 0)
		r->kube = NULL;
	*out = r;
	return 0;
fail:
	hl_remediator_free(r);
	return rc;
}

void
hl_remediator_free(struct hl_remediator *r)
{
	if (!r)
		return;
	hl_classifier_free(r->classifier);
	hl_prompt_builder_free(r->prompts);
	hl_github_free(r->github);
	hl_kube_free(r->kube);
	hl_dispatch_close(r->dispatch);
	free(r);
}

static void
rem_set(char *dst, size_t size, const char *s)
{
	hl_strlcpy(dst, s ? s : "", size);
}

/* One attempt being made: who asked, for which task, with what. */
struct rem_job {
	const struct hl_event *ev;
	const char *task_id;
	const char *key;
	int n;                              /* the attempt's number */
	const struct hl_attempt_plan *plan; /* NULL for the first from a delivery */
};

/* The classification input for an event with its gathered context. */
static int
rem_classify(struct hl_remediator *r, struct hl_verdict *v, const struct hl_event *ev,
             const struct hl_context *ctx, struct hl_err *err)
{
	struct hl_classify_input in = { 0 };
	const char **files = NULL;
	size_t n = json_array_size(ctx->changed_files), i;
	struct hl_buf synth = HL_BUF_INIT(1 << 20);
	int rc;

	files = calloc(n ? n : 1, sizeof(*files));
	if (!files)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	for (i = 0; i < n; i++)
		files[i] = hl_json_str(json_array_get(ctx->changed_files, i), "filename");
	in.event = ev->event_name;
	in.workflow_name = ev->workflow_name;
	in.job_name = ev->job_name ? ev->job_name : ctx->log_job_name;
	in.failed_step = ev->failed_step ? ev->failed_step : ctx->failed_step;
	in.changed_files = files;
	in.n_changed = n;
	in.argocd_sync = ctx->argocd ? hl_json_str(ctx->argocd, "sync") : NULL;
	in.argocd_health = ctx->argocd ? hl_json_str(ctx->argocd, "health") : NULL;
	if (ctx->log.len) {
		in.log = ctx->log.data;
		in.log_len = ctx->log.len;
	} else {
		/* no job log: classify what the event itself says (check output,
		 * a comment's hint, an alert's summary) */
		const char *parts[] = { ev->check_output_title,
			                ev->check_output_summary,
			                ev->check_output_text,
			                ev->command_hint,
			                ev->summary,
			                ev->description };
		for (i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
			if (parts[i] && *parts[i])
				hl_buf_appendf(&synth, "%s\n", parts[i]);
		in.log = synth.data;
		in.log_len = synth.len;
	}
	rc = hl_classify(v, r->classifier, &in, err);
	hl_buf_release(&synth);
	free(files);
	return rc;
}

/* The steps whose durations the decision records (timings_ms). */
enum { REM_CLAIM, REM_GUARDS, REM_CONTEXT, REM_CLASSIFY, REM_PROMPT, REM_DISPATCH, REM_STEPS };

static json_t *
rem_timings_json(int64_t t0, const int64_t marks[REM_STEPS])
{
	static const char *const names[REM_STEPS] = { "claim",    "guards", "context",
		                                      "classify", "prompt", "dispatch" };
	json_t *o = json_object();
	int64_t prev = t0;
	int i;

	for (i = 0; o && i < REM_STEPS; i++) {
		json_object_set_new(o, names[i], json_integer(marks[i] - prev));
		prev = marks[i];
	}
	return o;
}

/* The ranked candidates the verdict chose from (the dashboard's and
 * --explain's "agents considered"). */
static json_t *
rem_candidates_json(const struct hl_verdict *v)
{
	json_t *arr = json_array();
	size_t i;

	for (i = 0; arr && i < v->n_candidates; i++) {
		const struct hl_classify_candidate *c = &v->candidates[i];
		json_array_append_new(arr,
		                      json_pack("{s:s, s:s, s:s, s:s, s:f, s:I, s:I}", "agent",
		                                c->agent, "failure_type", c->failure_type, "rule",
		                                c->rule ? c->rule : "", "evidence",
		                                hl_classify_evidence_name(c->evidence), "score",
		                                c->score, "matches", (json_int_t)c->matches,
		                                "line_number", (json_int_t)c->line_number));
	}
	return arr;
}

static json_t *
rem_decision_json(const struct hl_verdict *v, const struct hl_context *ctx,
                  const struct hl_remediation *res, const char *target_branch, size_t prompt_bytes,
                  const char *dispatch_outcome)
{
	json_t *d = json_object();

	if (!d)
		return NULL;
	json_object_set_new(d, "agent", json_string(v->agent));
	json_object_set_new(d, "failure_type", json_string(v->failure_type));
	json_object_set_new(d, "category", json_string(v->category));
	json_object_set_new(d, "rule", json_string(v->rule ? v->rule : "default"));
	json_object_set_new(
	        d, "evidence",
	        json_pack("{s:I, s:s, s:s, s:o}", "line_number",
	                  (json_int_t)v->evidence_line_number, "line",
	                  v->evidence_line ? v->evidence_line : "", "kind",
	                  hl_classify_evidence_name(v->evidence), "reason",
	                  v->evidence_reason ? json_string(v->evidence_reason) : json_null()));
	json_object_set_new(d, "confidence", json_real(v->confidence));
	json_object_set_new(d, "candidates", rem_candidates_json(v));
	json_object_set_new(d, "fix_approach", json_string(v->fix_approach ? v->fix_approach : ""));
	if (json_is_object(ctx->pr))
		json_object_set_new(d, "pull_request",
		                    json_pack("{s:O?, s:O?, s:O?}", "number",
		                              json_object_get(ctx->pr, "number"), "title",
		                              json_object_get(ctx->pr, "title"), "html_url",
		                              json_object_get(ctx->pr, "html_url")));
	json_object_set_new(d, "sources", hl_context_sources_json(ctx));
	json_object_set_new(d, "context_ms", json_integer(ctx->elapsed_ms));
	json_object_set_new(d, "log_bytes", json_integer((json_int_t)ctx->log.len));
	json_object_set_new(d, "prompt_bytes", json_integer((json_int_t)prompt_bytes));
	json_object_set_new(d, "target_branch", json_string(target_branch));
	json_object_set_new(d, "dedup_status", json_string(res->dedup_status));
	json_object_set_new(
	        d, "coderun",
	        json_pack("{s:s, s:s}", "name", res->coderun_name, "dispatch", dispatch_outcome));
	return d;
}

/* The loop's name for what started a task. */
static const char *
rem_kind(const struct hl_event *ev)
{
	switch (ev->intent) {
	case HL_INTENT_SECURITY:
		return "security";
	case HL_INTENT_COMMAND:
		return "command";
	case HL_INTENT_ACTION:
		return "action";
	default:
		return "ci";
	}
}

/*
 * The re-run of the failed jobs is recorded (attempt 1 a re-run being
 * prepared) before it is asked for, so a process that dies after asking
 * (or loses GitHub's answer) leaves a mark: the next try of the attempt
 * (the delivery again, or the loop resuming it) reads the run first and,
 * when GitHub shows it at a later run_attempt than the failure's (its
 * event's; 1 when it named none), adopts that re-run instead of asking
 * again. Asked again, GitHub would answer "already running", and then,
 * once that re-run ended, re-run the jobs a second time, the first
 * re-run's result judged against the second. *adopt says so; an error
 * when GitHub does not answer for the run (the attempt is tried again).
 */
static int
rem_rerun_mark(struct hl_remediator *r, const struct rem_job *j, bool *adopt, struct hl_err *err)
{
	const struct hl_event *ev = j->ev;
	struct hl_task_record *t = NULL;
	json_t *run = NULL;
	bool marked;
	int64_t now_attempt;
	int rc;

	*adopt = false;
	if ((rc = hl_store_task_get(r->store, &t, j->task_id, err)) < 0)
		return rc;
	marked = t->n_attempts > 0 && t->attempt[0].n == j->n &&
	         t->attempt[0].kind == HL_ATTEMPT_RERUN &&
	         t->attempt[0].phase == HL_PHASE_PREPARING;
	hl_task_record_free(t);
	if (marked) {
		if ((rc = hl_github_run(r->github, &run, ev->repository, ev->run_id, err)) < 0) {
			if (rc != -HL_ENOTFOUND)
				return rc;
			*err = (struct hl_err)HL_ERR_INIT;
			return 0; /* asked, GitHub refuses it too: an agent goes */
		}
		now_attempt = hl_json_int(run, "run_attempt", 0);
		json_decref(run);
		if (now_attempt > (ev->run_attempt > 0 ? ev->run_attempt : 1)) {
			hl_log_kv(HL_LOG_INFO, "the re-run asked for before is adopted", "task_id",
			          j->task_id, NULL);
			*adopt = true;
		}
		return 0;
	}
	/* the attempt waits as a re-run: it holds no CodeRun slot
	 * (hl_remediate_begin counted it as an agent's); an agent that
	 * goes after all makes it an agent's again */
	return hl_store_attempt_put(r->store,
	                            &(struct hl_attempt){ .task_id = j->task_id,
	                                                  .n = j->n,
	                                                  .kind = HL_ATTEMPT_RERUN,
	                                                  .phase = HL_PHASE_PREPARING,
	                                                  .outcome = HL_OUTCOME_INVALID },
	                            err);
}

/* How long a re-run a run still going put off may wait for it, from the
 * task's claim: the delivery is kept for an hour (HL_PIPELINE_KEEP_MS),
 * and before that runs out the agent goes. */
#define REM_RERUN_WAIT_MS (45 * 60 * 1000LL)

/* Whether the first attempt's re-run may still be put off. */
static bool
rem_rerun_may_wait(struct hl_remediator *r, const struct rem_job *j)
{
	struct hl_task_record *t = NULL;
	bool wait = hl_store_task_get(r->store, &t, j->task_id, NULL) == 0 &&
	            hl_time_wall_ms() - t->created_ms < REM_RERUN_WAIT_MS;

	hl_task_record_free(t);
	return wait;
}

/* Writes the task with what the loop needs to continue it (the event, its
 * workflow, sha and PR, where the agents push). */
static int
rem_put_task(struct hl_remediator *r, const struct rem_job *j, enum hl_task_state state,
             const char *reason, const char *agent, const char *type, const char *coderun,
             const char *target, int64_t pr_number, const json_t *decision, int64_t next_check,
             struct hl_err *err)
{
	const struct hl_event *ev = j->ev;
	char *dj = decision ? json_dumps(decision, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_t *evj = j->n == 1 ? hl_event_to_json(ev) : NULL;
	char *evs = evj ? json_dumps(evj, JSON_COMPACT) : NULL;
	struct hl_task t = {
		.task_id = j->task_id,
		.dedup_key = j->key,
		.repository = ev->repository,
		.run_id = ev->run_id,
		.job = ev->job_name,
		.branch = ev->branch,
		.agent = agent,
		.failure_type = type,
		.state = state,
		.reason = reason,
		.attempts = j->n,
		.coderun_name = coderun && *coderun ? coderun : NULL,
		.decision_json = dj,
		.kind = rem_kind(ev),
		.workflow = ev->workflow_name,
		.head_sha = ev->head_sha,
		.pr_number = pr_number,
		.target_branch = target && *target ? target : NULL,
		.event_json = evs,
		.next_check_ms = next_check,
	};
	int rc = hl_store_task_put(r->store, &t, err);

	free(evs);
	json_decref(evj);
	free(dj);
	return rc;
}

bool
hl_remediate_pr_from_fork(const json_t *pr, const char *repository)
{
	const json_t *head = json_object_get(pr, "head");
	const json_t *repo = json_object_get(head, "repo");
	const char *full;

	if (!json_is_object(head) || !repo)
		return false; /* not said: taken as this repository's branch */
	full = hl_json_str(repo, "full_name");
	return !full || !repository || strcasecmp(full, repository) != 0;
}

/* The PR's head ref when the agent can push to it (not a fork's), else NULL. */
static const char *
rem_pr_head_ref(const struct hl_event *ev, const struct hl_context *ctx)
{
	if (!ctx->pr || hl_remediate_pr_from_fork(ctx->pr, ev->repository))
		return NULL;
	return hl_json_str(ctx->pr, "head.ref");
}

/* Where the agent pushes (design "Branch Strategy"): the PR's head, a fix
 * branch for the default branch, else the failing branch (never cut short).
 * A PR from a fork gets a fix branch of its head commit: neither its head
 * ref nor the event's branch (the fork's branch name) is a branch of this
 * repository the fix belongs on. An alert with no branch and no commit gets
 * fix/<type>-alert-<number>; generated names are written to out (size >=
 * 64). */
static const char *
rem_target_branch(char *out, size_t size, const struct hl_event *ev, const struct hl_context *ctx,
                  const char *failure_type)
{
	const char *pr_head = rem_pr_head_ref(ev, ctx);
	char s[32];

	if (ctx->pr && hl_remediate_pr_from_fork(ctx->pr, ev->repository)) {
		const char *sha = hl_json_str(ctx->pr, "head.sha");

		return hl_coderun_target_branch(out, size, NULL, ev->default_branch, NULL,
		                                failure_type, sha ? sha : ev->head_sha);
	}

	if (!pr_head && !(ev->branch && *ev->branch) && !(ev->head_sha && *ev->head_sha) &&
	    ev->alert_number > 0) {
		hl_coderun_failure_short(s, sizeof(s), failure_type);
		snprintf(out, size, "fix/%s-alert-%lld", s, (long long)ev->alert_number);
		return out;
	}
	return hl_coderun_target_branch(out, size, ev->branch, ev->default_branch, pr_head,
	                                failure_type, ev->head_sha);
}

/*
 * The label selector misses a CodeRun whose labels someone edited while it
 * runs: the other running tasks of the run (repository, run_id) in the
 * store, each one's recorded CodeRun asked for by name. 0 and its name
 * (64 bytes) when one is still Pending/Running, 1 when none, <0 when the
 * store or the API did not answer.
 */
struct rem_active_scan {
	struct hl_remediator *r;
	char *name;
	const struct hl_event *ev;
	const char *task_id;
};

/* One running task, for hl_store_task_each: 1 (stop) when it is another
 * task of the run whose CodeRun is still active (name set), 0 to go on,
 * < 0 when the API did not answer. */
static int
rem_active_one(void *p, const struct hl_task_record *t, struct hl_err *err)
{
	struct rem_active_scan *sc = p;
	json_t *cr = NULL;
	int rc;

	if (t->run_id != sc->ev->run_id || strcmp(t->task_id, sc->task_id) == 0 ||
	    !t->coderun_name || !*t->coderun_name)
		return 0;
	rc = hl_dispatch_get(sc->r->dispatch, &cr, t->coderun_name, err);
	if (rc == -HL_ENOTFOUND) {
		rc = 0;
	} else if (rc == 0) {
		rc = hl_dispatch_phase_active(hl_json_str(cr, "status.phase")) ? 1 : 0;
		if (rc == 1)
			rem_set(sc->name, 64, t->coderun_name);
	}
	json_decref(cr);
	return rc;
}

static int
rem_active_recorded(struct hl_remediator *r, char *name, const struct hl_event *ev,
                    const char *task_id, struct hl_err *err)
{
	struct hl_task_query q = { .state = "running", .repository = ev->repository, .limit = 200 };
	struct rem_active_scan sc = { r, name, ev, task_id };
	int rc = hl_store_task_each(r->store, &q, rem_active_one, &sc, err);

	return rc < 0 ? rc : rc == 1 ? 0 : 1;
}

/*
 * 1 when ev is a run of a fork's pull request, its head repository written
 * to head: from a workflow_run's payload, else asked of GitHub; 0 when it
 * is not, or cannot be told (no credentials, a run GitHub does not show,
 * a token GitHub refuses (401, 403), the token's budget spent: the context
 * starves of GitHub's sources then too; logged); an error when GitHub did
 * not answer (the delivery is tried again).
 */
static int
rem_fork_run(struct hl_remediator *r, const struct hl_event *ev, char *head, size_t size,
             struct hl_err *err)
{
	json_t *run = NULL;
	int fork, rc;

	if (ev->kind == HL_EVENT_WORKFLOW_RUN && ev->head_repository) {
		hl_strlcpy(head, ev->head_repository, size);
		return strcasecmp(ev->head_repository, ev->repository) != 0;
	}
	if (ev->run_id <= 0 || !r->github || hl_github_budget_wait_ms(r->github) > 0)
		return 0;
	if ((rc = hl_github_run(r->github, &run, ev->repository, ev->run_id, err)) < 0) {
		if (rc != -HL_ENOTFOUND && rc != -HL_EAUTH &&
		    !(rc == -HL_EUPSTREAM && hl_github_budget_wait_ms(r->github) > 0))
			return rc;
		if (rc != -HL_ENOTFOUND)
			hl_log_kv(HL_LOG_WARN, "telling a fork's run failed; taken as no fork's",
			          "repository", ev->repository, "error", err->msg, NULL);
		*err = (struct hl_err)HL_ERR_INIT;
		return 0;
	}
	fork = hl_github_run_is_fork(run, ev->repository);
	hl_strlcpy(head, hl_json_str_or(run, "head_repository.full_name", "a deleted fork"), size);
	json_decref(run);
	return fork;
}

/* Step 2: the design's guards beyond the key. Returns 1 when the event is
 * existing/skipped (out filled), 0 to go on. */

static int
rem_guards(struct hl_remediator *r, struct hl_remediation *out, const struct hl_event *ev,
           const char *task_id, struct hl_err *err)
{
	char other[HL_TASK_ID_MAX], head[160];
	int rc;

	if (ev->intent != HL_INTENT_CI_FAILURE || !ev->repository)
		return 0;
	/* a fork's pull request run (its workflow the fork's to write, its
	 * branch the fork's) starts nothing on its own: a maintainer's
	 * /healer fix on the pull request does */
	if (ev->command == HL_CMD_NONE &&
	    (rc = rem_fork_run(r, ev, head, sizeof(head), err)) != 0) {
		if (rc < 0)
			return rc;
		rem_set(out->dedup_status, sizeof(out->dedup_status), "skipped");
		snprintf(out->reason, sizeof(out->reason),
		         "fork_run: a run of a pull request from %.100s; /healer fix on the pull "
		         "request remediates it",
		         head);
		return 1;
	}
	/* the same run at the other granularity (workflow_run vs its jobs) */
	if (ev->run_id > 0) {
		rc = hl_store_task_find(r->store, other, ev->repository, NULL, ev->run_id,
		                        ev->job_id > 0 ? HL_TASK_FIND_RUN_LEVEL : HL_TASK_FIND_ANY,
		                        0, task_id, err);
		if (rc == 0) {
			rem_set(out->dedup_status, sizeof(out->dedup_status), "existing");
			snprintf(out->reason, sizeof(out->reason), "run already remediated by %s",
			         other);
			return 1;
		}
		if (rc != -HL_ENOTFOUND)
			return rc;
	}
	/* an active CodeRun for the run: the Kubernetes API is the source of truth
	 * (other replicas, a reset store); in directory mode the store already is.
	 * Found by its labels, else (its labels edited while it runs) by the name
	 * the store recorded for another running task of the run. */
	if (ev->run_id > 0 && r->cfg->dispatch == HL_DISPATCH_KUBERNETES) {
		struct hl_err lerr = HL_ERR_INIT;
		char sel[160], recorded[64];
		json_t *active = NULL;
		snprintf(sel, sizeof(sel),
		         "app.kubernetes.io/name=healer,healer/workflow-run-id=%lld",
		         (long long)ev->run_id);
		if (hl_dispatch_find_active(r->dispatch, &active, sel, err) == 0) {
			json_t *first = json_array_get(active, 0);
			const char *name = hl_json_str(first, "metadata.name");
			const char *owner = hl_json_str(first, "metadata.labels.healer/task-id");
			if (first && (!owner || strcmp(owner, task_id) != 0)) {
				rem_set(out->dedup_status, sizeof(out->dedup_status), "existing");
				rem_set(out->coderun_name, sizeof(out->coderun_name), name);
				snprintf(out->reason, sizeof(out->reason),
				         "CodeRun %s is still active for the run",
				         name ? name : "?");
				json_decref(active);
				return 1;
			}
			json_decref(active);
		}
		rc = rem_active_recorded(r, recorded, ev, task_id, &lerr);
		if (rc == 0) {
			rem_set(out->dedup_status, sizeof(out->dedup_status), "existing");
			rem_set(out->coderun_name, sizeof(out->coderun_name), recorded);
			snprintf(out->reason, sizeof(out->reason),
			         "CodeRun %s is still active for the run", recorded);
			return 1;
		}
		if (rc < 0)
			/* as for the label lookup: a look that failed holds nothing back */
			hl_log_kv(HL_LOG_WARN,
			          "looking for the run's active CodeRuns by name failed", "task_id",
			          task_id, "error", lerr.msg, NULL);
	}
	/* the per-branch window, for other runs (a human's /healer fix is not
	 * held back by it) */
	if (ev->branch && r->cfg->time_window_mins > 0 && ev->command == HL_CMD_NONE) {
		int64_t since = hl_time_wall_ms() - (int64_t)r->cfg->time_window_mins * 60000;
		rc = hl_store_task_find(r->store, other, ev->repository, ev->branch, ev->run_id,
		                        HL_TASK_FIND_OTHER_RUN, since, task_id, err);
		if (rc == 0) {
			rem_set(out->dedup_status, sizeof(out->dedup_status), "skipped");
			snprintf(out->reason, sizeof(out->reason),
			         "branch remediated within %d minutes by %s",
			         r->cfg->time_window_mins, other);
			return 1;
		}
		if (rc != -HL_ENOTFOUND)
			return rc;
	}
	return 0;
}

/* The agents to go to, in order, each once: the winner, the
 * classification's runner-up, then the specialist of the changed files or
 * the default agent (hl_classify_alternate_agent); a retry after the same
 * agent failed twice takes the first one that differs. */
static json_t *
rem_ranked_agents(const struct hl_verdict *v, const struct hl_context *ctx)
{
	const char *order[4] = { v->agent, hl_verdict_runner_up_agent(v), NULL, NULL };
	const char *files[64];
	size_t n = 0, i, k;
	json_t *arr = json_array();

	for (i = 0; i < json_array_size(ctx->changed_files) && n < 64; i++)
		files[n++] = hl_json_str(json_array_get(ctx->changed_files, i), "filename");
	order[2] = hl_classify_alternate_agent(v->agent, v->category, files, n);
	for (i = 0; arr && i < 4; i++) {
		bool seen = !order[i];
		for (k = 0; !seen && k < json_array_size(arr); k++)
			seen = strcmp(json_string_value(json_array_get(arr, k)), order[i]) == 0;
		if (!seen)
			json_array_append_new(arr, json_string(order[i]));
	}
	return arr;
}

int
hl_remediate_begin(struct hl_remediator *r, enum hl_budget_wait *over, char *why, size_t size,
                   const char *task_id, int n, const char *repository, const char *agent,
                   const char *reopen_reason, struct hl_err *err)
{
	return hl_remediate_begin_keep(r, over, why, size, task_id, n, repository, agent,
	                               reopen_reason, NULL, err);
}

int
hl_remediate_begin_keep(struct hl_remediator *r, enum hl_budget_wait *over, char *why, size_t size,
                        const char *task_id, int n, const char *repository, const char *agent,
                        const char *reopen_reason, const char *decision_json, struct hl_err *err)
{
	bool capped = r->cfg->dispatch != HL_DISPATCH_NONE;

	return hl_store_attempt_begin(r->store, over, why, size,
	                              &(struct hl_attempt){ .task_id = task_id,
	                                                    .n = n,
	                                                    .kind = HL_ATTEMPT_AGENT,
	                                                    .phase = HL_PHASE_PREPARING,
	                                                    .outcome = HL_OUTCOME_INVALID,
	                                                    .agent = agent,
	                                                    .repository = repository,
	                                                    .started_ms = hl_time_wall_ms(),
	                                                    .reopen_reason = reopen_reason,
	                                                    .decision_json = decision_json },
	                              capped ? r->cfg->max_active_coderuns : 0,
	                              capped ? r->cfg->max_attempts_per_hour : 0,
	                              hl_time_wall_ms() - 3600 * 1000LL, err);
}

/* The previous attempts as the prompt shows them: the newest max of them
 * (the oldest are left out first). */
static size_t
rem_prompt_attempts(struct hl_prompt_attempt *out, size_t max, const struct hl_task_record *t,
                    int before)
{
	size_t i, k = 0, n = 0, skip;

	for (i = 0; t && i < t->n_attempts; i++)
		n += t->attempt[i].n < before;
	skip = n > max ? n - max : 0;
	for (i = 0; t && i < t->n_attempts && k < max; i++) {
		const struct hl_attempt_record *a = &t->attempt[i];
		if (a->n >= before)
			continue;
		if (skip) {
			skip--;
			continue;
		}
		out[k].number = a->n;
		out[k].agent = a->kind == HL_ATTEMPT_RERUN ? "re-run of the failed jobs" : a->agent;
		out[k].outcome = a->outcome == HL_OUTCOME_INVALID
		                         ? "unfinished"
		                         : hl_attempt_outcome_name(a->outcome);
		out[k].summary = a->reason;
		out[k].coderun = a->coderun_name;
		out[k].status_message = a->status_message;
		out[k].pr_url = a->pr_url;
		k++;
	}
	return k;
}

/* What memory adds to one attempt: the agent learned routing chose (or
 * NULL) with why, the prompt's history and what the decision records. */
struct rem_memory {
	const char *learned; /* the agent learned routing chose, or NULL */
	char why[256];       /* "learned: rex 0/6 on rust_clippy in acme/platform, atlas 3/3" */
	json_t *history;     /* the prompt's history, or NULL */
	json_t *record;      /* the decision's "memory" object */
};

/* Security work and its agent never move (contract section 10). */
static bool
rem_sticky(const struct hl_event *ev, const char *agent, const char *type)
{
	const struct hl_catalog_type *ft = hl_catalog_type_find(type);

	return ev->intent == HL_INTENT_SECURITY || (agent && strcmp(agent, "cipher") == 0) ||
	       (ft && ft->category && ft->category->stays_with_agent);
}

/*
 * Reads memory for an attempt (after classification, before routing and
 * rendering): each agent's record for the repository + type (the ledger;
 * learned routing for a first attempt routed by the rules), and similar
 * past failures (the embedded store, or the OpenMemory matches the context
 * batch brought). A failing read is a log line and no history.
 */
static void
rem_memory(struct hl_remediator *r, struct rem_memory *m, const struct rem_job *j,
           const struct hl_verdict *v, const struct hl_context *ctx, const char *type, bool route)
{
	static const char *const never[] = { "cipher", NULL };
	struct hl_agent_record rec[HL_AGENT_RECORDS_MAX];
	const struct hl_event *ev = j->ev;
	struct hl_err err = HL_ERR_INIT;
	json_t *ids = NULL;
	size_t n = 0;
	int64_t t0 = hl_time_mono_ms();
	bool om = r->cfg->openmemory_url && *r->cfg->openmemory_url;

	memset(m, 0, sizeof(*m));
	if (!ev->repository || !type)
		return;
	if (hl_store_agent_records(r->store, rec, HL_AGENT_RECORDS_MAX, &n, ev->repository, type,
	                           &err) < 0) {
		hl_log_kv(HL_LOG_WARN, "reading the agents' records failed", "task_id", j->task_id,
		          "error", err.msg, NULL);
		n = 0;
	}
	if (route && r->cfg->learned_routing && !rem_sticky(ev, v->agent, type)) {
		const struct hl_agent_record *best = hl_memory_learned_choice(
		        rec, n, v->agent, type, ev->repository, never, m->why, sizeof(m->why));
		if (best)
			m->learned = hl_catalog_agent_find(best->agent)
			                     ? hl_catalog_agent_find(best->agent)->id
			                     : NULL;
	}
	if (om) {
		m->history = ctx->memory
		                     ? hl_memory_history_from_matches(ctx->memory, ev->repository,
		                                                      r->cfg->memory_scope, type,
		                                                      j->task_id, &ids)
		                     : NULL;
	} else if (hl_memory_recall(&m->history, &ids, r->store, ev->repository,
	                            r->cfg->memory_scope, type,
	                            v->evidence_line ? v->evidence_line : ev->failed_step,
	                            j->task_id, &err) < 0) {
		hl_log_kv(HL_LOG_WARN, "reading memory failed; the prompt goes without it",
		          "task_id", j->task_id, "error", err.msg, NULL);
		m->history = NULL;
	}
	if (m->history)
		json_object_set_new(m->history, "agent_records",
		                    hl_memory_agent_records_json(rec, n));
	m->record = json_pack("{s:s, s:o, s:o, s:I}", "backend", om ? "openmemory" : "embedded",
	                      "ids", ids ? ids : json_array(), "agent_records",
	                      hl_memory_agent_records_json(rec, n), "elapsed_ms",
	                      (json_int_t)(hl_time_mono_ms() - t0));
}

/* The attempts whose CodeRun create this process saw answered 401, 403 or
 * 404 ("task_id#n"), with how many times in a row: a few, the oldest
 * replaced when full (one forgotten only starts its count again). */
#define REM_DENIED_SLOTS 64
static struct {
	char name[HL_TASK_ID_MAX + 16];
	int tries;
	int64_t last_ms;
} rem_denied[REM_DENIED_SLOTS];
static pthread_mutex_t rem_denied_lock = PTHREAD_MUTEX_INITIALIZER;

/* Counts one more 401/403/404 on the create of attempt key's CodeRun;
 * returns how many in a row (1 when its last one is older than
 * HL_REMEDIATE_DENIED_FORGET_MS). */
static int
rem_denied_count(const char *key)
{
	int64_t now = hl_time_wall_ms();
	size_t i, pick = 0;
	int tries;

	pthread_mutex_lock(&rem_denied_lock);
	for (i = 0; i < REM_DENIED_SLOTS; i++) {
		if (strcmp(rem_denied[i].name, key) == 0) {
			pick = i;
			break;
		}
		if (rem_denied[i].last_ms < rem_denied[pick].last_ms)
			pick = i;
	}
	if (i == REM_DENIED_SLOTS ||
	    now - rem_denied[pick].last_ms > HL_REMEDIATE_DENIED_FORGET_MS) {
		hl_strlcpy(rem_denied[pick].name, key, sizeof(rem_denied[pick].name));
		rem_denied[pick].tries = 0;
	}
	tries = ++rem_denied[pick].tries;
	rem_denied[pick].last_ms = now;
	if (tries >= HL_REMEDIATE_DENIED_TRIES)
		rem_denied[pick].name[0] = '\0'; /* refused: a later count starts again */
	pthread_mutex_unlock(&rem_denied_lock);
	return tries;
}

bool
hl_remediate_refused(const char *task_id, int n, int *rc, struct hl_err *err)
{
	char key[HL_TASK_ID_MAX + 16], num[16];
	int tries;

	if (*rc == -HL_EINVAL)
		return true;
	if (*rc != -HL_EAUTH && *rc != -HL_ENOTFOUND)
		return false;
	/* credentials being rotated, RBAC or the CRD being applied again: a
	 * refusal only once it persists; until then retried like a 5xx */
	snprintf(key, sizeof(key), "%.*s#%d", HL_TASK_ID_MAX - 1, task_id ? task_id : "", n);
	tries = rem_denied_count(key);
	if (tries >= HL_REMEDIATE_DENIED_TRIES)
		return true;
	snprintf(num, sizeof(num), "%d", tries);
	hl_log_kv(HL_LOG_WARN, "the CodeRun's create was denied; asked again later", "try", num,
	          "error", err ? err->msg : "", NULL);
	if (err)
		err->code = HL_EUPSTREAM;
	*rc = -HL_EUPSTREAM;
	return false;
}

int
hl_remediate_record_refusal(struct hl_remediator *r, char *reason, size_t size, const char *task_id,
                            int n, const char *agent, const char *repository, const char *prompt,
                            struct hl_err *err)
{
	char num[16];
	int64_t now = hl_time_wall_ms();
	int rc;

	snprintf(reason, size, "the CodeRun was refused: %s", err ? err->msg : "");
	/* the API's message may have been cut inside a character: the store
	 * (PostgreSQL) and the notifications take whole ones only */
	reason[hl_utf8_valid_len(reason, strlen(reason))] = '\0';
	snprintf(num, sizeof(num), "%d", n);
	hl_log_kv(HL_LOG_ERROR, "the CodeRun was refused; the task goes to people", "task_id",
	          task_id, "attempt", num, "error", err ? err->msg : "", NULL);
	if (err)
		*err = (struct hl_err)HL_ERR_INIT;
	rc = hl_store_attempt_put(r->store,
	                          &(struct hl_attempt){ .task_id = task_id,
	                                                .n = n,
	                                                .kind = HL_ATTEMPT_AGENT,
	                                                .phase = HL_PHASE_DONE,
	                                                .outcome = HL_OUTCOME_INVALID,
	                                                .agent = agent,
	                                                .reason = reason,
	                                                .prompt = prompt,
	                                                .repository = repository,
	                                                .started_ms = now,
	                                                .finished_ms = now },
	                          err);
	if (rc == 0 && (rc = hl_store_task_schedule(r->store, task_id, now, err)) == 0)
		(void)hl_store_publish(r->store, HL_CHANNEL_TASK, task_id, NULL);
	return rc;
}

/* The CodeRun of attempt j->n was refused: the task keeps what the loop
 * and the escalation need (agent, type, target, PR), then the attempt ends
 * (hl_remediate_record_refusal). */
static int
rem_record_refusal(struct hl_remediator *r, struct hl_remediation *res, const struct rem_job *j,
                   const char *agent, const char *type, const char *target, int64_t pr_number,
                   const char *prompt, struct hl_err *err)
{
	char reason[sizeof(err->msg) + 32];
	struct hl_err why = err ? *err : (struct hl_err)HL_ERR_INIT;
	int rc;

	rc = rem_put_task(r, j, HL_TASK_RUNNING, NULL, agent, type, NULL, target, pr_number, NULL,
	                  hl_time_wall_ms(), err);
	if (rc < 0)
		return rc;
	if (err)
		*err = why;
	rc = hl_remediate_record_refusal(r, reason, sizeof(reason), j->task_id, j->n, agent,
	                                 j->ev->repository, prompt, err);
	rem_set(res->outcome, sizeof(res->outcome), "refused");
	rem_set(res->reason, sizeof(res->reason), reason);
	res->reason[hl_utf8_valid_len(res->reason, strlen(res->reason))] = '\0';
	rem_set(res->coderun_name, sizeof(res->coderun_name), "");
	return rc;
}

/*
 * The CodeRun of attempt j->n that an earlier try of this attempt made but
 * did not record (its create timed out after the API server stored it, or
 * the process was killed in between), found by its labels: a new try may
 * name it otherwise, since its name carries the agent and the failure type
 * and the classification may see other context this time (a log that did
 * not load before); creating by the new name would start a second agent on
 * the same failure. Kubernetes mode only (a file is written or not). On 0
 * name (64 bytes) has its name and *agent and *type what it was made for;
 * 1 when there is none or the API did not answer (logged).
 */
static int
rem_existing_coderun(struct hl_remediator *r, const struct rem_job *j, char *name,
                     const char **agent, const char **type)
{
	struct hl_err lerr = HL_ERR_INIT;
	const struct hl_catalog_agent *ag;
	const struct hl_catalog_type *ft;
	char sel[256], tid[64];
	json_t *list = NULL, *cr;
	int rc;

	if (r->cfg->dispatch != HL_DISPATCH_KUBERNETES)
		return 1;
	hl_str_label_value(tid, j->task_id);
	snprintf(sel, sizeof(sel),
	         "app.kubernetes.io/name=healer,healer/task-id=%s,healer/attempt=%d", tid, j->n);
	if (hl_dispatch_list(r->dispatch, &list, sel, &lerr) < 0) {
		/* the create goes ahead: its name still catches a re-run that
		 * chose the same one (409) */
		hl_log_kv(HL_LOG_WARN, "looking for the attempt's CodeRun failed", "task_id",
		          j->task_id, "error", lerr.msg, NULL);
		return 1;
	}
	cr = json_array_get(list, 0);
	rc = 1;
	if (cr && hl_json_str(cr, "metadata.name")) {
		hl_strlcpy(name, hl_json_str(cr, "metadata.name"), 64);
		ag = hl_catalog_agent_find(hl_json_str(cr, "metadata.labels.healer/agent"));
		ft = hl_catalog_type_find(hl_json_str(cr, "metadata.labels.healer/failure-type"));
		if (ag)
			*agent = ag->id;
		if (ft)
			*type = ft->name;
		hl_log_kv(HL_LOG_INFO, "the attempt's CodeRun exists already; adopted", "task_id",
		          j->task_id, "coderun", name, NULL);
		rc = 0;
	}
	json_decref(list);
	return rc;
}

/*
 * Makes attempt j->n of a claimed task: context, decision, prompt, CodeRun
 * (or, for a flaky runner's first attempt, a re-run), and records the task
 * and the attempt. Every step may be repeated after a crash: the CodeRun is
 * named from the key and the attempt number.
 */
static int
rem_attempt(struct hl_remediator *r, struct hl_remediation *res, const struct rem_job *j,
            struct hl_err *err)
{
	const struct hl_event *ev = j->ev;
	const struct hl_attempt_plan *plan = j->plan;
	const struct hl_task_record *task = plan ? plan->task : NULL;
	struct hl_context ctx;
	struct hl_verdict v;
	struct hl_context_clients cc;
	struct hl_context_retry retry = { 0 };
	struct hl_prompt_attempt prev[16];
	struct rem_memory mem = { 0 };
	enum hl_dispatch_outcome dout = HL_DISPATCH_DRY_RUN;
	char fix_branch[64], name[64];
	const char *target;
	char *prompt = NULL;
	json_t *manifest = NULL, *decision = NULL;
	const char *agent, *type;
	bool have_verdict = false, rerun = false;
	int64_t t0 = hl_time_mono_ms(), marks[REM_STEPS] = { 0 }, now;
	int64_t pr_number = ev->pr_number;
	int rc;

	memset(&v, 0, sizeof(v));
	hl_context_init(&ctx);
	marks[REM_CLAIM] = marks[REM_GUARDS] = t0;
	/* 3. context, decision, prompt */
	cc = (struct hl_context_clients){
		.cfg = r->cfg,
		.github = r->github,
		.kube = r->kube,
		.timeout_ms = r->cfg->source_timeout_ms,
		.deadline_ms = hl_time_mono_ms() + r->cfg->context_timeout_ms,
	};
	if (j->n > 1 && plan) {
		retry.current_job_id = plan->current_job_id;
		retry.agent_pod = plan->agent_pod;
		retry.failing_sha = task ? task->head_sha : NULL;
		retry.head_ref = task ? task->target_branch : NULL;
		cc.retry = &retry;
	}
	if (ev->intent == HL_INTENT_SECURITY) {
		/* an alert carries its own context; only the repository's PR state
		 * could add to it, and Cipher does not need the CI sources */
		ctx.changed_files = json_array();
	} else if ((rc = hl_context_gather(&ctx, &cc, ev, err)) < 0) {
		goto out;
	}
	if (j->n == 1 && ev->intent == HL_INTENT_CI_FAILURE && !ev->commit_message &&
	    ctx.commit_message && hl_event_has_skip_tag(ctx.commit_message)) {
		/* the skip tag of a job's commit is only known once it is fetched */
		rem_set(res->dedup_status, sizeof(res->dedup_status), "skipped");
		rem_set(res->reason, sizeof(res->reason), "skip_tag");
		rem_set(res->outcome, sizeof(res->outcome), "skipped");
		/* the attempt hl_remediate_begin recorded ends unmade: left
		 * preparing, it would hold its CodeRun slot for good */
		rc = hl_store_attempt_put(r->store,
		                          &(struct hl_attempt){ .task_id = j->task_id,
		                                                .n = j->n,
		                                                .kind = HL_ATTEMPT_AGENT,
		                                                .phase = HL_PHASE_DONE,
		                                                .outcome = HL_OUTCOME_INVALID,
		                                                .reason = "skip_tag",
		                                                .repository = ev->repository,
		                                                .finished_ms = hl_time_wall_ms() },
		                          err);
		if (rc == 0)
			rc = rem_put_task(r, j, HL_TASK_SKIPPED, "skip_tag", NULL, NULL, NULL, NULL,
			                  0, NULL, HL_TASK_NO_CHECK, err);
		goto out;
	}
	marks[REM_CONTEXT] = hl_time_mono_ms();
	if ((rc = rem_classify(r, &v, ev, &ctx, err)) < 0)
		goto out;
	have_verdict = true;
	marks[REM_CLASSIFY] = hl_time_mono_ms();
	agent = plan && plan->agent ? plan->agent : v.agent;
	type = plan && plan->failure_type ? plan->failure_type : v.failure_type;
	/* memory: history for the prompt; learned routing for a first attempt
	 * the rules route */
	rem_memory(r, &mem, j, &v, &ctx, type, j->n == 1 && !(plan && plan->agent));
	if (mem.learned) {
		hl_log_kv(HL_LOG_INFO, "learned routing", "task_id", j->task_id, "from", agent,
		          "to", mem.learned, "evidence", mem.why, NULL);
		agent = mem.learned;
	}
	rem_set(res->agent, sizeof(res->agent), agent);
	rem_set(res->failure_type, sizeof(res->failure_type), type);
	if (!pr_number && ctx.pr)
		pr_number = hl_json_int(ctx.pr, "number", 0);
	if (task && task->target_branch)
		target = task->target_branch;
	else
		target = rem_target_branch(fix_branch, sizeof(fix_branch), ev, &ctx, type);

	/* a flaky runner is re-run before any agent is spent (GitHub refusing,
	 * the agent goes); a run still going (its other jobs run on: GitHub
	 * re-runs only a finished run) or a GitHub that did not answer is
	 * asked again later, the delivery kept, for REM_RERUN_WAIT_MS from the
	 * task's claim */
	if (j->n == 1 && strcmp(type, "infra_runner") == 0 && ev->intent == HL_INTENT_CI_FAILURE &&
	    ev->run_id > 0 && r->github && r->cfg->dispatch != HL_DISPATCH_NONE) {
		struct hl_err rerr = HL_ERR_INIT;
		bool adopt = false;
		int rr;

		/* marked before it is asked for (or adopted, asked before) */
		if ((rc = rem_rerun_mark(r, j, &adopt, err)) < 0)
			goto out;
		rr = adopt ? 0
		           : hl_github_rerun_failed_jobs(r->github, ev->repository, ev->run_id,
		                                         &rerr);
		rerun = rr == 0;
		if ((rr == -HL_EUPSTREAM || rr == -HL_ETIMEOUT) && rem_rerun_may_wait(r, j)) {
			hl_log_kv(HL_LOG_INFO, "the failed jobs are re-run later", "task_id",
			          j->task_id, "reason", rerr.msg, NULL);
			rc = hl_err_set(err, HL_EUPSTREAM, "re-running run %lld later: %s",
			                (long long)ev->run_id, rerr.msg);
			goto out;
		}
		if (!rerun)
			hl_log_kv(HL_LOG_WARN,
			          "re-running the failed jobs was refused; an agent goes", "error",
			          rerr.msg, NULL);
	}
	if (!rerun) {
		struct hl_prompt_inputs pin = { .event = ev,
			                        .verdict = &v,
			                        .context = &ctx,
			                        .task_id = j->task_id,
			                        .target_branch = target,
			                        .agent = agent,
			                        .failure_type = type,
			                        .attempt = j->n,
			                        .max_attempts = r->cfg->max_attempts,
			                        .hint = plan ? plan->hint : NULL,
			                        .ci_status = plan ? plan->ci_status : NULL,
			                        .failure_output =
			                                plan ? plan->failure_output : NULL,
			                        .history = mem.history };
		pin.previous = prev;
		pin.n_previous = rem_prompt_attempts(prev, 16, task, j->n);
		if ((rc = hl_prompt_builder_render(r->prompts, &prompt, &pin, err)) < 0)
			goto out;
	}
	marks[REM_PROMPT] = hl_time_mono_ms();

	/* 4. CodeRun */
	name[0] = '\0';
	if (!rerun) {
		struct hl_coderun_spec spec = {
			.agent = agent,
			.failure_type = type,
			.repository = ev->repository,
			.branch = ev->branch,
			.default_branch = ev->default_branch,
			.head_sha = ev->head_sha,
			.pr_head_ref = rem_pr_head_ref(ev, &ctx),
			.target_branch = target,
			.pr_number = pr_number,
			.workflow_run_id = ev->run_id,
			.task_id = j->task_id,
			.attempt = j->n,
			.dedup_key = j->key,
			.prompt = prompt,
			.cli = r->cfg->cli,
			.model = r->cfg->model,
			.namespace = r->cfg->namespace,
		};
		if (rem_existing_coderun(r, j, name, &agent, &type) == 0) {
			/* made by an earlier try of this attempt: adopted */
			dout = HL_DISPATCH_EXISTING;
			rem_set(res->agent, sizeof(res->agent), agent);
			rem_set(res->failure_type, sizeof(res->failure_type), type);
		} else if ((rc = hl_coderun_build(&manifest, &spec, err)) < 0) {
			goto out;
		} else if ((rc = hl_dispatch_submit(r->dispatch, &dout, name, manifest, err)) < 0) {
			if (hl_remediate_refused(j->task_id, j->n, &rc, err))
				rc = rem_record_refusal(r, res, j, agent, type, target, pr_number,
				                        prompt, err);
			goto out;
		}
	}
	rem_set(res->coderun_name, sizeof(res->coderun_name), name);
	if (dout == HL_DISPATCH_EXISTING)
		rem_set(res->dedup_status, sizeof(res->dedup_status), "existing");
	rem_set(res->outcome, sizeof(res->outcome),
	        rerun                          ? "rerun"
	        : dout == HL_DISPATCH_DRY_RUN  ? "decided"
	        : dout == HL_DISPATCH_EXISTING ? "existing"
	                                       : "dispatched");

	marks[REM_DISPATCH] = hl_time_mono_ms();
	/* 5. record: the decision is the first attempt's (later attempts keep it) */
	if (j->n == 1) {
		decision = rem_decision_json(&v, &ctx, res, target, prompt ? strlen(prompt) : 0,
		                             rerun ? "rerun" : hl_dispatch_outcome_name(dout));
		if (decision) {
			json_t *ranked = rem_ranked_agents(&v, &ctx);

			json_object_set_new(decision, "timings_ms", rem_timings_json(t0, marks));
			if (mem.learned) {
				/* the learned agent goes first, the rules' next */
				json_t *first = json_string(mem.learned);
				size_t i;

				for (i = 0; i < json_array_size(ranked); i++)
					if (strcmp(json_string_value(json_array_get(ranked, i)),
					           mem.learned) == 0)
						json_array_remove(ranked, i--);
				json_array_insert_new(ranked, 0, first);
				json_object_set_new(decision, "agent", json_string(mem.learned));
				json_object_set_new(json_object_get(decision, "evidence"),
				                    "routing", json_string(mem.why));
			}
			json_object_set_new(decision, "routing",
			                    json_pack("{s:s, s:s?, s:s?}", "rule_agent", v.agent,
			                              "learned", mem.learned, "evidence",
			                              mem.learned ? mem.why : NULL));
			json_object_set_new(decision, "ranked_agents", ranked);
			if (mem.record)
				json_object_set(decision, "memory", mem.record);
		}
	}
	now = hl_time_wall_ms();
	/* decided only (no dispatch target): nothing will run, and no CodeRun
	 * has the name it would have had (kept in the decision's "coderun") */
	if (dout == HL_DISPATCH_DRY_RUN && !rerun) {
		name[0] = '\0';
		res->coderun_name[0] = '\0';
	}
	rc = rem_put_task(r, j,
	                  dout == HL_DISPATCH_DRY_RUN && !rerun ? HL_TASK_SKIPPED : HL_TASK_RUNNING,
	                  dout == HL_DISPATCH_DRY_RUN && !rerun ? "decide_only" : NULL, agent, type,
	                  name, target, pr_number, decision,
	                  dout == HL_DISPATCH_DRY_RUN && !rerun
	                          ? HL_TASK_NO_CHECK
	                          : now + (rerun ? (int64_t)r->cfg->verify_timeout_mins
	                                         : (int64_t)r->cfg->attempt_timeout_mins) *
	                                            60000,
	                  err);
	if (rc < 0)
		goto out;
	rc = hl_store_attempt_put(
	        r->store,
	        &(struct hl_attempt){ .task_id = j->task_id,
	                              .n = j->n,
	                              .kind = rerun ? HL_ATTEMPT_RERUN : HL_ATTEMPT_AGENT,
	                              .phase = rerun                         ? HL_PHASE_VERIFYING
	                                       : dout == HL_DISPATCH_DRY_RUN ? HL_PHASE_DONE
	                                                                     : HL_PHASE_PENDING,
	                              .outcome = HL_OUTCOME_INVALID,
	                              .agent = rerun ? NULL : agent,
	                              .coderun_name = name,
	                              .prompt = prompt,
	                              .repository = ev->repository,
	                              .started_ms = now,
	                              /* decided only: done as it starts */
	                              .finished_ms =
	                                      dout == HL_DISPATCH_DRY_RUN && !rerun ? now : 0 },
	        err);
	/* A replay (the CodeRun was there already): the watch may have recorded
	 * its status meanwhile, so the task is judged at once rather than at
	 * the attempt's timeout set above. */
	if (rc == 0 && dout == HL_DISPATCH_EXISTING && !rerun &&
	    (rc = hl_store_task_schedule(r->store, j->task_id, now, err)) == 0)
		(void)hl_store_publish(r->store, HL_CHANNEL_TASK, j->task_id, NULL);
out:
	if (have_verdict)
		hl_verdict_release(&v);
	json_decref(mem.history);
	json_decref(mem.record);
	hl_context_release(&ctx);
	json_decref(manifest);
	json_decref(decision);
	free(prompt);
	return rc;
}

/*
 * The workflow run of a failed check suite, when the suite is a GitHub
 * Actions run's (GET .../actions/runs?check_suite_id=): 0 for another
 * app's suite, without a GitHub client, or when GitHub does not answer
 * (the suite is then remediated on its own). A check_suite payload names
 * no run, so without this the suite and the run's workflow_run or
 * workflow_job events of the same failure were two tasks when the
 * per-branch window did not join them.
 */
static int64_t
rem_suite_run(struct hl_remediator *r, const struct hl_event *ev, int64_t *attempt)
{
	struct hl_github_runs_query q = { .check_suite_id = ev->check_suite_id, .max_runs = 1 };
	struct hl_err gerr = HL_ERR_INIT;
	json_t *runs = NULL;
	int64_t id = 0;

	if (ev->kind != HL_EVENT_CHECK_SUITE || ev->run_id > 0 || ev->check_suite_id <= 0 ||
	    !r->github || !ev->repository)
		return 0;
	if (hl_github_workflow_runs(r->github, &runs, ev->repository, &q, &gerr) < 0) {
		hl_log_kv(HL_LOG_WARN, "finding the workflow run of a check suite failed",
		          "repository", ev->repository, "error", gerr.msg, NULL);
		return 0;
	}
	id = hl_json_int(json_array_get(runs, 0), "id", 0);
	*attempt = hl_json_int(json_array_get(runs, 0), "run_attempt", 0);
	json_decref(runs);
	return id > 0 ? id : 0;
}

/*
 * The workflow run of a GitHub Actions check run (its details_url names the
 * run; normalize.c and /healer fix set run_id from it): the run as GitHub
 * shows it (GET .../actions/runs/{id}), whose "name" is the workflow's.
 * NULL for another app's check run, without a GitHub client, or when
 * GitHub does not answer. A check_run payload names no workflow, so
 * without it the task had none, and no later result of the job (a
 * workflow_job event, matched by workflow + job) was ever its CI status:
 * a fix that passed was judged ci_still_failing at the verify timeout.
 */
static json_t *
rem_check_run_run(struct hl_remediator *r, const struct hl_event *ev)
{
	struct hl_err gerr = HL_ERR_INIT;
	json_t *run = NULL;

	if (ev->kind != HL_EVENT_CHECK_RUN || ev->run_id <= 0 || ev->workflow_name || !r->github ||
	    !ev->repository)
		return NULL;
	if (hl_github_run(r->github, &run, ev->repository, ev->run_id, &gerr) < 0 ||
	    !hl_json_str(run, "name")) {
		hl_log_kv(HL_LOG_WARN, "finding the workflow of a check run failed", "repository",
		          ev->repository, "error", gerr.msg[0] ? gerr.msg : "the run has no name",
		          NULL);
		json_decref(run);
		run = NULL;
	}
	return run;
}

/*
 * The PR of a failure that waits for a budget: the event's, else the open PR
 * of its branch (a job's events name none; a running task learns it with
 * its context, a queued one has none yet), so /healer stop on that PR finds
 * the queued task. 0 when there is none or GitHub does not answer (logged).
 */
static int64_t
rem_queued_pr(struct hl_remediator *r, const struct hl_event *ev)
{
	struct hl_err gerr = HL_ERR_INIT;
	json_t *pr = NULL;
	int64_t n = 0;
	int rc;

	if (ev->pr_number > 0 || !r->github || !ev->repository || !ev->branch || !*ev->branch)
		return ev->pr_number;
	rc = hl_github_pr_for_branch(r->github, &pr, ev->repository, ev->branch, &gerr);
	if (rc == 0 && !hl_remediate_pr_from_fork(pr, ev->repository))
		n = hl_json_int(pr, "number", 0);
	else if (rc < 0 && rc != -HL_ENOTFOUND)
		hl_log_kv(HL_LOG_WARN, "finding the PR of a queued task's branch failed",
		          "repository", ev->repository, "error", gerr.msg, NULL);
	json_decref(pr);
	return n;
}

/* Takes task_id's lease as this delivery's remediation (owner gets its
 * name, "remediate:<task>@<this process's store owner>": the delivery
 * processed again by the same process takes its own lease back; processed
 * by another, it takes the lease over only once it ran out or its holder
 * died, which the store decides in the same statement, so two live
 * replicas never both decide the task); HL_EUPSTREAM (the delivery is
 * given back) while another holds it. */
static int
rem_lease(struct hl_remediator *r, char *owner, size_t size, const char *task_id,
          struct hl_err *err)
{
	int64_t now = hl_time_wall_ms();
	bool got = false;
	int rc;

	snprintf(owner, size, "remediate:%s@%s", task_id, hl_store_owner(r->store));
	if ((rc = hl_store_task_lease(r->store, &got, task_id, owner, now,
	                              now + (int64_t)r->cfg->lease_seconds * 1000, err)) < 0)
		return rc;
	return got ? 0 : hl_err_set(err, HL_EUPSTREAM, "task '%s' is busy", task_id);
}

/* out answers with what task t decided (a failure already remediated). */
static void
rem_existing(struct hl_remediation *out, const struct hl_task_record *t)
{
	rem_set(out->dedup_status, sizeof(out->dedup_status), "existing");
	rem_set(out->coderun_name, sizeof(out->coderun_name), t->coderun_name);
	rem_set(out->agent, sizeof(out->agent), t->agent);
	rem_set(out->failure_type, sizeof(out->failure_type), t->failure_type);
}

/*
 * Before the claim: a failure of a run another task remediates at the
 * other granularity (the workflow_run after its job's task, a job after
 * the run's) is attached to that task (outcome "attached", out naming the
 * task, its agent, type and CodeRun) and starts no task of its own. 1 when
 * it is, 0 to go on (no such task, or this delivery's own task exists: a
 * resumed claim, guarded after it), or < 0.
 */
static int
rem_run_owner(struct hl_remediator *r, struct hl_remediation *out, const struct hl_event *ev,
              const char *task_id, struct hl_err *err)
{
	struct hl_task_record *t = NULL;
	char other[HL_TASK_ID_MAX];
	int rc;

	if (ev->intent != HL_INTENT_CI_FAILURE || !ev->repository || ev->run_id <= 0)
		return 0;
	rc = hl_store_task_find(r->store, other, ev->repository, NULL, ev->run_id,
	                        ev->job_id > 0 ? HL_TASK_FIND_RUN_LEVEL : HL_TASK_FIND_ANY, 0,
	                        task_id, err);
	if (rc == -HL_ENOTFOUND)
		return 0;
	if (rc < 0)
		return rc;
	rc = hl_store_task_get(r->store, &t, task_id, err);
	hl_task_record_free(t);
	if (rc == 0)
		return 0;
	if (rc != -HL_ENOTFOUND)
		return rc; /* not known to have no task: the delivery is tried again */
	rem_set(out->task_id, sizeof(out->task_id), other);
	rem_set(out->outcome, sizeof(out->outcome), "attached");
	snprintf(out->reason, sizeof(out->reason), "run already remediated by %s", other);
	if (hl_store_task_get(r->store, &t, other, NULL) == 0) {
		rem_existing(out, t);
		if (t->n_attempts)
			rem_set(out->coderun_name, sizeof(out->coderun_name),
			        t->attempt[t->n_attempts - 1].coderun_name);
		hl_task_record_free(t);
	}
	rem_set(out->dedup_status, sizeof(out->dedup_status), "existing");
	return 1;
}

/*
 * The claim found this delivery's own task: it is processed again (a
 * restart cut it short, another replica took over its claim, a command was
 * given back). Its remediation resumes only while its first attempt is
 * still being prepared (no CodeRun recorded: hl_remediate_begin's row, or
 * none); past that the loop drives the task, and deciding it again would
 * overwrite what it reached (a later attempt, a stop, an end). 1 with out
 * saying so, 0 to resume.
 */
static int
rem_own_task_decided(struct hl_remediator *r, struct hl_remediation *out, const char *task_id,
                     struct hl_err *err)
{
	struct hl_task_record *t = NULL;
	int rc = hl_store_task_get(r->store, &t, task_id, err);

	if (rc < 0)
		return rc;
	if ((t->state == HL_TASK_RUNNING || t->state == HL_TASK_QUEUED) &&
	    (t->n_attempts == 0 ||
	     (t->n_attempts == 1 && t->attempt[0].phase == HL_PHASE_PREPARING))) {
		hl_task_record_free(t);
		return 0;
	}
	rem_existing(out, t);
	rem_set(out->outcome, sizeof(out->outcome), "existing");
	snprintf(out->reason, sizeof(out->reason), "already decided: the task is %s",
	         hl_task_state_name(t->state));
	hl_task_record_free(t);
	return 1;
}

/* The most generations of one alert a claim looks through. */
#define REM_ALERT_MAX_GENERATIONS 1000

/*
 * An alert is remediated by one task at a time: its claims use its key
 * (hl_event_remediation_key), "<key>|generation=<n>" past the first
 * generation. After the claim of generation gen found a task (created
 * false): this delivery's own task -> *gkey becomes the key that task holds
 * (0); another task still open (queued, running, verifying) -> this
 * delivery is that task's (0); another task that has ended (succeeded,
 * escalated, stopped, skipped) -> the alert, open again, was not fixed for
 * good: *gkey becomes the next generation's key to claim (1). Generations
 * are claimed in order under the store's unique key, so replicas agree on
 * one task per generation. Negative on error.
 */
static int
rem_alert_next(struct hl_remediator *r, char **gkey, const char *key, bool created,
               const char *existing, const char *task_id, int gen, struct hl_err *err)
{
	struct hl_task_record *t = NULL;
	char *next = NULL;
	bool ended;
	int rc;

	if (created)
		return 0;
	if ((rc = hl_store_task_get(r->store, &t, existing, err)) < 0)
		return rc;
	if (strcmp(existing, task_id) == 0) {
		if (t->dedup_key && !(next = strdup(t->dedup_key)))
			rc = hl_err_set(err, HL_ENOMEM, "out of memory");
		hl_task_record_free(t);
		if (next) {
			free(*gkey);
			*gkey = next;
		}
		return rc;
	}
	ended = hl_task_state_is_final(t->state) || t->state == HL_TASK_ESCALATED;
	hl_task_record_free(t);
	if (!ended || gen >= REM_ALERT_MAX_GENERATIONS)
		return 0;
	if (!(next = malloc(strlen(key) + 32)))
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	sprintf(next, "%s|generation=%d", key, gen + 1);
	free(*gkey);
	*gkey = next;
	return 1;
}

int
hl_remediate(struct hl_remediator *r, struct hl_remediation *out, const struct hl_event *ev,
             const char *task_id, const char *failure_key, struct hl_err *err)
{
	struct hl_remediation res;
	struct hl_event suite, check;
	json_t *check_run_run = NULL, *evj;
	char *evs = NULL;
	int64_t run_id, attempt = 0;
	char existing[HL_TASK_ID_MAX], why[160], owner[HL_TASK_ID_MAX + 128];
	char *key = NULL, *gkey = NULL;
	enum hl_budget_wait over = HL_BUDGET_NONE;
	bool created = false, leased = false;
	struct rem_job j;
	int rc, gen;

	memset(&res, 0, sizeof(res));
	rem_set(res.task_id, sizeof(res.task_id), task_id);
	/* an Actions check suite is its workflow run: recorded on the task and
	 * guarded like the run's own events (a shallow copy, borrowed fields) */
	if ((run_id = rem_suite_run(r, ev, &attempt)) > 0) {
		suite = *ev;
		suite.run_id = run_id;
		suite.run_attempt = attempt;
		ev = &suite;
	}
	/* an Actions check run is a job of a workflow run: the task records
	 * the workflow, so the job's later results are the task's (a shallow
	 * copy, borrowing the run's name) */
	if ((check_run_run = rem_check_run_run(r, ev)) != NULL) {
		check = *ev;
		check.workflow_name = (char *)hl_json_str(check_run_run, "name");
		if (!check.run_attempt)
			check.run_attempt = hl_json_int(check_run_run, "run_attempt", 0);
		ev = &check;
	}
	/* deliveries stored before identity was kept at intake carry none */
	key = failure_key ? strdup(failure_key) : hl_event_remediation_key(ev);
	if (!key) {
		json_decref(check_run_run);
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	}
	/* the same run at the other granularity already has its task: this
	 * delivery is that task's, with no task of its own */
	if ((rc = rem_run_owner(r, &res, ev, task_id, err)) != 0) {
		if (rc < 0)
			goto out;
		goto done;
	}
	/* the event goes with the claim: a first attempt this delivery does
	 * not finish (a crash, a delivery failing for good) is made from it */
	if ((evj = hl_event_to_json(ev)) != NULL)
		evs = json_dumps(evj, JSON_COMPACT);
	json_decref(evj);
	/* 1. claim (an alert: the generation its open task holds, or the next) */
	for (gen = 1;; gen++) {
		rc = hl_store_task_claim(
		        r->store, &created, existing,
		        &(struct hl_task){ .task_id = task_id,
		                           .dedup_key = gkey ? gkey : key,
		                           .repository = ev->repository,
		                           .run_id = ev->run_id,
		                           .job = ev->job_name,
		                           .workflow = ev->workflow_name,
		                           .branch = ev->branch,
		                           /* a stop by the PR's branch tells its commit */
		                           .head_sha = ev->head_sha,
		                           /* /healer stop on the PR finds it from now */
		                           .pr_number = ev->pr_number > 0 ? ev->pr_number : 0,
		                           .kind = rem_kind(ev),
		                           .event_json = evs,
		                           .state = HL_TASK_RUNNING,
		                           .attempts = 1,
		                           /* a claim that never gets its
		                            * CodeRun times out like one */
		                           .next_check_ms =
		                                   hl_time_wall_ms() +
		                                   (int64_t)r->cfg->attempt_timeout_mins * 60000 },
		        err);
		if (rc < 0 || !hl_event_is_alert(ev) ||
		    (rc = rem_alert_next(r, &gkey, key, created, existing, task_id, gen, err)) <= 0)
			break;
	}
	if (gkey) {
		free(key);
		key = gkey;
	}
	if (rc < 0)
		goto out;
	j = (struct rem_job){ .ev = ev, .task_id = task_id, .key = key, .n = 1, .plan = NULL };
	/* the task's lease while its first attempt is decided: a command on
	 * it (/healer stop), a driver starting it from the queue, or this
	 * delivery processed again elsewhere waits for the decision instead
	 * of interleaving with it (held by the store's keeper until released) */
	if (created || strcmp(existing, task_id) == 0) {
		if ((rc = rem_lease(r, owner, sizeof(owner), task_id, err)) < 0)
			goto out;
		leased = true;
	}
	if (!created && strcmp(existing, task_id) == 0 &&
	    (rc = rem_own_task_decided(r, &res, task_id, err)) != 0) {
		if (rc < 0)
			goto out;
		goto done;
	}
	if (!created && strcmp(existing, task_id) != 0) {
		struct hl_task_record *t = NULL;
		rem_set(res.dedup_status, sizeof(res.dedup_status), "existing");
		snprintf(res.reason, sizeof(res.reason), "failure already remediated by %s",
		         existing);
		/* the decision names the task that remediates it (this
		 * delivery's own task id names none) */
		rem_set(res.task_id, sizeof(res.task_id), existing);
		if (hl_store_task_get(r->store, &t, existing, NULL) == 0) {
			rem_existing(&res, t);
			hl_task_record_free(t);
		}
		rem_set(res.outcome, sizeof(res.outcome), "existing");
		goto done;
	}
	/* 2. guards (a resumed claim of our own task passes through again) */
	rc = rem_guards(r, &res, ev, task_id, err);
	if (rc < 0)
		goto out;
	if (rc == 1) {
		rem_set(res.outcome, sizeof(res.outcome), res.dedup_status);
		rc = rem_put_task(r, &j, HL_TASK_SKIPPED, res.reason, NULL, NULL,
		                  res.coderun_name[0] ? res.coderun_name : NULL, NULL, 0, NULL,
		                  HL_TASK_NO_CHECK, err);
		if (rc < 0)
			goto out;
		goto done;
	}
	rem_set(res.dedup_status, sizeof(res.dedup_status), "new");
	/* budgets: over them the task waits, durably, in FIFO order; under
	 * them the attempt takes its slot before anything else happens */
	if ((rc = hl_remediate_begin(r, &over, why, sizeof(why), task_id, 1, ev->repository, NULL,
	                             NULL, err)) < 0)
		goto out;
	if (over) {
		rem_set(res.outcome, sizeof(res.outcome), "queued");
		rem_set(res.reason, sizeof(res.reason), why);
		if ((rc = rem_put_task(r, &j, HL_TASK_QUEUED, why, NULL, NULL, NULL, NULL,
		                       rem_queued_pr(r, ev), NULL, HL_TASK_NO_CHECK, err)) < 0)
			goto out;
		goto done;
	}
	/* 3.-5. the first attempt */
	if ((rc = rem_attempt(r, &res, &j, err)) < 0)
		goto out;
done:
	*out = res;
	rc = 0;
out:
	if (leased)
		(void)hl_store_task_release(r->store, task_id, owner, NULL);
	free(key);
	free(evs);
	json_decref(check_run_run);
	return rc;
}

int
hl_remediate_attempt(struct hl_remediator *r, struct hl_remediation *out,
                     const struct hl_task_record *task, const struct hl_attempt_plan *plan,
                     struct hl_err *err)
{
	struct hl_remediation res;
	struct hl_event *ev = NULL;
	json_t *evj = NULL;
	struct rem_job j;
	size_t i;
	int rc;

	for (i = 0; task->kind && i < r->n_kinds; i++)
		if (strcmp(r->kinds[i].kind, task->kind) == 0)
			return r->kinds[i].fn(r->kinds[i].arg, out, task, plan, err);
	if (!task->event_json || !(evj = json_loads(task->event_json, 0, NULL)))
		return hl_err_set(err, HL_EINVAL, "task '%s' has no stored event", task->task_id);
	rc = hl_event_from_json(&ev, evj, err);
	json_decref(evj);
	if (rc < 0)
		return rc;
	if (plan->hint) {
		/* a human asked for this attempt (/healer retry): the prompt says
		 * so, crediting them (not who sent the stored event) */
		free(ev->command_hint);
		ev->command_hint = strdup(plan->hint);
		ev->command = HL_CMD_RETRY;
		if (plan->hint_author && *plan->hint_author) {
			free(ev->sender);
			ev->sender = strdup(plan->hint_author);
		}
		if (!ev->command_hint || (plan->hint_author && *plan->hint_author && !ev->sender)) {
			hl_event_free(ev);
			return hl_err_set(err, HL_ENOMEM, "out of memory");
		}
	}
	memset(&res, 0, sizeof(res));
	rem_set(res.task_id, sizeof(res.task_id), task->task_id);
	rem_set(res.dedup_status, sizeof(res.dedup_status), "new");
	j = (struct rem_job){ .ev = ev,
		              .task_id = task->task_id,
		              .key = task->dedup_key,
		              .n = plan->n,
		              .plan = plan };
	rc = rem_attempt(r, &res, &j, err);
	if (rc == 0)
		*out = res;
	hl_event_free(ev);
	return rc;
}
