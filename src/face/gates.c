/*
 * gates.c — the quality gates (see fa_face_check_gates in face.h).
 *
 * Every refusal names the problem, the measured value and the limit, so a
 * user who is refused knows what to change (more light, hold the camera
 * still, look at it) and an operator can tell a strict limit from a bad
 * photo. The limits and their measured effect on lfw-dev are in
 * config/faceauth.conf; `faceauth quality` runs this very code.
 *
 * Order matters where two gates see the same cause: a small face is also
 * blurry once the 112x112 chip is enlarged from it, and a dark chip has
 * little contrast, which lowers the variance of the Laplacian as blur does.
 * So size, then light, then orientation, then pose, then blur: the first
 * refusal names the cause, not a symptom.
 */
#include "faceauth/face.h"

#include <math.h>
#include <string.h>

const char *fa_face_gate_name(enum fa_face_gate gate)
{
    static const char *const names[] = {"pass",   "noface", "several", "small", "dark",
                                        "bright", "pose",   "blurry",  "spoof",
                                        "upside", "sideways"};
    if ((unsigned)gate >= sizeof names / sizeof names[0])
        return "unknown";
    return names[gate];
}

/* The pose gate: the first angle over its limit (a limit of 0 is off). */
static enum fa_face_gate check_pose(const struct fa_face_limits *l,
                                    const struct fa_face_measures *q, struct fa_err *err)
{
    static const char *const what[] = {"turned sideways (yaw", "tilted up or down (pitch",
                                       "tilted sideways (roll"};
    const double angle[] = {q->yaw, q->pitch, q->roll};
    const double limit[] = {l->max_yaw, l->max_pitch, l->max_roll};
    for (int i = 0; i < 3; i++) {
        if (limit[i] > 0 && !(fabs(angle[i]) <= limit[i])) {
            fa_err_set(err, FA_EGATE,
                       "extreme pose: the head is %s %.0f degrees, at most %.0f allowed); "
                       "look straight at the camera",
                       what[i], angle[i], limit[i]);
            return FA_GATE_POSE;
        }
    }
    return FA_GATE_PASS;
}

enum fa_face_gate fa_face_check_gates(const struct fa_face_opts *opts,
                                      enum fa_face_purpose purpose,
                                      const struct fa_face_measures *q, struct fa_err *err)
{
    const struct fa_face_limits *l = purpose == FA_FACE_ENROLL ? &opts->enroll : &opts->auth;
    double min_eye = purpose == FA_FACE_ENROLL ? opts->min_eye_distance_enroll
                                               : opts->min_eye_distance_auth;
    enum fa_face_gate pose;
    if (!(q->eye_distance >= min_eye)) {
        fa_err_set(err, FA_EGATE,
                   "face too small: %.0f pixels between the eyes, at least %.0f needed",
                   q->eye_distance, min_eye);
        return FA_GATE_SMALL;
    }
    if (l->min_brightness > 0 && !(q->brightness >= l->min_brightness)) {
        fa_err_set(err, FA_EGATE,
                   "face too dark: brightness %.0f of 255, at least %.0f needed; add light",
                   q->brightness, l->min_brightness);
        return FA_GATE_DARK;
    }
    if (l->max_brightness > 0 && !(q->brightness <= l->max_brightness)) {
        fa_err_set(err, FA_EGATE,
                   "face too bright: brightness %.0f of 255, at most %.0f allowed; avoid "
                   "direct light or overexposure",
                   q->brightness, l->max_brightness);
        return FA_GATE_BRIGHT;
    }
    /* Before pose and blur: an upside-down face also reads as turned or
     * blurry, and turning the photo is the one fix the user needs. After
     * light: a dark chip confuses the detector too. */
    if (!(q->upright >= FA_UPRIGHT_MIN)) {
        int side = q->turned == 1 || q->turned == 3;
        fa_err_set(err, FA_EGATE,
                   "the face is %s: turn the photo the right way up (upright margin %.1f, at "
                   "least %.1f needed)",
                   side ? "lying on its side" : "upside down", q->upright, FA_UPRIGHT_MIN);
        return side ? FA_GATE_SIDEWAYS : FA_GATE_UPSIDE;
    }
    pose = check_pose(l, q, err);
    if (pose != FA_GATE_PASS)
        return pose;
    if (l->min_sharpness > 0 && !(q->sharpness >= l->min_sharpness)) {
        fa_err_set(err, FA_EGATE,
                   "face too blurry: sharpness %.1f, at least %.1f needed; hold the camera "
                   "still and focus on the face",
                   q->sharpness, l->min_sharpness);
        return FA_GATE_BLURRY;
    }
    return FA_GATE_PASS;
}

void fa_face_opts_from_config(const struct fa_config *cfg, struct fa_face_opts *out)
{
    memset(out, 0, sizeof *out);
    out->model_dir = cfg->model_dir;
    out->engines = cfg->engines;
    out->queue_timeout_ms = cfg->queue_timeout_ms;
    out->max_pixels = cfg->max_pixels;
    out->second_face_ratio = cfg->second_face_ratio;
    out->min_eye_distance_enroll = cfg->min_eye_distance_enroll;
    out->min_eye_distance_auth = cfg->min_eye_distance_auth;
    out->thumbnail_size = cfg->thumbnail_size;
    out->enroll = (struct fa_face_limits){cfg->min_sharpness_enroll, cfg->min_brightness_enroll,
                                          cfg->max_brightness_enroll, cfg->max_yaw_enroll,
                                          cfg->max_pitch_enroll, cfg->max_roll_enroll};
    out->auth = (struct fa_face_limits){cfg->min_sharpness_auth, cfg->min_brightness_auth,
                                        cfg->max_brightness_auth, cfg->max_yaw_auth,
                                        cfg->max_pitch_auth, cfg->max_roll_auth};
    out->models = cfg->models;
    out->liveness_min = cfg->liveness_min;
}
