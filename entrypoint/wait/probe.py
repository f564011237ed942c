"""One bounded check of a database: does it answer, and if not, why not.

The check runs in a daemon worker thread on a brand-new connection; the caller waits for it
only up to its budget, so a driver call that ignores its own timeout cannot hold us.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from entrypoint.connection import fresh_connection

MAX_CONNECT_TIMEOUT = 10
T = TypeVar("T")

# Substrings of libpq / MySQL / SQLite messages, checked in order; first match wins.
REASONS = {
    # 'role "x" does not exist' is a login problem: it must win over database_does_not_exist.
    "authentication_failed": (
        "authentication failed",
        "access denied",
        "no password supplied",
        'role "',
    ),
    "database_does_not_exist": ("does not exist", "unknown database"),
    "server_starting_up": (
        "starting up",
        "shutting down",
        "in recovery mode",
        "not yet accepting connections",
    ),
    "name_not_resolved": (
        "could not translate host name",
        "name or service not known",
        "name resolution",
        "nodename nor servname",
        "unknown mysql server host",
    ),
    "connection_refused": ("connection refused", "errno 111", "no such file or directory"),
    "timed_out": ("timeout expired", "timed out"),
}


class CheckTimedOut(Exception):
    """The worker thread did not finish within its budget."""


def classify(exc: BaseException) -> str:
    """Name the reason of a failed check from the whole exception chain."""
    if isinstance(exc, CheckTimedOut):
        return "timed_out"
    text = ""
    current: BaseException | None = exc
    while current is not None:
        text += f" {current}".lower()
        current = current.__cause__ or current.__context__
    for reason, needles in REASONS.items():
        if any(n in text for n in needles):
            return reason
    return "other"


def bounded(fn: Callable[[], T], budget: float, name: str) -> T:
    """Run fn in a daemon thread and wait at most ``budget`` seconds for its result."""
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
        raise CheckTimedOut(f"no answer within {budget:.1f}s")
    if failure:
        raise failure[0]
    return outcome[0]


def select_one(alias: str, connect_timeout: int) -> None:
    """Open a NEW connection (never a possibly broken shared one), run SELECT 1, close it."""
    conn = fresh_connection(alias, connect_timeout)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1 FROM DUAL" if conn.vendor == "oracle" else "SELECT 1")
            cursor.fetchone()
    finally:
        conn.close()
