"""
Many plain HTTP/1.1 client connections at once, from one thread: what the
idle-2k and burst-500 scenarios need and what wrk and ab cannot do (hold
connections open and idle, then use each one again; or fire N clients at the
same instant and say which were not answered 200).

    b = Batch(("127.0.0.1", port), 2000, wave=100)   connect, 100 at a time
    statuses = b.exchange(request_bytes)   one request on every open
                                           connection; a status (int) or None
                                           (refused, reset, closed, timed out)
                                           per connection, in order
    b.open()                               connections still open
    b.close()

One selector drives every socket, non-blocking, under one deadline, so a
proxy that never answers costs the deadline, never a hang.  Responses are
read by Content-Length, or to the close when the head names none.
"""
import errno
import selectors
import socket
import time

DEADLINE = 30.0  # seconds any one connect or exchange phase may take


class _Conn:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.status = None
        self.need = None  # bytes still to read (None: to the close)
        self.close = False  # the response said Connection: close
        self.done = False


def _head_info(head):
    """(status, content length or None, close?) of a response head."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    length, close = None, False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == "content-length" and value.isdigit():
            length = int(value)
        elif name == "connection" and "close" in value:
            close = True
    return status, length, close


class Batch:
    def __init__(self, addr, count, wave=100):
        self.conns = []
        self.refused = 0
        for start in range(0, count, wave):
            self._connect_wave(addr, min(wave, count - start))

    def _connect_wave(self, addr, n):
        sel = selectors.DefaultSelector()
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            rc = s.connect_ex(addr)
            if rc not in (0, errno.EINPROGRESS):
                s.close()
                self.refused += 1
                continue
            sel.register(s, selectors.EVENT_WRITE)
        deadline = time.monotonic() + DEADLINE
        while sel.get_map() and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=1.0):
                s = key.fileobj
                sel.unregister(s)
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                    self.conns.append(_Conn(s))
                else:
                    s.close()
                    self.refused += 1
        for key in list(sel.get_map().values()):
            key.fileobj.close()
            self.refused += 1
        sel.close()

    def open(self):
        return [c for c in self.conns if c.sock is not None]

    def exchange(self, request):
        """Sends request on every open connection and reads one response on
        each; returns the statuses (None for no complete response)."""
        live = self.open()
        sel = selectors.DefaultSelector()
        for c in live:
            c.buf, c.status, c.need, c.done = b"", None, None, False
            try:
                c.sock.sendall(request)  # small: fits the socket buffer
            except OSError:
                self._drop(c)
                continue
            sel.register(c.sock, selectors.EVENT_READ, c)
        deadline = time.monotonic() + DEADLINE
        while sel.get_map() and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=1.0):
                self._read(key.data, sel)
        for key in list(sel.get_map().values()):
            self._drop(key.data)
        sel.close()
        return [c.status if c.done else None for c in live]

    def _read(self, c, sel):
        try:
            data = c.sock.recv(65536)
        except OSError:  # a reset: the same as a close here
            data = b""
        if not data:
            # The close ends a response read to the close; else it is cut.
            c.done = c.status is not None and c.need is None
            sel.unregister(c.sock)
            self._drop(c)
            return
        c.buf += data
        if c.status is None and b"\r\n\r\n" in c.buf:
            head, _, c.buf = c.buf.partition(b"\r\n\r\n")
            c.status, c.need, c.close = _head_info(head)
        if c.status is not None and c.need is not None and len(c.buf) >= c.need:
            c.done = True
            sel.unregister(c.sock)
            if c.close:  # answered, but the connection is not kept
                self._drop(c)

    def _drop(self, c):
        if c.sock is not None:
            c.sock.close()
            c.sock = None

    def close(self):
        for c in self.conns:
            self._drop(c)
