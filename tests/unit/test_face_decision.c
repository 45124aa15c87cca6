/*
 * test_face_decision.c — the face service's decisions (src/face/decision.c):
 * fa_face_verify (match, threshold by precision and photo count, learning)
 * and fa_face_enroll_check (one person or not, which photo is blamed), plus
 * the refusal codes. Every branch, on synthetic vectors of known cosine:
 * no models, no images, no HTTP.
 *
 * The policy fuses one model with impostor mean 0 and sd 1 unless a test
 * says otherwise, so a fused score is the cosine itself and thresholds
 * read as cosines.
 */
#include "faceauth/face.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faceauth/config.h"
#include "tap.h"

#define ARC FA_MODEL_ARCFACE
#define MFN FA_MODEL_MFN

static struct fa_config g_cfg;

static struct fa_cfg_list list3(double a, double b, double c)
{
    struct fa_cfg_list l = {3, {a, b, c}};
    return l;
}

/* The default config's gates, one model (ARC) fused as its plain cosine,
 * thresholds high 0.5/0.6/0.7 and low 0.3/0.4/0.5 by photo count, margin 0.2. */
static struct fa_face_policy test_policy(void)
{
    struct fa_face_policy p;
    fa_config_defaults(&g_cfg);
    fa_face_policy_from_config(&g_cfg, &p);
    memset(&p.fusion, 0, sizeof p.fusion);
    p.fusion.models = FA_MODEL_BIT(ARC);
    for (int m = 0; m < FA_N_MODELS; m++)
        p.fusion.sd[m] = 1;
    p.threshold_high = list3(0.5, 0.6, 0.7);
    p.threshold_low = list3(0.3, 0.4, 0.5);
    p.learn_margin = 0.2;
    return p;
}

/* A face that passes the default enrollment gates. */
static struct fa_face_measures good_face(void)
{
    struct fa_face_measures q = {60, 150, 110, 5, -3, 2, 5, 2};
    return q;
}

/* Unit vector of model m at cosine cos to e0 (in the e0, e1 plane; the
 * plane is turned by `twist` radians so that two vectors at cosine c to e0
 * may still differ from each other). */
static void at_cosine(float *v, enum fa_model m, double c, double twist)
{
    int dim = fa_model_info(m)->dim;
    double a = acos(c);
    memset(v, 0, (size_t)dim * sizeof *v);
    v[0] = (float)c;
    v[1] = (float)(sin(a) * cos(twist));
    v[2] = (float)(sin(a) * sin(twist));
}

/* A probe with models' vectors at cosine 1 to e0 (i.e. e0) and a good face. */
static struct fa_face_probe *new_probe(unsigned models)
{
    struct fa_face_probe *p = calloc(1, sizeof *p);
    if (p == NULL)
        abort();
    p->models = models;
    for (int m = 0; m < FA_N_MODELS; m++)
        if (models & FA_MODEL_BIT(m))
            at_cosine(p->emb[m], (enum fa_model)m, 1.0, 0);
    p->q = good_face();
    return p;
}

/* Samples as the gallery hands them over: vec[i * FA_N_MODELS + m]. */
struct samples {
    int n;
    float data[8][FA_N_MODELS][FA_MAX_EMBED_DIM];
    const float *vec[8 * FA_N_MODELS];
};

/* Add a sample whose ARC vector lies at cosine cos to the probe (others absent). */
static void add_sample(struct samples *s, enum fa_model m, double cos)
{
    at_cosine(s->data[s->n][m], m, cos, 0);
    for (int k = 0; k < FA_N_MODELS; k++)
        s->vec[s->n * FA_N_MODELS + k] = k == (int)m ? s->data[s->n][m] : NULL;
    s->n++;
}

/* What the verify tests share: a policy, a probe of models (e0 for each),
 * the user's samples (none yet) and the last verdict. */
static struct fa_face_policy g_pol;
static struct fa_face_probe *g_probe;
static struct samples *g_s;
static struct fa_face_verdict g_v;

