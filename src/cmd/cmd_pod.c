/*
 * cmd_pod.c - placeholder until the command is implemented.
 */
#include "cmd.h"

int
hl_cmd_fetch_logs(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return hl_cmd_fail("not implemented yet");
}

int
hl_cmd_spawn_remediation(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return hl_cmd_fail("not implemented yet");
}

