/*
 * kube_watch.c - the list+watch loop over CodeRuns: a (re)list delivers the
 * current objects, then a ?watch=1 stream of JSON lines delivers changes
 * from the last resourceVersion on.
 *
 * Invariants: every loop is bounded by the caller's duration; a 410 Gone
 * (HTTP or in-stream ERROR event) forgets the resourceVersion so the next
 * round relists.
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

/* ---- watch ---- */

struct kube_watch {
	struct hl_buf line;
	hl_kube_watch_fn fn;
	void *ud;
	char *rv;
	size_t rv_size;
	bool gone;      /* an ERROR event with code 410 arrived */
	bool user_stop; /* the callback asked to stop */
	bool bad;       /* an unparsable line arrived */
	int events;
};

static int
kube_watch_line(struct kube_watch *w, const char *s, size_t n)
{
	json_t *ev = NULL, *obj;
	const char *type, *rv;

	while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == ' '))
		n--;
	if (n == 0)
		return 0;
	if (hl_json_parse(&ev, s, n, NULL) < 0) {
		w->bad = true;
		return -1;
	}
	type = hl_json_str(ev, "type");
	obj = json_object_get(ev, "object");
	if (!type || !json_is_object(obj)) {
		json_decref(ev);
		return 0;
	}
	if (strcmp(type, "ERROR") == 0) {
		if (hl_json_int(obj, "code", 0) == 410)
			w->gone = true;
		else
			w->bad = true;
		json_decref(ev);
		return -1;
	}
	rv = hl_json_str(obj, "metadata.resourceVersion");
	if (rv)
		hl_strlcpy(w->rv, rv, w->rv_size);
	w->events++;
	if (strcmp(type, "BOOKMARK") != 0 && w->fn(w->ud, type, obj) < 0) {
		w->user_stop = true;
		json_decref(ev);
		return -1;
	}
	json_decref(ev);
	return 0;
}

static int
kube_watch_data(void *ud, const char *data, size_t n)
{
	struct kube_watch *w = ud;
	const char *nl;

	while (n > 0) {
		nl = memchr(data, '\n', n);
		if (!nl) {
			if (hl_buf_append(&w->line, data, n) < 0) {
				w->bad = true;
				return -1;
			}
			return 0;
		}
		if (hl_buf_append(&w->line, data, (size_t)(nl - data)) < 0) {
			w->bad = true;
			return -1;
		}
		if (kube_watch_line(w, w->line.data, w->line.len) < 0)
			return -1;
		hl_buf_reset(&w->line);
		n -= (size_t)(nl - data) + 1;
		data = nl + 1;
	}
	return 0;
}

static int
kube_watch_relist(const struct hl_kube *k, const char *ns, const char *sel, struct kube_watch *w,
                  struct hl_err *err)
{
	json_t *list = NULL, *items, *it;
	const char *rv;
	size_t i;
	int ret;

	ret = hl_kube_list_coderuns(k, &list, ns, sel, err);
	if (ret < 0)
		return ret;
	rv = hl_json_str(list, "metadata.resourceVersion");
	hl_strlcpy(w->rv, rv ? rv : "", w->rv_size);
	items = json_object_get(list, "items");
	json_array_foreach(items, i, it)
	{
		if (w->fn(w->ud, "SYNC", it) < 0) {
			w->user_stop = true;
			break;
		}
	}
	json_decref(list);
	return 0;
}

int
hl_kube_watch_coderuns(const struct hl_kube *k, const char *ns, const char *label_selector,
                       char *resource_version, size_t rv_size, int64_t duration_ms,
                       hl_kube_watch_fn fn, void *ud, struct hl_err *err)
{
	struct kube_watch w;
	int64_t end = hl_time_mono_ms() + duration_ms;
	int ret = 0, rounds = 0;

	memset(&w, 0, sizeof(w));
	hl_buf_init(&w.line, 16u * 1024 * 1024);
	w.fn = fn;
	w.ud = ud;
	w.rv = resource_version;
	w.rv_size = rv_size;
	/* bounded: each round either consumes time or relists; 10000 rounds cap
	 * a server that ends every stream at once */
	while (hl_time_mono_ms() < end && rounds++ < 10000) {
		struct hl_buf p = HL_BUF_INIT(0), url = HL_BUF_INIT(0), auth = HL_BUF_INIT(0);
		struct hl_fetch_req req;
		struct hl_fetch_res res;
		int64_t left, t0;

		if (!w.rv[0]) {
			ret = kube_watch_relist(k, ns, label_selector, &w, err);
			if (ret < 0 || w.user_stop)
				break;
		}
		left = end - hl_time_mono_ms();
		if (left <= 0)
			break;
		hl_fetch_res_init(&res);
		ret = hl_kube_path(&p, HL_CODERUN_PREFIX, hl_kube_ns(k, ns), "coderuns", NULL, NULL,
		                   err);
		if (ret == 0) {
			hl_buf_append_str(&p, "?watch=1&allowWatchBookmarks=true&resourceVersion=");
			hl_url_append_query_value(&p, w.rv);
			hl_buf_appendf(&p, "&timeoutSeconds=%lld", (long long)(left + 999) / 1000);
			if (label_selector && *label_selector)
				ret = hl_kube_query(&p, "labelSelector", label_selector, err);
		}
		if (ret == 0)
			ret = hl_kube_req_init(k, &req, &url, &auth, "GET", p.data, err);
		if (ret == 0) {
			req.timeout_ms = left;
			req.max_retries = 0;
			req.on_data = kube_watch_data;
			req.on_data_ud = &w;
			w.gone = w.bad = false;
			w.events = 0;
			hl_buf_reset(&w.line);
			t0 = hl_time_mono_ms();
			hl_fetch_run(&req, &res, 1, 0, err);
			if (res.status == 410 || w.gone) {
				w.rv[0] = '\0'; /* too old: relist */
			} else if (w.user_stop) {
				/* done */
			} else if (w.bad) {
				ret = hl_err_set(err, HL_EPARSE, "kubernetes watch: bad event");
			} else if (res.status >= 200 && res.status < 300 &&
			           (res.err.code == 0 || res.err.code == HL_ETIMEOUT)) {
				/* the stream ended or its time ran out: re-watch */
				if (res.err.code == 0 && w.events == 0 &&
				    hl_time_mono_ms() - t0 < 100) {
					struct timespec ts = { 0, 100 * 1000 * 1000 };

					nanosleep(&ts, NULL);
				}
			} else {
				ret = hl_kube_status_error(&res, "GET", p.data, err);
				if (ret == 0)
					ret = hl_err_set(err, HL_EUPSTREAM,
					                 "kubernetes watch failed");
			}
		}
		hl_buf_release(&p);
		hl_buf_release(&url);
		hl_kube_auth_release(&auth);
		hl_fetch_res_release(&res);
		if (ret < 0 || w.user_stop)
			break;
	}
	hl_buf_release(&w.line);
	return ret;
}
