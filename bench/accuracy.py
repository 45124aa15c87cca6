"""accuracy.py - the numbers behind docs/accuracy.md (run through bench/accuracy).

    accuracy.py --bin FAUTH --models DIR --faces DIR --config FILE --cache DIR
                --md FILE --png FILE

Every face is embedded by the product itself (`faceauth embed --model all`,
the same detector, alignment and networks as the server); this script only
does arithmetic on the vectors it prints. It measures each model alone and
the fused score, picks the fusion and the precision thresholds, checks the
issue's targets, prints the report as Markdown and writes it to --md, with a
DET plot drawn by gnuplot into --png.

Protocols (docs/accuracy.md explains them for readers):
  pairs     lfw-dev/PAIRS.tsv, LFW's 5 official folds of 600 pairs: accuracy
            with each fold's threshold chosen on the other four, and EER.
  all pairs every pair among lfw-dev images, at most 10 per person (the first
            10 in sorted order): genuine = same person, impostor = different.
  folds     LFW's View-2 folds are person-disjoint, so each lfw-dev person
            belongs to one of 5 folds (people in no pair: round robin). Every
            fitted quantity (z-norm statistics, fusion weights, thresholds) is
            also fitted on 4 folds and measured on the 5th, so that the
            choice between variants rests on people it has not seen.
  templates best-of-k over a user's first k photos, per-k thresholds.
Only /usr/bin/python3 with numpy: no other dependency, so it runs wherever
the set-up ran.
"""
import argparse
import collections
import hashlib
import math
import os
import subprocess
import sys
import time

import numpy as np

MODELS = ("fr_feature", "mobilefacenet", "dlib")   # column order of `faceauth embed --model all`
DIMS = (512, 192, 128)
MODEL_FILES = ("fr_detect.onnx", "fr_landmark.onnx", "fr_feature.onnx", "mobilefacenet.onnx",
               "dlib_resnet.onnx")                    # every network an embedding passes through
FMRS = (1e-3, 1e-4, 1e-5)
HIGH, LOW = 1e-4, 1e-3                               # FMR of precision "high" and "low"
CAP = 10                                             # images per person in the all-pairs protocol
N_FOLDS = 5
K_MAX = 15          # 5 enrolled + 10 learned photos: the most templates a user can have
SMALL_SETS = ("deepface", "face_recognition", "face-api.js", "openface", "facenet-pytorch",
              "compreface", "dlib", "orl_att_faces", "yalefaces")
QUALITY_GATES = ("noface", "several", "small", "dark", "bright", "pose", "blurry", "spoof")

# The targets and MODELS.md's figures for single models (lfw-dev, all pairs).
TARGET_FUSED = {1e-4: 0.040, 1e-3: 0.018}
TARGET_CV_ACC = 0.990
TARGET_K3 = 0.020
TARGET_QUALITY = 0.01
MODELS_MD = {"fr_feature": {1e-3: 0.030, 1e-4: 0.066}, "mobilefacenet": {1e-4: 0.058}}


