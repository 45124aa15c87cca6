"""accuracy.py - the numbers behind docs/accuracy.md (run through bench/accuracy).

    accuracy.py --bin FAUTH --models DIR --faces DIR --config FILE --cache DIR
                --md FILE --png FILE [--write-config PATH]

Every face is embedded by the product itself (`faceauth embed --model all`,
the same detector, alignment and networks as the server); this script only
does arithmetic on the vectors it prints. It measures each model alone and
the fused score, picks the fusion and the precision thresholds, and hands
the figures to accuracy_report.py, which prints the report as Markdown and
writes it to --md, with a DET plot drawn by gnuplot into --png. With
--write-config it sets the calibrated znorm_* and threshold_* values in that
config file, or in the defaults of src/config_table.c.

The fused score is the server's: `faceauth score-pairs --model fused`, with
a copy of --config holding the calibrated lines, scores PAIRS.tsv and the
small sets. The all-pairs protocols need tens of millions of scores, too
many to print, so they fuse the cached embeddings here (Fusion.apply); the
run stops unless those agree with the server's scores of PAIRS.tsv to 1e-3.

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
import re
import subprocess
import sys
import time

import numpy as np

import accuracy_report
from accuracy_defs import (CAP, FMRS, HIGH, K_MAX, LOW, MODEL_FILES, MODELS, N_FOLDS, SMALL_SETS,
                           DIMS)


def log(msg):
    """Progress on stderr, so stdout carries only the report."""
    print(f"[accuracy {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


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


# ------------------------------------------------- the server's scores, config

def server_scores(binary, model_dir, config, pairs, cache_file):
    """The server's decision score of each (pathA, pathB) pair, as
    `faceauth score-pairs --model fused` prints it: the config's models
    fused with its znorm_ lines by fa_face_fuse, the function authenticate
    and search call. NaN where it prints NA (no face). Cached in cache_file
    (whose name must carry the config's hash)."""
    if os.path.exists(cache_file):
        with open(cache_file) as f:
            lines = f.read().splitlines()
    else:
        tsv = cache_file + ".pairs.tsv"
        with open(tsv, "w") as f:
            f.writelines(f"{a}\t{b}\n" for a, b in pairs)
        started = time.time()
        proc = subprocess.run([binary, "score-pairs", "--model", "fused", "--config", config,
                               "--models", model_dir, tsv], capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"faceauth score-pairs failed ({proc.returncode}): "
                             f"{proc.stderr.strip()[-500:]}")
        lines = proc.stdout.splitlines()
        with open(cache_file + ".tmp", "w") as f:
            f.write(proc.stdout)
        os.replace(cache_file + ".tmp", cache_file)
        log(f"server scores of {len(pairs)} pairs in {time.time() - started:.0f} s")
    if len(lines) != len(pairs):
        raise SystemExit(f"faceauth score-pairs printed {len(lines)} lines for {len(pairs)} pairs")
    return np.array([np.nan if l.split("\t")[0] == "NA" else float(l.split("\t")[0])
                     for l in lines], np.float64)


def write_config_table(path, lines):
    """Set the defaults of the `key = value` lines in the config key table
    (src/config_table.c), in place: the string literal(s) after ZNORM("key",
    MODEL, or LIST(key, lo, hi, are replaced; every key must be found."""
    with open(path) as f:
        text = f.read()
    for line in lines:
        key, value = (x.strip() for x in line.split("=", 1))
        if key.startswith("znorm_"):
            pattern = r'(ZNORM\("%s",\s*\w+,\s*)"[^"]*"' % re.escape(key)
            literal = f'"{value}"'
        else:
            pattern = r'(LIST\(%s,\s*[^,]+,\s*[^,]+,\s*)(?:"[^"]*"\s*)+' % re.escape(key)
            vals = value.split(",")
            chunks = [",".join(vals[i:i + 8]) + ("," if i + 8 < len(vals) else "")
                      for i in range(0, len(vals), 8)]
            literal = "\n         ".join(f'"{c}"' for c in chunks)
        text, n = re.subn(pattern, lambda m: m.group(1) + literal, text, count=1)
        if n != 1:
            raise SystemExit(f"{path}: no default of {key} found to set")
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def write_config(base, lines, out):
    """The config file base with every `key = value` of lines set: a key's
    line is replaced where it stands (comments and order kept), a key the
    file lacks is appended. Written to out atomically (out may be base)."""
    values = {l.split("=", 1)[0].strip(): l for l in lines}
    with open(base) as f:
        text = f.read().splitlines()
    done = set()
    for i, line in enumerate(text):
        key = line.split("=", 1)[0].strip()
        if "=" in line and not line.lstrip().startswith("#") and key in values:
            text[i] = values[key]
            done.add(key)
    text += [values[k] for k in values if k not in done]
    with open(out + ".tmp", "w") as f:
        f.write("\n".join(text) + "\n")
    os.replace(out + ".tmp", out)


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


def server_check(lfw, fusion, scores, thresholds):
    """The server's fused scores of PAIRS.tsv against this script's
    (Fusion.apply on the embeddings, which the big all-pairs matrices use):
    they must agree, or every figure here would describe another scoring
    than the server's. Then the figures of the server's own scores: accuracy
    with each fold's best threshold chosen on the other four, and the
    genuine and impostor pairs passing the shipped thresholds."""
    cos = [np.sum(v[lfw.pair_a] * v[lfw.pair_b], axis=1) for v in lfw.emb.vecs]
    mine = fusion.apply(cos).astype(np.float64)
    both = np.isfinite(scores) & lfw.emb.ok[lfw.pair_a] & lfw.emb.ok[lfw.pair_b]
    diff = float(np.max(np.abs(mine[both] - scores[both]))) if both.any() else float("nan")
    if not diff <= 1e-3:
        raise SystemExit(f"the server's fused scores differ from the calibration's by {diff:.5f} "
                         "(PAIRS.tsv): fix the fusion here or in src/face/fusion.c first")
    s = np.where(np.isfinite(scores), scores, -np.inf)
    accs = []
    for f in range(N_FOLDS):
        test = lfw.pair_fold == f
        t = best_accuracy_threshold(s[~test], lfw.pair_same[~test])
        accs.append(np.mean((s[test] >= t) == lfw.pair_same[test]))
    same = lfw.pair_same
    return {"n": len(s), "compared": int(both.sum()), "max_diff": diff,
            "acc": float(np.mean(accs)), "no_face": int((~np.isfinite(scores)).sum()),
            "tar": {f: float(np.mean(s[same] >= thresholds[f][0])) for f in (HIGH, LOW)},
            "imp": {f: int(np.sum(s[~same] >= thresholds[f][0])) for f in (HIGH, LOW)},
            "n_imp": int((~same).sum())}


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


def small_sets(faces, binary, model_dir, cache, config, t_high, t_low):
    """TAR at the calibrated single-template thresholds and the impostor
    pairs that pass them, on the small labelled sets. deepface has its own
    PAIRS.tsv; the others: every pair of their single-face labelled images.
    Pairs with an image the product finds no face in are left out (the
    no-face count is reported beside): a refusal for no face is a property
    of the detector, not of the threshold. Scores are the server's
    (server_scores with config)."""
    rows = []
    tag = sha256_file(config)[:12]
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
        s = server_scores(binary, model_dir, config, [(paths[x], paths[y]) for x, y in zip(a, b)],
                          os.path.join(cache, f"{name}-scores-{tag}.tsv"))
        found = np.isfinite(s)
        g, i = s[same & found], s[~same & found]
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
    ap.add_argument("--write-config", metavar="PATH", action="append", default=[],
                    help="set the calibrated znorm_* and threshold_* values in this config "
                         "file, or, for a .c file, in the defaults of the config key table "
                         "(src/config_table.c); may be given more than once")
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
    calibrated = os.path.join(cache, "calibrated.conf")  # --config with these lines
    write_config(args.config, config_lines, calibrated)
    tag = sha256_file(calibrated)[:12]
    log("the server's fused scores of PAIRS.tsv")
    server = server_check(lfw, fusion, server_scores(
        args.bin, args.models, calibrated,
        [(lfw_paths[a], lfw_paths[b]) for a, b in zip(lfw.pair_a, lfw.pair_b)],
        os.path.join(cache, f"pairs-scores-{tag}.tsv")), thresholds)

    log("several photos per user")
    templates = multi_template(lfw, fused_all, thresholds)
    ext = {r["k"]: r for r in templates if "4th-10th" in r["label"]}
    fmr_growth = {(f, t): ext[3][f][t][1] / ext[1][f][t][1]
                  for f in (HIGH, LOW) for t in ("single", "per_k")}
    worst = top_impostors(lfw, fused_all)
    del fused_all

    log("small labelled sets")
    small = small_sets(args.faces, args.bin, args.models, cache, calibrated,
                       thresholds[HIGH][0], thresholds[LOW][0])
    log("quality gates")
    quality = quality_gates(args.bin, args.models, args.config, lfw_paths,
                            os.path.join(cache, "quality-" + sha256_file(args.config)[:12] + ".tsv"))

    curves = [(m, res["insample"][m]["det"]) for m in MODELS] + \
             [(f"fused ({chosen})", res["insample"][chosen]["det"])]

    ctx = {"lfw": lfw, "all_pairs": res, "pairs_cv": pairs_cv, "pairs_missing": pairs_missing,
           "chosen": chosen, "fusion": fusion, "mean": mean, "sd": sd, "templates": templates,
           "methods": methods, "methods_chosen": methods_chosen, "thresholds": thresholds,
           "all_thr": all_thr, "config_lines": config_lines, "top_impostors": worst,
           "fmr_growth": fmr_growth, "small": small, "server": server, "quality": quality, "key": key,
           "cached": cached, "cores": os.cpu_count(),
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "runtime": time.time() - started}
    sys.stdout.write(accuracy_report.write(ctx, curves, cache, args.md, args.png))
    log(f"wrote {args.md} and {args.png} in {time.time() - started:.0f} s")
    for path in args.write_config:
        if path.endswith(".c"):
            write_config_table(path, config_lines)
        else:
            write_config(path, config_lines, path)
        log(f"set {', '.join(l.split(' =')[0] for l in config_lines)} in {path}")


if __name__ == "__main__":
    main()
