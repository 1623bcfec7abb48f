/*
 * config.h - healer's configuration (contract section 3).
 *
 * Sources, lowest to highest precedence: built-in defaults, a YAML file
 * (--config or HEALER_CONFIG), the environment, command-line flags. Every
 * setting is named by its environment variable; the YAML file may use that
 * name or its short form (lower case, without the HEALER_ prefix:
 * HEALER_DATA_DIR -> data_dir, GITHUB_TOKEN -> github_token). A secret may be
 * given as NAME_FILE naming a file whose content (trailing newline trimmed)
 * is the value; a file that is empty or only whitespace is an error naming
 * NAME_FILE and the path (an empty secret mount is not "no secret").
 * Secrets are registered with the logger for redaction. A webhook secret or
 * API token that is set but empty (after trimming; or any empty element of
 * the webhook secret's comma list) is an error naming the key: it would
 * otherwise silently turn authentication off. An error about a URL-valued
 * setting never shows its credentials; a value error names its source (the
 * environment, the command line, or the YAML file and line).
 *
 * A loaded hl_config is immutable; reload builds a new one.
 */
#ifndef HL_CONFIG_CONFIG_H
#define HL_CONFIG_CONFIG_H

#include "base/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum hl_dispatch_mode {
	HL_DISPATCH_KUBERNETES,
	HL_DISPATCH_DIRECTORY,
	HL_DISPATCH_NONE,
};

/* Whose memories a remediation's prompt may recall (HEALER_MEMORY_SCOPE). */
enum hl_memory_scope {
	HL_MEMORY_SCOPE_OWNER, /* the repository owner's (an organization's) */
	HL_MEMORY_SCOPE_REPOSITORY,
	HL_MEMORY_SCOPE_ALL,
};

