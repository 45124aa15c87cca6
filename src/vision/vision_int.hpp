/*
 * vision_int.hpp — what the files of src/vision/ share and nobody else sees.
 *
 * DESIGN
 * The module is split by what each part touches:
 *   probe.cpp   header parsing of untrusted bytes (no OpenCV at all)
 *   image.cpp   decode, encode, copies of pixels
 *   engine.cpp  loading the networks, detection and landmarks
 *   embed.cpp   alignment, embedding, quality, cosine
 *   thumb.cpp   the face thumbnail
 * Every extern "C" entry point wraps its body in try/catch and turns the
 * exception into an fa_rc through fa_vision_caught(), so no C++ exception
 * ever reaches C code.
 */
#ifndef FACEAUTH_VISION_INT_HPP
#define FACEAUTH_VISION_INT_HPP

#include "faceauth/common.h"
#include "faceauth/vision.h"

#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>

/* A decoded image: always 8-bit, 3 channels, BGR, continuous or not. */
struct fa_image {
    cv::Mat bgr;
};

/* The three networks of the pipeline; cv::dnn::Net is not thread-safe, so
 * an engine belongs to one thread at a time. */
struct fa_engine {
    cv::dnn::Net detect;
    cv::dnn::Net landmark;
    cv::dnn::Net feature;
};

/* Call only inside a catch block: rethrows the current exception and maps
 * it to FA_ENOMEM (std::bad_alloc) or FA_EVISION (everything else), with a
 * message that starts with `where`. Never throws. */
enum fa_rc fa_vision_caught(struct fa_err *err, const char *where) noexcept;

/* Warp the face onto the 112x112 ArcFace template (see MODELS.md step 4).
 * FA_EINVAL when the landmarks are degenerate (all five points equal). */
enum fa_rc fa_vision_align(const cv::Mat &bgr, const struct fa_face *face, cv::Mat &chip,
                           struct fa_err *err);

/* True when the JPEG in p has an end-of-image marker after its first scan.
 * libjpeg decodes a truncated body "successfully", filling the rest with
 * grey; this is how fa_image_decode refuses such uploads. Never reads past
 * n. */
bool fa_vision_jpeg_complete(const uint8_t *p, size_t n) noexcept;

/* Encode bgr in the given format; *out is malloc'ed and belongs to the caller.
 * quality (1..100) is used for JPEG and WebP only. */
enum fa_rc fa_vision_encode(const cv::Mat &bgr, enum fa_image_kind kind, int quality,
                            uint8_t **out, size_t *n, struct fa_err *err);

#endif
