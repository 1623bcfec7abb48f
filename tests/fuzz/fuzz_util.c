/*
 * fuzz_util.c - the input helpers of fuzz.h. No state: each call stands
 * alone, so a target stays deterministic for a given input.
 */
#include "fuzz.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int
fuzz_memfile(char *path, size_t path_size, const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz-input", MFD_CLOEXEC);
	size_t off = 0;

	if (fd < 0)
		return -1;
	while (off < size) {
		ssize_t w = write(fd, data + off, size - off);
		if (w <= 0) {
			close(fd);
			return -1;
		}
		off += (size_t)w;
	}
	snprintf(path, path_size, "/proc/self/fd/%d", fd);
	return fd;
}

void
fuzz_split_line(char *head, size_t head_size, const uint8_t **rest, size_t *rest_size,
                const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t n;

	head[0] = '\0';
	*rest = data;
	*rest_size = size;
	if (!nl)
		return;
	n = (size_t)(nl - data);
	if (n >= head_size)
		n = head_size - 1;
	memcpy(head, data, n);
	head[n] = '\0';
	*rest = nl + 1;
	*rest_size = size - (size_t)(nl - data) - 1;
}
