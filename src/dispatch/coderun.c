/*
 * coderun.c - CodeRun manifests: names, target branches, the CI and heal
 * manifests, and a validator that mirrors the API server's checks for the
 * CRD healer ships (deploy/crds/coderun.yaml).
 *
 * Invariants: every label value put in a manifest passed
 * hl_str_label_value, or hl_coderun_label_id for the target pod that
 * selectors look for (so a weird branch or pod name never causes a 422,
 * and two long pod names never share a value);
 * names are lower-case DNS-1123 labels of at most 63 characters.
 */
#include "coderun.h"

#include "base/buf.h"
#include "base/str.h"
#include "catalog/catalog.h"
#include "diag/pod_diag.h"
#include "net/kube.h"

#include "json/json.h"
#include <ctype.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Heal (pod-failure) runs always go to this agent (seed facts 1.5). */
#define CODERUN_HEAL_AGENT "rex"

static const char *
coderun_s(const char *s)
{
	return s ? s : "";
}

const char *
hl_coderun_github_app(const char *agent)
{
	const struct hl_catalog_agent *a = hl_catalog_agent_find(agent);

	return a ? a->github_app : NULL;
}

/* Copies in as a lower-case [a-z0-9-] token (others become '-', runs of '-'
 * collapse, no leading/trailing '-'), at most size-1 bytes. */
static void
coderun_dns_token(char *out, size_t size, const char *in)
{
	size_t n = 0;

	if (size == 0)
		return;
	for (; in && *in && n + 1 < size; in++) {
		unsigned char c = (unsigned char)*in;
		char d = isalnum(c) ? (char)tolower(c) : '-';

		if (d == '-' && (n == 0 || out[n - 1] == '-'))
			continue;
		out[n++] = d;
	}
	while (n > 0 && out[n - 1] == '-')
		n--;
	out[n] = '\0';
}

void
hl_coderun_failure_short(char *out, size_t size, const char *failure_type)
{
	const struct hl_catalog_type *t = hl_catalog_type_find(failure_type);

	if (!failure_type || !*failure_type) {
		hl_strlcpy(out, hl_catalog_default_type()->short_name, size);
		return;
	}
	if (t) {
		hl_strlcpy(out, t->short_name, size);
		return;
	}
	coderun_dns_token(out, size, failure_type);
	if (!out[0])
		hl_strlcpy(out, hl_catalog_default_type()->short_name, size);
}

void
hl_coderun_name(char *out, const char *agent, const char *failure_type, const char *dedup_key,
                int attempt)
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	char hex[65], a[16], s[24];
	struct hl_buf key = HL_BUF_INIT(0);

	hl_buf_append_str(&key, coderun_s(dedup_key));
	if (attempt > 1)
		hl_buf_appendf(&key, "#%d", attempt);
	EVP_Digest(key.data, key.len, md, &mdlen, EVP_sha256(), NULL);
	hl_buf_release(&key);
	hl_str_hex(hex, md, 32);
	coderun_dns_token(a, sizeof(a), agent);
	if (!a[0])
		hl_strlcpy(a, "agent", sizeof(a));
	hl_coderun_failure_short(s, 21, failure_type);
	/* "healer-" 7 + a <= 15 + 1 + s <= 20 + 1 + 10 = 54 <= 63 */
	snprintf(out, 64, "healer-%s-%s-%.10s", a, s, hex);
}

const char *
hl_coderun_target_branch(char *out, size_t size, const char *branch, const char *default_branch,
                         const char *pr_head_ref, const char *failure_type, const char *head_sha)
{
	const char *def = default_branch && *default_branch ? default_branch : "main";
	char s[32];

	/* a name git or a shell would read as more than a branch (a fork's
	 * head_branch is anyone's to choose) gets a fix branch too */
	if (pr_head_ref && hl_str_branch_safe(pr_head_ref))
		return pr_head_ref;
	if (!hl_str_branch_safe(branch) || strcmp(branch, def) == 0 ||
	    strcmp(branch, "main") == 0) {
		hl_coderun_failure_short(s, sizeof(s), failure_type);
		snprintf(out, size, "fix/%s-%.8s", s, head_sha && *head_sha ? head_sha : "unknown");
		return out;
	}
	return branch;
}

/*
 * A JSON string of s[0..n) as the API server takes it: NUL bytes dropped
 * and every byte that is not part of valid UTF-8 replaced by U+FFFD (an
 * issue file or a pod name copied from a log may hold either; jansson
 * refuses invalid UTF-8, which would fail the whole manifest). NULL only
 * when out of memory.
 */
