/*
 * test_http.c — the HTTP layer (src/http/) as a client sees it.
 *
 * A real server (fa_http_start on 127.0.0.1, port 0) runs a route table of
 * this file's own handlers, and libcurl's easy interface talks to it over
 * TCP: routing (exact, prefix, 404, 405), the body cap with and without
 * Content-Length, the reply helpers and their JSON shapes, the request
 * accessors, concurrent clients, slow requests that must not wait for each
 * other, a full queue (503) and a shutdown with requests in flight.
 *
 * Bodies carry a position-dependent pattern and the echo handler returns
 * their FNV-1a hash, so a byte lost, repeated or reordered fails a check.
 */
#include "faceauth/http.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tap.h"
#include "testutil.h"

#define CAP (64 * 1024) /* the server's body cap in these tests */
#define N_THREADS 4
#define PER_THREAD 5
#define SLOW_MS 300

static int g_port;

/* ---- the server's handlers ---------------------------------------------- */

static uint32_t fnv1a(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}

static void add_str_or_null(cJSON *obj, const char *name, const char *value)
{
    if (value != NULL)
        cJSON_AddStringToObject(obj, name, value);
    else
        cJSON_AddNullToObject(obj, name);
}

/* Everything the request accessors see, as JSON. */
static void h_echo(void *app, struct fa_http_req *req, struct fa_http_reply *reply)
{
    size_t n = 0;
    const uint8_t *body = fa_http_req_body(req, &n);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "method", fa_http_req_method(req));
    cJSON_AddStringToObject(o, "path", fa_http_req_path(req));
    cJSON_AddNumberToObject(o, "n", (double)n);
    cJSON_AddNumberToObject(o, "hash", (double)fnv1a(body, n));
    add_str_or_null(o, "header", fa_http_req_header(req, "X-Test"));
    add_str_or_null(o, "q", fa_http_req_query(req, "q"));
    add_str_or_null(o, "x", fa_http_req_query(req, "x"));
    cJSON_AddBoolToObject(o, "app", app == &g_port);
    {
        char addr[64];
        fa_http_req_client_addr(req, addr, sizeof addr);
        cJSON_AddStringToObject(o, "client", addr);
    }
    fa_http_reply_json(reply, 200, o);
}

/* fa_http_reply_error with the code given as ?rc=N. */
static void h_err(void *app, struct fa_http_req *req, struct fa_http_reply *reply)
{
    const char *rc = fa_http_req_query(req, "rc");
    fa_http_reply_error(reply, (enum fa_rc)(rc != NULL ? strtol(rc, NULL, 10) : 0),
                        "detail: SELECT secret FROM customers");
}

static void h_fail(void *app, struct fa_http_req *req, struct fa_http_reply *reply)
{
    cJSON *fields = NULL;
    if (fa_http_req_query(req, "bare") == NULL) {
        fields = cJSON_CreateObject();
        cJSON_AddStringToObject(fields, "userName", "bob");
        cJSON_AddNumberToObject(fields, "score", 0.25);
        cJSON_AddStringToObject(fields, "status", "to be replaced");
        cJSON_AddStringToObject(fields, "message", "to be replaced");
    }
    /* A first reply is replaced, not leaked (ASan would tell). */
    fa_http_reply_json(reply, 200, cJSON_CreateObject());
    fa_http_reply_failure(reply, fields, "no match");
}

/* A refused operation that must wait: 429, error.status "429", Retry-After. */
static void h_limited(void *app, struct fa_http_req *req, struct fa_http_reply *reply)
{
    cJSON *fields = cJSON_CreateObject();
    cJSON_AddStringToObject(fields, "userName", "bob");
    reply->retry_after_s = 7;
    fa_http_reply_failure_rc(reply, FA_ELIMIT, fields, "too many failed attempts");
}

static const uint8_t png_bytes[] = {0x89, 'P', 'N', 'G', 0x00, 0x0A, 0xFF};

static void h_bytes(void *app, struct fa_http_req *req, struct fa_http_reply *reply)
{
    uint8_t *b = malloc(sizeof png_bytes);
    if (b == NULL)
        return;
    memcpy(b, png_bytes, sizeof png_bytes);
    fa_http_reply_bytes(reply, 200, "image/png", b, sizeof png_bytes);
    reply->no_store = 1;
}

static void h_nothing(void *app, struct fa_http_req *req, struct fa_http_reply *reply) {}

static void h_slow(void *app, struct fa_http_req *req, struct fa_http_reply *reply)
{
    struct timespec ts = {0, SLOW_MS * 1000000L};
    cJSON *o = cJSON_CreateObject();
    nanosleep(&ts, NULL);
    cJSON_AddStringToObject(o, "slept", "yes");
    fa_http_reply_json(reply, 200, o);
}

