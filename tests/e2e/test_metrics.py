#!/usr/bin/env python3
"""End to end: GET /metrics of the real server (src/metrics/, src/api/metrics.c).

- Every scrape parses with prometheus_client's text parser AND with the
  strict checks below: each family has exactly one # HELP and one # TYPE,
  before its samples; sample names belong to their family; no sample line
  twice; histogram buckets are cumulative (never decrease as le grows),
  end in le="+Inf" equal to _count; counters are never negative.
- Counters move exactly as requests are made: per route and status code,
  latency histograms, authenticate decisions by precision and result, gate
  refusals, pipeline stages, engine waits, index templates, database size.
- No customer data: the customer's and users' names never appear.
- Access: loopback without a token (200); with metrics_token, 401 without
  "Bearer <token>" or with a wrong one, 200 with it; and, inside a network
  namespace this test makes (unshare -n; its own address on its own
  loopback device, no traffic leaves it), a non-loopback client gets 403
  without a token and 200 with one.
"""
import json
import math
import os
import re
import subprocess
import sys
import time

from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

CUSTOMER, PASSWORD = "metricscorp", "s3cret-metrics"
NETNS_ADDR = "192.0.2.77"  # TEST-NET-1, only ever inside the test's own namespace
FAMILY_SUFFIXES = {"counter": ["_total"], "gauge": [""],
                   "histogram": ["_bucket", "_sum", "_count"]}
SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


# ------------------------------------------------------------ strict parser
def strict_parse(text):
    """{(name, labels-text): value} after the strict checks; raises
    AssertionError naming the first problem."""
    help_seen, type_of, samples, order = {}, {}, {}, []
    assert text.endswith("\n"), "the text must end with a newline"
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            kind, name = line[2:6], line.split(" ")[2]
            seen = help_seen if kind == "HELP" else type_of
            assert name not in seen, "second # %s for %s" % (kind, name)
            assert name not in {fam for _, fam in order}, \
                "# %s of %s after its samples" % (kind, name)
            seen[name] = line.split(" ", 3)[3] if kind == "TYPE" else True
            continue
        assert not line.startswith("#") and line.strip(), "stray line %r" % line
        m = SAMPLE_RE.match(line)
        assert m, "malformed sample line %r" % line
        name, labels, value = m.group(1), m.group(2) or "", float(m.group(3))
        family = family_of(name, type_of)
        assert family in help_seen and family in type_of, "%s has no HELP/TYPE before it" % name
        assert (name, labels) not in samples, "sample twice: %s%s" % (name, labels)
        samples[(name, labels)] = value
        order.append((name, family))
        if type_of[family] == "counter":
            assert value >= 0, "negative counter %s" % line
    assert set(help_seen) == set(type_of), "HELP without TYPE or the reverse"
    check_histograms(samples, type_of)
    return samples


def family_of(name, type_of):
    for fam, kind in type_of.items():
        if any(name == fam + s or (s == "_total" and name == fam)
               for s in FAMILY_SUFFIXES.get(kind, [""])):
            return fam
    raise AssertionError("sample %s belongs to no declared family" % name)


def check_histograms(samples, type_of):
    for fam, kind in type_of.items():
        if kind != "histogram":
            continue
        series = {}
        for (name, labels), v in samples.items():
            if name == fam + "_bucket":
                le = re.search(r'le="([^"]+)"', labels).group(1)
                rest = re.sub(r',?le="[^"]+"', "", labels).replace("{,", "{")
                series.setdefault(rest, []).append((float(le), v))
        assert series, "histogram %s has no buckets" % fam
        for rest, buckets in series.items():
            buckets.sort()
            counts = [c for _, c in buckets]
            assert counts == sorted(counts), "%s%s buckets decrease: %s" % (fam, rest, counts)
            assert math.isinf(buckets[-1][0]), "%s%s has no +Inf bucket" % (fam, rest)
            key = rest if rest not in ("{}", "") else ""
            assert samples.get((fam + "_count", key)) == counts[-1], \
                "%s%s: _count differs from the +Inf bucket" % (fam, rest)
            assert (fam + "_sum", key) in samples, "%s%s has no _sum" % (fam, rest)


