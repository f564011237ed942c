"""What protects the migrations while this process holds the lock.

- the keepalive (lock/keepalive.py) on the lock's connection and the fence's: a lost lock is
  noticed within seconds (ENTRYPOINT_DB_NETWORK_TIMEOUT on a silent network), and the
  migration in flight is then stopped and rolled back, never left to commit unprotected,
  whatever its code is doing (abandon.py);
- the fence around every migration's work (lock/fence.py on PostgreSQL, lock/mysql_fence.py
  on MySQL/MariaDB), and the lock asked from the migrating connection just before each
  commit (on MySQL also before each statement that commits by itself: DDL);
- each migration recorded in its own transaction, deferred SQL included, so that a process
  killed between the work's commit and its record cannot leave work done but unrecorded (on
  MySQL, a data migration runs in one transaction with its record: see editor.py);
- a short lock_timeout on every statement of every migration, the blockers watched
  (table_locks.py, retries.py), so that a migration never queues the app's traffic behind its ALTER;
- a stop is final (every engine, lock or no lock): once SIGTERM or SIGINT came, the migrating
  connection commits nothing more and runs nothing but a rollback, even when the migration's
  code swallowed the interruption (a bare ``except:``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from entrypoint import log
from entrypoint.connection import is_closed, migrating_session, network_timeout_of
from entrypoint.errors import LockLost, MigrationAbandoned, stop_requested
from entrypoint.migrate.lock.fence import Fence, django_query
from entrypoint.migrate.lock.keepalive import KEEPALIVE_EVERY, Keepalive
from entrypoint.migrate.lock.mysql import MySQLLock
from entrypoint.migrate.lock.mysql_fence import MySQLFence
from entrypoint.migrate.lock.options import Lock, LockOptions
from entrypoint.migrate.lock.postgres import PostgresLock
from entrypoint.migrate.lock.sessions import HolderSessions
from entrypoint.migrate.lock.waiting import migration_lock
from entrypoint.migrate.naming import label
from entrypoint.migrate.plan.preflight import one_transaction
from entrypoint.migrate.run.abandon import Abandon
from entrypoint.migrate.run.editor import Recorder, finish_inside, guarded_editor
from entrypoint.migrate.run.outcome import lost_error
from entrypoint.migrate.run.table_locks import TableLockTimeouts, watched

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.backends.base.schema import BaseDatabaseSchemaEditor
    from django.db.migrations.migration import Migration

CANCEL_TIMEOUT = 5.0  # libpq's own bound; the abandon stages wait for less
# Statements that change nothing: on MySQL they need no lock check before them.
READS = ("SELECT", "SHOW", "EXPLAIN", "DESCRIBE")
# Statements that undo: they still run after a stop (Django's atomic rolls back with them).
UNDOING = ("ROLLBACK", "RELEASE")


def holder_roles(
    lock: Lock, connection: BaseDatabaseWrapper, table_lock_timeout: float
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The helper sessions a holder of ``lock`` needs besides Django's connection (PostgreSQL:
    the fence's, for a non-atomic migration), and those it would like (the table locks'
    watcher, which names blockers)."""
    required = ("fence",) if isinstance(lock, PostgresLock) else ()
    return required, ("watch",) if watched(connection, table_lock_timeout) else ()


@contextmanager
def locked(connection: BaseDatabaseWrapper, options: LockOptions) -> Iterator[Guard]:
    """The lock, then the guard, its barrier passed: past this point no other replica's work
    is in flight, and none of ours runs unprotected."""
    with locked_unless_done(connection, options, done=None) as guard:
        assert guard is not None  # without a re-check, only the lock ends the wait
        yield guard


