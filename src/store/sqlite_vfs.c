/*
 * sqlite_vfs.c - the "healer" SQLite VFS: the default (unix) VFS whose WAL
 * files gather a transaction's frames in memory and write them with one
 * pwrite(2), instead of two per page (a 24-byte frame header, then the
 * page). On a virtual machine a system call costs microseconds; an intake
 * batch writes tens of frames.
 *
 * Visibility is unchanged: SQLite makes frames visible to other
 * connections only by updating the WAL index after it wrote the commit
 * frame (and synced, where it syncs), so the gathered bytes are written
 * the moment the commit frame's page is, before SQLite goes on. A commit
 * frame is the one whose header has a non-zero database size (bytes 4-7;
 * https://www.sqlite.org/fileformat.html#wal_file_format); SQLite writes a
 * frame's header and its page with two calls (wal.c, walWriteOneFrame),
 * which tests/store's visibility test would catch changing. Anything that
 * looks at the file itself first writes what is gathered: a read, a
 * write elsewhere, sync, truncate, size, file controls and close. A write
 * that fails is reported by the call that wrote it (a commit fails as it
 * would have). Only files opened as WAL are wrapped; the database file
 * and its shared memory go straight to the default VFS.
 */
#include "sqlite_impl.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define VFS_NAME "healer"
/* Bytes gathered at most: the unix VFS writes at most 0x1ffff bytes per
 * call (it masks the length with it), so stay below. */
#define VFS_GATHER    0x1f000
#define VFS_FRAME_HDR 24

struct vfs_wal {
	sqlite3_file base;  /* must be first */
	sqlite3_file *real; /* the default VFS's file, allocated after us */
	char *buf;          /* gathered bytes, or NULL */
	sqlite3_int64 at;   /* the file offset of buf[0] */
	size_t len;         /* bytes in buf */
	bool commit_next;   /* the next write is a commit frame's page */
};

static sqlite3_vfs vfs_healer;
static sqlite3_vfs *vfs_real;

/* Writes what is gathered. */
static int
vfs_spill(struct vfs_wal *w)
{
	int rc;

	if (!w->len)
		return SQLITE_OK;
	rc = w->real->pMethods->xWrite(w->real, w->buf, (int)w->len, w->at);
	w->len = 0;
	return rc;
}

static int
vfs_close(sqlite3_file *f)
{
	struct vfs_wal *w = (struct vfs_wal *)f;
	int rc = vfs_spill(w), rc2 = w->real->pMethods->xClose(w->real);

	free(w->buf);
	w->buf = NULL;
	return rc != SQLITE_OK ? rc : rc2;
}

static int
vfs_read(sqlite3_file *f, void *p, int amt, sqlite3_int64 off)
{
	struct vfs_wal *w = (struct vfs_wal *)f;
	int rc = vfs_spill(w);

	return rc != SQLITE_OK ? rc : w->real->pMethods->xRead(w->real, p, amt, off);
}

static int
vfs_write(sqlite3_file *f, const void *p, int amt, sqlite3_int64 off)
{
	struct vfs_wal *w = (struct vfs_wal *)f;
	const unsigned char *h = p;
	bool commit = w->commit_next;
	int rc;

	w->commit_next = false;
	if (amt == VFS_FRAME_HDR && (h[4] | h[5] | h[6] | h[7]) != 0)
		w->commit_next = true;
	if (!w->buf)
		w->buf = malloc(VFS_GATHER);
	if (w->len && off == w->at + (sqlite3_int64)w->len && w->len + (size_t)amt <= VFS_GATHER) {
		memcpy(w->buf + w->len, p, (size_t)amt);
		w->len += (size_t)amt;
	} else {
		rc = vfs_spill(w);
		if (rc != SQLITE_OK)
			return rc;
		if (!w->buf || (size_t)amt > VFS_GATHER / 2)
			return w->real->pMethods->xWrite(w->real, p, amt, off);
		memcpy(w->buf, p, (size_t)amt);
		w->at = off;
		w->len = (size_t)amt;
	}
	return commit ? vfs_spill(w) : SQLITE_OK;
}

