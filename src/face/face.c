/*
 * face.c — engine pool and face policy (see face.h).
 *
 * The pool is a stack of free engines under one mutex with a condition
 * variable; nothing slow happens while the lock is held (only pushing and
 * popping a pointer), so the lock is never a bottleneck.
 */
#include "faceauth/face.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
                              int n_found, enum fa_face_purpose purpose, struct fa_err *err)
{
    double min_eye = purpose == FA_FACE_ENROLL ? svc->opts.min_eye_distance_enroll
                                               : svc->opts.min_eye_distance_auth;
    if (n_found == 0)
        return fa_err_set(err, FA_ENOFACE, "no face found in the image");
    if (n_found > 1 && box_area(&faces[1]) >= svc->opts.second_face_ratio * box_area(&faces[0]))
        return fa_err_set(err, FA_ENOFACE,
                          "several faces of similar size in the image (%d found); send a photo "
                          "of one person",
                          n_found);
    if (faces[0].eye_distance < min_eye)
        return fa_err_set(err, FA_ENOFACE,
                          "face too small: %.0f pixels between the eyes, at least %.0f needed",
                          faces[0].eye_distance, min_eye);
    return FA_OK;
}

/* Everything that needs an engine, on an image already decoded. */
static enum fa_rc analyze_image(struct fa_face_service *svc, struct fa_engine *eng,
                                const struct fa_image *img, enum fa_face_purpose purpose,
                                struct fa_face_probe *out, struct fa_err *err)
{
    struct fa_face faces[2];
    float brightness = 0;
    enum fa_rc rc = fa_detect(eng, img, faces, 2, &out->n_faces, err);
    if (rc == FA_OK)
        rc = choose_face(svc, faces, out->n_faces, purpose, err);
    if (rc == FA_OK)
        rc = fa_embed(eng, img, &faces[0], out->embedding, err);
    if (rc == FA_OK)
        rc = fa_face_quality(img, &faces[0], &out->sharpness, &brightness, err);
    if (rc == FA_OK)
        rc = fa_thumbnail_jpeg(img, &faces[0], svc->opts.thumbnail_size, &out->thumbnail,
                               &out->n_thumbnail, err);
    out->eye_distance = rc == FA_OK ? faces[0].eye_distance : 0;
    return rc;
}

enum fa_rc fa_face_analyze(struct fa_face_service *svc, const uint8_t *bytes, size_t n,
                           enum fa_face_purpose purpose, struct fa_face_probe *out,
                           struct fa_err *err)
{
    struct fa_engine *eng = NULL;
    struct fa_image *img = NULL;
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
    rc = fa_image_decode(bytes, n, svc->opts.max_pixels, &img, err);
    if (rc == FA_OK)
        rc = analyze_image(svc, eng, img, purpose, out, err);
    engine_release(svc, eng);
    fa_image_free(img);
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
