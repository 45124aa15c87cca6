#!/usr/bin/env python3
"""End to end: callbacks (README "Callbacks").

A real receiver (Python http.server on 127.0.0.1, allowed by
allow_private_urls in the test config) records every POST. Checked: each
enroll/update/authenticate event arrives once, at the URL of its event, with
the client's answer plus event, eventId, customerName and timeStamp, and a
signature that the README's own verify() accepts (and refuses for another
secret, an old t or a changed body); search sends nothing; view/callbacks
lists the events of the caller only; the enrollment page's enrollments are
reported with their customer's name; a receiver that hangs neither slows
authenticate nor holds back another customer's events; with the receiver
down the events queue, the server restarts, the receiver comes up and every
event arrives exactly once (by eventId); without allow_private_urls a
loopback URL is refused and the event ends dead, visible with its error;
the secret rotates.
"""
import base64
import hashlib
import hmac
import http.server
import json
import os
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "README.md")

PEOPLE = {"alice": ("sample2.jpg", 1), "bob": ("sample4.jpg", 0)}
DATE_RE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
EXTRA = ("event", "eventId", "customerName", "timeStamp")
TIMEOUT_MS = 6000  # callback_timeout_ms: how long a hanging receiver holds an attempt
CONF = ["allow_private_urls = yes", "callback_retry_base_ms = 200",
        "callback_retry_max_ms = 1000", "callback_max_attempts = 60",
        "callback_connect_timeout_ms = 1000", "callback_timeout_ms = %d" % TIMEOUT_MS]


def make_photos(args, root):
    h.cut_faces(args, root, PEOPLE)
    h.write_noface(os.path.join(root, "noface.jpg"))


def readme_verify():
    """The verify() function of the README's Python block, as a user copies it."""
    with open(README) as f:
        text = f.read().split("### Callbacks", 1)[1]
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    scope = {}
    exec(code, scope)  # noqa: S102 - our own README
    return scope["verify"]


# ------------------------------------------------------------------ receiver
class Receiver:
    """Records every POST (path, headers, raw body). Paths under /hang wait
    until release is set; /fail answers 500; anything else 200."""

    def __init__(self, port=0):
        self.posts = []
        self.lock = threading.Lock()
        self.release = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with outer.lock:
                    outer.posts.append((self.path, dict(self.headers), body, time.time()))
                if self.path.startswith("/hang"):
                    outer.release.wait(30)
                code = 500 if self.path.startswith("/fail") else 200
                try:
                    self.send_response(code)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.srv.daemon_threads = True
        self.port = self.srv.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def stop(self):
        self.release.set()
        self.srv.shutdown()
        self.srv.server_close()

    def got(self, prefix=""):
        with self.lock:
            return [p for p in self.posts if p[0].startswith(prefix)]


def wait_for(cond, timeout=30.0, step=0.1):
    end = time.time() + timeout
    while time.time() < end:
        v = cond()
        if v:
            return v
        time.sleep(step)
    return cond()


def secret_cmd(args, data, customer):
    r = subprocess.run([args.binary, "customer", "callback-secret", customer, "--data", data],
                       capture_output=True, text=True)
    return r.returncode, r.stdout.strip(), r.stderr


# ------------------------------------------------------------------ client
class Customer:
    def __init__(self, srv, name, password):
        self.srv, self.name, self.password = srv, name, password
        self.token = h.login(srv, name, password)

    def __call__(self, endpoint, **body):
        full = {"customerName": self.name}
        full.update(body)
        return self.srv.api(endpoint, full, self.token)


def photo(world, name):
    return "%s/%s" % (world.photos, name)


def check_event(t, verify, secret, post, event, answer, customer, name):
    """One delivered event against the answer the client got."""
    path, headers, raw, _ = post
    body = json.loads(raw)
    sig = headers.get("X-Faceauth-Signature", "")
    t.ok(verify(secret, sig, raw), "%s: the README's verify() accepts the signature" % name,
         (sig, raw[:300]))
    rest = {k: v for k, v in body.items() if k not in EXTRA}
    t.ok(rest == answer, "%s: the body is the client's answer" % name, (rest, answer))
    t.ok(body.get("event") == event and headers.get("X-Faceauth-Event") == event and
         body.get("customerName") == customer and DATE_RE.match(body.get("timeStamp", "")) and
         re.match(r"^[0-9a-f]{32}$", body.get("eventId", "")) and
         headers.get("X-Faceauth-Event-Id") == body.get("eventId") and
         headers.get("Content-Type") == "application/json",
         "%s: event, eventId, customerName, timeStamp and headers" % name, (headers, body))
    return body.get("eventId")


