/*
 * store_admin.c — changing users after creation: update (rename, details,
 * face reset), delete with its pending file deletions, blacklist, and the
 * image-path lookup of the start-up orphan sweep.
 *
 * Deleting a user removes rows at once but the image files only later, by
 * the caller: files cannot join a SQLite transaction. So the same transaction
 * that deletes the user records the file paths in pending_deletes, and the
 * caller forgets them (fa_store_pending_done) once the files are gone. A
 * crash in between leaves the paths listed for the next start; a crash
 * before the commit leaves the user and the files both in place. Either way
 * no image file outlives its user for long, and no row points at a file
 * that was removed.
 *
 * As everywhere in the store, every statement names the customer, so one
 * customer's id can never reach another customer's user.
 */
#include "store_int.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN_ATTEMPTS 3

/* ---- update ---- */

static enum fa_rc changes_validate(const struct fa_user_changes *chg, struct fa_err *err)
{
    static const char *const fields[] = {"fullName", "emailId", "phoneNumber", "countryCode"};
    const char *values[] = {chg->full_name, chg->email, chg->phone, chg->country_code};
    enum fa_rc rc = FA_OK;
    size_t i;

    if (chg->user_name != NULL)
        rc = fa_store_check_name("userName", chg->user_name, err);
    for (i = 0; rc == FA_OK && i < sizeof values / sizeof values[0]; i++) {
        if (values[i] != NULL)
            rc = fa_store_check_text(fields[i], values[i], FA_TEXT_MAX, err);
    }
    return rc;
}

/* NULL binds SQL NULL, and COALESCE keeps the column as it is. */
static const char SQL_UPD_FIELDS[] =
    "UPDATE users SET user_name = COALESCE(?2, user_name), full_name = COALESCE(?3, full_name),"
    " email = COALESCE(?4, email), phone = COALESCE(?5, phone),"
    " country_code = COALESCE(?6, country_code) WHERE id = ?1";

static enum fa_rc upd_fields(struct fa_conn *c, int64_t id, const struct fa_user_changes *chg,
                             struct fa_err *err)
{
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;
    int b = FA_DB_OK;

    rc = fa_store_stmt(c, SQL_UPD_FIELDS, &s, err);
    if (rc != FA_OK)
        return rc;
    b |= fa_db_bind_int64(s, 1, id);
    b |= fa_db_bind_text(s, 2, chg->user_name);
    b |= fa_db_bind_text(s, 3, chg->full_name);
    b |= fa_db_bind_text(s, 4, chg->email);
    b |= fa_db_bind_text(s, 5, chg->phone);
    b |= fa_db_bind_text(s, 6, chg->country_code);
    if (b != FA_DB_OK) {
        rc = fa_store_dberr(c, "user update", err);
        goto out;
    }
    if (fa_db_step(s) == FA_DB_DONE)
        goto out;
    /* The token is not touched here, so the only UNIQUE that can clash is
     * (customer_id, user_name): the new name is taken. */
    if (fa_db_errkind(c->db) == FA_DB_E_UNIQUE)
        rc = fa_err_set(err, FA_ECONFLICT, "userName '%s' already exists", chg->user_name);
    else
        rc = fa_store_dberr(c, "user update", err);
out:
    fa_store_stmt_done(s);
    return rc;
}

/* The user has no enrolled face any more, so the face image ids go too
 * (the image rows stay, for the log, until the user is deleted). */
static const char SQL_UPD_RESET[] =
    "UPDATE users SET enroll_token = ?2, state = 'draft', updated = ?3,"
    " face_original = NULL, face_thumbnail = NULL WHERE id = ?1";
static const char SQL_UPD_TPL_CLEAR[] = "DELETE FROM templates WHERE user_id = ?1";

/* One attempt with a fresh token; FA_ECONFLICT (no message) when it clashed. */
static enum fa_rc upd_reset_once(struct fa_conn *c, int64_t id, struct fa_err *err)
{
    char token[FA_TOKEN_CHARS + 1];
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;
    int b = FA_DB_OK;

    rc = fa_store_stmt(c, SQL_UPD_RESET, &s, err);
    if (rc != FA_OK)
        return rc;
    fa_crypto_token_new(token);
    b |= fa_db_bind_int64(s, 1, id);
    b |= fa_db_bind_text(s, 2, token);
    b |= fa_db_bind_int64(s, 3, fa_store_now());
    if (b != FA_DB_OK)
        rc = fa_store_dberr(c, "face reset", err);
    else if (fa_db_step(s) == FA_DB_DONE)
        rc = FA_OK;
    else if (fa_db_errkind(c->db) == FA_DB_E_UNIQUE)
        rc = FA_ECONFLICT;
    else
        rc = fa_store_dberr(c, "face reset", err);
    fa_store_stmt_done(s);
    return rc;
}

