/*
 * probe.cpp — recognise an image format and read its dimensions from the
 * header, without decoding (see fa_image_probe in vision.h).
 *
 * The bytes come straight from the network, so every read goes through a
 * bounds check against n first: a parser returns "truncated" rather than
 * reading past the end. Only four formats pass; everything else is refused
 * here, which also keeps OpenCV's other decoders (TIFF, JPEG 2000, EXR, ...)
 * away from untrusted input, since fa_image_decode probes first.
 * Nothing in this file allocates or throws.
 */
#include "vision_int.hpp"

#include <limits.h>
#include <string.h>

static const char kNotImage[] = "not a JPEG, PNG, WebP or BMP image";

static uint32_t rd_be16(const uint8_t *p) { return (uint32_t)p[0] << 8 | p[1]; }
static uint32_t rd_be32(const uint8_t *p) { return rd_be16(p) << 16 | rd_be16(p + 2); }
static uint32_t rd_le16(const uint8_t *p) { return (uint32_t)p[1] << 8 | p[0]; }
static uint32_t rd_le24(const uint8_t *p) { return (uint32_t)p[2] << 16 | rd_le16(p); }
static uint32_t rd_le32(const uint8_t *p) { return (uint32_t)p[3] << 24 | rd_le24(p); }

static enum fa_rc truncated(struct fa_err *err, const char *what)
{
    return fa_err_set(err, FA_EIMAGE, "truncated %s header", what);
}

/* Store dimensions after the format-independent sanity checks: both must be
 * positive and fit an int (a PNG may claim up to 2^31-1, a VP8X 2^24). */
static enum fa_rc set_dims(struct fa_image_info *out, uint32_t w, uint32_t h, struct fa_err *err)
{
    if (w == 0 || h == 0)
        return fa_err_set(err, FA_EIMAGE, "%s header gives a zero width or height",
                          fa_image_kind_name(out->kind));
    if (w > INT_MAX || h > INT_MAX)
        return fa_err_set(err, FA_EIMAGE, "%s header gives dimensions out of range",
                          fa_image_kind_name(out->kind));
    out->width = (int)w;
    out->height = (int)h;
    return FA_OK;
}

/* SOF0..SOF15 carry the frame size, except C4 (DHT), C8 (JPG, reserved) and
 * CC (DAC), which share the range but are tables. */
static bool jpeg_is_sof(uint8_t m)
{
    return m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
}

/* Markers that stand alone, without a length field: TEM, RST0-7, SOI. */
static bool jpeg_is_standalone(uint8_t m)
{
    return m == 0x01 || (m >= 0xD0 && m <= 0xD8);
}

/* One step of the marker walk. From *i (which must hold 0xFF, possibly
 * several fill bytes), skip standalone markers and stop at the next marker
 * that has a length field, or at EOI: *m is the marker, *i points at its
 * length field, *len is that length (0 for EOI). Each step advances by at
 * least one byte, so a walk ends within n steps. */
static enum fa_rc jpeg_next(const uint8_t *p, size_t n, size_t *i, uint8_t *m, size_t *len,
                            struct fa_err *err)
{
    for (;;) {
        if (*i >= n)
            return truncated(err, "JPEG");
        if (p[*i] != 0xFF)
            return fa_err_set(err, FA_EIMAGE, "corrupt JPEG header at byte %zu", *i);
        while (*i < n && p[*i] == 0xFF) /* a marker may be preceded by fill bytes */
            (*i)++;
        if (*i >= n)
            return truncated(err, "JPEG");
        *m = p[(*i)++];
        if (jpeg_is_standalone(*m))
            continue;
        *len = 0;
        if (*m == 0xD9)
            return FA_OK;
        if (n - *i < 2)
            return truncated(err, "JPEG");
        *len = rd_be16(p + *i);
        if (*len < 2)
            return fa_err_set(err, FA_EIMAGE, "corrupt JPEG segment length at byte %zu", *i);
        return FA_OK;
    }
}

