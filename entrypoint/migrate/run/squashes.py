"""Recording squashed migrations whose replaced migrations are all applied, as Django's migrate
does on every run (``MigrationExecutor.check_replacements``).

Without it a squash shipped after all it replaces were applied would never be recorded (no
plan means no executor run), and every start would take the graph's path instead of the file
level check. Under the lock: re-checked there, so two replicas never record one twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.db.migrations.recorder import MigrationRecorder

from entrypoint import log
from entrypoint.migrate.naming import label

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.migrations.migration import Migration


def record_squashes(connection: BaseDatabaseWrapper, squashes: Sequence[Migration]) -> None:
    """Record each squash not recorded yet whose replaced migrations all are."""
    recorder = MigrationRecorder(connection)
    recorded = recorder.applied_migrations()
    done = []
    for squash in squashes:
        key = (squash.app_label, squash.name)
        if key not in recorded and all(r in recorded for r in squash.replaces):
            recorder.record_applied(*key)
            done.append(label(squash))
    if done:
        log.get().info("migration_squash_recorded", alias=connection.alias, migrations=done)
