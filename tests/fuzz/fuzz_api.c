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
 * the server's own table (fa_api_routes) by the server's own routing, and its
 * handler runs against a real struct fa_app: a SQLite file in a temporary
 * folder holding one customer "fuzz", real media storage, the real search
 * index and a real face service (one engine, the models of models/).
 * Authorization always carries a live token of "fuzz", so bodies get past
 * authentication; a request that revokes it (logout) is followed by a new
 * login. Two users are always there when an input starts: "ann" and "eve",
 * whose face is enrolled (through the real enroll handler); an input that
 * deletes or changes them gets them back before the next one.
 *
 * Two tags are replaced anywhere in an input: "@FACE@" by a data: URI of a
 * real face (a demo photo of tests/assets, shrunk to fit max_pixels), so
 * that enroll, update, authenticate, search and the enrollment page also
 * run their paths after a face is found (scoring, learning, stored images,
 * the search index); "@TOKEN@" by ann's enrollment token, which no fuzzer
 * could guess, so /enroll/<token> gets past its link check.
 *
 * DESIGN. What is not the real thing, and why:
 *  - The request. It is handed to the server's own routing and accessors
 *    without a socket (fa_http_run_inproc, src/http/http_test.h): going
 *    through a socket would cost ~100x the executions and measure
 *    libmicrohttpd. Query values are taken as written (no %-decoding), and
 *    every request comes from 127.0.0.1 with a fixed Host.
 *  - http(s) image URLs. The fuzzer must not reach the network, so this file
 *    also defines fa_fetch_http (src/fetch/transfer.c is left out) and
 *    refuses every http(s) URL with FA_EFETCH. data: URIs go through the
 *    real decoder and the real magic-byte check; the URL parser itself is
 *    fuzzed by fuzz_url.
 *  - Image size. max_pixels is 400 x 300, so fuzzed images are probed,
 *    decoded and searched for faces for real, but stay cheap.
 * The state carries over between inputs (users created by one input exist
 * for the next), as it does in a running server; a crash found after many
 * inputs may need the run's earlier inputs to reproduce.
 *
 * Checks beyond ASan/UBSan/LeakSanitizer: every request gets an answer; no
 * fuzzed request gets a 5xx (a server error caused by input is a bug); a
 * JSON error answer carries error.message and error.status; every JSON
 * answer prints.
 */
#define _GNU_SOURCE /* nftw */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <math.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "faceauth/api.h"
#include "faceauth/crypto.h"
#include "faceauth/vision.h"
#include "fetch/fetch_int.h"
#include "http/http_test.h"
#include "vision/vision_test.h"

#define FUZZ_CUSTOMER "fuzz"
#define FUZZ_PASSWORD "fuzz-password-1"
#define FUZZ_MAX_QUERY 8
#define FUZZ_TARGET_MAX 2048
#define FUZZ_FACE_TAG "@FACE@"
#define FUZZ_TOKEN_TAG "@TOKEN@"
#define FUZZ_MAX_PIXELS (400L * 300L)

/* ---- the request ---------------------------------------------------------- */

/* One fuzzed request: what fa_http_run_inproc reads, and the storage its
 * strings point into. */
struct fuzz_req {
    char method[8];
    char path[FUZZ_TARGET_MAX];
    const char *query[2 * FUZZ_MAX_QUERY + 1]; /* name, value, ..., NULL */
    char query_buf[FUZZ_TARGET_MAX];
    const char *headers[7];
    uint8_t *body; /* NUL-terminated past n_body, as the server does */
    size_t n_body;
};

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
    char *face_uri; /* what FUZZ_FACE_TAG stands for */
    char ann_token[FA_TOKEN_CHARS + 1]; /* and FUZZ_TOKEN_TAG */
    int verbose;
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

/* A run that found a crash ends in abort(), so atexit never removes its
 * folder; the next run removes the folders of runs whose process is gone
 * (the name carries the pid). */
