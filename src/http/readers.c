/*
 * readers.c - the slow read routes (/api/status, /metrics, /api/insights,
 * the /api/remediations lists, a task and its prompts) run on a small pool
 * of reader threads of their own, not on libmicrohttpd's few request
 * threads: a dashboard polling a scan of every task (or the insights) kept
 * those busy, and webhook deliveries waited for a free one.
 *
 * The dispatcher has checked the method and the authentication; the route
 * then calls hl_http_readers_submit, which suspends the connection (as an
 * intake does) and queues the request. A reader thread runs the route
 * again with r->on_reader set: its reply (status, body, headers) is kept
 * in r->deferred instead of queued, and the connection is resumed; the
 * access handler, called again in phase HTTP_DONE, sends it
 * (hl_http_readers_reply). While suspended, the reader reads the request's
 * parsed headers and arguments (libmicrohttpd does not touch a suspended
 * connection) and nothing else of it.
 *
 * At most HTTP_READERS_QUEUE requests wait beyond those being read: more
 * are answered 503 with Retry-After at once, so readers cannot pile up.
 * A monitoring read (/metrics: a few counters, hl_http_readers_submit_ahead)
 * goes before every waiting request, in HTTP_READERS_AHEAD places of its
 * own, so a scrape is neither refused nor kept waiting behind a
 * dashboard's queue of list scans. /metrics needs no authentication: a
 * flood of scrapes fills only those places, and a reader that took one
 * takes a waiting other request next, so the flood cannot keep
 * /api/status out.
 * Once the server stops, queued requests are answered 503 without being
 * read; stop waits for the suspended count (which includes these) before
 * it stops libmicrohttpd, then joins the readers before it closes the
 * store handles they read.
 */
#include "base/log.h"
#include "http_impl.h"

#include <stdlib.h>
#include <string.h>

/* Takes the next request off q (not empty; lock held): the first, but
 * after a monitoring read the first other one when one waits. */
static struct http_req *
readers_take(struct http_readers *q)
{
	struct http_req **pp = &q->head, *prev = NULL, *r;

	if (q->took_ahead && q->head->read_ahead && q->queued > q->queued_ahead) {
		while ((*pp)->read_ahead) {
			prev = *pp;
			pp = &(*pp)->read_next;
		}
	}
	r = *pp;
	*pp = r->read_next;
	if (q->tail == r)
		q->tail = prev;
	r->read_next = NULL;
	q->queued--;
	if (r->read_ahead)
		q->queued_ahead--;
	q->took_ahead = r->read_ahead;
	return r;
}

static void *
readers_main(void *arg)
{
	struct http_readers *q = arg;
	struct hl_http_server *srv = q->srv;

	for (;;) {
		struct http_req *r;

		pthread_mutex_lock(&q->lock);
		while (!q->head && !q->quit)
			pthread_cond_wait(&q->cond, &q->lock);
		if (!q->head) {
			pthread_mutex_unlock(&q->lock);
			return NULL;
		}
		r = readers_take(q);
		pthread_mutex_unlock(&q->lock);
		if (atomic_load(&srv->stopping))
			r->deferred.result = hl_http_reply_error(r, 503, "shutting_down",
			                                         "the server is shutting down");
		else
			r->deferred.result = r->rt->handler(r, r->route_arg);
		hl_http_resume(r);
	}
}

int
hl_http_readers_start(struct hl_http_server *srv, struct hl_err *err)
{
	struct http_readers *q = &srv->readers;

	q->srv = srv;
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->cond, NULL);
	q->inited = true;
	for (q->n_threads = 0; q->n_threads < HTTP_READERS; q->n_threads++)
		if (pthread_create(&q->threads[q->n_threads], NULL, readers_main, q) != 0)
			return hl_err_set(err, HL_EINTERNAL,
			                  "cannot start the HTTP reader threads");
	return 0;
}

void
hl_http_readers_stop(struct hl_http_server *srv)
{
	struct http_readers *q = &srv->readers;

	if (!q->inited)
		return;
	pthread_mutex_lock(&q->lock);
	q->quit = true;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
	for (int i = 0; i < q->n_threads; i++)
		pthread_join(q->threads[i], NULL);
	q->n_threads = 0;
	pthread_cond_destroy(&q->cond);
	pthread_mutex_destroy(&q->lock);
	q->inited = false;
}

/* Queues r at the end, or ahead of every waiting request but the other
 * ahead ones (in their order). */
static enum MHD_Result
readers_queue(struct http_req *r, bool ahead)
{
	struct http_readers *q = &r->srv->readers;
	struct http_req **pp;

	pthread_mutex_lock(&q->lock);
	if (ahead ? q->queued_ahead >= HTTP_READERS_AHEAD
	          : q->queued - q->queued_ahead >= HTTP_READERS_QUEUE) {
		pthread_mutex_unlock(&q->lock);
		return hl_http_reply_error(r, 503, "overloaded",
		                           "too many reads waiting for the store; retry later");
	}
	if (!hl_http_suspend(r)) {
		pthread_mutex_unlock(&q->lock);
		return hl_http_reply_error(r, 503, "shutting_down", "the server is shutting down");
	}
	r->on_reader = true;
	r->read_ahead = ahead;
	pp = &q->head;
	if (ahead)
		while (*pp && (*pp)->read_ahead)
			pp = &(*pp)->read_next;
	else
		pp = q->tail ? &q->tail->read_next : &q->head;
	r->read_next = *pp;
	*pp = r;
	if (!r->read_next)
		q->tail = r;
	q->queued++;
	if (ahead)
		q->queued_ahead++;
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->lock);
	return MHD_YES;
}

enum MHD_Result
hl_http_readers_submit(struct http_req *r)
{
	return readers_queue(r, false);
}

enum MHD_Result
hl_http_readers_submit_ahead(struct http_req *r)
{
	return readers_queue(r, true);
}

void
hl_http_readers_keep(struct http_req *r, unsigned code, const char *ctype, char *body, size_t len,
                     const char *const *hdrs)
{
	struct http_deferred *d = &r->deferred;
	size_t i, n = 0;

	d->code = code;
	d->ctype = ctype;
	d->body = body;
	d->len = len;
	for (i = 0; hdrs && hdrs[i] && hdrs[i + 1] && n + 2 < HTTP_DEFERRED_HDRS; i += 2) {
		char *name = strdup(hdrs[i]), *value = strdup(hdrs[i + 1]);

		if (!name || !value) {
			free(name);
			free(value);
			continue; /* out of memory: the reply goes without that header */
		}
		d->hdrs[n++] = name;
		d->hdrs[n++] = value;
	}
	d->hdrs[n] = NULL;
	d->kept = true;
}

enum MHD_Result
hl_http_readers_reply(struct http_req *r)
{
	struct http_deferred *d = &r->deferred;
	enum MHD_Result ret;

	r->on_reader = false;
	if (!d->kept)
		return MHD_NO; /* the route could not build its reply: drop the connection */
	d->kept = false;
	ret = hl_http_reply_hdrs(r, d->code, d->ctype, d->body, d->len,
	                         (const char *const *)d->hdrs);
	d->body = NULL;
	hl_http_readers_forget(r);
	return ret == MHD_NO ? MHD_NO : d->result;
}

void
hl_http_readers_forget(struct http_req *r)
{
	struct http_deferred *d = &r->deferred;

	for (size_t i = 0; i < HTTP_DEFERRED_HDRS && d->hdrs[i]; i++) {
		free(d->hdrs[i]);
		d->hdrs[i] = NULL;
	}
	free(d->body);
	d->body = NULL;
	d->kept = false;
}
