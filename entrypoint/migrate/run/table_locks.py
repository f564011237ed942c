"""The table-lock timeout on the migrating connection, and who blocks it while it waits.

A migration's ALTER that queues behind a long app transaction holds every later query on that
table behind it. With ``lock_timeout`` the ALTER gives up instead, its atomic migration rolls
back, and the app's queries flow while retries.py backs off before the retry. While a
statement waits, a watcher asks ``pg_blocking_pids()`` who blocks it, on a connection of its
own in autocommit (so it never holds a snapshot), to name them in the logs.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from entrypoint import log
from entrypoint.connection import open_session
from entrypoint.migrate.plan.records import Blocker, blocker

if TYPE_CHECKING:
    import psycopg
    from django.db.backends.base.base import BaseDatabaseWrapper

SAMPLE_EVERY = 0.1
BLOCKERS = (
    "SELECT pid, application_name, host(client_addr), state, coalesce(xact_start, query_start)"
    " FROM pg_stat_activity WHERE pid = ANY(pg_blocking_pids((%s)::int)) ORDER BY pid"
)


class Watcher:
    """Names the sessions blocking the migrating connection while one of its statements waits."""

    def __init__(
        self,
        connection: BaseDatabaseWrapper,
        timeout: float,
        monitor: psycopg.Connection[Any] | None = None,
    ) -> None:
        self.connection = connection
        self.threshold = min(0.3, timeout / 2)
        self.pid: int | None = None  # the migrating server process, per migration
        self.blockers: list[Blocker] = []
        self._since: float | None = None
        self._stopped = threading.Event()
        # Opened by the holder before any work (lock/sessions.py), else when first needed.
        self.monitor = monitor
        self._thread = threading.Thread(target=self._run, name="lock-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(1)
        # Still sampling (on a dead network): closing under it would pull the connection from
        # beneath the thread; it ends within the network timeout, and the process soon.
        if self.monitor is not None and not self._thread.is_alive():
            self.monitor.close()

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
                self.monitor = None
                continue
            if found:
                self.blockers = found

    def _sample(self, pid: int) -> list[Blocker]:
        if self.monitor is None or self.monitor.closed:
            self.monitor = open_session(self.connection, "watch")
        return [blocker(row) for row in self.monitor.execute(BLOCKERS, [pid]).fetchall()]


def watched(connection: BaseDatabaseWrapper, seconds: float) -> bool:
    """Whether a watcher names the blockers (PostgreSQL, with a table-lock timeout)."""
    return connection.vendor == "postgresql" and seconds > 0


class TableLockTimeouts:
    """ENTRYPOINT_MIGRATE_TABLE_LOCK_TIMEOUT on the migrating connection, and its watcher."""

    def __init__(
        self,
        connection: BaseDatabaseWrapper,
        seconds: float,
        monitor: psycopg.Connection[Any] | None = None,
    ) -> None:
        self.connection = connection
        self.seconds = seconds
        self.value = f"{max(math.ceil(seconds * 1000), 1)}ms"
        self.watcher = (
            Watcher(connection, seconds, monitor) if watched(connection, seconds) else None
        )
        self.session = False  # set for a non-atomic migration on a direct connection

    def start(self) -> None:
        if self.connection.vendor == "mysql" and self.seconds > 0:
            # No retry there (DDL is not transactional), but no endless queue either.
            with self.connection.cursor() as cursor:
                cursor.execute(
                    f"SET SESSION lock_wait_timeout = {max(math.ceil(self.seconds), 1):d}"
                )
        if self.watcher is not None:
            self.watcher.start()

    def stop(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()

    def blockers(self) -> list[Blocker]:
        """Who blocked the last statement that waited for a lock (then forgotten)."""
        if self.watcher is None:
            return []
        found, self.watcher.blockers = self.watcher.blockers, []
        return found

    def for_migration(self, *, in_transaction: bool, migration: str | None) -> None:
        """Set the timeout for the migration starting now (its transaction, or the session)."""
        if self.watcher is None:
            return
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            (pid,) = cursor.fetchone()
            raw = self.connection.connection
            if not in_transaction and raw is not None and raw.info.backend_pid != pid:
                # Behind a transaction pooler a session setting would leak to other clients.
                log.get().warning(
                    "migration_lock_timeout_skipped",
                    migration=migration,
                    reason="a non-atomic migration behind a connection pooler",
                    hint="set ENTRYPOINT_MIGRATE_DATABASE_URL to a direct connection",
                )
                return
            cursor.execute(
                "SELECT set_config('lock_timeout', %s, %s)", [self.value, in_transaction]
            )
        self.watcher.pid = pid
        self.session = not in_transaction

    def after_migration(self, *, reset: bool = True) -> None:
        if self.session:
            self.session = False
            if reset:
                self._raw("RESET lock_timeout")

    def monitor(self) -> psycopg.Connection[Any] | None:
        """The watcher's own connection, if it has one open."""
        return self.watcher.monitor if self.watcher is not None else None

    @contextmanager
    def statement(self, sql: str) -> Iterator[None]:
        # CONCURRENTLY statements take weak locks and wait for old snapshots, not for the
        # app's locks: a lock_timeout would only cancel them and leave an invalid index.
        concurrently = self.session and "CONCURRENTLY" in str(sql).upper()
        if concurrently:
            self._raw("SET lock_timeout = 0")
        if self.watcher is not None:
            self.watcher.statement(running=True)
        try:
            yield
        finally:
            if self.watcher is not None:
                self.watcher.statement(running=False)
            if concurrently:
                self._raw(f"SET lock_timeout = '{self.value}'")

    def _raw(self, sql: str) -> None:
        raw = self.connection.connection
        assert raw is not None
        raw.execute(sql)
