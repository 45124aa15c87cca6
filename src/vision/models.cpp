/*
 * models.cpp — the table of embedding models and the calls that pick one
 * (fa_embed_model, fa_embed_models, fa_face_chip, fa_embed_chip_model; see
 * vision.h).
 *
 * DESIGN
 * A model is a row of two tables: what callers may know (kInfo: id, name,
 * file, dim, chip) and how its input is made (kPrep: blobFromImage scale and
 * mean). Everything else is shared: align for the model's chip, one forward
 * pass, L2-normalise. The rows restate shared MODELS.md; each preprocessing
 * mistake still runs and only lowers accuracy, which is why the unit tests
 * compare every model with reference outputs (tests/data/model_reference.json
 * and models-ref/reference.json) rather than trust these numbers.
 *
 * FA_MODEL_ARCFACE is the model of fa_embed (embed.cpp); its row here must
 * give the same numbers, and test_models checks that it does.
 */
#include "vision_int.hpp"

#include <math.h>
#include <string.h>

#include <opencv2/imgproc.hpp>

static const struct fa_model_info kInfo[FA_N_MODELS] = {
    {"fr_feature-1", "fr_feature", "fr_feature.onnx", 512, 112},
    {"mobilefacenet-1", "mobilefacenet", "mobilefacenet.onnx", 192, 112},
    {"dlib_resnet-1", "dlib", "dlib_resnet.onnx", 128, 150},
};

/* blobFromImage(chip, scale, {side, side}, mean, swapRB=true): with swapRB
 * the mean is in R, G, B order. */
struct model_prep {
    double scale;
    double mean[3];
};

static const struct model_prep kPrep[FA_N_MODELS] = {
    {1.0 / 128, {127, 127, 127}},                 /* fr_feature: (px - 127) / 128 */
    {1.0 / 128, {127.5, 127.5, 127.5}},           /* MobileFaceNet: (px - 127.5) / 128 */
    {1.0 / 255, {122.782, 117.001, 104.298}},     /* dlib: (px - mean RGB) / 255 */
};

static bool model_valid(enum fa_model m) { return (unsigned)m < (unsigned)FA_N_MODELS; }

extern "C" const struct fa_model_info *fa_model_info(enum fa_model m)
{
    return model_valid(m) ? &kInfo[m] : NULL;
}

extern "C" enum fa_rc fa_model_from_name(const char *name, enum fa_model *out, struct fa_err *err)
{
    for (int i = 0; name != NULL && out != NULL && i < FA_N_MODELS; i++)
        if (strcmp(name, kInfo[i].name) == 0 || strcmp(name, kInfo[i].id) == 0) {
            *out = (enum fa_model)i;
            return FA_OK;
        }
    return fa_err_set(err, FA_EINVAL, "unknown model '%s' (fr_feature, mobilefacenet or dlib)",
                      name != NULL ? name : "");
}

cv::dnn::Net &fa_vision_model_net(struct fa_engine *eng, enum fa_model m)
{
    switch (m) {
    case FA_MODEL_MFN:
        return eng->mfn;
    case FA_MODEL_DLIB:
        return eng->dlib;
    default:
        CV_Assert(m == FA_MODEL_ARCFACE);
        return eng->feature;
    }
}

/* The chip model m reads. */
static enum fa_rc model_align(enum fa_model m, const cv::Mat &bgr, const struct fa_face *face,
                              cv::Mat &chip, struct fa_err *err)
{
    if (m == FA_MODEL_DLIB)
        return fa_vision_align_dlib(bgr, face, chip, err);
    return fa_vision_align(bgr, face, chip, err);
}

static enum fa_rc model_usable(const struct fa_engine *eng, enum fa_model m, struct fa_err *err)
{
    if (!model_valid(m))
        return fa_err_set(err, FA_EINVAL, "no model number %d", (int)m);
    if (!(eng->loaded & FA_MODEL_BIT(m)))
        return fa_err_set(err, FA_EINVAL, "the engine was loaded without %s", kInfo[m].file);
    return FA_OK;
}

/* Forward one chip through model m and write its L2-normalised output. */
static enum fa_rc model_forward(struct fa_engine *eng, enum fa_model m, const cv::Mat &chip,
                                float *out, struct fa_err *err)
{
    fa_stage_timer timer(FA_STAGE_SLOT(eng, embed));
    const struct model_prep &p = kPrep[m];
    const int side = kInfo[m].chip_side, dim = kInfo[m].dim;
    cv::Mat blob = cv::dnn::blobFromImage(chip, p.scale, cv::Size(side, side),
                                          cv::Scalar(p.mean[0], p.mean[1], p.mean[2]), true, false);
    cv::dnn::Net &net = fa_vision_model_net(eng, m);
    net.setInput(blob);
    cv::Mat v = net.forward();
    CV_Assert(v.type() == CV_32F && v.isContinuous() && v.total() == (size_t)dim);
    const float *q = v.ptr<float>();
    double sq = 0;
    for (int i = 0; i < dim; i++)
        sq += (double)q[i] * q[i];
    if (!(sq > 0) || !isfinite(sq))
        return fa_err_set(err, FA_EVISION, "%s returned a zero or invalid vector", kInfo[m].file);
    float inv = (float)(1.0 / sqrt(sq));
    for (int i = 0; i < dim; i++)
        out[i] = q[i] * inv;
    return FA_OK;
}

