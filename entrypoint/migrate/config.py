"""The migrate step's settings (``MigrateSettings``), from its ENTRYPOINT_MIGRATE_* variables.

One frozen value carries every option of a migrate run: the variables, and the command-line
flags of ``lockedmigrate`` folded in once where the command starts (``dataclasses.replace``).
The step, the plan, the apply, ``--plan`` and ``--status`` all read it; the lock's own options
are derived from it (``lock.options.LockOptions.from_settings``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

import dj_database_url

from entrypoint.env_reader import Reader

LOCK_NAMESPACE = "django-entrypoint:migrate"
PRE, POST = (
    "pre",
    "post",
)  # deploy phases: post applies everything; pre what django-safemigrate allows

Target = tuple[str, "str | None"]
VARIABLES = frozenset(
    {
        "ENTRYPOINT_MIGRATE_TARGETS",
        "ENTRYPOINT_MIGRATE_LOCK_ID",
        "ENTRYPOINT_MIGRATE_LOCK_TIMEOUT",
        "ENTRYPOINT_MIGRATE_LOCK_MODE",
        "ENTRYPOINT_MIGRATE_DATABASE_URL",
        "ENTRYPOINT_MIGRATE_TABLE_LOCK_TIMEOUT",
        "ENTRYPOINT_MIGRATE_RETRY_TIMEOUT",
        "ENTRYPOINT_MIGRATE_PHASE",
        "ENTRYPOINT_MIGRATE_MAX_BLOCKING_ROWS",
    }
)


def default_lock_id() -> int:
    """A stable signed 64-bit key, so every replica of every release agrees on it."""
    digest = hashlib.sha256(LOCK_NAMESPACE.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@dataclass(frozen=True)
class MigrateSettings:
    targets: tuple[Target, ...] = ()
    lock_id: int = field(default_factory=default_lock_id)
    lock_timeout: float = 600.0
    lock_mode: str = "auto"  # auto, session or none
    database_url: str = field(default="", repr=False)
    table_lock_timeout: float = 2.0
    retry_timeout: float = 600.0
    phase: str = POST  # PRE or POST
    max_blocking_rows: int | None = None  # the risk gate (plan/risk): None, no gate
    # lockedmigrate's flags: every app to its latest but the named ones (False: only the app
    # named on the command line), --fake, --fake-initial.
    all_apps: bool = True
    fake: bool = False
    fake_initial: bool = False

    @property
    def gated(self) -> bool:
        """Whether the risk gate is on: then each plan that may run is analysed first."""
        return self.max_blocking_rows is not None


def read(reader: Reader, databases: tuple[str, ...] | None) -> MigrateSettings:
    return MigrateSettings(
        targets=read_targets(reader),
        lock_id=read_lock_id(reader),
        lock_timeout=reader.number("ENTRYPOINT_MIGRATE_LOCK_TIMEOUT", 600.0, allow_zero=True),
        lock_mode=reader.choice(
            "ENTRYPOINT_MIGRATE_LOCK_MODE", "auto", ("auto", "session", "none")
        ),
        database_url=read_migrate_url(reader, databases),
        table_lock_timeout=reader.number(
            "ENTRYPOINT_MIGRATE_TABLE_LOCK_TIMEOUT", 2.0, allow_zero=True
        ),
        retry_timeout=reader.number("ENTRYPOINT_MIGRATE_RETRY_TIMEOUT", 600.0, allow_zero=True),
        phase=reader.choice("ENTRYPOINT_MIGRATE_PHASE", POST, (PRE, POST)),
        max_blocking_rows=read_max_blocking_rows(reader),
    )


def read_targets(reader: Reader) -> tuple[Target, ...]:
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


LOCK_ID_RANGE = "a signed 64-bit integer, -9223372036854775808 to 9223372036854775807"


def lock_id_in_range(value: int) -> bool:
    return -(2**63) <= value < 2**63


def read_lock_id(reader: Reader) -> int:
    raw = reader.env.get("ENTRYPOINT_MIGRATE_LOCK_ID", "").strip()
    if not raw:
        return default_lock_id()
    # ASCII digits only: int() also takes "1_000", "+5" and non-ASCII digits.
    value = int(raw) if re.fullmatch(r"-?[0-9]{1,19}", raw, re.ASCII) else 2**63
    if not lock_id_in_range(value):
        reader.fail("ENTRYPOINT_MIGRATE_LOCK_ID", raw, LOCK_ID_RANGE)
        return default_lock_id()
    return value


def read_migrate_url(reader: Reader, databases: tuple[str, ...] | None) -> str:
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


def read_max_blocking_rows(reader: Reader) -> int | None:
    """ENTRYPOINT_MIGRATE_MAX_BLOCKING_ROWS: unset, no gate; else a whole number of rows."""
    name = "ENTRYPOINT_MIGRATE_MAX_BLOCKING_ROWS"
    raw = reader.env.get(name, "").strip()
    if not raw:
        return None
    # ASCII digits only, as for the lock id; up to 10^15 rows, beyond any real table.
    if not re.fullmatch(r"[0-9]{1,15}", raw, re.ASCII):
        reader.fail(name, raw, "a whole number of rows, 0 or more (unset: no gate)")
        return None
    return int(raw)
