/*
 * github_shared.c - a GitHub client whose token budget is shared through
 * the store (see github_shared.h): the client's share callbacks read and
 * write the hold as a store hold (hl_store_hold_get/put). A store that
 * fails costs the sharing, never the call: the client then knows only
 * what its own answers said.
 */
#include "github_shared.h"

#include "base/log.h"
#include "store/loop.h"

static int64_t
github_shared_get(void *arg, const char *key)
{
	struct hl_err err = HL_ERR_INIT;
	int64_t until = 0;

	if (hl_store_hold_get(arg, &until, key, &err) < 0)
		hl_log_kv(HL_LOG_WARN, "reading GitHub's shared rate limit failed", "error",
		          err.msg, NULL);
	return until;
}

static void
github_shared_put(void *arg, const char *key, int64_t until_ms)
{
	struct hl_err err = HL_ERR_INIT;

	if (hl_store_hold_put(arg, key, until_ms, &err) < 0)
		hl_log_kv(HL_LOG_WARN, "sharing GitHub's rate limit failed", "error", err.msg,
		          NULL);
}

int
hl_github_shared_new(struct hl_github **out, const struct hl_config *cfg, struct hl_store *store,
                     struct hl_err *err)
{
	const struct hl_github_share share = { github_shared_get, github_shared_put, store };
	int rc;

	if ((rc = hl_github_new(out, cfg, err)) < 0)
		return rc;
	if (store)
		hl_github_share_budget(*out, &share);
	return 0;
}