static json_t *
coderun_jstr(const char *s, size_t n)
{
	struct hl_buf b = HL_BUF_INIT(0);
	json_t *j;

	if (hl_utf8_valid_len(s, n) == n && !memchr(s, '\0', n))
		return json_stringn(s, n);
	j = hl_buf_append_utf8(&b, s, n) < 0 ? NULL : json_stringn(b.data, b.len);
	hl_buf_release(&b);
	return j;
}

static int
coderun_setn(json_t *obj, const char *key, const char *value, size_t n)
{
	return json_object_set_new(obj, key, coderun_jstr(coderun_s(value), value ? n : 0));
}

static int
coderun_set(json_t *obj, const char *key, const char *value)
{
	return coderun_setn(obj, key, value, value ? strlen(value) : 0);
}

/*
 * Fills spec.cliConfig {cliType, model, settings.template "<family>/<name>"}
 * and hands the manifest m out, or frees it when any earlier step (rc != 0)
 * or this one ran out of memory.
 */
static int
coderun_finish(json_t **out, json_t *m, json_t *cli, json_t *settings, const char *cli_type,
               const char *model, const char *family, const char *name, int rc, struct hl_err *err)
{
	char tmpl[96];

	snprintf(tmpl, sizeof(tmpl), "%s/%s", family, name);
	rc |= coderun_set(settings, "template", tmpl);
	rc |= coderun_set(cli, "cliType", cli_type);
	rc |= coderun_set(cli, "model", model);
	rc |= json_object_set_new(cli, "settings", settings);
	if (rc) {
		json_decref(m);
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	}
	*out = m;
	return 0;
}

static int
coderun_label(json_t *labels, const char *key, const char *value)
{
	char v[64];

	hl_str_label_value(v, coderun_s(value));
	return json_object_set_new(labels, key, json_string(v));
}

/* A workflow run id as text; empty when there is none (no run 0). */
static void
coderun_run_id(char *out, size_t size, int64_t run_id)
{
	if (run_id > 0)
		snprintf(out, size, "%lld", (long long)run_id);
	else
		out[0] = '\0';
}

/* "Factory" -> "factory": the CRD's cliType is the lower-case CLI name. */
static void
coderun_lower(char *out, size_t size, const char *in)
{
	size_t i;

	for (i = 0; in && in[i] && i + 1 < size; i++)
		out[i] = (char)tolower((unsigned char)in[i]);
	out[i] = '\0';
}

