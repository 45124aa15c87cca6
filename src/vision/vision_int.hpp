/*
 * vision_int.hpp — what the files of src/vision/ share and nobody else sees.
 *
 * DESIGN
 * The module is split by what each part touches:
 *   probe.cpp   header parsing of untrusted bytes (no OpenCV at all)
 *   image.cpp   decode, encode, copies of pixels
 *   engine.cpp  loading the networks, detection and landmarks
 *   embed.cpp   alignment, embedding, quality, cosine
 *   models.cpp  the model table, the other two embedding models, embed-all
 *   dlib_align.cpp  dlib's own 150x150 alignment
 *   liveness.cpp    fr_liveness.onnx
 *   pose.cpp    head pose from the landmarks
 *   thumb.cpp   the face thumbnail
 * Every extern "C" entry point wraps its body in try/catch and turns the
 * exception into an fa_rc through fa_vision_caught(), so no C++ exception
 * ever reaches C code.
 */
#ifndef FACEAUTH_VISION_INT_HPP
#define FACEAUTH_VISION_INT_HPP

#include "faceauth/common.h"
#include "faceauth/vision.h"
#include "vision_test.h"

#include <chrono>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>

/* A decoded image: always 8-bit, 3 channels, BGR, continuous or not. */
struct fa_image {
    cv::Mat bgr;
};

/* The networks of the pipeline; cv::dnn::Net is not thread-safe, so an
 * engine belongs to one thread at a time. Only the nets named in `loaded`
 * (FA_MODEL_BIT()s, FA_LOAD_LIVENESS) hold a network; the others are empty. */
struct fa_engine {
    cv::dnn::Net detect;
    cv::dnn::Net landmark;
    cv::dnn::Net feature;  /* FA_MODEL_ARCFACE */
    cv::dnn::Net mfn;      /* FA_MODEL_MFN */
    cv::dnn::Net dlib;     /* FA_MODEL_DLIB */
    cv::dnn::Net liveness; /* FA_LOAD_LIVENESS */
    unsigned loaded = 0;
    struct fa_stage_times *profile = nullptr; /* fa_engine_set_profile; NULL = off */
};

/* Adds the wall time of its scope to *slot; does nothing (not even read the
 * clock) when slot is NULL, so profiling off costs one test per stage. */
class fa_stage_timer {
  public:
    explicit fa_stage_timer(double *slot) noexcept : slot_(slot)
    {
        if (slot_ != nullptr)
            t0_ = std::chrono::steady_clock::now();
    }
    ~fa_stage_timer()
    {
        if (slot_ != nullptr)
            *slot_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    }
    fa_stage_timer(const fa_stage_timer &) = delete;
    fa_stage_timer &operator=(const fa_stage_timer &) = delete;

  private:
    double *slot_;
    std::chrono::steady_clock::time_point t0_;
};

/* The slot of one stage when eng profiles, else NULL (for fa_stage_timer). */
#define FA_STAGE_SLOT(eng, field) ((eng)->profile != nullptr ? &(eng)->profile->field : nullptr)

/* Run the detector on the whole image squeezed to 320x240 and append the
 * boxes that pass the score threshold, in image pixels (not yet clamped),
 * with their scores and, when logits is not NULL, their logits (see
 * fa_face.logit). No NMS. engine.cpp. */
void fa_vision_detect_candidates(struct fa_engine *eng, const cv::Mat &img,
                                 std::vector<cv::Rect2d> &boxes, std::vector<float> &scores,
                                 std::vector<float> *logits);

/* Call only inside a catch block: rethrows the current exception and maps
 * it to FA_ENOMEM (std::bad_alloc) or FA_EVISION (everything else), with a
 * message that starts with `where`. Never throws. */
enum fa_rc fa_vision_caught(struct fa_err *err, const char *where) noexcept;

/* Least-squares similarity (rotation, uniform scale, translation; never a
 * reflection) taking src[i] to dst[i] for i < n, in closed form, into the
 * 2x3 matrix m for cv::warpAffine. False when the source points coincide or
 * a value is not finite (m is then not to be used). Defined in embed.cpp. */
bool fa_vision_fit_similarity(const double (*src)[2], const double (*dst)[2], int n, cv::Mat &m);

/* Warp the face onto the 112x112 ArcFace template (see MODELS.md step 4).
 * FA_EINVAL when the landmarks are degenerate (all five points equal). */
enum fa_rc fa_vision_align(const cv::Mat &bgr, const struct fa_face *face, cv::Mat &chip,
                           struct fa_err *err);

/* The net of embedding model m inside eng (empty when not loaded). */
cv::dnn::Net &fa_vision_model_net(struct fa_engine *eng, enum fa_model m);

/* Warp the face onto dlib's 150x150 chip: the least-squares similarity of 33
 * of the 68 landmarks onto dlib's mean face (see MODELS.md and
 * dlib_align.cpp). FA_EINVAL when the landmarks are degenerate. */
enum fa_rc fa_vision_align_dlib(const cv::Mat &bgr, const struct fa_face *face, cv::Mat &chip,
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
