/*
 * github.h - the GitHub REST client healer needs for context gathering and
 * escalation, over the fetch engine.
 *
 * Authentication: a token (GITHUB_TOKEN), or a GitHub App (GITHUB_APP_ID +
 * GITHUB_APP_PRIVATE_KEY + GITHUB_APP_INSTALLATION_ID): an RS256 JWT is
 * traded at POST /app/installations/{id}/access_tokens for an installation
 * token, cached until 5 minutes before its expires_at. With neither, calls
 * go out unauthenticated. The token is sent only to GITHUB_API_URL's origin:
 * job-log redirects (302 to blob storage) and pagination links to another
 * host are fetched without it. Tokens never appear in errors.
 *
 * A struct hl_github is thread-safe (the token cache is locked). Errors
 * follow hl_fetch_check: HL_EAUTH, HL_ENOTFOUND, HL_EUPSTREAM (5xx, rate
 * limited), HL_EIO, HL_ETIMEOUT, HL_EPARSE for a non-JSON answer.
 */
#ifndef HL_NET_GITHUB_H
#define HL_NET_GITHUB_H

#include "base/buf.h"
#include "base/err.h"
#include "config/config.h"
#include "fetch.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct hl_github;

/* Builds a client from the configuration (GITHUB_API_URL, token or App). */
int hl_github_new(struct hl_github **out, const struct hl_config *cfg, struct hl_err *err);

/* Builds a client from parts; any of token/app_* may be NULL. */
int hl_github_new_with(struct hl_github **out, const char *api_url, const char *token,
                       const char *app_id, const char *app_private_key, const char *installation_id,
                       struct hl_err *err);

void hl_github_free(struct hl_github *gh);

/* Per-call timeout (default 20000 ms) and job-log cap (default 8 MiB). */
void hl_github_set_limits(struct hl_github *gh, int64_t timeout_ms, size_t log_cap);

/*
 * Writes the Authorization value ("Bearer <token>") into auth (reset first);
 * empty when unauthenticated. Mints or refreshes the App installation token
 * when needed (HL_EAUTH when GitHub refuses the App JWT).
 */
int hl_github_auth(struct hl_github *gh, struct hl_buf *auth, struct hl_err *err);

/*
 * Appends "/repos/{owner}/{repo}" for full_name "owner/repo" to p: split at
 * the first '/', each part encoded with hl_url_append_segment. Anything but
 * exactly two non-empty parts (no further '/'), or a part that is "." or
 * "..", is refused with HL_EINVAL before any request; HL_ENOMEM. Every
 * repository-scoped call below builds its path with it; a caller building
 * its own paths must too.
 */
int hl_github_repo_path(struct hl_buf *p, const char *full_name, struct hl_err *err);

/*
 * Prepares req for method on path (relative to GITHUB_API_URL, starting with
 * "/", or an absolute URL from a Link header). url and auth are caller-owned
 * and must outlive the request; auth is attached only when the URL is on the
 * API origin. For batching GitHub calls with other sources. A path that
 * hl_url_check_path refuses (a '#', a "." or ".." segment, an unencoded
 * byte) is refused with HL_EINVAL, so an unencoded repository name cannot
 * reach another endpoint with the token.
 */
int hl_github_req_init(struct hl_github *gh, struct hl_fetch_req *req, struct hl_buf *url,
                       struct hl_buf *auth, const char *method, const char *path,
                       struct hl_err *err);

/* One JSON call; *out (may be NULL) gets the parsed 2xx answer. body may be
 * NULL. */
int hl_github_call(struct hl_github *gh, json_t **out, const char *method, const char *path,
                   const json_t *body, struct hl_err *err);

/* The failed jobs (conclusion failure or timed_out) of a run's latest attempt
 * (/actions/runs/{id}/jobs?filter=latest): a new array of job objects. */
int hl_github_failed_jobs(struct hl_github *gh, json_t **out, const char *repo, int64_t run_id,
                          struct hl_err *err);

/*
 * A job's log (/actions/jobs/{id}/logs): follows the 302 to the storage host
 * without the token; keeps the TAIL when over the cap (then *truncated_out,
 * may be NULL, is set). Appends to out.
 */
int hl_github_job_log(struct hl_github *gh, struct hl_buf *out, bool *truncated_out,
                      const char *repo, int64_t job_id, struct hl_err *err);

/* The open PR whose head is owner:branch (owner from repo); HL_ENOTFOUND when
 * none. */
int hl_github_pr_for_branch(struct hl_github *gh, json_t **out, const char *repo,
                            const char *branch, struct hl_err *err);

/* A PR's files, following Link rel="next" up to max_files (0: 3000). A new
 * array of {filename, status, additions, deletions, ...}. */
int hl_github_pr_files(struct hl_github *gh, json_t **out, const char *repo, int64_t number,
                       size_t max_files, struct hl_err *err);

/* The files of a commit (/commits/{sha}).files, a new array. */
int hl_github_commit_files(struct hl_github *gh, json_t **out, const char *repo, const char *sha,
                           struct hl_err *err);

/* A check run (/check-runs/{id}); its output.title/summary/text carry the
 * failure details. */
int hl_github_check_run(struct hl_github *gh, json_t **out, const char *repo, int64_t id,
                        struct hl_err *err);

/* POST /issues/{n}/comments with body text; *out (may be NULL) gets the
 * created comment. */
int hl_github_issue_comment(struct hl_github *gh, json_t **out, const char *repo, int64_t number,
                            const char *body, struct hl_err *err);

#endif
