/*
 * insights.c - the insights document from the ledger (see insights.h).
 *
 * The store hands every attempt of every task of the window, ordered by
 * task then attempt (hl_store_insight_rows); each task is folded into the
 * overall group, its first agent's and its type's, and the routing table;
 * then the rates are computed. Learned routing is evaluated over all time
 * (as the router sees it) from a second pass without the window. Bounded
 * by the number of tasks; nothing is kept per attempt.
 */
#include "insights.h"

#include "base/clock.h"
#include "base/str.h"
#include "catalog/catalog.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INS_KEY_MAX 112

/* One group's counters and its times to fix. */
struct ins_group {
	char key[INS_KEY_MAX];
	int64_t tasks, finished, succeeded, escalated, attempt1, within;
	int64_t fixed_by_agent, routed_right;
	double *ttf;
	size_t n_ttf, cap_ttf;
};

struct ins_groups {
	struct ins_group *g;
	size_t n, cap;
};

/* An agent x failure type (x repository for the learned table) record. */
struct ins_route {
	char repository[256];
	char failure_type[48];
	struct hl_agent_record rec;
};

/* The routes and a hash index of them (open addressing: idx[h] is a
 * route's position + 1, 0 free), so a row finds its route in constant time
 * whatever the number of repositories. */
struct ins_routes {
	struct ins_route *r;
	size_t n, cap;
	uint32_t *idx;
	size_t idx_cap; /* a power of two, at least twice n */
};

/* The task being folded (rows arrive ordered by task). */
struct ins_task {
	char task_id[HL_TASK_ID_MAX];
	char repository[256], failure_type[48], state[16];
	char first_agent[16], fixed_by[16];
	int64_t created_ms, finished_ms;
	int success_n, last_n;
};

struct ins_state {
	const struct hl_insights_opts *o;
	struct ins_task cur;
	bool have;
	struct ins_group all;
	struct ins_groups by_agent, by_type, by_day;
	struct ins_routes routes; /* agent x type (repository "") */
	bool oom;
};

static struct ins_group *
ins_group_of(struct ins_groups *gs, const char *key, bool *oom)
{
	size_t i;

	for (i = 0; i < gs->n; i++)
		if (strcmp(gs->g[i].key, key) == 0)
			return &gs->g[i];
	if (gs->n == gs->cap) {
		size_t cap = gs->cap ? gs->cap * 2 : 16;
		struct ins_group *g = realloc(gs->g, cap * sizeof(*g));
		if (!g) {
			*oom = true;
			return NULL;
		}
		gs->g = g;
		gs->cap = cap;
	}
	memset(&gs->g[gs->n], 0, sizeof(gs->g[0]));
	hl_strlcpy(gs->g[gs->n].key, key, INS_KEY_MAX);
	return &gs->g[gs->n++];
}

static void
ins_groups_free(struct ins_groups *gs)
{
	size_t i;

	for (i = 0; i < gs->n; i++)
		free(gs->g[i].ttf);
	free(gs->g);
}

/* FNV-1a of the route's key as it is stored (each part cut to its field). */
static uint64_t
ins_route_hash(const char *repository, const char *type, const char *agent)
{
	const char *parts[3] = { repository, type, agent };
	const size_t max[3] = { sizeof(((struct ins_route *)0)->repository) - 1,
		                sizeof(((struct ins_route *)0)->failure_type) - 1,
		                sizeof(((struct hl_agent_record *)0)->agent) - 1 };
	uint64_t h = 1469598103934665603ULL;
	size_t i, k;

	for (i = 0; i < 3; i++) {
		for (k = 0; parts[i][k] && k < max[i]; k++)
			h = (h ^ (unsigned char)parts[i][k]) * 1099511628211ULL;
		h = (h ^ 0xff) * 1099511628211ULL; /* the separator */
	}
	return h;
}

/* Where route key (repository, type, agent) is, or the free slot it goes in. */
static size_t
ins_route_slot(const struct ins_routes *rs, const char *repository, const char *type,
               const char *agent)
{
	size_t mask = rs->idx_cap - 1, h = (size_t)ins_route_hash(repository, type, agent) & mask;

	while (rs->idx[h]) {
		const struct ins_route *r = &rs->r[rs->idx[h] - 1];

		if (strncmp(r->repository, repository, sizeof(r->repository) - 1) == 0 &&
		    strncmp(r->failure_type, type, sizeof(r->failure_type) - 1) == 0 &&
		    strncmp(r->rec.agent, agent, sizeof(r->rec.agent) - 1) == 0)
			return h;
		h = (h + 1) & mask;
	}
	return h;
}

