"""
Data-driven end-to-end cases: the reader and the runner of fixtures/cases/*.case.

The format is documented, with a full example, in harness/README.md.  In
short: `key: value` lines; a line that starts with whitespace continues the
previous value; file line ends are never bytes (write \\r\\n); escapes
\\r \\n \\t \\0 \\s \\\\ \\xHH; placeholders %ORIGIN% %PROXY% (host:port) and
friends; {{N*TEXT}} repeats TEXT N times ({i} is the index).

    case = load(path)                     # a Case, or ValueError naming the line
    run(case, start_proxy, tmp_path)      # pytest.skip / AssertionError / None

The runner starts the named origin from peers.py and the proxy, plays the
client steps, reads the responses the case expects, closes the client, stops
the proxy with SIGTERM (so its logs are complete and every upstream socket is
closed), stops the origin (joining its threads), and only then compares: so
nothing is compared while something could still change.
"""
import inspect
import os
import re
import shlex
import signal
import subprocess

import pytest

import peers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES_DIR = os.path.join(ROOT, "fixtures", "cases")

TEXT_KEYS = {"title", "checks"}
REPEATED = {"proxy", "hosts", "faults", "reply", "client", "expect-log",
            "expect-client-match", "expect-client-no-match", "expect-origin-match",
            "expect-origin-no-match", "expect-event-match"}
BYTES_KEYS = {"reply", "expect-client", "expect-origin", "expect-client-body-decoded"}
REGEX_KEYS = {"expect-client-match", "expect-client-no-match", "expect-origin-match",
              "expect-origin-no-match", "expect-event-match"}
WORD_KEYS = {"origin", "expect-status", "expect-client-closed", "expect-origin-requests",
             "expect-origin-connections"}
KNOWN = TEXT_KEYS | REPEATED | BYTES_KEYS | REGEX_KEYS | WORD_KEYS
READ_STEPS = {"read", "new-connection"}

_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|[rnt0s\\])")
_SIMPLE = {"r": "\r", "n": "\n", "t": "\t", "0": "\0", "s": " ", "\\": "\\"}
_REPEAT = re.compile(r"\{\{(\d+)\*((?:(?!\{\{).)*?)\}\}", re.S)  # innermost


def unescape(text):
    """Case-file escapes to bytes (latin-1: one character, one byte)."""
    def one(m):
        e = m.group(1)
        return chr(int(e[1:], 16)) if e[0] == "x" else _SIMPLE[e]
    if re.search(r"\\(?!x[0-9a-fA-F]{2}|[rnt0s\\])", text):
        raise ValueError("unknown escape in %r" % text[:60])
    return _ESCAPE.sub(one, text).encode("latin-1")


def expand_repeats(text):
    """{{N*TEXT}} -> TEXT N times, {i} in it counting from 0; nests."""
    while True:
        out = _REPEAT.sub(lambda m: "".join(m.group(2).replace("{i}", str(i))
                                            for i in range(int(m.group(1)))), text)
        if out == text:
            return out
        text = out


class Case:
    def __init__(self, path):
        self.path = path
        self.name = os.path.basename(path)[:-len(".case")]
        self.fields = {}      # key -> text (single keys) or list of texts
        self.steps = []       # (name, params, data text) client steps in order

    def get(self, key, default=None):
        return self.fields.get(key, default)


def _entries(path):
    """(line number, key, first-line text, [continuation lines])."""
    entries = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n").rstrip()
            if not line or line.startswith("#"):
                continue
            if line[0] in " \t":
                if not entries:
                    raise ValueError("%s:%d: continuation before any key" % (path, n))
                entries[-1][3].append(line.strip())
                continue
            key, sep, value = line.partition(":")
            if not sep or key.strip() not in KNOWN:
                raise ValueError("%s:%d: unknown key %r (known: %s)"
                                 % (path, n, key, ", ".join(sorted(KNOWN))))
            entries.append((n, key.strip(), value.strip(), []))
    return entries


