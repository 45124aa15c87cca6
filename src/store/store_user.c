/*
 * store_user.c — users: create, and look up by name or enrollment token;
 * the row reader every user query shares (fa_store_user_from_row).
 *
 * Every lookup is scoped by customer_id in the SQL itself, so a user of one
 * customer is invisible through another customer's id whatever the caller
 * passes as name or token.
 *
 * The enrollment token is 256 random bits, so two users drawing the same one
 * will not happen in practice; the UNIQUE constraint would still catch it,
 * and create then draws a new token instead of failing.
 */
#include "store_int.h"

#include <string.h>

#define TOKEN_ATTEMPTS 3

static const char SQL_USER_INSERT[] =
    "INSERT INTO users(customer_id, user_name, full_name, email, phone, country_code,"
    " enroll_token, state, blacklisted, created, updated)"
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, 'draft', 0, ?8, ?8) RETURNING id";

static enum fa_rc user_validate(const struct fa_user *u, struct fa_err *err)
{
    enum fa_rc rc;

    if (u->customer_id <= 0)
        return fa_err_set(err, FA_EINVAL, "customer id is invalid");
    rc = fa_store_check_name("userName", u->user_name, err);
    if (rc == FA_OK)
        rc = fa_store_check_text("fullName", u->full_name, FA_TEXT_MAX, err);
    if (rc == FA_OK)
        rc = fa_store_check_text("emailId", u->email, FA_TEXT_MAX, err);
    if (rc == FA_OK)
        rc = fa_store_check_text("phoneNumber", u->phone, FA_TEXT_MAX, err);
    if (rc == FA_OK)
        rc = fa_store_check_text("countryCode", u->country_code, FA_TEXT_MAX, err);
    return rc;
}

/* One INSERT attempt; *id gets the new row's id. FA_ECONFLICT (message not
 * set) on any UNIQUE clash: the caller works out whether it was the name or
 * the token. */
static enum fa_rc user_insert(struct fa_conn *c, const struct fa_user *u, const char *token,
                              int64_t now, int64_t *id, struct fa_err *err)
{
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;
    int b = FA_DB_OK;
    enum fa_db_errkind xc;

    rc = fa_store_stmt(c, SQL_USER_INSERT, &s, err);
    if (rc != FA_OK)
        return rc;
    b |= fa_db_bind_int64(s, 1, u->customer_id);
    b |= fa_db_bind_text(s, 2, u->user_name);
    b |= fa_db_bind_text(s, 3, u->full_name);
    b |= fa_db_bind_text(s, 4, u->email);
    b |= fa_db_bind_text(s, 5, u->phone);
    b |= fa_db_bind_text(s, 6, u->country_code);
    b |= fa_db_bind_text(s, 7, token);
    b |= fa_db_bind_int64(s, 8, now);
    if (b != FA_DB_OK) {
        rc = fa_store_dberr(c, "user create", err);
        goto out;
    }
    /* The RETURNING row, then the end of the statement: only there is an
     * autocommit write committed (or refused). */
    if (fa_db_step(s) == FA_DB_ROW) {
        *id = fa_db_column_int64(s, 0);
        if (fa_db_step(s) == FA_DB_DONE)
            goto out;
    }
    xc = fa_db_errkind(c->db);
    if (xc == FA_DB_E_UNIQUE)
        rc = FA_ECONFLICT;
    else if (xc == FA_DB_E_FOREIGNKEY)
        rc = fa_err_set(err, FA_ENOTFOUND, "customer not found");
    else
        rc = fa_store_dberr(c, "user create", err);
out:
    fa_store_stmt_done(s);
    return rc;
}

static const char SQL_USER_NAME_TAKEN[] =
    "SELECT 1 FROM users WHERE customer_id = ?1 AND user_name = ?2";

