/*
 * redeliver.c - the redelivery of failed GitHub webhook deliveries; see
 * redeliver.h.
 *
 * One thread. It takes or keeps the "redeliver" leadership every third of
 * HEALER_LEASE_SECONDS (at most every REDELIVER_TICK_MAX_MS); while it
 * leads and a pass is due it runs one. When a pass is due is kept in the
 * store (key "redeliver:<hook>": "<since_ms> <last pass ms>", then
 * "<mark_ms> <page>" while a listing is unfinished),
 * so a replica that takes the leadership over neither repeats a pass that
 * just ran nor waits a whole interval for one that is late. A pass lists
 * at most REDELIVER_MAX_LIST deliveries, in whole pages; when more were
 * delivered since the resume point (a long outage of a busy hook), it
 * saves the next page and the newest delivery it saw (the mark), and the
 * next pass, due at once, goes on from that page; the listing that reaches
 * the resume point moves it to the mark. Invariants: a guid is asked for
 * only after its claim is stored (hl_store_redelivery_claim), so whichever
 * replica runs a pass, or two overlapping passes of a leader that lost its
 * leadership and the next one, GitHub is asked once per guid; the resume
 * point moves only after a complete listing down to it, so a pass cut
 * short is listed again and no delivery older than the newest listed is
 * skipped. A request GitHub answered it did not take (a rate limit, a
 * 5xx, credentials that may not redeliver) gives its claim back, so a
 * later pass asks again; GitHub's answer about the delivery (422, 404),
 * or a lost answer (it may have been taken), records it failed for good.
 * So does a request for one delivery GitHub did not take once at least
 * REDELIVER_TRIES of them were not taken and the first was an hour ago (a
 * rate limit is not counted; a GitHub incident of a few passes loses
 * nothing; deliveries older than GitHub keeps, 3 days, are not listed at
 * all): a delivery GitHub never takes cannot keep every pass incomplete
 * and the resume point from moving. A pass
 * left incomplete is taken up again REDELIVER_RETRY_MS later (at most an
 * interval), not at once, even with an unfinished listing.
 */
#include "redeliver.h"

#include "base/clock.h"
#include "base/log.h"
#include "base/pause.h"
#include "base/str.h"
#include "net/github.h"
#include "remediate/github_shared.h"
#include "store/redeliver.h"

#include "json/json.h"
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REDELIVER_WINDOW_MS     (72LL * 3600 * 1000) /* GitHub redelivers the past 3 days */
#define REDELIVER_MARGIN_MS     (5LL * 60 * 1000)    /* deliveries logged late */
#define REDELIVER_MAX_LIST      1000                 /* deliveries listed per pass */
#define REDELIVER_RETRY_MS      (60LL * 1000)        /* after a pass that failed or stopped */
#define REDELIVER_CALL_MS       10000                /* one GitHub call */
#define REDELIVER_MAX_NOT_TAKEN 3 /* requests GitHub did not take: the pass stops */
#define REDELIVER_TRIES         3 /* requests for one delivery GitHub did not take, */
#define REDELIVER_GIVE_UP_MS    (60LL * 60 * 1000) /* ... the first an hour ago: given up */
#define REDELIVER_TICK_MAX_MS   5000               /* how late a due pass may start */

struct hl_redeliver {
	const struct hl_config *cfg;
	struct hl_store *store;
	struct hl_github *github;
	struct hl_github_hook hook;
	char hook_key[320]; /* "repo:o/r:ID", "org:O:ID", "app" */
	char kv_key[340];

	struct hl_pause pause;

	atomic_int leader;
	atomic_uint_fast64_t requested, refused, passes_ok, passes_failed;
};

/* The resume point of the hook's listing. */
struct redeliver_point {
	int64_t since;   /* deliveries before it were examined (wall ms; 0: none) */
	int64_t last;    /* when the last pass ran (wall ms; 0: never) */
	int64_t mark;    /* with page: the newest delivery of the unfinished listing */
	char page[2048]; /* where the unfinished listing goes on; "" when none */
};

/* The resume point: "<since_ms> <last pass ms> [<mark_ms> <page>]"; zeros
 * when none. */
