"""
DESIGN.md's layering, enforced: which module may include which, that
only src/sys/ calls the operating system, and (from the built objects, with
nm) that every symbol with external linkage carries its module's prefix.  A failure names the file, the
line and the rule, so a student knows exactly what to move.
"""
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# module -> the modules it may use (besides itself).  Nothing points upward.
ALLOWED = {
    "util": set(),
    "sys": set(),
    "parse": {"util"},
    "filter": {"util"},
    "log": {"sys", "util"},
    "net": {"sys", "util"},
    "auth": {"sys", "util"},
    "cache": {"parse", "sys", "util"},
    "stats": {"sys", "util"},
    "tunnel": {"net", "sys", "util"},
    "proxy": {"tunnel", "cache", "filter", "auth", "net", "parse", "log",
              "stats", "sys", "util"},
    "app": {"proxy", "tunnel", "cache", "filter", "auth", "net", "parse", "log",
            "stats", "sys", "util"},
}
# Public headers that belong to a module of another name.
HEADER_OWNER = {"config": "app", "server": "app"}
PURE = {"parse", "filter", "util"}

OS_CALLS = (
    "socket accept accept4 bind listen connect recv recvfrom recvmsg send sendto "
    "sendmsg sendfile splice pipe pipe2 shutdown close poll ppoll select epoll_wait "
    "epoll_create epoll_create1 getaddrinfo gethostbyname getsockopt setsockopt "
    "getsockname fcntl ioctl open openat creat read write pread pwrite fsync "
    "fdatasync rename renameat unlink mkdir rmdir stat fstat lstat opendir readdir "
    "fopen fclose fread fwrite clock_gettime gettimeofday time sleep usleep nanosleep "
    "sigaction signal sigwait sigprocmask kill raise pthread_kill pthread_sigmask printf fprintf puts perror "
    "exit _exit abort system popen fork execve execvp"
).split()
BANNED = "sprintf vsprintf strcpy strcat strtok atoi atol gets".split()

CALL = re.compile(r"(?<![\w.>$])(%s)\s*\(" % "|".join(OS_CALLS))
BANNED_CALL = re.compile(r"(?<![\w.>$])(%s)\s*\(" % "|".join(BANNED))
INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^">]+)[">]', re.M)


def strip_comments_and_strings(text):
    """Blank out comments and literals but keep line numbers."""
    def blank(m):
        return re.sub(r"[^\n]", " ", m.group(0))
    pattern = r'/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\''
    return re.sub(pattern, blank, text, flags=re.S)


def module_of(path):
    rel = os.path.relpath(path, ROOT)
    parts = rel.split(os.sep)
    if parts[0] == "src":
        return "app" if len(parts) == 2 else parts[1]
    if parts[0] == "include":
        name = os.path.splitext(parts[-1])[0]
        return HEADER_OWNER.get(name, name)
    return None


def product_files():
    for top in ("src", "include"):
        for dirpath, _, names in os.walk(os.path.join(ROOT, top)):
            for n in sorted(names):
                if n.endswith((".c", ".h")):
                    yield os.path.join(dirpath, n)


def included_module(target):
    if target.startswith("glassproxy/"):
        name = os.path.splitext(target.split("/", 1)[1])[0]
        return HEADER_OWNER.get(name, name)
    first = target.split("/")[0]
    if "/" in target and first in ALLOWED and os.path.exists(os.path.join(ROOT, "src", target)):
        return first  # a module-private header such as "net/net_int.h"
    return None


def test_every_module_is_known():
    for path in product_files():
        m = module_of(path)
        assert m in ALLOWED, "%s: module '%s' is not in the layer graph" % (path, m)


def test_includes_follow_the_layer_graph():
    problems = []
    for path in product_files():
        mod = module_of(path)
        text = open(path, encoding="utf-8").read()
        for m in INCLUDE.finditer(text):
            target = m.group(1)
            used = included_module(target)
            line = text.count("\n", 0, m.start()) + 1
            if used and used != mod and used not in ALLOWED[mod]:
                problems.append("%s:%d: %s may not include %s (module %s)"
                                % (os.path.relpath(path, ROOT), line, mod, target, used))
            if mod in PURE and target in ("glassproxy/sys.h", "pthread.h", "unistd.h"):
                problems.append("%s:%d: %s is pure and may not include %s"
                                % (os.path.relpath(path, ROOT), line, mod, target))
    assert not problems, "\n".join(problems)


