"""
The cache under faults and crashes (issue #11 item 5, issue #10's kill -9
test): whatever the disk does and wherever the process dies, the client is
served the origin's bytes and the store never serves a torn or wrong entry.

  - Store faults (ENOSPC, EIO, EMFILE, short writes, failing rename, fsync,
    close, unlink, or any fs call) on the cache directory only, seeded: 200 cacheable
    responses of varied sizes and framings, each fetched once through the
    proxy, come back byte-identical; then a proxy WITHOUT faults on the
    same directory serves, with only-if-cached, exactly the entries the
    first one logged as stored (MISS+STORED), each byte-identical, and
    504 for the others; the temporaries a failing unlink left behind are
    removed at its start.
  - Read faults on the hit path (EMFILE, EIO, short reads) cost no good
    entry.
  - kill -9 at a seeded point (a count of body bytes the origin has sent)
    while 20 clients fill the cache from an origin that drip-feeds its
    bodies, four rounds on one directory: after each restart every entry
    served is byte-identical to what the origin sends for its URL, every
    entry the killed proxy logged as stored is there, every entry an
    earlier round left is still there (a replacement or header update in
    flight never loses it), and the leftovers are removed.
  - Collapsed forwarding whose fill cannot be stored releases its waiters.

The origin's answer for a URL is a pure function of the URL (body, framing,
fields), so "identical to the origin's" is checked against a recomputation,
never against what a possibly faulty path handed back.  harness/README.md
("Cache fault scenarios") gives the command line of each scenario.
"""
import functools
import hashlib
import os
import random
import re
import signal
import socket
import threading
import time

import pytest

import conftest
from client import read_response

URLS = 40 if conftest.WRAPPER else 200  # valgrind runs the proxy ~20x slower
MAX_BODY = 320 * 1024


# ---- the origin: every answer a pure function of the path ----

@functools.lru_cache(maxsize=None)
def answer(path):
    """(fields, body, chunk sizes or None) the origin sends for path."""
    rng = random.Random("glassproxy " + path)  # str seeds are stable
    bucket = rng.random()
    if bucket < 0.08:
        size = rng.choice([0, 1, 2, 4095, 4096, 4097, 65536])
    elif bucket < 0.6:
        size = rng.randrange(1, 8192)
    elif bucket < 0.9:
        size = rng.randrange(8192, 65536)
    else:
        size = rng.randrange(65536, MAX_BODY)
    body = rng.randbytes(size)
    chunks = None
    if rng.random() < 0.4:
        chunks, left = [], size
        while left:
            chunks.append(min(left, rng.randrange(1, 20000)))
            left -= chunks[-1]
    fields = [("Cache-Control", "max-age=3600"),
              ("ETag", '"%s"' % hashlib.sha256(body).hexdigest()[:20]),
              ("X-Url", path),
              ("Content-Type", "application/octet-stream")]
    return fields, body, chunks


def revalidates_to_304(path):
    """The origin answers a matching If-None-Match with 304 for even paths
    (a header update in the store) and ignores it for odd ones (a whole new
    entry replaces the old): both kinds of rewrite are in flight."""
    return int(path.rsplit("/", 1)[1]) % 2 == 0


def encode(path):
    """The response's bytes on the wire."""
    fields, body, chunks = answer(path)
    head = "HTTP/1.1 200 OK\r\n" + "".join("%s: %s\r\n" % f for f in fields)
    if chunks is None:
        return (head + "Content-Length: %d\r\n\r\n" % len(body)).encode() + body
    out, at = [(head + "Transfer-Encoding: chunked\r\n\r\n").encode()], 0
    for n in chunks:
        out.append(b"%x\r\n" % n + body[at:at + n] + b"\r\n")
        at += n
    out.append(b"0\r\n\r\n")
    return b"".join(out)


