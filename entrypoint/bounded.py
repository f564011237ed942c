"""Run a call in a daemon thread and give up on it at a deadline: the one way this package
waits for something that may never answer (a database check, a lock's ping, a cancel, a
``--status`` read).

The caller gets the call's result or its exception, or TimedOut once ``budget`` seconds have
passed; a call still blocked then (a dead network) is left to its daemon thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class TimedOut(Exception):
    """The call did not finish within its budget."""


def bounded(fn: Callable[[], T], budget: float, name: str) -> T:
    """``fn()`` in a daemon thread named ``name``, waited for at most ``budget`` seconds."""
    outcome: list[T] = []
    failure: list[BaseException] = []

    def work() -> None:
        try:
            outcome.append(fn())
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller below
            failure.append(exc)

    worker = threading.Thread(target=work, name=name, daemon=True)
    worker.start()
    worker.join(max(budget, 0.0))
    if worker.is_alive():
        raise TimedOut(f"no answer within {budget:.1f}s")
    if failure:
        raise failure[0]
    return outcome[0]
