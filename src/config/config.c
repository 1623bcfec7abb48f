/*
 * config.c - load, merge and validate healer's configuration; see config.h.
 *
 * One table lists every setting: its environment name, the struct field it
 * fills, its kind (string, secret, integer, boolean) and its default. The
 * YAML file, the environment and the overrides all go through
 * config_set(), so a key means the same thing wherever it comes from.
 */
#include "config.h"

#include "base/buf.h"
#include "base/cidr.h"
#include "base/file.h"
#include "base/log.h"
#include "base/str.h"
#include "base/url.h"
#include "crypto/jwt.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <yaml.h>

/* The longest HEALER_REDELIVER_INTERVAL_MINS (see config_finish_hook). */
#define HL_REDELIVER_INTERVAL_MAX_MINS 2880

enum config_kind { CFG_STR, CFG_SECRET, CFG_INT, CFG_BOOL };

struct config_key {
	const char *env;
	enum config_kind kind;
	size_t offset;
	const char *def;
};

#define S(env, field, def)                                           \
	{                                                            \
		env, CFG_STR, offsetof(struct hl_config, field), def \
	}
#define X(env, field)                                                    \
	{                                                                \
		env, CFG_SECRET, offsetof(struct hl_config, field), NULL \
	}
#define I(env, field, def)                                           \
	{                                                            \
		env, CFG_INT, offsetof(struct hl_config, field), def \
	}
#define B(env, field, def)                                            \
	{                                                             \
		env, CFG_BOOL, offsetof(struct hl_config, field), def \
	}

static const struct config_key config_keys[] = {
	S("HEALER_LISTEN", listen, "0.0.0.0:8080"),
	S("HEALER_DATA_DIR", data_dir, "./var"),
	/* a secret: a PostgreSQL URL may hold a password (or give it as
	 * HEALER_DATABASE_URL_FILE); the default is computed, not secret */
	X("HEALER_DATABASE_URL", database_url),
	X("GITHUB_WEBHOOK_SECRET", webhook_secret),
	X("HEALER_API_TOKEN", api_token),
	B("HEALER_ALLOW_UNAUTHENTICATED", allow_unauthenticated, "false"),
	S("GITHUB_API_URL", github_api_url, "https://api.github.com"),
	X("GITHUB_TOKEN", github_token),
	S("GITHUB_APP_ID", github_app_id, NULL),
	X("GITHUB_APP_PRIVATE_KEY", github_app_private_key),
	S("GITHUB_APP_INSTALLATION_ID", github_app_installation_id, NULL),
	S("KUBECONFIG", kubeconfig, NULL),
	S("HEALER_NAMESPACE", namespace, "cto"),
	S("HEALER_DISPATCH", dispatch_name, NULL),
	S("HEALER_REPOSITORIES", repositories, NULL),
	S("HEALER_CLI", cli, "Factory"),
	S("HEALER_MODEL", model, "claude-opus-4-5-20250929"),
	I("HEALER_MAX_ATTEMPTS", max_attempts, "3"),
	I("HEALER_TIME_WINDOW_MINS", time_window_mins, "10"),
	B("HEALER_PROCESS_BOT_COMMITS", process_bot_commits, "false"),
	S("ARGOCD_SERVER", argocd_server, NULL),
	X("ARGOCD_TOKEN", argocd_token),
	S("PROMETHEUS_URL", prometheus_url, NULL),
	S("LOKI_URL", loki_url, NULL),
	S("GRAFANA_URL", grafana_url, NULL),
	X("GRAFANA_TOKEN", grafana_token),
	S("OPENMEMORY_URL", openmemory_url, NULL),
	X("OPENMEMORY_API_KEY", openmemory_api_key),
	S("HEALER_MEMORY_SCOPE", memory_scope_name, "owner"),
	X("DISCORD_WEBHOOK_URL", discord_webhook_url),
	X("SLACK_WEBHOOK_URL", slack_webhook_url),
	X("SMTP_URL", smtp_url),
	S("HEALER_EMAIL_TO", email_to, NULL),
	S("HEALER_EMAIL_FROM", email_from, "healer@localhost"),
	I("HEALER_ATTEMPT_TIMEOUT_MINS", attempt_timeout_mins, "60"),
	I("HEALER_VERIFY_TIMEOUT_MINS", verify_timeout_mins, "45"),
	I("HEALER_MAX_ACTIVE_CODERUNS", max_active_coderuns, "10"),
	I("HEALER_MAX_ATTEMPTS_PER_HOUR", max_attempts_per_hour, "30"),
	S("HEALER_COMMAND_ASSOCIATIONS", command_associations, "OWNER,MEMBER,COLLABORATOR"),
	I("HEALER_LEASE_SECONDS", lease_seconds, "15"),
	I("HEALER_PR_CHECK_SECONDS", pr_check_seconds, "300"),
	I("HEALER_LOOP_INTERVAL_MS", loop_interval_ms, "1000"),
	S("HEALER_RULES_FILE", rules_file, NULL),
	S("HEALER_PROMPTS_DIR", prompts_dir, NULL),
	S("HEALER_LOG_LEVEL", log_level, "info"),
	I("HEALER_WORKERS", workers, "2"),
	I("HEALER_WORKER_HANDOFF", worker_handoff, "32"),
	I("HEALER_CONTEXT_TIMEOUT_MS", context_timeout_ms, "15000"),
	I("HEALER_SOURCE_TIMEOUT_MS", source_timeout_ms, "8000"),
	I("HEALER_DECISION_WAIT_MS", decision_wait_ms, "5000"),
	I("HEALER_HTTP_MAX_CONNECTIONS", http_max_connections, "1024"),
	I("HEALER_HTTP_MAX_CONNECTIONS_PER_IP", http_max_per_ip, "64"),
	S("HEALER_TRUSTED_PROXIES", trusted_proxies, NULL),
	I("HEALER_HTTP_HEADER_TIMEOUT_S", http_header_timeout_s, "10"),
	I("HEALER_HTTP_REQUEST_TIMEOUT_S", http_request_timeout_s, "60"),
	I("HEALER_HTTP_MAX_BUFFERED_MB", http_max_buffered_mb, "256"),
	I("HEALER_SHUTDOWN_DELAY_S", shutdown_delay_s, "0"),
	S("HEALER_HEAL_WORKSPACE", heal_workspace, NULL),
	S("HEALER_HEAL_TEMPLATE", heal_template, "heal/claude"),
	I("HEALER_HEAL_LOG_TAIL", heal_log_tail, "10000"),
	S("HEALER_SERVICES_FILE", services_file, NULL),
	S("HEALER_HEAL_REPOSITORY", heal_repository, NULL),
	S("HEALER_ALERT_NAMESPACES", alert_namespaces, NULL),
	S("GITHUB_HOOK_ID", github_hook_id, NULL),
	S("GITHUB_HOOK_REPOSITORY", github_hook_repository, NULL),
	S("GITHUB_HOOK_ORG", github_hook_org, NULL),
	I("HEALER_REDELIVER_INTERVAL_MINS", redeliver_interval_mins, "10"),
	I("HEALER_RETENTION_DAYS", retention_days, "30"),
	B("HEALER_LEARNED_ROUTING", learned_routing, "true"),
	I("HEALER_MEMORY_TIMEOUT_MS", memory_timeout_ms, "2000"),
};

#define N_KEYS (sizeof(config_keys) / sizeof(config_keys[0]))

static const struct config_key *
config_find(const char *name)
{
	char up[128];
	size_t i, n = strlen(name);

	if (n >= sizeof(up))
		return NULL;
	for (i = 0; i <= n; i++)
		up[i] = (char)toupper((unsigned char)name[i]);
	for (i = 0; i < N_KEYS; i++) {
		const char *env = config_keys[i].env;
		if (strcmp(up, env) == 0)
			return &config_keys[i];
		if (hl_str_starts_with(env, "HEALER_") && strcmp(up, env + 7) == 0)
			return &config_keys[i];
	}
	return NULL;
}

/* True when s[0..n) is only ASCII whitespace. */
static bool
config_blank(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!isspace((unsigned char)s[i]))
			return false;
	return true;
}

/* Where key k's value came from, for messages: "default" until set. */
static const char *
config_source(const struct hl_config *cfg, const struct config_key *k)
{
	const char *s = cfg->key_sources ? cfg->key_sources[k - config_keys] : NULL;

	return s ? s : "default";
}

/* Where the setting named key came from ("environment", "command line",
 * "FILE:LINE" or "default"), for the checks after loading. */
