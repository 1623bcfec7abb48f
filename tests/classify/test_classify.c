/*
 * test_classify.c - unit tests of the classifier (src/classify): log
 * preprocessing, scoring (later evidence, root cause over workflow names,
 * events, ArgoCD status, log evidence over any context), evidence lines,
 * confidence and evidence reasons, the default verdict, rules validation
 * messages, large and hostile logs, reading a log file like a log in
 * memory, concurrency, --explain and the retry helpers (runner-up and
 * alternate agent).
 * (cmocka.h comes after setjmp.h, stdarg.h and stddef.h.)
 */
// clang-format off
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>
// clang-format on

#include "base/buf.h"
#include "classify/classify.h"
#include "classify/classify_int.h"

static struct hl_classifier *builtin;

static int
setup(void **state)
{
	struct hl_err err = HL_ERR_INIT;
	(void)state;
	if (hl_classifier_new(&builtin, NULL, &err) != 0) {
		fprintf(stderr, "# %s\n", err.msg);
		return -1;
	}
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	hl_classifier_free(builtin);
	return 0;
}

/* Classifies with the built-in rules; fails the test on error. */
static void
classify(struct hl_verdict *v, const char *workflow, const char *job, const char *step,
         const char *log, const char *const *files, size_t n_files)
{
	struct hl_classify_input in;
	struct hl_err err = HL_ERR_INIT;

	memset(&in, 0, sizeof(in));
	in.event = "workflow_job";
	in.workflow_name = workflow;
	in.job_name = job;
	in.failed_step = step;
	in.log = log;
	in.log_len = log ? strlen(log) : 0;
	in.changed_files = files;
	in.n_changed = n_files;
	assert_int_equal(hl_classify(v, builtin, &in, &err), 0);
}

/* cl_timestamp_len a byte at a time, as the format says. */
static size_t
timestamp_len_ref(const char *p, size_t n)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd";
	size_t i;

	if (n < 20)
		return 0;
	for (i = 0; i < 19; i++)
		if (shape[i] == 'd' ? (p[i] < '0' || p[i] > '9') : p[i] != shape[i])
			return 0;
	if (p[i] == '.') {
		i++;
		while (i < n && i < 40 && p[i] >= '0' && p[i] <= '9')
			i++;
	}
	if (i < n && p[i] == 'Z')
		i++;
	else if (i + 6 <= n && (p[i] == '+' || p[i] == '-') && p[i + 3] == ':' && p[i + 1] >= '0' &&
	         p[i + 1] <= '9' && p[i + 5] >= '0' && p[i + 5] <= '9')
		i += 6;
	else
		return 0;
	if (i < n && p[i] == ' ')
		i++;
	return i;
}

static void
test_classify_timestamp_fractions_of_any_length(void **state)
{
	static const char *const ends[] = { "Z x", "+02:00 x", "x", "Z", ".5Z " };
	char line[96];
	(void)state;
	for (size_t digits = 0; digits <= 24; digits++) {
		for (size_t e = 0; e < sizeof(ends) / sizeof(ends[0]); e++) {
			size_t len = 0;
			memset(line, 'x', sizeof(line));
			memcpy(line, "2024-01-15T10:30:00", 19);
			len = 19;
			if (digits > 0 || e == 4)
				line[len++] = '.';
			for (size_t d = 0; d < digits; d++)
				line[len++] = (char)('0' + (d * 7) % 10);
			memcpy(line + len, ends[e], strlen(ends[e]));
			len += strlen(ends[e]);
			for (size_t n = 0; n <= len; n++)
				if (cl_timestamp_len(line, n) != timestamp_len_ref(line, n))
					fail_msg("%zu digits, end %zu, n %zu: %zu, expected %zu",
					         digits, e, n, cl_timestamp_len(line, n),
					         timestamp_len_ref(line, n));
		}
	}
}

static void
test_classify_preprocessing_strips_timestamps_ansi_and_groups(void **state)
{
	struct hl_verdict v;
	const char *log = "2024-01-15T10:30:00.1234567Z ##[group]Run cargo build\n"
	                  "2024-01-15T10:30:01.1234567Z    Compiling app v0.1.0\n"
	                  "2024-01-15T10:30:02.1234567Z ##[endgroup]\n"
	                  "2024-01-15T10:30:03.1234567Z \x1b[0m\x1b[1m\x1b[38;5;9merror[E0308]"
	                  "\x1b[0m\x1b[0m\x1b[1m: mismatched types\x1b[0m\n"
	                  "2024-01-15T10:30:03.2234567Z   --> src/main.rs:4:5\n";
	(void)state;
	classify(&v, "CI", "build", "cargo build", log, NULL, 0);
	assert_string_equal(v.agent, "rex");
	assert_string_equal(v.failure_type, "rust_build");
	assert_string_equal(v.rule, "rustc-error");
	assert_int_equal(v.evidence_line_number, 4);
	assert_string_equal(v.evidence_line, "error[E0308]: mismatched types");
	assert_int_equal(v.log_lines, 5);
	hl_verdict_release(&v);
}

static void
test_classify_boilerplate_is_ignored(void **state)
{
	struct hl_verdict v;
	const char *log = "Run npm ci\n"
	                  "npm ERR! code ERESOLVE\n"
	                  "npm ERR! ERESOLVE unable to resolve dependency tree\n"
	                  "##[error]Process completed with exit code 1.\n"
	                  "Error: Process completed with exit code 1.\n";
	(void)state;
	classify(&v, "CI", "build", "npm ci", log, NULL, 0);
	assert_string_equal(v.agent, "blaze");
	assert_string_equal(v.failure_type, "frontend_deps");
	assert_int_equal(v.evidence_line_number, 2);
	for (size_t i = 0; i < v.n_candidates; i++)
		assert_null(strstr(v.candidates[i].line, "Process completed"));
	hl_verdict_release(&v);
}

/* The exit-code lines of other CI systems say only that a step failed. */
static void
test_classify_ci_exit_wrappers_are_ignored(void **state)
{
	struct hl_verdict v;
	const char *log = "src/a.ts(3,5): error TS2322: Type 'string' is not assignable\n"
	                  "##[error]Bash exited with code '2'.\n"
	                  "##[error]Script failed with exit code: 2\n"
	                  "ERROR: script returned exit code 2\n"
	                  "ERROR: Job failed: exit code 2\n"
	                  "Exited with code exit status 2\n";
	(void)state;
	classify(&v, "CI", "build", "build", log, NULL, 0);
	assert_string_equal(v.failure_type, "frontend_typecheck");
	assert_int_equal(v.evidence_line_number, 1);
	for (size_t i = 0; i < v.n_candidates; i++)
		assert_int_equal(v.candidates[i].line_number, 1);
	hl_verdict_release(&v);

	/* nothing else: no log line supports a verdict, and the reason says so */
	classify(&v, "CI", "lint", "flake8",
	         "Script contents:\n##[error]Bash exited with code '1'.\n", NULL, 0);
	assert_int_equal(v.evidence_line_number, 0);
	assert_non_null(v.evidence_reason);
	hl_verdict_release(&v);

	/* ... except 137 and 143: the OOM killer's SIGKILL, the runner's SIGTERM */
	classify(&v, "CI", "build", "make", "compiling\nERROR: Job failed: exit code 137\n", NULL,
	         0);
	assert_string_equal(v.failure_type, "infra_runner");
	assert_int_equal(v.evidence_line_number, 2);
	hl_verdict_release(&v);
	classify(&v, "CI", "build", "cargo build",
	         "   Compiling app v0.1.0\nError: Process completed with exit code 143.\n", NULL,
	         0);
	assert_string_equal(v.failure_type, "infra_runner");
	assert_int_equal(v.evidence_line_number, 2);
	hl_verdict_release(&v);
}

/* Of errors that repeat, the first is quoted; a rule's quote patterns pick
 * the line to quote (a compiler's header over its notes) but never fire it. */
static void
test_classify_first_error_and_quote_patterns(void **state)
{
	static const char rules[] = "rules:\n"
	                            "- name: lint-note\n"
	                            "  type: rust_clippy\n"
	                            "  priority: 50\n"
	                            "  patterns: ['= note: lint denied']\n"
	                            "  quote: ['^error: ', '^warning: ']\n"
	                            "- name: repeated\n"
	                            "  type: rust_build\n"
	                            "  priority: 40\n"
	                            "  patterns: ['^oops [0-9]']\n";
	struct hl_classifier *c = NULL;
	struct hl_err err = HL_ERR_INIT;
	struct hl_classify_input in;
	struct hl_verdict v;
	(void)state;

	assert_int_equal(hl_classifier_new_from_text(&c, rules, sizeof(rules) - 1, "t.yaml", &err),
	                 0);
	memset(&in, 0, sizeof(in));
	in.log = "oops 1\nnoise\noops 2\noops 3\n";
	in.log_len = strlen(in.log);
	assert_int_equal(hl_classify(&v, c, &in, &err), 0);
	assert_string_equal(v.rule, "repeated");
	assert_int_equal(v.evidence_line_number, 1);
	assert_int_equal(v.candidates[0].matches, 3);
	hl_verdict_release(&v);

	in.log = "warning: w\nerror: first\n  |\n= note: lint denied\nerror: second\n"
	         "= note: lint denied\n";
	in.log_len = strlen(in.log);
	assert_int_equal(hl_classify(&v, c, &in, &err), 0);
	assert_string_equal(v.rule, "lint-note");
	assert_int_equal(v.evidence_line_number, 2);
	assert_string_equal(v.evidence_line, "error: first");
	hl_verdict_release(&v);

	/* a quote pattern alone fires nothing */
	in.log = "error: first\nwarning: w\n";
	in.log_len = strlen(in.log);
	assert_int_equal(hl_classify(&v, c, &in, &err), 0);
	assert_string_equal(v.rule, "default");
	hl_verdict_release(&v);
	hl_classifier_free(c);

	/* identical patterns of different rules are compiled once and share
	 * their results */
	{
		static const char shared[] = "rules:\n"
		                             "- name: one\n"
		                             "  type: helm\n"
		                             "  priority: 50\n"
		                             "  patterns: ['^boom [0-9]', 'other']\n"
		                             "- name: two\n"
		                             "  type: terraform\n"
		                             "  priority: 40\n"
		                             "  patterns: ['^boom [0-9]']\n";
		struct hl_classifier *c2 = NULL;
		assert_int_equal(hl_classifier_new_from_text(&c2, shared, sizeof(shared) - 1,
		                                             "t.yaml", &err),
		                 0);
		assert_int_equal(hl_classifier_pattern_count(c2) >= 3, 1);
		in.log = "boom 1\nnoise\nboom 2\n";
		in.log_len = strlen(in.log);
		assert_int_equal(hl_classify(&v, c2, &in, &err), 0);
		assert_string_equal(v.rule, "one");
		assert_int_equal(v.n_candidates, 2);
		assert_string_equal(v.candidates[1].rule, "two");
		assert_int_equal(v.candidates[1].matches, 2);
		assert_int_equal(v.candidates[1].line_number, 1);
		hl_verdict_release(&v);
		hl_classifier_free(c2);
	}

	/* with the built-in rules: clippy quotes the lint's header line */
	classify(&v, "CI", "lint", "cargo clippy",
	         "    Checking app v0.1.0\n"
	         "error: this `if` statement can be collapsed\n"
	         "  --> src/main.rs:3:5\n"
	         "   = help: for further information visit "
	         "https://rust-lang.github.io/rust-clippy/master/index.html#collapsible_if\n"
	         "   = note: `-D clippy::collapsible-if` implied by `-D warnings`\n"
	         "error: could not compile `app` (bin \"app\") due to 1 previous error\n",
	         NULL, 0);
	assert_string_equal(v.failure_type, "rust_clippy");
	assert_int_equal(v.evidence_line_number, 2);
	hl_verdict_release(&v);
}

