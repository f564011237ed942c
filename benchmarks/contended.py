"""Scenario 4: app queries on a table while a migration ALTERs it behind a long app transaction.

The tests' migproj project at `main 0001`; an app session holds `main_item` in an open
transaction for BLOCKER_S seconds; an app client runs `SELECT count(*) FROM main_item` in a
loop and times each query; then the migration to latest runs (main 0002 adds a column), with
plain `manage.py migrate` or with the entrypoint and its default table-lock timeout.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg

from tests.services import Postgres

ROOT = Path(__file__).resolve().parent.parent
BLOCKER_S = 8.0
TIMEOUT_S = 2.0  # ENTRYPOINT_MIGRATE_TABLE_LOCK_TIMEOUT's default
COMMANDS = {
    "manage.py migrate": [sys.executable, "-m", "django", "migrate", "--noinput"],
    "django-entrypoint": [sys.executable, "-m", "entrypoint"],
}


def _env(url: str, **extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "PYTHONPATH": f"{ROOT / 'tests' / 'projects'}{os.pathsep}{ROOT}",
        "DJANGO_SETTINGS_MODULE": "migproj.settings",
        "DATABASE_URL": url,
        "ENTRYPOINT_STEPS": "migrate",
        "ENTRYPOINT_LOG_FORMAT": "json",
        **extra,
    }


def _traffic(url: str, stop: threading.Event, latencies: list[float]) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        while not stop.is_set():
            started = time.perf_counter()
            conn.execute("SELECT count(*) FROM main_item")
            latencies.append(time.perf_counter() - started)
            time.sleep(0.02)


def once(pg: Postgres, tool: str) -> dict[str, float]:
    """One run on a fresh database: worst and p99 app-query latency, the migration's seconds."""
    url = pg.url(pg.create_database())
    prepare = subprocess.run(
        COMMANDS["django-entrypoint"],
        env=_env(url, ENTRYPOINT_MIGRATE_TARGETS="main 0001"),
        capture_output=True,
        check=False,
    )
    if prepare.returncode:
        raise RuntimeError(prepare.stderr.decode()[-2000:])
    latencies: list[float] = []
    stop = threading.Event()
    with psycopg.connect(url) as blocker:
        blocker.execute("SELECT count(*) FROM main_item")  # ACCESS SHARE until the commit
        traffic = threading.Thread(target=_traffic, args=(url, stop, latencies))
        traffic.start()
        timer = threading.Timer(BLOCKER_S, blocker.commit)
        timer.start()
        started = time.perf_counter()
        proc = subprocess.run(COMMANDS[tool], env=_env(url), capture_output=True, check=False)
        migration_s = time.perf_counter() - started
        timer.join()
    stop.set()
    traffic.join()
    if proc.returncode:
        raise RuntimeError(proc.stderr.decode()[-2000:])
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {"worst_s": max(latencies), "p99_s": cuts[98], "migration_s": migration_s}


def contended_alter(pg: Postgres, repeats: int) -> dict[str, object]:
    runs: dict[str, list[dict[str, float]]] = {tool: [] for tool in COMMANDS}
    for _ in range(repeats):
        for tool in COMMANDS:  # interleaved, so that drift hits both alike
            runs[tool].append(once(pg, tool))
            print("contended", tool, runs[tool][-1], flush=True)
    return {"blocker_s": BLOCKER_S, "timeout_s": TIMEOUT_S, "runs": runs}
