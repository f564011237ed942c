"""The keepalive: the lock's session (and the fence's) pinged every few seconds while held.

So that poolers and idle killers never take the lock's session for idle, and a lost lock is
noticed within seconds while its server still answers; the guard decides what then happens.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

# Well under the idle timeouts met in practice (PgBouncer's idle_transaction_timeout, idle
# killers), and the longest a lost lock goes unnoticed while its server still answers.
KEEPALIVE_EVERY = 2.0


class Keepalive:
    """A daemon thread that runs ``pings`` every KEEPALIVE_EVERY seconds until stopped.

    The first failure is handed to ``on_lost`` (once), and the pinging ends.
    """

    def __init__(
        self, pings: Sequence[Callable[[], object]], on_lost: Callable[[Exception], None]
    ) -> None:
        self.pings = pings
        self.on_lost = on_lost
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="lock-keepalive", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(KEEPALIVE_EVERY)

    def _beat(self) -> None:
        while not self._stopped.wait(KEEPALIVE_EVERY):
            error = _failure(self.pings)
            if error is not None:
                if not self._stopped.is_set():
                    self.on_lost(error)
                return


def _failure(calls: Sequence[Callable[[], object]]) -> Exception | None:
    try:
        for call in calls:
            call()
    except Exception as exc:  # noqa: BLE001 - any failure means the lock may be gone
        return exc
    return None
