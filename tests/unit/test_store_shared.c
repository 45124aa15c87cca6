/*
 * test_store_shared.c — what several nodes on one database rely on, run on
 * SQLite and (FA_TEST_PG_URL set) PostgreSQL: the template change feed and
 * its wake-ups, shared secrets, image bytes kept in the database, outbox
 * claims that two nodes never share, and two stores opening (migrating) a
 * fresh database at once. A second struct fa_store on the same database
 * stands for a second node: it has its own connections, as a process would.
 */
#include <pthread.h>
#include <time.h>

#include "store/store_int.h"
#include "store_fixture.h"

struct seen {
    int n;
    int64_t seq[64], customer[64], user[64];
};

static void seen_add(void *arg, int64_t seq, int64_t customer_id, int64_t user_id)
{
    struct seen *s = arg;

    if (s->n < 64) {
        s->seq[s->n] = seq;
        s->customer[s->n] = customer_id;
        s->user[s->n] = user_id;
    }
    s->n++;
}

static int64_t customer_new(struct fa_store *st, const char *name)
{
    struct fa_err err = {{0}};

    if (fa_store_customer_add(st, name, "pw-shared-1", &err) != FA_OK)
        tap_diag("customer: %s", err.msg);
    return q_int("SELECT id FROM customers WHERE name = '%s'", name);
}

/* An enrollment of u with one sample (and so a feed entry). */
static int enroll(struct fa_store *st, const struct fa_user *u, float tag)
{
    struct fa_store_record r = rec_init(u->customer_id, u, "enroll");
    struct test_sample x;
    struct fa_err err = {{0}};

    rec_template_set(&r, &x, tag, "m", "enroll");
    r.success = 1;
    r.set_state = 1;
    r.new_state = FA_USER_SUCCESS;
    if (fa_store_record_commit(st, &r, &err) != FA_OK) {
        tap_diag("enroll: %s", err.msg);
        return 0;
    }
    return 1;
}

static void test_feed(struct fa_store *st, struct fa_store *node2, int64_t acme)
{
    struct fa_user a, b;
    struct fa_user_changes chg = {0};
    struct fa_err err = {{0}};
    struct seen s = {0};
    int64_t head = -1, last = -1, uid = 0;
    char **paths = NULL;
    int n = 0;

    TAP_OK(fa_store_changes_head(st, &head, &err) == FA_OK && head == 0);
    user_init(&a, acme, "feed_a");
    user_init(&b, acme, "feed_b");
    TAP_OK(fa_store_user_create(st, &a, &err) == FA_OK);
    TAP_OK(fa_store_user_create(st, &b, &err) == FA_OK);
    /* Creating a user changes no template: no entry. */
    TAP_OK(fa_store_changes_head(st, &head, &err) == FA_OK && head == 0);
    TAP_OK(enroll(st, &a, 1.0f));
    TAP_OK(enroll(node2, &b, 2.0f)); /* the other node's write is in the same feed */
    TAP_OK(fa_store_changes_head(node2, &head, &err) == FA_OK && head == 2);
    TAP_OK(fa_store_changes_since(st, 0, 10, seen_add, &s, &last, &err) == FA_OK);
    tap_ok(s.n == 2 && s.seq[0] == 1 && s.user[0] == a.id && s.seq[1] == 2 && s.user[1] == b.id &&
               s.customer[0] == acme && last == 2,
           "two changes in commit order (%d, last %lld)", s.n, (long long)last);

    /* A second change of a user moves its one entry up. */
    chg.full_name = "Renamed";
    TAP_OK(fa_store_user_update(st, acme, "feed_a", &chg, &a, &err) == FA_OK);
    memset(&s, 0, sizeof s);
    TAP_OK(fa_store_changes_since(st, 2, 10, seen_add, &s, &last, &err) == FA_OK);
    TAP_OK(s.n == 1 && s.seq[0] == 3 && s.user[0] == a.id && last == 3);
    memset(&s, 0, sizeof s);
    TAP_OK(fa_store_changes_since(st, 0, 10, seen_add, &s, &last, &err) == FA_OK);
    TAP_OK(s.n == 2 && s.user[0] == b.id && s.user[1] == a.id);
    /* Batches: max 1 gives the oldest, and the follower resumes after it. */
    memset(&s, 0, sizeof s);
    TAP_OK(fa_store_changes_since(st, 0, 1, seen_add, &s, &last, &err) == FA_OK);
    TAP_OK(s.n == 1 && last == 2);
    memset(&s, 0, sizeof s);
    TAP_OK(fa_store_changes_since(st, last, 1, seen_add, &s, &last, &err) == FA_OK);
    TAP_OK(s.n == 1 && last == 3);
    memset(&s, 0, sizeof s);
    TAP_OK(fa_store_changes_since(st, last, 1, seen_add, &s, &last, &err) == FA_OK);
    TAP_OK(s.n == 0 && last == 3);
    TAP_OK(fa_store_changes_since(st, 0, 0, seen_add, &s, &last, &err) == FA_EINVAL);

    /* A delete leaves the user's entry, numbered anew, for followers to drop it. */
    TAP_OK(fa_store_user_delete(node2, acme, "feed_b", &uid, &paths, &n, &err) == FA_OK);
    fa_store_paths_free(paths, n);
    memset(&s, 0, sizeof s);
    TAP_OK(fa_store_changes_since(st, 3, 10, seen_add, &s, &last, &err) == FA_OK);
    TAP_OK(s.n == 1 && s.user[0] == b.id && s.seq[0] == 4);
    /* A failed transaction numbers nothing. */
    TAP_OK(fa_store_user_update(st, acme, "feed_a",
                                &(struct fa_user_changes){.user_name = "bad name"}, &a,
                                &err) == FA_EINVAL);
    TAP_OK(fa_store_changes_head(st, &head, &err) == FA_OK && head == 4);
}

