/*
 * thumb.cpp — the small square JPEG of a face that the API stores and shows
 * (see fa_thumbnail_jpeg in vision.h).
 *
 * The square is the box's longer side grown by 40%, centred on the box.
 * Near a border it slides back inside the image rather than showing black;
 * only when the square is larger than the image itself is the rest padded
 * with black, so the output is always square and never stretched.
 */
#include "vision_int.hpp"

#include <math.h>

#include <algorithm>

#include <opencv2/imgproc.hpp>

static const double kGrow = 1.4;
static const int kThumbQuality = 90;
static const int kThumbMaxSide = 2048;

/* Start of a span of `side` pixels centred on `centre` along an axis of
 * `len` pixels: slid inside [0, len) when it fits, else centred (and padded
 * later). */
static int span_start(double centre, int side, int len)
{
    int start = (int)lround(centre - side / 2.0);
    if (side <= len)
        start = std::clamp(start, 0, len - side);
    return start;
}

/* The square around the face, as pixels of img plus black padding. */
static void square_crop(const cv::Mat &img, const struct fa_face *f, cv::Mat &out)
{
    double w = f->x2 - f->x1, h = f->y2 - f->y1;
    int side = std::max(1, (int)lround(std::max(w, h) * kGrow));
    side = std::min(side, 4 * std::max(img.cols, img.rows)); /* a bogus box cannot explode */
    int x0 = span_start((f->x1 + f->x2) / 2.0, side, img.cols);
    int y0 = span_start((f->y1 + f->y2) / 2.0, side, img.rows);
    cv::Rect want(x0, y0, side, side);
    cv::Rect have = want & cv::Rect(0, 0, img.cols, img.rows);
    if (have.empty()) { /* box entirely outside: a black square, not a crash */
        out = cv::Mat::zeros(side, side, CV_8UC3);
        return;
    }
    cv::copyMakeBorder(img(have), out, have.y - want.y, want.br().y - have.br().y,
                       have.x - want.x, want.br().x - have.br().x, cv::BORDER_CONSTANT,
                       cv::Scalar(0, 0, 0));
}

extern "C" enum fa_rc fa_thumbnail_jpeg(const struct fa_image *img, const struct fa_face *face,
                                        int size, uint8_t **jpeg, size_t *n, struct fa_err *err)
{
    try {
        if (jpeg == NULL || n == NULL || img == NULL || face == NULL)
            return fa_err_set(err, FA_EINVAL, "fa_thumbnail_jpeg: bad arguments");
        *jpeg = NULL;
        *n = 0;
        if (size < 1 || size > kThumbMaxSide)
            return fa_err_set(err, FA_EINVAL, "thumbnail size %d is not within 1..%d", size,
                              kThumbMaxSide);
        if (!(isfinite(face->x1) && isfinite(face->y1) && isfinite(face->x2) &&
              isfinite(face->y2) && face->x2 > face->x1 && face->y2 > face->y1))
            return fa_err_set(err, FA_EINVAL, "face box is empty or not finite");
        cv::Mat square, thumb;
        square_crop(img->bgr, face, square);
        cv::resize(square, thumb, cv::Size(size, size), 0, 0,
                   square.cols > size ? cv::INTER_AREA : cv::INTER_LINEAR);
        return fa_vision_encode(thumb, FA_IMG_JPEG, kThumbQuality, jpeg, n, err);
    } catch (...) {
        return fa_vision_caught(err, "fa_thumbnail_jpeg");
    }
}
