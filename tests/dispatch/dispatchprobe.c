/*
 * dispatchprobe.c - a test-only command line over the dispatch library
 * (src/dispatch), driven by the Python integration tests against the
 * Kubernetes stub. Prints one JSON document on stdout; a library error
 * prints {"error": name, "message": text} and exits 1.
 *
 *   dispatchprobe MODE DIR NS submit-ci (< spec) | submit (< manifest) |
 *                 find-active SEL | set-status NAME PHASE
 *                 (MODE kubernetes|directory|none; KUBECONFIG from the env)
 */
#include "base/buf.h"
#include "base/file.h"
#include "dispatch/coderun.h"
#include "dispatch/dispatch.h"
#include "net/fetch.h"
#include "net/kube.h"

#include "json/json.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
probe_fail(const struct hl_err *err)
{
	json_t *o = json_pack("{s:s, s:s}", "error", hl_err_name(err->code), "message", err->msg);
	char *s = json_dumps(o, JSON_COMPACT);

	printf("%s\n", s);
	free(s);
	json_decref(o);
	return 1;
}

static int
probe_print(json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

	printf("%s\n", s ? s : "null");
	free(s);
	json_decref(v);
	return 0;
}

static json_t *
probe_stdin_json(void)
{
	struct hl_buf b = HL_BUF_INIT(0);
	struct hl_err err = HL_ERR_INIT;
	json_t *v = NULL;

	if (hl_file_read(&b, "-", &err) < 0 || hl_json_parse(&v, b.data, b.len, &err) < 0) {
		fprintf(stderr, "netprobe: stdin: %s\n", err.msg);
		v = NULL;
	}
	hl_buf_release(&b);
	return v;
}

static int
probe_dispatch(int argc, char **argv)
{
	struct hl_err err = HL_ERR_INIT;
	struct hl_dispatch *d = NULL;
	struct hl_kube *k = NULL;
	enum hl_dispatch_mode mode;
	json_t *v = NULL;
	const char *op;
	int ret = 0;

	if (argc < 4) {
		fprintf(stderr, "dispatchprobe: bad arguments\n");
		return 2;
	}
	op = argv[3];
	mode = strcmp(argv[0], "kubernetes") == 0  ? HL_DISPATCH_KUBERNETES
	       : strcmp(argv[0], "directory") == 0 ? HL_DISPATCH_DIRECTORY
	                                           : HL_DISPATCH_NONE;
	if (mode == HL_DISPATCH_KUBERNETES && hl_kube_load(&k, getenv("KUBECONFIG"), &err) < 0)
		return probe_fail(&err);
	if (hl_dispatch_open_with(&d, mode, argv[1], argv[2], k, &err) < 0)
		return probe_fail(&err);
	if (strcmp(op, "submit-ci") == 0 || strcmp(op, "submit") == 0) {
		json_t *in = probe_stdin_json(), *m = NULL;
		enum hl_dispatch_outcome o;
		char name[64];

		if (strcmp(op, "submit") == 0) {
			m = json_incref(in);
		} else {
			struct hl_coderun_spec s;

			memset(&s, 0, sizeof(s));
			s.agent = hl_json_str(in, "agent");
			s.failure_type = hl_json_str(in, "failure_type");
			s.repository = hl_json_str(in, "repository");
			s.branch = hl_json_str(in, "branch");
			s.head_sha = hl_json_str(in, "head_sha");
			s.pr_head_ref = hl_json_str(in, "pr_head_ref");
			s.pr_number = hl_json_int(in, "pr_number", 0);
			s.workflow_run_id = hl_json_int(in, "workflow_run_id", 0);
			s.task_id = hl_json_str(in, "task_id");
			s.attempt = (int)hl_json_int(in, "attempt", 1);
			s.dedup_key = hl_json_str(in, "dedup_key");
			s.prompt = hl_json_str(in, "prompt");
			s.cli = "Factory";
			s.model = "claude-opus-4-5-20250929";
			s.namespace = argv[2];
			ret = hl_coderun_build(&m, &s, &err);
		}
		if (ret == 0)
			ret = hl_dispatch_submit(d, &o, name, m, &err);
		if (ret == 0)
			v = json_pack("{s:s, s:s}", "outcome", hl_dispatch_outcome_name(o), "name",
			              name);
		json_decref(m);
		json_decref(in);
	} else if (strcmp(op, "find-active") == 0 && argc == 5) {
		json_t *arr = NULL, *it;
		size_t i;

		ret = hl_dispatch_find_active(d, &arr, argv[4], &err);
		if (ret == 0) {
			v = json_array();
			json_array_foreach(arr, i, it) json_array_append_new(
			        v, json_string(hl_json_str_or(it, "metadata.name", "")));
		}
		json_decref(arr);
	} else if (strcmp(op, "set-status") == 0 && argc == 6) {
		ret = hl_dispatch_set_status(d, argv[4], argv[5], NULL, &err);
		if (ret == 0)
			v = json_pack("{s:b}", "ok", 1);
	} else {
		fprintf(stderr, "dispatchprobe: bad arguments\n");
		hl_dispatch_close(d);
		return 2;
	}
	hl_dispatch_close(d);
	if (ret < 0)
		return probe_fail(&err);
	return probe_print(v);
}

int
main(int argc, char **argv)
{
	hl_fetch_global_init();
	return probe_dispatch(argc - 1, argv + 1);
}
