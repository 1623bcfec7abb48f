/*
 * kube.c - Kubernetes API client: configuration loading (kubeconfig YAML via
 * libyaml, in-cluster service account), JSON calls through the fetch engine,
 * pods/logs/events, CodeRuns and the list+watch loop.
 *
 * Invariants: a loaded struct hl_kube is never modified; tokens live only in
 * the Authorization value built per call (wiped after use) and never reach an
 * error message; every watch loop is bounded by its duration.
 */
#include "kube.h"

#include "base/clock.h"
#include "base/file.h"
#include "base/str.h"

#include "json/json.h"
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <yaml.h>

#define KUBE_SA_DIR         "/var/run/secrets/kubernetes.io/serviceaccount"
#define KUBE_MAX_YAML_NODES 100000
#define KUBE_MAX_FILE       (4u * 1024 * 1024)

/* ---- YAML -> JSON ---- */

static json_t *
kube_yaml_node(yaml_document_t *doc, yaml_node_t *node, int depth, size_t *budget)
{
	json_t *v = NULL;

	if (!node || depth > 64 || *budget == 0)
		return NULL;
	(*budget)--;
	switch (node->type) {
	case YAML_SCALAR_NODE: {
		const char *s = (const char *)node->data.scalar.value;
		size_t n = node->data.scalar.length;

		if (node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
		    (n == 0 || (n == 1 && s[0] == '~') || (n == 4 && memcmp(s, "null", 4) == 0)))
			return json_null();
		return json_stringn(s, n);
	}
	case YAML_SEQUENCE_NODE: {
		yaml_node_item_t *it;

		v = json_array();
		if (!v)
			return NULL;
		for (it = node->data.sequence.items.start; it < node->data.sequence.items.top;
		     it++) {
			json_t *c = kube_yaml_node(doc, yaml_document_get_node(doc, *it), depth + 1,
			                           budget);

			if (!c || json_array_append_new(v, c) < 0) {
				json_decref(v);
				return NULL;
			}
		}
		return v;
	}
	case YAML_MAPPING_NODE: {
		yaml_node_pair_t *pr;

		v = json_object();
		if (!v)
			return NULL;
		for (pr = node->data.mapping.pairs.start; pr < node->data.mapping.pairs.top; pr++) {
			yaml_node_t *kn = yaml_document_get_node(doc, pr->key);
			json_t *c;
			char *key;

			if (!kn || kn->type != YAML_SCALAR_NODE)
				continue; /* complex keys are not used by kubeconfig */
			c = kube_yaml_node(doc, yaml_document_get_node(doc, pr->value), depth + 1,
			                   budget);
			if (!c) {
				json_decref(v);
				return NULL;
			}
			key = strndup((const char *)kn->data.scalar.value, kn->data.scalar.length);
			if (!key || json_object_set_new(v, key, c) < 0) {
				free(key);
				json_decref(v);
				return NULL;
			}
			free(key);
		}
		return v;
	}
	default:
		return NULL;
	}
}

int
hl_kube_yaml_to_json(json_t **out, const char *yaml, size_t n, struct hl_err *err)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root;
	size_t budget = KUBE_MAX_YAML_NODES;
	json_t *v;
	int ret = 0;

	if (!yaml_parser_initialize(&parser))
		return hl_err_set(err, HL_ENOMEM, "yaml parser init failed");
	yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, n);
	if (!yaml_parser_load(&parser, &doc)) {
		ret = hl_err_set(err, HL_EPARSE, "yaml line %zu column %zu: %s",
		                 parser.problem_mark.line + 1, parser.problem_mark.column + 1,
		                 parser.problem ? parser.problem : "parse error");
		yaml_parser_delete(&parser);
		return ret;
	}
	root = yaml_document_get_root_node(&doc);
	if (!root) {
		v = json_object();
	} else {
		v = kube_yaml_node(&doc, root, 0, &budget);
	}
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	if (!v)
		return hl_err_set(err, budget == 0 ? HL_ETOOBIG : HL_EPARSE,
		                  "yaml document is too deep, too big or malformed");
	*out = v;
	return 0;
}

/* ---- configuration ---- */

void
hl_kube_free(struct hl_kube *k)
{
	if (!k)
		return;
	free(k->server);
	free(k->ca_data);
	free(k->ca_file);
	if (k->token) {
		explicit_bzero(k->token, strlen(k->token));
		free(k->token);
	}
	free(k->token_file);
	free(k->client_cert);
	if (k->client_key) {
		explicit_bzero(k->client_key, strlen(k->client_key));
		free(k->client_key);
	}
	free(k->namespace);
	free(k->source);
	free(k);
}

