"""Wait for the services of ENTRYPOINT_WAIT_SERVICES under the wait step's deadline.

The services are checked in rounds, between the database's checks while it is being waited for
and on their own afterwards, so a stable period runs for all of them at once instead of one
after the other. When a service is ready is the database's rule (``steady``): the stable period
for one seen down during this wait, a confirming second check for one up from the start.
"""

from __future__ import annotations

import errno
import http.client
import socket
import time
from collections.abc import Sequence
from functools import partial

from entrypoint import log
from entrypoint.bounded import TimedOut, bounded
from entrypoint.errors import ServiceUnavailable
from entrypoint.wait.probe import MAX_CONNECT_TIMEOUT
from entrypoint.wait.protocols import check
from entrypoint.wait.services import NotReady, Service
from entrypoint.wait.steady import Steadiness

PROGRESS_EVERY = 10.0
UNREACHABLE = {errno.EHOSTUNREACH, errno.ENETUNREACH}


def classify(exc: BaseException) -> str:
    """Name the reason of a failed check from the exception's type."""
    import ssl  # noqa: PLC0415 - imported by the check already when TLS was used

    reason = "other"
    if isinstance(exc, NotReady):
        reason = exc.reason
    elif isinstance(exc, (TimedOut, TimeoutError)):
        reason = "timed_out"
    elif isinstance(exc, ssl.SSLError):
        reason = "tls_error"
    elif isinstance(exc, ConnectionRefusedError):
        reason = "connection_refused"
    elif isinstance(exc, socket.gaierror):
        reason = "name_not_resolved"
    elif isinstance(exc, (ConnectionError, EOFError)):
        reason = "connection_closed"
    elif isinstance(exc, OSError) and exc.errno in UNREACHABLE:
        reason = "host_unreachable"
    elif isinstance(exc, http.client.HTTPException):
        reason = "unexpected_reply"
    return reason


class _State:
    def __init__(self, service: Service, stable: float) -> None:
        self.service = service
        self.steady = Steadiness(stable)
        self.attempts = 0
        self.reason: str | None = None
        self.ready = False
        self.log = log.get().bind(service=service.name)


class ServiceWait:
    """The services not ready yet, checked one round at a time until a shared deadline."""

    def __init__(
        self, services: Sequence[Service], *, deadline: float, timeout: float, stable: float
    ) -> None:
        self.states = [_State(s, stable) for s in services]
        self.deadline = deadline
        self.timeout = timeout
        self.started = time.monotonic()
        self.last_progress = self.started

    def pending(self) -> list[_State]:
        return [s for s in self.states if not s.ready]

    def round(self) -> None:
        """Check each service not ready yet, once (twice when the second check confirms it)."""
        for state in self.pending():
            while self._check(state) and state.steady.confirming:
                pass  # up before we came: one more check at once confirms it
        self._progress()

    def _check(self, state: _State) -> bool:
        """One check of one service, within the deadline; True when it answered."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            return False
        state.attempts += 1
        socket_timeout = min(MAX_CONNECT_TIMEOUT, max(left, 0.1))
        try:
            bounded(partial(check, state.service, socket_timeout), left, "wait-service")
        except Exception as exc:  # noqa: BLE001 - every failure is a reason to retry
            self._failed(state, exc)
            return False
        self._answered(state)
        return True

    def _failed(self, state: _State, exc: Exception) -> None:
        lasted = state.steady.failed()
        if lasted is not None:
            state.log.warning("service_stability_reset", after_s=round(lasted, 2))
        if isinstance(exc, TimedOut) and time.monotonic() >= self.deadline and state.reason:
            return  # cut short by our own deadline: the previous reason is the real one
        reason = classify(exc)
        if reason != state.reason:
            state.log.warning(
                "service_check_failed",
                reason=reason,
                attempt=state.attempts,
                error_type=type(exc).__name__,
                detail=str(exc).strip()[:300],
            )
        state.reason = reason

    def _answered(self, state: _State) -> None:
        if state.steady.answered():
            state.ready = True
            elapsed = round(time.monotonic() - self.started, 2)
            state.log.info(
                "service_ready",
                attempts=state.attempts,
                elapsed_s=elapsed,
                stable_s=state.steady.period,
            )

    def _progress(self) -> None:
        now = time.monotonic()
        if self.pending() and now - self.last_progress >= PROGRESS_EVERY:
            self.last_progress = now
            log.get().info(
                "services_waiting",
                elapsed_s=round(now - self.started, 2),
                pending={s.service.name: s.reason for s in self.pending()},
            )

    def until_ready(self, interval: float) -> None:
        """Check in rounds until every service is ready; ServiceUnavailable at the deadline."""
        while True:
            self.round()
            if not self.pending():
                return
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise ServiceUnavailable(self._not_ready())
            time.sleep(min(interval, left))

    def _not_ready(self) -> str:
        names = ", ".join(
            f"{s.service.name} ({s.reason or 'answering, not yet for the stable period'})"
            for s in self.pending()
        )
        return (
            f"not ready within {round(self.timeout, 2):g}s: {names}; check that each runs and "
            "is reachable from here, or raise ENTRYPOINT_WAIT_TIMEOUT"
        )
