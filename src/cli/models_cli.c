/*
 * models_cli.c — `faceauth models check`: are the model files the ones this
 * build was tested with, and do they still compute what they should?
 *
 * Three layers, each catching what the one before cannot:
 *   1. every file named in SHA256SUMS (fetched models) and CONVERTED.sha256
 *      (converted ones) of the model folder is hashed and compared; the six
 *      files the server loads must be listed and present, the conversion
 *      inputs listed beside them are checked only when they are there;
 *   2. the server's engine is loaded from the folder (every network);
 *   3. the reference faces of tests/data/model_reference.json, computed by
 *      independent numpy code, are run again: the detector and landmark net
 *      must find the stored landmarks (0.5 px), MobileFaceNet and dlib must
 *      reproduce the stored embeddings of chips made from those landmarks
 *      (1e-3 per component, as tests/unit/test_models.c), and fr_feature
 *      and liveness must give a unit vector and a probability.
 * A file can match its sum and still be unusable (an OpenCV that reads it
 * differently), or be replaced together with its sum: hence 2 and 3.
 *
 * Every check prints one line, "ok" or "FAIL" and what it compared; the
 * exit status is 1 when any failed, with the first reason on stderr.
 */
#include "faceauth/cli.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "faceauth/crypto.h"
#include "faceauth/vision.h"

#define MC_MAX_SUMS 64
#define MC_NAME_MAX 128
#define MC_MAX_JSON (64L * 1024 * 1024)
#define MC_MAX_IMAGE (64L * 1024 * 1024)
#define MC_MAX_PIXELS 40000000L
#define MC_LANDMARK_TOL 0.5  /* pixels */
#define MC_EMBED_TOL 1e-3    /* per component */
#define MC_MAX_FACES 8

/* Files the server loads besides the embedding models of vision.h. */
static const char *const kOtherFiles[] = {"fr_detect.onnx", "fr_landmark.onnx",
                                          "fr_liveness.onnx"};

struct mc_sum {
    char name[MC_NAME_MAX];
    char hex[FA_DIGEST_HEX + 1];
};

struct mc_run {
    int n_checks;
    int n_failed;
    char first[FA_ERR_MAX + 128]; /* the first failure, for stderr */
};

static void check(struct mc_run *r, int ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* One result line; the first failure is kept for the closing message. */
static void check(struct mc_run *r, int ok, const char *fmt, ...)
{
    char line[FA_ERR_MAX + 128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    r->n_checks++;
    if (!ok && r->n_failed == 0)
        snprintf(r->first, sizeof r->first, "%s", line);
    if (!ok)
        r->n_failed++;
    printf("%-5s %s\n", ok ? "ok" : "FAIL", line);
}

static int path_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/*
 * A default path relative to the repository: as given when it exists from
 * the working directory, else next to the binary (../ and ../../ from its
 * folder: build/faceauth, build-asan/faceauth), else as given.
 */
static void resolve_default(const char *rel, char *out, size_t cap)
{
    static const char *const ups[] = {"..", "../.."};
    char exe[PATH_MAX];
    ssize_t n;
    char *slash;
    snprintf(out, cap, "%s", rel);
    if (rel[0] == '/' || path_exists(rel))
        return;
    n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return;
    exe[n] = '\0';
    slash = strrchr(exe, '/');
    if (slash == NULL)
        return;
    *slash = '\0';
    for (size_t i = 0; i < sizeof ups / sizeof ups[0]; i++) {
        char try[PATH_MAX + 64];
        snprintf(try, sizeof try, "%s/%s/%s", exe, ups[i], rel);
        if (path_exists(try)) {
            snprintf(out, cap, "%s", try);
            return;
        }
    }
}

/* Parse "HEX  name" lines (sha256sum's format, "*name" for binary mode)
 * of one sums file into sums[*n..]; 0 when the file cannot be read. */
static int read_sums(const char *path, struct mc_sum *sums, int *n)
{
    char line[512];
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof line, f) != NULL && *n < MC_MAX_SUMS) {
        char hex[FA_DIGEST_HEX + 2], name[MC_NAME_MAX];
        if (sscanf(line, "%65s %127s", hex, name) != 2 || strlen(hex) != FA_DIGEST_HEX)
            continue;
        snprintf(sums[*n].hex, sizeof sums[*n].hex, "%.64s", hex);
        snprintf(sums[*n].name, sizeof sums[*n].name, "%s", name[0] == '*' ? name + 1 : name);
        (*n)++;
    }
    fclose(f);
    return 1;
}

