/*
 * cmd_classify.c - `healer classify` and `healer check-rules` (contract
 * section 5).
 *
 * classify reads JSON Lines (a FILE or stdin) and writes one JSON object per
 * non-blank input line, in order; a line that is not a JSON object yields
 * {"id": null, "error": "..."} and the rest go on, and so does a line longer
 * than --max-line-bytes (64 MiB): it is never held whole, its bytes past the
 * cap are skipped. A case's raw webhook "payload" is read as the server
 * reads the same delivery (classify_payload). Each result has the keys
 * of contract section 5, then "confidence" (0-1); its "evidence" also has
 * "reason" (null when a log line supports the verdict, see classify.h). With --log FILE it
 * classifies one raw log file (read with pread through small windows, never
 * loaded whole; a pipe or "-" is read into memory) described by
 * --workflow/--job/--step/--changed-file/--event. --explain adds a readable
 * account: in --log mode it is printed instead of the JSON object, in JSON
 * Lines mode it is added to each output object as an "explain" string.
 * --dump-patterns (for benchmarks) prints every log pattern, one per line, in
 * a dialect ripgrep's -f accepts. Rules come from --rules FILE, else
 * HEALER_RULES_FILE, else the built-in rules/default.yaml.
 */
#include "base/buf.h"
#include "base/file.h"
#include "classify/classify.h"
#include "cmd.h"
#include "event/event.h"

#include "json/json.h"
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum {
	OPT_RULES = 1,
	OPT_EXPLAIN,
	OPT_LOG,
	OPT_WORKFLOW,
	OPT_JOB,
	OPT_STEP,
	OPT_CHANGED,
	OPT_EVENT,
	OPT_ARGO_SYNC,
	OPT_ARGO_HEALTH,
	OPT_DUMP,
	OPT_MAX_LINE,
};

/* A JSON Lines case longer than this is that line's error (the bytes past
 * it are skipped, never held): --max-line-bytes. */
#define CLASSIFY_MAX_LINE ((size_t)64 << 20)

/* The log text made of an event's own words when a case has no log: the
 * server's cap (remediate.c rem_classify). */
#define CLASSIFY_SYNTH_LOG_MAX ((size_t)1 << 20)

static const struct hl_opt classify_opts[] = {
	{ "rules", true, OPT_RULES },
	{ "explain", false, OPT_EXPLAIN },
	{ "log", true, OPT_LOG },
	{ "workflow", true, OPT_WORKFLOW },
	{ "job", true, OPT_JOB },
	{ "step", true, OPT_STEP },
	{ "changed-file", true, OPT_CHANGED },
	{ "event", true, OPT_EVENT },
	{ "argocd-sync", true, OPT_ARGO_SYNC },
	{ "argocd-health", true, OPT_ARGO_HEALTH },
	{ "dump-patterns", false, OPT_DUMP },
	{ "max-line-bytes", true, OPT_MAX_LINE },
	{ NULL, false, 0 },
};

/* Builds the output object of a verdict; id is borrowed (may be NULL). */
static json_t *
classify_result_json(json_t *id, const struct hl_verdict *v, bool explain)
{
	json_t *o = json_object();
	json_t *ev = json_object();

	if (o == NULL || ev == NULL) {
		json_decref(o);
		json_decref(ev);
		return NULL;
	}
	json_object_set(o, "id", id ? id : json_null());
	json_object_set_new(o, "agent", json_string(v->agent));
	json_object_set_new(o, "failure_type", json_string(v->failure_type));
	json_object_set_new(o, "category", json_string(v->category));
	json_object_set_new(o, "rule", json_string(v->rule));
	json_object_set_new(ev, "line_number", json_integer((json_int_t)v->evidence_line_number));
	json_object_set_new(ev, "line", json_string(v->evidence_line));
	json_object_set_new(ev, "reason",
	                    v->evidence_reason ? json_string(v->evidence_reason) : json_null());
	json_object_set_new(o, "evidence", ev);
	json_object_set_new(o, "confidence", json_real(v->confidence));
	if (explain) {
		struct hl_buf b = HL_BUF_INIT(0);
		if (hl_verdict_explain(&b, v) == 0)
			json_object_set_new(o, "explain", json_string(b.data));
		hl_buf_release(&b);
	}
	return o;
}

