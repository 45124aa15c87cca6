/*
 * store_list.c — one page of a customer's users (status/enroll/all,
 * view/blacklist/all).
 *
 * A page is a COUNT(*) of every matching row plus a LIMIT/OFFSET query, both
 * in one read snapshot (fa_store_page_read: BEGIN ... COMMIT), so the total
 * always describes the rows the page was cut from even while other workers
 * write.
 *
 * The filter's optional parts are bound as values that switch their clause
 * off (NULL state, 0 dates) instead of building SQL text at run time: every
 * statement stays a static string in the cache. The two orders are two
 * texts so that each can walk its own index.
 */
#include "store_int.h"

#include <string.h>

#define LIST_WHERE                                                                             \
    " WHERE customer_id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR state = ?2) AND (?3 = 0 OR blacklisted <> 0)"  \
    " AND (?4 = 0 OR updated >= ?4) AND (?5 = 0 OR updated <= ?5)"

static const char SQL_LIST_COUNT[] = "SELECT count(*) FROM users" LIST_WHERE;
/* Ties (same second) go newest row first, like the log. */
static const char SQL_LIST_BY_UPDATED[] =
    FA_STORE_USER_COLUMNS LIST_WHERE " ORDER BY updated DESC, id DESC LIMIT ?6 OFFSET ?7";
static const char SQL_LIST_BY_BLACKLISTED[] =
    FA_STORE_USER_COLUMNS LIST_WHERE " ORDER BY blacklisted_at DESC, id DESC LIMIT ?6 OFFSET ?7";

static enum fa_rc filter_validate(const struct fa_user_filter *f, struct fa_err *err)
{
    if (f == NULL)
        return fa_err_set(err, FA_EINVAL, "no filter given");
    if (f->state != -1 && f->state != FA_USER_DRAFT && f->state != FA_USER_SUCCESS &&
        f->state != FA_USER_FAILURE)
        return fa_err_set(err, FA_EINVAL, "statusType must be success, failure, draft or all");
    return fa_store_check_page(f->page, f->page_count, f->from, f->to, err);
}

/* Parameters 1-5, which the count and the page share. */
static int filter_bind(struct fa_db_stmt *s, int64_t customer_id, const struct fa_user_filter *f)
{
    int b = FA_DB_OK;

    b |= fa_db_bind_int64(s, 1, customer_id);
    b |= f->state < 0 ? fa_db_bind_null(s, 2)
                      : fa_db_bind_text(s, 2, fa_user_state_name((enum fa_user_state)f->state));
    b |= fa_db_bind_int(s, 3, f->blacklisted_only != 0);
    b |= fa_db_bind_int64(s, 4, f->from);
    b |= fa_db_bind_int64(s, 5, f->to);
    return b;
}

/* The query both reads of a page share (fa_store_page_read's arg). */
struct list_query {
    int64_t customer_id;
    const struct fa_user_filter *f;
};

static enum fa_rc list_count(struct fa_conn *c, const void *arg, long *total, struct fa_err *err)
{
    const struct list_query *q = arg;
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;

    rc = fa_store_stmt(c, SQL_LIST_COUNT, &s, err);
    if (rc != FA_OK)
        return rc;
    return fa_store_count(c, s, filter_bind(s, q->customer_id, q->f), total, "user list", err);
}

/* Step the bound page statement into users (room for max rows). */
static enum fa_rc list_rows(struct fa_conn *c, struct fa_db_stmt *s, struct fa_user *users, int max,
                            int *n, struct fa_err *err)
{
    enum fa_rc rc = FA_OK;
    int r;

    r = fa_db_step(s);
    while (r == FA_DB_ROW && rc == FA_OK && *n < max) {
        rc = fa_store_user_from_row(c, s, &users[*n], err);
        if (rc == FA_OK) {
            (*n)++;
            r = fa_db_step(s);
        }
    }
    /* LIMIT caps the rows at max, so the loop ends on DONE. */
    if (rc == FA_OK && r != FA_DB_DONE)
        rc = fa_store_dberr(c, "user list", err);
    return rc;
}

static enum fa_rc list_page(struct fa_conn *c, const void *arg, void *rows, int *n,
                            struct fa_err *err)
{
    const struct list_query *q = arg;
    const struct fa_user_filter *f = q->f;
    const char *sql = f->blacklisted_only ? SQL_LIST_BY_BLACKLISTED : SQL_LIST_BY_UPDATED;
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;
    int b;

    rc = fa_store_stmt(c, sql, &s, err);
    if (rc != FA_OK)
        return rc;
    b = filter_bind(s, q->customer_id, f);
    b |= fa_db_bind_int(s, 6, f->page_count);
    /* page and page_count are validated, so this cannot overflow int64. */
    b |= fa_db_bind_int64(s, 7, (int64_t)(f->page - 1) * f->page_count);
    rc = b == FA_DB_OK ? list_rows(c, s, rows, f->page_count, n, err)
                        : fa_store_dberr(c, "user list", err);
    fa_store_stmt_done(s);
    return rc;
}

enum fa_rc fa_store_users_list(struct fa_store *st, int64_t customer_id,
                               const struct fa_user_filter *f, struct fa_user **users, int *n,
                               long *total, struct fa_err *err)
{
    struct list_query q = {customer_id, f};
    struct fa_store_page pg = {list_count, list_page, &q, 0, sizeof **users,
                               "out of memory listing users"};
    struct fa_conn *c = NULL;
    void *rows = NULL;
    enum fa_rc rc;

    *users = NULL;
    *n = 0;
    *total = 0;
    rc = filter_validate(f, err);
    if (rc == FA_OK)
        rc = fa_store_conn(st, &c, err);
    if (rc != FA_OK)
        return rc;
    pg.page_count = f->page_count;
    rc = fa_store_page_read(c, &pg, &rows, n, total, err);
    *users = rows;
    return rc;
}
