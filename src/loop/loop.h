/*
 * loop.h - the remediation loop (contract section 9): healer follows every
 * CodeRun it creates to an outcome, judges it by CI, retries with more
 * context, escalates to people when the attempts run out, and obeys
 * /healer commands.
 *
 * Threads (started by hl_loop_start, stopped by hl_loop_stop):
 *   watcher  follows the CodeRuns: the Kubernetes watch (resume, bookmarks,
 *            relist on 410, reconnect with backoff) or, in directory
 *            dispatch, a scan of the CodeRun files' status; each change is
 *            written to its attempt and the task is marked due;
 *   drivers  take due tasks under a lease, judge them (decide.h) and act:
 *            next attempt, success, escalation; start queued tasks when
 *            the budgets allow;
 *   outbox   delivers the notifications the drivers enqueued, with
 *            retries and backoff.
 * All state is in the store, so a restart or another replica continues
 * where the loop stopped and applies no transition twice.
 *
 * The pipeline (core/) hands it CI results and /healer commands.
 */
#ifndef HL_LOOP_LOOP_H
#define HL_LOOP_LOOP_H

#include "base/buf.h"
#include "base/err.h"
#include "config/config.h"
#include "event/event.h"
#include "remediate/remediate.h"
#include "store/store.h"

#include <stdbool.h>

struct hl_loop;

/*
 * Starts the loop's threads. cfg, store and remediator are borrowed and
 * must outlive the loop. owner names this process in task leases (NULL:
 * host name and process id).
 */
int hl_loop_start(struct hl_loop **out, const struct hl_config *cfg, struct hl_store *store,
                  struct hl_remediator *remediator, const char *owner,
                  struct hl_err *err) HL_MUST_CHECK;
/* Stops the threads (each finishes what it is doing) and frees. NULL is a no-op. */
void hl_loop_stop(struct hl_loop *l);
/*
 * Directory dispatch: removes the CodeRun files last written before cut_ms
 * (wall clock) in a terminal phase whose task is final (or no longer
 * stored); returns how many went, or -1 when the directory could not be
 * read (logged). 0 in the other modes.
 */
int64_t hl_loop_prune_coderuns(const struct hl_config *cfg, struct hl_store *store, int64_t cut_ms);

/*
 * A completed CI object (workflow_job, check_run or workflow_run, success
 * or failure) of a workflow + job that an active task is remediating on
 * that branch: recorded on the task (the "current CI status") and the task
 * is marked due. Returns 1 with the task id in task_id (HL_TASK_ID_MAX
 * bytes) when it belonged to one, 0 when not. own_task (may be NULL) is the
 * task the delivery itself starts: a failure belongs to it only while it
 * is queued (otherwise that is the failure processed again after a
 * restart cut its remediation short, and the remediation resumes).
 * Returns 2 (task_id set) for a failure of a task still being decided
 * (claimed, no agent yet): the delivery is to be tried again after a
 * pause, when the task is either running (the failure is its result) or
 * ended (the failure starts its own task).
 */
int hl_loop_ci_event(struct hl_loop *l, char *task_id, const struct hl_event *ev,
                     const char *delivery_id, const char *own_task, struct hl_err *err);

/* What a /healer command did. */
struct hl_loop_command_result {
	char outcome[32];             /* "fixing", "retrying", "status", "stopped", "refused",
	                                 "nothing", ... */
	char task_id[HL_TASK_ID_MAX]; /* the task concerned, or "" */
	char detail[192];
};

/*
 * Obeys (or refuses) a /healer command of ev (intent COMMAND); task_id is
 * the id answered at intake (replies are filed under it). Authors not in
 * HEALER_COMMAND_ASSOCIATIONS get a reply; an obeyed command gets an
 * `eyes` reaction. Idempotent per comment. Returns 2 when a task it acts on
 * is still being decided (its first CodeRun may exist, its attempt not
 * yet): the command is to be given again after a pause.
 */
int hl_loop_command(struct hl_loop *l, struct hl_loop_command_result *out,
                    const struct hl_event *ev, const char *task_id,
                    struct hl_err *err) HL_MUST_CHECK;

/*
 * A pull request closed or merged (ev: pull_request "closed"; its
 * conclusion says which): every task of the PR still queued or with an
 * agent at work (running) is stopped, as /healer stop does, its CodeRun
 * deleted, with the reason "the pull request was closed" or "... merged";
 * so is the newest such task of the PR's head branch that names no PR
 * and ran on one of its commits. A task whose agent is done (verifying)
 * is left to be judged. out says what was done (outcome "stopped" or
 * "nothing"). Returns 2, like hl_loop_command, when a task is still being
 * decided: the event is to be given again after a pause.
 */
int hl_loop_pr_closed(struct hl_loop *l, struct hl_loop_command_result *out,
                      const struct hl_event *ev, const char *task_id,
                      struct hl_err *err) HL_MUST_CHECK;

/* Appends the loop's Prometheus metrics (contract section 9) to out,
 * reading the store through reader (NULL: the loop's own handle). */
void hl_loop_metrics(struct hl_loop *l, struct hl_store *reader, struct hl_buf *out);

/* One pass over due and queued tasks now, leasing them as owner (a driver
 * thread's name for itself). Returns how many tasks were stepped. */
int hl_loop_run_once(struct hl_loop *l, const char *owner);

#endif
