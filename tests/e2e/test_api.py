#!/usr/bin/env python3
"""End to end: the whole DeepFaceAuth-compatible API beyond the core flow.

One real server, two customers (acme and globex), photos of seven different
people cut from the demo pictures. Covered, each with its answers checked
field by field and its refusals checked for status and the words of the
message: user/details, user/update (rename, face reset and re-enrollment),
update (a new reference face), status/enroll/user and status/enroll/all
(filters, paging, bad fields), blacklist/whitelist and the blacklist view (POST
and GET), search (threshold, search spaces, bad fields, the customer's default
threshold), the search-space endpoints, settings, the transaction log (rows,
order, paging, dates), user/delete (rows, links and files gone, log kept),
isolation between customers on every endpoint, and a restart (clean exit,
search index reloaded, orphan image file swept).
"""
import datetime
import math
import os
import re
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

# Seven people, each (demo picture, face index by size). Their faces score
# below 0.35 (fr_feature cosine) and below 2.4 (fused z, what authenticate
# and search use) against each other's augmented photos, their own above 0.9
# and 7. (sample2's largest face is a profile, which the pose
# gate refuses to enroll: alice is its second face.)
PEOPLE = {
    "alice": ("sample2.jpg", 1),
    "bob": ("sample4.jpg", 0),
    "carol": ("sample6.jpg", 0),
    "dave": ("sample5.jpg", 0),
    "erin": ("sample1.jpg", 2),
    "frank": ("sample6.jpg", 3),
    "gina": ("sample3.jpg", 1),
}
ENROLLED = ["alice", "bob", "carol", "dave", "erin"]
# The default config's lowest search threshold (threshold_low's first value,
# fused z) and the same as an fr_feature cosine (znorm_fr_feature).
FLOOR_Z = 2.752
FLOOR_COS = 0.00849 + FLOOR_Z * 0.11329
DATE_RE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
STATUS_ROW_KEYS = {"userName", "fullName", "emailId", "phoneNumber", "faceThumbnail",
                   "faceOriginal", "timeStamp", "enrollmentStatus", "blacklistState"}
LOG_ROW_KEYS = {"timeStamp", "userName", "requestType", "result", "matchScore",
                "faceThumbnail", "faceOriginal"}
CALLBACKS = ["enrollmentAcceptedCallbackurl", "enrollmentRejectedCallbackurl",
             "successfullAuthenticationCallbackurl", "failedAuthenticationCallbackurl"]


def make_photos(args, root):
    """<name>.jpg and <name>-aug.jpg (the same face re-encoded) per person, noface.jpg."""
    h.cut_faces(args, root, PEOPLE)
    h.write_noface(os.path.join(root, "noface.jpg"))


# ------------------------------------------------------------------ helpers
class Client:
    """Calls of one customer; keeps the transaction-log rows it expects
    (userName, requestType, result), oldest first."""

    def __init__(self, srv, customer, password):
        self.srv = srv
        self.customer = customer
        self.password = password
        self.token = None
        self.log = []

    def login(self):
        self.token = h.login(self.srv, self.customer, self.password)
        return bool(self.token)

    def __call__(self, endpoint, body=None, token=None, customer=None):
        full = {"customerName": customer or self.customer}
        full.update(body or {})
        return self.srv.api(endpoint, full, token or self.token)

    def logged(self, user, kind, result):
        self.log.append((user, kind, result))

    def search(self, url, **fields):
        """A search that reaches the face service: logged, success when it found someone."""
        got = self("search", dict(fields, url=url))
        self.logged("", "search", "success" if found(got) else "failure")
        return got


def is_ok(got):
    code, _, body = got
    return code == 200 and isinstance(body, dict) and body.get("status") == "200 OK"


def body_of(got):
    return got[2] if isinstance(got[2], dict) else {}


def found(got):
    """userName list of a search answer ([] when not a 200)."""
    if not is_ok(got):
        return []
    return [u.get("userName") for u in body_of(got).get("userNames", [])]


def diag(got):
    return (got[0], got[2])


def link_id(link):
    """The image id of a faceOriginal/faceThumbnail link ("" for none)."""
    if not isinstance(link, str) or not link:
        return ""
    return urllib.parse.urlparse(link).path.rsplit("/", 1)[-1]


def bare(link):
    return urllib.parse.urlparse(link).path


def signed(link):
    p = urllib.parse.urlparse(link)
    return p.path + "?" + p.query


def has_link(body, field):
    v = body.get(field)
    return isinstance(v, str) and v.startswith("http") and "/face/" in v and \
        len(link_id(v)) == 32


def day(offset_days=0, end=False):
    d = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=offset_days)
    return d.strftime("%Y-%m-%d") + (" 23:59:59" if end else " 00:00:00")


def list_images(data, cid):
    """The image files of customer folder cid; with PostgreSQL every stored
    photo's id as such a name (the tests' photos are all JPEG)."""
    if h.two_nodes():
        return {i + ".jpg" for i in h.stored_image_ids(data)}
    folder = os.path.join(data, "images", cid)
    return set(os.listdir(folder)) if os.path.isdir(folder) else set()


# ------------------------------------------------------------------ sections
def test_setup(t, acme, photos, ctx):
    urls = ctx["urls"] = {}
    made = []
    for i, name in enumerate(ENROLLED + ["drafty", "failing"]):
        got = acme("user/create", {"userName": name, "fullName": name.title() + " Example",
                                   "emailId": name + "@example.com",
                                   "phoneNumber": "555010%d" % i, "countryCode": "+1"})
        urls[name] = body_of(got).get("enrollmentUrl", "")
        made.append(is_ok(got) and "/enroll/" in urls[name] or diag(got))
    t.ok(all(m is True for m in made), "seven users created", made)
    ctx["enroll_ids"] = {}
    for name in ENROLLED:
        who = {"enrolledUrl": urls[name]} if name in ("alice", "carol") else {"userName": name}
        got = acme("enroll", dict(who, url=photos + "/%s.jpg" % name))
        acme.logged(name, "enroll", "success")
        b = body_of(got)
        t.ok(is_ok(got) and b.get("enrollmentStatus") == "success" and b.get("userName") == name
             and has_link(b, "faceOriginal") and has_link(b, "faceThumbnail"),
             "enroll %s" % name, diag(got))
        ctx["enroll_ids"][name] = (link_id(b.get("faceOriginal")), link_id(b.get("faceThumbnail")))
    got = acme("enroll", {"userName": "failing", "url": photos + "/noface.jpg"})
    acme.logged("failing", "enroll", "failure")
    h.check_refused(t, "enroll a photo without a face", got, ["no face"],
                    enrollmentStatus="failure", userName="failing")
    if h.skip_in_two_nodes(t, "acme's images live in one folder images/<customer>/",
                           "with PostgreSQL the photos are rows of the database"):
        ctx["acme_dir"] = None  # list_images reads the database then
        return
    images = os.path.join(ctx["data"], "images")
    alice_file = ctx["enroll_ids"]["alice"][0] + ".jpg"
    folders = [d for d in os.listdir(images)
               if os.path.isfile(os.path.join(images, d, alice_file))]
    t.ok(len(folders) == 1, "acme's images live in one folder images/<customer>/",
         (alice_file, os.listdir(images)))
    ctx["acme_dir"] = folders[0] if folders else "?"


