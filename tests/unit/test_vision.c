/*
 * test_vision.c — unit tests of src/vision/ (include/faceauth/vision.h).
 *
 * Needs the models (FA_MODEL_DIR) and the six demo photos (FA_TEST_ASSETS),
 * which set-up fetches: when they are missing the test FAILS, it does not
 * skip, so a broken set-up cannot pass CI. Only the comparison with
 * models-ref/reference.json is optional, because that folder exists on
 * developer and CI machines but not on a user's.
 *
 * What is checked:
 *   - the header probe on hand-made JPEG/PNG/BMP/WebP headers, on every
 *     prefix of them (truncation), on random corruptions (under ASan an
 *     out-of-bounds read fails the run) and on real encoded files;
 *   - the pixel cap is applied before decoding;
 *   - exact face counts on the demo photos, and that the same face survives
 *     re-encoding, rescaling and a brightness shift (cosine > 0.42) while
 *     different faces stay below 0.42;
 *   - embeddings of the reference chips to 1e-3 per component;
 *   - thumbnails, quality numbers and argument errors.
 */
#include "faceauth/vision.h"
#include "vision/vision_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "tap.h"
#include "testutil.h"

#define N_SAMPLES 6
#define THRESHOLD 0.42f  /* the decision threshold the tests hold the model to */
#define MAX_PIXELS 40000000L

#ifndef FA_REF_DIR
#define FA_REF_DIR "/work/shared/models-ref"
#endif

static const int kExpectedFaces[N_SAMPLES] = {3, 3, 3, 4, 5, 4};

struct sample {
    uint8_t *bytes;
    size_t n;
    struct fa_image *img;
    struct fa_face faces[FA_MAX_FACES];
    int n_faces;
    float emb[FA_MAX_FACES][FA_EMBED_DIM];
};

/* ---------------------------------------------------------------- helpers */

/* Probe a copy that is exactly n bytes long, so that ASan catches any read
 * past the end (the original buffers are often larger than n). */
static enum fa_rc probe_exact(const uint8_t *bytes, size_t n, struct fa_image_info *info,
                              struct fa_err *err)
{
    uint8_t *copy = malloc(n > 0 ? n : 1);
    enum fa_rc rc;
    if (copy == NULL)
        return FA_ENOMEM;
    if (n > 0)
        memcpy(copy, bytes, n);
    rc = fa_image_probe(n > 0 ? copy : NULL, n, info, err);
    free(copy);
    return rc;
}

/* A small deterministic PRNG (xorshift64) so that fuzz failures repeat. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void put_le16(uint8_t *p, unsigned v) { p[0] = v & 0xff; p[1] = (v >> 8) & 0xff; }
static void put_le32(uint8_t *p, uint32_t v) { put_le16(p, v & 0xffff); put_le16(p + 2, v >> 16); }
static void put_be16(uint8_t *p, unsigned v) { p[0] = (v >> 8) & 0xff; p[1] = v & 0xff; }
static void put_be32(uint8_t *p, uint32_t v) { put_be16(p, v >> 16); put_be16(p + 2, v & 0xffff); }

/* ------------------------------------------------------ hand-made headers */

/* Each builder writes the shortest header that names the dimensions and
 * returns its length; every shorter prefix must be refused as truncated. */

static size_t make_png(uint8_t *b, uint32_t w, uint32_t h)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    memcpy(b, sig, 8);
    put_be32(b + 8, 13);
    memcpy(b + 12, "IHDR", 4);
    put_be32(b + 16, w);
    put_be32(b + 20, h);
    return 24;
}

static size_t make_bmp_info(uint8_t *b, int32_t w, int32_t h)
{
    memset(b, 0, 54);
    b[0] = 'B';
    b[1] = 'M';
    put_le32(b + 14, 40);
    put_le32(b + 18, (uint32_t)w);
    put_le32(b + 22, (uint32_t)h);
    put_le16(b + 26, 1);
    put_le16(b + 28, 24);
    return 54;
}

static size_t make_bmp_core(uint8_t *b, unsigned w, unsigned h)
{
    memset(b, 0, 26);
    b[0] = 'B';
    b[1] = 'M';
    put_le32(b + 14, 12);
    put_le16(b + 18, w);
    put_le16(b + 20, h);
    return 26;
}

static size_t make_riff(uint8_t *b, const char *fourcc)
{
    memcpy(b, "RIFF", 4);
    put_le32(b + 4, 1000);
    memcpy(b + 8, "WEBP", 4);
    memcpy(b + 12, fourcc, 4);
    put_le32(b + 16, 980);
    return 20;
}

static size_t make_webp_vp8(uint8_t *b, unsigned w, unsigned h)
{
    size_t i = make_riff(b, "VP8 ");
    b[i++] = 0x10; /* frame tag: key frame (bit 0 clear) */
    b[i++] = 0x02;
    b[i++] = 0x00;
    b[i++] = 0x9d;
    b[i++] = 0x01;
    b[i++] = 0x2a;
    put_le16(b + i, w | 0x4000); /* the top two bits are a scale: must be masked */
    put_le16(b + i + 2, h | 0x8000);
    return i + 4;
}

static size_t make_webp_vp8l(uint8_t *b, unsigned w, unsigned h)
{
    size_t i = make_riff(b, "VP8L");
    b[i++] = 0x2f;
    put_le32(b + i, (w - 1) | (h - 1) << 14 | 1u << 28); /* alpha bit set */
    return i + 4;
}

