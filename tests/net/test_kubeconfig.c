/*
 * test_kubeconfig.c - Kubernetes client configuration (src/net/kube.c):
 * current-context selection, inline and file CAs, tokens and token files,
 * namespaces, insecure-skip-tls-verify (refused with a CA), unsupported exec plugins, malformed
 * files, KUBECONFIG lists merged as kubectl merges them, in-cluster
 * configuration, and the YAML to JSON conversion.
 */
/* cmocka needs these first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include "net/kube.h"

#include "json/json.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/hl-kubecfg-XXXXXX";

static int
setup(void **state)
{
	(void)state;
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
write_file(const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n" */
#define CA_PEM "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
#define CA_B64 "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUIKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo="

static const char multi_cfg[] = "apiVersion: v1\n"
                                "kind: Config\n"
                                "current-context: prod\n"
                                "clusters:\n"
                                "- name: dev\n"
                                "  cluster:\n"
                                "    server: https://dev.example:6443\n"
                                "- name: prod-cluster\n"
                                "  cluster:\n"
                                "    server: https://10.1.2.3:6443/\n"
                                "    certificate-authority-data: " CA_B64 "\n"
                                "contexts:\n"
                                "- name: dev\n"
                                "  context: {cluster: dev, user: dev-user}\n"
                                "- name: prod\n"
                                "  context:\n"
                                "    cluster: prod-cluster\n"
                                "    user: prod-user\n"
                                "    namespace: cto\n"
                                "users:\n"
                                "- name: dev-user\n"
                                "  user:\n"
                                "    token: dev-token\n"
                                "- name: prod-user\n"
                                "  user:\n"
                                "    token: \"prod-token-123\"\n";

static void
test_kubeconfig_current_context_and_inline_ca(void **state)
{
	struct hl_err err = HL_ERR_INIT;
	struct hl_kube *k = NULL;

	(void)state;
	assert_int_equal(hl_kube_config_parse(&k, multi_cfg, strlen(multi_cfg), tmpdir, &err), 0);
	assert_string_equal(k->server, "https://10.1.2.3:6443");
	assert_string_equal(k->ca_data, CA_PEM);
	assert_null(k->ca_file);
	assert_string_equal(k->token, "prod-token-123");
	assert_string_equal(k->namespace, "cto");
	assert_false(k->insecure);
	hl_kube_free(k);
}

static void
test_kubeconfig_file_ca_token_file_relative_paths(void **state)
{
	static const char cfg[] = "current-context: c\n"
	                          "clusters:\n"
	                          "- name: k\n"
	                          "  cluster:\n"
	                          "    server: https://127.0.0.1:6443\n"
	                          "    certificate-authority: certs/ca.crt\n"
	                          "contexts:\n"
	                          "- name: c\n"
	                          "  context:\n"
	                          "    cluster: k\n"
	                          "    user: u\n"
	                          "users:\n"
	                          "- name: u\n"
	                          "  user:\n"
	                          "    tokenFile: token\n";
	struct hl_err err = HL_ERR_INIT;
	struct hl_kube *k = NULL;
	struct hl_fetch_req req;
	struct hl_buf url = HL_BUF_INIT(0), auth = HL_BUF_INIT(0);
	char path[256];

	(void)state;
	write_file("config", cfg);
	write_file("token", "first-token\n");
	snprintf(path, sizeof(path), "%s/config", tmpdir);
	assert_int_equal(hl_kube_load(&k, path, &err), 0);
	snprintf(path, sizeof(path), "%s/certs/ca.crt", tmpdir);
	assert_string_equal(k->ca_file, path);
	assert_null(k->ca_data);
	snprintf(path, sizeof(path), "%s/token", tmpdir);
	assert_string_equal(k->token_file, path);
	assert_string_equal(k->namespace, "default");

	assert_int_equal(hl_kube_req_init(k, &req, &url, &auth, "GET", "/api/v1/x", &err), 0);
	assert_string_equal(req.url, "https://127.0.0.1:6443/api/v1/x");
	assert_string_equal(req.auth, "Bearer first-token");
	assert_string_equal(req.ca_file, k->ca_file);
	/* a rotated token is picked up on the next call */
	write_file("token", "second-token");
	assert_int_equal(hl_kube_req_init(k, &req, &url, &auth, "GET", "/api/v1/x", &err), 0);
	assert_string_equal(req.auth, "Bearer second-token");
	hl_buf_release(&url);
	hl_buf_release(&auth);
	hl_kube_free(k);
}