static enum fa_rc user_name_taken(struct fa_conn *c, const struct fa_user *u, int *taken,
                                  struct fa_err *err)
{
    int64_t one = 0;
    enum fa_rc rc = fa_store_lookup_id(c, SQL_USER_NAME_TAKEN, u->customer_id, u->user_name,
                                       &one, "user create", err);

    if (rc == FA_OK || rc == FA_ENOTFOUND) {
        *taken = rc == FA_OK;
        rc = FA_OK;
    }
    return rc;
}

enum fa_rc fa_store_user_create(struct fa_store *st, struct fa_user *u, struct fa_err *err)
{
    char token[FA_TOKEN_CHARS + 1];
    struct fa_conn *c = NULL;
    int64_t now = fa_store_now();
    enum fa_rc rc;
    int attempt, taken = 0;

    rc = user_validate(u, err);
    if (rc != FA_OK)
        return rc;
    rc = fa_store_conn(st, &c, err);
    if (rc != FA_OK)
        return rc;
    for (attempt = 0; attempt < TOKEN_ATTEMPTS; attempt++) {
        fa_crypto_token_new(token);
        rc = user_insert(c, u, token, now, &u->id, err);
        if (rc != FA_ECONFLICT)
            break;
        rc = user_name_taken(c, u, &taken, err);
        if (rc != FA_OK)
            return rc;
        if (taken)
            return fa_err_set(err, FA_ECONFLICT, "userName '%s' already exists", u->user_name);
        rc = FA_ECONFLICT; /* the token clashed: draw another */
    }
    if (rc == FA_ECONFLICT)
        return fa_err_set(err, FA_EINTERNAL, "could not draw a unique enrollment token");
    if (rc != FA_OK)
        return rc;
    memcpy(u->enroll_token, token, sizeof token);
    u->state = FA_USER_DRAFT;
    u->blacklisted = 0;
    u->blacklisted_at = 0;
    u->face_original[0] = '\0';
    u->face_thumbnail[0] = '\0';
    u->created = now;
    u->updated = now;
    return FA_OK;
}

/* ---- lookups ---- */

static const char SQL_USER_BY_NAME[] =
    FA_STORE_USER_COLUMNS " WHERE customer_id = ?1 AND user_name = ?2";
static const char SQL_USER_BY_TOKEN[] =
    FA_STORE_USER_COLUMNS " WHERE customer_id = ?1 AND enroll_token = ?2";

/* The columns after state: flags, times and the enrolled face's image ids
 * (NULL when none, read as ""). */
static enum fa_rc user_from_row_tail(struct fa_conn *c, struct fa_db_stmt *s, struct fa_user *out,
                                     struct fa_err *err)
{
    enum fa_rc rc;

    out->blacklisted = fa_db_column_int(s, 9) != 0;
    out->created = fa_db_column_int64(s, 10);
    out->updated = fa_db_column_int64(s, 11);
    out->blacklisted_at = fa_db_column_int64(s, 12);
    rc = fa_store_col_text(c, s, 13, out->face_original, sizeof out->face_original, err);
    if (rc == FA_OK)
        rc = fa_store_col_text(c, s, 14, out->face_thumbnail, sizeof out->face_thumbnail, err);
    return rc;
}

enum fa_rc fa_store_user_from_row(struct fa_conn *c, struct fa_db_stmt *s, struct fa_user *out,
                                  struct fa_err *err)
{
    char state[16];
    enum fa_rc rc;
    int st;

