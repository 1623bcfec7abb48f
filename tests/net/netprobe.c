/*
 * netprobe.c - a test-only command line over the net library (src/net),
 * driven by the Python integration tests against the stub servers. Every subcommand prints one JSON
 * document (or JSON lines for watch) on stdout; a library error prints {"error": name, "message":
 * text} and exits 1.
 *
 *   netprobe fetch < {"deadline_ms": N, "requests": [{method, url, headers[],
 *                     auth, body, timeout_ms, max_body, keep_tail,
 *                     follow_redirects, max_retries, backoff_ms, ca_file,
 *                     ca_data, insecure, rate_wait_unsaid_ms}], "threads": T,
 *                     "rounds": R}
 *   netprobe kube config | get-pod NS P | log NS P C TAIL PREV | events NS P |
 *                 list-pods NS SEL | list-coderuns NS SEL | create-coderun NS (< manifest) |
 *                 get-coderun NS NAME | delete-coderun NS NAME |
 *                 coderun-status NS NAME | job-pods NS JOB | job-logs NS JOB TAIL CAP |
 *                 watch NS SEL MS STOP_AFTER [rv=] [backoff=] [backoff_max=]
 *                       [timeout_s=] [limit=] [lists=1] [sigterm=1] |
 *                 argocd NS NAME                  (KUBECONFIG from the env)
 *   netprobe github failed-jobs R RUN | job-log R JOB CAP | pr R BRANCH |
 *                   pr-files R N MAX | commit-files R SHA | check-run R ID |
 *                   comment R N BODY | repeat R RUN COUNT |
 *                   call METHOD PATH [JSON] | react R COMMENT CONTENT [review] | rerun R RUN |
 *                   runs R WORKFLOW BRANCH SHA STATUS CREATED MAX ("-": none) |
 *                   jobs R RUN | verdict R WORKFLOW BRANCH JOB SINCE(RFC 3339|0) |
 *                   compare R BASE HEAD MAX | check-runs R REF MAX | pull R N |
 *                   deliveries repo|org|app TARGET HOOK SINCE MAX |
 *                   redeliver repo|org|app TARGET HOOK DELIVERY
 *                   (GITHUB_API_URL, GITHUB_TOKEN, GITHUB_APP_* from the env)
 *   netprobe sources argocd SERVER TOKEN NAME | loki BASE QUERY | prom BASE QUERY
 */
#include "base/buf.h"
#include "base/clock.h"
#include "base/file.h"
#include "base/log.h"
#include "base/str.h"
#include "net/fetch.h"
#include "net/github.h"
#include "net/kube.h"
#include "net/sources.h"

#include "json/json.h"
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
probe_fail(const struct hl_err *err)
{
	json_t *o = json_pack("{s:s, s:s}", "error", hl_err_name(err->code), "message", err->msg);
	char *s = json_dumps(o, JSON_COMPACT);

	printf("%s\n", s);
	free(s);
	json_decref(o);
	return 1;
}

static int
probe_print(json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

	printf("%s\n", s ? s : "null");
	free(s);
	json_decref(v);
	return 0;
}

static json_t *
probe_stdin_json(void)
{
	struct hl_buf b = HL_BUF_INIT(0);
	struct hl_err err = HL_ERR_INIT;
	json_t *v = NULL;

	if (hl_file_read(&b, "-", &err) < 0 || hl_json_parse(&v, b.data, b.len, &err) < 0) {
		fprintf(stderr, "netprobe: stdin: %s\n", err.msg);
		v = NULL;
	}
	hl_buf_release(&b);
	return v;
}

/* "threads": T, "rounds": R - the same batch run R times in each of T
 * threads at once (the fetch layer's process-wide share under contention);
 * prints how many requests answered 200 and the first failure. */
struct probe_fetch_thread {
	pthread_t tid;
	const struct hl_fetch_req *rq;
	size_t n;
	int rounds;
	int ok, failed;
	char first_error[256];
};

