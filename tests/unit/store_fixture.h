/*
 * store_fixture.h — what test_store.c and test_store_admin.c share: a fresh
 * temporary directory holding the database, a second raw connection (g_raw)
 * to look at rows, and builders for users, records and images.
 *
 * Header-only on purpose: CMake builds each tests/unit/test_*.c with tap.c
 * alone, so everything here is static and each test gets its own copy.
 */
#ifndef FACEAUTH_STORE_FIXTURE_H
#define FACEAUTH_STORE_FIXTURE_H

#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include "store/db.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "faceauth/store.h"
#include "tap.h"

#define DIM 8

static char g_dir[256];
static char g_db[300];
static struct fa_db *g_raw;

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

#endif
