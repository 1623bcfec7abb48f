/*
 * buf.h - the growable byte buffer used everywhere in healer.
 *
 * Invariants (after git's strbuf, curl's dynbuf and SQLite's StrAccum):
 *  - data is never NULL and always NUL-terminated (it points at a static ""
 *    until the first append), even when the content holds NUL bytes;
 *  - max caps the content length (0 means no cap); going past it fails with
 *    HL_ETOOBIG;
 *  - errors are sticky: after the first failure appends do nothing, so a
 *    caller appends freely and checks hl_buf_error() once at the end.
 * Not thread-safe; one owner at a time.
 */
#ifndef HL_BASE_BUF_H
#define HL_BASE_BUF_H

#include "err.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hl_buf {
	char *data;
	size_t len;
	size_t cap; /* 0 while data points at the static empty string */
	size_t max;
	int err; /* 0 or HL_ENOMEM / HL_ETOOBIG, sticky */
};

extern char hl_buf_empty[1];

#define HL_BUF_INIT(maxlen)                     \
	{                                       \
		hl_buf_empty, 0, 0, (maxlen), 0 \
	}

/* A non-owning view of bytes; not NUL-terminated. */
struct hl_str {
	const char *p;
	size_t n;
};

void hl_buf_init(struct hl_buf *b, size_t max);
/* Frees the content and re-initializes (keeps max). */
void hl_buf_release(struct hl_buf *b);
/* Empties the content, keeps the memory and clears the error. */
void hl_buf_reset(struct hl_buf *b);
/* Ensures room for extra more bytes. */
int hl_buf_grow(struct hl_buf *b, size_t extra);
void hl_buf_setlen(struct hl_buf *b, size_t len);

int hl_buf_append(struct hl_buf *b, const void *mem, size_t n);
int hl_buf_append_str(struct hl_buf *b, const char *s);
int hl_buf_append_char(struct hl_buf *b, char c);
/* Appends v in decimal (what "%lld" writes, without printf's cost). */
int hl_buf_append_i64(struct hl_buf *b, int64_t v);
int hl_buf_appendf(struct hl_buf *b, const char *fmt, ...) HL_PRINTF(2, 3);
int hl_buf_vappendf(struct hl_buf *b, const char *fmt, va_list ap) HL_PRINTF(2, 0);
/* Appends s as the inside of a JSON string (no quotes), escaping as RFC 8259. */
int hl_buf_append_json_escaped(struct hl_buf *b, const char *s, size_t n);
/* Appends s[0..n) as valid UTF-8 without NUL bytes: a byte that belongs to
 * no valid sequence becomes U+FFFD, a NUL byte is dropped (text from logs
 * made fit for JSON). Returns 0 or b's error. */
int hl_buf_append_utf8(struct hl_buf *b, const char *s, size_t n);

/* Returns the malloc'd content (caller frees) and re-initializes b.
 * Returns NULL if b is in error (its memory is freed then). */
char *hl_buf_detach(struct hl_buf *b, size_t *len_out);

static inline int
hl_buf_error(const struct hl_buf *b)
{
	return b->err ? -b->err : 0;
}

static inline struct hl_str
hl_buf_view(const struct hl_buf *b)
{
	struct hl_str s = { b->data, b->len };
	return s;
}

#endif
