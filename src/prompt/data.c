/*
 * data.c - hl_prompt_data_build: the one place that turns healer's internal
 * context (struct hl_prompt_context) into the template data documented in
 * docs/PROMPT_DATA.md. Every documented key is always present (null when
 * unknown) and nothing else is, so templates cannot read keys the code never
 * sets; tests/tmpl checks the document against this function's output.
 * URLs and texts that may quote one (a missing source's reason, a CodeRun's
 * message, an attempt's summary, the memories of the history) lose their
 * userinfo; the A7 names are null unless Kubernetes
 * would accept them (the templates still quote them).
 */
#include "base/buf.h"
#include "base/str.h"
#include "base/url.h"
#include "catalog/catalog.h"
#include "prompt/prompt.h"

#include <stdlib.h>
#include <string.h>

/* The agent's catalogue entry; the default agent (Atlas) handles everything
 * else. */
static const struct hl_catalog_agent *
agent_lookup(const char *id)
{
	const struct hl_catalog_agent *a = hl_catalog_agent_find(id);

	return a ? a : hl_catalog_default_agent();
}

/* A JSON string of n bytes with invalid UTF-8 replaced by U+FFFD (and NUL
 * bytes dropped); JSON null for NULL. */
static json_t *
jstrn(const char *s, size_t n)
{
	struct hl_buf b = HL_BUF_INIT(0);
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;
	json_t *j;

	if (!s)
		return json_null();
	j = json_stringn(s, n);
	if (j)
		return j;
	while (i < n) {
		size_t k = 0;
		if (u[i] == 0) {
			i++;
			continue;
		}
		if (u[i] < 0x80)
			k = 1;
		else if (u[i] >= 0xc2 && u[i] <= 0xdf && i + 1 < n && (u[i + 1] & 0xc0) == 0x80)
			k = 2;
		else if (u[i] >= 0xe0 && u[i] <= 0xef && i + 2 < n && (u[i + 1] & 0xc0) == 0x80 &&
		         (u[i + 2] & 0xc0) == 0x80 && !(u[i] == 0xe0 && u[i + 1] < 0xa0) &&
		         !(u[i] == 0xed && u[i + 1] > 0x9f))
			k = 3;
		else if (u[i] >= 0xf0 && u[i] <= 0xf4 && i + 3 < n && (u[i + 1] & 0xc0) == 0x80 &&
		         (u[i + 2] & 0xc0) == 0x80 && (u[i + 3] & 0xc0) == 0x80 &&
		         !(u[i] == 0xf0 && u[i + 1] < 0x90) && !(u[i] == 0xf4 && u[i + 1] > 0x8f))
			k = 4;
		if (k) {
			hl_buf_append(&b, s + i, k);
			i += k;
		} else {
			hl_buf_append_str(&b, "\xef\xbf\xbd");
			i++;
		}
	}
	j = hl_buf_error(&b) ? NULL : json_stringn(b.data, b.len);
	hl_buf_release(&b);
	return j;
}

static json_t *
jstr(const char *s)
{
	return s ? jstrn(s, strlen(s)) : json_null();
}

/* A URL without its userinfo ("https://user:pass@host" -> "https://host"):
 * a credential is never shown to an agent. JSON null for NULL. */
static json_t *
jurl(const char *s)
{
	struct hl_buf b = HL_BUF_INIT(0);
	json_t *j;

	if (!s)
		return json_null();
	hl_url_strip_userinfo_text(&b, s);
	j = hl_buf_error(&b) ? NULL : jstrn(b.data, b.len);
	hl_buf_release(&b);
	return j;
}

/* A Kubernetes name for the A7 commands: only what Kubernetes allows
 * (label: a namespace; else a DNS subdomain: a pod), else null. */
static json_t *
jk8s(const char *s, bool label)
{
	if (!s || !(label ? hl_str_k8s_label_valid(s) : hl_str_k8s_subdomain_valid(s)))
		return json_null();
	return jstr(s);
}

