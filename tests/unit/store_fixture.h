/*
 * store_fixture.h — what the store tests share: a fresh database on each
 * back-end (a SQLite file in a temporary directory; a PostgreSQL database
 * of its own on the server of FA_TEST_PG_URL, when that is set), a second
 * raw connection (g_raw) to look at rows, and builders for users, records
 * and images. fixture_main runs a test's body once per back-end.
 *
 * Header-only on purpose: CMake builds each tests/unit/test_*.c with tap.c
 * alone, so everything here is static and each test gets its own copy.
 */
#ifndef FACEAUTH_STORE_FIXTURE_H
#define FACEAUTH_STORE_FIXTURE_H

#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "faceauth/store.h"
#include "store/db.h"
#include "tap.h"

#define DIM 8

static char g_dir[256];
static char g_db[600]; /* what fa_store_open gets: a file, or a PostgreSQL URL */
static struct fa_db *g_raw;
static enum fa_db_engine g_engine = FA_DB_SQLITE;
static char g_pg_name[64]; /* the PostgreSQL database this run made */

/* The first column of the first row of sql, as an integer; -1 on error, -2 for NULL. */
static long long q_int(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static long long q_int(const char *fmt, ...)
{
    char sql[512];
    struct fa_db_stmt *s = NULL;
    long long v = -1;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    if (fa_db_prepare(g_raw, sql, &s) != FA_DB_OK) {
        tap_diag("prepare '%s': %s", sql, fa_db_errmsg(g_raw));
        return -1;
    }
    if (fa_db_step(s) == FA_DB_ROW)
        v = fa_db_column_type(s, 0) == FA_DB_NULL ? -2 : fa_db_column_int64(s, 0);
    fa_db_finalize(s);
    return v;
}

/* The schema version, and the number of tables the migrations made. */
static inline long long q_version(void)
{
    if (g_engine == FA_DB_POSTGRES)
        return q_int("SELECT MAX(version) FROM schema_version");
    return q_int("PRAGMA user_version");
}

static inline long long q_tables(void)
{
    if (g_engine == FA_DB_POSTGRES)
        return q_int("SELECT count(*) FROM information_schema.tables WHERE table_schema ="
                     " 'public' AND table_name <> 'schema_version'");
    return q_int("SELECT count(*) FROM sqlite_schema WHERE type = 'table'");
}

/* A valid user name of customer_id with made-up details (not stored). */
static void user_init(struct fa_user *u, int64_t customer_id, const char *name)
{
    memset(u, 0, sizeof *u);
    u->customer_id = customer_id;
    snprintf(u->user_name, sizeof u->user_name, "%s", name);
    snprintf(u->full_name, sizeof u->full_name, "Full %s", name);
    snprintf(u->email, sizeof u->email, "%s@example.com", name);
    snprintf(u->phone, sizeof u->phone, "+15550100");
    snprintf(u->country_code, sizeof u->country_code, "US");
}

/* A record of type for u (NULL: no user) with no score and nothing else set. */
static struct fa_store_record rec_init(int64_t customer_id, const struct fa_user *u,
                                       const char *type)
{
    struct fa_store_record r;

    memset(&r, 0, sizeof r);
    r.customer_id = customer_id;
    r.user_id = u != NULL ? u->id : 0;
    r.user_name = u != NULL ? u->user_name : "";
    r.request_type = type;
    r.score = NAN;
    return r;
}

/* One photo with one model's template, as a record adds it. */
struct test_sample {
    float vec[DIM];
    struct fa_store_template tpl;
    struct fa_store_sample smp;
};

/* Point r at one sample x: a template of model (tagged with tag in element
 * 0) from source. */
static void rec_template_set(struct fa_store_record *r, struct test_sample *x, float tag,
                             const char *model, const char *source)
{
    int i;

    for (i = 0; i < DIM; i++)
        x->vec[i] = (float)i * 0.01f;
    x->vec[0] = tag;
    x->tpl.model_id = model;
    x->tpl.dim = DIM;
    x->tpl.vec = x->vec;
    x->smp.templates = &x->tpl;
    x->smp.n_templates = 1;
    x->smp.source = source;
    x->smp.quality = 0.9f;
    r->samples = &x->smp;
    r->n_samples = 1;
    r->max_learned = 3;
}

struct test_image {
    struct fa_store_image im;
    char path[96];
};

/* A fresh image id and a path under images/ naming kind; x keeps the strings. */
static const struct fa_store_image *img_new(struct test_image *x, const char *kind)
{
    memset(&x->im, 0, sizeof x->im);
    fa_crypto_random_hex(x->im.id, FA_IMAGE_ID_HEX / 2);
    snprintf(x->path, sizeof x->path, "images/%s-%s.jpg", x->im.id, kind);
    x->im.path = x->path;
    x->im.mime = "image/jpeg";
    return &x->im;
}

/* Make g_dir ($TMPDIR or /tmp, then prefix.XXXXXX) and name g_db in it. */
static int dir_setup(const char *prefix)
{
    const char *tmp = getenv("TMPDIR");

    snprintf(g_dir, sizeof g_dir, "%s/%s.XXXXXX", tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp",
             prefix);
    if (mkdtemp(g_dir) == NULL)
        return 0;
    snprintf(g_db, sizeof g_db, "%s/faceauth.db", g_dir);
    return 1;
}

/* Remove g_dir and the files in it (the database and its WAL/SHM). */
static void dir_remove(void)
{
    DIR *d = opendir(g_dir);
    struct dirent *e;
    char path[600];

    if (d == NULL)
        return;
    for (e = readdir(d); e != NULL; e = readdir(d)) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", g_dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(g_dir);
}

/* FA_TEST_PG_URL with its database name replaced by name, into out. */
static int pg_url_for(const char *name, char *out, size_t cap)
{
    const char *base = getenv("FA_TEST_PG_URL");
    const char *slash = base != NULL ? strrchr(base, '/') : NULL;

    if (slash == NULL || slash - base < 12)
        return 0;
    return snprintf(out, cap, "%.*s/%s", (int)(slash - base), base, name) < (int)cap;
}

/* Create (create = 1) or drop the database g_pg_name on the test server. */
static int pg_database(int create)
{
    struct fa_db *admin = NULL;
    char sql[160];
    int ok;

    if (fa_db_open(FA_DB_POSTGRES, getenv("FA_TEST_PG_URL"), 5000, &admin) != FA_DB_OK) {
        tap_diag("PostgreSQL: %s", admin != NULL ? fa_db_errmsg(admin) : "out of memory");
        fa_db_close(admin);
        return 0;
    }
    if (create)
        snprintf(sql, sizeof sql, "CREATE DATABASE %s", g_pg_name);
    else
        snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", g_pg_name);
    ok = fa_db_exec(admin, sql) == FA_DB_OK;
    if (!ok)
        tap_diag("%s: %s", sql, fa_db_errmsg(admin));
    fa_db_close(admin);
    return ok;
}

/* A fresh database on engine e named after prefix; g_db names it. The
 * temporary directory exists on both (some tests keep files there). */
static int backend_setup(enum fa_db_engine e, const char *prefix)
{
    g_engine = e;
    if (!dir_setup(prefix))
        return 0;
    if (e == FA_DB_SQLITE)
        return 1;
    snprintf(g_pg_name, sizeof g_pg_name, "%s_%ld", prefix, (long)getpid());
    return pg_url_for(g_pg_name, g_db, sizeof g_db) && pg_database(1);
}

static void backend_teardown(void)
{
    fa_db_close(g_raw);
    g_raw = NULL;
    if (g_engine == FA_DB_POSTGRES)
        pg_database(0);
    dir_remove();
}

/* Open the raw connection to g_db (after the store made the schema). */
static int raw_open(void)
{
    if (fa_db_open(g_engine, g_db, 5000, &g_raw) != FA_DB_OK)
        return 0;
    if (g_engine == FA_DB_SQLITE)
        fa_db_exec(g_raw, "PRAGMA foreign_keys=ON");
    return 1;
}

/*
 * The main of a store test: body once on SQLite, then once on PostgreSQL
 * when FA_TEST_PG_URL is set (scripts/test starts a server). prefix names
 * the temporary directory and the PostgreSQL database (lowercase, digits
 * and _ only). body opens its store on g_db; raw_open gives it g_raw.
 */
static int fixture_main(const char *prefix, void (*body)(void))
{
    const char *pg = getenv("FA_TEST_PG_URL");

    if (!TAP_OK(fa_crypto_init() == FA_OK))
        return tap_done();
    if (TAP_OK(backend_setup(FA_DB_SQLITE, prefix)))
        body();
    backend_teardown();
    if (pg != NULL && pg[0] != '\0') {
        tap_diag("the same tests on PostgreSQL");
        if (TAP_OK(backend_setup(FA_DB_POSTGRES, prefix)))
            body();
        backend_teardown();
    } else {
        tap_diag("FA_TEST_PG_URL is not set: SQLite only");
    }
    return tap_done();
}

#endif
