/*
 * store_redeliver.c - the front end of store/redeliver.h: argument checks
 * and the store mutex.
 */
#include "store_front.h"

#include <string.h>

int
hl_store_delivery_known(struct hl_store *s, bool *known, const char *delivery_id,
                        struct hl_err *err)
{
	if (!delivery_id || !*delivery_id || strlen(delivery_id) > HL_DELIVERY_ID_MAX)
		return hl_err_set(err, HL_EINVAL, "delivery id '%.40s' is not valid",
		                  delivery_id ? delivery_id : "");
	STORE_CALL(s, s->ops->redeliver.known(s->b, known, delivery_id, err));
}

int
hl_store_redelivery_claim(struct hl_store *s, bool *claimed, struct hl_redelivery_history *hist,
                          const struct hl_redelivery *r, struct hl_err *err)
{
	struct hl_redelivery_history ignored;

	if (!hist)
		hist = &ignored;
	memset(hist, 0, sizeof(*hist));
	if (!r || !r->guid || !*r->guid || strlen(r->guid) > HL_DELIVERY_ID_MAX || !r->hook ||
	    !r->owner)
		return hl_err_set(err, HL_EINVAL, "a redelivery needs a guid, a hook and an owner");
	STORE_CALL(s, s->ops->redeliver.claim(s->b, claimed, hist, r, err));
}

int
hl_store_redelivery_finish(struct hl_store *s, const struct hl_redelivery *r,
                           const char *outcome, const char *detail, struct hl_err *err)
{
	if (!r || !r->guid || !r->owner)
		return hl_err_set(err, HL_EINVAL, "a redelivery's end needs its guid and owner");
	if (!outcome || (strcmp(outcome, "requested") && strcmp(outcome, "failed")))
		return hl_err_set(err, HL_EINVAL, "redelivery outcome '%s' is not valid",
		                  outcome ? outcome : "");
	STORE_CALL(s, s->ops->redeliver.finish(s->b, r->guid, r->owner, outcome, detail, err));
}

int
hl_store_redelivery_release(struct hl_store *s, const struct hl_redelivery *r,
                            bool not_taken, const char *detail, struct hl_err *err)
{
	if (!r || !r->guid || !r->owner)
		return hl_err_set(err, HL_EINVAL, "a redelivery's release needs its guid and owner");
	STORE_CALL(s, s->ops->redeliver.release(s->b, r->guid, r->owner, not_taken, detail, err));
}
