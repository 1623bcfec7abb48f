/*
 * services.c - the service map (HEALER_SERVICES_FILE): which ArgoCD
 * application, Loki selector, Prometheus job, namespace, pods and Grafana
 * dashboard belong to a repository or a service; see config.h.
 *
 * The file is YAML: a list of flat mappings, or a mapping whose key
 * "services" holds that list. Every value is a scalar; an unknown key, a
 * key set twice in an entry, an alias (*name), a nested value, an entry
 * without repository or service, or a repository that is not owner/name is
 * an error naming the file, the line and the key.
 * Invariants: a loaded map is immutable; every string of an entry is NULL
 * or non-empty; hl_service_resolve never returns an empty name.
 */
#include "base/buf.h"
#include "base/file.h"
#include "base/str.h"
#include "config.h"

#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#define SERVICES_MAX 1024

static const struct {
	const char *key;
	size_t offset;
} services_keys[] = {
	{ "repository", offsetof(struct hl_service, repository) },
	{ "service", offsetof(struct hl_service, service) },
	{ "argocd_app", offsetof(struct hl_service, argocd_app) },
	{ "argocd_namespace", offsetof(struct hl_service, argocd_namespace) },
	{ "loki_selector", offsetof(struct hl_service, loki_selector) },
	{ "prometheus_job", offsetof(struct hl_service, prometheus_job) },
	{ "namespace", offsetof(struct hl_service, namespace) },
	{ "workload", offsetof(struct hl_service, workload) },
	{ "pod_selector", offsetof(struct hl_service, pod_selector) },
	{ "grafana_dashboard", offsetof(struct hl_service, grafana_dashboard) },
};

#define N_SERVICE_KEYS (sizeof(services_keys) / sizeof(services_keys[0]))

static char **
services_slot(struct hl_service *s, size_t i)
{
	return (char **)(void *)((char *)s + services_keys[i].offset);
}

static void
services_entry_release(struct hl_service *s)
{
	size_t i;

	for (i = 0; i < N_SERVICE_KEYS; i++)
		free(*services_slot(s, i));
	memset(s, 0, sizeof(*s));
}

void
hl_config_services_free(struct hl_service *list, size_t n)
{
	size_t i;

	for (i = 0; list && i < n; i++)
		services_entry_release(&list[i]);
	free(list);
}

/* Values stay on one line, never carry a backtick (they are shown in code
 * spans) and, but for the Loki selector, never a quote that could end the
 * query they go into. */
static bool
services_value_ok(const char *key, const char *v)
{
	const char *p;

	for (p = v; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '`')
			return false;
	if (strcmp(key, "loki_selector") == 0)
		return true;
	return strchr(v, '"') == NULL && strchr(v, '\\') == NULL;
}

static int
services_check(const struct hl_service *s, const char *path, size_t line, struct hl_err *err)
{
	const char *r = s->repository;
	size_t i;

	if (!s->repository && !s->service)
		return hl_err_set(err, HL_EINVAL,
		                  "HEALER_SERVICES_FILE: %s:%zu: an entry needs 'repository' or "
		                  "'service'",
		                  path, line);
	if (r && !hl_str_github_repo_valid(r))
		return hl_err_set(err, HL_EINVAL,
		                  "HEALER_SERVICES_FILE: %s:%zu: repository '%s' is not "
		                  "owner/repo",
		                  path, line, r);
	if ((s->namespace && !hl_str_k8s_label_valid(s->namespace)) ||
	    (s->argocd_namespace && !hl_str_k8s_label_valid(s->argocd_namespace)))
		return hl_err_set(err, HL_EINVAL,
		                  "HEALER_SERVICES_FILE: %s:%zu: %s '%.100s' is not a Kubernetes "
		                  "namespace",
		                  path, line,
		                  s->namespace && !hl_str_k8s_label_valid(s->namespace)
		                          ? "namespace"
		                          : "argocd_namespace",
		                  s->namespace && !hl_str_k8s_label_valid(s->namespace)
		                          ? s->namespace
		                          : s->argocd_namespace);
	for (i = 0; i < N_SERVICE_KEYS; i++) {
		const char *v = *services_slot((struct hl_service *)s, i);
		if (v && !services_value_ok(services_keys[i].key, v))
			return hl_err_set(err, HL_EINVAL,
			                  "HEALER_SERVICES_FILE: %s:%zu: '%s' holds a control "
			                  "character, a backtick or a quote",
			                  path, line, services_keys[i].key);
	}
	return 0;
}

/*
 * The parser's states: 0 before the top node, 1 inside the top mapping
 * (waiting for "services"), 2 inside the list, 3 inside an entry.
 */