/* Doubles the index (and fills it again from the routes). */
static bool
ins_route_reindex(struct ins_routes *rs)
{
	size_t cap = rs->idx_cap ? rs->idx_cap * 2 : 64, i;
	uint32_t *idx = calloc(cap, sizeof(*idx));

	if (!idx)
		return false;
	free(rs->idx);
	rs->idx = idx;
	rs->idx_cap = cap;
	for (i = 0; i < rs->n; i++)
		rs->idx[ins_route_slot(rs, rs->r[i].repository, rs->r[i].failure_type,
		                       rs->r[i].rec.agent)] = (uint32_t)(i + 1);
	return true;
}

static void
ins_routes_free(struct ins_routes *rs)
{
	free(rs->r);
	free(rs->idx);
}

static struct hl_agent_record *
ins_route_of(struct ins_routes *rs, const char *repository, const char *type, const char *agent,
             bool *oom)
{
	size_t slot;

	if ((rs->n + 1) * 2 > rs->idx_cap && !ins_route_reindex(rs)) {
		*oom = true;
		return NULL;
	}
	slot = ins_route_slot(rs, repository, type, agent);
	if (rs->idx[slot])
		return &rs->r[rs->idx[slot] - 1].rec;
	if (rs->n == rs->cap) {
		size_t cap = rs->cap ? rs->cap * 2 : 32;
		struct ins_route *r = realloc(rs->r, cap * sizeof(*r));
		if (!r) {
			*oom = true;
			return NULL;
		}
		rs->r = r;
		rs->cap = cap;
	}
	memset(&rs->r[rs->n], 0, sizeof(rs->r[0]));
	hl_strlcpy(rs->r[rs->n].repository, repository, sizeof(rs->r[0].repository));
	hl_strlcpy(rs->r[rs->n].failure_type, type, sizeof(rs->r[0].failure_type));
	hl_strlcpy(rs->r[rs->n].rec.agent, agent, sizeof(rs->r[0].rec.agent));
	rs->idx[slot] = (uint32_t)(rs->n + 1);
	return &rs->r[rs->n++].rec;
}

static void
ins_add(struct ins_group *g, const struct ins_task *t, int max_attempts, bool *oom)
{
	bool succeeded = strcmp(t->state, "succeeded") == 0;
	bool escalated = strcmp(t->state, "escalated") == 0;

	if (!g)
		return;
	g->tasks++;
	if (succeeded || escalated)
		g->finished++;
	if (escalated)
		g->escalated++;
	if (!succeeded)
		return;
	g->succeeded++;
	if (t->success_n == 1)
		g->attempt1++;
	if (t->success_n >= 1 && t->success_n <= max_attempts)
		g->within++;
	if (t->fixed_by[0]) {
		g->fixed_by_agent++;
		if (strcmp(t->fixed_by, t->first_agent) == 0)
			g->routed_right++;
	}
	if (t->finished_ms >= t->created_ms && t->finished_ms > 0) {
		if (g->n_ttf == g->cap_ttf) {
			size_t cap = g->cap_ttf ? g->cap_ttf * 2 : 16;
			double *v = realloc(g->ttf, cap * sizeof(*v));
			if (!v) {
				*oom = true;
				return;
			}
			g->ttf = v;
			g->cap_ttf = cap;
		}
		g->ttf[g->n_ttf++] = (double)(t->finished_ms - t->created_ms) / 1000.0;
	}
}

/* Folds the finished task into every group. */
static void
ins_flush(struct ins_state *st)
{
	const struct ins_task *t = &st->cur;
	char day[16];

	if (!st->have)
		return;
	st->have = false;
	if (t->state[0] && strcmp(t->state, "succeeded") == 0 && !t->success_n)
		st->cur.success_n = t->last_n; /* succeeded without a judged success */
	ins_add(&st->all, t, st->o->max_attempts, &st->oom);
	if (t->first_agent[0])
		ins_add(ins_group_of(&st->by_agent, t->first_agent, &st->oom), t,
		        st->o->max_attempts, &st->oom);
	if (t->failure_type[0])
		ins_add(ins_group_of(&st->by_type, t->failure_type, &st->oom), t,
		        st->o->max_attempts, &st->oom);
	hl_time_rfc3339(day, sizeof(day), t->created_ms); /* "YYYY-MM-DD..." cut below */
	day[10] = '\0';
	ins_add(ins_group_of(&st->by_day, day, &st->oom), t, st->o->max_attempts, &st->oom);
}

static bool
ins_finished_outcome(const char *o)
{
	return strcmp(o, "success") == 0 || strcmp(o, "ci_still_failing") == 0 ||
	       strcmp(o, "agent_failed") == 0 || strcmp(o, "timeout") == 0;
}

