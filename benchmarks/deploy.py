"""Scenario 7: a first deploy of a large real project, against Django's own ``migrate``.

A wagtail site as ``wagtail start`` makes it (wagtail from PyPI: 222 migration files) on an
empty PostgreSQL, each sample on a database of its own: ``manage.py migrate`` and
``django-entrypoint`` with ENTRYPOINT_STEPS=migrate (the lock, the lock analysis of every
pending migration, the apply), in interleaved rounds. Wall time and the CPU time of the process
(user + system). Run alone: ``benchmarks/.venv/bin/python -m benchmarks.deploy`` (it starts its
own PostgreSQL).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.measure import Stats, alone
from benchmarks.risk import project_env
from tests.services import Postgres

TARGET = 1.10
SETTINGS = """\
import os

import dj_database_url

from site_app.settings.dev import *  # noqa: F403

DEBUG = False
DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"])}
"""
TOOLS = {
    "django": [sys.executable, "-m", "django", "migrate", "-v0"],
    "entrypoint": [sys.executable, "-m", "entrypoint"],
}


def project(workdir: Path) -> Path:
    """``wagtail start`` in ``workdir``, with settings that read DATABASE_URL."""
    wagtail = shutil.which("wagtail", path=str(Path(sys.executable).parent))
    if wagtail is None:
        raise RuntimeError("wagtail is not installed in this venv: benchmarks/run installs it")
    site = workdir / "site"
    site.mkdir()
    subprocess.run([wagtail, "start", "site_app", str(site)], check=True, capture_output=True)
    (site / "bench_settings.py").write_text(SETTINGS)
    return site


def _env(site: Path, url: str) -> dict[str, str]:
    env = project_env(site, url, "bench_settings")
    return env | {"ENTRYPOINT_STEPS": "migrate", "ENTRYPOINT_LOG_FORMAT": "json"}


def _run(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one process."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{command} failed: {err.decode(errors='replace')[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime


def count_migrations(site: Path, url: str) -> int:
    probe = (
        "import django; django.setup()\n"
        "from django.db.migrations.loader import MigrationLoader\n"
        "print(len(MigrationLoader(None, ignore_no_migrations=True).disk_migrations))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        env=_env(site, url),
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout.split()[-1])


def measure(pg: Postgres, rounds: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="dj-entrypoint-bench-deploy-") as tmp:
        site = project(Path(tmp))
        migrations = count_migrations(site, pg.url())
        samples: dict[str, list[tuple[float, float]]] = {tool: [] for tool in TOOLS}
        for _ in range(rounds):
            for tool, command in TOOLS.items():  # interleaved: drift hits both alike
                database = pg.create_database()
                samples[tool].append(_run(command, _env(site, pg.url(database))))
                pg.execute(f'DROP DATABASE "{database}"')
    wall = {tool: Stats.of([w for w, _ in found]) for tool, found in samples.items()}
    cpu = {tool: Stats.of([c for _, c in found]) for tool, found in samples.items()}
    ratio_wall = wall["entrypoint"].median / wall["django"].median
    ratio_cpu = cpu["entrypoint"].median / cpu["django"].median
    print(
        f"first deploy, wagtail ({migrations} migrations): migrate {wall['django']}, "
        f"entrypoint {wall['entrypoint']}; wall {ratio_wall:.2f}x, CPU {ratio_cpu:.2f}x",
        flush=True,
    )
    return {
        "project": "wagtail " + _wagtail_version(),
        "migrations": migrations,
        "rounds": rounds,
        "wall": {tool: stats.__dict__ for tool, stats in wall.items()},
        "cpu": {tool: stats.__dict__ for tool, stats in cpu.items()},
        "ratio_wall": ratio_wall,
        "ratio_cpu": ratio_cpu,
        "target": TARGET,
    }


def _wagtail_version() -> str:
    from importlib.metadata import version  # noqa: PLC0415

    return version("wagtail")


def main() -> None:
    alone(measure, "--rounds", 5)


if __name__ == "__main__":
    main()