static const struct fa_route routes[] = {
    {"GET", "/echo", h_echo},       {"POST", "/echo", h_echo}, {"GET", "/only-get", h_echo},
    {"GET", "/err", h_err},         {"GET", "/fail", h_fail},  {"GET", "/bytes", h_bytes},
    {"GET", "/nothing", h_nothing}, {"GET", "/slow", h_slow},  {"GET", "/files/", h_echo},
    {"GET", "/limited", h_limited},
    {"GET", "/secret/*", h_echo},
};

static struct fa_http_server *start_server_n(int threads, struct fa_err *err)
{
    struct fa_http_opts o = {0};
    struct fa_http_server *srv = NULL;
    o.listen = "127.0.0.1";
    o.port = 0;
    o.threads = threads;
    o.max_body_bytes = CAP;
    o.connection_timeout_s = 5;
    o.routes = routes;
    o.n_routes = sizeof routes / sizeof routes[0];
    o.app = &g_port;
    if (fa_http_start(&o, &srv, err) != FA_OK)
        return NULL;
    return srv;
}

static struct fa_http_server *start_server(struct fa_err *err) { return start_server_n(4, err); }

/* ---- the client ---------------------------------------------------------- */

struct feed {
    size_t off, total;
};

static uint8_t pattern_at(size_t i) { return (uint8_t)('a' + (i * 7 + i / 26) % 26); }

static uint8_t *pattern(size_t n)
{
    uint8_t *p = malloc(n ? n : 1);
    for (size_t i = 0; p != NULL && i < n; i++)
        p[i] = pattern_at(i);
    return p;
}

/* The chunked upload: the same pattern, in pieces of whatever curl asks. */
static size_t on_read(char *buf, size_t size, size_t nitems, void *ud)
{
    struct feed *f = ud;
    size_t k = size * nitems;
    if (k > f->total - f->off)
        k = f->total - f->off;
    for (size_t i = 0; i < k; i++)
        buf[i] = (char)pattern_at(f->off + i);
    f->off += k;
    return k;
}

struct call {
    const char *method; /* NULL: GET, or POST when there is a body */
    const char *path;   /* with the query */
    const void *body;   /* sent with Content-Length */
    size_t n_body;
    size_t chunked;     /* > 0: send this many pattern bytes chunked instead */
    const char *header; /* one extra request header, or NULL */
};

/* Perform one request on a fresh connection; r is filled even on failure. */
static void http_do(int port, const struct call *c, struct tu_resp *r)
{
    CURL *h = tu_curl_new(port, c->path, r);
    struct curl_slist *hdrs = NULL;
    struct feed feed = {0, c->chunked};
    if (h == NULL)
        return;
    if (c->header != NULL)
        hdrs = curl_slist_append(hdrs, c->header);
    if (c->chunked > 0) {
        hdrs = curl_slist_append(hdrs, "Transfer-Encoding: chunked");
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(h, CURLOPT_READDATA, &feed);
    } else if (c->body != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, c->body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->n_body);
    }
    if (c->method != NULL)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, c->method);
    tu_curl_perform(h, hdrs, r);
}

static void get(const char *path, struct tu_resp *r)
{
    struct call c = {0};
    c.path = path;
    http_do(g_port, &c, r);
}

/* ---- JSON helpers -------------------------------------------------------- */

static double jnum(const cJSON *o, const char *name)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(it) ? it->valuedouble : -1;
}

static int jnull(const cJSON *o, const char *name)
{
    return cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, name));
}

static int streq(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/* The error object of {"error": {...}}, or NULL when the shape is wrong. */
static const cJSON *error_of(const struct tu_resp *r)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(r->json, "error");
    return cJSON_IsObject(e) ? e : NULL;
}

/* {"error": {"message": <non-empty>, "status": status}} and nothing else. */
static int is_plain_error(const struct tu_resp *r, const char *status)
{
    const cJSON *e = error_of(r);
    const char *msg = tu_jstr(e, "message");
    return e != NULL && cJSON_GetArraySize(r->json) == 1 && cJSON_GetArraySize(e) == 2 &&
           msg != NULL && msg[0] != '\0' && streq(tu_jstr(e, "status"), status);
}

static int is_json(const struct tu_resp *r) { return strncmp(r->ctype, "application/json", 16) == 0; }

/* ---- tests --------------------------------------------------------------- */

