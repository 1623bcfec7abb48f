/*
 * prompt_build.h - turning a remediation's event, decision and gathered
 * context into the agent's prompt: fills the prompt layer's context
 * (prompt/context.h) from healer's internal structures and renders the
 * agent's template (ci/retry.hbs from the second attempt on).
 *
 * A struct hl_prompt_builder holds the compiled prompt set; it is immutable
 * and thread-safe after hl_prompt_builder_new.
 */
#ifndef HL_REMEDIATE_PROMPT_BUILD_H
#define HL_REMEDIATE_PROMPT_BUILD_H

#include "base/err.h"
#include "classify/classify.h"
#include "context.h"
#include "event/event.h"
#include "prompt/context.h"

struct hl_prompt_builder;

struct hl_prompt_inputs {
	const struct hl_event *event;
	const struct hl_verdict *verdict;
	const struct hl_context *context;
	const char *task_id;
	const char *target_branch;
	const char *agent;        /* NULL: the verdict's */
	const char *failure_type; /* NULL: the verdict's */
	int attempt;              /* 1-based */
	int max_attempts;
	const char *hint; /* a human's /healer hint (NULL: the event's) */
	/* later attempts */
	const struct hl_prompt_attempt *previous;
	size_t n_previous;
	const char *ci_status;      /* the current CI status, one line */
	const char *failure_output; /* why the previous attempt failed, when the agent's own
	                               output (the context's agent_output) could not be read */
	/* the template to render for every attempt ("ci/argocd-fix.hbs"); NULL:
	 * the agent's, and ci/retry.hbs from the second attempt on */
	const char *template;
	/* the history from memory ({similar_failures, known_solutions,
	 * agent_records}, docs/PROMPT_DATA.md), recalled within the memory
	 * scope; NULL: none */
	const json_t *history;
};

/* Loads the prompt set from dir (NULL: the built-in set). */
int hl_prompt_builder_new(struct hl_prompt_builder **out, const char *dir, struct hl_err *err);
void hl_prompt_builder_free(struct hl_prompt_builder *b);

/* Renders the prompt for in->verdict->agent (or in->template) into *out
 * (malloc'd). */
int hl_prompt_builder_render(struct hl_prompt_builder *b, char **out,
                             const struct hl_prompt_inputs *in, struct hl_err *err);

#endif
