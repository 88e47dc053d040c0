"""CONNECT tunnels end to end (requirement A's HTTPS bonus, done properly)."""
import hashlib
import os
import shutil
import socket
import ssl
import subprocess
import threading

import pytest

from client import connect, read_all, read_response

ALL_PORTS = {"connect-ports": "1-65535"}


class EchoOrigin:
    """Echoes every byte back; on EOF from the client, shuts down its side."""

    def __init__(self, host="127.0.0.1", behaviour="echo"):
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.sock.bind((host, 0))
        self.sock.listen(512)
        self.port = self.sock.getsockname()[1]
        self.behaviour = behaviour
        self.received = []
        self.lock = threading.Lock()
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        with c:
            if self.behaviour == "greet-then-read":
                # Speaks first, then half-closes, then keeps reading.
                c.sendall(b"server-first")
                c.shutdown(socket.SHUT_WR)
                data = read_all(c)
                with self.lock:
                    self.received.append(data)
                return
            if self.behaviour == "count":
                # Reads to the client's EOF, then answers: the answer can
                # only arrive if the tunnel kept that direction open.
                data = read_all(c)
                c.sendall(b"got %d bytes" % len(data))
                return
            if self.behaviour == "reset":
                # Reset only once the tunnel carries data: a reset before
                # that would be a failed connect (502), another test.
                c.recv(1)
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                return
            got = b""
            while True:
                data = c.recv(1 << 20)
                if not data:
                    break
                c.sendall(data)
                if self.behaviour == "echo-record":
                    got += data
            with self.lock:
                self.received.append(got)
            c.shutdown(socket.SHUT_WR)

    def close(self):
        self.sock.close()


@pytest.fixture
def echo():
    made = []

    def make(**kw):
        e = EchoOrigin(**kw)
        made.append(e)
        return e
    yield make
    for e in made:
        e.close()


def open_tunnel(p, port, host="127.0.0.1", early=b""):
    s = connect(p.address)
    s.sendall(b"CONNECT %s:%d HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (host.encode(), port, host.encode(), port) + early)
    r, rest = read_response(s, method="CONNECT")
    return s, r, rest


def test_connect_says_200_then_relays_bytes_both_ways(proxy, echo):
    e = echo()
    p = proxy(**ALL_PORTS)
    s, r, rest = open_tunnel(p, e.port)
    assert r.status == 200 and r.reason == "Connection established"
    assert rest == b""
    s.sendall(b"ping")
    assert s.recv(4) == b"ping"
    s.shutdown(socket.SHUT_WR)
    assert read_all(s) == b""
    s.close()
    line = p.access_lines(1)[0].split()
    assert line[2] == "CONNECT" and line[3] == "127.0.0.1:%d" % e.port and line[4] == "200"
    assert line[8] == "TUNNEL"


def test_early_data_after_connect_is_not_lost(proxy, echo):
    e = echo()
    p = proxy(**ALL_PORTS)
    s, r, rest = open_tunnel(p, e.port, early=b"early-bytes")
    assert r.status == 200
    data = rest
    while len(data) < len(b"early-bytes"):
        data += s.recv(100)
    assert data == b"early-bytes"
    s.close()


def test_large_streams_each_way_are_byte_exact(proxy, echo):
    """64 MiB up and the same 64 MiB echoed down, checksums equal."""
    e = echo()
    p = proxy(**ALL_PORTS)
    s, r, _ = open_tunnel(p, e.port)
    size = 64 << 20
    block = os.urandom(1 << 20)
    sent_hash, got_hash = hashlib.sha256(), hashlib.sha256()
    got = [0]

    def reader():
        while True:
            data = s.recv(1 << 20)
            if not data:
                return
            got_hash.update(data)
            got[0] += len(data)
    t = threading.Thread(target=reader)
    t.start()
    for _ in range(size // len(block)):
        s.sendall(block)
        sent_hash.update(block)
    s.shutdown(socket.SHUT_WR)
    t.join(60)
    s.close()
    assert got[0] == size
    assert got_hash.hexdigest() == sent_hash.hexdigest()
    fields = p.access_lines(1)[0].split()
    assert int(fields[5]) >= size and int(fields[6]) >= size


def test_half_close_from_the_origin_side(proxy, echo):
    e = echo(behaviour="greet-then-read")
    p = proxy(**ALL_PORTS)
    s, r, rest = open_tunnel(p, e.port)
    data = rest
    while True:  # the origin's EOF must reach us ...
        chunk = s.recv(100)
        if not chunk:
            break
        data += chunk
    assert data == b"server-first"
    s.sendall(b"still flowing after your EOF")  # ... and our direction still flows
    s.shutdown(socket.SHUT_WR)
    s.close()
    import time
    deadline = time.monotonic() + 10
    while not e.received and time.monotonic() < deadline:
        time.sleep(0.01)
    assert e.received == [b"still flowing after your EOF"]


def test_connect_to_a_closed_port_is_502(proxy):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    p = proxy(**ALL_PORTS)
    s, r, _ = open_tunnel(p, port)
    assert r.status == 502
    assert b"refused" in r.body
    s.close()
    holder.close()
    assert "refused" in p.events()


def test_connect_port_outside_the_list_is_403(proxy, echo):
    e = echo()
    p = proxy()  # default: 443 only
    s, r, _ = open_tunnel(p, e.port)
    assert r.status == 403
    assert b"port %d" % e.port in r.body
    s.close()


def test_connect_to_ipv6_origin(proxy, echo):
    try:
        e = echo(host="::1")
    except OSError:
        pytest.skip("no IPv6 loopback")
    p = proxy(**ALL_PORTS)
    s, r, _ = open_tunnel(p, e.port, host="[::1]")
    assert r.status == 200
    s.sendall(b"six")
    assert s.recv(3) == b"six"
    s.close()


def test_origin_reset_closes_the_tunnel(proxy, echo):
    e = echo(behaviour="reset")
    p = proxy(**ALL_PORTS)
    s, r, rest = open_tunnel(p, e.port)
    assert r.status == 200
    s.sendall(b"x")
    try:
        assert read_all(s) == b""
    except ConnectionResetError:
        pass
    s.close()


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def test_200_concurrent_tunnels_no_interference_no_leaks(proxy, echo):
    e = echo()
    p = proxy(**ALL_PORTS, **{"max-connections": 512})
    baseline = fd_count(p.proc.pid)
    tunnels = []
    for i in range(200):
        s, r, _ = open_tunnel(p, e.port)
        assert r.status == 200
        tunnels.append(s)
    for i, s in enumerate(tunnels):
        s.sendall(b"tunnel-%03d|" % i * 100)
    for i, s in enumerate(tunnels):
        want = b"tunnel-%03d|" % i * 100
        data = b""
        while len(data) < len(want):
            data += s.recv(65536)
        assert data == want
    for s in tunnels:
        s.shutdown(socket.SHUT_WR)
    for s in tunnels:
        assert read_all(s) == b""
        s.close()
    p.access_lines(200, timeout=20)
    assert fd_count(p.proc.pid) == baseline


@pytest.fixture
def tls_origin(tmp_path):
    """An HTTPS origin on loopback with a certificate made for this test."""
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)

    def serve():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            try:
                with ctx.wrap_socket(c, server_side=True) as t:
                    buf = b""
                    while b"\r\n\r\n" not in buf:
                        data = t.recv(65536)
                        if not data:
                            break
                        buf += data
                    body = b"secret over tls\n"
                    t.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                              % len(body) + body)
            except (OSError, ssl.SSLError):
                pass
    threading.Thread(target=serve, daemon=True).start()
    yield srv.getsockname()[1], cert
    srv.close()


