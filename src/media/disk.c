/*
 * disk.c — free space, the full-disk mark and the deletion reserve (see disk.h).
 *
 * DESIGN. Free space comes from statvfs on the data folder each time it is
 * asked (a system call, no I/O), so /readyz sees space freed by anyone, the
 * operator included. The mark set by a failed write remembers how much was
 * free then: a write can fail with several MB free when the image was
 * larger, so "free > threshold" alone would report ready while the next
 * request fails the same way. The reserve is allocated with posix_fallocate
 * (real blocks, not a sparse file: a sparse reserve would free nothing),
 * under a temporary name renamed into place, so a partial reserve never
 * takes space that the next start would not recognise.
 */
#include "faceauth/disk.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define DISK_PATH_MAX 600
#define DISK_MB (1024.0 * 1024.0)
/* After a write failed for lack of space, this much more must be free
 * before the folder counts as writable again (unless a write succeeds). */
#define DISK_RECOVERED_BYTES (1024ull * 1024ull)

struct fa_disk {
    char dir[DISK_PATH_MAX];
    char reserve[DISK_PATH_MAX + 32];
    char images[DISK_PATH_MAX + 16]; /* media.h's images/ folder */
    unsigned long long min_free;     /* bytes */
    unsigned long long reserve_size; /* bytes; 0 = no reserve */
    pthread_mutex_t lock;            /* guards the two fields below */
    int full;                        /* a write failed for lack of space */
    unsigned long long free_at_full; /* free bytes when it did */
};

enum fa_rc fa_disk_open(const char *data_dir, long min_free_mb, int reserve_mb,
                        struct fa_disk **out, struct fa_err *err)
{
    struct fa_disk *d;

    *out = NULL;
    if (strlen(data_dir) >= DISK_PATH_MAX)
        return fa_err_set(err, FA_EINVAL, "data_dir is longer than %d characters",
                          DISK_PATH_MAX - 1);
    d = calloc(1, sizeof *d);
    if (d == NULL)
        return fa_err_set(err, FA_ENOMEM, "out of memory");
    snprintf(d->dir, sizeof d->dir, "%s", data_dir);
    snprintf(d->reserve, sizeof d->reserve, "%s/%s", data_dir, FA_DISK_RESERVE_NAME);
    snprintf(d->images, sizeof d->images, "%s/images", data_dir);
    d->min_free = min_free_mb > 0 ? (unsigned long long)min_free_mb << 20 : 0;
    d->reserve_size = reserve_mb > 0 ? (unsigned long long)reserve_mb << 20 : 0;
    pthread_mutex_init(&d->lock, NULL);
    *out = d;
    return FA_OK;
}

void fa_disk_free(struct fa_disk *d)
{
    if (d == NULL)
        return;
    pthread_mutex_destroy(&d->lock);
    free(d);
}

/* Bytes an unprivileged writer may still use, and whether the folder or
 * its images/ (which may be a mount of its own) is read-only; -1 when
 * statvfs fails on the folder. */
static int disk_stat(const struct fa_disk *d, unsigned long long *avail, int *read_only)
{
    struct statvfs vfs, images;

    if (statvfs(d->dir, &vfs) != 0)
        return -1;
    *avail = (unsigned long long)vfs.f_bavail * (unsigned long long)vfs.f_frsize;
    *read_only = (vfs.f_flag & ST_RDONLY) != 0;
    if (statvfs(d->images, &images) == 0 && (images.f_flag & ST_RDONLY) != 0)
        *read_only = 1;
    return 0;
}

void fa_disk_note(struct fa_disk *d, enum fa_rc rc)
{
    unsigned long long avail = 0;
    int ro = 0;

    if (d == NULL || (rc != FA_ENOSPACE && rc != FA_OK))
        return;
    if (rc == FA_ENOSPACE && disk_stat(d, &avail, &ro) != 0)
        avail = 0;
    pthread_mutex_lock(&d->lock);
    d->full = rc == FA_ENOSPACE;
    d->free_at_full = avail;
    pthread_mutex_unlock(&d->lock);
}

int fa_disk_ready(struct fa_disk *d, char *reason, size_t cap, double *free_mb)
{
    unsigned long long avail = 0, at_full;
    int ro = 0, full;

    reason[0] = '\0';
    *free_mb = 0;
    if (disk_stat(d, &avail, &ro) != 0) {
        snprintf(reason, cap, "the data folder cannot be examined: %s", strerror(errno));
        return 0;
    }
    *free_mb = (double)avail / DISK_MB;
    pthread_mutex_lock(&d->lock);
    full = d->full;
    at_full = d->free_at_full;
    pthread_mutex_unlock(&d->lock);
    if (ro)
        snprintf(reason, cap, "the data folder is on a read-only file system");
    else if (avail < d->min_free)
        snprintf(reason, cap, "the disk is nearly full: %.1f MB free, %.0f MB needed",
                 *free_mb, (double)d->min_free / DISK_MB);
    else if (full && avail < at_full + DISK_RECOVERED_BYTES)
        snprintf(reason, cap, "the disk is full: a write failed for lack of space "
                              "(%.1f MB free)", *free_mb);
    return reason[0] == '\0';
}

int fa_disk_reserve_release(struct fa_disk *d)
{
    if (d == NULL || d->reserve_size == 0)
        return 0;
    if (unlink(d->reserve) != 0)
        return 0;
    fprintf(stderr, "faceauth: disk full: gave up the %llu MB reserve so a deletion can "
                    "proceed; it is written again once there is room\n",
            d->reserve_size >> 20);
    return 1;
}

static int disk_reserve_present(const struct fa_disk *d)
{
    struct stat st;

    return stat(d->reserve, &st) == 0 && (unsigned long long)st.st_size >= d->reserve_size;
}

/* The allocation itself: tmp, fallocate, fsync, rename. 0 on success. */
static int disk_reserve_write(const struct fa_disk *d)
{
    char tmp[DISK_PATH_MAX + 40];
    int fd, rc;

    snprintf(tmp, sizeof tmp, "%s.tmp", d->reserve);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    rc = posix_fallocate(fd, 0, (off_t)d->reserve_size);
    if (rc == 0 && fsync(fd) != 0)
        rc = -1;
    close(fd);
    if (rc == 0 && rename(tmp, d->reserve) != 0)
        rc = -1;
    if (rc != 0)
        unlink(tmp);
    return rc == 0 ? 0 : -1;
}

int fa_disk_reserve_restore(struct fa_disk *d)
{
    unsigned long long avail = 0;
    int ro = 0;

    if (d == NULL || d->reserve_size == 0)
        return 0;
    if (disk_reserve_present(d))
        return 1;
    if (disk_stat(d, &avail, &ro) != 0 || ro || avail < d->reserve_size + d->min_free)
        return 0;
    return disk_reserve_write(d) == 0;
}
