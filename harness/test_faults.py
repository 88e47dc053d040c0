"""
Fault scenarios (issue #11 item 5): each test pairs faults injected into the
real binary (--fault, docs/faults.md) with the promise they check.

  - short reads and writes anywhere change no byte of a request, a response
    (Content-Length, chunked, close-delimited) or a tunnel;
  - a reset or an end of file at every receive of a response gives a 502 or
    a clean close, never a hang, and never leaves a poisoned connection in
    the pool (a normal request afterwards is answered correctly);
  - resolve and connect failures give the right status and log lines;
  - EMFILE on accept neither spins nor stops the proxy;
  - wall-clock steps and monotonic offsets do not break timeouts;
  - a full or failing log disk never stops service.

Every scenario is one command line against the binary; the ids say which.
To replay one by hand, see harness/README.md ("Fault scenarios").
"""
import os
import re
import signal
import socket
import subprocess
import time

import pytest

import conftest
import peers
from client import connect, read_all, read_response
from test_connect import EchoOrigin

CL_BODY = b"0123456789abcdef" * 8
CHUNKED_BODY = b"5\r\nhello\r\n1a;ext=1\r\n abcdefghijklmnopqrstuvwxy\r\n0\r\nX-T: 1\r\n\r\n"
RESPONSES = {
    "/cl": [b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-A: 1\r\n\r\n" % len(CL_BODY) + CL_BODY],
    "/chunked": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + CHUNKED_BODY],
    "/close": [b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + CL_BODY, "close"],
}


def framed_origin(origin):
    """An origin answering /cl, /chunked and /close with those framings."""
    origin.handler = lambda req: RESPONSES[req.target.split("?")[0]]
    return origin


def exchange_raw(proxy, raw):
    """Everything the proxy sends back until it closes the connection."""
    with connect(proxy.address) as s:
        s.sendall(raw)
        return read_all(s)


def requests_for(origin):
    url = origin.url
    return [
        b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % url("/cl").encode(),
        b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % url("/chunked").encode(),
        b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % url("/close").encode(),
        b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\nConnection: close\r\n\r\nhello world"
        % url("/cl").encode(),
        b"PUT %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        b"3\r\nabc\r\n4;e=f\r\ndefg\r\n0\r\n\r\n" % url("/chunked").encode(),
    ]


def message(data):
    """(head, payload): chunk framing follows the reads that fed it (the
    proxy re-frames what it relays), so chunked bodies compare decoded."""
    head, _, body = data.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in head.lower():
        return head, peers.dechunk(body)
    return head, body


def fault_dump(proxy):
    """The counters the proxy printed at exit: {rule: (hits, calls)}."""
    text = proxy.stderr()
    assert "glassproxy: faults injected:" in text, text
    tail = text.rsplit("glassproxy: faults injected:", 1)[1]
    return {m.group(1): (int(m.group(2)), int(m.group(3)))
            for m in re.finditer(r"^(\S+) hits=(\d+) calls=(\d+)$", tail, re.M)}


def stop(proxy):
    proxy.signal(signal.SIGTERM)
    assert proxy.stop() == 0, proxy.stderr()


# ---- short reads and writes change no byte ----

SHORT = {
    "recv-short": ["net.recv=short"],
    "send-short": ["net.send=short"],
    "client-recv-origin-send": ["net.recv[client]=short", "net.send[origin]=short:3"],
    "origin-recv-client-send": ["net.recv[origin]=short", "net.send[client]=short:2"],
}


@pytest.mark.parametrize("faults", list(SHORT.values()), ids=list(SHORT))
def test_short_io_is_byte_identical(proxy, origin, faults):
    framed_origin(origin)
    plain, faulty = proxy(), proxy(fault=faults)
    for raw in requests_for(origin):
        want = exchange_raw(plain, raw)
        n = len(origin.requests)
        got = exchange_raw(faulty, raw)
        assert message(got) == message(want), (raw, want, got)
        assert want.startswith(b"HTTP/1.1 200 OK\r\n")
        # What the origin received is identical too.
        assert message(origin.requests[n].raw) == message(origin.requests[n - 1].raw)
    stop(faulty)
    assert all(hits > 0 for hits, _ in fault_dump(faulty).values())


@pytest.mark.parametrize("faults", [["net.recv=short", "net.send=short"],
                                    ["net.recv[origin]=short:3", "net.send[client]=short",
                                     "net.splice=short:2"]],
                         ids=["both-short", "scoped-and-splice"])
