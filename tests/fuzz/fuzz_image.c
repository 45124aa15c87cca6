/*
 * fuzz_image.c — image sniffing on fuzzed bytes (libFuzzer): the header
 * probe (fa_image_probe, src/vision/probe.cpp), the decoder behind it
 * (fa_image_decode: probe, pixel cap, JPEG completeness, OpenCV, EXIF
 * orientation) and the magic-byte check of the fetcher (src/fetch/fetch.c),
 * which sees every downloaded or data: image first.
 *
 * The decoder runs with a pixel cap of 256 x 256 so that a fuzzed header
 * claiming a huge image is refused by the cap (as in the server) and small
 * ones are decoded for real.
 *
 * Properties checked: a probe that succeeds gives a known kind and positive
 * dimensions, and a failed one zeroes them and says why; whatever the probe
 * accepts, the fetcher's magic check accepts too (else the server would
 * refuse at the door an image it could decode); a decoded image has sides
 * that match the header's (swapped when EXIF rotates it) and fits the cap.
 */
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faceauth/fetch.h"
#include "faceauth/vision.h"

#define FUZZ_MAX_PIXELS (256L * 256L)
#define FUZZ_DATA_PREFIX "data:image/x;base64,"

static void fail(const char *why, const char *detail)
{
    fprintf(stderr, "fuzz_image: %s: %s\n", why, detail);
    abort();
}

/* The fetcher's options: the defaults, worked out once (not per input). */
static struct fa_fetch_opts g_opts;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    if (sodium_init() < 0)
        fail("sodium_init", "");
    fa_fetch_opts_default(&g_opts);
    return 0;
}

/* Whether fa_fetch_image lets these bytes through (as a data: URI). */
static int fetch_accepts(const uint8_t *data, size_t size)
{
    size_t prefix = sizeof FUZZ_DATA_PREFIX - 1;
    size_t b64 = sodium_base64_ENCODED_LEN(size, sodium_base64_VARIANT_ORIGINAL);
    char *uri = malloc(prefix + b64);
    uint8_t *bytes = NULL;
    size_t n = 0;
    enum fa_rc rc;
    if (uri == NULL)
        return 1;
    memcpy(uri, FUZZ_DATA_PREFIX, prefix);
    sodium_bin2base64(uri + prefix, b64, data, size, sodium_base64_VARIANT_ORIGINAL);
    rc = fa_fetch_image(uri, &g_opts, &bytes, &n, NULL);
    if (rc == FA_OK && (n != size || memcmp(bytes, data, size) != 0))
        fail("data: round trip changed the bytes", "");
    free(bytes);
    free(uri);
    return rc == FA_OK;
}

static void check_decode(const uint8_t *data, size_t size, const struct fa_image_info *info)
{
    struct fa_image *img = NULL;
    struct fa_err err = {{0}};
    enum fa_rc rc = fa_image_decode(data, size, FUZZ_MAX_PIXELS, &img, &err);
    if (rc != FA_OK) {
        if (img != NULL || err.msg[0] == '\0')
            fail("decode failure left an image or gave no message", err.msg);
        return;
    }
    int w = fa_image_width(img), h = fa_image_height(img);
    if ((long)w * h > FUZZ_MAX_PIXELS)
        fail("decoded past the pixel cap", "");
    if (!((w == info->width && h == info->height) || (w == info->height && h == info->width)))
        fail("decoded size differs from the header's", fa_image_kind_name(info->kind));
    fa_image_free(img);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fa_image_info info;
    struct fa_err err = {{0}};
    enum fa_rc rc = fa_image_probe(data, size, &info, &err);
    if (rc == FA_OK) {
        if (info.kind == FA_IMG_UNKNOWN || info.width <= 0 || info.height <= 0)
            fail("probe accepted without a kind or dimensions", "");
        if (!fetch_accepts(data, size))
            fail("the fetcher refuses bytes the probe accepts", fa_image_kind_name(info.kind));
    } else if (rc != FA_EIMAGE || info.width != 0 || info.height != 0 || err.msg[0] == '\0') {
        fail("probe failure is not FA_EIMAGE with zero dimensions and a message", err.msg);
    }
    if (rc == FA_OK)
        check_decode(data, size, &info);
    return 0;
}