static size_t make_webp_vp8x(uint8_t *b, uint32_t w, uint32_t h)
{
    size_t i = make_riff(b, "VP8X");
    put_le32(b + i, 0x10); /* flags: alpha */
    b[i + 4] = (w - 1) & 0xff;
    b[i + 5] = ((w - 1) >> 8) & 0xff;
    b[i + 6] = ((w - 1) >> 16) & 0xff;
    b[i + 7] = (h - 1) & 0xff;
    b[i + 8] = ((h - 1) >> 8) & 0xff;
    b[i + 9] = ((h - 1) >> 16) & 0xff;
    return i + 10;
}

/* SOI, an APP0, fill bytes, a DHT (C4) and a DAC (CC) — which sit in the SOF
 * range but are tables — then a progressive SOF2 with the size. */
static size_t make_jpeg(uint8_t *b, unsigned w, unsigned h)
{
    size_t i = 0;
    static const uint8_t head[] = {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x06, 'J', 'F', 'I', 'F',
                                   0xFF, 0xFF, 0xFF, 0xC4, 0x00, 0x05, 0x00, 0x01, 0x02,
                                   0xFF, 0xCC, 0x00, 0x04, 0x00, 0x00, 0xFF, 0xC2, 0x00, 0x11, 0x08};
    memcpy(b, head, sizeof head);
    i = sizeof head;
    put_be16(b + i, h);
    put_be16(b + i + 2, w);
    return i + 4;
}

/* Check one hand-made header: the full header probes to kind and size, and
 * every shorter prefix is FA_EIMAGE. */
static void check_header(const char *name, const uint8_t *b, size_t len,
                         enum fa_image_kind kind, int w, int h)
{
    struct fa_image_info info;
    struct fa_err err = {{0}};
    enum fa_rc rc = probe_exact(b, len, &info, &err);
    tap_ok(rc == FA_OK && info.kind == kind && info.width == w && info.height == h,
           "probe %s: %s %dx%d (rc %s %s)", name, fa_image_kind_name(info.kind), info.width,
           info.height, fa_rc_name(rc), err.msg);
    int bad = 0;
    for (size_t k = 0; k < len; k++) {
        rc = probe_exact(b, k, &info, &err);
        if (rc != FA_EIMAGE || info.width != 0)
            bad++;
    }
    tap_ok(bad == 0, "probe %s: all %zu shorter prefixes are FA_EIMAGE (%d were not)", name, len, bad);
}

static void test_probe_headers(void)
{
    uint8_t b[128];
    size_t n;
    n = make_png(b, 640, 480);
    check_header("png", b, n, FA_IMG_PNG, 640, 480);
    n = make_bmp_info(b, 300, -200);
    check_header("bmp top-down", b, n, FA_IMG_BMP, 300, 200);
    n = make_bmp_info(b, 300, 200);
    check_header("bmp bottom-up", b, n, FA_IMG_BMP, 300, 200);
    n = make_bmp_core(b, 65535, 7);
    check_header("bmp core", b, n, FA_IMG_BMP, 65535, 7);
    n = make_webp_vp8(b, 16383, 1);
    check_header("webp vp8", b, n, FA_IMG_WEBP, 16383, 1);
    n = make_webp_vp8l(b, 16384, 2);
    check_header("webp vp8l", b, n, FA_IMG_WEBP, 16384, 2);
    n = make_webp_vp8x(b, 1 << 24, 3);
    check_header("webp vp8x", b, n, FA_IMG_WEBP, 1 << 24, 3);
    n = make_jpeg(b, 4000, 3000);
    check_header("jpeg", b, n, FA_IMG_JPEG, 4000, 3000);
}

/* Headers that are complete but wrong must be refused, not misread. */
static void test_probe_invalid_fields(void)
{
    uint8_t b[128];
    struct fa_image_info info;
    struct fa_err err = {{0}};
    size_t n;

    n = make_png(b, 0, 10);
    TAP_OK(probe_exact(b, n, &info, &err) == FA_EIMAGE);
    n = make_png(b, 0x80000000u, 10); /* PNG allows 2^31-1 at most */
    TAP_OK(probe_exact(b, n, &info, &err) == FA_EIMAGE);
    n = make_bmp_info(b, 10, INT32_MIN);
    TAP_OK(probe_exact(b, n, &info, &err) == FA_EIMAGE);
    n = make_bmp_info(b, -10, 10);
    TAP_OK(probe_exact(b, n, &info, &err) == FA_EIMAGE);
    n = make_bmp_info(b, 10, 10);
    put_le32(b + 14, 99); /* unknown DIB header size */
    TAP_OK(probe_exact(b, n, &info, &err) == FA_EIMAGE);
    n = make_webp_vp8(b, 10, 10);
    b[23] = 0x00; /* broken start code */
    TAP_OK(probe_exact(b, n, &info, &err) == FA_EIMAGE);
    n = make_webp_vp8(b, 10, 10);
    b[20] |= 1; /* not a key frame */
    TAP_OK(probe_exact(b, n, &info, &err) == FA_EIMAGE);
    n = make_webp_vp8l(b, 10, 10);
    b[20] = 0x2e;
    TAP_OK(probe_exact(b, n, &info, &err) == FA_EIMAGE);
    n = make_riff(b, "ALPH");
    memset(b + n, 0, 16);
    TAP_OK(probe_exact(b, n + 16, &info, &err) == FA_EIMAGE);

}

