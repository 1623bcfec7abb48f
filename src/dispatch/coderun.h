/*
 * coderun.h - building agents.platform/v1 CodeRun manifests (contract
 * section 7) for CI remediations and for pod-failure heal runs (section 8),
 * and checking them the way the API server would against the CRD in
 * deploy/crds/coderun.yaml.
 *
 * CI CodeRuns get a deterministic name derived from the dedup key (and the
 * attempt), so creating one is idempotent: a second create answers 409
 * AlreadyExists and is counted as "existing", never as a second CodeRun.
 * Heal runs (spawn-remediation) use metadata.generateName instead, because
 * a new one is allowed once the previous one for the same alert and pod has
 * finished; their duplicate check is a label-selector query.
 *
 * Every string put in a manifest is valid UTF-8 without NUL bytes (invalid
 * bytes become U+FFFD, NUL bytes are dropped), so text copied from a log
 * never fails a build.
 *
 * All functions are pure (no I/O) and thread-safe.
 */
#ifndef HL_DISPATCH_CODERUN_H
#define HL_DISPATCH_CODERUN_H

#include "base/err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a CI remediation CodeRun is built from. Strings are borrowed; NULL
 * reads as "". */
struct hl_coderun_spec {
	const char *agent;          /* rex | blaze | bolt | cipher | atlas */
	const char *failure_type;   /* contract section 5 name, e.g. "rust_clippy" */
	const char *repository;     /* owner/name */
	const char *branch;         /* the failing branch */
	const char *default_branch; /* NULL means "main" */
	const char *head_sha;
	const char *pr_head_ref;   /* head ref of the open PR for the branch, or NULL */
	const char *target_branch; /* the branch to push to; NULL derives it
	                              (hl_coderun_target_branch) */
	int64_t pr_number;         /* 0 when there is no PR (PR_NUMBER is then "") */
	int64_t workflow_run_id;
	const char *task_id;
	int attempt;           /* 1-based */
	const char *dedup_key; /* the semantic dedup key; names the CodeRun */
	const char *prompt;    /* rendered prompt -> spec.promptModification */
	const char *cli;       /* HEALER_CLI, e.g. "Factory" */
	const char *model;     /* HEALER_MODEL */
	const char *namespace; /* HEALER_NAMESPACE */
	const char *service;   /* NULL means "healer-ci" */
};

/* What a heal (pod-failure) CodeRun is built from. */
struct hl_heal_spec {
	const char *alert; /* e.g. "a7" */
	const char *task_id;
	const char *issue_file; /* path as given (rewritten for the agent pod) */
	const char *prompt;     /* the issue file's content */
	size_t prompt_len;      /* its length (0: strlen(prompt)); NUL bytes in it
	                           are dropped, not taken for its end */
	const char *target_pod; /* may be NULL */
	/* the target pod's namespace, the target-namespace label (NULL: none,
	 * as the CLI's runs made before it had one) */
	const char *target_namespace;
	/* the stem of the pod's diagnostics files in the heal workspace
	 * (HEAL_LOG_FILE; the healer/file-stem annotation); NULL: the pod's
	 * own, hl_diag_file_stem */
	const char *file_stem;
	const char *repository; /* owner/name (required) */
	const char *cli, *model, *namespace;
	/* cliConfig.settings.template, "FAMILY/NAME" (HEALER_HEAL_TEMPLATE,
	 * "heal/claude"); its NAME is the cliType. NULL: "heal/<cli>". */
	const char *template;
	const char *agent;        /* whose GitHub App the run uses; NULL: rex */
	const char *failure_type; /* the healer/failure-type label and FAILURE_TYPE, or NULL */
	/* the task's attempt (the server's heal flow), the healer/attempt
	 * label the remediation loop follows it by; 0: 1 (the CLI's run) */
	int attempt;
};

/* The GitHub App for an agent ("rex" -> "5DLabs-Rex"); NULL if unknown. */
const char *hl_coderun_github_app(const char *agent);

/* The short failure-type name used in CodeRun and branch names
 * ("rust_clippy" -> "clippy", unknown -> the type with '_' as '-'); writes at
 * most size-1 bytes, lower-case [a-z0-9-]. */
void hl_coderun_failure_short(char *out, size_t size, const char *failure_type);

/*
 * The deterministic CodeRun name for a dedup key and attempt:
 * "healer-<agent>-<short>-<hash10>" where hash10 is the first 10 hex digits
 * of SHA-256(dedup_key) (attempt > 1 hashes "dedup_key#attempt"). At most 63
 * characters, a valid DNS-1123 label. out must hold 64 bytes.
 */
