/*
 * event_json.c - struct hl_event as a JSON object with stable snake_case
 * keys (the field names of the struct), for golden files and the store,
 * and back (hl_event_from_json: the loop rebuilds a task's event from the
 * store). One table lists the fields, so both directions agree.
 *
 * Only fields the payload carried are written: NULL strings and zero ids
 * are left out, sender_is_bot only when true, command only when set. kind
 * and intent are always present. Keys are emitted in a fixed order; callers
 * that need byte-stable text dump with sorted keys (hl_json_dump_sorted).
 */
#include "base/log.h"
#include "base/str.h"
#include "event/event.h"

#include "json/json.h"
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

enum ev_type { EV_TYPE_STR, EV_TYPE_INT };

static const struct ev_field {
	const char *key;
	enum ev_type type;
	size_t off;
	/* a value GitHub enumerates or builds (an action, a state, a login, a
	 * URL of its own), which decides what healer does with the event */
	bool control;
} ev_fields[] = {
/* The sizeof(char[...]) terms fail to compile when a field's type does
 * not match its entry. */
#define EV_CHECK(f, size) (0 * sizeof(char[sizeof(((struct hl_event *)0)->f) == (size) ? 1 : -1]))
#define EV_STR(f)                                                                           \
	{                                                                                   \
#f, EV_TYPE_STR, offsetof(struct hl_event, f) + EV_CHECK(f, sizeof(char *)) \
	}
#define EV_CTRL(f)                                                                                \
	{                                                                                         \
#f, EV_TYPE_STR, offsetof(struct hl_event, f) + EV_CHECK(f, sizeof(char *)), true \
	}
#define EV_INT(f)                                                                            \
	{                                                                                    \
#f, EV_TYPE_INT, offsetof(struct hl_event, f) + EV_CHECK(f, sizeof(int64_t)) \
	}
	EV_STR(event_name),
	EV_CTRL(action),
	EV_STR(repository),
	EV_CTRL(repository_url),
	EV_CTRL(default_branch),
	EV_CTRL(sender),
	EV_INT(installation_id),
	EV_INT(run_id),
	EV_INT(run_attempt),
	EV_INT(job_id),
	EV_INT(check_run_id),
	EV_INT(check_suite_id),
	EV_STR(workflow_name),
	EV_STR(job_name),
	EV_STR(failed_step),
	EV_CTRL(status),
	EV_CTRL(conclusion),
	EV_STR(branch),
	EV_STR(base_branch),
	EV_STR(head_sha),
	EV_STR(head_repository),
	EV_STR(commit_message),
	EV_CTRL(html_url),
	EV_CTRL(logs_url),
	EV_STR(check_output_title),
	EV_STR(check_output_summary),
	EV_STR(check_output_text),
	EV_INT(pr_number),
	EV_STR(pr_title),
	EV_INT(alert_number),
	EV_CTRL(alert_state),
	EV_CTRL(alert_updated_at),
	EV_CTRL(severity),
	EV_STR(package_name),
	EV_CTRL(package_ecosystem),
	EV_STR(manifest_path),
	EV_STR(vulnerable_range),
	EV_STR(fixed_version),
	EV_STR(cve_id),
	EV_STR(ghsa_id),
	EV_STR(summary),
	EV_STR(description),
	EV_STR(rule_id),
	EV_STR(tool_name),
	EV_STR(location_path),
	EV_CTRL(secret_type),
	EV_STR(command_hint),
	EV_STR(comment_body),
	EV_INT(comment_id),
	EV_CTRL(author_association),
	EV_CTRL(requested_action),
	EV_CTRL(review_state),
	EV_INT(review_id),
#undef EV_STR
#undef EV_CTRL
#undef EV_INT
#undef EV_CHECK
};

#define EV_N_FIELDS (sizeof(ev_fields) / sizeof(ev_fields[0]))

/* Fields written before "sender_is_bot" and before "command", as the
 * model has always listed them. */
#define EV_BEFORE_BOT     "installation_id"
#define EV_BEFORE_COMMAND "command_hint"

static int
ev_put(json_t *o, const struct hl_event *ev, const struct ev_field *f)
{
	const char *base = (const char *)ev;

	if (f->type == EV_TYPE_STR) {
		const char *v = *(char *const *)(base + f->off);
		return v ? json_object_set_new(o, f->key, json_string(v)) : 0;
	} else {
		int64_t v = *(const int64_t *)(base + f->off);
		return v ? json_object_set_new(o, f->key, json_integer((json_int_t)v)) : 0;
	}
}

/* Secrets shorter than this redact outside text, never a name. */
#define EVENT_NAME_SECRET_MIN 8

/* A field that names what a CodeRun works on, when it is a name: an
 * owner/name, a branch git and a shell read as nothing more, a commit's
 * hex. */