def test_only_src_sys_calls_the_operating_system():
    problems = []
    for path in product_files():
        if module_of(path) == "sys" or path.endswith(".h") and "/include/" in path:
            continue
        code = strip_comments_and_strings(open(path, encoding="utf-8").read())
        for m in CALL.finditer(code):
            line = code.count("\n", 0, m.start()) + 1
            problems.append("%s:%d: calls %s() directly; go through sys_%s()"
                            % (os.path.relpath(path, ROOT), line, m.group(1), m.group(1)))
    assert not problems, "\n".join(problems)


def test_no_banned_string_functions():
    problems = []
    for path in product_files():
        code = strip_comments_and_strings(open(path, encoding="utf-8").read())
        for m in BANNED_CALL.finditer(code):
            line = code.count("\n", 0, m.start()) + 1
            problems.append("%s:%d: %s() is banned (unbounded or unchecked)"
                            % (os.path.relpath(path, ROOT), line, m.group(1)))
    assert not problems, "\n".join(problems)


def test_the_checker_catches_violations(tmp_path):
    """The rules above must be able to fail: feed them a bad file."""
    code = strip_comments_and_strings(
        '/* close( in a comment */ x = "send(";\n n = recv(fd, b, 1, 0);\n'
        ' s->net->recv(ctx); sys_recv(s); y.close(1);\n')
    found = [m.group(1) for m in CALL.finditer(code)]
    assert found == ["recv"]
    assert included_module("glassproxy/net.h") == "net"
    assert included_module("net/net_int.h") == "net"
    assert included_module("sys/socket.h") is None  # libc, not our sys
    assert "net" not in ALLOWED["parse"]


# ---- every symbol with external linkage carries its module's prefix ----

# module -> the prefixes its defined global symbols may have.
PREFIXES = {
    "app": ("config_", "server_", "app_"),
    "parse": ("http_", "parse_"),
    "sys": ("sys_",),
    "util": ("util_",),
    "log": ("log_",),
    "net": ("net_",),
    "filter": ("filter_",),
    "tunnel": ("tunnel_",),
    "proxy": ("proxy_",),
    "cache": ("cache_",),
    "auth": ("auth_",),
    "stats": ("stats_",),
}


def object_dir():
    """build/src, or the tree beside the binary under test (build/asan...)."""
    binary = os.environ.get("GLASSPROXY_BIN")
    base = os.path.dirname(binary) if binary else os.path.join(ROOT, "build")
    return os.path.join(base, "src")


def defined_globals(obj):
    """The defined symbols with external linkage of one object file."""
    import subprocess
    out = subprocess.run(["nm", "--defined-only", "-g", obj], capture_output=True,
                         text=True, check=True).stdout
    names = []
    for line in out.splitlines():
        parts = line.split()
        # "0000000000000000 T proxy_serve"; compiler and sanitizer
        # helpers are reserved names ("__odr_asan.x", "__gcov_...").
        if len(parts) == 3 and not parts[2].startswith("__"):
            names.append(parts[2])
    return names


def unprefixed(module, names):
    allowed = PREFIXES[module]
    return [n for n in names if not n.startswith(allowed)]


def module_objects():
    """(module, object) for every object built from a source that exists
    (a stale object of a renamed file is not the code under test)."""
    top = object_dir()
    for module in sorted(PREFIXES):
        folder = os.path.join(top, module)
        if not os.path.isdir(folder):
            continue
        for n in sorted(os.listdir(folder)):
            src = os.path.join(ROOT, "src", module, n[:-2] + ".c")
            if n.endswith(".o") and os.path.exists(src):
                yield module, os.path.join(folder, n)


