/*
 * kube_impl.h - shared between the Kubernetes client files (private to
 * src/net): path building, the Status-carrying error mapping and the
 * Authorization value's release.
 */
#ifndef HL_NET_KUBE_IMPL_H
#define HL_NET_KUBE_IMPL_H

#include "base/buf.h"
#include "base/err.h"
#include "fetch.h"
#include "kube.h"

#include <jansson.h>

/* Appends "{prefix}/namespaces/{ns}/{kind}[/{name}][/{sub}]" to p, ns and
 * name as encoded path segments (HL_EINVAL when hl_kube_name_valid refuses
 * one; HL_ENOMEM). prefix, kind and sub are trusted constants. */
int hl_kube_path(struct hl_buf *p, const char *prefix, const char *ns, const char *kind,
                 const char *name, const char *sub, struct hl_err *err);

/* Appends "?key=value" (or "&key=value" once p has a query), value
 * percent-encoded. HL_ENOMEM. */
int hl_kube_query(struct hl_buf *p, const char *key, const char *value, struct hl_err *err);

/* Turns a finished call into an error carrying the API's Status message
 * (0 for 2xx); method and path name the call. */
int hl_kube_status_error(const struct hl_fetch_res *res, const char *method, const char *path,
                         struct hl_err *err);

/* hl_kube_call with the retry count of the fetch engine (-1: its default,
 * retrying idempotent methods only). */
int hl_kube_call_ex(const struct hl_kube *k, json_t **out, long *status_out, const char *method,
                    const char *path, const json_t *body, int max_retries, struct hl_err *err);

/* Wipes and frees an Authorization value built by hl_kube_req_init. */
void hl_kube_auth_release(struct hl_buf *auth);

/* ns when set, else the client's namespace. */
const char *hl_kube_ns(const struct hl_kube *k, const char *ns);

#endif
