#!/usr/bin/env python3
"""End to end, issue #10 items 10 and 13 over real HTTP with the real binary:

- orientation: a photo turned by 180 degrees without EXIF (which used to pass
  the enrollment gates and then fail every login) is refused at enroll and at
  authenticate with the fix in the message; one turned by 90 degrees is
  refused as lying on its side; turned pixels carrying the EXIF orientation
  that turns them back authenticate;
- templates encrypted at rest: the SQLite file, read directly with Python's
  sqlite3 as someone holding a copy would, holds no template as float
  vectors; template.key sits beside it with mode 0600; the database copied
  alone does not start a server, and with its key it does, and still
  authenticates (the index and the samples decrypt at start).
"""
import os
import shutil
import sqlite3
import stat
import struct
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


def exif_app1(orientation):
    """An EXIF APP1 segment holding only the orientation tag, as a phone writes it."""
    ifd = struct.pack("<H", 1) + struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0) + \
        struct.pack("<I", 0)
    payload = b"Exif\x00\x00" + b"II*\x00" + struct.pack("<I", 8) + ifd
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def write_with_exif(path, img, orientation):
    ok, enc = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 92])
    data = enc.tobytes()
    with open(path, "wb") as f:
        f.write(data[:2] + exif_app1(orientation) + data[2:])


def make_photos(args, root):
    """jane.jpg (sample3, which passes every gate), the same turned by 180 and
    by 90 degrees without EXIF, and another photo of her (the right side of
    sample1, as in the README) as pixels turned a quarter counter-clockwise
    tagged EXIF 6 ("turn clockwise to display")."""
    jane = cv2.imread(os.path.join(args.assets, "sample3.jpg"))
    again = cv2.imread(os.path.join(args.assets, "sample1.jpg"))[:, 1300:]
    h.write_jpeg(os.path.join(root, "jane.jpg"), jane)
    h.write_jpeg(os.path.join(root, "jane-upside-down.jpg"), cv2.rotate(jane, cv2.ROTATE_180))
    h.write_jpeg(os.path.join(root, "jane-on-side.jpg"),
                 cv2.rotate(jane, cv2.ROTATE_90_CLOCKWISE))
    h.write_jpeg(os.path.join(root, "jane-again.jpg"), again)
    write_with_exif(os.path.join(root, "jane-again-exif6.jpg"),
                    cv2.rotate(again, cv2.ROTATE_90_COUNTERCLOCKWISE), 6)


def auth(srv, tok, photos, name):
    return srv.api("authenticate", {"customerName": "acme", "username": "jane",
                                    "url": photos + "/" + name, "precision": "high"}, tok)


def test_orientation(t, srv, photos, tok):
    st, _, body = srv.api("user/create", {"customerName": "acme", "userName": "jane"}, tok)
    t.ok(st == 200, "user/create jane", body)
    h.check_refused(t, "enroll an upside-down photo (no EXIF)",
                    srv.api("enroll", {"customerName": "acme", "userName": "jane",
                                       "url": photos + "/jane-upside-down.jpg"}, tok),
                    ["the face is upside down", "turn the photo the right way up"])
    st, _, body = srv.api("user/details", {"customerName": "acme", "userName": "jane"}, tok)
    t.ok(st == 200 and body.get("enrollmentStatus") != "success" and
         body.get("templateCount", 0) == 0,
         "the upside-down photo enrolled nothing", body)
    h.check_refused(t, "enroll a photo turned by 90 degrees",
                    srv.api("enroll", {"customerName": "acme", "userName": "jane",
                                       "url": photos + "/jane-on-side.jpg"}, tok),
                    ["lying on its side", "turn the photo the right way up"])
    st, _, body = srv.api("enroll", {"customerName": "acme", "userName": "jane",
                                     "url": photos + "/jane.jpg"}, tok)
    t.ok(st == 200 and body.get("enrollmentStatus") == "success", "enroll jane upright", body)
    h.check_refused(t, "authenticate with an upside-down photo",
                    auth(srv, tok, photos, "jane-upside-down.jpg"),
                    ["the face is upside down", "turn the photo the right way up"])
    h.check_refused(t, "authenticate with a photo on its side",
                    auth(srv, tok, photos, "jane-on-side.jpg"), ["lying on its side"])
    # A gate's refusal (FA_EGATE), like no face (FA_ENOFACE), is a failed search, not a
    # bad request: the failure shape with no names.
    h.check_refused(t, "search with an upside-down photo",
                    srv.api("search", {"customerName": "acme",
                                       "url": photos + "/jane-upside-down.jpg"}, tok),
                    ["the face is upside down"], userNames=[])
    st, _, body = auth(srv, tok, photos, "jane-again-exif6.jpg")
    t.ok(st == 200 and body.get("authenticationStatus") == "success",
         "turned pixels with EXIF orientation 6 authenticate (EXIF applied before detection)",
         body)


