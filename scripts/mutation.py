"""Mutation testing of the safety checks (scripts/mutate; docs/internals.md, "Mutation testing").

A mutant is one small change to a function that carries exactly-once or keeps secrets out of the
logs: a condition negated or dropped, a boolean answer forced, a comparison turned round, a
call removed, ``and``/``or`` swapped, a bound moved by one. Each is written in place into the
checkout's own source file (the tests start the CLI as subprocesses that import ``entrypoint``
from the editable install, so a copy elsewhere would not be what they run), the tests that
concern its module run with ``-x`` and a timeout, and the file is put back byte for byte in a
``finally``. A mutant the tests pass with "survived": the check it broke is held by no test.

What is mutated, and which tests must notice, is in scripts/mutate.toml (one place to read).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import datetime as dt
import fcntl
import os
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "scripts" / "mutate.toml"
OUT = Path(".cache") / "mutate"
# Calls that say or pace rather than decide: removing them is not a safety check's mutant.
QUIET_CALLS = frozenset({"debug", "info", "warning", "error", "exception", "critical", "sleep"})
OPPOSITE: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.GtE,
    ast.GtE: ast.Lt,
    ast.Gt: ast.LtE,
    ast.LtE: ast.Gt,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}
GRACE = 60.0  # after a timeout: SIGINT lets pytest tear its servers down, then SIGKILL
RESULTS = ("killed", "survived", "timed out", "error")


@dataclass(frozen=True)
class Target:
    """One module: the functions mutated (none listed: all) and the tests that must notice."""

    name: str
    path: str
    tests: tuple[str, ...]
    functions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Mutant:
    id: str
    target: Target
    function: str
    line: int
    operator: str
    before: str
    after: str
    start: int  # byte offsets of the replaced span in the source
    end: int

    def where(self) -> str:
        return f"{self.target.path}:{self.line}"

    def describe(self) -> str:
        return f"{self.operator}: `{_short(self.before)}` → `{_short(self.after)}`"

    def apply(self, source: bytes) -> bytes:
        return source[: self.start] + self.after.encode() + source[self.end :]


@dataclass
class Outcome:
    result: str  # one of RESULTS, or "passed" for a baseline
    seconds: float
    detail: str = ""


@dataclass
class ModuleRun:
    target: Target
    mutants: list[tuple[Mutant, Outcome]] = field(default_factory=list)
    baseline: Outcome | None = None
    refused: str = ""


def _short(text: str, width: int = 90) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def load_targets(path: Path) -> list[Target]:
    with path.open("rb") as file:
        document = tomllib.load(file)
    targets = []
    for name, table in document.items():
        unknown = set(table) - {"path", "tests", "functions"}
        if unknown or "path" not in table or not table.get("tests"):
            raise SystemExit(
                f"{path}: [{name}] needs path and tests (and optionally functions); "
                f"unknown keys: {sorted(unknown)}"
            )
        targets.append(
            Target(name, table["path"], tuple(table["tests"]), tuple(table.get("functions", ())))
        )
    return targets


# --- the mutants ---------------------------------------------------------------------------


class _Finder(ast.NodeVisitor):
    """The mutants of one module, in source order, inside the functions a target selects."""

    def __init__(self, target: Target, source: bytes) -> None:
        self.target = target
        self.source = source
        lines = source.splitlines(keepends=True)
        self.starts = [0]
        for line in lines:
            self.starts.append(self.starts[-1] + len(line))
        self.classes: list[str] = []
        self.owner: str | None = None  # the outermost function (or method) we are inside
        self.returns_bool: list[bool] = []
        self.conditions: set[int] = set()  # the ids of the whole tests of if and while
        self.deciding = 0  # > 0 inside a condition or a boolean answer: and/or swapped there
        self.found: list[tuple[int, int, str, str, str, str]] = []

    def _span(self, node: ast.expr | ast.stmt) -> tuple[int, int]:
        assert node.end_lineno is not None
        assert node.end_col_offset is not None
        start = self.starts[node.lineno - 1] + node.col_offset
        return start, self.starts[node.end_lineno - 1] + node.end_col_offset

    def _text(self, node: ast.expr | ast.stmt) -> str:
        start, end = self._span(node)
        return self.source[start:end].decode()

    def _add(self, node: ast.expr | ast.stmt, operator: str, after: str) -> None:
        if self.owner is None:
            return
        if self.target.functions and self.owner not in self.target.functions:
            return
        start, end = self._span(node)
        before = self._text(node)
        if after != before:
            self.found.append((start, end, self.owner, operator, before, after))

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.classes.append(node.name)
        self.generic_visit(node)
        self.classes.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        outermost = self.owner is None
        if outermost:
            self.owner = ".".join([*self.classes, node.name])
        returns = node.returns
        self.returns_bool.append(
            (isinstance(returns, ast.Name) and returns.id == "bool")
            or (isinstance(returns, ast.Constant) and returns.value == "bool")
        )
        for statement in node.body:
            self.visit(statement)
        self.returns_bool.pop()
        if outermost:
            self.owner = None

    visit_AsyncFunctionDef = visit_FunctionDef  # noqa: N815 - ast.NodeVisitor's naming

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self.returns_bool.append(False)
        self.generic_visit(node)
        self.returns_bool.pop()

    def _deciding(self, node: ast.expr) -> None:
        self.deciding += 1
        self.visit(node)
        self.deciding -= 1

    def _condition(self, node: ast.If | ast.While | ast.IfExp, keyword: str) -> None:
        test = node.test
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            negated = self._text(test.operand)
        else:
            negated = f"not ({self._text(test)})"
        self._add(test, f"negate {keyword}", negated)
        if not isinstance(test, ast.Constant):
            self._add(test, f"{keyword} never", "False")
        self.conditions.add(id(test))
        self._deciding(test)
        if isinstance(node, ast.IfExp):
            self.visit(node.body)
            self.visit(node.orelse)
            return
        for statement in [*node.body, *node.orelse]:
            self.visit(statement)

    def visit_If(self, node: ast.If) -> None:
        self._condition(node, "if")

    def visit_While(self, node: ast.While) -> None:
        self._condition(node, "while")

    def visit_IfExp(self, node: ast.IfExp) -> None:
        self._condition(node, "if-else")

    def visit_comprehension(self, node: ast.comprehension) -> None:
        self.visit(node.target)
        self.visit(node.iter)
        for test in node.ifs:  # a filter: what it lets through is decided here
            self._add(test, "negate filter", f"not ({self._text(test)})")
            self._add(test, "filter never", "False")
            self._deciding(test)

    def visit_Assert(self, node: ast.Assert) -> None:
        pass  # what mypy is told, or an invariant: not a check of the world

    def visit_Return(self, node: ast.Return) -> None:
        value = node.value
        if value is None:
            return
        if self.returns_bool and self.returns_bool[-1]:
            for constant in ("True", "False"):
                if not (isinstance(value, ast.Constant) and repr(value.value) == constant):
                    self._add(value, f"return {constant}", constant)
            self._deciding(value)
        else:
            self.visit(value)

    def visit_Compare(self, node: ast.Compare) -> None:
        for index, op in enumerate(node.ops):
            if len(node.ops) == 1 and id(node) in self.conditions:
                break  # the same as negating the condition
            ops = list(node.ops)
            ops[index] = OPPOSITE[type(op)]()
            swapped = ast.Compare(left=node.left, ops=ops, comparators=node.comparators)
            self._add(node, "compare", f"({ast.unparse(swapped)})")
        for operand in [node.left, *node.comparators]:
            if isinstance(operand, ast.Constant) and type(operand.value) is int:
                for moved in (operand.value - 1, operand.value + 1):
                    self._add(operand, "bound", repr(moved))
        self.generic_visit(node)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        if not self.deciding:  # `value or default`: not a decision
            self.generic_visit(node)
            return
        other: ast.boolop = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        swapped = ast.BoolOp(op=other, values=node.values)
        self._add(node, "and/or", f"({ast.unparse(swapped)})")
        self.generic_visit(node)

    def visit_Expr(self, node: ast.Expr) -> None:
        call = node.value
        if isinstance(call, ast.Call):
            func = call.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name not in QUIET_CALLS:
                self._add(node, "remove call", "pass")
        self.generic_visit(node)


def mutants_of(target: Target, root: Path) -> list[Mutant]:
    source = (root / target.path).read_bytes()
    finder = _Finder(target, source)
    finder.visit(ast.parse(source, filename=target.path))
    missing = set(target.functions) - {owner for _, _, owner, *_ in finder.found}
    if missing:
        raise SystemExit(
            f"{target.path}: no mutant in {sorted(missing)}: a function renamed or removed? "
            "(scripts/mutate.toml)"
        )
    mutants: list[Mutant] = []
    seen: set[bytes] = set()
    for start, end, owner, operator, before, after in sorted(finder.found, key=lambda f: f[:2]):
        line = source[:start].count(b"\n") + 1
        draft = Mutant("", target, owner, line, operator, before, after, start, end)
        mutated = draft.apply(source)
        if mutated in seen:
            continue
        seen.add(mutated)
        compile(mutated, target.path, "exec")  # a mutant that does not compile is our bug
        mutants.append(replace(draft, id=f"{target.name}.{len(mutants) + 1}"))
    return mutants


# --- running them --------------------------------------------------------------------------


class _Stop(Exception):
    pass


def _raise_stop(signum: int, _frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()


def only_run(out: Path) -> None:
    """An exclusive flock held until this process ends (its descriptor is never closed): a
    second run in the same checkout would write its mutants into the files the first is
    testing, and put back the other's."""
    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(out / "run.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise SystemExit(
            "another scripts/mutate run is going in this checkout (it holds "
            f"{out / 'run.lock'}): wait for it to end, or run in a clone of your own"
        ) from None


