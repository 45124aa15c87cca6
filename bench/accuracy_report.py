"""accuracy_report.py - docs/accuracy.md and its DET plot from the figures
bench/accuracy.py measured (its `ctx` dict): Markdown and gnuplot only, no
measurement, so the wording of the report changes without touching how the
numbers are made."""
import math
import os
import subprocess

import numpy as np

from accuracy_defs import (CAP, FMRS, HIGH, K_MAX, LOW, MODEL_FILES, MODELS, MODELS_MD,
                           QUALITY_GATES, TARGET_CV_ACC, TARGET_FUSED, TARGET_K3, TARGET_QUALITY)


def pct(x, digits=2):
    return "n/a" if x is None or not np.isfinite(x) else f"{100 * x:.{digits}f}%"


def sci(x):
    return f"{x:.0e}".replace("e-0", "e-")

# ------------------------------------------------------------------ the plot

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
        "- **Fused score**, as the server computes it (checked: *The server's own scores*; the "
        "small sets are scored by `faceauth score-pairs` itself): the mean over the models of "
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


def section_server(ctx):
    v, t = ctx["server"], ctx["thresholds"]
    return ["## The server's own scores (PAIRS.tsv)", "",
            f"`faceauth score-pairs --model fused` with the calibrated config scored the "
            f"{v['n']:,} pairs itself (the server's fa_face_fuse; {v['no_face']} pairs lack a "
            f"face). On the {v['compared']:,} pairs both scored, it differs from this benchmark's "
            f"fusion of the cached embeddings by at most {v['max_diff']:.2e} (the run stops above "
            "1e-3), so the all-pairs figures describe the server's scoring.", "",
            "| figure, from the server's scores | value |", "|---|---|",
            f"| accuracy, each fold's threshold chosen on the other 4 (in-sample fusion) | "
            f"{pct(v['acc'])} |",
            f"| genuine pairs at or above high's one-photo threshold {t[HIGH][0]:.3f} | "
            f"{pct(v['tar'][HIGH])} |",
            f"| genuine pairs at or above low's {t[LOW][0]:.3f} | {pct(v['tar'][LOW])} |",
            f"| impostor pairs (of {v['n_imp']:,}) at or above high / low | {v['imp'][HIGH]} / "
            f"{v['imp'][LOW]} |", ""]


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
        "with `--write-config src/config_table.c` (the engine key changes, so it embeds again): "
        "it sets the `znorm_*` and `threshold_*` values of *Precision thresholds* as the "
        "built-in defaults; then rebuild and regenerate `config/faceauth.conf` with "
        "`build/faceauth config-defaults`. `--write-config FILE.conf` sets them in a "
        "deployment's config file instead. To calibrate "
        "on photos of your own, lay them out like "
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
    sections = (section_targets, section_method, section_data, section_pairs, section_server,
                section_all_pairs,
                section_thresholds, section_templates, section_small_sets, section_quality,
                section_reproduce)
    return head + [line for section in sections for line in section(ctx)]



def write(ctx, curves, cache, md, png):
    """Draw the DET plot of curves into png, write the report to md
    (atomically) and return its text."""
    det_plot(curves, cache, png)
    text = "\n".join(report(ctx)) + "\n"
    with open(md + ".tmp", "w") as f:
        f.write(text)
    os.replace(md + ".tmp", md)
    return text
