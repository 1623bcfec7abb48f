/*
 * login_guard.c - the limit on failed dashboard logins (POST /login, wrong
 * bearer tokens on the API: hl_http_auth_refused, and on GET /:
 * dashboard.c): after HTTP_LOGIN_MAX_FAILURES wrong tokens from one client
 * within HTTP_LOGIN_WINDOW_MS, every login and bearer call from that client
 * answers 429 until the window that began with its first failure has
 * passed, so the token cannot be guessed at network speed. A client is an
 * IPv4 address or an IPv6 /64 (one host usually holds a whole /64). A
 * successful login does not count.
 *
 * Across every client, LOGIN_GLOBAL_MAX (600) failures within
 * HTTP_LOGIN_WINDOW_MS (many addresses guessing together) block every
 * login and bearer read, from everyone, until that window has passed:
 * sessions already open keep reading. The routes the sensors and alert
 * webhooks call (/api/remediate/..., /api/alerts/...) keep to each client's own
 * limit, so such an attack never shuts intake (hl_http_login_blocked_own_s).
 *
 * Invariants: memory is bounded (a fixed table of HTTP_LOGIN_SLOTS
 * entries: slot LOGIN_GLOBAL counts every failure, the others one client
 * each). A new client takes a free or expired slot, else the unblocked one
 * whose window began first; a slot still blocked is never taken, and while
 * every slot is blocked a new client counts as blocked too (until the
 * first of them expires). The table is per server and under its own mutex.
 * The address is the connection's peer, unless that
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

/* slot LOGIN_GLOBAL counts the failures of every client; its address
 * length (LOGIN_GLOBAL_LEN) is no client's */
#define LOGIN_GLOBAL     0
#define LOGIN_GLOBAL_LEN 0xff
#define LOGIN_GLOBAL_MAX 600

static bool
login_expired(const struct http_login_slot *s, int64_t now)
{
	return now - s->window_start_ms >= HTTP_LOGIN_WINDOW_MS;
}

static bool
login_is_blocked(const struct http_login_slot *s, int64_t now, int max)
{
	return s->failures >= max && !login_expired(s, now);
}

static int
login_wait_s(const struct http_login_slot *s, int64_t now)
{
	return (int)((s->window_start_ms + HTTP_LOGIN_WINDOW_MS - now + 999) / 1000);
}

/* The client of address a: an IPv6 address stands for its /64. */
static void
login_key(struct http_addr *key, const struct http_addr *a)
{
	*key = *a;
	if (key->len == 16)
		memset(key->b + 8, 0, 8);
}

/* The slot of client key, or NULL. Under the guard's lock. */
static struct http_login_slot *
login_find(struct http_login_guard *g, const struct http_addr *key)
{
	int i;

	for (i = 0; i < HTTP_LOGIN_SLOTS; i++)
		if (i != LOGIN_GLOBAL && g->slots[i].failures > 0 &&
		    g->slots[i].addr.len == key->len &&
		    memcmp(g->slots[i].addr.b, key->b, key->len) == 0)
			return &g->slots[i];
	return NULL;
}

/* The slot a new client may take: a free or expired one, else the
 * unblocked one whose window began first; NULL when every slot is
 * blocked. Under the guard's lock. */
static struct http_login_slot *
login_victim(struct http_login_guard *g, int64_t now)
{
	struct http_login_slot *victim = NULL;
	int i;

	for (i = 0; i < HTTP_LOGIN_SLOTS; i++) {
		struct http_login_slot *c = &g->slots[i];

		if (i == LOGIN_GLOBAL)
			continue;
		if (c->failures == 0 || login_expired(c, now))
			return c;
		if (c->failures < HTTP_LOGIN_MAX_FAILURES &&
		    (!victim || c->window_start_ms < victim->window_start_ms))
			victim = c;
	}
	return victim;
}

/* The seconds until the first blocked slot expires (every slot is). */
static int
login_full_wait_s(struct http_login_guard *g, int64_t now)
{
	int i, wait_s = 0;

	for (i = 0; i < HTTP_LOGIN_SLOTS; i++) {
		int w;

		if (i == LOGIN_GLOBAL)
			continue;
		w = login_wait_s(&g->slots[i], now);
		if (wait_s == 0 || w < wait_s)
			wait_s = w;
	}
	return wait_s > 0 ? wait_s : 1;
}

void
hl_http_login_guard_init(struct http_login_guard *g, const char *trusted_proxies)
{
	struct hl_err err = HL_ERR_INIT;

	memset(g->slots, 0, sizeof(g->slots));
	g->slots[LOGIN_GLOBAL].addr.len = LOGIN_GLOBAL_LEN;
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

/* The seconds a's client waits: its own block, and with every_client the
 * blocks of all (the global ceiling, a table full of blocked clients). */
static int
login_blocked_s(struct http_login_guard *g, const struct http_addr *a, bool every_client)
{
	const struct http_login_slot *all = &g->slots[LOGIN_GLOBAL];
	struct http_login_slot *s;
	struct http_addr key;
	int64_t now = hl_time_mono_ms();
	int wait_s = 0;

	login_key(&key, a);
	pthread_mutex_lock(&g->lock);
	s = login_find(g, &key);
	if (every_client && login_is_blocked(all, now, LOGIN_GLOBAL_MAX))
		wait_s = login_wait_s(all, now);
	if (s && login_is_blocked(s, now, HTTP_LOGIN_MAX_FAILURES) && login_wait_s(s, now) > wait_s)
		wait_s = login_wait_s(s, now);
	if (every_client && !s && wait_s == 0 && !login_victim(g, now))
		wait_s = login_full_wait_s(g, now);
	pthread_mutex_unlock(&g->lock);
	return wait_s;
}

int
hl_http_login_blocked_s(struct http_login_guard *g, const struct http_addr *a)
{
	return login_blocked_s(g, a, true);
}

int
hl_http_login_blocked_own_s(struct http_login_guard *g, const struct http_addr *a)
{
	return login_blocked_s(g, a, false);
}

void
hl_http_login_failed(struct http_login_guard *g, const struct http_addr *a)
{
	struct http_login_slot *s, *all = &g->slots[LOGIN_GLOBAL];
	struct http_addr key;
	int64_t now = hl_time_mono_ms();

	login_key(&key, a);
	pthread_mutex_lock(&g->lock);
	if (all->failures == 0 || login_expired(all, now)) {
		all->window_start_ms = now;
		all->failures = 0;
	}
	if (all->failures < LOGIN_GLOBAL_MAX)
		all->failures++;
	s = login_find(g, &key);
	if (!s && (s = login_victim(g, now))) {
		s->addr = key;
		s->failures = 0;
	}
	/* no slot: every one is blocked, and so is this client until one expires */
	if (s && (s->failures == 0 || login_expired(s, now))) {
		s->window_start_ms = now;
		s->failures = 0;
	}
	if (s && s->failures < HTTP_LOGIN_MAX_FAILURES)
		s->failures++;
	pthread_mutex_unlock(&g->lock);
}
