/*
 * fuzz_alerts.c - libFuzzer target for alert payloads (src/alerts/payload.c):
 * the first byte picks the route (even: POST /api/alerts/alertmanager, odd:
 * /api/alerts/argocd), the rest is the body, parsed as the route parses it
 * and checked by hl_alerts_parse_alertmanager / hl_alerts_parse_argocd.
 *
 * Oracle: every item of an accepted batch carries a JSON object body, a
 * non-empty delivery id and dedup key; its task id is set unless skipped.
 */
#include "alerts/alerts.h"
#include "fuzz.h"

#include "json/json.h"
#include <jansson.h>
#include <string.h>

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hl_alert_batch batch;
	struct hl_err err = HL_ERR_INIT;
	json_t *body = NULL;
	bool argocd;
	size_t i;
	int rc;

	if (size < 1)
		return 0;
	argocd = data[0] & 1;
	if (hl_json_parse(&body, (const char *)data + 1, size - 1, &err) < 0)
		return 0;
	memset(&batch, 0, sizeof(batch));
	rc = argocd ? hl_alerts_parse_argocd(&batch, body, &err)
	            : hl_alerts_parse_alertmanager(&batch, body, &err);
	if (rc == 0) {
		for (i = 0; i < batch.n; i++) {
			const struct hl_alert_item *it = &batch.items[i];
			json_t *o = json_loads(it->body, 0, NULL);

			FUZZ_CHECK(json_is_object(o));
			FUZZ_CHECK(it->delivery_id[0] != '\0');
			FUZZ_CHECK(it->dedup_key && *it->dedup_key);
			json_decref(o);
		}
		hl_alert_batch_release(&batch);
	}
	json_decref(body);
	return 0;
}