def scrape(t, srv, name, **kw):
    """Parse /metrics both ways; {(name, labels): value} (empty on failure)."""
    st, resp, body = srv.request("GET", "/metrics", **kw)
    text = body.decode() if isinstance(body, bytes) else ""
    ok = st == 200 and resp.getheader("Content-Type", "").startswith("text/plain; version=0.0.4")
    try:
        fams = list(text_string_to_metric_families(text))
        samples = strict_parse(text)
        problem = None if fams else "no families"
    except Exception as e:  # noqa: BLE001 - any parser complaint is the failure
        samples, problem = {}, repr(e)
    t.ok(ok and problem is None, name, (st, problem, text[:500]))
    return samples, text


def val(samples, name, **labels):
    """One sample by name and labels (order-insensitive); 0 when absent."""
    for (n, lab), v in samples.items():
        if n != name:
            continue
        got = dict(re.findall(r'([a-zA-Z_]+)="([^"]*)"', lab))
        if got == {k: str(v2) for k, v2 in labels.items()}:
            return v
    return 0


def delta(a, b, name, **labels):
    return val(b, name, **labels) - val(a, name, **labels)


def test_strict_parser(t):
    """The strict checks refuse what they should (so passing them means something)."""
    good = ('# HELP a_total x\n# TYPE a_total counter\na_total 1\n'
            '# HELP h y\n# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\n'
            'h_sum 0.5\nh_count 2\n')
    bad = {
        "decreasing buckets": good.replace('le="1"} 1', 'le="1"} 3'),
        "_count differs from +Inf": good.replace("h_count 2", "h_count 3"),
        "second HELP": good + "# HELP a_total again\n",
        "sample without TYPE": good + "b 1\n",
        "duplicate sample": good + "a_total 1\n",
        "negative counter": good.replace("a_total 1", "a_total -1"),
        "no trailing newline": good.rstrip("\n"),
    }
    try:
        strict_parse(good)
        accepted = True
    except AssertionError:
        accepted = False
    refused = []
    for name, text in bad.items():
        try:
            strict_parse(text)
        except AssertionError:
            refused.append(name)
    t.ok(accepted and len(refused) == len(bad), "the strict parser accepts good text and "
         "refuses each defect", (accepted, set(bad) - set(refused)))


# ---------------------------------------------------------------- photos
def make_photos(args, root):
    det = h.Detector(args.models)
    img_a = h.cv2.imread(os.path.join(args.assets, "sample2.jpg"))
    img_b = h.cv2.imread(os.path.join(args.assets, "sample4.jpg"))
    alice = h.single_face(img_a, det.faces(img_a), 1)
    bob = h.single_face(img_b, det.faces(img_b), 0)
    h.write_jpeg(os.path.join(root, "alice.jpg"), alice)
    h.write_jpeg(os.path.join(root, "alice-aug.jpg"), h.augment(alice))
    h.write_jpeg(os.path.join(root, "bob.jpg"), bob)
    h.write_noface(os.path.join(root, "noface.jpg"))


# ------------------------------------------------------------------ tests
def drive(srv, photos):
    """A known mix of requests; returns the number of each made."""
    tok = h.login(srv, CUSTOMER, PASSWORD)
    for _ in range(3):
        srv.request("GET", "/healthz")
    for path in ("/nope", "/api/v1/basic/nothing"):
        srv.request("GET", path)
    srv.api("user/create", {"customerName": CUSTOMER, "userName": "alice"}, tok)
    srv.api("user/create", {"customerName": CUSTOMER, "userName": "carol"}, tok)
    srv.api("enroll", {"customerName": CUSTOMER, "userName": "alice",
                       "url": photos + "/alice.jpg"}, tok)
    srv.api("enroll", {"customerName": CUSTOMER, "userName": "carol",
                       "url": photos + "/noface.jpg"}, tok)
    ok = srv.api("authenticate", {"customerName": CUSTOMER, "userName": "alice",
                                  "precision": "high", "url": photos + "/alice-aug.jpg"}, tok)
    bad = srv.api("authenticate", {"customerName": CUSTOMER, "userName": "alice",
                                   "precision": "low", "url": photos + "/bob.jpg"}, tok)
    return ok[0], bad[0]


