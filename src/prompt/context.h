/*
 * context.h - healer's internal context for one remediation prompt: the seam
 * between the dispatch layer (which gathers it) and the prompt layer (which
 * turns it into template data with hl_prompt_data_build and renders it).
 *
 * Ownership: every pointer is BORROWED; the caller keeps the strings, arrays
 * and json_t values alive until the build/render call returns. Absent strings
 * are NULL, absent numbers 0, absent sources NULL. Zero-initialize the
 * struct (`struct hl_prompt_context ctx = { 0 };`) and set what is known.
 *
 * The structured optional sources are json_t objects whose known keys are
 * copied (unknown keys are ignored, missing ones become null), so their shape
 * is documented once, in docs/PROMPT_DATA.md:
 *   argocd      {app, sync, health, message,
 *                unhealthy_resources: [{kind, name, namespace, status, message}]}
 *   kubernetes  {pods: [{name, namespace, phase, reason, restarts, message}],
 *                events: [{type, reason, object, message, count}]}
 *   loki        {query, lines: ["..."], note}
 *   prometheus  {summary, alerts: [{name, severity, state, summary}]}
 *   history     {similar_failures: [{id, summary, score, resolution}],
 *                known_solutions: [{id, summary, score}]}
 */
#ifndef HL_PROMPT_CONTEXT_H
#define HL_PROMPT_CONTEXT_H

#include "event/event.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* A file changed by the pull request. */
struct hl_prompt_file {
	const char *filename;
	const char *status; /* added, modified, removed, renamed */
	int64_t additions, deletions;
};

/* A previous remediation attempt. */
struct hl_prompt_attempt {
	int64_t number;             /* 1-based */
	const char *agent;          /* rex, blaze, ... */
	const char *outcome;        /* failed, timeout, no_change, ... */
	const char *summary;        /* what the agent tried (its PR description, commits) */
	const char *coderun;        /* the CodeRun name */
	const char *status_message; /* the CodeRun's status.message */
	const char *pr_url;         /* the PR the attempt opened or pushed to */
};

/* A context source that could not be fetched: it is named in the prompt. */
struct hl_prompt_missing {
	const char *name;   /* "loki", "argocd", "github_logs", ... */
	const char *reason; /* "timeout after 5s", "HTTP 502", ... */
};

struct hl_prompt_context {
	/* The normalized GitHub event (NULL for alert prompts). */
	const struct hl_event *event;

	/* The classification verdict (contract section 5). */
	const char *agent;            /* rex blaze bolt cipher atlas */
	const char *failure_type;     /* rust_clippy, ... */
	const char *category;         /* rust frontend infrastructure security github general */
	const char *rule;             /* the rule that matched */
	const char *fix_approach;     /* a suggested approach, from the rule */
	int64_t evidence_line_number; /* 1-based line in log, 0 when none */
	const char *evidence_line;
	const char *evidence_reason; /* why there is no evidence line, or NULL */
	double confidence;           /* 0-1; negative: not known */

	/* The failed job's log (untrusted; fenced and cut in the prompt).
	 * log_len 0 means strlen(log). */
	const char *log;
	size_t log_len;

	/* The pull request, when known (pr_number > 0). */
	int64_t pr_number;
	const char *pr_title, *pr_url, *pr_head_ref, *pr_base_ref, *pr_body, *pr_author;
	const struct hl_prompt_file *files;
	size_t n_files;
	int64_t n_files_total; /* files changed in all; 0: n_files, the whole list;
	                          -1: more than n_files, not counted */

	/* Optional structured sources (see above). */
	const json_t *argocd, *kubernetes, *loki, *prometheus, *history;

	/* Attempts: attempt is this attempt's number (1 = first). */
	int64_t attempt, max_attempts;
	const struct hl_prompt_attempt *attempts; /* the previous ones */
	size_t n_attempts;
	const char *failure_output; /* why the last attempt failed */
	const json_t *commits;      /* pushed since the failing commit: [{sha, message, author}] */
	const char *ci_status;      /* the current CI status, one line or a log */

	/* Sources that failed or timed out. */
	const struct hl_prompt_missing *missing;
	size_t n_missing;

	/* Where the fix goes: the PR head branch or the failed branch. */
	const char *target_branch;

	/* Alert fields (the A7 pod-failure flow). */
	const char *alert_id; /* "A7" */
	const char *pod_name, *namespace, *task_id;
	const char *pod_phase, *container, *alert_reason, *alert_message;
};

#endif
