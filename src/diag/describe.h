/*
 * describe.h - a `kubectl describe pod`-like text report built from the Pod
 * object and its EventList, and the container facts the pod diagnostics
 * need (which containers exist, which have a previous instance).
 *
 * Everything here reads borrowed jansson values and writes into a caller's
 * buffer; nothing talks to the network. Thread-safe.
 */
#ifndef HL_DIAG_DESCRIBE_H
#define HL_DIAG_DESCRIBE_H

#include "base/buf.h"

#include <jansson.h>
#include <stdbool.h>

/*
 * Appends the report for pod to out: name, namespace, node, phase, labels,
 * owners, every container (image, state, last state with reason and exit
 * code, readiness, restarts, limits and requests; the first
 * HL_DIAG_MAX_CONTAINERS of each list, then how many more it has),
 * conditions, QoS class and the events (events is an EventList; NULL prints
 * "<unavailable>").
 * Untrusted strings are copied verbatim. Errors are out's sticky error.
 */
void hl_diag_describe_pod(struct hl_buf *out, const json_t *pod, const json_t *events);

/* The most containers of one list the report describes, and the most
 * containers whose logs the diagnostics fetch: real pods have a handful; a
 * Pod object listing thousands (a broken or hostile API server) must not
 * cost thousands of requests, log buffers and quadratic lookups. */
#define HL_DIAG_MAX_CONTAINERS 64

/* Appends to names (a JSON array) the name of every container of pod: init,
 * regular and ephemeral containers, in that order, at most max of them.
 * Returns how many names the pod lists in all. */
size_t hl_diag_pod_containers(json_t *names, const json_t *pod, size_t max);

/* The status object of container name (from any of the pod's status lists),
 * borrowed, or NULL. */
json_t *hl_diag_container_status(const json_t *pod, const char *name);

/* True when a container status shows a previous instance (restartCount > 0
 * or a terminated lastState), i.e. its previous log can be asked for. */
bool hl_diag_has_previous(const json_t *status);

#endif