struct hl_service;

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
	bool allow_unauthenticated;       /* HEALER_ALLOW_UNAUTHENTICATED */
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
	char *memory_scope_name; /* HEALER_MEMORY_SCOPE */
	enum hl_memory_scope memory_scope;
	char *discord_webhook_url, *slack_webhook_url, *smtp_url, *email_to;
	char *email_from;           /* HEALER_EMAIL_FROM */
	int attempt_timeout_mins;   /* HEALER_ATTEMPT_TIMEOUT_MINS */
	int verify_timeout_mins;    /* HEALER_VERIFY_TIMEOUT_MINS */
	int max_active_coderuns;    /* HEALER_MAX_ACTIVE_CODERUNS (0: no cap) */
	int max_attempts_per_hour;  /* HEALER_MAX_ATTEMPTS_PER_HOUR per repository (0: no cap) */
	char *command_associations; /* HEALER_COMMAND_ASSOCIATIONS, comma list */
	int lease_seconds;          /* HEALER_LEASE_SECONDS */
	/* HEALER_PR_CHECK_SECONDS: how often the PR of a task whose agent is
	 * at work is read from GitHub (0: only before a next attempt) */
	int pr_check_seconds;
	int loop_interval_ms;   /* HEALER_LOOP_INTERVAL_MS: the loop's poll and directory scan */
	char *rules_file;       /* HEALER_RULES_FILE; NULL means the built-in rules */
	char *prompts_dir;      /* HEALER_PROMPTS_DIR; NULL means the built-in prompts */
	char *log_level;        /* HEALER_LOG_LEVEL */
	int workers;            /* HEALER_WORKERS: background processing threads */
	int worker_handoff;     /* HEALER_WORKER_HANDOFF: deliveries held for each worker */
	int context_timeout_ms; /* HEALER_CONTEXT_TIMEOUT_MS: all context sources, per event */
	int source_timeout_ms;  /* HEALER_SOURCE_TIMEOUT_MS: one context source */
	int decision_wait_ms;   /* HEALER_DECISION_WAIT_MS: how long the sensor's
	                           ci-failure call waits for the decision */
	/* HTTP limits (contract section 4 hardening) */
	int http_max_connections;   /* HEALER_HTTP_MAX_CONNECTIONS: open at once */
	int http_max_per_ip;        /* HEALER_HTTP_MAX_CONNECTIONS_PER_IP */
	char *trusted_proxies;      /* HEALER_TRUSTED_PROXIES: comma list of addresses and
	                               ranges whose X-Forwarded-For names the client */
	int http_header_timeout_s;  /* HEALER_HTTP_HEADER_TIMEOUT_S: a request's headers */
	int http_request_timeout_s; /* HEALER_HTTP_REQUEST_TIMEOUT_S: a request's body */
	int http_max_buffered_mb;   /* HEALER_HTTP_MAX_BUFFERED_MB: bodies in memory, all
	                               connections together */
	int shutdown_delay_s;       /* HEALER_SHUTDOWN_DELAY_S: after SIGTERM, /ready
	                               answers 503 and intake goes on this long */
	char *config_file;          /* the YAML file that was read, if any */
	char **key_sources;         /* where each setting came from ("default",
	                               "environment", "FILE:LINE", ...), in
	                               config.c's table order; for its messages */
	/* the heal flow (contract sections 8 and 14) */
	char *heal_workspace;        /* HEALER_HEAL_WORKSPACE: logs/ and alerts/ (default
	                                $HEALER_DATA_DIR/heal) */
	char *heal_template;         /* HEALER_HEAL_TEMPLATE: the heal CodeRun's template
	                                ("heal/claude"); its name is the CLI type */
	int heal_log_tail;           /* HEALER_HEAL_LOG_TAIL: lines of each pod log (0: all) */
	char *services_file;         /* HEALER_SERVICES_FILE: the service map (YAML) */
	struct hl_service *services; /* parsed from services_file */
	size_t n_services;
	char *heal_repository;       /* HEALER_HEAL_REPOSITORY: owner/repo of the alerts
	                                whose workload the service map maps to none */
	char *alert_namespaces;      /* HEALER_ALERT_NAMESPACES, comma list */
	char **alert_namespace_list; /* split; NULL: all but the Kubernetes system ones */
	size_t n_alert_namespaces;
	/* redelivery of failed GitHub deliveries (contract section 11) */
	char *github_hook_id;         /* GITHUB_HOOK_ID as given */
	int64_t github_hook;          /* parsed; 0 when unset (then the GitHub App's hook) */
	char *github_hook_repository; /* GITHUB_HOOK_REPOSITORY: owner/repo */
	char *github_hook_org;        /* GITHUB_HOOK_ORG */
	int redeliver_interval_mins;  /* HEALER_REDELIVER_INTERVAL_MINS (0: off) */
	int retention_days; /* HEALER_RETENTION_DAYS: ended deliveries kept (0: for ever) */
	/* memory and insights (contract section 10) */
	bool learned_routing;  /* HEALER_LEARNED_ROUTING: route by past outcomes */
	int memory_timeout_ms; /* HEALER_MEMORY_TIMEOUT_MS: one memory call (OpenMemory) */
};

/*
 * One entry of the service map (HEALER_SERVICES_FILE): what names a
 * repository's (or a service's) running system in the context sources.
 * Every string is NULL when not given; hl_service_resolve fills in the
 * defaults (the repository's short name guess).
 */
struct hl_service {
	char *repository;        /* owner/name */
	char *service;           /* the service name (default: the repository's short name) */
	char *argocd_app;        /* the ArgoCD Application (default: service) */
	char *argocd_namespace;  /* where the Application object lives (default "argocd") */
	char *loki_selector;     /* LogQL stream selector (default {app="<service>"}) */
	char *prometheus_job;    /* the Prometheus job label (default: the service label guess) */
	char *namespace;         /* where its pods run (default HEALER_NAMESPACE) */
	char *workload;          /* its Deployment / StatefulSet name (default: service) */
	char *pod_selector;      /* label selector of its pods (default app=<workload>) */
	char *grafana_dashboard; /* a Grafana dashboard uid for panel links */
};

