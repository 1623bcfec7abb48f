/*
 * context.c - parallel context gathering; see context.h.
 *
 * The sources are one table (ctx_sources): each says when it is off and
 * plans its requests. Each request is a slot: a prepared fetch request plus
 * a parser that files the answer into the context. A phase runs all its slots in one
 * hl_fetch_run, so the phase costs the time of its slowest source, bounded
 * by the overall deadline.
 *
 * A JSON answer over its slot's cap cannot be cut like a log, so a source
 * that can ask for less has a shrink step: Loki is asked again for a
 * quarter of the lines (50, 12, 3, 1: at most CTX_MAX_REASKS more rounds,
 * each with the slots that need it only, inside the same deadline), so a
 * crash loop printing 50 KB stack traces still gives its most recent lines;
 * each line kept is cut to CTX_LOKI_LINE_MAX bytes, and the prompt's Loki
 * section and the source's status say what was reduced. ArgoCD's answers
 * (an Application, bounded by etcd's object size, and its resource tree)
 * have a cap of their own (CTX_ARGOCD_MAX_BODY); Prometheus' one-sample
 * ratio, Grafana's 20 annotations and OpenMemory's 5 matches never come
 * near theirs, and an answer over it there fails the source (named in the
 * prompt); GitHub's answers have the fetch engine's 16 MiB, and a head
 * commit whose files do not fit is followed by the PR's files.
 */
#include "context.h"

#include "base/clock.h"
#include "base/log.h"
#include "base/str.h"
#include "base/url.h"
#include "memory/memory.h"
#include "net/fetch.h"
#include "net/sources.h"

#include "json/json.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CTX_MAX_SLOTS      16
#define CTX_MAX_RUN_LOGS   2
#define CTX_DEFAULT_CAP    (4u << 20)
#define CTX_LOKI_LIMIT     50
#define CTX_MEMORY_RESULTS HL_MEMORY_OM_QUERY_K
#define CTX_MAX_PODS       50
#define CTX_MAX_EVENTS     20
#define CTX_MAX_RESOURCES  50
#define CTX_GRAFANA_LINKS  5
#define CTX_PLAIN_MAX_BODY (1u << 20) /* Loki, Prometheus, Grafana, OpenMemory */
/* an Application object stays under etcd's ~1.5 MiB; its resource tree
 * (every node of the application) can be several MiB */
#define CTX_ARGOCD_MAX_BODY (8u << 20)
#define CTX_MAX_REASKS      3    /* over the cap: at most this many smaller asks */
#define CTX_LOKI_SHRINK     4    /* each re-ask asks Loki for a quarter of the lines */
#define CTX_LOKI_LINE_MAX   1024 /* bytes of a Loki line kept (its head) */

struct ctx_slot;
typedef int (*ctx_parse_fn)(struct hl_context *ctx, struct ctx_slot *s, struct hl_fetch_res *res,
                            struct hl_err *err);
/* Re-plans an over-cap slot's request for a smaller answer; false when it
 * cannot ask for less. */
typedef bool (*ctx_shrink_fn)(struct ctx_slot *s);

struct ctx_slot {
	const char *name;
	struct hl_fetch_req req;
	struct hl_buf url, auth, body;
	char header[HL_MEMORY_OM_KEY_HEADER_MAX]; /* x-api-key */
	ctx_parse_fn parse;
	char job_name[256]; /* run logs: the job this log belongs to */
	struct gather *g;
	ctx_shrink_fn shrink;             /* NULL: an over-cap answer fails the source */
	int limit, first_limit;           /* loki: the lines asked for now and at first */
	int64_t start_ns, end_ns;         /* loki: the window */
	int64_t spent_ms;                 /* the earlier asks of a slot asked again */
	char detail[HL_CONTEXT_NOTE_MAX]; /* what an ok source's answer lost */
	bool github;                      /* a GitHub call: its answer names the budget */
	bool own_check; /* its parser reads every answer, a failed one too, and records */
};

struct ctx_phase {
	struct ctx_slot slots[CTX_MAX_SLOTS];
	size_t n;
};

struct gather {
	struct hl_context *ctx;
	const struct hl_context_clients *c;
	const struct hl_event *ev;
	int64_t timeout_ms;
	int64_t deadline_ms;
	size_t log_cap;
	json_t *failed_jobs; /* workflow_run: the run's failed jobs */
	bool files_ok;
	struct hl_buf repo_path; /* "/repos/{owner}/{repo}", each part encoded */
	/* the previous attempt's pod: its containers (the default one first),
	 * then how many of their logs were asked for and read, in how long,
	 * and why the first one could not be */
	json_t *agent_containers;
	int agent_logs, agent_read;
	int64_t agent_ms;
	char agent_why[256];
};

const char *
hl_source_state_name(enum hl_source_state st)
{
	switch (st) {
	case HL_SOURCE_OK:
		return "ok";
	case HL_SOURCE_FAILED:
		return "failed";
	case HL_SOURCE_SKIPPED:
		return "skipped";
	}
	return "failed";
}

void
hl_context_init(struct hl_context *ctx)
{
	memset(ctx, 0, sizeof(*ctx));
	hl_buf_init(&ctx->log, 0);
	hl_buf_init(&ctx->agent_output, 0);
}

void
hl_context_release(struct hl_context *ctx)
{
	hl_buf_release(&ctx->log);
	free(ctx->log_job_name);
	free(ctx->failed_step);
	free(ctx->commit_message);
	json_decref(ctx->pr);
	json_decref(ctx->changed_files);
	json_decref(ctx->argocd);
	json_decref(ctx->loki_lines);
	json_decref(ctx->prometheus);
	json_decref(ctx->kube_events);
	json_decref(ctx->kube_pods);
	json_decref(ctx->argocd_app);
	json_decref(ctx->argocd_nodes);
	json_decref(ctx->grafana);
	json_decref(ctx->memory);
	hl_buf_release(&ctx->agent_output);
	json_decref(ctx->commits);
	hl_context_init(ctx);
}

static void
ctx_record(struct hl_context *ctx, const char *name, enum hl_source_state st, int64_t elapsed,
           const char *detail)
{
	struct hl_source_status *s;

	if (ctx->n_sources >= HL_CONTEXT_MAX_SOURCES)
		return;
	s = &ctx->sources[ctx->n_sources++];
	s->name = name;
	s->state = st;
	s->elapsed_ms = elapsed;
	/* a detail may quote a configured URL: never its user:password@; it
	 * may quote an answer's bytes, cut anywhere (an error excerpt, which
	 * may echo a credential it was sent): secrets are redacted, the bytes
	 * become UTF-8, and the copy is cut between characters, or the
	 * decision's JSON would have no detail for the source */
	{
		struct hl_buf raw = HL_BUF_INIT(0), b = HL_BUF_INIT(0);
		const char *d = detail ? detail : "";
		bool ok = hl_buf_append_utf8(&raw, d, strlen(d)) == 0 &&
		          hl_url_strip_userinfo_text(&b, raw.data) == 0 && !hl_buf_error(&b) &&
		          hl_log_redact_buf(&b) == 0;
		size_t n;

		hl_strlcpy(s->detail, ok ? b.data : "", sizeof(s->detail));
		n = strlen(s->detail);
		s->detail[hl_utf8_valid_len(s->detail, n)] = '\0';
		hl_buf_release(&raw);
		hl_buf_release(&b);
	}
}

json_t *
hl_context_sources_json(const struct hl_context *ctx)
{
	json_t *arr = json_array();
	size_t i;

	for (i = 0; arr && i < ctx->n_sources; i++) {
		const struct hl_source_status *s = &ctx->sources[i];
		json_t *o = json_pack("{s:s, s:s, s:I}", "name", s->name, "state",
		                      hl_source_state_name(s->state), "elapsed_ms",
		                      (json_int_t)s->elapsed_ms);
		if (o && s->detail[0])
			json_object_set_new(o, "detail", json_string(s->detail));
		json_array_append_new(arr, o);
	}
	return arr;
}

static struct ctx_slot *
ctx_slot_add(struct ctx_phase *ph, const char *name, ctx_parse_fn parse)
{
	struct ctx_slot *s = NULL;

	if (ph->n >= CTX_MAX_SLOTS)
		return NULL;
	s = &ph->slots[ph->n++];
	memset(s, 0, sizeof(*s));
	s->name = name;
	s->parse = parse;
	hl_buf_init(&s->url, 8192);
	hl_buf_init(&s->auth, 8192);
	hl_buf_init(&s->body, 1 << 16);
	return s;
}

