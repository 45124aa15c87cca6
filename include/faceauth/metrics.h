/*
 * metrics.h — the server's counters, gauges and histograms, and GET /metrics
 * in the Prometheus text format (version 0.0.4).
 *
 * Every table is fixed when the struct is made: endpoints are the router's
 * routes (by method and path, plus one "other" row for everything
 * unrouted), status
 * codes 100..599, gates by the face module's gate numbers, stages and
 * precisions from the enums below. No label value ever comes from a client
 * (no user or customer names, no raw paths), so a scrape cannot be made to
 * grow and holds no customer data.
 *
 * Threads: the fa_metrics_set_* / _add_* calls run before any thread uses
 * the struct. Recording (fa_metrics_request, _stage, ...) is lock-free
 * (C11 atomics, relaxed: a scrape may see one request's count before its
 * latency, never a torn value) and may run on any thread at any time; a NULL
 * struct fa_metrics * makes every recording call a no-op, so modules need no
 * check. fa_metrics_render may run on any thread, concurrently with
 * recording.
 */
#ifndef FACEAUTH_METRICS_H
#define FACEAUTH_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "faceauth/common.h"

#define FA_METRICS_MAX_ENDPOINTS 64 /* routes; more is FA_ETOOBIG at set-up */
#define FA_METRICS_MAX_GATES 16     /* gate numbers 0..15 (0 = pass, never counted) */
#define FA_METRICS_MAX_TEXT (4u << 20) /* cap of one rendered scrape */

/* The face pipeline's stages, timed each time they run (decode and detect
 * may run twice for one photo: a reduced decode, then the full one). */
enum fa_metrics_stage {
    FA_STAGE_FETCH = 0, /* downloading an image URL (or decoding a data: URI) */
    FA_STAGE_DECODE,    /* compressed bytes to pixels */
    FA_STAGE_DETECT,    /* face detection and landmarks */
    FA_STAGE_EMBED,     /* every model's embedding of the chosen face */
    FA_N_STAGES
};

/* What the callbacks module reports at scrape time. */
struct fa_metrics_callbacks {
    uint64_t sent;    /* delivered (2xx answer) */
    uint64_t retried; /* attempts that failed and were scheduled again */
    uint64_t dead;    /* given up after the last attempt */
    uint64_t queued;  /* waiting for delivery now */
};

/* Fills *out; called by fa_metrics_render on the scraping thread. */
typedef void (*fa_metrics_callbacks_fn)(void *ctx, struct fa_metrics_callbacks *out);

/* Values the caller samples at scrape time (the API: index, database). */
struct fa_metrics_gauges {
    uint64_t templates;   /* search-index templates, all customers */
    uint64_t db_bytes;    /* faceauth.db plus its -wal file */
};

struct fa_metrics;

/* An empty set of metrics (no endpoints yet); free with fa_metrics_free. */
enum fa_rc fa_metrics_new(struct fa_metrics **out, struct fa_err *err);
void fa_metrics_free(struct fa_metrics *m); /* NULL is fine */

/*
 * Set-up, before any thread records: one row per route (of every route
 * table); method and path are borrowed (static storage). FA_ETOOBIG past
 * FA_METRICS_MAX_ENDPOINTS.
 */
enum fa_rc fa_metrics_add_endpoint(struct fa_metrics *m, const char *method, const char *path,
                                   struct fa_err *err);
/* The label of gate number `gate` (1..FA_METRICS_MAX_GATES-1; borrowed).
 * Only named gates are reported; others are ignored. */
void fa_metrics_name_gate(struct fa_metrics *m, int gate, const char *name);
/* Engines in the face pool (faceauth_engines). */
void fa_metrics_set_engines(struct fa_metrics *m, int n);
/* Where faceauth_callbacks_* come from; without a source they read 0. */
void fa_metrics_set_callbacks_source(struct fa_metrics *m, fa_metrics_callbacks_fn fn,
                                     void *ctx);

/* ---- recording: any thread, lock-free, m may be NULL ---- */

/* Seconds on a monotonic clock, for timing a stage. */
double fa_metrics_clock(void);

/*
 * One answered HTTP request: the method and path of the route that answered
 * as they were added (fa_metrics_add_endpoint; NULL or an unknown pair:
 * "other"), the status sent, the seconds from its first byte to the answer.
 */
void fa_metrics_request(struct fa_metrics *m, const char *method, const char *path, int status,
                        double seconds);

/* One wait for a free face engine (also the waits that timed out). */
void fa_metrics_engine_wait(struct fa_metrics *m, double seconds);
/* An engine was taken (+1) or given back (-1). */
void fa_metrics_engine_busy(struct fa_metrics *m, int delta);
/* One run of a pipeline stage. */
void fa_metrics_stage(struct fa_metrics *m, enum fa_metrics_stage stage, double seconds);
/* One authenticate decision: precision low (1) or high (0), success or failure. */
void fa_metrics_decision(struct fa_metrics *m, int precision_low, int success);
/* A face refused by gate number `gate` while enrolling (1) or authenticating (0). */
void fa_metrics_gate(struct fa_metrics *m, int enroll, int gate);

/* ---- scraping ---- */

/*
 * Every metric in the Prometheus text format: # HELP and # TYPE before each
 * family, families in a fixed order. *text is malloc'ed (free()), *n its
 * length without the terminating NUL. gauges may be NULL (then 0).
 * FA_ENOMEM; FA_ETOOBIG past FA_METRICS_MAX_TEXT.
 */
enum fa_rc fa_metrics_render(struct fa_metrics *m, const struct fa_metrics_gauges *gauges,
                             char **text, size_t *n, struct fa_err *err);

/*
 * Who may scrape. With a token configured, only a request whose
 * Authorization header is "Bearer <token>" (compared in constant time),
 * from any address: FA_EAUTH otherwise. Without one, only clients on a
 * loopback address: FA_EFORBIDDEN for others. Messages say what to do.
 * Pure; any thread.
 */
enum fa_rc fa_metrics_check_access(const char *token, const char *authorization,
                                   int peer_is_loopback, struct fa_err *err);

#endif
