/*
 * observe.c - one CodeRun's status, as the watch or a CodeRun file shows
 * it, written to its attempt (see loop_impl.h).
 *
 * Idempotent: a status already recorded (the same phase, message and PR)
 * changes nothing, so a relist, a restart or a second replica replaying the
 * same object applies no transition twice (an ended one only makes its
 * task due again, in case the first schedule was lost). A phase never goes
 * back (a stale Running after Succeeded is ignored), also when two threads
 * race: the watcher and a driver applying a kept object each read the
 * attempt before writing, and the store drops a write whose CodeRun phase
 * ranks below the recorded one (HL_STORE_ATTEMPT_CODERUN_SET). When the
 * CodeRun ended, the attempt is marked for judgement (phase verifying, the
 * end time kept) and its task is made due, which wakes the drivers. The
 * agent's pod (whose log the next prompt quotes) is looked up before that
 * write and written with it, so a driver never judges an ended attempt
 * while its pod is still being asked for.
 *
 * The remediation records an attempt's CodeRun right after creating it, so
 * the watch may show a CodeRun (even finished) before its attempt exists.
 * Such a CodeRun of healer's (labelled healer/task-id) is kept in
 * l->pending and applied by the drivers once the attempt is there, for up
 * to LOOP_PENDING_MS from its creation (metadata.creationTimestamp): one
 * older than that belongs to no task of this store; a newer object of the
 * same name replaces the kept one.
 */
#include "base/clock.h"
#include "base/log.h"
#include "base/str.h"
#include "loop_impl.h"

#include "json/json.h"
#include <stdlib.h>
#include <string.h>

/* Order of the CodeRun phases; -1 for an unknown one. */
static int
observe_rank(const char *phase)
{
	static const char *const order[] = { "Pending", "Running", "Succeeded", "Failed" };
	size_t i;

	for (i = 0; phase && i < sizeof(order) / sizeof(order[0]); i++)
		if (strcmp(order[i], phase) == 0)
			return i >= 2 ? 2 : (int)i;
	return phase && *phase ? -1 : 0;
}

static bool
observe_same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

bool
hl_loop_job_pod(struct hl_loop *l, const char *job, char *pod, size_t size)
{
	struct hl_err err = HL_ERR_INIT;
	json_t *pods = NULL, *items;
	const char *name = NULL;

	if (!l->kube || !job || !*job)
		return false;
	if (hl_kube_job_pods(l->kube, &pods, l->cfg->namespace, job, &err) < 0) {
		hl_log_kv(HL_LOG_WARN, "listing the agent's pods failed", "job", job, "error",
		          err.msg, NULL);
		return false;
	}
	items = json_object_get(pods, "items");
	if (json_array_size(items) > 0)
		name = hl_json_str(json_array_get(items, json_array_size(items) - 1),
		                   "metadata.name");
	if (name)
		hl_strlcpy(pod, name, size);
	json_decref(pods);
	return name != NULL;
}

/* The longest CodeRun status message kept (bytes): a prompt quotes 2000 of
 * it, a message less; one of megabytes (a broken controller, a hostile API
 * server) is not written again at every event. */
#define OBSERVE_MESSAGE_MAX 8192
/* The longest pullRequestUrl kept (bytes); a longer one is none. */
#define OBSERVE_URL_MAX 2048

/* The longest status message a waiting CodeRun keeps (bytes): its first
 * OBSERVE_MESSAGE_MAX are what is stored once it is applied. */
#define OBSERVE_KEEP_MESSAGE_MAX (2 * OBSERVE_MESSAGE_MAX)

/* What observe_one reads of cr, bounded: a waiting CodeRun costs kilobytes,
 * not the 16 MiB a watch line may hold (a broken controller, a hostile API
 * server), times LOOP_PENDING_MAX. NULL when out of memory. */
static json_t *
observe_trim(const json_t *cr)
{
	const char *msg = hl_json_str(cr, "status.message");
	const char *url = hl_json_str(cr, "status.pullRequestUrl");
	const char *job = hl_json_str(cr, "status.jobName");
	size_t n = msg ? strlen(msg) : 0;
	json_t *t;

	if (n > OBSERVE_KEEP_MESSAGE_MAX) {
		n = OBSERVE_KEEP_MESSAGE_MAX;
		while (n > 0 && ((unsigned char)msg[n] & 0xC0) == 0x80)
			n--;
	}
	if (url && strlen(url) > OBSERVE_URL_MAX)
		url = NULL;
	if (job && strlen(job) > 253)
		job = NULL;
	t = json_pack("{s:{s:s?, s:s?, s:{s:s?}}, s:{s:s?, s:s?, s:s?}}", "metadata", "name",
	              hl_json_str(cr, "metadata.name"), "creationTimestamp",
	              hl_json_str(cr, "metadata.creationTimestamp"), "labels", "healer/task-id",
	              hl_json_str(cr, "metadata.labels.healer/task-id"), "status", "phase",
	              hl_json_str(cr, "status.phase"), "pullRequestUrl", url, "jobName", job);

	if (t && msg) {
		json_t *status = json_object_get(t, "status");

		if (json_object_set_new(status, "message", json_stringn(msg, n)) < 0) {
			json_decref(t);
			return NULL;
		}
	}
	return t;
}