static void
ctx_slot_release(struct ctx_slot *s)
{
	if (s->auth.len)
		explicit_bzero(s->auth.data, s->auth.len);
	explicit_bzero(s->header, sizeof(s->header));
	hl_buf_release(&s->url);
	hl_buf_release(&s->auth);
	hl_buf_release(&s->body);
}

/* Takes back the slot ctx_slot_add just gave (its request could not be
 * made), with what its buffers hold. */
static void
ctx_slot_drop(struct ctx_phase *ph)
{
	ctx_slot_release(&ph->slots[--ph->n]);
}

static void
ctx_phase_release(struct ctx_phase *ph)
{
	size_t i;

	for (i = 0; i < ph->n; i++)
		ctx_slot_release(&ph->slots[i]);
	ph->n = 0;
}

/* ---- parsers ---------------------------------------------------------- */

static int
ctx_parse_json(json_t **out, struct hl_fetch_res *res, struct hl_err *err)
{
	return hl_json_parse(out, res->body.data, res->body.len, err);
}

static int
ctx_parse_log(struct hl_context *ctx, struct ctx_slot *s, struct hl_fetch_res *res,
              struct hl_err *err)
{
	if (s->job_name[0]) {
		hl_buf_appendf(&ctx->log, "%s==> job %s <==\n", ctx->log.len ? "\n" : "",
		               s->job_name);
		if (!ctx->log_job_name)
			ctx->log_job_name = strdup(s->job_name);
	}
	/* as text: a NUL byte would end it for every C string reader (the
	 * classifier, the evidence) and invalid UTF-8 has no JSON form */
	hl_buf_append_utf8(&ctx->log, res->body.data, res->body.len);
	ctx->log_truncated |= res->truncated;
	return hl_buf_error(&ctx->log) ? hl_err_set(err, HL_ENOMEM, "out of memory") : 0;
}

static json_t *
ctx_file_entry(const json_t *f)
{
	return json_pack("{s:s, s:s, s:I, s:I}", "filename", hl_json_str_or(f, "filename", ""),
	                 "status", hl_json_str_or(f, "status", "modified"), "additions",
	                 (json_int_t)hl_json_int(f, "additions", 0), "deletions",
	                 (json_int_t)hl_json_int(f, "deletions", 0));
}

/* The changed files of one answer: a commit's (GitHub lists 300 at most)
 * or a PR's first page of 100. A Link to a next page means the list is not
 * whole; then the PR object, when read in full, counts them all. */
static int
ctx_files_from(struct hl_context *ctx, const json_t *files, const struct hl_fetch_res *res)
{
	json_t *arr = json_array(), *f;
	json_int_t total;
	size_t i;

	if (!arr)
		return -HL_ENOMEM;
	json_array_foreach(files, i, f)
	{
		if (json_is_object(f) && hl_json_str(f, "filename"))
			json_array_append_new(arr, ctx_file_entry(f));
	}
	json_decref(ctx->changed_files);
	ctx->changed_files = arr;
	total = (json_int_t)json_array_size(arr);
	if (strstr(res->link, "rel=\"next\"")) {
		total = hl_json_int(ctx->pr, "changed_files", -1);
		if (total <= (json_int_t)json_array_size(arr))
			total = -1;
	}
	ctx->changed_files_total = total;
	return 0;
}

static int
ctx_parse_commit(struct hl_context *ctx, struct ctx_slot *s, struct hl_fetch_res *res,
                 struct hl_err *err)
{
	json_t *v = NULL;
	int rc = ctx_parse_json(&v, res, err);

	if (rc < 0)
		return rc;
	if (!json_is_array(json_object_get(v, "files"))) {
		rc = hl_err_set(err, HL_EPARSE, "commit answer has no 'files'");
	} else {
		const char *msg = hl_json_str(v, "commit.message");
		rc = ctx_files_from(ctx, json_object_get(v, "files"), res);
		if (msg && !ctx->commit_message)
			ctx->commit_message = strdup(msg);
	}
	json_decref(v);
	return rc;
}

static int
ctx_parse_pr_files(struct hl_context *ctx, struct ctx_slot *s, struct hl_fetch_res *res,
                   struct hl_err *err)
{
	json_t *v = NULL;
	int rc = ctx_parse_json(&v, res, err);

	if (rc < 0)
		return rc;
	if (!json_is_array(v)) {
		rc = hl_err_set(err, HL_EPARSE, "PR files answer is not an array");
	} else {
		rc = ctx_files_from(ctx, v, res);
	}
	json_decref(v);
	return rc;
}

static int
ctx_parse_pr(struct hl_context *ctx, struct ctx_slot *s, struct hl_fetch_res *res,
             struct hl_err *err)
{
	json_t *v = NULL, *pr;
	int rc = ctx_parse_json(&v, res, err);

	if (rc < 0)
		return rc;
	pr = json_is_array(v) ? json_array_get(v, 0) : v;
	if (json_is_object(pr) && json_object_get(pr, "number"))
		ctx->pr = json_incref(pr);
	json_decref(v);
	return 0;
}

static int
ctx_parse_jobs(struct hl_context *ctx, struct ctx_slot *s, struct hl_fetch_res *res,
               struct hl_err *err)
{
	struct gather *g = s->g;
	json_t *v = NULL, *jobs, *job, *failed;
	size_t i;
	int rc = ctx_parse_json(&v, res, err);

	if (rc < 0)
		return rc;
	jobs = json_object_get(v, "jobs");
	failed = json_array();
	json_array_foreach(jobs, i, job)
	{
		const char *c = hl_json_str(job, "conclusion");
		if (c && (strcmp(c, "failure") == 0 || strcmp(c, "timed_out") == 0))
			json_array_append(failed, job);
	}
	g->failed_jobs = failed;
	json_decref(v);
	return 0;
}

/* The Application object; summarized with its resource tree once the
 * phase is over (ctx_finish). */
static int
ctx_parse_argocd(struct hl_context *ctx, struct ctx_slot *s, struct hl_fetch_res *res,
                 struct hl_err *err)
{
	json_t *v = NULL;
	int rc = ctx_parse_json(&v, res, err);

	if (rc < 0)
		return rc;
	if (!json_is_object(v) || !json_is_object(json_object_get(v, "status"))) {
		json_decref(v);
		return hl_err_set(err, HL_EPARSE, "the answer is not an Application with a status");
	}
	json_decref(ctx->argocd_app);
	ctx->argocd_app = v;
	return 0;
}

static int
ctx_parse_argocd_tree(struct hl_context *ctx, struct ctx_slot *s, struct hl_fetch_res *res,
                      struct hl_err *err)
{
	json_t *v = NULL, *nodes;
	int rc = ctx_parse_json(&v, res, err);

	if (rc < 0)
		return rc;
	nodes = json_object_get(v, "nodes");
	if (!json_is_array(nodes)) {
		json_decref(v);
		return hl_err_set(err, HL_EPARSE, "the resource tree has no 'nodes'");
	}
	json_decref(ctx->argocd_nodes);
	ctx->argocd_nodes = json_incref(nodes);
	json_decref(v);
	return 0;
}

/* A Loki line as kept: its first CTX_LOKI_LINE_MAX bytes (cut on a UTF-8
 * boundary) and how much was cut; *cut says whether it was. */
static json_t *
ctx_loki_line(const json_t *v, bool *cut)
{
	const char *line = json_string_value(v);
	size_t len = json_string_length(v), n = CTX_LOKI_LINE_MAX;
	struct hl_buf b = HL_BUF_INIT(0);
	json_t *o;

	*cut = len > CTX_LOKI_LINE_MAX;
	if (!*cut)
		return json_stringn(line, len);
	while (n > 0 && ((unsigned char)line[n] & 0xC0) == 0x80)
		n--;
	hl_buf_append(&b, line, n);
	hl_buf_appendf(&b, " [... %zu more bytes cut]", len - n);
	o = hl_buf_error(&b) ? NULL : json_stringn(b.data, b.len);
	hl_buf_release(&b);
	return o;
}

static int
ctx_parse_loki(struct hl_context *ctx, struct ctx_slot *s, struct hl_fetch_res *res,
               struct hl_err *err)
{
	json_t *streams = NULL, *stream, *val, *lines;
	struct hl_buf note = HL_BUF_INIT(1024);
	size_t i, j, cut = 0;
	int rc = hl_loki_parse(&streams, res, err);

