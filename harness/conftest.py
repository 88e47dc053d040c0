"""
The end-to-end harness: the real glassproxy binary between real sockets.

Fixtures
  proxy       a factory: proxy() starts glassproxy on 127.0.0.1:0 with
              its logs in the test's tmp dir, waits for the ready line and
              returns a Proxy; every proxy is stopped with SIGTERM at the
              end of the test, which fails if the proxy died, exited non-zero
              or printed a sanitizer/valgrind error.
  origin      a scriptable fake origin server on an ephemeral loopback port
              (see origin.py); origin_factory() makes more of them.

Everything listens on port 0 and reads its port back; nothing touches a
fixed port, DNS or any address outside loopback.  GLASSPROXY_BIN picks the
binary (make passes it), GLASSPROXY_WRAPPER a command to run it under
(valgrind).
"""
import os
import re
import shlex
import signal
import subprocess
import time

import pytest

from origin import Origin
import client as client_mod

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("GLASSPROXY_BIN", os.path.join(ROOT, "build", "glassproxy"))
WRAPPER = shlex.split(os.environ.get("GLASSPROXY_WRAPPER", ""))
SLOW = 10 if WRAPPER else 1  # valgrind runs the proxy ~20x slower
READY = re.compile(rb"glassproxy: listening on (\S+):(\d+)\n")
BAD_OUTPUT = re.compile(
    rb"(ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|"
    rb"WARNING: ThreadSanitizer|==\d+== (Invalid|Conditional|Syscall|"
    rb"Mismatched)|definitely lost: [1-9])")


def wait_until(done, describe, timeout=10):
    """Poll done() every 10 ms until it is true, for things the proxy does
    on its own thread (a reload, a log line after a response); after
    timeout seconds (x SLOW) fail with describe()."""
    deadline = time.monotonic() + timeout * SLOW
    while not done():
        assert time.monotonic() < deadline, describe()
        time.sleep(0.01)


class Proxy:
    """A running glassproxy and where to find what it wrote."""

    def __init__(self, args, tmp_path, name):
        self.dir = tmp_path / name
        self.dir.mkdir()
        self.event_log = self.dir / "event.log"
        self.access_log = self.dir / "access.log"
        self.stderr_path = self.dir / "stderr.txt"
        self.args = args
        # Every proxy gets its own cache directory (or none): nothing may
        # write into the checkout, and no test sees another's entries.
        if "no-cache" not in args and "cache-dir" not in args:
            args["cache-dir"] = str(self.dir / "cache")
        cmd = WRAPPER + [BIN, "--listen", args.pop("listen", "127.0.0.1:0"),
                         "--log-file", str(self.event_log),
                         "--access-log", str(self.access_log), "-v",
                         # The harness reads the outcome as the last field
                         # and the status as the fifth: glassproxy's own
                         # format.  Tests of the other formats pass theirs.
                         "--access-log-format",
                         args.pop("access-log-format", "glassproxy")]
        for key, value in args.items():
            values = value if isinstance(value, list) else [value]
            for v in values:
                cmd += ["--" + key] if v is True else ["--" + key, str(v)]
        self.cmd = cmd
        self._stderr = open(self.stderr_path, "wb+")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=self._stderr)
        self.host, self.port = self._wait_ready()

    def _wait_ready(self):
        deadline = time.monotonic() + 10 * SLOW
        while time.monotonic() < deadline:
            text = self.stderr_path.read_bytes()
            m = READY.search(text)
            if m:
                host = m.group(1).decode()
                return host.strip("[]"), int(m.group(2))
            if self.proc.poll() is not None:
                raise AssertionError("glassproxy exited %s before it was ready:\n%s"
                                     % (self.proc.returncode, text.decode(errors="replace")))
            time.sleep(0.01)  # polling for the ready line, not synchronisation
        self.proc.kill()
        raise AssertionError("glassproxy did not print its ready line")

    @property
    def address(self):
        return (self.host, self.port)

    def stderr(self):
        return self.stderr_path.read_bytes().decode(errors="replace")

    def events(self):
        return self.event_log.read_text(errors="replace") if self.event_log.exists() else ""

    def access(self):
        return self.access_log.read_text(errors="replace") if self.access_log.exists() else ""

    def wait_event(self, text, timeout=10):
        """Wait until the event log mentions text (a reload, a reopen: things
        the proxy does after a signal, on its own thread)."""
        wait_until(lambda: text in self.events(),
                   lambda: "no %r in the event log:\n%s" % (text, self.events()), timeout)

    def access_lines(self, expect=None, timeout=5):
        """The access log's lines; with expect, waits until there are that many
        (the log line is written just after the response, so a client can see
        the response a moment before the line exists)."""
        deadline = time.monotonic() + timeout * SLOW
        while True:
            lines = [l for l in self.access().splitlines() if l]
            if expect is None or len(lines) >= expect or time.monotonic() > deadline:
                return lines
            time.sleep(0.01)

    def signal(self, sig):
        if sig in (signal.SIGTERM, signal.SIGINT):
            self.stopped_by_test = True
        self.proc.send_signal(sig)

    def stop(self, timeout=20):
        """SIGTERM, wait, and return the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("glassproxy did not stop within %ss of SIGTERM" % timeout)
        self._stderr.close()
        return self.proc.returncode

    def check_clean(self):
        text = self.stderr_path.read_bytes()
        bad = BAD_OUTPUT.search(text)
        assert not bad, "glassproxy reported an error:\n" + text.decode(errors="replace")

    def request(self, raw, **kw):
        return client_mod.exchange(self.address, raw, **kw)


@pytest.fixture
def proxy(tmp_path):
    started = []

    def start(**args):
        p = Proxy(dict(args), tmp_path, "proxy%d" % len(started))
        started.append(p)
        return p

    yield start
    problems = []
    for p in started:
        died = p.proc.poll()
        if died is not None and not getattr(p, "stopped_by_test", False):
            problems.append("glassproxy died during the test (exit %s):\n%s"
                            % (died, p.stderr()))
            continue
        code = p.stop()
        if code != 0:
            problems.append("glassproxy exited %s after SIGTERM:\n%s" % (code, p.stderr()))
        try:
            p.check_clean()
        except AssertionError as e:
            problems.append(str(e))
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def origin_factory():
    made = []

    def make(**kw):
        o = Origin(**kw)
        made.append(o)
        return o

    yield make
    for o in made:
        o.close()


@pytest.fixture
def origin(origin_factory):
    return origin_factory()
