/*
 * vision_cli.c — the benchmark subcommands compare, embed and score-pairs
 * (see include/faceauth/cli.h). Plain C over the public vision API.
 *
 * DESIGN
 * embed and score-pairs run a small pool: one thread per online CPU, each
 * with its own fa_engine (a cv::dnn::Net must not be shared). Jobs are the
 * indexes of a path array; a worker takes the next index under one mutex
 * and writes only its own result slot, so the output is printed afterwards
 * in input order whichever thread finished first. The calling thread is
 * worker 0 and its engine is loaded before any thread starts, so missing
 * models fail fast with one message; other workers load their engine
 * inside the thread (in parallel) and, should that fail, simply take no
 * jobs. embed works through its input in batches, which bounds memory for
 * arbitrarily long path lists on stdin.
 *
 * --model picks the embedding model(s) (a mask of FA_MODEL_BIT()s): each
 * result keeps every model's vector back to back in model order, at the
 * offsets cli_offset() gives, so `all` costs one detection and one 112x112
 * warp per image whatever the number of models. compare and score-pairs
 * print by default the server's decision score: the models of the config
 * fused with its znorm_ statistics by fa_face_fuse, the very function
 * authenticate and search call (`--model fused` says so explicitly).
 */
#include "faceauth/cli.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "faceauth/common.h"
#include "faceauth/face.h"
#include "faceauth/vision.h"

#define CLI_MAX_PIXELS 40000000L           /* decode cap for every CLI image */
#define CLI_MAX_FILE (256L * 1024 * 1024)  /* bytes of one image or pairs file */
#define CLI_BATCH 256                      /* embed: paths per pool run */
#define CLI_MAX_THREADS 64
#define CLI_EMB_FLOATS (512 + 192 + 128) /* every model's embedding of one face */

enum cli_status { CLI_OK, CLI_NOFACE, CLI_ERROR };

/* The outcome for one image; reason is set for CLI_ERROR and CLI_NOFACE. */
struct cli_result {
    enum cli_status status;
    char reason[FA_ERR_MAX];
    float emb[CLI_EMB_FLOATS]; /* model m's vector at cli_offset(m) */
};

struct cli_pool;

struct cli_worker {
    struct cli_pool *pool;
    struct fa_engine *eng; /* NULL until loaded; kept across runs */
    int failed;            /* the engine could not be loaded: take no jobs */
};

struct cli_pool {
    const char *model_dir;
    unsigned models; /* FA_MODEL_BIT()s to load and embed with */
    const char *const *paths; /* the current run */
    struct cli_result *res;
    size_t n;
    size_t next; /* next job index, under mu */
    pthread_mutex_t mu;
    int n_workers;
    struct cli_worker workers[CLI_MAX_THREADS];
};

/* Where model m's vector starts in cli_result.emb: the dims of the models
 * before it. */
static int cli_offset(enum fa_model m)
{
    int off = 0;
    for (int i = 0; i < (int)m; i++)
        off += fa_model_info((enum fa_model)i)->dim;
    return off;
}

/* The mask --model names: one model's name or id, or "all"; NULL is the
 * first model. 0 (message printed) when the name is unknown. */
static unsigned cli_models(const char *cmd, const char *name)
{
    enum fa_model m = FA_MODEL_ARCFACE;
    struct fa_err err = {{0}};
    if (cli_offset(FA_N_MODELS) > CLI_EMB_FLOATS) { /* a model was added: grow the buffer */
        fprintf(stderr, "faceauth %s: CLI_EMB_FLOATS is too small\n", cmd);
        return 0;
    }
    if (name != NULL && strcmp(name, "all") == 0)
        return FA_MODELS_ALL;
    if (name != NULL && fa_model_from_name(name, &m, &err) != FA_OK) {
        fprintf(stderr, "faceauth %s: --model: %s, or all\n", cmd, err.msg);
        return 0;
    }
    return FA_MODEL_BIT(m);
}

/* What compare and score-pairs print: one model's cosine, every model's,
 * or the fused score of the config's models. */