def _check_params(where, func, params, skip):
    """A parameter the behaviour does not take is a typo: say so at load."""
    takes = [n for n in inspect.signature(func).parameters][skip:]
    for name in params:
        if name not in takes:
            raise ValueError("%s: %r takes %s, not %r" % (
                where, func.__name__, ", ".join(takes) or "no parameters", name))


def _check_text(where, key, text):
    """Bad escapes and bad patterns fail at load, naming the line."""
    try:
        if key in BYTES_KEYS or key == "client":
            unescape(expand_repeats(text))
        elif key in REGEX_KEYS:
            re.compile(expand_repeats(text).encode("latin-1"), re.S)
    except (ValueError, re.error) as e:
        raise ValueError("%s: %s: %s" % (where, key, e))


def load(path):
    case = Case(path)
    for n, key, first, more in _entries(path):
        if key == "client":
            words = shlex.split(first)
            if not words or (words[0] not in peers.CLIENTS and words[0] not in READ_STEPS):
                raise ValueError("%s:%d: no client step %r (have: %s)" % (
                    path, n, first, ", ".join(sorted(set(peers.CLIENTS) | READ_STEPS))))
            params = dict(w.split("=", 1) for w in words[1:])
            if words[0] in peers.CLIENTS:
                _check_params("%s:%d" % (path, n), peers.CLIENTS[words[0]], params, 2)
            case.steps.append((words[0], params, "".join(more)))
            _check_text("%s:%d" % (path, n), key, "".join(more))
            continue
        text = (" " if key in TEXT_KEYS else "").join([first] + more) if first else "".join(more)
        _check_text("%s:%d" % (path, n), key, text)
        if key in REPEATED:
            case.fields.setdefault(key, []).append(text)
        elif key in case.fields:
            raise ValueError("%s:%d: %s given twice" % (path, n, key))
        else:
            case.fields[key] = text
    if "title" not in case.fields:
        raise ValueError("%s: no title:" % path)
    spec = shlex.split(case.get("origin", "script"))
    if spec[0] != "none":
        if spec[0] not in peers.ORIGINS:
            raise ValueError("%s: no origin %r (have: none, %s)" % (path, spec[0], ", ".join(peers.ORIGINS)))
        _check_params(path, peers.ORIGINS[spec[0]], dict(w.split("=", 1) for w in spec[1:]), 1)
    return case


def all_cases():
    return sorted(os.path.join(CASES_DIR, f) for f in os.listdir(CASES_DIR)
                  if f.endswith(".case"))


_help_text = []


def binary_has_fault_option(binary):
    if not _help_text:
        out = subprocess.run([binary, "--help"], capture_output=True, timeout=30)
        _help_text.append(out.stdout.decode(errors="replace"))
    return "--fault" in _help_text[0]


# ---- running ----

