"""wait4db: wait until a database answers steadily, with an absolute deadline.

Each check is a bounded probe (see probe.py): the main thread waits for it only up to the
time left, so a server that accepts TCP and never answers cannot push us past the deadline,
and SIGTERM is handled at once while a check is under way.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import TypeVar

from entrypoint import log
from entrypoint.bounded import TimedOut, bounded
from entrypoint.errors import DatabaseUnavailable, EntrypointError
from entrypoint.wait.config import WaitSettings
from entrypoint.wait.probe import MAX_CONNECT_TIMEOUT, advice, classify, select_one
from entrypoint.wait.service_wait import ServiceWait
from entrypoint.wait.steady import Steadiness

PROGRESS_EVERY = 10.0
T = TypeVar("T")
# How many migrations an alias still waits for: given by the caller (the migrate step's
# planning), so that waiting needs nothing from the steps after it.
Pending = Callable[[str], int]


class _Waiter:
    """The state of one wait: attempts, the last reason, the deadline."""

    def __init__(
        self, alias: str, deadline: float, timeout: float, meanwhile: Callable[[], None]
    ) -> None:
        self.alias = alias
        self.meanwhile = meanwhile
        self.started = time.monotonic()
        self.deadline = deadline
        self.timeout = timeout  # the configured one, which the messages name
        self.attempts = 0
        self.reason: str | None = None
        self.last_progress = self.started
        self.log = log.get().bind(alias=alias)

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def elapsed(self) -> float:
        return round(time.monotonic() - self.started, 2)

    def attempt(self, fn: Callable[[], T]) -> T:
        self.attempts += 1
        return bounded(fn, self.left(), f"wait4db-{self.alias}")

    def failed(self, reason: str, exc: BaseException) -> None:
        if isinstance(exc, TimedOut) and self.left() <= 0 and self.reason:
            return  # cut short by our own deadline: the previous reason is the real one
        if reason != self.reason:
            self.log.warning(
                "db_check_failed",
                reason=reason,
                attempt=self.attempts,
                error_type=type(exc).__name__,
                detail=str(exc).strip()[:300],
                hint=advice(reason, self.alias),
            )
        self.reason = reason

    def progress(self, **fields: object) -> None:
        now = time.monotonic()
        if now - self.last_progress >= PROGRESS_EVERY:
            self.last_progress = now
            self.log.info(
                "db_waiting",
                elapsed_s=self.elapsed(),
                attempts=self.attempts,
                reason=self.reason,
                **fields,
            )

    def pause(self, interval: float) -> None:
        paused = time.monotonic()
        self.meanwhile()  # the other services' checks, part of this interval
        interval -= time.monotonic() - paused
        left = self.left()
        if left <= 0:
            raise DatabaseUnavailable(
                f"database {self.alias!r} was not ready within {round(self.timeout, 2):g}s "
                f"(last reason: {self.reason or 'unknown'}): {advice(self.reason, self.alias)}"
            )
        time.sleep(max(min(interval, left), 0))


def wait_for_database(  # noqa: PLR0913 - the wait4db options, all keyword-only
    alias: str,
    *,
    deadline: float,
    timeout: float,
    stable: float,
    interval: float,
    pending: Pending | None = None,
    meanwhile: Callable[[], None] = lambda: None,
    writes: bool = False,
) -> None:
    """Until ``deadline`` (``timeout``: the configured wait, shared with the other aliases and
    the services); ``writes``: a later step writes, so a server that takes none (a standby) is
    not ready."""
    waiter = _Waiter(alias, deadline, timeout, meanwhile)
    steady = Steadiness(stable)
    while True:
        connect_timeout = max(1, min(MAX_CONNECT_TIMEOUT, math.ceil(waiter.left())))
        try:
            waiter.attempt(partial(select_one, alias, connect_timeout, writes=writes))
        except Exception as exc:  # noqa: BLE001 - every driver error is a reason to retry
            lasted = steady.failed()
            if lasted is not None:
                waiter.log.warning("db_stability_reset", after_s=round(lasted, 2))
            waiter.failed(classify(exc), exc)
        else:
            ready = steady.answered()
            if steady.answers == 1:
                waiter.log.info("db_answering", attempt=waiter.attempts, elapsed_s=waiter.elapsed())
            if ready:
                break
            if steady.confirming:
                continue  # up before we came: one more check at once confirms it
        waiter.progress()
        waiter.pause(interval)
    waiter.log.info(
        "db_ready", attempts=waiter.attempts, elapsed_s=waiter.elapsed(), stable_s=steady.period
    )
    if pending is not None:
        _wait_until_migrated(waiter, interval, pending)


def _wait_until_migrated(waiter: _Waiter, interval: float, count: Pending) -> None:
    last: int | None = None
    while True:
        try:
            pending = waiter.attempt(partial(count, waiter.alias))
        except EntrypointError:
            raise
        except Exception as exc:  # noqa: BLE001 - the database may restart meanwhile
            waiter.failed(classify(exc), exc)
        else:
            if pending == 0:
                waiter.log.info("db_migrated", elapsed_s=waiter.elapsed())
                return
            waiter.reason = "migrations_pending"
            if pending != last:
                waiter.log.info("migrations_pending", count=pending)
            last = pending
        waiter.progress(pending=last)
        waiter.pause(interval)


def run(
    settings: WaitSettings,
    aliases: Sequence[str],
    *,
    pending: Pending | None = None,
    writes: bool = False,
) -> None:
    """The wait step: every alias and every service within one shared deadline; ``writes``:
    a later step writes (migrate, admin), so each alias must take writes too."""
    deadline = time.monotonic() + settings.timeout
    services = ServiceWait(
        settings.services,
        deadline=deadline,
        timeout=settings.timeout,
        stable=settings.stable,
    )
    for alias in aliases:
        wait_for_database(
            alias,
            deadline=deadline,
            timeout=settings.timeout,
            stable=settings.stable,
            interval=settings.interval,
            pending=pending,
            meanwhile=services.round,
            writes=writes,
        )
    services.until_ready(settings.interval)
