/*
 * enroll.c — enroll and update: a user's reference face from one image URL
 * (`url`) or from several photos of the same person (`urls`, up to 5).
 *
 * The user is named by enrolledUrl (the enrollmentUrl user/create handed
 * out; only its token is used) or by userName. enroll refuses a user already
 * enrolled ("already registered"); update replaces the reference face of any
 * user (every template, learned ones too). An image that arrives but holds
 * no usable face marks a not yet enrolled user `failure` and is logged (an
 * enrolled user keeps the face it has); a bad URL or a broken image is a
 * bad request and changes nothing.
 *
 * Several photos: each must pass the enrollment gates, and every pair must
 * match at the low precision threshold of a one-photo user
 * (fa_face_enroll_check), so a set that mixes two people is refused as a
 * whole, naming the photo that does not fit. Each accepted photo becomes one enrolled sample (every model's
 * template of it). Authenticate takes the best score over a user's photos
 * with a threshold raised for their number (config threshold_high/low), so
 * more photos cut false rejects without raising false matches. The first
 * photo is the user's faceOriginal/faceThumbnail; the others' files are not
 * kept (less biometric data at rest; their templates are).
 *
 * Attempt limit (throttle.c): enroll and update attempts of one user count
 * together, apart from authenticate's; the limits are auth_fail_*. A locked
 * user's attempt is answered 429 in the failure shape before any photo is
 * fetched.
 *
 * The enrollment page (enroll_page.c) enrolls through api_enroll_user, which
 * runs the same enroll_photos as POST enroll: whatever enroll does with a
 * user and its photos, the page does too (the attempt limit included).
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

/* The user's enroll attempts are locked: log it (no image, no state
 * change) and answer HTTP 429 in the failure shape, error.status "429". */
static enum fa_rc refuse_locked(struct fa_call *c, const struct enroll_mode *mode,
                                const struct fa_user *u, long wait_s)
{
    struct fa_store_record rec = {0};
    struct api_saved none = {0};
    char msg[FA_ERR_MAX];
    cJSON *fields;
    enum fa_rc rc;
    rec.user_id = u->id;
    rec.user_name = u->user_name;
    rec.request_type = mode->request_type;
    rec.score = NAN;
    rc = api_commit(c, &rec, &none);
    if (rc != FA_OK)
        return rc;
    api_attempt_locked_message(u, wait_s, "", msg, sizeof msg);
    fields = cJSON_CreateObject();
    cJSON_AddStringToObject(fields, "userName", u->user_name);
    api_add_image_link(c, fields, "faceOriginal", NULL);
    cJSON_AddStringToObject(fields, "enrollmentStatus", fa_user_state_name(u->state));
    c->reply->retry_after_s = wait_s;
    fa_http_reply_failure_rc(c->reply, FA_ELIMIT, fields, msg);
    return FA_OK;
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
                                 const struct fa_user *u, const uint8_t *bytes, size_t n,
                                 enum fa_image_kind kind)
{
    struct fa_store_record rec = {0};
    struct api_saved saved;
    char reason[FA_ERR_MAX];
    enum fa_rc rc;
    snprintf(reason, sizeof reason, "%s", c->err.msg);
    rc = api_save_original(c, bytes, n, kind, &saved);
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

#define ENROLL_MAX_PHOTOS FA_FACE_ENROLL_MAX_PHOTOS

/* The photos of one enroll or update. */
struct enroll_photos {
    int n;
    int listed; /* 1: they came as urls, so messages say urls[i] */
    const char *url[ENROLL_MAX_PHOTOS];
    char field[ENROLL_MAX_PHOTOS][16];
    uint8_t *bytes[ENROLL_MAX_PHOTOS];
    size_t len[ENROLL_MAX_PHOTOS];
    struct fa_face_probe *probe; /* n of them (6 kB each: on the heap) */
};

static void photos_cleanup(struct enroll_photos *ph)
{
    for (int i = 0; i < ph->n; i++) {
        free(ph->bytes[i]);
        if (ph->probe != NULL)
            fa_face_probe_cleanup(&ph->probe[i]);
    }
    free(ph->probe);
}

/* urls: a list of 1..5 non-empty strings. */
static enum fa_rc parse_urls(struct fa_call *c, const cJSON *list, struct enroll_photos *ph)
{
    const cJSON *item;
    if (!cJSON_IsArray(list))
        return fa_err_set(&c->err, FA_EINVAL, "urls must be a list of image URLs");
    if (cJSON_GetArraySize(list) < 1 || cJSON_GetArraySize(list) > ENROLL_MAX_PHOTOS)
        return fa_err_set(&c->err, FA_EINVAL, "urls must hold 1 to %d images, not %d",
                          ENROLL_MAX_PHOTOS, cJSON_GetArraySize(list));
    cJSON_ArrayForEach(item, list) {
        if (!cJSON_IsString(item) || item->valuestring[0] == '\0')
            return fa_err_set(&c->err, FA_EINVAL, "urls[%d] must be a non-empty string", ph->n);
        snprintf(ph->field[ph->n], sizeof ph->field[ph->n], "urls[%d]", ph->n);
        ph->url[ph->n++] = item->valuestring;
    }
    ph->listed = 1;
    return FA_OK;
}

/* Room for the analysis of every photo. */
static enum fa_rc alloc_probes(struct fa_call *c, struct enroll_photos *ph)
{
    ph->probe = calloc((size_t)ph->n, sizeof *ph->probe);
    if (ph->probe == NULL)
        return fa_err_set(&c->err, FA_ENOMEM, "out of memory");
    return FA_OK;
}

/* url or urls, exactly one of them. */
static enum fa_rc parse_photos(struct fa_call *c, struct enroll_photos *ph)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(c->body, "urls");
    const char *url;
    enum fa_rc rc = api_string(c, "url", 0, &url);
    if (rc != FA_OK)
        return rc;
    if (list != NULL && !cJSON_IsNull(list) && url != NULL)
        return fa_err_set(&c->err, FA_EINVAL, "give url or urls, not both");
    if (list != NULL && !cJSON_IsNull(list))
        rc = parse_urls(c, list, ph);
    else if (url == NULL || url[0] == '\0')
        rc = fa_err_set(&c->err, FA_EINVAL,
                        "url is required (or urls, a list of up to %d photos of the person)",
                        ENROLL_MAX_PHOTOS);
    else {
        ph->url[0] = url;
        snprintf(ph->field[0], sizeof ph->field[0], "url");
        ph->n = 1;
    }
    if (rc == FA_OK)
        rc = alloc_probes(c, ph);
    return rc;
}

