"""The keepalive: the lock's session (and the fence's) pinged every few seconds while held.

So that poolers and idle killers never take the lock's session for idle, and a lost lock is
noticed within seconds while its server still answers, and within the network timeout when
the network goes silent: a ping unanswered by then counts as a lost lock (the kernel's TCP
user timeout would tell too, but only at its next retransmission, seconds later). The guard
decides what then happens.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from entrypoint.bounded import TimedOut, bounded

# Well under the idle timeouts met in practice (PgBouncer's idle_transaction_timeout, idle
# killers), and the longest a lost lock goes unnoticed while its server still answers.
KEEPALIVE_EVERY = 2.0


class Keepalive:
    """A daemon thread that runs ``pings`` every ``every`` seconds until stopped.

    The first failure is handed to ``on_lost`` (once), and the pinging ends.
    """

    def __init__(
        self,
        pings: Sequence[Callable[[], object]],
        on_lost: Callable[[Exception], None],
        *,
        answer_within: float,
        every: float = KEEPALIVE_EVERY,
    ) -> None:
        self.pings = pings
        self.on_lost = on_lost
        self.answer_within = answer_within
        self.every = every
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="lock-keepalive", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(self.every)

    def _beat(self) -> None:
        while not self._stopped.wait(self.every):
            error = _failure(self.pings, self.answer_within)
            if error is not None:
                if not self._stopped.is_set():
                    self.on_lost(error)
                return


def _failure(calls: Sequence[Callable[[], object]], within: float) -> Exception | None:
    """The first ping's failure, or a timeout if they do not all answer ``within`` seconds.

    The pings run in a daemon thread of their own (``bounded``): one blocked on a dead network
    is left there (the guard then shuts its socket) rather than holding the keepalive.
    """

    def ping_all() -> None:
        for call in calls:
            call()

    try:
        bounded(ping_all, within, "lock-ping")
    except TimedOut:
        return TimeoutError(f"the lock's server did not answer a ping within {within:g}s")
    except Exception as exc:  # noqa: BLE001 - any failure means the lock may be gone
        return exc
    return None
