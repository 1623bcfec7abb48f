/*
 * identity.c - what makes two deliveries the same event, two events the
 * same failure, and what a remediation is called: the dedup key, the
 * failure key, the remediation key and the task id (see event.h).
 * Computed once, at intake, and stored with the delivery; the worker and
 * the remediator read them from the store and never derive their own.
 */
#include "base/buf.h"
#include "crypto/hmac.h"
#include "event/event.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* Appends "|name=value" for non-zero ids. */
static void
event_key_id(struct hl_buf *b, const char *name, int64_t v)
{
	if (v) {
		hl_buf_append_char(b, '|');
		hl_buf_append_str(b, name);
		hl_buf_append_char(b, '=');
		hl_buf_append_i64(b, v);
	}
}

/* Appends "|name=value" with '%' and '|' percent-encoded, so a value can
 * never forge a separator (check run identifiers, status contexts and
 * branch names may contain '|'). */
static void
event_key_str(struct hl_buf *b, const char *name, const char *v)
{
	if (!v)
		return;
	hl_buf_appendf(b, "|%s=", name);
	for (; *v; v++) {
		if (*v == '%' || *v == '|')
			hl_buf_appendf(b, "%%%02X", (unsigned char)*v);
		else
			hl_buf_append_char(b, *v);
	}
}

char *
hl_event_dedup_key(const struct hl_event *ev)
{
	struct hl_buf b = HL_BUF_INIT(0);
	const char *p;
	bool ok;

	if (!ev->repository || !*ev->repository)
		return NULL;
	switch (ev->kind) {
	case HL_EVENT_WORKFLOW_JOB:
		ok = ev->job_id != 0;
		break;
	case HL_EVENT_WORKFLOW_RUN:
		ok = ev->run_id != 0;
		break;
	case HL_EVENT_CHECK_RUN:
		ok = ev->check_run_id != 0;
		break;
	case HL_EVENT_CHECK_SUITE:
		ok = ev->check_suite_id != 0;
		break;
	case HL_EVENT_STATUS:
		ok = ev->head_sha && ev->job_name && ev->conclusion;
		break;
	case HL_EVENT_PULL_REQUEST:
		ok = ev->pr_number != 0;
		break;
	case HL_EVENT_PUSH:
		ok = ev->branch && ev->head_sha;
		break;
	case HL_EVENT_ISSUE_COMMENT:
	case HL_EVENT_PULL_REQUEST_REVIEW_COMMENT:
		ok = ev->comment_id != 0;
		break;
	case HL_EVENT_PULL_REQUEST_REVIEW:
		ok = ev->review_id != 0;
		break;
	case HL_EVENT_MERGE_GROUP:
		ok = ev->head_sha != NULL;
		break;
	case HL_EVENT_DEPENDABOT_ALERT:
	case HL_EVENT_CODE_SCANNING_ALERT:
	case HL_EVENT_SECRET_SCANNING_ALERT:
	case HL_EVENT_REPOSITORY_VULNERABILITY_ALERT:
		ok = ev->alert_number != 0;
		break;
	default:
		ok = false;
		break;
	}
	if (!ok)
		return NULL;

	for (p = ev->repository; *p; p++)
		hl_buf_append_char(&b, (char)tolower((unsigned char)*p));
	hl_buf_appendf(&b, "|%s", hl_event_kind_name(ev->kind));
	switch (ev->kind) {
	case HL_EVENT_WORKFLOW_JOB:
	case HL_EVENT_WORKFLOW_RUN:
		event_key_id(&b, "run", ev->run_id);
		event_key_id(&b, "attempt", ev->run_attempt);
		event_key_id(&b, "job", ev->job_id);
		break;
	case HL_EVENT_CHECK_RUN:
		event_key_id(&b, "check_run", ev->check_run_id);
		event_key_str(&b, "requested", ev->requested_action);
		break;
	case HL_EVENT_CHECK_SUITE:
		event_key_id(&b, "check_suite", ev->check_suite_id);
		break;
	case HL_EVENT_STATUS:
		event_key_str(&b, "sha", ev->head_sha);
		event_key_str(&b, "context", ev->job_name);
		event_key_str(&b, "state", ev->conclusion);
		break;
	case HL_EVENT_PULL_REQUEST:
		event_key_id(&b, "pr", ev->pr_number);
		event_key_str(&b, "sha", ev->head_sha);
		break;
	case HL_EVENT_PUSH:
		event_key_str(&b, "branch", ev->branch);
		event_key_str(&b, "sha", ev->head_sha);
		break;
	case HL_EVENT_ISSUE_COMMENT:
	case HL_EVENT_PULL_REQUEST_REVIEW_COMMENT:
		event_key_id(&b, "comment", ev->comment_id);
		break;
	case HL_EVENT_PULL_REQUEST_REVIEW:
		event_key_id(&b, "review", ev->review_id);
		break;
	case HL_EVENT_MERGE_GROUP:
		event_key_str(&b, "sha", ev->head_sha);
		break;
	default:
		/* each change of the alert is an event: a second reopening too */
		event_key_id(&b, "alert", ev->alert_number);
		event_key_str(&b, "at", ev->alert_updated_at);
		break;
	}
	event_key_str(&b, "action", ev->action);
	return hl_buf_detach(&b, NULL);
}

