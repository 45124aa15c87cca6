/*
 * metrics_int.h — the layout of struct fa_metrics, shared by the recording
 * side (metrics.c) and the text renderer (render.c).
 *
 * Every cell is an atomic 64-bit counter updated with relaxed ordering:
 * counters only grow, so a reader can never see a value go back, and no
 * cell depends on another (a histogram's _count is the sum of its buckets
 * as read, so _count and the +Inf bucket always agree in one scrape).
 */
#ifndef FACEAUTH_METRICS_INT_H
#define FACEAUTH_METRICS_INT_H

#include <stdatomic.h>
#include <stdint.h>

#include "faceauth/metrics.h"

#define MX_STATUS_MIN 100
#define MX_STATUS_MAX 599
#define MX_N_STATUS (MX_STATUS_MAX - MX_STATUS_MIN + 1)
#define MX_N_BUCKETS 14 /* finite upper bounds; one more cell for +Inf */

/* Upper bounds of every histogram's buckets, in seconds (metrics.c). */
extern const double fa_mx_bounds[MX_N_BUCKETS];

struct mx_hist {
    atomic_uint_least64_t bucket[MX_N_BUCKETS + 1]; /* not cumulative; [N] = above the last */
    atomic_uint_least64_t sum_us;                   /* microseconds */
};

struct mx_endpoint {
    const char *method;
    const char *path;
    atomic_uint_least64_t *by_status; /* MX_N_STATUS cells */
    struct mx_hist latency;
};

struct fa_metrics {
    int n_endpoints;
    struct mx_endpoint ep[FA_METRICS_MAX_ENDPOINTS + 1]; /* [n_endpoints] = "other" */
    struct mx_hist engine_wait;
    atomic_int engines_busy;
    int engines;
    struct mx_hist stage[FA_N_STAGES];
    atomic_uint_least64_t decisions[2][2]; /* [precision_low][success] */
    const char *gate_name[FA_METRICS_MAX_GATES];
    atomic_uint_least64_t gates[2][FA_METRICS_MAX_GATES]; /* [enroll][gate] */
    fa_metrics_callbacks_fn callbacks_fn;
    void *callbacks_ctx;
    int64_t start_time; /* Unix seconds */
};

#endif