/* Decodes standard base64 (whitespace ignored) into a malloc'd NUL-terminated
 * string. */
static int
kube_b64_decode(char **out, const char *s, const char *what, struct hl_err *err)
{
	size_t n = strlen(s), j = 0;
	unsigned acc = 0;
	int bits = 0;
	char *d = malloc(n * 3 / 4 + 4);

	if (!d)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	for (; *s; s++) {
		int v;
		unsigned char c = (unsigned char)*s;

		if (c >= 'A' && c <= 'Z')
			v = c - 'A';
		else if (c >= 'a' && c <= 'z')
			v = c - 'a' + 26;
		else if (c >= '0' && c <= '9')
			v = c - '0' + 52;
		else if (c == '+' || c == '-')
			v = 62;
		else if (c == '/' || c == '_')
			v = 63;
		else if (c == '=' || isspace(c))
			continue;
		else {
			free(d);
			return hl_err_set(err, HL_EPARSE, "'%s' is not valid base64", what);
		}
		acc = acc << 6 | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			d[j++] = (char)(acc >> bits & 0xff);
		}
	}
	d[j] = '\0';
	*out = d;
	return 0;
}

static int
kube_read_text(char **out, const char *path, const char *what, struct hl_err *err)
{
	struct hl_buf b = HL_BUF_INIT(KUBE_MAX_FILE);
	struct hl_err e = HL_ERR_INIT;

	if (hl_file_read(&b, path, &e) < 0) {
		hl_buf_release(&b);
		return hl_err_set(err, e.code ? e.code : HL_EIO, "%s: %s", what, e.msg);
	}
	*out = hl_buf_detach(&b, NULL);
	if (!*out)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	return 0;
}

/* Makes path absolute against base_dir (malloc'd). */
static char *
kube_resolve(const char *path, const char *base_dir)
{
	char *r = NULL;

	if (path[0] == '/' || !base_dir || !*base_dir)
		return strdup(path);
	if (asprintf(&r, "%s/%s", base_dir, path) < 0)
		return NULL;
	return r;
}

/* Finds the entry named name in a kubeconfig list (clusters, users, contexts)
 * and returns its inner object (key inner). */
static json_t *
kube_named(const json_t *cfg, const char *list, const char *name, const char *inner)
{
	json_t *arr = json_object_get(cfg, list), *it;
	size_t i;

	if (!json_is_array(arr) || !name)
		return NULL;
	json_array_foreach(arr, i, it)
	{
		const char *n = hl_json_str(it, "name");

		if (n && strcmp(n, name) == 0)
			return json_object_get(it, inner);
	}
	return NULL;
}

static bool
kube_truthy(const json_t *v)
{
	const char *s;

	if (json_is_true(v))
		return true;
	s = json_string_value(v);
	return s && (strcasecmp(s, "true") == 0 || strcasecmp(s, "yes") == 0 ||
	             strcasecmp(s, "on") == 0);
}

static int
kube_dup(char **dst, const char *s)
{
	if (!s)
		return 0;
	*dst = strdup(s);
	return *dst ? 0 : -1;
}

int
hl_kube_config_parse(struct hl_kube **out, const char *yaml, size_t n, const char *base_dir,
                     struct hl_err *err)
{
	json_t *cfg = NULL, *ctx, *cluster, *user;
	struct hl_kube *k = NULL;
	const char *cur, *s;
	int ret = 0;

