"""ensureadmin: placeholder until the admin step lands (issue 4)."""

from __future__ import annotations

from collections.abc import Sequence

from entrypoint.config import Settings
from entrypoint.errors import StepFailed


def run(settings: Settings, aliases: Sequence[str]) -> None:
    del settings, aliases
    raise StepFailed("the admin step is not implemented yet: set ENTRYPOINT_STEPS=wait")
