/*
 * search.c — search (1:N): which enrolled users does this face look like?
 *
 * The probe is scored against the customer's in-memory template index
 * (never the database), each user by their best template, and the users at
 * or above the threshold come back best first with their blacklist state.
 * searchSpaces, when given, limits the candidates to the union of those
 * spaces; an empty list means nobody.
 */
#include "api_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEARCH_MAX_HITS 100
#define SEARCH_MAX_SPACES 100

struct search_request {
    const char *url;
    double threshold;
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

static enum fa_rc parse_request(struct fa_call *c, struct search_request *r)
{
    struct fa_settings settings;
    enum fa_rc rc = api_string(c, "url", 1, &r->url);
    if (rc == FA_OK)
        rc = fa_store_settings_get(c->app->store, c->customer_id, &settings, &c->err);
    if (rc == FA_OK)
        rc = api_number(c, "threshold", -1, 1, settings.threshold, &r->threshold);
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

static enum fa_rc run_search(struct fa_call *c, const struct search_request *r,
                             const struct fa_face_probe *probe, struct fa_index_hit **hits, int *n)
{
    *hits = NULL;
    *n = 0;
    if (r->limited && r->n_allowed == 0)
        return FA_OK;
    return fa_index_search(c->app->index, c->customer_id, probe->emb[FA_MODEL_ARCFACE],
                           (float)r->threshold,
                           r->limited ? r->allowed : NULL, r->n_allowed, SEARCH_MAX_HITS, hits, n,
                           &c->err);
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