static void test_routing(void)
{
    struct tu_resp r;
    struct call c = {0};

    get("/echo", &r);
    tap_ok(r.cc == CURLE_OK && r.status == 200, "GET /echo: 200 (curl %d, %ld)", r.cc, r.status);
    tap_ok(is_json(&r), "exact path: Content-Type application/json (%s)", r.ctype);
    TAP_OK(streq(r.nosniff, "nosniff"));
    TAP_OK(streq(tu_jstr(r.json, "method"), "GET") && streq(tu_jstr(r.json, "path"), "/echo"));
    tap_ok(cJSON_IsTrue(cJSON_GetObjectItem(r.json, "app")), "the handler gets opts.app");
    TAP_OK(jnum(r.json, "n") == 0);
    tu_resp_free(&r);

    get("/no/such/thing", &r);
    tap_ok(r.status == 404 && is_json(&r), "unknown path: 404 JSON (%ld)", r.status);
    tap_ok(is_plain_error(&r, "404"), "404 body is {error:{message,status:\"404\"}}: %s",
           r.body ? r.body : "(none)");
    tu_resp_free(&r);

    c.method = "POST";
    c.path = "/only-get";
    c.body = "{}";
    c.n_body = 2;
    http_do(g_port, &c, &r);
    tap_ok(r.status == 405 && is_plain_error(&r, "405"), "known path, other method: 405 (%ld) %s",
           r.status, r.body ? r.body : "(none)");
    tu_resp_free(&r);
    c.method = "DELETE";
    c.path = "/echo";
    c.body = NULL;
    c.n_body = 0;
    http_do(g_port, &c, &r);
    tap_ok(r.status == 405 && is_plain_error(&r, "405"), "DELETE on a GET/POST path: 405 (%ld)",
           r.status);
    tu_resp_free(&r);

    c.method = NULL;
    c.path = "/echo";
    c.body = "hello";
    c.n_body = 5;
    http_do(g_port, &c, &r);
    tap_ok(r.status == 200 && streq(tu_jstr(r.json, "method"), "POST") && jnum(r.json, "n") == 5,
           "same path, second method routed to its own entry");
    tu_resp_free(&r);

    get("/echo/", &r);
    tap_ok(r.status == 404, "an exact route does not match a longer path (%ld)", r.status);
    tu_resp_free(&r);
}

static void test_prefix(void)
{
    struct tu_resp r;

    get("/files/abc", &r);
    tap_ok(r.status == 200 && streq(tu_jstr(r.json, "path"), "/files/abc"),
           "prefix route matches /files/abc (%ld)", r.status);
    tu_resp_free(&r);
    get("/files/a/b.png", &r);
    tap_ok(r.status == 200 && streq(tu_jstr(r.json, "path"), "/files/a/b.png"),
           "prefix route matches deeper paths (%ld)", r.status);
    tu_resp_free(&r);
    get("/files/", &r);
    tap_ok(r.status == 404 && is_plain_error(&r, "404"), "prefix alone /files/ is 404 (%ld)",
           r.status);
    tu_resp_free(&r);
    get("/files", &r);
    tap_ok(r.status == 404, "/files without the slash is 404 (%ld)", r.status);
    tu_resp_free(&r);
    get("/filesabc", &r);
    tap_ok(r.status == 404, "/filesabc is 404 (%ld)", r.status);
    tu_resp_free(&r);
}

/* A secret prefix route ("/secret/" and '*') routes like "/secret/"; the
 * handler sees the whole path (the access log hides the rest: e2e). */
static void test_secret_prefix(void)
{
    struct tu_resp r;

    get("/secret/tok-123", &r);
    tap_ok(r.status == 200 && streq(tu_jstr(r.json, "path"), "/secret/tok-123"),
           "secret prefix route matches /secret/tok-123 with the whole path (%ld)", r.status);
    tu_resp_free(&r);
    get("/secret/", &r);
    tap_ok(r.status == 404, "secret prefix alone is 404 (%ld)", r.status);
    tu_resp_free(&r);
    get("/secret/*", &r);
    tap_ok(r.status == 200, "a literal '*' after the prefix is just a path (%ld)", r.status);
    tu_resp_free(&r);
}

static void test_accessors(void)
{
    struct tu_resp r;
    struct call c = {0};

    c.path = "/echo?q=a%20b&x=1&q=second";
    c.header = "x-test: Hello There";
    http_do(g_port, &c, &r);
    TAP_OK(r.status == 200);
    tap_ok(streq(tu_jstr(r.json, "q"), "a b"), "fa_http_req_query decodes %%20: %s",
           r.body ? r.body : "");
    TAP_OK(streq(tu_jstr(r.json, "x"), "1"));
    tap_ok(streq(tu_jstr(r.json, "path"), "/echo"), "the path has no query string");
    tap_ok(streq(tu_jstr(r.json, "header"), "Hello There"),
           "fa_http_req_header is case-insensitive on the name");
    tu_resp_free(&r);

    get("/echo", &r);
    tap_ok(jnull(r.json, "q") && jnull(r.json, "header"),
           "absent query argument and header are NULL");
    tu_resp_free(&r);
}

