/*
 * search.c — search (1:N): which enrolled users does this face look like?
 *
 * The probe is scored against the customer's in-memory template index
 * (never the database for the whole gallery), each user by their best
 * template, and the users at or above the threshold come back best first
 * with their blacklist state. searchSpaces, when given, limits the
 * candidates to the union of those spaces; an empty list means nobody.
 *
 * Scores are authenticate's: the fused score in z units (fusion.c). The
 * index holds one model (fr_feature), so it only draws up a shortlist: the
 * SEARCH_SHORTLIST users whose fr_feature z-score is within
 * SEARCH_SHORTLIST_MARGIN of the threshold, best first. Those users' photos
 * are then read from the store and fused like authenticate does; a user
 * counts when the fused score reaches the threshold and also the lowest
 * precision threshold the customer may use for their number of photos (a
 * best-of-k score matches impostors more often: the same correction as
 * authenticate's).
 *
 * threshold: a number above 1 is a fused z score; 0 to 1 is read as the
 * fr_feature cosine search used to take (Signzy's 0-1 scale) and converted
 * with that model's z-normalisation, (cosine - mean) / sd, which is
 * monotone. Either way it may not be below the customer's lowest permitted
 * operating point (the first value of threshold_low, or of threshold_high
 * when the customer forbids low precision): a lower threshold would answer
 * with the scores of faces that are nobody's match, an oracle for tuning a
 * forged photo. The customer's Threshold setting, used when the request
 * has none, is raised to that floor rather than refused.
 */
#include "api_int.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEARCH_MAX_HITS 100
#define SEARCH_MAX_SPACES 100
#define SEARCH_SHORTLIST 200        /* users the index hands on to be fused */
#define SEARCH_SHORTLIST_MARGIN 3.0 /* z by which fr_feature may sit below the threshold */
#define SEARCH_MAX_Z 20.0           /* no pair fuses above ~9: a larger threshold is a typo */

struct search_request {
    const char *url;
    double threshold;                /* fused z */
    const struct fa_cfg_list *floor; /* the customer's lowest precision, by photo count */
    struct fa_fusion fusion;
    int limited;          /* searchSpaces given (not null) */
    int64_t *allowed;     /* user ids of those spaces, sorted; owned */
    int n_allowed;
};

/* searchSpaces: null/absent, or a list of space names. */
static enum fa_rc parse_spaces(struct fa_call *c, struct search_request *r)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(c->body, "searchSpaces");
    const char *names[SEARCH_MAX_SPACES];
    int n = 0;
    const cJSON *item;
    if (list == NULL || cJSON_IsNull(list))
        return FA_OK;
    if (!cJSON_IsArray(list))
        return fa_err_set(&c->err, FA_EINVAL, "searchSpaces must be null or a list of names");
    cJSON_ArrayForEach(item, list) {
        if (!cJSON_IsString(item))
            return fa_err_set(&c->err, FA_EINVAL, "searchSpaces must hold only strings");
        if (n == SEARCH_MAX_SPACES)
            return fa_err_set(&c->err, FA_EINVAL, "searchSpaces holds more than %d names",
                              SEARCH_MAX_SPACES);
        names[n++] = item->valuestring;
    }
    r->limited = 1;
    if (n == 0)
        return FA_OK;
    return fa_store_space_user_ids(c->app->store, c->customer_id, names, n, &r->allowed,
                                   &r->n_allowed, &c->err);
}

/* The lowest precision the customer may use, and its name for messages. */
static const struct fa_cfg_list *lowest_precision(const struct fa_call *c,
                                                  const struct fa_settings *settings,
                                                  const char **label)
{
    if (settings->allow_low_precision) {
        *label = "precision low, FMR 1e-3";
        return &c->app->policy.threshold_low;
    }
    *label = "precision high, FMR 1e-4";
    return &c->app->policy.threshold_high;
}

/* A threshold as sent: above 1 fused z, else an fr_feature cosine (see the top). */
static double threshold_as_z(const struct search_request *r, double sent)
{
    if (sent > 1)
        return sent;
    return fa_face_model_z(&r->fusion, FA_MODEL_ARCFACE, sent);
}

