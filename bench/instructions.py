#!/usr/bin/env python3
"""
Instructions per request: the regression check that a noisy machine cannot
shake (make bench-check, make bench-record; docs/performance.md).

    bench/instructions.py                 measure and print
    bench/instructions.py --record        measure and rewrite bench/instructions.json
    bench/instructions.py --keep DIR      also keep each scenario's callgrind
                                          profile (DIR/<scenario>.callgrind)

glassproxy runs under valgrind --tool=callgrind, which counts the
instructions it executes (Ir): a count, not a time, so another process on
the same cores changes nothing.  A tiny Python origin (harness/origin.py) on
loopback answers; per scenario the proxy serves WARMUP requests (pools
filled, lazy initialisation done), its counters are zeroed with
callgrind_control -z, it serves REQUESTS more, and callgrind_control -d dumps
the counts of exactly those.  Instructions per request = the dump's total /
REQUESTS, for every thread of the proxy together.

Scenarios: hit (a cacheable 1 KiB answer, max-age=3600, on one keep-alive
connection: a hit once the cache is wired in), miss (the same with
Cache-Control: no-store) and noka (the cacheable answer, a new client
connection and Connection: close for every request).

A library, too: harness/test_perf_regression.py calls measure() and compare().
"""
import argparse
import glob
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "harness"))
from origin import Origin  # noqa: E402

RECORD = os.path.join(HERE, "instructions.json")
WARMUP = 20
REQUESTS = 200
TOLERANCE = 0.10  # a scenario more than 10 % worse than the record fails
SCENARIOS = ("hit", "miss", "noka")
READY = re.compile(rb"glassproxy: listening on (\S+):(\d+)\n")
TIMEOUT = 60  # seconds: valgrind makes everything ~50x slower

BODY = bytes(range(256)) * 4  # 1 KiB


def _answer(cache_control):
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
            b"Cache-Control: " + cache_control + b"\r\n"
            b"Content-Length: %d\r\n\r\n" % len(BODY)) + BODY


ANSWERS = {"/hit": _answer(b"max-age=3600"), "/miss": _answer(b"no-store")}


def _read_response(sock, buf):
    """One response with a Content-Length body; returns (status, rest)."""
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("proxy closed before a response head")
        buf += data
    head, _, buf = buf.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    m = re.search(rb"\r\ncontent-length:\s*(\d+)", head.lower())
    need = int(m.group(1)) if m else 0
    while len(buf) < need:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("proxy closed inside a body")
        buf += data
    return status, buf[need:]


class Client:
    """Sends requests for one scenario through the proxy, one at a time."""

    def __init__(self, proxy, origin, scenario):
        self.proxy, self.scenario, self.sock, self.buf = proxy, scenario, None, b""
        path = "/miss" if scenario == "miss" else "/hit"
        close = b"Connection: close\r\n" if scenario == "noka" else b""
        self.request = (b"GET http://%s%s HTTP/1.1\r\nHost: %s\r\n" % (
            origin.encode(), path.encode(), origin.encode()) + close + b"\r\n")

    def run(self, count):
        for _ in range(count):
            if self.sock is None:
                self.sock = socket.create_connection(self.proxy, timeout=TIMEOUT)
                self.buf = b""
            self.sock.sendall(self.request)
            status, self.buf = _read_response(self.sock, self.buf)
            if status != 200:
                raise AssertionError("%s: the proxy answered %d" % (self.scenario, status))
            if self.scenario == "noka":
                while self.sock.recv(65536):  # the proxy closes: wait for it
                    pass
                self.sock.close()
                self.sock = None

    def close(self):
        if self.sock is not None:
            self.sock.close()


