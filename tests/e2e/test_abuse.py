#!/usr/bin/env python3
"""A hostile client against the real server (issue #10, items 1 and 7).

Each check reproduces one finding of the hostile-client test and fails on
the server as it was before the fix:
- one address holding many connections: refused past max_connections_per_ip
  while another address (127.0.0.x: the whole of 127/8 is loopback on Linux)
  is still served;
- a client trickling its headers or body one byte at a time: dropped when
  request_read_timeout_ms passes, while others are served; an honest slow
  upload (faster than min_body_rate) is not;
- every worker busy and the queue full: /healthz and /readyz still answer;
- "%0a" / "%1b" in the path: escaped in the access log, never raw;
- "\\u0000" and control characters in JSON text: 400 naming the field, where
  a NUL used to cut the string ("ab\\u0000cd" created "ab"; a password with
  junk after a NUL logged in);
- a forged Host header: never the base of enrollmentUrl or image links; a
  warning at start while public_url is empty.
"""
import base64
import http.client
import http.server
import json
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

CUSTOMER, PASSWORD = "acme", "s3cret-acme"
READ_TIMEOUT_S = 2.0
PER_IP = 4
WORKERS = 2
CONFIG = ["allow_private_urls = yes", "engines = 1", "http_threads = %d" % WORKERS,
          "max_connections_per_ip = %d" % PER_IP,
          "request_read_timeout_ms = %d" % int(READ_TIMEOUT_S * 1000),
          "min_body_rate = 1000", "allowed_hosts = localhost, faces.example:8443",
          # one customer's held image downloads must be able to fill every worker
          "max_fetches_per_customer = 64"]


def make_photos(args, root):
    h.cut_faces(args, root, {"jane": ("sample3.jpg", 0)})


