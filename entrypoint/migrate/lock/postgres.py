"""The PostgreSQL migration lock: an advisory lock on a connection of its own."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from entrypoint.connection import (
    application_name,
    connection_params,
    server_settings,
    set_configs,
    setup_session,
)
from entrypoint.migrate.lock import wakeup
from entrypoint.migrate.lock.state import LOCK, PG_HOLDERS, key_ids, pg_holders

if TYPE_CHECKING:
    import psycopg
    from django.db.backends.base.base import BaseDatabaseWrapper

# What a waiter reads on its one session: whether the holder recorded the work meanwhile.
RECORDED = "SELECT app, name FROM django_migrations"
RECORDS_LOCK_WAIT = "2s"  # a session holding the table locked is waited out by the next poll
# The lock's session waits idle in its transaction for as long as the migrations run.
NO_IDLE_TIMEOUT = ("idle_in_transaction_session_timeout", "0")
IDLE_SESSION_TIMEOUT_SINCE = 140000  # PostgreSQL 14 closes idle sessions; the lock's must stay


class PostgresLock:
    """pg_try_advisory_xact_lock inside an open transaction (or a session lock in ``session`` mode).

    A transaction-scoped lock survives PgBouncer transaction pooling, because the pooler keeps
    the server connection for as long as the transaction is open, and the server frees it when
    the holder dies. Each failed attempt ends its transaction, so a waiter holds no snapshot
    that a CREATE INDEX CONCURRENTLY in the holder would have to wait for.
    """

    def __init__(self, connection: BaseDatabaseWrapper, key: int, *, xact: bool) -> None:
        self.kind = "pg_advisory_xact_lock" if xact else "pg_advisory_lock"
        self.xact = xact
        self.key = key
        self.ids = key_ids(key)  # as pg_locks shows it (lock/state.py)
        self.params = connection_params(connection, "migrate")
        # Connected on the first attempt, so that a refused first connection (the role's
        # connection limit, a restarting server) is retried within the lock timeout.
        self.conn: psycopg.Connection[Any] | None = None
        self.backend_pid: int | None = None  # the server process holding the lock, once held
        self.channel = wakeup.channel(key)
        self.wake = "poll"  # "notify" while the connection listens for the holder's release

    def _connect(self) -> psycopg.Connection[Any]:
        import psycopg  # noqa: PLC0415 - only PostgreSQL users need it

        conn = psycopg.connect(**self.params, autocommit=not self.xact)
        if not self.xact:
            # A session lock outlives transactions: make the session immune to idle timeouts.
            settings = [NO_IDLE_TIMEOUT]
            if conn.info.server_version >= IDLE_SESSION_TIMEOUT_SINCE:
                settings.append(("idle_session_timeout", "0"))
            setup_session(conn, self.params, *settings)
        self.wake = "notify" if wakeup.try_listen(conn, self.channel) else "poll"
        return conn

    def pause(self, seconds: float) -> None:
        """Sleep until the holder's release wakes us, or ``seconds`` pass (polling)."""
        if self.conn is None or self.wake != "notify":
            time.sleep(seconds)
        else:
            wakeup.wait(self.conn, seconds)

    def _session(self) -> psycopg.Connection[Any]:
        """The lock's session, connected on first use: a waiter's only one."""
        if self.conn is not None and (self.conn.broken or self.conn.closed):
            # Cut while we waited (a failover, a pooler's timeout), noticed while listening:
            # said like a failed attempt; we held nothing, so the next one reconnects.
            self._drop()
            raise ConnectionError("the lock's connection was lost while waiting")
        if self.conn is None:
            self.conn = self._connect()
        return self.conn

    def try_acquire(self) -> bool:
        conn = self._session()
        try:
            got, pid = self._attempt(conn)
        except Exception:
            self._drop()  # a failed attempt must not poison the next one
            raise
        if got:
            self.backend_pid = pid
        elif self.xact:
            conn.rollback()
        return got

    def recorded(self) -> set[tuple[str, str]]:
        """django_migrations, read on the waiting session in a transaction of its own (no
        snapshot stays), waiting at most RECORDS_LOCK_WAIT for a lock on the table."""
        import psycopg  # noqa: PLC0415

        assert self.backend_pid is None  # a holder's transaction is its lock: not ended here
        conn = self._session()
        try:
            with conn.transaction():
                conn.execute("SELECT set_config('lock_timeout', %s, true)", [RECORDS_LOCK_WAIT])
                rows = conn.execute(RECORDED).fetchall()
        except psycopg.errors.UndefinedTable:
            return set()  # nothing migrated yet
        return {(str(app), str(name)) for app, name in rows}

    def give_back(self) -> None:
        """The lock goes with the session; nobody is woken (see ``Lock``)."""
        self.backend_pid = None
        self._drop()

    def _attempt(self, conn: psycopg.Connection[Any]) -> tuple[bool, int]:
        if not self.xact:
            row = conn.execute(
                "SELECT pg_try_advisory_lock((%s)::bigint), pg_backend_pid()", [self.key]
            ).fetchone()
        else:
            # set_config(..., true) lasts for this transaction only: safe behind a pooler. The
            # server half of the network timeout lets the server free the lock of a vanished
            # holder within that bound.
            server = server_settings(self.params, conn.info.server_version)
            sql, values = set_configs(
                [NO_IDLE_TIMEOUT, *server, ("application_name", application_name())], local=True
            )
            row = conn.execute(
                f"{sql}, pg_try_advisory_xact_lock((%s)::bigint), pg_backend_pid()",
                [*values, self.key],
            ).fetchone()
        assert row is not None
        return bool(row[-2]), int(row[-1])

    def _drop(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.conn = None

    def holder(self) -> dict[str, object]:
        if self.conn is None:
            return {}
        try:
            rows = self.conn.execute(PG_HOLDERS, list(self.ids)).fetchall()
        finally:
            if self.xact:
                self.conn.rollback()
        others = [h for h in pg_holders(rows, LOCK) if not h.ours]
        if not others:
            return {}
        return {
            "holder_application_name": others[0].application_name,
            "holder_client_addr": others[0].client_addr or "local",
            "holder_since": others[0].since_text(),
            "holder_pid": others[0].pid,
        }

    def is_held(self) -> bool:
        if self.conn is None:
            return False
        try:
            rows = self.conn.execute(PG_HOLDERS, list(self.ids)).fetchall()
        except Exception:  # noqa: BLE001 - a dead connection means the lock is gone
            return False
        return any(h.ours for h in pg_holders(rows, LOCK))

    def ping(self) -> None:
        """Show the server and any pooler that the lock's session is alive; raise if it is not.

        SHOW takes no snapshot, so a ping never makes a CREATE INDEX CONCURRENTLY wait.
        """
        assert self.conn is not None
        self.conn.execute("SHOW application_name")

    def release(self) -> None:
        if self.conn is None:
            return
        try:
            if self.xact:
                self.conn.rollback()
            else:
                self.conn.execute("SELECT pg_advisory_unlock((%s)::bigint)", [self.key])
            if self.backend_pid is not None:  # we held it: wake the waiters
                wakeup.try_notify(self.conn, self.channel)
        finally:
            self._drop()  # the server frees the lock with the connection anyway
