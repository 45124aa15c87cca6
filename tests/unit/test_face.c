/*
 * test_face.c — the face service's policy (include/faceauth/face.h): the
 * quality gates, liveness refusal, score fusion and the thresholds by photo
 * count.
 *
 * Pure parts are checked on numbers made here (gate order and messages,
 * fusion arithmetic with vectors of known cosine). The service is checked
 * end to end on the demo photos (FA_TEST_ASSETS) with the default config:
 * a face is cut out of a demo photo, and copies of it are made in the test
 * (augmented, blurred, darkened, brightened, rotated, shrunk), each encoded
 * as JPEG and sent through fa_face_analyze and fa_face_inspect as a request
 * would be. Needs the models (FA_MODEL_DIR); missing files fail the test.
 */
#include "faceauth/face.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faceauth/config.h"
#include "face/face_test.h"
#include "vision/vision_test.h"
#include "tap.h"

/* ------------------------------------------------------------ pure gates */

static struct fa_face_opts default_opts(void)
{
    static struct fa_config cfg; /* model_dir is borrowed by the opts */
    struct fa_face_opts o;
    fa_config_defaults(&cfg);
    snprintf(cfg.model_dir, sizeof cfg.model_dir, "%s", FA_MODEL_DIR);
    cfg.engines = 1;
    fa_face_opts_from_config(&cfg, &o);
    return o;
}

static struct fa_face_measures good_face(void)
{
    struct fa_face_measures q = {60, 150, 110, 5, -3, 2, 5, 2};
    return q;
}

static int says(const struct fa_err *err, const char *a, const char *b)
{
    return strstr(err->msg, a) != NULL && (b == NULL || strstr(err->msg, b) != NULL);
}

static void test_gates(void)
{
    struct fa_face_opts o = default_opts();
    struct fa_face_measures q;
    struct fa_err err = {{0}};

    q = good_face();
    TAP_OK(fa_face_check_gates(&o, FA_FACE_AUTH, &q, &err) == FA_GATE_PASS);
    TAP_OK(fa_face_check_gates(&o, FA_FACE_ENROLL, &q, &err) == FA_GATE_PASS);

    q.eye_distance = 12;
    tap_ok(fa_face_check_gates(&o, FA_FACE_AUTH, &q, &err) == FA_GATE_SMALL &&
               says(&err, "face too small", "12 pixels"),
           "small: %s", err.msg);
    q = good_face();
    q.eye_distance = 17; /* between the two minimums */
    tap_ok(fa_face_check_gates(&o, FA_FACE_AUTH, &q, &err) == FA_GATE_PASS &&
               fa_face_check_gates(&o, FA_FACE_ENROLL, &q, &err) == FA_GATE_SMALL,
           "17 px between the eyes: enough to authenticate, not to enroll");

    q = good_face();
    q.brightness = 20;
    q.sharpness = 3; /* a dark chip is flat too: darkness must be named first */
    tap_ok(fa_face_check_gates(&o, FA_FACE_AUTH, &q, &err) == FA_GATE_DARK &&
               says(&err, "too dark", "brightness 20"),
           "dark before blurry: %s", err.msg);
    q = good_face();
    q.brightness = 230;
    tap_ok(fa_face_check_gates(&o, FA_FACE_AUTH, &q, &err) == FA_GATE_BRIGHT &&
               says(&err, "too bright", "230"),
           "bright: %s", err.msg);
    q.brightness = 215;
    tap_ok(fa_face_check_gates(&o, FA_FACE_AUTH, &q, &err) == FA_GATE_PASS &&
               fa_face_check_gates(&o, FA_FACE_ENROLL, &q, &err) == FA_GATE_BRIGHT,
           "brightness 215: authenticates, does not enroll");

    q = good_face();
    q.yaw = -62;
    tap_ok(fa_face_check_gates(&o, FA_FACE_AUTH, &q, &err) == FA_GATE_POSE &&
               says(&err, "extreme pose", "yaw -62"),
           "yaw: %s", err.msg);
    q = good_face();
    q.pitch = 47;
    tap_ok(fa_face_check_gates(&o, FA_FACE_AUTH, &q, &err) == FA_GATE_POSE &&
               says(&err, "pitch 47", NULL),
           "pitch: %s", err.msg);
    q = good_face();
    q.roll = 36;
    tap_ok(fa_face_check_gates(&o, FA_FACE_AUTH, &q, &err) == FA_GATE_PASS &&
               fa_face_check_gates(&o, FA_FACE_ENROLL, &q, &err) == FA_GATE_POSE &&
               says(&err, "roll 36", NULL),
           "roll 36: authenticates, does not enroll: %s", err.msg);
    q = good_face();
    q.yaw = NAN;
    TAP_OK(fa_face_check_gates(&o, FA_FACE_AUTH, &q, &err) == FA_GATE_POSE);

    q = good_face();
    q.sharpness = 9.5f;
    tap_ok(fa_face_check_gates(&o, FA_FACE_AUTH, &q, &err) == FA_GATE_BLURRY &&
               says(&err, "too blurry", "sharpness 9.5"),
           "blurry: %s", err.msg);
    q.sharpness = 20;
    tap_ok(fa_face_check_gates(&o, FA_FACE_AUTH, &q, &err) == FA_GATE_PASS &&
               fa_face_check_gates(&o, FA_FACE_ENROLL, &q, &err) == FA_GATE_BLURRY,
           "sharpness 20: authenticates, does not enroll");

    q = good_face();
    q.upright = -6.5f;
    q.yaw = 70;
    q.sharpness = 1; /* upside down also reads as turned and blurry: the cause is named */
    tap_ok(fa_face_check_gates(&o, FA_FACE_AUTH, &q, &err) == FA_GATE_UPSIDE &&
               fa_face_check_gates(&o, FA_FACE_ENROLL, &q, &err) == FA_GATE_UPSIDE &&
               says(&err, "the face is upside down: turn the photo the right way up", "-6.5"),
           "upside down, before pose and blur: %s", err.msg);
    q.turned = 1;
    tap_ok(fa_face_check_gates(&o, FA_FACE_AUTH, &q, &err) == FA_GATE_SIDEWAYS &&
               says(&err, "lying on its side", NULL),
           "on its side: %s", err.msg);
    q = good_face();
    q.upright = -2.5f; /* within the margin */
    TAP_OK(fa_face_check_gates(&o, FA_FACE_ENROLL, &q, &err) == FA_GATE_PASS);
    q = good_face();
    q.upright = 0; /* not measured */
    TAP_OK(fa_face_check_gates(&o, FA_FACE_ENROLL, &q, &err) == FA_GATE_PASS);
    q.upright = NAN;
    TAP_OK(fa_face_check_gates(&o, FA_FACE_ENROLL, &q, &err) == FA_GATE_UPSIDE);

    /* A limit of 0 turns its gate off. */
    o.auth.min_sharpness = 0;
    o.auth.max_yaw = 0;
    q = good_face();
    q.sharpness = 0;
    q.yaw = 89;
    TAP_OK(fa_face_check_gates(&o, FA_FACE_AUTH, &q, NULL) == FA_GATE_PASS);

    TAP_OK(strcmp(fa_face_gate_name(FA_GATE_BLURRY), "blurry") == 0);
    TAP_OK(strcmp(fa_face_gate_name(FA_GATE_PASS), "pass") == 0);
    TAP_OK(strcmp(fa_face_gate_name(FA_GATE_UPSIDE), "upside") == 0);
    TAP_OK(strcmp(fa_face_gate_name(FA_GATE_SIDEWAYS), "sideways") == 0);
    TAP_OK(strcmp(fa_face_gate_name((enum fa_face_gate)99), "unknown") == 0);
}

