/*
 * cmd.c - the command table and shared command-line helpers; see cmd.h.
 */
#include "cmd.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct hl_cmd hl_commands[] = {
	{ "server", hl_cmd_server, "run the remediation hub (HTTP API and workers)",
	  "usage: healer server [--listen HOST:PORT] [--data-dir DIR] [--config FILE]\n"
	  "\n"
	  "Runs the hub: receives GitHub webhooks and sensor calls, stores them durably,\n"
	  "and remediates failures. Settings come from the environment (see README).\n"
	  "\n"
	  "  --listen HOST:PORT   listen address (HEALER_LISTEN, default 0.0.0.0:8080)\n"
	  "  --data-dir DIR       embedded state directory (HEALER_DATA_DIR, default ./var)\n"
	  "  --config FILE        YAML configuration file (HEALER_CONFIG)\n"
	  "  --port-file FILE     write the bound port to FILE once listening\n" },
	{ "check-config", hl_cmd_check_config, "validate the configuration without starting",
	  "usage: healer check-config [--config FILE] [--print]\n"
	  "\n"
	  "Loads the configuration from defaults, FILE, the environment, and validates it.\n"
	  "Exits 0 when valid, 1 with an error naming the bad key otherwise.\n"
	  "\n"
	  "  --config FILE   YAML configuration file (HEALER_CONFIG)\n"
	  "  --print         print the effective settings (secrets shown as \"(set)\")\n" },
	{ "classify", hl_cmd_classify, "classify CI failures (JSON Lines in, JSON Lines out)",
	  "usage: healer classify [--rules FILE] [--explain] [--max-line-bytes N] [FILE|-]\n"
	  "       healer classify [--rules FILE] [--explain] --log FILE|- [--workflow NAME]\n"
	  "                       [--job NAME] [--step NAME] [--changed-file PATH]...\n"
	  "                       [--event NAME] [--argocd-sync S] [--argocd-health H]\n"
	  "\n"
	  "JSON Lines mode reads one case per line (contract section 5) and writes one\n"
	  "verdict per line; a malformed line gives {\"id\": null, \"error\": ...}, and\n"
	  "so does a line longer than --max-line-bytes (default 64 MiB).\n"
	  "--log classifies one raw log file. --explain adds an \"explain\" string to\n"
	  "each JSON verdict, and with --log prints a readable account instead of JSON.\n"
	  "Rules: --rules FILE, else HEALER_RULES_FILE, else the built-in rules.\n" },
	{ "check-rules", hl_cmd_check_rules, "validate a classification rules file",
	  "usage: healer check-rules FILE\n"
	  "\n"
	  "Validates a rules file: prints \"N rules ok\", or exits 1 with\n"
	  "FILE:LINE:COL: rule 'name': reason.\n" },
	{ "render", hl_cmd_render, "render a prompt template with JSON data",
	  "usage: healer render [--partials DIR] [--strict] TEMPLATE [DATA.json|-]\n" },
	{ "fetch-logs", hl_cmd_fetch_logs, "write a pod's logs, events and description to files",
	  "usage: healer fetch-logs --pod-name P --namespace N --output-dir D [--tail N]\n"
	  "\n"
	  "--tail N keeps each log's last N lines (default HEALER_HEAL_LOG_TAIL, 10000;\n"
	  "0: all of it).\n" },
	{ "spawn-remediation", hl_cmd_spawn_remediation,
	  "create a remediation CodeRun for an alert",
	  "usage: healer spawn-remediation --alert A --task-id T --issue-file F [--target-pod P]\n" },
	{ "heal", hl_cmd_heal, "the seed's heal commands: heal fetch-logs | spawn-remediation",
	  "usage: healer heal fetch-logs --pod-name P --namespace N --output-dir D [--tail N]\n"
	  "       healer heal spawn-remediation --alert A --task-id T --issue-file F\n"
	  "                                     [--target-pod P]\n"
	  "\n"
	  "The heal flow's commands under the seed's name: the same as `healer fetch-logs`\n"
	  "and `healer spawn-remediation`. A binary (or link) named `heal` takes them\n"
	  "directly: heal fetch-logs --pod-name P ...\n" },
	{ "normalize", hl_cmd_normalize, "print the normalized event for a webhook payload",
	  "usage: healer normalize --event NAME [FILE|-]\n" },
	{ "migrate", hl_cmd_migrate, "apply the store's schema and exit",
	  "usage: healer migrate [--data-dir DIR] [--config FILE]\n"
	  "\n"
	  "Applies the schema to the store the server would use (HEALER_DATABASE_URL,\n"
	  "else SQLite in the data directory) and prints its version.\n" },
	{ "replay", hl_cmd_replay, "queue stored deliveries again",
	  "usage: healer replay --failed | DELIVERY_ID [--data-dir DIR] [--config FILE]\n"
	  "\n"
	  "Queues every failed delivery again (--failed), or one delivery by its id\n"
	  "whatever it ended as, and prints how many; the workers process them anew.\n" },
	{ "status", hl_cmd_status, "print tasks from the store",
	  "usage: healer status [TASK_ID] [--json] [--state STATE] [--limit N]\n"
	  "                     [--data-dir DIR] [--config FILE]\n"
	  "\n"
	  "Without TASK_ID, a table of the most recent tasks (newest first, --limit,\n"
	  "default 20, optionally of one --state); with it, that task and its attempts.\n"
	  "--json prints the documents of GET /api/remediations/{id}. Only reads the\n"
	  "store, so it works beside a running server.\n" },
	{ "insights", hl_cmd_insights, "how well healer does against the design's targets",
	  "usage: healer insights [--since DURATION] [--repository OWNER/REPO] [--json]\n"
	  "                       [--data-dir DIR] [--config FILE]\n"
	  "\n"
	  "Routing correctness, duplicates prevented, time to fix (p50, p90), success on\n"
	  "attempt 1 and within HEALER_MAX_ATTEMPTS, escalation rate, each beside its\n"
	  "target, overall, by agent and by failure type, for tasks created within\n"
	  "--since (90s, 30m, 24h, 7d, 2w; default all time); the routing table and the\n"
	  "learned routing switches. --json prints the document of GET /api/insights.\n"
	  "Only reads the store, so it works beside a running server.\n" },
	{ NULL, NULL, NULL, NULL },
};

