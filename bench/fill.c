/*
 * fill.c — a data directory whose database holds many enrolled users, for
 * the memory and start-up figures of bench/run.
 *
 *   bench_fill --data DIR --users N [--customer NAME] [--password P] [--seed S]
 *              [--database URL]
 *
 * Creates DIR/faceauth.db, or fills the database URL names (bench/run
 * --database: PostgreSQL), through the store API, exactly as the server
 * writes it: a customer, and N users named synth-<i>, each enrolled with one
 * photo's templates: for every embedding model a pseudo-random unit vector
 * of its dimension, drawn from a fixed seed, so two fills are identical.
 * The search index loads the first model's (512-D) of each: N templates.
 * Every user costs two transactions (create, then the enroll record), as
 * through the API.
 * Prints the elapsed time; exit 1 on any error.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "faceauth/store.h"
#include "faceauth/vision.h"

struct opts {
    const char *data;
    const char *database; /* NULL: DIR/faceauth.db */
    const char *customer;
    const char *password;
    long users;
    uint64_t seed;
};

/* splitmix64: a tiny, well-mixed generator (no rand(), same on every run). */
static uint64_t next_u64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* A random direction: uniform components in [-1, 1), then L2-normalised. */
static void unit_vector(uint64_t *state, float *v, int dim)
{
    double sq = 0;
    for (int i = 0; i < dim; i++) {
        v[i] = (float)((double)(next_u64(state) >> 11) * 0x1.0p-53 * 2.0 - 1.0);
        sq += (double)v[i] * v[i];
    }
    float inv = (float)(1.0 / sqrt(sq));
    for (int i = 0; i < dim; i++)
        v[i] *= inv;
}

/* The customer's id, through a login (the store exposes no other lookup). */
static enum fa_rc customer_id(struct fa_store *st, const struct opts *o, int64_t *id,
                              struct fa_err *err)
{
    char token[FA_TOKEN_CHARS + 1];
    enum fa_rc rc = fa_store_login(st, o->customer, o->password, 3600, token, err);
    if (rc == FA_OK)
        rc = fa_store_token_check(st, o->customer, token, id, err);
    return rc;
}

/* One user, created as draft, then enrolled with one photo (sample) that
 * holds a template of every model, as an enrollment through the API stores. */
static enum fa_rc add_user(struct fa_store *st, int64_t cid, long i, uint64_t *seed,
                           struct fa_err *err)
{
    static float vecs[FA_N_MODELS][FA_MAX_EMBED_DIM];
    struct fa_store_template tpl[FA_N_MODELS];
    struct fa_store_sample sample = {tpl, FA_N_MODELS, "enroll", 100};
    struct fa_user u;
    struct fa_store_record rec = {0};
    for (int m = 0; m < FA_N_MODELS; m++) {
        const struct fa_model_info *info = fa_model_info((enum fa_model)m);
        unit_vector(seed, vecs[m], info->dim);
        tpl[m] = (struct fa_store_template){info->id, info->dim, vecs[m]};
    }
    memset(&u, 0, sizeof u);
    u.customer_id = cid;
    snprintf(u.user_name, sizeof u.user_name, "synth-%07ld", i);
    enum fa_rc rc = fa_store_user_create(st, &u, err);
    if (rc != FA_OK)
        return rc;
    rec.customer_id = cid;
    rec.user_id = u.id;
    rec.user_name = u.user_name;
    rec.request_type = "enroll";
    rec.success = 1;
    rec.score = NAN;
    rec.set_state = 1;
    rec.new_state = FA_USER_SUCCESS;
    rec.samples = &sample;
    rec.n_samples = 1;
    return fa_store_record_commit(st, &rec, err);
}

static int parse(int argc, char **argv, struct opts *o)
{
    o->customer = "bench";
    o->password = "bench-password-1";
    o->seed = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--data") == 0)
            o->data = argv[i + 1];
        else if (strcmp(argv[i], "--users") == 0)
            o->users = strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--customer") == 0)
            o->customer = argv[i + 1];
        else if (strcmp(argv[i], "--password") == 0)
            o->password = argv[i + 1];
        else if (strcmp(argv[i], "--database") == 0)
            o->database = argv[i + 1];
        else if (strcmp(argv[i], "--seed") == 0)
            o->seed = strtoull(argv[i + 1], NULL, 10);
        else
            return -1;
    }
    return o->data != NULL && o->users > 0 && argc % 2 == 1 ? 0 : -1;
}

int main(int argc, char **argv)
{
    struct opts o = {0};
    struct fa_store *st = NULL;
    struct fa_err err = {{0}};
    char path[1024];
    int64_t cid = 0;
    struct timespec t0, t1;
    enum fa_rc rc;
    if (parse(argc, argv, &o) != 0) {
        fprintf(stderr, "usage: bench_fill --data DIR --users N [--customer NAME] "
                        "[--password P] [--seed S] [--database URL]\n");
        return 64;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    mkdir(o.data, 0700);
    if (o.database != NULL)
        snprintf(path, sizeof path, "%s", o.database);
    else
        snprintf(path, sizeof path, "%s/faceauth.db", o.data);
    rc = fa_store_open(path, &st, &err);
    /* A benchmark fixture, rebuilt when lost: an fsync per commit would
     * only make 200k commits slow. */
    if (rc == FA_OK)
        rc = fa_store_set_sync(st, 0, &err);
    if (rc == FA_OK)
        rc = fa_store_customer_add(st, o.customer, o.password, &err);
    if (rc == FA_OK)
        rc = customer_id(st, &o, &cid, &err);
    for (long i = 0; rc == FA_OK && i < o.users; i++)
        rc = add_user(st, cid, i, &o.seed, &err);
    fa_store_free(st);
    if (rc != FA_OK) {
        fprintf(stderr, "bench_fill: %s\n", err.msg);
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("bench_fill: %ld users, one photo each (%d models) in %s (%.1f s)\n", o.users,
           FA_N_MODELS, o.database != NULL ? "the database" : path, /* a URL may hold a password */
           (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9);
    return 0;
}
