/*
 * fuzz_datauri.c — data: URIs (src/fetch/datauri.c) and the magic-byte check
 * of fa_fetch_image (src/fetch/fetch.c), on fuzzed URIs (libFuzzer).
 *
 * The input is the URI text. Only inputs that start with "data:" go to
 * fa_fetch_image: anything else would be fetched over http(s).
 *
 * Checks beyond ASan/UBSan: the decoded size never passes the cap; a success
 * hands back bytes that look like an image and that are exactly what an
 * independent decode of the payload gives (libsodium's base64 with the same
 * rules); a failure hands back nothing and names the problem.
 */
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fetch/fetch_int.h"

#define FUZZ_MAX_BYTES 1024

static void fail(const char *why)
{
    fprintf(stderr, "fuzz_datauri: %s\n", why);
    abort();
}

/* The payload after the first ',' decoded by libsodium directly, padded or
 * not; NULL when neither form decodes. */
static unsigned char *reference_decode(const char *uri, size_t *n)
{
    const char *payload = strchr(uri, ',') + 1;
    size_t len = strlen(payload);
    unsigned char *bin = malloc(len + 1);
    if (bin == NULL)
        return NULL;
    if (sodium_base642bin(bin, len + 1, payload, len, " \t\r\n", n, NULL,
                          sodium_base64_VARIANT_ORIGINAL) == 0 ||
        sodium_base642bin(bin, len + 1, payload, len, " \t\r\n", n, NULL,
                          sodium_base64_VARIANT_ORIGINAL_NO_PADDING) == 0)
        return bin;
    free(bin);
    return NULL;
}

static void check_success(const char *uri, const uint8_t *bytes, size_t n)
{
    size_t ref_n = 0;
    unsigned char *ref;
    if (bytes == NULL || n == 0)
        fail("success without bytes");
    if (n > FUZZ_MAX_BYTES)
        fail("decoded more than the cap");
    ref = reference_decode(uri, &ref_n);
    if (ref == NULL || ref_n != n || memcmp(ref, bytes, n) != 0)
        fail("decoded bytes differ from libsodium's own decode of the payload");
    free(ref);
}

/* The fetcher's options, worked out at the first input (not per input). */
static const struct fa_fetch_opts *fuzz_opts(void)
{
    static struct fa_fetch_opts opts;
    static int ready;
    if (!ready) {
        fa_fetch_opts_default(&opts);
        opts.max_bytes = FUZZ_MAX_BYTES;
        ready = 1;
    }
    return &opts;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fa_err err = {{0}};
    uint8_t *bytes = (uint8_t *)"not touched";
    size_t n = 1;
    enum fa_rc rc;
    char *uri = malloc(size + 1);
    if (uri == NULL)
        return 0;
    memcpy(uri, data, size);
    uri[size] = '\0';
    if (strlen(uri) == size && fa_fetch_is_data_uri(uri)) {
        rc = fa_fetch_image(uri, fuzz_opts(), &bytes, &n, &err);
        if (rc == FA_OK) {
            check_success(uri, bytes, n);
        } else {
            if (bytes != NULL || n != 0)
                fail("failure left bytes behind");
            if (err.msg[0] == '\0')
                fail("failure without a message");
            if (strstr(err.msg, uri + 5) != NULL && size > 16)
                fail("message quotes the URI");
        }
        free(bytes);
    }
    free(uri);
    return 0;
}