static void
test_classify_later_evidence_wins(void **state)
{
	static const char rules[] = "rules:\n"
	                            "- name: first-family\n"
	                            "  type: frontend_lint\n"
	                            "  priority: 50\n"
	                            "  patterns: ['^alpha failed']\n"
	                            "- name: second-family\n"
	                            "  type: frontend_test\n"
	                            "  priority: 50\n"
	                            "  patterns: ['^beta failed']\n";
	struct hl_classifier *c = NULL;
	struct hl_err err = HL_ERR_INIT;
	struct hl_classify_input in;
	struct hl_verdict v;
	(void)state;

	assert_int_equal(hl_classifier_new_from_text(&c, rules, sizeof(rules) - 1, "t.yaml", &err),
	                 0);
	memset(&in, 0, sizeof(in));
	in.log = "beta failed\nnoise\nalpha failed\nnoise\n";
	in.log_len = strlen(in.log);
	assert_int_equal(hl_classify(&v, c, &in, &err), 0);
	assert_string_equal(v.rule, "first-family");
	assert_int_equal(v.evidence_line_number, 3);
	hl_verdict_release(&v);

	in.log = "alpha failed\nnoise\nbeta failed\nnoise\n";
	in.log_len = strlen(in.log);
	assert_int_equal(hl_classify(&v, c, &in, &err), 0);
	assert_string_equal(v.rule, "second-family");
	assert_int_equal(v.evidence_line_number, 3);
	hl_verdict_release(&v);
	hl_classifier_free(c);

	/* With the built-in rules: an early lint failure, a later test failure. */
	classify(&v, "CI", "check", "npm run check",
	         "src/a.js\n  1:1  error  Unexpected var  no-var\n\n"
	         "✖ 1 problem (1 error, 0 warnings)\n"
	         "... lint allowed to fail, tests run ...\n"
	         "Tests:       2 failed, 10 passed, 12 total\n",
	         NULL, 0);
	assert_string_equal(v.failure_type, "frontend_test");
	hl_verdict_release(&v);
}

static void
test_classify_root_cause_docker_login_in_rust_workflow_is_atlas(void **state)
{
	struct hl_verdict v;
	const char *files[] = { "src/main.rs", "Cargo.toml" };
	const char *log = "Run docker/login-action@v3\n"
	                  "Logging into ghcr.io...\n"
	                  "Error: Error response from daemon: Get \"https://ghcr.io/v2/\": denied: "
	                  "denied\n";
	(void)state;
	classify(&v, "Rust", "publish-image", "docker/login-action@v3", log, files, 2);
	assert_string_equal(v.agent, "atlas");
	assert_string_equal(v.failure_type, "github_permission");
	assert_int_equal(v.evidence_line_number, 3);
	hl_verdict_release(&v);
}

static void
test_classify_root_cause_tsc_through_docker_build_is_blaze(void **state)
{
	struct hl_verdict v;
	const char *log =
	        "#12 [build 5/6] RUN npm run build\n"
	        "#12 0.512 > web@1.0.0 build\n"
	        "#12 0.513 > tsc && vite build\n"
	        "#12 4.211 src/App.tsx(12,7): error TS2322: Type 'string' is not assignable to "
	        "type 'number'.\n"
	        "#12 ERROR: process \"/bin/sh -c npm run build\" did not complete successfully: "
	        "exit code: 2\n"
	        "------\n"
	        " > [build 5/6] RUN npm run build:\n"
	        "------\n"
	        "Dockerfile:9\n"
	        "ERROR: failed to solve: process \"/bin/sh -c npm run build\" did not complete "
	        "successfully: exit code: 2\n";
	(void)state;
	classify(&v, "docker-publish", "build", "docker/build-push-action@v5", log, NULL, 0);
	assert_string_equal(v.agent, "blaze");
	assert_string_equal(v.failure_type, "frontend_typecheck");
	assert_int_equal(v.evidence_line_number, 4);
	/* the BuildKit "#12 4.211 " prefix is gone from the evidence */
	assert_true(strncmp(v.evidence_line, "src/App.tsx(12,7): error TS2322", 31) == 0);
	hl_verdict_release(&v);
}

static void
test_classify_root_cause_disk_full_in_rust_build_is_bolt(void **state)
{
	struct hl_verdict v;
	const char *files[] = { "src/lib.rs", "src/main.rs" };
	const char *log = "   Compiling serde v1.0.190\n"
	                  "   Compiling tokio v1.33.0\n"
	                  "error: failed to write /home/runner/work/app/target/debug/deps/"
	                  "libtokio.rlib: No space left on device (os error 28)\n"
	                  "error: could not compile `tokio` (lib) due to 1 previous error\n";
	(void)state;
	classify(&v, "Rust", "build", "cargo build", log, files, 2);
	assert_string_equal(v.agent, "bolt");
	assert_string_equal(v.failure_type, "infra_runner");
	assert_int_equal(v.evidence_line_number, 3);
	hl_verdict_release(&v);
}

static void
test_classify_security_events_go_to_cipher(void **state)
{
	static const char *const map[][2] = {
		{ "dependabot_alert", "security_dependabot" },
		{ "code_scanning_alert", "security_code_scan" },
		{ "secret_scanning_alert", "security_secret" },
		{ "repository_vulnerability_alert", "security_dependabot" },
	};
	(void)state;
	for (size_t i = 0; i < 4; i++) {
		struct hl_classify_input in;
		struct hl_verdict v;
		struct hl_err err = HL_ERR_INIT;
		memset(&in, 0, sizeof(in));
		in.event = map[i][0];
		in.workflow_name = "Rust";
		/* even with a loud log of another family */
		in.log = "error[E0308]: mismatched types\n";
		in.log_len = strlen(in.log);
		assert_int_equal(hl_classify(&v, builtin, &in, &err), 0);
		assert_string_equal(v.agent, "cipher");
		assert_string_equal(v.category, "security");
		assert_string_equal(v.failure_type, map[i][1]);
		hl_verdict_release(&v);
	}
}

static void
test_classify_argocd_out_of_sync_goes_to_bolt(void **state)
{
	struct hl_classify_input in;
	struct hl_verdict v;
	struct hl_err err = HL_ERR_INIT;
	(void)state;

	memset(&in, 0, sizeof(in));
	in.event = "workflow_run";
	in.workflow_name = "deploy";
	in.argocd_sync = "OutOfSync";
	in.argocd_health = "Healthy";
	assert_int_equal(hl_classify(&v, builtin, &in, &err), 0);
	assert_string_equal(v.agent, "bolt");
	assert_string_equal(v.failure_type, "argocd_sync");
	hl_verdict_release(&v);

	in.argocd_sync = "Synced";
	in.argocd_health = "Degraded";
	assert_int_equal(hl_classify(&v, builtin, &in, &err), 0);
	assert_string_equal(v.agent, "bolt");
	hl_verdict_release(&v);

	/* Synced and healthy: no ArgoCD verdict. */
	in.argocd_health = "Healthy";
	assert_int_equal(hl_classify(&v, builtin, &in, &err), 0);
	assert_string_not_equal(v.failure_type, "argocd_sync");
	hl_verdict_release(&v);
}

static void
test_classify_evidence_line_number_and_text(void **state)
{
	struct hl_verdict v;
	const char *log = "line one\r\n"
	                  "\n"
	                  "2023-02-09T20:11:49.9484027Z CONFLICT (content): Merge conflict in "
	                  "west.yml\r\n"
	                  "hint: after resolving the conflicts\n"
	                  "last line without newline";
	(void)state;
	classify(&v, "Backport", "backport", "cherry-pick", log, NULL, 0);
	assert_string_equal(v.agent, "atlas");
	assert_string_equal(v.failure_type, "merge_conflict");
	assert_int_equal(v.evidence_line_number, 3);
	assert_string_equal(v.evidence_line, "CONFLICT (content): Merge conflict in west.yml");
	assert_int_equal(v.log_lines, 5);
	hl_verdict_release(&v);
}

static void
test_classify_nothing_matches_defaults_to_atlas_general(void **state)
{
	struct hl_verdict v;
	(void)state;
	classify(&v, NULL, NULL, NULL, NULL, NULL, 0);
	assert_string_equal(v.agent, "atlas");
	assert_string_equal(v.failure_type, "general");
	assert_string_equal(v.rule, "default");
	assert_int_equal(v.evidence_line_number, 0);
	assert_string_equal(v.evidence_line, "");
	hl_verdict_release(&v);

	classify(&v, "misc", "misc", "misc", "all good\nnothing to see\n", NULL, 0);
	assert_string_equal(v.agent, "atlas");
	assert_string_equal(v.failure_type, "general");
	hl_verdict_release(&v);
}

/* A full case for the context tests: every context field settable. */
struct ctx_case {
	const char *name;
	const char *log;
	const char *agent, *failure_type; /* the log's verdict */
	/* contradicting context */
	const char *workflow, *job, *step;
	const char *files[3];
	const char *argocd_sync, *argocd_health;
};

static void
classify_case(struct hl_verdict *v, const struct ctx_case *c, bool with_context)
{
	struct hl_classify_input in;
	struct hl_err err = HL_ERR_INIT;
	size_t n = 0;

	memset(&in, 0, sizeof(in));
	in.event = "workflow_job";
	in.log = c->log;
	in.log_len = strlen(c->log);
	if (with_context) {
		in.workflow_name = c->workflow;
		in.job_name = c->job;
		in.failed_step = c->step;
		while (n < 3 && c->files[n] != NULL)
			n++;
		in.changed_files = c->files;
		in.n_changed = n;
		in.argocd_sync = c->argocd_sync;
		in.argocd_health = c->argocd_health;
	}
	assert_int_equal(hl_classify(v, builtin, &in, &err), 0);
}

/* The ArgoCD status is context: a clippy failure while the application is
 * OutOfSync is still Rex's clippy failure, not Bolt's sync problem. */
