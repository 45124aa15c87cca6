#!/usr/bin/env python3
"""End to end: login -> user/create -> enroll -> authenticate over real HTTP,
the seed's exact shapes, stored images behind credentials, and every bad
input of the core issue answered with the right status and a message naming
the problem, without crashing or hanging the server."""
import base64
import os
import sys
import time
import urllib.parse

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

SEED_SUCCESS_KEYS = {"userName", "faceOriginal", "faceThumbnail", "authenticationStatus",
                     "message", "status"}
SEED_FAILURE_KEYS = {"userName", "faceOriginal", "authenticationStatus", "message", "status"}
# Every authenticate failure carries these (issue #13): the seed's and faceThumbnail.
FAILURE_KEYS = SEED_FAILURE_KEYS | {"faceThumbnail"}


def check_failure_shape(t, name, body, words):
    """An authenticate failure: {"error": {...}} alone, every FAILURE_KEYS field
    a string, status "422", the words in the message, no matchScore."""
    err = body.get("error", {}) if isinstance(body, dict) else {}
    t.ok(isinstance(body, dict) and list(body) == ["error"] and FAILURE_KEYS <= set(err) and
         all(isinstance(err[k], str) for k in FAILURE_KEYS) and
         err.get("authenticationStatus") == "failure" and err.get("status") == "422" and
         "matchScore" not in err and all(w in err.get("message", "") for w in words),
         name + ": every failure field (userName, faceOriginal, faceThumbnail, ...)", body)


def make_photos(args, root):
    """alice.jpg / alice-aug.jpg (same face), bob.jpg (another person), and
    no-face, huge and non-image files, all in root."""
    det = h.Detector(args.models)
    img_a = cv2.imread(os.path.join(args.assets, "sample2.jpg"))
    img_b = cv2.imread(os.path.join(args.assets, "sample4.jpg"))
    faces_a, faces_b = det.faces(img_a), det.faces(img_b)
    # sample2's largest face is a profile (the pose gate refuses it): its second.
    alice = h.single_face(img_a, faces_a, 1)
    bob = h.single_face(img_b, faces_b, 0)
    h.write_jpeg(os.path.join(root, "alice.jpg"), alice)
    h.write_jpeg(os.path.join(root, "alice-aug.jpg"), h.augment(alice))
    h.write_jpeg(os.path.join(root, "bob.jpg"), bob)
    h.write_noface(os.path.join(root, "noface.jpg"))
    h.write_jpeg(os.path.join(root, "huge.jpg"), np.full((2100, 2100, 3), 200, np.uint8))
    with open(os.path.join(root, "corrupt.jpg"), "wb") as f:
        f.write(b"\xff\xd8\xff\xe0" + os.urandom(2000))
    return alice


