"""Once the lock is lost, the step ends within seconds, whatever the migration's code is doing.

The keepalive thread runs ``Abandon.run`` when it finds the lock lost. Each stage runs only if
the step has not ended by then (the guard calls ``disarm`` on its way out):

1. the statement running on the migrating connection is cancelled: while the server answers,
   the migration rolls back at once and the step ends through its own error handling;
2. the sockets of our connections are shut from our side, so that a read blocked on a dead
   network returns at once (a cancel needs a new connection over that same dead path). Only a
   socket is shut: the connection objects stay with the thread that uses them;
3. the main thread is interrupted by a signal whose handler raises MigrationAbandoned, for
   code that sleeps or computes without touching the database;
4. should even that not end it (code that swallows everything), the process logs why and
   exits 70: a replica that lost its lock never hangs.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
from collections.abc import Callable, Iterable
from types import FrameType
from typing import Any

from entrypoint import log
from entrypoint.bounded import TimedOut, bounded
from entrypoint.errors import LockLost, MigrationAbandoned

STAGE_WAIT = 1.0  # seconds each stage leaves the step to end before the next
LAST_WAIT = 3.0  # after the interrupt: unwinding runs rollbacks and logs
INTERRUPT = signal.SIGUSR1  # ours only while the guard is armed; the old handler comes back


class Abandon:
    """The stages above; ``arm`` and ``disarm`` in the main thread, ``run`` in the keepalive's."""

    def __init__(
        self, sockets_of: Callable[[], Iterable[Any]], lost_error: Callable[[], LockLost]
    ) -> None:
        self.sockets_of = sockets_of  # the connections whose sockets stage 2 shuts
        self.lost_error = lost_error
        self.ended = threading.Event()
        self.shut = threading.Event()  # stage 2 ran: our sockets are shut
        self._main: int | None = None
        self._previous: Any = None
        self._interrupting = False

    def arm(self) -> None:
        """Install the interrupt's handler: only the main thread can, and only it is signalled."""
        if threading.current_thread() is threading.main_thread():
            self._main = threading.get_ident()
            self._previous = signal.signal(INTERRUPT, self._raise)

    def disarm(self) -> None:
        self.ended.set()
        if self._main is not None:
            # None: a handler not set from Python, which cannot be put back: the default then.
            signal.signal(INTERRUPT, signal.SIG_DFL if self._previous is None else self._previous)
            self._main = None

    def _raise(self, _signum: int, _frame: FrameType | None) -> None:
        if self._interrupting and not self.ended.is_set():
            self._interrupting = False  # once: the unwinding itself must not be interrupted
            raise MigrationAbandoned(self.lost_error())

    def run(self, cancel: Callable[[], None]) -> None:
        logger = log.get()
        failed = _bounded(cancel, STAGE_WAIT)
        if failed:  # the server is out of reach: nothing will end the step by itself
            logger.warning("migration_cancel_failed", error=failed)
        elif self.ended.wait(STAGE_WAIT):
            return
        shut = [_shut(conn) for conn in self.sockets_of()]
        self.shut.set()
        logger.warning("migration_connections_shut", count=sum(shut))
        if self.ended.wait(STAGE_WAIT) or self._main is None:
            return
        self._interrupting = True
        logger.warning("migration_interrupting", signal=INTERRUPT.name)
        signal.pthread_kill(self._main, INTERRUPT)
        if self.ended.wait(LAST_WAIT):
            return
        error = self.lost_error()
        logger.error(
            error.event, error=str(error), exit_code=error.exit_code, forced=True, **error.fields
        )
        log.flush()
        os._exit(error.exit_code)  # the migration's code would not stop: never hang instead


def _bounded(call: Callable[[], None], seconds: float) -> str | None:
    """Run ``call`` for at most ``seconds`` (``bounded``); what went wrong, if anything.

    libpq's cancel connects anew, over what may be the same dead path: it must not hold us.
    """
    try:
        bounded(call, seconds, "lock-cancel")
    except TimedOut as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - reported, then the next stage
        return f"{type(exc).__name__}: {str(exc).strip()[:200]}"
    return None


def _shut(conn: Any) -> bool:
    """Shut the socket under a psycopg connection; True if there was one to shut."""
    try:
        if conn is None or conn.closed:
            return False
        fd = conn.fileno()
    except Exception:  # noqa: BLE001 - closed meanwhile: nothing to shut
        return False
    # A duplicate descriptor: shutdown acts on the socket, close only on our duplicate.
    with socket.socket(fileno=os.dup(fd)) as sock:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            return False
    return True
