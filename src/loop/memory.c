/*
 * memory.c - remembering a finished task (contract section 10): when a task
 * ends succeeded or escalated, its note (memory/memory.h) is stored in the
 * embedded memory at once, and the memories its first attempt was shown
 * are reinforced when it succeeded; with OpenMemory configured, the add and
 * the reinforcements go through the durable outbox (channel "openmemory"),
 * so a slow or failing OpenMemory delays nothing and loses nothing.
 *
 * Idempotent: the store keeps one memory per task, a reinforcement of the
 * embedded memory happens only when that memory is new, and the outbox
 * enqueues each (task, channel, kind, ref) once. A task ends escalated any
 * number of times but succeeded at most once (a /healer retry follows an
 * escalation only), so OpenMemory's add is keyed by the outcome: the
 * escalated one without a ref (the key it always had), the success after
 * an escalation as "succeeded", a second add OpenMemory would otherwise
 * never get. Failures are logged, never returned: memory never fails a
 * task. The write that ended the task marked its memory pending
 * (remember_pending, in that transaction); it is cleared once the memory
 * is written, so a process that died, or a store that failed, in between
 * leaves it to the loop's next pass (hl_loop_remember_pending).
 */
#include "memory/memory.h"

#include "base/clock.h"
#include "base/log.h"
#include "base/str.h"
#include "loop_impl.h"

#include "json/json.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MEMORY_BOOST       1.0
#define MEMORY_COMMITS_MAX 10

/* The commit messages (first lines) the agents pushed since the failing
 * commit, one a line; NULL without GitHub or on any failure. */
static char *
memory_commits(struct hl_loop *l, const struct hl_task_record *t)
{
	struct hl_buf b = HL_BUF_INIT(8192);
	json_t *cmp = NULL, *c;
	size_t i;

	if (!l->github || !t->repository || !t->head_sha || !t->target_branch)
		return NULL;
	if (hl_github_compare(l->github, &cmp, t->repository, t->head_sha, t->target_branch,
	                      MEMORY_COMMITS_MAX, NULL) < 0)
		return NULL;
	json_array_foreach(json_object_get(cmp, "commits"), i, c)
	{
		const char *msg = hl_json_str(c, "message");
		size_t n = 0;

		while (msg && msg[n] && msg[n] != '\n' && n < 200)
			n++;
		while (n > 0 && ((unsigned char)msg[n] & 0xc0) == 0x80)
			n--; /* not inside a character */
		if (!n)
			continue;
		if (b.len)
			hl_buf_append_str(&b, "; ");
		hl_buf_append(&b, msg, n);
	}
	json_decref(cmp);
	if (hl_buf_error(&b) || !b.len) {
		hl_buf_release(&b);
		return NULL;
	}
	return hl_buf_detach(&b, NULL);
}

static int
memory_enqueue(struct hl_loop *l, const char *task_id, const char *kind, const char *ref,
               const char *payload)
{
	struct hl_err err = HL_ERR_INIT;
	int rc = hl_store_outbox_add(l->store, NULL,
	                             &(struct hl_notification_in){ .task_id = task_id,
	                                                           .channel = "openmemory",
	                                                           .kind = kind,
	                                                           .ref = ref,
	                                                           .payload = payload },
	                             &err);

	if (rc < 0)
		hl_log_kv(HL_LOG_WARN, "queueing a memory for OpenMemory failed", "task_id",
		          task_id, "error", err.msg, NULL);
	return rc;
}

