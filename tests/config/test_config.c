/*
 * test_config.c - unit tests for configuration loading (src/config/config.c):
 * defaults, YAML file, environment, *_FILE secrets, overrides, validation.
 */
/* cmocka.h needs these headers before it */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */
#include "base/log.h"
#include "config/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const cleared[] = {
	"HEALER_LISTEN",
	"HEALER_DATA_DIR",
	"HEALER_DATABASE_URL",
	"GITHUB_WEBHOOK_SECRET",
	"GITHUB_WEBHOOK_SECRET_FILE",
	"HEALER_CONFIG",
	"HEALER_DISPATCH",
	"KUBECONFIG",
	"HEALER_REPOSITORIES",
	"HEALER_HEAL_REPOSITORY",
	"HEALER_ALERT_NAMESPACES",
	"HEALER_MAX_ATTEMPTS",
	"HEALER_PROCESS_BOT_COMMITS",
	"GITHUB_API_URL",
	"GITHUB_APP_ID",
	"GITHUB_APP_PRIVATE_KEY",
	"GITHUB_APP_INSTALLATION_ID",
	"HOME",
	"HEALER_DATABASE_URL_FILE",
	"HEALER_API_TOKEN",
	"HEALER_ALLOW_UNAUTHENTICATED",
	"GITHUB_HOOK_ID",
	"GITHUB_HOOK_REPOSITORY",
	"GITHUB_HOOK_ORG",
	"HEALER_REDELIVER_INTERVAL_MINS",
	"GITHUB_TOKEN",
	"GITHUB_TOKEN_FILE",
	"HEALER_TRUSTED_PROXIES",
	"HEALER_COMMAND_ASSOCIATIONS",
	"HEALER_HEAL_TEMPLATE",
	"HEALER_HEAL_WORKSPACE",
	"HEALER_CLI",
	"HEALER_MODEL",
	"HEALER_WORKERS",
	"ARGOCD_SERVER",
	NULL,
};

static int
clear_env(void **state)
{
	int i;

	for (i = 0; cleared[i]; i++)
		unsetenv(cleared[i]);
	return 0;
}

static char *
write_temp(const char *content)
{
	char *path = strdup("/tmp/healer-test-XXXXXX");
	int fd = mkstemp(path);
	size_t n = strlen(content);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, n), (ssize_t)n);
	close(fd);
	return path;
}

/* The output of an openssl command (a PEM key made for the test), or
 * fails the test. */
static char *
openssl_pem(const char *cmd)
{
	FILE *p = popen(cmd, "r");
	char *out = calloc(1, 16384);
	size_t n;

	assert_non_null(p);
	assert_non_null(out);
	n = fread(out, 1, 16383, p);
	assert_int_equal(pclose(p), 0);
	assert_true(n > 100);
	return out;
}

static void
test_config_defaults_match_contract(void **state)
{
	struct hl_config *c = NULL;
	struct hl_err err = HL_ERR_INIT;

	assert_int_equal(hl_config_load(&c, NULL, NULL, 0, &err), 0);
	assert_string_equal(c->listen, "0.0.0.0:8080");
	assert_int_equal(c->listen_port, 8080);
	assert_string_equal(c->data_dir, "./var");
	assert_string_equal(c->database_url, "sqlite:./var/healer.db");
	assert_string_equal(c->namespace, "cto");
	assert_string_equal(c->cli, "Factory");
	assert_string_equal(c->model, "claude-opus-4-5-20250929");
	assert_int_equal(c->max_attempts, 3);
	assert_int_equal(c->time_window_mins, 10);
	assert_false(c->process_bot_commits);
	assert_int_equal(c->dispatch, HL_DISPATCH_DIRECTORY);
	assert_null(c->webhook_secrets);
	assert_true(hl_config_repo_allowed(c, "any/repo"));
	hl_config_free(c);
}

/* HEALER_TRUSTED_PROXIES: a list of addresses and ranges, refused naming
 * the key and the bad element */
static void
test_config_trusted_proxies(void **state)
{
	struct hl_config *c = NULL;
	struct hl_err err = HL_ERR_INIT;

	(void)state;
	setenv("HEALER_TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.7,2001:db8::/32", 1);
	assert_int_equal(hl_config_load(&c, NULL, NULL, 0, &err), 0);
	assert_string_equal(c->trusted_proxies, "10.0.0.0/8, 192.0.2.7,2001:db8::/32");
	hl_config_free(c);
	c = NULL;
	setenv("HEALER_TRUSTED_PROXIES", "10.0.0.0/8, ingress.example", 1);
	assert_int_equal(hl_config_load(&c, NULL, NULL, 0, &err), -HL_EINVAL);
	assert_null(c);
	assert_non_null(strstr(err.msg, "HEALER_TRUSTED_PROXIES"));
	assert_non_null(strstr(err.msg, "ingress.example"));
	setenv("HEALER_TRUSTED_PROXIES", "10.0.0.1/8", 1);
	assert_int_equal(hl_config_load(&c, NULL, NULL, 0, &err), -HL_EINVAL);
	assert_non_null(strstr(err.msg, "past its prefix length"));
}

static void
test_config_precedence_flag_env_file(void **state)
{
	struct hl_config *c = NULL;
	struct hl_err err = HL_ERR_INIT;
	char *file = write_temp("data_dir: /from/file\nHEALER_NAMESPACE: filens\n"
	                        "max_attempts: 5\nrepositories:\n  - a/b\n  - c/d\n");
	struct hl_config_override ov[] = { { "HEALER_DATA_DIR", "/from/flag" } };

	setenv("HEALER_MAX_ATTEMPTS", "4", 1);
	assert_int_equal(hl_config_load(&c, file, ov, 1, &err), 0);
	assert_string_equal(c->data_dir, "/from/flag"); /* flag beats file */
	assert_string_equal(c->namespace, "filens");    /* file beats default */
	assert_int_equal(c->max_attempts, 4);           /* env beats file */
	assert_int_equal(c->n_repositories, 2);
	assert_true(hl_config_repo_allowed(c, "C/D"));
	assert_false(hl_config_repo_allowed(c, "e/f"));
	hl_config_free(c);
	unlink(file);
	free(file);
}

static void
test_config_secret_file_and_rotation_list(void **state)
{
	struct hl_config *c = NULL;
	struct hl_err err = HL_ERR_INIT;
	char *file = write_temp("old-secret, new-secret\n");

	setenv("GITHUB_WEBHOOK_SECRET_FILE", file, 1);
	assert_int_equal(hl_config_load(&c, NULL, NULL, 0, &err), 0);
	assert_int_equal(c->n_webhook_secrets, 2);
	assert_string_equal(c->webhook_secrets[0], "old-secret");
	assert_string_equal(c->webhook_secrets[1], "new-secret");
	hl_config_free(c);
	/* a value and a file for one secret: refused, not the value silently
	 * (an empty GITHUB_TOKEN discarded GITHUB_TOKEN_FILE's token) */
	setenv("GITHUB_TOKEN_FILE", file, 1);
	setenv("GITHUB_TOKEN", "", 1);
	c = NULL;
	assert_int_equal(hl_config_load(&c, NULL, NULL, 0, &err), -HL_EINVAL);
	assert_null(c);
	assert_non_null(strstr(err.msg, "GITHUB_TOKEN and GITHUB_TOKEN_FILE are both set"));
	unsetenv("GITHUB_TOKEN");
	assert_int_equal(hl_config_load(&c, NULL, NULL, 0, &err), 0);
	assert_string_equal(c->github_token, "old-secret, new-secret");
	hl_config_free(c);
	unsetenv("GITHUB_TOKEN_FILE");
	unlink(file);
	free(file);
}

