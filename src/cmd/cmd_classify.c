/*
 * cmd_classify.c - placeholder until the command is implemented.
 */
#include "cmd.h"

int
hl_cmd_classify(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return hl_cmd_fail("not implemented yet");
}

int
hl_cmd_check_rules(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return hl_cmd_fail("not implemented yet");
}

