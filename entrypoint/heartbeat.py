"""``*_running`` events while one long piece of work runs, so that slow can be told from stuck.

A daemon thread logs the event every ``ENTRYPOINT_HEARTBEAT_INTERVAL`` seconds until the work
ends; the main thread stays free to run the work and to handle signals.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from entrypoint import log

_interval = 30.0


def configure(interval: float) -> None:
    """Set once from the settings; 0 turns heartbeats off."""
    global _interval  # noqa: PLW0603 - one setting for the process, like the log configuration
    _interval = interval


class Heartbeat:
    """Logs ``event`` with ``elapsed_s`` and ``fields`` every interval, from start to stop."""

    def __init__(self, event: str, **fields: object) -> None:
        self.event = event
        self.fields = fields
        self.interval = _interval
        self.started = time.monotonic()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Heartbeat:
        if self.interval > 0:
            # The thread logs with the step and other bound fields of the work it watches.
            context = contextvars.copy_context()
            self._thread = threading.Thread(
                target=context.run, args=(self._beat,), name=self.event, daemon=True
            )
            self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stopped.wait(self.interval):
            elapsed = round(time.monotonic() - self.started, 1)
            log.get().info(self.event, elapsed_s=elapsed, **self.fields)

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._thread = None


@contextmanager
def running(event: str, **fields: object) -> Iterator[Heartbeat]:
    """``with running("hook_running", hook=name):`` heartbeats for the duration of the block."""
    beat = Heartbeat(event, **fields).start()
    try:
        yield beat
    finally:
        beat.stop()
