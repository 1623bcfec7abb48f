/*
 * argocd.c - an ArgoCD application that is Degraded or failed to sync
 * (POST /api/alerts/argocd; contract section 14) becomes a Bolt
 * remediation:
 *
 *   the application's names -> its context in one parallel batch (the
 *   Application object and its resource tree from ARGOCD_SERVER, else the
 *   Application object from the cluster; the pods of its workload, Loki,
 *   Prometheus, Grafana) -> a status report (health, sync, the operation's
 *   result, conditions, failed and unhealthy resources) classified with the
 *   application's sync and health -> the prompt ci/argocd-fix.hbs -> the
 *   task claimed (kind "argocd") -> the budget -> a Bolt CodeRun named from
 *   the key and attempt (labelled healer/argocd-app) -> the task and
 *   attempt recorded. Retries (alerts_argocd_kind) do the same with the
 *   previous attempts in the prompt; while another task's CodeRun is active
 *   for the application a retry makes none and the task ends stopped,
 *   superseded by that one (alerts_superseded).
 *
 * Guards: one task per application and episode (the task id); a CodeRun
 * still active for the same application under another task (found by its
 * labels, or, its labels edited, by the name the store recorded for
 * another running task of the application) makes the notification skipped: the check and the create
 * run under the application's lock (alerts_lock, across the replicas sharing the store), so two
 * notifications handled at once do not both miss the other's CodeRun; a CodeRun whose create landed
 * after the lock was lost and another replica's create is withdrawn (alerts_withdraw_doubled).
 */
#include "alerts_impl.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/str.h"
#include "catalog/catalog.h"
#include "dispatch/coderun.h"
#include "memory/memory.h"

#include "json/json.h"
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ARGOCD_LIST_MAX 50

struct argo {
	const json_t *doc, *app;
	const char *key, *trigger, *name, *namespace;
};

static int
argo_parse(struct argo *ar, const json_t *doc, struct hl_err *err)
{
	memset(ar, 0, sizeof(*ar));
	ar->doc = doc;
	ar->app = json_object_get(doc, "application");
	ar->key = hl_json_str(doc, "key");
	ar->trigger = hl_json_str_or(doc, "trigger", "degraded");
	ar->name = hl_json_str(ar->app, "metadata.name");
	ar->namespace = hl_json_str_or(ar->app, "metadata.namespace", "argocd");
	if (!ar->key || !ar->name || !hl_kube_name_valid(ar->name) ||
	    !hl_kube_name_valid(ar->namespace))
		return hl_err_set(err, HL_EINVAL, "the stored notification names no application");
	return 0;
}

static void argo_out(struct hl_alerts_outcome *out, const char *outcome, const char *dedup,
                     const char *fmt, ...) HL_PRINTF(4, 5);

static void
argo_out(struct hl_alerts_outcome *out, const char *outcome, const char *dedup, const char *fmt,
         ...)
{
	va_list ap;

	alerts_set(out->outcome, sizeof(out->outcome), outcome);
	alerts_set(out->dedup_status, sizeof(out->dedup_status), dedup);
	va_start(ap, fmt);
	vsnprintf(out->reason, sizeof(out->reason), fmt, ap);
	va_end(ap);
}

/* The host of url (scheme://[userinfo@]host[:port]/...) into out, lower
 * case; "" when there is none. */
static void
argo_url_host(char *out, size_t size, const char *url)
{
	const char *p = url ? strstr(url, "://") : NULL, *end, *at;
	size_t n, i;

	out[0] = '\0';
	if (!p)
		return;
	p += 3;
	end = p + strcspn(p, "/?#");
	for (at = p; at < end; at++)
		if (*at == '@')
			p = at + 1;
	n = strcspn(p, ":/?#");
	if (p + n > end)
		n = (size_t)(end - p);
	if (n >= size)
		return;
	for (i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)p[i]);
	out[n] = '\0';
}

/* Whether host (lower case) is GitHub's, or the GitHub Enterprise host
 * GITHUB_API_URL names (api_url; NULL or GitHub's own: none). */
static bool
argo_github_host(const char *host, const char *api_url)
{
	char ghe[256];

	if (hl_str_starts_with(host, "www."))
		host += 4;
	if (strcmp(host, "github.com") == 0)
		return true;
	argo_url_host(ghe, sizeof(ghe), api_url);
	return ghe[0] && strcmp(ghe, "api.github.com") != 0 && strcmp(host, ghe) == 0;
}

