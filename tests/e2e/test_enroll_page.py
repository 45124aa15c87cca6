#!/usr/bin/env python3
"""The enrollment page (GET/POST /enroll/<token>) in a real browser.

Debian's chromium, driven by chromedriver through python3-selenium, runs
headless with a fake camera that plays a video made here from a demo photo
(a .y4m of sample3.jpg's largest face). The page is opened at the
enrollmentUrl that user/create handed out, asks for the camera, takes its
three photos and posts them; the user must then be enrolled with three
templates and authenticate with another photo of the same person. A second
browser gets a darkened feed: the page must say the face is too dark and the
user stays unenrolled, then the file-upload fallback enrolls. Bad links, a
used link, an expired link, oversized and mistyped uploads and too many
attempts are checked over plain HTTP: clear answers, nothing stored.

Screenshots (phone and desktop size) go to <build>/screenshots/.
"""
import base64
import json
import os
import secrets
import sys
import tempfile
import time

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
PHONE = (390, 844)
DESKTOP = (1280, 900)
MAX_PAGE_BYTES = 1 << 20
ATTEMPTS = 3


# ------------------------------------------------------------- test media
def frame_of(face, dx=0, w=640, hgt=480):
    """The face centred on a grey 640x480 frame, shifted dx pixels."""
    k = min(w / face.shape[1], hgt / face.shape[0]) * 0.95
    small = cv2.resize(face, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
    out = np.full((hgt, w, 3), 128, np.uint8)
    y = (hgt - small.shape[0]) // 2
    x = (w - small.shape[1]) // 2 + dx
    out[y:y + small.shape[0], x:x + small.shape[1]] = small
    return out


def write_y4m(path, frames, fps=10):
    """A YUV4MPEG2 file (I420) that Chrome's fake camera plays in a loop."""
    hgt, w = frames[0].shape[:2]
    with open(path, "wb") as f:
        f.write(b"YUV4MPEG2 W%d H%d F%d:1 Ip A1:1 C420jpeg\n" % (w, hgt, fps))
        for fr in frames:
            f.write(b"FRAME\n")
            f.write(cv2.cvtColor(fr, cv2.COLOR_BGR2YUV_I420).tobytes())


def make_photos(args, root):
    det = h.Detector(args.models)
    img = cv2.imread(os.path.join(args.assets, "sample3.jpg"))
    face = h.single_face(img, det.faces(img), 0)
    # The head "moves" a little between frames, as the page asks.
    frames = [frame_of(face, dx) for dx in (0, 4, 8, 12, 8, 4, 0, -4, -8, -4)]
    write_y4m(os.path.join(root, "good.y4m"), frames)
    write_y4m(os.path.join(root, "dark.y4m"),
              [cv2.convertScaleAbs(f, alpha=0.2, beta=0) for f in frames])
    h.write_jpeg(os.path.join(root, "upload-1.jpg"), frames[0])
    h.write_jpeg(os.path.join(root, "upload-2.jpg"), h.augment(frames[3]))
    h.write_jpeg(os.path.join(root, "upload-3.jpg"), frames[8])
    # Another photo of her: the right side of sample1.jpg (README walk-through).
    h.write_jpeg(os.path.join(root, "again.jpg"),
                 cv2.imread(os.path.join(args.assets, "sample1.jpg"))[:, 1300:])
    h.write_noface(os.path.join(root, "noface.jpg"))
    # Someone else (README walk-through, step 6).
    h.write_jpeg(os.path.join(root, "someone-else.jpg"),
                 cv2.imread(os.path.join(args.assets, "sample4.jpg"))[0:500, 500:1000])


def data_uri(path):
    with open(path, "rb") as f:
        return "data:image/jpeg;base64," + base64.b64encode(f.read()).decode()


# ------------------------------------------------------------- the API side
class Api:
    def __init__(self, srv, token):
        self.srv, self.token = srv, token
        self.urls = []  # every enrollment link handed out, for the log check

    def call(self, endpoint, body):
        body = dict(body, customerName="acme")
        got = self.srv.api(endpoint, body, token=self.token)
        for key in ("enrollmentUrl", "reEnrollmentUrl"):
            if isinstance(got[2], dict) and got[2].get(key):
                self.urls.append(got[2][key])
        return got

    def create(self, name):
        st, _, body = self.call("user/create", {"userName": name})
        assert st == 200, body
        return body["enrollmentUrl"]

    def status(self, url):
        return self.call("status/enroll/user", {"enrollmentUrl": url})[2]

    def details(self, name):
        return self.call("user/details", {"userName": name})[2]

    def log_count(self):
        st, _, body = self.call("view/logs/all", {"pageNumber": 1, "pageCount": 1})
        return body.get("totalLogCount") if st == 200 else None


def page_path(url):
    return "/enroll/" + url.rsplit("/enroll/", 1)[1]


# ------------------------------------------------------------- the browser
class Browser:
    """Headless chromium with a fake camera playing video; its profile
    folder is removed on close."""

    def __init__(self, video=None):
        self.profile = tempfile.mkdtemp(prefix="faceauth-chromium-")
        self.driver = None
        try:
            self.driver = start_driver(video, self.profile)
        except Exception:
            h.cleanup(self.profile)
            raise

    def __enter__(self):
        return self.driver

    def __exit__(self, *exc):
        self.driver.quit()
        h.cleanup(self.profile)


def start_driver(video, profile):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    flags = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--disable-quic", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--user-data-dir=" + profile]
    if video is not None:  # else the machine's cameras: none in CI
        flags += ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                  "--use-file-for-fake-video-capture=" + video]
    for a in flags:
        opts.add_argument(a)
    d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    d.set_window_size(*DESKTOP)
    return d


