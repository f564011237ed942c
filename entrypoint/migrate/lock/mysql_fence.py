"""The fence on MySQL/MariaDB: no migration work of a replica that lost the lock overlaps a new
holder's, and none of it commits once the lock is known lost.

The lock's GET_LOCK goes with its connection (a KILL, a proxy, a cut network) while the holder
may be inside a migration on its other connection, the migrating one. So:

- the migrating connection takes a second named lock, the fence, for the length of each
  migration, and gives it back once the migration's last statement, commit or rollback is done
  (GET_LOCK is session-scoped: it is released by us, or by the server when the session ends);
- under the fence, before any work, it asks the server whether the lock is still held by our
  lock connection (``IS_USED_LOCK(lock) = <its CONNECTION_ID()>``), and again just before every
  commit and before every statement run outside a transaction (DDL commits by itself there);
- a new holder passes the fence (``barrier``) before it plans: it waits until the work in
  flight has committed or rolled back. A session still holding the fence after the network
  timeout belongs to a replica that cannot reach the server or is frozen (a live one notices its
  lost lock within seconds, rolls back and lets go): the new holder ends that session
  (``KILL CONNECTION``), whose work could never commit anyway, and the server rolls it back.

Every statement here goes on the raw driver connection, not through Django's cursor wrappers.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from entrypoint import log
from entrypoint.connection import mysql_socket
from entrypoint.errors import LockLost
from entrypoint.migrate.lock.fence import POLL_MAX, wait_to_pass
from entrypoint.migrate.lock.mysql import MySQLLock
from entrypoint.migrate.lock.state import MYSQL_HOLDER, describe_session

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper


class MySQLFence:
    """The fence of one MySQL lock, on the migrating connection; the lock must be held."""

    def __init__(self, lock: MySQLLock, connection: BaseDatabaseWrapper) -> None:
        self.lock = lock
        self.connection = connection
        self.name = lock.fence_name
        self.held = False
        # The migrating session's server id and socket, read in the step's thread (a driver may
        # refuse to answer from another while in use): what a cancel kills, what the guard shuts.
        self.thread_id: int | None = None
        self.fd: int | None = None

    def _scalar(self, sql: str, params: Sequence[object]) -> Any:
        self.connection.ensure_connection()
        raw = self.connection.connection
        with self.connection.wrap_database_errors, raw.cursor() as cursor:
            cursor.execute(sql, list(params))
            row = cursor.fetchone()
        return row[0] if row else None

    def _remember(self) -> None:
        self.connection.ensure_connection()
        raw = self.connection.connection
        self.thread_id, self.fd = int(raw.thread_id()), mysql_socket(raw)

    def barrier(self, timeout: float, *, grace: float) -> None:
        """Wait, on the migrating connection, until no other replica's work is in flight;
        end the session holding the fence if it still does after ``grace`` seconds."""
        self._remember()
        wait_to_pass(
            self._pass_once,
            self._holder,
            alias=self.connection.alias,
            timeout=timeout,
            end_hint="KILL CONNECTION <connection_id>",
            grace=grace,
            at_grace=self._end_holder,
        )

    def _pass_once(self) -> bool:
        if self._scalar("SELECT GET_LOCK(%s, 0)", [self.name]) != 1:
            return False
        self._scalar("SELECT RELEASE_LOCK(%s)", [self.name])
        return True

    def _holder(self) -> str:
        try:
            self.connection.ensure_connection()
            with self.connection.connection.cursor() as cursor:
                cursor.execute(MYSQL_HOLDER, [self.name])
                row = cursor.fetchone()
        except Exception:  # noqa: BLE001 - who holds it is a detail of the message
            return "holder unknown"
        if row is None:
            return "holder just finished"
        return ", ".join(f"{k}={v}" for k, v in describe_session(row).items())

    def _end_holder(self, logger: log.Logger) -> None:
        """KILL the session holding the fence (once): its replica lost the lock and went silent."""
        holder = self._holder()
        try:
            session = self._scalar("SELECT IS_USED_LOCK(%s)", [self.name])
            if session is not None:
                self._scalar(f"KILL CONNECTION {int(session):d}", [])
        except Exception as exc:  # noqa: BLE001 - then we wait, until the lock timeout
            error = f"{type(exc).__name__}: {str(exc).strip()[:300]}"
            logger.warning("migration_fence_holder_not_ended", holder=holder, error=error)
            return
        logger.warning(
            "migration_fence_holder_ended",
            holder=holder,
            reason="it held the fence of a lock it no longer holds for longer than "
            "ENTRYPOINT_DB_NETWORK_TIMEOUT: its work is rolled back on the server",
        )

    def hold(self, lost: Callable[[], bool], what: str) -> None:
        """Take the fence for a migration's work, then check that the lock is still ours."""
        self._remember()
        delay = 0.01
        # Only a replica that lost the lock without knowing yet can hold the fence now; it
        # lets go as soon as it checks the lock, or our keepalive tells us we are that replica.
        while self._scalar("SELECT GET_LOCK(%s, 0)", [self.name]) != 1:
            if lost():
                raise LockLost(f"the migration lock was lost before {what} could start; run again")
            time.sleep(delay)
            delay = min(delay * 2, POLL_MAX)
        self.held = True
        if not self.lock_still_held():
            self.release()
            raise LockLost(
                "the migration lock is no longer held by this process (its connection was "
                f"lost; another replica may hold it now): stopped before {what} could start, "
                "nothing of it ran; run again"
            )

    def lock_still_held(self) -> bool:
        """Asked on the migrating connection: the lock is held by our lock connection."""
        held = self._scalar(
            "SELECT IS_USED_LOCK(%s) = %s", [self.lock.name, self.lock.connection_id]
        )
        return bool(held == 1)

    def release(self) -> None:
        """Give the fence back once the migration's last statement, commit or rollback is done."""
        if not self.held:
            return
        self.held = False
        with contextlib.suppress(Exception):  # a session that died has freed the fence
            self._scalar("SELECT RELEASE_LOCK(%s)", [self.name])

    def cancel(self) -> None:
        """End the statement the migrating session runs (the keepalive's thread; a new
        connection, since the migrating one is busy): an InnoDB transaction then rolls back."""
        if self.thread_id is None:
            return
        conn = self.lock.new_connection()
        try:
            with conn.cursor() as cursor:
                cursor.execute(f"KILL QUERY {self.thread_id:d}")
        finally:
            conn.close()

    def sockets(self) -> list[int | None]:
        """The migrating connection's socket and the lock's: what the guard shuts when lost."""
        return [self.fd, self.lock.fd]
