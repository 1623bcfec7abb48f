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
	HL_INTENT_COMMAND,    /* a /healer command in a PR comment */
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
	int64_t job_id; /* workflow job id */
	int64_t check_run_id;
	int64_t check_suite_id;
	char *workflow_name;
	char *job_name;    /* job or check run name */
	char *failed_step; /* first step whose conclusion is failure */
	char *status;      /* queued / in_progress / completed; status event state */
	char *conclusion;  /* failure / success / ...; status events: state */
	char *branch;      /* head branch */
	char *base_branch; /* PR base, when known */
	char *head_sha;
	char *commit_message; /* head commit message, only where GitHub sends it */
	char *html_url;       /* the job / run / check / alert page */
	char *logs_url;       /* workflow_run.logs_url */
	char *check_output_title, *check_output_summary, *check_output_text;
	int64_t pr_number; /* the PR concerned, 0 when unknown */
	char *pr_title;

	/* security alerts */
	int64_t alert_number;
	char *alert_state;
	char *severity; /* critical / high / medium / low / ... */
	char *package_name;
	char *package_ecosystem;
	char *manifest_path;
	char *vulnerable_range;
	char *fixed_version;
	char *cve_id;
	char *ghsa_id;
	char *summary; /* advisory summary / rule description */
	char *description;
	char *rule_id;       /* code scanning rule */
	char *tool_name;     /* code scanning tool */
	char *location_path; /* code scanning most_recent_instance.location.path */
	char *secret_type;   /* secret scanning */

	/* issue_comment commands and requested actions */
	enum hl_comment_command command;
	char *command_hint; /* text after "/healer fix" */
	char *comment_body;
	int64_t comment_id;
	char *requested_action; /* check_run requested_action.identifier */
	char *review_state;     /* pull_request_review */
	int64_t review_id;      /* pull_request_review review.id */
};

/*
 * Normalizes a payload delivered as event_name (X-GitHub-Event). Unknown
 * event names fail with HL_EUNSUPPORTED; payloads missing what the event
 * requires (e.g. workflow_job without workflow_job) fail with HL_EINVAL.
 */
int hl_event_normalize(struct hl_event **out, const char *event_name, const json_t *payload,
                       struct hl_err *err);

/*
 * Guesses the event name of a sensor payload that arrives without an
 * X-GitHub-Event header (the /api/remediate/ routes): "workflow_run", "workflow_job",
 * "check_run", or for alerts "dependabot_alert", "code_scanning_alert",
 * "secret_scanning_alert", "repository_vulnerability_alert". NULL if unknown.
 */
const char *hl_event_guess_name(const json_t *payload);

/*
 * Validation before any work. Returns NULL when the event should be
 * processed, else a stable reason code: "event_not_handled",
 * "action_not_handled", "not_failure", "repository_not_allowed",
 * "bot_sender", "skip_tag", "alert_not_open", "no_command", "ping".
 */
const char *hl_event_skip_reason(const struct hl_event *ev, const struct hl_config *cfg);

/*
 * The key that identifies the same real-world event across deliveries (an
 * org hook and a repo hook, or a sensor retry): repository + run id + job id
 * / check run id / alert number + action. Malloc'd; NULL for events without
 * a stable identity (then the delivery id alone deduplicates).
 */
char *hl_event_dedup_key(const struct hl_event *ev);

/* The normalized event as JSON with stable keys (golden tests, the store). */
json_t *hl_event_to_json(const struct hl_event *ev);

const char *hl_event_kind_name(enum hl_event_kind kind);
const char *hl_event_intent_name(enum hl_event_intent intent);
const char *hl_comment_command_name(enum hl_comment_command cmd);

void hl_event_free(struct hl_event *ev);

/* The kind for an X-GitHub-Event name; HL_EVENT_UNKNOWN when not handled. */
enum hl_event_kind hl_event_kind_from_name(const char *name);

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
 * lines inside fenced or indented code blocks are not commands. For fix,
 * *hint_out gets the rest of that line trimmed (malloc'd, NULL when empty);
 * other commands ignore trailing text. body may be NULL. hint_out may be
 * NULL. Returns 0 or -HL_ENOMEM.
 */
int hl_event_parse_command(enum hl_comment_command *out, char **hint_out, const char *body);

#endif
