/*
 * prom.c - Prometheus text exposition helpers (see prom.h).
 */
#include "prom.h"

void
hl_prom_label(struct hl_buf *out, const char *s)
{
	for (; s && *s; s++) {
		if (*s == '\\')
			hl_buf_append_str(out, "\\\\");
		else if (*s == '"')
			hl_buf_append_str(out, "\\\"");
		else if (*s == '\n')
			hl_buf_append_str(out, "\\n");
		else
			hl_buf_append_char(out, *s);
	}
}
