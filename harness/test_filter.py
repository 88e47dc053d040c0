"""Domain filtering and access control end to end (requirement G of the seed)."""
import signal
import socket
import time

import pytest

from client import connect, get, read_all, read_response

SEED_NAMES = ["facebook.com", "www.facebook.com", "www.google.com", "google.co.uk",
              "example.com", "evil.example.net", "other.org"]


@pytest.fixture
def lab_hosts(tmp_path):
    """Every demo name resolves to loopback through the proxy's hosts file:
    no test here may depend on DNS."""
    path = tmp_path / "hosts"
    path.write_text("".join("127.0.0.1 %s\n" % n for n in SEED_NAMES))
    return str(path)


def url(origin, host, path="/"):
    return "http://%s:%d%s" % (host, origin.port, path)


def test_seed_demo_lists_over_http(proxy, origin, lab_hosts):
    p = proxy(**{"hosts-file": lab_hosts, "block": "facebook", "allow": ["google", "example"]})
    verdicts = {}
    for host in SEED_NAMES:
        verdicts[host] = p.request(get(url(origin, host))).status
    assert verdicts == {
        "facebook.com": 403, "www.facebook.com": 403,   # blocked
        "www.google.com": 200, "google.co.uk": 200,     # the seed judged this by 'co'
        "example.com": 200, "evil.example.net": 200,    # registrable domain example.net
        "other.org": 403,                                # not in the allow list
    }
    hosts_seen = sorted({r.header("Host").split(":")[0] for r in origin.requests})
    assert hosts_seen == ["evil.example.net", "example.com", "google.co.uk", "www.google.com"]


def test_block_page_names_proxy_host_and_rule(proxy, origin, tmp_path):
    lists = tmp_path / "block.txt"
    lists.write_text("# social\n\nfacebook\n")
    p = proxy(**{"block-file": str(lists)})
    r = p.request(get("http://www.facebook.com:%d/x" % origin.port))
    assert r.status == 403
    assert r.header("Content-Type").startswith("text/html")
    body = r.body.decode()
    assert "glassproxy" in body and "www.facebook.com" in body
    assert "%s:3" % lists in body and "facebook" in body
    assert "%s:3" % lists in p.events()
    assert " 403 " in p.access_lines(1)[0] and "BLOCKED" in p.access_lines(1)[0]


def test_refused_host_costs_no_dns_and_no_connection(proxy, origin):
    # Not in any hosts file: a lookup would go to the system resolver, and
    # the 403 must come before any lookup or connection is tried.
    p = proxy(block="unresolvable.invalid")
    r = p.request(get("http://unresolvable.invalid:%d/" % origin.port))
    assert r.status == 403
    assert origin.connections == 0
    assert "resolve" not in p.events()


def test_seed_demo_over_connect(proxy, lab_hosts):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    port = srv.getsockname()[1]
    p = proxy(**{"hosts-file": lab_hosts, "block": "facebook", "allow": ["google", "example"],
                 "connect-ports": str(port)})
    results = {}
    for host in ("www.facebook.com", "www.google.com", "other.org"):
        with connect(p.address) as s:
            s.sendall(b"CONNECT %s:%d HTTP/1.1\r\nHost: x\r\n\r\n" % (host.encode(), port))
            r, _ = read_response(s, method="CONNECT")
            results[host] = r.status
    srv.close()
    assert results == {"www.facebook.com": 403, "www.google.com": 200, "other.org": 403}


def test_numeric_host_spellings_do_not_bypass_rules(proxy, origin):
    p = proxy(block="127.0.0.0/8")
    for host in ("127.0.0.1", "0x7f.1", "2130706433", "017.0.0.1", "127.1"):
        r = p.request(get("http://%s:%d/" % (host, origin.port)))
        assert r.status == 403, host
    assert origin.connections == 0


def test_invalid_pattern_stops_the_start_with_file_and_line(proxy, tmp_path):
    import subprocess
    from conftest import BIN
    bad = tmp_path / "block.txt"
    bad.write_text("good.example\nbad..pattern\n")
    out = subprocess.run([BIN, "--block-file", str(bad), "--check-config"],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 2
    assert "%s:2:" % bad in out.stderr


def test_sighup_reload_changes_the_verdict_without_dropping_a_connection(proxy, origin, tmp_path):
    lists = tmp_path / "block.txt"
    lists.write_text("# nothing blocked yet\n")
    p = proxy(**{"block-file": str(lists)})
    # A keep-alive connection opened before the reload stays open.
    s = connect(p.address)
    s.sendall(get(origin.url("/before")))
    r, rest = read_response(s)
    assert r.status == 200
    lists.write_text("127.0.0.1\n")
    p.signal(signal.SIGHUP)
    p.wait_event("reloaded")
    assert p.request(get(origin.url("/after"))).status == 403   # new connection: new rules
    s.sendall(get(origin.url("/in-flight")))
    r, _ = read_response(s, rest)                                # old connection: its next
    assert r.status == 403                                       # request, the new rules
    s.close()


def test_failed_reload_keeps_the_old_rules(proxy, origin, tmp_path):
    lists = tmp_path / "block.txt"
    lists.write_text("127.0.0.1\n")
    p = proxy(**{"block-file": str(lists)})
    lists.write_text("a..b\n")
    p.signal(signal.SIGHUP)
    p.wait_event("reload failed")
    assert "%s:1:" % lists in p.events()
    assert p.request(get(origin.url("/"))).status == 403


def test_non_allowed_client_is_refused(proxy, origin):
    p = proxy(**{"allow-client": "127.0.0.1/32"})
    s = socket.socket()
    try:
        s.bind(("127.0.0.2", 0))
    except OSError:
        pytest.skip("127.0.0.2 is not usable here")
    s.settimeout(10)
    s.connect(p.address)
    s.sendall(get(origin.url("/")))
    r, _ = read_response(s)
    s.close()
    assert r.status == 403
    assert "not allowed" in p.events()
    assert origin.connections == 0
    assert p.request(get(origin.url("/"))).status == 200  # 127.0.0.1 still is


def test_default_client_rule_is_the_whole_loopback_range(proxy, origin):
    p = proxy(listen="0.0.0.0:0")
    s = socket.socket()
    try:
        s.bind(("127.0.0.2", 0))
    except OSError:
        pytest.skip("127.0.0.2 is not usable here")
    s.settimeout(10)
    s.connect(("127.0.0.1", p.port))
    s.sendall(get(origin.url("/")))
    r, _ = read_response(s)
    s.close()
    # 127.0.0.2 is loopback too: served.  The check is by CIDR, not by name.
    assert r.status == 200


def test_refused_upload_still_gets_its_403(proxy, origin):
    """The proxy never reads the body of a refused request; closing with it
    unread would reset the connection and could destroy the 403 in flight.
    A lingering close (stop sending, drain a while) delivers it."""
    p = proxy(block="127.0.0.1")
    body = b"x" * (512 * 1024)
    with connect(p.address) as s:
        s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                   % (origin.url("/up"), len(body))).encode() + body)
        r, _ = read_response(s)
    assert r.status == 403
    assert origin.connections == 0
