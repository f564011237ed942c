"""Scenario 6: what the lock analysis adds to a migrate run with 50 pending migrations.

A generated project of 10 apps, each at its 0001 (a table with rows, analysed), then 50 AddField
migrations pending on those tables. Each sample is a fresh process, as a starting container is:
django.setup() and the plan outside the clock, then the analysis (pglast's import, the SQL
of every operation, the parse, one catalog query) timed. Run alone:
``benchmarks/.venv/bin/python -m benchmarks.risk`` (it starts its own PostgreSQL).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg

from benchmarks.genproject import generate
from benchmarks.measure import Stats, alone
from tests.services import Postgres

ROOT = Path(__file__).resolve().parent.parent
APPS = 10
PENDING = 50
ROWS = 10_000
TARGET_S = 1.0
PROBE = """
import json, time, django
django.setup()
from django.db import connection
from entrypoint.migrate.config import MigrateSettings
from entrypoint.migrate.plan.make import make
plan = list(make(connection, MigrateSettings()).full)
started = time.perf_counter()
from entrypoint.migrate.plan.risk.gate import assess
assessment = assess(connection, plan)
elapsed = time.perf_counter() - started
print(json.dumps({"seconds": elapsed, "steps": len(plan), "high": len(assessment.high())}))
"""


def project_env(project: Path, url: str, settings: str = "benchproj.settings") -> dict[str, str]:
    """A clean environment for a benchmark project's processes: its settings, its database."""
    return {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "PYTHONPATH": f"{project}{os.pathsep}{ROOT}",
        "DJANGO_SETTINGS_MODULE": settings,
        "DATABASE_URL": url,
    }


def _prepare(pg: Postgres, project: Path) -> str:
    """Every app at 0001 with ROWS analysed rows: the 50 AddFields are what is pending."""
    url = pg.url(pg.create_database())
    env = project_env(project, url)
    django = [sys.executable, "-m", "django"]
    subprocess.run([*django, "migrate", "-v0"], env=env, check=True)
    for app in range(APPS):
        subprocess.run([*django, "migrate", f"app{app:02d}", "0001", "-v0"], env=env, check=True)
    with psycopg.connect(url, autocommit=True) as conn:
        for app in range(APPS):
            table = f"app{app:02d}_thing"
            conn.execute(f"INSERT INTO {table} SELECT FROM generate_series(1, {ROWS})".encode())
            conn.execute(f"ANALYZE {table}".encode())
    return url


def measure(pg: Postgres, repeats: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="dj-entrypoint-bench-risk-") as tmp:
        project = generate(Path(tmp) / "p", migrations=APPS + PENDING, apps=APPS)
        url = _prepare(pg, project)
        samples = []
        for _ in range(repeats):
            proc = subprocess.run(
                [sys.executable, "-c", PROBE],
                env=project_env(project, url),
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode:
                raise RuntimeError(f"the probe failed: {proc.stderr[-2000:]}")
            sample = json.loads(proc.stdout.splitlines()[-1])  # after any log line
            assert sample["steps"] == PENDING, sample
            samples.append(sample["seconds"])
    stats = Stats.of(samples)
    print(f"risk analysis, {PENDING} pending migrations (s): {stats}", flush=True)
    return {"migrations": PENDING, "seconds": stats.__dict__, "target_s": TARGET_S}


def main() -> None:
    alone(measure, "--repeats", 11)


if __name__ == "__main__":
    main()