const struct hl_cmd *
hl_cmd_find(const char *name)
{
	const struct hl_cmd *c;

	for (c = hl_commands; c->name; c++)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

bool
hl_cmd_wants_help(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return false;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
	}
	return false;
}

int
hl_cmd_help(const char *name)
{
	const struct hl_cmd *c = hl_cmd_find(name);

	if (c)
		fputs(c->usage, stdout);
	return 0;
}

int
hl_cmd_usage_error(const char *name, const char *fmt, ...)
{
	const struct hl_cmd *c = hl_cmd_find(name);
	va_list ap;

	fputs("healer: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (c)
		fputs(c->usage, stderr);
	return 2;
}

int
hl_cmd_fail(const char *fmt, ...)
{
	va_list ap;

	fputs("healer: error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

int
hl_cmd_getopt(const char *cmd, int argc, char **argv, const struct hl_opt *opts,
              const char **optarg_out, int *optind_io)
{
	const struct hl_opt *o;
	const char *arg, *eq;
	size_t nlen;
	int i = *optind_io;

	*optarg_out = NULL;
	if (i >= argc)
		return -1;
	arg = argv[i];
	if (strcmp(arg, "--") == 0) {
		*optind_io = i + 1;
		return -1;
	}
	if (arg[0] != '-' || strcmp(arg, "-") == 0)
		return -1; /* first operand: options end here */
	if (arg[1] != '-')
		return hl_cmd_usage_error(cmd, "unknown option '%s'", arg), '?';
	eq = strchr(arg, '=');
	nlen = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
	for (o = opts; o->name; o++) {
		if (strlen(o->name) != nlen || strncmp(o->name, arg + 2, nlen) != 0)
			continue;
		if (!o->has_arg) {
			if (eq)
				return hl_cmd_usage_error(cmd, "option '--%s' takes no value",
				                          o->name),
				       '?';
			*optind_io = i + 1;
			return o->val;
		}
		if (eq) {
			*optarg_out = eq + 1;
			*optind_io = i + 1;
		} else if (i + 1 < argc) {
			*optarg_out = argv[i + 1];
			*optind_io = i + 2;
		} else {
			return hl_cmd_usage_error(cmd, "option '--%s' needs a value", o->name), '?';
		}
		return o->val;
	}
	return hl_cmd_usage_error(cmd, "unknown option '%.*s'", (int)(nlen + 2), arg), '?';
}

bool
hl_cmd_parse_count(const char *arg, long long lo, long long hi, long long *out)
{
	char *end;
	long long v;

	if (!arg || !isdigit((unsigned char)arg[0]))
		return false;
	errno = 0;
	v = strtoll(arg, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}
