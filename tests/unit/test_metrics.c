/*
 * test_metrics.c — the metrics module (src/metrics/) and the loopback rule
 * of the HTTP layer (src/http/peer.c):
 *   - a fresh set renders every family with # HELP and # TYPE first, in
 *     the fixed order, with zeros;
 *   - requests land under their route and exact status, unknown routes
 *     and methods under "other", never a label of their own;
 *   - histogram buckets: a value on a bound counts in that bucket, larger
 *     ones in +Inf; cumulative output; _count equals +Inf; _sum adds up;
 *   - stages, engine waits and busy engines, decisions, named gates only;
 *   - the callbacks source is read at render time;
 *   - label values are escaped; the endpoint table is capped;
 *   - recording with a NULL set does nothing (and does not crash);
 *   - 8 threads x 20,000 recordings give exact counts (lock-free adds);
 *   - who may scrape: token / Bearer / loopback matrix;
 *   - loopback addresses: 127/8, ::1, ::ffff:127.x; not 10.x, ::ffff:10.x.
 */
#include "faceauth/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faceauth/crypto.h"
#include "faceauth/http.h"
#include "tap.h"

#define N_THREADS 8
#define N_PER_THREAD 20000

static char *render(struct fa_metrics *m, const struct fa_metrics_gauges *g)
{
    char *text = NULL;
    size_t n = 0;
    struct fa_err err = {{0}};
    if (fa_metrics_render(m, g, &text, &n, &err) != FA_OK) {
        tap_diag("render failed: %s", err.msg);
        return NULL;
    }
    if (strlen(text) != n)
        tap_diag("render length %zu != strlen %zu", n, strlen(text));
    return text;
}

/* 1 when line (a whole line) is in text. */
static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; p != NULL && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, line, n) == 0 && (p[n] == '\n' || p[n] == '\0'))
            return 1;
    return 0;
}

static struct fa_metrics *fixture(void)
{
    struct fa_metrics *m = NULL;
    if (fa_metrics_new(&m, NULL) != FA_OK)
        return NULL;
    fa_metrics_add_endpoint(m, "GET", "/healthz", NULL);
    fa_metrics_add_endpoint(m, "POST", "/api/v1/basic/authenticate", NULL);
    fa_metrics_name_gate(m, 1, "noface");
    fa_metrics_name_gate(m, 7, "blurry");
    fa_metrics_set_engines(m, 3);
    return m;
}

static void test_fresh(void)
{
    static const char *const order[] = {
        "faceauth_http_requests_total counter", "faceauth_http_request_duration_seconds histogram",
        "faceauth_engine_wait_seconds histogram", "faceauth_engines gauge",
        "faceauth_engines_busy gauge", "faceauth_stage_seconds histogram",
        "faceauth_auth_decisions_total counter", "faceauth_gate_refusals_total counter",
        "faceauth_callbacks_sent_total counter", "faceauth_callbacks_retried_total counter",
        "faceauth_callbacks_dead_total counter", "faceauth_callbacks_queued gauge",
        "faceauth_index_templates gauge", "faceauth_database_bytes gauge",
        "faceauth_build_info gauge", "faceauth_start_time_seconds gauge"};
    struct fa_metrics *m = fixture();
    char *text = m != NULL ? render(m, NULL) : NULL;
    const char *at = text;
    int in_order = text != NULL;
    for (size_t i = 0; in_order && i < sizeof order / sizeof order[0]; i++) {
        char want[128], help[128];
        const char *type_at, *help_at;
        snprintf(want, sizeof want, "# TYPE %s\n", order[i]);
        snprintf(help, sizeof help, "# HELP %.*s ", (int)strcspn(order[i], " "), order[i]);
        type_at = strstr(at, want);
        help_at = strstr(at, help);
        in_order = type_at != NULL && help_at != NULL && help_at < type_at;
        if (!in_order)
            tap_diag("missing or out of order: %s", order[i]);
        else
            at = type_at;
    }
    tap_ok(in_order, "a fresh set has all 16 families, HELP before TYPE, in order");
    tap_ok(text != NULL && !strstr(text, "faceauth_http_requests_total{"),
           "no request samples before any request");
    tap_ok(text != NULL && has_line(text, "faceauth_engines 3") &&
               has_line(text, "faceauth_engines_busy 0") &&
               has_line(text, "faceauth_callbacks_queued 0") &&
               has_line(text, "faceauth_build_info{version=\"" FA_VERSION "\"} 1"),
           "gauges: engines, busy, callbacks queued, build info");
    tap_ok(text != NULL && text[strlen(text) - 1] == '\n', "the text ends with a newline");
    free(text);
    fa_metrics_free(m);
}

