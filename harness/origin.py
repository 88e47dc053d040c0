"""
A scriptable fake origin server for the harness.

    o = Origin()                          # 127.0.0.1, ephemeral port
    o.reply(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nhi")
    o.handler = lambda req: ...           # or compute each answer
    o.url("/path") -> "http://127.0.0.1:PORT/path"
    o.requests      what it received: Request(head, body, raw) per request
    o.connections   how many connections it accepted
    o.answer_before_body = True   answer as soon as a head is in, without
                    reading the body (an early 413), then stop sending and
                    read until the peer closes

A handler gets a Request and returns bytes to send, or one of the actions
CLOSE (close without answering) or a list mixing bytes and actions
(("sleep", seconds) stays silent; "close" ends the connection).  After
an answer the connection stays open for the next request unless the answer
or the request said Connection: close, as a real HTTP/1.1 server does.
"""
import re
import socket
import threading

CLOSE = "close"


class Request:
    def __init__(self, head, body):
        self.head = head
        self.body = body
        self.raw = head + body
        lines = head.decode("latin-1").split("\r\n")
        self.line = lines[0]
        self.method, self.target, self.version = (self.line.split(" ", 2) + ["", ""])[:3]
        self.headers = []
        for l in lines[1:]:
            if l:
                name, _, value = l.partition(":")
                self.headers.append((name.strip(), value.strip()))

    def header(self, name):
        values = [v for n, v in self.headers if n.lower() == name.lower()]
        return values[0] if values else None

    def all(self, name):
        return [v for n, v in self.headers if n.lower() == name.lower()]


def read_until(sock, buf, marker):
    while marker not in buf:
        data = sock.recv(65536)
        if not data:
            return buf, False
        buf += data
    return buf, True


def read_body(sock, buf, head):
    """Reads the request body that the head announces; returns (body, rest)."""
    text = head.decode("latin-1").lower()
    m = re.search(r"\r\ncontent-length:\s*(\d+)", text)
    if "\r\ntransfer-encoding:" in text and "chunked" in text:
        body = b""
        while True:
            buf, ok = read_until(sock, buf, b"\r\n")
            if not ok:
                return body + buf, b""
            line, _, buf = buf.partition(b"\r\n")
            size = int(line.split(b";")[0], 16)
            body += line + b"\r\n"
            if size == 0:
                # The trailer section: an empty line at once, or fields and
                # then one.  Wait for a line first: a body fed byte by byte
                # may not have sent the final CRLF yet.
                buf, _ = read_until(sock, buf, b"\r\n")
                if not buf.startswith(b"\r\n"):
                    buf, _ = read_until(sock, buf, b"\r\n\r\n")
                end = 2 if buf.startswith(b"\r\n") else buf.index(b"\r\n\r\n") + 4
                return body + buf[:end], buf[end:]
            while len(buf) < size + 2:
                data = sock.recv(65536)
                if not data:
                    return body + buf, b""
                buf += data
            body += buf[:size + 2]
            buf = buf[size + 2:]
    if m:
        n = int(m.group(1))
        while len(buf) < n:
            data = sock.recv(65536)
            if not data:
                break
            buf += data
        return buf[:n], buf[n:]
    return b"", buf


class Origin:
    def __init__(self, host="127.0.0.1", response=None):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(128)
        self.host = host
        self.port = self.sock.getsockname()[1]
        self.requests = []
        self.connections = 0
        self.lock = threading.Lock()
        self.got_request = threading.Condition(self.lock)
        self.handler = None
        self.answer_before_body = False
        self._response = response or (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                                      b"Content-Type: text/plain\r\n\r\nok")
        self._open = []
        self._closed = False
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()

    def reply(self, response):
        self._response = response
        self.handler = None

    def url(self, path="/"):
        host = "[%s]" % self.host if ":" in self.host else self.host
        return "http://%s:%d%s" % (host, self.port, path)

    @property
    def authority(self):
        return "%s:%d" % (self.host, self.port)

    def wait_requests(self, n, timeout=10):
        with self.lock:
            ok = self.got_request.wait_for(lambda: len(self.requests) >= n, timeout)
        assert ok, "origin got %d requests, expected %d" % (len(self.requests), n)
        return self.requests

    def _accept_loop(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                self._open.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        buf = b""
        try:
            while True:
                buf, ok = read_until(conn, buf, b"\r\n\r\n")
                if not ok:
                    return
                i = buf.index(b"\r\n\r\n") + 4
                head, buf = buf[:i], buf[i:]
                if self.answer_before_body:
                    self._answer_early(conn, head, buf)
                    return
                body, buf = read_body(conn, buf, head)
                req = Request(head, body)
                with self.lock:
                    self.requests.append(req)
                    self.got_request.notify_all()
                answer = self.handler(req) if self.handler else self._response
                steps = answer if isinstance(answer, list) else [answer]
                for step in steps:
                    if step == CLOSE:
                        return
                    if isinstance(step, tuple) and step[0] == "sleep":
                        threading.Event().wait(step[1])
                        continue
                    conn.sendall(step)
                wants_close = (b"connection: close" in head.lower() or
                               any(isinstance(s, bytes) and b"\r\nconnection: close" in s.lower().split(b"\r\n\r\n")[0]
                                   for s in steps))
                if wants_close:
                    return
        except OSError:
            return
        finally:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def _answer_early(self, conn, head, got):
        req = Request(head, got)
        with self.lock:
            self.requests.append(req)
            self.got_request.notify_all()
        conn.sendall(self.handler(req) if self.handler else self._response)
        # A lingering close: the unread body must not turn into a reset
        # that could destroy the answer on its way.
        conn.shutdown(socket.SHUT_WR)
        while conn.recv(65536):
            pass

    def close(self):
        self._closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        with self.lock:
            for c in self._open:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