	ret = hl_kube_yaml_to_json(&cfg, yaml, n, err);
	if (ret < 0)
		return hl_err_wrap(err, "kubeconfig");
	k = calloc(1, sizeof(*k));
	if (!k) {
		ret = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	k->timeout_ms = 15000;
	cur = hl_json_str(cfg, "current-context");
	if (!cur) {
		ret = hl_err_set(err, HL_EINVAL, "kubeconfig: no 'current-context'");
		goto out;
	}
	ctx = kube_named(cfg, "contexts", cur, "context");
	if (!json_is_object(ctx)) {
		ret = hl_err_set(err, HL_EINVAL, "kubeconfig: context '%s' not found", cur);
		goto out;
	}
	s = hl_json_str(ctx, "cluster");
	cluster = kube_named(cfg, "clusters", s, "cluster");
	if (!json_is_object(cluster)) {
		ret = hl_err_set(err, HL_EINVAL, "kubeconfig: cluster '%s' not found",
		                 s ? s : "(none)");
		goto out;
	}
	s = hl_json_str(cluster, "server");
	if (!s || !(hl_str_starts_with(s, "https://") || hl_str_starts_with(s, "http://"))) {
		ret = hl_err_set(err, HL_EINVAL, "kubeconfig: cluster '%s' has no http(s) 'server'",
		                 hl_json_str_or(ctx, "cluster", ""));
		goto out;
	}
	if (kube_dup(&k->server, s) < 0)
		goto oom;
	while (k->server[0] && k->server[strlen(k->server) - 1] == '/')
		k->server[strlen(k->server) - 1] = '\0';
	k->insecure = kube_truthy(json_object_get(cluster, "insecure-skip-tls-verify"));
	if ((s = hl_json_str(cluster, "certificate-authority-data"))) {
		ret = kube_b64_decode(&k->ca_data, s, "certificate-authority-data", err);
		if (ret < 0)
			goto out;
	} else if ((s = hl_json_str(cluster, "certificate-authority"))) {
		k->ca_file = kube_resolve(s, base_dir);
		if (!k->ca_file)
			goto oom;
	}
	s = hl_json_str(ctx, "namespace");
	if (kube_dup(&k->namespace, s && *s ? s : "default") < 0)
		goto oom;
	s = hl_json_str(ctx, "user");
	user = kube_named(cfg, "users", s, "user");
	if (json_is_object(user)) {
		const char *cert = NULL, *key = NULL;

		if (json_object_get(user, "exec") || json_object_get(user, "auth-provider")) {
			if (!hl_json_str(user, "token") && !hl_json_str(user, "tokenFile")) {
				ret = hl_err_set(err, HL_EUNSUPPORTED,
				                 "kubeconfig: user '%s' uses an exec/auth-provider "
				                 "plugin, which is not supported",
				                 hl_json_str_or(ctx, "user", ""));
				goto out;
			}
		}
		if (kube_dup(&k->token, hl_json_str(user, "token")) < 0)
			goto oom;
		if ((s = hl_json_str(user, "tokenFile"))) {
			k->token_file = kube_resolve(s, base_dir);
			if (!k->token_file)
				goto oom;
		}
		if ((cert = hl_json_str(user, "client-certificate-data"))) {
			ret = kube_b64_decode(&k->client_cert, cert, "client-certificate-data",
			                      err);
			if (ret < 0)
				goto out;
		} else if ((cert = hl_json_str(user, "client-certificate"))) {
			char *p = kube_resolve(cert, base_dir);

			if (!p)
				goto oom;
			ret = kube_read_text(&k->client_cert, p, "kubeconfig client-certificate",
			                     err);
			free(p);
			if (ret < 0)
				goto out;
		}
		if ((key = hl_json_str(user, "client-key-data"))) {
			ret = kube_b64_decode(&k->client_key, key, "client-key-data", err);
			if (ret < 0)
				goto out;
		} else if ((key = hl_json_str(user, "client-key"))) {
			char *p = kube_resolve(key, base_dir);

			if (!p)
				goto oom;
			ret = kube_read_text(&k->client_key, p, "kubeconfig client-key", err);
			free(p);
			if (ret < 0)
				goto out;
		}
	}
	if (kube_dup(&k->source, "kubeconfig") < 0)
		goto oom;
	*out = k;
	k = NULL;
	goto out;
oom:
	ret = hl_err_set(err, HL_ENOMEM, "out of memory");
out:
	json_decref(cfg);
	hl_kube_free(k);
	return ret;
}

int
hl_kube_load_incluster(struct hl_kube **out, const char *sa_dir, struct hl_err *err)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	struct hl_kube *k = NULL;
	char path[PATH_MAX];
	char *ns = NULL;
	struct stat st;
	int ret = 0;