/* One POST of n pattern bytes, with Content-Length or chunked; expect 0
 * removes curl's "Expect: 100-continue" (a client that sends at once). */
static void post_pattern_ex(size_t n, int chunked, int expect, struct tu_resp *r)
{
    struct call c = {0};
    uint8_t *body = NULL;
    c.path = "/echo";
    c.header = expect ? NULL : "Expect:";
    if (chunked) {
        c.chunked = n;
    } else {
        body = pattern(n);
        c.body = body;
        c.n_body = n;
    }
    http_do(g_port, &c, r);
    free(body);
}

static void post_pattern(size_t n, int chunked, struct tu_resp *r)
{
    post_pattern_ex(n, chunked, 1, r);
}

static int echoed(const struct tu_resp *r, size_t n)
{
    uint8_t *p = pattern(n);
    int ok = r->status == 200 && jnum(r->json, "n") == (double)n &&
             jnum(r->json, "hash") == (double)fnv1a(p, n);
    free(p);
    return ok;
}

static void test_body_cap(void)
{
    struct tu_resp r;

    post_pattern(CAP, 0, &r);
    tap_ok(echoed(&r, CAP), "body exactly at the cap (Content-Length) arrives whole (%ld)",
           r.status);
    tu_resp_free(&r);
    post_pattern(CAP, 1, &r);
    tap_ok(echoed(&r, CAP), "body exactly at the cap (chunked) arrives whole (%ld)", r.status);
    tu_resp_free(&r);
    post_pattern(3 * 4096 + 17, 1, &r);
    tap_ok(echoed(&r, 3 * 4096 + 17), "an odd-sized chunked body arrives whole (%ld)", r.status);
    tu_resp_free(&r);

    post_pattern(CAP + 1, 0, &r);
    tap_ok(r.status == 413 && is_plain_error(&r, "413"),
           "cap + 1 with Content-Length: 413 (curl %d, %ld) %s", r.cc, r.status,
           r.body ? r.body : "");
    tu_resp_free(&r);
    post_pattern(4 * CAP, 0, &r);
    tap_ok(r.status == 413, "4 x cap with Content-Length: 413 (curl %d, %ld)", r.cc, r.status);
    tu_resp_free(&r);
    post_pattern(CAP + 1, 1, &r);
    tap_ok(r.status == 413 && is_plain_error(&r, "413"),
           "cap + 1 chunked (no Content-Length): 413 (curl %d, %ld)", r.cc, r.status);
    tu_resp_free(&r);
    post_pattern(16 * CAP, 1, &r);
    tap_ok(r.status == 413 && is_plain_error(&r, "413"),
           "16 x cap chunked: drained and answered 413 (curl %d, %ld)", r.cc, r.status);
    tu_resp_free(&r);

    /* Without Expect the client sends at once: a body a little over the
     * cap is read and dropped so the 413 arrives cleanly. */
    post_pattern_ex(CAP + 1, 0, 0, &r);
    tap_ok(r.cc == CURLE_OK && r.status == 413 && is_plain_error(&r, "413"),
           "cap + 1 without Expect: a clean 413 (curl %d, %ld)", r.cc, r.status);
    tu_resp_free(&r);
    post_pattern_ex(4 * CAP, 0, 0, &r);
    tap_ok(r.cc == CURLE_OK && r.status == 413 && is_plain_error(&r, "413"),
           "4 x cap without Expect: drained, a clean 413 (curl %d, %ld)", r.cc, r.status);
    tu_resp_free(&r);
    post_pattern_ex(CAP, 0, 0, &r);
    tap_ok(echoed(&r, CAP), "at the cap without Expect: 200 (%ld)", r.status);
    tu_resp_free(&r);
    post_pattern_ex(8 * CAP, 0, 0, &r);
    tap_ok(r.status == 413 || r.cc != CURLE_OK,
           "8 x cap without Expect: 413 or a closed connection, never 200 (curl %d, %ld)", r.cc,
           r.status);
    tu_resp_free(&r);

    post_pattern(1000, 0, &r);
    tap_ok(echoed(&r, 1000), "the server is fine after the 413s (%ld)", r.status);
    tu_resp_free(&r);
    post_pattern(1000, 1, &r);
    tap_ok(echoed(&r, 1000), "chunked uploads still work after the 413s (%ld)", r.status);
    tu_resp_free(&r);
}

