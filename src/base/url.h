/*
 * url.h - building request URLs from untrusted parts, and showing URLs
 * without their credentials.
 *
 * Every variable part of a request path (a repository owner, a pod name, a
 * ref) goes through hl_url_append_segment, so it stays one segment: no '/'
 * that adds a level, no "." or ".." that climbs one, no '?' or '#' that ends
 * the path, no '%' that a server could decode into any of these. Query
 * values go through hl_url_append_query_value. hl_url_check_path is the
 * last line of defence for a path that was built elsewhere: the clients
 * refuse a path it refuses, so a caller that forgot to encode gets an error
 * instead of a request to another endpoint. Thread-safe; libc only.
 */
#ifndef HL_BASE_URL_H
#define HL_BASE_URL_H

#include "buf.h"
#include "err.h"

/*
 * Appends s to b as one path segment (RFC 3986 section 3.3):
 * unreserved characters (A-Z a-z 0-9 - . _ ~) are kept, every other byte is
 * percent-encoded with upper-case hex ('/' -> %2F, '%' -> %25, '#' -> %23,
 * '?' -> %3F, ' ' -> %20, UTF-8 byte by byte). A segment of dots only
 * ("." or "..", or longer) has every dot encoded (%2E), so it can never be
 * read as a dot-segment by a client that normalizes paths.
 * Returns 0; -HL_EINVAL for NULL or "" (an empty segment would merge two
 * levels) with b untouched; or b's sticky error (-HL_ENOMEM, -HL_ETOOBIG).
 */
int hl_url_append_segment(struct hl_buf *b, const char *s);

/*
 * Appends s percent-encoded for a query value (the part after '=' in
 * application/x-www-form-urlencoded pairs): unreserved characters are
 * kept, every other byte is encoded ('&' -> %26, '=' -> %3D, '+' -> %2B,
 * ' ' -> %20, '#' -> %23). "" appends nothing. Returns 0 or b's error.
 */
int hl_url_append_query_value(struct hl_buf *b, const char *s);

/*
 * Appends url to out without the userinfo ("user:pass@") of its authority,
 * for messages and logs: "https://u:p@host/x" -> "https://host/x". A URL
 * without "scheme://" is treated as starting with its authority. Only the
 * credentials are removed; the rest is copied as is. Returns 0 or out's
 * error.
 */
int hl_url_strip_userinfo(struct hl_buf *out, const char *url);

/*
 * Appends text with the userinfo of every URL in it removed: wherever
 * "://" appears, an '@' before the end of the authority (the first '/',
 * '?', '#', whitespace, or a byte no URL holds: '"' '<' '>' '`' '\\' '{'
 * '}' '|' '^') drops everything from the authority's start to the last
 * such '@'. For messages, logs and
 * stored texts that may quote a configured URL. Returns 0 or out's error.
 */
int hl_url_strip_userinfo_text(struct hl_buf *out, const char *text);

/*
 * Checks a request path (with an optional "?query") built for an API base
 * URL: it must start with '/', contain no '#', no space, control byte,
 * backslash or non-ASCII byte (those must have been encoded), only valid
 * %XX escapes, and its path part no empty segment and no segment that is
 * "." or ".." once decoded (an encoded slash or backslash, %2F or %5C,
 * counts as a separator, as some servers decode before routing).
 * Returns 0, or -HL_EINVAL with err naming the path (truncated).
 */
int hl_url_check_path(const char *path, struct hl_err *err);

#endif
