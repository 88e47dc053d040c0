"""
Misbehaving peers: fake origins and clients that break HTTP on purpose.

Each behaviour is small and named; harness/README.md lists them with the bug
each one catches, and a case file (fixtures/cases/*.case) picks one by name:

    o = PeerOrigin("truncate", replies=[b"HTTP/1.1 200 OK\\r\\n..."], at="40")
    o.authority            "127.0.0.1:PORT"
    o.received             the bytes each accepted connection sent, in order
    o.requests             the whole requests read, in order (raw bytes each)
    o.close()              stop, release every socket, join every thread

    c = ClientConn(proxy_address)
    CLIENTS["slowloris"](c, data, every="20ms")   one byte per interval
    read_response(c.stream, "GET")               a Response, complete or cut

Parameters are strings, as a case file gives them.

Rules every peer keeps: 127.0.0.1 and port 0 only; every socket has a
timeout, so no peer can hang a test; every thread is joined in close(); a
delay is only ever the misbehaviour itself (a slow head is slow), never what
a test waits on to know something has happened.  Timing the tests need is
always an event: the bytes a peer waits for, or the end of a connection.
"""
import re
import select
import socket
import struct
import threading

TIMEOUT = 10  # seconds: the longest any peer socket call may block
DEFAULT_REPLY = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


def _linger_zero(sock):
    """Make close() send a reset (RST) instead of an orderly FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def parse_duration(text):
    """'200ms', '1.5s', '2' (seconds) -> seconds as a float."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s)?", str(text).strip())
    if not m:
        raise ValueError("not a duration: %r" % text)
    value = float(m.group(1))
    return value / 1000 if m.group(2) == "ms" else value


# ---- reading HTTP messages off a socket, tolerantly ----

class Stream:
    """A socket with a receive buffer and a record of every byte read."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.log = b""
        self.eof = False
        self.timed_out = False

    def fill(self):
        """Read once more; False at EOF, on a reset or a timeout (which sets
        timed_out: a peer that stayed silent did not close)."""
        if self.eof:
            return False
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            self.timed_out = True
            data = b""
        except OSError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        self.log += data
        return True

    def until(self, marker):
        while marker not in self.buf:
            if not self.fill():
                return False
        return True

    def take(self, n):
        while len(self.buf) < n:
            if not self.fill():
                break
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def take_head(self):
        """One message head (up to the blank line), or None if it never ends."""
        if not self.until(b"\r\n\r\n"):
            return None
        i = self.buf.index(b"\r\n\r\n") + 4
        head, self.buf = self.buf[:i], self.buf[i:]
        return head

    def take_chunked(self):
        """A chunked body, raw; stops early (returns what came) on bad framing."""
        raw = b""
        while True:
            if not self.until(b"\r\n"):
                return raw + self.take(len(self.buf))
            line, _, self.buf = self.buf.partition(b"\r\n")
            raw += line + b"\r\n"
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                return raw
            if size == 0:
                while not (self.buf.startswith(b"\r\n") or b"\r\n\r\n" in self.buf):
                    if not self.fill():
                        return raw + self.take(len(self.buf))
                end = 2 if self.buf.startswith(b"\r\n") else self.buf.index(b"\r\n\r\n") + 4
                return raw + self.take(end)
            raw += self.take(size + 2)


def header_value(head, name):
    m = re.search(rb"\r\n" + name + rb"[ \t]*:[ \t]*([^\r\n]*)", head, re.I)
    return m.group(1).strip() if m else None


def read_request(stream):
    """One whole request (head and body, as raw bytes), or None when the
    connection ends first (what did arrive stays in stream.log)."""
    head = stream.take_head()
    if head is None:
        return None
    te = header_value(head, b"transfer-encoding")
    cl = header_value(head, b"content-length")
    if te is not None and b"chunked" in te.lower():
        body = stream.take_chunked()
        return head + body if body.endswith(b"\r\n\r\n") else None
    if cl is not None and cl.isdigit():
        body = stream.take(int(cl))
        return head + body if len(body) == int(cl) else None
    return head


def dechunk(raw):
    """The payload of a chunked body (trailers dropped); tolerant of a cut."""
    out, rest = b"", raw
    while True:
        line, sep, rest = rest.partition(b"\r\n")
        if not sep:
            return out
        try:
            size = int(line.split(b";")[0].strip(), 16)
        except ValueError:
            return out
        if size == 0:
            return out
        out += rest[:size]
        rest = rest[size + 2:]


class Response:
    """One response as the client saw it; complete is False if it was cut."""

    def __init__(self, head):
        self.head = head
        self.status = int(head.split(b" ", 2)[1]) if re.match(rb"HTTP/\d\.\d \d{3}", head) else 0
        self.body = b""        # as framed on the wire
        self.payload = b""     # decoded (chunked framing removed)
        self.complete = True


def read_response(stream, method="GET"):
    """One response or None if no head came; a cut body gives complete=False."""
    head = stream.take_head()
    if head is None:
        return None
    r = Response(head)
    bodyless = (method == "HEAD" or r.status in (204, 304) or 100 <= r.status < 200
                or (method == "CONNECT" and 200 <= r.status < 300))
    if bodyless:
        return r
    te = header_value(head, b"transfer-encoding")
    cl = header_value(head, b"content-length")
    if te is not None and b"chunked" in te.lower():
        r.body = stream.take_chunked()
        r.payload = dechunk(r.body)
        r.complete = r.body.endswith(b"\r\n\r\n") or r.body.endswith(b"0\r\n\r\n")
    elif cl is not None and cl.isdigit():
        r.body = r.payload = stream.take(int(cl))
        r.complete = len(r.body) == int(cl)
    else:
        while stream.fill():
            pass
        r.body = r.payload = stream.take(len(stream.buf))
    return r


# ---- fake origins ----

class OriginConn:
    """What an origin behaviour works with: one accepted connection."""

    def __init__(self, origin, sock, index):
        self.origin = origin
        self.sock = sock
        self.index = index  # 0 for the first accepted connection
        self.stream = Stream(sock)
        self.aborted = False

    def read_request(self):
        raw = read_request(self.stream)
        if raw is not None:
            with self.origin.lock:
                self.origin.requests.append(raw)
                n = len(self.origin.requests)
            return raw, n - 1
        return None, None

    def reply_for(self, n, default=None):
        """The case's reply for request n (the last repeats), or default:
        the behaviour's own, or a plain 200 "ok"."""
        replies = self.origin.replies
        if replies:
            return replies[min(n, len(replies) - 1)]
        return DEFAULT_REPLY if default is None else default

    def send(self, data):
        self.sock.sendall(data)

    def pause(self, seconds):
        """A deliberate delay: the misbehaviour itself, cut short by close()."""
        self.origin.stopping.wait(seconds)

    def drain(self):
        """Read (and record) until the proxy closes or the origin stops."""
        while self.stream.fill():
            pass

    def reset(self):
        """End the connection now with a reset (RST), not a FIN."""
        _linger_zero(self.sock)
        self.aborted = True