def test_details(t, acme, ctx):
    got = acme("user/details", {"userName": "alice"})
    b = body_of(got)
    want = {"userName": "alice", "fullName": "Alice Example", "emailId": "alice@example.com",
            "phoneNumber": "5550100", "countryCode": "+1", "enrollmentUrl": ctx["urls"]["alice"],
            "enrollmentStatus": "success", "blacklistState": "no", "status": "200 OK"}
    t.ok(is_ok(got) and all(b.get(k) == v for k, v in want.items()) and b.get("message"),
         "user/details: every documented field, enrollmentStatus and blacklistState", diag(got))
    t.ok((link_id(b.get("faceOriginal")), link_id(b.get("faceThumbnail"))) ==
         ctx["enroll_ids"]["alice"],
         "user/details links the enrolled face's original and thumbnail", diag(got))
    got = acme("user/details", {"username": "drafty"})
    b = body_of(got)
    t.ok(is_ok(got) and b.get("userName") == "drafty" and b.get("enrollmentStatus") == "draft" and
         b.get("faceOriginal", "") == "" and b.get("enrollmentUrl") == ctx["urls"]["drafty"],
         "user/details (spelled username) of a user never enrolled: draft, no face", diag(got))
    got = acme("user/details", {"userName": "failing"})
    t.ok(is_ok(got) and body_of(got).get("enrollmentStatus") == "failure",
         "user/details after a refused enroll: failure", diag(got))
    h.check_error(t, "user/details of an unknown user",
                  acme("user/details", {"userName": "nobody"}), 404, ["nobody", "not found"])
    h.check_error(t, "user/details without userName", acme("user/details", {}), 400,
                  ["userName", "required"])


def test_status(t, acme, ctx):
    for name, state in (("alice", "success"), ("drafty", "draft"), ("failing", "failure")):
        got = acme("status/enroll/user", {"enrollmentUrl": ctx["urls"][name]})
        t.ok(is_ok(got) and body_of(got).get("userName") == name and
             body_of(got).get("enrollmentStatus") == state,
             "status/enroll/user by %s's enrollmentUrl: %s" % (name, state), diag(got))
    fake = ctx["urls"]["alice"].rsplit("/", 1)[0] + "/" + "Q" * 43
    h.check_error(t, "status/enroll/user with an unknown enrollmentUrl",
                  acme("status/enroll/user", {"enrollmentUrl": fake}), 404, ["enrollmentUrl"])
    h.check_error(t, "status/enroll/user without enrollmentUrl", acme("status/enroll/user", {}),
                  400, ["enrollmentUrl"])

    groups = {"success": set(ENROLLED), "failure": {"failing"}, "draft": {"drafty"},
              "all": set(ENROLLED) | {"failing", "drafty"}}
    for kind, names in groups.items():
        got = acme("status/enroll/all", {"statusType": kind, "pageNumber": 1, "pageCount": 100})
        b = body_of(got)
        rows = b.get("data", [])
        t.ok(is_ok(got) and b.get("totalStatusEnrollmentCount") == len(names) and
             b.get("currentStatusPageNumber") == 1 and b.get("totalStatusPageNumber") == 1 and
             {r.get("userName") for r in rows} == names and len(rows) == len(names) and
             all(kind == "all" or r.get("enrollmentStatus") == kind for r in rows),
             "status/enroll/all statusType %s: %d users" % (kind, len(names)), diag(got))
        if kind == "all":
            ctx["all_rows"] = rows
    rows = ctx.get("all_rows", [])
    t.ok(rows and all(STATUS_ROW_KEYS <= set(r) and DATE_RE.match(r.get("timeStamp", ""))
                      for r in rows), "status/enroll/all rows carry every documented field", rows)
    alice = [r for r in rows if r.get("userName") == "alice"]
    t.ok(alice and alice[0].get("fullName") == "Alice Example" and
         alice[0].get("emailId") == "alice@example.com" and
         alice[0].get("phoneNumber") == "5550100" and alice[0].get("enrollmentStatus") ==
         "success" and alice[0].get("blacklistState") == "no" and
         link_id(alice[0].get("faceThumbnail")) == ctx["enroll_ids"]["alice"][1] and
         link_id(alice[0].get("faceOriginal")) == ctx["enroll_ids"]["alice"][0],
         "status/enroll/all row of alice holds her details and face links", alice)
    got = acme("status/enroll/all", {})
    t.ok(is_ok(got) and body_of(got).get("totalStatusEnrollmentCount") == 7 and
         len(body_of(got).get("data", [])) == 7,
         "status/enroll/all defaults: statusType all, first page of 10", diag(got))

    seen, pages_ok = [], True
    for page in range(1, 8):
        got = acme("status/enroll/all", {"statusType": "all", "pageNumber": page,
                                         "pageCount": 1})
        b = body_of(got)
        pages_ok = pages_ok and is_ok(got) and b.get("totalStatusPageNumber") == 7 and \
            b.get("currentStatusPageNumber") == page and len(b.get("data", [])) == 1
        seen += [r.get("userName") for r in b.get("data", [])]
    t.ok(pages_ok and sorted(seen) == sorted(groups["all"]),
         "pageCount 1: 7 pages, one user each, every user once", seen)
    t.ok(seen[:1] == ["failing"], "newest enrollment change first (the refused enroll)", seen)
    got = acme("status/enroll/all", {"pageNumber": 4, "pageCount": 2})
    t.ok(is_ok(got) and body_of(got).get("totalStatusPageNumber") == 4 and
         body_of(got).get("currentStatusPageNumber") == 4 and
         len(body_of(got).get("data", [])) == 1,
         "pageCount 2: 4 pages, the last holding the seventh user", diag(got))
    got = acme("status/enroll/all", {"pageNumber": "8", "pageCount": "1"})
    t.ok(is_ok(got) and body_of(got).get("data") == [] and
         body_of(got).get("totalStatusEnrollmentCount") == 7,
         "a page past the last: no rows, the total still 7 (numbers as strings accepted)",
         diag(got))

    bad = [({"pageNumber": 0}, "pageNumber"), ({"pageCount": 101}, "pageCount"),
           ({"pageCount": "abc"}, "pageCount"), ({"statusType": "bogus"}, "statusType"),
           ({"fromThisDate": "2024-13-45 10:00:00"}, "fromThisDate"),
           ({"toThisDate": "yesterday"}, "toThisDate")]
    for body, field in bad:
        h.check_error(t, "status/enroll/all %s" % body, acme("status/enroll/all", body), 400,
                      [field])
    got = acme("status/enroll/all", {"fromThisDate": "2099-01-01 00:00:00",
                                     "toThisDate": "2099-12-31 23:59:59"})
    t.ok(is_ok(got) and body_of(got).get("totalStatusEnrollmentCount") == 0 and
         body_of(got).get("data") == [], "a future date range: 0 users", diag(got))
    got = acme("status/enroll/all", {"fromThisDate": "2099-01-01 00:00:00"})
    t.ok(is_ok(got) and body_of(got).get("totalStatusEnrollmentCount") == 0,
         "a future fromThisDate alone: 0 users", diag(got))
    got = acme("status/enroll/all", {"toThisDate": "2001-01-01"})
    t.ok(is_ok(got) and body_of(got).get("totalStatusEnrollmentCount") == 0,
         "a past toThisDate alone (date only): 0 users", diag(got))
    got = acme("status/enroll/all", {"fromThisDate": day(-1), "toThisDate": day(1, True)})
    t.ok(is_ok(got) and body_of(got).get("totalStatusEnrollmentCount") == 7,
         "a date range around today: all 7 users", diag(got))