char *
hl_event_failure_key(const struct hl_event *ev)
{
	struct hl_buf b = HL_BUF_INIT(0);
	const char *p;

	if (!ev->repository || !*ev->repository || ev->intent != HL_INTENT_CI_FAILURE)
		return NULL;
	for (p = ev->repository; *p; p++)
		hl_buf_append_char(&b, (char)tolower((unsigned char)*p));
	if (ev->job_id) {
		event_key_id(&b, "job", ev->job_id);
	} else if (ev->kind == HL_EVENT_WORKFLOW_RUN && ev->run_id) {
		event_key_id(&b, "run", ev->run_id);
		event_key_id(&b, "attempt", ev->run_attempt);
	} else if (ev->check_run_id) {
		event_key_id(&b, "check_run", ev->check_run_id);
	} else if (ev->check_suite_id) {
		event_key_id(&b, "check_suite", ev->check_suite_id);
	} else if (ev->kind == HL_EVENT_STATUS && ev->head_sha && ev->job_name) {
		event_key_str(&b, "status", ev->head_sha);
		event_key_str(&b, "context", ev->job_name);
	} else {
		hl_buf_release(&b);
		return NULL;
	}
	return hl_buf_detach(&b, NULL);
}

bool
hl_event_is_alert(const struct hl_event *ev)
{
	switch (ev->kind) {
	case HL_EVENT_DEPENDABOT_ALERT:
	case HL_EVENT_CODE_SCANNING_ALERT:
	case HL_EVENT_SECRET_SCANNING_ALERT:
	case HL_EVENT_REPOSITORY_VULNERABILITY_ALERT:
		return ev->intent == HL_INTENT_SECURITY && ev->alert_number != 0 &&
		       ev->repository && *ev->repository;
	default:
		return false;
	}
}

char *
hl_event_remediation_key(const struct hl_event *ev)
{
	struct hl_buf b = HL_BUF_INIT(4096);
	const char *p;
	char *key;

	if (ev->intent == HL_INTENT_CI_FAILURE)
		return hl_event_failure_key(ev);
	/* one alert, whatever happened to it (created, reopened...): its
	 * deliveries are one remediation while a task for it is open */
	if (hl_event_is_alert(ev)) {
		for (p = ev->repository; *p; p++)
			hl_buf_append_char(&b, (char)tolower((unsigned char)*p));
		hl_buf_appendf(&b, "|%s", hl_event_kind_name(ev->kind));
		event_key_id(&b, "alert", ev->alert_number);
		return hl_buf_detach(&b, NULL);
	}
	key = hl_event_dedup_key(ev);
	if (key)
		return key;
	hl_buf_appendf(&b, "%s|%s|%lld", ev->repository ? ev->repository : "",
	               hl_event_kind_name(ev->kind), (long long)ev->alert_number);
	return hl_buf_detach(&b, NULL);
}

char *
hl_event_intake_key(const struct hl_event *ev)
{
	char *key;

	/* one failure, whichever event reported it: a job's workflow_job and
	 * its check run are one delivery's duplicates, with one task */
	if (ev->intent == HL_INTENT_CI_FAILURE && (key = hl_event_failure_key(ev)) != NULL)
		return key;
	return hl_event_dedup_key(ev);
}

int
hl_event_task_id(char *out, size_t size, const char *identity)
{
	char hex[HL_SHA256_HEX_LEN + 1];

	if (!identity || !*identity || hl_sha256_hex(hex, identity, strlen(identity)) < 0)
		return -HL_EINVAL;
	hex[20] = '\0';
	if ((size_t)snprintf(out, size, "hl-%s", hex) >= size)
		return -HL_ETOOBIG;
	return 0;
}

bool
hl_event_remediable(const struct hl_event *ev)
{
	return ev->intent == HL_INTENT_CI_FAILURE || ev->intent == HL_INTENT_SECURITY ||
	       ev->intent == HL_INTENT_COMMAND || ev->intent == HL_INTENT_ACTION;
}
