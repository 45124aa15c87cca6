"""harness.py - what the end-to-end tests share.

Real parts only: the built faceauth binary on a free loopback port with a
temporary data directory, a real static HTTP server for the test photos, and
real HTTP requests (http.client). Test photos are made from the six demo
photos fetched by scripts/setup; faces are found with the project's own
detector model through OpenCV's Python binding, so the tests need nothing
that a user's machine lacks.
"""
import argparse
import http.client
import http.server
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

import cv2
import numpy as np

import pgmode


# ---------------------------------------------------------------- TAP output
class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, name, detail=None):
        self.n += 1
        if not cond:
            self.failed += 1
        print(("ok" if cond else "not ok") + " %d - %s" % (self.n, name))
        if not cond and detail is not None:
            for line in str(detail).splitlines()[:20]:
                print("#   " + line)
        sys.stdout.flush()
        return cond

    def done(self):
        print("1..%d" % self.n)
        if self.failed:
            print("# %d of %d checks failed" % (self.failed, self.n))
        return 1 if self.failed else 0


def parse_args():
    """The test's arguments. --pg (or FA_E2E_DATABASE set) runs the test on
    two nodes sharing one PostgreSQL (pgmode.py), on the cluster whose admin
    URL FA_PG_URL holds (scripts/test starts one); without it the test is
    skipped (exit 77), saying so. From here on args.binary is then
    pgnode.py, which gives each data folder its database."""
    p = argparse.ArgumentParser()
    p.add_argument("--binary", required=True)
    p.add_argument("--models", required=True)
    p.add_argument("--assets", required=True)
    p.add_argument("--pg", action="store_true")
    args = p.parse_args()
    args.real_binary = args.binary  # the built faceauth (its folder holds test output)
    if args.pg and not pgmode.enabled():
        if not os.environ.get("FA_PG_URL"):
            print("1..0 # SKIP %s: FA_PG_URL is not set (scripts/test starts a cluster)"
                  % TWO_NODES)
            sys.exit(77)
        os.environ[pgmode.ADMIN_ENV] = os.environ["FA_PG_URL"]
    if pgmode.enabled():
        os.environ[pgmode.REAL_BINARY_ENV] = os.path.abspath(args.binary)
        args.binary = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pgnode.py")
    return args


TWO_NODES = "two nodes on one PostgreSQL"


def two_nodes():
    """1 when this run is the two-node PostgreSQL mode (after parse_args)."""
    return pgmode.enabled()


def single_node_only(reason):
    """In two-node mode, a test that only makes sense on one node with its
    SQLite file says why and stops: exit 77, which CTest shows as skipped.
    A no-op otherwise."""
    if two_nodes():
        print("1..0 # SKIP %s: %s" % (TWO_NODES, reason))
        sys.stdout.flush()
        sys.exit(77)


def skip_in_two_nodes(t, name, reason):
    """1 when the part `name` of a test must be skipped in two-node mode
    (printed as a TAP skip with the reason)."""
    if not two_nodes():
        return 0
    t.n += 1
    print("ok %d - %s # SKIP %s: %s" % (t.n, name, TWO_NODES, reason))
    sys.stdout.flush()
    return 1


# ---------------------------------------------------------- static server
class StaticHandler(http.server.BaseHTTPRequestHandler):
    """Serves files from the test folder, plus a few misbehaving routes."""

    root = None

    def log_message(self, *args):
        pass

    def do_GET(self):
        path = urllib.parse.urlparse(self.path).path
        if path == "/slow":
            time.sleep(6)
            return self._send(200, "image/jpeg", b"\xff\xd8\xff" + b"0" * 100)
        if path == "/text":
            return self._send(200, "text/html", b"<html><body>not an image</body></html>")
        if path.startswith("/redirect-to/"):
            self.send_response(302)
            self.send_header("Location", "/" + path[len("/redirect-to/"):])
            self.end_headers()
            return None
        full = os.path.join(self.root, os.path.basename(path))
        if not os.path.isfile(full):
            return self._send(404, "text/plain", b"not found")
        with open(full, "rb") as f:
            return self._send(200, "image/jpeg", f.read())

    def _send(self, status, ctype, body):
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass


def start_local_server(handler_class, **attrs):
    """A threaded HTTP server on a free loopback port, serving handler_class
    with attrs set on a subclass of it: (server, "http://127.0.0.1:PORT")."""
    handler = type("Handler", (handler_class,), attrs)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, "http://127.0.0.1:%d" % srv.server_address[1]


