/*
 * test_store.c — the SQLite store against a real database file in a fresh
 * temporary directory (removed at the end).
 *
 * Checks go through the public API where it can see the effect, and through
 * a second, raw database connection (g_raw) where only row counts or column
 * values can tell: that nothing was half-written, that tokens are stored as
 * digests, that cascades ran. A few white-box checks include store_int.h to
 * look at the calling thread's own connection (foreign_keys is a
 * per-connection setting) and at the connection list (thread destructors).
 */
#include "faceauth/store.h"

#include <stdarg.h>
#include <math.h>
#include <pthread.h>
#include "store/db.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store_int.h"
#include "store_fixture.h"
#include "tap.h"

/* ---- helpers ---- */

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

struct counts {
    long long tokens, users, templates, images, transactions;
};

static struct counts counts_now(void)
{
    struct counts c;

    c.tokens = q_int("SELECT count(*) FROM tokens");
    c.users = q_int("SELECT count(*) FROM users");
    c.templates = q_int("SELECT count(*) FROM templates");
    c.images = q_int("SELECT count(*) FROM images");
    c.transactions = q_int("SELECT count(*) FROM transactions");
    return c;
}

static int counts_equal(struct counts a, struct counts b)
{
    return a.tokens == b.tokens && a.users == b.users && a.templates == b.templates &&
           a.images == b.images && a.transactions == b.transactions;
}

/* Point r at template vec (tagged with tag in element 0) of the given source. */
static void rec_template(struct fa_store_record *r, struct test_sample *vec, float tag,
                         const char *source)
{
    rec_template_set(r, vec, tag, "test-model", source);
}

static int64_t customer_id_of(const char *name)
{
    return q_int("SELECT id FROM customers WHERE name = '%s'", name);
}

/* ---- open, migrate, pragmas ---- */

static void test_open(struct fa_store *st)
{
    struct fa_store *st2 = NULL;
    struct fa_conn *c = NULL;
    struct fa_err err = {{0}};
    long long tables;

    TAP_OK(q_version() == 7);
    tables = q_tables();
    /* customers tokens users templates images transactions search_spaces
     * search_space_users pending_deletes enroll_attempts callback_events
     * login_throttle user_throttle template_seq template_changes image_data
     * secrets */
    TAP_OK(tables == 17);
    /* A second store on the same database (as a second process would): the
     * migration finds nothing to do and changes nothing. */
    TAP_OK(fa_store_open(g_db, &st2, &err) == FA_OK);
    fa_store_free(st2);
    TAP_OK(q_version() == 7);
    TAP_OK(q_tables() == tables);

    if (g_engine == FA_DB_POSTGRES && TAP_OK(fa_store_conn(st, &c, &err) == FA_OK)) {
        struct fa_db *keep = g_raw;
        g_raw = c->db;
        /* on: the commit waits for the WAL flush, like SQLite's FULL. */
        TAP_OK(q_int("SELECT CASE current_setting('synchronous_commit') WHEN 'on' THEN 2"
                     " ELSE 1 END") == 2);
        TAP_OK(fa_store_set_sync(st, 0, &err) == FA_OK);
        TAP_OK(q_int("SELECT CASE current_setting('synchronous_commit') WHEN 'on' THEN 2"
                     " ELSE 1 END") == 1);
        TAP_OK(fa_store_set_sync(st, 1, &err) == FA_OK);
        g_raw = keep;
    }
    if (g_engine == FA_DB_SQLITE && TAP_OK(fa_store_conn(st, &c, &err) == FA_OK)) {
        struct fa_db *keep = g_raw;
        g_raw = c->db; /* ask the store's own connection */
        TAP_OK(q_int("PRAGMA foreign_keys") == 1);
        /* FULL: an acknowledged commit survives a power loss. */
        TAP_OK(q_int("PRAGMA synchronous") == 2);
        TAP_OK(fa_store_set_sync(st, 0, &err) == FA_OK);
        TAP_OK(q_int("PRAGMA synchronous") == 1); /* NORMAL, on request */
        TAP_OK(fa_store_set_sync(st, 1, &err) == FA_OK);
        TAP_OK(q_int("PRAGMA synchronous") == 2);
        g_raw = keep;
    }
    if (g_engine == FA_DB_SQLITE) {
        struct fa_db_stmt *s = NULL;
        fa_db_prepare(g_raw, "PRAGMA journal_mode", &s);
        tap_ok(s != NULL && fa_db_step(s) == FA_DB_ROW &&
                   strcmp((const char *)fa_db_column_text(s, 0), "wal") == 0,
               "journal_mode is wal");
        fa_db_finalize(s);
    }
    TAP_OK(fa_store_writable(st) == 1);
}

/* A server that is not there: FA_EDB naming it, never with its password. */
static void test_open_refused_pg(void)
{
    struct fa_store *bad = NULL;
    struct fa_err err = {{0}};

    TAP_OK(fa_store_open("postgresql://ann:hunter2@127.0.0.1:1/nowhere", &bad, &err) ==
               FA_EDB &&
           bad == NULL);
    tap_ok(strstr(err.msg, "127.0.0.1:1/nowhere") != NULL && strstr(err.msg, "hunter2") == NULL,
           "server named, password not: %s", err.msg);
}

