"""Who holds the migration lock (and the fence), seen from outside: no lock is taken to know.

PostgreSQL: ``pg_locks``, which shows every session's advisory locks whatever connection asks,
so it works behind a transaction pooler too. MySQL: ``IS_USED_LOCK`` of the lock's name and
the fence's. SQLite: the kernel's table of file locks (``/proc/locks``) for the lock file, and
what its holder wrote in it. The keys are the lock backends' own (``PostgresLock.ids``,
``Fence.key``, ``mysql.lock_name``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from entrypoint.migrate.lock.mysql import HOLDER, lock_name
from entrypoint.migrate.lock.postgres import PostgresLock

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

Document = dict[str, Any]
# objsubid 1: the lock (an int8 key as its two halves); 2: the fence, the same halves as an
# (int4, int4) key. Granted advisory locks of this database only.
PG_HOLDERS = (
    "SELECT l.objsubid, a.pid, a.application_name, host(a.client_addr), a.state,"
    " coalesce(a.xact_start, a.backend_start)"
    " FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid"
    " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid IN (1, 2)"
    " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " AND l.classid::bigint = (%s)::bigint AND l.objid::bigint = (%s)::bigint"
)
PROC_LOCKS = Path("/proc/locks")


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
    ids = PostgresLock.key_ids(lock_id)
    with connection.cursor() as cursor:
        cursor.execute(PG_HOLDERS, list(ids))
        rows = cursor.fetchall()
    found = {row[0]: row[1:] for row in rows}
    return {"lock": _pg_entry(found.get(1)), "fence": _pg_entry(found.get(2))}


def _pg_entry(row: tuple[Any, ...] | None) -> Document:
    if row is None:
        return {"held": False, "holder": None}
    pid, app, addr, activity, since = row
    holder = {
        "application_name": app,  # "django-entrypoint migrate <hostname> pid=<pid>"
        "client_addr": addr or "local",
        "pid": pid,
        "since": since.isoformat() if isinstance(since, dt.datetime) else since,
        "state": activity,
    }
    return {"held": True, "holder": holder}


def _mysql(connection: BaseDatabaseWrapper, name: str) -> Document:
    with connection.cursor() as cursor:
        cursor.execute("SELECT IS_USED_LOCK(%s)", [name])
        row = cursor.fetchone()
        if row is None or row[0] is None:
            return {"held": False, "holder": None}
        cursor.execute(HOLDER, [name])
        who = cursor.fetchone()
    holder: Document = {"connection_id": row[0]}
    if who is not None:
        # command: "Sleep" between statements, "Query" in one; state_s: seconds in its state
        holder.update(user=who[1], host=who[2], command=who[3], state_s=who[4], state=who[5])
    return {"held": True, "holder": holder}


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