class BodyOrigin:
    """An HTTP/1.1 origin answering every GET with answer(path), keeping
    connections alive; a matching If-None-Match gets a 304 with the same
    fields where revalidates_to_304(path).  With hold (an Event) every body waits for it after the head.
    With drip=(piece, pause) it sends its bytes piece by piece with
    a pause between (the misbehaviour: writes stay in flight in the proxy);
    `sent` counts the body bytes it has handed to the kernel, and
    wait_sent() lets a test act at a byte count.  Every thread is joined in
    close()."""

    def __init__(self, drip=None, hold=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.sock.settimeout(0.5)  # lets the accept loop see close()
        self.port = self.sock.getsockname()[1]
        self.drip = drip
        self.hold = hold
        self.cond = threading.Condition()
        self.sent = 0
        self.requests = 0
        self.closed = False
        self.conns, self.threads = [], []
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def wait_sent(self, n, give_up=lambda: False, timeout=30):
        """Until n body bytes are sent, or give_up() (checked whenever the
        condition is notified); True when the bytes were sent."""
        with self.cond:
            self.cond.wait_for(lambda: self.sent >= n or give_up(), timeout * conftest.SLOW)
            return self.sent >= n

    def _accept(self):
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.settimeout(10 * conftest.SLOW)
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            with self.cond:
                self.conns.append(conn)
                self.threads.append(t)
            t.start()

    def _send(self, conn, data, head_len):
        piece, pause = self.drip or (len(data) or 1, 0)
        at = 0
        if self.hold:
            conn.sendall(data[:head_len])
            at = head_len
            assert self.hold.wait(30 * conftest.SLOW)
        while at < len(data):
            conn.sendall(data[at:at + piece])
            with self.cond:
                self.sent += max(0, min(at + piece, len(data)) - max(at, head_len))
                self.cond.notify_all()
            at += piece
            if pause and at < len(data):
                threading.Event().wait(pause)  # the drip itself

    def _serve(self, conn):
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                inm = [l.split(":", 1)[1].strip() for l in lines[1:]
                       if l.lower().startswith("if-none-match:")]
                with self.cond:
                    self.requests += 1
                fields = answer(path)[0]
                if inm and inm[0] == dict(fields)["ETag"] and revalidates_to_304(path):
                    data = ("HTTP/1.1 304 Not Modified\r\n" +
                            "".join("%s: %s\r\n" % f for f in fields) + "\r\n").encode()
                    conn.sendall(data)
                    continue
                data = encode(path)
                self._send(conn, data, data.index(b"\r\n\r\n") + 4)
        except OSError:
            return  # the proxy went away (killed): nothing to answer
        finally:
            conn.close()

    def close(self):
        self.closed = True
        self.sock.close()
        with self.cond:
            conns, threads = list(self.conns), list(self.threads)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.acceptor.join()
        for t in threads:
            t.join()


@pytest.fixture
def body_origin():
    made = []

    def make(**kw):
        made.append(BodyOrigin(**kw))
        return made[-1]

    yield make
    for o in made:
        o.close()


# ---- proxies that may be killed ----

@pytest.fixture
def proxies(tmp_path):
    """Like conftest's proxy fixture, for proxies a test may SIGKILL: those
    (p.killed) are only checked for sanitizer output; every other one must
    still be running and exit 0 at SIGTERM."""
    started = []

    def start(**args):
        p = conftest.Proxy(dict(args), tmp_path, "proxy%d" % len(started))
        started.append(p)
        return p

    yield start
    problems = []
    for p in started:
        if getattr(p, "killed", False):
            p._stderr.close()
        elif p.proc.poll() is not None and not getattr(p, "stopped_by_test", False):
            problems.append("glassproxy died (exit %s):\n%s" % (p.proc.poll(), p.stderr()))
            continue
        elif p.stop() != 0:
            problems.append("glassproxy exited %s after SIGTERM:\n%s"
                            % (p.proc.returncode, p.stderr()))
        try:
            p.check_clean()
        except AssertionError as e:
            problems.append(str(e))
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def stop(p):
    code = p.stop()
    p.stopped_by_test = True
    assert code == 0, p.stderr()


def kill(p):
    p.killed = True
    os.kill(p.proc.pid, signal.SIGKILL)
    p.proc.wait()


# ---- clients ----

class Client:
    """One keep-alive connection to the proxy, opened again when the proxy
    says Connection: close."""

    def __init__(self, proxy):
        self.proxy, self.sock, self.buf = proxy, None, b""

    def get(self, url, headers=()):
        if self.sock is None:
            self.sock = socket.create_connection(self.proxy.address, timeout=10 * conftest.SLOW)
            self.buf = b""
        host = url.split("/")[2]
        raw = "GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (
            url, host, "".join("%s: %s\r\n" % h for h in headers))
        self.sock.sendall(raw.encode())
        r, self.buf = read_response(self.sock, self.buf)
        if (r.header("Connection") or "").lower() == "close":
            self.close()
        return r

    def close(self):
        if self.sock:
            self.sock.close()
        self.sock = None


