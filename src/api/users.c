/*
 * users.c — user/create, user/details, user/update, user/delete.
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
    api_run(app, req, reply, API_CUSTOMER, user_create);
}

/* ---- user/details ---- */

static enum fa_rc user_details(struct fa_call *c)
{
    struct fa_user u;
    const char *name;
    char url[512];
    int enrolled = 0, learned = 0;
    cJSON *out;
    enum fa_rc rc = api_user_name(c, 1, &name);
    if (rc == FA_OK)
        rc = api_user(c, name, &u);
    if (rc == FA_OK)
        rc = fa_store_samples_count(c->app->store, u.id, &enrolled, &learned, &c->err);
    if (rc != FA_OK)
        return rc;
    api_enrollment_url(c, u.enroll_token, url, sizeof url);
    out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "userName", u.user_name);
    cJSON_AddStringToObject(out, "fullName", u.full_name);
    cJSON_AddStringToObject(out, "emailId", u.email);
    cJSON_AddStringToObject(out, "phoneNumber", u.phone);
    cJSON_AddStringToObject(out, "countryCode", u.country_code);
    cJSON_AddStringToObject(out, "enrollmentUrl", url);
    cJSON_AddStringToObject(out, "enrollmentStatus", fa_user_state_name(u.state));
    cJSON_AddStringToObject(out, "blacklistState", u.blacklisted ? "yes" : "no");
    api_add_image_link(c, out, "faceOriginal", u.face_original);
    api_add_image_link(c, out, "faceThumbnail", u.face_thumbnail);
    /* Extra fields: photos held (enrolled + learned) and how many were learned. */
    cJSON_AddNumberToObject(out, "templateCount", enrolled + learned);
    cJSON_AddNumberToObject(out, "learnedTemplateCount", learned);
    api_reply_ok(c, out, "User details");
    return FA_OK;
}

void fa_api_user_details(void *app, struct fa_http_req *req, struct fa_http_reply *reply)
{
    api_run(app, req, reply, API_CUSTOMER, user_details);
}

/* ---- user/update ---- */

/* A string member of parametersToBeUpdated; NULL when absent. */
static enum fa_rc change_field(struct fa_call *c, const cJSON *params, const char *field,
                               const char **out)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(params, field);
    *out = NULL;
    if (item == NULL || cJSON_IsNull(item))
        return FA_OK;
    if (!cJSON_IsString(item))
        return fa_err_set(&c->err, FA_EINVAL, "parametersToBeUpdated.%s must be a string", field);
    *out = item->valuestring;
    return FA_OK;
}

static enum fa_rc parse_changes(struct fa_call *c, struct fa_user_changes *chg)
{
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(c->body, "parametersToBeUpdated");
    enum fa_rc rc = api_yes_no(c, "faceToBeUpdated", 0, &chg->reset_face);
    if (rc != FA_OK || params == NULL || cJSON_IsNull(params))
        return rc;
    if (!cJSON_IsObject(params))
        return fa_err_set(&c->err, FA_EINVAL, "parametersToBeUpdated must be an object");
    rc = change_field(c, params, "userName", &chg->user_name);
    if (rc == FA_OK)
        rc = change_field(c, params, "fullName", &chg->full_name);
    if (rc == FA_OK)
        rc = change_field(c, params, "emailId", &chg->email);
    if (rc == FA_OK)
        rc = change_field(c, params, "phoneNumber", &chg->phone);
    if (rc == FA_OK)
        rc = change_field(c, params, "countryCode", &chg->country_code);
    return rc;
}

static enum fa_rc user_update(struct fa_call *c)
{
    struct fa_user_changes chg = {0};
    struct fa_user u;
    const char *name;
    char url[512];
    cJSON *out;
    enum fa_rc rc = api_user_name(c, 1, &name);
    if (rc == FA_OK)
        rc = parse_changes(c, &chg);
    if (rc == FA_OK)
        rc = fa_gallery_user_update(c->app->gallery, c->customer_id, name, &chg, &u, &c->err);
    if (rc == FA_ENOTFOUND)
        fa_err_set(&c->err, rc, "user '%.64s' not found", name);
    if (rc != FA_OK)
        return rc;
    out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "userName", u.user_name);
    if (chg.reset_face) {
        api_enrollment_url(c, u.enroll_token, url, sizeof url);
        cJSON_AddStringToObject(out, "reEnrollmentUrl", url);
    }
    api_reply_ok(c, out, "User updated");
    return FA_OK;
}

void fa_api_user_update(void *app, struct fa_http_req *req, struct fa_http_reply *reply)
{
    api_run(app, req, reply, API_CUSTOMER, user_update);
}

/* ---- user/delete ---- */

static enum fa_rc user_delete(struct fa_call *c)
{
    const char *name;
    char **paths = NULL;
    int n = 0;
    int64_t user_id = 0;
    struct fa_err err = {{0}};
    enum fa_rc rc = api_user_name(c, 1, &name);
    if (rc == FA_OK)
        rc = api_user_delete_rows(c, name, &user_id, &paths, &n);
    if (rc == FA_ENOTFOUND)
        fa_err_set(&c->err, rc, "user '%.64s' not found", name);
    if (rc != FA_OK)
        return rc;
    /* The rows are gone; now the files. Pending rows make this survive a
     * crash: whatever is not confirmed here is finished at the next start. */
    for (int i = 0; i < n; i++)
        fa_media_remove(c->app->media, paths[i]);
    if (fa_store_pending_done(c->app->store, paths, n, &err) != FA_OK)
        fprintf(stderr, "faceauth: %s (finished at next start)\n", err.msg);
    fa_store_paths_free(paths, n);
    api_reply_ok(c, cJSON_CreateObject(), "User deleted with their faces and images");
    return FA_OK;
}

void fa_api_user_delete(void *app, struct fa_http_req *req, struct fa_http_reply *reply)
{
    api_run(app, req, reply, API_CUSTOMER, user_delete);
}
