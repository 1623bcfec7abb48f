/*
 * memory.h - what healer remembers of finished tasks (contract section 10),
 * and the aggregates the insights are computed from.
 *
 * A memory is one record per finished task (keyed by its task id; a later
 * outcome of the task replaces the earlier one's): where it failed, the failure type and evidence
 * line, the agents of its attempts with their outcomes, the time to fix and the fix (PR URL, commit
 * messages) or the escalation's summary, and a weight that grows each time the memory helps a later
 * success. Similar failures are found by full-text search (SQLite FTS5 ranked by BM25; PostgreSQL
 * tsvector/GIN ranked by ts_rank), restricted to the failure type, the same repository first.
 *
 * The agent records and the insights rows are read from the ledger itself
 * (tasks, attempts, deliveries), so they need no memory record and are the
 * same whatever memory backend is configured.
 */
#ifndef HL_STORE_MEMORY_H
#define HL_STORE_MEMORY_H

#include "store/store.h"

/* A memory as written by hl_store_memory_put (NULL strings: absent). */
struct hl_memory_in {
	const char *task_id;    /* required */
	const char *repository; /* required */
	const char *workflow, *job, *failure_type;
	const char *event;         /* "first_attempt_success", "retry_success",
	                              "routing_mismatch", "escalation", ... (required) */
	const char *outcome;       /* the task's final state: "succeeded", "escalated" (required) */
	const char *evidence;      /* the classification's evidence line */
	const char *first_agent;   /* the agent of the first attempt */
	const char *fixed_by;      /* the agent whose attempt succeeded, or NULL */
	const char *attempts_json; /* [{n, agent, outcome, reason}] (required) */
	int n_attempts;
	int64_t time_to_fix_ms; /* first failure to verified success; 0: not fixed */
	const char *pr_url;     /* the fix's PR */
	const char *commits;    /* the fix's commit messages, one a line */
	const char *summary;    /* the solution or the escalation, one paragraph */
	int64_t created_ms;     /* 0: now */
};

/* A memory as read back; strings owned (NULL when absent). */
struct hl_memory_hit {
	int64_t id;
	char *task_id, *repository, *workflow, *job, *failure_type, *event, *outcome;
	char *evidence, *first_agent, *fixed_by, *attempts_json, *pr_url, *commits, *summary;
	int n_attempts;
	int64_t time_to_fix_ms, created_ms;
	double weight;
	double score; /* relevance: the text rank times the weight (higher is closer) */
};

/* What hl_store_memory_similar looks for. */
struct hl_memory_query {
	const char *repository;   /* its memories come first (may be NULL) */
	const char *failure_type; /* required: only memories of this type */
	const char *text;         /* free text (the evidence line, the job...); its
	                             words are searched, any of them; NULL or no word:
	                             the type's memories by weight and recency */
	const char *exclude_task; /* never this task (may be NULL) */
	size_t k;                 /* at most this many (1..50) */
};

/* Stores a memory. A second one for the same task with the same outcome is
 * ignored; with another outcome (escalated, then fixed after /healer retry)
 * it replaces the first's event, outcome, agents, attempts, time to fix, PR,
 * commits and summary (on SQLite the search index keeps the first text).
 * *created (which may be NULL) is true when the memory was stored or
 * changed. */
int hl_store_memory_put(struct hl_store *s, bool *created, const struct hl_memory_in *m,
                        struct hl_err *err) HL_MUST_CHECK;

/* The memories closest to q: the repository's first, then the others, each
 * by relevance; *out is an array of *n hits (free with
 * hl_memory_hits_free). */
int hl_store_memory_similar(struct hl_store *s, struct hl_memory_hit **out, size_t *n,
                            const struct hl_memory_query *q, struct hl_err *err) HL_MUST_CHECK;
void hl_memory_hits_free(struct hl_memory_hit *h, size_t n);

/* Adds boost to the weight of memory id (a memory that led to a success);
 * -HL_ENOTFOUND when there is no such memory. */
