/*
 * test_disk.c — the disk watch (disk.h): readiness by free space and by the
 * full-disk mark, and the reserve file that deletions give up. A real full
 * disk is tested end to end on a tmpfs (tests/e2e/test_disk_full.py).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "faceauth/disk.h"
#include "tap.h"

static char g_dir[256];
static char g_reserve[320];

static long long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

static void test_ready(void)
{
    struct fa_disk *d = NULL;
    struct fa_err err = {{0}};
    char reason[160];
    double free_mb = 0;

    int ready;

    TAP_OK(fa_disk_open(g_dir, 0, 0, &d, &err) == FA_OK);
    ready = fa_disk_ready(d, reason, sizeof reason, &free_mb);
    tap_ok(ready == 1 && reason[0] == '\0' && free_mb > 0, "ready with no threshold (%.0f MB free)",
           free_mb);
    fa_disk_note(d, FA_ENOSPACE);
    tap_ok(fa_disk_ready(d, reason, sizeof reason, &free_mb) == 0 &&
               strstr(reason, "a write failed for lack of space") != NULL,
           "not ready after a write failed for lack of space: %s", reason);
    fa_disk_note(d, FA_EINVAL); /* not about the disk: no change */
    TAP_OK(fa_disk_ready(d, reason, sizeof reason, &free_mb) == 0);
    fa_disk_note(d, FA_OK);
    tap_ok(fa_disk_ready(d, reason, sizeof reason, &free_mb) == 1,
           "ready again once a write succeeded");
    fa_disk_free(d);

    /* More free space asked for than any test machine has. */
    TAP_OK(fa_disk_open(g_dir, 9000000, 0, &d, &err) == FA_OK);
    tap_ok(fa_disk_ready(d, reason, sizeof reason, &free_mb) == 0 &&
               strstr(reason, "nearly full") != NULL && strstr(reason, g_dir) == NULL,
           "below min_free_mb: not ready, the reason names no path: %s", reason);
    fa_disk_free(d);
    fa_disk_free(NULL);
    fa_disk_note(NULL, FA_ENOSPACE);
}

static void test_reserve(void)
{
    struct fa_disk *d = NULL;
    struct fa_err err = {{0}};

    TAP_OK(fa_disk_open(g_dir, 0, 2, &d, &err) == FA_OK);
    TAP_OK(fa_disk_reserve_release(d) == 0); /* none yet */
    TAP_OK(fa_disk_reserve_restore(d) == 1);
    tap_ok(file_size(g_reserve) == 2 << 20, "the reserve is written at its size (%lld bytes)",
           file_size(g_reserve));
    TAP_OK(fa_disk_reserve_restore(d) == 1); /* already there */
    tap_ok(fa_disk_reserve_release(d) == 1 && file_size(g_reserve) == -1,
           "giving it up removes the file");
    TAP_OK(fa_disk_reserve_release(d) == 0);
    TAP_OK(fa_disk_reserve_restore(d) == 1 && file_size(g_reserve) == 2 << 20);
    fa_disk_free(d);
    unlink(g_reserve);

    /* No room for reserve + min_free: nothing is written, not even partly. */
    TAP_OK(fa_disk_open(g_dir, 9000000, 2, &d, &err) == FA_OK);
    tap_ok(fa_disk_reserve_restore(d) == 0 && file_size(g_reserve) == -1,
           "no reserve without room for it and min_free_mb besides");
    fa_disk_free(d);

    TAP_OK(fa_disk_open(g_dir, 0, 0, &d, &err) == FA_OK);
    TAP_OK(fa_disk_reserve_restore(d) == 0 && fa_disk_reserve_release(d) == 0);
    fa_disk_free(d);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");

    snprintf(g_dir, sizeof g_dir, "%s/fa_test_disk.XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    if (!TAP_OK(mkdtemp(g_dir) != NULL))
        return tap_done();
    snprintf(g_reserve, sizeof g_reserve, "%s/%s", g_dir, FA_DISK_RESERVE_NAME);
    test_ready();
    test_reserve();
    unlink(g_reserve);
    rmdir(g_dir);
    return tap_done();
}