# ------------------------------------------------------------------ phases
def phase_secret(t, args, world):
    code, out, err = secret_cmd(args, world.data, "nobody")
    t.ok(code == 1 and "not found" in err, "callback-secret for an unknown customer fails",
         (code, out, err))
    secrets = {}
    for name in ("acme", "globex"):
        code, out, err = secret_cmd(args, world.data, name)
        t.ok(code == 0 and re.match(r"^[0-9a-f]{64}$", out), "callback-secret %s prints it" % name,
             (code, out, err))
        secrets[name] = out
    code, again, _ = secret_cmd(args, world.data, "acme")
    t.ok(code == 0 and again != secrets["acme"], "callback-secret again rotates it")
    secrets["acme-old"] = secrets["acme"]
    secrets["acme"] = again
    return secrets


def phase_events(t, verify, world, rx, acme, secrets):
    """One event per kind, each once, as the client got it."""
    urls = {"enrollmentAcceptedCallbackurl": rx.url + "/acme/accepted",
            "enrollmentRejectedCallbackurl": rx.url + "/acme/rejected",
            "successfullAuthenticationCallbackurl": rx.url + "/acme/success",
            "failedAuthenticationCallbackurl": rx.url + "/acme/failure"}
    st, _, _ = acme("settings/update", **urls)
    t.ok(st == 200, "acme sets the four callback URLs")
    acme("user/create", userName="alice", fullName="Alice")
    sent = []  # (path, event, answer)
    for url, path, event in ((photo(world, "noface.jpg"), "/acme/rejected", "enrollmentRejected"),
                             (photo(world, "alice.jpg"), "/acme/accepted", "enrollmentAccepted")):
        _, _, answer = acme("enroll", userName="alice", url=url)
        sent.append((path, event, answer))
    for url, path, event in ((photo(world, "alice-aug.jpg"), "/acme/success",
                              "successfulAuthentication"),
                             (photo(world, "bob.jpg"), "/acme/failure", "failedAuthentication")):
        _, _, answer = acme("authenticate", userName="alice", url=url)
        sent.append((path, event, answer))
    st, _, _ = acme("search", url=photo(world, "alice-aug.jpg"))
    t.ok(st == 200, "a search (which sends no callback)")
    t.ok(sent[1][2].get("enrollmentStatus") == "success" and
         sent[3][2].get("error", {}).get("authenticationStatus") == "failure",
         "the operations answered as expected", [s[2] for s in sent])
    wait_for(lambda: len(rx.got("/acme")) >= 4)
    time.sleep(0.5)  # a duplicate would show up now
    posts = rx.got("/acme")
    t.ok(len(posts) == 4, "four events, one per operation (none for search)",
         [p[0] for p in posts])
    ids = []
    for path, event, answer in sent:
        mine = [p for p in posts if p[0] == path]
        if t.ok(len(mine) == 1, "%s arrives once at its URL" % event, [p[0] for p in posts]):
            ids.append(check_event(t, verify, secrets["acme"], mine[0], event, answer, "acme",
                                   event))
    t.ok(len(set(ids)) == len(ids), "eventIds are unique", ids)
    return posts


def phase_verify(t, verify, post, secrets):
    """The README's verify() refuses what it should."""
    _, headers, raw, _ = post
    sig = headers["X-Faceauth-Signature"]
    t.ok(not verify(secrets["acme-old"], sig, raw), "verify refuses a rotated-out secret")
    t.ok(not verify(secrets["globex"], sig, raw), "verify refuses another customer's secret")
    t.ok(not verify(secrets["acme"], sig, raw + b" "), "verify refuses a changed body")
    old = int(time.time()) - 3600
    mac = hmac.new(bytes.fromhex(secrets["acme"]), b"%d." % old + raw, hashlib.sha256).hexdigest()
    t.ok(not verify(secrets["acme"], "t=%d,v1=%s" % (old, mac), raw),
         "verify refuses a correctly signed but hour-old event")
    t.ok(not verify(secrets["acme"], "garbage", raw), "verify refuses a malformed header")