@contextmanager
def locked_unless_done(
    connection: BaseDatabaseWrapper,
    options: LockOptions,
    *,
    done: Callable[[Lock], bool] | None,
) -> Iterator[Guard | None]:
    """``locked``, or None when ``done`` found the work done while we waited for the lock.

    While it waits a replica holds one session (the lock's); once it has the lock, it opens
    every other session the work needs before starting it (lock/sessions.py).
    """
    sessions = HolderSessions(connection)

    def prepare(lock: Lock) -> None:
        sessions.open(*holder_roles(lock, connection, options.table_lock_timeout))

    try:
        with migration_lock(connection, options, done=done, prepare=prepare) as lock:
            if lock is None:
                yield None
                return
            with Guard(
                lock,
                connection,
                timeout=options.timeout,
                table_lock_timeout=options.table_lock_timeout,
                sessions=sessions,
            ) as guard:
                guard.barrier()
                yield guard
    finally:
        sessions.close_untaken()


class Guard:
    """``with Guard(lock, connection) as guard:`` right after the lock is acquired (``locked``)."""

    def __init__(
        self,
        lock: Lock,
        connection: BaseDatabaseWrapper,
        *,
        timeout: float,
        table_lock_timeout: float = 0.0,
        sessions: HolderSessions | None = None,
    ) -> None:
        self.lock = lock
        self.connection = connection
        self.timeout = timeout
        # The helper sessions, opened by the holder before any work (holder_roles).
        take = sessions.take if sessions is not None else lambda _role: None
        self.timeouts = TableLockTimeouts(connection, table_lock_timeout, take("watch"))
        self.recorder = Recorder(connection)
        self.current: tuple[Migration, bool] | None = None
        self.committing = False  # between the last checks and the commit's answer
        self.lost = threading.Event()
        self.abandon = Abandon(self._connections, self.lost_error)
        # PostgreSQL and MySQL: the fence, and the keepalive on the lock's session (and on
        # PostgreSQL the fence's own, for a non-atomic migration).
        self.fence: Fence | MySQLFence | None = None
        self._keepalive: Keepalive | None = None
        if isinstance(lock, PostgresLock):
            self.fence = Fence(lock, connection, take("fence"))
            self._keepalive = Keepalive(
                (lock.ping, self.fence.ping),
                self._on_lost,
                answer_within=network_timeout_of(lock.params),
            )
        elif isinstance(lock, MySQLLock):
            self.fence = MySQLFence(lock, connection)
            # Often enough that the server's wait_timeout (the network timeout) never ends a
            # live holder's lock session.
            self._keepalive = Keepalive(
                (lock.ping,),
                self._on_lost,
                answer_within=lock.network_timeout,
                every=min(KEEPALIVE_EVERY, lock.network_timeout / 3),
            )

    def __enter__(self) -> Guard:  # noqa: PYI034 - Self needs Python 3.11
        self.timeouts.start()
        # Every vendor, lock or no lock: after a stop nothing more runs or commits here.
        self.connection.execute_wrappers.append(self._around_statement)
        self.connection._commit = self._checked_commit  # type: ignore[attr-defined] # noqa: SLF001
        if self.fence is not None and self._keepalive is not None:
            self.abandon.arm()
            self._keepalive.start()
            base = type(self.connection).SchemaEditorClass
            self.connection.SchemaEditorClass = guarded_editor(base, self)
        return self

    def __exit__(self, _type: object, exc: BaseException | None, _tb: object) -> None:
        self.abandon.disarm()
        self.timeouts.stop()
        if self._keepalive is not None:
            self._keepalive.stop()
        self.connection.execute_wrappers.remove(self._around_statement)
        del self.connection._commit  # type: ignore[attr-defined] # noqa: SLF001 - the class's own
        if self.fence is not None:
            del self.connection.SchemaEditorClass  # back to the class's own
            if isinstance(self.fence, Fence):
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
            django_query(self.connection)(*migrating_session(self.connection))
        if isinstance(self.fence, MySQLFence):
            self.fence.barrier(self.timeout, grace=self.fence.lock.network_timeout)
        elif self.fence is not None:
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
            transactional=self.one_transaction(),
        )

    def one_transaction(self) -> bool:
        """Whether the migration in flight runs in one transaction (its record included once
        the guarded editor runs it; without a lock, as Django runs it)."""
        if self.current is None:
            return False
        migration = self.current[0]
        if self.fence is None:
            return bool(migration.atomic and self.connection.features.can_rollback_ddl)
        return one_transaction(migration, self.connection)

    def connection_lost(self) -> bool:
        """Whether the migrating connection is gone (after a failed statement)."""
        return is_closed(self.connection.connection)

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
        if isinstance(self.fence, MySQLFence):
            self.fence.cancel()
            return
        raw = self.connection.connection
        if raw is not None:
            raw.cancel_safe(timeout=CANCEL_TIMEOUT)  # the statement running now, if any

    def _connections(self) -> list[Any]:
        """Every connection of ours the migration may be blocked on (or its socket)."""
        if isinstance(self.fence, MySQLFence):
            return list(self.fence.sockets())
        found = [self.connection.connection, getattr(self.lock, "conn", None)]
        if self.fence is not None:
            found.append(self.fence.aside)
        return [*found, self.timeouts.monitor()]

    def _around_statement(
        self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        if self.lost.is_set():
            raise self.lost_error()
        stop = stop_requested()
        if stop is not None and not str(sql).lstrip().upper().startswith(UNDOING):
            raise stop  # again: the migration's code may have swallowed the first one
        if (
            isinstance(self.fence, MySQLFence)
            and self.fence.held
            and not self.connection.in_atomic_block
            and not str(sql).lstrip().upper().startswith(READS)
        ):
            # It commits by itself (DDL, or any statement outside a transaction): only while
            # the lock is ours, asked on the server just before.
            self._check_lock()
        with self.timeouts.statement(sql):
            return execute(sql, params, many, context)

    def _lock_asked(self) -> bool:
        """Whether the server says the lock is still ours (asked on the migrating connection)."""
        return self.fence is not None and self.fence.lock_still_held()

    def _check_lock(self) -> None:
        if not self._lock_asked():
            self.lost.set()  # our keepalive may not have noticed yet
            raise self.lost_error()

    def _checked_commit(self) -> None:
        """A transaction of the migrating connection commits only if no stop came (SIGTERM,
        SIGINT; the code that ran when it came may have swallowed it), and on MySQL only while
        the lock is ours, asked on the server from that connection just before the commit."""
        refused: BaseException | None = stop_requested()
        mysql = isinstance(self.fence, MySQLFence)
        if refused is None and mysql and (self.lost.is_set() or not self._lock_asked()):
            self.lost.set()
            refused = self.lost_error()
        if refused is not None:
            # Rolled back here: raising past Django's atomic would leave the transaction
            # open, and its next set_autocommit(True) would commit it (MySQL does).
            self.connection.rollback()
            raise refused
        self.committing = True
        type(self.connection)._commit(self.connection)  # type: ignore[attr-defined] # noqa: SLF001
        self.committing = False

    def enter_work(self, *, atomic: bool) -> None:
        assert self.fence is not None
        if self.lost.is_set():
            raise self.lost_error()
        current = label(self.current[0]) if self.current else None
        what = current or "the next migration"
        if isinstance(self.fence, MySQLFence):
            self.fence.hold(self.lost.is_set, what)
        elif atomic:
            self.fence.hold_in_transaction(self.lost.is_set, what)
        else:
            self.fence.hold_aside(self.lost.is_set, what)
        self.timeouts.for_migration(in_transaction=atomic, migration=current)

    def before_commit(self, editor: BaseDatabaseSchemaEditor) -> None:
        if self.lost.is_set():
            raise self.lost_error()
        if isinstance(self.fence, MySQLFence):
            # Deferred SQL and the record while the fence is held: in a transaction, whose
            # commit is checked (_checked_commit), or each statement checked before it runs.
            if self.current is not None:
                migration, backwards = self.current
                finish_inside(editor, self.recorder, migration, backwards=backwards)
            return
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
        if isinstance(self.fence, MySQLFence):
            if not self.unreachable():  # else the server frees it with the session
                self.fence.release()
            self.fence.held = False
        elif not atomic and self.fence is not None:
            self.fence.release_aside()
