"""The fence: no migration work of a replica that lost the lock can overlap a new holder's.

The lock alone cannot promise that: its connection can be cut (a pooler's timeout, an
idle-session killer, pg_terminate_backend) while its holder is inside a migration whose
transaction the server keeps running. So the migration work itself holds a second advisory
key, the fence, on the server: an atomic migration in its own transaction, a non-atomic one on
a connection of its own for as long as it runs. Under the fence, before any work, the holder
checks that the lock is still held by its lock connection. A new holder passes the fence once
(the barrier) before it plans: it waits until work in flight has committed or rolled back, then
sees it in django_migrations. Every fence wait polls a try-lock in short statements, so no
waiter keeps a snapshot that a CREATE INDEX CONCURRENTLY would wait for.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from django.db import transaction

from entrypoint import log
from entrypoint.connection import open_session
from entrypoint.errors import LockLost, LockTimeout
from entrypoint.migrate.lock.postgres import PostgresLock
from entrypoint.migrate.lock.state import FENCE, LOCK, PG_HOLDERS, pg_holders

if TYPE_CHECKING:
    import psycopg
    from django.db.backends.base.base import BaseDatabaseWrapper

Query = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]  # one statement's rows
POLL_MAX = 0.5
REPORT_EVERY = 10.0
# The fence is the lock key's two halves as an (int4, int4) key: objsubid 2 in pg_locks.
TRY_FENCE = "SELECT pg_try_advisory_xact_lock((%s)::int, (%s)::int)"


def _signed32(value: int) -> int:
    return value - 2**32 if value >= 2**31 else value


def wait_to_pass(  # noqa: PLR0913 - the barrier's parts, keyword-only
    pass_once: Callable[[], bool],
    holder: Callable[[], str],
    *,
    alias: str,
    timeout: float,
    end_hint: str,
    grace: float = math.inf,
    at_grace: Callable[[log.Logger], None] | None = None,
) -> None:
    """Poll ``pass_once`` until it passes the fence (a new holder's barrier), reporting the
    fence's ``holder`` every REPORT_EVERY seconds; ``at_grace`` once after ``grace`` seconds;
    LockTimeout after ``timeout``, saying how to end that session (``end_hint``)."""
    logger = log.get().bind(alias=alias)
    started = time.monotonic()
    next_report = started
    delay = 0.05
    while not pass_once():
        now = time.monotonic()
        if at_grace is not None and now - started >= grace:
            at_grace(logger)
            at_grace = None
        if now - started >= timeout:
            raise LockTimeout(
                f"the migration lock of database {alias!r} is ours, but another replica's "
                f"migration is still running on the server ({holder()}) after {timeout:g}s: "
                f"end that session ({end_hint}) or raise ENTRYPOINT_MIGRATE_LOCK_TIMEOUT"
            )
        if now >= next_report:
            next_report = now + REPORT_EVERY
            logger.warning(
                "migration_fence_waiting", elapsed_s=round(now - started, 2), holder=holder()
            )
        time.sleep(delay * random.uniform(0.5, 1.0))  # noqa: S311 - jitter, not security
        delay = min(delay * 2, POLL_MAX)
    logger.debug("migration_fence_passed", waited_s=round(time.monotonic() - started, 3))


def django_query(connection: BaseDatabaseWrapper) -> Query:
    def query(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall())

    return query


def _passed(query: Query, key: Sequence[int]) -> bool:
    """One try of the fence (``TRY_FENCE``) in the query's transaction."""
    return bool(query(TRY_FENCE, key)[0][0])


class Fence:
    """The fence of one PostgreSQL lock; ``lock`` must be held when ``hold_*`` is called."""

    def __init__(
        self,
        lock: PostgresLock,
        connection: BaseDatabaseWrapper,
        aside: psycopg.Connection[Any] | None = None,
    ) -> None:
        self.lock = lock
        self.connection = connection
        self.key = tuple(_signed32(half) for half in lock.ids)
        # For non-atomic migrations: opened by the holder before any work (lock/sessions.py),
        # else here when first needed.
        self.aside = aside
        self.holding_aside = False

    def barrier(self, timeout: float) -> None:
        """Wait, on the migrating connection, until no other replica's work is in flight."""
        wait_to_pass(
            self._pass_once,
            self._holder,
            alias=self.connection.alias,
            timeout=timeout,
            end_hint="pg_terminate_backend",
        )

    def _pass_once(self) -> bool:
        with transaction.atomic(using=self.connection.alias):
            return _passed(django_query(self.connection), self.key)

    def _holder(self) -> str:
        try:
            rows = django_query(self.connection)(PG_HOLDERS, self.lock.ids)
        except Exception:  # noqa: BLE001 - who holds it is a detail of the message
            return "holder unknown"
        holders = pg_holders(rows, FENCE)
        if not holders:
            return "holder just finished"
        found = holders[0]
        return (
            f"pid={found.pid}, application_name={found.application_name!r}, "
            f"state={found.state}, since={found.since}"
        )

    def hold_in_transaction(self, lost: Callable[[], bool], what: str) -> None:
        """Take the fence in the migration's own transaction, then check the lock is still ours."""
        self._take(django_query(self.connection), lost, what)

    def hold_aside(self, lost: Callable[[], bool], what: str) -> None:
        """For a non-atomic migration: the fence on a connection of its own, until ``release``."""
        if self.aside is None or self.aside.closed or self.aside.broken:
            self.aside = open_session(self.connection, "fence")
        self.aside.autocommit = False
        # Idle in transaction while the migration runs: exempt it, for this transaction only.
        self.aside.execute("SELECT set_config('idle_in_transaction_session_timeout', '0', true)")

        def query(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
            assert self.aside is not None
            return self.aside.execute(sql, params).fetchall()

        try:
            self._take(query, lost, what)
        except BaseException:
            self.release_aside()
            raise
        self.holding_aside = True

    def _take(self, query: Query, lost: Callable[[], bool], what: str) -> None:
        delay = 0.01
        # Only a replica that lost the lock without knowing yet can hold the fence now; it
        # lets go as soon as it checks the lock, or our keepalive tells us we are that replica.
        while not _passed(query, self.key):
            if lost():
                raise LockLost(f"the migration lock was lost before {what} could start; run again")
            time.sleep(delay)
            delay = min(delay * 2, POLL_MAX)
        if not self._lock_held(query):
            raise LockLost(
                "the migration lock is no longer held by this process (its connection was "
                f"lost; another replica may hold it now): stopped before {what} could start, "
                "nothing of it ran; run again"
            )

    def _lock_held(self, query: Query) -> bool:
        """Whether the lock is held by our lock connection's server process."""
        holders = pg_holders(query(PG_HOLDERS, self.lock.ids), LOCK)
        return any(h.pid == self.lock.backend_pid for h in holders)

    def lock_still_held(self) -> bool:
        """Asked in a migration's transaction, under the fence, just before it commits."""
        return self._lock_held(django_query(self.connection))

    def ping(self) -> None:
        if self.holding_aside and self.aside is not None:
            self.aside.execute("SHOW application_name")

    def release_aside(self) -> None:
        """End the fence's transaction after a non-atomic migration (it frees the fence)."""
        self.holding_aside = False
        if self.aside is not None and not self.aside.closed:
            try:
                self.aside.rollback()
            except Exception:  # noqa: BLE001 - a dead connection has freed the fence already
                self.close()

    def close(self) -> None:
        if self.aside is not None:
            self.aside.close()
            self.aside = None