/* Broken JPEG marker streams and things that are no image at all. */
static void test_probe_invalid_jpeg(void)
{
    struct fa_image_info info;
    struct fa_err err = {{0}};
    static const uint8_t sos_first[] = {0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x08, 1, 2, 3, 4, 5, 6};
    TAP_OK(probe_exact(sos_first, sizeof sos_first, &info, &err) == FA_EIMAGE);
    static const uint8_t dnl[] = {0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 0x08, 0x00, 0x00, 0x01, 0x00};
    TAP_OK(probe_exact(dnl, sizeof dnl, &info, &err) == FA_EIMAGE); /* height 0: DNL */
    static const uint8_t bad_len[] = {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x01, 0, 0, 0, 0};
    TAP_OK(probe_exact(bad_len, sizeof bad_len, &info, &err) == FA_EIMAGE);
    static const uint8_t no_marker[] = {0xFF, 0xD8, 0x12, 0x34, 0x56, 0x78};
    TAP_OK(probe_exact(no_marker, sizeof no_marker, &info, &err) == FA_EIMAGE);
    static const uint8_t all_fill[] = {0xFF, 0xD8, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
    TAP_OK(probe_exact(all_fill, sizeof all_fill, &info, &err) == FA_EIMAGE);

    static const char garbage[] = "GIF89a this is certainly not one of our four formats";
    enum fa_rc rc = probe_exact((const uint8_t *)garbage, sizeof garbage, &info, &err);
    tap_ok(rc == FA_EIMAGE && strstr(err.msg, "not a JPEG, PNG, WebP or BMP image") != NULL &&
               info.kind == FA_IMG_UNKNOWN,
           "garbage is FA_EIMAGE: %s", err.msg);
    TAP_OK(fa_image_probe(NULL, 0, &info, &err) == FA_EIMAGE);
    TAP_OK(fa_image_probe(NULL, 5, &info, &err) == FA_EINVAL);
    TAP_OK(strcmp(fa_image_kind_name(FA_IMG_WEBP), "webp") == 0);
    TAP_OK(strcmp(fa_image_kind_name(FA_IMG_UNKNOWN), "unknown") == 0);
}

/* Random corruption and truncation of real and hand-made headers: the probe
 * may accept or refuse, but must never read out of bounds (ASan) or report
 * OK without positive dimensions. */
static void fuzz_one(const uint8_t *seed, size_t n, uint64_t *rng, int rounds, int *bad)
{
    uint8_t *buf = malloc(n);
    struct fa_image_info info;
    if (buf == NULL) {
        (*bad)++;
        return;
    }
    for (int r = 0; r < rounds; r++) {
        memcpy(buf, seed, n);
        int flips = 1 + (int)(rng_next(rng) % 8);
        for (int k = 0; k < flips; k++)
            buf[rng_next(rng) % n] = (uint8_t)rng_next(rng);
        size_t len = (size_t)(rng_next(rng) % (n + 1));
        enum fa_rc rc = probe_exact(buf, len, &info, NULL);
        if (!(rc == FA_EIMAGE || (rc == FA_OK && info.width > 0 && info.height > 0)))
            (*bad)++;
    }
    free(buf);
}

static void test_probe_fuzz(const struct sample *s1)
{
    uint8_t b[128];
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    int bad = 0;
    size_t n;
    n = make_png(b, 64, 64);
    fuzz_one(b, n, &rng, 2000, &bad);
    n = make_bmp_info(b, 64, -64);
    fuzz_one(b, n, &rng, 2000, &bad);
    n = make_webp_vp8x(b, 64, 64);
    fuzz_one(b, n, &rng, 2000, &bad);
    n = make_webp_vp8(b, 64, 64);
    fuzz_one(b, n, &rng, 2000, &bad);
    n = make_jpeg(b, 64, 64);
    fuzz_one(b, n, &rng, 2000, &bad);
    if (s1->bytes != NULL) /* the real EXIF + tables header of a camera JPEG */
        fuzz_one(s1->bytes, s1->n < 6000 ? s1->n : 6000, &rng, 3000, &bad);
    tap_ok(bad == 0, "probe fuzz: 13000 corrupted headers, %d bad results", bad);
}

/* ------------------------------------------------------------ decoding */

static int load_samples(struct sample *s)
{
    int ok = 1;
    for (int i = 0; i < N_SAMPLES; i++) {
        char path[1024];
        struct fa_err err = {{0}};
        struct fa_image_info info;
        snprintf(path, sizeof path, "%s/sample%d.jpg", FA_TEST_ASSETS, i + 1);
        s[i].bytes = tu_read_file(path, &s[i].n);
        if (!tap_ok(s[i].bytes != NULL, "read %s (set-up fetches it)", path)) {
            ok = 0;
            continue;
        }
        enum fa_rc rc = fa_image_probe(s[i].bytes, s[i].n, &info, &err);
        enum fa_rc rc2 = fa_image_decode(s[i].bytes, s[i].n, MAX_PIXELS, &s[i].img, &err);
        tap_ok(rc == FA_OK && rc2 == FA_OK && info.kind == FA_IMG_JPEG &&
                   info.width == fa_image_width(s[i].img) && info.height == fa_image_height(s[i].img),
               "sample%d.jpg: probe jpeg %dx%d, decoded %dx%d (%s)", i + 1, info.width, info.height,
               fa_image_width(s[i].img), fa_image_height(s[i].img), err.msg);
        if (rc2 != FA_OK)
            ok = 0;
    }
    return ok;
}

/* The cap applies to the header's claim, before any pixel is decoded: a
 * 24-byte PNG header claiming 30000x30000 is FA_ETOOBIG, not FA_EIMAGE. */
static void test_pixel_cap(const struct sample *s)
{
    uint8_t b[64];
    struct fa_err err = {{0}};
    struct fa_image *img = NULL;
    size_t n = make_png(b, 30000, 30000);
    enum fa_rc rc = fa_image_decode(b, n, MAX_PIXELS, &img, &err);
    tap_ok(rc == FA_ETOOBIG && img == NULL && strstr(err.msg, "900000000") != NULL &&
               strstr(err.msg, "40000000") != NULL,
           "30000x30000 header over the cap before decoding: %s", err.msg);
    n = make_jpeg(b, 65535, 65535);
    TAP_OK(fa_image_decode(b, n, MAX_PIXELS, &img, &err) == FA_ETOOBIG);

    long px = (long)fa_image_width(s->img) * fa_image_height(s->img);
    rc = fa_image_decode(s->bytes, s->n, px - 1, &img, &err);
    tap_ok(rc == FA_ETOOBIG && img == NULL, "sample1 with a cap one pixel short: %s", err.msg);
    rc = fa_image_decode(s->bytes, s->n, px, &img, &err);
    tap_ok(rc == FA_OK && img != NULL, "sample1 with a cap of exactly its pixels");
    fa_image_free(img);
}

/* A truncated body must be refused: libjpeg would otherwise "decode" the
 * missing half as grey. Garbage after a valid header too. */
static void test_decode_broken(const struct sample *s)
{
    struct fa_err err = {{0}};
    struct fa_image *img = NULL;
    size_t cuts[] = {10, 1000, 5000, s->n / 2, s->n - 2};
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        enum fa_rc rc = fa_image_decode(s->bytes, cuts[k], MAX_PIXELS, &img, &err);
        tap_ok(rc == FA_EIMAGE && img == NULL, "sample1 cut to %zu bytes: %s", cuts[k], err.msg);
    }
    uint8_t b[256];
    size_t n = make_png(b, 64, 64);
    memset(b + n, 0xAB, sizeof b - n);
    enum fa_rc rc = fa_image_decode(b, sizeof b, MAX_PIXELS, &img, &err);
    tap_ok(rc == FA_EIMAGE && img == NULL, "png header + garbage: %s", err.msg);
    rc = fa_image_decode((const uint8_t *)"hello", 5, MAX_PIXELS, &img, &err);
    TAP_OK(rc == FA_EIMAGE && img == NULL);
}