	if (!sa_dir)
		sa_dir = KUBE_SA_DIR;
	if (!host || !*host)
		return hl_err_set(err, HL_ENOTFOUND,
		                  "not running in a cluster "
		                  "(KUBERNETES_SERVICE_HOST unset)");
	snprintf(path, sizeof(path), "%s/token", sa_dir);
	if (stat(path, &st) < 0)
		return hl_err_set(err, HL_ENOTFOUND, "in-cluster token '%s' not found", path);
	k = calloc(1, sizeof(*k));
	if (!k)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	k->timeout_ms = 15000;
	if (asprintf(&k->server, strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host,
	             port && *port ? port : "443") < 0) {
		k->server = NULL;
		goto oom;
	}
	if (!(k->token_file = strdup(path)))
		goto oom;
	snprintf(path, sizeof(path), "%s/ca.crt", sa_dir);
	if (stat(path, &st) == 0 && !(k->ca_file = strdup(path)))
		goto oom;
	snprintf(path, sizeof(path), "%s/namespace", sa_dir);
	if (stat(path, &st) == 0 && kube_read_text(&ns, path, "in-cluster namespace", NULL) == 0) {
		char *t = hl_str_trim_dup(ns);

		free(ns);
		k->namespace = t;
	}
	if (!k->namespace && !(k->namespace = strdup("default")))
		goto oom;
	if (!k->namespace[0]) {
		free(k->namespace);
		if (!(k->namespace = strdup("default")))
			goto oom;
	}
	if (!(k->source = strdup("in-cluster")))
		goto oom;
	*out = k;
	return 0;
oom:
	ret = hl_err_set(err, HL_ENOMEM, "out of memory");
	hl_kube_free(k);
	return ret;
}

int
hl_kube_load(struct hl_kube **out, const char *kubeconfig, struct hl_err *err)
{
	struct hl_buf text = HL_BUF_INIT(KUBE_MAX_FILE);
	char home_cfg[PATH_MAX];
	const char *path = kubeconfig;
	char *dir = NULL, *slash;
	int ret;

	if (!path || !*path) {
		const char *home = getenv("HOME");
		struct stat st;

		if (getenv("KUBERNETES_SERVICE_HOST"))
			return hl_kube_load_incluster(out, NULL, err);
		if (!home)
			return hl_err_set(err, HL_ENOTFOUND, "no kubernetes configuration found");
		snprintf(home_cfg, sizeof(home_cfg), "%s/.kube/config", home);
		if (stat(home_cfg, &st) < 0)
			return hl_err_set(err, HL_ENOTFOUND,
			                  "no kubernetes configuration found (KUBECONFIG unset, "
			                  "not in a cluster, no '%s')",
			                  home_cfg);
		path = home_cfg;
	} else if (strchr(path, ':')) {
		/* a KUBECONFIG list: use the first file, as kubectl's first-wins merge
		 * does for current-context in the common single-file case */
		static __thread char first[PATH_MAX];
		size_t n = (size_t)(strchr(path, ':') - path);

		if (n >= sizeof(first))
			n = sizeof(first) - 1;
		memcpy(first, path, n);
		first[n] = '\0';
		path = first;
	}
	ret = hl_file_read(&text, path, err);
	if (ret < 0) {
		hl_buf_release(&text);
		return hl_err_wrap(err, "kubeconfig '%s'", path);
	}
	dir = strdup(path);
	if (!dir) {
		hl_buf_release(&text);
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	}
	slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	else
		strcpy(dir, ".");
	ret = hl_kube_config_parse(out, text.data, text.len, dir, err);
	free(dir);
	hl_buf_release(&text);
	return ret;
}

/* ---- calls ---- */

int
hl_kube_req_init(const struct hl_kube *k, struct hl_fetch_req *req, struct hl_buf *url,
                 struct hl_buf *auth, const char *method, const char *path, struct hl_err *err)
{
	memset(req, 0, sizeof(*req));
	hl_buf_reset(url);
	hl_buf_append_str(url, k->server);
	hl_buf_append_str(url, path);
	if (hl_buf_error(url))
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	hl_buf_reset(auth);
	if (k->token_file) {
		struct hl_buf t = HL_BUF_INIT(64 * 1024);
		struct hl_err e = HL_ERR_INIT;
		char *trim;

		if (hl_file_read(&t, k->token_file, &e) < 0) {
			hl_buf_release(&t);
			return hl_err_set(err, HL_EAUTH, "kubernetes token file '%s': %s",
			                  k->token_file, e.msg);
		}
		trim = hl_str_trim_dup(t.data);
		explicit_bzero(t.data, t.len);
		hl_buf_release(&t);
		if (!trim)
			return hl_err_set(err, HL_ENOMEM, "out of memory");
		hl_buf_appendf(auth, "Bearer %s", trim);
		explicit_bzero(trim, strlen(trim));
		free(trim);
	} else if (k->token && *k->token) {
		hl_buf_appendf(auth, "Bearer %s", k->token);
	}
	if (hl_buf_error(auth))
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	req->method = method;
	req->url = url->data;
	req->auth = auth->len ? auth->data : NULL;
	req->ca_data = k->ca_data;
	req->ca_file = k->ca_file;
	req->insecure = k->insecure;
	req->client_cert = k->client_cert;
	req->client_key = k->client_key;
	req->timeout_ms = k->timeout_ms > 0 ? k->timeout_ms : 15000;
	req->max_retries = -1;
	req->headers[0] = "Accept: application/json";
	return 0;
}