static void
test_config_secrets_are_redacted(void **state)
{
	struct hl_config *c = NULL;
	struct hl_err err = HL_ERR_INIT;
	char *red;

	setenv("GITHUB_WEBHOOK_SECRET", "sup3r-s3cret-value", 1);
	assert_int_equal(hl_config_load(&c, NULL, NULL, 0, &err), 0);
	red = hl_log_redact("token sup3r-s3cret-value leaked");
	assert_string_equal(red, "token [REDACTED] leaked");
	free(red);
	hl_config_free(c);
}

/* The store location is a secret: from a file, redacted in logs; every
 * form the store opens passes validation. */
static bool shown_secret;

static void
describe_line(const char *line, void *payload)
{
	if (strstr(line, "hunter2"))
		*(bool *)payload = true;
}

static void
test_config_database_url_is_a_secret(void **state)
{
	static const char *const good[] = {
		"sqlite:/var/lib/healer/healer.db",
		"postgresql://healer@db.example/healer?sslmode=require",
		"host=/run/postgresql dbname=healer",
		" dbname = healer user=healer",
	};
	struct hl_config *c = NULL;
	struct hl_err err = HL_ERR_INIT;
	char *file = write_temp("postgres://healer:pw-in-a-file@db:5432/healer\n");
	char *red;
	size_t i;

	setenv("HEALER_DATABASE_URL_FILE", file, 1);
	assert_int_equal(hl_config_load(&c, NULL, NULL, 0, &err), 0);
	assert_string_equal(c->database_url, "postgres://healer:pw-in-a-file@db:5432/healer");
	red = hl_log_redact("store postgres://healer:pw-in-a-file@db:5432/healer");
	assert_null(strstr(red, "pw-in-a-file"));
	free(red);
	hl_config_free(c);
	unsetenv("HEALER_DATABASE_URL_FILE");
	unlink(file);
	free(file);
	/* check-config --print: a password in a parameter libpq decodes from
	 * %XX, or the client key's passphrase, is not shown */
	{
		static const char *const hidden[] = { "postgres://db/h?%70assword=hunter2",
			                              "postgres://db/h?sslpassword=hunter2" };
		for (i = 0; i < 2; i++) {
			struct hl_config_override ov = { "HEALER_DATABASE_URL", hidden[i] };
			c = NULL;
			assert_int_equal(hl_config_load(&c, NULL, &ov, 1, &err), 0);
			hl_config_describe(c, describe_line, &shown_secret);
			hl_config_free(c);
		}
		assert_false(shown_secret);
	}
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct hl_config_override ov = { "HEALER_DATABASE_URL", good[i] };

		c = NULL;
		if (hl_config_load(&c, NULL, &ov, 1, &err) < 0)
			fail_msg("'%s' refused: %s", good[i], err.msg);
		hl_config_free(c);
	}
}