extern "C" enum fa_rc fa_embed_model(struct fa_engine *eng, const struct fa_image *img,
                                     const struct fa_face *face, enum fa_model m, float *out,
                                     struct fa_err *err)
{
    try {
        if (eng == NULL || img == NULL || face == NULL || out == NULL)
            return fa_err_set(err, FA_EINVAL, "fa_embed_model: bad arguments");
        enum fa_rc rc = model_usable(eng, m, err);
        cv::Mat chip;
        if (rc == FA_OK) {
            fa_stage_timer timer(FA_STAGE_SLOT(eng, align));
            rc = model_align(m, img->bgr, face, chip, err);
        }
        if (rc == FA_OK)
            rc = model_forward(eng, m, chip, out, err);
        return rc;
    } catch (...) {
        return fa_vision_caught(err, "fa_embed_model");
    }
}

/* Check every requested model before any work, so that a bad mask fails
 * the same way whatever the face. */
static enum fa_rc models_usable(const struct fa_engine *eng, unsigned models,
                                float *const out[FA_N_MODELS], struct fa_err *err)
{
    if (models == 0 || (models & ~FA_MODELS_ALL) != 0)
        return fa_err_set(err, FA_EINVAL, "fa_embed_models: bad model mask 0x%x", models);
    for (int i = 0; i < FA_N_MODELS; i++) {
        enum fa_model m = (enum fa_model)i;
        if (!(models & FA_MODEL_BIT(m)))
            continue;
        if (out[i] == NULL)
            return fa_err_set(err, FA_EINVAL, "fa_embed_models: no output for %s", kInfo[i].name);
        enum fa_rc rc = model_usable(eng, m, err);
        if (rc != FA_OK)
            return rc;
    }
    return FA_OK;
}

extern "C" enum fa_rc fa_embed_models(struct fa_engine *eng, const struct fa_image *img,
                                      const struct fa_face *face, unsigned models,
                                      float *const out[FA_N_MODELS], struct fa_err *err)
{
    try {
        if (eng == NULL || img == NULL || face == NULL || out == NULL)
            return fa_err_set(err, FA_EINVAL, "fa_embed_models: bad arguments");
        enum fa_rc rc = models_usable(eng, models, out, err);
        cv::Mat chip112, chip150; /* each warped at most once */
        for (int i = 0; rc == FA_OK && i < FA_N_MODELS; i++) {
            enum fa_model m = (enum fa_model)i;
            if (!(models & FA_MODEL_BIT(m)))
                continue;
            cv::Mat &chip = kInfo[m].chip_side == 150 ? chip150 : chip112;
            if (chip.empty()) {
                fa_stage_timer timer(FA_STAGE_SLOT(eng, align));
                rc = model_align(m, img->bgr, face, chip, err);
            }
            if (rc == FA_OK)
                rc = model_forward(eng, m, chip, out[i], err);
        }
        return rc;
    } catch (...) {
        return fa_vision_caught(err, "fa_embed_models");
    }
}

extern "C" enum fa_rc fa_face_chip(const struct fa_image *img, const struct fa_face *face,
                                   enum fa_model m, struct fa_image **chip, struct fa_err *err)
{
    try {
        if (img == NULL || face == NULL || chip == NULL || !model_valid(m))
            return fa_err_set(err, FA_EINVAL, "fa_face_chip: bad arguments");
        *chip = NULL;
        cv::Mat c;
        enum fa_rc rc = model_align(m, img->bgr, face, c, err);
        if (rc == FA_OK)
            *chip = new fa_image{std::move(c)};
        return rc;
    } catch (...) {
        return fa_vision_caught(err, "fa_face_chip");
    }
}

extern "C" enum fa_rc fa_embed_chip_model(struct fa_engine *eng, const struct fa_image *chip,
                                          enum fa_model m, float *out, struct fa_err *err)
{
    try {
        if (eng == NULL || chip == NULL || out == NULL)
            return fa_err_set(err, FA_EINVAL, "fa_embed_chip_model: bad arguments");
        enum fa_rc rc = model_usable(eng, m, err);
        if (rc != FA_OK)
            return rc;
        int side = kInfo[m].chip_side;
        if (chip->bgr.cols != side || chip->bgr.rows != side)
            return fa_err_set(err, FA_EINVAL, "chip is %dx%d, not %dx%d", chip->bgr.cols,
                              chip->bgr.rows, side, side);
        return model_forward(eng, m, chip->bgr, out, err);
    } catch (...) {
        return fa_vision_caught(err, "fa_embed_chip_model");
    }
}