static void
kube_auth_release(struct hl_buf *auth)
{
	if (auth->len)
		explicit_bzero(auth->data, auth->len);
	hl_buf_release(auth);
}

/* Turns a non-2xx answer into an error carrying the API Status message. */
static int
kube_status_error(const struct hl_fetch_res *res, const char *method, const char *path,
                  struct hl_err *err)
{
	json_t *st = NULL;
	const char *msg = NULL;
	int code, ret;
	char what[320];

	snprintf(what, sizeof(what), "kubernetes %s '%.256s'", method, path);
	if (res->err.code || (res->status >= 200 && res->status < 300))
		return hl_fetch_check(res, what, err);
	if (hl_json_parse(&st, res->body.data, res->body.len, NULL) == 0)
		msg = hl_json_str(st, "message");
	if (!msg) {
		ret = hl_fetch_check(res, what, err);
		json_decref(st);
		return ret;
	}
	if (res->status == 401 || res->status == 403)
		code = HL_EAUTH;
	else if (res->status == 404)
		code = HL_ENOTFOUND;
	else if (res->status == 409)
		code = HL_ECONFLICT;
	else if (res->status == 400 || res->status == 422)
		code = HL_EINVAL;
	else
		code = HL_EUPSTREAM;
	ret = hl_err_set(err, code, "%s: status %ld: %s", what, res->status, msg);
	json_decref(st);
	return ret;
}

static int
kube_call_ex(const struct hl_kube *k, json_t **out, long *status_out, const char *method,
             const char *path, const json_t *body, int max_retries, struct hl_err *err)
{
	struct hl_buf url = HL_BUF_INIT(0), auth = HL_BUF_INIT(0);
	struct hl_fetch_req req;
	struct hl_fetch_res res;
	char *text = NULL;
	json_t *v = NULL;
	int ret;

	hl_fetch_res_init(&res);
	ret = hl_kube_req_init(k, &req, &url, &auth, method, path, err);
	if (ret < 0)
		goto out;
	if (body && (ret = hl_fetch_req_set_json(&req, &text, body, err)) < 0)
		goto out;
	req.max_retries = max_retries;
	hl_fetch_run(&req, &res, 1, 0, err);
	if (status_out)
		*status_out = res.status;
	ret = kube_status_error(&res, method, path, err);
	if (ret < 0)
		goto out;
	if (out) {
		if (res.body.len == 0) {
			v = json_object();
		} else if (hl_json_parse(&v, res.body.data, res.body.len, err) < 0) {
			ret = hl_err_wrap(err, "kubernetes %s '%s': answer", method, path);
			goto out;
		}
		*out = v;
	}
out:
	free(text);
	hl_buf_release(&url);
	kube_auth_release(&auth);
	hl_fetch_res_release(&res);
	return ret;
}

int
hl_kube_call(const struct hl_kube *k, json_t **out, long *status_out, const char *method,
             const char *path, const json_t *body, struct hl_err *err)
{
	/* the engine retries idempotent methods only */
	return kube_call_ex(k, out, status_out, method, path, body, -1, err);
}

/* Builds "/api/v1/namespaces/{ns}/{kind}[/{name}][/{sub}]" style paths. */
static int
kube_path(struct hl_buf *p, const char *prefix, const char *ns, const char *kind, const char *name,
          const char *sub)
{
	hl_buf_append_str(p, prefix);
	hl_buf_append_str(p, "/namespaces/");
	hl_fetch_url_escape(p, ns);
	hl_buf_append_char(p, '/');
	hl_buf_append_str(p, kind);
	if (name) {
		hl_buf_append_char(p, '/');
		hl_fetch_url_escape(p, name);
	}
	if (sub) {
		hl_buf_append_char(p, '/');
		hl_buf_append_str(p, sub);
	}
	return hl_buf_error(p);
}

static int
kube_get(const struct hl_kube *k, json_t **out, struct hl_buf *path, struct hl_err *err)
{
	int ret;

	if (hl_buf_error(path))
		ret = hl_err_set(err, HL_ENOMEM, "out of memory");
	else
		ret = hl_kube_call(k, out, NULL, "GET", path->data, NULL, err);
	hl_buf_release(path);
	return ret;
}

