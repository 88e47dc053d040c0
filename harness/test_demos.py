"""
The gdb demos of docs/debugging.md run here, non-interactively, so they never
rot: each docs/demos/NAME.gdb runs as

    gdb -batch -x docs/demos/NAME.gdb --args build/debug/glassproxy --serial ...

against the -O0 build (the test runs make debug first; GLASSPROXY_DEBUG_BIN
picks another binary and skips that), with
a fake origin behind the proxy and a client in front, and gdb's output must
contain the regular expressions of docs/demos/NAME.expected in order.
The demos are marked `teach`: `make check-teach` (a CI step) runs them, not
`make test`; the check that every demo has its header, its expected lines and
its row in docs/debugging.md is fast and stays in `make test`.

A demo's header says how to run it:
    # proxy: OPTIONS        the proxy's options ({origin} is host:port, {origin_port})
    # client: GET URL | CONNECT HOST:PORT
                            (several client lines: one request after another,
                            each on its own connection, each read to its end)
    # needs: --OPTION       skip (with the reason) while --help lacks the option

Like every harness proxy, a demo's proxy has its own cache: a demo names
--cache-dir {tmp}/cache (a fresh, empty one) or --no-cache, and the test adds
--cache-dir {tmp}/cache when it names neither, so nothing is read from or
written to the checkout and no demo depends on what an earlier run stored.
"""
import os
import re
import shlex
import shutil
import socket
import subprocess
import threading

import pytest

from origin import Origin

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMOS = os.path.join(ROOT, "docs", "demos")
DEBUG_BIN = os.environ.get("GLASSPROXY_DEBUG_BIN",
                           os.path.join(ROOT, "build", "debug", "glassproxy"))
READY = re.compile(r"glassproxy: listening on 127\.0\.0\.1:(\d+)")
NAMES = sorted(f[:-4] for f in os.listdir(DEMOS) if f.endswith(".gdb"))


def header(path):
    meta = {}
    for line in open(path, encoding="utf-8"):
        m = re.match(r"#\s*(demo|proxy|client|needs):\s*(.*)", line)
        if m:
            meta.setdefault(m.group(1), []).append(m.group(2).strip())
    return meta


def expected(name):
    with open(os.path.join(DEMOS, name + ".expected"), encoding="utf-8") as f:
        return [l.rstrip("\n") for l in f if l.strip() and not l.startswith("#")]


def help_text():
    return subprocess.run([DEBUG_BIN, "--help"], stdout=subprocess.PIPE).stdout.decode()


def run_one(kind, target, port):
    """One request; reads until the proxy closes the connection (a GET says
    Connection: close; gdb kills the proxy at the end of the script)."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        if kind == "GET":
            s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                      % target.encode())
        else:
            s.sendall(b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % ((target.encode(),) * 2))
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = s.recv(4096)
                if not chunk:
                    return
                buf += chunk
            s.sendall(b"ping through the tunnel\n")
            got = buf.split(b"\r\n\r\n", 1)[1]
            while b"\n" not in got:
                chunk = s.recv(4096)
                if not chunk:
                    return
                got += chunk
            s.shutdown(socket.SHUT_WR)  # the tunnel ends when both sides have
        while s.recv(4096):
            pass


def run_client(requests, port, done):
    """Sends the demo's requests, one after another."""
    try:
        for kind, target in requests:
            run_one(kind, target, port)
    except OSError:
        pass  # the proxy was killed mid-answer: expected at the end of a demo
    finally:
        done.set()


def tunnel_echo(req):
    return b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"


@pytest.fixture(scope="module")
def debug_bin():
    if shutil.which("gdb") is None:
        pytest.skip("gdb is not installed (scripts/deps test installs it)")
    if "GLASSPROXY_DEBUG_BIN" not in os.environ:  # up to date with the sources
        p = subprocess.run(["make", "-C", ROOT, "-j2", "debug"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        assert p.returncode == 0, p.stdout.decode()[-2000:]
    return DEBUG_BIN


def echo_server():
    """A raw TCP origin for CONNECT demos: echoes what it gets."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)

    def serve():
        try:
            conn, _ = srv.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(60)
            try:
                while True:
                    data = conn.recv(4096)
                    if not data:
                        break
                    conn.sendall(data)
            except OSError:
                pass
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return srv, t


@pytest.mark.teach
@pytest.mark.parametrize("name", NAMES)
def test_demo(name, debug_bin, tmp_path):
    path = os.path.join(DEMOS, name + ".gdb")
    meta = header(path)
    for option in meta.get("needs", []):
        if option not in help_text():
            pytest.skip("%s: the binary has no %s yet" % (name, option))
    clients = [c.split(None, 1) for c in meta["client"]]
    kind = clients[0][0]
    origin = Origin()
    # No freshness of its own: the cache's 60 s default TTL applies; the
    # ETag lets a stale copy be revalidated (the cache-stale demo).
    origin.reply(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nETag: \"v1\"\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    echo, echo_thread = echo_server()
    origin_port = echo.getsockname()[1] if kind == "CONNECT" else origin.port
    subst = {"origin": "127.0.0.1:%s" % origin_port, "origin_port": str(origin_port),
             "tmp": str(tmp_path)}
    args = shlex.split(" ".join(meta.get("proxy", [])).format(**subst))
    if "--no-cache" not in args and "--cache-dir" not in args:
        args += ["--cache-dir", str(tmp_path / "cache")]
    cmd = ["gdb", "-nx", "-batch", "-x", path, "--args", debug_bin, "-l", "127.0.0.1:0"] + args
    gdb = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
    out, done = [], threading.Event()
    try:
        for raw in gdb.stdout:
            line = raw.decode("utf-8", "replace")
            out.append(line)
            m = READY.search(line)
            if m:
                threading.Thread(target=run_client, daemon=True,
                                 args=([(k, t.format(**subst)) for k, t in clients],
                                       int(m.group(1)), done)).start()
                break
        rest, _ = gdb.communicate(timeout=120)
        out.append(rest.decode("utf-8", "replace"))
    finally:
        if gdb.poll() is None:
            gdb.kill()
            gdb.wait()
        origin.close()
        echo.close()
    text = "".join(out)
    (tmp_path / "gdb.out").write_text(text)
    lines = text.splitlines()
    at = 0
    for pattern in expected(name):
        rx = re.compile(pattern)
        while at < len(lines) and not rx.search(lines[at]):
            at += 1
        assert at < len(lines), "%s: no line matching %r (in order) in gdb's output:\n%s" % (
            name, pattern, text[-6000:])
        at += 1
    assert done.wait(30), "the client never finished"


def test_every_demo_has_expected_lines_and_a_header():
    assert len(NAMES) >= 5
    for name in NAMES:
        meta = header(os.path.join(DEMOS, name + ".gdb"))
        assert meta.get("demo") and meta.get("client"), name
        assert expected(name), name
        assert "docs/demos/%s.gdb" % name in open(
            os.path.join(ROOT, "docs", "debugging.md"), encoding="utf-8").read(), name