static int
vfs_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	struct vfs_wal *w = (struct vfs_wal *)f;
	int rc = vfs_spill(w);

	return rc != SQLITE_OK ? rc : w->real->pMethods->xTruncate(w->real, size);
}

static int
vfs_sync(sqlite3_file *f, int flags)
{
	struct vfs_wal *w = (struct vfs_wal *)f;
	int rc = vfs_spill(w);

	return rc != SQLITE_OK ? rc : w->real->pMethods->xSync(w->real, flags);
}

static int
vfs_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
	struct vfs_wal *w = (struct vfs_wal *)f;
	int rc = vfs_spill(w);

	return rc != SQLITE_OK ? rc : w->real->pMethods->xFileSize(w->real, size);
}

static int
vfs_lock(sqlite3_file *f, int level)
{
	struct vfs_wal *w = (struct vfs_wal *)f;

	return w->real->pMethods->xLock(w->real, level);
}

static int
vfs_unlock(sqlite3_file *f, int level)
{
	struct vfs_wal *w = (struct vfs_wal *)f;

	return w->real->pMethods->xUnlock(w->real, level);
}

static int
vfs_check_reserved(sqlite3_file *f, int *out)
{
	struct vfs_wal *w = (struct vfs_wal *)f;

	return w->real->pMethods->xCheckReservedLock(w->real, out);
}

static int
vfs_file_control(sqlite3_file *f, int op, void *arg)
{
	struct vfs_wal *w = (struct vfs_wal *)f;
	int rc = vfs_spill(w);

	return rc != SQLITE_OK ? rc : w->real->pMethods->xFileControl(w->real, op, arg);
}

static int
vfs_sector_size(sqlite3_file *f)
{
	struct vfs_wal *w = (struct vfs_wal *)f;

	return w->real->pMethods->xSectorSize(w->real);
}

static int
vfs_device_characteristics(sqlite3_file *f)
{
	struct vfs_wal *w = (struct vfs_wal *)f;

	return w->real->pMethods->xDeviceCharacteristics(w->real);
}

/* A WAL file has no shared memory or memory map of its own (version 1). */
static const sqlite3_io_methods vfs_wal_methods = {
	.iVersion = 1,
	.xClose = vfs_close,
	.xRead = vfs_read,
	.xWrite = vfs_write,
	.xTruncate = vfs_truncate,
	.xSync = vfs_sync,
	.xFileSize = vfs_file_size,
	.xLock = vfs_lock,
	.xUnlock = vfs_unlock,
	.xCheckReservedLock = vfs_check_reserved,
	.xFileControl = vfs_file_control,
	.xSectorSize = vfs_sector_size,
	.xDeviceCharacteristics = vfs_device_characteristics,
};

static int
vfs_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
	struct vfs_wal *w = (struct vfs_wal *)f;
	int rc;

	(void)vfs;
	if (!(flags & SQLITE_OPEN_WAL))
		return vfs_real->xOpen(vfs_real, name, f, flags, out_flags);
	memset(w, 0, sizeof(*w));
	w->real = (sqlite3_file *)(w + 1);
	rc = vfs_real->xOpen(vfs_real, name, w->real, flags, out_flags);
	/* without methods SQLite does not call xClose */
	w->base.pMethods = w->real->pMethods ? &vfs_wal_methods : NULL;
	return rc;
}

static void
vfs_init(void)
{
	vfs_real = sqlite3_vfs_find(NULL);
	if (!vfs_real)
		return;
	vfs_healer = *vfs_real;
	vfs_healer.zName = VFS_NAME;
	vfs_healer.szOsFile = (int)sizeof(struct vfs_wal) + vfs_real->szOsFile;
	vfs_healer.xOpen = vfs_open;
	vfs_healer.pNext = NULL;
	vfs_healer.pAppData = NULL;
	if (sqlite3_vfs_register(&vfs_healer, 0) != SQLITE_OK)
		vfs_real = NULL;
}

const char *
hl_sq_vfs(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, vfs_init);
	return vfs_real ? VFS_NAME : NULL;
}
