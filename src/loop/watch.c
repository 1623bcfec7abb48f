/*
 * watch.c - the watcher thread: follows every CodeRun healer made and
 * hands each change to hl_loop_observe.
 *
 * Kubernetes dispatch: the watch API through hl_kube_watch (resume from
 * the stored resourceVersion, bookmarks, relist on 410 Gone both ways,
 * reconnect with backoff; a server's wait longer than 60 s is cut to 60 s
 * and logged). The resume point is kept in the store, so a
 * restart resumes instead of relisting; every LOOP_RESYNC_MS the watch ends
 * and a full relist follows (a periodic resync: anything missed is seen
 * then, and observe() applies what it already applied as nothing). A
 * change that could not be recorded (the store away, a full disk) ends the
 * session at once without moving the resume point, and a relist follows
 * a second later, so no change is skipped until the next resync. While
 * observe.c keeps a CodeRun whose attempt is not recorded yet, the resume
 * point is not saved, so a restart (which loses what was kept) sees it
 * again.
 * A CodeRun deleted before it finished ends its attempt as failed, also
 * when no DELETED event tells (deleted while healer was down and the watch
 * relisted, or a CodeRun file removed): after every full list, a running
 * attempt whose CodeRun the list lacks and a GET by name does not find is
 * taken as deleted.
 * A DELETED event is confirmed by a GET by name before the attempt ends:
 * the API server also sends one when an object stops matching the watch's
 * label selector (someone edited or removed its app.kubernetes.io/name
 * label), though it still exists and its agent still runs. Such a CodeRun
 * (also one a relist lacks but a GET finds) is followed by name: its state
 * from a GET every WATCH_FOLLOW_EVERY_MS (the watch sessions are that
 * short meanwhile), until it ends, is gone (404, or another object under
 * its name: deleted) or matches the selector again. That set lives in the
 * watching process only: at every start of the watch (a restart, this
 * replica taking the watch over, a reconnect after an error) it is found
 * again from the store's running attempts, each CodeRun asked for by name
 * (watch_follow_rebuild), since a watch resumed from the stored point
 * lists nothing and the next full relist may be LOOP_RESYNC_MS away.
 *
 * Directory dispatch: the CodeRun files' status objects are read every
 * HEALER_LOOP_INTERVAL_MS, so `make run` users try the loop by editing a
 * file.
 *
 * Replicas: only the leader of "watch" (hl_store_leader) watches. A watch
 * session lasts at most half of HEALER_LEASE_SECONDS and resumes from the
 * stored resourceVersion, so leadership is checked that often; a replica
 * that loses it stops, and the one that takes over resumes where the old
 * leader left off (the resume point is in the shared store).
 * A (re)list is the exception: it has no resume point before its end, so
 * one cut at the session's end would start again from its first page in
 * every session and never end (no SYNCED, no watch, CodeRuns on its later
 * pages never seen). It goes on past the session to its end, the lease
 * renewed between its pages (a lost lease ends it); a list that is
 * abandoned all the same (a failed page, the lease lost) is logged. A
 * whole list is a resync: the next periodic one is LOOP_RESYNC_MS after it.
 */
#include "base/clock.h"
#include "base/log.h"
#include "base/str.h"
#include "loop_impl.h"

#include "json/json.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WATCH_SELECTOR   "app.kubernetes.io/name=healer"
#define WATCH_ERROR_WAIT 5000
#define WATCH_RV_MAX     128

/* CodeRuns that left the selector: how often each is asked for by name,
 * and how many are followed at most (past that, the relist's comparison
 * still finds them, every LOOP_RESYNC_MS). */
#define WATCH_FOLLOW_EVERY_MS 5000
#define WATCH_FOLLOW_MAX      1000

/* Directory dispatch: how often the files are compared with the attempts. */
#define WATCH_GONE_EVERY_MS 5000
#define WATCH_GONE_PAGE     200

