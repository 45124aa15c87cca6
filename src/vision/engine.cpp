/*
 * engine.cpp — loading the networks, face detection and 68 landmarks
 * (see vision.h and steps 1-2 of shared MODELS.md, which this follows to
 * the letter: preprocessing mistakes do not fail, they silently lower
 * accuracy, so do not "tidy" the constants below without re-checking them
 * against models-ref/reference.json).
 */
#include "vision_int.hpp"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <string>
#include <vector>

#include <opencv2/imgproc.hpp>

static const float kScoreMin = 0.65f; /* detector confidence to keep a box */
static const float kNmsIou = 0.4f;    /* boxes overlapping more are one face */
static const cv::Size kDetectSize(320, 240);
static const int kLandmarkSide = 64;

/* Load one ONNX file. A missing or unreadable file is FA_ENOTFOUND naming
 * the path, so that a wrong --models flag is obvious. */
static enum fa_rc load_net(const char *dir, const char *file, cv::dnn::Net &net,
                           struct fa_err *err)
{
    std::string path = std::string(dir) + "/" + file;
    if (access(path.c_str(), R_OK) != 0)
        return fa_err_set(err, FA_ENOTFOUND, "model file %s: %s", path.c_str(), strerror(errno));
    try {
        net = cv::dnn::readNetFromONNX(path);
    } catch (const cv::Exception &e) {
        return fa_err_set(err, FA_EVISION, "OpenCV cannot load %s: %s", path.c_str(),
                          e.err.c_str());
    }
    if (net.empty())
        return fa_err_set(err, FA_EVISION, "OpenCV loaded an empty network from %s", path.c_str());
    net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
    net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
    return FA_OK;
}

/* The detector and landmark nets always; the rest as `load` says (see
 * fa_engine_new_models). */
static enum fa_rc engine_load(const char *model_dir, unsigned load, struct fa_engine *eng,
                              struct fa_err *err)
{
    enum fa_rc rc = load_net(model_dir, "fr_detect.onnx", eng->detect, err);
    if (rc == FA_OK)
        rc = load_net(model_dir, "fr_landmark.onnx", eng->landmark, err);
    for (int i = 0; rc == FA_OK && i < FA_N_MODELS; i++) {
        enum fa_model m = (enum fa_model)i;
        if (load & FA_MODEL_BIT(m))
            rc = load_net(model_dir, fa_model_info(m)->file, fa_vision_model_net(eng, m), err);
    }
    if (rc == FA_OK && (load & FA_LOAD_LIVENESS))
        rc = load_net(model_dir, "fr_liveness.onnx", eng->liveness, err);
    if (rc == FA_OK)
        eng->loaded = load;
    return rc;
}

extern "C" enum fa_rc fa_engine_new(const char *model_dir, struct fa_engine **out,
                                    struct fa_err *err)
{
    return fa_engine_new_models(model_dir, FA_MODEL_BIT(FA_MODEL_ARCFACE), out, err);
}

extern "C" enum fa_rc fa_engine_new_models(const char *model_dir, unsigned load,
                                           struct fa_engine **out, struct fa_err *err)
{
    struct fa_engine *eng = NULL;
    try {
        if (out == NULL || model_dir == NULL)
            return fa_err_set(err, FA_EINVAL, "fa_engine_new: no model directory");
        *out = NULL;
        if ((load & ~(FA_MODELS_ALL | FA_LOAD_LIVENESS)) != 0)
            return fa_err_set(err, FA_EINVAL, "fa_engine_new: unknown load bits 0x%x", load);
        /* Process-wide, not per engine: we scale by running one engine per
         * thread, and OpenCV's own thread pool on top of that would only
         * make the workers fight for the same cores. Exactly once: with the
         * TBB backend each call tears down and rebuilds a global arena,
         * which races when workers load their engines in parallel. */
        static std::once_flag one_thread;
        std::call_once(one_thread, [] { cv::setNumThreads(1); });
        eng = new fa_engine();
        enum fa_rc rc = engine_load(model_dir, load, eng, err);
        if (rc != FA_OK) {
            delete eng;
            return rc;
        }
        *out = eng;
        return FA_OK;
    } catch (...) {
        delete eng;
        return fa_vision_caught(err, "fa_engine_new");
    }
}

