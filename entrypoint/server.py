"""Replace this process with the app server, which keeps the PID and receives the signals.

The server starts as if started directly: default signal dispositions, an empty signal mask,
and the environment without the entrypoint's own secrets.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NoReturn

from entrypoint import log
from entrypoint.env_reader import STEP_ONLY_CREDENTIALS, without_step_credentials
from entrypoint.errors import CommandNotExecutable, CommandNotFound

HEAD_SIZE = 256  # how much of a file Linux reads to choose how to run it (the #! line included)

# An ignored signal survives exec: one our parent ignored (nohup's SIGHUP) stays ignored, as for
# a server started directly. Python itself ignores SIGPIPE and SIGXFSZ at start-up: not those.
_INHERITED_IGNORED = frozenset(
    s for s in signal.valid_signals() if signal.getsignal(s) == signal.SIG_IGN
) - {signal.SIGPIPE, signal.SIGXFSZ}


def resolve(program: str) -> str:
    """The path execvp would run, or the error it would hit, found before any step runs."""
    if not program:
        raise CommandNotFound(
            "the command is an empty string: name a program (e.g. gunicorn), "
            "or give no command to run the steps only"
        )
    found = shutil.which(program)
    if found:
        _check_format(program, found)
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


def _check_format(program: str, path: str) -> None:
    """What execv would refuse only after the steps: no binary, no #! line, no interpreter."""
    file = Path(path)
    if not stat.S_ISREG(file.stat().st_mode):
        raise CommandNotExecutable(f"command {program!r} ({path}) is not a regular file")
    try:
        with file.open("rb") as handle:
            head = handle.read(HEAD_SIZE)
    except PermissionError:
        return  # execute-only: the kernel may still run a binary we cannot read
    if head.startswith(b"\x7fELF"):
        return
    if not head.startswith(b"#!"):
        raise CommandNotExecutable(
            f"command {program!r} is neither a binary nor a script with a #! line: "
            "add one (e.g. #!/bin/sh) or run it through its interpreter"
        )
    _check_interpreter(program, head[2:].split(b"\n", 1)[0].decode(errors="replace").strip())


def _check_interpreter(program: str, line: str) -> None:
    interpreter, _, argument = line.partition(" ")
    if not interpreter or not os.access(interpreter, os.X_OK) or Path(interpreter).is_dir():
        raise CommandNotExecutable(
            f"command {program!r} names the interpreter {interpreter!r} in its #! line, "
            "which is not an executable file: install it or fix the #! line"
        )
    # The kernel passes the rest of the line as one argument: `env NAME` looks NAME up on PATH.
    argument = argument.strip()
    looked_up = Path(interpreter).name == "env" and argument and " " not in argument
    if looked_up and not argument.startswith("-") and not shutil.which(argument):
        raise CommandNotFound(
            f"command {program!r} runs '#!{line}', and {argument!r} is not on PATH: "
            "install it in the image or fix the #! line"
        )


def default_signals() -> None:
    """Every disposition Python or we changed back to the default, and no signal blocked."""
    for signum in signal.valid_signals() - _INHERITED_IGNORED - {signal.SIGKILL, signal.SIGSTOP}:
        if signal.getsignal(signum) not in (signal.SIG_DFL, None):
            signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, ())


def exec_command(command: Sequence[str], *, env: Mapping[str, str]) -> NoReturn:
    path = resolve(command[0])
    from django.db import connections  # noqa: PLC0415 - only when Django was set up

    connections.close_all()
    # Only the program name: arguments may carry values that must not reach the logs.
    log.get().info(
        "exec",
        command=command[0],
        path=path,
        argc=len(command) - 1,
        pid=os.getpid(),
        env_removed=sorted(set(env) & STEP_ONLY_CREDENTIALS),
    )
    log.flush()
    default_signals()
    try:
        os.execve(path, list(command), without_step_credentials(env))  # noqa: S606 - no shell is the point
    except OSError as exc:  # e.g. a binary for another architecture
        raise CommandNotExecutable(
            f"command {command[0]!r} cannot be executed: {exc.strerror}"
        ) from exc
