"""The cache in the request path (issue #10): hits, misses, revalidation,
Vary, conditionals, Range, invalidation, PURGE, collapsed forwarding,
restarts and failures, seen from the client and from the origin."""
import email.utils
import os
import socket
import threading
import time

import pytest

from client import connect, exchange, get, read_response


def http_date(t):
    return email.utils.formatdate(t, usegmt=True)


def reply(body=b"hello", status="200 OK", headers=()):
    head = "HTTP/1.1 %s\r\nContent-Length: %d\r\n" % (status, len(body))
    if not any(n.lower() == "date" for n, _ in headers):
        head += "Date: %s\r\n" % http_date(time.time())
    head += "".join("%s: %s\r\n" % h for h in headers)
    return head.encode() + b"\r\n" + body


def req(url, method="GET", headers=()):
    host = url.split("/")[2]
    text = "%s %s HTTP/1.1\r\nHost: %s\r\n" % (method, url, host)
    text += "".join("%s: %s\r\n" % h for h in headers)
    return (text + "\r\n").encode()


def fetch(p, url, method="GET", headers=(), body=None):
    """One request on its own connection, returning once the proxy has
    logged it: its access line is written after the store's commit, so
    the next request sees the entry (no race with the commit)."""
    raw = req(url, method, headers)
    if body is not None:
        raw = raw[:-2] + b"Content-Length: %d\r\n\r\n" % len(body) + body
    r = p.request(raw, method=method)
    p.fetched = getattr(p, "fetched", 0) + 1
    p.access_lines(p.fetched)
    return r


def count(origin):
    return len(origin.requests)


def is_hit(r):
    """Served from the store: a hit, or (when it arrived while the entry
    was still being committed) a miss collapsed into the first fetch."""
    cs = r.header("Cache-Status") or ""
    return cs.startswith("glassproxy; hit") or "collapsed" in cs


# ---- hits and misses ----

def test_second_request_is_a_hit(proxy, origin):
    origin.reply(reply(b"cached body", headers=[("Cache-Control", "max-age=600")]))
    p = proxy()
    url = origin.url("/a")
    first = fetch(p, url)
    assert first.status == 200 and first.body == b"cached body"
    assert "fwd=uri-miss" in first.header("Cache-Status")
    assert "stored" in first.header("Cache-Status")
    second = fetch(p, url)
    assert second.status == 200 and second.body == b"cached body"
    assert is_hit(second)
    assert "ttl=" in second.header("Cache-Status")
    assert second.header("Age") is not None and int(second.header("Age")) >= 0
    assert second.header("Date") == first.header("Date")
    assert count(origin) == 1
    words = [l.split()[-1] for l in p.access_lines(2)]
    assert words == ["MISS+STORED", "HIT"]


@pytest.mark.parametrize("headers", [
    [("Cache-Control", "max-age=600")],
    [("Cache-Control", "s-maxage=600, max-age=0")],
    [("Expires", http_date(time.time() + 600)), ("Date", http_date(time.time()))],
    [("Last-Modified", http_date(time.time() - 100000))],  # heuristic
])
def test_freshness_sources_give_hits(proxy, origin, headers):
    origin.reply(reply(b"x", headers=headers))
    p = proxy()
    fetch(p, origin.url("/f"))
    assert is_hit(fetch(p, origin.url("/f")))
    assert count(origin) == 1


@pytest.mark.parametrize("headers", [
    [("Cache-Control", "max-age=0")],
    [("Cache-Control", "no-store, max-age=600")],
    [("Cache-Control", "private, max-age=600")],
    [("Expires", "0")],
])
def test_stale_or_uncacheable_always_go_to_the_origin(proxy, origin, headers):
    origin.reply(reply(b"x", headers=headers))
    p = proxy()
    for _ in range(3):
        assert fetch(p, origin.url("/u")).status == 200
    assert count(origin) == 3


def test_default_ttl_zero_turns_heuristics_off(proxy, origin):
    origin.reply(reply(b"x"))
    p = proxy(**{"default-ttl": 0})
    fetch(p, origin.url("/h"))
    fetch(p, origin.url("/h"))
    assert count(origin) == 2


def test_no_cache_option(proxy, origin):
    origin.reply(reply(b"x", headers=[("Cache-Control", "max-age=600")]))
    p = proxy(**{"no-cache": True})
    fetch(p, origin.url("/n"))
    fetch(p, origin.url("/n"))
    assert count(origin) == 2


def test_set_cookie_is_never_served_to_another_client(proxy, origin):
    origin.reply(reply(b"x", headers=[("Cache-Control", "max-age=600"),
                                      ("Set-Cookie", "session=secret")]))
    p = proxy()
    assert fetch(p, origin.url("/c")).header("Set-Cookie") == "session=secret"
    hit = fetch(p, origin.url("/c"))
    # Stored without the field: the second client gets the body, not the cookie.
    assert is_hit(hit) and hit.body == b"x"
    assert hit.header("Set-Cookie") is None
    assert count(origin) == 1


def test_authorization_is_not_shared(proxy, origin):
    origin.reply(reply(b"for alice", headers=[("Cache-Control", "max-age=600")]))
    p = proxy()
    fetch(p, origin.url("/auth"), headers=[("Authorization", "Basic YTpi")])
    fetch(p, origin.url("/auth"))
    assert count(origin) == 2


