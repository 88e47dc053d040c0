#!/usr/bin/env python3
"""
make bench: glassproxy beside direct access, Squid and tinyproxy, in one run
on loopback (docs/performance.md explains every scenario and the table).

    bench/bench.py [--binary build/glassproxy] [--seconds 5] [--out DIR]
                   [--only direct,glassproxy,squid,tinyproxy]

Starts nginx as the static origin, then each target in turn (direct access
to nginx, glassproxy, and Squid and tinyproxy when they are installed), runs
every scenario against it and stops it, by PID.  Prints one table: the
absolute figures and the ratios (each proxy / direct; glassproxy / each
peer), and writes the same figures as JSON to DIR/bench-<time>.json and
DIR/latest.json for later comparison.

Load generators: wrk (keep-alive load; bench/proxy.lua makes its requests
absolute-form), ab (a new connection per request), curl (bulk transfers,
CONNECT with curl -p) and bench/conns.py (idle and burst connections).  The
proxy's CPU time comes from /proc/PID/stat and its memory from
/proc/PID/status, since the load generators share the cores with it.
"""
import argparse
import datetime
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import conns  # noqa: E402
import servers  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LUA = os.path.join(HERE, "proxy.lua")
TICK = os.sysconf("SC_CLK_TCK")
PROXIES = ("glassproxy", "squid", "tinyproxy")


# ---- what /proc says about a target ---------------------------------------

def cpu_seconds(pids):
    """utime + stime of every process in pids, in seconds."""
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            continue
    return total / TICK


def status_kib(pids, field):
    """Sum of one /proc/PID/status field (VmRSS, VmHWM) in KiB."""
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith(field + ":"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total


def reset_peak(pids):
    """Writing 5 to clear_refs resets VmHWM to the current RSS (Linux 4.0+),
    so a peak measured afterwards belongs to what ran in between."""
    ok = True
    for pid in pids:
        try:
            with open("/proc/%d/clear_refs" % pid, "w") as f:
                f.write("5")
        except OSError:
            ok = False
    return ok


# ---- one target: where requests go ----------------------------------------

class Target:
    def __init__(self, name, server, origin_port):
        self.name = name
        self.server = server
        self.origin = "127.0.0.1:%d" % origin_port
        self.direct = name == "direct"

    def url(self, path):
        return "http://%s%s" % (self.origin, path)

    def request(self, path):
        target = path if self.direct else self.url(path)
        return ("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: bench\r\n\r\n"
                % (target, self.origin)).encode()

    def curl_proxy(self):
        return [] if self.direct else ["-x", "http://127.0.0.1:%d" % self.server.port]


# ---- scenarios -------------------------------------------------------------

def _num(pattern, text, default=None):
    m = re.search(pattern, text)
    return float(m.group(1)) if m else default


def _ms(value, unit):
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(t, path, clients, seconds):
    """wrk with --latency: req/s, p50/p99 in ms, errors, proxy CPU s/10k."""
    threads = str(min(2, clients))
    if t.direct:
        cmd = ["wrk", "-t", threads, "-c", str(clients), "-d", "%ds" % seconds,
               "--latency", t.url(path)]
        env = os.environ
    else:
        cmd = ["wrk", "-t", threads, "-c", str(clients), "-d", "%ds" % seconds,
               "--latency", "-s", LUA, "http://127.0.0.1:%d" % t.server.port]
        env = dict(os.environ, BENCH_URL=t.url(path), BENCH_HOST=t.origin)
    pids = t.server.pids()
    cpu0 = cpu_seconds(pids)
    out = subprocess.run(cmd, capture_output=True, text=True, env=env,
                         timeout=seconds + 60).stdout
    cpu = cpu_seconds(pids) - cpu0
    lat = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M))
    requests = _num(r"(\d+) requests in", out, 0)
    # A peer that closes after every answer without saying so (tinyproxy)
    # makes wrk count a read error per request, though each was answered:
    # those closes are not failures; refused connections and timeouts are.
    non2xx = _num(r"Non-2xx or 3xx responses: (\d+)", out, 0)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    connect, read, write, tmo = (int(x) for x in sock.groups()) if sock else (0, 0, 0, 0)
    errors = non2xx + connect + write + tmo
    def latency(key):
        m = re.match(r"([\d.]+)(us|ms|s)$", lat.get(key, ""))
        return round(_ms(*m.groups()), 3) if m else None

    # wrk counts 503s as requests: rps is the rate of good answers only.
    rps_all = _num(r"Requests/sec:\s+([\d.]+)", out)
    rps = round(rps_all * (1 - non2xx / requests), 1) if requests and rps_all else None
    return {"rps": rps, "rps_all": rps_all, "closes": read, "p50_ms": latency("50"),
            "p99_ms": latency("99"), "errors": int(errors),
            "cpu_per_10k": round(cpu / requests * 10000, 3) if requests else None}