def log(msg):
    """Progress on stderr, so stdout carries only the report."""
    print(f"[accuracy {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pct(x, digits=2):
    return "n/a" if x is None or not np.isfinite(x) else f"{100 * x:.{digits}f}%"


def sci(x):
    return f"{x:.0e}".replace("e-0", "e-")


# ------------------------------------------------------------------ embedding

def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def engine_key(binary, model_dir):
    """Hash of the binary and of every network file: the embeddings depend on
    nothing else, so a cache under this key is valid exactly as long as
    neither changes (a rebuild with other code re-embeds, to be safe)."""
    h = hashlib.sha256(sha256_file(binary).encode())
    for name in MODEL_FILES:
        h.update(sha256_file(os.path.join(model_dir, name)).encode())
    return h.hexdigest()[:16]


class Embeddings:
    """The product's embeddings of a list of images.

    ok[i] is False when the CLI found no face (or could not read the file);
    vecs[m] is an (n, dim) float32 array of model m's L2-normalised vectors,
    zero rows where ok is False."""

    def __init__(self, paths, ok, vecs):
        self.paths = paths
        self.ok = ok
        self.vecs = vecs

    def cosines(self):
        """Each model's cosine matrix over all the images. Computed once and
        sliced by every protocol: Debian's numpy uses the reference BLAS, so
        the products (7k x 7k x 832) are the slow part of the arithmetic."""
        return [v @ v.T for v in self.vecs]


def run_embed(binary, model_dir, paths):
    """Embed paths with `faceauth embed --model all -` (all cores) and parse
    its lines: path, ok|noface|error:..., then one comma-separated vector per
    model in MODELS order."""
    proc = subprocess.run([binary, "embed", "--models", model_dir, "--model", "all", "-"],
                          input="".join(p + "\n" for p in paths), capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"faceauth embed failed ({proc.returncode}): {proc.stderr.strip()}")
    lines = proc.stdout.splitlines()
    if len(lines) != len(paths):
        raise SystemExit(f"faceauth embed printed {len(lines)} lines for {len(paths)} images")
    ok = np.zeros(len(paths), bool)
    vecs = [np.zeros((len(paths), d), np.float32) for d in DIMS]
    for i, (path, line) in enumerate(zip(paths, lines)):
        fields = line.split("\t")
        if fields[0] != path:
            raise SystemExit(f"faceauth embed answered {fields[0]!r} for {path!r}")
        if fields[1] != "ok":
            continue
        ok[i] = True
        for m, text in enumerate(fields[2:2 + len(MODELS)]):
            vecs[m][i] = np.array(text.split(","), np.float32)
    for v in vecs:  # the CLI prints normalised vectors to 6 digits: renormalise exactly
        norm = np.linalg.norm(v, axis=1, keepdims=True)
        np.divide(v, norm, out=v, where=norm > 0)
    return Embeddings(paths, ok, vecs)


def embed(binary, model_dir, paths, cache_file):
    """Embeddings of paths, from cache_file when it holds exactly these paths
    (the file name carries the engine key), else from the CLI, then cached."""
    if os.path.exists(cache_file):
        z = np.load(cache_file, allow_pickle=False)
        if list(z["paths"]) == list(paths):
            return Embeddings(list(paths), z["ok"], [z[m] for m in MODELS])
    started = time.time()
    e = run_embed(binary, model_dir, paths)
    log(f"embedded {len(paths)} images in {time.time() - started:.0f} s -> {cache_file}")
    tmp = cache_file + ".tmp.npz"
    np.savez(tmp, paths=np.array(paths), ok=e.ok, **{m: v for m, v in zip(MODELS, e.vecs)})
    os.replace(tmp, cache_file)
    return e


# ------------------------------------------------------------------- metrics

def thresholds_at(scores, fmrs, n_total=None):
    """For each FMR, the lowest threshold t with at most that fraction of the
    impostor scores >= t (the server accepts score >= threshold). One
    partition for the largest FMR, then a sort of that tail only: there are
    tens of millions of impostor scores and only the top ones matter.
    `scores` may be just the highest of n_total scores; a threshold that
    falls below what they cover is -inf."""
    n = scores.size if n_total is None else n_total
    allowed = [int(math.floor(f * n)) for f in fmrs]
    m = min(max(allowed) + 1, scores.size)
    top = np.sort(np.partition(scores, scores.size - m)[scores.size - m:])[::-1]
    return [np.nextafter(top[a], np.inf) if a < m else -np.inf for a in allowed]


def threshold_at(scores, fmr):
    return thresholds_at(scores, [fmr])[0]


def fnmr_at(genuine, impostor, fmr):
    return float(np.mean(genuine < threshold_at(impostor, fmr)))


def det_points(genuine, impostor, fmrs):
    """FNMR at each FMR of the grid, from one sort of the impostors."""
    imp = np.sort(impostor)[::-1]
    gen = np.sort(genuine)
    out = []
    for fmr in fmrs:
        allowed = int(math.floor(fmr * imp.size))
        t = np.nextafter(imp[allowed], np.inf) if allowed < imp.size else -np.inf
        out.append(np.searchsorted(gen, t, side="left") / gen.size)
    return np.array(out)


def eer(genuine, impostor):
    """Equal error rate: where FNMR(t) (rising with t) meets FMR(t) (falling).
    Bisection on t: 40 halvings pin it below float32 resolution, and each
    step only counts, where a sort of 17M scores would take seconds."""
    lo = float(min(genuine.min(), impostor.min()))
    hi = float(max(genuine.max(), impostor.max()))
    for _ in range(40):
        t = (lo + hi) / 2
        if np.count_nonzero(genuine < t) / genuine.size < np.count_nonzero(impostor >= t) / impostor.size:
            lo = t
        else:
            hi = t
    return (np.count_nonzero(genuine < hi) / genuine.size
            + np.count_nonzero(impostor >= hi) / impostor.size) / 2


def best_accuracy_threshold(scores, same):
    """The threshold with the highest accuracy on these pairs: midpoints
    between consecutive distinct scores are the only distinct choices."""
    s = np.unique(scores[np.isfinite(scores)])
    cands = np.concatenate([[s[0] - 1], (s[1:] + s[:-1]) / 2, [s[-1] + 1]])
    order = np.argsort(scores)
    srt, lab = scores[order], same[order]
    # accepted = scores >= t: for each candidate, genuine at or above plus impostors below
    below = np.searchsorted(srt, cands, side="left")
    gen_below = np.concatenate([[0], np.cumsum(lab)])[below]
    imp_below = below - gen_below
    correct = imp_below + (lab.sum() - gen_below)
    return cands[int(np.argmax(correct))]


# ------------------------------------------------------------------- fusion

class Fusion:
    """A fused score sum_m scale[m] * (cosine_m - mean[m]).

    With scale = w / sd (weights summing to 1) it is the weighted mean of the
    z-scores. The server computes the plain mean over its models of
    (cosine - mean) / sd, so a weighted fusion ships as sd' = 1 / (3 scale):
    the same numbers, no extra config key. A model with scale 0 is left out."""

    def __init__(self, name, mean, scale):
        self.name = name
        self.mean = np.asarray(mean, np.float64)
        self.scale = np.asarray(scale, np.float64)

    @classmethod
    def from_weights(cls, name, mean, sd, weights):
        w = np.asarray(weights, np.float64)
        return cls(name, mean, w / w.sum() / np.asarray(sd))

    def weights(self, sd):
        """The weights of the z-scores (z by sd), summing to 1."""
        w = self.scale * np.asarray(sd)
        return w / w.sum()

    def server_sd(self):
        return 1 / (len(MODELS) * self.scale)

    def apply(self, cos):
        """cos: a list with one array per model (any equal shapes), or an
        (..., 3) array. Accumulates in float32: the score matrices are large."""
        parts = cos if isinstance(cos, list) else [cos[..., m] for m in range(len(MODELS))]
        out = np.zeros(parts[0].shape, np.float32)
        for m, c in enumerate(parts):
            if self.scale[m] != 0:
                out += np.float32(self.scale[m]) * (c - np.float32(self.mean[m]))
        return out

    def rounded(self):
        """As the config file states it (5 decimals), so that the thresholds
        are calibrated on exactly the scores the server will compute."""
        mean = np.round(self.mean, 5)
        sd = np.round(self.server_sd(), 5)
        return Fusion(self.name, mean, 1 / (len(MODELS) * sd))

    def config_lines(self):
        return [f"znorm_{m} = {mu:.5f},{sd:.5f}"
                for m, mu, sd in zip(MODELS, self.mean, self.server_sd())]


def fit_grid_weights(gen_z, imp_z, step=0.05):
    """Weights on the simplex (each >= step: the default fuses all three
    models) that minimise FNMR at FMR 1e-4, the operating point of "high";
    FNMR at 1e-3 breaks ties.

    Only impostors in the tail can set a threshold: a weighted mean never
    exceeds the largest of its z-scores, so an impostor whose largest z-score
    is below c cannot score c. Each threshold is computed on the impostors
    above c and kept when it lands above c (then it is exact); otherwise c is
    lowered and the search restarts. That makes the ~170 candidates cheap."""
    n = int(round(1 / step))
    grid = np.array([(a, b, n - a - b) for a in range(1, n) for b in range(1, n - a)],
                    np.float32) / n
    zmax = imp_z.max(axis=1)
    tail_frac = 0.002
    while True:
        c = np.quantile(zmax, 1 - tail_frac)
        tail = imp_z[zmax >= c]
        best = None
        for w in grid:
            t = thresholds_at(tail @ w, (HIGH, LOW), n_total=len(imp_z))
            if min(t) <= c:
                break
            g = gen_z @ w
            key = (np.mean(g < t[0]), np.mean(g < t[1]))
            if best is None or key < best[0]:
                best = (key, w)
        else:
            return best[1].astype(np.float64)
        tail_frac *= 4


def fit_logistic_weights(gen_z, imp_z, max_impostors=1_000_000):
    """Logistic regression of same/different on the three z-scores (Newton's
    method, classes weighted to equal mass); its coefficients, normalised, are
    the weights of a weighted mean. It fits the whole distribution rather than
    the tail, which is why it competes with the grid search. A fixed stride
    of the impostors keeps the fit fast and deterministic."""
    imp = imp_z[::max(1, len(imp_z) // max_impostors)]
    x = np.concatenate([gen_z, imp]).astype(np.float64)
    x = np.hstack([x, np.ones((len(x), 1))])
    y = np.concatenate([np.ones(len(gen_z)), np.zeros(len(imp))])
    sw = np.where(y == 1, len(imp) / len(gen_z), 1.0)
    beta = np.zeros(x.shape[1])
    for _ in range(50):
        p = 1 / (1 + np.exp(-np.clip(x @ beta, -30, 30)))
        grad = x.T @ (sw * (y - p))
        hess = (x * (sw * p * (1 - p))[:, None]).T @ x
        step = np.linalg.solve(hess, grad)
        beta += step
        if np.max(np.abs(step)) < 1e-8:
            break
    w = beta[:len(MODELS)]
    if np.any(w <= 0):
        raise SystemExit(f"logistic fusion gave a non-positive weight: {w}")
    return w / w.sum()


# ------------------------------------------------------------------ lfw-dev

class Lfw:
    """lfw-dev: images with their person, fold and embeddings, and the pairs.

    Images without a face are kept in `emb` (the pairs protocol counts them as
    rejections) but left out of every index list below; `no_face` lists them."""

    def __init__(self, root, emb):
        rows = [line.rstrip("\n").split("\t") for line in open(os.path.join(root, "LABELS.tsv"))]
        self.rel = [r[0] for r in rows]
        self.emb = emb
        self.names = sorted({r[1] for r in rows})
        self.person = np.searchsorted(np.array(self.names), np.array([r[1] for r in rows]))
        self.no_face = [self.rel[i] for i in np.flatnonzero(~emb.ok)]
        pos = {p: i for i, p in enumerate(self.rel)}
        pairs = [line.rstrip("\n").split("\t") for line in open(os.path.join(root, "PAIRS.tsv"))]
        missing = [p for r in pairs for p in r[:2] if p not in pos]
        if missing:
            raise SystemExit(f"PAIRS.tsv names images missing from LABELS.tsv: {missing[:3]}")
        self.pair_a = np.array([pos[r[0]] for r in pairs])
        self.pair_b = np.array([pos[r[1]] for r in pairs])
        self.pair_same = np.array([r[2] == "1" for r in pairs])
        self.pair_fold = np.arange(len(pairs)) * N_FOLDS // len(pairs)
        self.person_fold = self._person_folds()
        # each person's images with a face, in sorted path order
        by_person = collections.defaultdict(list)
        for i in sorted(np.flatnonzero(emb.ok), key=lambda i: self.rel[i]):
            by_person[self.person[i]].append(i)
        self.images_of = by_person
        self.capped = np.array(sorted(i for imgs in by_person.values() for i in imgs[:CAP]))
        self.cos = emb.cosines()

    def _person_folds(self):
        """Each person's View-2 fold (they are person-disjoint: checked);
        people in no pair go round robin in name order."""
        fold = np.full(len(self.names), -1)
        for a, b, f in zip(self.pair_a, self.pair_b, self.pair_fold):
            for p in (self.person[a], self.person[b]):
                if fold[p] not in (-1, f):
                    raise SystemExit(f"{self.names[p]} appears in two PAIRS.tsv folds")
                fold[p] = f
        rest = np.flatnonzero(fold < 0)
        fold[rest] = np.arange(len(rest)) % N_FOLDS
        return fold

    def fold_of(self, idx):
        return self.person_fold[self.person[idx]]


class PairSet:
    """Every unordered pair among a set of lfw-dev images, split into genuine
    and impostor, with each model's cosine: gen[m], imp[m] are 1-D arrays."""

    def __init__(self, lfw, idx):
        upper = np.triu(np.ones((len(idx), len(idx)), bool), 1)
        same = lfw.person[idx][:, None] == lfw.person[idx][None, :]
        cos = [c[np.ix_(idx, idx)] for c in lfw.cos]
        self.gen = [c[upper & same] for c in cos]
        self.imp = [c[upper & ~same] for c in cos]

    def z(self, mean, sd, which):
        """(pairs, models) z-scores, float32 like the cosines (17M rows)."""
        src = self.gen if which == "gen" else self.imp
        return np.stack([(s - np.float32(mu)) / np.float32(d)
                         for s, mu, d in zip(src, mean, sd)], axis=1)


def impostor_stats(pairs):
    """Mean and standard deviation of each model's impostor cosines: the
    z-normalisation that puts the three models on one scale."""
    mean = np.array([s.mean(dtype=np.float64) for s in pairs.imp])
    sd = np.array([s.std(dtype=np.float64) for s in pairs.imp])
    return mean, sd


def candidate_fusions(pairs):
    """The fusions tried, fitted on these pairs: equal weights of all three,
    the two-model subsets MODELS.md measured, grid-searched weights and
    logistic-regression weights."""
    mean, sd = impostor_stats(pairs)
    gz, iz = pairs.z(mean, sd, "gen"), pairs.z(mean, sd, "imp")
    return [
        Fusion.from_weights("fr_feature + mobilefacenet", mean, sd, [1, 1, 0]),
        Fusion.from_weights("fr_feature + dlib", mean, sd, [1, 0, 1]),
        Fusion.from_weights("all three, equal weights", mean, sd, [1, 1, 1]),
        Fusion.from_weights("all three, weights searched", mean, sd, fit_grid_weights(gz, iz)),
        Fusion.from_weights("all three, logistic fit", mean, sd, fit_logistic_weights(gz, iz)),
    ]


FULL_FUSIONS = ("all three, equal weights", "all three, weights searched", "all three, logistic fit")


def system_scores(pairs, system):
    """Genuine and impostor scores of a single model (its index) or a Fusion."""
    if isinstance(system, Fusion):
        return system.apply(pairs.gen), system.apply(pairs.imp)
    return pairs.gen[system], pairs.imp[system]


def evaluate_all_pairs(lfw):
    """All pairs among the capped images: per-model cosines, the fusions
    fitted in-sample, and the same systems fitted on 4 person folds and
    measured on the 5th (pooled over the folds)."""
    allp = PairSet(lfw, lfw.capped)
    fusions = candidate_fusions(allp)
    systems = list(range(len(MODELS))) + fusions
    names = list(MODELS) + [f.name for f in fusions]
    insample = {}
    for name, system in zip(names, systems):
        g, i = system_scores(allp, system)
        ts = thresholds_at(i, FMRS)
        insample[name] = {"fnmr": {f: float(np.mean(g < t)) for f, t in zip(FMRS, ts)},
                          "eer": eer(g, i),
                          "det": (g, i)}
    heldout = {name: {f: [0, 0] for f in (HIGH, LOW)} for name in names}
    fold_fusions = []
    folds = lfw.fold_of(lfw.capped)
    for f in range(N_FOLDS):
        train = PairSet(lfw, lfw.capped[folds != f])
        test = PairSet(lfw, lfw.capped[folds == f])
        fitted = candidate_fusions(train)
        fold_fusions.append({fu.name: fu for fu in fitted})
        for name, system in zip(names, list(range(len(MODELS))) + fitted):
            g, i = system_scores(test, system)
            for fmr, t in zip((HIGH, LOW), thresholds_at(i, (HIGH, LOW))):
                heldout[name][fmr][0] += int(np.sum(g < t))
                heldout[name][fmr][1] += g.size
        log(f"fold {f + 1}: fusions fitted on the other folds")
    heldout = {n: {f: v[0] / v[1] for f, v in d.items()} for n, d in heldout.items()}
    return {"pairs": allp, "fusions": {fu.name: fu for fu in fusions}, "insample": insample,
            "heldout": heldout, "fold_fusions": fold_fusions,
            "n_images": len(lfw.capped), "n_gen": allp.gen[0].size, "n_imp": allp.imp[0].size,
            "n_people_gen": int(sum(1 for imgs in lfw.images_of.values() if len(imgs) > 1))}


def choose_fusion(res):
    """Keep the full fusion with the lowest held-out FNMR at FMR 1e-4 (then
    1e-3); in listed order, so equal weights win a tie: simplest first."""
    return min(FULL_FUSIONS, key=lambda n: (res["heldout"][n][HIGH], res["heldout"][n][LOW]))


def pair_protocol(lfw, res):
    """PAIRS.tsv: accuracy with each fold's threshold chosen on the other
    four, and EER over the 3,000 pairs. Fusions of fold f are the ones fitted
    on the other folds' people. A pair with a missing face scores -inf:
    the server would refuse it."""
    cos = lfw.emb.vecs
    pair_cos = np.stack([np.sum(v[lfw.pair_a] * v[lfw.pair_b], axis=1) for v in cos], axis=1)
    missing = ~(lfw.emb.ok[lfw.pair_a] & lfw.emb.ok[lfw.pair_b])
    out = {}
    names = list(MODELS) + list(res["fusions"])
    for name in names:
        accs, pooled = [], np.empty(len(pair_cos), np.float32)
        for f in range(N_FOLDS):
            if name in MODELS:
                s = pair_cos[:, MODELS.index(name)].astype(np.float32)
            else:
                s = res["fold_fusions"][f][name].apply(pair_cos)
            s = np.where(missing, -np.inf, s)
            test = lfw.pair_fold == f
            t = best_accuracy_threshold(s[~test], lfw.pair_same[~test])
            accs.append(np.mean((s[test] >= t) == lfw.pair_same[test]))
            pooled[test] = s[test]
        out[name] = {"acc": float(np.mean(accs)), "sd": float(np.std(accs)),
                     "eer": eer(pooled[lfw.pair_same], pooled[~lfw.pair_same])}
    return out, int(missing.sum())


# ------------------------------------------------------- templates, thresholds

class BestOfK:
    """Impostor scores of the fused system for calibrating per-count thresholds.

    single(folds): every different-person pair among the capped images of the
    people in folds (the all-pairs impostors: k = 1).
    scores(k, ...), k >= 2: people with >= k photos enrol their first k; every
    capped image of another person is a probe; score = the best fused score
    over the k templates (what authenticate computes). best[k] is an owners x
    probes matrix, -inf where both are the same person, grown template by
    template (the max of the previous best and the k-th template's row)."""

    def __init__(self, lfw, fused_all):
        self.fused = fused_all[np.ix_(lfw.capped, lfw.capped)]
        self.person = lfw.person[lfw.capped]
        self.fold = lfw.fold_of(lfw.capped)
        owners = sorted(lfw.images_of)
        self.best, self.owner_fold = {}, {}
        current = None
        for k in range(1, K_MAX + 1):
            keep = [j for j, p in enumerate(owners) if len(lfw.images_of[p]) >= k]
            owners = [owners[j] for j in keep]
            if not owners:
                break
            kth = np.array([lfw.images_of[p][k - 1] for p in owners])
            row = fused_all[np.ix_(kth, lfw.capped)]
            row[np.array(owners)[:, None] == self.person[None, :]] = -np.inf
            current = row if current is None else np.maximum(current[keep], row)
            if k >= 2:
                self.best[k] = current
                self.owner_fold[k] = lfw.person_fold[np.array(owners)]

    def counts(self):
        return [1] + sorted(self.best)

    def single(self, folds):
        sel = np.isin(self.fold, folds)
        f = self.fused[np.ix_(sel, sel)]
        p = self.person[sel]
        return f[np.triu(np.ones(f.shape, bool), 1) & (p[:, None] != p[None, :])]

    def scores(self, k, owner_folds, probe_folds):
        """The valid best-of-k impostor scores among the given folds."""
        b = self.best[k][np.isin(self.owner_fold[k], owner_folds)][
            :, np.isin(self.fold, probe_folds)]
        return b[np.isfinite(b)]


def per_count_thresholds(bok, fmr, folds, method):
    """Thresholds for k = 1..K_MAX at FMR fmr, from the people in `folds`.

    'count': the FMR quantile of each k's own best-of-k impostor scores,
      made non-decreasing in k (a best-of-k score only grows with k, so a
      lower threshold for more templates is sampling noise).
    'union': the single-comparison threshold at FMR fmr / k: a best-of-k
      false match needs one of k comparisons to match, so its rate is at most
      k times the single rate (equal when the k templates are unrelated,
      less when they look alike). Uses the large single-comparison sample.
    Both give the all-pairs threshold at k = 1."""
    single = bok.single(folds)
    if method == "union":
        return np.array(thresholds_at(single, [fmr / k for k in bok.counts()]))
    return np.maximum.accumulate([threshold_at(single, fmr)] +
                                 [threshold_at(bok.scores(k, folds, folds), fmr)
                                  for k in bok.counts()[1:]])


def compare_threshold_methods(bok):
    """Calibrate each method on 4 person folds, count the false matches on the
    5th (owners and probes both from it), k >= 2 only: at k = 1 the two agree.
    A method holds its FMR when the pooled count is within two Poisson
    standard deviations of what the nominal FMR predicts."""
    out = {}
    for fmr in (HIGH, LOW):
        for method in ("count", "union"):
            observed = expected = 0.0
            for f in range(N_FOLDS):
                train = [g for g in range(N_FOLDS) if g != f]
                t = per_count_thresholds(bok, fmr, train, method)
                for k in bok.counts()[1:]:
                    s = bok.scores(k, [f], [f])
                    observed += int(np.sum(s >= t[k - 1]))
                    expected += fmr * s.size
            out[(fmr, method)] = {"observed": observed, "expected": expected,
                                  "holds": observed <= expected + 2 * math.sqrt(expected)}
    return out


def choose_threshold_method(cmp):
    """Per level: of the methods that hold the FMR on held-out people, the
    one whose false-match count comes closest to the nominal (a needlessly
    strict threshold costs false rejections); if neither holds, the lower."""
    chosen = {}
    for fmr in (HIGH, LOW):
        ms = [(m, cmp[(fmr, m)]) for m in ("count", "union")]
        holding = [(m, r) for m, r in ms if r["holds"]]
        if holding:
            chosen[fmr] = min(holding, key=lambda mr: abs(math.log(
                max(mr[1]["observed"], 0.5) / mr[1]["expected"])))[0]
        else:
            chosen[fmr] = min(ms, key=lambda mr: mr[1]["observed"])[0]
    return chosen


def calibrate(lfw, fused_all):
    """Per-count thresholds of both levels by both methods on all of lfw-dev
    (rounded up for the config), the held-out comparison of the methods, and
    the method used per level."""
    bok = BestOfK(lfw, fused_all)
    every_fold = list(range(N_FOLDS))
    all_thr = {(f, m): [round_up(t) for t in per_count_thresholds(bok, f, every_fold, m)]
               for f in (HIGH, LOW) for m in ("count", "union")}
    methods = compare_threshold_methods(bok)
    return all_thr, methods, choose_threshold_method(methods)


def top_impostors(lfw, fused_all, n=12):
    """The n highest-scoring impostor pairs of the all-pairs protocol, as
    (score, path, path). They set the threshold at FMR 1e-5 (171 pairs)
    and show what an "impostor" is there: LFW files some photos under two
    names, and in a photo of two people the largest face (the one the
    product takes) can be the other name's: no model can beat that."""
    f = fused_all[np.ix_(lfw.capped, lfw.capped)]
    p = lfw.person[lfw.capped]
    f[np.tril(np.ones(f.shape, bool)) | (p[:, None] == p[None, :])] = -np.inf
    flat = np.argpartition(f.ravel(), f.size - n)[f.size - n:]
    rows, cols = np.unravel_index(flat[np.argsort(-f.ravel()[flat])], f.shape)
    return [(float(f[r, c]), lfw.rel[lfw.capped[r]], lfw.rel[lfw.capped[c]])
            for r, c in zip(rows, cols)]


def round_up(t, digits=3):
    """Thresholds go into the config rounded up: never more false matches."""
    return math.ceil(t * 10 ** digits) / 10 ** digits


# (label, k, first probe, last probe, minimum photos): people with at least
# that many photos enrol their first k photos and probe with photos
# first..last (1-based, sorted order). The first two rows are the issue's
# protocol (the 4th photo is the probe); the others use up to 7 probes per
# person for tighter figures. k = 1 and 3 share their probes, so that only
# the templates differ.
TEMPLATE_PROTOCOLS = (("1 photo, probe = 4th", 1, 4, 4, 4),
                      ("3 photos, probe = 4th", 3, 4, 4, 4),
                      ("1 photo, probes = 4th-10th", 1, 4, 10, 4),
                      ("3 photos, probes = 4th-10th", 3, 4, 10, 4),
                      ("10 photos, probes = 11th-17th", 10, 11, 17, 11))


def multi_template(lfw, fused_all, thresholds):
    """For each protocol: best-of-k genuine scores (own probes vs own
    templates) and impostor scores (every other person's probes vs these
    templates); FNMR at the protocol's own best-of-k FMR 1e-4 / 1e-3 (the
    issue's definition), then FNMR and measured FMR at the single-template
    thresholds and at the per-k ones."""
    out = []
    for label, k, first, last, min_photos in TEMPLATE_PROTOCOLS:
        people = [p for p, imgs in sorted(lfw.images_of.items()) if len(imgs) >= min_photos]
        temps = [lfw.images_of[p][:k] for p in people]
        probes = [lfw.images_of[p][first - 1:last] for p in people]
        probe_idx = np.array([i for ps in probes for i in ps])
        probe_owner = np.repeat(np.arange(len(people)), [len(ps) for ps in probes])
        best = np.full((len(people), len(probe_idx)), -np.inf, np.float32)
        for j, t in enumerate(temps):
            best[j] = fused_all[np.ix_(t, probe_idx)].max(axis=0)
        own = probe_owner[None, :] == np.arange(len(people))[:, None]
        gen, imp = best[own], best[~own]
        row = {"label": label, "k": k, "people": len(people), "n_gen": gen.size,
               "n_imp": imp.size}
        for fmr in (HIGH, LOW):
            level = thresholds[fmr]
            row[fmr] = {"own": fnmr_at(gen, imp, fmr),
                        "single": (np.mean(gen < level[0]), np.mean(imp >= level[0])),
                        "per_k": (np.mean(gen < level[k - 1]), np.mean(imp >= level[k - 1]))}
        out.append(row)
    return out


# ------------------------------------------------------------- small sets

def small_set_images(root):
    """Single-face labelled images of a set (identity neither MULTI nor -),
    byte-identical copies dropped (face_recognition ships the same photo in
    three folders: they would be free genuine matches)."""
    seen, paths, ids = set(), [], []
    for line in open(os.path.join(root, "LABELS.tsv")):
        rel, ident = line.rstrip("\n").split("\t")[:2]
        if ident in ("MULTI", "-"):
            continue
        digest = sha256_file(os.path.join(root, rel))
        if digest in seen:
            continue
        seen.add(digest)
        paths.append(os.path.join(root, rel))
        ids.append(ident)
    return paths, ids


def small_sets(faces, binary, model_dir, cache, fusion, t_high, t_low):
    """TAR at the calibrated single-template thresholds and the impostor
    pairs that pass them, on the small labelled sets. deepface has its own
    PAIRS.tsv; the others: every pair of their single-face labelled images.
    Pairs with an image the product finds no face in are left out (the
    no-face count is reported beside): a refusal for no face is a property
    of the detector, not of the threshold."""
    rows = []
    for name in SMALL_SETS:
        root = os.path.join(faces, name)
        if not os.path.isdir(root):
            continue
        if os.path.exists(os.path.join(root, "PAIRS.tsv")):
            pairs = [l.rstrip("\n").split("\t") for l in open(os.path.join(root, "PAIRS.tsv"))]
            paths = sorted({os.path.join(root, p) for r in pairs for p in r[:2]})
            pos = {p: i for i, p in enumerate(paths)}
            a = np.array([pos[os.path.join(root, r[0])] for r in pairs])
            b = np.array([pos[os.path.join(root, r[1])] for r in pairs])
            same = np.array([r[2] == "1" for r in pairs])
        else:
            paths, ids = small_set_images(root)
            ids = np.array(ids)
            a, b = np.triu_indices(len(paths), 1)
            same = ids[a] == ids[b]
        emb = embed(binary, model_dir, paths, os.path.join(cache, f"{name}.npz"))
        found = emb.ok[a] & emb.ok[b]
        a, b, same = a[found], b[found], same[found]
        s = fusion.apply([np.sum(v[a] * v[b], axis=1) for v in emb.vecs])
        g, i = s[same], s[~same]
        rows.append({"set": name, "images": len(paths), "no_face": int((~emb.ok).sum()),
                     "n_gen": g.size, "n_imp": i.size,
                     "tar_high": float(np.mean(g >= t_high)) if g.size else float("nan"),
                     "tar_low": float(np.mean(g >= t_low)) if g.size else float("nan"),
                     "imp_high": int(np.sum(i >= t_high)), "imp_low": int(np.sum(i >= t_low))})
    return rows


# ------------------------------------------------------------ quality gates

def quality_gates(binary, model_dir, config, paths, cache_file):
    """Per gate, how many images `faceauth quality` refuses for authentication
    and for enrollment (the server's own code and the shipped config's
    limits). None when this build has no quality subcommand."""
    probe = subprocess.run([binary, "quality"], capture_output=True, text=True)
    if probe.returncode == 64:  # main's usage: no such subcommand in this build
        return None
    if os.path.exists(cache_file):
        with open(cache_file) as f:
            lines = f.read().splitlines()
    else:
        started = time.time()
        proc = subprocess.run([binary, "quality", "--config", config, "--models", model_dir, "-"],
                              input="".join(p + "\n" for p in paths), capture_output=True,
                              text=True)
        if proc.returncode != 0:
            raise SystemExit(f"faceauth quality failed ({proc.returncode}): {proc.stderr.strip()}")
        lines = proc.stdout.splitlines()
        with open(cache_file + ".tmp", "w") as f:
            f.write(proc.stdout)
        os.replace(cache_file + ".tmp", cache_file)
        log(f"quality gates on {len(paths)} images in {time.time() - started:.0f} s")
    counts = {"auth": collections.Counter(), "enroll": collections.Counter()}
    for line in lines:
        fields = line.split("\t")
        if fields[1].startswith("error:"):
            counts["auth"]["error"] += 1
            counts["enroll"]["error"] += 1
            continue
        counts["auth"][fields[1]] += 1
        counts["enroll"][fields[2]] += 1
    return {"n": len(lines), **counts}


# ------------------------------------------------------------------ the plot

def det_plot(curves, cache, png):
    """FNMR against FMR, both log scales, one line per system; gnuplot reads
    a data file with one block per system."""
    grid = np.logspace(-6, 0, 121)
    dat = os.path.join(cache, "det.dat")
    with open(dat, "w") as f:
        for name, (g, i) in curves:
            f.write(f"# {name}\n")
            for fmr, fnmr in zip(grid, det_points(g, i, grid)):
                if fmr * i.size >= 1 and fnmr > 0:
                    f.write(f"{fmr:.3e} {fnmr:.6f}\n")
            f.write("\n\n")
    plots = ", ".join(f"'{dat}' index {n} with lines lw 2 title '{name}' noenhanced"
                      for n, (name, _) in enumerate(curves))
    script = f"""
set terminal pngcairo size 900,650 font 'sans,11'
set output '{png}'
set logscale xy
set format x '10^{{%L}}'
set format y '%g'
set xlabel 'false match rate (FMR)'
set ylabel 'false non-match rate (FNMR)'
set title 'lfw-dev, all pairs (<= {CAP} images per person)'
set grid xtics ytics mxtics mytics
set key top right
set xrange [1e-6:1]
set yrange [0.001:1]
set arrow from {HIGH},0.001 to {HIGH},1 nohead dt 2
set arrow from {LOW},0.001 to {LOW},1 nohead dt 2
plot {plots}
"""
    subprocess.run(["gnuplot"], input=script, text=True, check=True)


# ----------------------------------------------------------------- the report

def target_row(what, measured, target, lower_is_better=True):
    """One row of the targets table: met, or missed and by how much."""
    met = measured <= target if lower_is_better else measured >= target
    verdict = "met" if met else f"**missed** by {pct(abs(measured - target))}"
    return f"| {what} | {pct(measured)} | {'<=' if lower_is_better else '>='} {pct(target)} | {verdict} |"


def level_name(fmr):
    return f"{'high' if fmr == HIGH else 'low'} (FMR {sci(fmr)})"


def section_targets(ctx):
    ins, cv, chosen = ctx["all_pairs"]["insample"], ctx["pairs_cv"], ctx["chosen"]
    held = ctx["all_pairs"]["heldout"][chosen]
    k3 = next(r for r in ctx["templates"] if r["label"] == "3 photos, probe = 4th")
    k3x = next(r for r in ctx["templates"] if r["label"] == "3 photos, probes = 4th-10th")
    L = ["## Targets (issue 5)", "",
         "| target | measured | goal | |", "|---|---|---|---|",
         target_row(f"fused ({chosen}): FNMR @ FMR 1e-4, all pairs", ins[chosen]["fnmr"][HIGH],
                    TARGET_FUSED[HIGH]),
         target_row("fused: FNMR @ FMR 1e-3, all pairs", ins[chosen]["fnmr"][LOW], TARGET_FUSED[LOW]),
         target_row("fused: cross-validated accuracy, PAIRS.tsv", cv[chosen]["acc"], TARGET_CV_ACC,
                    lower_is_better=False),
         target_row("3 photos enrolled (probe = 4th photo): FNMR @ best-of-3 FMR 1e-4",
                    k3[HIGH]["own"], TARGET_K3),
         f"| the same with probes = 4th-10th photos (not the issue's protocol: {k3x['n_gen']:,} "
         f"genuine trials instead of {k3['n_gen']}) | {pct(k3x[HIGH]['own'])} | <= {pct(TARGET_K3)} | "
         f"{'within' if k3x[HIGH]['own'] <= TARGET_K3 else 'above'} |"]
    for m, figs in MODELS_MD.items():
        for fmr, want in figs.items():
            got = ins[m]["fnmr"][fmr]
            verdict = "reproduced" if abs(got - want) <= 0.0025 else f"**differs** by {pct(abs(got - want))}"
            L.append(f"| {m} alone, FNMR @ FMR {sci(fmr)} (MODELS.md / issue) | {pct(got)} | "
                     f"{pct(want, 1)} | {verdict} |")
    q = ctx["quality"]
    if q is None:
        L.append(f"| quality gates refuse <= {pct(TARGET_QUALITY, 0)} of lfw-dev | not measured | "
                 f"<= {pct(TARGET_QUALITY, 0)} | TODO (see Quality gates) |")
    else:
        for purpose, what in (("auth", "authentication"), ("enroll", "enrollment")):
            L.append(target_row(f"quality gates for {what}: lfw-dev images refused",
                                refused(q, purpose) / q["n"], TARGET_QUALITY))
            L.append(target_row("the same without the several-faces rule",
                                refused(q, purpose, several=False) / q["n"], TARGET_QUALITY))
    L.append("")
    if ins[chosen]["fnmr"][HIGH] > TARGET_FUSED[HIGH] or ins[chosen]["fnmr"][LOW] > TARGET_FUSED[LOW]:
        L += [f"**Why the fused all-pairs targets are missed, and what was tried.** The targets were "
              "set from MODELS.md's fusion measured on the *other* half of LFW (folds 6-10: 2.51% "
              "@ 1e-4, 1.03% @ 1e-3). lfw-dev is the harder half for these networks: the first "
              f"model alone falsely rejects {pct(ins['fr_feature']['fnmr'][HIGH])} @ 1e-4 here "
              "against 4.50% there, and MobileFaceNet "
              f"{pct(ins['mobilefacenet']['fnmr'][HIGH])} against 4.27%; fusing all three gains "
              f"about as much here ({pct(ins['all three, equal weights']['fnmr'][HIGH])} with equal "
              f"weights, {pct(ins[chosen]['fnmr'][HIGH])} kept; held out "
              f"{pct(held[HIGH])}), but from a worse start. Tried: equal weights, weights searched "
              "for the lowest FNMR @ 1e-4, a logistic fit, the two-model subsets (tables below; "
              "every variant fitted on 4 person folds and measured on the 5th). The top of the "
              "impostor scores is partly LFW's own errors (same photo under two names, two-person "
              "photos; see below), which raises every threshold. Left for the vision side, not "
              "tried here: embedding the horizontally flipped chip as well (MODELS.md, pipeline "
              "step 5).", ""]
    return L


def section_method(ctx):
    res = ctx["all_pairs"]
    return [
        "## Method", "",
        "- **Embeddings** come from the product: `faceauth embed --model all` (the server's "
        "detector, landmarks, both alignments and the three networks) on every image; this "
        "benchmark only computes cosines, fusions and rates from the printed vectors. They are "
        "cached under `.cache/accuracy/<engine key>/`.",
        "- **Fused score**, as the server computes it: the mean over the models of "
        "(cosine - mean) / sd, with `znorm_<model> = mean,sd` from the config. mean is the mean "
        "of the model's impostor cosines on lfw-dev (all pairs). sd is their standard deviation "
        "divided by 3 w, where w is the model's weight (summing to 1): that folds a weighted mean "
        "of z-scores into the server's plain mean, so with equal weights sd is the plain "
        "impostor sd. Candidates: equal weights; weights searched on a 0.05 grid (each >= 0.05) "
        "for the lowest FNMR @ FMR 1e-4; the coefficients of a logistic regression on the "
        "z-scores. The kept one has the lowest FNMR @ 1e-4 held out (then @ 1e-3).",
        "- **Held out**: LFW's View-2 folds are person-disjoint, so every lfw-dev person belongs to "
        "one of PAIRS.tsv's 5 folds (people in no pair: round robin by name). z-statistics, weights "
        "and thresholds are also fitted on 4 folds' people and measured on the 5th fold's, counts "
        "pooled over the 5 folds. In-sample figures fit and measure on all of lfw-dev at once: "
        "that is how the shipped config is calibrated.",
        "- **FNMR @ FMR x**: the threshold is the lowest score that at most a fraction x of the "
        "impostor scores reach (the server accepts score >= threshold); FNMR = the fraction of "
        "genuine scores below it.",
        f"- **Pairs**: `lfw-dev/PAIRS.tsv`, 3,000 pairs in 5 folds of 600 (300 same, 300 "
        f"different): each fold's accuracy at the threshold that is best on the other 4 folds; "
        f"mean and standard deviation over the folds. EER over all 3,000 pairs. A pair with an "
        f"image without a detected face counts as refused ({ctx['pairs_missing']} such pairs).",
        f"- **All pairs**: every lfw-dev image with a face, at most {CAP} per person (the first "
        f"{CAP} in sorted order): {res['n_images']:,} images; genuine = every same-person pair "
        f"({res['n_gen']:,}, from the {res['n_people_gen']} people with >= 2 images), impostor = "
        f"every different-person pair ({res['n_imp']:,}). People with one image add impostor "
        "pairs only; these are the impostor statistics MODELS.md quotes.",
        "- **Several photos** (authenticate takes the best score over the user's photos): a "
        "person's first k photos are the templates, later photos the probes; genuine = the "
        "person's own probes, impostor = every other person's probes against these templates, "
        "best of k.",
        f"- **Per-count thresholds**, k = 1..{K_MAX} ({K_MAX} = 5 enrolled + 10 learned photos, the "
        "most a user can have): the best-of-k impostors are every person with >= k photos (the "
        "first k as templates) against every all-pairs image of everyone else. Two methods: "
        "*count* = the FMR quantile of each k's best-of-k scores (made non-decreasing in k); "
        "*union* = the single-comparison threshold at FMR / k. Each is calibrated on 4 folds and "
        "its false matches counted on the 5th (k >= 2); used is the method that holds the nominal "
        "FMR (at most 2 Poisson standard deviations above) and comes closest to it.",
        ""]


def section_data(ctx):
    lfw = ctx["lfw"]
    shown = ", ".join(lfw.no_face[:5]) + (", ..." if len(lfw.no_face) > 5 else "")
    return [
        "## Data sets", "",
        f"From `../shared/faces/` (its README has sources and licences). lfw-dev: "
        f"{len(lfw.rel):,} deep-funneled 250x250 LFW images of {len(lfw.names):,} people: the "
        "people of View-2 folds 1-5 plus everyone in no pair (folds 6-10 are held out and not "
        f"here). The product found no face in {len(lfw.no_face)} of them"
        + (f" ({shown})" if lfw.no_face else "") + ". Caveats: LFW has known label errors, and "
        "some photos show two people (both end up among the impostors' top scores, below); "
        "deep-funneled images differ slightly from the original `lfw.tgz`, so published LFW "
        "figures are not exactly comparable; LFW is news photos of mostly well-known adults, "
        "mostly frontal and well lit: a phone selfie in the dark is harder. The thresholds are "
        "calibrated and measured on the same people; the held-out columns show how much that "
        "flatters.", ""]


def section_pairs(ctx):
    L = ["## LFW pairs (PAIRS.tsv, 5 folds)", "",
         "| system | accuracy (CV) | sd over folds | EER |", "|---|---|---|---|"]
    for name, r in ctx["pairs_cv"].items():
        L.append(f"| {name}{' (kept)' if name == ctx['chosen'] else ''} | {pct(r['acc'])} | "
                 f"{pct(r['sd'])} | {pct(r['eer'])} |")
    return L + ["", "Fusions here are fitted on the other folds' people (z-statistics and weights).", ""]


def section_all_pairs(ctx):
    res, chosen = ctx["all_pairs"], ctx["chosen"]
    L = ["## All pairs (at most 10 images per person)", "",
         "| system | FNMR @ FMR 1e-3 | @ 1e-4 | @ 1e-5 | EER | held out: @ 1e-3 | @ 1e-4 |",
         "|---|---|---|---|---|---|---|"]
    for name, r in res["insample"].items():
        held = res["heldout"][name]
        L.append(f"| {name}{' (kept)' if name == chosen else ''} | "
                 + " | ".join(pct(r["fnmr"][f]) for f in FMRS)
                 + f" | {pct(r['eer'], 3)} | {pct(held[LOW])} | {pct(held[HIGH])} |")
    w = ctx["fusion"].weights(ctx["sd"])
    L += ["", "Held out: pairs within one fold only (a fifth of the people, so about a 25th of the "
          "impostor pairs), fusions fitted on the other folds: compare these two columns down the "
          "rows, not with the in-sample ones. dlib's net alone has a heavy impostor tail "
          "(MODELS.md): it is only ever fused.", "",
          f"Kept: **{chosen}**, weights " + ", ".join(f"{m} {x:.2f}" for m, x in zip(MODELS, w))
          + "; impostor cosine mean / sd: "
          + "; ".join(f"{m} {mu:.4f} / {sd:.4f}" for m, mu, sd in zip(MODELS, ctx["mean"], ctx["sd"]))
          + ".", "",
          "![DET curves: FNMR against FMR on lfw-dev, all pairs](accuracy-det.png)", "",
          "The highest impostor scores decide the threshold at FMR 1e-5 and the left end of the "
          "plot. Looked at, the top ones are mostly not two people: one photo filed under two "
          "names (the top two are the same picture), one person under two spellings (Noer Moeis / "
          "Noer Muis), or a photo of two people in which the product takes the larger face, the "
          "other name's (Elizabeth Regan's photo is centred on her, but Whoopi Goldberg's face is "
          "larger). They stay in: the targets were set with them.", "",
          "| fused score | image | image |", "|---|---|---|"]
    L += [f"| {s:.2f} | {os.path.basename(a)} | {os.path.basename(b)} |" for s, a, b in ctx["top_impostors"]]
    return L + [""]


def section_thresholds(ctx):
    thr, cmp = ctx["all_thr"], ctx["methods"]
    L = ["## Precision thresholds (fused z units)", "",
         "| k photos | high (FMR 1e-4): count | union | low (FMR 1e-3): count | union |",
         "|---|---|---|---|---|"]
    for k in range(1, len(thr[(HIGH, "count")]) + 1):
        L.append(f"| {k} | " + " | ".join(f"{thr[(f, m)][k - 1]:.3f}"
                                          for f in (HIGH, LOW) for m in ("count", "union")) + " |")
    L += ["", f"False matches on held-out people, k = 2..{K_MAX} pooled (calibrated on 4 folds, "
          "counted on the 5th):", "",
          "| level | method | false matches | expected at the nominal FMR | ratio | holds |",
          "|---|---|---|---|---|---|"]
    for (fmr, m), r in cmp.items():
        used = " (used)" if ctx["methods_chosen"][fmr] == m else ""
        L.append(f"| {level_name(fmr)} | {m}{used} | {r['observed']:.0f} | {r['expected']:.1f} | "
                 f"{r['observed'] / r['expected']:.2f} | {'yes' if r['holds'] else 'no'} |")
    L += ["", "The config lines (thresholds rounded up to 3 decimals; value i is for a user with "
          "i + 1 photos, the last one also for more). They hold for the default `models` (all "
          "three); a different set of models needs its own calibration:", "", "```"]
    return L + ctx["config_lines"] + ["```", ""]


def section_templates(ctx):
    L = ["## Several photos per user (best of k)", ""]
    for fmr in (HIGH, LOW):
        L += [f"Precision {level_name(fmr)}:", "",
              f"| protocol | people | genuine | impostor | FNMR @ best-of-k FMR {sci(fmr)} | "
              "single-template threshold: FNMR | FMR | per-k threshold: FNMR | FMR |",
              "|---|---|---|---|---|---|---|---|---|"]
        for r in ctx["templates"]:
            s, p = r[fmr]["single"], r[fmr]["per_k"]
            L.append(f"| {r['label']} | {r['people']} | {r['n_gen']:,} | {r['n_imp']:,} | "
                     f"{pct(r[fmr]['own'])} | {pct(s[0])} | {s[1]:.1e} | {pct(p[0])} | {p[1]:.1e} |")
        L.append("")
    g = ctx["fmr_growth"]
    ppl = {r["k"]: r["people"] for r in ctx["templates"]}
    L += [f"At the single-template threshold, 3 photos instead of 1 multiply the false-match rate "
          f"by {g[(HIGH, 'single')]:.1f} (high) and {g[(LOW, 'single')]:.1f} (low) (probes "
          f"4th-10th; the issue: 2.4 for the first model alone); at the per-k thresholds by "
          f"{g[(HIGH, 'per_k')]:.1f} and {g[(LOW, 'per_k')]:.1f}. That the rates sit somewhat above "
          "the nominal FMR in this protocol, for 1 photo as for 3, is the population: its "
          "impostor probes all come from people with >= 4 photos (the most photographed news "
          "faces) rather than from the all-pairs set the thresholds are calibrated on; the "
          "per-count method itself is checked on held-out people in the previous section. The "
          f"gains from more photos rest on few people: {ppl[3]} (k = 1, 3) and {ppl[10]} "
          "(k = 10).", ""]
    return L


def section_small_sets(ctx):
    blind = [r["set"] for r in ctx["small"] if r["no_face"] == r["images"]]
    t = ctx["thresholds"]
    L = ["## Small labelled sets", "",
         f"The fused score at the single-template thresholds (high {t[HIGH][0]:.3f}, low "
         f"{t[LOW][0]:.3f}). deepface: its PAIRS.tsv; the others: every pair of their single-face "
         "labelled images, byte-identical copies dropped. Pairs with an image in which the "
         "product finds no face are left out"
         + (f" (n/a: no face in any image of {', '.join(blind)}; the faces README warns that "
            "ORL's 92x112 crops may be below a detector's minimum face size)" if blind else "")
         + ". Too small for rates below 1e-2, they show how the product does away from LFW "
         "(grey Yale faces under side light, Big Bang Theory stills, phone photos). "
         "facenet-pytorch's five people include the look-alikes Angelina Jolie and Kate Siegel, "
         "and its aligned copies are tight 160x160 crops that score high against each other.", "",
         "| set | images (no face) | genuine pairs | TAR high | TAR low | impostor pairs | "
         "passing high | passing low |", "|---|---|---|---|---|---|---|---|"]
    for r in ctx["small"]:
        L.append(f"| {r['set']} | {r['images']} ({r['no_face']}) | {r['n_gen']:,} | "
                 f"{pct(r['tar_high'], 1)} | {pct(r['tar_low'], 1)} | {r['n_imp']:,} | "
                 f"{r['imp_high']} | {r['imp_low']} |")
    return L + [""]


def refused(q, purpose, several=True):
    """Images refused for a purpose; several=False leaves out the refusals of
    the several-faces rule, which says nothing about the quality of a face."""
    return q["n"] - q[purpose]["pass"] - (0 if several else q[purpose]["several"])


def section_quality(ctx):
    q = ctx["quality"]
    L = ["## Quality gates on lfw-dev", ""]
    if q is None:
        return L + ["**TODO**: this build has no `faceauth quality` yet. Rerun `bench/accuracy` "
                    "once it has: this section then counts the lfw-dev images each gate refuses, "
                    "for authentication and for enrollment.", ""]
    L += [f"`faceauth quality` (the server's own face choice and gates, limits from "
          f"`config/faceauth.conf`) on all {q['n']:,} lfw-dev images; each refused image is "
          "counted under the first gate that refused it. The accuracy figures above do not apply "
          "the gates (every image's largest face is embedded).", "",
          "| gate | authentication | enrollment |", "|---|---|---|"]
    for gate in QUALITY_GATES + ("error",):
        if q["auth"][gate] or q["enroll"][gate]:
            L.append(f"| {gate} | {q['auth'][gate]} | {q['enroll'][gate]} |")
    for label, several in (("**refused**", True), ("refused, several faces left out", False)):
        L.append(f"| {label} | " + " | ".join(
            f"{refused(q, p, several)} ({pct(refused(q, p, several) / q['n'])})"
            for p in ("auth", "enroll")) + " |")
    return L + ["", "\"several\" is the several-faces rule (a second face at least "
                "`second_face_ratio` the size of the largest): LFW photos of two people side by "
                "side, refused by design rather than for quality.", ""]


def section_reproduce(ctx):
    return [
        "## Reproduce and recalibrate", "",
        "```sh",
        "bench/accuracy                      # set-up if needed, Release build, all of the above",
        "bench/accuracy --bin build-x/faceauth   # measure another build of the binary",
        "```", "",
        "It needs `../shared/faces` (without it, it says so and exits 0). The first run embeds "
        "about 7,800 images (a few minutes on 2 cores); a rerun with the same binary and models "
        "takes about a minute. It rewrites this file and `accuracy-det.png`, and prints the same "
        "report. To recalibrate after any change to the models, alignment or detector: rerun it "
        "(the engine key changes, so it embeds again), then copy the `znorm_*` and `threshold_*` "
        "lines of *Precision thresholds* into `config/faceauth.conf` and the same values into "
        "the defaults in `src/config.c`. To calibrate on photos of your own, lay them out like "
        "lfw-dev (`LABELS.tsv`, and a `PAIRS.tsv` of 5 person-disjoint folds) in "
        "`DIR/lfw-dev/` and run `bench/accuracy --faces DIR`.", ""]


def report(ctx):
    """The whole of docs/accuracy.md, as lines."""
    head = ["# Accuracy", "",
            f"Generated by `bench/accuracy` on {ctx['date']} in {ctx['runtime']:.0f} s "
            f"({ctx['cores']} cores; embeddings "
            f"{'from the cache' if ctx['cached'] else 'computed in this run'}). Engine key "
            f"`{ctx['key']}`: sha256 of the `faceauth` binary and of {', '.join(MODEL_FILES)}. "
            "Do not edit by hand: rerun `bench/accuracy`.", ""]
    sections = (section_targets, section_method, section_data, section_pairs, section_all_pairs,
                section_thresholds, section_templates, section_small_sets, section_quality,
                section_reproduce)
    return head + [line for section in sections for line in section(ctx)]


# -------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", required=True, help="the faceauth binary")
    ap.add_argument("--models", required=True, help="folder with the ONNX models")
    ap.add_argument("--faces", required=True, help="../shared/faces")
    ap.add_argument("--config", required=True, help="config whose gate limits `quality` uses")
    ap.add_argument("--cache", required=True, help="cache folder (.cache/accuracy)")
    ap.add_argument("--md", required=True, help="report to write (docs/accuracy.md)")
    ap.add_argument("--png", required=True, help="DET plot to write (docs/accuracy-det.png)")
    args = ap.parse_args()
    started = time.time()
    args.faces = os.path.abspath(args.faces)  # cached path lists must not depend on the cwd

    key = engine_key(args.bin, args.models)
    cache = os.path.join(args.cache, key)
    os.makedirs(cache, exist_ok=True)
    lfw_root = os.path.join(args.faces, "lfw-dev")
    rel = [l.split("\t")[0] for l in open(os.path.join(lfw_root, "LABELS.tsv"))]
    lfw_paths = [os.path.join(lfw_root, r) for r in rel]
    cached = os.path.exists(os.path.join(cache, "lfw-dev.npz"))
    lfw = Lfw(lfw_root, embed(args.bin, args.models, lfw_paths, os.path.join(cache, "lfw-dev.npz")))

    log("all pairs: scores, fusions, 5 held-out folds")
    res = evaluate_all_pairs(lfw)
    chosen = choose_fusion(res)
    fusion = res["fusions"][chosen].rounded()
    mean, sd = impostor_stats(res["pairs"])
    pairs_cv, pairs_missing = pair_protocol(lfw, res)

    log("per-count thresholds")
    fused_all = fusion.apply(lfw.cos)
    all_thr, methods, methods_chosen = calibrate(lfw, fused_all)
    thresholds = {f: all_thr[(f, methods_chosen[f])] for f in (HIGH, LOW)}
    config_lines = fusion.config_lines() + [
        "threshold_high = " + ",".join(f"{t:.3f}" for t in thresholds[HIGH]),
        "threshold_low = " + ",".join(f"{t:.3f}" for t in thresholds[LOW])]

    log("several photos per user")
    templates = multi_template(lfw, fused_all, thresholds)
    ext = {r["k"]: r for r in templates if "4th-10th" in r["label"]}
    fmr_growth = {(f, t): ext[3][f][t][1] / ext[1][f][t][1]
                  for f in (HIGH, LOW) for t in ("single", "per_k")}
    worst = top_impostors(lfw, fused_all)
    del fused_all

    log("small labelled sets")
    small = small_sets(args.faces, args.bin, args.models, cache, fusion,
                       thresholds[HIGH][0], thresholds[LOW][0])
    log("quality gates")
    quality = quality_gates(args.bin, args.models, args.config, lfw_paths,
                            os.path.join(cache, "quality-" + sha256_file(args.config)[:12] + ".tsv"))

    curves = [(m, res["insample"][m]["det"]) for m in MODELS] + \
             [(f"fused ({chosen})", res["insample"][chosen]["det"])]
    det_plot(curves, cache, args.png)

    ctx = {"lfw": lfw, "all_pairs": res, "pairs_cv": pairs_cv, "pairs_missing": pairs_missing,
           "chosen": chosen, "fusion": fusion, "mean": mean, "sd": sd, "templates": templates,
           "methods": methods, "methods_chosen": methods_chosen, "thresholds": thresholds,
           "all_thr": all_thr, "config_lines": config_lines, "top_impostors": worst,
           "fmr_growth": fmr_growth, "small": small, "quality": quality, "key": key,
           "cached": cached, "cores": os.cpu_count(),
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "runtime": time.time() - started}
    text = "\n".join(report(ctx)) + "\n"
    with open(args.md + ".tmp", "w") as f:
        f.write(text)
    os.replace(args.md + ".tmp", args.md)
    sys.stdout.write(text)
    log(f"wrote {args.md} and {args.png} in {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
