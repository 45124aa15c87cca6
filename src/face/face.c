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
 * detection, never accuracy. Boxes, landmarks and chip measures also move a
 * little between decode sizes, so every refusal, and every decision within
 * a margin of its threshold (second-face ratio, eye distance, brightness,
 * pose), found at 1/r is taken again on the full image: reduction does not
 * change which photos are accepted. (Sharpness needs no margin: a reduced
 * decode is smoother, so a pass there is a pass in full.) Eye distances
 * leave this file in pixels of the original image.
 *
 * One request's walk (analyze_image): decode and detect, choose the face,
 * measure it (chip sharpness and brightness, pose from the landmarks, which
 * way up it is from one more detector pass on the photo turned upside down)
 * and apply the gates of the purpose (gates.c), then liveness when the request
 * asks for it, and only then the embeddings: a refused face costs no
 * embedding. Every model embeds once; the two 112x112 models share one
 * warp (fa_embed_models).
 */
#include "faceauth/face.h"

#include "face_test.h"

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
#define FACE_RECHECK_LEVELS 4.0  /* brightness this close to a gate's limit: the same */
#define FACE_RECHECK_DEGREES 3.0 /* a pose angle this close to its limit: the same */
#define FACE_RECHECK_UPRIGHT 1.0 /* an upright margin this close to FA_UPRIGHT_MIN: the same */