def test_settings(t, acme, ctx):
    got = acme("settings/view")
    b = body_of(got)
    t.ok(is_ok(got) and b.get("checkLiveliness") == "no" and b.get("Threshold") == 0.5 and
         all(b.get(k) == "" for k in CALLBACKS),
         "settings/view defaults: checkLiveliness no, Threshold 0.5, four empty callbacks",
         diag(got))
    cb = "http://127.0.0.1:9/auth-ok"
    got = acme("settings/update", {"successfullAuthenticationCallbackurl": cb})
    t.ok(is_ok(got) and body_of(got).get("successfullAuthenticationCallbackurl") == cb,
         "settings/update one callback", diag(got))
    got = acme("settings/update", {"Threshold": 0.99})
    got = acme("settings/view")
    b = body_of(got)
    t.ok(is_ok(got) and b.get("Threshold") == 0.99 and b.get("checkLiveliness") == "no" and
         b.get("successfullAuthenticationCallbackurl") == cb and
         all(b.get(k) == "" for k in CALLBACKS if k != "successfullAuthenticationCallbackurl"),
         "partial updates persist and keep the other fields", diag(got))
    h.check_error(t, "settings/update Threshold 2", acme("settings/update", {"Threshold": 2}), 400,
                  ["Threshold"])
    h.check_error(t, "settings/update a callback ftp://x",
                  acme("settings/update", {"failedAuthenticationCallbackurl": "ftp://x"}), 400,
                  ["failedAuthenticationCallbackurl"])
    h.check_error(t, "settings/update checkLiveliness maybe",
                  acme("settings/update", {"checkLiveliness": "maybe"}), 400, ["checkLiveliness"])
    got = acme("settings/view")
    t.ok(body_of(got).get("Threshold") == 0.99 and
         body_of(got).get("failedAuthenticationCallbackurl") == "" and
         body_of(got).get("checkLiveliness") == "no",
         "refused updates change nothing", diag(got))


def test_search_floor(t, acme, alice):
    """No threshold below the lowest operating point: it would make search
    an oracle that scores any face against everyone."""
    words = ["threshold", "%.3f" % FLOOR_Z, "%.4f" % FLOOR_COS, "precision low"]
    for bad in (0, -1, 0.3, 1.5, FLOOR_Z - 0.01, 25, "nan", "1e999"):
        h.check_error(t, "search threshold %r (below %.3f z / %.4f cosine, or above 20)"
                      % (bad, FLOOR_Z, FLOOR_COS),
                      acme("search", {"url": alice, "threshold": bad}), 400, words)
    got = acme.search(alice, threshold=FLOOR_Z)
    t.ok(found(got)[:1] == ["alice"], "threshold at the floor (fused z) is allowed", diag(got))
    got = acme.search(alice, threshold=round(FLOOR_COS + 0.0001, 4))
    t.ok(found(got)[:1] == ["alice"], "... and just above it as a 0-1 cosine", diag(got))
    got = acme("settings/update", {"Threshold": 0})
    t.ok(is_ok(got), "settings Threshold 0 is stored (the spec's 0-1)", diag(got))
    got = acme.search(alice)
    t.ok(is_ok(got) and found(got)[:1] == ["alice"] and
         all(u.get("matchScore", 0) >= FLOOR_Z for u in body_of(got).get("userNames", [])),
         "... but search without threshold raises it to the floor", diag(got))
    acme("settings/update", {"Threshold": 0.55, "allowLowPrecision": "no"})
    got = acme("search", {"url": alice, "threshold": 3.0})
    h.check_error(t, "search threshold 3.0 when the customer forbids precision low "
                  "(floor: threshold_high's 3.297)", got, 400, ["threshold", "3.297",
                                                                 "precision high"])
    got = acme("settings/update", {"allowLowPrecision": "yes"})
    t.ok(is_ok(got) and body_of(got).get("Threshold") == 0.55, "settings restored", diag(got))


def test_search(t, acme, photos, ctx):
    alice = photos + "/alice-aug.jpg"
    # Threshold is 0.99 here (test_settings): the customer's default applies.
    got = acme.search(alice)
    t.ok(is_ok(got) and found(got) == [],
         "search without threshold uses the settings Threshold (0.99): nobody", diag(got))
    got = acme.search(alice, threshold=0.5)
    t.ok(found(got)[:1] == ["alice"], "the same search with threshold 0.5 finds alice",
         diag(got))
    got = acme("settings/update", {"Threshold": 0.55, "successfullAuthenticationCallbackurl": ""})
    t.ok(is_ok(got) and body_of(got).get("Threshold") == 0.55,
         "settings Threshold set to 0.55", diag(got))
    got = acme.search(alice)
    b = body_of(got)
    hits = b.get("userNames", []) if is_ok(got) else []
    first = hits[0] if hits else {}
    at_055 = (0.55 - 0.00849) / 0.11329  # Threshold 0.55 read as a cosine, in z units
    t.ok(first.get("userName") == "alice" and isinstance(first.get("matchScore"), float) and
         first["matchScore"] >= at_055 and first.get("blacklistState") == "no" and
         has_link(b, "faceOriginal") and has_link(b, "faceThumbnail"),
         "search with alice's other photo: alice first with a fused matchScore >= %.3f "
         "(Threshold 0.55 as z) and blacklistState" % at_055, diag(got))
    t.ok(all(isinstance(u.get("matchScore"), float) and u["matchScore"] >= at_055 for u in hits)
         and [u["matchScore"] for u in hits] == sorted([u["matchScore"] for u in hits],
                                                        reverse=True),
         "every hit at or above the threshold, best first", hits)
    auth = acme("authenticate", {"userName": "alice", "url": alice})
    acme.logged("alice", "authenticate", "success")
    t.ok(is_ok(auth) and body_of(auth).get("matchScore") == first.get("matchScore"),
         "search's matchScore is authenticate's for the same photo (fused z)",
         (diag(auth), first))
    got = acme.search(alice, threshold=round(first.get("matchScore", 5) - 0.01, 4))
    t.ok(found(got)[:1] == ["alice"], "a threshold in z units (above 1) just under her score "
         "finds her", diag(got))
    got = acme.search(alice, threshold=round(first.get("matchScore", 5) + 0.01, 4))
    t.ok(is_ok(got) and "alice" not in found(got), "... and just above it does not", diag(got))
    got = acme.search(alice, threshold=0.99)
    t.ok(got[0] == 200 and body_of(got).get("status") == "200 OK" and
         body_of(got).get("userNames") == [],
         "threshold 0.99: 200 with an empty userNames", diag(got))
    h.check_error(t, "search threshold \"x\"",
                  acme("search", {"url": alice, "threshold": "x"}), 400, ["threshold"])
    test_search_floor(t, acme, alice)
    got = acme("search", {"url": photos + "/noface.jpg"})
    acme.logged("", "search", "failure")
    h.check_refused(t, "search a photo without a face", got, ["face"])


