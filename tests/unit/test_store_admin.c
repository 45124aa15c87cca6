/*
 * test_store_admin.c — user management, lists, search spaces, settings, the
 * log and the template walk of the SQLite store, against a real database
 * file in a fresh temporary directory (removed at the end).
 *
 * Like test_store.c, checks use the public API where it shows the effect
 * and a second raw connection (g_raw) where only rows can tell: that a
 * delete left no orphans, that a refused write changed nothing. Every
 * customer-scoped call is also tried with another customer's id, which must
 * never see or change the first customer's data.
 */
#include "faceauth/store.h"

#include <math.h>
#include <stdarg.h>
#include "store/db.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"
#include "store_fixture.h"
#include "tap.h"

/* ---- helpers ---- */

static int exec(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int exec(const char *fmt, ...)
{
    char sql[512];
    va_list ap;
    int r;

    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    r = fa_db_exec(g_raw, sql);
    if (r != FA_DB_OK)
        tap_diag("exec '%s': %s", sql, fa_db_errmsg(g_raw));
    return r == FA_DB_OK;
}

static int64_t customer_new(struct fa_store *st, const char *name)
{
    struct fa_err err = {{0}};

    if (fa_store_customer_add(st, name, "pw", &err) != FA_OK) {
        tap_diag("customer %s: %s", name, err.msg);
        return 0;
    }
    return q_int("SELECT id FROM customers WHERE name = '%s'", name);
}

/* Create user name of customer_id; u->id is 0 when that failed. */
static void user_new(struct fa_store *st, int64_t customer_id, const char *name, struct fa_user *u)
{
    struct fa_err err = {{0}};

    user_init(u, customer_id, name);
    if (fa_store_user_create(st, u, &err) != FA_OK) {
        tap_diag("user %s: %s", name, err.msg);
        u->id = 0;
    }
}

/* Point r at an enrolled template of model, tagged with tag in element 0. */
static void rec_template(struct fa_store_record *r, struct test_sample *vec, float tag,
                         const char *model)
{
    rec_template_set(r, vec, tag, model, "enroll");
}

/* A successful enroll of u with a template and both images (o, t filled in). */
static enum fa_rc enroll(struct fa_store *st, const struct fa_user *u, float tag,
                         struct test_image *o, struct test_image *t)
{
    struct fa_store_record r = rec_init(u->customer_id, u, "enroll");
    struct fa_err err = {{0}};
    struct test_sample vec;
    enum fa_rc rc;

    rec_template(&r, &vec, tag, "test-model");
    r.original = img_new(o, "o");
    r.thumbnail = img_new(t, "t");
    r.success = 1;
    r.score = 0.9;
    r.set_state = 1;
    r.new_state = FA_USER_SUCCESS;
    rc = fa_store_record_commit(st, &r, &err);
    if (rc != FA_OK)
        tap_diag("enroll %s: %s", u->user_name, err.msg);
    return rc;
}

/* An authenticate record of u that stores two more images. */
static enum fa_rc authenticate(struct fa_store *st, const struct fa_user *u, double score)
{
    struct fa_store_record r = rec_init(u->customer_id, u, "authenticate");
    struct test_image o, t;

    r.original = img_new(&o, "o");
    r.thumbnail = img_new(&t, "t");
    r.success = score >= 0.5;
    r.score = score;
    return fa_store_record_commit(st, &r, NULL);
}

static int fk_clean(void)
{
    /* PostgreSQL checks every foreign key at each statement. */
    return g_engine != FA_DB_SQLITE || q_int("SELECT count(*) FROM pragma_foreign_key_check") == 0;
}

/* ---- schema and the enrolled face ---- */

static void test_schema(void)
{
    /* migration 2 added enroll_attempts, 5 callback_events, 6 login_throttle and
     * user_throttle */
    TAP_OK(q_tables() == 17);
    if (g_engine != FA_DB_SQLITE)
        return;
    TAP_OK(q_int("SELECT count(*) FROM sqlite_schema WHERE name IN ('search_spaces',"
                 " 'search_space_users', 'pending_deletes', 'images_path',"
                 " 'users_customer_blacklisted')") == 5);
    TAP_OK(q_int("SELECT count(*) FROM pragma_table_info('users') WHERE name IN"
                 " ('blacklisted_at', 'face_original', 'face_thumbnail')") == 3);
    TAP_OK(q_int("SELECT count(*) FROM pragma_table_info('customers') WHERE name IN"
                 " ('check_liveliness', 'threshold', 'cb_enroll_accepted', 'cb_enroll_rejected',"
                 " 'cb_auth_success', 'cb_auth_failure')") == 6);
}

static void test_face_ids(struct fa_store *st, int64_t acme)
{
    struct fa_store_record r;
    struct fa_err err = {{0}};
    struct test_image o, t, o2, t2;
    struct fa_user u, got;

    user_new(st, acme, "facey", &u);
    TAP_OK(u.id > 0 && u.face_original[0] == '\0' && u.blacklisted_at == 0);
    TAP_OK(fa_store_user_get(st, acme, "facey", &got, &err) == FA_OK);
    TAP_OK(got.face_original[0] == '\0' && got.face_thumbnail[0] == '\0');

    TAP_OK(enroll(st, &u, 1.0f, &o, &t) == FA_OK);
    TAP_OK(fa_store_user_get(st, acme, "facey", &got, &err) == FA_OK);
    tap_ok(strcmp(got.face_original, o.im.id) == 0 && strcmp(got.face_thumbnail, t.im.id) == 0,
           "enroll success sets the face ids");

    /* A failure state change does not touch them. */
    r = rec_init(acme, &u, "faceUpdate");
    r.original = img_new(&o2, "o");
    r.thumbnail = img_new(&t2, "t");
    r.set_state = 1;
    r.new_state = FA_USER_FAILURE;
    TAP_OK(fa_store_record_commit(st, &r, &err) == FA_OK);
    TAP_OK(fa_store_user_get(st, acme, "facey", &got, &err) == FA_OK);
    TAP_OK(got.state == FA_USER_FAILURE && strcmp(got.face_original, o.im.id) == 0);
    /* Nor does a record without a state change. */
    TAP_OK(authenticate(st, &u, 0.9) == FA_OK);
    TAP_OK(fa_store_user_get(st, acme, "facey", &got, &err) == FA_OK);
    TAP_OK(strcmp(got.face_thumbnail, t.im.id) == 0);

    /* A successful update points at its own images. */
    r = rec_init(acme, &u, "faceUpdate");
    r.original = img_new(&o2, "o");
    r.thumbnail = img_new(&t2, "t");
    r.set_state = 1;
    r.new_state = FA_USER_SUCCESS;
    TAP_OK(fa_store_record_commit(st, &r, &err) == FA_OK);
    TAP_OK(fa_store_user_get(st, acme, "facey", &got, &err) == FA_OK);
    TAP_OK(strcmp(got.face_original, o2.im.id) == 0 && strcmp(got.face_thumbnail, t2.im.id) == 0);
    /* A success that stored no image leaves none. */
    r = rec_init(acme, &u, "faceUpdate");
    r.set_state = 1;
    r.new_state = FA_USER_SUCCESS;
    TAP_OK(fa_store_record_commit(st, &r, &err) == FA_OK);
    TAP_OK(fa_store_user_get(st, acme, "facey", &got, &err) == FA_OK);
    TAP_OK(got.face_original[0] == '\0' && got.face_thumbnail[0] == '\0');
}

/* ---- update ---- */

static void test_update_fields(struct fa_store *st, int64_t acme, int64_t globex)
{
    struct fa_user_changes chg;
    struct fa_err err = {{0}};
    struct fa_user u, out, got;
    char long_text[FA_TEXT_MAX + 2];

    user_new(st, acme, "upd", &u);
    memset(&chg, 0, sizeof chg);
    chg.full_name = "New Name";
    chg.phone = "+4412345";
    TAP_OK(fa_store_user_update(st, acme, "upd", &chg, &out, &err) == FA_OK);
    TAP_OK(out.id == u.id && strcmp(out.full_name, "New Name") == 0 &&
           strcmp(out.phone, "+4412345") == 0);
    TAP_OK(strcmp(out.email, u.email) == 0 && strcmp(out.country_code, "US") == 0);
    TAP_OK(strcmp(out.enroll_token, u.enroll_token) == 0 && out.state == FA_USER_DRAFT);
    TAP_OK(out.updated == u.updated);

    /* Empty strings are values, not "unchanged". */
    memset(&chg, 0, sizeof chg);
    chg.email = "";
    TAP_OK(fa_store_user_update(st, acme, "upd", &chg, &out, &err) == FA_OK);
    TAP_OK(out.email[0] == '\0' && strcmp(out.full_name, "New Name") == 0);

    memset(long_text, 'x', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = '\0';
    memset(&chg, 0, sizeof chg);
    chg.full_name = "changed";
    chg.country_code = long_text;
    TAP_OK(fa_store_user_update(st, acme, "upd", &chg, &out, &err) == FA_EINVAL);
    tap_ok(strstr(err.msg, "countryCode") != NULL, "too long: %s", err.msg);
    TAP_OK(out.id == 0);
    chg.country_code = NULL;
    chg.user_name = "bad name";
    TAP_OK(fa_store_user_update(st, acme, "upd", &chg, &out, &err) == FA_EINVAL);
    tap_ok(strstr(err.msg, "userName") != NULL, "bad new name: %s", err.msg);
    TAP_OK(fa_store_user_get(st, acme, "upd", &got, &err) == FA_OK &&
           strcmp(got.full_name, "New Name") == 0);

    /* Unknown here, and another customer's user is unknown too. */
    memset(&chg, 0, sizeof chg);
    chg.full_name = "hijacked";
    TAP_OK(fa_store_user_update(st, acme, "nobody", &chg, &out, &err) == FA_ENOTFOUND);
    tap_ok(strstr(err.msg, "nobody") != NULL, "not found: %s", err.msg);
    TAP_OK(fa_store_user_update(st, globex, "upd", &chg, &out, &err) == FA_ENOTFOUND);
    TAP_OK(fa_store_user_get(st, acme, "upd", &got, &err) == FA_OK &&
           strcmp(got.full_name, "New Name") == 0);
    TAP_OK(fa_store_user_update(st, acme, "bad name", &chg, &out, &err) == FA_EINVAL);
    TAP_OK(fa_store_user_update(st, acme, "upd", NULL, &out, &err) == FA_EINVAL);
}

static void test_update_rename(struct fa_store *st, int64_t acme, int64_t globex)
{
    struct fa_user_changes chg;
    struct fa_err err = {{0}};
    struct fa_user a, b, g, out, got;

    user_new(st, acme, "ren-a", &a);
    user_new(st, acme, "ren-b", &b);
    user_new(st, globex, "ren-c", &g);

    memset(&chg, 0, sizeof chg);
    chg.user_name = "ren-a2";
    TAP_OK(fa_store_user_update(st, acme, "ren-a", &chg, &out, &err) == FA_OK);
    TAP_OK(out.id == a.id && strcmp(out.user_name, "ren-a2") == 0);
    TAP_OK(fa_store_user_get(st, acme, "ren-a", &got, &err) == FA_ENOTFOUND);
    TAP_OK(fa_store_user_get(st, acme, "ren-a2", &got, &err) == FA_OK && got.id == a.id);

    /* Taken: conflict, and the other change of the same call is not applied. */
    chg.user_name = "ren-b";
    chg.full_name = "should not stick";
    TAP_OK(fa_store_user_update(st, acme, "ren-a2", &chg, &out, &err) == FA_ECONFLICT);
    tap_ok(strcmp(err.msg, "userName 'ren-b' already exists") == 0, "conflict: %s", err.msg);
    TAP_OK(fa_store_user_get(st, acme, "ren-a2", &got, &err) == FA_OK &&
           strcmp(got.full_name, "Full ren-a") == 0);
    TAP_OK(fa_store_user_get(st, acme, "ren-b", &got, &err) == FA_OK && got.id == b.id);

    /* Renaming to itself is no conflict; another customer's name is free. */
    chg.user_name = "ren-a2";
    chg.full_name = NULL;
    TAP_OK(fa_store_user_update(st, acme, "ren-a2", &chg, &out, &err) == FA_OK);
    chg.user_name = "ren-c";
    TAP_OK(fa_store_user_update(st, acme, "ren-a2", &chg, &out, &err) == FA_OK);
    TAP_OK(fa_store_user_get(st, globex, "ren-c", &got, &err) == FA_OK && got.id == g.id);
    TAP_OK(fa_store_user_get(st, acme, "ren-c", &got, &err) == FA_OK && got.id == a.id);
}

static void test_update_reset(struct fa_store *st, int64_t acme)
{
    struct fa_user_changes chg;
    struct fa_err err = {{0}};
    struct test_image o, t;
    struct fa_user u, out, got;
    const char *members[] = {"reset-me"};

    user_new(st, acme, "reset-me", &u);
    TAP_OK(enroll(st, &u, 5.0f, &o, &t) == FA_OK);
    TAP_OK(fa_store_space_store(st, acme, "reset-space", members, 1, &err) == FA_OK);
    TAP_OK(exec("UPDATE users SET updated = 1000 WHERE id = %lld", (long long)u.id));
    TAP_OK(q_int("SELECT count(*) FROM templates WHERE user_id = %lld", (long long)u.id) == 1);

    memset(&chg, 0, sizeof chg);
    chg.reset_face = 1;
    TAP_OK(fa_store_user_update(st, acme, "reset-me", &chg, &out, &err) == FA_OK);
    TAP_OK(out.state == FA_USER_DRAFT && out.updated >= u.updated && out.updated != 1000);
    TAP_OK(strlen(out.enroll_token) == FA_TOKEN_CHARS &&
           strcmp(out.enroll_token, u.enroll_token) != 0);
    TAP_OK(out.face_original[0] == '\0' && out.face_thumbnail[0] == '\0');
    TAP_OK(q_int("SELECT count(*) FROM templates WHERE user_id = %lld", (long long)u.id) == 0);
    /* The old token no longer finds the user; the new one does. */
    TAP_OK(fa_store_user_by_token(st, acme, u.enroll_token, &got, &err) == FA_ENOTFOUND);
    TAP_OK(fa_store_user_by_token(st, acme, out.enroll_token, &got, &err) == FA_OK &&
           got.id == u.id);
    /* Images stay for the log; membership stays. */
    TAP_OK(q_int("SELECT count(*) FROM images WHERE user_id = %lld", (long long)u.id) == 2);
    TAP_OK(q_int("SELECT count(*) FROM search_space_users WHERE user_id = %lld",
                 (long long)u.id) == 1);
    /* And it can be enrolled again. */
    TAP_OK(enroll(st, &out, 6.0f, &o, &t) == FA_OK);
}

/* ---- delete, pending paths ---- */

static int paths_contain(char **paths, int n, const char *p)
{
    int i;

    for (i = 0; i < n; i++) {
        if (strcmp(paths[i], p) == 0)
            return 1;
    }
    return 0;
}

static int paths_sorted(char **paths, int n)
{
    int i;

    for (i = 1; i < n; i++) {
        if (strcmp(paths[i - 1], paths[i]) >= 0)
            return 0;
    }
    return 1;
}

static void test_delete_refused(struct fa_store *st, int64_t acme, int64_t globex,
                                const struct fa_user *u)
{
    struct fa_err err = {{0}};
    char **paths = (char **)1;
    int64_t uid = 7;
    int n = 7;
    long long images = q_int("SELECT count(*) FROM images");

    TAP_OK(fa_store_user_delete(st, globex, u->user_name, &uid, &paths, &n, &err) ==
           FA_ENOTFOUND);
    TAP_OK(uid == 0 && paths == NULL && n == 0);
    TAP_OK(fa_store_user_delete(st, acme, "bad name", &uid, &paths, &n, &err) == FA_EINVAL);

    /* A failure inside the transaction (a trigger aborts the user delete)
     * leaves the pending table, the images and the user as they were. */
    if (g_engine == FA_DB_SQLITE)
        TAP_OK(exec("CREATE TRIGGER no_del BEFORE DELETE ON users WHEN old.user_name = '%s'"
                    " BEGIN SELECT RAISE(ABORT, 'refused'); END",
                    u->user_name));
    else
        TAP_OK(exec("CREATE FUNCTION no_del() RETURNS trigger LANGUAGE plpgsql AS $$"
                    " BEGIN RAISE EXCEPTION 'refused'; END $$") &&
               exec("CREATE TRIGGER no_del BEFORE DELETE ON users FOR EACH ROW"
                    " WHEN (OLD.user_name = '%s') EXECUTE FUNCTION no_del()",
                    u->user_name));
    TAP_OK(fa_store_user_delete(st, acme, u->user_name, &uid, &paths, &n, &err) == FA_EDB);
    tap_ok(strstr(err.msg, "refused") != NULL, "midway failure: %s", err.msg);
    TAP_OK(uid == 0 && paths == NULL && n == 0);
    TAP_OK(q_int("SELECT count(*) FROM pending_deletes") == 0);
    TAP_OK(q_int("SELECT count(*) FROM images") == images);
    TAP_OK(q_int("SELECT count(*) FROM users WHERE id = %lld", (long long)u->id) == 1);
    TAP_OK(exec("DROP TRIGGER no_del%s", g_engine == FA_DB_SQLITE ? "" : " ON users"));
}

static void test_delete(struct fa_store *st, int64_t acme, int64_t globex)
{
    struct fa_err err = {{0}};
    struct test_image o, t;
    struct fa_user u, bare;
    const char *members[] = {"doomed", "bare"};
    char **paths = NULL, **pending = NULL;
    int64_t uid = 0;
    int n = 0, np = 0, known = 0;

    user_new(st, acme, "doomed", &u);
    user_new(st, acme, "bare", &bare);
    TAP_OK(enroll(st, &u, 7.0f, &o, &t) == FA_OK);
    TAP_OK(authenticate(st, &u, 0.8) == FA_OK);
    TAP_OK(fa_store_space_store(st, acme, "doomed-space", members, 2, &err) == FA_OK);
    TAP_OK(fa_store_image_path_known(st, o.path, &known, &err) == FA_OK && known == 1);

    test_delete_refused(st, acme, globex, &u);

    TAP_OK(fa_store_user_delete(st, acme, "doomed", &uid, &paths, &n, &err) == FA_OK);
    TAP_OK(uid == u.id);
    if (tap_ok(n == 4, "4 image paths returned, got %d", n)) {
        TAP_OK(paths_contain(paths, n, o.path) && paths_contain(paths, n, t.path));
        TAP_OK(paths_sorted(paths, n));
    }
    TAP_OK(q_int("SELECT count(*) FROM pending_deletes") == 4);
    TAP_OK(q_int("SELECT count(*) FROM users WHERE id = %lld", (long long)u.id) == 0);
    TAP_OK(q_int("SELECT count(*) FROM templates WHERE user_id = %lld", (long long)u.id) == 0);
    TAP_OK(q_int("SELECT count(*) FROM images WHERE user_id = %lld", (long long)u.id) == 0);
    TAP_OK(q_int("SELECT count(*) FROM search_space_users WHERE user_id = %lld",
                 (long long)u.id) == 0);
    TAP_OK(q_int("SELECT count(*) FROM search_space_users m JOIN search_spaces s"
                 " ON s.id = m.space_id WHERE s.name = 'doomed-space'") == 1);
    /* The log keeps the rows, without the user or the images. */
    TAP_OK(q_int("SELECT count(*) FROM transactions WHERE user_name = 'doomed'"
                 " AND user_id IS NULL AND original_id IS NULL AND thumbnail_id IS NULL") == 2);
    TAP_OK(fk_clean());
    TAP_OK(fa_store_image_path_known(st, o.path, &known, &err) == FA_OK && known == 0);
    TAP_OK(fa_store_image_path_known(st, "images/nothing.jpg", &known, &err) == FA_OK &&
           known == 0);

    /* After a "crash" the same paths are listed; done forgets them. */
    TAP_OK(fa_store_pending_list(st, &pending, &np, &err) == FA_OK);
    TAP_OK(np == n && np == 4 && paths_contain(pending, np, t.path));
    TAP_OK(fa_store_pending_done(st, paths, n, &err) == FA_OK);
    fa_store_paths_free(pending, np);
    TAP_OK(fa_store_pending_list(st, &pending, &np, &err) == FA_OK);
    TAP_OK(np == 0 && pending == NULL);
    fa_store_paths_free(paths, n);

    TAP_OK(fa_store_user_delete(st, acme, "doomed", &uid, &paths, &n, &err) == FA_ENOTFOUND);
    /* A user without images: nothing to remove. */
    TAP_OK(fa_store_user_delete(st, acme, "bare", &uid, &paths, &n, &err) == FA_OK);
    TAP_OK(uid == bare.id && n == 0 && paths == NULL);
    TAP_OK(fa_store_pending_done(st, NULL, 0, &err) == FA_OK);
    {
        char *bad[] = {NULL};
        TAP_OK(fa_store_pending_done(st, bad, 1, &err) == FA_EINVAL);
    }
    TAP_OK(fa_store_image_path_known(st, NULL, &known, &err) == FA_EINVAL);
    fa_store_paths_free(NULL, 0);
}

/* ---- blacklist ---- */

static void test_blacklist(struct fa_store *st, int64_t acme, int64_t globex)
{
    struct fa_err err = {{0}};
    struct fa_user u, got;

    user_new(st, acme, "shady", &u);
    TAP_OK(fa_store_user_blacklist(st, acme, "shady", 1, &err) == FA_OK);
    TAP_OK(fa_store_user_get(st, acme, "shady", &got, &err) == FA_OK);
    TAP_OK(got.blacklisted == 1 && got.blacklisted_at >= u.created);
    /* Again: still blacklisted, and since the first time. */
    TAP_OK(exec("UPDATE users SET blacklisted_at = 123 WHERE id = %lld", (long long)u.id));
    TAP_OK(fa_store_user_blacklist(st, acme, "shady", 1, &err) == FA_OK);
    TAP_OK(fa_store_user_get(st, acme, "shady", &got, &err) == FA_OK);
    TAP_OK(got.blacklisted == 1 && got.blacklisted_at == 123);

    /* Another customer can neither whitelist it nor see it. */
    TAP_OK(fa_store_user_blacklist(st, globex, "shady", 0, &err) == FA_ENOTFOUND);
    tap_ok(strstr(err.msg, "shady") != NULL, "not found: %s", err.msg);
    TAP_OK(fa_store_user_get(st, acme, "shady", &got, &err) == FA_OK && got.blacklisted == 1);

    TAP_OK(fa_store_user_blacklist(st, acme, "shady", 0, &err) == FA_OK);
    TAP_OK(fa_store_user_get(st, acme, "shady", &got, &err) == FA_OK);
    TAP_OK(got.blacklisted == 0 && got.blacklisted_at == 0);
    TAP_OK(fa_store_user_blacklist(st, acme, "shady", 0, &err) == FA_OK); /* idempotent */
    TAP_OK(fa_store_user_blacklist(st, acme, "ghost", 1, &err) == FA_ENOTFOUND);
    TAP_OK(fa_store_user_blacklist(st, acme, "", 1, &err) == FA_EINVAL);
}

/* ---- lists ---- */

#define PAGER_USERS 25

static struct fa_user_filter filter(int page, int page_count)
{
    struct fa_user_filter f;

    memset(&f, 0, sizeof f);
    f.state = -1;
    f.page = page;
    f.page_count = page_count;
    return f;
}

/* users, total of one list call; -1 total on error. */
static long list(struct fa_store *st, int64_t customer_id, const struct fa_user_filter *f,
                 struct fa_user **users, int *n)
{
    struct fa_err err = {{0}};
    long total = -1;

    if (fa_store_users_list(st, customer_id, f, users, n, &total, &err) != FA_OK) {
        tap_diag("list: %s", err.msg);
        return -1;
    }
    return total;
}

/* pager has users p00..p24 with updated = 1000 + i and state i % 3. */
static int64_t pager_setup(struct fa_store *st)
{
    int64_t pager = customer_new(st, "pager");
    struct fa_user u;
    char name[16];
    int i;

    for (i = 0; i < PAGER_USERS; i++) {
        snprintf(name, sizeof name, "p%02d", i);
        user_new(st, pager, name, &u);
        exec("UPDATE users SET updated = %d, state = '%s' WHERE id = %lld", 1000 + i,
             fa_user_state_name((enum fa_user_state)(i % 3)), (long long)u.id);
    }
    return pager;
}

static void test_list_pages(struct fa_store *st, int64_t pager, int64_t globex)
{
    struct fa_user_filter f = filter(1, 10);
    struct fa_user *users = NULL;
    int n = 0;

    TAP_OK(list(st, pager, &f, &users, &n) == PAGER_USERS && n == 10);
    TAP_OK(n == 10 && users[0].updated == 1024 && strcmp(users[0].user_name, "p24") == 0 &&
           users[9].updated == 1015 && users[0].customer_id == pager);
    free(users);
    f.page = 3;
    TAP_OK(list(st, pager, &f, &users, &n) == PAGER_USERS && n == 5);
    TAP_OK(n == 5 && users[4].updated == 1000 && strcmp(users[4].full_name, "Full p00") == 0);
    free(users);
    f.page = 4;
    TAP_OK(list(st, pager, &f, &users, &n) == PAGER_USERS && n == 0 && users == NULL);
    f = filter(1, 100);
    TAP_OK(list(st, pager, &f, &users, &n) == PAGER_USERS && n == PAGER_USERS);
    free(users);
    f = filter(25, 1);
    TAP_OK(list(st, pager, &f, &users, &n) == PAGER_USERS && n == 1);
    TAP_OK(n == 1 && strcmp(users[0].user_name, "p00") == 0);
    free(users);

    /* Same updated: the newer row first. */
    exec("UPDATE users SET updated = 1024 WHERE user_name = 'p23' AND customer_id = %lld",
         (long long)pager);
    f = filter(1, 2);
    TAP_OK(list(st, pager, &f, &users, &n) == PAGER_USERS && n == 2);
    TAP_OK(n == 2 && strcmp(users[0].user_name, "p24") == 0 &&
           strcmp(users[1].user_name, "p23") == 0);
    free(users);
    exec("UPDATE users SET updated = 1023 WHERE user_name = 'p23' AND customer_id = %lld",
         (long long)pager);

    /* Another customer sees none of them. */
    f = filter(1, 100);
    TAP_OK(list(st, globex, &f, &users, &n) >= 0);
    {
        int i, leak = 0;
        for (i = 0; i < n; i++)
            leak |= users[i].customer_id != globex;
        TAP_OK(!leak);
    }
    free(users);
    TAP_OK(list(st, 999999, &f, &users, &n) == 0 && n == 0 && users == NULL);
}

static void test_list_filters(struct fa_store *st, int64_t pager)
{
    struct fa_user_filter f = filter(1, 100);
    struct fa_user *users = NULL;
    int i, n = 0, ok = 1;

    f.state = FA_USER_SUCCESS; /* i % 3 == 1: 8 of 25 */
    TAP_OK(list(st, pager, &f, &users, &n) == 8 && n == 8);
    for (i = 0; i < n; i++)
        ok &= users[i].state == FA_USER_SUCCESS;
    TAP_OK(ok);
    free(users);
    f.state = FA_USER_DRAFT;
    TAP_OK(list(st, pager, &f, &users, &n) == 9);
    free(users);

    f.state = -1;
    f.from = 1005;
    f.to = 1009;
    TAP_OK(list(st, pager, &f, &users, &n) == 5 && n == 5);
    TAP_OK(n == 5 && users[0].updated == 1009 && users[4].updated == 1005);
    free(users);
    f.to = 0;
    TAP_OK(list(st, pager, &f, &users, &n) == 20);
    free(users);
    f.from = 0;
    f.to = 1002;
    TAP_OK(list(st, pager, &f, &users, &n) == 3);
    free(users);
    f.from = 1005;
    f.to = 1005;
    f.state = FA_USER_FAILURE; /* 1005: i = 5, 5 % 3 == 2 */
    TAP_OK(list(st, pager, &f, &users, &n) == 1 && n == 1);
    free(users);
}

static void test_list_blacklist(struct fa_store *st, int64_t pager)
{
    struct fa_user_filter f = filter(1, 10);
    struct fa_user *users = NULL;
    struct fa_err err = {{0}};
    int n = 0;

    TAP_OK(fa_store_user_blacklist(st, pager, "p03", 1, &err) == FA_OK);
    TAP_OK(fa_store_user_blacklist(st, pager, "p10", 1, &err) == FA_OK);
    TAP_OK(fa_store_user_blacklist(st, pager, "p20", 1, &err) == FA_OK);
    /* blacklisted_at, not updated, orders them: p03 newest. */
    exec("UPDATE users SET blacklisted_at = 500 + CAST(substr(user_name, 2) AS INTEGER) * -1"
         " WHERE blacklisted <> 0 AND customer_id = %lld",
         (long long)pager);
    f.blacklisted_only = 1;
    TAP_OK(list(st, pager, &f, &users, &n) == 3 && n == 3);
    TAP_OK(n == 3 && strcmp(users[0].user_name, "p03") == 0 &&
           strcmp(users[2].user_name, "p20") == 0 && users[0].blacklisted == 1 &&
           users[0].blacklisted_at == 497);
    free(users);
    f.page_count = 2;
    f.page = 2;
    TAP_OK(list(st, pager, &f, &users, &n) == 3 && n == 1);
    TAP_OK(n == 1 && strcmp(users[0].user_name, "p20") == 0);
    free(users);
    f = filter(1, 10);
    f.blacklisted_only = 1;
    f.state = FA_USER_SUCCESS; /* p10 only */
    TAP_OK(list(st, pager, &f, &users, &n) == 1);
    free(users);
}

static void test_list_invalid(struct fa_store *st, int64_t pager)
{
    struct fa_user_filter f;
    struct fa_user *users = (struct fa_user *)1;
    struct fa_err err = {{0}};
    long total = 7;
    int n = 7;

    f = filter(0, 10);
    TAP_OK(fa_store_users_list(st, pager, &f, &users, &n, &total, &err) == FA_EINVAL);
    tap_ok(strstr(err.msg, "pageNumber") != NULL, "%s", err.msg);
    TAP_OK(users == NULL && n == 0 && total == 0);
    f = filter(1, 0);
    TAP_OK(fa_store_users_list(st, pager, &f, &users, &n, &total, &err) == FA_EINVAL);
    tap_ok(strstr(err.msg, "pageCount") != NULL, "%s", err.msg);
    f = filter(1, 101);
    TAP_OK(fa_store_users_list(st, pager, &f, &users, &n, &total, &err) == FA_EINVAL);
    tap_ok(strstr(err.msg, "pageCount") != NULL, "%s", err.msg);
    f = filter(1, 10);
    f.from = 2000;
    f.to = 1000;
    TAP_OK(fa_store_users_list(st, pager, &f, &users, &n, &total, &err) == FA_EINVAL);
    tap_ok(strcmp(err.msg, "fromThisDate is after toThisDate") == 0, "%s", err.msg);
    f = filter(1, 10);
    f.state = 3;
    TAP_OK(fa_store_users_list(st, pager, &f, &users, &n, &total, &err) == FA_EINVAL);
    f = filter(2147483647, 100); /* far past the end: no overflow, no rows */
    TAP_OK(fa_store_users_list(st, pager, &f, &users, &n, &total, &err) == FA_OK);
    TAP_OK(n == 0 && total == PAGER_USERS);
}

static void test_by_id(struct fa_store *st, int64_t pager, int64_t globex)
{
    struct fa_err err = {{0}};
    struct fa_user u, got;

    TAP_OK(fa_store_user_get(st, pager, "p07", &u, &err) == FA_OK);
    TAP_OK(fa_store_user_by_id(st, pager, u.id, &got, &err) == FA_OK);
    TAP_OK(memcmp(&u, &got, sizeof u) == 0);
    TAP_OK(fa_store_user_by_id(st, globex, u.id, &got, &err) == FA_ENOTFOUND);
    TAP_OK(got.id == 0 && got.user_name[0] == '\0');
    TAP_OK(fa_store_user_by_id(st, pager, 0, &got, &err) == FA_ENOTFOUND);
    TAP_OK(fa_store_user_by_id(st, pager, -5, &got, &err) == FA_ENOTFOUND);
}

/* ---- search spaces ---- */

/* The users of space name of customer_id, joined by ","; "?" when absent. */
static const char *space_users(struct fa_store *st, int64_t customer_id, const char *name)
{
    static char buf[512];
    struct fa_space *sp = NULL;
    struct fa_err err = {{0}};
    int n = 0, i;

    snprintf(buf, sizeof buf, "?");
    if (fa_store_space_list(st, customer_id, name, &sp, &n, &err) != FA_OK || n != 1)
        goto out;
    buf[0] = '\0';
    for (i = 0; i < sp[0].n_users; i++) {
        strncat(buf, i > 0 ? "," : "", sizeof buf - strlen(buf) - 1);
        strncat(buf, sp[0].users[i], sizeof buf - strlen(buf) - 1);
    }
out:
    fa_store_spaces_free(sp, n);
    return buf;
}

static void test_space_store(struct fa_store *st, int64_t acme)
{
    const char *ab[] = {"sp-bob", "sp-alice"}, *c[] = {"sp-carol"};
    const char *bad[] = {"sp-carol", "zed", "sp-alice", "yan"};
    const char *dup[] = {"sp-bob", "sp-bob"};
    struct fa_err err = {{0}};
    struct fa_user u;

    user_new(st, acme, "sp-alice", &u);
    user_new(st, acme, "sp-bob", &u);
    user_new(st, acme, "sp-carol", &u);
    TAP_OK(fa_store_space_store(st, acme, "vip", ab, 2, &err) == FA_OK);
    tap_ok(strcmp(space_users(st, acme, "vip"), "sp-alice,sp-bob") == 0, "sorted: %s",
           space_users(st, acme, "vip"));
    TAP_OK(fa_store_space_store(st, acme, "vip", c, 1, &err) == FA_OK);
    TAP_OK(strcmp(space_users(st, acme, "vip"), "sp-carol") == 0);

    /* Unknown names: all listed, nothing changed, no space created. */
    TAP_OK(fa_store_space_store(st, acme, "vip", bad, 4, &err) == FA_EINVAL);
    tap_ok(strcmp(err.msg, "unknown users in search space: zed, yan") == 0, "%s", err.msg);
    TAP_OK(strcmp(space_users(st, acme, "vip"), "sp-carol") == 0);
    TAP_OK(fa_store_space_store(st, acme, "fresh", bad, 4, &err) == FA_EINVAL);
    TAP_OK(strcmp(space_users(st, acme, "fresh"), "?") == 0);

    TAP_OK(fa_store_space_store(st, acme, "dups", dup, 2, &err) == FA_OK);
    TAP_OK(strcmp(space_users(st, acme, "dups"), "sp-bob") == 0);
    TAP_OK(fa_store_space_store(st, acme, "empty", NULL, 0, &err) == FA_OK);
    TAP_OK(strcmp(space_users(st, acme, "empty"), "") == 0);

    TAP_OK(fa_store_space_store(st, acme, "bad name", c, 1, &err) == FA_EINVAL);
    tap_ok(strstr(err.msg, "name") != NULL, "%s", err.msg);
    {
        char long_name[FA_NAME_MAX + 2];
        memset(long_name, 'n', sizeof long_name - 1);
        long_name[sizeof long_name - 1] = '\0';
        TAP_OK(fa_store_space_store(st, acme, long_name, c, 1, &err) == FA_EINVAL);
    }
    {
        const char *odd[] = {"sp-bob", "no spaces"};
        TAP_OK(fa_store_space_store(st, acme, "vip", odd, 2, &err) == FA_EINVAL);
        tap_ok(strstr(err.msg, "users") != NULL, "%s", err.msg);
    }
    TAP_OK(fa_store_space_store(st, acme, "vip", NULL, 1, &err) == FA_EINVAL);
    TAP_OK(fa_store_space_store(st, acme, "vip", c, -1, &err) == FA_EINVAL);
    TAP_OK(strcmp(space_users(st, acme, "vip"), "sp-carol") == 0);
}

/* 40 unknown names do not fit one message: it is cut with a count. */
static void test_space_many_unknown(struct fa_store *st, int64_t acme)
{
    char names[40][24];
    const char *list[40];
    struct fa_err err = {{0}};
    int i;

    for (i = 0; i < 40; i++) {
        snprintf(names[i], sizeof names[i], "nobody-%02d-xxxxxxxxxx", i);
        list[i] = names[i];
    }
    TAP_OK(fa_store_space_store(st, acme, "crowd", list, 40, &err) == FA_EINVAL);
    tap_ok(strncmp(err.msg, "unknown users in search space: nobody-00-", 41) == 0 &&
               strstr(err.msg, " more") != NULL && strlen(err.msg) < FA_ERR_MAX - 1,
           "cut: %s", err.msg);
}

static void test_space_list(struct fa_store *st, int64_t acme, int64_t globex)
{
    struct fa_space *sp = NULL;
    struct fa_err err = {{0}};
    int n = 0, i, sorted = 1;

    TAP_OK(fa_store_space_list(st, acme, NULL, &sp, &n, &err) == FA_OK);
    TAP_OK(n >= 4);
    for (i = 1; i < n; i++)
        sorted &= strcmp(sp[i - 1].name, sp[i].name) < 0;
    TAP_OK(sorted);
    fa_store_spaces_free(sp, n);

    TAP_OK(fa_store_space_list(st, acme, "nothing", &sp, &n, &err) == FA_ENOTFOUND);
    TAP_OK(sp == NULL && n == 0);
    tap_ok(strstr(err.msg, "nothing") != NULL, "%s", err.msg);
    TAP_OK(fa_store_space_list(st, acme, "bad name", &sp, &n, &err) == FA_EINVAL);

    /* globex sees none of acme's spaces, and has a vip of its own. */
    TAP_OK(fa_store_space_list(st, globex, NULL, &sp, &n, &err) == FA_OK && n == 0 && sp == NULL);
    TAP_OK(fa_store_space_list(st, globex, "vip", &sp, &n, &err) == FA_ENOTFOUND);
    {
        const char *theirs[] = {"sp-carol"};
        TAP_OK(fa_store_space_store(st, globex, "vip", theirs, 1, &err) == FA_EINVAL);
        tap_ok(strstr(err.msg, "sp-carol") != NULL, "other customer's user: %s", err.msg);
        TAP_OK(fa_store_space_store(st, globex, "vip", NULL, 0, &err) == FA_OK);
    }
    TAP_OK(strcmp(space_users(st, globex, "vip"), "") == 0);
    TAP_OK(strcmp(space_users(st, acme, "vip"), "sp-carol") == 0);
}

static void test_space_ids(struct fa_store *st, int64_t acme, int64_t globex)
{
    const char *ab[] = {"sp-alice", "sp-bob"}, *bc[] = {"sp-carol", "sp-bob"};
    const char *both[] = {"u1", "u2", "u1"}, *unk[] = {"u1", "ghost1", "ghost2"};
    struct fa_user a, b, c;
    struct fa_err err = {{0}};
    int64_t *ids = NULL, want[3];
    int n = 0;

    fa_store_user_get(st, acme, "sp-alice", &a, &err);
    fa_store_user_get(st, acme, "sp-bob", &b, &err);
    fa_store_user_get(st, acme, "sp-carol", &c, &err);
    TAP_OK(fa_store_space_store(st, acme, "u1", ab, 2, &err) == FA_OK);
    TAP_OK(fa_store_space_store(st, acme, "u2", bc, 2, &err) == FA_OK);
    TAP_OK(fa_store_space_user_ids(st, acme, both, 3, &ids, &n, &err) == FA_OK);
    want[0] = a.id;
    want[1] = b.id;
    want[2] = c.id; /* created in this order: ids ascending */
    tap_ok(n == 3 && ids[0] == want[0] && ids[1] == want[1] && ids[2] == want[2],
           "union, sorted, unique (n=%d)", n);
    free(ids);

    TAP_OK(fa_store_space_user_ids(st, acme, unk, 3, &ids, &n, &err) == FA_EINVAL);
    tap_ok(strcmp(err.msg, "unknown search spaces: ghost1, ghost2") == 0, "%s", err.msg);
    TAP_OK(ids == NULL && n == 0);
    TAP_OK(fa_store_space_user_ids(st, acme, NULL, 0, &ids, &n, &err) == FA_OK && n == 0);
    {
        const char *empty[] = {"empty"}, *bad[] = {"bad name"};
        TAP_OK(fa_store_space_user_ids(st, acme, empty, 1, &ids, &n, &err) == FA_OK);
        TAP_OK(n == 0 && ids == NULL);
        TAP_OK(fa_store_space_user_ids(st, acme, bad, 1, &ids, &n, &err) == FA_EINVAL);
    }
    /* acme's spaces are unknown to globex. */
    TAP_OK(fa_store_space_user_ids(st, globex, both, 2, &ids, &n, &err) == FA_EINVAL);
    TAP_OK(ids == NULL && n == 0);
}

static void test_space_delete(struct fa_store *st, int64_t acme, int64_t globex)
{
    struct fa_err err = {{0}};
    long long members =
        q_int("SELECT count(*) FROM search_space_users m JOIN search_spaces s ON s.id ="
              " m.space_id WHERE s.name = 'u1' AND s.customer_id = %lld",
              (long long)acme);

    TAP_OK(members == 2);
    TAP_OK(fa_store_space_delete(st, globex, "u1", &err) == FA_ENOTFOUND);
    TAP_OK(strcmp(space_users(st, acme, "u1"), "sp-alice,sp-bob") == 0);
    TAP_OK(fa_store_space_delete(st, acme, "u1", &err) == FA_OK);
    TAP_OK(strcmp(space_users(st, acme, "u1"), "?") == 0);
    TAP_OK(q_int("SELECT count(*) FROM search_space_users WHERE space_id NOT IN"
                 " (SELECT id FROM search_spaces)") == 0);
    TAP_OK(fa_store_space_delete(st, acme, "u1", &err) == FA_ENOTFOUND);
    tap_ok(strstr(err.msg, "u1") != NULL, "%s", err.msg);
    TAP_OK(fa_store_space_delete(st, acme, "bad name", &err) == FA_EINVAL);
    /* globex's own vip is untouched by all this. */
    TAP_OK(strcmp(space_users(st, globex, "vip"), "") == 0);
}

/* ---- settings ---- */

static void settings_fill(struct fa_settings *s)
{
    memset(s, 0, sizeof *s);
    s->check_liveliness = 1;
    s->threshold = 0.7;
    snprintf(s->enrollment_accepted_cb, sizeof s->enrollment_accepted_cb, "https://a.test/ok");
    snprintf(s->enrollment_rejected_cb, sizeof s->enrollment_rejected_cb, "http://a.test/no");
    snprintf(s->auth_success_cb, sizeof s->auth_success_cb, "HTTPS://a.test/yes");
    s->auth_failure_cb[0] = '\0';
}

/* One bad field: FA_EINVAL naming it, nothing written. */
static void settings_refused(struct fa_store *st, int64_t acme, const struct fa_settings *bad,
                             const char *field)
{
    struct fa_settings got;
    struct fa_err err = {{0}};

    TAP_OK(fa_store_settings_set(st, acme, bad, &err) == FA_EINVAL);
    tap_ok(strstr(err.msg, field) != NULL, "names %s: %s", field, err.msg);
    TAP_OK(fa_store_settings_get(st, acme, &got, &err) == FA_OK && got.threshold == 0.7);
}

static void test_settings(struct fa_store *st, int64_t acme, int64_t globex)
{
    struct fa_settings in, got, bad;
    struct fa_err err = {{0}};

    TAP_OK(fa_store_settings_get(st, acme, &got, &err) == FA_OK);
    TAP_OK(got.check_liveliness == 0 && got.threshold == 0.5 && got.allow_low_precision == 1);
    TAP_OK(got.enrollment_accepted_cb[0] == '\0' && got.enrollment_rejected_cb[0] == '\0' &&
           got.auth_success_cb[0] == '\0' && got.auth_failure_cb[0] == '\0');

    settings_fill(&in);
    TAP_OK(fa_store_settings_set(st, acme, &in, &err) == FA_OK);
    TAP_OK(fa_store_settings_get(st, acme, &got, &err) == FA_OK);
    TAP_OK(memcmp(&in, &got, sizeof in) == 0);
    TAP_OK(fa_store_settings_get(st, globex, &got, &err) == FA_OK && got.threshold == 0.5 &&
           got.check_liveliness == 0 && got.enrollment_accepted_cb[0] == '\0');

    bad = in;
    bad.threshold = 1.01;
    settings_refused(st, acme, &bad, "Threshold");
    bad.threshold = -0.01;
    settings_refused(st, acme, &bad, "Threshold");
    bad.threshold = NAN;
    settings_refused(st, acme, &bad, "Threshold");
    bad = in;
    bad.check_liveliness = 2;
    settings_refused(st, acme, &bad, "checkLiveliness");
    bad = in;
    bad.allow_low_precision = 2;
    settings_refused(st, acme, &bad, "allowLowPrecision");
    bad = in;
    snprintf(bad.enrollment_accepted_cb, sizeof bad.enrollment_accepted_cb, "ftp://a.test/");
    settings_refused(st, acme, &bad, "enrollmentAcceptedCallbackurl");
    bad = in;
    snprintf(bad.enrollment_rejected_cb, sizeof bad.enrollment_rejected_cb, "https://");
    settings_refused(st, acme, &bad, "enrollmentRejectedCallbackurl");
    bad = in;
    snprintf(bad.auth_success_cb, sizeof bad.auth_success_cb, "https://a.test/x y");
    settings_refused(st, acme, &bad, "successfullAuthenticationCallbackurl");
    bad = in;
    memset(bad.auth_failure_cb, 'a', sizeof bad.auth_failure_cb); /* no NUL: too long */
    memcpy(bad.auth_failure_cb, "http://", 7);
    settings_refused(st, acme, &bad, "failedAuthenticationCallbackurl");

    /* Exactly FA_URL_MAX bytes and both bounds of the threshold are fine. */
    bad = in;
    memset(bad.auth_failure_cb, 'a', FA_URL_MAX);
    memcpy(bad.auth_failure_cb, "http://", 7);
    bad.auth_failure_cb[FA_URL_MAX] = '\0';
    bad.threshold = 1.0;
    TAP_OK(fa_store_settings_set(st, globex, &bad, &err) == FA_OK);
    TAP_OK(fa_store_settings_get(st, globex, &got, &err) == FA_OK &&
           strlen(got.auth_failure_cb) == FA_URL_MAX && got.threshold == 1.0);
    bad.threshold = 0.0;
    TAP_OK(fa_store_settings_set(st, globex, &bad, &err) == FA_OK);
    TAP_OK(fa_store_settings_get(st, acme, &got, &err) == FA_OK &&
           memcmp(&in, &got, sizeof in) == 0);

    TAP_OK(fa_store_settings_get(st, 999999, &got, &err) == FA_ENOTFOUND);
    TAP_OK(fa_store_settings_set(st, 999999, &in, &err) == FA_ENOTFOUND);
}

/* ---- the log ---- */

/* logger: 12 records, created set to 3000 + i (i = 0..11); record 5 has
 * images and score 0.25, the others no image and no score. Rows 10 and 11
 * share created 3010. */
static int64_t logger_setup(struct fa_store *st, struct test_image *o, struct test_image *t)
{
    int64_t logger = customer_new(st, "logger");
    struct fa_store_record r;
    struct fa_user u;
    int i;

    user_new(st, logger, "lg", &u);
    for (i = 0; i < 12; i++) {
        r = rec_init(logger, &u, i % 2 ? "authenticate" : "enroll");
        r.success = i % 2;
        if (i == 5) {
            r.original = img_new(o, "o");
            r.thumbnail = img_new(t, "t");
            r.score = 0.25;
        }
        fa_store_record_commit(st, &r, NULL);
    }
    exec("UPDATE transactions SET created = 3000 + (SELECT count(*) FROM transactions t2"
         " WHERE t2.customer_id = transactions.customer_id AND t2.id < transactions.id)"
         " WHERE customer_id = %lld",
         (long long)logger);
    exec("UPDATE transactions SET created = 3010 WHERE customer_id = %lld AND created = 3011",
         (long long)logger);
    return logger;
}

static void test_log_rows(struct fa_store *st, int64_t logger, const struct test_image *o,
                          const struct test_image *t)
{
    struct fa_log_row *rows = NULL;
    struct fa_err err = {{0}};
    long total = 0;
    int n = 0;

    TAP_OK(fa_store_log_list(st, logger, 0, 0, 1, 5, &rows, &n, &total, &err) == FA_OK);
    TAP_OK(total == 12 && n == 5);
    if (n == 5) {
        /* Newest first; the two rows of 3010 newest-inserted first. */
        TAP_OK(rows[0].created == 3010 && rows[1].created == 3010 && rows[2].created == 3009);
        TAP_OK(strcmp(rows[0].request_type, "authenticate") == 0 && rows[0].success == 1);
        TAP_OK(strcmp(rows[1].request_type, "enroll") == 0 && rows[1].success == 0);
        TAP_OK(strcmp(rows[0].user_name, "lg") == 0);
        TAP_OK(isnan(rows[0].score) && rows[0].original_id[0] == '\0' &&
               rows[0].thumbnail_id[0] == '\0');
    }
    free(rows);
    TAP_OK(fa_store_log_list(st, logger, 0, 0, 2, 5, &rows, &n, &total, &err) == FA_OK);
    if (TAP_OK(n == 5)) {
        TAP_OK(rows[1].created == 3005 && rows[1].score == 0.25);
        TAP_OK(strcmp(rows[1].original_id, o->im.id) == 0 &&
               strcmp(rows[1].thumbnail_id, t->im.id) == 0);
    }
    free(rows);
    TAP_OK(fa_store_log_list(st, logger, 0, 0, 3, 5, &rows, &n, &total, &err) == FA_OK);
    TAP_OK(total == 12 && n == 2 && rows[1].created == 3000);
    free(rows);
    TAP_OK(fa_store_log_list(st, logger, 0, 0, 4, 5, &rows, &n, &total, &err) == FA_OK);
    TAP_OK(total == 12 && n == 0 && rows == NULL);
}

static void test_log_filters(struct fa_store *st, int64_t logger, int64_t globex)
{
    struct fa_log_row *rows = NULL;
    struct fa_err err = {{0}};
    long total = 0;
    int i, n = 0, ok = 1;

    TAP_OK(fa_store_log_list(st, logger, 3002, 3004, 1, 100, &rows, &n, &total, &err) == FA_OK);
    TAP_OK(total == 3 && n == 3 && rows[0].created == 3004 && rows[2].created == 3002);
    free(rows);
    TAP_OK(fa_store_log_list(st, logger, 3008, 0, 1, 100, &rows, &n, &total, &err) == FA_OK);
    TAP_OK(total == 4); /* 3008, 3009, 3010, 3010 */
    free(rows);
    TAP_OK(fa_store_log_list(st, logger, 0, 3001, 1, 100, &rows, &n, &total, &err) == FA_OK);
    TAP_OK(total == 2);
    free(rows);

    /* No other customer's rows, either way round. */
    TAP_OK(fa_store_log_list(st, globex, 0, 0, 1, 100, &rows, &n, &total, &err) == FA_OK);
    for (i = 0; i < n; i++)
        ok &= strcmp(rows[i].user_name, "lg") != 0;
    TAP_OK(ok && total == q_int("SELECT count(*) FROM transactions WHERE customer_id = %lld",
                                (long long)globex));
    free(rows);

    TAP_OK(fa_store_log_list(st, logger, 0, 0, 0, 10, &rows, &n, &total, &err) == FA_EINVAL);
    tap_ok(strstr(err.msg, "pageNumber") != NULL, "%s", err.msg);
    TAP_OK(rows == NULL && n == 0 && total == 0);
    TAP_OK(fa_store_log_list(st, logger, 0, 0, 1, 101, &rows, &n, &total, &err) == FA_EINVAL);
    tap_ok(strstr(err.msg, "pageCount") != NULL, "%s", err.msg);
    TAP_OK(fa_store_log_list(st, logger, 5, 4, 1, 10, &rows, &n, &total, &err) == FA_EINVAL);
    tap_ok(strcmp(err.msg, "fromThisDate is after toThisDate") == 0, "%s", err.msg);
}

/* A userName longer than fa_log_row holds (records allow FA_TEXT_MAX). */
static void test_log_long_name(struct fa_store *st, int64_t globex)
{
    struct fa_store_record r = rec_init(globex, NULL, "search");
    struct fa_log_row *rows = NULL;
    struct fa_err err = {{0}};
    char name[101];
    long total = 0;
    int n = 0;

    memset(name, 'x', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    r.user_name = name;
    TAP_OK(fa_store_record_commit(st, &r, &err) == FA_OK);
    TAP_OK(fa_store_log_list(st, globex, 0, 0, 1, 1, &rows, &n, &total, &err) == FA_OK);
    TAP_OK(n == 1 && strlen(rows[0].user_name) == FA_NAME_MAX &&
           strcmp(rows[0].request_type, "search") == 0);
    free(rows);
}

/* ---- templates_each ---- */

struct seen {
    int n, stop_after;
    int64_t customer[16], user[16];
    float tag[16];
    int dim[16];
};

static int seen_add(void *arg, int64_t customer_id, int64_t user_id, const float *vec, int dim)
{
    struct seen *s = arg;

    if (s->n < 16) {
        s->customer[s->n] = customer_id;
        s->user[s->n] = user_id;
        s->tag[s->n] = vec[0] + vec[dim - 1] * 0.0f;
        s->dim[s->n] = dim;
    }
    s->n++;
    return s->stop_after > 0 && s->n >= s->stop_after;
}

static void tpl_add(struct fa_store *st, const struct fa_user *u, float tag)
{
    struct fa_store_record r = rec_init(u->customer_id, u, "authenticate");
    struct test_sample vec;

    rec_template(&r, &vec, tag, "each-model");
    fa_store_record_commit(st, &r, NULL);
}

static void test_templates_each(struct fa_store *st, int64_t acme, int64_t globex)
{
    struct fa_user a1, a2, g1;
    struct fa_err err = {{0}};
    struct seen s;

    user_new(st, acme, "each-1", &a1);
    user_new(st, acme, "each-2", &a2);
    user_new(st, globex, "each-3", &g1);
    /* Interleaved on purpose: the walk must regroup them. */
    tpl_add(st, &g1, 31.0f);
    tpl_add(st, &a2, 21.0f);
    tpl_add(st, &a1, 11.0f);
    tpl_add(st, &a2, 22.0f);
    tpl_add(st, &g1, 32.0f);
    tpl_add(st, &a1, 12.0f);

    memset(&s, 0, sizeof s);
    TAP_OK(fa_store_templates_each(st, "each-model", seen_add, &s, &err) == FA_OK);
    if (tap_ok(s.n == 6, "6 templates walked, got %d", s.n)) {
        /* acme (created first) has the smaller id; within it each-1 < each-2. */
        TAP_OK(s.customer[0] == acme && s.user[0] == a1.id && s.tag[0] == 11.0f);
        TAP_OK(s.user[1] == a1.id && s.tag[1] == 12.0f);
        TAP_OK(s.user[2] == a2.id && s.tag[2] == 21.0f && s.user[3] == a2.id &&
               s.tag[3] == 22.0f);
        TAP_OK(s.customer[4] == globex && s.user[4] == g1.id && s.tag[4] == 31.0f &&
               s.tag[5] == 32.0f && s.dim[5] == DIM);
    }
    memset(&s, 0, sizeof s);
    TAP_OK(fa_store_templates_each(st, "no-such-model", seen_add, &s, &err) == FA_OK && s.n == 0);
    s.stop_after = 2;
    TAP_OK(fa_store_templates_each(st, "each-model", seen_add, &s, &err) == FA_EINTERNAL);
    TAP_OK(s.n == 2);
    TAP_OK(fa_store_templates_each(st, NULL, seen_add, &s, &err) == FA_EINVAL);
    TAP_OK(fa_store_templates_each(st, "each-model", NULL, &s, &err) == FA_EINVAL);

    /* A blob whose length is not 4 * dim (CHECK bypassed: SQLite only) is refused. */
    if (g_engine != FA_DB_SQLITE)
        return;
    TAP_OK(exec("PRAGMA ignore_check_constraints = ON"));
    TAP_OK(exec("INSERT INTO templates(user_id, sample, model_id, source, dim, embedding,"
                " created) VALUES(%lld, 99, 'each-model', 'enroll', 8, x'00000000', 0)",
                (long long)a2.id));
    TAP_OK(exec("PRAGMA ignore_check_constraints = OFF"));
    memset(&s, 0, sizeof s);
    TAP_OK(fa_store_templates_each(st, "each-model", seen_add, &s, &err) == FA_EDB);
    tap_ok(strstr(err.msg, "malformed") != NULL, "%s", err.msg);
    TAP_OK(exec("DELETE FROM templates WHERE length(embedding) = 4"));
}

/* ---- customer delete ---- */

/* Deleting a customer (no API does it yet; the operator might) takes its
 * spaces, memberships and users, and nothing of anyone else's. */
static void test_customer_cascade(int64_t acme, int64_t globex)
{
    long long globex_spaces = q_int("SELECT count(*) FROM search_spaces WHERE customer_id = %lld",
                                    (long long)globex);

    TAP_OK(q_int("SELECT count(*) FROM search_spaces WHERE customer_id = %lld",
                 (long long)acme) > 0);
    TAP_OK(exec("DELETE FROM customers WHERE id = %lld", (long long)acme));
    TAP_OK(q_int("SELECT count(*) FROM search_spaces WHERE customer_id = %lld",
                 (long long)acme) == 0);
    TAP_OK(q_int("SELECT count(*) FROM search_space_users WHERE space_id NOT IN"
                 " (SELECT id FROM search_spaces) OR user_id NOT IN (SELECT id FROM users)") == 0);
    TAP_OK(q_int("SELECT count(*) FROM users WHERE customer_id = %lld", (long long)acme) == 0);
    TAP_OK(q_int("SELECT count(*) FROM images WHERE customer_id = %lld", (long long)acme) == 0);
    TAP_OK(q_int("SELECT count(*) FROM search_spaces WHERE customer_id = %lld",
                 (long long)globex) == globex_spaces);
    TAP_OK(fk_clean());
}

/* ---- set-up ---- */

/*
 * White-box: every cached statement of this thread's connection is reset
 * and no transaction is open. A statement left mid-step would hold a read
 * snapshot (stalling checkpoints), and an open transaction would swallow the
 * next call's writes; both would otherwise go unnoticed here.
 */
static void idle(struct fa_store *st, const char *after)
{
    struct fa_conn *c = NULL;
    int i, busy = 0;

    if (fa_store_conn(st, &c, NULL) != FA_OK)
        return;
    for (i = 0; i < c->n_stmts; i++)
        busy += fa_db_stmt_busy(c->stmts[i].stmt) != 0;
    tap_ok(busy == 0 && fa_db_autocommit(c->db), "idle after %s (%d busy, of %d cached)",
           after, busy, c->n_stmts);
}

#define STEP(call) (call, idle(st, #call))

static void run(struct fa_store *st)
{
    struct test_image o, t;
    int64_t acme = customer_new(st, "acme"), globex = customer_new(st, "globex"), pager, logger;

    if (!TAP_OK(acme > 0 && globex > 0))
        return;
    test_schema();
    STEP(test_face_ids(st, acme));
    STEP(test_update_fields(st, acme, globex));
    STEP(test_update_rename(st, acme, globex));
    STEP(test_update_reset(st, acme));
    STEP(test_delete(st, acme, globex));
    STEP(test_blacklist(st, acme, globex));
    pager = pager_setup(st);
    STEP(test_list_pages(st, pager, globex));
    STEP(test_list_filters(st, pager));
    STEP(test_list_blacklist(st, pager));
    STEP(test_list_invalid(st, pager));
    STEP(test_by_id(st, pager, globex));
    STEP(test_space_store(st, acme));
    STEP(test_space_many_unknown(st, acme));
    STEP(test_space_list(st, acme, globex));
    STEP(test_space_ids(st, acme, globex));
    STEP(test_space_delete(st, acme, globex));
    STEP(test_settings(st, acme, globex));
    logger = logger_setup(st, &o, &t);
    STEP(test_log_rows(st, logger, &o, &t));
    STEP(test_log_filters(st, logger, globex));
    STEP(test_log_long_name(st, globex));
    STEP(test_templates_each(st, acme, globex));
    TAP_OK(fk_clean());
    /* No statement left mid-step: the write lock is free at once. */
    TAP_OK(fa_store_writable(st) == 1);
    test_customer_cascade(acme, globex);
}

static void backend_body(void)
{
    struct fa_store *st = NULL;
    struct fa_err err = {{0}};

    if (!tap_ok(fa_store_open(g_db, &st, &err) == FA_OK, "open: %s", err.msg))
        goto out;
    if (!TAP_OK(raw_open()))
        goto out;
    run(st);
out:
    fa_store_free(st);
}

int main(void)
{
    return fixture_main("fa_test_store_admin", backend_body);
}
