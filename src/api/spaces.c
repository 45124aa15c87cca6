/*
 * spaces.c — searchspace/store, searchspace/delete, view/searchspace/user:
 * named lists of users that limit a search.
 */
#include "api_int.h"

#include <stdlib.h>

#define SPACE_MAX_USERS 10000

/* users: a list of userName strings, gathered into a new array (free()). */
static enum fa_rc parse_users(struct fa_call *c, const char ***names, int *n)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(c->body, "users");
    const cJSON *item;
    int size;
    *names = NULL;
    *n = 0;
    if (list == NULL || cJSON_IsNull(list))
        return fa_err_set(&c->err, FA_EINVAL, "users is required");
    if (!cJSON_IsArray(list))
        return fa_err_set(&c->err, FA_EINVAL, "users must be a list of userNames");
    size = cJSON_GetArraySize(list);
    if (size > SPACE_MAX_USERS)
        return fa_err_set(&c->err, FA_EINVAL, "users holds more than %d names", SPACE_MAX_USERS);
    *names = calloc((size_t)size + 1, sizeof **names);
    if (*names == NULL)
        return fa_err_set(&c->err, FA_ENOMEM, "out of memory");
    cJSON_ArrayForEach(item, list) {
        if (!cJSON_IsString(item))
            return fa_err_set(&c->err, FA_EINVAL, "users must hold only strings");
        (*names)[(*n)++] = item->valuestring;
    }
    return FA_OK;
}

static enum fa_rc space_store(struct fa_call *c)
{
    const char *name;
    const char **users = NULL;
    int n = 0;
    cJSON *out;
    enum fa_rc rc = api_string(c, "name", 1, &name);
    if (rc == FA_OK)
        rc = parse_users(c, &users, &n);
    if (rc == FA_OK)
        rc = fa_store_space_store(c->app->store, c->customer_id, name, users, n, &c->err);
    free(users);
    if (rc != FA_OK)
        return rc;
    out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "name", name);
    api_reply_ok(c, out, "Search space stored");
    return FA_OK;
}

void fa_api_space_store(void *app, struct fa_http_req *req, struct fa_http_reply *reply)
{
    api_run(app, req, reply, API_CUSTOMER, space_store);
}

static enum fa_rc space_delete(struct fa_call *c)
{
    const char *name;
    enum fa_rc rc = api_string(c, "name", 1, &name);
    if (rc == FA_OK)
        rc = fa_store_space_delete(c->app->store, c->customer_id, name, &c->err);
    if (rc == FA_ENOTFOUND)
        fa_err_set(&c->err, rc, "search space '%.64s' not found", name);
    if (rc == FA_OK)
        api_reply_ok(c, cJSON_CreateObject(), "Search space deleted");
    return rc;
}

void fa_api_space_delete(void *app, struct fa_http_req *req, struct fa_http_reply *reply)
{
    api_run(app, req, reply, API_CUSTOMER, space_delete);
}

static enum fa_rc space_view(struct fa_call *c)
{
    const char *name;
    struct fa_space *spaces = NULL;
    int n = 0;
    cJSON *out, *list;
    enum fa_rc rc = api_string(c, "name", 0, &name);
    if (rc == FA_OK)
        rc = fa_store_space_list(c->app->store, c->customer_id, name, &spaces, &n, &c->err);
    if (rc == FA_ENOTFOUND)
        fa_err_set(&c->err, rc, "search space '%.64s' not found", name);
    if (rc != FA_OK)
        return rc;
    out = cJSON_CreateObject();
    list = cJSON_AddArrayToObject(out, "searchSpaces");
    for (int i = 0; i < n; i++) {
        cJSON *row = cJSON_CreateObject();
        cJSON *users = cJSON_AddArrayToObject(row, "users");
        cJSON_AddStringToObject(row, "name", spaces[i].name);
        for (int j = 0; j < spaces[i].n_users; j++)
            cJSON_AddItemToArray(users, cJSON_CreateString(spaces[i].users[j]));
        cJSON_AddItemToArray(list, row);
    }
    fa_store_spaces_free(spaces, n);
    api_reply_ok(c, out, "Search spaces");
    return FA_OK;
}

void fa_api_space_view(void *app, struct fa_http_req *req, struct fa_http_reply *reply)
{
    api_run(app, req, reply, API_CUSTOMER, space_view);
}
