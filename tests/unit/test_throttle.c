/*
 * test_throttle.c — failure throttles in the store (store_throttle.c):
 * delays, the sliding window, locks and their growth, clearing, unlock,
 * keys kept apart, rows going with their user, a lock surviving a reopen,
 * and concurrent failures counted exactly. Times are passed in, so nothing
 * sleeps.
 */
#include <pthread.h>

#include "faceauth/crypto.h"
/* The fixture's record builders are for the other store tests. */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "store_fixture.h"

#define T0 1000000

static const struct fa_throttle_policy LOGIN = {3, 60, 100, 400, 1};

static struct fa_throttle_key login_key(const char *name, const char *addr)
{
    struct fa_throttle_key k = {name, addr, 0, NULL};
    return k;
}

static struct fa_throttle_key user_key(int64_t id, const char *kind)
{
    struct fa_throttle_key k = {NULL, NULL, id, kind};
    return k;
}

static long wait_at(struct fa_store *st, const struct fa_throttle_key *k, int64_t now)
{
    struct fa_throttle_state s;
    struct fa_err err = {{0}};
    if (fa_store_throttle_check(st, k, now, &s, &err) != FA_OK) {
        tap_diag("check: %s", err.msg);
        return -1;
    }
    return s.wait_s;
}

static enum fa_rc fail_at(struct fa_store *st, const struct fa_throttle_key *k,
                          const struct fa_throttle_policy *p, int64_t now,
                          struct fa_throttle_state *s)
{
    struct fa_err err = {{0}};
    return fa_store_throttle_fail(st, k, p, now, s, &err);
}

static void test_delays_and_lock(struct fa_store *st)
{
    struct fa_throttle_key k = login_key("acme", "192.0.2.1");
    struct fa_throttle_state s;

    TAP_OK(wait_at(st, &k, T0) == 0);
    TAP_OK(fail_at(st, &k, &LOGIN, T0, &s) == FA_OK && s.failures == 1 && s.wait_s == 1 &&
           !s.locked_now);
    TAP_OK(wait_at(st, &k, T0) == 1);
    /* Too early: refused and not counted. */
    TAP_OK(fail_at(st, &k, &LOGIN, T0, &s) == FA_ELIMIT && s.wait_s == 1);
    TAP_OK(fail_at(st, &k, &LOGIN, T0 + 1, &s) == FA_OK && s.failures == 2 && s.wait_s == 2);
    TAP_OK(wait_at(st, &k, T0 + 2) == 1);
    TAP_OK(fail_at(st, &k, &LOGIN, T0 + 3, &s) == FA_OK && s.locked_now && s.wait_s == 100);
    TAP_OK(wait_at(st, &k, T0 + 50) == 53);
    TAP_OK(fail_at(st, &k, &LOGIN, T0 + 50, &s) == FA_ELIMIT && s.wait_s == 53);
    TAP_OK(wait_at(st, &k, T0 + 103) == 0);
    /* Each later lock doubles, up to max_lock_s. */
    int64_t t = T0 + 103;
    long want[] = {200, 400, 400};
    for (int lock = 0; lock < 3; lock++) {
        for (int i = 0; i < 3; i++) {
            TAP_OK(fail_at(st, &k, &LOGIN, t, &s) == FA_OK);
            t += s.wait_s;
        }
        tap_ok(s.locked_now && s.wait_s == want[lock], "lock %d lasts %ld s (want %ld)",
               lock + 2, s.wait_s, want[lock]);
    }
    /* A success clears everything, the growth too. */
    TAP_OK(fa_store_throttle_clear(st, &k, NULL) == FA_OK);
    TAP_OK(wait_at(st, &k, t - 1) == 0);
    for (int i = 0; i < 3; i++) {
        TAP_OK(fail_at(st, &k, &LOGIN, t, &s) == FA_OK);
        t += s.wait_s;
    }
    TAP_OK(s.locked_now && s.wait_s == 100);
    TAP_OK(fa_store_throttle_clear(st, &k, NULL) == FA_OK);
}

