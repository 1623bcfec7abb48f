/*
 * alerts_impl.h - shared between the files of src/alerts (private): the
 * processor, the pod diagnostics as one classifiable text, the analysis
 * document, and the helpers the heal and ArgoCD flows share.
 */
#ifndef HL_ALERTS_ALERTS_IMPL_H
#define HL_ALERTS_ALERTS_IMPL_H

#include "alerts.h"
#include "base/buf.h"
#include "classify/classify.h"
#include "diag/pod_diag.h"
#include "dispatch/dispatch.h"
#include "net/kube.h"
#include "remediate/context.h"
#include "remediate/prompt_build.h"

#include <pthread.h>

#define ALERTS_BUSY_SLOTS   64   /* pods and applications worked on at once */
#define ALERTS_LOCK_WAIT_MS 3000 /* for another replica's hold on a pod or application */

struct hl_alerts {
	const struct hl_config *cfg;
	struct hl_store *store;
	struct hl_remediator *rem;
	struct hl_kube *kube; /* NULL: no cluster configured */
	struct hl_dispatch *dispatch;
	struct hl_classifier *classifier;
	struct hl_prompt_builder *prompts;
	/* the pods and applications the workers of this process work on */
	pthread_mutex_t busy_mu;
	pthread_cond_t busy_cv;
	char busy[ALERTS_BUSY_SLOTS][520];
};

/* The alert type of pod alerts (the seed's A7, Pod Failure). */
#define ALERTS_POD_ALERT "a7"

/* ---- analysis.c ---- */

/* The pod's diagnostics files read back as one text to classify, with
 * where each file's lines are in it. */
struct alerts_text {
	struct hl_buf text;
	struct {
		enum hl_diag_file kind;
		size_t first_line; /* 1-based line of its first content line in text */
		size_t n_lines;
		size_t offset, len; /* its bytes in text */
	} part[HL_DIAG_NFILES];
	size_t n_parts;
};

void alerts_text_init(struct alerts_text *t);
void alerts_text_release(struct alerts_text *t);
/* Reads the files of paths (NULL: not written) in the order previous log,
 * current log, events, description; logs keep their last 2 MiB. Each is
 * read by its last component relative to dirfd, the heal workspace's
 * logs/ as opened (the paths only name them in the text and the log). */
int alerts_text_read(struct alerts_text *t, int dirfd, char *const paths[HL_DIAG_NFILES],
                     struct hl_err *err);
/* The part holding composite line `line` (1-based), or -1. */
int alerts_text_part_of(const struct alerts_text *t, size_t line);

/*
 * The first stack frame after (or, for Python, before) line `line` of
 * text: a Rust panic's location or the first backtrace frame outside the
 * standard library, a Go goroutine's first function and file, the first
 * "at ..." frame of Java / JavaScript, the innermost Python "File ..."
 * line. "" when none; out is at most size-1 bytes of one cleaned line,
 * valid UTF-8 (whole characters only).
 */
void alerts_first_frame(char *out, size_t size, const char *text, size_t len, size_t line);

/* Appends s as an inline code span (contract section 6), as the prompts'
 * `code` helper writes it (hl_tmpl_code: escape sequences and control
 * characters removed, invalid UTF-8 repaired, one line, a backtick run
 * longer than any inside); "` `" when nothing is left. */
void alerts_code(struct hl_buf *b, const char *s);

/* What the analysis says; every pointer borrowed, NULL when unknown. */
struct alerts_analysis {
	const char *pod, *namespace, *container, *alertname, *starts_at, *severity;
	const char *summary, *description; /* the alert's annotations (untrusted) */
	const char *task_id;
	const char *failure_type, *agent, *rule, *fix;
	double confidence;
	const char *evidence;      /* the evidence line (untrusted) */
	const char *evidence_file; /* the file it is in */
	size_t evidence_file_line; /* its line in that file, 0 when none */
	const char *excerpt;       /* that file's text (untrusted) */
	size_t excerpt_len;
	const char *frame;         /* the first stack frame, or "" */
	const json_t *pod_summary; /* hl_context_pod_summary of the pod, or NULL */
	char *const *paths;        /* HL_DIAG_NFILES paths (NULL: not written) */
	const char *logs_dir;      /* where the files are (for unwritten ones) */
	const char *stem;          /* their names' stem (NULL: the pod's) */
	const char *workspace;     /* HEALER_HEAL_WORKSPACE */
	char *const *problems;     /* what could not be fetched */
	size_t n_problems;
	const struct hl_context *ctx;      /* the workload's context, or NULL */
	const struct hl_task_record *task; /* previous attempts (retries), or NULL */
	int attempt;
};

/* Renders the analysis document (seed 004 step 3) into out. */
void alerts_analysis_render(struct hl_buf *out, const struct alerts_analysis *an);

/* ---- alerts.c ---- */

void alerts_set(char *dst, size_t size, const char *s);
/* Waits until no other worker of this process works on what kind, ns and
 * name name ("pod", "app"), then takes the store's lock of it
 * ("alerts:pod:NS/POD") across the replicas sharing the store, waiting at
 * most ALERTS_LOCK_WAIT_MS for another replica's holder: the check for an
 * active CodeRun and the creation of one are not interleaved with another
 * alert's for the same pod or application, in this process or another.
 * HL_EUPSTREAM when another replica kept it (the delivery is retried
 * later), HL_EDB when the store could not be asked; nothing is held then.
 * The store's lock dies with the process (or its database session). */
int alerts_lock(struct hl_alerts *a, const char *kind, const char *ns, const char *name,
                struct hl_err *err) HL_MUST_CHECK;
