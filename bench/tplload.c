/*
 * tplload.c — the start-up step that grows with the templates: walking every
 * first-model template of the database (fa_store_templates_each), as
 * fa_api_recover does to fill the search index, without the index itself.
 *
 *   bench_tplload --data DIR [--runs R]
 *
 * Opens DIR/faceauth.db (fa_store_open, timed once: it also checks for
 * templates stored in clear and reads the template key), then walks R times
 * (default 9) and prints the median wall and thread-CPU milliseconds of a
 * walk. The CPU figure is the steadier one on a shared machine. Exit 1 on
 * any error. bench/startup times the whole start of the server.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "faceauth/crypto.h"
#include "faceauth/store.h"
#include "faceauth/vision.h"

#define RUNS_MAX 99

static double clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

struct walk {
    long n;
    double sum; /* touch every vector, as the index copy would */
};

static int count(void *arg, int64_t customer_id, int64_t user_id, const float *vec, int dim)
{
    struct walk *w = arg;
    (void)customer_id;
    (void)user_id;
    w->n++;
    w->sum += vec[0] + vec[dim - 1];
    return 0;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    const char *data = NULL;
    int runs = 9;
    char path[1024];
    struct fa_store *st = NULL;
    struct fa_err err = {{0}};
    double wall[RUNS_MAX], cpu[RUNS_MAX], t0;
    struct walk w = {0, 0};
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--data") == 0)
            data = argv[i + 1];
        else if (strcmp(argv[i], "--runs") == 0)
            runs = (int)strtol(argv[i + 1], NULL, 10);
    }
    if (data == NULL || runs < 1 || runs > RUNS_MAX) {
        fprintf(stderr, "usage: bench_tplload --data DIR [--runs 1-%d]\n", RUNS_MAX);
        return 64;
    }
    if (fa_crypto_init() != FA_OK)
        return 1;
    snprintf(path, sizeof path, "%s/faceauth.db", data);
    t0 = clock_ms(CLOCK_MONOTONIC);
    if (fa_store_open(path, &st, &err) != FA_OK) {
        fprintf(stderr, "bench_tplload: %s\n", err.msg);
        return 1;
    }
    printf("open: %.1f ms\n", clock_ms(CLOCK_MONOTONIC) - t0);
    for (int r = 0; r < runs; r++) {
        double c0 = clock_ms(CLOCK_THREAD_CPUTIME_ID);
        t0 = clock_ms(CLOCK_MONOTONIC);
        w.n = 0;
        if (fa_store_templates_each(st, FA_MODEL_ID, count, &w, &err) != FA_OK) {
            fprintf(stderr, "bench_tplload: %s\n", err.msg);
            fa_store_free(st);
            return 1;
        }
        wall[r] = clock_ms(CLOCK_MONOTONIC) - t0;
        cpu[r] = clock_ms(CLOCK_THREAD_CPUTIME_ID) - c0;
    }
    fa_store_free(st);
    qsort(wall, (size_t)runs, sizeof wall[0], cmp);
    qsort(cpu, (size_t)runs, sizeof cpu[0], cmp);
    printf("walk of %ld templates (%s): median of %d: %.1f ms wall, %.1f ms CPU "
           "(%.2f us CPU per template)\n",
           w.n, FA_MODEL_ID, runs, wall[runs / 2], cpu[runs / 2],
           w.n > 0 ? cpu[runs / 2] * 1e3 / (double)w.n : 0.0);
    return 0;
}