static void
test_kubeconfig_insecure_and_no_user(void **state)
{
	static const char cfg[] = "current-context: c\n"
	                          "clusters:\n"
	                          "- name: k\n"
	                          "  cluster:\n"
	                          "    server: https://h:1\n"
	                          "    insecure-skip-tls-verify: true\n"
	                          "contexts:\n"
	                          "- name: c\n"
	                          "  context:\n"
	                          "    cluster: k\n";
	struct hl_err err = HL_ERR_INIT;
	struct hl_kube *k = NULL;

	(void)state;
	assert_int_equal(hl_kube_config_parse(&k, cfg, strlen(cfg), NULL, &err), 0);
	assert_true(k->insecure);
	assert_null(k->token);
	assert_null(k->token_file);
	hl_kube_free(k);
}

/* Parses a one-cluster kubeconfig whose cluster has the given extra lines. */
static int
parse_cluster(struct hl_kube **k, const char *server, const char *extra, struct hl_err *err)
{
	char cfg[1024];

	snprintf(cfg, sizeof(cfg),
	         "current-context: c\nclusters:\n- name: k\n  cluster:\n    server: %s\n%s"
	         "contexts:\n- name: c\n  context:\n    cluster: k\n",
	         server, extra);
	return hl_kube_config_parse(k, cfg, strlen(cfg), NULL, err);
}

/* insecure-skip-tls-verify with a CA (inline or a file) is refused, naming
 * the cluster, as kubectl refuses it; an empty CA is no CA. */
static void
test_kubeconfig_insecure_with_ca(void **state)
{
	struct hl_err err = HL_ERR_INIT;
	struct hl_kube *k = NULL;

	(void)state;
	assert_int_equal(parse_cluster(&k, "https://h:1",
	                               "    insecure-skip-tls-verify: true\n"
	                               "    certificate-authority-data: LS0tLS1CRUdJTg==\n",
	                               &err),
	                 -HL_EINVAL);
	assert_null(k);
	assert_non_null(strstr(err.msg, "cluster 'k'"));
	assert_non_null(strstr(err.msg, "specifying a root certificates file with the insecure "
	                                "flag is not allowed"));
	err = (struct hl_err)HL_ERR_INIT;
	assert_int_equal(parse_cluster(&k, "https://h:1",
	                               "    insecure-skip-tls-verify: \"true\"\n"
	                               "    certificate-authority: /etc/ca.pem\n",
	                               &err),
	                 -HL_EINVAL);
	assert_null(k);
	assert_non_null(strstr(err.msg, "cluster 'k'"));
	err = (struct hl_err)HL_ERR_INIT;
	assert_int_equal(parse_cluster(&k, "https://h:1",
	                               "    insecure-skip-tls-verify: true\n"
	                               "    certificate-authority-data: \"\"\n",
	                               &err),
	                 0);
	assert_true(k->insecure);
	hl_kube_free(k);
}

/* tls-server-name: the URLs carry the name, the connection goes to the
 * server's own address (IPv6 in brackets, the default port made explicit),
 * the Host header and a path prefix stay the server's. */
