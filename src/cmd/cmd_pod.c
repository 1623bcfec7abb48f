/*
 * cmd_pod.c - the pod-failure flow (contract section 8):
 *
 *  healer fetch-logs --pod-name P --namespace N --output-dir D [--tail N]
 *      talks to the Kubernetes API directly (no kubectl) and writes
 *      P-current.log, P-previous.log (only when a container has a previous
 *      instance), P-events.yaml and P-describe.txt through
 *      hl_diag_fetch_pod (src/diag), and prints their paths (P: the
 *      pod's file stem, hl_diag_file_stem, shortened for names over 242
 *      bytes). Exit 0 when at least one of current/events/describe was
 *      written, naming on stderr what could not be fetched; exit 1
 *      otherwise.
 *
 *  healer spawn-remediation --alert A --task-id T --issue-file F [--target-pod P
 *                           [--target-namespace N]]
 *      builds the heal CodeRun (prompt = the issue file; template
 *      HEALER_HEAL_TEMPLATE, heal/claude by default, whatever HEALER_CLI
 *      says for CI runs) and dispatches it per HEALER_DISPATCH, refusing while a CodeRun for the
 * same alert and target pod is Pending/Running or has no phase yet (label selector
 *      "remediation=true,alert-type=A,target-pod=P", P as
 *      hl_coderun_label_id makes it: pods sharing their first 63
 *      characters stay apart; with --target-namespace, a run labelled
 *      for another namespace's pod of the name does not count (one
 *      without the label does); without --target-pod, "...,!target-pod",
 *      so pod-less runs of one alert are deduplicated too). kubernetes mode
 *      prints the created name, directory mode the file written, none mode
 *      the manifest.
 *
 *  healer heal fetch-logs ... | healer heal spawn-remediation ...
 *      the seed's names for the two (`heal fetch-logs` when the binary is
 *      installed or linked as `heal`: the command table finds them).
 *
 * This file only handles arguments and output; the work is in src/diag and
 * src/dispatch.
 */
#include "base/buf.h"
#include "base/file.h"
#include "base/str.h"
#include "cmd.h"
#include "config/config.h"
#include "diag/pod_diag.h"
#include "dispatch/coderun.h"
#include "dispatch/dispatch.h"
#include "net/kube.h"

#include "json/json.h"
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define POD_ISSUE_CAP (1u * 1024 * 1024)

/* ---- fetch-logs ---- */

/* The Kubernetes client, and *tail_out the lines of each log
 * HEALER_HEAL_LOG_TAIL keeps (0: all). */
static int
pod_load_kube(struct hl_kube **out, long *tail_out)
{
	struct hl_err err = HL_ERR_INIT;
	struct hl_config *cfg = NULL;
	int ret;

	if (hl_config_load(&cfg, NULL, NULL, 0, &err) < 0)
		return hl_cmd_fail("invalid configuration: %s", err.msg);
	*tail_out = cfg->heal_log_tail;
	ret = hl_kube_load(out, cfg->kubeconfig, &err);
	hl_config_free(cfg);
	if (ret < 0)
		return hl_cmd_fail("%s", err.msg);
	return 0;
}