static const char *
kube_ns(const struct hl_kube *k, const char *ns)
{
	return ns && *ns ? ns : k->namespace;
}

int
hl_kube_get_pod(const struct hl_kube *k, json_t **out, const char *ns, const char *name,
                struct hl_err *err)
{
	struct hl_buf p = HL_BUF_INIT(0);

	kube_path(&p, "/api/v1", kube_ns(k, ns), "pods", name, NULL);
	return kube_get(k, out, &p, err);
}

int
hl_kube_list_pods(const struct hl_kube *k, json_t **out, const char *ns, const char *label_selector,
                  struct hl_err *err)
{
	struct hl_buf p = HL_BUF_INIT(0);

	kube_path(&p, "/api/v1", kube_ns(k, ns), "pods", NULL, NULL);
	if (label_selector && *label_selector) {
		hl_buf_append_str(&p, "?labelSelector=");
		hl_fetch_url_escape(&p, label_selector);
	}
	return kube_get(k, out, &p, err);
}

int
hl_kube_pod_log_req(const struct hl_kube *k, struct hl_fetch_req *req, struct hl_buf *url,
                    struct hl_buf *auth, const char *ns, const char *pod, const char *container,
                    long tail_lines, bool previous, size_t max, struct hl_err *err)
{
	struct hl_buf p = HL_BUF_INIT(0);
	char sep = '?';
	int ret;

	kube_path(&p, "/api/v1", kube_ns(k, ns), "pods", pod, "log");
	if (container && *container) {
		hl_buf_append_str(&p, "?container=");
		hl_fetch_url_escape(&p, container);
		sep = '&';
	}
	if (tail_lines > 0) {
		hl_buf_appendf(&p, "%ctailLines=%ld", sep, tail_lines);
		sep = '&';
	}
	if (previous)
		hl_buf_appendf(&p, "%cprevious=true", sep);
	if (hl_buf_error(&p)) {
		hl_buf_release(&p);
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	}
	ret = hl_kube_req_init(k, req, url, auth, "GET", p.data, err);
	hl_buf_release(&p);
	if (ret < 0)
		return ret;
	req->headers[0] = "Accept: */*";
	req->max_body = max ? max : 64u * 1024 * 1024;
	req->keep_tail = true;
	return 0;
}

int
hl_kube_check(const struct hl_fetch_res *res, const char *what, struct hl_err *err)
{
	return kube_status_error(res, "GET", what, err);
}

int
hl_kube_pod_log(const struct hl_kube *k, struct hl_buf *out, bool *truncated_out, const char *ns,
                const char *pod, const char *container, long tail_lines, bool previous,
                struct hl_err *err)
{
	struct hl_buf url = HL_BUF_INIT(0), auth = HL_BUF_INIT(0);
	struct hl_fetch_req req;
	struct hl_fetch_res res;
	int ret;

	hl_fetch_res_init(&res);
	ret = hl_kube_pod_log_req(k, &req, &url, &auth, ns, pod, container, tail_lines, previous,
	                          out->max, err);
	if (ret < 0)
		goto out;
	hl_fetch_run(&req, &res, 1, 0, err);
	ret = kube_status_error(&res, "GET", url.data + strlen(k->server), err);
	if (ret < 0)
		goto out;
	if (truncated_out)
		*truncated_out = res.truncated;
	if (hl_buf_append(out, res.body.data, res.body.len) < 0)
		ret = hl_err_set(err, HL_ETOOBIG, "pod log for '%s' over the cap", pod);
out:
	hl_buf_release(&url);
	kube_auth_release(&auth);
	hl_fetch_res_release(&res);
	return ret;
}

int
hl_kube_list_events(const struct hl_kube *k, json_t **out, const char *ns, const char *name,
                    struct hl_err *err)
{
	struct hl_buf p = HL_BUF_INIT(0), sel = HL_BUF_INIT(0);

	kube_path(&p, "/api/v1", kube_ns(k, ns), "events", NULL, NULL);
	hl_buf_appendf(&sel, "involvedObject.name=%s", name);
	hl_buf_append_str(&p, "?fieldSelector=");
	hl_fetch_url_escape(&p, sel.data);
	hl_buf_release(&sel);
	return kube_get(k, out, &p, err);
}

