"""The cross-process migration lock: one replica migrates, the others wait and then re-plan.

``with migration_lock(connection, options) as lock:`` polls ``lock.try_acquire()`` with backoff
until the lock timeout, and always releases on the way out. The backends live in
``lock_pg``, ``lock_mysql`` and ``lock_file``; this module holds the waiting policy, shared
by all of them.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from entrypoint import log
from entrypoint.config import Settings
from entrypoint.errors import ConfigError, LockTimeout
from entrypoint.migrate.lock_file import FileLock
from entrypoint.migrate.lock_mysql import MySQLLock
from entrypoint.migrate.lock_pg import PostgresLock

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

REPORT_EVERY = 10.0
FIRST_DELAY = 0.1
# Waiters notice a released lock within half a second; a fleet polling twice a second costs
# the server next to nothing, and every replica's start waits on that notice.
MAX_DELAY = 0.5


@dataclass(frozen=True)
class LockOptions:
    """The migration lock, and how long the migrations wait for the app's table locks."""

    lock_id: int
    timeout: float
    mode: str = "auto"  # auto, session or none
    table_lock_timeout: float = 2.0  # 0: wait as long as it takes
    retry_timeout: float = 600.0

    @classmethod
    def from_settings(cls, settings: Settings, lock_id: int | None = None) -> LockOptions:
        return cls(
            lock_id=settings.migrate_lock_id if lock_id is None else lock_id,
            timeout=settings.migrate_lock_timeout,
            mode=settings.migrate_lock_mode,
            table_lock_timeout=settings.migrate_table_lock_timeout,
            retry_timeout=settings.migrate_retry_timeout,
        )


class Lock(Protocol):
    kind: str

    def try_acquire(self) -> bool:
        """One non-blocking attempt; True when this process now holds the lock."""

    def holder(self) -> dict[str, object]:
        """Who holds the lock, as log fields (empty when unknown)."""

    def is_held(self) -> bool:
        """Whether the lock is still ours: False once its connection was lost."""

    def release(self) -> None:
        """Free the lock and close its connection."""


class NoLock:
    """ENTRYPOINT_MIGRATE_LOCK_MODE=none, or a database only this process can see."""

    kind = "none"

    def try_acquire(self) -> bool:
        return True

    def holder(self) -> dict[str, object]:
        return {}

    def is_held(self) -> bool:
        return True

    def release(self) -> None:
        return None


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


def acquire(lock: Lock, *, alias: str, timeout: float) -> float:
    """Poll until the lock is ours; return the seconds waited. Raise LockTimeout."""
    logger = log.get().bind(alias=alias, lock=lock.kind)
    started = time.monotonic()
    deadline = started + timeout
    next_report = started
    delay = FIRST_DELAY
    attempt = _Attempts(lock, logger)
    while not attempt():
        now = time.monotonic()
        if now >= deadline:
            holder = _holder(lock)
            logger.warning(
                "migration_lock_not_acquired", waited_s=round(now - started, 2), **holder
            )
            raise LockTimeout(
                f"migration lock for database {alias!r} not acquired within {timeout:g}s; "
                f"held by {describe(holder)}: wait for that migration to finish, raise "
                "ENTRYPOINT_MIGRATE_LOCK_TIMEOUT, or end the holder if it is stuck"
            )
        if now >= next_report:
            next_report = now + REPORT_EVERY
            logger.info(
                "migration_lock_waiting", elapsed_s=round(now - started, 2), **_holder(lock)
            )
        # Jitter keeps many replicas from polling in lockstep.
        time.sleep(min(delay * random.uniform(0.5, 1.0), max(deadline - now, 0)))  # noqa: S311
        delay = min(delay * 1.5, MAX_DELAY)
    waited = round(time.monotonic() - started, 3)
    logger.info("migration_lock_acquired", waited_s=waited)
    return waited


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
            error = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:300]}"
            if error != self.last_error:  # once per kind of failure, not twice a second
                self.logger.warning("migration_lock_attempt_failed", error=error)
            self.last_error = error
            return False


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
def migration_lock(connection: BaseDatabaseWrapper, options: LockOptions) -> Iterator[Lock]:
    """Hold the migration lock of this database for the duration of the block."""
    lock = make_lock(connection, options)
    acquired_at: float | None = None
    try:
        acquire(lock, alias=connection.alias, timeout=options.timeout)
        acquired_at = time.monotonic()
        yield lock
    finally:
        release(lock, alias=connection.alias, acquired_at=acquired_at)