/* ---------------------------------------------------------------- fusion */

static float g_vec[2][FA_N_MODELS][FA_MAX_EMBED_DIM];

/* Unit vectors a = e0 and b = c e0 + sqrt(1 - c^2) e1 for model m: cosine c. */
static void set_pair(enum fa_model m, double c)
{
    memset(g_vec[0][m], 0, sizeof g_vec[0][m]);
    memset(g_vec[1][m], 0, sizeof g_vec[1][m]);
    g_vec[0][m][0] = 1;
    g_vec[1][m][0] = (float)c;
    g_vec[1][m][1] = (float)sqrt(1 - c * c);
}

/* The config's fusion, and one model's cosine on the fused scale and back
 * (search reads a 0-1 threshold so). */
static void test_fusion_config(void)
{
    struct fa_config cfg;
    struct fa_fusion f;
    fa_config_defaults(&cfg);
    cfg.models = FA_MODEL_BIT(FA_MODEL_ARCFACE) | FA_MODEL_BIT(FA_MODEL_DLIB);
    cfg.znorm[FA_MODEL_DLIB][0] = 0.8;
    cfg.znorm[FA_MODEL_DLIB][1] = 0.05;
    fa_face_fusion_from_config(&cfg, &f);
    tap_ok(f.models == cfg.models && fabsf(f.mean[FA_MODEL_DLIB] - 0.8f) < 1e-7 &&
               fabsf(f.sd[FA_MODEL_DLIB] - 0.05f) < 1e-7 &&
               fabsf(f.sd[FA_MODEL_ARCFACE] - (float)cfg.znorm[FA_MODEL_ARCFACE][1]) < 1e-7,
           "fusion from the config: its models and znorm");
    tap_ok(fabs(fa_face_model_z(&f, FA_MODEL_DLIB, 0.9) - 2.0) < 1e-5,
           "model z: (0.9 - 0.8) / 0.05 = 2");
    tap_ok(fabs(fa_face_model_cosine(&f, FA_MODEL_DLIB, 2.0) - 0.9) < 1e-6,
           "model cosine: 0.8 + 2 x 0.05 = 0.9");
    tap_ok(fa_face_model_z(&f, FA_MODEL_DLIB, 0.5) < fa_face_model_z(&f, FA_MODEL_DLIB, 0.6),
           "monotone");
    f.sd[FA_MODEL_MFN] = 0;
    TAP_OK(isnan(fa_face_model_z(&f, FA_MODEL_MFN, 0.5)) &&
           isnan(fa_face_model_cosine(&f, FA_MODEL_MFN, 1)));
}

