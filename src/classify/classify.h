/*
 * classify.h - failure classification and routing (contract section 5).
 *
 * A classifier is compiled once from a rules file (YAML, rules/default.yaml
 * is built into the binary) into one Vectorscan database holding every log
 * pattern of every rule. Classifying a case preprocesses the log the way CI
 * tools do (GitHub Actions timestamps, ANSI escapes, ##[group] markers and
 * the CI systems' "the step exited with code N" boilerplate are removed;
 * line numbers are kept), scans it once and ranks every rule that fired:
 *
 *  1. by its evidence: the event itself for a security alert, then a log
 *     line, then context only (workflow/job/step names, changed files,
 *     ArgoCD status, a CI event type). Log evidence decides: a rule that
 *     fired on context alone wins only when no log rule fired;
 *  2. within log (or event) evidence by priority + recency (the position of
 *     the rule's last match in the log); within context by priority + the
 *     name and changed-file bonuses;
 *  3. a tie (equal evidence) goes to the rule whose name and file context
 *     also agrees, then to the later evidence, then to file order.
 *
 * The verdict routes the winner's failure type through the catalogue
 * (src/catalog) and carries a confidence and its evidence line; with no
 * evidence at all it is the catalogue's default (Atlas/general).
 *
 * Thread-safety: a struct hl_classifier is immutable after hl_classifier_new
 * except for its scratch pool, which is locked; any number of threads may call
 * hl_classify on one classifier concurrently.
 */
#ifndef HL_CLASSIFY_CLASSIFY_H
#define HL_CLASSIFY_CLASSIFY_H

#include "base/buf.h"
#include "base/err.h"

#include <stdbool.h>
#include <stddef.h>

struct hl_classifier;
struct hl_catalog_type;

/* What is known about one failure. Every field may be NULL/0 (absent). The
 * log need not be NUL-terminated and may hold any bytes. */
struct hl_classify_input {
	const char *event; /* "workflow_job", "dependabot_alert", ... */
	const char *workflow_name;
	const char *job_name;
	const char *failed_step;
	const char *log;
	size_t log_len;
	const char *const *changed_files;
	size_t n_changed;
	const char *argocd_sync;   /* "OutOfSync", "Synced", ... */
	const char *argocd_health; /* "Healthy", "Degraded", "Missing", ... */
};

#define HL_CLASSIFY_MAX_CANDIDATES 8

/* What made a rule fire, strongest first in rank (a higher value ranks
 * higher). */
enum hl_classify_evidence {
	HL_CLASSIFY_EVIDENCE_NONE,    /* nothing fired: the default verdict */
	HL_CLASSIFY_EVIDENCE_CONTEXT, /* names, changed files, ArgoCD, CI event type */
	HL_CLASSIFY_EVIDENCE_LOG,     /* a line of the log */
	HL_CLASSIFY_EVIDENCE_EVENT,   /* the event is the failure (a security alert) */
};

/* "none", "context", "log", "event". */
const char *hl_classify_evidence_name(enum hl_classify_evidence e);

/* One rule that fired, with the parts of its score (for --explain). */
struct hl_classify_candidate {
	char *rule;               /* malloc'd rule name */
	const char *failure_type; /* static */
	const char *agent;        /* static */
	enum hl_classify_evidence evidence;
	double score;       /* rank within its evidence: log and event evidence
	                       priority + recency; context priority + context + files */
	double tiebreak;    /* log and event evidence: context + files (ties only) */
	double priority;    /* the rule's priority */
	double recency;     /* bonus for evidence late in the log */
	double context;     /* bonus for matching workflow/job/step globs */
	double files;       /* bonus for the share of matching changed files */
	size_t matches;     /* number of log matches of the rule */
	size_t line_number; /* 1-based line of the last match, 0 if none */
	char *line;         /* malloc'd text of that line ("" if none) */
	const char *why;    /* static: what made the rule fire */
};