int
alerts_argocd_repo_of(char *out, size_t size, const char *url, const char *api_url)
{
	static const char *const schemes[] = {
		"https", "http", "ssh", "git", "git+ssh", "ssh+git"
	};
	char host[256], path[512];
	const char *p, *colon, *slash, *at;
	size_t n, i;
	bool known = false;

	out[0] = '\0';
	if (!url || !*url)
		return 0;
	if ((p = strstr(url, "://")) != NULL) {
		/* scheme://[user[:password]@]host[:port]/owner/repo[.git][/] */
		for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
			if ((size_t)(p - url) == strlen(schemes[i]) &&
			    strncasecmp(url, schemes[i], strlen(schemes[i])) == 0)
				known = true;
		argo_url_host(host, sizeof(host), url);
		if (!argo_github_host(host, api_url))
			return 0;
		p += 3;
		p += strcspn(p, "/");
		if (!known || !*p)
			return -1;
		p++;
	} else {
		/* scp-like: [user@]host:owner/repo[.git] */
		colon = strchr(url, ':');
		slash = strchr(url, '/');
		if (!colon || (slash && slash < colon))
			return 0;
		for (p = url, at = url; at < colon; at++)
			if (*at == '@')
				p = at + 1;
		n = (size_t)(colon - p);
		if (n >= sizeof(host))
			return 0;
		for (i = 0; i < n; i++)
			host[i] = (char)tolower((unsigned char)p[i]);
		host[n] = '\0';
		if (!argo_github_host(host, api_url))
			return 0;
		p = colon + 1;
		while (*p == '/')
			p++;
	}
	/* a GitHub URL from here: owner/repo, or no repository GitHub has */
	if (hl_strlcpy(path, p, sizeof(path)) >= sizeof(path))
		return -1;
	n = strlen(path);
	while (n && path[n - 1] == '/')
		path[--n] = '\0';
	if (n > 4 && strcasecmp(path + n - 4, ".git") == 0)
		path[n -= 4] = '\0';
	/* the Application's spec is not GitHub's: only a name GitHub allows
	 * (an escape sequence or "a/.." would reach API paths and terminals) */
	if (!hl_str_github_repo_valid(path) || strlen(path) >= size)
		return -1;
	hl_strlcpy(out, path, size);
	return 1;
}

/* Why an Application's remediation has no repository to go to. */
enum argo_repo_why {
	ARGO_REPO_OK,
	ARGO_REPO_NOT_ALLOWED, /* one it names is outside HEALER_REPOSITORIES */
	ARGO_REPO_NONE,        /* none named, and no HEALER_HEAL_REPOSITORY */
};

/* One repoURL for argo_repository: the first GitHub repository named into
 * repo; *bad when it is not allowed (or a GitHub URL naming none, under a
 * list). */
static void
argo_repo_url(char *repo, bool *bad, const struct hl_config *cfg, const char *url)
{
	char one[256];
	int rc = alerts_argocd_repo_of(one, sizeof(one), url, cfg->github_api_url);

	if (rc < 0 && cfg->repository_list)
		*bad = true;
	if (rc <= 0)
		return;
	if (!hl_config_repo_allowed(cfg, one))
		*bad = true;
	if (!repo[0])
		hl_strlcpy(repo, one, 256);
}

/* The service map's entry of application name (app the Application
 * object) and, into repo (256 bytes), the repository its remediation goes
 * to: the entry's, else the first GitHub repository its spec.source or
 * spec.sources[] name (every one of them must be allowed), else, when
 * fallback, HEALER_HEAL_REPOSITORY; else "". *why says whether it may go. */
static const struct hl_service *
argo_repository(char *repo, enum argo_repo_why *why, const struct hl_config *cfg, const json_t *app,
                const char *name, bool fallback)
{
	const struct hl_service *s = hl_config_service_by_app(cfg, name);
	const json_t *src;
	bool bad = false;
	size_t i;

	repo[0] = '\0';
	if (s && s->repository) {
		hl_strlcpy(repo, s->repository, 256);
		bad = !hl_config_repo_allowed(cfg, repo);
	} else {
		argo_repo_url(repo, &bad, cfg, hl_json_str(app, "spec.source.repoURL"));
		json_array_foreach(hl_json_path(app, "spec.sources"), i, src)
		        argo_repo_url(repo, &bad, cfg, hl_json_str(src, "repoURL"));
	}
	if (!repo[0] && fallback && cfg->heal_repository && *cfg->heal_repository)
		hl_strlcpy(repo, cfg->heal_repository, 256);
	*why = bad ? ARGO_REPO_NOT_ALLOWED : repo[0] || !fallback ? ARGO_REPO_OK : ARGO_REPO_NONE;
	return s;
}

static void argo_view(const struct hl_config *cfg, struct hl_service_view *v, const json_t *app,
                      const char *name, const char *ns);

/* Why an Application's notification is skipped (NULL: it is not): its
 * repositories, then the namespace its pods and logs are read in. */
static const char *
argo_screen_reason(const struct hl_config *cfg, const json_t *app)
{
	struct hl_service_view view;
	enum argo_repo_why why;
	const char *name = hl_json_str(app, "metadata.name");
	char repo[256];

	argo_repository(repo, &why, cfg, app, name, true);
	if (why == ARGO_REPO_NOT_ALLOWED)
		return "repository_not_allowed";
	argo_view(cfg, &view, app, name ? name : "",
	          hl_json_str_or(app, "metadata.namespace", "argocd"));
	if (!hl_config_alert_namespace_allowed(cfg, view.namespace))
		return "namespace_not_allowed";
	if (why == ARGO_REPO_NONE)
		return "no_repository";
	return NULL;
}

