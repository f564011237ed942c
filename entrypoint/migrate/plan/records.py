"""Reading django_migrations without queueing behind someone's lock on it.

A session that holds ``LOCK TABLE django_migrations`` (an operator's repair, a tool's own
migration run) would hold every read of it, for as long as it likes: the start's file-level
check, ``--status``. Here each read waits at most a given time for a table lock (PostgreSQL
``lock_timeout``, MySQL ``lock_wait_timeout``, SQLite's busy timeout), and for its statement
(PostgreSQL ``statement_timeout``); then ``RecordsLocked`` names who holds the table, when the
catalog tells (PostgreSQL ``pg_locks``). ``patiently`` retries such reads within a deadline,
then raises LockTimeout (75) naming the holder. A server refusing the connection for now (no slot
free, starting up) is waited for the same way.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

from django.db import DatabaseError, transaction
from django.db.migrations.recorder import MigrationRecorder

from entrypoint.connection import set_configs
from entrypoint.errors import LockTimeout, sqlstate_in
from entrypoint.patience import Refusal, refused
from entrypoint.patience import patiently as db_patiently

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

T = TypeVar("T")
Blocker = dict[str, object]
TABLE = MigrationRecorder.Migration._meta.db_table  # noqa: SLF001 - Django's documented model API
# Reads are blocked only by ACCESS EXCLUSIVE (LOCK TABLE, most ALTER TABLE forms).
HOLDERS = (
    "SELECT a.pid, a.application_name, host(a.client_addr), a.state,"
    " coalesce(a.xact_start, a.query_start)"
    " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
    " WHERE l.locktype = 'relation' AND l.granted AND l.mode = 'AccessExclusiveLock'"
    " AND l.relation = to_regclass(%s) AND l.pid <> pg_backend_pid() ORDER BY a.pid"
)
# lock_not_available (lock_timeout), query_canceled (statement_timeout); MySQL's
# ER_LOCK_WAIT_TIMEOUT (metadata locks too, under lock_wait_timeout).
TIMED_OUT_SQLSTATES = ("55P03", "57014")
MYSQL_LOCK_WAIT_TIMEOUT = 1205


class RecordsLocked(Exception):
    """A read of django_migrations (or its statement) waited longer than it may."""

    def __init__(self, blockers: Sequence[Blocker], cause: str) -> None:
        self.blockers = list(blockers)
        self.cause = cause
        super().__init__(f"{TABLE} could not be read in time ({cause}); held by {self.who()}")

    def who(self) -> str:
        """The holders as a reader looks for them in pg_stat_activity."""
        if not self.blockers:
            return "a session the catalog does not name"
        return "; ".join(
            f"pid={b['pid']} application_name={b['application_name']!r}" for b in self.blockers
        )


def blocker(row: Sequence[object]) -> Blocker:
    """A ``pg_stat_activity`` row (pid, application_name, client_addr, state, since) as fields."""
    since = row[4]
    return {
        "pid": row[0],
        "application_name": row[1],
        "client_addr": row[2] or "local",
        "state": row[3],
        "since": since.isoformat() if isinstance(since, dt.datetime) else since,
    }


@contextmanager
def bounded(
    connection: BaseDatabaseWrapper, lock_wait: float, *, statement: float | None = None
) -> Iterator[None]:
    """The block's reads wait at most ``lock_wait`` seconds for a table lock, and (PostgreSQL)
    each statement at most ``statement``; RecordsLocked when one waited longer.

    On PostgreSQL the block is one transaction with ``SET LOCAL``: behind a transaction pooler
    a session setting would land on a server connection other clients share.
    """
    try:
        if connection.vendor == "postgresql":
            with transaction.atomic(using=connection.alias):
                settings = [("lock_timeout", _ms(lock_wait))]
                if statement is not None:
                    settings.append(("statement_timeout", _ms(statement)))
                with connection.cursor() as cursor:
                    cursor.execute(*set_configs(settings, local=True))
                yield
        elif connection.vendor == "mysql":  # whole seconds, for metadata locks (LOCK TABLES)
            seconds = max(math.ceil(lock_wait), 1)
            read, write = (
                "SELECT @@SESSION.lock_wait_timeout",
                "SET SESSION lock_wait_timeout = {:d}",
            )
            with _session_value(connection, read, write, seconds):
                yield
        elif connection.vendor == "sqlite":
            milliseconds = max(math.ceil(lock_wait * 1000), 1)
            with _session_value(
                connection, "PRAGMA busy_timeout", "PRAGMA busy_timeout = {:d}", milliseconds
            ):
                yield
        else:
            yield
    except DatabaseError as exc:
        cause = _timed_out(connection, exc)
        if cause is None:
            raise
        raise RecordsLocked(holders(connection), cause) from exc


def _ms(seconds: float) -> str:
    return f"{max(math.ceil(seconds * 1000), 1)}ms"


def _timed_out(connection: BaseDatabaseWrapper, exc: DatabaseError) -> str | None:
    """What ran out, when ``exc`` is a timeout of ``bounded``'s; None for any other error."""
    if sqlstate_in(exc, "55P03"):
        return "lock_timeout"
    if sqlstate_in(exc, "57014"):
        return "statement_timeout"
    code = exc.args[0] if exc.args else None
    if connection.vendor == "mysql" and code == MYSQL_LOCK_WAIT_TIMEOUT:
        return "lock_wait_timeout"
    if connection.vendor == "sqlite" and "database is locked" in str(exc):
        return "busy_timeout"
    return None


