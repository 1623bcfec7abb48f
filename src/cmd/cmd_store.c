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
#include "cmd.h"
#include "config/config.h"
#include "store/store.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	int idx = 1, opt, rc, before = 0, after = 0;

	while ((opt = store_getopt("migrate", argc, argv, opts, &o, &arg, &idx)) != -1)
		if (opt == '?')
			return 2;
	if (idx < argc)
		return hl_cmd_usage_error("migrate", "unexpected argument '%s'", argv[idx]);
	if ((rc = store_config(&cfg, &o)) != 0)
		return rc;
	/* the version before: read-only, so nothing is applied yet */
	if (hl_store_open_with(&s, cfg->database_url, HL_STORE_READ_ONLY, &err) == 0) {
		if (hl_store_schema_version(s, &before, &err) < 0)
			before = 0;
		hl_store_close(s);
		s = NULL;
	}
	rc = store_open(&s, cfg, 0);
	if (rc == 0 && hl_store_schema_version(s, &after, &err) < 0)
		rc = hl_cmd_fail("cannot read the schema version: %s", err.msg);
	if (rc == 0)
		printf("schema version %d (%d migration%s applied)\n", after, after - before,
		       after - before == 1 ? "" : "s");
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
	bool failed = false;

	/* options before or after the operand */
	while ((opt = store_getopt("replay", argc, argv, opts, &o, &arg, &idx)) != -1 ||
	       idx < argc) {
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
	if ((rc = store_open(&s, cfg, 0)) == 0) {
		if (hl_store_requeue(s, &n, id, &err) < 0)
			rc = hl_cmd_fail("cannot queue %s again: %s",
			                 id ? "the delivery" : "the failed deliveries", err.msg);
		else
			printf("%lld deliver%s queued again\n", (long long)n, n == 1 ? "y" : "ies");
	}
	hl_store_close(s);
	hl_config_free(cfg);
	return rc;
}

static const char *
status_str(const char *s)
{
	return s && *s ? s : "-";
}

/* True for a byte that starts a control character: C0, DEL, or the lead
 * of an UTF-8 encoded C1 (U+0080-U+009F); *len gets its length. */
static bool
status_control(const unsigned char *p, size_t *len)
{
	*len = 1;
	if (*p < 0x20 || *p == 0x7f)
		return true;
	if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
		*len = 2;
		return true;
	}
	return false;
}

/* s (or "-") for a terminal, at most size-1 bytes: a job, branch or URL
 * from outside must not move the cursor, retitle the window or forge a
 * line, so each control character becomes '?'. */
static const char *
status_text(char *out, size_t size, const char *s)
{
	const unsigned char *p = (const unsigned char *)status_str(s);
	size_t o = 0, len;

	while (*p && o + 1 < size) {
		if (status_control(p, &len)) {
			out[o++] = '?';
			p += len;
		} else {
			out[o++] = (char)*p++;
		}
	}
	out[o] = '\0';
	return out;
}

/* status_text of any length, to stdout. */
static void
status_put(const char *s)
{
	const unsigned char *p = (const unsigned char *)status_str(s);
	size_t len;

	while (*p) {
		if (status_control(p, &len)) {
			putchar('?');
			p += len;
		} else {
			putchar(*p++);
		}
	}
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
	char updated[32], repo[512];
	size_t i;

	printf("%-24s %-10s %-8s %-24s %-8s %-28s %s\n", "TASK", "STATE", "AGENT", "FAILURE TYPE",
	       "ATTEMPTS", "REPOSITORY", "UPDATED");
	for (i = 0; i < n; i++) {
		status_time(updated, sizeof(updated), l[i]->updated_ms);
		printf("%-24s %-10s %-8s %-24s %-8d %-28s %s\n", l[i]->task_id,
		       hl_task_state_name(l[i]->state), status_str(l[i]->agent),
		       status_str(l[i]->failure_type), l[i]->attempts,
		       status_text(repo, sizeof(repo), l[i]->repository), updated);
	}
	if (n == 0)
		printf("(no tasks)\n");
}

static void
status_task(const struct hl_task_record *t)
{
	char when[32], name[256];
	size_t i;

	printf("task        %s\n", t->task_id);
	printf("state       %s", hl_task_state_name(t->state));
	if (t->reason) {
		printf(" (");
		status_put(t->reason);
		printf(")");
	}
	printf("\nrepository  ");
	status_put(t->repository);
	if (t->run_id)
		printf("\nrun         %lld", (long long)t->run_id);
	printf("\njob         ");
	status_put(t->job);
	printf("\nbranch      ");
	status_put(t->branch);
	printf("\nagent       %s\n", status_str(t->agent));
	printf("failure     %s\n", status_str(t->failure_type));
	printf("coderun     ");
	status_put(t->coderun_name);
	printf("\n");
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

		printf("%-3d %-6s %-8s %-36s %-10s %-18s ", a->n, hl_attempt_kind_name(a->kind),
		       status_str(a->agent), status_text(name, sizeof(name), a->coderun_name),
		       hl_attempt_phase_name(a->phase),
		       a->outcome == HL_OUTCOME_INVALID ? "-"
		                                        : hl_attempt_outcome_name(a->outcome));
		status_put(a->pr_url);
		printf("\n");
	}
	if (t->n_attempts == 0)
		printf("(no attempts)\n");
}

/* Prints doc as indented JSON; consumes it. */
static int
status_print_json(json_t *doc)
{
	int rc = 0;

	if (!doc || json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_SORT_KEYS) < 0)
		rc = hl_cmd_fail("out of memory");
	else
		fputc('\n', stdout);
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
	bool json = false;
	char *end;
	long v;

	/* options before or after the operand */
	while ((opt = store_getopt("status", argc, argv, opts, &o, &arg, &idx)) != -1 ||
	       idx < argc) {
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
			errno = 0;
			v = strtol(arg, &end, 10);
			if (errno || end == arg || *end || v < 1 || v > 1000)
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
		if (hl_store_task_get(s, &t, id, &err) < 0) {
			rc = hl_cmd_fail("%s", err.msg);
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
				rc = hl_cmd_fail("%s", err.msg);
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
