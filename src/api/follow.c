/*
 * follow.c — the search index follows the other nodes' writes (api.h).
 *
 * DESIGN. With a database that several nodes share (PostgreSQL), each node
 * keeps its own in-memory index, loaded at start. Every write that changes a
 * user's templates also appends (seq, customer, user) to the store's change
 * feed in the same transaction, and the store hands out seq in commit order
 * (so "every change after seq N" never skips one that commits late). A node
 * applies a change with fa_gallery_follow, which reloads that user's
 * templates from the store and replaces them in the index: the feed needs no payload, a change applied
 * twice is harmless, and a deleted user simply has none left.
 *
 * Two paths apply changes, one at a time under apply_lock, in seq order:
 *  - the follower thread, woken by the store's NOTIFY (or a reconnect, or a
 *    1 s timeout that bounds staleness when a notification is lost);
 *  - fa_api_follow_catch_up, which search calls first: one cheap read of the
 *    feed's head, and only when the index is behind, the changes up to it.
 *    So a search sees every write acknowledged before it began, on whichever
 *    node: staleness is zero for search, not merely bounded.
 * Authenticate reads the user's templates from the store and needs none of
 * this.
 *
 * Start-up order (main): read the head, load every template, start the
 * follower from that head. A change that commits in between is applied again
 * by the follower, which is harmless.
 */
#include "api_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#define FOLLOW_BATCH 1000   /* changes read per query */
#define FOLLOW_WAIT_MS 1000 /* longest sleep between two looks at the feed */

struct fa_api_follower {
    struct fa_app *app;
    _Atomic int64_t applied;   /* every change up to this seq is in the index */
    pthread_mutex_t apply_lock; /* one applier at a time, so seq order holds */
    pthread_t thread;
    int running;
    atomic_int stop;
};

static void apply_change(void *arg, int64_t seq, int64_t customer_id, int64_t user_id)
{
    struct fa_api_follower *f = arg;
    (void)seq;
    fa_gallery_follow(f->app->gallery, customer_id, user_id);
}

/* Apply every change after f->applied, in batches, under apply_lock. The
 * store passes a batch's changes in seq order and *last is the highest seq
 * it passed, so applied only moves once the whole batch is in the index. */
static enum fa_rc apply_pending(struct fa_api_follower *f, struct fa_err *err)
{
    enum fa_rc rc = FA_OK;
    int64_t last = 0;
    pthread_mutex_lock(&f->apply_lock);
    for (;;) {
        int64_t from = atomic_load(&f->applied);
        last = from;
        rc = fa_store_changes_since(f->app->store, from, FOLLOW_BATCH, apply_change, f, &last,
                                    err);
        if (rc != FA_OK || last <= from)
            break;
        atomic_store(&f->applied, last);
    }
    pthread_mutex_unlock(&f->apply_lock);
    return rc;
}

enum fa_rc fa_api_follow_catch_up(struct fa_app *app, struct fa_err *err)
{
    struct fa_api_follower *f = app->follower;
    int64_t head = 0;
    enum fa_rc rc;
    if (f == NULL)
        return FA_OK; /* one node: the index is written in line with the store */
    rc = fa_store_changes_head(app->store, &head, err);
    if (rc != FA_OK || head <= atomic_load(&f->applied))
        return rc;
    return apply_pending(f, err);
}

static void *follow_thread(void *arg)
{
    struct fa_api_follower *f = arg;
    struct fa_err err = {{0}};
    int failing = 0;
    while (!atomic_load(&f->stop)) {
        int woken = 0;
        enum fa_rc rc = fa_store_changes_wait(f->app->store, FOLLOW_WAIT_MS, &woken, &err);
        if (rc == FA_OK)
            rc = apply_pending(f, &err);
        /* Said once per outage, not once a second; the search path catches
         * up by itself, so a broken follower costs speed, not answers. */
        if (rc != FA_OK && !failing)
            fprintf(stderr, "faceauth: index follower: %s (retrying)\n", err.msg);
        if (rc == FA_OK && failing)
            fprintf(stderr, "faceauth: index follower: back in step with the database\n");
        failing = rc != FA_OK;
    }
    return NULL;
}

enum fa_rc fa_api_follow_begin(struct fa_app *app, struct fa_err *err)
{
    struct fa_api_follower *f;
    int64_t head = 0;
    enum fa_rc rc;
    app->follower = NULL;
    if (!fa_store_is_shared(app->store))
        return FA_OK;
    rc = fa_store_changes_head(app->store, &head, err);
    if (rc != FA_OK)
        return rc;
    f = calloc(1, sizeof *f);
    if (f == NULL)
        return fa_err_set(err, FA_ENOMEM, "out of memory for the index follower");
    f->app = app;
    atomic_init(&f->applied, head);
    atomic_init(&f->stop, 0);
    pthread_mutex_init(&f->apply_lock, NULL);
    app->follower = f;
    return FA_OK;
}

enum fa_rc fa_api_follow_start(struct fa_app *app, struct fa_err *err)
{
    struct fa_api_follower *f = app->follower;
    if (f == NULL)
        return FA_OK;
    if (pthread_create(&f->thread, NULL, follow_thread, f) != 0)
        return fa_err_set(err, FA_EINTERNAL, "cannot start the index follower thread");
    f->running = 1;
    return FA_OK;
}

void fa_api_follow_stop(struct fa_app *app)
{
    struct fa_api_follower *f = app->follower;
    if (f == NULL)
        return;
    atomic_store(&f->stop, 1);
    if (f->running)
        pthread_join(f->thread, NULL); /* within FOLLOW_WAIT_MS */
    pthread_mutex_destroy(&f->apply_lock);
    free(f);
    app->follower = NULL;
}
