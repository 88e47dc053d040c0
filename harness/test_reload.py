"""SIGHUP end to end: a reload applies what can change live (log level,
log paths, lists), refuses a broken configuration as a whole, and keeps the
listening address with a warning.

These proxies are configured by a config file alone (no -v, no log paths on
the command line, which would override the file), so that a reload can
change every one of those settings.  The proxy-side checks (a shorter
response timeout applies to the next request, ...) live with the proxy's
tests.
"""
import signal
import subprocess

import pytest

from client import get
from conftest import BIN, WRAPPER, Proxy, wait_until


class FileProxy(Proxy):
    """A glassproxy started as `glassproxy -c FILE`; write() edits FILE."""

    def __init__(self, tmp_path, name, text):
        self.dir = tmp_path / name
        self.dir.mkdir()
        self.conf = self.dir / "glassproxy.conf"
        self.event_log = self.dir / "event.log"
        self.access_log = self.dir / "access.log"
        self.stderr_path = self.dir / "stderr.txt"
        self.args = {}
        self.write(text)
        # Its own cache directory (never ./cache in the checkout), and
        # glassproxy's own access format: the harness reads its fields.
        self.cmd = WRAPPER + [BIN, "-c", str(self.conf),
                              "--cache-dir", str(self.dir / "cache"),
                              "--access-log-format", "glassproxy"]
        self._stderr = open(self.stderr_path, "wb+")
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=self._stderr)
        self.host, self.port = self._wait_ready()

    def write(self, text):
        """The config file: text plus the lines every test needs."""
        self.conf.write_text("listen 127.0.0.1:0\n"
                             "log-file %s\n" % self.event_log + text)

    def reload(self):
        self.signal(signal.SIGHUP)


def wait_for_text(path, text, timeout=10):
    """Wait until the file at path holds text (the proxy writes it from its
    signal thread after a reload); polling with a deadline."""
    def read():
        return path.read_text(errors="replace") if path.exists() else ""
    wait_until(lambda: text in read(),
               lambda: "no %r in %s:\n%s" % (text, path, read() or "(none)"), timeout)


@pytest.fixture
def file_proxy(tmp_path):
    started = []

    def start(text=""):
        p = FileProxy(tmp_path, "proxy%d" % len(started), text)
        started.append(p)
        return p

    yield start
    problems = []
    for p in started:
        if p.proc.poll() is not None:
            problems.append("glassproxy died during the test (exit %s):\n%s"
                            % (p.proc.returncode, p.stderr()))
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


def test_reload_switches_log_level_and_log_files(file_proxy, origin, tmp_path):
    p = file_proxy("quiet yes\naccess-log %s\nblock blocked.example\n" % (tmp_path / "a1.log"))
    assert p.request(get("http://blocked.example/one")).status == 403
    assert p.request(get(origin.url("/one"))).status == 200
    wait_for_text(tmp_path / "a1.log", "/one")
    # Warnings only: the refusal (an info line) is not in the event log.
    assert "refused" not in p.events()

    new_events = tmp_path / "e2.log"
    p.conf.write_text("listen 127.0.0.1:0\nlog-file %s\naccess-log %s\n"
                      "verbose 1\nblock blocked.example\n"
                      % (new_events, tmp_path / "a2.log"))
    p.reload()
    # The reload's own info line lands in the new file at the new level.
    wait_for_text(new_events, "SIGHUP: configuration and lists reloaded; changed: "
                  "log-file, access-log, verbose")
    assert p.request(get("http://blocked.example/two")).status == 403
    assert p.request(get(origin.url("/two"))).status == 200
    wait_for_text(tmp_path / "a2.log", "/two")
    wait_for_text(new_events, "refused")
    assert "/two" not in (tmp_path / "a1.log").read_text()
    assert "reloaded" not in p.events()     # the old event log saw nothing more


def test_reload_with_a_bad_list_keeps_the_whole_old_configuration(file_proxy, origin, tmp_path):
    lists = tmp_path / "block.txt"
    lists.write_text("blocked.example\n")
    p = file_proxy("block-file %s\n" % lists)
    assert p.request(get(origin.url("/"))).status == 200
    # A good new block in the file, a bad line in the list: nothing applies.
    lists.write_text("blocked.example\na..b\n")
    p.write("block-file %s\nblock 127.0.0.1\naccess-log %s\n" % (lists, tmp_path / "a2.log"))
    p.reload()
    p.wait_event("SIGHUP: reload failed, keeping the old configuration")
    assert "%s:2:" % lists in p.events()
    assert p.request(get(origin.url("/still"))).status == 200
    assert p.request(get("http://blocked.example/")).status == 403
    assert not (tmp_path / "a2.log").exists()