def _wants_close(request, reply):
    head = reply.split(b"\r\n\r\n", 1)[0]
    return (re.search(rb"\r\nconnection:[^\r\n]*close", request.split(b"\r\n\r\n", 1)[0], re.I)
            or re.search(rb"\r\nconnection:[^\r\n]*close", head, re.I))


def _serve_each(c, answer):
    """Read requests in turn; answer(c, request, n) sends each response and
    returns False to end the connection."""
    while True:
        req, n = c.read_request()
        if req is None:
            return
        if answer(c, req, n) is False:
            return
        if _wants_close(req, c.reply_for(n)):
            return


def origin_script(c):
    """Answers each request with the next reply, keeps alive as HTTP/1.1 does."""
    _serve_each(c, lambda c, req, n: c.send(c.reply_for(n)))


def origin_echo(c):
    """Answers each request with its method, target and decoded body (a
    well-behaved origin that shows what arrived, whatever the framing)."""
    def answer(c, req, n):
        head, _, body = req.partition(b"\r\n\r\n")
        te = header_value(head + b"\r\n", b"transfer-encoding")
        if te is not None and b"chunked" in te.lower():
            body = dechunk(body)
        line = head.split(b"\r\n", 1)[0].split(b" ")
        payload = b"%s %s\n%s" % (line[0], line[1] if len(line) > 1 else b"", body)
        c.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(payload), payload))
    _serve_each(c, answer)


def origin_continue(c):
    """Answers a request head with 100 Continue before reading its body,
    then sends the reply: an origin that honours Expect: 100-continue."""
    while True:
        head = c.stream.take_head()
        if head is None:
            return
        c.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        cl = header_value(head, b"content-length")
        body = c.stream.take(int(cl)) if cl is not None and cl.isdigit() else b""
        with c.origin.lock:
            c.origin.requests.append(head + body)
            n = len(c.origin.requests) - 1
        c.send(c.reply_for(n))


