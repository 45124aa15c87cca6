/*
 * pipeline.c — in-process time of each stage of the face pipeline, one
 * thread: the floor the server's answers are compared with (bench/run).
 *
 *   bench_pipeline --models DIR [--runs N] [--warmup N] [--set NAME]
 *                  [--per-image] [--no-reduce] [--list FILE] [IMAGE...]
 *
 * For every image: read the file once (not timed: the server gets bytes from
 * the network), then `warmup` untimed runs and `runs` timed runs of
 *   decode    fa_image_decode_reduced at the factor the server picks
 *             (fa_face_decode_reduction, then fa_face_refine_reduction
 *             when the face is small: both decodes count), timed around
 *             the call;
 *   detect, landmarks, align, embed   from the engine's profiling hook
 *             (fa_engine_set_profile); landmarks for the two largest faces,
 *             whose boxes the server's several-faces rule compares.
 * The largest face is embedded, as in the server, by every model of the
 * server's default `models` setting (embed is their sum), and the rule for
 * decoding in full is the server's at its default policy (purpose: auth;
 * the quality gates, which can also send a photo back to a full decode,
 * are not run: they are not inference).
 *
 * Output, one JSON object per line on stdout: with --per-image one line per
 * image (medians over its runs), then one summary line for the whole set
 * (medians over every run of every image). Each line also gives the cosine
 * between the embeddings of the server's decode and those of a full-size
 * decode ("cos_full", the lowest over the models; 1 when no reduction
 * applies), so a run shows what the reduced decode costs in accuracy. --no-reduce always decodes in full (the
 * server before it learnt reduced decoding), for before/after figures.
 * Exit 1 on any error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "faceauth/config.h"
#include "faceauth/face.h"
#include "faceauth/vision.h"
#include "face/face_test.h"
#include "vision/vision_test.h"

#define MAX_PIXELS 40000000L
#define MAX_FILE (64L * 1024 * 1024)
#define N_STAGES 7 /* decode, detect, landmarks, align, embed, their sum, CPU */

static const char *const kStageNames[N_STAGES] = {"decode", "detect", "landmarks", "align",
                                                   "embed",  "sum",    "cpu"};

/* Per-run stage seconds of a series of runs, grown as needed. */
struct series {
    double *v[N_STAGES];
    size_t n, cap;
};

struct opts {
    const char *model_dir;
    const char *set;
    int runs, warmup, per_image;
    int no_reduce; /* --no-reduce: always decode in full (the server before reduction) */
    int first_path; /* argv index of the first image path */
};

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double now_s(void) { return clock_s(CLOCK_MONOTONIC); }

static int series_push(struct series *s, const double t[N_STAGES])
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        for (int k = 0; k < N_STAGES; k++) {
            double *p = realloc(s->v[k], cap * sizeof *p);
            if (p == NULL)
                return -1;
            s->v[k] = p;
        }
        s->cap = cap;
    }
    for (int k = 0; k < N_STAGES; k++)
        s->v[k][s->n] = t[k];
    s->n++;
    return 0;
}

static void series_free(struct series *s)
{
    for (int k = 0; k < N_STAGES; k++)
        free(s->v[k]);
    memset(s, 0, sizeof *s);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of n values (sorts them in place). */
static double median(double *v, size_t n)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static uint8_t *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    long len;
    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) > 0 && len <= MAX_FILE &&
        fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)len);
        if (buf != NULL && fread(buf, 1, (size_t)len, f) != (size_t)len) {
            free(buf);
            buf = NULL;
        }
        *n = (size_t)len;
    }
    fclose(f);
    return buf;
}

/*
 * One pass of the pipeline as the server runs it: decode at reduction
 * *reduce, detect (landmarks for the two largest faces, as the server's
 * several-faces rule asks), and when fa_face_refine_reduction says so,
 * decode and detect again at the factor it gives (*reduce is then that
 * one); the upright check (fa_face_upright, in the detect column); align
 * and embed the largest face with every model the engine holds (the
 * server's `models`). Stage
 * seconds go to t[] (t[6]: CPU seconds of the whole pass, which other
 * processes on a busy machine do not inflate as much as wall time), the
 * embedding to emb, the face count to *faces. FA_ENOFACE when there is no
 * face.
 */
