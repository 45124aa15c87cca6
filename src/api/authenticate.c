/*
 * authenticate.c — authenticate: is the face in this photo the user's?
 *
 * One request walks, top to bottom (authenticate() at the end):
 *   parse    the fields (userName, url, precision, useSampleForLearning)
 *   fetch    the user and the customer's settings, refusals that need no
 *            photo, then the photo; the attempt is counted
 *   analyze  the face service finds and checks the face (face.h), liveness
 *            when the customer's checkLiveliness is yes
 *   verify   the face service decides against the user's samples
 *            (fa_face_verify: thresholds by precision and photo count,
 *            whether to learn)
 *   save     the original and the thumbnail, as files
 *   commit   the log row and a learned sample in one transaction, through
 *            the gallery (the search index follows)
 *   reply    in the seed's shapes
 * A refusal at any step (locked, not enrolled, no usable face, no match)
 * is an outcome, not an error: the steps up to verify are skipped, and the
 * attempt is still saved, committed and answered.
 *
 * The match score is returned on success only: on failure it would tell an
 * attacker how close a forged photo came, which helps them climb towards a
 * match. When liveness ran, livenessScore is in the answer.
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
#include <string.h>

struct auth_request {
    const char *user_name;
    const char *url;
    int precision_low; /* 0 = high (default), 1 = low */
    int learn;         /* useSampleForLearning */
};

/* One attempt as it walks through the steps. */
struct auth_attempt {
    struct fa_user user;
    struct fa_settings settings;
    uint8_t *bytes;                /* the photo, once fetched */
    size_t n;
    struct fa_face_probe *probe;   /* its analysis (6 kB of embeddings: on the heap) */
    int analysed;                  /* 1: the photo was analysed (saved, even when refused) */
    struct fa_face_verdict verdict; /* set by verify; match 0 before */
    struct api_saved saved;
    int decided;                   /* 1: the outcome is known (a refusal); skip to save */
    long wait_s;                   /* > 0: refused by the attempt limit (HTTP 429) */
    char msg[FA_ERR_MAX + 32];     /* the answer's message */
};

/* ---- parse ---- */

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

/* ---- fetch ---- */

/* A refusal: the outcome is known, the remaining steps up to save are skipped. */
static void refuse(struct auth_attempt *a, const char *why)
{
    snprintf(a->msg, sizeof a->msg, "User is not authenticated: %s", why);
    a->decided = 1;
}

static void refuse_locked(struct auth_attempt *a, long wait_s)
{
    api_attempt_locked_message(&a->user, wait_s, "User is not authenticated: ", a->msg,
                               sizeof a->msg);
    a->wait_s = wait_s;
    a->decided = 1;
}

/* The user, the settings, and the refusals that need no photo, in order: a
 * precision the customer forbids (a bad request), a locked user, no
 * enrolled face, a blacklisted user. */
static enum fa_rc fetch_user(struct fa_call *c, const struct auth_request *r,
                             struct auth_attempt *a)
{
    char why[160];
    long wait_s;
    enum fa_rc rc = api_user(c, r->user_name, &a->user);
    if (rc == FA_OK)
        rc = fa_store_settings_get(c->app->store, c->customer_id, &a->settings, &c->err);
    if (rc != FA_OK)
        return rc;
    if (r->precision_low && !a->settings.allow_low_precision)
        return fa_err_set(&c->err, FA_EINVAL,
                          "precision: \"low\" is not allowed for this customer "
                          "(settings allowLowPrecision is no); use \"high\"");
    wait_s = api_attempt_wait(c, &a->user, "authenticate");
    if (wait_s > 0) {
        refuse_locked(a, wait_s);
    } else if (a->user.state != FA_USER_SUCCESS) {
        snprintf(why, sizeof why, "user '%s' has no enrolled face yet", a->user.user_name);
        refuse(a, why);
    } else if (a->user.blacklisted) {
        snprintf(why, sizeof why, "user '%s' is blacklisted", a->user.user_name);
        refuse(a, why);
    }
    return FA_OK;
}

/* Fetch the photo, then count the attempt. A bad URL is a bad request and
 * counts for nothing; only the reservation's FA_ELIMIT is a lock (the
 * fetch's own, the customer's downloads at once, stays a plain 429). */
static enum fa_rc fetch_photo(struct fa_call *c, const struct auth_request *r,
                              struct auth_attempt *a)
{
    long wait_s = 0;
    enum fa_rc rc;
    a->probe = calloc(1, sizeof *a->probe); /* room for the analysis */
    if (a->probe == NULL)
        return fa_err_set(&c->err, FA_ENOMEM, "out of memory");
    rc = api_fetch(c, r->url, &a->bytes, &a->n);
    if (rc != FA_OK)
        return rc;
    rc = api_attempt_reserve(c, &a->user, "authenticate", &wait_s);
    if (rc == FA_ELIMIT) {
        refuse_locked(a, wait_s);
        return FA_OK;
    }
    return rc;
}

/* ---- analyze ---- */

/* No usable face (none, a gate, liveness) is a failed authentication. */
static enum fa_rc analyze_photo(struct fa_call *c, struct auth_attempt *a)
{
    unsigned flags = a->settings.check_liveliness ? FA_FACE_LIVENESS : 0;
    enum fa_rc rc = api_analyze(c, "url", a->bytes, a->n, FA_FACE_AUTH, flags, a->probe);
    if (rc != FA_OK && !fa_face_refused(rc))
        return rc;
    a->analysed = 1;
    if (rc != FA_OK)
        refuse(a, c->err.msg);
    return FA_OK;
}