def origin_slow_head(c, every="20ms"):
    """Sends the response head one byte per interval, then the body at once."""
    gap = parse_duration(every)

    def answer(c, req, n):
        head, sep, body = c.reply_for(n).partition(b"\r\n\r\n")
        for b in head + sep:
            c.send(bytes([b]))
            c.pause(gap)
        c.send(body)
    _serve_each(c, answer)


def origin_drip(c, every="5ms"):
    """Sends the head at once, then the body one byte per interval."""
    gap = parse_duration(every)

    def answer(c, req, n):
        head, sep, body = c.reply_for(n).partition(b"\r\n\r\n")
        c.send(head + sep)
        for b in body:
            c.pause(gap)
            c.send(bytes([b]))
    _serve_each(c, answer)


def origin_truncate(c, at="0"):
    """Sends the first AT bytes of the reply, then closes (FIN)."""
    req, n = c.read_request()
    if req is not None:
        c.send(c.reply_for(n)[:int(at)])


def origin_reset(c, at="0"):
    """Sends the first AT bytes of the reply, then resets (SO_LINGER 0)."""
    req, n = c.read_request()
    if req is not None:
        c.send(c.reply_for(n)[:int(at)])
        c.reset()


def origin_never_answers(c):
    """Reads the request and stays silent until the proxy gives up."""
    c.read_request()
    c.drain()


def origin_early_answer(c):
    """Answers as soon as the connection opens, before any request byte,
    then reads what the proxy sends (so closing does not reset the answer)."""
    c.send(c.reply_for(0))
    while c.read_request()[0] is not None:
        pass


def origin_garbage(c):
    """Answers with a line that is not an HTTP status line."""
    _serve_each(c, lambda c, req, n: c.send(c.reply_for(n, b"HTTX/1.1 2OO OK\r\n\r\n")))


def origin_bad_chunking(c):
    """Answers chunked with a chunk size that is not hex, then closes."""
    req, n = c.read_request()
    if req is not None:
        c.send(c.reply_for(n, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                           b"5\r\nhello\r\nZZ\r\nworld\r\n0\r\n\r\n"))


def origin_huge_headers(c, size="70000", count="1"):
    """Adds COUNT header fields of SIZE bytes each to the reply's head."""
    fields = b"".join(b"X-Big-%d: %s\r\n" % (i, b"v" * int(size)) for i in range(int(count)))

    def answer(c, req, n):
        reply = c.reply_for(n)
        status, sep, rest = reply.partition(b"\r\n")
        c.send(status + sep + fields + rest)
    _serve_each(c, answer)


def origin_interim_storm(c, count="20", status="102"):
    """Sends COUNT interim (1xx) responses before the reply."""
    storm = b"HTTP/1.1 %s Interim\r\n\r\n" % status.encode() * int(count)
    _serve_each(c, lambda c, req, n: c.send(storm + c.reply_for(n)))


def origin_close_on_next(c):
    """Answers the first request on a connection, keeping it alive; when the
    next request's first bytes arrive, closes without answering: the worst
    moment for a pooled connection (the proxy has just reused it)."""
    req, n = c.read_request()
    if req is None:
        return
    c.send(c.reply_for(n))
    if c.stream.fill():
        with c.origin.lock:
            c.origin.cut_requests.append(c.stream.buf)
    c.reset()  # unread bytes: the kernel resets, as a crashed server would


def origin_stray_bytes(c, stray="HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstray"):
    """Sends STRAY right after each response, in the same write: bytes that
    arrive when the connection should be idle (a desync if it is reused)."""
    extra = stray.encode("latin-1")
    _serve_each(c, lambda c, req, n: c.send(c.reply_for(n) + extra))


ORIGINS = {
    "script": origin_script,
    "echo": origin_echo,
    "continue": origin_continue,
    "slow-head": origin_slow_head,
    "drip": origin_drip,
    "truncate": origin_truncate,
    "reset": origin_reset,
    "never-answers": origin_never_answers,
    "early-answer": origin_early_answer,
    "garbage": origin_garbage,
    "bad-chunking": origin_bad_chunking,
    "huge-headers": origin_huge_headers,
    "interim-storm": origin_interim_storm,
    "close-on-next": origin_close_on_next,
    "stray-bytes": origin_stray_bytes,
}