int
hl_coderun_build(json_t **out, const struct hl_coderun_spec *spec, struct hl_err *err)
{
	const char *app = hl_coderun_github_app(spec->agent);
	json_t *m = NULL, *meta, *labels, *s, *env, *cli, *settings;
	char name[64], fix_branch[64], num[32], cli_type[64], agent[16], repo_url[512];
	const char *target;
	int rc = 0;

	if (!app)
		return hl_err_set(err, HL_EINVAL, "unknown agent '%s'", coderun_s(spec->agent));
	if (!spec->repository || !strchr(spec->repository, '/'))
		return hl_err_set(err, HL_EINVAL, "repository '%s' is not owner/name",
		                  coderun_s(spec->repository));
	coderun_lower(agent, sizeof(agent), spec->agent);
	coderun_lower(cli_type, sizeof(cli_type), spec->cli && *spec->cli ? spec->cli : "factory");
	hl_coderun_name(name, agent, spec->failure_type,
	                spec->dedup_key ? spec->dedup_key : spec->task_id, spec->attempt);
	if (hl_str_branch_safe(spec->target_branch))
		target = spec->target_branch;
	else
		target = hl_coderun_target_branch(fix_branch, sizeof(fix_branch), spec->branch,
		                                  spec->default_branch, spec->pr_head_ref,
		                                  spec->failure_type, spec->head_sha);
	snprintf(repo_url, sizeof(repo_url), "https://github.com/%s", spec->repository);

	m = json_object();
	meta = json_object();
	labels = json_object();
	s = json_object();
	env = json_object();
	cli = json_object();
	settings = json_object();
	if (!m || !meta || !labels || !s || !env || !cli || !settings) {
		json_decref(m);
		json_decref(meta);
		json_decref(labels);
		json_decref(s);
		json_decref(env);
		json_decref(cli);
		json_decref(settings);
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	}
	rc |= coderun_set(m, "apiVersion", HL_CODERUN_API_VERSION);
	rc |= coderun_set(m, "kind", "CodeRun");
	rc |= json_object_set_new(m, "metadata", meta);
	rc |= json_object_set_new(m, "spec", s);
	rc |= coderun_set(meta, "name", name);
	if (spec->namespace && *spec->namespace)
		rc |= coderun_set(meta, "namespace", spec->namespace);
	rc |= json_object_set_new(meta, "labels", labels);

	rc |= coderun_label(labels, "app.kubernetes.io/name", "healer");
	rc |= coderun_label(labels, "healer/agent", agent);
	rc |= coderun_label(labels, "healer/failure-type", spec->failure_type);
	/* no run (an alert, an ArgoCD application): empty, not "0", as the
	 * PR number below; no event branch: the branch the fix goes to */
	coderun_run_id(num, sizeof(num), spec->workflow_run_id);
	rc |= coderun_label(labels, "healer/workflow-run-id", num);
	rc |= coderun_label(labels, "healer/branch",
	                    spec->branch && *spec->branch ? spec->branch : target);
	rc |= coderun_label(labels, "healer/task-id", spec->task_id);
	snprintf(num, sizeof(num), "%d", spec->attempt > 0 ? spec->attempt : 1);
	rc |= coderun_label(labels, "healer/attempt", num);

	rc |= coderun_set(s, "runType", "implementation");
	rc |= coderun_set(s, "service",
	                  spec->service && *spec->service ? spec->service : "healer-ci");
	rc |= coderun_set(s, "repositoryUrl", repo_url);
	rc |= coderun_set(s, "docsRepositoryUrl", repo_url);
	rc |= coderun_set(s, "docsProjectDirectory", "docs");
	rc |= coderun_set(s, "docsBranch",
	                  spec->default_branch && *spec->default_branch ? spec->default_branch
	                                                                : "main");
	rc |= coderun_set(s, "workingDirectory", ".");
	rc |= coderun_set(s, "model", spec->model);
	rc |= coderun_set(s, "githubApp", app);
	rc |= coderun_set(s, "promptModification", spec->prompt);
	rc |= json_object_set_new(s, "env", env);
	rc |= json_object_set_new(s, "cliConfig", cli);

	rc |= coderun_set(env, "HEALER_TASK_ID", spec->task_id);
	rc |= coderun_set(env, "FAILURE_TYPE", spec->failure_type);
	coderun_run_id(num, sizeof(num), spec->workflow_run_id);
	rc |= coderun_set(env, "WORKFLOW_RUN_ID", num);
	/* no PR: empty, not "0" (there is no PR 0); the key stays (contract 7) */
	if (spec->pr_number > 0)
		snprintf(num, sizeof(num), "%lld", (long long)spec->pr_number);
	else
		num[0] = '\0';
	rc |= coderun_set(env, "PR_NUMBER", num);
	rc |= coderun_set(env, "TARGET_BRANCH", target);
	/* the failing branch as it was, when it is a name only */
	rc |= coderun_set(env, "FAILURE_BRANCH",
	                  hl_str_branch_safe(spec->branch) ? spec->branch : NULL);
	rc |= coderun_set(env, "HEAD_SHA", spec->head_sha);
	rc |= coderun_set(env, "REPOSITORY", spec->repository);
	snprintf(num, sizeof(num), "%d", spec->attempt > 0 ? spec->attempt : 1);
	rc |= coderun_set(env, "HEALER_ATTEMPT", num);
	rc |= coderun_set(env, "CODERUN_NAME", name);

	return coderun_finish(out, m, cli, settings, cli_type, spec->model, "ci", agent, rc, err);
}

/* The original's u32 task hash: acc = acc * 31 + byte, wrapping. */
static uint32_t
coderun_task_hash(const char *s)
{
	uint32_t acc = 0;

	for (; *s; s++)
		acc = acc * 31u + (unsigned char)*s;
	return acc;
}