static const char *
config_from(const struct hl_config *cfg, const char *key)
{
	const struct config_key *k = config_find(key);

	return k ? config_source(cfg, k) : "default";
}

/* The integer settings' bounds (max INT_MAX: none but the parser's, which
 * takes 0 to CONFIG_INT_MAX), checked once every source is read. */
#define CONFIG_INT_MAX 1000000
static const struct config_range {
	const char *key;
	int min, max;
} config_ranges[] = {
	{ "HEALER_MAX_ATTEMPTS", 1, 10 },
	{ "HEALER_WORKERS", 1, 64 },
	{ "HEALER_WORKER_HANDOFF", 0, 64 },
	{ "HEALER_ATTEMPT_TIMEOUT_MINS", 1, INT_MAX },
	{ "HEALER_VERIFY_TIMEOUT_MINS", 1, INT_MAX },
	{ "HEALER_LEASE_SECONDS", 2, 3600 },
	{ "HEALER_PR_CHECK_SECONDS", 0, 86400 },
	{ "HEALER_LOOP_INTERVAL_MS", 50, 60000 },
	{ "HEALER_CONTEXT_TIMEOUT_MS", 100, INT_MAX },
	{ "HEALER_SOURCE_TIMEOUT_MS", 100, INT_MAX },
	{ "HEALER_MEMORY_TIMEOUT_MS", 50, 60000 },
	{ "HEALER_HTTP_MAX_CONNECTIONS", 16, 65536 },
	{ "HEALER_HTTP_HEADER_TIMEOUT_S", 1, 3600 },
	{ "HEALER_HTTP_REQUEST_TIMEOUT_S", 1, 3600 },
	{ "HEALER_SHUTDOWN_DELAY_S", 0, 300 },
	/* one largest body (25 MiB, held in a 32 MiB buffer) must fit */
	{ "HEALER_HTTP_MAX_BUFFERED_MB", 32, 65536 },
};

/* A value the parser refuses (not digits, or above CONFIG_INT_MAX): the
 * error names the key's own bounds, so "-1" is not told that 0 to
 * 1000000 would do where 2 to 3600 is meant. */
static int
config_int_error(const struct config_key *k, const char *value, const char *source,
                 struct hl_err *err)
{
	int min = 0, max = CONFIG_INT_MAX;
	size_t i;

	if (strcmp(k->env, "HEALER_RETENTION_DAYS") == 0)
		return hl_err_set(err, HL_EINVAL,
		                  "%s: '%.40s' must be 0 (keep everything) or an integer from 4"
		                  " to 36500 (from %s)",
		                  k->env, value, source);
	if (strcmp(k->env, "HEALER_REDELIVER_INTERVAL_MINS") == 0)
		max = HL_REDELIVER_INTERVAL_MAX_MINS;
	if (strcmp(k->env, "HEALER_HTTP_MAX_CONNECTIONS_PER_IP") == 0) {
		min = 1; /* to HEALER_HTTP_MAX_CONNECTIONS */
		max = 65536;
	}
	for (i = 0; i < sizeof(config_ranges) / sizeof(config_ranges[0]); i++)
		if (strcmp(k->env, config_ranges[i].key) == 0) {
			min = config_ranges[i].min;
			if (config_ranges[i].max != INT_MAX)
				max = config_ranges[i].max;
		}
	return hl_err_set(err, HL_EINVAL, "%s: '%.40s' must be an integer from %d to %d (from %s)",
	                  k->env, value, min, max, source);
}

/* An integer setting outside min..max (max INT_MAX: no upper bound but the
 * parser's) is an error naming the key, the value and where it came from. */
static int
config_check_range(const struct hl_config *cfg, const char *key, int min, int max,
                   struct hl_err *err)
{
	const struct config_key *k = config_find(key);
	int v = *(const int *)(const void *)((const char *)cfg + k->offset);

	if (v >= min && v <= max)
		return 0;
	if (max == INT_MAX)
		return hl_err_set(err, HL_EINVAL, "%s: %d must be at least %d (from %s)", key, v,
		                  min, config_source(cfg, k));
	return hl_err_set(err, HL_EINVAL, "%s: %d must be between %d and %d (from %s)", key, v, min,
	                  max, config_source(cfg, k));
}

/* True when s is a positive decimal integer that fits an int64 (digits
 * only: no sign, blank or leading zero). */
static bool
config_positive_id(const char *s)
{
	char *end;
	long long v;

	if (!s || !isdigit((unsigned char)s[0]) || s[0] == '0')
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	return !errno && !*end && v > 0;
}

/* GITHUB_HOOK_ID with GITHUB_HOOK_REPOSITORY or GITHUB_HOOK_ORG (contract
 * section 11), HEALER_REDELIVER_INTERVAL_MINS, and HEALER_RETENTION_DAYS,
 * which must outlast the redelivery window. */
static int
config_finish_hook(struct hl_config *cfg, struct hl_err *err)
{
	bool id = cfg->github_hook_id && *cfg->github_hook_id;
	bool repo = cfg->github_hook_repository && *cfg->github_hook_repository;
	bool org = cfg->github_hook_org && *cfg->github_hook_org;
	int rc;

	/* 0: off; at most two days, so a delivery that failed just after a
	 * pass is still in GitHub's three days of deliveries at the next */
	if ((rc = config_check_range(cfg, "HEALER_REDELIVER_INTERVAL_MINS", 0,
	                             HL_REDELIVER_INTERVAL_MAX_MINS, err)) < 0)
		return rc;
	/* past GitHub's three days of deliveries (and healer's look back at
	 * them), so a delivery is never removed while it could come again */
	if (cfg->retention_days != 0 && (cfg->retention_days < 4 || cfg->retention_days > 36500))
		return hl_err_set(err, HL_EINVAL,
		                  "HEALER_RETENTION_DAYS: %d must be 0 (keep everything) or between"
		                  " 4 and 36500 (from %s)",
		                  cfg->retention_days,
		                  config_source(cfg, config_find("HEALER_RETENTION_DAYS")));
	if (!id && (repo || org))
		return hl_err_set(err, HL_EINVAL, "%s: needs GITHUB_HOOK_ID (the hook's id)",
		                  repo ? "GITHUB_HOOK_REPOSITORY" : "GITHUB_HOOK_ORG");
	if (!id)
		return 0;
	{
		const char *p = cfg->github_hook_id;
		char *end = NULL;
		long long v;

		errno = 0;
		v = strtoll(p, &end, 10);
		if (!isdigit((unsigned char)*p) || errno || *end || v <= 0)
			return hl_err_set(
			        err, HL_EINVAL,
			        "GITHUB_HOOK_ID: '%.40s' is not a hook id (a positive number) (from %s)",
			        p, config_from(cfg, "GITHUB_HOOK_ID"));
		cfg->github_hook = (int64_t)v;
	}
	if (repo == org)
		return hl_err_set(err, HL_EINVAL,
		                  "GITHUB_HOOK_ID: needs exactly one of GITHUB_HOOK_REPOSITORY"
		                  " (owner/repo) and GITHUB_HOOK_ORG");
	if (repo) {
		const char *r = cfg->github_hook_repository;
		if (!hl_str_github_repo_valid(r))
			return hl_err_set(
			        err, HL_EINVAL,
			        "GITHUB_HOOK_REPOSITORY: '%.200s' is not owner/repo (from %s)", r,
			        config_from(cfg, "GITHUB_HOOK_REPOSITORY"));
	} else if (strchr(cfg->github_hook_org, '/')) {
		return hl_err_set(err, HL_EINVAL,
		                  "GITHUB_HOOK_ORG: '%.200s' is not an organization name (from %s)",
		                  cfg->github_hook_org, config_from(cfg, "GITHUB_HOOK_ORG"));
	}
	return 0;
}

static int
config_parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = { "1", "true", "yes", "on" };
	static const char *const no[] = { "0", "false", "no", "off", "" };
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		if (strcasecmp(v, yes[i]) == 0)
			return *out = true, 0;
	for (i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		if (strcasecmp(v, no[i]) == 0)
			return *out = false, 0;
	return -1;
}

static int config_set_value(struct hl_config *cfg, const struct config_key *k, const char *value,
                            const char *source, struct hl_err *err);

/* Sets one key from a string value; `source` names where it came from
 * (kept for the messages of the checks after loading). */
static int
config_set(struct hl_config *cfg, const struct config_key *k, const char *value, const char *source,
           struct hl_err *err)
{
	char *copy;
	int rc;