int
hl_kube_create_coderun(const struct hl_kube *k, json_t **out, const char *ns,
                       const json_t *manifest, struct hl_err *err)
{
	struct hl_buf p = HL_BUF_INIT(0);
	bool named = hl_json_str(manifest, "metadata.name") != NULL;
	int ret;

	kube_path(&p, "/apis/" HL_CODERUN_GROUP "/" HL_CODERUN_VERSION, kube_ns(k, ns), "coderuns",
	          NULL, NULL);
	if (hl_buf_error(&p)) {
		hl_buf_release(&p);
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	}
	/* a named create is idempotent (a retried POST answers 409), so it may
	 * be retried; a generateName create may not */
	ret = kube_call_ex(k, out, NULL, "POST", p.data, manifest, named ? 3 : 0, err);
	hl_buf_release(&p);
	return ret;
}

int
hl_kube_get_coderun(const struct hl_kube *k, json_t **out, const char *ns, const char *name,
                    struct hl_err *err)
{
	struct hl_buf p = HL_BUF_INIT(0);

	kube_path(&p, "/apis/" HL_CODERUN_GROUP "/" HL_CODERUN_VERSION, kube_ns(k, ns), "coderuns",
	          name, NULL);
	return kube_get(k, out, &p, err);
}

int
hl_kube_list_coderuns(const struct hl_kube *k, json_t **out, const char *ns,
                      const char *label_selector, struct hl_err *err)
{
	struct hl_buf p = HL_BUF_INIT(0);

	kube_path(&p, "/apis/" HL_CODERUN_GROUP "/" HL_CODERUN_VERSION, kube_ns(k, ns), "coderuns",
	          NULL, NULL);
	if (label_selector && *label_selector) {
		hl_buf_append_str(&p, "?labelSelector=");
		hl_fetch_url_escape(&p, label_selector);
	}
	return kube_get(k, out, &p, err);
}

int
hl_kube_get_argocd_app(const struct hl_kube *k, json_t **out, const char *ns, const char *name,
                       struct hl_err *err)
{
	struct hl_buf p = HL_BUF_INIT(0);

	kube_path(&p, "/apis/argoproj.io/v1alpha1", ns && *ns ? ns : "argocd", "applications", name,
	          NULL);
	return kube_get(k, out, &p, err);
}

/* ---- watch ---- */

struct kube_watch {
	struct hl_buf line;
	hl_kube_watch_fn fn;
	void *ud;
	char *rv;
	size_t rv_size;
	bool gone;      /* an ERROR event with code 410 arrived */
	bool user_stop; /* the callback asked to stop */
	bool bad;       /* an unparsable line arrived */
	int events;
};

static int
kube_watch_line(struct kube_watch *w, const char *s, size_t n)
{
	json_t *ev = NULL, *obj;
	const char *type, *rv;

	while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == ' '))
		n--;
	if (n == 0)
		return 0;
	if (hl_json_parse(&ev, s, n, NULL) < 0) {
		w->bad = true;
		return -1;
	}
	type = hl_json_str(ev, "type");
	obj = json_object_get(ev, "object");
	if (!type || !json_is_object(obj)) {
		json_decref(ev);
		return 0;
	}
	if (strcmp(type, "ERROR") == 0) {
		if (hl_json_int(obj, "code", 0) == 410)
			w->gone = true;
		else
			w->bad = true;
		json_decref(ev);
		return -1;
	}
	rv = hl_json_str(obj, "metadata.resourceVersion");
	if (rv)
		hl_strlcpy(w->rv, rv, w->rv_size);
	w->events++;
	if (strcmp(type, "BOOKMARK") != 0 && w->fn(w->ud, type, obj) < 0) {
		w->user_stop = true;
		json_decref(ev);
		return -1;
	}
	json_decref(ev);
	return 0;
}

static int
kube_watch_data(void *ud, const char *data, size_t n)
{
	struct kube_watch *w = ud;
	const char *nl;

	while (n > 0) {
		nl = memchr(data, '\n', n);
		if (!nl) {
			if (hl_buf_append(&w->line, data, n) < 0) {
				w->bad = true;
				return -1;
			}
			return 0;
		}
		if (hl_buf_append(&w->line, data, (size_t)(nl - data)) < 0) {
			w->bad = true;
			return -1;
		}
		if (kube_watch_line(w, w->line.data, w->line.len) < 0)
			return -1;
		hl_buf_reset(&w->line);
		n -= (size_t)(nl - data) + 1;
		data = nl + 1;
	}
	return 0;
}