struct waiter {
    struct fa_store *st;
    int woken;
    long ms;
    enum fa_rc rc;
};

static void *wait_thread(void *p)
{
    struct waiter *w = p;
    struct timespec t0, t1;
    struct fa_err err = {{0}};

    clock_gettime(CLOCK_MONOTONIC, &t0);
    w->rc = fa_store_changes_wait(w->st, 10000, &w->woken, &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    w->ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    return NULL;
}

/* PostgreSQL: a commit on one node wakes the other's wait at once. */
static void test_wait(struct fa_store *st, struct fa_store *node2, int64_t acme)
{
    struct waiter w = {node2, 0, 0, FA_OK};
    struct fa_err err = {{0}};
    struct fa_user u;
    pthread_t t;
    int woken = -1;

    if (g_engine == FA_DB_SQLITE) {
        TAP_OK(fa_store_changes_wait(st, 20, &woken, &err) == FA_OK && woken == 0);
        return;
    }
    /* The first wait starts listening: whatever came before was missed. */
    TAP_OK(fa_store_changes_wait(node2, 10000, &woken, &err) == FA_OK && woken == 1);
    if (!TAP_OK(pthread_create(&t, NULL, wait_thread, &w) == 0))
        return;
    usleep(200 * 1000);
    user_init(&u, acme, "woken");
    TAP_OK(fa_store_user_create(st, &u, &err) == FA_OK && enroll(st, &u, 3.0f));
    pthread_join(t, NULL);
    tap_ok(w.rc == FA_OK && w.woken == 1 && w.ms < 5000,
           "woken by the other node's commit in %ld ms", w.ms);
    /* Nothing new: the wait runs out. */
    TAP_OK(fa_store_changes_wait(node2, 100, &woken, &err) == FA_OK && woken == 0);
}

static void test_secret(struct fa_store *st, struct fa_store *node2)
{
    uint8_t a[48], b[48], c[16];
    struct fa_err err = {{0}};

    TAP_OK(fa_store_secret(st, "link_key", a, sizeof a, &err) == FA_OK);
    TAP_OK(fa_store_secret(node2, "link_key", b, sizeof b, &err) == FA_OK);
    TAP_OK(memcmp(a, b, sizeof a) == 0);
    TAP_OK(fa_store_secret(st, "other", c, sizeof c, &err) == FA_OK && memcmp(a, c, sizeof c) != 0);
    tap_ok(fa_store_secret(st, "link_key", c, sizeof c, &err) == FA_EDB &&
               strstr(err.msg, "48 bytes") != NULL,
           "a secret asked for at another size: %s", err.msg);
    TAP_OK(fa_store_secret(st, "", c, sizeof c, &err) == FA_EINVAL);
    /* PostgreSQL keeps the template key here, SQLite in template.key. */
    TAP_OK(q_int("SELECT count(*) FROM secrets WHERE name = 'template_key'") ==
           (g_engine == FA_DB_POSTGRES));
}

static void test_image_bytes(struct fa_store *st, struct fa_store *node2, int64_t acme)
{
    static const uint8_t jpeg[] = {0xff, 0xd8, 0xff, 0x00, 0x01, 0x5c, 0x78, 0xff, 0xd9};
    struct fa_store_record r;
    struct fa_store_image o = {0};
    struct fa_err err = {{0}};
    struct fa_user u;
    uint8_t *bytes = NULL;
    size_t n = 0;
    int64_t owner = 0, uid = 0;
    char mime[32], path[FA_PATH_MAX], **paths = NULL;
    int np = -1;

    user_init(&u, acme, "pictured");
    TAP_OK(fa_store_user_create(st, &u, &err) == FA_OK);
    fa_crypto_random_hex(o.id, FA_IMAGE_ID_HEX / 2);
    o.mime = "image/jpeg";
    o.bytes = jpeg;
    o.n_bytes = sizeof jpeg;
    r = rec_init(acme, &u, "authenticate");
    r.original = &o;
    TAP_OK(fa_store_record_commit(st, &r, &err) == FA_OK);
    TAP_OK(fa_store_image_bytes(node2, o.id, &owner, &bytes, &n, mime, &err) == FA_OK);
    TAP_OK(owner == acme && n == sizeof jpeg && bytes != NULL && memcmp(bytes, jpeg, n) == 0 &&
           strcmp(mime, "image/jpeg") == 0);
    free(bytes);
    TAP_OK(fa_store_image_get(st, o.id, &owner, path, mime, &err) == FA_OK && path[0] == '\0');
    /* Bytes and a path at once, or no bytes at all, are refused. */
    o.path = "images/x.jpg";
    fa_crypto_random_hex(o.id, FA_IMAGE_ID_HEX / 2);
    TAP_OK(fa_store_record_commit(st, &r, &err) == FA_EINVAL);
    o.path = NULL;
    o.n_bytes = 0;
    TAP_OK(fa_store_record_commit(st, &r, &err) == FA_EINVAL);
    /* Deleting the user takes the bytes and names no file to remove. */
    TAP_OK(fa_store_user_delete(st, acme, "pictured", &uid, &paths, &np, &err) == FA_OK);
    TAP_OK(np == 0 && paths == NULL);
    TAP_OK(q_int("SELECT count(*) FROM image_data") == 0);
    TAP_OK(fa_store_image_bytes(st, "0123", &owner, &bytes, &n, mime, &err) == FA_ENOTFOUND);
    TAP_OK(bytes == NULL && n == 0);
}

/* Pending events due now; on PostgreSQL each goes to one node only. */
static void test_claims(struct fa_store *st, struct fa_store *node2, int64_t acme, int64_t globex)
{
    struct fa_cb_due *d1 = NULL, *d2 = NULL;
    struct fa_err err = {{0}};
    int n1 = -1, n2 = -1, i;
    int64_t now = (int64_t)time(NULL) * 1000;

    for (i = 0; i < 4; i++) {
        char sql[400];
        snprintf(sql, sizeof sql,
                 "INSERT INTO callback_events(event_id, customer_id, event, url, body, state,"
                 " next_ms, created, updated) VALUES('%032d', %lld, 'enrollmentAccepted',"
                 " 'http://127.0.0.1:9/x', '{}', 'pending', %lld, 0, 0)",
                 i, (long long)(i % 2 == 0 ? acme : globex), (long long)(now - 1000 + i));
        TAP_OK(fa_db_exec(g_raw, sql) == FA_DB_OK);
    }
    TAP_OK(fa_store_events_due(st, now, 10, &d1, &n1, &err) == FA_OK);
    TAP_OK(fa_store_events_due(node2, now, 10, &d2, &n2, &err) == FA_OK);
    /* One per customer: the oldest of each. */
    TAP_OK(n1 == 2 && d1[0].customer_id != d1[1].customer_id);
    if (g_engine == FA_DB_SQLITE) {
        /* One process delivers: reading is enough, the same two again. */
        TAP_OK(n2 == 2 && strcmp(d1[0].event_id, d2[0].event_id) == 0);
        /* Nothing was claimed, so handing back writes nothing. */
        fa_store_due_free(d2, n2);
        TAP_OK(fa_store_event_unclaim(st, d1[0].id, now + 999999, &err) == FA_OK);
        TAP_OK(fa_store_events_due(node2, now, 10, &d2, &n2, &err) == FA_OK && n2 == 2 &&
               strcmp(d1[0].event_id, d2[0].event_id) == 0);
    } else {
        /* The other node gets the next event of each customer, never one
         * the first node holds; then nothing is left to claim. */
        tap_ok(n2 == 2 && strcmp(d1[0].event_id, d2[0].event_id) != 0 &&
                   strcmp(d1[0].event_id, d2[1].event_id) != 0 &&
                   strcmp(d1[1].event_id, d2[0].event_id) != 0 &&
                   strcmp(d1[1].event_id, d2[1].event_id) != 0,
               "claimed events go to one node only (%d)", n2);
        fa_store_due_free(d2, n2);
        TAP_OK(fa_store_events_due(st, now, 10, &d2, &n2, &err) == FA_OK && n2 == 0);
        /* After the lease (a node died mid-delivery) they are due again. */
        fa_store_due_free(d2, n2);
        TAP_OK(fa_store_events_due(node2, now + 6 * 60 * 1000, 10, &d2, &n2, &err) == FA_OK &&
               n2 == 2);
        /* An event a node hands back is due again at once, for any node: the
         * first node now gets it (as its customer's oldest) instead of the
         * customer's next one, while the event node2 still holds stays there. */
        TAP_OK(fa_store_event_unclaim(node2, d2[0].id, d2[0].due_ms, &err) == FA_OK);
        fa_store_due_free(d1, n1);
        TAP_OK(fa_store_events_due(st, now + 6 * 60 * 1000, 10, &d1, &n1, &err) == FA_OK &&
               n1 == 2);
        tap_ok(n1 == 2 && (strcmp(d1[0].event_id, d2[0].event_id) == 0 ||
                           strcmp(d1[1].event_id, d2[0].event_id) == 0) &&
                   strcmp(d1[0].event_id, d2[1].event_id) != 0 &&
                   strcmp(d1[1].event_id, d2[1].event_id) != 0,
               "a handed-back event is claimed again at once, a held one is not");
    }
    fa_store_due_free(d1, n1);
    fa_store_due_free(d2, n2);
}

/* PostgreSQL: sessions cut by the server (a restart, a failover, an
 * administrator) are replaced before the next statement, and a read-only
 * server answers FA_EREADONLY. */
static void test_reconnect(struct fa_store *st)
{
    struct fa_err err = {{0}};
    struct fa_conn *c = NULL;
    int64_t id = 0;

    if (g_engine != FA_DB_POSTGRES)
        return;
    TAP_OK(q_int("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname ="
                 " current_database() AND pid <> pg_backend_pid()") > 0);
    usleep(300 * 1000);
    tap_ok(fa_store_customer_id(st, "acme", &id, &err) == FA_OK && id > 0,
           "a store call after its session was terminated: %s", err.msg);
    TAP_OK(fa_store_customer_add(st, "after_cut", "pw-shared-2", &err) == FA_OK);
    if (!TAP_OK(fa_store_conn(st, &c, &err) == FA_OK))
        return;
    TAP_OK(fa_db_exec(c->db, "SET default_transaction_read_only = on") == FA_DB_OK);
    tap_ok(fa_store_customer_add(st, "read_only", "pw-shared-3", &err) == FA_EREADONLY,
           "read-only server: %s", err.msg);
    TAP_OK(fa_db_exec(c->db, "SET default_transaction_read_only = off") == FA_DB_OK);
}

struct opener {
    enum fa_rc rc;
    char msg[FA_ERR_MAX];
};

static void *open_thread(void *p)
{
    struct opener *o = p;
    struct fa_store *st = NULL;
    struct fa_err err = {{0}};

    o->rc = fa_store_open(g_db, &st, &err);
    snprintf(o->msg, sizeof o->msg, "%s", err.msg);
    fa_store_free(st);
    return NULL;
}

/* Two nodes starting together on an empty database: one migrates, the
 * other waits and finds nothing to do. Runs first, on the fresh database.
 * PostgreSQL only: threads of one process stand in for the nodes, and on
 * SQLite they would also race on creating template.key under one pid,
 * which separate processes (the real case) do not. */
static void test_open_together(void)
{
    struct opener o[3] = {{FA_OK, ""}, {FA_OK, ""}, {FA_OK, ""}};
    pthread_t t[3];
    int i, started = 0;

    for (i = 0; i < 3; i++)
        started += pthread_create(&t[i], NULL, open_thread, &o[i]) == 0;
    for (i = 0; i < started; i++)
        pthread_join(t[i], NULL);
    TAP_OK(started == 3);
    for (i = 0; i < 3; i++)
        tap_ok(o[i].rc == FA_OK, "open together %d: %s", i, o[i].msg);
}

static void backend_body(void)
{
    struct fa_store *st = NULL, *node2 = NULL;
    struct fa_err err = {{0}};
    int64_t acme, globex;

    (void)img_new;
    if (g_engine == FA_DB_POSTGRES)
        test_open_together();
    if (!tap_ok(fa_store_open(g_db, &st, &err) == FA_OK, "open: %s", err.msg) ||
        !tap_ok(fa_store_open(g_db, &node2, &err) == FA_OK, "open: %s", err.msg) ||
        !TAP_OK(raw_open()))
        goto out;
    TAP_OK(q_version() == 7);
    TAP_OK(fa_store_is_shared(st) == (g_engine == FA_DB_POSTGRES));
    acme = customer_new(st, "acme");
    globex = customer_new(st, "globex");
    test_feed(st, node2, acme);
    test_wait(st, node2, acme);
    test_secret(st, node2);
    test_image_bytes(st, node2, acme);
    test_claims(st, node2, acme, globex);
    test_reconnect(st);
out:
    fa_store_free(node2);
    fa_store_free(st);
}

int main(void) { return fixture_main("fa_test_store_shared", backend_body); }
