/*
 * notifyprobe.c - a test-only command line over src/notify, driven by the
 * Python integration tests against the Discord and Slack stand-ins, a real
 * SMTP server (aiosmtpd) and the GitHub stub. The report comes as JSON on
 * stdin (the fields of struct hl_notify_report, attempts as objects).
 *
 *   notifyprobe build discord|slack|github|status      payload on stdout
 *   notifyprobe build email FROM TO [KEY]              the message on stdout
 *   notifyprobe refusal AUTHOR ASSOCIATION ALLOWED     the reply on stdout
 *   notifyprobe send discord|slack URL                 build, send once
 *   notifyprobe send email SMTP_URL FROM TO
 *   notifyprobe send github REPO NUMBER                (GITHUB_API_URL, GITHUB_TOKEN)
 *   notifyprobe send-raw discord|slack URL             stdin is the payload itself
 *
 * A send prints {"result", "code", "error", "message", "retry_after_ms",
 * "hold_ms", "elapsed_ms"}. NOTIFY_TIMEOUT_MS, NOTIFY_CA_FILE, SMTP_USER,
 * SMTP_PASSWORD and NOTIFY_NO_RATE_WAIT (set: no_rate_wait) set the send
 * options; NOTIFY_GITHUB_MARKER sets the GitHub
 * marker (also appended to the comment, as the outbox does) and
 * NOTIFY_GITHUB_SINCE_MS its lookup's start. A library error prints {"error":
 * name, "message": text} and exits 1.
 */
#include "base/buf.h"
#include "base/file.h"
#include "net/fetch.h"
#include "net/github.h"
#include "notify/notify.h"

#include "json/json.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
probe_fail(const struct hl_err *err)
{
	json_t *o = json_pack("{s:s, s:s}", "error", hl_err_name(err->code), "message", err->msg);
	char *s = json_dumps(o, JSON_COMPACT);

	printf("%s\n", s);
	free(s);
	json_decref(o);
	return 1;
}

static int
probe_stdin(struct hl_buf *b)
{
	struct hl_err err = HL_ERR_INIT;

	if (hl_file_read(b, "-", &err) < 0) {
		fprintf(stderr, "notifyprobe: stdin: %s\n", err.msg);
		return -1;
	}
	return 0;
}

/* Fills r from the JSON document in (borrowed strings). */
static int
probe_report(struct hl_notify_report *r, struct hl_notify_attempt **atts, json_t **doc)
{
	struct hl_buf b = HL_BUF_INIT(0);
	struct hl_err err = HL_ERR_INIT;
	json_t *in = NULL, *arr, *a;
	size_t i;

	memset(r, 0, sizeof(*r));
	*atts = NULL;
	if (probe_stdin(&b) < 0 || hl_json_parse(&in, b.data, b.len, &err) < 0) {
		fprintf(stderr, "notifyprobe: report: %s\n", err.msg);
		hl_buf_release(&b);
		return -1;
	}
	hl_buf_release(&b);
	r->kind = strcmp(hl_json_str_or(in, "kind", "escalation"), "report") == 0
	                  ? HL_NOTIFY_REPORT
	                  : HL_NOTIFY_ESCALATION;
	r->task_id = hl_json_str(in, "task_id");
	r->repository = hl_json_str(in, "repository");
	r->workflow = hl_json_str(in, "workflow");
	r->job = hl_json_str(in, "job");
	r->branch = hl_json_str(in, "branch");
	r->run_url = hl_json_str(in, "run_url");
	r->pr_number = hl_json_int(in, "pr_number", 0);
	r->pr_url = hl_json_str(in, "pr_url");
	r->failure_type = hl_json_str(in, "failure_type");
	r->evidence = hl_json_str(in, "evidence");
	r->task_url = hl_json_str(in, "task_url");
	r->state = hl_json_str(in, "state");
	r->max_attempts = (int)hl_json_int(in, "max_attempts", 0);
	r->time_ms = hl_json_int(in, "time_ms", 0);
	arr = json_object_get(in, "attempts");
	r->n_attempts = json_array_size(arr);
	*atts = calloc(r->n_attempts ? r->n_attempts : 1, sizeof(**atts));
	if (!*atts) {
		json_decref(in);
		return -1;
	}
	json_array_foreach(arr, i, a)
	{
		struct hl_notify_attempt *t = &(*atts)[i];

		t->number = (int)hl_json_int(a, "number", (int64_t)i + 1);
		t->agent = hl_json_str(a, "agent");
		t->coderun = hl_json_str(a, "coderun");
		t->outcome = hl_json_str(a, "outcome");
		t->reason = hl_json_str(a, "reason");
		t->status_message = hl_json_str(a, "status_message");
		t->pr_url = hl_json_str(a, "pr_url");
		t->started_ms = hl_json_int(a, "started_ms", 0);
		t->finished_ms = hl_json_int(a, "finished_ms", 0);
	}
	r->attempts = *atts;
	*doc = in;
	return 0;
}

