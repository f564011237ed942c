"""Typed reads of environment variables from an explicit mapping, shared by the config modules."""

from __future__ import annotations

import math
from collections.abc import Mapping


class Reader:
    """Reads variables from one mapping and records every problem instead of stopping."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def fail(self, name: str, value: str, expected: str) -> None:
        shown = value if len(value) <= 60 else value[:57] + "..."
        self.problems.append(f"{name}={shown!r} is invalid: expected {expected}")

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.env.get(name, default).strip().lower() or default
        if value not in choices:
            self.fail(name, self.env[name], "one of " + ", ".join(choices))
            return default
        return value

    def number(self, name: str, default: float, *, allow_zero: bool) -> float:
        raw = self.env.get(name, "").strip()
        if not raw:
            return default
        value = seconds(raw, allow_zero=allow_zero)
        if value is None:
            bound = ">= 0" if allow_zero else "> 0"
            self.fail(name, self.env[name], f"a number of seconds {bound}, e.g. 30 or 2.5")
            return default
        return value

    def names(self, name: str, default: str) -> tuple[str, ...]:
        return split(self.env.get(name, default))


def seconds(raw: str, *, allow_zero: bool) -> float | None:
    """A finite number of seconds, > 0 (or >= 0); None when ``raw`` is not one."""
    try:
        value = float(raw)
    except ValueError:
        return None
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        return None
    return value


def split(raw: str) -> tuple[str, ...]:
    """The distinct non-empty items of a comma list, in order."""
    return tuple(dict.fromkeys(p.strip() for p in raw.split(",") if p.strip()))
