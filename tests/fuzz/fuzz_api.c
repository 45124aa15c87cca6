/*
 * fuzz_api.c — every endpoint's handler on fuzzed requests (libFuzzer).
 *
 * An input is a request in a small text form:
 *
 *     POST /api/v1/basic/user/create
 *     {"customerName":"fuzz","userName":"ann"}
 *
 * The first line is the method and the target (path, optionally ?query);
 * everything after the first newline is the body. The route is looked up in
 * the server's own table (fa_api_routes) as src/http/server.c does, and its
 * handler runs against a real struct fa_app: a SQLite file in a temporary
 * folder holding one customer "fuzz", real media storage, the real search
 * index and a real face service (one engine, the models of models/).
 * Authorization always carries a live token of "fuzz", so bodies get past
 * authentication; a request that revokes it (logout) is followed by a new
 * login.
 *
 * DESIGN. What is not the real thing, and why:
 *  - The request object. Handlers see requests only through the five
 *    fa_http_req_* accessors of http.h, so this file defines struct
 *    fa_http_req and the accessors itself and is linked without
 *    src/http/server.c (see tests/fuzz/CMakeLists.txt). Going through a
 *    socket would cost ~100x the executions and measure libmicrohttpd.
 *    Query values are taken as written (no %-decoding).
 *  - http(s) image URLs. The fuzzer must not reach the network, so this file
 *    also defines fa_fetch_http (src/fetch/transfer.c is left out) and
 *    refuses every http(s) URL with FA_EFETCH. data: URIs go through the
 *    real decoder and the real magic-byte check; the URL parser itself is
 *    fuzzed by fuzz_url.
 *  - Image size. max_pixels is 128 x 128, so fuzzed images are probed,
 *    decoded and searched for faces for real, but stay cheap; none holds a
 *    face, so the paths after a match (learning, templates) are left to the
 *    end-to-end tests.
 * The state carries over between inputs (users created by one input exist
 * for the next), as it does in a running server; a crash found after many
 * inputs may need the run's earlier inputs to reproduce.
 *
 * Checks beyond ASan/UBSan/LeakSanitizer: every request gets an answer; the
 * status is one of the documented ones; no fuzzed request gets a 5xx (a
 * server error caused by input is a bug); an error answer carries
 * error.message and error.status; every JSON answer prints.
 */
#define _GNU_SOURCE /* strcasecmp, nftw */
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "faceauth/api.h"
#include "faceauth/crypto.h"
#include "fetch/fetch_int.h"

#define FUZZ_CUSTOMER "fuzz"
#define FUZZ_PASSWORD "fuzz-password-1"
#define FUZZ_MAX_QUERY 8
#define FUZZ_TARGET_MAX 2048

/* ---- the request ---------------------------------------------------------- */

struct fa_http_req {
    char method[8];
    char path[FUZZ_TARGET_MAX];
    char *query_names[FUZZ_MAX_QUERY];
    char *query_values[FUZZ_MAX_QUERY];
    int n_query;
    char query_buf[FUZZ_TARGET_MAX];
    const char *token;
    uint8_t *body; /* NUL-terminated past n_body, as the server does */
    size_t n_body;
};

const char *fa_http_req_method(const struct fa_http_req *req) { return req->method; }
const char *fa_http_req_path(const struct fa_http_req *req) { return req->path; }

const char *fa_http_req_header(const struct fa_http_req *req, const char *name)
{
    if (strcasecmp(name, "Authorization") == 0)
        return req->token;
    if (strcasecmp(name, "Host") == 0)
        return "fuzz.example:8080";
    return NULL;
}

const char *fa_http_req_query(const struct fa_http_req *req, const char *name)
{
    for (int i = 0; i < req->n_query; i++)
        if (strcmp(req->query_names[i], name) == 0)
            return req->query_values[i];
    return NULL;
}

const uint8_t *fa_http_req_body(const struct fa_http_req *req, size_t *n)
{
    *n = req->n_body;
    return req->body;
}

/* ---- no network ------------------------------------------------------------ */

