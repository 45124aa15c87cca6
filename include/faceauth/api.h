/*
 * api.h — the DeepFaceAuth endpoints: validate requests, call the services,
 * shape the documented JSON. The only module that knows the wire format.
 *
 * struct fa_app is everything a handler may use. It is built in main before
 * the server starts and is read-only afterwards (the services inside it do
 * their own locking), so handlers on every HTTP thread share it safely.
 */
#ifndef FACEAUTH_API_H
#define FACEAUTH_API_H

#include <stddef.h>

#include "faceauth/callback.h"
#include "faceauth/config.h"
#include "faceauth/disk.h"
#include "faceauth/face.h"
#include "faceauth/fetch.h"
#include "faceauth/gallery.h"
#include "faceauth/http.h"
#include "faceauth/index.h"
#include "faceauth/media.h"
#include "faceauth/metrics.h"
#include "faceauth/store.h"

#define FA_API_BASE "/api/v1/basic/"

struct fa_api_services;

struct fa_app {
    const struct fa_config *cfg;
    struct fa_store *store;
    struct fa_media *media;
    struct fa_face_service *faces;
    struct fa_face_policy policy; /* the face decisions' thresholds and gates (face.h) */
    struct fa_index *index;   /* every customer's templates, for search; written only
                                 through the gallery */
    struct fa_gallery *gallery; /* the stored templates and the index, changed together */
    struct fa_fetch_opts fetch;
    struct fa_callbacks *callbacks; /* the delivery thread; NULL: events wait for the next start */
    struct fa_disk *disk;     /* free space and the deletion reserve (fa_api_services_start) */
    struct fa_api_services *services; /* per-customer fetch counts, the photo purge */
    struct fa_metrics *metrics; /* GET /metrics and what handlers record; may be NULL */
    struct fa_api_slots *login_slots; /* password hashes running at once (auth.c) */
};

/*
 * A counting semaphore with a bounded waiting room: at most n holders, at
 * most n more waiting (each for up to wait_ms), everyone else refused at
 * once. Login holds one while it hashes a password, so a login storm costs
 * n cores and a few worker threads, never all of them. Any thread may call.
 */
struct fa_api_slots;
enum fa_rc fa_api_slots_new(int n, int wait_ms, struct fa_api_slots **out, struct fa_err *err);
void fa_api_slots_free(struct fa_api_slots *s); /* NULL is fine; no holder may remain */
/* 1 when a slot was taken (give it back with fa_api_slots_release), 0 when
 * refused. NULL slots (an app built without them, as in tests) never refuse. */
int fa_api_slots_acquire(struct fa_api_slots *s);
void fa_api_slots_release(struct fa_api_slots *s);

/* The route table the HTTP server dispatches on (static storage). */
const struct fa_route *fa_api_routes(size_t *n);

/* Mark the health handlers in opts: /healthz inline, /readyz priority. */
void fa_api_health_routes(struct fa_http_opts *opts);

/*
 * Start-up work before serving: finish file deletions a crash interrupted,
 * remove image files no database row names (written just before a crash,
 * never committed), and load every template into the index (fa_gallery_load). Messages go to
 * stderr; only a database failure stops the start.
 */
enum fa_rc fa_api_recover(struct fa_app *app, struct fa_err *err);

/*
 * After fa_api_recover, before the HTTP server starts: the disk watch and
 * its reserve file (app->disk), the per-customer count of image downloads,
 * and the thread that purges old photos of failed operations and searches
 * (keep_failed_photos_days, keep_search_photos_days). fa_api_services_stop
 * stops and joins that thread and frees all of it; call it after the HTTP
 * server has stopped. Stopping twice, or without a start, is fine.
 */
enum fa_rc fa_api_services_start(struct fa_app *app, struct fa_err *err);
void fa_api_services_stop(struct fa_app *app);

/*
 * One pass of the photo purge (what the thread runs each interval): delete
 * the image files and rows of failed operations older than
 * keep_failed_photos_days and of searches older than keep_search_photos_days;
 * the log rows stay, their image links become null. *removed counts files.
 */
enum fa_rc fa_api_purge_photos(struct fa_app *app, int *removed, struct fa_err *err);

#endif