static void
ins_row(void *arg, const struct hl_insight_row *r)
{
	struct ins_state *st = arg;
	struct ins_task *t = &st->cur;
	bool agent = strcmp(r->attempt_kind, "agent") == 0 && r->agent[0];

	if (!st->have || strcmp(t->task_id, r->task_id) != 0) {
		ins_flush(st);
		memset(t, 0, sizeof(*t));
		st->have = true;
		hl_strlcpy(t->task_id, r->task_id, sizeof(t->task_id));
		hl_strlcpy(t->repository, r->repository, sizeof(t->repository));
		hl_strlcpy(t->failure_type, r->failure_type, sizeof(t->failure_type));
		hl_strlcpy(t->state, r->state, sizeof(t->state));
		t->created_ms = r->created_ms;
		t->finished_ms = r->finished_ms;
	}
	if (r->n <= 0)
		return;
	t->last_n = r->n;
	if (agent && !t->first_agent[0])
		hl_strlcpy(t->first_agent, r->agent, sizeof(t->first_agent));
	if (!t->success_n &&
	    (strcmp(r->outcome, "success") == 0 || strcmp(r->outcome, "rerun_passed") == 0)) {
		t->success_n = r->n;
		if (agent)
			hl_strlcpy(t->fixed_by, r->agent, sizeof(t->fixed_by));
	}
	if (agent && ins_finished_outcome(r->outcome) && r->failure_type[0]) {
		struct hl_agent_record *rec =
		        ins_route_of(&st->routes, "", r->failure_type, r->agent, &st->oom);
		if (rec) {
			rec->finished++;
			rec->succeeded += strcmp(r->outcome, "success") == 0;
		}
	}
}

/* All-time agent records per repository + type (the learned table). */
static void
ins_learn_row(void *arg, const struct hl_insight_row *r)
{
	struct ins_state *st = arg;
	struct hl_agent_record *rec;

	if (r->n <= 0 || strcmp(r->attempt_kind, "agent") != 0 || !r->agent[0] ||
	    !r->failure_type[0] || !ins_finished_outcome(r->outcome))
		return;
	rec = ins_route_of(&st->routes, r->repository, r->failure_type, r->agent, &st->oom);
	if (rec) {
		rec->finished++;
		rec->succeeded += strcmp(r->outcome, "success") == 0;
	}
}

static int
ins_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Nearest rank: the smallest value with at least p of the values at or below. */
static json_t *
ins_percentile(double *v, size_t n, double p)
{
	size_t rank;

	if (!n)
		return json_null();
	qsort(v, n, sizeof(*v), ins_cmp_double);
	rank = (size_t)ceil(p * (double)n);
	if (rank < 1)
		rank = 1;
	return json_real(round(v[rank - 1] * 1000.0) / 1000.0);
}

static json_t *
ins_rate(int64_t num, int64_t den)
{
	return den > 0 ? json_real((double)num / (double)den) : json_null();
}

static json_t *
ins_group_json(struct ins_group *g, json_t *dup)
{
	json_t *o = json_object();

	if (!o) {
		json_decref(dup);
		return NULL;
	}
	json_object_set_new(o, "tasks", json_integer(g->tasks));
	json_object_set_new(o, "routing_correct", ins_rate(g->routed_right, g->fixed_by_agent));
	json_object_set_new(o, "duplicates_prevented", dup ? dup : json_null());
	json_object_set_new(o, "time_to_fix_p50_seconds", ins_percentile(g->ttf, g->n_ttf, 0.5));
	json_object_set_new(o, "time_to_fix_p90_seconds", ins_percentile(g->ttf, g->n_ttf, 0.9));
	json_object_set_new(o, "attempt1_success", ins_rate(g->attempt1, g->finished));
	json_object_set_new(o, "within_max_success", ins_rate(g->within, g->finished));
	json_object_set_new(o, "escalation_rate", ins_rate(g->escalated, g->finished));
	json_object_set_new(o, "succeeded", json_integer(g->succeeded));
	json_object_set_new(o, "escalated", json_integer(g->escalated));
	return o;
}

static json_t *
ins_groups_json(struct ins_groups *gs)
{
	json_t *o = json_object();
	size_t i;

	for (i = 0; o && i < gs->n; i++)
		json_object_set_new(o, gs->g[i].key, ins_group_json(&gs->g[i], NULL));
	return o;
}

static json_t *
ins_targets(void)
{
	return json_pack("{s:n, s:f, s:f, s:f, s:n, s:f, s:f, s:f}", "tasks", "routing_correct",
	                 0.9, "duplicates_prevented", 1.0, "time_to_fix_p50_seconds", 900.0,
	                 "time_to_fix_p90_seconds", "attempt1_success", 0.5, "within_max_success",
	                 0.8, "escalation_rate", 0.1);
}

/* The metrics with a target, and how a value meets it. */
static const struct {
	const char *key;
	int dir; /* 1: above, -1: below, 0: at least */
} ins_targeted[] = {
	{ "routing_correct", 1 },  { "duplicates_prevented", 0 }, { "time_to_fix_p50_seconds", -1 },
	{ "attempt1_success", 1 }, { "within_max_success", 1 },   { "escalation_rate", -1 },
};