static void *
probe_fetch_thread_main(void *arg)
{
	struct probe_fetch_thread *t = arg;
	struct hl_fetch_res *rs = calloc(t->n ? t->n : 1, sizeof(*rs));
	int r;
	size_t i;

	for (r = 0; rs && r < t->rounds; r++) {
		struct hl_err err = HL_ERR_INIT;

		if (hl_fetch_run(t->rq, rs, t->n, 0, &err) < 0) {
			t->failed += (int)t->n;
			if (!t->first_error[0])
				snprintf(t->first_error, sizeof(t->first_error), "%.200s", err.msg);
			continue;
		}
		for (i = 0; i < t->n; i++) {
			if (rs[i].status == 200) {
				t->ok++;
			} else {
				t->failed++;
				if (!t->first_error[0])
					snprintf(t->first_error, sizeof(t->first_error),
					         "%d %.200s", (int)rs[i].status, rs[i].err.msg);
			}
			hl_fetch_res_release(&rs[i]);
		}
	}
	free(rs);
	return NULL;
}

static int
probe_fetch_threads(const struct hl_fetch_req *rq, size_t n, int threads, int rounds, int64_t t0)
{
	struct probe_fetch_thread *ts = calloc((size_t)threads, sizeof(*ts));
	const char *first_error = "";
	int i, started = 0, ok = 0, failed = 0;

	if (!ts)
		return 2;
	for (i = 0; i < threads; i++) {
		ts[i].rq = rq;
		ts[i].n = n;
		ts[i].rounds = rounds;
		if (pthread_create(&ts[i].tid, NULL, probe_fetch_thread_main, &ts[i]) != 0)
			break;
		started++;
	}
	for (i = 0; i < started; i++) {
		pthread_join(ts[i].tid, NULL);
		ok += ts[i].ok;
		failed += ts[i].failed;
		if (!first_error[0])
			first_error = ts[i].first_error;
	}
	probe_print(json_pack("{s:i, s:i, s:i, s:s, s:I}", "threads", started, "ok", ok, "failed",
	                      failed, "first_error", first_error, "elapsed_ms",
	                      (json_int_t)(hl_time_mono_ms() - t0)));
	free(ts);
	return 0;
}

