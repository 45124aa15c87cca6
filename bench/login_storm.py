#!/usr/bin/env python3
"""bench/login_storm.py — a storm of concurrent wrong-password logins.

    /usr/bin/python3 bench/login_storm.py BINARY [--logins N] [KEY=VALUE ...]

Starts BINARY (a faceauth build) on a fresh database with one customer,
fires N (default 100) wrong-password logins at once from N threads while a
poller asks GET /healthz every 50 ms, and prints how the logins were
answered (HTTP status counts), how long the storm took, and /healthz's
answers and slowest time. KEY=VALUE lines go to the server's config
(e.g. login_hash_concurrency=2). Login throttling per address is switched
off (login_fail_limit = 0) unless given, so the figure is about the hash
slots alone, and so is the per-address connection limit (the N clients
share 127.0.0.1); a build before them does not know those keys: pass --old.
"""
import argparse
import collections
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
import harness as h  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def storm(srv, n):
    answers, health = [], []
    barrier = threading.Barrier(n + 1)
    stop = threading.Event()

    def login():
        barrier.wait()
        try:
            answers.append(srv.api("login", {"customerName": "acme", "password": "wrong"},
                                   timeout=120)[0])
        except OSError:
            answers.append("no answer")

    def poll():
        while not stop.is_set():
            began = time.time()
            try:
                code = srv.request("GET", "/healthz", timeout=30)[0]
            except OSError:
                code = "no answer"
            health.append((code, time.time() - began))
            time.sleep(0.05)

    threads = [threading.Thread(target=login) for _ in range(n)]
    for t in threads:
        t.start()
    poller = threading.Thread(target=poll)
    poller.start()
    began = time.time()
    barrier.wait()
    for t in threads:
        t.join()
    took = time.time() - began
    stop.set()
    poller.join()
    return answers, health, took


def main():
    p = argparse.ArgumentParser()
    p.add_argument("binary")
    p.add_argument("--logins", type=int, default=100)
    p.add_argument("--old", action="store_true", help="a build without login throttling")
    p.add_argument("config", nargs="*")
    a = p.parse_args()
    lines = ["engines = 1"] + [c.replace("=", " = ", 1) for c in a.config]
    if not a.old and not any(c.startswith("login_fail_limit") for c in a.config):
        lines.append("login_fail_limit = 0")
    if not a.old and not any(c.startswith("max_connections_per_ip") for c in a.config):
        lines.append("max_connections_per_ip = 0")
    work = h.temp_dir()
    data = os.path.join(work, "data")
    srv = None
    try:
        h.add_customer(a.binary, data, "acme", "s3cret-acme")
        srv = h.Server(a.binary, os.path.join(ROOT, "models"), data, lines).start()
        answers, health, took = storm(srv, a.logins)
        counts = collections.Counter(answers)
        print("logins      %d at once, answered in %.1f s: %s" %
              (a.logins, took, ", ".join("%s x%d" % (k, v) for k, v in sorted(
                  counts.items(), key=lambda kv: str(kv[0])))))
        hc = collections.Counter(c for c, _ in health)
        print("/healthz    %d polls: %s; slowest %.2f s" %
              (len(health), ", ".join("%s x%d" % (k, v) for k, v in hc.items()),
               max([s for _, s in health] or [0])))
    finally:
        if srv is not None:
            srv.stop()
        h.cleanup(work)


if __name__ == "__main__":
    main()