static void fresh(unsigned models)
{
    g_pol = test_policy();
    free(g_probe);
    g_probe = new_probe(models);
    if (g_s == NULL)
        g_s = malloc(sizeof *g_s);
    if (g_s == NULL)
        abort();
    memset(g_s, 0, sizeof *g_s);
}

/* fa_face_verify of g_probe against g_s into g_v. */
static void verify(enum fa_face_precision prec, unsigned flags)
{
    memset(&g_v, 0x5a, sizeof g_v); /* every field must be written */
    fa_face_verify(&g_pol, g_probe, g_s->vec, g_s->n, prec, flags, &g_v);
}

static void test_verify_match(void)
{
    fresh(FA_MODEL_BIT(ARC));
    add_sample(g_s, ARC, 0.55);
    verify(FA_PRECISION_HIGH, 0);
    tap_ok(g_v.match && g_v.reason == FA_REASON_MATCH && g_v.k == 1 &&
               fabsf(g_v.score - 0.55f) < 1e-4 && g_v.threshold == 0.5 && !g_v.learn,
           "one photo at 0.55 >= high threshold 0.5: a match (score %.3f, k %d)", g_v.score, g_v.k);
    g_s->n = 0;
    add_sample(g_s, ARC, 0.45);
    verify(FA_PRECISION_HIGH, 0);
    tap_ok(!g_v.match && g_v.reason == FA_REASON_NO_MATCH && g_v.k == 1 && !g_v.learn,
           "one photo at 0.45 < 0.5: no match");
    verify(FA_PRECISION_LOW, 0);
    tap_ok(g_v.match && g_v.threshold == 0.3, "the same photo at precision low (0.3): a match");
}

/* The threshold rises with the number of photos compared (best-of-k). */
static void test_verify_threshold_by_count(void)
{
    fresh(FA_MODEL_BIT(ARC));
    add_sample(g_s, ARC, 0.65);
    add_sample(g_s, ARC, 0.2);
    verify(FA_PRECISION_HIGH, 0);
    tap_ok(g_v.match && g_v.k == 2 && g_v.threshold == 0.6 && fabsf(g_v.score - 0.65f) < 1e-4,
           "two photos: the best (0.65) against the 2-photo threshold 0.6: a match");
    add_sample(g_s, ARC, 0.1);
    verify(FA_PRECISION_HIGH, 0);
    tap_ok(!g_v.match && g_v.k == 3 && g_v.threshold == 0.7 && g_v.reason == FA_REASON_NO_MATCH,
           "three photos: the same best 0.65 is below the 3-photo threshold 0.7");
    add_sample(g_s, ARC, 0.1);
    verify(FA_PRECISION_HIGH, 0);
    tap_ok(g_v.k == 4 && g_v.threshold == 0.7, "four photos: the list's last value (0.7)");
    verify(FA_PRECISION_LOW, 0);
    tap_ok(g_v.match && g_v.threshold == 0.5, "four photos at precision low: 0.5, a match");
}

/* Samples that share no model with the probe are not compared. */
static void test_verify_other_models(void)
{
    fresh(FA_MODEL_BIT(ARC));
    verify(FA_PRECISION_HIGH, FA_VERIFY_LEARN);
    tap_ok(!g_v.match && !g_v.learn && g_v.k == 0 && isnan(g_v.score) &&
               g_v.reason == FA_REASON_OTHER_MODELS,
           "no samples: k 0, score NAN, reason other models");
    add_sample(g_s, MFN, 1.0);
    verify(FA_PRECISION_LOW, 0);
    tap_ok(!g_v.match && g_v.k == 0 && isnan(g_v.score) && g_v.reason == FA_REASON_OTHER_MODELS,
           "a sample of another model only (even identical): not compared, not a match");
    add_sample(g_s, ARC, 0.52);
    verify(FA_PRECISION_HIGH, 0);
    tap_ok(g_v.match && g_v.k == 1 && g_v.threshold == 0.5,
           "with one sample of the probe's model: k 1 and its 1-photo threshold");
}

