"""Issue 15, the security review: each finding's exchange, replayed against
the real binary, so that its return would fail a test.

The origins here are raw and strict: StrictOrigin frames requests exactly
as RFC 9112 section 7.1 says (a chunk line ends at CRLF only; whatever
follows the size up to it is an extension, skipped), which is what made
the bare-LF smuggling of finding 1 work against an unchecked proxy.
"""
import base64
import os
import re
import signal
import socket
import threading
import time

import pytest

from client import connect, get, read_all, read_response
from conftest import ROOT, SLOW

AUTH_DIR = os.path.join(ROOT, "fixtures", "auth")


class RawOrigin:
    """127.0.0.1:0; handler(sock, origin) runs per connection on a thread.
    received[i] is what connection i sent (appended by the handler)."""

    def __init__(self, handler):
        self.handler = handler
        self.lock = threading.Lock()
        self.received = []
        self.requests = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.threads = []
        self.conns = []
        self.closing = False
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self.threads.append(t)

    @property
    def connections(self):
        with self.lock:
            return len(self.conns)

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            c.settimeout(10 * SLOW)
            with self.lock:
                self.conns.append(c)
            t = threading.Thread(target=self._run, args=(c,), daemon=True)
            t.start()
            self.threads.append(t)

    def _run(self, c):
        try:
            self.handler(c, self)
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes accept()
        except OSError:
            pass
        self.sock.close()
        with self.lock:
            for c in self.conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        for t in self.threads:
            t.join(5)


@pytest.fixture
def raw_origin():
    made = []

    def make(handler):
        o = RawOrigin(handler)
        made.append(o)
        return o

    yield make
    for o in made:
        o.close()


class Reader:
    """Buffered reads from a socket; None at EOF."""

    def __init__(self, sock):
        self.sock, self.buf = sock, b""

    def fill(self):
        data = self.sock.recv(65536)
        if not data:
            return False
        self.buf += data
        return True

    def until(self, marker):
        while marker not in self.buf:
            if not self.fill():
                return None
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def take(self, n):
        while len(self.buf) < n:
            if not self.fill():
                return None
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def strict_chunked(r):
    """RFC 9112 7.1 to the letter: size = leading hex digits of a line that
    ends at CRLF; the rest of the line is an extension, skipped."""
    body = b""
    while True:
        line = r.until(b"\r\n")
        if line is None:
            return None
        m = re.match(rb"[0-9a-fA-F]+", line)
        if not m:
            return None
        size = int(m.group(0), 16)
        if size == 0:
            while True:  # trailer section, up to an empty line
                t = r.until(b"\r\n")
                if t is None or t == b"\r\n":
                    return body
        data = r.take(size)
        if data is None or r.take(2) != b"\r\n":
            return None
        body += data


def strict_origin(c, o):
    """Answers each request with its own target in the body, keep-alive."""
    r = Reader(c)
    while True:
        head = r.until(b"\r\n\r\n")
        if head is None:
            return
        text = head.decode("latin-1").lower()
        if "transfer-encoding: chunked" in text:
            body = strict_chunked(r)
            if body is None:
                return
        else:
            m = re.search(r"content-length:\s*(\d+)", text)
            body = r.take(int(m.group(1))) if m else b""
            if body is None:
                with o.lock:
                    o.requests.append((head, b"<incomplete>"))
                return
        with o.lock:
            o.requests.append((head, body))
        target = head.split(b" ", 2)[1]
        payload = (b"SMUGGLED-RESPONSE-FOR-A" if b"smuggled" in target
                   else b"answer for " + target)
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"
                  % (len(payload), payload))


# ---- finding 1: smuggling through chunk framing ----

def issue_exchange_a(url):
    return (("POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
             % url).encode()
            + b"2;a\nxx\r\n3d\r\n0\r\n\r\nPOST /smuggled HTTP/1.1\r\nHost: x\r\n"
            b"Content-Length: 60\r\n\r\n\r\n0\r\n\r\n")


