/*
 * authenticate.c — authenticate: is the face in this photo the user's?
 *
 * Success and failure answer in the seed's exact shapes. The match score is
 * returned on success only: on failure it would tell an attacker how close
 * a forged photo came, which helps them climb towards a match.
 *
 * The score is the fusion of every configured model (face.h, fa_face_fuse),
 * the best over the user's photos, and it must reach the threshold of the
 * requested precision for the number of photos compared: a best-of-k score
 * matches impostors more often than one comparison, so the threshold rises
 * with k (config threshold_high/low lists) and each precision level keeps
 * its false-match rate whatever the number of photos a user has.
 *
 * useSampleForLearning adds the probe as a learned photo only after a
 * success at least learn_margin above the threshold with a face that also
 * passes the enrollment gates, so a borderline impostor cannot drag the
 * templates their way: each learned impostor photo would make the next
 * impostor attempt easier, and the margin keeps the first one out.
 *
 * When the customer's checkLiveliness is yes, the face must pass the
 * liveness screen (fa_face_analyze refuses it otherwise) and livenessScore
 * is in the answer.
 *
 * Attempt limit (throttle.c): every attempt whose photo arrived counts as
 * a failure until it succeeds, whatever the precision; auth_fail_limit of
 * them within auth_fail_window_s lock the user's authentication for
 * auth_lock_s, answered HTTP 429 in the failure shape with error.status
 * "429" and a message giving the wait. A customer may forbid precision low
 * altogether (settings allowLowPrecision): it is the one a forger aims at.
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

/* What an answer reports beyond the seed's fields. */
struct auth_outcome {
    int success;
    float score;          /* fused; reported on success only */
    const struct fa_face_probe *probe; /* livenessScore when it ran; may be NULL */
    long wait_s;          /* > 0: refused by the attempt limit (HTTP 429, Retry-After) */
};

/*
 * Every answer has the seed's fields, failures included (issue #13):
 * userName, faceOriginal, faceThumbnail, authenticationStatus, message,
 * status. A link is "" when there is no such image: no thumbnail when no
 * face was found, neither when the failure was decided before the photo
 * was fetched (not enrolled, blacklisted, locked out).
 */
static void reply_result(struct fa_call *c, const struct fa_user *u, const struct api_saved *saved,
                         const struct auth_outcome *o, const char *msg)
{
    static const struct api_saved none;
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "userName", u->user_name);
    api_add_saved_links(c, out, saved != NULL ? saved : &none);
    cJSON_AddStringToObject(out, "authenticationStatus", o->success ? "success" : "failure");
    if (o->probe != NULL && o->probe->liveness_checked)
        cJSON_AddNumberToObject(out, "livenessScore", round((double)o->probe->live * 1e4) / 1e4);
    if (o->success) {
        cJSON_AddNumberToObject(out, "matchScore", round((double)o->score * 1e4) / 1e4);
        api_reply_ok(c, out, msg);
    } else if (o->wait_s > 0) {
        c->reply->retry_after_s = o->wait_s;
        fa_http_reply_failure_rc(c->reply, FA_ELIMIT, out, msg);
    } else {
        fa_http_reply_failure(c->reply, out, msg);
    }
}

/* A failure decided before any image is looked at: log it and answer
 * (429 when wait_s > 0: the user's attempts are locked). */
static enum fa_rc refuse_early(struct fa_call *c, const struct fa_user *u, const char *msg,
                               long wait_s)
{
    struct fa_store_record rec = {0};
    struct api_saved none = {0};
    struct auth_outcome o = {0, 0, NULL, wait_s};
    enum fa_rc rc;
    rec.user_id = u->id;
    rec.user_name = u->user_name;
    rec.request_type = "authenticate";
    rec.score = NAN;
    rc = api_commit(c, &rec, &none);
    if (rc == FA_OK)
        reply_result(c, u, NULL, &o, msg);
    return rc;
}

static enum fa_rc refuse_locked(struct fa_call *c, const struct fa_user *u, long wait_s)
{
    char msg[FA_ERR_MAX];
    api_attempt_locked_message(u, wait_s, "User is not authenticated: ", msg, sizeof msg);
    return refuse_early(c, u, msg, wait_s);
}

