/*
 * score.c - scoring. Every rule whose conditions hold (its events, ArgoCD
 * status, name globs with require_context, and a log match when it has
 * patterns) becomes a candidate, ranked
 *
 *  1. by its evidence: event (an alert-domain rule firing on the event: the
 *     alert is the failure) > log (a pattern matched) > context (names,
 *     changed files, ArgoCD status, a CI event type). So context never
 *     outvotes a log line: a context-only rule wins only when no log rule
 *     fired (contract section 5);
 *  2. by score: log and event evidence priority + recency; context
 *     priority + context + files (rules/default.yaml explains the parts);
 *  3. on equal evidence by the tie-break, the context and file bonuses of
 *     a log or event rule; then the later evidence; then file order.
 *
 * The log itself is never read here: the scan's per-pattern match counts and
 * last lines are all scoring needs.
 */
#include "classify/classify_int.h"

#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool
cl_glob_path(const char *glob, const char *path)
{
	/* A glob without '/' matches the base name (gitignore-like). */
	if (strchr(glob, '/') == NULL) {
		const char *base = strrchr(path, '/');
		if (base != NULL && fnmatch(glob, base + 1, FNM_CASEFOLD) == 0)
			return true;
	}
	return fnmatch(glob, path, FNM_CASEFOLD) == 0;
}

bool
cl_glob_any(const char *const *globs, const char *path)
{
	for (size_t i = 0; globs[i] != NULL; i++)
		if (cl_glob_path(globs[i], path))
			return true;
	return false;
}

static bool
cl_list_has(const struct cl_list *l, const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	for (size_t i = 0; i < l->n; i++)
		if (strcasecmp(l->v[i], s) == 0)
			return true;
	return false;
}

static bool
cl_list_glob(const struct cl_list *l, const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	for (size_t i = 0; i < l->n; i++)
		if (fnmatch(l->v[i], s, FNM_CASEFOLD) == 0)
			return true;
	return false;
}

static int
cl_cand_cmp(const void *a, const void *b)
{
	const struct cl_cand *x = a, *y = b;
	if (x->evidence != y->evidence)
		return x->evidence > y->evidence ? -1 : 1;
	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	if (x->tiebreak != y->tiebreak)
		return x->tiebreak > y->tiebreak ? -1 : 1;
	if (x->line != y->line)
		return x->line > y->line ? -1 : 1;
	return x->rule < y->rule ? -1 : x->rule > y->rule;
}

/* Whether a name glob of r matches; *what and *value say which (for the
 * evidence reason): the job, the step, then the workflow. */
static bool
cl_name_context(const struct cl_rule *r, const struct hl_classify_input *in, const char **what,
                const char **value)
{
	if (cl_list_glob(&r->job, in->job_name)) {
		*what = "job name";
		*value = in->job_name;
	} else if (cl_list_glob(&r->step, in->failed_step)) {
		*what = "step name";
		*value = in->failed_step;
	} else if (cl_list_glob(&r->workflow, in->workflow_name)) {
		*what = "workflow name";
		*value = in->workflow_name;
	} else {
		return false;
	}
	return true;
}

size_t
cl_score(struct cl_cand *cands, const struct hl_classifier *c, const struct hl_classify_input *in,
         const struct cl_scan *sc, size_t total_lines)
{
	/* Changed-file shares per rule use this denominator. */
	double share_den = in->n_changed > 0 ? (double)in->n_changed : 1.0;
	size_t n_cands = 0;

	for (size_t ri = 0; ri < c->n_rules; ri++) {
		const struct cl_rule *r = &c->rules[ri];
		struct cl_cand cd;
		bool ctx = false;

		memset(&cd, 0, sizeof(cd));
		cd.rule = ri;
		if (r->events.n && !cl_list_has(&r->events, in->event))
			continue;
		if (r->argocd.n) {
			if (cl_list_has(&r->argocd, in->argocd_sync)) {
				cd.ctx_what = "ArgoCD sync status";
				cd.ctx_value = in->argocd_sync;
			} else if (cl_list_has(&r->argocd, in->argocd_health)) {
				cd.ctx_what = "ArgoCD health";
				cd.ctx_value = in->argocd_health;
			} else {
				continue;
			}
		}
		if (r->workflow.n || r->job.n || r->step.n) {
			const char *what = NULL, *value = NULL;
			ctx = cl_name_context(r, in, &what, &value);
			if (ctx && cd.ctx_what == NULL) {
				cd.ctx_what = what;
				cd.ctx_value = value;
			}
		}
		if (r->require_context && !ctx)
			continue;
		for (size_t k = r->pat_first; k < r->pat_first + r->n_pat; k++) {
			if (sc->count[k] == 0)
				continue;
			cd.matches += sc->count[k];
			if (cd.ev_line == 0) {
				cd.ev_line = sc->first[k];
				cd.ev_raw = sc->first_raw[k];
			}
			if (sc->line[k] > cd.line)
				cd.line = sc->line[k];
		}
		if (r->n_pat > 0 && cd.matches == 0)
			continue;
		/* the line to quote: the first match of the first quote pattern
		 * that matched, else of the first rule pattern that matched */
		for (size_t k = r->quote_first; k < r->quote_first + r->n_quote; k++) {
			if (sc->count[k] > 0) {
				cd.ev_line = sc->first[k];
				cd.ev_raw = sc->first_raw[k];
				break;
			}
		}
		if (r->files.n > 0) {
			for (size_t f = 0; f < in->n_changed; f++)
				if (in->changed_files[f] != NULL &&
				    cl_glob_any((const char *const *)r->files.v,
				                in->changed_files[f]))
					cd.files_hit++;
			cd.files = c->files_bonus * (double)cd.files_hit / share_den;
		}
		if (r->n_pat == 0 && r->events.n == 0 && r->argocd.n == 0 && !ctx && cd.files <= 0)
			continue;
		if (r->events.n && cd.ctx_what == NULL) {
			cd.ctx_what = "event";
			cd.ctx_value = in->event;
		}
		cd.context = ctx ? c->context_bonus : 0;
		if (cd.line > 0 && total_lines > 0)
			cd.recency = c->recency_bonus * (double)cd.line / (double)total_lines;
		if (cd.matches > 0)
			cd.evidence = HL_CLASSIFY_EVIDENCE_LOG;
		else if (r->events.n && r->type->domain != HL_CATALOG_DOMAIN_CI)
			cd.evidence = HL_CLASSIFY_EVIDENCE_EVENT;
		else
			cd.evidence = HL_CLASSIFY_EVIDENCE_CONTEXT;
		if (cd.evidence == HL_CLASSIFY_EVIDENCE_CONTEXT) {
			cd.score = r->priority + cd.context + cd.files;
		} else {
			cd.score = r->priority + cd.recency;
			cd.tiebreak = cd.context + cd.files;
		}
		cd.why = r->events.n   ? "event type"
		         : r->argocd.n ? "argocd status"
		         : r->n_pat    ? "log pattern"
		         : ctx         ? "workflow/job/step name"
		                       : "changed files";
		cands[n_cands++] = cd;
	}
	qsort(cands, n_cands, sizeof(*cands), cl_cand_cmp);
	return n_cands;
}