/* New enrollment token (256 random bits: a clash is only theory, but the
 * UNIQUE would catch it, so draw again as create does), state draft, no
 * templates. */
static enum fa_rc upd_reset(struct fa_conn *c, int64_t id, struct fa_err *err)
{
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc = FA_ECONFLICT;
    int attempt;

    for (attempt = 0; attempt < TOKEN_ATTEMPTS && rc == FA_ECONFLICT; attempt++)
        rc = upd_reset_once(c, id, err);
    if (rc == FA_ECONFLICT)
        return fa_err_set(err, FA_EINTERNAL, "could not draw a unique enrollment token");
    if (rc != FA_OK)
        return rc;
    rc = fa_store_stmt(c, SQL_UPD_TPL_CLEAR, &s, err);
    if (rc != FA_OK)
        return rc;
    return fa_store_run(c, s, fa_db_bind_int64(s, 1, id), "face reset", err);
}

static const char SQL_USER_BY_ID[] = FA_STORE_USER_COLUMNS " WHERE customer_id = ?1 AND id = ?2";

/* The user by id on c. FA_ENOTFOUND (message "user not found"). */
static enum fa_rc user_find_id(struct fa_conn *c, int64_t customer_id, int64_t id,
                               struct fa_user *out, struct fa_err *err)
{
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;
    int b = FA_DB_OK;

    rc = fa_store_stmt(c, SQL_USER_BY_ID, &s, err);
    if (rc != FA_OK)
        return rc;
    b |= fa_db_bind_int64(s, 1, customer_id);
    b |= fa_db_bind_int64(s, 2, id);
    rc = fa_store_user_step(c, s, b, out, err);
    if (rc == FA_ENOTFOUND)
        fa_err_set(err, rc, "user not found");
    return rc;
}

static enum fa_rc upd_write(struct fa_conn *c, int64_t customer_id, const char *user_name,
                            const struct fa_user_changes *chg, struct fa_user *out,
                            struct fa_err *err)
{
    struct fa_user u;
    enum fa_rc rc;

    rc = fa_store_user_find(c, customer_id, user_name, &u, err);
    if (rc == FA_OK)
        rc = upd_fields(c, u.id, chg, err);
    if (rc == FA_OK && chg->reset_face)
        rc = upd_reset(c, u.id, err);
    if (rc == FA_OK)
        rc = user_find_id(c, customer_id, u.id, out, err);
    if (rc == FA_OK)
        rc = fa_store_feed_bump(c, customer_id, u.id, err);
    return rc;
}

enum fa_rc fa_store_user_update(struct fa_store *st, int64_t customer_id, const char *user_name,
                                const struct fa_user_changes *chg, struct fa_user *out,
                                struct fa_err *err)
{
    struct fa_conn *c = NULL;
    enum fa_rc rc;

    memset(out, 0, sizeof *out);
    if (chg == NULL)
        return fa_err_set(err, FA_EINVAL, "no changes given");
    rc = fa_store_check_name("userName", user_name, err);
    if (rc == FA_OK)
        rc = changes_validate(chg, err);
    if (rc == FA_OK)
        rc = fa_store_conn(st, &c, err);
    if (rc != FA_OK)
        goto out;
    rc = fa_store_tx_begin(c, err);
    if (rc != FA_OK)
        goto out;
    rc = fa_store_tx_end(c, upd_write(c, customer_id, user_name, chg, out, err), err);
out:
    if (rc != FA_OK)
        memset(out, 0, sizeof *out);
    return rc;
}

enum fa_rc fa_store_user_by_id(struct fa_store *st, int64_t customer_id, int64_t user_id,
                               struct fa_user *out, struct fa_err *err)
{
    struct fa_conn *c = NULL;
    enum fa_rc rc;

    memset(out, 0, sizeof *out);
    rc = fa_store_conn(st, &c, err);
    if (rc == FA_OK)
        rc = user_find_id(c, customer_id, user_id, out, err);
    if (rc != FA_OK)
        memset(out, 0, sizeof *out);
    return rc;
}

/* ---- paths ---- */

