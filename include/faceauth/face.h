/*
 * face.h — the face service: image bytes in, one checked face out.
 *
 * Owns the pool of vision engines (one per core by default): a request
 * borrows an engine for decode + detect + embed + thumbnail and gives it
 * back, so at most `engines` face computations run at once whatever the
 * number of HTTP threads. A request that waits longer than queue_timeout_ms
 * for an engine gets FA_EBUSY (503) instead of piling up.
 *
 * Policy lives here, not in the API: which face counts when there are
 * several, the quality gates (size, light, pose, blur) and the liveness
 * screen with their refusal messages, how the models' scores are fused
 * (fusion.c), and the decisions built on them (decision.c): whether a probe
 * is the user's, whether it may be learned, whether the photos of one
 * enrollment show one person. The API asks and words the answer.
 */
#ifndef FACEAUTH_FACE_H
#define FACEAUTH_FACE_H

#include <stddef.h>
#include <stdint.h>

#include "faceauth/common.h"
#include "faceauth/config.h"
#include "faceauth/metrics.h"
#include "faceauth/vision.h"

/*
 * Quality limits of one purpose (enrollment is stricter than authentication:
 * a reference face is used for years, a probe only once). Measured on the
 * chosen face; fa_face_check_gates applies them in the order listed.
 */
struct fa_face_limits {
    double min_sharpness;  /* variance of the Laplacian of the aligned 112x112 gray chip */
    double min_brightness; /* mean gray level of that chip, 0..255 */
    double max_brightness;
    double max_yaw;        /* degrees, absolute (fa_face_pose) */
    double max_pitch;
    double max_roll;
};

struct fa_face_opts {
    const char *model_dir;
    int engines;
    int queue_timeout_ms;
    long max_pixels;
    double second_face_ratio;       /* refuse when area(2nd) >= ratio x area(largest) */
    double min_eye_distance_enroll; /* pixels */
    double min_eye_distance_auth;
    int thumbnail_size;
    /* A limit of 0 turns its gate off, and models 0 means the first model
     * only: callers that set only the fields above keep their behaviour. */
    struct fa_face_limits enroll;   /* blur, light and pose limits per purpose */
    struct fa_face_limits auth;
    unsigned models;                /* FA_MODEL_BIT()s to embed with; FA_MODEL_ARCFACE is
                                       always added (the search index uses it) */
    double liveness_min;            /* refuse a liveness-checked face whose live
                                       probability is below this */
    struct fa_metrics *metrics;     /* engine waits, busy engines, stage times and gate
                                       refusals go here; NULL = not recorded (borrowed) */
};

enum fa_face_purpose { FA_FACE_ENROLL, FA_FACE_AUTH };

/* What was measured on the chosen face (the inputs of the gates). */
struct fa_face_measures {
    float eye_distance; /* pixels between the eye centres, in the original image */
    float sharpness;    /* variance of the Laplacian of the aligned 112x112 gray chip */
    float brightness;   /* mean gray level of that chip */
    float yaw, pitch, roll; /* degrees (fa_face_pose) */
    float upright;      /* fa_face_upright's margin: below FA_UPRIGHT_MIN the face is
                           upside down or on its side (0, as when not measured, passes) */
    int turned;         /* the clockwise quarter turns of that margin: 2 upside down,
                           1 or 3 on its side */
};

/* The upright margin under which a face counts as upside down (or on its
 * side). On lfw-dev (tight crops, the hard case) it refuses 0.2% of upright
 * photos and catches 82% of upside-down ones; -2 caught 90% but refused
 * 0.4%, and tight, darkened crops of the e2e tests (src/vision/orient.cpp
 * has the figures). */
#define FA_UPRIGHT_MIN (-3.0f)

/* The one face an image was reduced to. */
struct fa_face_probe {
    unsigned models;                           /* FA_MODEL_BIT()s embedded into emb[] */
    float emb[FA_N_MODELS][FA_MAX_EMBED_DIM];  /* emb[m]: model m's L2-normalised embedding
                                                  (fa_model_info(m)->dim floats) */
    struct fa_face_measures q;
    int liveness_checked;     /* 1 when liveness ran (then live is set, even on refusal) */
    float live;               /* probability that the face is live, 0..1 */
    enum fa_image_kind kind;  /* of the original bytes */
    int n_faces;              /* faces detected in the image */
    uint8_t *thumbnail;       /* JPEG, malloc'ed; fa_face_probe_cleanup frees it */
    size_t n_thumbnail;
};

/* Why a face was refused; FA_GATE_PASS when it was not. */
enum fa_face_gate {
    FA_GATE_PASS = 0,
    FA_GATE_NOFACE,  /* no face found */
    FA_GATE_SEVERAL, /* the second face is nearly as large as the first */
    FA_GATE_SMALL,   /* eye distance below the minimum */
    FA_GATE_DARK,
    FA_GATE_BRIGHT,
    FA_GATE_POSE,    /* |yaw|, |pitch| or |roll| over its limit */
    FA_GATE_BLURRY,
    FA_GATE_SPOOF,   /* liveness below liveness_min */
    FA_GATE_UPSIDE,  /* the face is upside down (a photo turned by 180 degrees) */
    FA_GATE_SIDEWAYS, /* the face lies on its side (a photo turned by 90 degrees) */
};

