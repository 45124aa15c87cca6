/*
 * decision.c — the face service's decisions on analysed faces (face.h):
 * is this probe the user's, may it be learned, do these photos show one
 * person. Pure functions of the policy and the vectors, so they are unit
 * tested on synthetic vectors without models or HTTP (test_face_decision.c).
 *
 * Every threshold is in fused z units (fusion.c) and chosen by the number
 * of photos compared: the best of k comparisons matches an impostor more
 * often than one does, so the threshold rises with k and each precision
 * keeps its false-match rate whatever the number of photos a user has.
 */
#include "faceauth/face.h"

#include <assert.h>
#include <math.h>

void fa_face_policy_from_config(const struct fa_config *cfg, struct fa_face_policy *out)
{
    fa_face_opts_from_config(cfg, &out->gates);
    fa_face_fusion_from_config(cfg, &out->fusion);
    out->threshold_high = cfg->threshold_high;
    out->threshold_low = cfg->threshold_low;
    out->learn_margin = cfg->learn_margin;
}

enum fa_rc fa_face_gate_rc(enum fa_face_gate gate)
{
    switch (gate) {
    case FA_GATE_PASS: return FA_OK;
    case FA_GATE_NOFACE: return FA_ENOFACE;
    case FA_GATE_SPOOF: return FA_ESPOOF;
    default: return FA_EGATE;
    }
}

int fa_face_refused(enum fa_rc rc)
{
    return rc == FA_ENOFACE || rc == FA_EGATE || rc == FA_ESPOOF || rc == FA_ENOTSAME;
}

static const struct fa_cfg_list *thresholds(const struct fa_face_policy *pol,
                                            enum fa_face_precision precision)
{
    return precision == FA_PRECISION_LOW ? &pol->threshold_low : &pol->threshold_high;
}

/* Learn only a clear match (margin in z units above the threshold) with a
 * face good enough to enroll. */
static int learnable(const struct fa_face_policy *pol, const struct fa_face_probe *probe,
                     const struct fa_face_verdict *v)
{
    return v->score >= v->threshold + pol->learn_margin &&
           fa_face_check_gates(&pol->gates, FA_FACE_ENROLL, &probe->q, NULL) == FA_GATE_PASS;
}

void fa_face_verify(const struct fa_face_policy *pol, const struct fa_face_probe *probe,
                    const float *const *samples, int n, enum fa_face_precision precision,
                    unsigned flags, struct fa_face_verdict *out)
{
    const float *vecs[FA_N_MODELS];
    fa_face_probe_vectors(probe, vecs);
    out->k = 0;
    out->score = fa_face_best_fused(&pol->fusion, vecs, samples, n, &out->k);
    out->threshold = fa_cfg_list_at(thresholds(pol, precision), out->k);
    out->match = out->k > 0 && out->score >= out->threshold;
    out->learn = out->match && (flags & FA_VERIFY_LEARN) && learnable(pol, probe, out);
    if (out->match)
        out->reason = FA_REASON_MATCH;
    else
        out->reason = out->k == 0 ? FA_REASON_OTHER_MODELS : FA_REASON_NO_MATCH;
}

void fa_face_enroll_check(const struct fa_face_policy *pol, const struct fa_face_probe *photos,
                          int n, struct fa_face_enroll_verdict *out)
{
    const float *v[FA_FACE_ENROLL_MAX_PHOTOS][FA_N_MODELS];
    int misses[FA_FACE_ENROLL_MAX_PHOTOS] = {0}, partner[FA_FACE_ENROLL_MAX_PHOTOS] = {0};
    double threshold = fa_cfg_list_at(&pol->threshold_low, 1);
    int bad = -1;
    assert(n >= 1 && n <= FA_FACE_ENROLL_MAX_PHOTOS);
    for (int i = 0; i < n; i++)
        fa_face_probe_vectors(&photos[i], v[i]);
    for (int i = 0; i < n; i++) {
        for (int j = i + 1; j < n; j++) {
            /* NAN (no model in common) is no match either */
            if (fa_face_fuse(&pol->fusion, v[i], v[j]) >= threshold)
                continue;
            if (++misses[i] == 1)
                partner[i] = j;
            if (++misses[j] == 1)
                partner[j] = i;
        }
    }
    for (int i = 0; i < n; i++)
        if (misses[i] > 0 && (bad < 0 || misses[i] >= misses[bad]))
            bad = i;
    out->accepted = bad < 0;
    out->reason = bad < 0 ? FA_REASON_MATCH : FA_REASON_NOT_SAME;
    out->photo = bad;
    out->partner = bad < 0 ? -1 : partner[bad];
}
