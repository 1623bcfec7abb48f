/*
 * prompt_build.c - filling the prompt layer's context from a remediation;
 * see prompt_build.h. The only place that knows both healer's internal
 * structures and the prompt data model's inputs.
 */
#include "prompt_build.h"

#include "base/buf.h"
#include "base/log.h"
#include "prompt/prompt.h"

#include "json/json.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hl_prompt_builder {
	struct hl_prompt_set *set;
};

int
hl_prompt_builder_new(struct hl_prompt_builder **out, const char *dir, struct hl_err *err)
{
	struct hl_prompt_builder *b = calloc(1, sizeof(*b));
	int rc;

	if (!b)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	if ((rc = hl_prompt_set_load(&b->set, dir, err)) < 0) {
		free(b);
		return rc;
	}
	/* a partial no template provides stops the start, not every render */
	if ((rc = hl_tmpl_set_check_partials(hl_prompt_set_templates(b->set), err)) < 0) {
		hl_prompt_builder_free(b);
		return rc;
	}
	*out = b;
	return 0;
}

void
hl_prompt_builder_free(struct hl_prompt_builder *b)
{
	if (!b)
		return;
	hl_prompt_set_free(b->set);
	free(b);
}

/* The Prometheus answer as a one-line summary of the error rate, and
 * Grafana's annotations and panel links (each link in a code span). */
static json_t *
pb_prometheus(const json_t *result, const json_t *grafana)
{
	const json_t *first = json_array_get(result, 0), *l;
	const char *val = json_string_value(json_array_get(json_object_get(first, "value"), 1));
	struct hl_buf line = HL_BUF_INIT(8192);
	json_t *o;
	size_t i;

	if (!result && !grafana)
		return NULL;
	if (result && !val)
		hl_buf_append_str(&line, "No error-rate series for the service.");
	else if (result)
		hl_buf_appendf(&line, "5xx share of requests over 5m: %.32s.", val);
	if (grafana) {
		hl_buf_appendf(&line, "%sGrafana: %lld annotation(s) in the last hour",
		               line.len ? "\n" : "",
		               (long long)hl_json_int(grafana, "annotations", 0));
		json_array_foreach(json_object_get(grafana, "links"), i, l)
		{
			hl_buf_appendf(&line, "%s%s",
			               i ? ", " : "; panels: ", json_string_value(l));
		}
		hl_buf_append_char(&line, '.');
	}
	o = hl_buf_error(&line) ? NULL : json_pack("{s:s, s:[]}", "summary", line.data, "alerts");
	hl_buf_release(&line);
	return o;
}

int
hl_prompt_builder_render(struct hl_prompt_builder *b, char **out, const struct hl_prompt_inputs *in,
                         struct hl_err *err)
{
	const struct hl_context *c = in->context;
	const struct hl_verdict *v = in->verdict;
	const struct hl_event *ev = in->event;
	struct hl_prompt_context pc = { 0 };
	struct hl_prompt_file *files = NULL;
	struct hl_prompt_missing missing[HL_CONTEXT_MAX_SOURCES];
	json_t *kube = NULL, *loki = NULL, *prom = NULL, *history = NULL;
	size_t nfiles = json_array_size(c->changed_files), i, nmissing = 0;
	int rc;