static void
redeliver_load_point(struct hl_redeliver *r, struct redeliver_point *pt)
{
	struct hl_err err = HL_ERR_INIT;
	char *v = NULL;
	long long a = 0, b = 0, c = 0;
	int used = 0;

	memset(pt, 0, sizeof(*pt));
	if (hl_store_kv_get(r->store, &v, r->kv_key, &err) < 0)
		return;
	if (sscanf(v, "%lld %lld%n", &a, &b, &used) == 2 && a >= 0 && b >= 0) {
		const char *rest = v + used;
		int n = 0;

		pt->since = a;
		pt->last = b;
		if (sscanf(rest, " %lld %n", &c, &n) == 1 && c >= a && n > 0 && rest[n] &&
		    strlen(rest + n) < sizeof(pt->page) && !strpbrk(rest + n, " \t\r\n")) {
			pt->mark = c;
			hl_strlcpy(pt->page, rest + n, sizeof(pt->page));
		}
	}
	free(v);
}

static void
redeliver_save_point(struct hl_redeliver *r, const struct redeliver_point *pt)
{
	struct hl_err err = HL_ERR_INIT;
	char v[2200];

	if (pt->page[0])
		snprintf(v, sizeof(v), "%lld %lld %lld %s", (long long)pt->since,
		         (long long)pt->last, (long long)pt->mark, pt->page);
	else
		snprintf(v, sizeof(v), "%lld %lld", (long long)pt->since, (long long)pt->last);
	if (hl_store_kv_put(r->store, r->kv_key, v, &err) < 0)
		hl_log_kv(HL_LOG_WARN, "saving the redelivery point failed", "error", err.msg,
		          NULL);
}

static bool
redeliver_ok(int64_t status_code)
{
	return status_code >= 200 && status_code < 300;
}

/* A rate limit: the request was answered before anything happened. */
static bool
redeliver_rate_limited(const struct hl_err *e)
{
	return e->code == HL_EUPSTREAM &&
	       (hl_str_casestr(e->msg, "rate limit") || strstr(e->msg, "status 429"));
}

/* GitHub answered that it did not take the request, for a reason not the
 * delivery's: a server error (5xx), or credentials that may not redeliver
 * (401/403, fixed by the operator); or the request never reached GitHub (no
 * connection: HL_EUPSTREAM too). A request whose answer was lost (a
 * timeout, a connection broken after it was sent) may have been taken: it
 * is not repeated. */
static bool
redeliver_not_taken(const struct hl_err *e)
{
	return e->code == HL_EUPSTREAM || e->code == HL_EAUTH;
}

/* Ends rd's claim with outcome. A claim that went stale while this pass
 * waited on GitHub (over HL_REDELIVERY_STALE_MS) may have been taken by
 * another claimer: its row is left to it. */
static int
redeliver_end(struct hl_redeliver *r, const struct hl_redelivery *rd, const char *outcome,
              const char *detail, struct hl_err *err)
{
	int rc = hl_store_redelivery_finish(r->store, rd, outcome, detail, err);

	if (rc == -HL_ECONFLICT) {
		hl_log_kv(HL_LOG_WARN,
		          "a redelivery claim was taken over while its request ran; its new "
		          "claimer records the outcome",
		          "delivery", rd->guid, "outcome", outcome, NULL);
		*err = (struct hl_err)HL_ERR_INIT;
		return 0;
	}
	return rc < 0 ? rc : 0;
}

/* Gives up on a delivery whose request GitHub did not take once more
 * (tries of them now): recorded failed for good. */
static int
redeliver_give_up(struct hl_redeliver *r, struct hl_redeliver_pass *p,
                  const struct hl_redelivery *rd, const char *id, int tries,
                  const struct hl_err *gerr, struct hl_err *err)
{
	char detail[sizeof(gerr->msg) + 96], n[16];

	snprintf(n, sizeof(n), "%d", tries);
	snprintf(detail, sizeof(detail),
	         "GitHub did not take the redelivery request %d times; last: %s", tries, gerr->msg);
	p->refused++;
	atomic_fetch_add(&r->refused, 1);
	hl_log_kv(HL_LOG_WARN,
	          "giving up on a failed delivery: GitHub did not take any of its redelivery "
	          "requests; recorded failed, never asked again",
	          "delivery", rd->guid, "github_id", id, "requests", n, "error", gerr->msg, NULL);
	return redeliver_end(r, rd, "failed", detail, err);
}