def check_identical(r, path):
    """r is the origin's answer for path: status, body, and its end-to-end
    fields in order (the proxy adds its own and re-frames, nothing else)."""
    fields, body, _ = answer(path)
    assert r.status == 200, (path, r.status, r.head)
    assert r.body == body, (path, len(r.body), len(body))
    names = {n.lower() for n, _ in fields}
    assert [(n, v) for n, v in r.headers if n.lower() in names] == fields, (path, r.head)


def is_hit(r):
    return (r.header("Cache-Status") or "").startswith("glassproxy; hit")


def served_from_cache(proxy, origin, paths):
    """GET each path with only-if-cached: the set served from the store,
    each checked byte for byte; anything else must be the 504 for a miss,
    and the origin hears of none of it."""
    before, hits, c = origin.requests, set(), Client(proxy)
    for path in paths:
        r = c.get(origin.url(path), [("Cache-Control", "only-if-cached")])
        if r.status == 504:
            assert not is_hit(r), (path, r.head)
            continue
        check_identical(r, path)
        assert is_hit(r), (path, r.head)
        hits.add(path)
    c.close()
    assert origin.requests == before
    return hits


# ---- what the access log and the directory say ----

LINE = re.compile(r"^\S+ \S+ GET (\S+) (\d+) .* (\S+)$")


def logged(proxy, origin):
    """{path: outcome} from the access log's complete lines."""
    text = proxy.access()
    if not text.endswith("\n"):
        text = text[:text.rfind("\n") + 1]  # a line a kill cut short
    prefix = origin.url("")
    out = {}
    for line in text.splitlines():
        m = LINE.match(line)
        if m and m.group(1).startswith(prefix):
            out[m.group(1)[len(prefix):]] = m.group(3)
    return out


def temporaries(cache):
    return sorted(os.listdir(os.path.join(cache, "tmp")))


def entry_files(cache):
    """Every file in the fan-out directories, checked to be entry-named."""
    names = []
    for a in os.listdir(cache):
        if a == "tmp":
            continue
        for b in os.listdir(os.path.join(cache, a)):
            for name in os.listdir(os.path.join(cache, a, b)):
                assert re.fullmatch(r"%s%s[0-9a-f]*-[0-9a-f]{16}" % (a, b), name), name
                names.append(name)
    return names


def opened(proxy):
    """(entries, leftovers removed) from the start line of the event log."""
    m = re.search(r"cache \S+: (\d+) entries, \d+ bytes \((\d+) leftovers removed\)",
                  proxy.events())
    assert m, proxy.events()
    return int(m.group(1)), int(m.group(2))


def wait_events(proxy, text, n, timeout=20):
    """Until the event log mentions text n times (polling the log, as
    conftest's wait_event does: not a sleep standing in for an event)."""
    deadline = time.monotonic() + timeout * conftest.SLOW
    while proxy.events().count(text) < n:
        assert time.monotonic() < deadline, proxy.events()
        time.sleep(0.01)


def fault_hits(proxy):
    """{rule: hits} the proxy printed at exit."""
    tail = proxy.stderr().rsplit("glassproxy: faults injected:", 1)[1]
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r"^(\S+) hits=(\d+) calls=\d+$", tail, re.M)}


# ---- faults on the store's files ----

# (faults with {C} for the cache directory, seed, everything stored?)
STORE_FAULTS = {
    "write-enospc": (["fs.write[{C}/]=ENOSPC@p0.3"], 11, False),
    "write-eio-unlink-eio": (["fs.write[{C}/]=EIO@p0.2", "fs.unlink[{C}/]=EIO@p0.6"], 12, False),
    "rename-eio": (["fs.rename[{C}/]=EIO@p0.5"], 13, False),
    "fsync-eio": (["fs.fsync[{C}/]=EIO@p0.5"], 14, False),
    "open-emfile": (["fs.open[{C}/]=EMFILE@p0.2"], 15, False),
    "close-eio": (["fs.close[{C}/]=EIO@p0.3"], 16, False),
    "short-writes": (["fs.write[{C}/]=short:1000"], 17, True),
    "short-and-enospc": (["fs.write[{C}/]=short:4000", "fs.write[{C}/]=ENOSPC@p0.05"], 18, False),
    # Any call on the cache's files (mkdir of a fan-out directory, fstat,
    # close, ...); the seed lets the start's own mkdir and listing through.
    "any-fs-eio": (["fs.*[{C}/]=EIO@p0.04"], 19, False),
}


def paths(prefix, n=URLS):
    return ["/%s/%d" % (prefix, i) for i in range(n)]


