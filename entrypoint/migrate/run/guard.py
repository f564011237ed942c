"""What protects the migrations while this process holds the lock.

- the keepalive (lock/keepalive.py) on the lock's connection and the fence's: a lost lock is
  noticed within seconds (ENTRYPOINT_DB_NETWORK_TIMEOUT on a silent network), and the
  migration in flight is then stopped and rolled back, never left to commit unprotected,
  whatever its code is doing (abandon.py);
- the fence (lock/fence.py) around every migration's work, on PostgreSQL;
- each migration recorded in its own transaction, deferred SQL included, so that a process
  killed between the work's commit and its record cannot leave work done but unrecorded;
- a short lock_timeout on every statement of every migration, the blockers watched
  (table_locks.py, retries.py), so that a migration never queues the app's traffic behind its ALTER.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from entrypoint import log
from entrypoint.connection import migrating_session, network_timeout_of
from entrypoint.errors import LockLost, MigrationAbandoned
from entrypoint.migrate.lock.fence import Fence, django_scalar
from entrypoint.migrate.lock.keepalive import Keepalive
from entrypoint.migrate.lock.options import Lock
from entrypoint.migrate.lock.postgres import PostgresLock
from entrypoint.migrate.plan.graph import label
from entrypoint.migrate.run.abandon import Abandon
from entrypoint.migrate.run.editor import Recorder, finish_inside, guarded_editor
from entrypoint.migrate.run.outcome import lost_error
from entrypoint.migrate.run.table_locks import TableLockTimeouts

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.backends.base.schema import BaseDatabaseSchemaEditor
    from django.db.migrations.migration import Migration

CANCEL_TIMEOUT = 5.0  # libpq's own bound; the abandon stages wait for less


class Guard:
    """``with Guard(lock, connection) as guard:`` right after the lock is acquired."""

    def __init__(
        self,
        lock: Lock,
        connection: BaseDatabaseWrapper,
        *,
        timeout: float,
        table_lock_timeout: float = 0.0,
    ) -> None:
        self.lock = lock
        self.connection = connection
        self.timeout = timeout
        self.timeouts = TableLockTimeouts(connection, table_lock_timeout)
        self.recorder = Recorder(connection)
        self.current: tuple[Migration, bool] | None = None
        self.committing = False  # between the last checks and the commit's answer
        self.lost = threading.Event()
        self.abandon = Abandon(self._connections, self.lost_error)
        # PostgreSQL only: the fence, and the keepalive on the lock's session and the fence's.
        self.fence: Fence | None = None
        self._keepalive: Keepalive | None = None
        if isinstance(lock, PostgresLock):
            self.fence = Fence(lock, connection)
            self._keepalive = Keepalive(
                (lock.ping, self.fence.ping),
                self._on_lost,
                answer_within=network_timeout_of(lock.params),
            )

    def __enter__(self) -> Guard:  # noqa: PYI034 - Self needs Python 3.11
        self.timeouts.start()
        if self.fence is not None and self._keepalive is not None:
            self.abandon.arm()
            self._keepalive.start()
            base = type(self.connection).SchemaEditorClass
            self.connection.SchemaEditorClass = guarded_editor(base, self)
            self.connection.execute_wrappers.append(self._around_statement)
        return self

    def __exit__(self, _type: object, exc: BaseException | None, _tb: object) -> None:
        self.abandon.disarm()
        self.timeouts.stop()
        if self._keepalive is not None:
            self._keepalive.stop()
        if self.fence is not None:
            del self.connection.SchemaEditorClass  # back to the class's own
            self.connection.execute_wrappers.remove(self._around_statement)
            self.fence.close()
        if isinstance(exc, MigrationAbandoned):  # unwound: now the error it stands for
            raise exc.error from exc

    def barrier(self) -> None:
        """Before planning: a usable connection, and no other replica's work in flight."""
        if self.connection.connection is not None and not self.connection.is_usable():
            # A restart or failover while we waited for the lock: start afresh.
            log.get().info("migrate_connection_reopened", alias=self.connection.alias)
            self.connection.close()
        if self.connection.vendor == "postgresql":
            # Named in pg_stat_activity (what a waiter reports), and the server half of the
            # network timeout, lock or no lock: a session whose client vanished would otherwise
            # run its statement to the end, holding the table locks the app waits for.
            django_scalar(self.connection)(*migrating_session(self.connection))
        if self.fence is not None:
            self.fence.barrier(self.timeout)

    def holds(self) -> bool:
        """Whether the lock is still ours, as far as the keepalive and one query tell."""
        return not self.lost.is_set() and self.lock.is_held()

    def lost_error(self) -> LockLost:
        """What to report once the lock's connection, or the migrating one, was lost."""
        return lost_error(
            self.current,
            lock=self.lost.is_set(),
            committing=self.committing,
            can_rollback_ddl=self.connection.features.can_rollback_ddl,
        )

    def connection_lost(self) -> bool:
        """Whether the migrating connection is gone (after a failed statement)."""
        raw = self.connection.connection
        return raw is None or bool(raw.closed) or bool(getattr(raw, "broken", False))

    def unreachable(self) -> bool:
        """Whether nothing more can be sent on the migrating connection (broken, or shut by us)."""
        return self.abandon.shut.is_set() or self.connection_lost()

    def _on_lost(self, exc: Exception) -> None:
        self.lost.set()
        log.get().error(
            "migration_lock_connection_lost",
            alias=self.connection.alias,
            migration=label(self.current[0]) if self.current else None,
            error=f"{type(exc).__name__}: {str(exc).strip()[:300]}",
        )
        self.abandon.run(self._cancel)

    def _cancel(self) -> None:
        raw = self.connection.connection
        if raw is not None:
            raw.cancel_safe(timeout=CANCEL_TIMEOUT)  # the statement running now, if any

    def _connections(self) -> list[Any]:
        """Every connection of ours the migration may be blocked on."""
        found = [self.connection.connection, getattr(self.lock, "conn", None)]
        if self.fence is not None:
            found.append(self.fence.aside)
        return [*found, self.timeouts.monitor()]

    def _around_statement(
        self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        if self.lost.is_set():
            raise self.lost_error()
        with self.timeouts.statement(sql):
            return execute(sql, params, many, context)

    def enter_work(self, *, atomic: bool) -> None:
        assert self.fence is not None
        if self.lost.is_set():
            raise self.lost_error()
        current = label(self.current[0]) if self.current else None
        what = current or "the next migration"
        if atomic:
            self.fence.hold_in_transaction(self.lost.is_set, what)
        else:
            self.fence.hold_aside(self.lost.is_set, what)
        self.timeouts.for_migration(in_transaction=atomic, migration=current)

    def before_commit(self, editor: BaseDatabaseSchemaEditor) -> None:
        if self.lost.is_set():
            raise self.lost_error()
        if not editor.atomic_migration:
            return
        # The keepalive may not have noticed yet (a paused process): ask the server itself.
        assert self.fence is not None
        if not self.fence.lock_still_held():
            self.lost.set()  # the server tells before the keepalive does: the lock is gone
            raise self.lost_error()
        if self.current is None:
            return
        migration, backwards = self.current
        finish_inside(editor, self.recorder, migration, backwards=backwards)
        self.committing = True

    def leave_work(self, *, atomic: bool) -> None:
        self.committing = False
        # Once lost, nothing more is sent on the migrating connection: it may be shut.
        self.timeouts.after_migration(reset=not self.lost.is_set())
        if not atomic and self.fence is not None:
            self.fence.release_aside()