def test_spaces(t, acme, photos, ctx):
    for name, users in (("team1", ["alice", "bob"]), ("team2", ["carol"]), ("team3", ["bob"])):
        got = acme("searchspace/store", {"name": name, "users": users})
        t.ok(is_ok(got), "searchspace/store %s %s" % (name, users), diag(got))
    got = acme("view/searchspace/user")
    spaces = body_of(got).get("searchSpaces", [])
    t.ok(is_ok(got) and [(s.get("name"), sorted(s.get("users", []))) for s in spaces] ==
         [("team1", ["alice", "bob"]), ("team2", ["carol"]), ("team3", ["bob"])],
         "view/searchspace/user: every space with its users", diag(got))
    got = acme("view/searchspace/user", {"name": "team2"})
    t.ok(is_ok(got) and body_of(got).get("searchSpaces") == [{"name": "team2",
                                                                "users": ["carol"]}],
         "view/searchspace/user by name: only that space", diag(got))
    h.check_error(t, "view/searchspace/user of an unknown space",
                  acme("view/searchspace/user", {"name": "nospace"}), 404, ["nospace"])

    alice, carol = photos + "/alice-aug.jpg", photos + "/carol-aug.jpg"
    got = acme.search(alice, searchSpaces=["team2"])
    t.ok(is_ok(got) and found(got) == [], "alice's face in a space without her: not returned",
         diag(got))
    got = acme.search(alice, searchSpaces=["team2", "team1"])
    t.ok(found(got)[:1] == ["alice"] and "carol" not in found(got),
         "alice's face in team2+team1: alice", diag(got))
    got = acme.search(carol, searchSpaces=["team1", "team2"])
    t.ok(found(got)[:1] == ["carol"], "carol's face in team1+team2: carol (the union)",
         diag(got))
    got = acme.search(carol, searchSpaces=None)
    t.ok(found(got)[:1] == ["carol"], "searchSpaces null: everyone", diag(got))
    h.check_error(t, "search an unknown space",
                  acme("search", {"url": alice, "searchSpaces": ["team1", "nospace"]}), 400,
                  ["nospace"])
    h.check_error(t, "searchSpaces not a list",
                  acme("search", {"url": alice, "searchSpaces": "team1"}), 400, ["searchSpaces"])

    got = acme("searchspace/store", {"name": "team1", "users": ["alice"]})
    t.ok(is_ok(got), "searchspace/store replaces team1 with [alice]", diag(got))
    got = acme("view/searchspace/user", {"name": "team1"})
    t.ok(body_of(got).get("searchSpaces") == [{"name": "team1", "users": ["alice"]}],
         "team1 now holds alice only", diag(got))
    got = acme.search(photos + "/bob-aug.jpg", searchSpaces=["team1"])
    t.ok(is_ok(got) and "bob" not in found(got), "bob is no longer searched in team1",
         diag(got))
    got = acme("searchspace/store", {"name": "team1", "users": ["alice", "ghost1", "ghost2"]})
    h.check_error(t, "searchspace/store with unknown users", got, 400, ["ghost1", "ghost2"])
    got = acme("view/searchspace/user", {"name": "team1"})
    t.ok(body_of(got).get("searchSpaces") == [{"name": "team1", "users": ["alice"]}],
         "a refused replace leaves the space as it was", diag(got))
    h.check_error(t, "searchspace/store a new space with an unknown user",
                  acme("searchspace/store", {"name": "team4", "users": ["carol", "ghost3"]}), 400,
                  ["ghost3"])
    h.check_error(t, "the refused new space was not stored",
                  acme("view/searchspace/user", {"name": "team4"}), 404, ["team4"])
    h.check_error(t, "searchspace/store users not a list",
                  acme("searchspace/store", {"name": "team4", "users": "carol"}), 400, ["users"])
    got = acme("searchspace/delete", {"name": "team3"})
    t.ok(is_ok(got), "searchspace/delete team3", diag(got))
    h.check_error(t, "view the deleted space",
                  acme("view/searchspace/user", {"name": "team3"}), 404, ["team3"])
    h.check_error(t, "searchspace/delete it again", acme("searchspace/delete", {"name": "team3"}),
                  404, ["team3"])
    h.check_error(t, "search in the deleted space",
                  acme("search", {"url": alice, "searchSpaces": ["team3"]}), 400, ["team3"])


def test_blacklist(t, acme, photos, ctx):
    got = acme("user/blacklist", {"userName": "bob"})
    t.ok(is_ok(got), "user/blacklist bob", diag(got))
    got = acme("authenticate", {"username": "bob", "url": photos + "/bob-aug.jpg"})
    acme.logged("bob", "authenticate", "failure")
    h.check_refused(t, "a blacklisted user authenticates with his own face", got, ["blacklisted"],
                    authenticationStatus="failure", userName="bob")
    err = h.err_of(got[2])
    t.ok({"userName", "faceOriginal", "faceThumbnail", "authenticationStatus", "message",
          "status"} <= set(err) and err.get("faceOriginal") == "" and
         err.get("faceThumbnail") == "",
         "the blacklisted refusal has every failure field, links empty (no photo fetched)", err)
    got = acme.search(photos + "/bob-aug.jpg")
    hits = body_of(got).get("userNames", []) if is_ok(got) else []
    t.ok(hits[:1] and hits[0].get("userName") == "bob" and hits[0].get("blacklistState") == "yes",
         "search shows bob with blacklistState yes", diag(got))
    got = acme("user/details", {"userName": "bob"})
    t.ok(body_of(got).get("blacklistState") == "yes", "user/details: blacklistState yes",
         diag(got))
    got = acme("user/blacklist", {"userName": "drafty"})
    t.ok(is_ok(got), "user/blacklist drafty", diag(got))

    def rows_ok(got):
        rows = body_of(got).get("blacklistedUsers")
        return is_ok(got) and isinstance(rows, list) and \
            [(r.get("userName"), r.get("fullName")) for r in rows] == \
            [("drafty", "Drafty Example"), ("bob", "Bob Example")] and \
            all(DATE_RE.match(r.get("timeStamp", "")) for r in rows)
    got = acme("view/blacklist/all")
    t.ok(rows_ok(got), "view/blacklist/all (POST): drafty and bob, newest first, with "
         "userName/fullName/timeStamp", diag(got))
    path = "/api/v1/basic/view/blacklist/all?customerName=acme"
    got = acme.srv.request("GET", path, token=acme.token)
    t.ok(rows_ok(got), "view/blacklist/all (GET ?customerName=acme, token header): the same",
         diag(got))
    h.check_error(t, "view/blacklist/all GET without a token", acme.srv.request("GET", path), 401,
                  ["token"])
    got = acme("user/whitelist", {"userName": "bob"})
    t.ok(is_ok(got), "user/whitelist bob", diag(got))
    got = acme("authenticate", {"userName": "bob", "url": photos + "/bob-aug.jpg"})
    acme.logged("bob", "authenticate", "success")
    t.ok(is_ok(got) and body_of(got).get("authenticationStatus") == "success",
         "whitelisted bob authenticates again", diag(got))
    got = acme("view/blacklist/all")
    t.ok(is_ok(got) and [r.get("userName") for r in body_of(got).get("blacklistedUsers", [])] ==
         ["drafty"], "bob left the blacklist", diag(got))
    h.check_error(t, "user/blacklist an unknown user",
                  acme("user/blacklist", {"userName": "ghost"}), 404, ["ghost"])
    h.check_error(t, "user/whitelist an unknown user",
                  acme("user/whitelist", {"userName": "ghost"}), 404, ["ghost"])