def start_static_server(root):
    return start_local_server(StaticHandler, root=root)


# ------------------------------------------------------------ faceauth server
class Node:
    """The faceauth binary serving on a free port with the given config."""

    def __init__(self, binary, models, data, config_lines):
        self.binary = binary
        self.models = models
        self.data = data
        self.conf = os.path.join(data, "test-%d.conf" % int(time.time() * 1e6))
        with open(self.conf, "w") as f:
            f.write("\n".join(config_lines) + "\n")
        self.proc = None
        self.port = None
        self.stderr_path = self.conf + ".stderr"

    def has_config_line(self, key):
        with open(self.conf) as f:
            return any(ln.split("=", 1)[0].strip() == key for ln in f.read().splitlines())

    def set_config_line(self, key, value):
        """Set key in the config file (replacing a line that sets it)."""
        with open(self.conf) as f:
            lines = [ln for ln in f.read().splitlines()
                     if ln.split("=", 1)[0].strip() != key]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines + ["%s = %s" % (key, value)]) + "\n")

    def start(self, log_lines=None):
        """Start and wait for "listening on"; the access log lines go to
        log_lines (a new list when None)."""
        self.stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--config", self.conf, "--data", self.data,
             "--models", self.models, "--port", "0", "--listen", "127.0.0.1"],
            stdout=subprocess.PIPE, stderr=self.stderr, text=True)
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            raise RuntimeError("server did not start: %r %s" % (line, self.stderr_text()))
        self.port = int(line.split("listening on http://")[1].split()[0].rsplit(":", 1)[1])
        # Drain the access log so the pipe never fills up and blocks the server.
        self.log_lines = log_lines if log_lines is not None else []
        threading.Thread(target=self._drain, daemon=True).start()
        return self

    def _drain(self):
        for line in self.proc.stdout:
            self.log_lines.append(line)

    def stderr_text(self):
        with open(self.stderr_path) as f:
            return f.read()

    def stop(self, timeout=60):
        """SIGTERM; returns the exit code (ASan makes leaks a non-zero exit)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return "hung"

    def alive(self):
        return self.proc.poll() is None

    def request(self, method, path, body=None, token=None, headers=None, raw=None, timeout=60):
        """One request on a fresh connection: (status, headers, parsed JSON or bytes)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        hdrs = dict(headers or {})
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            hdrs.setdefault("Content-Type", "application/json")
        if token is not None:
            hdrs["Authorization"] = token
        try:
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            payload = resp.read()
        finally:
            conn.close()
        ctype = resp.getheader("Content-Type", "")
        if ctype.startswith("application/json"):
            try:
                payload = json.loads(payload)
            except ValueError:
                pass
        return resp.status, resp, payload

    def post_headers_only(self, path, content_length, token):
        """Announce a large body with Expect: 100-continue and read the answer
        without sending it, as curl does for big uploads."""
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        try:
            sock.sendall(("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: %s\r\n"
                          "Content-Type: application/json\r\nContent-Length: %d\r\n"
                          "Expect: 100-continue\r\n\r\n" % (path, token, content_length)).encode())
            resp = http.client.HTTPResponse(sock)
            resp.begin()
            payload = resp.read()
        finally:
            sock.close()
        try:
            payload = json.loads(payload)
        except ValueError:
            pass
        return resp.status, resp, payload

    def api(self, endpoint, body, token=None, **kw):
        return self.request("POST", "/api/v1/basic/" + endpoint, body=body, token=token, **kw)