class PeerOrigin:
    """An origin on 127.0.0.1:0 running one named behaviour per connection."""

    def __init__(self, behaviour="script", replies=(), **params):
        if behaviour not in ORIGINS:
            raise ValueError("no origin behaviour %r (have: %s)" % (behaviour, ", ".join(ORIGINS)))
        self.behaviour = ORIGINS[behaviour]
        self.params = params
        self.replies = list(replies)
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.requests = []
        self.cut_requests = []
        self.conns = []
        self.threads = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(TIMEOUT)
        self.port = self.sock.getsockname()[1]
        self.authority = "127.0.0.1:%d" % self.port
        self.acceptor = threading.Thread(target=self._accept_loop, daemon=True)
        self.acceptor.start()

    @property
    def connections(self):
        return len(self.conns)

    @property
    def received(self):
        """Bytes each connection sent, in accept order (a list of bytes)."""
        return [c.stream.log for c in self.conns]

    def _accept_loop(self):
        while not self.stopping.is_set():
            try:
                sock, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            sock.settimeout(TIMEOUT)
            with self.lock:
                if self.stopping.is_set():
                    sock.close()
                    return
                c = OriginConn(self, sock, len(self.conns))
                self.conns.append(c)
                t = threading.Thread(target=self._serve, args=(c,), daemon=True)
                self.threads.append(t)
            t.start()

    def _serve(self, c):
        try:
            self.behaviour(c, **self.params)
            if not c.aborted:
                # Read what is left before closing: closing with unread
                # input resets the connection, destroying the answer in flight.
                c.sock.shutdown(socket.SHUT_WR)
                c.drain()
        except OSError:
            pass
        finally:
            c.sock.close()

    def close(self):
        """Stop accepting, end every connection, join every thread."""
        self.stopping.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.acceptor.join(TIMEOUT)
        with self.lock:
            conns, threads = list(self.conns), list(self.threads)
        for c in conns:
            try:
                c.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in threads:
            t.join(TIMEOUT)
        stuck = [t for t in threads + [self.acceptor] if t.is_alive()]
        assert not stuck, "origin threads did not finish: %r" % stuck


class DeadOrigin:
    """A port that refuses connections: bound, never listening, held until
    close() so nothing else can take it."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.authority = "127.0.0.1:%d" % self.port
        self.requests, self.cut_requests, self.received = [], [], []
        self.connections = 0

    def close(self):
        self.sock.close()


# ---- misbehaving clients ----

class ClientConn:
    """A client connection to the proxy: the socket and what came back."""

    def __init__(self, address):
        self.sock = socket.create_connection(address, timeout=TIMEOUT)
        self.stream = Stream(self.sock)
        self.closed = False

    def close(self):
        if not self.closed:
            self.closed = True
            self.sock.close()


def client_send(cl, data):
    """Sends the bytes in one write: a well-behaved client."""
    cl.sock.sendall(data)


def client_slowloris(cl, data, every="20ms"):
    """Sends one byte per interval (TCP_NODELAY, so each is a segment),
    and stops once the proxy says anything (a 408, say)."""
    gap = parse_duration(every)
    cl.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for b in data:
        cl.sock.sendall(bytes([b]))
        # Waiting on the socket: gives up as soon as the proxy answers.
        if select.select([cl.sock], [], [], gap)[0]:
            return


def client_pipeline_flood(cl, data, count="50"):
    """Sends DATA COUNT times back to back in one write, reading nothing."""
    cl.sock.sendall(data * int(count))


def client_half_close(cl, data=b""):
    """Sends DATA, then shuts down its sending side (FIN) at once."""
    if data:
        cl.sock.sendall(data)
    cl.sock.shutdown(socket.SHUT_WR)


def _hang_up(cl, reset):
    if reset == "yes":
        _linger_zero(cl.sock)
    cl.close()


def client_disconnect_mid_request(cl, data, at=None, reset="no"):
    """Sends the first AT bytes of DATA (all without AT; a negative AT
    leaves that many off the end), then hangs up; reset=yes makes it a
    reset (SO_LINGER 0) rather than a FIN."""
    cl.sock.sendall(data if at is None else data[:int(at)])
    _hang_up(cl, reset)


def client_disconnect_mid_response(cl, data=b"", after="1", reset="no"):
    """Sends DATA, reads until AFTER bytes of answer came, then hangs up."""
    if data:
        cl.sock.sendall(data)
    while len(cl.stream.log) < int(after) and cl.stream.fill():
        pass
    _hang_up(cl, reset)


CLIENTS = {
    "send": client_send,
    "slowloris": client_slowloris,
    "pipeline-flood": client_pipeline_flood,
    "half-close": client_half_close,
    "disconnect-mid-request": client_disconnect_mid_request,
    "disconnect-mid-response": client_disconnect_mid_response,
}