static void test_status_table(void)
{
    static const struct {
        enum fa_rc rc;
        int status;
    } want[] = {
        {FA_OK, 200},       {FA_EINVAL, 400},     {FA_EAUTH, 401},   {FA_ENOTFOUND, 404},
        {FA_EMETHOD, 405},  {FA_ECONFLICT, 409},  {FA_ETOOBIG, 413}, {FA_EFETCH, 400},
        {FA_ETIMEOUT, 400}, {FA_EFORBIDDEN, 400}, {FA_EIMAGE, 400},  {FA_ENOFACE, 400},
        {FA_EFAIL, 400},    {FA_EBUSY, 503},      {FA_EDB, 500},     {FA_EVISION, 500},
        {FA_ENOMEM, 500},   {FA_EINTERNAL, 500},  {FA_ENOSPACE, 507}, {FA_EREADONLY, 503},
        {FA_ELIMIT, 429},   {FA_EGATE, 400},      {FA_ESPOOF, 400},  {FA_ENOTSAME, 400},
    };
    size_t n = sizeof want / sizeof want[0];
    int all = 1;
    tap_ok(n == FA_ELIMIT + 1, "the table below covers every fa_rc (%zu)", n);
    for (size_t i = 0; i < n; i++) {
        int got = fa_http_status_for(want[i].rc);
        if (got != want[i].status) {
            all = 0;
            tap_diag("fa_http_status_for(%s) = %d, want %d", fa_rc_name(want[i].rc), got,
                     want[i].status);
        }
    }
    tap_ok(all, "fa_http_status_for maps every fa_rc as documented");

    /* The same table through fa_http_reply_error and the wire. */
    for (size_t i = 1; i < n; i++) {
        char path[32], status[8];
        struct tu_resp r;
        const char *msg;
        int hidden = want[i].status == 500;
        snprintf(path, sizeof path, "/err?rc=%d", (int)want[i].rc);
        snprintf(status, sizeof status, "%d", want[i].status);
        get(path, &r);
        msg = tu_jstr(error_of(&r), "message");
        tap_ok(r.status == want[i].status && is_plain_error(&r, status) &&
                   (hidden ? streq(msg, "internal server error") && !strstr(r.body, "SELECT")
                           : streq(msg, "detail: SELECT secret FROM customers")),
               "reply_error(%s): HTTP %ld, %s", fa_rc_name(want[i].rc), r.status,
               r.body ? r.body : "(none)");
        tu_resp_free(&r);
    }
}

static void test_replies(void)
{
    struct tu_resp r;
    const cJSON *e;
    char path[32];

    snprintf(path, sizeof path, "/err?rc=%d", (int)FA_EDB);
    get(path, &r);
    e = error_of(&r);
    tap_ok(r.status == 500 && streq(tu_jstr(e, "message"), "internal server error") &&
               streq(tu_jstr(e, "status"), "500"),
           "FA_EDB: 500, internal detail hidden");
    tu_resp_free(&r);

    get("/fail", &r);
    e = error_of(&r);
    tap_ok(r.status == 400, "fa_http_reply_failure: HTTP 400 (%ld)", r.status);
    tap_ok(streq(tu_jstr(e, "status"), "422") && streq(tu_jstr(e, "message"), "no match"),
           "failure: error.status \"422\" and the message: %s", r.body ? r.body : "");
    tap_ok(streq(tu_jstr(e, "userName"), "bob") && jnum(e, "score") == 0.25 &&
               cJSON_GetArraySize((cJSON *)e) == 4,
           "failure keeps the given fields, status/message replaced once");
    tu_resp_free(&r);

    get("/limited", &r);
    e = error_of(&r);
    tap_ok(r.status == 429 && streq(tu_jstr(e, "status"), "429") &&
               streq(tu_jstr(e, "userName"), "bob") &&
               streq(tu_jstr(e, "message"), "too many failed attempts"),
           "fa_http_reply_failure_rc(FA_ELIMIT): 429, the fields, status \"429\": %s",
           r.body ? r.body : "");
    tap_ok(streq(r.retry_after, "7"), "retry_after_s: Retry-After: %s", r.retry_after);
    tu_resp_free(&r);
    get("/echo", &r);
    tap_ok(r.retry_after[0] == '\0', "no Retry-After unless asked (%s)", r.retry_after);
    tap_ok(streq(tu_jstr(r.json, "client"), "127.0.0.1"), "fa_http_req_client_addr: %s",
           r.body ? r.body : "");
    tu_resp_free(&r);

    get("/fail?bare=1", &r);
    tap_ok(r.status == 400 && is_plain_error(&r, "422"), "failure without fields: %s",
           r.body ? r.body : "");
    tu_resp_free(&r);

    get("/bytes", &r);
    tap_ok(r.status == 200 && r.n == sizeof png_bytes && memcmp(r.body, png_bytes, r.n) == 0,
           "fa_http_reply_bytes sends the bytes as they are (%zu bytes)", r.n);
    tap_ok(streq(r.ctype, "image/png"), "bytes: the given content type (%s)", r.ctype);
    tap_ok(strstr(r.cache, "no-store") != NULL, "no_store: Cache-Control: %s", r.cache);
    tu_resp_free(&r);
    get("/echo", &r);
    tap_ok(r.cache[0] == '\0', "no Cache-Control unless asked (%s)", r.cache);
    tu_resp_free(&r);

    get("/nothing", &r);
    tap_ok(r.status == 500 && is_plain_error(&r, "500") &&
               streq(tu_jstr(error_of(&r), "message"), "internal server error"),
           "a handler that gives no answer: 500 (%ld)", r.status);
    tu_resp_free(&r);
}

