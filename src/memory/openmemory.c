/*
 * openmemory.c - the OpenMemory client (see memory.h): request bodies as
 * the real server takes them (packages/openmemory-js, routes/memory.ts)
 * and the classification of its answers for the outbox.
 *
 * Auth is the x-api-key header. One API key is one tenant: no user_id is
 * ever sent (a wrong one is 403 tenant_mismatch). Identical content is
 * merged by the server (deduplicated: true), so each record's content names
 * its task. The key lives only in the configuration and a request's header
 * buffer, which is wiped after use; it is never in a payload or a message.
 */
#include "base/buf.h"
#include "base/str.h"
#include "memory.h"
#include "net/fetch.h"

#include "json/json.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OM_TAGS_MAX 64

static int
om_dump(char **out, json_t *o, struct hl_err *err)
{
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	if (!text)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	*out = text;
	return 0;
}

static void
om_tag(json_t *tags, const char *prefix, const char *v)
{
	char t[160];

	if (!v || !*v || json_array_size(tags) >= OM_TAGS_MAX)
		return;
	snprintf(t, sizeof(t), "%s%s", prefix, v);
	json_array_append_new(tags, json_string(t));
}

/* A workflow or job name in a record's head: the head ends at the first
 * ") succeeded." or ") escalated." after the repository
 * (hl_memory_history_from_matches), and a fork's pull request names its
 * own workflows and jobs, so a name can hold neither ')' nor a line end. */
static void
om_append_name(struct hl_buf *b, const char *name)
{
	const char *p;

	if (!name || !*name) {
		hl_buf_append_str(b, "?");
		return;
	}
	for (p = name; *p; p++) {
		char c = *p;

		if (c == ')')
			c = ']';
		else if ((unsigned char)c < 0x20 || c == 0x7f)
			c = ' ';
		hl_buf_append(b, &c, 1);
	}
}

int
hl_memory_om_add_payload(char **out, const struct hl_memory_note *n, struct hl_err *err)
{
	const struct hl_memory_in *m = &n->in;
	struct hl_buf content = HL_BUF_INIT(1 << 17);
	json_t *tags = json_array(), *meta, *atts;
	int rc;

	hl_buf_appendf(&content, "healer task %s: %s in %s (workflow ", m->task_id,
	               m->failure_type ? m->failure_type : "unknown", m->repository);
	om_append_name(&content, m->workflow);
	hl_buf_append_str(&content, ", job ");
	om_append_name(&content, m->job);
	hl_buf_appendf(&content, ") %s.", m->outcome);
	/* the resolution first, on the head's line, the evidence (the
	 * failure's log line, one line) on its own: what a reader cuts short
	 * keeps the fix, and no log text comes before it
	 * (hl_memory_history_from_matches) */
	hl_buf_appendf(&content, " %s", m->summary ? m->summary : "");
	if (m->evidence)
		hl_buf_appendf(&content, "\nEvidence: %s.", m->evidence);
	om_tag(tags, "", "healer");
	om_tag(tags, "", m->event);
	om_tag(tags, "repo:", m->repository);
	om_tag(tags, "type:", m->failure_type);
	om_tag(tags, "outcome:", m->outcome);
	om_tag(tags, "agent:", m->fixed_by ? m->fixed_by : m->first_agent);
	atts = json_loads(m->attempts_json, 0, NULL);
	meta = json_pack("{s:s, s:s, s:s?, s:s?, s:s?, s:s, s:s, s:s?, s:s?, s:o, s:I, s:s?, s:b}",
	                 "task_id", m->task_id, "repository", m->repository, "workflow",
	                 m->workflow, "job", m->job, "failure_type", m->failure_type, "type",
	                 m->event, "outcome", m->outcome, "first_agent", m->first_agent, "agent",
	                 m->fixed_by, "attempts", atts ? atts : json_array(), "time_to_fix_secs",
	                 (json_int_t)(m->time_to_fix_ms / 1000), "pr_url", m->pr_url,
	                 "first_attempt", strcmp(m->event, "first_attempt_success") == 0);
	if (hl_buf_error(&content) || !tags || !meta) {
		hl_buf_release(&content);
		json_decref(tags);
		json_decref(meta);
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	}
	/* the server takes 1-200000 characters */
	if (content.len > 190000)
		content.data[content.len = 190000] = '\0';
	rc = om_dump(out,
	             json_pack("{s:s, s:{s:s%, s:o, s:o}}", "path", "/memory/add", "body",
	                       "content", content.data, content.len, "tags", tags, "metadata",
	                       meta),
	             err);
	hl_buf_release(&content);
	return rc;
}

int
hl_memory_om_reinforce_payload(char **out, const char *id, double boost, struct hl_err *err)
{
	return om_dump(out,
	               json_pack("{s:s, s:{s:s, s:f}}", "path", "/memory/reinforce", "body", "id",
	                         id, "boost", boost),
	               err);
}

int
hl_memory_om_query_body(char **out, const char *text, int k, struct hl_err *err)
{
	return om_dump(out, json_pack("{s:s, s:i}", "query", text, "k", k), err);
}

bool
hl_memory_om_key_header(char *out, size_t size, const struct hl_config *cfg)
{
	if (!cfg->openmemory_api_key || !*cfg->openmemory_api_key)
		return false;
	snprintf(out, size, "x-api-key: %s", cfg->openmemory_api_key);
	return true;
}