static void test_requests(void)
{
    struct fa_metrics *m = fixture();
    char *text;
    fa_metrics_request(m, "GET", "/healthz", 200, 0.003);
    fa_metrics_request(m, "GET", "/healthz", 200, 0.001);
    fa_metrics_request(m, "POST", "/api/v1/basic/authenticate", 400, 31.0);
    fa_metrics_request(m, NULL, NULL, 404, 0.0);
    fa_metrics_request(m, "POST", "/healthz", 405, 0.0);
    fa_metrics_request(m, "GET", "/elsewhere", 404, 0.0);
    fa_metrics_request(m, "GET", "/healthz", 42, 0.0); /* out of range: counted as 500 */
    text = render(m, NULL);
    tap_ok(text != NULL &&
               has_line(text, "faceauth_http_requests_total{method=\"GET\",endpoint=\"/healthz\","
                              "code=\"200\"} 2") &&
               has_line(text, "faceauth_http_requests_total{method=\"GET\",endpoint=\"/healthz\","
                              "code=\"500\"} 1") &&
               has_line(text, "faceauth_http_requests_total{method=\"POST\",endpoint=\"/api/v1/"
                              "basic/authenticate\",code=\"400\"} 1"),
           "requests by route and exact status");
    tap_ok(text != NULL &&
               has_line(text, "faceauth_http_requests_total{method=\"other\",endpoint=\"other\","
                              "code=\"404\"} 2") &&
               has_line(text, "faceauth_http_requests_total{method=\"other\",endpoint=\"other\","
                              "code=\"405\"} 1") &&
               !strstr(text, "/elsewhere"),
           "no route, an unknown path and a known path with another method all count as "
           "other, never under their own label");
#define LAT "faceauth_http_request_duration_seconds"
    tap_ok(text != NULL &&
               has_line(text, LAT "_bucket{method=\"GET\",endpoint=\"/healthz\",le=\"0.001\"} 2") &&
               has_line(text, LAT "_bucket{method=\"GET\",endpoint=\"/healthz\",le=\"0.0025\"} 2") &&
               has_line(text, LAT "_bucket{method=\"GET\",endpoint=\"/healthz\",le=\"0.005\"} 3") &&
               has_line(text, LAT "_bucket{method=\"GET\",endpoint=\"/healthz\",le=\"+Inf\"} 3") &&
               has_line(text, LAT "_count{method=\"GET\",endpoint=\"/healthz\"} 3") &&
               has_line(text, LAT "_sum{method=\"GET\",endpoint=\"/healthz\"} 0.004000"),
           "latency: on a bound counts in it, cumulative buckets, _count = +Inf, _sum");
    tap_ok(text != NULL &&
               has_line(text, LAT "_bucket{method=\"POST\",endpoint=\"/api/v1/basic/authenticate\","
                              "le=\"30\"} 0") &&
               has_line(text, LAT "_bucket{method=\"POST\",endpoint=\"/api/v1/basic/authenticate\","
                              "le=\"+Inf\"} 1"),
           "31 s lands only in +Inf");
#undef LAT
    free(text);
    fa_metrics_free(m);
}

static void fake_callbacks(void *ctx, struct fa_metrics_callbacks *out)
{
    int *calls = ctx;
    (*calls)++;
    out->sent = 5;
    out->retried = 2;
    out->dead = 1;
    out->queued = 7;
}

