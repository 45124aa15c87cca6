/*
 * common.c — request parsing, authentication and reply helpers of the API
 * (see api_int.h).
 */
#include "api_int.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static enum fa_rc parse_body(struct fa_call *c)
{
    size_t n = 0;
    const uint8_t *body = fa_http_req_body(c->req, &n);
    if (n == 0)
        return fa_err_set(&c->err, FA_EINVAL, "request body is empty; send a JSON object");
    c->body = cJSON_ParseWithLength((const char *)body, n);
    if (c->body == NULL)
        return fa_err_set(&c->err, FA_EINVAL, "request body is not valid JSON");
    if (!cJSON_IsObject(c->body))
        return fa_err_set(&c->err, FA_EINVAL, "request body must be a JSON object");
    return FA_OK;
}

const char *api_token(const struct fa_call *c)
{
    const char *h = fa_http_req_header(c->req, "Authorization");
    if (h == NULL)
        return NULL;
    while (*h == ' ')
        h++;
    if (strncasecmp(h, "Bearer ", 7) == 0)
        h += 7;
    while (*h == ' ')
        h++;
    return *h != '\0' ? h : NULL;
}

static enum fa_rc authenticate_customer(struct fa_call *c)
{
    const char *token = api_token(c);
    enum fa_rc rc = api_string(c, "customerName", 1, &c->customer_name);
    if (rc != FA_OK)
        return rc;
    if (token == NULL)
        return fa_err_set(&c->err, FA_EAUTH, "missing access token: send it in the "
                                             "Authorization header");
    return fa_store_token_check(c->app->store, c->customer_name, token, &c->customer_id,
                                &c->err);
}

enum fa_rc api_begin(struct fa_call *c, void *app, struct fa_http_req *req,
                     struct fa_http_reply *reply, enum api_auth auth)
{
    enum fa_rc rc;
    memset(c, 0, sizeof *c);
    c->app = app;
    c->req = req;
    c->reply = reply;
    rc = parse_body(c);
    if (rc == FA_OK && auth == API_CUSTOMER)
        rc = authenticate_customer(c);
    return rc;
}

void api_finish(struct fa_call *c, enum fa_rc rc)
{
    if (rc != FA_OK && c->reply->json == NULL && c->reply->bytes == NULL)
        fa_http_reply_error(c->reply, rc, c->err.msg);
    cJSON_Delete(c->body);
    c->body = NULL;
}

enum fa_rc api_string(struct fa_call *c, const char *field, int required, const char **out)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(c->body, field);
    *out = NULL;
    if (item == NULL || cJSON_IsNull(item)) {
        if (required)
            return fa_err_set(&c->err, FA_EINVAL, "%s is required", field);
        return FA_OK;
    }
    if (!cJSON_IsString(item))
        return fa_err_set(&c->err, FA_EINVAL, "%s must be a string", field);
    if (required && item->valuestring[0] == '\0')
        return fa_err_set(&c->err, FA_EINVAL, "%s must not be empty", field);
    *out = item->valuestring;
    return FA_OK;
}

enum fa_rc api_user_name(struct fa_call *c, int required, const char **out)
{
    enum fa_rc rc = api_string(c, "userName", 0, out);
    if (rc == FA_OK && *out == NULL)
        rc = api_string(c, "username", 0, out);
    if (rc == FA_OK && *out == NULL && required)
        rc = fa_err_set(&c->err, FA_EINVAL, "userName is required");
    return rc;
}

enum fa_rc api_yes_no(struct fa_call *c, const char *field, int dflt, int *out)
{
    static const char *const words[] = {"no", "yes"};
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(c->body, field);
    if (cJSON_IsBool(item)) {
        *out = cJSON_IsTrue(item);
        return FA_OK;
    }
    return api_choice(c, field, words, 2, dflt, out);
}