/* A task id: letters, digits, '.', '_' and '-' only, else null. */
static json_t *
jtask_id(const char *s)
{
	size_t n = s ? strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                         "0123456789._-")
	             : 0;

	return s && n > 0 && n <= 96 && !s[n] ? jstr(s) : json_null();
}

/* Sets key (steals v); a NULL v (OOM) marks the build failed. */
static void
put(json_t *o, const char *key, json_t *v, bool *ok)
{
	if (!v || json_object_set_new(o, key, v))
		*ok = false;
}

static const char *
first(const char *a, const char *b)
{
	return a && *a ? a : b;
}

/* A scalar copied from src (strings, numbers, booleans), else null; with
 * urls, a string loses the credentials of the URLs it quotes (jurl). */
static json_t *
scalar(const json_t *src, const char *key, bool urls)
{
	json_t *v = src ? json_object_get(src, key) : NULL;

	if (json_is_string(v) && urls)
		return jurl(json_string_value(v));
	if (json_is_string(v))
		return jstrn(json_string_value(v), json_string_length(v));
	if (json_is_number(v) || json_is_boolean(v))
		return json_copy(v);
	return json_null();
}

/* {key: scalar} for the listed keys */
static json_t *
pick(const json_t *src, const char *const *keys, bool urls, bool *ok)
{
	json_t *o = json_object();
	size_t i;

	if (!o) {
		*ok = false;
		return NULL;
	}
	for (i = 0; keys[i]; i++)
		put(o, keys[i], scalar(src, keys[i], urls), ok);
	return o;
}

/* [pick(e) for e in src[key]] */
static json_t *
pick_list(const json_t *src, const char *key, const char *const *keys, bool urls, bool *ok)
{
	json_t *a = json_array(), *arr = src ? json_object_get(src, key) : NULL, *e;
	size_t i;

	if (!a) {
		*ok = false;
		return NULL;
	}
	json_array_foreach(arr, i, e)
	{
		json_t *p = pick(e, keys, urls, ok);
		if (!p || json_array_append_new(a, p))
			*ok = false;
	}
	return a;
}

static json_t *
string_list(const json_t *src, const char *key, bool *ok)
{
	json_t *a = json_array(), *arr = src ? json_object_get(src, key) : NULL, *e;
	size_t i;

	if (!a) {
		*ok = false;
		return NULL;
	}
	json_array_foreach(arr, i, e)
	{
		if (json_is_string(e) &&
		    json_array_append_new(a, jstrn(json_string_value(e), json_string_length(e))))
			*ok = false;
	}
	return a;
}

static const char *const k_resource[] = { "kind", "name", "namespace", "status", "message", NULL };
static const char *const k_pod[] = { "name",     "namespace", "phase", "reason",
	                             "restarts", "message",   NULL };
static const char *const k_kevent[] = { "type", "reason", "object", "message", "count", NULL };
static const char *const k_palert[] = { "name", "severity", "state", "summary", NULL };
static const char *const k_similar[] = { "id", "summary", "score", "resolution", NULL };
static const char *const k_solution[] = { "id", "summary", "score", NULL };
static const char *const k_agent_record[] = { "agent", "finished", "succeeded", NULL };

static json_t *
build_argocd(const json_t *src, bool *ok)
{
	static const char *const k[] = { "app", "sync", "health", "message", NULL };
	json_t *o;

	if (!json_is_object(src))
		return json_null();
	o = pick(src, k, false, ok);
	if (o)
		put(o, "unhealthy_resources",
		    pick_list(src, "unhealthy_resources", k_resource, false, ok), ok);
	return o;
}

static json_t *
build_kubernetes(const json_t *src, bool *ok)
{
	json_t *o;

	if (!json_is_object(src))
		return json_null();
	if (!(o = json_object())) {
		*ok = false;
		return NULL;
	}
	put(o, "pods", pick_list(src, "pods", k_pod, false, ok), ok);
	put(o, "events", pick_list(src, "events", k_kevent, false, ok), ok);
	return o;
}

static json_t *
build_loki(const json_t *src, bool *ok)
{
	json_t *o;

	if (!json_is_object(src))
		return json_null();
	if (!(o = json_object())) {
		*ok = false;
		return NULL;
	}
	put(o, "query", scalar(src, "query", false), ok);
	put(o, "lines", string_list(src, "lines", ok), ok);
	put(o, "note", scalar(src, "note", false), ok);
	return o;
}

