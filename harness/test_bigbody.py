"""Big bodies (issue 13 item 3): a Content-Length body with 64 KiB or more
left moves origin socket -> pipe -> client socket with splice(2) when
nothing has to see its bytes (not stored), and the same for an upload;
a response too large for --max-object-size is not stored at all.

That the splice path ran is seen from the outside through the fault sys:
a `net.splice=short` rule counts the splices it shortened (the counters
the proxy prints at exit), and shortened splices must still deliver
every byte: `net.splice[client]=short:1000` lets a pipeful in from the
origin whole and sends it on to the client 1,000 bytes a call.  Everything is on 127.0.0.1 with ephemeral ports."""
import hashlib
import os
import re
import signal

from client import connect, get, read_response

SIZE = 3 << 20
SHORT_OUT = "net.splice[client]=short:1000"


def fault_hits(p):
    """{rule: hits} from the counters the proxy prints when it stops."""
    p.signal(signal.SIGTERM)
    assert p.stop() == 0, p.stderr()
    text = p.stderr()
    assert "glassproxy: faults injected:" in text, text
    tail = text.rsplit("glassproxy: faults injected:", 1)[1]
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r"^(\S+) hits=(\d+) calls=\d+$", tail, re.M)}


def big_answer(body, extra=""):
    return (b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n"
            % (len(body), extra.encode())) + body


def fetch_twice(p, url):
    """Two GETs on one keep-alive connection: (first, second)."""
    with connect(p.address, timeout=30) as s:
        s.sendall(get(url))
        first, rest = read_response(s)
        s.sendall(get(url))
        second, _ = read_response(s, rest)
    return first, second


def test_large_body_is_byte_identical_through_the_splice_path(proxy, origin):
    body = os.urandom(SIZE)
    origin.handler = lambda r: big_answer(body)
    p = proxy(**{"no-cache": True, "fault": [SHORT_OUT]})
    first, second = fetch_twice(p, origin.url("/big"))
    for r in (first, second):
        assert r.status == 200
        assert hashlib.sha256(r.body).digest() == hashlib.sha256(body).digest()
    # The upstream connection went back to the pool after the body.
    assert origin.connections == 1
    assert fault_hits(p)[SHORT_OUT] > 0


def test_large_upload_is_byte_identical_through_the_splice_path(proxy, origin):
    body = os.urandom(SIZE)
    origin.reply(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok")
    # An upload's pipe empties into the origin's socket.
    short_up = "net.splice[origin]=short:1000"
    p = proxy(**{"no-cache": True, "fault": [short_up]})
    with connect(p.address, timeout=30) as s:
        s.sendall(b"PUT %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                  % (origin.url("/up").encode(), len(body)) + body)
        r, _ = read_response(s)
    assert r.status == 201
    assert origin.requests[0].body == body
    assert fault_hits(p)[short_up] > 0


def test_splice_einval_falls_back_to_copying(proxy, origin):
    body = os.urandom(SIZE)
    origin.handler = lambda r: big_answer(body)
    p = proxy(**{"no-cache": True, "fault": ["net.splice=EINVAL"]})
    first, second = fetch_twice(p, origin.url("/big"))
    assert first.body == body and second.body == body
    assert origin.connections == 1
    # One refused splice per body, then the copy path: nothing retried.
    assert fault_hits(p)["net.splice=EINVAL"] == 2


def test_origin_reset_mid_splice_cuts_the_body(proxy, origin):
    """The third splice (the second from the origin) fails: the client's
    connection closes short of the length, the upstream connection is
    not pooled, and the next request is whole."""
    body = os.urandom(SIZE)
    origin.handler = lambda r: big_answer(body)
    p = proxy(**{"no-cache": True, "fault": ["net.splice=ECONNRESET@3"]})
    with connect(p.address, timeout=30) as s:
        s.sendall(get(origin.url("/big")))
        data = b""
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            data += chunk
    head, _, got = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert 0 < len(got) < SIZE and body.startswith(got)
    first, second = fetch_twice(p, origin.url("/big"))
    assert first.body == body and second.body == body
    # The cut connection was closed: the next request needed a new one.
    assert origin.connections == 2
    lines = p.access_lines(3)
    assert lines[0].split()[-1] == "UPSTREAM-TRUNCATED", lines
    assert fault_hits(p)["net.splice=ECONNRESET@3"] == 1


def test_too_large_for_the_cache_is_never_written(proxy, origin):
    """Content-Length above --max-object-size: no store write begins (the
    cache's tmp/ stays empty while the body streams), Cache-Status says
    why, the client gets every byte, and the next request goes to the
    origin again."""
    body = os.urandom(SIZE)
    origin.handler = lambda r: big_answer(body, "Cache-Control: max-age=600\r\n")
    p = proxy(**{"max-object-size": "1M", "fault": [SHORT_OUT]})
    tmp = p.dir / "cache" / "tmp"
    with connect(p.address, timeout=30) as s:
        s.sendall(get(origin.url("/huge")))
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += s.recv(65536)
        # The head is out, so whatever the cache decided is decided; the
        # old way had a temporary file open here.
        assert not tmp.exists() or list(tmp.iterdir()) == []
        r, _ = read_response(s, buf)
    assert r.body == body
    cs = r.header("Cache-Status")
    assert "detail=too-large" in cs and "stored" not in cs, cs
    r2 = p.request(get(origin.url("/huge")))
    assert r2.body == body
    assert len(origin.requests) == 2
    assert all("+STORED" not in line for line in p.access_lines(2))
    # Not stored, so nothing tees the body: it took the splice path.
    assert fault_hits(p)[SHORT_OUT] > 0


def test_small_enough_for_the_cache_is_stored_and_not_spliced(proxy, origin):
    body = os.urandom(256 << 10)
    origin.handler = lambda r: big_answer(body, "Cache-Control: max-age=600\r\n")
    p = proxy(**{"max-object-size": "1M", "fault": [SHORT_OUT]})
    r = p.request(get(origin.url("/fits")))
    assert r.body == body and "stored" in r.header("Cache-Status")
    p.access_lines(1)
    r2 = p.request(get(origin.url("/fits")))
    assert r2.body == body and "hit" in r2.header("Cache-Status")
    assert len(origin.requests) == 1
    # The stored body was teed to the store: no splice on the way in.
    assert fault_hits(p)[SHORT_OUT] == 0
