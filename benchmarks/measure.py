"""Run commands and fleets of commands, and time them."""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

FLOOR = (
    "import django; django.setup()\n"
    "from django.db import connection\n"
    "from django.db.migrations.executor import MigrationExecutor\n"
    "executor = MigrationExecutor(connection)\n"
    "executor.migration_plan(executor.loader.graph.leaf_nodes())\n"
)


# The least a steady-state start can do: set Django up, read django_migrations once, and hand
# over to the server as the entrypoint does (exec, so neither pays for the interpreter's exit).
FLOOR_QUERY = (
    "import django; django.setup()\n"
    "from django.db import connection\n"
    "with connection.cursor() as cursor:\n"
    "    cursor.execute('SELECT app, name FROM django_migrations')\n"
    "    cursor.fetchall()\n"
    "import os, shutil; os.execv(shutil.which('true'), ['true'])\n"
)
# The same with Django's system checks, which the entrypoint runs (as migrate does) and the
# floor does not: what is left between this and the entrypoint is the entrypoint's own cost.
FLOOR_CHECKS = FLOOR_QUERY.replace(
    "from django.db import connection\n",
    "from django.core import checks; checks.run_checks(databases=['default'])\n"
    "from django.db import connection\n",
)
# And with structlog imported, the logger the entrypoint is built on: what is left between this
# and the entrypoint is our own code.
FLOOR_CHECKS_LOG = "import structlog\n" + FLOOR_CHECKS


def django(*args: str) -> list[str]:
    return [sys.executable, "-m", "django", *args]


ENTRYPOINT = [sys.executable, "-m", "entrypoint", "--", "true"]
FLOOR_CMD = [sys.executable, "-c", FLOOR]
FLOOR_QUERY_CMD = [sys.executable, "-c", FLOOR_QUERY]
FLOOR_CHECKS_CMD = [sys.executable, "-c", FLOOR_CHECKS]
FLOOR_CHECKS_LOG_CMD = [sys.executable, "-c", FLOOR_CHECKS_LOG]


@dataclass
class Sample:
    seconds: float
    failures: int = 0
    maxrss_kib: int = 0
    cpu_s: float = 0.0  # user + system of every process the sample ran


@dataclass
class Stats:
    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats:
        return cls(statistics.median(values), min(values), max(values))


def run_sequence(commands: Sequence[list[str]], env: dict[str, str]) -> Sample:
    """Run commands one after the other like `a && b && c`; time the whole chain."""
    started = time.perf_counter()
    peak = 0
    for command in commands:
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert proc.stderr is not None
        err = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        peak = max(peak, usage.ru_maxrss)
        if proc.returncode != 0:
            sys.stderr.write(err.decode(errors="replace")[-2000:])
            return Sample(time.perf_counter() - started, failures=1, maxrss_kib=peak)
    return Sample(time.perf_counter() - started, maxrss_kib=peak)


def run_fleet(command: list[str], env: dict[str, str], replicas: int) -> Sample:
    """Start ``replicas`` copies at once; wall time until the last one has exited, and their
    CPU time (the children this process waited for meanwhile: only these)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    procs = [
        subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(replicas)
    ]
    failures = sum(1 for proc in procs if proc.wait(timeout=900) != 0)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return Sample(seconds, failures=failures, cpu_s=cpu)


def alone(measure: Callable[[Any, int], object], option: str, default: int) -> None:
    """Run one scenario by itself, on a PostgreSQL of its own: ``measure(pg, <option>)``."""
    from tests.services import Postgres  # noqa: PLC0415 - only a scenario run alone needs it

    parser = argparse.ArgumentParser()
    parser.add_argument(option, type=int, default=default)
    count = vars(parser.parse_args())[option.lstrip("-").replace("-", "_")]
    pg = Postgres()
    pg.start()
    try:
        measure(pg, count)
    finally:
        pg.remove()
