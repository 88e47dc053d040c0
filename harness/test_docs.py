"""
The documentation stays true: every `path.c:function` anchor in docs/ names a
function defined in that file; the man pages document every option
`glassproxy --help` prints and render without warnings; the examples pass
--check-config; `make install DESTDIR=... PREFIX=/usr` lays out the tree a
package would ship and `make uninstall` removes it.
"""
import glob
import os
import re
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("GLASSPROXY_BIN", os.path.join(ROOT, "build", "glassproxy"))
MAN1 = os.path.join(ROOT, "docs", "man", "glassproxy.1")
MAN5 = os.path.join(ROOT, "docs", "man", "glassproxy.conf.5")
ANCHOR = re.compile(r"\b((?:src|include|tests|bench|fuzz)/[\w/.-]+\.[ch]):([A-Za-z_]\w*)")
CLI_ONLY = {"config", "check-config", "help", "version"}


def doc_files():
    return sorted(glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True)
                  + [os.path.join(ROOT, "README.md")])


def strip_c_comments(text):
    return re.sub(r"/\*.*?\*/|//[^\n]*", lambda m: re.sub(r"[^\n]", " ", m.group(0)),
                  text, flags=re.S)


def defines(path, name):
    """Is NAME defined (a body follows its parameter list) in the C file?"""
    code = strip_c_comments(open(path, encoding="utf-8").read())
    for m in re.finditer(r"(?m)^(?:__attribute__\s*\(\([^)]*\)\)\s*)?[A-Za-z_][\w \t*]*?\b%s\s*\("
                         % re.escape(name), code):
        depth, i = 0, m.end() - 1
        while i < len(code):
            depth += {"(": 1, ")": -1}.get(code[i], 0)
            i += 1
            if depth == 0:
                break
        rest = code[i:].lstrip()
        rest = re.sub(r"^__attribute__\s*\(\(.*?\)\)\s*", "", rest, flags=re.S)
        if rest.startswith("{"):
            return True
    return False


def anchors():
    for doc in doc_files():
        text = open(doc, encoding="utf-8").read()
        for m in ANCHOR.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            yield os.path.relpath(doc, ROOT), line, m.group(1), m.group(2)


def test_every_code_anchor_names_a_function_of_its_file():
    bad = []
    for doc, line, path, name in anchors():
        full = os.path.join(ROOT, path)
        if not os.path.exists(full):
            bad.append("%s:%d: %s:%s: no such file" % (doc, line, path, name))
        elif not defines(full, name):
            bad.append("%s:%d: %s:%s: %s is not defined in %s" % (doc, line, path, name,
                                                                    name, path))
    assert not bad, "stale anchors:\n" + "\n".join(bad)


def test_architecture_walks_have_anchors():
    arch = [a for a in anchors() if a[0] == "docs/architecture.md"]
    assert len(arch) >= 30, "the request walks lost their anchors"


def test_the_anchor_checker_catches_a_bad_anchor(tmp_path):
    f = tmp_path / "x.c"
    f.write_text("static int real(void);\nstatic int real(void)\n{\n\treturn 0;\n}\n"
                 "/* gone() */\nint declared(int a);\n")
    assert defines(str(f), "real")
    assert not defines(str(f), "gone") and not defines(str(f), "declared")


def help_options():
    out = subprocess.run([BIN, "--help"], stdout=subprocess.PIPE, check=True).stdout.decode()
    opts = re.findall(r"^\s+(?:-\w, )?--([a-z][a-z0-9-]*)", out, re.M)
    assert len(opts) > 20
    return opts


def roff(path):
    return open(path, encoding="utf-8").read().replace("\\-", "-")


def test_man_page_documents_every_option_of_help():
    page = roff(MAN1)
    missing = [o for o in help_options()
               if not re.search(r"^\.(?:B|BR|BI)\b.*--%s\b" % re.escape(o), page, re.M)]
    assert not missing, "docs/man/glassproxy.1 lacks: " + ", ".join("--" + o for o in missing)