static bool
ins_meets_one(double x, double t, int dir)
{
	return dir > 0 ? x > t : dir < 0 ? x < t : x >= t;
}

/* Whether each value meets its target (null: no value or no target). */
static json_t *
ins_meets(const json_t *g, const json_t *targets)
{
	json_t *o = json_object();
	size_t i;

	for (i = 0; o && i < sizeof(ins_targeted) / sizeof(ins_targeted[0]); i++) {
		json_t *v = json_object_get(g, ins_targeted[i].key);
		double x = json_number_value(v),
		       t = json_number_value(json_object_get(targets, ins_targeted[i].key));

		json_object_set_new(o, ins_targeted[i].key,
		                    json_is_number(v)
		                            ? json_boolean(ins_meets_one(x, t, ins_targeted[i].dir))
		                            : json_null());
	}
	return o;
}

/* The rule's agent of a failure type: the catalogue's. */
static const char *
ins_rule_agent(const char *type)
{
	const struct hl_catalog_type *ft = hl_catalog_type_find(type);

	return ft && ft->agent ? ft->agent->id : NULL;
}

static bool
ins_sticky(const char *type)
{
	const struct hl_catalog_type *ft = hl_catalog_type_find(type);

	return ft && ft->category && ft->category->stays_with_agent;
}

/* Route positions ordered by repository, type, then position (qsort_r). */
static int
ins_cmp_pos(const void *a, const void *b, void *arg)
{
	const struct ins_route *r = arg;
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	int c = strcmp(r[i].repository, r[j].repository);

	if (!c)
		c = strcmp(r[i].failure_type, r[j].failure_type);
	return c ? c : (i > j) - (i < j);
}

/* The learned table: every repository + type where learned routing would
 * move the type away from its rule's agent, by repository and type. The
 * routes are grouped by sorting (not by comparing each with every other:
 * 100,000 tasks over a thousand repositories made that minutes). */
static json_t *
ins_learned(const struct ins_routes *rs)
{
	static const char *const never[] = { "cipher", NULL };
	json_t *arr = json_array();
	size_t *pos = malloc((rs->n ? rs->n : 1) * sizeof(*pos)), i, j;

	if (!arr || !pos) {
		json_decref(arr);
		free(pos);
		return NULL;
	}
	for (i = 0; i < rs->n; i++)
		pos[i] = i;
	qsort_r(pos, rs->n, sizeof(*pos), ins_cmp_pos, rs->r);
	for (i = 0; i < rs->n; i = j) {
		const struct ins_route *first = &rs->r[pos[i]];
		struct hl_agent_record recs[HL_AGENT_RECORDS_MAX];
		const struct hl_agent_record *best;
		const char *rule = ins_rule_agent(first->failure_type);
		size_t n = 0;
		char why[256];

		/* the group: this repository and type, in the order first seen */
		for (j = i; j < rs->n && strcmp(rs->r[pos[j]].repository, first->repository) == 0 &&
		            strcmp(rs->r[pos[j]].failure_type, first->failure_type) == 0;
		     j++)
			if (n < HL_AGENT_RECORDS_MAX)
				recs[n++] = rs->r[pos[j]].rec;
		if (!rule || ins_sticky(first->failure_type) || strcmp(rule, "cipher") == 0)
			continue;
		best = hl_memory_learned_choice(recs, n, rule, first->failure_type,
		                                first->repository, never, why, sizeof(why));
		if (best)
			json_array_append_new(arr,
			                      json_pack("{s:s, s:s, s:s, s:s, s:s}", "repository",
			                                first->repository, "failure_type",
			                                first->failure_type, "from", rule, "to",
			                                best->agent, "evidence", why));
	}
	free(pos);
	return arr;
}

static bool
ins_switched(const json_t *switches, const char *agent, const char *type)
{
	const json_t *s;
	size_t i;

	json_array_foreach(switches, i, s)
	{
		if (strcmp(json_string_value(json_object_get(s, "from")), agent) == 0 &&
		    strcmp(json_string_value(json_object_get(s, "failure_type")), type) == 0)
			return true;
	}
	return false;
}

static int
ins_cmp_route(const void *a, const void *b)
{
	const struct ins_route *x = a, *y = b;
	int c = strcmp(x->rec.agent, y->rec.agent);

	return c ? c : strcmp(x->failure_type, y->failure_type);
}

static int
ins_cmp_group(const void *a, const void *b)
{
	return strcmp(((const struct ins_group *)a)->key, ((const struct ins_group *)b)->key);
}

int
hl_api_insights(json_t **out, struct hl_store *s, const struct hl_insights_opts *o,
                struct hl_err *err)
{
	struct ins_state st = { .o = o }, learn = { .o = o };
	struct hl_insight_filter f = { .since_ms = o->since_ms, .repository = o->repository };
	struct hl_insight_dedup d;
	json_t *doc = NULL, *routing = NULL, *series = NULL, *switches = NULL, *dup;
	char ts[40];
	size_t i;
	int rc;