class Server(Node):
    """What a test calls the server. On its own (SQLite, the default) one
    Node. In two-node mode (pgmode.py) a second node, `peer`, runs beside it
    with its own data folder <data>-node2 and the same database, and
    request() goes to the two in turn, so every exchange of a test crosses
    nodes: a user enrolled on one is searched on the other, a link handed out
    by one is fetched from the other. port stays the first node's (for the
    tests that open raw sockets); log_lines and stderr_text() hold both."""

    def __init__(self, binary, models, data, config_lines):
        Node.__init__(self, binary, models, data, config_lines)
        self.peer = None
        self.turn = 0
        self.turn_lock = threading.Lock()
        self.pinned = False
        if two_nodes():
            peer_data = data.rstrip("/") + "-node2"
            pgmode.share_database(peer_data, pgmode.database_for(data))
            self.peer = Node(binary, models, peer_data, config_lines)

    def start(self, log_lines=None):
        Node.start(self, log_lines)
        if self.peer is not None:
            # One address for clients, as behind a load balancer: node B's
            # links name node A's, so a link is the same whichever node
            # answered (and is served by both).
            if not self.peer.has_config_line("public_url"):
                self.peer.set_config_line("public_url", "http://127.0.0.1:%d" % self.port)
            try:
                self.peer.start(self.log_lines)
            except RuntimeError:
                Node.stop(self)
                raise
        return self

    def nodes(self):
        return [self] if self.peer is None else [self, self.peer]

    def pin(self, reason):
        """Send every request to the first node from now on, for a part of a
        test about one node's own state (its metrics, its per-node limits);
        in two-node mode the reason is printed."""
        if self.peer is not None:
            print("# %s: requests go to one node here: %s" % (TWO_NODES, reason))
        self.pinned = True

    def unpin(self):
        self.pinned = False

    def next_node(self):
        """The node the next request goes to (alternating in two-node mode)."""
        if self.peer is None or self.pinned:
            return self
        with self.turn_lock:
            self.turn ^= 1
            return self.peer if self.turn == 0 else self

    def request(self, *a, **kw):
        return Node.request(self.next_node(), *a, **kw)

    def stop(self, timeout=60):
        """Stop every node; the first bad exit code (or None/"hung") wins."""
        codes = [Node.stop(n, timeout) for n in self.nodes()]
        return next((c for c in codes if c != 0), codes[0])

    def alive(self):
        return all(Node.alive(n) for n in self.nodes())

    def stderr_text(self):
        return "".join(Node.stderr_text(n) for n in self.nodes())


def db_exec(data, sql):
    """Run one SQL statement on the database of the data folder: its SQLite
    file, or its PostgreSQL database in two-node mode (the tests that reach
    past the API, e.g. to age a link, use the SQL both engines read)."""
    if two_nodes():
        pgmode.psql(pgmode.database_for(data), sql)
        return
    with sqlite3.connect(os.path.join(data, "faceauth.db")) as db:
        db.execute(sql)


def stored_image_ids(data):
    """The ids of every stored photo: the files under data/images/, or in
    two-node mode the rows of the database's image_data table."""
    if two_nodes():
        out = pgmode.psql(pgmode.database_for(data),
                          "COPY (SELECT image_id FROM image_data) TO STDOUT")
        return {line.strip() for line in out.splitlines() if line.strip()}
    out = set()
    for folder, _, files in os.walk(os.path.join(data, "images")):
        out |= {name.split(".")[0] for name in files}
    return out


def add_customer(binary, data, name, password):
    r = subprocess.run([binary, "customer", "add", name, "--data", data],
                       input=password + "\n", text=True, capture_output=True)
    if r.returncode != 0:
        raise RuntimeError("customer add failed: " + r.stderr)


def login(srv, customer, password):
    """The customer's access token, or None when the login failed."""
    st, _, body = srv.api("login", {"customerName": customer, "password": password})
    return body.get("accessToken") if st == 200 and isinstance(body, dict) else None


def stop_server(t, srv, name, tail=3000):
    """SIGTERM srv and check it exits with 0 (a sanitizer report or a leak
    makes it non-zero), showing the end of its stderr when not."""
    code = srv.stop()
    t.ok(code == 0, name, (code, srv.stderr_text()[-tail:]))


# ------------------------------------------------------------- answers
def err_of(body):
    """The "error" object of an answer's body ({} when there is none)."""
    e = body.get("error") if isinstance(body, dict) else None
    return e if isinstance(e, dict) else {}


def check_error(t, name, got, status, words):
    """A refused request: HTTP status, error.status the same, and every word
    (case-insensitive) in the message. got is what Server.request returns."""
    code, _, body = got
    msg = err_of(body).get("message", "")
    good = code == status and err_of(body).get("status") == str(status) and \
        all(w.lower() in msg.lower() for w in words)
    t.ok(good, "%s -> %d naming %s" % (name, status, words), (code, body))


def check_refused(t, name, got, words, **fields):
    """A failed operation: HTTP 400, error.status "422", the words, the fields."""
    code, _, body = got
    err = err_of(body)
    msg = err.get("message", "")
    good = code == 400 and err.get("status") == "422" and \
        all(w.lower() in msg.lower() for w in words) and \
        all(err.get(k) == v for k, v in fields.items())
    t.ok(good, "%s -> 400/422 naming %s" % (name, words), (code, body))