	files = calloc(nfiles ? nfiles : 1, sizeof(*files));
	if (!files)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	for (i = 0; i < nfiles; i++) {
		const json_t *f = json_array_get(c->changed_files, i);
		files[i].filename = hl_json_str(f, "filename");
		files[i].status = hl_json_str(f, "status");
		files[i].additions = hl_json_int(f, "additions", 0);
		files[i].deletions = hl_json_int(f, "deletions", 0);
	}
	for (i = 0; i < c->n_sources; i++) {
		if (c->sources[i].state != HL_SOURCE_FAILED)
			continue;
		missing[nmissing].name = c->sources[i].name;
		missing[nmissing].reason = c->sources[i].detail;
		nmissing++;
	}
	if (c->kube_events || c->kube_pods)
		kube = json_pack("{s:O?, s:O?}", "pods", c->kube_pods, "events", c->kube_events);
	if (c->loki_lines) {
		char q[640];
		snprintf(q, sizeof(q), "%s, error lines of the last 30m", c->service.loki_selector);
		loki = json_pack("{s:s, s:O, s:s?}", "query", q, "lines", c->loki_lines, "note",
		                 c->loki_note[0] ? c->loki_note : NULL);
	}
	prom = pb_prometheus(c->prometheus, c->grafana);
	/* only what the caller recalled within its scope: OpenMemory's raw
	 * matches hold other repositories' (other owners') records */
	if (in->history)
		history = json_incref((json_t *)in->history);

	pc.event = ev;
	pc.agent = in->agent ? in->agent : v->agent;
	pc.failure_type = in->failure_type ? in->failure_type : v->failure_type;
	if (in->failure_type && strcmp(in->failure_type, v->failure_type) != 0) {
		pc.category = hl_classify_type_category(in->failure_type);
		pc.fix_approach = hl_classify_type_fix_approach(in->failure_type);
	} else {
		pc.category = v->category;
		pc.fix_approach = v->fix_approach;
	}
	pc.rule = v->rule;
	pc.evidence_line_number = (int64_t)v->evidence_line_number;
	pc.evidence_line = v->evidence_line;
	pc.evidence_reason = v->evidence_reason;
	pc.confidence = v->confidence;
	pc.log = c->log.len ? c->log.data : NULL;
	pc.log_len = c->log.len;
	pc.pr_number = ev->pr_number;
	if (c->pr) {
		pc.pr_number = hl_json_int(c->pr, "number", ev->pr_number);
		pc.pr_title = hl_json_str(c->pr, "title");
		pc.pr_url = hl_json_str(c->pr, "html_url");
		pc.pr_head_ref = hl_json_str(c->pr, "head.ref");
		pc.pr_base_ref = hl_json_str(c->pr, "base.ref");
		pc.pr_body = hl_json_str(c->pr, "body");
		pc.pr_author = hl_json_str(c->pr, "user.login");
	} else if (ev->pr_title) {
		pc.pr_title = ev->pr_title;
	}
	pc.files = files;
	pc.n_files = nfiles;
	pc.n_files_total = c->changed_files_total;
	pc.argocd = c->argocd;
	pc.kubernetes = kube;
	pc.loki = loki;
	pc.prometheus = prom;
	pc.history = history;
	pc.attempt = in->attempt;
	pc.max_attempts = in->max_attempts;
	pc.attempts = in->previous;
	pc.n_attempts = in->n_previous;
	pc.ci_status = in->ci_status;
	pc.commits = c->commits;
	/* why it failed: the agent's own output when its pod's log could be
	 * read, else what its CodeRun reported */
	pc.failure_output = c->agent_output.len ? c->agent_output.data : in->failure_output;
	pc.missing = missing;
	pc.n_missing = nmissing;
	pc.target_branch = in->target_branch;
	pc.task_id = in->task_id;
	if (in->template) {
		json_t *data = hl_prompt_data_build(&pc);
		rc = data ? hl_prompt_render(out, b->set, in->template, data, 0, err)
		          : hl_err_set(err, HL_ENOMEM, "out of memory");
		json_decref(data);
	} else {
		rc = hl_prompt_render_for_agent(out, b->set, pc.agent, &pc, err);
	}
	if (rc == 0) {
		/* any text from outside (a PR body, Loki lines, events) may quote
		 * one of healer's own credentials or a URL's: never in a prompt */
		char *clean = hl_log_redact(*out);

		free(*out);
		*out = clean;
		if (!clean)
			rc = hl_err_set(err, HL_ENOMEM, "out of memory");
	}
	json_decref(kube);
	json_decref(loki);
	json_decref(prom);
	json_decref(history);
	free(files);
	return rc;
}