def state(d):
    return d.find_element("tag name", "body").get_attribute("data-state")


def wait_state(d, wanted, timeout=60):
    """Wait until the page's data-state is one of wanted; returns it (or the last seen)."""
    end = time.time() + timeout
    seen = None
    while time.time() < end:
        seen = state(d)
        if seen in wanted:
            return seen
        time.sleep(0.2)
    return seen


def text_of(d, elem_id):
    return d.find_element("id", elem_id).text


def start_camera(t, d, url, name):
    d.get(url)
    t.ok(wait_state(d, ("ready",), 20) == "ready", name + ": the page loads", d.page_source[:500])
    d.find_element("id", "start").click()
    got = wait_state(d, ("camera", "no-camera"), 20)
    playing = d.execute_script(
        "var v = document.getElementById('preview'); return v.readyState >= 2 && v.videoWidth > 0;")
    t.ok(got == "camera" and playing, name + ": the camera preview runs",
         (got, text_of(d, "status")))


def shot(d, folder, name, size):
    d.set_window_size(*size)
    time.sleep(0.5)
    d.save_screenshot(os.path.join(folder, name))


def test_camera_enrolls(t, api, world, shots_dir):
    url = api.create("cam.ok")
    t.ok(url.startswith("http://127.0.0.1:"), "enrollmentUrl is on 127.0.0.1 (secure context)", url)
    with Browser(os.path.join(world.photo_dir, "good.y4m")) as d:
        start_camera(t, d, url, "camera")
        shot(d, shots_dir, "enroll-desktop.png", DESKTOP)
        shot(d, shots_dir, "enroll-phone.png", PHONE)
        d.find_element("id", "capture").click()
        got = wait_state(d, ("enrolled", "refused"), 60)
        t.ok(got == "enrolled", "camera: the page takes three photos and enrolls",
             (got, text_of(d, "status"), text_of(d, "details-text")))
        t.ok("enrolled" in text_of(d, "status"), "camera: the page says so",
             text_of(d, "status"))
        t.ok(len(d.find_elements("css selector", "#shots img")) == 3,
             "camera: the three photos are shown")
        shot(d, shots_dir, "enroll-done-phone.png", PHONE)
    st = api.status(url)
    t.ok(st.get("enrollmentStatus") == "success" and st.get("templateCount") == 3,
         "status/enroll/user: success with templateCount 3", st)
    det = api.details("cam.ok")
    t.ok(det.get("enrollmentStatus") == "success" and det.get("templateCount") == 3,
         "user/details: success with templateCount 3", det)
    code, _, auth = api.call("authenticate", {"username": "cam.ok", "precision": "high",
                                              "url": data_uri(os.path.join(world.photo_dir,
                                                                           "again.jpg"))})
    t.ok(code == 200 and auth.get("authenticationStatus") == "success",
         "another photo of her authenticates after the page enrolled her", (code, auth))
    return url


