/*
 * store_log.c — one page of a customer's transaction log (view/logs/all).
 *
 * Same shape as store_list.c: COUNT(*) and LIMIT/OFFSET in one read
 * snapshot (fa_store_page_read). Newest first is created DESC, then id DESC:
 * rows of the same second come out in reverse insertion order, and the
 * index on (customer_id, created) already ends in the rowid, so this order
 * needs no sort step.
 */
#include "store_int.h"

#include <math.h>
#include <string.h>

#define LOG_WHERE                                                                              \
    " WHERE customer_id = ?1 AND (?2 = 0 OR created >= ?2) AND (?3 = 0 OR created <= ?3)"

static const char SQL_LOG_COUNT[] = "SELECT count(*) FROM transactions" LOG_WHERE;
static const char SQL_LOG_PAGE[] =
    "SELECT created, user_name, request_type, result, score, original_id, thumbnail_id"
    " FROM transactions" LOG_WHERE " ORDER BY created DESC, id DESC LIMIT ?4 OFFSET ?5";

/*
 * Copy text column col into buf, cut to fit at a UTF-8 character boundary.
 * A log row keeps the userName as the client sent it (up to FA_TEXT_MAX
 * bytes, see fa_store_record_commit), which may be longer than
 * fa_log_row.user_name: one odd row must not make the whole log unreadable.
 */
static void col_text_cut(struct fa_db_stmt *s, int col, char *buf, size_t size)
{
    const char *v = fa_db_column_text(s, col);
    size_t n = v != NULL ? (size_t)fa_db_column_bytes(s, col) : 0;

    if (n >= size) {
        n = size - 1;
        /* Back off over continuation bytes (10xxxxxx) to a lead byte. */
        while (n > 0 && (v[n] & 0xC0) == 0x80)
            n--;
    }
    if (n > 0)
        memcpy(buf, v, n);
    buf[n] = '\0';
}

static void log_from_row(struct fa_db_stmt *s, struct fa_log_row *row)
{
    const char *result;

    row->created = fa_db_column_int64(s, 0);
    col_text_cut(s, 1, row->user_name, sizeof row->user_name);
    col_text_cut(s, 2, row->request_type, sizeof row->request_type);
    result = fa_db_column_text(s, 3);
    row->success = result != NULL && strcmp(result, "success") == 0;
    row->score = fa_db_column_type(s, 4) == FA_DB_NULL ? NAN : fa_db_column_double(s, 4);
    /* NULL (none, or the image was deleted with its user) reads as "". */
    col_text_cut(s, 5, row->original_id, sizeof row->original_id);
    col_text_cut(s, 6, row->thumbnail_id, sizeof row->thumbnail_id);
}

static int range_bind(struct fa_db_stmt *s, int64_t customer_id, int64_t from, int64_t to)
{
    int b = FA_DB_OK;

    b |= fa_db_bind_int64(s, 1, customer_id);
    b |= fa_db_bind_int64(s, 2, from);
    b |= fa_db_bind_int64(s, 3, to);
    return b;
}

/* The query both reads of a page share (fa_store_page_read's arg). */
struct log_query {
    int64_t customer_id, from, to;
    int page, page_count;
};

static enum fa_rc log_count(struct fa_conn *c, const void *arg, long *total, struct fa_err *err)
{
    const struct log_query *q = arg;
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;

    rc = fa_store_stmt(c, SQL_LOG_COUNT, &s, err);
    if (rc != FA_OK)
        return rc;
    return fa_store_count(c, s, range_bind(s, q->customer_id, q->from, q->to), total, "log list",
                          err);
}

static enum fa_rc log_page(struct fa_conn *c, const void *arg, void *out, int *n,
                           struct fa_err *err)
{
    const struct log_query *q = arg;
    struct fa_log_row *rows = out;
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;
    int b, r;

    rc = fa_store_stmt(c, SQL_LOG_PAGE, &s, err);
    if (rc != FA_OK)
        return rc;
    b = range_bind(s, q->customer_id, q->from, q->to);
    b |= fa_db_bind_int(s, 4, q->page_count);
    b |= fa_db_bind_int64(s, 5, (int64_t)(q->page - 1) * q->page_count);
    r = b == FA_DB_OK ? fa_db_step(s) : FA_DB_ERROR;
    /* LIMIT caps the rows at page_count, so the loop ends on DONE. */
    while (r == FA_DB_ROW && *n < q->page_count) {
        log_from_row(s, &rows[(*n)++]);
        r = fa_db_step(s);
    }
    if (r != FA_DB_DONE)
        rc = fa_store_dberr(c, "log list", err);
    fa_store_stmt_done(s);
    return rc;
}

enum fa_rc fa_store_log_list(struct fa_store *st, int64_t customer_id, int64_t from, int64_t to,
                             int page, int page_count, struct fa_log_row **rows, int *n,
                             long *total, struct fa_err *err)
{
    struct log_query q = {customer_id, from, to, page, page_count};
    struct fa_store_page pg = {log_count, log_page, &q, page_count, sizeof **rows,
                               "out of memory listing the log"};
    struct fa_conn *c = NULL;
    void *out = NULL;
    enum fa_rc rc;

    *rows = NULL;
    *n = 0;
    *total = 0;
    rc = fa_store_check_page(page, page_count, from, to, err);
    if (rc == FA_OK)
        rc = fa_store_conn(st, &c, err);
    if (rc != FA_OK)
        return rc;
    rc = fa_store_page_read(c, &pg, &out, n, total, err);
    *rows = out;
    return rc;
}
