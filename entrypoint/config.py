"""The one settings object, parsed once from an explicit environment mapping.

It composes each step's own settings, read by that step's ``config`` module; the steps never
import this module. Every problem is collected and reported together in one ConfigError;
nothing here touches a database or Django. No other module reads ``os.environ``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from entrypoint.admin.config import VARIABLES as ADMIN_VARIABLES
from entrypoint.admin.config import AdminSeed, read_admin_seed
from entrypoint.connection import NETWORK_TIMEOUT
from entrypoint.env_reader import Reader, seconds, seconds_range, split
from entrypoint.errors import ConfigError
from entrypoint.hooks import config as hooks_config
from entrypoint.hooks.config import HooksSettings
from entrypoint.manage import config as manage_config
from entrypoint.manage.config import ManageSettings
from entrypoint.migrate import config as migrate_config
from entrypoint.migrate.config import MigrateSettings, default_lock_id
from entrypoint.schema import config as schema_config
from entrypoint.wait import config as wait_config
from entrypoint.wait.config import WaitSettings

__all__ = [
    "KNOWN_VARIABLES",
    "Settings",
    "default_lock_id",
    "load",
    "no_color",
    "seconds",
    "seconds_range",
]

STEPS = ("wait", "migrate", "admin", "manage", "hooks")
# Keepalive times are whole seconds, and the kernel takes at most 32767 of them: an hour is
# already far past any network a migration should wait out.
NETWORK_TIMEOUT_RANGE = (1.0, 3600.0)

KNOWN_VARIABLES = frozenset(
    {
        "ENTRYPOINT_STEPS",
        "ENTRYPOINT_DATABASES",
        "ENTRYPOINT_LOG_FORMAT",
        "ENTRYPOINT_LOG_LEVEL",
        "ENTRYPOINT_HEARTBEAT_INTERVAL",
        "ENTRYPOINT_DB_NETWORK_TIMEOUT",
    }
    | wait_config.VARIABLES
    | migrate_config.VARIABLES
    | ADMIN_VARIABLES
    | manage_config.VARIABLES
    | hooks_config.VARIABLES
    | {schema_config.VARIABLE}
)


@dataclass(frozen=True)
class Settings:
    """What the whole start-up runs with: its own fields, and each step's settings."""

    settings_module: str
    steps: tuple[str, ...] = STEPS
    databases: tuple[str, ...] | None = ("default",)  # None means every alias
    log_format: str = "auto"
    log_level: str = "info"
    no_color: bool = False  # NO_COLOR: the console rendering without colours
    heartbeat_interval: float = 30.0
    db_network_timeout: float = NETWORK_TIMEOUT  # every connection the entrypoint opens
    wait: WaitSettings = field(default_factory=WaitSettings)
    migrate: MigrateSettings = field(default_factory=MigrateSettings)
    admin: AdminSeed | None = None
    manage: ManageSettings = field(default_factory=ManageSettings)
    hooks: HooksSettings = field(default_factory=HooksSettings)
    schema_check: str = schema_config.WARN  # after the migrate step, or a wait for migrations


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


def _network_timeout(reader: Reader) -> float:
    name = "ENTRYPOINT_DB_NETWORK_TIMEOUT"
    raw = reader.env.get(name, "").strip()
    if not raw:
        return NETWORK_TIMEOUT
    value = seconds(raw, allow_zero=False)
    low, high = NETWORK_TIMEOUT_RANGE
    if value is None or not low <= value <= high:
        reader.fail(name, reader.env[name], f"a number of seconds from {low:g} to {high:g}")
        return NETWORK_TIMEOUT
    return value


def no_color(env: Mapping[str, str]) -> bool:
    """NO_COLOR set and not empty (https://no-color.org): no colours in the console rendering."""
    return bool(env.get("NO_COLOR"))


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
    chosen = _steps(reader, steps)
    settings = Settings(
        settings_module=module,
        steps=chosen,
        databases=databases,
        log_format=reader.choice("ENTRYPOINT_LOG_FORMAT", "auto", ("auto", "json", "console")),
        log_level=reader.choice(
            "ENTRYPOINT_LOG_LEVEL", "info", ("debug", "info", "warning", "error")
        ),
        no_color=no_color(env),
        heartbeat_interval=reader.number("ENTRYPOINT_HEARTBEAT_INTERVAL", 30.0, allow_zero=True),
        db_network_timeout=_network_timeout(reader),
        wait=wait_config.read(reader),
        migrate=migrate_config.read(reader, databases),
        # Read only for a start that runs the step: an app container (ENTRYPOINT_STEPS=none)
        # must not need the secret files mounted only where the admin is ensured.
        admin=read_admin_seed(env, reader.problems) if "admin" in chosen else None,
        manage=manage_config.read(reader),
        hooks=hooks_config.read(reader),
        schema_check=schema_config.read(reader),
    )
    wait = settings.wait
    if "wait" in settings.steps and wait.stable >= wait.timeout:
        reader.problems.append(
            f"ENTRYPOINT_WAIT_STABLE ({wait.stable:g}) must be shorter than "
            f"ENTRYPOINT_WAIT_TIMEOUT ({wait.timeout:g}): the wait could never succeed"
        )
    if reader.problems:
        raise ConfigError(*reader.problems)
    return settings
