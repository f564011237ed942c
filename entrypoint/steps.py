"""Run the configured steps in their fixed order, each bound to its name in the logs."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import redirect_stdout

import structlog

from entrypoint import hooks, log
from entrypoint.admin import ensure as admin
from entrypoint.config import Settings
from entrypoint.manage import step as manage
from entrypoint.migrate import phases, plan
from entrypoint.migrate import step as migrate
from entrypoint.wait import database as wait

Step = Callable[[Settings, Sequence[str]], None]
STEP_FUNCTIONS: dict[str, Step] = {
    "wait": wait.run,
    "migrate": migrate.run,
    "admin": admin.run,
    "manage": manage.run,
    "hooks": hooks.run,
}


def validate(settings: Settings, aliases: Sequence[str]) -> None:
    """Checks that need Django but no database: run before any step has a side effect."""
    # Without targets there is nothing to check yet, and loading the migration graph here
    # would load it twice on every start: the plan itself finds conflicts just as well.
    uses_targets = "migrate" in settings.steps or settings.wait_for == "migrations"
    if uses_targets and settings.migrate_targets:
        plan.check_targets(settings.migrate_targets)
    if uses_targets:
        phases.require(settings.migrate_phase)
    if "admin" in settings.steps and settings.admin:
        admin.check(settings.admin, aliases)
    if "manage" in settings.steps:
        manage.validate(settings.manage)
    if "hooks" in settings.steps:
        hooks.validate(settings)


def run_steps(settings: Settings, aliases: Sequence[str]) -> dict[str, float]:
    """Run each step; return its duration in seconds, by name."""
    durations: dict[str, float] = {}
    for name in settings.steps:
        structlog.contextvars.bind_contextvars(step=name)
        log.get().info("step_started", databases=list(aliases))
        started = time.perf_counter()
        with log.LogStream() as stream, redirect_stdout(stream), log.warnings_as_events():
            STEP_FUNCTIONS[name](settings, aliases)
        durations[name] = round(time.perf_counter() - started, 3)
        log.get().info("step_finished", duration_s=durations[name])
    structlog.contextvars.unbind_contextvars("step")
    return durations