/* The fused score: each model's z, averaged over the models both faces have. */
static void test_verify_fusion(void)
{
    fresh(FA_MODEL_BIT(ARC) | FA_MODEL_BIT(MFN));
    g_pol.fusion.models = FA_MODEL_BIT(ARC) | FA_MODEL_BIT(MFN);
    g_pol.fusion.mean[MFN] = 0.5f;
    g_pol.fusion.sd[MFN] = 0.25f;
    g_pol.threshold_high = list3(1.0, 1.0, 1.0);
    at_cosine(g_s->data[0][ARC], ARC, 0.6, 0);
    at_cosine(g_s->data[0][MFN], MFN, 0.9, 0);
    g_s->vec[ARC] = g_s->data[0][ARC];
    g_s->vec[MFN] = g_s->data[0][MFN];
    g_s->n = 1;
    verify(FA_PRECISION_HIGH, 0);
    /* ARC: (0.6 - 0) / 1 = 0.6; MFN: (0.9 - 0.5) / 0.25 = 1.6; mean 1.1 */
    tap_ok(g_v.match && fabsf(g_v.score - 1.1f) < 1e-3,
           "two models fused: mean of z = (0.6 + 1.6) / 2 = 1.1 (got %.4f)", g_v.score);
    g_pol.fusion.models = FA_MODEL_BIT(ARC);
    verify(FA_PRECISION_HIGH, 0);
    tap_ok(!g_v.match && fabsf(g_v.score - 0.6f) < 1e-3,
           "a model the policy does not fuse is ignored: 0.6 < 1.0");
}

/* Learning: asked for, a clear match (threshold + margin), an enroll-grade face. */
static void test_verify_learn(void)
{
    fresh(FA_MODEL_BIT(ARC));
    tap_ok(fa_face_check_gates(&g_pol.gates, FA_FACE_ENROLL, &g_probe->q, NULL) == FA_GATE_PASS,
           "(the test face passes the default enrollment gates)");
    add_sample(g_s, ARC, 0.75);
    verify(FA_PRECISION_HIGH, FA_VERIFY_LEARN);
    tap_ok(g_v.match && g_v.learn, "0.75 >= 0.5 + margin 0.2, asked, good face: learned");
    verify(FA_PRECISION_HIGH, 0);
    tap_ok(g_v.match && !g_v.learn, "not asked (useSampleForLearning no): not learned");
    g_s->n = 0;
    add_sample(g_s, ARC, 0.65);
    verify(FA_PRECISION_HIGH, FA_VERIFY_LEARN);
    tap_ok(g_v.match && !g_v.learn, "0.65: a match but within the margin: not learned");
    verify(FA_PRECISION_LOW, FA_VERIFY_LEARN);
    tap_ok(g_v.match && g_v.learn, "the margin counts from the precision's threshold (0.3 + 0.2)");
    g_s->n = 0;
    add_sample(g_s, ARC, 0.4);
    g_pol.learn_margin = -0.5;
    verify(FA_PRECISION_HIGH, FA_VERIFY_LEARN);
    tap_ok(!g_v.match && !g_v.learn, "no match is never learned, whatever the margin");
    g_pol.learn_margin = 0.2;
    g_s->n = 0;
    add_sample(g_s, ARC, 0.95);
    g_probe->q.eye_distance = 1; /* far too small a face to enroll */
    verify(FA_PRECISION_HIGH, FA_VERIFY_LEARN);
    tap_ok(g_v.match && !g_v.learn,
           "a clear match whose face fails the enrollment gates: not learned");
    g_probe->q = good_face();
    g_probe->q.sharpness = (float)g_pol.gates.enroll.min_sharpness / 2;
    verify(FA_PRECISION_HIGH, FA_VERIFY_LEARN);
    tap_ok(g_pol.gates.enroll.min_sharpness > 0 && g_v.match && !g_v.learn,
           "a blurry face (half the enrollment sharpness): not learned");
}