/* Files and paths fa_store_open must refuse, leaving *out NULL. */
static void test_open_refused(void)
{
    struct fa_store *bad = NULL;
    struct fa_err err = {{0}};
    char path[400];

    /* A file from a newer build is refused, not downgraded. */
    snprintf(path, sizeof path, "%s/newer.db", g_dir);
    {
        struct fa_db *db = NULL;
        fa_db_open(FA_DB_SQLITE, path, 5000, &db);
        fa_db_exec(db, "PRAGMA user_version=99");
        fa_db_close(db);
    }
    TAP_OK(fa_store_open(path, &bad, &err) == FA_EDB && bad == NULL);
    tap_ok(strstr(err.msg, "99") != NULL, "newer schema named: %s", err.msg);
    /* :memory: would give each thread its own empty database. */
    TAP_OK(fa_store_open(":memory:", &bad, &err) == FA_EDB && bad == NULL);
    snprintf(path, sizeof path, "%s/no/such/dir/x.db", g_dir);
    TAP_OK(fa_store_open(path, &bad, &err) == FA_EDB && bad == NULL);
    TAP_OK(fa_store_open("", &bad, &err) == FA_EINVAL);
    fa_store_free(NULL);

    TAP_OK(strcmp(fa_user_state_name(FA_USER_DRAFT), "draft") == 0);
    TAP_OK(strcmp(fa_user_state_name(FA_USER_SUCCESS), "success") == 0);
    TAP_OK(strcmp(fa_user_state_name(FA_USER_FAILURE), "failure") == 0);
}

/* ---- customers and tokens ---- */

/* fa_store_customer_id: the operator's lookup by name (`user list`). */
static void test_customer_id(struct fa_store *st)
{
    struct fa_err err = {{0}};
    int64_t id = -1;
    TAP_OK(fa_store_customer_id(st, "globex", &id, &err) == FA_OK &&
           id == q_int("SELECT id FROM customers WHERE name = 'globex'"));
    tap_ok(fa_store_customer_id(st, "nobody", &id, &err) == FA_ENOTFOUND && id == 0 &&
               strstr(err.msg, "'nobody'") != NULL,
           "unknown customer: FA_ENOTFOUND naming it: %s", err.msg);
    tap_ok(fa_store_customer_id(st, "a'b", &id, &err) == FA_EINVAL && id == 0,
           "a name no customer can have: FA_EINVAL: %s", err.msg);
}

static void test_customers(struct fa_store *st)
{
    struct fa_err err = {{0}};
    char name64[FA_NAME_MAX + 2];

    TAP_OK(fa_store_customer_add(st, "acme", "s3cret-pw", &err) == FA_OK);
    TAP_OK(fa_store_customer_add(st, "globex", "other-pw", &err) == FA_OK);
    TAP_OK(fa_store_customer_add(st, "acme", "x", &err) == FA_ECONFLICT);
    tap_ok(strcmp(err.msg, "customerName 'acme' already exists") == 0, "dup: %s", err.msg);
    TAP_OK(fa_store_customer_add(st, "a b", "x", &err) == FA_EINVAL);
    tap_ok(strstr(err.msg, "customerName") != NULL, "bad name named: %s", err.msg);
    TAP_OK(fa_store_customer_add(st, "", "x", &err) == FA_EINVAL);
    TAP_OK(fa_store_customer_add(st, "empty-pw", "", &err) == FA_EINVAL);
    memset(name64, 'n', sizeof name64);
    name64[FA_NAME_MAX + 1] = '\0';
    TAP_OK(fa_store_customer_add(st, name64, "x", &err) == FA_EINVAL);
    name64[FA_NAME_MAX] = '\0';
    TAP_OK(fa_store_customer_add(st, name64, "x", &err) == FA_OK);
    TAP_OK(fa_store_customer_add(st, "A.z_0@9-", "x", &err) == FA_OK);

    TAP_OK(q_int("SELECT count(*) FROM customers WHERE name = 'acme'"
                 " AND pw_hash LIKE '$argon2id$%%' AND pw_hash NOT LIKE '%%s3cret-pw%%'") == 1);
    test_customer_id(st);
}

/* Leaves a live token of acme in tok. */
static void test_login(struct fa_store *st, char tok[FA_TOKEN_CHARS + 1])
{
    char tok2[FA_TOKEN_CHARS + 1], digest[FA_DIGEST_HEX + 1];
    char msg_unknown[FA_ERR_MAX];
    struct fa_err err = {{0}};
    double t0, t_wrong, t_unknown;

    TAP_OK(fa_store_login(st, "acme", "s3cret-pw", 3600, tok, &err) == FA_OK);
    TAP_OK(strlen(tok) == FA_TOKEN_CHARS);
    /* Only the digest is stored. */
    fa_crypto_token_digest(tok, digest);
    TAP_OK(q_int("SELECT count(*) FROM tokens WHERE digest = '%s'", digest) == 1);
    TAP_OK(q_int("SELECT count(*) FROM tokens WHERE digest = '%s'", tok) == 0);

    t0 = now_ms();
    TAP_OK(fa_store_login(st, "acme", "hunter2-bad", 3600, tok2, &err) == FA_EAUTH);
    t_wrong = now_ms() - t0;
    TAP_OK(tok2[0] == '\0');
    TAP_OK(strstr(err.msg, "hunter2") == NULL);
    snprintf(msg_unknown, sizeof msg_unknown, "%s", err.msg);
    t0 = now_ms();
    TAP_OK(fa_store_login(st, "nobody", "s3cret-pw", 3600, tok2, &err) == FA_EAUTH);
    t_unknown = now_ms() - t0;
    tap_ok(strcmp(err.msg, msg_unknown) == 0, "unknown name and wrong password say the same: %s",
           err.msg);
    /* An unknown name still pays for one Argon2id (against the dummy hash):
     * a loose bound, since the fast path would be ~100x quicker. */
    tap_ok(t_unknown * 4 >= t_wrong, "unknown name %.1f ms, wrong password %.1f ms", t_unknown,
           t_wrong);
    TAP_OK(strstr(err.msg, "s3cret") == NULL);
    TAP_OK(fa_store_login(st, "bad name", "x", 3600, tok2, &err) == FA_EAUTH);
}