static void remove_stale_dirs(const char *base)
{
    DIR *d = opendir(base);
    struct dirent *e;
    char path[512];
    long pid;
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (sscanf(e->d_name, "faceauth-fuzz-%ld-", &pid) != 1 || pid <= 0 ||
            kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        snprintf(path, sizeof path, "%s/%s", base, e->d_name);
        nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
    if (d != NULL)
        closedir(d);
}

/* /dev/shm when there is one: the store fsyncs every commit. */
static void make_data_dir(void)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
    if (base == NULL)
        base = "/tmp";
    remove_stale_dirs(base);
    snprintf(g.dir, sizeof g.dir, "%s/faceauth-fuzz-%ld-XXXXXX", base, (long)getpid());
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
    g.cfg.max_pixels = FUZZ_MAX_PIXELS;
    g.cfg.max_image_bytes = 256 * 1024;
    g.cfg.enroll_attempts_per_hour = 100000; /* else the page answers 429 after 10 */
    g.cfg.disk_reserve_mb = 1;               /* the folder is in RAM (/dev/shm) */
    g.cfg.login_fail_limit = 0; /* else a few wrong logins or failed faces lock them out */
    g.cfg.auth_fail_limit = 0;  /* for the rest of the run, and the paths behind go unseen */
    g.app.cfg = &g.cfg;
    fa_face_policy_from_config(&g.cfg, &g.app.policy);
    fa_fetch_opts_from_config(&g.cfg, &g.app.fetch);
    snprintf(db, sizeof db, "%s/faceauth.db", g.dir);
    if (fa_media_open(g.dir, &g.app.media, &err) != FA_OK)
        fuzz_die("media", &err);
    if (fa_store_open(db, &g.app.store, &err) != FA_OK)
        fuzz_die("store", &err);
    if (fa_index_new(FA_EMBED_DIM, &g.app.index, &err) != FA_OK)
        fuzz_die("index", &err);
    if (fa_gallery_new(g.app.store, g.app.index, FA_MODEL_ID, FA_EMBED_DIM, &g.app.gallery,
                       &err) != FA_OK)
        fuzz_die("gallery", &err);
    if (fa_store_set_sync(g.app.store, g.cfg.durable_commits, &err) != FA_OK)
        fuzz_die("store sync", &err);
    if (fa_api_recover(&g.app, &err) != FA_OK)
        fuzz_die("recover", &err);
    if (fa_api_services_start(&g.app, &err) != FA_OK)
        fuzz_die("services", &err);
    if (fa_api_slots_new(1, 0, &g.app.login_slots, &err) != FA_OK)
        fuzz_die("login slots", &err);
    fa_face_opts_from_config(&g.cfg, &face);
    if (fa_face_service_new(&face, &g.app.faces, &err) != FA_OK)
        fuzz_die("face service (are the models in " FA_MODEL_DIR "?)", &err);
    if (fa_store_customer_add(g.app.store, FUZZ_CUSTOMER, FUZZ_PASSWORD, &err) != FA_OK)
        fuzz_die("customer", &err);
    login();
}

static uint8_t *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    long len;
    if (f != NULL && fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) > 0 &&
        fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)len)) != NULL &&
        fread(buf, 1, (size_t)len, f) != (size_t)len) {
        free(buf);
        buf = NULL;
    }
    *n = buf != NULL ? (size_t)len : 0;
    if (f != NULL)
        fclose(f);
    return buf;
}

/* A demo photo shrunk to fit max_pixels, as JPEG; NULL when it does not
 * load or no longer holds a face that passes the enrollment gates. */
static uint8_t *small_face(const char *name, size_t *n_jpeg)
{
    char path[512];
    struct fa_image *img = NULL, *small = NULL;
    struct fa_face_probe *probe = calloc(1, sizeof *probe);
    uint8_t *jpeg = NULL, *bytes;
    size_t n = 0;
    snprintf(path, sizeof path, "%s/%s", FA_TEST_ASSETS, name);
    bytes = read_file(path, &n);
    *n_jpeg = 0;
    if (bytes != NULL && probe != NULL && fa_image_decode(bytes, n, 100000000L, &img, NULL) == FA_OK) {
        double area = (double)fa_image_width(img) * fa_image_height(img);
        double scale = area > FUZZ_MAX_PIXELS ? sqrt(FUZZ_MAX_PIXELS / area) * 0.99 : 1.0;
        if (fa_image_adjust(img, scale, 0, &small, NULL) == FA_OK &&
            fa_image_encode(small, FA_IMG_JPEG, 90, &jpeg, n_jpeg, NULL) == FA_OK &&
            fa_face_analyze(g.app.faces, jpeg, *n_jpeg, FA_FACE_ENROLL, 0, probe, NULL, NULL) !=
                FA_OK) {
            free(jpeg);
            jpeg = NULL;
        }
    }
    if (probe != NULL)
        fa_face_probe_cleanup(probe);
    free(probe);
    fa_image_free(small);
    fa_image_free(img);
    free(bytes);
    return jpeg;
}

