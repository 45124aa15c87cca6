/*
 * test_models.c — the three embedding models, liveness and pose (vision.h:
 * src/vision/models.cpp, dlib_align.cpp, liveness.cpp, pose.cpp).
 *
 * Needs the models (FA_MODEL_DIR, including the two that set-up converts)
 * and the demo photos (FA_TEST_ASSETS): when they are missing the test
 * FAILS, so a broken set-up cannot pass CI. What is checked:
 *   - the model table, names, load masks and their errors;
 *   - fa_embed_model(FA_MODEL_ARCFACE) equals fa_embed, and fa_embed_models
 *     equals one fa_embed_model per model;
 *   - reference vectors: tests/data/model_reference.json holds, for the
 *     largest face of sample1..3.jpg, its 68 landmarks and the MobileFaceNet
 *     and dlib embeddings of the chips our alignment makes from them,
 *     computed by independent numpy implementations (scripts/convert/
 *     reference_vectors.py). Each component must match within 1e-3. This
 *     runs everywhere: the chips are rebuilt here from the photos;
 *   - when ../shared/models-ref exists: dlib's 128-D descriptors of its
 *     chips (1e-3 per component) and our dlib alignment reproducing its
 *     150x150 chips from its landmarks;
 *   - per model, the same face re-encoded scores above every pair of
 *     different faces among the 22 demo faces;
 *   - liveness probabilities and pose angles are sane, and pose follows
 *     rotations and mirror images of the landmarks exactly.
 *
 * `test_models --write-chips DIR` writes the chips and landmarks the
 * reference vectors are computed from (see reference_vectors.py) and exits.
 */
#include "faceauth/vision.h"
#include "vision/vision_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "tap.h"
#include "testutil.h"

#define N_SAMPLES 6
#define N_REF 3         /* sample1..3 carry reference vectors */
#define MAX_FACES 8     /* the demo photos have at most 5 */
#define MAX_PIXELS 40000000L
#define REF_TOL 1e-3
#define REF_JSON FA_SOURCE_DIR "/tests/data/model_reference.json"
#define SHARED_REF FA_SOURCE_DIR "/../shared/models-ref"

static const int kExpectedFaces[N_SAMPLES] = {3, 3, 3, 4, 5, 4};

struct sample {
    uint8_t *bytes;
    size_t n;
    struct fa_image *img;
    struct fa_face faces[MAX_FACES];
    int n_faces;
    float emb[MAX_FACES][FA_N_MODELS][FA_MAX_EMBED_DIM];
};

/* ---------------------------------------------------------------- helpers */

static struct fa_image *decode_file(const char *path)
{
    size_t n = 0;
    uint8_t *bytes = tu_read_file(path, &n);
    struct fa_image *img = NULL;
    if (bytes != NULL && fa_image_decode(bytes, n, MAX_PIXELS, &img, NULL) != FA_OK)
        img = NULL;
    free(bytes);
    return img;
}

