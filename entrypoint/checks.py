"""Django's system checks, run once per process however many steps or aliases ask for them."""

from __future__ import annotations

from collections.abc import Sequence

from entrypoint import log
from entrypoint.errors import ConfigError

_done = False


def run_once(aliases: Sequence[str]) -> None:
    """What ``manage.py migrate`` runs first; warnings become events, errors a ConfigError."""
    global _done  # noqa: PLW0603 - once per process is the point
    if _done:
        return
    _done = True
    from django.core import checks  # noqa: PLC0415 - Django is set up by the caller

    problems: list[str] = []
    for message in checks.run_checks(databases=list(aliases)):
        if message.is_silenced():
            continue
        if message.is_serious():
            problems.append(f"{message.id}: {message.msg} ({message.obj})")
        else:
            log.get().warning(
                "system_check_warning",
                id=message.id,
                message=str(message.msg),
                obj=str(message.obj),
                hint=message.hint,
            )
    if problems:
        problems.append("fix them, or silence them with SILENCED_SYSTEM_CHECKS")
        raise ConfigError(*problems)
