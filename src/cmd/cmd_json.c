/*
 * cmd_json.c - a JSON document printed for a terminal (`healer status
 * --json`, `healer insights --json`). Stored text is untrusted (repository
 * names, reasons, job names come from webhooks): jansson escapes only the
 * controls below U+0020, so DEL (U+007F) and the C1 controls (U+0080 to
 * U+009F, which terminals take as CSI, OSC and the like) would reach the
 * terminal as they are. They are written as \u007f and \u0080..\u009f,
 * still the same JSON text for any parser.
 */
#include "cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Writes text[0..len) to out with U+007F and U+0080..U+009F (UTF-8 C2 80
 * to C2 9F) as \u escapes. In a JSON dump they only occur inside strings,
 * and a 0xC2 byte is always a lead byte there (jansson writes valid
 * UTF-8). */
static int
json_write_terminal_safe(FILE *out, const char *text, size_t len)
{
	size_t i, run = 0;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];
		unsigned cp;

		if (c == 0x7f)
			cp = 0x7f;
		else if (c == 0xc2 && i + 1 < len && (unsigned char)text[i + 1] >= 0x80 &&
		         (unsigned char)text[i + 1] <= 0x9f)
			cp = (unsigned char)text[i + 1];
		else
			continue;
		if (fwrite(text + run, 1, i - run, out) != i - run ||
		    fprintf(out, "\\u%04x", cp) < 0)
			return -1;
		i += cp == 0x7f ? 0 : 1;
		run = i + 1;
	}
	return fwrite(text + run, 1, len - run, out) == len - run ? 0 : -1;
}

int
hl_cmd_print_json(json_t *doc, size_t flags)
{
	char *text = doc ? json_dumps(doc, flags) : NULL;
	int rc;

	if (!text)
		return hl_cmd_fail("out of memory");
	rc = json_write_terminal_safe(stdout, text, strlen(text));
	free(text);
	if (rc < 0 || fputc('\n', stdout) == EOF)
		return hl_cmd_fail("cannot write the JSON document to standard output");
	return 0;
}