	if ((rc = hl_store_insight_rows(s, &f, ins_row, &st, err)) < 0)
		goto out;
	ins_flush(&st);
	if ((rc = hl_store_insight_dedup(s, &d, &f, err)) < 0)
		goto out;
	f.since_ms = 0;
	if ((rc = hl_store_insight_rows(s, &f, ins_learn_row, &learn, err)) < 0)
		goto out;
	rc = -HL_ENOMEM;
	if (st.oom || learn.oom)
		goto oom;
	switches = ins_learned(&learn.routes);
	routing = json_array();
	series = json_array();
	if (!switches || !routing || !series)
		goto oom;
	if (st.routes.n)
		qsort(st.routes.r, st.routes.n, sizeof(st.routes.r[0]), ins_cmp_route);
	for (i = 0; i < st.routes.n; i++) {
		const struct ins_route *r = &st.routes.r[i];
		json_array_append_new(
		        routing,
		        json_pack("{s:s, s:s, s:I, s:I, s:o, s:b}", "agent", r->rec.agent,
		                  "failure_type", r->failure_type, "attempts",
		                  (json_int_t)r->rec.finished, "successes",
		                  (json_int_t)r->rec.succeeded, "rate",
		                  ins_rate(r->rec.succeeded, r->rec.finished), "switched_away",
		                  ins_switched(switches, r->rec.agent, r->failure_type)));
	}
	if (st.by_day.n)
		qsort(st.by_day.g, st.by_day.n, sizeof(st.by_day.g[0]), ins_cmp_group);
	for (i = 0; i < st.by_day.n; i++) {
		struct ins_group *g = &st.by_day.g[i];
		json_array_append_new(series,
		                      json_pack("{s:s, s:I, s:I, s:I, s:o}", "date", g->key,
		                                "tasks", (json_int_t)g->tasks, "succeeded",
		                                (json_int_t)g->succeeded, "escalated",
		                                (json_int_t)g->escalated, "time_to_fix_p50_seconds",
		                                ins_percentile(g->ttf, g->n_ttf, 0.5)));
	}
	dup = d.duplicates + d.existing + d.leaked > 0
	              ? ins_rate(d.duplicates + d.existing, d.duplicates + d.existing + d.leaked)
	              : json_null();
	doc = ins_group_json(&st.all, dup);
	if (!doc)
		goto oom;
	hl_time_rfc3339(ts, sizeof(ts), o->now_ms ? o->now_ms : hl_time_wall_ms());
	json_object_set_new(doc, "generated_at", json_string(ts));
	json_object_set_new(doc, "since", o->since ? json_string(o->since) : json_null());
	json_object_set_new(doc, "repository",
	                    o->repository ? json_string(o->repository) : json_null());
	json_object_set_new(doc, "max_attempts", json_integer(o->max_attempts));
	json_object_set_new(doc, "deliveries", json_integer(d.deliveries));
	json_object_set_new(doc, "duplicates", json_integer(d.duplicates + d.existing));
	json_object_set_new(doc, "targets", ins_targets());
	json_object_set_new(doc, "meets", ins_meets(doc, json_object_get(doc, "targets")));
	json_object_set_new(doc, "by_agent", ins_groups_json(&st.by_agent));
	json_object_set_new(doc, "by_failure_type", ins_groups_json(&st.by_type));
	json_object_set_new(doc, "routing", routing);
	routing = NULL;
	json_object_set_new(
	        doc, "learned",
	        json_pack("{s:b, s:O}", "enabled", o->learned_routing, "switches", switches));
	json_object_set_new(doc, "series", series);
	series = NULL;
	*out = doc;
	doc = NULL;
	rc = 0;
	goto out;
oom:
	rc = hl_err_set(err, HL_ENOMEM, "out of memory");
out:
	json_decref(doc);
	json_decref(routing);
	json_decref(series);
	json_decref(switches);
	free(st.all.ttf);
	ins_groups_free(&st.by_agent);
	ins_groups_free(&st.by_type);
	ins_groups_free(&st.by_day);
	ins_routes_free(&st.routes);
	ins_routes_free(&learn.routes);
	ins_groups_free(&learn.by_agent);
	ins_groups_free(&learn.by_type);
	ins_groups_free(&learn.by_day);
	free(learn.all.ttf);
	return rc;
}

/* ---- the terminal table ------------------------------------------------ */

/* x shown as x * scale with decimals (then unit), or as many more (at
 * most 4) as it takes for the figure shown to meet key's target t exactly
 * when x does: 9.99% under a 10% target, 99.96% short of 100%, 14.98m under
 * 15 minutes, never a rounded "10.0%" said to be under 10%. t: NULL for no
 * target. */