static int
classify_print_json(json_t *o)
{
	/* confidence has 2 decimals: print 0.7, not 0.69999999999999996 */
	char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
	if (s == NULL)
		return -1;
	fputs(s, stdout);
	fputc('\n', stdout);
	free(s);
	return 0;
}

static void
classify_print_error(json_t *id, const char *msg)
{
	json_t *o = json_object();
	if (o == NULL)
		return;
	json_object_set(o, "id", id ? id : json_null());
	json_object_set_new(o, "error", json_string(msg));
	classify_print_json(o);
	json_decref(o);
}

/* Reads an optional string field; false (with msg) when it has another type. */
static bool
classify_opt_str(const json_t *obj, const char *key, const char **out, char *msg, size_t msz)
{
	json_t *v = json_object_get(obj, key);
	*out = NULL;
	if (v == NULL || json_is_null(v))
		return true;
	if (!json_is_string(v)) {
		snprintf(msg, msz, "field '%s' must be a string", key);
		return false;
	}
	*out = json_string_value(v);
	return true;
}

/* True when an optional case field is absent, null or "" (contract
 * section 5: missing fields are empty). */
static bool
classify_empty(const char *s)
{
	return s == NULL || *s == '\0';
}

/*
 * Fills what a case leaves empty from its raw webhook payload, as the
 * server builds the classifier's input from the same delivery
 * (remediate.c rem_classify; keep the two in step): the payload is
 * normalized (hl_event_normalize) as the event the case names, else the
 * one the sensor route guesses from it (hl_event_guess_name); the event
 * gives the event kind, workflow, job and failed step, and, when the case
 * has no log, the check run output (title, summary, text), a command's
 * hint and an alert's summary and description as log text. What the
 * server takes from outside the payload (a job's log, the PR's changed
 * files, ArgoCD's status) only the case can say; ArgoCD's status is read
 * from an ArgoCD payload as well. Explicit case fields win.
 *
 * A payload that is not a GitHub event healer knows (no event named or
 * guessed, or a name hl_event_normalize does not handle, e.g. an ArgoCD
 * notification) is only read for ArgoCD's status and the run and job
 * names. A payload the server would refuse (the named or guessed event's
 * object or repository.full_name missing, ...) makes the line malformed
 * (contract section 5): returns -1 with msg set. -2 when out of memory.
 * *ev and synth hold what in borrows; the caller frees them.
 */
static int
classify_payload(struct hl_classify_input *in, const json_t *payload, struct hl_event **ev,
                 struct hl_buf *synth, char *msg, size_t msz)
{
	struct hl_err err = HL_ERR_INIT;
	const char *name = classify_empty(in->event) ? hl_event_guess_name(payload) : in->event;

	if (in->argocd_sync == NULL)
		in->argocd_sync = hl_json_str(payload, "application.status.sync.status");
	if (in->argocd_sync == NULL)
		in->argocd_sync = hl_json_str(payload, "status.sync.status");
	if (in->argocd_health == NULL)
		in->argocd_health = hl_json_str(payload, "application.status.health.status");
	if (in->argocd_health == NULL)
		in->argocd_health = hl_json_str(payload, "status.health.status");
	if (hl_event_kind_from_name(name) == HL_EVENT_UNKNOWN) {
		if (classify_empty(in->workflow_name))
			in->workflow_name = hl_json_str(payload, "workflow_run.name");
		if (classify_empty(in->job_name))
			in->job_name = hl_json_str(payload, "workflow_job.name");
		return 0;
	}
	if (hl_event_normalize(ev, name, payload, &err) < 0) {
		if (err.code == HL_ENOMEM)
			return -2;
		snprintf(msg, msz, "field 'payload': %s", err.msg);
		return -1;
	}
	if (classify_empty(in->event))
		in->event = (*ev)->event_name;
	if (classify_empty(in->workflow_name))
		in->workflow_name = (*ev)->workflow_name;
	if (classify_empty(in->job_name))
		in->job_name = (*ev)->job_name;
	if (classify_empty(in->failed_step))
		in->failed_step = (*ev)->failed_step;
	if (in->log_len == 0) {
		/* no job log: what the event itself says, as the server does */
		const char *parts[] = { (*ev)->check_output_title,
			                (*ev)->check_output_summary,
			                (*ev)->check_output_text,
			                (*ev)->command_hint,
			                (*ev)->summary,
			                (*ev)->description };
		for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
			if (!classify_empty(parts[i]))
				hl_buf_appendf(synth, "%s\n", parts[i]);
		if (synth->len > 0) {
			in->log = synth->data;
			in->log_len = synth->len;
		}
	}
	return 0;
}

