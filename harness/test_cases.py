"""
Every data-driven case in fixtures/cases/ (see harness/README.md): one test
per file, its id the file's name.  CASE=name (make test CASE=name) runs one.
"""
import os

import pytest

import cases
from conftest import BIN

SELECTED = os.environ.get("CASE")
PATHS = [p for p in cases.all_cases()
         if not SELECTED or os.path.basename(p) == SELECTED + ".case"]
if SELECTED and not PATHS:
    raise pytest.UsageError("no case fixtures/cases/%s.case" % SELECTED)


@pytest.mark.parametrize("path", PATHS, ids=[os.path.basename(p)[:-5] for p in PATHS])
def test_case(path, proxy, tmp_path):
    cases.run(cases.load(path), proxy, tmp_path, BIN)


def test_every_case_file_loads():
    """A typo in a case file fails here, naming the file and the line."""
    for path in cases.all_cases():
        case = cases.load(path)
        assert case.get("checks"), "%s: no checks: line saying what it checks" % path
