/*
 * kube_watch.c - the list+watch loop (client-go's reflector, reduced to
 * what healer needs): a list delivers the current objects ("SYNC" each,
 * then one "SYNCED"), then a ?watch=1 stream of JSON lines delivers changes
 * from the last resourceVersion on ("ADDED", "MODIFIED", "DELETED",
 * "BOOKMARK").
 *
 * Each round is one list or one watch request; what ended it decides the
 * next one:
 *   - the server closed the stream normally (its timeoutSeconds): watch
 *     again from the last resourceVersion, at once (a rewatch); an empty
 *     stream that ended within a second is followed by a 100 ms pause, and
 *     from the third in a row on counts as a failure;
 *   - 410 Gone, as an HTTP status or as an ERROR event with code 410:
 *     relist, then watch from the list's resourceVersion;
 *   - a cut connection, a transport error, a garbled line, an ERROR event,
 *     5xx or 429: wait (exponential backoff with full jitter, at least
 *     Retry-After) and watch again (a reconnect); a list that failed so is
 *     asked again the same way. The server's wait (a Retry-After header or
 *     an ERROR event's details.retryAfterSeconds, an int32 by the schema:
 *     up to 68 years) is honoured up to HL_KUBE_WATCH_WAIT_MAX_MS (60 s,
 *     twice client-go's 30 s backoff cap; opts->retry_after_max_ms), so a
 *     hostile or broken API server or proxy cannot park the watch; a longer
 *     one is cut, counted (stats->waits_capped) and reported to
 *     opts->wait_capped, whose caller logs it;
 *   - 400/401/403/404/422: return the error (retrying cannot help).
 * A list begun before the deadline may go on past it, to its end
 * (opts->list_extend_ms): a relist longer than one session would otherwise
 * start from its first page again in every session and never end. Each
 * page then has at least list_extend_ms, and the callback gets "PAGE"
 * before each page after the first (the caller renews its lease there, or
 * stops the list).
 * Invariants: every wait is cut into slices of at most 100 ms that look at
 * the stop flag and the deadline, and every request carries the stop flag,
 * so a stop is noticed within 500 ms even on a silent stream; a round that
 * delivered nothing never follows the previous one without a delay, so the
 * loop cannot spin; the resourceVersion buffer only ever holds a version
 * the server sent.
 */
#include "base/clock.h"
#include "base/str.h"
#include "base/url.h"
#include "kube.h"
#include "kube_impl.h"

#include "json/json.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WATCH_LINE_MAX          (16u * 1024 * 1024)
#define WATCH_BACKOFF_MS        800
#define WATCH_BACKOFF_MAX_MS    30000
#define WATCH_FAST_END_MS       1000 /* a stream that ends sooner is suspect */
#define WATCH_FAST_END_MAX      2    /* more of them in a row are a failure */
#define WATCH_FAST_END_PAUSE_MS 100
#define WATCH_LIST_PAGE         500
#define WATCH_LIST_MAX_PAGES    10000
#define WATCH_SLICE_MS          100

enum watch_end {
	WATCH_END_STOP = 0, /* the stop flag, the deadline or the callback */
	WATCH_END_GONE,     /* 410: relist */
	WATCH_END_CLEAN,    /* the server closed a healthy stream: rewatch */
	WATCH_END_RETRY,    /* transient failure: back off, then again */
	WATCH_END_FATAL,    /* an error retrying cannot fix */
};

struct watch {
	const struct hl_kube *k;
	const struct hl_kube_watch_opts *o;
	struct hl_kube_watch_stats *stats;
	struct hl_buf line;
	const char *prefix, *resource, *ns;
	int64_t backoff, retry_after_ms;
	uint64_t rng;
	bool user_stop; /* the callback asked to stop */
	/* per stream */
	bool gone, retry;
	int delivered; /* events and bookmarks of this stream */
	int fast_ends; /* empty streams in a row that ended at once */
	struct hl_err stream_err;
};

static void
watch_count(atomic_uint_fast64_t *c)
{
	atomic_fetch_add(c, 1);
}