    out->id = fa_db_column_int64(s, 0);
    out->customer_id = fa_db_column_int64(s, 1);
    rc = fa_store_col_text(c, s, 2, out->user_name, sizeof out->user_name, err);
    if (rc == FA_OK)
        rc = fa_store_col_text(c, s, 3, out->full_name, sizeof out->full_name, err);
    if (rc == FA_OK)
        rc = fa_store_col_text(c, s, 4, out->email, sizeof out->email, err);
    if (rc == FA_OK)
        rc = fa_store_col_text(c, s, 5, out->phone, sizeof out->phone, err);
    if (rc == FA_OK)
        rc = fa_store_col_text(c, s, 6, out->country_code, sizeof out->country_code, err);
    if (rc == FA_OK)
        rc = fa_store_col_text(c, s, 7, out->enroll_token, sizeof out->enroll_token, err);
    if (rc == FA_OK)
        rc = fa_store_col_text(c, s, 8, state, sizeof state, err);
    if (rc != FA_OK)
        return rc;
    st = fa_store_state_parse(state);
    if (st < 0)
        return fa_err_set(err, FA_EDB, "database error: user %lld has an unknown state",
                          (long long)out->id);
    out->state = (enum fa_user_state)st;
    return user_from_row_tail(c, s, out, err);
}

enum fa_rc fa_store_user_step(struct fa_conn *c, struct fa_db_stmt *s, int b, struct fa_user *out,
                              struct fa_err *err)
{
    enum fa_rc rc;
    int r = b == FA_DB_OK ? fa_db_step(s) : FA_DB_ERROR;

    if (r == FA_DB_ROW)
        rc = fa_store_user_from_row(c, s, out, err);
    else if (r == FA_DB_DONE)
        rc = FA_ENOTFOUND; /* the caller words the message */
    else
        rc = fa_store_dberr(c, "user lookup", err);
    fa_store_stmt_done(s);
    return rc;
}

static enum fa_rc user_fetch(struct fa_conn *c, const char *sql, int64_t customer_id,
                             const char *key, struct fa_user *out, struct fa_err *err)
{
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;

    rc = fa_store_stmt(c, sql, &s, err);
    if (rc != FA_OK)
        return rc;
    return fa_store_user_step(c, s, fa_store_bind_id_text(s, customer_id, key), out, err);
}

enum fa_rc fa_store_user_find(struct fa_conn *c, int64_t customer_id, const char *user_name,
                              struct fa_user *out, struct fa_err *err)
{
    enum fa_rc rc = user_fetch(c, SQL_USER_BY_NAME, customer_id, user_name, out, err);

    /* user_name was validated by the caller, so echoing it is safe. */
    if (rc == FA_ENOTFOUND)
        fa_err_set(err, rc, "userName '%s' not found", user_name);
    return rc;
}

enum fa_rc fa_store_user_get(struct fa_store *st, int64_t customer_id, const char *user_name,
                             struct fa_user *out, struct fa_err *err)
{
    struct fa_conn *c = NULL;
    enum fa_rc rc;

    memset(out, 0, sizeof *out);
    rc = fa_store_check_name("userName", user_name, err);
    if (rc != FA_OK)
        return rc;
    rc = fa_store_conn(st, &c, err);
    if (rc == FA_OK)
        rc = fa_store_user_find(c, customer_id, user_name, out, err);
    if (rc != FA_OK)
        memset(out, 0, sizeof *out);
    return rc;
}

enum fa_rc fa_store_user_by_token(struct fa_store *st, int64_t customer_id,
                                  const char *enroll_token, struct fa_user *out,
                                  struct fa_err *err)
{
    struct fa_conn *c = NULL;
    enum fa_rc rc;

    memset(out, 0, sizeof *out);
    /* Any string that is not token-shaped cannot match: skip the query. */
    if (enroll_token == NULL || strnlen(enroll_token, FA_TOKEN_CHARS + 1) != FA_TOKEN_CHARS)
        return fa_err_set(err, FA_ENOTFOUND, "unknown enrollment token");
    rc = fa_store_conn(st, &c, err);
    if (rc == FA_OK)
        rc = user_fetch(c, SQL_USER_BY_TOKEN, customer_id, enroll_token, out, err);
    if (rc == FA_ENOTFOUND)
        fa_err_set(err, rc, "unknown enrollment token");
    if (rc != FA_OK)
        memset(out, 0, sizeof *out);
    return rc;
}
