"""Replace this process with the app server, which keeps the PID and receives the signals."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from typing import NoReturn

from entrypoint import log
from entrypoint.errors import CommandNotExecutable, CommandNotFound


def resolve(program: str) -> str:
    """The path execvp would run, or the error it would hit, found before any step runs."""
    found = shutil.which(program)
    if found:
        return found
    if os.sep in program and os.path.exists(program):  # noqa: PTH110 - mirrors execvp's test
        raise CommandNotExecutable(
            f"command {program!r} is not executable: chmod +x it or run it through its interpreter"
        )
    if os.sep not in program and any(
        os.path.exists(os.path.join(d, program))  # noqa: PTH110, PTH118
        for d in os.get_exec_path()
    ):
        raise CommandNotExecutable(
            f"command {program!r} is on PATH but not executable: chmod +x it"
        )
    raise CommandNotFound(
        f"command {program!r} not found on PATH: install it in the image or give its full path"
    )


def exec_command(command: Sequence[str]) -> NoReturn:
    path = resolve(command[0])
    from django.db import connections  # noqa: PLC0415 - only when Django was set up

    connections.close_all()
    # Only the program name: arguments may carry values that must not reach the logs.
    log.get().info("exec", command=command[0], path=path, argc=len(command) - 1, pid=os.getpid())
    log.flush()
    try:
        os.execv(path, list(command))  # noqa: S606 - exec without a shell is the point
    except OSError as exc:  # e.g. no interpreter for a script's #! line
        raise CommandNotExecutable(
            f"command {command[0]!r} cannot be executed: {exc.strerror}"
        ) from exc
