/*
 * test_store_purge.c — photo retention in the store (fa_store_photos_expire):
 * which images go, what stays, the batches, the pending-deletion rows and
 * the partial index the purge relies on.
 */
#include <time.h>

#include "faceauth/crypto.h"
#include "store_fixture.h"

static int64_t g_customer;
static struct fa_user g_user;

static int64_t customer_setup(struct fa_store *st)
{
    char token[FA_TOKEN_CHARS + 1];
    struct fa_err err = {{0}};
    int64_t id = 0;

    if (fa_store_customer_add(st, "acme", "pw-acme-1", &err) != FA_OK ||
        fa_store_login(st, "acme", "pw-acme-1", 3600, token, &err) != FA_OK ||
        fa_store_token_check(st, "acme", token, &id, &err) != FA_OK)
        tap_diag("customer: %s", err.msg);
    return id;
}

/* One log row of type with both images, created `age` seconds ago (images too). */
static int record(struct fa_store *st, const char *type, int success, const struct fa_user *u,
                  long age, struct test_image *o, struct test_image *t)
{
    struct fa_store_record r = rec_init(g_customer, u, type);
    struct fa_err err = {{0}};
    int64_t when = (int64_t)time(NULL) - age;

    r.original = img_new(o, "o");
    r.thumbnail = img_new(t, "t");
    r.success = success;
    if (success && strcmp(type, "enroll") == 0) { /* the user's face */
        r.set_state = 1;
        r.new_state = FA_USER_SUCCESS;
    }
    if (fa_store_record_commit(st, &r, &err) != FA_OK) {
        tap_diag("record: %s", err.msg);
        return 0;
    }
    return q_int("UPDATE images SET created = %lld WHERE id IN ('%s', '%s') RETURNING 1",
                 (long long)when, o->im.id, t->im.id) == 1 &&
           q_int("UPDATE transactions SET created = %lld WHERE original_id = '%s' RETURNING 1",
                 (long long)when, o->im.id) == 1;
}

static int has(char **paths, int n, const char *path)
{
    for (int i = 0; i < n; i++)
        if (strcmp(paths[i], path) == 0)
            return 1;
    return 0;
}

static int image_rows(const struct test_image *o)
{
    return (int)q_int("SELECT count(*) FROM images WHERE id = '%s'", o->im.id);
}

static void expire(struct fa_store *st, long failed_age, long search_age, int limit, char ***paths,
                   int *n)
{
    struct fa_err err = {{0}};
    int64_t now = (int64_t)time(NULL);

    if (fa_store_photos_expire(st, now - failed_age, now - search_age, limit, paths, n, &err) !=
        FA_OK)
        tap_diag("expire: %s", err.msg);
}

static void test_kinds(struct fa_store *st)
{
    struct test_image eo, et, fo, ft, so, st_, ko, kt;
    char **paths = NULL;
    int n = 0;

    TAP_OK(record(st, "enroll", 1, &g_user, 1000, &eo, &et));
    TAP_OK(record(st, "authenticate", 0, &g_user, 1000, &fo, &ft));
    TAP_OK(record(st, "authenticate", 1, &g_user, 1000, &ko, &kt));
    TAP_OK(record(st, "search", 1, NULL, 1000, &so, &st_));

    /* Failed photos older than 500 s go; the search is kept for 2000 s. */
    expire(st, 500, 2000, 10, &paths, &n);
    tap_ok(n == 2 && has(paths, n, fo.path) && has(paths, n, ft.path),
           "the failed authentication's two files are returned (%d)", n);
    TAP_OK(image_rows(&fo) == 0 && image_rows(&ft) == 0);
    TAP_OK(image_rows(&so) == 1 && image_rows(&eo) == 1 && image_rows(&ko) == 1);
    TAP_OK(q_int("SELECT count(*) FROM transactions WHERE result = 'failure'"
                 " AND original_id IS NULL AND thumbnail_id IS NULL") == 1);
    tap_ok(q_int("SELECT count(*) FROM pending_deletes") == 2,
           "the paths wait in pending_deletes until the files are gone");
    TAP_OK(fa_store_pending_done(st, paths, n, NULL) == FA_OK);
    fa_store_paths_free(paths, n);

    /* Nothing younger than the cut-offs goes. */
    expire(st, 2000, 2000, 10, &paths, &n);
    TAP_OK(n == 0);
    fa_store_paths_free(paths, n);

    expire(st, 500, 500, 10, &paths, &n);
    tap_ok(n == 2 && has(paths, n, so.path), "the search's files go after its own keep time");
    TAP_OK(fa_store_pending_done(st, paths, n, NULL) == FA_OK);
    fa_store_paths_free(paths, n);
    tap_ok(image_rows(&eo) == 1 && image_rows(&ko) == 1,
           "the enrolled face and a successful authentication stay");
    TAP_OK(q_int("SELECT count(*) FROM users WHERE face_original = '%s'", eo.im.id) == 1);
    TAP_OK(q_int("SELECT count(*) FROM transactions") == 4);
    TAP_OK(g_engine != FA_DB_SQLITE ||
           q_int("SELECT count(*) FROM pragma_foreign_key_check") == 0);
}

