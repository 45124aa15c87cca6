#!/usr/bin/env python3
"""End to end: the benchmark subcommands compare, embed and score-pairs of
the built binary, with and without --model (include/faceauth/cli.h): output
formats, one field per model in model order for `all`, the same numbers
whichever way a model is asked for, the fused default of compare and
score-pairs (the mean of the models' z-scores with the znorm_ of --config,
recomputed here from the `all` cosines), NA lines, exit codes, and no
sanitizer report (a non-zero exit under ASan). Also `quality`: the server's gates per
file, for authentication and enrollment, with the config's limits.

And the operator's commands: `--help`, `help CMD`, `CMD --help`,
`--version` and unknown commands (exit 2 with a hint); `user list CUSTOMER`
against the API's own answers (status/enroll/all and user/details) on a
real server's database; `models check` passing on the real models and
failing, with the reason, on a corrupted copy of a model file, on a model
whose checksum line was replaced (the reference faces catch it) and on a
tampered reference vector."""
import math
import os
import re
import shutil
import subprocess
import sys

import cv2

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

DIMS = {"fr_feature": 512, "mobilefacenet": 192, "dlib": 128}
ORDER = ["fr_feature", "mobilefacenet", "dlib"]
# Pinned z-normalisation (not the shipped one, so that a fused score computed
# with the defaults instead of --config's would show).
ZNORM = {"fr_feature": (0.02, 0.1), "mobilefacenet": (0.03, 0.2), "dlib": (0.8, 0.05)}


def znorm_config(root):
    """A config pinning ZNORM; the fused score then is known from the cosines."""
    path = os.path.join(root, "znorm.conf")
    with open(path, "w") as f:
        f.write("".join("znorm_%s = %g,%g\n" % (m, *ZNORM[m]) for m in ORDER))
    return path


def fused(cosines):
    """The mean over the three models of (cosine - mean) / sd, from ZNORM."""
    return sum((float(c) - ZNORM[m][0]) / ZNORM[m][1] for c, m in zip(cosines, ORDER)) / 3


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


def test_compare(t, args, photos, conf):
    code, out, _ = run(args, "compare", photos[0], photos[0], "--model", "fr_feature")
    t.ok(code == 0 and out.strip() == "1.0000", "compare A A --model fr_feature: 1.0000", out)
    code, out, _ = run(args, "compare", photos[0], photos[1], "--model", "all")
    fields = out.strip().split("\t")
    t.ok(code == 0 and len(fields) == 3 and all(-1 <= float(f) <= 1 for f in fields),
         "compare --model all: three cosines", out)
    code, out2, err = run(args, "compare", photos[0], photos[1], "--config", conf)
    t.ok(code == 0 and len(fields) == 3 and
         math.isclose(float(out2), fused(fields), abs_tol=2e-3),
         "compare without --model: the fused score of --config's znorm (%.4f)"
         % (fused(fields) if len(fields) == 3 else math.nan), (code, out2, err))
    code, out3, _ = run(args, "compare", photos[0], photos[1], "--config", conf,
                        "--model", "fused")
    t.ok(code == 0 and out3 == out2, "--model fused is the default", out3)
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
    code, out2, _ = run(args, "score-pairs", "--model", "fr_feature", pairs)
    t.ok(code == 0 and out2.splitlines()[0].split("\t")[0] == rows[0][0],
         "score-pairs --model fr_feature: the first column of `all`", out2)
    code, out3, err = run(args, "score-pairs", "--config", znorm_config(root), pairs)
    fz = [line.split("\t") for line in out3.splitlines()]
    t.ok(code == 0 and len(fz) == 3 and all(len(r) == 3 for r in fz) and len(rows) == 3 and
         all(math.isclose(float(fz[i][0]), fused(rows[i][:3]), abs_tol=5e-5) for i in (0, 1))
         and fz[2][0] == "NA" and fz[0][1:] == ["sample1.jpg", "sample3.jpg"],
         "score-pairs without --model: the fused score of --config's znorm, NA when a file "
         "is missing", (code, out3, err))


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


def plain(args, *argv, stdin=None):
    """The binary with exactly these arguments: (code, stdout, stderr)."""
    p = subprocess.run([args.binary, *argv], input=stdin, capture_output=True, text=True,
                       timeout=300)
    return p.returncode, p.stdout, p.stderr


COMMANDS = ["serve", "customer", "user", "models", "compare", "embed", "score-pairs", "quality",
            "config-defaults"]


