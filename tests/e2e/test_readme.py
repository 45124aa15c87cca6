#!/usr/bin/env python3
"""The README's curl examples, run verbatim against a real server.

Every ```sh block from "## Walk-through with curl" on is taken from README.md
as it stands and run, in order, in one bash session in a scratch folder laid
out like the repository (build/faceauth, tests/assets, data). Only the port is
changed, to the one the test server got; everything else is the user's text.
The answers must be the documented ones: the walk-through creates, enrolls,
accepts the same person and refuses another in the seed's failure shape; every
API example after it succeeds.
"""
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "README.md")


def readme_script():
    with open(README) as f:
        text = f.read()
    section = text.split("## Walk-through with curl", 1)[1]
    return "\n".join(re.findall(r"```sh\n(.*?)```", section, re.S))


def json_objects(text):
    """Every top-level JSON object in curl's concatenated output."""
    dec = json.JSONDecoder()
    out, i = [], 0
    while True:
        i = text.find("{", i)
        if i < 0:
            return out
        obj, i = dec.raw_decode(text, i)
        out.append(obj)


# The API examples after the walk-through print this many answers, each a success.
N_API_ANSWERS = 21


def check_walkthrough(t, objs):
    created, enrolled, same, other = objs
    t.ok(created.get("status") == "200 OK" and "/enroll/" in created.get("enrollmentUrl", ""),
         "step 3 creates the user with an enrollmentUrl", created)
    t.ok(enrolled.get("enrollmentStatus") == "success", "step 4 enrolls the face", enrolled)
    t.ok(same.get("authenticationStatus") == "success" and
         same.get("message") == "User is successfully authenticated",
         "step 5 accepts another photo of the same person", same)
    err = other.get("error", {})
    t.ok(err.get("authenticationStatus") == "failure" and err.get("status") == "422" and
         err.get("message") == "User is not authenticated",
         "step 6 refuses another person in the seed's failure shape", other)


def check_api_examples(t, objs):
    failed = [o for o in objs if o.get("status") != "200 OK"]
    t.ok(not failed, "every API example succeeds", failed)
    searches = [o for o in objs if "userNames" in o]
    t.ok(len(searches) == 2 and all(s["userNames"] and s["userNames"][0]["userName"] == "jane"
                                    for s in searches),
         "both searches find jane first", searches)
    black = [o for o in objs if "blacklistedUsers" in o]
    t.ok(len(black) == 1 and [u["userName"] for u in black[0]["blacklistedUsers"]] == ["jane"],
         "the blacklist view (GET) lists jane", black)
    logs = [o for o in objs if "totalLogCount" in o]
    t.ok(len(logs) == 1 and logs[0]["data"] and logs[0]["data"][0]["requestType"] == "search",
         "the log shows the last search first", logs)


def scratch_repo(args, work):
    root = os.path.join(work, "repo")
    os.makedirs(os.path.join(root, "build"))
    os.makedirs(os.path.join(root, "tests"))
    os.symlink(os.path.abspath(args.binary), os.path.join(root, "build", "faceauth"))
    os.symlink(os.path.abspath(args.assets), os.path.join(root, "tests", "assets"))
    return root


def main():
    args = h.parse_args()
    t = h.Tap()
    work = h.temp_dir()
    root = scratch_repo(args, work)
    data = os.path.join(root, "data")
    os.makedirs(data)
    srv = h.Server(args.binary, args.models, data, []).start()
    try:
        script = readme_script().replace("localhost:8080", "localhost:%d" % srv.port)
        run = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=root,
                             capture_output=True, text=True, timeout=300)
        t.ok(run.returncode == 0, "the walk-through runs without error", run.stderr)
        t.ok("customer acme added" in run.stdout, "step 1 creates the customer", run.stdout)
        objs = json_objects(run.stdout)
        t.ok(len(objs) == 4 + N_API_ANSWERS, "each example prints one JSON answer",
             (len(objs), run.stdout[-3000:]))
        objs += [{}] * (4 + N_API_ANSWERS - len(objs))
        check_walkthrough(t, objs[:4])
        check_api_examples(t, objs[4:])
    finally:
        code = srv.stop()
        t.ok(code == 0, "server exits cleanly", (code, srv.stderr_text()[-2000:]))
        h.cleanup(work)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