static bool
event_name_field(const struct hl_event *ev, const struct ev_field *f)
{
	const char *v = *(char *const *)((const char *)ev + f->off);

	if (!v)
		return false;
	if (strcmp(f->key, "head_repository") == 0)
		return hl_str_github_repo_valid(v);
	if (strcmp(f->key, "branch") == 0 || strcmp(f->key, "base_branch") == 0)
		return hl_str_branch_safe(v);
	if (strcmp(f->key, "head_sha") == 0)
		return strspn(v, "0123456789abcdef") == strlen(v);
	return false;
}

int
hl_event_redact(struct hl_event *ev)
{
	char *base = (char *)ev;
	size_t i;

	for (i = 0; i < EV_N_FIELDS; i++) {
		const struct ev_field *f = &ev_fields[i];

		/* the kind's own name, and an owner/name already checked to be
		 * nothing but what GitHub allows */
		if (f->type != EV_TYPE_STR || strcmp(f->key, "event_name") == 0 ||
		    strcmp(f->key, "repository") == 0)
			continue;
		/* names a CodeRun is told to work on are kept whole unless
		 * they quote a real credential's length of one: a short secret
		 * ("test") would make feature/test-x a branch nobody has */
		/* so are the values GitHub enumerates or builds (a token "let"
		 * would make "completed" an action nobody sends) */
		if ((event_name_field(ev, f) || f->control) &&
		    !hl_log_quotes_secret(*(char **)(base + f->off), EVENT_NAME_SECRET_MIN))
			continue;
		if (hl_log_redact_str((char **)(base + f->off)) < 0)
			return -HL_ENOMEM;
	}
	return 0;
}

json_t *
hl_event_to_json(const struct hl_event *ev)
{
	json_t *o = json_object();
	size_t i;
	int rc = 0;

	if (!o)
		return NULL;
	rc |= json_object_set_new(o, "kind", json_string(hl_event_kind_name(ev->kind)));
	rc |= json_object_set_new(o, "intent", json_string(hl_event_intent_name(ev->intent)));
	for (i = 0; i < EV_N_FIELDS; i++) {
		const struct ev_field *f = &ev_fields[i];

		if (strcmp(f->key, EV_BEFORE_BOT) == 0 && ev->sender_is_bot)
			rc |= json_object_set_new(o, "sender_is_bot", json_true());
		if (strcmp(f->key, EV_BEFORE_COMMAND) == 0 && ev->command != HL_CMD_NONE)
			rc |= json_object_set_new(
			        o, "command", json_string(hl_comment_command_name(ev->command)));
		rc |= ev_put(o, ev, f);
	}
	if (rc) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int
ev_enum_from(const char *name, const char *(*namer)(int), int max)
{
	int i;

	for (i = 0; name && i < max; i++)
		if (strcmp(namer(i), name) == 0)
			return i;
	return 0;
}

static const char *
ev_kind_namer(int i)
{
	return hl_event_kind_name((enum hl_event_kind)i);
}

static const char *
ev_intent_namer(int i)
{
	return hl_event_intent_name((enum hl_event_intent)i);
}

static const char *
ev_command_namer(int i)
{
	return hl_comment_command_name((enum hl_comment_command)i);
}

int
hl_event_from_json(struct hl_event **out, const json_t *o, struct hl_err *err)
{
	struct hl_event *ev;
	size_t i;

	if (!json_is_object(o))
		return hl_err_set(err, HL_EINVAL, "an event must be a JSON object");
	ev = calloc(1, sizeof(*ev));
	if (!ev)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	ev->kind = (enum hl_event_kind)ev_enum_from(hl_json_str(o, "kind"), ev_kind_namer,
	                                            HL_EVENT_KIND_MAX);
	ev->intent = (enum hl_event_intent)ev_enum_from(hl_json_str(o, "intent"), ev_intent_namer,
	                                                HL_INTENT_TRACK + 1);
	ev->command = (enum hl_comment_command)ev_enum_from(hl_json_str(o, "command"),
	                                                    ev_command_namer, HL_CMD_STOP + 1);
	ev->sender_is_bot = hl_json_bool(o, "sender_is_bot", false);
	for (i = 0; i < EV_N_FIELDS; i++) {
		const struct ev_field *f = &ev_fields[i];
		char *base = (char *)ev;

		if (f->type == EV_TYPE_STR) {
			const char *v = hl_json_str(o, f->key);
			if (v && !(*(char **)(base + f->off) = strdup(v))) {
				hl_event_free(ev);
				return hl_err_set(err, HL_ENOMEM, "out of memory");
			}
		} else {
			*(int64_t *)(base + f->off) = hl_json_int(o, f->key, 0);
		}
	}
	*out = ev;
	return 0;
}