static void
test_kubeconfig_tls_server_name(void **state)
{
	struct hl_buf url = HL_BUF_INIT(0), auth = HL_BUF_INIT(0);
	struct hl_err err = HL_ERR_INIT;
	struct hl_fetch_req req;
	struct hl_kube *k = NULL;

	(void)state;
	assert_int_equal(parse_cluster(&k, "https://[::1]:6443/k8s/c1/",
	                               "    tls-server-name: kube.example.test\n", &err),
	                 0);
	assert_string_equal(k->server, "https://[::1]:6443/k8s/c1");
	assert_string_equal(k->url_base, "https://kube.example.test:6443/k8s/c1");
	assert_string_equal(k->connect_to, "kube.example.test:6443:[::1]:6443");
	assert_string_equal(k->host_header, "Host: [::1]:6443");
	assert_int_equal(hl_kube_req_init(k, &req, &url, &auth, "GET", "/api/v1/x", &err), 0);
	assert_string_equal(req.url, "https://kube.example.test:6443/k8s/c1/api/v1/x");
	assert_string_equal(req.connect_to, "kube.example.test:6443:[::1]:6443");
	assert_string_equal(req.headers[1], "Host: [::1]:6443");
	assert_null(req.headers[2]);
	hl_kube_free(k);
	k = NULL;

	assert_int_equal(parse_cluster(&k, "https://10.0.0.1",
	                               "    tls-server-name: kube.example.test\n", &err),
	                 0);
	assert_string_equal(k->url_base, "https://kube.example.test");
	assert_string_equal(k->connect_to, "kube.example.test:443:10.0.0.1:443");
	assert_string_equal(k->host_header, "Host: 10.0.0.1");
	hl_kube_free(k);
	k = NULL;

	/* no TLS, no server name; without one nothing changes */
	assert_int_equal(parse_cluster(&k, "http://10.0.0.1:8080",
	                               "    tls-server-name: kube.example.test\n", &err),
	                 0);
	assert_string_equal(k->url_base, "http://10.0.0.1:8080");
	assert_null(k->connect_to);
	assert_null(k->host_header);
	hl_kube_free(k);
	k = NULL;
	assert_int_equal(parse_cluster(&k, "https://h:1", "", &err), 0);
	assert_string_equal(k->url_base, "https://h:1");
	assert_null(k->tls_server_name);
	assert_int_equal(hl_kube_req_init(k, &req, &url, &auth, "GET", "/api/v1/x", &err), 0);
	assert_null(req.headers[1]);
	assert_null(req.connect_to);
	assert_null(req.proxy);
	hl_kube_free(k);
	k = NULL;

	assert_int_equal(parse_cluster(&k, "https://h:1", "    tls-server-name: 'a b'\n", &err),
	                 -HL_EINVAL);
	assert_non_null(strstr(err.msg, "tls-server-name"));
	hl_buf_release(&url);
	hl_buf_release(&auth);
}

/* proxy-url: http, https and socks5 (given to libcurl as socks5h), the
 * scheme's case aside; others refused without the URL in the message. */
static void
test_kubeconfig_proxy_url(void **state)
{
	struct hl_err err = HL_ERR_INIT;
	struct hl_kube *k = NULL;

	(void)state;
	assert_int_equal(parse_cluster(&k, "https://h:1",
	                               "    proxy-url: HTTP://u:pw-x1@proxy.test:3128\n", &err),
	                 0);
	assert_string_equal(k->proxy, "http://u:pw-x1@proxy.test:3128");
	assert_string_equal(k->proxy_shown, "http://proxy.test:3128/");
	hl_kube_free(k);
	k = NULL;
	assert_int_equal(
	        parse_cluster(&k, "https://h:1", "    proxy-url: socks5://proxy.test\n", &err), 0);
	assert_string_equal(k->proxy, "socks5h://proxy.test");
	hl_kube_free(k);
	k = NULL;
	assert_int_equal(
	        parse_cluster(&k, "https://h:1", "    proxy-url: https://proxy.test:8443\n", &err),
	        0);
	assert_string_equal(k->proxy, "https://proxy.test:8443");
	hl_kube_free(k);
	k = NULL;
	assert_int_equal(parse_cluster(&k, "https://h:1",
	                               "    proxy-url: socks4://u:pw-x2@proxy.test\n", &err),
	                 -HL_EINVAL);
	assert_non_null(strstr(err.msg, "must be http, https, or socks5"));
	assert_null(strstr(err.msg, "pw-x2"));
	assert_int_equal(parse_cluster(&k, "https://h:1", "    proxy-url: 'not a url'\n", &err),
	                 -HL_EINVAL);
	assert_non_null(strstr(err.msg, "proxy-url"));
}

