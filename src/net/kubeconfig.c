/*
 * kubeconfig.c - where a Kubernetes client's configuration comes from: a
 * kubeconfig file or a KUBECONFIG list of them merged as kubectl merges them
 * (YAML read with libyaml and turned into JSON), or the in-cluster service
 * account (KUBERNETES_SERVICE_HOST/PORT plus the token, CA and namespace
 * files), or ~/.kube/config. A cluster's tls-server-name and proxy-url are
 * turned into what libcurl takes (kube_tls_server_name, kube_proxy).
 *
 * Invariants: a loaded struct hl_kube is never modified afterwards; the
 * token and client key are wiped when freed and never reach an error
 * message; the YAML reader is bounded in depth (64) and nodes (100000).
 */
#include "base/file.h"
#include "base/log.h"
#include "base/str.h"
#include "kube.h"

#include "json/json.h"
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
	free(k->url_base);
	free(k->tls_server_name);
	free(k->connect_to);
	free(k->host_header);
	if (k->proxy) {
		explicit_bzero(k->proxy, strlen(k->proxy));
		free(k->proxy);
	}
	free(k->proxy_shown);
	free(k->ca_data);
	free(k->ca_file);
	if (k->token) {
		explicit_bzero(k->token, strlen(k->token));
		free(k->token);
	}
	free(k->token_file);
	if (k->logged_token) {
		explicit_bzero(k->logged_token, strlen(k->logged_token));
		free(k->logged_token);
	}
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

/* The entry named name in a kubeconfig list (clusters, users, contexts). */
static json_t *
kube_entry(const json_t *cfg, const char *list, const char *name)
{
	json_t *arr = json_object_get(cfg, list), *it;
	size_t i;

	if (!json_is_array(arr) || !name)
		return NULL;
	json_array_foreach(arr, i, it)
	{
		const char *n = json_string_value(json_object_get(it, "name"));

		if (n && strcmp(n, name) == 0)
			return it;
	}
	return NULL;
}

/* The inner object (key inner) of the entry named name in a list. */
static json_t *
kube_named(const json_t *cfg, const char *list, const char *name, const char *inner)
{
	return json_object_get(kube_entry(cfg, list, name), inner);
}

/* The file paths a kubeconfig may hold (client-go ResolveLocalPaths): a
 * relative one is relative to the directory of the file that names it. */
static const struct {
	const char *list, *inner, *key;
} kube_file_keys[] = {
	{ "clusters", "cluster", "certificate-authority" },
	{ "users", "user", "client-certificate" },
	{ "users", "user", "client-key" },
	{ "users", "user", "tokenFile" },
};

/* Makes the relative file paths of cfg absolute against base_dir (NULL or
 * empty: left as they are). HL_ENOMEM. */
static int
kube_resolve_paths(json_t *cfg, const char *base_dir, struct hl_err *err)
{
	size_t k, i;
	json_t *it;

	if (!base_dir || !*base_dir)
		return 0;
	for (k = 0; k < sizeof(kube_file_keys) / sizeof(kube_file_keys[0]); k++) {
		json_array_foreach(json_object_get(cfg, kube_file_keys[k].list), i, it)
		{
			json_t *inner = json_object_get(it, kube_file_keys[k].inner);
			const char *s =
			        json_string_value(json_object_get(inner, kube_file_keys[k].key));
			char *abs;
			int rc;

			if (!s || !*s || s[0] == '/')
				continue;
			abs = kube_resolve(s, base_dir);
			rc = abs ? json_object_set_new(inner, kube_file_keys[k].key,
			                               json_string(abs))
			         : -1;
			free(abs);
			if (rc < 0)
				return hl_err_set(err, HL_ENOMEM, "out of memory");
		}
	}
	return 0;
}

/*
 * Adds what one file of a KUBECONFIG list sets to merged, as kubectl merges
 * the list: the first file to set current-context wins, and of the entries
 * of one name in clusters, users and contexts the first file's wins (later
 * ones never change it). HL_ENOMEM.
 */
