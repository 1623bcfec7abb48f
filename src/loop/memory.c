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
 * task.
 */
#include "memory/memory.h"

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

static void
memory_enqueue(struct hl_loop *l, const char *task_id, const char *kind, const char *ref,
               const char *payload)
{
	struct hl_err err = HL_ERR_INIT;

	if (hl_store_outbox_add(l->store, NULL,
	                        &(struct hl_notification_in){ .task_id = task_id,
	                                                      .channel = "openmemory",
	                                                      .kind = kind,
	                                                      .ref = ref,
	                                                      .payload = payload },
	                        &err) < 0)
		hl_log_kv(HL_LOG_WARN, "queueing a memory for OpenMemory failed", "task_id",
		          task_id, "error", err.msg, NULL);
}

void
hl_loop_remember(struct hl_loop *l, const char *task_id)
{
	struct hl_task_record *t = NULL;
	struct hl_memory_note note;
	struct hl_err err = HL_ERR_INIT;
	json_t *ids = NULL, *id;
	char *commits = NULL, *payload = NULL;
	bool created = false, om = l->cfg->openmemory_url && *l->cfg->openmemory_url;
	size_t i;

	memset(&note, 0, sizeof(note));
	if (hl_store_task_get(l->store, &t, task_id, &err) < 0)
		goto fail;
	/* a task of no repository (an alert of a running system) has nothing
	 * a later CI failure could be matched with */
	if ((t->state != HL_TASK_SUCCEEDED && t->state != HL_TASK_ESCALATED) || !t->repository ||
	    !*t->repository)
		goto out;
	if (t->state == HL_TASK_SUCCEEDED)
		commits = memory_commits(l, t);
	if (hl_memory_note_build(&note, t, commits, &err) < 0)
		goto fail;
	if (hl_store_memory_put(l->store, &created, &note.in, &err) < 0)
		goto fail;
	if (created)
		hl_log_kv(HL_LOG_INFO, "remembered", "task_id", task_id, "event", note.event,
		          "fixed_by", note.fixed_by, NULL);
	ids = hl_memory_decision_ids(t->decision_json);
	if (om) {
		if (hl_memory_om_add_payload(&payload, &note, &err) < 0)
			goto fail;
		memory_enqueue(l, task_id, "memory_add",
		               t->state == HL_TASK_SUCCEEDED ? "succeeded" : NULL, payload);
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
			    hl_memory_om_reinforce_payload(&rp, v, MEMORY_BOOST, &err) == 0)
				memory_enqueue(l, task_id, "memory_reinforce", v, rp);
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
	goto out;
fail:
	hl_log_kv(HL_LOG_WARN, "remembering a task failed", "task_id", task_id, "error", err.msg,
	          NULL);
out:
	json_decref(ids);
	free(payload);
	free(commits);
	hl_memory_note_release(&note);
	hl_task_record_free(t);
}
