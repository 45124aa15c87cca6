/*
 * enroll.c — enroll and update: a user's reference face from an image URL.
 *
 * The user is named by enrolledUrl (the enrollmentUrl user/create handed
 * out; only its token is used) or by userName. enroll refuses a user already
 * enrolled ("already registered"); update replaces the reference face of any
 * user. An image that arrives but holds no usable face marks a not yet
 * enrolled user `failure` and is logged (an enrolled user keeps the face it
 * has); a bad URL or a broken image is a bad request and changes nothing.
 */
#include "api_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What tells enroll and update apart. */
struct enroll_mode {
    const char *request_type; /* for the log: "enroll" or "faceUpdate" */
    int replace;              /* update: replace the templates, any state */
};

static const struct enroll_mode ENROLL = {"enroll", 0};
static const struct enroll_mode UPDATE = {"faceUpdate", 1};

/* The token is the last path segment of the enrollment URL. */
static enum fa_rc user_by_enrolled_url(struct fa_call *c, const char *url, struct fa_user *u)
{
    const char *token = strrchr(url, '/');
    enum fa_rc rc;
    token = token != NULL ? token + 1 : url;
    rc = fa_store_user_by_token(c->app->store, c->customer_id, token, u, &c->err);
    if (rc == FA_ENOTFOUND)
        fa_err_set(&c->err, rc, "enrolledUrl does not name a user of this customer");
    return rc;
}

static enum fa_rc enroll_target(struct fa_call *c, struct fa_user *u)
{
    const char *enrolled_url;
    const char *name;
    enum fa_rc rc = api_string(c, "enrolledUrl", 0, &enrolled_url);
    if (rc == FA_OK)
        rc = api_user_name(c, 0, &name);
    if (rc != FA_OK)
        return rc;
    if (enrolled_url != NULL)
        return user_by_enrolled_url(c, enrolled_url, u);
    if (name != NULL)
        return api_user(c, name, u);
    return fa_err_set(&c->err, FA_EINVAL, "enrolledUrl (or userName) is required");
}

/* The seed-shaped failure: HTTP 400, error.status "422". */
static void reply_enroll_failure(struct fa_call *c, const struct fa_user *u,
                                 const struct api_saved *saved, const char *state,
                                 const char *msg)
{
    cJSON *fields = cJSON_CreateObject();
    cJSON_AddStringToObject(fields, "userName", u->user_name);
    if (saved != NULL)
        api_add_image_link(c, fields, "faceOriginal",
                           saved->has_original ? saved->original.id : NULL);
    cJSON_AddStringToObject(fields, "enrollmentStatus", state);
    fa_http_reply_failure(c->reply, fields, msg);
}

static void reply_already_registered(struct fa_call *c, const struct fa_user *u)
{
    char msg[160];
    snprintf(msg, sizeof msg, "user '%s' is already registered; use update to replace the face",
             u->user_name);
    reply_enroll_failure(c, u, NULL, "success", msg);
}

/* No usable face: store the original, mark the user failure (unless it
 * became enrolled meanwhile), log it, answer with the reason. */
static enum fa_rc record_refused(struct fa_call *c, const struct enroll_mode *mode,
                                 const struct fa_user *u, const uint8_t *bytes, size_t n)
{
    struct fa_store_record rec = {0};
    struct api_saved saved;
    char reason[FA_ERR_MAX];
    enum fa_rc rc;
    snprintf(reason, sizeof reason, "%s", c->err.msg);
    rc = api_save_images(c, bytes, n, NULL, &saved);
    if (rc != FA_OK)
        return rc;
    rec.user_id = u->id;
    rec.user_name = u->user_name;
    rec.request_type = mode->request_type;
    rec.score = NAN;
    rec.set_state = u->state != FA_USER_SUCCESS;
    rec.new_state = FA_USER_FAILURE;
    rec.require_state = 1;
    rec.expected_state = u->state;
    rc = api_commit(c, &rec, &saved);
    if (rc == FA_EFAIL && !mode->replace) {
        reply_already_registered(c, u);
        return FA_OK;
    }
    if (rc == FA_EFAIL) /* the state changed under us: say so, change nothing */
        return fa_err_set(&c->err, FA_ECONFLICT, "user '%s' changed during the update; retry",
                          u->user_name);
    if (rc == FA_OK)
        reply_enroll_failure(c, u, &saved, fa_user_state_name(rec.set_state ? FA_USER_FAILURE
                                                                             : u->state),
                             reason);
    return rc;
}