/* Prefix the refusal rc in c->err with the photo's field when photos came as a list. */
static void name_photo(struct fa_call *c, const struct enroll_photos *ph, int i, enum fa_rc rc)
{
    char inner[FA_ERR_MAX];
    if (!ph->listed)
        return;
    snprintf(inner, sizeof inner, "%s", c->err.msg);
    fa_err_set(&c->err, rc, "%s: %s", ph->field[i], inner);
}

/* Fetch every photo; bad URLs and images are bad requests. */
static enum fa_rc fetch_photos(struct fa_call *c, struct enroll_photos *ph)
{
    enum fa_rc rc = FA_OK;
    for (int i = 0; rc == FA_OK && i < ph->n; i++)
        rc = api_fetch_field(c, ph->field[i], ph->url[i], &ph->bytes[i], &ph->len[i]);
    return rc;
}

/*
 * A locked user: *wait_s > 0 and nothing fetched. Otherwise fetch the
 * photos, then count the attempt as a failure until it succeeds; a
 * concurrent attempt may have locked the user meanwhile (*wait_s > 0 too).
 */
static enum fa_rc fetch_counted(struct fa_call *c, const struct fa_user *u,
                                struct enroll_photos *ph, long *wait_s)
{
    enum fa_rc rc;
    *wait_s = api_attempt_wait(c, u, "enroll");
    if (*wait_s > 0)
        return FA_OK;
    rc = fetch_photos(c, ph);
    if (rc != FA_OK)
        return rc; /* its FA_ELIMIT (downloads at once) is no lock of the user */
    rc = api_attempt_reserve(c, u, "enroll", wait_s);
    return rc == FA_ELIMIT ? FA_OK : rc;
}

/* Analyse each fetched photo; *bad is the photo a refusal (fa_face_refused) is about. */
static enum fa_rc analyze_photos(struct fa_call *c, struct enroll_photos *ph, int *bad)
{
    enum fa_rc rc = FA_OK;
    for (int i = 0; rc == FA_OK && i < ph->n; i++) {
        rc = api_analyze(c, ph->field[i], ph->bytes[i], ph->len[i], FA_FACE_ENROLL, 0,
                         &ph->probe[i]);
        if (fa_face_refused(rc)) {
            *bad = i;
            name_photo(c, ph, i, rc);
        }
    }
    return rc;
}

/* Do the photos show one person? The face service decides
 * (fa_face_enroll_check); the refusal names the photo blamed and one it
 * does not match. */