def test_user_update(t, acme, photos, ctx):
    acme("user/create", {"userName": "ren1", "fullName": "Ren One", "emailId": "ren@example.com"})
    got = acme("user/details", {"userName": "ren1"})
    ren_url = body_of(got).get("enrollmentUrl")
    got = acme("user/update", {"userName": "ren1", "faceToBeUpdated": "no",
                               "parametersToBeUpdated": {"userName": "ren2",
                                                         "fullName": "Ren Two"}})
    t.ok(is_ok(got) and body_of(got).get("userName") == "ren2" and
         "reEnrollmentUrl" not in body_of(got), "user/update renames ren1 to ren2", diag(got))
    h.check_error(t, "the old name after the rename", acme("user/details", {"userName": "ren1"}),
                  404, ["ren1"])
    got = acme("user/details", {"userName": "ren2"})
    b = body_of(got)
    t.ok(is_ok(got) and b.get("fullName") == "Ren Two" and b.get("emailId") == "ren@example.com"
         and b.get("enrollmentUrl") == ren_url,
         "the renamed user keeps the fields not changed and the enrollmentUrl", diag(got))
    h.check_error(t, "rename onto an existing userName",
                  acme("user/update", {"userName": "ren2",
                                       "parametersToBeUpdated": {"userName": "alice"}}), 409,
                  ["alice"])
    got = acme("user/details", {"userName": "alice"})
    t.ok(body_of(got).get("fullName") == "Alice Example", "alice untouched by the clash",
         diag(got))
    h.check_error(t, "parametersToBeUpdated of the wrong type",
                  acme("user/update", {"userName": "ren2", "parametersToBeUpdated": "ren3"}), 400,
                  ["parametersToBeUpdated"])
    h.check_error(t, "parametersToBeUpdated.fullName of the wrong type",
                  acme("user/update", {"userName": "ren2",
                                       "parametersToBeUpdated": {"fullName": 5}}), 400,
                  ["fullName"])
    h.check_error(t, "rename to a name with a space",
                  acme("user/update", {"userName": "ren2",
                                       "parametersToBeUpdated": {"userName": "ren 3"}}), 400,
                  ["userName"])
    h.check_error(t, "faceToBeUpdated not yes/no",
                  acme("user/update", {"userName": "ren2", "faceToBeUpdated": "maybe"}), 400,
                  ["faceToBeUpdated"])
    h.check_error(t, "user/update of an unknown user",
                  acme("user/update", {"userName": "ghost",
                                       "parametersToBeUpdated": {"fullName": "G"}}), 404, ["ghost"])

    # An enrolled user renamed: search and authenticate know the new name only.
    got = acme("user/update", {"userName": "bob", "parametersToBeUpdated": {"userName": "robert"}})
    t.ok(is_ok(got) and body_of(got).get("userName") == "robert", "rename the enrolled bob",
         diag(got))
    got = acme.search(photos + "/bob-aug.jpg")
    t.ok(found(got)[:1] == ["robert"] and "bob" not in found(got),
         "search finds the renamed user under the new name", diag(got))
    h.check_error(t, "authenticate by the old name",
                  acme("authenticate", {"userName": "bob", "url": photos + "/bob-aug.jpg"}), 404,
                  ["bob"])
    got = acme("user/update", {"userName": "robert", "parametersToBeUpdated": {"userName": "bob"}})
    t.ok(is_ok(got) and body_of(got).get("userName") == "bob", "rename robert back to bob",
         diag(got))

    # carol's face is reset: draft, no face, then re-enrolled through the new URL.
    got = acme("user/update", {"userName": "carol", "faceToBeUpdated": "yes"})
    new_url = body_of(got).get("reEnrollmentUrl", "")
    t.ok(is_ok(got) and "/enroll/" in new_url and new_url != ctx["urls"]["carol"],
         "faceToBeUpdated yes: a new reEnrollmentUrl", diag(got))
    got = acme("user/details", {"userName": "carol"})
    t.ok(body_of(got).get("enrollmentStatus") == "draft" and
         body_of(got).get("enrollmentUrl") == new_url,
         "carol is draft again with the new enrollmentUrl", diag(got))
    got = acme("status/enroll/user", {"enrollmentUrl": new_url})
    t.ok(body_of(got).get("enrollmentStatus") == "draft",
         "status/enroll/user by the new URL: draft", diag(got))
    h.check_error(t, "the old enrollmentUrl no longer names her",
                  acme("status/enroll/user", {"enrollmentUrl": ctx["urls"]["carol"]}), 404,
                  ["enrollmentUrl"])
    got = acme("authenticate", {"userName": "carol", "url": photos + "/carol-aug.jpg"})
    acme.logged("carol", "authenticate", "failure")
    h.check_refused(t, "authenticate carol after the reset", got, ["no enrolled face"],
                    authenticationStatus="failure")
    got = acme.search(photos + "/carol-aug.jpg")
    t.ok(is_ok(got) and "carol" not in found(got), "search no longer finds carol's old face",
         diag(got))
    got = acme("enroll", {"enrolledUrl": new_url, "url": photos + "/carol.jpg"})
    acme.logged("carol", "enroll", "success")
    t.ok(is_ok(got) and body_of(got).get("enrollmentStatus") == "success" and
         body_of(got).get("userName") == "carol", "re-enroll through reEnrollmentUrl", diag(got))
    got = acme("authenticate", {"userName": "carol", "url": photos + "/carol-aug.jpg"})
    acme.logged("carol", "authenticate", "success")
    t.ok(is_ok(got) and body_of(got).get("authenticationStatus") == "success",
         "carol authenticates after re-enrolling", diag(got))
    got = acme.search(photos + "/carol-aug.jpg")
    t.ok(found(got)[:1] == ["carol"], "search finds carol again", diag(got))


