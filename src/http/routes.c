/*
 * routes.c - the route table: every path healer serves, the methods it
 * accepts, how it authenticates, whether it reads a body, and its handler.
 * Adding a route is one entry. The table index is the route's id in the
 * request metrics; the last entry ("other") counts unknown paths.
 *
 * Authentication declared here is checked before the body is read
 * (server.c: the bearer token, and that a signature header is there) and
 * again by the dispatcher before the handler runs: HTTP_AUTH_TOKEN routes
 * need `Authorization: Bearer <HEALER_API_TOKEN>` when a token is
 * configured. HTTP_AUTH_SIGNATURE routes verify the body's HMAC in their
 * handler (the body is needed). HTTP_AUTH_READ routes (what the dashboard
 * reads) take the bearer token or the dashboard's session cookie
 * (dashboard.c) when a token is configured; the dashboard's own pages and
 * assets are open (the page shows the login form without a session).
 * HTTP_AUTH_TOKEN routes refuse a browser's cross-origin call (403): without
 * a token, a web page could otherwise post an event to a loopback healer
 * (a body without a content type needs no CORS preflight). An open route of
 * a loopback server (no token or no secret) refuses a Host that is not a
 * loopback name (DNS rebinding).
 *
 * The slow read routes (status, metrics, insights, the lists, a task) hand
 * themselves to the reader threads after these checks (readers.c), and run
 * there with r->on_reader set.
 */
#include "base/clock.h"
#include "base/log.h"
#include "base/str.h"
#include "dashboard/dashboard.h"
#include "http_impl.h"
#include "server.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static enum MHD_Result
route_health(struct http_req *r, const char *arg)
{
	return hl_http_health(r);
}

static enum MHD_Result
route_ready(struct http_req *r, const char *arg)
{
	return hl_http_ready(r);
}

static enum MHD_Result
route_status(struct http_req *r, const char *arg)
{
	return r->on_reader ? hl_http_status(r) : hl_http_readers_submit(r);
}

static enum MHD_Result
route_metrics(struct http_req *r, const char *arg)
{
	return r->on_reader ? hl_http_metrics(r) : hl_http_readers_submit_ahead(r);
}

static enum MHD_Result
route_webhook(struct http_req *r, const char *arg)
{
	return hl_http_webhook(r);
}

static enum MHD_Result
route_remediate(struct http_req *r, const char *arg)
{
	return hl_http_remediate(r);
}

static enum MHD_Result
route_remediations(struct http_req *r, const char *arg)
{
	return r->on_reader ? hl_http_remediations(r) : hl_http_readers_submit(r);
}

static enum MHD_Result
route_remediation(struct http_req *r, const char *arg)
{
	return r->on_reader ? hl_http_remediation(r, arg) : hl_http_readers_submit(r);
}

static enum MHD_Result
route_insights(struct http_req *r, const char *arg)
{
	return r->on_reader ? hl_http_insights(r) : hl_http_readers_submit(r);
}

const struct hl_http_route hl_http_routes[] = {
	{ "webhook", "/webhook", HTTP_MATCH_EXACT, HTTP_POST, HTTP_AUTH_SIGNATURE, HL_HTTP_MAX_BODY,
	  route_webhook },
	{ "ci_failure", "/api/remediate/ci-failure", HTTP_MATCH_EXACT, HTTP_POST, HTTP_AUTH_TOKEN,
	  HL_HTTP_MAX_BODY, route_remediate },
	{ "security_alert", "/api/remediate/security-alert", HTTP_MATCH_EXACT, HTTP_POST,
	  HTTP_AUTH_TOKEN, HL_HTTP_MAX_BODY, route_remediate },
	{ "alerts_alertmanager", "/api/alerts/alertmanager", HTTP_MATCH_EXACT, HTTP_POST,
	  HTTP_AUTH_TOKEN, HL_HTTP_MAX_BODY, hl_http_alerts },
	{ "alerts_argocd", "/api/alerts/argocd", HTTP_MATCH_EXACT, HTTP_POST, HTTP_AUTH_TOKEN,
	  HL_HTTP_MAX_BODY, hl_http_alerts },
	{ "health", "/health", HTTP_MATCH_EXACT, HTTP_GET, HTTP_AUTH_NONE, 0, route_health },
	{ "ready", "/ready", HTTP_MATCH_EXACT, HTTP_GET, HTTP_AUTH_NONE, 0, route_ready },
	{ "status", "/api/status", HTTP_MATCH_EXACT, HTTP_GET, HTTP_AUTH_READ, 0, route_status },
	{ "metrics", "/metrics", HTTP_MATCH_EXACT, HTTP_GET, HTTP_AUTH_NONE, 0, route_metrics },
	{ "remediations", "/api/remediations", HTTP_MATCH_EXACT, HTTP_GET, HTTP_AUTH_READ, 0,
	  route_remediations },
	{ "remediation", "/api/remediations/", HTTP_MATCH_PREFIX, HTTP_GET, HTTP_AUTH_READ, 0,
	  route_remediation },
	{ "dashboard", "/", HTTP_MATCH_EXACT, HTTP_GET, HTTP_AUTH_NONE, 0, hl_http_dashboard },
	{ "dashboard_asset", "/assets/", HTTP_MATCH_PREFIX, HTTP_GET, HTTP_AUTH_NONE, 0,
	  hl_http_dashboard_asset },
	{ "login", "/login", HTTP_MATCH_EXACT, HTTP_POST, HTTP_AUTH_NONE,
	  HL_HTTP_MAX_FORM_BODY, hl_http_login },
	{ "logout", "/logout", HTTP_MATCH_EXACT, HTTP_POST, HTTP_AUTH_NONE,
	  HL_HTTP_MAX_FORM_BODY, hl_http_logout },
	{ "insights", "/api/insights", HTTP_MATCH_EXACT, HTTP_GET, HTTP_AUTH_READ, 0,
	  route_insights },
	{ "other", NULL, HTTP_MATCH_EXACT, 0, HTTP_AUTH_NONE, 0, NULL },
};