def test_every_external_symbol_has_its_module_prefix():
    objects = list(module_objects())
    assert objects, "no objects under %s: build first (make)" % object_dir()
    problems = []
    for module, obj in objects:
        for name in unprefixed(module, defined_globals(obj)):
            problems.append("%s: %s defines %s without a prefix of %s"
                            % (os.path.relpath(obj, ROOT), module, name,
                               " ".join(PREFIXES[module])))
    assert not problems, "\n".join(problems)
    assert {m for m, _ in objects} >= {"proxy", "parse", "net", "sys"}


def test_the_prefix_checker_fails_on_a_bad_name(tmp_path):
    """Compile an object with one good and one bad global: only the bad
    one is named."""
    import shutil
    import subprocess
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("cc")
    src = tmp_path / "bad.c"
    src.write_text("int proxy_fine(void) { return 1; }\n"
                   "int conn_init(void) { return 2; }\n"
                   "static int helper(void) { return 3; }\n"
                   "int proxy_uses(void) { return helper(); }\n")
    obj = tmp_path / "bad.o"
    subprocess.run([cc, "-c", str(src), "-o", str(obj)], check=True)
    names = defined_globals(str(obj))
    assert "proxy_fine" in names and "helper" not in names
    assert unprefixed("proxy", names) == ["conn_init"]
    assert sorted(unprefixed("net", names)) == ["conn_init", "proxy_fine", "proxy_uses"]
    assert "net" not in ALLOWED["auth"]


# ---- short functions where the request path is read top to bottom ----

FUNCTION_START = re.compile(r"^(?:[A-Za-z_][\w \*\t]*?\b)?([A-Za-z_]\w*)\s*\(")
MAX_FUNCTION_LINES = 60
SHORT_FUNCTION_PLACES = ("src/proxy", "src/app", "src/main.c")


def function_lengths(text):
    """(name, first line, lines) of every top-level function definition:
    a column-0 line opening a parameter list whose declarator ends in '{'
    (alone on the next line, or at the end of the signature), up to the
    next column-0 '}'."""
    lines = text.split("\n")
    found, i = [], 0
    while i < len(lines):
        m = FUNCTION_START.match(lines[i])
        # Not a table ("static const struct x t[] = {"), not a typedef.
        if m and not lines[i].startswith(("typedef", "#")) and \
                "=" not in lines[i][:m.start(1)]:
            j = i
            while j < len(lines) - 1 and not lines[j].rstrip().endswith(
                    (";", "{", ")")) and j - i < 12:
                j += 1
            if j + 1 < len(lines) and lines[j + 1] == "{" or \
                    lines[j].rstrip().endswith("{"):
                k = j
                while k < len(lines) and lines[k] != "}":
                    k += 1
                found.append((m.group(1), i + 1, k - i + 1))
                i = k + 1
                continue
        i += 1
    return found


def too_long(paths):
    bad = []
    for path in paths:
        for name, line, n in function_lengths(open(path).read()):
            if n > MAX_FUNCTION_LINES:
                bad.append("%s:%d: %s is %d lines (at most %d: split it)" % (
                    os.path.relpath(path, ROOT), line, name, n,
                    MAX_FUNCTION_LINES))
    return bad


def test_no_function_on_the_request_path_is_over_60_lines():
    paths = []
    for place in SHORT_FUNCTION_PLACES:
        full = os.path.join(ROOT, place)
        if os.path.isdir(full):
            paths += [os.path.join(full, n) for n in sorted(os.listdir(full))
                      if n.endswith(".c")]
        else:
            paths.append(full)
    assert not too_long(paths), "\n".join(too_long(paths))


def test_the_length_checker_catches_a_long_function(tmp_path):
    body = "\n".join("\tx += %d;" % i for i in range(61))
    src = tmp_path / "long.c"
    src.write_text("static int\nshort_one(void)\n{\n\treturn 0;\n}\n\n"
                   "int long_one(int x)\n{\n%s\n\treturn x;\n}\n" % body)
    lengths = {name: n for name, _, n in function_lengths(src.read_text())}
    assert lengths == {"short_one": 4, "long_one": 65}
    assert too_long([str(src)]) and "long_one is 65 lines" in too_long([str(src)])[0]