/* Encode a real picture in each format: the probe must recognise what the
 * encoders actually write, and each must decode back to the same size. */
static void test_encode_formats(const struct sample *s)
{
    struct fa_err err = {{0}};
    struct fa_image *small = NULL;
    static const enum fa_image_kind kinds[] = {FA_IMG_JPEG, FA_IMG_PNG, FA_IMG_WEBP, FA_IMG_BMP};
    if (!tap_ok(fa_image_adjust(s->img, 0.25, 0, &small, &err) == FA_OK, "adjust: %s", err.msg))
        return;
    int w = fa_image_width(small), h = fa_image_height(small);
    tap_ok(w == (fa_image_width(s->img) + 2) / 4 && h == (fa_image_height(s->img) + 2) / 4,
           "adjust 0.25 gives %dx%d", w, h);
    for (size_t k = 0; k < 4; k++) {
        uint8_t *bytes = NULL;
        size_t n = 0;
        struct fa_image_info info = {FA_IMG_UNKNOWN, 0, 0};
        struct fa_image *back = NULL;
        enum fa_rc rc = fa_image_encode(small, kinds[k], 80, &bytes, &n, &err);
        if (rc == FA_OK)
            rc = probe_exact(bytes, n, &info, &err);
        if (rc == FA_OK)
            rc = fa_image_decode(bytes, n, MAX_PIXELS, &back, &err);
        tap_ok(rc == FA_OK && info.kind == kinds[k] && info.width == w && info.height == h &&
                   fa_image_width(back) == w && fa_image_height(back) == h,
               "encode %s (%zu bytes): probe %s %dx%d, decode %dx%d (%s)",
               fa_image_kind_name(kinds[k]), n, fa_image_kind_name(info.kind), info.width,
               info.height, fa_image_width(back), fa_image_height(back), err.msg);
        fa_image_free(back);
        free(bytes);
    }
    uint8_t *bytes = NULL;
    size_t n = 0;
    TAP_OK(fa_image_encode(small, FA_IMG_JPEG, 0, &bytes, &n, &err) == FA_EINVAL && bytes == NULL);
    TAP_OK(fa_image_encode(small, FA_IMG_UNKNOWN, 80, &bytes, &n, &err) == FA_EINVAL);
    TAP_OK(fa_image_adjust(small, 0.0, 0, &(struct fa_image *){NULL}, &err) == FA_EINVAL);
    TAP_OK(fa_image_adjust(small, 1.0, 300, &(struct fa_image *){NULL}, &err) == FA_EINVAL);
    fa_image_free(small);
}