	if ((rc = config_set_value(cfg, k, value, source, err)) < 0)
		return rc;
	if (!cfg->key_sources)
		return 0;
	if (!(copy = strdup(source)))
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	free(cfg->key_sources[k - config_keys]);
	cfg->key_sources[k - config_keys] = copy;
	return 0;
}

static int
config_set_value(struct hl_config *cfg, const struct config_key *k, const char *value,
                 const char *source, struct hl_err *err)
{
	char *base = (char *)cfg + k->offset;

	switch (k->kind) {
	case CFG_STR:
	case CFG_SECRET: {
		char **slot = (char **)(void *)base;
		char *copy;
		const char *p;

		/* a model "a\nb" or a CLI with an escape sequence reaches
		 * CodeRuns, labels and terminals (a secret may be a PEM key) */
		for (p = value; k->kind == CFG_STR && *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				return hl_err_set(err, HL_EINVAL,
				                  "%s: holds a control character (from %s)", k->env,
				                  source);
		copy = strdup(value);
		if (!copy)
			return hl_err_set(err, HL_ENOMEM, "out of memory");
		free(*slot);
		*slot = copy;
		if (k->kind == CFG_SECRET)
			hl_log_add_secret(value);
		return 0;
	}
	case CFG_INT: {
		char *end;
		long v;
		errno = 0;
		v = strtol(value, &end, 10);
		/* digits only: strtol would also take " 3" and "+3" (and "3 " not) */
		if (!isdigit((unsigned char)value[0]) || errno || *end || v > CONFIG_INT_MAX)
			return config_int_error(k, value, source, err);
		*(int *)(void *)base = (int)v;
		return 0;
	}
	case CFG_BOOL:
		if (config_parse_bool(value, (bool *)(void *)base) < 0)
			return hl_err_set(err, HL_EINVAL,
			                  "%s: '%s' must be true or false (from %s)", k->env, value,
			                  source);
		return 0;
	}
	return hl_err_set(err, HL_EINTERNAL, "bad key kind");
}

static int
config_set_secret_file(struct hl_config *cfg, const struct config_key *k, const char *path,
                       const char *source, struct hl_err *err)
{
	struct hl_buf b = HL_BUF_INIT(1 << 20);
	int rc;

	if ((rc = hl_file_read(&b, path, err)) < 0) {
		hl_buf_release(&b);
		return hl_err_wrap(err, "%s_FILE", k->env);
	}
	while (b.len && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r'))
		hl_buf_setlen(&b, b.len - 1);
	/* read as a C string it would end at the NUL: a UTF-16 file's secret
	 * would be its first character */
	if (b.len && memchr(b.data, '\0', b.len)) {
		hl_buf_release(&b);
		return hl_err_set(err, HL_EINVAL,
		                  "%s_FILE: '%s' holds a NUL byte (a UTF-16 file?); write the "
		                  "value as plain text",
		                  k->env, path);
	}
	/* an empty secret mount is not "no secret": a database URL file left
	 * empty ran each replica on its own SQLite store */
	if (config_blank(b.data, b.len)) {
		hl_buf_release(&b);
		return hl_err_set(err, HL_EINVAL,
		                  "%s_FILE: '%.300s' is empty or only whitespace; write the "
		                  "value into it, or unset the variable",
		                  k->env, path);
	}
	rc = config_set(cfg, k, b.data, source, err);
	hl_buf_release(&b);
	return rc;
}

const char *
hl_config_yaml_value(const char *value, bool plain)
{
	static const char *const nulls[] = { "~", "null", "Null", "NULL" };
	size_t i;

	for (i = 0; plain && i < sizeof(nulls) / sizeof(nulls[0]); i++)
		if (strcmp(value, nulls[i]) == 0)
			return "";
	return value;
}

/* Sets key from a YAML value; a key set twice (also as "NAME" and
 * "HEALER_NAME") is an error, not "the last one wins". */
static int
config_set_yaml(struct hl_config *cfg, bool *seen, const char *key, const char *value,
                const char *path, size_t line, struct hl_err *err)
{
	const struct config_key *k = config_find(key);
	char source[4200];

	if (!k)
		return hl_err_set(err, HL_EINVAL, "%s:%zu: unknown key '%s'", path, line, key);
	if (seen[k - config_keys])
		return hl_err_set(err, HL_EINVAL, "%s:%zu: %s is set twice", path, line, k->env);
	seen[k - config_keys] = true;
	snprintf(source, sizeof(source), "%s:%zu", path, line);
	return config_set(cfg, k, value, source, err);
}

/* Reads a YAML mapping of scalars (lists of scalars become comma lists).
 * An alias (*name) is refused: the reader sees it as no value, so every
 * key after it would take the next key's name as its value. */
static int
config_read_yaml(struct hl_config *cfg, const char *path, struct hl_err *err)
{
	struct hl_buf text = HL_BUF_INIT(1 << 20), list = HL_BUF_INIT(1 << 20);
	yaml_parser_t parser;
	yaml_event_t ev;
	char *key = NULL;
	int rc = 0, depth = 0, in_list = 0, done = 0;
	size_t key_line = 0;
	bool seen[N_KEYS] = { false };

	if ((rc = hl_file_read(&text, path, err)) < 0) {
		hl_buf_release(&text);
		return hl_err_wrap(err, "config file");
	}
	if (!yaml_parser_initialize(&parser)) {
		hl_buf_release(&text);
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text.data, text.len);
	while (!done) {
		if (!yaml_parser_parse(&parser, &ev)) {
			rc = hl_err_set(err, HL_EPARSE, "%s:%zu:%zu: %s", path,
			                parser.problem_mark.line + 1,
			                parser.problem_mark.column + 1,
			                parser.problem ? parser.problem : "invalid YAML");
			break;
		}
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = 1;
			break;
		case YAML_MAPPING_START_EVENT:
			if (++depth > 1)
				rc = hl_err_set(err, HL_EPARSE,
				                "%s:%zu: '%s' must be a scalar or list", path,
				                ev.start_mark.line + 1, key ? key : "?");
			break;
		case YAML_MAPPING_END_EVENT:
			depth--;
			break;
		case YAML_SEQUENCE_START_EVENT:
			if (depth != 1 || !key || in_list)
				rc = hl_err_set(err, HL_EPARSE, "%s:%zu: unexpected list", path,
				                ev.start_mark.line + 1);
			in_list = 1;
			hl_buf_reset(&list);
			break;
		case YAML_SEQUENCE_END_EVENT:
			in_list = 0;
			rc = config_set_yaml(cfg, seen, key, list.data ? list.data : "", path,
			                     key_line, err);
			free(key);
			key = NULL;
			break;
		case YAML_ALIAS_EVENT:
			rc = hl_err_set(err, HL_EPARSE,
			                "%s:%zu: '%s': aliases (*%s) are not supported", path,
			                ev.start_mark.line + 1, key ? key : "?",
			                (const char *)ev.data.alias.anchor);
			break;
		case YAML_SCALAR_EVENT: {
			const char *raw = (const char *)ev.data.scalar.value;
			const char *v = hl_config_yaml_value(raw, ev.data.scalar.style ==
			                                                  YAML_PLAIN_SCALAR_STYLE);
			/* "a\0b" would be read as "a": a token cut short, a namespace
			 * not the one written */
			if (memchr(raw, '\0', ev.data.scalar.length)) {
				rc = hl_err_set(err, HL_EPARSE,
				                "%s:%zu: '%s' holds a NUL character", path,
				                ev.start_mark.line + 1, key ? key : raw);
			} else if (depth != 1) {
				rc = hl_err_set(err, HL_EPARSE,
				                "%s: the top level must be a mapping", path);
			} else if (in_list) {
				if (list.len)
					hl_buf_append_char(&list, ',');
				hl_buf_append_str(&list, v);
			} else if (!key) {
				key = strdup(raw); /* a key "null" is the key null, not "" */
				key_line = ev.start_mark.line + 1;
				if (!key)
					rc = hl_err_set(err, HL_ENOMEM, "out of memory");
			} else {
				rc = config_set_yaml(cfg, seen, key, v, path, key_line, err);
				free(key);
				key = NULL;
			}
			break;
		}
		default:
			break;
		}
		yaml_event_delete(&ev);
		if (rc < 0)
			break;
	}
	free(key);
	yaml_parser_delete(&parser);
	hl_buf_release(&text);
	hl_buf_release(&list);
	return rc;
}

static bool
config_file_exists(const char *path)
{
	return path && access(path, R_OK) == 0;
}

/* True when KUBECONFIG names a readable file: any of a ':' list, which the
 * Kubernetes client merges (src/net/kubeconfig.c). */
static bool
config_kubeconfig_exists(const char *list)
{
	char one[4096];
	size_t n;

	for (; list && *list; list += n + (list[n] == ':')) {
		n = strcspn(list, ":");
		if (n == 0 || n >= sizeof(one))
			continue;
		memcpy(one, list, n);
		one[n] = '\0';
		if (config_file_exists(one))
			return true;
	}
	return false;
}

static int
config_parse_listen(struct hl_config *cfg, struct hl_err *err)
{
	const char *colon = strrchr(cfg->listen, ':');
	char *end;
	long port;
	size_t hlen;

	if (!colon)
		return hl_err_set(err, HL_EINVAL, "HEALER_LISTEN: '%s' must be HOST:PORT (from %s)",
		                  cfg->listen, config_from(cfg, "HEALER_LISTEN"));
	port = strtol(colon + 1, &end, 10);
	/* digits only: not "127.0.0.1: 80", "+80" or "-0" */
	if (!isdigit((unsigned char)colon[1]) || *end || port > 65535)
		return hl_err_set(err, HL_EINVAL, "HEALER_LISTEN: bad port in '%s' (from %s)",
		                  cfg->listen, config_from(cfg, "HEALER_LISTEN"));
	hlen = (size_t)(colon - cfg->listen);
	free(cfg->listen_host);
	cfg->listen_host = strndup(cfg->listen, hlen);
	if (!cfg->listen_host)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	/* [::1]:8080 */
	if (hlen >= 2 && cfg->listen_host[0] == '[' && cfg->listen_host[hlen - 1] == ']') {
		memmove(cfg->listen_host, cfg->listen_host + 1, hlen - 2);
		cfg->listen_host[hlen - 2] = '\0';
	}
	if (!cfg->listen_host[0]) {
		free(cfg->listen_host);
		cfg->listen_host = strdup("0.0.0.0");
	}
	cfg->listen_port = (int)port;
	return 0;
}

/*
 * A URL-valued setting as an error may show it: everything up to its last
 * '@' (a "user:password@", however malformed the URL around it: a space in
 * the password, "http//" for "http://", no scheme at all) is replaced by
 * "[REDACTED]@", after the "scheme://" if it starts with one.
 */
static void
config_url_shown(struct hl_buf *out, const char *url)
{
	const char *at = strrchr(url, '@'), *sep = strstr(url, "://"), *p;
	bool scheme = sep && sep > url && isalpha((unsigned char)url[0]);

	if (!at) {
		hl_buf_append_str(out, url);
		return;
	}
	for (p = url; scheme && p < sep; p++)
		if (!isalnum((unsigned char)*p) && *p != '+' && *p != '-' && *p != '.')
			scheme = false;
	if (scheme && sep < at)
		hl_buf_append(out, url, (size_t)(sep + 3 - url));
	hl_buf_append_str(out, "[REDACTED]@");
	hl_buf_append_str(out, at + 1);
}

/*
 * The host[:port] of a URL's authority (n bytes at host): a port, when there
 * is one, is a number from 1 to 65535. "https://user:pa/ss@host" has none:
 * its authority ends at the '/', so "user" would be the host and "pa" the
 * port (a password's '/', '?', '#' and '@' must be percent-encoded); the
 * URL is refused before it reaches curl, whose error would show it whole.
 */
static bool
config_url_port_ok(const char *host, size_t n)
{
	const char *end = host + n, *port;
	long v = 0;

	if (*host == '[') {
		port = memchr(host, ']', n);
		if (!port)
			return false;
		port++;
		if (port == end)
			return true;
		if (*port != ':')
			return false;
	} else if (!(port = memchr(host, ':', n))) {
		return true;
	}
	if (++port == end)
		return false;
	for (; port < end; port++) {
		if (!isdigit((unsigned char)*port) || (v = v * 10 + (*port - '0')) > 65535)
			return false;
	}
	return v >= 1;
}

/*
 * A URL setting: one of schemes ("http" and "https" when NULL), "://", a
 * host, a port that is a number if there is one (config_url_port_ok), and
 * no whitespace or control character. A secret's value (a
 * webhook URL holds its token) is never shown in the error; another's is
 * shown without its user:password@ (config_url_shown). hint, when not
 * NULL, is added to the error (another form the setting takes).
 */
static int
config_check_url(const char *key, const char *url, bool secret, const char *const *schemes,
                 const char *hint, struct hl_err *err)
{
	static const char *const http[] = { "http", "https", NULL };
	const char *const *sc = schemes ? schemes : http;
	const char *p, *auth = NULL, *host;
	struct hl_buf shown = HL_BUF_INIT(0);
	size_t n, i;
	int rc;

	if (!url || !*url)
		return 0;
	for (i = 0; sc[i] && !auth; i++) {
		n = strlen(sc[i]);
		if (strncmp(url, sc[i], n) == 0 && strncmp(url + n, "://", 3) == 0)
			auth = url + n + 3;
	}
	if (auth) {
		/* the host: after any user:password@, before :port and the path */
		n = strcspn(auth, "/?#");
		host = auth;
		for (p = auth; p < auth + n; p++)
			if (*p == '@')
				host = p + 1;
		if (host == auth + n || *host == ':' || *host == '/' ||
		    !config_url_port_ok(host, (size_t)(auth + n - host)))
			auth = NULL;
	}
	for (p = url; auth && *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			auth = NULL;
	if (auth)
		return 0;
	if (!secret)
		config_url_shown(&shown, url);
	if (secret || hl_buf_error(&shown))
		rc = hl_err_set(err, HL_EINVAL,
		                "%s: the value (a secret, not shown) must be a %s:// or %s:// URL"
		                " with a host, a numeric port if any, and no spaces%s",
		                key, sc[0], sc[1], hint ? hint : "");
	else
		rc = hl_err_set(
		        err, HL_EINVAL,
		        "%s: '%.300s' must be a %s:// or %s:// URL with a host, a numeric port if"
		        " any, and no spaces%s",
		        key, shown.data, sc[0], sc[1], hint ? hint : "");
	hl_buf_release(&shown);
	return rc;
}

/* The password of a URL's userinfo ("scheme://user:password@host") is a
 * secret wherever it might show up (an upstream's error text, a log). */
static void
config_register_userinfo(const char *url)
{
	const char *auth, *end, *at = NULL, *colon, *p;
	char pw[512];

	if (!url || !(auth = strstr(url, "://")))
		return;
	auth += 3;
	end = auth + strcspn(auth, "/?#");
	for (p = auth; p < end; p++)
		if (*p == '@')
			at = p;
	if (!at || !(colon = memchr(auth, ':', (size_t)(at - auth))) ||
	    (size_t)(at - colon - 1) >= sizeof(pw))
		return;
	memcpy(pw, colon + 1, (size_t)(at - colon - 1));
	pw[at - colon - 1] = '\0';
	hl_log_add_secret(pw);
}

/*
 * A webhook secret or API token that is set but empty would turn
 * authentication off without a word: refuse it, naming the key.
 */
static int
config_check_secrets(const struct hl_config *cfg, struct hl_err *err)
{
	const char *p = cfg->webhook_secret, *comma;
	size_t i = 0;

	if (p) {
		for (;; i++) {
			comma = strchr(p, ',');
			if (config_blank(p, comma ? (size_t)(comma - p) : strlen(p)))
				return hl_err_set(err, HL_EINVAL,
				                  "GITHUB_WEBHOOK_SECRET: secret %zu of the list is"
				                  " empty (unset the variable to run without one)",
				                  i + 1);
			if (!comma)
				break;
			p = comma + 1;
		}
	}
	if (cfg->api_token && config_blank(cfg->api_token, strlen(cfg->api_token)))
		return hl_err_set(err, HL_EINVAL,
		                  "HEALER_API_TOKEN: is empty (unset the variable to run without"
		                  " one)");
	return 0;
}

/* The heal flow's settings: the workspace defaults under the data
 * directory (blank is an error, as for HEALER_DATA_DIR), the template is
 * "<family>/<name>" of [a-z0-9._-], neither starting with '.' (no "." or
 * ".." segment: it names a template directory), the service map parses. */
static int
config_finish_heal(struct hl_config *cfg, struct hl_err *err)
{
	const char *t = cfg->heal_template, *slash = strchr(t, '/'), *p;

	/* set but empty too: not quietly the default */
	if (cfg->heal_workspace && config_blank(cfg->heal_workspace, strlen(cfg->heal_workspace)))
		return hl_err_set(err, HL_EINVAL,
		                  "HEALER_HEAL_WORKSPACE: is blank (unset it for"
		                  " $HEALER_DATA_DIR/heal, or name a directory) (from %s)",
		                  config_from(cfg, "HEALER_HEAL_WORKSPACE"));
	if (!cfg->heal_workspace) {
		struct hl_buf b = HL_BUF_INIT(0);
		hl_buf_appendf(&b, "%s/heal", cfg->data_dir);
		free(cfg->heal_workspace);
		cfg->heal_workspace = hl_buf_detach(&b, NULL);
		if (!cfg->heal_workspace)
			return hl_err_set(err, HL_ENOMEM, "out of memory");
	}
	if (!slash || slash == t || !slash[1] || strchr(slash + 1, '/'))
		return hl_err_set(err, HL_EINVAL,
		                  "HEALER_HEAL_TEMPLATE: '%s' must be FAMILY/NAME (heal/claude)"
		                  " (from %s)",
		                  t, config_from(cfg, "HEALER_HEAL_TEMPLATE"));
	for (p = t; *p; p++)
		if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '/' ||
		      *p == '-' || *p == '_' || *p == '.'))
			return hl_err_set(err, HL_EINVAL,
			                  "HEALER_HEAL_TEMPLATE: '%s' may hold only a-z, 0-9, '.', "
			                  "'_', '-' and one '/' (from %s)",
			                  t, config_from(cfg, "HEALER_HEAL_TEMPLATE"));
	if (t[0] == '.' || slash[1] == '.')
		return hl_err_set(err, HL_EINVAL,
		                  "HEALER_HEAL_TEMPLATE: '%s': FAMILY and NAME may not start with"
		                  " '.' (no '.' or '..' segment) (from %s)",
		                  t, config_from(cfg, "HEALER_HEAL_TEMPLATE"));
	if (cfg->services_file && *cfg->services_file)
		return hl_config_services_load(&cfg->services, &cfg->n_services, cfg->services_file,
		                               err);
	return 0;
}

