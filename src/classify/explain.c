/*
 * explain.c - a readable account of a verdict for `healer classify
 * --explain`: the verdict, its evidence, every candidate with the parts of
 * its score, and why the winner beat the best rule for another agent.
 */
#include "classify/classify_int.h"

#include <string.h>

int
hl_verdict_explain(struct hl_buf *out, const struct hl_verdict *v)
{
	hl_buf_appendf(out, "verdict: agent=%s failure_type=%s category=%s rule=%s\n", v->agent,
	               v->failure_type, v->category, v->rule);
	if (v->evidence_line_number > 0)
		hl_buf_appendf(out, "evidence: line %zu of %zu: %s\n", v->evidence_line_number,
		               v->log_lines, v->evidence_line);
	else
		hl_buf_appendf(out, "evidence: none in the log (%zu lines)\n", v->log_lines);
	if (v->n_candidates == 0) {
		hl_buf_append_str(out, "candidates: none; no rule fired, so the default "
		                       "(atlas/general) applies\n");
		return hl_buf_error(out);
	}
	hl_buf_append_str(out, "candidates (best first; score = priority + recency + context "
	                       "+ files):\n");
	for (size_t i = 0; i < v->n_candidates; i++) {
		const struct hl_classify_candidate *c = &v->candidates[i];
		hl_buf_appendf(out,
		               "  %zu. %-28s %-22s -> %-6s score %6.2f = %g + %.2f + %.2f + %.2f"
		               " (%s",
		               i + 1, c->rule, c->failure_type, c->agent, c->score, c->priority,
		               c->recency, c->context, c->files, c->why);
		if (c->matches > 0)
			hl_buf_appendf(out, ", %zu match%s", c->matches,
			               c->matches == 1 ? "" : "es");
		hl_buf_append_str(out, ")\n");
		if (c->line_number > 0)
			hl_buf_appendf(out, "       line %zu: %s\n", c->line_number, c->line);
	}
	const struct hl_classify_candidate *w = &v->candidates[0];
	size_t k = 1;
	while (k < v->n_candidates && strcmp(v->candidates[k].agent, w->agent) == 0)
		k++;
	if (k < v->n_candidates)
		hl_buf_appendf(out,
		               "why: '%s' (%s) beat the best rule for another agent, '%s' (%s -> "
		               "%s), by %.2f points\n",
		               w->rule, w->why, v->candidates[k].rule,
		               v->candidates[k].failure_type, v->candidates[k].agent,
		               w->score - v->candidates[k].score);
	else
		hl_buf_appendf(out, "why: only rules for %s fired; '%s' scored highest\n", w->agent,
		               w->rule);
	return hl_buf_error(out);
}