static void
test_classify_clippy_while_argocd_out_of_sync_stays_rex(void **state)
{
	static const struct ctx_case c = {
		"clippy + OutOfSync",
		"    Checking app v0.3.1 (/home/runner/work/app/app)\n"
		"error: used `unwrap()` on a `Result` value\n"
		"  --> src/config.rs:27:19\n"
		"   = help: for further information visit "
		"https://rust-lang.github.io/rust-clippy/master/index.html#unwrap_used\n"
		"   = note: requested on the command line with `-D clippy::unwrap-used`\n"
		"error: could not compile `app` (lib) due to 1 previous error\n",
		"rex",
		"rust_clippy",
		"CI",
		"clippy",
		"cargo clippy --all-targets -- -D warnings",
		{ "src/config.rs", NULL, NULL },
		"OutOfSync",
		"Healthy",
	};
	struct hl_verdict v;
	(void)state;
	classify_case(&v, &c, true);
	assert_string_equal(v.agent, "rex");
	assert_string_equal(v.failure_type, "rust_clippy");
	/* the lint's header, not its "-D clippy::" note */
	assert_int_equal(v.evidence_line_number, 2);
	assert_string_equal(v.evidence_line, "error: used `unwrap()` on a `Result` value");
	hl_verdict_release(&v);
}

/* Log evidence decides; context (names, changed files, ArgoCD) that points
 * elsewhere never changes the verdict, whatever the strength of the line. */
static void
test_classify_context_never_outvotes_log_evidence(void **state)
{
	static const struct ctx_case cases[] = {
		{ "tsc error in a Rust-looking job",
		  "> tsc --noEmit\n"
		  "src/App.tsx(12,7): error TS2322: Type 'string' is not assignable to type "
		  "'number'.\n",
		  "blaze",
		  "frontend_typecheck",
		  "Rust CI",
		  "clippy",
		  "cargo clippy",
		  { "src/main.rs", "Cargo.toml", NULL },
		  "OutOfSync",
		  "Degraded" },
		{ "cargo test failure in a frontend job",
		  "running 3 tests\n"
		  "test parser::tests::empty ... FAILED\n"
		  "test result: FAILED. 2 passed; 1 failed; 0 ignored\n",
		  "rex",
		  "rust_test",
		  "frontend",
		  "web-ui",
		  "npm test",
		  { "web/src/App.tsx", "package.json", NULL },
		  "OutOfSync",
		  NULL },
		{ "helm failure in an eslint job",
		  "Error: UPGRADE FAILED: timed out waiting for the condition\n",
		  "bolt",
		  "helm",
		  "frontend",
		  "eslint",
		  "npm run lint",
		  { "package.json", "src/a.ts", NULL },
		  NULL,
		  NULL },
		{ "merge conflict while ArgoCD is degraded",
		  "Auto-merging west.yml\n"
		  "CONFLICT (content): Merge conflict in west.yml\n",
		  "atlas",
		  "merge_conflict",
		  "terraform",
		  "tf-plan",
		  "terraform plan",
		  { "infra/main.tf", NULL, NULL },
		  "OutOfSync",
		  "Degraded" },
		{ "npm resolution failure in a cargo step",
		  "npm ERR! code ERESOLVE\n"
		  "npm ERR! ERESOLVE unable to resolve dependency tree\n",
		  "blaze",
		  "frontend_deps",
		  "rust",
		  "cargo-build",
		  "cargo build --release",
		  { "Cargo.lock", "src/lib.rs", NULL },
		  "Unknown",
		  "Missing" },
		{ "a plain error line against every name",
		  "Run ./scripts/check.sh\n"
		  "Error: the generated schema is out of date\n",
		  "atlas",
		  "general",
		  "rust-clippy",
		  "clippy",
		  "cargo clippy",
		  { "src/main.rs", "src/lib.rs", NULL },
		  "OutOfSync",
		  NULL },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct hl_verdict bare, ctx;
		classify_case(&bare, &cases[i], false);
		classify_case(&ctx, &cases[i], true);
		if (strcmp(bare.agent, cases[i].agent) != 0 ||
		    strcmp(bare.failure_type, cases[i].failure_type) != 0 ||
		    strcmp(ctx.agent, cases[i].agent) != 0 ||
		    strcmp(ctx.failure_type, cases[i].failure_type) != 0)
			fail_msg("%s: log alone %s/%s, with context %s/%s (rule %s), want %s/%s",
			         cases[i].name, bare.agent, bare.failure_type, ctx.agent,
			         ctx.failure_type, ctx.rule, cases[i].agent, cases[i].failure_type);
		assert_string_equal(bare.rule, ctx.rule);
		assert_int_equal(bare.evidence_line_number, ctx.evidence_line_number);
		hl_verdict_release(&bare);
		hl_verdict_release(&ctx);
	}
}

/* Among log evidence, names and files only break ties: they never lift a
 * weaker rule over a stronger one. */
static void
test_classify_context_only_breaks_ties(void **state)
{
	static const char rules[] = "rules:\n"
	                            "- name: lint-boom\n"
	                            "  type: frontend_lint\n"
	                            "  priority: 50\n"
	                            "  patterns: ['^boom']\n"
	                            "- name: test-boom\n"
	                            "  type: rust_test\n"
	                            "  priority: 50\n"
	                            "  job: ['*test*']\n"
	                            "  patterns: ['^boom']\n"
	                            "- name: weaker-with-names\n"
	                            "  type: rust_build\n"
	                            "  priority: 45\n"
	                            "  job: ['*build*']\n"
	                            "  files: ['*.rs']\n"
	                            "  patterns: ['^bang']\n"
	                            "- name: stronger-bare\n"
	                            "  type: helm\n"
	                            "  priority: 55\n"
	                            "  patterns: ['^bang']\n";
	const char *files[] = { "src/main.rs" };
	struct hl_classifier *c = NULL;
	struct hl_err err = HL_ERR_INIT;
	struct hl_classify_input in;
	struct hl_verdict v;
	(void)state;

	assert_int_equal(hl_classifier_new_from_text(&c, rules, sizeof(rules) - 1, "t.yaml", &err),
	                 0);
	memset(&in, 0, sizeof(in));
	in.log = "boom\n";
	in.log_len = strlen(in.log);
	/* a tie: file order without context ... */
	assert_int_equal(hl_classify(&v, c, &in, &err), 0);
	assert_string_equal(v.rule, "lint-boom");
	assert_true(v.confidence < 0.5); /* a tie between two agents */
	hl_verdict_release(&v);
	/* ... and the job name tips it */
	in.job_name = "unit-test";
	assert_int_equal(hl_classify(&v, c, &in, &err), 0);
	assert_string_equal(v.rule, "test-boom");
	assert_string_equal(v.agent, "rex");
	assert_string_equal(hl_verdict_runner_up_agent(&v), "blaze");
	hl_verdict_release(&v);

	/* 12 + 10 points of names and files do not beat 10 of priority */
	in.log = "bang\n";
	in.log_len = strlen(in.log);
	in.job_name = "build";
	in.changed_files = files;
	in.n_changed = 1;
	assert_int_equal(hl_classify(&v, c, &in, &err), 0);
	assert_string_equal(v.rule, "stronger-bare");
	hl_verdict_release(&v);
	hl_classifier_free(c);
}

static bool clean_utf8(const char *s);

/* Classifies a full input with the built-in rules. */
static void
classify_input(struct hl_verdict *v, const char *event, const char *job, const char *log,
               const char *argocd_sync, const char *const *files, size_t n_files)
{
	struct hl_classify_input in;
	struct hl_err err = HL_ERR_INIT;

	memset(&in, 0, sizeof(in));
	in.event = event;
	in.job_name = job;
	in.log = log;
	in.log_len = log ? strlen(log) : 0;
	in.argocd_sync = argocd_sync;
	in.changed_files = files;
	in.n_changed = n_files;
	assert_int_equal(hl_classify(v, builtin, &in, &err), 0);
}

/* Every verdict has a confidence and evidence; without a supporting log
 * line the evidence says why, routes by what, and quotes the last
 * error-looking line. */
static void
test_classify_confidence_and_evidence_reason(void **state)
{
	const char *rs[] = { "src/a.rs", "src/b.rs" };
	struct hl_verdict strong, v;
	(void)state;

	/* a tool's own error line: supported by the log, confident */
	classify_input(&strong, "workflow_job", "build",
	               "> tsc --noEmit\nsrc/App.tsx(3,1): error TS2304: Cannot find name 'x'.\n",
	               NULL, NULL, 0);
	assert_string_equal(strong.failure_type, "frontend_typecheck");
	assert_int_equal(strong.evidence, HL_CLASSIFY_EVIDENCE_LOG);
	assert_null(strong.evidence_reason);
	assert_int_equal(strong.evidence_line_number, 2);
	assert_true(strong.confidence >= 0.7 && strong.confidence < 1.0);

	/* routed by the job name only: the reason says so, the quoted line is
	 * the last error-looking one, and confidence is low */
	classify_input(&v, "workflow_job", "eslint",
	               "Running lint\nsrc/a.js: 3 problems\nlint exited with code 1\nCleaning up\n",
	               NULL, NULL, 0);
	assert_string_equal(v.agent, "blaze");
	assert_string_equal(v.failure_type, "frontend_lint");
	assert_int_equal(v.evidence, HL_CLASSIFY_EVIDENCE_CONTEXT);
	assert_string_equal(v.evidence_reason, "no_matching_line: routed by job name 'eslint'");
	assert_int_equal(v.evidence_line_number, 3);
	assert_string_equal(v.evidence_line, "lint exited with code 1");
	assert_true(v.confidence > 0 && v.confidence <= 0.4);
	assert_true(v.confidence < strong.confidence);
	hl_verdict_release(&v);
	hl_verdict_release(&strong);

	/* no log at all */
	classify_input(&v, "workflow_run", NULL, NULL, "OutOfSync", NULL, 0);
	assert_string_equal(v.failure_type, "argocd_sync");
	assert_string_equal(v.evidence_reason, "no_log: routed by ArgoCD sync status 'OutOfSync'");
	assert_int_equal(v.evidence_line_number, 0);
	assert_string_equal(v.evidence_line, "");
	assert_true(v.confidence <= 0.4);
	hl_verdict_release(&v);

	classify_input(&v, "workflow_job", NULL, NULL, NULL, rs, 2);
	assert_string_equal(v.agent, "rex");
	assert_string_equal(v.evidence_reason, "no_log: routed by changed files (2 of 2)");
	assert_true(v.confidence <= 0.4);
	hl_verdict_release(&v);

	/* an alert: the event is the failure, confidently */
	classify_input(&v, "dependabot_alert", NULL, NULL, NULL, NULL, 0);
	assert_int_equal(v.evidence, HL_CLASSIFY_EVIDENCE_EVENT);
	assert_string_equal(v.evidence_reason, "alert_event: routed by event 'dependabot_alert'");
	assert_true(v.confidence >= 0.9);
	hl_verdict_release(&v);

	/* names from outside are made printable in the reason */
	classify_input(&v, "workflow_job", "eslint\x1b[31m\n\x7f", "nothing here\n", NULL, NULL, 0);
	assert_non_null(v.evidence_reason);
	assert_true(clean_utf8(v.evidence_reason));
	assert_non_null(strstr(v.evidence_reason, "routed by job name 'eslint"));
	hl_verdict_release(&v);
}