@pytest.mark.parametrize("name", list(STORE_FAULTS))
def test_store_faults_never_tear_an_entry(proxies, body_origin, tmp_path, name):
    """Under the faults every client gets the origin's response; without
    them, on the same directory, exactly what was logged stored is served,
    byte-identical, and the leftovers are gone."""
    specs, seed, all_stored = STORE_FAULTS[name]
    cache = str(tmp_path / "cache")
    origin = body_origin()
    faults = [s.format(C=cache) for s in specs]
    todo = paths(name)

    faulty = proxies(**{"cache-dir": cache, "fault": faults, "fault-seed": seed})
    c = Client(faulty)
    for path in todo:
        r = c.get(origin.url(path))
        check_identical(r, path)  # the client is always served
        assert "fwd=uri-miss" in r.header("Cache-Status"), r.head
    c.close()
    stop(faulty)  # every access line is written by then
    outcomes = logged(faulty, origin)
    assert sorted(outcomes) == sorted(todo)
    stored = {p for p, o in outcomes.items() if o == "MISS+STORED"}
    # DIRECT: the store could not even begin the write (its open or first
    # write failed), so the proxy logs the response as not cached at all.
    assert set(outcomes.values()) <= {"MISS", "MISS+STORED", "DIRECT"}
    hits = fault_hits(faulty)
    assert all(hits[f] > 0 for f in faults), hits
    if all_stored:
        assert stored == set(todo)
    else:
        assert 0 < len(stored) < URLS  # the faults both hit and missed
    left = temporaries(cache)

    clean = proxies(**{"cache-dir": cache})
    assert opened(clean) == (len(stored), len(left))
    assert temporaries(cache) == []
    assert len(entry_files(cache)) == len(stored)
    assert served_from_cache(clean, origin, todo) == stored
    if "unlink" in name:
        assert left, "no temporary was left behind: the unlink fault missed"


# (faults, seed, every lookup a hit?): a short read is no error.
READ_FAULTS = {
    "open-emfile-pread-eio": (["fs.open[{C}/]=EMFILE@p0.2", "fs.pread[{C}/]=EIO@p0.3"], 21,
                              False),
    "pread-short": (["fs.pread[{C}/]=short:100"], 22, True),
}


@pytest.mark.parametrize("name", list(READ_FAULTS))
def test_read_faults_cost_no_good_entry(proxies, body_origin, tmp_path, name):
    """Faults on the hit path's open and reads (the same proxy fills the
    cache first: a fault during the recovery at start would stop it): each
    lookup is a hit or a 504, never a wrong entry, and afterwards, without
    faults, every entry stored is still there."""
    specs, seed, all_hit = READ_FAULTS[name]
    cache = str(tmp_path / "cache")
    origin = body_origin()
    todo = paths(name, 100)
    faults = [s.format(C=cache) for s in specs]
    faulty = proxies(**{"cache-dir": cache, "fault": faults, "fault-seed": seed})
    c = Client(faulty)
    for path in todo:
        check_identical(c.get(origin.url(path)), path)
    c.close()
    assert len(faulty.access_lines(len(todo))) == len(todo)
    stored = {p for p, o in logged(faulty, origin).items() if o == "MISS+STORED"}
    got = served_from_cache(faulty, origin, todo)
    stop(faulty)
    assert all(h > 0 for h in fault_hits(faulty).values()), fault_hits(faulty)
    if all_hit:
        assert got == stored
    else:
        assert got < stored and got
    clean = proxies(**{"cache-dir": cache})
    assert served_from_cache(clean, origin, todo) == stored
    assert len(stored) > len(todo) // 2


# ---- kill -9 while 20 clients fill the cache ----

ROUNDS = 2 if conftest.WRAPPER else 4  # valgrind: within the 120 s per test
CLIENTS = 20
AGAIN = 50  # entries of the round before fetched again (no-cache) each round