static const struct mc_sum *find_sum(const struct mc_sum *sums, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(sums[i].name, name) == 0)
            return &sums[i];
    return NULL;
}

/* 1 when the server loads this file. */
static int is_required(const char *name)
{
    for (size_t i = 0; i < sizeof kOtherFiles / sizeof kOtherFiles[0]; i++)
        if (strcmp(name, kOtherFiles[i]) == 0)
            return 1;
    for (int m = 0; m < FA_N_MODELS; m++)
        if (strcmp(name, fa_model_info((enum fa_model)m)->file) == 0)
            return 1;
    return 0;
}

static void check_one_sum(struct mc_run *r, const char *dir, const struct mc_sum *s)
{
    char path[PATH_MAX + MC_NAME_MAX], got[FA_DIGEST_HEX + 1];
    struct fa_err err = {{0}};
    enum fa_rc rc;
    snprintf(path, sizeof path, "%s/%s", dir, s->name);
    if (!is_required(s->name) && !path_exists(path)) {
        printf("%-5s %s: not in the folder (a conversion input; the server does not load it)\n",
               "skip", s->name);
        return;
    }
    rc = fa_crypto_sha256_file(path, got, &err);
    if (rc != FA_OK)
        check(r, 0, "%s: %s", s->name, err.msg);
    else
        check(r, strcmp(got, s->hex) == 0, "%s: sha256 %s%s%s", s->name, got,
              strcmp(got, s->hex) == 0 ? "" : ", expected ", strcmp(got, s->hex) == 0 ? "" : s->hex);
}

/* Layer 1: every listed file against its sum; every loaded file listed. */
static void check_sums(struct mc_run *r, const char *dir)
{
    static const char *const files[] = {"SHA256SUMS", "CONVERTED.sha256"};
    struct mc_sum *sums = calloc(MC_MAX_SUMS, sizeof *sums);
    int n = 0;
    if (sums == NULL) {
        check(r, 0, "out of memory");
        return;
    }
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        if (!read_sums(path, sums, &n))
            check(r, 0, "%s: cannot read the checksum list", path);
    }
    for (int i = 0; i < n; i++)
        check_one_sum(r, dir, &sums[i]);
    for (size_t i = 0; i < sizeof kOtherFiles / sizeof kOtherFiles[0] + FA_N_MODELS; i++) {
        const char *name = i < FA_N_MODELS ? fa_model_info((enum fa_model)i)->file
                                           : kOtherFiles[i - FA_N_MODELS];
        if (find_sum(sums, n, name) == NULL)
            check(r, 0, "%s: no sha256 for it in SHA256SUMS or CONVERTED.sha256", name);
    }
    free(sums);
}

/* The 68 stored landmarks as a face (box from their extent); 0 when malformed. */
static int face_from_json(const cJSON *lm, struct fa_face *f)
{
    memset(f, 0, sizeof *f);
    if (!cJSON_IsArray(lm) || cJSON_GetArraySize(lm) != 68)
        return 0;
    f->x1 = f->y1 = INFINITY;
    f->x2 = f->y2 = -INFINITY;
    for (int i = 0; i < 68; i++) {
        const cJSON *p = cJSON_GetArrayItem(lm, i);
        const cJSON *x = cJSON_GetArrayItem(p, 0), *y = cJSON_GetArrayItem(p, 1);
        if (!cJSON_IsNumber(x) || !cJSON_IsNumber(y))
            return 0;
        f->landmarks[i][0] = (float)x->valuedouble;
        f->landmarks[i][1] = (float)y->valuedouble;
        f->x1 = fminf(f->x1, f->landmarks[i][0]);
        f->x2 = fmaxf(f->x2, f->landmarks[i][0]);
        f->y1 = fminf(f->y1, f->landmarks[i][1]);
        f->y2 = fmaxf(f->y2, f->landmarks[i][1]);
    }
    f->score = 1;
    return 1;
}

