"""pgmode.py - the end-to-end suite on two nodes that share one PostgreSQL.

Turned on by FA_E2E_DATABASE (or harness's --pg, which takes FA_PG_URL): the URL of a
PostgreSQL account that may CREATE DATABASE, e.g.
postgresql://postgres@127.0.0.1:5433/postgres. Then

- every data folder a test uses gets a database of its own, made on first
  use and named in <data>/.e2e-database, so the tests stay as independent
  as their temporary folders are (they run in parallel, and many add the
  same customer names);
- the binary the tests run is pgnode.py, which reads that file for the
  folder given with --data and execs the real faceauth with
  FACEAUTH_DATABASE set: CLI calls and servers alike reach the right
  database without any test knowing;
- harness.Server starts two nodes on two data folders (nothing shared on
  disk) and one database, and sends requests to them in turn.

Only the standard library and the psql client: no driver to install.
"""
import os
import secrets
import subprocess
import urllib.parse

ADMIN_ENV = "FA_E2E_DATABASE"
REAL_BINARY_ENV = "FA_E2E_REAL_BINARY"
MARK = ".e2e-database"


def admin_url():
    return os.environ.get(ADMIN_ENV, "")


def enabled():
    return admin_url() != ""


def psql(url, sql):
    """Run one statement as the admin account; raises with psql's message."""
    r = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError("psql %r failed: %s" % (sql, r.stderr.strip()))
    return r.stdout


def url_with_database(url, name):
    """url with its database (the path) replaced by name."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + name))


def database_for(data):
    """The URL of data's own database, created on first use."""
    mark = os.path.join(data, MARK)
    try:
        with open(mark) as f:
            return f.read().strip()
    except FileNotFoundError:
        pass
    os.makedirs(data, exist_ok=True)
    name = "fa_e2e_%d_%s" % (os.getpid(), secrets.token_hex(4))
    psql(admin_url(), "CREATE DATABASE %s" % name)
    url = url_with_database(admin_url(), name)
    share_database(data, url)
    return url


def share_database(data, url):
    """Make data (a second node's folder) use the database url."""
    os.makedirs(data, exist_ok=True)
    tmp = os.path.join(data, MARK + ".tmp")
    with open(tmp, "w") as f:
        f.write(url + "\n")
    os.replace(tmp, os.path.join(data, MARK))


def drop_databases_under(root):
    """Drop the databases that data folders below root were given (a test's
    clean-up: a long-lived cluster would otherwise fill up with them)."""
    names = set()
    for folder, _, files in os.walk(root):
        if MARK in files:
            with open(os.path.join(folder, MARK)) as f:
                names.add(urllib.parse.urlsplit(f.read().strip()).path.lstrip("/"))
    for name in sorted(names):
        try:
            psql(admin_url(), "DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)
        except (RuntimeError, subprocess.TimeoutExpired):
            pass  # the throw-away cluster goes anyway; never fail a test here


def data_dir_of(argv):
    """The --data value of a faceauth command line, None when absent."""
    for i, a in enumerate(argv[:-1]):
        if a == "--data":
            return argv[i + 1]
    return None
