/*
 * github.c - GitHub REST calls over the fetch engine, with token or GitHub
 * App authentication.
 *
 * Invariants: the installation token cache is guarded by a mutex and is
 * refreshed 5 minutes before expires_at (read against the answer's Date,
 * at most an hour: a clock apart from GitHub's neither mints a token per
 * call nor keeps one past its life), and at once after a 401 (revoked; the
 * call that met it is made once more with the new token: a 401 was not
 * acted on); the Authorization header is only
 * attached to URLs on the API origin (scheme://host[:port] of api_url), and
 * the fetch engine, which follows every call's redirects (a renamed
 * repository's 301 or 307, a job log's 302), drops it on a hop that leaves
 * that origin, so job-log storage hosts and foreign pagination links never
 * see it.
 */
#include "github.h"

#include "base/clock.h"
#include "base/log.h"
#include "base/str.h"
#include "base/url.h"
#include "crypto/hmac.h"
#include "crypto/jwt.h"

#include "json/json.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define GITHUB_REFRESH_MARGIN_MS (5 * 60 * 1000)
/* GitHub's installation tokens last an hour: a longer life is not taken. */
#define GITHUB_TOKEN_LIFE_MAX_MS (60 * 60 * 1000)
#define GITHUB_MAX_FILES         3000
/* A call waiting for the token's budget to come back sleeps in steps of
 * this many ms (and at most its timeout in all). */
#define GITHUB_BUDGET_STEP_MS 100
/* A secondary rate limit that names no Retry-After holds every call this
 * long (GitHub: "wait for at least one minute"), doubled for each one that
 * follows without a success in between. */
#define GITHUB_SECONDARY_WAIT_MS (60 * 1000)
/* The shared budget (hl_github_share_budget) is read at most this often. */
#define GITHUB_SHARE_READ_MS 1000
/* No answer of GitHub has named its clock yet. */
#define GITHUB_CLOCK_UNKNOWN INT64_MIN

enum github_auth_mode {
	GITHUB_AUTH_INSTALLATION = 0, /* the token, or the App's installation token */
	GITHUB_AUTH_APP,              /* the App's own JWT (/app/... endpoints) */
};

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
	/* the token's budget is spent until then (wall clock, 0: it is not):
	 * an answer said X-RateLimit-Remaining 0 with a reset still ahead */
	int64_t budget_until_ms;
	/* that window's reset as the answer named it (not capped): an answer
	 * of the same window that was on its way meanwhile does not lift it */
	int64_t budget_reset_ms;
	/* a secondary rate limit asks for no call until then (wall clock) */
	int64_t pause_until_ms;
	int pause_streak; /* secondary limits without Retry-After since a success */
	/* where the budget is shared (no get: nowhere), under share_key, last
	 * read at share_read_ms (monotonic; 0: never) */
	struct hl_github_share share;
	char share_key[40];
	int64_t share_read_ms;
	/* GitHub's clock less ours in ms, from the last answer's Date
	 * (GITHUB_CLOCK_UNKNOWN: no answer yet) */
	_Atomic int64_t clock_offset_ms;
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
	atomic_init(&gh->clock_offset_ms, GITHUB_CLOCK_UNKNOWN);
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

/* Whether gh mints installation tokens (a GitHub App). */
static bool
github_is_app(const struct hl_github *gh)
{
	return gh->app_id && gh->app_key && gh->installation_id;
}

static void
github_req_defaults(struct hl_github *gh, struct hl_fetch_req *req)
{
	req->headers[0] = "Accept: application/vnd.github+json";
	req->headers[1] = "X-GitHub-Api-Version: 2022-11-28";
	req->timeout_ms = gh->timeout_ms;
	req->max_retries = -1;
	/* a renamed or transferred repository answers 301 (GET) or 307 (other
	 * methods) to /repositories/{id}/...: followed, the token kept within
	 * the API origin only, a POST sent again as a POST */
	req->follow_redirects = true;
	/* a secondary rate limit without Retry-After: "wait at least one
	 * minute", not a quick retry that prolongs it */
	req->rate_wait_unsaid_ms = 60 * 1000;
}

/* Keeps GitHub's clock as an answer of the API origin named it (Date,
 * whole seconds: GitHub's time is at or after it, so iat and exp drawn
 * from it are never later than GitHub's own). */
static void
github_note_clock(struct hl_github *gh, const struct hl_fetch_res *res)
{
	if (res->status <= 0 || res->date_s < 0 || res->off_origin)
		return;
	atomic_store(&gh->clock_offset_ms, res->date_s * 1000 - hl_time_wall_ms());
}

int64_t
hl_github_clock_offset_ms(struct hl_github *gh, bool *known)
{
	int64_t off = atomic_load(&gh->clock_offset_ms);

	if (known)
		*known = off != GITHUB_CLOCK_UNKNOWN;
	return off == GITHUB_CLOCK_UNKNOWN ? 0 : off;
}

int64_t
hl_github_now_ms(struct hl_github *gh)
{
	return hl_time_wall_ms() + hl_github_clock_offset_ms(gh, NULL);
}

/* A 401 refusing the App JWT for its iat or exp (a clock apart from
 * GitHub's: "'Expiration time' claim ('exp') is too far in the future",
 * "'Issued at' claim ('iat') must be an Integer representing a time in the
 * past"). */
static bool
github_jwt_time_refused(const struct hl_fetch_res *res)
{
	const char *b = res->body.data;

	return res->status == 401 && b &&
	       (strstr(b, "('exp')") || strstr(b, "('iat')") ||
	        hl_str_casestr(b, "expiration time") || hl_str_casestr(b, "issued at"));
}

/* Trades an App JWT for an installation token; called with gh->mu held.
 * The JWT's iat and exp are drawn from GitHub's clock as its last answer
 * named it; a 401 naming them is asked once more with the clock of that
 * answer's Date. */
