/*
 * test_callback.c — the callback outbox in a real database file, and the
 * pure parts of delivery (signature, secret, backoff). Delivery itself
 * (the thread and the network) is tested end to end in
 * tests/e2e/test_callbacks.py against a real receiver.
 */
#include "faceauth/callback.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faceauth/crypto.h"
#include "faceauth/store.h"
#include "callback/callback_int.h"
#include "store/store_int.h"
#include "store_fixture.h"
#include "tap.h"

static void test_sign(void)
{
    uint8_t key[FA_KEY_BYTES];
    char sig[FA_CB_SIG_MAX];
    const char *body = "{\"a\":1}";

    for (int i = 0; i < FA_KEY_BYTES; i++)
        key[i] = (uint8_t)i;
    fa_callback_sign(key, 1700000000, body, strlen(body), sig);
    /* Python: hmac.new(bytes(range(32)), b'1700000000.{"a":1}', sha256) */
    tap_ok(strcmp(sig, "t=1700000000,v1=03348adc068f3e120398d321e294ed21d5531ba19808733437c88c51d"
                       "9ffdb14") == 0,
           "signature is t=<t>,v1=HMAC-SHA256(\"<t>.<body>\"): %s", sig);
    fa_callback_sign(key, 1700000001, body, strlen(body), sig);
    TAP_OK(strstr(sig, "03348adc") == NULL);
}

static void test_secret(void)
{
    uint8_t key[FA_KEY_BYTES];
    char hex[FA_CB_SECRET_HEX + 1];

    memset(hex, 'a', FA_CB_SECRET_HEX);
    hex[FA_CB_SECRET_HEX] = '\0';
    hex[0] = '0';
    hex[1] = 'f';
    TAP_OK(fa_callback_secret_parse(hex, key) == FA_OK && key[0] == 0x0f && key[31] == 0xaa);
    hex[5] = 'g';
    TAP_OK(fa_callback_secret_parse(hex, key) == FA_EINVAL);
    TAP_OK(fa_callback_secret_parse("", key) == FA_EINVAL);
    TAP_OK(fa_callback_secret_parse("abcd", key) == FA_EINVAL);
}

static void test_backoff(void)
{
    struct fa_callback_opts o;
    long prev_max = 0;
    int ok = 1;

    fa_callback_opts_default(&o);
    TAP_OK(o.connect_timeout_ms == 2000 && o.timeout_ms == 5000 && o.max_attempts == 10);
    TAP_OK(o.retry_max_ms == 3600000 && o.max_parallel == 4 && o.keep_s == 30L * 86400);
    TAP_OK(fa_callback_backoff_ms(&o, 1, 0) == 500);
    TAP_OK(fa_callback_backoff_ms(&o, 1, 500) == 1000);
    TAP_OK(fa_callback_backoff_ms(&o, 2, 0xffffffffu) <= 3000 &&
           fa_callback_backoff_ms(&o, 2, 0) == 1500);
    for (int a = 1; a <= 20; a++) {
        long lo = fa_callback_backoff_ms(&o, a, 0), hi = fa_callback_backoff_ms(&o, a, 1u << 31);
        ok &= lo >= prev_max / 2 && hi <= o.retry_max_ms && lo <= hi;
        prev_max = fa_callback_backoff_ms(&o, a, (uint32_t)-1);
    }
    tap_ok(ok, "backoff grows and stays under retry_max_ms");
    TAP_OK(fa_callback_backoff_ms(&o, 9, 0) >= 1800000);
    TAP_OK(fa_callback_backoff_ms(&o, 100, 0) == 1800000);
    o.retry_base_ms = 200;
    TAP_OK(fa_callback_backoff_ms(&o, 1, 0) == 100);
}

/* ---- the outbox ---- */

static int64_t customer_new(struct fa_store *st, const char *name)
{
    struct fa_err err = {{0}};
    if (fa_store_customer_add(st, name, "pw", &err) != FA_OK) {
        tap_diag("customer %s: %s", name, err.msg);
        return 0;
    }
    return q_int("SELECT id FROM customers WHERE name = '%s'", name);
}

static void set_urls(struct fa_store *st, int64_t customer_id, const char *fail_url)
{
    struct fa_settings s;
    struct fa_err err = {{0}};
    fa_store_settings_get(st, customer_id, &s, &err);
    snprintf(s.auth_failure_cb, sizeof s.auth_failure_cb, "%s", fail_url);
    tap_ok(fa_store_settings_set(st, customer_id, &s, &err) == FA_OK, "set URL: %s", err.msg);
}