struct watch_ctx {
	struct hl_loop *l;
	char rv[WATCH_RV_MAX];
	int64_t saved_ms;
	bool failed;  /* a change could not be recorded: relist */
	json_t *seen; /* the names of the list being read (SYNC) */
	/* CodeRuns that still exist but left the selector, followed by name:
	 * name -> the uid seen last ("" when not known) */
	json_t *follow;
	bool follow_added; /* one more to follow: end the session (shorter ones) */
	int64_t lead_ms;   /* when the leader lease was last renewed (monotonic) */
	bool listing;      /* a list began ("LIST") and has not ended ("SYNCED") */
	bool synced;       /* a whole list ended in this session */
	int list_pages;    /* pages of the list under way */
};

static const char *const watch_gone_message = "the CodeRun was deleted before it finished";

/* A CodeRun that was deleted before it finished: its attempt failed. */
static int
watch_observe_gone(struct hl_loop *l, const char *name, struct hl_err *err)
{
	json_t *cr;
	int rc;

	cr = json_pack("{s:{s:s}, s:{s:s, s:s}}", "metadata", "name", name, "status", "phase",
	               "Failed", "message", watch_gone_message);
	rc = cr ? hl_loop_observe(l, cr, err) : hl_err_set(err, HL_ENOMEM, "out of memory");
	json_decref(cr);
	return rc;
}

/*
 * Asks for a CodeRun by name: 1 and *out (caller decrefs) when it exists
 * (and, uid given, is the same object), 0 when it is gone (404, or another
 * object now has its name), -1 when the API did not tell (the caller asks
 * again later).
 */
static int
watch_lookup(struct hl_loop *l, json_t **out, const char *name, const char *uid,
             struct hl_err *gerr)
{
	const char *now_uid;
	json_t *cr = NULL;
	int got;

	*out = NULL;
	got = hl_dispatch_get(l->dispatch, &cr, name, gerr);
	if (got == -HL_ENOTFOUND)
		return 0;
	if (got < 0 || !cr) {
		json_decref(cr);
		return -1;
	}
	now_uid = hl_json_str(cr, "metadata.uid");
	if (uid && *uid && now_uid && strcmp(uid, now_uid) != 0) {
		json_decref(cr);
		return 0; /* deleted, and made again under the same name */
	}
	*out = cr;
	return 1;
}

/* True when name is the CodeRun of an attempt of this store (also when the
 * store cannot tell: following one too many costs a GET). */
static bool
watch_ours(struct hl_loop *l, const char *name)
{
	char task_id[HL_TASK_ID_MAX];
	struct hl_err err = HL_ERR_INIT;
	int n = 0;

	return hl_store_attempt_of_coderun(l->store, task_id, &n, name, &err) != -HL_ENOTFOUND;
}

/* Starts following name by GET (false when too many are followed, or it is
 * none of healer's attempts'); why is logged when it is new. */
static bool
watch_follow_add(struct watch_ctx *w, const char *name, const char *uid, const char *why)
{
	if (!w->follow ||
	    (!json_object_get(w->follow, name) && json_object_size(w->follow) >= WATCH_FOLLOW_MAX))
		return false;
	if (!json_object_get(w->follow, name) && !watch_ours(w->l, name))
		return false;
	if (!json_object_get(w->follow, name)) {
		hl_log_kv(HL_LOG_WARN, why, "coderun", name, "selector", WATCH_SELECTOR, NULL);
		w->follow_added = true;
	}
	json_object_set_new(w->follow, name, json_string(uid ? uid : ""));
	return true;
}

/*
 * Records what a GET by name says of a CodeRun the watch does not show:
 * its state when it exists (followed on while it has not ended, when w is
 * given), deleted when it is gone, nothing when the API did not tell.
 * *followed (may be NULL) tells whether it is still to be followed.
 */