static json_t *
build_prometheus(const json_t *src, bool *ok)
{
	json_t *o;

	if (!json_is_object(src))
		return json_null();
	if (!(o = json_object())) {
		*ok = false;
		return NULL;
	}
	put(o, "summary", scalar(src, "summary", false), ok);
	put(o, "alerts", pick_list(src, "alerts", k_palert, false, ok), ok);
	return o;
}

static json_t *
build_history(const json_t *src, bool *ok)
{
	json_t *o;

	if (!json_is_object(src))
		return json_null();
	if (!(o = json_object())) {
		*ok = false;
		return NULL;
	}
	/* memories quote CodeRun messages and PR URLs of past tasks */
	put(o, "similar_failures", pick_list(src, "similar_failures", k_similar, true, ok), ok);
	put(o, "known_solutions", pick_list(src, "known_solutions", k_solution, true, ok), ok);
	put(o, "agent_records", pick_list(src, "agent_records", k_agent_record, false, ok), ok);
	return o;
}

static json_t *
obj(bool *ok)
{
	json_t *o = json_object();
	if (!o)
		*ok = false;
	return o;
}

static json_t *
build_ci(const struct hl_event *ev, bool *ok)
{
	json_t *o = obj(ok);

	if (!o)
		return NULL;
	put(o, "event", jstr(ev ? ev->event_name : NULL), ok);
	put(o, "workflow", jstr(ev ? ev->workflow_name : NULL), ok);
	put(o, "job", jstr(ev ? ev->job_name : NULL), ok);
	put(o, "failed_step", jstr(ev ? ev->failed_step : NULL), ok);
	put(o, "run_id", ev && ev->run_id ? json_integer(ev->run_id) : json_null(), ok);
	put(o, "run_attempt", ev && ev->run_attempt ? json_integer(ev->run_attempt) : json_null(),
	    ok);
	put(o, "job_id", ev && ev->job_id ? json_integer(ev->job_id) : json_null(), ok);
	put(o, "url", jurl(ev ? ev->html_url : NULL), ok);
	put(o, "conclusion", jstr(ev ? ev->conclusion : NULL), ok);
	put(o, "branch", jstr(ev ? ev->branch : NULL), ok);
	put(o, "head_sha", jstr(ev ? ev->head_sha : NULL), ok);
	put(o, "commit_message", jstr(ev ? ev->commit_message : NULL), ok);
	put(o, "check_title", jstr(ev ? ev->check_output_title : NULL), ok);
	put(o, "check_summary", jstr(ev ? ev->check_output_summary : NULL), ok);
	return o;
}

static bool
is_alert_event(const struct hl_event *ev)
{
	return ev &&
	       (ev->kind == HL_EVENT_DEPENDABOT_ALERT || ev->kind == HL_EVENT_CODE_SCANNING_ALERT ||
	        ev->kind == HL_EVENT_SECRET_SCANNING_ALERT ||
	        ev->kind == HL_EVENT_REPOSITORY_VULNERABILITY_ALERT ||
	        ev->intent == HL_INTENT_SECURITY);
}