def test_distinct_paths_stay_distinct(proxy, origin):
    origin.handler = lambda r: reply(r.target.encode(),
                                     headers=[("Cache-Control", "max-age=600")])
    p = proxy()
    for path in ("/a/b_c", "/a/b/c", "/a/b.c"):
        assert fetch(p, origin.url(path)).body == path.encode()
    for path in ("/a/b_c", "/a/b/c", "/a/b.c"):
        r = fetch(p, origin.url(path))
        assert r.body == path.encode()
        assert is_hit(r)
    assert count(origin) == 3


def test_head_is_answered_from_a_stored_get(proxy, origin):
    origin.reply(reply(b"0123456789", headers=[("Cache-Control", "max-age=600")]))
    p = proxy()
    fetch(p, origin.url("/head"))
    r = fetch(p, origin.url("/head"), method="HEAD")
    assert r.status == 200 and r.body == b""
    assert r.header("Content-Length") == "10"
    assert is_hit(r)
    assert count(origin) == 1


def test_vary_variants_side_by_side(proxy, origin):
    origin.handler = lambda r: reply(("lang=%s" % r.header("Accept-Language")).encode(),
                                     headers=[("Cache-Control", "max-age=600"),
                                              ("Vary", "Accept-Language")])
    p = proxy()
    url = origin.url("/v")
    for lang in ("en", "fr", "en", "fr"):
        r = fetch(p, url, headers=[("Accept-Language", lang)])
        assert r.body == ("lang=%s" % lang).encode()
    assert count(origin) == 2


# ---- revalidation ----

def test_revalidation_304_serves_the_stored_body(proxy, origin):
    answers = [reply(b"original", headers=[("Cache-Control", "max-age=0"),
                                           ("ETag", '"v1"'), ("X-Version", "1")]),
               b"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nX-Version: 2\r\n"
               b"Cache-Control: max-age=0\r\n\r\n"]
    origin.handler = lambda r: answers.pop(0)
    p = proxy()
    fetch(p, origin.url("/r"))
    r = fetch(p, origin.url("/r"))
    assert r.status == 200 and r.body == b"original"
    assert r.header("X-Version") == "2"
    assert "fwd=stale" in r.header("Cache-Status")
    assert "fwd-status=304" in r.header("Cache-Status")
    second = origin.requests[1]
    assert second.header("If-None-Match") == '"v1"'
    assert p.access_lines(2)[-1].split()[-1].startswith("REFRESH-UNMODIFIED")


def test_revalidation_200_replaces_the_entry(proxy, origin):
    answers = [reply(b"old", headers=[("Cache-Control", "max-age=0"), ("ETag", '"v1"')]),
               reply(b"new", headers=[("Cache-Control", "max-age=600"), ("ETag", '"v2"')])]
    origin.handler = lambda r: answers.pop(0)
    p = proxy()
    fetch(p, origin.url("/r2"))
    assert fetch(p, origin.url("/r2")).body == b"new"
    r = fetch(p, origin.url("/r2"))
    assert r.body == b"new" and is_hit(r)
    assert count(origin) == 2


def test_stale_if_error_on_a_dead_origin(proxy, origin_factory):
    o = origin_factory()
    o.reply(reply(b"keep me", headers=[("Cache-Control", "max-age=0, stale-if-error=600"),
                                       ("ETag", '"e"')]))
    p = proxy()
    url = o.url("/sie")
    fetch(p, url)
    o.close()
    r = fetch(p, url)
    assert r.status == 200 and r.body == b"keep me"
    assert "stale-if-error" in r.header("Cache-Status")


def test_stale_if_error_on_a_500(proxy, origin):
    answers = [reply(b"good", headers=[("Cache-Control", "max-age=0, stale-if-error=600"),
                                       ("ETag", '"e"')]),
               reply(b"broken", status="500 Internal Server Error")]
    origin.handler = lambda r: answers.pop(0)
    p = proxy()
    fetch(p, origin.url("/500"))
    r = fetch(p, origin.url("/500"))
    assert r.status == 200 and r.body == b"good"
    assert "fwd-status=500" in r.header("Cache-Status")


def test_must_revalidate_without_origin_is_504(proxy, origin_factory):
    o = origin_factory()
    o.reply(reply(b"x", headers=[("Cache-Control", "max-age=0, must-revalidate"),
                                 ("ETag", '"e"')]))
    p = proxy(**{"max-stale-on-failure": 3600})
    url = o.url("/mr")
    fetch(p, url)
    o.close()
    assert fetch(p, url).status == 504


def test_only_if_cached_miss_is_504(proxy, origin):
    p = proxy()
    r = fetch(p, origin.url("/oic"), headers=[("Cache-Control", "only-if-cached")])
    assert r.status == 504
    assert count(origin) == 0


# ---- conditionals and ranges from the cache ----

def test_conditional_request_answered_from_cache(proxy, origin):
    origin.reply(reply(b"body", headers=[("Cache-Control", "max-age=600"), ("ETag", '"abc"')]))
    p = proxy()
    fetch(p, origin.url("/cond"))
    r = fetch(p, origin.url("/cond"), headers=[("If-None-Match", 'W/"abc"')])
    assert r.status == 304 and r.body == b""
    assert r.header("ETag") == '"abc"'
    r = fetch(p, origin.url("/cond"), headers=[("If-None-Match", '"other"')])
    assert r.status == 200 and r.body == b"body"
    assert count(origin) == 1


def test_range_from_cache(proxy, origin):
    origin.reply(reply(b"0123456789", headers=[("Cache-Control", "max-age=600")]))
    p = proxy()
    fetch(p, origin.url("/range"))
    r = fetch(p, origin.url("/range"), headers=[("Range", "bytes=2-4")])
    assert r.status == 206 and r.body == b"234"
    assert r.header("Content-Range") == "bytes 2-4/10"
    assert count(origin) == 1