static void
ins_figure(char *cell, size_t size, const char *key, double x, double scale, int decimals,
           const char *unit, const json_t *t)
{
	int dir = 2, d;
	size_t i;

	for (i = 0; i < sizeof(ins_targeted) / sizeof(ins_targeted[0]); i++)
		if (strcmp(ins_targeted[i].key, key) == 0)
			dir = ins_targeted[i].dir;
	for (d = decimals; d <= 4; d++) {
		double t_v = json_number_value(t);

		snprintf(cell, size, "%.*f%s", d, x * scale, unit);
		if (dir == 2 || !json_is_number(t) ||
		    ins_meets_one(strtod(cell, NULL) / scale, t_v, dir) ==
		            ins_meets_one(x, t_v, dir))
			return;
	}
}

static void
ins_cell(struct hl_buf *b, const char *key, const json_t *v, const json_t *target)
{
	double x = json_number_value(v);
	char cell[32];

	if (!json_is_number(v))
		snprintf(cell, sizeof(cell), "-");
	else if (strstr(key, "seconds") && x >= 60)
		ins_figure(cell, sizeof(cell), key, x, 1.0 / 60.0, 1, "m", target);
	else if (strstr(key, "seconds"))
		ins_figure(cell, sizeof(cell), key, x, 1.0, 0, "s", target);
	else
		ins_figure(cell, sizeof(cell), key, x, 100.0, 1, "%", target);
	hl_buf_appendf(b, " %9s", cell);
}

static const char *const ins_keys[] = { "routing_correct",         "duplicates_prevented",
	                                "time_to_fix_p50_seconds", "time_to_fix_p90_seconds",
	                                "attempt1_success",        "within_max_success",
	                                "escalation_rate" };

/* s for a terminal (hl_str_terminal_safe); "-" for NULL. */
static const char *
ins_term(char *out, size_t size, const char *s)
{
	return hl_str_terminal_safe(out, size, s ? s : "-");
}

/* A row of g's metrics; targets: those the row is judged against (the
 * overall row's), NULL for none. */
static void
ins_text_row(struct hl_buf *b, const char *name, const json_t *g, const json_t *targets)
{
	char t[256];
	size_t i;

	hl_buf_appendf(b, "%-22.22s %6lld", ins_term(t, sizeof(t), name),
	               (long long)json_integer_value(json_object_get(g, "tasks")));
	for (i = 0; i < sizeof(ins_keys) / sizeof(ins_keys[0]); i++)
		ins_cell(b, ins_keys[i], json_object_get(g, ins_keys[i]),
		         json_object_get(targets, ins_keys[i]));
	hl_buf_append_char(b, '\n');
}

static void
ins_text_header(struct hl_buf *b, const char *first)
{
	hl_buf_appendf(b, "%-22s %6s %9s %9s %9s %9s %9s %9s %9s\n", first, "tasks", "routing",
	               "dedup", "ttf p50", "ttf p90", "attempt1", "within", "escalated");
}