static int
probe_fetch(void)
{
	json_t *in = probe_stdin_json(), *reqs, *r, *out, *arr;
	struct hl_fetch_req *rq;
	struct hl_fetch_res *rs;
	struct hl_err err = HL_ERR_INIT;
	size_t n, i, j;
	int64_t t0, deadline = 0;

	if (!in)
		return 2;
	reqs = json_object_get(in, "requests");
	n = json_array_size(reqs);
	rq = calloc(n ? n : 1, sizeof(*rq));
	rs = calloc(n ? n : 1, sizeof(*rs));
	json_array_foreach(reqs, i, r)
	{
		json_t *h;

		rq[i].method = hl_json_str(r, "method");
		rq[i].url = hl_json_str(r, "url");
		rq[i].auth = hl_json_str(r, "auth");
		rq[i].body = hl_json_str(r, "body");
		rq[i].body_len = rq[i].body ? strlen(rq[i].body) : 0;
		rq[i].timeout_ms = hl_json_int(r, "timeout_ms", 0);
		rq[i].max_body = (size_t)hl_json_int(r, "max_body", 0);
		rq[i].keep_tail = hl_json_bool(r, "keep_tail", false);
		rq[i].follow_redirects = hl_json_bool(r, "follow_redirects", false);
		rq[i].max_retries = (int)hl_json_int(r, "max_retries", -1);
		rq[i].backoff_ms = hl_json_int(r, "backoff_ms", 0);
		rq[i].ca_file = hl_json_str(r, "ca_file");
		rq[i].ca_data = hl_json_str(r, "ca_data");
		rq[i].insecure = hl_json_bool(r, "insecure", false);
		rq[i].rate_wait_unsaid_ms = hl_json_int(r, "rate_wait_unsaid_ms", 0);
		json_array_foreach(json_object_get(r, "headers"), j, h)
		{
			if (j + 1 < HL_FETCH_MAX_HEADERS)
				rq[i].headers[j] = json_string_value(h);
		}
	}
	t0 = hl_time_mono_ms();
	if (hl_json_int(in, "deadline_ms", 0) > 0)
		deadline = t0 + hl_json_int(in, "deadline_ms", 0);
	if (hl_json_int(in, "threads", 0) > 0) {
		int rc = probe_fetch_threads(rq, n, (int)hl_json_int(in, "threads", 0),
		                             (int)hl_json_int(in, "rounds", 1), t0);
		free(rq);
		free(rs);
		json_decref(in);
		return rc;
	}
	if (hl_fetch_run(rq, rs, n, deadline, &err) < 0) {
		free(rq);
		free(rs);
		json_decref(in);
		return probe_fail(&err);
	}
	arr = json_array();
	for (i = 0; i < n; i++) {
		json_array_append_new(
		        arr,
		        json_pack("{s:i, s:s%, s:b, s:s, s:s, s:i, s:I, s:I, s:I, s:I, s:s, s:s}",
		                  "status", (int)rs[i].status, "body", rs[i].body.data,
		                  rs[i].body.len, "truncated", rs[i].truncated, "error",
		                  rs[i].err.code ? hl_err_name(rs[i].err.code) : "", "message",
		                  rs[i].err.msg, "attempts", rs[i].attempts, "elapsed_ms",
		                  (json_int_t)rs[i].elapsed_ms, "retry_after",
		                  (json_int_t)rs[i].retry_after_s, "rl_remaining",
		                  (json_int_t)rs[i].ratelimit_remaining, "rl_reset",
		                  (json_int_t)rs[i].ratelimit_reset, "location", rs[i].location,
		                  "link", rs[i].link));
		hl_fetch_res_release(&rs[i]);
	}
	out = json_pack("{s:I, s:o}", "elapsed_ms", (json_int_t)(hl_time_mono_ms() - t0), "results",
	                arr);
	free(rq);
	free(rs);
	json_decref(in);
	return probe_print(out);
}

struct probe_watch {
	int stop_after;
	int seen;
	char *rv;
	bool lists; /* print "LIST" at the start of each (re)list */
};

static atomic_bool probe_stop;
static _Atomic int64_t probe_stop_at;

static void
probe_on_sigterm(int sig)
{
	(void)sig;
	atomic_store(&probe_stop_at, hl_time_mono_ms());
	atomic_store(&probe_stop, true);
}

static int
probe_watch_cb(void *ud, const char *type, json_t *obj)
{
	struct probe_watch *w = ud;

	if (strcmp(type, "LIST") == 0) {
		if (w->lists)
			printf("LIST\n");
		fflush(stdout);
		return 0;
	}
	if (strcmp(type, "SYNCED") == 0)
		printf("SYNCED\n");
	else if (strcmp(type, "BOOKMARK") == 0)
		printf("BOOKMARK %s %s\n", hl_json_str_or(obj, "metadata.resourceVersion", "?"),
		       w->rv);
	else
		printf("%s %s %s\n", type, hl_json_str_or(obj, "metadata.name", "?"),
		       hl_json_str_or(obj, "status.phase", "-"));
	fflush(stdout);
	if (strcmp(type, "SYNC") != 0 && strcmp(type, "SYNCED") != 0 &&
	    strcmp(type, "BOOKMARK") != 0 && w->stop_after > 0 && ++w->seen >= w->stop_after)
		return -1;
	return 0;
}

/*
 * kube watch NS SEL MS STOP_AFTER [rv=RV] [backoff=MS] [backoff_max=MS]
 * [timeout_s=N] [limit=N] [max_pages=N] [retry_after_max=MS] [lists=1] [sigterm=1]: MS 0
 * means no deadline (then sigterm=1 gives the stop flag, set by SIGTERM). Prints one line
 * per callback ("CAPPED <asked_s> <capped_ms> <from>" for a server's wait cut to the
 * longest; "LIST" at each list's start only with lists=1), then "END <rv> <stats JSON>"
 * (its list_page too).
 */
