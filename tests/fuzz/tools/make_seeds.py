#!/usr/bin/env python3
"""Write the starting seed corpus of tests/fuzz/<target>/ (run once; the
files are committed, and scripts/fuzz --merge adds what fuzzing finds).

Images are made here (tiny, synthetic: no photo of anyone), so the corpus
holds no biometric data. Needs Debian's python3-opencv and python3-numpy.
"""
import base64
import os
import struct

import cv2
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
FUZZ = os.path.dirname(HERE)
BASE = "/api/v1/basic/"


def write(target, name, data):
    d = os.path.join(FUZZ, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def tiny(ext, size=8, params=()):
    img = np.zeros((size, size, 3), np.uint8)
    img[:, : size // 2] = (40, 120, 200)
    ok, buf = cv2.imencode(ext, img, list(params))
    assert ok
    return buf.tobytes()


def with_exif_orientation(jpeg, orientation):
    """Insert an APP1 Exif segment (little-endian TIFF, one IFD entry) after SOI."""
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1)
    tiff += struct.pack("<HHII", 0x0112, 3, 1, orientation) + struct.pack("<I", 0)
    payload = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def images():
    jpg = tiny(".jpg", 16)
    return {
        "jpeg": jpg,
        "jpeg_exif6": with_exif_orientation(tiny(".jpg", 16), 6),
        "png": tiny(".png"),
        "bmp": tiny(".bmp"),
        "webp_lossy": tiny(".webp", 8, (cv2.IMWRITE_WEBP_QUALITY, 50)),
        "webp_lossless": tiny(".webp", 8, (cv2.IMWRITE_WEBP_QUALITY, 101)),
    }


def data_uri(b, mime="image/jpeg"):
    return "data:%s;base64,%s" % (mime, base64.b64encode(b).decode())


def api_seeds(imgs):
    uri = data_uri(imgs["jpeg"])
    c = '"customerName":"fuzz"'
    posts = {
        "login": '{"customerName":"fuzz","password":"fuzz-password-1"}',
        "logout": "{%s}" % c,
        "user/create": '{%s,"userName":"ann","fullName":"Ann Example","emailId":"ann@example.com",'
                       '"phoneNumber":"5550100","countryCode":"+1"}' % c,
        "user/details": '{%s,"userName":"ann"}' % c,
        "user/update": '{%s,"userName":"ann","faceToBeUpdated":"no","parametersToBeUpdated":'
                       '{"userName":"ann2","fullName":"A","emailId":"a@example.com",'
                       '"phoneNumber":"1","countryCode":"44"}}' % c,
        "user/delete": '{%s,"username":"ann"}' % c,
        "enroll": '{%s,"userName":"ann","url":"%s"}' % (c, uri),
        "update": '{%s,"userName":"ann","urls":["%s","%s"]}' % (c, uri, data_uri(imgs["png"], "image/png")),
        "authenticate": '{%s,"username":"ann","url":"%s","precision":"low",'
                        '"useSampleForLearning":"yes"}' % (c, uri),
        "search": '{%s,"url":"%s","threshold":0.4,"searchSpaces":["desk"]}' % (c, uri),
        "status/enroll/user": '{%s,"enrollmentUrl":"http://fuzz.example:8080/enroll/abc"}' % c,
        "status/enroll/all": '{%s,"pageNumber":1,"pageCount":10,"statusType":"all",'
                             '"fromThisDate":"2026-01-01","toThisDate":"2026-12-31 23:59:59"}' % c,
        "user/blacklist": '{%s,"userName":"ann"}' % c,
        "user/whitelist": '{%s,"userName":"ann"}' % c,
        "view/blacklist/all": "{%s}" % c,
        "searchspace/store": '{%s,"name":"desk","users":["ann"]}' % c,
        "searchspace/delete": '{%s,"name":"desk"}' % c,
        "view/searchspace/user": '{%s,"name":"desk"}' % c,
        "settings/view": "{%s}" % c,
        "settings/update": '{%s,"checkLiveliness":"yes","Threshold":0.45,'
                           '"enrollmentAcceptedCallbackurl":"https://hooks.example.com/a"}' % c,
        "view/logs/all": '{%s,"pageNumber":"2","pageCount":5,"fromThisDate":"2026-01-01 00:00:00"}' % c,
    }
    for path, body in posts.items():
        write("api", path.replace("/", "_"), "POST %s%s\n%s" % (BASE, path, body))
    write("api", "enroll_url", 'POST %senroll\n{%s,"enrolledUrl":"http://x/enroll/tok",'
                               '"url":"https://photos.example.com/a.jpg"}' % (BASE, c))
    write("api", "authenticate_bmp",
          'POST %sauthenticate\n{%s,"username":"ann","url":"%s"}' % (BASE, c, data_uri(imgs["bmp"], "image/bmp")))
    # "@FACE@" is a real face (see fuzz_api.c); "eve" is enrolled, "ann" is not.
    face = {
        "enroll_face": 'enroll\n{%s,"userName":"ann","url":"@FACE@"}',
        "update_face": 'update\n{%s,"userName":"ann","urls":["@FACE@","@FACE@"]}',
        "authenticate_face": 'authenticate\n{%s,"username":"eve","url":"@FACE@","precision":"low",'
                             '"useSampleForLearning":"yes"}',
        "authenticate_eve": 'authenticate\n{%s,"username":"eve","url":"%s"}' % ("%s", uri),
        "search_face": 'search\n{%s,"url":"@FACE@","threshold":0.3,"searchSpaces":null}',
        "details_eve": 'user/details\n{%s,"userName":"eve"}',
    }
    for name, text in face.items():
        write("api", name, "POST " + BASE + text % c)
    write("api", "get_blacklist", "GET %sview/blacklist/all?customerName=fuzz\n" % BASE)
    write("api", "get_face", "GET %sface/%s?expires=99999999999&signature=%s\n" % (BASE, "0" * 32, "a" * 64))
    # "@TOKEN@" is ann's enrollment token: the enrollment page of her link.
    write("api", "page_get", "GET /enroll/@TOKEN@\n")
    write("api", "page_post", 'POST /enroll/@TOKEN@\n{"images":["@FACE@","%s"]}' % uri)
    write("api", "page_post_face", 'POST /enroll/@TOKEN@\n{"images":["@FACE@"]}')
    write("api", "page_unknown", 'POST /enroll/%s\n{"images":[]}' % ("A" * 43))
    write("api", "healthz", "GET /healthz\n")
    write("api", "readyz", "GET /readyz\n")


def datauri_seeds(imgs):
    for name, b in imgs.items():
        write("datauri", name, data_uri(b, "image/" + name.split("_")[0]))
    j = base64.b64encode(imgs["jpeg"]).decode()
    write("datauri", "wrapped", "data:image/jpeg;base64," + "\r\n".join(j[i:i + 76] for i in range(0, len(j), 76)))
    write("datauri", "unpadded", "data:image/png;base64," + base64.b64encode(imgs["png"][:-1]).decode().rstrip("="))
    write("datauri", "params", "DATA:Image/JPEG;name=a.jpg;charset=x;BASE64," + j)
    write("datauri", "text", "data:text/plain;base64,aGVsbG8=")
    write("datauri", "not_base64", "data:image/png,%89PNG")


def config_seeds():
    with open(os.path.join(FUZZ, "..", "..", "config", "faceauth.conf")) as f:
        write("config", "faceauth.conf", f.read())
    write("config", "lists", "threshold_high = 3.1, 3.2 ,3.3\nthreshold_low=2\n"
                             "znorm_dlib = 0.8,0.04\nmodels = dlib, fr_feature\n")
    write("config", "types", "port = 0\nallow_private_urls = yes\nmax_pixels = 1e6\n"
                             "public_url = https://faces.example.com\n  # comment\n\nlisten=::1\n")
    write("config", "long_comment", "#" + "x" * 2000 + "\nport = 9\n")


def url_seeds():
    urls = ["http://example.com/a.jpg", "https://photos.example.com:8443/p/q.png?x=1#f",
            "HTTP://[::ffff:127.0.0.1]/", "http://2130706433/", "http://user:pw@host/",
            "https://[fe80::1%25eth0]/", "ftp://example.com/a.jpg", "data:image/png;base64,AA",
            "http://0x7f.1/", "//example.com/x", "http://exa mple.com/"]
    for i, u in enumerate(urls):
        write("url", "url%02d" % i, u)
    write("url", "v6_bytes", bytes([0xfe, 0x80] + [0] * 13 + [1]))
    write("url", "v4_private", bytes([192, 168, 1, 1]))


def image_seeds(imgs):
    for name, b in imgs.items():
        write("image", name, b)


def main():
    imgs = images()
    api_seeds(imgs)
    datauri_seeds(imgs)
    config_seeds()
    url_seeds()
    image_seeds(imgs)


if __name__ == "__main__":
    main()
