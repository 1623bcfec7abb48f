/*
 * dashboard.c - the dashboard's routes (contract section 13): GET / (the
 * app, or the login page when HEALER_API_TOKEN is set and the request has
 * no valid session), GET /assets/NAME (the embedded files), POST /login
 * and POST /logout.
 *
 * A client address with too many wrong tokens in a minute gets 429 with
 * Retry-After for every login until its window passes (login_guard.c);
 * a bearer token on GET / is judged under the same limit. A logout whose
 * revocation the store did not take answers 503 and keeps the cookie.
 *
 * Invariants: every page and asset goes out with the security headers
 * below (a Content-Security-Policy without inline script, nosniff, no
 * framing, no referrer) and a strong ETag (304 on a match). The session
 * cookie never holds the token (src/dashboard/dashboard.h); the token of
 * the login form is compared in constant time and never logged.
 */
#include "dashboard/dashboard.h"

#include "base/clock.h"
#include "base/log.h"
#include "base/str.h"
#include "http_impl.h"
#include "store/loop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DASH_CSP                                                                          \
	"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " \
	"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

/* The security headers of every dashboard answer, then "Cache-Control"
 * (X-Content-Type-Options: nosniff is on every answer, server.c). */
#define DASH_HEADERS                                                                       \
	"Content-Security-Policy", DASH_CSP, "X-Frame-Options", "DENY", "Referrer-Policy", \
	        "same-origin", "Cross-Origin-Opener-Policy", "same-origin",                \
	        "Cross-Origin-Resource-Policy", "same-origin", "Cache-Control", "no-cache"

static enum MHD_Result
dash_serve(struct http_req *r, const struct hl_dash_file *f)
{
	const char *inm = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	                                              MHD_HTTP_HEADER_IF_NONE_MATCH);
	const char *hdrs[] = { DASH_HEADERS, "ETag", f->etag, "Vary", "Cookie", NULL };
	char *body;

	if (hl_dash_etag_match(inm, f->etag))
		return hl_http_reply_hdrs(r, 304, f->ctype, NULL, 0, hdrs);
	body = malloc(f->len ? f->len : 1);
	if (!body)
		return hl_http_reply_error(r, 500, "internal", "out of memory");
	memcpy(body, f->data, f->len);
	return hl_http_reply_hdrs(r, 200, f->ctype, body, f->len, hdrs);
}

/* GET /: a bearer token is judged like the API's (hl_http_auth_refused):
 * under the failed-login limit, so the page is no token oracle. */
enum MHD_Result
hl_http_dashboard(struct http_req *r, const char *arg)
{
	const char *want = r->srv->cfg->api_token;
	const char *auth = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	                                               MHD_HTTP_HEADER_AUTHORIZATION);
	const struct hl_dash_file *f;
	struct http_addr from;
	bool bearer = want && *want && auth && strncasecmp(auth, "Bearer ", 7) == 0, ok;
	int wait_s;

	(void)arg;
	if (bearer) {
		hl_http_login_client(&r->srv->login_guard, r, &from);
		/* before the token: while blocked the answer says nothing of it */
		if ((wait_s = hl_http_login_blocked_s(&r->srv->login_guard, &from)) > 0)
			return hl_http_too_many_logins(r, wait_s);
	}
	ok = hl_http_read_ok(r);
	if (bearer && !ok)
		hl_http_login_failed(&r->srv->login_guard, &from);
	f = hl_dash_file(ok ? "index.html" : "login.html");
	if (!f)
		return hl_http_reply_error(r, 404, "not_found", "the dashboard is not built in");
	return dash_serve(r, f);
}

enum MHD_Result
hl_http_dashboard_asset(struct http_req *r, const char *name)
{
	const struct hl_dash_file *f = NULL;

	/* index.html and login.html only through GET / */
	if (!strstr(name, "..") && !strchr(name, '/') && !strstr(name, ".html"))
		f = hl_dash_file(name);
	if (!f)
		return hl_http_reply_error(r, 404, "not_found", "no asset '%s'", name);
	return dash_serve(r, f);
}

static int
dash_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The value of field name in an application/x-www-form-urlencoded body,
 * decoded into out (size bytes); false when absent or too long. */
