/*
 * store_check.c — input validation and row-copy helpers for src/store/.
 *
 * The store checks what it is given even though the HTTP layer validates
 * too: the store is the last line before disk, and the CLI calls it
 * directly. Messages name the field as the API spells it, and never echo a
 * value that failed validation (it could be anything, of any length).
 */
#include "store_int.h"

#include <string.h>

static int name_char_ok(char ch)
{
    /* Spelled out instead of isalnum(): that one follows the locale. */
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '_' || ch == '@' || ch == '-';
}

int fa_store_name_ok(const char *s)
{
    size_t i;

    if (s == NULL || s[0] == '\0')
        return 0;
    for (i = 0; s[i] != '\0'; i++) {
        if (i >= FA_NAME_MAX || !name_char_ok(s[i]))
            return 0;
    }
    return 1;
}

enum fa_rc fa_store_check_name(const char *field, const char *s, struct fa_err *err)
{
    if (fa_store_name_ok(s))
        return FA_OK;
    return fa_err_set(err, FA_EINVAL,
                      "%s must be 1-%d characters of A-Z a-z 0-9 . _ @ -", field, FA_NAME_MAX);
}

enum fa_rc fa_store_check_text(const char *field, const char *s, size_t max, struct fa_err *err)
{
    if (s == NULL)
        return fa_err_set(err, FA_EINVAL, "%s is missing", field);
    /* strnlen: a caller's fixed array may lack its NUL. */
    if (strnlen(s, max + 1) > max)
        return fa_err_set(err, FA_EINVAL, "%s is longer than %zu bytes", field, max);
    return FA_OK;
}

enum fa_rc fa_store_check_page(int page, int page_count, int64_t from, int64_t to,
                               struct fa_err *err)
{
    if (page < 1)
        return fa_err_set(err, FA_EINVAL, "pageNumber must be 1 or more");
    if (page_count < 1 || page_count > FA_STORE_PAGE_COUNT_MAX)
        return fa_err_set(err, FA_EINVAL, "pageCount must be 1-%d", FA_STORE_PAGE_COUNT_MAX);
    if (from != 0 && to != 0 && from > to)
        return fa_err_set(err, FA_EINVAL, "fromThisDate is after toThisDate");
    return FA_OK;
}

int fa_store_image_id_ok(const char *s)
{
    size_t i;

    if (s == NULL)
        return 0;
    for (i = 0; i < FA_IMAGE_ID_HEX; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    }
    return s[FA_IMAGE_ID_HEX] == '\0';
}

enum fa_rc fa_store_col_text(struct fa_conn *c, struct fa_db_stmt *s, int col, char *buf, size_t size,
                             struct fa_err *err)
{
    const char *v = fa_db_column_text(s, col);
    size_t n;

    if (v == NULL) {
        /* NULL column, or out of memory converting it. */
        buf[0] = '\0';
        if (fa_db_errkind(c->db) == FA_DB_E_NOMEM)
            return fa_err_set(err, FA_ENOMEM, "out of memory reading the database");
        return FA_OK;
    }
    n = (size_t)fa_db_column_bytes(s, col);
    if (n >= size) {
        buf[0] = '\0';
        return fa_err_set(err, FA_EDB, "database error: column %s is %zu bytes, at most %zu",
                          fa_db_column_name(s, col), n, size - 1);
    }
    memcpy(buf, v, n);
    buf[n] = '\0';
    return FA_OK;
}

int fa_store_state_parse(const char *s)
{
    if (s == NULL)
        return -1;
    if (strcmp(s, "draft") == 0)
        return FA_USER_DRAFT;
    if (strcmp(s, "success") == 0)
        return FA_USER_SUCCESS;
    if (strcmp(s, "failure") == 0)
        return FA_USER_FAILURE;
    return -1;
}
