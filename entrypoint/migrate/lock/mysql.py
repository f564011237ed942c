"""The MySQL/MariaDB migration lock: GET_LOCK on a connection of its own."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from entrypoint.migrate.lock.options import Polled

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper


class MySQLLock(Polled):
    """GET_LOCK on a dedicated connection; polled, so that SIGTERM is handled while waiting."""

    kind = "get_lock"

    def __init__(self, connection: BaseDatabaseWrapper, key: int) -> None:
        self.conn = type(connection)(dict(connection.settings_dict), connection.alias)
        self.name = self.lock_name(key, str(connection.settings_dict["NAME"]))

    @staticmethod
    def lock_name(key: int, database: str) -> str:
        """GET_LOCK names are server-wide: the database is in it, so two projects never collide."""
        name = f"django-entrypoint:{key}:{database}"
        if len(name) > 64:  # MySQL's limit
            name = "django-entrypoint:" + hashlib.sha256(name.encode()).hexdigest()[:40]
        return name

    def _cursor(self) -> Any:
        if self.conn.connection is None:  # first use, or after a lost connection was closed
            self.conn.ensure_connection()
            with self.conn.cursor() as cursor:
                # The server drops connections idle past wait_timeout (often 300-600 s on
                # managed MySQL), and GET_LOCK locks with them: outlive the longest migration.
                cursor.execute("SET SESSION wait_timeout = 31536000")
        return self.conn.cursor()

    def _scalar(self, sql: str, params: Sequence[str]) -> object:
        with self._cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        return row[0] if row else None

    def try_acquire(self) -> bool:
        try:
            return self._scalar("SELECT GET_LOCK(%s, 0)", [self.name]) == 1
        except Exception:
            self.conn.close()  # we held nothing: the next try starts on a new connection
            raise

    def holder(self) -> dict[str, object]:
        with self._cursor() as cursor:
            cursor.execute(
                "SELECT ID, USER, HOST, TIME FROM information_schema.PROCESSLIST"
                " WHERE ID = IS_USED_LOCK(%s)",
                [self.name],
            )
            row = cursor.fetchone()
        if row is None:
            return {}
        return {
            "holder_connection_id": row[0],
            "holder_user": row[1],
            "holder_host": row[2],
            "holder_state_s": row[3],
        }

    def is_held(self) -> bool:
        try:
            return self._scalar("SELECT IS_USED_LOCK(%s) = CONNECTION_ID()", [self.name]) == 1
        except Exception:  # noqa: BLE001 - a dead connection means the lock is gone
            return False

    def release(self) -> None:
        try:
            self._scalar("SELECT RELEASE_LOCK(%s)", [self.name])
        finally:
            self.conn.close()
