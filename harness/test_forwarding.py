"""Plain-HTTP forwarding end to end (requirement A/C of the seed)."""
import os
import shutil
import socket
import subprocess

import pytest

from client import connect, exchange, get, read_all, read_response


def test_get_is_relayed_byte_for_byte(proxy, origin):
    body = bytes(range(256)) * 64
    origin.reply(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                 b"X-Origin: yes\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    p = proxy()
    r = p.request(get(origin.url("/page?x=1")))
    assert r.status == 200
    assert r.body == body
    assert r.header("X-Origin") == "yes"
    assert r.header("Via") == "1.1 glassproxy"
    req = origin.wait_requests(1)[0]
    assert req.line == "GET /page?x=1 HTTP/1.1"
    assert req.header("Host") == origin.authority
    assert req.header("User-Agent") == "harness"
    assert req.header("Via") == "1.1 glassproxy"


def test_hop_by_hop_headers_are_not_forwarded(proxy, origin):
    p = proxy()
    raw = ("GET %s HTTP/1.1\r\nHost: wrong.example\r\nProxy-Connection: keep-alive\r\n"
           "Connection: X-Secret\r\nX-Secret: 1\r\nKeep-Alive: 5\r\nTE: trailers\r\n"
           "Proxy-Authorization: Basic eDp5\r\nX-Kept: 2\r\n\r\n" % origin.url("/")).encode()
    assert p.request(raw).status == 200
    req = origin.wait_requests(1)[0]
    names = {n.lower() for n, _ in req.headers}
    for gone in ("proxy-connection", "x-secret", "keep-alive", "te", "proxy-authorization"):
        assert gone not in names
    assert req.header("X-Kept") == "2"
    # Host comes from the request target, never from the client's Host field.
    assert req.all("Host") == [origin.authority]


def test_head_has_no_body(proxy, origin):
    origin.handler = lambda req: (b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
                                  if req.method == "HEAD" else
                                  b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    p = proxy()
    with connect(p.address) as s:
        s.sendall(("HEAD %s HTTP/1.1\r\nHost: x\r\n\r\n" % origin.url("/")).encode())
        r, rest = read_response(s, method="HEAD")
        assert r.status == 200
        assert r.header("Content-Length") == "1000"
        # The proxy must not wait for, or invent, 1000 body bytes.
        s.sendall(get(origin.url("/after")))
        r2, _ = read_response(s, rest)
        assert r2.status == 200 and r2.body == b"ok"
    assert origin.wait_requests(2)[0].method == "HEAD"


def test_curl_through_the_proxy(proxy, origin):
    curl = shutil.which("curl")
    if not curl:
        pytest.skip("curl is not installed")
    origin.reply(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nhello, curl\n")
    p = proxy()
    out = subprocess.run([curl, "-sS", "--max-time", "10", "-x",
                          "http://127.0.0.1:%d" % p.port, origin.url("/page")],
                         capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout == b"hello, curl\n"


def test_client_disconnecting_mid_request_does_not_hurt(proxy, origin):
    p = proxy()
    for partial in (b"GET http://127.0.0.1", b"GET " + origin.url("/").encode() + b" HTTP/1.1\r\nHo"):
        s = connect(p.address)
        s.sendall(partial)
        s.close()
    s = connect(p.address)
    s.sendall(get(origin.url("/")))
    s.shutdown(socket.SHUT_WR)  # a client that closes its side right away
    s.close()
    r = p.request(get(origin.url("/still-alive")))
    assert r.status == 200
    # Logged by the worker that takes the half-sent head, on its own time.
    p.wait_event("closed the connection in the middle of a request head")


@pytest.mark.parametrize("raw,status", [
    (b"garbage\r\n\r\n", 400),
    (b"GET http://127.0.0.1:1/ HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n", 400),
    (b"GET /relative HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"GET http://127.0.0.1:1/ HTTP/2.0\r\nHost: a\r\n\r\n", 505),
])
def test_bad_requests_get_an_error_and_a_log_line(proxy, raw, status):
    p = proxy()
    with connect(p.address) as s:
        s.sendall(raw)
        r, _ = read_response(s)
        assert r.status == status
        assert r.header("Connection") == "close"
        assert b"glassproxy" in r.body
        assert read_all(s) == b""  # and the connection is closed
    line = p.access_lines(1)[0]
    assert " %d " % status in line


def test_unreachable_origin_gets_502(proxy):
    # A bound socket that never listens: connecting to it is refused, and
    # nobody else can take the port while we hold it.
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    try:
        p = proxy()
        r = p.request(get("http://127.0.0.1:%d/" % port))
        assert r.status == 502
        assert b"refused" in r.body
        assert "refused the connection" in p.events()
    finally:
        holder.close()


def test_hosts_file_names_an_origin_offline(proxy, origin, tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_text("# lab hosts\n127.0.0.1   origin.lab  www.origin.lab\nnot-an-ip  x\n")
    p = proxy(**{"hosts-file": str(hosts)})
    r = p.request(get("http://www.origin.lab:%d/hello" % origin.port))
    assert r.status == 200
    req = origin.wait_requests(1)[0]
    assert req.header("Host") == "www.origin.lab:%d" % origin.port


def test_ipv6_listen_and_origin(proxy, origin_factory):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        o = origin_factory(host="::1")
    except OSError:
        pytest.skip("no IPv6 loopback here")
    p = proxy(listen="[::1]:0")
    assert p.host == "::1"
    r = p.request(get(o.url("/six")))
    assert r.status == 200
    assert o.wait_requests(1)[0].header("Host") == "[::1]:%d" % o.port


def test_access_log_records_each_request(proxy, origin):
    p = proxy()
    p.request(get(origin.url("/logged")))
    line = p.access_lines(1)[0]
    fields = line.split()
    # time client method url status bytes_sent bytes_received duration detail
    assert fields[1].startswith("127.0.0.1:")
    assert fields[2] == "GET"
    assert fields[3] == origin.url("/logged")
    assert fields[4] == "200"
    assert int(fields[5]) > 0 and int(fields[6]) > 0
    assert fields[7].endswith("ms")
