/*
 * file.c - file helpers; see file.h.
 */
#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int
hl_file_read(struct hl_buf *out, const char *path, struct hl_err *err)
{
	int fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
	char chunk[65536];
	ssize_t n;
	int rc = 0;

	if (fd < 0)
		return hl_err_set(err, HL_EIO, "cannot open '%s': %s", path, strerror(errno));
	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = hl_err_set(err, HL_EIO, "cannot read '%s': %s", path, strerror(errno));
			break;
		}
		if (n == 0)
			break;
		if (hl_buf_append(out, chunk, (size_t)n) < 0) {
			rc = hl_err_set(err, out->err, "'%s' is too large (limit %zu bytes)", path,
			                out->max);
			break;
		}
	}
	if (fd != STDIN_FILENO)
		close(fd);
	return rc;
}

int
hl_file_mkdirs(const char *path, struct hl_err *err)
{
	char tmp[4096];
	size_t i, n = strlen(path);
	struct stat st;

	if (n == 0 || n >= sizeof(tmp))
		return hl_err_set(err, HL_EINVAL, "bad directory path '%s'", path);
	memcpy(tmp, path, n + 1);
	for (i = 1; i <= n; i++) {
		if (tmp[i] != '/' && tmp[i] != '\0')
			continue;
		tmp[i] = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return hl_err_set(err, HL_EIO, "cannot create directory '%s': %s", tmp,
			                  strerror(errno));
		if (i < n)
			tmp[i] = '/';
	}
	/* EEXIST is also a file of that name: every write under it would fail */
	if (stat(path, &st) < 0)
		return hl_err_set(err, HL_EIO, "cannot create directory '%s': %s", path,
		                  strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return hl_err_set(err, HL_EIO,
		                  "cannot create directory '%s': a file of that name exists", path);
	return 0;
}

int
hl_file_write_atomic(const char *path, const void *data, size_t n, struct hl_err *err)
{
	static atomic_ulong seq;
	char tmp[4096], dir[4096], suffix[64];
	const char *p = data, *slash = strrchr(path, '/');
	size_t base = strlen(slash ? slash + 1 : path), keep = strlen(path);
	int fd, dfd;

	/* one temporary name per call: two threads writing the same path do
	 * not share one file (the last rename wins, whole) */
	snprintf(suffix, sizeof(suffix), ".tmp.%ld.%lu", (long)getpid(), atomic_fetch_add(&seq, 1));
	/* a name near NAME_MAX (255 bytes) is still written: its temporary
	 * name keeps only as much of it as fits with the suffix */
	if (base + strlen(suffix) > NAME_MAX)
		keep -= base + strlen(suffix) - NAME_MAX;
	if (keep > INT_MAX ||
	    snprintf(tmp, sizeof(tmp), "%.*s%s", (int)keep, path, suffix) >= (int)sizeof(tmp))
		return hl_err_set(err, HL_EINVAL, "path too long '%s'", path);
	/* a new file of our own: never through a link planted at the
	 * (predictable) temporary name in a directory others can write */
	(void)unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return hl_err_set(err, HL_EIO, "cannot create '%s': %s", tmp, strerror(errno));
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int e = errno;
			close(fd);
			unlink(tmp);
			return hl_err_set(err, HL_EIO, "cannot write '%s': %s", tmp, strerror(e));
		}
		p += w;
		n -= (size_t)w;
	}
	/* closed whatever fsync says: a failing disk must not cost a
	 * descriptor (and the unlinked file's space) per write */
	{
		int rc = fsync(fd), e = errno;

		if (close(fd) < 0 && rc == 0) {
			rc = -1;
			e = errno;
		}
		if (rc < 0) {
			unlink(tmp);
			return hl_err_set(err, HL_EIO, "cannot sync '%s': %s", tmp, strerror(e));
		}
	}
	if (rename(tmp, path) < 0) {
		unlink(tmp);
		return hl_err_set(err, HL_EIO, "cannot rename to '%s': %s", path, strerror(errno));
	}
	snprintf(dir, sizeof(dir), "%s", path);
	dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
	return 0;
}

int
hl_file_lock(int *fd_out, const char *path, struct hl_err *err)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);

	if (fd < 0)
		return hl_err_set(err, HL_EIO, "cannot open lock file '%s': %s", path,
		                  strerror(errno));
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;

		if (e == EINTR)
			continue;
		close(fd);
		if (e == EWOULDBLOCK)
			return hl_err_set(err, HL_ECONFLICT, "'%s' is locked by another process",
			                  path);
		return hl_err_set(err, HL_EIO, "cannot lock '%s': %s", path, strerror(e));
	}
	*fd_out = fd;
	return 0;
}
