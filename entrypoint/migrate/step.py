"""The migrate step (and lockedmigrate): every alias to its targets, each migration applied
once however many replicas run.

1. the file-level check (``plan.files``): every migration file recorded means nothing to do,
   no graph, no lock (steady-state restarts);
2. new files (post phase, no gate): the lock first; while it is busy a waiter asks whether the
   holder recorded every file, and then ends without it; whoever takes it plans under it;
3. anything else: the plan first (``plan.make``), refused before any replica waits; with work,
   the lock, a waiter re-checking its plan against django_migrations;
4. under the lock and the guard (``run.guard.locked``): the plan made again and carried out
   (``run.apply``).

Each alias's outcome is logged here, once: ``migrations_up_to_date`` or ``migrations_done``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from django.db import connections

from entrypoint import checks, log
from entrypoint.connection import read_only
from entrypoint.errors import ReadOnlyDatabase
from entrypoint.migrate.config import POST, MigrateSettings, Target
from entrypoint.migrate.direct import direct_connection, direct_url_for
from entrypoint.migrate.lock.options import Lock, LockOptions
from entrypoint.migrate.plan import files, records
from entrypoint.patience import connect_patiently

if TYPE_CHECKING:
    from entrypoint.migrate.plan.make import Plan

# The graph, the lock and the executor are imported where they are used (PLC0415 below): a
# steady-state start decided by the file-level check never needs them.


@dataclass(frozen=True)
class Outcome:
    """How one alias's run ended."""

    moved: int  # migrations applied or unapplied by this process
    locked: bool  # whether this process held the lock when it knew
    checked: str  # what told: "files" (names), "graph" (a plan) or "records" (a waiter's re-check)


def run_checks(aliases: Sequence[str], *, lock_timeout: float) -> None:
    """Django's system checks, once; they may connect (MySQL's sql_mode): a server refusing
    that connection for now is asked again within the lock's timeout, then 75."""
    for alias in aliases:
        connect_patiently(
            connections[alias],
            within=lock_timeout,
            give_up=partial(records.refused_for, alias, lock_timeout),
        )
    checks.run_once(aliases)


def run(settings: MigrateSettings, aliases: Sequence[str]) -> None:
    """The migrate step: each alias in turn, each under its own lock."""
    run_checks(aliases, lock_timeout=settings.lock_timeout)
    for alias in aliases:
        migrate_database(alias, settings)


def migrate_database(alias: str, settings: MigrateSettings) -> int:
    """Migrate one alias under its own lock; return how many migrations this process moved."""
    with direct_connection(alias, direct_url_for(alias, settings.database_url)):
        outcome = _migrate(alias, settings)
        finished(alias, outcome)
    return outcome.moved


def finished(alias: str, outcome: Outcome) -> None:
    """The one event that says how an alias's run (or lockedmigrate --check) ended."""
    if outcome.moved:
        log.get().info("migrations_done", alias=alias, count=outcome.moved)
    else:
        log.get().info(
            "migrations_up_to_date", alias=alias, locked=outcome.locked, checked=outcome.checked
        )


def _migrate(alias: str, settings: MigrateSettings) -> Outcome:
    named = _named_latest(settings.targets)
    state, listing = (
        # A session holding django_migrations locked must not hold this start for ever.
        records.patiently(
            connections[alias],
            lambda: files.status(connections[alias], named=named),
            lock_wait=settings.table_lock_timeout,
            timeout=settings.lock_timeout,
        )
        if named is not None
        else (files.UNDECIDED, None)
    )
    if state == files.UP_TO_DATE:
        # Every migration file recorded: no graph to build, no migration module imported.
        return Outcome(0, locked=False, checked="files")
    # A standby would fail the first write, after the lock and the plan: 69 now, not yet
    # (a failover may be finishing), so that a Job or a restart tries again.
    why = read_only(connections[alias])
    if why is not None:
        raise ReadOnlyDatabase(alias, why)
    # The risk gate refuses a plan before any replica waits for the lock: it needs the plan.
    if state == files.NEW_FILES and listing and settings.phase == POST and not settings.gated:
        return _lock_first(alias, listing, settings)
    return _plan_first(alias, settings)


def _lock_first(alias: str, listing: files.Listing, settings: MigrateSettings) -> Outcome:
    """New files, so most likely work: wait for the lock before building the graph.

    While the lock is busy, a waiter asks django_migrations whether every file is recorded
    now (one query a poll; each migration's record commits before the holder releases the
    lock, so a yes is final) and then ends without the lock: the waiters of a fleet never
    import the migrations. Whoever takes the lock plans under it, on the graph.
    """
    from entrypoint.migrate.run.apply import apply  # noqa: PLC0415 - see above
    from entrypoint.migrate.run.guard import locked_unless_done  # noqa: PLC0415

    connection = connections[alias]
    done = _records_check(alias, lambda applied: listing.files <= applied)
    with locked_unless_done(connection, LockOptions.from_settings(settings), done=done) as guard:
        if guard is None:  # the holder did the work while we waited: no lock, no fence
            return Outcome(0, locked=False, checked="files")
        return Outcome(apply(connection, settings, guard), locked=True, checked="graph")


