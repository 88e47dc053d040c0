"""
The grader (scripts/grade, scripts/grade.map) and the lab kit
(scripts/handout): the reference scores full marks, a deliberately broken
filter a partial G, a filter handout 0 for G and full marks elsewhere, every
handout compiles with -Werror, and every test of the project belongs to a
group.  The lab tests rebuild the proxy in build/grade-*/ (-j2) and rerun
the harness: they are marked `teach` and run in `make check-teach` (a CI
step), not in `make test`, which keeps only the fast checks of the grader's
parts.  Under valgrind (GLASSPROXY_WRAPPER) they are skipped: they would run
the whole harness again, twenty times slower.
"""
import json
import os
import shutil
import subprocess
import sys
import tarfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("GLASSPROXY_BIN", os.path.join(ROOT, "build", "glassproxy"))
BUILD = os.path.dirname(os.path.abspath(BIN))
GRADE = os.path.join(ROOT, "scripts", "grade")
HANDOUT = os.path.join(ROOT, "scripts", "handout")
BROKEN = os.path.join(ROOT, "fixtures", "lab", "broken-filter", "filter_trie.c.patch")

needs_no_wrapper = pytest.mark.skipif(
    bool(os.environ.get("GLASSPROXY_WRAPPER")),
    reason="the grader reruns the harness; too slow under valgrind")

sys.path.insert(0, os.path.join(ROOT, "scripts"))


def grade(*args, summary=None):
    env = dict(os.environ, GRADE_FORMAT="json")
    env.pop("CASE", None)
    p = subprocess.run([sys.executable, GRADE, "--build", BUILD] + list(args), cwd=ROOT,
                       env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
    assert p.returncode == 0, p.stderr.decode()
    doc = json.loads(p.stdout)
    if summary is not None:
        summary.update(doc)
    return {g["group"]: g for g in doc["groups"]}


def describe(groups):
    return "\n".join("%s %s/%s failed: %s" % (k, g["score"], g["points"], g["failures"][:5])
                     for k, g in groups.items())


def load_script(name):
    import importlib.machinery
    import importlib.util
    loader = importlib.machinery.SourceFileLoader(name, os.path.join(ROOT, "scripts", name))
    spec = importlib.util.spec_from_loader(name, loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


@pytest.mark.teach
@needs_no_wrapper
def test_reference_implementation_gets_full_marks():
    """Also: every test of the project belongs to a group of
    scripts/grade.map (or to '-'); a new test file must be given one."""
    doc = {}
    groups = grade(summary=doc)
    assert not doc["ungraded"], "add these to scripts/grade.map:\n" + "\n".join(
        doc["ungraded"])
    assert doc["total"] == doc["max"] == 100, describe(groups)
    assert set(groups) == set("ABCDEFGR")
    for letter, g in groups.items():
        assert g["passed"] > 0, "group %s has no passing test" % letter
    assert all(g["score"] == g["points"] for g in groups.values()), describe(groups)


def test_map_globs_treat_brackets_literally():
    g = load_script("grade")
    rules = [("C", g.glob_regex("harness:test_cases.py::test_case[400-*]"))]
    assert g.group_of("harness:test_cases.py::test_case[400-bare-cr]", rules) == "C"
    assert g.group_of("harness:test_cases.py::test_case4", rules) is None


@pytest.mark.teach
@needs_no_wrapper
def test_lab_broken_filter_gets_a_partial_g(tmp_path):
    student = tmp_path / "filter"
    shutil.copytree(os.path.join(ROOT, "src", "filter"), student)
    subprocess.run(["patch", "-s", "-d", str(student)], stdin=open(BROKEN, "rb"),
                   check=True)
    groups = grade("--only", "G", "--module", "filter", "--student-src", str(student))
    g = groups["G"]
    assert g["build"] == "student"
    assert 0 < g["score"] < g["points"], describe(groups)
    # the seed's own demonstration is what it gets wrong
    assert "unit:test_filter::test_seed_demo_lists" in g["failures"]


@pytest.mark.teach
@needs_no_wrapper
def test_lab_filter_handout_gets_0_for_g(tmp_path):
    """Only G is graded against the handout: the other groups are graded
    against the reference build whatever the module, which the test
    above already shows to be full marks."""
    tarball = tmp_path / "filter.tar.gz"
    subprocess.run([sys.executable, HANDOUT, "filter", str(tarball)], check=True,
                   stdout=subprocess.DEVNULL)
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
        tar.extractall(tmp_path)
    top = os.path.join(tmp_path, "glassproxy-filter-handout")
    assert "glassproxy-filter-handout/README.student.md" in names
    assert "glassproxy-filter-handout/tests/test_filter.c" in names
    stub = open(os.path.join(top, "src", "filter", "filter.c")).read()
    assert "TODO(student): implement filter_new()" in stub
    groups = grade("--only", "GE", "--module", "filter",
                   "--student-src", os.path.join(top, "src", "filter"))
    assert groups["G"]["build"] == "student" and groups["E"]["build"] == "reference"
    assert groups["G"]["score"] == 0 and groups["G"]["failed"] > 0, describe(groups)
    assert groups["E"]["score"] == groups["E"]["points"], describe(groups)


@pytest.mark.teach
@pytest.mark.parametrize("module", ["parse", "filter", "cache", "log", "tunnel"])
@pytest.mark.parametrize("cc", ["cc", "clang"])
def test_lab_every_handout_compiles_with_werror(tmp_path, module, cc):
    """The stubbed files compile alone with the project's warnings; the
    rest of the tree is the reference, which make test builds already."""
    if shutil.which(cc) is None:
        pytest.skip("%s is not installed" % cc)
    h = load_script("handout")
    flags = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-Wshadow",
             "-Wstrict-prototypes", "-Wformat=2", "-Wno-unused-parameter",
             "-Iinclude", "-Isrc", "-D_POSIX_C_SOURCE=200809L", "-fsyntax-only"]
    sources = sorted(f for f in os.listdir(os.path.join(ROOT, "src", module))
                     if f.endswith(".c"))
    assert sources
    for name in sources:
        text, stubbed = h.stub_file(open(os.path.join(ROOT, "src", module, name)).read(),
                                    module)
        assert stubbed, "%s: no function found to stub" % name
        out = tmp_path / name
        out.write_text(text)
        # compiled from the module's folder so its private headers resolve
        p = subprocess.run([cc] + flags + ["-iquote", "src/" + module, str(out)], cwd=ROOT,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert p.returncode == 0, "%s/%s stubbed:\n%s" % (module, name, p.stdout.decode())


def test_stub_bodies_follow_the_return_type():
    h = load_script("handout")
    src = ("static int helper(void) { return 1; }\n"
           "int a(void) { return helper(); }\n"
           "const char *b(int x) { if (x) { return \"}\"; } return 0; }\n"
           "enum e { E1 };\n"
           "enum e c(void) { return E1; }\n"
           "bool d(void) { return true; }\n"
           "struct s { int v; };\n"
           "struct s f(void) { struct s r = {1}; return r; }\n"
           "void g(void) { /* { */ }\n"
           "static const int table[] = {1, 2};\n"
           "size_t k(void) { return 3; }\n")
    text, names = h.stub_file(src, "demo")
    assert names == ["helper", "a", "b", "c", "d", "f", "g", "k"]
    assert "return -ENOSYS;" in text and "return NULL;" in text
    assert "return (enum e)-1;" in text and "return false;" in text
    assert "return (struct s){0};" in text and "return 0;" in text
    assert "static __attribute__((unused)) const int table[] = {1, 2};" in text
    assert "static __attribute__((unused)) int helper(void)" in text