int
hl_config_services_load(struct hl_service **out, size_t *n_out, const char *path,
                        struct hl_err *err)
{
	struct hl_buf text = HL_BUF_INIT(8u << 20);
	struct hl_service *list = NULL, cur;
	yaml_parser_t parser;
	yaml_event_t ev;
	size_t n = 0, cap = 0, line = 0, entry_line = 0;
	char *key = NULL;
	int rc = 0, state = 0, done = 0;
	bool top_map = false, seen[N_SERVICE_KEYS];

	memset(&cur, 0, sizeof(cur));
	if ((rc = hl_file_read(&text, path, err)) < 0) {
		hl_buf_release(&text);
		return hl_err_wrap(err, "HEALER_SERVICES_FILE");
	}
	if (!yaml_parser_initialize(&parser)) {
		hl_buf_release(&text);
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text.data, text.len);
	while (!done && rc == 0) {
		if (!yaml_parser_parse(&parser, &ev)) {
			rc = hl_err_set(err, HL_EPARSE, "HEALER_SERVICES_FILE: %s:%zu:%zu: %s",
			                path, parser.problem_mark.line + 1,
			                parser.problem_mark.column + 1,
			                parser.problem ? parser.problem : "invalid YAML");
			break;
		}
		line = ev.start_mark.line + 1;
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = 1;
			break;
		case YAML_SEQUENCE_START_EVENT:
			if (state == 0 || (state == 1 && key && strcmp(key, "services") == 0))
				state = 2;
			else
				rc = hl_err_set(err, HL_EPARSE,
				                "HEALER_SERVICES_FILE: %s:%zu: unexpected list",
				                path, line);
			free(key);
			key = NULL;
			break;
		case YAML_SEQUENCE_END_EVENT:
			state = top_map ? 1 : 0;
			break;
		case YAML_MAPPING_START_EVENT:
			if (state == 0) {
				state = 1;
				top_map = true;
			} else if (state == 2) {
				if (n >= SERVICES_MAX) {
					rc = hl_err_set(
					        err, HL_EINVAL,
					        "HEALER_SERVICES_FILE: %s: more than %d entries",
					        path, SERVICES_MAX);
					break;
				}
				state = 3;
				entry_line = line; /* an entry's problems name its first line */
				memset(&cur, 0, sizeof(cur));
				memset(seen, 0, sizeof(seen));
			} else {
				rc = hl_err_set(
				        err, HL_EPARSE,
				        "HEALER_SERVICES_FILE: %s:%zu: '%s' must be a scalar", path,
				        line, key ? key : "?");
			}
			break;
		case YAML_MAPPING_END_EVENT:
			if (state == 3) {
				if ((rc = services_check(&cur, path, entry_line, err)) < 0)
					break;
				if (n == cap) {
					size_t nc = cap ? cap * 2 : 8;
					struct hl_service *nl = realloc(list, nc * sizeof(*nl));
					if (!nl) {
						rc = hl_err_set(err, HL_ENOMEM, "out of memory");
						break;
					}
					list = nl;
					cap = nc;
				}
				list[n++] = cur;
				memset(&cur, 0, sizeof(cur));
				state = 2;
			} else if (state == 1) {
				state = 0;
			}
			break;
		case YAML_SCALAR_EVENT: {
			const char *v = hl_config_yaml_value((const char *)ev.data.scalar.value,
			                                     ev.data.scalar.style ==
			                                             YAML_PLAIN_SCALAR_STYLE);
			size_t i;

			/* "web\0x" would be read as "web" */
			if (memchr(ev.data.scalar.value, '\0', ev.data.scalar.length)) {
				rc = hl_err_set(
				        err, HL_EPARSE,
				        "HEALER_SERVICES_FILE: %s:%zu: a NUL character in '%s'",
				        path, line, key ? key : v);
				break;
			}
			if (state == 1 && !key) {
				if (strcmp(v, "services") != 0) {
					rc = hl_err_set(err, HL_EINVAL,
					                "HEALER_SERVICES_FILE: %s:%zu: unknown key "
					                "'%s' (expected 'services')",
					                path, line, v);
					break;
				}
				key = strdup(v);
			} else if (state == 3 && !key) {
				key = strdup(v);
				if (!key)
					rc = hl_err_set(err, HL_ENOMEM, "out of memory");
			} else if (state == 3) {
				for (i = 0; i < N_SERVICE_KEYS; i++)
					if (strcmp(services_keys[i].key, key) == 0)
						break;
				if (i == N_SERVICE_KEYS) {
					rc = hl_err_set(
					        err, HL_EINVAL,
					        "HEALER_SERVICES_FILE: %s:%zu: unknown key '%s'",
					        path, line, key);
				} else if (seen[i]) {
					rc = hl_err_set(err, HL_EINVAL,
					                "HEALER_SERVICES_FILE: %s:%zu: '%s' is set "
					                "twice in one entry",
					                path, line, key);
				} else {
					seen[i] = true;
					if (*v && !(*services_slot(&cur, i) = strdup(v)))
						rc = hl_err_set(err, HL_ENOMEM, "out of memory");
				}
				free(key);
				key = NULL;
			} else if (state == 1 && key) {
				/* services: ~ (an empty map) */
				free(key);
				key = NULL;
			} else {
				rc = hl_err_set(err, HL_EPARSE,
				                "HEALER_SERVICES_FILE: %s:%zu: expected a list of "
				                "services",
				                path, line);
			}
			break;
		}
		case YAML_ALIAS_EVENT:
			/* read as no value, it would shift every key after it */
			rc = hl_err_set(err, HL_EPARSE,
			                "HEALER_SERVICES_FILE: %s:%zu: aliases (*%s) are not "
			                "supported",
			                path, line, (const char *)ev.data.alias.anchor);
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	free(key);
	services_entry_release(&cur);
	yaml_parser_delete(&parser);
	hl_buf_release(&text);
	if (rc < 0) {
		hl_config_services_free(list, n);
		return rc;
	}
	*out = list;
	*n_out = n;
	return 0;
}

/* The short name of owner/name ("name"), or the whole string. */
static const char *
services_short(const char *repository)
{
	const char *slash = repository ? strrchr(repository, '/') : NULL;

	return slash ? slash + 1 : repository;
}

static bool
services_eq(const char *a, const char *b)
{
	return a && b && strcasecmp(a, b) == 0;
}

const struct hl_service *
hl_config_service_by_repo(const struct hl_config *cfg, const char *repository)
{
	size_t i;

	for (i = 0; repository && i < cfg->n_services; i++)
		if (services_eq(cfg->services[i].repository, repository))
			return &cfg->services[i];
	return NULL;
}

const struct hl_service *
hl_config_service_by_app(const struct hl_config *cfg, const char *app)
{
	size_t i;

	for (i = 0; app && i < cfg->n_services; i++) {
		const struct hl_service *s = &cfg->services[i];
		const char *name = s->argocd_app ? s->argocd_app
		                   : s->service  ? s->service
		                                 : services_short(s->repository);
		if (services_eq(name, app))
			return s;
	}
	return NULL;
}

const struct hl_service *
hl_config_service_by_workload(const struct hl_config *cfg, const char *namespace,
                              const char *workload)
{
	size_t i;

	for (i = 0; workload && i < cfg->n_services; i++) {
		const struct hl_service *s = &cfg->services[i];
		const char *ns = s->namespace ? s->namespace : cfg->namespace;
		const char *name = s->workload  ? s->workload
		                   : s->service ? s->service
		                                : services_short(s->repository);
		if (namespace && !services_eq(ns, namespace))
			continue;
		if (services_eq(name, workload))
			return s;
	}
	return NULL;
}

void
hl_service_resolve(struct hl_service_view *out, const struct hl_config *cfg,
                   const struct hl_service *s, const char *repository)
{
	const char *repo = s && s->repository ? s->repository : repository;
	const char *name = s && s->service ? s->service : services_short(repo);

	memset(out, 0, sizeof(*out));
	out->mapped = s != NULL;
	hl_strlcpy(out->repository, repo ? repo : "", sizeof(out->repository));
	hl_strlcpy(out->service, name ? name : "", sizeof(out->service));
	hl_strlcpy(out->argocd_app, s && s->argocd_app ? s->argocd_app : out->service,
	           sizeof(out->argocd_app));
	hl_strlcpy(out->argocd_namespace, s && s->argocd_namespace ? s->argocd_namespace : "argocd",
	           sizeof(out->argocd_namespace));
	if (s && s->loki_selector)
		hl_strlcpy(out->loki_selector, s->loki_selector, sizeof(out->loki_selector));
	else
		snprintf(out->loki_selector, sizeof(out->loki_selector), "{app=\"%s\"}",
		         out->service);
	hl_strlcpy(out->prometheus_job, s && s->prometheus_job ? s->prometheus_job : "",
	           sizeof(out->prometheus_job));
	hl_strlcpy(out->namespace, s && s->namespace ? s->namespace : cfg->namespace,
	           sizeof(out->namespace));
	hl_strlcpy(out->workload, s && s->workload ? s->workload : out->service,
	           sizeof(out->workload));
	if (s && s->pod_selector)
		hl_strlcpy(out->pod_selector, s->pod_selector, sizeof(out->pod_selector));
	else
		snprintf(out->pod_selector, sizeof(out->pod_selector), "app=%s", out->workload);
	hl_strlcpy(out->grafana_dashboard, s && s->grafana_dashboard ? s->grafana_dashboard : "",
	           sizeof(out->grafana_dashboard));
}