/* ---- fa_face_enroll_check ---- */

/* Photos of model ARC: photo i at cosine cos[i] to e0, turned by twist[i]. */
static struct fa_face_probe *photos(int n, const double *cos, const double *twist)
{
    struct fa_face_probe *ph = calloc((size_t)n, sizeof *ph);
    if (ph == NULL)
        abort();
    for (int i = 0; i < n; i++) {
        ph[i].models = FA_MODEL_BIT(ARC);
        at_cosine(ph[i].emb[ARC], ARC, cos[i], twist[i]);
        ph[i].q = good_face();
    }
    return ph;
}

static void enroll_check(const struct fa_face_policy *p, const struct fa_face_probe *ph, int n,
                         struct fa_face_enroll_verdict *v)
{
    memset(v, 0x5a, sizeof *v);
    fa_face_enroll_check(p, ph, n, v);
}

static void test_enroll_one_person(void)
{
    struct fa_face_policy p = test_policy(); /* low, one photo: 0.3 */
    static const double same[] = {1.0, 0.9, 0.8}, flat[] = {0, 0, 0};
    struct fa_face_probe *ph = photos(3, same, flat);
    struct fa_face_enroll_verdict v;
    enroll_check(&p, ph, 1, &v);
    tap_ok(v.accepted && v.reason == FA_REASON_MATCH && v.photo == -1 && v.partner == -1,
           "one photo: accepted");
    enroll_check(&p, ph, 3, &v);
    tap_ok(v.accepted && v.reason == FA_REASON_MATCH && v.photo == -1,
           "three photos, every pair above the low 1-photo threshold: accepted");
    p.threshold_low = list3(0.3, 5.0, 5.0);
    enroll_check(&p, ph, 3, &v);
    tap_ok(v.accepted, "pairs use the 1-photo value of the low list, not the n-photo one");
    p.threshold_high = list3(5.0, 5.0, 5.0);
    enroll_check(&p, ph, 3, &v);
    tap_ok(v.accepted, "and never the high list");
    free(ph);
}

static void test_enroll_not_same(void)
{
    struct fa_face_policy p = test_policy();
    /* photos 0, 1, 3 near e0 (in the e0-e1 plane); photo 2 is e2, at cosine 0 to all */
    static const double cos4[] = {1.0, 0.9, 0.0, 0.95}, turn[] = {0, 0, 1.57079633, 0};
    static const double flat[] = {0, 0};
    static const double two[] = {1.0, 0.1};
    struct fa_face_probe *ph = photos(4, cos4, turn);
    struct fa_face_enroll_verdict v;
    enroll_check(&p, ph, 4, &v);
    tap_ok(!v.accepted && v.reason == FA_REASON_NOT_SAME && v.photo == 2 && v.partner == 0,
           "one stranger among four: it is blamed (photo %d), with the first it misses (%d)",
           v.photo, v.partner);
    free(ph);
    ph = photos(2, two, flat);
    enroll_check(&p, ph, 2, &v);
    tap_ok(!v.accepted && v.photo == 1 && v.partner == 0,
           "two people: the later photo is blamed on a tie (photo %d, partner %d)", v.photo,
           v.partner);
    ph[1].models = FA_MODEL_BIT(MFN); /* no model in common: cannot be told the same */
    at_cosine(ph[1].emb[MFN], MFN, 1.0, 0);
    enroll_check(&p, ph, 2, &v);
    tap_ok(!v.accepted && v.photo == 1, "photos sharing no model are not the same person");
    free(ph);
}

