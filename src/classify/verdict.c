/*
 * verdict.c - the classifier's entry points: scan the log (scan.c), score
 * the rules that fired (score.c) and turn the best candidate into the
 * verdict, routed through the catalogue (failure type -> category -> agent;
 * Atlas/general, the catalogue's defaults, when nothing fired), with its
 * confidence, its evidence line and, when no log line supports it, the
 * reason. The verdict keeps the best candidate of every agent that fired
 * (for --explain and the runner-up) and fills its other slots best first.
 * Also the helpers the retry loop asks: the runner-up agent, a path's file
 * class and the agent to try after one failed.
 */
#include "base/buf.h"
#include "classify/classify_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Failure types, categories and agents (contract section 5) are the
 * catalogue's (src/catalog); these are shorthands over it. */

const char *
hl_classify_type_category(const char *failure_type)
{
	const struct hl_catalog_type *t = hl_catalog_type_find(failure_type);
	return t ? t->category->name : NULL;
}

const char *
hl_classify_type_fix_approach(const char *failure_type)
{
	const struct hl_catalog_type *t = hl_catalog_type_find(failure_type);
	return t ? t->fix_approach : NULL;
}

const char *
hl_classify_category_agent(const char *category)
{
	const struct hl_catalog_category *c = hl_catalog_category_find(category);
	return c ? c->agent->id : hl_catalog_default_agent()->id;
}

const char *
hl_classify_file_class(const char *path)
{
	if (path == NULL || *path == '\0')
		return NULL;
	/* the first category whose globs match (the catalogue lists the more
	 * specific ones first) */
	for (size_t i = 0; i < hl_catalog_category_count(); i++) {
		const struct hl_catalog_category *c = hl_catalog_category_at(i);
		if (c->files[0] != NULL && cl_glob_any(c->files, path))
			return c->name;
	}
	return NULL;
}

const char *
hl_classify_alternate_agent(const char *current_agent, const char *category,
                            const char *const *changed_files, size_t n_changed)
{
	const struct hl_catalog_category *pinned = hl_catalog_category_find(category);
	const struct hl_catalog_agent *def = hl_catalog_default_agent();
	size_t count[HL_CATALOG_MAX_CATEGORIES] = { 0 };
	size_t nc = hl_catalog_category_count(), best = SIZE_MAX;

	if (pinned != NULL && pinned->stays_with_agent)
		return pinned->agent->id;
	for (size_t i = 0; i < n_changed; i++) {
		const struct hl_catalog_category *c =
		        hl_catalog_category_find(hl_classify_file_class(changed_files[i]));
		if (c != NULL)
			count[c->index]++;
	}
	/* the specialist with the most changed files, other than the current
	 * agent; the default agent is the fallback, so its files do not count */
	for (size_t k = 0; k < nc; k++) {
		const struct hl_catalog_agent *a = hl_catalog_category_at(k)->agent;
		if (count[k] == 0 || a == def)
			continue;
		if (current_agent != NULL && strcasecmp(current_agent, a->id) == 0)
			continue;
		if (best == SIZE_MAX || count[k] > count[best])
			best = k;
	}
	return best == SIZE_MAX ? def->id : hl_catalog_category_at(best)->agent->id;
}

/* The best candidate whose agent is not the winner's, or NULL. */
static const struct hl_classify_candidate *
cl_runner_up(const struct hl_verdict *v)
{
	for (size_t i = 1; i < v->n_candidates; i++)
		if (strcmp(v->candidates[i].agent, v->agent) != 0)
			return &v->candidates[i];
	return NULL;
}

const char *
hl_verdict_runner_up_agent(const struct hl_verdict *v)
{
	const struct hl_classify_candidate *r;

	if (v == NULL || v->type == NULL || v->type->category->stays_with_agent)
		return NULL;
	r = cl_runner_up(v);
	return r ? r->agent : NULL;
}

const char *
hl_classify_evidence_name(enum hl_classify_evidence e)
{
	switch (e) {
	case HL_CLASSIFY_EVIDENCE_CONTEXT:
		return "context";
	case HL_CLASSIFY_EVIDENCE_LOG:
		return "log";
	case HL_CLASSIFY_EVIDENCE_EVENT:
		return "event";
	case HL_CLASSIFY_EVIDENCE_NONE:
	default:
		return "none";
	}
}