/* fa_image_from_bgr honours the stride and copies the pixels. */
static void test_from_bgr(void)
{
    uint8_t px[3 * 16]; /* 3 rows of 4 pixels, stride 16 bytes */
    struct fa_image *img = NULL, *back = NULL;
    struct fa_err err = {{0}};
    uint8_t *bmp = NULL;
    size_t n = 0;
    for (size_t i = 0; i < sizeof px; i++)
        px[i] = (uint8_t)(i * 7);
    TAP_OK(fa_image_from_bgr(px, 4, 3, 16, &img, &err) == FA_OK);
    TAP_OK(fa_image_width(img) == 4 && fa_image_height(img) == 3);
    TAP_OK(fa_image_encode(img, FA_IMG_BMP, 0, &bmp, &n, &err) == FA_OK);
    TAP_OK(fa_image_decode(bmp, n, 100, &back, &err) == FA_OK && fa_image_width(back) == 4);
    TAP_OK(fa_image_from_bgr(px, 4, 3, 11, &(struct fa_image *){NULL}, &err) == FA_EINVAL);
    TAP_OK(fa_image_from_bgr(NULL, 4, 3, 16, &(struct fa_image *){NULL}, &err) == FA_EINVAL);
    TAP_OK(fa_image_width(NULL) == 0);
    fa_image_free(back);
    fa_image_free(img);
    fa_image_free(NULL);
    free(bmp);
}

/* ------------------------------------------------------------- faces */

static float iou(const struct fa_face *a, const struct fa_face *b)
{
    float ix = fminf(a->x2, b->x2) - fmaxf(a->x1, b->x1);
    float iy = fminf(a->y2, b->y2) - fmaxf(a->y1, b->y1);
    if (ix <= 0 || iy <= 0)
        return 0;
    float inter = ix * iy;
    float ua = (a->x2 - a->x1) * (a->y2 - a->y1) + (b->x2 - b->x1) * (b->y2 - b->y1) - inter;
    return inter / ua;
}

/* Plausibility of one detected face: inside the image, eyes inside the box
 * and left of each other as iBUG says, a sane eye distance. */
static int face_sane(const struct fa_face *f, int w, int h)
{
    float ex1 = 0, ex2 = 0, ey = 0;
    for (int i = 0; i < 6; i++) {
        ex1 += f->landmarks[36 + i][0] / 6;
        ex2 += f->landmarks[42 + i][0] / 6;
        ey += (f->landmarks[36 + i][1] + f->landmarks[42 + i][1]) / 12;
    }
    return f->x1 >= 0 && f->y1 >= 0 && f->x2 <= w && f->y2 <= h && f->x2 > f->x1 &&
           f->y2 > f->y1 && f->score >= 0.65f && f->score <= 1.0f && ex1 < ex2 && ex1 > f->x1 &&
           ex2 < f->x2 && ey > f->y1 && ey < f->y2 && f->eye_distance > 0.15f * (f->x2 - f->x1) &&
           f->eye_distance < 0.8f * (f->x2 - f->x1);
}

static void test_detect(struct fa_engine *eng, struct sample *s)
{
    for (int i = 0; i < N_SAMPLES; i++) {
        struct fa_err err = {{0}};
        enum fa_rc rc = fa_detect(eng, s[i].img, s[i].faces, FA_MAX_FACES, &s[i].n_faces, &err);
        tap_ok(rc == FA_OK && s[i].n_faces == kExpectedFaces[i], "sample%d.jpg: %d faces (want %d) %s",
               i + 1, s[i].n_faces, kExpectedFaces[i], err.msg);
        int sane = 1, sorted = 1;
        for (int k = 0; k < s[i].n_faces; k++) {
            const struct fa_face *f = &s[i].faces[k];
            sane &= face_sane(f, fa_image_width(s[i].img), fa_image_height(s[i].img));
            if (k > 0) {
                const struct fa_face *p = &s[i].faces[k - 1];
                sorted &= (p->x2 - p->x1) * (p->y2 - p->y1) >= (f->x2 - f->x1) * (f->y2 - f->y1);
            }
        }
        tap_ok(sane && sorted,
               "sample%d.jpg: faces inside the image, eyes inside boxes, largest first", i + 1);
    }
    /* fewer slots than faces: the count is still complete, the first is the same */
    struct fa_face one;
    int n = 0;
    TAP_OK(fa_detect(eng, s[4].img, &one, 1, &n, NULL) == FA_OK && n == 5 &&
           memcmp(&one, &s[4].faces[0], sizeof one) == 0);
    TAP_OK(fa_detect(eng, s[4].img, NULL, 0, &n, NULL) == FA_OK && n == 5);
    TAP_OK(fa_detect(eng, s[4].img, NULL, 3, &n, NULL) == FA_EINVAL);
}