int
hl_coderun_build_heal(json_t **out, const struct hl_heal_spec *spec, struct hl_err *err)
{
	json_t *m = NULL, *meta, *labels, *ann, *s, *env, *cli, *settings;
	char gen[64], alert[32], cli_type[64], repo_url[512], prompt_path[4096], logfile[512];
	char family[64], agent[16], num[32];
	const char *repo = spec->repository;
	const char *app, *p, *slash;
	bool numeric = spec->task_id && *spec->task_id;
	long long task_num;
	int rc = 0;

	if (!spec->alert || !*spec->alert)
		return hl_err_set(err, HL_EINVAL, "alert is empty");
	if (!spec->task_id || !*spec->task_id)
		return hl_err_set(err, HL_EINVAL, "task id is empty");
	/* no built-in repository: the caller names it (HEALER_HEAL_REPOSITORY) */
	if (!repo || !*repo)
		return hl_err_set(err, HL_EINVAL, "the heal CodeRun names no repository");
	for (p = spec->task_id; *p; p++)
		if (!isdigit((unsigned char)*p))
			numeric = false;
	task_num = numeric && strlen(spec->task_id) < 10
	                   ? atoll(spec->task_id)
	                   : (long long)coderun_task_hash(spec->task_id);
	coderun_dns_token(alert, 21, spec->alert);
	if (!alert[0])
		hl_strlcpy(alert, "alert", sizeof(alert));
	snprintf(gen, sizeof(gen), "healer-remediation-%s-", alert);
	coderun_lower(agent, sizeof(agent),
	              spec->agent && *spec->agent ? spec->agent : CODERUN_HEAL_AGENT);
	app = hl_coderun_github_app(agent);
	if (!app)
		return hl_err_set(err, HL_EINVAL, "unknown agent '%s'", agent);
	if (spec->template && *spec->template) {
		/* "heal/claude": the family is the run type, the name the CLI */
		slash = strchr(spec->template, '/');
		if (!slash || slash == spec->template || !slash[1] || strchr(slash + 1, '/') ||
		    (size_t)(slash - spec->template) >= sizeof(family))
			return hl_err_set(err, HL_EINVAL, "template '%s' is not FAMILY/NAME",
			                  spec->template);
		memcpy(family, spec->template, (size_t)(slash - spec->template));
		family[slash - spec->template] = '\0';
		coderun_lower(cli_type, sizeof(cli_type), slash + 1);
	} else {
		hl_strlcpy(family, "heal", sizeof(family));
		coderun_lower(cli_type, sizeof(cli_type),
		              spec->cli && *spec->cli ? spec->cli : "claude");
	}
	snprintf(repo_url, sizeof(repo_url), "https://github.com/%s", repo);
	/* the heal server mounts the PVC at /workspace/watch, remediation pods at
	 * /workspace (seed facts 2.4) */
	p = coderun_s(spec->issue_file);
	if (hl_str_starts_with(p, "/workspace/watch/"))
		snprintf(prompt_path, sizeof(prompt_path), "/workspace/%s",
		         p + strlen("/workspace/watch/"));
	else
		hl_strlcpy(prompt_path, p, sizeof(prompt_path));
	if (spec->target_pod && *spec->target_pod) {
		char stem[HL_DIAG_STEM_MAX + 1]; /* the name fetch-logs gives the file */

		if (spec->file_stem && *spec->file_stem)
			hl_strlcpy(stem, spec->file_stem, sizeof(stem));
		else
			hl_diag_file_stem(stem, spec->target_pod);
		snprintf(logfile, sizeof(logfile), "/workspace/logs/%s-current.log", stem);
	} else
		snprintf(logfile, sizeof(logfile), "/workspace/logs/%s-*.log", spec->alert);

	m = json_object();
	meta = json_object();
	labels = json_object();
	ann = json_object();
	s = json_object();
	env = json_object();
	cli = json_object();
	settings = json_object();
	if (!m || !meta || !labels || !ann || !s || !env || !cli || !settings) {
		json_decref(m);
		json_decref(meta);
		json_decref(labels);
		json_decref(ann);
		json_decref(s);
		json_decref(env);
		json_decref(cli);
		json_decref(settings);
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	}
	rc |= coderun_set(m, "apiVersion", HL_CODERUN_API_VERSION);
	rc |= coderun_set(m, "kind", "CodeRun");
	rc |= json_object_set_new(m, "metadata", meta);
	rc |= json_object_set_new(m, "spec", s);
	rc |= coderun_set(meta, "generateName", gen);
	if (spec->namespace && *spec->namespace)
		rc |= coderun_set(meta, "namespace", spec->namespace);
	rc |= json_object_set_new(meta, "labels", labels);
	rc |= json_object_set_new(meta, "annotations", ann);

	rc |= coderun_label(labels, "app.kubernetes.io/name", "healer");
	rc |= coderun_label(labels, "agents.platform/type", "heal-remediation");
	rc |= coderun_label(labels, "healer/agent", agent);
	rc |= coderun_label(labels, "alert-type", spec->alert);
	rc |= coderun_label(labels, "task-id", spec->task_id);
	rc |= coderun_label(labels, "remediation", "true");
	if (spec->target_pod && *spec->target_pod) {
		char lp[64];

		hl_coderun_label_id(lp, spec->target_pod);
		rc |= json_object_set_new(labels, "target-pod", json_string(lp));
		/* same-named pods of two namespaces have one remediation each */
		if (spec->target_namespace && *spec->target_namespace)
			rc |= coderun_label(labels, "target-namespace", spec->target_namespace);
	}
	/* every label of contract section 7 (the loop follows the runs of
	 * its tasks by healer/task-id and healer/attempt): an alert has no
	 * workflow run or branch, the CLI's run is attempt 1 */
	rc |= coderun_label(labels, "healer/task-id", spec->task_id);
	snprintf(num, sizeof(num), "%d", spec->attempt > 0 ? spec->attempt : 1);
	rc |= coderun_label(labels, "healer/attempt", num);
	rc |= coderun_label(labels, "healer/failure-type", spec->failure_type);
	rc |= coderun_label(labels, "healer/workflow-run-id", "");
	rc |= coderun_label(labels, "healer/branch", "");
	rc |= coderun_set(ann, "healer/workspace-pvc", "heal-workspace");
	if (spec->target_pod && *spec->target_pod)
		rc |= coderun_set(ann, "healer/target-pod", spec->target_pod);
	if (spec->target_pod && *spec->target_pod && spec->file_stem && *spec->file_stem)
		rc |= coderun_set(ann, "healer/file-stem", spec->file_stem);
	rc |= coderun_set(ann, "healer/issue-file", spec->issue_file);

	rc |= coderun_set(s, "runType", "implementation");
	rc |= json_object_set_new(s, "taskId", json_integer(task_num));
	rc |= coderun_set(s, "service", "heal");
	rc |= coderun_set(s, "repositoryUrl", repo_url);
	rc |= coderun_set(s, "docsRepositoryUrl", repo_url);
	rc |= coderun_set(s, "docsProjectDirectory", "docs");
	rc |= coderun_set(s, "docsBranch", "main");
	rc |= coderun_set(s, "workingDirectory", ".");
	rc |= coderun_set(s, "model", spec->model);
	rc |= coderun_set(s, "githubApp", app);
	rc |= coderun_setn(s, "promptModification", spec->prompt,
	                   spec->prompt_len || !spec->prompt ? spec->prompt_len
	                                                     : strlen(spec->prompt));
	rc |= json_object_set_new(s, "env", env);
	rc |= json_object_set_new(s, "cliConfig", cli);

	rc |= coderun_set(env, "HEAL_PROMPT_FILE", prompt_path);
	rc |= coderun_set(env, "HEAL_LOG_FILE", logfile);
	rc |= coderun_set(env, "ALERT_TYPE", spec->alert);
	rc |= coderun_set(env, "TASK_ID", spec->task_id);
	rc |= coderun_set(env, "REMEDIATION_MODE", "true");
	if (spec->target_pod && *spec->target_pod)
		rc |= coderun_set(env, "TARGET_POD", spec->target_pod);
	/* contract section 7's keys, empty where they do not apply */
	rc |= coderun_set(env, "HEALER_TASK_ID", spec->task_id);
	rc |= coderun_set(env, "FAILURE_TYPE", spec->failure_type);
	rc |= coderun_set(env, "WORKFLOW_RUN_ID", "");
	rc |= coderun_set(env, "PR_NUMBER", "");
	rc |= coderun_set(env, "TARGET_BRANCH", "");
	snprintf(num, sizeof(num), "%d", spec->attempt > 0 ? spec->attempt : 1);
	rc |= coderun_set(env, "HEALER_ATTEMPT", num);

	return coderun_finish(out, m, cli, settings, cli_type, spec->model, family, cli_type, rc,
	                      err);
}

