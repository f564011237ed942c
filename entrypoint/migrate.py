"""lockedmigrate: placeholder until the locked migrate step lands (issue 3)."""

from __future__ import annotations

from collections.abc import Sequence

from entrypoint.config import Settings
from entrypoint.errors import StepFailed


def run(settings: Settings, aliases: Sequence[str]) -> None:
    del settings, aliases
    raise StepFailed("the migrate step is not implemented yet: set ENTRYPOINT_STEPS=wait")
