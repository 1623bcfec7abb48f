/*
 * cmd_store.c - the store's operator commands (contract section 11):
 *   healer migrate                 apply the schema and exit
 *   healer replay --failed | ID    queue deliveries again
 *   healer status [TASK_ID]        tasks from the store (table or --json)
 * The store is the one the server would use (HEALER_DATABASE_URL, else
 * SQLite in the data directory). `status` only reads: it opens the store
 * read-only, so it works beside a running server (a WAL reader on SQLite)
 * and never creates one. `replay` on PostgreSQL wakes every replica's
 * workers; on SQLite a running server's workers find the deliveries at
 * their next poll (within a second).
 */
#include "api/api.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/file.h"
#include "base/str.h"
#include "cmd.h"
#include "config/config.h"
#include "store/store.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *status_str(const char *s);

/* The options every store command takes. */
struct store_opts {
	struct hl_config_override ov[1];
	size_t nov;
	const char *config_file;
};

/* Loads the configuration; 0, or the exit status after reporting. */
static int
store_config(struct hl_config **cfg, const struct store_opts *o)
{
	struct hl_err err = HL_ERR_INIT;

	if (hl_config_load(cfg, o->config_file, o->ov, o->nov, &err) < 0)
		return hl_cmd_fail("invalid configuration: %s", err.msg);
	return 0;
}

/* Opens the configured store; 0, or the exit status after reporting. */
static int
store_open(struct hl_store **s, const struct hl_config *cfg, unsigned flags)
{
	struct hl_err err = HL_ERR_INIT;

	if (!(flags & HL_STORE_READ_ONLY) && !hl_store_url_is_postgres(cfg->database_url) &&
	    hl_file_mkdirs(cfg->data_dir, &err) < 0)
		return hl_cmd_fail("cannot create data directory: %s", err.msg);
	if (hl_store_open_with(s, cfg->database_url, flags, &err) < 0)
		return hl_cmd_fail("cannot open the store: %s", err.msg);
	return 0;
}

/* Parses --data-dir and --config into o; returns the option's val, -1
 * at the end, '?' after a usage error. */
static int
store_getopt(const char *cmd, int argc, char **argv, const struct hl_opt *opts,
             struct store_opts *o, const char **arg, int *idx)
{
	int opt = hl_cmd_getopt(cmd, argc, argv, opts, arg, idx);

	if (opt == 'd') {
		o->ov[0] = (struct hl_config_override){ "HEALER_DATA_DIR", *arg };
		o->nov = 1;
	} else if (opt == 'c') {
		o->config_file = *arg;
	}
	return opt;
}

int
hl_cmd_migrate(int argc, char **argv)
{
	static const struct hl_opt opts[] = {
		{ "data-dir", true, 'd' },
		{ "config", true, 'c' },
		{ NULL, false, 0 },
	};
	struct store_opts o = { .nov = 0 };
	struct hl_err err = HL_ERR_INIT;
	struct hl_config *cfg = NULL;
	struct hl_store *s = NULL;
	const char *arg;
	int idx = 1, opt, rc, after = 0, applied;

	while ((opt = store_getopt("migrate", argc, argv, opts, &o, &arg, &idx)) != -1)
		if (opt == '?')
			return 2;
	if (idx < argc)
		return hl_cmd_usage_error("migrate", "unexpected argument '%s'", argv[idx]);
	if ((rc = store_config(&cfg, &o)) != 0)
		return rc;
	/* the open migrates (under a lock: of several at once, one applies
	 * them and the others wait and apply none) */
	rc = store_open(&s, cfg, 0);
	if (rc == 0 && hl_store_schema_version(s, &after, &err) < 0)
		rc = hl_cmd_fail("cannot read the schema version: %s", err.msg);
	if (rc == 0) {
		applied = hl_store_migrated_at_open(s);
		printf("schema version %d (%d migration%s applied)\n", after, applied,
		       applied == 1 ? "" : "s");
	}
	hl_store_close(s);
	hl_config_free(cfg);
	return rc;
}

