"""Run the configured steps in their fixed order, each bound to its name in the logs.

Each step gets its own settings from the one settings object; what one step needs of another
(the wait for migrations, the manage step's lock) is handed to it here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import redirect_stdout
from functools import partial

import structlog

from entrypoint import log
from entrypoint.admin import ensure as admin
from entrypoint.config import Settings
from entrypoint.hooks import step as hooks
from entrypoint.manage import step as manage
from entrypoint.migrate import step as migrate
from entrypoint.migrate.plan import graph, phases
from entrypoint.wait import database as wait

Step = Callable[[Settings, Sequence[str]], None]


def migrations_pending(settings: Settings, *, until_migrated: bool = False) -> wait.Pending | None:
    """What the wait step counts when it also waits for migrations (ENTRYPOINT_WAIT_FOR)."""
    if not until_migrated and settings.wait.until != "migrations":
        return None
    return partial(
        migrate.still_pending, targets=settings.migrate.targets, phase=settings.migrate.phase
    )


STEP_FUNCTIONS: dict[str, Step] = {
    "wait": lambda s, aliases: wait.run(s.wait, aliases, pending=migrations_pending(s)),
    "migrate": lambda s, aliases: migrate.run(s.migrate, aliases),
    "admin": lambda s, aliases: admin.run(s.admin, aliases),
    "manage": lambda s, aliases: manage.run(s.manage, aliases, migrate=s.migrate),
    "hooks": lambda s, aliases: hooks.run(s.hooks, aliases),
}


def validate(settings: Settings, aliases: Sequence[str]) -> None:
    """Checks that need Django but no database: run before any step has a side effect."""
    # Without targets there is nothing to check yet, and loading the migration graph here
    # would load it twice on every start: the plan itself finds conflicts just as well.
    uses_targets = "migrate" in settings.steps or settings.wait.until == "migrations"
    if uses_targets and settings.migrate.targets:
        graph.check_targets(settings.migrate.targets)
    if uses_targets:
        phases.require(settings.migrate.phase)
    if "admin" in settings.steps and settings.admin:
        admin.check(settings.admin, aliases)
    if "manage" in settings.steps:
        manage.validate(settings.manage.commands)
    if "hooks" in settings.steps:
        hooks.validate(settings.hooks)


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