static void test_batches(struct fa_store *st)
{
    struct test_image o[5], t[5];
    char **paths = NULL;
    int n = 0;

    for (int i = 0; i < 5; i++)
        TAP_OK(record(st, "enroll", 0, &g_user, 100 + i, &o[i], &t[i]));
    expire(st, 50, 50, 2, &paths, &n);
    /* Oldest first: the batch takes the two oldest rows. */
    tap_ok(n == 4 && has(paths, n, o[4].path) && has(paths, n, o[3].path),
           "a batch of 2 rows returns their 4 files, oldest first");
    fa_store_paths_free(paths, n);
    expire(st, 50, 50, 2, &paths, &n);
    TAP_OK(n == 4);
    fa_store_paths_free(paths, n);
    expire(st, 50, 50, 2, &paths, &n);
    TAP_OK(n == 2 && has(paths, n, o[0].path));
    fa_store_paths_free(paths, n);
    expire(st, 50, 50, 2, &paths, &n);
    TAP_OK(n == 0);
    fa_store_paths_free(paths, n);
    TAP_OK(fa_store_photos_expire(st, 0, 0, 0, &paths, &n, NULL) == FA_EINVAL);
    TAP_OK(fa_store_photos_expire(st, 0, 0, 1001, &paths, &n, NULL) == FA_EINVAL);
}

/* The purge reads only rows still to purge: the partial index must be the
 * one the query uses (its WHERE terms must match the query's word for word). */
static void test_index_used(void)
{
    struct fa_db_stmt *s = NULL;
    int used = 0;

    fa_db_prepare(g_raw,
                  "EXPLAIN QUERY PLAN SELECT original_id, thumbnail_id FROM transactions"
                  " WHERE (original_id IS NOT NULL OR thumbnail_id IS NOT NULL)"
                  " AND (result = 'failure' OR request_type = 'search')"
                  " AND ((request_type = 'search' AND created < ?1)"
                  " OR (request_type <> 'search' AND created < ?2))"
                  " ORDER BY created LIMIT ?3",
                  &s);
    while (s != NULL && fa_db_step(s) == FA_DB_ROW)
        if (strstr((const char *)fa_db_column_text(s, 3), "transactions_photo_expiry"))
            used = 1;
    fa_db_finalize(s);
    tap_ok(used, "the purge query uses the partial index transactions_photo_expiry");
}

static void backend_body(void)
{
    struct fa_store *st = NULL;
    struct fa_err err = {{0}};

    (void)rec_template_set; /* the fixture's, used by the other store tests */
    if (!tap_ok(fa_store_open(g_db, &st, &err) == FA_OK, "open: %s", err.msg))
        goto out;
    if (!TAP_OK(raw_open()))
        goto out;
    g_customer = customer_setup(st);
    user_init(&g_user, g_customer, "jane");
    if (TAP_OK(g_customer > 0 && fa_store_user_create(st, &g_user, &err) == FA_OK)) {
        test_kinds(st);
        test_batches(st);
        if (g_engine == FA_DB_SQLITE)
            test_index_used(); /* EXPLAIN QUERY PLAN is SQLite's */
    }
out:
    fa_store_free(st);
}

int main(void)
{
    return fixture_main("fa_test_store_purge", backend_body);
}