struct cli_scoring {
    unsigned models; /* FA_MODEL_BIT()s to embed with */
    int fused;       /* print fa_face_fuse of them instead of cosines */
    struct fa_fusion fusion;
};

/* --model of compare and score-pairs: NULL or "fused" (the default), or what
 * cli_models takes. 0 (message printed) on an unknown name. */
static int cli_scoring(const char *cmd, const struct fa_config *cfg, const char *name,
                       struct cli_scoring *out)
{
    memset(out, 0, sizeof *out);
    if (name == NULL || strcmp(name, "fused") == 0) {
        out->fused = 1;
        fa_face_fusion_from_config(cfg, &out->fusion);
        out->models = cfg->models != 0 ? cfg->models : FA_MODEL_BIT(FA_MODEL_ARCFACE);
        return cli_models(cmd, "all") != 0; /* checks the buffer size */
    }
    out->models = cli_models(cmd, name);
    return out->models != 0;
}

/* Decode one file and embed its largest face with every model in the mask
 * into res. */
static void cli_embed_file(struct fa_engine *eng, unsigned models, const char *path,
                           struct cli_result *res)
{
    float *outs[FA_N_MODELS];
    uint8_t *bytes = NULL;
    size_t n = 0;
    struct fa_image *img = NULL;
    struct fa_face face;
    int n_found = 0;
    struct fa_err err = {{0}};
    enum fa_rc rc = fa_read_file(path, CLI_MAX_FILE, &bytes, &n, &err);
    if (rc == FA_OK)
        rc = fa_image_decode(bytes, n, CLI_MAX_PIXELS, &img, &err);
    if (rc == FA_OK) /* faces come largest first: one slot is the main face */
        rc = fa_detect(eng, img, &face, 1, &n_found, &err);
    if (rc == FA_OK && n_found == 0) {
        res->status = CLI_NOFACE;
        snprintf(res->reason, sizeof res->reason, "no face found");
        goto out;
    }
    for (int m = 0; m < FA_N_MODELS; m++)
        outs[m] = res->emb + cli_offset((enum fa_model)m);
    if (rc == FA_OK)
        rc = fa_embed_models(eng, img, &face, models, outs, &err);
    res->status = rc == FA_OK ? CLI_OK : CLI_ERROR;
    if (rc != FA_OK)
        snprintf(res->reason, sizeof res->reason, "%s", err.msg[0] ? err.msg : fa_rc_name(rc));
out:
    fa_image_free(img);
    free(bytes);
}

/* Take job indexes until none are left. */
static void *cli_worker_run(void *arg)
{
    struct cli_worker *w = arg;
    struct cli_pool *p = w->pool;
    if (w->eng == NULL && !w->failed &&
        fa_engine_new_models(p->model_dir, p->models, &w->eng, NULL) != FA_OK)
        w->failed = 1;
    if (w->failed)
        return NULL;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        size_t i = p->next++;
        pthread_mutex_unlock(&p->mu);
        if (i >= p->n)
            break;
        cli_embed_file(w->eng, p->models, p->paths[i], &p->res[i]);
    }
    return NULL;
}

static int cli_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > CLI_MAX_THREADS ? CLI_MAX_THREADS : (int)n;
}

/* Load worker 0's engine in the caller's thread so that a wrong model
 * folder is reported once and at once. */
static enum fa_rc cli_pool_init(struct cli_pool *p, const char *model_dir, unsigned models,
                                struct fa_err *err)
{
    memset(p, 0, sizeof *p);
    p->model_dir = model_dir;
    p->models = models;
    p->n_workers = cli_cpu_count();
    for (int t = 0; t < p->n_workers; t++)
        p->workers[t].pool = p;
    if (pthread_mutex_init(&p->mu, NULL) != 0)
        return fa_err_set(err, FA_EINTERNAL, "cannot create a mutex");
    enum fa_rc rc = fa_engine_new_models(model_dir, models, &p->workers[0].eng, err);
    if (rc != FA_OK)
        pthread_mutex_destroy(&p->mu);
    return rc;
}