static bool
watch_stopped(const struct watch *w)
{
	if (w->user_stop)
		return true;
	if (w->o->stop && atomic_load(w->o->stop))
		return true;
	return w->o->deadline_ms > 0 && hl_time_mono_ms() >= w->o->deadline_ms;
}

/* Like watch_stopped, but a list with list_extend_ms goes on past the
 * deadline. */
static bool
watch_list_stopped(const struct watch *w)
{
	if (w->o->list_extend_ms <= 0)
		return watch_stopped(w);
	return w->user_stop || (w->o->stop && atomic_load(w->o->stop));
}

static uint64_t
watch_rand(struct watch *w)
{
	uint64_t x = w->rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	w->rng = x;
	return x;
}

/* Sleeps ms in slices, returning early on stop or deadline. */
static void
watch_sleep(const struct watch *w, int64_t ms)
{
	int64_t end = hl_time_mono_ms() + ms;

	while (!watch_stopped(w)) {
		int64_t left = end - hl_time_mono_ms();
		struct timespec ts;

		if (left <= 0)
			return;
		if (left > WATCH_SLICE_MS)
			left = WATCH_SLICE_MS;
		ts.tv_sec = 0;
		ts.tv_nsec = (long)left * 1000000L;
		nanosleep(&ts, NULL);
	}
}

/* The delay before the next attempt: full jitter over the current backoff
 * (client-go: factor 2, jitter 1.0), at least the server's Retry-After;
 * doubles the backoff up to its cap. */
static int64_t
watch_next_delay(struct watch *w)
{
	int64_t max = w->o->backoff_max_ms > 0 ? w->o->backoff_max_ms : WATCH_BACKOFF_MAX_MS;
	int64_t d = w->backoff + (int64_t)(watch_rand(w) % (uint64_t)(w->backoff + 1));

	if (d > max)
		d = max;
	if (w->retry_after_ms > d)
		d = w->retry_after_ms;
	w->retry_after_ms = 0;
	w->backoff = w->backoff * 2 > max ? max : w->backoff * 2;
	return d;
}

/* The server asked to come back after secs (from a Retry-After header or
 * an ERROR event): kept for the next delay, cut to the longest wait
 * honoured. secs is the server's number: any int64, checked before it is
 * turned into milliseconds. */
static void
watch_retry_after(struct watch *w, int64_t secs, const char *from)
{
	int64_t max =
	        w->o->retry_after_max_ms > 0 ? w->o->retry_after_max_ms : HL_KUBE_WATCH_WAIT_MAX_MS;

	if (secs <= 0)
		return;
	if (secs <= max / 1000) {
		w->retry_after_ms = secs * 1000;
		return;
	}
	w->retry_after_ms = max;
	if (w->stats)
		watch_count(&w->stats->waits_capped);
	if (w->o->wait_capped)
		w->o->wait_capped(w->o->ud, from, secs, max);
}

static void
watch_backoff_reset(struct watch *w)
{
	w->backoff = w->o->backoff_ms > 0 ? w->o->backoff_ms : WATCH_BACKOFF_MS;
}

static void
watch_set_rv(struct watch *w, const char *rv)
{
	if (rv && *rv && strlen(rv) < w->o->rv_size)
		memcpy(w->o->resource_version, rv, strlen(rv) + 1);
}

/* Remembers why a round failed (for stats->last_error). */
static void
watch_note(struct watch *w, const struct hl_err *e)
{
	if (w->stats && e && e->code)
		w->stats->last_error = *e;
}

