/*
 * settings.c — settings/view and settings/update: per-customer liveness
 * switch, default search threshold and callback URLs, in the hosted API's
 * own (irregular) field names. Callbacks are stored here; delivery is a
 * separate piece of work.
 */
#include "api_int.h"

#include <stdio.h>
#include <string.h>

/* The callback fields: wire name and where each lives in struct fa_settings. */
static const struct {
    const char *field;
    size_t offset;
} callbacks[] = {
    {"enrollmentAcceptedCallbackurl", offsetof(struct fa_settings, enrollment_accepted_cb)},
    {"enrollmentRejectedCallbackurl", offsetof(struct fa_settings, enrollment_rejected_cb)},
    {"successfullAuthenticationCallbackurl", offsetof(struct fa_settings, auth_success_cb)},
    {"failedAuthenticationCallbackurl", offsetof(struct fa_settings, auth_failure_cb)},
};

#define N_CALLBACKS (sizeof callbacks / sizeof callbacks[0])

static cJSON *settings_json(const struct fa_settings *s)
{
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "checkLiveliness", s->check_liveliness ? "yes" : "no");
    cJSON_AddNumberToObject(out, "Threshold", s->threshold);
    cJSON_AddStringToObject(out, "allowLowPrecision", s->allow_low_precision ? "yes" : "no");
    for (size_t i = 0; i < N_CALLBACKS; i++)
        cJSON_AddStringToObject(out, callbacks[i].field, (const char *)s + callbacks[i].offset);
    return out;
}

static enum fa_rc settings_view(struct fa_call *c)
{
    struct fa_settings s;
    enum fa_rc rc = fa_store_settings_get(c->app->store, c->customer_id, &s, &c->err);
    if (rc == FA_OK)
        api_reply_ok(c, settings_json(&s), "Settings");
    return rc;
}

void fa_api_settings_view(void *app, struct fa_http_req *req, struct fa_http_reply *reply)
{
    api_run(app, req, reply, API_CUSTOMER, settings_view);
}

/* Overwrite the fields the request names; the rest keep their values. */
static enum fa_rc apply_changes(struct fa_call *c, struct fa_settings *s)
{
    enum fa_rc rc = api_yes_no(c, "checkLiveliness", s->check_liveliness, &s->check_liveliness);
    if (rc == FA_OK)
        rc = api_number(c, "Threshold", 0, 1, s->threshold, &s->threshold);
    if (rc == FA_OK)
        rc = api_yes_no(c, "allowLowPrecision", s->allow_low_precision, &s->allow_low_precision);
    for (size_t i = 0; rc == FA_OK && i < N_CALLBACKS; i++) {
        const char *url;
        rc = api_string(c, callbacks[i].field, 0, &url);
        if (rc == FA_OK && url != NULL && strlen(url) > FA_URL_MAX)
            rc = fa_err_set(&c->err, FA_EINVAL, "%s is longer than %d characters",
                            callbacks[i].field, FA_URL_MAX);
        if (rc == FA_OK && url != NULL)
            snprintf((char *)s + callbacks[i].offset, FA_URL_MAX + 1, "%s", url);
    }
    return rc;
}

static enum fa_rc settings_update(struct fa_call *c)
{
    struct fa_settings s;
    enum fa_rc rc = fa_store_settings_get(c->app->store, c->customer_id, &s, &c->err);
    if (rc == FA_OK)
        rc = apply_changes(c, &s);
    if (rc == FA_OK)
        rc = fa_store_settings_set(c->app->store, c->customer_id, &s, &c->err);
    if (rc == FA_OK)
        api_reply_ok(c, settings_json(&s), "Settings updated");
    return rc;
}

void fa_api_settings_update(void *app, struct fa_http_req *req, struct fa_http_reply *reply)
{
    api_run(app, req, reply, API_CUSTOMER, settings_update);
}