/*
 * ARGOCD_SERVER in the argocd CLI's own form, HOST[:PORT] without a
 * scheme, is read as https://HOST[:PORT] (what the ArgoCD client does with
 * it); a value with "://" is left to the URL check. HOST is a name or an
 * address ([v6] in brackets), PORT 1 to 65535; nothing else (no
 * user:password@, no path).
 */
static int
config_finish_argocd(struct hl_config *cfg, struct hl_err *err)
{
	const char *v = cfg->argocd_server, *p;
	struct hl_buf b = HL_BUF_INIT(0);
	long port = 0;
	int rc;

	if (!v || !*v || strstr(v, "://"))
		return 0;
	p = v;
	if (*p == '[') {
		for (p++; isxdigit((unsigned char)*p) || *p == ':' || *p == '.'; p++)
			;
		p = *p == ']' && p > v + 1 ? p + 1 : v;
	} else {
		while (isalnum((unsigned char)*p) || *p == '-' || *p == '.')
			p++;
	}
	if (p > v && *p == ':' && isdigit((unsigned char)p[1])) {
		for (p++; isdigit((unsigned char)*p) && port <= 65535; p++)
			port = port * 10 + (*p - '0');
		if (port < 1 || port > 65535)
			p = v;
	}
	if (p == v || *p) {
		config_url_shown(&b, v);
		rc = hl_err_set(err, HL_EINVAL,
		                "ARGOCD_SERVER: '%.300s' must be HOST[:PORT] (read as https://) or"
		                " a http:// or https:// URL with a host and no spaces",
		                hl_buf_error(&b) ? "" : b.data);
		hl_buf_release(&b);
		return rc;
	}
	hl_buf_appendf(&b, "https://%s", v);
	if (hl_buf_error(&b)) {
		hl_buf_release(&b);
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	}
	free(cfg->argocd_server);
	cfg->argocd_server = hl_buf_detach(&b, NULL);
	return cfg->argocd_server ? 0 : hl_err_set(err, HL_ENOMEM, "out of memory");
}