def test_happy_path(t, srv, photos, ctx):
    st, _, body = srv.api("login", {"customerName": "acme", "password": "s3cret-acme"})
    t.ok(st == 200 and body.get("accessToken") and body.get("status") == "200 OK",
         "login answers an access token", body)
    tok = ctx["token"] = body.get("accessToken")
    st, _, body = srv.api("user/create", {"customerName": "acme", "userName": "alice",
                                          "fullName": "Alice A", "emailId": "a@example.com",
                                          "phoneNumber": "5550100"}, tok)
    url = body.get("enrollmentUrl", "") if isinstance(body, dict) else ""
    t.ok(st == 200 and "/enroll/" in url and len(url.rsplit("/", 1)[1]) >= 40,
         "user/create gives an enrollmentUrl with an unguessable token", body)
    st, _, body = srv.api("enroll", {"customerName": "acme", "url": photos + "/alice.jpg",
                                     "enrolledUrl": url}, tok)
    t.ok(st == 200 and body.get("enrollmentStatus") == "success" and
         body.get("userName") == "alice" and body.get("status") == "200 OK" and
         body.get("faceOriginal", "").startswith("http") and
         body.get("faceThumbnail", "").startswith("http"),
         "enroll by enrolledUrl succeeds with image links", body)
    st, _, body = srv.api("authenticate", {"customerName": "acme", "username": "alice",
                                           "url": photos + "/alice-aug.jpg",
                                           "precision": "high", "useSampleForLearning": "no"}, tok)
    t.ok(st == 200 and SEED_SUCCESS_KEYS <= set(body) and
         body["authenticationStatus"] == "success" and body["status"] == "200 OK" and
         body["message"] == "User is successfully authenticated" and body["userName"] == "alice",
         "authenticate the same face (rescaled, brighter, re-encoded): seed success shape", body)
    ctx["thumb"] = body.get("faceThumbnail", "")
    st, _, body = srv.api("authenticate", {"customerName": "acme", "userName": "alice",
                                           "url": photos + "/bob.jpg", "precision": "low"}, tok)
    err = body.get("error", {}) if isinstance(body, dict) else {}
    t.ok(st == 400 and list(body) == ["error"] and SEED_FAILURE_KEYS <= set(err) and
         err["authenticationStatus"] == "failure" and err["status"] == "422" and
         err["message"] == "User is not authenticated" and "matchScore" not in err,
         "authenticate another person: seed failure shape, HTTP 400, status 422", body)
    check_failure_shape(t, "authenticate another person", body, [])
    t.ok(err.get("faceOriginal", "").startswith("http") and
         err.get("faceThumbnail", "").startswith("http"),
         "... linking the stored probe and its thumbnail", err)


def test_stored_images(t, srv, ctx):
    signed = urllib.parse.urlparse(ctx["thumb"])
    bare = signed.path
    st, resp, body = srv.request("GET", bare, token=ctx["token"])
    t.ok(st == 200 and resp.getheader("Content-Type") == "image/jpeg" and body[:2] == b"\xff\xd8",
         "faceThumbnail with the owner's token: 200 image/jpeg", (st, body[:80]))
    st, _, body = srv.request("GET", bare)
    t.ok(st == 401, "faceThumbnail without credentials: 401", (st, body))
    st, _, body = srv.request("GET", bare, token=ctx["other_token"])
    t.ok(st == 404, "faceThumbnail with another customer's token: 404", (st, body))
    st, resp, _ = srv.request("GET", signed.path + "?" + signed.query)
    t.ok(st == 200 and resp.getheader("Cache-Control", "").startswith("no-store"),
         "the signed link alone serves the image, not cached", st)
    tampered = signed.query[:-1] + ("0" if signed.query[-1] != "0" else "1")
    st, _, _ = srv.request("GET", signed.path + "?" + tampered)
    t.ok(st == 401, "a tampered signature: 401", st)


def test_bad_requests(t, srv, photos, ctx):
    tok = ctx["token"]
    st, _, body = srv.request("POST", "/api/v1/basic/authenticate", raw=b"{not json",
                              token=tok)
    h.check_error(t, "malformed JSON", (st, None, body), 400, ["json"])
    h.check_error(t, "JSON that is not an object",
                  srv.request("POST", "/api/v1/basic/enroll", raw=b"[1,2]", token=tok), 400,
                  ["object"])
    base = {"customerName": "acme", "userName": "alice"}
    h.check_error(t, "missing url", srv.api("authenticate", base, tok), 400, ["url", "required"])
    h.check_error(t, "url of the wrong type", srv.api("authenticate", dict(base, url=123), tok),
                  400, ["url", "string"])
    h.check_error(t, "precision not high/low",
                  srv.api("authenticate", dict(base, url=photos + "/alice.jpg", precision="max"),
                          tok), 400, ["precision"])
    h.check_error(t, "no token", srv.api("authenticate", dict(base, url=photos + "/alice.jpg")),
                  401, ["token"])
    h.check_error(t, "a made-up token",
                  srv.api("authenticate", dict(base, url=photos + "/alice.jpg"), "x" * 43), 401, [])
    h.check_error(t, "another customer's token",
                  srv.api("authenticate", dict(base, url=photos + "/alice.jpg"),
                          ctx["other_token"]), 401, [])
    h.check_error(t, "unknown user",
                  srv.api("authenticate", dict(base, userName="nobody", url=photos + "/alice.jpg"),
                          tok), 404, ["nobody"])
    h.check_error(t, "wrong password",
                  srv.api("login", {"customerName": "acme", "password": "nope"}), 401, [])
    h.check_error(t, "unknown route", srv.api("no/such/thing", base, tok), 404, [])
    h.check_error(t, "wrong method", srv.request("GET", "/api/v1/basic/authenticate"), 405,
                  ["method"])
    h.check_error(t, "duplicate userName",
                  srv.api("user/create", {"customerName": "acme", "userName": "alice"}, tok), 409,
                  ["alice"])
    h.check_error(t, "userName with a space",
                  srv.api("user/create", {"customerName": "acme", "userName": "a b"}, tok), 400,
                  ["userName"])


