/*
 * orient.cpp — which way up a face is (fa_face_upright, fa_detect_turned in
 * vision.h).
 *
 * Both run the detector on a turned copy of the image. The detector squeezes
 * any image to 320x240, so the copy is made at that size first and turned
 * after: resizing to 320x240 and turning by 180 degrees (or to 240x320 and
 * turning by 90) gives the detector the same pixels as turning the full
 * image, at a fraction of the cost of rotating a 12-megapixel photo.
 *
 * Measured with a Python twin of this pipeline on 1,000 lfw-dev photos and
 * the same photos turned by 180 degrees (margin = the face's logit minus its
 * logit in the turned photo): upright photos have a median margin of +5.9,
 * 1% fall under -1, 0.4% under -2, 0.2% under -3; upside-down ones have a
 * median of -5.8, and 94%, 90%, 82% fall under -1, -2, -3. LFW's tight
 * crops are the hard case: on photos with more than the face (the demo
 * photos, face-api.js's examples) the margins are wider.
 */
#include "vision_int.hpp"

#include <algorithm>
#include <vector>

#include <opencv2/imgproc.hpp>

static const float kScoreMin = 0.65f; /* as engine.cpp: a box the detector keeps */
static const float kNmsIou = 0.4f;
static const double kSameFaceIou = 0.3; /* a turned box overlapping this much is the face */
/* A face the detector is this sure of is not also checked on its sides:
 * a face lying on its side that the detector finds anyway scores low
 * (under 1 on the demo photos), upright ones mostly over 5. */
static const float kSureLogit = 4.0f;

/* img squeezed to the detector's 320x240 as it will see it after turning
 * clockwise by turns x 90 degrees (1..3). */
static cv::Mat turned_small(const cv::Mat &img, int turns)
{
    static const int codes[] = {cv::ROTATE_90_CLOCKWISE, cv::ROTATE_180,
                                cv::ROTATE_90_COUNTERCLOCKWISE};
    cv::Size before = turns == 2 ? cv::Size(320, 240) : cv::Size(240, 320);
    cv::Mat small, turned;
    cv::resize(img, small, before, 0, 0, cv::INTER_LINEAR);
    cv::rotate(small, turned, codes[turns - 1]);
    return turned;
}

/* The face's box, in 0..1 of the image, where it lands after the turn
 * (still in 0..1): clockwise (u, v) -> (1 - v, u), 180 -> (1 - u, 1 - v),
 * counter-clockwise (u, v) -> (v, 1 - u). */
static cv::Rect2d turned_box(const struct fa_face *f, double w, double h, int turns)
{
    double u1 = f->x1 / w, v1 = f->y1 / h, u2 = f->x2 / w, v2 = f->y2 / h;
    switch (turns) {
    case 1: return cv::Rect2d(1 - v2, u1, v2 - v1, u2 - u1);
    case 2: return cv::Rect2d(1 - u2, 1 - v2, u2 - u1, v2 - v1);
    default: return cv::Rect2d(v1, 1 - u2, v2 - v1, u2 - u1);
    }
}

static double iou(const cv::Rect2d &a, const cv::Rect2d &b)
{
    double inter = (a & b).area();
    double uni = a.area() + b.area() - inter;
    return uni > 0 ? inter / uni : 0.0;
}

/* Detector boxes, scores and logits of img turned by turns x 90 degrees,
 * with the boxes in 0..1 of the turned image. */
static void detect_turned(struct fa_engine *eng, const cv::Mat &img, int turns,
                          std::vector<cv::Rect2d> &boxes, std::vector<float> &scores,
                          std::vector<float> &logits)
{
    cv::Mat turned = turned_small(img, turns);
    fa_vision_detect_candidates(eng, turned, boxes, scores, &logits);
    for (cv::Rect2d &b : boxes) {
        b.x /= turned.cols;
        b.width /= turned.cols;
        b.y /= turned.rows;
        b.height /= turned.rows;
    }
}

/* The best logit of a box on the face in img turned by turns; false when
 * the detector finds nothing there. */
static bool face_logit_turned(struct fa_engine *eng, const cv::Mat &img,
                              const struct fa_face *face, int turns, float *logit)
{
    std::vector<cv::Rect2d> boxes;
    std::vector<float> scores, logits;
    detect_turned(eng, img, turns, boxes, scores, logits);
    cv::Rect2d mine = turned_box(face, img.cols, img.rows, turns);
    bool found = false;
    for (size_t i = 0; i < boxes.size(); i++) {
        if (iou(boxes[i], mine) > kSameFaceIou && (!found || logits[i] > *logit)) {
            *logit = logits[i];
            found = true;
        }
    }
    return found;
}

extern "C" enum fa_rc fa_face_upright(struct fa_engine *eng, const struct fa_image *img,
                                      const struct fa_face *face, float *margin, int *turns,
                                      struct fa_err *err)
{
    try {
        if (eng == NULL || img == NULL || face == NULL || margin == NULL || turns == NULL ||
            img->bgr.empty())
            return fa_err_set(err, FA_EINVAL, "fa_face_upright: bad arguments");
        fa_stage_timer timer(FA_STAGE_SLOT(eng, detect));
        *margin = FA_UPRIGHT_NONE;
        *turns = 0;
        int last = face->logit < kSureLogit ? 3 : 1;
        for (int i = 0; i < last; i++) {
            int t = i == 0 ? 2 : i; /* 180 first, then 90 and 270 degrees */
            float logit = 0;
            if (face_logit_turned(eng, img->bgr, face, t, &logit) &&
                face->logit - logit < *margin) {
                *margin = face->logit - logit;
                *turns = t;
            }
        }
        return FA_OK;
    } catch (...) {
        return fa_vision_caught(err, "fa_face_upright");
    }
}

extern "C" enum fa_rc fa_detect_turned(struct fa_engine *eng, const struct fa_image *img,
                                       int turns, int *n_found, float *best_logit,
                                       struct fa_err *err)
{
    try {
        if (eng == NULL || img == NULL || n_found == NULL || img->bgr.empty() || turns < 1 ||
            turns > 3)
            return fa_err_set(err, FA_EINVAL, "fa_detect_turned: bad arguments");
        *n_found = 0;
        fa_stage_timer timer(FA_STAGE_SLOT(eng, detect));
        std::vector<cv::Rect2d> boxes;
        std::vector<float> scores, logits;
        std::vector<int> keep;
        detect_turned(eng, img->bgr, turns, boxes, scores, logits);
        cv::dnn::NMSBoxes(boxes, scores, kScoreMin, kNmsIou, keep);
        *n_found = (int)keep.size();
        if (best_logit != NULL) {
            *best_logit = -FA_UPRIGHT_NONE;
            for (int k : keep)
                *best_logit = std::max(*best_logit, logits[(size_t)k]);
        }
        return FA_OK;
    } catch (...) {
        return fa_vision_caught(err, "fa_detect_turned");
    }
}