def test_curl_https_through_the_tunnel(proxy, tls_origin):
    curl = shutil.which("curl")
    if not curl:
        pytest.skip("curl is not installed")
    port, cert = tls_origin
    p = proxy(**ALL_PORTS)
    out = subprocess.run([curl, "-sS", "--max-time", "20", "--cacert", str(cert),
                          "-x", "http://127.0.0.1:%d" % p.port,
                          "https://127.0.0.1:%d/" % port], capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout == b"secret over tls\n"


def test_python_tls_client_through_the_tunnel(proxy, tls_origin):
    port, cert = tls_origin
    p = proxy(**ALL_PORTS)
    s, r, rest = open_tunnel(p, port)
    assert r.status == 200 and rest == b""
    ctx = ssl.create_default_context(cafile=str(cert))
    with ctx.wrap_socket(s, server_hostname="localhost") as t:
        t.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        data = b""
        while True:
            chunk = t.recv(65536)
            if not chunk:
                break
            data += chunk
    assert data.endswith(b"secret over tls\n")


def test_openssl_s_client_through_the_tunnel(proxy, tls_origin):
    openssl = shutil.which("openssl")
    port, cert = tls_origin
    p = proxy(**ALL_PORTS)
    out = subprocess.run([openssl, "s_client", "-quiet", "-proxy", "127.0.0.1:%d" % p.port,
                          "-connect", "127.0.0.1:%d" % port, "-CAfile", str(cert),
                          "-verify_return_error", "-servername", "localhost"],
                         input=b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
                         capture_output=True, timeout=60)
    assert b"secret over tls" in out.stdout, out.stderr


def test_half_close_from_the_client_side(proxy, echo):
    e = echo(behaviour="count")
    p = proxy(**ALL_PORTS)
    s, r, rest = open_tunnel(p, e.port)
    s.sendall(b"x" * 100000)
    s.shutdown(socket.SHUT_WR)
    assert rest + read_all(s) == b"got 100000 bytes"
    s.close()


def test_silent_tunnel_ends_after_the_idle_timeout(proxy, echo):
    e = echo()
    p = proxy(**ALL_PORTS, **{"tunnel-idle-timeout": "300ms"})
    s, r, _ = open_tunnel(p, e.port)
    assert r.status == 200
    assert read_all(s) == b""  # the proxy ends it; nobody else would
    s.close()
    assert "TUNNEL-IDLE-TIMEOUT" in p.access_lines(1)[0]


def test_connect_timeout_is_504(proxy):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)
    port = srv.getsockname()[1]
    fillers = []
    for _ in range(4):  # a full accept queue drops further SYNs
        c = socket.socket()
        c.setblocking(False)
        try:
            c.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(c)
    try:
        p = proxy(**ALL_PORTS, **{"connect-timeout": "300ms"})
        s, r, _ = open_tunnel(p, port)
        assert r.status == 504
        s.close()
    finally:
        for c in fillers:
            c.close()
        srv.close()