static void test_fusion(void)
{
    struct fa_fusion f = {FA_MODELS_ALL, {0.0078f, 0.0098f, 0.835f}, {0.097f, 0.145f, 0.035f}};
    const float *a[FA_N_MODELS], *b[FA_N_MODELS];
    const float *samples[3 * FA_N_MODELS];
    double z0 = (0.5 - 0.0078) / 0.097, z1 = (0.6 - 0.0098) / 0.145, z2 = (0.95 - 0.835) / 0.035;
    int counted = -1;

    set_pair(FA_MODEL_ARCFACE, 0.5);
    set_pair(FA_MODEL_MFN, 0.6);
    set_pair(FA_MODEL_DLIB, 0.95);
    for (int m = 0; m < FA_N_MODELS; m++) {
        a[m] = g_vec[0][m];
        b[m] = g_vec[1][m];
    }
    tap_ok(fabs(fa_face_fuse(&f, a, b) - (z0 + z1 + z2) / 3) < 1e-4,
           "fused = mean of the z-scores: %.4f vs %.4f", fa_face_fuse(&f, a, b),
           (z0 + z1 + z2) / 3);
    TAP_OK(fabs(fa_face_fuse(&f, b, a) - fa_face_fuse(&f, a, b)) < 1e-6);
    b[FA_MODEL_MFN] = NULL; /* a photo stored without MobileFaceNet */
    tap_ok(fabs(fa_face_fuse(&f, a, b) - (z0 + z2) / 2) < 1e-4,
           "a missing model: the mean of the others");
    f.models = FA_MODEL_BIT(FA_MODEL_DLIB);
    TAP_OK(fabs(fa_face_fuse(&f, a, b) - z2) < 1e-4);
    f.models = FA_MODEL_BIT(FA_MODEL_MFN);
    TAP_OK(isnan(fa_face_fuse(&f, a, b)));
    f.models = FA_MODELS_ALL;

    /* Best over samples; a sample sharing no model with the probe is skipped. */
    b[FA_MODEL_MFN] = g_vec[1][FA_MODEL_MFN];
    for (int m = 0; m < FA_N_MODELS; m++) {
        samples[m] = b[m];                       /* the pair's score */
        samples[FA_N_MODELS + m] = a[m];         /* identical: the best */
        samples[2 * FA_N_MODELS + m] = NULL;     /* nothing in common */
    }
    float best = fa_face_best_fused(&f, a, samples, 3, &counted);
    tap_ok(counted == 2 && fabs(best - fa_face_fuse(&f, a, a)) < 1e-4,
           "best of 3 samples, 2 scored: %.3f", best);
    TAP_OK(isnan(fa_face_best_fused(&f, a, samples + 2 * FA_N_MODELS, 1, &counted)) &&
           counted == 0);
    TAP_OK(isnan(fa_face_best_fused(&f, a, NULL, 0, NULL)));
}

/* ------------------------------------------------------ thresholds by k */

static void test_thresholds(void)
{
    struct fa_config cfg;
    fa_config_defaults(&cfg);
    double h1 = fa_cfg_list_at(&cfg.threshold_high, 1);
    double h3 = fa_cfg_list_at(&cfg.threshold_high, 3);
    double l1 = fa_cfg_list_at(&cfg.threshold_low, 1);
    tap_ok(h1 == 3.297 && l1 == 2.752, "one photo: high %.2f, low %.2f", h1, l1);
    tap_ok(h3 > h1 && fa_cfg_list_at(&cfg.threshold_high, 10) > h3,
           "more photos, higher threshold (best-of-k correction)");
    const struct fa_cfg_list *hi = &cfg.threshold_high, *lo = &cfg.threshold_low;
    int rising = 1;
    for (int k = 2; k <= 20; k++)
        rising &= fa_cfg_list_at(hi, k) >= fa_cfg_list_at(hi, k - 1) &&
                  fa_cfg_list_at(lo, k) >= fa_cfg_list_at(lo, k - 1) &&
                  fa_cfg_list_at(lo, k) < fa_cfg_list_at(hi, k);
    tap_ok(rising, "defaults never fall with k, and low stays below high");
    TAP_OK(fa_cfg_list_at(hi, 99) == hi->v[hi->n - 1]);
}

