/*
 * cmd_server.c - `healer server`: load the configuration, open the store as
 * its server (on SQLite it holds healer.db.lock beside it: a second server
 * is refused; commands never take it), re-queue interrupted deliveries,
 * start the remediation loop, the workers, the HTTP server and the
 * redelivery of failed GitHub deliveries, then wait for SIGTERM/SIGINT and
 * shut down gracefully:
 *   (HEALER_SHUTDOWN_DELAY_S: /ready 503, still serving and processing)
 *   -> workers claim no new delivery (those stored from now on wait,
 *   received, for the next start or another replica) -> stop accepting
 *   -> answer in-flight requests (their deliveries commit; at most
 *   SERVER_DRAIN_MS) -> workers finish their current delivery -> stop
 *   HTTP -> the loop's threads finish their step -> close the store
 *   (checkpoint) -> exit 0.
 * What follows the drain has SERVER_FINISH_MS: an upstream call in flight
 * cannot be cancelled, so past that the process exits 1 at once, as a
 * SIGKILL would end it (claims left are taken back on the next start).
 * SIGHUP, SIGUSR1 and SIGUSR2 are logged and ignored (nothing is reloaded).
 * Signals are blocked in every thread and taken with sigwait() here, so no
 * handler runs in a library thread.
 */
#include "alerts/alerts.h"
#include "base/clock.h"
#include "base/file.h"
#include "base/log.h"
#include "base/pause.h"
#include "cmd.h"
#include "config/config.h"
#include "core/pipeline.h"
#include "core/worker.h"
#include "http/server.h"
#include "loop/loop.h"
#include "loop/redeliver.h"
#include "loop/retention.h"
#include "remediate/remediate.h"
#include "store/store.h"
#include "version.h"

#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SERVER_DRAIN_MS 10000
#define SERVER_FINISH_MS 10000

/* Whether sig ends the server; the others (SIGPIPE, SIGHUP, SIGUSR1/2) are
 * taken here so that none ends the process without its shutdown. */
static bool
server_stop_signal(int sig)
{
	if (sig == SIGTERM || sig == SIGINT)
		return true;
	if (sig != SIGPIPE)
		hl_log_kv(HL_LOG_INFO, "signal ignored: the server reloads nothing", "signal",
		          strsignal(sig), NULL);
	return false;
}

/* Ends the process if the shutdown outlasts SERVER_FINISH_MS after the drain. */
static void *
server_watchdog(void *arg)
{
	struct hl_pause *p = arg;
	char ms[16];

	if (hl_pause_sleep(p, SERVER_FINISH_MS)) {
		snprintf(ms, sizeof(ms), "%d", SERVER_FINISH_MS);
		hl_log_kv(HL_LOG_ERROR,
		          "shutdown still not done; exiting without it (claims are taken back "
		          "on the next start)",
		          "waited_ms", ms, NULL);
		hl_log_flush();
		_exit(1);
	}
	return NULL;
}

/*
 * The shutdown delay: /ready answers 503 while every route is still served,
 * for delay_s seconds or until another SIGTERM/SIGINT, so the endpoints of
 * a Kubernetes Service drop this pod before it stops accepting.
 */
static void
server_leave(struct hl_http_server *http, const sigset_t *set, int delay_s)
{
	struct timespec until, left;
	char secs[16];
	int sig;

	if (delay_s <= 0)
		return;
	hl_http_server_leave(http);
	snprintf(secs, sizeof(secs), "%d", delay_s);
	hl_log_kv(HL_LOG_INFO, "not ready; still serving before the drain", "seconds", secs, NULL);
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += delay_s;
	for (;;) {
		struct timespec now;

		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec > until.tv_sec ||
		    (now.tv_sec == until.tv_sec && now.tv_nsec >= until.tv_nsec))
			return;
		left.tv_sec = until.tv_sec - now.tv_sec;
		left.tv_nsec = until.tv_nsec - now.tv_nsec;
		if (left.tv_nsec < 0) {
			left.tv_sec--;
			left.tv_nsec += 1000000000L;
		}
		sig = sigtimedwait(set, NULL, &left);
		if (sig > 0 && server_stop_signal(sig)) {
			hl_log_kv(HL_LOG_INFO, "shutting down now", "signal", strsignal(sig), NULL);
			return;
		}
		/* another signal, EINTR or EAGAIN (the time is up): look at the clock */
	}
}

static void
server_loop_metrics(void *arg, struct hl_store *reader, struct hl_buf *out)
{
	hl_loop_metrics(arg, reader, out);
}

static void
server_retention_metrics(void *arg, struct hl_store *reader, struct hl_buf *out)
{
	(void)reader;
	hl_retention_metrics(arg, out);
}

