/*
 * render.c — the Prometheus text format (version 0.0.4) of struct
 * fa_metrics, and who may read it.
 *
 * Each family is written whole, # HELP then # TYPE then its samples, in a
 * fixed order, so two scrapes differ only in numbers. Histograms are
 * written cumulatively (each bucket counts everything at or below its
 * bound) from the per-bucket cells, and _count is the +Inf bucket. Label
 * values are escaped although every one is our own static text: a route or
 * gate name with a quote in it would otherwise break the whole scrape.
 */
#include "metrics_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faceauth/crypto.h"

/* The scrape being written, capped at FA_METRICS_MAX_TEXT; `failed` sticks
 * at the first error, so the put_* functions need no checks of their own. */
struct mx_text {
    struct fa_buf buf;
    enum fa_rc failed;
};

static void text_init(struct mx_text *t)
{
    fa_buf_init(&t->buf, FA_METRICS_MAX_TEXT);
    t->failed = FA_OK;
}

static void put(struct mx_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct mx_text *t, const char *fmt, ...)
{
    va_list ap;
    if (t->failed != FA_OK)
        return;
    va_start(ap, fmt);
    t->failed = fa_buf_vprintf(&t->buf, fmt, ap);
    va_end(ap);
}

/* A label value with \, " and newline escaped, as the format asks. */
static void put_label(struct mx_text *t, const char *v)
{
    for (const char *p = v != NULL ? v : ""; *p != '\0'; p++) {
        if (*p == '\\')
            put(t, "\\\\");
        else if (*p == '"')
            put(t, "\\\"");
        else if (*p == '\n')
            put(t, "\\n");
        else
            put(t, "%c", *p);
    }
}