/* Classifies one JSON Lines case (input line lineno) and prints its result
 * line. */
static int
classify_one_line(struct hl_classifier *c, const char *line, size_t n, size_t lineno, bool explain)
{
	json_t *root = NULL, *id = NULL, *files;
	const char **changed = NULL;
	struct hl_event *ev = NULL;
	struct hl_buf synth = HL_BUF_INIT(CLASSIFY_SYNTH_LOG_MAX);
	struct hl_classify_input in;
	struct hl_verdict v;
	struct hl_err err = HL_ERR_INIT;
	char msg[320];
	int rc = 0;

	memset(&in, 0, sizeof(in));
	if (hl_json_parse(&root, line, n, &err) != 0) {
		/* jansson counts lines within the case: always line 1 */
		const char *rest =
		        strncmp(err.msg, "line ", 5) == 0 ? strchr(err.msg + 5, ' ') : NULL;
		if (rest != NULL)
			snprintf(msg, sizeof(msg), "invalid JSON: line %zu%s", lineno, rest);
		else
			snprintf(msg, sizeof(msg), "invalid JSON: line %zu: %s", lineno, err.msg);
		classify_print_error(NULL, msg);
		return 0;
	}
	if (!json_is_object(root)) {
		classify_print_error(NULL, "a case must be a JSON object");
		goto out;
	}
	id = json_object_get(root, "id");
	if (id != NULL && !json_is_string(id) && !json_is_integer(id) && !json_is_null(id)) {
		classify_print_error(NULL, "field 'id' must be a string or an integer");
		goto out;
	}
	if (!classify_opt_str(root, "event", &in.event, msg, sizeof(msg)) ||
	    !classify_opt_str(root, "workflow_name", &in.workflow_name, msg, sizeof(msg)) ||
	    !classify_opt_str(root, "job_name", &in.job_name, msg, sizeof(msg)) ||
	    !classify_opt_str(root, "failed_step", &in.failed_step, msg, sizeof(msg)) ||
	    !classify_opt_str(root, "log", &in.log, msg, sizeof(msg)) ||
	    !classify_opt_str(root, "argocd_sync", &in.argocd_sync, msg, sizeof(msg)) ||
	    !classify_opt_str(root, "argocd_health", &in.argocd_health, msg, sizeof(msg))) {
		classify_print_error(NULL, msg);
		goto out;
	}
	if (in.log != NULL)
		in.log_len = json_string_length(json_object_get(root, "log"));
	files = json_object_get(root, "changed_files");
	if (files != NULL && !json_is_null(files)) {
		if (!json_is_array(files)) {
			classify_print_error(NULL,
			                     "field 'changed_files' must be an array of strings");
			goto out;
		}
		changed = calloc(json_array_size(files) + 1, sizeof(char *));
		if (changed == NULL) {
			rc = -1;
			goto out;
		}
		for (size_t i = 0; i < json_array_size(files); i++) {
			json_t *f = json_array_get(files, i);
			if (!json_is_string(f)) {
				classify_print_error(
				        NULL, "field 'changed_files' must be an array of strings");
				goto out;
			}
			changed[in.n_changed++] = json_string_value(f);
		}
		in.changed_files = changed;
	}
	/* The raw webhook payload may carry what the case lacks. */
	json_t *payload = json_object_get(root, "payload");
	if (payload != NULL && !json_is_null(payload) && !json_is_object(payload)) {
		/* as a wrong 'log' is: not silently a case without its payload */
		classify_print_error(NULL, "field 'payload' must be an object");
		goto out;
	}
	if (json_is_object(payload)) {
		int prc = classify_payload(&in, payload, &ev, &synth, msg, sizeof(msg));
		if (prc == -2) {
			rc = -1;
			goto out;
		}
		if (prc < 0) {
			classify_print_error(NULL, msg);
			goto out;
		}
	}
	if (hl_classify(&v, c, &in, &err) != 0) {
		classify_print_error(id, err.msg);
		goto out;
	}
	json_t *o = classify_result_json(id, &v, explain);
	hl_verdict_release(&v);
	if (o == NULL || classify_print_json(o) != 0)
		rc = -1;
	json_decref(o);
out:
	hl_event_free(ev);
	hl_buf_release(&synth);
	free(changed);
	json_decref(root);
	return rc;
}