static void test_pipeline(void)
{
    struct fa_metrics *m = fixture();
    struct fa_metrics_gauges g = {12, 34567};
    int calls = 0;
    char *text;
    fa_metrics_set_callbacks_source(m, fake_callbacks, &calls);
    fa_metrics_stage(m, FA_STAGE_DETECT, 0.02);
    fa_metrics_stage(m, FA_N_STAGES, 1.0); /* ignored */
    fa_metrics_engine_wait(m, 0.5);
    fa_metrics_engine_busy(m, 1);
    fa_metrics_engine_busy(m, 1);
    fa_metrics_engine_busy(m, -1);
    fa_metrics_decision(m, 1, 0);
    fa_metrics_decision(m, 0, 1);
    fa_metrics_decision(m, 0, 1);
    fa_metrics_gate(m, 1, 7);
    fa_metrics_gate(m, 0, 1);
    fa_metrics_gate(m, 0, 3);  /* not named: ignored */
    fa_metrics_gate(m, 0, 99); /* out of range: ignored */
    text = render(m, &g);
    tap_ok(text != NULL &&
               has_line(text, "faceauth_stage_seconds_count{stage=\"detect\"} 1") &&
               has_line(text, "faceauth_stage_seconds_bucket{stage=\"detect\",le=\"0.01\"} 0") &&
               has_line(text, "faceauth_stage_seconds_bucket{stage=\"detect\",le=\"0.025\"} 1") &&
               has_line(text, "faceauth_stage_seconds_count{stage=\"embed\"} 0"),
           "stage histograms per stage");
    tap_ok(text != NULL && has_line(text, "faceauth_engine_wait_seconds_count 1") &&
               has_line(text, "faceauth_engine_wait_seconds_bucket{le=\"0.5\"} 1") &&
               has_line(text, "faceauth_engines_busy 1"),
           "engine wait histogram (no labels) and busy gauge");
    tap_ok(text != NULL &&
               has_line(text, "faceauth_auth_decisions_total{precision=\"low\",result=\"failure\"} 1") &&
               has_line(text, "faceauth_auth_decisions_total{precision=\"high\",result=\"success\"} 2") &&
               has_line(text, "faceauth_auth_decisions_total{precision=\"high\",result=\"failure\"} 0"),
           "decisions by precision and result");
    tap_ok(text != NULL &&
               has_line(text, "faceauth_gate_refusals_total{purpose=\"enroll\",gate=\"blurry\"} 1") &&
               has_line(text, "faceauth_gate_refusals_total{purpose=\"auth\",gate=\"noface\"} 1") &&
               !strstr(text, "gate=\"unknown\"") && !strstr(text, "gate=\"\""),
           "gate refusals by purpose and named gate only");
    tap_ok(text != NULL && calls == 1 && has_line(text, "faceauth_callbacks_sent_total 5") &&
               has_line(text, "faceauth_callbacks_retried_total 2") &&
               has_line(text, "faceauth_callbacks_dead_total 1") &&
               has_line(text, "faceauth_callbacks_queued 7"),
           "the callbacks source is asked once per render");
    tap_ok(text != NULL && has_line(text, "faceauth_index_templates 12") &&
               has_line(text, "faceauth_database_bytes 34567"),
           "gauges from the caller");
    free(text);
    fa_metrics_free(m);
}

static void test_limits(void)
{
    struct fa_metrics *m = NULL;
    struct fa_err err = {{0}};
    int n_ok = 0;
    char *text;
    TAP_OK(fa_metrics_new(&m, NULL) == FA_OK);
    for (int i = 0; i < FA_METRICS_MAX_ENDPOINTS + 1; i++)
        n_ok += fa_metrics_add_endpoint(m, "GET", i == 0 ? "/a\"b\\c\nd" : "/x", &err) == FA_OK;
    tap_ok(n_ok == FA_METRICS_MAX_ENDPOINTS && strstr(err.msg, "64") != NULL,
           "endpoints are capped at %d: %s", FA_METRICS_MAX_ENDPOINTS, err.msg);
    fa_metrics_request(m, "GET", "/a\"b\\c\nd", 200, 0.1);
    text = render(m, NULL);
    tap_ok(text != NULL && strstr(text, "endpoint=\"/a\\\"b\\\\c\\nd\",code=\"200\"} 1") != NULL,
           "label values are escaped (quote, backslash, newline)");
    free(text);
    fa_metrics_free(m);
    /* A NULL set: every recording call is a no-op. */
    fa_metrics_request(NULL, "GET", "/healthz", 200, 1);
    fa_metrics_stage(NULL, FA_STAGE_FETCH, 1);
    fa_metrics_engine_wait(NULL, 1);
    fa_metrics_engine_busy(NULL, 1);
    fa_metrics_decision(NULL, 0, 1);
    fa_metrics_gate(NULL, 0, 1);
    fa_metrics_free(NULL);
    tap_ok(1, "recording into NULL does nothing");
}

static void *hammer(void *arg)
{
    struct fa_metrics *m = arg;
    for (int i = 0; i < N_PER_THREAD; i++) {
        fa_metrics_request(m, "GET", "/healthz", 200, 0.002);
        fa_metrics_decision(m, 0, 1);
        fa_metrics_stage(m, FA_STAGE_EMBED, 0.0001);
    }
    return NULL;
}

