#!/usr/bin/env python3
"""End to end: two faceauth nodes on one PostgreSQL (issue #12, item 4).

Node A and node B are two server processes on two ports with two data
folders and one database. Enrolled on A, a user is searchable and
authenticatable on B (the time from A's answer to B finding the face is
measured and printed); an image link A handed out is served by B; deleted on
B, the user is gone from A's search at once. Then a load of user creations
and enrollments runs against both while A is killed with SIGKILL: every
request either node acknowledged is in the database afterwards, on B and on
A restarted.

Runs only in two-node mode (e2e_test_nodes-pg); on its own SQLite it has
nothing to show and says so.
"""
import os
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

CONFIG = ["allow_private_urls = yes", "engines = 1", "max_fetches_per_customer = 64"]
PEOPLE = {"alice": ("sample2.jpg", 1), "bob": ("sample4.jpg", 0)}
LOAD_SECONDS = 20      # the kill comes half way
LOAD_THREADS = 4


def make_photos(args, root):
    h.cut_faces(args, root, PEOPLE)


def on(node, endpoint, body, tok=None, timeout=60):
    """A request to that node only (Server.request would alternate)."""
    return h.Node.request(node, "POST", "/api/v1/basic/" + endpoint, body=body, token=tok,
                          timeout=timeout)


def create_and_enroll(node, tok, photos, name, face):
    """user/create then enroll on node: (create status, enroll status)."""
    st, _, body = on(node, "user/create", {"customerName": "acme", "userName": name}, tok)
    if st != 200:
        return st, None
    st2, _, body2 = on(node, "enroll", {"customerName": "acme", "userName": name,
                                        "url": photos + "/" + face + ".jpg"}, tok)
    return st, (st2, body2)


def search_names(node, tok, photos, face):
    st, _, body = on(node, "search", {"customerName": "acme",
                                      "url": photos + "/" + face + "-aug.jpg"}, tok)
    hits = body.get("userNames", []) if isinstance(body, dict) else []
    return st, [hit.get("userName") for hit in hits if isinstance(hit, dict)]


def index_templates(node):
    """faceauth_index_templates of node's /metrics (its index, read as is:
    unlike search, a scrape never catches up with the database first)."""
    st, _, body = h.Node.request(node, "GET", "/metrics")
    for line in (body.decode() if st == 200 else "").splitlines():
        if line.startswith("faceauth_index_templates "):
            return int(float(line.split()[1]))
    return -1


def test_across_nodes(t, a, b, tok, photos):
    st, enrolled = create_and_enroll(a, tok, photos, "alice", "alice")
    acked = time.monotonic()
    t.ok(st == 200 and enrolled[0] == 200, "user/create and enroll on node A", enrolled)
    st, found = search_names(b, tok, photos, "alice")
    print("# enrolled on A -> found by the next search on B, %.0f ms after A's answer (the "
          "search's own face analysis included)" % ((time.monotonic() - acked) * 1000))
    t.ok(st == 200 and "alice" in found,
         "the first search on node B after A's answer finds the user", found)
    # The follower on its own: a scrape of /metrics reads the index as it is.
    before = index_templates(b)
    st, enrolled_bob = create_and_enroll(a, tok, photos, "bob", "bob")
    acked = time.monotonic()
    while index_templates(b) <= before and time.monotonic() - acked < 5:
        time.sleep(0.002)
    follow_ms = (time.monotonic() - acked) * 1000
    print("# enrolled on A -> in node B's index through its follower (LISTEN/NOTIFY) after "
          "%.0f ms" % follow_ms)
    t.ok(enrolled_bob is not None and enrolled_bob[0] == 200 and follow_ms < 2000,
         "node B's follower has another enrollment of A within 2 s (%.0f ms)" % follow_ms,
         enrolled_bob)
    st, _, body = on(b, "authenticate", {"customerName": "acme", "userName": "alice",
                                         "url": photos + "/alice-aug.jpg"}, tok)
    t.ok(st == 200 and body.get("authenticationStatus") == "success",
         "authenticate on node B the user enrolled on A", body)
    link = urllib.parse.urlparse(enrolled[1].get("faceThumbnail", ""))
    st, resp, img = h.Node.request(b, "GET", link.path + "?" + link.query)
    t.ok(st == 200 and img[:2] == b"\xff\xd8",
         "node B serves the signed thumbnail link node A handed out", (st, link))
    st, _, body = on(b, "user/delete", {"customerName": "acme", "userName": "alice"}, tok)
    t.ok(st == 200, "user/delete on node B", body)
    st, found = search_names(a, tok, photos, "alice")
    t.ok(st == 200 and "alice" not in found, "node A's search no longer finds the user", found)
    st, _, body = on(a, "authenticate", {"customerName": "acme", "userName": "alice",
                                         "url": photos + "/alice-aug.jpg"}, tok)
    t.ok(st == 404, "authenticate on node A: the deleted user is unknown", (st, body))


