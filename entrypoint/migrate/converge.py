"""The full path of the migrate step: the lock, the fence, the plan on the graph, the apply.

Reached when the file-level check (``plan.files``) could not say "up to date": with new files
the replica waits for the lock before it builds the graph, and while it waits it re-checks
whether the holder recorded every file; otherwise it plans first, and waits (re-checking its
plan) only when there is work. Whoever takes the lock passes the fence and plans under it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from django.db import connections

from entrypoint import log
from entrypoint.migrate.config import Target
from entrypoint.migrate.direct import direct_connection
from entrypoint.migrate.lock.options import Lock, LockOptions
from entrypoint.migrate.lock.sessions import HolderSessions
from entrypoint.migrate.lock.waiting import migration_lock_unless_done
from entrypoint.migrate.plan import files
from entrypoint.migrate.plan.graph import planned
from entrypoint.migrate.plan.phases import POST
from entrypoint.migrate.plan.preflight import prepared
from entrypoint.migrate.plan.risk import gate
from entrypoint.migrate.run.apply import apply_to_targets
from entrypoint.migrate.run.guard import Guard, holder_roles
from entrypoint.migrate.run.squashes import record_squashes

if TYPE_CHECKING:
    from django.db.migrations.migration import Migration


def lock_first(
    alias: str,
    listing: files.Listing,
    *,
    targets: Sequence[Target],
    lock_options: LockOptions,
    flags: dict[str, bool],
) -> int:
    """New files, so most likely work: wait for the lock before building the graph.

    While the lock is busy, a waiter asks django_migrations whether every file is recorded
    now (one query a poll; each migration's record commits before the holder releases the
    lock, so a yes is final) and then ends without the lock: the waiters of a fleet never
    import the migrations. Whoever takes the lock plans under it, on the graph.
    """

    done = _records_check(alias, lambda applied: listing.files <= applied)
    with _locked_unless_done(alias, lock_options, done=done) as guard:
        if guard is None:  # the holder did the work while we waited: no lock, no fence
            log.get().info("migrations_up_to_date", alias=alias, locked=False, checked="files")
            return 0
        return apply_to_targets(
            connections[alias],
            targets,
            guard,
            retry_timeout=lock_options.retry_timeout,
            phase=POST,
            **flags,
        )


def converge(  # noqa: PLR0913 - migrate_database's options, passed on
    alias: str,
    *,
    targets: Sequence[Target],
    lock_options: LockOptions,
    all_apps: bool,
    fake: bool,
    fake_initial: bool,
    phase: str,
    max_blocking_rows: int | None,
) -> int:
    """The full path: plan on the graph, then (with work to do) lock, fence, re-plan, apply."""
    steps, squashes = planned(connections[alias], targets, all_apps=all_apps, report_unknown=True)
    plan = prepared(steps, phase, fake=fake)
    if not plan:
        log.get().info("migrations_up_to_date", alias=alias, locked=False, checked="graph")
        if squashes:
            with locked(alias, lock_options):
                record_squashes(connections[alias], squashes)
        return 0
    if max_blocking_rows is not None:
        # Refused here, before any replica waits for the lock; checked again under it.
        gate.check(connections[alias], plan, max_blocking_rows, fake=fake)
    # While the lock is busy, a waiter re-checks its plan against django_migrations;
    # with targets a full re-plan under the lock also sees an app moved past its target.
    recheck = _recheck(alias, plan) if latest_only(targets) else None
    with _locked_unless_done(alias, lock_options, done=recheck) as guard:
        if guard is None:  # the holder did the work while we waited: no lock, no fence
            log.get().info("migrations_up_to_date", alias=alias, locked=False, checked="records")
            return 0
        if recheck is not None and recheck(None):
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
            max_blocking_rows=max_blocking_rows,
        )


@contextmanager
def locked(alias: str, lock_options: LockOptions) -> Iterator[Guard]:
    """The lock, then the guard: past this point no other replica's work is in flight."""
    with _locked_unless_done(alias, lock_options, done=None) as guard:
        assert guard is not None  # without a re-check, only the lock ends the wait
        yield guard


@contextmanager
def _locked_unless_done(
    alias: str, lock_options: LockOptions, *, done: Callable[[Lock], bool] | None
) -> Iterator[Guard | None]:
    """``locked``, or None when ``done`` found the work done while we waited for the lock.

    While it waits a replica holds one session (the lock's); once it has the lock, it opens
    every other session the work needs before starting it (lock/sessions.py).
    """
    connection = connections[alias]
    sessions = HolderSessions(connection)
    table_lock_timeout = lock_options.table_lock_timeout

    def prepare(lock: Lock) -> None:
        sessions.open(*holder_roles(lock, connection, table_lock_timeout))

    try:
        with migration_lock_unless_done(
            connection, lock_options, done=done, prepare=prepare
        ) as lock:
            if lock is None:
                yield None
                return
            with Guard(
                lock,
                connection,
                timeout=lock_options.timeout,
                table_lock_timeout=table_lock_timeout,
                sessions=sessions,
            ) as guard:
                guard.barrier()
                yield guard
    finally:
        sessions.close_untaken()


def latest_only(targets: Sequence[Target]) -> bool:
    """No targets, or only "app" ones (its latest): the plan then leads to every leaf."""
    return all(name is None for _, name in targets)


def _recheck(alias: str, plan: list[tuple[Migration, bool]]) -> Callable[[Lock | None], bool]:
    """Whether every step of ``plan`` is now recorded as done (by another replica)."""
    return _records_check(
        alias,
        lambda applied: all(
            ((m.app_label, m.name) in applied) != backwards for m, backwards in plan
        ),
    )


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


def run_locked(
    alias: str, work: Callable[[], None], *, lock_options: LockOptions, direct_url: str = ""
) -> None:
    """Run ``work`` (e.g. Django's own migrate for --prune or --run-syncdb) under the lock."""
    with direct_connection(alias, direct_url), locked(alias, lock_options):
        work()
