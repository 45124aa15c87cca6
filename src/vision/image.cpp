/*
 * image.cpp — decoding, encoding and copying images (see vision.h).
 *
 * Decoding untrusted bytes is the riskiest thing this module does, so
 * fa_image_decode never hands bytes to OpenCV before fa_image_probe has
 * recognised one of our four formats and the header's pixel count is under
 * the caller's cap: a 100-byte PNG can claim 60000x60000 and make a decoder
 * allocate 10 GB. The decoded size is checked again afterwards, because the
 * decoder does not read dimensions exactly where the probe does.
 */
#include "vision_int.hpp"

#include <stdlib.h>
#include <string.h>

#include <limits.h>
#include <new>
#include <vector>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

enum fa_rc fa_vision_caught(struct fa_err *err, const char *where) noexcept
{
    try {
        throw;
    } catch (const std::bad_alloc &) {
        return fa_err_set(err, FA_ENOMEM, "%s: out of memory", where);
    } catch (const cv::Exception &e) {
        /* e.what() repeats file and line; the bare message reads better */
        return fa_err_set(err, FA_EVISION, "%s: OpenCV: %s", where, e.err.c_str());
    } catch (const std::exception &e) {
        return fa_err_set(err, FA_EVISION, "%s: %s", where, e.what());
    } catch (...) {
        return fa_err_set(err, FA_EVISION, "%s: unknown C++ exception", where);
    }
}

/* Refuse an image over the cap; the message gives both numbers so that a
 * client knows how far to shrink. */
static enum fa_rc check_pixels(long long w, long long h, long max_pixels, struct fa_err *err)
{
    if (w * h > (long long)max_pixels)
        return fa_err_set(err, FA_ETOOBIG, "image is %lldx%lld = %lld pixels, over the limit of %ld",
                          w, h, w * h, max_pixels);
    return FA_OK;
}

/* The OpenCV part of decoding, after the probe. IMREAD_COLOR always yields
 * 8-bit BGR (grey and alpha are converted) and applies the EXIF orientation,
 * so width and height may come out swapped relative to the header. */
static enum fa_rc decode_checked(const uint8_t *bytes, size_t n, long max_pixels, int flags,
                                 cv::Mat &out, struct fa_err *err)
{
    if (n > INT_MAX) /* cv::Mat columns are int */
        return fa_err_set(err, FA_ETOOBIG, "image is %zu bytes, over the limit of %d", n, INT_MAX);
    cv::Mat buf(1, (int)n, CV_8UC1, const_cast<uint8_t *>(bytes)); /* wraps, no copy */
    out = cv::imdecode(buf, flags);
    if (out.empty())
        return fa_err_set(err, FA_EIMAGE, "image data is corrupt or truncated");
    CV_Assert(out.type() == CV_8UC3);
    return check_pixels(out.cols, out.rows, max_pixels, err);
}

/* The imdecode flag for a reduction factor; -1 when the factor is not one. */
static int reduced_flag(int reduce)
{
    switch (reduce) {
    case 1: return cv::IMREAD_COLOR;
    case 2: return cv::IMREAD_REDUCED_COLOR_2;
    case 4: return cv::IMREAD_REDUCED_COLOR_4;
    case 8: return cv::IMREAD_REDUCED_COLOR_8;
    default: return -1;
    }
}

extern "C" enum fa_rc fa_image_decode(const uint8_t *bytes, size_t n, long max_pixels,
                                      struct fa_image **out, struct fa_err *err)
{
    return fa_image_decode_reduced(bytes, n, max_pixels, 1, out, err);
}

extern "C" enum fa_rc fa_image_decode_reduced(const uint8_t *bytes, size_t n, long max_pixels,
                                              int reduce, struct fa_image **out,
                                              struct fa_err *err)
{
    try {
        if (out == NULL || reduced_flag(reduce) < 0)
            return fa_err_set(err, FA_EINVAL, "fa_image_decode_reduced: no output or reduce %d",
                              reduce);
        *out = NULL;
        struct fa_image_info info;
        enum fa_rc rc = fa_image_probe(bytes, n, &info, err);
        if (rc != FA_OK)
            return rc;
        rc = check_pixels(info.width, info.height, max_pixels, err);
        if (rc != FA_OK)
            return rc;
        if (info.kind == FA_IMG_JPEG && !fa_vision_jpeg_complete(bytes, n))
            return fa_err_set(err, FA_EIMAGE, "image data is corrupt or truncated (JPEG has no end)");
        cv::Mat m;
        rc = decode_checked(bytes, n, max_pixels, reduced_flag(reduce), m, err);
        if (rc != FA_OK)
            return rc;
        *out = new fa_image{std::move(m)};
        return FA_OK;
    } catch (...) {
        return fa_vision_caught(err, "fa_image_decode");
    }
}