/* Largest |got[i] - want[i]|; INFINITY when want is not dim numbers. */
static double max_diff(const float *got, const cJSON *want, int dim)
{
    double worst = 0;
    if (!cJSON_IsArray(want) || cJSON_GetArraySize(want) != dim)
        return INFINITY;
    for (int i = 0; i < dim; i++) {
        const cJSON *v = cJSON_GetArrayItem(want, i);
        double d = cJSON_IsNumber(v) ? fabs(got[i] - v->valuedouble) : INFINITY;
        worst = d > worst || isnan(d) ? d : worst;
    }
    return worst;
}

static struct fa_image *decode_path(const char *path, struct fa_err *err)
{
    size_t n = 0;
    uint8_t *bytes = NULL;
    struct fa_image *img = NULL;
    if (fa_read_file(path, MC_MAX_IMAGE, &bytes, &n, NULL) != FA_OK) {
        fa_err_set(err, FA_ENOTFOUND, "cannot read %s", path);
        return NULL;
    }
    if (fa_image_decode(bytes, n, MC_MAX_PIXELS, &img, err) != FA_OK)
        img = NULL;
    free(bytes);
    return img;
}

/* Detector and landmark net: the largest face's landmarks near the stored ones. */
static void check_landmarks(struct mc_run *r, struct fa_engine *eng, const struct fa_image *img,
                            const char *image, const struct fa_face *stored, struct fa_face *found)
{
    struct fa_face faces[MC_MAX_FACES];
    struct fa_err err = {{0}};
    int n = 0;
    double worst = 0;
    if (fa_detect(eng, img, faces, MC_MAX_FACES, &n, &err) != FA_OK || n == 0) {
        check(r, 0, "%s: no face detected (fr_detect.onnx) %s", image, err.msg);
        *found = *stored;
        return;
    }
    *found = faces[0];
    for (int i = 0; i < 68; i++)
        for (int c = 0; c < 2; c++)
            worst = fmax(worst, fabs(faces[0].landmarks[i][c] - stored->landmarks[i][c]));
    check(r, worst <= MC_LANDMARK_TOL,
          "%s: fr_detect + fr_landmark: landmarks within %.4f px of the reference (limit %g)",
          image, worst, MC_LANDMARK_TOL);
}

/* MobileFaceNet and dlib on chips made from the stored landmarks. */
static void check_reference_vectors(struct mc_run *r, struct fa_engine *eng,
                                    const struct fa_image *img, const char *image,
                                    const struct fa_face *stored, const cJSON *item)
{
    static const enum fa_model models[] = {FA_MODEL_MFN, FA_MODEL_DLIB};
    for (size_t j = 0; j < sizeof models / sizeof models[0]; j++) {
        const struct fa_model_info *info = fa_model_info(models[j]);
        struct fa_image *chip = NULL;
        struct fa_err err = {{0}};
        float v[FA_MAX_EMBED_DIM];
        double worst = INFINITY;
        if (fa_face_chip(img, stored, models[j], &chip, &err) == FA_OK &&
            fa_embed_chip_model(eng, chip, models[j], v, &err) == FA_OK)
            worst = max_diff(v, cJSON_GetObjectItemCaseSensitive(item, info->id), info->dim);
        fa_image_free(chip);
        check(r, worst <= MC_EMBED_TOL, "%s: %s: max |diff| %.2e from the reference (limit %g)%s%s",
              image, info->file, worst, MC_EMBED_TOL, err.msg[0] ? ": " : "", err.msg);
    }
}

/* fr_feature and liveness have no stored vectors: they must run and give
 * a unit vector and a probability. */
