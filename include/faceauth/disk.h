/*
 * disk.h — the space left in the data folder: whether the server can still
 * store what it is sent (/readyz), and a reserve that keeps deletions
 * possible when the disk is full.
 *
 * A full disk stops every write, deletions included: SQLite must append to
 * its WAL even to delete rows, so on a full disk nobody could free space
 * through the API. The reserve is a file of disk_reserve_mb kept in the data
 * folder; a deletion that finds the disk full gives it up and retries, and
 * the reserve is written again once there is room (fa_disk_reserve_restore).
 *
 * Readiness: not ready when the folder is on a read-only file system, when
 * less than min_free_mb is free, or after an operation failed for lack of
 * space until either a write succeeded since or at least 1 MB more is free.
 *
 * Threads: every function may be called from any thread; the state behind
 * them has one lock, never held during file I/O.
 */
#ifndef FACEAUTH_DISK_H
#define FACEAUTH_DISK_H

#include <stddef.h>

#include "faceauth/common.h"

#define FA_DISK_RESERVE_NAME "reserve.space"

struct fa_disk;

/*
 * Watch data_dir (which must exist). min_free_mb: readiness threshold;
 * reserve_mb: size of the reserve file, 0 for none. The reserve is not
 * written here: call fa_disk_reserve_restore once at start.
 */
enum fa_rc fa_disk_open(const char *data_dir, long min_free_mb, int reserve_mb,
                        struct fa_disk **out, struct fa_err *err);
void fa_disk_free(struct fa_disk *d); /* NULL is fine; the reserve file stays */

/* Record the outcome of an operation that wrote to the data folder:
 * FA_ENOSPACE marks the disk full (with the free space then), FA_OK after a
 * write clears that mark. Other codes are ignored. */
void fa_disk_note(struct fa_disk *d, enum fa_rc rc);

/* 1 when the data folder can take writes; otherwise 0 and a reason for
 * /readyz in reason (cap bytes; no paths). *free_mb gets the free space. */
int fa_disk_ready(struct fa_disk *d, char *reason, size_t cap, double *free_mb);

/* Remove the reserve file to make room for a deletion on a full disk.
 * 1 when a reserve was there (and is gone now), 0 otherwise. */
int fa_disk_reserve_release(struct fa_disk *d);

/* Write the reserve file when it is missing and the disk has room for it
 * and min_free_mb besides; a write that fails leaves no partial file.
 * 1 when the reserve is in place afterwards. */
int fa_disk_reserve_restore(struct fa_disk *d);

#endif
