/*
 * loop.c - the loop object: its clients, its threads (watcher, drivers,
 * outbox), wake-ups and metrics. See loop.h for what each thread does.
 *
 * Wake-ups: a task signal on the store (from this process or, on a shared
 * store, another replica) or a local hl_loop_wake wakes every sleeper; each
 * also looks on its own every HEALER_LOOP_INTERVAL_MS, so a missed signal
 * costs at most one interval. The directory watcher and the watch's error
 * backoffs keep their own period (hl_loop_nap): a task signal says nothing
 * about CodeRun files or a failing API, and under a stream of deliveries
 * each one would rescan the directory or retry the API at once.
 */
#include "base/clock.h"
#include "base/log.h"
#include "base/prom.h"
#include "base/str.h"
#include "loop_impl.h"
#include "notify/notify.h"
#include "remediate/github_shared.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void
hl_loop_wake(struct hl_loop *l)
{
	pthread_mutex_lock(&l->lock);
	l->wake_seq++;
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->lock);
}

void
hl_loop_sleep(struct hl_loop *l, int64_t timeout_ms)
{
	struct timespec ts;
	uint64_t seen;

	hl_time_deadline(&ts, CLOCK_MONOTONIC, timeout_ms);
	pthread_mutex_lock(&l->lock);
	seen = l->wake_seq;
	while (l->wake_seq == seen && !atomic_load(&l->stop))
		if (pthread_cond_timedwait(&l->cond, &l->lock, &ts) != 0)
			break;
	pthread_mutex_unlock(&l->lock);
}

void
hl_loop_nap(struct hl_loop *l, int64_t timeout_ms)
{
	struct timespec ts;

	hl_time_deadline(&ts, CLOCK_MONOTONIC, timeout_ms);
	pthread_mutex_lock(&l->lock);
	while (!atomic_load(&l->stop))
		if (pthread_cond_timedwait(&l->nap_cond, &l->lock, &ts) != 0)
			break;
	pthread_mutex_unlock(&l->lock);
}

static void
loop_on_signal(void *arg, enum hl_store_channel ch, const char *payload)
{
	if (ch == HL_CHANNEL_TASK)
		hl_loop_wake(arg);
}

void
hl_loop_owner(char *out, size_t size, const struct hl_loop *l, const char *role, long index)
{
	snprintf(out, size, "%s/%s%ld", l->owner, role, index);
}

int
hl_loop_run_once(struct hl_loop *l, const char *owner)
{
	char ids[LOOP_BATCH][HL_TASK_ID_MAX];
	struct hl_err err = HL_ERR_INIT;
	size_t n = 0, i;
	int stepped = 0;

	if (hl_store_tasks_due(l->store, ids, LOOP_BATCH, &n, hl_time_wall_ms(), &err) < 0) {
		hl_log_kv(HL_LOG_WARN, "reading due tasks failed", "error", err.msg, NULL);
		return 0;
	}
	stepped += hl_loop_observe_pending(l);
	for (i = 0; i < n && !atomic_load(&l->stop); i++)
		stepped += hl_loop_step_task(l, owner, ids[i]) > 0;
	if (!atomic_load(&l->stop))
		stepped += hl_loop_start_queued(l, owner);
	/* memories a dead process (or a failed write) left unwritten */
	if (!atomic_load(&l->stop))
		stepped += hl_loop_remember_pending(l);
	return stepped;
}

static void *
loop_driver_main(void *arg)
{
	struct hl_loop_driver *d = arg;
	struct hl_loop *l = d->l;
	char owner[LOOP_OWNER_MAX + 16];

	pthread_setname_np(pthread_self(), "hl-loop");
	hl_loop_owner(owner, sizeof(owner), l, "driver", d->index);
	while (!atomic_load(&l->stop)) {
		/* a busy pass goes straight on; an idle one sleeps */
		if (hl_loop_run_once(l, owner) == 0)
			hl_loop_sleep(l, l->cfg->loop_interval_ms);
	}
	return NULL;
}

int
hl_loop_delete_coderun(struct hl_loop *l, const char *name, struct hl_err *err)
{
	if (!name || !*name)
		return 0;
	return hl_dispatch_delete(l->dispatch, name, err);
}

