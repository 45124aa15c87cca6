"""report.py - the table and bench/results.json of bench/run.

    report.py RESULTS.jsonl RESULTS.json   print the table, write the JSON
    report.py --machine                    one JSON object: CPU, cores, RAM

Reads the JSON lines bench/run collected and holds every figure against the
floor or target it is compared with, all from the same run:
  authenticate p50 at concurrency 1   / pipeline sum on the same probes (<= 1.15)
  requests/s at saturation            / (cores / pipeline sum)          (>= 0.9)
  search p50                          / 10 ms at 100k, 100 ms at 1M      (<= 1)
  RSS with 100k templates             / 400 MB                           (<= 1)
  ready after start with 100k         / 2 s                              (<= 1)
  non-2xx and errors over every load run                                 (== 0)
"""
import json
import os
import platform
import re
import subprocess
import sys
import time

TARGETS = {"p50_vs_sum": 1.15, "rps_vs_floor": 0.9, "search_100k_ms": 10.0,
           "search_1m_ms": 100.0, "rss_100k_mb": 400.0, "ready_s": 2.0}


def machine():
    model = "unknown CPU"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        m = re.search(r"^Model name:\s*(.+)$", out, re.M)
        model = m.group(1).strip() if m else model
    except OSError:
        pass
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    try:
        import cv2
        opencv = cv2.__version__
    except ImportError:
        opencv = "?"
    return {"cpu": model, "cores": os.cpu_count(), "ram_gib": round(mem_kb / 2 ** 20, 1),
            "kernel": platform.release(), "opencv_python": opencv,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                rows.append(json.loads(line))
    return rows


def ratio(x, floor):
    return x / floor if floor else float("nan")


def fmt_stage_row(label, r):
    return "  %-38s %7.2f %7.2f %7.2f %6.2f %7.2f %8.2f %7.2f" % (
        label, r["decode_ms"], r["detect_ms"], r["landmarks_ms"], r["align_ms"],
        r["embed_ms"], r["sum_ms"], r.get("cpu_ms", float("nan")))


def pipeline_section(rows, out):
    out.append("Pipeline, in process, one thread: median ms per image")
    out.append("  %-38s %7s %7s %7s %6s %7s %8s %7s" % (
        "image", "decode", "detect", "landm.", "align", "embed", "sum", "cpu"))
    pipe = {}
    for r in rows:
        if "set" not in r:
            continue
        if r.get("skipped"):
            out.append("  %-38s %s" % (r["set"], "skipped: " + r["skipped"]))
            continue
        if r.get("summary"):
            pipe[r["set"]] = r
            label = "%s: all %d images x runs (%d)" % (r["set"], r["images"], r["runs"])
            if r["set"].endswith("-full"):
                label = "%s decoded in full (before, %d)" % (r["set"][:-5], r["runs"])
        else:
            label = "%s %dx%d %df /%d" % (os.path.basename(r["image"]), r["width"],
                                         r["height"], r["faces"], r["reduce"])
        line = fmt_stage_row(label, r)
        if r.get("summary") and r["cos_full"] < 0.99999:
            line += "  (min cos to full decode %.4f)" % r["cos_full"]
        out.append(line)
    out.append("  (NxM Kf /R: image size, faces found, decode reduction; landmarks and embed "
               "for the largest face; cpu: thread CPU time of the whole pass)")
    for name in ("demo", "phone"):
        if name in pipe and name + "-full" in pipe:
            red, full = pipe[name], pipe[name + "-full"]
            out.append("  reduced decoding, %s: median sum %.2f -> %.2f ms (x%.2f), mean "
                       "%.2f -> %.2f ms (x%.2f), median cpu %.2f -> %.2f ms (x%.2f)" % (
                           name, full["sum_ms"], red["sum_ms"], ratio(red["sum_ms"], full["sum_ms"]),
                           full["sum_mean_ms"], red["sum_mean_ms"],
                           ratio(red["sum_mean_ms"], full["sum_mean_ms"]),
                           full["cpu_ms"], red["cpu_ms"], ratio(red["cpu_ms"], full["cpu_ms"])))
    media = next((r for r in rows if r.get("bench") == "media"), None)
    if media and "probes-r1" in pipe:
        out.append("  storing original + thumbnail durably (2 x write, fsync, rename, fsync dir): "
                   "p50 %.2f ms, p99 %.2f ms (x%.3f of the probes' pipeline sum)" % (
                       media["p50_ms"], media["p99_ms"],
                       ratio(media["p50_ms"], pipe["probes-r1"]["sum_ms"])))
    commit = next((r for r in rows if r.get("bench") == "commit"), None)
    if commit:
        out.append("  database commit of a request, durable (synchronous=FULL) vs NORMAL: "
                   "p50 %.2f vs %.2f ms (x%.2f), p99 %.2f vs %.2f ms" % (
                       commit["full_p50_ms"], commit["normal_p50_ms"], commit["full_vs_normal"],
                       commit["full_p99_ms"], commit["normal_p99_ms"]))
    return pipe


def median(values):
    v = sorted(values)
    if not v:
        return None
    return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2


def auth_rows(rows, pipe, cores):
    """The load runs with their floors and ratios filled in; (rows, floor ms)."""
    rounds = {k[len("probes-r"):]: v for k, v in pipe.items() if k.startswith("probes-r")}
    if not rounds:
        return [], None
    floor_ms = median(r["sum_ms"] for r in rounds.values())
    floor_cpu = median(r["cpu_ms"] for r in rounds.values())
    loads = [r for r in rows if r.get("auth") in ("url", "data") and r.get("phase") != "warmup"]
    for r in loads:
        mine = rounds.get(r["phase"][len("round"):]) if r["phase"].startswith("round") else None
        floor = mine["sum_ms"] if mine else floor_ms
        cpu = mine["cpu_ms"] if mine else floor_cpu
        c = r["concurrency"]
        r["floor_ms"] = floor
        r["rps_vs_floor"] = ratio(r["rps"], min(c, cores) * 1e3 / floor)
        r["p50_vs_sum"] = ratio(r["p50_ms"], floor)
        r["cpu_ms_per_req"] = 1e3 * r["server_cpu_s"] / max(r["requests"], 1)
        r["cpu_vs_pipeline"] = ratio(r["cpu_ms_per_req"], cpu)
        r["server_share_pct"] = 100 * r["server_cpu_s"] / (cores * r["duration_s"])
    return loads, floor_ms


def auth_section(rows, pipe, cores, out, res):
    enroll = next((r["enroll"] for r in rows if "enroll" in r), {})
    loads, floor_ms = auth_rows(rows, pipe, cores)
    if not loads:
        out.append("Authenticate over HTTP: not measured")
        return
    out.append("")
    filled = next((r["templates"] for r in rows if r.get("memory") == "filled"), 0)
    out.append("Authenticate over HTTP: %d users enrolled through the API, server holding a "
               "%dk-template DB" % (enroll.get("users", 0), filled // 1000))
    out.append("  floor: pipeline sum on the same probes, median of 3 rounds %.2f ms -> %.1f req/s "
               "on 1 core, %.1f on %d cores" % (floor_ms, 1e3 / floor_ms, cores * 1e3 / floor_ms,
                                                 cores))
    out.append("  %-5s %4s %-6s %6s %6s %7s %5s %7s %7s %6s %5s %4s %4s %5s %4s" % (
        "probe", "conc", "run", "req/s", "xfloor", "p50 ms", "xsum", "p95 ms", "p99 ms",
        "cpu ms", "xcpu", "srv%", "bsy%", "non2x", "err"))
    for r in loads:
        out.append("  %-5s %4d %-6s %6.1f %6.2f %7.2f %5.2f %7.2f %7.2f %6.2f %5.2f %4.0f %4.0f "
                   "%5d %4d" % (
                       r["auth"], r["concurrency"], r["phase"], r["rps"], r["rps_vs_floor"],
                       r["p50_ms"], r["p50_vs_sum"], r["p95_ms"], r["p99_ms"],
                       r["cpu_ms_per_req"], r["cpu_vs_pipeline"], r["server_share_pct"],
                       r["machine_busy_pct"], r["non2xx"], r["errors"]))
    out.append("  (run: roundN = concurrency 1, compared with the floor measured just before it;")
    out.append("   xfloor: req/s / (min(conc, cores) / floor); xsum: p50 / floor; cpu ms: server "
               "CPU per request;")
    out.append("   xcpu: that / pipeline CPU; srv%: server CPU / all cores; bsy%: all CPUs busy, "
               "any process)")
    for mode in ("url", "data"):
        c1 = [r["p50_vs_sum"] for r in loads if r["auth"] == mode and r["concurrency"] == 1]
        if c1:
            res["auth_%s_p50_c1_vs_sum" % mode] = median(c1)
    c1_cpu = [r["cpu_vs_pipeline"] for r in loads if r["concurrency"] == 1]
    if c1_cpu:
        res["auth_c1_cpu_vs_pipeline"] = median(c1_cpu)
    sat = [r for r in loads if r["concurrency"] >= cores]
    if sat:
        best = max(sat, key=lambda r: r["rps"])
        res["auth_rps_sat_vs_floor"] = ratio(best["rps"], cores * 1e3 / floor_ms)
        res["auth_rps_sat_run"] = "%s c=%d %s" % (best["auth"], best["concurrency"], best["phase"])
        res["auth_cpu_vs_pipeline"] = median(r["cpu_vs_pipeline"] for r in sat)
        out.append("  saturation: best run %s, %.1f req/s = x%.2f of %d cores / floor (other "
                   "processes only lower it)" % (res["auth_rps_sat_run"], best["rps"],
                                                 res["auth_rps_sat_vs_floor"], cores))
        out.append("  server CPU per request at saturation, median: x%.2f of the pipeline's -> "
                   "x%.2f of the floor's throughput with the machine to itself" % (
                       res["auth_cpu_vs_pipeline"], 1 / res["auth_cpu_vs_pipeline"]))
    for r in loads:
        if r.get("first_non2xx"):
            out.append("  non-2xx (%s c=%d): %s" % (r["auth"], r["concurrency"],
                                                    r["first_non2xx"][:200]))


def http_search_section(rows, out, res):
    """The search endpoint under load (same server, same templates)."""
    runs = [r for r in rows if r.get("auth") == "search"]
    for r in runs:
        res["http_search_c%d_rps" % r["concurrency"]] = r["rps"]
        res["http_search_c%d_p50_ms" % r["concurrency"]] = r["p50_ms"]
        out.append("")
        out.append("Search over HTTP (probe as data: URI, every template of the customer):")
        out.append("  c=%d: %.1f req/s, p50 %.1f ms, p95 %.1f ms, non-2xx %d, errors %d, "
                   "machine busy %.0f%%" % (r["concurrency"], r["rps"], r["p50_ms"], r["p95_ms"],
                                            r["non2xx"], r["errors"], r["machine_busy_pct"]))


def nodes_section(rows, cores, out, res):
    """Two nodes on one database against one node at the same total concurrency."""
    pairs = [r for r in rows if r.get("nodes") == 2]
    if not pairs:
        return
    one = {r["concurrency"]: r for r in rows if r.get("auth") == "data" and r.get("phase") == "load"}
    out.append("")
    out.append("Two nodes on one database, this machine's cores shared by both (data: probes):")
    for r in pairs:
        c, total = r["concurrency"], r["a"]["rps"] + r["b"]["rps"]
        base = one.get(c)
        res["two_nodes_c%d_vs_one" % c] = ratio(total, base["rps"]) if base else None
        out.append("  c=%d (c/2 per node): %.1f + %.1f = %.1f req/s%s, p50 %.0f / %.0f ms, "
                   "non-2xx %d, machine busy %.0f%%" % (
                       c, r["a"]["rps"], r["b"]["rps"], total,
                       " = x%.2f of one node at c=%d" % (total / base["rps"], c) if base else "",
                       r["a"]["p50_ms"], r["b"]["p50_ms"], r["a"]["non2xx"] + r["b"]["non2xx"],
                       r["machine_busy_pct"]))
        if "server_cpu_s" in r and base:
            # What the nodes got of the cores, and what a request cost them:
            # on a shared machine two processes may win a larger share than one.
            secs = (r["a"]["duration_s"] + r["b"]["duration_s"]) / 2
            cpu2 = 1000 * r["server_cpu_s"] / (r["a"]["requests"] + r["b"]["requests"])
            cpu1 = 1000 * base["server_cpu_s"] / base["requests"]
            res["two_nodes_c%d_cpu_vs_one" % c] = ratio(cpu2, cpu1)
            out.append("    server CPU: both nodes %.0f%% of the cores (one node %.0f%%); "
                       "%.1f ms per request (one node %.1f ms, x%.2f)" % (
                           100 * r["server_cpu_s"] / secs / cores,
                           100 * base["server_cpu_s"] / base["duration_s"] / cores,
                           cpu2, cpu1, cpu2 / cpu1))
    out.append("  (one machine: two processes split the same cores, so about x1.0 is expected)")


def search_section(rows, out, res):
    srch = [r for r in rows if r.get("bench") == "index_search"]
    out.append("")
    out.append("Search 1:N, one thread, 512-D synthetic unit vectors, one template per user")
    if not srch or srch[0].get("skipped"):
        out.append("  skipped: " + (srch[0]["skipped"] if srch else
                                "not run (--database or --http-only: server runs only)"))
        return
    out.append("  %9s %9s %9s %9s %9s %9s" % ("templates", "p50 ms", "p99 ms", "target", "xtarget",
                                           "index MiB"))
    for r in srch:
        target = {100000: TARGETS["search_100k_ms"], 1000000: TARGETS["search_1m_ms"]}.get(r["n"])
        out.append("  %9d %9.3f %9.3f %9s %9s %9.1f" % (
            r["n"], r["p50_ms"], r["p99_ms"], "%g ms" % target if target else "-",
            "%.2f" % ratio(r["p50_ms"], target) if target else "-", r["bytes"] / 2 ** 20))
        if target:
            res["search_%d_p50_vs_target" % r["n"]] = ratio(r["p50_ms"], target)


def memory_section(rows, out, res):
    mem = {r["memory"]: r for r in rows if "memory" in r}
    out.append("")
    out.append("Memory and start-up (server RSS from /proc/<pid>/status)")
    if "empty" in mem:
        out.append("  empty database:            RSS %6.1f MB, ready %.2f s after exec" % (
            mem["empty"]["rss_kb"] / 1024, mem["empty"]["ready_s"]))
    # The 400 MB and 2 s targets are for 100k templates: a smaller --fill
    # is shown without them, and they stay "not measured".
    at_target = mem.get("filled", {}).get("templates") == 100000
    def of_rss(kb):
        return " (x%.2f of 400 MB)" % ratio(kb / 1024, TARGETS["rss_100k_mb"]) if at_target else ""
    if "filled" in mem:
        f = mem["filled"]
        if at_target:
            res["ready_100k_vs_target"] = ratio(f["ready_s"], TARGETS["ready_s"])
        out.append("  %d templates, at start: RSS %6.1f MB%s, ready %.2f s%s" % (
            f["templates"], f["rss_kb"] / 1024, of_rss(f["rss_kb"]), f["ready_s"],
            " (x%.2f of 2 s)" % res["ready_100k_vs_target"] if at_target else ""))
    if "after_load" in mem:
        a = mem["after_load"]
        out.append("  after the load runs:       RSS %6.1f MB%s" % (a["rss_kb"] / 1024,
                                                                  of_rss(a["rss_kb"])))
    if "growth" in mem:
        g = mem["growth"]
        res["rss_growth_ratio"] = ratio(g["end_kb"], g["start_kb"])
        out.append("  %d s load run (c=4):      RSS %6.1f -> %6.1f MB (x%.3f)" % (
            g["seconds"], g["start_kb"] / 1024, g["end_kb"] / 1024, res["rss_growth_ratio"]))
    # The target holds for the server as it runs, not just after start: the
    # largest RSS seen with the templates loaded.
    seen = [mem[k]["rss_kb"] for k in ("filled", "after_load") if k in mem]
    if "growth" in mem:
        seen += [mem["growth"]["end_kb"]] + [kb for _, kb in mem["growth"]["samples"]]
    if seen and at_target:
        res["rss_100k_vs_target"] = ratio(max(seen) / 1024, TARGETS["rss_100k_mb"])


def targets_section(rows, res, out):
    loads = [r for r in rows if r.get("auth")]
    bad = sum(r["non2xx"] for r in loads)
    errs = sum(r["errors"] for r in loads)
    checks = [
        ("authenticate p50 c=1 <= 1.15 x pipeline sum (data:, median of 3)", res.get("auth_data_p50_c1_vs_sum"), 1.15, "le"),
        ("authenticate p50 c=1 <= 1.15 x pipeline sum (url, median of 3)", res.get("auth_url_p50_c1_vs_sum"), 1.15, "le"),
        ("throughput at saturation >= 0.9 x cores/sum (best run)", res.get("auth_rps_sat_vs_floor"), 0.9, "ge"),
        ("  the same from CPU time: c=1 server CPU/request <= 1.15 x pipeline", res.get("auth_c1_cpu_vs_pipeline"), 1.15, "le"),
        ("  the same from CPU time: pipeline / server CPU at saturation >= 0.9",
         1 / res["auth_cpu_vs_pipeline"] if res.get("auth_cpu_vs_pipeline") else None, 0.9, "ge"),
        ("search 100k p50 <= 10 ms", res.get("search_100000_p50_vs_target"), 1.0, "le"),
        ("search 1M p50 <= 100 ms", res.get("search_1000000_p50_vs_target"), 1.0, "le"),
        ("RSS with 100k templates <= 400 MB (largest seen)", res.get("rss_100k_vs_target"), 1.0, "le"),
        ("ready <= 2 s after start with 100k templates", res.get("ready_100k_vs_target"), 1.0, "le"),
        ("no RSS growth over the long run (end/start <= 1.05)", res.get("rss_growth_ratio"), 1.05, "le"),
    ]
    out.append("")
    out.append("Targets")
    verdicts = {}
    for name, value, limit, how in checks:
        if value is None:
            out.append("  [ -- ] %-62s not measured" % name)
            continue
        ok = value <= limit if how == "le" else value >= limit
        verdicts[name] = ok
        out.append("  [%s] %-62s x%.3f" % (" ok " if ok else "MISS", name, value))
    ok = bad == 0 and errs == 0
    verdicts["zero non-2xx and errors"] = ok
    out.append("  [%s] %-62s %d non-2xx, %d errors in %d runs" % (
        " ok " if ok else "MISS", "zero non-2xx and errors in every load run", bad, errs,
        len(loads)))
    return verdicts


def report(src, dst):
    rows = load(src)
    mach = next((r["machine"] for r in rows if "machine" in r), machine())
    db = next((r["database"] for r in rows if "database" in r), "sqlite")
    wall = next((r for r in rows if "wall_s" in r), {})
    res = {}
    out = ["faceauth bench/run - %s, %d cores, %.1f GiB RAM, %s (wall %.0f s, %s s per load run)"
           ", database %s" % (mach["cpu"], mach["cores"], mach["ram_gib"], mach["date"],
                              wall.get("wall_s", 0), wall.get("duration_s", "?"), db), ""]
    pipe = pipeline_section(rows, out)
    auth_section(rows, pipe, mach["cores"], out, res)
    http_search_section(rows, out, res)
    nodes_section(rows, mach["cores"], out, res)
    search_section(rows, out, res)
    memory_section(rows, out, res)
    verdicts = targets_section(rows, res, out)
    print("\n".join(out))
    with open(dst, "w") as f:
        json.dump({"machine": mach, "ratios": res, "targets": verdicts, "table": out,
                   "raw": rows}, f, indent=1)
        f.write("\n")


def main():
    if len(sys.argv) == 2 and sys.argv[1] == "--machine":
        print(json.dumps(machine()))
    elif len(sys.argv) == 3:
        report(sys.argv[1], sys.argv[2])
    else:
        sys.exit("usage: report.py RESULTS.jsonl RESULTS.json | --machine")


if __name__ == "__main__":
    main()