	if (rc < 0)
		return rc;
	if (!(lines = json_array())) {
		json_decref(streams);
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	}
	json_array_foreach(streams, i, stream)
	{
		json_array_foreach(json_object_get(stream, "values"), j, val)
		{
			const json_t *line = json_array_get(val, 1);
			bool was_cut = false;

			if (!json_is_string(line) || json_array_size(lines) >= CTX_LOKI_LIMIT)
				continue;
			json_array_append_new(lines, ctx_loki_line(line, &was_cut));
			cut += was_cut;
		}
	}
	json_decref(streams);
	json_decref(ctx->loki_lines);
	ctx->loki_lines = lines;
	/* what the prompt's Loki section and the source's status say */
	if (s->limit < s->first_limit)
		hl_buf_appendf(&note,
		               "reduced: Loki's answer for the %d most recent lines was over %u "
		               "bytes, so only the %d most recent were asked for",
		               s->first_limit, CTX_PLAIN_MAX_BODY, s->limit);
	if (cut)
		hl_buf_appendf(&note, "%s%zu line%s longer than %d bytes cut to %s first %d",
		               note.len ? "; " : "reduced: ", cut, cut == 1 ? "" : "s",
		               CTX_LOKI_LINE_MAX, cut == 1 ? "its" : "their", CTX_LOKI_LINE_MAX);
	if (note.len && !hl_buf_error(&note)) {
		hl_strlcpy(ctx->loki_note, note.data, sizeof(ctx->loki_note));
		hl_strlcpy(s->detail, note.data, sizeof(s->detail));
	}
	hl_buf_release(&note);
	return 0;
}

static int
ctx_parse_prom(struct hl_context *ctx, struct ctx_slot *s, struct hl_fetch_res *res,
               struct hl_err *err)
{
	return hl_prom_parse(&ctx->prometheus, res, err);
}

static int
ctx_parse_events(struct hl_context *ctx, struct ctx_slot *s, struct hl_fetch_res *res,
                 struct hl_err *err)
{
	json_t *v = NULL, *item;
	size_t i;
	int rc = ctx_parse_json(&v, res, err);

	if (rc < 0)
		return rc;
	ctx->kube_events = json_array();
	json_array_foreach(json_object_get(v, "items"), i, item)
	{
		json_array_append_new(ctx->kube_events,
		                      json_pack("{s:s, s:s, s:s, s:s, s:I}", "type",
		                                hl_json_str_or(item, "type", ""), "reason",
		                                hl_json_str_or(item, "reason", ""), "object",
		                                hl_json_str_or(item, "involvedObject.name", ""),
		                                "message", hl_json_str_or(item, "message", ""),
		                                "count",
		                                (json_int_t)hl_json_int(item, "count", 1)));
	}
	json_decref(v);
	return 0;
}

/* "last terminated: OOMKilled, exit code 137 at T" of the container that
 * restarted most (the first on a tie), into b. */
static void
ctx_pod_last(struct hl_buf *b, const json_t *pod, const char **reason, int64_t *restarts)
{
	static const char *const lists[] = { "status.initContainerStatuses",
		                             "status.containerStatuses" };
	const json_t *best = NULL, *cs;
	const char *waiting = NULL, *waiting_msg = NULL;
	int64_t most = -1, total = 0;
	size_t i, l;

	for (l = 0; l < 2; l++) {
		json_array_foreach(hl_json_path(pod, lists[l]), i, cs)
		{
			int64_t n = hl_json_int(cs, "restartCount", 0);
			const char *w = hl_json_str(cs, "state.waiting.reason");
			total += n;
			if (w && !waiting) {
				waiting = w;
				waiting_msg = hl_json_str(cs, "state.waiting.message");
			}
			if (json_is_object(hl_json_path(cs, "lastState.terminated")) && n > most) {
				most = n;
				best = cs;
			}
		}
	}
	*restarts = total;
	*reason = waiting;
	if (best) {
		const char *r = hl_json_str(best, "lastState.terminated.reason");
		const char *at = hl_json_str(best, "lastState.terminated.finishedAt");
		hl_buf_appendf(b, "container %s last terminated: %s, exit code %lld%s%s",
		               hl_json_str_or(best, "name", "?"), r ? r : "unknown",
		               (long long)hl_json_int(best, "lastState.terminated.exitCode", 0),
		               at ? " at " : "", at ? at : "");
		if (!*reason)
			*reason = r;
	}
	if (waiting_msg)
		hl_buf_appendf(b, "%s%s", b->len ? "; " : "", waiting_msg);
}

json_t *
hl_context_pod_summary(const json_t *pod)
{
	struct hl_buf msg = HL_BUF_INIT(2048);
	const char *reason = NULL;
	int64_t restarts = 0;
	json_t *o;

	ctx_pod_last(&msg, pod, &reason, &restarts);
	if (!reason)
		reason = hl_json_str(pod, "status.reason");
	if (!msg.len && hl_json_str(pod, "status.message"))
		hl_buf_append_str(&msg, hl_json_str(pod, "status.message"));
	o = json_pack("{s:s, s:s?, s:s, s:s?, s:I, s:s?}", "name",
	              hl_json_str_or(pod, "metadata.name", ""), "namespace",
	              hl_json_str(pod, "metadata.namespace"), "phase",
	              hl_json_str_or(pod, "status.phase", "Unknown"), "reason", reason, "restarts",
	              (json_int_t)restarts, "message",
	              hl_buf_error(&msg) || !msg.len ? NULL : msg.data);
	hl_buf_release(&msg);
	return o;
}

static int
ctx_parse_pods(struct hl_context *ctx, struct ctx_slot *s, struct hl_fetch_res *res,
               struct hl_err *err)
{
	json_t *v = NULL, *item;
	size_t i;
	int rc = ctx_parse_json(&v, res, err);

	if (rc < 0)
		return rc;
	ctx->kube_pods = json_array();
	json_array_foreach(json_object_get(v, "items"), i, item)
	{
		if (i >= CTX_MAX_PODS)
			break;
		json_array_append_new(ctx->kube_pods, hl_context_pod_summary(item));
	}
	json_decref(v);
	return ctx->kube_pods ? 0 : hl_err_set(err, HL_ENOMEM, "out of memory");
}

/* A dashboard uid or panel id may go into a link as is. */
static bool
ctx_uid_ok(const char *s)
{
	size_t n = 0;

	for (; s && *s; s++, n++)
		if (!(isalnum((unsigned char)*s) || *s == '-' || *s == '_'))
			return false;
	return n > 0 && n <= 64;
}

/* Grafana: the number of annotations of the last hour and links to the
 * panels they mark (URLs built from GRAFANA_URL and ids only; the
 * annotations' own text is not copied). */
static int
ctx_parse_grafana(struct hl_context *ctx, struct ctx_slot *s, struct hl_fetch_res *res,
                  struct hl_err *err)
{
	const char *base = s->g->c->cfg->grafana_url, *dash = ctx->service.grafana_dashboard;
	json_t *v = NULL, *a, *links = json_array();
	struct hl_buf link = HL_BUF_INIT(4096);
	size_t i, k, nb;
	int rc;

	if (!links)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	if ((rc = ctx_parse_json(&v, res, err)) < 0) {
		json_decref(links);
		return rc;
	}
	if (!json_is_array(v)) {
		json_decref(v);
		json_decref(links);
		return hl_err_set(err, HL_EPARSE, "the annotations answer is not an array");
	}
	nb = base ? strlen(base) : 0;
	while (nb > 0 && base[nb - 1] == '/')
		nb--;
	if (memchr(base, '`', nb))
		nb = 0; /* a link that could end its code span is left out */
	if (nb && ctx_uid_ok(dash)) {
		hl_buf_appendf(&link, "`%.*s/d/%s?from=now-1h&to=now`", (int)nb, base, dash);
		json_array_append_new(links, json_string(link.data));
	}
	json_array_foreach(v, i, a)
	{
		const char *uid = hl_json_str(a, "dashboardUID");
		int64_t panel = hl_json_int(a, "panelId", 0), t = hl_json_int(a, "time", 0);
		int64_t end = hl_json_int(a, "timeEnd", 0);
		bool seen = false;

		if (json_array_size(links) >= CTX_GRAFANA_LINKS)
			break;
		if (!nb || !ctx_uid_ok(uid) || panel <= 0 || t <= 0)
			continue;
		hl_buf_reset(&link);
		hl_buf_appendf(&link, "`%.*s/d/%s?viewPanel=%lld&from=%lld&to=%lld`", (int)nb, base,
		               uid, (long long)panel, (long long)(t - 15 * 60000),
		               (long long)((end > t ? end : t) + 15 * 60000));
		for (k = 0; k < json_array_size(links) && !seen; k++)
			seen = strcmp(json_string_value(json_array_get(links, k)), link.data) == 0;
		if (!seen && !hl_buf_error(&link))
			json_array_append_new(links, json_string(link.data));
	}
	json_decref(ctx->grafana);
	ctx->grafana = json_pack("{s:I, s:o}", "annotations", (json_int_t)json_array_size(v),
	                         "links", links);
	json_decref(v);
	hl_buf_release(&link);
	return ctx->grafana ? 0 : hl_err_set(err, HL_ENOMEM, "out of memory");
}