/* Embed every face; each embedding is a unit vector. */
static int embed_all(struct fa_engine *eng, struct sample *s)
{
    int ok = 1;
    for (int i = 0; i < N_SAMPLES; i++)
        for (int k = 0; k < s[i].n_faces; k++) {
            double sq = 0;
            if (fa_embed(eng, s[i].img, &s[i].faces[k], s[i].emb[k], NULL) != FA_OK)
                ok = 0;
            for (int d = 0; d < FA_EMBED_DIM; d++)
                sq += (double)s[i].emb[k][d] * s[i].emb[k][d];
            if (fabs(sq - 1.0) > 1e-4)
                ok = 0;
        }
    tap_ok(ok, "embedded all faces, each of unit length");
    return ok;
}

/* Index of the face whose box centre has the given rank from the left. */
static int face_by_x_rank(const struct sample *s, int rank)
{
    for (int k = 0; k < s->n_faces; k++) {
        int left = 0;
        float ck = s->faces[k].x1 + s->faces[k].x2;
        for (int j = 0; j < s->n_faces; j++)
            left += s->faces[j].x1 + s->faces[j].x2 < ck;
        if (left == rank)
            return k;
    }
    return -1;
}

/* Every pair of different faces among the 22 stays under the threshold,
 * except one pair MODELS.md identifies as (apparently) the same woman:
 * the right-most face of sample1 and the middle one of sample3. */
static void test_impostors(const struct sample *s)
{
    int look_a = face_by_x_rank(&s[0], s[0].n_faces - 1);
    int look_b = face_by_x_rank(&s[2], 1);
    float worst = -1, lookalike = 0;
    int over = 0, pairs = 0;
    for (int i = 0; i < N_SAMPLES; i++)
        for (int k = 0; k < s[i].n_faces; k++)
            for (int j = i; j < N_SAMPLES; j++)
                for (int l = (j == i ? k + 1 : 0); l < s[j].n_faces; l++) {
                    float c = fa_cosine(s[i].emb[k], s[j].emb[l], FA_EMBED_DIM);
                    if (i == 0 && j == 2 && k == look_a && l == look_b) {
                        lookalike = c;
                        continue;
                    }
                    pairs++;
                    over += c >= THRESHOLD;
                    worst = fmaxf(worst, c);
                }
    tap_ok(pairs == 230 && over == 0, "impostors: %d pairs, %d at or over %.2f, highest %.3f", pairs,
           over, THRESHOLD, worst);
    tap_diag("look-alike pair sample1 right / sample3 middle: %.3f (MODELS.md: 0.62)", lookalike);
}

/* Re-encode a sample the way a second upload might differ, detect again and
 * match each original face to the new face with the best box overlap. */
static void check_genuine(struct fa_engine *eng, const struct sample *s, int idx, double scale,
                          int shift, enum fa_image_kind kind, int quality, float *lowest, int *bad)
{
    struct fa_image *adj = NULL, *back = NULL;
    uint8_t *bytes = NULL;
    size_t n = 0;
    struct fa_face faces[FA_MAX_FACES];
    int nf = 0;
    float emb[FA_EMBED_DIM];
    if (fa_image_adjust(s->img, scale, shift, &adj, NULL) != FA_OK ||
        fa_image_encode(adj, kind, quality, &bytes, &n, NULL) != FA_OK ||
        fa_image_decode(bytes, n, MAX_PIXELS, &back, NULL) != FA_OK ||
        fa_detect(eng, back, faces, FA_MAX_FACES, &nf, NULL) != FA_OK) {
        (*bad)++;
        goto out;
    }
    for (int k = 0; k < s->n_faces; k++) {
        struct fa_face want = s->faces[k];
        int best = -1;
        float best_iou = 0.3f;
        want.x1 *= scale, want.y1 *= scale, want.x2 *= scale, want.y2 *= scale;
        for (int j = 0; j < nf; j++)
            if (iou(&want, &faces[j]) > best_iou) {
                best_iou = iou(&want, &faces[j]);
                best = j;
            }
        if (best < 0 || fa_embed(eng, back, &faces[best], emb, NULL) != FA_OK) {
            tap_diag("sample%d face %d lost after re-encoding", idx + 1, k);
            (*bad)++;
            continue;
        }
        float c = fa_cosine(s->emb[k], emb, FA_EMBED_DIM);
        *lowest = fminf(*lowest, c);
        *bad += c <= THRESHOLD;
    }
out:
    fa_image_free(back);
    free(bytes);
    fa_image_free(adj);
}

static void test_genuine(struct fa_engine *eng, const struct sample *s)
{
    float low1 = 2, low2 = 2;
    int bad1 = 0, bad2 = 0;
    for (int i = 0; i < N_SAMPLES; i++) {
        check_genuine(eng, &s[i], i, 0.6, 25, FA_IMG_JPEG, 60, &low1, &bad1);
        check_genuine(eng, &s[i], i, 0.8, -30, FA_IMG_WEBP, 75, &low2, &bad2);
    }
    tap_ok(bad1 == 0, "genuine, 60%% scale, +25 brightness, JPEG q60: all 22 over %.2f, lowest %.3f",
           THRESHOLD, low1);
    tap_ok(bad2 == 0, "genuine, 80%% scale, -30 brightness, WebP q75: all 22 over %.2f, lowest %.3f",
           THRESHOLD, low2);
}

/* Sharpness and brightness on the aligned chip; a blurred copy (shrunk to an
 * eighth and blown up again, same geometry) must score as less sharp. */