static void family(struct mx_text *t, const char *name, const char *type, const char *help)
{
    put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static uint64_t load(const atomic_uint_least64_t *cell)
{
    return (uint64_t)atomic_load_explicit(cell, memory_order_relaxed);
}

/*
 * One histogram's samples; labels is the text inside the braces before
 * "le" (may be ""), already escaped.
 */
static void put_hist(struct mx_text *t, const char *name, const char *labels,
                     const struct mx_hist *h)
{
    const char *sep = labels[0] != '\0' ? "," : "";
    uint64_t cum = 0;
    for (int i = 0; i <= MX_N_BUCKETS; i++) {
        cum += load(&h->bucket[i]);
        if (i < MX_N_BUCKETS)
            put(t, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, fa_mx_bounds[i],
                (unsigned long long)cum);
        else
            put(t, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
                (unsigned long long)cum);
    }
    put(t, "%s_sum%s%s%s %.6f\n", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "",
        (double)load(&h->sum_us) / 1e6);
    put(t, "%s_count%s%s%s %llu\n", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "",
        (unsigned long long)cum);
}

/* method="...",endpoint="..." of endpoint i (the last one is "other"). */
static void endpoint_labels(const struct fa_metrics *m, int i, char *out, size_t cap)
{
    struct mx_text t;
    const struct mx_endpoint *ep = &m->ep[i];
    int other = i == m->n_endpoints;
    text_init(&t);
    put(&t, "method=\"");
    put_label(&t, other ? "other" : ep->method);
    put(&t, "\",endpoint=\"");
    put_label(&t, other ? "other" : ep->path);
    put(&t, "\"");
    snprintf(out, cap, "%s",
             t.failed == FA_OK && t.buf.data != NULL ? (const char *)t.buf.data : "endpoint=\"?\"");
    fa_buf_cleanup(&t.buf);
}

static void put_requests(struct mx_text *t, const struct fa_metrics *m)
{
    char labels[512];
    family(t, "faceauth_http_requests_total", "counter",
           "HTTP requests answered, by route (\"other\": no route matched) and status code.");
    for (int i = 0; i <= m->n_endpoints; i++) {
        endpoint_labels(m, i, labels, sizeof labels);
        for (int s = 0; s < MX_N_STATUS; s++) {
            uint64_t v = load(&m->ep[i].by_status[s]);
            if (v > 0)
                put(t, "faceauth_http_requests_total{%s,code=\"%d\"} %llu\n", labels,
                    s + MX_STATUS_MIN, (unsigned long long)v);
        }
    }
    family(t, "faceauth_http_request_duration_seconds", "histogram",
           "Time from a request's arrival to its answer, by route.");
    for (int i = 0; i <= m->n_endpoints; i++) {
        endpoint_labels(m, i, labels, sizeof labels);
        put_hist(t, "faceauth_http_request_duration_seconds", labels, &m->ep[i].latency);
    }
}

static void put_engines(struct mx_text *t, const struct fa_metrics *m)
{
    int busy = atomic_load_explicit(&m->engines_busy, memory_order_relaxed);
    family(t, "faceauth_engine_wait_seconds", "histogram",
           "Time a request waited for a free face engine (timeouts included).");
    put_hist(t, "faceauth_engine_wait_seconds", "", &m->engine_wait);
    family(t, "faceauth_engines", "gauge", "Face engines in the pool.");
    put(t, "faceauth_engines %d\n", m->engines);
    family(t, "faceauth_engines_busy", "gauge", "Face engines working on a request now.");
    put(t, "faceauth_engines_busy %d\n", busy > 0 ? busy : 0);
}

static void put_stages(struct mx_text *t, const struct fa_metrics *m)
{
    static const char *const names[FA_N_STAGES] = {"fetch", "decode", "detect", "embed"};
    char labels[64];
    family(t, "faceauth_stage_seconds", "histogram",
           "Time of one run of a face pipeline stage: fetch (image URL), decode, detect "
           "(with landmarks), embed (every model).");
    for (int s = 0; s < FA_N_STAGES; s++) {
        snprintf(labels, sizeof labels, "stage=\"%s\"", names[s]);
        put_hist(t, "faceauth_stage_seconds", labels, &m->stage[s]);
    }
}

static void put_decisions(struct mx_text *t, const struct fa_metrics *m)
{
    static const char *const precision[2] = {"high", "low"};
    static const char *const result[2] = {"failure", "success"};
    family(t, "faceauth_auth_decisions_total", "counter",
           "Authenticate answers, by requested precision and result.");
    for (int p = 0; p < 2; p++)
        for (int r = 0; r < 2; r++)
            put(t, "faceauth_auth_decisions_total{precision=\"%s\",result=\"%s\"} %llu\n",
                precision[p], result[r], (unsigned long long)load(&m->decisions[p][r]));
    family(t, "faceauth_gate_refusals_total", "counter",
           "Faces refused by a quality gate, by purpose (enroll, auth) and gate.");
    for (int e = 1; e >= 0; e--)
        for (int g = 1; g < FA_METRICS_MAX_GATES; g++) {
            if (m->gate_name[g] == NULL)
                continue;
            put(t, "faceauth_gate_refusals_total{purpose=\"%s\",gate=\"", e ? "enroll" : "auth");
            put_label(t, m->gate_name[g]);
            put(t, "\"} %llu\n", (unsigned long long)load(&m->gates[e][g]));
        }
}

static void put_callbacks(struct mx_text *t, const struct fa_metrics *m)
{
    struct fa_metrics_callbacks cb = {0, 0, 0, 0};
    if (m->callbacks_fn != NULL)
        m->callbacks_fn(m->callbacks_ctx, &cb);
    family(t, "faceauth_callbacks_sent_total", "counter", "Callbacks delivered.");
    put(t, "faceauth_callbacks_sent_total %llu\n", (unsigned long long)cb.sent);
    family(t, "faceauth_callbacks_retried_total", "counter",
           "Callback attempts that failed and were scheduled again.");
    put(t, "faceauth_callbacks_retried_total %llu\n", (unsigned long long)cb.retried);
    family(t, "faceauth_callbacks_dead_total", "counter",
           "Callbacks given up after their last attempt.");
    put(t, "faceauth_callbacks_dead_total %llu\n", (unsigned long long)cb.dead);
    family(t, "faceauth_callbacks_queued", "gauge", "Callbacks waiting for delivery.");
    put(t, "faceauth_callbacks_queued %llu\n", (unsigned long long)cb.queued);
}

static void put_state(struct mx_text *t, const struct fa_metrics *m,
                      const struct fa_metrics_gauges *g)
{
    family(t, "faceauth_index_templates", "gauge",
           "Templates in the search index, all customers.");
    put(t, "faceauth_index_templates %llu\n", (unsigned long long)(g ? g->templates : 0));
    family(t, "faceauth_database_bytes", "gauge", "Size of faceauth.db and its WAL file.");
    put(t, "faceauth_database_bytes %llu\n", (unsigned long long)(g ? g->db_bytes : 0));
    family(t, "faceauth_build_info", "gauge", "Always 1; the version of the running binary.");
    put(t, "faceauth_build_info{version=\"");
    put_label(t, FA_VERSION);
    put(t, "\"} 1\n");
    family(t, "faceauth_start_time_seconds", "gauge", "When the server started, Unix seconds.");
    put(t, "faceauth_start_time_seconds %lld\n", (long long)m->start_time);
}

enum fa_rc fa_metrics_render(struct fa_metrics *m, const struct fa_metrics_gauges *gauges,
                             char **text, size_t *n, struct fa_err *err)
{
    struct mx_text t;
    *text = NULL;
    *n = 0;
    text_init(&t);
    put_requests(&t, m);
    put_engines(&t, m);
    put_stages(&t, m);
    put_decisions(&t, m);
    put_callbacks(&t, m);
    put_state(&t, m, gauges);
    if (t.failed != FA_OK) {
        fa_buf_cleanup(&t.buf);
        return fa_err_set(err, t.failed, "metrics text over %u bytes or out of memory",
                          FA_METRICS_MAX_TEXT);
    }
    *text = (char *)fa_buf_take(&t.buf, n); /* the families above are never empty */
    return FA_OK;
}

enum fa_rc fa_metrics_check_access(const char *token, const char *authorization,
                                   int peer_is_loopback, struct fa_err *err)
{
    static const char bearer[] = "Bearer ";
    if (token == NULL || token[0] == '\0') {
        if (peer_is_loopback)
            return FA_OK;
        return fa_err_set(err, FA_EFORBIDDEN,
                          "/metrics is served to loopback clients only; set metrics_token "
                          "to scrape from elsewhere");
    }
    if (authorization == NULL || strncmp(authorization, bearer, sizeof bearer - 1) != 0)
        return fa_err_set(err, FA_EAUTH,
                          "/metrics needs the header 'Authorization: Bearer <metrics_token>'");
    if (!fa_crypto_str_equal(authorization + sizeof bearer - 1, token))
        return fa_err_set(err, FA_EAUTH, "wrong metrics token");
    return FA_OK;
}