def victim_b(url):
    return (("GET %s HTTP/1.1\r\nHost: x\r\nCookie: secret=hunter2\r\n\r\n"
             % url).encode())


def test_finding_1_request_smuggling_exact_exchange(proxy, raw_origin):
    """Client A's bare-LF chunk line: the proxy refuses it (400) or frames
    it anew; either way B gets its own answer and the cookie never lands
    inside another request at the origin."""
    o = raw_origin(strict_origin)
    p = proxy()
    with connect(p.address) as a:
        a.sendall(issue_exchange_a(o.url("/attacker")))
        ra, _ = read_response(a, method="POST")
        assert ra.status in (400, 200)
        assert b"SMUGGLED" not in ra.body
    with connect(p.address) as b:
        b.sendall(victim_b(o.url("/victim")))
        rb, _ = read_response(b)
    assert rb.status == 200
    assert rb.body == b"answer for /victim"
    with o.lock:
        requests = list(o.requests)
    for head, body in requests:
        if not head.startswith(b"GET /victim "):
            assert b"hunter2" not in head + body
        assert not head.startswith(b"POST /smuggled")
    victims = [h for h, _ in requests if h.startswith(b"GET /victim ")]
    assert len(victims) == 1 and b"secret=hunter2" in victims[0]


def test_finding_1_response_smuggling_bare_lf_chunks(proxy, raw_origin):
    """The response direction: an origin answering with bare-LF chunk lines
    and a second response behind them.  The client gets a 502 or a
    truncated answer, the connection is not reused, and the next client
    never gets the extra response."""
    def handler(c, o):
        r = Reader(c)
        head = r.until(b"\r\n\r\n")
        if head is None:
            return
        with o.lock:
            n = len(o.requests)
            o.requests.append((head, b""))
        if n == 0:
            c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"3\nabc\n0\n\nHTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n"
                      b"SMUGGLED")
        else:
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nvictim")
        while r.fill():  # keep-alive: the next request, if reused
            with o.lock:
                o.requests.append((r.buf, b"reused"))
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nreused")
            r.buf = b""

    o = raw_origin(handler)
    p = proxy()
    with connect(p.address) as a:
        a.sendall(get(o.url("/a")))
        got = read_all(a)
    assert b"3\nabc" not in got and b"SMUGGLED" not in got
    with connect(p.address) as b:
        b.sendall(get(o.url("/b")))
        rb, _ = read_response(b)
    assert rb.status == 200 and rb.body == b"victim"
    assert o.connections == 2


@pytest.mark.parametrize("size_line", [
    b"5 ;ext=1",                       # whitespace before the extension
    b"5; name = \"v\"",                 # whitespace around = in it
    b"5\t;e",
    b"0" * 40 + b"5",                   # a long run of leading zeros
    b"0" * 4000 + b"5",
], ids=["blank-before-ext", "blanks-around-eq", "tab-before-ext", "40-zeros",
        "4000-zeros"])
