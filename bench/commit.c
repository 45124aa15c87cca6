/*
 * commit.c — what durable commits cost (bench/run).
 *
 *   bench_commit --data DIR [--runs N]
 *
 * Every authenticate, enroll and search ends with one database commit of its
 * record (fa_store_record_commit: two image rows and a log row). With
 * durable_commits = yes (SQLite synchronous=FULL, the default) that commit
 * fsyncs the WAL before it returns; with no (NORMAL) it does not, and a
 * power loss may undo it. This times that commit on the disk under DIR both
 * ways, alternating between the two settings from one commit to the next so
 * that a noisy, shared machine hits both alike, `runs` commits each (default
 * 300), and prints one JSON line with the medians and 99th percentiles in ms
 * and the ratio of the medians. DIR gets a fresh database. Exit 1 on error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "faceauth/store.h"

#define CUSTOMER "bench-commit"
#define PASSWORD "bench-commit-password"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* A customer and an enrolled-looking user to log against. */
static enum fa_rc setup(struct fa_store *st, int64_t *cid, struct fa_user *u, struct fa_err *err)
{
    char token[FA_TOKEN_CHARS + 1];
    enum fa_rc rc = fa_store_customer_add(st, CUSTOMER, PASSWORD, err);
    if (rc == FA_OK)
        rc = fa_store_login(st, CUSTOMER, PASSWORD, 3600, token, err);
    if (rc == FA_OK)
        rc = fa_store_token_check(st, CUSTOMER, token, cid, err);
    memset(u, 0, sizeof *u);
    u->customer_id = *cid;
    snprintf(u->user_name, sizeof u->user_name, "jane");
    if (rc == FA_OK)
        rc = fa_store_user_create(st, u, err);
    return rc;
}

/* The record an authenticate writes: original + thumbnail rows, one log row. */
static enum fa_rc commit_one(struct fa_store *st, int64_t cid, const struct fa_user *u, long i,
                             struct fa_err *err)
{
    struct fa_store_image im[2];
    char path[2][FA_PATH_MAX];
    struct fa_store_record rec = {0};
    memset(im, 0, sizeof im);
    for (int k = 0; k < 2; k++) {
        snprintf(im[k].id, sizeof im[k].id, "%031lx%d", (unsigned long)i, k);
        snprintf(path[k], sizeof path[k], "images/%lld/%s.jpg", (long long)cid, im[k].id);
        im[k].path = path[k];
        im[k].mime = "image/jpeg";
    }
    rec.customer_id = cid;
    rec.user_id = u->id;
    rec.user_name = u->user_name;
    rec.request_type = "authenticate";
    rec.success = 1;
    rec.score = 5.0;
    rec.original = &im[0];
    rec.thumbnail = &im[1];
    return fa_store_record_commit(st, &rec, err);
}

static void print_result(long runs, double *full, double *normal)
{
    qsort(full, (size_t)runs, sizeof *full, cmp_double);
    qsort(normal, (size_t)runs, sizeof *normal, cmp_double);
    printf("{\"bench\":\"commit\",\"runs\":%ld,\"full_p50_ms\":%.3f,\"full_p99_ms\":%.3f,"
           "\"normal_p50_ms\":%.3f,\"normal_p99_ms\":%.3f,\"full_vs_normal\":%.2f}\n",
           runs, full[runs / 2], full[(runs * 99) / 100], normal[runs / 2],
           normal[(runs * 99) / 100], normal[runs / 2] > 0 ? full[runs / 2] / normal[runs / 2] : 0);
}

int main(int argc, char **argv)
{
    const char *data = NULL;
    char db[1024];
    long runs = 300;
    struct fa_store *st = NULL;
    struct fa_err err = {{0}};
    struct fa_user u;
    int64_t cid = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--data") == 0)
            data = argv[i + 1];
        else if (strcmp(argv[i], "--runs") == 0)
            runs = strtol(argv[i + 1], NULL, 10);
    }
    if (data == NULL || runs < 2 || argc % 2 == 0) {
        fprintf(stderr, "usage: bench_commit --data DIR [--runs N]\n");
        return 64;
    }
    double *full = calloc((size_t)runs, sizeof *full), *normal = calloc((size_t)runs, sizeof *normal);
    mkdir(data, 0700);
    snprintf(db, sizeof db, "%s/faceauth.db", data);
    remove(db);
    for (const char *const *ext = (const char *const[]){"-wal", "-shm", NULL}; *ext; ext++) {
        char side[1100];
        snprintf(side, sizeof side, "%s%s", db, *ext);
        remove(side);
    }
    enum fa_rc rc = full && normal ? fa_store_open(db, &st, &err) : FA_ENOMEM;
    if (rc == FA_OK)
        rc = setup(st, &cid, &u, &err);
    for (long i = 0; rc == FA_OK && i < 2 * runs; i++) {
        double t0;
        int durable = (int)(i % 2);
        rc = fa_store_set_sync(st, durable, &err);
        t0 = now_ms();
        if (rc == FA_OK)
            rc = commit_one(st, cid, &u, i, &err);
        (durable ? full : normal)[i / 2] = now_ms() - t0;
    }
    if (rc == FA_OK)
        print_result(runs, full, normal);
    else
        fprintf(stderr, "bench_commit: %s\n", err.msg[0] ? err.msg : "out of memory");
    fa_store_free(st);
    free(full);
    free(normal);
    return rc == FA_OK ? 0 : 1;
}