static enum fa_rc run_once(struct fa_engine *eng, const struct fa_face_opts *policy,
                           const uint8_t *bytes, size_t n, int *reduce, double t[N_STAGES],
                           float emb[FA_N_MODELS][FA_MAX_EMBED_DIM], int *faces,
                           struct fa_err *err)
{
    float *outs[FA_N_MODELS];
    struct fa_stage_times st = {0};
    struct fa_image *img = NULL;
    struct fa_face face[2];
    enum fa_rc rc;
    int better;
    double cpu0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
    t[0] = 0;
    fa_engine_set_profile(eng, &st);
    for (;;) {
        double t0 = now_s();
        rc = fa_image_decode_reduced(bytes, n, MAX_PIXELS, *reduce, &img, err);
        t[0] += now_s() - t0;
        if (rc == FA_OK)
            rc = fa_detect(eng, img, face, 2, faces, err);
        if (rc == FA_OK && *faces == 0)
            rc = fa_err_set(err, FA_ENOFACE, "no face");
        if (rc != FA_OK)
            break;
        better = fa_face_refine_reduction(policy, FA_FACE_AUTH, *reduce, face, *faces);
        if (better == *reduce)
            break;
        *reduce = better;
        fa_image_free(img);
        img = NULL;
    }
    for (int m = 0; m < FA_N_MODELS; m++)
        outs[m] = emb[m];
    if (rc == FA_OK) { /* which way up: one more detector pass, timed as detect */
        float margin;
        int turns;
        rc = fa_face_upright(eng, img, &face[0], &margin, &turns, err);
    }
    if (rc == FA_OK)
        rc = fa_embed_models(eng, img, &face[0], fa_engine_loaded(eng) & FA_MODELS_ALL, outs, err);
    fa_engine_set_profile(eng, NULL);
    fa_image_free(img);
    t[1] = st.detect;
    t[2] = st.landmarks;
    t[3] = st.align;
    t[4] = st.embed;
    t[5] = t[0] + t[1] + t[2] + t[3] + t[4];
    t[6] = clock_s(CLOCK_THREAD_CPUTIME_ID) - cpu0;
    return rc;
}

static void print_line(const struct opts *o, const char *image, struct series *s, int w, int h,
                       int reduce, int faces, double cos_full, int n_images)
{
    printf("{\"set\":\"%s\"", o->set);
    if (image != NULL)
        printf(",\"image\":\"%s\",\"width\":%d,\"height\":%d,\"reduce\":%d,\"faces\":%d", image,
               w, h, reduce, faces);
    else
        printf(",\"summary\":true,\"images\":%d", n_images);
    double total = 0;
    for (size_t i = 0; i < s->n; i++)
        total += s->v[5][i];
    printf(",\"runs\":%zu,\"cos_full\":%.5f,\"sum_mean_ms\":%.3f", s->n, cos_full,
           s->n ? 1e3 * total / (double)s->n : 0.0);
    for (int k = 0; k < N_STAGES; k++)
        printf(",\"%s_ms\":%.3f", kStageNames[k], 1e3 * median(s->v[k], s->n));
    printf("}\n");
    fflush(stdout);
}

/* The lowest cosine, over the engine's models, between two sets of embeddings. */
static double min_cosine(const struct fa_engine *eng, float a[][FA_MAX_EMBED_DIM],
                         float b[][FA_MAX_EMBED_DIM])
{
    double low = 1.0;
    for (int m = 0; m < FA_N_MODELS; m++) {
        if (!(fa_engine_loaded(eng) & FA_MODEL_BIT(m)))
            continue;
        double c = fa_cosine(a[m], b[m], fa_model_info((enum fa_model)m)->dim);
        if (c < low)
            low = c;
    }
    return low;
}

/* The reduction the server first decodes this image at. */
static int first_reduction(const uint8_t *bytes, size_t n, int *w, int *h, struct fa_err *err)
{
    struct fa_image_info info;
    if (fa_image_probe(bytes, n, &info, err) != FA_OK)
        return -1;
    *w = info.width;
    *h = info.height;
    return fa_face_decode_reduction(&info);
}

