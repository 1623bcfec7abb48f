/*
 * event.h - healer's one internal model of an incoming GitHub event.
 *
 * Every webhook and sensor payload healer accepts is normalized into a
 * struct hl_event: what happened (kind, action), where (repository, branch,
 * sha), which CI object (run, job, check run, alert), and what healer should
 * do with it (intent). Validation (skip reasons) and the cross-hook
 * deduplication key are computed from this model, never from raw JSON.
 *
 * Ownership: all strings are owned by the event and freed by hl_event_free.
 * Absent strings are NULL; absent ids are 0.
 */
#ifndef HL_EVENT_EVENT_H
#define HL_EVENT_EVENT_H

#include "base/err.h"
#include "config/config.h"

#include "json/fast.h"
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

enum hl_event_kind {
	HL_EVENT_UNKNOWN = 0,
	HL_EVENT_WORKFLOW_JOB,
	HL_EVENT_WORKFLOW_RUN,
	HL_EVENT_CHECK_RUN,
	HL_EVENT_CHECK_SUITE,
	HL_EVENT_STATUS,
	HL_EVENT_PULL_REQUEST,
	HL_EVENT_PUSH,
	HL_EVENT_ISSUE_COMMENT,
	HL_EVENT_PULL_REQUEST_REVIEW,
	HL_EVENT_PULL_REQUEST_REVIEW_COMMENT,
	HL_EVENT_MERGE_GROUP,
	HL_EVENT_DEPENDABOT_ALERT,
	HL_EVENT_CODE_SCANNING_ALERT,
	HL_EVENT_SECRET_SCANNING_ALERT,
	HL_EVENT_REPOSITORY_VULNERABILITY_ALERT,
	HL_EVENT_PING,
	HL_EVENT_KIND_MAX
};

/* What healer will do with the event once it passes validation. */
enum hl_event_intent {
	HL_INTENT_NONE = 0,   /* nothing to do (e.g. ping) */
	HL_INTENT_CI_FAILURE, /* remediate a failed job / run / check */
	HL_INTENT_SECURITY,   /* remediate a security alert (Cipher) */
	HL_INTENT_COMMAND,    /* a /healer command in a PR comment or review */
	HL_INTENT_ACTION,     /* check_run requested_action (Stitch "Remediate") */
	HL_INTENT_TRACK,      /* lifecycle tracking: success, review, merge queue */
};

enum hl_comment_command {
	HL_CMD_NONE = 0,
	HL_CMD_FIX,
	HL_CMD_RETRY,
	HL_CMD_STATUS,
	HL_CMD_STOP,
};

struct hl_event {
	enum hl_event_kind kind;
	enum hl_event_intent intent;
	char *event_name; /* X-GitHub-Event: "workflow_job", ... */
	char *action;     /* payload action, or NULL (push, status) */

	char *repository;     /* owner/name */
	char *repository_url; /* https://github.com/owner/name */
	char *default_branch;
	char *sender;       /* login */
	bool sender_is_bot; /* login ends in [bot] or sender.type == "Bot" */
	int64_t installation_id;

	/* CI objects */
	int64_t run_id; /* workflow run id */
	int64_t run_attempt;
	int64_t job_id; /* workflow job id (= check run id for Actions) */
	int64_t check_run_id;
	int64_t check_suite_id;
	char *workflow_name;
	char *job_name;    /* job or check run name; status context */
	char *failed_step; /* first step whose conclusion is failure */
	char *status;      /* queued / in_progress / completed; status event state */
	char *conclusion;  /* failure / success / ...; status events: state; a
	                      closed pull_request: "merged" or "closed" */
	char *branch;      /* head branch */
	char *base_branch; /* PR base, when known */
	char *head_sha;
	/* workflow_run: the repository its commit comes from (a fork's, for a
	 * run of a fork's pull request: its branch is the fork's) */
	char *head_repository;
	char *commit_message; /* head commit message, only where GitHub sends it */
	char *html_url;       /* the job / run / check / alert / comment page */
	char *logs_url;       /* workflow_run.logs_url */
	char *check_output_title, *check_output_summary, *check_output_text;
	int64_t pr_number; /* the PR concerned, 0 when unknown */
	char *pr_title;