void
hl_alerts_argocd_screen(struct hl_alert_batch *b, const struct hl_config *cfg)
{
	size_t i;

	for (i = 0; i < b->n; i++) {
		struct hl_alert_item *it = &b->items[i];
		json_t *doc = NULL;
		const char *why;

		if (it->skip[0] || !it->source ||
		    strcmp(it->source, HL_ALERTS_SOURCE_ARGOCD) != 0 ||
		    hl_json_parse(&doc, it->body, it->body_len, NULL) < 0)
			continue;
		why = argo_screen_reason(cfg, json_object_get(doc, "application"));
		if (why) {
			hl_strlcpy(it->skip, why, sizeof(it->skip));
			it->task_id[0] = '\0';
		}
		json_decref(doc);
	}
}

/* What names the application's service in the context sources (name
 * and ns the Application's). */
static void
argo_view(const struct hl_config *cfg, struct hl_service_view *v, const json_t *app,
          const char *name, const char *ns)
{
	char repo[256];
	enum argo_repo_why why;
	const struct hl_service *s = argo_repository(repo, &why, cfg, app, name, false);
	const char *dest = hl_json_str(app, "spec.destination.namespace");

	hl_service_resolve(v, cfg, s, repo[0] ? repo : NULL);
	if (!v->repository[0] && cfg->heal_repository && *cfg->heal_repository)
		alerts_set(v->repository, sizeof(v->repository), cfg->heal_repository);
	alerts_set(v->argocd_app, sizeof(v->argocd_app), name);
	if (!s || !s->argocd_namespace)
		alerts_set(v->argocd_namespace, sizeof(v->argocd_namespace), ns);
	if (s)
		return;
	/* no entry: the application's own names (ArgoCD labels what it
	 * deploys app.kubernetes.io/instance=<application>) */
	alerts_set(v->service, sizeof(v->service), name);
	alerts_set(v->workload, sizeof(v->workload), name);
	/* a namespace only (a DNS-1123 label): it is quoted in the LogQL
	 * selector, where a '"' would end the label value */
	if (dest && hl_str_k8s_label_valid(dest))
		alerts_set(v->namespace, sizeof(v->namespace), dest);
	snprintf(v->pod_selector, sizeof(v->pod_selector), "app.kubernetes.io/instance=%s", name);
	snprintf(v->loki_selector, sizeof(v->loki_selector), "{namespace=\"%s\"}", v->namespace);
}

static void
argo_res_line(struct hl_buf *b, const json_t *r, const char *status, const char *msg)
{
	const char *g = hl_json_str(r, "group");

	hl_buf_appendf(b, "- %s%s%s %s%s%s: %s", g && *g ? g : "", g && *g ? "/" : "",
	               hl_json_str_or(r, "kind", "?"), hl_json_str_or(r, "namespace", ""),
	               hl_json_str(r, "namespace") ? "/" : "", hl_json_str_or(r, "name", "?"),
	               status ? status : "?");
	if (msg && *msg)
		hl_buf_appendf(b, ": %s", msg);
	hl_buf_append_char(b, '\n');
}

/* The application's status as one report: what the prompt fences and the
 * classifier reads. */