static void check_runs(struct mc_run *r, struct fa_engine *eng, const struct fa_image *img,
                       const char *image, const struct fa_face *face)
{
    float v[FA_MAX_EMBED_DIM], live = -1;
    struct fa_err err = {{0}};
    double sq = 0;
    int ok = fa_embed_model(eng, img, face, FA_MODEL_ARCFACE, v, &err) == FA_OK;
    for (int i = 0; ok && i < fa_model_info(FA_MODEL_ARCFACE)->dim; i++)
        sq += (double)v[i] * v[i];
    check(r, ok && fabs(sq - 1) < 1e-3, "%s: %s: embedding of length %.4f %s", image,
          fa_model_info(FA_MODEL_ARCFACE)->file, sqrt(sq), err.msg);
    ok = fa_liveness(eng, img, face, &live, NULL, &err) == FA_OK;
    check(r, ok && live >= 0 && live <= 1, "%s: fr_liveness.onnx: live probability %.4f %s",
          image, live, err.msg);
}

static void check_face(struct mc_run *r, struct fa_engine *eng, const char *assets,
                       const cJSON *item)
{
    const cJSON *image = cJSON_GetObjectItemCaseSensitive(item, "image");
    struct fa_face stored, found;
    struct fa_image *img;
    struct fa_err err = {{0}};
    char path[PATH_MAX + 256];
    if (!cJSON_IsString(image) ||
        !face_from_json(cJSON_GetObjectItemCaseSensitive(item, "landmarks68"), &stored)) {
        check(r, 0, "reference entry without an image name or 68 landmarks");
        return;
    }
    snprintf(path, sizeof path, "%s/%s", assets, image->valuestring);
    img = decode_path(path, &err);
    if (img == NULL) {
        check(r, 0, "%s: %s", path, err.msg);
        return;
    }
    check_landmarks(r, eng, img, image->valuestring, &stored, &found);
    check_reference_vectors(r, eng, img, image->valuestring, &stored, item);
    check_runs(r, eng, img, image->valuestring, &found);
    fa_image_free(img);
}

/* Layer 3: every face of the reference file. */
static void check_reference(struct mc_run *r, struct fa_engine *eng, const char *reference,
                            const char *assets)
{
    size_t n = 0;
    uint8_t *text = NULL;
    cJSON *root = fa_read_file(reference, MC_MAX_JSON, &text, &n, NULL) == FA_OK
                      ? cJSON_ParseWithLength((const char *)text, n)
                      : NULL;
    const cJSON *faces = cJSON_GetObjectItemCaseSensitive(root, "faces");
    const cJSON *item;
    free(text);
    if (!cJSON_IsArray(faces) || cJSON_GetArraySize(faces) == 0) {
        check(r, 0, "%s: cannot read it, or it has no \"faces\" (give --reference FILE)",
              reference);
        cJSON_Delete(root);
        return;
    }
    cJSON_ArrayForEach(item, faces)
        check_face(r, eng, assets, item);
    cJSON_Delete(root);
}

int fa_cli_models_check(const char *model_dir, const char *reference, const char *assets)
{
    struct mc_run r = {0, 0, ""};
    char dir[PATH_MAX], ref[PATH_MAX], photos[PATH_MAX];
    struct fa_engine *eng = NULL;
    struct fa_err err = {{0}};
    resolve_default(model_dir, dir, sizeof dir);
    resolve_default(reference != NULL ? reference : FA_CLI_DEFAULT_REFERENCE, ref, sizeof ref);
    resolve_default(assets != NULL ? assets : FA_CLI_DEFAULT_ASSETS, photos, sizeof photos);
    printf("model folder %s, reference %s, photos %s\n", dir, ref, photos);
    check_sums(&r, dir);
    if (fa_engine_new_models(dir, FA_MODELS_ALL | FA_LOAD_LIVENESS, &eng, &err) != FA_OK)
        check(&r, 0, "loading the models from %s: %s", dir, err.msg);
    else
        check(&r, 1, "every model loads (detector, landmarks, 3 embedding models, liveness)");
    if (eng != NULL)
        check_reference(&r, eng, ref, photos);
    fa_engine_free(eng);
    if (fflush(stdout) != 0)
        return 1;
    if (r.n_failed > 0) {
        fprintf(stderr, "faceauth: models check failed (%d of %d checks): %s\n", r.n_failed,
                r.n_checks, r.first);
        return 1;
    }
    printf("models check: all %d checks passed\n", r.n_checks);
    return 0;
}