def unit_norm(raw):
    """1 when raw, read as float32, is a unit vector (a template in clear)."""
    if len(raw) % 4:
        return False
    with np.errstate(all="ignore"):
        v = np.frombuffer(raw, dtype="<f4").astype(np.float64)
        n = float(np.sqrt(np.sum(v * v)))
    return abs(n - 1.0) < 1e-3


def test_sealed_file(t, data):
    db = os.path.join(data, "faceauth.db")
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    try:
        rows = con.execute("SELECT dim, embedding FROM templates").fetchall()
    finally:
        con.close()
    t.ok(len(rows) == 3, "jane holds one template per model", len(rows))
    t.ok(all(len(b) == 4 * d + 41 and b[0] == 1 for d, b in rows),
         "every stored blob is sealed: version byte, 24-byte nonce, 16-byte tag",
         [(d, len(b)) for d, b in rows])
    clear = [d for d, b in rows
             if any(unit_norm(b[o:o + 4 * d]) for o in range(0, len(b) - 4 * d + 1))]
    t.ok(not clear, "no blob, read at any offset, is a unit float vector", clear)
    key = os.path.join(data, "template.key")
    mode = stat.S_IMODE(os.stat(key).st_mode) if os.path.exists(key) else None
    t.ok(mode == 0o600 and os.path.getsize(key) == 32,
         "template.key beside the database: 32 bytes, mode 0600", oct(mode or 0))


def test_copy_alone(t, args, data, photos):
    """The database copied without its key does not start; with the key it does."""
    copy = os.path.join(os.path.dirname(data), "copy")
    os.makedirs(copy)
    shutil.copy(os.path.join(data, "faceauth.db"), copy)
    srv = h.Server(args.binary, args.models, copy, ["allow_private_urls = yes", "engines = 1"])
    try:
        srv.start()
        started = True
        srv.stop()
    except RuntimeError:
        started = False
    t.ok(not started and "template.key is missing" in srv.stderr_text(),
         "the database copied alone refuses to start, naming template.key", srv.stderr_text())
    shutil.copy(os.path.join(data, "template.key"), copy)
    srv = h.Server(args.binary, args.models, copy,
                   ["allow_private_urls = yes", "engines = 1"]).start()
    try:
        tok = h.login(srv, "acme", "s3cret-acme")
        st, _, body = auth(srv, tok, photos, "jane-again.jpg")
        t.ok(st == 200 and body.get("authenticationStatus") == "success",
             "with its key the copy starts and jane authenticates", body)
        st, _, body = srv.api("search", {"customerName": "acme", "url": photos + "/jane-again.jpg",
                                         "threshold": 3.0, "searchSpaces": None}, tok)
        names = [u.get("userName") for u in body.get("userNames", [])] \
            if isinstance(body, dict) else []
        t.ok(st == 200 and "jane" in names, "search finds her in the index loaded at start",
             body)
    finally:
        h.stop_server(t, srv, "the copy's server exits cleanly")


def main():
    args = h.parse_args()
    t = h.Tap()
    world = h.World(args, make_photos, [("acme", "s3cret-acme")])
    srv = h.Server(args.binary, args.models, world.data,
                   ["allow_private_urls = yes", "engines = 1"]).start()
    try:
        tok = h.login(srv, "acme", "s3cret-acme")
        test_orientation(t, srv, world.photos, tok)
        h.stop_server(t, srv, "server exits cleanly on SIGTERM")
        if not h.skip_in_two_nodes(t, "the SQLite file holds sealed templates; a copy without "
                                   "template.key refuses to start",
                                   "about the SQLite file and the key beside it"):
            test_sealed_file(t, world.data)
            test_copy_alone(t, args, world.data, world.photos)
    finally:
        srv.stop()
        world.close()
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