static void
argo_status_text(struct hl_buf *b, const char *name, const char *ns, const json_t *app,
                 const json_t *nodes)
{
	const json_t *st = json_object_get(app, "status"), *c,
	             *op = json_object_get(st, "operationState");
	size_t i, k;

	hl_buf_appendf(b, "Application %s/%s (project %s)\n", ns, name,
	               hl_json_str_or(app, "spec.project", "default"));
	hl_buf_appendf(b, "Health: %s", hl_json_str_or(st, "health.status", "Unknown"));
	if (hl_json_str(st, "health.message"))
		hl_buf_appendf(b, ": %s", hl_json_str(st, "health.message"));
	hl_buf_appendf(b, "\nSync: %s", hl_json_str_or(st, "sync.status", "Unknown"));
	if (hl_json_str(st, "sync.revision"))
		hl_buf_appendf(b, " at revision %s", hl_json_str(st, "sync.revision"));
	hl_buf_append_char(b, '\n');
	if (json_is_object(op)) {
		hl_buf_appendf(b, "Operation: %s", hl_json_str_or(op, "phase", "Unknown"));
		if (hl_json_str(op, "message"))
			hl_buf_appendf(b, ": %s", hl_json_str(op, "message"));
		if (hl_json_str(op, "startedAt"))
			hl_buf_appendf(b, " (started %s%s%s)", hl_json_str(op, "startedAt"),
			               hl_json_str(op, "finishedAt") ? ", finished " : "",
			               hl_json_str_or(op, "finishedAt", ""));
		hl_buf_append_char(b, '\n');
	}
	if (json_array_size(json_object_get(st, "conditions"))) {
		hl_buf_append_str(b, "Conditions:\n");
		json_array_foreach(json_object_get(st, "conditions"), i, c)
		{
			if (i >= ARGOCD_LIST_MAX)
				break;
			hl_buf_appendf(b, "- %s: %s\n", hl_json_str_or(c, "type", "?"),
			               hl_json_str_or(c, "message", ""));
		}
	}
	k = 0;
	json_array_foreach(hl_json_path(op, "syncResult.resources"), i, c)
	{
		const char *s = hl_json_str(c, "status"), *h = hl_json_str(c, "hookPhase");
		if (k >= ARGOCD_LIST_MAX ||
		    ((!s || strcmp(s, "Synced") == 0 || strcmp(s, "Pruned") == 0) &&
		     !(h && (strcmp(h, "Failed") == 0 || strcmp(h, "Error") == 0))))
			continue;
		if (k++ == 0)
			hl_buf_append_str(b, "Sync result, resources that failed:\n");
		argo_res_line(b, c, s ? s : h, hl_json_str(c, "message"));
	}
	k = 0;
	json_array_foreach(json_object_get(st, "resources"), i, c)
	{
		const char *h = hl_json_str(c, "health.status"), *s = hl_json_str(c, "status");
		bool bad = (h && strcmp(h, "Healthy") != 0) || (s && strcmp(s, "Synced") != 0);
		if (k >= ARGOCD_LIST_MAX || !bad)
			continue;
		if (k++ == 0)
			hl_buf_append_str(b, "Resources not healthy or not synced:\n");
		hl_buf_appendf(b, "- %s %s/%s: health %s, sync %s", hl_json_str_or(c, "kind", "?"),
		               hl_json_str_or(c, "namespace", ""), hl_json_str_or(c, "name", "?"),
		               h ? h : "-", s ? s : "-");
		if (hl_json_str(c, "health.message"))
			hl_buf_appendf(b, ": %s", hl_json_str(c, "health.message"));
		hl_buf_append_char(b, '\n');
	}
	k = 0;
	json_array_foreach(nodes, i, c)
	{
		const char *h = hl_json_str(c, "health.status");
		if (k >= ARGOCD_LIST_MAX || !h || strcmp(h, "Healthy") == 0)
			continue;
		if (k++ == 0)
			hl_buf_append_str(b, "Resource tree, nodes not healthy:\n");
		argo_res_line(b, c, h, hl_json_str(c, "health.message"));
	}
}

/* The previous attempts as the prompt shows them. */
static size_t
argo_previous(struct hl_prompt_attempt *out, size_t max, const struct hl_task_record *t, int before)
{
	size_t i, k = 0;

	for (i = 0; t && i < t->n_attempts && k < max; i++) {
		const struct hl_attempt_record *at = &t->attempt[i];
		if (at->n >= before)
			continue;
		out[k].number = at->n;
		out[k].agent = at->agent;
		out[k].outcome = at->outcome == HL_OUTCOME_INVALID
		                         ? "unfinished"
		                         : hl_attempt_outcome_name(at->outcome);
		out[k].summary = at->reason;
		out[k].coderun = at->coderun_name;
		out[k].status_message = at->status_message;
		out[k].pr_url = at->pr_url;
		k++;
	}
	return k;
}

static int argo_active(struct hl_alerts *a, char *name, const struct argo *ar, const char *task_id,
                       struct hl_err *err);