/* The first demo photo whose face survives the shrinking, as a data: URI. */
static void make_face_uri(void)
{
    static const char *const photos[] = {"sample3.jpg", "sample1.jpg", "sample2.jpg",
                                         "sample5.jpg", "sample6.jpg", "sample4.jpg"};
    static const char prefix[] = "data:image/jpeg;base64,";
    for (size_t i = 0; i < sizeof photos / sizeof photos[0] && g.face_uri == NULL; i++) {
        size_t n = 0, b64;
        uint8_t *jpeg = small_face(photos[i], &n);
        if (jpeg == NULL)
            continue;
        b64 = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
        g.face_uri = malloc(sizeof prefix - 1 + b64);
        if (g.face_uri != NULL) {
            memcpy(g.face_uri, prefix, sizeof prefix - 1);
            sodium_bin2base64(g.face_uri + sizeof prefix - 1, b64, jpeg, n,
                              sodium_base64_VARIANT_ORIGINAL);
        }
        free(jpeg);
    }
    if (g.face_uri == NULL)
        fuzz_die("no demo photo in " FA_TEST_ASSETS " gives a face at the fuzzer's pixel cap", NULL);
}

static void keep_fixtures(void);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    if (fa_crypto_init() != FA_OK || fa_fetch_global_init() != FA_OK)
        fuzz_die("crypto/curl init", NULL);
    g.verbose = getenv("FA_FUZZ_VERBOSE") != NULL;
    make_data_dir();
    open_app();
    make_face_uri();
    keep_fixtures();
    return 0;
}

/* ---- one input -------------------------------------------------------------- */

/* Split "a=1&b=2" in place into the request's query list. */
static void parse_query(struct fuzz_req *req, char *q)
{
    char *save = NULL;
    size_t n = 0;
    for (char *kv = strtok_r(q, "&", &save); kv != NULL && n < 2 * FUZZ_MAX_QUERY;
         kv = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(kv, '=');
        req->query[n++] = kv;
        req->query[n++] = eq != NULL ? eq + 1 : kv + strlen(kv);
        if (eq != NULL)
            *eq = '\0';
    }
    req->query[n] = NULL;
}

/* "METHOD target" into the request; 0 when the line is not one. */
static int parse_request_line(struct fuzz_req *req, const uint8_t *line, size_t n)
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

static void fail(const struct fuzz_req *req, const char *why, const struct fa_http_reply *r)
{
    char *text = r->json != NULL ? cJSON_PrintUnformatted(r->json) : NULL;
    fprintf(stderr, "fuzz_api: %s %s: %s (status %d): %.2000s\n", req->method, req->path, why,
            r->status, text != NULL ? text : "(no JSON)");
    free(text);
    abort();
}