void
hl_api_insights_text(struct hl_buf *b, const json_t *doc)
{
	const json_t *targets = json_object_get(doc, "targets"), *meets;
	const json_t *g, *r;
	const char *k;
	char term[5][256];
	size_t i;

	hl_buf_appendf(b, "healer insights: %s%s%s\n\n",
	               json_is_string(json_object_get(doc, "since"))
	                       ? ins_term(term[0], sizeof(term[0]),
	                                  json_string_value(json_object_get(doc, "since")))
	                       : "all time",
	               json_is_string(json_object_get(doc, "repository")) ? ", " : "",
	               json_is_string(json_object_get(doc, "repository"))
	                       ? ins_term(term[1], sizeof(term[1]),
	                                  json_string_value(json_object_get(doc, "repository")))
	                       : "");
	ins_text_header(b, "");
	ins_text_row(b, "overall", doc, targets);
	hl_buf_appendf(b, "%-22s %6s", "target", "");
	for (i = 0; i < sizeof(ins_keys) / sizeof(ins_keys[0]); i++) {
		const json_t *t = json_object_get(targets, ins_keys[i]);
		char cell[32];
		bool below = strcmp(ins_keys[i], "escalation_rate") == 0 ||
		             strcmp(ins_keys[i], "time_to_fix_p50_seconds") == 0;

		if (!json_is_number(t))
			snprintf(cell, sizeof(cell), "-");
		else if (strstr(ins_keys[i], "seconds"))
			snprintf(cell, sizeof(cell), "<%.0fm", json_number_value(t) / 60);
		else
			snprintf(cell, sizeof(cell), "%s%.0f%%",
			         below                                              ? "<"
			         : strcmp(ins_keys[i], "duplicates_prevented") == 0 ? ""
			                                                            : ">",
			         json_number_value(t) * 100);
		hl_buf_appendf(b, " %9s", cell);
	}
	hl_buf_append_char(b, '\n');
	meets = json_object_get(doc, "meets");
	hl_buf_appendf(b, "%-22s %6s", "meets", "");
	for (i = 0; i < sizeof(ins_keys) / sizeof(ins_keys[0]); i++) {
		const json_t *m = json_object_get(meets, ins_keys[i]);
		hl_buf_appendf(b, " %9s", json_is_true(m) ? "yes" : json_is_false(m) ? "NO" : "-");
	}
	hl_buf_appendf(b, "\n\n");
	ins_text_header(b, "by agent");
	json_object_foreach((json_t *)json_object_get(doc, "by_agent"), k, g)
	        ins_text_row(b, k, g, NULL);
	hl_buf_append_char(b, '\n');
	ins_text_header(b, "by failure type");
	json_object_foreach((json_t *)json_object_get(doc, "by_failure_type"), k, g)
	        ins_text_row(b, k, g, NULL);
	hl_buf_appendf(b, "\n%-8s %-24s %9s %9s %9s\n", "routing", "failure type", "attempts",
	               "successes", "rate");
	json_array_foreach(json_object_get(doc, "routing"), i, r)
	{
		char rate[16];

		snprintf(rate, sizeof(rate), "%.0f%%",
		         json_number_value(json_object_get(r, "rate")) * 100);
		hl_buf_appendf(b, "%-8s %-24.24s %9lld %9lld %9s%s\n",
		               ins_term(term[0], sizeof(term[0]),
		                        json_string_value(json_object_get(r, "agent"))),
		               ins_term(term[1], sizeof(term[1]),
		                        json_string_value(json_object_get(r, "failure_type"))),
		               (long long)json_integer_value(json_object_get(r, "attempts")),
		               (long long)json_integer_value(json_object_get(r, "successes")), rate,
		               json_is_true(json_object_get(r, "switched_away"))
		                       ? "  (learned away)"
		                       : "");
	}
	r = json_object_get(doc, "learned");
	hl_buf_appendf(b, "\nlearned routing (%s):\n",
	               json_is_true(json_object_get(r, "enabled")) ? "on" : "off");
	if (!json_array_size(json_object_get(r, "switches")))
		hl_buf_append_str(b, "  none\n");
	json_array_foreach(json_object_get(r, "switches"), i, g) hl_buf_appendf(
	        b, "  %s %s: %s -> %s (%s)\n",
	        ins_term(term[0], sizeof(term[0]),
	                 json_string_value(json_object_get(g, "repository"))),
	        ins_term(term[1], sizeof(term[1]),
	                 json_string_value(json_object_get(g, "failure_type"))),
	        ins_term(term[2], sizeof(term[2]), json_string_value(json_object_get(g, "from"))),
	        ins_term(term[3], sizeof(term[3]), json_string_value(json_object_get(g, "to"))),
	        ins_term(term[4], sizeof(term[4]),
	                 json_string_value(json_object_get(g, "evidence"))));
}

/* ---- Prometheus -------------------------------------------------------- */

/* One sample of healer_insights_<family><key>, when v is a number. */
static void
ins_metric(struct hl_buf *b, const char *family, const char *key, const char *labels,
           const json_t *v)
{
	if (json_is_number(v))
		hl_buf_appendf(b, "healer_insights_%s%s{%s} %.6g\n", family, key, labels,
		               json_number_value(v));
}

/* A label value: the names healer stores are [A-Za-z0-9_./-]; anything
 * else is dropped rather than escaped. */
static void
ins_label(char *out, size_t size, const char *s)
{
	size_t n = 0;

	for (; *s && n + 1 < size; s++)
		if (*s != '"' && *s != '\\' && *s != '\n')
			out[n++] = *s;
	out[n] = '\0';
}

/* The groups of the insights' gauges: each its own family, so that a sum
 * over one family counts every task once. */
static const struct {
	const char *family; /* after healer_insights_ */
	const char *doc_key;
	const char *label; /* NULL: overall */
	const char *what;
} ins_scopes[] = {
	{ "", NULL, NULL, "" },
	{ "agent_", "by_agent", "agent", ", by the task's first agent" },
	{ "failure_type_", "by_failure_type", "failure_type", ", by failure type" },
};

/* The samples of one key in one scope, per window. */
static void
ins_metric_scope(struct hl_buf *b, const char *family, const char *key, const char *doc_key,
                 const char *label, const json_t *const *docs, const char *const *windows, size_t n)
{
	const json_t *g;
	const char *k;
	char labels[256], v[128];
	size_t i;

	for (i = 0; i < n; i++) {
		if (!doc_key) {
			snprintf(labels, sizeof(labels), "window=\"%s\"", windows[i]);
			ins_metric(b, family, key, labels, json_object_get(docs[i], key));
			continue;
		}
		json_object_foreach((json_t *)json_object_get(docs[i], doc_key), k, g)
		{
			ins_label(v, sizeof(v), k);
			snprintf(labels, sizeof(labels), "window=\"%s\",%s=\"%s\"", windows[i],
			         label, v);
			ins_metric(b, family, key, labels, json_object_get(g, key));
		}
	}
}