static bool
dash_form_field(char *out, size_t size, const char *body, size_t len, const char *name)
{
	size_t nlen = strlen(name), i = 0, o = 0;

	while (i < len) {
		size_t end = i;
		while (end < len && body[end] != '&')
			end++;
		if (end - i > nlen && strncmp(body + i, name, nlen) == 0 && body[i + nlen] == '=') {
			for (i += nlen + 1; i < end; i++) {
				int c = (unsigned char)body[i];
				if (c == '+')
					c = ' ';
				else if (c == '%' && i + 2 < end && dash_hexval(body[i + 1]) >= 0 &&
				         dash_hexval(body[i + 2]) >= 0) {
					c = dash_hexval(body[i + 1]) * 16 +
					    dash_hexval(body[i + 2]);
					i += 2;
				}
				if (o + 1 >= size)
					return false;
				out[o++] = (char)c;
			}
			out[o] = '\0';
			return true;
		}
		i = end + 1;
	}
	return false;
}

/* healer speaks plain HTTP; behind an ingress that terminates TLS (it says
 * so in X-Forwarded-Proto) the session cookie is marked Secure, so a browser
 * never sends it over plain HTTP. Without the header (a port-forward, a
 * local run) the cookie must work over http://. */
static bool
dash_over_tls(struct http_req *r)
{
	const char *proto =
	        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Forwarded-Proto");

	return proto && strcasecmp(proto, "https") == 0;
}

static enum MHD_Result
dash_redirect(struct http_req *r, const char *location, const char *cookie)
{
	const char *hdrs[] = { DASH_HEADERS, "Location", location, cookie ? "Set-Cookie" : NULL,
		               cookie,       NULL };

	return hl_http_reply_hdrs(r, 303, "text/plain; charset=utf-8", NULL, 0, hdrs);
}

enum MHD_Result
hl_http_too_many_logins(struct http_req *r, int wait_s)
{
	const char *accept =
	        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
	char retry[16], *body;
	const char *hdrs[] = { "Retry-After", retry, "Cache-Control", "no-store", "Vary",
		               "Accept",      NULL };
	const char *page_hdrs[] = { DASH_HEADERS, "Retry-After", retry, "Vary", "Accept", NULL };
	int n;

	snprintf(retry, sizeof(retry), "%d", wait_s);
	if (accept && strstr(accept, "text/html")) {
		n = asprintf(
		        &body,
		        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
		        "<title>healer &middot; log in</title>\n"
		        "<link rel=\"stylesheet\" href=\"/assets/app.css\">\n</head>\n<body>\n"
		        "<header class=\"top\"><span class=\"brand\">healer</span></header>\n"
		        "<main id=\"main\" class=\"login\">\n<h1>Log in</h1>\n"
		        "<p class=\"error\" role=\"alert\">Too many failed logins from this "
		        "address (%d within %d seconds) or from all addresses together. Try again "
		        "in %d seconds.</p>\n"
		        "<p><a href=\"/\">Back to the login</a></p>\n</main>\n</body>\n</html>\n",
		        HTTP_LOGIN_MAX_FAILURES, HTTP_LOGIN_WINDOW_MS / 1000, wait_s);
		if (n < 0)
			return hl_http_reply_error(r, 500, "internal", "out of memory");
		return hl_http_reply_hdrs(r, 429, "text/html; charset=utf-8", body, (size_t)n,
		                          page_hdrs);
	}
	n = asprintf(&body,
	             "{\"error\":\"too_many_attempts\",\"message\":\"%d failed logins from this "
	             "address within %d seconds, or too many from all addresses together; try "
	             "again in %d seconds\",\"retry_after\":%d}",
	             HTTP_LOGIN_MAX_FAILURES, HTTP_LOGIN_WINDOW_MS / 1000, wait_s, wait_s);
	if (n < 0)
		return hl_http_reply_error(r, 500, "internal", "out of memory");
	return hl_http_reply_hdrs(r, 429, "application/json; charset=utf-8", body, (size_t)n, hdrs);
}

