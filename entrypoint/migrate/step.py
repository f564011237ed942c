"""lockedmigrate: every alias to the configured targets, applied once however many replicas run.

1. the file-level check (``plan.files``): every migration file recorded means nothing to do,
   no graph, no lock (steady-state restarts);
2. otherwise ``converge``: the lock (waiting, a waiter re-checks whether the work got done
   meanwhile and then ends without it), the fence, the plan on the graph under the lock;
3. apply under the guard, backward phase first, each migration reported (``run.apply``).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from django.db import connections

from entrypoint import checks, log
from entrypoint.connection import read_only
from entrypoint.errors import ReadOnlyDatabase
from entrypoint.migrate.config import MigrateSettings, Target
from entrypoint.migrate.direct import direct_connection, direct_url_for
from entrypoint.migrate.lock.options import LockOptions
from entrypoint.migrate.plan import files, records
from entrypoint.patience import connect_patiently

# The graph, the lock and the executor (``converge``) are imported where they are used
# (PLC0415 below): a steady-state start decided by the file-level check never needs them.


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
    max_blocking_rows: int | None = None,
) -> int:
    """Migrate one alias under its own lock; return how many migrations this process moved."""
    with direct_connection(alias, direct_url):
        named = _named_latest(targets)
        state, listing = (
            # A session holding django_migrations locked must not hold this start for ever.
            records.patiently(
                connections[alias],
                lambda: files.status(connections[alias], named=named),
                lock_wait=lock_options.table_lock_timeout,
                timeout=lock_options.timeout,
            )
            if named is not None
            else (files.UNDECIDED, None)
        )
        if state == files.UP_TO_DATE:
            # Every migration file recorded: no graph to build, no migration module imported.
            log.get().info("migrations_up_to_date", alias=alias, locked=False, checked="files")
            return 0
        # A standby would fail the first write, after the lock and the plan: 69 now, not yet
        # (a failover may be finishing), so that a Job or a restart tries again.
        why = read_only(connections[alias])
        if why is not None:
            raise ReadOnlyDatabase(alias, why)
        from entrypoint.migrate import converge  # noqa: PLC0415 - see above
        from entrypoint.migrate.plan.phases import POST  # noqa: PLC0415

        # The risk gate refuses a plan before any replica waits for the lock: it needs the plan.
        gated = max_blocking_rows is not None
        if state == files.NEW_FILES and listing and phase == POST and not gated:
            return converge.lock_first(
                alias,
                listing,
                targets=targets,
                lock_options=lock_options,
                flags={"all_apps": all_apps, "fake": fake, "fake_initial": fake_initial},
            )
        return converge.converge(
            alias,
            targets=targets,
            lock_options=lock_options,
            all_apps=all_apps,
            fake=fake,
            fake_initial=fake_initial,
            phase=phase,
            max_blocking_rows=max_blocking_rows,
        )


def _named_latest(targets: Sequence[Target]) -> list[str] | None:
    """The apps the targets name, when each goes to its latest; None when one names a
    migration (the file-level check cannot tell where that leads)."""
    return [app for app, _ in targets] if all(name is None for _, name in targets) else None


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
    lock_options = LockOptions.from_settings(settings)
    for alias in aliases:
        migrate_database(
            alias,
            targets=settings.targets,
            lock_options=lock_options,
            direct_url=direct_url_for(alias, settings.database_url),
            phase=settings.phase,
            max_blocking_rows=settings.max_blocking_rows,
        )


def still_pending(alias: str, *, targets: Sequence[Target], phase: str) -> int:
    """How many migrations the pods wait for (in the pre phase: what it applies).

    The wait step calls it from a worker thread, whose connections die with it: closed here
    (in the pre phase the default's too).
    """
    from entrypoint.migrate.plan.graph import migration_plan  # noqa: PLC0415 - see above
    from entrypoint.migrate.plan.phases import awaited  # noqa: PLC0415

    try:
        named = _named_latest(targets)
        if named is not None and files.up_to_date(connections[alias], named=named):
            return 0  # every file recorded: nothing pending in any phase, no graph to build
        return len(awaited(migration_plan(connections[alias], targets), phase))
    finally:
        connections.close_all()
