#!/usr/bin/env python3
"""Photo retention (issue #10, item 9): photos of failed operations and of
searches are deleted by the purge thread once older than
keep_failed_photos_days / keep_search_photos_days (here a few seconds, as a
fraction of a day); the log rows stay with empty image links; the enrolled
face and the photos of successful authentications stay; deleting the user
still removes everything of theirs at once.
"""
import os
import sys
import time
import urllib.parse

import cv2

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

KEEP_DAYS = 0.00006  # 5.2 s
KEEP_S = KEEP_DAYS * 86400


def make_photos(args, root):
    det = h.Detector(args.models)
    img = cv2.imread(os.path.join(args.assets, "sample2.jpg"))
    alice = h.single_face(img, det.faces(img), 1)
    h.write_jpeg(os.path.join(root, "alice.jpg"), alice)
    h.write_jpeg(os.path.join(root, "alice-aug.jpg"), h.augment(alice))
    img = cv2.imread(os.path.join(args.assets, "sample4.jpg"))
    h.write_jpeg(os.path.join(root, "bob.jpg"), h.single_face(img, det.faces(img), 0))
    h.write_noface(os.path.join(root, "noface.jpg"))


def image_files(data):
    """Every stored photo's id (files, or the database's rows with PostgreSQL)."""
    return h.stored_image_ids(data)


def ids_of(body):
    """The image ids behind an answer's faceOriginal / faceThumbnail links."""
    fields = body.get("error", body) if isinstance(body, dict) else {}
    out = set()
    for key in ("faceOriginal", "faceThumbnail"):
        path = urllib.parse.urlparse(fields.get(key) or "").path
        if "/face/" in path:
            out.add(path.rsplit("/", 1)[1])
    return out


def main():
    args = h.parse_args()
    t = h.Tap()
    world = h.World(args, make_photos, [("acme", "s3cret-acme")])
    photos, data = world.photos, world.data
    srv = h.Server(args.binary, args.models, data,
                   ["allow_private_urls = yes", "engines = 1",
                    "keep_failed_photos_days = %g" % KEEP_DAYS,
                    "keep_search_photos_days = %g" % KEEP_DAYS,
                    "photo_purge_interval_s = 1"]).start()
    try:
        tok = h.login(srv, "acme", "s3cret-acme")
        api = lambda ep, body: srv.api(ep, dict(body, customerName="acme"), tok)  # noqa: E731
        for name in ("alice", "erin"):
            api("user/create", {"userName": name})
        st, _, body = api("enroll", {"userName": "alice", "url": photos + "/alice.jpg"})
        kept = ids_of(body)
        t.ok(st == 200 and len(kept) == 2, "alice enrolls (original and thumbnail)", body)
        started = time.monotonic()
        st, _, body = api("authenticate", {"userName": "alice", "url": photos + "/bob.jpg"})
        failed = ids_of(body)
        t.ok(st == 400 and h.err_of(body).get("authenticationStatus") == "failure" and
             len(failed) == 2, "someone else's face fails and is kept for now", body)
        st, _, body = api("authenticate", {"userName": "alice",
                                           "url": photos + "/alice-aug.jpg"})
        kept |= ids_of(body)
        t.ok(st == 200 and len(kept) == 4, "alice's own face succeeds", body)
        st, _, body = api("search", {"url": photos + "/bob.jpg"})
        searched = ids_of(body)
        t.ok(st == 200 and len(searched) == 2, "a search keeps its photo for now", body)
        st, _, body = api("enroll", {"userName": "erin", "url": photos + "/noface.jpg"})
        failed |= ids_of(body)
        t.ok(st == 400 and len(failed) == 3, "a failed enrollment keeps its photo for now", body)
        on_disk = image_files(data)
        young = time.monotonic() - started < KEEP_S - 1
        t.ok(not young or (failed | searched | kept) <= on_disk,
             "photos younger than the keep time are all on disk", (on_disk, young))

        deadline = time.monotonic() + KEEP_S + 15
        while time.monotonic() < deadline and image_files(data) & (failed | searched):
            time.sleep(0.5)
        on_disk = image_files(data)
        t.ok(not on_disk & (failed | searched),
             "photos of failed operations and searches are purged after the keep time",
             on_disk & (failed | searched))
        t.ok(kept <= on_disk, "the enrolled face and the successful authentication stay",
             kept - on_disk)
        some = sorted(failed)[0]
        st, _, _ = srv.request("GET", "/api/v1/basic/face/" + some, token=tok)
        t.ok(st == 404, "a purged photo is no longer served (%d)" % st)

        st, _, body = api("view/logs/all", {"pageNumber": 1, "pageCount": 100})
        rows = body.get("data", []) if isinstance(body, dict) else []
        by_kind = {}
        for r in rows:
            by_kind.setdefault((r.get("requestType"), r.get("result")), []).append(r)
        purged_rows = by_kind.get(("authenticate", "failure"), []) + \
            by_kind.get(("search", "success"), []) + by_kind.get(("search", "failure"), []) + \
            by_kind.get(("enroll", "failure"), [])
        t.ok(len(rows) == 5 and len(purged_rows) == 3 and
             all(r.get("faceOriginal") == "" and r.get("faceThumbnail") == ""
                 for r in purged_rows),
             "the log keeps every row; the purged ones without image links", rows)
        t.ok(all(r.get("faceOriginal") for r in by_kind.get(("authenticate", "success"), [])),
             "the successful authentication keeps its links", rows)

        st, _, body = api("user/delete", {"userName": "alice"})
        t.ok(st == 200 and image_files(data) == set(),
             "deleting the user still removes every remaining photo at once",
             (body, image_files(data)))
        if not h.skip_in_two_nodes(t, "the operator log counts purged files",
                                   "with PostgreSQL no photo is a file; rows go with their bytes"):
            t.ok("purged" in srv.stderr_text(), "the operator log counts purged files")
    finally:
        h.stop_server(t, srv, "server exits cleanly on SIGTERM (purge thread stopped)")
        world.close()
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