def test_reload_with_a_bad_value_keeps_the_whole_old_configuration(file_proxy, origin, tmp_path):
    p = file_proxy("")
    assert p.request(get(origin.url("/"))).status == 200
    bad_lines = ("response-timeout soon\n", "via-name a\rX-Injected: 1\n",
                 "parent-proxy up.example\n", "no-such-key 1\n")
    for n, bad in enumerate(bad_lines):
        p.write("block 127.0.0.1\n" + bad)
        p.reload()
        wait_until(lambda: p.events().count("reload failed") > n, p.events)
        assert "%s:4: " % p.conf in p.events()   # FILE:LINE of the bad line
        assert p.request(get(origin.url("/%d" % n))).status == 200
    assert "X-Injected: 1\n" not in p.events()   # the CR is shown escaped


def test_reload_that_changes_listen_warns_and_keeps_listening(file_proxy, origin):
    p = file_proxy("")
    p.conf.write_text("listen 127.0.0.1:1\nlog-file %s\nresponse-timeout 30s\n" % p.event_log)
    p.reload()
    p.wait_event("reloaded")
    events = p.events()
    assert "warn reload: 'listen' changed; needs a restart, keeping 127.0.0.1:0" in events
    assert "changed: response-timeout" in events
    assert p.request(get(origin.url("/after"))).status == 200   # the old address


def test_reload_without_changes_says_so(file_proxy, origin):
    p = file_proxy("response-timeout 30s\n")
    p.reload()
    p.wait_event("reloaded; changed: nothing")
    assert "warn" not in p.events()
    assert p.request(get(origin.url("/"))).status == 200


def test_reloads_while_requests_run(file_proxy, origin, tmp_path):
    """Log files and level switched under traffic (make tsan watches this):
    every request still gets its answer and its access line somewhere."""
    import threading
    p = file_proxy("access-log %s\n" % (tmp_path / "a0.log"))
    stop = threading.Event()
    statuses = []

    def traffic():
        while not stop.is_set():
            statuses.append(p.request(get(origin.url("/t"))).status)

    t = threading.Thread(target=traffic)
    t.start()
    try:
        for n in range(1, 9):
            p.write("access-log %s\n%s" % (tmp_path / ("a%d.log" % (n % 3)),
                                           "verbose 2\n" if n % 2 else "quiet yes\nverbose 1\n"))
            p.reload()
            wait_until(lambda: p.events().count("reloaded") >= n, p.events)
    finally:
        stop.set()
        t.join(30)
    assert statuses and set(statuses) == {200}

    def lines():
        return sum(len((tmp_path / ("a%d.log" % i)).read_text().splitlines())
                   for i in range(3) if (tmp_path / ("a%d.log" % i)).exists())
    # An access line is written just after its response, so the client may
    # be ahead of the log by a few lines (under valgrind, by more than one:
    # its scheduler can leave a worker waiting while others serve).  Every
    # line must arrive, and none twice.
    wait_until(lambda: lines() >= len(statuses),
               lambda: "%d access lines for %d answers" % (lines(), len(statuses)))
    assert lines() == len(statuses)


def test_reload_applies_a_smaller_cache_size_at_once(file_proxy, origin):
    body = b"c" * 20000
    origin.reply(b"HTTP/1.1 200 OK\r\nCache-Control: max-age=600\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(body) + body)
    p = file_proxy("cache-size 1M\n")
    url = origin.url("/big-enough")
    assert p.request(get(url)).body == body
    # The first answer's commit precedes its access line... which this proxy
    # writes into the event log (no access-log option): wait for it.
    p.wait_event(url)
    assert "hit" in p.request(get(url)).header("Cache-Status")
    assert len(origin.requests) == 1
    p.write("cache-size 1k\n")
    p.reload()
    p.wait_event("changed: cache-size")
    r = p.request(get(url))
    assert r.body == body and "hit" not in r.header("Cache-Status")
    assert len(origin.requests) == 2
