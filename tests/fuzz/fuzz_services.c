/*
 * fuzz_services.c - libFuzzer target for the service map
 * (src/config/services.c, HEALER_SERVICES_FILE): the input is the YAML
 * file. Every entry of an accepted map is resolved with its defaults as the
 * context gathering and the heal flow resolve it.
 *
 * Oracle: a refused file carries an error message; every entry with a
 * repository is found by it.
 */
#include "config/config.h"
#include "fuzz.h"

#include <string.h>
#include <unistd.h>

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hl_service *list = NULL;
	struct hl_err err = HL_ERR_INIT;
	char path[64];
	size_t n = 0, i;
	int fd = fuzz_memfile(path, sizeof(path), data, size);

	if (fd < 0)
		return 0;
	if (hl_config_services_load(&list, &n, path, &err) == 0) {
		struct hl_config cfg;

		memset(&cfg, 0, sizeof(cfg));
		cfg.services = list;
		cfg.n_services = n;
		cfg.namespace = "cto";
		for (i = 0; i < n; i++) {
			struct hl_service_view v;

			hl_service_resolve(&v, &cfg, &list[i], "octo-org/octo-repo");
			FUZZ_CHECK(v.mapped);
			(void)hl_config_service_by_app(&cfg, v.argocd_app);
			(void)hl_config_service_by_workload(&cfg, v.namespace, v.workload);
			if (list[i].repository)
				FUZZ_CHECK(hl_config_service_by_repo(&cfg, list[i].repository));
		}
		hl_config_services_free(list, n);
	} else {
		FUZZ_CHECK(err.msg[0] != '\0');
	}
	close(fd);
	return 0;
}