static void
test_config_errors_name_the_key(void **state)
{
	static const struct {
		const char *key, *value, *expect;
	} cases[] = {
		{ "HEALER_LISTEN", "nonsense", "HEALER_LISTEN" },
		{ "HEALER_LISTEN", "127.0.0.1:99999", "HEALER_LISTEN" },
		{ "HEALER_DISPATCH", "carrier-pigeon", "HEALER_DISPATCH" },
		{ "HEALER_MAX_ATTEMPTS", "three", "HEALER_MAX_ATTEMPTS" },
		{ "HEALER_PROCESS_BOT_COMMITS", "maybe", "HEALER_PROCESS_BOT_COMMITS" },
		{ "HEALER_REPOSITORIES", "justaname", "HEALER_REPOSITORIES" },
		/* not a wildcard, not a name GitHub allows: it would match nothing */
		{ "HEALER_REPOSITORIES", "acme/api,acme/*", "HEALER_REPOSITORIES" },
		{ "HEALER_REPOSITORIES", "acme/my app", "HEALER_REPOSITORIES" },
		{ "GITHUB_API_URL", "ftp://x", "GITHUB_API_URL" },
		{ "HEALER_DATABASE_URL", "mysql://x", "HEALER_DATABASE_URL" },
		{ "GITHUB_APP_ID", "123", "GITHUB_APP" },
		/* blank where a value is needed (a namespace " ", a CodeRun
		 * without a model, GitHub at "") */
		{ "HEALER_NAMESPACE", " ", "HEALER_NAMESPACE" },
		{ "HEALER_DATA_DIR", " \t", "HEALER_DATA_DIR" },
		{ "HEALER_CLI", "", "HEALER_CLI" },
		{ "HEALER_MODEL", " ", "HEALER_MODEL" },
		{ "GITHUB_API_URL", "", "GITHUB_API_URL" },
		{ "HEALER_EMAIL_FROM", "", "HEALER_EMAIL_FROM" },
		{ "HEALER_SHUTDOWN_DELAY_S", "-1", "HEALER_SHUTDOWN_DELAY_S" },
		{ "HEALER_SHUTDOWN_DELAY_S", "301", "HEALER_SHUTDOWN_DELAY_S" },
		{ "HEALER_PR_CHECK_SECONDS", "-1", "HEALER_PR_CHECK_SECONDS" },
		{ "HEALER_PR_CHECK_SECONDS", "86401", "HEALER_PR_CHECK_SECONDS" },
		/* a namespace is a path segment of every Kubernetes call: refused
		 * at start, not when the first CodeRun is created */
		{ "HEALER_NAMESPACE", "../kube-system", "HEALER_NAMESPACE" },
		{ "HEALER_NAMESPACE", "Bad NS", "HEALER_NAMESPACE" },
		/* digits only, as "3 " already was: strtol takes " 3", "+3" */
		{ "HEALER_MAX_ATTEMPTS", " 3", "HEALER_MAX_ATTEMPTS" },
		{ "HEALER_MAX_ATTEMPTS", "+3", "HEALER_MAX_ATTEMPTS" },
		{ "HEALER_LISTEN", "127.0.0.1: 80", "HEALER_LISTEN" },
		{ "HEALER_LISTEN", "127.0.0.1:+80", "HEALER_LISTEN" },
		{ "HEALER_LISTEN", "127.0.0.1:-0", "HEALER_LISTEN" },
		/* a URL needs a host and no spaces; SMTP_URL is smtp(s):// (found
		 * at escalation time otherwise) */
		{ "GITHUB_API_URL", "https://", "GITHUB_API_URL" },
		{ "LOKI_URL", "http://user:pw@/loki", "LOKI_URL" },
		{ "PROMETHEUS_URL", "http://prom :9090", "PROMETHEUS_URL" },
		{ "SMTP_URL", "http://mail.example", "SMTP_URL" },
		/* control characters reach CodeRuns, labels and terminals */
		{ "HEALER_MODEL", "claude\nx", "HEALER_MODEL" },
		{ "HEALER_CLI", "Factory\x1b[31m", "HEALER_CLI" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct hl_config *c = NULL;
		struct hl_err err = HL_ERR_INIT;
		struct hl_config_override ov = { cases[i].key, cases[i].value };

		assert_int_equal(hl_config_load(&c, NULL, &ov, 1, &err), -HL_EINVAL);
		assert_null(c);
		if (!strstr(err.msg, cases[i].expect))
			fail_msg("error for %s=%s does not name it: %s", cases[i].key,
			         cases[i].value, err.msg);
	}
}

/* An invalid URL that is a secret (a webhook URL holds its token) is named
 * by its key, never shown; another is shown without its password. */
static void
test_config_url_errors_never_show_secrets(void **state)
{
	static const struct {
		const char *key, *value, *secret;
	} cases[] = {
		{ "DISCORD_WEBHOOK_URL", "ftp://discord.com/api/webhooks/1/TOKEN-d1sc0rd",
		  "d1sc0rd" },
		{ "SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T/B/sl4ck tok", "sl4ck" },
		{ "SMTP_URL", "http://user:sm7p-pw@mail.example", "sm7p-pw" },
		{ "GITHUB_API_URL", "ftp://x:gh-pw-9@ghe.example/api/v3", "gh-pw-9" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct hl_config *c = NULL;
		struct hl_err err = HL_ERR_INIT;
		struct hl_config_override ov = { cases[i].key, cases[i].value };

		assert_int_equal(hl_config_load(&c, NULL, &ov, 1, &err), -HL_EINVAL);
		if (!strstr(err.msg, cases[i].key) || strstr(err.msg, cases[i].secret))
			fail_msg("%s: %s", cases[i].key, err.msg);
	}
}

/* The hook whose failed deliveries are redelivered (contract section 11):
 * an id with exactly one of a repository and an organization. */
static void
test_config_redelivery_hook(void **state)
{
	static const struct {
		const char *id, *repo, *org, *interval, *expect; /* expect NULL: valid */
	} cases[] = {
		{ NULL, NULL, NULL, NULL, NULL },
		{ "12345", "acme/widgets", NULL, NULL, NULL },
		{ "12345", NULL, "acme", "1", NULL },
		{ NULL, NULL, NULL, "0", NULL },
		{ "12345", NULL, NULL, NULL, "GITHUB_HOOK_ID" },
		{ "12345", "acme/widgets", "acme", NULL, "GITHUB_HOOK_ID" },
		{ "x12", "acme/widgets", NULL, NULL, "GITHUB_HOOK_ID" },
		{ "-3", "acme/widgets", NULL, NULL, "GITHUB_HOOK_ID" },
		{ NULL, "acme/widgets", NULL, NULL, "GITHUB_HOOK_REPOSITORY" },
		{ NULL, NULL, "acme", NULL, "GITHUB_HOOK_ORG" },
		{ "7", "widgets", NULL, NULL, "GITHUB_HOOK_REPOSITORY" },
		{ "7", NULL, "acme/x", NULL, "GITHUB_HOOK_ORG" },
		{ NULL, NULL, NULL, "-1", "HEALER_REDELIVER_INTERVAL_MINS" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct hl_config *c = NULL;
		struct hl_err err = HL_ERR_INIT;
		struct hl_config_override ov[4];
		size_t n = 0;

		if (cases[i].id)
			ov[n++] = (struct hl_config_override){ "GITHUB_HOOK_ID", cases[i].id };
		if (cases[i].repo)
			ov[n++] = (struct hl_config_override){ "GITHUB_HOOK_REPOSITORY",
				                               cases[i].repo };
		if (cases[i].org)
			ov[n++] = (struct hl_config_override){ "GITHUB_HOOK_ORG", cases[i].org };
		if (cases[i].interval)
			ov[n++] = (struct hl_config_override){ "HEALER_REDELIVER_INTERVAL_MINS",
				                               cases[i].interval };
		if (!cases[i].expect) {
			assert_int_equal(hl_config_load(&c, NULL, ov, n, &err), 0);
			assert_int_equal(c->github_hook, cases[i].id ? atoll(cases[i].id) : 0);
			assert_int_equal(c->redeliver_interval_mins,
			                 cases[i].interval ? atoi(cases[i].interval) : 10);
			hl_config_free(c);
			continue;
		}
		assert_int_equal(hl_config_load(&c, NULL, ov, n, &err), -HL_EINVAL);
		if (!strstr(err.msg, cases[i].expect))
			fail_msg("case %zu: error does not name %s: %s", i, cases[i].expect,
			         err.msg);
	}
}

static void
test_config_yaml_unknown_key_and_syntax(void **state)
{
	struct hl_config *c = NULL;
	struct hl_err err = HL_ERR_INIT;
	char *f1 = write_temp("listen: 127.0.0.1:9000\nbogus_key: 1\n");
	char *f2 = write_temp("listen: [unclosed\n");

	assert_true(hl_config_load(&c, f1, NULL, 0, &err) < 0);
	assert_non_null(strstr(err.msg, "bogus_key"));
	assert_true(hl_config_load(&c, f2, NULL, 0, &err) < 0);
	assert_non_null(strstr(err.msg, f2));
	unlink(f1);
	unlink(f2);
	free(f1);
	free(f2);
}

/* YAML the readers cannot mean: an alias (read as no value, it shifted
 * every later key onto the next key's name) and a key set twice (the last
 * silently won) are errors naming the file and the key. */
static void
test_config_yaml_aliases_and_duplicate_keys(void **state)
{
	static const struct {
		const char *text, *expect;
	} bad[] = {
		{ "HEALER_MODEL: &m claude-x\nHEALER_CLI: *m\nHEALER_NAMESPACE: prod\n", "alias" },
		{ "HEALER_REPOSITORIES: [&r a/b, *r]\n", "alias" },
		{ "HEALER_NAMESPACE: a\nHEALER_NAMESPACE: b\n", "HEALER_NAMESPACE is set twice" },
		{ "namespace: a\nHEALER_NAMESPACE: b\n", "HEALER_NAMESPACE is set twice" },
		{ "HEALER_REPOSITORIES: [a/b]\nrepositories: c/d\n", "HEALER_REPOSITORIES" },
		/* a value read as a C string would end at the NUL */
		{ "HEALER_NAMESPACE: \"prod\\0x\"\n", "'HEALER_NAMESPACE' holds a NUL" },
		{ "HEALER_REPOSITORIES: [a/b, \"c/d\\0e\"]\n", "holds a NUL" },
		/* the key null is named as written, not as '' */
		{ "null: x\n", "unknown key 'null'" },
	};
	static const char *const bad_services[] = {
		"- repository: a/b\n  service: &s web\n  workload: *s\n  namespace: prod\n",
		"- repository: a/b\n  namespace: prod\n  namespace: dev\n",
		"- repository: a/b\n  namespace: Prod\n",
		"- repository: a/b\n  argocd_namespace: ../argocd\n",
		"- repository: a/b\n  workload: \"web\\0x\"\n",
	};
	struct hl_config *c = NULL;
	struct hl_err err = HL_ERR_INIT;
	struct hl_service *list = NULL;
	size_t i, n = 0;
	char *f;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		f = write_temp(bad[i].text);
		if (hl_config_load(&c, f, NULL, 0, &err) == 0 || !strstr(err.msg, bad[i].expect) ||
		    !strstr(err.msg, f))
			fail_msg("%s: loaded or unclear: %s", bad[i].text, err.msg);
		unlink(f);
		free(f);
	}
	/* a plain YAML null is no value (not the string "null"); quoted, it is */
	f = write_temp("GITHUB_TOKEN: null\nHEALER_MODEL: '~'\nHEALER_REPOSITORIES: ~\n");
	assert_int_equal(hl_config_load(&c, f, NULL, 0, &err), 0);
	assert_true(!c->github_token || !*c->github_token);
	assert_true(!c->repositories || !*c->repositories);
	assert_string_equal(c->model, "~");
	hl_config_free(c);
	unlink(f);
	free(f);
	/* an anchor without an alias is plain YAML */
	f = write_temp("HEALER_NAMESPACE: &n prod\n");
	assert_int_equal(hl_config_load(&c, f, NULL, 0, &err), 0);
	assert_string_equal(c->namespace, "prod");
	hl_config_free(c);
	unlink(f);
	free(f);
	for (i = 0; i < sizeof(bad_services) / sizeof(bad_services[0]); i++) {
		f = write_temp(bad_services[i]);
		if (hl_config_services_load(&list, &n, f, &err) == 0)
			fail_msg("services %s: loaded (%zu entries, workload '%s')",
			         bad_services[i], n, list[0].workload ? list[0].workload : "");
		assert_non_null(strstr(err.msg, f));
		unlink(f);
		free(f);
	}
	/* an entry's problem names the entry's first line, not where it ended */
	f = write_temp("- repository: a/b\n  namespace: prod\n- repository: c/d\n"
	               "  namespace: Prod\n  workload: web\n");
	assert_int_not_equal(hl_config_services_load(&list, &n, f, &err), 0);
	if (!strstr(err.msg, ":3: namespace 'Prod'"))
		fail_msg("services: unclear: %s", err.msg);
	unlink(f);
	free(f);
}

static void
test_config_dispatch_kubernetes_when_kubeconfig_exists(void **state)
{
	struct hl_config *c = NULL;
	struct hl_err err = HL_ERR_INIT;
	char *kc = write_temp("apiVersion: v1\nkind: Config\n");

	char list[512];

	setenv("KUBECONFIG", kc, 1);
	assert_int_equal(hl_config_load(&c, NULL, NULL, 0, &err), 0);
	assert_int_equal(c->dispatch, HL_DISPATCH_KUBERNETES);
	hl_config_free(c);
	/* a KUBECONFIG list (kubectl's convention): a cluster when its first
	 * file exists (before: no such file "a:b", so directory dispatch) */
	snprintf(list, sizeof(list), "%s:/nonexistent/other-config", kc);
	setenv("KUBECONFIG", list, 1);
	assert_int_equal(hl_config_load(&c, NULL, NULL, 0, &err), 0);
	assert_int_equal(c->dispatch, HL_DISPATCH_KUBERNETES);
	hl_config_free(c);
	/* kubectl skips a missing file of the list and merges the others
	 * (src/net/kubeconfig.c); so a cluster is found when a later file
	 * exists (before: only the first was looked at, directory dispatch) */
	snprintf(list, sizeof(list), "/nonexistent/config::%s", kc);
	setenv("KUBECONFIG", list, 1);
	assert_int_equal(hl_config_load(&c, NULL, NULL, 0, &err), 0);
	assert_int_equal(c->dispatch, HL_DISPATCH_KUBERNETES);
	hl_config_free(c);
	setenv("KUBECONFIG", "/nonexistent/config:/nonexistent/other", 1);
	assert_int_equal(hl_config_load(&c, NULL, NULL, 0, &err), 0);
	assert_int_equal(c->dispatch, HL_DISPATCH_DIRECTORY);
	hl_config_free(c);
	unlink(kc);
	free(kc);
}

/* Without authentication only loopback; with both, or allowed, anywhere. */
static void
test_config_unauthenticated_listens_on_loopback_only(void **state)
{
	static const struct {
		const char *listen;
		bool loopback;
	} cases[] = {
		{ "127.0.0.1:8080", true }, { "127.3.4.5:1", true },   { "localhost:80", true },
		{ "[::1]:8080", true },     { "0.0.0.0:8080", false }, { ":8080", false },
		{ "[::]:8080", false },     { "10.1.2.3:80", false },  { "128.0.0.1:80", false },
	};
	struct hl_err err = HL_ERR_INIT;
	struct hl_config *c = NULL;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct hl_config_override ov = { "HEALER_LISTEN", cases[i].listen };

		assert_int_equal(hl_config_load(&c, NULL, &ov, 1, &err), 0);
		if (hl_config_listen_is_loopback(c) != cases[i].loopback)
			fail_msg("'%s': loopback should be %d", cases[i].listen, cases[i].loopback);
		assert_int_equal(hl_config_check_auth(c, &err), cases[i].loopback ? 0 : -HL_EINVAL);
		if (!cases[i].loopback)
			assert_non_null(strstr(err.msg, "HEALER_ALLOW_UNAUTHENTICATED"));
		hl_config_free(c);
	}
	setenv("GITHUB_WEBHOOK_SECRET", "a-secret", 1);
	setenv("HEALER_API_TOKEN", "a-token", 1);
	assert_int_equal(hl_config_load(&c, NULL, NULL, 0, &err), 0);
	assert_int_equal(hl_config_check_auth(c, &err), 0);
	hl_config_free(c);
	unsetenv("HEALER_API_TOKEN");
	assert_int_equal(hl_config_load(&c, NULL, NULL, 0, &err), 0);
	assert_int_equal(hl_config_check_auth(c, &err), -HL_EINVAL);
	assert_non_null(strstr(err.msg, "HEALER_API_TOKEN"));
	assert_null(strstr(err.msg, "a-secret"));
	hl_config_free(c);
	setenv("HEALER_ALLOW_UNAUTHENTICATED", "true", 1);
	assert_int_equal(hl_config_load(&c, NULL, NULL, 0, &err), 0);
	assert_int_equal(hl_config_check_auth(c, &err), 0);
	hl_config_free(c);
	/* a secret file in UTF-16 is not its first character */
	{
		char *u16 = strdup("/tmp/healer-test-XXXXXX");
		int fd = mkstemp(u16);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, "s\0e\0c\0r\0e\0t\0\n\0", 14), 14);
		close(fd);
		setenv("GITHUB_WEBHOOK_SECRET_FILE", u16, 1);
		assert_int_equal(hl_config_load(&c, NULL, NULL, 0, &err), -HL_EINVAL);
		assert_non_null(strstr(err.msg, "GITHUB_WEBHOOK_SECRET_FILE"));
		unlink(u16);
		free(u16);
	}
	/* a *_FILE variable naming no file is an error, not "no secret" */
	setenv("GITHUB_WEBHOOK_SECRET_FILE", "", 1);
	assert_int_equal(hl_config_load(&c, NULL, NULL, 0, &err), -HL_EINVAL);
	assert_non_null(strstr(err.msg, "GITHUB_WEBHOOK_SECRET_FILE"));
	unsetenv("GITHUB_WEBHOOK_SECRET_FILE");
	/* an empty element of the rotation list, and a blank token, are errors */
	setenv("GITHUB_WEBHOOK_SECRET", "a-secret,", 1);
	assert_int_equal(hl_config_load(&c, NULL, NULL, 0, &err), -HL_EINVAL);
	assert_non_null(strstr(err.msg, "GITHUB_WEBHOOK_SECRET"));
	setenv("GITHUB_WEBHOOK_SECRET", "a-secret", 1);
	setenv("HEALER_API_TOKEN", " \t", 1);
	assert_int_equal(hl_config_load(&c, NULL, NULL, 0, &err), -HL_EINVAL);
	assert_non_null(strstr(err.msg, "HEALER_API_TOKEN"));
}