def test_finding_1_chunk_sizes_read_alike_or_refused(proxy, raw_origin, size_line):
    """Odd but (to some reader) valid size lines: the origin either gets
    nothing (the proxy refused with 400) or exactly the payload the proxy
    read, in canonical chunks; never a framing of its own choosing."""
    o = raw_origin(strict_origin)
    p = proxy()
    raw = (("POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            % o.url("/odd")).encode() + size_line + b"\r\nhello\r\n0\r\n\r\n")
    with connect(p.address) as s:
        s.sendall(raw)
        r, _ = read_response(s, method="POST")
    assert r.status in (200, 400)
    with o.lock:
        requests = list(o.requests)
    if r.status == 400:
        assert requests == []
    else:
        assert len(requests) == 1 and requests[0][1] == b"hello"


# ---- finding 2: a head trickled one byte per send ----

def proc_cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def trickle(sock, data):
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for i in range(len(data)):
        sock.send(data[i:i + 1])


def big_head_fields(total):
    """Header lines adding up to about total bytes, under the field count."""
    per = total // 90
    return b"".join(b"X-Pad-%02d: %s\r\n" % (i, b"a" * (per - 12))
                    for i in range(90))


def test_finding_2_trickled_heads_complete_both_directions(proxy, raw_origin):
    """A ~60 KiB request head and a ~60 KiB response head, one byte per
    send: both complete.  The proxy's CPU time is printed (-s shows it);
    it is not asserted, as no wall or CPU time is."""
    pad = big_head_fields(60000)

    def handler(c, o):
        r = Reader(c)
        if r.until(b"\r\n\r\n") is None:
            return
        trickle(c, b"HTTP/1.1 200 OK\r\n" + pad + b"Content-Length: 2\r\n\r\nok")
        r.fill()

    o = raw_origin(handler)
    p = proxy()
    before = proc_cpu_seconds(p.proc.pid)
    with connect(p.address, timeout=120) as s:
        req = (("GET %s HTTP/1.1\r\nHost: x\r\n" % o.url("/big")).encode()
               + pad + b"\r\n")
        trickle(s, req)
        r, _ = read_response(s)
    after = proc_cpu_seconds(p.proc.pid)
    assert r.status == 200 and r.body == b"ok"
    assert r.header("X-Pad-89") is not None
    print("\nfinding 2: proxy CPU for a %d-byte request head and a %d-byte "
          "response head, one byte per send: %.2f s" %
          (len(req), len(pad) + 40, after - before))


# ---- finding 3: resolved addresses, unspecified addresses ----

def test_finding_3_hosts_file_name_into_a_blocked_network(proxy, raw_origin, tmp_path):
    """--hosts-file maps a name to 127.0.0.2, --block 127.0.0.2/32: the
    name is refused before any connection, naming the rule; the origin
    reached by its own address still works."""
    o = raw_origin(strict_origin)
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.2 intranet.test\n127.0.0.1 fine.test\n")
    p = proxy(**{"hosts-file": str(hosts), "block": "127.0.0.2/32",
                 "connect-ports": str(o.port)})
    r = p.request(get("http://intranet.test:%d/x" % o.port))
    assert r.status == 403
    assert b"127.0.0.2" in r.body
    r = p.request(b"CONNECT intranet.test:%d HTTP/1.1\r\nHost: intranet.test\r\n\r\n"
                  % o.port)
    assert r.status == 403
    r = p.request(get("http://fine.test:%d/ok" % o.port))
    assert r.status == 200 and r.body == b"answer for /ok"
    assert o.connections == 1


@pytest.mark.parametrize("host", ["0.0.0.0", "[::]", "0.1.2.3"])
def test_finding_3_unspecified_addresses_are_never_a_destination(proxy, raw_origin, host):
    o = raw_origin(strict_origin)
    p = proxy()
    r = p.request(get("http://%s:%d/" % (host, o.port)))
    assert r.status == 403
    assert o.connections == 0


# ---- finding 4: slow bodies, slow readers, connections per client ----

def test_finding_4_slow_request_body_is_cut_off_others_are_served(proxy, raw_origin):
    """A body trickled below --min-body-rate is cut off with 408 once its
    allowance (300 ms + 1 ms per byte here) is spent; a normal client is
    served while it trickles.  The 50 ms pauses pace the trickle; they
    synchronise nothing."""
    o = raw_origin(strict_origin)
    p = proxy(**{"request-body-timeout": "300ms", "min-body-rate": "1000"})
    slow = connect(p.address)
    slow.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\nx"
                  % o.url("/slow")).encode())
    r = p.request(get(o.url("/normal")))
    assert r.status == 200
    got = b""
    slow.settimeout(0.05)
    for _ in range(400):  # at most 20 s
        try:
            slow.send(b"x")
            data = slow.recv(65536)
            if not data:
                break
            got += data
            if b"\r\n\r\n" in got:
                break
        except socket.timeout:
            pass
        except OSError:
            break
    slow.close()
    assert got.startswith(b"HTTP/1.1 408 "), got[:100]
    slow_lines = [l for l in p.access_lines(expect=2) if "/slow" in l]
    assert slow_lines and " 408 " in slow_lines[0]
    assert "BODY-TIMEOUT" in slow_lines[0]


