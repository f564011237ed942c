"""When a database or service that answers counts as ready: the stable period, and when not.

A server seen not answering during this wait is coming up (a restart, a container started
beside us, an official image's init phase, whose temporary server refuses TCP) and may go down
again: it must keep answering for the whole stable period. One that answered the very first
check was up before this wait began: a second check, at once, confirms it and it is ready, so a
start against a running server pays no stable period. A stable period of 0 means no
confirmation either: the first answer is enough.
"""

from __future__ import annotations

import time


class Steadiness:
    """The answers of one database or service during one wait."""

    def __init__(self, stable: float) -> None:
        self.stable = stable
        self.seen_down = False
        self.answers = 0  # in a row, since the last failure
        self.since: float | None = None

    @property
    def period(self) -> float:
        """The stable period this wait requires: none unless the server was seen down."""
        return self.stable if self.seen_down else 0.0

    @property
    def confirming(self) -> bool:
        """Only the confirmation is missing: the next check comes at once, with no pause."""
        return not self.seen_down and self.answers == 1 and self.stable > 0

    def failed(self) -> float | None:
        """A failed check ends the run of answers: how long that run had lasted, if any."""
        self.seen_down = True
        lasted = None if self.since is None else time.monotonic() - self.since
        self.answers, self.since = 0, None
        return lasted

    def answered(self) -> bool:
        """A check answered: True once the server counts as ready."""
        now = time.monotonic()
        if self.since is None:
            self.since = now
        self.answers += 1
        if self.seen_down:
            return now - self.since >= self.stable
        return not self.confirming
