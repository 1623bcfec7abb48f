/*
 * pipeline.c - the default pipeline: records what would happen to each
 * processed delivery (see pipeline.h for the contract the dispatch work
 * keeps when it replaces hl_pipeline_process).
 */
#include "pipeline.h"

#include <stdlib.h>

struct hl_pipeline {
	const struct hl_config *cfg;
	struct hl_store *store;
};

int
hl_pipeline_new(struct hl_pipeline **out, const struct hl_config *cfg, struct hl_store *store,
                struct hl_err *err)
{
	struct hl_pipeline *p = calloc(1, sizeof(*p));

	if (!p)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	p->cfg = cfg;
	p->store = store;
	*out = p;
	return 0;
}

void
hl_pipeline_free(struct hl_pipeline *p)
{
	free(p);
}

int
hl_pipeline_process(struct hl_pipeline *p, const struct hl_delivery_record *d,
                    const struct hl_event *ev, struct hl_err *err)
{
	const char *outcome = "recorded";
	json_t *j = hl_event_to_json(ev);
	char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	int rc;

	switch (ev->intent) {
	case HL_INTENT_CI_FAILURE:
	case HL_INTENT_SECURITY:
	case HL_INTENT_COMMAND:
	case HL_INTENT_ACTION:
		outcome = "queued_for_remediation";
		break;
	case HL_INTENT_TRACK:
	case HL_INTENT_NONE:
		break;
	}
	rc = hl_store_finish_delivery(p->store, d->delivery_id, HL_DELIVERY_PROCESSED, outcome,
	                              text, err);
	free(text);
	json_decref(j);
	return rc;
}