static void
probe_watch_capped(void *ud, const char *from, int64_t asked_s, int64_t capped_ms)
{
	(void)ud;
	printf("CAPPED %lld %lld %s\n", (long long)asked_s, (long long)capped_ms, from);
	fflush(stdout);
}

static int
probe_kube_watch(const struct hl_kube *k, int argc, char **argv)
{
	struct hl_kube_watch_stats stats;
	struct hl_kube_watch_opts o;
	struct hl_err err = HL_ERR_INIT;
	char rv[64] = "";
	struct probe_watch w = { atoi(argv[4]), 0, rv, false };
	int64_t ms = atol(argv[3]), t_end;
	json_t *st;
	char *text;
	int i, ret;

	memset(&stats, 0, sizeof(stats));
	memset(&o, 0, sizeof(o));
	o.ns = argv[1];
	o.label_selector = *argv[2] ? argv[2] : NULL;
	o.resource_version = rv;
	o.rv_size = sizeof(rv);
	o.deadline_ms = ms > 0 ? hl_time_mono_ms() + ms : 0;
	o.fn = probe_watch_cb;
	o.ud = &w;
	o.stats = &stats;
	o.wait_capped = probe_watch_capped;
	for (i = 5; i < argc; i++) {
		const char *a = argv[i];

		if (strncmp(a, "rv=", 3) == 0)
			hl_strlcpy(rv, a + 3, sizeof(rv));
		else if (strncmp(a, "backoff=", 8) == 0)
			o.backoff_ms = atol(a + 8);
		else if (strncmp(a, "backoff_max=", 12) == 0)
			o.backoff_max_ms = atol(a + 12);
		else if (strncmp(a, "timeout_s=", 10) == 0)
			o.watch_timeout_s = atoi(a + 10);
		else if (strncmp(a, "limit=", 6) == 0)
			o.list_limit = atoi(a + 6);
		else if (strncmp(a, "max_pages=", 10) == 0)
			o.list_max_pages = atoi(a + 10);
		else if (strncmp(a, "retry_after_max=", 16) == 0)
			o.retry_after_max_ms = atol(a + 16);
		else if (strcmp(a, "lists=1") == 0)
			w.lists = true;
		else if (strcmp(a, "sigterm=1") == 0) {
			struct sigaction sa;

			memset(&sa, 0, sizeof(sa));
			sa.sa_handler = probe_on_sigterm;
			sigaction(SIGTERM, &sa, NULL);
			o.stop = &probe_stop;
		}
	}
	ret = hl_kube_watch(k, &o, &err);
	t_end = hl_time_mono_ms();
	if (ret < 0)
		return probe_fail(&err);
	st = json_pack(
	        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s}", "restarts",
	        (json_int_t)stats.restarts, "reconnects", (json_int_t)stats.reconnects, "relists",
	        (json_int_t)stats.relists, "rewatches", (json_int_t)stats.rewatches, "events",
	        (json_int_t)stats.events, "bookmarks", (json_int_t)stats.bookmarks, "waits_capped",
	        (json_int_t)stats.waits_capped, "stop_ms",
	        (json_int_t)(atomic_load(&probe_stop) ? t_end - atomic_load(&probe_stop_at) : -1),
	        "list_page", (json_int_t)atomic_load(&stats.list_page), "last_error",
	        stats.last_error.msg);
	text = json_dumps(st, JSON_COMPACT);
	printf("END %s %s\n", rv, text ? text : "{}");
	free(text);
	json_decref(st);
	return 0;
}