static int
watch_confirm(struct hl_loop *l, struct watch_ctx *w, const char *name, const char *uid,
              bool *followed, struct hl_err *err)
{
	struct hl_err gerr = HL_ERR_INIT;
	struct hl_kube_coderun_status st;
	json_t *cr = NULL;
	bool ended;
	int found, rc;

	if (followed)
		*followed = false;
	found = watch_lookup(l, &cr, name, uid, &gerr);
	if (found < 0) {
		/* not known: asked again (when followed) or at the next relist */
		hl_log_kv(HL_LOG_WARN, "asking for a CodeRun by name failed", "coderun", name,
		          "error", gerr.msg, NULL);
		if (followed && w)
			*followed = watch_follow_add(
			        w, name, uid,
			        "a CodeRun the watch no longer shows could not be asked for; asking "
			        "again by name");
		return 0;
	}
	if (found == 0) {
		/* also healer's own deletes (an attempt timeout, /healer stop):
		 * observe() leaves an attempt that already ended alone */
		hl_log_kv(HL_LOG_INFO, "a CodeRun that had not finished was deleted", "coderun",
		          name, NULL);
		return watch_observe_gone(l, name, err);
	}
	hl_kube_coderun_status_read(&st, cr);
	ended = hl_kube_phase_terminal(st.phase);
	if (!ended && w && followed)
		*followed =
		        watch_follow_add(w, name, hl_json_str(cr, "metadata.uid"),
		                         "a CodeRun no longer matches the watch's label selector "
		                         "(its labels were changed) but still exists; following "
		                         "it by name");
	rc = hl_loop_observe(l, cr, err);
	json_decref(cr);
	return rc;
}

/* The running attempts of task_id whose CodeRun is not in seen: a GET by
 * name tells (watch_confirm). Absent means deleted: an attempt is recorded
 * after its CodeRun was created. w: the watch, which follows the ones
 * found (NULL for CodeRun files). */
static int
watch_gone_task(struct hl_loop *l, struct watch_ctx *w, const json_t *seen, const char *task_id,
                struct hl_err *err)
{
	struct hl_task_record *t = NULL;
	size_t i;
	int rc;

	if ((rc = hl_store_task_get(l->store, &t, task_id, err)) < 0)
		return rc == -HL_ENOTFOUND ? 0 : rc;
	for (i = 0; rc == 0 && i < t->n_attempts; i++) {
		const struct hl_attempt_record *a = &t->attempt[i];
		bool followed;

		if (a->kind != HL_ATTEMPT_AGENT ||
		    (a->phase != HL_PHASE_PENDING && a->phase != HL_PHASE_RUNNING) ||
		    !a->coderun_name || json_object_get(seen, a->coderun_name))
			continue;
		/* only a CodeRun asked for by name and absent is gone (a file
		 * being rewritten, an API that did not answer, a CodeRun whose
		 * labels were changed: not) */
		rc = watch_confirm(l, w, a->coderun_name, NULL, &followed, err);
	}
	hl_task_record_free(t);
	return rc;
}

typedef int (*watch_task_fn)(struct hl_loop *l, struct watch_ctx *w, const json_t *seen,
                             const char *task_id, struct hl_err *err);

struct watch_each {
	struct hl_loop *l;
	struct watch_ctx *w;
	const json_t *seen;
	watch_task_fn fn;
};

/* One running task, for hl_store_task_each: 1 (stop) once the loop
 * stops, fn's error, else 0 to go on. */
static int
watch_each_one(void *p, const struct hl_task_record *t, struct hl_err *err)
{
	struct watch_each *e = p;
	int rc;

	if (atomic_load(&e->l->stop))
		return 1;
	rc = e->fn(e->l, e->w, e->seen, t->task_id, err);
	return rc < 0 ? rc : 0;
}

/* Calls fn for every running task, page by page; stops at the first
 * error (err says it) or when the loop stops. */
