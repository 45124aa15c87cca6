/*
 * fusion.c — one score from several face models (see face.h).
 *
 * Each model's cosine has its own scale: an impostor pair of fr_feature
 * scores around 0.01 with a spread of 0.10, one of dlib's net around 0.84
 * with a spread of 0.035. Dividing each model's score, less its impostor
 * mean, by its impostor standard deviation puts them on one scale (how
 * many impostor spreads above the typical impostor this pair sits), and
 * the mean of those z-scores is the fused score (measured in shared
 * MODELS.md: fusing the three cuts false rejects at FMR 1e-4 from 4.5% to
 * 2.5% on held-out LFW). Thresholds are therefore in z units.
 *
 * A photo that lacks a model (stored before that model was configured, or
 * under another version of it) is scored with the models it has: the mean
 * of fewer z-scores has a slightly heavier tail, which the README states.
 */
#include "faceauth/face.h"

#include <math.h>

float fa_face_fuse(const struct fa_fusion *f, const float *const a[FA_N_MODELS],
                   const float *const b[FA_N_MODELS])
{
    double sum = 0;
    int n = 0;
    for (int i = 0; i < FA_N_MODELS; i++) {
        enum fa_model m = (enum fa_model)i;
        if (!(f->models & FA_MODEL_BIT(m)) || a[m] == NULL || b[m] == NULL || !(f->sd[m] > 0))
            continue;
        double cos = fa_cosine(a[m], b[m], fa_model_info(m)->dim);
        sum += (cos - f->mean[m]) / f->sd[m];
        n++;
    }
    return n > 0 ? (float)(sum / n) : NAN;
}

float fa_face_best_fused(const struct fa_fusion *f, const float *const probe[FA_N_MODELS],
                         const float *const *samples, int n, int *counted)
{
    float best = NAN;
    int scored = 0;
    for (int i = 0; i < n; i++) {
        float s = fa_face_fuse(f, probe, samples + (size_t)i * FA_N_MODELS);
        if (isnan(s))
            continue;
        scored++;
        if (isnan(best) || s > best)
            best = s;
    }
    if (counted != NULL)
        *counted = scored;
    return best;
}

void fa_face_probe_vectors(const struct fa_face_probe *probe, const float *out[FA_N_MODELS])
{
    for (int m = 0; m < FA_N_MODELS; m++)
        out[m] = (probe->models & FA_MODEL_BIT(m)) ? probe->emb[m] : NULL;
}

void fa_face_fusion_from_config(const struct fa_config *cfg, struct fa_fusion *out)
{
    out->models = cfg->models;
    for (int m = 0; m < FA_N_MODELS; m++) {
        out->mean[m] = (float)cfg->znorm[m][0];
        out->sd[m] = (float)cfg->znorm[m][1];
    }
}

double fa_face_model_z(const struct fa_fusion *f, enum fa_model m, double cosine)
{
    if (!(f->sd[m] > 0))
        return NAN;
    return (cosine - f->mean[m]) / f->sd[m];
}

double fa_face_model_cosine(const struct fa_fusion *f, enum fa_model m, double z)
{
    if (!(f->sd[m] > 0))
        return NAN;
    return f->mean[m] + z * f->sd[m];
}