/* Photos 0 and 2 each miss one pair: the later of the most-missing is blamed. */
static void test_enroll_blame_ties(void)
{
    struct fa_face_policy p = test_policy();
    /* 1 and 3 are e0; 0 and 2 lie at cosine 0.5 to e0 on either side of it,
     * at cosine -0.5 to each other: only the pair 0-2 misses (threshold 0.3). */
    static const double c[] = {0.5, 1.0, 0.5, 1.0};
    static const double t[] = {0.0, 0.0, 3.14159265, 0.0};
    struct fa_face_probe *ph = photos(4, c, t);
    struct fa_face_enroll_verdict v;
    enroll_check(&p, ph, 4, &v);
    tap_ok(!v.accepted && v.photo == 2 && v.partner == 0,
           "0 and 2 each miss one pair (each other): the later (2) is blamed with 0 (got %d, "
           "%d)",
           v.photo, v.partner);
    free(ph);
}

/* ---- refusal codes ---- */

static void test_refusal_codes(void)
{
    int gates_ok = 1;
    tap_ok(fa_face_gate_rc(FA_GATE_PASS) == FA_OK, "pass: FA_OK");
    tap_ok(fa_face_gate_rc(FA_GATE_NOFACE) == FA_ENOFACE, "no face: FA_ENOFACE");
    tap_ok(fa_face_gate_rc(FA_GATE_SPOOF) == FA_ESPOOF, "liveness: FA_ESPOOF");
    for (int g = FA_GATE_SEVERAL; g <= FA_GATE_SIDEWAYS; g++)
        if (g != FA_GATE_SPOOF)
            gates_ok &= fa_face_gate_rc((enum fa_face_gate)g) == FA_EGATE;
    tap_ok(gates_ok, "several faces and every quality gate: FA_EGATE");
    tap_ok(fa_face_refused(FA_ENOFACE) && fa_face_refused(FA_EGATE) && fa_face_refused(FA_ESPOOF) &&
               fa_face_refused(FA_ENOTSAME),
           "the four refusals are face refusals");
    tap_ok(!fa_face_refused(FA_OK) && !fa_face_refused(FA_EINVAL) && !fa_face_refused(FA_EIMAGE) &&
               !fa_face_refused(FA_EBUSY) && !fa_face_refused(FA_EFAIL),
           "success, bad images and failures are not");
    tap_ok(strcmp(fa_rc_name(FA_EGATE), "EGATE") == 0 &&
               strcmp(fa_rc_name(FA_ESPOOF), "ESPOOF") == 0 &&
               strcmp(fa_rc_name(FA_ENOTSAME), "ENOTSAME") == 0,
           "each has its name for the logs");
}

/* The policy is the config's, read once. */
static void test_policy_from_config(void)
{
    struct fa_config cfg;
    struct fa_face_policy p;
    struct fa_face_opts o;
    fa_config_defaults(&cfg);
    cfg.learn_margin = 1.25;
    cfg.threshold_high = list3(3.1, 3.2, 3.3);
    cfg.threshold_low = list3(2.1, 2.2, 2.3);
    cfg.znorm[MFN][0] = 0.42;
    cfg.znorm[MFN][1] = 0.07;
    cfg.min_sharpness_enroll = 77;
    fa_face_policy_from_config(&cfg, &p);
    fa_face_opts_from_config(&cfg, &o);
    tap_ok(p.learn_margin == 1.25 && p.threshold_high.v[2] == 3.3 && p.threshold_low.v[0] == 2.1 &&
               p.threshold_low.n == 3,
           "thresholds and the learning margin");
    tap_ok(p.fusion.models == cfg.models && p.fusion.mean[MFN] == 0.42f &&
               p.fusion.sd[MFN] == 0.07f,
           "the fusion: the configured models and their impostor statistics");
    tap_ok(p.gates.enroll.min_sharpness == 77 && memcmp(&p.gates, &o, sizeof o) == 0,
           "the gates are the face service's (fa_face_opts_from_config)");
}

int main(void)
{
    test_verify_match();
    test_verify_threshold_by_count();
    test_verify_other_models();
    test_verify_fusion();
    test_verify_learn();
    test_enroll_one_person();
    test_enroll_not_same();
    test_enroll_blame_ties();
    test_refusal_codes();
    test_policy_from_config();
    free(g_probe);
    free(g_s);
    return tap_done();
}