static int
watch_line(struct watch *w, const char *s, size_t n)
{
	json_t *ev = NULL, *obj;
	const char *type;
	int ret = 0;

	while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == ' '))
		n--;
	if (n == 0)
		return 0;
	if (hl_json_parse(&ev, s, n, &w->stream_err) < 0) {
		hl_err_wrap(&w->stream_err, "kubernetes watch: unreadable event");
		w->retry = true;
		return -1;
	}
	type = hl_json_str(ev, "type");
	obj = json_object_get(ev, "object");
	if (!type || !json_is_object(obj))
		goto out; /* not an event: ignore it */
	if (strcmp(type, "ERROR") == 0) {
		int64_t code = hl_json_int(obj, "code", 0);

		if (code == 410) {
			w->gone = true;
		} else {
			watch_retry_after(w, hl_json_int(obj, "details.retryAfterSeconds", 0),
			                  "an ERROR event's retryAfterSeconds");
			hl_err_set(&w->stream_err,
			           code == 401 || code == 403 ? HL_EAUTH : HL_EUPSTREAM,
			           "kubernetes watch: error event %lld: %.160s", (long long)code,
			           hl_json_str_or(obj, "message", "(no message)"));
			w->retry = true;
		}
		ret = -1;
		goto out;
	}
	if (strcmp(type, "ADDED") != 0 && strcmp(type, "MODIFIED") != 0 &&
	    strcmp(type, "DELETED") != 0 && strcmp(type, "BOOKMARK") != 0)
		goto out; /* a type this client does not know: skip it */
	watch_set_rv(w, hl_json_str(obj, "metadata.resourceVersion"));
	w->delivered++;
	if (w->stats)
		watch_count(strcmp(type, "BOOKMARK") == 0 ? &w->stats->bookmarks
		                                          : &w->stats->events);
	if (w->o->fn(w->o->ud, type, obj) < 0) {
		w->user_stop = true;
		ret = -1;
	}
out:
	json_decref(ev);
	return ret;
}

static int
watch_data(void *ud, const char *data, size_t n)
{
	struct watch *w = ud;
	const char *nl;

	while (n > 0) {
		nl = memchr(data, '\n', n);
		if (!nl) {
			if (hl_buf_append(&w->line, data, n) < 0) {
				hl_err_set(&w->stream_err, HL_ETOOBIG,
				           "kubernetes watch: an event over %u bytes",
				           WATCH_LINE_MAX);
				w->retry = true;
				return -1;
			}
			return 0;
		}
		if (hl_buf_append(&w->line, data, (size_t)(nl - data)) < 0) {
			hl_err_set(&w->stream_err, HL_ETOOBIG,
			           "kubernetes watch: an event over %u bytes", WATCH_LINE_MAX);
			w->retry = true;
			return -1;
		}
		if (watch_line(w, w->line.data, w->line.len) < 0)
			return -1;
		hl_buf_reset(&w->line);
		n -= (size_t)(nl - data) + 1;
		data = nl + 1;
	}
	return 0;
}

/* Classifies a finished request that brought no usable stream or list
 * (list: a list page, which may go on past the deadline). */
static enum watch_end
watch_failed(struct watch *w, const struct hl_fetch_res *res, const char *what, bool list,
             struct hl_err *err)
{
	struct hl_err e = HL_ERR_INIT;

	if (res->cancelled || (list ? watch_list_stopped(w) : watch_stopped(w)))
		return WATCH_END_STOP;
	if (res->status == 410)
		return WATCH_END_GONE;
	hl_kube_status_error(res, "GET", what, &e);
	if (!e.code)
		hl_err_set(&e, HL_EUPSTREAM, "kubernetes GET '%.200s': no answer", what);
	watch_note(w, &e);
	/* no answer, an answer cut short, or the server asks to come back */
	if (res->status == 0 || (res->status >= 200 && res->status < 300) || res->status == 429 ||
	    res->status >= 500) {
		watch_retry_after(w, res->retry_after_s, "Retry-After");
		return WATCH_END_RETRY;
	}
	if (err)
		*err = e;
	return WATCH_END_FATAL;
}

/* The collection path with query key=value pairs (NULL-terminated). */
static int
watch_path(struct watch *w, struct hl_buf *p, const char *const *kv, struct hl_err *err)
{
	int ret = hl_kube_path(p, w->prefix, w->ns, w->resource, NULL, NULL, err);

	for (; ret == 0 && kv[0]; kv += 2)
		if (kv[1])
			ret = hl_kube_query(p, kv[0], kv[1], err);
	if (ret == 0 && w->o->label_selector && *w->o->label_selector)
		ret = hl_kube_query(p, "labelSelector", w->o->label_selector, err);
	return ret;
}