/* Reads JSON Lines in 64 KiB blocks (NUL bytes are data, not ends). */
struct classify_reader {
	FILE *f;
	size_t pos, len;
	bool eof;
	char buf[64 * 1024];
};

/*
 * The next line, without its '\n', into line. Returns 1 for a line, 0 at
 * the end, -1 on a read error. A line longer than max stops the read at
 * once with *too_long set (line emptied, its memory given back): the caller
 * reports it, then classify_skip_line drops the rest of it.
 */
static int
classify_read_line(struct classify_reader *r, struct hl_buf *line, size_t max, bool *too_long)
{
	bool any = false;

	hl_buf_reset(line);
	*too_long = false;
	for (;;) {
		const char *nl;
		size_t n;

		if (r->pos == r->len) {
			if (r->eof)
				return any ? 1 : 0;
			r->len = fread(r->buf, 1, sizeof(r->buf), r->f);
			r->pos = 0;
			if (r->len == 0) {
				if (ferror(r->f))
					return -1;
				r->eof = true;
				return any ? 1 : 0;
			}
		}
		any = true;
		nl = memchr(r->buf + r->pos, '\n', r->len - r->pos);
		n = nl ? (size_t)(nl - (r->buf + r->pos)) : r->len - r->pos;
		/* the '\r' of a CRLF line end is not the line's */
		if (line->len + n > max &&
		    (line->len + n > max + 1 ||
		     (n > 0 ? r->buf[r->pos + n - 1] : line->data[line->len - 1]) != '\r')) {
			*too_long = true;
			hl_buf_release(line);
			return 1;
		}
		if (hl_buf_append(line, r->buf + r->pos, n) < 0)
			return -1;
		r->pos += n;
		if (nl) {
			r->pos++;
			return 1;
		}
	}
}

/* Skips to the end of the current line (in constant memory). */
static int
classify_skip_line(struct classify_reader *r)
{
	for (;;) {
		const char *nl;

		if (r->pos == r->len) {
			if (r->eof)
				return 0;
			r->len = fread(r->buf, 1, sizeof(r->buf), r->f);
			r->pos = 0;
			if (r->len == 0) {
				r->eof = true;
				return ferror(r->f) ? -1 : 0;
			}
		}
		nl = memchr(r->buf + r->pos, '\n', r->len - r->pos);
		if (nl) {
			r->pos = (size_t)(nl - r->buf) + 1;
			return 0;
		}
		r->pos = r->len;
	}
}