static int
probe_kube(int argc, char **argv)
{
	struct hl_err err = HL_ERR_INIT;
	struct hl_kube *k = NULL;
	json_t *v = NULL;
	const char *op = argc > 0 ? argv[0] : "";
	int ret = 0;

	if (hl_kube_load(&k, getenv("KUBECONFIG"), &err) < 0)
		return probe_fail(&err);
	if (strcmp(op, "config") == 0) {
		v = json_pack("{s:s, s:s, s:b, s:b, s:s?, s:b, s:s?, s:b, s:s, s:s?, s:s?, s:s?, "
		              "s:s?, s:s?, s:s?}",
		              "server", k->server, "namespace", k->namespace, "insecure",
		              k->insecure, "has_ca_data", k->ca_data != NULL, "ca_file", k->ca_file,
		              "has_token", k->token != NULL, "token_file", k->token_file,
		              "has_client_cert", k->client_cert != NULL, "source", k->source,
		              "url_base", k->url_base, "tls_server_name", k->tls_server_name,
		              "connect_to", k->connect_to, "host_header", k->host_header, "proxy",
		              k->proxy, "proxy_shown", k->proxy_shown);
	} else if (strcmp(op, "redact") == 0 && argc == 2) {
		char *red = hl_log_redact(argv[1]); /* what the log makes of TEXT */

		v = json_pack("{s:s?}", "redacted", red);
		free(red);
	} else if (strcmp(op, "rotate-redact") == 0 && argc == 6) {
		/* N calls, each after the token file was rewritten (as the
		 * kubelet renews a projected token), then what the log makes of
		 * TEXT; the calls' own answers do not matter */
		int i, n = atoi(argv[3]);
		char tok[64], *red;

		for (i = 1; i <= n; i++) {
			FILE *f = fopen(argv[4], "w");

			if (!f)
				return 1;
			snprintf(tok, sizeof(tok), "kube-rot-%06d", i);
			fprintf(f, "%s\n", tok);
			fclose(f);
			json_decref(v);
			v = NULL;
			if (hl_kube_get_pod(k, &v, argv[1], argv[2], &err) < 0)
				err = (struct hl_err)HL_ERR_INIT;
		}
		json_decref(v);
		red = hl_log_redact(argv[5]);
		v = json_pack("{s:s?}", "redacted", red);
		free(red);
	} else if (strcmp(op, "get-pod") == 0 && argc == 3) {
		ret = hl_kube_get_pod(k, &v, argv[1], argv[2], &err);
	} else if (strcmp(op, "log") == 0 && argc == 6) {
		struct hl_buf b = HL_BUF_INIT(0);
		bool trunc = false;

		ret = hl_kube_pod_log(k, &b, &trunc, argv[1], argv[2], argv[3], atol(argv[4]),
		                      strcmp(argv[5], "1") == 0, &err);
		if (ret == 0)
			v = json_pack("{s:s%, s:b}", "log", b.data, b.len, "truncated", trunc);
		hl_buf_release(&b);
	} else if (strcmp(op, "list-pods") == 0 && argc == 3) {
		ret = hl_kube_list_pods(k, &v, argv[1], argv[2], &err);
	} else if (strcmp(op, "events") == 0 && argc == 3) {
		ret = hl_kube_list_events(k, &v, argv[1], argv[2], &err);
	} else if (strcmp(op, "list-coderuns") == 0 && argc == 3) {
		ret = hl_kube_list_coderuns(k, &v, argv[1], argv[2], &err);
	} else if (strcmp(op, "get-coderun") == 0 && argc == 3) {
		ret = hl_kube_get_coderun(k, &v, argv[1], argv[2], &err);
	} else if (strcmp(op, "create-coderun") == 0 && argc == 2) {
		json_t *m = probe_stdin_json(), *created = NULL;

		ret = hl_kube_create_coderun(k, &created, argv[1], m, &err);
		if (ret == 0)
			v = json_pack("{s:s, s:s}", "result", "created", "name",
			              hl_json_str_or(created, "metadata.name", ""));
		else if (ret == -HL_ECONFLICT)
			v = json_pack("{s:s, s:s}", "result", "exists", "message", err.msg),
			ret = 0;
		json_decref(created);
		json_decref(m);
	} else if (strcmp(op, "watch") == 0 && argc >= 5) {
		ret = probe_kube_watch(k, argc, argv);
		hl_kube_free(k);
		return ret;
	} else if (strcmp(op, "delete-coderun") == 0 && argc == 3) {
		ret = hl_kube_delete_coderun(k, argv[1], argv[2], &err);
		if (ret == 0)
			v = json_pack("{s:b}", "ok", 1);
	} else if (strcmp(op, "coderun-status") == 0 && argc == 3) {
		json_t *cr = NULL;

		ret = hl_kube_get_coderun(k, &cr, argv[1], argv[2], &err);
		if (ret == 0) {
			struct hl_kube_coderun_status st;

			hl_kube_coderun_status_read(&st, cr);
			v = json_pack(
			        "{s:s, s:b, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:I, s:b, "
			        "s:s?, s:s?, s:s?, s:b}",
			        "phase", hl_kube_phase_name(st.phase), "terminal",
			        hl_kube_phase_terminal(st.phase), "phase_text", st.phase_text,
			        "message", st.message, "pull_request_url", st.pull_request_url,
			        "job_name", st.job_name, "finished_at", st.finished_at,
			        "remediation_status", st.remediation_status, "qa_status",
			        st.qa_status, "retry_count", (json_int_t)st.retry_count,
			        "work_completed", st.work_completed, "condition_reason",
			        st.condition_reason, "name", st.name, "resource_version",
			        st.resource_version, "deleting", st.deleting);
		}
		json_decref(cr);
	} else if (strcmp(op, "job-pods") == 0 && argc == 3) {
		json_t *list = NULL, *it;
		size_t i;

		ret = hl_kube_job_pods(k, &list, argv[1], argv[2], &err);
		if (ret == 0) {
			v = json_array();
			json_array_foreach(json_object_get(list, "items"), i, it)
			        json_array_append_new(
			                v, json_string(hl_json_str_or(it, "metadata.name", "")));
		}
		json_decref(list);
	} else if (strcmp(op, "job-logs") == 0 && argc == 5) {
		struct hl_buf b = HL_BUF_INIT((size_t)atol(argv[4]));

		ret = hl_kube_job_logs(k, &b, argv[1], argv[2], atol(argv[3]), &err);
		if (ret == 0)
			v = json_pack("{s:s%}", "log", b.data, b.len);
		hl_buf_release(&b);
	} else if (strcmp(op, "argocd") == 0 && argc == 3) {
		json_t *app = NULL;

		ret = hl_kube_get_argocd_app(k, &app, argv[1], argv[2], &err);
		if (ret == 0)
			v = hl_argocd_summary(app);
		json_decref(app);
	} else {
		fprintf(stderr, "netprobe kube: bad arguments\n");
		hl_kube_free(k);
		return 2;
	}
	hl_kube_free(k);
	if (ret < 0)
		return probe_fail(&err);
	return probe_print(v);
}