static int
argo_attempt(struct hl_alerts *a, struct hl_alerts_outcome *out, const struct argo *ar,
             const char *task_id, int n, const struct hl_task_record *task,
             const struct hl_attempt_plan *plan, struct hl_err *err)
{
	const struct hl_config *cfg = a->cfg;
	struct hl_service_view view;
	struct hl_context_target tgt = { .argocd_from_cluster = true, .argocd_tree = true };
	struct hl_context_clients cc;
	struct hl_context ctx;
	struct hl_event ev = { 0 };
	struct hl_verdict v;
	struct hl_classify_input in = { 0 };
	struct hl_prompt_attempt prev[16];
	const struct hl_catalog_type *type;
	enum hl_dispatch_outcome dout = HL_DISPATCH_DRY_RUN;
	const json_t *app;
	json_t *manifest = NULL, *decision = NULL, *history = NULL;
	char repo_url[512], target[256], name[64] = "", why[160], existing[HL_TASK_ID_MAX];
	char label[64];
	const char *repo, *agent, *ftype;
	char *prompt = NULL, *evs = NULL;
	enum hl_budget_wait over = HL_BUDGET_NONE;
	bool have_verdict = false, created = false;
	int64_t now;
	int rc;

	hl_context_init(&ctx);
	memset(&v, 0, sizeof(v));
	alerts_set(out->task_id, sizeof(out->task_id), task_id);
	argo_view(cfg, &view, ar->app, ar->name, ar->namespace);
	/* screened by the caller (argo_screen_reason): never a built-in one */
	repo = view.repository;
	if (!repo[0]) {
		rc = hl_err_set(err, HL_EINVAL, "application %s names no repository", ar->name);
		goto out;
	}
	snprintf(repo_url, sizeof(repo_url), "https://github.com/%s", repo);
	ev.repository = (char *)repo;
	ev.repository_url = repo_url;
	tgt.service = &view;
	cc = (struct hl_context_clients){ .cfg = cfg,
		                          .kube = a->kube,
		                          .timeout_ms = cfg->source_timeout_ms,
		                          .deadline_ms =
		                                  hl_time_mono_ms() + cfg->context_timeout_ms,
		                          .target = &tgt };
	if ((rc = hl_context_gather(&ctx, &cc, &ev, err)) < 0)
		goto out;

	/* the application as it is now (the notification's when it could not
	 * be read), its report, and its summary for the prompt */
	app = ctx.argocd_app ? ctx.argocd_app : ar->app;
	hl_buf_reset(&ctx.log);
	argo_status_text(&ctx.log, ar->name, ar->namespace, app, ctx.argocd_nodes);
	if (!ctx.argocd)
		ctx.argocd = hl_context_argocd_summary(app, ctx.argocd_nodes);
	if (ctx.argocd)
		json_object_set_new(ctx.argocd, "app", json_string(ar->name));
	/* ArgoCD's messages may quote a repository URL with its password (or
	 * a token): the classification's evidence, stored and shown, never
	 * carries it (fail closed: no memory to redact it, no text) */
	if (hl_buf_error(&ctx.log) || !ctx.argocd || hl_log_redact_buf(&ctx.log) < 0) {
		rc = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}

	/* classification: an infrastructure type, always Bolt's */
	in.event = "argocd";
	in.argocd_sync = hl_json_str(app, "status.sync.status");
	in.argocd_health = hl_json_str(app, "status.health.status");
	if (strcmp(ar->trigger, "sync_failed") == 0 && !in.argocd_sync)
		in.argocd_sync = "OutOfSync";
	in.log = ctx.log.data;
	in.log_len = ctx.log.len;
	if ((rc = hl_classify(&v, a->classifier, &in, err)) < 0)
		goto out;
	have_verdict = true;
	type = v.type && v.type->agent && strcmp(v.type->agent->id, "bolt") == 0
	               ? v.type
	               : hl_catalog_type_find("argocd_sync");
	agent = plan && plan->agent ? plan->agent : "bolt";
	ftype = plan && plan->failure_type ? plan->failure_type : type->name;
	alerts_set(out->agent, sizeof(out->agent), agent);
	alerts_set(out->failure_type, sizeof(out->failure_type), ftype);
	if (task && task->target_branch)
		alerts_set(target, sizeof(target), task->target_branch);
	else
		snprintf(target, sizeof(target), "fix/argocd-%.200s", ar->name);

	/* the prompt */
	{
		struct hl_prompt_inputs pin = { .event = &ev,
			                        .verdict = &v,
			                        .context = &ctx,
			                        .task_id = task_id,
			                        .target_branch = target,
			                        .agent = agent,
			                        .failure_type = ftype,
			                        .attempt = n,
			                        .max_attempts = cfg->max_attempts,
			                        .failure_output =
			                                plan ? plan->failure_output : NULL,
			                        .template = "ci/argocd-fix.hbs" };
		json_t *hids = NULL;

		/* OpenMemory's matches, kept as a CI failure's are: healer's
		 * records of this type, within the memory scope */
		if (ctx.memory)
			history = hl_memory_history_from_matches(
			        ctx.memory, repo, cfg->memory_scope, ftype, task_id, &hids);
		json_decref(hids);
		pin.history = history;
		pin.previous = prev;
		pin.n_previous = argo_previous(prev, 16, task, n);
		if ((rc = hl_prompt_builder_render(a->prompts, &prompt, &pin, err)) < 0)
			goto out;
	}
	evs = json_dumps(ar->doc, JSON_COMPACT);

	/* claim (a first attempt from a delivery) and a budget slot */
	if (!task) {
		rc = hl_store_task_claim(
		        a->store, &created, existing,
		        &(struct hl_task){ .task_id = task_id,
		                           .dedup_key = ar->key,
		                           .repository = repo,
		                           .state = HL_TASK_RUNNING,
		                           .attempts = 1,
		                           .kind = "argocd",
		                           .event_json = evs,
		                           .target_branch = target,
		                           .next_check_ms =
		                                   hl_time_wall_ms() +
		                                   (int64_t)cfg->attempt_timeout_mins * 60000 },
		        err);
		if (rc < 0)
			goto out;
		if (!created && strcmp(existing, task_id) != 0) {
			argo_out(out, "existing", "existing", "the application is remediated by %s",
			         existing);
			goto out;
		}
		if ((rc = hl_remediate_begin(a->rem, &over, why, sizeof(why), task_id, 1, repo,
		                             agent, NULL, err)) < 0)
			goto out;
		if (over) {
			argo_out(out, "queued", "new", "%s", why);
			rc = hl_store_task_put(
			        a->store,
			        &(struct hl_task){ .task_id = task_id,
			                           .state = HL_TASK_QUEUED,
			                           .reason = why,
			                           .agent = agent,
			                           .failure_type = ftype,
			                           .kind = "argocd",
			                           .next_check_ms = HL_TASK_NO_CHECK },
			        err);
			goto out;
		}
	}

	/* the Bolt CodeRun, named from the key and the attempt */
	{
		struct hl_coderun_spec spec = { .agent = agent,
			                        .failure_type = ftype,
			                        .repository = repo,
			                        .target_branch = target,
			                        .task_id = task_id,
			                        .attempt = n,
			                        .dedup_key = ar->key,
			                        .prompt = prompt,
			                        .cli = cfg->cli,
			                        .model = cfg->model,
			                        .namespace = cfg->namespace };
		json_t *labels;
		if ((rc = hl_coderun_build(&manifest, &spec, err)) < 0)
			goto out;
		labels = hl_json_path(manifest, "metadata.labels");
		/* a long name with its hash: names sharing their first 63
		 * characters never select each other's CodeRuns */
		hl_coderun_label_id(label, ar->name);
		json_object_set_new(labels, "healer/argocd-app", json_string(label));
		hl_str_label_value(label, ar->namespace);
		json_object_set_new(labels, "healer/argocd-namespace", json_string(label));
		json_object_set_new(json_object_get(json_object_get(manifest, "spec"), "env"),
		                    "ARGOCD_APPLICATION", json_string(ar->name));
		/* the application's lock, taken by the caller, must still be
		 * ours (a lost database session let it go) */
		if (!alerts_lock_held(a, "app", ar->namespace, ar->name)) {
			rc = hl_err_set(err, HL_EUPSTREAM,
			                "the lock of application %s/%s was lost; retried later",
			                ar->namespace, ar->name);
			goto out;
		}
		if ((rc = hl_dispatch_submit(a->dispatch, &dout, name, manifest, err)) < 0) {
			if (hl_remediate_refused(task_id, n, &rc, err))
				rc = alerts_refused(a, out, "argocd", task_id, n, agent, ftype,
				                    repo, prompt, err);
			goto out;
		}
		/* a notification's, now that it exists: checked against the
		 * application's others once more (the lock may have been lost) */
		if (dout == HL_DISPATCH_CREATED && !plan) {
			struct hl_err lerr = HL_ERR_INIT; /* a failed look keeps ours */
			char other[64];

			if (argo_active(a, other, ar, task_id, &lerr) == 0) {
				rc = alerts_withdraw_doubled(a, "app", ar->namespace, ar->name,
				                             other, name, task_id, err);
				goto out;
			}
		}
	}
	alerts_set(out->coderun_name, sizeof(out->coderun_name), name);
	argo_out(out,
	         dout == HL_DISPATCH_DRY_RUN    ? "decided"
	         : dout == HL_DISPATCH_EXISTING ? "existing"
	                                        : "dispatched",
	         "new", "%s", "");

	if (n == 1) {
		decision = json_pack(
		        "{s:s, s:s, s:s?, s:s, s:{s:I, s:s}, s:f, s:s?, s:o, s:I, s:I, s:{s:s, s:s}, "
		        "s:[s], s:s, s:{s:s, s:s, s:s, s:s?, s:s?}}",
		        "agent", agent, "failure_type", ftype, "category",
		        type->category ? type->category->name : NULL, "rule",
		        v.rule ? v.rule : "default", "evidence", "line_number",
		        (json_int_t)v.evidence_line_number, "line",
		        v.evidence_line ? v.evidence_line : "", "confidence", v.confidence,
		        "fix_approach", type->fix_approach, "sources",
		        hl_context_sources_json(&ctx), "context_ms", (json_int_t)ctx.elapsed_ms,
		        "prompt_bytes", (json_int_t)(prompt ? strlen(prompt) : 0), "coderun",
		        "name", name, "dispatch", hl_dispatch_outcome_name(dout), "ranked_agents",
		        "bolt", "target_branch", target, "application", "name", ar->name,
		        "namespace", ar->namespace, "trigger", ar->trigger, "health",
		        in.argocd_health, "sync", in.argocd_sync);
	}
	now = hl_time_wall_ms();
	{
		char *dj = decision ? json_dumps(decision, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
		bool dry = dout == HL_DISPATCH_DRY_RUN;
		rc = hl_store_task_put(
		        a->store,
		        &(struct hl_task){ .task_id = task_id,
		                           .dedup_key = ar->key,
		                           .repository = repo,
		                           .agent = agent,
		                           .failure_type = ftype,
		                           .state = dry ? HL_TASK_SKIPPED : HL_TASK_RUNNING,
		                           .reason = dry ? "decide_only" : NULL,
		                           .attempts = n,
		                           .coderun_name = name[0] ? name : NULL,
		                           .decision_json = dj,
		                           .kind = "argocd",
		                           .target_branch = target,
		                           .event_json = evs,
		                           .next_check_ms =
		                                   dry ? HL_TASK_NO_CHECK
		                                       : now + (int64_t)cfg->attempt_timeout_mins *
		                                                           60000 },
		        err);
		free(dj);
		if (rc < 0)
			goto out;
		rc = hl_store_attempt_put(
		        a->store,
		        &(struct hl_attempt){ .task_id = task_id,
		                              .n = n,
		                              .kind = HL_ATTEMPT_AGENT,
		                              .phase = dry ? HL_PHASE_DONE : HL_PHASE_PENDING,
		                              .outcome = HL_OUTCOME_INVALID,
		                              .agent = agent,
		                              .coderun_name = name,
		                              .prompt = prompt,
		                              .repository = repo,
		                              .started_ms = now },
		        err);
	}
	if (rc == 0)
		hl_log_kv(HL_LOG_INFO, "argocd application remediation", "task_id", task_id,
		          "application", ar->name, "failure_type", ftype, "coderun", name, NULL);
out:
	if (have_verdict)
		hl_verdict_release(&v);
	hl_context_release(&ctx);
	json_decref(history);
	json_decref(manifest);
	json_decref(decision);
	free(prompt);
	free(evs);
	return rc;
}

/* Whether a stored notification (a task's event_json) names the same
 * application: its namespace and name (applications in any namespace may
 * share a name). */
static bool
argo_same_app(const json_t *doc, const void *arg)
{
	const struct argo *ar = arg;
	struct argo other;

	return argo_parse(&other, doc, NULL) == 0 && strcmp(other.name, ar->name) == 0 &&
	       strcmp(other.namespace, ar->namespace) == 0;
}

static int argo_active_labelled(struct hl_alerts *a, char *name, const struct argo *ar,
                                const char *task_id, struct hl_err *err);

/* A CodeRun still active for the application under another task: one its
 * labels name, else (its labels edited while it runs) the CodeRun of
 * another running task of the application, asked for by name. */
static int
argo_active(struct hl_alerts *a, char *name, const struct argo *ar, const char *task_id,
            struct hl_err *err)
{
	int rc = argo_active_labelled(a, name, ar, task_id, err);

	if (rc != 1)
		return rc;
	return alerts_active_recorded(a, name, "argocd", task_id, argo_same_app, ar, err);
}

/* A CodeRun its labels say is still active for the application under
 * another task. */
static int
argo_active_labelled(struct hl_alerts *a, char *name, const struct argo *ar, const char *task_id,
                     struct hl_err *err)
{
	struct hl_buf sel = HL_BUF_INIT(1024);
	char la[64], ln[64], lt[64];
	json_t *active = NULL, *c;
	size_t i;
	int rc;

	hl_coderun_label_id(la, ar->name);
	hl_str_label_value(ln, ar->namespace);
	hl_str_label_value(lt, task_id);
	hl_buf_appendf(
	        &sel,
	        "app.kubernetes.io/name=healer,healer/argocd-app=%s,healer/argocd-namespace=%s", la,
	        ln);
	rc = hl_buf_error(&sel) ? hl_err_set(err, HL_ENOMEM, "out of memory")
	                        : hl_dispatch_find_active(a->dispatch, &active, sel.data, err);
	hl_buf_release(&sel);
	if (rc < 0)
		return rc;
	rc = 1;
	json_array_foreach(active, i, c)
	{
		const char *owner = hl_json_str(c, "metadata.labels.healer/task-id");
		if (!owner || strcmp(owner, lt) != 0) {
			alerts_set(name, 64, hl_json_str_or(c, "metadata.name", "?"));
			rc = 0;
			break;
		}
	}
	json_decref(active);
	return rc;
}

int
alerts_argocd(struct hl_alerts *a, struct hl_alerts_outcome *out, const json_t *doc,
              const char *task_id, struct hl_err *err)
{
	struct argo ar;
	struct hl_task_record *t = NULL;
	struct hl_err gerr = HL_ERR_INIT;
	char other[64];
	bool locked = false;
	int rc;

	if ((rc = argo_parse(&ar, doc, err)) < 0)
		return rc;
	rc = hl_store_task_get(a->store, &t, task_id, err);
	if (rc < 0 && rc != -HL_ENOTFOUND)
		return rc;
	if (!t) {
		/* a notification stored before the intake checked the
		 * allowlist, the namespaces and the repository (or under other
		 * settings): never a CodeRun for a repository the list does not
		 * hold, nor pods and logs of a namespace outside
		 * HEALER_ALERT_NAMESPACES */
		const char *why = argo_screen_reason(a->cfg, ar.app);
		enum argo_repo_why rw;
		char repo[256];

		argo_repository(repo, &rw, a->cfg, ar.app, ar.name, true);
		if (why) {
			char existing[HL_TASK_ID_MAX], *evs = json_dumps(doc, JSON_COMPACT);
			bool created = false;

			argo_out(out, "skipped", "skipped", "%s", why);
			rc = hl_store_task_claim(
			        a->store, &created, existing,
			        &(struct hl_task){ .task_id = task_id,
			                           .dedup_key = ar.key,
			                           .repository = repo[0] ? repo : NULL,
			                           .state = HL_TASK_SKIPPED,
			                           .reason = out->reason,
			                           .attempts = 1,
			                           .kind = "argocd",
			                           .event_json = evs,
			                           .next_check_ms = HL_TASK_NO_CHECK },
			        err);
			free(evs);
			return rc;
		}
	}
	if (t) {
		const struct hl_attempt_record *cur =
		        t->n_attempts ? &t->attempt[t->n_attempts - 1] : NULL;
		alerts_set(out->agent, sizeof(out->agent), t->agent);
		alerts_set(out->failure_type, sizeof(out->failure_type), t->failure_type);
		alerts_set(out->coderun_name, sizeof(out->coderun_name), t->coderun_name);
		if (t->state != HL_TASK_RUNNING ||
		    (cur && cur->coderun_name && *cur->coderun_name)) {
			argo_out(out, t->state == HL_TASK_QUEUED ? "queued" : "existing",
			         "existing", "the application's task is %s",
			         hl_task_state_name(t->state));
			rc = 0;
			goto out;
		}
	}
	/* one active remediation per application: another notification of it
	 * waits for this one's CodeRun, then sees it */
	if ((rc = alerts_lock(a, "app", ar.namespace, ar.name, err)) < 0)
		goto out;
	locked = true;
	rc = argo_active(a, other, &ar, task_id, &gerr);
	if (rc < 0) {
		rc = hl_err_set(err, HL_EUPSTREAM, "checking the application's active CodeRuns: %s",
		                gerr.msg);
		goto out;
	}
	if (rc == 0) {
		char existing[HL_TASK_ID_MAX], *evs = json_dumps(doc, JSON_COMPACT);
		bool created = false;
		struct hl_task tk = { .task_id = task_id,
			              .dedup_key = ar.key,
			              .state = HL_TASK_SKIPPED,
			              .reason = out->reason,
			              .attempts = 1,
			              .kind = "argocd",
			              .event_json = evs,
			              .next_check_ms = HL_TASK_NO_CHECK };
		argo_out(out, "existing", "existing",
		         "CodeRun %s is still active for application %s", other, ar.name);
		alerts_set(out->coderun_name, sizeof(out->coderun_name), other);
		if (t)
			rc = hl_store_task_put(a->store, &tk, err);
		else if ((rc = hl_store_task_claim(a->store, &created, existing, &tk, err)) == 0 &&
		         !created)
			rc = hl_store_task_put(a->store, &tk, err);
		free(evs);
		goto out;
	}
	rc = argo_attempt(a, out, &ar, task_id, 1, NULL, NULL, err);
out:
	if (locked)
		alerts_unlock(a, "app", ar.namespace, ar.name);
	hl_task_record_free(t);
	return rc;
}

int
alerts_argocd_kind(void *arg, struct hl_remediation *res, const struct hl_task_record *task,
                   const struct hl_attempt_plan *plan, struct hl_err *err)
{
	struct hl_alerts *a = arg;
	struct hl_alerts_outcome o;
	struct argo ar;
	json_t *doc = NULL;
	int rc;

	memset(&o, 0, sizeof(o));
	if (!task->event_json ||
	    hl_json_parse(&doc, task->event_json, strlen(task->event_json), err) < 0)
		return hl_err_set(err, HL_EINVAL, "task '%s' has no stored notification",
		                  task->task_id);
	rc = argo_parse(&ar, doc, err);
	if (rc == 0 && (rc = alerts_lock(a, "app", ar.namespace, ar.name, err)) == 0) {
		/* one active remediation per application holds for retries too:
		 * another notification's task may have made one since this
		 * task's CodeRun ended */
		struct hl_err gerr = HL_ERR_INIT;
		char other[64], what[300];
		const char *why = argo_screen_reason(a->cfg, ar.app);

		if (why) {
			/* the settings changed since: no CodeRun, nothing fetched */
			rc = alerts_retry_skipped(a, &o, task->task_id, plan->n,
			                          plan->agent ? plan->agent : task->agent, why,
			                          err);
		} else if ((rc = argo_active(a, other, &ar, task->task_id, &gerr)) < 0) {
			rc = hl_err_set(err, HL_EUPSTREAM,
			                "checking the application's active CodeRuns: %s", gerr.msg);
		} else if (rc == 0) {
			snprintf(what, sizeof(what), "application %s", ar.name);
			rc = alerts_superseded(a, &o, task->task_id, plan->n,
			                       plan->agent ? plan->agent : task->agent, what, other,
			                       err);
		} else {
			rc = argo_attempt(a, &o, &ar, task->task_id, plan->n, task, plan, err);
		}
		alerts_unlock(a, "app", ar.namespace, ar.name);
	}
	if (rc == 0)
		alerts_to_remediation(res, &o);
	json_decref(doc);
	return rc;
}