def test_help(t, args):
    code, out, err = plain(args, "--help")
    t.ok(code == 0 and all("faceauth " + c in out for c in COMMANDS) and not err,
         "--help lists every command on stdout, exit 0", (code, out, err))
    code2, out2, _ = plain(args, "help")
    t.ok(code2 == 0 and out2 == out, "`help` alone is --help")
    for cmd in COMMANDS:
        code, out, err = plain(args, "help", cmd)
        code2, out2, _ = plain(args, cmd, "--help")
        t.ok(code == 0 and out.startswith("usage: faceauth " + cmd) and
             len(out.splitlines()) >= 3 and out2 == out,
             "help %s and %s --help print its usage and text" % (cmd, cmd), (code, out, err))
    code, out, err = plain(args, "--version")
    t.ok(code == 0 and re.fullmatch(r"faceauth \d+\.\d+\.\d+\n", out) is not None,
         "--version prints faceauth X.Y.Z", (code, out))
    code, out, err = plain(args, "frobnicate")
    t.ok(code == 2 and "unknown command 'frobnicate'" in err and "--help" in err and not out,
         "an unknown command: exit 2, named, with a hint", (code, err))
    code, out, err = plain(args, "help", "frobnicate")
    t.ok(code == 2 and "frobnicate" in err and "--help" in err, "help for no such command: exit 2",
         (code, err))
    code, out, err = plain(args)
    t.ok(code == 2 and "usage:" in err, "no command: the overview on stderr, exit 2", (code, err))
    code, out, err = plain(args, "user", "list")
    t.ok(code == 2 and err.startswith("usage: faceauth user list"),
         "user list without CUSTOMER: its usage, exit 2", (code, err))
    code, out, err = plain(args, "models", "check", "--bogus")
    t.ok(code == 2 and "--bogus" in err and "usage: faceauth models check" in err,
         "an unknown option: named, the command's usage, exit 2", (code, err))


# ------------------------------------------------------------- user list
USERS = ["zed", "alice", "bob", "carol"]


def make_user_photos(args, root):
    det = h.Detector(args.models)
    img = cv2.imread(os.path.join(args.assets, "sample2.jpg"))
    h.write_jpeg(os.path.join(root, "alice.jpg"), h.single_face(img, det.faces(img), 1))
    h.write_noface(os.path.join(root, "noface.jpg"))


def api_rows(srv, tok):
    """status/enroll/all (every page) plus templateCount from user/details."""
    rows, page = [], 1
    while True:
        _, _, body = srv.api("status/enroll/all", {"customerName": "acme", "statusType": "all",
                                                   "pageNumber": page, "pageCount": 2}, tok)
        rows += body["data"]
        if page >= body["totalStatusPageNumber"]:
            break
        page += 1
    out = []
    for r in rows:
        _, _, d = srv.api("user/details", {"customerName": "acme", "userName": r["userName"]},
                          tok)
        out.append([r["userName"], r["enrollmentStatus"], str(d["templateCount"]),
                    r["blacklistState"]])
    return out


def test_user_list(t, args):
    world = h.World(args, make_user_photos, [("acme", "s3cret-acme"), ("other", "s3cret-other")])
    srv = h.Server(args.binary, args.models, world.data,
                   ["allow_private_urls = yes", "engines = 1"]).start()
    try:
        tok = h.login(srv, "acme", "s3cret-acme")
        tok2 = h.login(srv, "other", "s3cret-other")
        for name in USERS:
            srv.api("user/create", {"customerName": "acme", "userName": name}, tok)
        srv.api("user/create", {"customerName": "other", "userName": "outsider"}, tok2)
        srv.api("enroll", {"customerName": "acme", "userName": "alice",
                           "url": world.photos + "/alice.jpg"}, tok)
        srv.api("enroll", {"customerName": "acme", "userName": "carol",
                           "url": world.photos + "/noface.jpg"}, tok)
        srv.api("user/blacklist", {"customerName": "acme", "userName": "bob"}, tok)
        want = api_rows(srv, tok)
        code, out, err = plain(args, "user", "list", "acme", "--data", world.data)
        lines = out.splitlines()
        header = lines[0].split() if lines else []
        got = [line.split() for line in lines[1:]]
        t.ok(code == 0 and header == ["userName", "status", "photos", "blacklisted", "created"],
             "user list: the header", (code, out, err))
        t.ok([g[:4] for g in got] == want and len(want) == len(USERS),
             "user list matches status/enroll/all + user/details, row for row, in order",
             (got, want))
        t.ok(all(len(g) == 6 and re.fullmatch(r"\d{4}-\d\d-\d\d", g[4]) and
                 re.fullmatch(r"\d\d:\d\d:\d\d", g[5]) for g in got),
             "created is yyyy-mm-dd hh:mm:ss", got)
        t.ok("outsider" not in out, "another customer's users are not listed")
        starts = [[m.start() for m in re.finditer(r"\S+", line)] for line in lines]
        t.ok(len({tuple(st[i] for i in (0, 1, 3, 4)) for st in starts}) == 1,
             "the table is aligned: columns start at the header's columns", out)
        code, out, err = plain(args, "user", "list", "nobody", "--data", world.data)
        t.ok(code == 1 and "no customer named 'nobody'" in err, "an unknown customer: exit 1",
             (code, err))
        if not h.skip_in_two_nodes(t, "a missing database is an error and is not created",
                                   "the harness gives every data folder a database"):
            empty = os.path.join(world.work, "empty")
            code, out, err = plain(args, "user", "list", "acme", "--data", empty)
            t.ok(code == 1 and "no database" in err and not os.path.exists(empty),
                 "a missing database is an error and is not created", (code, err))
    finally:
        h.stop_server(t, srv, "user-list server exits cleanly")
        world.close()