/* The secrets that may be given as NAME_FILE (the X() rows of config.c). */
static const char *const secret_keys[] = {
	"HEALER_DATABASE_URL",    "GITHUB_WEBHOOK_SECRET", "HEALER_API_TOKEN", "GITHUB_TOKEN",
	"GITHUB_APP_PRIVATE_KEY", "ARGOCD_TOKEN",          "GRAFANA_TOKEN",    "OPENMEMORY_API_KEY",
	"DISCORD_WEBHOOK_URL",    "SLACK_WEBHOOK_URL",     "SMTP_URL",
};

/* An empty secret mount is not "no secret" (an empty database URL file ran
 * each replica on its own SQLite): a NAME_FILE that is empty or only
 * whitespace is an error naming NAME_FILE and the path. */
static void
test_config_blank_secret_file_is_an_error(void **state)
{
	static const char *const contents[] = { "", "\n", " \t\r\n", "\n\n" };
	char envname[128];
	size_t i, j;

	(void)state;
	for (i = 0; i < sizeof(secret_keys) / sizeof(secret_keys[0]); i++) {
		snprintf(envname, sizeof(envname), "%s_FILE", secret_keys[i]);
		unsetenv(secret_keys[i]);
		for (j = 0; j < sizeof(contents) / sizeof(contents[0]); j++) {
			struct hl_config *c = NULL;
			struct hl_err err = HL_ERR_INIT;
			char *f = write_temp(contents[j]);

			setenv(envname, f, 1);
			if (hl_config_load(&c, NULL, NULL, 0, &err) != -HL_EINVAL ||
			    !strstr(err.msg, envname) || !strstr(err.msg, f))
				fail_msg("%s holding %zu bytes: %s", envname, strlen(contents[j]),
				         c ? "loaded" : err.msg);
			assert_null(c);
			unsetenv(envname);
			unlink(f);
			free(f);
		}
	}
}

