/*
 * github_shared.h - the GitHub client of a server's parts (remediation,
 * the loop and its outbox, redelivery), its token budget shared through
 * the store: an answer that says the budget is spent holds every client
 * of the process and of every replica on the same store until GitHub's
 * reset, so none of them earns the 403 or 429 the one that was told
 * avoided (a restarted process too).
 */
#ifndef HL_REMEDIATE_GITHUB_SHARED_H
#define HL_REMEDIATE_GITHUB_SHARED_H

#include "base/err.h"
#include "config/config.h"
#include "net/github.h"
#include "store/store.h"

/* Builds the client from the configuration (hl_github_new), its budget
 * shared through store (NULL: not shared), which must outlive it. */
int hl_github_shared_new(struct hl_github **out, const struct hl_config *cfg,
                         struct hl_store *store, struct hl_err *err) HL_MUST_CHECK;

#endif