def _plan_first(alias: str, settings: MigrateSettings) -> Outcome:
    """The plan on the graph, then (when it writes anything) the lock, and the apply."""
    from entrypoint.migrate.plan.make import announce, make  # noqa: PLC0415 - see above
    from entrypoint.migrate.run.apply import apply  # noqa: PLC0415
    from entrypoint.migrate.run.guard import locked_unless_done  # noqa: PLC0415

    connection = connections[alias]
    plan = make(connection, settings, effects=settings.gated)
    announce(plan)
    plan.refuse()  # before any replica waits for the lock; made and checked again under it
    if not plan.writes:
        return Outcome(0, locked=False, checked="graph")
    # While the lock is busy, a waiter re-checks its plan against django_migrations;
    # with targets a full re-plan under the lock also sees an app moved past its target.
    recheck = _recheck(alias, plan) if _named_latest(settings.targets) is not None else None
    options = LockOptions.from_settings(settings)
    with locked_unless_done(connection, options, done=recheck) as guard:
        if guard is None:  # the holder did the work while we waited: no lock, no fence
            return Outcome(0, locked=False, checked="records")
        if recheck is not None and recheck(None):
            # A replica ahead of us did the work just before we took the lock.
            return Outcome(0, locked=True, checked="records")
        return Outcome(apply(connection, settings, guard), locked=True, checked="graph")


def _named_latest(targets: Sequence[Target]) -> list[str] | None:
    """The apps the targets name, when each goes to its latest (the plan then leads to every
    leaf); None when one names a migration (names alone cannot tell where that leads)."""
    return [app for app, _ in targets] if all(name is None for _, name in targets) else None


def _recheck(alias: str, plan: Plan) -> Callable[[Lock | None], bool]:
    """Whether everything ``plan`` writes is now recorded (by another replica): each step
    done, each squash recorded, each first-seen date set."""
    from entrypoint.migrate.plan.phases import seen  # noqa: PLC0415 - see above

    def done(applied: set[files.Key]) -> bool:
        return (
            all(((m.app_label, m.name) in applied) != backwards for m, backwards in plan.steps)
            and all((m.app_label, m.name) in applied for m in plan.squashes)
            and seen(plan.first_seen)
        )

    return _records_check(alias, done)


def _records_check(
    alias: str, wanted: Callable[[set[files.Key]], bool]
) -> Callable[[Lock | None], bool]:
    """``wanted`` of what django_migrations holds now, read without a snapshot kept: on a
    waiting lock's own session, the waiter's only one; on Django's connection for the holder
    (``None``) and for a lock without a session (SQLite's file, no lock).

    An error counts as "not yet" and ends the re-checks of this wait: the path to the server
    may be dead, and each further check would cost a network timeout that the lock's deadline
    cannot spare. The lock's attempts go on, and report what is wrong.
    """
    failed = False

    def check(lock: Lock | None) -> bool:
        nonlocal failed
        if failed:
            return False
        try:
            applied = lock.recorded() if lock is not None else None
            if applied is None:
                applied = files.recorded(connections[alias])
            return wanted(applied)
        except Exception:  # noqa: BLE001 - said by the lock's attempts, which go on
            failed = True
            connections[alias].close()  # reopened on next use, e.g. after a server restart
            return False

    return check


def run_locked(alias: str, settings: MigrateSettings, work: Callable[[], None]) -> None:
    """Run ``work`` (e.g. Django's own migrate for --prune or --run-syncdb) under the lock."""
    from entrypoint.migrate.run.guard import locked  # noqa: PLC0415 - see above

    # The alias's connection is looked up once the direct URL points it where the lock is.
    with (
        direct_connection(alias, direct_url_for(alias, settings.database_url)),
        locked(connections[alias], LockOptions.from_settings(settings)),
    ):
        work()


def still_pending(alias: str, *, settings: MigrateSettings) -> int:
    """How many migrations the pods wait for (in the pre phase: what it applies).

    The wait step calls it from a worker thread, whose connections die with it: closed here
    (in the pre phase the default's too).
    """
    from entrypoint.migrate.plan.make import make  # noqa: PLC0415 - see above

    try:
        named = _named_latest(settings.targets)
        if named is not None and files.up_to_date(connections[alias], named=named):
            return 0  # every file recorded: nothing pending in any phase, no graph to build
        return len(make(connections[alias], settings).awaited)
    finally:
        connections.close_all()