static void
probe_opts(struct hl_notify_opts *o)
{
	memset(o, 0, sizeof(*o));
	if (getenv("NOTIFY_TIMEOUT_MS"))
		o->timeout_ms = atoll(getenv("NOTIFY_TIMEOUT_MS"));
	o->ca_file = getenv("NOTIFY_CA_FILE");
	o->smtp_user = getenv("SMTP_USER");
	o->smtp_password = getenv("SMTP_PASSWORD");
	o->github_marker = getenv("NOTIFY_GITHUB_MARKER");
	o->no_rate_wait = getenv("NOTIFY_NO_RATE_WAIT") != NULL;
	if (getenv("NOTIFY_GITHUB_SINCE_MS"))
		o->github_since_ms = atoll(getenv("NOTIFY_GITHUB_SINCE_MS"));
}

/* deferred: an email's recipients refused for now, or NULL */
static int
probe_result_deferred(const struct hl_notify_result *r, const char *deferred)
{
	json_t *o = json_pack("{s:s, s:I, s:s, s:s, s:I, s:I, s:I}", "result",
	                      hl_notify_status_name(r->status), "code", (json_int_t)r->code,
	                      "error", r->error, "message", r->message, "retry_after_ms",
	                      (json_int_t)r->retry_after_ms, "hold_ms", (json_int_t)r->hold_ms,
	                      "elapsed_ms", (json_int_t)r->elapsed_ms);
	char *s;

	if (deferred)
		json_object_set_new(o, "deferred", json_string(deferred));
	s = json_dumps(o, JSON_COMPACT);

	printf("%s\n", s ? s : "null");
	free(s);
	json_decref(o);
	return 0;
}

static int
probe_result(const struct hl_notify_result *r)
{
	return probe_result_deferred(r, NULL);
}

static int
probe_build(int argc, char **argv, const struct hl_notify_report *r, char **out, size_t *len,
            struct hl_err *err)
{
	const char *ch = argv[0];
	int ret;

	if (strcmp(ch, "discord") == 0)
		ret = hl_notify_discord_build(out, r, err);
	else if (strcmp(ch, "slack") == 0)
		ret = hl_notify_slack_build(out, r, err);
	else if (strcmp(ch, "github") == 0)
		ret = hl_notify_github_build(out, r, err);
	else if (strcmp(ch, "status") == 0)
		ret = hl_notify_github_status(out, r, err);
	else if (strcmp(ch, "email") == 0 && argc >= 3) {
		struct hl_notify_email_hdr h = { argv[1], argv[2], argc >= 4 ? argv[3] : NULL };

		return hl_notify_email_build(out, len, r, &h, err);
	} else
		return hl_err_set(err, HL_EINVAL, "unknown channel '%s'", ch);
	if (ret == 0)
		*len = strlen(*out);
	return ret;
}