extern "C" enum fa_rc fa_image_from_bgr(const uint8_t *bgr, int width, int height, size_t stride,
                                        struct fa_image **out, struct fa_err *err)
{
    try {
        if (out == NULL)
            return fa_err_set(err, FA_EINVAL, "fa_image_from_bgr: no output");
        *out = NULL;
        if (bgr == NULL || width <= 0 || height <= 0 || stride < (size_t)width * 3)
            return fa_err_set(err, FA_EINVAL, "fa_image_from_bgr: bad buffer or %dx%d stride %zu",
                              width, height, stride);
        /* wrap the caller's rows, then clone so we own a continuous copy */
        cv::Mat wrap(height, width, CV_8UC3, const_cast<uint8_t *>(bgr), stride);
        *out = new fa_image{wrap.clone()};
        return FA_OK;
    } catch (...) {
        return fa_vision_caught(err, "fa_image_from_bgr");
    }
}

extern "C" void fa_image_free(struct fa_image *img)
{
    delete img; /* cv::Mat's destructor does not throw */
}

extern "C" int fa_image_width(const struct fa_image *img) { return img != NULL ? img->bgr.cols : 0; }

extern "C" int fa_image_height(const struct fa_image *img) { return img != NULL ? img->bgr.rows : 0; }

/* The file extension imencode picks the encoder by, or NULL. */
static const char *encoder_ext(enum fa_image_kind kind)
{
    switch (kind) {
    case FA_IMG_JPEG: return ".jpg";
    case FA_IMG_PNG: return ".png";
    case FA_IMG_WEBP: return ".webp";
    case FA_IMG_BMP: return ".bmp";
    default: return NULL;
    }
}

enum fa_rc fa_vision_encode(const cv::Mat &bgr, enum fa_image_kind kind, int quality,
                            uint8_t **out, size_t *n, struct fa_err *err)
{
    const char *ext = encoder_ext(kind);
    if (ext == NULL)
        return fa_err_set(err, FA_EINVAL, "cannot encode an image as %s", fa_image_kind_name(kind));
    if ((kind == FA_IMG_JPEG || kind == FA_IMG_WEBP) && (quality < 1 || quality > 100))
        return fa_err_set(err, FA_EINVAL, "quality %d is not within 1..100", quality);
    std::vector<int> params;
    if (kind == FA_IMG_JPEG)
        params = {cv::IMWRITE_JPEG_QUALITY, quality};
    else if (kind == FA_IMG_WEBP)
        params = {cv::IMWRITE_WEBP_QUALITY, quality};
    std::vector<uint8_t> buf;
    if (!cv::imencode(ext, bgr, buf, params) || buf.empty())
        return fa_err_set(err, FA_EVISION, "OpenCV could not encode a %dx%d %s", bgr.cols,
                          bgr.rows, fa_image_kind_name(kind));
    /* copy out of the vector so that C code can free() it */
    *out = (uint8_t *)malloc(buf.size());
    if (*out == NULL)
        return fa_err_set(err, FA_ENOMEM, "out of memory for a %zu-byte image", buf.size());
    memcpy(*out, buf.data(), buf.size());
    *n = buf.size();
    return FA_OK;
}

extern "C" enum fa_rc fa_image_encode(const struct fa_image *img, enum fa_image_kind kind,
                                      int quality, uint8_t **out, size_t *n, struct fa_err *err)
{
    try {
        if (out == NULL || n == NULL)
            return fa_err_set(err, FA_EINVAL, "fa_image_encode: no output");
        *out = NULL;
        *n = 0;
        if (img == NULL)
            return fa_err_set(err, FA_EINVAL, "fa_image_encode: no image");
        return fa_vision_encode(img->bgr, kind, quality, out, n, err);
    } catch (...) {
        return fa_vision_caught(err, "fa_image_encode");
    }
}

/* Largest side fa_image_adjust will produce (vision.h documents it). */
static const int kAdjustMaxSide = 16384;

/* Resize by scale: INTER_AREA when shrinking (averages, no aliasing),
 * bilinear when enlarging. */