def test_dark_then_files(t, api, world, shots_dir):
    url = api.create("cam.dark")
    with Browser(os.path.join(world.photo_dir, "dark.y4m")) as d:
        start_camera(t, d, url, "dark camera")
        d.find_element("id", "capture").click()
        got = wait_state(d, ("enrolled", "refused"), 60)
        said = text_of(d, "status")
        t.ok(got == "refused" and "too dark" in said and "move towards a light" in said,
             "dark camera: the page gives the reason in words", (got, said))
        t.ok(d.find_element("id", "retry").is_displayed(), "dark camera: the page offers a retry")
        shot(d, shots_dir, "enroll-refused-desktop.png", DESKTOP)
        st = api.status(url)
        t.ok(st.get("enrollmentStatus") in ("draft", "failure") and st.get("templateCount") == 0,
             "dark camera: the user is not enrolled", st)
        files = [os.path.join(world.photo_dir, n) for n in ("upload-1.jpg", "someone-else.jpg")]
        d.find_element("id", "files").send_keys("\n".join(files))
        d.find_element("id", "send-files").click()
        got = wait_state(d, ("enrolled", "refused"), 60)
        said = text_of(d, "status")
        t.ok(got == "refused" and "Photo 2 does not look like photo 1" in said,
             "file fallback: a set of two people is refused, naming the photo", (got, said))
        d.find_element("id", "files").clear()
        files = [os.path.join(world.photo_dir, "upload-%d.jpg" % i) for i in (1, 2, 3)]
        d.find_element("id", "files").send_keys("\n".join(files))
        d.find_element("id", "send-files").click()
        got = wait_state(d, ("enrolled", "refused"), 60)
        t.ok(got == "enrolled", "file fallback: three chosen photos enroll",
             (got, text_of(d, "status"), text_of(d, "details-text")))
    st = api.status(url)
    t.ok(st.get("enrollmentStatus") == "success" and st.get("templateCount") == 3,
         "file fallback: status/enroll/user success with templateCount 3", st)


def test_no_camera(t, api, world):
    url = api.create("no.camera")
    with Browser() as d:
        d.set_window_size(*PHONE)
        d.get(url)
        wait_state(d, ("ready",), 20)
        d.find_element("id", "start").click()
        got = wait_state(d, ("camera", "no-camera"), 20)
        said = text_of(d, "status")
        t.ok(got == "no-camera" and "choose photos below" in said,
             "no camera: the page says so and offers the file choice", (got, said))
        d.find_element("id", "files").send_keys(os.path.join(world.photo_dir, "upload-1.jpg"))
        d.find_element("id", "send-files").click()
        got = wait_state(d, ("enrolled", "refused"), 60)
        t.ok(got == "enrolled", "no camera: one chosen photo enrolls", (got, text_of(d, "status")))
    st = api.status(url)
    t.ok(st.get("enrollmentStatus") == "success" and st.get("templateCount") == 1,
         "no camera: status/enroll/user success with templateCount 1", st)


# ------------------------------------------------------------- plain HTTP
def post(srv, path, body, ctype="application/json"):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return srv.request("POST", path, raw=raw, headers={"Content-Type": ctype})