/* What every answer must look like (see the file comment). */
static void check_reply(const struct fuzz_req *req, const struct fa_http_reply *r)
{
    const cJSON *error, *msg;
    char *text;
    if (r->json == NULL && r->bytes == NULL)
        fail(req, "no answer", r);
    if (r->status < 200 || r->status >= 500)
        fail(req, "server error (or no status) for a client's request", r);
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

/* Where tag tags[k][0] starts at p[i] (of n bytes), its index k; else -1. */
static int tag_at(const char *const tags[][2], const uint8_t *p, size_t n, size_t i)
{
    for (int k = 0; tags[k][0] != NULL; k++) {
        size_t len = strlen(tags[k][0]);
        if (i + len <= n && memcmp(p + i, tags[k][0], len) == 0)
            return k;
    }
    return -1;
}

/* The input with the tags replaced, NUL-terminated past *out_n (as the
 * server's body is); NULL when out of memory. Two passes: size, then copy. */
static uint8_t *expand_tags(const uint8_t *p, size_t n, size_t *out_n)
{
    const char *const tags[][2] = {
        {FUZZ_FACE_TAG, g.face_uri}, {FUZZ_TOKEN_TAG, g.ann_token}, {NULL, NULL}};
    uint8_t *out = NULL;
    for (int pass = 0; pass < 2; pass++) {
        size_t len = 0;
        for (size_t i = 0; i < n; i++) {
            int k = tag_at(tags, p, n, i);
            size_t add = k >= 0 ? strlen(tags[k][1]) : 1;
            if (out != NULL)
                memcpy(out + len, k >= 0 ? (const uint8_t *)tags[k][1] : p + i, add);
            len += add;
            i += k >= 0 ? strlen(tags[k][0]) - 1 : 0;
        }
        if (out != NULL) {
            out[len] = '\0';
            *out_n = len;
        } else if ((out = malloc(len + 1)) == NULL) {
            return NULL;
        }
    }
    return out;
}

/* The request as fa_http_run_inproc takes it: the fuzzer's token, from
 * this machine (so GET /metrics gets past its access check and, with no
 * metrics in the fuzz app, answers 404). */
static struct fa_http_inproc inproc_of(struct fuzz_req *req)
{
    const char *const headers[] = {"Authorization", g.token, "Host", "fuzz.example:8080",
                                   "Content-Type", "application/json", NULL};
    struct fa_http_inproc in = {.method = req->method, .path = req->path,
                                .headers = req->headers, .query = req->query,
                                .body = req->body, .n_body = req->n_body,
                                .client_addr = "127.0.0.1", .local_addr = "127.0.0.1",
                                .local_port = 8080};
    memcpy(req->headers, headers, sizeof headers);
    return in;
}

/* Run one request in the text form of the file comment; check its answer
 * when check is set. The status, or 0 when no route takes it. */
static int run_request(const uint8_t *input, size_t n_input, int check)
{
    struct fuzz_req *req = calloc(1, sizeof *req);
    struct fa_http_reply reply = {0};
    struct fa_http_inproc in;
    size_t size = 0, n_line, n_routes;
    const struct fa_route *routes = fa_api_routes(&n_routes);
    uint8_t *data = expand_tags(input, n_input, &size);
    const uint8_t *nl;
    int status = 0;
    if (req == NULL || data == NULL)
        goto out;
    nl = memchr(data, '\n', size);
    n_line = nl != NULL ? (size_t)(nl - data) : size;
    if (!parse_request_line(req, data, n_line))
        goto out;
    /* The body is the tail of data: move it to the front, keep the NUL. */
    req->n_body = nl != NULL ? size - n_line - 1 : 0;
    memmove(data, data + size - req->n_body, req->n_body + 1);
    req->body = data;
    data = NULL;
    in = inproc_of(req);
    if (fa_http_run_inproc(routes, n_routes, &g.app, &in, &reply) != NULL)
        status = reply.status;
    if (check)
        check_reply(req, &reply);
    if (g.verbose) /* FA_FUZZ_VERBOSE=1: what each input did, for writing seeds */
        fprintf(stderr, "fuzz_api: %s %.60s -> %d\n", req->method, req->path, reply.status);
out:
    cJSON_Delete(reply.json);
    free(reply.bytes);
    if (req != NULL)
        free(req->body);
    free(req);
    free(data);
    return status;
}

static int run_text(const char *text) { return run_request((const uint8_t *)text, strlen(text), 0); }

/* Put back what an input may have taken away: our token (logout revokes
 * it), user "ann", and user "eve" with an enrolled face. */
static void keep_fixtures(void)
{
    struct fa_user u;
    int64_t id = 0;
    if (fa_store_token_check(g.app.store, FUZZ_CUSTOMER, g.token, &id, NULL) != FA_OK)
        login();
    if (fa_store_user_get(g.app.store, id, "ann", &u, NULL) != FA_OK)
        run_text("POST " FA_API_BASE "user/create\n{\"customerName\":\"fuzz\",\"userName\":\"ann\"}");
    if (fa_store_user_get(g.app.store, id, "ann", &u, NULL) == FA_OK)
        memcpy(g.ann_token, u.enroll_token, sizeof g.ann_token);
    if (fa_store_user_get(g.app.store, id, "eve", &u, NULL) != FA_OK)
        run_text("POST " FA_API_BASE "user/create\n{\"customerName\":\"fuzz\",\"userName\":\"eve\"}");
    if (fa_store_user_get(g.app.store, id, "eve", &u, NULL) == FA_OK && u.blacklisted)
        run_text("POST " FA_API_BASE "user/whitelist\n{\"customerName\":\"fuzz\",\"userName\":\"eve\"}");
    if (fa_store_user_get(g.app.store, id, "eve", &u, NULL) == FA_OK && u.state != FA_USER_SUCCESS &&
        run_text("POST " FA_API_BASE "update\n{\"customerName\":\"fuzz\",\"userName\":\"eve\","
                 "\"url\":\"" FUZZ_FACE_TAG "\"}") != 200)
        fuzz_die("enrolling the fixture user eve failed", NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    run_request(data, size, 1);
    keep_fixtures();
    return 0;
}
