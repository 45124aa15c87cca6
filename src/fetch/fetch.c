/*
 * fetch.c — fa_fetch_image: bring the bytes named by a client's URL.
 *
 * DESIGN. Two bringers share one contract (fetch_int.h): transfer.c for
 * http(s) and datauri.c for data: URIs. This file picks one, then applies the
 * one check they share, the magic bytes, so a page of HTML or a PDF never
 * reaches the decoder. The sniff is a local copy of four signatures rather
 * than a call into vision: the two modules stay independent, and the decoder
 * re-probes anyway.
 */
#include "faceauth/fetch.h"

#include <assert.h>
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "faceauth/config.h"
#include "fetch_int.h"

#define FETCH_URL_SHOW_CHARS 80

/* Not a config key: a host that has not answered in 5 s will not deliver
 * an image in the rest of fetch_timeout_ms either. */
#define FETCH_CONNECT_TIMEOUT_MS 5000

void fa_fetch_opts_from_config(const struct fa_config *cfg, struct fa_fetch_opts *opts)
{
    assert(cfg != NULL && opts != NULL);
    opts->max_bytes = cfg->max_image_bytes;
    opts->timeout_ms = cfg->fetch_timeout_ms;
    opts->connect_timeout_ms = FETCH_CONNECT_TIMEOUT_MS;
    opts->max_redirects = cfg->max_redirects;
    opts->allow_private = cfg->allow_private_urls;
}

void fa_fetch_opts_default(struct fa_fetch_opts *opts)
{
    struct fa_config cfg;
    fa_config_defaults(&cfg);
    fa_fetch_opts_from_config(&cfg, opts);
}

enum fa_rc fa_fetch_global_init(void)
{
    /* Not thread-safe in curl 7.88, hence "before any thread starts". */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return FA_EINTERNAL;
    return FA_OK;
}

void fa_fetch_global_cleanup(void)
{
    curl_global_cleanup();
}

void fa_fetch_url_excerpt(const char *url, char *out, size_t cap)
{
    size_t i;

    assert(cap >= FA_FETCH_URL_SHOWN);
    for (i = 0; url[i] != '\0' && i < FETCH_URL_SHOW_CHARS; i++) {
        unsigned char c = (unsigned char)url[i];
        out[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (url[i] != '\0') {
        memcpy(out + i, "...", 3);
        i += 3;
    }
    out[i] = '\0';
}

/* JPEG, PNG, WebP or BMP by their first bytes. */
static int fetch_looks_like_image(const uint8_t *b, size_t n)
{
    static const uint8_t png[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};

    if (n >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff)
        return 1;
    if (n >= sizeof png && memcmp(b, png, sizeof png) == 0)
        return 1;
    if (n >= 12 && memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WEBP", 4) == 0)
        return 1;
    return n >= 2 && b[0] == 'B' && b[1] == 'M';
}

/* A data: URI is never quoted: it is the body. */
static enum fa_rc fetch_not_image(const char *url, int is_data, struct fa_err *err)
{
    char shown[FA_FETCH_URL_SHOWN];

    if (is_data)
        return fa_err_set(err, FA_EIMAGE,
                          "content of data URI is not an image (JPEG, PNG, WebP or BMP)");
    fa_fetch_url_excerpt(url, shown, sizeof shown);
    return fa_err_set(err, FA_EIMAGE, "content at URL is not an image (JPEG, PNG, WebP or BMP): %s",
                      shown);
}

enum fa_rc fa_fetch_image(const char *url, const struct fa_fetch_opts *opts, uint8_t **bytes,
                          size_t *n, struct fa_err *err)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int is_data;
    enum fa_rc rc;

    assert(opts != NULL && bytes != NULL && n != NULL);
    *bytes = NULL;
    *n = 0;
    if (url == NULL || url[0] == '\0')
        return fa_err_set(err, FA_EINVAL, "url: missing or empty");

    is_data = fa_fetch_is_data_uri(url);
    if (is_data)
        rc = fa_fetch_data_uri(url, opts->max_bytes, &buf, &len, err);
    else
        rc = fa_fetch_http(url, opts, &buf, &len, err);
    if (rc != FA_OK)
        goto out;

    if (!fetch_looks_like_image(buf, len)) {
        rc = fetch_not_image(url, is_data, err);
        goto out;
    }
    *bytes = buf; /* ownership moves to the caller */
    *n = len;
    buf = NULL;
out:
    free(buf);
    return rc;
}
