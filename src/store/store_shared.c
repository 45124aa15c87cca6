/*
 * store_shared.c — what several faceauth nodes on one database share
 * beyond the rows themselves (see include/faceauth/store.h):
 *
 *  - the template change feed: a counter (template_seq) bumped in every
 *    transaction that changes a user's templates or search-relevant state,
 *    and one row per user with the latest number (template_changes), so a
 *    node's index can follow the others: read the changes since the number
 *    it has, reload those users. On PostgreSQL each bump also sends
 *    NOTIFY faceauth_templates, '<seq>' in the same transaction, so
 *    followers wake at the commit instead of polling.
 *    Why the numbers come in commit order: the counter is one row, so its
 *    UPDATE holds that row's lock until COMMIT (and every PostgreSQL write
 *    transaction already holds the store's advisory write lock, store.c);
 *    a later transaction waits and then reads the committed value. So a
 *    reader that sees number n has seen every change numbered below n.
 *  - secrets all nodes must agree on (the template key on PostgreSQL, the
 *    media link key), drawn once by whichever node comes first;
 *  - image bytes kept in the database (image_data) when the nodes share no
 *    disk.
 */
#include "store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FEED_CHANNEL "faceauth_templates"

int fa_store_is_shared(const struct fa_store *st) { return st->engine == FA_DB_POSTGRES; }

/* ---- the template change feed ---- */

static const char SQL_SEQ_BUMP[] =
    "UPDATE template_seq SET seq = seq + 1 WHERE id = 1 RETURNING seq";
static const char SQL_CHANGE_USER[] =
    "INSERT INTO template_changes(user_id, customer_id, seq) VALUES(?1, ?2, ?3)"
    " ON CONFLICT(user_id) DO UPDATE SET customer_id = excluded.customer_id, seq = excluded.seq";
static const char SQL_NOTIFY[] = "SELECT pg_notify('" FEED_CHANNEL "', ?1)";

static enum fa_rc feed_next(struct fa_conn *c, int64_t *seq, struct fa_err *err)
{
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc = fa_store_stmt(c, SQL_SEQ_BUMP, &s, err);

    if (rc != FA_OK)
        return rc;
    if (fa_db_step(s) == FA_DB_ROW) {
        *seq = fa_db_column_int64(s, 0);
        /* Run the UPDATE to its end before the reset. */
        if (fa_db_step(s) != FA_DB_DONE)
            rc = fa_store_dberr(c, "template feed", err);
    } else {
        rc = fa_store_dberr(c, "template feed", err);
    }
    fa_store_stmt_done(s);
    return rc;
}

static enum fa_rc feed_notify(struct fa_conn *c, int64_t seq, struct fa_err *err)
{
    struct fa_db_stmt *s = NULL;
    char text[24];
    enum fa_rc rc;

    if (fa_db_engine_of(c->db) != FA_DB_POSTGRES)
        return FA_OK;
    rc = fa_store_stmt(c, SQL_NOTIFY, &s, err);
    if (rc != FA_OK)
        return rc;
    snprintf(text, sizeof text, "%lld", (long long)seq);
    if (fa_db_bind_text(s, 1, text) != FA_DB_OK || fa_db_step(s) != FA_DB_ROW)
        rc = fa_store_dberr(c, "template feed", err);
    fa_store_stmt_done(s);
    return rc;
}

enum fa_rc fa_store_feed_bump(struct fa_conn *c, int64_t customer_id, int64_t user_id,
                              struct fa_err *err)
{
    struct fa_db_stmt *s = NULL;
    int64_t seq = 0;
    int b = FA_DB_OK;
    enum fa_rc rc = feed_next(c, &seq, err);

    if (rc == FA_OK)
        rc = fa_store_stmt(c, SQL_CHANGE_USER, &s, err);
    if (rc != FA_OK)
        return rc;
    b |= fa_db_bind_int64(s, 1, user_id);
    b |= fa_db_bind_int64(s, 2, customer_id);
    b |= fa_db_bind_int64(s, 3, seq);
    rc = fa_store_run(c, s, b, "template feed", err);
    return rc == FA_OK ? feed_notify(c, seq, err) : rc;
}

static const char SQL_SEQ_HEAD[] = "SELECT seq FROM template_seq WHERE id = 1";

enum fa_rc fa_store_changes_head(struct fa_store *st, int64_t *seq, struct fa_err *err)
{
    struct fa_conn *c = NULL;
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;

