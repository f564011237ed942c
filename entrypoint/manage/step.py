"""The manage step: each ENTRYPOINT_MANAGE command in order, in this process, via call_command.

No shell and no subprocess: the commands share the Django set up for the other steps, their
output becomes events, and the first one that fails stops the step (exit 70, naming it).
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Sequence
from contextlib import redirect_stdout
from typing import TYPE_CHECKING

import structlog

from entrypoint import heartbeat, log
from entrypoint.errors import (
    ConfigError,
    EntrypointError,
    LockLost,
    ManageCommandFailed,
    refuse_if_stopped,
)
from entrypoint.manage.config import Command, ManageSettings
from entrypoint.migrate.config import MigrateSettings

if TYPE_CHECKING:
    from django.core.management.base import BaseCommand, CommandParser


def _load(name: str) -> BaseCommand | None:
    from django.core.management import get_commands, load_command_class  # noqa: PLC0415

    app = get_commands().get(name)
    if app is None:
        return None
    return app if not isinstance(app, str) else load_command_class(app, name)


def _parser(command: BaseCommand, name: str) -> CommandParser:
    return command.create_parser("django-entrypoint", name)


def validate(commands: Sequence[Command]) -> None:
    """Every command exists and its arguments parse: a typo is exit 78 before any step runs."""
    from django.core.management.base import CommandError  # noqa: PLC0415

    problems: list[str] = []
    for position, (name, *args) in enumerate(commands, 1):
        where = f"ENTRYPOINT_MANAGE command {position} ({name!r})"
        command = _load(name)
        if command is None:
            problems.append(
                f"{where} is not a management command: check its spelling and that its app "
                "is in INSTALLED_APPS (manage.py help lists them)"
            )
            continue
        try:
            with redirect_stdout(io.StringIO()):  # --help and --version print, then exit
                _parser(command, name).parse_args(args)
        except CommandError as exc:
            problems.append(f"{where} has bad arguments: {str(exc).removeprefix('Error: ')}")
        except SystemExit:
            problems.append(f"{where}: --help and --version print and exit; remove them")
    if problems:
        raise ConfigError(*problems)


def run_command(command: Command, *, position: str) -> float:
    """Run one command; return its duration in seconds. Raise ManageCommandFailed naming it."""
    from django.core.management import call_command  # noqa: PLC0415

    name, *args = command
    loaded = _load(name)
    if loaded is None:  # validated before the steps; the apps cannot have changed since
        raise ConfigError(f"management command {name!r} is no longer available")
    # Never ask: there is nobody at a container's stdin to answer (collectstatic, flush...).
    accepts_input = any(a.dest == "interactive" for a in _parser(loaded, name)._actions)  # noqa: SLF001
    options = {"interactive": False} if accepts_input else {}
    started = time.perf_counter()
    with structlog.contextvars.bound_contextvars(command=name, position=position):
        log.get().info("manage_command_started", argc=len(args))
        stdout, stderr = log.LogStream("manage_output"), log.LogStream("manage_stderr")
        try:
            with heartbeat.running("manage_command_running", command=name):
                call_command(loaded, *args, stdout=stdout, stderr=stderr, **options)
        except SystemExit as exc:  # a command that calls sys.exit()
            if exc.code not in (0, None):
                raise _failed(name, position, f"exited with status {exc.code}") from exc
        except EntrypointError:
            raise
        except Exception as exc:
            log.get().debug("traceback", exc_info=True)
            raise _failed(
                name, position, f"{type(exc).__name__}: {str(exc).strip()[:500]}"
            ) from exc
        finally:
            stdout.flush()
            stderr.flush()
        duration = round(time.perf_counter() - started, 3)
        log.get().info("manage_command_finished", duration_s=duration)
    return duration


def _failed(name: str, position: str, why: str) -> ManageCommandFailed:
    return ManageCommandFailed(
        f"management command {position} {name!r} failed: {why}; the commands after it did "
        "not run: fix it, or remove it from ENTRYPOINT_MANAGE"
    )


def run_commands(commands: Sequence[Command], held: Callable[[], bool] | None = None) -> None:
    for number, command in enumerate(commands, 1):
        refuse_if_stopped()  # a command that swallowed the stop: none after it runs
        if held is not None and not held():
            raise LockLost(
                f"the migration lock's connection was lost before management command "
                f"{command[0]!r}: stopped so as not to run it unprotected; run again"
            )
        run_command(command, position=f"{number}/{len(commands)}")


def run(settings: ManageSettings, aliases: Sequence[str], *, migrate: MigrateSettings) -> None:
    """The manage step; under the default database's migration lock when MANAGE_LOCKED."""
    del aliases  # commands choose their own database, as on the command line
    if not settings.commands:
        return
    if not settings.locked:
        run_commands(settings.commands)
        return
    from django.db import DEFAULT_DB_ALIAS, connections  # noqa: PLC0415

    from entrypoint.migrate.lock.options import LockOptions  # noqa: PLC0415
    from entrypoint.migrate.run.guard import locked  # noqa: PLC0415

    # The migrations' guard too: a keepalive so that no pooler ends the lock mid-command.
    with locked(connections[DEFAULT_DB_ALIAS], LockOptions.from_settings(migrate)) as guard:
        run_commands(settings.commands, guard.holds)
