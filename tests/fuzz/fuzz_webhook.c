/*
 * fuzz_webhook.c - libFuzzer target for the webhook fast path: the input is
 * an event name (the X-GitHub-Event header) on the first line, then the
 * body. The body goes through what POST /webhook does with it on a request
 * thread (hl_json_fast_parse inside an arena scope, then normalization,
 * validation and the event's keys) and what a worker does with a stored
 * event (hl_event_to_json / hl_event_from_json).
 *
 * Oracle: the fast parser's accepted language is json_loadb(JSON_DECODE_ANY
 * | JSON_ALLOW_NUL) (json/fast.h), so both must accept or refuse the same
 * text and build equal values (but for jansson's one quirk fast.h names);
 * an event must survive its JSON round trip with the same keys. The
 * webhook path's pruned parse (hl_event_prune_rules) must accept and refuse
 * the same text with the same error, and normalize to the same event.
 */
#include "config/config.h"
#include "event/event.h"
#include "fuzz.h"

#include "json/fast.h"
#include <jansson.h>
#include <string.h>

static void
fuzz_event(const char *name, const json_t *payload)
{
	static const struct hl_config cfg; /* every repository, no bots */
	struct hl_err err = HL_ERR_INIT;
	struct hl_event *ev = NULL, *back = NULL;
	char *dedup, *fkey, *rkey, id[64];
	json_t *j;

	if (hl_event_normalize(&ev, name, payload, &err) < 0)
		return;
	(void)hl_event_skip_reason(ev, &cfg);
	(void)hl_event_remediable(ev);
	dedup = hl_event_dedup_key(ev);
	fkey = hl_event_failure_key(ev);
	rkey = hl_event_remediation_key(ev);
	if (dedup)
		(void)hl_event_task_id(id, sizeof(id), dedup);
	j = hl_event_to_json(ev);
	if (j && hl_event_from_json(&back, j, &err) == 0) {
		char *d2 = hl_event_dedup_key(back), *f2 = hl_event_failure_key(back);

		FUZZ_CHECK((!dedup && !d2) || (dedup && d2 && strcmp(dedup, d2) == 0));
		FUZZ_CHECK((!fkey && !f2) || (fkey && f2 && strcmp(fkey, f2) == 0));
		free(d2);
		free(f2);
		hl_event_free(back);
	}
	json_decref(j);
	free(dedup);
	free(fkey);
	free(rkey);
	hl_event_free(ev);
}

/* The pruned parse agrees with the full one (rc, err) and its tree
 * normalizes to the same event. */
static void
fuzz_pruned_alike(const char *name, const uint8_t *body, size_t n, json_t *full, int rc,
                  const struct hl_err *err)
{
	struct hl_err e2 = HL_ERR_INIT, x1 = HL_ERR_INIT, x2 = HL_ERR_INIT;
	struct hl_event *a = NULL, *b = NULL;
	json_t *pruned = NULL, *ja, *jb;
	int r2, n1, n2;

	r2 = hl_json_fast_parse_pruned(&pruned, (const char *)body, n, hl_event_prune_rules, &e2);
	FUZZ_CHECK(r2 == rc);
	if (rc < 0) {
		FUZZ_CHECK(strcmp(err->msg, e2.msg) == 0);
		return;
	}
	n1 = hl_event_normalize(&a, name, full, &x1);
	n2 = hl_event_normalize(&b, name, pruned, &x2);
	FUZZ_CHECK(n1 == n2);
	if (n1 == 0) {
		ja = hl_event_to_json(a);
		jb = hl_event_to_json(b);
		FUZZ_CHECK(json_equal(ja, jb));
		json_decref(ja);
		json_decref(jb);
	} else {
		FUZZ_CHECK(strcmp(x1.msg, x2.msg) == 0);
	}
	hl_event_free(a);
	hl_event_free(b);
	json_decref(pruned);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char name[64];
	const uint8_t *body;
	size_t n;
	struct hl_err err = HL_ERR_INIT;
	json_t *fast = NULL, *ref;
	json_error_t jerr;
	int rc;

	hl_json_arena_install();
	fuzz_split_line(name, sizeof(name), &body, &n, data, size);

	ref = json_loadb((const char *)body, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	hl_json_arena_begin();
	rc = hl_json_fast_parse(&fast, (const char *)body, n, &err);
	hl_json_arena_end();
	/* jansson alone takes NUL bytes right after a number or a literal
	 * ("6\0", "[1\0]"); NUL is not JSON whitespace, and fast.h refuses
	 * them: with a NUL in the text, only the fast parser being laxer is
	 * a difference */
	if (ref && rc < 0 && memchr(body, 0, n)) {
		json_decref(ref);
		ref = NULL;
	}
	/* jansson refuses numbers it cannot hold ("too big integer", "real
	 * number overflow"), which fast.h reads as reals: there only the
	 * fast parser accepting is a difference */
	if (!ref && rc == 0 &&
	    (strncmp(jerr.text, "too big ", 8) == 0 ||
	     strncmp(jerr.text, "real number overflow", 20) == 0))
		ref = json_incref(fast);
	FUZZ_CHECK((rc == 0) == (ref != NULL));
	if (rc == 0)
		FUZZ_CHECK(json_equal(fast, ref));
	json_decref(ref);
	if (rc == 0 && json_is_object(fast)) {
		if (!name[0]) {
			const char *guess = hl_event_guess_name(fast);
			snprintf(name, sizeof(name), "%s", guess ? guess : "workflow_job");
		}
		fuzz_event(name, fast);
	}
	fuzz_pruned_alike(name[0] ? name : "workflow_job", body, n, fast, rc, &err);
	json_decref(fast);
	return 0;
}
