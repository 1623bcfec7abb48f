/*
 * config.h - healer's configuration (contract section 3).
 *
 * Sources, lowest to highest precedence: built-in defaults, a YAML file
 * (--config or HEALER_CONFIG), the environment, command-line flags. Every
 * setting is named by its environment variable; the YAML file may use that
 * name or its short form (lower case, without the HEALER_ prefix:
 * HEALER_DATA_DIR -> data_dir, GITHUB_TOKEN -> github_token). A secret may be
 * given as NAME_FILE naming a file whose content (trailing newline trimmed)
 * is the value. Secrets are registered with the logger for redaction.
 *
 * A loaded hl_config is immutable; reload builds a new one.
 */
#ifndef HL_CONFIG_CONFIG_H
#define HL_CONFIG_CONFIG_H

#include "base/err.h"

#include <stdbool.h>
#include <stddef.h>

enum hl_dispatch_mode {
	HL_DISPATCH_KUBERNETES,
	HL_DISPATCH_DIRECTORY,
	HL_DISPATCH_NONE,
};

struct hl_config {
	char *listen;      /* HEALER_LISTEN host:port */
	char *listen_host; /* parsed from listen */
	int listen_port;
	char *data_dir;         /* HEALER_DATA_DIR */
	char *database_url;     /* HEALER_DATABASE_URL (a secret: may hold a password) */
	char *webhook_secret;   /* GITHUB_WEBHOOK_SECRET, comma list */
	char **webhook_secrets; /* split, NULL-terminated */
	size_t n_webhook_secrets;
	char *api_token;                  /* HEALER_API_TOKEN */
	char *github_api_url;             /* GITHUB_API_URL */
	char *github_token;               /* GITHUB_TOKEN */
	char *github_app_id;              /* GITHUB_APP_ID */
	char *github_app_private_key;     /* GITHUB_APP_PRIVATE_KEY (PEM) */
	char *github_app_installation_id; /* GITHUB_APP_INSTALLATION_ID */
	char *kubeconfig;                 /* KUBECONFIG; NULL means in-cluster or ~/.kube/config */
	char *namespace;                  /* HEALER_NAMESPACE */
	char *dispatch_name;              /* HEALER_DISPATCH as given, or the derived default */
	enum hl_dispatch_mode dispatch;
	char *repositories;     /* HEALER_REPOSITORIES, comma list */
	char **repository_list; /* split, NULL-terminated; NULL means all */
	size_t n_repositories;
	char *cli;                /* HEALER_CLI */
	char *model;              /* HEALER_MODEL */
	int max_attempts;         /* HEALER_MAX_ATTEMPTS */
	int time_window_mins;     /* HEALER_TIME_WINDOW_MINS */
	bool process_bot_commits; /* HEALER_PROCESS_BOT_COMMITS */
	char *argocd_server, *argocd_token;
	char *prometheus_url, *loki_url, *grafana_url, *grafana_token;
	char *openmemory_url, *openmemory_api_key;
	char *discord_webhook_url, *slack_webhook_url, *smtp_url, *email_to;
	char *email_from;            /* HEALER_EMAIL_FROM */
	int attempt_timeout_mins;    /* HEALER_ATTEMPT_TIMEOUT_MINS */
	int verify_timeout_mins;     /* HEALER_VERIFY_TIMEOUT_MINS */
	int max_active_coderuns;     /* HEALER_MAX_ACTIVE_CODERUNS (0: no cap) */
	int max_attempts_per_hour;   /* HEALER_MAX_ATTEMPTS_PER_HOUR per repository (0: no cap) */
	char *command_associations;  /* HEALER_COMMAND_ASSOCIATIONS, comma list */
	int lease_seconds;           /* HEALER_LEASE_SECONDS */
	int loop_interval_ms;        /* HEALER_LOOP_INTERVAL_MS: the loop's poll and directory scan */
	char *rules_file;       /* HEALER_RULES_FILE; NULL means the built-in rules */
	char *prompts_dir;      /* HEALER_PROMPTS_DIR; NULL means the built-in prompts */
	char *log_level;        /* HEALER_LOG_LEVEL */
	int workers;            /* HEALER_WORKERS: background processing threads */
	int context_timeout_ms; /* HEALER_CONTEXT_TIMEOUT_MS: all context sources, per event */
	int source_timeout_ms;  /* HEALER_SOURCE_TIMEOUT_MS: one context source */
	int decision_wait_ms;   /* HEALER_DECISION_WAIT_MS: how long the sensor's
	                           ci-failure call waits for the decision */
	char *config_file;      /* the YAML file that was read, if any */
};

/* One command-line override: the environment variable name and its value. */
struct hl_config_override {
	const char *key;
	const char *value;
};

/*
 * Builds a configuration from defaults, config_file (may be NULL: then
 * HEALER_CONFIG is consulted), the environment and n overrides, and
 * validates it. On failure err names the bad key. The result is freed with
 * hl_config_free.
 */
int hl_config_load(struct hl_config **out, const char *config_file,
                   const struct hl_config_override *overrides, size_t n, struct hl_err *err);
void hl_config_free(struct hl_config *cfg);

/* Writes the effective configuration as YAML-ish "KEY=value" lines with
 * secrets shown as "(set)"; for `healer check-config`. */
void hl_config_describe(const struct hl_config *cfg, void (*emit)(const char *line, void *payload),
                        void *payload);

/* True when the repository (owner/name) passes the allowlist. */
bool hl_config_repo_allowed(const struct hl_config *cfg, const char *full_name);

const char *hl_dispatch_mode_name(enum hl_dispatch_mode mode);

#endif