static int
watch_each_running(struct hl_loop *l, struct watch_ctx *w, const json_t *seen, watch_task_fn fn,
                   struct hl_err *err)
{
	struct hl_task_query q = { .state = "running", .limit = WATCH_GONE_PAGE };
	struct watch_each e = { l, w, seen, fn };
	int rc;

	if (atomic_load(&l->stop))
		return 0;
	rc = hl_store_task_each(l->store, &q, watch_each_one, &e, err);
	return rc < 0 ? rc : 0;
}

/* Compares the running tasks' CodeRuns with a full list (seen: name ->
 * anything). */
static void
watch_gone(struct hl_loop *l, struct watch_ctx *w, const json_t *seen)
{
	struct hl_err err = HL_ERR_INIT;

	if (watch_each_running(l, w, seen, watch_gone_task, &err) < 0 || err.msg[0])
		hl_log_kv(HL_LOG_WARN, "comparing the CodeRuns with the attempts failed", "error",
		          err.msg, NULL);
}

/* The running attempts of task_id whose CodeRun, asked for by name, exists
 * but no longer matches the selector: followed by name (the watch does not
 * show them). One the API did not tell of, or that is gone, is left to the
 * watch and its relists. */
static int
watch_rebuild_task(struct hl_loop *l, struct watch_ctx *w, const json_t *seen, const char *task_id,
                   struct hl_err *err)
{
	struct hl_task_record *t = NULL;
	size_t i;
	int rc;

	(void)seen;
	if ((rc = hl_store_task_get(l->store, &t, task_id, err)) < 0)
		return rc == -HL_ENOTFOUND ? 0 : rc;
	for (i = 0; rc == 0 && i < t->n_attempts; i++) {
		const struct hl_attempt_record *a = &t->attempt[i];
		struct hl_kube_coderun_status st;
		struct hl_err gerr = HL_ERR_INIT;
		const char *app;
		json_t *cr = NULL;

		if (a->kind != HL_ATTEMPT_AGENT ||
		    (a->phase != HL_PHASE_PENDING && a->phase != HL_PHASE_RUNNING) ||
		    !a->coderun_name || json_object_get(w->follow, a->coderun_name))
			continue;
		if (watch_lookup(l, &cr, a->coderun_name, NULL, &gerr) != 1)
			continue;
		app = json_string_value(json_object_get(hl_json_path(cr, "metadata.labels"),
		                                        "app.kubernetes.io/name"));
		hl_kube_coderun_status_read(&st, cr);
		if ((!app || strcmp(app, "healer") != 0) && !hl_kube_phase_terminal(st.phase) &&
		    watch_follow_add(w, a->coderun_name, hl_json_str(cr, "metadata.uid"),
		                     "a running attempt's CodeRun does not match the watch's label "
		                     "selector (its labels were changed); following it by name"))
			rc = hl_loop_observe(l, cr, err);
		json_decref(cr);
	}
	hl_task_record_free(t);
	return rc;
}

/* At the watch's start (a restart, or this replica taking the watch over):
 * the CodeRuns followed by name live in the watching process only, and a
 * watch resumed from the stored point lists nothing, so they are found
 * again from the store's running attempts. */
static void
watch_follow_rebuild(struct watch_ctx *w)
{
	struct hl_err err = HL_ERR_INIT;

	if (watch_each_running(w->l, w, NULL, watch_rebuild_task, &err) < 0)
		hl_log_kv(HL_LOG_WARN, "finding the CodeRuns to follow by name failed", "error",
		          err.msg, NULL);
}

/* CodeRuns kept for an attempt not recorded yet (observe.c). */
static bool
watch_pending(struct hl_loop *l)
{
	bool any;

	pthread_mutex_lock(&l->pending_lock);
	any = json_object_size(l->pending) > 0;
	pthread_mutex_unlock(&l->pending_lock);
	return any;
}