struct worker {
    int id;
    int ok;
    pthread_t tid;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        char hdr[64], want[32];
        struct call c = {0};
        struct tu_resp r;
        uint8_t *body = pattern((size_t)(1000 * (w->id + 1) + i));
        snprintf(want, sizeof want, "t%d-%d", w->id, i);
        snprintf(hdr, sizeof hdr, "X-Test: %s", want);
        c.path = "/echo";
        c.header = hdr;
        c.body = body;
        c.n_body = (size_t)(1000 * (w->id + 1) + i);
        http_do(g_port, &c, &r);
        if (echoed(&r, c.n_body) && streq(tu_jstr(r.json, "header"), want))
            w->ok++;
        tu_resp_free(&r);
        free(body);
    }
    return NULL;
}

static void test_concurrent(void)
{
    struct worker w[N_THREADS];
    int total = 0, started = 1;
    for (int i = 0; i < N_THREADS; i++) {
        w[i].id = i;
        w[i].ok = 0;
        if (pthread_create(&w[i].tid, NULL, worker_main, &w[i]) != 0)
            started = 0;
    }
    for (int i = 0; i < N_THREADS; i++) {
        pthread_join(w[i].tid, NULL);
        total += w[i].ok;
    }
    tap_ok(started && total == N_THREADS * PER_THREAD,
           "%d concurrent requests from %d threads all answered correctly (%d)",
           N_THREADS * PER_THREAD, N_THREADS, total);
}

static void test_start_errors(void)
{
    struct fa_http_opts o = {0};
    struct fa_http_server *srv = NULL;
    struct fa_err err = {{0}};
    o.listen = "localhost"; /* a name, not a numeric address */
    o.threads = 1;
    o.max_body_bytes = CAP;
    o.connection_timeout_s = 5;
    o.routes = routes;
    o.n_routes = 1;
    tap_ok(fa_http_start(&o, &srv, &err) == FA_EINVAL && srv == NULL &&
               strstr(err.msg, "localhost") != NULL,
           "a non-numeric listen address is FA_EINVAL: %s", err.msg);
    o.listen = "127.0.0.1";
    o.port = g_port;
    tap_ok(fa_http_start(&o, &srv, &err) == FA_EINTERNAL && srv == NULL,
           "a port in use is FA_EINTERNAL: %s", err.msg);
    fa_http_stop(NULL, 0); /* NULL is fine */
}

struct slow_client {
    int port;
    struct tu_resp r;
};

static void *slow_main(void *arg)
{
    struct slow_client *s = arg;
    struct call c = {0};
    c.path = "/slow";
    http_do(s->port, &c, &s->r);
    return NULL;
}