/*
 * Confidence, 0-1: how strong and unambiguous the evidence is.
 *   strength   event (a security alert) 0.95; a log line
 *              0.35 + 0.6 x min(priority, 100) / 100 (a tool's own error
 *              about 0.8, a wrapper's "step failed" about 0.55, a hint about
 *              0.4); context only 0.15 + score / 100, at most 0.4; nothing 0.1;
 *   agreement  against the best candidate of another agent: none, 1; with
 *              the same kind of evidence 0.5 + 0.5 x min(margin, 20) / 20 (a
 *              tie halves it); with weaker evidence 0.9 (it disagrees but
 *              cannot win); a log winner whose own name or file globs also
 *              match adds 0.05.
 * confidence = min(strength x agreement (+ 0.05), 0.99), to 2 decimals.
 */
#define HL_CLASSIFY_CONFIDENCE_NONE 0.1

/* The decision. Strings marked static live for the program; the others are
 * malloc'd and freed by hl_verdict_release. */
struct hl_verdict {
	const struct hl_catalog_type *type; /* static: the catalogue's failure type */
	const char *agent;                  /* static: "rex" "blaze" "bolt" "cipher" "atlas" */
	const char *failure_type;           /* static: contract section 5 name */
	const char *category;               /* static: "rust" ... "general" */
	const char *fix_approach;           /* static: one sentence for the agent prompt */
	char *rule;                         /* malloc'd winning rule name, "default" if none */
	enum hl_classify_evidence evidence; /* what the winner fired on */
	double confidence;                  /* 0-1, see above */
	/* The line a human would quote: the winner's first match of its first
	 * matching quote pattern, else of its first matching pattern (of errors
	 * that repeat, the first is the cause); without log evidence, the last
	 * error-looking line
	 * (error, Error:, FAILED, fatal, a non-zero exit) if any. 1-based in
	 * the ORIGINAL log; 0 and "" when there is none. */
	size_t evidence_line_number;
	char *evidence_line; /* malloc'd, cleaned and clipped */
	/* malloc'd; NULL when a log line supports the verdict, else why not and
	 * how it was routed: "no_log" (no log), "no_matching_line" (no rule's
	 * pattern matched) or "alert_event" (the alert event is the failure),
	 * then ": " and the route ("routed by job name 'lint'", "routed by
	 * event 'dependabot_alert'", "no rule fired") */
	char *evidence_reason;
	size_t log_lines;    /* lines in the log */
	size_t n_candidates; /* ranked, best first; [0] is the winner */
	struct hl_classify_candidate candidates[HL_CLASSIFY_MAX_CANDIDATES];
};

/*
 * Compiles the rules in the YAML file at path, or the built-in rules when path
 * is NULL. On failure err reads "FILE:LINE:COL: rule 'name': reason" (contract
 * of `healer check-rules`) and *out is untouched.
 */
int hl_classifier_new(struct hl_classifier **out, const char *path, struct hl_err *err);

/* Same from YAML text in memory; name is used in error messages. */
int hl_classifier_new_from_text(struct hl_classifier **out, const char *text, size_t n,
                                const char *name, struct hl_err *err);

/* Frees the classifier; NULL is a no-op. No hl_classify call may be running. */
void hl_classifier_free(struct hl_classifier *c);

/* Prepares now what the classifier would otherwise prepare at first use:
 * the JIT-compiled PCRE2 code that confirms the matches of each pattern
 * with a repeat (classify/verify.c). For a long-lived classifier (the
 * server's), so its memory is taken at start, not while it serves; call
 * before its first classification. */
void hl_classifier_warm(struct hl_classifier *c);

size_t hl_classifier_rule_count(const struct hl_classifier *c);

/* The log patterns of all rules, one regex each, in a dialect that both
 * Vectorscan and ripgrep (`rg -f`) accept (caseless rules get a "(?i)"
 * prefix). Index < hl_classifier_pattern_count(). Borrowed. */
size_t hl_classifier_pattern_count(const struct hl_classifier *c);
const char *hl_classifier_pattern(const struct hl_classifier *c, size_t i);

/* How many distinct patterns are scanned in two steps: by literals of
 * their own, then whole on the lines where one matched. */