def check_html(t, name, got, status, words):
    code, resp, body = got
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    t.ok(code == status and resp.getheader("Content-Type", "").startswith("text/html") and
         all(w in text for w in words), "%s -> %d HTML saying %s" % (name, status, words),
         (code, resp.getheader("Content-Type"), text[:300]))


def check_json(t, name, got, status, words):
    code, _, body = got
    err = h.err_of(body)
    msg = err.get("message", "")
    t.ok(code == status and err.get("status") == str(status) and
         all(w.lower() in msg.lower() for w in words),
         "%s -> %d naming %s" % (name, status, words), (code, body))


def test_page_itself(t, srv, api):
    url = api.create("page.look")
    code, resp, body = srv.request("GET", page_path(url))
    text = body.decode() if isinstance(body, bytes) else ""
    t.ok(code == 200 and resp.getheader("Content-Type", "").startswith("text/html") and
         "no-store" in resp.getheader("Cache-Control", ""), "GET the link: the page, not cached",
         (code, resp.getheaders()))
    external = [w for w in ('src="http', "src='http", 'href="http', "@import", "url(http")
                if w in text]
    t.ok("getUserMedia" in text and not external,
         "the page is self-contained (no outside script, style or font)", external)
    t.ok("What happens to the photos" in text, "the page says what happens to the photos")


def test_bad_links(t, srv, api, used_url, data_dir):
    unknown = "/enroll/" + secrets.token_urlsafe(32)[:43]
    check_html(t, "GET an unknown link", srv.request("GET", unknown), 404, ["not valid"])
    check_html(t, "GET a malformed link", srv.request("GET", "/enroll/abc"), 404, ["not valid"])
    check_html(t, "GET a used link", srv.request("GET", page_path(used_url)), 410,
               ["already enrolled"])
    good = {"images": [data_uri(os.path.join(srv.photo_dir, "upload-1.jpg"))]}
    check_json(t, "POST to an unknown link", post(srv, unknown, good), 404, ["not valid"])
    before = api.log_count()
    check_json(t, "POST to a used link", post(srv, page_path(used_url), good), 410,
               ["already enrolled"])
    t.ok(api.log_count() == before, "a used link stores nothing")
    # An expired link: its issue time moved back beyond enroll_link_ttl_s.
    url = api.create("link.old")
    h.db_exec(data_dir, "UPDATE users SET enroll_issued = enroll_issued - 8 * 86400"
              " WHERE user_name = 'link.old'")
    check_html(t, "GET an expired link", srv.request("GET", page_path(url)), 410, ["expired"])
    check_json(t, "POST to an expired link", post(srv, page_path(url), good), 410, ["expired"])
    st, _, upd = api.call("user/update", {"userName": "link.old", "faceToBeUpdated": "yes"})
    fresh = upd.get("reEnrollmentUrl", "")
    check_html(t, "GET the old link after a new one was issued",
               srv.request("GET", page_path(url)), 404, ["not valid"])
    t.ok(st == 200 and srv.request("GET", page_path(fresh))[0] == 200,
         "user/update faceToBeUpdated=yes issues a working link", upd)


