/*
 * vision.h — the plain C face of the OpenCV pipeline (src/vision/, the only C++).
 *
 * Bytes in, faces and embeddings out; nothing here knows users, HTTP or SQL.
 * The pipeline is the one of shared MODELS.md: detect on a 320x240 copy
 * (fr_detect.onnx), 68 landmarks per box (fr_landmark.onnx), a 5-point
 * similarity alignment onto the ArcFace 112x112 template, a 512-D embedding
 * (fr_feature.onnx), L2-normalised. Two more embedding models (MobileFaceNet,
 * dlib's ResNet), liveness and head pose are at the end of this file.
 *
 * Threads: a struct fa_engine holds cv::dnn::Net objects, which are not safe
 * to share; give each thread its own engine (or guard a pool). Images and
 * faces are plain data and may be read from any thread.
 * No C++ exception crosses this API: every entry point returns FA_EVISION.
 */
#ifndef FACEAUTH_VISION_H
#define FACEAUTH_VISION_H

#include <stddef.h>
#include <stdint.h>

#include "faceauth/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FA_EMBED_DIM 512     /* floats in one embedding of the first model */
#define FA_MAX_FACES 64      /* detect never reports more than this */
#define FA_MODEL_ID "fr_feature-1" /* stored beside every template; never compare across ids */

enum fa_image_kind { FA_IMG_UNKNOWN = 0, FA_IMG_JPEG, FA_IMG_PNG, FA_IMG_WEBP, FA_IMG_BMP };

/* What the header of an image says, read without decoding pixels. */
struct fa_image_info {
    enum fa_image_kind kind;
    int width;  /* 0 when the header does not say (then decode is refused) */
    int height;
};

/*
 * Recognise the format by its magic bytes and read the dimensions from the
 * header (JPEG SOFn, PNG IHDR, BMP info header, WebP VP8/VP8L/VP8X).
 * FA_EIMAGE with a message when the bytes are not one of the four formats or
 * the header is truncated. Cheap: no pixel is touched.
 */
enum fa_rc fa_image_probe(const uint8_t *bytes, size_t n, struct fa_image_info *out,
                          struct fa_err *err);

/* The name of a kind ("jpeg", "png", "webp", "bmp", "unknown"). */
const char *fa_image_kind_name(enum fa_image_kind kind);

struct fa_image; /* a decoded 8-bit BGR image; opaque */

/*
 * Decode bytes into a new image. Probes first and refuses, before decoding,
 * an image whose width*height exceeds max_pixels (FA_ETOOBIG, message gives
 * both numbers) or whose format is unknown (FA_EIMAGE). A corrupt body that
 * OpenCV cannot decode is FA_EIMAGE, and so is a JPEG with no end-of-image
 * marker after its data (a truncated upload, which libjpeg would otherwise
 * fill with grey). EXIF orientation is applied, so width and height may be
 * swapped relative to the header. The caller frees *out with fa_image_free.
 */
enum fa_rc fa_image_decode(const uint8_t *bytes, size_t n, long max_pixels,
                           struct fa_image **out, struct fa_err *err);

/*
 * fa_image_decode at 1/reduce of the size (reduce is 1, 2, 4 or 8; JPEG
 * rounds the sides up, other formats down). JPEG is scaled inside libjpeg's
 * inverse DCT, which averages and skips most of the work: a 1920x1280 photo
 * decodes about 3x faster at reduce 2. Other formats are decoded in full,
 * then shrunk. max_pixels applies to the full size, as in fa_image_decode.
 * Face coordinates found in the result are in reduced pixels.
 */
enum fa_rc fa_image_decode_reduced(const uint8_t *bytes, size_t n, long max_pixels, int reduce,
                                   struct fa_image **out, struct fa_err *err);

void fa_image_free(struct fa_image *img); /* NULL is fine */
int fa_image_width(const struct fa_image *img);
int fa_image_height(const struct fa_image *img);

