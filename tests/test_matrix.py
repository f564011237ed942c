"""The support matrix of scripts/test (tests/matrix.py): which tests the other Python/Django
combinations run, and that a missing interpreter is named, never skipped silently."""

from __future__ import annotations

import subprocess
import sys

from tests import matrix
from tests.cli import ROOT


def test_every_django_dependent_prefix_names_collected_tests() -> None:
    """A renamed or removed test cannot drop out of the matrix unnoticed."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q",
         "-m", matrix.MARKER],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    nodeids = [line for line in proc.stdout.splitlines() if "::" in line]
    for prefix in matrix.DJANGO_DEPENDENT:
        assert any(n.startswith(prefix) for n in nodeids), f"{prefix} selects no test"
    assert all(matrix.selected(n) for n in nodeids)


def test_missing_interpreters_are_named() -> None:
    """With no other Python to be found, every other supported combination is reported as
    skipped on stderr, and none is planned."""
    proc = subprocess.run(
        [sys.executable, "-m", "tests.matrix"],
        cwd=ROOT, env={"PATH": "/nonexistent", "DJANGO_ENTRYPOINT_TEST_MATRIX": "full"},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    default = "%d.%d" % sys.version_info[:2]  # noqa: UP031
    expected = {
        f"SKIPPED py{python} django{django}: no Python {python} found"
        for python, lines in matrix.SUPPORTED.items()
        for django in lines
        if python != default
    }
    assert set(proc.stderr.splitlines()) == expected
    # The default interpreter's other Django lines run on it: never skipped.
    assert all(f"py{default} " not in line for line in proc.stderr.splitlines())


def test_django_6_is_never_planned_on_python_3_11() -> None:
    runs, skipped = matrix.plan("3.12")
    combos = {(p, d) for p, d, _ in runs} | {
        (line.split()[0][2:], line.split()[1][6:].rstrip(":")) for line in skipped
    }
    assert ("3.11", "6.0") not in combos
    assert ("3.12", "5.2") not in combos  # the default combination runs the whole suite
    assert ("3.12", "6.1") in combos


def test_by_default_every_python_and_every_django_line_is_covered() -> None:
    """The default subset runs each supported Python and each Django line at least once (the
    default combination included), no more runs than the Pythons or the lines other than the
    default's ask for; the rest is named."""
    default = "%d.%d" % sys.version_info[:2]  # noqa: UP031
    runs, skipped = matrix.plan(default)
    full, _ = matrix.plan(default, full=True)
    ran = {(p, d) for p, d, _ in runs} | {(default, matrix.DEFAULT_DJANGO)}
    left_out = [line for line in skipped if "DJANGO_ENTRYPOINT_TEST_MATRIX=full" in line]
    assert {p for p, _ in ran} >= {p for p, _, _ in full}
    assert {d for _, d in ran} == {d for lines in matrix.SUPPORTED.values() for d in lines}
    others = max(len(matrix.SUPPORTED) - 1, len({d for _, d, _ in full} - {matrix.DEFAULT_DJANGO}))
    assert len(runs) <= others
    assert len(runs) + len(left_out) == len(full)
    assert len(runs) < len(full)