static enum fa_rc scaled_copy(const cv::Mat &src, double scale, cv::Mat &dst, struct fa_err *err)
{
    if (!(scale > 0.0 && scale <= 8.0))
        return fa_err_set(err, FA_EINVAL, "scale %g is not within (0, 8]", scale);
    double w = src.cols * scale + 0.5;
    double h = src.rows * scale + 0.5;
    if (w < 1.0 || h < 1.0)
        return fa_err_set(err, FA_EINVAL, "scale %g leaves no pixel of a %dx%d image", scale,
                          src.cols, src.rows);
    if (w > kAdjustMaxSide || h > kAdjustMaxSide)
        return fa_err_set(err, FA_ETOOBIG, "scaled image would be %.0fx%.0f, over the limit of %d",
                          w, h, kAdjustMaxSide);
    cv::resize(src, dst, cv::Size((int)w, (int)h), 0, 0,
               scale < 1.0 ? cv::INTER_AREA : cv::INTER_LINEAR);
    return FA_OK;
}

extern "C" enum fa_rc fa_image_adjust(const struct fa_image *img, double scale, int brightness_shift,
                                      struct fa_image **out, struct fa_err *err)
{
    try {
        if (out == NULL || img == NULL)
            return fa_err_set(err, FA_EINVAL, "fa_image_adjust: no image");
        *out = NULL;
        if (brightness_shift < -255 || brightness_shift > 255)
            return fa_err_set(err, FA_EINVAL, "brightness shift %d is not within -255..255",
                              brightness_shift);
        cv::Mat scaled;
        enum fa_rc rc = scaled_copy(img->bgr, scale, scaled, err);
        if (rc != FA_OK)
            return rc;
        cv::Mat shifted;
        scaled.convertTo(shifted, -1, 1.0, brightness_shift); /* saturates at 0 and 255 */
        *out = new fa_image{std::move(shifted)};
        return FA_OK;
    } catch (...) {
        return fa_vision_caught(err, "fa_image_adjust");
    }
}

static enum fa_rc edit_check(const struct fa_image_edit *e, struct fa_err *err)
{
    if (!(e->blur_sigma >= 0 && e->blur_sigma <= 50))
        return fa_err_set(err, FA_EINVAL, "blur sigma %g is not within 0..50", e->blur_sigma);
    if (!(e->gain >= 0 && e->gain <= 100))
        return fa_err_set(err, FA_EINVAL, "gain %g is not within 0..100", e->gain);
    if (!(e->rotate_deg >= -360 && e->rotate_deg <= 360))
        return fa_err_set(err, FA_EINVAL, "rotation %g is not within -360..360", e->rotate_deg);
    if (e->crop_x < 0 || e->crop_y < 0 || e->crop_w < 0 || e->crop_h < 0)
        return fa_err_set(err, FA_EINVAL, "crop rectangle has a negative field");
    return FA_OK;
}

extern "C" enum fa_rc fa_image_edit(const struct fa_image *img, const struct fa_image_edit *e,
                                    struct fa_image **out, struct fa_err *err)
{
    try {
        if (out == NULL || img == NULL || e == NULL)
            return fa_err_set(err, FA_EINVAL, "fa_image_edit: bad arguments");
        *out = NULL;
        enum fa_rc rc = edit_check(e, err);
        if (rc != FA_OK)
            return rc;
        cv::Mat m = img->bgr;
        if (e->crop_w > 0 && e->crop_h > 0) {
            cv::Rect r = cv::Rect(e->crop_x, e->crop_y, e->crop_w, e->crop_h) &
                         cv::Rect(0, 0, m.cols, m.rows);
            if (r.width < 1 || r.height < 1)
                return fa_err_set(err, FA_EINVAL, "crop leaves no pixel of a %dx%d image", m.cols,
                                  m.rows);
            m = m(r);
        }
        cv::Mat work = m.clone();
        if (e->rotate_deg != 0) {
            cv::Mat rot = cv::getRotationMatrix2D(cv::Point2f(work.cols / 2.0f, work.rows / 2.0f),
                                                  e->rotate_deg, 1.0);
            cv::Mat turned;
            cv::warpAffine(work, turned, rot, work.size(), cv::INTER_LINEAR, cv::BORDER_CONSTANT);
            work = turned;
        }
        if (e->blur_sigma > 0)
            cv::GaussianBlur(work, work, cv::Size(0, 0), e->blur_sigma);
        if (e->gain > 0)
            work.convertTo(work, -1, e->gain, 0); /* saturates at 0 and 255 */
        *out = new fa_image{std::move(work)};
        return FA_OK;
    } catch (...) {
        return fa_vision_caught(err, "fa_image_edit");
    }
}