/* A token written as a YAML block scalar ends in a newline, which the
 * Authorization header must not carry. */
static void
test_kubeconfig_token_block_scalar_is_trimmed(void **state)
{
	static const char cfg[] = "current-context: c\n"
	                          "clusters:\n"
	                          "- name: k\n"
	                          "  cluster:\n"
	                          "    server: https://h:1\n"
	                          "users:\n"
	                          "- name: u\n"
	                          "  user:\n"
	                          "    token: |\n"
	                          "      block-token-7\n"
	                          "contexts:\n"
	                          "- name: c\n"
	                          "  context:\n"
	                          "    cluster: k\n"
	                          "    user: u\n";
	struct hl_err err = HL_ERR_INIT;
	struct hl_kube *k = NULL;

	(void)state;
	assert_int_equal(hl_kube_config_parse(&k, cfg, strlen(cfg), NULL, &err), 0);
	assert_string_equal(k->token, "block-token-7");
	hl_kube_free(k);
}

static void
test_kubeconfig_client_certificate(void **state)
{
	/* base64 of "CERT\n" and "KEY\n" */
	static const char cfg[] = "current-context: c\n"
	                          "clusters:\n- name: k\n  cluster:\n    server: https://h:1\n"
	                          "contexts:\n- name: c\n  context:\n    cluster: k\n    user: u\n"
	                          "users:\n- name: u\n  user:\n"
	                          "    client-certificate-data: Q0VSVAo=\n"
	                          "    client-key: key.pem\n";
	struct hl_err err = HL_ERR_INIT;
	struct hl_kube *k = NULL;

	(void)state;
	write_file("key.pem", "KEY-FROM-FILE\n");
	assert_int_equal(hl_kube_config_parse(&k, cfg, strlen(cfg), tmpdir, &err), 0);
	assert_string_equal(k->client_cert, "CERT\n");
	assert_string_equal(k->client_key, "KEY-FROM-FILE\n");
	assert_null(k->token);
	hl_kube_free(k);
}

static void
test_kubeconfig_errors_name_the_problem(void **state)
{
	static const char nocur[] = "clusters: []\n";
	static const char missing_ctx[] = "current-context: nope\ncontexts: []\n";
	static const char exec_user[] =
	        "current-context: c\n"
	        "clusters:\n- name: k\n  cluster:\n    server: https://h:1\n"
	        "contexts:\n- name: c\n  context:\n    cluster: k\n    user: u\n"
	        "users:\n- name: u\n  user:\n    exec:\n      command: aws\n";
	static const char bad_yaml[] = "current-context: [unclosed\n";
	static const char no_server[] = "current-context: c\n"
	                                "clusters:\n- name: k\n  cluster:\n    server: ftp://h\n"
	                                "contexts:\n- name: c\n  context:\n    cluster: k\n";
	static const char cert_only[] =
	        "current-context: c\n"
	        "clusters:\n- name: k\n  cluster:\n    server: https://h:1\n"
	        "contexts:\n- name: c\n  context:\n    cluster: k\n    user: u\n"
	        "users:\n- name: u\n  user:\n    client-certificate-data: "
	        "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==\n";
	static const char key_only[] =
	        "current-context: c\n"
	        "clusters:\n- name: k\n  cluster:\n    server: https://h:1\n"
	        "contexts:\n- name: c\n  context:\n    cluster: k\n    user: u\n"
	        "users:\n- name: u\n  user:\n    client-key-data: "
	        "LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tCg==\n";
	struct hl_err err = HL_ERR_INIT;
	struct hl_kube *k = NULL;

	(void)state;
	assert_int_equal(hl_kube_config_parse(&k, nocur, strlen(nocur), NULL, &err), -HL_EINVAL);
	assert_non_null(strstr(err.msg, "current-context"));
	assert_int_equal(hl_kube_config_parse(&k, missing_ctx, strlen(missing_ctx), NULL, &err),
	                 -HL_EINVAL);
	assert_non_null(strstr(err.msg, "'nope'"));
	assert_int_equal(hl_kube_config_parse(&k, exec_user, strlen(exec_user), NULL, &err),
	                 -HL_EUNSUPPORTED);
	assert_int_equal(hl_kube_config_parse(&k, bad_yaml, strlen(bad_yaml), NULL, &err),
	                 -HL_EPARSE);
	assert_int_equal(hl_kube_config_parse(&k, no_server, strlen(no_server), NULL, &err),
	                 -HL_EINVAL);
	assert_null(k);
	/* half a client certificate: before, loaded, and every call went
	 * without one (401) */
	assert_int_equal(hl_kube_config_parse(&k, cert_only, strlen(cert_only), NULL, &err),
	                 -HL_EINVAL);
	assert_non_null(strstr(err.msg, "user 'u' has a client certificate but no client key"));
	assert_int_equal(hl_kube_config_parse(&k, key_only, strlen(key_only), NULL, &err),
	                 -HL_EINVAL);
	assert_non_null(strstr(err.msg, "user 'u' has a client key but no client certificate"));
	assert_null(k);
	assert_true(hl_kube_load(&k, "/nonexistent/kubeconfig", &err) < 0);
	assert_null(k);
}