static void test_window(struct fa_store *st)
{
    static const struct fa_throttle_policy p = {3, 60, 900, 900, 0};
    struct fa_throttle_key k = user_key(0, "authenticate");
    struct fa_throttle_key other = login_key("acme", "192.0.2.9");
    struct fa_throttle_state s;

    /* user_id 0 names no user: not throttled, nothing written. */
    TAP_OK(fail_at(st, &k, &p, T0, &s) == FA_OK && s.failures == 0);
    TAP_OK(q_int("SELECT count(*) FROM user_throttle") == 0);
    /* The window slides: the failure at T0 drops out before the third. */
    TAP_OK(fail_at(st, &other, &p, T0, &s) == FA_OK && s.wait_s == 0 && s.failures == 1);
    TAP_OK(fail_at(st, &other, &p, T0 + 30, &s) == FA_OK && s.failures == 2);
    TAP_OK(fail_at(st, &other, &p, T0 + 70, &s) == FA_OK && s.failures == 2 && !s.locked_now);
    TAP_OK(fail_at(st, &other, &p, T0 + 80, &s) == FA_OK && s.locked_now && s.wait_s == 900);
    /* Without a delay, failures below the limit never make anyone wait. */
    TAP_OK(wait_at(st, &other, T0 + 80 + 900) == 0);
    TAP_OK(fa_store_throttle_clear(st, &other, NULL) == FA_OK);
}

static void test_keys_apart(struct fa_store *st, int64_t alice, int64_t bob)
{
    static const struct fa_throttle_policy p = {2, 60, 900, 900, 0};
    struct fa_throttle_key a = login_key("acme", "192.0.2.1");
    struct fa_throttle_key a2 = login_key("acme", "192.0.2.2");
    struct fa_throttle_key g = login_key("globex", "192.0.2.1");
    struct fa_throttle_key bad = login_key("bad name\n", "192.0.2.1");
    struct fa_throttle_key ua = user_key(alice, "authenticate");
    struct fa_throttle_key ue = user_key(alice, "enroll");
    struct fa_throttle_key ub = user_key(bob, "authenticate");
    struct fa_throttle_key uk = user_key(alice, "search");
    struct fa_throttle_state s;

    fail_at(st, &a, &p, T0, &s);
    TAP_OK(fail_at(st, &a, &p, T0, &s) == FA_OK && s.locked_now);
    TAP_OK(wait_at(st, &a2, T0) == 0 && wait_at(st, &g, T0) == 0);
    /* A name that can never log in is not throttled (and not stored). */
    TAP_OK(fail_at(st, &bad, &p, T0, &s) == FA_OK && wait_at(st, &bad, T0) == 0);
    TAP_OK(q_int("SELECT count(*) FROM login_throttle WHERE customer_name LIKE 'bad%%'") == 0);
    fail_at(st, &ua, &p, T0, &s);
    TAP_OK(fail_at(st, &ua, &p, T0, &s) == FA_OK && s.locked_now);
    TAP_OK(wait_at(st, &ue, T0) == 0 && wait_at(st, &ub, T0) == 0);
    TAP_OK(fail_at(st, &uk, &p, T0, &s) == FA_OK && s.failures == 0);
    TAP_OK(fail_at(st, &ue, &p, T0, &s) == FA_OK && s.failures == 1);
    TAP_OK(fail_at(st, &ub, &p, T0, &s) == FA_OK && s.failures == 1);
    fail_at(st, &a2, &p, T0, &s);
    fail_at(st, &g, &p, T0, &s);
}

static void test_unlock(struct fa_store *st)
{
    struct fa_throttle_key a = login_key("acme", "192.0.2.1");
    struct fa_throttle_key g = login_key("globex", "192.0.2.1");
    struct fa_err err = {{0}};
    int n = -1;

    TAP_OK(wait_at(st, &a, T0) > 0);
    /* acme: 2 login rows and 2 rows of alice (authenticate, enroll), 1 of bob. */
    TAP_OK(fa_store_customer_unlock(st, "acme", &n, &err) == FA_OK);
    tap_ok(n == 5, "unlock acme cleared %d rows", n);
    TAP_OK(wait_at(st, &a, T0) == 0);
    TAP_OK(q_int("SELECT count(*) FROM user_throttle") == 0);
    TAP_OK(q_int("SELECT count(*) FROM login_throttle") == 1); /* globex's */
    /* globex exists as login rows only (no such customer): still unlockable. */
    TAP_OK(fa_store_customer_unlock(st, "globex", &n, &err) == FA_OK && n == 1);
    TAP_OK(wait_at(st, &g, T0) == 0);
    TAP_OK(fa_store_customer_unlock(st, "nobody", &n, &err) == FA_ENOTFOUND && n == 0);
    tap_ok(strstr(err.msg, "nobody") != NULL, "unknown customer named: %s", err.msg);
    TAP_OK(fa_store_customer_unlock(st, "acme", &n, &err) == FA_OK && n == 0);
    TAP_OK(fa_store_customer_unlock(st, "bad name", &n, &err) == FA_EINVAL);
}

