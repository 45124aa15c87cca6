/*
 * authenticate.c — authenticate: is the face in this photo the user's?
 *
 * Success and failure answer in the seed's exact shapes. The match score is
 * returned on success only: on failure it would tell an attacker how close
 * a forged photo came, which helps them climb towards a match.
 *
 * useSampleForLearning adds the probe as a learned template only after a
 * success with a margin above the threshold and a face big enough for
 * enrollment, so a borderline impostor cannot drag the templates their way.
 */
#include "api_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

struct auth_request {
    const char *user_name;
    const char *url;
    int precision_low; /* 0 = high (default), 1 = low */
    int learn;         /* useSampleForLearning */
};

static enum fa_rc parse_request(struct fa_call *c, struct auth_request *r)
{
    static const char *const precisions[] = {"high", "low"};
    enum fa_rc rc = api_user_name(c, 1, &r->user_name);
    if (rc == FA_OK)
        rc = api_string(c, "url", 1, &r->url);
    if (rc == FA_OK)
        rc = api_choice(c, "precision", precisions, 2, 0, &r->precision_low);
    if (rc == FA_OK)
        rc = api_yes_no(c, "useSampleForLearning", 0, &r->learn);
    return rc;
}

static void reply_result(struct fa_call *c, const struct fa_user *u, const struct api_saved *saved,
                         int success, float score, const char *msg)
{
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "userName", u->user_name);
    if (saved != NULL)
        api_add_saved_links(c, out, saved);
    cJSON_AddStringToObject(out, "authenticationStatus", success ? "success" : "failure");
    if (success) {
        cJSON_AddNumberToObject(out, "matchScore", round((double)score * 1e4) / 1e4);
        api_reply_ok(c, out, msg);
    } else {
        fa_http_reply_failure(c->reply, out, msg);
    }
}

/* A failure decided before any image is looked at: log it and answer. */
static enum fa_rc refuse_early(struct fa_call *c, const struct fa_user *u, const char *msg)
{
    struct fa_store_record rec = {0};
    struct api_saved none = {0};
    enum fa_rc rc;
    rec.user_id = u->id;
    rec.user_name = u->user_name;
    rec.request_type = "authenticate";
    rec.score = NAN;
    rc = api_commit(c, &rec, &none);
    if (rc == FA_OK)
        reply_result(c, u, NULL, 0, 0, msg);
    return rc;
}

static float threshold_for(const struct fa_call *c, const struct auth_request *r)
{
    return (float)(r->precision_low ? c->app->cfg->threshold_low : c->app->cfg->threshold_high);
}

/* Score the probe against the user's templates; 1 when it matches. */
static enum fa_rc score_probe(struct fa_call *c, const struct fa_user *u,
                              const struct fa_face_probe *probe, float *score)
{
    float *templates = NULL;
    int n = 0;
    enum fa_rc rc = fa_store_templates_load(c->app->store, u->id, FA_MODEL_ID, FA_EMBED_DIM,
                                            &templates, &n, &c->err);
    if (rc != FA_OK)
        return rc;
    *score = fa_face_best_score(templates, n, probe->embedding);
    free(templates);
    return FA_OK;
}

static enum fa_rc decide(struct fa_call *c, const struct auth_request *r, const struct fa_user *u,
                         const uint8_t *bytes, size_t n, const struct fa_face_probe *probe)
{
    const struct fa_config *cfg = c->app->cfg;
    struct fa_store_record rec = {0};
    struct api_saved saved;
    float score = -1;
    float threshold = threshold_for(c, r);
    enum fa_rc rc = score_probe(c, u, probe, &score);
    if (rc == FA_OK)
        rc = api_save_images(c, bytes, n, probe, &saved);
    if (rc != FA_OK)
        return rc;
    rec.user_id = u->id;
    rec.user_name = u->user_name;
    rec.request_type = "authenticate";
    rec.success = score >= threshold;
    rec.score = score;
    if (rec.success && r->learn && score >= threshold + (float)cfg->learn_margin &&
        probe->eye_distance >= cfg->min_eye_distance_enroll) {
        rec.template_vec = probe->embedding;
        rec.template_dim = FA_EMBED_DIM;
        rec.template_model = FA_MODEL_ID;
        rec.template_source = "learned";
        rec.template_quality = probe->sharpness;
        rec.max_learned = cfg->max_learned_templates;
    }
    rc = api_commit(c, &rec, &saved);
    if (rc == FA_OK && rec.template_vec != NULL)
        api_index_sync(c, u->id);
    if (rc == FA_OK)
        reply_result(c, u, &saved, rec.success, score,
                     rec.success ? "User is successfully authenticated" : "User is not authenticated");
    return rc;
}

/* No usable face in the probe: a failed authentication, logged with the original. */
static enum fa_rc refuse_probe(struct fa_call *c, const struct fa_user *u, const uint8_t *bytes,
                               size_t n)
{
    struct fa_store_record rec = {0};
    struct api_saved saved;
    char reason[FA_ERR_MAX + 32];
    enum fa_rc rc = api_save_images(c, bytes, n, NULL, &saved);
    snprintf(reason, sizeof reason, "User is not authenticated: %s", c->err.msg);
    if (rc != FA_OK)
        return rc;
    rec.user_id = u->id;
    rec.user_name = u->user_name;
    rec.request_type = "authenticate";
    rec.score = NAN;
    rc = api_commit(c, &rec, &saved);
    if (rc == FA_OK)
        reply_result(c, u, &saved, 0, 0, reason);
    return rc;
}

static enum fa_rc authenticate(struct fa_call *c)
{
    struct auth_request r;
    struct fa_user u;
    struct fa_face_probe probe = {0};
    char msg[160];
    uint8_t *bytes = NULL;
    size_t n = 0;
    enum fa_rc rc = parse_request(c, &r);
    if (rc == FA_OK)
        rc = api_user(c, r.user_name, &u);
    if (rc != FA_OK)
        return rc;
    if (u.state != FA_USER_SUCCESS) {
        snprintf(msg, sizeof msg, "User is not authenticated: user '%s' has no enrolled face yet",
                 u.user_name);
        return refuse_early(c, &u, msg);
    }
    if (u.blacklisted) {
        snprintf(msg, sizeof msg, "User is not authenticated: user '%s' is blacklisted",
                 u.user_name);
        return refuse_early(c, &u, msg);
    }
    rc = api_fetch(c, r.url, &bytes, &n);
    if (rc == FA_OK)
        rc = api_analyze(c, bytes, n, FA_FACE_AUTH, &probe);
    if (rc == FA_OK)
        rc = decide(c, &r, &u, bytes, n, &probe);
    else if (rc == FA_ENOFACE)
        rc = refuse_probe(c, &u, bytes, n);
    fa_face_probe_cleanup(&probe);
    free(bytes);
    return rc;
}

void fa_api_authenticate(void *app, struct fa_http_req *req, struct fa_http_reply *reply)
{
    api_run(app, req, reply, API_CUSTOMER, authenticate);
}