/* tok: a live token of acme (password still s3cret-pw); leaves another in tok2. */
static void test_tokens(struct fa_store *st, const char *tok, char tok2[FA_TOKEN_CHARS + 1])
{
    struct fa_err err = {{0}};
    int64_t acme = customer_id_of("acme"), id = -1;

    TAP_OK(fa_store_token_check(st, "acme", tok, &id, &err) == FA_OK && id == acme);
    TAP_OK(fa_store_token_check(st, "globex", tok, &id, &err) == FA_EAUTH && id == 0);
    TAP_OK(strstr(err.msg, tok) == NULL);
    TAP_OK(fa_store_token_check(st, "nobody", tok, &id, &err) == FA_EAUTH);
    /* No customerName (GET routes): any live token names its customer. */
    TAP_OK(fa_store_token_check(st, NULL, tok, &id, &err) == FA_OK && id == acme);
    TAP_OK(fa_store_token_check(st, "acme", "short", &id, &err) == FA_EAUTH);
    TAP_OK(fa_store_token_check(st, "acme", NULL, &id, &err) == FA_EAUTH);
    fa_crypto_token_new(tok2);
    TAP_OK(fa_store_token_check(st, "acme", tok2, &id, &err) == FA_EAUTH);

    /* ttl <= 0: the token is born expired (live means now < expires). */
    TAP_OK(fa_store_login(st, "acme", "s3cret-pw", 0, tok2, &err) == FA_OK);
    TAP_OK(fa_store_token_check(st, "acme", tok2, &id, &err) == FA_EAUTH);
    tap_ok(strstr(err.msg, "expired") != NULL, "expired: %s", err.msg);
    TAP_OK(fa_store_token_check(st, NULL, tok2, &id, &err) == FA_EAUTH && id == 0);
    TAP_OK(fa_store_login(st, "acme", "s3cret-pw", -1, tok2, &err) == FA_OK);
    TAP_OK(fa_store_token_check(st, "acme", tok2, &id, &err) == FA_EAUTH);
    TAP_OK(fa_store_token_revoke(st, acme, tok2, &err) == FA_EAUTH); /* not live */
    /* A huge ttl saturates instead of overflowing. */
    TAP_OK(fa_store_login(st, "acme", "s3cret-pw", 0x7fffffffffffffffL, tok2, &err) == FA_OK);
    TAP_OK(fa_store_token_check(st, "acme", tok2, &id, &err) == FA_OK);

    /* Revoke: only by its own customer, only once. */
    TAP_OK(fa_store_token_revoke(st, customer_id_of("globex"), tok2, &err) == FA_EAUTH);
    TAP_OK(fa_store_token_check(st, "acme", tok2, &id, &err) == FA_OK);
    TAP_OK(fa_store_token_revoke(st, acme, tok2, &err) == FA_OK);
    TAP_OK(fa_store_token_check(st, "acme", tok2, &id, &err) == FA_EAUTH);
    TAP_OK(fa_store_token_check(st, NULL, tok2, &id, &err) == FA_EAUTH);
    TAP_OK(fa_store_token_revoke(st, acme, tok2, &err) == FA_EAUTH);
    TAP_OK(fa_store_token_check(st, "acme", tok, &id, &err) == FA_OK);

    /* A login drops the customer's dead tokens (expired and revoked). */
    TAP_OK(fa_store_login(st, "acme", "s3cret-pw", 3600, tok2, &err) == FA_OK);
    TAP_OK(q_int("SELECT count(*) FROM tokens WHERE customer_id = %lld", (long long)acme) == 2);
}

/* tok, tok2: live tokens of acme. */
static void test_passwd(struct fa_store *st, const char *tok, const char *tok2)
{
    char tok3[FA_TOKEN_CHARS + 1];
    struct fa_err err = {{0}};
    int64_t acme = customer_id_of("acme"), id = -1;

    /* A new password revokes every token and replaces the old one. */
    TAP_OK(fa_store_customer_passwd(st, "acme", "new-pw", &err) == FA_OK);
    TAP_OK(fa_store_token_check(st, "acme", tok, &id, &err) == FA_EAUTH);
    TAP_OK(fa_store_token_check(st, "acme", tok2, &id, &err) == FA_EAUTH);
    TAP_OK(fa_store_login(st, "acme", "s3cret-pw", 3600, tok3, &err) == FA_EAUTH);
    TAP_OK(fa_store_login(st, "acme", "new-pw", 3600, tok3, &err) == FA_OK);
    TAP_OK(fa_store_token_check(st, "acme", tok3, &id, &err) == FA_OK && id == acme);
    TAP_OK(fa_store_customer_passwd(st, "nobody", "pw", &err) == FA_ENOTFOUND);
    TAP_OK(fa_store_customer_passwd(st, "acme", "", &err) == FA_EINVAL);
}

/* ---- users ---- */