def test_conf_page_documents_every_config_key():
    page = roff(MAN5)
    missing = [o for o in help_options() if o not in CLI_ONLY
               and not re.search(r"^\.(?:B|BR|BI) %s\b" % re.escape(o), page, re.M)]
    assert not missing, "docs/man/glassproxy.conf.5 lacks the keys: " + ", ".join(missing)


@pytest.mark.parametrize("page", [MAN1, MAN5])
def test_man_pages_render_without_warnings(page):
    if shutil.which("groff"):
        p = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", page],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert p.returncode == 0 and not p.stderr, p.stderr.decode()
    if shutil.which("man"):
        p = subprocess.run(["man", "-l", page], env=dict(os.environ, MANWIDTH="80"),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert p.returncode == 0 and not p.stderr, p.stderr.decode()
        assert "EXIT STATUS" in p.stdout.decode() or "SYNOPSIS" in p.stdout.decode()


def test_version_names_the_build_options():
    out = subprocess.run([BIN, "-V"], stdout=subprocess.PIPE, check=True).stdout.decode()
    assert out.startswith("glassproxy ")
    for word in ("fault injection:", "splice:", "libpsl:"):
        assert word in out, out


@pytest.mark.parametrize("conf", ["seed-demo.conf", "glassproxy.conf"])
def test_example_configs_pass_check_config(conf):
    p = subprocess.run([BIN, "-c", os.path.join(ROOT, "docs", "examples", conf),
                        "--check-config"], cwd=ROOT, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    assert p.returncode == 0, p.stderr.decode()


def test_seed_demo_config_is_the_seeds_demonstration():
    out = subprocess.run([BIN, "-c", os.path.join(ROOT, "docs", "examples", "seed-demo.conf"),
                          "--check-config"], cwd=ROOT, stdout=subprocess.PIPE).stdout.decode()
    assert "listen 127.0.0.1:8080" in out
    assert re.search(r"^block facebook$", out, re.M), out
    assert re.search(r"^allow google$", out, re.M) and re.search(r"^allow example$", out, re.M)
    assert re.search(r"^cache-dir run/cache$", out, re.M), out
    assert re.search(r"^no-cache no$", out, re.M), out


def test_service_unit_and_logrotate():
    unit = open(os.path.join(ROOT, "docs", "examples", "glassproxy.service")).read()
    for line in ("ExecReload=/bin/kill -HUP $MAINPID", "User=glassproxy",
                 "--cache-dir /var/cache/glassproxy", "NoNewPrivileges=yes"):
        assert line in unit
    rot = open(os.path.join(ROOT, "docs", "examples", "glassproxy.logrotate")).read()
    assert "SIGUSR1" in rot


def test_make_install_lays_out_the_tree_and_uninstall_removes_it(tmp_path):
    dest = tmp_path / "root"
    build = os.path.dirname(os.path.abspath(BIN))
    make = ["make", "-C", ROOT, "--no-print-directory", "BUILD=" + build,
            "DESTDIR=" + str(dest), "PREFIX=/usr"]
    p = subprocess.run(make + ["install"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert p.returncode == 0, p.stdout.decode()
    want = ["usr/bin/glassproxy", "usr/share/man/man1/glassproxy.1",
            "usr/share/man/man5/glassproxy.conf.5", "usr/share/doc/glassproxy/README.md",
            "usr/share/doc/glassproxy/examples/seed-demo.conf",
            "usr/share/doc/glassproxy/examples/glassproxy.service",
            "usr/share/doc/glassproxy/examples/glassproxy.logrotate",
            "usr/share/doc/glassproxy/examples/block.txt"]
    for rel in want:
        assert (dest / rel).is_file(), rel
    assert os.access(dest / "usr/bin/glassproxy", os.X_OK)
    assert oct((dest / "usr/share/man/man1/glassproxy.1").stat().st_mode & 0o777) == "0o644"
    p = subprocess.run(make + ["uninstall"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert p.returncode == 0, p.stdout.decode()
    left = [os.path.relpath(os.path.join(d, f), dest)
            for d, _, files in os.walk(dest) for f in files]
    assert not left, left
    assert not (dest / "usr/share/doc/glassproxy").exists()