/* One GET with the stop flag; the caller releases res. */
static int
watch_get(struct watch *w, struct hl_fetch_res *res, const char *path, int64_t timeout_ms,
          bool stream, struct hl_err *err)
{
	struct hl_buf url = HL_BUF_INIT(0), auth = HL_BUF_INIT(0);
	struct hl_fetch_req req;
	int ret;

	hl_fetch_res_init(res);
	ret = hl_kube_req_init(w->k, &req, &url, &auth, "GET", path, err);
	if (ret == 0) {
		req.timeout_ms = timeout_ms;
		req.max_retries = 0; /* this loop retries, counting restarts */
		req.no_rate_wait = true;
		req.cancel = w->o->stop;
		if (stream) {
			req.on_data = watch_data;
			req.on_data_ud = w;
		}
		ret = hl_fetch_run(&req, res, 1, 0, err);
	}
	hl_buf_release(&url);
	hl_kube_auth_release(&auth);
	return ret;
}

static int64_t
watch_call_timeout(const struct watch *w, int64_t want)
{
	int64_t left;

	if (w->o->deadline_ms <= 0)
		return want;
	left = w->o->deadline_ms - hl_time_mono_ms();
	return left < want ? (left > 1 ? left : 1) : want;
}

/* The timeout of one list page: the call's, cut to the deadline, but past
 * it (list_extend_ms) never shorter than list_extend_ms. */
static int64_t
watch_page_timeout(const struct watch *w)
{
	int64_t want = w->k->timeout_ms > 0 ? w->k->timeout_ms : 15000;
	int64_t t = watch_call_timeout(w, want);

	if (w->o->list_extend_ms > 0 && t < w->o->list_extend_ms)
		t = w->o->list_extend_ms < want ? w->o->list_extend_ms : want;
	return t;
}

/* Lists every page, delivering "SYNC" per object and "SYNCED" at the end;
 * sets the resourceVersion to the list's. With list_extend_ms the list
 * goes on past the deadline, "PAGE" before each page after the first. */
static enum watch_end
watch_list(struct watch *w, struct hl_err *err)
{
	struct hl_buf p = HL_BUF_INIT(0);
	char *cont = NULL, limit[16];
	enum watch_end end = WATCH_END_STOP;
	int pages = 0, page = w->o->list_limit > 0 ? w->o->list_limit : WATCH_LIST_PAGE;
	int max_pages = w->o->list_max_pages > 0 ? w->o->list_max_pages : WATCH_LIST_MAX_PAGES;

	if (w->stats && atomic_load(&w->stats->list_page) > 0 &&
	    atomic_load(&w->stats->list_page) < page)
		page = atomic_load(&w->stats->list_page);
	snprintf(limit, sizeof(limit), "%d", page);
	if (w->o->fn(w->o->ud, "LIST", NULL) < 0) {
		w->user_stop = true;
		hl_buf_release(&p);
		return WATCH_END_STOP;
	}
	while (pages++ < max_pages) {
		const char *const kv[] = { "limit", limit, "continue", cont, NULL, NULL };
		struct hl_fetch_res res;
		json_t *list = NULL, *it;
		const char *next;
		size_t i;

		if (cont && w->o->fn(w->o->ud, "PAGE", NULL) < 0) {
			w->user_stop = true;
			break;
		}
		if (watch_list_stopped(w))
			break;
		hl_fetch_res_init(&res);
		hl_buf_reset(&p);
		if (watch_path(w, &p, kv, err) < 0 ||
		    watch_get(w, &res, p.data, watch_page_timeout(w), false, err) < 0) {
			hl_fetch_res_release(&res);
			end = WATCH_END_FATAL;
			break;
		}
		if (res.err.code == HL_ETOOBIG && page > 1) {
			/* objects as large as etcd keeps (a CodeRun holds its
			 * prompt): smaller pages, from the start */
			page /= 2;
			if (w->stats)
				atomic_store(&w->stats->list_page, page);
			hl_err_set(&w->stream_err, HL_ETOOBIG,
			           "kubernetes list: a page over the body cap; pages of %d from now",
			           page);
			watch_note(w, &w->stream_err);
			hl_fetch_res_release(&res);
			end = WATCH_END_RETRY;
			break;
		}
		if (res.err.code || res.status < 200 || res.status >= 300) {
			end = watch_failed(w, &res, p.data, true, err);
			hl_fetch_res_release(&res);
			break;
		}
		if (hl_json_parse(&list, res.body.data, res.body.len, &w->stream_err) < 0) {
			hl_err_wrap(&w->stream_err, "kubernetes list: answer");
			watch_note(w, &w->stream_err);
			hl_fetch_res_release(&res);
			end = WATCH_END_RETRY;
			break;
		}
		hl_fetch_res_release(&res);
		json_array_foreach(json_object_get(list, "items"), i, it)
		{
			if (w->o->fn(w->o->ud, "SYNC", it) < 0) {
				w->user_stop = true;
				break;
			}
		}
		next = hl_json_str(list, "metadata.continue");
		if (w->user_stop) {
			json_decref(list);
			break;
		}
		if (!next || !*next) {
			watch_set_rv(w, hl_json_str(list, "metadata.resourceVersion"));
			json_decref(list);
			if (w->o->fn(w->o->ud, "SYNCED", NULL) < 0)
				w->user_stop = true;
			end = w->user_stop ? WATCH_END_STOP : WATCH_END_CLEAN;
			break;
		}
		free(cont);
		cont = strdup(next);
		json_decref(list);
		if (!cont) {
			hl_err_set(err, HL_ENOMEM, "out of memory");
			end = WATCH_END_FATAL;
			break;
		}
	}
	if (pages > max_pages && end == WATCH_END_STOP && !w->user_stop) {
		/* a list that does not end: relisted after a backoff, not at
		 * once and forever */
		hl_err_set(&w->stream_err, HL_EUPSTREAM,
		           "kubernetes list: still not complete after %d pages", max_pages);
		watch_note(w, &w->stream_err);
		end = WATCH_END_RETRY;
	}
	free(cont);
	hl_buf_release(&p);
	return end;
}

