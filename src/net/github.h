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
 * carry GitHub's own message ("github GET '/repos/...': status 404: Not
 * Found") and map as: 401 and 403 -> HL_EAUTH; 404 and 410 -> HL_ENOTFOUND;
 * 409 -> HL_ECONFLICT; 400 and 422 -> HL_EINVAL; 5xx -> HL_EUPSTREAM (GETs
 * are retried first, other methods never); a rate limit (403/429 with
 * Retry-After, or X-RateLimit-Remaining: 0, or a 403 whose message names a
 * secondary rate limit) is waited out when it lifts within the call's
 * timeout, else HL_EUPSTREAM "rate limited"; HL_EIO / HL_ETIMEOUT for
 * transport failures; HL_EPARSE for a non-JSON answer. Every path segment
 * taken from the caller (owner, repository, ref, workflow, organization) is
 * encoded, and refused when it could climb (see hl_github_repo_path).
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
int hl_github_new(struct hl_github **out, const struct hl_config *cfg,
                  struct hl_err *err) HL_MUST_CHECK;

/* Builds a client from parts; any of token/app_* may be NULL. */
int hl_github_new_with(struct hl_github **out, const char *api_url, const char *token,
                       const char *app_id, const char *app_private_key, const char *installation_id,
                       struct hl_err *err) HL_MUST_CHECK;

void hl_github_free(struct hl_github *gh);

/* Per-call timeout (default 20000 ms) and job-log cap (default 8 MiB). */
void hl_github_set_limits(struct hl_github *gh, int64_t timeout_ms, size_t log_cap);

/*
 * The token's budget (GitHub sends X-RateLimit-Remaining and -Reset, epoch
 * seconds, with every answer; while Remaining is 0 every request before the
 * reset is refused with 403/429). The client keeps what the answers said
 * for the process (every call shares the token's budget): after an answer
 * with Remaining 0 (a success too) a call waits for the reset when it comes
 * within its timeout, and is otherwise refused before it is sent
 * (hl_github_req_init: HL_EUPSTREAM "rate limited"). A reset in the past is
 * ignored, one further than HL_GITHUB_BUDGET_HOLD_MAX_MS is taken as that;
 * an answer with Remaining above 0 from a later window (a later reset)
 * lifts the hold. A secondary rate limit that reaches the caller (403 or
 * 429 past the call's deadline) holds every call the same way until its
 * Retry-After, or for a minute when it names none, doubled for each one
 * since the last success (GitHub asks for no request meanwhile, then an
 * exponential backoff; an integration that goes on may be banned); an
 * answer of a later window does not lift that one. The App's own JWT calls
 * (/app/...) have their own budget and are not held. A process with
 * several clients, or several replicas, share it with
 * hl_github_share_budget.
 */
#define HL_GITHUB_BUDGET_HOLD_MAX_MS (60LL * 60 * 1000)

/* Records the budget an answer of the API origin named (callers that run
 * requests of hl_github_req_init themselves call it with each result). */
void hl_github_note_budget(struct hl_github *gh, const struct hl_fetch_res *res);

/* Holds every call until until_ms (wall clock; at most
 * HL_GITHUB_BUDGET_HOLD_MAX_MS from now, none when past): for a caller that
 * read the headers itself. */
void hl_github_hold_budget(struct hl_github *gh, int64_t until_ms);

/* How long until the token's budget is back, in ms; 0 when it is not spent. */
int64_t hl_github_budget_wait_ms(struct hl_github *gh);

/*
 * Where the token's budget is shared beyond this client: the other clients
 * of the process and other replicas (through the store, see
 * remediate/github_shared.h). get returns the end of the hold recorded
 * under key (wall-clock ms; 0: none), put records one. key names the token
 * by a fingerprint (never the token itself), so a new token starts free.
 */
struct hl_github_share {
	int64_t (*get)(void *arg, const char *key);
	void (*put)(void *arg, const char *key, int64_t until_ms);
	void *arg;
};