    *seq = 0;
    rc = fa_store_conn_stmt(st, SQL_SEQ_HEAD, &c, &s, err);
    if (rc != FA_OK)
        return rc;
    if (fa_db_step(s) == FA_DB_ROW)
        *seq = fa_db_column_int64(s, 0);
    else
        rc = fa_store_dberr(c, "template feed", err);
    fa_store_stmt_done(s);
    return rc;
}

/* Every change after ?1 up to the ?2-th one's number: a batch never ends
 * inside one number, so *last can move past it safely. */
static const char SQL_CHANGES_SINCE[] =
    "SELECT seq, customer_id, user_id FROM template_changes WHERE seq > ?1 AND seq <="
    " (SELECT MAX(seq) FROM (SELECT seq FROM template_changes WHERE seq > ?1"
    " ORDER BY seq LIMIT ?2) AS batch)"
    " ORDER BY seq, user_id";

enum fa_rc fa_store_changes_since(struct fa_store *st, int64_t after, int max,
                                  fa_store_change_fn fn, void *arg, int64_t *last,
                                  struct fa_err *err)
{
    struct fa_conn *c = NULL;
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;
    int b = FA_DB_OK, r;

    *last = after;
    if (max < 1)
        return fa_err_set(err, FA_EINVAL, "change batch must be at least 1");
    rc = fa_store_conn_stmt(st, SQL_CHANGES_SINCE, &c, &s, err);
    if (rc != FA_OK)
        return rc;
    b |= fa_db_bind_int64(s, 1, after);
    b |= fa_db_bind_int(s, 2, max);
    r = b == FA_DB_OK ? fa_db_step(s) : FA_DB_ERROR;
    for (; r == FA_DB_ROW; r = fa_db_step(s)) {
        int64_t seq = fa_db_column_int64(s, 0);
        fn(arg, seq, fa_db_column_int64(s, 1), fa_db_column_int64(s, 2));
        *last = seq;
    }
    if (r != FA_DB_DONE)
        rc = fa_store_dberr(c, "template feed", err);
    fa_store_stmt_done(s);
    return rc;
}

enum fa_rc fa_store_changes_wait(struct fa_store *st, int timeout_ms, int *woken,
                                 struct fa_err *err)
{
    *woken = 0;
    if (st->listen == NULL &&
        fa_db_open(st->engine, st->path, FA_STORE_BUSY_MS, &st->listen) != FA_DB_OK) {
        enum fa_rc rc = fa_err_set(err, FA_EDB, "cannot open database '%s': %s", st->label,
                                   st->listen != NULL ? fa_db_errmsg(st->listen) : "out of memory");
        fa_db_close(st->listen);
        st->listen = NULL;
        return rc;
    }
    if (fa_db_listen_wait(st->listen, FEED_CHANNEL, timeout_ms, woken) != FA_DB_OK)
        return fa_err_set(err, FA_EDB, "database error (template feed): %s",
                          fa_db_errmsg(st->listen));
    return FA_OK;
}

/* ---- secrets ---- */

static const char SQL_SECRET_ADD[] =
    "INSERT INTO secrets(name, value) VALUES(?1, ?2) ON CONFLICT(name) DO NOTHING";
static const char SQL_SECRET_GET[] = "SELECT value FROM secrets WHERE name = ?1";

/* n random bytes into buf, from the crypto module's key source. */
static void secret_draw(uint8_t *buf, size_t n)
{
    uint8_t key[FA_KEY_BYTES];
    size_t i, k;

    for (i = 0; i < n; i += k) {
        k = n - i < sizeof key ? n - i : sizeof key;
        fa_crypto_key_new(key);
        memcpy(buf + i, key, k);
    }
    fa_crypto_wipe(key, sizeof key);
}

enum fa_rc fa_store_secret_conn(struct fa_conn *c, const char *name, uint8_t *buf, size_t n,
                                struct fa_err *err)
{
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;
    int b = FA_DB_OK;

    /* Offer a fresh value; the first node's stays, and everyone reads it. */
    secret_draw(buf, n);
    rc = fa_store_stmt(c, SQL_SECRET_ADD, &s, err);
    if (rc != FA_OK)
        goto out;
    b |= fa_db_bind_text(s, 1, name);
    b |= fa_db_bind_blob(s, 2, buf, n);
    rc = fa_store_run(c, s, b, "secret", err);
    if (rc == FA_OK)
        rc = fa_store_stmt(c, SQL_SECRET_GET, &s, err);
    if (rc != FA_OK)
        goto out;
    if (fa_db_bind_text(s, 1, name) != FA_DB_OK || fa_db_step(s) != FA_DB_ROW)
        rc = fa_store_dberr(c, "secret", err);
    else if (fa_db_column_bytes(s, 0) != n)
        rc = fa_err_set(err, FA_EDB, "database error: secret %s is %zu bytes, not %zu", name,
                        fa_db_column_bytes(s, 0), n);
    else
        memcpy(buf, fa_db_column_blob(s, 0), n);
    fa_store_stmt_done(s);
out:
    if (rc != FA_OK)
        fa_crypto_wipe(buf, n);
    return rc;
}

