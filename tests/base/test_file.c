/*
 * test_file.c - unit tests for atomic file writes (src/base/file.c) when
 * the disk fails: fsync is wrapped (-Wl,--wrap=fsync) to fail on demand.
 */
/* cmocka.h needs these headers before it */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */
#include "base/err.h"
#include "base/file.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int __real_fsync(int fd);
int __wrap_fsync(int fd);

static bool fail_fsync;

int
__wrap_fsync(int fd)
{
	if (fail_fsync) {
		errno = EIO;
		return -1;
	}
	return __real_fsync(fd);
}

/* Entries of a directory, "." and ".." left out. */
static int
entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
	closedir(d);
	return n;
}

/* A failing fsync is an error naming it, and leaves neither a descriptor
 * nor a temporary file behind (before, the descriptor stayed open, with
 * the unlinked file's space, at every failed write). */
static void
test_file_write_atomic_failing_fsync_leaks_nothing(void **state)
{
	char dir[] = "/tmp/healer-test-file.XXXXXX", path[128];
	struct hl_err err = HL_ERR_INIT;
	int i, before, after;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/out.json", dir);
	before = entries("/proc/self/fd");
	fail_fsync = true;
	for (i = 0; i < 50; i++) {
		err = (struct hl_err)HL_ERR_INIT;
		assert_int_equal(hl_file_write_atomic(path, "{}", 2, &err), -HL_EIO);
		assert_non_null(strstr(err.msg, "cannot sync"));
	}
	fail_fsync = false;
	after = entries("/proc/self/fd");
	assert_int_equal(after, before);
	assert_int_equal(entries(dir), 0);
	/* and a write that succeeds still lands whole */
	assert_int_equal(hl_file_write_atomic(path, "{}", 2, &err), 0);
	assert_int_equal(entries(dir), 1);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_file_write_atomic_failing_fsync_leaks_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