const size_t hl_http_n_routes = sizeof(hl_http_routes) / sizeof(hl_http_routes[0]);

const struct hl_http_route *
hl_http_route_of(const char *url, const char **arg)
{
	size_t i;

	*arg = "";
	for (i = 0; i + 1 < hl_http_n_routes; i++) {
		const struct hl_http_route *rt = &hl_http_routes[i];
		size_t n = strlen(rt->path);

		if (rt->match == HTTP_MATCH_EXACT && strcmp(url, rt->path) == 0)
			return rt;
		if (rt->match == HTTP_MATCH_PREFIX && strncmp(url, rt->path, n) == 0) {
			*arg = url + n;
			return rt;
		}
	}
	return hl_http_route_other(arg);
}

const struct hl_http_route *
hl_http_route_other(const char **arg)
{
	*arg = "";
	return &hl_http_routes[hl_http_n_routes - 1];
}

const char *
hl_http_route_name(int i)
{
	return i >= 0 && (size_t)i < hl_http_n_routes ? hl_http_routes[i].name : "other";
}

/* "POST", "GET, HEAD" or both, for the Allow header. */
const char *
hl_http_route_allow(const struct hl_http_route *rt)
{
	if ((rt->methods & HTTP_POST) && (rt->methods & HTTP_GET))
		return "GET, HEAD, POST";
	return rt->methods & HTTP_POST ? "POST" : "GET, HEAD";
}

static unsigned
route_method(const char *method)
{
	if (strcmp(method, MHD_HTTP_METHOD_POST) == 0)
		return HTTP_POST;
	if (strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0)
		return HTTP_GET;
	return 0;
}

bool
hl_http_token_ok(struct http_req *r)
{
	const char *want = r->srv->cfg->api_token;
	const char *auth;
	size_t n;

	if (!want || !*want)
		return true;
	auth = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	if (!auth || strncasecmp(auth, "Bearer ", 7) != 0)
		return false;
	/* "Bearer" 1*SP token68, the field value without surrounding
	 * whitespace (RFC 9110 5.5, 11.4) */
	for (auth += 7; *auth == ' '; auth++)
		;
	n = strlen(auth);
	while (n && (auth[n - 1] == ' ' || auth[n - 1] == '\t'))
		n--;
	return hl_str_ct_equal(auth, n, want, strlen(want));
}

/* A session a logout revoked, on any replica (fails closed: a store that
 * cannot say is taken as revoked; the bearer token still reads). */
static bool
http_session_revoked(struct hl_http_server *srv, const char *sid)
{
	struct hl_store *s = srv->lister ? srv->lister : srv->store;
	struct hl_err err = HL_ERR_INIT;
	char key[64], *v = NULL;
	int rc;

	snprintf(key, sizeof(key), HL_HTTP_REVOKED_PREFIX "%s", sid);
	rc = hl_store_kv_get(s, &v, key, &err);
	free(v);
	if (rc < 0 && rc != -HL_ENOTFOUND)
		hl_log_kv(HL_LOG_DEBUG, "a dashboard session could not be checked", "error",
		          err.msg, NULL);
	return rc != -HL_ENOTFOUND;
}

bool
hl_http_read_ok(struct http_req *r)
{
	const char *want = r->srv->cfg->api_token;
	const char *auth, *cookie;
	char sid[HL_DASH_SID_MAX];

	if (!want || !*want)
		return true;
	auth = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	/* a bearer token is judged alone; another scheme is not healer's (an
	 * ingress's basic auth reaches us too) and leaves it to the session */
	if (auth && strncasecmp(auth, "Bearer ", 7) == 0)
		return hl_http_token_ok(r);
	cookie = MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND, HL_DASH_COOKIE);
	return hl_dash_session_ok(cookie, want, hl_time_wall_ms() / 1000, sid, NULL) &&
	       !http_session_revoked(r->srv, sid);
}