static int
ctx_parse_memory(struct hl_context *ctx, struct ctx_slot *s, struct hl_fetch_res *res,
                 struct hl_err *err)
{
	json_t *v = NULL, *m;
	size_t i;
	int rc = ctx_parse_json(&v, res, err);

	if (rc < 0)
		return rc;
	ctx->memory = json_array();
	json_array_foreach(json_object_get(v, "matches"), i, m)
	{
		if (i >= CTX_MEMORY_RESULTS)
			break;
		json_array_append_new(
		        ctx->memory, json_pack("{s:s, s:s, s:f}", "id", hl_json_str_or(m, "id", ""),
		                               "content", hl_json_str_or(m, "content", ""), "score",
		                               json_number_value(json_object_get(m, "score"))));
	}
	json_decref(v);
	return 0;
}

/* ---- request builders --------------------------------------------------- */

static int ctx_add_github(struct gather *g, struct ctx_phase *ph, const char *name,
                          ctx_parse_fn parse, struct ctx_slot **out, struct hl_err *err,
                          const char *fmt, ...) HL_PRINTF(7, 8);

static int
ctx_add_github(struct gather *g, struct ctx_phase *ph, const char *name, ctx_parse_fn parse,
               struct ctx_slot **out, struct hl_err *err, const char *fmt, ...)
{
	struct hl_buf path = HL_BUF_INIT(8192);
	struct ctx_slot *s = ctx_slot_add(ph, name, parse);
	va_list ap;
	int rc;

	if (!s)
		return hl_err_set(err, HL_EINTERNAL, "too many context sources");
	va_start(ap, fmt);
	hl_buf_vappendf(&path, fmt, ap);
	va_end(ap);
	if (hl_buf_error(&path)) {
		hl_buf_release(&path);
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	}
	rc = hl_github_req_init(g->c->github, &s->req, &s->url, &s->auth, "GET", path.data, err);
	hl_buf_release(&path);
	if (rc < 0) {
		ctx_slot_drop(ph);
		ctx_record(g->ctx, name, HL_SOURCE_FAILED, 0, err->msg);
		return 0; /* a source failing to start is a failed source, not an error */
	}
	s->req.timeout_ms = g->timeout_ms;
	s->g = g;
	s->github = true;
	if (out)
		*out = s;
	return 0;
}

static int
ctx_add_plain(struct gather *g, struct ctx_phase *ph, const char *name, ctx_parse_fn parse,
              const char *auth_token, struct ctx_slot **out, struct hl_err *err)
{
	struct ctx_slot *s = ctx_slot_add(ph, name, parse);

	if (!s)
		return hl_err_set(err, HL_EINTERNAL, "too many context sources");
	s->req.method = "GET";
	s->req.timeout_ms = g->timeout_ms;
	s->req.max_body = CTX_PLAIN_MAX_BODY;
	s->g = g;
	s->req.headers[0] = "Accept: application/json";
	if (auth_token && *auth_token) {
		hl_buf_appendf(&s->auth, "Bearer %s", auth_token);
		s->req.auth = s->auth.data;
	}
	*out = s;
	return 0;
}

/* Escapes s into b for a URL path segment. */
static void
ctx_escape(struct hl_buf *b, const char *s)
{
	hl_fetch_url_escape(b, s ? s : "");
}

static int
ctx_plan_github(struct gather *g, struct ctx_phase *ph, struct hl_err *err)
{
	const struct hl_event *ev = g->ev;
	struct hl_buf owner_branch = HL_BUF_INIT(4096), sha = HL_BUF_INIT(256);
	struct ctx_slot *s = NULL;
	const char *repo = ev->repository;
	int rc = 0;

	/* the failing job's log (on a retry: the current failure's), or the
	 * run's job list first */
	if (g->c->retry && g->c->retry->current_job_id > 0) {
		rc = ctx_add_github(g, ph, "github_log", ctx_parse_log, &s, err,
		                    "%s/actions/jobs/%lld/logs", g->repo_path.data,
		                    (long long)g->c->retry->current_job_id);
		if (rc == 0 && s) {
			s->req.follow_redirects = true;
			s->req.max_body = g->log_cap;
			s->req.keep_tail = true;
		}
	} else if (ev->job_id > 0) {
		rc = ctx_add_github(g, ph, "github_log", ctx_parse_log, &s, err,
		                    "%s/actions/jobs/%lld/logs", g->repo_path.data,
		                    (long long)ev->job_id);
		if (rc == 0 && s) {
			s->req.follow_redirects = true;
			s->req.max_body = g->log_cap;
			s->req.keep_tail = true;
		}
	} else if (ev->run_id > 0) {
		rc = ctx_add_github(g, ph, "github_jobs", ctx_parse_jobs, NULL, err,
		                    "%s/actions/runs/%lld/jobs?filter=latest&per_page=100",
		                    g->repo_path.data, (long long)ev->run_id);
	} else {
		ctx_record(g->ctx, "github_log", HL_SOURCE_SKIPPED, 0, "no job or run id");
	}
	if (rc < 0)
		goto out;
	/* the PR: by number when the event names it, else by head branch */
	if (ev->pr_number > 0) {
		rc = ctx_add_github(g, ph, "github_pr", ctx_parse_pr, NULL, err, "%s/pulls/%lld",
		                    g->repo_path.data, (long long)ev->pr_number);
	} else if (ev->branch && *ev->branch) {
		const char *slash = strchr(repo, '/');
		hl_buf_append(&owner_branch, repo, slash ? (size_t)(slash - repo) : strlen(repo));
		hl_buf_append_char(&owner_branch, ':');
		hl_buf_append_str(&owner_branch, ev->branch);
		s = NULL;
		struct hl_buf q = HL_BUF_INIT(8192);
		ctx_escape(&q, owner_branch.data);
		rc = ctx_add_github(g, ph, "github_pr", ctx_parse_pr, NULL, err,
		                    "%s/pulls?head=%s&state=open&per_page=1", g->repo_path.data,
		                    q.data);
		hl_buf_release(&q);
	} else {
		ctx_record(g->ctx, "github_pr", HL_SOURCE_SKIPPED, 0, "no branch or PR number");
	}
	if (rc < 0)
		goto out;
	/* changed files of the head commit */
	if (ev->head_sha && *ev->head_sha) {
		ctx_escape(&sha, ev->head_sha);
		rc = ctx_add_github(g, ph, "github_files", ctx_parse_commit, NULL, err,
		                    "%s/commits/%s", g->repo_path.data, sha.data);
	}
out:
	hl_buf_release(&owner_branch);
	hl_buf_release(&sha);
	return rc;
}

/* ---- the sources --------------------------------------------------------- */

static bool
ctx_set(const char *s)
{
	return s && *s;
}

/* A Kubernetes GET of path as a slot (a source failing to start is a
 * failed source). */
static int
ctx_add_kube(struct gather *g, struct ctx_phase *ph, const char *name, ctx_parse_fn parse,
             const char *path, struct hl_err *err)
{
	struct ctx_slot *s = ctx_slot_add(ph, name, parse);
	int rc;

	if (!s)
		return hl_err_set(err, HL_EINTERNAL, "too many context sources");
	rc = hl_kube_req_init(g->c->kube, &s->req, &s->url, &s->auth, "GET", path, err);
	if (rc < 0) {
		ctx_slot_drop(ph);
		ctx_record(g->ctx, name, HL_SOURCE_FAILED, 0, err->msg);
		return 0;
	}
	s->req.timeout_ms = g->timeout_ms;
	s->g = g;
	return 0;
}

static bool
ctx_argocd_cluster(const struct gather *g)
{
	return !(g->c->cfg->argocd_server && *g->c->cfg->argocd_server) && g->c->target &&
	       g->c->target->argocd_from_cluster && g->c->kube;
}