enum fa_rc fa_store_secret(struct fa_store *st, const char *name, uint8_t *buf, size_t n,
                           struct fa_err *err)
{
    struct fa_conn *c = NULL;
    enum fa_rc rc;

    if (name == NULL || name[0] == '\0' || n == 0)
        return fa_err_set(err, FA_EINVAL, "secret needs a name and a size");
    rc = fa_store_conn(st, &c, err);
    return rc == FA_OK ? fa_store_secret_conn(c, name, buf, n, err) : rc;
}

/* ---- image bytes ---- */

static const char SQL_IMAGE_DATA_ADD[] =
    "INSERT INTO image_data(image_id, customer_id, user_id, bytes) VALUES(?1, ?2, ?3, ?4)";

enum fa_rc fa_store_image_data_add(struct fa_conn *c, const struct fa_store_image *img,
                                   int64_t customer_id, int64_t user_id, struct fa_err *err)
{
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;
    int b = FA_DB_OK;

    if (img->bytes == NULL)
        return FA_OK;
    rc = fa_store_stmt(c, SQL_IMAGE_DATA_ADD, &s, err);
    if (rc != FA_OK)
        return rc;
    b |= fa_db_bind_text(s, 1, img->id);
    b |= fa_db_bind_int64(s, 2, customer_id);
    b |= user_id > 0 ? fa_db_bind_int64(s, 3, user_id) : fa_db_bind_null(s, 3);
    b |= fa_db_bind_blob(s, 4, img->bytes, img->n_bytes);
    return fa_store_run(c, s, b, "image data add", err);
}

static const char SQL_IMAGE_DATA_GET[] =
    "SELECT d.customer_id, i.mime, d.bytes FROM image_data d JOIN images i ON i.id = d.image_id"
    " WHERE d.image_id = ?1";

/* Copy the current row of SQL_IMAGE_DATA_GET out. */
static enum fa_rc image_data_row(struct fa_conn *c, struct fa_db_stmt *s, int64_t *customer_id,
                                 uint8_t **bytes, size_t *n, char mime[32], struct fa_err *err)
{
    size_t len = fa_db_column_bytes(s, 2);
    const void *p = fa_db_column_blob(s, 2);
    enum fa_rc rc = fa_store_col_text(c, s, 1, mime, 32, err);

    if (rc != FA_OK)
        return rc;
    *bytes = malloc(len > 0 ? len : 1);
    if (*bytes == NULL)
        return fa_err_set(err, FA_ENOMEM, "out of memory reading an image");
    if (len > 0)
        memcpy(*bytes, p, len);
    *n = len;
    *customer_id = fa_db_column_int64(s, 0);
    return FA_OK;
}

enum fa_rc fa_store_image_bytes(struct fa_store *st, const char *image_id, int64_t *customer_id,
                                uint8_t **bytes, size_t *n, char mime[32], struct fa_err *err)
{
    struct fa_conn *c = NULL;
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;
    int r;

    *customer_id = 0;
    *bytes = NULL;
    *n = 0;
    mime[0] = '\0';
    if (!fa_store_image_id_ok(image_id))
        return fa_err_set(err, FA_ENOTFOUND, "image not found");
    rc = fa_store_conn_stmt(st, SQL_IMAGE_DATA_GET, &c, &s, err);
    if (rc != FA_OK)
        return rc;
    r = fa_db_bind_text(s, 1, image_id) == FA_DB_OK ? fa_db_step(s) : FA_DB_ERROR;
    if (r == FA_DB_ROW)
        rc = image_data_row(c, s, customer_id, bytes, n, mime, err);
    else if (r == FA_DB_DONE)
        rc = fa_err_set(err, FA_ENOTFOUND, "image not found");
    else
        rc = fa_store_dberr(c, "image lookup", err);
    fa_store_stmt_done(s);
    if (rc != FA_OK) {
        free(*bytes);
        *bytes = NULL;
        *n = 0;
        *customer_id = 0;
        mime[0] = '\0';
    }
    return rc;
}