def test_face_update(t, acme, photos, ctx):
    got = acme("update", {"enrolledUrl": ctx["urls"]["dave"], "url": photos + "/frank.jpg"})
    acme.logged("dave", "faceUpdate", "success")
    b = body_of(got)
    t.ok(is_ok(got) and b.get("enrollmentStatus") == "success" and b.get("userName") == "dave" and
         has_link(b, "faceOriginal") and has_link(b, "faceThumbnail"),
         "update replaces dave's reference face with another person's photo", diag(got))
    new_ids = (link_id(b.get("faceOriginal")), link_id(b.get("faceThumbnail")))
    got = acme("authenticate", {"userName": "dave", "url": photos + "/dave-aug.jpg"})
    acme.logged("dave", "authenticate", "failure")
    h.check_refused(t, "dave's old face after the update", got, ["not authenticated"],
                    authenticationStatus="failure")
    got = acme("authenticate", {"userName": "dave", "url": photos + "/frank-aug.jpg"})
    acme.logged("dave", "authenticate", "success")
    t.ok(is_ok(got) and body_of(got).get("authenticationStatus") == "success",
         "the new face authenticates as dave", diag(got))
    got = acme("user/details", {"userName": "dave"})
    t.ok((link_id(body_of(got).get("faceOriginal")),
          link_id(body_of(got).get("faceThumbnail"))) == new_ids,
         "user/details links the new reference face", diag(got))
    got = acme.search(photos + "/dave-aug.jpg")
    t.ok(is_ok(got) and "dave" not in found(got), "search with the old face: not dave",
         diag(got))
    got = acme.search(photos + "/frank-aug.jpg")
    t.ok(found(got)[:1] == ["dave"], "search with the new face: dave", diag(got))
    got = acme("update", {"userName": "failing", "url": photos + "/noface.jpg"})
    acme.logged("failing", "faceUpdate", "failure")
    h.check_refused(t, "update with a photo without a face", got, ["no face"],
                    enrollmentStatus="failure")


def log_key(r):
    return (r.get("timeStamp"), r.get("userName"), r.get("requestType"), r.get("result"),
            r.get("matchScore"), link_id(r.get("faceOriginal")))


def all_logs(acme, **filters):
    rows, page, total = [], 1, None
    while True:
        got = acme("view/logs/all", dict(filters, pageNumber=page, pageCount=100))
        if not is_ok(got):
            return None, got
        rows += body_of(got).get("data", [])
        total = body_of(got).get("totalLogCount")
        if page >= body_of(got).get("totalPageNumber", 0):
            return rows, total
        page += 1


def test_logs(t, acme, photos, ctx):
    rows, total = all_logs(acme)
    want = list(reversed(acme.log))
    got_rows = [(r.get("userName"), r.get("requestType"), r.get("result")) for r in rows or []]
    t.ok(rows is not None and total == len(want) and got_rows == want,
         "view/logs/all: one row per enroll/update/authenticate/search, newest first (%d)" %
         len(want),
         "\n".join("%-40s %s" % (g, w) for g, w in
                   zip(got_rows + [None] * len(want), want + [None] * len(got_rows))
                   if g != w)[:3000] or total)
    rows = rows or []
    t.ok(rows and all(LOG_ROW_KEYS <= set(r) and DATE_RE.match(r.get("timeStamp", ""))
                      for r in rows), "every log row carries the documented fields", rows[:3])
    t.ok([r.get("timeStamp") for r in rows] ==
         sorted([r.get("timeStamp") for r in rows], reverse=True),
         "timeStamps newest first", [r.get("timeStamp") for r in rows])
    t.ok({r.get("requestType") for r in rows} == {"enroll", "faceUpdate", "authenticate",
                                                    "search"},
         "all four request types are logged", {r.get("requestType") for r in rows})
    scored = [r for r in rows if r.get("result") == "success" and
              r.get("requestType") in ("authenticate", "search")]
    # Both are fused z-scores, and a success is at least the lowest threshold.
    t.ok(scored and all(isinstance(r.get("matchScore"), float) and
                        r["matchScore"] >= FLOOR_Z and
                        has_link(r, "faceThumbnail") and has_link(r, "faceOriginal")
                        for r in scored),
         "successful authenticate/search rows carry matchScore and both image links", scored[:3])
    if scored:
        st, resp, data = acme.srv.request("GET", signed(scored[0]["faceThumbnail"]))
        t.ok(st == 200 and data[:2] == b"\xff\xd8", "a log row's faceThumbnail serves the image",
             st)
    per = next(n for n in (3, 4, 7, 11) if len(rows) % n)  # a last page that is not full
    pages = math.ceil(len(rows) / per)
    got = acme("view/logs/all", {"pageNumber": 2, "pageCount": per})
    b = body_of(got)
    t.ok(is_ok(got) and b.get("currentPageNumber") == 2 and b.get("totalPageNumber") == pages and
         b.get("totalLogCount") == len(rows) and
         [log_key(r) for r in b.get("data", [])] == [log_key(r) for r in rows[per:2 * per]],
         "pageCount %d, page 2: the next %d rows, totalPageNumber %d" % (per, per, pages),
         diag(got))
    got = acme("view/logs/all", {"pageNumber": pages, "pageCount": per})
    t.ok(is_ok(got) and [log_key(r) for r in body_of(got).get("data", [])] ==
         [log_key(r) for r in rows[per * (pages - 1):]],
         "the last page holds the rest", diag(got))
    h.check_error(t, "view/logs/all pageNumber 0", acme("view/logs/all", {"pageNumber": 0}), 400,
                  ["pageNumber"])
    h.check_error(t, "view/logs/all pageCount 101", acme("view/logs/all", {"pageCount": 101}), 400,
                  ["pageCount"])
    h.check_error(t, "view/logs/all malformed date",
                  acme("view/logs/all", {"fromThisDate": "2024-02-30 00:00:00"}), 400,
                  ["fromThisDate"])
    got = acme("view/logs/all", {"fromThisDate": "2099-01-01 00:00:00"})
    t.ok(is_ok(got) and body_of(got).get("totalLogCount") == 0 and body_of(got).get("data") == [],
         "a future fromThisDate: no rows", diag(got))
    got = acme("view/logs/all", {"toThisDate": "2001-01-01 00:00:00"})
    t.ok(is_ok(got) and body_of(got).get("totalLogCount") == 0, "a past toThisDate: no rows",
         diag(got))
    got = acme("view/logs/all", {"fromThisDate": day(-1), "toThisDate": day(1, True)})
    t.ok(is_ok(got) and body_of(got).get("totalLogCount") == len(rows),
         "a date range around today: every row", diag(got))