/* One watch request from the current resourceVersion. */
static enum watch_end
watch_stream(struct watch *w, struct hl_err *err)
{
	struct hl_buf p = HL_BUF_INIT(0);
	struct hl_fetch_res res;
	char tmo[24];
	int64_t t0, secs, timeout;
	enum watch_end end;

	secs = w->o->watch_timeout_s > 0 ? w->o->watch_timeout_s
	                                 : 300 + (int64_t)(watch_rand(w) % 300); /* client-go */
	if (w->o->deadline_ms > 0) {
		int64_t left_s = (w->o->deadline_ms - hl_time_mono_ms() + 999) / 1000;

		if (left_s < secs)
			secs = left_s > 1 ? left_s : 1;
	}
	snprintf(tmo, sizeof(tmo), "%lld", (long long)secs);
	{
		const char *const kv[] = { "watch",
			                   "1",
			                   "allowWatchBookmarks",
			                   "true",
			                   "resourceVersion",
			                   w->o->resource_version,
			                   "timeoutSeconds",
			                   tmo,
			                   NULL,
			                   NULL };

		if (watch_path(w, &p, kv, err) < 0) {
			hl_buf_release(&p);
			return WATCH_END_FATAL;
		}
	}
	/* the server ends the stream after secs; leave it room to do so */
	timeout = watch_call_timeout(w, secs * 1000 + 15000);
	w->gone = w->retry = false;
	w->delivered = 0;
	memset(&w->stream_err, 0, sizeof(w->stream_err));
	hl_buf_reset(&w->line);
	t0 = hl_time_mono_ms();
	if (watch_get(w, &res, p.data, timeout, true, err) < 0) {
		end = WATCH_END_FATAL;
	} else if (w->user_stop) {
		end = WATCH_END_STOP;
	} else if (w->gone) {
		end = WATCH_END_GONE;
	} else if (res.status >= 200 && res.status < 300) {
		/* a stream that ended at once, whatever it delivered (a
		 * server or proxy that sends a bookmark and closes, again and
		 * again, would otherwise be asked again with no pause) */
		bool fast = hl_time_mono_ms() - t0 < WATCH_FAST_END_MS;

		if (w->delivered > 0 && !fast) {
			watch_backoff_reset(w); /* the stream was healthy */
			w->fast_ends = 0;
		}
		if (w->retry) {
			watch_note(w, &w->stream_err);
			end = WATCH_END_RETRY;
		} else if (res.cancelled || watch_stopped(w)) {
			end = WATCH_END_STOP;
		} else if (res.err.code) {
			/* cut mid-stream, or the transfer timed out */
			watch_note(w, &res.err);
			end = WATCH_END_RETRY;
		} else if (fast) {
			/* a stream that ended at once: fine now and then (a
			 * server restarting its watch cache), a failure when it
			 * keeps happening */
			if (++w->fast_ends > WATCH_FAST_END_MAX) {
				struct hl_err e = HL_ERR_INIT;

				hl_err_set(&e, HL_EUPSTREAM,
				           "kubernetes watch: streams keep ending at once");
				watch_note(w, &e);
				end = WATCH_END_RETRY;
			} else {
				watch_sleep(w, WATCH_FAST_END_PAUSE_MS);
				end = WATCH_END_CLEAN;
			}
		} else {
			w->fast_ends = 0;
			end = WATCH_END_CLEAN;
		}
	} else {
		end = watch_failed(w, &res, p.data, false, err);
	}
	hl_fetch_res_release(&res);
	hl_buf_release(&p);
	return end;
}