void hl_coderun_name(char *out, const char *agent, const char *failure_type, const char *dedup_key,
                     int attempt);

/*
 * The branch the agent pushes to (design "Branch Strategy"): the open PR's
 * head ref when there is one; a failure on the default branch (or with no
 * branch) gets "fix/<short>-<sha8>"; otherwise the failing branch itself.
 * Returns pr_head_ref or branch as they are (a branch is never cut short:
 * a cut name would be another branch), or a fix branch written to out
 * (size >= 48 holds any).
 */
const char *hl_coderun_target_branch(char *out, size_t size, const char *branch,
                                     const char *default_branch, const char *pr_head_ref,
                                     const char *failure_type, const char *head_sha);

/*
 * Builds the CI CodeRun manifest (contract section 7): labels
 * app.kubernetes.io/name=healer, healer/agent, healer/failure-type,
 * healer/workflow-run-id, healer/branch (sanitised), healer/task-id,
 * healer/attempt; spec service, repositoryUrl/docsRepositoryUrl
 * https://github.com/{repo}, workingDirectory ".", model, githubApp,
 * promptModification, env {HEALER_TASK_ID, FAILURE_TYPE, WORKFLOW_RUN_ID,
 * PR_NUMBER ("" when there is no PR), TARGET_BRANCH, ...}, cliConfig
 * {cliType, model, settings}.
 * HL_EINVAL for an unknown agent or a missing repository. *out is new.
 */
int hl_coderun_build(json_t **out, const struct hl_coderun_spec *spec, struct hl_err *err);

/*
 * Builds the heal CodeRun for spawn-remediation and the server's heal flow:
 * generateName
 * "healer-remediation-<alert>-", labels alert-type, task-id, target-pod
 * (hl_coderun_label_id, when given), remediation=true, agents.platform/type=
 * heal-remediation, app.kubernetes.io/name=healer; spec.service "heal" and
 * the type label make the controller mount the heal-workspace PVC (seed
 * facts 1.5: heal runs always get PVC heal-workspace); the annotation
 * healer/workspace-pvc=heal-workspace records it. env HEAL_PROMPT_FILE
 * (/workspace/watch/ rewritten to /workspace/), ALERT_TYPE, TASK_ID,
 * REMEDIATION_MODE=true, HEAL_LOG_FILE, TARGET_POD, and contract section
 * 7's HEALER_TASK_ID, FAILURE_TYPE, WORKFLOW_RUN_ID, PR_NUMBER,
 * TARGET_BRANCH (empty where they do not apply) and HEALER_ATTEMPT.
 * cliConfig.settings.template is spec->template (cliType its name part),
 * githubApp the agent's (Rex by default). Every section 7 label is set
 * too: healer/agent, healer/task-id, healer/attempt (attempt, 1 when 0),
 * healer/failure-type, healer/workflow-run-id and healer/branch (empty
 * where they do not apply).
 * spec.taskId is the task id when numeric, else a 31-multiplier hash of it
 * (as the original). HL_EINVAL for an empty alert, task id or repository
 * (there is no built-in one), a template that is not FAMILY/NAME or an
 * unknown agent.
 */
int hl_coderun_build_heal(json_t **out, const struct hl_heal_spec *spec, struct hl_err *err);

/*
 * The label value that identifies a name (a target pod): the name itself
 * when it is a valid label value; else its label-safe first 52 characters
 * (hl_str_label_value), '-' and the first 10 hex digits of SHA-256(name),
 * so two names that share their first 63 characters (a pod name may have
 * 253) never select each other's CodeRuns. out must hold 64 bytes. Both
 * the label and every selector for it use this.
 */
void hl_coderun_label_id(char *out, const char *name);

/* True when s is a valid label value (<= 63 chars,
 * (([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?). */
bool hl_coderun_label_value_valid(const char *s);

/*
 * Checks a manifest as the API server would against deploy/crds/coderun.yaml:
 * apiVersion/kind, metadata.name (DNS-1123, <= 63) or generateName, label
 * keys and values, the required spec fields as non-empty strings, githubApp
 * one of the five apps, env a string map, cliConfig.cliType/model. HL_EINVAL
 * naming the first problem.
 */
int hl_coderun_validate(const json_t *manifest, struct hl_err *err);

#endif