/* All runs of one image into all (and, with --per-image, a line of its own). */
static int bench_image(const struct opts *o, struct fa_engine *eng,
                       const struct fa_face_opts *policy, const char *path, struct series *all,
                       double *min_cos)
{
    struct fa_err err = {{0}};
    struct series mine = {0};
    static float emb[FA_N_MODELS][FA_MAX_EMBED_DIM], full[FA_N_MODELS][FA_MAX_EMBED_DIM];
    double t[N_STAGES];
    int w = 0, h = 0, faces = 0, first = -1, reduce = 1, ok = -1;
    size_t n = 0;
    uint8_t *bytes = read_file(path, &n);
    if (bytes != NULL)
        first = first_reduction(bytes, n, &w, &h, &err);
    if (first < 0) {
        fprintf(stderr, "bench_pipeline: cannot read %s %s\n", path, err.msg);
        free(bytes);
        return -1;
    }
    if (o->no_reduce)
        first = 1;
    if (run_once(eng, policy, bytes, n, &reduce, t, full, &faces, &err) != FA_OK)
        goto out;
    for (int r = 0; r < o->warmup + o->runs; r++) {
        reduce = first;
        if (run_once(eng, policy, bytes, n, &reduce, t, emb, &faces, &err) != FA_OK)
            goto out;
        if (r >= o->warmup && (series_push(&mine, t) != 0 || series_push(all, t) != 0))
            goto out;
    }
    double c = min_cosine(eng, emb, full);
    if (c < *min_cos)
        *min_cos = c;
    if (o->per_image)
        print_line(o, path, &mine, w, h, reduce, faces, c, 1);
    ok = 0;
out:
    if (ok != 0)
        fprintf(stderr, "bench_pipeline: %s: %s\n", path, err.msg[0] ? err.msg : "out of memory");
    series_free(&mine);
    free(bytes);
    return ok;
}

/* Paths from a file, one per line; the array and strings are malloc'ed. */
static char **read_list(const char *file, int *n)
{
    FILE *f = fopen(file, "r");
    char line[4096];
    char **v = NULL;
    int cap = 0;
    *n = 0;
    if (f == NULL)
        return NULL;
    while (fgets(line, sizeof line, f) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '\0')
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 256;
            char **p = realloc(v, (size_t)cap * sizeof *p);
            if (p == NULL)
                break;
            v = p;
        }
        v[(*n)++] = strdup(line);
    }
    fclose(f);
    return v;
}

static int parse(int argc, char **argv, struct opts *o, char ***paths, int *n)
{
    o->runs = 30;
    o->warmup = 2;
    o->set = "images";
    o->first_path = 1;
    for (int i = 1; i < argc; i++) {
        int more = i + 1 < argc;
        if (strcmp(argv[i], "--models") == 0 && more)
            o->model_dir = argv[++i];
        else if (strcmp(argv[i], "--runs") == 0 && more)
            o->runs = (int)strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--warmup") == 0 && more)
            o->warmup = (int)strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--set") == 0 && more)
            o->set = argv[++i];
        else if (strcmp(argv[i], "--per-image") == 0)
            o->per_image = 1;
        else if (strcmp(argv[i], "--no-reduce") == 0)
            o->no_reduce = 1;
        else if (strcmp(argv[i], "--list") == 0 && more && *paths == NULL) {
            *paths = read_list(argv[++i], n);
            if (*paths == NULL)
                return -1;
        } else if (argv[i][0] == '-') {
            return -1;
        } else {
            break;
        }
        o->first_path = i + 1;
    }
    return o->model_dir != NULL && o->runs > 0 && o->warmup >= 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    struct opts o = {0};
    struct series all = {0};
    struct fa_engine *eng = NULL;
    struct fa_err err = {{0}};
    struct fa_config cfg;
    struct fa_face_opts policy;
    char **list = NULL;
    int n_list = 0, failed = 0;
    double min_cos = 1.0;
    if (parse(argc, argv, &o, &list, &n_list) != 0) {
        fprintf(stderr, "usage: bench_pipeline --models DIR [--runs N] [--warmup N] [--set NAME] "
                        "[--per-image] [--no-reduce] [--list FILE] [IMAGE...]\n");
        return 64;
    }
    /* The server at its defaults: its face policy decides when to decode in
     * full, and its `models` are the embedding models every request runs. */
    fa_config_defaults(&cfg);
    fa_face_opts_from_config(&cfg, &policy);
    unsigned models = (cfg.models & FA_MODELS_ALL) | FA_MODEL_BIT(FA_MODEL_ARCFACE);
    if (fa_engine_new_models(o.model_dir, models, &eng, &err) != FA_OK) {
        fprintf(stderr, "bench_pipeline: %s\n", err.msg);
        return 1;
    }
    for (int i = 0; i < n_list && !failed; i++)
        failed = bench_image(&o, eng, &policy, list[i], &all, &min_cos) != 0;
    for (int i = o.first_path; i < argc && !failed; i++)
        failed = bench_image(&o, eng, &policy, argv[i], &all, &min_cos) != 0;
    if (!failed && all.n > 0)
        print_line(&o, NULL, &all, 0, 0, 0, 0, min_cos, n_list + argc - o.first_path);
    for (int i = 0; i < n_list; i++)
        free(list[i]);
    free(list);
    series_free(&all);
    fa_engine_free(eng);
    return failed ? 1 : 0;
}
