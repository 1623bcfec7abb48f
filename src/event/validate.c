/*
 * validate.c - decides whether a normalized event is worth any work
 * (hl_event_skip_reason) and computes the key that recognizes the same
 * real-world event delivered twice (hl_event_dedup_key).
 *
 * Both functions read only struct hl_event and the configuration: no JSON,
 * no I/O, no allocation except the returned key, so they are cheap enough to
 * run on the request path before anything is queued. Thread-safe.
 */
#include "base/buf.h"
#include "base/str.h"
#include "event/event.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static bool
event_eq(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

static bool
event_one_of(const char *s, const char *const *set)
{
	for (; s && *set; set++)
		if (strcmp(s, *set) == 0)
			return true;
	return false;
}

bool
hl_event_is_remediation_action(const char *identifier)
{
	static const char *const known[] = { "remediate", "rex_remediate", "fix_issues", NULL };

	return identifier &&
	       (event_one_of(identifier, known) || hl_str_starts_with(identifier, "healer"));
}

/* Is the event's action one healer reacts to (or tracks)? */
static bool
event_action_of_interest(const struct hl_event *ev)
{
	static const char *const completed[] = { "completed", NULL };
	static const char *const check_run[] = { "completed", "requested_action", NULL };
	static const char *const alert[] = { "created", "reopened", NULL };
	/* Dependabot reopens an alert itself too: a fixed one a manifest
	 * change brought back, an auto-dismissed one no longer dismissed */
	static const char *const dependabot_alert[] = { "created", "reopened", "reintroduced",
		                                        "auto_reopened", NULL };
	static const char *const code_alert[] = { "created", "reopened", "reopened_by_user", NULL };
	static const char *const repo_alert[] = { "create", "reopen", NULL };
	static const char *const comment[] = { "created", NULL };
	static const char *const pr[] = { "opened", "reopened", "synchronize", "closed", NULL };
	static const char *const review[] = { "submitted", "dismissed", NULL };
	static const char *const merge_group[] = { "checks_requested", "destroyed", NULL };

	switch (ev->kind) {
	case HL_EVENT_WORKFLOW_JOB:
	case HL_EVENT_WORKFLOW_RUN:
	case HL_EVENT_CHECK_SUITE:
		return event_one_of(ev->action, completed);
	case HL_EVENT_CHECK_RUN:
		if (event_eq(ev->action, "requested_action"))
			return hl_event_is_remediation_action(ev->requested_action);
		return event_one_of(ev->action, check_run);
	case HL_EVENT_DEPENDABOT_ALERT:
		return event_one_of(ev->action, dependabot_alert);
	case HL_EVENT_SECRET_SCANNING_ALERT:
		return event_one_of(ev->action, alert);
	case HL_EVENT_CODE_SCANNING_ALERT:
		return event_one_of(ev->action, code_alert);
	case HL_EVENT_REPOSITORY_VULNERABILITY_ALERT:
		return event_one_of(ev->action, repo_alert);
	case HL_EVENT_ISSUE_COMMENT:
	case HL_EVENT_PULL_REQUEST_REVIEW_COMMENT:
		return event_one_of(ev->action, comment);
	case HL_EVENT_PULL_REQUEST:
		return event_one_of(ev->action, pr);
	case HL_EVENT_PULL_REQUEST_REVIEW:
		return event_one_of(ev->action, review);
	case HL_EVENT_MERGE_GROUP:
		return event_one_of(ev->action, merge_group);
	case HL_EVENT_PUSH:
		/* Branch pushes only; a tag push has no branch. */
		return ev->branch != NULL;
	case HL_EVENT_STATUS:
		/* No action; the state decides (not_failure below). */
		return true;
	default:
		return false;
	}
}

static bool
event_is_ci_kind(enum hl_event_kind kind)
{
	return kind == HL_EVENT_WORKFLOW_JOB || kind == HL_EVENT_WORKFLOW_RUN ||
	       kind == HL_EVENT_CHECK_RUN || kind == HL_EVENT_CHECK_SUITE ||
	       kind == HL_EVENT_STATUS;
}

bool
hl_event_has_skip_tag(const char *msg)
{
	/* [skip-ci-remediation] is the tag the original's sensor honoured. */
	return msg &&
	       (hl_str_casestr(msg, "[skip-healer]") || hl_str_casestr(msg, "[healer skip]") ||
	        hl_str_casestr(msg, "[skip-ci-remediation]"));
}

bool
hl_event_skip_starts_nothing(const struct hl_event *ev, const char *reason)
{
	return ev && ev->intent == HL_INTENT_CI_FAILURE && reason &&
	       (strcmp(reason, "bot_sender") == 0 || strcmp(reason, "skip_tag") == 0);
}

const char *
hl_event_skip_reason(const struct hl_event *ev, const struct hl_config *cfg)
{
	if (ev->kind == HL_EVENT_PING)
		return "ping";
	if (ev->kind <= HL_EVENT_UNKNOWN || ev->kind >= HL_EVENT_KIND_MAX)
		return "event_not_handled";
	if (!event_action_of_interest(ev))
		return "action_not_handled";
	if (!hl_config_repo_allowed(cfg, ev->repository))
		return "repository_not_allowed";
	/* a GitHub App's webhook brings every installation's events, signed
	 * alike: only the configured installation's are healer's */
	if (ev->installation_id > 0 && cfg->github_app_installation_id &&
	    *cfg->github_app_installation_id &&
	    strtoll(cfg->github_app_installation_id, NULL, 10) != ev->installation_id)
		return "installation_not_allowed";

	switch (ev->intent) {
	case HL_INTENT_CI_FAILURE:
		if (ev->sender_is_bot && !cfg->process_bot_commits)
			return "bot_sender";
		if (hl_event_has_skip_tag(ev->commit_message))
			return "skip_tag";
		return NULL;
	case HL_INTENT_TRACK:
		/* A completed CI object is tracked only when it succeeded;
		 * cancelled, skipped, neutral, ... carry no news. */
		if (event_is_ci_kind(ev->kind) && !event_eq(ev->conclusion, "success"))
			return "not_failure";
		return NULL;
	case HL_INTENT_SECURITY:
		if (ev->alert_state && strcmp(ev->alert_state, "open") != 0)
			return "alert_not_open";
		return NULL;
	case HL_INTENT_COMMAND:
		/* a bot's /healer command is never obeyed (contract section 9),
		 * whatever HEALER_PROCESS_BOT_COMMITS says: agents comment on PRs,
		 * and one quoting a command would start another attempt */
		if (ev->sender_is_bot)
			return "bot_sender";
		return NULL;
	case HL_INTENT_ACTION:
		if (ev->sender_is_bot && !cfg->process_bot_commits)
			return "bot_sender";
		return NULL;
	case HL_INTENT_NONE:
		if (ev->kind == HL_EVENT_ISSUE_COMMENT ||
		    ev->kind == HL_EVENT_PULL_REQUEST_REVIEW_COMMENT)
			return "no_command";
		return "event_not_handled";
	}
	return "event_not_handled";
}
