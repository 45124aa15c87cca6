/*
 * face.c — engine pool and face policy (see face.h).
 *
 * The pool is a stack of free engines under one mutex with a condition
 * variable; nothing slow happens while the lock is held (only pushing and
 * popping a pointer), so the lock is never a bottleneck.
 *
 * Reduced decoding. The detector sees a 320x240 copy whatever the photo's
 * size and the chip is 112x112, yet decoding is the costliest step of a
 * large photo (a 1920x1280 JPEG: ~8 ms in full, ~3 ms at half size). So a
 * large JPEG is first decoded at 1/r (libjpeg's DCT scaling), r chosen to
 * keep the smaller side >= FACE_DECODE_MIN_SIDE. The result is kept only
 * when the chosen face still has its eyes >= FACE_CHIP_MIN_EYES apart there:
 * then the chip is made by shrinking, as from the full image, and scores
 * stay within 0.01 of a full decode (measured on the demo photos, see
 * bench/pipeline.c's cos_full). Otherwise the image is decoded again at the
 * reduction that keeps that face large enough (often 1) and analysed from
 * scratch: a small face in a large photo costs one extra small decode and
 * detection, never accuracy. Boxes and landmarks also move by a few percent
 * between decode sizes, so a policy decision that falls within a margin of
 * its threshold at 1/r (second-face ratio, eye distance) is taken again on
 * the full image: reduction never changes which photos are accepted. Eye
 * distances leave this file in pixels of the original image.
 */
#include "faceauth/face.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FACE_DECODE_MIN_SIDE 480 /* reduce while the smaller side stays this long */
#define FACE_DECODE_MAX_REDUCE 8 /* the largest factor libjpeg scales by */
#define FACE_CHIP_MIN_EYES 36.0f /* the ArcFace chip puts the eyes 35.2 px apart */
#define FACE_RECHECK_RATIO 0.05  /* second-face ratio this close to its limit: decide in full */
#define FACE_RECHECK_EYES 0.15   /* eye distance within 15% of its minimum: the same */

struct fa_face_service {
    struct fa_face_opts opts;
    pthread_mutex_t lock;
    pthread_cond_t freed;
    struct fa_engine **all;  /* every engine, for free() */
    struct fa_engine **idle; /* stack of engines not in use */
    int n_all;
    int n_idle;
};

enum fa_rc fa_face_service_new(const struct fa_face_opts *opts, struct fa_face_service **out,
                               struct fa_err *err)
{
    enum fa_rc rc = FA_OK;
    struct fa_face_service *svc = calloc(1, sizeof *svc);
    int n = opts->engines > 0 ? opts->engines : 1;
    if (svc == NULL)
        return fa_err_set(err, FA_ENOMEM, "out of memory");
    svc->opts = *opts;
    pthread_mutex_init(&svc->lock, NULL);
    pthread_cond_init(&svc->freed, NULL);
    svc->all = calloc((size_t)n, sizeof *svc->all);
    svc->idle = calloc((size_t)n, sizeof *svc->idle);
    if (svc->all == NULL || svc->idle == NULL)
        rc = fa_err_set(err, FA_ENOMEM, "out of memory");
    for (int i = 0; rc == FA_OK && i < n; i++) {
        rc = fa_engine_new(opts->model_dir, &svc->all[i], err);
        if (rc == FA_OK)
            svc->idle[svc->n_all++] = svc->all[i];
    }
    svc->n_idle = svc->n_all;
    if (rc != FA_OK) {
        fa_face_service_free(svc);
        return rc;
    }
    *out = svc;
    return FA_OK;
}

void fa_face_service_free(struct fa_face_service *svc)
{
    if (svc == NULL)
        return;
    for (int i = 0; i < svc->n_all; i++)
        fa_engine_free(svc->all[i]);
    free(svc->all);
    free(svc->idle);
    pthread_cond_destroy(&svc->freed);
    pthread_mutex_destroy(&svc->lock);
    free(svc);
}