def test_counters(t, args, srv, photos):
    before, _ = scrape(t, srv, "first scrape parses strictly and with prometheus_client")
    st_ok, st_bad = drive(srv, photos)
    t.ok(st_ok == 200 and st_bad == 400, "the driven authenticates succeed and fail",
         (st_ok, st_bad))
    after, text = scrape(t, srv, "second scrape parses strictly and with prometheus_client")
    req = "faceauth_http_requests_total"
    t.ok(delta(before, after, req, method="GET", endpoint="/healthz", code=200) == 3,
         "three /healthz requests count 3 under their route and 200")
    t.ok(delta(before, after, req, method="other", endpoint="other", code=404) == 2,
         "two unrouted paths count under one 'other' label, not their own")
    t.ok(delta(before, after, req, method="POST", endpoint="/api/v1/basic/authenticate",
               code=200) == 1 and
         delta(before, after, req, method="POST", endpoint="/api/v1/basic/authenticate",
               code=400) == 1,
         "authenticate: one 200 and one 400")
    t.ok(delta(before, after, req, method="GET", endpoint="/metrics", code=200) == 1,
         "the first scrape itself is counted by the second")
    lat = "faceauth_http_request_duration_seconds_count"
    t.ok(delta(before, after, lat, method="GET", endpoint="/healthz") == 3 and
         delta(before, after, "faceauth_http_request_duration_seconds_sum",
               method="POST", endpoint="/api/v1/basic/enroll") > 0,
         "latency histograms count the requests and add up their time")
    dec = "faceauth_auth_decisions_total"
    t.ok(delta(before, after, dec, precision="high", result="success") == 1 and
         delta(before, after, dec, precision="low", result="failure") == 1 and
         delta(before, after, dec, precision="high", result="failure") == 0,
         "decisions by precision and result")
    t.ok(delta(before, after, "faceauth_gate_refusals_total", purpose="enroll",
               gate="noface") == 1,
         "the no-face enrollment counts as a gate refusal")
    stages = {s: delta(before, after, "faceauth_stage_seconds_count", stage=s)
              for s in ("fetch", "decode", "detect", "embed")}
    t.ok(stages["fetch"] == 4 and stages["decode"] >= 4 and stages["detect"] >= 4 and
         stages["embed"] == 3, "stage counts: 4 fetches, >= 4 decodes and detections, "
         "3 embeddings (the no-face photo is never embedded)", stages)
    t.ok(delta(before, after, "faceauth_engine_wait_seconds_count") == 4 and
         val(after, "faceauth_engines") == 2 and val(after, "faceauth_engines_busy") == 0,
         "one engine wait per photo; 2 engines, none busy at rest")
    t.ok(val(after, "faceauth_index_templates") == 1 and
         (h.two_nodes() or val(after, "faceauth_database_bytes") > 10000),
         "one template in the index; the database size in bytes",
         (val(after, "faceauth_index_templates"), val(after, "faceauth_database_bytes")))
    version = subprocess.run([args.binary, "--version"], capture_output=True,
                             text=True).stdout.split()[-1]
    t.ok(val(after, "faceauth_build_info", version=version) == 1,
         "build info names the binary's version %s" % version)
    t.ok(all(("faceauth_callbacks_" + n, "") in after
             for n in ("sent_total", "retried_total", "dead_total", "queued")),
         "the callback metrics are there")
    test_callbacks(t, srv, photos)
    t.ok(not any(w in text for w in (CUSTOMER, "alice", "carol", "bob", "dave")),
         "no customer or user name in the scrape")


def test_callbacks(t, srv, photos):
    """The callback counters come from the delivery thread: an accepted
    enrollment with a callback URL (the photo server, which refuses POST)
    shows up as queued, retried, dead or sent within a few seconds."""
    tok = h.login(srv, CUSTOMER, PASSWORD)
    srv.api("settings/update", {"customerName": CUSTOMER,
                                "enrollmentAcceptedCallbackurl": photos + "/callback"}, tok)
    srv.api("user/create", {"customerName": CUSTOMER, "userName": "dave"}, tok)
    st, _, _ = srv.api("enroll", {"customerName": CUSTOMER, "userName": "dave",
                                  "url": photos + "/alice.jpg"}, tok)
    total, deadline = 0, time.time() + 20
    while total == 0 and time.time() < deadline:
        time.sleep(0.5)
        _, _, body = srv.request("GET", "/metrics")
        text = body.decode() if isinstance(body, bytes) else ""
        total = sum(float(m.group(1)) for m in re.finditer(
            r"^faceauth_callbacks_(?:sent_total|retried_total|dead_total|queued) (\S+)$",
            text, re.M))
    t.ok(st == 200 and total >= 1, "an enrollment callback moves the callback metrics", total)