/* ------------------------------------------------- the service on photos */

struct photo {
    uint8_t *jpeg;
    size_t n;
};

static struct fa_face_service *g_svc;    /* the default config */
static struct fa_face_service *g_strict; /* yaw limited to 30 degrees, liveness_min 0.999 */
static struct fa_image *g_face;    /* one frontal face cut from sample6.jpg */
static struct fa_image *g_other;   /* another person, from sample5.jpg */
static struct fa_image *g_profile; /* the profile face of sample2.jpg */

static uint8_t *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    long len;
    if (f != NULL && fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) > 0 &&
        fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)len)) != NULL &&
        fread(buf, 1, (size_t)len, f) == (size_t)len) {
        *n = (size_t)len;
    } else {
        free(buf);
        buf = NULL;
    }
    if (f != NULL)
        fclose(f);
    return buf;
}

/* The face with index `which` (by size) of a demo photo, cut out with a
 * margin of one face width and height on every side (for the two faces
 * used here no other face comes into the cut). */
static struct fa_image *cut_face(const char *name, int which)
{
    char path[512];
    size_t n = 0;
    uint8_t *bytes;
    struct fa_image *img = NULL, *out = NULL;
    struct fa_engine *eng = NULL;
    struct fa_face faces[8];
    int found = 0;
    snprintf(path, sizeof path, "%s/%s", FA_TEST_ASSETS, name);
    bytes = read_file(path, &n);
    if (bytes != NULL && fa_image_decode(bytes, n, 40000000L, &img, NULL) == FA_OK &&
        fa_engine_new(FA_MODEL_DIR, &eng, NULL) == FA_OK &&
        fa_detect(eng, img, faces, 8, &found, NULL) == FA_OK && found > which) {
        struct fa_face *f = &faces[which];
        float w = f->x2 - f->x1, h = f->y2 - f->y1;
        struct fa_image_edit e = {0};
        e.crop_x = (int)fmaxf(0, f->x1 - w);
        e.crop_y = (int)fmaxf(0, f->y1 - h);
        e.crop_w = (int)(3 * w);
        e.crop_h = (int)(3 * h);
        fa_image_edit(img, &e, &out, NULL);
    }
    fa_engine_free(eng);
    fa_image_free(img);
    free(bytes);
    return out;
}

/* img changed by e, then by scale/brightness, as a JPEG of quality q. */
static struct photo make(const struct fa_image *img, struct fa_image_edit e, double scale,
                         int shift, int q)
{
    struct photo p = {NULL, 0};
    struct fa_image *a = NULL, *b = NULL;
    if (fa_image_edit(img, &e, &a, NULL) == FA_OK &&
        fa_image_adjust(a, scale, shift, &b, NULL) == FA_OK)
        fa_image_encode(b, FA_IMG_JPEG, q, &p.jpeg, &p.n, NULL);
    fa_image_free(a);
    fa_image_free(b);
    return p;
}

static const struct fa_image_edit NO_EDIT = {0};

/* A copy of the JPEG p with an EXIF APP1 segment right after its SOI that
 * holds only the orientation tag (0x0112, SHORT) set to `orientation`, as
 * a phone writes it; p is freed. */
static struct photo with_exif(struct photo p, int orientation)
{
    static const uint8_t app1[] = {
        0xFF, 0xE1, 0x00, 0x22, 'E', 'x', 'i', 'f', 0, 0,         /* APP1, length 34 */
        'I', 'I', 0x2A, 0x00, 0x08, 0x00, 0x00, 0x00,           /* TIFF, IFD0 at 8 */
        0x01, 0x00,                                             /* one entry */
        0x12, 0x01, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0, 0, 0, 0, /* orientation */
        0x00, 0x00, 0x00, 0x00};                                /* no next IFD */
    struct photo out = {NULL, 0};
    if (p.jpeg != NULL && p.n > 2 && (out.jpeg = malloc(p.n + sizeof app1)) != NULL) {
        memcpy(out.jpeg, p.jpeg, 2);
        memcpy(out.jpeg + 2, app1, sizeof app1);
        out.jpeg[2 + 28] = (uint8_t)orientation; /* the entry's value, little-endian */
        memcpy(out.jpeg + 2 + sizeof app1, p.jpeg + 2, p.n - 2);
        out.n = p.n + sizeof app1;
    }
    free(p.jpeg);
    return out;
}

/* Refusals whose code was not their gate's (fa_face_gate_rc): must stay 0. */
static int g_code_mismatches;

