"""The MySQL/MariaDB migration lock: GET_LOCK on a connection of its own.

A GET_LOCK lock belongs to the session that took it and goes with it (a KILL, a failover, a
proxy's timeout, a cut network). So the lock's connection is a raw driver connection, pinged
by the guard's keepalive while the lock is held, and bounded on both ends: each read, write
and connect within ENTRYPOINT_DB_NETWORK_TIMEOUT here (``connection.mysql_params``), and on
the server ``wait_timeout`` set to the same bound, so that the server frees the lock of a
holder that went silent (its node or network lost) within that time after its last ping.
The lock's and the fence's names are made from the same key (state.lock_name).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from entrypoint.connection import (
    NETWORK,
    is_closed,
    mysql_connect,
    mysql_params,
    mysql_socket,
    whole_seconds,
)
from entrypoint.migrate.lock.options import Polled
from entrypoint.migrate.lock.state import MYSQL_HOLDER, describe_session, lock_name

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

RECORDED = "SELECT app, name FROM django_migrations"  # what a waiter reads on its session
NO_SUCH_TABLE = 1146  # ER_NO_SUCH_TABLE


class MySQLLock(Polled):
    """GET_LOCK on a dedicated connection; polled, so that SIGTERM is handled while waiting.

    Its connection serves two threads (the step's and the keepalive's): every use holds
    ``_mutex``, since a driver connection is not to be shared while in use.
    """

    kind = "get_lock"

    def __init__(self, connection: BaseDatabaseWrapper, key: int) -> None:
        database = str(connection.settings_dict["NAME"])
        self.name = lock_name(key, database)
        self.fence_name = lock_name(key, database, role="fence")
        self.connection = connection
        self.params = mysql_params(connection)
        self.network_timeout = NETWORK.timeout
        self.conn: Any = None
        self.fd: int | None = None  # the socket under ``conn``: the guard may shut it
        self.connection_id: int | None = None  # the server's id of our session, once held
        self._mutex = threading.Lock()

    def new_connection(self) -> Any:
        """A raw connection as the lock's: for a lock attempt, or to cancel a statement."""
        return mysql_connect(self.connection, self.params)

    def _scalar(
        self, sql: str, params: Sequence[object], *, connect: bool = False, every: bool = False
    ) -> Any:
        """One statement's row (``every``: all its rows); ``connect``: (re)connect first if
        needed (a waiter only: a holder's lost connection means a lost lock, not replaced)."""
        with self._mutex:
            if is_closed(self.conn):
                if not connect:
                    raise ConnectionError("the migration lock's connection is closed")
                conn = self.new_connection()
                try:
                    with conn.cursor() as cursor:
                        # Pinged every few seconds while held: a holder silent for longer than
                        # the network timeout is gone, and the server then frees its lock.
                        cursor.execute(
                            f"SET SESSION wait_timeout = {whole_seconds(self.network_timeout):d}"
                            # A waiter's read of django_migrations never queues for long.
                            ", SESSION lock_wait_timeout = 2"
                        )
                except Exception:
                    conn.close()
                    raise
                self.conn, self.fd = conn, mysql_socket(conn)
            with self.conn.cursor() as cursor:
                cursor.execute(sql, list(params))
                return cursor.fetchall() if every else cursor.fetchone()

    def _drop(self) -> None:
        with self._mutex:
            conn, self.conn, self.fd = self.conn, None, None
        if conn is not None:
            with contextlib.suppress(Exception):  # a connection that failed is gone anyway
                conn.close()

    def try_acquire(self) -> bool:
        try:
            got, connection_id = self._scalar(
                "SELECT GET_LOCK(%s, 0), CONNECTION_ID()", [self.name], connect=True
            )
        except Exception:
            self._drop()  # we held nothing: the next try starts on a new connection
            raise
        if got == 1:
            self.connection_id = int(connection_id)
        return bool(got == 1)

    def recorded(self) -> set[tuple[str, str]]:
        """django_migrations, read on the waiting session (a waiter's only one); the read's
        transaction is ended at once, so that the next one sees what the holder committed."""
        assert self.connection_id is None  # a holder's session is not a waiter's
        try:
            rows = self._scalar(RECORDED, [], connect=True, every=True)
        except Exception as exc:
            if getattr(exc, "args", (None,))[:1] == (NO_SUCH_TABLE,):
                return set()  # nothing migrated yet
            self._drop()  # a failed read must not poison the next attempt
            raise
        finally:
            with self._mutex, contextlib.suppress(Exception):
                if not is_closed(self.conn):
                    self.conn.rollback()
        return {(str(app), str(name)) for app, name in rows}

    def holder(self) -> dict[str, object]:
        row = self._scalar(MYSQL_HOLDER, [self.name])
        return {f"holder_{k}": v for k, v in describe_session(row).items()}

    def _ours(self) -> bool:
        row = self._scalar("SELECT IS_USED_LOCK(%s) = CONNECTION_ID()", [self.name])
        return bool(row and row[0] == 1)

    def is_held(self) -> bool:
        try:
            return self._ours()
        except Exception:  # noqa: BLE001 - a dead connection means the lock is gone
            return False

    def ping(self) -> None:
        """The keepalive's ping: the session is alive and the lock still its own, or raise."""
        if not self._ours():
            raise ConnectionError("the migration lock is no longer held by its connection")

    def release(self) -> None:
        try:
            if not is_closed(self.conn):  # a lost connection is not reopened to release nothing
                self._scalar("SELECT RELEASE_LOCK(%s)", [self.name])
        finally:
            self._drop()  # the server frees the lock with the session anyway