bool
hl_http_auth_refused(struct http_req *r, enum MHD_Result *out)
{
	const struct hl_http_route *rt = r->rt;
	const char *want = r->srv->cfg->api_token, *auth;
	struct http_addr from = { 0 };
	bool bearer;
	int wait_s;

	if ((rt->auth != HTTP_AUTH_TOKEN && rt->auth != HTTP_AUTH_READ) || !want || !*want)
		return false;
	auth = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	bearer = auth && strncasecmp(auth, "Bearer ", 7) == 0;
	if (bearer) {
		hl_http_login_client(&r->srv->login_guard, r, &from);
		/* before the token: while blocked the answer says nothing of it */
		/* intake's routes: only the client's own block, never everyone's */
		wait_s = rt->auth == HTTP_AUTH_TOKEN
		                 ? hl_http_login_blocked_own_s(&r->srv->login_guard, &from)
		                 : hl_http_login_blocked_s(&r->srv->login_guard, &from);
		if (wait_s > 0) {
			*out = hl_http_too_many_logins(r, wait_s);
			return true;
		}
	}
	if (rt->auth == HTTP_AUTH_TOKEN ? hl_http_token_ok(r) : hl_http_read_ok(r))
		return false;
	if (bearer)
		hl_http_login_failed(&r->srv->login_guard, &from);
	*out = rt->auth == HTTP_AUTH_TOKEN
	               ? hl_http_reply_error(r, 401, "unauthorized",
	                                     "a valid 'Authorization: Bearer' token is required")
	               : hl_http_reply_error(r, 401, "unauthorized",
	                                     "a valid 'Authorization: Bearer' token or a dashboard "
	                                     "session is required");
	return true;
}

bool
hl_http_same_origin(struct http_req *r, bool null_ok)
{
	const char *site = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Sec-Fetch-Site");
	const char *origin =
	        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ORIGIN);
	const char *host =
	        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
	const char *p;

	if (site && strcmp(site, "same-origin") != 0 && strcmp(site, "none") != 0)
		return false;
	if (!origin)
		return true;
	if (strcmp(origin, "null") == 0)
		return null_ok;
	if (!host)
		return false;
	p = strncmp(origin, "http://", 7) == 0    ? origin + 7
	    : strncmp(origin, "https://", 8) == 0 ? origin + 8
	                                          : NULL;
	return p && strcasecmp(p, host) == 0;
}

/* True for a loopback name: localhost, NAME.localhost, 127.x.x.x or [::1],
 * with an optional port. */
static bool
route_loopback_host(const char *host)
{
	char name[256], *colon;
	struct in_addr a4;
	size_t n;

	if (strcmp(host, "[::1]") == 0 || strncmp(host, "[::1]:", 6) == 0)
		return true;
	if (hl_strlcpy(name, host, sizeof(name)) >= sizeof(name))
		return false;
	if ((colon = strchr(name, ':')))
		*colon = '\0';
	n = strlen(name);
	if (n && name[n - 1] == '.')
		name[--n] = '\0';
	if (strcasecmp(name, "localhost") == 0 ||
	    (n > 10 && strcasecmp(name + n - 10, ".localhost") == 0))
		return true;
	return inet_pton(AF_INET, name, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

/* A loopback server whose route is open (no token, or no webhook secret for
 * /webhook) answers it only under a loopback Host: a web page that points
 * its own name at 127.0.0.1 (DNS rebinding) is same-origin to the browser,
 * but its requests still carry its name. No Host (HTTP/1.0) is not a
 * browser's. */
static bool
route_host_ok(struct http_req *r)
{
	const struct hl_config *cfg = r->srv->cfg;
	const char *host;
	bool open;

	switch (r->rt->auth) {
	case HTTP_AUTH_TOKEN:
	case HTTP_AUTH_READ:
		open = !cfg->api_token || !*cfg->api_token;
		break;
	case HTTP_AUTH_SIGNATURE:
		open = cfg->n_webhook_secrets == 0;
		break;
	default:
		open = false;
	}
	if (!open || !hl_config_listen_is_loopback(cfg))
		return true;
	host = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
	return !host || route_loopback_host(host);
}

enum MHD_Result
hl_http_dispatch(struct http_req *r, const char *method)
{
	const struct hl_http_route *rt = r->rt;
	enum MHD_Result ret;

	if (!rt->handler)
		return hl_http_reply_error(r, 404, "not_found", "no route for '%s'", r->path);
	if (!(route_method(method) & rt->methods))
		return hl_http_reply_error(r, 405, "method_not_allowed", "'%s' accepts %s only",
		                           r->path, rt->methods & HTTP_POST ? "POST" : "GET");
	if (!route_host_ok(r))
		return hl_http_reply_error(r, 403, "forbidden",
		                           "an unauthenticated loopback server answers only to a "
		                           "loopback host name");
	if (rt->auth == HTTP_AUTH_TOKEN && !hl_http_same_origin(r, false))
		return hl_http_reply_error(r, 403, "forbidden",
		                           "a call from a web page of another origin");
	if (hl_http_auth_refused(r, &ret))
		return ret;
	if (rt->max_body && r->too_big)
		return hl_http_reply_error(r, 413, "payload_too_large", "the body exceeds %zu bytes",
		                           rt->max_body);
	return rt->handler(r, r->route_arg);
}
