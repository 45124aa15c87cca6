/*
 * test_store_enroll.c — the enrollment page's part of the store: the user
 * behind a token across customers with the token's issue time (kept by the
 * triggers of migration 2), and the per-user attempt count with its window.
 */
#include "faceauth/crypto.h"

/* The fixture's record and image builders are not needed here. */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "store_fixture.h"

static int64_t customer_new(struct fa_store *st, const char *name)
{
    struct fa_err err = {{0}};

    if (fa_store_customer_add(st, name, "pw", &err) != FA_OK) {
        tap_diag("customer %s: %s", name, err.msg);
        return 0;
    }
    return q_int("SELECT id FROM customers WHERE name = '%s'", name);
}

static void user_new(struct fa_store *st, int64_t customer_id, const char *name, struct fa_user *u)
{
    struct fa_err err = {{0}};

    user_init(u, customer_id, name);
    if (fa_store_user_create(st, u, &err) != FA_OK) {
        tap_diag("user %s: %s", name, err.msg);
        u->id = 0;
    }
}

static void test_link(struct fa_store *st, int64_t acme, int64_t globex)
{
    struct fa_user a, g, out;
    struct fa_user_changes reset = {0};
    struct fa_err err = {{0}};
    int64_t issued = -1;
    char old_token[FA_TOKEN_CHARS + 1];

    user_new(st, acme, "ann", &a);
    user_new(st, globex, "gus", &g);
    /* No customer is given: the token alone finds its user. */
    TAP_OK(fa_store_enroll_link(st, g.enroll_token, &out, &issued, &err) == FA_OK &&
           out.id == g.id && out.customer_id == globex && strcmp(out.user_name, "gus") == 0);
    TAP_OK(issued == g.created && issued > 0);
    TAP_OK(fa_store_enroll_link(st, "short", &out, &issued, &err) == FA_ENOTFOUND &&
           strstr(err.msg, "unknown enrollment token") != NULL && out.id == 0);
    TAP_OK(fa_store_enroll_link(st, NULL, &out, &issued, &err) == FA_ENOTFOUND);
    {
        char other[FA_TOKEN_CHARS + 1];
        fa_crypto_token_new(other);
        TAP_OK(fa_store_enroll_link(st, other, &out, &issued, &err) == FA_ENOTFOUND);
    }
    /* A new token is issued now (the reset's time) and the old one is dead. */
    memcpy(old_token, a.enroll_token, sizeof old_token);
    fa_db_exec(g_raw, "UPDATE users SET enroll_issued = 5, created = 5 WHERE user_name = 'ann'");
    reset.reset_face = 1;
    TAP_OK(fa_store_user_update(st, acme, "ann", &reset, &a, &err) == FA_OK);
    TAP_OK(fa_store_enroll_link(st, old_token, &out, &issued, &err) == FA_ENOTFOUND);
    TAP_OK(fa_store_enroll_link(st, a.enroll_token, &out, &issued, &err) == FA_OK &&
           out.id == a.id && issued == a.updated && issued > 5);
    /* A change that leaves the token alone leaves its issue time alone. */
    fa_db_exec(g_raw, "UPDATE users SET enroll_issued = 7 WHERE user_name = 'ann'");
    {
        struct fa_user_changes phone = {0};
        phone.phone = "+15550199";
        TAP_OK(fa_store_user_update(st, acme, "ann", &phone, &a, &err) == FA_OK);
    }
    TAP_OK(q_int("SELECT enroll_issued FROM users WHERE user_name = 'ann'") == 7);
}

static int attempt(struct fa_store *st, int64_t user_id, int64_t now)
{
    struct fa_err err = {{0}};
    int allowed = -1;

    if (fa_store_enroll_attempt(st, user_id, now, 3600, 3, &allowed, &err) != FA_OK) {
        tap_diag("attempt: %s", err.msg);
        return -1;
    }
    return allowed;
}

static void test_attempts(struct fa_store *st, int64_t acme)
{
    struct fa_user u, v;
    struct fa_user_changes reset = {0};
    struct fa_err err = {{0}};
    int64_t t0 = 1000000;

    user_new(st, acme, "tries", &u);
    user_new(st, acme, "other", &v);
    TAP_OK(attempt(st, u.id, t0) == 1 && attempt(st, u.id, t0 + 10) == 1 &&
           attempt(st, u.id, t0 + 20) == 1);
    TAP_OK(attempt(st, u.id, t0 + 30) == 0); /* the fourth within the hour */
    TAP_OK(q_int("SELECT count(*) FROM enroll_attempts WHERE user_id = %lld", (long long)u.id) ==
           3); /* a refused attempt is not written */
    TAP_OK(attempt(st, v.id, t0 + 30) == 1); /* per user */
    TAP_OK(attempt(st, u.id, t0 + 3600) == 1); /* the first has left the window */
    TAP_OK(q_int("SELECT count(*) FROM enroll_attempts WHERE user_id = %lld", (long long)u.id) ==
           3); /* and was dropped */
    /* A new link starts with none. */
    reset.reset_face = 1;
    TAP_OK(fa_store_user_update(st, acme, "tries", &reset, &u, &err) == FA_OK);
    TAP_OK(q_int("SELECT count(*) FROM enroll_attempts WHERE user_id = %lld", (long long)u.id) ==
           0);
    TAP_OK(attempt(st, u.id, t0 + 3601) == 1);
    /* Deleting the user deletes its attempts. */
    {
        char **paths = NULL;
        int n = 0;
        int64_t id = 0;
        TAP_OK(fa_store_user_delete(st, acme, "tries", &id, &paths, &n, &err) == FA_OK);
        fa_store_paths_free(paths, n);
    }
    TAP_OK(q_int("SELECT count(*) FROM enroll_attempts WHERE user_id = %lld", (long long)u.id) ==
           0);
}

static void backend_body(void)
{
    struct fa_store *st = NULL;
    struct fa_err err = {{0}};
    int64_t acme, globex;

    if (!tap_ok(fa_store_open(g_db, &st, &err) == FA_OK, "open: %s", err.msg))
        goto out;
    if (!TAP_OK(raw_open()))
        goto out;
    acme = customer_new(st, "acme");
    globex = customer_new(st, "globex");
    if (TAP_OK(acme > 0 && globex > 0)) {
        test_link(st, acme, globex);
        test_attempts(st, acme);
    }
out:
    fa_store_free(st);
}

int main(void)
{
    return fixture_main("fa_test_store_enroll", backend_body);
}