static void
watch_save_rv(struct watch_ctx *w, bool now)
{
	struct hl_err err = HL_ERR_INIT;

	/* not past a CodeRun kept for its attempt: those live in this
	 * process only, so a restart must see it again */
	if (watch_pending(w->l))
		return;
	if (!w->rv[0] || (!now && hl_time_mono_ms() - w->saved_ms < 5000))
		return;
	if (hl_store_kv_put(w->l->store, LOOP_WATCH_KEY, w->rv, &err) < 0)
		hl_log_kv(HL_LOG_WARN, "saving the watch's resume point failed", "error", err.msg,
		          NULL);
	w->saved_ms = hl_time_mono_ms();
}

/*
 * A DELETED event. One that finished is recorded as it is. Else a GET by
 * name confirms it first: the API server says DELETED also for an object
 * whose labels stopped matching the selector; that one still exists, its
 * agent runs on, and it is followed by name from now on.
 */
static int
watch_deleted(struct watch_ctx *w, json_t *obj, struct hl_err *err)
{
	struct hl_kube_coderun_status st;
	bool followed;

	hl_kube_coderun_status_read(&st, obj);
	if (hl_kube_phase_terminal(st.phase) || !st.name)
		return hl_loop_observe(w->l, obj, err);
	return watch_confirm(w->l, w, st.name, st.uid, &followed, err);
}

/* Asks for every followed CodeRun by name and records its state; one that
 * ended or is gone is no longer followed. */
static void
watch_follow_poll(struct watch_ctx *w)
{
	const char *name;
	json_t *uid, *names;
	void *tmp;

	if (!json_object_size(w->follow) || !(names = json_copy(w->follow)))
		return;
	json_object_foreach_safe(names, tmp, name, uid)
	{
		struct hl_err err = HL_ERR_INIT;
		bool followed = false;

		if (atomic_load(&w->l->stop))
			break;
		if (watch_confirm(w->l, w, name, json_string_value(uid), &followed, &err) < 0)
			/* not recorded (the store away): asked again next time */
			hl_log_kv(HL_LOG_WARN, "recording a CodeRun change failed", "coderun", name,
			          "error", err.msg, NULL);
		else if (!followed)
			json_object_del(w->follow, name);
	}
	json_decref(names);
	w->follow_added = false;
}

static bool watch_lead(struct hl_loop *l);

/* A list ended before its end (a failed page, the lease lost): what it
 * read says nothing, and the next one starts from its first page. */
static void
watch_list_abandoned(struct watch_ctx *w)
{
	char pages[16], objects[24];

	snprintf(pages, sizeof(pages), "%d", w->list_pages);
	snprintf(objects, sizeof(objects), "%zu", json_object_size(w->seen));
	hl_log_kv(HL_LOG_WARN,
	          "a CodeRun list was abandoned before its end; the next one starts from its "
	          "first page",
	          "pages", pages, "objects", objects, "last_error",
	          w->l->watch_stats.last_error.msg[0] ? w->l->watch_stats.last_error.msg : "none",
	          NULL);
	w->listing = false;
}