def refuse_dirty(root: Path) -> None:
    changed = _git(root, "status", "--porcelain", "--untracked-files=no")
    if changed:
        raise SystemExit(
            "scripts/mutate writes mutants into the source files and needs a clean checkout "
            "to prove it put them back; commit or stash first. Changed:\n"
            f"{changed}\n(a mutant left by a killed run: `git checkout -- FILE`)"
        )


def _drop_bytecode(path: Path) -> None:
    """A mutant can have the original's size and second: never let a cached .pyc stand in."""
    for cached in (path.parent / "__pycache__").glob(f"{path.stem}.*.pyc"):
        cached.unlink(missing_ok=True)


@contextlib.contextmanager
def applied(mutant: Mutant, root: Path) -> Iterator[None]:
    path = root / mutant.target.path
    original = path.read_bytes()
    try:
        path.write_bytes(mutant.apply(original))
        _drop_bytecode(path)
        yield
    finally:
        path.write_bytes(original)
        _drop_bytecode(path)
        if path.read_bytes() != original:  # pragma: no cover - a full disk, say
            sys.exit(f"could not restore {path}: run `git checkout -- {mutant.target.path}`")


def run_tests(
    root: Path, tests: Sequence[str], timeout: float, log_path: Path, skip: Sequence[str] = ()
) -> Outcome:
    """pytest -x on ``tests`` (less ``skip``) in its own process group; the group is gone when
    this returns. A killed mutant's detail is the node id of the test that failed."""
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider"]
    command += ["-o", "addopts=", *tests]
    command += [arg for nodeid in skip for arg in ("--deselect", nodeid)]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    code: int | None = None
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            command, cwd=root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        finally:
            if code is None:  # timed out, or we were asked to stop
                proc.send_signal(signal.SIGINT)  # pytest tears its fixtures (servers) down
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(GRACE)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # what the tests left running
            proc.wait()
    seconds = time.monotonic() - started
    lines = log_path.read_text(errors="replace").strip().splitlines()
    last = lines[-1] if lines else ""
    if code is None:
        return Outcome("timed out", seconds, f"no result within {timeout:g}s")
    if code == 1:
        failed = [line.split()[1] for line in lines if line.startswith(("FAILED ", "ERROR "))]
        return Outcome("killed", seconds, failed[0] if failed else last)
    # Exit 5, "no tests collected": every test was deselected, none failed.
    results = {0: "survived", 5: "survived"}
    return Outcome(results.get(code, "error"), seconds, f"pytest exit {code}: {last}")