/* What a gauge of key measures, for its HELP. */
static const char *
ins_key_help(const char *key)
{
	if (strcmp(key, "tasks") == 0)
		return "Tasks remediated in the window";
	if (strcmp(key, "time_to_fix_p50_seconds") == 0)
		return "Time to fix, median, in seconds (task creation to verified success)";
	if (strcmp(key, "time_to_fix_p90_seconds") == 0)
		return "Time to fix, 90th percentile, in seconds (task creation to verified success)";
	if (strcmp(key, "routing_correct") == 0)
		return "Share of succeeded tasks fixed by their first agent (rate 0-1)";
	if (strcmp(key, "duplicates_prevented") == 0)
		return "Share of duplicate deliveries and failures kept from a second remediation "
		       "(rate 0-1)";
	if (strcmp(key, "attempt1_success") == 0)
		return "Share of ended tasks fixed by the first attempt (rate 0-1)";
	if (strcmp(key, "within_max_success") == 0)
		return "Share of ended tasks fixed within the maximum attempts (rate 0-1)";
	if (strcmp(key, "escalation_rate") == 0)
		return "Share of ended tasks escalated (rate 0-1)";
	return "Insight";
}

/* One gauge family per key and scope (overall, by agent, by failure type). */
static void
ins_metric_family(struct hl_buf *b, const char *key, const json_t *const *docs,
                  const char *const *windows, size_t n)
{
	size_t j;

	for (j = 0; j < sizeof(ins_scopes) / sizeof(ins_scopes[0]); j++) {
		/* duplicates are counted per delivery, not per agent or type */
		if (ins_scopes[j].doc_key && strcmp(key, "duplicates_prevented") == 0)
			continue;
		hl_buf_appendf(b,
		               "# HELP healer_insights_%s%s %s%s (contract section 10).\n"
		               "# TYPE healer_insights_%s%s gauge\n",
		               ins_scopes[j].family, key, ins_key_help(key), ins_scopes[j].what,
		               ins_scopes[j].family, key);
		ins_metric_scope(b, ins_scopes[j].family, key, ins_scopes[j].doc_key,
		                 ins_scopes[j].label, docs, windows, n);
	}
}

void
hl_api_insights_metrics(struct hl_buf *b, const json_t *const *docs, const char *const *windows,
                        size_t n)
{
	const json_t *g, *t = n ? json_object_get(docs[0], "targets") : NULL;
	const char *k;
	size_t i;

	ins_metric_family(b, "tasks", docs, windows, n);
	for (i = 0; i < sizeof(ins_keys) / sizeof(ins_keys[0]); i++)
		ins_metric_family(b, ins_keys[i], docs, windows, n);
	hl_buf_append_str(b, "# HELP healer_insights_target The design's target of each"
	                     " insight.\n# TYPE healer_insights_target gauge\n");
	json_object_foreach((json_t *)t, k, g)
	{
		if (json_is_number(g))
			hl_buf_appendf(b, "healer_insights_target{metric=\"%s\"} %.6g\n", k,
			               json_number_value(g));
	}
}

int
hl_api_parse_duration(int64_t *ms, const char *text, struct hl_err *err)
{
	char *end = NULL;
	long long v;
	int64_t unit = 1000;

	errno = 0;
	v = text ? strtoll(text, &end, 10) : 0;
	/* digits first: strtoll would take " 5d" and "+5d" */
	if (!text || !isdigit((unsigned char)text[0]) || end == text || errno || v <= 0)
		return hl_err_set(err, HL_EINVAL, "bad duration '%s' (like 90s, 30m, 24h, 7d, 2w)",
		                  text ? text : "");
	if (*end == 's' || !*end)
		unit = 1000;
	else if (*end == 'm')
		unit = 60000;
	else if (*end == 'h')
		unit = 3600000;
	else if (*end == 'd')
		unit = 86400000;
	else if (*end == 'w')
		unit = 7 * 86400000LL;
	else
		return hl_err_set(err, HL_EINVAL, "bad duration '%s' (like 90s, 30m, 24h, 7d, 2w)",
		                  text);
	if (*end && end[1])
		return hl_err_set(err, HL_EINVAL, "bad duration '%s' (like 90s, 30m, 24h, 7d, 2w)",
		                  text);
	if (v > 3650LL * 86400000 / unit)
		return hl_err_set(err, HL_EINVAL, "duration '%s' is above ten years", text);
	*ms = v * unit;
	return 0;
}