@contextmanager
def _session_value(
    connection: BaseDatabaseWrapper, read: str, write: str, value: int
) -> Iterator[None]:
    """``write`` (with ``value``) for the block, then back to what ``read`` gave before."""
    with connection.cursor() as cursor:
        cursor.execute(read)
        (before,) = cursor.fetchone()
        cursor.execute(write.format(value))
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(write.format(int(before)))


def holders(connection: BaseDatabaseWrapper) -> list[Blocker]:
    """Who holds django_migrations so that no one may read it (PostgreSQL; elsewhere, and when
    the question fails, nobody is named)."""
    if connection.vendor != "postgresql":
        return []
    try:
        with connection.cursor() as cursor:
            cursor.execute(HOLDERS, [TABLE])
            return [blocker(row) for row in cursor.fetchall()]
    except DatabaseError:
        return []


def patiently(
    connection: BaseDatabaseWrapper, read: Callable[[], T], *, lock_wait: float, timeout: float
) -> T:
    """``read`` under ``bounded(lock_wait)``, tried again with jittered backoff while the table
    stays locked, or the server refuses the connection for now (no slot, starting up), for
    ``timeout`` seconds in all; then LockTimeout (75) naming the holder or the refusal.

    Each attempt waits for the lock at most ``lock_wait`` (0: as long as ``timeout`` allows;
    the last attempt may end that much past it), and never queues for long behind the holder,
    where it would hold up every later query on the table too.
    """
    deadline = time.monotonic() + timeout

    def attempt() -> T:
        wait = lock_wait if lock_wait > 0 else max(deadline - time.monotonic(), 0.001)
        with bounded(connection, wait):
            return read()

    def give_up(found: Refusal) -> LockTimeout:
        if "held_by" not in found:
            return refused_for(connection.alias, timeout, found)
        return LockTimeout(
            f"{TABLE} of database {connection.alias!r} stayed locked for {timeout:g}s "
            f"(ENTRYPOINT_MIGRATE_LOCK_TIMEOUT), held by {found['held_by']}: let that session "
            "finish, or end it"
        )

    return db_patiently(
        attempt, deadline=deadline, give_up=give_up, refusal=_refusal, alias=connection.alias
    )


def refused_for(alias: str, timeout: float, found: Refusal) -> LockTimeout:
    """The migrate step's 75 for a server that refused its connection for ``timeout`` s."""
    return LockTimeout(
        f"database {alias!r} refused the migrate step's connection for {timeout:g}s "
        f"(ENTRYPOINT_MIGRATE_LOCK_TIMEOUT): {found['detail']}; see docs/steps.md#connection-slots"
    )


def _refusal(exc: BaseException) -> Refusal | None:
    """A locked table, or a server refusing the connection for now: both pass by themselves."""
    if isinstance(exc, RecordsLocked):
        return {
            "event": "migrations_table_locked",
            "table": TABLE,
            "blockers": exc.blockers,
            "held_by": exc.who(),
        }
    return refused(exc)
