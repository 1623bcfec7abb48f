/*
 * loop_impl.h - what the loop's files share (private to src/loop):
 *   loop.c      the object, its threads, metrics
 *   observe.c   a CodeRun's status -> its attempt (idempotent)
 *   watch.c     the watcher: Kubernetes watch or directory scan
 *   driver.c    stepping due and queued tasks
 *   ci.c        CI results that belong to a task
 *   commands.c  /healer commands
 *   outbox.c    delivering notifications; escalation messages
 *   memory.c    remembering a finished task (embedded, OpenMemory via the outbox)
 */
#ifndef HL_LOOP_LOOP_IMPL_H
#define HL_LOOP_LOOP_IMPL_H

#include "decide.h"
#include "dispatch/dispatch.h"
#include "loop.h"
#include "net/github.h"
#include "net/kube.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>

#define LOOP_DRIVERS     2
#define LOOP_BATCH       32
#define LOOP_OWNER_MAX   96
#define LOOP_WATCH_KEY   "watch.coderuns.resource_version"
#define LOOP_RESYNC_MS   (5 * 60 * 1000)  /* a full relist at least this often */
#define LOOP_PENDING_MS  (10 * 60 * 1000) /* how long a CodeRun waits for its attempt */
#define LOOP_PENDING_MAX 1024             /* CodeRuns kept waiting at most */
#define LOOP_RUN_NAMES   64               /* Actions runs remembered (ci.c) */
#define LOOP_PR_READS    64               /* running tasks' PR reads remembered (driver.c) */
#define LOOP_DECIDING_MS (2 * 60 * 1000)  /* how long a failure waits for its task's decision */

struct hl_loop {
	const struct hl_config *cfg;
	struct hl_store *store;
	struct hl_remediator *remediator;
	struct hl_dispatch *dispatch; /* delete CodeRuns, list CodeRun files */
	struct hl_kube *kube;         /* kubernetes dispatch only */
	struct hl_github *github;     /* NULL without credentials */
	struct hl_loop_limits lim;
	char owner[LOOP_OWNER_MAX]; /* this process; leases add a role and index */

	atomic_bool stop;
	pthread_mutex_t lock; /* wake-ups */
	pthread_cond_t cond;
	pthread_cond_t nap_cond; /* hl_loop_nap: signalled only at stop */
	uint64_t wake_seq;
	bool subscribed;

	pthread_t drivers[LOOP_DRIVERS];
	struct hl_loop_driver {
		struct hl_loop *l;
		long index;
	} driver_args[LOOP_DRIVERS];
	int n_drivers;
	pthread_t watcher, outbox;
	bool watcher_started, outbox_started;

	/* metrics kept in this process */
	struct hl_kube_watch_stats watch_stats; /* restarts: healer_watch_restarts_total */
	atomic_uint_fast64_t watch_events;      /* CodeRun changes applied */
	atomic_uint_fast64_t coderun_files_read; /* directory dispatch: files parsed */
	atomic_int watch_connected;             /* 1 while a watch stream (or the scan) runs */
	atomic_int watch_leader;                /* 1 while this replica leads the watch */

	/* memory.c: no pass over the pending memories before this (wall ms):
	 * a store that refuses them is asked again after a pause */
	_Atomic int_least64_t remember_after;

	/* CodeRuns seen before their attempt was recorded (observe.c): name ->
	 * {"cr": object, "since": ms}; looked at again by the drivers */
	pthread_mutex_t pending_lock;
	json_t *pending;
	pthread_mutex_t pending_apply; /* one driver applies them at a time */

	/* recent Actions runs as GitHub showed them (ci.c): the workflow's
	 * name (check_run results name none) and whether a fork's commit ran;
	 * the oldest replaced first */
	pthread_mutex_t runs_lock;
	struct hl_loop_run {
		int64_t run_id;
		char name[256];
		bool fork;
	} runs[LOOP_RUN_NAMES];
	unsigned runs_next;

	/* when this process last read the PR of a task whose agent is at
	 * work (driver.c), so a pass a CodeRun's change brings reads it no
	 * sooner than its period; the oldest replaced first */
	pthread_mutex_t pr_reads_lock;
	struct hl_loop_pr_read {
		char task_id[HL_TASK_ID_MAX];
		int64_t at_ms;
	} pr_reads[LOOP_PR_READS];
	unsigned pr_reads_next;
};