static void cli_pool_cleanup(struct cli_pool *p)
{
    for (int t = 0; t < p->n_workers; t++)
        fa_engine_free(p->workers[t].eng);
    pthread_mutex_destroy(&p->mu);
}

/* Embed paths[0..n) into res[0..n). The caller's thread is worker 0, so the
 * run completes even if no extra thread can be started. */
static void cli_pool_run(struct cli_pool *p, const char *const *paths, size_t n,
                         struct cli_result *res)
{
    pthread_t tid[CLI_MAX_THREADS];
    int started[CLI_MAX_THREADS] = {0};
    p->paths = paths;
    p->res = res;
    p->n = n;
    p->next = 0;
    for (int t = 1; t < p->n_workers && (size_t)t < n; t++)
        started[t] = pthread_create(&tid[t], NULL, cli_worker_run, &p->workers[t]) == 0;
    cli_worker_run(&p->workers[0]);
    for (int t = 1; t < p->n_workers; t++)
        if (started[t])
            pthread_join(tid[t], NULL);
}

/* The fused score of a and b with fmt, or NA when they share no model. */
static void cli_print_fused(const struct cli_result *a, const struct cli_result *b,
                            const struct cli_scoring *sc, const char *fmt)
{
    const float *va[FA_N_MODELS], *vb[FA_N_MODELS];
    for (int i = 0; i < FA_N_MODELS; i++) {
        int has = (sc->models & FA_MODEL_BIT(i)) != 0;
        va[i] = has ? a->emb + cli_offset((enum fa_model)i) : NULL;
        vb[i] = has ? b->emb + cli_offset((enum fa_model)i) : NULL;
    }
    float s = fa_face_fuse(&sc->fusion, va, vb);
    if (isnan(s))
        fputs("NA", stdout);
    else
        printf(fmt, s);
}

/* The cosine of a and b for every model in the mask, in model order, each
 * with fmt and tab-separated, without a line end; or their fused score. */
static void cli_print_cosines(const struct cli_result *a, const struct cli_result *b,
                              const struct cli_scoring *sc, const char *fmt)
{
    unsigned models = sc->models;
    if (sc->fused) {
        cli_print_fused(a, b, sc, fmt);
        return;
    }
    const char *sep = "";
    for (int i = 0; i < FA_N_MODELS; i++) {
        enum fa_model m = (enum fa_model)i;
        if (!(models & FA_MODEL_BIT(m)))
            continue;
        int off = cli_offset(m), dim = fa_model_info(m)->dim;
        fputs(sep, stdout);
        printf(fmt, fa_cosine(a->emb + off, b->emb + off, dim));
        sep = "\t";
    }
}

/* ---------------------------------------------------------------- compare */

/* 0 when the face was embedded; else the exit status, message printed. */
static int cli_compare_one(struct fa_engine *eng, unsigned models, const char *path,
                           struct cli_result *res)
{
    cli_embed_file(eng, models, path, res);
    if (res->status == CLI_NOFACE) {
        fprintf(stderr, "faceauth compare: no face found in %s\n", path);
        return 2;
    }
    if (res->status == CLI_ERROR) {
        fprintf(stderr, "faceauth compare: %s: %s\n", path, res->reason);
        return 1;
    }
    return 0;
}

int fa_cli_compare(int argc, char **argv, const struct fa_config *cfg, const char *model)
{
    struct fa_engine *eng = NULL;
    struct fa_err err = {{0}};
    struct cli_result *res = NULL;
    struct cli_scoring sc;
    int status = 1;
    if (argc != 3 || !cli_scoring("compare", cfg, model, &sc)) {
        fprintf(stderr, "usage: faceauth compare A.jpg B.jpg [--model fused|NAME|all]\n");
        return 1;
    }
    unsigned models = sc.models;
    res = calloc(2, sizeof *res);
    if (res == NULL || fa_engine_new_models(cfg->model_dir, models, &eng, &err) != FA_OK) {
        fprintf(stderr, "faceauth compare: %s\n", res == NULL ? "out of memory" : err.msg);
        goto out;
    }
    status = cli_compare_one(eng, models, argv[1], &res[0]);
    if (status == 0)
        status = cli_compare_one(eng, models, argv[2], &res[1]);
    if (status == 0) {
        cli_print_cosines(&res[0], &res[1], &sc, "%.4f");
        putchar('\n');
    }
out:
    fa_engine_free(eng);
    free(res);
    return status;
}

