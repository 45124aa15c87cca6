/*
 * transfer.c — fetch an http(s) URL with libcurl under the guards of fetch.h.
 *
 * DESIGN. One easy handle per call, never shared nor reused, so nothing
 * survives between calls and any number of threads may fetch at once.
 * CURLOPT_NOSIGNAL keeps curl away from SIGALRM, which is process-wide; the
 * threaded resolver of libcurl4 honours the timeout without it.
 *
 * Each guard, and where it lives:
 *  - scheme: checked up front with curl_url for a clear FA_EINVAL message,
 *    then enforced by curl itself on every hop (CURLOPT_(REDIR_)PROTOCOLS_STR);
 *  - address: guard.c (fa_fetch_guard_setopt, shared with callbacks):
 *    CURLOPT_OPENSOCKETFUNCTION sees the resolved address of every
 *    connection curl opens, each redirect hop included, and refuses private
 *    ones before a socket exists. Proxies are off: through a proxy curl would
 *    connect to the proxy, and the guard would judge the wrong address;
 *  - size: CURLOPT_MAXFILESIZE_LARGE refuses an announced Content-Length
 *    early; the write callback cuts a body without one (chunked or
 *    close-delimited) as soon as it goes over. No Accept-Encoding is sent, so
 *    what is counted is what the server sent, not a decompressed bomb;
 *  - time: CURLOPT_TIMEOUT_MS covers the whole transfer, redirects included.
 * curl reduces a callback's refusal to a generic code (COULDNT_CONNECT,
 * WRITE_ERROR), so the callbacks leave flags in struct fetch_xfer and
 * fetch_map_result turns code + flags into our code and message.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "fetch_int.h"

#define FETCH_PROTOCOLS "http,https"
#define FETCH_USER_AGENT "faceauth/1.0"
/* curl.h has no public maximum; curl_off_t is 64-bit on every platform we build. */
#define FETCH_OFF_T_MAX ((curl_off_t)INT64_MAX)
_Static_assert(sizeof(curl_off_t) == 8, "curl_off_t is expected to be 64-bit");
_Static_assert(sizeof(((struct fa_fetch_guard *)0)->refused_ip) >= INET6_ADDRSTRLEN,
               "fa_fetch_guard.refused_ip must hold any address");

/* Everything one transfer owns; lives on fa_fetch_http's stack. */
struct fetch_xfer {
    const struct fa_fetch_opts *opts;
    struct fa_buf body; /* so far, capped at opts->max_bytes */
    int too_big;  /* the write callback cut the body at max_bytes */
    int no_mem;   /* the write callback could not grow the buffer */
    struct fa_fetch_guard guard; /* the socket callback's verdict */
    char errbuf[CURL_ERROR_SIZE];
    char shown[FA_FETCH_URL_SHOWN]; /* the URL as messages show it */
};

/* Validate the URL as curl will read it: syntax, then scheme. On success
 * *norm is curl's normalised copy (curl_free), which is what gets fetched,
 * so the check and the transfer cannot disagree on how to parse it. */
static enum fa_rc fetch_url_check(const char *url, const char *shown, char **norm,
                                  struct fa_err *err)
{
    CURLU *u = curl_url();
    char *scheme = NULL;
    CURLUcode uc;
    enum fa_rc rc = FA_OK;

    *norm = NULL;
    if (u == NULL)
        return fa_err_field(err, FA_ENOMEM, "url", "out of memory parsing URL");
    uc = curl_url_set(u, CURLUPART_URL, url, 0);
    if (uc == CURLUE_OK)
        uc = curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    if (uc != CURLUE_OK) {
        rc = fa_err_field(err, FA_EINVAL, "url", "not a valid http(s) URL (%s): %s",
                        curl_url_strerror(uc), shown);
        goto out;
    }
    /* curl lower-cases the scheme, so "HTTP://" passes as it should. */
    if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
        rc = fa_err_field(err, FA_EINVAL, "url",
                          "scheme \"%.16s\" is not allowed, only http and https: %s",
                        scheme, shown);
        goto out;
    }
    uc = curl_url_get(u, CURLUPART_URL, norm, 0);
    if (uc != CURLUE_OK)
        rc = fa_err_field(err, FA_EINVAL, "url", "not a valid http(s) URL (%s): %s",
                        curl_url_strerror(uc), shown);
