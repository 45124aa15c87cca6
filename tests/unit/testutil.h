/*
 * testutil.h — helpers several unit tests share, header-only (CMake builds
 * each tests/unit/test_*.c with tap.c alone): reading a whole file, and a
 * libcurl client for the tests that run the real HTTP server on loopback.
 *
 * Everything is static inline, so a test that uses only part of it gets no
 * unused-function warning.
 */
#ifndef FACEAUTH_TESTUTIL_H
#define FACEAUTH_TESTUTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "faceauth/common.h"

/* ---- files --------------------------------------------------------------- */

/* A whole file (at most TU_MAX_FILE bytes), malloc'ed and NUL-terminated;
 * NULL when unreadable. The caller frees it. */
#define TU_MAX_FILE ((size_t)256 << 20)
static inline uint8_t *tu_read_file(const char *path, size_t *n)
{
    uint8_t *buf = NULL;
    if (fa_read_file(path, TU_MAX_FILE, &buf, n, NULL) != FA_OK)
        return NULL;
    return buf;
}

/* The file parsed as JSON; NULL when unreadable or not JSON. The caller
 * deletes the root. */
static inline cJSON *tu_read_json(const char *path)
{
    size_t n = 0;
    char *text = (char *)tu_read_file(path, &n);
    cJSON *root = NULL;
    if (text != NULL)
        root = cJSON_Parse(text);
    free(text);
    return root;
}

/* ---- an HTTP client ------------------------------------------------------ */

/* One answer, filled by tu_curl_perform; release with tu_resp_free. */
struct tu_resp {
    CURLcode cc;
    long status;
    char *body; /* NUL-terminated, or NULL when empty */
    size_t n;
    char ctype[128];   /* Content-Type */
    char cache[128];   /* Cache-Control */
    char nosniff[32];  /* X-Content-Type-Options */
    char retry_after[32]; /* Retry-After */
    cJSON *json;       /* the body parsed, when it is JSON */
};

static inline size_t tu_on_body(char *p, size_t size, size_t nmemb, void *ud)
{
    struct tu_resp *r = ud;
    size_t k = size * nmemb;
    char *grown = realloc(r->body, r->n + k + 1);
    if (grown == NULL)
        return 0;
    memcpy(grown + r->n, p, k);
    r->n += k;
    grown[r->n] = '\0';
    r->body = grown;
    return k;
}

static inline void tu_resp_free(struct tu_resp *r)
{
    free(r->body);
    cJSON_Delete(r->json);
    memset(r, 0, sizeof *r);
}

/* A handle for http://127.0.0.1:<port><path> (no proxy, 10 s timeout)
 * writing its body into r, which is reset with cc = CURLE_FAILED_INIT.
 * NULL when curl cannot make one. Finish with tu_curl_perform. */
static inline CURL *tu_curl_new(int port, const char *path, struct tu_resp *r)
{
    char url[512];
    CURL *h = curl_easy_init();
    memset(r, 0, sizeof *r);
    r->cc = CURLE_FAILED_INIT;
    if (h == NULL)
        return NULL;
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROXY, "");
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, tu_on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    return h;
}

static inline void tu_copy_header(CURL *h, const char *name, char *out, size_t cap)
{
    struct curl_header *hd = NULL;
    out[0] = '\0';
    if (curl_easy_header(h, name, 0, CURLH_HEADER, -1, &hd) == CURLHE_OK)
        snprintf(out, cap, "%s", hd->value);
}

/* Send the request with the headers hdrs and fill r: status, a few
 * headers, the body parsed as JSON. Takes ownership of h and hdrs. */
static inline void tu_curl_perform(CURL *h, struct curl_slist *hdrs, struct tu_resp *r)
{
    char *ct = NULL;
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    r->cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    if (curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct != NULL)
        snprintf(r->ctype, sizeof r->ctype, "%s", ct);
    tu_copy_header(h, "Cache-Control", r->cache, sizeof r->cache);
    tu_copy_header(h, "X-Content-Type-Options", r->nosniff, sizeof r->nosniff);
    tu_copy_header(h, "Retry-After", r->retry_after, sizeof r->retry_after);
    if (r->body != NULL)
        r->json = cJSON_Parse(r->body);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
}

/* The string member name of o; NULL when absent or not a string. */
static inline const char *tu_jstr(const cJSON *o, const char *name)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

#endif