static enum fa_rc engine_acquire(struct fa_face_service *svc, struct fa_engine **out,
                                 struct fa_err *err)
{
    struct timespec deadline;
    int waited = 0;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += svc->opts.queue_timeout_ms / 1000;
    deadline.tv_nsec += (long)(svc->opts.queue_timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&svc->lock);
    while (svc->n_idle == 0 && waited != ETIMEDOUT)
        waited = pthread_cond_timedwait(&svc->freed, &svc->lock, &deadline);
    if (svc->n_idle > 0)
        *out = svc->idle[--svc->n_idle];
    pthread_mutex_unlock(&svc->lock);
    if (*out == NULL)
        return fa_err_set(err, FA_EBUSY, "server is busy: no face engine free for %d ms",
                          svc->opts.queue_timeout_ms);
    return FA_OK;
}

static void engine_release(struct fa_face_service *svc, struct fa_engine *eng)
{
    pthread_mutex_lock(&svc->lock);
    svc->idle[svc->n_idle++] = eng;
    pthread_cond_signal(&svc->freed);
    pthread_mutex_unlock(&svc->lock);
}

static float box_area(const struct fa_face *f)
{
    return (f->x2 - f->x1) * (f->y2 - f->y1);
}

/*
 * The several-faces policy: faces come largest first; the largest is the
 * subject unless the runner-up is nearly as large, in which case we cannot
 * tell who is meant and refuse rather than guess.
 */
static enum fa_rc choose_face(const struct fa_face_service *svc, const struct fa_face *faces,
                              int n_found, int reduce, enum fa_face_purpose purpose,
                              struct fa_err *err)
{
    double min_eye = purpose == FA_FACE_ENROLL ? svc->opts.min_eye_distance_enroll
                                               : svc->opts.min_eye_distance_auth;
    double eye = (double)faces[0].eye_distance * reduce; /* in original pixels */
    if (n_found == 0)
        return fa_err_set(err, FA_ENOFACE, "no face found in the image");
    if (n_found > 1 && box_area(&faces[1]) >= svc->opts.second_face_ratio * box_area(&faces[0]))
        return fa_err_set(err, FA_ENOFACE,
                          "several faces of similar size in the image (%d found); send a photo "
                          "of one person",
                          n_found);
    if (eye < min_eye)
        return fa_err_set(err, FA_ENOFACE,
                          "face too small: %.0f pixels between the eyes, at least %.0f needed",
                          eye, min_eye);
    return FA_OK;
}

/* 1 when a choose_face decision on faces found at 1/reduce lies too close to
 * its threshold to be taken there (see the top of the file). */
static int near_threshold(const struct fa_face_opts *opts, enum fa_face_purpose purpose,
                          int reduce, const struct fa_face *faces, int n_found)
{
    double min_eye = purpose == FA_FACE_ENROLL ? opts->min_eye_distance_enroll
                                               : opts->min_eye_distance_auth;
    double eye = (double)faces[0].eye_distance * reduce;
    if (n_found > 1 &&
        fabs(box_area(&faces[1]) / box_area(&faces[0]) - opts->second_face_ratio) <
            FACE_RECHECK_RATIO)
        return 1;
    return fabs(eye - min_eye) < FACE_RECHECK_EYES * min_eye;
}

/*
 * Decode at `reduce` and detect; when the largest face is too small there
 * for a full-detail chip, or a decision about the faces is too close to
 * call, decode and detect again at the reduction that suits it (see the top
 * of the file). *img and *reduce describe the image kept, which the caller
 * frees.
 */
static enum fa_rc decode_detect(struct fa_face_service *svc, struct fa_engine *eng,
                                const uint8_t *bytes, size_t n, enum fa_face_purpose purpose,
                                int *reduce, struct fa_image **img, struct fa_face faces[2],
                                int *n_found, struct fa_err *err)
{
    enum fa_rc rc;
    for (;;) {
        rc = fa_image_decode_reduced(bytes, n, svc->opts.max_pixels, *reduce, img, err);
        if (rc == FA_OK)
            rc = fa_detect(eng, *img, faces, 2, n_found, err);
        if (rc != FA_OK || *n_found == 0)
            return rc;
        int better = fa_face_refine_reduction(&svc->opts, purpose, *reduce, faces, *n_found);
        if (better == *reduce)
            return FA_OK;
        *reduce = better;
        fa_image_free(*img);
        *img = NULL;
    }
}