/* An error about a URL-valued setting never shows a password, however the
 * URL is malformed: a space in it, "http//" for "http://", no scheme, a
 * scheme not taken, a port that is not one. */
static void
test_config_url_errors_never_show_passwords(void **state)
{
	static const char *const keys[] = {
		"GITHUB_API_URL", "ARGOCD_SERVER",       "PROMETHEUS_URL",      "LOKI_URL",
		"GRAFANA_URL",    "OPENMEMORY_URL",      "DISCORD_WEBHOOK_URL", "SLACK_WEBHOOK_URL",
		"SMTP_URL",       "HEALER_DATABASE_URL",
	};
	static const char *const values[] = {
		"http://u:PWsecret x@h",     "http//u:PWsecret@h",        "u:PWsecret@h:443",
		"ftp://u:PWsecret@h",        "https://u:PW secret@h/x y", "smtp//u:PWsecret@h",
		"postgres//u:PWsecret@h/db", "http://u:PWsecret@",        "u:PWsecret@",
		"http://u:PWsecret@h@",      "https:/u:PWsecret@h",       "://u:PWsecret@h",
		/* a password's '/', '?' or '#' not percent-encoded ends the
		 * authority early: "u" would be the host and "PW..." its port */
		"https://u:PWsecret/x@h/db", "http://u:PW?secret@h",      "http://u:PW#secret@h",
	};
	size_t i, j;

	(void)state;
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		for (j = 0; j < sizeof(values) / sizeof(values[0]); j++) {
			struct hl_config *c = NULL;
			struct hl_err err = HL_ERR_INIT;
			struct hl_config_override ov = { keys[i], values[j] };

			if (hl_config_load(&c, NULL, &ov, 1, &err) != -HL_EINVAL)
				fail_msg("%s='%s' loaded", keys[i], values[j]);
			if (!strstr(err.msg, keys[i]) || strstr(err.msg, "PW"))
				fail_msg("%s='%s': %s", keys[i], values[j], err.msg);
		}
	/* the database URL's own malformations: a port libpq cannot read */
	{
		static const char *const db[] = { "postgres://u:PWsecret@h:notaport/db",
			                          "postgres://u:PWsecret/x@h/db",
			                          "host=h password=PWsecret port=x" };
		for (j = 0; j < sizeof(db) / sizeof(db[0]); j++) {
			struct hl_config *c = NULL;
			struct hl_err err = HL_ERR_INIT;
			struct hl_config_override ov = { "HEALER_DATABASE_URL", db[j] };

			assert_int_equal(hl_config_load(&c, NULL, &ov, 1, &err), -HL_EINVAL);
			if (!strstr(err.msg, "HEALER_DATABASE_URL") || strstr(err.msg, "PW"))
				fail_msg("'%s': %s", db[j], err.msg);
		}
	}
}

/* Each of bad set as key on the command line is refused (-HL_EINVAL)
 * naming the key and never showing hidden (NULL: nothing); each of good
 * loads. */
static void
check_values(const char *key, const char *const *bad, size_t n_bad, const char *const *good,
             size_t n_good, const char *hidden)
{
	struct hl_config *c;
	struct hl_err err = HL_ERR_INIT;
	size_t i;

	for (i = 0; i < n_bad; i++) {
		struct hl_config_override ov = { key, bad[i] };

		c = NULL;
		if (hl_config_load(&c, NULL, &ov, 1, &err) != -HL_EINVAL || !strstr(err.msg, key) ||
		    (hidden && strstr(err.msg, hidden)))
			fail_msg("%s='%s' %s", key, bad[i], c ? "loaded" : err.msg);
	}
	for (i = 0; i < n_good; i++) {
		struct hl_config_override ov = { key, good[i] };

		c = NULL;
		if (hl_config_load(&c, NULL, &ov, 1, &err) < 0)
			fail_msg("%s='%s' refused: %s", key, good[i], err.msg);
		hl_config_free(c);
	}
}

/* A URL's port, when it has one, is a number from 1 to 65535; an IPv6
 * host is in brackets. */
static void
test_config_url_port_is_a_number(void **state)
{
	static const char *const bad[] = { "http://h:", "http://h:x", "http://h:0",
		                           "http://h:65536", "http://h:-1/x", "http://[::1]x",
		                           "http://[::1", "http://[::1]:" };
	static const char *const good[] = { "http://h", "http://h:1/x", "https://h:65535?q",
		                            "http://u:p@h:8080/x", "http://[::1]",
		                            "http://[::1]:8080/loki", "http://u:p%2Fq@h/x" };

	(void)state;
	check_values("LOKI_URL", bad, sizeof(bad) / sizeof(bad[0]), good,
	             sizeof(good) / sizeof(good[0]), NULL);
}

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* GITHUB_APP_INSTALLATION_ID is a path segment of the token call
 * (/app/installations/ID/access_tokens): GitHub's installation ids are
 * positive integers, and anything else is refused at start. */
static void
test_config_app_installation_id_is_a_number(void **state)
{
	static const char *const bad[] = { "12/../../repos/a/b",
		                           "12 ",
		                           " 12",
		                           "12?x=1",
		                           "abc",
		                           "-5",
		                           "0",
		                           "+12",
		                           "12#",
		                           "1e3",
		                           "99999999999999999999" };
	static const char *const good[] = { "1", "12345678", "9223372036854775807" };
	char *key = openssl_pem("openssl genrsa 2048 2>/dev/null");

	(void)state;
	setenv("GITHUB_APP_ID", "123", 1);
	setenv("GITHUB_APP_PRIVATE_KEY", key, 1);
	check_values("GITHUB_APP_INSTALLATION_ID", bad, N_OF(bad), good, N_OF(good), NULL);
	free(key);
}

/* With the three App settings the private key is read at load time, as
 * each App token will read it: a public key or garbage is a configuration
 * error naming GITHUB_APP_PRIVATE_KEY (or its _FILE), never showing the
 * value (before: accepted, then every delivery failed). */
