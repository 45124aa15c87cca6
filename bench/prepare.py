"""prepare.py - the photos, users and request bodies of bench/run.

    prepare.py crops  --models DIR --assets DIR --out DIR [--users N]
    prepare.py enroll --port P --dir DIR --static URL --customer NAME --password P

crops: every face of the six demo photos as a single-face crop (the other
faces blacked out, as tests/e2e/harness.py makes them): enroll-NN.jpg is the
crop, probe-NN.jpg the same face re-encoded (60% scale, brighter, JPEG
quality 60), so every probe is a genuine match. Writes probes.txt (the probe
paths, for bench_pipeline) in the same folder, and phone-NN.jpg (listed in
phone.txt): three crops enlarged to a phone camera's 3024x4032.

enroll: against a running server, log in, create and enroll user bench-NN
with each crop (a data: URI), then authenticate each probe once and keep the
users whose probe matches (a probe that does not match would be a 400 in the
load runs, which measure the success path). Writes bodies-url.txt and
bodies-data.txt (one authenticate body per kept user: probe as an http URL
on the static server, or inline as a data: URI), bodies-search.txt (a search
body per kept user, probe as a data: URI), probes-used.txt (the probe
paths of the kept users, for bench_pipeline) and token. Prints a JSON line.

Runs with /usr/bin/python3 (cv2, numpy), like the end-to-end tests.
"""
import argparse
import base64
import http.client
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))

import cv2  # noqa: E402
import harness  # noqa: E402


def make_crops(args):
    det = harness.Detector(args.models)
    os.makedirs(args.out, exist_ok=True)
    probes = []
    for k in range(1, 7):
        img = cv2.imread(os.path.join(args.assets, "sample%d.jpg" % k))
        faces = det.faces(img)
        for i in range(len(faces)):
            n = len(probes)
            if n >= args.users:
                break
            crop = harness.single_face(img, faces, i)
            harness.write_jpeg(os.path.join(args.out, "enroll-%02d.jpg" % n), crop)
            probe = os.path.join(args.out, "probe-%02d.jpg" % n)
            harness.write_jpeg(probe, harness.augment(crop), quality=90)
            probes.append(probe)
    with open(os.path.join(args.out, "probes.txt"), "w") as f:
        f.write("\n".join(probes) + "\n")
    phones = make_phone_photos(args.out, [0, 6, 18])
    print(json.dumps({"crops": len(probes), "phone": len(phones)}))


def make_phone_photos(out, which):
    """Phone-camera-sized selfies (3024x4032, 12 MP) from a few crops: the
    size most real probes arrive at. Enlarged, so the detail is not real,
    but decoding costs what a photo of that size costs."""
    made = []
    for n in which:
        path = os.path.join(out, "enroll-%02d.jpg" % n)
        if not os.path.exists(path):
            continue
        img = cv2.imread(path)
        h, w = img.shape[:2]
        if h * 3 > w * 4:  # too tall for 3:4: trim top and bottom
            keep = w * 4 // 3
            img = img[(h - keep) // 2:(h - keep) // 2 + keep]
        else:  # too wide: trim the sides
            keep = h * 3 // 4
            img = img[:, (w - keep) // 2:(w - keep) // 2 + keep]
        big = cv2.resize(img, (3024, 4032), interpolation=cv2.INTER_CUBIC)
        made.append(os.path.join(out, "phone-%02d.jpg" % n))
        harness.write_jpeg(made[-1], big)
    with open(os.path.join(out, "phone.txt"), "w") as f:
        f.write("\n".join(made) + "\n")
    return made


def call(port, endpoint, body, token=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    hdrs = {"Content-Type": "application/json"}
    if token:
        hdrs["Authorization"] = token
    try:
        conn.request("POST", "/api/v1/basic/" + endpoint, body=json.dumps(body), headers=hdrs)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"{}")
    finally:
        conn.close()


def data_uri(path):
    with open(path, "rb") as f:
        return "data:image/jpeg;base64," + base64.b64encode(f.read()).decode()


def auth_body(customer, user, url):
    return {"customerName": customer, "username": user, "precision": "high",
            "useSampleForLearning": "no", "url": url}


def enroll_one(args, token, n):
    """Create and enroll bench-NN; True when its probe then authenticates."""
    user = "bench-%02d" % n
    cust = args.customer
    st, out = call(args.port, "user/create", {"customerName": cust, "userName": user}, token)
    if st != 200:
        raise RuntimeError("user/create %s: %d %s" % (user, st, out))
    st, out = call(args.port, "enroll", {"customerName": cust, "userName": user,
                                         "url": data_uri(os.path.join(args.dir, "enroll-%02d.jpg" % n))},
                   token)
    if st != 200:
        return False, "enroll %s: %d %s" % (user, st, message(out))
    probe = os.path.join(args.dir, "probe-%02d.jpg" % n)
    st, out = call(args.port, "authenticate", auth_body(cust, user, data_uri(probe)), token)
    return st == 200, "authenticate %s: %d %s" % (user, st, message(out))


def message(answer):
    """The message of an answer, success or error shape."""
    return str(answer.get("error", answer).get("message", ""))[:160]


def enroll(args):
    st, out = call(args.port, "login", {"customerName": args.customer, "password": args.password})
    if st != 200:
        raise RuntimeError("login: %d %s" % (st, out))
    token = out["accessToken"]
    kept, dropped = [], []
    with open(os.path.join(args.dir, "probes.txt")) as f:
        n_crops = len([line for line in f if line.strip()])
    for n in range(n_crops):
        ok, why = enroll_one(args, token, n)
        (kept if ok else dropped).append(n if ok else why)
    with open(os.path.join(args.dir, "bodies-url.txt"), "w") as fu, \
            open(os.path.join(args.dir, "bodies-data.txt"), "w") as fd, \
            open(os.path.join(args.dir, "bodies-search.txt"), "w") as fs, \
            open(os.path.join(args.dir, "probes-used.txt"), "w") as fp:
        for n in kept:
            user, name = "bench-%02d" % n, "probe-%02d.jpg" % n
            path = os.path.join(args.dir, name)
            fu.write(json.dumps(auth_body(args.customer, user, args.static + "/" + name)) + "\n")
            fd.write(json.dumps(auth_body(args.customer, user, data_uri(path))) + "\n")
            fs.write(json.dumps({"customerName": args.customer, "url": data_uri(path)}) + "\n")
            fp.write(path + "\n")
    with open(os.path.join(args.dir, "token"), "w") as f:
        f.write(token)
    print(json.dumps({"users": len(kept), "dropped": dropped}))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("crops")
    c.add_argument("--models", required=True)
    c.add_argument("--assets", required=True)
    c.add_argument("--out", required=True)
    c.add_argument("--users", type=int, default=22)
    e = sub.add_parser("enroll")
    e.add_argument("--port", type=int, required=True)
    e.add_argument("--dir", required=True)
    e.add_argument("--static", required=True)
    e.add_argument("--customer", required=True)
    e.add_argument("--password", required=True)
    args = p.parse_args()
    if args.cmd == "crops":
        make_crops(args)
    else:
        enroll(args)


if __name__ == "__main__":
    main()