/* threshold, or the customer's Threshold setting (raised to the floor). */
static enum fa_rc parse_threshold(struct fa_call *c, const struct fa_settings *settings,
                                  struct search_request *r)
{
    const char *label;
    double sent, floor;
    enum fa_rc rc;
    r->floor = lowest_precision(c, settings, &label);
    floor = fa_cfg_list_at(r->floor, 1);
    rc = api_number(c, "threshold", -DBL_MAX, DBL_MAX, NAN, &sent);
    if (rc == FA_OK && isnan(sent)) {
        double z = threshold_as_z(r, settings->threshold);
        r->threshold = z > floor ? z : floor;
        return FA_OK;
    }
    if (rc == FA_OK)
        r->threshold = threshold_as_z(r, sent);
    if (rc != FA_OK || !(r->threshold >= floor && r->threshold <= SEARCH_MAX_Z))
        return fa_err_set(&c->err, FA_EINVAL,
                          "threshold must be a fused score from %.3f to %g (z units; %.3f is "
                          "the lowest this customer may use, %s), or a 0-1 fr_feature cosine "
                          "from %.4f to 1",
                          floor, SEARCH_MAX_Z, floor, label,
                          fa_face_model_cosine(&r->fusion, FA_MODEL_ARCFACE, floor));
    return FA_OK;
}

static enum fa_rc parse_request(struct fa_call *c, struct search_request *r)
{
    struct fa_settings settings;
    enum fa_rc rc = api_string(c, "url", 1, &r->url);
    r->fusion = c->app->policy.fusion;
    if (rc == FA_OK)
        rc = fa_store_settings_get(c->app->store, c->customer_id, &settings, &c->err);
    if (rc == FA_OK)
        rc = parse_threshold(c, &settings, r);
    if (rc == FA_OK)
        rc = parse_spaces(c, r);
    return rc;
}

/* The hits as [{userName, matchScore, blacklistState}], best first. */
static enum fa_rc hits_json(struct fa_call *c, const struct fa_index_hit *hits, int n,
                            cJSON *list)
{
    for (int i = 0; i < n; i++) {
        struct fa_user u;
        cJSON *row;
        enum fa_rc rc = fa_store_user_by_id(c->app->store, c->customer_id, hits[i].user_id, &u,
                                            &c->err);
        if (rc == FA_ENOTFOUND)
            continue; /* deleted between the index read and now */
        if (rc != FA_OK)
            return rc;
        row = cJSON_CreateObject();
        cJSON_AddStringToObject(row, "userName", u.user_name);
        cJSON_AddNumberToObject(row, "matchScore", round((double)hits[i].score * 1e4) / 1e4);
        cJSON_AddStringToObject(row, "blacklistState", u.blacklisted ? "yes" : "no");
        cJSON_AddItemToArray(list, row);
    }
    return FA_OK;
}

static int hit_cmp(const void *x, const void *y)
{
    const struct fa_index_hit *a = x, *b = y;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    return a->user_id < b->user_id ? -1 : a->user_id > b->user_id;
}

/* The user's fused score when it counts (see the top), else NAN. */
static float fused_score(struct fa_call *c, const struct search_request *r,
                         const float *const probe[FA_N_MODELS], int64_t user_id,
                         enum fa_rc *rc)
{
    struct fa_store_samples *samples = NULL;
    float best = NAN;
    int counted = 0;
    *rc = fa_gallery_samples(c->app->gallery, user_id, &samples, &c->err);
    if (*rc == FA_OK)
        best = fa_face_best_fused(&r->fusion, probe, samples->vec, samples->n, &counted);
    fa_store_samples_free(samples);
    if (isnan(best) || best < r->threshold || best < fa_cfg_list_at(r->floor, counted))
        return NAN;
    return best;
}

/* Replace the index's scores of the shortlist by fused ones, keep the users
 * that count, best first, at most SEARCH_MAX_HITS. */
static enum fa_rc fuse_shortlist(struct fa_call *c, const struct search_request *r,
                                 const struct fa_face_probe *probe, struct fa_index_hit *hits,
                                 int *n)
{
    const float *vecs[FA_N_MODELS];
    enum fa_rc rc = FA_OK;
    int kept = 0;
    fa_face_probe_vectors(probe, vecs);
    for (int i = 0; i < *n && rc == FA_OK; i++) {
        float score = fused_score(c, r, vecs, hits[i].user_id, &rc);
        if (!isnan(score))
            hits[kept++] = (struct fa_index_hit){hits[i].user_id, score};
    }
    if (kept > 1) /* hits is NULL when the index found nobody */
        qsort(hits, (size_t)kept, sizeof *hits, hit_cmp);
    *n = kept < SEARCH_MAX_HITS ? kept : SEARCH_MAX_HITS;
    return rc;
}

