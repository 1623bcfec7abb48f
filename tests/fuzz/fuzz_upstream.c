/*
 * fuzz_upstream.c - libFuzzer target for what the upstream services answer
 * (src/remediate/context.c's parsers: GitHub's commit, PR, PR files, jobs
 * and compare answers, a job log, ArgoCD's Application and resource tree,
 * Loki's and Prometheus' query results, Kubernetes' pod and event lists,
 * Grafana's annotations, OpenMemory's matches, an agent pod's log; then the
 * summaries built from them once the batch is over), the error answers of
 * every JSON client (hl_kube_status_error, hl_fetch_check) and GitHub's
 * Link header (hl_fetch_link_next).
 *
 * The parsers are static in context.c, so this file includes it: the
 * target links its own copy instead of the library's object.
 *
 * Input: the first byte picks the parser, the second is the HTTP status of
 * an error answer; then one line that is the answer's Link header, and the
 * rest is the body. Oracle: whatever the body, every list kept in the
 * context stays within its cap (pods, events, Loki lines and their length,
 * commits, Grafana links, memory matches, ArgoCD resources), a non-2xx
 * answer is always an error with a reason, and a next link is a piece of
 * the header that fits its buffer.
 */
#include "fuzz.h"
#include "net/kube_impl.h"
#include "remediate/context.c"

#include <string.h>

enum {
	UP_COMMIT,
	UP_PR_FILES,
	UP_PR,
	UP_JOBS,
	UP_ARGOCD,
	UP_ARGOCD_TREE,
	UP_LOKI,
	UP_PROM,
	UP_EVENTS,
	UP_PODS,
	UP_GRAFANA,
	UP_MEMORY,
	UP_COMMITS,
	UP_LOG,
	UP_AGENT_OUTPUT,
	UP_STATUS,
	UP_LINK,
	UP_N
};

static const ctx_parse_fn up_parsers[] = {
	[UP_COMMIT] = ctx_parse_commit,
	[UP_PR_FILES] = ctx_parse_pr_files,
	[UP_PR] = ctx_parse_pr,
	[UP_JOBS] = ctx_parse_jobs,
	[UP_ARGOCD] = ctx_parse_argocd,
	[UP_ARGOCD_TREE] = ctx_parse_argocd_tree,
	[UP_LOKI] = ctx_parse_loki,
	[UP_PROM] = ctx_parse_prom,
	[UP_EVENTS] = ctx_parse_events,
	[UP_PODS] = ctx_parse_pods,
	[UP_GRAFANA] = ctx_parse_grafana,
	[UP_MEMORY] = ctx_parse_memory,
	[UP_COMMITS] = ctx_parse_commits,
	[UP_LOG] = ctx_parse_log,
	[UP_AGENT_OUTPUT] = ctx_parse_agent_output,
};

/* The error answers: a non-2xx status is an error with a reason. */
static void
fuzz_status(struct hl_fetch_res *res, unsigned status)
{
	struct hl_err e = HL_ERR_INIT;
	int rc;

	res->status = 200 + (long)status * 2; /* 200 .. 710 */
	rc = hl_kube_status_error(res, "GET", "/api/v1/namespaces/ns/pods/p", &e);
	if (res->status >= 300)
		FUZZ_CHECK(rc < 0 && e.code != 0 && e.msg[0] != '\0');
	else
		FUZZ_CHECK(rc == 0);
	e = (struct hl_err)HL_ERR_INIT;
	rc = hl_fetch_check(res, "github get", &e);
	FUZZ_CHECK(res->status >= 300 ? rc < 0 && e.msg[0] != '\0' : rc == 0);
}