/*
 * Encode img as a JPEG, PNG, WebP or BMP file in memory. quality (1..100)
 * applies to JPEG and WebP and is ignored for the others. *out is malloc'ed;
 * the caller frees it with free(). Any thread.
 */
enum fa_rc fa_image_encode(const struct fa_image *img, enum fa_image_kind kind, int quality,
                           uint8_t **out, size_t *n, struct fa_err *err);

/* One detected face in image coordinates. */
struct fa_face {
    float x1, y1, x2, y2;     /* box, clamped to the image */
    float score;              /* detector confidence, 0..1 */
    float landmarks[68][2];   /* iBUG 68 points, (x, y) in image pixels */
    float eye_distance;       /* pixels between the two eye centres (36-41, 42-47) */
    float logit;              /* log(p_face / p_background) of the detector: score
                                 without the saturation at 1 (capped at +-40) */
};

struct fa_engine; /* the loaded networks; one per thread */

/* fa_engine_new_models makes one; fa_engine_new (vision_test.h) too. */
void fa_engine_free(struct fa_engine *eng); /* NULL is fine */

/*
 * Detect faces (score >= 0.65, NMS 0.4) and their landmarks. Writes up to
 * max_faces faces into faces[], largest box area first, and the number found
 * (possibly more than max_faces) into *n_found. Zero faces is FA_OK.
 */
enum fa_rc fa_detect(struct fa_engine *eng, const struct fa_image *img, struct fa_face *faces,
                     int max_faces, int *n_found, struct fa_err *err);

/*
 * Align the face to the 112x112 ArcFace chip and write its L2-normalised
 * embedding (FA_EMBED_DIM floats) into out.
 */
enum fa_rc fa_embed(struct fa_engine *eng, const struct fa_image *img, const struct fa_face *face,
                    float out[FA_EMBED_DIM], struct fa_err *err);

/*
 * Variance of the Laplacian on the aligned 112x112 gray chip (higher is
 * sharper) and its mean brightness 0..255: inputs to the quality gates.
 */
enum fa_rc fa_face_quality(const struct fa_image *img, const struct fa_face *face,
                           float *sharpness, float *brightness, struct fa_err *err);

/*
 * A zoomed square crop around the face (box grown by 40%, clamped), resized to
 * size x size and encoded as JPEG (quality 90). *jpeg is malloc'ed; the caller
 * frees it with free().
 */
enum fa_rc fa_thumbnail_jpeg(const struct fa_image *img, const struct fa_face *face, int size,
                             uint8_t **jpeg, size_t *n, struct fa_err *err);

/*
 * Orientation (src/vision/orient.cpp). The landmark net always draws an
 * upright face, even inside an upside-down one, so the landmarks cannot
 * tell which way up a face is; the detector can, being trained on upright
 * faces: it is more sure of a face the right way up.
 *
 * fa_face_upright writes into *margin face->logit minus the logit of the
 * same face found by the detector in img turned by 180 degrees (the best
 * box overlapping it), and into *turns 2; when the detector is not sure of
 * the face (logit under 4) also turned by 90 degrees either way, keeping
 * the smallest margin and its turn (clockwise quarter turns: 1, 2 or 3).
 * FA_UPRIGHT_NONE and turns 0 when no turned image shows the face. A
 * negative margin means the face looks more like a face turned. One
 * detector pass (~7 ms on one core), three for an unsure face. face must
 * come from fa_detect on this img.
 */
#define FA_UPRIGHT_NONE 99.0f
enum fa_rc fa_face_upright(struct fa_engine *eng, const struct fa_image *img,
                           const struct fa_face *face, float *margin, int *turns,
                           struct fa_err *err);

/*
 * The faces fa_detect would find in img turned clockwise by turns x 90
 * degrees (1, 2 or 3; else FA_EINVAL): their number and the best logit
 * (best_logit may be NULL; -FA_UPRIGHT_NONE when none), without landmarks.
 * To tell a photo with no face from one on its side or upside down. One
 * detector pass.
 */