static enum fa_rc record_enrolled(struct fa_call *c, const struct enroll_mode *mode,
                                  const struct fa_user *u, const uint8_t *bytes, size_t n,
                                  const struct fa_face_probe *probe)
{
    struct fa_store_record rec = {0};
    struct api_saved saved;
    cJSON *out;
    enum fa_rc rc = api_save_images(c, bytes, n, probe, &saved);
    if (rc != FA_OK)
        return rc;
    rec.user_id = u->id;
    rec.user_name = u->user_name;
    rec.request_type = mode->request_type;
    rec.success = 1;
    rec.score = NAN;
    rec.set_state = 1;
    rec.new_state = FA_USER_SUCCESS;
    rec.require_state = !mode->replace; /* two enrolls at once: exactly one wins */
    rec.expected_state = u->state;
    rec.replace_templates = mode->replace;
    rec.template_vec = probe->embedding;
    rec.template_dim = FA_EMBED_DIM;
    rec.template_model = FA_MODEL_ID;
    rec.template_source = "enroll";
    rec.template_quality = probe->sharpness;
    rc = api_commit(c, &rec, &saved);
    if (rc == FA_EFAIL) {
        reply_already_registered(c, u);
        return FA_OK;
    }
    if (rc != FA_OK)
        return rc;
    api_index_sync(c, u->id);
    out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "userName", u->user_name);
    api_add_saved_links(c, out, &saved);
    cJSON_AddStringToObject(out, "enrollmentStatus", "success");
    api_reply_ok(c, out, mode->replace ? "Face updated successfully" : "Face enrolled successfully");
    return FA_OK;
}

static enum fa_rc enroll(struct fa_call *c, const struct enroll_mode *mode)
{
    struct fa_user u;
    struct fa_face_probe probe = {0};
    const char *url;
    uint8_t *bytes = NULL;
    size_t n = 0;
    enum fa_rc rc = api_string(c, "url", 1, &url);
    if (rc == FA_OK)
        rc = enroll_target(c, &u);
    if (rc != FA_OK)
        return rc;
    if (u.state == FA_USER_SUCCESS && !mode->replace) {
        reply_already_registered(c, &u);
        return FA_OK;
    }
    rc = api_fetch(c, url, &bytes, &n);
    if (rc != FA_OK)
        return rc;
    rc = api_analyze(c, bytes, n, FA_FACE_ENROLL, &probe);
    if (rc == FA_ENOFACE)
        rc = record_refused(c, mode, &u, bytes, n);
    else if (rc == FA_OK)
        rc = record_enrolled(c, mode, &u, bytes, n, &probe);
    fa_face_probe_cleanup(&probe);
    free(bytes);
    return rc;
}

static enum fa_rc enroll_work(struct fa_call *c) { return enroll(c, &ENROLL); }
static enum fa_rc update_work(struct fa_call *c) { return enroll(c, &UPDATE); }

void fa_api_enroll(void *app, struct fa_http_req *req, struct fa_http_reply *reply)
{
    api_run(app, req, reply, API_CUSTOMER, enroll_work);
}

void fa_api_face_update(void *app, struct fa_http_req *req, struct fa_http_reply *reply)
{
    api_run(app, req, reply, API_CUSTOMER, update_work);
}