int
hl_cmd_fetch_logs(int argc, char **argv)
{
	static const struct hl_opt opts[] = {
		{ "pod-name", true, 'p' }, { "namespace", true, 'n' }, { "output-dir", true, 'o' },
		{ "tail", true, 't' },     { NULL, false, 0 },
	};
	const char *pod = NULL, *ns = NULL, *dir = NULL, *arg;
	struct hl_err err = HL_ERR_INIT;
	struct hl_diag_report report;
	struct hl_kube *k = NULL;
	long tail = -1, cfg_tail = 0; /* -1: HEALER_HEAL_LOG_TAIL's */
	int idx = 1, opt, rc;
	size_t i;

	while ((opt = hl_cmd_getopt("fetch-logs", argc, argv, opts, &arg, &idx)) != -1) {
		long long n;

		switch (opt) {
		case '?':
			return 2;
		case 'p':
			pod = arg;
			break;
		case 'n':
			ns = arg;
			break;
		case 'o':
			dir = arg;
			break;
		case 't':
			if (!hl_cmd_parse_count(arg, 0, LONG_MAX, &n))
				return hl_cmd_usage_error("fetch-logs",
				                          "--tail '%s' must be a number >= 0", arg);
			tail = (long)n;
			break;
		}
	}
	if (idx < argc)
		return hl_cmd_usage_error("fetch-logs", "unexpected argument '%s'", argv[idx]);
	if (!pod || !*pod)
		return hl_cmd_usage_error("fetch-logs", "missing --pod-name");
	if (!ns || !*ns)
		return hl_cmd_usage_error("fetch-logs", "missing --namespace");
	if (!dir || !*dir)
		return hl_cmd_usage_error("fetch-logs", "missing --output-dir");
	if (!hl_diag_pod_name_valid(pod))
		return hl_cmd_usage_error("fetch-logs", "--pod-name '%.253s' is not a pod name",
		                          pod);
	if (!hl_diag_namespace_valid(ns))
		return hl_cmd_usage_error("fetch-logs", "--namespace '%.253s' is not a namespace",
		                          ns);
	if (hl_file_mkdirs(dir, &err) < 0)
		return hl_cmd_fail("output directory '%s': %s", dir, err.msg);
	if (pod_load_kube(&k, &cfg_tail) != 0)
		return 1;
	if (tail < 0)
		tail = cfg_tail;
	rc = hl_diag_fetch_pod(&report, k, ns, pod, dir, tail, &err);
	for (i = 0; i < report.nproblems; i++)
		fprintf(stderr, "healer: %s\n", report.problems[i]);
	if (rc == 0) {
		printf("wrote diagnostics for pod '%s' to '%s'\n", pod, dir);
		/* a pod name over HL_DIAG_STEM_MAX names its files by a shorter
		 * stem: say which files they are */
		for (i = 0; i < HL_DIAG_NFILES; i++)
			if (report.path[i])
				printf("  %s\n", report.path[i]);
	} else {
		hl_cmd_fail("%s", err.msg);
		rc = 1;
	}
	hl_diag_report_release(&report);
	hl_kube_free(k);
	return rc;
}

/* ---- spawn-remediation ---- */

static bool
pod_task_id_valid(const char *id)
{
	size_t n = strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-");

	return n > 0 && n <= 96 && !id[n];
}

/* An alert type as the CodeRun's alert-type label carries it unchanged
 * (a Kubernetes label value: 1 to 63 of A-Z, a-z, 0-9, '.', '_' and '-',
 * alphanumeric at both ends), so two alerts never share a label and the
 * value is safe in HEAL_LOG_FILE's path. */