static int
github_mint_installation_token(struct hl_github *gh, struct hl_err *err)
{
	struct hl_buf url = HL_BUF_INIT(0), auth = HL_BUF_INIT(0);
	struct hl_fetch_req req;
	struct hl_fetch_res res;
	char *jwt = NULL;
	json_t *v = NULL;
	const char *tok, *exp;
	int64_t expires, now;
	int ret, tries;

	hl_fetch_res_init(&res);
	memset(&req, 0, sizeof(req));
	for (tries = 0;; tries++) {
		ret = hl_jwt_github_app(&jwt, gh->app_id, gh->app_key, hl_github_now_ms(gh) / 1000,
		                        err);
		if (ret < 0)
			goto out;
		hl_buf_reset(&url);
		hl_buf_reset(&auth);
		hl_buf_appendf(&url, "%s/app/installations/", gh->api_url);
		hl_url_append_segment(&url, gh->installation_id);
		hl_buf_append_str(&url, "/access_tokens");
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
		github_note_clock(gh, &res);
		if (tries > 0 || res.date_s < 0 || !github_jwt_time_refused(&res))
			break;
		hl_log(HL_LOG_WARN,
		       "GitHub refused the App JWT's iat/exp (its clock is %lld ms from ours): "
		       "asked again on GitHub's clock",
		       (long long)hl_github_clock_offset_ms(gh, NULL));
		github_wipe_free(jwt);
		jwt = NULL;
		explicit_bzero(auth.data, auth.len);
		hl_fetch_res_release(&res);
		hl_fetch_res_init(&res);
	}
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
	now = hl_time_wall_ms();
	expires = exp ? hl_time_parse_rfc3339(exp) : -1;
	if (expires < 0)
		expires = now + 55 * 60 * 1000;
	else if (res.date_s >= 0)
		/* its life by GitHub's clock, from now by ours */
		expires = now + (expires - res.date_s * 1000);
	if (expires > now + GITHUB_TOKEN_LIFE_MAX_MS)
		expires = now + GITHUB_TOKEN_LIFE_MAX_MS;
	/* the new token takes the expired one's place among the secrets the
	 * log redacts: one an hour would fill the table in under three days */
	hl_log_replace_secret(gh->inst_token, tok);
	github_wipe_free(gh->inst_token);
	gh->inst_token = strdup(tok);
	if (!gh->inst_token) {
		ret = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
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
	if (github_is_app(gh)) {
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

/* The App's own JWT as an Authorization value (for /app/... endpoints). */
static int
github_app_auth(struct hl_github *gh, struct hl_buf *auth, struct hl_err *err)
{
	char *jwt = NULL;
	int ret;

	hl_buf_reset(auth);
	if (!gh->app_id || !gh->app_key)
		return hl_err_set(err, HL_EAUTH,
		                  "this call needs GitHub App credentials (GITHUB_APP_ID and "
		                  "GITHUB_APP_PRIVATE_KEY)");
	ret = hl_jwt_github_app(&jwt, gh->app_id, gh->app_key, hl_github_now_ms(gh) / 1000, err);
	if (ret < 0)
		return ret;
	hl_buf_appendf(auth, "Bearer %s", jwt);
	github_wipe_free(jwt);
	return hl_buf_error(auth) ? hl_err_set(err, HL_ENOMEM, "out of memory") : 0;
}

/* Whether an absolute URL is on the API origin (a path is). */
static bool
github_same_origin(const struct hl_github *gh, const char *url)
{
	size_t on = strlen(gh->origin);

	if (!hl_str_starts_with(url, "https://") && !hl_str_starts_with(url, "http://"))
		return true;
	return strncmp(url, gh->origin, on) == 0 &&
	       (url[on] == '/' || url[on] == '\0' || url[on] == '?');
}

static int
github_req_init_mode(struct hl_github *gh, struct hl_fetch_req *req, struct hl_buf *url,
                     struct hl_buf *auth, const char *method, const char *path,
                     enum github_auth_mode mode, struct hl_err *err)
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
		hl_buf_append_str(url, path);
		same_origin = github_same_origin(gh, path);
	} else {
		hl_buf_append_str(url, gh->api_url);
		hl_buf_append_str(url, path);
		same_origin = true;
	}
	if (hl_buf_error(url))
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	if (same_origin && mode == GITHUB_AUTH_INSTALLATION) {
		int64_t wait = hl_github_budget_wait_ms(gh);

		if (wait > 0)
			return hl_err_set(err, HL_EUPSTREAM,
			                  "github %s: rate limited (the token's budget is spent, "
			                  "or a secondary rate limit asked to wait; it lifts in "
			                  "%lld ms)",
			                  method ? method : "GET", (long long)wait);
	}
	hl_buf_reset(auth);
	if (same_origin) {
		ret = mode == GITHUB_AUTH_APP ? github_app_auth(gh, auth, err)
		                              : hl_github_auth(gh, auth, err);
		if (ret < 0)
			return ret;
	}
	github_req_defaults(gh, req);
	req->method = method;
	req->url = url->data;
	req->auth = auth->len ? auth->data : NULL;
	return 0;
}

static void github_pause(struct hl_github *gh, int64_t until_ms);

/* How long a secondary rate limit asks every call to wait, in ms (0: res
 * is none): its Retry-After, else a minute as GitHub's documentation asks
 * (a 429, or a 403 whose message names it; a 403 that does not is a
 * permission), doubled for each such limit since the last success. A
 * spent budget (Remaining 0) is the primary limit. */
static int64_t
github_secondary_wait_ms(struct hl_github *gh, const struct hl_fetch_res *res)
{
	int64_t wait = GITHUB_SECONDARY_WAIT_MS;
	int i;

	if (res->status >= 200 && res->status < 300) {
		pthread_mutex_lock(&gh->mu);
		gh->pause_streak = 0;
		pthread_mutex_unlock(&gh->mu);
		return 0;
	}
	if ((res->status != 403 && res->status != 429) || res->ratelimit_remaining == 0)
		return 0;
	if (res->retry_after_s >= 0)
		return res->retry_after_s * 1000;
	if (res->status != 429 &&
	    !(res->body.data && hl_str_casestr(res->body.data, "secondary rate limit")))
		return 0;
	pthread_mutex_lock(&gh->mu);
	for (i = 0; i < gh->pause_streak && wait < HL_GITHUB_BUDGET_HOLD_MAX_MS; i++)
		wait *= 2;
	if (gh->pause_streak < 16)
		gh->pause_streak++;
	pthread_mutex_unlock(&gh->mu);
	return wait;
}

/* A 401 of the API origin: the installation token was revoked (or the
 * App's installation changed); the next call mints a new one. True when a
 * cached token was dropped. */
static bool
github_token_rejected(struct hl_github *gh, const struct hl_fetch_res *res)
{
	bool dropped = false;

	if (res->status != 401 || !github_is_app(gh))
		return false;
	pthread_mutex_lock(&gh->mu);
	if (gh->inst_token && gh->inst_expires_ms) {
		gh->inst_expires_ms = 0;
		dropped = true;
	}
	pthread_mutex_unlock(&gh->mu);
	if (dropped)
		hl_log_kv(HL_LOG_WARN,
		          "GitHub refused the App's installation token (401): a new one is minted",
		          NULL);
	return dropped;
}

void
hl_github_note_budget(struct hl_github *gh, const struct hl_fetch_res *res)
{
	int64_t now = hl_time_wall_ms(), until, pause;

	/* a storage host's answer (a job log's redirect) says nothing of
	 * GitHub's budget, its 429 neither */
	if (res->off_origin)
		return;
	github_note_clock(gh, res);
	pause = github_secondary_wait_ms(gh, res);
	(void)github_token_rejected(gh, res);

	if (pause > 0) {
		/* not lifted by an answer of a later window: it is not the
		 * window's; at most the hold's bound */
		until = now + (pause < HL_GITHUB_BUDGET_HOLD_MAX_MS ? pause
		                                                    : HL_GITHUB_BUDGET_HOLD_MAX_MS);
		github_pause(gh, until);
		return;
	}
	if (res->status <= 0 || res->ratelimit_remaining < 0)
		return; /* no answer, or one without GitHub's headers */
	if (res->ratelimit_remaining > 0) {
		/* a new window: its reset is later than the spent one's */
		pthread_mutex_lock(&gh->mu);
		if (res->ratelimit_reset < 0 ||
		    res->ratelimit_reset * 1000 + 1000 > gh->budget_reset_ms)
			gh->budget_until_ms = 0;
		pthread_mutex_unlock(&gh->mu);
	} else if (res->ratelimit_reset >= 0) {
		/* the reset second has to have passed; one in the past is stale
		 * (a clock apart from GitHub's) */
		until = res->ratelimit_reset * 1000 + 1000;
		if (until > now)
			hl_github_hold_budget(gh, until);
	}
}

/* Holds the budget until until_ms (the reset as named; the hold itself at
 * most HL_GITHUB_BUDGET_HOLD_MAX_MS from now); called with gh->mu held. */
static void
github_hold_locked(struct hl_github *gh, int64_t until_ms, int64_t now)
{
	gh->budget_reset_ms = until_ms;
	/* a reset further away is not believed */
	gh->budget_until_ms = until_ms - now > HL_GITHUB_BUDGET_HOLD_MAX_MS
	                              ? now + HL_GITHUB_BUDGET_HOLD_MAX_MS
	                              : until_ms;
}

void
hl_github_hold_budget(struct hl_github *gh, int64_t until_ms)
{
	int64_t now = hl_time_wall_ms();
	struct hl_github_share share;
	char key[sizeof(gh->share_key)];

	if (until_ms <= now)
		return;
	pthread_mutex_lock(&gh->mu);
	github_hold_locked(gh, until_ms, now);
	share = gh->share;
	memcpy(key, gh->share_key, sizeof(key));
	pthread_mutex_unlock(&gh->mu);
	if (share.put)
		share.put(share.arg, key, until_ms);
}

/* Holds every call until until_ms for a secondary rate limit, here and
 * where the budget is shared. */
static void
github_pause(struct hl_github *gh, int64_t until_ms)
{
	struct hl_github_share share;
	char key[sizeof(gh->share_key)];

	pthread_mutex_lock(&gh->mu);
	if (until_ms > gh->pause_until_ms)
		gh->pause_until_ms = until_ms;
	share = gh->share;
	memcpy(key, gh->share_key, sizeof(key));
	pthread_mutex_unlock(&gh->mu);
	if (share.put)
		share.put(share.arg, key, until_ms);
}

void
hl_github_share_budget(struct hl_github *gh, const struct hl_github_share *share)
{
	char hex[HL_SHA256_HEX_LEN + 1] = "", app[256];

	/* the budget is the token's (or the App installation's): named by a
	 * fingerprint, so a new token does not inherit the old one's hold */
	if (gh->token) {
		if (hl_sha256_hex(hex, gh->token, strlen(gh->token)) < 0)
			return;
	} else {
		snprintf(app, sizeof(app), "app:%s:%s", gh->app_id ? gh->app_id : "",
		         gh->installation_id ? gh->installation_id : "");
		if (hl_sha256_hex(hex, app, strlen(app)) < 0)
			return;
	}
	pthread_mutex_lock(&gh->mu);
	memset(&gh->share, 0, sizeof(gh->share));
	if (share && share->get && share->put)
		gh->share = *share;
	snprintf(gh->share_key, sizeof(gh->share_key), "github:budget:%.16s", hex);
	gh->share_read_ms = 0;
	pthread_mutex_unlock(&gh->mu);
}

/* Takes in the shared hold, read at most every GITHUB_SHARE_READ_MS: when
 * its reset is later than any this client knows (a window lifted here by
 * a later answer is not taken back). */
static void
github_read_share(struct hl_github *gh)
{
	int64_t mono = hl_time_mono_ms(), until, now;
	struct hl_github_share share;
	char key[sizeof(gh->share_key)];

	pthread_mutex_lock(&gh->mu);
	if (!gh->share.get ||
	    (gh->share_read_ms != 0 && mono - gh->share_read_ms < GITHUB_SHARE_READ_MS)) {
		pthread_mutex_unlock(&gh->mu);
		return;
	}
	gh->share_read_ms = mono ? mono : 1;
	share = gh->share;
	memcpy(key, gh->share_key, sizeof(key));
	pthread_mutex_unlock(&gh->mu);
	until = share.get(share.arg, key);
	now = hl_time_wall_ms();
	if (until <= now)
		return;
	pthread_mutex_lock(&gh->mu);
	if (until > gh->budget_reset_ms)
		github_hold_locked(gh, until, now);
	pthread_mutex_unlock(&gh->mu);
}

int64_t
hl_github_budget_wait_ms(struct hl_github *gh)
{
	int64_t now, until;

	github_read_share(gh);
	now = hl_time_wall_ms();
	pthread_mutex_lock(&gh->mu);
	until = gh->budget_until_ms > gh->pause_until_ms ? gh->budget_until_ms : gh->pause_until_ms;
	pthread_mutex_unlock(&gh->mu);
	return until > now ? until - now : 0;
}

/* Waits for the token's budget when it comes back within the call's
 * timeout (a call made now would be refused); past that the request is
 * refused without being sent (hl_github_req_init). */
static void
github_budget_wait(struct hl_github *gh)
{
	int64_t wait = hl_github_budget_wait_ms(gh);
	int64_t end = hl_time_mono_ms() + wait;
	char ms[24];

	if (wait <= 0 || wait > gh->timeout_ms)
		return;
	snprintf(ms, sizeof(ms), "%lld", (long long)wait);
	hl_log_kv(HL_LOG_INFO, "github: waiting for the token's rate-limit reset", "wait_ms", ms,
	          NULL);
	while (hl_time_mono_ms() < end) {
		struct timespec ts = { 0, GITHUB_BUDGET_STEP_MS * 1000000L };

		nanosleep(&ts, NULL);
	}
}

int
hl_github_req_init(struct hl_github *gh, struct hl_fetch_req *req, struct hl_buf *url,
                   struct hl_buf *auth, const char *method, const char *path, struct hl_err *err)
{
	return github_req_init_mode(gh, req, url, auth, method, path, GITHUB_AUTH_INSTALLATION,
	                            err);
}

static void
github_auth_release(struct hl_buf *auth)
{
	if (auth->len)
		explicit_bzero(auth->data, auth->len);
	hl_buf_release(auth);
}

/* Maps a finished call to an error with GitHub's own message (0 for 2xx). */
static int
github_check(const struct hl_fetch_res *res, const char *what, struct hl_err *err)
{
	json_t *v = NULL;
	const char *msg = NULL, *detail = NULL;
	int code, ret;

	if (res->err.code || (res->status >= 200 && res->status < 300))
		return hl_fetch_check(res, what, err);
	if (hl_json_parse(&v, res->body.data, res->body.len, NULL) == 0) {
		msg = hl_json_str(v, "message");
		detail = hl_json_str(v, "errors[0].message");
		if (!detail)
			detail = hl_json_str(v, "errors[0].code");
	}
	if (!msg) {
		json_decref(v);
		return hl_fetch_check(res, what, err);
	}
	switch (res->status) {
	case 401:
		code = HL_EAUTH;
		break;
	case 403:
		/* a secondary rate limit without Retry-After says so in its message */
		code = hl_str_casestr(msg, "rate limit") ? HL_EUPSTREAM : HL_EAUTH;
		break;
	case 404:
	case 410:
		code = HL_ENOTFOUND;
		break;
	case 409:
		code = HL_ECONFLICT;
		break;
	case 400:
	case 422:
		code = HL_EINVAL;
		break;
	default:
		code = HL_EUPSTREAM;
	}
	ret = hl_err_set(err, code, "%s: status %ld: %.120s%s%.60s%s", what, res->status, msg,
	                 detail ? " (" : "", detail ? detail : "", detail ? ")" : "");
	json_decref(v);
	return ret;
}

/* What a call brought besides its JSON. */
struct github_answer {
	long status;
	char link[2048];
};

/*
 * One call: *out (may be NULL) gets the parsed 2xx answer, ans (may be
 * NULL) the status and Link header. A method other than GET is never
 * repeated after a 5xx or a lost connection (a comment must not be posted
 * twice); rate limits are waited out when they lift in time.
 */
static int
github_call_ex(struct hl_github *gh, json_t **out, struct github_answer *ans, const char *method,
               const char *path, const json_t *body, enum github_auth_mode mode, struct hl_err *err)
{
	struct hl_buf url = HL_BUF_INIT(0), auth = HL_BUF_INIT(0);
	struct hl_fetch_req req;
	struct hl_fetch_res res;
	char *text = NULL, what[300];
	int ret, tries;

	hl_fetch_res_init(&res);
	for (tries = 0;; tries++) {
		if (mode == GITHUB_AUTH_INSTALLATION)
			github_budget_wait(gh);
		ret = github_req_init_mode(gh, &req, &url, &auth, method, path, mode, err);
		if (ret < 0)
			goto out;
		free(text);
		text = NULL;
		if (body && (ret = hl_fetch_req_set_json(&req, &text, body, err)) < 0)
			goto out;
		if (strcmp(method, "GET") != 0)
			req.max_retries = 0; /* never post a comment twice */
		hl_fetch_run(&req, &res, 1, 0, err);
		if (mode == GITHUB_AUTH_INSTALLATION)
			hl_github_note_budget(gh, &res);
		else if (github_same_origin(gh, url.data))
			github_note_clock(gh, &res);
		/* a revoked installation token: once more with a new one (a 401
		 * was not acted on, so a POST is not made twice) */
		if (mode != GITHUB_AUTH_INSTALLATION || res.status != 401 || !github_is_app(gh) ||
		    tries > 0 || !github_same_origin(gh, url.data) || res.off_origin)
			break;
		hl_fetch_res_release(&res);
		hl_fetch_res_init(&res);
	}
	if (ans) {
		ans->status = res.status;
		hl_strlcpy(ans->link, res.link, sizeof(ans->link));
	}
	snprintf(what, sizeof(what), "github %s '%.240s'", method,
	         hl_str_starts_with(path, "http") ? path + strcspn(path + 8, "/") + 8 : path);
	ret = github_check(&res, what, err);
	/* nothing reached GitHub: an upstream failure to try again, never a
	 * request that may have been taken */
	if (ret == -HL_EIO && res.unsent) {
		if (err)
			err->code = HL_EUPSTREAM;
		ret = -HL_EUPSTREAM;
	}
	if (ret < 0)
		goto out;
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

/* One call; *out gets the JSON, link_out (may be NULL, 2048 bytes) the Link
 * header. */
static int
github_call_link(struct hl_github *gh, json_t **out, char *link_out, const char *method,
                 const char *path, const json_t *body, struct hl_err *err)
{
	struct github_answer ans;
	int ret = github_call_ex(gh, out, &ans, method, path, body, GITHUB_AUTH_INSTALLATION, err);

	if (ret == 0 && link_out)
		hl_strlcpy(link_out, ans.link, 2048);
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
	github_budget_wait(gh);
	ret = hl_github_req_init(gh, &req, &url, &auth, "GET", p.data, err);
	if (ret < 0)
		goto out;
	req.keep_tail = true;
	req.max_body = out->max && out->max < gh->log_cap ? out->max : gh->log_cap;
	hl_fetch_run(&req, &res, 1, 0, err);
	hl_github_note_budget(gh, &res); /* (not a storage host's answer) */
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
hl_github_pull_has_commit(struct hl_github *gh, bool *has, const char *repo, int64_t number,
                          const char *sha, struct hl_err *err)
{
	struct hl_buf p = HL_BUF_INIT(0);
	char *link = NULL, *next = NULL;
	int ret, pages = 0;

	*has = false;
	link = malloc(HL_GITHUB_LINK_MAX);
	next = malloc(HL_GITHUB_LINK_MAX);
	if (!link || !next) {
		ret = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	if ((ret = hl_github_repo_path(&p, repo, err)) < 0)
		goto out;
	hl_buf_appendf(&p, "/pulls/%lld/commits?per_page=100", (long long)number);
	hl_strlcpy(next, p.data, HL_GITHUB_LINK_MAX);
	/* bounded: GitHub lists at most 250 commits of a PR, 3 pages */
	while (!*has && pages++ < 3) {
		json_t *page = NULL, *it;
		size_t i;

		if ((ret = github_call_link(gh, &page, link, "GET", next, NULL, err)) < 0)
			goto out;
		json_array_foreach(page, i, it)
		{
			const char *c = json_string_value(json_object_get(it, "sha"));

			if (c && sha && strcmp(c, sha) == 0)
				*has = true;
		}
		json_decref(page);
		if (!hl_fetch_link_next(next, HL_GITHUB_LINK_MAX, link))
			break;
	}
out:
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

/* GET /repos/{repo}{kind}{id}: one object of the repository (kind is
 * "/check-runs/", "/actions/runs/", "/pulls/"). */
static int
github_get_object(struct hl_github *gh, json_t **out, const char *repo, const char *kind,
                  int64_t id, struct hl_err *err)
{
	struct hl_buf p = HL_BUF_INIT(0);
	int ret;

	ret = hl_github_repo_path(&p, repo, err);
	if (ret == 0) {
		hl_buf_appendf(&p, "%s%lld", kind, (long long)id);
		ret = hl_buf_error(&p) ? hl_err_set(err, HL_ENOMEM, "out of memory")
		                       : hl_github_call(gh, out, "GET", p.data, NULL, err);
	}
	hl_buf_release(&p);
	return ret;
}

int
hl_github_check_run(struct hl_github *gh, json_t **out, const char *repo, int64_t id,
                    struct hl_err *err)
{
	return github_get_object(gh, out, repo, "/check-runs/", id, err);
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

/* ---- the remediation loop ---- */

int
hl_github_add_reaction(struct hl_github *gh, bool *created_out, const char *repo,
                       enum hl_github_comment_kind kind, int64_t comment_id, const char *content,
                       struct hl_err *err)
{
	static const char *const valid[] = { "+1",    "-1",     "laugh",  "confused",
		                             "heart", "hooray", "rocket", "eyes" };
	struct hl_buf p = HL_BUF_INIT(0);
	struct github_answer ans;
	json_t *b = NULL;
	size_t i;
	int ret;

	for (i = 0; i < sizeof(valid) / sizeof(valid[0]); i++)
		if (content && strcmp(content, valid[i]) == 0)
			break;
	if (i == sizeof(valid) / sizeof(valid[0]))
		return hl_err_set(err, HL_EINVAL, "'%.40s' is not a reaction GitHub knows",
		                  content ? content : "");
	ret = hl_github_repo_path(&p, repo, err);
	if (ret < 0)
		goto out;
	hl_buf_appendf(&p, "/%s/comments/%lld/reactions",
	               kind == HL_GITHUB_REVIEW_COMMENT ? "pulls" : "issues",
	               (long long)comment_id);
	b = json_pack("{s:s}", "content", content);
	if (!b || hl_buf_error(&p)) {
		ret = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	ret = github_call_ex(gh, NULL, &ans, "POST", p.data, b, GITHUB_AUTH_INSTALLATION, err);
	if (ret == 0 && created_out)
		*created_out = ans.status == 201;
out:
	json_decref(b);
	hl_buf_release(&p);
	return ret;
}

int
hl_github_rerun_failed_jobs(struct hl_github *gh, const char *repo, int64_t run_id,
                            struct hl_err *err)
{
	struct hl_buf p = HL_BUF_INIT(0);
	struct github_answer ans;
	struct hl_err e = HL_ERR_INIT;
	int ret;

	ret = hl_github_repo_path(&p, repo, err);
	if (ret < 0)
		goto out;
	hl_buf_appendf(&p, "/actions/runs/%lld/rerun-failed-jobs", (long long)run_id);
	ret = github_call_ex(gh, NULL, &ans, "POST", p.data, NULL, GITHUB_AUTH_INSTALLATION, &e);
	/* GitHub answers 403 for a run that cannot be re-run (too old, still
	 * running, re-run limit, workflow disabled) and for a token without
	 * the actions:write permission; only the first is "unsupported", and
	 * of it a run still going (its other jobs run on) only for now */
	if (ret == -HL_EAUTH && ans.status == 403 && hl_str_casestr(e.msg, "already running")) {
		hl_err_wrap(&e, "run %lld of '%s' is still running", (long long)run_id, repo);
		e.code = HL_EUPSTREAM;
		ret = -HL_EUPSTREAM;
	} else if (ret == -HL_EAUTH && ans.status == 403 &&
	           !hl_str_casestr(e.msg, "not accessible") &&
	           !hl_str_casestr(e.msg, "permission") && !hl_str_casestr(e.msg, "admin rights")) {
		hl_err_wrap(&e, "run %lld of '%s' cannot be re-run", (long long)run_id, repo);
		e.code = HL_EUNSUPPORTED;
		ret = -HL_EUNSUPPORTED;
	}
	if (ret < 0 && err)
		*err = e;
out:
	hl_buf_release(&p);
	return ret;
}

/* Follows Link rel="next" from path, appending each page's array (the answer
 * itself, or its member key) to arr until max items or max_pages pages. */
static int
github_collect(struct hl_github *gh, json_t *arr, const char *path, const char *key, size_t max,
               int max_pages, enum github_auth_mode mode, struct hl_err *err)
{
	struct github_answer *ans = malloc(sizeof(*ans));
	char *next = malloc(2048);
	int ret = 0, pages = 0;

	if (!ans || !next) {
		ret = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	hl_strlcpy(next, path, 2048);
	while (pages++ < max_pages && json_array_size(arr) < max) {
		json_t *page = NULL, *items, *it;
		size_t i;

		ret = github_call_ex(gh, &page, ans, "GET", next, NULL, mode, err);
		if (ret < 0)
			goto out;
		items = key ? json_object_get(page, key) : page;
		json_array_foreach(items, i, it)
		{
			if (json_array_size(arr) >= max)
				break;
			json_array_append(arr, it);
		}
		json_decref(page);
		if (!hl_fetch_link_next(next, 2048, ans->link))
			break;
	}
out:
	free(ans);
	free(next);
	return ret;
}

int
hl_github_workflow_runs(struct hl_github *gh, json_t **out, const char *repo,
                        const struct hl_github_runs_query *q, struct hl_err *err)
{
	struct hl_buf p = HL_BUF_INIT(0);
	size_t max = q && q->max_runs ? q->max_runs : 100;
	json_t *arr = NULL;
	int ret;

	if (max > 1000)
		max = 1000; /* GitHub's own cap for filtered lists */
	ret = hl_github_repo_path(&p, repo, err);
	if (ret < 0)
		goto out;
	if (q && q->workflow && *q->workflow) {
		hl_buf_append_str(&p, "/actions/workflows/");
		hl_url_append_segment(&p, q->workflow);
		hl_buf_append_str(&p, "/runs");
	} else {
		hl_buf_append_str(&p, "/actions/runs");
	}
	hl_buf_appendf(&p, "?per_page=%zu", max < 100 ? max : (size_t)100);
	if (q) {
		const char *const kv[] = {
			"branch",  q->branch, "head_sha", q->head_sha, "status",
			q->status, "event",   q->event,   "created",   q->created
		};
		size_t i;

		for (i = 0; i < sizeof(kv) / sizeof(kv[0]); i += 2) {
			if (!kv[i + 1] || !*kv[i + 1])
				continue;
			hl_buf_appendf(&p, "&%s=", kv[i]);
			hl_url_append_query_value(&p, kv[i + 1]);
		}
		if (q->check_suite_id > 0)
			hl_buf_appendf(&p, "&check_suite_id=%lld", (long long)q->check_suite_id);
	}
	arr = json_array();
	if (!arr || hl_buf_error(&p)) {
		ret = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	ret = github_collect(gh, arr, p.data, "workflow_runs", max, 10, GITHUB_AUTH_INSTALLATION,
	                     err);
	if (ret == 0) {
		*out = arr;
		arr = NULL;
	}
out:
	json_decref(arr);
	hl_buf_release(&p);
	return ret;
}

int
hl_github_run_jobs(struct hl_github *gh, json_t **out, const char *repo, int64_t run_id,
                   struct hl_err *err)
{
	struct hl_buf p = HL_BUF_INIT(0);
	json_t *arr = NULL;
	int ret;

	ret = hl_github_repo_path(&p, repo, err);
	if (ret < 0)
		goto out;
	hl_buf_appendf(&p, "/actions/runs/%lld/jobs?filter=latest&per_page=100", (long long)run_id);
	arr = json_array();
	if (!arr || hl_buf_error(&p)) {
		ret = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	/* a run has at most 256 jobs per matrix and rarely more than a few
	 * hundred: 10 pages of 100 */
	ret = github_collect(gh, arr, p.data, "jobs", 1000, 10, GITHUB_AUTH_INSTALLATION, err);
	if (ret == 0) {
		*out = arr;
		arr = NULL;
	}
out:
	json_decref(arr);
	hl_buf_release(&p);
	return ret;
}

const char *
hl_github_verdict_name(enum hl_github_verdict v)
{
	switch (v) {
	case HL_GITHUB_VERDICT_PASSED:
		return "passed";
	case HL_GITHUB_VERDICT_FAILED:
		return "failed";
	case HL_GITHUB_VERDICT_MISSING:
		return "missing";
	case HL_GITHUB_VERDICT_NONE:
		break;
	}
	return "none";
}

/* Fills v from run and its job (NULL: the run as a whole) when their
 * conclusion decides: a skipped, neutral or cancelled one (or none yet)
 * proves nothing, the question passes to an older run. */
static bool
github_verdict_of(struct hl_github_job_verdict *v, const json_t *run, const json_t *job)
{
	const json_t *of = job ? job : run;
	const char *c = hl_json_str_or(of, "conclusion", "");

	if (strcmp(c, "skipped") == 0 || strcmp(c, "neutral") == 0 || strcmp(c, "cancelled") == 0 ||
	    !*c)
		return false;
	v->verdict =
	        strcmp(c, "success") == 0 ? HL_GITHUB_VERDICT_PASSED : HL_GITHUB_VERDICT_FAILED;
	v->run_id = hl_json_int(run, "id", 0);
	v->job_id = job ? hl_json_int(job, "id", 0) : 0;
	hl_strlcpy(v->head_sha, hl_json_str_or(run, "head_sha", ""), sizeof(v->head_sha));
	hl_strlcpy(v->conclusion, c, sizeof(v->conclusion));
	hl_strlcpy(v->completed_at, hl_json_str_or(of, job ? "completed_at" : "updated_at", ""),
	           sizeof(v->completed_at));
	return true;
}

int
hl_github_job_verdict(struct hl_github *gh, struct hl_github_job_verdict *out, const char *repo,
                      const char *workflow, const char *branch, const char *job_name,
                      int64_t since_ms, struct hl_err *err)
{
	struct hl_github_runs_query q;
	struct hl_github_job_verdict v;
	char created[64];
	json_t *runs = NULL, *run;
	size_t i;
	int ret;

	if (!workflow || !*workflow || !branch || !*branch || (job_name && !*job_name))
		return hl_err_set(err, HL_EINVAL,
		                  "a job verdict needs a workflow, a branch and a job");
	memset(&v, 0, sizeof(v));
	memset(&q, 0, sizeof(q));
	q.workflow = workflow;
	q.branch = branch;
	q.status = "completed";
	q.max_runs = 20;
	if (since_ms > 0) {
		/* GitHub's search syntax takes whole seconds
		 * (YYYY-MM-DDTHH:MM:SSZ): rounded down, no run is missed */
		time_t t = (time_t)(since_ms / 1000);
		struct tm tm;
		char ts[40];

		gmtime_r(&t, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
		snprintf(created, sizeof(created), ">=%s", ts);
		q.created = created;
	}
	ret = hl_github_workflow_runs(gh, &runs, repo, &q, err);
	if (ret < 0)
		return ret;
	v.verdict = json_array_size(runs) ? HL_GITHUB_VERDICT_MISSING : HL_GITHUB_VERDICT_NONE;
	/* newest first: the newest run where the job ran decides */
	json_array_foreach(runs, i, run)
	{
		json_t *jobs = NULL, *job;
		int64_t created_ms;
		size_t j;

		created_ms = hl_time_parse_rfc3339(hl_json_str_or(run, "created_at", ""));
		if (since_ms > 0 && created_ms >= 0 && created_ms < since_ms)
			continue; /* the server's filter is by second; be exact */
		/* a fork's pull request run on a branch of the same name */
		if (hl_github_run_is_fork(run, repo))
			continue;
		/* the run as a whole: its own conclusion */
		if (!job_name) {
			if (github_verdict_of(&v, run, NULL))
				break;
			continue;
		}
		ret = hl_github_run_jobs(gh, &jobs, repo, hl_json_int(run, "id", 0), err);
		if (ret < 0)
			goto out;
		json_array_foreach(jobs, j, job)
		{
			if (strcmp(hl_json_str_or(job, "name", ""), job_name) == 0 &&
			    github_verdict_of(&v, run, job))
				break;
		}
		json_decref(jobs);
		if (v.verdict == HL_GITHUB_VERDICT_PASSED || v.verdict == HL_GITHUB_VERDICT_FAILED)
			break;
	}
	*out = v;
out:
	json_decref(runs);
	return ret;
}

/* A ref for the compare endpoint: not empty, no "..", which git refuses in a
 * ref name and which would split base...head ambiguously. */
static bool
github_ref_ok(const char *ref)
{
	return ref && *ref && !strstr(ref, "..");
}

int
hl_github_compare(struct hl_github *gh, json_t **out, const char *repo, const char *base,
                  const char *head, size_t max_commits, struct hl_err *err)
{
	struct hl_buf p = HL_BUF_INIT(0);
	json_t *v = NULL, *res = NULL, *commits, *list = NULL, *c;
	size_t n, i, first;
	int ret;

	if (!github_ref_ok(base) || !github_ref_ok(head))
		return hl_err_set(err, HL_EINVAL, "compare '%.80s...%.80s': not two refs",
		                  base ? base : "", head ? head : "");
	if (max_commits == 0)
		max_commits = 50;
	ret = hl_github_repo_path(&p, repo, err);
	if (ret < 0)
		goto out;
	hl_buf_append_str(&p, "/compare/");
	hl_url_append_segment(&p, base);
	hl_buf_append_str(&p, "...");
	hl_url_append_segment(&p, head);
	if (hl_buf_error(&p)) {
		ret = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	ret = hl_github_call(gh, &v, "GET", p.data, NULL, err);
	if (ret < 0)
		goto out;
	commits = json_object_get(v, "commits");
	n = json_array_size(commits);
	first = n > max_commits ? n - max_commits : 0; /* oldest first: keep the newest */
	list = json_array();
	res = json_pack("{s:s, s:I, s:I, s:I, s:b}", "status", hl_json_str_or(v, "status", ""),
	                "ahead_by", (json_int_t)hl_json_int(v, "ahead_by", 0), "behind_by",
	                (json_int_t)hl_json_int(v, "behind_by", 0), "total_commits",
	                (json_int_t)hl_json_int(v, "total_commits", (int64_t)n), "truncated",
	                first > 0 || (size_t)hl_json_int(v, "total_commits", (int64_t)n) > n);
	if (!list || !res) {
		ret = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	for (i = first; i < n; i++) {
		c = json_array_get(commits, i);
		json_array_append_new(
		        list, json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s}", "sha",
		                        hl_json_str_or(c, "sha", ""), "message",
		                        hl_json_str_or(c, "commit.message", ""), "author",
		                        hl_json_str_or(c, "commit.author.name", ""), "email",
		                        hl_json_str_or(c, "commit.author.email", ""), "login",
		                        hl_json_str(c, "author.login"), "date",
		                        hl_json_str_or(c, "commit.author.date", "")));
	}
	json_object_set_new(res, "commits", list);
	list = NULL;
	*out = res;
	res = NULL;
out:
	json_decref(v);
	json_decref(res);
	json_decref(list);
	hl_buf_release(&p);
	return ret;
}

int
hl_github_check_runs(struct hl_github *gh, json_t **out, const char *repo, const char *ref,
                     size_t max, struct hl_err *err)
{
	struct hl_buf p = HL_BUF_INIT(0);
	json_t *arr = NULL;
	int ret;

	if (max == 0 || max > 1000)
		max = max ? 1000 : 300;
	ret = hl_github_repo_path(&p, repo, err);
	if (ret < 0)
		goto out;
	hl_buf_append_str(&p, "/commits/");
	if (hl_url_append_segment(&p, ref) < 0 && !hl_buf_error(&p)) {
		ret = hl_err_set(err, HL_EINVAL, "check runs need a commit or ref");
		goto out;
	}
	hl_buf_append_str(&p, "/check-runs?per_page=100");
	arr = json_array();
	if (!arr || hl_buf_error(&p)) {
		ret = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	ret = github_collect(gh, arr, p.data, "check_runs", max, 10, GITHUB_AUTH_INSTALLATION, err);
	if (ret == 0) {
		*out = arr;
		arr = NULL;
	}
out:
	json_decref(arr);
	hl_buf_release(&p);
	return ret;
}

bool
hl_github_run_is_fork(const json_t *run, const char *repo)
{
	const char *head = hl_json_str(run, "head_repository.full_name");
	const char *event = hl_json_str_or(run, "event", "");

	if (head)
		return !repo || strcasecmp(head, repo) != 0;
	return strncmp(event, "pull_request", 12) == 0 && strcmp(event, "pull_request_target") != 0;
}

int
hl_github_run(struct hl_github *gh, json_t **out, const char *repo, int64_t run_id,
              struct hl_err *err)
{
	return github_get_object(gh, out, repo, "/actions/runs/", run_id, err);
}

int
hl_github_pull(struct hl_github *gh, json_t **out, const char *repo, int64_t number,
               struct hl_err *err)
{
	return github_get_object(gh, out, repo, "/pulls/", number, err);
}

/* ".../hooks/{id}/deliveries" of a hook, and its auth mode. */
static int
github_hook_path(struct hl_buf *p, const struct hl_github_hook *h, enum github_auth_mode *mode,
                 struct hl_err *err)
{
	int ret = 0;

	*mode = GITHUB_AUTH_INSTALLATION;
	switch (h ? h->kind : (enum hl_github_hook_kind) - 1) {
	case HL_GITHUB_HOOK_REPO:
		ret = hl_github_repo_path(p, h->repo, err);
		if (ret == 0)
			hl_buf_appendf(p, "/hooks/%lld/deliveries", (long long)h->id);
		break;
	case HL_GITHUB_HOOK_ORG:
		if (!h->org || !*h->org || !strcmp(h->org, ".") || !strcmp(h->org, ".."))
			return hl_err_set(err, HL_EINVAL, "organization '%.100s' is not a name",
			                  h->org ? h->org : "");
		hl_buf_append_str(p, "/orgs/");
		hl_url_append_segment(p, h->org);
		hl_buf_appendf(p, "/hooks/%lld/deliveries", (long long)h->id);
		break;
	case HL_GITHUB_HOOK_APP:
		hl_buf_append_str(p, "/app/hook/deliveries");
		*mode = GITHUB_AUTH_APP;
		break;
	default:
		return hl_err_set(err, HL_EINVAL, "no webhook given");
	}
	if (ret == 0 && hl_buf_error(p))
		ret = hl_err_set(err, HL_ENOMEM, "out of memory");
	return ret;
}

int
hl_github_hook_deliveries(struct hl_github *gh, json_t **out, const struct hl_github_hook *hook,
                          struct hl_github_listing *l, struct hl_err *err)
{
	struct hl_buf p = HL_BUF_INIT(0);
	enum github_auth_mode mode;
	struct github_answer *ans = malloc(sizeof(*ans));
	char *next = malloc(2048);
	json_t *arr = json_array();
	bool older = false, more = false;
	size_t max = l->max;
	int ret, pages = 0;

	l->next[0] = '\0';
	if (!ans || !next || !arr) {
		ret = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	if (max == 0 || max > 10000)
		max = max ? 10000 : 1000;
	ret = github_hook_path(&p, hook, &mode, err);
	if (ret < 0)
		goto out;
	hl_buf_appendf(&p, "?per_page=%zu", max < 100 ? max : (size_t)100);
	/* a page saved under another GITHUB_API_URL would be asked of the
	 * old host, without the token, pass after pass */
	if (l->from && *l->from && !github_same_origin(gh, l->from)) {
		ret = hl_err_set(err, HL_EINVAL,
		                 "the page '%.200s' is not on GITHUB_API_URL's origin", l->from);
		goto out;
	}
	hl_strlcpy(next, l->from && *l->from ? l->from : p.data, 2048);
	/* bounded: at most 100 pages; newest first, so the first delivery older
	 * than since_ms ends the listing */
	while (!older && pages++ < 100 && json_array_size(arr) < max) {
		json_t *page = NULL, *it;
		size_t i;

		ret = github_call_ex(gh, &page, ans, "GET", next, NULL, mode, err);
		if (ret < 0)
			goto out;
		json_array_foreach(page, i, it)
		{
			int64_t at = hl_time_parse_rfc3339(hl_json_str_or(it, "delivered_at", ""));

			if (l->since_ms > 0 && at >= 0 && at < l->since_ms) {
				older = true;
				break;
			}
			json_array_append_new(
			        arr,
			        json_pack(
			                "{s:I, s:s, s:s, s:I, s:s, s:b, s:s, s:s?, s:f, s:I, s:I}",
			                "id", (json_int_t)hl_json_int(it, "id", 0), "guid",
			                hl_json_str_or(it, "guid", ""), "status",
			                hl_json_str_or(it, "status", ""), "status_code",
			                (json_int_t)hl_json_int(it, "status_code", 0),
			                "delivered_at", hl_json_str_or(it, "delivered_at", ""),
			                "redelivery", hl_json_bool(it, "redelivery", false),
			                "event", hl_json_str_or(it, "event", ""), "action",
			                hl_json_str(it, "action"), "duration",
			                json_number_value(json_object_get(it, "duration")),
			                "installation_id",
			                (json_int_t)hl_json_int(it, "installation_id", 0),
			                "repository_id",
			                (json_int_t)hl_json_int(it, "repository_id", 0)));
		}
		json_decref(page);
		more = hl_fetch_link_next(next, 2048, ans->link);
		if (!more)
			break;
	}
	if (more && !older)
		hl_strlcpy(l->next, next, sizeof(l->next));
	*out = arr;
	arr = NULL;
out:
	free(ans);
	free(next);
	json_decref(arr);
	hl_buf_release(&p);
	return ret;
}

int
hl_github_hook_redeliver(struct hl_github *gh, const struct hl_github_hook *hook,
                         int64_t delivery_id, struct hl_err *err)
{
	struct hl_buf p = HL_BUF_INIT(0);
	enum github_auth_mode mode;
	int ret;

	ret = github_hook_path(&p, hook, &mode, err);
	if (ret == 0) {
		hl_buf_appendf(&p, "/%lld/attempts", (long long)delivery_id);
		ret = hl_buf_error(&p)
		              ? hl_err_set(err, HL_ENOMEM, "out of memory")
		              : github_call_ex(gh, NULL, NULL, "POST", p.data, NULL, mode, err);
	}
	hl_buf_release(&p);
	return ret;
}
