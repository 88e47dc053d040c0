"""Starting, configuring and stopping the binary."""
import os
import signal
import atexit
import shutil
import subprocess
import tempfile

from client import get
from conftest import BIN


# Runs that get as far as opening the cache (the default --cache-dir is
# ./cache) do it in a scratch directory, never in the checkout.
SCRATCH = tempfile.mkdtemp(prefix="glassproxy-lifecycle-")
atexit.register(shutil.rmtree, SCRATCH, True)


def run(*args, timeout=10):
    return subprocess.run([BIN, *args], capture_output=True, timeout=timeout,
                          text=True, cwd=SCRATCH)


def test_sigterm_and_sigint_stop_cleanly_with_status_0(proxy, origin):
    for sig in (signal.SIGTERM, signal.SIGINT):
        p = proxy()
        assert p.request(get(origin.url("/"))).status == 200
        p.signal(sig)
        assert p.proc.wait(20) == 0
        assert "stopped" in p.events()


def test_stop_closes_idle_keep_alive_connections_at_once(proxy, origin):
    import client
    p = proxy(**{"shutdown-grace": "60s"})
    s = client.connect(p.address)
    s.sendall(get(origin.url("/")))
    r, _ = client.read_response(s)
    assert r.status == 200
    # The connection is idle now; a stop must not wait the 60 s grace for it.
    p.signal(signal.SIGTERM)
    assert p.proc.wait(10) == 0
    assert client.read_all(s) == b""
    s.close()


def test_help_and_version():
    out = run("--help")
    assert out.returncode == 0
    assert "--listen" in out.stdout and "--hosts-file" in out.stdout
    out = run("-V")
    assert out.returncode == 0 and out.stdout.startswith("glassproxy ")


def test_check_config_prints_effective_config(tmp_path):
    conf = tmp_path / "g.conf"
    conf.write_text("# a comment\nlisten 127.0.0.1:0\nconnect-timeout 3s  # trailing comment\n"
                    "block facebook\n")
    out = run("-c", str(conf), "--check-config", "--connect-timeout", "5s", "--block", "x.example")
    assert out.returncode == 0, out.stderr
    assert "listen 127.0.0.1:0" in out.stdout
    assert "connect-timeout 5s" in out.stdout      # the command line wins
    assert "block facebook\nblock x.example" in out.stdout  # lists accumulate


def test_check_config_names_file_line_and_problem(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("listen 127.0.0.1:0\n\nconnect-timeout soon\n")
    out = run("-c", str(conf), "--check-config")
    assert out.returncode == 2
    assert "%s:3: connect-timeout:" % conf in out.stderr
    conf.write_text("no-such-key 1\n")
    out = run("--config", str(conf), "--check-config")
    assert out.returncode == 2
    assert "%s:1: unknown key 'no-such-key'" % conf in out.stderr


def test_bad_command_lines_exit_2():
    assert run("--no-such-option").returncode == 2
    assert run("--listen", "not-an-address", "--check-config").returncode == 2
    assert run("--listen").returncode == 2
    assert run("-c", "/nonexistent/glassproxy.conf").returncode == 2


def test_listen_port_taken_fails_with_message(proxy):
    p = proxy()
    # --no-cache: the cache opens before the listen fails; not ./cache
    out = run("--listen", "127.0.0.1:%d" % p.port, "--no-cache")
    assert out.returncode == 1
    assert "cannot listen on" in out.stderr


def test_sigusr1_reopens_logs(proxy, origin):
    p = proxy()
    assert p.request(get(origin.url("/one"))).status == 200
    p.access_lines(1)
    rotated = str(p.access_log) + ".1"
    os.rename(p.access_log, rotated)
    p.signal(signal.SIGUSR1)
    p.wait_event("logs reopened")
    assert p.request(get(origin.url("/two"))).status == 200
    assert "/two" in p.access_lines(1)[0]
    assert "/one" in open(rotated).read()


def test_stop_cuts_requests_still_running_after_the_grace(proxy, origin):
    """A silent origin must not hold the exit for its 60 s response timeout."""
    import time
    import client
    origin.handler = lambda req: [("sleep", 20), b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"]
    p = proxy(**{"shutdown-grace": "300ms"})
    s = client.connect(p.address)
    s.sendall(get(origin.url("/slow")))
    origin.wait_requests(1)
    started = time.monotonic()
    p.signal(signal.SIGTERM)
    assert p.proc.wait(15) == 0
    assert time.monotonic() - started < 10
    s.close()


def test_serial_mode_serves_and_stops_with_an_idle_client(proxy, origin):
    import client
    p = proxy(serial=True)
    s = client.connect(p.address)
    s.sendall(get(origin.url("/")))
    r, _ = client.read_response(s)
    assert r.status == 200
    # The single connection is idle now; SIGTERM must end it, not wait 15 s.
    p.signal(signal.SIGTERM)
    assert p.proc.wait(10) == 0
    s.close()


def test_header_breaking_values_exit_2_with_a_message():
    """Issue #15 finding 7: a value that ends up in a header is a token."""
    out = run("--via-name", "proxy\r\nX-Injected: 1", "--check-config")
    assert out.returncode == 2
    assert "--via-name: 'proxy\\x0d\\x0aX-Injected: 1' must be one token" in out.stderr
    out = run("--parent-proxy", "up\r\nX-Injected: 1:3128", "--check-config")
    assert out.returncode == 2
    assert "--parent-proxy: " in out.stderr and "is not HOST:PORT" in out.stderr
    for bad in (("--forwarded-for", "maybe"), ("--connect-ports", "443,"),
                ("--listen", "localhost:8080")):
        out = run(*bad, "--check-config")
        assert out.returncode == 2, bad
        assert out.stderr.startswith("glassproxy: %s: '" % bad[0]), out.stderr


def test_check_config_prints_typed_values_back(tmp_path):
    conf = tmp_path / "g.conf"
    conf.write_text("listen [::1]:0\nforwarded-for on\nparent-proxy [::1]:3128\n"
                    "connect-ports 443, 8000-8100\nvia-name edge.1\n")
    out = run("-c", str(conf), "--check-config")
    assert out.returncode == 0, out.stderr
    for line in ("listen [::1]:0", "forwarded-for on", "parent-proxy [::1]:3128",
                 "connect-ports 443,8000-8100", "via-name edge.1"):
        assert "\n%s\n" % line in out.stdout