/* Analyze p for purpose; the gate verdict (FA_GATE_PASS on success). */
static enum fa_face_gate judge(struct fa_face_service *svc, struct photo p,
                               enum fa_face_purpose purpose, struct fa_face_probe *probe,
                               struct fa_err *err)
{
    enum fa_face_gate gate = FA_GATE_NOFACE;
    enum fa_rc rc;
    memset(err, 0, sizeof *err);
    rc = fa_face_analyze(svc, p.jpeg, p.n, purpose, 0, probe, &gate, err);
    fa_face_probe_cleanup(probe);
    if (rc != FA_OK && !fa_face_refused(rc))
        tap_diag("analyze: %s %s", fa_rc_name(rc), err->msg);
    if (fa_face_refused(rc) && rc != fa_face_gate_rc(gate)) {
        tap_diag("gate %s came with %s", fa_face_gate_name(gate), fa_rc_name(rc));
        g_code_mismatches++;
    }
    return rc == FA_OK ? FA_GATE_PASS : gate;
}

static struct fa_face_probe g_probe, g_ref;

/* p through svc for both purposes (and fa_face_inspect for authentication):
 * the expected verdicts, and words in the authentication refusal. */
static void check_with(struct fa_face_service *svc, const char *what, struct photo p,
                       enum fa_face_gate auth, enum fa_face_gate enroll, const char *words)
{
    struct fa_err err;
    struct fa_face_measures q;
    enum fa_face_gate seen = FA_GATE_PASS;
    enum fa_face_gate a = judge(svc, p, FA_FACE_AUTH, &g_probe, &err);
    tap_ok(a == auth && (words == NULL || says(&err, words, NULL)),
           "%s, authentication: %s (%s)", what, fa_face_gate_name(a), err.msg);
    enum fa_face_gate e = judge(svc, p, FA_FACE_ENROLL, &g_probe, &err);
    tap_ok(e == enroll, "%s, enrollment: %s (%s)", what, fa_face_gate_name(e), err.msg);
    enum fa_rc rc = fa_face_inspect(svc, p.jpeg, p.n, FA_FACE_AUTH, &q, NULL, &seen, &err);
    tap_ok(rc == FA_OK && seen == auth, "%s: fa_face_inspect agrees (%s, %s)", what,
           fa_face_gate_name(seen), rc == FA_OK ? "ok" : err.msg);
    free(p.jpeg);
}

static void check_photo(const char *what, struct photo p, enum fa_face_gate auth,
                        enum fa_face_gate enroll, const char *words)
{
    check_with(g_svc, what, p, auth, enroll, words);
}

/*
 * EXIF orientation is applied before detection: upright pixels tagged
 * "rotate 90 degrees clockwise to display" (6) are a face on its side once
 * decoded; pixels turned that way (made by decoding the tagged copy) and
 * tagged with the turn back (8) are upright again and pass.
 */
static void test_exif(const struct fa_image *upright)
{
    struct photo tagged = with_exif(make(upright, NO_EDIT, 1, 0, 92), 6);
    struct fa_image *turned = NULL;
    struct fa_err err = {{0}};
    int ok = tagged.jpeg != NULL &&
             fa_image_decode(tagged.jpeg, tagged.n, 40000000L, &turned, &err) == FA_OK;
    tap_ok(ok && fa_image_width(turned) == fa_image_height(upright) &&
               fa_image_height(turned) == fa_image_width(upright),
           "EXIF orientation 6: decoded %dx%d from %dx%d pixels (%s)", fa_image_width(turned),
           fa_image_height(turned), fa_image_width(upright), fa_image_height(upright), err.msg);
    check_photo("upright pixels tagged EXIF 6", tagged, FA_GATE_SIDEWAYS, FA_GATE_SIDEWAYS,
                "lying on its side");
    if (turned != NULL) {
        check_photo("turned pixels tagged EXIF 8 (turn back)",
                    with_exif(make(turned, NO_EDIT, 1, 0, 92), 8), FA_GATE_PASS, FA_GATE_PASS,
                    NULL);
        check_photo("turned pixels without EXIF", make(turned, NO_EDIT, 1, 0, 92),
                    FA_GATE_SIDEWAYS, FA_GATE_SIDEWAYS, "lying on its side");
    }
    fa_image_free(turned);
}