/*
 * Shares gh's budget through share (copied; NULL stops sharing; set before
 * the client is used from other threads). A hold this client learns is
 * put at once; before a call goes out the shared hold is read (at most
 * once a second) and taken when it ends later than what the client knows,
 * unless an answer of a later window has already lifted it here.
 */
void hl_github_share_budget(struct hl_github *gh, const struct hl_github_share *share);

/*
 * GitHub's clock: every answer of the API origin names it (Date, whole
 * seconds) and the client keeps how far it is from ours. The App JWT's iat
 * and exp are drawn from it (a local clock a minute or more apart makes
 * GitHub refuse the JWT with a 401 naming them; such a 401 to the
 * installation token request is asked once more on that answer's clock).
 * hl_github_clock_offset_ms: GitHub's clock less ours in ms (0, *known
 * false, before any answer; known may be NULL); hl_github_now_ms: the wall
 * clock in ms as GitHub reads it (ours until an answer named GitHub's).
 */
int64_t hl_github_clock_offset_ms(struct hl_github *gh, bool *known);
int64_t hl_github_now_ms(struct hl_github *gh);

/*
 * Writes the Authorization value ("Bearer <token>") into auth (reset first);
 * empty when unauthenticated. Mints or refreshes the App installation token
 * when needed (HL_EAUTH when GitHub refuses the App JWT).
 */
int hl_github_auth(struct hl_github *gh, struct hl_buf *auth, struct hl_err *err) HL_MUST_CHECK;

/*
 * Appends "/repos/{owner}/{repo}" for full_name "owner/repo" to p: split at
 * the first '/', each part encoded with hl_url_append_segment. Anything but
 * exactly two non-empty parts (no further '/'), or a part that is "." or
 * "..", is refused with HL_EINVAL before any request; HL_ENOMEM. Every
 * repository-scoped call below builds its path with it; a caller building
 * its own paths must too.
 */
int hl_github_repo_path(struct hl_buf *p, const char *full_name, struct hl_err *err) HL_MUST_CHECK;

/*
 * Prepares req for method on path (relative to GITHUB_API_URL, starting with
 * "/", or an absolute URL from a Link header). url and auth are caller-owned
 * and must outlive the request; auth is attached only when the URL is on the
 * API origin. For batching GitHub calls with other sources. A path that
 * hl_url_check_path refuses (a '#', a "." or ".." segment, an unencoded
 * byte) is refused with HL_EINVAL, so an unencoded repository name cannot
 * reach another endpoint with the token. While the token's budget is spent
 * (hl_github_note_budget) a request to the API origin is refused with
 * HL_EUPSTREAM "rate limited", unsent. Redirects are followed (a renamed
 * repository's 301 or 307 to /repositories/{id}/...; the token only within
 * the API origin).
 */
int hl_github_req_init(struct hl_github *gh, struct hl_fetch_req *req, struct hl_buf *url,
                       struct hl_buf *auth, const char *method, const char *path,
                       struct hl_err *err) HL_MUST_CHECK;

/* One JSON call; *out (may be NULL) gets the parsed 2xx answer. body may be
 * NULL. */
int hl_github_call(struct hl_github *gh, json_t **out, const char *method, const char *path,
                   const json_t *body, struct hl_err *err) HL_MUST_CHECK;

/* The size of a Link header's next URL a caller walking pages keeps
 * (bytes, with NUL; hl_fetch_link_next). */
#define HL_GITHUB_LINK_MAX 2048

/* The failed jobs (conclusion failure or timed_out) of a run's latest attempt
 * (/actions/runs/{id}/jobs?filter=latest): a new array of job objects. */
int hl_github_failed_jobs(struct hl_github *gh, json_t **out, const char *repo, int64_t run_id,
                          struct hl_err *err) HL_MUST_CHECK;

/*
 * A job's log (/actions/jobs/{id}/logs): follows the 302 to the storage host
 * without the token; keeps the TAIL when over the cap (then *truncated_out,
 * may be NULL, is set). Appends to out.
 */
int hl_github_job_log(struct hl_github *gh, struct hl_buf *out, bool *truncated_out,
                      const char *repo, int64_t job_id, struct hl_err *err) HL_MUST_CHECK;