static int
classify_jsonl(struct hl_classifier *c, const char *path, bool explain, size_t max_line)
{
	struct classify_reader *r = calloc(1, sizeof(*r));
	struct hl_buf line = HL_BUF_INIT(0);
	size_t lineno = 0;
	bool too_long;
	int rc = 0, got;

	if (r == NULL)
		return hl_cmd_fail("out of memory");
	r->f = stdin;
	if (path != NULL && strcmp(path, "-") != 0) {
		r->f = fopen(path, "r");
		if (r->f == NULL) {
			free(r);
			return hl_cmd_fail("cannot open '%s': %s", path, strerror(errno));
		}
	}
	while ((got = classify_read_line(r, &line, max_line, &too_long)) > 0) {
		size_t len = line.len, k = 0, bom = 0;
		char msg[160];

		lineno++;
		if (too_long) {
			snprintf(msg, sizeof(msg), "line %zu is longer than %zu bytes", lineno,
			         max_line);
			classify_print_error(NULL, msg);
			if (fflush(stdout) != 0) {
				rc = hl_cmd_fail("writing the output: %s", strerror(errno));
				break;
			}
			if (classify_skip_line(r) < 0) {
				got = -1;
				break;
			}
			continue;
		}
		while (len > 0 && (line.data[len - 1] == '\n' || line.data[len - 1] == '\r'))
			len--;
		if (lineno == 1 && len >= 3 && memcmp(line.data, "\xef\xbb\xbf", 3) == 0)
			bom = k = 3; /* a UTF-8 byte order mark */
		while (k < len &&
		       (line.data[k] == ' ' || line.data[k] == '\t' || line.data[k] == '\r'))
			k++;
		if (k == len)
			continue;
		if (classify_one_line(c, line.data + bom, len - bom, lineno, explain) != 0) {
			rc = hl_cmd_fail("out of memory");
			break;
		}
		/* a full disk: stop here, not after classifying the rest */
		if (fflush(stdout) != 0) {
			rc = hl_cmd_fail("writing the output: %s", strerror(errno));
			break;
		}
	}
	if (rc == 0 && got < 0)
		rc = hl_cmd_fail("reading '%s': %s", path ? path : "-",
		                 ferror(r->f) ? strerror(errno) : "out of memory");
	hl_buf_release(&line);
	if (r->f != stdin)
		fclose(r->f);
	free(r);
	return rc;
}

static int
classify_log_file(struct hl_classifier *c, const char *path, struct hl_classify_input *in,
                  bool explain)
{
	struct hl_err err = HL_ERR_INIT;
	struct hl_verdict v;
	struct stat st;
	struct hl_buf piped = HL_BUF_INIT((size_t)1 << 31);
	int fd, rc = 0, crc;

	if (strcmp(path, "-") == 0)
		fd = dup(STDIN_FILENO);
	else
		fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return hl_cmd_fail("cannot open '%s': %s", path, strerror(errno));
	if (fstat(fd, &st) != 0) {
		close(fd);
		return hl_cmd_fail("cannot stat '%s': %s", path, strerror(errno));
	}
	if (!S_ISREG(st.st_mode)) {
		/* a pipe or terminal: read it (one copy) */
		close(fd);
		rc = hl_file_read(&piped, strcmp(path, "-") == 0 ? "-" : path, &err);
		if (rc != 0)
			return hl_cmd_fail("reading '%s': %s", path, err.msg);
		in->log = piped.data;
		in->log_len = piped.len;
		crc = hl_classify(&v, c, in, &err);
	} else {
		/* a file: read through a small window per thread (faster than
		 * mapping it: no page-table work for a big log) */
		posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
		crc = hl_classify_fd(&v, c, in, fd, (size_t)st.st_size, &err);
		close(fd);
	}
	if (crc != 0) {
		rc = hl_cmd_fail("classifying '%s': %s", path, err.msg);
		goto out;
	}
	if (explain) {
		struct hl_buf b = HL_BUF_INIT(0);
		if (hl_verdict_explain(&b, &v) == 0)
			fputs(b.data, stdout);
		else
			rc = hl_cmd_fail("out of memory");
		hl_buf_release(&b);
	} else {
		json_t *o = classify_result_json(NULL, &v, false);
		if (o == NULL || classify_print_json(o) != 0)
			rc = hl_cmd_fail("out of memory");
		json_decref(o);
	}
	hl_verdict_release(&v);
out:
	hl_buf_release(&piped);
	return rc;
}