/* Classifies an answer (transport errors included). */
static void
om_classify(struct hl_notify_result *r, const struct hl_fetch_res *res)
{
	json_t *v = NULL;
	const char *code;

	memset(r, 0, sizeof(*r));
	r->retry_after_ms = -1;
	r->code = res->status;
	if (res->err.code) {
		r->status = HL_NOTIFY_RETRY;
		snprintf(r->error, sizeof(r->error), "%s",
		         res->err.code == HL_ETIMEOUT ? "timeout" : "connect");
		snprintf(r->message, sizeof(r->message), "openmemory did not answer: %.200s",
		         res->err.msg);
		return;
	}
	(void)hl_json_parse(&v, res->body.data, res->body.len, NULL);
	code = hl_json_str(v, "error");
	if (!code)
		code = hl_json_str(v, "err");
	if (res->status >= 200 && res->status < 300) {
		r->status = HL_NOTIFY_DELIVERED;
		if (json_is_true(json_object_get(v, "deduplicated")))
			snprintf(r->message, sizeof(r->message),
			         "openmemory merged it with memory %s (deduplicated)",
			         hl_json_str_or(v, "id", "?"));
		else
			snprintf(r->message, sizeof(r->message), "openmemory memory %s",
			         hl_json_str_or(v, "id", "stored"));
	} else if (res->status == 429) {
		json_t *ra = json_object_get(v, "retry_after");
		r->status = HL_NOTIFY_RETRY;
		/* seconds; a day or more (or below 0) is no wait to keep */
		if (json_is_number(ra) && json_number_value(ra) >= 0 &&
		    json_number_value(ra) < 86400.0)
			r->retry_after_ms = (int64_t)(json_number_value(ra) * 1000);
		else if (res->retry_after_s >= 0)
			r->retry_after_ms = res->retry_after_s * 1000;
		snprintf(r->error, sizeof(r->error), "rate_limited");
		snprintf(r->message, sizeof(r->message), "openmemory rate limit");
	} else if (res->status >= 500 || res->status == 408) {
		r->status = HL_NOTIFY_RETRY;
		snprintf(r->error, sizeof(r->error), "%s", code ? code : "server_error");
		snprintf(r->message, sizeof(r->message), "openmemory answered %ld%s%s", res->status,
		         code ? " " : "", code ? code : "");
	} else {
		r->status = HL_NOTIFY_FAILED;
		snprintf(r->error, sizeof(r->error), "%s",
		         code                 ? code
		         : res->status == 401 ? "missing_api_key"
		         : res->status == 403 ? "forbidden"
		                              : "rejected");
		snprintf(r->message, sizeof(r->message), "openmemory refused it: %ld %s%s",
		         res->status, r->error,
		         res->status == 401   ? " (set OPENMEMORY_API_KEY)"
		         : res->status == 403 ? " (OPENMEMORY_API_KEY is not this server's)"
		                              : "");
	}
	json_decref(v);
}

int
hl_memory_om_send(struct hl_notify_result *out, const struct hl_config *cfg, const char *payload,
                  int64_t timeout_ms, struct hl_err *err)
{
	struct hl_fetch_req req = { 0 };
	struct hl_fetch_res res;
	struct hl_buf url = HL_BUF_INIT(8192);
	char key[HL_MEMORY_OM_KEY_HEADER_MAX], *body = NULL;
	json_t *p = json_loads(payload, 0, NULL);
	const char *path = hl_json_str(p, "path");
	size_t n = 0, base;

	memset(out, 0, sizeof(*out));
	out->retry_after_ms = -1;
	if (!cfg->openmemory_url || !*cfg->openmemory_url || !path ||
	    !json_is_object(json_object_get(p, "body"))) {
		out->status = HL_NOTIFY_FAILED;
		snprintf(out->error, sizeof(out->error), "%s",
		         p ? "not_configured" : "bad_payload");
		snprintf(out->message, sizeof(out->message), "%s",
		         p ? "OPENMEMORY_URL is not set" : "the stored payload is not JSON");
		json_decref(p);
		return 0;
	}
	base = strlen(cfg->openmemory_url);
	while (base > 0 && cfg->openmemory_url[base - 1] == '/')
		base--;
	hl_buf_append(&url, cfg->openmemory_url, base);
	hl_buf_append_str(&url, path);
	body = json_dumps(json_object_get(p, "body"), JSON_COMPACT);
	json_decref(p);
	if (hl_buf_error(&url) || !body) {
		hl_buf_release(&url);
		free(body);
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	}
	hl_fetch_global_init();
	req.method = "POST";
	req.url = url.data;
	req.headers[n++] = "Content-Type: application/json";
	req.headers[n++] = "Accept: application/json";
	if (hl_memory_om_key_header(key, sizeof(key), cfg))
		req.headers[n++] = key;
	req.body = body;
	req.body_len = strlen(body);
	req.timeout_ms = timeout_ms > 0 ? timeout_ms : 2000;
	req.max_body = 1 << 20;
	req.max_retries = 0;
	req.no_rate_wait = true;
	hl_fetch_res_init(&res);
	(void)hl_fetch_one(&req, &res, NULL);
	om_classify(out, &res);
	hl_fetch_res_release(&res);
	explicit_bzero(key, sizeof(key));
	hl_buf_release(&url);
	free(body);
	return 0;
}