enum fa_rc fa_detect_turned(struct fa_engine *eng, const struct fa_image *img, int turns,
                            int *n_found, float *best_logit, struct fa_err *err);

/* Cosine similarity of two L2-normalised embeddings of dim floats. */
float fa_cosine(const float *a, const float *b, int dim);

/* ------------------------------------------------------------------------
 * Several embedding models, liveness and pose (src/vision/models.cpp,
 * dlib_align.cpp, liveness.cpp, pose.cpp).
 *
 * Three networks embed a face; each has its own id, dimension and aligned
 * chip, and embeddings of different models (or of different versions of one
 * model) must never be compared with each other: store each template with
 * fa_model_info(m)->id and compare only templates of equal id.
 *   FA_MODEL_ARCFACE  fr_feature.onnx, 512-D, the 112x112 ArcFace chip: the
 *                     model of fa_embed (same numbers) and of FA_MODEL_ID
 *   FA_MODEL_MFN      mobilefacenet.onnx, 192-D, the same 112x112 chip
 *   FA_MODEL_DLIB     dlib_resnet.onnx, 128-D, dlib's own 150x150 chip
 * The last two are converted from npm packages at set-up (scripts/convert).
 * Every embedding returned here is L2-normalised: compare with fa_cosine.
 * ------------------------------------------------------------------------ */

/* Values are table indexes, bit positions in a load mask (FA_MODEL_BIT) and
 * the column order of `faceauth embed|score-pairs --model all`: append new
 * models at the end, never reorder. */
enum fa_model { FA_MODEL_ARCFACE = 0, FA_MODEL_MFN = 1, FA_MODEL_DLIB = 2, FA_N_MODELS = 3 };

#define FA_MODEL_BIT(m) (1u << (unsigned)(m))         /* a model in a load/embed mask */
#define FA_MODELS_ALL ((1u << FA_N_MODELS) - 1u)      /* every embedding model */
#define FA_LOAD_LIVENESS (1u << 8)                     /* load mask: fr_liveness.onnx too */
#define FA_MAX_EMBED_DIM 512                           /* largest dim of any model */

struct fa_model_info {
    const char *id;   /* stored beside every template, version included: "mobilefacenet-1" */
    const char *name; /* short name for flags and config: "fr_feature", "mobilefacenet", "dlib" */
    const char *file; /* its ONNX file in the model folder */
    int dim;          /* floats in one embedding */
    int chip_side;    /* side of the square aligned chip it reads (112 or 150) */
};

/* The static description of model m; NULL when m is not a model. Any thread. */
const struct fa_model_info *fa_model_info(enum fa_model m);

/* The model whose name or id is `name` ("dlib" or "dlib_resnet-1"). FA_EINVAL
 * with the list of names when there is none. Any thread. */
enum fa_rc fa_model_from_name(const char *name, enum fa_model *out, struct fa_err *err);

/*
 * Load fr_detect.onnx and fr_landmark.onnx from model_dir, and the networks
 * `load` names: any FA_MODEL_BIT()s, plus FA_LOAD_LIVENESS. Unknown bits
 * are FA_EINVAL; a missing file is FA_ENOTFOUND naming it; FA_EVISION when
 * OpenCV refuses one. Each model costs memory in every engine (dlib 22 MB of
 * weights, MobileFaceNet 5 MB): load only what will be used.
 * Calls cv::setNumThreads(1), which is process-wide: we scale by giving each
 * worker thread its own engine, and OpenCV's pool on top would only make the
 * workers fight for cores. Any thread; the engine then belongs to one thread
 * at a time.
 */
enum fa_rc fa_engine_new_models(const char *model_dir, unsigned load, struct fa_engine **out,
                                struct fa_err *err);

/*
 * Align the face the way model m needs and write its L2-normalised embedding
 * (fa_model_info(m)->dim floats) into out. FA_EINVAL when m was not loaded
 * into eng or the landmarks are degenerate.
 */
