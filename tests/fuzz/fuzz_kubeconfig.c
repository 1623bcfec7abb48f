/*
 * fuzz_kubeconfig.c - libFuzzer target for kubeconfig files
 * (src/net/kubeconfig.c, KUBECONFIG): the input is the file, parsed as
 * hl_kube_load parses it (YAML to JSON with its node budget, then the
 * current context, cluster and user), with relative paths resolved under a
 * directory that does not exist, so nothing is read from disk.
 *
 * Oracle: an accepted configuration has a server URL; a refused one
 * carries an error message.
 */
#include "fuzz.h"
#include "net/kube.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hl_kube *k = NULL;
	struct hl_err err = HL_ERR_INIT;

	if (hl_kube_config_parse(&k, (const char *)data, size, "/nonexistent/fuzz", &err) == 0) {
		FUZZ_CHECK(k->server && *k->server);
		hl_kube_free(k);
	} else {
		FUZZ_CHECK(err.msg[0] != '\0');
	}
	return 0;
}