static void test_users(struct fa_store *st, int64_t acme, int64_t globex)
{
    struct fa_user u, v, got;
    struct fa_err err = {{0}};

    user_init(&u, acme, "alice");
    TAP_OK(fa_store_user_create(st, &u, &err) == FA_OK);
    TAP_OK(u.id > 0 && strlen(u.enroll_token) == FA_TOKEN_CHARS && u.state == FA_USER_DRAFT);
    TAP_OK(u.created > 0 && u.updated == u.created && u.blacklisted == 0);

    user_init(&v, acme, "alice");
    TAP_OK(fa_store_user_create(st, &v, &err) == FA_ECONFLICT);
    tap_ok(strcmp(err.msg, "userName 'alice' already exists") == 0, "dup user: %s", err.msg);
    /* Another customer may have its own alice. */
    user_init(&v, globex, "alice");
    TAP_OK(fa_store_user_create(st, &v, &err) == FA_OK && v.id != u.id);
    TAP_OK(strcmp(v.enroll_token, u.enroll_token) != 0);

    TAP_OK(fa_store_user_get(st, acme, "alice", &got, &err) == FA_OK);
    TAP_OK(got.id == u.id && got.customer_id == acme && strcmp(got.full_name, "Full alice") == 0);
    TAP_OK(strcmp(got.email, "alice@example.com") == 0 && strcmp(got.phone, "+15550100") == 0);
    TAP_OK(strcmp(got.country_code, "US") == 0 && got.state == FA_USER_DRAFT);
    TAP_OK(strcmp(got.enroll_token, u.enroll_token) == 0);
    TAP_OK(fa_store_user_get(st, globex, "alice", &got, &err) == FA_OK && got.id == v.id);
    TAP_OK(fa_store_user_get(st, acme, "bob", &got, &err) == FA_ENOTFOUND);
    tap_ok(strstr(err.msg, "bob") != NULL, "not found: %s", err.msg);
    TAP_OK(fa_store_user_get(st, acme, "no spaces", &got, &err) == FA_EINVAL);

    TAP_OK(fa_store_user_by_token(st, acme, u.enroll_token, &got, &err) == FA_OK);
    TAP_OK(got.id == u.id);
    /* Isolation: acme's token through globex's id finds nothing. */
    TAP_OK(fa_store_user_by_token(st, globex, u.enroll_token, &got, &err) == FA_ENOTFOUND);
    TAP_OK(got.id == 0);
    TAP_OK(fa_store_user_by_token(st, acme, "nope", &got, &err) == FA_ENOTFOUND);
    TAP_OK(fa_store_user_by_token(st, acme, NULL, &got, &err) == FA_ENOTFOUND);

    user_init(&v, acme, "bob");
    memset(v.full_name, 'f', FA_TEXT_MAX);
    v.full_name[FA_TEXT_MAX] = '\0';
    TAP_OK(fa_store_user_create(st, &v, &err) == FA_OK); /* exactly the cap */
    user_init(&v, acme, "carol");
    memset(v.email, 'e', sizeof v.email); /* no NUL at all */
    TAP_OK(fa_store_user_create(st, &v, &err) == FA_EINVAL);
    tap_ok(strstr(err.msg, "emailId") != NULL, "field named: %s", err.msg);
    user_init(&v, acme, "bad/name");
    TAP_OK(fa_store_user_create(st, &v, &err) == FA_EINVAL);
    tap_ok(strstr(err.msg, "userName") != NULL, "field named: %s", err.msg);
    user_init(&v, 999999, "dave");
    TAP_OK(fa_store_user_create(st, &v, &err) == FA_ENOTFOUND);
}

/* ---- records and templates ---- */

/* u has exactly one template, of test-model, tagged 1.0. */
static void test_templates_one(struct fa_store *st, const struct fa_user *u)
{
    struct fa_err err = {{0}};
    float *vecs = NULL;
    int n = -1;

    TAP_OK(fa_store_templates_load(st, u->id, "test-model", DIM, &vecs, &n, &err) == FA_OK);
    TAP_OK(n == 1 && vecs != NULL && vecs[0] == 1.0f && vecs[DIM - 1] == (DIM - 1) * 0.01f);
    free(vecs);
    TAP_OK(fa_store_templates_load(st, u->id, "other-model", DIM, &vecs, &n, &err) == FA_OK);
    TAP_OK(n == 0 && vecs == NULL);
    TAP_OK(fa_store_templates_load(st, u->id, "test-model", DIM + 1, &vecs, &n, &err) == FA_EDB);
    TAP_OK(n == 0 && vecs == NULL);
    TAP_OK(fa_store_templates_load(st, u->id, "test-model", 0, &vecs, &n, &err) == FA_EINVAL);
}

static void test_record_enroll(struct fa_store *st, int64_t acme, struct fa_user *u)
{
    struct fa_store_record r = rec_init(acme, u, "enroll");
    struct test_image o, t;
    struct fa_err err = {{0}};
    struct fa_user got;
    struct counts before;
    struct test_sample vec;
    char path[FA_PATH_MAX], mime[32];
    int64_t owner = 0;

    rec_template(&r, &vec, 1.0f, "enroll");
    r.original = img_new(&o, "o");
    r.thumbnail = img_new(&t, "t");
    r.success = 1;
    r.score = 0.75;
    r.set_state = 1;
    r.new_state = FA_USER_SUCCESS;
    r.require_state = 1;
    r.expected_state = FA_USER_DRAFT;
    before = counts_now();
    TAP_OK(fa_store_record_commit(st, &r, &err) == FA_OK);
    if (err.msg[0] != '\0')
        tap_diag("%s", err.msg);
    TAP_OK(fa_store_user_get(st, acme, u->user_name, &got, &err) == FA_OK);
    TAP_OK(got.state == FA_USER_SUCCESS && got.updated >= u->updated);
    TAP_OK(q_int("SELECT count(*) FROM templates WHERE user_id = %lld", (long long)u->id) == 1);
    TAP_OK(q_int("SELECT count(*) FROM images") == before.images + 2);
    TAP_OK(q_int("SELECT count(*) FROM transactions") == before.transactions + 1);
    TAP_OK(q_int("SELECT count(*) FROM transactions WHERE user_id = %lld AND score = 0.75"
                 " AND result = 'success' AND request_type = 'enroll' AND original_id = '%s'"
                 " AND thumbnail_id = '%s'",
                 (long long)u->id, o.im.id, t.im.id) == 1);

    TAP_OK(fa_store_image_get(st, o.im.id, &owner, path, mime, &err) == FA_OK);
    TAP_OK(owner == acme && strcmp(path, o.path) == 0 && strcmp(mime, "image/jpeg") == 0);
    TAP_OK(fa_store_image_get(st, "0123456789abcdef0123456789abcdef", &owner, path, mime, &err) ==
           FA_ENOTFOUND);
    TAP_OK(fa_store_image_get(st, "../../etc/passwd", &owner, path, mime, &err) == FA_ENOTFOUND);

    test_templates_one(st, u);

    /* The same enroll again: the state is no longer draft, nothing is written. */
    before = counts_now();
    img_new(&o, "o");
    img_new(&t, "t");
    TAP_OK(fa_store_record_commit(st, &r, &err) == FA_EFAIL);
    tap_ok(strstr(err.msg, "success") != NULL, "state conflict: %s", err.msg);
    TAP_OK(counts_equal(before, counts_now()));
}