class Run:
    """One run of a case: the peers, the proxy and what each saw."""

    def __init__(self, case, tmp_path):
        self.case = case
        self.tmp = tmp_path
        self.subst = {"%TMP%": str(tmp_path), "%ROOT%": ROOT}
        self.responses = []   # every response read, all connections, in order
        self.client_bytes = b""
        self.closed_by_proxy = None
        self.client = None
        self.send_errors = []
        self.client_ports = []  # "127.0.0.1:PORT" of each client connection

    def fill(self, text):
        for k, v in self.subst.items():
            text = text.replace(k, v)
        return text

    def bytes(self, text):
        return unescape(expand_repeats(self.fill(text)))

    def regex(self, text):
        pattern = text
        for k, v in self.subst.items():
            pattern = pattern.replace(k, re.escape(v))
        return re.compile(expand_repeats(pattern).encode("latin-1"), re.S)

    def start_origin(self):
        spec = shlex.split(self.case.get("origin", "script"))
        if spec[0] == "none":
            self.origin = peers.DeadOrigin()
        else:
            params = {k: unescape(v).decode("latin-1")
                      for k, v in (w.split("=", 1) for w in spec[1:])}
            self.origin = peers.PeerOrigin(spec[0], **params)
        self.subst.update({"%ORIGIN%": self.origin.authority,
                           "%ORIGIN_PORT%": str(self.origin.port)})

    def proxy_args(self):
        args = {}
        words = [w for line in self.case.get("proxy", []) for w in shlex.split(self.fill(line))]
        if self.case.get("hosts"):
            hosts = self.tmp / "hosts"
            hosts.write_text("".join(self.fill(l) + "\n" for l in self.case.get("hosts")))
            words += ["--hosts-file", str(hosts)]
        for spec in self.case.get("faults", []):
            words += ["--fault", self.fill(spec)]
        i = 0
        while i < len(words):
            if not words[i].startswith("--"):
                raise ValueError("%s: proxy: %r is not a --long-option" % (self.case.name, words[i]))
            key = words[i][2:]
            if i + 1 < len(words) and not words[i + 1].startswith("--"):
                args.setdefault(key, []).append(words[i + 1])
                i += 2
            else:
                args.setdefault(key, []).append(True)
                i += 1
        # Caching is the subject of the cache-*.case files only: the others
        # describe one exchange with the origin and run without a cache.
        if not self.case.name.startswith("cache-") and not any(
                k.startswith("cache-") for k in args):
            args.setdefault("no-cache", [True])
        return {k: v[0] if len(v) == 1 else v for k, v in args.items()}

    # the client side

    def connect(self):
        self.client = peers.ClientConn(self.proxy.address)
        self.client_ports.append("%s:%d" % self.client.sock.getsockname()[:2])
        self.methods = []

    def read_responses(self, n):
        """Read n more responses (fewer if the connection ends first)."""
        cl = self.client
        for _ in range(n):
            if cl.closed:
                return
            method = self.methods[0] if self.methods else "GET"
            r = peers.read_response(cl.stream, method)
            if r is None:
                return
            self.responses.append(r)
            if r.status >= 200 or r.status == 0:
                self.methods = self.methods[1:]
            if not r.complete:
                return

    def read_to_end(self):
        cl = self.client
        if cl.closed:
            return
        while cl.stream.fill():
            pass
        self.closed_by_proxy = not cl.stream.timed_out

    def play(self):
        self.connect()
        for name, params, data in self.case.steps:
            params = {k: unescape(v).decode("latin-1") for k, v in params.items()}
            if name == "read":
                self.read_responses(int(params.get("n", "1")))
            elif name == "new-connection":
                # Everything this connection still brings, to its end: the
                # proxy must close it (an error, Connection: close, or the
                # client hung up).
                self.read_responses(1 << 30)
                self.finish_connection()
                self.connect()
            else:
                raw = self.bytes(data)
                self.methods += [m.decode() for m in
                                 re.findall(rb"(?:^|\n)([A-Z]+) [^ \r\n]+ HTTP/", raw)]
                try:
                    peers.CLIENTS[name](self.client, raw, **params)
                except OSError as e:
                    # A misbehaving client does not care: go on reading.
                    self.send_errors.append("%s: %s" % (name, e))
        self.finish_connection()

    def finish_connection(self):
        want = len(self.statuses() or [])
        if want > len(self.responses):
            self.read_responses(want - len(self.responses))
        if self.case.get("expect-status") is None or self.case.get("expect-client-closed"):
            self.read_to_end()
        self.client_bytes += self.client.stream.log
        self.client.close()

    def statuses(self):
        text = self.case.get("expect-status")
        return None if text is None else expand_repeats(text).split()

    def log_entries(self):
        """The expected access lines as "OUTCOME STATUS", or None; one per
        expect-log line, and {{50*DIRECT 200\n}} stands for fifty."""
        texts = self.case.get("expect-log")
        if texts is None:
            return None
        entries = [" ".join(e.split()) for text in texts
                   for e in expand_repeats(text).split("\\n") if e.strip()]
        return [] if entries == ["nothing"] else entries

    # the whole run

    def go(self, start_proxy):
        self.start_origin()
        try:
            self.proxy = start_proxy(**self.proxy_args())
            self.subst.update({"%PROXY%": "%s:%d" % self.proxy.address,
                               "%PROXY_PORT%": str(self.proxy.port)})
            self.origin.replies = [self.bytes(r) for r in self.case.get("reply", [])]
            try:
                self.play()
                # A client that hung up does not wait for the proxy to finish
                # with its request: the access lines are the sign it has.
                self.proxy.access_lines(len(self.log_entries() or []))
            finally:
                if self.client:
                    self.client.close()
                # Stop before comparing: then the logs are complete and the
                # origin has seen every byte it ever will.
                self.proxy.signal(signal.SIGTERM)
                self.proxy.stop()
        finally:
            self.origin.close()


