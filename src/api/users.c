/*
 * users.c — user/create.
 */
#include "api_int.h"

#include <stdio.h>
#include <string.h>

/* Copy an optional text field into dst (cap bytes); too long is an error naming it. */
static enum fa_rc text_field(struct fa_call *c, const char *field, char *dst, size_t cap)
{
    const char *text;
    enum fa_rc rc = api_string(c, field, 0, &text);
    if (rc != FA_OK || text == NULL)
        return rc;
    if (strlen(text) >= cap)
        return fa_err_set(&c->err, FA_EINVAL, "%s is longer than %zu characters", field, cap - 1);
    snprintf(dst, cap, "%s", text);
    return FA_OK;
}

static enum fa_rc user_create(struct fa_call *c)
{
    struct fa_user u;
    const char *name;
    char url[512];
    cJSON *out;
    enum fa_rc rc = api_user_name(c, 1, &name);
    memset(&u, 0, sizeof u);
    if (rc == FA_OK && strlen(name) > FA_NAME_MAX)
        rc = fa_err_set(&c->err, FA_EINVAL, "userName is longer than %d characters", FA_NAME_MAX);
    if (rc == FA_OK) {
        snprintf(u.user_name, sizeof u.user_name, "%s", name);
        rc = text_field(c, "fullName", u.full_name, sizeof u.full_name);
    }
    if (rc == FA_OK)
        rc = text_field(c, "emailId", u.email, sizeof u.email);
    if (rc == FA_OK)
        rc = text_field(c, "phoneNumber", u.phone, sizeof u.phone);
    if (rc == FA_OK)
        rc = text_field(c, "countryCode", u.country_code, sizeof u.country_code);
    u.customer_id = c->customer_id;
    if (rc == FA_OK)
        rc = fa_store_user_create(c->app->store, &u, &c->err);
    if (rc != FA_OK)
        return rc;
    api_enrollment_url(c, u.enroll_token, url, sizeof url);
    out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "userName", u.user_name);
    cJSON_AddStringToObject(out, "enrollmentUrl", url);
    api_reply_ok(c, out, "User created");
    return FA_OK;
}

void fa_api_user_create(void *app, struct fa_http_req *req, struct fa_http_reply *reply)
{
    struct fa_call c;
    enum fa_rc rc = api_begin(&c, app, req, reply, API_CUSTOMER);
    if (rc == FA_OK)
        rc = user_create(&c);
    api_finish(&c, rc);
}