out:
    curl_free(scheme);
    curl_url_cleanup(u);
    return rc;
}

static size_t fetch_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct fetch_xfer *x = userdata;
    size_t n = size * nmemb; /* size is always 1 */
    enum fa_rc rc = fa_buf_add(&x->body, ptr, n);

    /* Returning less than n makes curl abort with CURLE_WRITE_ERROR. */
    if (rc == FA_ETOOBIG)
        x->too_big = 1;
    else if (rc != FA_OK)
        x->no_mem = 1;
    return rc == FA_OK ? n : 0;
}

static CURLcode fetch_setopt_limits(CURL *h, const struct fa_fetch_opts *o)
{
    /* A negative MAXREDIRS means "unlimited" to curl: never pass one. */
    long redirs = o->max_redirects > 0 ? (long)o->max_redirects : 0L;
    long connect_ms = o->connect_timeout_ms > 0 && o->connect_timeout_ms < o->timeout_ms
                          ? o->connect_timeout_ms
                          : o->timeout_ms;
    /* 0 would mean "no limit"; the write callback still enforces max_bytes. */
    curl_off_t max = (uint64_t)o->max_bytes > (uint64_t)FETCH_OFF_T_MAX ? FETCH_OFF_T_MAX
                                                                         : (curl_off_t)o->max_bytes;
    CURLcode cc = curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h, CURLOPT_MAXREDIRS, redirs);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, o->timeout_ms);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, max);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (cc == CURLE_OK) /* >= 400 ends the transfer before its body is read */
        cc = curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L);
    return cc;
}

static CURLcode fetch_setopt_io(CURL *h, struct fetch_xfer *x, const char *url)
{
    CURLcode cc = curl_easy_setopt(h, CURLOPT_URL, url);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, fetch_write_cb);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->errbuf);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h, CURLOPT_USERAGENT, FETCH_USER_AGENT);
    return cc;
}

static enum fa_rc fetch_status_error(CURL *h, struct fetch_xfer *x, struct fa_err *err)
{
    long code = 0;

    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    return fa_err_set(err, FA_EFETCH, "image URL answered HTTP %ld: %s", code, x->shown);
}

/* Name the phase that was too slow: no connection yet means the connect
 * timeout (or DNS) fired, which is a different limit from the whole-transfer one. */
static enum fa_rc fetch_timeout_error(CURL *h, struct fetch_xfer *x, struct fa_err *err)
{
    const struct fa_fetch_opts *o = x->opts;
    curl_off_t connect_us = 0;

    curl_easy_getinfo(h, CURLINFO_CONNECT_TIME_T, &connect_us);
    if (connect_us == 0 && o->connect_timeout_ms > 0 && o->connect_timeout_ms < o->timeout_ms)
        return fa_err_set(err, FA_ETIMEOUT, "connecting to the image host timed out after %ld ms: %s",
                          o->connect_timeout_ms, x->shown);
    return fa_err_set(err, FA_ETIMEOUT, "fetching the image timed out after %ld ms: %s",
                      o->timeout_ms, x->shown);
}

/*
 * The client learns only that the host is unknown or not allowed, in the
 * same words and with the same code whether the name did not resolve or
 * resolved to a private address: otherwise the answers would map which
 * internal names exist and where they point. The operator log keeps the
 * detail (the URL as shown, the address refused, the resolver's message).
 */
#define FETCH_NOT_ALLOWED "the image host is unknown or not allowed: %s"

static enum fa_rc fetch_refused(const struct fetch_xfer *x, struct fa_err *err)
{
    fprintf(stderr, "faceauth: fetch refused: %s connects to private or loopback address %s\n",
            x->shown, x->guard.refused_ip);
    return fa_err_field(err, FA_EFORBIDDEN, "url", FETCH_NOT_ALLOWED, x->shown);
}

static enum fa_rc fetch_unresolved(const struct fetch_xfer *x, struct fa_err *err)
{
    fprintf(stderr, "faceauth: fetch refused: %s: %s\n", x->shown,
            x->errbuf[0] != '\0' ? x->errbuf : "could not resolve the host");
    return fa_err_field(err, FA_EFORBIDDEN, "url", FETCH_NOT_ALLOWED, x->shown);
}

