/*
 * login_guard.c - the limit on failed dashboard logins (POST /login, and
 * wrong bearer tokens on the API: hl_http_auth_refused): after
 * HTTP_LOGIN_MAX_FAILURES wrong tokens from one client address within
 * HTTP_LOGIN_WINDOW_MS, every login and bearer call from that address
 * answers 429 until the window that began with its first failure has
 * passed, so the token
 * cannot be guessed at network speed. A successful login does not count.
 *
 * Invariants: memory is bounded (a fixed table of HTTP_LOGIN_SLOTS
 * addresses; when full, a new address takes the slot whose window began
 * first, an expired one when there is one); the table is per server and
 * under its own mutex. The address is the connection's peer, unless that
 * peer is one of HEALER_TRUSTED_PROXIES: then X-Forwarded-For is read from
 * its end, past every trusted proxy, to the first address the proxies did
 * not add themselves (nginx's real_ip_recursive). Without trusted proxies
 * every client behind a proxy shares the proxy's limit (any client can
 * write X-Forwarded-For, so it is not read).
 */
#include "base/clock.h"
#include "http_impl.h"

#include <string.h>
#include <strings.h>

static bool
login_expired(const struct http_login_slot *s, int64_t now)
{
	return now - s->window_start_ms >= HTTP_LOGIN_WINDOW_MS;
}

/* The slot of address a, or NULL. Under the guard's lock. */
static struct http_login_slot *
login_find(struct http_login_guard *g, const struct http_addr *a)
{
	int i;

	for (i = 0; i < HTTP_LOGIN_SLOTS; i++)
		if (g->slots[i].failures > 0 && g->slots[i].addr.len == a->len &&
		    memcmp(g->slots[i].addr.b, a->b, a->len) == 0)
			return &g->slots[i];
	return NULL;
}

void
hl_http_login_guard_init(struct http_login_guard *g, const char *trusted_proxies)
{
	struct hl_err err = HL_ERR_INIT;

	memset(g->slots, 0, sizeof(g->slots));
	pthread_mutex_init(&g->lock, NULL);
	/* checked with the configuration; a bad list here trusts no proxy */
	if (hl_cidr_list_parse(g->proxies, &g->n_proxies, trusted_proxies, &err) < 0)
		g->n_proxies = 0;
}

static enum MHD_Result
login_collect_xff(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct hl_buf *b = cls;

	(void)kind;
	if (key && value && strcasecmp(key, "X-Forwarded-For") == 0) {
		if (b->len)
			hl_buf_append(b, ",", 1);
		hl_buf_append(b, value, strlen(value));
	}
	return MHD_YES;
}

void
hl_http_login_client(struct http_login_guard *g, struct http_req *r, struct http_addr *out)
{
	struct hl_buf xff;
	const char *end, *start;
	struct http_addr hop;

	hl_http_client_addr(r, out);
	if (g->n_proxies == 0 || !hl_cidr_match(g->proxies, g->n_proxies, out->b, out->len))
		return;
	/* every X-Forwarded-For header, in order, as one list; walked from its
	 * end: each trusted hop names the one before it, and the first
	 * untrusted address is the client (what a client wrote itself, further
	 * left, is never reached) */
	hl_buf_init(&xff, 16384);
	MHD_get_connection_values(r->conn, MHD_HEADER_KIND, login_collect_xff, &xff);
	end = xff.data ? xff.data + xff.len : NULL;
	while (end && end > xff.data && !xff.err &&
	       hl_cidr_match(g->proxies, g->n_proxies, out->b, out->len)) {
		start = end;
		while (start > xff.data && start[-1] != ',')
			start--;
		{
			const char *a = start, *z = end;

			while (a < z && (*a == ' ' || *a == '\t'))
				a++;
			while (z > a && (z[-1] == ' ' || z[-1] == '\t'))
				z--;
			if (!hl_cidr_addr_parse(hop.b, &hop.len, a, (size_t)(z - a)))
				break; /* not an address: the last hop that named one stands */
		}
		*out = hop;
		end = start > xff.data ? start - 1 : NULL;
	}
	hl_buf_release(&xff);
}

void
hl_http_login_guard_destroy(struct http_login_guard *g)
{
	pthread_mutex_destroy(&g->lock);
}

int
hl_http_login_blocked_s(struct http_login_guard *g, const struct http_addr *a)
{
	struct http_login_slot *s;
	int64_t now = hl_time_mono_ms();
	int wait_s = 0;

	pthread_mutex_lock(&g->lock);
	s = login_find(g, a);
	if (s && !login_expired(s, now) && s->failures >= HTTP_LOGIN_MAX_FAILURES)
		wait_s = (int)((s->window_start_ms + HTTP_LOGIN_WINDOW_MS - now + 999) / 1000);
	pthread_mutex_unlock(&g->lock);
	return wait_s;
}

void
hl_http_login_failed(struct http_login_guard *g, const struct http_addr *a)
{
	struct http_login_slot *s, *victim;
	int64_t now = hl_time_mono_ms();
	int i;

	pthread_mutex_lock(&g->lock);
	s = login_find(g, a);
	if (!s) {
		/* a free or expired slot, else the one whose window began first */
		victim = &g->slots[0];
		for (i = 0; i < HTTP_LOGIN_SLOTS; i++) {
			struct http_login_slot *c = &g->slots[i];

			if (c->failures == 0 || login_expired(c, now)) {
				victim = c;
				break;
			}
			if (c->window_start_ms < victim->window_start_ms)
				victim = c;
		}
		s = victim;
		s->addr = *a;
		s->failures = 0;
	}
	if (s->failures == 0 || login_expired(s, now)) {
		s->window_start_ms = now;
		s->failures = 0;
	}
	if (s->failures < HTTP_LOGIN_MAX_FAILURES)
		s->failures++;
	pthread_mutex_unlock(&g->lock);
}
