"""The one settings object, parsed once from an explicit environment mapping.

Every problem is collected and reported together in one ConfigError; nothing here touches a
database or Django. No other module reads ``os.environ``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import dj_database_url

from entrypoint.admin_config import AdminSeed, read_admin_seed
from entrypoint.errors import ConfigError

STEPS = ("wait", "migrate", "admin")
LOCK_NAMESPACE = "django-entrypoint:migrate"

KNOWN_VARIABLES = frozenset(
    {
        "ENTRYPOINT_STEPS",
        "ENTRYPOINT_DATABASES",
        "ENTRYPOINT_WAIT_TIMEOUT",
        "ENTRYPOINT_WAIT_STABLE",
        "ENTRYPOINT_WAIT_INTERVAL",
        "ENTRYPOINT_WAIT_FOR",
        "ENTRYPOINT_LOG_FORMAT",
        "ENTRYPOINT_LOG_LEVEL",
        "ENTRYPOINT_MIGRATE_TARGETS",
        "ENTRYPOINT_MIGRATE_LOCK_ID",
        "ENTRYPOINT_MIGRATE_LOCK_TIMEOUT",
        "ENTRYPOINT_MIGRATE_LOCK_MODE",
        "ENTRYPOINT_MIGRATE_DATABASE_URL",
        "ENTRYPOINT_ADMIN_UPDATE",
    }
)

Target = tuple[str, "str | None"]


def default_lock_id() -> int:
    """A stable signed 64-bit key, so every replica of every release agrees on it."""
    digest = hashlib.sha256(LOCK_NAMESPACE.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@dataclass(frozen=True)
class Settings:
    settings_module: str
    steps: tuple[str, ...] = STEPS
    databases: tuple[str, ...] | None = ("default",)  # None means every alias
    wait_timeout: float = 180.0
    wait_stable: float = 5.0
    wait_interval: float = 1.0
    wait_for: str = "connection"
    log_format: str = "auto"
    log_level: str = "info"
    migrate_targets: tuple[Target, ...] = ()
    migrate_lock_id: int = field(default_factory=default_lock_id)
    migrate_lock_timeout: float = 600.0
    migrate_lock_mode: str = "auto"
    migrate_database_url: str = field(default="", repr=False)
    admin: AdminSeed | None = None


class _Reader:
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
        return _split(self.env.get(name, default))


def seconds(raw: str, *, allow_zero: bool) -> float | None:
    """A finite number of seconds, > 0 (or >= 0); None when ``raw`` is not one."""
    try:
        value = float(raw)
    except ValueError:
        return None
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        return None
    return value


def _split(raw: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(p.strip() for p in raw.split(",") if p.strip()))


def _steps(reader: _Reader, override: str | None) -> tuple[str, ...]:
    name = "--steps" if override is not None else "ENTRYPOINT_STEPS"
    raw = override if override is not None else reader.env.get(name, ",".join(STEPS))
    chosen = _split(raw)
    if chosen in ((), ("none",)):
        return ()
    unknown = [s for s in chosen if s not in STEPS]
    if unknown:
        reader.fail(name, raw, "a comma list of wait, migrate, admin (or none)")
        return ()
    return tuple(s for s in STEPS if s in chosen)  # always run in the documented order


def _databases(reader: _Reader) -> tuple[str, ...] | None:
    aliases = reader.names("ENTRYPOINT_DATABASES", "default")
    if aliases == ("all",):
        return None
    if not aliases or "all" in aliases or not all(a.isidentifier() for a in aliases):
        value = reader.env.get("ENTRYPOINT_DATABASES", "")
        reader.fail("ENTRYPOINT_DATABASES", value, "a comma list of database aliases, or all")
        return ("default",)
    return aliases


def _targets(reader: _Reader) -> tuple[Target, ...]:
    raw = reader.env.get("ENTRYPOINT_MIGRATE_TARGETS", "")
    targets: list[Target] = []
    for item in raw.replace("\n", ",").split(","):
        words = item.split()
        if not words:
            continue
        if len(words) > 2 or not words[0].isidentifier():
            reader.fail("ENTRYPOINT_MIGRATE_TARGETS", item.strip(), "'app_label [migration_name]'")
            continue
        label = words[0]
        if label in (t[0] for t in targets):
            reader.fail("ENTRYPOINT_MIGRATE_TARGETS", item.strip(), "each app named at most once")
            continue
        targets.append((label, words[1] if len(words) == 2 else None))
    return tuple(targets)


def _lock_id(reader: _Reader) -> int:
    raw = reader.env.get("ENTRYPOINT_MIGRATE_LOCK_ID", "").strip()
    if not raw:
        return default_lock_id()
    try:
        value = int(raw)
    except ValueError:
        value = 2**63
    if not -(2**63) <= value < 2**63:
        reader.fail("ENTRYPOINT_MIGRATE_LOCK_ID", raw, "a signed 64-bit integer")
        return default_lock_id()
    return value


def _migrate_url(reader: _Reader, databases: tuple[str, ...] | None) -> str:
    raw = reader.env.get("ENTRYPOINT_MIGRATE_DATABASE_URL", "").strip()
    if not raw:
        return ""
    try:
        dj_database_url.parse(raw)
    except (ValueError, KeyError):
        # The value may hold a password: name the variable, never echo it.
        reader.problems.append(
            "ENTRYPOINT_MIGRATE_DATABASE_URL is not a database URL (value hidden): "
            "expected e.g. postgres://USER:PASSWORD@HOST:5432/NAME, special characters "
            "in the password percent-encoded"
        )
        return ""
    if databases is not None and "default" not in databases:
        reader.problems.append(
            "ENTRYPOINT_MIGRATE_DATABASE_URL stands for the default database, which is not in "
            "ENTRYPOINT_DATABASES: add default there, or unset the URL"
        )
    return raw


def load(
    env: Mapping[str, str],
    *,
    settings_module: str | None = None,
    steps: str | None = None,
) -> Settings:
    """Parse and validate everything up front; raise one ConfigError listing every problem."""
    reader = _Reader(env)
    module = (settings_module or env.get("DJANGO_SETTINGS_MODULE", "")).strip()
    if not module:
        reader.problems.append(
            "DJANGO_SETTINGS_MODULE is not set: set it (e.g. myproject.settings) or pass --settings"
        )
    elif not all(part.isidentifier() for part in module.split(".")):
        reader.fail(
            "DJANGO_SETTINGS_MODULE", module, "a dotted module path, e.g. myproject.settings"
        )
    reader.problems.extend(
        f"{name} is not a known variable: check its spelling (see django-entrypoint --help)"
        for name in sorted(env)
        if name.startswith("ENTRYPOINT_") and name not in KNOWN_VARIABLES
    )
    databases = _databases(reader)
    settings = Settings(
        settings_module=module,
        steps=_steps(reader, steps),
        databases=databases,
        wait_timeout=reader.number("ENTRYPOINT_WAIT_TIMEOUT", 180.0, allow_zero=False),
        wait_stable=reader.number("ENTRYPOINT_WAIT_STABLE", 5.0, allow_zero=True),
        wait_interval=reader.number("ENTRYPOINT_WAIT_INTERVAL", 1.0, allow_zero=False),
        wait_for=reader.choice("ENTRYPOINT_WAIT_FOR", "connection", ("connection", "migrations")),
        log_format=reader.choice("ENTRYPOINT_LOG_FORMAT", "auto", ("auto", "json", "console")),
        log_level=reader.choice(
            "ENTRYPOINT_LOG_LEVEL", "info", ("debug", "info", "warning", "error")
        ),
        migrate_targets=_targets(reader),
        migrate_lock_id=_lock_id(reader),
        migrate_lock_timeout=reader.number(
            "ENTRYPOINT_MIGRATE_LOCK_TIMEOUT", 600.0, allow_zero=True
        ),
        migrate_lock_mode=reader.choice(
            "ENTRYPOINT_MIGRATE_LOCK_MODE", "auto", ("auto", "session", "none")
        ),
        migrate_database_url=_migrate_url(reader, databases),
        admin=read_admin_seed(env, reader.problems),
    )
    if "wait" in settings.steps and settings.wait_stable >= settings.wait_timeout:
        reader.problems.append(
            f"ENTRYPOINT_WAIT_STABLE ({settings.wait_stable:g}) must be shorter than "
            f"ENTRYPOINT_WAIT_TIMEOUT ({settings.wait_timeout:g}): the wait could never succeed"
        )
    if reader.problems:
        raise ConfigError(*reader.problems)
    return settings