struct fa_face_service {
    struct fa_face_opts opts;
    unsigned models;         /* FA_MODEL_BIT()s every engine embeds with */
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
    svc->models = (opts->models & FA_MODELS_ALL) | FA_MODEL_BIT(FA_MODEL_ARCFACE);
    for (int i = 0; rc == FA_OK && i < n; i++) {
        rc = fa_engine_new_models(opts->model_dir, svc->models | FA_LOAD_LIVENESS, &svc->all[i],
                                  err);
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
    double t0 = fa_metrics_clock();
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
    fa_metrics_engine_wait(svc->opts.metrics, fa_metrics_clock() - t0);
    if (*out == NULL)
        return fa_err_set(err, FA_EBUSY, "server is busy: no face engine free for %d ms",
                          svc->opts.queue_timeout_ms);
    fa_metrics_engine_busy(svc->opts.metrics, 1);
    return FA_OK;
}

static void engine_release(struct fa_face_service *svc, struct fa_engine *eng)
{
    fa_metrics_engine_busy(svc->opts.metrics, -1);
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
 * tell who is meant and refuse rather than guess. (The face's size is a
 * quality gate, checked with the others once it is measured.)
 */
static enum fa_face_gate choose_face(const struct fa_face_service *svc,
                                     const struct fa_face *faces, int n_found,
                                     struct fa_err *err)
{
    if (n_found == 0) {
        fa_err_set(err, FA_ENOFACE, "no face found in the image");
        return FA_GATE_NOFACE;
    }
    if (n_found > 1 &&
        box_area(&faces[1]) >= svc->opts.second_face_ratio * box_area(&faces[0])) {
        fa_err_set(err, FA_EGATE,
                   "several faces of similar size in the image (%d found); send a photo of one "
                   "person",
                   n_found);
        return FA_GATE_SEVERAL;
    }
    return FA_GATE_PASS;
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
        double t0 = fa_metrics_clock(), t1;
        rc = fa_image_decode_reduced(bytes, n, svc->opts.max_pixels, *reduce, img, err);
        t1 = fa_metrics_clock();
        fa_metrics_stage(svc->opts.metrics, FA_STAGE_DECODE, t1 - t0);
        if (rc == FA_OK) {
            rc = fa_detect(eng, *img, faces, 2, n_found, err);
            fa_metrics_stage(svc->opts.metrics, FA_STAGE_DETECT, fa_metrics_clock() - t1);
        }
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

/* What the gates read, measured on the chosen face of an image decoded at
 * 1/reduce (eye distances leave in original pixels; angles and the chip
 * measures do not depend on the scale). */
static enum fa_rc measure(const struct fa_image *img, const struct fa_face *face, int reduce,
                          struct fa_face_measures *q, struct fa_err *err)
{
    enum fa_rc rc = fa_face_quality(img, face, &q->sharpness, &q->brightness, err);
    if (rc == FA_OK)
        rc = fa_face_pose(face, &q->yaw, &q->pitch, &q->roll, err);
    q->eye_distance = face->eye_distance * (float)reduce;
    return rc;
}

/* 1 when a face that passed the gates at 1/reduce has a measure so close to
 * a limit that the full image might not pass: brightness and pose move a
 * little with the decode size. Sharpness needs no margin: a reduced decode
 * is smoother, so a chip that is sharp enough there is sharp enough in full. */
static int near_limits(const struct fa_face_opts *opts, enum fa_face_purpose purpose,
                       const struct fa_face_measures *q)
{
    const struct fa_face_limits *l = purpose == FA_FACE_ENROLL ? &opts->enroll : &opts->auth;
    const double angle[] = {q->yaw, q->pitch, q->roll};
    const double limit[] = {l->max_yaw, l->max_pitch, l->max_roll};
    if (l->min_brightness > 0 && q->brightness < l->min_brightness + FACE_RECHECK_LEVELS)
        return 1;
    if (l->max_brightness > 0 && q->brightness > l->max_brightness - FACE_RECHECK_LEVELS)
        return 1;
    for (int i = 0; i < 3; i++)
        if (limit[i] > 0 && fabs(angle[i]) > limit[i] - FACE_RECHECK_DEGREES)
            return 1;
    return q->upright < FA_UPRIGHT_MIN + FACE_RECHECK_UPRIGHT;
}

/*
 * No face was found: look for one in the photo turned by 180 and by 90
 * degrees either way, so that a photo taken upside down or on its side
 * (and sent without the EXIF orientation that would have turned it) is
 * refused with the fix instead of "no face". Three detector passes,
 * only on photos that are refused anyway. On a find, *img is freed: no
 * face of it was chosen.
 */
static enum fa_rc explain_noface(struct fa_engine *eng, struct fa_image **img,
                                 enum fa_face_gate *gate, struct fa_err *err)
{
    int best_turns = 0;
    float best = 0;
    for (int turns = 1; turns <= 3; turns++) {
        int n = 0;
        float logit = 0;
        enum fa_rc rc = fa_detect_turned(eng, *img, turns, &n, &logit, err);
        if (rc != FA_OK)
            return rc;
        if (n > 0 && (best_turns == 0 || logit > best)) {
            best_turns = turns;
            best = logit;
        }
    }
    if (best_turns == 0)
        return fa_err_set(err, FA_ENOFACE, "no face found in the image");
    fa_image_free(*img);
    *img = NULL;
    *gate = best_turns == 2 ? FA_GATE_UPSIDE : FA_GATE_SIDEWAYS;
    return fa_err_set(err, FA_ENOFACE, "the face is %s: turn the photo the right way up",
                      best_turns == 2 ? "upside down" : "lying on its side");
}

/* One attempt of pick_face, decoding at the reduction *reduce (which
 * decode_detect may lower). */
static enum fa_rc pick_face_at(struct fa_face_service *svc, struct fa_engine *eng,
                               const uint8_t *bytes, size_t n, int *reduce,
                               enum fa_face_purpose purpose, struct fa_face_probe *out,
                               struct fa_image **img, struct fa_face *face,
                               enum fa_face_gate *gate, struct fa_err *err)
{
    struct fa_face faces[2];
    enum fa_rc rc =
        decode_detect(svc, eng, bytes, n, purpose, reduce, img, faces, &out->n_faces, err);
    if (rc != FA_OK)
        return rc;
    *gate = choose_face(svc, faces, out->n_faces, err);
    if (*gate != FA_GATE_PASS)
        return FA_ENOFACE;
    *face = faces[0];
    rc = measure(*img, face, *reduce, &out->q, err);
    if (rc == FA_OK)
        rc = fa_face_upright(eng, *img, face, &out->q.upright, &out->q.turned, err);
    if (rc != FA_OK)
        return rc;
    *gate = fa_face_check_gates(&svc->opts, purpose, &out->q, err);
    return *gate == FA_GATE_PASS ? FA_OK : FA_ENOFACE;
}

/*
 * Decode, detect, choose the face, measure it and apply the gates of
 * purpose. FA_OK with *gate == FA_GATE_PASS, *img and *face set (the
 * caller frees *img) when the face may be used; FA_ENOFACE (whatever the
 * gate: fa_face_analyze turns it into the gate's code) with *gate and
 * a message for a refusal (*img is then still set when a face was chosen,
 * for liveness statistics); any other code for an image or engine failure.
 * A refusal, or a pass near a gate's limit, found on a reduced decode is
 * decided again on the full image (see the top of the file).
 */
static enum fa_rc pick_face(struct fa_face_service *svc, struct fa_engine *eng,
                            const uint8_t *bytes, size_t n, int reduce,
                            enum fa_face_purpose purpose, struct fa_face_probe *out,
                            struct fa_image **img, struct fa_face *face, enum fa_face_gate *gate,
                            struct fa_err *err)
{
    enum fa_rc rc =
        pick_face_at(svc, eng, bytes, n, &reduce, purpose, out, img, face, gate, err);
    int in_full = reduce > 1 && (rc == FA_ENOFACE ||
                                 (rc == FA_OK && near_limits(&svc->opts, purpose, &out->q)));
    if (in_full) {
        fa_image_free(*img);
        *img = NULL;
        memset(&out->q, 0, sizeof out->q);
        *gate = FA_GATE_PASS;
        reduce = 1;
        rc = pick_face_at(svc, eng, bytes, n, &reduce, purpose, out, img, face, gate, err);
    }
    if (rc == FA_ENOFACE && *gate == FA_GATE_NOFACE && *img != NULL)
        rc = explain_noface(eng, img, gate, err);
    return rc;
}

/* Liveness screen: a face below liveness_min looks like a print or a screen. */
static enum fa_rc check_live(struct fa_face_service *svc, struct fa_engine *eng,
                             const struct fa_image *img, const struct fa_face *face,
                             struct fa_face_probe *out, enum fa_face_gate *gate, struct fa_err *err)
{
    enum fa_rc rc = fa_liveness(eng, img, face, &out->live, NULL, err);
    if (rc != FA_OK)
        return rc;
    out->liveness_checked = 1;
    if (out->live >= svc->opts.liveness_min)
        return FA_OK;
    *gate = FA_GATE_SPOOF;
    return fa_err_set(err, FA_ESPOOF,
                      "face looks like a photo or a screen (liveness %.3g < %.3g); show your "
                      "own face to the camera",
                      out->live, svc->opts.liveness_min);
}

/* Everything that needs an engine, on the bytes of one image. */
static enum fa_rc analyze_image(struct fa_face_service *svc, struct fa_engine *eng,
                                const uint8_t *bytes, size_t n, int reduce,
                                enum fa_face_purpose purpose, unsigned flags,
                                struct fa_face_probe *out, enum fa_face_gate *gate,
                                struct fa_err *err)
{
    struct fa_image *img = NULL;
    struct fa_face face;
    float *outs[FA_N_MODELS];
    enum fa_rc rc = pick_face(svc, eng, bytes, n, reduce, purpose, out, &img, &face, gate, err);
    if (rc == FA_OK && (flags & FA_FACE_LIVENESS))
        rc = check_live(svc, eng, img, &face, out, gate, err);
    for (int m = 0; m < FA_N_MODELS; m++)
        outs[m] = out->emb[m];
    if (rc == FA_OK) {
        double t0 = fa_metrics_clock();
        rc = fa_embed_models(eng, img, &face, svc->models, outs, err);
        fa_metrics_stage(svc->opts.metrics, FA_STAGE_EMBED, fa_metrics_clock() - t0);
    }
    if (rc == FA_OK)
        out->models = svc->models;
    if (rc == FA_OK)
        rc = fa_thumbnail_jpeg(img, &face, svc->opts.thumbnail_size, &out->thumbnail,
                               &out->n_thumbnail, err);
    fa_image_free(img);
    return rc;
}

enum fa_rc fa_face_analyze(struct fa_face_service *svc, const uint8_t *bytes, size_t n,
                           enum fa_face_purpose purpose, unsigned flags,
                           struct fa_face_probe *out, enum fa_face_gate *gate,
                           struct fa_err *err)
{
    struct fa_engine *eng = NULL;
    struct fa_image_info info;
    enum fa_face_gate verdict = FA_GATE_PASS;
    enum fa_rc rc;
    memset(out, 0, sizeof *out);
    rc = fa_image_probe(bytes, n, &info, err);
    if (rc == FA_OK) {
        out->kind = info.kind;
        /* Decoding is the costliest step for large photos: it waits for
         * an engine too, so CPU work stays bounded by the pool size. */
        rc = engine_acquire(svc, &eng, err);
    }
    if (rc == FA_OK) {
        rc = analyze_image(svc, eng, bytes, n, fa_face_decode_reduction(&info), purpose, flags,
                           out, &verdict, err);
        engine_release(svc, eng);
    }
    /* Inside this file FA_ENOFACE stands for any refusal of the chosen
     * face (pick_face decides again on the full image on it); callers get
     * the refusal's own code. */
    if (rc == FA_ENOFACE && verdict != FA_GATE_PASS)
        rc = fa_face_gate_rc(verdict);
    if (rc != FA_OK) {
        out->models = 0;
        fa_face_probe_cleanup(out);
    }
    if (verdict != FA_GATE_PASS)
        fa_metrics_gate(svc->opts.metrics, purpose == FA_FACE_ENROLL, (int)verdict);
    if (gate != NULL)
        *gate = verdict;
    return rc;
}

enum fa_rc fa_face_inspect(struct fa_face_service *svc, const uint8_t *bytes, size_t n,
                           enum fa_face_purpose purpose, struct fa_face_measures *q,
                           float *live, enum fa_face_gate *gate, struct fa_err *err)
{
    struct fa_engine *eng = NULL;
    struct fa_image_info info;
    struct fa_image *img = NULL;
    struct fa_face face;
    struct fa_face_probe *probe = calloc(1, sizeof *probe); /* 6 kB: not on the stack */
    enum fa_rc rc = probe == NULL ? fa_err_set(err, FA_ENOMEM, "out of memory") : FA_OK;
    *gate = FA_GATE_PASS;
    if (rc == FA_OK)
        rc = fa_image_probe(bytes, n, &info, err);
    if (rc == FA_OK)
        rc = engine_acquire(svc, &eng, err);
    if (rc != FA_OK) {
        free(probe);
        return rc;
    }
    rc = pick_face(svc, eng, bytes, n, fa_face_decode_reduction(&info), purpose, probe, &img,
                   &face, gate, err);
    if (live != NULL)
        *live = -1;
    /* Liveness is measured on every chosen face, refused or not, so that
     * tools can report its distribution; it decides nothing here. */
    if (live != NULL && img != NULL && (*gate == FA_GATE_PASS || *gate > FA_GATE_SEVERAL) &&
        fa_liveness(eng, img, &face, live, NULL, NULL) != FA_OK)
        *live = -1;
    engine_release(svc, eng);
    fa_image_free(img);
    *q = probe->q;
    free(probe);
    return rc == FA_ENOFACE ? FA_OK : rc;
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