def test_short_io_tunnel_is_byte_identical(proxy, faults):
    echo = EchoOrigin()
    px = proxy(fault=faults, **{"connect-ports": str(echo.port)})
    payload = bytes(range(256)) * 40
    with connect(px.address) as s:
        s.sendall(b"CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: x\r\n\r\n" % echo.port)
        r, rest = read_response(s, method="CONNECT")
        assert r.status == 200
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        back = rest + read_all(s)
    assert back == payload
    stop(px)
    assert any(hits > 0 for hits, _ in fault_dump(px).values())


# ---- a reset or an end of file at every receive of a response ----

def well_formed_failure(data):
    """A 502, or a response cut short by a clean close (read_all got EOF)."""
    if data == b"" or data.startswith(b"HTTP/1.1 502 "):
        return True
    if data.startswith(b"HTTP/1.1 200 OK\r\n"):
        return True  # the head went out; the body was cut by a close
    return False


@pytest.mark.parametrize("path", ["/cl", "/chunked"])
@pytest.mark.parametrize("kind", ["ECONNRESET", "eof"])
def test_every_response_recv_failing(proxy, origin, path, kind):
    """net.recv[origin]=KIND@N for N = 1, 2, ... until the exchange runs
    clean; short:16 makes every response take many receives."""
    framed_origin(origin)
    req = b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % origin.url(path).encode()
    follow = b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % origin.url("/cl").encode()
    walked = 0
    for n in range(1, 200):
        px = proxy(fault=["net.recv[origin]=short:16", "net.recv[origin]=%s@%d" % (kind, n)])
        with connect(px.address) as s:
            s.sendall(req)
            first = read_all_or_response(s, path)
        clean = complete(first, path)
        if not clean:
            assert well_formed_failure(first), (n, first)
            walked += 1
            # The failed connection is not pooled: a normal request on a
            # new client connection is answered correctly.
            after = exchange_raw(px, follow)
            assert after.startswith(b"HTTP/1.1 200 OK") and after.endswith(CL_BODY), (n, after)
        stop(px)
        hits = fault_dump(px)["net.recv[origin]=%s@%d" % (kind, n)][0]
        if clean:
            assert hits == 0, "fault injected but the exchange looked clean (n=%d)" % n
            break
        assert hits == 1
    else:
        pytest.fail("the exchange never ran clean")
    # The response in 16-byte receives: at least that many failure points.
    assert walked >= len(RESPONSES[path][0]) // 16, walked


def read_all_or_response(s, path):
    """One response on a keep-alive connection, or what came before the
    proxy closed it; never waits for ever (the socket has a timeout)."""
    buf = b""
    while True:
        data = s.recv(65536)
        if not data:
            return buf
        buf += data
        if complete(buf, path):
            return buf


def complete(buf, path):
    if b"\r\n\r\n" not in buf:
        return False
    head, _, body = buf.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        return False  # an error page: the proxy closes after it
    if path == "/cl":
        return len(body) >= len(CL_BODY)
    return body.endswith(b"\r\n0\r\n\r\n") and \
        peers.dechunk(body) == peers.dechunk(CHUNKED_BODY)


# ---- resolve and connect failures ----

RESOLVE = [("EAI_NONAME", "could not be resolved"), ("EAI_AGAIN", None)]


@pytest.mark.parametrize("fault,page", RESOLVE, ids=[f for f, _ in RESOLVE])
def test_resolve_failure(proxy, origin, fault, page):
    """The fault replaces the resolver call (the name is never looked up:
    tests/test_proxy.c checks the mock's resolve is not reached)."""
    px = proxy(fault=["net.resolve=%s" % fault])
    raw = b"GET http://nowhere.example:%d/ HTTP/1.1\r\nHost: x\r\n\r\n" % origin.port
    r = px.request(raw)
    assert r.status == 502
    if page:
        assert page in r.body.decode()
    assert px.access_lines(1)[0].split()[-1] == "ORIGIN-UNRESOLVED"
    assert "nowhere.example" in px.events()
    assert origin.connections == 0
    stop(px)
    assert fault_dump(px)["net.resolve=%s" % fault] == (1, 1)


CONNECT = [("ECONNREFUSED", 502, "ORIGIN-REFUSED"), ("ETIMEDOUT", 504, "CONNECT-TIMEOUT"),
           ("ENETUNREACH", 502, "ORIGIN-UNREACHABLE")]