/* An authenticate record of user u with a callback event; returns the rc. */
static enum fa_rc auth_event(struct fa_store *st, const struct fa_user *u, int64_t customer_id,
                             int success, struct fa_store_event *ev)
{
    struct fa_store_record r = rec_init(customer_id, u, "authenticate");
    struct fa_err err = {{0}};
    memset(ev, 0, sizeof *ev);
    ev->event = success ? FA_CB_AUTH_SUCCESS : FA_CB_AUTH_FAILURE;
    fa_crypto_random_hex(ev->event_id, FA_EVENT_ID_HEX / 2);
    ev->body = "{\"standin\":1}";
    ev->queued = 1; /* must be overwritten */
    r.success = success;
    r.callback = ev;
    return fa_store_record_commit(st, &r, &err);
}

static void test_outbox_write(struct fa_store *st, int64_t acme, int64_t globex,
                              const struct fa_user *jane)
{
    struct fa_store_event ev;
    struct fa_err err = {{0}};

    TAP_OK(auth_event(st, jane, acme, 0, &ev) == FA_OK && ev.queued == 1);
    TAP_OK(q_int("SELECT count(*) FROM callback_events WHERE event_id = '%s' AND state = 'held'"
                 " AND url = 'http://127.0.0.1:9/fail' AND event = 'failedAuthentication'",
                 ev.event_id) == 1);
    /* No URL for successes: the record is written, no event. */
    TAP_OK(auth_event(st, jane, acme, 1, &ev) == FA_OK && ev.queued == 0);
    TAP_OK(q_int("SELECT count(*) FROM callback_events WHERE event_id = '%s'", ev.event_id) == 0);
    /* A record that rolls back (jane is not globex's) leaves no event. */
    TAP_OK(auth_event(st, jane, globex, 0, &ev) == FA_ENOTFOUND && ev.queued == 0);
    TAP_OK(q_int("SELECT count(*) FROM callback_events WHERE event_id = '%s'", ev.event_id) == 0);
    /* held -> pending with the real body, once. */
    TAP_OK(auth_event(st, jane, acme, 0, &ev) == FA_OK && ev.queued == 1);
    TAP_OK(fa_store_event_ready(st, ev.event_id, "{\"real\":1}", &err) == FA_OK);
    TAP_OK(q_int("SELECT count(*) FROM callback_events WHERE event_id = '%s' AND state = 'pending'"
                 " AND body = '{\"real\":1}'",
                 ev.event_id) == 1);
    TAP_OK(fa_store_event_ready(st, ev.event_id, "{}", &err) == FA_ENOTFOUND);
}

static void test_outbox_due(struct fa_store *st, int64_t acme, int64_t globex,
                            const struct fa_user *jane, const struct fa_user *bob)
{
    struct fa_store_event a1, a2, g1;
    struct fa_cb_due *due = NULL;
    struct fa_cb_counts counts;
    struct fa_err err = {{0}};
    int n = 0, released = 0;
    int64_t next = 0, now = fa_store_now_ms();

    sqlite3_exec(g_raw, "DELETE FROM callback_events", NULL, NULL, NULL);
    auth_event(st, jane, acme, 0, &a1);
    auth_event(st, jane, acme, 0, &a2);
    auth_event(st, bob, globex, 0, &g1);
    /* held events are not due; releasing the ones older than now+1 s frees all */
    TAP_OK(fa_store_events_due(st, now + 1000, 8, &due, &n, &err) == FA_OK && n == 0);
    TAP_OK(fa_store_events_release(st, fa_store_now() + 1, &released, &err) == FA_OK &&
           released == 3);
    TAP_OK(fa_store_events_due(st, fa_store_now_ms() + 1000, 8, &due, &n, &err) == FA_OK);
    tap_ok(n == 2, "one due event per customer (%d)", n);
    if (n == 2) {
        int ia = due[0].customer_id == acme ? 0 : 1;
        TAP_OK(strcmp(due[ia].event_id, a1.event_id) == 0); /* acme's oldest first */
        TAP_OK(strcmp(due[ia].body, "{\"standin\":1}") == 0);
        TAP_OK(strlen(due[1 - ia].secret) == FA_CB_SECRET_HEX); /* globex has a secret */
        TAP_OK(due[ia].secret[0] == '\0');
        TAP_OK(fa_store_event_attempt(st, due[ia].id, "pending", 1, now + 60000, "HTTP 500",
                                      &err) == FA_OK);
        TAP_OK(fa_store_event_attempt(st, due[1 - ia].id, "sent", 1, 0, "", &err) == FA_OK);
    }
    fa_store_due_free(due, n);
    /* a1 waits a minute: a2 is acme's due one now */
    TAP_OK(fa_store_events_due(st, fa_store_now_ms() + 1000, 8, &due, &n, &err) == FA_OK &&
           n == 1 && strcmp(due[0].event_id, a2.event_id) == 0);
    if (n == 1)
        TAP_OK(fa_store_event_attempt(st, due[0].id, "dead", 10, 0, "timed out", &err) == FA_OK);
    fa_store_due_free(due, n);
    TAP_OK(fa_store_events_next(st, &next, &err) == FA_OK && next == now + 60000);
    TAP_OK(fa_store_events_count(st, &counts, &err) == FA_OK && counts.queued == 1 &&
           counts.sent == 1 && counts.dead == 1);
    TAP_OK(fa_store_event_attempt(st, 1, "bogus", 1, 0, "", &err) == FA_EINVAL);
}