static enum fa_rc run_search(struct fa_call *c, const struct search_request *r,
                             const struct fa_face_probe *probe, struct fa_index_hit **hits, int *n)
{
    double z_min = r->threshold - SEARCH_SHORTLIST_MARGIN;
    float cos_min = (float)fa_face_model_cosine(&r->fusion, FA_MODEL_ARCFACE, z_min);
    enum fa_rc rc;
    *hits = NULL;
    *n = 0;
    if (r->limited && r->n_allowed == 0)
        return FA_OK;
    rc = fa_index_search(c->app->index, c->customer_id, probe->emb[FA_MODEL_ARCFACE], cos_min,
                         r->limited ? r->allowed : NULL, r->n_allowed, SEARCH_SHORTLIST, hits, n,
                         &c->err);
    if (rc == FA_OK)
        rc = fuse_shortlist(c, r, probe, *hits, n);
    return rc;
}

/* Log the search with the probe's images. */
static enum fa_rc record(struct fa_call *c, const uint8_t *bytes, size_t n_bytes,
                         const struct fa_face_probe *probe, const struct fa_index_hit *hits,
                         int n, struct api_saved *saved)
{
    struct fa_store_record rec = {0};
    enum fa_rc rc = api_save_images(c, bytes, n_bytes, probe, saved);
    if (rc != FA_OK)
        return rc;
    rec.user_name = ""; /* a search is about no one user */
    rec.request_type = "search";
    rec.success = n > 0;
    rec.score = n > 0 ? hits[0].score : NAN;
    return api_commit(c, &rec, saved);
}

static enum fa_rc answer(struct fa_call *c, const struct api_saved *saved,
                         const struct fa_index_hit *hits, int n)
{
    cJSON *out = cJSON_CreateObject();
    enum fa_rc rc;
    api_add_saved_links(c, out, saved);
    rc = hits_json(c, hits, n, cJSON_AddArrayToObject(out, "userNames"));
    if (rc != FA_OK) {
        cJSON_Delete(out);
        return rc;
    }
    api_reply_ok(c, out, n > 0 ? "Matching users found" : "No user matches the face");
    return FA_OK;
}

/* No usable face in the probe: logged, answered in the failure shape. */
static enum fa_rc refuse(struct fa_call *c, const uint8_t *bytes, size_t n_bytes)
{
    struct api_saved saved;
    static const struct fa_face_probe none; /* no thumbnail: 6 kB, so not on the stack */
    char reason[FA_ERR_MAX];
    cJSON *fields;
    enum fa_rc rc;
    snprintf(reason, sizeof reason, "%s", c->err.msg);
    rc = record(c, bytes, n_bytes, &none, NULL, 0, &saved);
    if (rc != FA_OK)
        return rc;
    fields = cJSON_CreateObject();
    api_add_saved_links(c, fields, &saved);
    cJSON_AddArrayToObject(fields, "userNames");
    fa_http_reply_failure(c->reply, fields, reason);
    return FA_OK;
}

static enum fa_rc search(struct fa_call *c)
{
    struct search_request r = {0};
    struct fa_face_probe probe = {0};
    struct fa_index_hit *hits = NULL;
    struct api_saved saved;
    uint8_t *bytes = NULL;
    size_t n_bytes = 0;
    int n = 0;
    enum fa_rc rc = parse_request(c, &r);
    if (rc == FA_OK)
        rc = api_fetch(c, r.url, &bytes, &n_bytes);
    if (rc == FA_OK)
        rc = api_analyze(c, "url", bytes, n_bytes, FA_FACE_AUTH, 0, &probe);
    if (rc == FA_OK) /* another node's enrollments and deletions first */
        rc = fa_api_follow_catch_up(c->app, &c->err);
    if (rc == FA_OK)
        rc = run_search(c, &r, &probe, &hits, &n);
    if (rc == FA_OK)
        rc = record(c, bytes, n_bytes, &probe, hits, n, &saved);
    if (rc == FA_OK)
        rc = answer(c, &saved, hits, n);
    else if (fa_face_refused(rc))
        rc = refuse(c, bytes, n_bytes);
    free(hits);
    free(r.allowed);
    fa_face_probe_cleanup(&probe);
    free(bytes);
    return rc;
}

void fa_api_search(void *app, struct fa_http_req *req, struct fa_http_reply *reply)
{
    api_run(app, req, reply, API_CUSTOMER, search);
}