def fill(proxy, origin, jobs, killed):
    """CLIENTS threads working through jobs [(path, headers)]; returns the
    problems seen.  A connection error is expected once the kill is under
    way (killed is set just before the signal); any other is a problem, and
    every response that arrived whole must be the origin's."""
    lock, todo, problems, done = threading.Lock(), list(reversed(jobs)), [], []

    def work():
        c = Client(proxy)
        while True:
            with lock:
                if not todo:
                    break
                path, headers = todo.pop()
            try:
                check_identical(c.get(origin.url(path), headers), path)
            except (OSError, ConnectionError) as e:
                if not killed.is_set():
                    problems.append("%s: %r" % (path, e))
                break
            except AssertionError as e:
                problems.append(str(e))
                break
        c.close()
        with lock:
            done.append(1)
        with origin.cond:  # a waiter on the origin's bytes may give up now
            origin.cond.notify_all()

    threads = [threading.Thread(target=work) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    return threads, problems, lambda: len(done) == CLIENTS


def test_kill_9_during_concurrent_cached_writes(proxies, body_origin, tmp_path, capsys):
    """Four rounds (two under valgrind) on one cache directory: 200 new URLs and 50 of the last
    round's again (Cache-Control: no-cache: a 304 header update or a 200
    replacement), 20 clients, an origin that drip-feeds 4 KiB at a time;
    SIGKILL once the origin has sent a seeded number of body bytes; then a
    proxy without faults on the directory."""
    cache = str(tmp_path / "cache")
    origin = body_origin(drip=(4096, 0.001))
    rng = random.Random(20261202)
    kept, every, report = set(), [], []
    for rnd in range(ROUNDS):
        new = paths("kill%d" % rnd)
        again = sorted(kept)[:AGAIN]
        jobs = [(p, ()) for p in new] + [(p, [("Cache-Control", "no-cache")]) for p in again]
        rng.shuffle(jobs)
        every += new
        body_bytes = sum(len(answer(p)[1]) for p in new) + \
            sum(len(answer(p)[1]) for p in again if not revalidates_to_304(p))
        kill_at = origin.sent + rng.randrange(body_bytes // 10, body_bytes * 9 // 10)

        p = proxies(**{"cache-dir": cache})
        killed = threading.Event()
        threads, problems, all_done = fill(p, origin, jobs, killed)
        reached = origin.wait_sent(kill_at, all_done)
        killed.set()
        kill(p)
        for t in threads:
            t.join()
        assert reached, "the origin sent %d of %d bytes" % (origin.sent, kill_at)
        assert not problems, problems[:5]
        stored = {u for u, o in logged(p, origin).items() if o.endswith("+STORED")}
        left = temporaries(cache)

        q = proxies(**{"cache-dir": cache})
        entries, removed = opened(q)
        assert removed == len(left) and temporaries(cache) == []
        served = served_from_cache(q, origin, every)
        stop(q)
        assert entries == len(served) == len(entry_files(cache))
        assert stored <= served, "logged stored, lost: %s" % sorted(stored - served)[:5]
        assert kept <= served, "an earlier entry lost: %s" % sorted(kept - served)[:5]
        report.append((len(served & set(new)), len(stored), len(left), len(served)))
        kept = served
    with capsys.disabled():
        for rnd, (survived, logged_stored, left, total) in enumerate(report):
            print("\nkill -9 round %d: %d of %d new entries survived (%d logged stored), "
                  "%d temporaries removed, %d entries in all"
                  % (rnd, survived, URLS, logged_stored, left, total))
    # The kills fell in the middle of the writes: some entries were in
    # flight (temporaries), some complete, some not begun.
    assert sum(r[2] for r in report) > 0, report
    assert all(0 < r[0] < URLS for r in report), report


# ---- collapsed forwarding when the fill cannot be stored ----

def test_collapsed_waiters_are_served_when_the_fill_fails(proxies, body_origin, tmp_path):
    """20 clients miss one URL at once while every rename in the cache
    fails: the origin holds the one fill's body until the 19 others are
    waiting on it (the event log says so); it is never stored, so each
    waiter is released to the origin on its own and served in full, and
    nothing is stored."""
    cache = str(tmp_path / "cache")
    hold = threading.Event()
    origin = body_origin(drip=(4096, 0.001), hold=hold)
    path = next(p for p in paths("collapse", 1000) if len(answer(p)[1]) > 100000)
    rule = "fs.rename[%s/]=EIO" % cache
    p = proxies(**{"cache-dir": cache, "fault": [rule]})
    results, lock = [], threading.Lock()

    def one():
        c = Client(p)
        try:
            check_identical(c.get(origin.url(path)), path)
            out = None
        except (AssertionError, OSError) as e:
            out = e
        c.close()
        with lock:
            results.append(out)

    threads = [threading.Thread(target=one) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    try:
        wait_events(p, "waits for the fill in progress", CLIENTS - 1)
    finally:
        hold.set()
        for t in threads:
            t.join()
    assert results == [None] * CLIENTS, results
    stop(p)
    assert fault_hits(p)[rule] == CLIENTS  # every client's write failed at its rename
    assert origin.requests == CLIENTS
    assert entry_files(cache) == [] and temporaries(cache) == []
