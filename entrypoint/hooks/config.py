"""The hooks step's settings: where the hooks are and how long each may run."""

from __future__ import annotations

from dataclasses import dataclass

from entrypoint.env_reader import Reader

HOOKS_DIR = "/etc/django-entrypoint/hooks.d"
VARIABLES = frozenset({"ENTRYPOINT_HOOKS_DIR", "ENTRYPOINT_HOOK_TIMEOUT"})


@dataclass(frozen=True)
class HooksSettings:
    directory: str = HOOKS_DIR
    timeout: float = 300.0


def read(reader: Reader) -> HooksSettings:
    return HooksSettings(
        directory=reader.env.get("ENTRYPOINT_HOOKS_DIR", "").strip() or HOOKS_DIR,
        timeout=reader.number("ENTRYPOINT_HOOK_TIMEOUT", 300.0, allow_zero=False),
    )