static int
watch_event(void *ud, const char *type, json_t *obj)
{
	struct watch_ctx *w = ud;
	struct hl_err err = HL_ERR_INIT;
	int rc = 0;

	if (atomic_load(&w->l->stop)) {
		/* stopping: this change is not recorded, and the resume point
		 * (set to it already) must not pass it */
		w->failed = true;
		w->rv[0] = '\0';
		return -1;
	}
	if (strcmp(type, "LIST") == 0) {
		if (w->listing)
			watch_list_abandoned(w);
		json_object_clear(w->seen); /* a list cut short says nothing */
		w->listing = true;
		w->list_pages = 1;
		return 0;
	}
	if (strcmp(type, "PAGE") == 0) {
		/* a list goes on past the session: the lease must not lapse */
		w->list_pages++;
		if (hl_time_mono_ms() - w->lead_ms >=
		    (int64_t)w->l->cfg->lease_seconds * 1000 / 3) {
			if (!watch_lead(w->l))
				return -1;
			w->lead_ms = hl_time_mono_ms();
		}
		return 0;
	}
	if (strcmp(type, "BOOKMARK") == 0) {
		watch_save_rv(w, false);
		return 0;
	}
	if (strcmp(type, "SYNCED") == 0) {
		/* a whole list: what it lacks may have been deleted */
		w->listing = false;
		w->synced = true;
		watch_gone(w->l, w, w->seen);
		json_object_clear(w->seen);
		watch_save_rv(w, true);
		return w->follow_added ? -1 : 0;
	}
	if (strcmp(type, "SYNC") == 0) {
		const char *name = hl_json_str(obj, "metadata.name");

		if (name)
			json_object_set_new(w->seen, name, json_true());
	}
	if (strcmp(type, "DELETED") == 0) {
		rc = watch_deleted(w, obj, &err);
	} else if (obj) {
		const char *name = hl_json_str(obj, "metadata.name");

		/* it matches the selector again: the watch shows it */
		if (name)
			json_object_del(w->follow, name);
		rc = hl_loop_observe(w->l, obj, &err);
	}
	if (rc < 0) {
		/* The change is not recorded (the store is away, the disk is
		 * full): the resume point must not pass it. End the session
		 * and relist, which delivers the CodeRun's state again. */
		hl_log_kv(HL_LOG_WARN, "recording a CodeRun change failed; relisting", "coderun",
		          hl_json_str(obj, "metadata.name"), "error", err.msg, NULL);
		w->failed = true;
		w->rv[0] = '\0';
		return -1;
	}
	watch_save_rv(w, false);
	/* one more CodeRun to follow by name: the next sessions are short */
	return w->follow_added ? -1 : 0;
}

/* The API server (or a proxy) asked for a longer wait than the watch
 * honours (kube_watch.c): said once per capped wait. */
static void
watch_wait_capped(void *ud, const char *from, int64_t asked_s, int64_t capped_ms)
{
	char asked[24], capped[24];

	(void)ud;
	snprintf(asked, sizeof(asked), "%lld", (long long)asked_s);
	snprintf(capped, sizeof(capped), "%lld", (long long)capped_ms);
	hl_log_kv(HL_LOG_WARN,
	          "the Kubernetes API asked the CodeRun watch to wait longer than it "
	          "waits; waiting the longest instead",
	          "from", from, "asked_s", asked, "waiting_ms", capped, NULL);
}

/* Takes or keeps the watch's leadership; false (and not watching) while
 * another replica holds it or the store cannot be reached. */
static bool
watch_lead(struct hl_loop *l)
{
	struct hl_err err = HL_ERR_INIT;
	bool lead = false;
	int was = atomic_load(&l->watch_leader);

	if (hl_store_leader(l->store, &lead, "watch", hl_store_owner(l->store),
	                    (int64_t)l->cfg->lease_seconds * 1000, &err) < 0)
		lead = false;
	if (lead != (was == 1))
		hl_log_kv(HL_LOG_INFO,
		          lead ? "this replica now watches the CodeRuns"
		               : "another replica watches the CodeRuns (or the store is away)",
		          "error", err.msg[0] ? err.msg : "none", NULL);
	atomic_store(&l->watch_leader, lead ? 1 : 0);
	return lead;
}

/* Waits (bounded, stoppable) until this process leads the watch. */
static bool
watch_wait_lead(struct hl_loop *l)
{
	while (!atomic_load(&l->stop)) {
		if (watch_lead(l))
			return true;
		atomic_store(&l->watch_connected, 0);
		hl_loop_sleep(l, l->cfg->lease_seconds * 1000 / 3);
	}
	return false;
}