def test_delete(t, acme, photos, ctx):
    got = acme("authenticate", {"userName": "erin", "url": photos + "/erin-aug.jpg"})
    acme.logged("erin", "authenticate", "success")
    b = body_of(got)
    t.ok(is_ok(got), "erin authenticates before her deletion", diag(got))
    ids = set(ctx["enroll_ids"]["erin"]) | {link_id(b.get("faceOriginal")),
                                             link_id(b.get("faceThumbnail"))}
    ids.discard("")
    links = [body_of(acme("user/details", {"userName": "erin"})).get(k, "")
             for k in ("faceOriginal", "faceThumbnail")]
    links.append(b.get("faceThumbnail", ""))
    before = list_images(ctx["data"], ctx["acme_dir"])
    files = {i + ".jpg" for i in ids}
    t.ok(len(ids) == 4 and files <= before, "erin's 4 image files are on disk",
         (sorted(files), sorted(before)))
    st, _, data = acme.srv.request("GET", bare(links[0]), token=acme.token)
    t.ok(st == 200, "erin's faceOriginal is served to the owner before the delete", st)

    got = acme("user/delete", {"userName": "erin"})
    t.ok(is_ok(got), "user/delete erin", diag(got))
    h.check_error(t, "user/details after the delete", acme("user/details", {"userName": "erin"}),
                  404, ["erin"])
    h.check_error(t, "user/delete again", acme("user/delete", {"userName": "erin"}), 404, ["erin"])
    for link in links:
        st, _, _ = acme.srv.request("GET", bare(link), token=acme.token)
        st2, _, _ = acme.srv.request("GET", signed(link))
        t.ok(st == 404 and st2 == 404,
             "deleted image %s..: 404 with the owner's token and by its signed link" %
             link_id(link)[:8], (st, st2))
    after = list_images(ctx["data"], ctx["acme_dir"])
    t.ok(before - after == files and not after - before,
         "exactly erin's files left images/%s/" % ctx["acme_dir"],
         ("removed", sorted(before - after), "expected", sorted(files)))
    got = acme.search(photos + "/erin-aug.jpg", threshold=FLOOR_Z)
    t.ok(is_ok(got) and "erin" not in found(got), "search no longer returns erin", diag(got))
    rows, total = all_logs(acme)
    erin = [(r.get("requestType"), r.get("result")) for r in rows or []
            if r.get("userName") == "erin"]
    t.ok(total == len(acme.log) and erin == [("authenticate", "success"), ("enroll", "success")],
         "erin's log rows remain", (total, len(acme.log), erin))
    served = []
    for r in rows or []:
        if r.get("userName") == "erin":
            for k in ("faceOriginal", "faceThumbnail"):
                if r.get(k):
                    served.append(acme.srv.request("GET", signed(r[k]))[0])
    t.ok(all(s == 404 for s in served), "her log rows link no image that is still served",
         served)


def test_isolation(t, acme, globex, photos, ctx):
    tok = globex.token
    # globex's own user, for its lists and its search.
    globex("user/create", {"userName": "gina", "fullName": "Gina Example"})
    got = globex("enroll", {"userName": "gina", "url": photos + "/gina.jpg"})
    globex.logged("gina", "enroll", "success")
    t.ok(is_ok(got), "globex enrolls its own user gina", diag(got))
    acme_total = all_logs(acme)[1]

    # (a) globex's token speaking for acme: 401 everywhere.
    a = ctx["urls"]
    calls = [
        ("logout", {}),
        ("user/create", {"userName": "intruder"}),
        ("user/details", {"userName": "alice"}),
        ("user/update", {"userName": "alice", "parametersToBeUpdated": {"fullName": "Pwned"}}),
        ("user/delete", {"userName": "alice"}),
        ("enroll", {"userName": "drafty", "url": photos + "/gina.jpg"}),
        ("update", {"userName": "alice", "url": photos + "/gina.jpg"}),
        ("authenticate", {"userName": "alice", "url": photos + "/alice-aug.jpg"}),
        ("search", {"url": photos + "/alice-aug.jpg"}),
        ("status/enroll/user", {"enrollmentUrl": a["alice"]}),
        ("status/enroll/all", {}),
        ("user/blacklist", {"userName": "alice"}),
        ("user/whitelist", {"userName": "drafty"}),
        ("view/blacklist/all", {}),
        ("searchspace/store", {"name": "team1", "users": ["bob"]}),
        ("searchspace/delete", {"name": "team1"}),
        ("view/searchspace/user", {}),
        ("settings/view", {}),
        ("settings/update", {"Threshold": 0.9}),
        ("view/logs/all", {}),
    ]
    for endpoint, body in calls:
        h.check_error(t, "globex's token for acme: %s" % endpoint,
                      globex(endpoint, body, customer="acme"), 401, [])
    h.check_error(t, "globex's token for acme: GET view/blacklist/all",
                  globex.srv.request("GET", "/api/v1/basic/view/blacklist/all?customerName=acme",
                                     token=tok), 401, [])
    h.check_error(t, "login as acme with globex's password",
                  globex.srv.api("login", {"customerName": "acme", "password": globex.password}),
                  401, [])
    got = globex("settings/view")
    t.ok(is_ok(got), "globex's token still works (its logout for acme was refused)", diag(got))
    check_acme_intact(t, acme, ctx, "after globex's calls for acme")
    h.check_error(t, "acme has no user 'intruder'", acme("user/details", {"userName": "intruder"}),
                  404, ["intruder"])
    t.ok(all_logs(acme)[1] == acme_total, "acme's log unchanged by globex's calls",
         (all_logs(acme)[1], acme_total))

    # (b) globex's token for globex, naming acme's users and spaces.
    named = [
        ("user/details", {"userName": "alice"}, ["alice"]),
        ("user/update", {"userName": "alice", "parametersToBeUpdated": {"fullName": "Pwned"}},
         ["alice"]),
        ("user/update", {"userName": "carol", "faceToBeUpdated": "yes"}, ["carol"]),
        ("user/delete", {"userName": "alice"}, ["alice"]),
        ("enroll", {"userName": "drafty", "url": photos + "/gina.jpg"}, ["drafty"]),
        ("enroll", {"enrolledUrl": a["drafty"], "url": photos + "/gina.jpg"}, ["enrolledUrl"]),
        ("update", {"userName": "alice", "url": photos + "/gina.jpg"}, ["alice"]),
        ("update", {"enrolledUrl": a["alice"], "url": photos + "/gina.jpg"}, ["enrolledUrl"]),
        ("authenticate", {"userName": "alice", "url": photos + "/alice-aug.jpg"}, ["alice"]),
        ("status/enroll/user", {"enrollmentUrl": a["alice"]}, ["enrollmentUrl"]),
        ("user/blacklist", {"userName": "alice"}, ["alice"]),
        ("user/whitelist", {"userName": "drafty"}, ["drafty"]),
        ("searchspace/delete", {"name": "team1"}, ["team1"]),
        ("view/searchspace/user", {"name": "team1"}, ["team1"]),
    ]
    for endpoint, body, words in named:
        h.check_error(t, "globex naming acme's data: %s %s" % (endpoint, sorted(body)),
                      globex(endpoint, body), 404, words)
    h.check_error(t, "globex storing a space of acme's users",
                  globex("searchspace/store", {"name": "g1", "users": ["alice", "bob"]}), 400,
                  ["alice", "bob"])
    h.check_error(t, "globex searching acme's space",
                  globex("search", {"url": photos + "/alice-aug.jpg", "searchSpaces": ["team1"]}),
                  400, ["team1"])
    got = globex("status/enroll/all", {"pageCount": 100})
    t.ok(is_ok(got) and body_of(got).get("totalStatusEnrollmentCount") == 1 and
         [r.get("userName") for r in body_of(got).get("data", [])] == ["gina"],
         "globex's status/enroll/all: only gina", diag(got))
    got = globex("view/blacklist/all")
    t.ok(is_ok(got) and body_of(got).get("blacklistedUsers") == [],
         "globex's blacklist is empty (acme's drafty is blacklisted)", diag(got))
    got = globex.srv.request("GET", "/api/v1/basic/view/blacklist/all?customerName=globex",
                             token=tok)
    t.ok(is_ok(got) and body_of(got).get("blacklistedUsers") == [],
         "globex's blacklist by GET is empty", diag(got))
    got = globex("view/searchspace/user")
    t.ok(is_ok(got) and body_of(got).get("searchSpaces") == [], "globex has no search spaces",
         diag(got))
    got = globex("settings/view")
    t.ok(is_ok(got) and body_of(got).get("Threshold") == 0.5,
         "globex's settings are its own (acme's Threshold is 0.55)", diag(got))
    got = globex("settings/update", {"Threshold": 0.7})
    t.ok(is_ok(got) and body_of(acme("settings/view")).get("Threshold") == 0.55,
         "globex's settings/update leaves acme's settings alone", diag(got))
    got = globex.search(photos + "/alice-aug.jpg", threshold=0.5)
    t.ok(is_ok(got) and found(got) == [], "globex searching with acme-alice's face: nothing",
         diag(got))
    got = globex.search(photos + "/gina-aug.jpg", threshold=FLOOR_Z)
    t.ok(is_ok(got) and found(got) == ["gina"],
         "globex searching gina's face at the lowest threshold: only its own gina", diag(got))
    rows, total = all_logs(globex)
    t.ok(rows is not None and total == len(globex.log) and
         [(r.get("userName"), r.get("requestType"), r.get("result")) for r in rows] ==
         list(reversed(globex.log)), "globex's log holds only its own rows",
         (total, rows and rows[:5]))
    details = body_of(acme("user/details", {"userName": "alice"}))
    for field in ("faceOriginal", "faceThumbnail"):
        st, _, _ = globex.srv.request("GET", bare(details.get(field, "/x")), token=tok)
        t.ok(st == 404, "globex's token cannot read acme-alice's %s" % field, st)
    check_acme_intact(t, acme, ctx, "after globex named acme's data")


