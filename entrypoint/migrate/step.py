"""lockedmigrate: every alias to the configured targets, applied once however many replicas run.

1. plan without the lock: nothing to do means no lock and no waiting (steady-state restarts);
2. take the lock and pass the fence (no other replica's work still in flight), then re-plan
   on a fresh executor (another replica may have done the work);
3. apply under the guard, backward phase first, each migration reported (``apply``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from django.db import DatabaseError, connections

from entrypoint import checks, log
from entrypoint.migrate.config import MigrateSettings, Target
from entrypoint.migrate.direct import direct_connection, direct_url_for
from entrypoint.migrate.lock.options import LockOptions
from entrypoint.migrate.plan import files

if TYPE_CHECKING:
    from django.db.migrations.migration import Migration

    from entrypoint.migrate.run.guard import Guard

# The graph, the lock and the executor are imported where they are used (PLC0415 below): a
# steady-state start decided by the file-level check never needs them.


def migrate_database(  # noqa: PLR0913 - the lockedmigrate options, all keyword-only
    alias: str,
    *,
    targets: Sequence[Target],
    lock_options: LockOptions,
    direct_url: str = "",
    all_apps: bool = True,
    fake: bool = False,
    fake_initial: bool = False,
    phase: str = "post",
) -> int:
    """Migrate one alias under its own lock; return how many migrations this process moved."""
    with direct_connection(alias, direct_url):
        if _latest_only(targets) and files.up_to_date(
            connections[alias], named=[app for app, _ in targets]
        ):
            # Every migration file recorded: no graph to build, no migration module imported.
            log.get().info("migrations_up_to_date", alias=alias, locked=False, checked="files")
            return 0
        return _converge(
            alias,
            targets=targets,
            lock_options=lock_options,
            all_apps=all_apps,
            fake=fake,
            fake_initial=fake_initial,
            phase=phase,
        )


def _converge(  # noqa: PLR0913 - migrate_database's options, passed on
    alias: str,
    *,
    targets: Sequence[Target],
    lock_options: LockOptions,
    all_apps: bool,
    fake: bool,
    fake_initial: bool,
    phase: str,
) -> int:
    """The full path: plan on the graph, then (with work to do) lock, fence, re-plan, apply."""
    from entrypoint.migrate.plan.graph import planned  # noqa: PLC0415 - see above
    from entrypoint.migrate.plan.preflight import prepared  # noqa: PLC0415
    from entrypoint.migrate.run.apply import apply_to_targets  # noqa: PLC0415
    from entrypoint.migrate.run.squashes import record_squashes  # noqa: PLC0415

    steps, squashes = planned(connections[alias], targets, all_apps=all_apps, report_unknown=True)
    plan = prepared(steps, phase, fake=fake)
    if not plan:
        log.get().info("migrations_up_to_date", alias=alias, locked=False, checked="graph")
        if squashes:
            with locked(alias, lock_options):
                record_squashes(connections[alias], squashes)
        return 0
    # While the lock is busy, a waiter re-checks its plan against django_migrations;
    # with targets a full re-plan under the lock also sees an app moved past its target.
    recheck = _recheck(alias, plan) if _latest_only(targets) else None
    with _locked_unless_done(alias, lock_options, done=recheck) as guard:
        if guard is None:  # the holder did the work while we waited: no lock, no fence
            log.get().info("migrations_up_to_date", alias=alias, locked=False, checked="records")
            return 0
        if recheck is not None and recheck():
            # A replica ahead of us did the work just before we took the lock.
            log.get().info("migrations_up_to_date", alias=alias, locked=True, checked="records")
            return 0
        return apply_to_targets(
            connections[alias],
            targets,
            guard,
            all_apps=all_apps,
            fake=fake,
            fake_initial=fake_initial,
            retry_timeout=lock_options.retry_timeout,
            phase=phase,
        )


@contextmanager
def locked(alias: str, lock_options: LockOptions) -> Iterator[Guard]:
    """The lock, then the guard: past this point no other replica's work is in flight."""
    with _locked_unless_done(alias, lock_options, done=None) as guard:
        assert guard is not None  # without a re-check, only the lock ends the wait
        yield guard


@contextmanager
def _locked_unless_done(
    alias: str, lock_options: LockOptions, *, done: Callable[[], bool] | None
) -> Iterator[Guard | None]:
    """``locked``, or None when ``done`` found the work done while we waited for the lock."""
    from entrypoint.migrate.lock.waiting import migration_lock_unless_done  # noqa: PLC0415
    from entrypoint.migrate.run.guard import Guard  # noqa: PLC0415

    connection = connections[alias]
    with migration_lock_unless_done(connection, lock_options, done=done) as lock:
        if lock is None:
            yield None
            return
        with Guard(
            lock,
            connection,
            timeout=lock_options.timeout,
            table_lock_timeout=lock_options.table_lock_timeout,
        ) as guard:
            guard.barrier()
            yield guard


def _latest_only(targets: Sequence[Target]) -> bool:
    """No targets, or only "app" ones (its latest): the plan then leads to every leaf."""
    return all(name is None for _, name in targets)


def _recheck(alias: str, plan: list[tuple[Migration, bool]]) -> Callable[[], bool]:
    """Whether every step of ``plan`` is now recorded as done (by another replica).

    One query on the migrating connection, in autocommit: it holds no snapshot between
    checks. An error counts as "not yet" (the lock's attempts report what is wrong).
    """

    def done() -> bool:
        connection = connections[alias]
        try:
            applied = files.recorded(connection)
        except DatabaseError:
            connection.close()  # reopened on next use, e.g. after a server restart
            return False
        return all(((m.app_label, m.name) in applied) != backwards for m, backwards in plan)

    return done


def run_locked(
    alias: str, work: Callable[[], None], *, lock_options: LockOptions, direct_url: str = ""
) -> None:
    """Run ``work`` (e.g. Django's own migrate for --prune or --run-syncdb) under the lock."""
    with direct_connection(alias, direct_url), locked(alias, lock_options):
        work()


def run(settings: MigrateSettings, aliases: Sequence[str]) -> None:
    """The migrate step: each alias in turn, each under its own lock."""
    checks.run_once(aliases)
    lock_options = LockOptions.from_settings(settings)
    for alias in aliases:
        migrate_database(
            alias,
            targets=settings.targets,
            lock_options=lock_options,
            direct_url=direct_url_for(alias, settings.database_url),
            phase=settings.phase,
        )


def still_pending(alias: str, *, targets: Sequence[Target], phase: str) -> int:
    """How many migrations the pods wait for (in the pre phase: what it applies).

    The wait step calls it from a worker thread, whose connections die with it: closed here
    (in the pre phase the default's too).
    """
    from entrypoint.migrate.plan.graph import migration_plan  # noqa: PLC0415 - see above
    from entrypoint.migrate.plan.phases import awaited  # noqa: PLC0415

    try:
        return len(awaited(migration_plan(connections[alias], targets), phase))
    finally:
        connections.close_all()
