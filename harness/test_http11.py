"""HTTP/1.1 semantics end to end: keep-alive, pipelining, bodies, limits, errors."""
import os
import socket
import threading
import time

import pytest

from conftest import WRAPPER

from client import connect, exchange, get, read_all, read_response
from origin import CLOSE


def ok(body=b"ok", extra=b""):
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


def test_keep_alive_on_both_sides(proxy, origin):
    """N requests on one client connection reach the origin on one connection."""
    p = proxy()
    with connect(p.address) as s:
        rest = b""
        for i in range(5):
            s.sendall(get(origin.url("/n%d" % i)))
            r, rest = read_response(s, rest)
            assert r.status == 200 and r.body == b"ok"
            assert r.header("Connection") is None
    assert [q.target for q in origin.wait_requests(5)] == ["/n%d" % i for i in range(5)]
    assert origin.connections == 1


def test_pipelined_requests_are_answered_in_order(proxy, origin):
    origin.handler = lambda req: ok(req.target.encode())
    p = proxy()
    with connect(p.address) as s:
        s.sendall(b"".join(get(origin.url("/p%d" % i)) for i in range(4)))
        rest = b""
        for i in range(4):
            r, rest = read_response(s, rest)
            assert r.body == b"/p%d" % i


def test_http10_client_gets_close_unless_keep_alive(proxy, origin):
    p = proxy()
    raw = ("GET %s HTTP/1.0\r\n\r\n" % origin.url("/")).encode()
    with connect(p.address) as s:
        s.sendall(raw)
        r, _ = read_response(s)
        assert r.header("Connection") == "close"
        assert read_all(s) == b""
    with connect(p.address) as s:
        s.sendall(raw.replace(b"\r\n\r\n", b"\r\nConnection: keep-alive\r\n\r\n"))
        r, rest = read_response(s)
        assert r.header("Connection") == "keep-alive"
        s.sendall(raw)
        r, _ = read_response(s, rest)
        assert r.status == 200