def test_206_from_origin_is_not_stored(proxy, origin):
    origin.reply(b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-1/10\r\n"
                 b"Cache-Control: max-age=600\r\nContent-Length: 2\r\n\r\n01")
    p = proxy()
    fetch(p, origin.url("/p"), headers=[("Range", "bytes=0-1")])
    fetch(p, origin.url("/p"))
    assert count(origin) == 2


# ---- invalidation ----

def test_post_invalidates(proxy, origin):
    origin.reply(reply(b"x", headers=[("Cache-Control", "max-age=600")]))
    p = proxy()
    url = origin.url("/inv")
    fetch(p, url)
    fetch(p, url)
    assert count(origin) == 1
    assert fetch(p, url, method="POST", body=b"data").status == 200
    fetch(p, url)
    assert count(origin) == 3


def test_purge_from_loopback(proxy, origin):
    origin.reply(reply(b"x", headers=[("Cache-Control", "max-age=600")]))
    p = proxy()
    url = origin.url("/purge")
    fetch(p, url)
    assert fetch(p, url, method="PURGE").status == 200
    assert fetch(p, url, method="PURGE").status == 404
    fetch(p, url)
    assert count(origin) == 2


def test_purge_from_another_address_is_405(proxy, origin):
    p = proxy(**{"allow-client": "127.0.0.0/8"})
    s = socket.create_connection(p.address, timeout=10, source_address=("127.0.0.2", 0))
    with s:
        s.sendall(req(origin.url("/x"), method="PURGE"))
        r, _ = read_response(s, method="PURGE")
    assert r.status == 405


# ---- the store: restarts, failures, sizes ----

def test_restart_keeps_the_cache(proxy, origin, tmp_path):
    origin.reply(reply(b"persistent", headers=[("Cache-Control", "max-age=600")]))
    cache = str(tmp_path / "shared-cache")
    p = proxy(**{"cache-dir": cache})
    fetch(p, origin.url("/keep"))
    assert p.stop() == 0
    p.stopped_by_test = True
    q = proxy(**{"cache-dir": cache})
    r = fetch(q, origin.url("/keep"))
    assert r.body == b"persistent"
    assert is_hit(r)
    assert count(origin) == 1


def test_truncated_response_is_never_stored(proxy, origin):
    answers = [[b"HTTP/1.1 200 OK\r\nCache-Control: max-age=600\r\nContent-Length: 100\r\n\r\n"
                b"only part", "close"],
               reply(b"complete", headers=[("Cache-Control", "max-age=600")])]
    origin.handler = lambda r: answers.pop(0)
    p = proxy()
    url = origin.url("/trunc")
    with connect(p.address) as s:
        s.sendall(req(url))
        s.settimeout(10)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    assert data.endswith(b"only part")
    assert fetch(p, url).body == b"complete"
    assert count(origin) == 2


def test_reset_mid_body_leaves_the_old_entry(proxy, origin):
    answers = [reply(b"old entry", headers=[("Cache-Control", "max-age=0"), ("ETag", '"1"')]),
               [b"HTTP/1.1 200 OK\r\nCache-Control: max-age=600\r\nETag: \"2\"\r\n"
                b"Content-Length: 100\r\n\r\npart", "close"],
               b"HTTP/1.1 304 Not Modified\r\nETag: \"1\"\r\nCache-Control: max-age=600\r\n\r\n"]
    origin.handler = lambda r: answers.pop(0)
    p = proxy()
    url = origin.url("/reset")
    fetch(p, url)
    with connect(p.address) as s:
        s.sendall(req(url))
        s.settimeout(10)
        while s.recv(65536):
            pass
    r = fetch(p, url)
    assert r.body == b"old entry"
    assert origin.requests[2].header("If-None-Match") == '"1"'


def test_larger_than_max_object_size_streams_and_is_not_stored(proxy, origin):
    size = 100 << 20
    head = ("HTTP/1.1 200 OK\r\nCache-Control: max-age=600\r\n"
            "Content-Length: %d\r\n\r\n" % size).encode()
    block = b"z" * (1 << 20)
    origin.handler = lambda r: head + block * 100
    p = proxy(**{"max-object-size": "1M"})
    url = origin.url("/big")
    with connect(p.address) as s:
        s.sendall(req(url))
        s.settimeout(30)
        got = 0
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += s.recv(65536)
        got = len(buf) - buf.index(b"\r\n\r\n") - 4
        while got < size:
            chunk = s.recv(1 << 20)
            assert chunk
            got += len(chunk)
    assert got == size
    small = reply(b"s", headers=[("Cache-Control", "max-age=600")])
    origin.handler = lambda r: small
    assert fetch(p, url).body == b"s"
    assert count(origin) == 2


def test_concurrent_misses_cost_one_origin_request(proxy, origin):
    gate = threading.Event()

    def slow(r):
        gate.wait(10)
        return reply(b"collapsed", headers=[("Cache-Control", "max-age=600")])

    origin.handler = slow
    p = proxy()
    url = origin.url("/cf")
    results = []

    def one():
        results.append(fetch(p, url))

    threads = [threading.Thread(target=one) for _ in range(20)]
    for t in threads:
        t.start()
    origin.wait_requests(1)
    # The other 19 say in the event log that they wait for the filler.
    deadline = time.time() + 10
    while time.time() < deadline and p.events().count("waits for the fill") < 19:
        time.sleep(0.01)
    assert p.events().count("waits for the fill") == 19
    gate.set()
    for t in threads:
        t.join(20)
    assert len(results) == 20
    assert all(r.status == 200 and r.body == b"collapsed" for r in results)
    assert count(origin) == 1


