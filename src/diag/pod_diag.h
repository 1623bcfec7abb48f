/*
 * pod_diag.h - pod diagnostics to files (contract section 8), what
 * `healer fetch-logs` does and what the server does for a firing pod alert:
 * talk to the Kubernetes API directly (no kubectl) and write, under a
 * directory,
 *
 *   <pod>-current.log    every container's log, each under a header line
 *                        "==> container NAME <==" (init, regular, ephemeral)
 *   <pod>-previous.log   only when a container has a previous instance
 *                        (restarted, or a terminated last state); one left
 *                        by an earlier call is removed when the pod has none
 *   <pod>-events.yaml    the pod's events as a YAML List
 *   <pod>-describe.txt   a `kubectl describe pod`-like report
 *
 * <pod> is the pod's file stem (hl_diag_file_stem): the pod name itself, or
 * for a name too long to leave room for the longest suffix within the file
 * system's 255-byte name limit, a shortened, hash-suffixed name.
 *
 * The logs of the containers are fetched in one parallel batch. Files are
 * written atomically; log bytes are copied verbatim. A call succeeds when at
 * least one of current/events/describe was written, and its report names
 * every file written and everything that could not be fetched or written.
 */
#ifndef HL_DIAG_POD_DIAG_H
#define HL_DIAG_POD_DIAG_H

#include "base/err.h"
#include "net/kube.h"

#include <stdbool.h>
#include <stddef.h>

enum hl_diag_file {
	HL_DIAG_CURRENT_LOG = 0,
	HL_DIAG_PREVIOUS_LOG,
	HL_DIAG_EVENTS,
	HL_DIAG_DESCRIBE,
	HL_DIAG_NFILES
};

struct hl_diag_report {
	/* path of the file written for each kind ("<dir>/<pod>-current.log"),
	 * NULL when that file was not written */
	char *path[HL_DIAG_NFILES];
	/* what could not be fetched or written, one lower-case line each, e.g.
	 * "could not get events for pod 'p': ..." (no secrets) */
	char **problems;
	size_t nproblems;
	/* the API did not answer at all (connection, TLS, timeout, auth), so
	 * only the pod object was asked for */
	bool api_unreachable;
	/* the API answered that the pod does not exist (404) */
	bool pod_missing;
};

/* Empties a report. */
void hl_diag_report_init(struct hl_diag_report *r);
/* Frees a report's paths and problems (and re-initializes it). */
void hl_diag_report_release(struct hl_diag_report *r);

/* The file name suffix of a kind: "current.log", "previous.log",
 * "events.yaml", "describe.txt". */
const char *hl_diag_file_suffix(enum hl_diag_file f);

/*
 * The longest file stem: 255 bytes (NAME_MAX) less "-previous.log" (13), so
 * every diagnostics file and the A7 analysis "A7-<stem>.md" fit.
 */
#define HL_DIAG_STEM_MAX 242
/* The length of the head a longer name keeps: then '-' and 16 hex digits. */
#define HL_DIAG_STEM_HEAD 225

/*
 * Writes the file stem of pod into out: the pod name when it has at most
 * HL_DIAG_STEM_MAX bytes, else its first HL_DIAG_STEM_HEAD bytes, '-' and
 * the first 16 hex digits of the SHA-256 of the whole name (in shell:
 * "${POD:0:225}-$(printf %s "$POD" | sha256sum | cut -c1-16)"). Every file
 * named after a pod uses it: the diagnostics files, alerts/A7-<stem>.md,
 * the heal CodeRun's HEAL_LOG_FILE. pod NULL is "".
 */
void hl_diag_file_stem(char out[HL_DIAG_STEM_MAX + 1], const char *pod);

/* True when pod is a pod name as Kubernetes allows it (a DNS-1123
 * subdomain: hl_str_k8s_subdomain_valid), so it can name a diagnostics
 * file and an API path. */
/*
 * The file stem of a pod qualified by its namespace: hl_diag_file_stem of
 * "<ns>_<pod>" ('_' is in neither name), for a pod whose plain stem another
 * namespace's same-named pod holds in a shared directory (the heal
 * workspace). ns NULL or empty: the plain stem.
 */
void hl_diag_file_stem_ns(char out[HL_DIAG_STEM_MAX + 1], const char *ns, const char *pod);

bool hl_diag_pod_name_valid(const char *pod);
/* True when ns is a namespace name as Kubernetes allows it (a DNS-1123
 * label: hl_str_k8s_label_valid). */
bool hl_diag_namespace_valid(const char *ns);

/*
 * Fetches the diagnostics of pod in namespace ns (NULL: the client's) and
 * writes them under dir (created when missing, like mkdir -p). tail_lines
 * limits every log to its last lines (0: whole logs; each log is capped at
 * 64 MiB, and all of them together at 128 MiB, keeping each one's tail;
 * each is streamed to an unlinked temporary file of dir as it arrives,
 * never held whole in memory). The logs of the first HL_DIAG_MAX_CONTAINERS containers only are fetched
 * (the report says when the pod lists more).
 *
 * report is initialized by the call and filled whether it succeeds or not;
 * the caller releases it. Returns 0 when at least one of the current log,
 * the events and the description was written; else -HL_EINVAL for a pod
 * or namespace name Kubernetes would not accept, -HL_EIO when dir cannot be created, or the
 * error of the failed fetches (HL_ENOTFOUND, HL_EAUTH, HL_EIO, ...) with
 * "could not fetch any diagnostics for pod 'P' in namespace 'N'".
 * Thread-safe for distinct pods or directories (k is only read).
 */
int hl_diag_fetch_pod(struct hl_diag_report *report, const struct hl_kube *k, const char *ns,
                      const char *pod, const char *dir, long tail_lines, struct hl_err *err);

/*
 * hl_diag_fetch_pod into the directory open as dirfd (a directory another
 * party can write, the heal workspace's logs/: every write, rename and
 * removal is relative to dirfd, so swapping the directory's path for a
 * symbolic link after it was opened sends nothing elsewhere). dir only
 * names the directory in the report's paths and problems ("<dir>/<file>");
 * stem names the files (NULL: the pod's, hl_diag_file_stem).
 */
int hl_diag_fetch_pod_at(struct hl_diag_report *report, const struct hl_kube *k, const char *ns,
                         const char *pod, const char *stem, int dirfd, const char *dir,
                         long tail_lines, struct hl_err *err);

/*
 * Writes name (one path component) in the directory open as dirfd
 * atomically: a new temporary file of its own (O_EXCL|O_NOFOLLOW), synced,
 * renamed over name (a symbolic link there is replaced, never followed).
 * 0, or -HL_EINVAL (name not one component), -HL_EIO.
 */
int hl_diag_write_at(int dirfd, const char *name, const void *data, size_t len, struct hl_err *err);

/*
 * Opens name (one path component) of the directory open as dirfd for
 * reading, never through a symbolic link, and only a regular file (a FIFO
 * does not block). The descriptor (O_CLOEXEC), or -HL_ENOTFOUND when there
 * is none, -HL_EINVAL for a symbolic link or anything but a regular file,
 * -HL_EIO.
 */
int hl_diag_open_at(int dirfd, const char *name, struct hl_err *err);

#endif