	/* security alerts */
	int64_t alert_number;
	char *alert_state;
	/* when the alert last changed: a second reopening is another event */
	char *alert_updated_at;
	char *severity; /* critical / high / medium / low / ... */
	char *package_name;
	char *package_ecosystem;
	char *manifest_path;
	char *vulnerable_range;
	char *fixed_version;
	char *cve_id;
	char *ghsa_id;
	char *summary;       /* advisory summary / rule description */
	char *description;   /* advisory description / rule full description / status text */
	char *rule_id;       /* code scanning rule */
	char *tool_name;     /* code scanning tool */
	char *location_path; /* code scanning most_recent_instance.location.path */
	char *secret_type;   /* secret scanning */

	/* commands (issue_comment, pull_request_review_comment, a submitted
	 * pull_request_review's body) and requested actions */
	enum hl_comment_command command;
	char *command_hint; /* text after "/healer fix" or "/healer retry" */
	char *comment_body;
	int64_t comment_id;
	char *author_association; /* the comment author's relation to the repository
	                             (OWNER, MEMBER, COLLABORATOR, CONTRIBUTOR, NONE, ...) */
	char *requested_action;   /* check_run requested_action.identifier */
	char *review_state;       /* pull_request_review */
	int64_t review_id;        /* pull_request_review review.id */
};

/*
 * Normalizes a payload delivered as event_name (X-GitHub-Event). Unknown
 * event names fail with HL_EUNSUPPORTED; payloads missing what the event
 * requires (e.g. workflow_job without a workflow_job object, any event but
 * ping without repository.full_name) fail with HL_EINVAL, and so does a
 * repository.full_name that is not a GitHub owner/name
 * (hl_str_github_repo_valid). Everything else is
 * read leniently: a missing, null or wrongly typed field is left absent, ids
 * may be numbers or numeric strings. Text fields that quote a registered
 * secret have it redacted (hl_event_redact). *out is a new event (hl_event_free);
 * payload is only borrowed. Thread-safe.
 */
int hl_event_normalize(struct hl_event **out, const char *event_name, const json_t *payload,
                       struct hl_err *err);

/*
 * What hl_event_normalize reads of the members every payload carries
 * (repository, sender, installation; organization and enterprise not at
 * all), for hl_json_fast_parse_pruned: a payload parsed with these rules
 * normalizes exactly as the whole payload does (tests/event checks it on
 * every example GitHub documents), at a fraction of the parsing cost.
 */
extern const struct hl_json_prune_rule hl_event_prune_rules[];

/*
 * Replaces every registered secret (base/log.h) quoted in the event's text
 * fields, and a URL's user:password@, by [REDACTED] (all but event_name
 * and the validated repository), so outside text that quotes healer's own
 * credentials (a job named after a token) is never stored, served or put
 * into a prompt. hl_event_normalize does it. 0 or -HL_ENOMEM.
 */
int hl_event_redact(struct hl_event *ev);

/*
 * Guesses the event name of a sensor payload that arrives without an
 * X-GitHub-Event header (the /api/remediate/ routes): "workflow_run", "workflow_job",
 * "check_run", or for alerts "dependabot_alert", "code_scanning_alert",
 * "secret_scanning_alert", "repository_vulnerability_alert". NULL if unknown.
 */
const char *hl_event_guess_name(const json_t *payload);