/* "-" reads as "not given" */
static const char *
probe_arg(const char *s)
{
	return strcmp(s, "-") == 0 ? NULL : s;
}

static int
probe_github(int argc, char **argv)
{
	struct hl_err err = HL_ERR_INIT;
	struct hl_github *gh = NULL;
	json_t *v = NULL;
	const char *op = argc > 0 ? argv[0] : "";
	int ret = 0;

	if (hl_github_new_with(&gh, getenv("GITHUB_API_URL"), getenv("GITHUB_TOKEN"),
	                       getenv("GITHUB_APP_ID"), getenv("GITHUB_APP_PRIVATE_KEY"),
	                       getenv("GITHUB_APP_INSTALLATION_ID"), &err) < 0)
		return probe_fail(&err);
	hl_github_set_limits(gh, 5000, 0);
	if (strcmp(op, "failed-jobs") == 0 && argc == 3) {
		ret = hl_github_failed_jobs(gh, &v, argv[1], atoll(argv[2]), &err);
	} else if (strcmp(op, "job-log") == 0 && argc == 4) {
		struct hl_buf b = HL_BUF_INIT((size_t)atol(argv[3]));
		bool trunc = false;

		ret = hl_github_job_log(gh, &b, &trunc, argv[1], atoll(argv[2]), &err);
		if (ret == 0)
			v = json_pack("{s:s%, s:b}", "log", b.data, b.len, "truncated", trunc);
		hl_buf_release(&b);
	} else if (strcmp(op, "pr") == 0 && argc == 3) {
		ret = hl_github_pr_for_branch(gh, &v, argv[1], argv[2], &err);
	} else if (strcmp(op, "pr-files") == 0 && argc == 4) {
		ret = hl_github_pr_files(gh, &v, argv[1], atoll(argv[2]), (size_t)atol(argv[3]),
		                         &err);
	} else if (strcmp(op, "commit-files") == 0 && argc == 3) {
		ret = hl_github_commit_files(gh, &v, argv[1], argv[2], &err);
	} else if (strcmp(op, "check-run") == 0 && argc == 3) {
		ret = hl_github_check_run(gh, &v, argv[1], atoll(argv[2]), &err);
	} else if (strcmp(op, "comment") == 0 && argc == 4) {
		ret = hl_github_issue_comment(gh, &v, argv[1], atoll(argv[2]), argv[3], &err);
	} else if (strcmp(op, "call") == 0 && (argc == 3 || argc == 4)) {
		json_t *body = NULL;

		if (argc == 4 && hl_json_parse(&body, argv[3], strlen(argv[3]), &err) < 0) {
			hl_github_free(gh);
			return probe_fail(&err);
		}
		ret = hl_github_call(gh, &v, argv[1], argv[2], body, &err);
		json_decref(body);
	} else if (strcmp(op, "react") == 0 && (argc == 4 || argc == 5)) {
		bool created = false;
		enum hl_github_comment_kind kind = argc == 5 && strcmp(argv[4], "review") == 0
		                                           ? HL_GITHUB_REVIEW_COMMENT
		                                           : HL_GITHUB_ISSUE_COMMENT;

		ret = hl_github_add_reaction(gh, &created, argv[1], kind, atoll(argv[2]), argv[3],
		                             &err);
		if (ret == 0)
			v = json_pack("{s:b}", "created", created);
	} else if (strcmp(op, "rerun") == 0 && argc == 3) {
		ret = hl_github_rerun_failed_jobs(gh, argv[1], atoll(argv[2]), &err);
		if (ret == 0)
			v = json_pack("{s:b}", "ok", 1);
	} else if (strcmp(op, "runs") == 0 && argc == 8) {
		struct hl_github_runs_query q;

		memset(&q, 0, sizeof(q));
		q.workflow = probe_arg(argv[2]);
		q.branch = probe_arg(argv[3]);
		q.head_sha = probe_arg(argv[4]);
		q.status = probe_arg(argv[5]);
		q.created = probe_arg(argv[6]);
		q.max_runs = (size_t)atol(argv[7]);
		ret = hl_github_workflow_runs(gh, &v, argv[1], &q, &err);
	} else if (strcmp(op, "jobs") == 0 && argc == 3) {
		ret = hl_github_run_jobs(gh, &v, argv[1], atoll(argv[2]), &err);
	} else if (strcmp(op, "verdict") == 0 && argc == 6) {
		struct hl_github_job_verdict jv;
		int64_t since = strcmp(argv[5], "0") ? hl_time_parse_rfc3339(argv[5]) : 0;

		ret = hl_github_job_verdict(gh, &jv, argv[1], argv[2], argv[3], probe_arg(argv[4]),
		                            since, &err);
		if (ret == 0)
			v = json_pack("{s:s, s:I, s:I, s:s, s:s, s:s}", "verdict",
			              hl_github_verdict_name(jv.verdict), "run_id",
			              (json_int_t)jv.run_id, "job_id", (json_int_t)jv.job_id,
			              "head_sha", jv.head_sha, "conclusion", jv.conclusion,
			              "completed_at", jv.completed_at);
	} else if (strcmp(op, "compare") == 0 && argc == 5) {
		ret = hl_github_compare(gh, &v, argv[1], argv[2], argv[3], (size_t)atol(argv[4]),
		                        &err);
	} else if (strcmp(op, "check-runs") == 0 && argc == 4) {
		ret = hl_github_check_runs(gh, &v, argv[1], argv[2], (size_t)atol(argv[3]), &err);
	} else if (strcmp(op, "pull") == 0 && argc == 3) {
		ret = hl_github_pull(gh, &v, argv[1], atoll(argv[2]), &err);
	} else if ((strcmp(op, "deliveries") == 0 && argc == 6) ||
	           (strcmp(op, "redeliver") == 0 && argc == 5)) {
		struct hl_github_hook h;

		memset(&h, 0, sizeof(h));
		h.kind = strcmp(argv[1], "repo") == 0  ? HL_GITHUB_HOOK_REPO
		         : strcmp(argv[1], "org") == 0 ? HL_GITHUB_HOOK_ORG
		                                       : HL_GITHUB_HOOK_APP;
		h.repo = h.org = argv[2];
		h.id = atoll(argv[3]);
		if (strcmp(op, "redeliver") == 0) {
			ret = hl_github_hook_redeliver(gh, &h, atoll(argv[4]), &err);
			if (ret == 0)
				v = json_pack("{s:b}", "ok", 1);
		} else {
			struct hl_github_listing l = {
				.since_ms =
				        strcmp(argv[4], "0") ? hl_time_parse_rfc3339(argv[4]) : 0,
				.max = (size_t)atol(argv[5]),
			};

			ret = hl_github_hook_deliveries(gh, &v, &h, &l, &err);
		}
	} else if ((strcmp(op, "repeat") == 0 && argc == 4) ||
	           (strcmp(op, "repeat-redact") == 0 && argc == 5)) {
		int i, n = atoi(argv[3]);

		for (i = 0; i < n && ret == 0; i++) {
			json_decref(v);
			v = NULL;
			ret = hl_github_failed_jobs(gh, &v, argv[1], atoll(argv[2]), &err);
		}
		if (ret == 0 && argc == 5) { /* then what the log makes of TEXT */
			char *red = hl_log_redact(argv[4]);

			json_decref(v);
			v = json_pack("{s:s?}", "redacted", red);
			free(red);
		}
	} else {
		fprintf(stderr, "netprobe github: bad arguments\n");
		hl_github_free(gh);
		return 2;
	}
	hl_github_free(gh);
	if (ret < 0)
		return probe_fail(&err);
	return probe_print(v);
}