static double json_num(const cJSON *arr, int i)
{
    const cJSON *v = cJSON_GetArrayItem(arr, i);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* Largest |got[i] - scale * want[i]|; NaN-sticky, INFINITY on a length
 * mismatch. */
static double max_diff(const float *got, const cJSON *want, int dim, double scale)
{
    double worst = 0;
    if (!cJSON_IsArray(want) || cJSON_GetArraySize(want) != dim)
        return INFINITY;
    for (int i = 0; i < dim; i++) {
        double d = fabs(got[i] - scale * json_num(want, i));
        worst = d <= worst ? worst : d;
    }
    return worst;
}

static double json_norm(const cJSON *arr)
{
    double sq = 0;
    for (int i = 0; i < cJSON_GetArraySize(arr); i++)
        sq += json_num(arr, i) * json_num(arr, i);
    return sqrt(sq);
}

/* Landmarks from a JSON array of 68 [x, y] pairs into a face (box from
 * their extent); 0 when malformed. */
static int face_from_json(const cJSON *lm, struct fa_face *f)
{
    memset(f, 0, sizeof *f);
    if (cJSON_GetArraySize(lm) != 68)
        return 0;
    f->x1 = f->y1 = INFINITY;
    f->x2 = f->y2 = -INFINITY;
    for (int i = 0; i < 68; i++) {
        const cJSON *p = cJSON_GetArrayItem(lm, i);
        f->landmarks[i][0] = (float)json_num(p, 0);
        f->landmarks[i][1] = (float)json_num(p, 1);
        f->x1 = fminf(f->x1, f->landmarks[i][0]), f->x2 = fmaxf(f->x2, f->landmarks[i][0]);
        f->y1 = fminf(f->y1, f->landmarks[i][1]), f->y2 = fmaxf(f->y2, f->landmarks[i][1]);
    }
    f->score = 1;
    return isfinite(f->x1 + f->x2 + f->y1 + f->y2);
}

/* The API has no pixel accessor; a 24-bit BMP is the pixels after a
 * 54-byte header (rows padded with zeros to 4 bytes). malloc'ed. */
static uint8_t *image_bmp(const struct fa_image *img, size_t *n)
{
    uint8_t *bmp = NULL;
    *n = 0;
    if (fa_image_encode(img, FA_IMG_BMP, 0, &bmp, n, NULL) != FA_OK || *n < 54) {
        free(bmp);
        *n = 0;
        return NULL;
    }
    return bmp;
}

/* The sum of all pixel bytes: a fingerprint of a chip in the JSON. */
static unsigned long long chip_sum(const struct fa_image *chip)
{
    size_t n = 0;
    uint8_t *bmp = image_bmp(chip, &n);
    unsigned long long sum = 0;
    for (size_t i = 54; bmp != NULL && i < n; i++)
        sum += bmp[i];
    free(bmp);
    return sum;
}

/* Mean and largest absolute difference of two images' bytes; INFINITY when
 * their sizes differ. */
static double pixel_diff(const struct fa_image *a, const struct fa_image *b, int *max)
{
    size_t na = 0, nb = 0;
    uint8_t *pa = image_bmp(a, &na), *pb = image_bmp(b, &nb);
    double sum = 0, mean = INFINITY;
    *max = 256;
    if (pa != NULL && pb != NULL && na == nb) {
        *max = 0;
        for (size_t i = 54; i < na; i++) {
            int d = abs((int)pa[i] - (int)pb[i]);
            sum += d;
            *max = d > *max ? d : *max;
        }
        mean = sum / (double)(na - 54);
    }
    free(pa);
    free(pb);
    return mean;
}

/* ------------------------------------------------------------ the table */

static void test_table(void)
{
    static const char *const ids[FA_N_MODELS] = {"fr_feature-1", "mobilefacenet-1", "dlib_resnet-1"};
    static const int dims[FA_N_MODELS] = {512, 192, 128}, sides[FA_N_MODELS] = {112, 112, 150};
    struct fa_err err = {{0}};
    enum fa_model m = FA_N_MODELS;
    for (int i = 0; i < FA_N_MODELS; i++) {
        const struct fa_model_info *info = fa_model_info((enum fa_model)i);
        tap_ok(info != NULL && strcmp(info->id, ids[i]) == 0 && info->dim == dims[i] &&
                   info->chip_side == sides[i] && info->dim <= FA_MAX_EMBED_DIM &&
                   fa_model_from_name(info->name, &m, NULL) == FA_OK && m == (enum fa_model)i &&
                   fa_model_from_name(info->id, &m, NULL) == FA_OK && m == (enum fa_model)i,
               "model %d: %s %s %s %d-D, %dx%d chip", i, info ? info->id : "?",
               info ? info->name : "?", info ? info->file : "?", info ? info->dim : 0,
               info ? info->chip_side : 0, info ? info->chip_side : 0);
    }
    TAP_OK(strcmp(fa_model_info(FA_MODEL_ARCFACE)->id, FA_MODEL_ID) == 0);
    TAP_OK(fa_model_info(FA_N_MODELS) == NULL && fa_model_info((enum fa_model)-1) == NULL);
    tap_ok(fa_model_from_name("resnet", &m, &err) == FA_EINVAL && strstr(err.msg, "mobilefacenet"),
           "unknown model name: %s", err.msg);
    TAP_OK(fa_model_from_name(NULL, &m, NULL) == FA_EINVAL);
}

/* A folder holding symlinks to every model file but `skip`. */
static int partial_model_dir(char *dir, size_t cap, const char *skip)
{
    static const char *const files[] = {"fr_detect.onnx", "fr_landmark.onnx", "fr_feature.onnx",
                                        "fr_liveness.onnx", "mobilefacenet.onnx", "dlib_resnet.onnx"};
    snprintf(dir, cap, "/tmp/fa_test_models.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return 0;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char from[1024], to[1024];
        if (strcmp(files[i], skip) == 0)
            continue;
        snprintf(from, sizeof from, "%s/%s", FA_MODEL_DIR, files[i]);
        snprintf(to, sizeof to, "%s/%s", dir, files[i]);
        if (symlink(from, to) != 0)
            return 0;
    }
    return 1;
}

static void remove_model_dir(const char *dir)
{
    static const char *const files[] = {"fr_detect.onnx", "fr_landmark.onnx", "fr_feature.onnx",
                                        "fr_liveness.onnx", "mobilefacenet.onnx", "dlib_resnet.onnx"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

static void test_engine_errors(void)
{
    struct fa_engine *eng = NULL;
    struct fa_err err = {{0}};
    char dir[64];
    TAP_OK(fa_engine_new_models(FA_MODEL_DIR, 1u << 5, &eng, &err) == FA_EINVAL && eng == NULL);
    TAP_OK(fa_engine_new_models(FA_MODEL_DIR, FA_MODELS_ALL, NULL, &err) == FA_EINVAL);
    if (!tap_ok(partial_model_dir(dir, sizeof dir, "dlib_resnet.onnx"), "temp model folder"))
        return;
    enum fa_rc rc = fa_engine_new_models(dir, FA_MODELS_ALL, &eng, &err);
    tap_ok(rc == FA_ENOTFOUND && eng == NULL && strstr(err.msg, "dlib_resnet.onnx"),
           "folder without dlib_resnet.onnx: %s", err.msg);
    err.msg[0] = '\0';
    rc = fa_engine_new_models(dir, FA_MODEL_BIT(FA_MODEL_MFN) | FA_LOAD_LIVENESS, &eng, &err);
    tap_ok(rc == FA_OK && fa_engine_loaded(eng) == (FA_MODEL_BIT(FA_MODEL_MFN) | FA_LOAD_LIVENESS),
           "the same folder is enough without dlib: %s", err.msg);
    fa_engine_free(eng);
    remove_model_dir(dir);
    TAP_OK(fa_engine_loaded(NULL) == 0);
}

/* ------------------------------------------------------------ samples */

static int load_samples(struct fa_engine *eng, struct sample *s)
{
    int ok = 1;
    for (int i = 0; i < N_SAMPLES; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/sample%d.jpg", FA_TEST_ASSETS, i + 1);
        s[i].bytes = tu_read_file(path, &s[i].n);
        if (s[i].bytes == NULL ||
            fa_image_decode(s[i].bytes, s[i].n, MAX_PIXELS, &s[i].img, NULL) != FA_OK ||
            fa_detect(eng, s[i].img, s[i].faces, MAX_FACES, &s[i].n_faces, NULL) != FA_OK ||
            s[i].n_faces != kExpectedFaces[i])
            ok = 0;
    }
    tap_ok(ok, "six demo photos read and detected, 22 faces (set-up fetches them)");
    return ok;
}

/* Every face with all three models; same numbers as the one-model calls. */
static int embed_samples(struct fa_engine *eng, struct sample *s)
{
    int ok = 1, same = 1, unit = 1;
    for (int i = 0; i < N_SAMPLES; i++)
        for (int k = 0; k < s[i].n_faces; k++) {
            float *out[FA_N_MODELS] = {s[i].emb[k][0], s[i].emb[k][1], s[i].emb[k][2]};
            float one[FA_MAX_EMBED_DIM];
            ok &= fa_embed_models(eng, s[i].img, &s[i].faces[k], FA_MODELS_ALL, out, NULL) == FA_OK;
            for (int m = 0; m < FA_N_MODELS; m++) {
                int dim = fa_model_info((enum fa_model)m)->dim;
                ok &= fa_embed_model(eng, s[i].img, &s[i].faces[k], (enum fa_model)m, one, NULL) == FA_OK;
                same &= memcmp(one, out[m], (size_t)dim * sizeof(float)) == 0;
                unit &= fabsf(fa_cosine(out[m], out[m], dim) - 1.0f) < 1e-4f;
            }
        }
    tap_ok(ok && same && unit, "22 faces x 3 models: embedded (%d), equal to one-model calls (%d), "
           "unit length (%d)", ok, same, unit);
    return ok;
}

static void test_arcface_is_fa_embed(struct fa_engine *eng, const struct sample *s)
{
    float a[FA_EMBED_DIM], b[FA_EMBED_DIM];
    int ok = fa_embed(eng, s->img, &s->faces[0], a, NULL) == FA_OK &&
             fa_embed_model(eng, s->img, &s->faces[0], FA_MODEL_ARCFACE, b, NULL) == FA_OK;
    tap_ok(ok && memcmp(a, b, sizeof a) == 0, "fa_embed_model(FA_MODEL_ARCFACE) == fa_embed");
}

static void test_embed_errors(const struct sample *s)
{
    struct fa_engine *one = NULL;
    struct fa_err err = {{0}};
    float v[FA_MAX_EMBED_DIM];
    float *out[FA_N_MODELS] = {v, NULL, NULL};
    struct fa_image *chip = NULL;
    if (!tap_ok(fa_engine_new(FA_MODEL_DIR, &one, &err) == FA_OK, "fa_engine_new: %s", err.msg))
        return;
    TAP_OK(fa_engine_loaded(one) == FA_MODEL_BIT(FA_MODEL_ARCFACE));
    tap_ok(fa_embed_model(one, s->img, &s->faces[0], FA_MODEL_DLIB, v, &err) == FA_EINVAL &&
               strstr(err.msg, "dlib_resnet.onnx"), "model not loaded: %s", err.msg);
    TAP_OK(fa_liveness(one, s->img, &s->faces[0], NULL, NULL, &err) == FA_EINVAL);
    TAP_OK(fa_embed_models(one, s->img, &s->faces[0], FA_MODEL_BIT(FA_MODEL_MFN), out, &err) == FA_EINVAL);
    TAP_OK(fa_embed_models(one, s->img, &s->faces[0], 0, out, &err) == FA_EINVAL);
    TAP_OK(fa_embed_models(one, s->img, &s->faces[0], FA_MODELS_ALL, out, &err) == FA_EINVAL);
    TAP_OK(fa_embed_model(one, s->img, &s->faces[0], FA_N_MODELS, v, &err) == FA_EINVAL);
    TAP_OK(fa_face_chip(s->img, &s->faces[0], FA_MODEL_DLIB, &chip, &err) == FA_OK);
    tap_ok(fa_embed_chip_model(one, chip, FA_MODEL_ARCFACE, v, &err) == FA_EINVAL &&
               strstr(err.msg, "150x150"), "150x150 chip for a 112x112 model: %s", err.msg);
    fa_image_free(chip);
    struct fa_face flat = s->faces[0];
    for (int i = 0; i < 68; i++)
        flat.landmarks[i][0] = flat.landmarks[i][1] = 7.0f;
    TAP_OK(fa_face_chip(s->img, &flat, FA_MODEL_DLIB, &chip, &err) == FA_EINVAL && chip == NULL);
    fa_engine_free(one);
}

/* ------------------------------------------------------ reference vectors */

/* One face of model_reference.json: rebuild both chips from the photo and
 * the stored landmarks, embed them and compare with the stored vectors. */
static void check_ref_face(struct fa_engine *eng, const cJSON *item)
{
    static const enum fa_model models[2] = {FA_MODEL_MFN, FA_MODEL_DLIB};
    const cJSON *image = cJSON_GetObjectItemCaseSensitive(item, "image");
    char path[1024];
    struct fa_face f;
    struct fa_image *img = NULL;
    if (!cJSON_IsString(image) ||
        !face_from_json(cJSON_GetObjectItemCaseSensitive(item, "landmarks68"), &f)) {
        tap_ok(0, "model_reference.json: malformed entry");
        return;
    }
    snprintf(path, sizeof path, "%s/%s", FA_TEST_ASSETS, image->valuestring);
    img = decode_file(path);
    for (int j = 0; j < 2; j++) {
        const struct fa_model_info *info = fa_model_info(models[j]);
        struct fa_image *chip = NULL;
        float v[FA_MAX_EMBED_DIM];
        char key[64];
        double worst = INFINITY;
        unsigned long long sum = 0;
        if (img != NULL && fa_face_chip(img, &f, models[j], &chip, NULL) == FA_OK &&
            fa_embed_chip_model(eng, chip, models[j], v, NULL) == FA_OK)
            worst = max_diff(v, cJSON_GetObjectItemCaseSensitive(item, info->id), info->dim, 1.0);
        sum = chip != NULL ? chip_sum(chip) : 0;
        snprintf(key, sizeof key, "chip%d_sum", info->chip_side);
        const cJSON *want_sum = cJSON_GetObjectItemCaseSensitive(item, key);
        tap_ok(worst <= REF_TOL, "%s %s: max |diff| %.2e vs independent reference (limit %g)",
               image->valuestring, info->id, worst, REF_TOL);
        if (!cJSON_IsNumber(want_sum) || want_sum->valuedouble != (double)sum)
            tap_diag("%s %s: the chip differs from the one the reference was made from "
                     "(pixel sum %llu, reference %.0f): a different JPEG decoder?",
                     image->valuestring, info->id, sum,
                     cJSON_IsNumber(want_sum) ? want_sum->valuedouble : -1.0);
        fa_image_free(chip);
    }
    fa_image_free(img);
}

/* The detector finds (nearly) the landmarks stored in the JSON. */
static void check_ref_landmarks(const struct sample *s, const cJSON *item)
{
    struct fa_face f;
    double worst = 0;
    if (!face_from_json(cJSON_GetObjectItemCaseSensitive(item, "landmarks68"), &f))
        return;
    for (int i = 0; i < 68; i++)
        for (int c = 0; c < 2; c++)
            worst = fmax(worst, fabs(f.landmarks[i][c] - s->faces[0].landmarks[i][c]));
    tap_ok(worst < 0.5, "largest face's landmarks within %.4f px of the stored ones", worst);
}

static void test_model_reference(struct fa_engine *eng, const struct sample *s)
{
    cJSON *root = tu_read_json(REF_JSON);
    const cJSON *faces = cJSON_GetObjectItemCaseSensitive(root, "faces");
    if (tap_ok(cJSON_GetArraySize(faces) == N_REF, "%s has %d faces", REF_JSON, N_REF))
        for (int i = 0; i < N_REF; i++) {
            check_ref_face(eng, cJSON_GetArrayItem(faces, i));
            check_ref_landmarks(&s[i], cJSON_GetArrayItem(faces, i));
        }
    cJSON_Delete(root);
}

/* models-ref: dlib's descriptor of each 150x150 chip (ours is normalised, so
 * scale it back by the reference's length), and our alignment rebuilding
 * that chip from the reference landmarks. */
static void check_shared_face(struct fa_engine *eng, const cJSON *item, float out[128])
{
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "name"));
    const char *image = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "image"));
    const cJSON *want = cJSON_GetObjectItemCaseSensitive(item, "descriptor128");
    char path[1024];
    struct fa_image *chip = NULL, *img = NULL, *ours = NULL;
    struct fa_face f;
    double worst = INFINITY, pix = INFINITY;
    int pix_max = 256;
    snprintf(path, sizeof path, "%s/%s_chip150.png", SHARED_REF, name ? name : "?");
    chip = decode_file(path);
    /* ours is unit length: compare it scaled to the reference's length,
     * i.e. on the reference's own scale */
    if (chip != NULL && fa_embed_chip_model(eng, chip, FA_MODEL_DLIB, out, NULL) == FA_OK)
        worst = max_diff(out, want, 128, 1.0 / json_norm(want)) * json_norm(want);
    tap_ok(worst <= REF_TOL, "models-ref %s: dlib descriptor within %.2e of reference.json", name, worst);
    snprintf(path, sizeof path, "%s/%s", SHARED_REF, image ? image : "?");
    img = decode_file(path);
    if (img != NULL && chip != NULL &&
        face_from_json(cJSON_GetObjectItemCaseSensitive(item, "landmarks68"), &f) &&
        fa_face_chip(img, &f, FA_MODEL_DLIB, &ours, NULL) == FA_OK)
        pix = pixel_diff(ours, chip, &pix_max);
    /* the JSON rounds landmarks to 0.01 px, which moves a few pixels by 1-3 */
    tap_ok(pix < 0.05 && pix_max <= 4, "models-ref %s: our dlib alignment rebuilds its chip "
           "(mean |diff| %.4f, max %d)", name, pix, pix_max);
    fa_image_free(ours);
    fa_image_free(img);
    fa_image_free(chip);
}

