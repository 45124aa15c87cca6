/*
 * pose.cpp — head pose from the 68 landmarks (fa_face_pose in vision.h).
 *
 * No pose network and no 3D fit: three ratios of a few landmarks, turned
 * into angles with the proportions of an average head. Enough to refuse a
 * profile or a face looking at the floor; not a measurement.
 *
 * Roll comes first: the eye line's angle. The other two are measured in the
 * face's own frame (the landmarks rotated by -roll about the eye midpoint),
 * so a tilted head does not read as turned.
 * - yaw: the nose tip (30) moves sideways from the eye midpoint by
 *   depth * sin(yaw) while the eye distance shrinks by cos(yaw), so
 *   offset / eye distance = (depth / eye distance) * tan(yaw); the nose tip
 *   of an average head sits about 0.45 eye distances in front of the eyes.
 * - pitch: r = (nose tip - eye line) / (mouth - eye line) measured across
 *   the eye line, mouth = mean of the outer lip (48-59). r moves by
 *   (nose depth / eye-to-mouth height) * tan(pitch), about 0.42 * tan(pitch)
 *   in a generic 3D head model, lower when the face looks up. The rest
 *   value 0.505 is the median r of our landmark net over the 6,922 lfw-dev
 *   photos (mostly frontal); dlib's mean face has 0.53, which read as 3.4
 *   degrees up on the same photos.
 * Over lfw-dev the 5th-95th percentiles are yaw -27..+28, pitch -21..+24
 * (after that calibration), roll -6..+3 (LFW is rotated upright).
 */
#include "vision_int.hpp"

#include <math.h>

static const double kYawDepth = 0.45;   /* nose-tip depth / eye distance */
static const double kPitchRest = 0.505; /* r of a frontal face (lfw-dev median) */
static const double kPitchDepth = 0.42; /* nose-tip depth / eye-to-mouth height */
static const double kDeg = 180.0 / M_PI;

/* Mean of landmarks [from, from + n). */
static void mean_point(const struct fa_face *f, int from, int n, double p[2])
{
    p[0] = p[1] = 0;
    for (int i = from; i < from + n; i++) {
        p[0] += f->landmarks[i][0] / n;
        p[1] += f->landmarks[i][1] / n;
    }
}

extern "C" enum fa_rc fa_face_pose(const struct fa_face *face, float *yaw, float *pitch,
                                   float *roll, struct fa_err *err)
{
    if (face == NULL)
        return fa_err_set(err, FA_EINVAL, "fa_face_pose: no face");
    double le[2], re[2], mouth[2];
    mean_point(face, 36, 6, le); /* the eye on the image's left */
    mean_point(face, 42, 6, re);
    mean_point(face, 48, 12, mouth);
    const double nose[2] = {face->landmarks[30][0], face->landmarks[30][1]};
    double ex = re[0] - le[0], ey = re[1] - le[1];
    double eye_dist = hypot(ex, ey);
    if (!isfinite(eye_dist) || !isfinite(mouth[0] + mouth[1] + nose[0] + nose[1]) ||
        eye_dist < 1e-3)
        return fa_err_set(err, FA_EINVAL, "face landmarks are degenerate");
    /* unit vectors along the eye line (u) and across it, pointing down (v) */
    double ux = ex / eye_dist, uy = ey / eye_dist, vx = -uy, vy = ux;
    double mid[2] = {(le[0] + re[0]) / 2, (le[1] + re[1]) / 2};
    double nx = nose[0] - mid[0], ny = nose[1] - mid[1];
    double mouth_down = (mouth[0] - mid[0]) * vx + (mouth[1] - mid[1]) * vy;
    /* a mouth at or above the eye line leaves r undefined: read as frontal
     * pitch (yaw and roll still say what is wrong with such a face) */
    double r = mouth_down > 1e-3 ? (nx * vx + ny * vy) / mouth_down : kPitchRest;
    if (roll != NULL)
        *roll = (float)(atan2(uy, ux) * kDeg);
    if (yaw != NULL)
        *yaw = (float)(atan((nx * ux + ny * uy) / eye_dist / kYawDepth) * kDeg);
    if (pitch != NULL)
        *pitch = (float)(atan((kPitchRest - r) / kPitchDepth) * kDeg);
    return FA_OK;
}
