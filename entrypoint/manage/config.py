"""The manage step's settings: the command lines, and whether they run under the lock."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from entrypoint.env_reader import BOOLEANS, Reader

Command = tuple[str, ...]
VARIABLES = frozenset({"ENTRYPOINT_MANAGE", "ENTRYPOINT_MANAGE_LOCKED"})


@dataclass(frozen=True)
class ManageSettings:
    commands: tuple[Command, ...] = ()
    locked: bool = False


def read(reader: Reader) -> ManageSettings:
    return ManageSettings(commands=read_commands(reader), locked=read_locked(reader))


def read_commands(reader: Reader) -> tuple[Command, ...]:
    """One command per line, split like a shell would split it, but never run by one."""
    commands: list[Command] = []
    for number, line in enumerate(reader.env.get("ENTRYPOINT_MANAGE", "").splitlines(), 1):
        try:
            words = shlex.split(line, comments=True)
        except ValueError as exc:
            reader.problems.append(
                f"ENTRYPOINT_MANAGE line {number} cannot be split ({exc}): close its quotes "
                "or escape the character"
            )
            continue
        if words and words[0].startswith("-"):
            reader.problems.append(
                f"ENTRYPOINT_MANAGE line {number} starts with an option ({words[0]!r}): "
                "each line is a command name followed by its arguments"
            )
        elif words:
            commands.append(tuple(words))
    return tuple(commands)


def read_locked(reader: Reader) -> bool:
    raw = reader.env.get("ENTRYPOINT_MANAGE_LOCKED", "")
    flag = BOOLEANS.get(raw.strip().lower() or "false")
    if flag is None:
        reader.fail("ENTRYPOINT_MANAGE_LOCKED", raw, "true/false/1/0/yes/no")
        return False
    return flag