static void test_shared_reference(struct fa_engine *eng)
{
    struct stat st;
    float d[4][128];
    if (stat(SHARED_REF, &st) != 0) {
        tap_diag("%s is absent (normal on a user's machine): dlib reference check skipped", SHARED_REF);
        return;
    }
    cJSON *root = tu_read_json(SHARED_REF "/reference.json");
    if (tap_ok(cJSON_GetArraySize(root) == 4, "models-ref/reference.json has 4 faces")) {
        for (int i = 0; i < 4; i++)
            check_shared_face(eng, cJSON_GetArrayItem(root, i), d[i]);
        float c12 = fa_cosine(d[0], d[1], 128), c34 = fa_cosine(d[2], d[3], 128);
        float c13 = fa_cosine(d[0], d[2], 128);
        tap_ok(c12 > c13 && c34 > c13, "dlib cosines: same person %.3f, %.3f; different %.3f",
               c12, c34, c13);
    }
    cJSON_Delete(root);
}

/* -------------------------------------------------- genuine and impostor */

/* Index of the face whose box centre has the given rank from the left. */
static int face_by_x_rank(const struct sample *s, int rank)
{
    for (int k = 0; k < s->n_faces; k++) {
        int left = 0;
        for (int j = 0; j < s->n_faces; j++)
            left += s->faces[j].x1 + s->faces[j].x2 < s->faces[k].x1 + s->faces[k].x2;
        if (left == rank)
            return k;
    }
    return -1;
}