def check_acme_intact(t, acme, ctx, when):
    b = body_of(acme("user/details", {"userName": "alice"}))
    d = body_of(acme("user/details", {"userName": "drafty"}))
    c = body_of(acme("user/details", {"userName": "carol"}))
    s = body_of(acme("view/searchspace/user", {"name": "team1"}))
    st = body_of(acme("settings/view"))
    t.ok(b.get("fullName") == "Alice Example" and b.get("enrollmentStatus") == "success" and
         b.get("blacklistState") == "no" and d.get("enrollmentStatus") == "draft" and
         d.get("blacklistState") == "yes" and c.get("enrollmentStatus") == "success" and
         s.get("searchSpaces") == [{"name": "team1", "users": ["alice"]}] and
         st.get("Threshold") == 0.55,
         "acme's users, space and settings intact " + when, (b, d, c, s, st))


def test_restart(t, args, acme, photos, ctx, config):
    files = not h.two_nodes()  # with PostgreSQL no photo is a file
    before = list_images(ctx["data"], ctx["acme_dir"]) if files else None
    code = acme.srv.stop()
    t.ok(code == 0, "SIGTERM: the server exits with code 0", (code, acme.srv.stderr_text()[-3000:]))
    orphan = "deadbeef" + "0123456789abcdef01234567" + ".jpg"
    if files:
        with open(os.path.join(ctx["data"], "images", ctx["acme_dir"], orphan), "wb") as f:
            f.write(b"\xff\xd8\xff\xe0" + b"\0" * 64)
    srv = h.Server(args.binary, args.models, ctx["data"], config).start()
    acme.srv = srv
    ctx["srv"] = srv
    if not h.skip_in_two_nodes(t, "orphan image files are swept at start",
                               "with PostgreSQL the photos are rows, written with the record"):
        after = list_images(ctx["data"], ctx["acme_dir"])
        t.ok(orphan not in after, "the orphan image file is gone after the restart", sorted(after))
        t.ok(after == before, "every file a row names is still there", sorted(before ^ after))
    t.ok(acme.login(), "acme logs in to the restarted server")
    for face, user in (("alice", "alice"), ("carol", "carol"), ("frank", "dave")):
        got = acme.search(photos + "/%s-aug.jpg" % face)
        t.ok(found(got)[:1] == [user], "after the restart, %s's face finds %s (index reloaded)" %
             (face, user), diag(got))
    got = acme.search(photos + "/erin-aug.jpg", threshold=FLOOR_Z)
    t.ok(is_ok(got) and "erin" not in found(got), "the deleted erin stays gone", diag(got))
    got = acme("authenticate", {"userName": "bob", "url": photos + "/bob-aug.jpg"})
    acme.logged("bob", "authenticate", "success")
    t.ok(is_ok(got), "bob authenticates after the restart", diag(got))
    rows, total = all_logs(acme)
    t.ok(total == len(acme.log), "the log survived the restart", (total, len(acme.log)))


def main():
    args = h.parse_args()
    t = h.Tap()
    world = h.World(args, make_photos, [("acme", "s3cret-acme"), ("globex", "s3cret-globex")])
    photos, data = world.photos, world.data
    config = ["allow_private_urls = yes", "fetch_timeout_ms = 5000", "engines = 2"]
    srv = h.Server(args.binary, args.models, data, config).start()
    ctx = {"data": data, "srv": srv}
    acme = Client(srv, "acme", "s3cret-acme")
    globex = Client(srv, "globex", "s3cret-globex")
    try:
        t.ok(acme.login() and globex.login(), "both customers log in")
        test_settings(t, acme, ctx)
        test_setup(t, acme, photos, ctx)
        test_details(t, acme, ctx)
        test_status(t, acme, ctx)
        test_search(t, acme, photos, ctx)
        test_spaces(t, acme, photos, ctx)
        test_blacklist(t, acme, photos, ctx)
        test_user_update(t, acme, photos, ctx)
        test_face_update(t, acme, photos, ctx)
        test_logs(t, acme, photos, ctx)
        test_delete(t, acme, photos, ctx)
        test_isolation(t, acme, globex, photos, ctx)
        t.ok(ctx["srv"].alive(), "the server is still up")
        test_restart(t, args, acme, photos, ctx, config)
    finally:
        h.stop_server(t, ctx["srv"], "server exits cleanly on SIGTERM (no sanitizer report)")
        world.close()
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
