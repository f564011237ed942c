"""What every lock backend offers (``Lock``), and the options the waiting policy follows."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from entrypoint.migrate.config import MigrateSettings


@dataclass(frozen=True)
class LockOptions:
    """The migration lock, and how long the migrations wait for the app's table locks."""

    lock_id: int
    timeout: float
    mode: str = "auto"  # auto, session or none
    table_lock_timeout: float = 2.0  # 0: wait as long as it takes
    retry_timeout: float = 600.0

    @classmethod
    def from_settings(cls, settings: MigrateSettings) -> LockOptions:
        return cls(
            lock_id=settings.lock_id,
            timeout=settings.lock_timeout,
            mode=settings.lock_mode,
            table_lock_timeout=settings.table_lock_timeout,
            retry_timeout=settings.retry_timeout,
        )


class Lock(Protocol):
    kind: str
    wake: str  # how a waiter learns of a release: "notify" (woken at once) or "poll"

    def try_acquire(self) -> bool:
        """One non-blocking attempt; True when this process now holds the lock."""

    def holder(self) -> dict[str, object]:
        """Who holds the lock, as log fields (empty when unknown)."""

    def is_held(self) -> bool:
        """Whether the lock is still ours: False once its connection was lost."""

    def release(self) -> None:
        """Free the lock and close its connection."""

    def pause(self, seconds: float) -> None:
        """Wait between attempts: ``seconds``, or less when the holder's release wakes us."""


class Polled:
    """For the backends whose waiters cannot be woken: they sleep between attempts."""

    wake = "poll"

    def pause(self, seconds: float) -> None:
        time.sleep(seconds)


class NoLock(Polled):
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
