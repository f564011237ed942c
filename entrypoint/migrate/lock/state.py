"""Who holds the migration lock and the fence: the one home of the questions asked of the
server's catalog (or the kernel's) about them, for the backends and for ``--status``.

PostgreSQL: ``pg_locks``, which shows every session's advisory locks whatever connection asks,
so it works behind a transaction pooler too (``PG_HOLDERS``: the lock's and the fence's holders,
read by the lock, the fence and ``--status`` alike). MySQL: ``IS_USED_LOCK`` of the lock's name
and the fence's, and the holder's ``PROCESSLIST`` row (``MYSQL_HOLDER``). SQLite: the kernel's
table of file locks (``/proc/locks``) for the lock file, and what its holder wrote in it. How
each key shows there is made here too (``key_ids``, ``lock_name``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

Document = dict[str, Any]
# pg_locks.objsubid: 1 for the lock (an int8 key, shown as its two halves), 2 for the fence
# (the same halves as an (int4, int4) key). Granted advisory locks of this database only;
# ``ours``: held by the session that asks.
LOCK, FENCE = 1, 2
PG_HOLDERS = (
    "SELECT l.objsubid, l.pid, l.pid = pg_backend_pid(), a.application_name,"
    " host(a.client_addr), a.state, coalesce(a.xact_start, a.backend_start)"
    " FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid"
    " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid IN (1, 2)"
    " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " AND l.classid::bigint = (%s)::bigint AND l.objid::bigint = (%s)::bigint"
)
MYSQL_NAME_MAX = 64  # MySQL's limit on a GET_LOCK name
MYSQL_HOLDER = (
    "SELECT ID, USER, HOST, COMMAND, TIME, STATE FROM information_schema.PROCESSLIST"
    " WHERE ID = IS_USED_LOCK(%s)"
)
PROC_LOCKS = Path("/proc/locks")


def key_ids(key: int) -> tuple[int, int]:
    """The int8 key as pg_locks shows it: classid (high 32 bits), objid (low 32 bits)."""
    unsigned = key % 2**64
    return unsigned >> 32, unsigned & 0xFFFFFFFF


@dataclass(frozen=True)
class PgHolder:
    """One row of ``PG_HOLDERS``."""

    role: int  # LOCK or FENCE
    pid: int
    ours: bool
    application_name: str | None  # "django-entrypoint migrate <hostname> pid=<pid>"
    client_addr: str | None  # None: a local socket
    state: str | None  # pg_stat_activity.state: "idle in transaction", "active"...
    since: object  # the transaction's start (or the session's)

    def since_text(self) -> object:
        return self.since.isoformat() if isinstance(self.since, dt.datetime) else self.since


def pg_holders(rows: Iterable[Sequence[Any]], role: int) -> list[PgHolder]:
    """The holders of ``role`` among the rows ``PG_HOLDERS`` returned."""
    return [PgHolder(*row) for row in rows if row[0] == role]


def lock_name(key: int, database: str, *, role: str = "") -> str:
    """MySQL's GET_LOCK names are server-wide: the database is in it, so two projects never
    collide. ``role`` tells the fence (``"fence"``) from the lock (``""``), on the same key.
    """
    prefix = f"django-entrypoint{':' + role if role else ''}"
    name = f"{prefix}:{key}:{database}"
    if len(name) > MYSQL_NAME_MAX:
        name = f"{prefix}:" + hashlib.sha256(name.encode()).hexdigest()[:40]
    return name


def describe_session(row: Sequence[Any] | None) -> dict[str, object]:
    """A PROCESSLIST row (``MYSQL_HOLDER``) as fields."""
    if row is None:
        return {}
    # command: "Sleep" between statements, "Query" in one; TIME (state_s): the seconds the
    # session has been in its current state.
    fields = ("connection_id", "user", "host", "command", "state_s", "state")
    return dict(zip(fields, row, strict=True))


def state(connection: BaseDatabaseWrapper, lock_id: int) -> Document:
    """``{"lock": {"held": ..., "holder": ...}, "fence": ...}``; no fence on SQLite."""
    if connection.vendor == "postgresql":
        return _postgres(connection, lock_id)
    if connection.vendor == "mysql":
        database = str(connection.settings_dict["NAME"])
        return {
            "lock": _mysql(connection, lock_name(lock_id, database)),
            "fence": _mysql(connection, lock_name(lock_id, database, role="fence")),
        }
    if connection.vendor == "sqlite":
        return {"lock": _sqlite(str(connection.settings_dict["NAME"])), "fence": None}
    return {"lock": None, "fence": None}  # no lock exists for this vendor


def _postgres(connection: BaseDatabaseWrapper, lock_id: int) -> Document:
    with connection.cursor() as cursor:
        cursor.execute(PG_HOLDERS, list(key_ids(lock_id)))
        rows = cursor.fetchall()
    return {"lock": _pg_entry(pg_holders(rows, LOCK)), "fence": _pg_entry(pg_holders(rows, FENCE))}


def _pg_entry(holders: list[PgHolder]) -> Document:
    if not holders:
        return {"held": False, "holder": None}
    found = holders[0]  # an exclusive key: granted to one session at a time
    holder = {
        "application_name": found.application_name,
        "client_addr": found.client_addr or "local",
        "pid": found.pid,
        "since": found.since_text(),
        "state": found.state,
    }
    return {"held": True, "holder": holder}


def _mysql(connection: BaseDatabaseWrapper, name: str) -> Document:
    with connection.cursor() as cursor:
        cursor.execute("SELECT IS_USED_LOCK(%s)", [name])
        row = cursor.fetchone()
        if row is None or row[0] is None:
            return {"held": False, "holder": None}
        cursor.execute(MYSQL_HOLDER, [name])
        who = cursor.fetchone()
    return {"held": True, "holder": describe_session(who) or {"connection_id": row[0]}}


def _sqlite(database: str) -> Document | None:
    if database in ("", ":memory:") or "mode=memory" in database:
        return None  # no other process can see it: there is no lock
    path = Path(database + ".migrate-lock")
    try:
        info = path.stat()
    except FileNotFoundError:
        return {"held": False, "holder": None}
    if not _flocked(info):
        return {"held": False, "holder": None}
    holder: Document | None = None
    with contextlib.suppress(OSError, ValueError):
        holder = dict(json.loads(path.read_text(encoding="utf-8")))  # written by its holder
    return {"held": True, "holder": holder}


def _flocked(info: os.stat_result) -> bool:
    """Whether the kernel lists an flock on this file (device and inode), without taking one."""
    wanted = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    for line in PROC_LOCKS.read_text().splitlines():
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 fe:00:1474578 0 EOF"; "->" marks a blocked waiter.
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == wanted:
            return True
    return False
