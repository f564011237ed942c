"""A migration that timed out on a table lock: name its blockers, back off, retry or give up.

apply.py retries an atomic migration that hit ``lock_timeout`` (it rolled back, and the app's
queries flow meanwhile) within ENTRYPOINT_MIGRATE_RETRY_TIMEOUT; table_locks.py sets the
timeout and finds the blockers.
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING

from entrypoint import log
from entrypoint.errors import MigrationFailed, TableLockTimeout, sqlstate_in
from entrypoint.migrate.naming import label
from entrypoint.migrate.plan.records import Blocker

if TYPE_CHECKING:
    from django.db.migrations.migration import Migration

LOCK_NOT_AVAILABLE = "55P03"
FIRST_BACKOFF = 1.0
MAX_BACKOFF = 30.0


def is_lock_timeout(exc: BaseException) -> bool:
    """Whether PostgreSQL gave up waiting for a lock (lock_timeout) anywhere in the chain."""
    return sqlstate_in(exc, LOCK_NOT_AVAILABLE)


def describe(blockers: list[Blocker]) -> str:
    if not blockers:
        return "a session that ended before it could be named"
    return "; ".join(", ".join(f"{k}={v}" for k, v in b.items()) for b in blockers)


class Retries:
    """The retry budget of one migrate run: jittered backoff, ENTRYPOINT_MIGRATE_RETRY_TIMEOUT."""

    def __init__(self, alias: str, budget: float) -> None:
        self.log = log.get().bind(alias=alias)
        self.budget = budget
        self.started: float | None = None
        self.attempts = 0

    def contended(self, migration: Migration, blockers: list[Blocker]) -> None:
        """Log who blocks ``migration`` and sleep before its retry; raise when out of budget."""
        now = time.monotonic()
        self.started = self.started or now
        self.attempts += 1
        who = describe(blockers)
        if not migration.atomic:
            raise MigrationFailed(
                f"migration {label(migration)} is not atomic and timed out waiting for a table "
                f"lock held by {who}: its earlier statements may have run, so it is not retried; "
                "make it re-runnable, end the blocker, and run again"
            )
        left = self.started + self.budget - now
        delay = min(FIRST_BACKOFF * 2 ** (self.attempts - 1), MAX_BACKOFF)
        delay = min(delay * random.uniform(0.8, 1.2), max(left, 0))  # noqa: S311 - jitter
        if left <= 0:
            raise TableLockTimeout(
                f"migration {label(migration)} could not take its table locks within "
                f"ENTRYPOINT_MIGRATE_RETRY_TIMEOUT ({self.budget:g}s, {self.attempts} attempts); "
                f"blocked by {who}: end that session or retry later (nothing of this migration "
                "was applied)"
            )
        self.log.warning(
            "migration_lock_contended",
            app=migration.app_label,
            name=migration.name,
            attempt=self.attempts,
            blockers=blockers,
            retry_in_s=round(delay, 2),
            retrying_for_s=round(now - self.started, 2),
        )
        time.sleep(delay)