void alerts_unlock(struct hl_alerts *a, const char *kind, const char *ns, const char *name);
/* True while the lock taken by alerts_lock is still held (PostgreSQL: its
 * session lives): checked right before a CodeRun is created. */
bool alerts_lock_held(struct hl_alerts *a, const char *kind, const char *ns, const char *name);
/* The lock can still be lost between that check and the create landing (a
 * slow apiserver), and another replica then creates a CodeRun for the same
 * pod or application too. So once ours (coderun) exists the caller looks
 * again; when another task's CodeRun (other) is active, this deletes ours
 * and returns -HL_EUPSTREAM, so the delivery is retried and then finds the
 * other's. (Two creates that both see the other both withdraw; the retries,
 * under the lock, make one.) kind is "pod" or "app", as for alerts_lock. */
int alerts_withdraw_doubled(struct hl_alerts *a, const char *kind, const char *ns, const char *name,
                            const char *other, const char *coderun, const char *task_id,
                            struct hl_err *err);
/* Takes a task's lease as owner, waiting a little for a holder (the loop);
 * HL_EUPSTREAM when it stays taken. */
int alerts_lease(struct hl_alerts *a, const char *owner, const char *task_id, struct hl_err *err);
/* The name of a CodeRun of the task's attempt n that exists already (a
 * restart after creating it), into name (64 bytes); 0 found, 1 none. */
int alerts_find_coderun(struct hl_alerts *a, char *name, const char *task_id, int n,
                        struct hl_err *err);
/* The CodeRun of the task's attempt n was refused (hl_remediate_refused;
 * err says why and is consumed): the task keeps agent and type, the
 * attempt ends without an outcome and the loop escalates the task
 * (hl_remediate_record_refusal); out says "refused" and why. 0 or a store
 * error. */
int alerts_refused(struct hl_alerts *a, struct hl_alerts_outcome *out, const char *kind,
                   const char *task_id, int n, const char *agent, const char *failure_type,
                   const char *repository, const char *prompt, struct hl_err *err);
/* Whether a stored alert or notification (a task's event_json) is about
 * the same pod or application as arg. */
typedef bool (*alerts_same_fn)(const json_t *doc, const void *arg);
/* The label selectors miss a CodeRun whose labels someone edited while it
 * runs: this asks the store instead. The running tasks of kind other than
 * task_id whose stored event same() accepts, and whose CodeRun, asked for
 * by name, is still Pending/Running: the first one's CodeRun into name (64
 * bytes) and 0; 1 when there is none; <0 when the store or the API did not
 * answer. */
int alerts_active_recorded(struct hl_alerts *a, char *name, const char *kind, const char *task_id,
                           alerts_same_fn same, const void *arg, struct hl_err *err);
/* A retry (attempt n, begun by the loop) of a task whose pod or
 * application has another task's CodeRun (other) active: no second CodeRun
 * is made; attempt n ends stopped and the task stopped, both saying the
 * other task's CodeRun goes on (what: "pod ns/name" or "application name").
 * out says "superseded". 0 or a store error. */
int alerts_superseded(struct hl_alerts *a, struct hl_alerts_outcome *out, const char *task_id,
                      int n, const char *agent, const char *what, const char *other,
                      struct hl_err *err);
/* The repository an alert's run goes to when the service map (or, for
 * ArgoCD, the Application) names none: HEALER_HEAL_REPOSITORY, else NULL
 * (the alert is skipped, "no_repository"). */
const char *alerts_default_repo(const struct hl_alerts *a);
/* A retry (attempt n, begun by the loop) that may not run any more (why:
 * "namespace_not_allowed", "no_repository", ...; the settings changed):
 * attempt n ends stopped and the task skipped, both saying why; nothing is
 * fetched, no CodeRun made. out says "skipped". 0 or a store error. */
int alerts_retry_skipped(struct hl_alerts *a, struct hl_alerts_outcome *out, const char *task_id,
                         int n, const char *agent, const char *why, struct hl_err *err);
/* The outcome as the remediator's kind handlers answer it. */
void alerts_to_remediation(struct hl_remediation *res, const struct hl_alerts_outcome *o);

/* ---- heal.c ---- */

int alerts_heal_firing(struct hl_alerts *a, struct hl_alerts_outcome *out, const json_t *doc,
                       const char *task_id, struct hl_err *err);
int alerts_heal_resolved(struct hl_alerts *a, struct hl_alerts_outcome *out, const json_t *doc,
                         const char *task_id, const char *delivery_id, struct hl_err *err);
int alerts_heal_kind(void *arg, struct hl_remediation *out, const struct hl_task_record *task,
                     const struct hl_attempt_plan *plan, struct hl_err *err);

/* ---- argocd.c ---- */

int alerts_argocd(struct hl_alerts *a, struct hl_alerts_outcome *out, const json_t *doc,
                  const char *task_id, struct hl_err *err);
int alerts_argocd_kind(void *arg, struct hl_remediation *out, const struct hl_task_record *task,
                       const struct hl_attempt_plan *plan, struct hl_err *err);
/* "owner/name" of an Application's GitHub repository URL into out (size
 * bytes): https://, http://, ssh://, git:// or scp-like user@host:path, the
 * scheme and host in any case, host github.com, www.github.com or the
 * GitHub Enterprise host of api_url (GITHUB_API_URL), an optional
 * user@ and :port, ".git" and trailing '/'. 1 with the name (it becomes
 * the task's repository: GitHub API paths, the CodeRun, the prompt,
 * terminal tables), 0 with "" when the URL is not GitHub's, -1 with ""
 * when it is GitHub's but names no repository GitHub allows. */
int alerts_argocd_repo_of(char *out, size_t size, const char *url, const char *api_url);

#endif