void
hl_verdict_release(struct hl_verdict *v)
{
	if (v == NULL)
		return;
	free(v->rule);
	free(v->evidence_line);
	free(v->evidence_reason);
	for (size_t i = 0; i < v->n_candidates; i++) {
		free(v->candidates[i].rule);
		free(v->candidates[i].line);
	}
	memset(v, 0, sizeof(*v));
}

/* The confidence of v (its candidates filled): see classify.h. */
static double
cl_confidence(const struct hl_verdict *v)
{
	const struct hl_classify_candidate *w = v->n_candidates ? &v->candidates[0] : NULL;
	const struct hl_classify_candidate *r = cl_runner_up(v);
	double strength, agree = 1.0, bonus = 0.0, conf;

	if (w == NULL)
		return HL_CLASSIFY_CONFIDENCE_NONE;
	switch (w->evidence) {
	case HL_CLASSIFY_EVIDENCE_EVENT:
		strength = 0.95;
		break;
	case HL_CLASSIFY_EVIDENCE_LOG:
		strength = 0.35 + 0.6 * (w->priority < 100 ? w->priority : 100) / 100;
		if (w->tiebreak > 0)
			bonus = 0.05;
		break;
	case HL_CLASSIFY_EVIDENCE_CONTEXT:
	default:
		strength = 0.15 + w->score / 100;
		if (strength > 0.4)
			strength = 0.4;
		break;
	}
	if (r != NULL && r->evidence == w->evidence) {
		double margin = w->score - r->score;
		agree = 0.5 + 0.5 * (margin < 20 ? margin : 20) / 20;
	} else if (r != NULL) {
		agree = 0.9;
	}
	conf = strength * agree + bonus;
	if (conf > 0.99)
		conf = 0.99;
	return (double)(long)(conf * 100 + 0.5) / 100;
}

/* Appends 'value' to b made printable (valid UTF-8, no control bytes,
 * clipped): names come from outside. */
static void
cl_append_quoted(struct hl_buf *b, const char *value)
{
	char *t = cl_line_text(value ? value : "", value ? strlen(value) : 0);

	hl_buf_appendf(b, "'%s'", t ? t : "");
	free(t);
}

/* Why no log line supports the verdict and how it was routed; NULL (no
 * reason) for a log winner. cand is the winner's scoring record or NULL. */
static int
cl_reason(char **out, const struct hl_verdict *v, const struct cl_cand *cand,
          const struct hl_classify_input *in, size_t log_bytes, struct hl_err *err)
{
	struct hl_buf b = HL_BUF_INIT(4096);

	*out = NULL;
	if (v->evidence == HL_CLASSIFY_EVIDENCE_LOG)
		return 0;
	if (v->evidence == HL_CLASSIFY_EVIDENCE_EVENT)
		hl_buf_append_str(&b, "alert_event: ");
	else
		hl_buf_append_str(&b, log_bytes == 0 ? "no_log: " : "no_matching_line: ");
	if (cand == NULL) {
		hl_buf_append_str(&b, "no rule fired");
	} else if (cand->ctx_what != NULL) {
		hl_buf_appendf(&b, "routed by %s ", cand->ctx_what);
		cl_append_quoted(&b, cand->ctx_value);
	} else {
		hl_buf_appendf(&b, "routed by changed files (%zu of %zu)", cand->files_hit,
		               in->n_changed);
	}
	if (hl_buf_error(&b)) {
		hl_buf_release(&b);
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	}
	*out = hl_buf_detach(&b, NULL);
	return *out ? 0 : hl_err_set(err, HL_ENOMEM, "out of memory");
}

/* The last error-looking line (the built-in quote patterns), or 0. */
static size_t
cl_quote_line(const struct hl_classifier *c, const struct cl_scan *sc, size_t *raw)
{
	size_t line = 0;

	for (size_t k = c->quote_first; k < c->n_pat; k++) {
		if (sc->count[k] > 0 && sc->line[k] > line) {
			line = sc->line[k];
			*raw = sc->raw[k];
		}
	}
	return line;
}

