"""The one settings object, parsed once from an explicit environment mapping.

Every problem is collected and reported together in one ConfigError; nothing here touches a
database or Django. No other module reads ``os.environ``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from entrypoint.admin.config import AdminSeed, read_admin_seed
from entrypoint.env_reader import Reader, seconds, seconds_range, split
from entrypoint.errors import ConfigError
from entrypoint.manage.config import Command, read_commands, read_locked
from entrypoint.migrate.config import (
    Target,
    default_lock_id,
    read_lock_id,
    read_migrate_url,
    read_targets,
)
from entrypoint.wait.services import Service, read_services

__all__ = [
    "KNOWN_VARIABLES",
    "Settings",
    "Target",
    "default_lock_id",
    "load",
    "seconds",
    "seconds_range",
]

STEPS = ("wait", "migrate", "admin", "manage", "hooks")
HOOKS_DIR = "/etc/django-entrypoint/hooks.d"

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
        "ENTRYPOINT_MIGRATE_TABLE_LOCK_TIMEOUT",
        "ENTRYPOINT_MIGRATE_RETRY_TIMEOUT",
        "ENTRYPOINT_MIGRATE_PHASE",
        "ENTRYPOINT_ADMIN_UPDATE",
        "ENTRYPOINT_WAIT_SERVICES",
        "ENTRYPOINT_MANAGE",
        "ENTRYPOINT_MANAGE_LOCKED",
        "ENTRYPOINT_HOOKS_DIR",
        "ENTRYPOINT_HOOK_TIMEOUT",
        "ENTRYPOINT_HEARTBEAT_INTERVAL",
    }
)


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
    migrate_table_lock_timeout: float = 2.0
    migrate_retry_timeout: float = 600.0
    migrate_phase: str = "post"  # post applies everything; pre what django-safemigrate allows
    admin: AdminSeed | None = None
    wait_services: tuple[Service, ...] = field(default=(), repr=False)
    manage: tuple[Command, ...] = ()
    manage_locked: bool = False
    hooks_dir: str = HOOKS_DIR
    hook_timeout: float = 300.0
    heartbeat_interval: float = 30.0


def _steps(reader: Reader, override: str | None) -> tuple[str, ...]:
    name = "--steps" if override is not None else "ENTRYPOINT_STEPS"
    raw = override if override is not None else reader.env.get(name, ",".join(STEPS))
    chosen = split(raw)
    if chosen in ((), ("none",)):
        return ()
    unknown = [s for s in chosen if s not in STEPS]
    if unknown:
        reader.fail(name, raw, f"a comma list of {', '.join(STEPS)} (or none)")
        return ()
    return tuple(s for s in STEPS if s in chosen)  # always run in the documented order


def _databases(reader: Reader) -> tuple[str, ...] | None:
    aliases = reader.names("ENTRYPOINT_DATABASES", "default")
    if aliases == ("all",):
        return None
    if not aliases or "all" in aliases or not all(a.isidentifier() for a in aliases):
        value = reader.env.get("ENTRYPOINT_DATABASES", "")
        reader.fail("ENTRYPOINT_DATABASES", value, "a comma list of database aliases, or all")
        return ("default",)
    return aliases


def load(
    env: Mapping[str, str],
    *,
    settings_module: str | None = None,
    steps: str | None = None,
) -> Settings:
    """Parse and validate everything up front; raise one ConfigError listing every problem."""
    reader = Reader(env)
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
        migrate_targets=read_targets(reader),
        migrate_lock_id=read_lock_id(reader),
        migrate_lock_timeout=reader.number(
            "ENTRYPOINT_MIGRATE_LOCK_TIMEOUT", 600.0, allow_zero=True
        ),
        migrate_lock_mode=reader.choice(
            "ENTRYPOINT_MIGRATE_LOCK_MODE", "auto", ("auto", "session", "none")
        ),
        migrate_database_url=read_migrate_url(reader, databases),
        migrate_table_lock_timeout=reader.number(
            "ENTRYPOINT_MIGRATE_TABLE_LOCK_TIMEOUT", 2.0, allow_zero=True
        ),
        migrate_retry_timeout=reader.number(
            "ENTRYPOINT_MIGRATE_RETRY_TIMEOUT", 600.0, allow_zero=True
        ),
        migrate_phase=reader.choice("ENTRYPOINT_MIGRATE_PHASE", "post", ("pre", "post")),
        admin=read_admin_seed(env, reader.problems),
        wait_services=read_services(reader),
        manage=read_commands(reader),
        manage_locked=read_locked(reader),
        hooks_dir=env.get("ENTRYPOINT_HOOKS_DIR", "").strip() or HOOKS_DIR,
        hook_timeout=reader.number("ENTRYPOINT_HOOK_TIMEOUT", 300.0, allow_zero=False),
        heartbeat_interval=reader.number("ENTRYPOINT_HEARTBEAT_INTERVAL", 30.0, allow_zero=True),
    )
    if "wait" in settings.steps and settings.wait_stable >= settings.wait_timeout:
        reader.problems.append(
            f"ENTRYPOINT_WAIT_STABLE ({settings.wait_stable:g}) must be shorter than "
            f"ENTRYPOINT_WAIT_TIMEOUT ({settings.wait_timeout:g}): the wait could never succeed"
        )
    if reader.problems:
        raise ConfigError(*reader.problems)
    return settings