/* The highest cosine of model m between different demo faces, leaving out
 * the look-alike pair of MODELS.md (sample1 right-most, sample3 middle). */
static float worst_impostor(const struct sample *s, int m, float *lookalike)
{
    int dim = fa_model_info((enum fa_model)m)->dim;
    int look_a = face_by_x_rank(&s[0], s[0].n_faces - 1), look_b = face_by_x_rank(&s[2], 1);
    float worst = -1;
    for (int i = 0; i < N_SAMPLES; i++)
        for (int k = 0; k < s[i].n_faces; k++)
            for (int j = i; j < N_SAMPLES; j++)
                for (int l = (j == i ? k + 1 : 0); l < s[j].n_faces; l++) {
                    float c = fa_cosine(s[i].emb[k][m], s[j].emb[l][m], dim);
                    if (i == 0 && j == 2 && k == look_a && l == look_b)
                        *lookalike = c;
                    else
                        worst = fmaxf(worst, c);
                }
    return worst;
}

static float iou(const struct fa_face *a, const struct fa_face *b)
{
    float w = fminf(a->x2, b->x2) - fmaxf(a->x1, b->x1), h = fminf(a->y2, b->y2) - fmaxf(a->y1, b->y1);
    if (w <= 0 || h <= 0)
        return 0;
    float inter = w * h;
    return inter / ((a->x2 - a->x1) * (a->y2 - a->y1) + (b->x2 - b->x1) * (b->y2 - b->y1) - inter);
}