/*
 * Validation before any work. Returns NULL when the event should be
 * processed, else a stable reason code (a static string), checked in this
 * order:
 *  "ping"                   ping events (answered, never processed);
 *  "event_not_handled"      an unknown kind, or an intent-less event;
 *  "action_not_handled"     the action is not of interest:
 *                           workflow_job / workflow_run / check_suite need
 *                           "completed"; check_run "completed" or
 *                           "requested_action" whose identifier is a
 *                           remediation button (hl_event_is_remediation_action;
 *                           other apps' buttons are not healer's), not
 *                           "rerequested" or "created"; dependabot /
 *                           secret scanning alerts "created" / "reopened",
 *                           code scanning also "reopened_by_user",
 *                           repository_vulnerability_alert "create" /
 *                           "reopen"; issue_comment and
 *                           pull_request_review_comment "created"; pull_request
 *                           opened / reopened / synchronize / closed;
 *                           pull_request_review submitted / dismissed;
 *                           merge_group checks_requested / destroyed; push
 *                           only to branches (not tags);
 *  "repository_not_allowed" outside cfg's repository allowlist;
 *  "not_failure"            a completed CI object (workflow_job, workflow_run,
 *                           check_run, check_suite, status) whose conclusion
 *                           is neither a failure (see
 *                           hl_event_conclusion_is_failure; status: state
 *                           failure / error) nor "success": cancelled,
 *                           skipped, neutral, action_required, pending ...;
 *  "bot_sender"             CI failures, commands and requested actions sent
 *                           by a bot, unless cfg->process_bot_commits (TRACK
 *                           and SECURITY events are not filtered: healer
 *                           must see its own agents' PRs, and alerts are
 *                           raised by GitHub itself);
 *  "skip_tag"               a CI failure whose head commit message contains
 *                           "[skip-healer]", "[healer skip]" or the
 *                           original sensor's "[skip-ci-remediation]" (any
 *                           case).
 *                           Only workflow_run, check_suite, status and push
 *                           payloads carry the message; for workflow_job and
 *                           check_run the worker must look it up by head_sha;
 *  "alert_not_open"         an alert whose state is not "open";
 *  "no_command"             an issue_comment or pull_request_review_comment
 *                           without a /healer command (including every
 *                           comment on a plain issue).
 *
 * TRACK events that pass (intent HL_INTENT_TRACK, result NULL): successful
 * CI objects, pull_request, push, pull_request_review (but a submitted one
 * whose body gives a /healer command: HL_INTENT_COMMAND) and merge_group. The
 * worker never starts a remediation for them; a CI success is matched
 * against open remediations (hl_loop_ci_event) and verifies the fix; a
 * pull_request "closed" stops the PR's remediations still at work
 * (hl_loop_pr_closed). The others are stored and counted: the loop reads a
 * PR's state from GitHub when it needs it. Events that match nothing are
 * dropped.
 * Thread-safe; cfg is only read.
 */
const char *hl_event_skip_reason(const struct hl_event *ev, const struct hl_config *cfg);

/*
 * The key that identifies the same real-world event across deliveries (an
 * org hook and a repo hook, or a sensor retry). Format:
 *   "<owner/name lower-cased>|<kind>|<identity fields>|action=<action>"
 * with identity fields:
 *   workflow_job  run=<run_id>|attempt=<run_attempt>|job=<job_id>
 *   workflow_run  run=<run_id>|attempt=<run_attempt>
 *   check_run     check_run=<id>[|requested=<identifier>]
 *   check_suite   check_suite=<id>
 *   status        sha=<sha>|context=<context>|state=<state>
 *   pull_request  pr=<number>|sha=<head sha>
 *   push          branch=<branch>|sha=<after>
 *   issue_comment comment=<id>; pull_request_review review=<id>
 *   pull_request_review_comment comment=<id>
 *   merge_group   sha=<head sha>
 *   alerts        alert=<number>
 * String values have '%' and '|' percent-encoded (%25, %7C). A re-run (new
 * run_attempt) that fails again gets a new key. Malloc'd;
 * NULL for events without a stable identity (ping, missing ids or
 * repository: then the delivery id alone deduplicates) or on OOM.
 */
char *hl_event_dedup_key(const struct hl_event *ev);

/* True when ev is a CI failure and reason (hl_event_skip_reason's) only
 * keeps it from starting a task (bot_sender, skip_tag): the failure is
 * still the current CI status of an active task on its branch (an agent's
 * own push failing again), so intake stores it for the worker, which gives
 * it to that task or skips it. A bot's command is never this. */
bool hl_event_skip_starts_nothing(const struct hl_event *ev, const char *reason);

/* True when a commit message carries a skip tag: [skip-healer],
 * [healer skip] or [skip-ci-remediation] (case-insensitive). For a job whose
 * payload carries no message, the pipeline checks the fetched commit. */
bool hl_event_has_skip_tag(const char *msg);

/*
 * The identity of a CI failure whichever event reported it, for the worker
 * to avoid remediating one failure twice: GitHub reports a failed Actions
 * job both as workflow_job and as a check_run from the "github-actions" app
 * (same id; hl_event_normalize sets job_id and run_id on such check runs).
 *   job known            "<repo>|job=<job_id>"
 *   workflow_run         "<repo>|run=<run_id>|attempt=<n>"
 *   other check run      "<repo>|check_run=<id>"
 *   check_suite          "<repo>|check_suite=<id>"
 *   status               "<repo>|status=<sha>|context=<context>"
 * Repository lower-cased, values escaped as in hl_event_dedup_key.
 * Malloc'd; NULL unless intent is HL_INTENT_CI_FAILURE (or on OOM).
 */
char *hl_event_failure_key(const struct hl_event *ev);

/* The run id after "/actions/runs/" in a GitHub Actions URL (a check run's
 * details_url), or 0. */
int64_t hl_event_run_id_from_url(const char *url);

