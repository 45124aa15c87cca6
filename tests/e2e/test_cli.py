#!/usr/bin/env python3
"""End to end: the benchmark subcommands compare, embed and score-pairs of
the built binary, with and without --model (include/faceauth/cli.h): output
formats, one field per model in model order for `all`, the same numbers
whichever way a model is asked for, NA lines, exit codes, and no sanitizer
report (a non-zero exit under ASan). Also `quality`: the server's gates per
file, for authentication and enrollment, with the config's limits."""
import math
import os
import subprocess
import sys

import cv2

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

DIMS = {"fr_feature": 512, "mobilefacenet": 192, "dlib": 128}
ORDER = ["fr_feature", "mobilefacenet", "dlib"]


def run(args, *argv, stdin=None):
    p = subprocess.run([args.binary, *argv, "--models", args.models], input=stdin,
                       capture_output=True, text=True, timeout=300)
    return p.returncode, p.stdout, p.stderr


def vectors(line):
    """The vector fields of one `path<TAB>ok<TAB>...` line as float lists."""
    fields = line.split("\t")
    return fields[:2], [[float(v) for v in f.split(",")] for f in fields[2:]]


def test_embed(t, args, photos):
    code, out, err = run(args, "embed", *photos)
    lines = out.splitlines()
    ok = code == 0 and len(lines) == len(photos)
    heads, vecs = vectors(lines[0]) if ok else ([], [])
    t.ok(ok and heads == [photos[0], "ok"] and len(vecs) == 1 and len(vecs[0]) == 512,
         "embed without --model: path, ok, 512 values (unchanged format)", (code, err))
    single = {}
    for name in ORDER:
        code, out, err = run(args, "embed", "--model", name, photos[0])
        _, v = vectors(out.strip()) if code == 0 else (None, [[]])
        single[name] = v[0]
        t.ok(code == 0 and len(v) == 1 and len(v[0]) == DIMS[name] and
             abs(sum(x * x for x in v[0]) - 1) < 1e-4,
             "embed --model %s: one unit vector of %d values" % (name, DIMS[name]), (code, err))
    code, out, err = run(args, "embed", "--model", "all", "-", stdin=photos[0] + "\n\n" + "/no/such.jpg\n")
    lines = out.splitlines()
    _, v = vectors(lines[0]) if code == 0 and lines else (None, [])
    t.ok(len(v) == 3 and all(len(a) == DIMS[n] for a, n in zip(v, ORDER)),
         "embed --model all from stdin: three vector fields, 512, 192, 128", (code, out[:200], err))
    t.ok(len(v) == 3 and all(max(abs(a - b) for a, b in zip(v[i], single[n])) < 1e-5
                             for i, n in enumerate(ORDER)),
         "embed --model all gives each model's own numbers")
    t.ok(len(lines) == 2 and lines[1].startswith("/no/such.jpg\terror:"),
         "a missing file is an error line, not an exit code", lines)


def test_compare(t, args, photos):
    code, out, _ = run(args, "compare", photos[0], photos[0])
    t.ok(code == 0 and out.strip() == "1.0000", "compare A A: 1.0000", out)
    code, out, _ = run(args, "compare", photos[0], photos[1], "--model", "all")
    fields = out.strip().split("\t")
    t.ok(code == 0 and len(fields) == 3 and all(-1 <= float(f) <= 1 for f in fields),
         "compare --model all: three cosines", out)
    code, _, err = run(args, "compare", photos[0], photos[1], "--model", "nope")
    t.ok(code == 1 and "unknown model" in err, "an unknown --model is a usage error", err)


def test_score_pairs(t, args, root):
    pairs = os.path.join(root, "pairs.tsv")
    with open(pairs, "w", encoding="utf-8") as f:
        f.write("sample1.jpg\tsample3.jpg\t1\nsample2.jpg\tsample4.jpg\t0\nsample1.jpg\tnone.jpg\n")
    code, out, err = run(args, "score-pairs", "--model", "all", pairs)
    rows = [line.split("\t") for line in out.splitlines()]
    t.ok(code == 0 and len(rows) == 3 and all(len(r) == 5 for r in rows) and
         rows[0][3:] == ["sample1.jpg", "sample3.jpg"] and rows[2][:3] == ["NA"] * 3,
         "score-pairs --model all: s1 s2 s3 pathA pathB, NA NA NA when a file is missing",
         (code, out, err))
    code, out1, _ = run(args, "score-pairs", "--model", "mobilefacenet", pairs)
    one = [line.split("\t") for line in out1.splitlines()]
    t.ok(code == 0 and len(one) == 3 and all(len(r) == 3 for r in one) and
         math.isclose(float(one[0][0]), float(rows[0][1]), abs_tol=1e-6),
         "score-pairs --model mobilefacenet: the second column of `all`", out1)
    code, out2, _ = run(args, "score-pairs", pairs)
    t.ok(code == 0 and out2.splitlines()[0].split("\t")[0] == rows[0][0],
         "score-pairs without --model: fr_feature, the first column of `all`", out2)


def test_quality(t, args, root):
    face = os.path.join(root, "face.jpg")
    blurry = os.path.join(root, "blurry.jpg")
    img = cv2.imread(os.path.join(args.assets, "sample3.jpg"))
    cv2.imwrite(face, img[0:700, 200:1000])
    cv2.imwrite(blurry, cv2.GaussianBlur(img[0:700, 200:1000], (0, 0), 10))
    code, out, err = run(args, "quality", face, blurry, os.path.join(root, "sample1.jpg"),
                         "/no/such.jpg")
    rows = [line.split("\t") for line in out.splitlines()]
    keys = ["eye", "sharp", "bright", "yaw", "pitch", "roll", "live"]
    t.ok(code == 0 and len(rows) == 4 and rows[0][:3] == [face, "pass", "pass"] and
         [f.split("=")[0] for f in rows[0][3:]] == keys and
         all(float(f.split("=")[1]) == float(f.split("=")[1]) for f in rows[0][3:]),
         "quality: path, auth verdict, enrollment verdict, 7 measures", (code, out, err))
    t.ok(len(rows) > 1 and rows[1][1:3] == ["blurry", "blurry"],
         "quality: a blurred copy is refused by the blur gate", rows[1:2])
    t.ok(len(rows) > 2 and rows[2][1:4] == ["several", "several", "eye=NA"],
         "quality: a group photo is refused as several faces, no measures", rows[2:3])
    t.ok(len(rows) > 3 and rows[3][0] == "/no/such.jpg" and rows[3][1].startswith("error:"),
         "quality: a missing file is an error line", rows[3:])
    conf = os.path.join(root, "strict.conf")
    with open(conf, "w") as f:
        f.write("min_sharpness_auth = 100000\nmin_sharpness_enroll = 100000\n")
    code, out, err = run(args, "quality", "--config", conf, face)
    t.ok(code == 0 and out.split("\t")[1:3] == ["blurry", "blurry"],
         "quality applies the limits of --config", (code, out, err))


def main():
    args = h.parse_args()
    t = h.Tap()
    work = h.temp_dir()
    try:
        for i in range(1, 5):
            os.symlink(os.path.join(os.path.abspath(args.assets), "sample%d.jpg" % i),
                       os.path.join(work, "sample%d.jpg" % i))
        photos = [os.path.join(work, "sample%d.jpg" % i) for i in (1, 2)]
        test_embed(t, args, photos)
        test_compare(t, args, photos)
        test_score_pairs(t, args, work)
        test_quality(t, args, work)
    finally:
        h.cleanup(work)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
