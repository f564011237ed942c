"""The benchmark suite: django-entrypoint against what users would otherwise run.

Run through ``benchmarks/run``; writes benchmarks/results.md and benchmarks/results.png.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks import deploy, image_size, report, risk, schema
from benchmarks.contended import contended_alter
from benchmarks.genproject import generate
from benchmarks.measure import (
    ENTRYPOINT,
    FLOOR_CHECKS_CMD,
    FLOOR_CHECKS_LOG_CMD,
    FLOOR_CMD,
    FLOOR_QUERY_CMD,
    Sample,
    Stats,
    django,
    run_fleet,
    run_sequence,
)
from tests.services import Postgres

HERE = Path(__file__).resolve().parent
STATES = ("empty", "migrated")
ADMIN = {
    "DJANGO_ADMIN_USERNAME": "admin",
    "DJANGO_ADMIN_PASSWORD": "bench-Pa55word-x",
    "DJANGO_ADMIN_EMAIL": "admin@example.com",
}


class Bench:
    def __init__(self, pg: Postgres, workdir: Path, repeats: int) -> None:
        self.pg = pg
        self.workdir = workdir
        self.repeats = repeats
        self.projects: dict[int, Path] = {}

    def project(self, migrations: int) -> Path:
        if migrations not in self.projects:
            root = generate(self.workdir / f"p{migrations}", migrations=migrations)
            # Compiled once here, so that no measured start pays for writing the bytecode.
            compileall.compile_dir(root, quiet=1)
            self.projects[migrations] = root
        return self.projects[migrations]

    def env(self, migrations: int, database: str, **extra: str) -> dict[str, str]:
        return {
            "PATH": os.environ["PATH"],
            "HOME": os.environ.get("HOME", "/root"),
            "PYTHONPATH": f"{self.project(migrations)}{os.pathsep}{HERE.parent}",
            "DJANGO_SETTINGS_MODULE": "benchproj.settings",
            "DATABASE_URL": self.pg.url(database),
            "ENTRYPOINT_LOG_FORMAT": "json",
            "ENTRYPOINT_WAIT_STABLE": "0",
            **ADMIN,
            **extra,
        }

    def migrated_database(self, migrations: int) -> str:
        name = self.pg.create_database()
        sample = run_sequence([ENTRYPOINT], self.env(migrations, name))
        if sample.failures:
            raise RuntimeError("could not prepare a migrated database")
        return name

    def rounds(self, runs: dict[str, Callable[[], Sample]]) -> dict[str, list[Sample]]:
        """Run every variant once per round, in turn, so that drift hits them all alike."""
        samples: dict[str, list[Sample]] = {key: [] for key in runs}
        for _ in range(self.repeats):
            for key, run in runs.items():
                samples[key].append(run())
        return samples


def seconds(samples: list[Sample]) -> Stats:
    return Stats.of([s.seconds for s in samples])


def overridden(env: dict[str, str], extra: dict[str, str | None]) -> dict[str, str]:
    """``env`` with ``extra`` over it; a None in ``extra`` unsets the variable (its default)."""
    merged = {**env, **extra}
    return {name: value for name, value in merged.items() if value is not None}


def steady_state(bench: Bench) -> dict[str, object]:
    """Scenario 1 and 4: DB up, migrated, admin present; process start to exec of `true`."""
    env = bench.env(100, bench.migrated_database(100))
    variants: dict[str, tuple[str, list[list[str]], dict[str, str | None]]]
    djk8s = [
        django("wait4db", "-s", "1", "-i", "1"),
        django("lockedmigrate", "--noinput"),
        django("ensureadmin"),
    ]
    variants = {
        "a": ("django-entrypoint, all steps (stable 0)", [ENTRYPOINT], {}),
        "d": (
            "django-entrypoint, all steps, the documented defaults (stable 5 s, interval 1 s)",
            [ENTRYPOINT],
            {"ENTRYPOINT_WAIT_STABLE": None},
        ),
        "a'": (
            "django-entrypoint, all steps, b's stable 1 s / interval 1 s (up: no stable period)",
            [ENTRYPOINT],
            {"ENTRYPOINT_WAIT_STABLE": "1", "ENTRYPOINT_WAIT_INTERVAL": "1"},
        ),
        "b": ("djk8s wait4db -s 1 -i 1 && lockedmigrate && ensureadmin", djk8s, {}),
        "b'": ("djk8s lockedmigrate && ensureadmin (no wait4db)", djk8s[1:], {}),
        "c": ("floor: one process, django.setup() + migration plan", [FLOOR_CMD], {}),
    }
    samples = bench.rounds(
        {
            key: partial(run_sequence, commands, overridden(env, extra))
            for key, (_, commands, extra) in variants.items()
        }
    )
    rows: dict[str, object] = {}
    for key, (label, _, _) in variants.items():
        rows[key] = {
            "label": label,
            "seconds": seconds(samples[key]).__dict__,
            "failures": sum(s.failures for s in samples[key]),
            "maxrss_mib": Stats.of([s.maxrss_kib / 1024 for s in samples[key]]).__dict__,
        }
        print(key, label, seconds(samples[key]), flush=True)
    return rows


def fleet_once(
    bench: Bench, command: list[str], extra: dict[str, str], replicas: int, state: str
) -> Sample:
    """One fleet start on a fresh database, empty or already migrated."""
    database = bench.migrated_database(100) if state == "migrated" else bench.pg.create_database()
    return run_fleet(command, bench.env(100, database, **extra), replicas)


FLEET_TOOLS = {
    "django-entrypoint": ENTRYPOINT,
    "manage.py migrate": django("migrate", "--noinput"),
    "djk8s lockedmigrate": django("lockedmigrate", "--noinput"),
}


def fleet(bench: Bench, sizes: list[int], tools: list[str]) -> dict[str, object]:
    """Scenario 2: N processes at once, on an empty and on a migrated database.

    For each N, every tool and state takes its turn in each round: the machine's drift (a
    shared VM speeds up and slows down over minutes) then hits every tool alike.
    """
    results: dict[str, object] = {}
    for replicas in sizes:
        runs: dict[str, Callable[[], Sample]] = {}
        for tool in tools:
            extra = {"ENTRYPOINT_STEPS": "wait,migrate"} if tool == "django-entrypoint" else {}
            for state in STATES:
                runs[f"{tool}|{replicas}|{state}"] = partial(
                    fleet_once, bench, FLEET_TOOLS[tool], extra, replicas, state
                )
        samples = bench.rounds(runs)
        for key, taken in samples.items():
            results[key] = {
                "seconds": seconds(taken).__dict__,
                "failures": [s.failures for s in taken],
            }
            print(*key.split("|"), seconds(taken), flush=True)
    return results


SLOTS_FLEET, SLOTS, SLOTS_MIGRATIONS = 50, 20, 25


def _role_env(bench: Bench, limit: int | None) -> dict[str, str]:
    """A fleet's environment on a fresh database owned by a role of its own (not a superuser:
    a limit binds it), allowed ``limit`` connections (None: no limit of its own)."""
    database = bench.pg.create_database()
    url = bench.pg.owned_by_role(database, f"slots_{database}", limit)
    return bench.env(SLOTS_MIGRATIONS, database, DATABASE_URL=url, ENTRYPOINT_STEPS="wait,migrate")


def slots(bench: Bench) -> dict[str, object]:
    """Scenario 9: a fleet of 50 (wait, migrate) on an empty database, as a role allowed 20
    connections, beside the same fleet as a role the server's 400 slots leave room for.

    Failures (target 0), wall time until the last replica exits, and the fleet's CPU seconds
    (user + system of all its processes), in interleaved rounds.
    """
    variants = {"20 slots": SLOTS, "slots to spare": None}
    runs: dict[str, Callable[[], Sample]] = {}
    for name, limit in variants.items():

        def once(limit: int | None = limit) -> Sample:
            return run_fleet(ENTRYPOINT, _role_env(bench, limit), SLOTS_FLEET)

        runs[name] = once
    samples = bench.rounds(runs)
    results: dict[str, object] = {
        "rounds": bench.repeats,
        "replicas": SLOTS_FLEET,
        "slots": SLOTS,
        "migrations": SLOTS_MIGRATIONS,
    }
    for name, taken in samples.items():
        results[name] = {
            "seconds": seconds(taken).__dict__,
            "cpu_s": Stats.of([s.cpu_s for s in taken]).__dict__,
            "failures": [s.failures for s in taken],
        }
        print(name, seconds(taken), [s.failures for s in taken], flush=True)
    return results


def graph_size(bench: Bench, sizes: list[int]) -> dict[str, object]:
    """Scenario 3: steady state on ever larger migration graphs, against the floor."""
    results: dict[str, object] = {}
    for migrations in sizes:
        env = bench.env(
            migrations, bench.migrated_database(migrations), ENTRYPOINT_STEPS="wait,migrate"
        )
        commands = {
            "django-entrypoint": ENTRYPOINT,
            "manage.py migrate --check": django("migrate", "--check"),
            "floor": FLOOR_QUERY_CMD,
            "floor + system checks": FLOOR_CHECKS_CMD,
            "floor + system checks + structlog": FLOOR_CHECKS_LOG_CMD,
        }
        samples = bench.rounds(
            {name: partial(run_sequence, [command], env) for name, command in commands.items()}
        )
        for name in commands:
            results[f"{name}|{migrations}"] = seconds(samples[name]).__dict__
            print(name, migrations, seconds(samples[name]), flush=True)
    return results


SCENARIOS = (
    "steady",
    "fleet",
    "graph",
    "contended",
    "risk",
    "deploy",
    "schema",
    "slots",
    "image",
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--fleet-repeats", type=int, default=5)
    parser.add_argument("--fleet", default="1,5,10,20,50")
    parser.add_argument("--fleet-tools", default=",".join(FLEET_TOOLS))
    parser.add_argument("--graphs", default="100,500,2000")
    parser.add_argument("--contended-repeats", type=int, default=3)
    parser.add_argument("--deploy-rounds", type=int, default=5)
    parser.add_argument("--slots-repeats", type=int, default=3)
    parser.add_argument(
        "--only",
        default=",".join(SCENARIOS),
        help="scenarios to run (the others keep their figures from the run that made them, "
        "each section saying which run that was)",
    )
    args = parser.parse_args()
    args.only = args.only.split(",")
    unknown = set(args.only) - set(SCENARIOS) or set(args.fleet_tools.split(",")) - set(FLEET_TOOLS)
    if unknown:
        parser.error(f"unknown scenario or tool: {', '.join(sorted(unknown))}")
    return args


def run_scenarios(args: argparse.Namespace) -> dict[str, object]:
    results: dict[str, object] = {}
    pg = Postgres(max_connections=400)  # a fleet of 50 holds a few connections per replica
    pg.start()
    try:
        with tempfile.TemporaryDirectory(prefix="dj-entrypoint-bench-") as tmp:
            bench = Bench(pg, Path(tmp), args.repeats)
            if "steady" in args.only:
                results["steady_state"] = steady_state(bench)
            if "fleet" in args.only:
                bench.repeats = args.fleet_repeats
                sizes = [int(n) for n in args.fleet.split(",")]
                results["fleet"] = fleet(bench, sizes, args.fleet_tools.split(","))
                bench.repeats = args.repeats
            if "graph" in args.only:
                results["graph_size"] = graph_size(bench, [int(n) for n in args.graphs.split(",")])
            if "contended" in args.only:
                results["contended"] = contended_alter(pg, args.contended_repeats)
            if "risk" in args.only:
                results["risk"] = risk.measure(pg, args.repeats)
            if "deploy" in args.only:
                results["deploy"] = deploy.measure(pg, args.deploy_rounds)
            if "schema" in args.only:
                results["schema"] = schema.measure(pg, args.repeats)
            if "slots" in args.only:
                bench.repeats = args.slots_repeats
                results["slots"] = slots(bench)
                bench.repeats = args.repeats
    finally:
        pg.remove()
    if "image" in args.only:
        results["image_size"] = image_size.measure()
    return results


def _git(*args: str) -> str:
    git = shutil.which("git") or "git"
    return subprocess.run(
        [git, *args], cwd=HERE.parent, capture_output=True, text=True, check=False
    ).stdout.strip()


def revision() -> str:
    """The commit measured, marked when the work tree differs from it."""
    modified = " (modified)" if _git("status", "--short", "--untracked-files=no") else ""
    return _git("rev-parse", "--short", "HEAD") + modified


def main() -> None:
    args = parse_args()
    path = HERE / "results.json"
    results: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    fresh = run_scenarios(args)
    run = {
        "machine": f"{platform.node()}: {os.cpu_count()} cores, "
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{platform.platform()}",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "revision": revision(),
        "repeats": args.repeats,
        "fleet_repeats": args.fleet_repeats,
    }
    results.update(fresh)
    if set(args.only) == set(SCENARIOS):
        results.update(run, runs={})  # one run made every section: the header says which
    else:
        results.setdefault("runs", {}).update(dict.fromkeys(fresh, run))
    path.write_text(json.dumps(results, indent=2) + "\n")
    report.write(results, HERE / "results.md", HERE / "results.png")
    print((HERE / "results.md").read_text())


if __name__ == "__main__":
    main()
