/*
 * retention.c — photos are not kept forever (see fa_api_purge_photos).
 *
 * Failed authentications and searches keep the photo they were sent, so
 * that an operator can look into a dispute; but a stranger's face sent to
 * search, or a forged photo, is biometric data nobody enrolled. So those
 * photos go after keep_failed_photos_days / keep_search_photos_days. One
 * thread wakes every photo_purge_interval_s (and once at start), purges in
 * batches, each its own transaction so the purge never holds the write lock
 * for long, and writes the disk reserve again when there is room. It stops
 * at once when fa_api_services_stop asks, between batches.
 */
#include "api_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <time.h>

#include "services.h"

#define PURGE_BATCH 200
#define SECONDS_PER_DAY 86400.0

static int purge_stopping(struct fa_api_services *sv)
{
    int stop;
    if (sv == NULL)
        return 0;
    pthread_mutex_lock(&sv->stop_lock);
    stop = sv->stop;
    pthread_mutex_unlock(&sv->stop_lock);
    return stop;
}

static int64_t cutoff(int64_t now, double days)
{
    return now - (int64_t)llround(days * SECONDS_PER_DAY);
}

enum fa_rc fa_api_purge_photos(struct fa_app *app, int *removed, struct fa_err *err)
{
    int64_t now = (int64_t)time(NULL);
    int64_t failed_before = cutoff(now, app->cfg->keep_failed_photos_days);
    int64_t search_before = cutoff(now, app->cfg->keep_search_photos_days);
    enum fa_rc rc = FA_OK;
    int n = 1;

    *removed = 0;
    while (rc == FA_OK && n > 0 && !purge_stopping(app->services)) {
        char **paths = NULL;
        rc = fa_store_photos_expire(app->store, failed_before, search_before, PURGE_BATCH,
                                    &paths, &n, err);
        for (int i = 0; rc == FA_OK && i < n; i++)
            fa_media_remove(app->media, paths[i]);
        /* The rows are gone; a failure here leaves the paths for the next start. */
        if (rc == FA_OK && n > 0)
            rc = fa_store_pending_done(app->store, paths, n, err);
        if (rc == FA_OK)
            *removed += n;
        fa_store_paths_free(paths, n);
    }
    return rc;
}

static void purge_once(struct fa_app *app)
{
    struct fa_err err = {{0}};
    int removed = 0;
    enum fa_rc rc = fa_api_purge_photos(app, &removed, &err);

    if (removed > 0)
        fprintf(stderr, "faceauth: purged %d old photo files of failed operations and searches\n",
                removed);
    if (rc != FA_OK)
        fprintf(stderr, "faceauth: photo purge: %s (retried next time)\n", err.msg);
    fa_disk_reserve_restore(app->disk);
}

void *api_purge_thread(void *arg)
{
    struct fa_app *app = arg;
    struct fa_api_services *sv = app->services;
    struct timespec until;

    while (!purge_stopping(sv)) {
        purge_once(app);
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += app->cfg->photo_purge_interval_s;
        pthread_mutex_lock(&sv->stop_lock);
        while (!sv->stop && pthread_cond_timedwait(&sv->stop_cond, &sv->stop_lock, &until) !=
                                ETIMEDOUT)
            ;
        pthread_mutex_unlock(&sv->stop_lock);
    }
    return NULL;
}