def request(port, method, path, body=None, token=None, headers=None, src="127.0.0.1",
            timeout=30):
    """One request from source address src: (status, parsed JSON or bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout,
                                      source_address=(src, 0))
    hdrs = dict(headers or {})
    data = None if body is None else json.dumps(body).encode()
    if data is not None:
        hdrs["Content-Type"] = "application/json"
    if token is not None:
        hdrs["Authorization"] = token
    try:
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        payload = resp.read()
    finally:
        conn.close()
    try:
        payload = json.loads(payload)
    except ValueError:
        pass
    return resp.status, payload


def api(port, endpoint, body, token=None, **kw):
    return request(port, "POST", "/api/v1/basic/" + endpoint, body, token, **kw)


def answered(sock, timeout):
    """What the server does with a connection within timeout: 'answer' (an
    HTTP status line came), 'closed' (end of stream or reset) or 'open'."""
    sock.settimeout(timeout)
    try:
        data = sock.recv(64)
    except socket.timeout:
        return "open"
    except OSError:
        return "closed"
    return "answer" if data.startswith(b"HTTP/1.1") else "closed"


def connect(port, src):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s


# ------------------------------------------------------------ connections
def test_per_ip_limit(t, srv):
    time.sleep(0.5)  # the server has closed the earlier connections of 127.0.0.1
    held = [connect(srv.port, "127.0.0.1") for _ in range(PER_IP)]
    for s in held:  # each one served, and kept open (keep-alive)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
    got = [answered(s, 3) for s in held]
    t.ok(got == ["answer"] * PER_IP, "%d connections from one address are served" % PER_IP, got)
    extra = connect(srv.port, "127.0.0.1")
    extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
    got = answered(extra, 3)
    t.ok(got == "closed", "connection %d from one address is refused (limit %d)" %
         (PER_IP + 1, PER_IP), got)
    st, body = request(srv.port, "GET", "/healthz", src="127.0.0.2")
    t.ok(st == 200, "meanwhile another address is served", (st, body))
    for s in held + [extra]:
        s.close()
    time.sleep(0.3)
    st, body = request(srv.port, "GET", "/healthz")
    t.ok(st == 200, "once its connections close, the address is served again", (st, body))


def trickle(port, src, head, body, every, out):
    """Send head at once, then body one byte every `every` seconds, until
    the server answers or closes; out gets (what, seconds)."""
    s = connect(port, src)
    t0 = time.time()
    what = "open"
    try:
        s.sendall(head)
        for b in body:
            s.sendall(bytes([b]))
            what = answered(s, every)
            if what != "open":
                break
    except OSError:
        what = "closed"
    out.append((what, time.time() - t0))
    s.close()


def test_trickle(t, srv):
    header_bytes = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Pad: " + b"a" * 200
    post_head = (b"POST /api/v1/basic/login HTTP/1.1\r\nHost: localhost\r\n"
                 b"Content-Type: application/json\r\nContent-Length: 200\r\n\r\n")
    slow_h, slow_b = [], []
    th = threading.Thread(target=trickle, args=(srv.port, "127.0.0.3", b"", header_bytes,
                                                0.25, slow_h))
    tb = threading.Thread(target=trickle, args=(srv.port, "127.0.0.4", post_head, b" " * 200,
                                                0.25, slow_b))
    th.start()
    tb.start()
    time.sleep(0.5)
    t0 = time.time()
    st, _ = request(srv.port, "GET", "/healthz", src="127.0.0.5")
    st2, body2 = api(srv.port, "login", {"customerName": CUSTOMER, "password": "wrong"},
                     src="127.0.0.5")
    t.ok(st == 200 and st2 == 401 and time.time() - t0 < 10,
         "while two clients trickle, another is served at once", (st, st2, body2))
    th.join(20)
    tb.join(20)
    for name, res in (("headers", slow_h), ("body", slow_b)):
        what, secs = res[0] if res else ("none", 0)
        t.ok(what == "closed" and READ_TIMEOUT_S * 0.9 <= secs <= READ_TIMEOUT_S + 2.5,
             "a client trickling its %s one byte per 0.25 s is dropped after the %.0f s read "
             "deadline" % (name, READ_TIMEOUT_S), (what, secs))
    time.sleep(0.3)
    lines = [ln for ln in srv.log_lines if " 408 " in ln]
    t.ok(any("127.0.0.3 - - 408" in ln for ln in lines) and
         any("127.0.0.4 POST /api/v1/basic/login 408" in ln for ln in lines),
         "both drops are in the access log as 408", lines)


def test_keepalive_idle(t, srv):
    """A pooled client idles on a kept-alive connection for most of the
    deadline, then sends its next request over a second: still answered."""
    s = connect(srv.port, "127.0.0.7")
    req = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"
    s.sendall(req)
    s.settimeout(5)
    resp = http.client.HTTPResponse(s)
    resp.begin()
    resp.read()
    first = resp.status
    time.sleep(READ_TIMEOUT_S * 0.6)
    try:
        line = req.index(b"\r\n") + 2  # the request line, then the headers a second later
        s.sendall(req[:line])
        time.sleep(READ_TIMEOUT_S * 0.5)
        s.sendall(req[line:])
        resp = http.client.HTTPResponse(s)
        resp.begin()
        second = resp.status
    except OSError as e:
        second = repr(e)
    s.close()
    t.ok(first == 200 and second == 200,
         "a kept-alive connection's next request gets its own deadline", (first, second))


def test_slow_honest_upload(t, srv):
    """3 s of upload at ~3 kB/s: past the 2 s deadline, but min_body_rate
    (1 kB/s) extends it, so the request is answered."""
    body = b'{"customerName": "acme", "password": "wrong"' + b" " * 9000 + b"}"
    s = connect(srv.port, "127.0.0.6")
    s.sendall(b"POST /api/v1/basic/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: "
              b"application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
    t0 = time.time()
    try:
        for i in range(0, len(body), 300):
            s.sendall(body[i:i + 300])
            time.sleep(0.1)
        resp = http.client.HTTPResponse(s)
        resp.begin()
        st = resp.status
    except OSError as e:
        st = repr(e)
    s.close()
    t.ok(st == 401 and time.time() - t0 > READ_TIMEOUT_S,
         "an upload slower than the deadline but above min_body_rate is answered", st)


# ------------------------------------------------------------ health while busy
class Hold(http.server.BaseHTTPRequestHandler):
    """An image server that holds every request until `release` is set."""
    release = None
    seen = None

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.seen.append(1)
        self.release.wait(30)
        try:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
        except OSError:
            pass


def test_health_while_busy(t, srv, tok):
    release, seen = threading.Event(), []
    hold, base = h.start_local_server(Hold, release=release, seen=seen)
    url = base + "/face.jpg"
    results = []

    def slow_search(i):
        try:
            results.append(api(srv.port, "search", {"customerName": CUSTOMER, "url": url}, tok,
                               src="127.0.1.%d" % (i + 1), timeout=60)[0])
        except OSError as e:
            results.append(repr(e))

    # The workers, then their queue (8 per worker), then one more: 503.
    n = WORKERS * 9
    threads = [threading.Thread(target=slow_search, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
        time.sleep(0.02)
    busy = None
    for _ in range(50):
        busy = api(srv.port, "search", {"customerName": CUSTOMER, "url": url}, tok,
                   src="127.0.2.1")[0]
        if busy == 503:
            break
        time.sleep(0.1)
    try:
        t.ok(busy == 503 and len(seen) >= WORKERS,
             "every worker busy and the queue full: a request gets 503", (busy, len(seen)))
        t0 = time.time()
        st, body = request(srv.port, "GET", "/healthz", src="127.0.2.2", timeout=10)
        t.ok(st == 200 and time.time() - t0 < 2.0,
             "/healthz answers 200 at once all the same (%.3f s)" % (time.time() - t0),
             (st, body))
        t0 = time.time()
        st, body = request(srv.port, "GET", "/readyz", src="127.0.2.3", timeout=10)
        t.ok(st == 200 and time.time() - t0 < 2.0,
             "/readyz answers 200 all the same (%.3f s)" % (time.time() - t0), (st, body))
    finally:
        release.set()
        for th in threads:
            th.join(60)
        hold.shutdown()
    t.ok(len(results) == n and all(r == 400 for r in results),
         "the held requests are all answered once the images come (400: not found)", results)


# ------------------------------------------------------------ access log
def test_log_escape(t, srv):
    forged = "2026-01-01T00:00:00Z 203.0.113.9 GET /admin 200 0 0.1ms"
    path = "/x%0a" + forged.replace(" ", "%20") + "%1b[2J%0d"
    st, _ = request(srv.port, "GET", path)
    time.sleep(0.3)
    lines = list(srv.log_lines)
    t.ok(st == 404 and not any(ln.startswith(forged) for ln in lines),
         "a %0a in the path forges no access log line", lines[-3:])
    t.ok(not any("\x1b" in ln or "\r" in ln for ln in lines),
         "no ESC or CR reaches the log", [ln for ln in lines if "\x1b" in ln][:2])
    t.ok(any("/x\\x0a2026-01-01T00:00:00Z\\x20203.0.113.9" in ln and "\\x1b[2J\\x0d 404 " in ln
             for ln in lines), "the path is logged escaped as \\xHH, in one field", lines[-3:])


# ------------------------------------------------------------ JSON text
def test_json_text(t, srv, tok, photo_dir):
    port = srv.port
    user = {"customerName": CUSTOMER, "userName": "jane", "fullName": "Jane Doe",
            "emailId": "jane@example.com", "phoneNumber": "5550100"}
    st, body = api(port, "user/create", dict(user, userName="ab\u0000cd"), tok)
    h.check_error(t, "userName with \\u0000", (st, None, body), 400,
                  ["userName", "control characters", "NUL"])
    st, body = api(port, "user/details", {"customerName": CUSTOMER, "userName": "ab"}, tok)
    t.ok(st == 404, "and no user 'ab' was created from it", (st, body))
    st, body = api(port, "login", {"customerName": CUSTOMER, "password": PASSWORD + "\u0000junk"})
    h.check_error(t, "password with junk after a NUL", (st, None, body), 400, ["password"])
    t.ok("accessToken" not in json.dumps(body), "and it does not log in", body)
    st, body = api(port, "user/create", dict(user, fullName="Jane\nDoe"), tok)
    h.check_error(t, "fullName with a newline", (st, None, body), 400, ["fullName", "line"])
    st, body = api(port, "user/create", dict(user, emailId="j\u001b[31m@example.com"), tok)
    h.check_error(t, "emailId with ESC", (st, None, body), 400, ["emailId", "U+001B"])
    st, body = api(port, "user/create", user, tok)
    t.ok(st == 200, "a clean user/create succeeds", body)
    st, body = api(port, "user/update", {"customerName": CUSTOMER, "userName": "jane",
                                         "faceToBeUpdated": "no",
                                         "parametersToBeUpdated": {"fullName": "x\u0007"}}, tok)
    h.check_error(t, "a nested field", (st, None, body), 400, ["parametersToBeUpdated.fullName"])
    st, body = api(port, "searchspace/store", {"customerName": CUSTOMER, "name": "team",
                                               "users": ["jane", "x\u0000"]}, tok)
    h.check_error(t, "a list item", (st, None, body), 400, ["users[1]"])
    with open(os.path.join(photo_dir, "jane.jpg"), "rb") as f:
        wrapped = base64.encodebytes(f.read()).decode()  # MIME style: a newline every 76
    st, body = api(port, "search", {"customerName": CUSTOMER,
                                    "url": "data:image/jpeg;base64," + wrapped}, tok,
                   headers={"Host": "evil.example"})
    t.ok(st == 200, "a data: URI wrapped into base64 lines is still accepted in url", body)
    return body


# ------------------------------------------------------------ links
def test_links(t, srv, tok, search_answer):
    port = srv.port
    t.ok("public_url is not set" in srv.stderr_text(),
         "the start warns that public_url is empty", srv.stderr_text()[-500:])
    mine = "http://127.0.0.1:%d/" % port
    link = search_answer.get("faceOriginal", "") if isinstance(search_answer, dict) else ""
    t.ok(link.startswith(mine + "api/v1/basic/face/"),
         "an image link ignores a forged Host (the address the client reached)", link)
    cases = [("evil.example", mine), ("evil.example:%d" % port, mine),
             ("localhost:%d" % port, "http://localhost:%d/" % port),
             ("faces.example:8443", "http://faces.example:8443/")]
    for host, want in cases:
        st, body = api(port, "user/details", {"customerName": CUSTOMER, "userName": "jane"},
                       tok, headers={"Host": host})
        url = body.get("enrollmentUrl", "") if isinstance(body, dict) else ""
        t.ok(st == 200 and url.startswith(want + "enroll/"),
             "Host %s: enrollmentUrl starts %s" % (host, want), body)


def main():
    args = h.parse_args()
    t = h.Tap()
    world = h.World(args, make_photos, [(CUSTOMER, PASSWORD)])
    srv = h.Server(args.binary, args.models, world.data, CONFIG).start()
    try:
        tok = h.login(srv, CUSTOMER, PASSWORD)
        test_per_ip_limit(t, srv)
        test_trickle(t, srv)
        test_slow_honest_upload(t, srv)
        test_keepalive_idle(t, srv)
        test_health_while_busy(t, srv, tok)
        test_log_escape(t, srv)
        answer = test_json_text(t, srv, tok, world.photo_dir)
        test_links(t, srv, tok, answer)
        t.ok(srv.alive(), "the server is still up after every attack")
    finally:
        h.stop_server(t, srv, "server exits cleanly on SIGTERM (no sanitizer report)")
        world.close()
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
