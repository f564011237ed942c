"""Run the configured steps in their fixed order, each bound to its name in the logs.

Each step gets its own settings from the one settings object; what one step needs of another
(the wait for migrations, the manage step's lock) is handed to it here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import redirect_stdout
from functools import partial
from typing import TYPE_CHECKING

import structlog

from entrypoint import log
from entrypoint.config import Settings
from entrypoint.errors import refuse_if_stopped

if TYPE_CHECKING:
    from entrypoint.wait.database import Pending

# Each step's module is imported when the step runs (PLC0415 below): a start pays only for the
# steps it runs, and the migrate step's own imports stay lazy until it has work (a steady-state
# start imports neither the lock nor the executor).
Step = Callable[[Settings, Sequence[str]], None]


def migrations_pending(settings: Settings, *, until_migrated: bool = False) -> Pending | None:
    """What the wait step counts when it also waits for migrations (ENTRYPOINT_WAIT_FOR)."""
    if not until_migrated and settings.wait.until != "migrations":
        return None
    from entrypoint.migrate import step as migrate  # noqa: PLC0415 - see Step

    return partial(migrate.still_pending, settings=settings.migrate)


def check_schema(settings: Settings, aliases: Sequence[str]) -> None:
    """ENTRYPOINT_SCHEMA_CHECK, once the schema is where this start needs it: whether it serves
    this code's models (warn, or refuse with 78 before the admin step and the server)."""
    from entrypoint.schema import check  # noqa: PLC0415 - see Step

    check.enforce(aliases, mode=settings.schema_check, targets=settings.migrate.targets)


def _wait(settings: Settings, aliases: Sequence[str]) -> None:
    from entrypoint.wait import database as wait  # noqa: PLC0415 - see Step

    # A standby answers, but a step that writes would fail on it: not ready yet (a failover).
    writes = "migrate" in settings.steps or "admin" in settings.steps
    wait.run(settings.wait, aliases, pending=migrations_pending(settings), writes=writes)
    if settings.wait.until == "migrations":
        check_schema(settings, aliases)  # the app pods beside a migration Job


def _migrate(settings: Settings, aliases: Sequence[str]) -> None:
    from entrypoint.migrate import step as migrate  # noqa: PLC0415 - see Step

    migrate.run(settings.migrate, aliases)
    check_schema(settings, aliases)


def _admin(settings: Settings, aliases: Sequence[str]) -> None:
    from entrypoint.admin import ensure as admin  # noqa: PLC0415 - see Step

    admin.run(settings.admin, aliases, connect_within=settings.wait.timeout)


def _manage(settings: Settings, aliases: Sequence[str]) -> None:
    from entrypoint.manage import step as manage  # noqa: PLC0415 - see Step

    manage.run(settings.manage, aliases, migrate=settings.migrate)


def _hooks(settings: Settings, aliases: Sequence[str]) -> None:
    from entrypoint.hooks import step as hooks  # noqa: PLC0415 - see Step

    hooks.run(settings.hooks, aliases)


STEP_FUNCTIONS: dict[str, Step] = {
    "wait": _wait,
    "migrate": _migrate,
    "admin": _admin,
    "manage": _manage,
    "hooks": _hooks,
}


def validate(settings: Settings, aliases: Sequence[str]) -> None:
    """Checks that need Django but no database: run before any step has a side effect."""
    # Without targets there is nothing to check yet, and loading the migration graph here
    # would load it twice on every start: the plan itself finds conflicts just as well.
    uses_targets = "migrate" in settings.steps or settings.wait.until == "migrations"
    if uses_targets and settings.migrate.targets:
        from entrypoint.migrate.plan import graph  # noqa: PLC0415 - see Step

        graph.check_targets(settings.migrate.targets)
    if uses_targets:
        from entrypoint.migrate.plan import phases  # noqa: PLC0415 - see Step

        phases.require(settings.migrate.phase)
    if "admin" in settings.steps and settings.admin:
        from entrypoint.admin import ensure as admin  # noqa: PLC0415 - see Step

        admin.check(settings.admin, aliases)
    if "manage" in settings.steps:
        from entrypoint.manage import step as manage  # noqa: PLC0415 - see Step

        manage.validate(settings.manage.commands)
    if "hooks" in settings.steps:
        from entrypoint.hooks import step as hooks  # noqa: PLC0415 - see Step

        hooks.validate(settings.hooks)


def run_steps(settings: Settings, aliases: Sequence[str]) -> dict[str, float]:
    """Run each step; return its duration in seconds, by name."""
    durations: dict[str, float] = {}
    for name in settings.steps:
        refuse_if_stopped()  # a stop that the last step's code swallowed ends the start here
        structlog.contextvars.bind_contextvars(step=name)
        log.get().info("step_started", databases=list(aliases))
        started = time.perf_counter()
        with log.LogStream() as stream, redirect_stdout(stream), log.warnings_as_events():
            STEP_FUNCTIONS[name](settings, aliases)
        durations[name] = round(time.perf_counter() - started, 3)
        log.get().info("step_finished", duration_s=durations[name])
    structlog.contextvars.unbind_contextvars("step")
    return durations