/* No evidence anywhere: the default agent's general type, with low
 * confidence, never a specialist. */
static void
test_classify_no_evidence_is_default_with_low_confidence(void **state)
{
	struct hl_verdict v;
	(void)state;

	classify_input(&v, NULL, NULL, NULL, NULL, NULL, 0);
	assert_string_equal(v.agent, "atlas");
	assert_string_equal(v.failure_type, "general");
	assert_int_equal(v.evidence, HL_CLASSIFY_EVIDENCE_NONE);
	assert_string_equal(v.evidence_reason, "no_log: no rule fired");
	assert_true(v.confidence <= HL_CLASSIFY_CONFIDENCE_NONE);
	assert_null(hl_verdict_runner_up_agent(&v));
	hl_verdict_release(&v);

	/* a log no rule knows: still the default, quoting the error-looking
	 * line (not at a line start, so no rule's pattern takes it) */
	classify_input(&v, "workflow_job", "misc", "all good\n  step: fatal: odd state\nbye\n",
	               NULL, NULL, 0);
	assert_string_equal(v.agent, "atlas");
	assert_string_equal(v.failure_type, "general");
	assert_string_equal(v.rule, "default");
	assert_string_equal(v.evidence_reason, "no_matching_line: no rule fired");
	assert_int_equal(v.evidence_line_number, 2);
	assert_string_equal(v.evidence_line, "step: fatal: odd state");
	assert_true(v.confidence <= HL_CLASSIFY_CONFIDENCE_NONE);
	hl_verdict_release(&v);
}

/* The runner-up agent: the best candidate of another agent; never for a
 * category that stays with its agent. */
static void
test_classify_runner_up_agent(void **state)
{
	struct hl_verdict v;
	(void)state;

	/* Rex wins on the log; Bolt's ArgoCD context is the runner-up */
	classify_input(&v, "workflow_job", "clippy",
	               "   = note: requested on the command line with `-D clippy::unwrap-used`\n",
	               "OutOfSync", NULL, 0);
	assert_string_equal(v.agent, "rex");
	assert_string_equal(hl_verdict_runner_up_agent(&v), "bolt");
	hl_verdict_release(&v);

	/* a TypeScript error inside a Docker build: Bolt after Blaze */
	classify(&v, "docker-publish", "build", "docker build",
	         "#5 ERROR: failed to solve\nerror TS2322: Type 'a' is not assignable\n", NULL, 0);
	assert_string_equal(v.agent, "blaze");
	assert_string_equal(hl_verdict_runner_up_agent(&v), "bolt");
	hl_verdict_release(&v);

	/* only Rex's rules fired */
	classify_input(&v, "workflow_job", NULL, "error[E0308]: mismatched types\n", NULL, NULL, 0);
	assert_string_equal(v.agent, "rex");
	assert_null(hl_verdict_runner_up_agent(&v));
	hl_verdict_release(&v);

	/* security stays with Cipher, whatever else fired */
	classify_input(&v, "dependabot_alert", NULL, "error[E0308]: mismatched types\n",
	               "OutOfSync", NULL, 0);
	assert_string_equal(v.agent, "cipher");
	assert_true(v.n_candidates >= 2);
	assert_null(hl_verdict_runner_up_agent(&v));
	hl_verdict_release(&v);
	assert_null(hl_verdict_runner_up_agent(NULL));
}

/* --explain shows the competing agents and why the winner won. */
static void
test_classify_explain_shows_competing_agents(void **state)
{
	struct hl_verdict v;
	struct hl_buf b = HL_BUF_INIT(0);
	(void)state;

	classify_input(&v, "workflow_job", "clippy",
	               "   = note: requested on the command line with `-D clippy::unwrap-used`\n",
	               "OutOfSync", NULL, 0);
	assert_int_equal(hl_verdict_explain(&b, &v), 0);
	assert_non_null(strstr(b.data, "verdict: agent=rex failure_type=rust_clippy"));
	assert_non_null(strstr(b.data, "confidence="));
	assert_non_null(strstr(b.data, "agents ("));
	assert_non_null(strstr(b.data, "\n  rex    log     rust-clippy-denied"));
	assert_non_null(strstr(b.data, "\n  bolt   context argocd-status"));
	assert_non_null(strstr(b.data, "priority 76 + recency"));
	assert_non_null(strstr(b.data, "which fired on context only (argocd status): context "
	                               "never outvotes log evidence"));
	assert_non_null(strstr(b.data, "the runner-up agent is bolt"));
	hl_buf_release(&b);
	hl_verdict_release(&v);

	/* every agent that fired has its best candidate in the verdict */
	classify(&v, "docker-publish", "build", "docker build",
	         "#5 ERROR: failed to solve\nerror TS2322: Type 'a' is not assignable\n", NULL, 0);
	b = (struct hl_buf)HL_BUF_INIT(0);
	assert_int_equal(hl_verdict_explain(&b, &v), 0);
	assert_non_null(strstr(b.data, "\n  blaze  log     tsc-error"));
	assert_non_null(strstr(b.data, "\n  bolt   log     buildkit-step-error"));
	assert_non_null(strstr(b.data, "by 35.00 points of log evidence"));
	hl_buf_release(&b);
	hl_verdict_release(&v);
}

/* Expects rules text to fail with a message containing want. */
static void
expect_rules_error(const char *text, const char *want)
{
	struct hl_classifier *c = NULL;
	struct hl_err err = HL_ERR_INIT;
	int rc = hl_classifier_new_from_text(&c, text, strlen(text), "bad.yaml", &err);
	if (rc == 0 || strstr(err.msg, want) == NULL)
		fprintf(stderr, "# got rc=%d '%s', want '%s'\n", rc, err.msg, want);
	assert_int_not_equal(rc, 0);
	assert_null(c);
	assert_non_null(strstr(err.msg, want));
}

static void
test_classify_rules_validation_names_rule_and_position(void **state)
{
	(void)state;
	expect_rules_error("rules:\n"
	                   "- name: ok-rule\n"
	                   "  type: rust_build\n"
	                   "  priority: 10\n"
	                   "  patterns: ['abc']\n"
	                   "- name: broken\n"
	                   "  type: rust_build\n"
	                   "  priority: 10\n"
	                   "  patterns:\n"
	                   "    - 'foo(bar'\n",
	                   "bad.yaml:10:15: rule 'broken': bad regex at offset 7");
	expect_rules_error("rules:\n"
	                   "- name: typo\n"
	                   "  type: rust_bild\n"
	                   "  priority: 10\n"
	                   "  patterns: ['x']\n",
	                   "bad.yaml:3:9: rule 'typo': unknown failure type 'rust_bild'");
	expect_rules_error("rules:\n"
	                   "- name: keys\n"
	                   "  type: helm\n"
	                   "  priority: 10\n"
	                   "  patern: ['x']\n",
	                   "bad.yaml:5:3: rule 'keys': unknown key 'patern'");
	expect_rules_error("rules:\n"
	                   "- type: helm\n"
	                   "  priority: 10\n"
	                   "  patterns: ['x']\n",
	                   "bad.yaml:2:3: rule '#1': missing 'name'");
	expect_rules_error("rules:\n"
	                   "- name: nopri\n"
	                   "  type: helm\n"
	                   "  patterns: ['x']\n",
	                   "rule 'nopri': missing 'priority'");
	expect_rules_error("rules:\n"
	                   "- name: span\n"
	                   "  type: helm\n"
	                   "  priority: 5\n"
	                   "  patterns: ['a[^\"]*b']\n",
	                   "bad.yaml:5:16: rule 'span': negated class must exclude");
	expect_rules_error("rules:\n"
	                   "- name: backref\n"
	                   "  type: helm\n"
	                   "  priority: 5\n"
	                   "  patterns: ['(a)\\1']\n",
	                   "rule 'backref': pattern not supported");
	expect_rules_error("rules:\n"
	                   "- name: anchored\n"
	                   "  type: helm\n"
	                   "  priority: 5\n"
	                   "  patterns: ['x\\AfooX']\n",
	                   "bad.yaml:5:16: rule 'anchored': '\\A' anchors to the buffer");
	expect_rules_error("rules:\n"
	                   "- name: end\n"
	                   "  type: helm\n"
	                   "  priority: 5\n"
	                   "  patterns: ['a', 'fooX\\z']\n",
	                   "bad.yaml:5:24: rule 'end': '\\z' anchors to the buffer");
	static const char *const empty[] = { "^", "$", "^$", "\\b", "a?", "(x)*" };
	for (size_t i = 0; i < sizeof(empty) / sizeof(empty[0]); i++) {
		char text[200];
		snprintf(text, sizeof(text),
		         "rules:\n- name: empty\n  type: helm\n  priority: 5\n"
		         "  patterns: ['ok', '%s']\n",
		         empty[i]);
		expect_rules_error(text, "bad.yaml:5:21: rule 'empty': pattern can match an empty");
	}
	expect_rules_error("rules:\n"
	                   "- name: one\n"
	                   "  type: helm\n"
	                   "  priority: 5\n"
	                   "  patterns: ['a']\n"
	                   "---\n"
	                   "rules:\n"
	                   "- name: two\n"
	                   "  type: nonsense\n",
	                   "bad.yaml:6:1: more than one YAML document");
	expect_rules_error("rules:\n"
	                   "- name: one\n"
	                   "  type: helm\n"
	                   "  priority: 5\n"
	                   "  patterns: ['a']\n"
	                   "---\n"
	                   "rules: [\n",
	                   "bad.yaml:");
	expect_rules_error("rules:\n"
	                   "- name: dup\n"
	                   "  type: helm\n"
	                   "  priority: 5\n"
	                   "  patterns: ['a']\n"
	                   "- name: dup\n"
	                   "  type: helm\n"
	                   "  priority: 5\n"
	                   "  patterns: ['b']\n",
	                   "bad.yaml:6:3: rule 'dup': duplicate rule name");
	expect_rules_error("rules:\n"
	                   "- name: quote-only\n"
	                   "  type: helm\n"
	                   "  priority: 5\n"
	                   "  job: ['helm']\n"
	                   "  quote: ['^Error: ']\n",
	                   "bad.yaml:6:10: rule 'quote-only': 'quote' without 'patterns'");
	expect_rules_error("rules:\n"
	                   "- name: bad-quote\n"
	                   "  type: helm\n"
	                   "  priority: 5\n"
	                   "  patterns: ['a']\n"
	                   "  quote: ['(x']\n",
	                   "rule 'bad-quote': bad regex");
	expect_rules_error("rules: [\n", "bad.yaml:2:1: ");
	expect_rules_error("rules:\n"
	                   "- name: twice\n"
	                   "  name: again\n"
	                   "  type: helm\n"
	                   "  priority: 5\n"
	                   "  patterns: ['b']\n",
	                   "bad.yaml:3:3: rule 'twice': duplicate key 'name'");
}