def _start(binary, tmp, origin_port):
    out = os.path.join(tmp, "callgrind.out")
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out,
           binary, "--listen", "127.0.0.1:0",
           "--log-file", os.path.join(tmp, "event.log"),
           "--access-log", os.path.join(tmp, "access.log")]
    help_text = subprocess.run([binary, "--help"], capture_output=True).stdout
    if b"--cache-dir" in help_text:
        cmd += ["--cache-dir", os.path.join(tmp, "cache")]
    stderr = open(os.path.join(tmp, "stderr.txt"), "wb+")
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=stderr)
    deadline = time.monotonic() + TIMEOUT
    while True:
        stderr.seek(0)
        m = READY.search(stderr.read())
        if m:
            return proc, stderr, ("127.0.0.1", int(m.group(2))), out
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("glassproxy under callgrind did not start")
        time.sleep(0.05)  # polling for the ready line


def _control(option, pid):
    subprocess.run(["callgrind_control", option, str(pid)], check=True, timeout=TIMEOUT,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _dump_total(pattern):
    """The Ir total of the newest dump that callgrind_control -d wrote."""
    files = sorted(glob.glob(pattern), key=os.path.getmtime)
    with open(files[-1]) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1]), files[-1]
    raise RuntimeError("no totals in " + files[-1])


def measure_one(binary, scenario, keep=None):
    tmp = tempfile.mkdtemp(prefix="glassproxy-ir-")
    origin = Origin()
    origin.handler = lambda req: ANSWERS.get(req.target.split("?")[0],
                                             ANSWERS["/hit"])
    proc = stderr = None
    try:
        proc, stderr, proxy, out = _start(binary, tmp, origin.port)
        client = Client(proxy, origin.authority, scenario)
        client.run(WARMUP)
        _control("-z", proc.pid)
        client.run(REQUESTS)
        _control("-d", proc.pid)
        client.close()
        total, dump = _dump_total(out + "*")
        if keep:
            os.makedirs(keep, exist_ok=True)
            shutil.copy(dump, os.path.join(keep, scenario + ".callgrind"))
        return round(total / REQUESTS)
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if stderr is not None:
            stderr.close()
        origin.close()
        shutil.rmtree(tmp, ignore_errors=True)


def tool_versions():
    valgrind = subprocess.run(["valgrind", "--version"], capture_output=True, text=True)
    cc = subprocess.run([os.environ.get("CC", "cc"), "--version"], capture_output=True,
                        text=True)
    return {"valgrind": valgrind.stdout.strip(),
            "compiler": cc.stdout.splitlines()[0] if cc.stdout else None}


def measure(binary, keep=None):
    return {s: measure_one(binary, s, keep) for s in SCENARIOS}


def compare(measured, record):
    """The scenarios more than TOLERANCE worse than the record, as lines."""
    worse = []
    for scenario, base in record["scenarios"].items():
        now = measured.get(scenario)
        if now is not None and now > base * (1 + TOLERANCE):
            worse.append("%s: %d instructions per request, recorded %d (+%.1f %%, limit +%d %%)"
                         % (scenario, now, base, 100.0 * (now - base) / base, 100 * TOLERANCE))
    return worse


def main():
    ap = argparse.ArgumentParser(description="instructions per request under callgrind")
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "glassproxy"))
    ap.add_argument("--record", action="store_true", help="rewrite " + RECORD)
    ap.add_argument("--keep", help="keep each scenario's callgrind profile in this directory")
    args = ap.parse_args()
    measured = measure(args.binary, args.keep)
    for s in SCENARIOS:
        print("%-5s %9d instructions per request" % (s, measured[s]))
    if args.record:
        doc = {"about": "glassproxy instructions per request under callgrind "
                        "(bench/instructions.py; make bench-record rewrites this file)",
               "warmup": WARMUP, "requests": REQUESTS, "build": "make (OPT=-O2 -g)",
               "scenarios": measured}
        doc.update(tool_versions())
        with open(RECORD, "w") as f:
            json.dump(doc, f, indent=1, sort_keys=True)
            f.write("\n")
        print("recorded in " + RECORD)


if __name__ == "__main__":
    main()