/* The open PR whose head is owner:branch (owner from repo); HL_ENOTFOUND when
 * none. */
int hl_github_pr_for_branch(struct hl_github *gh, json_t **out, const char *repo,
                            const char *branch, struct hl_err *err) HL_MUST_CHECK;

/* A PR's files, following Link rel="next" up to max_files (0: 3000). A new
 * array of {filename, status, additions, deletions, ...}. */
int hl_github_pr_files(struct hl_github *gh, json_t **out, const char *repo, int64_t number,
                       size_t max_files, struct hl_err *err) HL_MUST_CHECK;

/* Whether commit sha is one of a PR's commits (/pulls/{n}/commits,
 * following Link rel="next" over GitHub's 250 at most). */
int hl_github_pull_has_commit(struct hl_github *gh, bool *has, const char *repo, int64_t number,
                              const char *sha, struct hl_err *err) HL_MUST_CHECK;

/* The files of a commit (/commits/{sha}).files, a new array. */
int hl_github_commit_files(struct hl_github *gh, json_t **out, const char *repo, const char *sha,
                           struct hl_err *err) HL_MUST_CHECK;

/* A check run (/check-runs/{id}); its output.title/summary/text carry the
 * failure details. */
int hl_github_check_run(struct hl_github *gh, json_t **out, const char *repo, int64_t id,
                        struct hl_err *err) HL_MUST_CHECK;

/* POST /issues/{n}/comments with body text; *out (may be NULL) gets the
 * created comment. */
int hl_github_issue_comment(struct hl_github *gh, json_t **out, const char *repo, int64_t number,
                            const char *body, struct hl_err *err) HL_MUST_CHECK;

/* ---- the remediation loop ---- */

/* Which kind of comment a reaction is on. */
enum hl_github_comment_kind {
	HL_GITHUB_ISSUE_COMMENT,  /* in an issue's or a PR's conversation */
	HL_GITHUB_REVIEW_COMMENT, /* on a line of a PR's diff */
};

/*
 * Reacts to a comment: POST
 * /repos/{o}/{r}/issues/comments/{comment_id}/reactions {"content"} for an
 * issue comment (in a PR's conversation too), .../pulls/comments/... for a
 * review comment.
 * content is one of +1 -1 laugh confused heart hooray rocket eyes (else
 * HL_EINVAL before any request). 201 (created) and 200 (this reaction by
 * this user already existed) are both success; *created_out (may be NULL)
 * says which. Never repeated after a 5xx or a lost connection (a POST):
 * HL_EUPSTREAM then, and calling again is safe (GitHub answers 200).
 * HL_ENOTFOUND for a deleted comment, HL_EINVAL for a 422, HL_EAUTH.
 */
int hl_github_add_reaction(struct hl_github *gh, bool *created_out, const char *repo,
                           enum hl_github_comment_kind kind, int64_t comment_id,
                           const char *content, struct hl_err *err) HL_MUST_CHECK;

/*
 * Re-runs the failed jobs of a run (and the jobs depending on them): POST
 * /repos/{o}/{r}/actions/runs/{run_id}/rerun-failed-jobs, 201. A 403 for
 * a run that cannot be re-run (older than 30 days, re-run 50 times,
 * workflow disabled) is HL_EUNSUPPORTED "run N of 'o/r' cannot be
 * re-run: ... <GitHub's message>"; a 403 for missing permission ("Resource
 * not accessible by integration") stays HL_EAUTH. HL_ENOTFOUND for an
 * unknown run. Not repeated after a 5xx (a POST). A run still going (GitHub:
 * "This workflow is already running", its other jobs run on) is
 * HL_EUPSTREAM: it can be re-run once it ends.
 */
int hl_github_rerun_failed_jobs(struct hl_github *gh, const char *repo, int64_t run_id,
                                struct hl_err *err) HL_MUST_CHECK;

