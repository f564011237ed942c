"""The hooks step's settings: where the hooks are, how long each may run, their environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from entrypoint.env_reader import Reader

HOOKS_DIR = "/etc/django-entrypoint/hooks.d"
# Set in each hook's environment to its path (a script's $0 is /proc/self/fd/N): known, so that
# a hook running the entrypoint's commands is not refused for it; it sets nothing.
HOOK_VARIABLE = "ENTRYPOINT_HOOK"
VARIABLES = frozenset({"ENTRYPOINT_HOOKS_DIR", "ENTRYPOINT_HOOK_TIMEOUT", HOOK_VARIABLE})


@dataclass(frozen=True)
class HooksSettings:
    directory: str = HOOKS_DIR
    timeout: float = 300.0
    # The environment the settings were read from, as it is when the hooks run (the settings
    # module may set variables): the hooks get it without the step-only credentials.
    environment: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)


def read(reader: Reader) -> HooksSettings:
    return HooksSettings(
        directory=reader.env.get("ENTRYPOINT_HOOKS_DIR", "").strip() or HOOKS_DIR,
        timeout=reader.number("ENTRYPOINT_HOOK_TIMEOUT", 300.0, allow_zero=False),
        environment=reader.env,
    )