int
hl_kube_watch(const struct hl_kube *k, const struct hl_kube_watch_opts *o, struct hl_err *err)
{
	struct watch w;
	bool need_list, listed;
	int consecutive_gone = 0, ret = 0;

	if (!o || !o->fn || !o->resource_version || o->rv_size < 2)
		return hl_err_set(err, HL_EINVAL,
		                  "kubernetes watch: no callback or version buffer");
	if (o->deadline_ms <= 0 && !o->stop)
		return hl_err_set(err, HL_EINVAL,
		                  "kubernetes watch: needs a deadline or a stop flag");
	memset(&w, 0, sizeof(w));
	w.k = k;
	w.o = o;
	w.stats = o->stats;
	w.prefix = o->api_prefix ? o->api_prefix : HL_CODERUN_PREFIX;
	w.resource = o->resource ? o->resource : "coderuns";
	w.ns = hl_kube_ns(k, o->ns);
	w.rng = (uint64_t)hl_time_wall_ms() ^ ((uint64_t)(uintptr_t)o << 12) ^
	        0x9e3779b97f4a7c15ull;
	if (!w.rng)
		w.rng = 1;
	hl_buf_init(&w.line, WATCH_LINE_MAX);
	watch_backoff_reset(&w);
	need_list = o->resource_version[0] == '\0';
	listed = !need_list; /* resuming: any list is a relist */

	while (!watch_stopped(&w)) {
		struct hl_err e = HL_ERR_INIT;
		enum watch_end end;
		bool was_list = need_list;

		if (need_list) {
			if (listed && w.stats) {
				watch_count(&w.stats->relists);
				watch_count(&w.stats->restarts);
			}
			listed = true;
			end = watch_list(&w, &e);
			if (end == WATCH_END_CLEAN)
				need_list = false;
		} else {
			end = watch_stream(&w, &e);
		}
		switch (end) {
		case WATCH_END_STOP:
			break;
		case WATCH_END_FATAL:
			if (!e.code)
				hl_err_set(&e, HL_EINTERNAL, "kubernetes watch: failed");
			if (err)
				*err = e;
			ret = -e.code;
			goto out;
		case WATCH_END_CLEAN:
			consecutive_gone = 0;
			if (!was_list && w.stats)
				watch_count(&w.stats->rewatches);
			break;
		case WATCH_END_GONE:
			/* relist at once, unless the server keeps answering 410 */
			o->resource_version[0] = '\0';
			need_list = true;
			if (consecutive_gone++ > 0)
				watch_sleep(&w, watch_next_delay(&w));
			break;
		case WATCH_END_RETRY:
			if (!was_list && w.stats) {
				watch_count(&w.stats->reconnects);
				watch_count(&w.stats->restarts);
			}
			watch_sleep(&w, watch_next_delay(&w));
			break;
		}
	}
out:
	hl_buf_release(&w.line);
	return ret;
}