def test_stale_while_revalidate_serves_stale_then_revalidates_once(proxy, origin):
    answers = [reply(b"swr body", headers=[("Cache-Control", "max-age=1, stale-while-revalidate=600"),
                                           ("Age", "5"), ("ETag", '"s1"')]),
               b"HTTP/1.1 304 Not Modified\r\nETag: \"s1\"\r\nCache-Control: max-age=600\r\n\r\n"]
    origin.handler = lambda r: answers.pop(0)
    p = proxy()
    url = origin.url("/swr")
    fetch(p, url)
    r = fetch(p, url)
    assert r.status == 200 and r.body == b"swr body"
    assert r.header("Cache-Status").startswith("glassproxy; hit; ttl=-")
    # The background revalidation has its own access line.
    lines = p.access_lines(3)
    assert [l.split()[-1] for l in lines[1:3]] == ["STALE", "REFRESH-UNMODIFIED+STORED"]
    assert origin.requests[1].header("If-None-Match") == '"s1"'
    p.fetched += 1
    r = fetch(p, url)
    assert r.body == b"swr body" and is_hit(r)
    assert count(origin) == 2


# ---- counters on the status page (issue #12) ----

def status_json(p):
    import json
    r = p.request(b"GET /glassproxy/status/json HTTP/1.1\r\nHost: x\r\n\r\n")
    assert r.status == 200
    return json.loads(r.body)


def test_status_page_counts_hits_misses_and_stores(proxy, origin):
    origin.handler = lambda r: reply(b"counted body",
                                     headers=[("Cache-Control", "max-age=600")])
    p = proxy()
    for i in range(3):
        fetch(p, origin.url("/n%d" % i))          # 3 misses, 3 stores
    for _ in range(2):
        for i in range(3):
            assert is_hit(fetch(p, origin.url("/n%d" % i)))  # 6 hits
    fetch(p, origin.url("/post"), method="POST", body=b"x")  # not a lookup
    c = status_json(p)["cache"]
    assert (c["hits"], c["misses"], c["stores"]) == (6, 3, 3)
    assert c["bytes_stored"] == 3 * len(b"counted body")
    assert c["entries"] == 3 and c["size_bytes"] > 3 * len(b"counted body")
    html = p.request(get("http://glassproxy.status/")).body.decode()
    assert '<td class="n" id="cache_hits">6</td>' in html
    assert '<td class="n" id="cache_misses">3</td>' in html
    assert '<td class="n" id="cache_entries">3</td>' in html
    assert 'id="cache_hit_ratio">66.7%</td>' in html
    assert "Fault injection" not in html
    metrics = p.request(get("http://glassproxy.status/metrics")).body.decode()
    assert "glassproxy_cache_hits_total 6\n" in metrics
    assert "glassproxy_cache_misses_total 3\n" in metrics
    assert "glassproxy_cache_entries 3\n" in metrics


def test_status_page_counts_revalidations_and_evictions(proxy, origin):
    answers = [reply(b"a" * 4000, headers=[("Cache-Control", "max-age=0"), ("ETag", '"1"')]),
               b"HTTP/1.1 304 Not Modified\r\nETag: \"1\"\r\n\r\n"]
    origin.handler = lambda r: answers.pop(0) if answers else \
        reply(b"b" * 4000, headers=[("Cache-Control", "max-age=600")])
    p = proxy(**{"cache-size": "10K"})
    fetch(p, origin.url("/r"))
    assert fetch(p, origin.url("/r")).body == b"a" * 4000   # revalidated
    for i in range(4):                                        # evicts
        fetch(p, origin.url("/e%d" % i))
    c = status_json(p)["cache"]
    assert c["revalidations"] == 1
    assert c["hits"] == 1 and c["misses"] == 5
    assert c["evictions"] >= 2 and c["bytes_evicted"] > 2 * 4000
    assert c["size_bytes"] <= 10 * 1024


def test_status_page_lists_active_fault_rules(proxy, origin):
    p = proxy(fault=["net.recv[origin]=short:16"], **{"fault-seed": "5"})
    origin.reply(reply(b"x"))
    assert fetch(p, origin.url("/f")).status == 200
    html = p.request(get("http://glassproxy.status/")).body.decode()
    assert "Fault injection active" in html
    assert "seed=5" in html
    assert "net.recv[origin]=short:16 hits=" in html


def test_status_page_counts_auth_denials(proxy, origin):
    import json
    import os
    from conftest import ROOT
    p = proxy(**{"auth-file": os.path.join(ROOT, "fixtures", "auth", "good.htpasswd")})
    for _ in range(2):
        assert p.request(get(origin.url("/needs-auth"))).status == 407
    p.access_lines(2)
    r = p.request(get("http://glassproxy.status/json"))
    assert r.status == 200 and json.loads(r.body)["denials"]["auth"] == 2


# ---- the gaps: all ETags, 304 selection, HEAD and passed 304s ----

def not_modified(*headers):
    return ("HTTP/1.1 304 Not Modified\r\n" +
            "".join("%s: %s\r\n" % h for h in headers) + "\r\n").encode()


def two_variants(p, origin, url, cc="max-age=0"):
    """Store an English and a French variant of url (ETags "en1", "fr1")."""
    for lang in ("en", "fr"):
        origin.handler = lambda r, lang=lang: reply(
            ("body-%s" % lang).encode(),
            headers=[("Cache-Control", cc), ("Vary", "Accept-Language"),
                     ("ETag", '"%s1"' % lang)])
        assert fetch(p, url, headers=[("Accept-Language", lang)]).body == \
            ("body-%s" % lang).encode()


