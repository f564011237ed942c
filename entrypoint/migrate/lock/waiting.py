"""The waiting policy, shared by every backend: one replica migrates, the others wait.

``with migration_lock(connection, options, done=...) as lock:`` picks the backend for the
database (``postgres``, ``mysql``, ``file``), polls ``lock.try_acquire()`` with jittered backoff
until the lock timeout, and always releases on the way out. While the lock is busy, ``done``
re-checks whether the work is done, and then ends the wait without the lock. On PostgreSQL
the holder's release wakes the waiters (``wakeup``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from entrypoint import log
from entrypoint.errors import ConfigError, LockTimeout
from entrypoint.migrate.lock.file import FileLock
from entrypoint.migrate.lock.mysql import MySQLLock
from entrypoint.migrate.lock.options import Lock, LockOptions, NoLock
from entrypoint.migrate.lock.postgres import PostgresLock
from entrypoint.patience import refused, server_words

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

REPORT_EVERY = 10.0
FIRST_DELAY = 0.1
# Polling waiters (behind a pooler, on MySQL or SQLite) notice a released lock within half a
# second: every replica's start waits on that notice.
MAX_DELAY = 0.5
# A waiter that the holder's release wakes (``wakeup``) polls only for a holder that died without
# waking anyone (kill -9, a lost session): every 1 to 2 s, since each poll of a fleet of waiters
# takes CPU from the holder's migrations.
NOTIFIED_DELAY = 2.0


def make_lock(connection: BaseDatabaseWrapper, options: LockOptions) -> Lock:
    logger = log.get().bind(alias=connection.alias)
    if options.mode == "none":
        logger.warning(
            "migration_lock_disabled",
            reason="ENTRYPOINT_MIGRATE_LOCK_MODE=none",
            risk="replicas starting together may apply the same migration twice",
        )
        return NoLock()
    if connection.vendor == "postgresql":
        return PostgresLock(connection, options.lock_id, xact=options.mode == "auto")
    if connection.vendor == "mysql":
        return MySQLLock(connection, options.lock_id)
    if connection.vendor == "sqlite":
        name = str(connection.settings_dict["NAME"])
        if name in ("", ":memory:") or "mode=memory" in name:
            logger.info("migration_lock_skipped", reason="in_memory_database")
            return NoLock()
        return FileLock(name + ".migrate-lock")
    raise ConfigError(
        f"database {connection.alias!r} uses {connection.vendor!r}, for which there is no "
        "migration lock: set ENTRYPOINT_MIGRATE_LOCK_MODE=none to migrate without one (only "
        "safe when a single process migrates, e.g. a Job)"
    )


def describe(holder: dict[str, object]) -> str:
    if not holder:
        return "an unknown holder (it may have just released it)"
    return ", ".join(f"{k.removeprefix('holder_')}={v}" for k, v in holder.items())


def _holder(lock: Lock) -> dict[str, object]:
    try:
        return lock.holder()
    except Exception as exc:  # noqa: BLE001 - who holds it is a detail; the wait goes on
        return {"holder_unknown": type(exc).__name__}


def acquire(  # noqa: PLR0913 - the waiting policy's parts, keyword-only
    lock: Lock,
    *,
    alias: str,
    timeout: float,
    done: Callable[[Lock], bool] | None = None,
    prepare: Callable[[Lock], None] | None = None,
    idle: Callable[[], None] | None = None,
) -> bool:
    """Poll until the lock is ours (True), or until ``done`` finds nothing left to do (False).

    ``done`` re-checks, without the lock, whether the work this waiter came for is recorded
    as done by the holder (on the lock's own session): each migration's record commits before
    the lock is released, so a yes is final and the waiter need not queue for the lock only to
    find that out under it. ``idle`` first closes what a waiter does not need (Django's
    connection): a waiter holds one session. ``prepare`` opens what the holder needs, once the
    lock is taken and before any work; a server with no slot for them is not yet: the lock is
    given back (lock/sessions.py). Raise LockTimeout at the deadline.
    """
    logger = log.get().bind(alias=alias, lock=lock.kind)
    started = time.monotonic()
    deadline = started + timeout
    next_report = started
    delay = FIRST_DELAY
    attempt = _Attempts(lock, logger)
    if idle is not None:
        idle()
    while True:
        if done is not None and done(lock):
            waited = round(time.monotonic() - started, 3)
            logger.info("migration_lock_wait_ended", waited_s=waited, reason="nothing_pending")
            return False
        if attempt() and (prepare is None or attempt.prepared(prepare)):
            break
        now = time.monotonic()
        if now >= deadline:
            holder = _holder(lock)
            logger.warning(
                "migration_lock_not_acquired", waited_s=round(now - started, 2), **holder
            )
            last = f"; last refusal: {attempt.last_error}" if attempt.last_error else ""
            raise LockTimeout(
                f"migration lock for database {alias!r} not acquired within {timeout:g}s; "
                f"held by {describe(holder)}{last}: wait for that migration to finish, raise "
                "ENTRYPOINT_MIGRATE_LOCK_TIMEOUT, or end the holder if it is stuck"
            )
        if now >= next_report:
            next_report = now + REPORT_EVERY
            logger.info(
                "migration_lock_waiting",
                elapsed_s=round(now - started, 2),
                wake=lock.wake,
                **_holder(lock),
            )
        # Jitter keeps many replicas from polling in lockstep; a release cuts the pause short.
        pause = NOTIFIED_DELAY if lock.wake == "notify" else delay
        lock.pause(min(pause * random.uniform(0.5, 1.0), max(deadline - now, 0)))  # noqa: S311
        delay = min(delay * 1.5, MAX_DELAY)
    logger.info("migration_lock_acquired", waited_s=round(time.monotonic() - started, 3))
    return True


class _Attempts:
    """Tries the lock; a failed try (connection cut while we wait) is retried, not fatal."""

    def __init__(self, lock: Lock, logger: log.Logger) -> None:
        self.lock = lock
        self.logger = logger
        self.last_error = ""

    def __call__(self) -> bool:
        try:
            return self.lock.try_acquire()
        except Exception as exc:  # noqa: BLE001 - the deadline, not one error, ends the wait
            self._failed("migration_lock_attempt_failed", exc)
            return False

    def prepared(self, prepare: Callable[[Lock], None]) -> bool:
        """The holder's sessions opened (True); or, the server refusing one for now, the lock
        given back and every session closed (False): not yet."""
        try:
            prepare(self.lock)
        except Exception as exc:
            if refused(exc) is None:
                raise  # the lock is released on the way out
            self.lock.give_back()
            self._failed("migration_lock_given_back", exc)
            return False
        self.last_error = ""
        return True

    def _failed(self, event: str, exc: Exception) -> None:
        error = f"{type(exc).__name__}: {server_words(exc)}"
        if error != self.last_error:  # once per kind of failure, not twice a second
            self.logger.warning(event, error=error)
        self.last_error = error


def release(lock: Lock, *, alias: str, acquired_at: float | None) -> None:
    """Best effort: a failure here is logged, never raised over the error that brought us here."""
    try:
        lock.release()
    except Exception as exc:  # noqa: BLE001 - the server frees the lock when the connection ends
        log.get().warning(
            "migration_lock_release_failed",
            alias=alias,
            error_type=type(exc).__name__,
            error=str(exc)[:300],
        )
    else:
        if acquired_at is not None:
            held = round(time.monotonic() - acquired_at, 3)
            log.get().info("migration_lock_released", alias=alias, held_s=held)


@contextmanager
def migration_lock(
    connection: BaseDatabaseWrapper,
    options: LockOptions,
    *,
    done: Callable[[Lock], bool] | None,
    prepare: Callable[[Lock], None] | None = None,
) -> Iterator[Lock | None]:
    """Hold the migration lock of this database for the block; None instead when ``done``
    found the work done while we waited (without ``done``, only the lock ends the wait).
    ``done`` and ``prepare`` as ``acquire`` takes them (a waiter keeps the lock's session
    only: Django's connection is closed while it waits)."""
    lock = make_lock(connection, options)
    acquired_at: float | None = None
    try:
        if acquire(
            lock,
            alias=connection.alias,
            timeout=options.timeout,
            done=done,
            prepare=prepare,
            idle=connection.close if prepare is not None else None,
        ):
            acquired_at = time.monotonic()
            yield lock
        else:
            yield None
    finally:
        release(lock, alias=connection.alias, acquired_at=acquired_at)