static void
test_classify_large_log_classifies(void **state)
{
	const size_t target = 30u << 20;
	struct hl_buf b = HL_BUF_INIT(0);
	struct hl_verdict v;
	size_t lines = 1, first_failed = 0;
	bool found = false;
	(void)state;

	/* evidence at both ends and in the last quarter: big logs are scanned
	 * in parallel segments, the first match is quoted */
	hl_buf_append_str(&b, "Sending build context to Docker daemon  2.048kB\n");
	while (b.len < target) {
		if (first_failed == 0 && b.len > target / 4 * 3) {
			hl_buf_append_str(&b, "test result: FAILED. 1 passed; 1 failed\n");
			first_failed = ++lines;
		}
		hl_buf_appendf(&b,
		               "2024-01-15T10:30:00.1234567Z    Compiling crate%zu v1.0.%zu\n"
		               "2024-01-15T10:30:00.1234567Z npm WARN deprecated "
		               "uuid@3.4.0: please upgrade\n"
		               "2024-01-15T10:30:00.1234567Z test module::case_%zu ... ok\n",
		               lines, lines % 50, lines);
		lines += 3;
	}
	hl_buf_append_str(&b, "2024-01-15T10:31:00.0000000Z test result: FAILED. 10 passed; "
	                      "1 failed; 0 ignored\n");
	lines++;
	assert_int_equal(hl_buf_error(&b), 0);
	classify(&v, "CI", "test", "cargo test", b.data, NULL, 0);
	assert_string_equal(v.agent, "rex");
	assert_string_equal(v.failure_type, "rust_test");
	assert_int_equal(v.evidence_line_number, first_failed);
	assert_int_equal(v.log_lines, lines);
	for (size_t i = 0; i < v.n_candidates; i++) {
		if (strcmp(v.candidates[i].rule, "docker-hint") == 0) {
			assert_int_equal(v.candidates[i].line_number, 1);
			assert_int_equal(v.candidates[i].matches, 1);
			found = true;
		}
	}
	assert_true(found);
	hl_verdict_release(&v);
	hl_buf_release(&b);
}

/* True when s is valid UTF-8 without control characters. */
static bool
clean_utf8(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		size_t len = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3 : 4;
		if (*p < 0x20 || *p == 0x7f || (*p >= 0x80 && *p < 0xc2) || *p > 0xf4)
			return false;
		for (size_t k = 1; k < len; k++)
			if ((p[k] & 0xc0) != 0x80)
				return false;
		p += len;
	}
	return true;
}

static void
test_classify_hostile_bytes_are_safe(void **state)
{
	struct hl_classify_input in;
	struct hl_verdict v;
	struct hl_err err = HL_ERR_INIT;
	char *log = malloc(1u << 20);
	uint32_t x = 12345;
	(void)state;

	assert_non_null(log);
	for (size_t i = 0; i < (1u << 20); i++) {
		x = x * 1103515245u + 12345u;
		log[i] = (char)(x >> 16);
	}
	/* an error line full of invalid UTF-8, NULs and escapes, then a lone ESC */
	static const char bad[] = "\nerror[E0425]: \xff\xfe\x00\x1b[31mcannot\xc3 find \x1b]0;t\a"
	                          "value\xe2\x82\n\x1b";
	memcpy(log + (1u << 20) - sizeof(bad), bad, sizeof(bad));
	memset(&in, 0, sizeof(in));
	in.log = log;
	in.log_len = 1u << 20;
	assert_int_equal(hl_classify(&v, builtin, &in, &err), 0);
	assert_string_equal(v.failure_type, "rust_build");
	assert_true(clean_utf8(v.evidence_line));
	for (size_t i = 0; i < v.n_candidates; i++)
		assert_true(clean_utf8(v.candidates[i].line));
	hl_verdict_release(&v);

	/* one enormous line without newline */
	memset(log, 'a', 1u << 20);
	memcpy(log + 100, "error[E0308]: x", 15);
	assert_int_equal(hl_classify(&v, builtin, &in, &err), 0);
	assert_string_equal(v.failure_type, "rust_build");
	assert_int_equal(v.evidence_line_number, 1);
	assert_true(strlen(v.evidence_line) <= 400);
	hl_verdict_release(&v);
	free(log);
}

/* Asserts that two verdicts are identical in every reported field. */
static void
assert_same_verdict(const struct hl_verdict *a, const struct hl_verdict *b)
{
	assert_string_equal(a->agent, b->agent);
	assert_string_equal(a->failure_type, b->failure_type);
	assert_string_equal(a->rule, b->rule);
	assert_int_equal(a->evidence_line_number, b->evidence_line_number);
	assert_string_equal(a->evidence_line, b->evidence_line);
	assert_int_equal(a->evidence, b->evidence);
	assert_true(a->confidence == b->confidence);
	assert_string_equal(a->evidence_reason ? a->evidence_reason : "(none)",
	                    b->evidence_reason ? b->evidence_reason : "(none)");
	assert_int_equal(a->log_lines, b->log_lines);
	assert_int_equal(a->n_candidates, b->n_candidates);
	for (size_t i = 0; i < a->n_candidates; i++) {
		assert_string_equal(a->candidates[i].rule, b->candidates[i].rule);
		assert_int_equal(a->candidates[i].line_number, b->candidates[i].line_number);
		assert_int_equal(a->candidates[i].matches, b->candidates[i].matches);
		assert_string_equal(a->candidates[i].line, b->candidates[i].line);
	}
}

/* Classifies log in memory and from a temporary file; the verdicts must be
 * the same. *out is the file's verdict. */
static void
classify_both_ways(const char *log, size_t n, struct hl_verdict *out)
{
	struct hl_classify_input in;
	struct hl_verdict mem;
	struct hl_err err = HL_ERR_INIT;
	char path[] = "/tmp/healer-classify-fd-XXXXXX";
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	unlink(path);
	for (size_t off = 0; off < n;) {
		ssize_t w = write(fd, log + off, n - off);
		assert_true(w > 0);
		off += (size_t)w;
	}
	memset(&in, 0, sizeof(in));
	in.failed_step = "cargo build";
	in.log = log;
	in.log_len = n;
	assert_int_equal(hl_classify(&mem, builtin, &in, &err), 0);
	in.log = NULL; /* ignored */
	in.log_len = 0;
	assert_int_equal(hl_classify_fd(out, builtin, &in, fd, n, &err), 0);
	close(fd);
	assert_same_verdict(&mem, out);
	hl_verdict_release(&mem);
}

static void
test_classify_fd_reads_like_memory(void **state)
{
	struct hl_buf b = HL_BUF_INIT(0);
	struct hl_verdict v;
	struct hl_classify_input in;
	struct hl_err err = HL_ERR_INIT;
	uint32_t x = 777;
	char *big;
	(void)state;

	/* Lines of every length around the read window (256 KB) and the line
	 * clip (64 KB), escapes, CRLF, a BOM, evidence between them and a last
	 * line without '\n'. */
	hl_buf_append_str(&b, "\xef\xbb\xbf"
	                      "Sending build context to Docker daemon  2.048kB\n");
	for (int k = 0; k < 400; k++) {
		x = x * 1103515245u + 12345u;
		size_t len = (x >> 8) % 3000;
		if (k % 37 == 5)
			len = 60000 + (x >> 4) % 300000; /* some over the clip and window */
		hl_buf_append_str(&b, "2024-01-15T10:30:00.1234567Z \x1b[36m");
		for (size_t j = 0; j < len; j++)
			hl_buf_append_char(&b, "abcdefgh \x1b[0m"[(j * 7 + k) % 13]);
		hl_buf_append_str(&b, k % 3 ? "\n" : "\r\n");
		if (k % 50 == 7)
			hl_buf_appendf(&b, "2024-01-15T10:30:01Z warning: unused variable: `x%d`\n",
			               k);
		if (k % 90 == 11)
			hl_buf_append_str(&b, "error[E0308]: mismatched types\n");
		/* lines the cleaner rewrites: BuildKit prefix, CR, group marker,
		 * colours inside the evidence, boilerplate */
		if (k % 20 == 3)
			hl_buf_append_str(
			        &b, "2024-01-15T10:30:02Z #12 4.211 npm ERR! code ERESOLVE\r\n");
		if (k % 30 == 4)
			hl_buf_append_str(&b,
			                  "2024-01-15T10:30:02Z ##[group]error: could not compile "
			                  "`foo`\n");
		if (k % 25 == 6)
			hl_buf_append_str(&b,
			                  "2024-01-15T10:30:02Z \x1b[31merror[E0599]\x1b[0m: no "
			                  "method named `x`\r\n");
		if (k % 45 == 8)
			hl_buf_append_str(
			        &b, k % 90 == 8
			                    ? "2024-01-15T10:30:02Z test it::works ... FAILED\r\n"
			                    : "2024-01-15T10:30:02Z \x1b[31mtest it::fails ... "
			                      "FAILED\x1b[0m\r\n");
		if (k % 40 == 9)
			hl_buf_append_str(
			        &b, k % 80 == 9 ? "Error: Process completed with exit code 1.\n"
			                        : "##[error]Process completed with exit code 2.\n");
	}
	hl_buf_append_str(&b, "2024-01-15T10:31:00Z error[E0425]: cannot find value `y`");
	assert_int_equal(hl_buf_error(&b), 0);
	classify_both_ways(b.data, b.len, &v);
	assert_string_equal(v.failure_type, "frontend_deps"); /* the npm lines in BuildKit output */
	assert_string_equal(v.evidence_line, "npm ERR! code ERESOLVE");
	hl_verdict_release(&v);

	/* one line bigger than the window, then evidence on the next line */
	big = malloc(700000);
	assert_non_null(big);
	memset(big, 'z', 700000);
	memcpy(big + 10, "error[E0599]: no method", 23);
	memcpy(big + 699960, "\nerror[E0308]: mismatched types\n", 32);
	classify_both_ways(big, 699992, &v);
	assert_int_equal(v.log_lines, 2);
	assert_int_equal(v.evidence_line_number, 2);
	hl_verdict_release(&v);
	free(big);

	/* big enough for the parallel scan, cut points inside long lines */
	hl_buf_reset(&b);
	while (b.len < (18u << 20))
		hl_buf_appendf(&b, "2024-01-15T10:30:00.1234567Z    Compiling crate%zu v1.0\n",
		               b.len);
	hl_buf_append_str(&b, "test result: FAILED. 1 passed; 1 failed; 0 ignored\n");
	assert_int_equal(hl_buf_error(&b), 0);
	classify_both_ways(b.data, b.len, &v);
	assert_string_equal(v.failure_type, "rust_test");
	hl_verdict_release(&v);
	hl_buf_release(&b);

	/* a read error is reported, not taken for an empty log */
	int dir = open("/", O_RDONLY | O_DIRECTORY);
	assert_true(dir >= 0);
	memset(&in, 0, sizeof(in));
	assert_int_not_equal(hl_classify_fd(&v, builtin, &in, dir, 4096, &err), 0);
	close(dir);
}

