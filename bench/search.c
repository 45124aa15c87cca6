/*
 * search.c — benchmark of the 1:N index on one thread.
 *
 * For N = 1k, 10k, 100k, 1M users of one customer (one template each, dim
 * 512, random unit vectors), it measures the load time (fa_index_add only,
 * vector generation excluded), fa_index_bytes, and the p50/p99 latency of
 * fa_index_search (threshold 0.5, max_hits 100, no filter). Each probe is a
 * stored user's vector plus noise (cosine about 0.8), so a search finds that
 * user and nobody else, as in a real authentication. Prints a table, and one
 * JSON line per N for scripts.
 *
 * Usage: bench_search [max_n [queries]]   (defaults: 1000000, 200; 1M uses
 * at most 50 queries; 1M users need about 2.2 GB)
 *
 * Vectors are rebuilt from the user id (a seeded xorshift), so probes need
 * no second copy of the data.
 */
#include "faceauth/index.h"
#include "index/index_test.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DIM 512
#define CUSTOMER 1
#define THRESHOLD 0.5f
#define MAX_HITS 100
#define BATCH 1024       /* users generated, then added, per timed batch */
#define QUERIES_1M_MAX 50
#define NOISE 0.0573     /* per-component uniform noise: cosine ~0.8 to the user */

struct rng {
    uint64_t s;
};

