/*
 * face.h — the face service: image bytes in, one checked face out.
 *
 * Owns the pool of vision engines (one per core by default): a request
 * borrows an engine for decode + detect + embed + thumbnail and gives it
 * back, so at most `engines` face computations run at once whatever the
 * number of HTTP threads. A request that waits longer than queue_timeout_ms
 * for an engine gets FA_EBUSY (503) instead of piling up.
 *
 * Policy lives here, not in the API: which face counts when there are
 * several, how small a face may be, and how scores are compared.
 */
#ifndef FACEAUTH_FACE_H
#define FACEAUTH_FACE_H

#include <stddef.h>
#include <stdint.h>

#include "faceauth/common.h"
#include "faceauth/vision.h"

struct fa_face_opts {
    const char *model_dir;
    int engines;
    int queue_timeout_ms;
    long max_pixels;
    double second_face_ratio;       /* refuse when area(2nd) >= ratio x area(largest) */
    double min_eye_distance_enroll; /* pixels */
    double min_eye_distance_auth;
    int thumbnail_size;
};

enum fa_face_purpose { FA_FACE_ENROLL, FA_FACE_AUTH };

/* The one face an image was reduced to. */
struct fa_face_probe {
    float embedding[FA_EMBED_DIM];
    float sharpness;          /* variance of the Laplacian of the aligned chip */
    float eye_distance;
    enum fa_image_kind kind;  /* of the original bytes */
    int n_faces;              /* faces detected in the image */
    uint8_t *thumbnail;       /* JPEG, malloc'ed; fa_face_probe_cleanup frees it */
    size_t n_thumbnail;
};

struct fa_face_service;

/* Load `engines` engines from model_dir. */
enum fa_rc fa_face_service_new(const struct fa_face_opts *opts, struct fa_face_service **out,
                               struct fa_err *err);
void fa_face_service_free(struct fa_face_service *svc); /* NULL is fine */

/*
 * Decode, detect, choose the face, check it, embed it and make its thumbnail.
 * Errors: FA_EIMAGE / FA_ETOOBIG for images that cannot or may not be
 * decoded; FA_ENOFACE with a message for "no face", "several faces" and
 * "face too small"; FA_EBUSY when no engine frees up in time.
 */
enum fa_rc fa_face_analyze(struct fa_face_service *svc, const uint8_t *bytes, size_t n,
                           enum fa_face_purpose purpose, struct fa_face_probe *out,
                           struct fa_err *err);
void fa_face_probe_cleanup(struct fa_face_probe *probe);

/*
 * The reduction rule of fa_face_analyze (see face.c), exposed so that
 * bench/pipeline.c times the same work as the server. Pure; any thread.
 * fa_face_decode_reduction: the factor (1, 2, 4 or 8) an image of this kind
 * and size is first decoded at (fa_image_decode_reduced).
 * fa_face_refine_reduction: given the n_found faces found at that factor
 * (largest first, as fa_detect reports them; faces[1] is read only when
 * n_found > 1), the factor to decode at instead: smaller when the largest
 * face is too small there for a full-detail chip, 1 when a decision of
 * opts' face policy is too close to call; the same factor otherwise.
 */
int fa_face_decode_reduction(const struct fa_image_info *info);
int fa_face_refine_reduction(const struct fa_face_opts *opts, enum fa_face_purpose purpose,
                             int reduce, const struct fa_face *faces, int n_found);

/* The best cosine of probe against n templates stored back to back (-1 when n is 0). */
float fa_face_best_score(const float *templates, int n, const float *probe);

#endif