static double ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static void test_stop_in_flight(void)
{
    struct fa_err err = {{0}};
    struct fa_http_server *srv = start_server(&err);
    struct slow_client s = {0};
    struct timespec t0, pause = {0, 100 * 1000000L};
    pthread_t tid;
    struct tu_resp after;
    struct call c = {0};
    double took;
    if (!tap_ok(srv != NULL, "second server starts: %s", err.msg))
        return;
    s.port = fa_http_port(srv);
    if (pthread_create(&tid, NULL, slow_main, &s) != 0) {
        fa_http_stop(srv, 0);
        tap_ok(0, "client thread");
        return;
    }
    nanosleep(&pause, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    fa_http_stop(srv, 2000);
    took = ms_since(&t0);
    pthread_join(tid, NULL);
    tap_ok(s.r.cc == CURLE_OK && s.r.status == 200 && streq(tu_jstr(s.r.json, "slept"), "yes"),
           "a request in flight during fa_http_stop is answered (curl %d, %ld)", s.r.cc,
           s.r.status);
    tap_ok(took >= 100 && took < 1500, "fa_http_stop waited for it, not for the grace (%.0f ms)",
           took);
    tu_resp_free(&s.r);

    c.path = "/echo";
    http_do(s.port, &c, &after);
    tap_ok(after.cc != CURLE_OK, "after fa_http_stop nothing listens (curl %d)", after.cc);
    tu_resp_free(&after);
}

/* Start n slow clients at once; 0 when a thread could not start. */
static int start_slow(struct slow_client *s, pthread_t *tids, int n, int port)
{
    for (int i = 0; i < n; i++) {
        memset(&s[i], 0, sizeof s[i]);
        s[i].port = port;
        if (pthread_create(&tids[i], NULL, slow_main, &s[i]) != 0) {
            for (int j = 0; j < i; j++)
                pthread_join(tids[j], NULL);
            return 0;
        }
    }
    return 1;
}

static int slept_ok(const struct slow_client *s)
{
    return s->r.cc == CURLE_OK && s->r.status == 200 && streq(tu_jstr(s->r.json, "slept"), "yes");
}

/*
 * Two workers, two slow requests at once: they must run side by side
 * (~SLOW_MS in all), not one after the other on one thread (2 x SLOW_MS).
 * With MHD's own pool a connection was pinned to one thread and waited
 * behind whatever else that thread was running.
 */
static void test_unpinned(void)
{
    struct fa_err err = {{0}};
    struct fa_http_server *srv = start_server_n(2, &err);
    struct slow_client s[2];
    pthread_t tids[2];
    struct timespec t0;
    double took;
    if (!tap_ok(srv != NULL, "server with 2 workers starts: %s", err.msg))
        return;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (!start_slow(s, tids, 2, fa_http_port(srv))) {
        fa_http_stop(srv, 0);
        tap_ok(0, "client threads");
        return;
    }
    for (int i = 0; i < 2; i++)
        pthread_join(tids[i], NULL);
    took = ms_since(&t0);
    tap_ok(slept_ok(&s[0]) && slept_ok(&s[1]), "two concurrent slow requests answered");
    tap_ok(took >= SLOW_MS && took < SLOW_MS * 3 / 2,
           "they ran side by side on 2 workers (%.0f ms, one takes %d)", took, SLOW_MS);
    for (int i = 0; i < 2; i++)
        tu_resp_free(&s[i].r);
    fa_http_stop(srv, 1000);
}

/*
 * One worker, so at most 1 running + 8 queued (QUEUE_PER_WORKER): of 11
 * slow requests two or three are refused 503 at once (one or more if a slow
 * machine spreads the arrivals past the first answer). Then a stop with no
 * grace answers the queued ones 503 instead of running them one by one.
 */
#define N_FLOOD 11
static void test_queue_full(void)
{
    struct fa_err err = {{0}};
    struct fa_http_server *srv = start_server_n(1, &err);
    struct slow_client s[N_FLOOD];
    pthread_t tids[N_FLOOD];
    struct timespec t0, pause = {0, SLOW_MS * 2 / 3 * 1000000L};
    int busy = 0, bad = 0;
    double took;
    if (!tap_ok(srv != NULL, "server with 1 worker starts: %s", err.msg))
        return;
    if (!start_slow(s, tids, N_FLOOD, fa_http_port(srv))) {
        fa_http_stop(srv, 0);
        tap_ok(0, "client threads");
        return;
    }
    nanosleep(&pause, NULL); /* all have arrived; the first is still running */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    fa_http_stop(srv, 0);
    took = ms_since(&t0);
    for (int i = 0; i < N_FLOOD; i++) {
        const char *msg;
        pthread_join(tids[i], NULL);
        msg = tu_jstr(error_of(&s[i].r), "message");
        /* Besides "busy": 200, 503 "shutting down" for the queued, or a
         * connection closed by the stop; anything else is wrong. */
        if (is_plain_error(&s[i].r, "503") && strstr(msg, "busy") != NULL)
            busy++;
        else if (s[i].r.cc == CURLE_OK && !slept_ok(&s[i]) && !is_plain_error(&s[i].r, "503"))
            bad++;
        tu_resp_free(&s[i].r);
    }
    tap_ok(busy >= 1 && busy <= 3 && bad == 0,
           "a full queue answers 503 at once (%d of %d busy, %d odd answers)", busy, N_FLOOD, bad);
    tap_ok(took < SLOW_MS * 3, "stop without grace does not run the queue (%.0f ms)", took);
}

/* ---- the observer hook and the loopback accessor -------------------------- */

#define OBS_MAX 16

struct observed {
    pthread_mutex_t mu;
    int n;
    const struct fa_route *route[OBS_MAX];
    int status[OBS_MAX];
    double seconds[OBS_MAX];
};

static void observe(void *ctx, const struct fa_route *route, int status, double seconds)
{
    struct observed *o = ctx;
    pthread_mutex_lock(&o->mu);
    if (o->n < OBS_MAX) {
        o->route[o->n] = route;
        o->status[o->n] = status;
        o->seconds[o->n] = seconds;
        o->n++;
    }
    pthread_mutex_unlock(&o->mu);
}

static void h_peer(void *app, struct fa_http_req *req, struct fa_http_reply *reply)
{
    cJSON *out = cJSON_CreateObject();
    cJSON_AddBoolToObject(out, "loopback", fa_http_req_from_loopback(req));
    fa_http_reply_json(reply, 200, out);
}

static const struct fa_route obs_routes[] = {
    {"GET", "/echo", h_echo}, {"GET", "/peer", h_peer}, {"GET", "/files/", h_echo},
    {"GET", "/slow", h_slow}};

/* The i-th observation once it is there (the hook runs after the answer
 * is sent, so it may trail the client by a moment). */
static int observed_at(struct observed *o, int i, const struct fa_route **route, int *status,
                       double *seconds)
{
    for (int waited = 0; waited < 2000; waited += 5) {
        int have;
        pthread_mutex_lock(&o->mu);
        have = o->n > i;
        if (have) {
            *route = o->route[i];
            *status = o->status[i];
            *seconds = o->seconds[i];
        }
        pthread_mutex_unlock(&o->mu);
        if (have)
            return 1;
        usleep(5000);
    }
    return 0;
}

static void test_observer(void)
{
    static const struct {
        const char *method, *path;
        int route, status;
    } want[] = {{"GET", "/echo", 0, 200},    {"GET", "/nowhere", -1, 404},
                {"POST", "/echo", -1, 405},  {"GET", "/files/a.jpg", 2, 200},
                {"GET", "/slow", 3, 200},    {"GET", "/peer", 1, 200}};
    struct observed o = {PTHREAD_MUTEX_INITIALIZER, 0, {NULL}, {0}, {0}};
    struct fa_http_opts opts = {0};
    struct fa_http_server *srv = NULL;
    struct fa_err err = {{0}};
    opts.listen = "127.0.0.1";
    opts.threads = 2;
    opts.max_body_bytes = CAP;
    opts.connection_timeout_s = 5;
    opts.routes = obs_routes;
    opts.n_routes = sizeof obs_routes / sizeof obs_routes[0];
    opts.app = &g_port;
    opts.observe = observe;
    opts.observe_ctx = &o;
    if (!tap_ok(fa_http_start(&opts, &srv, &err) == FA_OK, "observer server starts: %s", err.msg))
        return;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        struct call c = {0};
        struct tu_resp r;
        const struct fa_route *route = &routes[0], *expect;
        int status = 0;
        double seconds = -1;
        c.method = want[i].method;
        c.path = want[i].path;
        http_do(fa_http_port(srv), &c, &r);
        int got = observed_at(&o, (int)i, &route, &status, &seconds);
        expect = want[i].route >= 0 ? &obs_routes[want[i].route] : NULL;
        tap_ok(got && route == expect &&
                   status == want[i].status && status == r.status && seconds >= 0 &&
                   seconds < 30,
               "observer: %s %s -> route %d, status %d (got %s, %d, %.3f s)", want[i].method,
               want[i].path, want[i].route, want[i].status, route ? route->path : "none",
               status, seconds);
        if (want[i].route == 3)
            tap_ok(seconds >= 0.2, "observer: the slow handler's time is counted (%.3f s)",
                   seconds);
        if (want[i].route == 1)
            tap_ok(cJSON_IsTrue(cJSON_GetObjectItem(r.json, "loopback")),
                   "fa_http_req_from_loopback: a 127.0.0.1 client is loopback");
        tu_resp_free(&r);
    }
    fa_http_stop(srv, 1000);
}

int main(void)
{
    struct fa_err err = {{0}};
    struct fa_http_server *srv;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    srv = start_server(&err);
    if (!tap_ok(srv != NULL, "fa_http_start on 127.0.0.1 port 0: %s", err.msg)) {
        curl_global_cleanup();
        return tap_done();
    }
    g_port = fa_http_port(srv);
    tap_ok(g_port > 0 && g_port < 65536, "fa_http_port gives the bound port (%d)", g_port);

    test_routing();
    test_prefix();
    test_secret_prefix();
    test_accessors();
    test_body_cap();
    test_status_table();
    test_replies();
    test_concurrent();
    test_start_errors();
    test_observer();
    fa_http_stop(srv, 1000);

    test_stop_in_flight();
    test_unpinned();
    test_queue_full();
    curl_global_cleanup();
    return tap_done();
}
