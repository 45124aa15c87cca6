/*
 * vision_test.h — entry points of src/vision/ for tests/ and bench/ only
 * (the server never calls them): making test images, the three-network
 * engine of the early tests, what an engine loaded, per-stage timing.
 * Not part of vision.h, the module's API.
 */
#ifndef FACEAUTH_VISION_TEST_H
#define FACEAUTH_VISION_TEST_H

#include "faceauth/vision.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Wrap a copy of caller BGR pixels (rows of width*3 bytes, stride bytes apart). */
enum fa_rc fa_image_from_bgr(const uint8_t *bgr, int width, int height, size_t stride,
                             struct fa_image **out, struct fa_err *err);

/*
 * A new image: img resized by scale (0 < scale <= 8; area averaging when
 * shrinking, bilinear when enlarging; at most 16384 pixels a side, else
 * FA_ETOOBIG) with brightness_shift (-255..255) added to every channel,
 * saturating at 0 and 255. Used to make augmented copies in tests and
 * benchmarks. The caller frees *out with fa_image_free. Any thread.
 */
enum fa_rc fa_image_adjust(const struct fa_image *img, double scale, int brightness_shift,
                           struct fa_image **out, struct fa_err *err);

/*
 * How fa_image_edit changes an image, applied in this order; a field at 0
 * changes nothing. For making test and benchmark copies (cropped, rotated,
 * blurred, darkened photos), not for the request path.
 */
struct fa_image_edit {
    int crop_x, crop_y, crop_w, crop_h; /* keep this rectangle, clamped to the image
                                           (crop_w or crop_h 0: the whole image) */
    double rotate_deg;                  /* counter-clockwise about the centre; same size,
                                           black where the corners come in */
    double blur_sigma;                  /* Gaussian blur, in pixels (<= 50) */
    double gain;                        /* multiply every channel, saturating (0: keep) */
};

/*
 * A new image: img changed as e says. FA_EINVAL for a negative or too
 * large value or a crop that leaves no pixel. The caller frees *out with
 * fa_image_free. Any thread.
 */
enum fa_rc fa_image_edit(const struct fa_image *img, const struct fa_image_edit *e,
                         struct fa_image **out, struct fa_err *err);

/*
 * Load fr_detect.onnx, fr_landmark.onnx and fr_feature.onnx from model_dir.
 * FA_ENOTFOUND names the missing file; FA_EVISION when OpenCV refuses it.
 * Calls cv::setNumThreads(1), which is process-wide: we scale by giving each
 * worker thread its own engine, and OpenCV's pool on top would only make the
 * workers fight for cores. Any thread; the engine then belongs to one thread
 * at a time.
 */
enum fa_rc fa_engine_new(const char *model_dir, struct fa_engine **out, struct fa_err *err);

/* Wall-clock seconds an engine spent per stage (bench/pipeline.c reads them). */
struct fa_stage_times {
    double detect;    /* fa_detect: blob, detector forward, NMS */
    double landmarks; /* fa_detect: crop, landmark forward, per reported face */
    double align;     /* fa_embed: the warp onto the 112x112 chip */
    double embed;     /* fa_embed and fa_embed_chip: blob, forward, normalise */
};

/*
 * Profiling hook: while acc is not NULL, every stage the engine runs adds its
 * time to the matching field of *acc (never reset here; zero it yourself).
 * NULL, the default, turns it off and costs one pointer test per stage.
 * Decoding needs no engine: time fa_image_decode around the call. The
 * engine's thread only; *acc must outlive the setting.
 */
void fa_engine_set_profile(struct fa_engine *eng, struct fa_stage_times *acc);

/* Embed an already aligned 112x112 BGR chip (for reference checks). */
enum fa_rc fa_embed_chip(struct fa_engine *eng, const struct fa_image *chip112,
                         float out[FA_EMBED_DIM], struct fa_err *err);

/* The load bits (FA_MODEL_BIT()s, FA_LOAD_LIVENESS) of what eng holds; 0 for NULL. */
unsigned fa_engine_loaded(const struct fa_engine *eng);

#ifdef __cplusplus
}
#endif

#endif