def phase_view(t, acme, globex):
    st, _, body = acme("view/callbacks", pageNumber=1, pageCount=10)
    rows = body.get("data", []) if isinstance(body, dict) else []
    t.ok(st == 200 and body.get("totalCallbackCount") == 4 and len(rows) == 4 and
         all(r["state"] == "sent" and r["attempts"] == 1 and r["lastError"] == "" and
             r["nextAttempt"] is None and DATE_RE.match(r["timeStamp"]) for r in rows),
         "view/callbacks lists the four events, sent at the first attempt", body)
    t.ok(rows and set(rows[0]) == {"eventId", "event", "url", "state", "attempts", "lastError",
                                   "timeStamp", "nextAttempt"},
         "view/callbacks rows have the documented fields", rows[:1])
    st, _, body = acme("view/callbacks", state="dead")
    t.ok(st == 200 and body.get("totalCallbackCount") == 0, "no dead events", body)
    h.check_error(t, "view/callbacks with state=bogus", acme("view/callbacks", state="bogus"),
                  400, ["state"])
    st, _, body = globex("view/callbacks")
    t.ok(st == 200 and body.get("totalCallbackCount") == 0,
         "another customer does not see acme's events", body)


def phase_page(t, verify, world, srv, rx, acme, secrets):
    """An enrollment through the enrollment page (POST /enroll/<token>, no
    customerName in the request) reports the customer all the same."""
    _, _, created = acme("user/create", userName="alice-page")
    path = "/" + created.get("enrollmentUrl", "").split("/", 3)[-1]
    with open(os.path.join(world.photo_dir, "alice.jpg"), "rb") as f:
        inline = "data:image/jpeg;base64," + base64.b64encode(f.read()).decode()
    before = len(rx.got("/acme/accepted"))
    st, _, answer = srv.request("POST", path, body={"images": [inline]})
    t.ok(st == 200 and answer.get("enrollmentStatus") == "success",
         "the enrollment page enrolls a user", (st, answer))
    got = wait_for(lambda: len(rx.got("/acme/accepted")) > before, 20)
    if t.ok(got, "the page's enrollment sends enrollmentAccepted"):
        check_event(t, verify, secrets["acme"], rx.got("/acme/accepted")[-1],
                    "enrollmentAccepted", answer, "acme", "enrollment page")


def timed(call):
    start = time.time()
    got = call()
    return time.time() - start, got


def phase_hang(t, world, rx, acme, globex):
    """globex's receiver hangs: its authenticates are not slowed, acme's
    events keep arriving, and globex's event goes out once it answers."""
    globex("settings/update", successfullAuthenticationCallbackurl=rx.url + "/hang/success")
    globex("user/create", userName="bob")
    st, _, _ = globex("enroll", userName="bob", url=photo(world, "bob.jpg"))
    t.ok(st == 200, "globex enrolls bob (no enroll URL set: no event)")
    base = max(timed(lambda: acme("authenticate", userName="alice",
                                  url=photo(world, "alice-aug.jpg")))[0] for _ in range(2))
    wait_for(lambda: len(rx.got("/acme/success")) >= 3)
    slow = []
    for _ in range(2):
        secs, got = timed(lambda: globex("authenticate", userName="bob",
                                         url=photo(world, "bob-aug.jpg")))
        slow.append(secs)
        t.ok(got[0] == 200, "globex authenticates bob while its receiver hangs")
    t.ok(wait_for(lambda: rx.got("/hang"), 10), "the hanging receiver got globex's event")
    t.ok(max(slow) < base + 3.0 and max(slow) < TIMEOUT_MS / 1000.0,
         "authenticate is not slowed by the hanging receiver (%.2fs vs %.2fs)" %
         (max(slow), base))
    before = len(rx.got("/acme/success"))
    start = time.time()
    acme("authenticate", userName="alice", url=photo(world, "alice-aug.jpg"))
    arrived = wait_for(lambda: len(rx.got("/acme/success")) > before, 10)
    t.ok(arrived and time.time() - start < TIMEOUT_MS / 1000.0,
         "acme's event arrives while globex's receiver hangs (%.2fs)" % (time.time() - start))
    rx.release.set()

    def globex_sent():
        _, _, body = globex("view/callbacks", state="sent")
        return isinstance(body, dict) and body.get("totalCallbackCount") == 2
    t.ok(wait_for(globex_sent, 30, 0.3), "globex's events are sent once the receiver answers")