static void test_outbox_list(struct fa_store *st, int64_t acme)
{
    struct fa_cb_row *rows = NULL;
    struct fa_err err = {{0}};
    int n = 0;
    long total = 0;

    TAP_OK(fa_store_events_list(st, acme, NULL, 1, 10, &rows, &n, &total, &err) == FA_OK &&
           n == 2 && total == 2);
    if (n == 2)
        TAP_OK(strcmp(rows[0].state, "dead") == 0 && rows[0].attempts == 10 &&
               strcmp(rows[0].last_error, "timed out") == 0 &&
               strcmp(rows[1].state, "pending") == 0 && strcmp(rows[1].last_error, "HTTP 500") == 0);
    free(rows);
    TAP_OK(fa_store_events_list(st, acme, "dead", 1, 10, &rows, &n, &total, &err) == FA_OK &&
           n == 1 && total == 1);
    free(rows);
    TAP_OK(fa_store_events_list(st, acme, "sent", 1, 10, &rows, &n, &total, &err) == FA_OK &&
           n == 0 && total == 0);
    free(rows);
    TAP_OK(fa_store_events_list(st, acme, NULL, 0, 10, &rows, &n, &total, &err) == FA_EINVAL);
}

static void test_outbox_prune(struct fa_store *st)
{
    struct fa_err err = {{0}};
    int n = -1;

    /* sent 1, dead 1, pending 1 (test_outbox_due): only a pending one survives */
    TAP_OK(fa_store_events_prune(st, fa_store_now() - 60, &n, &err) == FA_OK && n == 0);
    TAP_OK(fa_store_events_prune(st, fa_store_now() + 1, &n, &err) == FA_OK && n == 2);
    TAP_OK(q_int("SELECT count(*) FROM callback_events WHERE state = 'pending'") == 1 &&
           q_int("SELECT count(*) FROM callback_events") == 1);
}

static void run(struct fa_store *st)
{
    struct fa_user jane, bob;
    struct fa_err err = {{0}};
    int64_t acme = customer_new(st, "acme"), globex = customer_new(st, "globex");
    char secret[FA_CB_SECRET_HEX + 1];

    user_init(&jane, acme, "jane");
    user_init(&bob, globex, "bob");
    if (!TAP_OK(fa_store_user_create(st, &jane, &err) == FA_OK) ||
        !TAP_OK(fa_store_user_create(st, &bob, &err) == FA_OK))
        return;
    set_urls(st, acme, "http://127.0.0.1:9/fail");
    set_urls(st, globex, "http://127.0.0.1:9/g");
    fa_crypto_random_hex(secret, FA_KEY_BYTES);
    TAP_OK(fa_store_callback_secret_set(st, "globex", secret, &err) == FA_OK);
    TAP_OK(fa_store_callback_secret_set(st, "nobody", secret, &err) == FA_ENOTFOUND);
    TAP_OK(fa_store_callback_secret_set(st, "acme", "short", &err) == FA_EINVAL);
    test_outbox_write(st, acme, globex, &jane);
    test_outbox_due(st, acme, globex, &jane, &bob);
    test_outbox_list(st, acme);
    test_outbox_prune(st);
}

int main(void)
{
    struct fa_store *st = NULL;
    struct fa_err err = {{0}};

    (void)img_new; /* fixture helpers this test does not need */
    (void)rec_template_set;
    test_sign();
    test_secret();
    test_backoff();
    if (!TAP_OK(fa_crypto_init() == FA_OK) || !TAP_OK(dir_setup("fa_test_callback")))
        return tap_done();
    if (!tap_ok(fa_store_open(g_db, &st, &err) == FA_OK, "open: %s", err.msg))
        goto out;
    if (!TAP_OK(sqlite3_open_v2(g_db, &g_raw, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK))
        goto out;
    sqlite3_busy_timeout(g_raw, 5000);
    run(st);
out:
    fa_store_free(st);
    sqlite3_close(g_raw);
    dir_remove();
    return tap_done();
}
