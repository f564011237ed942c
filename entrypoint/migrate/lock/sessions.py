"""The sessions a holder needs, opened once it has the lock and before any work.

When the server's connection slots are short, the waiters (one session each) may hold all the
others: a holder that opened its watcher or its fence session only when a migration needed it
would then fail half-way. So, as soon as the lock is taken, the holder opens Django's
connection (the migrating session) and the sessions it may need to finish (PostgreSQL: the
fence's, for a non-atomic migration); if the server has no slot for one of them, everything is
closed and the lock given back (``waiting.acquire``), so that the replica holds nothing while
it backs off, and the slots it freed let another become the holder. The table locks' watcher,
which only names blockers, is opened then too if a slot is free, and is not waited for.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from entrypoint.connection import open_session

if TYPE_CHECKING:
    from collections.abc import Iterable

    import psycopg
    from django.db.backends.base.base import BaseDatabaseWrapper


class HolderSessions:
    """Django's connection and the helper sessions of the roles asked for, opened together."""

    def __init__(self, connection: BaseDatabaseWrapper) -> None:
        self.connection = connection
        self.opened: dict[str, psycopg.Connection[Any]] = {}

    def open(self, required: Iterable[str], optional: Iterable[str] = ()) -> None:
        """Django's connection and the ``required`` roles' sessions, or none of them: on any
        failure what was opened is closed again. The ``optional`` ones (a courtesy, such as
        naming blockers) if the server has a slot for them; else they open when first used."""
        try:
            self.connection.ensure_connection()
            for role in required:
                if role not in self.opened:
                    self.opened[role] = open_session(self.connection, role)
        except BaseException:
            self.close()
            raise
        for role in optional:
            if role not in self.opened:
                with contextlib.suppress(Exception):
                    self.opened[role] = open_session(self.connection, role)

    def take(self, role: str) -> psycopg.Connection[Any] | None:
        """The session opened for ``role``, now the caller's to close; None if none was."""
        return self.opened.pop(role, None)

    def close(self) -> None:
        """Close what nobody took, and Django's connection: the holder gave the lock back."""
        self.close_untaken()
        self.connection.close()

    def close_untaken(self) -> None:
        """At the end of the holder's work: what no guard took (Django's connection stays)."""
        for conn in self.opened.values():
            with contextlib.suppress(Exception):
                conn.close()
        self.opened.clear()