static int
cl_classify(struct hl_verdict *out, struct hl_classifier *c, const struct hl_classify_input *in,
            const struct cl_src *src, struct hl_err *err)
{
	struct hl_verdict v;
	struct cl_scan sc;
	struct cl_cand *cands = NULL;
	bool agent_seen[HL_CATALOG_MAX_AGENTS] = { false };
	size_t n_cands = 0, total_lines = 0, n_sel = 0, ev_line = 0, ev_raw = 0;
	const struct hl_catalog_type *t = hl_catalog_default_type();
	int rc = 0;

	memset(&v, 0, sizeof(v));
	cands = calloc(c->n_rules + 1, sizeof(*cands));
	if (cl_scan_alloc(&sc, c->n_pat) != 0 || cands == NULL) {
		rc = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	rc = cl_scan_log(c, &sc, src, &total_lines, err);
	if (rc)
		goto out;
	n_cands = cl_score(cands, c, in, &sc, total_lines);

	/* Keep the best candidate of each agent, then the best of the rest;
	 * the kept ones stay in rank order. */
	for (size_t i = 0; i < n_cands && n_sel < HL_CLASSIFY_MAX_CANDIDATES; i++) {
		unsigned a = c->rules[cands[i].rule].type->agent->index;
		if (!agent_seen[a]) {
			agent_seen[a] = true;
			cands[i].picked = true;
			n_sel++;
		}
	}
	for (size_t i = 0; i < n_cands && n_sel < HL_CLASSIFY_MAX_CANDIDATES; i++) {
		if (!cands[i].picked) {
			cands[i].picked = true;
			n_sel++;
		}
	}
	for (size_t i = 0; i < n_cands; i++) {
		struct hl_classify_candidate *hc = &v.candidates[v.n_candidates];
		const struct cl_rule *r = &c->rules[cands[i].rule];
		if (!cands[i].picked)
			continue;
		v.n_candidates++;
		hc->rule = strdup(r->name);
		hc->failure_type = r->type->name;
		hc->agent = r->type->agent->id;
		hc->evidence = cands[i].evidence;
		hc->score = cands[i].score;
		hc->tiebreak = cands[i].tiebreak;
		hc->priority = r->priority;
		hc->recency = cands[i].recency;
		hc->context = cands[i].context;
		hc->files = cands[i].files;
		hc->matches = cands[i].matches;
		hc->why = cands[i].why;
		hc->line_number = cands[i].ev_line;
		hc->line =
		        cands[i].ev_line > 0 ? cl_raw_line_text(src, cands[i].ev_raw) : strdup("");
		if (hc->rule == NULL || hc->line == NULL) {
			rc = hl_err_set(err, HL_ENOMEM, "out of memory");
			goto out;
		}
	}

	v.log_lines = total_lines;
	if (n_cands > 0) {
		t = c->rules[cands[0].rule].type;
		v.evidence = cands[0].evidence;
	}
	v.type = t;
	v.failure_type = t->name;
	v.category = t->category->name;
	v.agent = t->agent->id;
	v.fix_approach = t->fix_approach;
	v.rule = strdup(n_cands > 0 ? v.candidates[0].rule : "default");
	v.confidence = cl_confidence(&v);
	/* The line to quote: the winner's log evidence, else the last
	 * error-looking line. */
	if (v.evidence == HL_CLASSIFY_EVIDENCE_LOG) {
		ev_line = cands[0].ev_line;
		ev_raw = cands[0].ev_raw;
	} else {
		ev_line = cl_quote_line(c, &sc, &ev_raw);
	}
	v.evidence_line_number = ev_line;
	v.evidence_line = ev_line > 0 ? cl_raw_line_text(src, ev_raw) : strdup("");
	if (v.rule == NULL || v.evidence_line == NULL) {
		rc = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	rc = cl_reason(&v.evidence_reason, &v, n_cands > 0 ? &cands[0] : NULL, in, src->len, err);
out:
	cl_scan_release(&sc);
	free(cands);
	if (rc) {
		hl_verdict_release(&v);
		return rc;
	}
	*out = v;
	return 0;
}

int
hl_classify(struct hl_verdict *out, struct hl_classifier *c, const struct hl_classify_input *in,
            struct hl_err *err)
{
	struct cl_src src = { in->log ? in->log : "", -1, in->log ? in->log_len : 0 };
	return cl_classify(out, c, in, &src, err);
}

int
hl_classify_fd(struct hl_verdict *out, struct hl_classifier *c, const struct hl_classify_input *in,
               int fd, size_t size, struct hl_err *err)
{
	struct cl_src src = { NULL, fd, size };
	return cl_classify(out, c, in, &src, err);
}