def test_token(t, args, data):
    srv = h.Server(args.binary, args.models, data,
                   ["metrics_token = tok-123456", "engines = 1"]).start()
    try:
        h.check_error(t, "token set, no Authorization", srv.request("GET", "/metrics"), 401,
                      ["Bearer"])
        h.check_error(t, "token set, wrong token",
                      srv.request("GET", "/metrics", token="Bearer tok-999999"), 401, ["wrong"])
        h.check_error(t, "token set, the token without 'Bearer '",
                      srv.request("GET", "/metrics", token="tok-123456"), 401, ["Bearer"])
        scrape(t, srv, "token set: 'Bearer <token>' scrapes", token="Bearer tok-123456")
    finally:
        h.stop_server(t, srv, "token server exits cleanly")


# ------------------------------------------ a non-loopback client (netns)
def netns_child(args, data):
    """Inside the namespace: our own address on lo, a server on it, and one
    client connecting from it. Prints a JSON summary."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["ip", "addr", "add", NETNS_ADDR + "/32", "dev", "lo"], check=True)
    out = {}
    for name, lines in (("open", []), ("token", ["metrics_token = tok-abcdef"])):
        srv = h.Server(args.binary, args.models, data, lines + ["engines = 1"])
        start_on(srv, NETNS_ADDR)
        try:
            st, _, body = request_on(srv, NETNS_ADDR, None)
            st2, _, _ = request_on(srv, NETNS_ADDR, "Bearer tok-abcdef")
            out[name] = [st, body if isinstance(body, dict) else None, st2]
        finally:
            out[name].append(srv.stop())
    print(json.dumps(out))


def start_on(srv, addr):
    """Server.start, listening on addr instead of 127.0.0.1."""
    srv.stderr = open(srv.stderr_path, "w")
    srv.proc = subprocess.Popen(
        [srv.binary, "serve", "--config", srv.conf, "--data", srv.data, "--models", srv.models,
         "--port", "0", "--listen", addr], stdout=subprocess.PIPE, stderr=srv.stderr, text=True)
    line = srv.proc.stdout.readline()
    srv.port = int(line.split("listening on http://")[1].split()[0].rsplit(":", 1)[1])
    h.threading.Thread(target=srv._drain, daemon=True).start()


def request_on(srv, addr, auth):
    conn = h.http.client.HTTPConnection(addr, srv.port, timeout=30,
                                        source_address=(addr, 0))
    try:
        conn.request("GET", "/metrics", headers={"Authorization": auth} if auth else {})
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    try:
        body = json.loads(body)
    except ValueError:
        pass
    return resp.status, resp, body


def test_non_loopback(t, args, data):
    if h.skip_in_two_nodes(t, "a non-loopback client without the token",
                           "the server runs in a network namespace of its own, where the "
                           "PostgreSQL on the host's loopback cannot be reached"):
        return
    if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0:
        print("ok %d - # SKIP no network namespaces here (needs root)" % (t.n + 1))
        t.n += 1
        return
    p = subprocess.run(["unshare", "-n", sys.executable, os.path.abspath(__file__),
                        "--binary", args.binary, "--models", args.models,
                        "--assets", args.assets, "--netns-child", data],
                       capture_output=True, text=True, timeout=300)
    try:
        out = json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        out = {}
    opened, tokened = out.get("open", [0, None, 0, 1]), out.get("token", [0, None, 0, 1])
    msg = ((opened[1] or {}).get("error") or {}).get("message", "")
    t.ok(opened[0] == 403 and "loopback" in msg and opened[2] == 403,
         "no token: a non-loopback client gets 403 naming loopback and metrics_token",
         (out, p.stderr[-2000:]))
    t.ok(tokened[0] == 401 and tokened[2] == 200,
         "with metrics_token: a non-loopback client gets 401 without it, 200 with it", out)
    t.ok(opened[3] == 0 and tokened[3] == 0, "the namespace's servers exit cleanly", out)


def main():
    if "--netns-child" in sys.argv:
        i = sys.argv.index("--netns-child")
        data = sys.argv[i + 1]
        del sys.argv[i:i + 2]
        netns_child(h.parse_args(), data)
        return 0
    args = h.parse_args()
    t = h.Tap()
    test_strict_parser(t)
    world = h.World(args, make_photos, [(CUSTOMER, PASSWORD)])
    srv = h.Server(args.binary, args.models, world.data,
                   ["allow_private_urls = yes", "engines = 2"]).start()
    srv.pin("metrics are per node: each counts the requests it served")
    try:
        test_counters(t, args, srv, world.photos)
    finally:
        h.stop_server(t, srv, "server exits cleanly")
    try:
        test_token(t, args, world.data)
        test_non_loopback(t, args, world.data)
    finally:
        world.close()
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
