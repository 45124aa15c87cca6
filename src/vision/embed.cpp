/*
 * embed.cpp — alignment, the 512-D embedding, chip quality and cosine
 * (see vision.h and steps 3-5 of shared MODELS.md).
 *
 * Alignment fits a similarity transform (rotation, uniform scale,
 * translation) from five landmarks onto the ArcFace template by plain least
 * squares, in closed form. MODELS.md names cv::estimateAffinePartial2D, but
 * that lives in calib3d, which we do not link; on five good points it gives
 * the same least-squares answer (its RANSAC keeps all five, then refines),
 * and it only differs when RANSAC throws a landmark away as an outlier.
 */
#include "vision_int.hpp"

#include <math.h>

#include <opencv2/imgproc.hpp>

/* The standard ArcFace positions in a 112x112 chip: left eye, right eye,
 * nose tip, left and right mouth corner. */
static const float kTemplate[5][2] = {
    {38.2946f, 51.6963f}, {73.5318f, 51.5014f}, {56.0252f, 71.7366f},
    {41.5493f, 92.3655f}, {70.7299f, 92.2041f},
};
static const int kChipSide = 112;

/* MODELS.md step 3: the five points from the iBUG 68. */
static void five_points(const struct fa_face *f, double pts[5][2])
{
    for (int c = 0; c < 2; c++) {
        double left = 0, right = 0;
        for (int i = 0; i < 6; i++) {
            left += f->landmarks[36 + i][c];
            right += f->landmarks[42 + i][c];
        }
        pts[0][c] = left / 6;
        pts[1][c] = right / 6;
        pts[2][c] = f->landmarks[30][c];
        pts[3][c] = f->landmarks[48][c];
        pts[4][c] = f->landmarks[54][c];
    }
}

/* The closed form in vision_int.hpp: with both point sets centred, the
 * optimal [a -b; b a] is a = sum(s.d) / sum(|s|^2), b = sum(s x d) / sum(|s|^2),
 * and the translation maps mean to mean. Shared by both alignments (this
 * file's five points and dlib_align.cpp's 33), so they cannot drift apart. */
bool fa_vision_fit_similarity(const double (*src)[2], const double (*dst)[2], int n, cv::Mat &m)
{
    double ms[2] = {0, 0}, md[2] = {0, 0};
    for (int i = 0; i < n; i++)
        for (int c = 0; c < 2; c++) {
            ms[c] += src[i][c] / n;
            md[c] += dst[i][c] / n;
        }
    double dot = 0, cross = 0, norm = 0;
    for (int i = 0; i < n; i++) {
        double sx = src[i][0] - ms[0], sy = src[i][1] - ms[1];
        double dx = dst[i][0] - md[0], dy = dst[i][1] - md[1];
        dot += sx * dx + sy * dy;
        cross += sx * dy - sy * dx;
        norm += sx * sx + sy * sy;
    }
    if (!(norm > 1e-6))
        return false;
    double a = dot / norm, b = cross / norm;
    m = (cv::Mat_<double>(2, 3) << a, -b, md[0] - (a * ms[0] - b * ms[1]),
         b, a, md[1] - (b * ms[0] + a * ms[1]));
    return cv::checkRange(m); /* a NaN or infinite landmark must not reach warpAffine */
}

enum fa_rc fa_vision_align(const cv::Mat &bgr, const struct fa_face *face, cv::Mat &chip,
                           struct fa_err *err)
{
    double pts[5][2], tpl[5][2];
    five_points(face, pts);
    for (int i = 0; i < 5; i++) {
        tpl[i][0] = kTemplate[i][0];
        tpl[i][1] = kTemplate[i][1];
    }
    cv::Mat m;
    if (!fa_vision_fit_similarity(pts, tpl, 5, m))
        return fa_err_set(err, FA_EINVAL, "face landmarks are degenerate");
    /* bilinear, border 0: what the reference chips were made with */
    cv::warpAffine(bgr, chip, m, cv::Size(kChipSide, kChipSide), cv::INTER_LINEAR,
                   cv::BORDER_CONSTANT, cv::Scalar(0, 0, 0));
    return FA_OK;
}

