"""The request path end to end: bodies decoded and framed anew (canonical
chunks both ways, close-delimited for HTTP/1.0), early answers during an
upload, OPTIONS *, and rules and settings taken per request."""
import re
import signal
import socket

from client import connect, get, read_all, read_response
from conftest import SLOW

SIZE_LINE = re.compile(rb"(0|[1-9a-f][0-9a-f]*)\r\n")


def canonical_payload(body):
    """The payload of a canonically chunked body (lower-case hex without
    leading zeros, CRLF, no extensions, no trailers), or None."""
    payload, i = b"", 0
    while True:
        m = SIZE_LINE.match(body, i)
        if not m:
            return None
        size, i = int(m.group(1), 16), m.end()
        if size == 0:
            return payload if body[i:] == b"\r\n" else None
        if body[i + size:i + size + 2] != b"\r\n":
            return None
        payload += body[i:i + size]
        i += size + 2


def recv_head(s):
    buf = b""
    while b"\r\n\r\n" not in buf:
        data = s.recv(65536)
        assert data, "closed before a head: %r" % buf
        buf += data
    i = buf.index(b"\r\n\r\n") + 4
    return buf[:i], buf[i:]


def recv_until(s, buf, end):
    while not buf.endswith(end):
        data = s.recv(65536)
        if not data:
            return buf, False
        buf += data
    return buf, True


def test_response_chunks_reach_the_client_canonical(proxy, origin):
    """Extensions, upper-case hex, leading zeros and trailers from the
    origin: the client gets lower-case sizes, CRLF, no extensions, no
    trailers (RFC 9110 6.5.1 lets a proxy drop trailers)."""
    origin.reply(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"005;name=\"v; x\"\r\nhello\r\n"
                 b"B ; ext\r\n, big world\r\n"
                 b"0;last\r\nX-Checksum: 1\r\nX-Other: 2\r\n\r\n")
    p = proxy()
    with connect(p.address) as s:
        s.sendall(get(origin.url("/chunks")))
        head, body = recv_head(s)
        body, complete = recv_until(s, body, b"0\r\n\r\n")
        assert complete
        assert body == b"5\r\nhello\r\nb\r\n, big world\r\n0\r\n\r\n"
        assert canonical_payload(body) == b"hello, big world"
        assert b"\r\nTransfer-Encoding: chunked\r\n" in head
        assert b"X-Checksum" not in head + body
        # The connection carries on: the body ended where the proxy said.
        s.sendall(get(origin.url("/again")))
        r, _ = read_response(s)
        assert r.status == 200
    assert origin.connections == 1


def test_request_chunks_reach_the_origin_canonical(proxy, origin):
    p = proxy()
    raw = ("POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
           % origin.url("/up")).encode()
    raw += b"4;a=1\r\nwiki\r\n00005 ;b\r\npedia\r\n0\r\nX-T: 1\r\n\r\n"
    r = p.request(raw)
    assert r.status == 200
    q = origin.wait_requests(1)[0]
    assert q.header("Transfer-Encoding") == "chunked"
    assert q.body == b"4\r\nwiki\r\n5\r\npedia\r\n0\r\n\r\n"


