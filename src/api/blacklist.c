/*
 * blacklist.c — user/blacklist, user/whitelist, view/blacklist/all.
 * A blacklisted user always fails authenticate and is marked in search.
 */
#include "api_int.h"

#include <stdlib.h>

static enum fa_rc set_blacklisted(struct fa_call *c, int on)
{
    const char *name;
    cJSON *out;
    enum fa_rc rc = api_user_name(c, 1, &name);
    if (rc == FA_OK)
        rc = fa_store_user_blacklist(c->app->store, c->customer_id, name, on, &c->err);
    if (rc == FA_ENOTFOUND)
        fa_err_set(&c->err, rc, "user '%.64s' not found", name);
    if (rc != FA_OK)
        return rc;
    out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "userName", name);
    cJSON_AddStringToObject(out, "blacklistState", on ? "yes" : "no");
    api_reply_ok(c, out, on ? "User blacklisted" : "User whitelisted");
    return FA_OK;
}

static enum fa_rc blacklist(struct fa_call *c) { return set_blacklisted(c, 1); }
static enum fa_rc whitelist(struct fa_call *c) { return set_blacklisted(c, 0); }

void fa_api_blacklist(void *app, struct fa_http_req *req, struct fa_http_reply *reply)
{
    api_run(app, req, reply, API_CUSTOMER, blacklist);
}

void fa_api_whitelist(void *app, struct fa_http_req *req, struct fa_http_reply *reply)
{
    api_run(app, req, reply, API_CUSTOMER, whitelist);
}

/* Every blacklisted user, newest first, walked page by page (100 a page). */
static enum fa_rc blacklist_all(struct fa_call *c)
{
    struct fa_user_filter f = {.state = -1, .blacklisted_only = 1, .page = 1, .page_count = 100};
    cJSON *out = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(out, "blacklistedUsers");
    long total = 0;
    enum fa_rc rc = FA_OK;
    do {
        struct fa_user *users = NULL;
        int n = 0;
        rc = fa_store_users_list(c->app->store, c->customer_id, &f, &users, &n, &total, &c->err);
        for (int i = 0; rc == FA_OK && i < n; i++) {
            cJSON *row = cJSON_CreateObject();
            cJSON_AddStringToObject(row, "userName", users[i].user_name);
            cJSON_AddStringToObject(row, "fullName", users[i].full_name);
            api_add_date(row, "timeStamp", users[i].blacklisted_at);
            cJSON_AddItemToArray(list, row);
        }
        free(users);
        f.page++;
    } while (rc == FA_OK && (long)(f.page - 1) * f.page_count < total);
    if (rc != FA_OK) {
        cJSON_Delete(out);
        return rc;
    }
    api_reply_ok(c, out, "Blacklisted users");
    return FA_OK;
}

void fa_api_blacklist_all(void *app, struct fa_http_req *req, struct fa_http_reply *reply)
{
    api_run(app, req, reply, API_CUSTOMER, blacklist_all);
}