/* Wakes the drivers (a task is due) / the outbox. */
void hl_loop_wake(struct hl_loop *l);
/* Waits until woken or timeout_ms passes (or stop). */
void hl_loop_sleep(struct hl_loop *l, int64_t timeout_ms);
/* Waits until timeout_ms passes or stop; task signals do not cut it short
 * (a poll on its own period, a backoff after an error). */
void hl_loop_nap(struct hl_loop *l, int64_t timeout_ms);

/* observe.c: applies one CodeRun object (as the API or a file has it). A
 * CodeRun of healer's whose attempt is not recorded yet (the remediation
 * records it right after creating it) is kept and applied by
 * hl_loop_observe_pending once it is, for up to LOOP_PENDING_MS. */
int hl_loop_observe(struct hl_loop *l, const json_t *coderun, struct hl_err *err);
/* observe.c: the newest pod of Job job (a Job retrying its pod has
 * several), in pod (size bytes): whose log is the agent's output in the
 * next prompt. False when there is none or the cluster did not answer
 * (logged). */
bool hl_loop_job_pod(struct hl_loop *l, const char *job, char *pod, size_t size);
/* observe.c: applies the kept CodeRuns whose attempt is now recorded;
 * returns how many were applied. */
int hl_loop_observe_pending(struct hl_loop *l);

/* watch.c: the watcher thread. */
void *hl_loop_watcher_main(void *arg);

/* driver.c: steps one task under its lease, held as owner (each driver
 * thread, and each command, is its own owner); returns 1 when it acted. */
int hl_loop_step_task(struct hl_loop *l, const char *owner, const char *task_id);
/* driver.c: starts the queued tasks the budgets allow; returns how many. */
int hl_loop_start_queued(struct hl_loop *l, const char *owner);
/* loop.c: owner (LOOP_OWNER_MAX + 16 bytes) for role and index. */
void hl_loop_owner(char *out, size_t size, const struct hl_loop *l, const char *role, long index);
/* driver.c: starts the next attempt of t with agent (and a human's hint,
 * given by hint_author), or queues the task when a budget is used up (the
 * hint and its author wait with it).
 * Returns 0 when it started, 1 when the task was queued, <0 on errors. */
int hl_loop_next_attempt(struct hl_loop *l, const struct hl_task_record *t, const char *agent,
                         const char *hint, const char *hint_author, struct hl_err *err);

/* outbox.c: enqueues the escalation of a task to every configured channel. */
int hl_loop_escalate(struct hl_loop *l, const struct hl_task_record *t, struct hl_err *err);
/* outbox.c: enqueues a PR comment (kind, ref distinguish it). */
int hl_loop_comment(struct hl_loop *l, const char *task_id, const char *repository,
                    int64_t pr_number, const char *kind, const char *ref, const char *body,
                    struct hl_err *err);
/* outbox.c: enqueues the /healer status reply (ref: the comment) on the n
 * tasks of a PR (newest first; more: how many others it has), as one
 * comment keyed by key_task_id; with none, that the PR has no remediation. */
int hl_loop_report_comment(struct hl_loop *l, struct hl_task_record *const *tasks, size_t n,
                           size_t more, const char *key_task_id, const char *repository,
                           const char *ref, int64_t pr_number, struct hl_err *err);
/* outbox.c: the outbox thread. */
void *hl_loop_outbox_main(void *arg);

/* memory.c: remembers a task that ended succeeded or escalated (anything
 * else is ignored) and marks its memory written; failures are logged and
 * returned (<0), the task's memory then still pending. */
int hl_loop_remember(struct hl_loop *l, const char *task_id);
/* memory.c: remembers the tasks whose memory is still pending (a process
 * that died, or a store that failed, after the task ended); how many. */
int hl_loop_remember_pending(struct hl_loop *l);

/* The agent of a finished attempt's CodeRun deleted (timeout, stop);
 * 0 when gone or never there. */
int hl_loop_delete_coderun(struct hl_loop *l, const char *name, struct hl_err *err);
/* Stops task t, whose lease the caller holds, as /healer stop does (its
 * CodeRuns deleted, the attempt and the task stopped with reason); a task
 * whose agent is done (verifying) is left as it is. 1 when it stopped, 0
 * when it was left, or < 0. */
int hl_loop_stop_task(struct hl_loop *l, const struct hl_task_record *t, const char *reason,
                      struct hl_err *err);

/* Whether t is claimed and its first attempt still being decided (context,
 * decision, CodeRun): its claim has no agent yet and is younger than
 * LOOP_DECIDING_MS (an older one's process died; its delivery waits). */
bool hl_loop_task_deciding(const struct hl_task_record *t);

#endif
