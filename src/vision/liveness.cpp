/*
 * liveness.cpp — fr_liveness.onnx, a presentation-attack screen (see
 * fa_liveness in vision.h and shared MODELS.md).
 *
 * The net is a Silent-Face-Anti-Spoofing style classifier that judges the
 * face together with its surroundings (screen edges, paper borders), so its
 * input is the face box grown 2.7x around the box centre, resized to
 * 128x128, 0..255 (no normalisation). The crop follows the code the net
 * ships with (faceplugin-face-recognition-js, lib/fr_liveness.js): the
 * factor is lowered until the grown box fits the image, and a box that
 * reaches past a border is slid back inside rather than cut, so the net
 * always sees the same proportions.
 *
 * Channel order: BGR, as decoded, although MODELS.md and the package's
 * JavaScript feed RGB. Measured on the largest face of every lfw-dev image
 * (6,922 live photos): class 0 ("live") gets >= 0.5 on 79% of them in BGR
 * and on 43% in RGB (median 0.98 against 0.36); the two spoof samples of
 * silent_face_anti_spoofing get 0.0001-0.004 either way (class 1 takes the
 * rest) and its live sample 0.91 (BGR) against 0.64 (RGB). Class 2 never
 * won. The net descends from Silent-Face-Anti-Spoofing, which was trained
 * on OpenCV's BGR images. Three samples are no spoof benchmark: this is a
 * screening signal whose threshold must be calibrated where it is used.
 */
#include "vision_int.hpp"

#include <math.h>

#include <algorithm>

#include <opencv2/imgproc.hpp>

static const double kGrow = 2.7;
static const int kSide = 128;

/* The grown box, in whole pixels of an image of w x h; empty when the face
 * box is. */
static cv::Rect liveness_crop(const struct fa_face *f, int w, int h)
{
    double bw = f->x2 - f->x1, bh = f->y2 - f->y1;
    if (!(bw >= 1 && bh >= 1) || w < 2 || h < 2)
        return cv::Rect();
    double scale = std::min({(h - 1) / bh, (w - 1) / bw, kGrow});
    double nw = bw * scale, nh = bh * scale;
    double cx = f->x1 + bw / 2, cy = f->y1 + bh / 2;
    double x1 = cx - nw / 2, y1 = cy - nh / 2, x2 = cx + nw / 2, y2 = cy + nh / 2;
    if (x1 < 0) { /* slide right */
        x2 -= x1;
        x1 = 0;
    }
    if (y1 < 0) {
        y2 -= y1;
        y1 = 0;
    }
    if (x2 > w - 1) { /* slide left */
        x1 -= x2 - (w - 1);
        x2 = w - 1;
    }
    if (y2 > h - 1) {
        y1 -= y2 - (h - 1);
        y2 = h - 1;
    }
    cv::Rect r((int)std::max(x1, 0.0), (int)std::max(y1, 0.0), (int)(x2 - x1), (int)(y2 - y1));
    return r & cv::Rect(0, 0, w, h);
}

extern "C" enum fa_rc fa_liveness(struct fa_engine *eng, const struct fa_image *img,
                                  const struct fa_face *face, float *live,
                                  float probs[FA_LIVENESS_CLASSES], struct fa_err *err)
{
    try {
        if (eng == NULL || img == NULL || face == NULL)
            return fa_err_set(err, FA_EINVAL, "fa_liveness: bad arguments");
        if (!(eng->loaded & FA_LOAD_LIVENESS))
            return fa_err_set(err, FA_EINVAL, "the engine was loaded without fr_liveness.onnx");
        if (!(isfinite(face->x1) && isfinite(face->y1) && isfinite(face->x2) && isfinite(face->y2)))
            return fa_err_set(err, FA_EINVAL, "face box is not finite");
        cv::Rect crop = liveness_crop(face, img->bgr.cols, img->bgr.rows);
        if (crop.width < 1 || crop.height < 1)
            return fa_err_set(err, FA_EINVAL, "face box is empty");
        cv::Mat small;
        cv::resize(img->bgr(crop), small, cv::Size(kSide, kSide));
        cv::Mat blob = cv::dnn::blobFromImage(small, 1.0, cv::Size(kSide, kSide), cv::Scalar(),
                                              false, false); /* BGR: see the top */
        eng->liveness.setInput(blob);
        cv::Mat out = eng->liveness.forward();
        CV_Assert(out.type() == CV_32F && out.isContinuous() && out.total() == FA_LIVENESS_CLASSES);
        const float *z = out.ptr<float>();
        double mx = std::max({z[0], z[1], z[2]}), e[FA_LIVENESS_CLASSES], sum = 0;
        for (int i = 0; i < FA_LIVENESS_CLASSES; i++) {
            e[i] = exp((double)z[i] - mx); /* shifted by the max: no overflow */
            sum += e[i];
        }
        for (int i = 0; probs != NULL && i < FA_LIVENESS_CLASSES; i++)
            probs[i] = (float)(e[i] / sum);
        if (live != NULL)
            *live = (float)(e[FA_LIVENESS_LIVE] / sum);
        return FA_OK;
    } catch (...) {
        return fa_vision_caught(err, "fa_liveness");
    }
}