int
main(int argc, char **argv)
{
	struct hl_err err = HL_ERR_INIT;
	struct hl_notify_report r;
	struct hl_notify_attempt *atts = NULL;
	struct hl_notify_result res;
	struct hl_notify_opts opts;
	json_t *doc = NULL;
	char *text = NULL;
	size_t len = 0;
	int ret = 2;

	hl_fetch_global_init();
	probe_opts(&opts);
	if (argc >= 5 && strcmp(argv[1], "refusal") == 0) {
		if (hl_notify_github_refusal(&text, argv[2], argv[3], argv[4], &err) < 0)
			return probe_fail(&err);
		fputs(text, stdout);
		free(text);
		return 0;
	}
	if (argc >= 4 && strcmp(argv[1], "send-raw") == 0) {
		struct hl_buf b = HL_BUF_INIT(0);

		if (probe_stdin(&b) < 0)
			return 2;
		if (strcmp(argv[2], "discord") == 0)
			ret = hl_notify_discord_send(&res, argv[3], b.data, b.len, &opts, &err);
		else
			ret = hl_notify_slack_send(&res, argv[3], b.data, b.len, &opts, &err);
		hl_buf_release(&b);
		return ret < 0 ? probe_fail(&err) : probe_result(&res);
	}
	if (argc < 3 || (strcmp(argv[1], "build") != 0 && strcmp(argv[1], "send") != 0)) {
		fprintf(stderr, "usage: notifyprobe build|send|send-raw|refusal ...\n");
		return 2;
	}
	if (probe_report(&r, &atts, &doc) < 0)
		return 2;
	if (strcmp(argv[1], "build") == 0) {
		ret = probe_build(argc - 2, argv + 2, &r, &text, &len, &err);
		if (ret < 0) {
			ret = probe_fail(&err);
		} else {
			fwrite(text, 1, len, stdout);
			ret = 0;
		}
	} else if (strcmp(argv[2], "discord") == 0 && argc == 4) {
		ret = hl_notify_discord_build(&text, &r, &err);
		if (ret == 0)
			ret = hl_notify_discord_send(&res, argv[3], text, strlen(text), &opts,
			                             &err);
		ret = ret < 0 ? probe_fail(&err) : probe_result(&res);
	} else if (strcmp(argv[2], "slack") == 0 && argc == 4) {
		ret = hl_notify_slack_build(&text, &r, &err);
		if (ret == 0)
			ret = hl_notify_slack_send(&res, argv[3], text, strlen(text), &opts, &err);
		ret = ret < 0 ? probe_fail(&err) : probe_result(&res);
	} else if (strcmp(argv[2], "email") == 0 && argc == 6) {
		struct hl_notify_email_hdr h = { argv[4], argv[5], r.task_id };
		struct hl_buf deferred = HL_BUF_INIT(0);

		opts.smtp_deferred = &deferred;
		ret = hl_notify_email_build(&text, &len, &r, &h, &err);
		if (ret == 0)
			ret = hl_notify_email_send(&res, argv[3], argv[4], argv[5], text, len,
			                           &opts, &err);
		ret = ret < 0 ? probe_fail(&err)
		              : probe_result_deferred(&res, deferred.len ? deferred.data : NULL);
		hl_buf_release(&deferred);
	} else if (strcmp(argv[2], "github") == 0 && argc == 5) {
		struct hl_github *gh = NULL;

		ret = hl_github_new_with(&gh, getenv("GITHUB_API_URL"), getenv("GITHUB_TOKEN"),
		                         NULL, NULL, NULL, &err);
		if (ret == 0)
			ret = hl_notify_github_build(&text, &r, &err);
		if (ret == 0 && opts.github_marker) {
			char *marked = malloc(strlen(text) + strlen(opts.github_marker) + 2);

			if (!marked) {
				ret = hl_err_set(&err, HL_ENOMEM, "out of memory");
			} else {
				sprintf(marked, "%s\n%s", text, opts.github_marker);
				free(text);
				text = marked;
			}
		}
		if (ret == 0)
			ret = hl_notify_github_send(&res, gh, argv[3], atoll(argv[4]), text, &opts,
			                            &err);
		hl_github_free(gh);
		ret = ret < 0 ? probe_fail(&err) : probe_result(&res);
	} else {
		fprintf(stderr, "notifyprobe send: bad arguments\n");
		ret = 2;
	}
	free(text);
	free(atts);
	json_decref(doc);
	return ret;
}
