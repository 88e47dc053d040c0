"""
Issue 13: the waiting room and the worker pool at scale, end to end.

Connections that are idle, or still sending a request head, wait in one
poller thread; a bounded pool of workers serves whole heads from a queue.
So: many clients at once are all answered (no 503), thousands of idle
keep-alive connections are kept and still served, slowloris clients hold
no worker, the connection limit refuses cleanly and recovers, and
--serial still serves one connection at a time.
"""
import os
import re
import resource
import select
import socket
import subprocess
import threading
import time

import pytest

from client import connect, get, read_response
from conftest import BIN, SLOW


def raise_nofile(need):
    """Raise this process's soft descriptor limit (the proxy inherits it and
    raises its own to the hard limit); skip when the hard limit is too low."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < need:
        pytest.skip("RLIMIT_NOFILE hard limit %d < %d descriptors" % (hard, need))
    if soft == resource.RLIM_INFINITY or soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need if hard == resource.RLIM_INFINITY
                                                    else min(hard, max(need, soft)), hard))


def statuses(lines):
    """The status of each access line (glassproxy's format: the fifth)."""
    return [int(l.split()[4]) for l in lines]


def still_open(sock):
    """True when the proxy has neither closed nor answered sock."""
    poller = select.poll()  # select() cannot take descriptors past 1023
    poller.register(sock, select.POLLIN)
    return not poller.poll(0)


def test_500_concurrent_clients_are_all_answered(proxy, origin):
    raise_nofile(1200)
    p = proxy(workers=4)
    url = origin.url("/burst")
    socks = [connect(p.address) for _ in range(500)]
    # All 500 connected at once, then all 500 requests in flight at once:
    # 4 workers, so most of them wait in the queue rather than get a 503.
    for s in socks:
        s.sendall(get(url))
    answers = []
    for s in socks:
        r, _ = read_response(s)
        answers.append(r.status)
        s.close()
    assert answers == [200] * 500
    assert 503 not in statuses(p.access_lines(500))


def test_2000_idle_keepalive_connections_are_kept_and_served(proxy, origin):
    raise_nofile(2400)
    p = proxy()
    url = origin.url("/idle")
    socks = []
    for _ in range(2000):
        s = connect(p.address)
        s.sendall(get(url))
        r, _ = read_response(s)
        assert r.status == 200
        socks.append(s)
    # All 2000 now idle in the waiting room, none closed or refused...
    assert all(still_open(s) for s in socks)
    # ...and each still served on the connection it kept.
    for s in socks:
        s.sendall(get(url))
        r, _ = read_response(s)
        assert r.status == 200
    for s in socks:
        s.close()
    lines = p.access_lines(4000)
    assert len(lines) == 4000
    assert set(statuses(lines)) == {200}


def test_slowloris_clients_hold_no_worker(proxy, origin):
    raise_nofile(600)
    # Far fewer workers than slow clients, and a request timeout long
    # enough that none of them times out during the test.
    p = proxy(workers=2, **{"request-timeout": "120s"})
    url = origin.url("/normal")
    host = origin.authority
    slow = []
    for _ in range(200):
        s = connect(p.address)
        s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\n" % (url, host)).encode())
        slow.append(s)
    for s in slow:  # one more piece each: still no end of head
        s.sendall(b"X-Slow: 1\r\n")
    r, _ = read_response(connect_and_send(p, get(url)))
    assert r.status == 200
    # Served while every slow client is still connected and unanswered.
    assert all(still_open(s) for s in slow)
    assert statuses(p.access_lines(1)) == [200]
    # A slow client that finally finishes its head is served too.
    slow[0].sendall(b"\r\n")
    r, _ = read_response(slow[0])
    assert r.status == 200
    for s in slow:
        s.close()


def wait_count(p, text, n, timeout=10):
    """Wait until the event log mentions text n times (polling the log file,
    as Proxy.wait_event does)."""
    deadline = time.monotonic() + timeout
    while p.events().count(text) < n:
        assert time.monotonic() < deadline, p.events()
        time.sleep(0.01)


def connect_and_send(p, raw):
    s = connect(p.address)
    s.sendall(raw)
    return s


def active_few(p):
    """How many workers serve at once: the limits line of the event log
    (written just after the ready line)."""
    p.wait_event("serving at once")
    m = re.search(r"\((\d+) serving at once", p.events())
    assert m, p.events()
    return int(m.group(1))


def many_workers():
    """A --workers well above the few that serve at once (2 per core)."""
    return 4 * (os.cpu_count() or 1) + 8


def slow_origin(origin):
    """The origin holds /slow* until the returned event is set."""
    release = threading.Event()
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

    def handler(req):
        if req.target.startswith("/slow"):
            release.wait(30)
        return ok

    origin.handler = handler
    return release


def hold_at_origin(p, origin, n):
    """n clients whose requests wait at the slow origin (distinct URLs: one
    URL would collapse onto a single fetch)."""
    slow = [connect_and_send(p, get(origin.url("/slow%d" % i))) for i in range(n)]
    origin.wait_requests(n)
    return slow


def answered(socks):
    for s in socks:
        r, _ = read_response(s)
        assert r.status == 200
        s.close()


def test_slow_origins_do_not_stall_the_other_clients(proxy, origin):
    """More requests wait on a slow origin than workers serve at once: each
    of those workers is away at its origin and lets another serve, so all
    of them reach the origin, and a request for a fast path is answered
    while they still wait."""
    release = slow_origin(origin)
    p = proxy(workers=many_workers())
    n = active_few(p) + 2
    slow = hold_at_origin(p, origin, n)
    r = p.request(get(origin.url("/fast")))
    assert r.status == 200
    release.set()
    answered(slow)


def threads_of(p):
    return len(os.listdir("/proc/%d/task" % p.proc.pid))


def test_spare_workers_end_after_a_burst(proxy, origin):
    """A burst on slow origins leaves a thread per request it held; idle
    past --worker-idle-timeout, the spares end, down to the few that serve
    at once, and the pool serves as before."""
    release = slow_origin(origin)
    p = proxy(**{"workers": many_workers(), "worker-idle-timeout": "200ms"})
    few = active_few(p)
    # After one answer every thread of the proxy's own is up (the poller
    # and the signal thread start after the limits line), and 1 to few
    # workers: the spares may end down to at most warm - 1 + few.
    assert p.request(get(origin.url("/warm"))).status == 200
    warm = threads_of(p)
    n = 2 * few + 4
    slow = hold_at_origin(p, origin, n)
    assert threads_of(p) >= warm - few + n
    release.set()
    answered(slow)
    deadline = time.monotonic() + 10 * SLOW
    while threads_of(p) > warm - 1 + few:
        assert time.monotonic() < deadline, "%d threads" % threads_of(p)
        time.sleep(0.05)  # polling /proc: the threads end on their own
    assert p.request(get(origin.url("/after"))).status == 200


def test_workers_stuck_on_slow_readers_let_others_be_served(proxy, origin):
    """Workers blocked sending a big hit to clients that do not read hold
    no origin; after 20 ms each is counted as stuck and one more worker may
    serve for it, so a normal request is not queued behind them."""
    size = 8 << 20
    origin.reply(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n"
                 b"Cache-Control: max-age=600\r\n\r\n" % size + b"z" * size)
    p = proxy(workers=many_workers())
    big = origin.url("/big")
    r = p.request(get(big))
    assert r.status == 200 and len(r.body) == size
    n = active_few(p) + 2
    readers = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(10)
        s.connect(p.address)
        s.sendall(get(big))
        assert s.recv(1)  # its worker has begun; it reads no more
        readers.append(s)
    origin.reply(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    r = p.request(get(origin.url("/small")))
    assert r.status == 200
    # Served while every big hit is still being sent: one access line
    # for the first fetch of /big, one for /small.
    lines = p.access_lines(2)
    assert [l for l in lines if "/big" in l] == lines[:1]
    assert len(lines) == 2 and "/small" in lines[1], lines
    for s in readers:
        s.close()


def test_the_connection_limit_refuses_cleanly_and_recovers(proxy, origin):
    p = proxy(**{"max-connections": 20})
    url = origin.url("/limit")
    held = []
    for _ in range(20):
        s = connect(p.address)
        s.sendall(get(url))
        r, _ = read_response(s)
        assert r.status == 200
        held.append(s)
    # The 21st: a whole 503, then the connection ends; no hang.
    s = connect_and_send(p, get(url))
    r, rest = read_response(s)
    assert r.status == 503 and rest == b""
    try:
        assert s.recv(65536) == b""
    except ConnectionResetError:
        pass  # bytes that arrived after the refusal meet a reset
    s.close()
    for s in held[:5]:
        s.close()
    # Once the proxy has seen those five go, new clients are served.
    wait_count(p, "after 1 requests", 5)
    r, _ = read_response(connect_and_send(p, get(url)))
    assert r.status == 200
    for s in held[5:]:
        s.close()


def test_serial_serves_one_connection_at_a_time(proxy, origin):
    p = proxy(serial=True)
    url = origin.url("/serial")
    a = connect_and_send(p, get(url))
    r, _ = read_response(a)
    assert r.status == 200
    # B asks while A holds the only connection the proxy serves.
    b = connect_and_send(p, get(url))
    a.sendall(get(url))
    r, _ = read_response(a)
    assert r.status == 200
    assert len(p.access_lines(2)) == 2
    assert still_open(b)  # B's turn comes when A leaves
    a.close()
    r, _ = read_response(b)
    assert r.status == 200
    b.close()
    lines = p.access_lines(3)
    ports = [l.split()[1] for l in lines]  # the client address
    assert ports[0] == ports[1] != ports[2]


def test_reuse_port_lets_two_instances_share_one_port(proxy, origin):
    """--reuse-port: a second instance listens on the first one's port and the
    kernel spreads new connections over both (docs/scaling.md); without it
    the second cannot start."""
    a = proxy(**{"reuse-port": True, "no-cache": True})
    b = proxy(**{"reuse-port": True, "no-cache": True,
                 "listen": "127.0.0.1:%d" % a.port})
    assert b.port == a.port
    # 40 new connections: the kernel picks a listener by a hash of each
    # connection's addresses, so both get some (all on one: 2 in 2^40).
    for i in range(40):
        assert a.request(get(origin.url("/%d" % i))).status == 200
    # Each line is written just after its response: wait for all 40.
    deadline = time.monotonic() + 5
    while (len(a.access_lines()) + len(b.access_lines()) < 40
           and time.monotonic() < deadline):
        time.sleep(0.01)  # polling for the log lines, with a deadline
    assert len(a.access_lines()) + len(b.access_lines()) == 40
    assert a.access_lines() and b.access_lines()
    alone = subprocess.run([BIN, "--listen", "127.0.0.1:%d" % a.port, "--no-cache"],
                           capture_output=True, timeout=10)
    assert alone.returncode != 0