static void test_service_gates(void)
{
    struct fa_image_edit e = NO_EDIT;
    struct fa_image *whole = NULL;
    char path[512];
    size_t n = 0;
    uint8_t *bytes;

    check_photo("the face", make(g_face, NO_EDIT, 1, 0, 92), FA_GATE_PASS, FA_GATE_PASS, NULL);
    check_photo("smaller, brighter, JPEG 60", make(g_face, NO_EDIT, 0.6, 25, 60), FA_GATE_PASS,
                FA_GATE_PASS, NULL);
    e.blur_sigma = 6;
    check_photo("blurred (sigma 6)", make(g_face, e, 1, 0, 92), FA_GATE_BLURRY, FA_GATE_BLURRY,
                "too blurry");
    e.blur_sigma = 4;
    check_photo("blurred (sigma 4)", make(g_face, e, 1, 0, 92), FA_GATE_PASS, FA_GATE_BLURRY,
                NULL);
    e = NO_EDIT;
    e.gain = 0.2;
    check_photo("darkened (x0.2)", make(g_face, e, 1, 0, 92), FA_GATE_DARK, FA_GATE_DARK,
                "too dark");
    check_photo("overexposed (+140)", make(g_face, NO_EDIT, 1, 140, 92), FA_GATE_BRIGHT,
                FA_GATE_BRIGHT, "too bright");
    e = NO_EDIT;
    e.rotate_deg = 35;
    check_photo("rotated 35 degrees", make(g_face, e, 1, 0, 92), FA_GATE_PASS, FA_GATE_POSE,
                NULL);
    /* Yaw from landmarks is rough on a profile (it reads 45 to 60 degrees
     * depending on the crop), so the gate's mechanism is checked at 30. */
    check_with(g_strict, "a profile, yaw limited to 30", make(g_profile, NO_EDIT, 1, 0, 92),
               FA_GATE_POSE, FA_GATE_POSE, "turned sideways (yaw -");
    check_photo("shrunk to 12%", make(g_face, NO_EDIT, 0.12, 0, 92), FA_GATE_SMALL,
                FA_GATE_SMALL, "too small");
    e = NO_EDIT;
    e.gain = 0.02;
    check_photo("nearly black", make(g_face, e, 1, 0, 92), FA_GATE_NOFACE, FA_GATE_NOFACE,
                "no face");
    e = NO_EDIT;
    e.rotate_deg = 90;
    check_photo("on its side (90 degrees)", make(g_face, e, 1, 0, 92), FA_GATE_SIDEWAYS,
                FA_GATE_SIDEWAYS, "lying on its side");
    e.rotate_deg = -90;
    check_photo("on its other side (-90 degrees)", make(g_face, e, 1, 0, 92), FA_GATE_SIDEWAYS,
                FA_GATE_SIDEWAYS, "lying on its side");
    snprintf(path, sizeof path, "%s/sample3.jpg", FA_TEST_ASSETS);
    bytes = read_file(path, &n);
    e = NO_EDIT;
    e.rotate_deg = 180;
    if (bytes != NULL && fa_image_decode(bytes, n, 40000000L, &whole, NULL) == FA_OK) {
        /* the photo of issue #10: it passed every gate before */
        check_photo("sample3.jpg upside down (180 degrees, no EXIF)", make(whole, e, 1, 0, 92),
                    FA_GATE_UPSIDE, FA_GATE_UPSIDE,
                    "the face is upside down: turn the photo the right way up");
        check_photo("sample3.jpg as it is", make(whole, NO_EDIT, 1, 0, 92), FA_GATE_PASS,
                    FA_GATE_PASS, NULL);
        test_exif(whole);
    } else {
        tap_ok(0, "sample3.jpg readable");
    }
    fa_image_free(whole);
    whole = NULL;
    free(bytes);
    snprintf(path, sizeof path, "%s/sample1.jpg", FA_TEST_ASSETS);
    bytes = read_file(path, &n);
    if (bytes != NULL && fa_image_decode(bytes, n, 40000000L, &whole, NULL) == FA_OK)
        check_photo("three faces of a size", make(whole, NO_EDIT, 1, 0, 92), FA_GATE_SEVERAL,
                    FA_GATE_SEVERAL, "several faces");
    else
        tap_ok(0, "sample1.jpg readable");
    fa_image_free(whole);
    free(bytes);
}

/* fa_image_edit, which made the copies above: sizes and refusals. */
static void test_edit(void)
{
    struct fa_image_edit e = NO_EDIT;
    struct fa_image *out = NULL;
    struct fa_err err = {{0}};
    int w = fa_image_width(g_face), h = fa_image_height(g_face);

    e.crop_x = 10, e.crop_y = 20, e.crop_w = 50, e.crop_h = 40;
    TAP_OK(fa_image_edit(g_face, &e, &out, &err) == FA_OK && fa_image_width(out) == 50 &&
           fa_image_height(out) == 40);
    fa_image_free(out);
    e = NO_EDIT;
    e.crop_x = w - 5, e.crop_y = 0, e.crop_w = 50, e.crop_h = 50; /* clamped to the image */
    TAP_OK(fa_image_edit(g_face, &e, &out, &err) == FA_OK && fa_image_width(out) == 5);
    fa_image_free(out);
    e = NO_EDIT;
    e.rotate_deg = 90, e.blur_sigma = 2, e.gain = 0.5;
    TAP_OK(fa_image_edit(g_face, &e, &out, &err) == FA_OK && fa_image_width(out) == w &&
           fa_image_height(out) == h);
    fa_image_free(out);
    e = NO_EDIT;
    e.crop_x = w + 1, e.crop_w = 10, e.crop_h = 10;
    tap_ok(fa_image_edit(g_face, &e, &out, &err) == FA_EINVAL && out == NULL,
           "a crop outside the image: %s", err.msg);
    e = NO_EDIT;
    e.blur_sigma = -1;
    TAP_OK(fa_image_edit(g_face, &e, &out, &err) == FA_EINVAL);
    e.blur_sigma = NAN;
    TAP_OK(fa_image_edit(g_face, &e, &out, &err) == FA_EINVAL);
    TAP_OK(fa_image_edit(NULL, &e, &out, &err) == FA_EINVAL);
}