struct thread_arg {
	const char *log;
	const char *want;
	int ok;
};

static void *
thread_main(void *p)
{
	struct thread_arg *a = p;
	a->ok = 1;
	for (int i = 0; i < 50; i++) {
		struct hl_classify_input in;
		struct hl_verdict v;
		struct hl_err err = HL_ERR_INIT;
		memset(&in, 0, sizeof(in));
		in.log = a->log;
		in.log_len = strlen(a->log);
		if (hl_classify(&v, builtin, &in, &err) != 0) {
			a->ok = 0;
			break;
		}
		if (strcmp(v.failure_type, a->want) != 0)
			a->ok = 0;
		hl_verdict_release(&v);
	}
	return NULL;
}

static void
test_classify_concurrent_calls_are_safe(void **state)
{
	struct thread_arg args[4] = {
		{ "error[E0308]: mismatched types\n", "rust_build", 0 },
		{ "src/a.ts(1,2): error TS2304: Cannot find name 'x'.\n", "frontend_typecheck", 0 },
		{ "Error: UPGRADE FAILED: timed out\n", "helm", 0 },
		{ "CONFLICT (content): Merge conflict in a.c\n", "merge_conflict", 0 },
	};
	pthread_t t[4];
	(void)state;
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, thread_main, &args[i]), 0);
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(args[i].ok, 1);
	}
}

static void
test_classify_builtin_database_matches_compiled_rules(void **state)
{
	struct hl_classifier *c = NULL;
	struct hl_err err = HL_ERR_INIT;
	const char *logs[] = {
		"error[E0599]: no method named `x`\n",
		"npm ERR! code ERESOLVE\n",
		"##[error]The runner has received a shutdown signal.\n",
		"│ Error: Unsupported argument\n",
	};
	(void)state;
	assert_int_equal(hl_classifier_new_from_text(&c, hl_classify_default_rules,
	                                             hl_classify_default_rules_len, "default",
	                                             &err),
	                 0);
	assert_int_equal(hl_classifier_pattern_count(c), hl_classifier_pattern_count(builtin));
	assert_int_equal(hl_classifier_gated_count(c), hl_classifier_gated_count(builtin));
	for (size_t i = 0; i < 4; i++) {
		struct hl_classify_input in;
		struct hl_verdict a, b;
		memset(&in, 0, sizeof(in));
		in.log = logs[i];
		in.log_len = strlen(logs[i]);
		assert_int_equal(hl_classify(&a, c, &in, &err), 0);
		assert_int_equal(hl_classify(&b, builtin, &in, &err), 0);
		assert_string_equal(a.rule, b.rule);
		assert_int_equal(a.evidence_line_number, b.evidence_line_number);
		hl_verdict_release(&a);
		hl_verdict_release(&b);
	}
	hl_classifier_free(c);
}

/* The id of pattern text in c. */
static unsigned
pattern_id(const struct hl_classifier *c, const char *text)
{
	for (size_t i = 0; i < c->n_pat; i++)
		if (strcmp(c->patterns[i], text) == 0)
			return (unsigned)i;
	fail_msg("no pattern %s", text);
	return 0;
}

/* A '^ *FAIL' line after a long line is found with these patterns beside it
 * in one database (Vectorscan 5.4.9's AVX-512 code missed every such line
 * after the first: db.c scans with its AVX2 code on those CPUs), in both
 * databases: the gated patterns' and the main one. */
static void
test_classify_line_after_a_long_line_is_matched(void **state)
{
	/* %s: '' for the patterns as they are, '(' and ')' around each */
	static const char rules[] = "rules:\n"
	                            "- name: jest\n"
	                            "  type: frontend_test\n"
	                            "  priority: 72\n"
	                            "  patterns: ['%s^ *[0-9]+ failing$%s',"
	                            " '%s^ *FAIL +[^ \\n]+\\.(test|spec)\\.[cm]?[jt]sx?%s']\n"
	                            "- name: other\n"
	                            "  type: general\n"
	                            "  priority: 40\n"
	                            "  patterns: ['%s^=+ [0-9]+ failed%s']\n";
	struct hl_classifier *c[2] = { NULL, NULL };
	struct hl_err err = HL_ERR_INIT;
	struct hl_classify_input in;
	struct hl_verdict v;
	char text[512], log[512];
	int n;

	(void)state;
	for (int k = 0; k < 2; k++) {
		const char *o = k == 0 ? "" : "(", *e = k == 0 ? "" : ")";

		n = snprintf(text, sizeof(text), rules, o, e, o, e, o, e);
		assert_int_equal(
		        hl_classifier_new_from_text(&c[k], text, (size_t)n, "t.yaml", &err), 0);
	}
	/* gated, and in groups: none gated */
	assert_true(hl_classifier_gated_count(c[0]) > 0);
	assert_int_equal(hl_classifier_gated_count(c[1]), 0);
	for (int spaces = 1; spaces <= 200; spaces += 7) {
		n = snprintf(log, sizeof(log), "x%*sz\nFAIL a.test.ts\nok\nFAIL b.test.ts\n",
		             spaces, "");
		for (int k = 0; k < 2; k++) {
			memset(&in, 0, sizeof(in));
			in.event = "workflow_job";
			in.log = log;
			in.log_len = (size_t)n;
			assert_int_equal(hl_classify(&v, c[k], &in, &err), 0);
			assert_string_equal(v.rule, "jest");
			assert_int_equal(v.candidates[0].matches, 2);
			hl_verdict_release(&v);
		}
	}
	hl_classifier_free(c[0]);
	hl_classifier_free(c[1]);
}

/* A match of a pattern with a repeat is confirmed on its line (Vectorscan's
 * AVX-512 code can report one across a line end); one of a pattern that
 * repeats nothing, or that can match a line end itself, is taken as
 * reported. */
static void
test_classify_regex_matches_are_confirmed_on_their_line(void **state)
{
	static const char rules[] = "rules:\n"
	                            "- name: lost\n"
	                            "  type: infra_runner\n"
	                            "  priority: 50\n"
	                            "  patterns: ['The hosted runner: .* lost communication',"
	                            " '[0-9]+ tests failed$', '^error: [a-z]', 'fatal:\\s+.*x',"
	                            " 'linker `[^`\\n]+` not found']\n";
	static const char genuine[] = "The hosted runner: A lost communication with the server";
	static const char other[] = "The self-hosted runner: B lost communication with the server";
	struct hl_classifier *c = NULL;
	struct hl_err err = HL_ERR_INIT;
	unsigned dots, eol, lit, spans, negated;
	void *md;

	(void)state;
	assert_int_equal(hl_classifier_new_from_text(&c, rules, sizeof(rules) - 1, "t.yaml", &err),
	                 0);
	dots = pattern_id(c, "The hosted runner: .* lost communication");
	eol = pattern_id(c, "[0-9]+ tests failed$");
	lit = pattern_id(c, "^error: [a-z]");
	spans = pattern_id(c, "fatal:\\s+.*x");
	negated = pattern_id(c, "linker `[^`\\n]+` not found");
	assert_non_null(md = cl_verify_md_new());
	/* the pattern matches the line */
	assert_true(cl_verify_line(c, md, dots, genuine, strlen(genuine)));
	/* the line the false match ended on has no match of its own */
	assert_false(cl_verify_line(c, md, dots, other, strlen(other)));
	/* '$' is the line's end */
	assert_true(cl_verify_line(c, md, eol, "3 tests failed", 14));
	assert_false(cl_verify_line(c, md, eol, "3 tests failed early", 20));
	/* a pattern confirming often is JIT-compiled (where PCRE2 has a JIT)
	 * and answers the same */
	for (int i = 0; i < 300; i++)
		assert_true(cl_verify_line(c, md, dots, genuine, strlen(genuine)));
	assert_false(cl_verify_line(c, md, dots, other, strlen(other)));
	assert_true(cl_verify_line(c, md, dots, genuine, strlen(genuine)));
	/* taken as reported: a pattern that repeats nothing and cannot match a
	 * line end */
	assert_false(cl_verify_skip(c, lit));
	assert_true(cl_verify_line(c, md, lit, "anything", 8));
	assert_true(cl_verify_skip(c, lit));
	/* one whose '\s' can match a line end is confirmed on one line: its
	 * matches never span lines, wherever the log is cut */
	assert_false(cl_verify_line(c, md, spans, "x", 1));
	assert_false(cl_verify_line(c, md, spans, "fatal:", 6));
	assert_true(cl_verify_line(c, md, spans, "fatal: tax", 10));
	assert_false(cl_verify_skip(c, spans));
	assert_false(cl_verify_skip(c, dots));
	/* a negated class that leaves '\n' out cannot span lines: confirmed */
	assert_true(cl_verify_line(c, md, negated, "linker `cc` not found", 21));
	assert_false(cl_verify_line(c, md, negated, "linker `` not found", 19));
	assert_false(cl_verify_skip(c, negated));
	/* a warmed classifier (the server's) has every confirming pattern's
	 * code ready before its first classification, and answers the same */
	struct hl_classifier *warm = NULL;
	assert_int_equal(
	        hl_classifier_new_from_text(&warm, rules, sizeof(rules) - 1, "t.yaml", &err), 0);
	hl_classifier_warm(warm);
	assert_true(atomic_load(&warm->verify[dots]) > CL_VERIFY_NONE);
	assert_true(atomic_load(&warm->verify[negated]) > CL_VERIFY_NONE);
	assert_true(cl_verify_skip(warm, lit)); /* not confirmed: taken as reported */
	assert_true(cl_verify_line(warm, md, dots, genuine, strlen(genuine)));
	assert_false(cl_verify_line(warm, md, dots, other, strlen(other)));
	hl_classifier_free(warm);
	/* and a scan keeps the genuine match while the pattern is confirmed */
	struct hl_classify_input in;
	struct hl_verdict v;
	memset(&in, 0, sizeof(in));
	in.log = "The self-hosted runner: B lost communication with the server\n"
	         "The hosted runner: A lost communication with the server\n";
	in.log_len = strlen(in.log);
	assert_int_equal(hl_classify(&v, c, &in, &err), 0);
	assert_string_equal(v.rule, "lost");
	assert_int_equal(v.evidence_line_number, 2);
	hl_verdict_release(&v);
	cl_verify_md_free(md);
	hl_classifier_free(c);
}

