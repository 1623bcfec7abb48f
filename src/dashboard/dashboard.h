/*
 * dashboard.h - the web dashboard's embedded files and its login session
 * (contract section 13). The files of src/dashboard/web/ are compiled into
 * the binary; each has a content type and a strong ETag (a hash of its
 * bytes). The session cookie proves that its holder once gave the API
 * token: "<expiry seconds>.<session id>.<hex HMAC-SHA256 of both>", keyed
 * by a key derived from the token, so it never carries the token, survives
 * a restart, is accepted by every replica with the same token and dies when
 * the token changes; the id (random) is what a logout revokes, in the
 * store, for every replica (src/http/routes.c). All functions are
 * thread-safe.
 */
#ifndef HL_DASHBOARD_DASHBOARD_H
#define HL_DASHBOARD_DASHBOARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The session cookie's name and lifetime. */
#define HL_DASH_COOKIE      "healer_session"
#define HL_DASH_SESSION_S   (12 * 3600)
#define HL_DASH_SESSION_MAX 128 /* bytes of a session value with its NUL */
#define HL_DASH_SID_MAX     33  /* bytes of a session id (32 hex) with its NUL */
#define HL_DASH_ETAG_MAX    40  /* bytes of an ETag with its quotes and NUL */

struct hl_dash_file {
	const char *name; /* path under web/, e.g. "app.js" */
	const char *data; /* static */
	size_t len;
	const char *ctype;           /* Content-Type */
	char etag[HL_DASH_ETAG_MAX]; /* "\"<hex>\"" */
};

/* The embedded file called name (no leading slash), or NULL. Static. */
const struct hl_dash_file *hl_dash_file(const char *name);

/* Writes a strong ETag of data ("\"<32 hex>\"") into out (HL_DASH_ETAG_MAX
 * bytes). */
void hl_dash_etag(char *out, const void *data, size_t len);

/* True when an If-None-Match header value (NULL: false) names etag
 * (a list, weak forms and "*" are understood). */
bool hl_dash_etag_match(const char *if_none_match, const char *etag);

/* Writes a session value valid until now_s + HL_DASH_SESSION_S into out
 * (HL_DASH_SESSION_MAX bytes). Returns 0, or -HL_EINTERNAL. */
int hl_dash_session_new(char *out, const char *token, int64_t now_s);

/* True when value is a session signed with token's key that has not
 * expired at now_s; then its id goes to sid (HL_DASH_SID_MAX bytes, may be
 * NULL) and its expiry to *exp_s (may be NULL). Constant time in the
 * signature. */
bool hl_dash_session_ok(const char *value, const char *token, int64_t now_s, char *sid,
                        int64_t *exp_s);

#endif