size_t hl_classifier_gated_count(const struct hl_classifier *c);

/* The built-in rules YAML (rules/default.yaml at build time). */
extern const char hl_classify_default_rules[];
extern const size_t hl_classify_default_rules_len;

/* The built-in rules' Vectorscan databases, serialized at build time by
 * gen_db.c (len 0 when unavailable), their number of patterns, and the
 * match ids of the ngated gated ones. Used only if they
 * deserialize on this CPU; otherwise the patterns are compiled. */
extern const unsigned char hl_classify_default_db[];
extern const size_t hl_classify_default_db_len;
extern const size_t hl_classify_default_db_npat;
extern const size_t hl_classify_default_db_ngated;
extern const unsigned hl_classify_default_db_gated[];

/* Serializes the classifier's pattern databases (for gen_db.c): the main
 * database's length as 8 bytes little-endian, it, then the gated patterns'
 * database (if any). *out is malloc'd; the caller frees it. */
int hl_classifier_serialize(char **out, size_t *len, const struct hl_classifier *c,
                            struct hl_err *err);

/*
 * Classifies one case. Always produces a verdict for valid input (Atlas/
 * general when nothing fired). Fails only on allocation failure or a
 * Vectorscan error. Thread-safe; see the file comment. *out is written only
 * on success and must be released with hl_verdict_release.
 */
int hl_classify(struct hl_verdict *out, struct hl_classifier *c, const struct hl_classify_input *in,
                struct hl_err *err);

/*
 * The same for a log in a regular file: its first size bytes are read from
 * fd with pread(2) (the file offset is not used or moved) through a small
 * window, one per scanning thread, instead of being mapped or loaded whole;
 * in->log is ignored. Faster than mapping a big log (no page-table work) and
 * uses a fixed amount of memory. Also fails (HL_EIO) if reading fails. A
 * file that shrinks meanwhile is classified up to its new end.
 */
int hl_classify_fd(struct hl_verdict *out, struct hl_classifier *c,
                   const struct hl_classify_input *in, int fd, size_t size, struct hl_err *err);

/* Frees the malloc'd parts of a verdict and zeroes it. */
void hl_verdict_release(struct hl_verdict *v);

/* Appends a readable account to out (several lines, ending in a newline):
 * the verdict with its confidence and evidence, the competing agents (the
 * best candidate of each with its score parts), every candidate, and why the
 * winner won. */
int hl_verdict_explain(struct hl_buf *out, const struct hl_verdict *v);

/* Shorthands over the catalogue (src/catalog/catalog.h): the agent of a
 * category ("rust" -> "rex", the default agent for an unknown one), the
 * category and the fix-approach sentence of a failure type (NULL for an
 * unknown name). */
const char *hl_classify_category_agent(const char *category);
const char *hl_classify_type_category(const char *failure_type);
const char *hl_classify_type_fix_approach(const char *failure_type);

/*
 * The agent of the best candidate whose agent differs from the winner's (the
 * retry loop's next agent after the same agent failed twice); NULL when no
 * other agent's rule fired, and always NULL when the winner's category stays
 * with its agent (catalogue: security stays with Cipher). Static string.
 */
const char *hl_verdict_runner_up_agent(const struct hl_verdict *v);

/*
 * The agent to try after current_agent failed when the verdict offers no
 * runner-up (the original's try_different_agent, improved): the agent of
 * category when the catalogue keeps that category with its agent (security
 * -> cipher); otherwise the specialist whose category's files make up the
 * largest share of the changed files, other than the current agent (Rust ->
 * rex, frontend -> blaze, infrastructure -> bolt, by the catalogue's file
 * globs); the default agent (Atlas) when no other specialist's files
 * changed. category may be NULL. Returns a static string.
 */
const char *hl_classify_alternate_agent(const char *current_agent, const char *category,
                                        const char *const *changed_files, size_t n_changed);

/* The file class of a path: the first category of the catalogue whose file
 * globs match it ("rust", "frontend", "infrastructure", "github"), or NULL. */
const char *hl_classify_file_class(const char *path);

#endif
