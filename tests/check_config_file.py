#!/usr/bin/env python3
"""The shipped config file and the README against the binary's key table.

The config keys, their defaults and their help live in one table
(src/config_table.c); `faceauth config-defaults` prints config/faceauth.conf
from it. This check (CTest `config_file`) fails when:
  - the committed config/faceauth.conf is not exactly that output (a default
    or a help text changed in one place only): regenerate it with
    `build/faceauth config-defaults > config/faceauth.conf`;
  - a key is missing from the README's "## Configuration" table, the table
    names a key that does not exist, or states another default.

usage: check_config_file.py --binary build/faceauth
"""
import argparse
import difflib
import os
import re
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def generated(binary):
    out = subprocess.run([binary, "config-defaults"], check=True, capture_output=True,
                         text=True, env={"PATH": os.environ.get("PATH", "")})
    return out.stdout


def defaults_of(text):
    """{key: default text} of `key = value` lines."""
    pairs = re.findall(r"^([a-z0-9_]+) =(?: (.*))?$", text, re.M)
    return {k: v or "" for k, v in pairs}


def readme_rows():
    """(keys, defaults) of each row of the README's configuration table."""
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or cells[0] in ("key", "") or set(cells[0]) <= set("-"):
            continue
        # "(empty)" is a value; other parentheses explain one ("0 (= 4 x cores)").
        default = re.sub(r"\s*\([^)]*\)", "", cells[1].replace("(empty)", "''"))
        rows.append(([k.strip() for k in cells[0].split(" / ")],
                     [d.strip() for d in default.split(" / ")]))
    return rows


def same_default(readme, actual):
    readme = "" if readme == "''" else readme
    if readme.endswith("…"):  # the start of a long list
        return actual.startswith(readme[:-1])
    if readme == actual:
        return True
    try:
        return float(readme) == float(actual)
    except ValueError:
        return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    binary = ap.parse_args().binary
    problems = []
    text = generated(binary)
    with open(os.path.join(ROOT, "config", "faceauth.conf")) as f:
        shipped = f.read()
    if shipped != text:
        diff = difflib.unified_diff(shipped.splitlines(), text.splitlines(),
                                    "config/faceauth.conf", "faceauth config-defaults",
                                    lineterm="", n=1)
        problems.append("config/faceauth.conf differs from `faceauth config-defaults` "
                        "(regenerate it):\n" + "\n".join(list(diff)[:40]))
    defaults = defaults_of(text)
    if len(defaults) < 10:
        problems.append(f"config-defaults printed only {len(defaults)} keys")
    seen = set()
    for keys, values in readme_rows():
        if len(keys) != len(values):
            problems.append(f"README row {' / '.join(keys)}: {len(keys)} keys, "
                            f"{len(values)} defaults")
            continue
        for key, value in zip(keys, values):
            seen.add(key)
            if key not in defaults:
                problems.append(f"README names config key '{key}', which does not exist")
            elif not same_default(value, defaults[key]):
                problems.append(f"README says {key} defaults to '{value}', "
                                f"the binary '{defaults[key]}'")
    for key in defaults:
        if key not in seen:
            problems.append(f"config key '{key}' is missing from README's ## Configuration")
    for p in problems:
        print("not ok:", p)
    print(f"{len(defaults)} keys; config/faceauth.conf and README checked: "
          f"{'FAILED' if problems else 'ok'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
