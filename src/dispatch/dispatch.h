/*
 * dispatch.h - where CodeRuns go (HEALER_DISPATCH, contract section 3):
 *
 *  kubernetes  POST to /apis/agents.platform/v1/namespaces/{ns}/coderuns;
 *              201 -> created, 409 AlreadyExists -> existing.
 *  directory   one manifest per CodeRun at $HEALER_DATA_DIR/coderuns/<name>.json,
 *              pretty-printed JSON (valid YAML, so `kubectl create -f` takes
 *              it), written atomically; an existing file -> existing. The
 *              file's status.phase (absent = Pending) is the run's state;
 *              hl_dispatch_set_status updates it (for an operator or tests).
 *  none        decide only: the manifest is validated and named, nothing is
 *              written (outcome dry_run).
 *
 * A manifest with metadata.generateName (heal runs) gets its name from the
 * API server in kubernetes mode, and generateName + 5 random [a-z0-9]
 * characters otherwise.
 *
 * A struct hl_dispatch is immutable after opening and thread-safe.
 */
#ifndef HL_DISPATCH_DISPATCH_H
#define HL_DISPATCH_DISPATCH_H

#include "base/err.h"
#include "config/config.h"
#include "net/kube.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

enum hl_dispatch_outcome {
	HL_DISPATCH_CREATED,  /* a new CodeRun exists now */
	HL_DISPATCH_EXISTING, /* one with this name existed already (idempotent) */
	HL_DISPATCH_DRY_RUN,  /* dispatch mode none: nothing was written */
};

struct hl_dispatch {
	enum hl_dispatch_mode mode;
	char *dir;            /* directory mode: $HEALER_DATA_DIR/coderuns */
	char *namespace;      /* HEALER_NAMESPACE */
	struct hl_kube *kube; /* kubernetes mode */
};

/* "created", "existing", "dry_run". */
const char *hl_dispatch_outcome_name(enum hl_dispatch_outcome o);

/*
 * Opens the dispatcher for cfg's mode; kubernetes mode loads the client
 * configuration (KUBECONFIG, in-cluster, ~/.kube/config) and fails with its
 * error when none is usable; directory mode removes the temporary files
 * (".NAME.json.*", "NAME.json.tmp.*") older than a minute that a killed
 * writer left. Free with hl_dispatch_close.
 */
int hl_dispatch_open(struct hl_dispatch **out, const struct hl_config *cfg, struct hl_err *err) HL_MUST_CHECK;

/* Opens with explicit parts (tests, tools); kube is taken over (may be NULL
 * unless mode is kubernetes); dir is the coderuns directory itself. */
int hl_dispatch_open_with(struct hl_dispatch **out, enum hl_dispatch_mode mode, const char *dir,
                          const char *namespace, struct hl_kube *kube, struct hl_err *err) HL_MUST_CHECK;

void hl_dispatch_close(struct hl_dispatch *d);

/*
 * Validates (hl_coderun_validate) and submits manifest (borrowed; its
 * namespace is set to the dispatcher's when absent). *outcome and name_out
 * (64 bytes: the CodeRun's name, assigned for generateName manifests) are
 * written on success. Errors: HL_EINVAL (invalid manifest or a 422 from the
 * API), transport errors from the API, HL_EIO for files.
 */
int hl_dispatch_submit(struct hl_dispatch *d, enum hl_dispatch_outcome *outcome, char *name_out,
                       json_t *manifest, struct hl_err *err) HL_MUST_CHECK;

/*
 * The CodeRuns matching a label selector whose status.phase is Pending,
 * Running or absent/empty (not yet picked up), from the API in kubernetes
 * mode or from the manifest files in directory mode (none: always empty).
 * *out is a new JSON array of CodeRun objects. Used for dedup after a
 * restart and by spawn-remediation.
 */
int hl_dispatch_find_active(struct hl_dispatch *d, json_t **out, const char *selector,
                            struct hl_err *err) HL_MUST_CHECK;

/* Like hl_dispatch_find_active but returns every matching CodeRun whatever
 * its phase (for status pages and the completion watcher). */
int hl_dispatch_list(struct hl_dispatch *d, json_t **out, const char *selector, struct hl_err *err) HL_MUST_CHECK;

/*
 * Directory mode, for the completion watcher: what the previous scans saw
 * of each CodeRun file (name, mtime, size, inode; only the files present at
 * the last scan are kept). hl_dispatch_scan lists the matching CodeRuns
 * whose file is new or changed since into *changed (a new JSON array; the
 * others cost one stat, no read), sets the metadata.name of every matching
 * one, changed or not, to true in the object names, and adds the files it
 * read to *parsed. hl_dispatch_scan_forget makes the next scan read every
 * file again. HL_EUNSUPPORTED in other modes.
 */
struct hl_dispatch_scan;
struct hl_dispatch_scan *hl_dispatch_scan_new(void);
void hl_dispatch_scan_free(struct hl_dispatch_scan *s);
void hl_dispatch_scan_forget(struct hl_dispatch_scan *s);
int hl_dispatch_scan(struct hl_dispatch *d, struct hl_dispatch_scan *s, const char *selector,
                     json_t **changed, json_t *names, uint64_t *parsed,
                     struct hl_err *err) HL_MUST_CHECK;

/*
 * Directory mode: removes the CodeRun files last written before cut_ms
 * (wall clock) whose phase is terminal (Succeeded, Failed, ...) and whose
 * task, named by the healer/task-id label, done(arg, task_id) says is over;
 * a file without the label, or that cannot be read, is kept. Adds the files
 * removed to *removed. A no-op in other modes (there CodeRuns are the
 * cluster's objects).
 */
int hl_dispatch_prune(struct hl_dispatch *d, int64_t cut_ms,
                      bool (*done)(void *arg, const char *task_id), void *arg, int64_t *removed,
                      struct hl_err *err) HL_MUST_CHECK;

/* One CodeRun by name; HL_ENOTFOUND when absent (always in mode none). */
int hl_dispatch_get(struct hl_dispatch *d, json_t **out, const char *name, struct hl_err *err) HL_MUST_CHECK;

/* Deletes a CodeRun (kubernetes: its Job and pods go with it, propagation
 * Background; directory: its file). Absent is success. */
int hl_dispatch_delete(struct hl_dispatch *d, const char *name, struct hl_err *err) HL_MUST_CHECK;
/* Directory mode: sets status.phase (and status.message when not NULL) in
 * the manifest file. HL_EUNSUPPORTED in other modes (there the controller
 * owns status). */
int hl_dispatch_set_status(struct hl_dispatch *d, const char *name, const char *phase,
                           const char *message, struct hl_err *err) HL_MUST_CHECK;

/* True for Pending, Running, or an absent/empty phase. */
bool hl_dispatch_phase_active(const char *phase);

/*
 * Matches a label object against a Kubernetes label selector: terms joined
 * by ',': "k=v", "k==v", "k!=v", "k", "!k", "k in (a,b)", "k notin (a,b)".
 * An empty selector matches everything. HL_EINVAL for a malformed
 * selector; *match is written on success.
 */
int hl_dispatch_selector_match(bool *match, const json_t *labels, const char *selector,
                               struct hl_err *err) HL_MUST_CHECK;

#endif