static void test_record_score_null(struct fa_store *st, int64_t acme, const struct fa_user *u)
{
    struct fa_store_record r = rec_init(acme, u, "authenticate");
    struct fa_err err = {{0}};
    long long before = q_int("SELECT count(*) FROM transactions WHERE score IS NULL");

    TAP_OK(fa_store_record_commit(st, &r, &err) == FA_OK);
    TAP_OK(q_int("SELECT count(*) FROM transactions WHERE score IS NULL") == before + 1);
    /* A search probe: no user at all. */
    r = rec_init(acme, NULL, "search");
    r.score = 0.5;
    TAP_OK(fa_store_record_commit(st, &r, &err) == FA_OK);
    TAP_OK(q_int("SELECT count(*) FROM transactions WHERE user_id IS NULL AND score = 0.5") == 1);
    r.request_type = "bogus";
    TAP_OK(fa_store_record_commit(st, &r, &err) == FA_EINVAL);
    r = rec_init(acme, NULL, "enroll");
    r.set_state = 1; /* a state change needs a user */
    TAP_OK(fa_store_record_commit(st, &r, &err) == FA_EINVAL);
}

/* Enrolled E1, then learned L1..L5 with max_learned 3, then enrolled E2:
 * loads as E1 E2 L3 L4 L5. */
static void test_learning(struct fa_store *st, int64_t acme, const struct fa_user *u)
{
    struct fa_store_record r;
    struct fa_err err = {{0}};
    struct test_sample vec;
    float *vecs = NULL;
    int i, n = 0, ok = 1;

    for (i = 1; i <= 5; i++) {
        r = rec_init(acme, u, "authenticate");
        rec_template(&r, &vec, 100.0f + (float)i, "learned");
        ok &= fa_store_record_commit(st, &r, &err) == FA_OK;
    }
    tap_ok(ok, "5 learned templates committed");
    r = rec_init(acme, u, "enroll");
    rec_template(&r, &vec, 2.0f, "enroll");
    TAP_OK(fa_store_record_commit(st, &r, &err) == FA_OK);
    TAP_OK(fa_store_templates_load(st, u->id, "test-model", DIM, &vecs, &n, &err) == FA_OK);
    if (tap_ok(n == 5, "2 enrolled + 3 learned, got %d", n)) {
        tap_ok(vecs[0] == 1.0f && vecs[DIM] == 2.0f, "enrolled first, oldest first");
        tap_ok(vecs[2 * DIM] == 103.0f && vecs[3 * DIM] == 104.0f && vecs[4 * DIM] == 105.0f,
               "the 3 newest learned kept, oldest first");
    }
    free(vecs);

    /* max_learned 1 evicts learned only: both enrolled stay. */
    r = rec_init(acme, u, "authenticate");
    rec_template(&r, &vec, 106.0f, "learned");
    r.max_learned = 1;
    TAP_OK(fa_store_record_commit(st, &r, &err) == FA_OK);
    TAP_OK(q_int("SELECT count(*) FROM templates WHERE user_id = %lld AND source = 'enroll'",
                 (long long)u->id) == 2);
    TAP_OK(q_int("SELECT count(*) FROM templates WHERE user_id = %lld AND source = 'learned'",
                 (long long)u->id) == 1);
    r.max_learned = -1;
    TAP_OK(fa_store_record_commit(st, &r, &err) == FA_EINVAL);
    /* 0 (learning configured off): the sample and older learned ones go. */
    r.max_learned = 0;
    TAP_OK(fa_store_record_commit(st, &r, &err) == FA_OK);
    TAP_OK(q_int("SELECT count(*) FROM templates WHERE user_id = %lld AND source = 'learned'",
                 (long long)u->id) == 0);
    TAP_OK(q_int("SELECT count(*) FROM templates WHERE user_id = %lld AND source = 'enroll'",
                 (long long)u->id) == 2);

    /* update: replace_templates leaves only the new enrolled one. */
    r = rec_init(acme, u, "faceUpdate");
    rec_template(&r, &vec, 3.0f, "enroll");
    r.replace_templates = 1;
    TAP_OK(fa_store_record_commit(st, &r, &err) == FA_OK);
    TAP_OK(fa_store_templates_load(st, u->id, "test-model", DIM, &vecs, &n, &err) == FA_OK);
    TAP_OK(n == 1 && vecs[0] == 3.0f);
    free(vecs);
}

/* A failure after some rows were written leaves no trace: an existing image
 * id for the thumbnail lets the template delete + insert and the original
 * through, then the thumbnail's PRIMARY KEY fails. */