int
hl_loop_remember(struct hl_loop *l, const char *task_id)
{
	struct hl_task_record *t = NULL;
	struct hl_memory_note note;
	struct hl_err err = HL_ERR_INIT;
	json_t *ids = NULL, *id;
	char *commits = NULL, *payload = NULL;
	bool created = false, om = l->cfg->openmemory_url && *l->cfg->openmemory_url;
	size_t i;
	int rc = 0;

	memset(&note, 0, sizeof(note));
	if ((rc = hl_store_task_get(l->store, &t, task_id, &err)) < 0) {
		if (rc == -HL_ENOTFOUND)
			goto done; /* nothing to remember */
		goto fail;
	}
	/* a task of no repository (an alert of a running system) has nothing
	 * a later CI failure could be matched with */
	if ((t->state != HL_TASK_SUCCEEDED && t->state != HL_TASK_ESCALATED) || !t->repository ||
	    !*t->repository)
		goto done;
	if (t->state == HL_TASK_SUCCEEDED)
		commits = memory_commits(l, t);
	if ((rc = hl_memory_note_build(&note, t, commits, &err)) < 0)
		goto fail;
	if ((rc = hl_store_memory_put(l->store, &created, &note.in, &err)) < 0)
		goto fail;
	if (created)
		hl_log_kv(HL_LOG_INFO, "remembered", "task_id", task_id, "event", note.event,
		          "fixed_by", note.fixed_by, NULL);
	ids = hl_memory_decision_ids(t->decision_json);
	/* a refused enqueue does not skip the local reinforcement below,
	 * which only the write that created the memory makes (a repeat of
	 * this pass skips it) */
	if (om) {
		int arc = hl_memory_om_add_payload(&payload, &note, &err);

		if (arc < 0) {
			rc = arc;
			goto fail;
		}
		if (memory_enqueue(l, task_id, "memory_add",
		                   t->state == HL_TASK_SUCCEEDED ? "succeeded" : NULL, payload) < 0)
			rc = -HL_EDB;
	}
	if (t->state == HL_TASK_SUCCEEDED) {
		json_t *d = t->decision_json ? json_loads(t->decision_json, 0, NULL) : NULL;
		bool om_ids = strcmp(hl_json_str_or(d, "memory.backend", ""), "openmemory") == 0;

		json_decref(d);
		json_array_foreach(ids, i, id)
		{
			const char *v = json_string_value(id);
			char *rp = NULL;

			if (om_ids && om &&
			    hl_memory_om_reinforce_payload(&rp, v, MEMORY_BOOST, &err) == 0 &&
			    memory_enqueue(l, task_id, "memory_reinforce", v, rp) < 0)
				rc = -HL_EDB; /* the rest still goes; the pass repeats it */
			else if (!om_ids && created &&
			         hl_store_memory_reinforce(l->store, strtoll(v, NULL, 10),
			                                   MEMORY_BOOST, &err) < 0)
				hl_log_kv(HL_LOG_DEBUG, "reinforcing a memory failed", "task_id",
				          task_id, "memory", v, "error", err.msg, NULL);
			free(rp);
		}
	}
	if (om)
		hl_loop_wake(l); /* the outbox */
	if (rc < 0)
		goto out;
done:
	/* written (or nothing to write): the pass no longer looks at it */
	if ((rc = hl_store_task_remembered(l->store, task_id, &err)) < 0)
		goto fail;
	goto out;
fail:
	hl_log_kv(HL_LOG_WARN, "remembering a task failed; tried again later", "task_id", task_id,
	          "error", err.msg, NULL);
	/* only the store's refusals pass: a note that cannot be made (a
	 * task no longer finished) is never tried again */
	if (rc != -HL_EDB && rc != -HL_EIO && rc != -HL_ENOMEM &&
	    hl_store_task_remembered(l->store, task_id, NULL) < 0) {
		/* the next pass tries it once more */
	}
out:
	json_decref(ids);
	free(payload);
	free(commits);
	hl_memory_note_release(&note);
	hl_task_record_free(t);
	return rc;
}

/* How many tasks one pass remembers at most, how long after a pass the
 * next looks (every driver thread runs them; the normal case is written
 * as the task ends), and how long after one that failed. */
#define MEMORY_PASS_MAX      16
#define MEMORY_PASS_EVERY_MS 1000
#define MEMORY_RETRY_MS      5000

int
hl_loop_remember_pending(struct hl_loop *l)
{
	char ids[MEMORY_PASS_MAX][HL_TASK_ID_MAX];
	struct hl_err err = HL_ERR_INIT;
	size_t n = 0, i;
	int64_t now = hl_time_wall_ms();
	int done = 0, failed = 0;

	if (now < atomic_load(&l->remember_after))
		return 0;
	atomic_store(&l->remember_after, now + MEMORY_PASS_EVERY_MS);
	if (hl_store_tasks_remember(l->store, ids, MEMORY_PASS_MAX, &n, &err) < 0) {
		hl_log_kv(HL_LOG_DEBUG, "reading tasks to remember failed", "error", err.msg, NULL);
		failed = 1;
	}
	for (i = 0; i < n && !atomic_load(&l->stop); i++) {
		if (hl_loop_remember(l, ids[i]) == 0)
			done++;
		else
			failed++;
	}
	if (failed)
		atomic_store(&l->remember_after, now + MEMORY_RETRY_MS);
	return done;
}