static json_t *
build_security(const struct hl_prompt_context *ctx, bool *ok)
{
	const struct hl_event *ev = ctx->event;
	json_t *o;

	/* a CI audit step's finding has no alert: the template says so rather
	 * than listing an alert's fields as unknown */
	if (!is_alert_event(ev))
		return json_null();
	if (!(o = obj(ok)))
		return NULL;
	put(o, "alert_type", jstr(ev->event_name), ok);
	put(o, "alert_number",
	    ev && ev->alert_number ? json_integer(ev->alert_number) : json_null(), ok);
	put(o, "state", jstr(ev ? ev->alert_state : NULL), ok);
	put(o, "severity", jstr(ev ? ev->severity : NULL), ok);
	put(o, "package", jstr(ev ? ev->package_name : NULL), ok);
	put(o, "ecosystem", jstr(ev ? ev->package_ecosystem : NULL), ok);
	put(o, "manifest", jstr(ev ? ev->manifest_path : NULL), ok);
	put(o, "vulnerable_range", jstr(ev ? ev->vulnerable_range : NULL), ok);
	put(o, "fixed_version", jstr(ev ? ev->fixed_version : NULL), ok);
	put(o, "cve_id", jstr(ev ? ev->cve_id : NULL), ok);
	put(o, "ghsa_id", jstr(ev ? ev->ghsa_id : NULL), ok);
	put(o, "summary", jstr(ev ? ev->summary : NULL), ok);
	put(o, "description", jstr(ev ? ev->description : NULL), ok);
	put(o, "rule_id", jstr(ev ? ev->rule_id : NULL), ok);
	put(o, "tool", jstr(ev ? ev->tool_name : NULL), ok);
	put(o, "location", jstr(ev ? ev->location_path : NULL), ok);
	put(o, "secret_type", jstr(ev ? ev->secret_type : NULL), ok);
	put(o, "url", jurl(ev ? ev->html_url : NULL), ok);
	return o;
}

/* A human's request: a /healer command in a PR comment or a check run's
 * requested action (the Stitch "Remediate" button). */
/* "<12 hex of the sha> <the message's first line>". */
static json_t *
commit_line(const json_t *c)
{
	const char *sha = json_string_value(json_object_get(c, "sha"));
	const char *msg = json_string_value(json_object_get(c, "message"));
	struct hl_buf b = HL_BUF_INIT(4096);
	size_t n = msg ? strcspn(msg, "\n") : 0;
	json_t *j;

	hl_buf_appendf(&b, "%.12s ", sha ? sha : "?");
	if (msg)
		hl_buf_append(&b, msg, n);
	j = hl_buf_error(&b) ? json_null() : json_stringn(b.data, b.len);
	hl_buf_release(&b);
	return j ? j : json_null();
}

/* The commits pushed since the failing one: [{sha, message, author, line}]. */
static json_t *
build_commits(const json_t *commits, bool *ok)
{
	json_t *arr = json_array(), *c;
	size_t i;

	if (!arr) {
		*ok = false;
		return NULL;
	}
	json_array_foreach(commits, i, c)
	{
		json_t *e = obj(ok);
		if (!e)
			break;
		put(e, "sha", jstr(json_string_value(json_object_get(c, "sha"))), ok);
		put(e, "message", jstr(json_string_value(json_object_get(c, "message"))), ok);
		put(e, "author", jstr(json_string_value(json_object_get(c, "author"))), ok);
		put(e, "line", commit_line(c), ok);
		if (json_array_append_new(arr, e))
			*ok = false;
	}
	return arr;
}

static json_t *
build_request(const struct hl_prompt_context *ctx, bool *ok)
{
	const struct hl_event *ev = ctx->event;
	json_t *o;

	bool by_comment = ev && (ev->intent == HL_INTENT_COMMAND || ev->command != HL_CMD_NONE);

	/* a failure remediated on a human's /healer fix or retry carries the
	 * command too */
	if (!ev || (!by_comment && ev->intent != HL_INTENT_ACTION))
		return json_null();
	if (!(o = obj(ok)))
		return NULL;
	put(o, "source", jstr(by_comment ? "comment" : "check_run_action"), ok);
	put(o, "command",
	    jstr(by_comment ? hl_comment_command_name(ev->command) : ev->requested_action), ok);
	put(o, "hint", jstr(ev->command_hint), ok);
	put(o, "author", jstr(ev->sender), ok);
	return o;
}

static json_t *
build_pr(const struct hl_prompt_context *ctx, bool *ok)
{
	const struct hl_event *ev = ctx->event;
	int64_t number = ctx->pr_number ? ctx->pr_number : ev ? ev->pr_number : 0;
	json_t *o;

	if (number <= 0)
		return json_null();
	if (!(o = obj(ok)))
		return NULL;
	put(o, "number", json_integer(number), ok);
	put(o, "title", jstr(first(ctx->pr_title, ev ? ev->pr_title : NULL)), ok);
	put(o, "url", jurl(ctx->pr_url), ok);
	put(o, "head_ref", jstr(first(ctx->pr_head_ref, ev ? ev->branch : NULL)), ok);
	put(o, "base_ref", jstr(first(ctx->pr_base_ref, ev ? ev->base_branch : NULL)), ok);
	put(o, "author", jstr(ctx->pr_author), ok);
	put(o, "body", jstr(ctx->pr_body), ok);
	return o;
}

