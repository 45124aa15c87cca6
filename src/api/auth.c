/*
 * auth.c — login and logout: access tokens for customers.
 */
#include "api_int.h"

#include <string.h>

#include "faceauth/crypto.h"

static enum fa_rc login(struct fa_call *c)
{
    const char *name;
    const char *password;
    char token[FA_TOKEN_CHARS + 1];
    cJSON *out;
    enum fa_rc rc = api_string(c, "customerName", 1, &name);
    if (rc == FA_OK)
        rc = api_string(c, "password", 1, &password);
    if (rc == FA_OK)
        rc = fa_store_login(c->app->store, name, password, c->app->cfg->token_ttl_s, token,
                            &c->err);
    if (rc != FA_OK)
        return rc;
    out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "accessToken", token);
    cJSON_AddNumberToObject(out, "expiresIn", (double)c->app->cfg->token_ttl_s);
    fa_crypto_wipe(token, sizeof token);
    api_reply_ok(c, out, "Login successful");
    return FA_OK;
}

void fa_api_login(void *app, struct fa_http_req *req, struct fa_http_reply *reply)
{
    api_run(app, req, reply, API_PUBLIC, login);
}

static enum fa_rc logout(struct fa_call *c)
{
    enum fa_rc rc = fa_store_token_revoke(c->app->store, c->customer_id, api_token(c), &c->err);
    if (rc == FA_OK)
        api_reply_ok(c, cJSON_CreateObject(), "Logged out; the access token is revoked");
    return rc;
}

void fa_api_logout(void *app, struct fa_http_req *req, struct fa_http_reply *reply)
{
    api_run(app, req, reply, API_CUSTOMER, logout);
}
