"""Observability end to end (issue #12): the access log formats as log
readers parse them, hostile URLs that must not forge lines or reach a
terminal, rotation with SIGUSR1 under load, the console form, '-' for
standard output, the status page and its counters, and the page in a real
browser (Debian's chromium, headless; skipped when it is not installed)."""
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading

import pytest

import client as client_mod
from client import get
from conftest import BIN, READY, SLOW, WRAPPER

SQUID_RESULTS = {
    "TCP_MISS", "TCP_HIT", "TCP_MEM_HIT", "TCP_REFRESH_UNMODIFIED",
    "TCP_REFRESH_MODIFIED", "TCP_REFRESH_FAIL_OLD", "TCP_NEGATIVE_HIT",
    "TCP_DENIED", "TCP_TUNNEL", "TCP_MISS_ABORTED", "NONE_NONE",
}
SQUID_HIERARCHY = {"HIER_DIRECT", "HIER_NONE", "FIRSTUP_PARENT"}
CHROMIUM = "/usr/bin/chromium"


def parse_squid(line):
    """One line of Squid's native format, as calamaris or sarg read it:
    time.ms elapsed client result/status bytes method URL user
    hierarchy/peer content-type.  Raises on anything else."""
    f = line.split()
    assert len(f) == 10, "%d fields: %r" % (len(f), line)
    assert re.fullmatch(r"\d+\.\d{3}", f[0]), f[0]
    result, status = f[3].split("/")
    hier, peer = f[8].split("/", 1)
    assert result in SQUID_RESULTS, result
    assert re.fullmatch(r"\d{3}", status), status
    assert hier in SQUID_HIERARCHY, hier
    return {"time": float(f[0]), "elapsed": int(f[1]), "client": f[2],
            "result": result, "status": int(status), "bytes": int(f[4]),
            "method": f[5], "url": f[6], "user": f[7], "hierarchy": hier,
            "peer": peer, "type": f[9]}