static json_t *
build_attempt(const struct hl_prompt_context *ctx, bool *ok)
{
	int64_t number = ctx->attempt > 0 ? ctx->attempt : 1;
	int64_t max = ctx->max_attempts > 0 ? ctx->max_attempts : 3;
	json_t *o = obj(ok), *prev;
	size_t i;

	/* an attempt a human granted past the limit (/healer retry) is the
	 * last one so far: "attempt 12 of 12", not "of 10" */
	if (number > max)
		max = number;
	if (!o)
		return NULL;
	put(o, "number", json_integer(number), ok);
	put(o, "max", json_integer(max), ok);
	put(o, "is_retry", json_boolean(number > 1), ok);
	put(o, "is_last", json_boolean(number >= max), ok);
	put(o, "remaining", json_integer(max > number ? max - number : 0), ok);
	prev = json_array();
	for (i = 0; prev && i < ctx->n_attempts; i++) {
		const struct hl_prompt_attempt *a = &ctx->attempts[i];
		json_t *e = obj(ok);
		if (!e)
			break;
		put(e, "number", json_integer(a->number ? a->number : (int64_t)i + 1), ok);
		put(e, "agent", jstr(a->agent), ok);
		put(e, "outcome", jstr(a->outcome), ok);
		/* "the CodeRun failed: <its message>" */
		put(e, "summary", jurl(a->summary), ok);
		put(e, "coderun", jstr(a->coderun), ok);
		put(e, "status_message", jurl(a->status_message), ok);
		put(e, "pr_url", jurl(a->pr_url), ok);
		if (json_array_append_new(prev, e))
			*ok = false;
	}
	put(o, "previous", prev, ok);
	put(o, "commits", build_commits(ctx->commits, ok), ok);
	put(o, "failure_output", jurl(ctx->failure_output), ok);
	put(o, "ci_status", jurl(ctx->ci_status), ok);
	return o;
}