static const struct fa_cfg_list *thresholds(const struct fa_call *c, const struct auth_request *r)
{
    return r->precision_low ? &c->app->cfg->threshold_low : &c->app->cfg->threshold_high;
}

/* The best fused score of the probe over the user's photos and how many
 * photos it was compared with (0, and a NAN score, when none shares a
 * model with the probe). */
static enum fa_rc score_probe(struct fa_call *c, const struct fa_user *u,
                              const struct fa_face_probe *probe, float *score, int *k)
{
    struct fa_store_samples *samples = NULL;
    const float *vecs[FA_N_MODELS];
    struct fa_fusion f;
    enum fa_rc rc = api_user_samples(c, u->id, &samples);
    if (rc != FA_OK)
        return rc;
    api_fusion(c, &f);
    fa_face_probe_vectors(probe, vecs);
    *score = fa_face_best_fused(&f, vecs, samples->vec, samples->n, k);
    fa_store_samples_free(samples);
    return FA_OK;
}

/* Learn the probe? Only a clear success (margin in z units above the
 * threshold) with a face good enough to enroll. */
static int learnable(const struct fa_call *c, const struct auth_request *r,
                     const struct fa_face_probe *probe, float score, double threshold)
{
    return r->learn && score >= threshold + c->app->cfg->learn_margin &&
           fa_face_service_gates(c->app->faces, FA_FACE_ENROLL, &probe->q, NULL) == FA_GATE_PASS;
}

static const char *decision_message(int success, int k)
{
    if (success)
        return "User is successfully authenticated";
    if (k == 0) /* templates of other models (or model versions) only */
        return "User is not authenticated: the enrolled face was stored by other face models; "
               "update it";
    return "User is not authenticated";
}

static enum fa_rc decide(struct fa_call *c, const struct auth_request *r, const struct fa_user *u,
                         const uint8_t *bytes, size_t n, const struct fa_face_probe *probe)
{
    struct fa_store_record rec = {0};
    struct fa_store_template tpl[FA_N_MODELS];
    struct fa_store_sample sample;
    struct api_saved saved;
    struct auth_outcome o = {0, NAN, probe, 0};
    int k = 0;
    double threshold;
    enum fa_rc rc = score_probe(c, u, probe, &o.score, &k);
    if (rc == FA_OK)
        rc = api_save_images(c, bytes, n, probe, &saved);
    if (rc != FA_OK)
        return rc;
    threshold = fa_cfg_list_at(thresholds(c, r), k);
    o.success = k > 0 && o.score >= threshold;
    rec.user_id = u->id;
    rec.user_name = u->user_name;
    rec.request_type = "authenticate";
    rec.success = o.success;
    rec.score = o.score;
    if (o.success && learnable(c, r, probe, o.score, threshold)) {
        api_probe_sample(probe, "learned", tpl, &sample);
        rec.samples = &sample;
        rec.n_samples = 1;
        rec.max_learned = c->app->cfg->max_learned_templates;
    }
    rc = api_commit(c, &rec, &saved);
    if (rc == FA_OK && rec.n_samples > 0)
        api_index_sync(c, u->id);
    if (rc == FA_OK && o.success)
        api_attempt_succeeded(c, u, "authenticate");
    if (rc == FA_OK)
        reply_result(c, u, &saved, &o, decision_message(o.success, k));
    return rc;
}

/* No usable face in the probe: a failed authentication, logged with the original. */
static enum fa_rc refuse_probe(struct fa_call *c, const struct fa_user *u, const uint8_t *bytes,
                               size_t n, const struct fa_face_probe *probe)
{
    struct fa_store_record rec = {0};
    struct api_saved saved;
    struct auth_outcome o = {0, 0, probe, 0};
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
        reply_result(c, u, &saved, &o, reason);
    return rc;
}

/* Fetch, count the attempt, analyse (liveness when the customer asks for
 * it), decide. A bad URL is a bad request and counts for nothing. */