int hl_store_memory_reinforce(struct hl_store *s, int64_t id, double boost, struct hl_err *err);

/* Memories stored (all time). */
int hl_store_memory_count(struct hl_store *s, int64_t *out, struct hl_err *err);

/* One agent's finished attempts for a repository + failure type. */
struct hl_agent_record {
	char agent[16];
	int64_t finished;  /* attempts judged success, ci_still_failing, agent_failed or timeout */
	int64_t succeeded; /* of which success */
};

#define HL_AGENT_RECORDS_MAX 16

/* Every agent's record for repository + failure_type (agent attempts only;
 * stopped and re-runs do not count), ordered by agent name; *n gets how
 * many (at most max). */
int hl_store_agent_records(struct hl_store *s, struct hl_agent_record *out, size_t max, size_t *n,
                           const char *repository, const char *failure_type,
                           struct hl_err *err) HL_MUST_CHECK;

/* One attempt of a task as the insights read it (the task's fields repeat
 * on each of its attempts; n is 0 for a task without attempts). Strings are
 * borrowed for the duration of the callback; "" when absent. */
struct hl_insight_row {
	const char *task_id, *repository, *failure_type, *state, *kind;
	int64_t created_ms, finished_ms; /* finished_ms 0 while open */
	int n;                           /* the attempt's number, 0: none */
	const char *attempt_kind;        /* "agent" or "rerun" */
	const char *agent, *outcome;     /* outcome "" while unfinished */
	int64_t attempt_finished_ms;
};

/* Which tasks the insights look at: created at or after since_ms (0: all),
 * of repository (NULL: all). */
struct hl_insight_filter {
	int64_t since_ms;
	const char *repository;
};

/* Calls fn for every attempt of every task matching f that was remediated
 * (not skipped), ordered by task id then attempt number; a task without an
 * attempt once with n 0. */
int hl_store_insight_rows(struct hl_store *s, const struct hl_insight_filter *f,
                          void (*fn)(void *arg, const struct hl_insight_row *r), void *arg,
                          struct hl_err *err) HL_MUST_CHECK;

/* Deliveries received under f (by received time and, with a repository,
 * those whose task is of it): *deliveries of them, *duplicates answered
 * duplicate, *existing remediations found already running (a second
 * delivery of the same failure), and *leaked failures (repository + run +
 * job) remediated by more than one task, counted once per extra task. */
struct hl_insight_dedup {
	int64_t deliveries, duplicates, existing, leaked;
};
int hl_store_insight_dedup(struct hl_store *s, struct hl_insight_dedup *out,
                           const struct hl_insight_filter *f, struct hl_err *err) HL_MUST_CHECK;

/*
 * Learned routing (contract section 10): when rule_agent has at least
 * HL_LEARNED_MIN_FAILING finished attempts in rec with a success rate below
 * HL_LEARNED_FAILING_PCT percent, and another agent has at least
 * HL_LEARNED_MIN_GOOD finished attempts at HL_LEARNED_GOOD_PCT percent or
 * better (compared in integers),
 * returns that agent's record (the best rate, then the most successes, then
 * the name: deterministic for the same records) and writes the evidence
 * ("learned: rex 0/6 on rust_clippy in acme/platform, atlas 3/3") into why
 * (why_size bytes); otherwise NULL. Agents listed in never (a
 * NULL-terminated list, may be NULL) are never chosen. Pure.
 */
#define HL_LEARNED_MIN_FAILING 5
#define HL_LEARNED_FAILING_PCT 30
#define HL_LEARNED_MIN_GOOD    3
#define HL_LEARNED_GOOD_PCT    60
const struct hl_agent_record *
hl_memory_learned_choice(const struct hl_agent_record *rec, size_t n, const char *rule_agent,
                         const char *failure_type, const char *repository, const char *const *never,
                         char *why, size_t why_size);

#endif