/* ------------------------------------------------------------------ embed */

/* Tabs and newlines in a reason would break the line format. */
static void cli_flatten(char *s)
{
    for (; *s != '\0'; s++)
        if (*s == '\t' || *s == '\n' || *s == '\r')
            *s = ' ';
}

static void cli_print_embedding(const char *path, struct cli_result *r, unsigned models)
{
    if (r->status == CLI_NOFACE) {
        printf("%s\tnoface\n", path);
        return;
    }
    if (r->status == CLI_ERROR) {
        cli_flatten(r->reason);
        printf("%s\terror:%s\n", path, r->reason);
        return;
    }
    printf("%s\tok", path);
    for (int i = 0; i < FA_N_MODELS; i++) {
        enum fa_model m = (enum fa_model)i;
        if (!(models & FA_MODEL_BIT(m)))
            continue;
        const float *v = r->emb + cli_offset(m);
        for (int d = 0; d < fa_model_info(m)->dim; d++)
            printf(d == 0 ? "\t%.6g" : ",%.6g", v[d]);
    }
    putchar('\n');
}

/* Read up to max paths from stdin into paths[] (malloc'ed, caller frees),
 * skipping empty lines; *n is how many. Returns 0 at end of input. */
static int cli_read_paths(char **paths, size_t max, size_t *n)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    *n = 0;
    while (*n < max) {
        len = getline(&line, &cap, stdin);
        if (len < 0)
            break;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0)
            continue;
        paths[(*n)++] = line; /* the array takes ownership of the line */
        line = NULL;
        cap = 0;
    }
    free(line);
    return *n > 0;
}

/* Embed one batch and print it in order. */
static void cli_embed_batch(struct cli_pool *pool, char **paths, size_t n, struct cli_result *res)
{
    cli_pool_run(pool, (const char *const *)paths, n, res);
    for (size_t i = 0; i < n; i++)
        cli_print_embedding(paths[i], &res[i], pool->models);
    fflush(stdout);
}