void
hl_coderun_label_id(char *out, const char *name)
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	char hex[65], head[64];
	size_t n;

	name = coderun_s(name);
	hl_str_label_value(out, name);
	if (strcmp(out, name) == 0)
		return;
	EVP_Digest(name, strlen(name), md, &mdlen, EVP_sha256(), NULL);
	hl_str_hex(hex, md, 32);
	hl_str_label_value(head, name);
	n = strlen(head);
	if (n > 52)
		n = 52;
	while (n > 0 && !isalnum((unsigned char)head[n - 1]))
		n--;          /* the value's last character before '-' must not be one */
	memcpy(out, head, n); /* at most 52 + '-' + 10 hex: 63 */
	if (n)
		out[n++] = '-';
	memcpy(out + n, hex, 10);
	out[n + 10] = '\0';
}

bool
hl_coderun_label_value_valid(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0)
		return true;
	if (n > 63 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!(isalnum(c) || c == '-' || c == '_' || c == '.'))
			return false;
	}
	return true;
}

/* DNS-1123 subdomain: lower-case alnum, '-', '.', alnum at both ends. */
static bool
coderun_dns_subdomain(const char *s, size_t max)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > max)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!(islower(c) || isdigit(c) || c == '-' || c == '.'))
			return false;
	}
	return isalnum((unsigned char)s[0]) && isalnum((unsigned char)s[n - 1]);
}