static int
kube_merge(json_t *merged, const json_t *cfg, struct hl_err *err)
{
	static const char *const lists[] = { "clusters", "users", "contexts" };
	const char *cur = json_string_value(json_object_get(cfg, "current-context"));
	size_t l, i;
	json_t *it;

	if (cur && *cur && !json_string_value(json_object_get(merged, "current-context")) &&
	    json_object_set_new(merged, "current-context", json_string(cur)) < 0)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	for (l = 0; l < sizeof(lists) / sizeof(lists[0]); l++) {
		json_t *dst = json_object_get(merged, lists[l]);

		if (!json_is_array(json_object_get(cfg, lists[l])))
			continue;
		if (!json_is_array(dst)) {
			dst = json_array();
			if (!dst || json_object_set_new(merged, lists[l], dst) < 0)
				return hl_err_set(err, HL_ENOMEM, "out of memory");
		}
		json_array_foreach(json_object_get(cfg, lists[l]), i, it)
		{
			const char *name = json_string_value(json_object_get(it, "name"));

			if (!name || kube_entry(merged, lists[l], name))
				continue;
			if (json_array_append(dst, it) < 0)
				return hl_err_set(err, HL_ENOMEM, "out of memory");
		}
	}
	return 0;
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

/* True for a DNS name as a TLS server name may be: letters, digits, '-',
 * '_' and '.', not empty, at most 253 bytes. */
static bool
kube_dns_name(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > 253 || s[0] == '.' || s[0] == '-')
		return false;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '.' && s[i] != '_')
			return false;
	return true;
}

/*
 * A cluster's tls-server-name: the requests go to https://NAME:PORT/... so
 * that libcurl sends NAME as the SNI and checks the certificate against
 * it, CURLOPT_CONNECT_TO makes the connection to the server's own host and
 * port, and the Host header stays the server's (client-go sets
 * tls.Config.ServerName and nothing else). Ignored for an http server, as
 * there is no TLS.
 */