/* GitHub's author_association values (the webhook's comment payloads). */
static bool
config_association_ok(const char *v)
{
	static const char *const known[] = {
		"OWNER",       "MEMBER",    "COLLABORATOR", "CONTRIBUTOR", "FIRST_TIME_CONTRIBUTOR",
		"FIRST_TIMER", "MANNEQUIN", "NONE"
	};
	size_t i;

	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcasecmp(v, known[i]) == 0)
			return true;
	return false;
}

/*
 * A comma list setting, read as its users read it (elements trimmed of
 * blanks): every element must pass ok, which what (e.g. "owner/repo")
 * describes. A blank value or an empty element is an error naming the key:
 * " " or "a/b,,c/d" is a typo, not a list. "" is left to the caller (it
 * means unset).
 */
static int
config_check_list(const struct hl_config *cfg, const char *key, const char *value,
                  bool (*ok)(const char *), const char *what, struct hl_err *err)
{
	const char *p = value, *comma;
	char one[256];
	size_t i, n;

	if (config_blank(value, strlen(value)))
		return hl_err_set(err, HL_EINVAL,
		                  "%s: is blank (unset it, or give the list) (from %s)", key,
		                  config_from(cfg, key));
	for (i = 1;; i++, p = comma + 1) {
		comma = strchr(p, ',');
		n = comma ? (size_t)(comma - p) : strlen(p);
		while (n && (*p == ' ' || *p == '\t'))
			p++, n--;
		while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (!n)
			return hl_err_set(err, HL_EINVAL,
			                  "%s: element %zu of the list is empty (an extra ',')"
			                  " (from %s)",
			                  key, i, config_from(cfg, key));
		if (n >= sizeof(one))
			return hl_err_set(err, HL_EINVAL,
			                  "%s: '%.40s...' is not %s (too long) (from %s)", key, p,
			                  what, config_from(cfg, key));
		memcpy(one, p, n);
		one[n] = '\0';
		if (!ok(one))
			return hl_err_set(err, HL_EINVAL, "%s: '%s' is not %s (from %s)", key, one,
			                  what, config_from(cfg, key));
		if (!comma)
			return 0;
	}
}

/*
 * A libpq port setting as libpq reads it: a comma list (one port per host)
 * whose elements are empty (the default port) or a number from 1 to 65535
 * with blanks around it allowed.
 */
static bool
config_pg_ports_ok(const char *s, size_t n)
{
	size_t i = 0, a, b;
	long v;

	while (i <= n) {
		for (b = i; b < n && s[b] != ','; b++)
			;
		a = i;
		i = b + 1;
		while (a < b && isspace((unsigned char)s[a]))
			a++;
		while (b > a && isspace((unsigned char)s[b - 1]))
			b--;
		if (a == b)
			continue;
		for (v = 0; a < b; a++) {
			if (!isdigit((unsigned char)s[a]) || (v = v * 10 + (s[a] - '0')) > 65535)
				return false;
		}
		if (v < 1)
			return false;
	}
	return true;
}

/* The ports of a PostgreSQL URL as libpq parses it
 * (postgres://[user[:password]@]host[:port][,host[:port]...][/db][?k=v&...]):
 * each host's port and a port= parameter. */
static bool
config_pg_url_ports_ok(const char *url)
{
	const char *p = strstr(url, "://") + 3, *q, *end;

	/* libpq's user:password@ ends at the first '@' before any '/' */
	for (q = p; *q && *q != '@' && *q != '/'; q++)
		;
	if (*q == '@')
		p = q + 1;
	for (;;) {
		if (*p == '[') {
			while (*p && *p != ']')
				p++;
			if (*p)
				p++;
		} else {
			p += strcspn(p, ":/?,");
		}
		if (*p == ':') {
			q = ++p;
			p += strcspn(p, "/?,");
			if (!config_pg_ports_ok(q, (size_t)(p - q)))
				return false;
		}
		if (*p != ',')
			break;
		p++;
	}
	if (!(p = strchr(p, '?')))
		return true;
	for (p++; *p; p = *end ? end + 1 : end) {
		end = p + strcspn(p, "&");
		if (strncmp(p, "port=", 5) == 0 &&
		    !config_pg_ports_ok(p + 5, (size_t)(end - p - 5)))
			return false;
	}
	return true;
}

/* The port= settings of libpq key/value settings ("host=h port=5432"),
 * values unquoted or '...' with backslash escapes, as libpq reads them. */