/* Forward one 112x112 BGR chip and L2-normalise the 512 outputs into out. */
static enum fa_rc embed_mat(struct fa_engine *eng, const cv::Mat &chip, float *out,
                            struct fa_err *err)
{
    if (!(eng->loaded & FA_MODEL_BIT(FA_MODEL_ARCFACE)))
        return fa_err_set(err, FA_EINVAL, "the engine was loaded without fr_feature.onnx");
    fa_stage_timer timer(FA_STAGE_SLOT(eng, embed));
    cv::Mat blob = cv::dnn::blobFromImage(chip, 1.0 / 128, cv::Size(kChipSide, kChipSide),
                                          cv::Scalar(127, 127, 127), true, false);
    eng->feature.setInput(blob);
    cv::Mat v = eng->feature.forward();
    CV_Assert(v.type() == CV_32F && v.isContinuous() && v.total() == FA_EMBED_DIM);
    const float *p = v.ptr<float>();
    double sq = 0;
    for (int i = 0; i < FA_EMBED_DIM; i++)
        sq += (double)p[i] * p[i];
    if (!(sq > 0) || !isfinite(sq))
        return fa_err_set(err, FA_EVISION, "the embedding network returned a zero or invalid vector");
    float inv = (float)(1.0 / sqrt(sq));
    for (int i = 0; i < FA_EMBED_DIM; i++)
        out[i] = p[i] * inv;
    return FA_OK;
}

extern "C" enum fa_rc fa_embed(struct fa_engine *eng, const struct fa_image *img,
                               const struct fa_face *face, float out[FA_EMBED_DIM],
                               struct fa_err *err)
{
    try {
        if (eng == NULL || img == NULL || face == NULL || out == NULL)
            return fa_err_set(err, FA_EINVAL, "fa_embed: bad arguments");
        cv::Mat chip;
        enum fa_rc rc;
        {
            fa_stage_timer timer(FA_STAGE_SLOT(eng, align));
            rc = fa_vision_align(img->bgr, face, chip, err);
        }
        if (rc != FA_OK)
            return rc;
        return embed_mat(eng, chip, out, err);
    } catch (...) {
        return fa_vision_caught(err, "fa_embed");
    }
}

extern "C" enum fa_rc fa_embed_chip(struct fa_engine *eng, const struct fa_image *chip112,
                                    float out[FA_EMBED_DIM], struct fa_err *err)
{
    try {
        if (eng == NULL || chip112 == NULL || out == NULL)
            return fa_err_set(err, FA_EINVAL, "fa_embed_chip: bad arguments");
        if (chip112->bgr.cols != kChipSide || chip112->bgr.rows != kChipSide)
            return fa_err_set(err, FA_EINVAL, "chip is %dx%d, not %dx%d", chip112->bgr.cols,
                              chip112->bgr.rows, kChipSide, kChipSide);
        return embed_mat(eng, chip112->bgr, out, err);
    } catch (...) {
        return fa_vision_caught(err, "fa_embed_chip");
    }
}

extern "C" enum fa_rc fa_face_quality(const struct fa_image *img, const struct fa_face *face,
                                      float *sharpness, float *brightness, struct fa_err *err)
{
    try {
        if (img == NULL || face == NULL || sharpness == NULL || brightness == NULL)
            return fa_err_set(err, FA_EINVAL, "fa_face_quality: bad arguments");
        /* measured on the aligned chip so that the numbers do not depend on
         * how large the face is in the photo */
        cv::Mat chip, gray, lap;
        enum fa_rc rc = fa_vision_align(img->bgr, face, chip, err);
        if (rc != FA_OK)
            return rc;
        cv::cvtColor(chip, gray, cv::COLOR_BGR2GRAY);
        cv::Laplacian(gray, lap, CV_64F);
        cv::Scalar mean, sd;
        cv::meanStdDev(lap, mean, sd);
        *sharpness = (float)(sd[0] * sd[0]);
        *brightness = (float)cv::mean(gray)[0];
        return FA_OK;
    } catch (...) {
        return fa_vision_caught(err, "fa_face_quality");
    }
}

/* The inputs are unit vectors, so the dot product is the cosine. */
extern "C" float fa_cosine(const float *a, const float *b, int dim)
{
    float s = 0.0f;
    for (int i = 0; i < dim; i++)
        s += a[i] * b[i];
    return s;
}
