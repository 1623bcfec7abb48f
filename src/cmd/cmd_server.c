/*
 * cmd_server.c - placeholder until the command is implemented.
 */
#include "cmd.h"

int
hl_cmd_server(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return hl_cmd_fail("not implemented yet");
}