static void test_threads(void)
{
    struct fa_metrics *m = fixture();
    pthread_t tids[N_THREADS];
    char want[160];
    char *text;
    int started = 0;
    for (int i = 0; i < N_THREADS; i++)
        started += pthread_create(&tids[i], NULL, hammer, m) == 0;
    for (int i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    text = render(m, NULL);
    snprintf(want, sizeof want,
             "faceauth_http_requests_total{method=\"GET\",endpoint=\"/healthz\",code=\"200\"} %d",
             N_THREADS * N_PER_THREAD);
    tap_ok(started == N_THREADS && text != NULL && has_line(text, want),
           "%d threads x %d requests: exact count", N_THREADS, N_PER_THREAD);
    snprintf(want, sizeof want,
             "faceauth_http_request_duration_seconds_sum{method=\"GET\",endpoint=\"/healthz\"} "
             "%.6f",
             N_THREADS * N_PER_THREAD * 0.002);
    tap_ok(text != NULL && has_line(text, want), "and an exact latency sum (%s)", want);
    snprintf(want, sizeof want, "faceauth_stage_seconds_count{stage=\"embed\"} %d",
             N_THREADS * N_PER_THREAD);
    tap_ok(text != NULL && has_line(text, want), "and exact stage counts");
    free(text);
    fa_metrics_free(m);
}

static void test_access(void)
{
    struct fa_err err = {{0}};
    TAP_OK(fa_metrics_check_access("", NULL, 1, NULL) == FA_OK);
    TAP_OK(fa_metrics_check_access(NULL, "Bearer x", 1, NULL) == FA_OK);
    tap_ok(fa_metrics_check_access("", NULL, 0, &err) == FA_EFORBIDDEN &&
               strstr(err.msg, "loopback") && strstr(err.msg, "metrics_token"),
           "no token, not loopback: refused naming the fix: %s", err.msg);
    tap_ok(fa_metrics_check_access("s3cret", NULL, 1, &err) == FA_EAUTH &&
               strstr(err.msg, "Bearer"),
           "token set: loopback without it is refused too: %s", err.msg);
    TAP_OK(fa_metrics_check_access("s3cret", "s3cret", 0, NULL) == FA_EAUTH);
    TAP_OK(fa_metrics_check_access("s3cret", "Bearer s3cre", 0, NULL) == FA_EAUTH);
    TAP_OK(fa_metrics_check_access("s3cret", "Bearer s3cret2", 0, NULL) == FA_EAUTH);
    TAP_OK(fa_metrics_check_access("s3cret", "bearer s3cret", 0, NULL) == FA_EAUTH);
    TAP_OK(fa_metrics_check_access("s3cret", "Bearer s3cret", 0, NULL) == FA_OK);
    TAP_OK(fa_metrics_check_access("s3cret", "Bearer s3cret", 1, NULL) == FA_OK);
}

static int v4_loopback(const char *text)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    inet_pton(AF_INET, text, &sa.sin_addr);
    return fa_http_addr_is_loopback((const struct sockaddr *)&sa);
}

static int v6_loopback(const char *text)
{
    struct sockaddr_in6 sa;
    memset(&sa, 0, sizeof sa);
    sa.sin6_family = AF_INET6;
    inet_pton(AF_INET6, text, &sa.sin6_addr);
    return fa_http_addr_is_loopback((const struct sockaddr *)&sa);
}

static void test_loopback(void)
{
    struct sockaddr sa;
    TAP_OK(v4_loopback("127.0.0.1") && v4_loopback("127.255.3.4"));
    TAP_OK(!v4_loopback("10.0.0.1") && !v4_loopback("192.0.2.77") && !v4_loopback("0.0.0.0") &&
           !v4_loopback("128.0.0.1"));
    TAP_OK(v6_loopback("::1") && v6_loopback("::ffff:127.0.0.1"));
    TAP_OK(!v6_loopback("::") && !v6_loopback("::2") && !v6_loopback("::ffff:10.0.0.1") &&
           !v6_loopback("fe80::1") && !v6_loopback("::127.0.0.1"));
    memset(&sa, 0, sizeof sa);
    sa.sa_family = AF_UNIX;
    TAP_OK(!fa_http_addr_is_loopback(&sa) && !fa_http_addr_is_loopback(NULL));
}

int main(void)
{
    if (fa_crypto_init() != FA_OK)
        return 1;
    test_fresh();
    test_requests();
    test_pipeline();
    test_limits();
    test_threads();
    test_access();
    test_loopback();
    return tap_done();
}