json_t *
hl_prompt_data_build(const struct hl_prompt_context *ctx)
{
	const struct hl_event *ev = ctx->event;
	const struct hl_catalog_agent *ag = agent_lookup(ctx->agent);
	json_t *d = json_object(), *o, *a;
	bool ok = d != NULL;
	size_t i;

	if (!d)
		return NULL;
	/* agent */
	if ((o = obj(&ok))) {
		put(o, "id", jstr(ag->id), &ok);
		put(o, "name", jstr(ag->name), &ok);
		put(o, "role", jstr(ag->role), &ok);
		put(o, "github_app", jstr(ag->github_app), &ok);
	}
	put(d, "agent", o, &ok);
	/* repository */
	if ((o = obj(&ok))) {
		put(o, "full_name", jstr(ev ? ev->repository : NULL), &ok);
		put(o, "url", jurl(ev ? ev->repository_url : NULL), &ok);
		put(o, "default_branch", jstr(ev ? ev->default_branch : NULL), &ok);
	}
	put(d, "repository", o, &ok);
	put(d, "ci", build_ci(ev, &ok), &ok);
	/* failure */
	if ((o = obj(&ok))) {
		json_t *e;
		put(o, "type", jstr(ctx->failure_type), &ok);
		put(o, "category", jstr(ctx->category), &ok);
		put(o, "rule", jstr(ctx->rule), &ok);
		put(o, "fix_approach", jstr(ctx->fix_approach), &ok);
		if ((e = obj(&ok))) {
			put(e, "line_number",
			    ctx->evidence_line_number > 0 ? json_integer(ctx->evidence_line_number)
			                                  : json_null(),
			    &ok);
			put(e, "line", jstr(ctx->evidence_line), &ok);
			put(e, "reason", jstr(ctx->evidence_reason), &ok);
		}
		put(o, "evidence", e, &ok);
		put(o, "confidence",
		    ctx->confidence >= 0 && ctx->confidence <= 1 ? json_real(ctx->confidence)
		                                                 : json_null(),
		    &ok);
	}
	put(d, "failure", o, &ok);
	/* log */
	if ((o = obj(&ok))) {
		size_t lines = 0,
		       n = ctx->log ? (ctx->log_len ? ctx->log_len : strlen(ctx->log)) : 0;
		for (i = 0; i < n; i++)
			lines += ctx->log[i] == '\n';
		if (n && ctx->log[n - 1] != '\n')
			lines++;
		put(o, "text", n ? jstrn(ctx->log, n) : json_null(), &ok);
		put(o, "bytes", json_integer((json_int_t)n), &ok);
		put(o, "lines", json_integer((json_int_t)lines), &ok);
		put(o, "focus_line",
		    ctx->evidence_line_number > 0 ? json_integer(ctx->evidence_line_number)
		                                  : json_null(),
		    &ok);
	}
	put(d, "log", o, &ok);
	put(d, "pr", build_pr(ctx, &ok), &ok);
	a = json_array();
	for (i = 0; a && i < ctx->n_files; i++) {
		const struct hl_prompt_file *f = &ctx->files[i];
		if (!(o = obj(&ok)))
			break;
		put(o, "filename", jstr(f->filename), &ok);
		put(o, "status", jstr(f->status), &ok);
		put(o, "additions", json_integer(f->additions), &ok);
		put(o, "deletions", json_integer(f->deletions), &ok);
		if (json_array_append_new(a, o))
			ok = false;
	}
	put(d, "changed_files", a, &ok);
	put(d, "changed_files_total",
	    ctx->n_files_total < 0 ? json_null()
	                           : json_integer(ctx->n_files_total > (int64_t)ctx->n_files
	                                                  ? ctx->n_files_total
	                                                  : (int64_t)ctx->n_files),
	    &ok);
	put(d, "argocd", build_argocd(ctx->argocd, &ok), &ok);
	put(d, "kubernetes", build_kubernetes(ctx->kubernetes, &ok), &ok);
	put(d, "loki", build_loki(ctx->loki, &ok), &ok);
	put(d, "prometheus", build_prometheus(ctx->prometheus, &ok), &ok);
	put(d, "history", build_history(ctx->history, &ok), &ok);
	put(d, "attempt", build_attempt(ctx, &ok), &ok);
	a = json_array();
	for (i = 0; a && i < ctx->n_missing; i++) {
		if (!(o = obj(&ok)))
			break;
		put(o, "name", jstr(ctx->missing[i].name), &ok);
		put(o, "reason", jurl(first(ctx->missing[i].reason, "unavailable")), &ok);
		if (json_array_append_new(a, o))
			ok = false;
	}
	put(d, "missing_sources", a, &ok);
	put(d, "target_branch",
	    jstr(first(ctx->target_branch, first(ctx->pr_head_ref, ev ? ev->branch : NULL))), &ok);
	put(d, "security", build_security(ctx, &ok), &ok);
	put(d, "request", build_request(ctx, &ok), &ok);
	if (ctx->alert_id || ctx->pod_name) {
		if ((o = obj(&ok))) {
			put(o, "id", jstr(ctx->alert_id), &ok);
			put(o, "pod_name", jk8s(ctx->pod_name, false), &ok);
			put(o, "namespace", jk8s(ctx->namespace, true), &ok);
			put(o, "task_id", jtask_id(ctx->task_id), &ok);
			put(o, "phase", jstr(ctx->pod_phase), &ok);
			put(o, "container", jstr(ctx->container), &ok);
			put(o, "reason", jstr(ctx->alert_reason), &ok);
			put(o, "message", jstr(ctx->alert_message), &ok);
		}
		put(d, "alert", o, &ok);
	} else {
		put(d, "alert", json_null(), &ok);
	}
	if (!ok) {
		json_decref(d);
		return NULL;
	}
	return d;
}
