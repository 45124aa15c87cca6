/*
 * vision.h — the plain C face of the OpenCV pipeline (src/vision/, the only C++).
 *
 * Bytes in, faces and embeddings out; nothing here knows users, HTTP or SQL.
 * The pipeline is the one of shared MODELS.md: detect on a 320x240 copy
 * (fr_detect.onnx), 68 landmarks per box (fr_landmark.onnx), a 5-point
 * similarity alignment onto the ArcFace 112x112 template, a 512-D embedding
 * (fr_feature.onnx), L2-normalised.
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

/* Wrap a copy of caller BGR pixels (rows of width*3 bytes, stride bytes apart). */
enum fa_rc fa_image_from_bgr(const uint8_t *bgr, int width, int height, size_t stride,
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

/*
 * A new image: img resized by scale (0 < scale <= 8; area averaging when
 * shrinking, bilinear when enlarging; at most 16384 pixels a side, else
 * FA_ETOOBIG) with brightness_shift (-255..255) added to every channel,
 * saturating at 0 and 255. Used to make augmented copies in tests and
 * benchmarks. The caller frees *out with fa_image_free. Any thread.
 */
enum fa_rc fa_image_adjust(const struct fa_image *img, double scale, int brightness_shift,
                           struct fa_image **out, struct fa_err *err);

/* One detected face in image coordinates. */
struct fa_face {
    float x1, y1, x2, y2;     /* box, clamped to the image */
    float score;              /* detector confidence, 0..1 */
    float landmarks[68][2];   /* iBUG 68 points, (x, y) in image pixels */
    float eye_distance;       /* pixels between the two eye centres (36-41, 42-47) */
};

struct fa_engine; /* the loaded networks; one per thread */

/*
 * Load fr_detect.onnx, fr_landmark.onnx and fr_feature.onnx from model_dir.
 * FA_ENOTFOUND names the missing file; FA_EVISION when OpenCV refuses it.
 * Calls cv::setNumThreads(1), which is process-wide: we scale by giving each
 * worker thread its own engine, and OpenCV's pool on top would only make the
 * workers fight for cores. Any thread; the engine then belongs to one thread
 * at a time.
 */
enum fa_rc fa_engine_new(const char *model_dir, struct fa_engine **out, struct fa_err *err);
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

/* Embed an already aligned 112x112 BGR chip (for reference checks). */
enum fa_rc fa_embed_chip(struct fa_engine *eng, const struct fa_image *chip112,
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

/* Cosine similarity of two L2-normalised embeddings of dim floats. */
float fa_cosine(const float *a, const float *b, int dim);

#ifdef __cplusplus
}
#endif

#endif