int
hl_cmd_classify(int argc, char **argv)
{
	struct hl_classify_input in;
	struct hl_classifier *c = NULL;
	struct hl_err err = HL_ERR_INIT;
	const char *rules = getenv("HEALER_RULES_FILE");
	const char *log = NULL, *arg = NULL;
	const char **changed = NULL;
	size_t n_changed = 0;
	bool explain = false, dump = false, one_case = false;
	size_t max_line = CLASSIFY_MAX_LINE;
	int optind_ = 1, o, rc = 0;

	memset(&in, 0, sizeof(in));
	if (rules != NULL && *rules == '\0')
		rules = NULL;
	changed = calloc((size_t)argc + 1, sizeof(char *));
	if (changed == NULL)
		return hl_cmd_fail("out of memory");
	while ((o = hl_cmd_getopt("classify", argc, argv, classify_opts, &arg, &optind_)) != -1) {
		switch (o) {
		case OPT_RULES:
			rules = arg;
			break;
		case OPT_EXPLAIN:
			explain = true;
			break;
		case OPT_LOG:
			log = arg;
			break;
		case OPT_WORKFLOW:
			in.workflow_name = arg;
			one_case = true;
			break;
		case OPT_JOB:
			in.job_name = arg;
			one_case = true;
			break;
		case OPT_STEP:
			in.failed_step = arg;
			one_case = true;
			break;
		case OPT_CHANGED:
			changed[n_changed++] = arg;
			one_case = true;
			break;
		case OPT_EVENT:
			in.event = arg;
			one_case = true;
			break;
		case OPT_ARGO_SYNC:
			in.argocd_sync = arg;
			one_case = true;
			break;
		case OPT_ARGO_HEALTH:
			in.argocd_health = arg;
			one_case = true;
			break;
		case OPT_DUMP:
			dump = true;
			break;
		case OPT_MAX_LINE: {
			long long v;

			if (!hl_cmd_parse_count(arg, 1, LLONG_MAX, &v)) {
				free(changed);
				return hl_cmd_usage_error(
				        "classify", "--max-line-bytes '%s' must be a number >= 1",
				        arg);
			}
			max_line = (size_t)v;
			break;
		}
		default:
			free(changed);
			return 2;
		}
	}
	in.changed_files = changed;
	in.n_changed = n_changed;
	if (log != NULL && optind_ < argc) {
		free(changed);
		return hl_cmd_usage_error("classify", "unexpected argument '%s' with --log",
		                          argv[optind_]);
	}
	if (log == NULL && one_case) {
		free(changed);
		return hl_cmd_usage_error("classify", "--workflow, --job, --step, --changed-file, "
		                                      "--event and --argocd-* need --log FILE");
	}
	if (optind_ + 1 < argc) {
		free(changed);
		return hl_cmd_usage_error("classify", "unexpected argument '%s'",
		                          argv[optind_ + 1]);
	}
	if (hl_classifier_new(&c, rules, &err) != 0) {
		free(changed);
		return hl_cmd_fail("%s", err.msg);
	}
	if (dump) {
		for (size_t i = 0; i < hl_classifier_pattern_count(c); i++)
			printf("%s\n", hl_classifier_pattern(c, i));
	} else if (log != NULL) {
		rc = classify_log_file(c, log, &in, explain);
	} else {
		rc = classify_jsonl(c, optind_ < argc ? argv[optind_] : NULL, explain, max_line);
	}
	if ((fflush(stdout) != 0 || ferror(stdout)) && rc == 0)
		rc = hl_cmd_fail("writing the output: %s", errno ? strerror(errno) : "failed");
	hl_classifier_free(c);
	free(changed);
	return rc;
}

int
hl_cmd_check_rules(int argc, char **argv)
{
	static const struct hl_opt opts[] = { { NULL, false, 0 } };
	struct hl_classifier *c = NULL;
	struct hl_err err = HL_ERR_INIT;
	const char *arg = NULL;
	int optind_ = 1, o;

	while ((o = hl_cmd_getopt("check-rules", argc, argv, opts, &arg, &optind_)) != -1)
		return 2;
	if (optind_ >= argc)
		return hl_cmd_usage_error("check-rules", "missing FILE");
	if (optind_ + 1 < argc)
		return hl_cmd_usage_error("check-rules", "unexpected argument '%s'",
		                          argv[optind_ + 1]);
	if (hl_classifier_new(&c, argv[optind_], &err) != 0)
		return hl_cmd_fail("%s", err.msg);
	printf("%zu rules ok\n", hl_classifier_rule_count(c));
	hl_classifier_free(c);
	return 0;
}