static int
ctx_plan_argocd(struct gather *g, struct ctx_phase *ph, struct hl_err *err)
{
	const struct hl_config *cfg = g->c->cfg;
	const char *app = g->ctx->service.argocd_app;
	struct hl_buf path = HL_BUF_INIT(4096);
	struct ctx_slot *s = NULL;
	int rc;

	if (ctx_argocd_cluster(g)) {
		/* the Application object itself, from the cluster */
		hl_buf_append_str(&path, "/apis/argoproj.io/v1alpha1/namespaces/");
		hl_url_append_segment(&path, g->ctx->service.argocd_namespace);
		hl_buf_append_str(&path, "/applications/");
		hl_url_append_segment(&path, app);
		rc = hl_buf_error(&path)
		             ? hl_err_set(err, HL_ENOMEM, "out of memory")
		             : ctx_add_kube(g, ph, "argocd", ctx_parse_argocd, path.data, err);
		hl_buf_release(&path);
		return rc;
	}
	hl_buf_release(&path);
	if ((rc = ctx_add_plain(g, ph, "argocd", ctx_parse_argocd, cfg->argocd_token, &s, err)) < 0)
		return rc;
	s->req.max_body = CTX_ARGOCD_MAX_BODY;
	if (hl_argocd_app_url(&s->url, cfg->argocd_server, app) < 0) {
		ctx_slot_drop(ph);
		ctx_record(g->ctx, "argocd", HL_SOURCE_FAILED, 0,
		           "the application name is not a valid name");
		return 0;
	}
	s->req.url = s->url.data;
	if (g->c->target && g->c->target->argocd_tree) {
		if ((rc = ctx_add_plain(g, ph, "argocd_resources", ctx_parse_argocd_tree,
		                        cfg->argocd_token, &s, err)) < 0)
			return rc;
		s->req.max_body = CTX_ARGOCD_MAX_BODY;
		hl_argocd_app_url(&s->url, cfg->argocd_server, app);
		hl_buf_append_str(&s->url, "/resource-tree");
		s->req.url = s->url.data;
	}
	return 0;
}

/* The slot's Loki query_range URL: the service's error lines of its
 * window, the s->limit most recent (direction=backward). */
static int
ctx_loki_url(struct ctx_slot *s)
{
	struct hl_buf q = HL_BUF_INIT(4096);
	int rc;

	hl_buf_appendf(&q, "%s |~ \"(?i)(error|panic|fatal|exception)\"",
	               s->g->ctx->service.loki_selector);
	hl_buf_reset(&s->url);
	rc = hl_buf_error(&q) ? -HL_ENOMEM
	                      : hl_loki_query_range_url(&s->url, s->g->c->cfg->loki_url, q.data,
	                                                s->start_ns, s->end_ns, s->limit);
	hl_buf_release(&q);
	s->req.url = s->url.data;
	return rc;
}

/* Over the cap: the same window, a quarter of the lines (at least one). */
static bool
ctx_loki_shrink(struct ctx_slot *s)
{
	if (s->limit <= 1)
		return false;
	s->limit = s->limit / CTX_LOKI_SHRINK > 1 ? s->limit / CTX_LOKI_SHRINK : 1;
	return ctx_loki_url(s) == 0;
}

static int
ctx_plan_loki(struct gather *g, struct ctx_phase *ph, struct hl_err *err)
{
	int64_t now_ns = hl_time_wall_ms() * 1000000LL;
	struct ctx_slot *s = NULL;
	int rc;

	if ((rc = ctx_add_plain(g, ph, "loki", ctx_parse_loki, NULL, &s, err)) == 0) {
		s->start_ns = now_ns - 30LL * 60 * 1000000000LL;
		s->end_ns = now_ns;
		s->limit = s->first_limit = CTX_LOKI_LIMIT;
		s->shrink = ctx_loki_shrink;
		ctx_loki_url(s);
	}
	return rc;
}

static int
ctx_plan_prometheus(struct gather *g, struct ctx_phase *ph, struct hl_err *err)
{
	const struct hl_service_view *sv = &g->ctx->service;
	struct hl_buf q = HL_BUF_INIT(4096), sel = HL_BUF_INIT(512);
	struct ctx_slot *s = NULL;
	int rc;

	/* the service's job when the map names it, else the service label guess */
	if (sv->prometheus_job[0])
		hl_buf_appendf(&sel, "job=\"%s\"", sv->prometheus_job);
	else
		hl_buf_appendf(&sel, "service=\"%s\"", sv->service);
	hl_buf_appendf(&q,
	               "sum(rate(http_requests_total{%s,code=~\"5..\"}[5m])) / "
	               "sum(rate(http_requests_total{%s}[5m]))",
	               sel.data, sel.data);
	hl_buf_release(&sel);
	if ((rc = ctx_add_plain(g, ph, "prometheus", ctx_parse_prom, NULL, &s, err)) == 0) {
		hl_prom_query_url(&s->url, g->c->cfg->prometheus_url, q.data);
		s->req.url = s->url.data;
	}
	hl_buf_release(&q);
	return rc;
}

/* The pods of the service's workload and the namespace's warning events
 * (kept for those pods and the workload in ctx_finish), in the batch. */
static int
ctx_plan_kubernetes(struct gather *g, struct ctx_phase *ph, struct hl_err *err)
{
	const struct hl_service_view *sv = &g->ctx->service;
	struct hl_buf path = HL_BUF_INIT(4096);
	int rc;

	hl_buf_append_str(&path, "/api/v1/namespaces/");
	hl_url_append_segment(&path, sv->namespace);
	hl_buf_append_str(&path, "/pods?labelSelector=");
	hl_url_append_query_value(&path, sv->pod_selector);
	hl_buf_appendf(&path, "&limit=%d", CTX_MAX_PODS);
	rc = hl_buf_error(&path)
	             ? hl_err_set(err, HL_ENOMEM, "out of memory")
	             : ctx_add_kube(g, ph, "kubernetes", ctx_parse_pods, path.data, err);
	if (rc < 0)
		goto out;
	hl_buf_reset(&path);
	hl_buf_append_str(&path, "/api/v1/namespaces/");
	hl_url_append_segment(&path, sv->namespace);
	hl_buf_append_str(&path, "/events?fieldSelector=type%3DWarning&limit=200");
	rc = hl_buf_error(&path)
	             ? hl_err_set(err, HL_ENOMEM, "out of memory")
	             : ctx_add_kube(g, ph, "kubernetes_events", ctx_parse_events, path.data, err);
out:
	hl_buf_release(&path);
	return rc;
}

static int
ctx_plan_grafana(struct gather *g, struct ctx_phase *ph, struct hl_err *err)
{
	const struct hl_config *cfg = g->c->cfg;
	const char *base = cfg->grafana_url;
	size_t n = strlen(base);
	int64_t now = hl_time_wall_ms();
	struct ctx_slot *s = NULL;
	int rc;

	if ((rc = ctx_add_plain(g, ph, "grafana", ctx_parse_grafana, cfg->grafana_token, &s, err)) <
	    0)
		return rc;
	while (n > 0 && base[n - 1] == '/')
		n--;
	hl_buf_append(&s->url, base, n);
	hl_buf_appendf(&s->url, "/api/annotations?from=%lld&to=%lld&limit=20",
	               (long long)(now - 3600 * 1000LL), (long long)now);
	if (ctx_uid_ok(g->ctx->service.grafana_dashboard))
		hl_buf_appendf(&s->url, "&dashboardUID=%s", g->ctx->service.grafana_dashboard);
	s->req.url = s->url.data;
	return 0;
}

/* OpenMemory's /memory/query (k results) with its own deadline
 * (HEALER_MEMORY_TIMEOUT_MS) inside the batch; x-api-key auth, never a
 * user_id (one key is one tenant). */
static int
ctx_plan_memory(struct gather *g, struct ctx_phase *ph, struct hl_err *err)
{
	const struct hl_config *cfg = g->c->cfg;
	const struct hl_event *ev = g->ev;
	struct ctx_slot *s = NULL;
	char *text = NULL;
	size_t base = strlen(cfg->openmemory_url);
	int rc;

	if ((rc = ctx_add_plain(g, ph, "memory", ctx_parse_memory, NULL, &s, err)) < 0)
		return rc;
	while (base > 0 && cfg->openmemory_url[base - 1] == '/')
		base--;
	hl_buf_append(&s->url, cfg->openmemory_url, base);
	hl_buf_append_str(&s->url, "/memory/query");
	s->req.url = s->url.data;
	s->req.method = "POST";
	s->req.max_retries = 0;
	s->req.no_rate_wait = true;
	if (cfg->memory_timeout_ms > 0 && cfg->memory_timeout_ms < s->req.timeout_ms)
		s->req.timeout_ms = cfg->memory_timeout_ms;
	hl_buf_appendf(&s->body, "CI failure in %s workflow %s job %s: %s",
	               ev->repository ? ev->repository : "?",
	               ev->workflow_name ? ev->workflow_name : "?",
	               ev->job_name ? ev->job_name : "?", ev->failed_step ? ev->failed_step : "");
	if ((rc = hl_memory_om_query_body(&text, s->body.data, CTX_MEMORY_RESULTS, err)) < 0)
		return rc;
	hl_buf_reset(&s->body);
	hl_buf_append_str(&s->body, text);
	free(text);
	s->req.body = s->body.data;
	s->req.body_len = s->body.len;
	s->req.headers[1] = "Content-Type: application/json";
	if (hl_memory_om_key_header(s->header, sizeof(s->header), cfg))
		s->req.headers[2] = s->header;
	return 0;
}

