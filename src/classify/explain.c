/*
 * explain.c - a readable account of a verdict for `healer classify
 * --explain`: the verdict with its confidence and evidence (or why no log
 * line supports it), the competing agents (the best candidate of each with
 * its score parts), every candidate, and why the winner won: on stronger
 * evidence (context never outvotes a log line), on score, or on a tie broken
 * by context.
 */
#include "classify/classify_int.h"

#include <string.h>

/* One candidate's score parts, as its evidence ranks them. */
static void
explain_parts(struct hl_buf *out, const struct hl_classify_candidate *c)
{
	if (c->evidence == HL_CLASSIFY_EVIDENCE_CONTEXT) {
		hl_buf_appendf(out, "score %.2f = priority %g + context %.2f + files %.2f",
		               c->score, c->priority, c->context, c->files);
		return;
	}
	hl_buf_appendf(out, "score %.2f = priority %g + recency %.2f", c->score, c->priority,
	               c->recency);
	if (c->tiebreak > 0)
		hl_buf_appendf(out, "; tie-break %.2f = context %.2f + files %.2f", c->tiebreak,
		               c->context, c->files);
}

static void
explain_agents(struct hl_buf *out, const struct hl_verdict *v)
{
	hl_buf_append_str(out, "agents (the best candidate of each; log evidence decides, context "
	                       "only breaks ties):\n");
	for (size_t i = 0; i < v->n_candidates; i++) {
		const struct hl_classify_candidate *c = &v->candidates[i];
		bool first = true;
		for (size_t k = 0; k < i && first; k++)
			first = strcmp(v->candidates[k].agent, c->agent) != 0;
		if (!first)
			continue;
		hl_buf_appendf(out, "  %-6s %-7s %-28s %-22s ", c->agent,
		               hl_classify_evidence_name(c->evidence), c->rule, c->failure_type);
		explain_parts(out, c);
		hl_buf_appendf(out, " (%s)\n", c->why);
	}
}

static void
explain_why(struct hl_buf *out, const struct hl_verdict *v)
{
	const struct hl_classify_candidate *w = &v->candidates[0], *r = NULL;

	for (size_t k = 1; k < v->n_candidates && r == NULL; k++)
		if (strcmp(v->candidates[k].agent, w->agent) != 0)
			r = &v->candidates[k];
	if (r == NULL) {
		hl_buf_appendf(out, "why: only rules for %s fired; '%s' scored highest\n", w->agent,
		               w->rule);
		return;
	}
	hl_buf_appendf(out,
	               "why: '%s' (%s) beat the best rule for another agent, '%s' (%s -> %s), ",
	               w->rule, w->why, r->rule, r->failure_type, r->agent);
	if (w->evidence != r->evidence) {
		if (w->evidence == HL_CLASSIFY_EVIDENCE_EVENT)
			hl_buf_append_str(out,
			                  "because the event is the failure itself (an alert)");
		else
			hl_buf_appendf(out,
			               "which fired on %s only (%s): %s never outvotes %s evidence",
			               hl_classify_evidence_name(r->evidence), r->why,
			               hl_classify_evidence_name(r->evidence),
			               hl_classify_evidence_name(w->evidence));
	} else if (w->score != r->score) {
		hl_buf_appendf(out, "by %.2f points of %s evidence", w->score - r->score,
		               hl_classify_evidence_name(w->evidence));
	} else if (w->tiebreak != r->tiebreak) {
		hl_buf_appendf(out, "on a tie broken by context (%.2f against %.2f)", w->tiebreak,
		               r->tiebreak);
	} else {
		hl_buf_appendf(out, "on a tie broken by %s",
		               w->line_number != r->line_number ? "the later evidence"
		                                                : "the order of the rules");
	}
	hl_buf_appendf(out, "; the runner-up agent is %s\n",
	               hl_verdict_runner_up_agent(v) ? hl_verdict_runner_up_agent(v)
	                                             : "none (the category stays with its agent)");
	/* the other agents whose rules fired on weaker evidence, whatever
	 * their score */
	for (size_t i = 1; i < v->n_candidates; i++) {
		const struct hl_classify_candidate *c = &v->candidates[i];
		bool first = c != r && strcmp(c->agent, w->agent) != 0;
		for (size_t k = 1; k < i && first; k++)
			first = strcmp(v->candidates[k].agent, c->agent) != 0;
		if (!first || c->evidence >= w->evidence)
			continue;
		hl_buf_appendf(out,
		               "     %s: '%s' (%s) scored %.2f on %s evidence, which never "
		               "outvotes %s evidence\n",
		               c->agent, c->rule, c->why, c->score,
		               hl_classify_evidence_name(c->evidence),
		               hl_classify_evidence_name(w->evidence));
	}
}

int
hl_verdict_explain(struct hl_buf *out, const struct hl_verdict *v)
{
	hl_buf_appendf(out,
	               "verdict: agent=%s failure_type=%s category=%s rule=%s evidence=%s "
	               "confidence=%.2f\n",
	               v->agent, v->failure_type, v->category, v->rule,
	               hl_classify_evidence_name(v->evidence), v->confidence);
	if (v->evidence_reason == NULL)
		hl_buf_appendf(out, "evidence: line %zu of %zu: %s\n", v->evidence_line_number,
		               v->log_lines, v->evidence_line);
	else if (v->evidence_line_number > 0)
		hl_buf_appendf(out, "evidence: %s; the last error-looking line is %zu of %zu: %s\n",
		               v->evidence_reason, v->evidence_line_number, v->log_lines,
		               v->evidence_line);
	else
		hl_buf_appendf(out, "evidence: %s; no error-looking line in the log (%zu lines)\n",
		               v->evidence_reason, v->log_lines);
	if (v->n_candidates == 0) {
		hl_buf_appendf(out,
		               "candidates: none; no rule fired, so the default (%s/%s) applies\n",
		               v->agent, v->failure_type);
		return hl_buf_error(out);
	}
	explain_agents(out, v);
	hl_buf_append_str(out, "candidates (best first, by evidence, score, tie-break):\n");
	for (size_t i = 0; i < v->n_candidates; i++) {
		const struct hl_classify_candidate *c = &v->candidates[i];
		hl_buf_appendf(out, "  %zu. %-28s %-22s -> %-6s %-7s ", i + 1, c->rule,
		               c->failure_type, c->agent, hl_classify_evidence_name(c->evidence));
		explain_parts(out, c);
		hl_buf_appendf(out, " (%s", c->why);
		if (c->matches > 0)
			hl_buf_appendf(out, ", %zu match%s", c->matches,
			               c->matches == 1 ? "" : "es");
		hl_buf_append_str(out, ")\n");
		if (c->line_number > 0)
			hl_buf_appendf(out, "       line %zu: %s\n", c->line_number, c->line);
	}
	explain_why(out, v);
	return hl_buf_error(out);
}