@pytest.mark.parametrize("fault,status,outcome", CONNECT, ids=[c[0] for c in CONNECT])
def test_connect_failure(proxy, origin, fault, status, outcome):
    px = proxy(fault=["net.connect[origin]=%s" % fault])
    r = px.request(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % origin.url("/").encode())
    assert r.status == status
    assert px.access_lines(1)[0].split()[-1] == outcome
    assert origin.authority in px.events()
    assert origin.connections == 0
    stop(px)
    assert fault_dump(px)["net.connect[origin]=%s" % fault][0] >= 1


# ---- EMFILE on accept ----

def test_accept_emfile_sometimes_serves_everyone(proxy, origin):
    """net.accept=EMFILE@p0.5, seeded: every client is served in the end and
    the accept calls are exactly the failures plus the clients (no spin)."""
    px = proxy(fault=["net.accept=EMFILE@p0.5"], **{"fault-seed": "7"})
    clients = 12
    for i in range(clients):
        r = px.request(b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                       % origin.url("/%d" % i).encode())
        assert r.status == 200
    stop(px)
    hits, calls = fault_dump(px)["net.accept=EMFILE@p0.5"]
    assert hits >= 1
    # The last accept may be the one a stop interrupts.
    assert hits + clients <= calls <= hits + clients + 1
    # Each failure is logged, but for one a stop interrupted.
    assert hits - 1 <= px.events().count("accept: Too many open files") <= hits
    assert "seed=7" in px.stderr()


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_accept_emfile_for_ever_does_not_spin(proxy):
    """net.accept=EMFILE@1+: every accept fails; the proxy backs off instead
    of burning a CPU, and still stops cleanly at SIGTERM."""
    px = proxy(fault=["net.accept=EMFILE@1+"])
    # A client waiting in the backlog keeps the listener readable, so the
    # accept loop keeps meeting EMFILE, as it would with no fd to spare.
    waiting = socket.create_connection(px.address, timeout=10)
    px.wait_event("accept: Too many open files")
    cpu0, t0 = cpu_seconds(px.proc.pid), time.monotonic()
    deadline = t0 + 30
    while px.events().count("accept: Too many open files") < 6:
        assert time.monotonic() < deadline
        time.sleep(0.02)  # polling the log, not synchronisation
    used, elapsed = cpu_seconds(px.proc.pid) - cpu0, time.monotonic() - t0
    # A spinning loop uses about as much CPU as time passes.
    assert used < elapsed / 2, (used, elapsed)
    waiting.close()
    stop(px)


# ---- clocks ----

CLOCKS = ["clock.wall.step=+3600s@3", "clock.wall.step=-3600s@3", "clock.step=-10s",
          "clock.mono.offset=+3600s", "clock.mono.step=+1ms"]


@pytest.mark.parametrize("fault", CLOCKS)
def test_clock_bends_keep_timeouts(proxy, origin, fault):
    # No cache: the first answer is then DIRECT, whatever the clock says.
    px = proxy(fault=[fault], **{"request-timeout": "300ms", "no-cache": True})
    with connect(px.address) as s:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % origin.url("/").encode())
        r, _ = read_response(s)
        assert r.status == 200
        s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n" % origin.url("/slow").encode())
        r, _ = read_response(s)
        assert r.status == 408
        assert read_all(s) == b""
    assert [l.split()[-1] for l in px.access_lines(2)] == ["DIRECT", "TIMEOUT"]
    stop(px)


def test_mono_clock_never_goes_back():
    """A negative monotonic step is refused at start: exit 2, a caret."""
    out = subprocess.run([conftest.BIN, "-l", "127.0.0.1:0", "--fault", "clock.mono.step=-10s"],
                         capture_output=True, timeout=30)
    assert out.returncode == 2
    assert b"clock.mono.step=-10s\n" in out.stderr and b"^" in out.stderr


# ---- full or failing log disks ----

@pytest.mark.parametrize("fault", ["ENOSPC", "EIO", "ENOSPC@p0.5"])
def test_log_write_failures_never_stop_service(proxy, origin, tmp_path, fault):
    spec = "fs.write[%s/]=%s" % (tmp_path / "proxy0", fault)
    px = proxy(fault=[spec], **{"fault-seed": "3"})
    for i in range(6):
        r = px.request(b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                       % origin.url("/%d" % i).encode())
        assert r.status == 200 and r.body == b"ok"
    stop(px)
    hits, calls = fault_dump(px)[spec]
    assert hits >= 1 and calls >= 6
    if "@p" not in fault:
        assert px.access() == ""