static int
kube_watch_relist(const struct hl_kube *k, const char *ns, const char *sel, struct kube_watch *w,
                  struct hl_err *err)
{
	json_t *list = NULL, *items, *it;
	const char *rv;
	size_t i;
	int ret;

	ret = hl_kube_list_coderuns(k, &list, ns, sel, err);
	if (ret < 0)
		return ret;
	rv = hl_json_str(list, "metadata.resourceVersion");
	hl_strlcpy(w->rv, rv ? rv : "", w->rv_size);
	items = json_object_get(list, "items");
	json_array_foreach(items, i, it)
	{
		if (w->fn(w->ud, "SYNC", it) < 0) {
			w->user_stop = true;
			break;
		}
	}
	json_decref(list);
	return 0;
}

int
hl_kube_watch_coderuns(const struct hl_kube *k, const char *ns, const char *label_selector,
                       char *resource_version, size_t rv_size, int64_t duration_ms,
                       hl_kube_watch_fn fn, void *ud, struct hl_err *err)
{
	struct kube_watch w;
	int64_t end = hl_time_mono_ms() + duration_ms;
	int ret = 0, rounds = 0;

	memset(&w, 0, sizeof(w));
	hl_buf_init(&w.line, 16u * 1024 * 1024);
	w.fn = fn;
	w.ud = ud;
	w.rv = resource_version;
	w.rv_size = rv_size;
	/* bounded: each round either consumes time or relists; 10000 rounds cap
	 * a server that ends every stream at once */
	while (hl_time_mono_ms() < end && rounds++ < 10000) {
		struct hl_buf p = HL_BUF_INIT(0), url = HL_BUF_INIT(0), auth = HL_BUF_INIT(0);
		struct hl_fetch_req req;
		struct hl_fetch_res res;
		int64_t left, t0;

		if (!w.rv[0]) {
			ret = kube_watch_relist(k, ns, label_selector, &w, err);
			if (ret < 0 || w.user_stop)
				break;
		}
		left = end - hl_time_mono_ms();
		if (left <= 0)
			break;
		kube_path(&p, "/apis/" HL_CODERUN_GROUP "/" HL_CODERUN_VERSION, kube_ns(k, ns),
		          "coderuns", NULL, NULL);
		hl_buf_append_str(&p, "?watch=1&allowWatchBookmarks=true&resourceVersion=");
		hl_fetch_url_escape(&p, w.rv);
		hl_buf_appendf(&p, "&timeoutSeconds=%lld", (long long)(left + 999) / 1000);
		if (label_selector && *label_selector) {
			hl_buf_append_str(&p, "&labelSelector=");
			hl_fetch_url_escape(&p, label_selector);
		}
		hl_fetch_res_init(&res);
		ret = hl_buf_error(&p) ? hl_err_set(err, HL_ENOMEM, "out of memory")
		                       : hl_kube_req_init(k, &req, &url, &auth, "GET", p.data, err);
		if (ret == 0) {
			req.timeout_ms = left;
			req.max_retries = 0;
			req.on_data = kube_watch_data;
			req.on_data_ud = &w;
			w.gone = w.bad = false;
			w.events = 0;
			hl_buf_reset(&w.line);
			t0 = hl_time_mono_ms();
			hl_fetch_run(&req, &res, 1, 0, err);
			if (res.status == 410 || w.gone) {
				w.rv[0] = '\0'; /* too old: relist */
			} else if (w.user_stop) {
				/* done */
			} else if (w.bad) {
				ret = hl_err_set(err, HL_EPARSE, "kubernetes watch: bad event");
			} else if (res.status >= 200 && res.status < 300 &&
			           (res.err.code == 0 || res.err.code == HL_ETIMEOUT)) {
				/* the stream ended or its time ran out: re-watch */
				if (res.err.code == 0 && w.events == 0 &&
				    hl_time_mono_ms() - t0 < 100) {
					struct timespec ts = { 0, 100 * 1000 * 1000 };

					nanosleep(&ts, NULL);
				}
			} else {
				ret = kube_status_error(&res, "GET", p.data, err);
				if (ret == 0)
					ret = hl_err_set(err, HL_EUPSTREAM,
					                 "kubernetes watch failed");
			}
		}
		hl_buf_release(&p);
		hl_buf_release(&url);
		kube_auth_release(&auth);
		hl_fetch_res_release(&res);
		if (ret < 0 || w.user_stop)
			break;
	}
	hl_buf_release(&w.line);
	return ret;
}