static void test_record_midway(struct fa_store *st, int64_t acme, const struct fa_user *u)
{
    struct fa_store_record r;
    struct fa_err err = {{0}};
    struct test_image o, t;
    struct counts before = counts_now();
    struct fa_user got;
    struct test_sample vec;
    struct fa_db_stmt *s = NULL;

    r = rec_init(acme, u, "faceUpdate");
    rec_template(&r, &vec, 9.0f, "enroll");
    r.replace_templates = 1;
    r.original = img_new(&o, "o");
    r.thumbnail = img_new(&t, "t");
    fa_db_prepare(g_raw, "SELECT id FROM images LIMIT 1", &s);
    if (fa_db_step(s) == FA_DB_ROW)
        snprintf(t.im.id, sizeof t.im.id, "%s", (const char *)fa_db_column_text(s, 0));
    fa_db_finalize(s);
    r.set_state = 1;
    r.new_state = FA_USER_FAILURE;
    TAP_OK(fa_store_record_commit(st, &r, &err) == FA_EDB);
    tap_ok(strstr(err.msg, g_engine == FA_DB_SQLITE ? "images.id" : "images_pkey") != NULL,
           "engine message kept: %s", err.msg);
    TAP_OK(counts_equal(before, counts_now()));
    TAP_OK(fa_store_user_get(st, acme, u->user_name, &got, &err) == FA_OK);
    TAP_OK(got.state == FA_USER_SUCCESS);
    TAP_OK(q_int("SELECT count(*) FROM templates WHERE user_id = %lld", (long long)u->id) == 1);
}

/* Failures at the first write or before it: nothing written either. */
static void test_record_refused(struct fa_store *st, int64_t acme, int64_t globex,
                                const struct fa_user *u)
{
    struct fa_store_record r;
    struct fa_err err = {{0}};
    struct test_image o;
    struct counts before = counts_now();
    struct fa_user got;

    /* Foreign key: an unknown customer for a search record. */
    r = rec_init(999999, NULL, "search");
    r.original = img_new(&o, "o");
    TAP_OK(fa_store_record_commit(st, &r, &err) == FA_EDB);
    tap_ok(strstr(err.msg, g_engine == FA_DB_SQLITE ? "FOREIGN KEY" : "foreign key") != NULL,
           "FK failure: %s", err.msg);
    TAP_OK(counts_equal(before, counts_now()));

    /* Another customer's user id through globex: not found, nothing written. */
    r = rec_init(globex, u, "authenticate");
    r.set_state = 1;
    r.new_state = FA_USER_FAILURE;
    TAP_OK(fa_store_record_commit(st, &r, &err) == FA_ENOTFOUND);
    TAP_OK(counts_equal(before, counts_now()));
    TAP_OK(fa_store_user_get(st, acme, u->user_name, &got, &err) == FA_OK &&
           got.state == FA_USER_SUCCESS);
}

/* ---- threads ---- */

#define N_THREADS 4
#define USERS_PER_THREAD 25

struct worker {
    struct fa_store *st;
    int64_t customer_id;
    int idx;
    int failures;
    char msg[FA_ERR_MAX + 40];
};

static int worker_one(struct worker *w, int i)
{
    struct fa_err err = {{0}};
    struct fa_user u;
    struct fa_store_record r;
    struct test_sample vec;
    float *vecs = NULL;
    char name[32];
    int n = 0;

    snprintf(name, sizeof name, "t%d-u%02d", w->idx, i);
    user_init(&u, w->customer_id, name);
    if (fa_store_user_create(w->st, &u, &err) != FA_OK)
        goto fail;
    r = rec_init(w->customer_id, &u, "enroll");
    rec_template(&r, &vec, (float)i, "enroll");
    r.set_state = 1;
    r.new_state = FA_USER_SUCCESS;
    r.require_state = 1;
    r.expected_state = FA_USER_DRAFT;
    if (fa_store_record_commit(w->st, &r, &err) != FA_OK)
        goto fail;
    if (fa_store_templates_load(w->st, u.id, "test-model", DIM, &vecs, &n, &err) != FA_OK)
        goto fail;
    free(vecs);
    if (n != 1)
        goto fail;
    return 1;
fail:
    snprintf(w->msg, sizeof w->msg, "%s: %s", name, err.msg);
    return 0;
}

static void *worker_run(void *p)
{
    struct worker *w = p;
    int i;

    for (i = 0; i < USERS_PER_THREAD; i++) {
        if (!worker_one(w, i))
            w->failures++;
    }
    return NULL;
}

static int conn_count(struct fa_store *st)
{
    struct fa_conn *c;
    int n = 0;

    pthread_mutex_lock(&st->lock);
    for (c = st->conns; c != NULL; c = c->next)
        n++;
    pthread_mutex_unlock(&st->lock);
    return n;
}

static void test_threads(struct fa_store *st, int64_t customer_id)
{
    pthread_t th[N_THREADS];
    struct worker w[N_THREADS];
    int i, failures = 0, started = 0;
    long long before = q_int("SELECT count(*) FROM users");

    for (i = 0; i < N_THREADS; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].st = st;
        w[i].customer_id = customer_id;
        w[i].idx = i;
        if (pthread_create(&th[i], NULL, worker_run, &w[i]) == 0)
            started++;
    }
    TAP_OK(started == N_THREADS);
    for (i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
        failures += w[i].failures;
        if (w[i].failures)
            tap_diag("thread %d: %d failures, last %s", i, w[i].failures, w[i].msg);
    }
    TAP_OK(failures == 0);
    TAP_OK(q_int("SELECT count(*) FROM users") == before + N_THREADS * USERS_PER_THREAD);
    TAP_OK(q_int("SELECT count(*) FROM users WHERE user_name LIKE 't%%-u%%'"
                 " AND state = 'success'") == N_THREADS * USERS_PER_THREAD);
    /* Each ended thread's destructor closed its connection: only ours is left. */
    tap_ok(conn_count(st) == 1, "connections left after the threads ended: %d", conn_count(st));
}

/* ---- cascades ---- */