# ------------------------------------------------------------- the set-up
class World:
    """A temporary folder with photos/ (made by make_photos(args, folder))
    served by a static HTTP server at .photos, and data/ holding the given
    customers, [(name, password)]. close() stops the server and removes it all."""

    def __init__(self, args, make_photos, customers):
        self.work = temp_dir()
        self.photo_dir = os.path.join(self.work, "photos")
        self.data = os.path.join(self.work, "data")
        os.makedirs(self.photo_dir)
        make_photos(args, self.photo_dir)
        self.static, self.photos = start_static_server(self.photo_dir)
        for name, password in customers:
            add_customer(args.binary, self.data, name, password)

    def close(self):
        self.static.shutdown()
        cleanup(self.work)


# ------------------------------------------------------------- test photos
class Detector:
    """fr_detect.onnx run as MODELS.md describes, for making test photos."""

    def __init__(self, models):
        self.net = cv2.dnn.readNetFromONNX(os.path.join(models, "fr_detect.onnx"))

    def faces(self, img):
        h, w = img.shape[:2]
        blob = cv2.dnn.blobFromImage(img, 1 / 128.0, (320, 240), (127, 127, 127), swapRB=True)
        self.net.setInput(blob)
        boxes, scores = self.net.forward(["boxes", "scores"])
        boxes, scores = boxes[0], scores[0][:, 1]
        keep = scores >= 0.65
        rects = [[float(b[0] * w), float(b[1] * h), float((b[2] - b[0]) * w),
                  float((b[3] - b[1]) * h)] for b in boxes[keep]]
        idx = cv2.dnn.NMSBoxes(rects, [float(s) for s in scores[keep]], 0.65, 0.4)
        found = [rects[i] for i in np.array(idx).flatten()]
        return sorted(found, key=lambda r: -r[2] * r[3])


def single_face(img, faces, i):
    """The image with every face but faces[i] blacked out, cropped around it."""
    out = img.copy()
    for j, (x, y, w, h) in enumerate(faces):
        if j != i:
            cv2.rectangle(out, (int(x - 0.3 * w), int(y - 0.3 * h)),
                          (int(x + 1.3 * w), int(y + 1.3 * h)), (0, 0, 0), -1)
    x, y, w, h = faces[i]
    x0, y0 = max(0, int(x - w)), max(0, int(y - h))
    x1, y1 = min(img.shape[1], int(x + 2 * w)), min(img.shape[0], int(y + 2 * h))
    return out[y0:y1, x0:x1]


def cut_faces(args, root, people):
    """Per person {name: (demo picture, face index by size)}: <name>.jpg, the
    face cut out, and <name>-aug.jpg, the same face re-encoded. Returns the
    faces by name."""
    det = Detector(args.models)
    faces = {}
    for name, (sample, i) in people.items():
        img = cv2.imread(os.path.join(args.assets, sample))
        faces[name] = single_face(img, det.faces(img), i)
        write_jpeg(os.path.join(root, name + ".jpg"), faces[name])
        write_jpeg(os.path.join(root, name + "-aug.jpg"), augment(faces[name]))
    return faces


def write_noface(path):
    """A grey gradient with no face in it."""
    gradient = np.tile(np.linspace(0, 255, 400, dtype=np.uint8), (300, 1))
    write_jpeg(path, cv2.merge([gradient] * 3))


def augment(img):
    """The same face re-encoded: 60% scale, brighter, JPEG quality 60."""
    small = cv2.resize(img, None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA)
    bright = cv2.convertScaleAbs(small, alpha=1.0, beta=25)
    ok, enc = cv2.imencode(".jpg", bright, [cv2.IMWRITE_JPEG_QUALITY, 60])
    return cv2.imdecode(enc, cv2.IMREAD_COLOR)


def write_jpeg(path, img, quality=92):
    cv2.imwrite(path, img, [cv2.IMWRITE_JPEG_QUALITY, quality])


def temp_dir():
    d = tempfile.mkdtemp(prefix="faceauth-e2e-")
    return d


def cleanup(path):
    if two_nodes():
        pgmode.drop_databases_under(path)
    shutil.rmtree(path, ignore_errors=True)