def run_ab(t, path, count):
    """ab without -k: a new client connection for every request."""
    cmd = ["ab", "-q", "-r", "-n", str(count), "-c", "50", "-s", "10"]
    if not t.direct:
        cmd += ["-X", "127.0.0.1:%d" % t.server.port]
    pids = t.server.pids()
    cpu0 = cpu_seconds(pids)
    res = subprocess.run(cmd + [t.url(path)], capture_output=True, text=True, timeout=300)
    cpu = cpu_seconds(pids) - cpu0
    out = res.stdout
    failed = _num(r"Failed requests:\s+(\d+)", out, 0) + _num(r"Non-2xx responses:\s+(\d+)", out, 0)
    return {"rps": _num(r"Requests per second:\s+([\d.]+)", out),
            "errors": int(failed) if res.returncode == 0 else None,
            "cpu_per_10k": round(cpu / count * 10000, 3)}


def run_curl(t, path, tunnel, runs=5):
    """The median MB/s of runs transfers, the target's CPU seconds per GB
    moved, and its peak RSS during them: VmHWM after a reset (no growth
    figure when it cannot be reset)."""
    pids = t.server.pids()
    rss0 = status_kib(pids, "VmRSS")
    resettable = reset_peak(pids)
    cpu0 = cpu_seconds(pids)
    speeds = []
    for _ in range(runs):
        cmd = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{speed_download}"]
        cmd += (["-p"] if tunnel and not t.direct else []) + t.curl_proxy()
        out = subprocess.run(cmd + [t.url(path)], capture_output=True, text=True,
                             timeout=120).stdout.split()
        if len(out) == 2 and out[0] == "200":
            speeds.append(float(out[1]) / 1e6)
    hwm = status_kib(pids, "VmHWM")
    gb = len(speeds) * servers.FILES["100m"] / 1e9
    speeds.sort()
    return {"mbps": round(speeds[len(speeds) // 2], 1) if speeds else None,
            "cpu_per_gb": round((cpu_seconds(pids) - cpu0) / gb, 3) if gb else None,
            "peak_rss_kib": hwm, "rss_growth_kib": hwm - rss0 if resettable else None}


def run_idle(t, path, idle, seconds):
    """idle connections opened (one request each, then left idle), a 10-client
    wrk run beside them, then one more request on each."""
    pids = t.server.pids()
    rss0 = status_kib(pids, "VmRSS")
    batch = conns.Batch(("127.0.0.1", t.server.port), idle, wave=100)
    first = batch.exchange(t.request(path))
    rss1 = status_kib(pids, "VmRSS")
    load = run_wrk(t, path, 10, seconds)
    again = batch.exchange(t.request(path))
    batch.close()
    # Kept = answered again after the load: a peer that closes idle (or
    # every) connection, or refused them with 503, did not keep them.
    kept = sum(1 for s in again if s == 200)
    return {"first_200": sum(1 for s in first if s == 200), "served_after": kept,
            "kib_per_conn": round((rss1 - rss0) / kept, 2) if kept else None,
            "rps": load["rps"], "errors": load["errors"]}


def run_burst(t, path, clients):
    batch = conns.Batch(("127.0.0.1", t.server.port), clients, wave=clients)
    statuses = batch.exchange(t.request(path))
    batch.close()
    answered = sum(1 for s in statuses if s == 200)
    return {"non_200": clients - answered, "refused": batch.refused,
            "status_503": sum(1 for s in statuses if s == 503)}


def warm(t, paths):
    """A few requests first, so a caching proxy holds the objects (a hit
    scenario measures hits) and every pool has a connection."""
    for path in paths:
        for _ in range(3):
            subprocess.run(["curl", "-s", "-o", "/dev/null"] + t.curl_proxy() + [t.url(path)],
                           timeout=30)


def measure(t, seconds):
    r = {}
    warm(t, ["/1k", "/64k", "/nostore/1k"])
    r["rss_rest_kib"] = status_kib(t.server.pids(), "VmRSS")
    r["hit-1k"] = run_wrk(t, "/1k", 50, seconds)
    r["hit-64k"] = run_wrk(t, "/64k", 50, seconds)
    r["miss-1k"] = run_wrk(t, "/nostore/1k", 50, seconds)
    r["noka-1k"] = run_ab(t, "/1k", 20000)
    r["big-100m"] = run_curl(t, "/100m", tunnel=False)
    r["tunnel-100m"] = run_curl(t, "/100m", tunnel=True)
    r["hit-1k-c10"] = run_wrk(t, "/1k", 10, seconds)
    r["idle-2k"] = run_idle(t, "/1k", 2000, seconds)
    r["burst-500"] = run_burst(t, "/1k", 500)
    return r


# ---- the table -------------------------------------------------------------

# (label, scenario, key, ratios?) -- ratios are printed for rates, times and
# sizes; for counts (errors, connections) the absolute figure says it all.
ROWS = [
    ("hit-1k req/s", "hit-1k", "rps", True),
    ("hit-1k p50 ms", "hit-1k", "p50_ms", True),
    ("hit-1k p99 ms", "hit-1k", "p99_ms", True),
    ("hit-1k errors", "hit-1k", "errors", False),
    ("hit-64k req/s", "hit-64k", "rps", True),
    ("hit-64k p99 ms", "hit-64k", "p99_ms", True),
    ("miss-1k req/s", "miss-1k", "rps", True),
    ("miss-1k p50 ms", "miss-1k", "p50_ms", True),
    ("miss-1k p99 ms", "miss-1k", "p99_ms", True),
    ("noka-1k req/s", "noka-1k", "rps", True),
    ("noka-1k errors", "noka-1k", "errors", False),
    ("big-100m MB/s", "big-100m", "mbps", True),
    ("big-100m RSS growth KiB", "big-100m", "rss_growth_kib", True),
    ("tunnel-100m MB/s", "tunnel-100m", "mbps", True),
    ("tunnel-100m RSS growth KiB", "tunnel-100m", "rss_growth_kib", True),
    ("hit-1k 10 clients req/s", "hit-1k-c10", "rps", True),
    ("idle-2k answered 1st req", "idle-2k", "first_200", False),
    ("idle-2k KiB per idle conn", "idle-2k", "kib_per_conn", True),
    ("idle-2k 10 clients req/s", "idle-2k", "rps", True),
    ("idle-2k errors under load", "idle-2k", "errors", False),
    ("idle-2k kept, served after", "idle-2k", "served_after", False),
    ("burst-500 non-200", "burst-500", "non_200", False),
    ("hit CPU s / 10k req", "hit-1k", "cpu_per_10k", True),
    ("miss CPU s / 10k req", "miss-1k", "cpu_per_10k", True),
    ("noka CPU s / 10k req", "noka-1k", "cpu_per_10k", True),
    ("big-100m CPU s / GB", "big-100m", "cpu_per_gb", True),
    ("tunnel-100m CPU s / GB", "tunnel-100m", "cpu_per_gb", True),
    ("RSS at rest KiB", None, "rss_rest_kib", True),
]


def value(results, target, scenario, key):
    r = results.get(target)
    if r is None:
        return None
    r = r.get(scenario) if scenario else r
    return r.get(key) if isinstance(r, dict) else None


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float) and v != int(v) and abs(v) < 100:
        return "%.3g" % v if abs(v) < 1 else "%.2f" % v
    return "%d" % round(v)


def ratio(a, b):
    return "-" if a is None or b is None or b == 0 else "%.2f" % (a / b)


def table(results):
    targets = [t for t in ("direct",) + PROXIES if t in results]
    peers = [p for p in PROXIES[1:] if p in results]
    cols = targets + ["%s/dir" % p[:5] for p in PROXIES if p in results]
    cols += ["gp/%s" % p[:5] for p in peers if "glassproxy" in results]
    lines = ["%-27s" % "scenario" + "".join("%11s" % c for c in cols)]
    lines.append("-" * len(lines[0]))
    for label, scen, key, ratios in ROWS:
        vals = {t: value(results, t, scen, key) for t in targets}
        row = [fmt(vals[t]) for t in targets]
        for p in PROXIES:
            if p in results:
                row.append(ratio(vals[p], vals.get("direct")) if ratios else "")
        if "glassproxy" in results:
            row += [ratio(vals["glassproxy"], vals[p]) if ratios else "" for p in peers]
        lines.append("%-27s" % label + "".join("%11s" % c for c in row))
    return "\n".join(lines)


# ---- the run ---------------------------------------------------------------

def version(cmd):
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except OSError:
        return None
    return ((res.stdout or "") + (res.stderr or "")).strip().splitlines()[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "glassproxy"))
    ap.add_argument("--seconds", type=int, default=int(os.environ.get("BENCH_SECONDS", "5")))
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "bench"))
    ap.add_argument("--only", default="direct," + ",".join(PROXIES))
    args = ap.parse_args()
    for tool in ("nginx", "wrk", "ab", "curl"):
        if shutil.which(tool) is None:
            sys.exit("bench: %s is missing: run scripts/deps bench" % tool)
    # 2,000 idle connections need descriptors in this process and the targets.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    # SIGTERM (a CI timeout) unwinds like Ctrl-C, so every finally below stops
    # what it started, by PID.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("bench: terminated"))
    tmp = tempfile.mkdtemp(prefix="glassproxy-bench-")
    results, started = {}, time.monotonic()
    meta = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
            "cpus": os.cpu_count(), "seconds": args.seconds, "nofile": hard,
            "tcp_congestion": congestion_control(),
            "versions": {"glassproxy": version([args.binary, "--version"]),
                         "nginx": version(["nginx", "-v"]), "wrk": version(["wrk", "-v"]),
                         "squid": version(["squid", "-v"]),
                         "tinyproxy": version(["tinyproxy", "-v"])}}
    origin = servers.Nginx(tmp)
    try:
        for name in args.only.split(","):
            results_for(name, tmp, origin, args, results, meta)
    finally:
        origin.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    meta["elapsed_s"] = round(time.monotonic() - started, 1)
    report(results, meta, args.out)