static void
test_config_app_private_key_is_read(void **state)
{
	char *key = openssl_pem("openssl genrsa 2048 2>/dev/null");
	char *pub =
	        openssl_pem("openssl genrsa 2048 2>/dev/null | openssl rsa -pubout 2>/dev/null");
	const char *bad[] = { pub, "not-a-key-at-all" };
	struct hl_config *c = NULL;
	struct hl_err err = HL_ERR_INIT;
	size_t i;
	char *f;

	(void)state;
	setenv("GITHUB_APP_ID", "123", 1);
	setenv("GITHUB_APP_INSTALLATION_ID", "456", 1);
	for (i = 0; i < N_OF(bad); i++) {
		c = NULL;
		setenv("GITHUB_APP_PRIVATE_KEY", bad[i], 1);
		if (hl_config_load(&c, NULL, NULL, 0, &err) != -HL_EINVAL ||
		    !strstr(err.msg, "GITHUB_APP_PRIVATE_KEY: ") ||
		    !strstr(err.msg, "(from environment)") || strstr(err.msg, "not-a-key") ||
		    strstr(err.msg, "MII"))
			fail_msg("key %zu: %s", i, c ? "loaded" : err.msg);
	}
	unsetenv("GITHUB_APP_PRIVATE_KEY");
	f = write_temp(pub);
	setenv("GITHUB_APP_PRIVATE_KEY_FILE", f, 1);
	assert_int_equal(hl_config_load(&c, NULL, NULL, 0, &err), -HL_EINVAL);
	if (!strstr(err.msg, "GITHUB_APP_PRIVATE_KEY_FILE"))
		fail_msg("unclear: %s", err.msg);
	unlink(f);
	free(f);
	f = write_temp(key);
	setenv("GITHUB_APP_PRIVATE_KEY_FILE", f, 1);
	assert_int_equal(hl_config_load(&c, NULL, NULL, 0, &err), 0);
	hl_config_free(c);
	unsetenv("GITHUB_APP_PRIVATE_KEY_FILE");
	unlink(f);
	free(f);
	free(key);
	free(pub);
}

/* ARGOCD_SERVER in the argocd CLI's form (HOST[:PORT], no scheme) is
 * https://HOST[:PORT]; other schemes and anything but HOST[:PORT] are
 * refused. */
static void
test_config_argocd_server_host_port(void **state)
{
	static const struct {
		const char *value, *read;
	} good[] = {
		{ "argocd.example:443", "https://argocd.example:443" },
		{ "argocd", "https://argocd" },
		{ "10.0.0.7:8080", "https://10.0.0.7:8080" },
		{ "[::1]:8443", "https://[::1]:8443" },
		{ "http://argocd-server.argocd", "http://argocd-server.argocd" },
		{ "https://argocd.example/", "https://argocd.example/" },
	};
	static const char *const bad[] = {
		"ftp://argocd.example",
		"grpc://argocd:443",
		"argocd:",
		"argocd:0",
		"argocd:65536",
		"argocd:https",
		"argocd.example/x",
		"argo cd:443",
		"[]:443",
		":443",
		" ",
	};
	struct hl_config *c = NULL;
	struct hl_err err = HL_ERR_INIT;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct hl_config_override ov = { "ARGOCD_SERVER", good[i].value };

		c = NULL;
		if (hl_config_load(&c, NULL, &ov, 1, &err) < 0)
			fail_msg("'%s' refused: %s", good[i].value, err.msg);
		assert_string_equal(c->argocd_server, good[i].read);
		hl_config_free(c);
	}
	check_values("ARGOCD_SERVER", bad, N_OF(bad), NULL, 0, NULL);
}

/* HEALER_HEAL_REPOSITORY: owner/repo as HEALER_REPOSITORIES takes it, and
 * in that list when one is set; HEALER_ALERT_NAMESPACES: namespace names,
 * unset = all but the Kubernetes system ones. Both shown by describe. */
static void
test_config_alert_settings(void **state)
{
	static const char *const bad_repo[] = { "justaname", "acme/*", "acme/my app", " ",
		                                "a/b/c" };
	static const char *const good_repo[] = { "acme/api", "acme/web.site" };
	static const char *const bad_ns[] = { " ", "prod,,x", "Prod", "prod,../x", "a_b", "prod," };
	static const char *const good_ns[] = { "prod", "prod, staging", "kube-system" };
	struct hl_config_override ov[2] = { { "HEALER_REPOSITORIES", "acme/api,acme/web" },
		                            { "HEALER_HEAL_REPOSITORY", "acme/other" } };
	struct hl_config *c = NULL;
	struct hl_err err = HL_ERR_INIT;

	(void)state;
	check_values("HEALER_HEAL_REPOSITORY", bad_repo, N_OF(bad_repo), good_repo, N_OF(good_repo),
	             NULL);
	check_values("HEALER_ALERT_NAMESPACES", bad_ns, N_OF(bad_ns), good_ns, N_OF(good_ns), NULL);
	/* outside the allowlist: every alert would be skipped */
	assert_int_equal(hl_config_load(&c, NULL, ov, 2, &err), -HL_EINVAL);
	assert_non_null(strstr(err.msg, "HEALER_HEAL_REPOSITORY"));
	assert_non_null(strstr(err.msg, "HEALER_REPOSITORIES"));
	ov[1].value = "ACME/web";
	assert_int_equal(hl_config_load(&c, NULL, ov, 2, &err), 0);
	assert_string_equal(c->heal_repository, "ACME/web");
	assert_true(hl_config_alert_namespace_allowed(c, "prod"));
	assert_false(hl_config_alert_namespace_allowed(c, "kube-system"));
	assert_false(hl_config_alert_namespace_allowed(c, "kube-public"));
	assert_false(hl_config_alert_namespace_allowed(c, "kube-node-lease"));
	hl_config_free(c);
	setenv("HEALER_ALERT_NAMESPACES", " prod , kube-system", 1);
	assert_int_equal(hl_config_load(&c, NULL, NULL, 0, &err), 0);
	assert_int_equal(c->n_alert_namespaces, 2);
	assert_true(hl_config_alert_namespace_allowed(c, "kube-system"));
	assert_true(hl_config_alert_namespace_allowed(c, "prod"));
	assert_false(hl_config_alert_namespace_allowed(c, "staging"));
	assert_null(c->heal_repository);
	hl_config_free(c);
	unsetenv("HEALER_ALERT_NAMESPACES");
}

/* HEALER_REPOSITORIES: blank or an empty element is an error naming the
 * key (before: " " allowed nothing, "a/b,,c/d" was taken as a/b,c/d), as
 * HEALER_TRUSTED_PROXIES already refused them; "" is unset (all). */
static void
test_config_repositories_refuse_blank_and_empty_elements(void **state)
{
	static const char *const bad[] = { " ", "a/b,,c/d", "a/b,", ",a/b", " , ", "a/b, ,c/d" };
	struct hl_config *c = NULL;
	struct hl_err err = HL_ERR_INIT;

	(void)state;
	check_values("HEALER_REPOSITORIES", bad, N_OF(bad), NULL, 0, NULL);
	setenv("HEALER_REPOSITORIES", "", 1);
	assert_int_equal(hl_config_load(&c, NULL, NULL, 0, &err), 0);
	assert_true(hl_config_repo_allowed(c, "any/repo"));
	hl_config_free(c);
	setenv("HEALER_REPOSITORIES", " acme/api , acme/web.site", 1);
	assert_int_equal(hl_config_load(&c, NULL, NULL, 0, &err), 0);
	assert_int_equal(c->n_repositories, 2);
	assert_true(hl_config_repo_allowed(c, "acme/web.site"));
	hl_config_free(c);
}

/* HEALER_COMMAND_ASSOCIATIONS: GitHub's author_association values only
 * (any case, as the loop compares them), no empty element; "" lets
 * nobody give commands. */