/* ---- verify ---- */

static const char *verdict_message(enum fa_face_reason reason)
{
    if (reason == FA_REASON_MATCH)
        return "User is successfully authenticated";
    if (reason == FA_REASON_OTHER_MODELS)
        return "User is not authenticated: the enrolled face was stored by other face models; "
               "update it";
    return "User is not authenticated";
}

static enum fa_rc verify_face(struct fa_call *c, const struct auth_request *r,
                              struct auth_attempt *a)
{
    struct fa_store_samples *samples = NULL;
    enum fa_rc rc = fa_gallery_samples(c->app->gallery, a->user.id, &samples, &c->err);
    if (rc != FA_OK)
        return rc;
    fa_face_verify(&c->app->policy, a->probe, samples->vec, samples->n,
                   r->precision_low ? FA_PRECISION_LOW : FA_PRECISION_HIGH,
                   r->learn ? FA_VERIFY_LEARN : 0, &a->verdict);
    fa_store_samples_free(samples);
    snprintf(a->msg, sizeof a->msg, "%s", verdict_message(a->verdict.reason));
    return FA_OK;
}

/* ---- save, commit ---- */

/* The photo of an analysed attempt: the original always, the thumbnail
 * when a face was verified (a refused face has none). */
static enum fa_rc save_photo(struct fa_call *c, struct auth_attempt *a)
{
    if (!a->analysed)
        return FA_OK;
    if (a->decided)
        return api_save_original(c, a->bytes, a->n, a->probe->kind, &a->saved);
    return api_save_images(c, a->bytes, a->n, a->probe, &a->saved);
}

/* The log row, and the probe as a learned sample when the verdict says so. */
static enum fa_rc commit_attempt(struct fa_call *c, struct auth_attempt *a)
{
    struct fa_store_record rec = {0};
    struct fa_store_template tpl[FA_N_MODELS];
    struct fa_store_sample sample;
    enum fa_rc rc;
    rec.user_id = a->user.id;
    rec.user_name = a->user.user_name;
    rec.request_type = "authenticate";
    rec.success = a->verdict.match;
    rec.score = a->decided ? NAN : a->verdict.score;
    if (a->verdict.learn) {
        fa_gallery_sample_of(a->probe, "learned", tpl, &sample);
        rec.samples = &sample;
        rec.n_samples = 1;
        rec.max_learned = c->app->cfg->max_learned_templates;
    }
    rc = api_commit(c, &rec, &a->saved);
    if (rc == FA_OK && a->verdict.match)
        api_attempt_succeeded(c, &a->user, "authenticate");
    return rc;
}

/* ---- reply ---- */

/*
 * Every answer has the seed's fields, failures included (issue #13):
 * userName, faceOriginal, faceThumbnail, authenticationStatus, message,
 * status. A link is "" when there is no such image: no thumbnail when no
 * face was found, neither when the failure was decided before the photo
 * was fetched (not enrolled, blacklisted, locked out).
 */
static void reply_attempt(struct fa_call *c, const struct auth_attempt *a)
{
    const struct fa_face_probe *probe = a->probe;
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "userName", a->user.user_name);
    api_add_saved_links(c, out, &a->saved);
    cJSON_AddStringToObject(out, "authenticationStatus",
                            a->verdict.match ? "success" : "failure");
    if (probe != NULL && probe->liveness_checked)
        cJSON_AddNumberToObject(out, "livenessScore", round((double)probe->live * 1e4) / 1e4);
    if (a->verdict.match) {
        cJSON_AddNumberToObject(out, "matchScore",
                                round((double)a->verdict.score * 1e4) / 1e4);
        api_reply_ok(c, out, a->msg);
    } else if (a->wait_s > 0) {
        c->reply->retry_after_s = a->wait_s;
        fa_http_reply_failure_rc(c->reply, FA_ELIMIT, out, a->msg);
    } else {
        fa_http_reply_failure(c->reply, out, a->msg);
    }
}

/* faceauth_auth_decisions_total: every answered authenticate (rc FA_OK)
 * is a success (200) or a failure, whatever refused it. Returns rc. */
static enum fa_rc count_decision(struct fa_call *c, const struct auth_request *r, enum fa_rc rc)
{
    if (rc == FA_OK)
        fa_metrics_decision(c->app->metrics, r->precision_low, c->reply->status == 200);
    return rc;
}

static enum fa_rc authenticate(struct fa_call *c)
{
    struct auth_request r;
    struct auth_attempt a;
    enum fa_rc rc;
    memset(&a, 0, sizeof a);
    rc = parse_request(c, &r);
    if (rc == FA_OK)
        rc = fetch_user(c, &r, &a);
    if (rc == FA_OK && !a.decided)
        rc = fetch_photo(c, &r, &a);
    if (rc == FA_OK && !a.decided)
        rc = analyze_photo(c, &a);
    if (rc == FA_OK && !a.decided)
        rc = verify_face(c, &r, &a);
    if (rc == FA_OK)
        rc = save_photo(c, &a);
    if (rc == FA_OK)
        rc = commit_attempt(c, &a);
    if (rc == FA_OK)
        reply_attempt(c, &a);
    free(a.bytes);
    if (a.probe != NULL)
        fa_face_probe_cleanup(a.probe);
    free(a.probe);
    return count_decision(c, &r, rc);
}

void fa_api_authenticate(void *app, struct fa_http_req *req, struct fa_http_reply *reply)
{
    api_run(app, req, reply, API_CUSTOMER, authenticate);
}