#define CTX_AGENT_OUTPUT_LINES 200
#define CTX_AGENT_OUTPUT_MAX   (256 * 1024) /* bytes of all its containers' logs */
#define CTX_AGENT_CONTAINERS   4            /* containers of the pod read at most */
#define CTX_MAX_COMMITS        30

/* Why a Kubernetes answer is no log, in a few words: its Status message,
 * never the raw body (which the prompt would quote). */
static void
ctx_kube_reason(char *out, size_t size, const struct hl_fetch_res *res)
{
	json_t *st = NULL;
	const char *msg = NULL;

	if (res->err.code) {
		snprintf(out, size, "%.150s", res->err.msg);
		return;
	}
	if (res->body.len && hl_json_parse(&st, res->body.data, res->body.len, NULL) == 0)
		msg = hl_json_str(st, "message");
	snprintf(out, size, "status %ld%s%.150s", res->status, msg ? ": " : "", msg ? msg : "");
	json_decref(st);
}

/* The previous attempt's pod: the names of its containers, the one kubectl
 * reads by default (annotation kubectl.kubernetes.io/default-container)
 * first, then in the pod's order. */
static int
ctx_parse_agent_pod(struct hl_context *ctx, struct ctx_slot *s, struct hl_fetch_res *res,
                    struct hl_err *err)
{
	struct gather *g = s->g;
	json_t *pod = NULL, *names = json_array(), *c;
	const char *def = NULL, *name;
	size_t i;

	g->agent_ms += res->elapsed_ms;
	if (!names)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	if (res->err.code || res->status < 200 || res->status >= 300 ||
	    hl_json_parse(&pod, res->body.data, res->body.len, NULL) < 0) {
		char why[180];

		ctx_kube_reason(why, sizeof(why), res);
		snprintf(g->agent_why, sizeof(g->agent_why), "could not read the pod: %s", why);
		ctx_record(ctx, "agent_output", HL_SOURCE_FAILED, g->agent_ms, g->agent_why);
		json_decref(names);
		return 0;
	}
	def = json_string_value(json_object_get(hl_json_path(pod, "metadata.annotations"),
	                                        "kubectl.kubernetes.io/default-container"));
	json_array_foreach(hl_json_path(pod, "spec.containers"), i, c)
	{
		if ((name = hl_json_str(c, "name")) != NULL && *name)
			json_array_insert_new(
			        names, def && strcmp(def, name) == 0 ? 0 : json_array_size(names),
			        json_string(name));
	}
	json_decref(pod);
	json_decref(g->agent_containers);
	g->agent_containers = names;
	return 0;
}

/* One container's log of the previous attempt's pod, under a header when
 * the pod has more than one; one that could not be read says why, briefly. */
static int
ctx_parse_agent_output(struct hl_context *ctx, struct ctx_slot *s, struct hl_fetch_res *res,
                       struct hl_err *err)
{
	struct gather *g = s->g;
	bool ok = !res->err.code && res->status >= 200 && res->status < 300;

	if (res->elapsed_ms > g->agent_ms)
		g->agent_ms = res->elapsed_ms;
	if (g->agent_logs > 1)
		hl_buf_appendf(&ctx->agent_output, "%s==> container %s <==\n",
		               ctx->agent_output.len ? "\n" : "", s->job_name);
	if (ok) {
		g->agent_read++;
		if (res->truncated)
			hl_buf_appendf(&ctx->agent_output, "(cut to its last %zu bytes)\n",
			               res->body.len);
		/* read as a C string (the prompt's "why it failed"): no NUL
		 * byte may end it early */
		hl_buf_append_utf8(&ctx->agent_output, res->body.data, res->body.len);
	} else {
		char why[180];

		ctx_kube_reason(why, sizeof(why), res);
		if (!g->agent_why[0])
			snprintf(g->agent_why, sizeof(g->agent_why),
			         "could not read container %.40s: %s", s->job_name, why);
		if (g->agent_logs > 1)
			hl_buf_appendf(&ctx->agent_output, "(could not read: %s)\n", why);
	}
	return hl_buf_error(&ctx->agent_output) ? hl_err_set(err, HL_ENOMEM, "out of memory") : 0;
}

static int
ctx_parse_commits(struct hl_context *ctx, struct ctx_slot *s, struct hl_fetch_res *res,
                  struct hl_err *err)
{
	json_t *v = NULL, *c, *arr = json_array();
	size_t i, n;
	int rc;

	if (!arr)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	if ((rc = ctx_parse_json(&v, res, err)) < 0) {
		json_decref(arr);
		return rc;
	}
	/* oldest first; keep the newest CTX_MAX_COMMITS */
	n = json_array_size(json_object_get(v, "commits"));
	json_array_foreach(json_object_get(v, "commits"), i, c)
	{
		if (n > CTX_MAX_COMMITS && i < n - CTX_MAX_COMMITS)
			continue;
		json_array_append_new(arr,
		                      json_pack("{s:s?, s:s?, s:s?}", "sha", hl_json_str(c, "sha"),
		                                "message", hl_json_str(c, "commit.message"),
		                                "author", hl_json_str(c, "commit.author.name")));
	}
	json_decref(v);
	json_decref(ctx->commits);
	ctx->commits = arr;
	return 0;
}

/* The previous attempt's pod first (its containers), their logs in the
 * next phase (ctx_plan_agent_logs): a log asked for without a container
 * is refused (400) for a pod of more than one. */
static int
ctx_plan_agent_output(struct gather *g, struct ctx_phase *ph, struct hl_err *err)
{
	struct hl_buf path = HL_BUF_INIT(1024);
	size_t n = ph->n;
	int rc;

	hl_buf_append_str(&path, "/api/v1/namespaces/");
	hl_url_append_segment(&path, g->c->cfg->namespace);
	hl_buf_append_str(&path, "/pods/");
	hl_url_append_segment(&path, g->c->retry->agent_pod);
	rc = hl_buf_error(&path)
	             ? hl_err_set(err, HL_ENOMEM, "out of memory")
	             : ctx_add_kube(g, ph, "agent_output", ctx_parse_agent_pod, path.data, err);
	if (rc == 0 && ph->n > n)
		ph->slots[ph->n - 1].own_check = true;
	hl_buf_release(&path);
	return rc;
}

/* A log slot for each container of the previous attempt's pod, at most
 * CTX_AGENT_CONTAINERS, sharing CTX_AGENT_OUTPUT_MAX bytes. */
static int
ctx_plan_agent_logs(struct gather *g, struct ctx_phase *ph, struct hl_err *err)
{
	size_t n = json_array_size(g->agent_containers), i;
	struct ctx_slot *s;

	if (!g->agent_containers)
		return 0;
	if (n == 0) {
		ctx_record(g->ctx, "agent_output", HL_SOURCE_FAILED, g->agent_ms,
		           "the pod has no containers");
		return 0;
	}
	if (n > CTX_AGENT_CONTAINERS)
		n = CTX_AGENT_CONTAINERS;
	for (i = 0; i < n; i++) {
		const char *name = json_string_value(json_array_get(g->agent_containers, i));

		if (!(s = ctx_slot_add(ph, "agent_output", ctx_parse_agent_output)))
			return hl_err_set(err, HL_EINTERNAL, "too many context sources");
		if (hl_kube_pod_log_req(g->c->kube, &s->req, &s->url, &s->auth,
		                        g->c->cfg->namespace, g->c->retry->agent_pod, name,
		                        CTX_AGENT_OUTPUT_LINES, false, CTX_AGENT_OUTPUT_MAX / n,
		                        err) < 0) {
			ctx_slot_drop(ph);
			if (!g->agent_why[0])
				snprintf(g->agent_why, sizeof(g->agent_why), "%.190s", err->msg);
			*err = (struct hl_err)HL_ERR_INIT;
			continue;
		}
		s->req.timeout_ms = g->timeout_ms;
		s->g = g;
		s->own_check = true;
		hl_strlcpy(s->job_name, name, sizeof(s->job_name));
		g->agent_logs++;
	}
	return 0;
}

/* The agent's output recorded once for all its containers: ok when one
 * log was read; else failed with the first reason, and no output (the
 * prompt then quotes the CodeRun's message). */