static void
test_config_command_associations_are_github_values(void **state)
{
	static const char *const bad[] = { "FOO",        ",",
		                           "OWNER,",     "OWNER,,MEMBER",
		                           " ",          "OWNER MEMBER",
		                           "MAINTAINER", "OWNER,COLLABORATORS" };
	static const char *const good[] = {
		"OWNER",
		"owner, Member ,COLLABORATOR",
		"CONTRIBUTOR,FIRST_TIME_CONTRIBUTOR,FIRST_TIMER,MANNEQUIN,NONE",
		"",
	};
	(void)state;
	check_values("HEALER_COMMAND_ASSOCIATIONS", bad, N_OF(bad), good, N_OF(good), NULL);
}

/* The heal template names a directory: no "." or ".." segment, no leading
 * dot; a blank workspace is an error like a blank data directory; a CLI or
 * model with blanks around it is refused from the file as from the
 * environment. */
static void
test_config_heal_template_workspace_and_cli_names(void **state)
{
	static const struct {
		const char *key, *value;
	} bad[] = {
		{ "HEALER_HEAL_TEMPLATE", "../x" },
		{ "HEALER_HEAL_TEMPLATE", "heal/.." },
		{ "HEALER_HEAL_TEMPLATE", "heal/." },
		{ "HEALER_HEAL_TEMPLATE", "./claude" },
		{ "HEALER_HEAL_TEMPLATE", ".heal/claude" },
		{ "HEALER_HEAL_TEMPLATE", "heal/.claude" },
		{ "HEALER_HEAL_WORKSPACE", " " },
		{ "HEALER_HEAL_WORKSPACE", "\t" },
		{ "HEALER_CLI", "  spaced  " },
		{ "HEALER_CLI", "Factory " },
		{ "HEALER_MODEL", " claude" },
	};
	struct hl_config *c = NULL;
	struct hl_err err = HL_ERR_INIT;
	size_t i;
	char *f;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct hl_config_override ov = { bad[i].key, bad[i].value };

		c = NULL;
		if (hl_config_load(&c, NULL, &ov, 1, &err) != -HL_EINVAL ||
		    !strstr(err.msg, bad[i].key))
			fail_msg("%s='%s' %s", bad[i].key, bad[i].value, c ? "loaded" : err.msg);
	}
	f = write_temp("HEALER_NAMESPACE: prod\nHEALER_CLI: '  spaced  '\n");
	assert_int_equal(hl_config_load(&c, f, NULL, 0, &err), -HL_EINVAL);
	if (!strstr(err.msg, "HEALER_CLI") || !strstr(err.msg, f) || !strstr(err.msg, ":2"))
		fail_msg("unclear: %s", err.msg);
	unlink(f);
	free(f);
	setenv("HEALER_CLI", "  spaced  ", 1);
	assert_int_equal(hl_config_load(&c, NULL, NULL, 0, &err), -HL_EINVAL);
	assert_non_null(strstr(err.msg, "HEALER_CLI"));
	unsetenv("HEALER_CLI");
	setenv("HEALER_HEAL_TEMPLATE", "heal/claude.v2", 1);
	assert_int_equal(hl_config_load(&c, NULL, NULL, 0, &err), 0);
	assert_string_equal(c->heal_workspace, "./var/heal");
	hl_config_free(c);
	/* set but empty is blank too, as HEALER_DATA_DIR (before: the default) */
	c = NULL;
	setenv("HEALER_HEAL_WORKSPACE", "", 1);
	assert_int_equal(hl_config_load(&c, NULL, NULL, 0, &err), -HL_EINVAL);
	if (!strstr(err.msg, "HEALER_HEAL_WORKSPACE: is blank") ||
	    !strstr(err.msg, "(from environment)"))
		fail_msg("unclear: %s", err.msg);
	unsetenv("HEALER_HEAL_WORKSPACE");
	f = write_temp("HEALER_NAMESPACE: prod\nheal_workspace: ''\n");
	assert_int_equal(hl_config_load(&c, f, NULL, 0, &err), -HL_EINVAL);
	if (!strstr(err.msg, "HEALER_HEAL_WORKSPACE") || !strstr(err.msg, f))
		fail_msg("unclear: %s", err.msg);
	unlink(f);
	free(f);
}

/* The database URL's ports are read as libpq reads them, before
 * connecting (libpq found "notaport" only at connect); the error names
 * the key, never the value. */
static void
test_config_database_ports_checked_before_connecting(void **state)
{
	static const char *const bad[] = {
		"host=h port=notaport",
		"postgres://u:pw-7x@h:notaport/db",
		"postgresql://h:0/db",
		"postgres://h:65536/db",
		"postgres://h1:5432,h2:x/db",
		"postgres://[::1]:54a/db",
		"postgres://h/db?sslmode=require&port=abc",
		"host=h,i port='5432,x'",
		"host=h port=-1",
		"host=h port=5432 port=5432x",
		"host=a://b port=x",
	};
	static const char *const good[] = {
		"postgres://u:pw@h:5432/db",
		"postgres://h1:5432,h2:5433/db",
		"postgres://[::1]:5432/db",
		"postgres://h:/db",
		"postgres:///db?host=/run/postgresql&port=5433",
		"host=h,i port=5432,5433",
		"host=h port=' 5432 '",
		"host=h port=",
		"host=/run/postgresql dbname=healer",
		"host = h port = 5432 dbname='a b'",
	};
	(void)state;
	check_values("HEALER_DATABASE_URL", bad, N_OF(bad), good, N_OF(good), "pw-7x");
}

/* A value error names where the value came from: the file and its line, the
 * environment, the command line; a range error names the value too. An
 * empty --config is an error, an empty HEALER_CONFIG no file. */