@pytest.fixture
def closed_port():
    """A loopback port bound but not listening: connecting is refused (a
    fixed port such as 1 may have a listener on a shared machine)."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    yield holder.getsockname()[1]
    holder.close()


def squid_proxy(proxy, **args):
    return proxy(**{"access-log-format": "squid"}, **args)


def test_squid_format_parses_with_the_right_codes(proxy, origin, closed_port):
    p = squid_proxy(proxy, block="blocked.example")
    refused = "http://127.0.0.1:%d/refused" % closed_port
    assert p.request(get(origin.url("/ok"))).status == 200
    assert p.request(get("http://blocked.example/x")).status == 403
    assert p.request(get(refused)).status == 502
    assert p.request(b"GET /not-a-proxy-request HTTP/1.1\r\nHost: x\r\n\r\n").status == 400
    assert p.request(b"GET http://h/ HTTP/1.1\r\nHost: h\r\nBad Header\r\n\r\n").status == 400
    lines = [parse_squid(l) for l in p.access_lines(5)]
    assert len(lines) == 5
    by_url = {l["url"]: l for l in lines}
    ok = by_url[origin.url("/ok")]
    assert (ok["result"], ok["status"], ok["hierarchy"]) == ("TCP_MISS", 200, "HIER_DIRECT")
    assert ok["peer"] == "127.0.0.1" and ok["type"] == "text/plain"
    assert ok["client"] == "127.0.0.1" and ok["bytes"] > 2 and ok["user"] == "-"
    blocked = by_url["http://blocked.example/x"]
    assert (blocked["result"], blocked["status"], blocked["hierarchy"]) == \
        ("TCP_DENIED", 403, "HIER_NONE")
    assert (by_url[refused]["result"], by_url[refused]["status"]) == ("TCP_MISS", 502)
    assert by_url["/not-a-proxy-request"]["result"] == "NONE_NONE"
    # The head that did not parse has no URL: Squid's NONE_NONE/400 with "-".
    assert by_url["-"]["result"] == "NONE_NONE" and by_url["-"]["status"] == 400


def test_json_format_parses_with_json_loads(proxy, origin):
    p = proxy(**{"access-log-format": "json"})
    for i in range(3):
        assert p.request(get(origin.url("/j%d" % i))).status == 200
    rows = [json.loads(l) for l in p.access_lines(3)]
    assert len(rows) == 3
    for i, row in enumerate(sorted(rows, key=lambda r: r["url"])):
        assert row["url"] == origin.url("/j%d" % i)
        assert row["status"] == 200 and row["method"] == "GET"
        assert row["result"] == "TCP_MISS" and row["outcome"] == "MISS" and row["stored"] is True
        assert row["upstream"] == "127.0.0.1" and row["client"] == "127.0.0.1"
        assert row["bytes_out"] > 0 and row["bytes_in"] > 0
        assert row["conn"] >= 1 and row["request"] == 1
        # where the time went: every step of a forwarded request was reached
        steps = ["head_ms", "filter_ms", "resolve_ms", "connect_ms",
                 "first_byte_ms", "last_byte_ms"]
        marks = [row[s] for s in steps]
        assert all(isinstance(m, int) for m in marks), row
        assert marks == sorted(marks) and marks[-1] <= row["duration_ms"]


def test_combined_format(proxy, origin):
    p = proxy(**{"access-log-format": "combined"})
    raw = ("GET %s HTTP/1.1\r\nHost: %s\r\nReferer: http://r.example/\r\n"
           "User-Agent: harness/1\r\n\r\n" % (origin.url("/c"), origin.authority)).encode()
    assert p.request(raw).status == 200
    line = p.access_lines(1)[0]
    m = re.fullmatch(r'(\S+) - (\S+) \[(\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000)\] '
                     r'"(\S+) (\S+) (HTTP/1\.[01])" (\d{3}) (\d+|-) "([^"]*)" "([^"]*)"', line)
    assert m, line
    assert m.group(1) == "127.0.0.1" and m.group(5) == origin.url("/c")
    assert m.group(7) == "200" and m.group(9) == "http://r.example/"
    assert m.group(10) == "harness/1"


def test_64_concurrent_clients_make_64_well_formed_lines(proxy, origin):
    p = squid_proxy(proxy)
    statuses = []
    lock = threading.Lock()

    def one(i):
        r = p.request(get(origin.url("/c%d" % i)))
        with lock:
            statuses.append(r.status)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 64
    lines = p.access_lines(64)
    assert len(lines) == 64
    urls = sorted(parse_squid(l)["url"] for l in lines)
    assert urls == sorted(origin.url("/c%d" % i) for i in range(64))


# The target's port is a closed one (see hostile()).
HOSTILE = [
    b"GET http://127.0.0.1:PORT/a\x1b[2J\x1b]0;owned\x07b HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET http://127.0.0.1:PORT/a\rfake 200 line HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET http://127.0.0.1:PORT/\xe9\xff\"\\ HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET http://127.0.0.1:PORT/ok HTTP/1.1\r\nHost: x\r\nUser-Agent: a\x1b[31m\r\n\r\n",
]


def hostile(port):
    return [raw.replace(b"PORT", str(port).encode()) for raw in HOSTILE]


def assert_clean(data, lines_expected):
    assert b"\x1b" not in data and b"\r" not in data and b"\x07" not in data
    assert data.count(b"\n") == lines_expected, data
    assert all(b < 0x7f for b in data), data


@pytest.mark.parametrize("fmt", ["squid", "combined", "json", "glassproxy"])
def test_hostile_urls_cannot_forge_lines(proxy, fmt, closed_port):
    p = proxy(**{"access-log-format": fmt})
    for raw in hostile(closed_port):
        p.request(raw)
    p.access_lines(len(HOSTILE))
    assert_clean(p.access_log.read_bytes(), len(HOSTILE))
    for data in (p.event_log.read_bytes(),):
        assert b"\x1b" not in data and b"\x07" not in data
        assert all(line.startswith(b"20") for line in data.splitlines())


class Launched:
    """glassproxy started here with its own stdout and stderr files (the
    harness fixture sends stdout to /dev/null and passes its log files)."""

    def __init__(self, tmp_path, args):
        self.out = tmp_path / "stdout.txt"
        self.err = tmp_path / "stderr.txt"
        with open(self.out, "wb") as o, open(self.err, "wb") as e:
            # its own cache, as every harness proxy: not ./cache in the checkout
            self.proc = subprocess.Popen(WRAPPER + [BIN, "--listen", "127.0.0.1:0",
                                                    "--cache-dir", str(tmp_path / "cache")]
                                         + args,
                                         stdin=subprocess.DEVNULL, stdout=o, stderr=e)
        import time
        deadline = time.monotonic() + 10 * SLOW
        while not READY.search(self.err.read_bytes()):
            assert self.proc.poll() is None, self.err.read_text()
            assert time.monotonic() < deadline
            time.sleep(0.01)  # polling for the ready line
        m = READY.search(self.err.read_bytes())
        self.address = (m.group(1).decode(), int(m.group(2)))

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(20 * SLOW) == 0
        return self.out.read_bytes(), self.err.read_bytes()


def test_dash_writes_the_access_log_to_stdout(tmp_path, origin):
    g = Launched(tmp_path, ["--access-log", "-"])
    try:
        r = client_mod.exchange(g.address, get(origin.url("/out")))
        assert r.status == 200
    finally:
        out, err = g.stop()
    assert len(out.splitlines()) == 1
    assert parse_squid(out.decode())["url"] == origin.url("/out")
    assert origin.url("/out").encode() not in err


def test_console_shows_each_request_and_quiet_silences_it(tmp_path, origin, closed_port):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    g = Launched(tmp_path / "a", [])
    try:
        client_mod.exchange(g.address, get(origin.url("/seen")))
        for raw in hostile(closed_port):
            client_mod.exchange(g.address, raw)
    finally:
        out, err = g.stop()
    console = [l for l in err.splitlines() if b" -> " in l]
    assert len(console) == 1 + len(HOSTILE), err
    assert re.search(rb"info conn=\d+ req=1 GET " + re.escape(origin.url("/seen").encode()) +
                     rb" -> 200 \d+B \d+ms TCP_MISS MISS", err), err
    assert b"\x1b" not in err and b"\x07" not in err
    q = Launched(tmp_path / "b", ["-q"])
    try:
        client_mod.exchange(q.address, get(origin.url("/unseen")))
    finally:
        out, err = q.stop()
    assert b"/unseen" not in err


def test_sigusr1_after_rename_loses_no_line_under_load(proxy, origin):
    p = squid_proxy(proxy)
    done = []
    stop = threading.Event()

    def load(k):
        i = 0
        while not stop.is_set():
            r = p.request(get(origin.url("/l%d-%d" % (k, i))))
            assert r.status == 200
            done.append(1)
            i += 1

    threads = [threading.Thread(target=load, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    p.access_lines(20, timeout=20)
    rotated = str(p.access_log) + ".1"
    os.rename(p.access_log, rotated)
    p.signal(signal.SIGUSR1)
    p.wait_event("logs reopened")
    p.access_lines(20, timeout=20)  # lines in the new file
    stop.set()
    for t in threads:
        t.join()
    want = len(done)
    import time
    deadline = time.monotonic() + 10 * SLOW
    while True:
        old = open(rotated).read().splitlines()
        new = p.access_log.read_text().splitlines()
        if len(old) + len(new) >= want or time.monotonic() > deadline:
            break
        time.sleep(0.01)  # the last lines follow their responses
    assert len(old) + len(new) == want
    assert len(new) > 0 and len(old) >= 20
    for l in old + new:
        parse_squid(l)


def test_status_counters_match_the_requests_sent(proxy, origin):
    p = proxy(block="blocked.example")
    for i in range(5):
        assert p.request(get(origin.url("/s%d" % i))).status == 200
    assert p.request(get("http://blocked.example/")).status == 403
    p.access_lines(6)
    r = p.request(b"GET /glassproxy/status/json HTTP/1.1\r\nHost: x\r\n\r\n")
    assert r.status == 200 and r.header("Content-Type") == "application/json"
    s = json.loads(r.body)
    assert s["requests_total"] == 6 and s["requests"]["GET"] == 6
    assert s["responses"]["2xx"] == 5 and s["responses"]["4xx"] == 1
    assert s["denials"]["host"] == 1
    # (the 403's connection may still be lingering: at least this one)
    assert s["connections_total"] == 7 and s["connections_active"] >= 1
    assert sum(s["rate"]) == 6
    # through the proxy, by its name, and as Prometheus text; a request
    # is counted with its access line, just after its response
    p.access_lines(7)
    r = p.request(get("http://glassproxy.status/metrics"))
    assert r.status == 200 and r.header("Content-Type").startswith("text/plain")
    text = r.body.decode()
    assert 'glassproxy_requests_total{method="GET"} 7\n' in text  # + the json one
    assert "# TYPE glassproxy_denials_total counter\n" in text
    for line in text.splitlines():
        assert line.startswith(("# HELP glassproxy_", "# TYPE glassproxy_", "glassproxy_"))
    p.access_lines(8)
    html = p.request(get("http://glassproxy.status/")).body.decode()
    assert '<svg id="rate-chart"' in html and 'http-equiv="refresh"' in html
    assert '<td class="n" id="requests_total">8</td>' in html


@pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK),
                    reason="chromium is not installed (apt-get install -y chromium; "
                           ".ci/run installs it)")
def test_status_page_in_a_real_browser(proxy, origin, tmp_path):
    p = proxy()
    for i in range(3):
        assert p.request(get(origin.url("/b%d" % i))).status == 200
    p.access_lines(3)
    url = "http://127.0.0.1:%d/glassproxy/status" % p.port
    profile = tempfile.mkdtemp(dir=tmp_path)
    base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync",
            "--user-data-dir=" + profile, "--window-size=1024,768"]
    dom = subprocess.run(base + ["--dump-dom", url], capture_output=True,
                         timeout=90, check=True).stdout.decode()
    assert '<svg id="rate-chart"' in dom and 'class="bar"' in dom
    m = re.search(r'id="requests_total">(\d+)<', dom)
    assert m and int(m.group(1)) == 3, dom[:2000]
    shot = tmp_path / "status-page.png"
    subprocess.run(base + ["--screenshot=%s" % shot, url], capture_output=True,
                   timeout=90, check=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    print("status page screenshot: %s" % shot)


def test_tunnel_is_tcp_tunnel_and_counted(proxy, origin):
    p = squid_proxy(proxy, **{"connect-ports": "1-65535"})
    with client_mod.connect(p.address) as s:
        s.sendall(b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n"
                  % (origin.authority.encode(), origin.authority.encode()))
        r, rest = client_mod.read_response(s, method="CONNECT")
        assert r.status == 200
        # Through the tunnel: a plain request to the origin itself.
        s.sendall(b"GET /in-tunnel HTTP/1.1\r\nHost: o\r\nConnection: close\r\n\r\n")
        inner, _ = client_mod.read_response(s, rest)
        assert inner.status == 200
    line = parse_squid(p.access_lines(1)[0])  # counted by now, too
    assert (line["result"], line["status"], line["method"]) == ("TCP_TUNNEL", 200, "CONNECT")
    assert line["url"] == origin.authority and line["hierarchy"] == "HIER_DIRECT"
    s = json.loads(p.request(get("http://glassproxy.status/json")).body)
    assert s["tunnels_total"] == 1 and s["tunnels_active"] == 0
    assert s["requests"]["CONNECT"] == 1