/* The same face survives augmentation under fusion; liveness refuses below
 * its minimum, with the measured value. */
static void test_service_scores(void)
{
    struct fa_fusion f = {FA_MODELS_ALL, {0.0078f, 0.0098f, 0.835f}, {0.097f, 0.145f, 0.035f}};
    const float *a[FA_N_MODELS], *b[FA_N_MODELS];
    struct photo ref = make(g_face, NO_EDIT, 1, 0, 92);
    struct photo aug = make(g_face, NO_EDIT, 0.6, 25, 60);
    struct photo other = make(g_other, NO_EDIT, 1, 0, 92);
    struct fa_err err = {{0}};
    struct fa_config cfg;

    fa_config_defaults(&cfg);
    TAP_OK(fa_face_analyze(g_svc, ref.jpeg, ref.n, FA_FACE_ENROLL, 0, &g_ref, NULL, &err) == FA_OK);
    TAP_OK(g_ref.models == FA_MODELS_ALL && g_ref.thumbnail != NULL && !g_ref.liveness_checked);
    TAP_OK(fa_face_analyze(g_svc, aug.jpeg, aug.n, FA_FACE_AUTH, FA_FACE_LIVENESS, &g_probe, NULL,
                           &err) == FA_OK);
    tap_ok(g_probe.liveness_checked && g_probe.live > 0.5f, "liveness ran: %.3f", g_probe.live);
    fa_face_probe_vectors(&g_ref, a);
    fa_face_probe_vectors(&g_probe, b);
    float genuine = fa_face_fuse(&f, a, b);
    tap_ok(genuine >= fa_cfg_list_at(&cfg.threshold_high, 15) + cfg.learn_margin,
           "the same face re-encoded: fused %.2f, above every high threshold + margin", genuine);
    fa_face_probe_cleanup(&g_probe);

    if (fa_face_analyze(g_svc, other.jpeg, other.n, FA_FACE_AUTH, 0, &g_probe, NULL, &err) ==
        FA_OK) {
        fa_face_probe_vectors(&g_probe, b);
        float impostor = fa_face_fuse(&f, a, b);
        tap_ok(impostor < fa_cfg_list_at(&cfg.threshold_low, 1),
               "another person: fused %.2f, below the low threshold", impostor);
    } else {
        tap_ok(0, "another person analyses: %s", err.msg);
    }
    fa_face_probe_cleanup(&g_probe);
    enum fa_face_gate gate = FA_GATE_PASS;
    enum fa_rc rc = fa_face_analyze(g_strict, aug.jpeg, aug.n, FA_FACE_AUTH, FA_FACE_LIVENESS,
                                    &g_probe, &gate, &err);
    tap_ok(rc == FA_ESPOOF && gate == FA_GATE_SPOOF && says(&err, "photo or a screen", "0.999") &&
               g_probe.liveness_checked && g_probe.live < 0.999f && g_probe.thumbnail == NULL,
           "liveness_min 0.999 refuses a live face, naming the score: %s", err.msg);
    fa_face_probe_cleanup(&g_probe);
    rc = fa_face_analyze(g_strict, aug.jpeg, aug.n, FA_FACE_AUTH, 0, &g_probe, &gate, &err);
    tap_ok(rc == FA_OK && !g_probe.liveness_checked, "without the flag, no liveness: %s",
           err.msg);
    fa_face_probe_cleanup(&g_probe);
    fa_face_probe_cleanup(&g_ref);
    free(ref.jpeg);
    free(aug.jpeg);
    free(other.jpeg);
}

/* ---------------------------------------------------- reduced decoding */

/* A face of the given box and eye distance (reduced pixels). */
static struct fa_face box_face(float side, float eyes)
{
    struct fa_face f;
    memset(&f, 0, sizeof f);
    f.x2 = f.y2 = side;
    f.eye_distance = eyes;
    f.score = 0.9f;
    return f;
}

/* The rule alone: which factor a photo is decoded at, and when a face
 * found there sends it back to a larger decode. */