static void
server_redeliver_metrics(void *arg, struct hl_store *reader, struct hl_buf *out)
{
	(void)reader;
	hl_redeliver_metrics(arg, out);
}

int
hl_cmd_server(int argc, char **argv)
{
	static const struct hl_opt opts[] = {
		{ "listen", true, 'l' },    { "data-dir", true, 'd' }, { "config", true, 'c' },
		{ "port-file", true, 'p' }, { NULL, false, 0 },
	};
	struct hl_config_override ov[2];
	struct hl_err err = HL_ERR_INIT;
	struct hl_config *cfg = NULL;
	struct hl_store *store = NULL;
	struct hl_pipeline *pipeline = NULL;
	struct hl_remediator *remediator = NULL;
	struct hl_alerts *alerts = NULL;
	struct hl_loop *loop = NULL;
	struct hl_redeliver *redeliver = NULL;
	struct hl_retention *retention = NULL;
	struct hl_workers *workers = NULL;
	struct hl_http_server *http = NULL;
	const char *config_file = NULL, *port_file = NULL, *listen_flag = NULL,
	           *data_dir_flag = NULL, *arg;
	char port[32], addr[300];
	int64_t requeued = 0;
	size_t nov = 0;
	int idx = 1, opt, sig = 0, rc = 1, level;
	sigset_t set;
	struct hl_pause wd;
	bool watchdog = false;

	while ((opt = hl_cmd_getopt("server", argc, argv, opts, &arg, &idx)) != -1) {
		switch (opt) {
		case '?':
			return 2;
		case 'l':
			listen_flag = arg; /* the last of a repeated flag wins */
			break;
		case 'd':
			data_dir_flag = arg;
			break;
		case 'c':
			config_file = arg;
			break;
		case 'p':
			port_file = arg;
			break;
		}
	}
	if (idx < argc)
		return hl_cmd_usage_error("server", "unexpected argument '%s'", argv[idx]);
	if (listen_flag)
		ov[nov++] = (struct hl_config_override){ "HEALER_LISTEN", listen_flag };
	if (data_dir_flag)
		ov[nov++] = (struct hl_config_override){ "HEALER_DATA_DIR", data_dir_flag };

	/*
	 * Keep freed heap memory instead of returning it to the kernel after
	 * every request, and serve requests under 1 MiB from the heap: page
	 * faults on fresh memory are expensive (notably under virtualization)
	 * and a request allocates and frees the same sizes again and again.
	 * Peak RSS is unchanged; the retained memory is bounded by it.
	 */
	mallopt(M_MMAP_THRESHOLD, 1 << 20);
	mallopt(M_TRIM_THRESHOLD, 16 << 20);

	/* Before any thread exists, so every thread inherits the mask. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGPIPE);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	if (hl_config_load(&cfg, config_file, ov, nov, &err) < 0)
		return hl_cmd_fail("invalid configuration: %s", err.msg);
	if (cfg->log_level && (level = hl_log_parse_level(cfg->log_level)) >= 0)
		hl_log_set_level((enum hl_log_level)level);
	if (hl_config_check_auth(cfg, &err) < 0) {
		hl_cmd_fail("invalid configuration: %s", err.msg);
		goto out;
	}
	if (cfg->n_webhook_secrets == 0)
		hl_log_kv(
		        HL_LOG_WARN,
		        "webhook deliveries are not authenticated: GITHUB_WEBHOOK_SECRET is not set",
		        "listen", cfg->listen, NULL);
	if (!cfg->api_token)
		hl_log_kv(HL_LOG_WARN,
		          "sensor calls are not authenticated: HEALER_API_TOKEN is not set",
		          "listen", cfg->listen, NULL);
	if (hl_file_mkdirs(cfg->data_dir, &err) < 0) {
		hl_cmd_fail("cannot create data directory: %s", err.msg);
		goto out;
	}
	/* HL_STORE_SERVER: one server per SQLite store (a second one would
	 * process the same deliveries; the lock goes with the process, even on
	 * SIGKILL); any number of replicas on PostgreSQL */
	if (hl_store_open_with(&store, cfg->database_url, HL_STORE_SERVER, &err) < 0) {
		hl_cmd_fail("cannot open the store: %s", err.msg);
		goto out;
	}
	/* a delivery claim lives as long as a task lease: a dead replica's
	 * claims are taken over within HEALER_LEASE_SECONDS */
	hl_store_set_claim_lease(store, (int64_t)cfg->lease_seconds * 1000);
	if (hl_store_recover(store, &requeued, &err) < 0) {
		hl_cmd_fail("store recovery failed: %s", err.msg);
		goto out;
	}
	if (requeued > 0) {
		snprintf(port, sizeof(port), "%lld", (long long)requeued);
		hl_log_kv(HL_LOG_WARN, "re-queued deliveries interrupted by a previous run",
		          "count", port, NULL);
	}
	if (hl_remediator_new(&remediator, cfg, store, &err) < 0) {
		hl_cmd_fail("cannot start the remediator: %s", err.msg);
		goto out;
	}
	/* alerts from running systems; their retries come back through the
	 * remediator's kind handlers, so they are registered before the loop */
	if (hl_alerts_new(&alerts, cfg, store, remediator, &err) < 0 ||
	    hl_alerts_register(alerts, &err) < 0) {
		hl_cmd_fail("cannot start the alert processor: %s", err.msg);
		goto out;
	}
	if (hl_loop_start(&loop, cfg, store, remediator, NULL, &err) < 0) {
		hl_cmd_fail("cannot start the remediation loop: %s", err.msg);
		goto out;
	}
	if (hl_pipeline_new(&pipeline, cfg, store, remediator, loop, &err) < 0) {
		hl_cmd_fail("cannot start the pipeline: %s", err.msg);
		goto out;
	}
	hl_pipeline_set_alerts(pipeline, alerts);
	if (hl_http_server_start(&http, cfg, store, HL_VERSION, &err) < 0) {
		hl_cmd_fail("cannot start the HTTP server: %s", err.msg);
		goto out;
	}
	hl_http_server_add_metrics(http, server_loop_metrics, loop);
	if (hl_workers_start(&workers, cfg->workers, cfg, store, pipeline, &err) < 0) {
		hl_cmd_fail("cannot start the workers: %s", err.msg);
		goto out;
	}
	/* deliveries stored from now on may go straight to these workers */
	if (hl_store_set_handoff(store, cfg->workers * cfg->worker_handoff, &err) < 0) {
		hl_cmd_fail("cannot hand deliveries to the workers: %s", err.msg);
		goto out;
	}
	/* after the HTTP server: a delivery GitHub sends again finds it listening */
	if (hl_redeliver_start(&redeliver, cfg, store, &err) < 0) {
		hl_cmd_fail("cannot start the redelivery of failed GitHub deliveries: %s", err.msg);
		goto out;
	}
	hl_http_server_add_metrics(http, server_redeliver_metrics, redeliver);
	if (hl_retention_start(&retention, cfg, store, &err) < 0) {
		hl_cmd_fail("cannot start the removal of old deliveries: %s", err.msg);
		goto out;
	}
	hl_http_server_add_metrics(http, server_retention_metrics, retention);
	snprintf(port, sizeof(port), "%d", hl_http_server_port(http));
	snprintf(addr, sizeof(addr), "%s:%d", cfg->listen_host, hl_http_server_port(http));
	if (port_file && hl_file_write_atomic(port_file, port, strlen(port), &err) < 0) {
		hl_cmd_fail("cannot write the port file: %s", err.msg);
		goto out;
	}
	{
		/* a password may be a URL parameter too: the store as messages show it */
		struct hl_buf shown = HL_BUF_INIT(0);

		hl_store_url_display(&shown, cfg->database_url);
		hl_log_kv(HL_LOG_INFO, "listening", "address", addr, "store",
		          shown.data ? shown.data : "", "version", HL_VERSION, NULL);
		hl_buf_release(&shown);
	}

	do {
		if (sigwait(&set, &sig) != 0)
			sig = SIGTERM;
	} while (!server_stop_signal(sig));
	hl_log_kv(HL_LOG_INFO, "shutting down", "signal", strsignal(sig), NULL);
	server_leave(http, &set, cfg->shutdown_delay_s);
	/* no new claim from here: the drain is for the requests in flight */
	hl_workers_quiesce(workers);
	if (!hl_http_server_drain(http, SERVER_DRAIN_MS))
		hl_warn("requests still in flight after %d ms; closing them", SERVER_DRAIN_MS);
	watchdog = hl_pause_start(&wd, server_watchdog, &wd) == 0;
	rc = 0;
out:
	hl_retention_stop(retention);
	hl_redeliver_stop(redeliver);
	/* workers first: they publish decisions into the HTTP server */
	hl_workers_stop(workers);
	hl_http_server_stop(http);
	hl_pipeline_free(pipeline);
	hl_loop_stop(loop);
	hl_alerts_free(alerts);
	hl_remediator_free(remediator);
	hl_store_close(store);
	if (watchdog)
		hl_pause_finish(&wd);
	if (rc == 0)
		hl_info("stopped");
	hl_config_free(cfg);
	return rc;
}