def _show(data, limit=3000):
    text = repr(data)
    return text if len(text) < limit else text[:limit] + "...(%d bytes)" % len(data)


def log_entry_matches(want, seen):
    """"A|B 502" accepts either outcome word: for races the case names,
    such as a reset that may land on the send or on the receive."""
    words, _, status = want.rpartition(" ")
    got_word, _, got_status = seen.rpartition(" ")
    return status == got_status and got_word in words.split("|")


def check_patterns(run, who, got):
    """expect-WHO-match: every pattern is found; -no-match: none is."""
    for pattern in run.case.get("expect-%s-match" % who, []):
        assert run.regex(pattern).search(got), \
            "%s bytes do not match %r:\n%s" % (who, pattern, _show(got))
    for pattern in run.case.get("expect-%s-no-match" % who, []):
        m = run.regex(pattern).search(got)
        assert not m, "%s bytes match %r (%r):\n%s" % (who, pattern, m.group(0), _show(got))


def check_client(run):
    case = run.case
    got = run.client_bytes
    want = run.statuses()
    if want is not None:
        statuses = [str(r.status) for r in run.responses]
        assert statuses == want, "client got statuses %s, expected %s; it got:\n%s" % (
            statuses, want, _show(got))
    exact = case.get("expect-client")
    if exact is not None:
        expected = b"" if exact == "nothing" else run.bytes(exact)
        assert got == expected, "client got:\n%s\nexpected:\n%s" % (_show(got), _show(expected))
    check_patterns(run, "client", got)
    decoded = case.get("expect-client-body-decoded")
    if decoded is not None:
        finals = [r for r in run.responses if r.status >= 200]
        assert finals, "no final response to decode; client got:\n%s" % _show(got)
        assert finals[-1].payload == run.bytes(decoded), "decoded body %s, expected %s" % (
            _show(finals[-1].payload), _show(run.bytes(decoded)))
    if case.get("expect-client-closed") == "yes":
        assert run.closed_by_proxy, "the proxy did not close the client connection"


def check_origin(run):
    case = run.case
    got = b"".join(run.origin.received)
    exact = case.get("expect-origin")
    if exact is not None:
        expected = b"" if exact == "nothing" else run.bytes(exact)
        assert got == expected, "origin got:\n%s\nexpected:\n%s" % (_show(got), _show(expected))
        if exact == "nothing":
            assert run.origin.connections == 0, "the proxy connected to the origin"
    check_patterns(run, "origin", got)
    for key, value in (("expect-origin-requests", len(run.origin.requests)),
                       ("expect-origin-connections", run.origin.connections)):
        if case.get(key) is not None:
            assert value == int(case.get(key)), "%s: got %d, expected %s" % (key, value, case.get(key))


def check_logs(run):
    case = run.case
    # Connections are served in parallel: order the lines by the client
    # connection they belong to (field 2), then as written.
    order = {port: i for i, port in enumerate(run.client_ports)}
    lines = sorted((l for l in run.proxy.access().splitlines() if l),
                   key=lambda l: order.get(l.split()[1], len(order)))
    if case.get("expect-log") is not None:
        want = run.log_entries()
        # "OUTCOME STATUS": the last field of an access line and its status.
        seen = ["%s %s" % (l.split()[-1], l.split()[4]) for l in lines]
        assert len(seen) == len(want) and all(
            log_entry_matches(w, s) for w, s in zip(want, seen)), \
            "access log outcomes %s, expected %s:\n%s" % (seen, want, "\n".join(lines))
    check_patterns(run, "event", run.proxy.events().encode("latin-1", "replace"))


def run(case, start_proxy, tmp_path, binary):
    if case.get("faults") and not binary_has_fault_option(binary):
        pytest.skip("binary has no --fault")
    r = Run(case, tmp_path)
    r.go(start_proxy)
    check_client(r)
    check_origin(r)
    check_logs(r)
    return r


