/*
 * cmd_render.c - placeholder until the command is implemented.
 */
#include "cmd.h"

int
hl_cmd_render(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return hl_cmd_fail("not implemented yet");
}