/* Walk the segments after SOI to the first frame header and read its size. */
static enum fa_rc probe_jpeg(const uint8_t *p, size_t n, struct fa_image_info *out,
                             struct fa_err *err)
{
    size_t i = 2, len;
    uint8_t m;
    for (;;) {
        enum fa_rc rc = jpeg_next(p, n, &i, &m, &len, err);
        if (rc != FA_OK)
            return rc;
        if (m == 0xD9 || m == 0xDA)
            return fa_err_set(err, FA_EIMAGE, "JPEG has no frame header before its data");
        if (jpeg_is_sof(m)) {
            /* length(2) precision(1) height(2) width(2) */
            if (len < 7 || n - i < 7)
                return truncated(err, "JPEG");
            return set_dims(out, rd_be16(p + i + 5), rd_be16(p + i + 3), err);
        }
        if (n - i < len)
            return truncated(err, "JPEG");
        i += len;
    }
}

bool fa_vision_jpeg_complete(const uint8_t *p, size_t n) noexcept
{
    size_t i = 2, len;
    uint8_t m;
    if (n < 2 || p[0] != 0xFF || p[1] != 0xD8)
        return false;
    for (;;) {
        if (jpeg_next(p, n, &i, &m, &len, NULL) != FA_OK || m == 0xD9)
            return false;
        if (n - i < len)
            return false;
        if (m == 0xDA)
            break;
        i += len;
    }
    /* Entropy-coded data escapes every 0xFF as FF 00 and only RSTn markers
     * (FF D0..D7) may appear inside it, so FF D9 after SOS is the real end
     * (an EXIF thumbnail's own EOI comes before SOS and does not count). */
    for (i += len; i + 1 < n; i++)
        if (p[i] == 0xFF && p[i + 1] == 0xD9)
            return true;
    return false;
}

/* Signature, then the IHDR chunk, which the format requires to come first. */
static enum fa_rc probe_png(const uint8_t *p, size_t n, struct fa_image_info *out,
                            struct fa_err *err)
{
    if (n < 24)
        return truncated(err, "PNG");
    if (rd_be32(p + 8) != 13 || memcmp(p + 12, "IHDR", 4) != 0)
        return fa_err_set(err, FA_EIMAGE, "PNG does not start with a valid IHDR chunk");
    return set_dims(out, rd_be32(p + 16), rd_be32(p + 20), err);
}

/* BITMAPCOREHEADER (12 bytes, unsigned 16-bit dims) or BITMAPINFOHEADER and
 * its later extensions (40+ bytes, signed 32-bit dims; a negative height
 * means the rows are stored top-down). */
static enum fa_rc probe_bmp(const uint8_t *p, size_t n, struct fa_image_info *out,
                            struct fa_err *err)
{
    if (n < 18)
        return truncated(err, "BMP");
    uint32_t hsize = rd_le32(p + 14);
    if (hsize == 12) {
        if (n < 14 + 12)
            return truncated(err, "BMP");
        return set_dims(out, rd_le16(p + 18), rd_le16(p + 20), err);
    }
    if (hsize != 40 && hsize != 52 && hsize != 56 && hsize != 64 && hsize != 108 && hsize != 124)
        return fa_err_set(err, FA_EIMAGE, "unsupported BMP header size %u", (unsigned)hsize);
    if (n < 14 + 40)
        return truncated(err, "BMP");
    int32_t w = (int32_t)rd_le32(p + 18);
    int32_t h = (int32_t)rd_le32(p + 22);
    if (w <= 0 || h == 0 || h == INT32_MIN)
        return fa_err_set(err, FA_EIMAGE, "BMP header gives invalid dimensions");
    return set_dims(out, (uint32_t)w, (uint32_t)(h < 0 ? -h : h), err);
}

/* The first chunk after "RIFF....WEBP" says which of the three bitstreams
 * follows; each stores its size differently. */