enum fa_rc fa_embed_model(struct fa_engine *eng, const struct fa_image *img,
                          const struct fa_face *face, enum fa_model m, float *out,
                          struct fa_err *err);

/*
 * Embed one face with every model in the mask `models` (FA_MODEL_BIT()s):
 * out[m] receives model m's embedding and must be non-NULL for every model
 * in the mask (the others are not touched and may be NULL). The 112x112 chip
 * is warped once for the two models that share it. On failure the contents
 * of out[] are unspecified.
 */
enum fa_rc fa_embed_models(struct fa_engine *eng, const struct fa_image *img,
                           const struct fa_face *face, unsigned models,
                           float *const out[FA_N_MODELS], struct fa_err *err);

/*
 * The aligned chip model m reads, as a new chip_side x chip_side BGR image
 * (the caller frees it with fa_image_free): the 5-point ArcFace alignment for
 * the 112x112 models, dlib's 33-point alignment for FA_MODEL_DLIB. No engine
 * needed; any thread. For reference checks and debugging.
 */
enum fa_rc fa_face_chip(const struct fa_image *img, const struct fa_face *face, enum fa_model m,
                        struct fa_image **chip, struct fa_err *err);

/* Embed an already aligned chip of model m's chip_side (else FA_EINVAL). */
enum fa_rc fa_embed_chip_model(struct fa_engine *eng, const struct fa_image *chip,
                               enum fa_model m, float *out, struct fa_err *err);

/*
 * Liveness (presentation-attack screening) with fr_liveness.onnx: the face
 * box grown 2.7x around its centre (less when that would not fit the image,
 * then slid inside it), resized to 128x128, BGR 0..255; the softmax of the
 * three logits goes into probs[] (may be NULL) and probs[FA_LIVENESS_LIVE]
 * into *live (may be NULL). Measured (liveness.cpp has the details): class 0
 * is "live"; the two spoof samples we have put 0.998 on class 1, and class 2
 * never won. On lfw-dev's live photos *live >= 0.5 for 80%: a screening signal, not a
 * certified presentation-attack detector; calibrate a threshold on your own
 * capture conditions before refusing anyone. eng must have been loaded with
 * FA_LOAD_LIVENESS, else FA_EINVAL.
 */
#define FA_LIVENESS_CLASSES 3
#define FA_LIVENESS_LIVE 0
enum fa_rc fa_liveness(struct fa_engine *eng, const struct fa_image *img,
                       const struct fa_face *face, float *live,
                       float probs[FA_LIVENESS_CLASSES], struct fa_err *err);

/*
 * Head pose from the 68 landmarks alone, in degrees, for gating extreme
 * poses (not for measuring them):
 *   roll   the angle of the line from the left-hand eye centre to the
 *          right-hand one in the image; positive when the face is turned
 *          clockwise on the screen. Exact for the landmarks given.
 *   yaw    atan((nose tip offset from the eye midpoint along the eye line /
 *          eye distance) / 0.45); positive when the nose points to the
 *          image's right. 0.45 is the nose tip's depth in front of the eyes
 *          over the eye distance of an average head, so this is an estimate
 *          (its error is unmeasured: we have no pose ground truth).
 *   pitch  atan((0.505 - r) / 0.42), r = how far down the nose tip sits
 *          from the eye line towards the mouth (0 at the eyes, 1 at the
 *          mouth), measured across the eye line; positive when the face
 *          looks up. 0.505 is r of a frontal face (lfw-dev median), 0.42 the
 *          nose depth over the eye-to-mouth distance; an estimate like yaw.
 * On lfw-dev, 0.8% of faces have |yaw| > 45 and 0.1% |pitch| > 45.
 * Any pointer may be NULL. FA_EINVAL when the landmarks are not finite or the
 * eyes coincide. Pure arithmetic on the face; any thread.
 */
enum fa_rc fa_face_pose(const struct fa_face *face, float *yaw, float *pitch, float *roll,
                        struct fa_err *err);

#ifdef __cplusplus
}
#endif

#endif
