"""lockedmigrate: every alias to the configured targets, applied once however many replicas run.

1. plan without the lock: nothing to do means no lock and no waiting (steady-state restarts);
2. take the lock and pass the fence (no other replica's work still in flight), then re-plan
   on a fresh executor (another replica may have done the work);
3. apply under the guard, backward phase first, each migration reported (``apply``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.recorder import MigrationRecorder

from entrypoint import checks, log
from entrypoint.config import Settings, Target
from entrypoint.migrate.apply import apply_to_targets
from entrypoint.migrate.guard import Guard
from entrypoint.migrate.lock import LockOptions, migration_lock
from entrypoint.migrate.plan import migration_plan
from entrypoint.migrate.preflight import prepared

if TYPE_CHECKING:
    from django.db.migrations.migration import Migration


@contextmanager
def direct_connection(alias: str, url: str) -> Iterator[None]:
    """Point ``alias`` at ENTRYPOINT_MIGRATE_DATABASE_URL for the block, then put it back.

    The alias keeps its name so that database routers and post_migrate handlers (content
    types, permissions) see the database they expect.
    """
    if not url:
        yield
        return
    import dj_database_url  # noqa: PLC0415

    # Its password is masked since the settings were read (cli.load_settings).
    parsed: dict[str, Any] = dict(dj_database_url.parse(url))
    original = connections.settings[alias]
    options = {**original.get("OPTIONS", {}), **parsed.pop("OPTIONS", {})}
    # The project's ENGINE stays (e.g. PostGIS): the URL only says where and as whom.
    parsed.pop("ENGINE", None)
    _swap(alias, {**original, **parsed, "OPTIONS": options})
    log.get().info(
        "migrate_direct_connection",
        alias=alias,
        host=parsed.get("HOST"),
        port=parsed.get("PORT"),
        name=parsed.get("NAME"),
        user=parsed.get("USER"),
    )
    try:
        yield
    finally:
        _swap(alias, original)


def _swap(alias: str, settings_dict: dict[str, Any]) -> None:
    connections[alias].close()
    connections.settings[alias] = settings_dict
    del connections[alias]  # the next access builds a wrapper from the new settings


def pending(
    alias: str, targets: Sequence[Target], *, all_apps: bool = True
) -> list[tuple[Migration, bool]]:
    """The plan without taking the lock: the fast path, ``--plan`` and ``--check``."""
    return migration_plan(connections[alias], targets, all_apps=all_apps, report_unknown=True)


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
        plan = prepared(pending(alias, targets, all_apps=all_apps), phase, fake=fake)
        if not plan:
            log.get().info("migrations_up_to_date", alias=alias, locked=False)
            return 0
        with locked(alias, lock_options) as guard:
            if not targets and done_meanwhile(alias, plan):
                # The usual end of a wait: a replica ahead of us did the work. One query
                # tells, so a fleet's waiters pass through the lock without re-loading the graph.
                # (With targets, a full re-plan also sees an app moved past its target.)
                log.get().info("migrations_up_to_date", alias=alias, locked=True)
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
    connection = connections[alias]
    with (
        migration_lock(connection, lock_options) as lock,
        Guard(
            lock,
            connection,
            timeout=lock_options.timeout,
            table_lock_timeout=lock_options.table_lock_timeout,
        ) as guard,
    ):
        guard.barrier()
        yield guard


def done_meanwhile(alias: str, plan: list[tuple[Migration, bool]]) -> bool:
    """Whether every step of ``plan`` is now recorded as done (by another replica)."""
    applied = MigrationRecorder(connections[alias]).applied_migrations()
    return all(((m.app_label, m.name) in applied) != backwards for m, backwards in plan)


def run_locked(
    alias: str, work: Callable[[], None], *, lock_options: LockOptions, direct_url: str = ""
) -> None:
    """Run ``work`` (e.g. Django's own migrate for --prune or --run-syncdb) under the lock."""
    with direct_connection(alias, direct_url), locked(alias, lock_options):
        work()


def run(settings: Settings, aliases: Sequence[str]) -> None:
    """The migrate step: each alias in turn, each under its own lock."""
    checks.run_once(aliases)
    lock_options = LockOptions.from_settings(settings)
    for alias in aliases:
        migrate_database(
            alias,
            targets=settings.migrate_targets,
            lock_options=lock_options,
            direct_url=direct_url_for(alias, settings.migrate_database_url),
            phase=settings.migrate_phase,
        )


def direct_url_for(alias: str, url: str) -> str:
    """ENTRYPOINT_MIGRATE_DATABASE_URL stands for the default database and no other."""
    return url if alias == DEFAULT_DB_ALIAS else ""