def inm_tags(r):
    return sorted(t.strip() for t in (r.header("If-None-Match") or "").split(","))


def test_revalidation_sends_every_variants_etag(proxy, origin):
    p = proxy()
    url = origin.url("/tags")
    two_variants(p, origin, url)
    origin.handler = lambda r: not_modified(("ETag", '"en1"'), ("X-Fresh", "yes"),
                                            ("Cache-Control", "max-age=600"))
    r = fetch(p, url, headers=[("Accept-Language", "en")])
    assert r.status == 200 and r.body == b"body-en"
    assert r.header("X-Fresh") == "yes"
    assert inm_tags(origin.requests[2]) == ['"en1"', '"fr1"']
    # the freshened English variant is now a hit; the French one is not
    assert is_hit(fetch(p, url, headers=[("Accept-Language", "en")]))
    assert count(origin) == 3


def test_304_selects_the_variant_it_names(proxy, origin):
    p = proxy()
    url = origin.url("/sel")
    two_variants(p, origin, url)
    # English is asked for, but the origin says the French one is current
    origin.handler = lambda r: not_modified(("ETag", '"fr1"'),
                                            ("Cache-Control", "max-age=600"))
    r = fetch(p, url, headers=[("Accept-Language", "en")])
    assert r.status == 200 and r.body == b"body-fr"
    assert "fwd-status=304" in r.header("Cache-Status")


def test_vary_miss_revalidates_with_the_stored_etags(proxy, origin):
    p = proxy()
    url = origin.url("/vm")
    two_variants(p, origin, url, cc="max-age=600")
    origin.handler = lambda r: not_modified(("ETag", '"en1"'),
                                            ("Cache-Control", "max-age=600"))
    r = fetch(p, url, headers=[("Accept-Language", "de")])
    assert r.status == 200 and r.body == b"body-en"
    assert inm_tags(origin.requests[2]) == ['"en1"', '"fr1"']


def test_304_selecting_nothing_asks_again_unconditionally(proxy, origin):
    answers = [reply(b"stored", headers=[("Cache-Control", "max-age=0"), ("ETag", '"s1"')]),
               not_modified(("ETag", '"unknown"')),
               reply(b"fresh copy", headers=[("Cache-Control", "max-age=600"), ("ETag", '"s2"')])]
    origin.handler = lambda r: answers.pop(0)
    p = proxy()
    url = origin.url("/nothing")
    fetch(p, url)
    r = fetch(p, url, headers=[("If-None-Match", '"s1"')])
    assert r.status == 200 and r.body == b"fresh copy"
    assert origin.requests[1].header("If-None-Match") == '"s1"'
    third = origin.requests[2]
    for name in ("If-None-Match", "If-Modified-Since"):
        assert third.header(name) is None
    assert count(origin) == 3
    assert is_hit(fetch(p, url))


def test_head_response_refreshes_the_stored_get(proxy, origin):
    p = proxy()
    url = origin.url("/headfresh")
    origin.reply(reply(b"12345", headers=[("Cache-Control", "max-age=0"),
                                          ("ETag", '"h1"'), ("X-V", "1")]))
    fetch(p, url)
    origin.reply(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nETag: \"h1\"\r\nX-V: 2\r\n"
                 b"Cache-Control: max-age=600\r\n\r\n")
    r = fetch(p, url, method="HEAD")
    assert r.status == 200 and r.header("X-V") == "2"
    assert origin.requests[1].method == "HEAD"
    r = fetch(p, url)
    assert r.body == b"12345" and r.header("X-V") == "2" and is_hit(r)
    assert count(origin) == 2


def test_head_with_other_validators_does_not_refresh(proxy, origin):
    p = proxy()
    url = origin.url("/headother")
    origin.reply(reply(b"12345", headers=[("Cache-Control", "max-age=0"), ("ETag", '"h1"')]))
    fetch(p, url)
    origin.reply(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nETag: \"h2\"\r\n"
                 b"Cache-Control: max-age=600\r\n\r\n")
    assert fetch(p, url, method="HEAD").status == 200
    origin.reply(reply(b"1234567", headers=[("Cache-Control", "max-age=600"), ("ETag", '"h2"')]))
    assert fetch(p, url).body == b"1234567"
    assert count(origin) == 3


def test_passed_conditional_304_freshens_the_entry(proxy, origin):
    p = proxy()
    url = origin.url("/passed")
    origin.reply(reply(b"weak", headers=[("Cache-Control", "max-age=600"),
                                         ("ETag", 'W/"w1"'), ("X-V", "1")]))
    fetch(p, url)
    # If-Match never holds for a weak tag: not the cache's to answer
    origin.reply(not_modified(("ETag", 'W/"w1"'), ("X-V", "2"),
                              ("Cache-Control", "max-age=600")))
    r = fetch(p, url, headers=[("If-Match", '"zzz"'), ("If-None-Match", 'W/"w1"')])
    assert r.status == 304
    assert origin.requests[1].header("If-Match") == '"zzz"'
    r = fetch(p, url)
    assert r.body == b"weak" and r.header("X-V") == "2" and is_hit(r)
    assert count(origin) == 2


# ---- the harness list, the rest ----

