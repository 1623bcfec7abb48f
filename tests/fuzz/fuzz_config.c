/*
 * fuzz_config.c - libFuzzer target for the configuration file
 * (src/config/config.c: `--config FILE`, HEALER_CONFIG): the input is the
 * YAML file, loaded over the defaults and validated as `healer server` and
 * `healer check-config` load it; an accepted configuration is described
 * (check-config --print) and asked the server's questions.
 *
 * Oracle: a refused file carries an error message.
 */
#include "config/config.h"
#include "fuzz.h"

#include <unistd.h>

static void
fuzz_emit(const char *line, void *payload)
{
	size_t *n = payload;

	*n += line ? 1 : 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hl_config *cfg = NULL;
	struct hl_err err = HL_ERR_INIT;
	char path[64];
	size_t lines = 0;
	int fd = fuzz_memfile(path, sizeof(path), data, size);

	if (fd < 0)
		return 0;
	if (hl_config_load(&cfg, path, NULL, 0, &err) == 0) {
		hl_config_describe(cfg, fuzz_emit, &lines);
		(void)hl_config_check_auth(cfg, &err);
		(void)hl_config_listen_is_loopback(cfg);
		(void)hl_config_repo_allowed(cfg, "octo-org/octo-repo");
		(void)hl_config_service_by_repo(cfg, "octo-org/octo-repo");
		hl_config_free(cfg);
	} else {
		FUZZ_CHECK(err.msg[0] != '\0');
	}
	close(fd);
	return 0;
}