/*
 * A KUBECONFIG list is merged as kubectl merges it: a missing file is
 * skipped; current-context comes from the first file that sets it; each
 * cluster, user and context from the first file that names it, its
 * relative paths resolved against that file's directory. Before, only the
 * first file was read: a list whose first file holds the current-context
 * and a later one the cluster failed ("context not found"), and a missing
 * first file failed the whole load.
 */
static void
test_kubeconfig_list_is_merged(void **state)
{
	static const char first[] = "current-context: c\n"
	                            "contexts:\n"
	                            "- name: c\n"
	                            "  context:\n"
	                            "    cluster: k\n"
	                            "    user: u\n"
	                            "    namespace: from-first\n"
	                            "clusters:\n"
	                            "- name: k\n"
	                            "  cluster:\n"
	                            "    server: https://first.example:6443\n"
	                            "    certificate-authority: ca.crt\n";
	static const char second[] = "current-context: other\n"
	                             "contexts:\n"
	                             "- name: c\n"
	                             "  context: {cluster: k2, user: u2, namespace: from-second}\n"
	                             "- name: other\n"
	                             "  context: {cluster: k2, user: u}\n"
	                             "clusters:\n"
	                             "- name: k\n"
	                             "  cluster:\n"
	                             "    server: https://second.example:6443\n"
	                             "- name: k2\n"
	                             "  cluster:\n"
	                             "    server: https://k2.example:6443\n"
	                             "users:\n"
	                             "- name: u\n"
	                             "  user:\n"
	                             "    tokenFile: token\n";
	struct hl_err err = HL_ERR_INIT;
	struct hl_kube *k = NULL;
	char list[1024], path[512], dir1[256], dir2[256];

	(void)state;
	snprintf(dir1, sizeof(dir1), "%s/one", tmpdir);
	snprintf(dir2, sizeof(dir2), "%s/two", tmpdir);
	assert_int_equal(mkdir(dir1, 0755), 0);
	assert_int_equal(mkdir(dir2, 0755), 0);
	write_file("one/config", first);
	write_file("two/config", second);
	snprintf(list, sizeof(list), "%s/missing:%s/config::%s/config", tmpdir, dir1, dir2);
	if (hl_kube_load(&k, list, &err) != 0)
		fail_msg("a KUBECONFIG list did not load: %s", err.msg);
	assert_string_equal(k->server, "https://first.example:6443");
	assert_string_equal(k->namespace, "from-first");
	snprintf(path, sizeof(path), "%s/ca.crt", dir1);
	assert_string_equal(k->ca_file, path);
	snprintf(path, sizeof(path), "%s/token", dir2);
	assert_string_equal(k->token_file, path);
	hl_kube_free(k);
	k = NULL;

	/* the later file's current-context only when no earlier one sets it */
	write_file("one/config", "clusters: []\n");
	snprintf(list, sizeof(list), "%s/config:%s/config", dir1, dir2);
	assert_int_equal(hl_kube_load(&k, list, &err), 0);
	assert_string_equal(k->server, "https://k2.example:6443");
	hl_kube_free(k);
	k = NULL;

	/* no file of the list exists: not found, naming the list */
	snprintf(list, sizeof(list), "%s/missing:%s/missing-too", tmpdir, tmpdir);
	assert_int_equal(hl_kube_load(&k, list, &err), -HL_ENOTFOUND);
	assert_non_null(strstr(err.msg, "missing-too"));
	/* a file that exists but does not parse is an error, not skipped */
	write_file("one/config", "current-context: [unclosed\n");
	snprintf(list, sizeof(list), "%s/config:%s/config", dir1, dir2);
	assert_int_equal(hl_kube_load(&k, list, &err), -HL_EPARSE);
	assert_non_null(strstr(err.msg, "one/config"));
	assert_null(k);
}