static bool
config_pg_keywords_ports_ok(const char *s)
{
	struct hl_buf val = HL_BUF_INIT(1 << 16);
	const char *key;
	size_t klen;
	bool ok = true;

	while (ok && *s) {
		while (isspace((unsigned char)*s))
			s++;
		key = s;
		while (*s && *s != '=' && !isspace((unsigned char)*s))
			s++;
		klen = (size_t)(s - key);
		while (isspace((unsigned char)*s))
			s++;
		if (!klen || *s != '=')
			break; /* not key/value settings: the store's check says so */
		for (s++; isspace((unsigned char)*s);)
			s++;
		hl_buf_reset(&val);
		if (*s == '\'') {
			for (s++; *s && *s != '\''; s++) {
				if (*s == '\\' && s[1])
					s++;
				hl_buf_append_char(&val, *s);
			}
			if (*s)
				s++;
		} else {
			for (; *s && !isspace((unsigned char)*s); s++) {
				if (*s == '\\' && s[1])
					s++;
				hl_buf_append_char(&val, *s);
			}
		}
		if (klen == 4 && strncmp(key, "port", 4) == 0)
			ok = !hl_buf_error(&val) &&
			     config_pg_ports_ok(val.data ? val.data : "", val.len);
	}
	hl_buf_release(&val);
	return ok;
}

/* The ports of a store location libpq will read (config_database_ok
 * passed it). */
static bool
config_database_ports_ok(const char *url)
{
	if (hl_str_starts_with(url, "sqlite:"))
		return true;
	if (hl_str_starts_with(url, "postgres://") || hl_str_starts_with(url, "postgresql://"))
		return config_pg_url_ports_ok(url);
	return config_pg_keywords_ports_ok(url);
}

/* A store location healer knows: "sqlite:PATH", a PostgreSQL URL, or
 * libpq key/value settings ("host=/run/postgresql dbname=healer"). */
static bool
config_database_ok(const char *url)
{
	const char *p = url;

	if (hl_str_starts_with(url, "sqlite:") || hl_str_starts_with(url, "postgres://") ||
	    hl_str_starts_with(url, "postgresql://"))
		return true;
	while (*p == ' ' || *p == '\t')
		p++;
	if (!((*p >= 'a' && *p <= 'z') || *p == '_'))
		return false;
	while ((*p >= 'a' && *p <= 'z') || *p == '_')
		p++;
	while (*p == ' ' || *p == '\t')
		p++;
	return *p == '=';
}

/* The integer settings' bounds. */
static int
config_check_ranges(const struct hl_config *cfg, struct hl_err *err)
{
	size_t i;
	int rc;

	for (i = 0; i < sizeof(config_ranges) / sizeof(config_ranges[0]); i++)
		if ((rc = config_check_range(cfg, config_ranges[i].key, config_ranges[i].min,
		                             config_ranges[i].max, err)) < 0)
			return rc;
	if (cfg->http_max_per_ip < 1 || cfg->http_max_per_ip > cfg->http_max_connections)
		return hl_err_set(
		        err, HL_EINVAL,
		        "HEALER_HTTP_MAX_CONNECTIONS_PER_IP: %d must be between 1 and"
		        " HEALER_HTTP_MAX_CONNECTIONS (%d) (from %s)",
		        cfg->http_max_per_ip, cfg->http_max_connections,
		        config_source(cfg, config_find("HEALER_HTTP_MAX_CONNECTIONS_PER_IP")));
	return 0;
}

/* A string setting of struct hl_config by its key. */
struct config_string_field {
	const char *key;
	size_t offset;
};

static const char *
config_string_at(const struct hl_config *cfg, const struct config_string_field *f)
{
	return *(char *const *)(const void *)((const char *)cfg + f->offset);
}

