/*
 * store_purge.c — photo retention: the images of failed operations and of
 * searches, once older than their keep time (fa_store_photos_expire).
 *
 * Which rows: a log row with an image link whose result is failure, or
 * whose request is a search. A partial index (migration 2) holds exactly
 * those rows while they still have a link, so each pass reads only what is
 * left to purge, never the whole log: once a row's images are deleted its
 * links are NULL (ON DELETE SET NULL) and it leaves the index.
 *
 * Deleting follows the user delete (store_admin.c): in one transaction the
 * paths go to pending_deletes and the image rows are deleted; the caller
 * removes the files, then forgets the paths. A crash between the two leaves
 * the paths for the next start, so no file outlives its row for long and
 * no row names a file that is gone.
 */
#include "store_int.h"

#include <stdlib.h>
#include <string.h>

#define PURGE_BATCH_MAX 1000

/* Two terms exactly as in the partial index of migration 2, so the planner
 * can use it; then the per-kind cut-offs (?1 search, ?2 failed). */
static const char SQL_EXPIRED[] =
    "SELECT original_id, thumbnail_id FROM transactions"
    " WHERE (original_id IS NOT NULL OR thumbnail_id IS NOT NULL)"
    " AND (result = 'failure' OR request_type = 'search')"
    " AND ((request_type = 'search' AND created < ?1)"
    " OR (request_type <> 'search' AND created < ?2))"
    " ORDER BY created LIMIT ?3";
/* path "": an image kept in the database, no file (store_record.c). */
static const char SQL_IMAGE_PATH[] = "SELECT path FROM images WHERE id = ?1 AND path <> ''";
static const char SQL_PENDING_ADD[] =
    "INSERT INTO pending_deletes(path, created) VALUES(?1, ?2) ON CONFLICT DO NOTHING";
/* Cascades: the log row's link becomes NULL, the row stays. */
static const char SQL_IMAGE_DEL[] = "DELETE FROM images WHERE id = ?1";

struct purge_batch {
    char (*ids)[FA_IMAGE_ID_HEX + 1]; /* up to 2 per log row */
    int n_ids;
    char **paths; /* as many as ids; strdup'ed */
    int n_paths;
};

static void batch_cleanup(struct purge_batch *b)
{
    free(b->ids);
    fa_store_paths_free(b->paths, b->n_paths);
    memset(b, 0, sizeof *b);
}

static void batch_add_id(struct purge_batch *b, struct fa_db_stmt *s, int col)
{
    const char *id = fa_db_column_text(s, col);

    if (id != NULL && strlen(id) <= FA_IMAGE_ID_HEX)
        memcpy(b->ids[b->n_ids++], id, strlen(id) + 1);
}

static enum fa_rc purge_find(struct fa_conn *c, int64_t search_before, int64_t failed_before,
                             int limit, struct purge_batch *b, struct fa_err *err)
{
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc = fa_store_stmt(c, SQL_EXPIRED, &s, err);
    int r, bind = FA_DB_OK;

    if (rc != FA_OK)
        return rc;
    bind |= fa_db_bind_int64(s, 1, search_before);
    bind |= fa_db_bind_int64(s, 2, failed_before);
    bind |= fa_db_bind_int(s, 3, limit);
    r = bind == FA_DB_OK ? fa_db_step(s) : FA_DB_ERROR;
    while (r == FA_DB_ROW) {
        batch_add_id(b, s, 0);
        batch_add_id(b, s, 1);
        r = fa_db_step(s);
    }
    if (r != FA_DB_DONE)
        rc = fa_store_dberr(c, "photo purge", err);
    fa_store_stmt_done(s);
    return rc;
}

/* The image's path into the batch (when it has a row). */
static enum fa_rc purge_path(struct fa_conn *c, const char *id, struct purge_batch *b,
                             struct fa_err *err)
{
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc = fa_store_stmt(c, SQL_IMAGE_PATH, &s, err);
    int r;

    if (rc != FA_OK)
        return rc;
    r = fa_db_bind_text(s, 1, id) == FA_DB_OK ? fa_db_step(s)
                                                                        : FA_DB_ERROR;
    if (r == FA_DB_ROW) {
        const char *path = fa_db_column_text(s, 0);
        char *copy = path != NULL ? strdup(path) : NULL;
        if (copy == NULL)
            rc = fa_err_set(err, FA_ENOMEM, "out of memory purging photos");
        else
            b->paths[b->n_paths++] = copy;
    } else if (r != FA_DB_DONE) {
        rc = fa_store_dberr(c, "photo purge", err);
    }
    fa_store_stmt_done(s);
    return rc;
}

static enum fa_rc purge_one(struct fa_conn *c, const char *id, struct purge_batch *b,
                            struct fa_err *err)
{
    struct fa_db_stmt *s = NULL;
    int had = b->n_paths;
    enum fa_rc rc = purge_path(c, id, b, err);

    if (rc == FA_OK && b->n_paths > had)
        rc = fa_store_stmt(c, SQL_PENDING_ADD, &s, err);
    if (rc == FA_OK && b->n_paths > had) {
        int bind = fa_db_bind_text(s, 1, b->paths[had]);
        bind |= fa_db_bind_int64(s, 2, fa_store_now());
        rc = fa_store_run(c, s, bind, "photo purge", err);
    }
    if (rc == FA_OK)
        rc = fa_store_stmt(c, SQL_IMAGE_DEL, &s, err);
    if (rc == FA_OK)
        rc = fa_store_run(c, s, fa_db_bind_text(s, 1, id),
                          "photo purge", err);
    return rc;
}

static enum fa_rc purge_write(struct fa_conn *c, int64_t search_before, int64_t failed_before,
                              int limit, struct purge_batch *b, struct fa_err *err)
{
    enum fa_rc rc = purge_find(c, search_before, failed_before, limit, b, err);

    for (int i = 0; rc == FA_OK && i < b->n_ids; i++)
        rc = purge_one(c, b->ids[i], b, err);
    return rc;
}

enum fa_rc fa_store_photos_expire(struct fa_store *st, int64_t failed_before,
                                  int64_t search_before, int limit, char ***paths, int *n,
                                  struct fa_err *err)
{
    struct purge_batch b = {0};
    struct fa_conn *c = NULL;
    enum fa_rc rc;

    *paths = NULL;
    *n = 0;
    if (limit < 1 || limit > PURGE_BATCH_MAX)
        return fa_err_set(err, FA_EINVAL, "purge batch must be 1-%d rows", PURGE_BATCH_MAX);
    b.ids = calloc((size_t)limit * 2, sizeof *b.ids);
    b.paths = calloc((size_t)limit * 2, sizeof *b.paths);
    if (b.ids == NULL || b.paths == NULL) {
        batch_cleanup(&b);
        return fa_err_set(err, FA_ENOMEM, "out of memory purging photos");
    }
    rc = fa_store_conn(st, &c, err);
    if (rc == FA_OK)
        rc = fa_store_tx_begin(c, err);
    if (rc == FA_OK)
        rc = fa_store_tx_end(c, purge_write(c, search_before, failed_before, limit, &b, err),
                             err);
    if (rc == FA_OK) {
        *paths = b.paths; /* ownership moves to the caller */
        *n = b.n_paths;
        b.paths = NULL;
        b.n_paths = 0;
    }
    batch_cleanup(&b);
    return rc;
}
