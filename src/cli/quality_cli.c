/*
 * quality_cli.c — `faceauth quality`: the server's face gates on files
 * (see include/faceauth/cli.h), so that benchmarks report how many photos
 * each gate refuses with exactly the code and limits the server uses.
 *
 * DESIGN
 * One fa_face_service built from the config, as `serve` builds it, and one
 * thread per engine taking path indexes under a mutex; each writes only
 * its own result slot, and a batch is printed in input order once every
 * thread has finished it. Each file is inspected twice (authentication,
 * then enrollment): the face choice can depend on the purpose when a large
 * photo is decoded reduced, and running the same function the server runs
 * is the point of the tool.
 */
#include "faceauth/cli.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faceauth/config.h"
#include "faceauth/face.h"

#define QCLI_BATCH 256
#define QCLI_MAX_THREADS 64
#define QCLI_MAX_FILE (64L * 1024 * 1024)

struct qcli_result {
    int error;                  /* 1: the file could not be read or decoded */
    char reason[FA_ERR_MAX];
    enum fa_face_gate gate[2];  /* [0] authentication, [1] enrollment */
    struct fa_face_measures q;  /* of the authentication run */
    float live;
};

struct qcli_pool {
    struct fa_face_service *svc;
    char *const *paths;
    struct qcli_result *res;
    size_t n, next;
    pthread_mutex_t mu;
};

static void qcli_one(struct fa_face_service *svc, const char *path, struct qcli_result *r)
{
    static const enum fa_face_purpose purposes[2] = {FA_FACE_AUTH, FA_FACE_ENROLL};
    struct fa_err err = {{0}};
    struct fa_face_measures q;
    uint8_t *bytes = NULL;
    size_t n = 0;
    memset(r, 0, sizeof *r);
    if (fa_read_file(path, QCLI_MAX_FILE, &bytes, &n, &err) != FA_OK) {
        r->error = 1;
        snprintf(r->reason, sizeof r->reason, "%s", err.msg);
        return;
    }
    for (int i = 0; i < 2 && !r->error; i++) {
        enum fa_rc rc = fa_face_inspect(svc, bytes, n, purposes[i], i == 0 ? &r->q : &q,
                                        i == 0 ? &r->live : NULL, &r->gate[i], &err);
        if (rc != FA_OK) {
            r->error = 1;
            snprintf(r->reason, sizeof r->reason, "%s", err.msg[0] ? err.msg : fa_rc_name(rc));
        }
    }
    free(bytes);
}

static void *qcli_worker(void *arg)
{
    struct qcli_pool *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        size_t i = p->next++;
        pthread_mutex_unlock(&p->mu);
        if (i >= p->n)
            return NULL;
        qcli_one(p->svc, p->paths[i], &p->res[i]);
    }
}

static void qcli_print(const char *path, struct qcli_result *r)
{
    if (r->error) {
        for (char *s = r->reason; *s != '\0'; s++)
            if (*s == '\t' || *s == '\n' || *s == '\r')
                *s = ' ';
        printf("%s\terror:%s\n", path, r->reason);
        return;
    }
    printf("%s\t%s\t%s", path, fa_face_gate_name(r->gate[0]), fa_face_gate_name(r->gate[1]));
    /* no face chosen: nothing measured (a face found only in the turned
     * photo is not measured either) */
    if (r->gate[0] == FA_GATE_NOFACE || r->gate[0] == FA_GATE_SEVERAL ||
        r->gate[0] == FA_GATE_SIDEWAYS || (r->gate[0] == FA_GATE_UPSIDE && r->q.eye_distance == 0))
        printf("\teye=NA\tsharp=NA\tbright=NA\tyaw=NA\tpitch=NA\troll=NA\tlive=NA\n");
    else
        printf("\teye=%.1f\tsharp=%.1f\tbright=%.1f\tyaw=%.1f\tpitch=%.1f\troll=%.1f\tlive=%.4f\n",
               r->q.eye_distance, r->q.sharpness, r->q.brightness, r->q.yaw, r->q.pitch,
               r->q.roll, r->live);
}

/* Inspect one batch with n_threads threads (the caller is one) and print it. */
static void qcli_batch(struct qcli_pool *p, int n_threads, char *const *paths, size_t n)
{
    pthread_t tid[QCLI_MAX_THREADS];
    int started[QCLI_MAX_THREADS] = {0};
    p->paths = paths;
    p->n = n;
    p->next = 0;
    for (int t = 1; t < n_threads; t++)
        started[t] = pthread_create(&tid[t], NULL, qcli_worker, p) == 0;
    qcli_worker(p);
    for (int t = 1; t < n_threads; t++)
        if (started[t])
            pthread_join(tid[t], NULL);
    for (size_t i = 0; i < n; i++)
        qcli_print(paths[i], &p->res[i]);
    fflush(stdout);
}

/* Up to max paths from stdin (malloc'ed lines), skipping empty ones. */
static size_t qcli_read_paths(char **paths, size_t max)
{
    size_t n = 0, cap = 0;
    char *line = NULL;
    ssize_t len;
    while (n < max && (len = getline(&line, &cap, stdin)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0)
            continue;
        paths[n++] = line; /* the array takes the line */
        line = NULL;
        cap = 0;
    }
    free(line);
    return n;
}

int fa_cli_quality(int argc, char **argv, const struct fa_config *cfg)
{
    struct qcli_pool pool;
    struct fa_face_opts opts;
    struct fa_err err = {{0}};
    char *lines[QCLI_BATCH];
    int n_threads;
    size_t n;
    if (argc < 2) {
        fprintf(stderr, "usage: faceauth quality FILE... | faceauth quality - (paths on stdin)\n");
        return 1;
    }
    memset(&pool, 0, sizeof pool);
    fa_face_opts_from_config(cfg, &opts);
    n_threads = opts.engines < 1 ? 1 : opts.engines > QCLI_MAX_THREADS ? QCLI_MAX_THREADS
                                                                        : opts.engines;
    opts.engines = n_threads;
    pool.res = calloc(QCLI_BATCH, sizeof *pool.res);
    if (pool.res == NULL || fa_face_service_new(&opts, &pool.svc, &err) != FA_OK) {
        fprintf(stderr, "faceauth quality: %s\n", pool.res == NULL ? "out of memory" : err.msg);
        free(pool.res);
        return 1;
    }
    pthread_mutex_init(&pool.mu, NULL);
    if (argc == 2 && strcmp(argv[1], "-") == 0) {
        while ((n = qcli_read_paths(lines, QCLI_BATCH)) > 0) {
            qcli_batch(&pool, n_threads, lines, n);
            for (size_t i = 0; i < n; i++)
                free(lines[i]);
        }
    } else {
        for (int i = 1; i < argc; i += QCLI_BATCH) {
            n = (size_t)(argc - i) < QCLI_BATCH ? (size_t)(argc - i) : QCLI_BATCH;
            qcli_batch(&pool, n_threads, argv + i, n);
        }
    }
    pthread_mutex_destroy(&pool.mu);
    fa_face_service_free(pool.svc);
    free(pool.res);
    if (ferror(stdout) || fflush(stdout) != 0) {
        fprintf(stderr, "faceauth quality: cannot write the output\n");
        return 1;
    }
    return 0;
}