# ---- by hand: python3 harness/cases.py show|origin NAME ----

def _path_of(name):
    path = name if name.endswith(".case") else os.path.join(CASES_DIR, name + ".case")
    if not os.path.exists(path):
        raise SystemExit("no case %s" % path)
    return path


def _show_run(name):
    """Run one case against the real binary and print what every side saw."""
    import tempfile
    import pathlib
    import conftest
    case = load(_path_of(name))
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="case-%s-" % case.name))
    started = []

    def start(**args):
        p = conftest.Proxy(dict(args), tmp, "proxy")
        started.append(p)
        print("proxy:  " + " ".join(shlex.quote(a) for a in p.cmd))
        return p
    if case.get("faults") and not binary_has_fault_option(conftest.BIN):
        print("note:   %s has no --fault; the proxy will refuse the option" % conftest.BIN)
    r = Run(case, tmp)
    verdict = "PASS"
    try:
        r.go(start)
        check_client(r)
        check_origin(r)
        check_logs(r)
    except AssertionError as e:
        verdict = "FAIL: %s" % e
    print("origin: %s (%s) got %d connection(s):" % (
        case.get("origin", "script"), r.origin.authority, r.origin.connections))
    for data in r.origin.received:
        print("        %r" % data)
    print("client got %r" % r.client_bytes)
    for p in started:
        print("access log:\n" + p.access() + "event log: %s" % p.event_log)
    print(verdict)


def _serve_origin(name):
    """Serve only the case's fake origin, and print how to do the rest."""
    import threading
    case = load(_path_of(name))
    r = Run(case, CASES_DIR)
    r.start_origin()
    r.subst["%PROXY%"] = "127.0.0.1:PROXYPORT"
    r.origin.replies = [r.bytes(t) for t in case.get("reply", [])]
    args = []
    for line in case.get("proxy", []):
        args += shlex.split(r.fill(line))
    args += ["--fault %s" % shlex.quote(r.fill(f)) for f in case.get("faults", [])]
    if case.get("hosts"):
        args.append("--hosts-file HOSTS  # a file with: %s" % "; ".join(
            r.fill(h) for h in case.get("hosts")))
    print("origin %r serving on %s (Ctrl-C to stop)" % (case.get("origin", "script"),
                                                     r.origin.authority))
    print("start the proxy:  build/glassproxy -l 127.0.0.1:0 -v %s" % " ".join(args))
    print("then play the client:  python3 harness/cases.py client %s 127.0.0.1:PROXYPORT %s"
          % (case.name, r.origin.authority))
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        r.origin.close()


def _play_client(name, proxy, origin):
    """Play the case's client steps against a proxy started by hand."""
    class Address:
        address = (proxy.rsplit(":", 1)[0], int(proxy.rsplit(":", 1)[1]))
    case = load(_path_of(name))
    r = Run(case, CASES_DIR)
    r.proxy = Address()
    r.subst.update({"%ORIGIN%": origin, "%ORIGIN_PORT%": origin.rsplit(":", 1)[1],
                    "%PROXY%": proxy, "%PROXY_PORT%": str(Address.address[1])})
    r.play()
    print("client got %r" % r.client_bytes)
    print("statuses: %s" % " ".join(str(x.status) for x in r.responses))


USAGE = """usage: python3 harness/cases.py show NAME      run one case, print what each side saw
       python3 harness/cases.py origin NAME    serve only its fake origin (for a proxy in gdb)
       python3 harness/cases.py client NAME PROXY_HOST:PORT ORIGIN_HOST:PORT
                                               play only its client against that proxy"""

if __name__ == "__main__":
    import sys
    argv = sys.argv[1:]
    if len(argv) == 2 and argv[0] == "show":
        _show_run(argv[1])
    elif len(argv) == 2 and argv[0] == "origin":
        _serve_origin(argv[1])
    elif len(argv) == 4 and argv[0] == "client":
        _play_client(*argv[1:])
    else:
        raise SystemExit(USAGE)
