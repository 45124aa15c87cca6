/*
 * dlib_align.cpp — the 150x150 chip dlib's ResNet descriptor was trained on
 * (dlib's get_face_chip_details(shape, 150, 0.25), as shared MODELS.md
 * restates it for our 68 landmarks).
 *
 * 33 landmarks (27-54: nose and eyes and upper mouth; 60-64: inner upper
 * lip) are fitted by a least-squares similarity (fa_vision_fit_similarity, the
 * same fit as the 5-point alignment in embed.cpp) onto dlib's mean face,
 * scaled into the chip as ((0.25 + m) / 1.5) * 150, and the image is warped
 * with bilinear sampling and black borders. The fit goes from image points
 * to chip points: fitting chip -> image and inverting, which is what dlib's
 * own code does, gives a different least-squares answer on imperfect
 * landmarks, and only this direction reproduces models-ref's chips (mean
 * pixel difference 0.01, against 2-5 the other way). A plain box crop
 * instead of this alignment costs 3 points of LFW accuracy (MODELS.md).
 */
#include "vision_int.hpp"

#include <opencv2/imgproc.hpp>

enum { kDlibPoints = 33, kDlibSide = 150 };
static const double kPadding = 0.25;

/* dlib's mean face for the landmark in the first column, (x, y) in 0..1. */
static const float kMeanFace[kDlibPoints][3] = {
    {27, .490127f, .203352f}, {28, .490127f, .307009f}, {29, .490127f, .409805f},
    {30, .490127f, .515625f}, {31, .36688f, .587326f},  {32, .426036f, .609345f},
    {33, .490127f, .628106f}, {34, .554217f, .609345f}, {35, .613373f, .587326f},
    {36, .121737f, .216423f}, {37, .187122f, .178758f}, {38, .265825f, .179852f},
    {39, .334606f, .231733f}, {40, .260918f, .245099f}, {41, .182743f, .244077f},
    {42, .645647f, .231733f}, {43, .714428f, .179852f}, {44, .793132f, .178758f},
    {45, .858516f, .216423f}, {46, .79751f, .244077f},  {47, .719335f, .245099f},
    {48, .254149f, .780233f}, {49, .340985f, .745405f}, {50, .428858f, .727388f},
    {51, .490127f, .742578f}, {52, .551395f, .727388f}, {53, .639268f, .745405f},
    {54, .726104f, .780233f}, {60, .290379f, .784792f}, {61, .428096f, .778746f},
    {62, .490127f, .785343f}, {63, .552157f, .778746f}, {64, .689874f, .784792f},
};

enum fa_rc fa_vision_align_dlib(const cv::Mat &bgr, const struct fa_face *face, cv::Mat &chip,
                                struct fa_err *err)
{
    double src[kDlibPoints][2], dst[kDlibPoints][2];
    for (int i = 0; i < kDlibPoints; i++) {
        int k = (int)kMeanFace[i][0];
        src[i][0] = face->landmarks[k][0];
        src[i][1] = face->landmarks[k][1];
        dst[i][0] = (kPadding + kMeanFace[i][1]) / (1 + 2 * kPadding) * kDlibSide;
        dst[i][1] = (kPadding + kMeanFace[i][2]) / (1 + 2 * kPadding) * kDlibSide;
    }
    cv::Mat m;
    if (!fa_vision_fit_similarity(src, dst, kDlibPoints, m))
        return fa_err_set(err, FA_EINVAL, "face landmarks are degenerate");
    cv::warpAffine(bgr, chip, m, cv::Size(kDlibSide, kDlibSide), cv::INTER_LINEAR,
                   cv::BORDER_CONSTANT, cv::Scalar(0, 0, 0));
    return FA_OK;
}