static int
config_finish(struct hl_config *cfg, struct hl_err *err)
{
	static const struct config_string_field urls[] = {
		{ "GITHUB_API_URL", offsetof(struct hl_config, github_api_url) },
		{ "ARGOCD_SERVER", offsetof(struct hl_config, argocd_server) },
		{ "PROMETHEUS_URL", offsetof(struct hl_config, prometheus_url) },
		{ "LOKI_URL", offsetof(struct hl_config, loki_url) },
		{ "GRAFANA_URL", offsetof(struct hl_config, grafana_url) },
		{ "OPENMEMORY_URL", offsetof(struct hl_config, openmemory_url) },
		{ "DISCORD_WEBHOOK_URL", offsetof(struct hl_config, discord_webhook_url) },
		{ "SLACK_WEBHOOK_URL", offsetof(struct hl_config, slack_webhook_url) },
	};
	static const char *const smtp[] = { "smtp", "smtps", NULL };
	static const struct config_string_field required[] = {
		{ "HEALER_DATA_DIR", offsetof(struct hl_config, data_dir) },
		{ "HEALER_NAMESPACE", offsetof(struct hl_config, namespace) },
		{ "HEALER_CLI", offsetof(struct hl_config, cli) },
		{ "HEALER_MODEL", offsetof(struct hl_config, model) },
		{ "GITHUB_API_URL", offsetof(struct hl_config, github_api_url) },
		{ "HEALER_EMAIL_FROM", offsetof(struct hl_config, email_from) },
	};
	static const struct config_string_field names[] = {
		{ "HEALER_CLI", offsetof(struct hl_config, cli) },
		{ "HEALER_MODEL", offsetof(struct hl_config, model) },
	};
	size_t i;
	int rc;

	if ((rc = config_parse_listen(cfg, err)) < 0)
		return rc;
	/* settings with a default that cannot mean "none": blank is an error,
	 * not a namespace " " or a CodeRun without a model */
	for (i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		const char *v = config_string_at(cfg, &required[i]);
		if (!v || config_blank(v, strlen(v)))
			return hl_err_set(err, HL_EINVAL, "%s: must not be empty (from %s)",
			                  required[i].key, config_from(cfg, required[i].key));
	}
	/* names a CodeRun carries: "  Factory " from a file or the environment
	 * is refused, not trimmed in one place and kept in another */
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const char *v = config_string_at(cfg, &names[i]);
		size_t n = strlen(v);

		if (isspace((unsigned char)v[0]) || isspace((unsigned char)v[n - 1]))
			return hl_err_set(
			        err, HL_EINVAL, "%s: '%s' begins or ends with a blank (from %s)",
			        names[i].key, v, config_source(cfg, config_find(names[i].key)));
	}
	/* the CodeRuns' namespace is a path segment of every Kubernetes call:
	 * "Bad NS" or "../x" would fail only once a failure was taken in */
	if (!hl_str_k8s_label_valid(cfg->namespace))
		return hl_err_set(
		        err, HL_EINVAL,
		        "HEALER_NAMESPACE: '%.200s' is not a Kubernetes namespace (a-z, 0-9"
		        " and '-', at most 63 characters) (from %s)",
		        cfg->namespace, config_from(cfg, "HEALER_NAMESPACE"));
	if (!cfg->database_url || !*cfg->database_url) {
		struct hl_buf b = HL_BUF_INIT(0);
		hl_buf_appendf(&b, "sqlite:%s/healer.db", cfg->data_dir);
		free(cfg->database_url);
		cfg->database_url = hl_buf_detach(&b, NULL);
		if (!cfg->database_url)
			return hl_err_set(err, HL_ENOMEM, "out of memory");
	} else if (!config_database_ok(cfg->database_url)) {
		return hl_err_set(err, HL_EINVAL,
		                  "HEALER_DATABASE_URL: must be sqlite:PATH, postgres://... or"
		                  " libpq settings (host=... dbname=...)");
	} else if (!config_database_ports_ok(cfg->database_url)) {
		/* libpq finds it only when it connects ("invalid integer value");
		 * worded as the store's check of the settings; the value is not
		 * shown: a port may be a mistyped password */
		return hl_err_set(err, HL_EINVAL,
		                  "HEALER_DATABASE_URL: libpq cannot read the settings: a port is"
		                  " not a number from 1 to 65535 (the value, a secret, is not"
		                  " shown)");
	}
	if ((rc = config_finish_argocd(cfg, err)) < 0)
		return rc;
	for (i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		const struct config_key *k = config_find(urls[i].key);
		bool argocd = urls[i].offset == offsetof(struct hl_config, argocd_server);

		if ((rc = config_check_url(urls[i].key, config_string_at(cfg, &urls[i]),
		                           k && k->kind == CFG_SECRET, NULL,
		                           argocd ? " (or HOST[:PORT])" : NULL, err)) < 0)
			return rc;
	}
	/* found at escalation time otherwise, the worst moment */
	if ((rc = config_check_url("SMTP_URL", cfg->smtp_url, true, smtp, NULL, err)) < 0)
		return rc;
	for (i = 0; i < sizeof(urls) / sizeof(urls[0]); i++)
		config_register_userinfo(config_string_at(cfg, &urls[i]));
	config_register_userinfo(cfg->database_url);
	if ((rc = config_check_secrets(cfg, err)) < 0)
		return rc;
	if (cfg->webhook_secret && *cfg->webhook_secret) {
		cfg->webhook_secrets =
		        hl_str_split_list(cfg->webhook_secret, &cfg->n_webhook_secrets);
		if (!cfg->webhook_secrets)
			return hl_err_set(err, HL_ENOMEM, "out of memory");
		for (i = 0; i < cfg->n_webhook_secrets; i++)
			hl_log_add_secret(cfg->webhook_secrets[i]);
	}
	if (cfg->repositories && *cfg->repositories) {
		/* names GitHub allows: a wildcard or "acme/my app" would match
		 * nothing and skip every delivery without a word; so would " " */
		if ((rc = config_check_list(cfg, "HEALER_REPOSITORIES", cfg->repositories,
		                            hl_str_github_repo_valid, "owner/repo", err)) < 0)
			return rc;
		cfg->repository_list = hl_str_split_list(cfg->repositories, &cfg->n_repositories);
		if (!cfg->repository_list)
			return hl_err_set(err, HL_ENOMEM, "out of memory");
	}
	/* the alerts' repository when the service map names none: never one
	 * the allowlist refuses (every alert would be skipped without a word) */
	if (cfg->heal_repository && *cfg->heal_repository) {
		if (!hl_str_github_repo_valid(cfg->heal_repository))
			return hl_err_set(err, HL_EINVAL,
			                  "HEALER_HEAL_REPOSITORY: '%.200s' is not "
			                  "owner/repo (from %s)",
			                  cfg->heal_repository,
			                  config_from(cfg, "HEALER_HEAL_REPOSITORY"));
		if (!hl_config_repo_allowed(cfg, cfg->heal_repository))
			return hl_err_set(
			        err, HL_EINVAL,
			        "HEALER_HEAL_REPOSITORY: '%s' is not in HEALER_REPOSITORIES (from %s)",
			        cfg->heal_repository, config_from(cfg, "HEALER_HEAL_REPOSITORY"));
	}
	if (cfg->alert_namespaces && *cfg->alert_namespaces) {
		if ((rc = config_check_list(cfg, "HEALER_ALERT_NAMESPACES", cfg->alert_namespaces,
		                            hl_str_k8s_label_valid, "a Kubernetes namespace name",
		                            err)) < 0)
			return rc;
		cfg->alert_namespace_list =
		        hl_str_split_list(cfg->alert_namespaces, &cfg->n_alert_namespaces);
		if (!cfg->alert_namespace_list)
			return hl_err_set(err, HL_ENOMEM, "out of memory");
	}
	/* "" lets nobody give commands; "FOO" or "OWNER," is a typo */
	if (cfg->command_associations && *cfg->command_associations &&
	    (rc = config_check_list(
	             cfg, "HEALER_COMMAND_ASSOCIATIONS", cfg->command_associations,
	             config_association_ok,
	             "an author_association GitHub sends (OWNER, MEMBER, COLLABORATOR,"
	             " CONTRIBUTOR, FIRST_TIME_CONTRIBUTOR, FIRST_TIMER,"
	             " MANNEQUIN, NONE)",
	             err)) < 0)
		return rc;
	if ((rc = config_check_ranges(cfg, err)) < 0)
		return rc;
	if (cfg->trusted_proxies) {
		struct hl_cidr proxies[HL_CIDR_MAX];
		struct hl_err perr = HL_ERR_INIT;
		size_t n_proxies = 0;

		if (hl_cidr_list_parse(proxies, &n_proxies, cfg->trusted_proxies, &perr) < 0)
			return hl_err_set(err, HL_EINVAL, "HEALER_TRUSTED_PROXIES: %s (from %s)",
			                  perr.msg, config_from(cfg, "HEALER_TRUSTED_PROXIES"));
	}
	if (hl_log_parse_level(cfg->log_level) < 0)
		return hl_err_set(
		        err, HL_EINVAL,
		        "HEALER_LOG_LEVEL: '%s' must be debug, info, warn or error (from %s)",
		        cfg->log_level, config_from(cfg, "HEALER_LOG_LEVEL"));
	{
		int napp = !!(cfg->github_app_id && *cfg->github_app_id) +
		           !!(cfg->github_app_private_key && *cfg->github_app_private_key) +
		           !!(cfg->github_app_installation_id && *cfg->github_app_installation_id);
		if (napp != 0 && napp != 3)
			return hl_err_set(
			        err, HL_EINVAL,
			        "GITHUB_APP_ID: GitHub App auth needs GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY and GITHUB_APP_INSTALLATION_ID together");
		/* a path segment of the token call: GitHub's installation ids
		 * are positive integers */
		if (napp == 3 && !config_positive_id(cfg->github_app_installation_id))
			return hl_err_set(
			        err, HL_EINVAL,
			        "GITHUB_APP_INSTALLATION_ID: '%.64s' is not an installation "
			        "id (a positive integer) (from %s)",
			        cfg->github_app_installation_id,
			        config_from(cfg, "GITHUB_APP_INSTALLATION_ID"));
		/* read now as each App token will read it: a public key or
		 * garbage would pass /ready and fail every delivery */
		if (napp == 3) {
			struct hl_err kerr = HL_ERR_INIT;

			if ((rc = hl_jwt_check_key(cfg->github_app_private_key, &kerr)) ==
			    -HL_ENOMEM)
				return hl_err_set(err, HL_ENOMEM, "out of memory");
			if (rc < 0)
				return hl_err_set(
				        err, HL_EINVAL,
				        "GITHUB_APP_PRIVATE_KEY: %s (from %s): give the App's "
				        "private key (PEM, RSA)",
				        kerr.msg, config_from(cfg, "GITHUB_APP_PRIVATE_KEY"));
		}
	}
	if ((rc = config_finish_hook(cfg, err)) < 0)
		return rc;
	if (!cfg->dispatch_name || !*cfg->dispatch_name) {
		const char *home = getenv("HOME");
		char path[4096];
		bool cluster =
		        config_kubeconfig_exists(cfg->kubeconfig) ||
		        (getenv("KUBERNETES_SERVICE_HOST") &&
		         config_file_exists("/var/run/secrets/kubernetes.io/serviceaccount/token"));
		if (!cluster && (!cfg->kubeconfig || !*cfg->kubeconfig) && home) {
			snprintf(path, sizeof(path), "%s/.kube/config", home);
			cluster = config_file_exists(path);
		}
		free(cfg->dispatch_name);
		cfg->dispatch_name = strdup(cluster ? "kubernetes" : "directory");
		if (!cfg->dispatch_name)
			return hl_err_set(err, HL_ENOMEM, "out of memory");
	}
	if ((rc = config_finish_heal(cfg, err)) < 0)
		return rc;
	if (strcmp(cfg->memory_scope_name, "owner") == 0)
		cfg->memory_scope = HL_MEMORY_SCOPE_OWNER;
	else if (strcmp(cfg->memory_scope_name, "repository") == 0)
		cfg->memory_scope = HL_MEMORY_SCOPE_REPOSITORY;
	else if (strcmp(cfg->memory_scope_name, "all") == 0)
		cfg->memory_scope = HL_MEMORY_SCOPE_ALL;
	else
		return hl_err_set(err, HL_EINVAL,
		                  "HEALER_MEMORY_SCOPE: '%s' must be owner, repository or all"
		                  " (from %s)",
		                  cfg->memory_scope_name, config_from(cfg, "HEALER_MEMORY_SCOPE"));
	if (strcmp(cfg->dispatch_name, "kubernetes") == 0)
		cfg->dispatch = HL_DISPATCH_KUBERNETES;
	else if (strcmp(cfg->dispatch_name, "directory") == 0)
		cfg->dispatch = HL_DISPATCH_DIRECTORY;
	else if (strcmp(cfg->dispatch_name, "none") == 0)
		cfg->dispatch = HL_DISPATCH_NONE;
	else
		return hl_err_set(err, HL_EINVAL,
		                  "HEALER_DISPATCH: '%s' must be kubernetes, directory or none"
		                  " (from %s)",
		                  cfg->dispatch_name, config_from(cfg, "HEALER_DISPATCH"));
	return 0;
}