static void test_purge_and_cascade(struct fa_store *st, int64_t cid)
{
    static const struct fa_throttle_policy p = {5, 60, 100, 100, 0};
    struct fa_throttle_key old = login_key("ghost1", "192.0.2.1");
    struct fa_throttle_key fresh = login_key("ghost2", "192.0.2.1");
    struct fa_throttle_state s;
    struct fa_user u;
    struct fa_err err = {{0}};
    char **paths = NULL;
    int n = 0;
    int64_t uid = 0;

    fail_at(st, &old, &p, T0, &s);
    fail_at(st, &fresh, &p, T0 + 101, &s); /* old's row is past window and lock */
    TAP_OK(q_int("SELECT count(*) FROM login_throttle WHERE customer_name = 'ghost1'") == 0);
    TAP_OK(q_int("SELECT count(*) FROM login_throttle WHERE customer_name = 'ghost2'") == 1);
    user_init(&u, cid, "carol");
    if (!TAP_OK(fa_store_user_create(st, &u, &err) == FA_OK))
        return;
    struct fa_throttle_key k = user_key(u.id, "authenticate");
    fail_at(st, &k, &p, T0, &s);
    TAP_OK(q_int("SELECT count(*) FROM user_throttle WHERE user_id = %lld", (long long)u.id) == 1);
    TAP_OK(fa_store_user_delete(st, cid, "carol", &uid, &paths, &n, &err) == FA_OK);
    fa_store_paths_free(paths, n);
    TAP_OK(q_int("SELECT count(*) FROM user_throttle WHERE user_id = %lld", (long long)u.id) == 0);
}

/* ---- concurrent failures ---- */

struct racer {
    struct fa_store *st;
    int64_t user_id;
    enum fa_rc rc;
};

static void *race(void *arg)
{
    static const struct fa_throttle_policy p = {5, 60, 900, 900, 0};
    struct racer *r = arg;
    struct fa_throttle_key k = user_key(r->user_id, "authenticate");
    struct fa_throttle_state s;
    r->rc = fail_at(r->st, &k, &p, T0, &s);
    return NULL;
}

static void test_concurrent(struct fa_store *st, int64_t user_id)
{
    enum { N = 12 };
    pthread_t tid[N];
    struct racer r[N];
    int ok = 0, limited = 0;
    for (int i = 0; i < N; i++) {
        r[i].st = st;
        r[i].user_id = user_id;
        pthread_create(&tid[i], NULL, race, &r[i]);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(tid[i], NULL);
        ok += r[i].rc == FA_OK;
        limited += r[i].rc == FA_ELIMIT;
    }
    tap_ok(ok == 5 && limited == N - 5,
           "12 concurrent failures: exactly 5 counted, 7 refused (%d, %d)", ok, limited);
}

static void test_reopen(int64_t user_id)
{
    struct fa_store *st2 = NULL;
    struct fa_err err = {{0}};
    struct fa_throttle_key k = user_key(user_id, "authenticate");
    if (!TAP_OK(fa_store_open(g_db, &st2, &err) == FA_OK))
        return;
    tap_ok(wait_at(st2, &k, T0 + 10) == 890, "the lock survives a reopen");
    fa_store_free(st2);
}

static void backend_body(void)
{
    struct fa_store *st = NULL;
    struct fa_err err = {{0}};
    struct fa_user alice, bob;

    if (!tap_ok(fa_store_open(g_db, &st, &err) == FA_OK, "open: %s", err.msg))
        goto out;
    if (!TAP_OK(raw_open()))
        goto out;
    if (!TAP_OK(fa_store_customer_add(st, "acme", "pw-acme", &err) == FA_OK))
        goto out;
    user_init(&alice, 1, "alice");
    user_init(&bob, 1, "bob");
    if (!TAP_OK(fa_store_user_create(st, &alice, &err) == FA_OK &&
                fa_store_user_create(st, &bob, &err) == FA_OK))
        goto out;
    test_delays_and_lock(st);
    test_window(st);
    test_keys_apart(st, alice.id, bob.id);
    test_unlock(st);
    test_purge_and_cascade(st, 1);
    test_concurrent(st, alice.id);
    test_reopen(alice.id);
out:
    fa_store_free(st);
}

int main(void)
{
    return fixture_main("fa_test_throttle", backend_body);
}
