/*
 * diskfull.c — answering when the disk, not the request, is the problem.
 *
 * A full disk (FA_ENOSPACE, 507) or a read-only one (FA_EREADONLY, 503)
 * used to come out as a bare 500. The client is now told what happened,
 * that nothing was stored and that retrying later may work; the detail
 * (path, errno, SQLite's text) goes to the operator log only, like every
 * server-side failure. user/delete gets one more chance on a full disk: it
 * gives up the disk reserve (disk.h) and tries again, since deleting is how
 * space is freed through the API.
 */
#include "api_int.h"

#include <stdio.h>

void api_storage_failure(struct fa_call *c, enum fa_rc rc)
{
    fprintf(stderr, "faceauth: %s: %s\n", fa_rc_name(rc), c->err.msg);
    if (rc == FA_ENOSPACE)
        fa_err_set(&c->err, rc,
                   "the server's disk is full: nothing was stored; try again later (the "
                   "operator must free space; user/delete still works)");
    else
        fa_err_set(&c->err, rc,
                   "the server's storage is read-only: nothing was stored; try again later "
                   "(the operator must make the data folder writable)");
}

enum fa_rc api_user_delete_rows(struct fa_call *c, const char *name, int64_t *user_id,
                                char ***paths, int *n)
{
    enum fa_rc rc = fa_gallery_user_delete(c->app->gallery, c->customer_id, name, user_id, paths,
                                           n, &c->err);
    if (rc == FA_ENOSPACE && fa_disk_reserve_release(c->app->disk)) {
        fprintf(stderr, "faceauth: ENOSPACE: %s (retrying the delete with the reserve freed)\n",
                c->err.msg);
        c->err.msg[0] = '\0';
        rc = fa_gallery_user_delete(c->app->gallery, c->customer_id, name, user_id, paths, n,
                                    &c->err);
    }
    if (rc == FA_ENOSPACE) {
        fprintf(stderr, "faceauth: ENOSPACE: %s\n", c->err.msg);
        fa_err_set(&c->err, rc,
                   "the server's disk is full, too full even to delete: the user was not "
                   "deleted; the operator must free space in the data folder, then retry");
        fa_http_reply_error(c->reply, rc, c->err.msg);
    }
    return rc;
}
