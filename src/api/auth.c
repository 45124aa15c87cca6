/*
 * auth.c — login and logout: access tokens for customers.
 *
 * Login is the one endpoint anyone can call that costs a core and 64 MiB
 * (the Argon2id check), so it is limited twice: hashes at once
 * (app->login_slots) and failures per (customerName, client address)
 * (throttle.c).
 */
#include "api_int.h"

#include <string.h>

#include "faceauth/crypto.h"

/*
 * The password check under both limits: none at all while (name, address)
 * is delayed or locked, and only with one of the hash slots, so a storm
 * of logins is answered 429 at once instead of every request waiting for
 * a core (and /healthz with them). The slot is held only around the hash.
 */
static enum fa_rc check_password(struct fa_call *c, const char *name, const char *password,
                                 char token[FA_TOKEN_CHARS + 1])
{
    char address[API_ADDR_MAX];
    enum fa_rc rc;
    api_client_key(c, address);
    rc = api_login_check(c, name, address);
    if (rc != FA_OK)
        return rc;
    if (!fa_api_slots_acquire(c->app->login_slots)) {
        c->reply->retry_after_s = 1;
        return fa_err_set(&c->err, FA_ELIMIT, "too many logins at once; try again in 1 s");
    }
    rc = fa_store_login(c->app->store, name, password, c->app->cfg->token_ttl_s, token, &c->err);
    fa_api_slots_release(c->app->login_slots);
    api_login_done(c, name, address, rc);
    return rc;
}

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
        rc = check_password(c, name, password, token);
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
