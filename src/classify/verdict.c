/*
 * verdict.c - the classifier's entry points: scan the log (scan.c), score
 * the rules that fired (score.c) and turn the best candidate into the
 * verdict, routed through the catalogue (failure type -> category -> agent;
 * Atlas/general, the catalogue's defaults, when nothing fired). Also the
 * helpers the retry loop asks: a path's file class and the agent to try
 * after one failed.
 */
#include "classify/classify_int.h"

#include <stdlib.h>
#include <string.h>

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
hl_classify_alternate_agent(const char *current_agent, bool security_event,
                            const char *const *changed_files, size_t n_changed)
{
	const struct hl_catalog_category *security = hl_catalog_category_find("security");
	const struct hl_catalog_agent *def = hl_catalog_default_agent();
	size_t count[HL_CATALOG_MAX_CATEGORIES] = { 0 };
	size_t nc = hl_catalog_category_count(), best = SIZE_MAX;

	if (security_event && security != NULL)
		return security->agent->id;
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
		if (current_agent != NULL && strcmp(current_agent, a->id) == 0)
			continue;
		if (best == SIZE_MAX || count[k] > count[best])
			best = k;
	}
	return best == SIZE_MAX ? def->id : hl_catalog_category_at(best)->agent->id;
}

void
hl_verdict_release(struct hl_verdict *v)
{
	if (v == NULL)
		return;
	free(v->rule);
	free(v->evidence_line);
	for (size_t i = 0; i < v->n_candidates; i++) {
		free(v->candidates[i].rule);
		free(v->candidates[i].line);
	}
	memset(v, 0, sizeof(*v));
}

static int cl_classify(struct hl_verdict *out, struct hl_classifier *c,
                       const struct hl_classify_input *in, const struct cl_src *src,
                       struct hl_err *err);

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

static int
cl_classify(struct hl_verdict *out, struct hl_classifier *c, const struct hl_classify_input *in,
            const struct cl_src *src, struct hl_err *err)
{
	struct hl_verdict v;
	struct cl_scan sc;
	struct cl_cand *cands = NULL;
	size_t n_cands = 0, total_lines = 0;
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
	if (n_cands > HL_CLASSIFY_MAX_CANDIDATES)
		n_cands = HL_CLASSIFY_MAX_CANDIDATES;

	for (size_t i = 0; i < n_cands; i++) {
		struct hl_classify_candidate *hc = &v.candidates[i];
		const struct cl_rule *r = &c->rules[cands[i].rule];
		v.n_candidates = i + 1;
		hc->rule = strdup(r->name);
		hc->failure_type = r->type->name;
		hc->agent = r->type->agent->id;
		hc->score = cands[i].score;
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
	{
		const struct hl_catalog_type *t = hl_catalog_default_type();
		const struct hl_classify_candidate *ev = NULL;
		if (n_cands > 0) {
			t = c->rules[cands[0].rule].type;
			ev = &v.candidates[0];
			/* A winner without log evidence borrows the best log line. */
			for (size_t i = 0; ev->line_number == 0 && i < n_cands; i++)
				if (v.candidates[i].line_number > 0)
					ev = &v.candidates[i];
		}
		v.type = t;
		v.failure_type = t->name;
		v.category = t->category->name;
		v.agent = t->agent->id;
		v.fix_approach = t->fix_approach;
		v.rule = strdup(n_cands > 0 ? v.candidates[0].rule : "default");
		v.evidence_line_number = ev ? ev->line_number : 0;
		v.evidence_line = strdup(ev && ev->line ? ev->line : "");
		if (v.rule == NULL || v.evidence_line == NULL) {
			rc = hl_err_set(err, HL_ENOMEM, "out of memory");
			goto out;
		}
	}
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