/* Filters of a workflow runs listing; NULL or "" leaves one out. */
struct hl_github_runs_query {
	const char *workflow; /* workflow id or file name ("ci.yml"): .../workflows/{w}/runs;
	                         NULL: every workflow (.../actions/runs) */
	const char *branch;   /* head branch */
	const char *head_sha;
	const char *status;     /* queued, in_progress, completed, or a conclusion (success, ...) */
	const char *event;      /* push, pull_request, ... */
	const char *created;    /* GitHub's date filter, e.g. ">=2025-01-15T10:30:00Z" */
	int64_t check_suite_id; /* the run of a check suite (0: any) */
	size_t max_runs;        /* 0: 100; at most 1000 (GitHub's cap for filtered lists) */
};

/*
 * The workflow runs matching q, newest first (GitHub's order), following
 * Link pages (per_page 100, at most 10 pages): a new array of run objects
 * (id, name, head_branch, head_sha, run_attempt, event, status, conclusion,
 * workflow_id, created_at, html_url, ...).
 */
int hl_github_workflow_runs(struct hl_github *gh, json_t **out, const char *repo,
                            const struct hl_github_runs_query *q, struct hl_err *err) HL_MUST_CHECK;

/*
 * Every job of a run's latest attempt (/actions/runs/{id}/jobs
 * ?filter=latest, all pages, at most 1000): a new array of job objects
 * (id, name, status, conclusion, started_at, completed_at, steps, ...).
 */
int hl_github_run_jobs(struct hl_github *gh, json_t **out, const char *repo, int64_t run_id,
                       struct hl_err *err) HL_MUST_CHECK;

enum hl_github_verdict {
	HL_GITHUB_VERDICT_NONE = 0, /* no completed run of the workflow on the branch yet */
	HL_GITHUB_VERDICT_PASSED,   /* the job's conclusion was success */
	HL_GITHUB_VERDICT_FAILED,   /* failure, timed_out, action_required, ... */
	HL_GITHUB_VERDICT_MISSING,  /* completed runs exist, none ran the job */
};

struct hl_github_job_verdict {
	enum hl_github_verdict verdict;
	int64_t run_id, job_id; /* the deciding run and job (0 for NONE / MISSING) */
	char head_sha[64];
	char conclusion[32];
	char completed_at[40];
};

/* "passed", "failed", "missing", "none". */
const char *hl_github_verdict_name(enum hl_github_verdict v);

/*
 * Did job job_name of workflow (id or file name) pass on branch in a run
 * created at or after since_ms (wall clock ms, asked of GitHub in whole
 * seconds rounded down; 0: any time)? Reads the
 * newest 20 completed runs of the workflow on the branch, newest first, and
 * the jobs of each run's latest attempt: the first run where a job of that
 * exact name (matrix jobs carry their suffix, "test (ubuntu)") concluded
 * decides: success is PASSED, any other conclusion FAILED, except skipped,
 * neutral and cancelled, which prove nothing and pass the question to the
 * next older run. A NULL job_name asks of the runs as a whole (their own
 * conclusions; job_id 0). *out is always written on success.
 */
int hl_github_job_verdict(struct hl_github *gh, struct hl_github_job_verdict *out, const char *repo,
                          const char *workflow, const char *branch, const char *job_name,
                          int64_t since_ms, struct hl_err *err) HL_MUST_CHECK;

/*
 * The commits between base and head (shas or refs): GET
 * /repos/{o}/{r}/compare/{base}...{head}. *out is a new object {status
 * (ahead, behind, diverged, identical), ahead_by, behind_by, total_commits,
 * truncated, commits: [{sha, message, author, email, login (or null),
 * date}]} holding the newest max_commits commits (0: 50) oldest first (GitHub
 * sends at most 250; truncated says some were left out). A ref that is
 * empty or holds ".." is HL_EINVAL; an unknown ref is HL_ENOTFOUND.
 */
int hl_github_compare(struct hl_github *gh, json_t **out, const char *repo, const char *base,
                      const char *head, size_t max_commits, struct hl_err *err) HL_MUST_CHECK;