static enum fa_rc fetch_map_result(CURL *h, CURLcode cc, struct fetch_xfer *x, struct fa_err *err)
{
    long code = 0;

    if (cc == CURLE_OK) {
        /* A final 1xx/3xx (a redirect without Location, 304) carries no image. */
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        return code >= 200 && code < 300 ? FA_OK : fetch_status_error(h, x, err);
    }
    if (x->guard.refused && cc == CURLE_COULDNT_CONNECT)
        return fetch_refused(x, err);
    if (cc == CURLE_COULDNT_RESOLVE_HOST)
        return fetch_unresolved(x, err);
    if (x->too_big || cc == CURLE_FILESIZE_EXCEEDED)
        return fa_err_set(err, FA_ETOOBIG, "image at URL is larger than %zu bytes: %s",
                          x->opts->max_bytes, x->shown);
    if (x->no_mem || cc == CURLE_OUT_OF_MEMORY)
        return fa_err_set(err, FA_ENOMEM, "out of memory fetching %s", x->shown);
    switch (cc) {
    case CURLE_OPERATION_TIMEDOUT:
        return fetch_timeout_error(h, x, err);
    case CURLE_HTTP_RETURNED_ERROR:
        return fetch_status_error(h, x, err);
    case CURLE_TOO_MANY_REDIRECTS:
        return fa_err_set(err, FA_EFETCH, "too many redirects (more than %d): %s",
                          x->opts->max_redirects > 0 ? x->opts->max_redirects : 0, x->shown);
    case CURLE_UNSUPPORTED_PROTOCOL: /* the first URL was checked: a redirect did this */
        return fa_err_set(err, FA_EFETCH, "refusing a redirect to a scheme other than http or https: %s",
                          x->shown);
    default:
        return fa_err_set(err, FA_EFETCH, "could not fetch %s: %s", x->shown,
                          x->errbuf[0] != '\0' ? x->errbuf : curl_easy_strerror(cc));
    }
}

enum fa_rc fa_fetch_http(const char *url, const struct fa_fetch_opts *opts, uint8_t **bytes,
                         size_t *n, struct fa_err *err)
{
    struct fetch_xfer x;
    char *norm = NULL;
    CURL *h = NULL;
    CURLcode cc;
    enum fa_rc rc;

    assert(opts->timeout_ms > 0); /* 0 would mean "forever" to curl */
    memset(&x, 0, sizeof x);
    x.opts = opts;
    fa_buf_init(&x.body, opts->max_bytes);
    x.guard.allow_private = opts->allow_private;
    *bytes = NULL;
    *n = 0;
    fa_fetch_url_excerpt(url, x.shown, sizeof x.shown);
    rc = fetch_url_check(url, x.shown, &norm, err);
    if (rc != FA_OK)
        goto out;
    h = curl_easy_init();
    if (h == NULL) {
        rc = fa_err_set(err, FA_ENOMEM, "out of memory fetching %s", x.shown);
        goto out;
    }
    rc = fa_fetch_guard_setopt(h, &x.guard, err);
    if (rc != FA_OK)
        goto out;
    cc = fetch_setopt_limits(h, opts);
    if (cc == CURLE_OK)
        cc = fetch_setopt_io(h, &x, norm);
    if (cc != CURLE_OK) {
        rc = fa_err_set(err, FA_EINTERNAL, "curl_easy_setopt: %s", curl_easy_strerror(cc));
        goto out;
    }
    cc = curl_easy_perform(h);
    rc = fetch_map_result(h, cc, &x, err);
    if (rc != FA_OK)
        goto out;
    *bytes = fa_buf_take(&x.body, n); /* ownership moves to the caller */
out:
    fa_buf_cleanup(&x.body);
    curl_easy_cleanup(h);
    curl_free(norm);
    return rc;
}

enum fa_rc fa_fetch_url_parse(const char *url, char **norm, struct fa_err *err)
{
    char shown[FA_FETCH_URL_SHOWN];

    fa_fetch_url_excerpt(url, shown, sizeof shown);
    return fetch_url_check(url, shown, norm, err);
}
