/*
 * cmd_config.c - `healer check-config`: load and validate the configuration
 * exactly as the server would, without starting anything.
 */
#include "base/buf.h"
#include "base/url.h"
#include "classify/classify.h"
#include "cmd.h"
#include "config/config.h"
#include "net/kube.h"
#include "notify/notify.h"
#include "remediate/prompt_build.h"
#include "store/store.h"

#include <stdbool.h>
#include <stdio.h>

/* The files the server loads at start, loaded as it loads them: a rules
 * file or a prompts directory it cannot use stops `healer server`, so
 * check-config must not call the configuration ok. */
static int
check_config_files(const struct hl_config *cfg, struct hl_err *err)
{
	struct hl_classifier *c = NULL;
	struct hl_prompt_builder *b = NULL;

	if (hl_classifier_new(&c, cfg->rules_file, err) < 0)
		return hl_err_wrap(err, "HEALER_RULES_FILE");
	hl_classifier_free(c);
	if (hl_prompt_builder_new(&b, cfg->prompts_dir, err) < 0)
		return hl_err_wrap(err, "HEALER_PROMPTS_DIR");
	hl_prompt_builder_free(b);
	/* the loop refuses email addresses it could not write an email to */
	if (cfg->smtp_url && *cfg->smtp_url && cfg->email_to && *cfg->email_to)
		return hl_notify_email_check(cfg->email_from, cfg->email_to, err);
	return 0;
}

static void
check_config_print(const char *line, void *payload)
{
	(void)payload;
	puts(line);
}

int
hl_cmd_check_config(int argc, char **argv)
{
	static const struct hl_opt opts[] = {
		{ "config", true, 'c' },
		{ "print", false, 'p' },
		{ NULL, false, 0 },
	};
	struct hl_err err = HL_ERR_INIT;
	struct hl_config *cfg = NULL;
	const char *file = NULL, *arg;
	int idx = 1, opt, print = 0;

	while ((opt = hl_cmd_getopt("check-config", argc, argv, opts, &arg, &idx)) != -1) {
		if (opt == '?')
			return 2;
		if (opt == 'c')
			file = arg;
		else if (opt == 'p')
			print = 1;
	}
	if (idx < argc)
		return hl_cmd_usage_error("check-config", "unexpected argument '%s'", argv[idx]);
	if (hl_config_load(&cfg, file, NULL, 0, &err) < 0)
		return hl_cmd_fail("invalid configuration: %s", err.msg);
	if (check_config_files(cfg, &err) < 0) {
		hl_config_free(cfg);
		return hl_cmd_fail("invalid configuration: %s", err.msg);
	}
	if (hl_store_url_check(cfg->database_url, &err) < 0) {
		hl_config_free(cfg);
		return hl_cmd_fail("invalid configuration: HEALER_DATABASE_URL: %s", err.msg);
	}
	/* valid as a configuration; `healer server` would still refuse it */
	if (hl_config_check_auth(cfg, &err) < 0)
		fprintf(stderr, "healer: warning: healer server would not start: %s\n", err.msg);
	/* nor without the cluster it is told to dispatch to: no cluster found
	 * here is a warning (manifests are checked outside their cluster), a
	 * cluster configuration the server cannot use is an error */
	if (cfg->dispatch == HL_DISPATCH_KUBERNETES) {
		struct hl_kube *kube = NULL;
		struct hl_err kerr = HL_ERR_INIT;
		int krc = hl_kube_load(&kube, cfg->kubeconfig, &kerr);

		hl_kube_free(kube);
		if (krc == -HL_ENOTFOUND) {
			fprintf(stderr,
			        "healer: warning: healer server would not start here: kubernetes "
			        "dispatch: %s\n",
			        kerr.msg);
		} else if (krc < 0) {
			bool named = cfg->kubeconfig && *cfg->kubeconfig;

			hl_config_free(cfg);
			return hl_cmd_fail("invalid configuration: %s: %s",
			                   named ? "KUBECONFIG" : "kubernetes dispatch", kerr.msg);
		}
	}
	/* half an email channel: the escalation would silently go without it */
	if (cfg->smtp_url && *cfg->smtp_url && !(cfg->email_to && *cfg->email_to))
		fprintf(stderr, "healer: warning: SMTP_URL is set but HEALER_EMAIL_TO is not: no "
		                "escalation email will be sent\n");
	if (print) {
		hl_config_describe(cfg, check_config_print, NULL);
	} else {
		struct hl_buf shown = HL_BUF_INIT(0); /* without credentials */

		hl_store_url_display(&shown, cfg->database_url);
		printf("configuration ok (dispatch: %s, store: %s)\n",
		       hl_dispatch_mode_name(cfg->dispatch), shown.data);
		hl_buf_release(&shown);
	}
	hl_config_free(cfg);
	return 0;
}