static void
test_kubeconfig_in_cluster(void **state)
{
	struct hl_err err = HL_ERR_INIT;
	struct hl_kube *k = NULL;
	char sa[256];

	(void)state;
	snprintf(sa, sizeof(sa), "%s/sa", tmpdir);
	assert_int_equal(mkdir(sa, 0755), 0);
	write_file("sa/token", "sa-token");
	write_file("sa/ca.crt", CA_PEM);
	write_file("sa/namespace", "healer-ns\n");
	unsetenv("KUBERNETES_SERVICE_HOST");
	assert_int_equal(hl_kube_load_incluster(&k, sa, &err), -HL_ENOTFOUND);
	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	assert_int_equal(hl_kube_load_incluster(&k, sa, &err), 0);
	assert_string_equal(k->server, "https://10.96.0.1:443");
	assert_string_equal(k->namespace, "healer-ns");
	assert_non_null(strstr(k->token_file, "/sa/token"));
	assert_non_null(strstr(k->ca_file, "/sa/ca.crt"));
	hl_kube_free(k);
	setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
	assert_int_equal(hl_kube_load_incluster(&k, sa, &err), 0);
	assert_string_equal(k->server, "https://[fd00::1]:443");
	hl_kube_free(k);
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
}

/*
 * In a pod whose service account has no token mounted
 * (automountServiceAccountToken: false) KUBERNETES_SERVICE_HOST is still
 * set: ~/.kube/config is read then, as client-go does and as the dispatch
 * default (src/config/config.c) assumes. Before, the load failed with
 * "in-cluster token ... not found" although check-config had chosen
 * kubernetes dispatch from ~/.kube/config, so the server would not start.
 */
static void
test_kubeconfig_in_cluster_without_token_reads_home(void **state)
{
	static const char cfg[] = "current-context: c\n"
	                          "clusters:\n- name: k\n  cluster:\n    server: https://home:1\n"
	                          "contexts:\n- name: c\n  context:\n    cluster: k\n";
	struct hl_err err = HL_ERR_INIT;
	struct hl_kube *k = NULL;
	char home[256], *old_home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;

	(void)state;
	if (access("/var/run/secrets/kubernetes.io/serviceaccount/token", F_OK) == 0)
		skip(); /* running in a pod with a token: in-cluster is right */
	snprintf(home, sizeof(home), "%s/home", tmpdir);
	assert_int_equal(mkdir(home, 0755), 0);
	setenv("HOME", home, 1);
	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	/* neither: not found, saying why in-cluster was not used */
	assert_int_equal(hl_kube_load(&k, NULL, &err), -HL_ENOTFOUND);
	assert_non_null(strstr(err.msg, "in-cluster token"));
	assert_non_null(strstr(err.msg, ".kube/config"));
	snprintf(home + strlen(home), sizeof(home) - strlen(home), "/.kube");
	assert_int_equal(mkdir(home, 0755), 0);
	write_file("home/.kube/config", cfg);
	if (hl_kube_load(&k, NULL, &err) != 0)
		fail_msg("~/.kube/config was not read in a pod without a token: %s", err.msg);
	assert_string_equal(k->server, "https://home:1");
	assert_string_equal(k->source, "kubeconfig");
	hl_kube_free(k);
	unsetenv("KUBERNETES_SERVICE_HOST");
	if (old_home)
		setenv("HOME", old_home, 1);
	else
		unsetenv("HOME");
	free(old_home);
}

