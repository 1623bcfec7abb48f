/*
 * cmd.h - the command table and the helpers every command uses to report
 * usage errors (exit 2) and run-time failures (exit 1) the same way
 * (contract section 2).
 */
#ifndef HL_CMD_CMD_H
#define HL_CMD_CMD_H

#include "base/err.h"

#include <jansson.h>
#include <stdbool.h>

struct hl_cmd {
	const char *name;
	int (*fn)(int argc, char **argv); /* argv[0] is the command name */
	const char *summary;
	const char *usage; /* full usage text printed by `healer CMD --help` */
};

extern const struct hl_cmd hl_commands[];

const struct hl_cmd *hl_cmd_find(const char *name);

/* True when argv holds --help or -h (before any "--"). */
bool hl_cmd_wants_help(int argc, char **argv);
/* Prints the command's usage to stdout and returns 0. */
int hl_cmd_help(const char *name);
/* Prints "healer: <message>" and the command's usage on stderr; returns 2. */
int hl_cmd_usage_error(const char *name, const char *fmt, ...) HL_PRINTF(2, 3);
/* Prints "healer: error: <message>" on stderr; returns 1. */
int hl_cmd_fail(const char *fmt, ...) HL_PRINTF(1, 2);

/*
 * A small getopt_long wrapper that names the bad word: returns the option's
 * val, -1 at the end, or '?' after printing the usage error (the caller then
 * returns 2). Long options only, given as "name" or "name=" (takes a value).
 */
struct hl_opt {
	const char *name;
	bool has_arg;
	int val;
};
int hl_cmd_getopt(const char *cmd, int argc, char **argv, const struct hl_opt *opts,
                  const char **optarg_out, int *optind_io);

/* Parses arg as a decimal count in [lo, hi]: digits only (not " 5", "+5",
 * "5 " or "0x5", which strtol would partly take). */
bool hl_cmd_parse_count(const char *arg, long long lo, long long hi, long long *out);

/* Prints doc (json_dumps flags) and a newline on stdout with DEL and the C1
 * controls escaped as \u007f, \u0080..\u009f, so stored text never reaches
 * the terminal as controls (cmd_json.c); 0, or 1 after saying why. */
int hl_cmd_print_json(json_t *doc, size_t flags);

/* The commands. */
int hl_cmd_server(int argc, char **argv);
int hl_cmd_check_config(int argc, char **argv);
int hl_cmd_classify(int argc, char **argv);
int hl_cmd_check_rules(int argc, char **argv);
int hl_cmd_render(int argc, char **argv);
int hl_cmd_fetch_logs(int argc, char **argv);
int hl_cmd_spawn_remediation(int argc, char **argv);
/* `healer heal fetch-logs|spawn-remediation ...`: the seed's names. */
int hl_cmd_heal(int argc, char **argv);
int hl_cmd_normalize(int argc, char **argv);
int hl_cmd_migrate(int argc, char **argv);
int hl_cmd_replay(int argc, char **argv);
int hl_cmd_status(int argc, char **argv);
int hl_cmd_insights(int argc, char **argv);

#endif
