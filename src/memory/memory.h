/*
 * memory.h - what healer learns from every finished task (contract
 * section 10): the record of a finished task (the design's memory events),
 * what is read back before routing and rendering (similar past failures,
 * known solutions, each agent's record), and the OpenMemory client.
 *
 * Two backends. Embedded (always written): the store's memories
 * (store/memory.h), searched by full text. OpenMemory when OPENMEMORY_URL
 * is set: its real API (POST /memory/add, /memory/query with k,
 * /memory/reinforce; the x-api-key header; one key is one tenant, so no
 * user_id is ever sent; identical content is merged, so every record names
 * its task). Reads go to the configured backend; agent records always come
 * from the ledger. A memory that is down or slow costs a log line and an
 * empty prompt section, never a remediation: every function here reports
 * errors and never blocks beyond the timeout it is given.
 *
 * All functions are reentrant; none keeps state.
 */
#ifndef HL_MEMORY_MEMORY_H
#define HL_MEMORY_MEMORY_H

#include "base/err.h"
#include "config/config.h"
#include "notify/notify.h"
#include "store/store.h"

#include <jansson.h>

#define HL_MEMORY_K 5 /* memories read for one remediation */
/* OpenMemory's matches asked for (its k: 1 to 200): it answers whatever
 * shares words with the query, other jobs' and other failure types'
 * records and notes that are not healer's among them, which
 * hl_memory_history_from_matches leaves out; of the rest it keeps
 * HL_MEMORY_K. */
#define HL_MEMORY_OM_QUERY_K 50

/* A finished task as memory records it; the strings are owned. */
struct hl_memory_note {
	struct hl_memory_in in; /* points into the fields below and the task */
	char *attempts_json, *summary, *evidence, *commits, *pr_url;
	char first_agent[16], fixed_by[16];
	char event[32];
};

/*
 * The note of a finished task t (succeeded or escalated; -HL_EINVAL
 * otherwise): the event (first_attempt_success, retry_success,
 * routing_mismatch: the first agent failed and another fixed it,
 * escalation), the agents and outcomes of its attempts, the time to fix,
 * the fix's PR and commits (commit messages, may be NULL) or why the agents
 * failed. t must outlive the note. HL_ENOMEM, HL_EINVAL.
 */
int hl_memory_note_build(struct hl_memory_note *out, const struct hl_task_record *t,
                         const char *commits, struct hl_err *err);
void hl_memory_note_release(struct hl_memory_note *n);

/* The ids (strings) of the memories a task's decision says were shown to
 * its first attempt: a new array (empty when none). */
json_t *hl_memory_decision_ids(const char *decision_json);

/*
 * True when a memory of other's may reach a prompt for repository under
 * scope: the same repository, the same owner (an organization's
 * repositories, compared as GitHub does, ignoring case), or any. A memory
 * holds its failure's evidence line and PR: a private repository's must not
 * reach an agent working elsewhere, whose PRs may be public.
 */
bool hl_memory_in_scope(enum hl_memory_scope scope, const char *repository, const char *other);

/*
 * Reads the embedded memory for a failure: {similar_failures: [{id,
 * summary, score, resolution}], known_solutions: [{id, summary, score}]}
 * (the prompt data's history, docs/PROMPT_DATA.md) of the k memories of
 * failure_type closest to text within scope, the repository's first,
 * excluding exclude_task. *ids gets the ids shown (strings). New
 * references.
 */
int hl_memory_recall(json_t **history, json_t **ids, struct hl_store *s, const char *repository,
                     enum hl_memory_scope scope, const char *failure_type, const char *text,
                     const char *exclude_task, struct hl_err *err);

/* The same history from OpenMemory's matches ([{id, content, score}],
 * best first), which share words with the query: only the records healer
 * wrote (hl_memory_om_add_payload) of failure_type, never exclude_task's
 * own, within scope, at most HL_MEMORY_K of them, the repository's first,
 * then the best of the others, each kept as a recalled memory is (what
 * failed as summary, how it was resolved as resolution: one line, at most
 * 16 KiB, no URL credentials); those whose head says the task succeeded are
 * known solutions too (their resolution; never decided by the text after
 * the head, which quotes the failure's log). Records of older healers
 * (evidence before the resolution) are read too. *ids gets the ids
 * OpenMemory gave (an empty id is left out). New references. */
json_t *hl_memory_history_from_matches(const json_t *matches, const char *repository,
                                       enum hl_memory_scope scope, const char *failure_type,
                                       const char *exclude_task, json_t **ids);

/* Each agent's record as the prompt shows it: [{agent, finished,
 * succeeded}]. */
json_t *hl_memory_agent_records_json(const struct hl_agent_record *rec, size_t n);

/* ---- OpenMemory ---------------------------------------------------------- */

/*
 * The outbox payload of a note for OpenMemory (JSON text, caller frees):
 * {"path":"/memory/add","body":{content, tags, metadata}}; the content
 * names the task, so two tasks never merge: "healer task <id>: <type> in
 * <repo> (workflow W, job J) <outcome>. <summary>" and, on a line of its
 * own, "Evidence: <line>.". HL_ENOMEM.
 */
int hl_memory_om_add_payload(char **out, const struct hl_memory_note *n, struct hl_err *err);
/* {"path":"/memory/reinforce","body":{"id":id,"boost":boost}}. */
int hl_memory_om_reinforce_payload(char **out, const char *id, double boost, struct hl_err *err);

/*
 * Sends an outbox payload to cfg's OpenMemory within timeout_ms and
 * classifies the answer: 2xx delivered (a merged duplicate says so in the
 * message); 429 retry after its retry_after (or Retry-After); 5xx
 * (query_failed), timeouts and connection errors retry; 401 (no key), 403
 * (wrong key, tenant_mismatch), 400 (validation) and 404 (reinforce of an
 * unknown memory) are permanent. Messages never hold the key. Returns 0
 * with *out set, or HL_ENOMEM.
 */
int hl_memory_om_send(struct hl_notify_result *out, const struct hl_config *cfg,
                      const char *payload, int64_t timeout_ms, struct hl_err *err);

/* The query body for /memory/query: {"query": text, "k": k}. HL_ENOMEM. */
int hl_memory_om_query_body(char **out, const char *text, int k, struct hl_err *err);

/* Room for the x-api-key header line: keys up to about 4 KiB go whole. */
#define HL_MEMORY_OM_KEY_HEADER_MAX 4096

/* "x-api-key: <key>" into out (size bytes, HL_MEMORY_OM_KEY_HEADER_MAX);
 * false when no key is set. */
bool hl_memory_om_key_header(char *out, size_t size, const struct hl_config *cfg);

#endif
