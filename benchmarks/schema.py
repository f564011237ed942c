"""Scenario 7: what the schema check (ENTRYPOINT_SCHEMA_CHECK) adds to a start, on 200 models.

A generated project of 10 apps with 20 models each (a dozen column types, a foreign key, one
many-to-many table per app), migrated. Two measures, in interleaved rounds: the steady-state
start (wait and migrate, then exec ``true``) with ``warn`` against the same start with ``off``;
and the check alone in a fresh process (``verdict`` on an open connection), which the start's
noise would hide. Run alone: ``benchmarks/.venv/bin/python -m benchmarks.schema``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.genproject import SETTINGS
from benchmarks.measure import ENTRYPOINT, Stats, alone, run_sequence
from benchmarks.risk import project_env
from tests.services import Postgres

APPS = 10
MODELS_PER_APP = 20
TARGET_S = 0.050
MODEL = """

class M{n:02d}(models.Model):
    name = models.CharField(max_length=50)
    count = models.IntegerField(default=0)
    total = models.BigIntegerField(default=0)
    ratio = models.DecimalField(max_digits=8, decimal_places=2, default=0)
    created = models.DateTimeField(null=True)
    day = models.DateField(null=True)
    flag = models.BooleanField(default=False)
    key = models.UUIDField(null=True)
    payload = models.JSONField(default=dict)
    body = models.TextField(blank=True)
    parent = models.ForeignKey({parent}, null=True, on_delete=models.SET_NULL)
"""
# What a start has loaded and opened by then (Django, the logger, the connection) is outside the
# clock; the check's own modules are inside.
PROBE = """
import json, time, django
django.setup()
import entrypoint.log
from django.db import connections
connection = connections["default"]
connection.ensure_connection()
started = time.perf_counter()
from entrypoint.schema.check import verdict
result = verdict(connection)
elapsed = time.perf_counter() - started
print(json.dumps({"seconds": elapsed, "models": result.models, "problems": len(result.problems)}))
"""


def generate(root: Path) -> Path:
    """Write project ``benchproj`` (APPS x MODELS_PER_APP models) under root, with migrations."""
    labels = [f"app{i:02d}" for i in range(APPS)]
    (root / "benchproj").mkdir(parents=True)
    (root / "benchproj" / "__init__.py").write_text("")
    apps = "\n".join(f'    "{label}",' for label in labels)
    (root / "benchproj" / "settings.py").write_text(SETTINGS.format(apps=apps))
    for label in labels:
        (root / label / "migrations").mkdir(parents=True)
        (root / label / "__init__.py").write_text("")
        (root / label / "migrations" / "__init__.py").write_text("")
        models = "from django.db import models\n" + "".join(
            MODEL.format(n=n, parent=f"M{n - 1:02d}" if n else '"self"')
            for n in range(MODELS_PER_APP)
        )
        models += "    tags = models.ManyToManyField(M00, related_name='+')\n"
        (root / label / "models.py").write_text(models)
    return root


def _env(project: Path, url: str, check: str) -> dict[str, str]:
    return {
        **project_env(project, url),
        "ENTRYPOINT_LOG_FORMAT": "json",
        "ENTRYPOINT_WAIT_STABLE": "0",
        "ENTRYPOINT_STEPS": "wait,migrate",
        "ENTRYPOINT_SCHEMA_CHECK": check,
    }


def _prepare(pg: Postgres, project: Path) -> str:
    url = pg.url(pg.create_database())
    django = [sys.executable, "-m", "django"]
    env = _env(project, url, "refuse")
    subprocess.run([*django, "makemigrations", "-v0"], env=env, check=True)
    if run_sequence([ENTRYPOINT], env).failures:  # migrates; refuse: compatible, or it fails
        raise RuntimeError("could not prepare a migrated, compatible database")
    return url


def _probe(env: dict[str, str]) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode:
        raise RuntimeError(f"the probe failed: {proc.stderr[-2000:]}")
    sample: dict[str, float] = json.loads(proc.stdout.splitlines()[-1])
    return sample


def measure(pg: Postgres, repeats: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="dj-entrypoint-bench-schema-") as tmp:
        project = generate(Path(tmp) / "p")
        url = _prepare(pg, project)
        starts: dict[str, list[float]] = {"warn": [], "off": []}
        checks: list[float] = []
        models = 0
        for _ in range(repeats):
            for mode, samples in starts.items():
                sample = run_sequence([ENTRYPOINT], _env(project, url, mode))
                if sample.failures:
                    raise RuntimeError(f"the start with {mode} failed")
                samples.append(sample.seconds)
            probe = _probe(_env(project, url, "warn"))
            assert probe["problems"] == 0, probe
            checks.append(probe["seconds"])
            models = int(probe["models"])
    result = {
        "models": models,
        "check_s": Stats.of(checks).__dict__,
        "start_warn_s": Stats.of(starts["warn"]).__dict__,
        "start_off_s": Stats.of(starts["off"]).__dict__,
        "target_s": TARGET_S,
    }
    print(f"schema check, {models} models: {json.dumps(result)}", flush=True)
    return result


def main() -> None:
    alone(measure, "--repeats", 11)


if __name__ == "__main__":
    main()
