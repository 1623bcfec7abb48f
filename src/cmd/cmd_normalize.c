/*
 * cmd_normalize.c - placeholder until the command is implemented.
 */
#include "cmd.h"

int
hl_cmd_normalize(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return hl_cmd_fail("not implemented yet");
}