static bool
coderun_label_key_valid(const char *key)
{
	const char *slash = strchr(key, '/');
	const char *name = slash ? slash + 1 : key;

	if (slash) {
		char prefix[254];
		size_t pn = (size_t)(slash - key);

		if (pn == 0 || pn > 253)
			return false;
		memcpy(prefix, key, pn);
		prefix[pn] = '\0';
		if (!coderun_dns_subdomain(prefix, 253))
			return false;
	}
	return *name && hl_coderun_label_value_valid(name);
}

int
hl_coderun_validate(const json_t *m, struct hl_err *err)
{
	static const char *const required[] = {
		"service",          "repositoryUrl", "docsRepositoryUrl",
		"workingDirectory", "model",         "githubApp"
	};
	const char *name, *gen, *app, *key;
	json_t *labels, *spec, *env, *v;
	size_t i;

	if (!json_is_object(m))
		return hl_err_set(err, HL_EINVAL, "coderun manifest is not an object");
	if (strcmp(hl_json_str_or(m, "apiVersion", ""), HL_CODERUN_API_VERSION) != 0)
		return hl_err_set(err, HL_EINVAL, "apiVersion must be '%s'",
		                  HL_CODERUN_API_VERSION);
	if (strcmp(hl_json_str_or(m, "kind", ""), "CodeRun") != 0)
		return hl_err_set(err, HL_EINVAL, "kind must be 'CodeRun'");
	name = hl_json_str(m, "metadata.name");
	gen = hl_json_str(m, "metadata.generateName");
	if (name) {
		if (!coderun_dns_subdomain(name, 63))
			return hl_err_set(err, HL_EINVAL,
			                  "metadata.name '%s' is not a DNS-1123 "
			                  "name of at most 63 characters",
			                  name);
	} else if (!gen || !*gen || strlen(gen) > 58) {
		return hl_err_set(err, HL_EINVAL, "metadata.name or generateName is required");
	}
	labels = hl_json_path(m, "metadata.labels");
	if (labels && !json_is_object(labels))
		return hl_err_set(err, HL_EINVAL, "metadata.labels must be an object");
	json_object_foreach(labels, key, v)
	{
		if (!coderun_label_key_valid(key))
			return hl_err_set(err, HL_EINVAL, "label key '%s' is invalid", key);
		if (!json_is_string(v) || !hl_coderun_label_value_valid(json_string_value(v)))
			return hl_err_set(err, HL_EINVAL, "label '%s': value is invalid", key);
	}
	spec = json_object_get(m, "spec");
	if (!json_is_object(spec))
		return hl_err_set(err, HL_EINVAL, "spec is required");
	for (i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		const char *s = hl_json_str(spec, required[i]);

		if (!s || !*s)
			return hl_err_set(err, HL_EINVAL, "spec.%s is required", required[i]);
	}
	app = hl_json_str(spec, "githubApp");
	if (!hl_catalog_agent_by_app(app))
		return hl_err_set(err, HL_EINVAL, "spec.githubApp '%s' is not a known app", app);
	env = json_object_get(spec, "env");
	if (env && !json_is_object(env))
		return hl_err_set(err, HL_EINVAL, "spec.env must be a string map");
	json_object_foreach(env, key, v)
	{
		if (!json_is_string(v))
			return hl_err_set(err, HL_EINVAL, "spec.env.%s must be a string", key);
	}
	v = json_object_get(spec, "cliConfig");
	if (v) {
		if (!json_is_object(v) || !hl_json_str(v, "cliType") || !hl_json_str(v, "model"))
			return hl_err_set(err, HL_EINVAL,
			                  "spec.cliConfig needs string cliType and model");
	}
	v = json_object_get(spec, "taskId");
	if (v && !json_is_integer(v))
		return hl_err_set(err, HL_EINVAL, "spec.taskId must be an integer");
	return 0;
}