static void test_cascade(int64_t acme, int64_t globex, const struct fa_user *alice)
{
    struct counts globex_before;
    long long images_of_alice;

    fa_db_exec(g_raw, "PRAGMA foreign_keys=ON");

    /* Deleting a user keeps the log but drops its user id and the images. */
    images_of_alice = q_int("SELECT count(*) FROM images WHERE user_id = %lld",
                            (long long)alice->id);
    TAP_OK(images_of_alice > 0);
    TAP_OK(fa_db_exec(g_raw, "DELETE FROM users WHERE user_name = 'alice' AND customer_id = "
                             "(SELECT id FROM customers WHERE name = 'acme')") == FA_DB_OK);
    TAP_OK(q_int("SELECT count(*) FROM images WHERE user_id = %lld", (long long)alice->id) == 0);
    TAP_OK(q_int("SELECT count(*) FROM templates WHERE user_id = %lld", (long long)alice->id) == 0);
    TAP_OK(q_int("SELECT count(*) FROM transactions WHERE user_name = 'alice' AND customer_id = "
                 "%lld AND user_id IS NULL",
                 (long long)acme) >= 3);
    TAP_OK(q_int("SELECT count(*) FROM transactions WHERE customer_id = %lld AND"
                 " (user_id IS NOT NULL AND user_id NOT IN (SELECT id FROM users) OR"
                 " original_id IS NOT NULL AND original_id NOT IN (SELECT id FROM images) OR"
                 " thumbnail_id IS NOT NULL AND thumbnail_id NOT IN (SELECT id FROM images))",
                 (long long)acme) == 0);

    globex_before.users = q_int("SELECT count(*) FROM users WHERE customer_id = %lld",
                                (long long)globex);
    globex_before.transactions =
        q_int("SELECT count(*) FROM transactions WHERE customer_id = %lld", (long long)globex);
    TAP_OK(fa_db_exec(g_raw, "DELETE FROM customers WHERE name = 'acme'") ==
           FA_DB_OK);
    TAP_OK(q_int("SELECT count(*) FROM users WHERE customer_id = %lld", (long long)acme) == 0);
    TAP_OK(q_int("SELECT count(*) FROM tokens WHERE customer_id = %lld", (long long)acme) == 0);
    TAP_OK(q_int("SELECT count(*) FROM images WHERE customer_id = %lld", (long long)acme) == 0);
    TAP_OK(q_int("SELECT count(*) FROM transactions WHERE customer_id = %lld",
                 (long long)acme) == 0);
    TAP_OK(q_int("SELECT count(*) FROM templates WHERE user_id NOT IN (SELECT id FROM users)") ==
           0);
    TAP_OK(q_int("SELECT count(*) FROM users WHERE customer_id = %lld", (long long)globex) ==
           globex_before.users);
    TAP_OK(q_int("SELECT count(*) FROM transactions WHERE customer_id = %lld",
                 (long long)globex) == globex_before.transactions);
}

/* ---- set-up ---- */

/* ---- samples: several models per photo ---- */

#define DIM2 4 /* a second, smaller model */

struct two_model_sample {
    float a[DIM], b[DIM2];
    struct fa_store_template tpl[2];
    struct fa_store_sample smp;
};

/* A photo with model m1 (tag in element 0) and, when with_m2, model m2. */
static void two_model_init(struct two_model_sample *x, float tag, int with_m2,
                           const char *source)
{
    for (int i = 0; i < DIM; i++)
        x->a[i] = (float)i * 0.01f;
    for (int i = 0; i < DIM2; i++)
        x->b[i] = tag + (float)i;
    x->a[0] = tag;
    x->tpl[0] = (struct fa_store_template){"m1", DIM, x->a};
    x->tpl[1] = (struct fa_store_template){"m2", DIM2, x->b};
    x->smp = (struct fa_store_sample){x->tpl, with_m2 ? 2 : 1, source, 1.5f};
}

static void test_samples_refused(struct fa_store *st, int64_t acme, const struct fa_user *u)
{
    struct fa_store_record r = rec_init(acme, u, "enroll");
    struct two_model_sample x;
    struct fa_store_sample many[FA_STORE_SAMPLES_MAX + 1];
    struct fa_err err = {{0}};
    struct counts before = counts_now();

    two_model_init(&x, 1.0f, 1, "enroll");
    x.tpl[1].model_id = "m1";
    r.samples = &x.smp;
    r.n_samples = 1;
    TAP_OK(fa_store_record_commit(st, &r, &err) == FA_EINVAL);
    tap_ok(strstr(err.msg, "twice") != NULL, "one model twice in a photo: %s", err.msg);
    two_model_init(&x, 1.0f, 1, "enroll");
    x.a[3] = NAN;
    TAP_OK(fa_store_record_commit(st, &r, &err) == FA_EINVAL);
    tap_ok(strstr(err.msg, "finite") != NULL, "a NaN in a template: %s", err.msg);
    two_model_init(&x, 1.0f, 1, "enroll");
    x.smp.n_templates = 0;
    TAP_OK(fa_store_record_commit(st, &r, &err) == FA_EINVAL);
    x.smp.n_templates = 2;
    x.smp.source = "guessed";
    TAP_OK(fa_store_record_commit(st, &r, &err) == FA_EINVAL);
    two_model_init(&x, 1.0f, 1, "enroll");
    for (int i = 0; i <= FA_STORE_SAMPLES_MAX; i++)
        many[i] = x.smp;
    r.samples = many;
    r.n_samples = FA_STORE_SAMPLES_MAX + 1;
    TAP_OK(fa_store_record_commit(st, &r, &err) == FA_EINVAL);
    r.samples = NULL;
    r.n_samples = 1;
    TAP_OK(fa_store_record_commit(st, &r, &err) == FA_EINVAL);
    tap_ok(counts_equal(before, counts_now()), "refused records write nothing");
}

/* Two enrolled photos (A with m1 and m2, B with m1 only), then four learned
 * ones with both models and max_learned 2. */