def run_module(  # noqa: PLR0913 - the run's options, passed once
    run: ModuleRun,
    mutants: list[Mutant],
    *,
    root: Path,
    out: Path,
    timeout: float | None,
    baseline: bool,
    say: Callable[[str], None],
) -> None:
    """Fill ``run`` as the mutants are run (so that a stopped run still reports them)."""
    target = run.target
    if baseline:
        say(f"{target.name}: baseline, {len(target.tests)} test paths, no mutant")
        run.baseline = run_tests(root, target.tests, 3600.0, out / "logs" / f"{target.name}.log")
        if run.baseline.result != "survived":  # the tests fail with no mutant: nothing to learn
            run.refused = f"the tests fail without any mutant ({run.baseline.detail})"
            say(f"{target.name}: {run.refused}")
            return
        run.baseline.result = "passed"
        say(f"{target.name}: baseline passed in {run.baseline.seconds:.1f}s")
    if timeout is None:  # a mutant may be slower than the tests it breaks, not endless
        assert run.baseline is not None
        timeout = 3 * run.baseline.seconds + 30
    killers: list[str] = []  # the tests that killed this module's mutants, latest first
    for mutant in mutants:
        with applied(mutant, root):
            outcome = _killed_or_run(mutant, killers, root=root, timeout=timeout, out=out)
        if outcome.result == "killed" and "::" in outcome.detail:
            killers = [outcome.detail, *(k for k in killers if k != outcome.detail)]
        run.mutants.append((mutant, outcome))
        say(
            f"{mutant.id} {outcome.result} in {outcome.seconds:.1f}s  {mutant.where()} "
            f"{mutant.function}  {mutant.describe()}"
        )