/* A gate's literals as text ("\x20" and the like decoded), one a line. */
static void
gate_text(char *out, size_t max, char *const *gate)
{
	size_t o = 0;

	for (; *gate != NULL; gate++) {
		for (const char *p = *gate; *p && o + 2 < max; p++) {
			unsigned v;
			if (p[0] == '\\' && p[1] == 'x' && sscanf(p + 2, "%2x", &v) == 1) {
				out[o++] = (char)v;
				p += 3;
			} else {
				out[o++] = *p;
			}
		}
		out[o++] = '\n';
	}
	out[o] = '\0';
}

static void
test_classify_gate_literals_only_for_one_line_patterns(void **state)
{
	static const struct {
		const char *pat;
		const char *gate; /* its literals, one a line; NULL: scanned whole */
	} cases[] = {
		{ "^test .* \\.\\.\\. FAILED$", " ... FAILED\n" },
		{ "^(error|warning): .*\\(clippy::", "(clippy::\n" },
		{ "^ *Compiling [A-Za-z0-9_-]+ v[0-9]", "Compiling \n" },
		{ "npm (ERR!|error) [^ \\n]+ build", "npm ERR! \nnpm error \n" },
		{ "exit (code|status):? 143", "exit code\nexit status\n" },
		{ "(d|e|f)(g|h) literal, (a|b|c)", "dg literal, \neg literal, \nfg literal, \n"
		                                   "dh literal, \neh literal, \nfh literal, \n" },
		{ "a[^x\\n]+.*[a-z]+ long literal", " long literal\n" },
		{ "a long head.*tail1", "a long head\n" },
		{ "a.*?long literal", "long literal\n" },
		{ ".*long literal", "long literal\n" },
		{ "^x\\|y lon[gG]", "x|y lon\n" },
		{ "a(b|)c long literal", "c long literal\n" }, /* an empty alternative */
		{ "abcdefg{2}", "abcdef\n" },                  /* g repeated */
		{ "x{123456}y", NULL },                        /* no text in a repeat */
		{ "cargo (build|check) ", NULL }, /* a literal set: found as well whole */
		{ "plain literal text", NULL },
		{ "a|b.*long literal", NULL },          /* an alternative at the top */
		{ "(a.*long literal)", NULL },          /* in a group */
		{ "a.*ab", NULL },                      /* literal too short */
		{ "(?i)a.*long literal", NULL },        /* inline flags */
		{ "a.*\\slong literal", NULL },         /* \s matches '\n' */
		{ "a\\W.*long literal", NULL },         /* so does \W */
		{ "a.*\\nlong literal", NULL },         /* and \n */
		{ "a.*\\x0along literal", NULL },       /* and other escapes */
		{ "a.*[[:space:]]long literal", NULL }, /* a POSIX class */
		{ "a.*[\\t-~]long literal", NULL },     /* a range reaching '\n' */
		{ "a.*[\x01-~]long literal", NULL },
		{ "a.*[\\s]long literal", NULL },
		{ "a.*[b", NULL }, /* unterminated */
		{ "a.*\\", NULL },
	};
	char text[512];
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char **gate = cl_gate_literals(cases[i].pat);
		if (gate != NULL)
			gate_text(text, sizeof(text), gate);
		free(gate);
		if (cases[i].gate == NULL && gate != NULL)
			fail_msg("%s: gated by %s", cases[i].pat, text);
		if (cases[i].gate != NULL && (gate == NULL || strcmp(text, cases[i].gate) != 0))
			fail_msg("%s: gate %s, expected %s", cases[i].pat, gate ? text : "none",
			         cases[i].gate);
	}
}

/* Rules with patterns scanned in two steps (src/classify/gate.c), and the
 * same rules with each pattern in a group, which is never gated. */
#define GATED_RULES(L, R)                                                         \
	"rules:\n"                                                                \
	"- name: test-failed\n  type: rust_test\n  priority: 40\n"                \
	"  patterns: ['" L "^test .* \\.\\.\\. FAILED$" R "']\n"                  \
	"- name: clippy\n  type: rust_clippy\n  priority: 45\n"                   \
	"  patterns: ['" L "^(error|warning): .*\\(clippy::" R "']\n"             \
	"- name: lock\n  type: rust_deps\n  priority: 42\n"                       \
	"  patterns: ['" L "the lock file .* needs to be updated" R "']\n"        \
	"- name: snapshot\n  type: frontend_test\n  priority: 41\n"               \
	"  patterns: ['" L "Snapshot .* mismatched\\b" R "']\n"                   \
	"- name: shellcheck\n  type: general\n  priority: 43\n  caseless: true\n" \
	"  patterns: ['" L "^in .* line [0-9]+:$" R "']\n"                        \
	"- name: oops\n  type: general\n  priority: 5\n"                          \
	"  patterns: ['" L "^oops" R "']\n"

static void
assert_same_verdicts(struct hl_classifier *a, struct hl_classifier *b, const char *log, size_t len)
{
	struct hl_err err = HL_ERR_INIT;
	struct hl_classify_input in;
	struct hl_verdict va, vb;

	memset(&in, 0, sizeof(in));
	in.log = log;
	in.log_len = len;
	assert_int_equal(hl_classify(&va, a, &in, &err), 0);
	assert_int_equal(hl_classify(&vb, b, &in, &err), 0);
	assert_string_equal(va.rule, vb.rule);
	assert_int_equal(va.evidence_line_number, vb.evidence_line_number);
	assert_int_equal(va.n_candidates, vb.n_candidates);
	for (size_t i = 0; i < va.n_candidates; i++) {
		const struct hl_classify_candidate *x = &va.candidates[i], *y = &vb.candidates[i];
		assert_string_equal(x->rule, y->rule);
		assert_int_equal(x->matches, y->matches);
		assert_int_equal(x->line_number, y->line_number);
		assert_string_equal(x->line, y->line);
		assert_true(x->score == y->score);
	}
	hl_verdict_release(&va);
	hl_verdict_release(&vb);
}

static size_t
candidate_matches(struct hl_classifier *c, const char *log, const char *rule)
{
	struct hl_err err = HL_ERR_INIT;
	struct hl_classify_input in;
	struct hl_verdict v;
	size_t n = 0;

	memset(&in, 0, sizeof(in));
	in.log = log;
	in.log_len = strlen(log);
	assert_int_equal(hl_classify(&v, c, &in, &err), 0);
	for (size_t i = 0; i < v.n_candidates; i++)
		if (strcmp(v.candidates[i].rule, rule) == 0)
			n = v.candidates[i].matches;
	hl_verdict_release(&v);
	return n;
}

static void
test_classify_gated_patterns_match_like_whole_ones(void **state)
{
	static const char gated_rules[] = GATED_RULES("", "");
	static const char whole_rules[] = GATED_RULES("(", ")");
	static const char *const logs[] = {
		"test a ... ok\ntest b ... FAILED\nnot a test ... FAILED\n"
		"test c ... FAILED ... FAILED\n",
		"test x\n ... FAILED\nwarning: y\n(clippy::z)\n", /* head and tail apart */
		"warning: unused (clippy::x)\nerror: y (clippy::a) (clippy::b)\n(clippy::alone)\n",
		"noise\ntest z ... FAILED", /* no final newline */
		"Snapshot foo mismatchedx\nSnapshot foo mismatched\nSnapshot mismatched\n"
		"Snapshot a mismatched b mismatched\n",
		"IN file LINE 12:\nin x line 3: trailing\nIn y line 4:\nin line 5:\n",
		"warning: test ... FAILED (clippy::z) the lock file q needs to be updated\n"
		"test q ... FAILED\r\nthe lock file needs to be updated\n",
		"oops\n",
	};
	struct hl_classifier *g = NULL, *w = NULL;
	struct hl_err err = HL_ERR_INIT;
	struct hl_buf big = HL_BUF_INIT(0);
	(void)state;

	assert_int_equal(hl_classifier_new_from_text(&g, gated_rules, sizeof(gated_rules) - 1,
	                                             "gated.yaml", &err),
	                 0);
	assert_int_equal(hl_classifier_new_from_text(&w, whole_rules, sizeof(whole_rules) - 1,
	                                             "whole.yaml", &err),
	                 0);
	assert_int_equal(hl_classifier_gated_count(g), 5);
	assert_int_equal(hl_classifier_gated_count(w), 0);
	assert_true(hl_classifier_gated_count(builtin) > 0);
	/* the gated patterns do find their matches */
	assert_int_equal(candidate_matches(g, logs[0], "test-failed"), 2);
	assert_int_equal(candidate_matches(g, logs[2], "clippy"), 3);
	assert_int_equal(candidate_matches(g, logs[4], "snapshot"), 3);
	assert_int_equal(candidate_matches(g, logs[5], "shellcheck"), 2);
	for (size_t i = 0; i < sizeof(logs) / sizeof(logs[0]); i++)
		assert_same_verdicts(g, w, logs[i], strlen(logs[i]));
	/* a log of many chunks, scanned on several threads: every line of the
	 * small logs, in turn, between lines of noise */
	for (size_t k = 0; big.len < (18u << 20); k++) {
		const char *l = logs[k % (sizeof(logs) / sizeof(logs[0]))];
		assert_int_equal(hl_buf_append(&big, l, strlen(l)), 0);
		assert_int_equal(hl_buf_appendf(&big,
		                                "\n   Compiling crate%zu v0.%zu.0\n"
		                                "test t%zu ... ok\nwarning: unused import\n",
		                                k, k % 97, k),
		                 0);
	}
	assert_same_verdicts(g, w, big.data, big.len);
	hl_buf_release(&big);
	hl_classifier_free(g);
	hl_classifier_free(w);
}

static void
test_classify_explain_names_candidates(void **state)
{
	struct hl_verdict v;
	struct hl_buf b = HL_BUF_INIT(0);
	(void)state;
	classify(&v, "docker-publish", "build", "docker build",
	         "#5 ERROR: failed to solve\nerror TS2322: Type 'a' is not assignable\n", NULL, 0);
	assert_int_equal(hl_verdict_explain(&b, &v), 0);
	assert_non_null(strstr(b.data, "verdict: agent=blaze failure_type=frontend_typecheck"));
	assert_non_null(strstr(b.data, "tsc-error"));
	assert_non_null(strstr(b.data, "why: 'tsc-error'"));
	assert_non_null(strstr(b.data, "evidence: line 2"));
	hl_buf_release(&b);
	hl_verdict_release(&v);
}

