"""Table locks that never stall the app: a short lock_timeout, the blockers named, retries.

A migration's ALTER that queues behind a long app transaction holds every later query on that
table behind it. With ``lock_timeout`` the ALTER gives up instead, its atomic migration rolls
back, and the app's queries flow while we back off; apply.py then retries the migration.
While a statement waits, a watcher asks ``pg_blocking_pids()`` who blocks it, on a connection
of its own in autocommit (so it never holds a snapshot), to name them in the logs.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import threading
import time
from typing import TYPE_CHECKING, Any

from entrypoint import log
from entrypoint.errors import MigrationFailed, TableLockTimeout
from entrypoint.migrate.lock_pg import connection_params
from entrypoint.migrate.plan import label

if TYPE_CHECKING:
    import psycopg
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.migrations.migration import Migration

LOCK_NOT_AVAILABLE = "55P03"
FIRST_BACKOFF = 1.0
MAX_BACKOFF = 30.0
SAMPLE_EVERY = 0.1
BLOCKERS = (
    "SELECT pid, application_name, host(client_addr), state, coalesce(xact_start, query_start)"
    " FROM pg_stat_activity WHERE pid = ANY(pg_blocking_pids((%s)::int)) ORDER BY pid"
)
Blocker = dict[str, object]


def is_lock_timeout(exc: BaseException) -> bool:
    """Whether PostgreSQL gave up waiting for a lock (lock_timeout) anywhere in the chain."""
    current: BaseException | None = exc
    while current is not None:
        if getattr(current, "sqlstate", None) == LOCK_NOT_AVAILABLE:
            return True
        current = current.__cause__ or current.__context__
    return False


def describe(blockers: list[Blocker]) -> str:
    if not blockers:
        return "a session that ended before it could be named"
    return "; ".join(", ".join(f"{k}={v}" for k, v in b.items()) for b in blockers)


class Watcher:
    """Names the sessions blocking the migrating connection while one of its statements waits."""

    def __init__(self, connection: BaseDatabaseWrapper, timeout: float) -> None:
        self.connection = connection
        self.threshold = min(0.3, timeout / 2)
        self.pid: int | None = None  # the migrating server process, per migration
        self.blockers: list[Blocker] = []
        self._since: float | None = None
        self._stopped = threading.Event()
        self._monitor: psycopg.Connection[Any] | None = None
        self._thread = threading.Thread(target=self._run, name="lock-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(1)
        if self._monitor is not None:
            self._monitor.close()

    def statement(self, running: bool) -> None:
        self._since = time.monotonic() if running else None

    def _run(self) -> None:
        while not self._stopped.wait(SAMPLE_EVERY):
            since, pid = self._since, self.pid
            if since is None or pid is None or time.monotonic() - since < self.threshold:
                continue
            try:
                found = self._sample(pid)
            except Exception:  # noqa: BLE001 - naming blockers is a courtesy; never fail for it
                self._monitor = None
                continue
            if found:
                self.blockers = found

    def _sample(self, pid: int) -> list[Blocker]:
        import psycopg  # noqa: PLC0415

        if self._monitor is None or self._monitor.closed:
            params = connection_params(self.connection, "watch")
            self._monitor = psycopg.connect(**params, autocommit=True)
        rows = self._monitor.execute(BLOCKERS, [pid]).fetchall()
        return [
            {
                "pid": row[0],
                "application_name": row[1],
                "client_addr": row[2] or "local",
                "state": row[3],
                "since": row[4].isoformat() if isinstance(row[4], dt.datetime) else row[4],
            }
            for row in rows
        ]


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


def lock_timeout_value(seconds: float) -> str:
    return f"{max(math.ceil(seconds * 1000), 1)}ms"
