/*
 * throttle.c — failure limits of login and of each user's face attempts
 * (see api_int.h, api_login_* and api_attempt_*; the counting is
 * store_throttle.c).
 *
 * Login: per (customerName, client address), so an attacker elsewhere
 * cannot lock the customer out, and a locked pair is refused before the
 * password is hashed: the hash is what the attacker wants to spend.
 *
 * Face attempts: per user, across precisions and callers. An attempt is
 * counted as a failure when it starts (after its photo arrived) and only a
 * success clears the count, so a burst of concurrent attempts cannot all
 * slip in before the first of them fails. Bad requests (unreachable URL,
 * missing field) are refused before that and are not counted.
 *
 * Lock events go to stderr with names checked by the store's name rule
 * (no control characters) and never a password.
 */
#include "api_int.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static void login_policy(const struct fa_config *cfg, struct fa_throttle_policy *p)
{
    p->limit = cfg->login_fail_limit;
    p->window_s = cfg->login_fail_window_s;
    p->lock_s = cfg->login_lock_s;
    p->max_lock_s = cfg->login_max_lock_s > cfg->login_lock_s ? cfg->login_max_lock_s
                                                                 : cfg->login_lock_s;
    p->delay_s = cfg->login_fail_delay_s;
}

static void attempt_policy(const struct fa_config *cfg, struct fa_throttle_policy *p)
{
    p->limit = cfg->auth_fail_limit;
    p->window_s = cfg->auth_fail_window_s;
    p->lock_s = cfg->auth_lock_s;
    p->max_lock_s = cfg->auth_lock_s; /* a user's lock does not grow: the user waits, too */
    p->delay_s = 0;
}

/* The client's address as the throttle keys on it: an IPv6 client by its
 * /64, the block one subscriber usually gets, so rotating through the
 * addresses of one's own block does not reset the count. */
void api_client_key(const struct fa_call *c, char out[API_ADDR_MAX])
{
    struct in6_addr a6;
    fa_http_req_client_addr(c->req, out, API_ADDR_MAX);
    if (strchr(out, ':') == NULL || inet_pton(AF_INET6, out, &a6) != 1)
        return;
    if (IN6_IS_ADDR_V4MAPPED(&a6))
        return;
    memset(a6.s6_addr + 8, 0, 8);
    if (inet_ntop(AF_INET6, &a6, out, API_ADDR_MAX) != NULL)
        strncat(out, "/64", API_ADDR_MAX - strlen(out) - 1);
}

enum fa_rc api_login_check(struct fa_call *c, const char *name, const char *address)
{
    struct fa_throttle_key key = {name, address, 0, NULL};
    struct fa_throttle_state st;
    enum fa_rc rc;
    if (c->app->cfg->login_fail_limit == 0)
        return FA_OK;
    rc = fa_store_throttle_check(c->app->store, &key, (int64_t)time(NULL), &st, &c->err);
    if (rc != FA_OK || st.wait_s == 0)
        return rc;
    c->reply->retry_after_s = st.wait_s;
    return fa_err_set(&c->err, FA_ELIMIT,
                      "too many failed logins for this customerName from your address; try "
                      "again in %ld s",
                      st.wait_s);
}

void api_login_done(struct fa_call *c, const char *name, const char *address,
                    enum fa_rc login_rc)
{
    struct fa_throttle_key key = {name, address, 0, NULL};
    struct fa_throttle_policy p;
    struct fa_throttle_state st = {0};
    struct fa_err err = {{0}};
    enum fa_rc rc = FA_OK;
    if (c->app->cfg->login_fail_limit == 0 || (login_rc != FA_OK && login_rc != FA_EAUTH))
        return;
    login_policy(c->app->cfg, &p);
    if (login_rc == FA_OK)
        rc = fa_store_throttle_clear(c->app->store, &key, &err);
    else
        rc = fa_store_throttle_fail(c->app->store, &key, &p, (int64_t)time(NULL), &st, &err);
    /* The login itself is decided: a throttle write that fails is logged,
     * not turned into a 500 for a correct password. */
    if (rc != FA_OK && rc != FA_ELIMIT)
        fprintf(stderr, "faceauth: login throttle: %s\n", err.msg);
    if (st.locked_now)
        fprintf(stderr,
                "faceauth: login locked: customerName '%s' from %s for %ld s after %d failed "
                "logins\n",
                name, address, st.wait_s, p.limit);
}

/* A user key of one kind of attempt. */
static void user_key(const struct fa_user *u, const char *kind, struct fa_throttle_key *key)
{
    memset(key, 0, sizeof *key);
    key->user_id = u->id;
    key->kind = kind;
}

long api_attempt_wait(struct fa_call *c, const struct fa_user *u, const char *kind)
{
    struct fa_throttle_key key;
    struct fa_throttle_state st;
    struct fa_err err = {{0}};
    if (c->app->cfg->auth_fail_limit == 0)
        return 0;
    user_key(u, kind, &key);
    /* Reading failed: go on; the reservation below is the binding check. */
    if (fa_store_throttle_check(c->app->store, &key, (int64_t)time(NULL), &st, &err) != FA_OK)
        return 0;
    return st.wait_s;
}

enum fa_rc api_attempt_reserve(struct fa_call *c, const struct fa_user *u, const char *kind,
                               long *wait_s)
{
    struct fa_throttle_key key;
    struct fa_throttle_policy p;
    struct fa_throttle_state st;
    enum fa_rc rc;
    *wait_s = 0;
    if (c->app->cfg->auth_fail_limit == 0)
        return FA_OK;
    user_key(u, kind, &key);
    attempt_policy(c->app->cfg, &p);
    rc = fa_store_throttle_fail(c->app->store, &key, &p, (int64_t)time(NULL), &st, &c->err);
    if (rc == FA_ELIMIT)
        *wait_s = st.wait_s;
    if (rc == FA_OK && st.locked_now)
        fprintf(stderr,
                "faceauth: %s locked: user '%s' of customer %lld for %ld s after %d failed "
                "attempts\n",
                kind, u->user_name, (long long)c->customer_id, st.wait_s, p.limit);
    return rc;
}

void api_attempt_succeeded(struct fa_call *c, const struct fa_user *u, const char *kind)
{
    struct fa_throttle_key key;
    struct fa_err err = {{0}};
    if (c->app->cfg->auth_fail_limit == 0)
        return;
    user_key(u, kind, &key);
    if (fa_store_throttle_clear(c->app->store, &key, &err) != FA_OK)
        fprintf(stderr, "faceauth: attempt throttle: %s\n", err.msg);
}

void api_attempt_locked_message(const struct fa_user *u, long wait_s, const char *prefix,
                                char *out, size_t cap)
{
    snprintf(out, cap, "%stoo many failed attempts for user '%s'; try again in %ld s", prefix,
             u->user_name, wait_s);
}