enum MHD_Result
hl_http_login(struct http_req *r, const char *arg)
{
	const char *want = r->srv->cfg->api_token;
	char token[1024], session[HL_DASH_SESSION_MAX], cookie[256];
	struct http_addr from;
	int wait_s;
	bool ok;

	(void)arg;
	if (!hl_http_same_origin(r, true))
		return hl_http_reply_error(r, 403, "forbidden", "a login from another origin");
	if (!want || !*want)
		return dash_redirect(r, "/", NULL);
	hl_http_login_client(&r->srv->login_guard, r, &from);
	/* checked before the token: while blocked, even the right one is
	 * refused, so the answer says nothing about a guess */
	if ((wait_s = hl_http_login_blocked_s(&r->srv->login_guard, &from)) > 0)
		return hl_http_too_many_logins(r, wait_s);
	ok = dash_form_field(token, sizeof(token), r->body.data ? r->body.data : "", r->body.len,
	                     "token") &&
	     hl_str_ct_equal(token, strlen(token), want, strlen(want));
	memset(token, 0, sizeof(token));
	if (!ok)
		hl_http_login_failed(&r->srv->login_guard, &from);
	if (!ok || hl_dash_session_new(session, want, hl_time_wall_ms() / 1000) < 0)
		return dash_redirect(r, "/?login=failed", NULL);
	snprintf(cookie, sizeof(cookie), "%s=%s; Path=/; Max-Age=%d; HttpOnly; SameSite=Strict%s",
	         HL_DASH_COOKIE, session, HL_DASH_SESSION_S, dash_over_tls(r) ? "; Secure" : "");
	return dash_redirect(r, "/", cookie);
}

/* Ends the request's session for every replica: its id is recorded
 * revoked in the store until it would have expired (older records are
 * pruned on the way). False when the revocation could not be stored (the
 * session would still read on every replica). */
static bool
dash_revoke(struct http_req *r)
{
	const char *want = r->srv->cfg->api_token;
	const char *cookie = MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND, HL_DASH_COOKIE);
	struct hl_err err = HL_ERR_INIT;
	int64_t now_ms = hl_time_wall_ms(), exp_s = 0, pruned = 0;
	char sid[HL_DASH_SID_MAX], key[64], value[24];

	if (!want || !*want || !hl_dash_session_ok(cookie, want, now_ms / 1000, sid, &exp_s))
		return true;
	snprintf(key, sizeof(key), HL_HTTP_REVOKED_PREFIX "%s", sid);
	snprintf(value, sizeof(value), "%lld", (long long)exp_s);
	if (hl_store_kv_put(r->srv->store, key, value, &err) < 0) {
		hl_log_kv(HL_LOG_WARN, "a logout could not revoke its session in the store",
		          "error", err.msg, NULL);
		return false;
	}
	if (hl_store_kv_prune(r->srv->store, &pruned, HL_HTTP_REVOKED_PREFIX,
	                      now_ms - (int64_t)HL_DASH_SESSION_S * 1000 - 60000, &err) < 0)
		hl_log_kv(HL_LOG_WARN, "a logout could not prune the revoked sessions", "error",
		          err.msg, NULL);
	return true;
}

/* 503 when the logout could not be stored: the cookie is kept (the
 * session is still live, and the page says so). */
static enum MHD_Result
dash_logout_failed(struct http_req *r)
{
	static const char page[] =
	        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
	        "<title>healer &middot; log out</title>\n"
	        "<link rel=\"stylesheet\" href=\"/assets/app.css\">\n</head>\n<body>\n"
	        "<header class=\"top\"><span class=\"brand\">healer</span></header>\n"
	        "<main id=\"main\" class=\"login\">\n<h1>Logout failed</h1>\n"
	        "<p class=\"error\" role=\"alert\">The session could not be ended: the store "
	        "did not record it. You are still logged in; try again in a moment.</p>\n"
	        "<p><a href=\"/\">Back to the dashboard</a></p>\n</main>\n</body>\n</html>\n";
	const char *hdrs[] = { DASH_HEADERS, NULL };
	char *body = malloc(sizeof(page) - 1);

	if (!body)
		return hl_http_reply_error(r, 500, "internal", "out of memory");
	memcpy(body, page, sizeof(page) - 1);
	return hl_http_reply_hdrs(r, 503, "text/html; charset=utf-8", body, sizeof(page) - 1, hdrs);
}

enum MHD_Result
hl_http_logout(struct http_req *r, const char *arg)
{
	(void)arg;
	if (!hl_http_same_origin(r, true))
		return hl_http_reply_error(r, 403, "forbidden", "a logout from another origin");
	if (!dash_revoke(r))
		return dash_logout_failed(r);
	return dash_redirect(r, "/",
	                     HL_DASH_COOKIE "=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict");
}