extern "C" void fa_engine_free(struct fa_engine *eng)
{
    delete eng;
}

extern "C" unsigned fa_engine_loaded(const struct fa_engine *eng)
{
    return eng != NULL ? eng->loaded : 0;
}

extern "C" void fa_engine_set_profile(struct fa_engine *eng, struct fa_stage_times *acc)
{
    if (eng != NULL)
        eng->profile = acc;
}

/* log(p_face / p_background) of one softmax pair, capped where p_background
 * underflows: unlike p_face it does not saturate at 1 for clear faces. */
static float score_logit(const float *pair)
{
    static const float kLogitCap = 40.0f;
    if (!(pair[0] > 0.0f))
        return kLogitCap;
    if (!(pair[1] > 0.0f))
        return -kLogitCap;
    return std::clamp(std::log(pair[1]) - std::log(pair[0]), -kLogitCap, kLogitCap);
}

void fa_vision_detect_candidates(struct fa_engine *eng, const cv::Mat &img,
                                 std::vector<cv::Rect2d> &boxes, std::vector<float> &scores,
                                 std::vector<float> *logits)
{
    cv::Mat blob = cv::dnn::blobFromImage(img, 1.0 / 128, kDetectSize, cv::Scalar(127, 127, 127),
                                          true, false);
    eng->detect.setInput(blob);
    std::vector<cv::Mat> outs;
    eng->detect.forward(outs, std::vector<cv::String>{"boxes", "scores"});
    CV_Assert(outs.size() == 2 && outs[0].type() == CV_32F && outs[1].type() == CV_32F);
    CV_Assert(outs[0].isContinuous() && outs[1].isContinuous());
    size_t n = outs[0].total() / 4;
    CV_Assert(outs[0].total() == n * 4 && outs[1].total() == n * 2);
    const float *b = outs[0].ptr<float>();
    const float *s = outs[1].ptr<float>(); /* softmax pairs; column 1 is "face" */
    double w = img.cols, h = img.rows;
    for (size_t i = 0; i < n; i++) {
        if (s[2 * i + 1] < kScoreMin)
            continue;
        const float *q = b + 4 * i;
        boxes.emplace_back(q[0] * w, q[1] * h, (q[2] - q[0]) * w, (q[3] - q[1]) * h);
        scores.push_back(s[2 * i + 1]);
        if (logits != nullptr)
            logits->push_back(score_logit(s + 2 * i));
    }
}

/* Suppress overlapping boxes, clamp the survivors to the image and drop any
 * that end up without a whole pixel (boxes can reach past the border). */
static std::vector<struct fa_face> detect_boxes(struct fa_engine *eng, const cv::Mat &img)
{
    fa_stage_timer timer(FA_STAGE_SLOT(eng, detect));
    std::vector<cv::Rect2d> boxes;
    std::vector<float> scores, logits;
    fa_vision_detect_candidates(eng, img, boxes, scores, &logits);
    std::vector<int> keep;
    cv::dnn::NMSBoxes(boxes, scores, kScoreMin, kNmsIou, keep);
    std::vector<struct fa_face> faces;
    for (int k : keep) {
        const cv::Rect2d &r = boxes[(size_t)k];
        struct fa_face f;
        memset(&f, 0, sizeof f);
        f.x1 = (float)std::clamp(r.x, 0.0, (double)img.cols);
        f.y1 = (float)std::clamp(r.y, 0.0, (double)img.rows);
        f.x2 = (float)std::clamp(r.x + r.width, 0.0, (double)img.cols);
        f.y2 = (float)std::clamp(r.y + r.height, 0.0, (double)img.rows);
        f.score = scores[(size_t)k];
        f.logit = logits[(size_t)k];
        if (f.x2 - f.x1 >= 1.0f && f.y2 - f.y1 >= 1.0f)
            faces.push_back(f);
    }
    return faces;
}

