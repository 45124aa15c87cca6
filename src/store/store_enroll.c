/*
 * store_enroll.c — what the enrollment page needs from the database: the
 * user behind a token (any customer) with the token's issue time, and the
 * per-user attempt count that limits guessing and hammering.
 *
 * Attempts live in a table rather than in memory so the limit survives a
 * restart; the columns and triggers are migration 2 (store_schema.c).
 */
#include "store_int.h"

#include <string.h>

/* The user's columns as every user query reads them (so a column added
 * there needs nothing here), then the issue time on its own. */
static const char SQL_LINK[] = FA_STORE_USER_COLUMNS " WHERE enroll_token = ?1";
static const char SQL_ISSUED[] = "SELECT enroll_issued FROM users WHERE id = ?1";

static enum fa_rc link_read(struct fa_conn *c, const char *token, struct fa_user *out,
                            int64_t *issued, struct fa_err *err)
{
    struct fa_db_stmt *s = NULL;
    long t = 0;
    enum fa_rc rc = fa_store_stmt(c, SQL_LINK, &s, err);

    if (rc != FA_OK)
        return rc;
    rc = fa_store_user_step(c, s, fa_db_bind_text(s, 1, token), out,
                            err);
    if (rc == FA_ENOTFOUND)
        return fa_err_set(err, FA_ENOTFOUND, "unknown enrollment token");
    if (rc == FA_OK)
        rc = fa_store_stmt(c, SQL_ISSUED, &s, err);
    if (rc == FA_OK)
        rc = fa_store_count(c, s, fa_db_bind_int64(s, 1, out->id), &t, "enrollment link", err);
    *issued = t;
    return rc;
}

enum fa_rc fa_store_enroll_link(struct fa_store *st, const char *enroll_token,
                                struct fa_user *out, int64_t *issued, struct fa_err *err)
{
    struct fa_conn *c = NULL;
    enum fa_rc rc;

    memset(out, 0, sizeof *out);
    *issued = 0;
    /* Any string that is not token-shaped cannot match: skip the query. */
    if (enroll_token == NULL || strnlen(enroll_token, FA_TOKEN_CHARS + 1) != FA_TOKEN_CHARS)
        return fa_err_set(err, FA_ENOTFOUND, "unknown enrollment token");
    rc = fa_store_conn(st, &c, err);
    if (rc == FA_OK)
        rc = link_read(c, enroll_token, out, issued, err);
    if (rc != FA_OK)
        memset(out, 0, sizeof *out);
    return rc;
}

static const char SQL_ATT_PRUNE[] = "DELETE FROM enroll_attempts WHERE user_id = ?1 AND at <= ?2";
static const char SQL_ATT_COUNT[] = "SELECT count(*) FROM enroll_attempts WHERE user_id = ?1";
static const char SQL_ATT_ADD[] = "INSERT INTO enroll_attempts(user_id, at) VALUES(?1, ?2)";

/* Inside the caller's write transaction. */
static enum fa_rc attempt_count_add(struct fa_conn *c, int64_t user_id, int64_t now,
                                    long window_s, int limit, int *allowed, struct fa_err *err)
{
    struct fa_db_stmt *s = NULL;
    long n = 0;
    int b;
    enum fa_rc rc = fa_store_stmt(c, SQL_ATT_PRUNE, &s, err);

    if (rc != FA_OK)
        return rc;
    b = fa_db_bind_int64(s, 1, user_id) | fa_db_bind_int64(s, 2, now - window_s);
    rc = fa_store_run(c, s, b, "enrollment attempts", err);
    if (rc == FA_OK)
        rc = fa_store_stmt(c, SQL_ATT_COUNT, &s, err);
    if (rc == FA_OK)
        rc = fa_store_count(c, s, fa_db_bind_int64(s, 1, user_id), &n, "enrollment attempts",
                            err);
    if (rc != FA_OK || n >= limit)
        return rc;
    rc = fa_store_stmt(c, SQL_ATT_ADD, &s, err);
    if (rc != FA_OK)
        return rc;
    b = fa_db_bind_int64(s, 1, user_id) | fa_db_bind_int64(s, 2, now);
    rc = fa_store_run(c, s, b, "enrollment attempts", err);
    if (rc == FA_OK)
        *allowed = 1;
    return rc;
}

enum fa_rc fa_store_enroll_attempt(struct fa_store *st, int64_t user_id, int64_t now,
                                   long window_s, int limit, int *allowed, struct fa_err *err)
{
    struct fa_conn *c = NULL;
    enum fa_rc rc = fa_store_conn(st, &c, err);

    *allowed = 0;
    if (rc == FA_OK)
        rc = fa_store_tx_begin(c, err);
    if (rc != FA_OK)
        return rc;
    rc = fa_store_tx_end(c, attempt_count_add(c, user_id, now, window_s, limit, allowed, err),
                         err);
    if (rc != FA_OK)
        *allowed = 0;
    return rc;
}