/* "pass", "noface", "several", "small", "dark", "bright", "pose", "blurry",
 * "spoof", "upside", "sideways": short names for tools and logs. Never NULL. */
const char *fa_face_gate_name(enum fa_face_gate gate);

/* The code of a refusal: FA_ENOFACE for FA_GATE_NOFACE, FA_ESPOOF for
 * FA_GATE_SPOOF, FA_EGATE for every other gate; FA_OK for FA_GATE_PASS. */
enum fa_rc fa_face_gate_rc(enum fa_face_gate gate);

/* 1 when rc says the face service refused the face or the photos (FA_ENOFACE,
 * FA_EGATE, FA_ESPOOF, FA_ENOTSAME): an operation that failed, answered in
 * the failure shape and logged, not a bad request. */
int fa_face_refused(enum fa_rc rc);

struct fa_face_service;

/* Load `engines` engines from model_dir: the detector, the landmark net,
 * the embedding models of opts->models (and always fr_feature) and
 * fr_liveness.onnx (2 MB, so that any request may ask for liveness). */
enum fa_rc fa_face_service_new(const struct fa_face_opts *opts, struct fa_face_service **out,
                               struct fa_err *err);
void fa_face_service_free(struct fa_face_service *svc); /* NULL is fine */

/* The options of the config's face policy (gates, models, liveness) for
 * cfg->model_dir and cfg->engines engines: what `serve` and `quality`
 * both use, so the CLI applies exactly the server's gates. cfg must
 * outlive *out (model_dir is borrowed). */
void fa_face_opts_from_config(const struct fa_config *cfg, struct fa_face_opts *out);

/* Flags of fa_face_analyze. */
#define FA_FACE_LIVENESS 1u /* run liveness and refuse a face below liveness_min */

/*
 * Decode, detect, choose the face, apply the quality gates of `purpose`,
 * run liveness when flags has FA_FACE_LIVENESS (and the engines hold the
 * net), embed with every model of the service and make the thumbnail.
 * Errors: FA_EIMAGE / FA_ETOOBIG for images that cannot or may not be
 * decoded; for a refusal a message naming the problem and the measured
 * value, *gate (may be NULL) saying which, and the code of fa_face_gate_rc:
 * FA_ENOFACE (no face), FA_EGATE (several faces, a quality gate) or
 * FA_ESPOOF (liveness); FA_EBUSY when no engine frees up in time.
 * out->q and out->live keep what was measured even on a refusal.
 */
enum fa_rc fa_face_analyze(struct fa_face_service *svc, const uint8_t *bytes, size_t n,
                           enum fa_face_purpose purpose, unsigned flags,
                           struct fa_face_probe *out, enum fa_face_gate *gate,
                           struct fa_err *err);
void fa_face_probe_cleanup(struct fa_face_probe *probe);

/*
 * The gates of fa_face_analyze without embedding (for `faceauth quality`):
 * the same decode, detection, face choice and gates of `purpose`, and the
 * live probability into *live (may be NULL; -1 when the engines have no
 * liveness net). FA_OK whenever the image could be analysed: *gate holds
 * the verdict and err the refusal message; *q what was measured (zeros
 * when no face was chosen). Image errors as fa_face_analyze.
 */
enum fa_rc fa_face_inspect(struct fa_face_service *svc, const uint8_t *bytes, size_t n,
                           enum fa_face_purpose purpose, struct fa_face_measures *q,
                           float *live, enum fa_face_gate *gate, struct fa_err *err);

/*
 * The quality gates of one purpose on measured values, in this order:
 * face too small, too dark, too bright, upside down or on its side,
 * extreme pose, too blurry (darkness
 * first: a dark chip also has little contrast, which would read as blur).
 * FA_GATE_PASS, or the first gate failed with a message in err that names
 * the problem and the measured value. Pure; any thread.
 */
enum fa_face_gate fa_face_check_gates(const struct fa_face_opts *opts,
                                      enum fa_face_purpose purpose,
                                      const struct fa_face_measures *q, struct fa_err *err);

/* ---- fusion of the models' scores (src/face/fusion.c) ---- */

/* Which models fuse, and each model's impostor cosine statistics. */
struct fa_fusion {
    unsigned models;          /* FA_MODEL_BIT()s */
    float mean[FA_N_MODELS];  /* impostor cosine mean of model m */
    float sd[FA_N_MODELS];    /* and its standard deviation (> 0) */
};

/*
 * The fused score of two faces, each given as one vector per model
 * (a[m], b[m]: model m's L2-normalised embedding, or NULL when that face
 * has none): the mean over the models of f that both faces have of
 * z_m = (cos_m - mean_m) / sd_m. NAN when they share no model. Only equal
 * models are compared, never one model's vector with another's. Pure.
 */
float fa_face_fuse(const struct fa_fusion *f, const float *const a[FA_N_MODELS],
                   const float *const b[FA_N_MODELS]);