static void
test_kubeconfig_yaml_to_json_shapes(void **state)
{
	static const char y[] = "a: 1\nb: [x, y]\nc:\n  d: ~\n  e: ''\n  f: null\n"
	                        "g: |\n  multi\n  line\n";
	struct hl_err err = HL_ERR_INIT;
	json_t *v = NULL;

	(void)state;
	assert_int_equal(hl_kube_yaml_to_json(&v, y, strlen(y), &err), 0);
	assert_string_equal(hl_json_str(v, "a"), "1");
	assert_string_equal(hl_json_str(v, "b[1]"), "y");
	assert_true(json_is_null(hl_json_path(v, "c.d")));
	assert_string_equal(hl_json_str(v, "c.e"), "");
	assert_true(json_is_null(hl_json_path(v, "c.f")));
	assert_string_equal(hl_json_str(v, "g"), "multi\nline\n");
	json_decref(v);
}

static void
test_kubeconfig_hostile_yaml_is_refused(void **state)
{
	struct hl_err err = HL_ERR_INIT;
	struct hl_buf b = HL_BUF_INIT(0);
	struct hl_kube *k = NULL;
	json_t *v = NULL;
	int i;

	(void)state;
	/* deep nesting */
	hl_buf_append_str(&b, "current-context: ");
	for (i = 0; i < 5000; i++)
		hl_buf_append_char(&b, '[');
	for (i = 0; i < 5000; i++)
		hl_buf_append_char(&b, ']');
	assert_true(hl_kube_config_parse(&k, b.data, b.len, NULL, &err) < 0);
	assert_null(k);
	/* an alias bomb ("billion laughs") hits the node budget */
	hl_buf_reset(&b);
	hl_buf_append_str(&b, "a: &a [x, x, x, x, x, x, x, x, x, x]\n");
	for (i = 0; i < 6; i++)
		hl_buf_appendf(&b, "%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n",
		               'b' + i, 'b' + i, 'a' + i, 'a' + i, 'a' + i, 'a' + i, 'a' + i,
		               'a' + i, 'a' + i, 'a' + i, 'a' + i, 'a' + i);
	assert_int_equal(hl_kube_yaml_to_json(&v, b.data, b.len, &err), -HL_ETOOBIG);
	assert_null(v);
	/* binary garbage */
	hl_buf_reset(&b);
	for (i = 0; i < 4096; i++)
		hl_buf_append_char(&b, (char)((i * 7919 + 13) & 0xff));
	assert_true(hl_kube_config_parse(&k, b.data, b.len, NULL, &err) < 0);
	assert_null(k);
	hl_buf_release(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kubeconfig_current_context_and_inline_ca),
		cmocka_unit_test(test_kubeconfig_file_ca_token_file_relative_paths),
		cmocka_unit_test(test_kubeconfig_insecure_and_no_user),
		cmocka_unit_test(test_kubeconfig_insecure_with_ca),
		cmocka_unit_test(test_kubeconfig_tls_server_name),
		cmocka_unit_test(test_kubeconfig_proxy_url),
		cmocka_unit_test(test_kubeconfig_token_block_scalar_is_trimmed),
		cmocka_unit_test(test_kubeconfig_client_certificate),
		cmocka_unit_test(test_kubeconfig_errors_name_the_problem),
		cmocka_unit_test(test_kubeconfig_list_is_merged),
		cmocka_unit_test(test_kubeconfig_in_cluster),
		cmocka_unit_test(test_kubeconfig_in_cluster_without_token_reads_home),
		cmocka_unit_test(test_kubeconfig_yaml_to_json_shapes),
		cmocka_unit_test(test_kubeconfig_hostile_yaml_is_refused),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