/*
 * The check runs of a commit or ref: GET /repos/{o}/{r}/commits/{ref}
 * /check-runs (GitHub's default filter=latest), following Link pages up to
 * max (0: 300; at most 1000): a new array of check runs (id, name,
 * head_sha, status, conclusion, output{title, summary, text}, details_url,
 * app, ...).
 */
int hl_github_check_runs(struct hl_github *gh, json_t **out, const char *repo, const char *ref,
                         size_t max, struct hl_err *err) HL_MUST_CHECK;

/*
 * True when a workflow run (as the runs API shows one) ran a fork's commit:
 * its head_repository is another repository than repo, or it has none and
 * ran for a pull request (the fork was deleted). Its head_branch is then
 * the fork's branch, which says nothing of repo's branch of that name.
 */
bool hl_github_run_is_fork(const json_t *run, const char *repo);

/* A workflow run by id: GET /repos/{o}/{r}/actions/runs/{id} (name: the
 * workflow's, workflow_id, run_attempt, head_branch, head_sha, ...);
 * HL_ENOTFOUND. */
int hl_github_run(struct hl_github *gh, json_t **out, const char *repo, int64_t run_id,
                  struct hl_err *err) HL_MUST_CHECK;

/* A pull request by number: GET /repos/{o}/{r}/pulls/{n}; HL_ENOTFOUND. */
int hl_github_pull(struct hl_github *gh, json_t **out, const char *repo, int64_t number,
                   struct hl_err *err) HL_MUST_CHECK;

/* Where a webhook lives (contract section 11). */
enum hl_github_hook_kind {
	HL_GITHUB_HOOK_REPO, /* /repos/{owner}/{repo}/hooks/{id} */
	HL_GITHUB_HOOK_ORG,  /* /orgs/{org}/hooks/{id} */
	HL_GITHUB_HOOK_APP,  /* /app/hook: the GitHub App's own webhook */
};

struct hl_github_hook {
	enum hl_github_hook_kind kind;
	const char *repo; /* REPO: "owner/repo" */
	const char *org;  /* ORG */
	int64_t id;       /* REPO and ORG: the hook id */
};

/* Where a listing of a hook's deliveries starts and stops (see below). */
struct hl_github_listing {
	const char *from; /* in: a next of an earlier listing; NULL or "": the newest page */
	int64_t since_ms; /* in: stop at the first delivery delivered before it (0: none) */
	size_t max;       /* in: stop after the page that reaches max deliveries (0: 1000) */
	char next[2048];  /* out: the page after the last one read when the listing
	                   * stopped at max or the page bound; "" when it reached
	                   * since_ms or the end */
};

/*
 * The hook's recent deliveries, newest first: GET .../deliveries
 * ?per_page=100 (or l->from), then the cursor of Link rel="next" (at most
 * 100 pages), until l->max or the first delivery delivered before
 * l->since_ms (wall clock ms). Whole pages are read, so a listing that goes
 * on from l->next misses nothing; GitHub's cursor names the delivery a page
 * starts at, so it stays valid while newer deliveries arrive. *out is a new
 * array of {id, guid, status, status_code, delivered_at, redelivery, event,
 * action (or null), duration, installation_id, repository_id}; a delivery
 * failed when status is not "OK". App hooks authenticate with the App's JWT
 * (GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY; HL_EAUTH without them),
 * repository and organization hooks with the token or installation token.
 */
int hl_github_hook_deliveries(struct hl_github *gh, json_t **out, const struct hl_github_hook *hook,
                              struct hl_github_listing *l, struct hl_err *err) HL_MUST_CHECK;

/*
 * Asks GitHub to deliver one delivery again: POST .../deliveries/{id}
 * /attempts, 202 (the new attempt shows up later as a delivery with
 * redelivery true). Not repeated after a 5xx. HL_EINVAL for 400/422 (too old
 * to redeliver), HL_ENOTFOUND, HL_EAUTH.
 */
int hl_github_hook_redeliver(struct hl_github *gh, const struct hl_github_hook *hook,
                             int64_t delivery_id, struct hl_err *err) HL_MUST_CHECK;

#endif
