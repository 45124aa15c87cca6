/*
 * metrics.c — set-up and lock-free recording (see metrics.h).
 *
 * Why atomics and not one mutex: every request records two or three cells
 * on the hot path from many worker threads; a relaxed atomic add needs no
 * lock, so a request never waits for another request's recording or for
 * a scrape that is reading the cells. Tables are fixed at set-up, so
 * recording never allocates and never fails.
 */
#include "metrics_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One bucket set for every histogram: from 1 ms (a cached fetch, a small
 * decode) to 30 s (a slow image URL, a long queue wait). */
const double fa_mx_bounds[MX_N_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                           0.25,  0.5,    1,     2.5,  5,     10,   30};

/* The status cells of every endpoint and "other", in one block. */
static atomic_uint_least64_t *status_cells(struct fa_metrics *m)
{
    return m->ep[0].by_status;
}

enum fa_rc fa_metrics_new(struct fa_metrics **out, struct fa_err *err)
{
    struct fa_metrics *m = calloc(1, sizeof *m);
    atomic_uint_least64_t *cells;
    *out = NULL;
    if (m == NULL)
        return fa_err_set(err, FA_ENOMEM, "out of memory for metrics");
    cells = calloc((size_t)(FA_METRICS_MAX_ENDPOINTS + 1) * MX_N_STATUS, sizeof *cells);
    if (cells == NULL) {
        free(m);
        return fa_err_set(err, FA_ENOMEM, "out of memory for metrics");
    }
    /* calloc's zero bytes are valid zero atomics on every platform we build for. */
    for (int i = 0; i <= FA_METRICS_MAX_ENDPOINTS; i++)
        m->ep[i].by_status = cells + (size_t)i * MX_N_STATUS;
    m->start_time = (int64_t)time(NULL);
    *out = m;
    return FA_OK;
}

void fa_metrics_free(struct fa_metrics *m)
{
    if (m == NULL)
        return;
    free(status_cells(m));
    free(m);
}

enum fa_rc fa_metrics_add_endpoint(struct fa_metrics *m, const char *method, const char *path,
                                   struct fa_err *err)
{
    if (m->n_endpoints >= FA_METRICS_MAX_ENDPOINTS)
        return fa_err_set(err, FA_ETOOBIG, "more than %d endpoints for metrics",
                          FA_METRICS_MAX_ENDPOINTS);
    m->ep[m->n_endpoints].method = method;
    m->ep[m->n_endpoints].path = path;
    m->n_endpoints++;
    return FA_OK;
}

void fa_metrics_name_gate(struct fa_metrics *m, int gate, const char *name)
{
    if (gate > 0 && gate < FA_METRICS_MAX_GATES)
        m->gate_name[gate] = name;
}

void fa_metrics_set_engines(struct fa_metrics *m, int n)
{
    m->engines = n;
}

void fa_metrics_set_callbacks_source(struct fa_metrics *m, fa_metrics_callbacks_fn fn, void *ctx)
{
    m->callbacks_fn = fn;
    m->callbacks_ctx = ctx;
}

double fa_metrics_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void count(atomic_uint_least64_t *cell)
{
    atomic_fetch_add_explicit(cell, 1, memory_order_relaxed);
}

static void hist_observe(struct mx_hist *h, double seconds)
{
    int i = 0;
    /* NaN and negative times (a clock step cannot happen on CLOCK_MONOTONIC,
     * but a caller's subtraction might) count as 0. */
    if (!(seconds > 0))
        seconds = 0;
    while (i < MX_N_BUCKETS && seconds > fa_mx_bounds[i])
        i++;
    count(&h->bucket[i]);
    if (seconds > 1e6)
        seconds = 1e6; /* keeps the microsecond sum far from overflow */
    atomic_fetch_add_explicit(&h->sum_us, (uint_least64_t)llround(seconds * 1e6),
                              memory_order_relaxed);
}

/* The row of a route: the same static strings were added, so comparing
 * pointers finds it; strcmp covers a caller with copies. "other" when none. */
static struct mx_endpoint *find_endpoint(struct fa_metrics *m, const char *method,
                                         const char *path)
{
    int i;
    if (method == NULL || path == NULL)
        return &m->ep[m->n_endpoints];
    for (i = 0; i < m->n_endpoints; i++)
        if (m->ep[i].path == path && m->ep[i].method == method)
            return &m->ep[i];
    for (i = 0; i < m->n_endpoints; i++)
        if (strcmp(m->ep[i].path, path) == 0 && strcmp(m->ep[i].method, method) == 0)
            return &m->ep[i];
    return &m->ep[m->n_endpoints];
}

void fa_metrics_request(struct fa_metrics *m, const char *method, const char *path, int status,
                        double seconds)
{
    struct mx_endpoint *ep;
    if (m == NULL)
        return;
    ep = find_endpoint(m, method, path);
    if (status < MX_STATUS_MIN || status > MX_STATUS_MAX)
        status = 500; /* never sent by our server; keep the cell in range */
    count(&ep->by_status[status - MX_STATUS_MIN]);
    hist_observe(&ep->latency, seconds);
}

void fa_metrics_engine_wait(struct fa_metrics *m, double seconds)
{
    if (m != NULL)
        hist_observe(&m->engine_wait, seconds);
}

void fa_metrics_engine_busy(struct fa_metrics *m, int delta)
{
    if (m != NULL)
        atomic_fetch_add_explicit(&m->engines_busy, delta, memory_order_relaxed);
}

void fa_metrics_stage(struct fa_metrics *m, enum fa_metrics_stage stage, double seconds)
{
    if (m != NULL && (unsigned)stage < FA_N_STAGES)
        hist_observe(&m->stage[stage], seconds);
}

void fa_metrics_decision(struct fa_metrics *m, int precision_low, int success)
{
    if (m != NULL)
        count(&m->decisions[precision_low != 0][success != 0]);
}

void fa_metrics_gate(struct fa_metrics *m, int enroll, int gate)
{
    if (m != NULL && gate > 0 && gate < FA_METRICS_MAX_GATES && m->gate_name[gate] != NULL)
        count(&m->gates[enroll != 0][gate]);
}
