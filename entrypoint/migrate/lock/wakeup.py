"""Waking waiters at once when the lock is released: LISTEN/NOTIFY on a channel of the lock key.

The holder notifies after it released the lock (and after every migration's record
committed); waiters that listen wake up, re-check what is still pending, and try the lock.
A listening session waits between transactions and holds no snapshot, so it never stalls a
``CREATE INDEX CONCURRENTLY`` in the holder.

Notifications only reach the session that listened: behind a transaction pooler (PgBouncer)
that session is whichever server connection the pooler picked, so a waiter listens only on
a connection that goes straight to the server (the server sees our socket's own address and
port); otherwise it polls as before. Either way the polling goes on: a wake-up only cuts a
sleep short, so a lost notification (a holder killed by ``kill -9``) costs at most one poll
(``waiting.NOTIFIED_DELAY``, 2 s).
"""

from __future__ import annotations

import ipaddress
import os
import select
import socket
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

PREFIX = "django_entrypoint_lock_"


def channel(key: int) -> str:
    """A channel name per lock key (an identifier: lower case, under 63 bytes)."""
    return f"{PREFIX}{key % 2**64:016x}"


def _local_address(conn: psycopg.Connection[Any]) -> tuple[str, int] | None:
    """Our end of the connection's TCP socket; None for a Unix socket."""
    with socket.socket(fileno=os.dup(conn.pgconn.socket)) as sock:
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return None
        address = sock.getsockname()
    return str(address[0]), int(address[1])


def is_direct(conn: psycopg.Connection[Any]) -> bool:
    """Whether the server sees this very socket (no pooler or proxy in between).

    A pooler connects from its own socket, so the address and port the server sees differ
    from ours; a Unix socket or anything unclear counts as pooled: polling is always safe.
    """
    local = _local_address(conn)
    if local is None:
        return False
    row = conn.execute(
        "SELECT host(client_addr), client_port FROM pg_stat_activity WHERE pid = pg_backend_pid()"
    ).fetchone()
    if row is None or row[0] is None or row[1] is None:
        return False
    seen = ipaddress.ip_address(row[0])
    ours = ipaddress.ip_address(local[0].split("%")[0])
    mapped = getattr(ours, "ipv4_mapped", None)  # ::ffff:a.b.c.d on a dual-stack socket
    return int(row[1]) == local[1] and seen in {ours, mapped}


def try_listen(conn: psycopg.Connection[Any], name: str) -> bool:
    """LISTEN on a direct connection; False (poll) behind a pooler or on any error.

    Committed either way: a LISTEN only takes effect when its transaction ends, and the
    check's transaction must not stay open (a waiter holds no snapshot).
    """
    try:
        direct = is_direct(conn)
        if direct:
            conn.execute(f"LISTEN {name}")  # a fixed identifier (channel()), never user input
        _end(conn)
    except Exception:  # noqa: BLE001 - waking up is an optimisation: poll instead
        _end(conn, quietly=True)
        return False
    return direct


def wait(conn: psycopg.Connection[Any], seconds: float) -> bool:
    """Sleep until a notification arrives or ``seconds`` pass; True when one arrived.

    A connection lost meanwhile wakes us too; the next attempt on it reports the loss.
    """
    try:
        if _drain(conn):
            return True
        ready, _, _ = select.select([conn.pgconn.socket], [], [], max(seconds, 0.0))
        if not ready:
            return False
        conn.pgconn.consume_input()
        return _drain(conn)
    except Exception:  # noqa: BLE001 - said by the next attempt, which reconnects
        return True


def _drain(conn: psycopg.Connection[Any]) -> bool:
    woken = False
    while conn.pgconn.notifies() is not None:
        woken = True
    return woken


def try_notify(conn: psycopg.Connection[Any], name: str) -> None:
    """Wake the listeners, in a transaction of its own (delivered when it commits)."""
    try:
        conn.execute(f"NOTIFY {name}")
        _end(conn)
    except Exception:  # noqa: BLE001 - the waiters poll as well: they notice within 2 s
        _end(conn, quietly=True)


def _end(conn: psycopg.Connection[Any], *, quietly: bool = False) -> None:
    """Commit what we did on a connection that is not in autocommit (nothing to roll back)."""
    try:
        if not conn.autocommit and not conn.closed:
            conn.commit()
    except Exception:
        if not quietly:
            raise