static void
ctx_agent_logs_done(struct gather *g)
{
	char detail[64];

	if (!g->agent_containers || json_array_size(g->agent_containers) == 0)
		return;
	if (g->agent_read == 0) {
		hl_buf_reset(&g->ctx->agent_output);
		ctx_record(g->ctx, "agent_output", HL_SOURCE_FAILED, g->agent_ms,
		           g->agent_why[0] ? g->agent_why : "could not read the logs");
		return;
	}
	snprintf(detail, sizeof(detail), "%d of %zu containers read", g->agent_read,
	         json_array_size(g->agent_containers));
	ctx_record(g->ctx, "agent_output", HL_SOURCE_OK, g->agent_ms,
	           (size_t)g->agent_read < json_array_size(g->agent_containers) ? detail : NULL);
}

static int
ctx_plan_commits(struct gather *g, struct ctx_phase *ph, struct hl_err *err)
{
	struct hl_buf base = HL_BUF_INIT(512), head = HL_BUF_INIT(1024);
	int rc;

	hl_fetch_url_escape(&base, g->c->retry->failing_sha);
	hl_fetch_url_escape(&head, g->c->retry->head_ref);
	rc = ctx_add_github(g, ph, "commits", ctx_parse_commits, NULL, err, "%s/compare/%s...%s",
	                    g->repo_path.data, base.data, head.data);
	hl_buf_release(&base);
	hl_buf_release(&head);
	return rc;
}

static const char *
ctx_agent_output_off(const struct gather *g)
{
	if (!g->c->kube)
		return "no cluster configured";
	return g->c->retry->agent_pod && *g->c->retry->agent_pod
	               ? NULL
	               : "the previous attempt's pod is not known";
}

static const char *
ctx_commits_off(const struct gather *g)
{
	if (!g->c->github || !g->repo_path.len)
		return "no GitHub credentials (GITHUB_TOKEN or GitHub App)";
	return ctx_set(g->c->retry->failing_sha) && ctx_set(g->c->retry->head_ref)
	               ? NULL
	               : "no failing commit or branch to compare";
}

static const char *
ctx_github_off(const struct gather *g)
{
	if (!g->ev->repository)
		return "no repository in the event";
	if (!g->repo_path.len)
		return "the repository name is not owner/repo";
	return g->c->github ? NULL : "no GitHub credentials (GITHUB_TOKEN or GitHub App)";
}

static const char *
ctx_argocd_off(const struct gather *g)
{
	if (!g->ctx->service.argocd_app[0])
		return "no service to name the ArgoCD application";
	return ctx_set(g->c->cfg->argocd_server) || ctx_argocd_cluster(g) ? NULL
	                                                                  : "ARGOCD_SERVER not set";
}

static const char *
ctx_loki_off(const struct gather *g)
{
	if (!ctx_set(g->c->cfg->loki_url))
		return "LOKI_URL not set";
	return g->ctx->service.service[0] ? NULL : "no service to name the Loki streams";
}

static const char *
ctx_prometheus_off(const struct gather *g)
{
	if (!ctx_set(g->c->cfg->prometheus_url))
		return "PROMETHEUS_URL not set";
	return g->ctx->service.service[0] ? NULL : "no service to name the Prometheus series";
}

static const char *
ctx_kubernetes_off(const struct gather *g)
{
	if (!g->c->kube)
		return "no cluster configured";
	return g->ctx->service.service[0] ? NULL : "no service to name the workload";
}

static const char *
ctx_grafana_off(const struct gather *g)
{
	return ctx_set(g->c->cfg->grafana_url) ? NULL : "GRAFANA_URL not set";
}

static const char *
ctx_memory_off(const struct gather *g)
{
	/* without OpenMemory the embedded memory is read after classification
	 * and recorded by the caller */
	return ctx_set(g->c->cfg->openmemory_url) ? NULL : "";
}

/*
 * The context sources of the first phase, in the order their statuses are
 * recorded. off() says why a source is skipped (NULL: it is configured);
 * plan() adds its requests to the phase. names lists the statuses a
 * skipped source records. Retry sources exist only for later attempts.
 * Adding a source is one entry.
 */
static const struct ctx_source {
	const char *names[4];
	bool retry_only;
	const char *(*off)(const struct gather *g);
	int (*plan)(struct gather *g, struct ctx_phase *ph, struct hl_err *err);
} ctx_sources[] = {
	{ { "github_log", "github_pr", "github_files" }, false, ctx_github_off, ctx_plan_github },
	{ { "argocd" }, false, ctx_argocd_off, ctx_plan_argocd },
	{ { "loki" }, false, ctx_loki_off, ctx_plan_loki },
	{ { "prometheus" }, false, ctx_prometheus_off, ctx_plan_prometheus },
	{ { "kubernetes", "kubernetes_events" }, false, ctx_kubernetes_off, ctx_plan_kubernetes },
	{ { "grafana" }, false, ctx_grafana_off, ctx_plan_grafana },
	{ { "memory" }, false, ctx_memory_off, ctx_plan_memory },
	{ { "agent_output" }, true, ctx_agent_output_off, ctx_plan_agent_output },
	{ { "commits" }, true, ctx_commits_off, ctx_plan_commits },
};

static int
ctx_plan_sources(struct gather *g, struct ctx_phase *ph, struct hl_err *err)
{
	size_t i, k;
	int rc;

	for (i = 0; i < sizeof(ctx_sources) / sizeof(ctx_sources[0]); i++) {
		const struct ctx_source *src = &ctx_sources[i];
		const char *why;

		if (src->retry_only && !g->c->retry)
			continue;
		why = src->off(g);

		if (why && !*why)
			continue; /* not a source here: the caller records it */
		if (why) {
			for (k = 0; k < 4 && src->names[k]; k++)
				ctx_record(g->ctx, src->names[k], HL_SOURCE_SKIPPED, 0, why);
			continue;
		}
		if ((rc = src->plan(g, ph, err)) < 0)
			return rc;
	}
	return 0;
}

/* Files one answer into the context and records the source's state. */
static void
ctx_file(struct gather *g, struct ctx_slot *s, struct hl_fetch_res *res)
{
	struct hl_err perr = HL_ERR_INIT;
	int64_t elapsed = s->spent_ms + res->elapsed_ms;

	if (s->own_check) {
		if (s->parse(g->ctx, s, res, &perr) < 0)
			ctx_record(g->ctx, s->name, HL_SOURCE_FAILED, elapsed, perr.msg);
	} else if (hl_fetch_check(res, s->name, &perr) < 0 || s->parse(g->ctx, s, res, &perr) < 0) {
		if (s->limit < s->first_limit) {
			char msg[sizeof(perr.msg) + 64];

			snprintf(msg, sizeof(msg), "%s (asked again for %d of %d lines)", perr.msg,
			         s->limit, s->first_limit);
			ctx_record(g->ctx, s->name, HL_SOURCE_FAILED, elapsed, msg);
		} else {
			ctx_record(g->ctx, s->name, HL_SOURCE_FAILED, elapsed, perr.msg);
		}
	} else if (strcmp(s->name, "github_files") == 0 ||
	           strcmp(s->name, "github_pr_files") == 0) {
		g->files_ok = true;
		ctx_record(g->ctx, s->name, HL_SOURCE_OK, elapsed, NULL);
	} else {
		ctx_record(g->ctx, s->name, HL_SOURCE_OK, elapsed,
		           s->detail[0]     ? s->detail
		           : res->truncated ? "truncated: the tail was kept"
		                            : NULL);
	}
}

/* Runs a phase and files every answer. A slot whose answer was over its
 * cap and that can ask for less is asked again in a following round (with
 * the others that need it only), at most CTX_MAX_REASKS times, inside the
 * same deadline. */
static int
ctx_run_phase(struct gather *g, struct ctx_phase *ph, struct hl_err *err)
{
	struct hl_fetch_req reqs[CTX_MAX_SLOTS];
	struct hl_fetch_res res[CTX_MAX_SLOTS];
	size_t idx[CTX_MAX_SLOTS], n, i, again;
	int round, rc;

	for (n = 0; n < ph->n; n++)
		idx[n] = n;
	for (round = 0; n > 0 && round <= CTX_MAX_REASKS; round++) {
		for (i = 0; i < n; i++)
			reqs[i] = ph->slots[idx[i]].req;
		rc = hl_fetch_run(reqs, res, n, g->deadline_ms, err);
		if (rc < 0)
			return rc;
		for (i = again = 0; i < n; i++) {
			struct ctx_slot *s = &ph->slots[idx[i]];

			if (s->github) /* the token's budget, for the process's next calls */
				hl_github_note_budget(g->c->github, &res[i]);
			if (res[i].err.code == HL_ETOOBIG && round < CTX_MAX_REASKS && s->shrink &&
			    s->shrink(s)) {
				s->spent_ms += res[i].elapsed_ms;
				idx[again++] = idx[i];
			} else {
				ctx_file(g, s, &res[i]);
			}
			hl_fetch_res_release(&res[i]);
		}
		n = again;
	}
	return 0;
}