/*
 * The best fused score of probe over n samples (photos), sample i's vectors
 * at samples[i * FA_N_MODELS + m] (NULL where it lacks model m); samples
 * sharing no model with the probe are skipped. *counted (may be NULL) gets
 * the number of samples scored. NAN when none was. Pure.
 */
float fa_face_best_fused(const struct fa_fusion *f, const float *const probe[FA_N_MODELS],
                         const float *const *samples, int n, int *counted);

/* The probe's vectors as fa_face_fuse takes them: out[m] = probe->emb[m]
 * for the models it holds, NULL for the others. */
void fa_face_probe_vectors(const struct fa_face_probe *probe, const float *out[FA_N_MODELS]);

/* The fusion the config asks for: its `models` and each model's znorm_
 * statistics. Pure; cfg is read during the call only. */
void fa_face_fusion_from_config(const struct fa_config *cfg, struct fa_fusion *out);

/* One model's cosine on the fused scale, (cosine - mean[m]) / sd[m], and
 * back, mean[m] + z * sd[m]: how search reads a 0-1 threshold and which
 * cosine its index must reach. Monotone; NAN when sd[m] is not > 0. Pure. */
double fa_face_model_z(const struct fa_fusion *f, enum fa_model m, double cosine);
double fa_face_model_cosine(const struct fa_fusion *f, enum fa_model m, double z);

/* ---- the decisions (src/face/decision.c) ---- */

/*
 * Everything the decisions read, built once from the config at start
 * (fa_face_policy_from_config) and read-only afterwards, so any thread may
 * share one. Thresholds are fused z units by photo count (fa_cfg_list_at):
 * a best-of-k score matches impostors more often than one comparison, so
 * each precision keeps its false-match rate with a threshold that rises with k.
 */
struct fa_face_policy {
    struct fa_face_opts gates;        /* the quality gates; learning asks the enroll ones */
    struct fa_fusion fusion;          /* the models fused and their impostor statistics */
    struct fa_cfg_list threshold_high; /* precision high, value k-1 for k photos compared */
    struct fa_cfg_list threshold_low;
    double learn_margin;              /* learn only at threshold + this (z units) */
};

void fa_face_policy_from_config(const struct fa_config *cfg, struct fa_face_policy *out);

enum fa_face_precision { FA_PRECISION_HIGH = 0, FA_PRECISION_LOW = 1 };

/* Why a decision came out as it did. */
enum fa_face_reason {
    FA_REASON_MATCH = 0,    /* verify: the probe is the user's; enroll: one person */
    FA_REASON_NO_MATCH,     /* the best score is below the threshold */
    FA_REASON_OTHER_MODELS, /* no sample shares a model with the probe (k = 0): the
                               user was enrolled with other face models; update it */
    FA_REASON_NOT_SAME,     /* enroll: two photos do not match each other */
};

/* Flags of fa_face_verify. */
#define FA_VERIFY_LEARN 1u /* the client asks to learn the probe (useSampleForLearning) */

struct fa_face_verdict {
    int match;                 /* 1: the probe is the user's */
    int learn;                 /* 1: store the probe as a learned sample */
    float score;               /* the best fused score (NAN when k = 0) */
    int k;                     /* samples compared */
    double threshold;          /* the threshold applied */
    enum fa_face_reason reason;
};

/*
 * Is probe the user whose n samples are given (laid out as
 * fa_face_best_fused reads them)? A match needs k > 0 samples scored and a
 * best fused score at or above the threshold of precision for k photos.
 * With FA_VERIFY_LEARN, a match also learns when it clears the threshold by
 * learn_margin and the probe passes the enrollment gates: a borderline
 * impostor must not drag the templates their way, since each learned
 * impostor photo would make the next attempt easier. Pure; any thread.
 */
void fa_face_verify(const struct fa_face_policy *pol, const struct fa_face_probe *probe,
                    const float *const *samples, int n, enum fa_face_precision precision,
                    unsigned flags, struct fa_face_verdict *out);

#define FA_FACE_ENROLL_MAX_PHOTOS 5 /* photos of one enrollment */

struct fa_face_enroll_verdict {
    int accepted;               /* 1: every photo shows the same person */
    enum fa_face_reason reason; /* FA_REASON_MATCH or FA_REASON_NOT_SAME */
    int photo;                  /* refused: the photo blamed (0-based), else -1 */
    int partner;                /* refused: a photo it does not match, else -1 */
};

/*
 * May n analysed photos (each already through fa_face_analyze with
 * FA_FACE_ENROLL) be one user's reference? Every pair must match at the low
 * threshold of a one-photo user, so a set that mixes two people is refused
 * as a whole. The photo that fails the most pairs is blamed (the later one
 * on a tie: with two photos, the second does not match the first). One
 * photo is always accepted. n is 1..FA_FACE_ENROLL_MAX_PHOTOS. Pure; any thread.
 */
void fa_face_enroll_check(const struct fa_face_policy *pol, const struct fa_face_probe *photos,
                          int n, struct fa_face_enroll_verdict *out);

#endif