static enum fa_rc probe_webp(const uint8_t *p, size_t n, struct fa_image_info *out,
                             struct fa_err *err)
{
    if (n < 20)
        return truncated(err, "WebP");
    const uint8_t *c = p + 20; /* chunk payload */
    if (memcmp(p + 12, "VP8 ", 4) == 0) {
        /* 3-byte frame tag (bit 0 clear on a key frame), start code, dims */
        if (n < 30)
            return truncated(err, "WebP");
        if ((c[0] & 1) != 0 || c[3] != 0x9d || c[4] != 0x01 || c[5] != 0x2a)
            return fa_err_set(err, FA_EIMAGE, "WebP VP8 data does not start with a key frame");
        return set_dims(out, rd_le16(c + 6) & 0x3fff, rd_le16(c + 8) & 0x3fff, err);
    }
    if (memcmp(p + 12, "VP8L", 4) == 0) {
        /* signature byte, then 14 bits width-1 and 14 bits height-1 */
        if (n < 25)
            return truncated(err, "WebP");
        if (c[0] != 0x2f)
            return fa_err_set(err, FA_EIMAGE, "WebP VP8L signature missing");
        uint32_t bits = rd_le32(c + 1);
        return set_dims(out, (bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1, err);
    }
    if (memcmp(p + 12, "VP8X", 4) == 0) {
        /* flags(1) reserved(3), then 24-bit canvas width-1 and height-1 */
        if (n < 30)
            return truncated(err, "WebP");
        return set_dims(out, rd_le24(c + 4) + 1, rd_le24(c + 7) + 1, err);
    }
    return fa_err_set(err, FA_EIMAGE, "WebP with an unknown first chunk");
}

/* Pick the parser by magic bytes. Short inputs that still match the start of
 * a magic are "truncated", not "unknown", so the message is more useful. */
static enum fa_rc probe_dispatch(const uint8_t *p, size_t n, struct fa_image_info *out,
                                 struct fa_err *err)
{
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (n >= 2 && p[0] == 0xFF && p[1] == 0xD8) {
        out->kind = FA_IMG_JPEG;
        return probe_jpeg(p, n, out, err);
    }
    if (n >= 8 && memcmp(p, png_sig, 8) == 0) {
        out->kind = FA_IMG_PNG;
        return probe_png(p, n, out, err);
    }
    if (n >= 2 && p[0] == 'B' && p[1] == 'M') {
        out->kind = FA_IMG_BMP;
        return probe_bmp(p, n, out, err);
    }
    if (n >= 16 && memcmp(p, "RIFF", 4) == 0 && memcmp(p + 8, "WEBP", 4) == 0) {
        out->kind = FA_IMG_WEBP;
        return probe_webp(p, n, out, err);
    }
    if (n < 16)
        return fa_err_set(err, FA_EIMAGE, "%s (only %zu bytes)", kNotImage, n);
    return fa_err_set(err, FA_EIMAGE, "%s", kNotImage);
}

extern "C" enum fa_rc fa_image_probe(const uint8_t *bytes, size_t n, struct fa_image_info *out,
                                     struct fa_err *err)
{
    try {
        if (out == NULL || (bytes == NULL && n > 0))
            return fa_err_set(err, FA_EINVAL, "fa_image_probe: no buffer");
        out->kind = FA_IMG_UNKNOWN;
        out->width = 0;
        out->height = 0;
        enum fa_rc rc = probe_dispatch(bytes, n, out, err);
        if (rc != FA_OK) {
            out->width = 0; /* never half-filled dimensions on failure */
            out->height = 0;
        }
        return rc;
    } catch (...) {
        return fa_vision_caught(err, "fa_image_probe");
    }
}

extern "C" const char *fa_image_kind_name(enum fa_image_kind kind)
{
    switch (kind) {
    case FA_IMG_JPEG: return "jpeg";
    case FA_IMG_PNG: return "png";
    case FA_IMG_WEBP: return "webp";
    case FA_IMG_BMP: return "bmp";
    default: return "unknown";
    }
}
