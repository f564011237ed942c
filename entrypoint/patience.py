"""What a database server refuses for now, and how the steps wait it out.

A server with no connection slot free, or one starting up or shutting down, refuses a new
connection; both pass by themselves, so every connection the steps open treats them as *not
yet* (``refused``): asked again with jittered backoff (``patiently``) within the deadline of
the step that asks (the wait's, the lock's, ``--status``'s connect budget), each change of the
server's words logged once, and at that deadline the step's own error, never a crash.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from entrypoint import log

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

# What a server refuses for now, in its own words (libpq gives no SQLSTATE for a refused
# connection): no slot (53300 too_many_connections: "sorry, too many clients already",
# "remaining connection slots are reserved ...", 'too many connections for role "x"'; MySQL
# 1040 "Too many connections", 1203 "... max_user_connections") or not now (57P03
# cannot_connect_now: "the database system is starting up", "... shutting down", "... in
# recovery mode", "... not yet accepting connections"). Both pass by themselves: not yet.
NOT_YET = {
    "too_many_clients": (
        "too many clients",
        "connection slots are reserved",
        "too many connections",
        "max_user_connections",
    ),
    "server_starting_up": (
        "starting up",
        "shutting down",
        "in recovery mode",
        "not yet accepting connections",
    ),
}
FIRST_RETRY, MAX_RETRY = 0.1, 2.0  # seconds: the jittered backoff of a refusal for now
T = TypeVar("T")
Refusal = dict[str, Any]  # an event name ("event") and its fields


def chain_text(exc: BaseException) -> str:
    """Every message of ``exc``'s chain (Django wraps the driver's error), lower-cased."""
    text = ""
    current: BaseException | None = exc
    while current is not None:
        text += f" {current}".lower()
        current = current.__cause__ or current.__context__
    return text


def server_words(exc: BaseException) -> str:
    """What the server (or the driver) said, on one line, bounded."""
    return " ".join(str(exc).split())[:300]


class NotYet(Exception):
    """A refusal that lasted past its deadline; the server's words are its message."""

    def __init__(self, found: Refusal) -> None:
        super().__init__(found.get("detail", found["event"]))
        self.found = found


def connect_patiently(
    connection: BaseDatabaseWrapper, *, within: float, give_up: Callable[[Refusal], Exception]
) -> None:
    """Django's ``connection`` connected, a server refusing it for now (``refused``) asked
    again for ``within`` seconds; then ``give_up``'s error."""
    patiently(
        connection.ensure_connection,
        deadline=time.monotonic() + within,
        give_up=give_up,
        alias=connection.alias,
    )


def refused(exc: BaseException) -> Refusal | None:
    """``db_not_yet`` and its reason when ``exc`` is a refusal that passes by itself (NOT_YET)."""
    text = chain_text(exc)
    for reason, needles in NOT_YET.items():
        if any(needle in text for needle in needles):
            return {"event": "db_not_yet", "reason": reason, "detail": server_words(exc)}
    return None


def patiently(
    attempt: Callable[[], T],
    *,
    deadline: float,
    give_up: Callable[[Refusal], Exception],
    refusal: Callable[[BaseException], Refusal | None] = refused,
    **fields: object,
) -> T:
    """``attempt()``, tried again with jittered backoff for as long as what stops it passes by
    itself (``refusal``: a server out of slots or starting up, by default) and ``deadline``
    (``time.monotonic()``) allows; then ``give_up``'s error, from the last refusal. Each change
    of refusal is logged once, as a warning with its words and ``fields``; any other error is
    raised as it is."""
    logger = log.get().bind(**fields)
    delay, said = FIRST_RETRY, None
    while True:
        try:
            return attempt()
        except Exception as exc:
            found = refusal(exc)
            if found is None:
                raise
            if found != said:
                said = found
                logger.warning(**found)
            left = deadline - time.monotonic()
            if left <= 0:
                raise give_up(found) from exc
        time.sleep(min(delay * random.uniform(0.5, 1.0), left))  # noqa: S311 - jitter only
        delay = min(delay * 2, MAX_RETRY)