static void test_quality(const struct sample *s)
{
    struct fa_image *small = NULL, *blurred = NULL;
    struct fa_err err = {{0}};
    float sharp = 0, bright = 0, sharp_b = 0, bright_b = 0;
    const struct fa_face *f = &s->faces[0];
    TAP_OK(fa_face_quality(s->img, f, &sharp, &bright, &err) == FA_OK);
    tap_ok(sharp > 0 && bright > 0 && bright < 255, "quality: sharpness %.1f brightness %.1f", sharp, bright);
    if (fa_image_adjust(s->img, 0.125, 0, &small, &err) == FA_OK &&
        fa_image_adjust(small, 8.0, 0, &blurred, &err) == FA_OK &&
        fa_face_quality(blurred, f, &sharp_b, &bright_b, &err) == FA_OK)
        tap_ok(sharp_b < sharp / 2, "blurred copy: sharpness %.1f < %.1f / 2", sharp_b, sharp);
    else
        tap_ok(0, "blurred copy: %s", err.msg);
    struct fa_face flat = *f;
    for (int i = 0; i < 68; i++)
        flat.landmarks[i][0] = flat.landmarks[i][1] = 5.0f;
    TAP_OK(fa_face_quality(s->img, &flat, &sharp, &bright, &err) == FA_EINVAL);
    fa_image_free(blurred);
    fa_image_free(small);
}

static void check_thumb(const struct fa_image *img, const struct fa_face *f, int size, const char *what)
{
    uint8_t *jpeg = NULL;
    size_t n = 0;
    struct fa_err err = {{0}};
    struct fa_image_info info = {FA_IMG_UNKNOWN, 0, 0};
    enum fa_rc rc = fa_thumbnail_jpeg(img, f, size, &jpeg, &n, &err);
    if (rc == FA_OK)
        rc = fa_image_probe(jpeg, n, &info, &err);
    tap_ok(rc == FA_OK && n > 2 && jpeg[0] == 0xFF && jpeg[1] == 0xD8 && info.kind == FA_IMG_JPEG &&
               info.width == size && info.height == size,
           "thumbnail %s: %zu bytes, %s %dx%d %s", what, n, fa_image_kind_name(info.kind), info.width,
           info.height, err.msg);
    free(jpeg);
}

static void test_thumbnail(const struct sample *s)
{
    struct fa_face corner = s->faces[0], huge = s->faces[0], empty = s->faces[0];
    uint8_t *jpeg = NULL;
    size_t n = 0;
    check_thumb(s->img, &s->faces[0], 160, "largest face");
    corner.x1 = 0, corner.y1 = 0, corner.x2 = 40, corner.y2 = 90;
    check_thumb(s->img, &corner, 96, "box in a corner");
    huge.x1 = 0, huge.y1 = 0, huge.x2 = (float)fa_image_width(s->img), huge.y2 = 900;
    check_thumb(s->img, &huge, 128, "box wider than the image is high");
    empty.x2 = empty.x1;
    TAP_OK(fa_thumbnail_jpeg(s->img, &empty, 64, &jpeg, &n, NULL) == FA_EINVAL && jpeg == NULL);
    TAP_OK(fa_thumbnail_jpeg(s->img, &s->faces[0], 0, &jpeg, &n, NULL) == FA_EINVAL);
}

/* ------------------------------------------------------- reference data */

