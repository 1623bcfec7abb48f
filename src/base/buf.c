/*
 * buf.c - growable buffer with a size cap and a sticky error; see buf.h.
 */
#include "buf.h"

#include "str.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char hl_buf_empty[1];

void
hl_buf_init(struct hl_buf *b, size_t max)
{
	b->data = hl_buf_empty;
	b->len = 0;
	b->cap = 0;
	b->max = max;
	b->err = 0;
}

void
hl_buf_release(struct hl_buf *b)
{
	if (b->cap)
		free(b->data);
	hl_buf_init(b, b->max);
}

void
hl_buf_reset(struct hl_buf *b)
{
	b->len = 0;
	b->err = 0;
	if (b->cap)
		b->data[0] = '\0';
}

static int
buf_fail(struct hl_buf *b, int code)
{
	if (!b->err)
		b->err = code;
	return -b->err;
}

int
hl_buf_grow(struct hl_buf *b, size_t extra)
{
	size_t need, ncap;
	char *p;

	if (b->err)
		return -b->err;
	if (extra > (size_t)-1 - b->len - 1)
		return buf_fail(b, HL_ENOMEM);
	need = b->len + extra + 1;
	if (b->max && b->len + extra > b->max)
		return buf_fail(b, HL_ETOOBIG);
	if (need <= b->cap)
		return 0;
	ncap = b->cap ? b->cap : 64;
	while (ncap < need)
		ncap = ncap > ((size_t)-1) / 2 ? need : ncap * 2;
	p = b->cap ? realloc(b->data, ncap) : malloc(ncap);
	if (!p)
		return buf_fail(b, HL_ENOMEM);
	if (!b->cap)
		p[0] = '\0';
	b->data = p;
	b->cap = ncap;
	return 0;
}

void
hl_buf_setlen(struct hl_buf *b, size_t len)
{
	if (!b->cap)
		return;
	if (len >= b->cap)
		len = b->cap - 1;
	b->len = len;
	b->data[len] = '\0';
}

int
hl_buf_append(struct hl_buf *b, const void *mem, size_t n)
{
	int rc;

	if (n == 0)
		return b->err ? -b->err : 0;
	if ((rc = hl_buf_grow(b, n)) < 0)
		return rc;
	memcpy(b->data + b->len, mem, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int
hl_buf_append_str(struct hl_buf *b, const char *s)
{
	return hl_buf_append(b, s, strlen(s));
}

int
hl_buf_append_char(struct hl_buf *b, char c)
{
	return hl_buf_append(b, &c, 1);
}

int
hl_buf_append_i64(struct hl_buf *b, int64_t v)
{
	char tmp[24], *p = tmp + sizeof(tmp);
	uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		*--p = '-';
	return hl_buf_append(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

int
hl_buf_vappendf(struct hl_buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	int n, rc;

	if (b->err)
		return -b->err;
	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0)
		return buf_fail(b, HL_EINVAL);
	if ((rc = hl_buf_grow(b, (size_t)n)) < 0)
		return rc;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int
hl_buf_appendf(struct hl_buf *b, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = hl_buf_vappendf(b, fmt, ap);
	va_end(ap);
	return rc;
}

int
hl_buf_append_json_escaped(struct hl_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, start = 0;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[7];
		size_t elen = 2;

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		hl_buf_append(b, s + start, i - start);
		esc[0] = '\\';
		switch (c) {
		case '"':
			esc[1] = '"';
			break;
		case '\\':
			esc[1] = '\\';
			break;
		case '\n':
			esc[1] = 'n';
			break;
		case '\r':
			esc[1] = 'r';
			break;
		case '\t':
			esc[1] = 't';
			break;
		case '\b':
			esc[1] = 'b';
			break;
		case '\f':
			esc[1] = 'f';
			break;
		default:
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			elen = 6;
		}
		hl_buf_append(b, esc, elen);
		start = i + 1;
	}
	return hl_buf_append(b, s + start, n - start);
}

char *
hl_buf_detach(struct hl_buf *b, size_t *len_out)
{
	char *p;

	if (b->err) {
		hl_buf_release(b);
		return NULL;
	}
	if (!b->cap) {
		p = malloc(1);
		if (p)
			p[0] = '\0';
	} else {
		p = b->data;
	}
	if (len_out)
		*len_out = b->len;
	hl_buf_init(b, b->max);
	return p;
}

int
hl_buf_append_utf8(struct hl_buf *b, const char *s, size_t n)
{
	size_t i = 0, k, m;
	const char *z;

	while (i < n) {
		k = hl_utf8_valid_len(s + i, n - i);
		while (k > 0) {
			/* the valid run, without its NUL bytes */
			z = memchr(s + i, '\0', k);
			m = z ? (size_t)(z - (s + i)) : k;
			hl_buf_append(b, s + i, m);
			i += z ? m + 1 : m;
			k -= z ? m + 1 : m;
		}
		if (i < n) {
			hl_buf_append(b, "\xef\xbf\xbd", 3);
			i++;
		}
	}
	return hl_buf_error(b);
}