static void
test_config_errors_name_the_source_and_line(void **state)
{
	static const struct {
		const char *text, *expect;
	} yaml[] = {
		{ "HEALER_NAMESPACE: prod\nHEALER_MAX_ATTEMPTS: 'five'\n", "'five'" },
		{ "HEALER_NAMESPACE: prod\nHEALER_MAX_ATTEMPTS: 11\n",
		  "11 must be between 1 and 10" },
		{ "HEALER_NAMESPACE: prod\nworkers: 65\n", "65 must be between 1 and 64" },
		{ "HEALER_NAMESPACE: prod\nprocess_bot_commits: maybe\n", "'maybe'" },
		{ "HEALER_NAMESPACE: prod\nretention_days: 2\n", "HEALER_RETENTION_DAYS: 2" },
		{ "HEALER_NAMESPACE: prod\nredeliver_interval_mins: 20000\n", "20000" },
		/* past two days a delivery could fall out of GitHub's three
		 * days between two passes (before: up to 10080 was taken) */
		{ "HEALER_NAMESPACE: prod\nredeliver_interval_mins: 4320\n",
		  "HEALER_REDELIVER_INTERVAL_MINS: 4320" },
		{ "HEALER_NAMESPACE: prod\nHEALER_HTTP_MAX_CONNECTIONS_PER_IP: 2000\n", "2000" },
		{ "HEALER_NAMESPACE: prod\nHEALER_SOURCE_TIMEOUT_MS: 99\n",
		  "HEALER_SOURCE_TIMEOUT_MS: 99 must be at least 100" },
		/* a value that is no count names the key's own bounds, not
		 * the parser's 0 to 1000000 */
		{ "HEALER_NAMESPACE: prod\nlease_seconds: -1\n",
		  "HEALER_LEASE_SECONDS: '-1' must be an integer from 2 to 3600" },
		{ "HEALER_NAMESPACE: prod\nredeliver_interval_mins: -1\n",
		  "'-1' must be an integer from 0 to 2880" },
		{ "HEALER_NAMESPACE: prod\nretention_days: x\n",
		  "'x' must be 0 (keep everything) or an integer from 4 to 36500" },
		{ "HEALER_NAMESPACE: prod\nattempt_timeout_mins: 2000000\n",
		  "'2000000' must be an integer from 1 to 1000000" },
		{ "HEALER_NAMESPACE: prod\ntime_window_mins: -5\n",
		  "'-5' must be an integer from 0 to 1000000" },
	};
	struct hl_config *c = NULL;
	struct hl_err err = HL_ERR_INIT;
	struct hl_config_override ov = { "HEALER_LEASE_SECONDS", "1" };
	char where[4200];
	size_t i;
	char *f;

	(void)state;
	for (i = 0; i < sizeof(yaml) / sizeof(yaml[0]); i++) {
		f = write_temp(yaml[i].text);
		snprintf(where, sizeof(where), "(from %s:2)", f);
		if (hl_config_load(&c, f, NULL, 0, &err) != -HL_EINVAL ||
		    !strstr(err.msg, yaml[i].expect) || !strstr(err.msg, where))
			fail_msg("%s: %s", yaml[i].text, c ? "loaded" : err.msg);
		unlink(f);
		free(f);
	}
	setenv("HEALER_WORKERS", "65", 1);
	assert_int_equal(hl_config_load(&c, NULL, NULL, 0, &err), -HL_EINVAL);
	if (!strstr(err.msg, "HEALER_WORKERS: 65") || !strstr(err.msg, "(from environment)"))
		fail_msg("unclear: %s", err.msg);
	unsetenv("HEALER_WORKERS");
	assert_int_equal(hl_config_load(&c, NULL, &ov, 1, &err), -HL_EINVAL);
	if (!strstr(err.msg, "HEALER_LEASE_SECONDS: 1") || !strstr(err.msg, "(from command line)"))
		fail_msg("unclear: %s", err.msg);
	/* a file name given as "" is not "no file" */
	assert_int_equal(hl_config_load(&c, "", NULL, 0, &err), -HL_EINVAL);
	assert_null(c);
	assert_non_null(strstr(err.msg, "config file"));
	setenv("HEALER_CONFIG", "", 1);
	assert_int_equal(hl_config_load(&c, NULL, NULL, 0, &err), 0);
	assert_null(c->config_file);
	hl_config_free(c);
}

/* A string or choice setting's error names where its value came from, as
 * an integer's does: the file and its line, the environment, the command
 * line (before: "HEALER_LISTEN: 'abc' must be HOST:PORT" alone). */
static void
test_config_string_errors_name_the_source(void **state)
{
	static const struct {
		const char *key, *file_key, *value, *expect;
	} bad[] = {
		{ "HEALER_LISTEN", "listen", "abc", "must be HOST:PORT" },
		{ "HEALER_LISTEN", "listen", "127.0.0.1:x", "bad port" },
		{ "HEALER_DISPATCH", "dispatch", "bogus", "must be kubernetes" },
		{ "HEALER_LOG_LEVEL", "log_level", "loud", "must be debug" },
		{ "HEALER_NAMESPACE", "namespace", "Bad_NS", "not a Kubernetes namespace" },
		{ "HEALER_MEMORY_SCOPE", "memory_scope", "everyone", "must be owner" },
		{ "HEALER_HEAL_TEMPLATE", "heal_template", "nope", "FAMILY/NAME" },
		{ "GITHUB_HOOK_ID", "github_hook_id", "x1", "not a hook id" },
		{ "HEALER_HEAL_REPOSITORY", "heal_repository", "no-slash", "is not owner/repo" },
		{ "HEALER_ALERT_NAMESPACES", "alert_namespaces", "ok,Bad_NS",
		  "is not a Kubernetes namespace" },
		{ "HEALER_REPOSITORIES", "repositories", "acme/api,,acme/web", "is empty" },
	};
	struct hl_config *c = NULL;
	struct hl_err err = HL_ERR_INIT;
	char text[256], where[4200];
	size_t i;
	char *f;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct hl_config_override ov = { bad[i].key, bad[i].value };

		snprintf(text, sizeof(text), "data_dir: ./var\n%s: '%s'\n", bad[i].file_key,
		         bad[i].value);
		f = write_temp(text);
		snprintf(where, sizeof(where), "(from %s:2)", f);
		c = NULL;
		if (hl_config_load(&c, f, NULL, 0, &err) != -HL_EINVAL ||
		    !strstr(err.msg, bad[i].expect) || !strstr(err.msg, where))
			fail_msg("file %s: %s", bad[i].key, c ? "loaded" : err.msg);
		unlink(f);
		free(f);
		setenv(bad[i].key, bad[i].value, 1);
		if (hl_config_load(&c, NULL, NULL, 0, &err) != -HL_EINVAL ||
		    !strstr(err.msg, bad[i].expect) || !strstr(err.msg, "(from environment)"))
			fail_msg("environment %s: %s", bad[i].key, c ? "loaded" : err.msg);
		unsetenv(bad[i].key);
		if (hl_config_load(&c, NULL, &ov, 1, &err) != -HL_EINVAL ||
		    !strstr(err.msg, bad[i].expect) || !strstr(err.msg, "(from command line)"))
			fail_msg("command line %s: %s", bad[i].key, c ? "loaded" : err.msg);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_config_defaults_match_contract, clear_env),
		cmocka_unit_test_setup(test_config_string_errors_name_the_source, clear_env),
		cmocka_unit_test_setup(test_config_app_private_key_is_read, clear_env),
		cmocka_unit_test_setup(test_config_unauthenticated_listens_on_loopback_only,
		                       clear_env),
		cmocka_unit_test_setup(test_config_precedence_flag_env_file, clear_env),
		cmocka_unit_test_setup(test_config_trusted_proxies, clear_env),
		cmocka_unit_test_setup(test_config_secret_file_and_rotation_list, clear_env),
		cmocka_unit_test_setup(test_config_secrets_are_redacted, clear_env),
		cmocka_unit_test_setup(test_config_database_url_is_a_secret, clear_env),
		cmocka_unit_test_setup(test_config_errors_name_the_key, clear_env),
		cmocka_unit_test_setup(test_config_yaml_unknown_key_and_syntax, clear_env),
		cmocka_unit_test_setup(test_config_yaml_aliases_and_duplicate_keys, clear_env),
		cmocka_unit_test_setup(test_config_redelivery_hook, clear_env),
		cmocka_unit_test_setup(test_config_url_errors_never_show_secrets, clear_env),
		cmocka_unit_test_setup(test_config_dispatch_kubernetes_when_kubeconfig_exists,
		                       clear_env),
		cmocka_unit_test_setup(test_config_blank_secret_file_is_an_error, clear_env),
		cmocka_unit_test_setup(test_config_url_errors_never_show_passwords, clear_env),
		cmocka_unit_test_setup(test_config_argocd_server_host_port, clear_env),
		cmocka_unit_test_setup(test_config_repositories_refuse_blank_and_empty_elements,
		                       clear_env),
		cmocka_unit_test_setup(test_config_command_associations_are_github_values,
		                       clear_env),
		cmocka_unit_test_setup(test_config_heal_template_workspace_and_cli_names,
		                       clear_env),
		cmocka_unit_test_setup(test_config_app_installation_id_is_a_number, clear_env),
		cmocka_unit_test_setup(test_config_url_port_is_a_number, clear_env),
		cmocka_unit_test_setup(test_config_alert_settings, clear_env),
		cmocka_unit_test_setup(test_config_database_ports_checked_before_connecting,
		                       clear_env),
		cmocka_unit_test_setup(test_config_errors_name_the_source_and_line, clear_env),
	};
	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