static void test_reduction_rule(void)
{
    struct fa_face_opts o = default_opts();
    struct fa_image_info jpeg = {FA_IMG_JPEG, 1920, 1280}, phone = {FA_IMG_JPEG, 3024, 4032};
    struct fa_image_info small = {FA_IMG_JPEG, 960, 720}, png = {FA_IMG_PNG, 4000, 3000};
    struct fa_face two[2] = {box_face(200, 80), box_face(120, 50)};
    TAP_OK(fa_face_decode_reduction(&jpeg) == 2 && fa_face_decode_reduction(&phone) == 4);
    TAP_OK(fa_face_decode_reduction(&small) == 1 && fa_face_decode_reduction(&png) == 1);
    TAP_OK(fa_face_refine_reduction(&o, FA_FACE_AUTH, 2, two, 1) == 2);
    two[0].eye_distance = 20; /* 40 px at half the reduction: enough */
    TAP_OK(fa_face_refine_reduction(&o, FA_FACE_AUTH, 4, two, 1) == 2);
    TAP_OK(fa_face_refine_reduction(&o, FA_FACE_AUTH, 2, two, 1) == 1);
    two[0].eye_distance = 80;
    TAP_OK(fa_face_refine_reduction(&o, FA_FACE_AUTH, 2, two, 2) == 2); /* ratio 0.36 */
    two[1] = box_face(180, 70);                                          /* ratio 0.81 */
    tap_ok(fa_face_refine_reduction(&o, FA_FACE_ENROLL, 2, two, 2) == 1,
           "a second-face ratio near %.2f is decided on the full image", o.second_face_ratio);
}

/* A phone-sized photo goes through the reduced decode and comes out as a
 * full decode would: same verdict, eye distance in original pixels, and an
 * embedding within 0.01 of the full pipeline's. */
static void test_reduction_service(void)
{
    struct photo big = make(g_face, NO_EDIT, 4, 0, 92);
    struct fa_image_info info = {0};
    struct fa_image *img = NULL;
    struct fa_engine *eng = NULL;
    struct fa_face face[2];
    float full[FA_EMBED_DIM];
    int found = 0;
    struct fa_err err = {{0}};
    enum fa_rc rc = fa_face_analyze(g_svc, big.jpeg, big.n, FA_FACE_AUTH, 0, &g_probe, NULL, &err);
    fa_image_probe(big.jpeg, big.n, &info, NULL);
    if (tap_ok(rc == FA_OK && fa_face_decode_reduction(&info) > 1,
               "a %dx%d JPEG is decoded reduced (x1/%d) and passes: %s", info.width,
               info.height, fa_face_decode_reduction(&info), err.msg) &&
        fa_image_decode(big.jpeg, big.n, 40000000L, &img, NULL) == FA_OK &&
        fa_engine_new(FA_MODEL_DIR, &eng, NULL) == FA_OK &&
        fa_detect(eng, img, face, 2, &found, NULL) == FA_OK && found > 0 &&
        fa_embed(eng, img, &face[0], full, NULL) == FA_OK) {
        float c = fa_cosine(full, g_probe.emb[FA_MODEL_ARCFACE], FA_EMBED_DIM);
        tap_ok(c >= 0.99f, "its embedding matches a full decode's: cosine %.4f", c);
        tap_ok(fabsf(g_probe.q.eye_distance - face[0].eye_distance) <
                   0.05f * face[0].eye_distance,
               "eye distance in original pixels: %.0f (full decode %.0f)",
               g_probe.q.eye_distance, face[0].eye_distance);
    } else {
        tap_ok(0, "full-decode reference pipeline");
    }
    fa_face_probe_cleanup(&g_probe);
    fa_engine_free(eng);
    fa_image_free(img);
    free(big.jpeg);
}

int main(void)
{
    struct fa_face_opts o = default_opts();
    struct fa_face_opts strict = default_opts();
    struct fa_err err = {{0}};

    test_gates();
    test_fusion();
    test_fusion_config();
    test_thresholds();
    test_reduction_rule();
    strict.auth.max_yaw = strict.enroll.max_yaw = 30;
    strict.liveness_min = 0.999;
    if (!tap_ok(fa_face_service_new(&o, &g_svc, &err) == FA_OK &&
                    fa_face_service_new(&strict, &g_strict, &err) == FA_OK,
                "services: %s", err.msg))
        goto out;
    g_face = cut_face("sample6.jpg", 2);
    g_other = cut_face("sample5.jpg", 0);
    g_profile = cut_face("sample2.jpg", 0);
    if (tap_ok(g_face != NULL && g_other != NULL && g_profile != NULL,
               "faces cut from the demo photos")) {
        test_edit();
        test_service_gates();
        test_service_scores();
        test_reduction_service();
        tap_ok(g_code_mismatches == 0, "every refusal came with its gate's code: no face "
                                       "FA_ENOFACE, liveness FA_ESPOOF, the others FA_EGATE");
    }
out:
    fa_image_free(g_face);
    fa_image_free(g_other);
    fa_image_free(g_profile);
    fa_face_service_free(g_strict);
    fa_face_service_free(g_svc);
    return tap_done();
}