int
hl_cmd_replay(int argc, char **argv)
{
	static const struct hl_opt opts[] = {
		{ "failed", false, 'f' },
		{ "data-dir", true, 'd' },
		{ "config", true, 'c' },
		{ NULL, false, 0 },
	};
	struct store_opts o = { .nov = 0 };
	struct hl_err err = HL_ERR_INIT;
	struct hl_config *cfg = NULL;
	struct hl_store *s = NULL;
	const char *arg, *id = NULL;
	int64_t n = 0;
	int idx = 1, opt, rc;
	bool failed = false, dashdash = false;

	/* options before or after the operand; after "--" only operands */
	while (idx < argc) {
		if (!dashdash && strcmp(argv[idx], "--") == 0) {
			dashdash = true;
			idx++;
			continue;
		}
		opt = dashdash ? -1 : store_getopt("replay", argc, argv, opts, &o, &arg, &idx);
		if (opt == -1 && id)
			return hl_cmd_usage_error("replay", "unexpected argument '%s'", argv[idx]);
		if (opt == -1)
			id = argv[idx++];
		if (opt == '?')
			return 2;
		if (opt == 'f')
			failed = true;
	}
	if (failed == (id != NULL))
		return hl_cmd_usage_error("replay",
		                          failed ? "give --failed or a delivery id, not both"
		                                 : "give --failed or a delivery id");
	if ((rc = store_config(&cfg, &o)) != 0)
		return rc;
	/* a store to replay from must exist: a mistyped data directory is an
	 * error, not a new empty store with nothing to replay */
	if (hl_store_open_with(&s, cfg->database_url, HL_STORE_READ_ONLY, &err) < 0)
		rc = hl_cmd_fail("cannot open the store: %s", err.msg);
	hl_store_close(s);
	s = NULL;
	if (rc == 0 && (rc = store_open(&s, cfg, 0)) == 0) {
		if (hl_store_requeue(s, &n, id, &err) < 0)
			rc = hl_cmd_fail("cannot queue %s again: %s",
			                 id ? "the delivery" : "the failed deliveries",
			                 status_str(err.msg));
		else
			printf("%lld deliver%s queued again\n", (long long)n, n == 1 ? "y" : "ies");
	}
	hl_store_close(s);
	hl_config_free(cfg);
	return rc;
}

/* Store text for a terminal: "-" when empty; control characters (C0, DEL
 * and C1, also UTF-8 encoded) become '?', so a job name, a reason or a PR
 * URL from outside (or a pasted task or delivery id quoted in an error)
 * cannot move the cursor, retitle or clear the terminal.
 * Cut to a line; the result lives in one of a few rotating buffers. */
static const char *
status_str(const char *s)
{
	static char ring[8][512];
	static unsigned next;

	if (!s || !*s)
		return "-";
	return hl_str_terminal_safe(ring[next++ % 8], sizeof(ring[0]), s);
}

/* "2025-01-15T10:30:00Z" (seconds) or "-". */
static void
status_time(char *out, size_t size, int64_t ms)
{
	char full[40];

	if (!ms) {
		snprintf(out, size, "-");
		return;
	}
	hl_time_rfc3339(full, sizeof(full), ms);
	snprintf(out, size, "%.19sZ", full);
}

static void
status_table(struct hl_task_record **l, size_t n)
{
	char updated[32];
	size_t i;

	printf("%-24s %-10s %-8s %-24s %-8s %-28s %s\n", "TASK", "STATE", "AGENT", "FAILURE TYPE",
	       "ATTEMPTS", "REPOSITORY", "UPDATED");
	for (i = 0; i < n; i++) {
		status_time(updated, sizeof(updated), l[i]->updated_ms);
		printf("%-24s %-10s %-8s %-24s %-8d %-28s %s\n", status_str(l[i]->task_id),
		       hl_task_state_name(l[i]->state), status_str(l[i]->agent),
		       status_str(l[i]->failure_type), l[i]->attempts, status_str(l[i]->repository),
		       updated);
	}
	if (n == 0)
		printf("(no tasks)\n");
}

static void
status_task(const struct hl_task_record *t)
{
	char when[32];
	size_t i;

	printf("task        %s\n", status_str(t->task_id));
	printf("state       %s%s%s%s\n", hl_task_state_name(t->state), t->reason ? " (" : "",
	       t->reason ? status_str(t->reason) : "", t->reason ? ")" : "");
	printf("repository  %s\n", status_str(t->repository));
	if (t->run_id)
		printf("run         %lld\n", (long long)t->run_id);
	printf("job         %s\n", status_str(t->job));
	printf("branch      %s\n", status_str(t->branch));
	printf("agent       %s\n", status_str(t->agent));
	printf("failure     %s\n", status_str(t->failure_type));
	printf("coderun     %s\n", status_str(t->coderun_name));
	status_time(when, sizeof(when), t->created_ms);
	printf("created     %s\n", when);
	status_time(when, sizeof(when), t->updated_ms);
	printf("updated     %s\n", when);
	if (t->finished_ms) {
		status_time(when, sizeof(when), t->finished_ms);
		printf("finished    %s\n", when);
	}
	printf("\n%-3s %-6s %-8s %-36s %-10s %-18s %s\n", "#", "KIND", "AGENT", "CODERUN", "PHASE",
	       "OUTCOME", "PR");
	for (i = 0; i < t->n_attempts; i++) {
		const struct hl_attempt_record *a = &t->attempt[i];

		printf("%-3d %-6s %-8s %-36s %-10s %-18s %s\n", a->n, hl_attempt_kind_name(a->kind),
		       status_str(a->agent), status_str(a->coderun_name),
		       hl_attempt_phase_name(a->phase),
		       a->outcome == HL_OUTCOME_INVALID ? "-" : hl_attempt_outcome_name(a->outcome),
		       status_str(a->pr_url));
	}
	if (t->n_attempts == 0)
		printf("(no attempts)\n");
}