def _killed_or_run(
    mutant: Mutant, killers: list[str], *, root: Path, timeout: float, out: Path
) -> Outcome:
    """The tests that killed this module's earlier mutants first (a mutant of the same check
    mostly fails the same test: seconds rather than the whole list), then, if none failed, the
    rest of the module's tests. Only a mutant that passes both survives; the two runs share one
    timeout."""
    started = time.monotonic()
    logs = out / "logs"
    if killers:
        first = run_tests(root, killers, timeout, logs / f"{mutant.id}.killers.log")
        if first.result != "survived":
            return first
    left = timeout - (time.monotonic() - started)
    tests = mutant.target.tests
    outcome = run_tests(root, tests, max(left, 1.0), logs / f"{mutant.id}.log", skip=killers)
    outcome.seconds = time.monotonic() - started
    return outcome


# --- the report ----------------------------------------------------------------------------


def report(runs: list[ModuleRun], *, commit: str, seconds: float) -> str:
    total = sum(len(r.mutants) for r in runs)
    mean = sum(o.seconds for r in runs for _, o in r.mutants) / total if total else 0.0
    out = [
        "# Mutation testing (scripts/mutate)",
        "",
        (
            f"Commit {commit}, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC: {total} mutants "
            f"run in {seconds:.0f} s, {mean:.1f} s a mutant on average."
        ),
        "",
        "| module | mutants | killed | survived | timed out | error | baseline | s a mutant |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        counts = [sum(1 for _, o in run.mutants if o.result == r) for r in RESULTS]
        n = len(run.mutants)
        base = f"{run.baseline.seconds:.1f} s" if run.baseline else "not run"
        each = f"{sum(o.seconds for _, o in run.mutants) / n:.1f}" if n else "-"
        name = f"{run.target.name} (`{run.target.path}`)"
        out.append(f"| {name} | {n} | {' | '.join(map(str, counts))} | {base} | {each} |")
    refused = [r for r in runs if r.refused]
    if refused:
        out += ["", "## Not run", ""]
        out += [f"- {r.target.name}: {r.refused}" for r in refused]
    survivors = [(m, o) for r in runs for m, o in r.mutants if o.result in ("survived", "error")]
    out += ["", "## Survivors and errors", ""]
    out += [
        f"- {m.id} {o.result} `{m.where()}` `{m.function}` {m.describe()}" for m, o in survivors
    ]
    out += [] if survivors else ["None."]
    out += ["", "## Every mutant", "", "| id | where | function | mutation | result | s |"]
    out += ["|---|---|---|---|---|---|"]
    for run in runs:
        for m, o in run.mutants:
            mutation = m.describe().replace("|", "\\|")
            out.append(
                f"| {m.id} | {m.where()} | {m.function} | {mutation} | {o.result} "
                f"| {o.seconds:.1f} |"
            )
    return "\n".join(out) + "\n"


# --- the command ---------------------------------------------------------------------------


def _select(
    targets: list[Target], only: list[str], ids: list[str], root: Path
) -> list[tuple[Target, list[Mutant]]]:
    chosen = [t for t in targets if not only or t.name in only or t.path in only]
    unknown = set(only) - {t.name for t in targets} - {t.path for t in targets}
    if unknown:
        raise SystemExit(f"--only: no target {sorted(unknown)}; known: {[t.name for t in targets]}")
    selected = []
    for target in chosen:
        mutants = mutants_of(target, root)
        if ids:
            mutants = [m for m in mutants if m.id in ids]
        if mutants:
            selected.append((target, mutants))
    found = {m.id for _, ms in selected for m in ms}
    if set(ids) - found:
        raise SystemExit(f"--mutant: no mutant {sorted(set(ids) - found)} (see --list)")
    return selected


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/mutate", description=__doc__.split("\n")[0])
    parser.add_argument("--list", action="store_true", help="show the mutants, run nothing")
    parser.add_argument("--only", action="append", default=[], metavar="MODULE")
    parser.add_argument("--mutant", action="append", default=[], metavar="ID")
    parser.add_argument("--timeout", type=float, help="seconds a mutant (3 x baseline + 30)")
    parser.add_argument("--no-baseline", action="store_true", help="needs --timeout")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, default=CONFIG, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.no_baseline and args.timeout is None:
        parser.error("--no-baseline needs --timeout")
    root = args.root.resolve()
    selected = _select(load_targets(args.config), args.only, args.mutant, root)
    if args.list:
        for _, mutants in selected:
            for m in mutants:
                print(f"{m.id}  {m.where()}  {m.function}  {m.describe()}")
        print(f"{sum(len(ms) for _, ms in selected)} mutants")
        return 0
    refuse_dirty(root)
    out = root / OUT
    only_run(out)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_stop)  # unwinds through `applied`: the source comes back
    started = time.monotonic()
    runs = []
    try:
        for target, mutants in selected:
            runs.append(ModuleRun(target))
            run_module(
                runs[-1],
                mutants,
                root=root,
                out=out,
                timeout=args.timeout,
                baseline=not args.no_baseline,
                say=lambda line: print(line, flush=True),
            )
    except (_Stop, KeyboardInterrupt):
        print("stopped: the source is restored; the report covers what ran", flush=True)
    commit = _git(root, "rev-parse", "--short", "HEAD")
    text = report(runs, commit=commit, seconds=time.monotonic() - started)
    (out / "report.md").write_text(text)
    print(text, end="")
    print(f"written to {out / 'report.md'}; each run's pytest output in {out / 'logs'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