def test_port_is_part_of_the_key(proxy, origin_factory):
    a, b = origin_factory(), origin_factory()
    for o, text in ((a, b"from a"), (b, b"from b")):
        o.reply(reply(text, headers=[("Cache-Control", "max-age=600")]))
    p = proxy()
    assert fetch(p, a.url("/same")).body == b"from a"
    assert fetch(p, b.url("/same")).body == b"from b"
    assert fetch(p, a.url("/same")).body == b"from a"
    assert fetch(p, b.url("/same")).body == b"from b"
    assert (count(a), count(b)) == (1, 1)


def test_scheme_and_host_case_and_default_port(proxy, origin):
    """http://127.0.0.1:P/x and HTTP://127.0.0.1:P/x are one key; an
    https:// URL is never answered from the http:// entry."""
    origin.reply(reply(b"one", headers=[("Cache-Control", "max-age=600")]))
    p = proxy()
    url = origin.url("/k")
    fetch(p, url)
    r = fetch(p, "HTTP" + url[4:])
    assert is_hit(r) and r.body == b"one"
    r = fetch(p, "https" + url[4:])
    assert r.status != 200 and count(origin) == 1


def test_expiry_then_if_modified_since_revalidation(proxy, origin):
    lm = http_date(time.time() - 3600)
    answers = [reply(b"dated", headers=[("Cache-Control", "max-age=0"),
                                        ("Last-Modified", lm), ("X-V", "1")]),
               not_modified(("X-V", "2"), ("Cache-Control", "max-age=600"))]
    origin.handler = lambda r: answers.pop(0)
    p = proxy()
    url = origin.url("/ims")
    fetch(p, url)
    r = fetch(p, url)
    assert r.status == 200 and r.body == b"dated" and r.header("X-V") == "2"
    assert origin.requests[1].header("If-Modified-Since") == lm
    assert origin.requests[1].header("If-None-Match") is None
    assert is_hit(fetch(p, url))
    assert count(origin) == 2


@pytest.mark.parametrize("field", ["Location", "Content-Location"])
def test_unsafe_method_invalidates_same_origin_locations(proxy, origin, field):
    origin.handler = lambda r: reply(
        b"ok", headers=[(field, "/other")] if r.method == "POST" else
        [("Cache-Control", "max-age=600")])
    p = proxy()
    other = origin.url("/other")
    fetch(p, other)
    assert is_hit(fetch(p, other))
    fetch(p, origin.url("/form"), method="POST", body=b"x")
    assert not is_hit(fetch(p, other))
    assert count(origin) == 3


def test_other_origin_location_is_not_invalidated(proxy, origin):
    origin.handler = lambda r: reply(
        b"ok", headers=[("Location", "http://127.0.0.9:1/other")] if r.method == "POST"
        else [("Cache-Control", "max-age=600")])
    p = proxy()
    fetch(p, origin.url("/other"))
    fetch(p, origin.url("/form"), method="POST", body=b"x")
    assert is_hit(fetch(p, origin.url("/other")))


def test_vary_by_accept_encoding(proxy, origin):
    origin.handler = lambda r: reply(
        ("enc=%s" % r.header("Accept-Encoding")).encode(),
        headers=[("Cache-Control", "max-age=600"), ("Vary", "Accept-Encoding")])
    p = proxy()
    url = origin.url("/ae")
    for enc in ("gzip", "identity", "gzip", "identity"):
        assert fetch(p, url, headers=[("Accept-Encoding", enc)]).body == \
            ("enc=%s" % enc).encode()
    # whitespace is normalised: "gzip,  br" and "gzip, br" are one variant
    fetch(p, url, headers=[("Accept-Encoding", "gzip, br")])
    assert is_hit(fetch(p, url, headers=[("Accept-Encoding", "gzip,  br")]))
    assert count(origin) == 3


def test_vary_star_is_never_served(proxy, origin):
    origin.reply(reply(b"x", headers=[("Cache-Control", "max-age=600"), ("Vary", "*")]))
    p = proxy()
    fetch(p, origin.url("/star"))
    fetch(p, origin.url("/star"))
    assert count(origin) == 2


def test_only_if_cached_hit_is_served(proxy, origin):
    origin.reply(reply(b"x", headers=[("Cache-Control", "max-age=600")]))
    p = proxy()
    fetch(p, origin.url("/oic2"))
    r = fetch(p, origin.url("/oic2"), headers=[("Cache-Control", "only-if-cached")])
    assert r.status == 200 and is_hit(r)
    origin.reply(reply(b"x", headers=[("Cache-Control", "max-age=0"), ("ETag", '"e"')]))
    fetch(p, origin.url("/oic3"))
    r = fetch(p, origin.url("/oic3"), headers=[("Cache-Control", "only-if-cached")])
    assert r.status == 504
    assert count(origin) == 2


# ---- conformance sweep (cache-tests.fyi's categories, from the proxy's side) ----

def test_age_adds_the_upstream_age(proxy, origin):
    origin.reply(reply(b"x", headers=[("Cache-Control", "max-age=600"), ("Age", "100")]))
    p = proxy()
    fetch(p, origin.url("/age"))
    r = fetch(p, origin.url("/age"))
    assert is_hit(r) and int(r.header("Age")) >= 100
    assert "ttl=" in r.header("Cache-Status")
    ttl = int(r.header("Cache-Status").split("ttl=")[1].split(";")[0])
    assert ttl <= 500


def test_age_past_max_age_is_stale(proxy, origin):
    origin.reply(reply(b"x", headers=[("Cache-Control", "max-age=600"), ("Age", "700")]))
    p = proxy()
    fetch(p, origin.url("/old"))
    fetch(p, origin.url("/old"))
    assert count(origin) == 2