static int
kube_tls_server_name(struct hl_kube *k, const char *name, const char *cluster, struct hl_err *err)
{
	CURLU *u = NULL;
	char *host = NULL, *port = NULL, *given_port = NULL, *base = NULL;
	int ret = 0;

	if (!hl_str_starts_with(k->server, "https://"))
		return 0;
	if (!kube_dns_name(name))
		return hl_err_set(
		        err, HL_EINVAL,
		        "kubeconfig: cluster '%s' has a tls-server-name that is not a host "
		        "name",
		        cluster);
	if (!(u = curl_url())) {
		ret = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	if (curl_url_set(u, CURLUPART_URL, k->server, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
		ret = hl_err_set(err, HL_EINVAL,
		                 "kubeconfig: cluster '%s' has a server URL libcurl "
		                 "cannot read",
		                 cluster);
		goto out;
	}
	if (curl_url_get(u, CURLUPART_PORT, &given_port, 0) != CURLUE_OK)
		given_port = NULL;
	if (curl_url_set(u, CURLUPART_HOST, name, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_URL, &base, 0) != CURLUE_OK) {
		ret = hl_err_set(err, HL_EINVAL,
		                 "kubeconfig: cluster '%s': tls-server-name cannot be a URL's host",
		                 cluster);
		goto out;
	}
	if (asprintf(&k->connect_to, "%s:%s:%s:%s", name, port, host, port) < 0)
		k->connect_to = NULL;
	if (asprintf(&k->host_header, "Host: %s%s%s", host, given_port ? ":" : "",
	             given_port ? given_port : "") < 0)
		k->host_header = NULL;
	k->tls_server_name = strdup(name);
	k->url_base = strdup(base);
	if (!k->connect_to || !k->host_header || !k->tls_server_name || !k->url_base) {
		ret = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	while (k->url_base[0] && k->url_base[strlen(k->url_base) - 1] == '/')
		k->url_base[strlen(k->url_base) - 1] = '\0';
out:
	curl_free(host);
	curl_free(port);
	curl_free(given_port);
	curl_free(base);
	curl_url_cleanup(u);
	return ret;
}

/*
 * A cluster's proxy-url: http, https or socks5 as client-go takes them
 * (other schemes refused, with its message); socks5 is given to libcurl as
 * socks5h, since client-go's SOCKS5 dialer hands the proxy the host name.
 * Its user and password are registered as log secrets; the URL itself is
 * never put in a message (proxy_shown is, without them).
 */
static int
kube_proxy(struct hl_kube *k, const char *url, const char *cluster, struct hl_err *err)
{
	static const char *const schemes[] = { "http", "https", "socks5" };
	CURLU *u = NULL;
	char *scheme = NULL, *user = NULL, *pass = NULL, *shown = NULL;
	const char *rest = strstr(url, "://");
	size_t i;
	int ret = 0;

	if (!(u = curl_url()))
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	if (!rest || curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
		ret = hl_err_set(err, HL_EINVAL,
		                 "kubeconfig: cluster '%s' has a proxy-url that is not a URL",
		                 cluster);
		goto out;
	}
	for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
		if (strcasecmp(scheme, schemes[i]) == 0)
			break;
	if (i == sizeof(schemes) / sizeof(schemes[0])) {
		ret = hl_err_set(
		        err, HL_EINVAL,
		        "kubeconfig: cluster '%s' proxy-url: unsupported scheme \"%.16s\", "
		        "must be http, https, or socks5",
		        cluster, scheme);
		goto out;
	}
	/* the secret (the password, else a user alone, which is then a
	 * token) as written and as decoded: whichever form an upstream
	 * message would carry is redacted; a user name with a password is
	 * not one (redacting "admin" everywhere would garble the log) */
	if (curl_url_get(u, CURLUPART_USER, &user, CURLU_URLDECODE) != CURLUE_OK)
		user = NULL;
	if (curl_url_get(u, CURLUPART_PASSWORD, &pass, CURLU_URLDECODE) != CURLUE_OK)
		pass = NULL;
	if (pass || user) {
		CURLUPart part = pass ? CURLUPART_PASSWORD : CURLUPART_USER;
		char *raw = NULL;

		hl_log_add_secret(pass ? pass : user);
		if (curl_url_get(u, part, &raw, 0) == CURLUE_OK)
			hl_log_add_secret(raw);
		curl_free(raw);
	}
	if (asprintf(&k->proxy, "%s%s", i == 2 ? "socks5h" : schemes[i], rest) < 0) {
		k->proxy = NULL;
		ret = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	curl_url_set(u, CURLUPART_USER, NULL, 0);
	curl_url_set(u, CURLUPART_PASSWORD, NULL, 0);
	if (curl_url_get(u, CURLUPART_URL, &shown, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK ||
	    !(k->proxy_shown = strdup(shown)))
		k->proxy_shown = strdup("(proxy)");
	if (!k->proxy_shown)
		ret = hl_err_set(err, HL_ENOMEM, "out of memory");
out:
	curl_free(scheme);
	if (user)
		explicit_bzero(user, strlen(user));
	if (pass)
		explicit_bzero(pass, strlen(pass));
	curl_free(user);
	curl_free(pass);
	curl_free(shown);
	curl_url_cleanup(u);
	return ret;
}

/* The client configuration of a kubeconfig read into JSON, its file paths
 * already resolved (kube_resolve_paths). */
static int
kube_config_from_json(struct hl_kube **out, const json_t *cfg, struct hl_err *err)
{
	json_t *ctx, *cluster, *user;
	struct hl_kube *k = NULL;
	const char *cur, *s;
	int ret = 0;

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
	if ((s = hl_json_str(cluster, "tls-server-name")) && *s &&
	    (ret = kube_tls_server_name(k, s, hl_json_str_or(ctx, "cluster", ""), err)) < 0)
		goto out;
	if (!k->url_base && kube_dup(&k->url_base, k->server) < 0)
		goto oom;
	if ((s = hl_json_str(cluster, "proxy-url")) && *s &&
	    (ret = kube_proxy(k, s, hl_json_str_or(ctx, "cluster", ""), err)) < 0)
		goto out;
	k->insecure = kube_truthy(json_object_get(cluster, "insecure-skip-tls-verify"));
	/* kubectl (client-go) refuses a CA with the insecure flag: which one the
	 * author meant cannot be told, and skipping verification is the unsafe
	 * guess */
	if (k->insecure && (((s = hl_json_str(cluster, "certificate-authority-data")) && *s) ||
	                    ((s = hl_json_str(cluster, "certificate-authority")) && *s))) {
		ret = hl_err_set(err, HL_EINVAL,
		                 "kubeconfig: cluster '%s': specifying a root certificates file "
		                 "with the insecure flag is not allowed (insecure-skip-tls-verify "
		                 "with certificate-authority%s; kubectl refuses it too)",
		                 hl_json_str_or(ctx, "cluster", ""),
		                 hl_json_str(cluster, "certificate-authority-data") ? "-data" : "");
		goto out;
	}
	if ((s = hl_json_str(cluster, "certificate-authority-data"))) {
		ret = kube_b64_decode(&k->ca_data, s, "certificate-authority-data", err);
		if (ret < 0)
			goto out;
	} else if ((s = hl_json_str(cluster, "certificate-authority"))) {
		k->ca_file = strdup(s);
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
		/* a static token as the header will carry it (a YAML block
		 * scalar ends in a newline), and redacted from every log */
		if ((s = hl_json_str(user, "token"))) {
			if (!(k->token = hl_str_trim_dup(s)))
				goto oom;
			hl_log_add_secret(k->token);
		}
		if ((s = hl_json_str(user, "tokenFile"))) {
			k->token_file = strdup(s);
			if (!k->token_file)
				goto oom;
		}
		if ((cert = hl_json_str(user, "client-certificate-data"))) {
			ret = kube_b64_decode(&k->client_cert, cert, "client-certificate-data",
			                      err);
			if (ret < 0)
				goto out;
		} else if ((cert = hl_json_str(user, "client-certificate"))) {
			ret = kube_read_text(&k->client_cert, cert, "kubeconfig client-certificate",
			                     err);
			if (ret < 0)
				goto out;
		}
		if ((key = hl_json_str(user, "client-key-data"))) {
			ret = kube_b64_decode(&k->client_key, key, "client-key-data", err);
			if (ret < 0)
				goto out;
		} else if ((key = hl_json_str(user, "client-key"))) {
			ret = kube_read_text(&k->client_key, key, "kubeconfig client-key", err);
			if (ret < 0)
				goto out;
		}
		/* half a client certificate would silently send none (then
		 * 401); kubectl refuses it too */
		if (!k->client_cert != !k->client_key) {
			ret = hl_err_set(
			        err, HL_EINVAL,
			        "kubeconfig: user '%s' has a client %s but no client %s: "
			        "client-certificate(-data) and client-key(-data) go together",
			        hl_json_str_or(ctx, "user", ""),
			        k->client_cert ? "certificate" : "key",
			        k->client_cert ? "key" : "certificate");
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
	hl_kube_free(k);
	return ret;
}

int
hl_kube_config_parse(struct hl_kube **out, const char *yaml, size_t n, const char *base_dir,
                     struct hl_err *err)
{
	json_t *cfg = NULL;
	int ret;

	ret = hl_kube_yaml_to_json(&cfg, yaml, n, err);
	if (ret < 0)
		return hl_err_wrap(err, "kubeconfig");
	ret = kube_resolve_paths(cfg, base_dir, err);
	if (ret == 0)
		ret = kube_config_from_json(out, cfg, err);
	json_decref(cfg);
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
	if (!(k->url_base = strdup(k->server)) || !(k->token_file = strdup(path)))
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

/* Reads one kubeconfig file into JSON, its relative file paths resolved
 * against the file's directory. */
static int
kube_read_config(json_t **out, const char *path, struct hl_err *err)
{
	struct hl_buf text = HL_BUF_INIT(KUBE_MAX_FILE);
	char *dir = NULL, *slash;
	json_t *cfg = NULL;
	int ret;

	ret = hl_file_read(&text, path, err);
	if (ret == 0) {
		ret = hl_kube_yaml_to_json(&cfg, text.data, text.len, err);
		if (ret < 0)
			hl_err_wrap(err, "kubeconfig '%s'", path);
	} else {
		hl_err_wrap(err, "kubeconfig '%s'", path);
	}
	hl_buf_release(&text);
	if (ret < 0)
		return ret;
	dir = strdup(path);
	if (!dir) {
		json_decref(cfg);
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	}
	slash = strrchr(dir, '/');
	if (slash == dir)
		dir[1] = '\0';
	else if (slash)
		*slash = '\0';
	else
		strcpy(dir, ".");
	ret = kube_resolve_paths(cfg, dir, err);
	free(dir);
	if (ret < 0) {
		json_decref(cfg);
		return ret;
	}
	*out = cfg;
	return 0;
}

/*
 * A KUBECONFIG list ("a:b:c"), merged as kubectl merges it: a file that
 * does not exist is skipped, one that cannot be read or parsed is an
 * error; current-context comes from the first file that sets it, and each
 * cluster, user and context from the first file that names it, with its
 * relative paths resolved against that file's directory.
 */
static int
kube_load_list(struct hl_kube **out, const char *list, struct hl_err *err)
{
	json_t *merged = json_object();
	char *copy = strdup(list), *save = NULL, *f;
	int ret = 0, files = 0;

	if (!merged || !copy) {
		ret = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	for (f = strtok_r(copy, ":", &save); f; f = strtok_r(NULL, ":", &save)) {
		json_t *cfg = NULL;
		struct stat st;

		if (stat(f, &st) < 0 && errno == ENOENT)
			continue;
		if ((ret = kube_read_config(&cfg, f, err)) < 0)
			goto out;
		ret = kube_merge(merged, cfg, err);
		json_decref(cfg);
		if (ret < 0)
			goto out;
		files++;
	}
	if (files == 0)
		ret = hl_err_set(err, HL_ENOTFOUND,
		                 "no kubernetes configuration found: no file of KUBECONFIG '%s' "
		                 "exists",
		                 list);
	else
		ret = kube_config_from_json(out, merged, err);
out:
	free(copy);
	json_decref(merged);
	return ret;
}

int
hl_kube_load(struct hl_kube **out, const char *kubeconfig, struct hl_err *err)
{
	char home_cfg[PATH_MAX];
	const char *path = kubeconfig;
	json_t *cfg = NULL;
	int ret;

	if (!path || !*path) {
		const char *home = getenv("HOME");
		struct hl_err in_cluster = HL_ERR_INIT;
		struct stat st;

		if (getenv("KUBERNETES_SERVICE_HOST")) {
			/* in a cluster, unless its service account has no token
			 * mounted (automountServiceAccountToken: false): then
			 * ~/.kube/config, as client-go falls back to it */
			ret = hl_kube_load_incluster(out, NULL, &in_cluster);
			if (ret != -HL_ENOTFOUND) {
				if (ret < 0 && err)
					*err = in_cluster;
				return ret;
			}
		}
		snprintf(home_cfg, sizeof(home_cfg), "%s/.kube/config", home ? home : "~");
		if (!home || stat(home_cfg, &st) < 0)
			return hl_err_set(err, HL_ENOTFOUND,
			                  "no kubernetes configuration found (KUBECONFIG unset, "
			                  "%s, no '%s')",
			                  in_cluster.code ? in_cluster.msg : "not in a cluster",
			                  home_cfg);
		path = home_cfg;
	} else if (strchr(path, ':')) {
		return kube_load_list(out, path, err);
	}
	ret = kube_read_config(&cfg, path, err);
	if (ret < 0)
		return ret;
	ret = kube_config_from_json(out, cfg, err);
	json_decref(cfg);
	return ret;
}
