/*
 * login_guard.c - the limit on failed dashboard logins (POST /login): after
 * HTTP_LOGIN_MAX_FAILURES wrong tokens from one client address within
 * HTTP_LOGIN_WINDOW_MS, every login from that address answers 429 until
 * the window that began with its first failure has passed, so the token
 * cannot be guessed at network speed. A successful login does not count.
 *
 * Invariants: memory is bounded (a fixed table of HTTP_LOGIN_SLOTS
 * addresses; when full, a new address takes the slot whose window began
 * first, an expired one when there is one); the table is per server and
 * under its own mutex. The address is the connection's peer: behind a
 * proxy that is the proxy's, and the limit then holds for all its clients
 * together (X-Forwarded-For is not trusted: any client can write it).
 */
#include "base/clock.h"
#include "http_impl.h"

#include <string.h>

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
hl_http_login_guard_init(struct http_login_guard *g)
{
	memset(g->slots, 0, sizeof(g->slots));
	pthread_mutex_init(&g->lock, NULL);
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
