"""Deploy phases: ``pre`` applies what django-safemigrate's ``safemigrate`` command would.

The rules are its own: the command's methods read each migration's ``Safe`` marker, the dates
it first saw delayed migrations, what is blocked behind what, and the ``SAFEMIGRATE`` mode. Only
the glue is ours, so that the trimming happens in our plan, under our lock, with our events.
``post`` (the default) applies everything, as plain ``migrate`` does.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.core.management.base import CommandError

from entrypoint import log
from entrypoint.errors import ConfigError, PlanRefused
from entrypoint.migrate.naming import label

if TYPE_CHECKING:
    from django.db.migrations.migration import Migration

Plan = list[tuple["Migration", bool]]
PRE, POST, BLOCKED = "pre", "post", "blocked"
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
    to_record: tuple[Migration, ...] = ()  # delayed with a delay: their first-seen date starts now


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
    detected = command.detected(declared) if declared and _table_exists() else {}
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
    to_record = tuple(
        m for m in delayed if declared[m].when.value == "after_deploy" and declared[m].delay
    )
    return Sorted(phase_of=phase_of, problems=tuple(problems), to_record=to_record)


def select(plan: Plan, phase: str, *, report: bool = True) -> Plan:
    """The steps ``phase`` applies, as ``safemigrate`` trims its plan: pre_migrate time.

    ``report``: log what is deferred. The plan made before the lock says so; the re-plans under
    it (and after a table-lock retry) pass False, so a run logs it once.
    """
    if phase != PRE or not plan:
        return plan
    require(phase)
    found = classify(plan)
    if found.problems:
        raise PlanRefused(*found.problems)
    if found.to_record and _table_exists():
        _command().detect(list(found.to_record))  # starts their delay, as safemigrate does
    delayed = [name for name, p in found.phase_of.items() if p == POST]
    blocked = [name for name, p in found.phase_of.items() if p == BLOCKED]  # nonstrict mode
    if report and (delayed or blocked):
        log.get().info("migrations_deferred", phase=PRE, delayed=delayed, blocked=blocked)
    # Backward steps remain only where SAFEMIGRATE = "disabled" allows them.
    return [(m, b) for m, b in plan if b or found.phase_of[label(m)] == PRE]


def awaited(plan: Plan, phase: str) -> Plan:
    """What pods of the new release wait for: in the pre phase, not what waits for post."""
    if phase != PRE:
        return plan
    require(phase)
    found = classify(plan)
    return [step for step in plan if found.phase_of.get(label(step[0])) != POST]
