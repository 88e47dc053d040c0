"""Raw-socket client helpers: send exact bytes, read exact answers."""
import re
import socket

TIMEOUT = 10


def connect(address, timeout=TIMEOUT):
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(address)
    return s


class Response:
    def __init__(self, head, body):
        self.head = head
        self.body = body
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        self.version = parts[0]
        self.status = int(parts[1])
        self.reason = parts[2] if len(parts) > 2 else ""
        self.headers = []
        for l in lines[1:]:
            if l:
                n, _, v = l.partition(":")
                self.headers.append((n.strip(), v.strip()))

    def header(self, name):
        values = [v for n, v in self.headers if n.lower() == name.lower()]
        return values[0] if values else None

    def all(self, name):
        return [v for n, v in self.headers if n.lower() == name.lower()]


def read_response(sock, buf=b"", method="GET"):
    """Read one response; returns (Response, leftover bytes).  The body is
    delimited by Content-Length, chunked framing or the connection's end."""
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("connection closed before a response head: %r" % buf)
        buf += data
    i = buf.index(b"\r\n\r\n") + 4
    head, buf = buf[:i], buf[i:]
    r = Response(head, b"")
    if (method == "HEAD" or r.status in (204, 304) or 100 <= r.status < 200
            or (method == "CONNECT" and 200 <= r.status < 300)):
        return r, buf
    te = (r.header("Transfer-Encoding") or "").lower()
    cl = r.header("Content-Length")
    if "chunked" in te:
        raw = b""
        while True:
            while b"\r\n" not in buf:
                buf += _recv(sock)
            line, _, buf = buf.partition(b"\r\n")
            size = int(line.split(b";")[0], 16)
            if size == 0:
                while not (buf.startswith(b"\r\n") or b"\r\n\r\n" in buf):
                    buf += _recv(sock)
                end = 2 if buf.startswith(b"\r\n") else buf.index(b"\r\n\r\n") + 4
                r.body, r.chunked = raw, True
                return r, buf[end:]
            while len(buf) < size + 2:
                buf += _recv(sock)
            raw += buf[:size]
            buf = buf[size + 2:]
    if cl is not None:
        n = int(cl)
        while len(buf) < n:
            buf += _recv(sock)
        r.body = buf[:n]
        return r, buf[n:]
    while True:
        data = sock.recv(65536)
        if not data:
            break
        buf += data
    r.body = buf
    return r, b""


def _recv(sock):
    data = sock.recv(65536)
    if not data:
        raise ConnectionError("connection closed in the middle of a body")
    return data


def exchange(address, raw, method=None, timeout=TIMEOUT):
    """Send raw bytes on a new connection and read one response."""
    if method is None:
        method = raw.split(b" ", 1)[0].decode()
    with connect(address, timeout) as s:
        s.sendall(raw)
        r, _ = read_response(s, method=method)
        return r


def read_all(sock):
    buf = b""
    while True:
        data = sock.recv(65536)
        if not data:
            return buf
        buf += data


def get(origin_url, host=None):
    """A minimal absolute-form GET request for origin_url."""
    m = re.match(r"http://([^/]+)", origin_url)
    return ("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: harness\r\n\r\n"
            % (origin_url, host or m.group(1))).encode()
