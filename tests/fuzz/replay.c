/*
 * replay.c - replays a fuzz corpus through LLVMFuzzerTestOneInput in a
 * regular build (gcc, optionally ASan/UBSan), so every corpus input is a
 * regression test even where libFuzzer is not available. Linked with one
 * target (tests/fuzz/fuzz_<target>.c) into replay_<target>. Prints TAP.
 *
 *   replay_<target> DIR...
 */
#include "base/buf.h"
#include "base/file.h"
#include "fuzz.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
main(int argc, char **argv)
{
	int i, n = 0, failed = 0;

	printf("TAP version 13\n");
	for (i = 1; i < argc; i++) {
		struct dirent **list = NULL;
		int k, m = scandir(argv[i], &list, NULL, alphasort);
		if (m < 0) {
			printf("not ok %d - cannot read corpus '%s'\n", ++n, argv[i]);
			failed++;
			continue;
		}
		for (k = 0; k < m; k++) {
			char path[4096];
			struct hl_buf b = HL_BUF_INIT(1u << 20);
			struct hl_err err = HL_ERR_INIT;

			if (list[k]->d_name[0] == '.') {
				free(list[k]);
				continue;
			}
			snprintf(path, sizeof(path), "%s/%s", argv[i], list[k]->d_name);
			if (hl_file_read(&b, path, &err)) {
				printf("not ok %d - %s: %s\n", ++n, list[k]->d_name, err.msg);
				failed++;
			} else {
				LLVMFuzzerTestOneInput((const uint8_t *)b.data, b.len);
				printf("ok %d - replay %s\n", ++n, list[k]->d_name);
			}
			hl_buf_release(&b);
			free(list[k]);
		}
		free(list);
	}
	printf("1..%d\n", n);
	return failed ? 1 : 0;
}