int fa_cli_embed(int argc, char **argv, const char *model_dir, const char *model)
{
    struct cli_pool *pool = NULL;
    struct cli_result *res = NULL;
    char *lines[CLI_BATCH];
    struct fa_err err = {{0}};
    int from_stdin = argc == 2 && strcmp(argv[1], "-") == 0;
    size_t n = 0;
    unsigned models = cli_models("embed", model);
    if (argc < 2 || models == 0) {
        fprintf(stderr, "usage: faceauth embed [--model NAME|all] FILE... | "
                        "faceauth embed [--model NAME|all] - (paths on stdin)\n");
        return 1;
    }
    pool = malloc(sizeof *pool);
    res = calloc(CLI_BATCH, sizeof *res);
    if (pool == NULL || res == NULL || cli_pool_init(pool, model_dir, models, &err) != FA_OK) {
        fprintf(stderr, "faceauth embed: %s\n", err.msg[0] ? err.msg : "out of memory");
        free(res);
        free(pool);
        return 1;
    }
    if (from_stdin) {
        while (cli_read_paths(lines, CLI_BATCH, &n)) {
            cli_embed_batch(pool, lines, n, res);
            for (size_t i = 0; i < n; i++)
                free(lines[i]);
        }
    } else {
        for (int i = 1; i < argc; i += CLI_BATCH) {
            n = (size_t)(argc - i) < CLI_BATCH ? (size_t)(argc - i) : CLI_BATCH;
            cli_embed_batch(pool, argv + i, n, res);
        }
    }
    cli_pool_cleanup(pool);
    free(pool);
    free(res);
    if (ferror(stdout) || fflush(stdout) != 0) {
        fprintf(stderr, "faceauth embed: cannot write the output\n");
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------ score-pairs */

struct cli_pair {
    const char *a, *b; /* as written in the pairs file (point into its buffer) */
    size_t ia, ib;     /* indexes into the distinct resolved paths */
};

static int cli_cmp_str(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* dir/rel, or rel itself when absolute; malloc'ed. */
static char *cli_resolve(const char *dir, const char *rel)
{
    size_t n = strlen(dir) + strlen(rel) + 2;
    char *out = malloc(n);
    if (out == NULL)
        return NULL;
    if (rel[0] == '/')
        snprintf(out, n, "%s", rel);
    else
        snprintf(out, n, "%s/%s", dir, rel);
    return out;
}

/* The folder of the pairs file, which relative image paths start from. */
static char *cli_dirname(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

/* Split the pairs file in place into lines and fields. *pairs is malloc'ed.
 * Returns 0 and prints the line number when a line has fewer than 2 fields. */
static int cli_parse_pairs(char *text, const char *file, struct cli_pair **pairs, size_t *n)
{
    size_t cap = 0, lineno = 0;
    char *save = NULL;
    *pairs = NULL;
    *n = 0;
    for (char *line = text; line != NULL; line = save) {
        save = strchr(line, '\n');
        if (save != NULL)
            *save++ = '\0';
        lineno++;
        line[strcspn(line, "\r")] = '\0';
        if (line[0] == '\0')
            continue;
        char *tab = strchr(line, '\t');
        if (tab == NULL || tab[1] == '\0' || tab[1] == '\t') {
            fprintf(stderr, "faceauth score-pairs: %s:%zu: expected pathA<TAB>pathB\n", file, lineno);
            return 0;
        }
        *tab = '\0';
        tab[1 + strcspn(tab + 1, "\t")] = '\0'; /* drop any third field */
        if (*n == cap) {
            struct cli_pair *grown = realloc(*pairs, (cap = cap ? 2 * cap : 1024) * sizeof **pairs);
            if (grown == NULL) {
                fprintf(stderr, "faceauth score-pairs: out of memory\n");
                return 0;
            }
            *pairs = grown;
        }
        (*pairs)[(*n)++] = (struct cli_pair){line, tab + 1, 0, 0};
    }
    return 1;
}

/* Resolve every path, sort, drop duplicates and point each pair at its two
 * distinct images. *uniq (malloc'ed strings) is returned with *n_uniq. */
static int cli_distinct(struct cli_pair *pairs, size_t n, const char *dir, char ***uniq,
                        size_t *n_uniq)
{
    char **all = calloc(2 * n + 1, sizeof *all);
    size_t k = 0;
    *uniq = all;
    *n_uniq = 0;
    if (all == NULL)
        return 0;
    for (size_t i = 0; i < n; i++) {
        all[2 * i] = cli_resolve(dir, pairs[i].a);
        all[2 * i + 1] = cli_resolve(dir, pairs[i].b);
        if (all[2 * i] == NULL || all[2 * i + 1] == NULL) {
            *n_uniq = 2 * i + 2; /* so that the caller frees what exists */
            return 0;
        }
    }
    qsort(all, 2 * n, sizeof *all, cli_cmp_str);
    for (size_t i = 0; i < 2 * n; i++) {
        if (k > 0 && strcmp(all[k - 1], all[i]) == 0)
            free(all[i]);
        else
            all[k++] = all[i];
    }
    *n_uniq = k;
    for (size_t i = 0; i < n; i++) {
        char *a = cli_resolve(dir, pairs[i].a), *b = cli_resolve(dir, pairs[i].b);
        char **fa = a ? bsearch(&a, all, k, sizeof *all, cli_cmp_str) : NULL;
        char **fb = b ? bsearch(&b, all, k, sizeof *all, cli_cmp_str) : NULL;
        free(a);
        free(b);
        if (fa == NULL || fb == NULL)
            return 0;
        pairs[i].ia = (size_t)(fa - all);
        pairs[i].ib = (size_t)(fb - all);
    }
    return 1;
}

/* Tell stderr once per image why its pairs are NA. */
static void cli_report_failures(char **uniq, size_t n, struct cli_result *res)
{
    for (size_t i = 0; i < n; i++)
        if (res[i].status != CLI_OK)
            fprintf(stderr, "faceauth score-pairs: %s: %s\n", uniq[i], res[i].reason);
}

/* One line per pair: a score per model in the mask (or as many NA), then
 * the two paths as written. */
static void cli_print_scores(const struct cli_pair *pairs, size_t n, const struct cli_result *res,
                             const struct cli_scoring *sc)
{
    for (size_t i = 0; i < n; i++) {
        const struct cli_result *a = &res[pairs[i].ia], *b = &res[pairs[i].ib];
        if (a->status == CLI_OK && b->status == CLI_OK) {
            cli_print_cosines(a, b, sc, "%.6f");
        } else if (sc->fused) {
            fputs("NA", stdout);
        } else {
            const char *sep = "";
            for (int m = 0; m < FA_N_MODELS; m++)
                if (sc->models & FA_MODEL_BIT(m)) {
                    printf("%sNA", sep);
                    sep = "\t";
                }
        }
        printf("\t%s\t%s\n", pairs[i].a, pairs[i].b);
    }
}

/* Embed the distinct images with the pool and print the scores. */
static int cli_score(const char *model_dir, const struct cli_scoring *sc, struct cli_pair *pairs,
                     size_t n, char **uniq, size_t n_uniq)
{
    struct cli_pool *pool = malloc(sizeof *pool);
    struct cli_result *res = calloc(n_uniq + 1, sizeof *res);
    struct fa_err err = {{0}};
    int status = 1;
    if (pool == NULL || res == NULL) {
        fprintf(stderr, "faceauth score-pairs: out of memory\n");
        goto out;
    }
    if (cli_pool_init(pool, model_dir, sc->models, &err) != FA_OK) {
        fprintf(stderr, "faceauth score-pairs: %s\n", err.msg);
        goto out;
    }
    cli_pool_run(pool, (const char *const *)uniq, n_uniq, res);
    cli_pool_cleanup(pool);
    cli_report_failures(uniq, n_uniq, res);
    cli_print_scores(pairs, n, res, sc);
    status = 0;
out:
    free(res);
    free(pool);
    return status;
}

int fa_cli_score_pairs(int argc, char **argv, const struct fa_config *cfg, const char *model)
{
    uint8_t *text = NULL;
    size_t len = 0, n = 0, n_uniq = 0;
    struct cli_pair *pairs = NULL;
    char **uniq = NULL, *dir = NULL;
    struct fa_err err = {{0}};
    int status = 1;
    struct cli_scoring sc;
    if (argc != 2 || !cli_scoring("score-pairs", cfg, model, &sc)) {
        fprintf(stderr, "usage: faceauth score-pairs [--model fused|NAME|all] PAIRS.tsv\n");
        return 1;
    }
    if (fa_read_file(argv[1], CLI_MAX_FILE, &text, &len, &err) != FA_OK) {
        fprintf(stderr, "faceauth score-pairs: %s: %s\n", argv[1], err.msg);
        return 1;
    }
    dir = cli_dirname(argv[1]);
    if (dir == NULL || !cli_parse_pairs((char *)text, argv[1], &pairs, &n))
        goto out;
    if (!cli_distinct(pairs, n, dir, &uniq, &n_uniq)) {
        fprintf(stderr, "faceauth score-pairs: out of memory\n");
        goto out;
    }
    status = cli_score(cfg->model_dir, &sc, pairs, n, uniq, n_uniq);
    if (status == 0 && (ferror(stdout) || fflush(stdout) != 0)) {
        fprintf(stderr, "faceauth score-pairs: cannot write the output\n");
        status = 1;
    }
out:
    for (size_t i = 0; uniq != NULL && i < n_uniq; i++)
        free(uniq[i]);
    free(uniq);
    free(pairs);
    free(dir);
    free(text);
    return status;
}