/* arr[i] as a number; NaN (which fails every comparison) when missing. */
static double json_num(const cJSON *arr, int i)
{
    const cJSON *v = cJSON_GetArrayItem(arr, i);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* The reference embedding of one chip, to 1e-3 per component. */
static double check_ref_chip(struct fa_engine *eng, const cJSON *item, float out[FA_EMBED_DIM])
{
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(item, "name");
    const cJSON *want = cJSON_GetObjectItemCaseSensitive(item, "embedding512");
    char path[1024];
    size_t n = 0;
    struct fa_image *chip = NULL;
    double worst = INFINITY;
    if (!cJSON_IsString(name) || !cJSON_IsArray(want) || cJSON_GetArraySize(want) != FA_EMBED_DIM)
        return worst;
    snprintf(path, sizeof path, "%s/%s_chip112.png", FA_REF_DIR, name->valuestring);
    uint8_t *bytes = tu_read_file(path, &n);
    if (bytes != NULL && fa_image_decode(bytes, n, MAX_PIXELS, &chip, NULL) == FA_OK &&
        fa_embed_chip(eng, chip, out, NULL) == FA_OK) {
        worst = 0;
        for (int d = 0; d < FA_EMBED_DIM; d++) {
            double diff = fabs(out[d] - json_num(want, d));
            worst = diff <= worst ? worst : diff; /* a NaN difference sticks */
        }
    }
    fa_image_free(chip);
    free(bytes);
    return worst;
}

/* When the photo the reference came from is on this machine, run the whole
 * detector and landmark stage on it too (the JSON rounds to 0.01 px). */
static void check_ref_photo(struct fa_engine *eng, const cJSON *item)
{
    const cJSON *image = cJSON_GetObjectItemCaseSensitive(item, "image");
    const cJSON *box = cJSON_GetObjectItemCaseSensitive(item, "box_x1y1x2y2");
    const cJSON *lm = cJSON_GetObjectItemCaseSensitive(item, "landmarks68");
    char path[1024];
    size_t n = 0;
    struct fa_image *img = NULL;
    struct fa_face f;
    int nf = 0;
    if (!cJSON_IsString(image) || cJSON_GetArraySize(box) != 4 || cJSON_GetArraySize(lm) != 68)
        return;
    snprintf(path, sizeof path, "%s/%s", FA_REF_DIR, image->valuestring);
    uint8_t *bytes = tu_read_file(path, &n);
    if (bytes == NULL) {
        tap_diag("no %s here: photo-level reference check skipped", path);
        return;
    }
    double worst = INFINITY;
    if (fa_image_decode(bytes, n, MAX_PIXELS, &img, NULL) == FA_OK &&
        fa_detect(eng, img, &f, 1, &nf, NULL) == FA_OK && nf >= 1) {
        float got[4] = {f.x1, f.y1, f.x2, f.y2};
        worst = 0;
        for (int i = 0; i < 4; i++) {
            double d = fabs(got[i] - json_num(box, i));
            worst = d <= worst ? worst : d; /* a NaN difference sticks */
        }
        for (int i = 0; i < 68; i++)
            for (int c = 0; c < 2; c++) {
                double d = fabs(f.landmarks[i][c] - json_num(cJSON_GetArrayItem(lm, i), c));
                worst = d <= worst ? worst : d;
            }
    }
    tap_ok(worst <= 0.011, "reference photo %s: box and landmarks within %.4f px", image->valuestring, worst);
    fa_image_free(img);
    free(bytes);
}

static void test_reference(struct fa_engine *eng)
{
    struct stat st;
    float emb[4][FA_EMBED_DIM];
    if (stat(FA_REF_DIR, &st) != 0) {
        tap_diag("%s is absent (normal on a user's machine): reference check skipped", FA_REF_DIR);
        return;
    }
    cJSON *root = tu_read_json(FA_REF_DIR "/reference.json");
    if (!tap_ok(cJSON_IsArray(root) && cJSON_GetArraySize(root) == 4, "reference.json has 4 faces"))
        goto out;
    for (int i = 0; i < 4; i++) {
        const cJSON *item = cJSON_GetArrayItem(root, i);
        double worst = check_ref_chip(eng, item, emb[i]);
        tap_ok(worst <= 1e-3, "reference face%d: embedding of the chip within %.2e of reference.json",
               i + 1, worst);
        check_ref_photo(eng, item);
    }
    float c12 = fa_cosine(emb[0], emb[1], FA_EMBED_DIM), c34 = fa_cosine(emb[2], emb[3], FA_EMBED_DIM);
    tap_ok(fabsf(c12 - 0.539f) < 0.002f && fabsf(c34 - 0.862f) < 0.002f,
           "reference pair scores %.3f and %.3f (MODELS.md: 0.539, 0.862)", c12, c34);
out:
    cJSON_Delete(root);
}

/* --------------------------------------------------------------- misc */

static void test_engine_errors(void)
{
    struct fa_engine *eng = NULL;
    struct fa_err err = {{0}};
    enum fa_rc rc = fa_engine_new("/nonexistent-models", &eng, &err);
    tap_ok(rc == FA_ENOTFOUND && eng == NULL && strstr(err.msg, "/nonexistent-models/fr_detect.onnx"),
           "missing model dir: %s", err.msg);
    fa_engine_free(NULL);
}

static void test_embed_errors(struct fa_engine *eng, const struct sample *s)
{
    float out[FA_EMBED_DIM];
    struct fa_err err = {{0}};
    TAP_OK(fa_embed_chip(eng, s->img, out, &err) == FA_EINVAL && strstr(err.msg, "112x112"));
    TAP_OK(fa_embed(eng, s->img, NULL, out, &err) == FA_EINVAL);
    float a[4] = {0.5f, 0.5f, 0.5f, 0.5f}, b[4] = {0.5f, -0.5f, 0.5f, -0.5f};
    TAP_OK(fabsf(fa_cosine(a, a, 4) - 1.0f) < 1e-6f && fabsf(fa_cosine(a, b, 4)) < 1e-6f);
}

int main(void)
{
    static struct sample s[N_SAMPLES]; /* 6 x 64 x 2 KB of embeddings: not on the stack */
    struct fa_engine *eng = NULL;
    struct fa_err err = {{0}};

    test_probe_headers();
    test_probe_invalid_fields();
    test_probe_invalid_jpeg();
    test_from_bgr();
    test_engine_errors();
    int have_samples = load_samples(s);
    test_probe_fuzz(&s[0]);
    enum fa_rc rc = fa_engine_new(FA_MODEL_DIR, &eng, &err);
    tap_ok(rc == FA_OK, "load models from %s (set-up fetches them): %s", FA_MODEL_DIR, err.msg);
    if (have_samples) {
        test_pixel_cap(&s[0]);
        test_decode_broken(&s[0]);
        test_encode_formats(&s[0]);
    }
    if (have_samples && eng != NULL) {
        test_detect(eng, s);
        if (embed_all(eng, s)) {
            test_impostors(s);
            test_genuine(eng, s);
        }
        test_quality(&s[0]);
        test_thumbnail(&s[0]);
        test_embed_errors(eng, &s[0]);
    }
    if (eng != NULL)
        test_reference(eng);
    for (int i = 0; i < N_SAMPLES; i++) {
        fa_image_free(s[i].img);
        free(s[i].bytes);
    }
    fa_engine_free(eng);
    return tap_done();
}