/*
 * The key a remediation of ev is claimed by: the failure key for CI
 * failures; for a security alert "<repo>|<kind>|alert=<number>" (repository
 * lower-cased, no action: a reopened alert is the alert its open task
 * remediates; the remediator claims "<key>|generation=<n>" once the
 * alert's earlier tasks have ended); else the dedup key (a comment, a
 * button press), else "<repository>|<kind>|<alert number>". Malloc'd;
 * NULL on OOM.
 */
char *hl_event_remediation_key(const struct hl_event *ev);

/* True for a security alert of a repository with a number (Dependabot,
 * code scanning, secret scanning, repository vulnerability). */
bool hl_event_is_alert(const struct hl_event *ev);

/*
 * The key intake deduplicates deliveries by and names their task after:
 * for a CI failure its failure key (hl_event_failure_key: a failed Actions
 * job reported as workflow_job and again as its check run is one failure,
 * so the second delivery is a duplicate of the first, with its task), else
 * the dedup key. Malloc'd; NULL when the event has neither (or on OOM).
 */
char *hl_event_intake_key(const struct hl_event *ev);

/*
 * The task id of an event that may be remediated: "hl-" + the first 20 hex
 * digits of sha256(identity), where identity is the event's intake key
 * (hl_event_intake_key: so every delivery of one event, and of one
 * failure, names the same task) or, without one, the delivery id. Returns 0, -HL_EINVAL (empty
 * identity) or -HL_ETOOBIG.
 */
int hl_event_task_id(char *out, size_t size, const char *identity);

/* True for intents that start a remediation task (CI failure, security
 * alert, /healer command, requested action). */
bool hl_event_remediable(const struct hl_event *ev);

/*
 * The normalized event as a new JSON object (caller decrefs; NULL on OOM)
 * whose keys are the struct's field names; "kind" and "intent" are always
 * present, other strings only when non-NULL, ids only when non-zero,
 * "sender_is_bot" only when true and "command" (fix / retry / status / stop)
 * only when set. This is what golden tests check and the store keeps.
 */
json_t *hl_event_to_json(const struct hl_event *ev);

/* The inverse of hl_event_to_json: a new event from its JSON object (keys
 * it does not know are ignored; missing ones are absent). */
int hl_event_from_json(struct hl_event **out, const json_t *o, struct hl_err *err);

const char *hl_event_kind_name(enum hl_event_kind kind);
const char *hl_event_intent_name(enum hl_event_intent intent);
const char *hl_comment_command_name(enum hl_comment_command cmd);

void hl_event_free(struct hl_event *ev);

/*
 * True for check run button identifiers that ask for a remediation:
 * "remediate" (Stitch's "Remediate with Rex"), "rex_remediate",
 * "fix_issues", and any identifier starting with "healer". NULL is false.
 */
bool hl_event_is_remediation_action(const char *identifier);

/* The kind for an X-GitHub-Event name; HL_EVENT_UNKNOWN when not handled. */
enum hl_event_kind hl_event_kind_from_name(const char *name);

/*
 * The name a delivery is stored and counted under (deliveries.event_name,
 * healer_deliveries{event}, /api/status by_event): name itself when it is
 * one of GitHub's webhook events, else "other" (its X-GitHub-Event stays in
 * the stored headers). Any well-formed header is accepted, so without this
 * every made-up name would be a new series and a new status key.
 */
const char *hl_event_stored_name(const char *name);

/*
 * True for the CI conclusions healer remediates: "failure", "timed_out" (a
 * hung test or a runner limit is still a failure to fix; classification
 * decides whether it is an infrastructure problem) and "startup_failure"
 * (workflow_run: the workflow file itself is broken). "cancelled",
 * "skipped", "neutral", "stale" and "action_required" are not failures.
 */
bool hl_event_conclusion_is_failure(const char *conclusion);

/*
 * Finds the first /healer command in a PR comment body. A command is a line
 * that starts (after at most three spaces) with "/healer" in any case, then
 * whitespace and one of fix / retry / status / stop (any case) ending at
 * whitespace or the end of the line; "/healerfix", "please /healer fix" and
 * lines inside fenced or indented code blocks are not commands. For fix and
 * retry, *hint_out gets the rest of that line trimmed (malloc'd, NULL when
 * empty); status and stop ignore trailing text. body may be NULL. hint_out may be
 * NULL. Returns 0 or -HL_ENOMEM.
 */
int hl_event_parse_command(enum hl_comment_command *out, char **hint_out, const char *body);

#endif