/* The lowest cosine per model between each face and itself in a copy at
 * 60% scale, +25 brightness, JPEG quality 60. */
static int lowest_genuine(struct fa_engine *eng, const struct sample *s, float low[FA_N_MODELS])
{
    int lost = 0;
    for (int i = 0; i < N_SAMPLES; i++) {
        struct fa_image *adj = NULL, *back = NULL;
        uint8_t *jpeg = NULL;
        size_t n = 0;
        struct fa_face faces[MAX_FACES];
        int nf = 0;
        if (fa_image_adjust(s[i].img, 0.6, 25, &adj, NULL) != FA_OK ||
            fa_image_encode(adj, FA_IMG_JPEG, 60, &jpeg, &n, NULL) != FA_OK ||
            fa_image_decode(jpeg, n, MAX_PIXELS, &back, NULL) != FA_OK ||
            fa_detect(eng, back, faces, MAX_FACES, &nf, NULL) != FA_OK)
            lost += s[i].n_faces;
        for (int k = 0; back != NULL && k < s[i].n_faces; k++) {
            struct fa_face want = s[i].faces[k];
            int best = -1;
            float v[FA_N_MODELS][FA_MAX_EMBED_DIM];
            float *out[FA_N_MODELS] = {v[0], v[1], v[2]};
            want.x1 *= 0.6f, want.y1 *= 0.6f, want.x2 *= 0.6f, want.y2 *= 0.6f;
            for (int j = 0; j < nf; j++)
                if (iou(&want, &faces[j]) > 0.3f &&
                    (best < 0 || iou(&want, &faces[j]) > iou(&want, &faces[best])))
                    best = j;
            if (best < 0 || fa_embed_models(eng, back, &faces[best], FA_MODELS_ALL, out, NULL) != FA_OK) {
                lost++;
                continue;
            }
            for (int m = 0; m < FA_N_MODELS; m++)
                low[m] = fminf(low[m], fa_cosine(v[m], s[i].emb[k][m], fa_model_info((enum fa_model)m)->dim));
        }
        fa_image_free(back);
        free(jpeg);
        fa_image_free(adj);
    }
    return lost;
}