/* Keeps cr for a later look (since: when it was first seen), trimmed to
 * what is read of it; false when it is not healer's, too old, or there is
 * no room. */
static bool
observe_keep(struct hl_loop *l, const char *name, const json_t *cr, int64_t since, bool replace)
{
	json_t *e;
	bool kept = false;

	if (!hl_json_str(cr, "metadata.labels.healer/task-id") ||
	    hl_time_wall_ms() - since > LOOP_PENDING_MS)
		return false;
	pthread_mutex_lock(&l->pending_lock);
	e = json_object_get(l->pending, name);
	if (e && !replace) {
		kept = true; /* a newer object is already waiting */
	} else if (e || json_object_size(l->pending) < LOOP_PENDING_MAX) {
		json_int_t first = e ? json_integer_value(json_object_get(e, "since")) : since;
		json_t *trimmed = observe_trim(cr);

		kept = trimmed && json_object_set_new(l->pending, name,
		                                      json_pack("{s:o, s:I}", "cr", trimmed,
		                                                "since", first)) == 0;
	}
	pthread_mutex_unlock(&l->pending_lock);
	return kept;
}

static int observe_one(struct hl_loop *l, const json_t *cr, int64_t since, bool replace,
                       bool *waiting, struct hl_err *err);

int
hl_loop_observe(struct hl_loop *l, const json_t *cr, struct hl_err *err)
{
	const char *created = hl_json_str(cr, "metadata.creationTimestamp");
	int64_t since = hl_time_wall_ms(), at = created ? hl_time_parse_rfc3339(created) : -1;
	bool waiting;

	/* A CodeRun waits for its attempt from its creation on, not from
	 * when this process first saw it: an attempt is recorded right after
	 * its create, so one created longer ago than LOOP_PENDING_MS without
	 * an attempt belongs to no task of this store (a reset store, another
	 * installation). Kept anyway, every relist (the resync, a restart)
	 * kept it again, and while one is kept the resume point is never
	 * saved (watch.c). */
	if (at > 0 && at < since)
		since = at;
	return observe_one(l, cr, since, true, &waiting, err);
}

int
hl_loop_observe_pending(struct hl_loop *l)
{
	struct hl_err err = HL_ERR_INIT;
	const char *name;
	json_t *taken, *e;
	int applied = 0;

	/* The kept objects stay in l->pending until each is applied (or
	 * dropped): while one is there the watch does not save a resume point
	 * past it, so a kill before it is applied, or a store that is away,
	 * never loses it. */
	if (pthread_mutex_trylock(&l->pending_apply) != 0)
		return 0; /* another driver is at it */
	pthread_mutex_lock(&l->pending_lock);
	taken = json_object_size(l->pending) ? json_copy(l->pending) : NULL;
	pthread_mutex_unlock(&l->pending_lock);
	if (!taken) {
		pthread_mutex_unlock(&l->pending_apply);
		return 0;
	}
	json_object_foreach(taken, name, e)
	{
		int64_t since = json_integer_value(json_object_get(e, "since"));
		bool waiting = false;

		if (observe_one(l, json_object_get(e, "cr"), since, false, &waiting, &err) < 0) {
			/* the store is away: it stays, looked at again later */
			hl_log_kv(HL_LOG_WARN, "recording a CodeRun change failed", "coderun", name,
			          "error", err.msg, NULL);
			continue;
		}
		if (waiting)
			continue;
		applied++;
		/* applied (or too old to wait for): gone, unless a newer object
		 * replaced it meanwhile */
		pthread_mutex_lock(&l->pending_lock);
		if (json_object_get(l->pending, name) == e)
			json_object_del(l->pending, name);
		pthread_mutex_unlock(&l->pending_lock);
	}
	json_decref(taken);
	pthread_mutex_unlock(&l->pending_apply);
	return applied;
}

/* s redacted (a git error quoting a URL with its password, a token) and
 * cut to its first OBSERVE_MESSAGE_MAX bytes on a UTF-8 boundary, saying
 * how much was cut; NULL when out of memory. */
static char *
observe_message(const char *s)
{
	char *r = hl_log_redact(s);
	size_t len, n = OBSERVE_MESSAGE_MAX;
	struct hl_buf b = HL_BUF_INIT(0);

	if (!r || (len = strlen(r)) <= OBSERVE_MESSAGE_MAX)
		return r;
	while (n > 0 && ((unsigned char)r[n] & 0xC0) == 0x80)
		n--;
	hl_buf_append(&b, r, n);
	hl_buf_appendf(&b, " [... %zu more bytes cut]", len - n);
	free(r);
	return hl_buf_detach(&b, NULL);
}

