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

    def give_back(self) -> None:
        """Free a lock just taken, waking nobody, and close its connection: the holder's other
        sessions could not be opened, and it holds nothing while it backs off."""

    def pause(self, seconds: float) -> None:
        """Wait between attempts: ``seconds``, or less when the holder's release wakes us."""

    def recorded(self) -> set[tuple[str, str]] | None:
        """What django_migrations holds, read on the lock's own session, the only one a waiter
        keeps open; None when the lock has no session of its own (ask Django's connection)."""


class Polled:
    """For the backends whose waiters cannot be woken: they sleep between attempts."""

    wake = "poll"

    def pause(self, seconds: float) -> None:
        time.sleep(seconds)

    def release(self) -> None:
        """Free the lock; see ``Lock``."""

    def give_back(self) -> None:
        self.release()  # nobody is woken anyway: the waiters poll

    def recorded(self) -> set[tuple[str, str]] | None:
        return None


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