static void test_genuine_impostor(struct fa_engine *eng, const struct sample *s)
{
    float low[FA_N_MODELS] = {2, 2, 2};
    int lost = lowest_genuine(eng, s, low);
    TAP_OK(lost == 0);
    for (int m = 0; m < FA_N_MODELS; m++) {
        float look = 0, imp = worst_impostor(s, m, &look);
        tap_ok(low[m] > imp + 0.02f, "%s: same face re-encoded >= %.3f, 230 pairs of different "
               "faces <= %.3f (look-alike pair %.3f)", fa_model_info((enum fa_model)m)->id, low[m],
               imp, look);
    }
}

/* ------------------------------------------------------------ liveness */

static void test_liveness(struct fa_engine *eng, const struct sample *s)
{
    int ok = 1, live = 0, n = 0;
    for (int i = 0; i < N_SAMPLES; i++)
        for (int k = 0; k < s[i].n_faces; k++) {
            float p[FA_LIVENESS_CLASSES], l = -1;
            ok &= fa_liveness(eng, s[i].img, &s[i].faces[k], &l, p, NULL) == FA_OK;
            ok &= fabsf(p[0] + p[1] + p[2] - 1.0f) < 1e-4f && l == p[FA_LIVENESS_LIVE];
            for (int c = 0; c < FA_LIVENESS_CLASSES; c++)
                ok &= p[c] >= 0 && p[c] <= 1;
            live += l >= 0.5f;
            n++;
        }
    tap_ok(ok, "liveness: 22 faces, probabilities in 0..1 summing to 1");
    /* 18 of 22 measured; these are real people, mostly well lit */
    tap_ok(live >= 15, "liveness: %d of %d demo faces scored live >= 0.5", live, n);
    struct fa_face corner = s[0].faces[0], empty = s[0].faces[0];
    corner.x1 = 0, corner.y1 = 0, corner.x2 = 30, corner.y2 = 40;
    TAP_OK(fa_liveness(eng, s[0].img, &corner, NULL, NULL, NULL) == FA_OK);
    empty.x2 = empty.x1;
    TAP_OK(fa_liveness(eng, s[0].img, &empty, NULL, NULL, NULL) == FA_EINVAL);
}

