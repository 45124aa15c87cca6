/*
 * workers.c — a fixed pool of threads over one bounded FIFO (a ring of job
 * pointers) under one mutex and one condition variable.
 *
 * Bounded so that a flood of requests gets quick 503s instead of an ever
 * longer wait and ever more request bodies held in memory.
 */
#include "workers.h"

#include <pthread.h>
#include <stdlib.h>

struct fa_http_workers {
    pthread_mutex_t mu;
    pthread_cond_t cv;    /* a job was queued, or stopping was set */
    void **ring;
    size_t cap, head, n;  /* n jobs from ring[head], wrapping at cap */
    int stopping;
    int stopped;          /* threads joined */
    fa_http_job_fn run;
    pthread_t *tids;
    int n_threads;        /* started */
};

/* The next job, or NULL when stopping and nothing is left to run. */
static void *next_job(struct fa_http_workers *w)
{
    void *job = NULL;
    pthread_mutex_lock(&w->mu);
    while (w->n == 0 && !w->stopping)
        pthread_cond_wait(&w->cv, &w->mu);
    if (w->n > 0) {
        job = w->ring[w->head];
        w->head = (w->head + 1) % w->cap;
        w->n--;
    }
    pthread_mutex_unlock(&w->mu);
    return job;
}

static void *worker_main(void *arg)
{
    struct fa_http_workers *w = arg;
    void *job;
    while ((job = next_job(w)) != NULL)
        w->run(job);
    return NULL;
}

struct fa_http_workers *fa_http_workers_start(int n, size_t max_queued, fa_http_job_fn run)
{
    struct fa_http_workers *w = calloc(1, sizeof *w);
    if (w == NULL)
        return NULL;
    if (n < 1)
        n = 1;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->cap = max_queued > 0 ? max_queued : 1;
    w->run = run;
    w->ring = calloc(w->cap, sizeof *w->ring);
    w->tids = calloc((size_t)n, sizeof *w->tids);
    for (int i = 0; w->ring != NULL && w->tids != NULL && i < n; i++) {
        if (pthread_create(&w->tids[i], NULL, worker_main, w) != 0)
            break;
        w->n_threads++;
    }
    if (w->n_threads == n)
        return w;
    fa_http_workers_stop(w);
    fa_http_workers_free(w);
    return NULL;
}

int fa_http_workers_submit(struct fa_http_workers *w, void *job, void (*accepted)(void *job))
{
    int ok;
    pthread_mutex_lock(&w->mu);
    ok = !w->stopping && w->n < w->cap;
    if (ok) {
        if (accepted != NULL)
            accepted(job);
        w->ring[(w->head + w->n) % w->cap] = job;
        w->n++;
        pthread_cond_signal(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return ok;
}

void fa_http_workers_stop(struct fa_http_workers *w)
{
    if (w == NULL || w->stopped)
        return;
    pthread_mutex_lock(&w->mu);
    w->stopping = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    for (int i = 0; i < w->n_threads; i++)
        pthread_join(w->tids[i], NULL);
    w->stopped = 1;
}

void fa_http_workers_free(struct fa_http_workers *w)
{
    if (w == NULL)
        return;
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w->ring);
    free(w->tids);
    free(w);
}
