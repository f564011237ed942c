"""Run the real CLI as a subprocess and read its JSON log lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PROJECTS = ROOT / "tests" / "projects"
DEMO = ROOT / "image" / "demo"


def base_env(**extra: str) -> dict[str, str]:
    """A clean environment: nothing leaks in from the shell that runs the tests."""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
        "PYTHONPATH": os.pathsep.join([str(PROJECTS), str(DEMO)]),
        "DJANGO_SETTINGS_MODULE": "testproj.settings",
        "ENTRYPOINT_LOG_FORMAT": "json",
        "ENTRYPOINT_WAIT_STABLE": "0",
        "ENTRYPOINT_WAIT_INTERVAL": "0.2",
    }
    if os.environ.get("TESTPROJ_MYSQL_DRIVER"):  # the one deliberate leak: which MySQL driver
        env["TESTPROJ_MYSQL_DRIVER"] = os.environ["TESTPROJ_MYSQL_DRIVER"]
    env.update(extra)
    return env


def migrate_env(url: str, **extra: str) -> dict[str, str]:
    """The migrate step alone on migproj (testproj plus apps the TESTPROJ_* flags add)."""
    defaults = {
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "migproj.settings",
        "ENTRYPOINT_STEPS": "migrate",
    }
    return base_env(**(defaults | extra))


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    events: list[dict[str, Any]] = field(default_factory=list)

    def named(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == event]

    def last(self) -> dict[str, Any]:
        return self.events[-1]


def parse_events(text: str) -> list[dict[str, Any]]:
    """Every line must be a JSON object: a raw line in the stream is a defect."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def entrypoint_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "entrypoint", *args]


def django_cmd(*args: str) -> list[str]:
    """``django-admin ARGS`` in the tests' interpreter."""
    return [sys.executable, "-m", "django", *args]


def run_django(
    *args: str, env: dict[str, str], timeout: float = 120, json_log: bool = True
) -> Result:
    """``django-admin ARGS`` in the tests' interpreter; ``json_log``: stderr is our events."""
    proc = subprocess.run(
        django_cmd(*args),
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    events = parse_events(proc.stderr) if json_log else []
    return Result(proc.returncode, proc.stdout, proc.stderr, events)


def run_cli(*args: str, env: dict[str, str], timeout: float = 120) -> Result:
    proc = subprocess.run(
        entrypoint_cmd(*args), env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    return Result(proc.returncode, proc.stdout, proc.stderr, parse_events(proc.stderr))


def start_cli(
    *args: str, env: dict[str, str], command: Callable[..., list[str]] = entrypoint_cmd
) -> subprocess.Popen[str]:
    """The CLI started with ARGS (``command=django_cmd``: a management command instead)."""
    return subprocess.Popen(
        command(*args), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(proc: subprocess.Popen[str], timeout: float = 120) -> Result:
    stdout, stderr = proc.communicate(timeout=timeout)
    return Result(proc.returncode, stdout, stderr, parse_events(stderr))