/* ---------------------------------------------------------------- pose */

/* The iBUG 68 point each point becomes in a mirror image. */
static int mirror_index(int i)
{
    static const int pairs[][2] = {{17, 26}, {18, 25}, {19, 24}, {20, 23}, {21, 22}, {31, 35},
                                   {32, 34}, {36, 45}, {37, 44}, {38, 43}, {39, 42}, {40, 47},
                                   {41, 46}, {48, 54}, {49, 53}, {50, 52}, {55, 59}, {56, 58},
                                   {60, 64}, {61, 63}, {65, 67}};
    if (i <= 16)
        return 16 - i;
    for (size_t k = 0; k < sizeof pairs / sizeof pairs[0]; k++) {
        if (pairs[k][0] == i)
            return pairs[k][1];
        if (pairs[k][1] == i)
            return pairs[k][0];
    }
    return i;
}

static void test_pose(const struct sample *s)
{
    int ok = 1, all = 0;
    float y, p, r, y2, p2, r2;
    for (int i = 0; i < N_SAMPLES; i++)
        for (int k = 0; k < s[i].n_faces; k++) {
            all++;
            ok &= fa_face_pose(&s[i].faces[k], &y, &p, &r, NULL) == FA_OK && fabsf(y) < 60 &&
                  fabsf(p) < 60 && fabsf(r) < 60;
        }
    tap_ok(ok && all == 22, "pose of the 22 demo faces within 60 degrees");
    const struct fa_face *f = &s[1].faces[1];
    struct fa_face rot = *f, mir = *f;
    double a = 20 * M_PI / 180, cx = (f->x1 + f->x2) / 2, cy = (f->y1 + f->y2) / 2;
    for (int i = 0; i < 68; i++) {
        double dx = f->landmarks[i][0] - cx, dy = f->landmarks[i][1] - cy;
        rot.landmarks[i][0] = (float)(cx + 1.5 * (dx * cos(a) - dy * sin(a)) + 100);
        rot.landmarks[i][1] = (float)(cy + 1.5 * (dx * sin(a) + dy * cos(a)) - 40);
        mir.landmarks[mirror_index(i)][0] = 2000 - f->landmarks[i][0];
        mir.landmarks[mirror_index(i)][1] = f->landmarks[i][1];
    }
    fa_face_pose(f, &y, &p, &r, NULL);
    TAP_OK(fa_face_pose(&rot, &y2, &p2, &r2, NULL) == FA_OK);
    tap_ok(fabsf(r2 - r - 20) < 0.01f && fabsf(y2 - y) < 0.01f && fabsf(p2 - p) < 0.01f,
           "rotated 20 degrees, scaled, moved: roll %.2f -> %.2f, yaw %.2f, pitch %.2f same", r, r2, y, p);
    TAP_OK(fa_face_pose(&mir, &y2, &p2, &r2, NULL) == FA_OK);
    tap_ok(fabsf(y2 + y) < 0.01f && fabsf(r2 + r) < 0.01f && fabsf(p2 - p) < 0.01f,
           "mirrored: yaw %.2f -> %.2f, roll %.2f -> %.2f, pitch %.2f -> %.2f", y, y2, r, r2, p, p2);
    struct fa_face bad = *f;
    bad.landmarks[30][0] = NAN;
    TAP_OK(fa_face_pose(&bad, &y, &p, &r, NULL) == FA_EINVAL);
    for (int i = 0; i < 68; i++)
        bad.landmarks[i][0] = bad.landmarks[i][1] = 3;
    TAP_OK(fa_face_pose(&bad, NULL, NULL, NULL, NULL) == FA_EINVAL);
}

