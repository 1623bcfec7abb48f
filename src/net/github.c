/*
 * github.c - GitHub REST calls over the fetch engine, with token or GitHub
 * App authentication.
 *
 * Invariants: the installation token cache is guarded by a mutex and is
 * refreshed 5 minutes before expires_at; the Authorization header is only
 * attached to URLs on the API origin (scheme://host[:port] of api_url), and
 * the fetch engine drops it on redirects, so job-log storage hosts and
 * foreign pagination links never see it.
 */
#include "github.h"

#include "base/clock.h"
#include "base/log.h"
#include "base/str.h"
#include "base/url.h"
#include "crypto/jwt.h"

#include "json/json.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GITHUB_REFRESH_MARGIN_MS (5 * 60 * 1000)
#define GITHUB_MAX_FILES         3000

struct hl_github {
	char *api_url; /* no trailing slash */
	char *origin;  /* scheme://host[:port] of api_url */
	char *token;
	char *app_id, *app_key, *installation_id;
	int64_t timeout_ms;
	size_t log_cap;
	pthread_mutex_t mu;
	char *inst_token;        /* cached installation token */
	int64_t inst_expires_ms; /* wall clock */
};

static char *
github_dup(const char *s)
{
	return s && *s ? strdup(s) : NULL;
}

static void
github_wipe_free(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

void
hl_github_free(struct hl_github *gh)
{
	if (!gh)
		return;
	free(gh->api_url);
	free(gh->origin);
	github_wipe_free(gh->token);
	free(gh->app_id);
	github_wipe_free(gh->app_key);
	free(gh->installation_id);
	github_wipe_free(gh->inst_token);
	pthread_mutex_destroy(&gh->mu);
	free(gh);
}

int
hl_github_new_with(struct hl_github **out, const char *api_url, const char *token,
                   const char *app_id, const char *app_private_key, const char *installation_id,
                   struct hl_err *err)
{
	struct hl_github *gh;
	const char *p;
	size_t n;

	if (!api_url || !*api_url)
		api_url = "https://api.github.com";
	if (!hl_str_starts_with(api_url, "https://") && !hl_str_starts_with(api_url, "http://"))
		return hl_err_set(err, HL_EINVAL, "GITHUB_API_URL '%s' is not an http(s) url",
		                  api_url);
	gh = calloc(1, sizeof(*gh));
	if (!gh)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	pthread_mutex_init(&gh->mu, NULL);
	gh->timeout_ms = 20000;
	gh->log_cap = 8u * 1024 * 1024;
	gh->api_url = strdup(api_url);
	if (!gh->api_url)
		goto oom;
	n = strlen(gh->api_url);
	while (n > 0 && gh->api_url[n - 1] == '/')
		gh->api_url[--n] = '\0';
	p = strstr(gh->api_url, "://") + 3;
	p += strcspn(p, "/");
	gh->origin = strndup(gh->api_url, (size_t)(p - gh->api_url));
	if (!gh->origin)
		goto oom;
	gh->token = github_dup(token);
	gh->app_id = github_dup(app_id);
	gh->app_key = github_dup(app_private_key);
	gh->installation_id = github_dup(installation_id);
	if ((token && *token && !gh->token) || (app_id && *app_id && !gh->app_id) ||
	    (app_private_key && *app_private_key && !gh->app_key) ||
	    (installation_id && *installation_id && !gh->installation_id))
		goto oom;
	*out = gh;
	return 0;
oom:
	hl_github_free(gh);
	return hl_err_set(err, HL_ENOMEM, "out of memory");
}

int
hl_github_new(struct hl_github **out, const struct hl_config *cfg, struct hl_err *err)
{
	return hl_github_new_with(out, cfg->github_api_url, cfg->github_token, cfg->github_app_id,
	                          cfg->github_app_private_key, cfg->github_app_installation_id,
	                          err);
}

void
hl_github_set_limits(struct hl_github *gh, int64_t timeout_ms, size_t log_cap)
{
	if (timeout_ms > 0)
		gh->timeout_ms = timeout_ms;
	if (log_cap > 0)
		gh->log_cap = log_cap;
}

static void
github_req_defaults(struct hl_github *gh, struct hl_fetch_req *req)
{
	req->headers[0] = "Accept: application/vnd.github+json";
	req->headers[1] = "X-GitHub-Api-Version: 2022-11-28";
	req->timeout_ms = gh->timeout_ms;
	req->max_retries = -1;
}

/* Trades an App JWT for an installation token; called with gh->mu held. */
static int
github_mint_installation_token(struct hl_github *gh, struct hl_err *err)
{
	struct hl_buf url = HL_BUF_INIT(0), auth = HL_BUF_INIT(0);
	struct hl_fetch_req req;
	struct hl_fetch_res res;
	char *jwt = NULL;
	json_t *v = NULL;
	const char *tok, *exp;
	int64_t expires;
	int ret;

	hl_fetch_res_init(&res);
	memset(&req, 0, sizeof(req));
	ret = hl_jwt_github_app(&jwt, gh->app_id, gh->app_key, hl_time_wall_ms() / 1000, err);
	if (ret < 0)
		goto out;
	hl_buf_appendf(&url, "%s/app/installations/%s/access_tokens", gh->api_url,
	               gh->installation_id);
	hl_buf_appendf(&auth, "Bearer %s", jwt);
	if (hl_buf_error(&url) || hl_buf_error(&auth)) {
		ret = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	github_req_defaults(gh, &req);
	req.method = "POST";
	req.url = url.data;
	req.auth = auth.data;
	req.max_retries = 2;
	hl_fetch_run(&req, &res, 1, 0, err);
	ret = hl_fetch_check(&res, "github app installation token", err);
	if (ret < 0)
		goto out;
	ret = hl_json_parse(&v, res.body.data, res.body.len, err);
	if (ret < 0)
		goto out;
	tok = hl_json_str(v, "token");
	exp = hl_json_str(v, "expires_at");
	if (!tok || !*tok) {
		ret = hl_err_set(err, HL_EAUTH,
		                 "github app installation token: no 'token' in answer");
		goto out;
	}
	expires = exp ? hl_time_parse_rfc3339(exp) : -1;
	if (expires < 0)
		expires = hl_time_wall_ms() + 55 * 60 * 1000;
	github_wipe_free(gh->inst_token);
	gh->inst_token = strdup(tok);
	if (!gh->inst_token) {
		ret = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	hl_log_add_secret(gh->inst_token);
	gh->inst_expires_ms = expires;
out:
	json_decref(v);
	github_wipe_free(jwt);
	hl_buf_release(&url);
	if (auth.len)
		explicit_bzero(auth.data, auth.len);
	hl_buf_release(&auth);
	hl_fetch_res_release(&res);
	return ret;
}

int
hl_github_auth(struct hl_github *gh, struct hl_buf *auth, struct hl_err *err)
{
	int ret = 0;

	hl_buf_reset(auth);
	if (gh->app_id && gh->app_key && gh->installation_id) {
		pthread_mutex_lock(&gh->mu);
		if (!gh->inst_token ||
		    hl_time_wall_ms() >= gh->inst_expires_ms - GITHUB_REFRESH_MARGIN_MS)
			ret = github_mint_installation_token(gh, err);
		if (ret == 0)
			hl_buf_appendf(auth, "Bearer %s", gh->inst_token);
		pthread_mutex_unlock(&gh->mu);
		if (ret < 0)
			return ret;
	} else if (gh->token) {
		hl_buf_appendf(auth, "Bearer %s", gh->token);
	}
	if (hl_buf_error(auth))
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	return 0;
}

int
hl_github_req_init(struct hl_github *gh, struct hl_fetch_req *req, struct hl_buf *url,
                   struct hl_buf *auth, const char *method, const char *path, struct hl_err *err)
{
	bool same_origin;
	const char *rel = path;
	int ret;

	memset(req, 0, sizeof(*req));
	if (hl_str_starts_with(path, "https://") || hl_str_starts_with(path, "http://")) {
		rel = strstr(path, "://") + 3;
		rel += strcspn(rel, "/?#");
		if (!*rel)
			rel = "/";
	}
	if ((ret = hl_url_check_path(rel, err)) < 0) {
		hl_err_wrap(err, "github %s", method ? method : "GET");
		return ret;
	}
	hl_buf_reset(url);
	if (hl_str_starts_with(path, "https://") || hl_str_starts_with(path, "http://")) {
		size_t on = strlen(gh->origin);

		hl_buf_append_str(url, path);
		same_origin = strncmp(path, gh->origin, on) == 0 &&
		              (path[on] == '/' || path[on] == '\0' || path[on] == '?');
	} else {
		hl_buf_append_str(url, gh->api_url);
		hl_buf_append_str(url, path);
		same_origin = true;
	}
	if (hl_buf_error(url))
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	hl_buf_reset(auth);
	if (same_origin) {
		ret = hl_github_auth(gh, auth, err);
		if (ret < 0)
			return ret;
	}
	github_req_defaults(gh, req);
	req->method = method;
	req->url = url->data;
	req->auth = auth->len ? auth->data : NULL;
	return 0;
}

static void
github_auth_release(struct hl_buf *auth)
{
	if (auth->len)
		explicit_bzero(auth->data, auth->len);
	hl_buf_release(auth);
}

/* One call; *out gets the JSON, link_out (may be NULL, 2048 bytes) the Link
 * header. */
static int
github_call_link(struct hl_github *gh, json_t **out, char *link_out, const char *method,
                 const char *path, const json_t *body, struct hl_err *err)
{
	struct hl_buf url = HL_BUF_INIT(0), auth = HL_BUF_INIT(0);
	struct hl_fetch_req req;
	struct hl_fetch_res res;
	char *text = NULL, what[300];
	int ret;

	hl_fetch_res_init(&res);
	ret = hl_github_req_init(gh, &req, &url, &auth, method, path, err);
	if (ret < 0)
		goto out;
	if (body && (ret = hl_fetch_req_set_json(&req, &text, body, err)) < 0)
		goto out;
	if (strcmp(method, "GET") != 0)
		req.max_retries = 0; /* never post a comment twice */
	hl_fetch_run(&req, &res, 1, 0, err);
	snprintf(what, sizeof(what), "github %s '%.240s'", method,
	         hl_str_starts_with(path, "http") ? path + strcspn(path + 8, "/") + 8 : path);
	ret = hl_fetch_check(&res, what, err);
	if (ret < 0)
		goto out;
	if (link_out)
		hl_strlcpy(link_out, res.link, 2048);
	if (out) {
		if (res.body.len == 0)
			*out = json_object();
		else if ((ret = hl_json_parse(out, res.body.data, res.body.len, err)) < 0)
			hl_err_wrap(err, "%s: answer", what);
	}
out:
	free(text);
	hl_buf_release(&url);
	github_auth_release(&auth);
	hl_fetch_res_release(&res);
	return ret;
}

int
hl_github_call(struct hl_github *gh, json_t **out, const char *method, const char *path,
               const json_t *body, struct hl_err *err)
{
	return github_call_link(gh, out, NULL, method, path, body, err);
}

int
hl_github_repo_path(struct hl_buf *p, const char *full_name, struct hl_err *err)
{
	const char *slash = full_name ? strchr(full_name, '/') : NULL;
	const char *repo = slash ? slash + 1 : NULL;
	char owner[256];
	size_t n;

	if (!slash || slash == full_name || !*repo || strchr(repo, '/'))
		return hl_err_set(err, HL_EINVAL, "repository '%.200s' is not owner/name",
		                  full_name ? full_name : "");
	n = (size_t)(slash - full_name);
	if (n >= sizeof(owner))
		return hl_err_set(err, HL_EINVAL, "repository owner of '%.200s' is too long",
		                  full_name);
	memcpy(owner, full_name, n);
	owner[n] = '\0';
	/* GitHub allows neither as a name; encoded they would still read as a
	 * dot-segment to a server that decodes before routing */
	if (strcmp(owner, ".") == 0 || strcmp(owner, "..") == 0 || strcmp(repo, ".") == 0 ||
	    strcmp(repo, "..") == 0)
		return hl_err_set(err, HL_EINVAL, "repository '%.200s' is not owner/name",
		                  full_name);
	hl_buf_append_str(p, "/repos/");
	hl_url_append_segment(p, owner);
	hl_buf_append_char(p, '/');
	hl_url_append_segment(p, repo);
	return hl_buf_error(p) ? hl_err_set(err, HL_ENOMEM, "out of memory") : 0;
}

int
hl_github_failed_jobs(struct hl_github *gh, json_t **out, const char *repo, int64_t run_id,
                      struct hl_err *err)
{
	struct hl_buf p = HL_BUF_INIT(0);
	json_t *v = NULL, *arr = NULL, *job;
	size_t i;
	int ret;

	ret = hl_github_repo_path(&p, repo, err);
	if (ret < 0)
		goto out;
	hl_buf_appendf(&p, "/actions/runs/%lld/jobs?filter=latest&per_page=100", (long long)run_id);
	ret = hl_github_call(gh, &v, "GET", p.data, NULL, err);
	if (ret < 0)
		goto out;
	arr = json_array();
	if (!arr) {
		ret = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	json_array_foreach(json_object_get(v, "jobs"), i, job)
	{
		const char *c = hl_json_str_or(job, "conclusion", "");

		if (strcmp(c, "failure") == 0 || strcmp(c, "timed_out") == 0)
			json_array_append(arr, job);
	}
	*out = arr;
out:
	json_decref(v);
	hl_buf_release(&p);
	return ret;
}

int
hl_github_job_log(struct hl_github *gh, struct hl_buf *out, bool *truncated_out, const char *repo,
                  int64_t job_id, struct hl_err *err)
{
	struct hl_buf p = HL_BUF_INIT(0), url = HL_BUF_INIT(0), auth = HL_BUF_INIT(0);
	struct hl_fetch_req req;
	struct hl_fetch_res res;
	int ret;

	hl_fetch_res_init(&res);
	ret = hl_github_repo_path(&p, repo, err);
	if (ret < 0)
		goto out;
	hl_buf_appendf(&p, "/actions/jobs/%lld/logs", (long long)job_id);
	ret = hl_github_req_init(gh, &req, &url, &auth, "GET", p.data, err);
	if (ret < 0)
		goto out;
	req.follow_redirects = true; /* the engine drops auth on the hop */
	req.keep_tail = true;
	req.max_body = out->max && out->max < gh->log_cap ? out->max : gh->log_cap;
	hl_fetch_run(&req, &res, 1, 0, err);
	ret = hl_fetch_check(&res, "github job log", err);
	if (ret < 0)
		goto out;
	if (truncated_out)
		*truncated_out = res.truncated;
	if (hl_buf_append(out, res.body.data, res.body.len) < 0)
		ret = hl_err_set(err, HL_ETOOBIG, "job log over the buffer cap");
out:
	hl_buf_release(&p);
	hl_buf_release(&url);
	github_auth_release(&auth);
	hl_fetch_res_release(&res);
	return ret;
}

int
hl_github_pr_for_branch(struct hl_github *gh, json_t **out, const char *repo, const char *branch,
                        struct hl_err *err)
{
	struct hl_buf p = HL_BUF_INIT(0), head = HL_BUF_INIT(0);
	json_t *v = NULL, *pr;
	int ret;

	ret = hl_github_repo_path(&p, repo, err);
	if (ret < 0)
		goto out;
	hl_buf_append(&head, repo, strcspn(repo, "/"));
	hl_buf_appendf(&head, ":%s", branch ? branch : "");
	hl_buf_append_str(&p, "/pulls?state=open&per_page=1&head=");
	hl_url_append_query_value(&p, head.data);
	if (hl_buf_error(&p)) {
		ret = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	ret = hl_github_call(gh, &v, "GET", p.data, NULL, err);
	if (ret < 0)
		goto out;
	pr = json_array_get(v, 0);
	if (!json_is_object(pr)) {
		ret = hl_err_set(err, HL_ENOTFOUND, "no open pull request for '%s'", head.data);
		goto out;
	}
	*out = json_incref(pr);
out:
	json_decref(v);
	hl_buf_release(&p);
	hl_buf_release(&head);
	return ret;
}

int
hl_github_pr_files(struct hl_github *gh, json_t **out, const char *repo, int64_t number,
                   size_t max_files, struct hl_err *err)
{
	struct hl_buf p = HL_BUF_INIT(0);
	json_t *arr = NULL;
	char *link = NULL, *next = NULL;
	int ret, pages = 0;

	if (max_files == 0 || max_files > GITHUB_MAX_FILES)
		max_files = GITHUB_MAX_FILES;
	link = malloc(2048);
	next = malloc(2048);
	arr = json_array();
	if (!link || !next || !arr) {
		ret = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	ret = hl_github_repo_path(&p, repo, err);
	if (ret < 0)
		goto out;
	hl_buf_appendf(&p, "/pulls/%lld/files?per_page=100", (long long)number);
	hl_strlcpy(next, p.data, 2048);
	/* bounded: at most 30 pages (3000 files, GitHub's own limit) */
	while (pages++ < 30 && json_array_size(arr) < max_files) {
		json_t *page = NULL, *it;
		size_t i;

		ret = github_call_link(gh, &page, link, "GET", next, NULL, err);
		if (ret < 0)
			goto out;
		json_array_foreach(page, i, it)
		{
			if (json_array_size(arr) >= max_files)
				break;
			json_array_append(arr, it);
		}
		json_decref(page);
		if (!hl_fetch_link_next(next, 2048, link))
			break;
	}
	*out = arr;
	arr = NULL;
out:
	json_decref(arr);
	free(link);
	free(next);
	hl_buf_release(&p);
	return ret;
}

int
hl_github_commit_files(struct hl_github *gh, json_t **out, const char *repo, const char *sha,
                       struct hl_err *err)
{
	struct hl_buf p = HL_BUF_INIT(0);
	json_t *v = NULL, *files;
	int ret;

	ret = hl_github_repo_path(&p, repo, err);
	if (ret < 0)
		goto out;
	hl_buf_append_str(&p, "/commits/");
	if (hl_url_append_segment(&p, sha) < 0) {
		ret = hl_err_set(err, HL_EINVAL, "commit '%.80s' is not a valid ref",
		                 sha ? sha : "");
		goto out;
	}
	ret = hl_github_call(gh, &v, "GET", p.data, NULL, err);
	if (ret < 0)
		goto out;
	files = json_object_get(v, "files");
	*out = json_is_array(files) ? json_incref(files) : json_array();
	if (!*out)
		ret = hl_err_set(err, HL_ENOMEM, "out of memory");
out:
	json_decref(v);
	hl_buf_release(&p);
	return ret;
}

int
hl_github_check_run(struct hl_github *gh, json_t **out, const char *repo, int64_t id,
                    struct hl_err *err)
{
	struct hl_buf p = HL_BUF_INIT(0);
	int ret;

	ret = hl_github_repo_path(&p, repo, err);
	if (ret == 0) {
		hl_buf_appendf(&p, "/check-runs/%lld", (long long)id);
		ret = hl_github_call(gh, out, "GET", p.data, NULL, err);
	}
	hl_buf_release(&p);
	return ret;
}

int
hl_github_issue_comment(struct hl_github *gh, json_t **out, const char *repo, int64_t number,
                        const char *body, struct hl_err *err)
{
	struct hl_buf p = HL_BUF_INIT(0);
	json_t *b = NULL;
	int ret;

	ret = hl_github_repo_path(&p, repo, err);
	if (ret < 0)
		goto out;
	hl_buf_appendf(&p, "/issues/%lld/comments", (long long)number);
	b = json_pack("{s:s}", "body", body ? body : "");
	if (!b) {
		ret = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	ret = hl_github_call(gh, out, "POST", p.data, b, err);
out:
	json_decref(b);
	hl_buf_release(&p);
	return ret;
}