static int
probe_sources(int argc, char **argv)
{
	struct hl_err err = HL_ERR_INIT;
	json_t *v = NULL;
	int ret;

	if (argc == 4 && strcmp(argv[0], "argocd") == 0) {
		json_t *app = NULL;

		ret = hl_argocd_app(&app, argv[1], argv[2], argv[3], 5000, &err);
		if (ret == 0)
			v = hl_argocd_summary(app);
		json_decref(app);
	} else if (argc == 3 && strcmp(argv[0], "loki") == 0) {
		int64_t now_ns = hl_time_wall_ms() * 1000000;

		ret = hl_loki_query_range(&v, argv[1], argv[2], now_ns - 3600000000000LL, now_ns,
		                          50, 5000, &err);
	} else if (argc == 3 && strcmp(argv[0], "prom") == 0) {
		ret = hl_prom_query(&v, argv[1], argv[2], 5000, &err);
	} else {
		fprintf(stderr, "netprobe sources: bad arguments\n");
		return 2;
	}
	if (ret < 0)
		return probe_fail(&err);
	return probe_print(v);
}

int
main(int argc, char **argv)
{
	hl_fetch_global_init();
	if (argc < 2) {
		fprintf(stderr, "usage: netprobe fetch|kube|github|sources ...\n");
		return 2;
	}
	if (strcmp(argv[1], "fetch") == 0)
		return probe_fetch();
	if (strcmp(argv[1], "kube") == 0)
		return probe_kube(argc - 2, argv + 2);
	if (strcmp(argv[1], "github") == 0)
		return probe_github(argc - 2, argv + 2);
	if (strcmp(argv[1], "sources") == 0)
		return probe_sources(argc - 2, argv + 2);
	fprintf(stderr, "netprobe: unknown subcommand '%s'\n", argv[1]);
	return 2;
}