/* ------------------------------------------------------- --write-chips */

static int write_file(const char *path, const uint8_t *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    int ok = f != NULL && fwrite(b, 1, n, f) == n;
    if (f != NULL && fclose(f) != 0)
        ok = 0;
    return ok;
}

/* For sample1..3's largest face: landmarks rounded to 0.001 px (the JSON
 * stores them so), the chips they give as PNG, and faces.json. */
static int write_chips(const char *dir, struct sample *s)
{
    cJSON *root = cJSON_CreateArray();
    int ok = 1;
    for (int i = 0; i < N_REF; i++) {
        struct fa_face f = s[i].faces[0];
        cJSON *item = cJSON_CreateObject(), *lm = cJSON_AddArrayToObject(item, "landmarks68");
        char name[64], path[1024];
        snprintf(name, sizeof name, "sample%d.jpg", i + 1);
        cJSON_AddStringToObject(item, "image", name);
        for (int p = 0; p < 68; p++) {
            cJSON *pt = cJSON_CreateArray();
            for (int c = 0; c < 2; c++) {
                f.landmarks[p][c] = (float)(round(f.landmarks[p][c] * 1000.0) / 1000.0);
                cJSON_AddItemToArray(pt, cJSON_CreateNumber(round(f.landmarks[p][c] * 1000.0) / 1000.0));
            }
            cJSON_AddItemToArray(lm, pt);
        }
        for (int m = FA_MODEL_MFN; m <= FA_MODEL_DLIB; m++) {
            struct fa_image *chip = NULL;
            uint8_t *png = NULL;
            size_t n = 0;
            int side = fa_model_info((enum fa_model)m)->chip_side;
            char key[32];
            snprintf(path, sizeof path, "%s/sample%d_chip%d.png", dir, i + 1, side);
            ok &= fa_face_chip(s[i].img, &f, (enum fa_model)m, &chip, NULL) == FA_OK &&
                  fa_image_encode(chip, FA_IMG_PNG, 0, &png, &n, NULL) == FA_OK &&
                  write_file(path, png, n);
            snprintf(key, sizeof key, "chip%d_sum", side);
            cJSON_AddNumberToObject(item, key, chip != NULL ? (double)chip_sum(chip) : -1);
            free(png);
            fa_image_free(chip);
        }
        cJSON_AddItemToArray(root, item);
    }
    char *text = cJSON_Print(root), path[1024];
    snprintf(path, sizeof path, "%s/faces.json", dir);
    ok &= text != NULL && write_file(path, (const uint8_t *)text, strlen(text));
    free(text);
    cJSON_Delete(root);
    fprintf(stderr, "%s chips and %s\n", ok ? "wrote" : "FAILED to write", path);
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    static struct sample s[N_SAMPLES]; /* 6 x 8 x 3 x 2 KB: not on the stack */
    struct fa_engine *eng = NULL;
    struct fa_err err = {{0}};
    int status;
    test_table();
    test_engine_errors();
    enum fa_rc rc = fa_engine_new_models(FA_MODEL_DIR, FA_MODELS_ALL | FA_LOAD_LIVENESS, &eng, &err);
    tap_ok(rc == FA_OK, "load all models from %s (set-up fetches and converts them): %s",
           FA_MODEL_DIR, err.msg);
    int have = eng != NULL && load_samples(eng, s);
    if (have && argc == 3 && strcmp(argv[1], "--write-chips") == 0) {
        status = write_chips(argv[2], s);
        goto out;
    }
    if (have) {
        test_arcface_is_fa_embed(eng, &s[0]);
        test_embed_errors(&s[0]);
        test_model_reference(eng, s);
        if (embed_samples(eng, s))
            test_genuine_impostor(eng, s);
        test_liveness(eng, s);
        test_pose(s);
    }
    if (eng != NULL)
        test_shared_reference(eng);
    status = tap_done();
out:
    for (int i = 0; i < N_SAMPLES; i++) {
        fa_image_free(s[i].img);
        free(s[i].bytes);
    }
    fa_engine_free(eng);
    return status;
}