# ------------------------------------------------------------- models check
def copy_models(args, dest):
    os.makedirs(dest)
    for name in os.listdir(args.models):
        if name.endswith(".onnx") or name in ("SHA256SUMS", "CONVERTED.sha256"):
            shutil.copyfile(os.path.join(args.models, name), os.path.join(dest, name))


def models_check(args, models, *extra):
    ref = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data",
                       "model_reference.json")
    return plain(args, "models", "check", "--models", models, "--reference", ref,
                 "--assets", args.assets, *extra)


def test_models_check(t, args, work):
    code, out, err = models_check(args, args.models)
    fails = [line for line in out.splitlines() if line.startswith("FAIL")]
    t.ok(code == 0 and not fails and "all" in out.splitlines()[-1] and
         sum(line.startswith("ok ") for line in out.splitlines()) >= 20,
         "models check passes on the real models", (code, out[-1500:], err))
    t.ok(all(f in out for f in ("fr_detect.onnx: sha256", "mobilefacenet.onnx: sha256",
                                "dlib_resnet.onnx: sha256", "sample3.jpg: dlib_resnet.onnx")),
         "it hashes each model and runs each reference face")
    bad = os.path.join(work, "models-corrupt")
    copy_models(args, bad)
    path = os.path.join(bad, "mobilefacenet.onnx")
    with open(path, "r+b") as f:
        f.seek(os.path.getsize(path) // 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0xFF]))
    code, out, err = models_check(args, bad)
    t.ok(code == 1 and "mobilefacenet.onnx: sha256" in err and "expected" in err,
         "one flipped byte in mobilefacenet.onnx: exit 1 naming the file", (code, err))
    # A corruption that matters (16 kB of 12.07s mid-file) with its checksum
    # line updated to match: only loading and the reference faces can tell.
    with open(path, "r+b") as f:
        f.seek(os.path.getsize(path) // 2)
        f.write(b"\x41" * 16384)
    with open(os.path.join(bad, "CONVERTED.sha256")) as f:
        sums = f.read()
    digest = subprocess.run(["sha256sum", path], capture_output=True, text=True).stdout.split()[0]
    sums = re.sub(r"^[0-9a-f]{64}(  mobilefacenet\.onnx)$", digest + r"\1", sums, flags=re.M)
    with open(os.path.join(bad, "CONVERTED.sha256"), "w") as f:
        f.write(sums)
    code, out, err = models_check(args, bad)
    sha_ok = any(line.startswith("ok") and "mobilefacenet.onnx: sha256" in line
                 for line in out.splitlines())
    t.ok(code == 1 and sha_ok and ("mobilefacenet.onnx" in err or "loading" in err),
         "the corrupted model with a matching checksum still fails (reference faces or loading)",
         (code, out[-1500:], err))
    missing = os.path.join(work, "models-missing")
    copy_models(args, missing)
    os.remove(os.path.join(missing, "dlib_resnet.onnx"))
    code, out, err = models_check(args, missing)
    t.ok(code == 1 and "dlib_resnet.onnx" in err, "a missing model file: exit 1 naming it",
         (code, err))
    ref = h.json.load(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                        "data", "model_reference.json")))
    ref["faces"][1]["dlib_resnet-1"][5] += 0.01
    tampered = os.path.join(work, "tampered.json")
    with open(tampered, "w") as f:
        h.json.dump(ref, f)
    code, out, err = plain(args, "models", "check", "--models", args.models, "--reference",
                           tampered, "--assets", args.assets)
    t.ok(code == 1 and "sample2.jpg: dlib_resnet.onnx" in err and "limit" in err,
         "a reference vector 0.01 off: exit 1 naming the photo and model", (code, err))


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
        test_compare(t, args, photos, znorm_config(work))
        test_score_pairs(t, args, work)
        test_quality(t, args, work)
        test_help(t, args)
        test_user_list(t, args)
        test_models_check(t, args, work)
    finally:
        h.cleanup(work)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