/* Asks for one failed delivery d, once (its claim first). Returns 1 when
 * the pass must stop (a rate limit), 2 when GitHub did not take the
 * request (given back: a later pass asks again) or a request for it begun
 * earlier has not ended, 0 to go on, -HL_E*
 * (store). An answer about the delivery itself (422 too old, 404 gone),
 * or none, records it failed for good; so does one GitHub did not take
 * after REDELIVER_TRIES of them over an hour. */
static int
redeliver_one(struct hl_redeliver *r, struct hl_redeliver_pass *p, const json_t *d,
              struct hl_err *err)
{
	struct hl_err gerr = HL_ERR_INIT;
	struct hl_redelivery rd = {
		.guid = hl_json_str_or(d, "guid", ""),
		.hook = r->hook_key,
		.github_id = hl_json_int(d, "id", 0),
		.event = hl_json_str(d, "event"),
		.status_code = (int)hl_json_int(d, "status_code", 0),
		.owner = hl_store_owner(r->store),
	};
	char id[32];
	bool known = false, claimed = false;
	struct hl_redelivery_history hist = { 0 };
	int rc;

	if (!*rd.guid || rd.github_id <= 0 || strlen(rd.guid) > HL_DELIVERY_ID_MAX)
		return 0;
	if ((rc = hl_store_delivery_known(r->store, &known, rd.guid, err)) < 0)
		return rc;
	if (known) {
		p->stored++;
		return 0;
	}
	if ((rc = hl_store_redelivery_claim(r->store, &claimed, &hist, &rd, err)) < 0)
		return rc;
	if (!claimed && hist.pending) {
		/* a request begun and not ended: another replica's at work, or
		 * the last leader's, cut short by its death; asked again by a
		 * later pass once it is stale */
		hl_log_kv(HL_LOG_INFO, "a redelivery request begun earlier has not ended; a later "
		                       "pass looks again", "delivery", rd.guid, NULL);
		return 2;
	}
	if (!claimed) {
		p->claimed++;
		return 0;
	}
	snprintf(id, sizeof(id), "%" PRId64, rd.github_id);
	rc = hl_github_hook_redeliver(r->github, &r->hook, rd.github_id, &gerr);
	if (rc == 0) {
		p->requested++;
		atomic_fetch_add(&r->requested, 1);
		hl_log_kv(HL_LOG_INFO, "asked GitHub to redeliver a failed delivery", "delivery",
		          rd.guid, "github_id", id, "event", rd.event ? rd.event : "", NULL);
		return redeliver_end(r, &rd, "requested", NULL, err);
	}
	if (redeliver_rate_limited(&gerr)) {
		hl_log_kv(HL_LOG_WARN, "GitHub rate-limits redelivery; the next pass goes on",
		          "delivery", rd.guid, "error", gerr.msg, NULL);
		rc = hl_store_redelivery_release(r->store, &rd, false, gerr.msg, err);
		return rc < 0 ? rc : 1;
	}
	if (redeliver_not_taken(&gerr)) {
		if (hist.not_taken + 1 >= REDELIVER_TRIES &&
		    hl_time_wall_ms() - hist.first_ms >= REDELIVER_GIVE_UP_MS)
			return redeliver_give_up(r, p, &rd, id, hist.not_taken + 1, &gerr, err);
		hl_log_kv(HL_LOG_WARN,
		          "GitHub did not take a redelivery request; a later pass asks again",
		          "delivery", rd.guid, "github_id", id, "error", gerr.msg, NULL);
		rc = hl_store_redelivery_release(r->store, &rd, true, gerr.msg, err);
		return rc < 0 ? rc : 2;
	}
	p->refused++;
	atomic_fetch_add(&r->refused, 1);
	hl_log_kv(HL_LOG_WARN, "GitHub did not redeliver a failed delivery", "delivery", rd.guid,
	          "github_id", id, "error", gerr.msg, NULL);
	return redeliver_end(r, &rd, "failed", gerr.msg, err);
}