static void
test_classify_helpers_route_categories_and_alternates(void **state)
{
	const char *rust_and_infra[] = { "src/a.rs", "src/b.rs", "infra/main.tf" };
	const char *frontend[] = { "web/src/App.tsx", "package.json" };
	const char *docs[] = { "README.md" };
	(void)state;
	assert_string_equal(hl_classify_category_agent("rust"), "rex");
	assert_string_equal(hl_classify_category_agent("frontend"), "blaze");
	assert_string_equal(hl_classify_category_agent("infrastructure"), "bolt");
	assert_string_equal(hl_classify_category_agent("security"), "cipher");
	assert_string_equal(hl_classify_category_agent("github"), "atlas");
	assert_string_equal(hl_classify_category_agent("nonsense"), "atlas");
	assert_string_equal(hl_classify_type_category("infra_runner"), "infrastructure");
	assert_null(hl_classify_type_category("nope"));
	assert_non_null(hl_classify_type_fix_approach("rust_clippy"));

	assert_string_equal(hl_classify_file_class("Cargo.lock"), "rust");
	assert_string_equal(hl_classify_file_class("pnpm-lock.yaml"), "frontend");
	assert_string_equal(hl_classify_file_class("deploy/Dockerfile"), "infrastructure");
	assert_string_equal(hl_classify_file_class(".github/workflows/ci.yml"), "github");
	assert_null(hl_classify_file_class("README.md"));

	/* Rex failed: the other specialist with changed files is Bolt. */
	assert_string_equal(hl_classify_alternate_agent("rex", "rust", rust_and_infra, 3), "bolt");
	/* Bolt failed: Rust files make up most of the change. */
	assert_string_equal(hl_classify_alternate_agent("bolt", NULL, rust_and_infra, 3), "rex");
	assert_string_equal(hl_classify_alternate_agent("rex", NULL, frontend, 2), "blaze");
	assert_string_equal(hl_classify_alternate_agent("blaze", NULL, frontend, 2), "atlas");
	assert_string_equal(hl_classify_alternate_agent("cipher", NULL, frontend, 2), "blaze");
	assert_string_equal(hl_classify_alternate_agent("atlas", "general", docs, 1), "atlas");
	/* security work stays with Cipher (the catalogue pins the category) */
	assert_string_equal(hl_classify_alternate_agent("rex", "security", frontend, 2), "cipher");
}

/* ECMA-48 nF escapes ("ESC ( B" of tput sgr0) are stripped whole, and an
 * OSC-8 hyperlink's long URL runs to its terminator, in memory and from a
 * file (the AVX2 copy). */
static void
test_classify_nf_escapes_and_long_osc_are_stripped(void **state)
{
	struct hl_buf b = HL_BUF_INIT(0);
	struct hl_verdict v;
	(void)state;

	hl_buf_append_str(&b, "x\n\x1b(B\x1b[mtest foo::bar ... FAILED\n");
	classify_both_ways(b.data, b.len, &v);
	assert_string_equal(v.rule, "rust-test-failed");
	assert_string_equal(v.evidence_line, "test foo::bar ... FAILED");
	hl_verdict_release(&v);
	hl_buf_reset(&b);
	hl_buf_append_str(&b, "x\n\x1b]8;;https://example.com/");
	for (int k = 0; k < 900; k++)
		hl_buf_append_char(&b, 'a');
	hl_buf_append_str(&b, "\x1b\\test foo::baz ... FAILED\x1b]8;;\x1b\\\n");
	classify_both_ways(b.data, b.len, &v);
	assert_string_equal(v.rule, "rust-test-failed");
	assert_string_equal(v.evidence_line, "test foo::baz ... FAILED");
	hl_verdict_release(&v);
	/* a line of many short OSCs (a job printing titles without a line
	 * end) costs what it holds: each OSC reads only itself */
	hl_buf_reset(&b);
	for (int k = 0; k < 250000; k++)
		hl_buf_append_str(&b, "\x1b]0;\a");
	hl_buf_append_str(&b, "\ntest foo::qux ... FAILED\n");
	classify_both_ways(b.data, b.len, &v);
	assert_string_equal(v.rule, "rust-test-failed");
	hl_verdict_release(&v);
	/* an OSC reads only the bytes it consumes, not ahead to the line end:
	 * "ESC ] 0 ; BEL" at a page's end, an unreadable page after it */
	{
		long pg = sysconf(_SC_PAGESIZE);
		char *m = mmap(NULL, (size_t)pg * 2, PROT_READ | PROT_WRITE,
		               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		assert_true(m != MAP_FAILED);
		assert_int_equal(mprotect(m + pg, (size_t)pg, PROT_NONE), 0);
		memset(m, 'a', (size_t)pg);
		memcpy(m + pg - 5, "\x1b]0;\a", 5);
		assert_int_equal(cl_escape_len(m + pg - 5, (size_t)pg + 5), 5);
		munmap(m, (size_t)pg * 2);
	}
	/* an OSC left open ends at its line end, never past it */
	assert_int_equal(cl_escape_len("\x1b]0;title\nnext", 14), 9);
	assert_int_equal(cl_escape_len("\x1b(Bok", 5), 3);
	assert_int_equal(cl_escape_len("\x1b(\n", 3), 2);
	hl_buf_release(&b);
}

/* Patterns that can match a line end match within a line only, wherever
 * the threads' segments and the 256 KB chunks are cut: "fooX" ending a line
 * and "barY" starting the next never match, across a cut or inside a
 * segment, and a line holding both does. */
static void
test_classify_patterns_never_match_across_lines(void **state)
{
	static const char rules[] = "rules:\n"
	                            "- name: span\n"
	                            "  type: helm\n"
	                            "  priority: 50\n"
	                            "  patterns: ['fooX\\s+barY', 'fooX\\WbarY', 'fooX\\DbarY',"
	                            " 'fooX[\\s]barY', 'fooX(?s).barY', 'fooX\\x0abarY',"
	                            " 'fooX[[:^alpha:]]barY', 'fooX\\HbarY', 'fooX\\v+barY',"
	                            " 'fooX\\P{L}barY']\n";
	const size_t n_lines = 800000, w = 21; /* 16.8 MB: split among threads */
	size_t n = n_lines * w, pairs[16], n_pairs = 0;
	struct hl_classifier *c = NULL;
	struct hl_err err = HL_ERR_INIT;
	struct hl_classify_input in;
	struct hl_verdict v;
	char *log = malloc(n + 1);
	(void)state;

	assert_non_null(log);
	assert_int_equal(hl_classifier_new_from_text(&c, rules, sizeof(rules) - 1, "t.yaml", &err),
	                 0);
	for (size_t i = 0; i < n_lines; i++)
		snprintf(log + i * w, w + 1, "filler line %08zu\n", i);
	/* the lines ending at every segment cut of 2, 3 and 4 threads (just
	 * past the first '\n' at or after n / k * j), at the first 256 KB
	 * chunk's end, and inside a segment */
	for (size_t k = 2; k <= 4; k++)
		for (size_t j = 1; j < k; j++)
			pairs[n_pairs++] = n / k * j / w;
	pairs[n_pairs++] = (256 * 1024) / w;
	pairs[n_pairs++] = 1000;
	pairs[n_pairs++] = n_lines / 2 + 5000;
	for (size_t p = 0; p < n_pairs; p++) {
		memcpy(log + pairs[p] * w, "aaaaaaaaaaaaaaaafooX\n", w);
		memcpy(log + (pairs[p] + 1) * w, "barYaaaaaaaaaaaaaaaa\n", w);
	}
	memset(&in, 0, sizeof(in));
	in.log = log;
	in.log_len = n;
	assert_int_equal(hl_classify(&v, c, &in, &err), 0);
	assert_int_equal(v.log_lines, n_lines);
	if (v.rule != NULL && strcmp(v.rule, "span") == 0)
		fail_msg("matched across lines at line %zu: %s", (size_t)v.evidence_line_number,
		         v.evidence_line);
	hl_verdict_release(&v);
	/* a line of its own that holds the pair matches there */
	memcpy(log + 700000 * w, "aaaaaaaaaafooX barYa\n", w);
	assert_int_equal(hl_classify(&v, c, &in, &err), 0);
	assert_string_equal(v.rule, "span");
	assert_int_equal(v.evidence_line_number, 700001);
	assert_string_equal(v.evidence_line, "aaaaaaaaaafooX barYa");
	hl_verdict_release(&v);
	hl_classifier_free(c);
	free(log);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify_timestamp_fractions_of_any_length),
		cmocka_unit_test(test_classify_preprocessing_strips_timestamps_ansi_and_groups),
		cmocka_unit_test(test_classify_boilerplate_is_ignored),
		cmocka_unit_test(test_classify_ci_exit_wrappers_are_ignored),
		cmocka_unit_test(test_classify_first_error_and_quote_patterns),
		cmocka_unit_test(test_classify_later_evidence_wins),
		cmocka_unit_test(test_classify_root_cause_docker_login_in_rust_workflow_is_atlas),
		cmocka_unit_test(test_classify_root_cause_tsc_through_docker_build_is_blaze),
		cmocka_unit_test(test_classify_root_cause_disk_full_in_rust_build_is_bolt),
		cmocka_unit_test(test_classify_security_events_go_to_cipher),
		cmocka_unit_test(test_classify_argocd_out_of_sync_goes_to_bolt),
		cmocka_unit_test(test_classify_evidence_line_number_and_text),
		cmocka_unit_test(test_classify_clippy_while_argocd_out_of_sync_stays_rex),
		cmocka_unit_test(test_classify_context_never_outvotes_log_evidence),
		cmocka_unit_test(test_classify_context_only_breaks_ties),
		cmocka_unit_test(test_classify_confidence_and_evidence_reason),
		cmocka_unit_test(test_classify_no_evidence_is_default_with_low_confidence),
		cmocka_unit_test(test_classify_runner_up_agent),
		cmocka_unit_test(test_classify_explain_shows_competing_agents),
		cmocka_unit_test(test_classify_nothing_matches_defaults_to_atlas_general),
		cmocka_unit_test(test_classify_rules_validation_names_rule_and_position),
		cmocka_unit_test(test_classify_large_log_classifies),
		cmocka_unit_test(test_classify_hostile_bytes_are_safe),
		cmocka_unit_test(test_classify_fd_reads_like_memory),
		cmocka_unit_test(test_classify_concurrent_calls_are_safe),
		cmocka_unit_test(test_classify_builtin_database_matches_compiled_rules),
		cmocka_unit_test(test_classify_regex_matches_are_confirmed_on_their_line),
		cmocka_unit_test(test_classify_gate_literals_only_for_one_line_patterns),
		cmocka_unit_test(test_classify_gated_patterns_match_like_whole_ones),
		cmocka_unit_test(test_classify_explain_names_candidates),
		cmocka_unit_test(test_classify_helpers_route_categories_and_alternates),
		cmocka_unit_test(test_classify_nf_escapes_and_long_osc_are_stripped),
		cmocka_unit_test(test_classify_patterns_never_match_across_lines),
		cmocka_unit_test(test_classify_line_after_a_long_line_is_matched),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