static void
watch_kubernetes(struct hl_loop *l)
{
	struct watch_ctx w = { .l = l, .seen = json_object(), .follow = json_object() };
	struct hl_err err = HL_ERR_INIT;
	int64_t resync_at = hl_time_mono_ms() + LOOP_RESYNC_MS;
	bool resume = true; /* read the resume point from the store first */

	if (!w.seen || !w.follow) {
		json_decref(w.seen);
		json_decref(w.follow);
		return;
	}
	while (watch_wait_lead(l)) {
		int64_t now = hl_time_mono_ms(), session = (int64_t)l->cfg->lease_seconds * 500;
		int64_t lease_half = session;
		char *stored = NULL;

		w.lead_ms = now; /* watch_wait_lead renewed the lease */
		if (resume) {
			w.rv[0] = '\0';
			if (hl_store_kv_get(l->store, &stored, LOOP_WATCH_KEY, &err) == 0) {
				hl_strlcpy(w.rv, stored, sizeof(w.rv));
				free(stored);
			}
			resume = false;
			watch_follow_rebuild(&w);
		}
		/* CodeRuns the watch no longer shows: asked for between sessions */
		watch_follow_poll(&w);
		if (json_object_size(w.follow) && session > WATCH_FOLLOW_EVERY_MS)
			session = WATCH_FOLLOW_EVERY_MS;
		struct hl_kube_watch_opts o = {
			.ns = l->cfg->namespace,
			.label_selector = WATCH_SELECTOR,
			.resource_version = w.rv,
			.rv_size = sizeof(w.rv),
			.deadline_ms = now + session < resync_at ? now + session : resync_at,
			.stop = &l->stop,
			.fn = watch_event,
			.ud = &w,
			.list_extend_ms = lease_half,
			.stats = &l->watch_stats,
			.wait_capped = watch_wait_capped,
		};
		int rc;

		atomic_store(&l->watch_connected, 1);
		rc = hl_kube_watch(l->kube, &o, &err);
		atomic_store(&l->watch_connected, 0);
		if (w.listing && !atomic_load(&l->stop))
			watch_list_abandoned(&w);
		w.listing = false;
		if (w.synced) {
			/* a whole list: the resync is due that long after it */
			w.synced = false;
			resync_at = hl_time_mono_ms() + LOOP_RESYNC_MS;
		}
		if (w.failed) {
			w.failed = false;
			w.rv[0] = '\0';
			atomic_fetch_add(&l->watch_stats.restarts, 1);
			hl_loop_nap(l, WATCH_ERROR_WAIT / 5);
			continue;
		}
		watch_save_rv(&w, true);
		if (rc < 0) {
			hl_log_kv(HL_LOG_ERROR, "the CodeRun watch failed; retrying", "error",
			          err.msg, NULL);
			atomic_fetch_add(&l->watch_stats.restarts, 1);
			hl_loop_nap(l, WATCH_ERROR_WAIT);
			resume = true; /* another replica may have led meanwhile */
			continue;
		}
		/* the periodic resync: relist everything */
		if (!atomic_load(&l->stop) && hl_time_mono_ms() >= resync_at) {
			w.rv[0] = '\0';
			atomic_fetch_add(&l->watch_stats.restarts, 1);
			resync_at = hl_time_mono_ms() + LOOP_RESYNC_MS;
		}
		/* leadership lost at the next check: the next leader resumes from
		 * the stored point, and so does this one if it leads again */
		if (!atomic_load(&l->stop) && !watch_lead(l))
			resume = true;
	}
	atomic_store(&l->watch_connected, 0);
	json_decref(w.seen);
	json_decref(w.follow);
}

/*
 * Directory dispatch: the CodeRun files are scanned every loop interval;
 * only a new or changed file (name, mtime, size, inode) is read and
 * observed, as a watch event would bring it. Every file is read again at
 * the start, on leading again, after an observe failed and every
 * LOOP_RESYNC_MS (a relist).
 */
