/*
 * main.c - healer's entry point: looks argv[1] up in the command table and
 * dispatches (git's cmd_struct). `help` and `version` live here, and so
 * does the last check of every command: its output was written.
 */
#include "cmd/cmd.h"
#include "version.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <string.h>

static void
main_usage(FILE *out)
{
	const struct hl_cmd *c;

	fputs("usage: healer <command> [options]\n\ncommands:\n", out);
	for (c = hl_commands; c->name; c++)
		fprintf(out, "  %-18s %s\n", c->name, c->summary);
	fputs("  help [COMMAND]     show this help, or a command's usage\n"
	      "  version            print the version and enabled features\n"
	      "\nRun 'healer <command> --help' for a command's options.\n",
	      out);
}

/*
 * Output a command could not write (a full disk, a closed standard output)
 * fails it: "healer: error: cannot write the output: ..." and exit 1, never
 * exit 0 with the output lost. A closed stdout that nothing was written to is
 * not an error (gnulib's close_stdout).
 */
static int
main_close_stdout(int rc)
{
	bool pending = __fpending(stdout) != 0, failed = ferror(stdout) != 0;
	int e = 0;

	if (fclose(stdout) != 0 && (pending || errno != EBADF)) {
		failed = true;
		e = errno;
	}
	if (!failed || rc != 0)
		return rc; /* a failed command has said why already */
	if (e)
		return hl_cmd_fail("cannot write the output: %s", strerror(e));
	return hl_cmd_fail("cannot write the output");
}

static const char main_help_usage[] = "usage: healer help [COMMAND]\n"
                                      "\n"
                                      "Prints the commands, or COMMAND's usage.\n";
static const char main_version_usage[] = "usage: healer version\n"
                                         "\n"
                                         "Prints the version and the enabled features.\n";

static bool
main_is_help(const char *arg)
{
	return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

/* A usage error of help or version: the bad word, then the usage. */
static int
main_usage_error(const char *usage, const char *arg)
{
	fprintf(stderr, "healer: %s '%s'\n",
	        arg[0] == '-' ? "unknown option" : "unexpected argument", arg);
	fputs(usage, stderr);
	return 2;
}

/* healer help [COMMAND] (also --help, -h) */
static int
main_help(int argc, char **argv)
{
	const char *name = argc > 2 ? argv[2] : NULL;

	if (argc > 3)
		return main_usage_error(main_help_usage, argv[3]);
	if (!name) {
		main_usage(stdout);
		return 0;
	}
	if (strcmp(name, "help") == 0 || main_is_help(name)) {
		fputs(main_help_usage, stdout);
		return 0;
	}
	if (strcmp(name, "version") == 0) {
		fputs(main_version_usage, stdout);
		return 0;
	}
	if (!hl_cmd_find(name)) {
		fprintf(stderr, "healer: unknown command '%s'\n", name);
		main_usage(stderr);
		return 2;
	}
	return hl_cmd_help(name);
}

/* healer version (also --version) */
static int
main_version(int argc, char **argv)
{
	int i;

	for (i = 2; i < argc; i++)
		if (main_is_help(argv[i])) {
			fputs(main_version_usage, stdout);
			return 0;
		}
	if (argc > 2)
		return main_usage_error(main_version_usage, argv[2]);
	printf("healer %s\n", HL_VERSION);
	printf("features: %s\n", HL_FEATURES);
	return 0;
}

static int
main_dispatch(int argc, char **argv)
{
	const struct hl_cmd *c;

	if (argc < 2) {
		main_usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "help") == 0 || main_is_help(argv[1]))
		return main_help(argc, argv);
	if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0)
		return main_version(argc, argv);
	c = hl_cmd_find(argv[1]);
	if (!c) {
		fprintf(stderr, "healer: unknown command '%s'\n", argv[1]);
		main_usage(stderr);
		return 2;
	}
	if (hl_cmd_wants_help(argc - 1, argv + 1))
		return hl_cmd_help(c->name);
	return c->fn(argc - 1, argv + 1);
}

int
main(int argc, char **argv)
{
	return main_close_stdout(main_dispatch(argc, argv));
}
