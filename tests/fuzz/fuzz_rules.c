/*
 * fuzz_rules.c - libFuzzer target for the classification rules YAML
 * (src/classify/rules.c, HEALER_RULES_FILE and `healer check-rules`): the
 * input is a rules file. One that compiles classifies a few fixed cases
 * (a log, changed files, ArgoCD state, an alert event) and explains its
 * verdicts. A bad file must be refused with an error, never crash.
 *
 * Oracle: a refusal carries a message; every verdict names an agent and a
 * failure type.
 */
#include "base/buf.h"
#include "classify/classify.h"
#include "fuzz.h"

#include <string.h>

static const char fuzz_log[] = "Run cargo build\nerror[E0308]: mismatched types\n"
                               "npm ERR! code ELIFECYCLE\nTraceback (most recent call last):\n"
                               "Error: Process completed with exit code 1.\n";
static const char *const fuzz_files[] = { "src/main.rs", "web/app.tsx", "deploy/x.yaml",
	                                  ".github/workflows/ci.yml" };

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hl_classifier *c = NULL;
	struct hl_err err = HL_ERR_INIT;
	struct hl_classify_input cases[3];
	size_t i;

	if (hl_classifier_new_from_text(&c, (const char *)data, size, "fuzz.yaml", &err) < 0) {
		FUZZ_CHECK(err.msg[0] != '\0');
		return 0;
	}
	memset(cases, 0, sizeof(cases));
	cases[0].event = "workflow_job";
	cases[0].job_name = "build";
	cases[0].failed_step = "Run cargo build";
	cases[0].log = fuzz_log;
	cases[0].log_len = sizeof(fuzz_log) - 1;
	cases[1].event = "check_run";
	cases[1].workflow_name = "CI";
	cases[1].changed_files = fuzz_files;
	cases[1].n_changed = sizeof(fuzz_files) / sizeof(fuzz_files[0]);
	cases[1].argocd_sync = "OutOfSync";
	cases[1].argocd_health = "Degraded";
	cases[2].event = "dependabot_alert";
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct hl_verdict v;
		struct hl_buf b = HL_BUF_INIT(0);

		if (hl_classify(&v, c, &cases[i], &err) < 0)
			continue;
		FUZZ_CHECK(v.agent && v.failure_type);
		hl_verdict_explain(&b, &v);
		hl_buf_release(&b);
		hl_verdict_release(&v);
	}
	hl_classifier_free(c);
	return 0;
}