static bool
redeliver_stopping(struct hl_redeliver *r)
{
	return hl_pause_stopped(&r->pause);
}

int
hl_redeliver_run(struct hl_redeliver *r, struct hl_redeliver_pass *out, struct hl_err *err)
{
	struct hl_redeliver_pass p = { 0 };
	struct redeliver_point pt;
	struct hl_github_listing l = { .max = REDELIVER_MAX_LIST };
	json_t *list = NULL, *ok = json_object(), *seen = json_object(), *d;
	int64_t since, now = hl_time_wall_ms(), newest = 0, floor;
	size_t i;
	int rc, not_taken = 0;

	if (!ok || !seen) {
		rc = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	redeliver_load_point(r, &pt);
	floor = now - REDELIVER_WINDOW_MS;
	since = pt.since > 0 ? pt.since - REDELIVER_MARGIN_MS : floor;
	if (since < floor)
		since = floor;
	l.from = pt.page;
	l.since_ms = since;
	rc = hl_github_hook_deliveries(r->github, &list, &r->hook, &l, err);
	if (rc < 0 && pt.page[0] && (rc == -HL_EINVAL || rc == -HL_ENOTFOUND)) {
		/* GitHub no longer knows the saved page: list from the newest again */
		hl_log_kv(HL_LOG_WARN,
		          "GitHub refused the saved page of the hook's deliveries; "
		          "listing from the newest",
		          "hook", r->hook_key, "error", err->msg, NULL);
		pt.page[0] = '\0';
		redeliver_save_point(r, &pt);
		l.from = NULL;
		rc = hl_github_hook_deliveries(r->github, &list, &r->hook, &l, err);
	}
	if (rc < 0)
		goto out;
	p.listed = (int64_t)json_array_size(list);
	/* a guid any attempt delivered with a 2xx is not failed */
	json_array_foreach(list, i, d)
	{
		int64_t at = hl_time_parse_rfc3339(hl_json_str_or(d, "delivered_at", ""));
		if (at > newest)
			newest = at;
		if (redeliver_ok(hl_json_int(d, "status_code", 0)))
			json_object_set_new(ok, hl_json_str_or(d, "guid", ""), json_true());
	}
	p.complete = true;
	json_array_foreach(list, i, d)
	{
		const char *guid = hl_json_str_or(d, "guid", "");

		if (redeliver_ok(hl_json_int(d, "status_code", 0)) || json_object_get(ok, guid) ||
		    json_object_get(seen, guid))
			continue;
		if (redeliver_stopping(r)) {
			p.complete = false;
			break;
		}
		json_object_set_new(seen, guid, json_true());
		p.failed++;
		rc = redeliver_one(r, &p, d, err);
		if (rc < 0)
			goto out;
		if (rc == 1 || (rc == 2 && ++not_taken >= REDELIVER_MAX_NOT_TAKEN)) {
			p.complete = false;
			rc = 0;
			break;
		}
		if (rc == 2) {
			/* listed again from the same point; the rest still asked */
			p.complete = false;
			rc = 0;
		}
	}
	pt.last = now;
	if (!p.complete) {
		/* listed again from the same page and point */
	} else if (l.next[0]) {
		/* more than a pass lists: go on from the next page */
		if (!pt.page[0])
			pt.mark = newest > since ? newest : since + REDELIVER_MARGIN_MS;
		hl_strlcpy(pt.page, l.next, sizeof(pt.page));
		p.more = true;
	} else {
		if (pt.page[0])
			pt.since = pt.mark;
		else
			pt.since = newest > since ? newest : since + REDELIVER_MARGIN_MS;
		pt.page[0] = '\0';
	}
	redeliver_save_point(r, &pt);
out:
	if (rc == 0 && out)
		*out = p;
	json_decref(list);
	json_decref(ok);
	json_decref(seen);
	return rc;
}

static bool
redeliver_lead(struct hl_redeliver *r)
{
	struct hl_err err = HL_ERR_INIT;
	bool lead = false;
	int was = atomic_load(&r->leader);

	if (hl_store_leader(r->store, &lead, "redeliver", hl_store_owner(r->store),
	                    (int64_t)r->cfg->lease_seconds * 1000, &err) < 0)
		lead = false;
	if (lead != (was == 1))
		hl_log_kv(HL_LOG_DEBUG,
		          lead ? "this replica now redelivers failed GitHub deliveries"
		               : "another replica redelivers failed GitHub deliveries",
		          "hook", r->hook_key, NULL);
	atomic_store(&r->leader, lead ? 1 : 0);
	return lead;
}

static void *
redeliver_main(void *arg)
{
	struct hl_redeliver *r = arg;
	int64_t interval = (int64_t)r->cfg->redeliver_interval_mins * 60 * 1000;
	int64_t tick = (int64_t)r->cfg->lease_seconds * 1000 / 3;
	int64_t retry_at = 0; /* after a failed pass (monotonic) */
	bool started = false; /* this process made a pass */

	pthread_setname_np(pthread_self(), "hl-redeliver");
	/* a third of the lease keeps the leadership; a long lease must not
	 * make a pass due at once (an unfinished listing) or a minute later
	 * (one left incomplete) wait as long */
	if (tick > REDELIVER_TICK_MAX_MS)
		tick = REDELIVER_TICK_MAX_MS;
	if (tick < 100)
		tick = 100;
	do {
		int64_t now = hl_time_wall_ms();
		struct redeliver_point pt;
		struct hl_redeliver_pass p;
		struct hl_err err = HL_ERR_INIT;
		char n[4][24];

		if (!redeliver_lead(r) || hl_time_mono_ms() < retry_at)
			continue;
		redeliver_load_point(r, &pt);
		/* an unfinished listing goes on at once; the first pass of a
		 * process is made at start, however recent the last one: the
		 * deliveries GitHub could not make while healer was down are
		 * the ones to ask for */
		if (started && !pt.page[0] && pt.last > 0 && pt.last <= now &&
		    now - pt.last < interval)
			continue;
		started = true;
		if (hl_redeliver_run(r, &p, &err) < 0) {
			atomic_fetch_add(&r->passes_failed, 1);
			retry_at = hl_time_mono_ms() +
			           (interval < REDELIVER_RETRY_MS ? interval : REDELIVER_RETRY_MS);
			hl_log_kv(HL_LOG_WARN, "listing the GitHub hook's deliveries failed",
			          "hook", r->hook_key, "error", err.msg, NULL);
			continue;
		}
		atomic_fetch_add(&r->passes_ok, 1);
		/* a pass left incomplete (a rate limit, requests GitHub did not
		 * take) is not repeated at once, even with a listing unfinished */
		if (!p.complete)
			retry_at = hl_time_mono_ms() +
			           (interval < REDELIVER_RETRY_MS ? interval : REDELIVER_RETRY_MS);
		snprintf(n[0], sizeof(n[0]), "%" PRId64, p.listed);
		snprintf(n[1], sizeof(n[1]), "%" PRId64, p.failed);
		snprintf(n[2], sizeof(n[2]), "%" PRId64, p.requested);
		snprintf(n[3], sizeof(n[3]), "%" PRId64, p.refused);
		hl_log_kv(p.requested || p.refused ? HL_LOG_INFO : HL_LOG_DEBUG,
		          "checked the GitHub hook's deliveries", "hook", r->hook_key, "listed",
		          n[0], "failed", n[1], "redelivered", n[2], "refused", n[3], NULL);
	} while (hl_pause_sleep(&r->pause, tick));
	return NULL;
}

/* The hook from the configuration; false when there is none. */
static bool
redeliver_hook(struct hl_redeliver *r, const struct hl_config *cfg)
{
	if (cfg->github_hook > 0 && cfg->github_hook_repository && *cfg->github_hook_repository) {
		r->hook = (struct hl_github_hook){ .kind = HL_GITHUB_HOOK_REPO,
			                           .repo = cfg->github_hook_repository,
			                           .id = cfg->github_hook };
		snprintf(r->hook_key, sizeof(r->hook_key), "repo:%.250s:%" PRId64,
		         cfg->github_hook_repository, cfg->github_hook);
	} else if (cfg->github_hook > 0 && cfg->github_hook_org && *cfg->github_hook_org) {
		r->hook = (struct hl_github_hook){ .kind = HL_GITHUB_HOOK_ORG,
			                           .org = cfg->github_hook_org,
			                           .id = cfg->github_hook };
		snprintf(r->hook_key, sizeof(r->hook_key), "org:%.250s:%" PRId64,
		         cfg->github_hook_org, cfg->github_hook);
	} else if (cfg->github_hook <= 0 && cfg->github_app_id && *cfg->github_app_id &&
	           cfg->github_app_private_key && *cfg->github_app_private_key) {
		r->hook = (struct hl_github_hook){ .kind = HL_GITHUB_HOOK_APP };
		snprintf(r->hook_key, sizeof(r->hook_key), "app");
	} else {
		return false;
	}
	snprintf(r->kv_key, sizeof(r->kv_key), "redeliver:%s", r->hook_key);
	return true;
}

int
hl_redeliver_start(struct hl_redeliver **out, const struct hl_config *cfg, struct hl_store *store,
                   struct hl_err *err)
{
	struct hl_redeliver *r;
	int rc;

	*out = NULL;
	if (cfg->redeliver_interval_mins <= 0)
		return 0;
	r = calloc(1, sizeof(*r));
	if (!r)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	r->cfg = cfg;
	r->store = store;
	atomic_init(&r->leader, -1);
	if (!redeliver_hook(r, cfg)) {
		free(r);
		return 0;
	}
	if ((rc = hl_github_shared_new(&r->github, cfg, store, err)) < 0) {
		free(r);
		return rc;
	}
	/* a call under way delays shutdown: keep it well inside a pod's grace */
	hl_github_set_limits(r->github, REDELIVER_CALL_MS, 0);
	if (hl_pause_start(&r->pause, redeliver_main, r) < 0) {
		hl_github_free(r->github);
		free(r);
		return hl_err_set(err, HL_ENOMEM, "cannot start the redelivery thread");
	}
	*out = r;
	return 0;
}

void
hl_redeliver_stop(struct hl_redeliver *r)
{
	if (!r)
		return;
	hl_pause_finish(&r->pause);
	hl_github_free(r->github);
	free(r);
}

void
hl_redeliver_metrics(struct hl_redeliver *r, struct hl_buf *out)
{
	uint64_t req = r ? atomic_load(&r->requested) : 0, ref = r ? atomic_load(&r->refused) : 0;
	uint64_t ok = r ? atomic_load(&r->passes_ok) : 0;
	uint64_t bad = r ? atomic_load(&r->passes_failed) : 0;

	hl_buf_append_str(out, "# HELP healer_redeliveries_total Failed GitHub deliveries this "
	                       "replica asked GitHub to redeliver, by result.\n"
	                       "# TYPE healer_redeliveries_total counter\n");
	hl_buf_appendf(out, "healer_redeliveries_total{result=\"requested\"} %" PRIu64 "\n", req);
	hl_buf_appendf(out, "healer_redeliveries_total{result=\"failed\"} %" PRIu64 "\n", ref);
	hl_buf_append_str(out, "# HELP healer_redeliver_passes_total Passes over the GitHub hook's "
	                       "deliveries, by result.\n"
	                       "# TYPE healer_redeliver_passes_total counter\n");
	hl_buf_appendf(out, "healer_redeliver_passes_total{result=\"ok\"} %" PRIu64 "\n", ok);
	hl_buf_appendf(out, "healer_redeliver_passes_total{result=\"error\"} %" PRIu64 "\n", bad);
	hl_buf_append_str(out, "# HELP healer_redeliver_leader Whether this replica redelivers "
	                       "failed GitHub deliveries.\n# TYPE healer_redeliver_leader gauge\n");
	hl_buf_appendf(out, "healer_redeliver_leader %d\n", r && atomic_load(&r->leader) == 1);
}