static void
watch_directory(struct hl_loop *l)
{
	struct hl_err err = HL_ERR_INIT;
	struct hl_dispatch_scan *scan = hl_dispatch_scan_new();
	json_t *list, *cr, *seen = json_object();
	int64_t gone_at = 0, resync_at = 0;
	uint64_t parsed;
	size_t i;

	if (!seen || !scan)
		goto out;
	while (watch_wait_lead(l)) {
		bool whole = true;

		list = NULL;
		parsed = 0;
		/* 0 after a time without the lead (watch_wait_lead) */
		if (!atomic_load(&l->watch_connected) || hl_time_mono_ms() >= resync_at) {
			hl_dispatch_scan_forget(scan);
			resync_at = hl_time_mono_ms() + LOOP_RESYNC_MS;
		}
		atomic_store(&l->watch_connected, 1);
		json_object_clear(seen);
		if (hl_dispatch_scan(l->dispatch, scan, WATCH_SELECTOR, &list, seen, &parsed,
		                     &err) < 0) {
			hl_log_kv(HL_LOG_WARN, "reading the CodeRun files failed", "error", err.msg,
			          NULL);
			whole = false;
		} else {
			atomic_fetch_add(&l->coderun_files_read, parsed);
			json_array_foreach(list, i, cr)
			{
				if (atomic_load(&l->stop)) {
					whole = false;
					hl_dispatch_scan_forget(scan);
					break;
				}
				if (hl_loop_observe(l, cr, &err) < 0) {
					hl_log_kv(HL_LOG_WARN, "recording a CodeRun change failed",
					          "error", err.msg, NULL);
					/* read again next time */
					hl_dispatch_scan_forget(scan);
				}
			}
			if (whole && hl_time_mono_ms() >= gone_at) {
				watch_gone(l, NULL, seen);
				gone_at = hl_time_mono_ms() + WATCH_GONE_EVERY_MS;
			}
		}
		json_decref(list);
		hl_loop_nap(l, l->cfg->loop_interval_ms);
	}
	atomic_store(&l->watch_connected, 0);
out:
	hl_dispatch_scan_free(scan);
	json_decref(seen);
}

/* Whether the task of a CodeRun file is over: final, or no longer stored
 * (retention removed it). A store error keeps the file. */
static bool
watch_task_done(void *arg, const char *task_id)
{
	struct hl_err err = HL_ERR_INIT;
	struct hl_task_record *t = NULL;
	int rc = hl_store_task_get(arg, &t, task_id, &err);
	/* escalated counts too: a /healer retry makes a CodeRun of its own */
	bool done =
	        rc == -HL_ENOTFOUND ||
	        (rc == 0 && (hl_task_state_is_final(t->state) || t->state == HL_TASK_ESCALATED));

	hl_task_record_free(t);
	return done;
}

int64_t
hl_loop_prune_coderuns(const struct hl_config *cfg, struct hl_store *store, int64_t cut_ms)
{
	struct hl_err err = HL_ERR_INIT;
	struct hl_dispatch *d = NULL;
	int64_t removed = 0;
	char n[24];

	if (cfg->dispatch != HL_DISPATCH_DIRECTORY)
		return 0;
	if (hl_dispatch_open(&d, cfg, &err) < 0 ||
	    hl_dispatch_prune(d, cut_ms, watch_task_done, store, &removed, &err) < 0) {
		hl_log_kv(HL_LOG_WARN, "removing old CodeRun files failed", "error", err.msg, NULL);
		hl_dispatch_close(d);
		return -1;
	}
	hl_dispatch_close(d);
	if (removed > 0) {
		snprintf(n, sizeof(n), "%lld", (long long)removed);
		hl_log_kv(HL_LOG_INFO, "removed old CodeRun files", "removed", n, NULL);
	}
	return removed;
}

void *
hl_loop_watcher_main(void *arg)
{
	struct hl_loop *l = arg;

	pthread_setname_np(pthread_self(), "hl-watch");
	if (l->cfg->dispatch == HL_DISPATCH_KUBERNETES && l->kube)
		watch_kubernetes(l);
	else if (l->cfg->dispatch == HL_DISPATCH_DIRECTORY)
		watch_directory(l);
	return NULL;
}
