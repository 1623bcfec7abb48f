/*
 * file.h - whole-file reads with a size cap, durable atomic writes (write
 * to a temporary file, fsync, rename, fsync the directory), and exclusive
 * locks on a lock file.
 */
#ifndef HL_BASE_FILE_H
#define HL_BASE_FILE_H

#include "buf.h"
#include "err.h"

#include <stddef.h>

/* Appends the file's bytes (or stdin's when path is "-") to out; fails with
 * HL_ETOOBIG past out->max. */
int hl_file_read(struct hl_buf *out, const char *path, struct hl_err *err);
/* Atomically replaces path with data, durably (the temporary file beside
 * it is created new: a link at its name is replaced, never followed). */
int hl_file_write_atomic(const char *path, const void *data, size_t n, struct hl_err *err);
/* mkdir -p with mode 0755. */
int hl_file_mkdirs(const char *path, struct hl_err *err);

/*
 * Takes an exclusive flock(2) on path (created 0644 when missing), without
 * waiting; *fd_out holds it until it is closed (or the process ends, even
 * by SIGKILL). Returns 0, -HL_ECONFLICT when another open file description
 * holds it (another process), or -HL_EIO. The descriptor is close-on-exec.
 */
int hl_file_lock(int *fd_out, const char *path, struct hl_err *err);

#endif