def test_finding_4_slow_reader_is_closed(proxy, raw_origin):
    """A client that never reads a big response: once its allowance is
    spent the proxy closes it (SLOW-READER), instead of holding a worker
    for the per-send timeout."""
    def handler(c, o):
        r = Reader(c)
        if r.until(b"\r\n\r\n") is None:
            return
        size = 256 << 20
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        chunk = b"z" * 65536
        for _ in range(size // len(chunk)):
            c.sendall(chunk)

    o = raw_origin(handler)
    p = proxy(**{"request-body-timeout": "200ms", "min-send-rate": "50000000"})
    s = connect(p.address, timeout=60)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(get(o.url("/big")))
    lines = p.access_lines(expect=1, timeout=60)
    s.close()
    assert lines and "SLOW-READER" in lines[0], lines


def test_finding_4_max_connections_per_client(proxy, raw_origin):
    o = raw_origin(strict_origin)
    p = proxy(**{"max-connections-per-client": "2"})
    a, b = connect(p.address), connect(p.address)
    try:
        with connect(p.address) as c:
            r, _ = read_response(c)
        assert r.status == 503
        a.sendall(get(o.url("/a")))
        ra, _ = read_response(a)
        assert ra.status == 200
    finally:
        a.close()
        b.close()


# ---- finding 5: stray bytes between clients ----

@pytest.mark.parametrize("when", ["same-write", "after-the-answer-arrived"])
def test_finding_5_stray_response_after_head_never_reaches_the_next_client(
        proxy, raw_origin, when):
    """The issue's exchange: HEAD answered with Content-Length: 62, then a
    whole extra response on the same connection.  Either in the same write
    as the answer, or later: once client A has the HEAD answer (an event,
    not a sleep), the origin sends the extra response, and only once it is
    sent does client B ask.  The pooled connection is then readable and
    must be closed, not reused."""
    injected = b"INJECTED-FOR-VICTIM!"
    stray = (b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"
             % (len(injected), injected))
    a_has_answer, stray_sent = threading.Event(), threading.Event()

    def handler(c, o):
        r = Reader(c)
        while True:
            head = r.until(b"\r\n\r\n")
            if head is None:
                return
            with o.lock:
                o.requests.append((head, b""))
            if not head.startswith(b"HEAD "):
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nvictim")
                continue
            answer = b"HTTP/1.1 200 OK\r\nContent-Length: 62\r\n\r\n"
            if when == "same-write":
                c.sendall(answer + stray)
            else:
                c.sendall(answer)
                a_has_answer.wait(10 * SLOW)
                c.sendall(stray)
            stray_sent.set()

    o = raw_origin(handler)
    p = proxy()
    with connect(p.address) as a:
        a.sendall(b"HEAD %s HTTP/1.1\r\nHost: x\r\n\r\n" % o.url("/head").encode())
        ra, _ = read_response(a, method="HEAD")
        assert ra.status == 200
    a_has_answer.set()
    assert stray_sent.wait(10 * SLOW)
    for i in range(3):
        with connect(p.address) as b:
            b.sendall(get(o.url("/victim%d" % i)))
            rb, _ = read_response(b)
        assert injected not in rb.body and rb.body == b"victim"
    # The HEAD's connection was not reused (a victim's may have been).
    assert o.connections >= 2


@pytest.mark.parametrize("announce", [b"Transfer-Encoding: chunked",
                                      b"Content-Length: 5"])
def test_finding_5_no_pooling_after_a_204_that_announced_a_body(
        proxy, raw_origin, announce):
    def handler(c, o):
        r = Reader(c)
        while True:
            head = r.until(b"\r\n\r\n")
            if head is None:
                return
            with o.lock:
                o.requests.append((head, b""))
            c.sendall(b"HTTP/1.1 204 No Content\r\n%s\r\n\r\n" % announce)

    o = raw_origin(handler)
    p = proxy()
    with connect(p.address) as s:
        for i in range(2):
            s.sendall(get(o.url("/%d" % i)))
            r, _ = read_response(s)
            assert r.status == 204
            assert r.header("Content-Length") is None
            assert r.header("Transfer-Encoding") is None
    assert o.connections == 2


# ---- finding 6: Content-Length on bodiless responses ----

def one_answer(raw_origin, answer):
    def handler(c, o):
        r = Reader(c)
        while r.until(b"\r\n\r\n") is not None:
            c.sendall(answer)
    return raw_origin(handler)


def test_finding_6_no_content_length_on_204_or_1xx(proxy, raw_origin):
    o = one_answer(raw_origin,
                   b"HTTP/1.1 103 Early Hints\r\nContent-Length: 7\r\nLink: </a>\r\n\r\n"
                   b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n"
                   b"Content-Length: 9\r\n\r\n")
    p = proxy()
    with connect(p.address) as s:
        s.sendall(get(o.url("/x")))
        first, rest = read_response(s)
        assert first.status == 103 and first.all("Content-Length") == []
        final, _ = read_response(s, rest)
    assert final.status in (204, 502)
    assert final.all("Content-Length") == [] or final.status == 502


@pytest.mark.parametrize("fields,expect", [
    (b"Content-Length: 62\r\n", ["62"]),
    (b"Content-Length: 62\r\nContent-Length: 62\r\n", ["62"]),
    (b"Content-Length: 62\r\nContent-Length: 63\r\n", []),
])
def test_finding_6_head_forwards_one_validated_length(proxy, raw_origin, fields, expect):
    o = one_answer(raw_origin, b"HTTP/1.1 200 OK\r\n" + fields + b"\r\n")
    p = proxy()
    with connect(p.address) as s:
        s.sendall(b"HEAD %s HTTP/1.1\r\nHost: x\r\n\r\n" % o.url("/h").encode())
        r, _ = read_response(s, method="HEAD")
    if r.status == 502:  # the parser may refuse differing values outright
        assert expect == []
        return
    assert r.status == 200 and r.all("Content-Length") == expect


# ---- findings 7, 8, 10 (server tokens), 11 ----

def test_finding_7_via_name_with_crlf_exits_2(tmp_path):
    import subprocess
    from conftest import BIN
    res = subprocess.run([BIN, "--via-name", "x\r\nX-Injected: 1",
                          "--check-config"], capture_output=True, timeout=10)
    assert res.returncode == 2
    assert b"X-Injected: 1\r\n" not in res.stdout + res.stderr


def test_finding_8_http10_with_transfer_encoding_is_400(proxy, raw_origin):
    o = raw_origin(strict_origin)
    p = proxy()
    r = p.request(("POST %s HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "2\r\nxx\r\n0\r\n\r\n" % o.url("/x")).encode())
    assert r.status == 400
    assert o.connections == 0


def test_server_tokens_off_drops_the_version(proxy):
    on = proxy().request(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    off = proxy(**{"server-tokens": "off"}).request(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert on.status == off.status == 400
    assert re.search(rb"glassproxy/\d", on.body)
    assert b"glassproxy" in off.body and not re.search(rb"glassproxy/\d", off.body)


def test_finding_11_plain_http_to_port_25_is_refused(proxy, raw_origin):
    o = raw_origin(strict_origin)
    p = proxy()
    r = p.request(get("http://127.0.0.1:25/"))
    assert r.status == 403 and b"25" in r.body
    assert p.request(get(o.url("/ok"))).status == 200  # >= 1025: allowed
    q = proxy(**{"http-ports": "80"})
    assert q.request(get(o.url("/no"))).status == 403


# ---- proxy authentication ----

def basic(user, password):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


def authed_get(url, cred=None):
    extra = "Proxy-Authorization: %s\r\n" % cred if cred else ""
    m = re.match(r"http://([^/]+)", url)
    return ("GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (url, m.group(1), extra)).encode()


def test_auth_407_good_and_bad_passwords(proxy, raw_origin):
    o = raw_origin(strict_origin)
    p = proxy(**{"auth-file": os.path.join(AUTH_DIR, "good.htpasswd"),
                 "auth-realm": "lab proxy"})
    r = p.request(authed_get(o.url("/none")))
    assert r.status == 407
    assert r.header("Proxy-Authenticate") == 'Basic realm="lab proxy", charset="UTF-8"'
    for user in ("alice", "dave"):  # bcrypt, SHA-512-crypt
        r = p.request(authed_get(o.url("/" + user), basic(user, user + " pw")))
        assert r.status == 200, user
        r = p.request(authed_get(o.url("/" + user), basic(user, "wrong")))
        assert r.status == 407
    with o.lock:
        for head, _ in o.requests:
            assert b"proxy-authorization" not in head.lower()
    assert len(o.requests) == 2
    log = "\n".join(p.access_lines(expect=5))
    assert "AUTH-REQUIRED" in log


def test_auth_connect_with_and_without(proxy, raw_origin):
    o = raw_origin(strict_origin)
    p = proxy(**{"auth-file": os.path.join(AUTH_DIR, "good.htpasswd"),
                 "connect-ports": str(o.port)})
    target = "127.0.0.1:%d" % o.port
    r = p.request(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, target)).encode())
    assert r.status == 407
    with connect(p.address) as s:
        s.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\nProxy-Authorization: %s\r\n\r\n"
                   % (target, target, basic("bob", "bob pw"))).encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += s.recv(4096)
        assert buf.startswith(b"HTTP/1.1 200 ")
        s.sendall(b"GET /in-tunnel HTTP/1.1\r\nHost: x\r\n\r\n")
        r, _ = read_response(s, buf.split(b"\r\n\r\n", 1)[1])
        assert r.body == b"answer for /in-tunnel"


def test_auth_reload_of_the_file(proxy, raw_origin, tmp_path):
    o = raw_origin(strict_origin)
    users = tmp_path / "users"
    good = open(os.path.join(AUTH_DIR, "good.htpasswd"), "rb").read()
    alice = [l for l in good.splitlines() if l.startswith(b"alice:")][0]
    dave = [l for l in good.splitlines() if l.startswith(b"dave:")][0]
    users.write_bytes(alice + b"\n")
    p = proxy(**{"auth-file": str(users)})
    assert p.request(authed_get(o.url("/1"), basic("alice", "alice pw"))).status == 200
    assert p.request(authed_get(o.url("/2"), basic("dave", "dave pw"))).status == 407
    users.write_bytes(dave + b"\n")
    p.signal(signal.SIGHUP)
    p.wait_event("reloaded")
    assert p.request(authed_get(o.url("/3"), basic("dave", "dave pw"))).status == 200
    assert p.request(authed_get(o.url("/4"), basic("alice", "alice pw"))).status == 407
    # a bad file is refused and the old one kept
    users.write_bytes(b"mallory:plaintext\n")
    p.signal(signal.SIGHUP)
    p.wait_event("reload failed")
    assert "mallory" in p.events()
    assert p.request(authed_get(o.url("/5"), basic("dave", "dave pw"))).status == 200


def test_auth_bad_file_exits_2(tmp_path):
    import subprocess
    from conftest import BIN
    res = subprocess.run([BIN, "--listen", "127.0.0.1:0", "--auth-file",
                          os.path.join(AUTH_DIR, "weak.htpasswd"), "--check-config"],
                         capture_output=True, timeout=30)
    assert res.returncode == 2
    assert b"weak" in res.stderr


def test_auth_throttle_answers_429_after_n_failures(proxy, raw_origin):
    o = raw_origin(strict_origin)
    p = proxy(**{"auth-file": os.path.join(AUTH_DIR, "good.htpasswd"),
                 "auth-max-failures": "3", "auth-failure-window": "1h"})
    for i in range(3):
        assert p.request(authed_get(o.url("/"), basic("alice", "no%d" % i))).status == 407
    r = p.request(authed_get(o.url("/"), basic("alice", "alice pw")))
    assert r.status == 429
    assert int(r.header("Retry-After")) > 0
    assert len(o.requests) == 0