static bool
pod_alert_valid(const char *alert)
{
	size_t n = strspn(alert, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-");

	return n > 0 && n <= 63 && !alert[n] && isalnum((unsigned char)alert[0]) &&
	       isalnum((unsigned char)alert[n - 1]);
}

/* path as an absolute path: the working directory before a relative one
 * (links are kept: /workspace/watch/... must stay as written). */
static int
pod_absolute(struct hl_buf *out, const char *path)
{
	char cwd[4096];

	if (path[0] != '/') {
		if (!getcwd(cwd, sizeof(cwd)))
			return -1;
		hl_buf_append_str(out, cwd);
		if (!out->len || out->data[out->len - 1] != '/')
			hl_buf_append_char(out, '/');
		while (path[0] == '.' && path[1] == '/')
			path += 2;
	}
	hl_buf_append_str(out, path);
	if (hl_buf_error(out)) {
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

int
hl_cmd_spawn_remediation(int argc, char **argv)
{
	static const struct hl_opt opts[] = {
		{ "alert", true, 'a' },
		{ "task-id", true, 't' },
		{ "issue-file", true, 'i' },
		{ "target-pod", true, 'p' },
		{ "target-namespace", true, 'n' },
		{ NULL, false, 0 },
	};
	const char *alert = NULL, *task = NULL, *issue = NULL, *target = NULL, *tns = NULL, *arg;
	struct hl_err err = HL_ERR_INIT;
	struct hl_config *cfg = NULL;
	struct hl_dispatch *d = NULL;
	struct hl_buf prompt = HL_BUF_INIT(POD_ISSUE_CAP), sel = HL_BUF_INIT(0);
	struct hl_buf issue_abs = HL_BUF_INIT(0);
	struct hl_heal_spec hs;
	enum hl_dispatch_outcome outcome;
	json_t *manifest = NULL, *active = NULL;
	char name[64], la[64], lp[64];
	struct stat st;
	int idx = 1, opt, rc = 1;

	while ((opt = hl_cmd_getopt("spawn-remediation", argc, argv, opts, &arg, &idx)) != -1) {
		switch (opt) {
		case '?':
			return 2;
		case 'a':
			alert = arg;
			break;
		case 't':
			task = arg;
			break;
		case 'i':
			issue = arg;
			break;
		case 'p':
			target = arg;
			break;
		case 'n':
			tns = arg;
			break;
		}
	}
	if (idx < argc)
		return hl_cmd_usage_error("spawn-remediation", "unexpected argument '%s'",
		                          argv[idx]);
	if (!alert || !*alert)
		return hl_cmd_usage_error("spawn-remediation", "missing --alert");
	if (!task || !*task)
		return hl_cmd_usage_error("spawn-remediation", "missing --task-id");
	if (!issue || !*issue)
		return hl_cmd_usage_error("spawn-remediation", "missing --issue-file");
	/* the names the CodeRun and its selectors carry: a pod name as
	 * fetch-logs takes it, a task id as the prompt data keeps it */
	if (target && *target && !hl_diag_pod_name_valid(target))
		return hl_cmd_usage_error("spawn-remediation",
		                          "--target-pod '%.253s' is not a pod name", target);
	if (tns && *tns && !hl_diag_namespace_valid(tns))
		return hl_cmd_usage_error("spawn-remediation",
		                          "--target-namespace '%.253s' is not a namespace", tns);
	if (tns && *tns && !(target && *target))
		return hl_cmd_usage_error("spawn-remediation",
		                          "--target-namespace needs --target-pod");
	if (!pod_alert_valid(alert))
		return hl_cmd_usage_error("spawn-remediation",
		                          "--alert '%.100s' must be 1 to 63 of A-Z, a-z, 0-9, '.', "
		                          "'_' and '-', starting and ending with a letter or digit",
		                          alert);
	if (!pod_task_id_valid(task))
		return hl_cmd_usage_error("spawn-remediation",
		                          "--task-id '%.100s' must be 1 to 96 of A-Z, a-z, 0-9, "
		                          "'.', '_' and '-'",
		                          task);
	if (stat(issue, &st) < 0)
		return hl_cmd_fail("issue file '%s': %s", issue, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return hl_cmd_fail("issue file '%s' is %s, not a file", issue,
		                   S_ISDIR(st.st_mode) ? "a directory"
		                                       : "a device or special file");
	if (pod_absolute(&issue_abs, issue) < 0) {
		hl_buf_release(&issue_abs);
		return hl_cmd_fail("issue file '%s': cannot name it absolutely: %s", issue,
		                   strerror(errno));
	}
	issue = issue_abs.data; /* the CodeRun's pod has another working directory */
	if (hl_file_read(&prompt, issue, &err) < 0) {
		rc = hl_cmd_fail("issue file '%s': %s", issue, err.msg); /* before the release */
		hl_buf_release(&prompt);
		hl_buf_release(&issue_abs);
		return rc;
	}
	if (hl_config_load(&cfg, NULL, NULL, 0, &err) < 0) {
		rc = hl_cmd_fail("invalid configuration: %s", err.msg);
		goto out;
	}
	/* no built-in repository: the heal runs' own, else the allowlist's first */
	if (!(cfg->heal_repository && *cfg->heal_repository) && !cfg->repository_list) {
		rc = hl_cmd_fail("no repository for the remediation CodeRun: set "
		                 "HEALER_HEAL_REPOSITORY (owner/repo) or HEALER_REPOSITORIES");
		goto out;
	}
	if (hl_dispatch_open(&d, cfg, &err) < 0) {
		rc = hl_cmd_fail("%s", err.msg);
		goto out;
	}

	/* one active remediation per alert and target pod */
	hl_str_label_value(la, alert);
	hl_buf_appendf(&sel, "remediation=true,alert-type=%s", la);
	if (target && *target) {
		hl_coderun_label_id(lp, target);
		hl_buf_appendf(&sel, ",target-pod=%s", lp);
	} else {
		hl_buf_append_str(&sel, ",!target-pod");
	}
	if (hl_dispatch_find_active(d, &active, sel.data, &err) < 0) {
		rc = hl_cmd_fail("checking for an active remediation: %s", err.msg);
		goto out;
	}
	if (tns && *tns) {
		/* another namespace's pod of the name has its own run */
		size_t i = json_array_size(active);

		while (i-- > 0) {
			const char *ns = json_string_value(json_object_get(
			        hl_json_path(json_array_get(active, i), "metadata.labels"),
			        "target-namespace"));
			if (ns && strcmp(ns, tns) != 0)
				json_array_remove(active, i);
		}
	}
	if (json_array_size(active) > 0) {
		json_t *a = json_array_get(active, 0);

		rc = hl_cmd_fail("remediation CodeRun '%s' for alert '%s'%s%s is still %s; not "
		                 "creating another",
		                 hl_json_str_or(a, "metadata.name", "?"), alert,
		                 target && *target ? " and pod " : "", target ? target : "",
		                 hl_json_str_or(a, "status.phase", "Pending")[0]
		                         ? hl_json_str_or(a, "status.phase", "Pending")
		                         : "Pending");
		goto out;
	}

	memset(&hs, 0, sizeof(hs));
	hs.alert = alert;
	hs.task_id = task;
	hs.issue_file = issue;
	hs.prompt = prompt.data;
	hs.prompt_len = prompt.len; /* a NUL byte in the file does not end it */
	hs.target_pod = target;
	hs.target_namespace = tns;
	hs.repository = cfg->heal_repository && *cfg->heal_repository ? cfg->heal_repository
	                                                              : cfg->repository_list[0];
	hs.cli = cfg->cli;
	hs.template = cfg->heal_template; /* heal/claude: the seed's Rex remediation */
	hs.model = cfg->model;
	hs.namespace = cfg->namespace;
	if (hl_coderun_build_heal(&manifest, &hs, &err) < 0) {
		rc = hl_cmd_fail("%s", err.msg);
		goto out;
	}
	if (hl_dispatch_submit(d, &outcome, name, manifest, &err) < 0) {
		rc = hl_cmd_fail("creating the remediation CodeRun: %s", err.msg);
		goto out;
	}
	switch (outcome) {
	case HL_DISPATCH_DRY_RUN: {
		char *text = hl_json_dump_sorted(manifest, true);

		printf("%s\n", text ? text : "{}");
		free(text);
		fprintf(stderr, "healer: dispatch is 'none': CodeRun '%s' not created\n", name);
		break;
	}
	case HL_DISPATCH_EXISTING:
		printf("coderun %s already exists\n", name);
		break;
	case HL_DISPATCH_CREATED:
		if (d->mode == HL_DISPATCH_DIRECTORY)
			printf("coderun %s written to %s/%s.json\n", name, d->dir, name);
		else
			printf("coderun %s created in namespace %s\n", name, d->namespace);
		break;
	}
	rc = 0;
out:
	json_decref(manifest);
	json_decref(active);
	hl_buf_release(&prompt);
	hl_buf_release(&sel);
	hl_buf_release(&issue_abs);
	hl_dispatch_close(d);
	hl_config_free(cfg);
	return rc;
}

/* ---- heal: the seed's names ---- */

int
hl_cmd_heal(int argc, char **argv)
{
	if (argc < 2)
		return hl_cmd_usage_error("heal",
		                          "missing command (fetch-logs or spawn-remediation)");
	if (strcmp(argv[1], "fetch-logs") == 0)
		return hl_cmd_fetch_logs(argc - 1, argv + 1);
	if (strcmp(argv[1], "spawn-remediation") == 0)
		return hl_cmd_spawn_remediation(argc - 1, argv + 1);
	return hl_cmd_usage_error("heal", "unknown heal command '%s'", argv[1]);
}
