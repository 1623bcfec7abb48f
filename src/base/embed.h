/*
 * embed.h - files compiled into the binary at build time by
 * scripts/embed.py (migrations; see each module's meson.build). An array
 * of entries sorted by path, plus its length in <symbol>_count.
 */
#ifndef HL_BASE_EMBED_H
#define HL_BASE_EMBED_H

#include <stddef.h>

struct hl_embed {
	const char *path; /* relative to the embedded directory, '/'-separated */
	const char *data; /* NUL-terminated; len bytes */
	size_t len;
};

#endif