def congestion_control():
    """The kernel's default TCP congestion control, which every socket of
    the run uses: with BBR the 100 MiB rows measure its pacing on a busy
    machine more than the proxies (docs/performance.md)."""
    try:
        with open("/proc/sys/net/ipv4/tcp_congestion_control") as f:
            return f.read().strip()
    except OSError:
        return "unknown"


def results_for(name, tmp, origin, args, results, meta):
    if name in ("squid", "tinyproxy") and shutil.which(name) is None:
        print("bench: %s is not installed: skipped" % name, file=sys.stderr)
        return
    make = {"direct": lambda: origin,
            "glassproxy": lambda: servers.Glassproxy(tmp, args.binary, origin.port),
            "squid": lambda: servers.Squid(tmp, origin.port),
            "tinyproxy": lambda: servers.Tinyproxy(tmp, origin.port)}[name]
    print("bench: %s ..." % name, file=sys.stderr, flush=True)
    server = make()
    try:
        if name == "glassproxy":
            meta["glassproxy_cache"] = server.cache
        results[name] = measure(Target(name, server, origin.port), args.seconds)
    finally:
        if server is not origin:
            server.stop()


def report(results, meta, out):
    text = table(results)
    print()
    print(text)
    print()
    print("ratios: X/dir = proxy / direct nginx; gp/X = glassproxy / peer. For req/s and MB/s "
          "higher is better; for ms, KiB and CPU s lower is better.")
    if not meta.get("glassproxy_cache"):
        print("glassproxy has no --cache-dir yet: its hit-* rows are misses relayed to nginx.")
    print("%d CPUs, %ds per wrk run, %.0fs in all, TCP congestion control %s." % (
        meta["cpus"], meta["seconds"], meta["elapsed_s"], meta["tcp_congestion"]))
    if meta["tcp_congestion"] == "bbr":
        print("With bbr a third runnable process halves a loopback transfer (a busy loop "
              "does it to direct nginx): read the 100 MiB rows with docs/performance.md.")
    os.makedirs(out, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    doc = {"meta": meta, "results": results, "table": text}
    for name in ("bench-%s.json" % stamp, "latest.json"):
        with open(os.path.join(out, name), "w") as f:
            json.dump(doc, f, indent=1, sort_keys=True)
    print("written: %s" % os.path.join(out, "bench-%s.json" % stamp))


if __name__ == "__main__":
    main()