enum fa_rc fa_fetch_http(const char *url, const struct fa_fetch_opts *opts, uint8_t **bytes,
                         size_t *n, struct fa_err *err)
{
    (void)url;
    (void)opts;
    *bytes = NULL;
    *n = 0;
    return fa_err_set(err, FA_EFETCH, "could not fetch the URL: no network in the fuzzer");
}

/* ---- the app, built once ---------------------------------------------------- */

/* libFuzzer calls LLVMFuzzerTestOneInput with no context pointer, so the
 * app built in LLVMFuzzerInitialize lives here. */
static struct {
    struct fa_config cfg;
    struct fa_app app;
    char dir[256];
    char token[FA_TOKEN_CHARS + 1];
} g;

static void fuzz_die(const char *what, const struct fa_err *err)
{
    fprintf(stderr, "fuzz_api: %s: %s\n", what, err != NULL ? err->msg : "");
    abort();
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void remove_data_dir(void)
{
    if (g.dir[0] != '\0')
        nftw(g.dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* /dev/shm when there is one: the store fsyncs every commit. */
static void make_data_dir(void)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
    snprintf(g.dir, sizeof g.dir, "%s/faceauth-fuzz-XXXXXX", base != NULL ? base : "/tmp");
    if (mkdtemp(g.dir) == NULL)
        fuzz_die("mkdtemp", NULL);
    atexit(remove_data_dir);
}

static void login(void)
{
    struct fa_err err = {{0}};
    if (fa_store_login(g.app.store, FUZZ_CUSTOMER, FUZZ_PASSWORD, g.cfg.token_ttl_s, g.token,
                       &err) != FA_OK)
        fuzz_die("login", &err);
}

static void open_app(void)
{
    struct fa_err err = {{0}};
    struct fa_face_opts face;
    char db[512];
    fa_config_defaults(&g.cfg);
    snprintf(g.cfg.data_dir, sizeof g.cfg.data_dir, "%s", g.dir);
    snprintf(g.cfg.model_dir, sizeof g.cfg.model_dir, "%s", FA_MODEL_DIR);
    g.cfg.engines = 1;
    g.cfg.http_threads = 1;
    g.cfg.max_pixels = 128 * 128;
    g.cfg.max_image_bytes = 64 * 1024;
    g.app.cfg = &g.cfg;
    fa_fetch_opts_default(&g.app.fetch);
    g.app.fetch.max_bytes = g.cfg.max_image_bytes;
    snprintf(db, sizeof db, "%s/faceauth.db", g.dir);
    if (fa_media_open(g.dir, &g.app.media, &err) != FA_OK)
        fuzz_die("media", &err);
    if (fa_store_open(db, &g.app.store, &err) != FA_OK)
        fuzz_die("store", &err);
    if (fa_index_new(FA_EMBED_DIM, &g.app.index, &err) != FA_OK)
        fuzz_die("index", &err);
    if (fa_api_recover(&g.app, &err) != FA_OK)
        fuzz_die("recover", &err);
    fa_face_opts_from_config(&g.cfg, &face);
    if (fa_face_service_new(&face, &g.app.faces, &err) != FA_OK)
        fuzz_die("face service (are the models in " FA_MODEL_DIR "?)", &err);
    if (fa_store_customer_add(g.app.store, FUZZ_CUSTOMER, FUZZ_PASSWORD, &err) != FA_OK)
        fuzz_die("customer", &err);
    login();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    if (fa_crypto_init() != FA_OK || fa_fetch_global_init() != FA_OK)
        fuzz_die("crypto/curl init", NULL);
    make_data_dir();
    open_app();
    return 0;
}

/* ---- one input -------------------------------------------------------------- */

/* Split "a=1&b=2" in place into the request's query table. */
static void parse_query(struct fa_http_req *req, char *q)
{
    char *save = NULL;
    for (char *kv = strtok_r(q, "&", &save); kv != NULL && req->n_query < FUZZ_MAX_QUERY;
         kv = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(kv, '=');
        req->query_names[req->n_query] = kv;
        req->query_values[req->n_query] = eq != NULL ? eq + 1 : kv + strlen(kv);
        if (eq != NULL)
            *eq = '\0';
        req->n_query++;
    }
}

/* "METHOD target" into the request; 0 when the line is not one. */
static int parse_request_line(struct fa_http_req *req, const uint8_t *line, size_t n)
{
    const uint8_t *sp = memchr(line, ' ', n);
    size_t n_method, n_target;
    char *q;
    if (sp == NULL || memchr(line, '\0', n) != NULL)
        return 0;
    n_method = (size_t)(sp - line);
    n_target = n - n_method - 1;
    if (n_method == 0 || n_method >= sizeof req->method || n_target == 0 ||
        n_target >= sizeof req->path)
        return 0;
    memcpy(req->method, line, n_method);
    memcpy(req->path, sp + 1, n_target);
    q = strchr(req->path, '?');
    if (q != NULL) {
        *q = '\0';
        snprintf(req->query_buf, sizeof req->query_buf, "%s", q + 1);
        parse_query(req, req->query_buf);
    }
    return 1;
}

/* The same match as src/http/server.c: exact, or a prefix ending in '/'. */
static fa_http_handler find_route(const char *method, const char *path)
{
    size_t n_routes;
    const struct fa_route *routes = fa_api_routes(&n_routes);
    for (size_t i = 0; i < n_routes; i++) {
        size_t n = strlen(routes[i].path);
        int match = n > 0 && routes[i].path[n - 1] == '/'
                        ? strncmp(path, routes[i].path, n) == 0 && path[n] != '\0'
                        : strcmp(path, routes[i].path) == 0;
        if (match && strcmp(routes[i].method, method) == 0)
            return routes[i].handler;
    }
    return NULL;
}

static void fail(const struct fa_http_req *req, const char *why, const struct fa_http_reply *r)
{
    char *text = r->json != NULL ? cJSON_PrintUnformatted(r->json) : NULL;
    fprintf(stderr, "fuzz_api: %s %s: %s (status %d): %.2000s\n", req->method, req->path, why,
            r->status, text != NULL ? text : "(no JSON)");
    free(text);
    abort();
}

static int status_documented(int s)
{
    static const int ok[] = {200, 400, 401, 404, 405, 409, 413, 503};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (s == ok[i])
            return 1;
    return 0;
}

/* What every answer must look like (see the file comment). */
static void check_reply(const struct fa_http_req *req, const struct fa_http_reply *r)
{
    const cJSON *error, *msg;
    char *text;
    if (r->json == NULL && r->bytes == NULL)
        fail(req, "no answer", r);
    if (!status_documented(r->status) || r->status >= 500)
        fail(req, "undocumented or server-error status", r);
    if (r->json == NULL)
        return;
    text = cJSON_PrintUnformatted(r->json);
    if (text == NULL)
        fail(req, "answer does not print", r);
    free(text);
    if (r->status == 200)
        return;
    error = cJSON_GetObjectItemCaseSensitive(r->json, "error");
    msg = cJSON_GetObjectItemCaseSensitive(error, "message");
    if (!cJSON_IsString(msg) || msg->valuestring[0] == '\0' ||
        !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(error, "status")))
        fail(req, "error answer without error.message and error.status", r);
}

/* A logout (or anything else) may have revoked our token: log in again. */
static void keep_token(void)
{
    int64_t id = 0;
    if (fa_store_token_check(g.app.store, FUZZ_CUSTOMER, g.token, &id, NULL) != FA_OK)
        login();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fa_http_req *req = calloc(1, sizeof *req);
    struct fa_http_reply reply = {0};
    const uint8_t *nl = memchr(data, '\n', size);
    size_t n_line = nl != NULL ? (size_t)(nl - data) : size;
    fa_http_handler handler;
    if (req == NULL || !parse_request_line(req, data, n_line))
        goto out;
    handler = find_route(req->method, req->path);
    if (handler == NULL)
        goto out;
    req->n_body = nl != NULL ? size - n_line - 1 : 0;
    req->body = malloc(req->n_body + 1);
    if (req->body == NULL)
        goto out;
    if (req->n_body > 0)
        memcpy(req->body, nl + 1, req->n_body);
    req->body[req->n_body] = '\0';
    req->token = g.token;
    handler(&g.app, req, &reply);
    check_reply(req, &reply);
    keep_token();
out:
    cJSON_Delete(reply.json);
    free(reply.bytes);
    if (req != NULL)
        free(req->body);
    free(req);
    return 0;
}
