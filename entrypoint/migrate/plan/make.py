"""One alias's plan, made by one function for every moment that needs it.

``make`` builds Django's graph (``graph``: targets resolved, conflicts and the recorded history
checked), the plan from the recorded state to the targets, the deploy phase's share of it
(``phases``), the rollback preflight (``preflight``) and, when asked, what each operation will
lock (``risk``), and returns them as one frozen ``Plan``. It writes nothing: what carrying the
plan out would record besides the migrations (squashes, django-safemigrate's first-seen dates)
it only names, and the apply records them under the lock.

Read by the migrate step before the lock (step.py), by the apply under it and after each
table-lock retry (run/apply.py), by ``--plan`` (report.py), ``--status`` (status.py) and the
wait for migrations (step.still_pending).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from entrypoint import log
from entrypoint.errors import PlanRefused
from entrypoint.migrate.config import POST, PRE, MigrateSettings
from entrypoint.migrate.naming import label
from entrypoint.migrate.plan import graph, phases, preflight
from entrypoint.migrate.plan.risk import gate

if TYPE_CHECKING:
    from collections.abc import Mapping

    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.migrations.executor import MigrationExecutor
    from django.db.migrations.migration import Migration

Step = tuple["Migration", bool]  # a migration, and whether it is unapplied


@dataclass(frozen=True)
class Plan:
    """What one alias's migrate run would do, seen at one moment; nothing of it done yet."""

    alias: str
    phase: str
    nodes: tuple[graph.Node, ...]  # the targets, resolved: what the executor migrates to
    full: tuple[Step, ...]  # every step from the recorded state to the targets
    steps: tuple[Step, ...]  # what this phase carries out (the whole plan in the post phase)
    phase_of: Mapping[str, str]  # django-safemigrate's phase of each forward step, if installed
    first_seen: tuple[Migration, ...]  # delayed migrations whose delay starts with this run
    squashes: tuple[Migration, ...]  # squashes whose replaced migrations are all recorded
    unknown: tuple[str, ...]  # recorded migrations this code does not have
    problems: tuple[str, ...]  # why it must not run: nothing is changed then
    risks: gate.Assessment | None  # what each operation locks (None: not asked)

    @property
    def writes(self) -> bool:
        """Whether carrying it out records anything: only then is the lock taken."""
        return bool(self.steps or self.squashes or self.first_seen)

    @property
    def awaited(self) -> tuple[Step, ...]:
        """What pods of the new release wait for: in the pre phase, not what waits for post."""
        if self.phase != PRE:
            return self.full
        return tuple(step for step in self.full if self.phase_of.get(label(step[0])) != POST)

    def refuse(self) -> None:
        """PlanRefused (78) naming every problem, when there is one."""
        if self.problems:
            raise PlanRefused(*self.problems)


def make(
    connection: BaseDatabaseWrapper,
    settings: MigrateSettings,
    *,
    executor: MigrationExecutor | None = None,
    effects: bool = False,
) -> Plan:
    """The plan of ``connection``'s alias to ``settings``' targets, in ``settings``' phase.

    ``executor``: the one the apply will run it with (built here otherwise); ``effects``:
    analyse what each operation locks, and hold the plan against the row gate. ConfigError
    (78) for bad targets or a graph that makes no plan; every other problem is in ``problems``.
    """
    if executor is None:
        executor = graph.build_executor(connection)
    loader = executor.loader
    graph.check_history(loader, connection)
    nodes = graph.resolve_targets(loader, settings.targets, all_apps=settings.all_apps)
    full = executor.migration_plan(nodes)
    found = phases.classify(full) if full else phases.Sorted()
    steps = phases.select(full, settings.phase, found)
    problems: list[str] = []
    if settings.phase == PRE:
        problems.extend(found.problems if phases.installed() else [phases.MISSING])
    problems.extend(preflight.problems(steps, fake=settings.fake))
    risks = None
    if effects:
        risks = _effects(connection, full, fake=settings.fake)
        running = {label(m) for m, _ in steps}
        problems.extend(risks.refusals(settings.max_blocking_rows, running))
    return Plan(
        alias=connection.alias,
        phase=settings.phase,
        nodes=tuple(nodes),
        full=tuple(full),
        steps=tuple(steps),
        phase_of=MappingProxyType(found.phase_of),
        first_seen=found.first_seen if settings.phase == PRE else (),
        squashes=tuple(graph.squashes_to_record(loader, connection)),
        unknown=tuple(graph.unknown_applied(loader)),
        problems=tuple(problems),
        risks=risks,
    )


def _effects(connection: BaseDatabaseWrapper, full: list[Step], *, fake: bool) -> gate.Assessment:
    """The whole plan analysed (a step deferred to the post phase is shown too); with --fake
    nothing runs, so nothing is analysed and nothing refused."""
    if fake:
        return gate.Assessment(None, connection.vendor, "--fake runs no operation")
    return gate.assess(connection, full)


def announce(plan: Plan) -> None:
    """What the first plan of a run says once: migrations this code lacks, what the pre phase
    leaves for later. Logged before the lock (and by ``--plan``), not again under it."""
    if plan.unknown:
        log.get().warning(
            "migrations_unknown_applied",
            alias=plan.alias,
            migrations=list(plan.unknown),
            hint="the database has migrations this image does not: to roll back, run the "
            "newer image with ENTRYPOINT_MIGRATE_TARGETS first",
        )
    delayed = [name for name, p in plan.phase_of.items() if p == POST]
    blocked = [name for name, p in plan.phase_of.items() if p == phases.BLOCKED]  # nonstrict
    if plan.phase == PRE and (delayed or blocked):
        log.get().info(
            "migrations_deferred", alias=plan.alias, phase=PRE, delayed=delayed, blocked=blocked
        )