enum fa_rc api_choice(struct fa_call *c, const char *field, const char *const *choices,
                      int n_choices, int dflt, int *out)
{
    const char *text;
    enum fa_rc rc = api_string(c, field, 0, &text);
    *out = dflt;
    if (rc != FA_OK || text == NULL)
        return rc;
    for (int i = 0; i < n_choices; i++) {
        if (strcasecmp(text, choices[i]) == 0) {
            *out = i;
            return FA_OK;
        }
    }
    if (n_choices == 2)
        return fa_err_set(&c->err, FA_EINVAL, "%s must be \"%s\" or \"%s\"", field, choices[0],
                          choices[1]);
    return fa_err_set(&c->err, FA_EINVAL, "%s has an unsupported value", field);
}

enum fa_rc api_user(struct fa_call *c, const char *user_name, struct fa_user *out)
{
    enum fa_rc rc = fa_store_user_get(c->app->store, c->customer_id, user_name, out, &c->err);
    if (rc == FA_ENOTFOUND)
        fa_err_set(&c->err, rc, "user '%.64s' not found", user_name);
    return rc;
}

/* A Host header is only trusted as far as its characters go: anything that
 * could break out of a URL is refused and the listen address used instead. */
static int host_is_clean(const char *host)
{
    if (host == NULL || *host == '\0' || strlen(host) > 200)
        return 0;
    for (const char *p = host; *p; p++)
        if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]", *p) ==
            NULL)
            return 0;
    return 1;
}

void api_base_url(const struct fa_call *c, char *out, size_t cap)
{
    const char *host = fa_http_req_header(c->req, "Host");
    size_t n;
    if (c->app->cfg->public_url[0] != '\0')
        snprintf(out, cap, "%s", c->app->cfg->public_url);
    else if (host_is_clean(host))
        snprintf(out, cap, "http://%s", host);
    else
        snprintf(out, cap, "http://127.0.0.1:%d", c->app->cfg->port);
    n = strlen(out);
    if (n > 0 && out[n - 1] == '/')
        out[n - 1] = '\0';
}

void api_add_image_link(const struct fa_call *c, cJSON *obj, const char *field, const char *id)
{
    char base[300];
    char sig[FA_DIGEST_HEX + 1];
    char url[600];
    long long expires = (long long)time(NULL) + c->app->cfg->link_ttl_s;
    if (id == NULL || id[0] == '\0') {
        cJSON_AddStringToObject(obj, field, "");
        return;
    }
    api_base_url(c, base, sizeof base);
    fa_media_sign(c->app->media, id, expires, sig);
    snprintf(url, sizeof url, "%s" FA_API_BASE "face/%s?expires=%lld&signature=%s", base, id,
             expires, sig);
    cJSON_AddStringToObject(obj, field, url);
}

void api_enrollment_url(const struct fa_call *c, const char *token, char *out, size_t cap)
{
    char base[300];
    api_base_url(c, base, sizeof base);
    snprintf(out, cap, "%s/enroll/%s", base, token);
}

void api_reply_ok(struct fa_call *c, cJSON *fields, const char *message)
{
    cJSON_AddStringToObject(fields, "message", message);
    cJSON_AddStringToObject(fields, "status", "200 OK");
    fa_http_reply_json(c->reply, 200, fields);
}

enum fa_rc api_fetch(struct fa_call *c, const char *url, uint8_t **bytes, size_t *n)
{
    enum fa_rc rc = fa_fetch_image(url, &c->app->fetch, bytes, n, &c->err);
    /* An oversized image named by URL is a bad field, not an oversized
     * request body: 413 stays reserved for the body cap. */
    if (rc == FA_ETOOBIG)
        rc = FA_EINVAL;
    if (rc != FA_OK && strncmp(c->err.msg, "url", 3) != 0) {
        char inner[FA_ERR_MAX];
        snprintf(inner, sizeof inner, "%s", c->err.msg);
        fa_err_set(&c->err, rc, "url: %s", inner);
    }
    return rc;
}

const char *api_image_ext(enum fa_image_kind kind)
{
    switch (kind) {
    case FA_IMG_PNG: return "png";
    case FA_IMG_WEBP: return "webp";
    case FA_IMG_BMP: return "bmp";
    default: return "jpg";
    }
}
