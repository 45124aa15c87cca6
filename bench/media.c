/*
 * media.c — what storing a request's two images costs (bench/run).
 *
 *   bench_media --data DIR [--runs N] [--original BYTES] [--thumbnail BYTES]
 *
 * Every authenticate and enroll writes the original photo and the face
 * thumbnail durably (fa_media_save: temporary file, fsync, rename, fsync of
 * the folder) before its database row is committed and the answer sent.
 * This times that pair of writes on the disk under DIR, as the server does
 * them, `runs` times (default 200; sizes default to those of a typical probe
 * crop and its 192x192 thumbnail), and prints one JSON line with the median
 * and 99th percentile in ms. The files are removed again. Exit 1 on error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "faceauth/media.h"

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

/* Save the pair once; the two paths go to rel[0], rel[1]. */
static enum fa_rc save_pair(struct fa_media *m, const uint8_t *orig, size_t n_orig,
                            const uint8_t *thumb, size_t n_thumb, char rel[2][FA_PATH_MAX],
                            struct fa_err *err)
{
    char id[FA_IMAGE_ID_HEX + 1];
    enum fa_rc rc = fa_media_save(m, 1, orig, n_orig, "jpg", id, rel[0], err);
    if (rc == FA_OK)
        rc = fa_media_save(m, 1, thumb, n_thumb, "jpg", id, rel[1], err);
    return rc;
}

int main(int argc, char **argv)
{
    const char *data = NULL;
    long runs = 200, n_orig = 20000, n_thumb = 8000;
    struct fa_media *m = NULL;
    struct fa_err err = {{0}};
    for (int i = 1; i + 1 < argc; i += 2) {
        long v = strtol(argv[i + 1], NULL, 10);
        if (strcmp(argv[i], "--data") == 0)
            data = argv[i + 1];
        else if (strcmp(argv[i], "--runs") == 0)
            runs = v;
        else if (strcmp(argv[i], "--original") == 0)
            n_orig = v;
        else if (strcmp(argv[i], "--thumbnail") == 0)
            n_thumb = v;
    }
    if (data == NULL || runs < 1 || n_orig < 1 || n_thumb < 1 || argc % 2 == 0) {
        fprintf(stderr, "usage: bench_media --data DIR [--runs N] [--original BYTES] "
                        "[--thumbnail BYTES]\n");
        return 64;
    }
    uint8_t *orig = calloc(1, (size_t)n_orig), *thumb = calloc(1, (size_t)n_thumb);
    double *ms = calloc((size_t)runs, sizeof *ms);
    enum fa_rc rc = orig && thumb && ms ? fa_media_open(data, &m, &err) : FA_ENOMEM;
    for (long i = 0; rc == FA_OK && i < runs; i++) {
        char rel[2][FA_PATH_MAX];
        double t0 = now_ms();
        rc = save_pair(m, orig, (size_t)n_orig, thumb, (size_t)n_thumb, rel, &err);
        ms[i] = now_ms() - t0;
        if (rc == FA_OK) {
            fa_media_remove(m, rel[0]);
            fa_media_remove(m, rel[1]);
        }
    }
    if (rc == FA_OK) {
        qsort(ms, (size_t)runs, sizeof *ms, cmp_double);
        printf("{\"bench\":\"media\",\"runs\":%ld,\"original_bytes\":%ld,\"thumbnail_bytes\":%ld,"
               "\"p50_ms\":%.3f,\"p99_ms\":%.3f}\n",
               runs, n_orig, n_thumb, ms[runs / 2], ms[(runs * 99) / 100]);
    } else {
        fprintf(stderr, "bench_media: %s\n", err.msg[0] ? err.msg : "out of memory");
    }
    fa_media_free(m);
    free(ms);
    free(thumb);
    free(orig);
    return rc == FA_OK ? 0 : 1;
}