void fa_store_paths_free(char **paths, int n)
{
    int i;

    if (paths == NULL)
        return;
    for (i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
}

static const struct fa_store_growth PATHS_GROWTH = {
    8, INT_MAX, "too many image paths", "out of memory listing image paths"};

/* Append a copy of path to *paths (*n of them, room for *cap). */
static enum fa_rc paths_push(char ***paths, int *n, size_t *cap, const char *path,
                             struct fa_err *err)
{
    void *p = *paths;
    char *copy;
    enum fa_rc rc = fa_store_grow(&p, cap, (size_t)*n + 1, sizeof **paths, &PATHS_GROWTH, err);

    *paths = p;
    if (rc != FA_OK)
        return rc;
    copy = strdup(path);
    if (copy == NULL)
        return fa_err_set(err, FA_ENOMEM, "out of memory listing image paths");
    (*paths)[(*n)++] = copy;
    return FA_OK;
}

/* Step s (bound by the caller) to the end, collecting column 0 of each row.
 * On error nothing is returned: the outputs are left as they were. */
static enum fa_rc paths_collect(struct fa_conn *c, struct fa_db_stmt *s, char ***paths, int *n,
                                struct fa_err *err)
{
    char **p = NULL;
    const char *text;
    int count = 0, r;
    size_t cap = 0;
    enum fa_rc rc = FA_OK;

    r = fa_db_step(s);
    while (r == FA_DB_ROW && rc == FA_OK) {
        text = fa_db_column_text(s, 0);
        if (text == NULL)
            rc = fa_err_set(err, FA_ENOMEM, "out of memory reading image paths");
        else
            rc = paths_push(&p, &count, &cap, text, err);
        if (rc == FA_OK)
            r = fa_db_step(s);
    }
    if (rc == FA_OK && r != FA_DB_DONE)
        rc = fa_store_dberr(c, "image paths", err);
    if (rc != FA_OK) {
        fa_store_paths_free(p, count);
        return rc;
    }
    *paths = p;
    *n = count;
    return FA_OK;
}

/* ---- delete ---- */

/* path "": an image kept in the database, no file (store_record.c). */
static const char SQL_DEL_PENDING[] =
    "INSERT INTO pending_deletes(path, created)"
    " SELECT DISTINCT path, ?2 FROM images WHERE user_id = ?1 AND path <> ''"
    " ON CONFLICT DO NOTHING";
static const char SQL_DEL_PATHS[] =
    "SELECT DISTINCT path FROM images WHERE user_id = ?1 AND path <> '' ORDER BY path";
/* Cascades take the templates, images and memberships; the log keeps its
 * rows with user_id and image ids set to NULL. */
static const char SQL_DEL_USER[] = "DELETE FROM users WHERE id = ?1 AND customer_id = ?2";

static enum fa_rc del_pending(struct fa_conn *c, int64_t id, char ***paths, int *n,
                              struct fa_err *err)
{
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;
    int b = FA_DB_OK;

    rc = fa_store_stmt(c, SQL_DEL_PENDING, &s, err);
    if (rc != FA_OK)
        return rc;
    b |= fa_db_bind_int64(s, 1, id);
    b |= fa_db_bind_int64(s, 2, fa_store_now());
    rc = fa_store_run(c, s, b, "user delete", err);
    if (rc != FA_OK)
        return rc;
    rc = fa_store_stmt(c, SQL_DEL_PATHS, &s, err);
    if (rc != FA_OK)
        return rc;
    rc = fa_db_bind_int64(s, 1, id) == FA_DB_OK ? paths_collect(c, s, paths, n, err)
                                                   : fa_store_dberr(c, "user delete", err);
    fa_store_stmt_done(s);
    return rc;
}

static enum fa_rc del_write(struct fa_conn *c, int64_t customer_id, const char *user_name,
                            int64_t *user_id, char ***paths, int *n, struct fa_err *err)
{
    struct fa_db_stmt *s = NULL;
    struct fa_user u;
    enum fa_rc rc;
    int b = FA_DB_OK;

    rc = fa_store_user_find(c, customer_id, user_name, &u, err);
    if (rc == FA_OK)
        rc = del_pending(c, u.id, paths, n, err);
    if (rc == FA_OK)
        rc = fa_store_stmt(c, SQL_DEL_USER, &s, err);
    if (rc != FA_OK)
        return rc;
    b |= fa_db_bind_int64(s, 1, u.id);
    b |= fa_db_bind_int64(s, 2, customer_id);
    rc = fa_store_run(c, s, b, "user delete", err);
    if (rc == FA_OK)
        rc = fa_store_feed_bump(c, customer_id, u.id, err);
    if (rc == FA_OK)
        *user_id = u.id;
    return rc;
}

enum fa_rc fa_store_user_delete(struct fa_store *st, int64_t customer_id, const char *user_name,
                                int64_t *user_id, char ***paths, int *n, struct fa_err *err)
{
    struct fa_conn *c = NULL;
    char **p = NULL;
    int np = 0;
    enum fa_rc rc;

    *user_id = 0;
    *paths = NULL;
    *n = 0;
    rc = fa_store_check_name("userName", user_name, err);
    if (rc == FA_OK)
        rc = fa_store_conn(st, &c, err);
    if (rc != FA_OK)
        return rc;
    rc = fa_store_tx_begin(c, err);
    if (rc != FA_OK)
        return rc;
    rc = fa_store_tx_end(c, del_write(c, customer_id, user_name, user_id, &p, &np, err), err);
    if (rc != FA_OK) {
        *user_id = 0;
        fa_store_paths_free(p, np);
        return rc;
    }
    *paths = p;
    *n = np;
    return FA_OK;
}

/* ---- pending file deletions ---- */

static const char SQL_PENDING_LIST[] = "SELECT path FROM pending_deletes ORDER BY created, path";
static const char SQL_PENDING_DONE[] = "DELETE FROM pending_deletes WHERE path = ?1";

enum fa_rc fa_store_pending_list(struct fa_store *st, char ***paths, int *n, struct fa_err *err)
{
    struct fa_conn *c = NULL;
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;

    *paths = NULL;
    *n = 0;
    rc = fa_store_conn_stmt(st, SQL_PENDING_LIST, &c, &s, err);
    if (rc == FA_OK)
        rc = paths_collect(c, s, paths, n, err);
    fa_store_stmt_done(s);
    return rc;
}

static enum fa_rc pending_done_write(struct fa_conn *c, char *const *paths, int n,
                                     struct fa_err *err)
{
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;
    int i;

    rc = fa_store_stmt(c, SQL_PENDING_DONE, &s, err);
    for (i = 0; rc == FA_OK && i < n; i++)
        rc = fa_store_run(c, s, fa_db_bind_text(s, 1, paths[i]),
                          "pending done", err);
    return rc;
}

enum fa_rc fa_store_pending_done(struct fa_store *st, char *const *paths, int n,
                                 struct fa_err *err)
{
    struct fa_conn *c = NULL;
    enum fa_rc rc;
    int i;

    if (n < 0 || (n > 0 && paths == NULL))
        return fa_err_set(err, FA_EINVAL, "pending paths are missing");
    for (i = 0; i < n; i++) {
        if (paths[i] == NULL)
            return fa_err_set(err, FA_EINVAL, "pending path %d is missing", i);
    }
    if (n == 0)
        return FA_OK;
    rc = fa_store_conn(st, &c, err);
    if (rc == FA_OK)
        rc = fa_store_tx_begin(c, err);
    if (rc != FA_OK)
        return rc;
    return fa_store_tx_end(c, pending_done_write(c, paths, n, err), err);
}

static const char SQL_PATH_KNOWN[] = "SELECT 1 FROM images WHERE path = ?1 LIMIT 1";

enum fa_rc fa_store_image_path_known(struct fa_store *st, const char *relpath, int *known,
                                     struct fa_err *err)
{
    struct fa_conn *c = NULL;
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;
    int r;

    *known = 0;
    if (relpath == NULL)
        return fa_err_set(err, FA_EINVAL, "image path is missing");
    rc = fa_store_conn_stmt(st, SQL_PATH_KNOWN, &c, &s, err);
    if (rc != FA_OK)
        return rc;
    r = fa_db_bind_text(s, 1, relpath) == FA_DB_OK ? fa_db_step(s) : FA_DB_ERROR;
    if (r == FA_DB_ROW || r == FA_DB_DONE)
        *known = r == FA_DB_ROW;
    else
        rc = fa_store_dberr(c, "image path", err);
    fa_store_stmt_done(s);
    return rc;
}

/* ---- blacklist ---- */

/* Blacklisting an already blacklisted user keeps the first time (the list
 * is ordered by it); whitelisting clears it. */
static const char SQL_BLACKLIST[] =
    "UPDATE users SET blacklisted = ?3,"
    " blacklisted_at = CASE WHEN ?3 = 0 THEN 0 WHEN blacklisted <> 0 THEN blacklisted_at"
    " ELSE ?4 END WHERE customer_id = ?1 AND user_name = ?2";

enum fa_rc fa_store_user_blacklist(struct fa_store *st, int64_t customer_id, const char *user_name,
                                   int on, struct fa_err *err)
{
    struct fa_conn *c = NULL;
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;
    int b;

    rc = fa_store_check_name("userName", user_name, err);
    if (rc == FA_OK)
        rc = fa_store_conn_stmt(st, SQL_BLACKLIST, &c, &s, err);
    if (rc != FA_OK)
        return rc;
    b = fa_store_bind_id_text(s, customer_id, user_name);
    b |= fa_db_bind_int(s, 3, on != 0);
    b |= fa_db_bind_int64(s, 4, fa_store_now());
    rc = fa_store_run(c, s, b, "blacklist", err);
    /* changes() counts matched rows even when no value changed. */
    if (rc == FA_OK && fa_db_changes(c->db) == 0)
        rc = fa_err_set(err, FA_ENOTFOUND, "userName '%s' not found", user_name);
    return rc;
}