def test_chunked_response_is_re_encoded_for_http11(proxy, origin):
    """Extensions and trailers go; the framing is the proxy's own
    (harness/test_request_path.py has the cases in detail)."""
    origin.reply(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")
    body = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    p = proxy()
    with connect(p.address) as s:
        s.sendall(get(origin.url("/")))
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(65536)
        i = head.index(b"\r\n\r\n") + 4
        data = head[i:]
        while not data.endswith(b"\r\n\r\n") or len(data) < len(body):
            data += s.recv(65536)
        assert data == body
        assert b"Transfer-Encoding: chunked" in head[:i]


def test_chunked_response_is_decoded_for_http10(proxy, origin):
    origin.reply(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    p = proxy()
    with connect(p.address) as s:
        s.sendall(("GET %s HTTP/1.0\r\n\r\n" % origin.url("/")).encode())
        data = read_all(s)
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"chunked" not in head.lower()
    assert body == b"hello world"


def test_chunked_request_body_is_streamed(proxy, origin):
    origin.handler = lambda req: ok(req.body)
    p = proxy()
    chunked = b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"
    raw = ("POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
           % origin.url("/up")).encode() + chunked
    r = p.request(raw)
    assert r.status == 200
    req = origin.wait_requests(1)[0]
    assert req.header("Transfer-Encoding") == "chunked"
    assert req.body == chunked


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PROPFIND"])
def test_every_method_is_forwarded(proxy, origin, method):
    origin.handler = lambda req: ok(req.method.encode() + b":" + req.body)
    p = proxy()
    raw = ("%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody" % (method, origin.url("/m"))).encode()
    r = p.request(raw)
    assert r.body == method.encode() + b":body"


def test_expect_100_continue(proxy, origin):
    origin.handler = lambda req: ok(req.body)
    # A fake origin that answers 100 as soon as it has the head.
    def serve(req):
        return ok(req.body)
    origin.handler = serve
    p = proxy()
    with connect(p.address) as s:
        s.sendall(("PUT %s HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
                   % origin.url("/e")).encode())
        # Our fake origin reads the whole body before answering, so the
        # proxy must not hold the body back waiting for a 100 either: the
        # client sends it after its own short wait, like curl does.
        s.settimeout(0.2)
        try:
            early = s.recv(100)
        except socket.timeout:
            early = b""
        s.settimeout(10)
        s.sendall(b"hello")
        r, _ = read_response(s, early)
        while r.status == 100:
            r, _ = read_response(s, _)
        assert r.status == 200 and r.body == b"hello"


def test_expect_100_continue_from_origin_reaches_client(proxy, origin_factory):
    """A real 100-continue origin: the client gets the 100 before sending its body."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    port = srv.getsockname()[1]

    def origin_thread():
        c, _ = srv.accept()
        with c:
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += c.recv(65536)
            c.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            body = buf.split(b"\r\n\r\n", 1)[1]
            while len(body) < 5:
                body += c.recv(65536)
            c.sendall(ok(body))
    t = threading.Thread(target=origin_thread, daemon=True)
    t.start()
    p = proxy()
    with connect(p.address) as s:
        s.sendall(("PUT http://127.0.0.1:%d/ HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                   "Expect: 100-continue\r\n\r\n" % port).encode())
        r, rest = read_response(s)
        assert r.status == 100
        s.sendall(b"hello")
        r, _ = read_response(s, rest)
        assert r.status == 200 and r.body == b"hello"
    t.join(10)
    srv.close()


def test_client_sending_one_byte_at_a_time_gets_the_same_answer(proxy, origin):
    origin.handler = lambda req: ok(req.body)
    p = proxy()
    raw = ("POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc" % origin.url("/b")).encode()
    with connect(p.address) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(raw)):
            s.sendall(raw[i:i + 1])
        r, _ = read_response(s)
    assert r.status == 200 and r.body == b"abc"


def test_pooled_connection_closed_by_origin_is_retried(proxy, origin):
    """The origin closes each connection right after answering, without
    saying so: the pooled connection is dead and the proxy must not fail."""
    origin.handler = lambda req: [ok(), CLOSE]
    p = proxy()
    with connect(p.address) as s:
        rest = b""
        for i in range(3):
            s.sendall(get(origin.url("/r%d" % i)))
            r, rest = read_response(s, rest)
            assert r.status == 200, r.body
    assert origin.connections == 3


def test_max_forwards_zero_is_answered_by_the_proxy(proxy, origin):
    p = proxy()
    r = p.request(("TRACE %s HTTP/1.1\r\nHost: x\r\nMax-Forwards: 0\r\nCookie: secret\r\n\r\n"
                   % origin.url("/t")).encode())
    assert r.status == 200
    assert r.header("Content-Type") == "message/http"
    assert r.body.startswith(b"TRACE ") and b"secret" not in r.body
    r = p.request(("OPTIONS %s HTTP/1.1\r\nHost: x\r\nMax-Forwards: 2\r\n\r\n" % origin.url("/")).encode())
    assert r.status == 200
    assert origin.wait_requests(1)[0].header("Max-Forwards") == "1"


def test_forwarding_loop_is_refused(proxy, origin):
    p = proxy()
    r = p.request(("GET %s HTTP/1.1\r\nHost: x\r\nVia: 1.1 other, 1.1 glassproxy\r\n\r\n"
                   % origin.url("/")).encode())
    assert r.status == 508
    assert origin.requests == []


def test_forwarded_headers_on_and_delete(proxy, origin):
    raw = ("GET %s HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 10.9.9.9\r\nForwarded: for=10.9.9.9\r\n\r\n"
           % origin.url("/")).encode()
    p = proxy(**{"forwarded-for": "on"})
    p.request(raw)
    req = origin.wait_requests(1)[0]
    assert req.all("X-Forwarded-For") == ["10.9.9.9", "127.0.0.1"]
    assert req.all("Forwarded") == ["for=10.9.9.9", "for=127.0.0.1"]
    p2 = proxy(**{"forwarded-for": "delete"})
    p2.request(raw)
    req = origin.wait_requests(2)[1]
    assert req.header("X-Forwarded-For") is None and req.header("Forwarded") is None
    p3 = proxy()
    p3.request(raw)
    assert origin.wait_requests(3)[2].all("X-Forwarded-For") == ["10.9.9.9"]


def test_parent_proxy_chaining(proxy, origin):
    parent = proxy(**{"via-name": "parent"})
    child = proxy(**{"parent-proxy": "127.0.0.1:%d" % parent.port})
    r = child.request(get(origin.url("/chained")))
    assert r.status == 200
    assert r.all("Via") == ["1.1 parent", "1.1 glassproxy"]
    req = origin.wait_requests(1)[0]
    assert req.line == "GET /chained HTTP/1.1"
    assert req.header("Via") == "1.1 glassproxy, 1.1 parent" or req.all("Via") == ["1.1 glassproxy", "1.1 parent"]
    assert "/chained" in parent.access_lines(1)[0]


# ---- limits and errors, each provoked by a real misbehaving peer ----

def test_request_line_too_long_is_414(proxy):
    p = proxy()
    r = p.request(b"GET http://127.0.0.1/" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert r.status == 414


def test_header_block_too_large_is_431(proxy):
    p = proxy()
    big = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 1000) for i in range(70))
    r = p.request(b"GET http://127.0.0.1/ HTTP/1.1\r\nHost: x\r\n" + big + b"\r\n")
    assert r.status == 431


def test_too_many_headers_is_431(proxy):
    p = proxy()
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(150))
    r = p.request(b"GET http://127.0.0.1/ HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
    assert r.status == 431


def test_slow_request_head_is_408(proxy):
    p = proxy(**{"request-timeout": "300ms"})
    with connect(p.address) as s:
        s.sendall(b"GET http://127.0.0.1/ HTTP/1.1\r\nHost: x\r\n")
        r, _ = read_response(s)
    assert r.status == 408


def test_body_over_the_limit_is_413(proxy, origin):
    p = proxy(**{"max-request-body": "1k"})
    r = p.request(("POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n" % origin.url("/")).encode())
    assert r.status == 413
    assert origin.requests == []


@pytest.mark.parametrize("name,headers", [
    ("cl-and-te", b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n"),
    ("differing-cl", b"Content-Length: 4\r\nContent-Length: 5\r\n"),
    ("te-not-chunked-last", b"Transfer-Encoding: chunked, gzip\r\n"),
    ("obs-fold", b"X-A: 1\r\n  folded\r\n"),
    ("space-before-colon", b"Content-Length : 4\r\n"),
    ("bare-cr", b"X-A: 1\rX-B: 2\r\n"),
])
def test_smuggling_vectors_are_refused(proxy, origin, name, headers):
    p = proxy()
    raw = ("POST %s HTTP/1.1\r\nHost: x\r\n" % origin.url("/")).encode() + headers + b"\r\n0\r\n\r\n"
    r = p.request(raw)
    assert r.status == 400, name
    assert origin.requests == []


def test_unknown_transfer_coding_is_501(proxy, origin):
    p = proxy()
    r = p.request(("POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: magic, chunked\r\n\r\n0\r\n\r\n"
                   % origin.url("/")).encode())
    assert r.status == 501


def test_malformed_response_is_502_and_not_reused(proxy, origin):
    origin.reply(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok")
    p = proxy()
    r = p.request(get(origin.url("/")))
    assert r.status == 502
    assert b"malformed" in r.body
    origin.reply(ok())
    assert p.request(get(origin.url("/"))).status == 200
    assert origin.connections == 2


def test_silent_origin_is_504(proxy, origin):
    origin.handler = lambda req: [("sleep", 3), ok()]
    p = proxy(**{"response-timeout": "300ms"})
    r = p.request(get(origin.url("/slow")))
    assert r.status == 504


def test_connect_timeout_is_504(proxy):
    # A listener whose accept queue is full drops further SYNs: the connect
    # hangs, on loopback, without any other host.
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)
    port = srv.getsockname()[1]
    fillers = []
    for _ in range(4):
        c = socket.socket()
        c.setblocking(False)
        try:
            c.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(c)
    try:
        p = proxy(**{"connect-timeout": "300ms"})
        r = p.request(get("http://127.0.0.1:%d/" % port))
        assert r.status == 504
        assert b"timed out" in r.body
    finally:
        for c in fillers:
            c.close()
        srv.close()


def test_origin_closing_mid_body_closes_the_client(proxy, origin):
    origin.handler = lambda req: [b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly-some", CLOSE]
    p = proxy()
    with connect(p.address) as s:
        s.sendall(get(origin.url("/")))
        data = read_all(s)
    assert data.endswith(b"only-some")
    assert "ended early" in p.events()


def test_large_body_streams_through_bounded_memory(proxy, origin):
    """100 MiB up and 100 MiB down; the proxy's RSS grows by a few MiB at most."""
    size = 100 << 20
    block = os.urandom(1 << 20)
    # The origin answers with a 100 MiB body, generated as it is sent.
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    port = srv.getsockname()[1]
    received = []

    def origin_thread():
        c, _ = srv.accept()
        with c:
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += c.recv(1 << 16)
            got = len(buf.split(b"\r\n\r\n", 1)[1])
            while got < size:
                got += len(c.recv(1 << 20))
            received.append(got)
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
            for _ in range(size // len(block)):
                c.sendall(block)
    t = threading.Thread(target=origin_thread, daemon=True)
    t.start()
    p = proxy()

    def rss_kib():
        with open("/proc/%d/status" % p.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    before = rss_kib()
    with connect(p.address, timeout=60) as s:
        s.sendall(("PUT http://127.0.0.1:%d/big HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                   % (port, size)).encode())
        for _ in range(size // len(block)):
            s.sendall(block)
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += s.recv(1 << 16)
        got = len(buf.split(b"\r\n\r\n", 1)[1])
        peak = rss_kib()
        while got < size:
            data = s.recv(1 << 20)
            assert data
            got += len(data)
        peak = max(peak, rss_kib())
    t.join(30)
    srv.close()
    assert received == [size]
    # Under valgrind the RSS is mostly valgrind's own (shadow memory, its
    # translation cache, a new thread's): the bound is a native promise.
    if not WRAPPER:
        assert peak - before < 8 * 1024, "RSS grew by %d KiB" % (peak - before)


def test_python_http_client_with_keep_alive(proxy, origin):
    import http.client
    origin.handler = lambda req: (b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n" if req.method == "HEAD"
                                  else ok(req.method.encode() + b" " + req.body))
    p = proxy()
    conn = http.client.HTTPConnection("127.0.0.1", p.port, timeout=10)
    for method in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        body = b"data" if method in ("POST", "PUT", "PATCH") else None
        conn.request(method, origin.url("/py"), body=body)
        resp = conn.getresponse()
        data = resp.read()
        assert resp.status == 200
        if method != "HEAD":
            assert data == method.encode() + b" " + (body or b"")
    conn.close()
    assert origin.connections == 1


def test_connect_through_a_parent_proxy(proxy):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    port = srv.getsockname()[1]

    def echo_once():
        c, _ = srv.accept()
        with c:
            c.sendall(c.recv(100))
    t = threading.Thread(target=echo_once, daemon=True)
    t.start()
    parent = proxy(**{"via-name": "parent", "connect-ports": str(port)})
    child = proxy(**{"parent-proxy": "127.0.0.1:%d" % parent.port, "connect-ports": str(port)})
    with connect(child.address) as s:
        s.sendall(b"CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: x\r\n\r\n" % port)
        r, rest = read_response(s, method="CONNECT")
        assert r.status == 200
        s.sendall(b"through two proxies")
        data = rest
        while len(data) < 19:
            data += s.recv(100)
        assert data == b"through two proxies"
    t.join(10)
    srv.close()
    assert "CONNECT" in parent.access_lines(1)[0]


def test_direct_patterns_bypass_the_parent(proxy, origin, tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 intranet.lab www.public.example\n")
    parent = proxy(**{"via-name": "parent", "hosts-file": str(hosts)})
    child = proxy(**{"parent-proxy": "127.0.0.1:%d" % parent.port, "direct": ".lab",
                     "hosts-file": str(hosts)})
    assert child.request(get("http://intranet.lab:%d/" % origin.port)).status == 200
    assert child.request(get("http://www.public.example:%d/" % origin.port)).status == 200
    lines = parent.access_lines(1)
    assert len(lines) == 1 and "www.public.example" in lines[0]


def test_unreachable_parent_proxy_is_502(proxy, origin):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    child = proxy(**{"parent-proxy": "127.0.0.1:%d" % holder.getsockname()[1]})
    r = child.request(get(origin.url("/")))
    holder.close()
    assert r.status == 502


# ---- regressions from review: framing can never be talked out of shape ----

def test_connection_cannot_remove_the_framing(proxy, origin):
    """'Connection: content-length' must not strip the length while the body
    is relayed by it: the origin would read the body as a second request."""
    origin.handler = lambda req: ok(req.method.encode() + b" " + req.body)
    p = proxy()
    smuggled = b"GET /admin HTTP/1.1\r\nHost: internal\r\n\r\n"
    raw = ("POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nConnection: content-length\r\n\r\n"
           % (origin.url("/"), len(smuggled))).encode() + smuggled
    r = p.request(raw)
    assert r.body == b"POST " + smuggled
    req = origin.wait_requests(1)[0]
    assert req.header("Content-Length") == str(len(smuggled))
    assert len(origin.requests) == 1


def test_framing_fields_are_written_canonically(proxy, origin):
    origin.handler = lambda req: ok(req.body)
    p = proxy()
    raw = ("POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: CHUNKED,\r\n\r\n"
           "3\r\nabc\r\n0\r\n\r\n" % origin.url("/")).encode()
    assert p.request(raw).status == 200
    req = origin.wait_requests(1)[0]
    assert req.all("Transfer-Encoding") == ["chunked"]


def test_response_is_framed_by_its_own_method_after_a_body(proxy, origin):
    """The request body passes through the client buffer; the method that
    decides the response framing must not be read from overwritten bytes."""
    origin.handler = lambda req: ok(b"body of " + req.method.encode())
    p = proxy()
    with connect(p.address) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n" % origin.url("/")).encode())
        s.sendall(b"HEAD")
        r, rest = read_response(s, method="POST")
        assert r.body == b"body of POST"
        s.sendall(get(origin.url("/next")))
        r, _ = read_response(s, rest)
        assert r.body == b"body of GET"


def test_max_forwards_answer_with_a_body_closes_the_connection(proxy, origin):
    p = proxy()
    smuggled = ("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % origin.url("/smuggled")).encode()
    with connect(p.address) as s:
        s.sendall(("OPTIONS %s HTTP/1.1\r\nHost: x\r\nMax-Forwards: 0\r\nContent-Length: %d\r\n\r\n"
                   % (origin.url("/"), len(smuggled))).encode() + smuggled)
        r, rest = read_response(s, method="OPTIONS")
        assert r.status == 200 and r.header("Connection") == "close"
        assert rest + read_all(s) == b""
    assert origin.requests == []


def test_chunked_body_over_the_limit_is_413(proxy, origin):
    p = proxy(**{"max-request-body": "100"})
    body = b"".join(b"10\r\n" + b"x" * 16 + b"\r\n" for _ in range(20)) + b"0\r\n\r\n"
    raw = ("POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
           % origin.url("/")).encode() + body
    r = p.request(raw)
    assert r.status == 413


def test_other_transfer_codings_reach_the_client(proxy, origin):
    origin.reply(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nGZIPPED-BYTES")
    origin.handler = lambda req: [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nGZIPPED-BYTES", CLOSE]
    p = proxy()
    with connect(p.address) as s:
        s.sendall(get(origin.url("/")))
        data = read_all(s)
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"\r\nTransfer-Encoding: gzip" in head
    assert body == b"GZIPPED-BYTES"


def test_origin_trickling_its_head_is_504(proxy, origin):
    """The whole response head must arrive within the response timeout."""
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    origin.handler = lambda req: [step for b in head for step in (bytes([b]), ("sleep", 0.05))]
    p = proxy(**{"response-timeout": "500ms"})
    assert p.request(get(origin.url("/"))).status == 504


def test_endless_interim_responses_are_502(proxy, origin):
    origin.handler = lambda req: [b"HTTP/1.1 102 Processing\r\n\r\n" * 50,
                                  b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"]
    p = proxy()
    with connect(p.address) as s:
        s.sendall(get(origin.url("/")))
        r, rest = read_response(s)
        while r.status == 102:
            r, rest = read_response(s, rest)
    assert r.status == 502