int
hl_config_load(struct hl_config **out, const char *config_file,
               const struct hl_config_override *overrides, size_t n, struct hl_err *err)
{
	struct hl_config *cfg = calloc(1, sizeof(*cfg));
	char envname[160];
	size_t i;
	int rc = 0;

	if (!cfg)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	if (!(cfg->key_sources = calloc(N_KEYS, sizeof(*cfg->key_sources)))) {
		rc = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < N_KEYS && rc == 0; i++)
		if (config_keys[i].def)
			rc = config_set(cfg, &config_keys[i], config_keys[i].def, "default", err);
	if (rc < 0)
		goto out;
	for (i = 0; i < n; i++)
		if (strcmp(overrides[i].key, "HEALER_CONFIG") == 0)
			config_file = overrides[i].value;
	/* a file named on the command line is read, never ignored: `--config
	 * ""` (an unset shell variable) is an error; an empty HEALER_CONFIG in
	 * the environment is no file, as the README says */
	if (config_file && !*config_file) {
		rc = hl_err_set(err, HL_EINVAL,
		                "config file: the name is empty (--config ''); name the YAML "
		                "file, or leave the option out");
		goto out;
	}
	if (!config_file)
		config_file = getenv("HEALER_CONFIG");
	if (config_file && *config_file) {
		if ((rc = config_read_yaml(cfg, config_file, err)) < 0)
			goto out;
		cfg->config_file = strdup(config_file);
	}
	for (i = 0; i < N_KEYS; i++) {
		const struct config_key *k = &config_keys[i];
		const char *v = getenv(k->env);
		if (k->kind == CFG_SECRET) {
			snprintf(envname, sizeof(envname), "%s_FILE", k->env);
			const char *f = getenv(envname);
			/* set to no file at all: not "no secret" */
			if (f && !*f) {
				rc = hl_err_set(
				        err, HL_EINVAL,
				        "%s: is empty (name the file, or unset the variable)",
				        envname);
				goto out;
			}
			/* both: which one is meant? (an empty GITHUB_TOKEN beside
			 * GITHUB_TOKEN_FILE discarded the file's token) */
			if (f && v) {
				rc = hl_err_set(err, HL_EINVAL,
				                "%s and %s are both set; set only one of them",
				                k->env, envname);
				goto out;
			}
			if (f && (rc = config_set_secret_file(cfg, k, f, envname, err)) < 0)
				goto out;
		}
		if (v && (rc = config_set(cfg, k, v, "environment", err)) < 0)
			goto out;
	}
	for (i = 0; i < n; i++) {
		const struct config_key *k;
		if (strcmp(overrides[i].key, "HEALER_CONFIG") == 0)
			continue;
		k = config_find(overrides[i].key);
		if (!k) {
			rc = hl_err_set(err, HL_EINVAL, "unknown setting '%s'", overrides[i].key);
			goto out;
		}
		if ((rc = config_set(cfg, k, overrides[i].value, "command line", err)) < 0)
			goto out;
	}
	rc = config_finish(cfg, err);
out:
	if (rc < 0) {
		hl_config_free(cfg);
		return rc;
	}
	*out = cfg;
	return 0;
}

void
hl_config_free(struct hl_config *cfg)
{
	size_t i;

	if (!cfg)
		return;
	for (i = 0; i < N_KEYS; i++)
		if (config_keys[i].kind == CFG_STR || config_keys[i].kind == CFG_SECRET)
			free(*(char **)(void *)((char *)cfg + config_keys[i].offset));
	if (cfg->key_sources)
		for (i = 0; i < N_KEYS; i++)
			free(cfg->key_sources[i]);
	free(cfg->key_sources);
	free(cfg->listen_host);
	free(cfg->config_file);
	hl_str_list_free(cfg->webhook_secrets);
	hl_str_list_free(cfg->repository_list);
	hl_str_list_free(cfg->alert_namespace_list);
	hl_config_services_free(cfg->services, cfg->n_services);
	free(cfg);
}

void
hl_config_describe(const struct hl_config *cfg, void (*emit)(const char *line, void *payload),
                   void *payload)
{
	char line[1200];
	size_t i;

	for (i = 0; i < N_KEYS; i++) {
		const struct config_key *k = &config_keys[i];
		const char *base = (const char *)cfg + k->offset;
		switch (k->kind) {
		case CFG_STR: {
			const char *v = *(char *const *)(const void *)base;
			struct hl_buf shown = HL_BUF_INIT(0);

			/* a URL's user:password@ is a credential */
			hl_url_strip_userinfo_text(&shown, v ? v : "");
			snprintf(line, sizeof(line), "%s=%s", k->env,
			         hl_buf_error(&shown) ? "(unprintable)" : shown.data);
			hl_buf_release(&shown);
			break;
		}
		case CFG_SECRET: {
			const char *v = *(char *const *)(const void *)base;
			/* a SQLite location holds no credentials; a database URL
			 * is shown without its user:password@ unless it may carry a
			 * password elsewhere (?password=, ?sslpassword=, a name
			 * libpq decodes from %XX, key/value settings) */
			if (v && k->offset == offsetof(struct hl_config, database_url) &&
			    (hl_str_starts_with(v, "sqlite:") ||
			     (strstr(v, "://") && !strstr(v, "password") && !strchr(v, '%')))) {
				struct hl_buf shown = HL_BUF_INIT(0);

				hl_url_strip_userinfo_text(&shown, v);
				snprintf(line, sizeof(line), "%s=%s", k->env,
				         hl_buf_error(&shown) ? "(set)" : shown.data);
				hl_buf_release(&shown);
			} else
				snprintf(line, sizeof(line), "%s=%s", k->env,
				         v && *v ? "(set)" : "");
			break;
		}
		case CFG_INT:
			snprintf(line, sizeof(line), "%s=%d", k->env,
			         *(const int *)(const void *)base);
			break;
		case CFG_BOOL:
			snprintf(line, sizeof(line), "%s=%s", k->env,
			         *(const bool *)(const void *)base ? "true" : "false");
			break;
		}
		emit(line, payload);
	}
}

bool
hl_config_listen_is_loopback(const struct hl_config *cfg)
{
	const char *h = cfg->listen_host;
	struct in_addr a4;
	struct in6_addr a6;

	if (!h)
		return false;
	if (strcasecmp(h, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, h, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	return inet_pton(AF_INET6, h, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

int
hl_config_check_auth(const struct hl_config *cfg, struct hl_err *err)
{
	bool hook = cfg->n_webhook_secrets > 0, api = cfg->api_token != NULL;

	if ((hook && api) || cfg->allow_unauthenticated || hl_config_listen_is_loopback(cfg))
		return 0;
	return hl_err_set(err, HL_EINVAL,
	                  "HEALER_LISTEN: refusing to listen on '%s' without %s%s%s; set %s,"
	                  " listen on 127.0.0.1, or set HEALER_ALLOW_UNAUTHENTICATED=true",
	                  cfg->listen, hook ? "" : "GITHUB_WEBHOOK_SECRET",
	                  hook || api ? "" : " and ", api ? "" : "HEALER_API_TOKEN",
	                  hook || api ? "it" : "them");
}

bool
hl_config_repo_allowed(const struct hl_config *cfg, const char *full_name)
{
	size_t i;

	if (!cfg->repository_list)
		return true;
	if (!full_name)
		return false;
	for (i = 0; i < cfg->n_repositories; i++)
		if (strcasecmp(cfg->repository_list[i], full_name) == 0)
			return true;
	return false;
}

bool
hl_config_alert_namespace_allowed(const struct hl_config *cfg, const char *ns)
{
	static const char *const system[] = { "kube-system", "kube-public", "kube-node-lease" };
	size_t i;

	if (!ns || !*ns)
		return false;
	if (!cfg->alert_namespace_list) {
		for (i = 0; i < sizeof(system) / sizeof(system[0]); i++)
			if (strcmp(ns, system[i]) == 0)
				return false;
		return true;
	}
	for (i = 0; i < cfg->n_alert_namespaces; i++)
		if (strcmp(cfg->alert_namespace_list[i], ns) == 0)
			return true;
	return false;
}

const char *
hl_dispatch_mode_name(enum hl_dispatch_mode mode)
{
	switch (mode) {
	case HL_DISPATCH_KUBERNETES:
		return "kubernetes";
	case HL_DISPATCH_DIRECTORY:
		return "directory";
	case HL_DISPATCH_NONE:
		return "none";
	}
	return "none";
}