/* Prints doc as indented JSON, its reals with the API's 15 digits (0.4,
 * not 0.40000000000000002); consumes it. */
static int
status_print_json(json_t *doc)
{
	int rc = hl_cmd_print_json(doc, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(15));

	json_decref(doc);
	return rc;
}

int
hl_cmd_status(int argc, char **argv)
{
	static const struct hl_opt opts[] = {
		{ "json", false, 'j' },    { "limit", true, 'l' },  { "state", true, 's' },
		{ "data-dir", true, 'd' }, { "config", true, 'c' }, { NULL, false, 0 },
	};
	struct store_opts o = { .nov = 0 };
	struct hl_task_query q = { .limit = 20 };
	struct hl_err err = HL_ERR_INIT;
	struct hl_config *cfg = NULL;
	struct hl_store *s = NULL;
	struct hl_task_record *t = NULL, **l = NULL;
	const char *arg, *id = NULL;
	size_t n = 0, i;
	int idx = 1, opt, rc;
	bool json = false, dashdash = false;
	long long v;

	/* options before or after the operand; after "--" only operands */
	while (idx < argc) {
		if (!dashdash && strcmp(argv[idx], "--") == 0) {
			dashdash = true;
			idx++;
			continue;
		}
		opt = dashdash ? -1 : store_getopt("status", argc, argv, opts, &o, &arg, &idx);
		switch (opt) {
		case -1:
			if (id)
				return hl_cmd_usage_error("status", "unexpected argument '%s'",
				                          argv[idx]);
			id = argv[idx++];
			break;
		case '?':
			return 2;
		case 'j':
			json = true;
			break;
		case 'l':
			if (!hl_cmd_parse_count(arg, 1, 1000, &v))
				return hl_cmd_usage_error(
				        "status", "--limit '%s' must be between 1 and 1000", arg);
			q.limit = (size_t)v;
			break;
		case 's':
			if (hl_task_state_from_name(arg) == HL_TASK_STATE_INVALID)
				return hl_cmd_usage_error("status", "unknown task state '%s'", arg);
			q.state = arg;
			break;
		}
	}
	if ((rc = store_config(&cfg, &o)) != 0)
		return rc;
	if ((rc = store_open(&s, cfg, HL_STORE_READ_ONLY)) != 0)
		goto out;
	if (id) {
		int got = hl_store_task_get(s, &t, id, &err);

		if (got == -HL_ENOTFOUND) {
			/* the id a failure was answered with before it went to an
			 * active task: that task, as the API shows it */
			struct hl_err aerr = HL_ERR_INIT;
			char *owner = NULL;

			if (hl_store_task_alias_get(s, &owner, id, &aerr) == 0)
				got = hl_store_task_get(s, &t, owner, &err);
			else if (aerr.code != HL_ENOTFOUND) {
				err = aerr;
				got = -aerr.code;
			}
			free(owner);
		}
		if (got < 0) {
			rc = hl_cmd_fail("%s", status_str(err.msg));
			goto out;
		}
		if (json)
			rc = status_print_json(hl_api_task_json(t));
		else
			status_task(t);
		goto out;
	}
	if (hl_store_task_list(s, &l, &n, &q, &err) < 0) {
		rc = hl_cmd_fail("cannot list the tasks: %s", err.msg);
		goto out;
	}
	if (!json) {
		status_table(l, n);
		goto out;
	}
	{
		json_t *arr = json_array();

		/* each with its attempts, as GET /api/remediations/{id} shows it */
		for (i = 0; arr && i < n; i++) {
			if (hl_store_task_get(s, &t, l[i]->task_id, &err) < 0) {
				json_decref(arr);
				rc = hl_cmd_fail("%s", status_str(err.msg));
				goto out;
			}
			json_array_append_new(arr, hl_api_task_json(t));
			hl_task_record_free(t);
			t = NULL;
		}
		rc = status_print_json(arr ? json_pack("{s:o}", "tasks", arr) : NULL);
	}
out:
	hl_task_record_free(t);
	hl_task_list_free(l, n);
	hl_store_close(s);
	hl_config_free(cfg);
	return rc;
}