/* Everything that needs an engine, on the bytes of one image. */
static enum fa_rc analyze_image(struct fa_face_service *svc, struct fa_engine *eng,
                                const uint8_t *bytes, size_t n, int reduce,
                                enum fa_face_purpose purpose, struct fa_face_probe *out,
                                struct fa_err *err)
{
    struct fa_image *img = NULL;
    struct fa_face faces[2];
    float brightness = 0;
    enum fa_rc rc =
        decode_detect(svc, eng, bytes, n, purpose, &reduce, &img, faces, &out->n_faces, err);
    if (rc == FA_OK)
        rc = choose_face(svc, faces, out->n_faces, reduce, purpose, err);
    if (rc == FA_OK)
        rc = fa_embed(eng, img, &faces[0], out->embedding, err);
    if (rc == FA_OK)
        rc = fa_face_quality(img, &faces[0], &out->sharpness, &brightness, err);
    if (rc == FA_OK)
        rc = fa_thumbnail_jpeg(img, &faces[0], svc->opts.thumbnail_size, &out->thumbnail,
                               &out->n_thumbnail, err);
    out->eye_distance = rc == FA_OK ? faces[0].eye_distance * (float)reduce : 0;
    fa_image_free(img);
    return rc;
}

enum fa_rc fa_face_analyze(struct fa_face_service *svc, const uint8_t *bytes, size_t n,
                           enum fa_face_purpose purpose, struct fa_face_probe *out,
                           struct fa_err *err)
{
    struct fa_engine *eng = NULL;
    struct fa_image_info info;
    enum fa_rc rc;
    memset(out, 0, sizeof *out);
    rc = fa_image_probe(bytes, n, &info, err);
    if (rc != FA_OK)
        return rc;
    out->kind = info.kind;
    /* Decoding is the costliest step for large photos: it waits for an
     * engine too, so CPU work stays bounded by the pool size. */
    rc = engine_acquire(svc, &eng, err);
    if (rc != FA_OK)
        return rc;
    rc = analyze_image(svc, eng, bytes, n, fa_face_decode_reduction(&info), purpose, out, err);
    engine_release(svc, eng);
    if (rc != FA_OK)
        fa_face_probe_cleanup(out);
    return rc;
}

void fa_face_probe_cleanup(struct fa_face_probe *probe)
{
    free(probe->thumbnail);
    probe->thumbnail = NULL;
    probe->n_thumbnail = 0;
}

int fa_face_decode_reduction(const struct fa_image_info *info)
{
    int side = info->width < info->height ? info->width : info->height;
    int reduce = 1;
    /* Only libjpeg scales while decoding; other formats would be decoded
     * in full and then shrunk, which costs more, not less. */
    if (info->kind != FA_IMG_JPEG)
        return 1;
    while (reduce < FACE_DECODE_MAX_REDUCE && side / (2 * reduce) >= FACE_DECODE_MIN_SIDE)
        reduce *= 2;
    return reduce;
}

int fa_face_refine_reduction(const struct fa_face_opts *opts, enum fa_face_purpose purpose,
                             int reduce, const struct fa_face *faces, int n_found)
{
    float eye = faces[0].eye_distance;
    int better = reduce;
    while (better > 1 && eye < FACE_CHIP_MIN_EYES) {
        better /= 2;
        eye *= 2;
    }
    if (better == reduce && reduce > 1 && near_threshold(opts, purpose, reduce, faces, n_found))
        better = 1;
    return better;
}

float fa_face_best_score(const float *templates, int n, const float *probe)
{
    float best = -1.0f;
    for (int i = 0; i < n; i++) {
        float s = fa_cosine(templates + (size_t)i * FA_EMBED_DIM, probe, FA_EMBED_DIM);
        if (s > best)
            best = s;
    }
    return best;
}