static enum fa_rc judge_photo(struct fa_call *c, const struct auth_request *r,
                              const struct fa_user *u, const struct fa_settings *settings,
                              struct fa_face_probe *probe)
{
    uint8_t *bytes = NULL;
    size_t n = 0;
    long wait_s = 0;
    enum fa_rc rc = api_fetch(c, r->url, &bytes, &n);
    /* Only the reservation's FA_ELIMIT is a lock: the fetch's own (the
     * customer's downloads at once) stays a plain 429. */
    if (rc == FA_OK) {
        rc = api_attempt_reserve(c, u, "authenticate", &wait_s);
        if (rc == FA_ELIMIT) {
            free(bytes);
            return refuse_locked(c, u, wait_s);
        }
    }
    if (rc == FA_OK)
        rc = api_analyze(c, "url", bytes, n, FA_FACE_AUTH,
                         settings->check_liveliness ? FA_FACE_LIVENESS : 0, probe);
    if (rc == FA_OK)
        rc = decide(c, r, u, bytes, n, probe);
    else if (rc == FA_ENOFACE)
        rc = refuse_probe(c, u, bytes, n, probe);
    free(bytes);
    return rc;
}

/* faceauth_auth_decisions_total: every answered authenticate (rc FA_OK)
 * is a success (200) or a failure, whatever refused it. Returns rc. */
static enum fa_rc count_decision(struct fa_call *c, const struct auth_request *r, enum fa_rc rc)
{
    if (rc == FA_OK)
        fa_metrics_decision(c->app->metrics, r->precision_low, c->reply->status == 200);
    return rc;
}

/* Refusals that need no photo, in order: a precision the customer forbids
 * (a bad request), a locked user, no enrolled face, a blacklisted user.
 * *done is 1 when one of them answered. */
static enum fa_rc refuse_before_photo(struct fa_call *c, const struct auth_request *r,
                                      const struct fa_user *u,
                                      const struct fa_settings *settings, int *done)
{
    char msg[160];
    long wait_s;
    *done = 1;
    if (r->precision_low && !settings->allow_low_precision)
        return fa_err_set(&c->err, FA_EINVAL,
                          "precision: \"low\" is not allowed for this customer "
                          "(settings allowLowPrecision is no); use \"high\"");
    wait_s = api_attempt_wait(c, u, "authenticate");
    if (wait_s > 0)
        return refuse_locked(c, u, wait_s);
    if (u->state != FA_USER_SUCCESS) {
        snprintf(msg, sizeof msg, "User is not authenticated: user '%s' has no enrolled face yet",
                 u->user_name);
        return refuse_early(c, u, msg, 0);
    }
    if (u->blacklisted) {
        snprintf(msg, sizeof msg, "User is not authenticated: user '%s' is blacklisted",
                 u->user_name);
        return refuse_early(c, u, msg, 0);
    }
    *done = 0;
    return FA_OK;
}

static enum fa_rc authenticate(struct fa_call *c)
{
    struct auth_request r;
    struct fa_user u;
    struct fa_settings settings;
    struct fa_face_probe *probe = NULL;
    int done = 0;
    enum fa_rc rc = parse_request(c, &r);
    if (rc == FA_OK)
        rc = api_user(c, r.user_name, &u);
    if (rc == FA_OK)
        rc = fa_store_settings_get(c->app->store, c->customer_id, &settings, &c->err);
    if (rc == FA_OK)
        rc = refuse_before_photo(c, &r, &u, &settings, &done);
    if (done)
        return count_decision(c, &r, rc);
    if (rc != FA_OK)
        return rc;
    probe = calloc(1, sizeof *probe); /* 6 kB of embeddings: not on a worker's stack */
    if (probe == NULL)
        return fa_err_set(&c->err, FA_ENOMEM, "out of memory");
    rc = judge_photo(c, &r, &u, &settings, probe);
    fa_face_probe_cleanup(probe);
    free(probe);
    return count_decision(c, &r, rc);
}

void fa_api_authenticate(void *app, struct fa_http_req *req, struct fa_http_reply *reply)
{
    api_run(app, req, reply, API_CUSTOMER, authenticate);
}