static const char *
ctx_first_failed_step(const json_t *job)
{
	json_t *step;
	size_t i;

	json_array_foreach(json_object_get(job, "steps"), i, step)
	{
		const char *c = hl_json_str(step, "conclusion");
		if (c && strcmp(c, "failure") == 0)
			return hl_json_str(step, "name");
	}
	return NULL;
}

static int
ctx_plan_phase2(struct gather *g, struct ctx_phase *ph, struct hl_err *err)
{
	const struct hl_event *ev = g->ev;
	struct ctx_slot *s = NULL;
	json_t *job;
	size_t i;
	int rc = 0;

	if (g->failed_jobs) {
		json_array_foreach(g->failed_jobs, i, job)
		{
			int64_t id = hl_json_int(job, "id", 0);
			if (i >= CTX_MAX_RUN_LOGS || id <= 0)
				break;
			if (i == 0 && !ev->failed_step && ctx_first_failed_step(job))
				g->ctx->failed_step = strdup(ctx_first_failed_step(job));
			s = NULL;
			rc = ctx_add_github(g, ph, "github_log", ctx_parse_log, &s, err,
			                    "%s/actions/jobs/%lld/logs", g->repo_path.data,
			                    (long long)id);
			if (rc < 0)
				return rc;
			if (s) {
				s->req.follow_redirects = true;
				s->req.max_body = g->log_cap / CTX_MAX_RUN_LOGS;
				s->req.keep_tail = true;
				hl_strlcpy(s->job_name, hl_json_str_or(job, "name", "?"),
				           sizeof(s->job_name));
			}
		}
		if (json_array_size(g->failed_jobs) == 0)
			ctx_record(g->ctx, "github_log", HL_SOURCE_SKIPPED, 0,
			           "the run has no failed job");
	}
	if (!g->files_ok && g->ctx->pr && g->c->github) {
		rc = ctx_add_github(g, ph, "github_pr_files", ctx_parse_pr_files, NULL, err,
		                    "%s/pulls/%lld/files?per_page=100", g->repo_path.data,
		                    (long long)hl_json_int(g->ctx->pr, "number", 0));
	}
	if (rc == 0)
		rc = ctx_plan_agent_logs(g, ph, err);
	return rc;
}

static bool
ctx_str_in(const json_t *arr, const char *key, const char *s)
{
	const json_t *v;
	size_t i;

	json_array_foreach(arr, i, v)
	{
		const char *x = hl_json_str(v, key);
		if (x && s && strcmp(x, s) == 0)
			return true;
	}
	return false;
}

json_t *
hl_context_argocd_summary(const json_t *app, const json_t *nodes)
{
	json_t *o = json_object(), *res = json_array(), *r;
	const char *msg = hl_json_str(app, "status.operationState.message");
	size_t i;

	if (!o || !res) {
		json_decref(o);
		json_decref(res);
		return NULL;
	}
	if (!msg || !*msg)
		msg = hl_json_str(app, "status.health.message");
	json_object_set_new(o, "app", json_string(hl_json_str_or(app, "metadata.name", "")));
	json_object_set_new(o, "health",
	                    json_string(hl_json_str_or(app, "status.health.status", "Unknown")));
	json_object_set_new(o, "sync",
	                    json_string(hl_json_str_or(app, "status.sync.status", "Unknown")));
	json_object_set_new(o, "message", msg ? json_string(msg) : json_null());
	json_array_foreach(hl_json_path(app, "status.resources"), i, r)
	{
		const char *h = hl_json_str(r, "health.status"), *sy = hl_json_str(r, "status");
		bool bad_health = h && strcmp(h, "Healthy") != 0;
		bool bad_sync = sy && strcmp(sy, "Synced") != 0;

		if (json_array_size(res) >= CTX_MAX_RESOURCES || !(bad_health || bad_sync))
			continue;
		json_array_append_new(res, json_pack("{s:s?, s:s?, s:s?, s:s?, s:s?}", "kind",
		                                     hl_json_str(r, "kind"), "name",
		                                     hl_json_str(r, "name"), "namespace",
		                                     hl_json_str(r, "namespace"), "status",
		                                     bad_health ? h : sy, "message",
		                                     hl_json_str(r, "health.message")));
	}
	json_array_foreach(nodes, i, r)
	{
		const char *h = hl_json_str(r, "health.status"), *name = hl_json_str(r, "name");

		if (json_array_size(res) >= CTX_MAX_RESOURCES || !h || strcmp(h, "Healthy") == 0)
			continue;
		if (ctx_str_in(res, "name", name) &&
		    ctx_str_in(res, "kind", hl_json_str(r, "kind")))
			continue;
		json_array_append_new(res,
		                      json_pack("{s:s?, s:s?, s:s?, s:s, s:s?}", "kind",
		                                hl_json_str(r, "kind"), "name", name, "namespace",
		                                hl_json_str(r, "namespace"), "status", h, "message",
		                                hl_json_str(r, "health.message")));
	}
	json_object_set_new(o, "unhealthy_resources", res);
	return o;
}

/* After the batch: the ArgoCD summary, and the warning events of the
 * workload's pods (or named like the workload) only. */
static int
ctx_finish(struct hl_context *ctx, struct hl_err *err)
{
	if (ctx->argocd_app) {
		ctx->argocd = hl_context_argocd_summary(ctx->argocd_app, ctx->argocd_nodes);
		if (!ctx->argocd)
			return hl_err_set(err, HL_ENOMEM, "out of memory");
	}
	if (ctx->kube_events) {
		json_t *kept = json_array(), *e;
		size_t i, wl = strlen(ctx->service.workload);

		if (!kept)
			return hl_err_set(err, HL_ENOMEM, "out of memory");
		json_array_foreach(ctx->kube_events, i, e)
		{
			const char *obj = hl_json_str(e, "object");
			if (json_array_size(kept) >= CTX_MAX_EVENTS || !obj)
				continue;
			if (ctx_str_in(ctx->kube_pods, "name", obj) ||
			    (wl && strncmp(obj, ctx->service.workload, wl) == 0))
				json_array_append(kept, e);
		}
		json_decref(ctx->kube_events);
		ctx->kube_events = kept;
	}
	return 0;
}

int
hl_context_gather(struct hl_context *ctx, const struct hl_context_clients *c,
                  const struct hl_event *ev, struct hl_err *err)
{
	struct ctx_phase *ph = calloc(1, sizeof(*ph));
	struct gather g = { 0 };
	int64_t start = hl_time_mono_ms();
	int rc;

	if (!ph)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	g.ctx = ctx;
	g.c = c;
	g.ev = ev;
	g.timeout_ms = c->timeout_ms > 0 ? c->timeout_ms : 8000;
	g.deadline_ms = c->deadline_ms > 0 ? c->deadline_ms : start + 15000;
	g.log_cap = c->log_cap ? c->log_cap : CTX_DEFAULT_CAP;
	hl_buf_init(&g.repo_path, 1024);
	/* what names the service in the running-system sources */
	if (c->target && c->target->service)
		ctx->service = *c->target->service;
	else
		hl_service_resolve(&ctx->service, c->cfg,
		                   hl_config_service_by_repo(c->cfg, ev->repository),
		                   ev->repository);
	/* every GitHub path starts from the repository, each part encoded and a
	 * name that is not owner/repo refused (no request can reach another
	 * endpoint) */
	if (ev->repository && hl_github_repo_path(&g.repo_path, ev->repository, NULL) < 0)
		hl_buf_reset(&g.repo_path);

	if ((rc = ctx_plan_sources(&g, ph, err)) < 0)
		goto out;
	if ((rc = ctx_run_phase(&g, ph, err)) < 0)
		goto out;
	ctx_phase_release(ph);
	if ((rc = ctx_plan_phase2(&g, ph, err)) < 0)
		goto out;
	rc = ctx_run_phase(&g, ph, err);
	if (rc == 0)
		ctx_agent_logs_done(&g);
	/* a job log may print one of healer's own credentials: it never reaches
	 * the classification's evidence, the store or a prompt (fail closed:
	 * no memory to redact it, no log) */
	if (rc == 0 && hl_log_redact_buf(&ctx->log) < 0)
		hl_buf_reset(&ctx->log);
	if (rc == 0)
		rc = ctx_finish(ctx, err);
out:
	ctx_phase_release(ph);
	free(ph);
	json_decref(g.failed_jobs);
	json_decref(g.agent_containers);
	hl_buf_release(&g.repo_path);
	if (!ctx->changed_files)
		ctx->changed_files = json_array();
	ctx->elapsed_ms = hl_time_mono_ms() - start;
	return rc;
}