def test_issue_15_smuggling_bytes_do_not_desynchronise_the_origin(proxy, origin):
    """Issue 15 finding 1's exchange: whatever the proxy makes of the bare
    LF, the origin never receives it and never sees a second request."""
    origin.reply(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    p = proxy()
    raw = ("POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
           % origin.url("/attacker")).encode()
    raw += (b"2;a\nxx\r\n3d\r\n0\r\n\r\nPOST /smuggled HTTP/1.1\r\nHost: x\r\n"
            b"Content-Length: 60\r\n\r\n\r\n0\r\n\r\n")
    with connect(p.address) as s:
        s.sendall(raw)
        r, _ = read_response(s)
    assert r.status in (200, 400)
    # One request at most, framed canonically: the origin's idea of where
    # the body ends is the proxy's, so "/smuggled" is payload, not a request.
    assert len(origin.requests) <= 1
    for q in origin.requests:
        assert q.target == "/attacker"
        assert b"\n" not in q.body.replace(b"\r\n", b"")
        if r.status == 200:  # the bare LF read as a line end, re-encoded
            payload = canonical_payload(q.body)
            assert payload is not None, q.body
            assert payload.startswith(b"xx0\r\n\r\nPOST /smuggled")


def test_bare_lf_in_a_response_chunk_line_never_reaches_the_client(proxy, origin):
    """Canonical framing, or an error (a 502, or once the head is out, a
    body cut short and the connection closed), never the bare LF."""
    origin.reply(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"3\nabc\r\n0\r\n\r\n")
    p = proxy()
    with connect(p.address) as s:
        s.sendall(get(origin.url("/lf")))
        head, body = recv_head(s)
        body, complete = recv_until(s, body, b"0\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        assert b"3\n" not in head + body
        if status == 200 and complete:
            assert body == b"3\r\nabc\r\n0\r\n\r\n"
        else:
            assert status == 502 or not complete, (head, body)
            assert read_all(s) == b""  # and the connection is not reused
    if not (status == 200 and complete):
        origin.reply(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        p.request(get(origin.url("/next")))
        assert origin.connections == 2


def test_http10_client_gets_a_close_delimited_decoded_body(proxy, origin):
    origin.reply(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n")
    p = proxy()
    with connect(p.address) as s:
        s.sendall(("GET %s HTTP/1.0\r\n\r\n" % origin.url("/old")).encode())
        data = read_all(s)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Transfer-Encoding" not in head and b"Content-Length" not in head
    assert b"\r\nConnection: close" in head
    assert body == b"hello world"


def test_reload_adding_a_block_refuses_the_next_request_on_an_open_connection(
        proxy, origin, tmp_path):
    lists = tmp_path / "block.txt"
    lists.write_text("# nothing yet\n")
    p = proxy(**{"block-file": str(lists)})
    with connect(p.address) as s:
        s.sendall(get(origin.url("/one")))
        r, rest = read_response(s)
        assert r.status == 200
        lists.write_text("127.0.0.1\n")
        p.signal(signal.SIGHUP)
        p.wait_event("reloaded")
        s.sendall(get(origin.url("/two")))
        r, _ = read_response(s, rest)
        assert r.status == 403
    assert [q.target for q in origin.requests] == ["/one"]
    assert p.access_lines(2)[1].split()[-1] == "BLOCKED"


def test_reload_shortening_the_response_timeout_applies_to_the_next_request(
        proxy, origin, tmp_path):
    conf = tmp_path / "glassproxy.conf"
    conf.write_text("response-timeout 60s\n")
    origin.handler = lambda req: ([("sleep", 5 * SLOW)] if req.target == "/slow" else []) + [
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"]
    p = proxy(config=str(conf))
    with connect(p.address, timeout=4 * SLOW) as s:
        s.sendall(get(origin.url("/fast")))
        r, rest = read_response(s)
        assert r.status == 200
        conf.write_text("response-timeout 200ms\n")
        p.signal(signal.SIGHUP)
        p.wait_event("reloaded")
        # Same connection: its next request runs under the new setting (with
        # the old one the origin's 5 s would outlast this client's 4 s).
        s.sendall(get(origin.url("/slow")))
        r, _ = read_response(s, rest)
    assert r.status == 504
    assert b"within 200 ms" in r.body


def test_early_413_during_an_upload_reaches_the_client(proxy, origin):
    origin.answer_before_body = True
    origin.reply(b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 8\r\n"
                 b"Connection: close\r\n\r\ntoo big!")
    p = proxy()
    with connect(p.address) as s:
        s.sendall(("PUT %s HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n"
                   % origin.url("/upload")).encode() + b"x" * 1000)
        # The rest of the body never comes: the answer must not wait for it.
        r, _ = read_response(s)
        assert r.status == 413 and r.body == b"too big!"
        assert r.header("Connection") == "close"
        s.shutdown(socket.SHUT_WR)
        assert read_all(s) == b""
    assert p.access_lines(1)[0].split()[-1] == "EARLY-RESPONSE"


def test_options_without_a_path_goes_upstream_as_asterisk(proxy, origin):
    p = proxy()
    for target, want in (("http://%s" % origin.authority, "*"),
                         ("http://%s/" % origin.authority, "/")):
        r = p.request(("OPTIONS %s HTTP/1.1\r\nHost: x\r\n\r\n" % target).encode())
        assert r.status == 200
        assert origin.requests[-1].line == "OPTIONS %s HTTP/1.1" % want
