/*
 * status.c — status/enroll/user and status/enroll/all: where users stand
 * with their enrollment.
 */
#include "api_int.h"

#include <stdlib.h>
#include <string.h>

static enum fa_rc status_user(struct fa_call *c)
{
    struct fa_user u;
    const char *url;
    const char *token;
    int enrolled = 0, learned = 0;
    cJSON *out;
    enum fa_rc rc = api_string(c, "enrollmentUrl", 1, &url);
    if (rc != FA_OK)
        return rc;
    token = strrchr(url, '/');
    token = token != NULL ? token + 1 : url;
    rc = fa_store_user_by_token(c->app->store, c->customer_id, token, &u, &c->err);
    if (rc == FA_ENOTFOUND)
        fa_err_set(&c->err, rc, "enrollmentUrl does not name a user of this customer");
    if (rc == FA_OK)
        rc = fa_store_samples_count(c->app->store, u.id, &enrolled, &learned, &c->err);
    if (rc != FA_OK)
        return rc;
    out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "userName", u.user_name);
    cJSON_AddStringToObject(out, "enrollmentStatus", fa_user_state_name(u.state));
    /* Extra, as in user/details: photos held (enrolled + learned). */
    cJSON_AddNumberToObject(out, "templateCount", enrolled + learned);
    api_reply_ok(c, out, "Enrollment status");
    return FA_OK;
}

void fa_api_status_user(void *app, struct fa_http_req *req, struct fa_http_reply *reply)
{
    api_run(app, req, reply, API_CUSTOMER, status_user);
}

static enum fa_rc parse_filter(struct fa_call *c, struct fa_user_filter *f)
{
    static const char *const types[] = {"draft", "success", "failure", "all"};
    int type = 3;
    enum fa_rc rc = api_choice(c, "statusType", types, 4, 3, &type);
    if (rc == FA_EINVAL)
        rc = fa_err_set(&c->err, FA_EINVAL,
                        "statusType must be \"success\", \"failure\", \"draft\" or \"all\"");
    memset(f, 0, sizeof *f);
    f->state = type == 3 ? -1 : type; /* the first three follow enum fa_user_state */
    if (rc == FA_OK)
        rc = api_paging(c, &f->page, &f->page_count);
    if (rc == FA_OK)
        rc = api_date(c, "fromThisDate", 0, &f->from);
    if (rc == FA_OK)
        rc = api_date(c, "toThisDate", 1, &f->to);
    return rc;
}

static cJSON *status_row(const struct fa_call *c, const struct fa_user *u)
{
    cJSON *row = cJSON_CreateObject();
    cJSON_AddStringToObject(row, "userName", u->user_name);
    cJSON_AddStringToObject(row, "fullName", u->full_name);
    cJSON_AddStringToObject(row, "emailId", u->email);
    cJSON_AddStringToObject(row, "phoneNumber", u->phone);
    api_add_image_link(c, row, "faceThumbnail", u->face_thumbnail);
    api_add_image_link(c, row, "faceOriginal", u->face_original);
    api_add_date(row, "timeStamp", u->updated);
    cJSON_AddStringToObject(row, "enrollmentStatus", fa_user_state_name(u->state));
    cJSON_AddStringToObject(row, "blacklistState", u->blacklisted ? "yes" : "no");
    return row;
}

static enum fa_rc status_all(struct fa_call *c)
{
    struct fa_user_filter f;
    struct fa_user *users = NULL;
    int n = 0;
    long total = 0;
    cJSON *out, *data;
    enum fa_rc rc = parse_filter(c, &f);
    if (rc == FA_OK)
        rc = fa_store_users_list(c->app->store, c->customer_id, &f, &users, &n, &total, &c->err);
    if (rc != FA_OK)
        return rc;
    out = cJSON_CreateObject();
    cJSON_AddNumberToObject(out, "currentStatusPageNumber", f.page);
    cJSON_AddNumberToObject(out, "totalStatusPageNumber", (double)api_total_pages(total, f.page_count));
    cJSON_AddNumberToObject(out, "totalStatusEnrollmentCount", (double)total);
    data = cJSON_AddArrayToObject(out, "data");
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(data, status_row(c, &users[i]));
    free(users);
    api_reply_ok(c, out, "Enrollment status of users");
    return FA_OK;
}

void fa_api_status_all(void *app, struct fa_http_req *req, struct fa_http_reply *reply)
{
    api_run(app, req, reply, API_CUSTOMER, status_all);
}