def load(a, b, tok, photos, stop_at, acked, lock, worker):
    """Create and enroll users in turn on A and B until stop_at; what either
    node answered 200 goes to acked. Errors (A killed) are expected."""
    n = 0
    while time.monotonic() < stop_at:
        node = a if n % 2 == 0 else b
        name = "u%d_%d" % (worker, n)
        n += 1
        try:
            st, enrolled = create_and_enroll(node, tok, photos, name, "bob")
        except OSError:
            continue  # refused or reset: node A is gone; nothing was acknowledged
        with lock:
            if st == 200:
                acked.setdefault(name, False)
            if enrolled is not None and enrolled[0] == 200:
                acked[name] = True


def listed_users(node, tok):
    """Every user of acme as node sees it: {name: enrollmentStatus}."""
    users, page = {}, 1
    while True:
        st, _, body = on(node, "status/enroll/all", {"customerName": "acme", "pageNumber": page,
                                                      "pageCount": 100, "statusType": "all"}, tok)
        rows = body.get("data", []) if st == 200 and isinstance(body, dict) else []
        for u in rows:
            users[u.get("userName")] = u.get("enrollmentStatus")
        if len(rows) < 100:
            return users
        page += 1


def test_kill_mid_load(t, srv, args, tok, photos):
    a, b = srv, srv.peer
    acked, lock = {}, threading.Lock()
    stop_at = time.monotonic() + LOAD_SECONDS
    threads = [threading.Thread(target=load, args=(a, b, tok, photos, stop_at, acked, lock, w))
               for w in range(LOAD_THREADS)]
    for th in threads:
        th.start()
    time.sleep(LOAD_SECONDS / 2)
    a.proc.kill()  # SIGKILL: no clean-up of any kind
    a.proc.wait()
    for th in threads:
        th.join()
    enrolled = sorted(n for n, e in acked.items() if e)
    print("# under load: %d users created, %d enrolled, node A killed half way"
          % (len(acked), len(enrolled)))
    t.ok(len(enrolled) >= 2, "the load enrolled users on both nodes before and after the kill",
         acked)
    seen_b = listed_users(b, tok)
    lost = [n for n in acked if n not in seen_b]
    t.ok(not lost, "every user whose creation was acknowledged is on node B", lost)
    t.ok(all(seen_b.get(n) == "success" for n in enrolled),
         "every acknowledged enrollment is a success on node B",
         [(n, seen_b.get(n)) for n in enrolled if seen_b.get(n) != "success"])
    h.Node.start(a, srv.log_lines)
    seen_a = listed_users(a, tok)
    t.ok(not [n for n in acked if n not in seen_a], "... and on node A restarted", len(seen_a))
    bad = []
    for name in enrolled[:3] + enrolled[-3:]:
        st, _, body = on(a, "authenticate", {"customerName": "acme", "userName": name,
                                             "url": photos + "/bob-aug.jpg"}, tok)
        if st != 200:
            bad.append((name, st, body))
    t.ok(not bad, "acknowledged enrollments (first and last) authenticate on restarted A", bad)
    st, found = search_names(a, tok, photos, "bob")
    t.ok(st == 200 and set(enrolled[:5]) <= set(found),
         "restarted node A's search finds users enrolled on either node", found[:10])


def main():
    args = h.parse_args()
    t = h.Tap()
    if not h.two_nodes():
        print("1..0 # SKIP needs PostgreSQL: runs as e2e_test_nodes-pg")
        return 77
    world = h.World(args, make_photos, [("acme", "s3cret-acme")])
    srv = h.Server(args.binary, args.models, world.data, CONFIG).start()
    try:
        tok = h.login(srv, "acme", "s3cret-acme")
        t.ok(tok is not None, "login (a token from either node works on both)")
        test_across_nodes(t, srv, srv.peer, tok, world.photos)
        test_kill_mid_load(t, srv, args, tok, world.photos)
    finally:
        h.stop_server(t, srv, "both nodes exit cleanly on SIGTERM")
        world.close()
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
