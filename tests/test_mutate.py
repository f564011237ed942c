"""scripts/mutate itself: a killed, a surviving and a hanging mutant are each reported as such,
and the source it mutated is back, byte for byte, whatever the mutant did.

The tool runs as a real process on a tiny git repository of its own (a module, its tests and a
target table), so these tests never mutate the project's source.
"""

from __future__ import annotations

import fcntl
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.cli import ROOT

TOOL = ROOT / "scripts" / "mutation.py"
GATE = """\
def admit(age: int) -> bool:
    return age >= 18


def clamp(value: int) -> int:
    if value > 100:
        return 100
    return value


def drain(items: list[int], out: list[int]) -> list[int]:
    while items:
        out.append(items.pop())
    return out
"""
TESTS = """\
from gate import admit, clamp, drain


def test_admit():
    assert admit(18) and not admit(17)


def test_clamp():
    assert clamp(5) == 5  # nothing checks a value over the bound: its mutants survive


def test_drain():
    assert drain([1, 2], []) == [2, 1]
"""
TARGETS = """\
[gate]
path = "gate.py"
tests = ["test_gate.py"]
"""
# Three of gate's mutants, by what --list says of them.
KILLED = "admit  return True: `age >= 18` → `True`"
SURVIVES = "clamp  if never: `value > 100` → `False`"
HANGS = "drain  remove call: `out.append(items.pop())` → `pass`"
KILLED_TOO = "admit  return False: `age >= 18` → `False`"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "gate.py").write_text(GATE)
    (tmp_path / "test_gate.py").write_text(TESTS)
    (tmp_path / "mutate.toml").write_text(TARGETS)
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "fixture")
    return tmp_path


def mutate(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, TOOL, "--root", repo, "--config", repo / "mutate.toml", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def row(report: str, module: str) -> list[str]:
    """A module's counts: mutants, killed, survived, timed out, error."""
    [line] = [x for x in report.splitlines() if x.startswith(f"| {module} (")]
    return [cell.strip() for cell in line.split("|")[2:7]]


def mutant_id(repo: Path, description: str) -> str:
    listed = mutate(repo, "--list").stdout.splitlines()
    [found] = [line.split()[0] for line in listed if description in line]
    return found


def test_killed_and_surviving_mutants_are_reported_and_the_source_restored(repo: Path) -> None:
    killed, survives = mutant_id(repo, KILLED), mutant_id(repo, SURVIVES)
    run = mutate(repo, "--mutant", killed, "--mutant", survives, "--timeout", "120")
    assert run.returncode == 0, run.stderr
    assert "gate: baseline passed" in run.stdout
    report = (repo / ".cache" / "mutate" / "report.md").read_text()
    assert report in run.stdout  # printed too
    assert row(report, "gate") == ["2", "1", "1", "0", "0"]
    survivors = report.split("## Survivors and errors")[1].split("## Every mutant")[0]
    assert survivors.strip() == f"- {survives} survived `gate.py:6` `{SURVIVES.replace('  ', '` ')}"
    assert (repo / "gate.py").read_text() == GATE
    assert git(repo, "status", "--porcelain") == "?? .cache/\n"


def test_the_test_that_killed_a_mutant_runs_first_and_a_survivor_still_runs_every_test(
    repo: Path,
) -> None:
    """The second mutant of admit dies on the test that killed the first, run on its own; the
    clamp mutant passes it, then passes the rest (test_admit not run twice): survived."""
    ids = [mutant_id(repo, d) for d in (KILLED, KILLED_TOO, SURVIVES)]
    run = mutate(repo, *(a for i in ids for a in ("--mutant", i)), "--timeout", "120")
    assert run.returncode == 0, run.stderr
    report = (repo / ".cache" / "mutate" / "report.md").read_text()
    assert row(report, "gate") == ["3", "2", "1", "0", "0"]
    logs = repo / ".cache" / "mutate" / "logs"
    assert not (logs / f"{ids[0]}.killers.log").exists()  # nothing had killed a mutant yet
    assert "1 failed" in (logs / f"{ids[1]}.killers.log").read_text()
    assert not (logs / f"{ids[1]}.log").exists()  # killed by the first run: no second
    assert "1 passed" in (logs / f"{ids[2]}.killers.log").read_text()
    assert "2 passed, 1 deselected" in (logs / f"{ids[2]}.log").read_text()


def test_a_hanging_mutant_is_killed_by_the_timeout_and_reported_so(repo: Path) -> None:
    hangs = mutant_id(repo, HANGS)
    run = mutate(repo, "--mutant", hangs, "--timeout", "3", "--no-baseline")
    assert run.returncode == 0, run.stderr
    assert f"{hangs} timed out" in run.stdout
    report = (repo / ".cache" / "mutate" / "report.md").read_text()
    assert row(report, "gate") == ["1", "0", "0", "1", "0"]
    assert (repo / "gate.py").read_text() == GATE


def test_a_dirty_tree_is_refused_before_any_mutant(repo: Path) -> None:
    (repo / "test_gate.py").write_text(TESTS + "\n# an edit not committed\n")
    run = mutate(repo, "--only", "gate")
    assert run.returncode != 0
    assert "clean checkout" in run.stderr
    assert "test_gate.py" in run.stderr
    assert not (repo / ".cache").exists()


def test_a_second_run_in_the_same_checkout_is_refused(repo: Path) -> None:
    """Two runs at once would write mutants into the same files and put back each other's."""
    out = repo / ".cache" / "mutate"
    out.mkdir(parents=True)
    with (out / "run.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # what a run going on holds
        run = mutate(repo, "--mutant", mutant_id(repo, KILLED), "--timeout", "120")
    assert run.returncode != 0
    assert "another scripts/mutate run is going in this checkout" in run.stderr
    assert not (out / "report.md").exists()
    assert (repo / "gate.py").read_text() == GATE


def test_the_known_survivors_of_issue_30_are_among_the_mutants() -> None:
    """Each check the lock's exactly-once rests on is forced to "still ours" by one mutant."""
    listed = subprocess.run(
        [sys.executable, TOOL, "--list", "--only", "guard", "--only", "fence"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Guard.before_commit  if never: `not self.fence.lock_still_held()` → `False`" in listed
    assert "Fence._take  if never: `not self._lock_held(query)` → `False`" in listed


def test_every_function_and_test_scripts_mutate_toml_names_still_exists() -> None:
    """A check or a test renamed or moved must not drop out of the mutation runs unnoticed."""
    run = subprocess.run(
        [sys.executable, TOOL, "--list"], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.rstrip().endswith(" mutants")
    named = {
        t
        for target in tomllib.loads((ROOT / "scripts" / "mutate.toml").read_text()).values()
        for t in target["tests"]
    }
    files = sorted({t.split("::")[0] for t in named})
    collect = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *files],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    collected = collect.stdout.split()
    # pytest merges a node id into a named parent's and then reports no error: compare here.
    assert {t for t in named if not any(c.startswith(t) for c in collected)} == set()
