/*
 * url.c - percent-encoding of path segments and query values, userinfo
 * stripping and the request-path check; see url.h. Character classes are
 * spelled out (no <ctype.h>), so the result never depends on the locale.
 */
#include "url.h"

#include <stdbool.h>
#include <string.h>

static const char url_hex[] = "0123456789ABCDEF";

static bool
url_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

static void
url_encode_byte(struct hl_buf *b, unsigned char c)
{
	char e[3] = { '%', url_hex[c >> 4], url_hex[c & 15] };

	hl_buf_append(b, e, 3);
}

int
hl_url_append_segment(struct hl_buf *b, const char *s)
{
	const unsigned char *p;
	bool dots_only = true;

	if (!s || !*s)
		return -HL_EINVAL;
	for (p = (const unsigned char *)s; *p; p++)
		if (*p != '.')
			dots_only = false;
	for (p = (const unsigned char *)s; *p; p++) {
		if (url_unreserved(*p) && !dots_only)
			hl_buf_append_char(b, (char)*p);
		else
			url_encode_byte(b, *p);
	}
	return hl_buf_error(b);
}

int
hl_url_append_query_value(struct hl_buf *b, const char *s)
{
	const unsigned char *p;

	for (p = (const unsigned char *)(s ? s : ""); *p; p++) {
		if (url_unreserved(*p))
			hl_buf_append_char(b, (char)*p);
		else
			url_encode_byte(b, *p);
	}
	return hl_buf_error(b);
}

int
hl_url_strip_userinfo(struct hl_buf *out, const char *url)
{
	const char *auth, *end, *at = NULL, *p;

	if (!url)
		return hl_buf_error(out);
	auth = strstr(url, "://");
	auth = auth ? auth + 3 : url;
	end = auth + strcspn(auth, "/?#");
	for (p = auth; p < end; p++)
		if (*p == '@')
			at = p;
	if (!at)
		return hl_buf_append_str(out, url);
	hl_buf_append(out, url, (size_t)(auth - url));
	return hl_buf_append_str(out, at + 1);
}

int
hl_url_strip_userinfo_text(struct hl_buf *out, const char *text)
{
	const char *p = text, *sep, *auth, *end, *at, *q;

	if (!text)
		return hl_buf_error(out);
	while ((sep = strstr(p, "://")) != NULL) {
		auth = sep + 3;
		/* the authority ends at its delimiters or at a byte no URL
		 * holds (userinfo may hold sub-delimiters: ' ( ) and more) */
		end = auth + strcspn(auth, "/?#\\ \t\r\n\"<>`{}|^");
		for (at = NULL, q = auth; q < end; q++)
			if (*q == '@')
				at = q;
		if (at) {
			hl_buf_append(out, p, (size_t)(auth - p));
			p = at + 1;
		} else {
			hl_buf_append(out, p, (size_t)(end - p));
			p = end;
		}
	}
	return hl_buf_append_str(out, p);
}

static int
url_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static int
url_refuse(struct hl_err *err, const char *path, const char *why)
{
	return hl_err_set(err, HL_EINVAL, "request path '%.120s%s' refused: %s", path,
	                  strlen(path) > 120 ? "..." : "", why);
}

int
hl_url_check_path(const char *path, struct hl_err *err)
{
	const char *p, *q;
	size_t seglen = 0, dots = 0;
	bool in_query = false;

	if (!path || path[0] != '/')
		return url_refuse(err, path ? path : "", "it does not start with '/'");
	q = path + strcspn(path, "?");
	for (p = path; *p; p++) {
		unsigned char c = (unsigned char)*p;
		int dec = c, sep;

		if (c == '#')
			return url_refuse(err, path, "it holds a '#'");
		if (c <= 0x20 || c >= 0x7f || c == '\\')
			return url_refuse(err, path,
			                  "it holds a byte that must be percent-encoded");
		if (c == '%') {
			int hi = url_hexval(p[1]), lo = hi < 0 ? -1 : url_hexval(p[2]);

			if (hi < 0 || lo < 0)
				return url_refuse(err, path, "it holds a malformed %-escape");
			dec = hi * 16 + lo;
		}
		if (p >= q)
			in_query = true;
		if (in_query) {
			if (c == '%')
				p += 2;
			continue;
		}
		sep = dec == '/' || dec == '\\';
		if (p == path) {
			/* the leading '/' */
		} else if (sep) {
			if (seglen == 0)
				return url_refuse(err, path, "it has an empty segment");
			if (dots == seglen && seglen <= 2)
				return url_refuse(err, path, "it has a '.' or '..' segment");
			seglen = dots = 0;
		} else {
			seglen++;
			if (dec == '.')
				dots++;
		}
		if (c == '%')
			p += 2;
	}
	/* the last segment (a trailing '/' leaves it empty, which is fine) */
	if (seglen > 0 && dots == seglen && seglen <= 2)
		return url_refuse(err, path, "it has a '.' or '..' segment");
	return 0;
}
