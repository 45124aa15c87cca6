#!/usr/bin/env python3
"""A full disk and a read-only image folder (issue #10, item 6), for real:
the data folder is a small tmpfs mounted for this test (root only; without
root the test is skipped and says so).

- the disk filled up: /readyz 503 with the reason, enroll 507 "disk full"
  with nothing stored, user/delete still works (it may give up the disk
  reserve to do so) and removes the user's files;
- space freed: /readyz 200 again, the reserve is written back, enroll works;
- images/ remounted read-only: /readyz 503 "read-only", enroll 503 naming it.
"""
import errno
import os
import subprocess
import sys
import time

import cv2

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

TMPFS_MB = 24
RESERVE_MB = 2
MIN_FREE_MB = 4


def make_photos(args, root):
    det = h.Detector(args.models)
    img = cv2.imread(os.path.join(args.assets, "sample2.jpg"))
    h.write_jpeg(os.path.join(root, "alice.jpg"), h.single_face(img, det.faces(img), 1))
    img = cv2.imread(os.path.join(args.assets, "sample4.jpg"))
    h.write_jpeg(os.path.join(root, "bob.jpg"), h.single_face(img, det.faces(img), 0))


def run(*cmd):
    return subprocess.run(list(cmd), capture_output=True, text=True)


def fill(path):
    """Write zeros into path until the file system has no room left."""
    chunk = b"\0" * (256 * 1024)
    with open(path, "wb") as f:
        try:
            while True:
                f.write(chunk)
                f.flush()
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
    # Small writes too, so not even a page is left.
    with open(path + ".tail", "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 512)
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise


def image_files(data):
    out = []
    for folder, _, files in os.walk(os.path.join(data, "images")):
        out += [os.path.join(folder, name) for name in files]
    return sorted(out)


def wait_for(cond, secs=10):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.2)
    return cond()


def readyz(srv):
    return srv.request("GET", "/readyz")


def test_full(t, srv, data, photos, tok):
    api = lambda ep, body: srv.api(ep, dict(body, customerName="acme"), tok)  # noqa: E731
    st, _, body = readyz(srv)
    t.ok(st == 200 and body.get("disk") is True, "ready on an empty tmpfs", body)
    t.ok(os.path.getsize(os.path.join(data, "reserve.space")) == RESERVE_MB << 20,
         "the disk reserve is in place")
    for name in ("alice", "bob", "carol"):
        api("user/create", {"userName": name})
    st, _, body = api("enroll", {"userName": "alice", "url": photos + "/alice.jpg"})
    t.ok(st == 200, "alice enrolls while there is room", body)
    alice_files = image_files(data)

    fill(os.path.join(data, "filler"))
    st, _, body = readyz(srv)
    t.ok(st == 503 and body.get("disk") is False and "full" in body.get("reason", ""),
         "/readyz: 503 with the reason when the disk is full", body)
    got = api("enroll", {"userName": "bob", "url": photos + "/bob.jpg"})
    h.check_error(t, "enroll on a full disk", got, 507, ["disk is full", "nothing was stored"])
    t.ok(image_files(data) == alice_files, "no file of the refused enroll stays behind")
    st, _, body = api("user/details", {"userName": "bob"})
    t.ok(st == 200 and body.get("enrollmentStatus") == "draft", "bob is still a draft", body)
    got = api("authenticate", {"userName": "alice", "url": photos + "/alice.jpg"})
    h.check_error(t, "authenticate on a full disk (its photo cannot be kept)", got, 507,
                  ["disk is full"])

    st, _, body = api("user/delete", {"userName": "alice"})
    t.ok(st == 200, "user/delete works on a full disk", body)
    t.ok(image_files(data) == [], "alice's files are gone", image_files(data))
    st, _, body = api("user/details", {"userName": "alice"})
    t.ok(st == 404, "alice is gone", body)

    os.unlink(os.path.join(data, "filler"))
    os.unlink(os.path.join(data, "filler.tail"))
    t.ok(wait_for(lambda: readyz(srv)[0] == 200), "/readyz: 200 again once space is freed",
         readyz(srv)[2])
    t.ok(wait_for(lambda: os.path.exists(os.path.join(data, "reserve.space"))),
         "the reserve is written back once there is room")
    st, _, body = api("enroll", {"userName": "bob", "url": photos + "/bob.jpg"})
    t.ok(st == 200, "enroll works again", body)


def test_read_only(t, srv, data, photos, tok):
    images = os.path.join(data, "images")
    # A read-only bind mount over images/: files already open elsewhere do
    # not stop it (a remount of the tmpfs itself would be refused as busy).
    r = run("mount", "--bind", images, images)
    r2 = run("mount", "-o", "remount,ro,bind", images) if r.returncode == 0 else r
    if r2.returncode != 0:
        t.ok(False, "read-only bind mount of images/", r.stderr + r2.stderr)
        return
    try:
        st, _, body = readyz(srv)
        t.ok(st == 503 and "read-only" in body.get("reason", ""),
             "/readyz: 503 naming the read-only file system", body)
        got = srv.api("enroll", {"customerName": "acme", "userName": "carol",
                                 "url": photos + "/alice.jpg"}, tok)
        h.check_error(t, "enroll into a read-only folder", got, 503, ["read-only"])
    finally:
        run("umount", images)
    t.ok(wait_for(lambda: readyz(srv)[0] == 200), "ready again once writable",
         readyz(srv)[2])


def main():
    t = h.Tap()
    if os.geteuid() != 0:
        print("1..0 # SKIP the disk-full test mounts a tmpfs and needs root")
        return 0
    args = h.parse_args()
    h.single_node_only("it fills a small tmpfs holding the node's data folder and its "
                       "SQLite file; with PostgreSQL the photos and rows are not on that disk")
    world = h.World(args, make_photos, [])
    data = os.path.join(world.work, "tmpfs")
    os.makedirs(data)
    r = run("mount", "-t", "tmpfs", "-o", "size=%dm,mode=0700" % TMPFS_MB, "tmpfs", data)
    if r.returncode != 0:
        print("1..0 # SKIP cannot mount a tmpfs here: " + r.stderr.strip())
        world.close()
        return 0
    srv = None
    try:
        h.add_customer(args.binary, data, "acme", "s3cret-acme")
        srv = h.Server(args.binary, args.models, world.work,
                       ["allow_private_urls = yes", "engines = 1",
                        "disk_reserve_mb = %d" % RESERVE_MB,
                        "min_free_disk_mb = %d" % MIN_FREE_MB,
                        "photo_purge_interval_s = 1"])
        srv.data = data
        srv.start()
        tok = h.login(srv, "acme", "s3cret-acme")
        test_full(t, srv, data, world.photos, tok)
        test_read_only(t, srv, data, world.photos, tok)
    finally:
        if srv is not None:
            h.stop_server(t, srv, "server exits cleanly on SIGTERM")
        r = run("umount", data)
        if r.returncode != 0:
            run("umount", "-l", data)
        world.close()
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