def phase_restart(t, verify, args, world, rx, srv, secrets):
    """Receiver down: events queue; server restarted; receiver up: each arrives once."""
    acme = Customer(srv, "acme", "acme-pw-1")
    port = rx.port
    rx.stop()
    answers = []
    for _ in range(3):
        _, _, answer = acme("authenticate", userName="alice", url=photo(world, "alice-aug.jpg"))
        answers.append(answer)

    def failing():
        _, _, body = acme("view/callbacks", state="pending")
        rows = body.get("data", []) if isinstance(body, dict) else []
        return len(rows) == 3 and all(r["attempts"] >= 1 and r["lastError"] for r in rows) and rows
    rows = wait_for(failing, 20, 0.3)
    t.ok(rows, "with the receiver down the events stay pending, each attempt's error kept",
         rows)
    h.stop_server(t, srv, "server stops cleanly with events queued")
    srv2 = h.Server(args.binary, args.models, world.data, CONF).start()
    time.sleep(0.5)
    rx2 = Receiver(port)
    got = wait_for(lambda: len(rx2.got("/acme/success")) >= 3, 30)
    time.sleep(1.0)
    posts = rx2.got("/acme/success")
    t.ok(got and len(posts) == 3, "after the restart the three events arrive", len(posts))
    ids = [json.loads(p[2]).get("eventId") for p in posts]
    t.ok(len(set(ids)) == 3, "each exactly once (by eventId)", ids)
    for i, p in enumerate(posts):
        body = json.loads(p[2])
        rest = {k: v for k, v in body.items() if k not in EXTRA}
        t.ok(verify(secrets["acme"], p[1]["X-Faceauth-Signature"], p[2]) and rest in answers,
             "queued event %d: signed, the client's answer" % i, body)
    return srv2, rx2


def phase_dead(t, args, world, rx, srv):
    """Without allow_private_urls a loopback receiver is refused, like an image
    URL; after the last attempt the event is dead, with its error."""
    already = len(rx.got("/acme"))
    h.stop_server(t, srv, "server stops cleanly")
    srv3 = h.Server(args.binary, args.models, world.data,
                    [c for c in CONF if not c.startswith("allow_private")] +
                    ["callback_max_attempts = 2"]).start()
    acme = Customer(srv3, "acme", "acme-pw-1")
    acme("settings/update", failedAuthenticationCallbackurl=rx.url + "/fail")
    # inline: the photo server is on loopback too, and now refused as well
    with open(os.path.join(world.photo_dir, "bob.jpg"), "rb") as f:
        inline = "data:image/jpeg;base64," + base64.b64encode(f.read()).decode()
    st, _, _ = acme("authenticate", userName="alice", url=inline)
    t.ok(st == 400, "a failed authenticate (logged, so it has an event)")

    def dead():
        _, _, body = acme("view/callbacks", state="dead")
        return isinstance(body, dict) and body.get("data") and body["data"]
    rows = wait_for(dead, 20, 0.3)
    t.ok(rows and rows[0]["attempts"] == 2 and
         "refused private or loopback address 127.0.0.1" in rows[0]["lastError"] and
         rows[0]["event"] == "failedAuthentication" and rows[0]["url"].endswith("/fail"),
         "a loopback URL is refused without allow_private_urls; dead after 2 attempts", rows)
    t.ok(not rx.got("/fail"), "the loopback receiver got nothing")
    t.ok(len(rx.got("/acme")) == already, "no sent event is delivered again after a restart",
         [p[0] for p in rx.got("/acme")])
    return srv3


def main():
    args = h.parse_args()
    t = h.Tap()
    verify = readme_verify()
    world = h.World(args, make_photos, [("acme", "acme-pw-1"), ("globex", "globex-pw-1")])
    rx = Receiver()
    srv = None
    try:
        secrets = phase_secret(t, args, world)
        srv = h.Server(args.binary, args.models, world.data, CONF).start()
        acme = Customer(srv, "acme", "acme-pw-1")
        globex = Customer(srv, "globex", "globex-pw-1")
        posts = phase_events(t, verify, world, rx, acme, secrets)
        if posts:
            phase_verify(t, verify, posts[0], secrets)
        phase_view(t, acme, globex)
        phase_page(t, verify, world, srv, rx, acme, secrets)
        phase_hang(t, world, rx, acme, globex)
        srv, rx = phase_restart(t, verify, args, world, rx, srv, secrets)
        srv = phase_dead(t, args, world, rx, srv)
        h.stop_server(t, srv, "server stops cleanly")
        srv = None
    finally:
        if srv is not None:
            srv.stop()
        rx.stop()
        world.close()
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
