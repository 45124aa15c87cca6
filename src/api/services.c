/*
 * services.c — start and stop what the API runs beside the handlers
 * (see fa_api_services_start in api.h): the disk watch with its reserve,
 * the per-customer download counts and the photo purge thread.
 */
#include "services.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct api_fetch_slots *api_services_slots(const struct fa_app *app)
{
    return app->services != NULL ? &app->services->slots : NULL;
}

static enum fa_rc services_alloc(const struct fa_config *cfg, struct fa_api_services **out,
                                 struct fa_err *err)
{
    struct fa_api_services *sv = calloc(1, sizeof *sv);
    pthread_condattr_t attr;

    if (sv == NULL)
        return fa_err_set(err, FA_ENOMEM, "out of memory");
    /* Every download runs on an HTTP thread, so one row per thread is enough. */
    sv->slots.n_rows = cfg->http_threads > 0 ? cfg->http_threads : 1;
    sv->slots.per_customer = cfg->max_fetches_per_customer > 0 ? cfg->max_fetches_per_customer : 1;
    sv->slots.rows = calloc((size_t)sv->slots.n_rows, sizeof *sv->slots.rows);
    if (sv->slots.rows == NULL) {
        free(sv);
        return fa_err_set(err, FA_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&sv->slots.lock, NULL);
    pthread_mutex_init(&sv->stop_lock, NULL);
    /* The purge waits on a monotonic clock: a wall-clock step must not
     * make it sleep for hours or spin. */
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&sv->stop_cond, &attr);
    pthread_condattr_destroy(&attr);
    *out = sv;
    return FA_OK;
}

static void services_free(struct fa_api_services *sv)
{
    if (sv == NULL)
        return;
    pthread_cond_destroy(&sv->stop_cond);
    pthread_mutex_destroy(&sv->stop_lock);
    pthread_mutex_destroy(&sv->slots.lock);
    free(sv->slots.rows);
    free(sv);
}

enum fa_rc fa_api_services_start(struct fa_app *app, struct fa_err *err)
{
    const struct fa_config *cfg = app->cfg;
    struct fa_api_services *sv = NULL;
    enum fa_rc rc = fa_disk_open(cfg->data_dir, cfg->min_free_disk_mb, cfg->disk_reserve_mb,
                                 &app->disk, err);

    if (rc == FA_OK)
        rc = services_alloc(cfg, &sv, err);
    if (rc != FA_OK)
        return rc;
    if (cfg->disk_reserve_mb > 0 && !fa_disk_reserve_restore(app->disk))
        fprintf(stderr, "faceauth: no room for the %d MB disk reserve in %s; deletions may "
                        "fail if the disk fills up\n",
                cfg->disk_reserve_mb, cfg->data_dir);
    app->services = sv;
    if (pthread_create(&sv->purger, NULL, api_purge_thread, app) != 0) {
        app->services = NULL;
        services_free(sv);
        return fa_err_set(err, FA_EINTERNAL, "cannot start the photo purge thread");
    }
    sv->purger_running = 1;
    return FA_OK;
}

void fa_api_services_stop(struct fa_app *app)
{
    struct fa_api_services *sv = app->services;

    if (sv != NULL && sv->purger_running) {
        pthread_mutex_lock(&sv->stop_lock);
        sv->stop = 1;
        pthread_cond_signal(&sv->stop_cond);
        pthread_mutex_unlock(&sv->stop_lock);
        pthread_join(sv->purger, NULL);
    }
    app->services = NULL;
    services_free(sv);
    fa_disk_free(app->disk);
    app->disk = NULL;
}