/* An entry with every default filled in (fixed-size strings, "" when unset). */
struct hl_service_view {
	bool mapped; /* an entry of the map (false: the short-name guess) */
	char repository[256], service[128], argocd_app[254], argocd_namespace[64];
	char loki_selector[512], prometheus_job[128], namespace[64], workload[254];
	char pod_selector[512], grafana_dashboard[64];
};

/* One command-line override: the environment variable name and its value. */
struct hl_config_override {
	const char *key;
	const char *value;
};

/*
 * Builds a configuration from defaults, config_file (may be NULL: then
 * HEALER_CONFIG is consulted, where "" means no file), the environment and
 * n overrides, and validates it. A config_file (or HEALER_CONFIG override)
 * of "" is an error: a file name given on the command line is never
 * ignored. On failure err names the bad key. The result is freed with
 * hl_config_free.
 */
int hl_config_load(struct hl_config **out, const char *config_file,
                   const struct hl_config_override *overrides, size_t n, struct hl_err *err);
void hl_config_free(struct hl_config *cfg);

/* Writes the effective configuration as YAML-ish "KEY=value" lines with
 * secrets shown as "(set)"; for `healer check-config`. */
void hl_config_describe(const struct hl_config *cfg, void (*emit)(const char *line, void *payload),
                        void *payload);

/* True when the listen host is a loopback address: "localhost", an IPv4
 * address in 127.0.0.0/8 or "::1" (also as "[::1]"). */
bool hl_config_listen_is_loopback(const struct hl_config *cfg);

/*
 * The server's authentication rule: without a webhook secret
 * (GITHUB_WEBHOOK_SECRET) or an API token (HEALER_API_TOKEN) it listens on
 * loopback only, unless HEALER_ALLOW_UNAUTHENTICATED is true. Returns 0, or
 * -HL_EINVAL with err naming what is missing and how to fix it.
 */
int hl_config_check_auth(const struct hl_config *cfg, struct hl_err *err);

/* True when the repository (owner/name) passes the allowlist. */
bool hl_config_repo_allowed(const struct hl_config *cfg, const char *full_name);

/* True when alerts may diagnose the pods of namespace ns:
 * HEALER_ALERT_NAMESPACES holds it, or, unset, it is none of kube-system,
 * kube-public and kube-node-lease. */
bool hl_config_alert_namespace_allowed(const struct hl_config *cfg, const char *ns);

const char *hl_dispatch_mode_name(enum hl_dispatch_mode mode);

/* A YAML scalar as a setting's value: "" for a plain (unquoted) null
 * (~, null, Null, NULL), as YAML means it, else value itself. */
const char *hl_config_yaml_value(const char *value, bool plain);

/*
 * Loads a service map file (see struct hl_service): a YAML list of flat
 * mappings, or {services: [...]}. Errors name HEALER_SERVICES_FILE, the
 * file, the line and the key. *out (n entries) is freed with
 * hl_config_services_free. hl_config_load calls it for services_file.
 */
int hl_config_services_load(struct hl_service **out, size_t *n, const char *path,
                            struct hl_err *err);
void hl_config_services_free(struct hl_service *list, size_t n);

/* The entry of a repository (owner/name, case-insensitive), of an ArgoCD
 * application (its argocd_app, else its service or short name), or of a
 * workload in a namespace (NULL: any); NULL when none. */
const struct hl_service *hl_config_service_by_repo(const struct hl_config *cfg,
                                                   const char *repository);
const struct hl_service *hl_config_service_by_app(const struct hl_config *cfg, const char *app);
const struct hl_service *hl_config_service_by_workload(const struct hl_config *cfg,
                                                       const char *namespace, const char *workload);

/*
 * The effective names of entry s (may be NULL) for repository (may be
 * NULL): each unset field gets today's guess from the repository's short
 * name: service = short name, ArgoCD application = service, Loki selector
 * {app="<service>"}, no Prometheus job (the caller's service="<service>"
 * guess), namespace = HEALER_NAMESPACE, workload = service, pods
 * app=<workload>. Pure.
 */
void hl_service_resolve(struct hl_service_view *out, const struct hl_config *cfg,
                        const struct hl_service *s, const char *repository);

#endif