bool
hl_loop_task_deciding(const struct hl_task_record *t)
{
	return t->state == HL_TASK_RUNNING && !t->agent &&
	       hl_time_wall_ms() - t->created_ms < LOOP_DECIDING_MS;
}

static void
loop_default_owner(char *out, size_t size)
{
	char host[64] = "healer";
	unsigned r = 0;
	FILE *f = fopen("/dev/urandom", "rb");

	if (f) {
		if (fread(&r, sizeof(r), 1, f) != 1)
			r = 0;
		fclose(f);
	}
	(void)gethostname(host, sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	snprintf(out, size, "%s-%ld-%08x", host, (long)getpid(), r);
}

int
hl_loop_start(struct hl_loop **out, const struct hl_config *cfg, struct hl_store *store,
              struct hl_remediator *remediator, const char *owner, struct hl_err *err)
{
	struct hl_loop *l = calloc(1, sizeof(*l));
	struct hl_err kerr = HL_ERR_INIT;
	int rc, i;

	if (!l)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	/* a bad address would lose every escalation email, found only then */
	if (cfg->smtp_url && *cfg->smtp_url && cfg->email_to && *cfg->email_to &&
	    (rc = hl_notify_email_check(cfg->email_from, cfg->email_to, err)) < 0) {
		free(l);
		return rc;
	}
	l->cfg = cfg;
	l->store = store;
	l->remediator = remediator;
	l->lim = (struct hl_loop_limits){
		.max_attempts = cfg->max_attempts,
		.attempt_timeout_ms = (int64_t)cfg->attempt_timeout_mins * 60000,
		.verify_timeout_ms = (int64_t)cfg->verify_timeout_mins * 60000,
		.verify_pods = cfg->dispatch == HL_DISPATCH_KUBERNETES,
	};
	if (owner && *owner)
		hl_strlcpy(l->owner, owner, sizeof(l->owner));
	else
		loop_default_owner(l->owner, sizeof(l->owner));
	atomic_init(&l->stop, false);
	atomic_init(&l->watch_events, 0);
	atomic_init(&l->coderun_files_read, 0);
	atomic_init(&l->watch_connected, 0);
	atomic_init(&l->watch_leader, -1);
	pthread_mutex_init(&l->lock, NULL);
	hl_cond_init_mono(&l->cond);
	hl_cond_init_mono(&l->nap_cond);
	pthread_mutex_init(&l->pending_lock, NULL);
	pthread_mutex_init(&l->runs_lock, NULL);
	pthread_mutex_init(&l->pr_reads_lock, NULL);
	pthread_mutex_init(&l->pending_apply, NULL);
	if (!(l->pending = json_object())) {
		rc = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto fail;
	}
	if ((rc = hl_dispatch_open(&l->dispatch, cfg, err)) < 0)
		goto fail;
	if (cfg->dispatch == HL_DISPATCH_KUBERNETES &&
	    (rc = hl_kube_load(&l->kube, cfg->kubeconfig, &kerr)) < 0) {
		rc = hl_err_set(err, -rc, "kubernetes: %s", kerr.msg);
		goto fail;
	}
	if (((cfg->github_token && *cfg->github_token) ||
	     (cfg->github_app_id && *cfg->github_app_id)) &&
	    (rc = hl_github_shared_new(&l->github, cfg, store, err)) < 0)
		goto fail;
	if ((rc = hl_store_subscribe(store, loop_on_signal, l, err)) < 0)
		goto fail;
	l->subscribed = true;
	if (cfg->dispatch != HL_DISPATCH_NONE) {
		if (pthread_create(&l->watcher, NULL, hl_loop_watcher_main, l) != 0) {
			rc = hl_err_set(err, HL_EINTERNAL, "cannot start the CodeRun watcher");
			goto fail;
		}
		l->watcher_started = true;
	}
	if (pthread_create(&l->outbox, NULL, hl_loop_outbox_main, l) != 0) {
		rc = hl_err_set(err, HL_EINTERNAL, "cannot start the outbox");
		goto fail;
	}
	l->outbox_started = true;
	for (i = 0; i < LOOP_DRIVERS; i++) {
		l->driver_args[i].l = l;
		l->driver_args[i].index = i;
		if (pthread_create(&l->drivers[i], NULL, loop_driver_main, &l->driver_args[i]) !=
		    0) {
			rc = hl_err_set(err, HL_EINTERNAL, "cannot start the loop's drivers");
			goto fail;
		}
		l->n_drivers++;
	}
	*out = l;
	return 0;
fail:
	hl_loop_stop(l);
	return rc;
}

void
hl_loop_stop(struct hl_loop *l)
{
	int i;

	if (!l)
		return;
	atomic_store(&l->stop, true);
	hl_loop_wake(l);
	pthread_mutex_lock(&l->lock);
	pthread_cond_broadcast(&l->nap_cond);
	pthread_mutex_unlock(&l->lock);
	for (i = 0; i < l->n_drivers; i++)
		pthread_join(l->drivers[i], NULL);
	if (l->watcher_started)
		pthread_join(l->watcher, NULL);
	if (l->outbox_started)
		pthread_join(l->outbox, NULL);
	if (l->subscribed)
		hl_store_unsubscribe(l->store, loop_on_signal, l);
	hl_dispatch_close(l->dispatch);
	hl_kube_free(l->kube);
	hl_github_free(l->github);
	pthread_cond_destroy(&l->cond);
	pthread_cond_destroy(&l->nap_cond);
	pthread_mutex_destroy(&l->lock);
	json_decref(l->pending);
	pthread_mutex_destroy(&l->pending_lock);
	pthread_mutex_destroy(&l->runs_lock);
	pthread_mutex_destroy(&l->pr_reads_lock);
	pthread_mutex_destroy(&l->pending_apply);
	free(l);
}

/* ---- metrics ------------------------------------------------------------ */

static void
loop_metric_attempt(void *arg, const char *agent, const char *failure_type, const char *outcome,
                    int64_t n)
{
	struct hl_buf *b = arg;

	hl_buf_append_str(b, "healer_attempts_total{agent=\"");
	hl_prom_label(b, agent);
	hl_buf_append_str(b, "\",failure_type=\"");
	hl_prom_label(b, failure_type);
	hl_buf_append_str(b, "\",outcome=\"");
	hl_prom_label(b, outcome);
	hl_buf_appendf(b, "\"} %lld\n", (long long)n);
}

struct loop_notif {
	struct hl_buf *b;
	int64_t pending;
};

/* Delivered and failed notifications are final (a counter); pending ones
 * are a backlog (a gauge). */
static void
loop_metric_notification(void *arg, const char *channel, const char *state, int64_t n)
{
	struct loop_notif *ln = arg;
	struct hl_buf *b = ln->b;

	if (strcmp(state, "pending") == 0) {
		ln->pending += n;
		return;
	}
	hl_buf_append_str(b, "healer_notifications_total{channel=\"");
	hl_prom_label(b, channel);
	hl_buf_append_str(b, "\",result=\"");
	hl_prom_label(b, state);
	hl_buf_appendf(b, "\"} %lld\n", (long long)n);
}

struct loop_states {
	int64_t n[HL_TASK_STATE_MAX];
};

static void
loop_metric_state(void *arg, const char *kind, const char *name, int64_t n)
{
	struct loop_states *s = arg;
	enum hl_task_state st;

	if (strcmp(kind, "state") != 0)
		return;
	st = hl_task_state_from_name(name);
	if (st != HL_TASK_STATE_INVALID)
		s->n[st] += n;
}

void
hl_loop_metrics(struct hl_loop *l, struct hl_store *reader, struct hl_buf *out)
{
	static const double bounds[] = { 60, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400 };
	enum { NB = sizeof(bounds) / sizeof(bounds[0]) };
	struct loop_states states = { { 0 } };
	struct loop_notif notif = { out, 0 };
	int64_t counts[NB + 1];
	struct hl_err err = HL_ERR_INIT;
	double sum = 0;
	struct hl_store *s = reader ? reader : l->store;
	int i;

	hl_buf_append_str(out,
	                  "# HELP healer_attempts_total Finished remediation attempts by agent, "
	                  "failure type and outcome.\n# TYPE healer_attempts_total counter\n");
	if (hl_store_attempt_outcomes(s, loop_metric_attempt, out, &err) < 0) {
		/* the family stays empty this scrape; the store's errors show on /ready */
	}

	hl_buf_append_str(out, "# HELP healer_tasks Remediation tasks by state.\n"
	                       "# TYPE healer_tasks gauge\n");
	if (hl_store_task_counts(s, loop_metric_state, &states, &err) == 0)
		for (i = 0; i < HL_TASK_STATE_MAX; i++)
			hl_buf_appendf(out, "healer_tasks{state=\"%s\"} %lld\n",
			               hl_task_state_name((enum hl_task_state)i),
			               (long long)states.n[i]);

	hl_buf_append_str(out, "# HELP healer_time_to_fix_seconds Time from the first failure to "
	                       "its verified fix.\n# TYPE healer_time_to_fix_seconds histogram\n");
	if (hl_store_time_to_fix(s, bounds, NB, counts, &sum, &err) == 0) {
		for (i = 0; i < NB; i++)
			hl_buf_appendf(out, "healer_time_to_fix_seconds_bucket{le=\"%g\"} %lld\n",
			               bounds[i], (long long)counts[i]);
		hl_buf_appendf(out, "healer_time_to_fix_seconds_bucket{le=\"+Inf\"} %lld\n",
		               (long long)counts[NB]);
		hl_buf_appendf(out, "healer_time_to_fix_seconds_sum %.3f\n", sum);
		hl_buf_appendf(out, "healer_time_to_fix_seconds_count %lld\n",
		               (long long)counts[NB]);
	}

	hl_buf_append_str(out,
	                  "# HELP healer_notifications_total Notifications by channel and result.\n"
	                  "# TYPE healer_notifications_total counter\n");
	if (hl_store_outbox_counts(s, loop_metric_notification, &notif, &err) == 0) {
		hl_buf_append_str(out, "# HELP healer_outbox_pending Notifications waiting to be "
		                       "delivered.\n# TYPE healer_outbox_pending gauge\n");
		hl_buf_appendf(out, "healer_outbox_pending %lld\n", (long long)notif.pending);
	}

	hl_buf_append_str(out, "# HELP healer_watch_restarts_total CodeRun watch reconnects and "
	                       "relists.\n# TYPE healer_watch_restarts_total counter\n");
	hl_buf_appendf(out, "healer_watch_restarts_total %llu\n",
	               (unsigned long long)atomic_load(&l->watch_stats.restarts));
	hl_buf_append_str(out, "# HELP healer_coderun_files_read_total CodeRun files read by the "
	                       "directory dispatch's watcher (new or changed ones).\n"
	                       "# TYPE healer_coderun_files_read_total counter\n");
	hl_buf_appendf(out, "healer_coderun_files_read_total %llu\n",
	               (unsigned long long)atomic_load(&l->coderun_files_read));
	hl_buf_append_str(out, "# HELP healer_watch_events_total CodeRun changes observed.\n"
	                       "# TYPE healer_watch_events_total counter\n");
	hl_buf_appendf(out, "healer_watch_events_total %llu\n",
	               (unsigned long long)atomic_load(&l->watch_events));
	hl_buf_append_str(out, "# HELP healer_watch_up Whether the CodeRun watch is connected.\n"
	                       "# TYPE healer_watch_up gauge\n");
	hl_buf_appendf(out, "healer_watch_up %d\n", atomic_load(&l->watch_connected));
	hl_buf_append_str(out, "# HELP healer_watch_leader Whether this replica leads the CodeRun "
	                       "watch.\n# TYPE healer_watch_leader gauge\n");
	hl_buf_appendf(out, "healer_watch_leader %d\n", atomic_load(&l->watch_leader) == 1);
	hl_buf_append_str(out, "# HELP healer_github_rate_limited_seconds How long until GitHub "
	                       "may be called again (the token's budget spent, or a secondary rate "
	                       "limit; shared by the replicas), 0 when it may.\n"
	                       "# TYPE healer_github_rate_limited_seconds gauge\n");
	hl_buf_appendf(out, "healer_github_rate_limited_seconds %.3f\n",
	               l->github ? (double)hl_github_budget_wait_ms(l->github) / 1000.0 : 0.0);
}