static void test_samples(struct fa_store *st, int64_t acme)
{
    static const struct fa_store_model both[] = {{"m1", DIM}, {"m2", DIM2}};
    static const struct fa_store_model only_m2[] = {{"m2", DIM2}};
    static const struct fa_store_model wrong[] = {{"m2", DIM2 + 1}};
    struct fa_store_record r;
    struct two_model_sample x[2];
    struct fa_store_sample pair[2];
    struct fa_store_samples *s = NULL;
    struct fa_err err = {{0}};
    struct fa_user u;
    int enrolled = -1, learned = -1, ok = 1;

    user_init(&u, acme, "sam");
    if (!TAP_OK(fa_store_user_create(st, &u, &err) == FA_OK))
        return;
    test_samples_refused(st, acme, &u);
    r = rec_init(acme, &u, "enroll");
    two_model_init(&x[0], 1.0f, 1, "enroll");
    two_model_init(&x[1], 2.0f, 0, "enroll");
    pair[0] = x[0].smp;
    pair[1] = x[1].smp;
    r.samples = pair;
    r.n_samples = 2;
    TAP_OK(fa_store_record_commit(st, &r, &err) == FA_OK);
    TAP_OK(q_int("SELECT count(*) FROM templates WHERE user_id = %lld", (long long)u.id) == 3);
    TAP_OK(q_int("SELECT count(DISTINCT sample) FROM templates WHERE user_id = %lld",
                 (long long)u.id) == 2);

    TAP_OK(fa_store_samples_load(st, u.id, both, 2, &s, &err) == FA_OK);
    tap_ok(s != NULL && s->n == 2 && s->n_models == 2 && s->n_learned == 0 &&
               s->vec[0][0] == 1.0f && s->vec[1] != NULL && s->vec[1][3] == 4.0f && s->vec[2][0] == 2.0f &&
               s->vec[3] == NULL,
           "two photos grouped, the model photo B lacks is NULL");
    fa_store_samples_free(s);
    TAP_OK(fa_store_samples_load(st, u.id, only_m2, 1, &s, &err) == FA_OK);
    tap_ok(s != NULL && s->n == 1 && s->vec[0][0] == 1.0f,
           "a photo without any asked model is left out");
    fa_store_samples_free(s);
    TAP_OK(fa_store_samples_load(st, u.id, wrong, 1, &s, &err) == FA_EDB && s == NULL);
    TAP_OK(fa_store_samples_load(st, u.id, both, 0, &s, &err) == FA_EINVAL);

    for (int i = 0; i < 4; i++) {
        r = rec_init(acme, &u, "authenticate");
        two_model_init(&x[0], 10.0f + (float)i, 1, "learned");
        r.samples = &x[0].smp;
        r.n_samples = 1;
        r.max_learned = 2;
        ok &= fa_store_record_commit(st, &r, &err) == FA_OK;
    }
    tap_ok(ok, "four learned photos committed");
    TAP_OK(fa_store_samples_count(st, u.id, &enrolled, &learned, &err) == FA_OK);
    tap_ok(enrolled == 2 && learned == 2, "2 enrolled + 2 learned photos kept (%d, %d)", enrolled,
           learned);
    TAP_OK(q_int("SELECT count(*) FROM templates WHERE user_id = %lld AND source = 'learned'",
                 (long long)u.id) == 4);
    TAP_OK(fa_store_samples_load(st, u.id, both, 2, &s, &err) == FA_OK);
    tap_ok(s != NULL && s->n == 4 && s->n_learned == 2 && s->vec[0][0] == 1.0f &&
               s->vec[2][0] == 2.0f && s->vec[4][0] == 12.0f && s->vec[5][0] == 12.0f &&
               s->vec[6][0] == 13.0f,
           "enrolled first, then the two newest learned, each with both models");
    fa_store_samples_free(s);
    TAP_OK(q_int("SELECT max(sample) FROM templates WHERE user_id = %lld", (long long)u.id) == 6);

    r = rec_init(acme, &u, "faceUpdate");
    two_model_init(&x[0], 20.0f, 1, "enroll");
    r.samples = &x[0].smp;
    r.n_samples = 1;
    r.replace_templates = 1;
    TAP_OK(fa_store_record_commit(st, &r, &err) == FA_OK);
    TAP_OK(fa_store_samples_count(st, u.id, &enrolled, &learned, &err) == FA_OK &&
           enrolled == 1 && learned == 0);
    TAP_OK(q_int("SELECT max(sample) FROM templates WHERE user_id = %lld", (long long)u.id) == 1);
    fa_store_samples_free(NULL);
}

static void backend_body(void)
{
    struct fa_store *st = NULL;
    struct fa_err err = {{0}};
    struct fa_user alice, globex_user;
    char tok[FA_TOKEN_CHARS + 1], tok2[FA_TOKEN_CHARS + 1];
    int64_t acme, globex;

    if (!tap_ok(fa_store_open(g_db, &st, &err) == FA_OK, "open: %s", err.msg))
        goto out;
    if (!TAP_OK(raw_open()))
        goto out;

    test_open(st);
    if (g_engine == FA_DB_SQLITE)
        test_open_refused();
    else
        test_open_refused_pg();
    test_customers(st);
    test_login(st, tok);
    test_tokens(st, tok, tok2);
    test_passwd(st, tok, tok2);
    acme = customer_id_of("acme");
    globex = customer_id_of("globex");
    test_users(st, acme, globex);
    if (!TAP_OK(fa_store_user_get(st, acme, "alice", &alice, &err) == FA_OK) ||
        !TAP_OK(fa_store_user_get(st, globex, "alice", &globex_user, &err) == FA_OK))
        goto out;
    test_record_enroll(st, acme, &alice);
    test_record_score_null(st, acme, &alice);
    test_learning(st, acme, &alice);
    test_samples(st, acme);
    test_record_midway(st, acme, &alice);
    test_record_refused(st, acme, globex, &alice);
    test_threads(st, globex);
    TAP_OK(fa_store_writable(st) == 1);
    test_cascade(acme, globex, &alice);
out:
    fa_store_free(st);
}

int main(void)
{
    return fixture_main("fa_test_store", backend_body);
}