/* The whole pixels the landmark net sees for a face box, inside the image. */
static cv::Rect landmark_crop(const struct fa_face *f, const cv::Mat &img)
{
    int x1 = (int)f->x1, y1 = (int)f->y1;
    int x2 = (int)f->x2, y2 = (int)f->y2;
    return cv::Rect(x1, y1, x2 - x1, y2 - y1) & cv::Rect(0, 0, img.cols, img.rows);
}

/* Step 2 of MODELS.md: crop, 64x64, gray, px/256; outputs are (x, y) pairs
 * relative to the crop, mapped back to image pixels. */
static void detect_landmarks(struct fa_engine *eng, const cv::Mat &img, struct fa_face *f)
{
    fa_stage_timer timer(FA_STAGE_SLOT(eng, landmarks));
    cv::Rect crop = landmark_crop(f, img);
    CV_Assert(crop.width > 0 && crop.height > 0);
    cv::Mat small, gray;
    cv::resize(img(crop), small, cv::Size(kLandmarkSide, kLandmarkSide));
    cv::cvtColor(small, gray, cv::COLOR_BGR2GRAY);
    cv::Mat blob = cv::dnn::blobFromImage(gray, 1.0 / 256);
    eng->landmark.setInput(blob);
    cv::Mat out = eng->landmark.forward();
    CV_Assert(out.type() == CV_32F && out.isContinuous() && out.total() == 136);
    const float *p = out.ptr<float>();
    for (int i = 0; i < 68; i++) {
        f->landmarks[i][0] = p[2 * i] * crop.width + crop.x;
        f->landmarks[i][1] = p[2 * i + 1] * crop.height + crop.y;
    }
}

/* Mean of landmarks [from, from+6): one eye of the iBUG 68 scheme. */
static cv::Point2f eye_centre(const struct fa_face *f, int from)
{
    cv::Point2f c(0, 0);
    for (int i = from; i < from + 6; i++)
        c += cv::Point2f(f->landmarks[i][0], f->landmarks[i][1]);
    return c / 6.0f;
}

static float box_area(const struct fa_face &f) { return (f.x2 - f.x1) * (f.y2 - f.y1); }

extern "C" enum fa_rc fa_detect(struct fa_engine *eng, const struct fa_image *img,
                                struct fa_face *faces, int max_faces, int *n_found,
                                struct fa_err *err)
{
    try {
        if (eng == NULL || img == NULL || n_found == NULL || max_faces < 0 ||
            (faces == NULL && max_faces > 0))
            return fa_err_set(err, FA_EINVAL, "fa_detect: bad arguments");
        *n_found = 0;
        std::vector<struct fa_face> found = detect_boxes(eng, img->bgr);
        /* largest first: callers treat faces[0] as "the" face of a photo */
        std::stable_sort(found.begin(), found.end(),
                         [](const fa_face &a, const fa_face &b) { return box_area(a) > box_area(b); });
        if (found.size() > FA_MAX_FACES)
            found.resize(FA_MAX_FACES);
        size_t n_out = std::min(found.size(), (size_t)max_faces);
        for (size_t i = 0; i < n_out; i++) { /* landmarks only for faces we report */
            detect_landmarks(eng, img->bgr, &found[i]);
            found[i].eye_distance = (float)cv::norm(eye_centre(&found[i], 36) - eye_centre(&found[i], 42));
            faces[i] = found[i];
        }
        *n_found = (int)found.size();
        return FA_OK;
    } catch (...) {
        return fa_vision_caught(err, "fa_detect");
    }
}