def test_bad_images(t, srv, photos, ctx):
    tok = ctx["token"]
    auth = {"customerName": "acme", "userName": "alice"}
    h.check_error(t, "URL answering 404",
                  srv.api("authenticate", dict(auth, url=photos + "/gone.jpg"), tok), 400,
                  ["url", "404"])
    h.check_error(t, "URL that is not an image",
                  srv.api("authenticate", dict(auth, url=photos + "/text"), tok), 400,
                  ["not an image"])
    h.check_error(t, "corrupt image",
                  srv.api("authenticate", dict(auth, url=photos + "/corrupt.jpg"), tok), 400,
                  ["url", "decoded"])
    h.check_error(t, "image over the pixel cap",
                  srv.api("authenticate", dict(auth, url=photos + "/huge.jpg"), tok), 400,
                  ["pixels"])
    h.check_error(t, "unsupported scheme",
                  srv.api("authenticate", dict(auth, url="ftp://x/y.jpg"), tok), 400, ["url"])
    started = time.time()
    got = srv.api("authenticate", dict(auth, url=photos + "/slow"), tok)
    h.check_error(t, "slow URL", got, 400, ["timed out"])
    t.ok(time.time() - started < 5, "slow URL gives up at the configured 2 s",
         time.time() - started)
    st, _, body = srv.api("authenticate", dict(auth, url=photos + "/noface.jpg"), tok)
    err = body.get("error", {}) if isinstance(body, dict) else {}
    t.ok(st == 400 and err.get("status") == "422" and "no face" in err.get("message", "") and
         err.get("authenticationStatus") == "failure",
         "authenticate with a photo without a face: failure naming it", body)
    check_failure_shape(t, "authenticate without a face", body, ["no face"])
    t.ok(err.get("faceOriginal", "").startswith("http") and err.get("faceThumbnail") == "",
         "... the probe is linked, no thumbnail (no face to cut)", err)
    h.check_error(t, "body over the cap",
                  srv.post_headers_only("/api/v1/basic/authenticate", 5 << 20, tok), 413, ["body"])
    h.check_error(t, "body over the cap, sent in full",
                  srv.api("authenticate",
                          dict(auth, url="data:image/jpeg;base64," + "A" * (5 << 20)), tok), 413,
                  ["body"])