static uint64_t rng_next(struct rng *r)
{
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static float rng_sym(struct rng *r) /* uniform in [-1, 1) */
{
    return (float)((double)(rng_next(r) >> 11) * 0x1.0p-52 - 1.0);
}

static void normalise(float *v)
{
    double s = 0;
    for (int i = 0; i < DIM; i++)
        s += (double)v[i] * v[i];
    s = s > 0 ? 1.0 / sqrt(s) : 1.0;
    for (int i = 0; i < DIM; i++)
        v[i] = (float)(v[i] * s);
}

static void user_vec(int64_t user, float *v)
{
    struct rng r = {0x9e3779b97f4a7c15ULL ^ ((uint64_t)user * 0xbf58476d1ce4e5b9ULL)};
    for (int i = 0; i < DIM; i++)
        v[i] = rng_sym(&r);
    normalise(v);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile(const double *sorted, int n, double p)
{
    int i = (int)ceil(p * n) - 1;
    return sorted[i < 0 ? 0 : i >= n ? n - 1 : i];
}

/* Add users 1..n; returns the milliseconds spent in fa_index_add, or -1. */
static double load(struct fa_index *idx, int64_t n, float *batch)
{
    struct fa_err err = {{0}};
    double spent = 0;

    for (int64_t u0 = 1; u0 <= n; u0 += BATCH) {
        int64_t m = n - u0 + 1 < BATCH ? n - u0 + 1 : BATCH;
        double t0;
        for (int64_t i = 0; i < m; i++)
            user_vec(u0 + i, batch + i * DIM);
        t0 = now_ms();
        for (int64_t i = 0; i < m; i++)
            if (fa_index_add(idx, CUSTOMER, u0 + i, batch + i * DIM, &err) != FA_OK) {
                fprintf(stderr, "add user %lld: %s\n", (long long)(u0 + i), err.msg);
                return -1;
            }
        spent += now_ms() - t0;
    }
    return spent;
}

struct result {
    double p50, p99, mean, load_ms;
    size_t bytes;
    double hits_avg;
    int found; /* queries whose top hit was the user the probe came from */
};

static int run_queries(struct fa_index *idx, int64_t n, int queries, double *lat,
                       struct result *res)
{
    struct rng r = {0x5eedULL + (uint64_t)n};
    float probe[DIM];
    long hits_total = 0;

    for (int q = -1; q < queries; q++) { /* q == -1: one warm-up */
        int64_t user = 1 + (int64_t)(rng_next(&r) % (uint64_t)n);
        struct fa_index_hit *hits = NULL;
        struct fa_err err = {{0}};
        int n_hits = 0;
        double t0;

        user_vec(user, probe);
        for (int i = 0; i < DIM; i++)
            probe[i] += (float)NOISE * rng_sym(&r);
        normalise(probe);
        t0 = now_ms();
        if (fa_index_search(idx, CUSTOMER, probe, THRESHOLD, NULL, 0, MAX_HITS, &hits, &n_hits,
                            &err) != FA_OK) {
            fprintf(stderr, "search: %s\n", err.msg);
            return -1;
        }
        if (q >= 0) {
            lat[q] = now_ms() - t0;
            hits_total += n_hits;
            res->found += n_hits > 0 && hits[0].user_id == user;
        }
        free(hits);
    }
    res->mean = 0;
    for (int q = 0; q < queries; q++)
        res->mean += lat[q] / queries;
    qsort(lat, (size_t)queries, sizeof *lat, cmp_double);
    res->p50 = percentile(lat, queries, 0.50);
    res->p99 = percentile(lat, queries, 0.99);
    res->hits_avg = (double)hits_total / queries;
    return 0;
}

static int bench(int64_t n, int queries)
{
    struct fa_index *idx = NULL;
    struct result res = {0};
    struct fa_err err = {{0}};
    float *batch = malloc((size_t)BATCH * DIM * sizeof(float));
    double *lat = malloc((size_t)queries * sizeof(double));
    int rc = -1;

    if (batch == NULL || lat == NULL || fa_index_new(DIM, &idx, &err) != FA_OK) {
        fprintf(stderr, "setup failed %s\n", err.msg);
        goto out;
    }
    res.load_ms = load(idx, n, batch);
    if (res.load_ms < 0 || run_queries(idx, n, queries, lat, &res) != 0)
        goto out;
    res.bytes = fa_index_bytes(idx);
    printf("%9lld %8d %10.3f %10.3f %10.3f %9.2f %10.1f %8.2f %6d/%d\n", (long long)n, queries,
           res.p50, res.p99, res.mean, res.load_ms / 1e3, (double)res.bytes / (1 << 20),
           res.hits_avg, res.found, queries);
    printf("{\"bench\":\"index_search\",\"n\":%lld,\"dim\":%d,\"templates_per_user\":1,"
           "\"threshold\":%.2f,\"max_hits\":%d,\"queries\":%d,\"p50_ms\":%.4f,\"p99_ms\":%.4f,"
           "\"mean_ms\":%.4f,\"load_s\":%.3f,\"bytes\":%zu,\"hits_avg\":%.3f,\"found\":%d}\n",
           (long long)n, DIM, THRESHOLD, MAX_HITS, queries, res.p50, res.p99, res.mean,
           res.load_ms / 1e3, res.bytes, res.hits_avg, res.found);
    fflush(stdout);
    rc = 0;
out:
    fa_index_free(idx);
    free(lat);
    free(batch);
    return rc;
}

/* A positive integer argument, or def when absent; -1 when malformed. */
static long arg_long(int argc, char **argv, int i, long def)
{
    char *end = NULL;
    long v;

    if (argc <= i)
        return def;
    errno = 0;
    v = strtol(argv[i], &end, 10);
    return errno != 0 || end == argv[i] || *end != '\0' || v <= 0 ? -1 : v;
}

int main(int argc, char **argv)
{
    static const int64_t sizes[] = {1000, 10000, 100000, 1000000};
    long max_n = arg_long(argc, argv, 1, 1000000), queries = arg_long(argc, argv, 2, 200);

    if (max_n < 0 || queries < 0) {
        fprintf(stderr, "usage: %s [max_n [queries]]\n", argv[0]);
        return 2;
    }
    printf("# fa_index_search, one thread, dim %d, 1 template per user, threshold %.2f, "
           "max_hits %d\n", DIM, THRESHOLD, MAX_HITS);
    printf("%9s %8s %10s %10s %10s %9s %10s %8s %8s\n", "users", "queries", "p50_ms", "p99_ms",
           "mean_ms", "load_s", "bytes_MiB", "hits", "found");
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0] && sizes[i] <= max_n; i++) {
        int q = sizes[i] >= 1000000 && queries > QUERIES_1M_MAX ? QUERIES_1M_MAX : (int)queries;
        if (bench(sizes[i], q) != 0)
            return 1;
    }
    return 0;
}
