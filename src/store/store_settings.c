/*
 * store_settings.c — per-customer settings (settings/view, settings/update).
 *
 * The settings are columns of customers with their defaults in the schema,
 * so a new customer has them without a second row to keep in step. Messages
 * name the fields as the hosted API spells them (SPEC.md), typos included.
 */
#include "store_int.h"

#include <math.h>
#include <string.h>
#include <strings.h>

static const char SQL_SETTINGS_GET[] =
    "SELECT check_liveliness, threshold, cb_enroll_accepted, cb_enroll_rejected,"
    " cb_auth_success, cb_auth_failure, allow_low_precision FROM customers WHERE id = ?1";
static const char SQL_SETTINGS_SET[] =
    "UPDATE customers SET check_liveliness = ?2, threshold = ?3, cb_enroll_accepted = ?4,"
    " cb_enroll_rejected = ?5, cb_auth_success = ?6, cb_auth_failure = ?7,"
    " allow_low_precision = ?8 WHERE id = ?1";

static enum fa_rc settings_from_row(struct fa_conn *c, struct fa_db_stmt *s, struct fa_settings *out,
                                    struct fa_err *err)
{
    enum fa_rc rc;

    out->check_liveliness = fa_db_column_int(s, 0) != 0;
    out->threshold = fa_db_column_double(s, 1);
    out->allow_low_precision = fa_db_column_int(s, 6) != 0;
    rc = fa_store_col_text(c, s, 2, out->enrollment_accepted_cb, FA_URL_MAX + 1, err);
    if (rc == FA_OK)
        rc = fa_store_col_text(c, s, 3, out->enrollment_rejected_cb, FA_URL_MAX + 1, err);
    if (rc == FA_OK)
        rc = fa_store_col_text(c, s, 4, out->auth_success_cb, FA_URL_MAX + 1, err);
    if (rc == FA_OK)
        rc = fa_store_col_text(c, s, 5, out->auth_failure_cb, FA_URL_MAX + 1, err);
    return rc;
}

enum fa_rc fa_store_settings_get(struct fa_store *st, int64_t customer_id, struct fa_settings *out,
                                 struct fa_err *err)
{
    struct fa_conn *c = NULL;
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;
    int r;

    memset(out, 0, sizeof *out);
    rc = fa_store_conn_stmt(st, SQL_SETTINGS_GET, &c, &s, err);
    if (rc != FA_OK)
        return rc;
    r = fa_db_bind_int64(s, 1, customer_id) == FA_DB_OK ? fa_db_step(s) : FA_DB_ERROR;
    if (r == FA_DB_ROW)
        rc = settings_from_row(c, s, out, err);
    else if (r == FA_DB_DONE)
        rc = fa_err_set(err, FA_ENOTFOUND, "customer not found");
    else
        rc = fa_store_dberr(c, "settings", err);
    fa_store_stmt_done(s);
    if (rc != FA_OK)
        memset(out, 0, sizeof *out);
    return rc;
}

/*
 * A callback URL: empty (no callback), or http:// or https:// followed by
 * something, at most FA_URL_MAX bytes, with no spaces or control bytes (it
 * ends up in a request line). Whether it may be contacted (private
 * addresses...) is the webhook sender's decision, at send time.
 */
static enum fa_rc url_check(const char *field, const char *url, struct fa_err *err)
{
    size_t len = strnlen(url, FA_URL_MAX + 1), skip, i;

    if (len == 0)
        return FA_OK;
    if (len > FA_URL_MAX)
        return fa_err_set(err, FA_EINVAL, "%s is longer than %d bytes", field, FA_URL_MAX);
    if (strncasecmp(url, "http://", 7) == 0)
        skip = 7;
    else if (strncasecmp(url, "https://", 8) == 0)
        skip = 8;
    else
        return fa_err_set(err, FA_EINVAL, "%s must start with http:// or https://", field);
    if (len == skip)
        return fa_err_set(err, FA_EINVAL, "%s has no host", field);
    for (i = 0; i < len; i++) {
        if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] == 0x7f)
            return fa_err_set(err, FA_EINVAL, "%s contains a space or a control character",
                              field);
    }
    return FA_OK;
}

static enum fa_rc settings_validate(const struct fa_settings *in, struct fa_err *err)
{
    enum fa_rc rc;

    if (in->check_liveliness != 0 && in->check_liveliness != 1)
        return fa_err_set(err, FA_EINVAL, "checkLiveliness must be yes or no");
    if (in->allow_low_precision != 0 && in->allow_low_precision != 1)
        return fa_err_set(err, FA_EINVAL, "allowLowPrecision must be yes or no");
    /* !(a <= x <= b) is also true for NAN. */
    if (!(in->threshold >= 0.0 && in->threshold <= 1.0))
        return fa_err_set(err, FA_EINVAL, "Threshold must be between 0 and 1");
    rc = url_check("enrollmentAcceptedCallbackurl", in->enrollment_accepted_cb, err);
    if (rc == FA_OK)
        rc = url_check("enrollmentRejectedCallbackurl", in->enrollment_rejected_cb, err);
    if (rc == FA_OK)
        rc = url_check("successfullAuthenticationCallbackurl", in->auth_success_cb, err);
    if (rc == FA_OK)
        rc = url_check("failedAuthenticationCallbackurl", in->auth_failure_cb, err);
    return rc;
}

enum fa_rc fa_store_settings_set(struct fa_store *st, int64_t customer_id,
                                 const struct fa_settings *in, struct fa_err *err)
{
    struct fa_conn *c = NULL;
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;
    int b = FA_DB_OK;

    rc = settings_validate(in, err);
    if (rc == FA_OK)
        rc = fa_store_conn_stmt(st, SQL_SETTINGS_SET, &c, &s, err);
    if (rc != FA_OK)
        return rc;
    b |= fa_db_bind_int64(s, 1, customer_id);
    b |= fa_db_bind_int(s, 2, in->check_liveliness);
    b |= fa_db_bind_double(s, 3, in->threshold);
    b |= fa_db_bind_text(s, 4, in->enrollment_accepted_cb);
    b |= fa_db_bind_text(s, 5, in->enrollment_rejected_cb);
    b |= fa_db_bind_text(s, 6, in->auth_success_cb);
    b |= fa_db_bind_text(s, 7, in->auth_failure_cb);
    b |= fa_db_bind_int(s, 8, in->allow_low_precision);
    rc = fa_store_run(c, s, b, "settings", err);
    if (rc == FA_OK && fa_db_changes(c->db) == 0)
        rc = fa_err_set(err, FA_ENOTFOUND, "customer not found");
    return rc;
}