def test_max_age_wins_over_expires(proxy, origin):
    now = time.time()
    origin.reply(reply(b"x", headers=[("Cache-Control", "max-age=600"),
                                      ("Expires", http_date(now - 3600)),
                                      ("Date", http_date(now))]))
    p = proxy()
    fetch(p, origin.url("/mx"))
    assert is_hit(fetch(p, origin.url("/mx")))
    origin.reply(reply(b"x", headers=[("Cache-Control", "max-age=0"),
                                      ("Expires", http_date(now + 3600)),
                                      ("Date", http_date(now))]))
    fetch(p, origin.url("/mx0"))
    fetch(p, origin.url("/mx0"))
    assert count(origin) == 3


def test_expires_before_date_is_stale(proxy, origin):
    now = time.time()
    origin.reply(reply(b"x", headers=[("Expires", http_date(now - 10)),
                                      ("Date", http_date(now))]))
    p = proxy()
    fetch(p, origin.url("/exp"))
    fetch(p, origin.url("/exp"))
    assert count(origin) == 2


def test_s_maxage_zero_beats_max_age(proxy, origin):
    origin.reply(reply(b"x", headers=[("Cache-Control", "max-age=600, s-maxage=0"),
                                      ("ETag", '"e"')]))
    p = proxy()
    fetch(p, origin.url("/sm"))
    fetch(p, origin.url("/sm"))
    assert count(origin) == 2


def test_no_cache_response_is_stored_and_revalidated(proxy, origin):
    answers = [reply(b"nc", headers=[("Cache-Control", "no-cache, max-age=600"),
                                     ("ETag", '"n"')]),
               not_modified(("ETag", '"n"'))]
    origin.handler = lambda r: answers.pop(0)
    p = proxy()
    fetch(p, origin.url("/nc"))
    r = fetch(p, origin.url("/nc"))
    assert r.body == b"nc" and origin.requests[1].header("If-None-Match") == '"n"'
    assert "fwd-status=304" in r.header("Cache-Status")


def test_request_no_cache_revalidates_a_fresh_entry(proxy, origin):
    answers = [reply(b"rq", headers=[("Cache-Control", "max-age=600"), ("ETag", '"q"')]),
               not_modified(("ETag", '"q"'))]
    origin.handler = lambda r: answers.pop(0)
    p = proxy()
    fetch(p, origin.url("/rnc"))
    for headers in ([("Cache-Control", "no-cache")],):
        r = fetch(p, origin.url("/rnc"), headers=headers)
        assert r.body == b"rq"
    assert origin.requests[1].header("If-None-Match") == '"q"'


def test_pragma_no_cache_without_cache_control(proxy, origin):
    origin.reply(reply(b"x", headers=[("Cache-Control", "max-age=600")]))
    p = proxy()
    fetch(p, origin.url("/pr"))
    fetch(p, origin.url("/pr"), headers=[("Pragma", "no-cache")])
    assert count(origin) == 2


def test_request_max_age_and_min_fresh(proxy, origin):
    origin.reply(reply(b"x", headers=[("Cache-Control", "max-age=600"), ("Age", "100")]))
    p = proxy()
    fetch(p, origin.url("/rma"))
    fetch(p, origin.url("/rma"), headers=[("Cache-Control", "max-age=50")])
    assert count(origin) == 2
    assert is_hit(fetch(p, origin.url("/rma"), headers=[("Cache-Control", "max-age=5000")]))
    fetch(p, origin.url("/rma"), headers=[("Cache-Control", "min-fresh=550")])
    assert count(origin) == 3


def test_max_stale_serves_a_stale_entry(proxy, origin):
    origin.reply(reply(b"x", headers=[("Cache-Control", "max-age=1"), ("Age", "100")]))
    p = proxy()
    fetch(p, origin.url("/ms"))
    r = fetch(p, origin.url("/ms"), headers=[("Cache-Control", "max-stale=1000")])
    assert r.status == 200 and count(origin) == 1
    fetch(p, origin.url("/ms"), headers=[("Cache-Control", "max-stale=10")])
    assert count(origin) == 2


def test_no_cache_field_is_not_served_from_cache(proxy, origin):
    origin.reply(reply(b"x", headers=[("Cache-Control", 'max-age=600, no-cache="X-Secret"'),
                                      ("X-Secret", "s"), ("X-Public", "p")]))
    p = proxy()
    fetch(p, origin.url("/ncf"))
    r = fetch(p, origin.url("/ncf"))
    assert is_hit(r) and r.header("X-Secret") is None and r.header("X-Public") == "p"


def test_cache_status_fields(proxy, origin):
    origin.reply(reply(b"x", headers=[("Cache-Control", "max-age=600")]))
    p = proxy()
    miss = fetch(p, origin.url("/cs")).header("Cache-Status")
    assert miss.startswith("glassproxy; fwd=uri-miss") and "stored" in miss
    hit = fetch(p, origin.url("/cs")).header("Cache-Status")
    assert hit.startswith("glassproxy; hit; ttl=")
    post = fetch(p, origin.url("/cs"), method="POST", body=b"x").header("Cache-Status")
    assert "fwd=method" in post or "fwd=bypass" in post
    origin.reply(reply(b"x", headers=[("Cache-Control", "no-store")]))
    ns = fetch(p, origin.url("/cs-ns")).header("Cache-Status")
    assert "detail=no-store" in ns and "stored" not in ns


# ---- issue 13: small hits in one send, large ones by sendfile ----

FIRST_READ = 16384  # CACHE_STORE_FIRST_READ (include/glassproxy/cache.h)