/* A next link is the text between a '<' and a '>' of the header. */
static void
fuzz_link(const char *link)
{
	char next[HL_GITHUB_LINK_MAX], small[16];
	size_t n;

	if (hl_fetch_link_next(next, sizeof(next), link)) {
		n = strlen(next);
		FUZZ_CHECK(n < sizeof(next));
		FUZZ_CHECK(strstr(link, next) != NULL);
	}
	if (hl_fetch_link_next(small, sizeof(small), link))
		FUZZ_CHECK(strlen(small) < sizeof(small));
}

static void
fuzz_caps(const struct hl_context *ctx)
{
	const json_t *v;
	size_t i;

	FUZZ_CHECK(json_array_size(ctx->kube_pods) <= CTX_MAX_PODS);
	FUZZ_CHECK(json_array_size(ctx->kube_events) <= CTX_MAX_EVENTS);
	FUZZ_CHECK(json_array_size(ctx->memory) <= CTX_MEMORY_RESULTS);
	FUZZ_CHECK(json_array_size(ctx->commits) <= CTX_MAX_COMMITS);
	FUZZ_CHECK(json_array_size(ctx->loki_lines) <= CTX_LOKI_LIMIT);
	json_array_foreach(ctx->loki_lines, i, v)
	{
		FUZZ_CHECK(json_is_string(v));
		FUZZ_CHECK(json_string_length(v) <= CTX_LOKI_LINE_MAX + 64);
	}
	FUZZ_CHECK(json_array_size(json_object_get(ctx->grafana, "links")) <= CTX_GRAFANA_LINKS);
	FUZZ_CHECK(json_array_size(json_object_get(ctx->argocd, "unhealthy_resources")) <=
	           CTX_MAX_RESOURCES);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char grafana_url[] = "https://grafana.example.test/";
	struct hl_config cfg;
	struct hl_context_clients clients;
	struct hl_context ctx;
	struct gather g;
	struct ctx_slot s;
	struct hl_fetch_res res;
	struct hl_err err = HL_ERR_INIT;
	const uint8_t *body;
	size_t body_size;
	unsigned which, status;
	json_t *sources;

	if (size < 2)
		return 0;
	which = data[0] % UP_N;
	status = data[1];
	data += 2;
	size -= 2;

	memset(&cfg, 0, sizeof(cfg));
	cfg.grafana_url = grafana_url;
	memset(&clients, 0, sizeof(clients));
	clients.cfg = &cfg;
	hl_context_init(&ctx);
	hl_strlcpy(ctx.service.grafana_dashboard, "dash-1", sizeof(ctx.service.grafana_dashboard));
	hl_strlcpy(ctx.service.workload, "api", sizeof(ctx.service.workload));
	memset(&g, 0, sizeof(g));
	g.ctx = &ctx;
	g.c = &clients;
	memset(&s, 0, sizeof(s));
	s.g = &g;
	s.limit = s.first_limit = CTX_LOKI_LIMIT;
	if (which == UP_LOG)
		hl_strlcpy(s.job_name, "build", sizeof(s.job_name));

	hl_fetch_res_init(&res);
	fuzz_split_line(res.link, sizeof(res.link), &body, &body_size, data, size);
	hl_buf_append(&res.body, (const char *)body, body_size);
	res.status = 200;

	if (which == UP_STATUS) {
		fuzz_status(&res, status);
	} else if (which == UP_LINK) {
		fuzz_link(res.link);
	} else {
		s.parse = up_parsers[which];
		(void)s.parse(&ctx, &s, &res, &err);
		err = (struct hl_err)HL_ERR_INIT;
		if (which == UP_ARGOCD_TREE && !ctx.argocd_app)
			ctx.argocd_app =
			        json_pack("{s:{s:s}, s:{}}", "metadata", "name", "app", "status");
		if (ctx_finish(&ctx, &err) == 0)
			fuzz_caps(&ctx);
		sources = hl_context_sources_json(&ctx);
		free(json_dumps(sources, 0));
		json_decref(sources);
	}
	json_decref(g.failed_jobs);
	hl_fetch_res_release(&res);
	hl_context_release(&ctx);
	return 0;
}