def test_bad_uploads(t, srv, api):
    url = api.create("upload.bad")
    path = page_path(url)
    before = api.log_count()
    big = {"images": ["data:image/jpeg;base64," + "A" * (MAX_PAGE_BYTES + 10)]}
    check_json(t, "an oversized upload", post(srv, path, big), 413, ["too large"])
    photo = data_uri(os.path.join(srv.photo_dir, "upload-1.jpg"))
    check_json(t, "a text/plain upload", post(srv, path, {"images": [photo]}, "text/plain"),
               415, ["application/json"])
    check_json(t, "a multipart upload", post(srv, path, b"--x\r\n\r\n--x--\r\n",
                                             "multipart/form-data; boundary=x"),
               415, ["application/json"])
    check_json(t, "no images", post(srv, path, {"photos": [photo]}), 400, ["images"])
    check_json(t, "four images", post(srv, path, {"images": [photo] * 4}), 400,
               ["1 to 3"])
    check_json(t, "a URL instead of a photo",
               post(srv, path, {"images": ["http://127.0.0.1:1/x.jpg"]}), 400,
               ["images[0]", "data:image"])
    check_json(t, "not JSON", post(srv, path, b"{images"), 400, ["JSON"])
    check_json(t, "a broken photo", post(srv, path, {"images": ["data:image/jpeg;base64,AAAA"]}),
               400, ["photo 1"])
    st = api.status(url)
    t.ok(st.get("enrollmentStatus") == "draft" and api.log_count() == before,
         "bad uploads store nothing (user still draft, no log row)", (st, before))


def test_attempt_limit(t, srv, api):
    url = api.create("many.tries")
    path = page_path(url)
    noface = {"images": [data_uri(os.path.join(srv.photo_dir, "noface.jpg"))]}
    answers = [post(srv, path, noface) for _ in range(ATTEMPTS)]
    t.ok(all(a[0] == 400 and h.err_of(a[2]).get("status") == "422" and
             "no face" in h.err_of(a[2]).get("message", "") for a in answers),
         "refused attempts answer what to fix", [a[2] for a in answers])
    before = api.log_count()
    good = {"images": [data_uri(os.path.join(srv.photo_dir, "upload-%d.jpg" % i))
                       for i in (1, 2, 3)]}
    check_json(t, "one attempt too many", post(srv, path, good), 429, ["too many attempts"])
    st = api.status(url)
    t.ok(st.get("enrollmentStatus") == "failure" and api.log_count() == before,
         "the refused extra attempt stores nothing", st)
    _, _, upd = api.call("user/update", {"userName": "many.tries", "faceToBeUpdated": "yes"})
    fresh = page_path(upd.get("reEnrollmentUrl", ""))
    code, _, body = post(srv, fresh, good)
    t.ok(code == 200 and body.get("enrollmentStatus") == "success" and
         body.get("templateCount") == 3 and "faceOriginal" not in body,
         "a new link starts with no attempts and enrolls (no image links in the answer)",
         (code, body))


def test_log_has_no_tokens(t, srv, urls):
    log = "".join(srv.log_lines) + srv.stderr_text()
    leaked = [u for u in urls if u.rsplit("/", 1)[1] in log]
    t.ok(not leaked and "/enroll/<redacted>" in log,
         "no enrollment token in the access log or stderr", leaked)


def main():
    args = h.parse_args()
    t = h.Tap()
    world = h.World(args, make_photos, [("acme", "s3cret-acme")])
    shots_dir = os.path.join(os.path.dirname(os.path.abspath(args.real_binary)), "screenshots")
    os.makedirs(shots_dir, exist_ok=True)
    srv = h.Server(args.binary, args.models, world.data,
                   ["engines = 2", "enroll_page_max_bytes = %d" % MAX_PAGE_BYTES,
                    "enroll_attempts_per_hour = %d" % ATTEMPTS]).start()
    srv.photo_dir = world.photo_dir
    try:
        api = Api(srv, h.login(srv, "acme", "s3cret-acme"))
        test_page_itself(t, srv, api)
        used = test_camera_enrolls(t, api, world, shots_dir)
        test_dark_then_files(t, api, world, shots_dir)
        test_no_camera(t, api, world)
        test_bad_links(t, srv, api, used, world.data)
        test_bad_uploads(t, srv, api)
        test_attempt_limit(t, srv, api)
        test_log_has_no_tokens(t, srv, api.urls)
        t.ok(srv.alive(), "the server is still up")
    finally:
        h.stop_server(t, srv, "server exits cleanly on SIGTERM (no sanitizer report)")
        world.close()
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