static enum fa_rc check_same_person(struct fa_call *c, const struct enroll_photos *ph, int *bad)
{
    struct fa_face_enroll_verdict v;
    fa_face_enroll_check(&c->app->policy, ph->probe, ph->n, &v);
    if (v.accepted)
        return FA_OK;
    *bad = v.photo;
    return fa_err_set(&c->err, FA_ENOTSAME,
                      "%s does not look like the same person as %s: every photo must show "
                      "the same person",
                      ph->field[v.photo], ph->field[v.partner]);
}

static enum fa_rc record_enrolled(struct fa_call *c, const struct enroll_mode *mode,
                                  const struct fa_user *u, const struct enroll_photos *ph)
{
    struct fa_store_record rec = {0};
    struct fa_store_template tpl[ENROLL_MAX_PHOTOS][FA_N_MODELS];
    struct fa_store_sample samples[ENROLL_MAX_PHOTOS];
    struct api_saved saved;
    cJSON *out;
    enum fa_rc rc = api_save_images(c, ph->bytes[0], ph->len[0], &ph->probe[0], &saved);
    if (rc != FA_OK)
        return rc;
    for (int i = 0; i < ph->n; i++)
        fa_gallery_sample_of(&ph->probe[i], "enroll", tpl[i], &samples[i]);
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
    rec.samples = samples;
    rec.n_samples = ph->n;
    rc = api_commit(c, &rec, &saved);
    if (rc == FA_EFAIL) {
        reply_already_registered(c, u);
        return FA_OK;
    }
    if (rc != FA_OK)
        return rc;
    api_attempt_succeeded(c, u, "enroll");
    out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "userName", u->user_name);
    api_add_saved_links(c, out, &saved);
    cJSON_AddStringToObject(out, "enrollmentStatus", "success");
    cJSON_AddNumberToObject(out, "templateCount", ph->n);
    api_reply_ok(c, out,
                 mode->replace ? "Face updated successfully" : "Face enrolled successfully");
    return FA_OK;
}

/*
 * The work once the user and the photos are known: every enrollment, the
 * JSON API's and the enrollment page's (api_enroll_user), runs this walk:
 * fetch the photos (the attempt is counted) -> analyze each (the face
 * service's enrollment gates) -> check that they show one person (the face
 * service decides) -> save the first photo's files -> commit the samples
 * through the gallery (the search index follows) -> reply. A refusal
 * (no face, a gate, not the same person) saves the photo it is about,
 * commits the failure and replies in the failure shape instead.
 */
static enum fa_rc enroll_photos(struct fa_call *c, const struct enroll_mode *mode,
                                const struct fa_user *u, struct enroll_photos *ph)
{
    int bad = 0;
    long wait_s = 0;
    enum fa_rc rc;
    if (u->state == FA_USER_SUCCESS && !mode->replace) {
        reply_already_registered(c, u);
        return FA_OK;
    }
    rc = fetch_counted(c, u, ph, &wait_s);
    if (rc == FA_OK && wait_s > 0)
        return refuse_locked(c, mode, u, wait_s);
    if (rc == FA_OK)
        rc = analyze_photos(c, ph, &bad);
    if (rc == FA_OK)
        rc = check_same_person(c, ph, &bad);
    if (fa_face_refused(rc))
        rc = record_refused(c, mode, u, ph->bytes[bad], ph->len[bad], ph->probe[bad].kind);
    else if (rc == FA_OK)
        rc = record_enrolled(c, mode, u, ph);
    return rc;
}

static enum fa_rc enroll(struct fa_call *c, const struct enroll_mode *mode)
{
    struct fa_user u;
    struct enroll_photos ph;
    enum fa_rc rc;
    memset(&ph, 0, sizeof ph);
    rc = parse_photos(c, &ph);
    if (rc == FA_OK)
        rc = enroll_target(c, &u);
    if (rc == FA_OK)
        rc = enroll_photos(c, mode, &u, &ph);
    photos_cleanup(&ph);
    return rc;
}

enum fa_rc api_enroll_user(struct fa_call *c, const struct fa_user *u, const char *const *urls,
                           int n, const char *label)
{
    struct enroll_photos ph;
    enum fa_rc rc = FA_OK;
    memset(&ph, 0, sizeof ph);
    if (n < 1 || n > ENROLL_MAX_PHOTOS)
        return fa_err_set(&c->err, FA_EINVAL, "send 1 to %d photos, not %d", ENROLL_MAX_PHOTOS, n);
    for (int i = 0; i < n; i++) {
        snprintf(ph.field[i], sizeof ph.field[i], "%s %d", label, i + 1);
        ph.url[i] = urls[i];
    }
    ph.n = n;
    ph.listed = 1;
    rc = alloc_probes(c, &ph);
    if (rc == FA_OK)
        rc = enroll_photos(c, &ENROLL, u, &ph);
    photos_cleanup(&ph);
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
