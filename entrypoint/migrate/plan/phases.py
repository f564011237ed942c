"""Deploy phases: ``pre`` applies what django-safemigrate's ``safemigrate`` command would.

The rules are its own: the command's methods read each migration's ``Safe`` marker, the dates
it first saw delayed migrations, what is blocked behind what, and the ``SAFEMIGRATE`` mode. Only
the glue is ours, so that the trimming happens in our plan, under our lock, with our events.
``post`` (the default) applies everything, as plain ``migrate`` does.

``classify`` and ``select`` only read; the one write, the date a delayed migration was first
seen (safemigrate's ``detect``), is ``record_first_seen``, which the apply runs under the lock
once the plan under it is final, as safemigrate itself does at ``pre_migrate`` time.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.core.management.base import CommandError

from entrypoint.errors import ConfigError
from entrypoint.migrate.config import POST, PRE
from entrypoint.migrate.naming import label

if TYPE_CHECKING:
    from django.db.migrations.migration import Migration

Plan = list[tuple["Migration", bool]]
BLOCKED = "blocked"  # a phase_of verdict beside PRE and POST: behind a migration left for post
APP = "django_safemigrate"
MISSING = (
    "ENTRYPOINT_MIGRATE_PHASE=pre needs django-safemigrate, which is not installed: "
    "pip install django-safemigrate and add 'django_safemigrate' to INSTALLED_APPS, "
    "or unset ENTRYPOINT_MIGRATE_PHASE"
)


@dataclass(frozen=True)
class Sorted:
    """One plan sorted by django-safemigrate's rules; nothing recorded yet."""

    phase_of: dict[str, str] = field(default_factory=dict)  # app.name -> pre, post or blocked
    problems: tuple[str, ...] = ()  # why a pre phase would refuse this plan
    # Delayed with a delay and never seen before: their delay starts when this plan runs.
    first_seen: tuple[Migration, ...] = ()


def installed() -> bool:
    from django.apps import apps  # noqa: PLC0415 - the app registry is ready by now

    return apps.is_installed(APP)


def require(phase: str) -> None:
    """Before any step runs: the pre phase cannot exist without django-safemigrate."""
    if phase == PRE and not installed():
        raise ConfigError(MISSING)


def _command() -> Any:
    from django_safemigrate.management.commands import safemigrate  # noqa: PLC0415

    return safemigrate.Command(stdout=io.StringIO(), stderr=io.StringIO())


def _table_exists() -> bool:
    """Its table of first-seen dates; absent until its own first migration has run.

    safemigrate catches only OperationalError for this, which SQLite raises; PostgreSQL's
    "relation does not exist" is a ProgrammingError, so we look before querying.
    """
    from django.db import connections, router  # noqa: PLC0415
    from django_safemigrate.models import SafeMigration  # noqa: PLC0415

    connection = connections[router.db_for_read(SafeMigration)]
    return SafeMigration._meta.db_table in connection.introspection.table_names()  # noqa: SLF001


def classify(plan: Plan) -> Sorted:
    """Which phase applies each forward step of ``plan``; reads, never writes."""
    if not installed():
        return Sorted()
    command = _command()
    try:
        mode = command.mode.value
        declared = {m: command.safe(m) for m, backwards in plan if not backwards}
    except (ValueError, CommandError) as exc:  # a bad SAFEMIGRATE or Migration.safe
        return Sorted(problems=(f"django-safemigrate: {exc}",))
    if mode == "disabled":  # SAFEMIGRATE = "disabled": safemigrate is plain migrate
        return Sorted(phase_of=dict.fromkeys(map(label, declared), PRE))
    problems: list[str] = []
    backward = [label(m) for m, backwards in plan if backwards]
    if backward:
        problems.append(
            f"the pre phase cannot unapply migrations ({', '.join(backward)}): "
            "django-safemigrate refuses backward plans; roll back with "
            "ENTRYPOINT_MIGRATE_PHASE=post"
        )
    known = bool(declared) and _table_exists()  # else nothing was seen, nothing can be recorded
    detected = command.detected(declared) if known else {}
    ready, delayed, blocked = command.categorize(command.resolve(declared, detected))
    if blocked and mode == "strict":
        problems.append(
            f"django-safemigrate blocks {', '.join(map(label, blocked))}: "
            f"Safe.before_deploy() behind Safe.after_deploy() ({', '.join(map(label, delayed))}), "
            "so the pre phase cannot apply what the new code needs; deploy the after_deploy "
            "migrations first (one release with a post phase), or set SAFEMIGRATE = 'nonstrict'"
        )
    phase_of = {label(m): PRE for m in ready}
    phase_of.update((label(m), POST) for m in delayed)
    phase_of.update((label(m), BLOCKED) for m in blocked)
    first_seen = tuple(
        m
        for m in delayed
        if known
        and declared[m].when.value == "after_deploy"
        and declared[m].delay
        and m not in detected
    )
    return Sorted(phase_of=phase_of, problems=tuple(problems), first_seen=first_seen)


def select(plan: Plan, phase: str, found: Sorted) -> Plan:
    """The steps ``phase`` applies, as ``safemigrate`` trims its plan at pre_migrate time."""
    if phase != PRE:
        return plan
    # Backward steps remain only where SAFEMIGRATE = "disabled" allows them.
    return [(m, b) for m, b in plan if b or found.phase_of.get(label(m)) == PRE]


def seen(migrations: Sequence[Migration]) -> bool:
    """Whether each of ``migrations`` has its first-seen date recorded (a waiter's re-check:
    another replica recorded it meanwhile)."""
    if not migrations:
        return True
    from django_safemigrate.models import SafeMigration  # noqa: PLC0415

    wanted = {(m.app_label, m.name) for m in migrations}
    rows = SafeMigration.objects.filter(app__in={app for app, _ in wanted})
    return wanted <= set(rows.values_list("app", "name"))


def record_first_seen(migrations: Sequence[Migration]) -> None:
    """Under the lock, the plan final: each delayed migration's delay starts now, as
    safemigrate's ``detect`` starts it (its table absent: nothing to record yet)."""
    if migrations and _table_exists():
        _command().detect(list(migrations))