static int
observe_one(struct hl_loop *l, const json_t *cr, int64_t since, bool replace, bool *waiting,
            struct hl_err *err)
{
	const char *name = hl_json_str(cr, "metadata.name");
	const char *phase = hl_json_str(cr, "status.phase");
	const char *raw_message = hl_json_str(cr, "status.message");
	const char *pr_url = hl_json_str(cr, "status.pullRequestUrl");
	const char *job = hl_json_str(cr, "status.jobName");
	char task_id[HL_TASK_ID_MAX];
	struct hl_task_record *t = NULL;
	const struct hl_attempt_record *a = NULL;
	/* the agent's or the controller's word: stored, shown and sent
	 * redacted and bounded (observe_message), like every outside text */
	char *message = NULL;
	char pod[254];
	const char *pod_name = NULL;
	enum hl_attempt_phase ap;
	int n = 0, rc, seen, now_rank;
	size_t i;

	*waiting = false;
	if (!name)
		return 0;
	if (raw_message && !(message = observe_message(raw_message)))
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	/* a Job's name, or none: it becomes a term of the pod list's label
	 * selector ("job-name=<job>"), where a ',' would add another */
	if (job && !hl_str_k8s_subdomain_valid(job))
		job = NULL;
	/* a URL, not megabytes: it is stored at every change */
	if (pr_url && strlen(pr_url) > OBSERVE_URL_MAX)
		pr_url = NULL;
	rc = hl_store_attempt_of_coderun(l->store, task_id, &n, name, err);
	if (rc == -HL_ENOTFOUND) {
		/* not recorded yet (its task is claimed before the create):
		 * looked at again shortly; one whose task this store does not
		 * have (a `healer spawn-remediation` run, another installation)
		 * is not ours and holds nothing back */
		const char *label = hl_json_str(cr, "metadata.labels.healer/task-id");
		struct hl_err terr = HL_ERR_INIT;

		rc = label ? hl_store_task_get(l->store, &t, label, &terr) : -HL_ENOTFOUND;
		if (rc != -HL_ENOTFOUND) /* ours, or the store did not answer */
			*waiting = observe_keep(l, name, cr, since, replace);
		rc = 0;
		goto out;
	}
	if (rc < 0)
		goto out;
	if ((rc = hl_store_task_get(l->store, &t, task_id, err)) < 0) {
		if (rc == -HL_ENOTFOUND)
			rc = 0;
		goto out;
	}
	for (i = 0; i < t->n_attempts; i++)
		if (t->attempt[i].n == n)
			a = &t->attempt[i];
	if (!a || a->phase == HL_PHASE_DONE || a->kind != HL_ATTEMPT_AGENT)
		goto out; /* already judged: nothing a late event can change */
	seen = observe_rank(a->coderun_phase);
	now_rank = observe_rank(phase);
	if (now_rank < 0 || now_rank < seen)
		goto out;
	if (now_rank == seen && observe_same(a->coderun_phase, phase ? phase : "Pending") &&
	    observe_same(a->status_message, message) && observe_same(a->pr_url, pr_url) &&
	    (!job || observe_same(a->job_name, job))) {
		/* Recorded already. An ended CodeRun whose attempt is not judged
		 * yet is made due again: the schedule that followed the record
		 * may have failed (the store away), and a replay (a relist) is
		 * what brings it back. */
		if (now_rank == 2)
			goto schedule;
		goto out;
	}
	ap = now_rank == 2   ? HL_PHASE_VERIFYING
	     : now_rank == 1 ? HL_PHASE_RUNNING
	                     : HL_PHASE_PENDING;
	/* the agent's pod, asked while the CodeRun runs and again when it ends
	 * if none was found (it appears a little after the controller names
	 * the Job), and written with the status: a driver that sees the
	 * attempt ended never races this lookup (it asks again itself when
	 * this one found nothing, see driver_next_attempt) */
	if (now_rank >= 1 && !a->pod_name &&
	    hl_loop_job_pod(l, job ? job : a->job_name, pod, sizeof(pod)))
		pod_name = pod;
	rc = hl_store_attempt_put(
	        l->store,
	        &(struct hl_attempt){ .task_id = task_id,
	                              .n = n,
	                              .kind = HL_ATTEMPT_AGENT,
	                              .phase = ap,
	                              .outcome = HL_OUTCOME_INVALID,
	                              .coderun_phase = phase ? phase : "Pending",
	                              .status_message = message,
	                              .pr_url = pr_url,
	                              .job_name = job,
	                              .pod_name = pod_name,
	                              .agent_done_ms = now_rank == 2 && !a->agent_done_ms
	                                                       ? hl_time_wall_ms()
	                                                       : 0 },
	        err);
	if (rc < 0)
		goto out;
	atomic_fetch_add(&l->watch_events, 1);
	hl_log_kv(HL_LOG_INFO, "coderun changed", "task_id", task_id, "coderun", name, "phase",
	          phase ? phase : "Pending", NULL);
	/* a changed status is judged at once */
schedule:
	if ((rc = hl_store_task_schedule(l->store, task_id, hl_time_wall_ms(), err)) < 0)
		goto out;
	(void)hl_store_publish(l->store, HL_CHANNEL_TASK, task_id, NULL);
out:
	hl_task_record_free(t);
	free(message);
	return rc < 0 ? rc : 0;
}