def entry_sizes(cache_dir):
    """The sizes of the committed entries (DIR/ab/cd/<hash>-<variant>)."""
    return sorted(os.path.getsize(os.path.join(d, f))
                  for d, _, files in os.walk(cache_dir)
                  if os.path.basename(d) != "tmp" for f in files)


def pattern(n):
    return bytes((i * 7 + i // 251) & 255 for i in range(n))


def test_small_and_large_hits_are_byte_identical(proxy, origin):
    """An entry of up to FIRST_READ bytes (header block + body) is sent
    from the store's first read with its head; past that, the rest goes by
    sendfile.  Either way, for GET, Range and HEAD, the bytes are the
    origin's: a 1 KiB body, one that fills the first read exactly, one a
    byte over, and a 70 KB one."""
    p = proxy()
    cc = [("Cache-Control", "max-age=600")]
    probe = pattern(12000)  # as many Content-Length digits as the two below
    origin.reply(reply(probe, headers=cc))
    fetch(p, origin.url("/h0"))
    (size,) = entry_sizes(p.dir / "cache")
    header = size - len(probe)  # the same for /h2 and /h3: same lengths
    sizes = {"/h1": 1024, "/h2": FIRST_READ - header, "/h3": FIRST_READ - header + 1,
             "/h4": 70000}
    for path, n in sizes.items():
        body = pattern(n)
        origin.reply(reply(body, headers=cc))
        first, hit = fetch(p, origin.url(path)), fetch(p, origin.url(path))
        assert first.body == body and hit.body == body and is_hit(hit), path
        assert hit.header("Content-Length") == str(n)
        for lo, hi in ((0, 0), (n - 10, n - 1), (n // 2, n - 1)):
            r = fetch(p, origin.url(path), headers=[("Range", "bytes=%d-%d" % (lo, hi))])
            assert r.status == 206 and r.body == body[lo:hi + 1], (path, lo, hi)
        head = fetch(p, origin.url(path), method="HEAD")
        assert head.status == 200 and head.body == b"" and is_hit(head)
        assert head.header("Content-Length") == str(n)
    sizes_now = entry_sizes(p.dir / "cache")  # the boundary was where we meant
    assert FIRST_READ in sizes_now and FIRST_READ + 1 in sizes_now
    assert count(origin) == len(sizes) + 1


# ---- issue 13: small entries served from the store's memory copy ----

def hits(p, url, n=3):
    """n hits of url (the first makes the store's memory copy of a small
    entry, the others are served from it): their bodies and X-V fields."""
    out = []
    for _ in range(n):
        r = fetch(p, url)
        assert r.status == 200 and is_hit(r), r.header("Cache-Status")
        out.append((r.body, r.header("X-V")))
    return out


def test_memory_copy_never_outlives_its_entry(proxy, origin):
    """Every way an entry is replaced or dropped (a 200 replacing it, a
    304 updating its header, PURGE, a POST's invalidation) also drops the
    store's memory copy of it: the hits that follow give the new bytes,
    never the old copy's."""
    fresh = ("Cache-Control", "max-age=600")
    answers = []
    origin.handler = lambda r: answers.pop(0)
    p = proxy()
    url = origin.url("/copy")
    answers.append(reply(b"one", headers=[fresh, ("ETag", '"1"'), ("X-V", "1")]))
    fetch(p, url)
    assert hits(p, url) == [(b"one", "1")] * 3
    # A forced reload gets a new 200: it replaces the entry.
    answers.append(reply(b"two!", headers=[fresh, ("ETag", '"2"'), ("X-V", "2")]))
    r = fetch(p, url, headers=[("Cache-Control", "no-cache")])
    assert r.body == b"two!"
    assert hits(p, url) == [(b"two!", "2")] * 3
    # A 304 updates its header: the same body with the new fields.
    answers.append(not_modified(fresh, ("ETag", '"2"'), ("X-V", "3")))
    r = fetch(p, url, headers=[("Cache-Control", "no-cache")])
    assert r.body == b"two!" and r.header("X-V") == "3"
    assert hits(p, url) == [(b"two!", "3")] * 3
    # PURGE, then a POST's invalidation: each time the origin's new bytes.
    assert fetch(p, url, method="PURGE").status == 200
    answers.append(reply(b"three", headers=[fresh, ("X-V", "4")]))
    assert fetch(p, url).body == b"three"
    assert hits(p, url) == [(b"three", "4")] * 3
    answers.append(reply(b"posted"))
    assert fetch(p, url, method="POST", body=b"data").status == 200
    answers.append(reply(b"four", headers=[fresh, ("X-V", "5")]))
    assert fetch(p, url).body == b"four"
    assert hits(p, url) == [(b"four", "5")] * 3
    assert count(origin) == 6


def test_stale_entry_refreshed_then_served_from_memory(proxy, origin):
    """An entry stale at once (max-age=0) is opened, and copied, by its
    revalidation; the 304 that freshens it commits a new generation, and
    the fresh hits after it carry the 304's fields."""
    answers = [reply(b"dated body", headers=[("Cache-Control", "max-age=0"),
                                             ("ETag", '"d"'), ("X-V", "old")]),
               not_modified(("Cache-Control", "max-age=600"), ("ETag", '"d"'),
                            ("X-V", "new"))]
    origin.handler = lambda r: answers.pop(0)
    p = proxy()
    url = origin.url("/stale-copy")
    fetch(p, url)
    r = fetch(p, url)
    assert r.body == b"dated body" and r.header("X-V") == "new"
    assert hits(p, url, 4) == [(b"dated body", "new")] * 4
    assert count(origin) == 2
