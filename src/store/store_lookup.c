/*
 * store_lookup.c — a customer's id by name, for the operator's CLI
 * (`faceauth user list CUSTOMER`), which has a name and no access token.
 */
#include "store_int.h"

static const char SQL_CUSTOMER_ID[] = "SELECT id FROM customers WHERE name = ?1";

enum fa_rc fa_store_customer_id(struct fa_store *st, const char *name, int64_t *id,
                                struct fa_err *err)
{
    struct fa_conn *c = NULL;
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;
    int r;

    *id = 0;
    rc = fa_store_check_name("customer name", name, err);
    if (rc == FA_OK)
        rc = fa_store_conn_stmt(st, SQL_CUSTOMER_ID, &c, &s, err);
    if (rc != FA_OK)
        return rc;
    r = fa_db_bind_text(s, 1, name) == FA_DB_OK ? fa_db_step(s) : FA_DB_ERROR;
    if (r == FA_DB_ROW)
        *id = fa_db_column_int64(s, 0);
    else if (r == FA_DB_DONE)
        rc = fa_err_set(err, FA_ENOTFOUND, "no customer named '%s'", name);
    else
        rc = fa_store_dberr(c, "customer lookup", err);
    fa_store_stmt_done(s);
    return rc;
}