def test_enroll_rules(t, srv, photos, ctx):
    tok = ctx["token"]
    st, _, body = srv.api("enroll", {"customerName": "acme", "url": photos + "/alice.jpg",
                                     "userName": "alice"}, tok)
    err = body.get("error", {}) if isinstance(body, dict) else {}
    t.ok(st == 400 and err.get("status") == "422" and "already registered" in err.get("message"),
         "enroll twice: already registered", body)
    srv.api("user/create", {"customerName": "acme", "userName": "carol"}, tok)
    st, _, body = srv.api("enroll", {"customerName": "acme", "url": photos + "/noface.jpg",
                                     "userName": "carol"}, tok)
    err = body.get("error", {}) if isinstance(body, dict) else {}
    t.ok(st == 400 and err.get("enrollmentStatus") == "failure" and
         "no face" in err.get("message", ""), "enroll an image without a face: failure", body)
    st, _, body = srv.api("authenticate", {"customerName": "acme", "userName": "carol",
                                           "url": photos + "/alice.jpg"}, tok)
    err = body.get("error", {}) if isinstance(body, dict) else {}
    t.ok(st == 400 and "no enrolled face" in err.get("message", ""),
         "authenticate a user never enrolled: failure saying so", body)
    check_failure_shape(t, "authenticate a user never enrolled", body, ["no enrolled face"])
    t.ok(err.get("faceOriginal") == "" and err.get("faceThumbnail") == "",
         "... decided before the photo was fetched: both links empty", err)
    with open(os.path.join(ctx["photo_dir"], "bob.jpg"), "rb") as f:
        data_uri = "data:image/jpeg;base64," + base64.b64encode(f.read()).decode()
    st, _, body = srv.api("enroll", {"customerName": "acme", "url": data_uri,
                                     "userName": "carol"}, tok)
    t.ok(st == 200 and body.get("enrollmentStatus") == "success",
         "a later good enroll (data: URI) makes a failed user success", body)
    st, _, body = srv.api("authenticate", {"customerName": "acme", "userName": "carol",
                                           "url": photos + "/bob.jpg"}, tok)
    t.ok(st == 200 and body.get("authenticationStatus") == "success",
         "carol authenticates with her own face", body)


def test_second_server(t, args, data, photos):
    """Short-lived tokens and the private-address guard switched on."""
    srv = h.Server(args.binary, args.models, data,
                   ["token_ttl_s = 1", "allow_private_urls = no", "engines = 1"]).start()
    try:
        # A 1 s token lives until the next whole second: on a loaded machine
        # the request may come too late, so log in again (at most 3 times).
        for _ in range(3):
            tok = h.login(srv, "acme", "s3cret-acme")
            got = srv.api("authenticate", {"customerName": "acme", "userName": "alice",
                                            "url": photos.replace("127.0.0.1", "localhost") +
                                            "/alice.jpg"}, tok)
            if got[0] != 401:
                break
        h.check_error(t, "private address refused when the switch is off", got, 400,
                      ["url: the image host is unknown or not allowed"])
        t.ok("127.0.0.1" not in h.err_of(got[2]).get("message", ""),
             "the refusal does not name the resolved address", got[2])
        t.ok("localhost" in srv.stderr_text() and
             ("127.0.0.1" in srv.stderr_text() or "::1" in srv.stderr_text()),
             "the operator log keeps the host and the address refused", srv.stderr_text()[-500:])
        time.sleep(2.2)
        h.check_error(t, "expired token",
                      srv.api("authenticate", {"customerName": "acme", "userName": "alice",
                                               "url": photos + "/alice.jpg"}, tok), 401,
                      ["expired"])
    finally:
        h.stop_server(t, srv, "second server exits cleanly on SIGTERM")


def main():
    args = h.parse_args()
    t = h.Tap()
    world = h.World(args, make_photos, [("acme", "s3cret-acme"), ("globex", "s3cret-globex")])
    photos, data = world.photos, world.data
    srv = h.Server(args.binary, args.models, data,
                   ["allow_private_urls = yes", "max_pixels = 4000000", "fetch_timeout_ms = 2000",
                    "max_body_bytes = 4194304", "engines = 2"]).start()
    ctx = {"photo_dir": world.photo_dir}
    try:
        ctx["other_token"] = h.login(srv, "globex", "s3cret-globex")
        test_happy_path(t, srv, photos, ctx)
        test_stored_images(t, srv, ctx)
        test_bad_requests(t, srv, photos, ctx)
        test_bad_images(t, srv, photos, ctx)
        test_enroll_rules(t, srv, photos, ctx)
        t.ok(srv.alive() and srv.request("GET", "/healthz")[0] == 200,
             "the server is still up after every bad input")
        test_second_server(t, args, data, photos)
    finally:
        h.stop_server(t, srv, "server exits cleanly on SIGTERM (no sanitizer report)")
        world.close()
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
