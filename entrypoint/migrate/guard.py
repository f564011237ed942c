"""What protects the migrations while this process holds the lock.

- a keepalive on the lock's connection (and the fence's), so that poolers and idle killers
  never take it for idle, and a lost lock is noticed within seconds: the migration in flight
  is then cancelled on the server and rolled back, never left to commit unprotected;
- the fence (fence.py) around every migration's work, on PostgreSQL;
- each migration recorded in its own transaction, deferred SQL included, so that a process
  killed between the work's commit and its record cannot leave work done but unrecorded;
- a short lock_timeout on every statement of every migration, the blockers watched
  (contention.py), so that a migration never queues the app's traffic behind its ALTER.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from entrypoint import log
from entrypoint.errors import LockLost
from entrypoint.migrate.editor import Recorder, finish_inside, guarded_editor
from entrypoint.migrate.fence import Fence
from entrypoint.migrate.lock import Lock
from entrypoint.migrate.lock_pg import PostgresLock
from entrypoint.migrate.plan import label
from entrypoint.migrate.table_locks import TableLockTimeouts

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.backends.base.schema import BaseDatabaseSchemaEditor
    from django.db.migrations.migration import Migration

# Well under the idle timeouts met in practice (PgBouncer's idle_transaction_timeout, idle
# killers), and the longest a lost lock goes unnoticed while its server still answers.
KEEPALIVE_EVERY = 2.0
CANCEL_TIMEOUT = 5.0


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
        self.fence = Fence(lock, connection) if isinstance(lock, PostgresLock) else None
        self.timeouts = TableLockTimeouts(connection, table_lock_timeout)
        self.recorder = Recorder(connection)
        self.current: tuple[Migration, bool] | None = None
        self.lost = threading.Event()
        self._stopped = threading.Event()
        self._keepalive = threading.Thread(target=self._beat, name="lock-keepalive", daemon=True)

    def __enter__(self) -> Guard:  # noqa: PYI034 - Self needs Python 3.11
        self.timeouts.start()
        if self.fence is not None:
            self._keepalive.start()
            base = type(self.connection).SchemaEditorClass
            self.connection.SchemaEditorClass = guarded_editor(base, self)
            self.connection.execute_wrappers.append(self._around_statement)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped.set()
        self.timeouts.stop()
        if self.fence is not None:
            self._keepalive.join(KEEPALIVE_EVERY)
            del self.connection.SchemaEditorClass  # back to the class's own
            self.connection.execute_wrappers.remove(self._around_statement)
            self.fence.close()

    def barrier(self) -> None:
        """Before planning: a usable connection, and no other replica's work in flight."""
        if self.connection.connection is not None and not self.connection.is_usable():
            # A restart or failover while we waited for the lock: start afresh.
            log.get().info("migrate_connection_reopened", alias=self.connection.alias)
            self.connection.close()
        if self.fence is not None:
            self.fence.barrier(self.timeout)

    def holds(self) -> bool:
        """Whether the lock is still ours, as far as the keepalive and one query tell."""
        return not self.lost.is_set() and self.lock.is_held()

    def lost_error(self) -> LockLost:
        if self.current is None:
            return LockLost(
                "the migration lock's connection was lost between migrations: stopped with "
                "nothing in flight; run again"
            )
        migration, backwards = self.current
        what = label(migration) + (" (backwards)" if backwards else "")
        if migration.atomic:
            return LockLost(
                f"the migration lock's connection was lost while {what} ran: it was cancelled "
                "and rolled back, nothing of it was committed; run again"
            )
        return LockLost(
            f"the migration lock's connection was lost while {what} ran; it is not atomic, so "
            "the statements it ran before the cancel stay: make it re-runnable, then run again"
        )

    def _beat(self) -> None:
        assert self.fence is not None
        lock: Any = self.lock
        while not self._stopped.wait(KEEPALIVE_EVERY):
            error = _failure(lock.ping, self.fence.ping)
            if error is not None:
                if not self._stopped.is_set():
                    self._on_lost(error)
                return

    def _on_lost(self, exc: Exception) -> None:
        self.lost.set()
        log.get().error(
            "migration_lock_connection_lost",
            alias=self.connection.alias,
            migration=label(self.current[0]) if self.current else None,
            error=f"{type(exc).__name__}: {str(exc).strip()[:300]}",
        )
        raw = self.connection.connection
        if raw is not None:
            try:
                raw.cancel_safe(timeout=CANCEL_TIMEOUT)  # the statement running now, if any
            except Exception as cancel_exc:  # noqa: BLE001 - the checks before commit remain
                log.get().warning("migration_cancel_failed", error=type(cancel_exc).__name__)

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
            raise self.lost_error()
        if self.current is None:
            return
        migration, backwards = self.current
        finish_inside(editor, self.recorder, migration, backwards=backwards)

    def leave_work(self, *, atomic: bool) -> None:
        self.timeouts.after_migration()
        if not atomic and self.fence is not None:
            self.fence.release_aside()


def _failure(*calls: Callable[[], object]) -> Exception | None:
    try:
        for call in calls:
            call()
    except Exception as exc:  # noqa: BLE001 - any failure means the lock may be gone
        return exc
    return None
