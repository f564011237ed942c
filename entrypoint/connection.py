"""How the entrypoint opens its own database connections (lock, fence, watcher, probes).

Each is named in ``pg_stat_activity`` after its role and this host, keeps alive through
poolers and idle killers, and never leaves a snapshot behind on the server.
"""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

APP_NAME_MAX = 63  # PostgreSQL truncates application_name to NAMEDATALEN - 1
# A lost holder (node gone, network cut) must free the lock in about a minute, not after the
# kernel's two-hour keepalive default: keepalives on both ends of the lock connection.
CLIENT_KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30000,
}


def application_name(role: str = "migrate") -> str:
    # The host name is the pod name on Kubernetes: what an operator looks for in pg_stat_activity.
    return f"django-entrypoint {role} {socket.gethostname()} pid={os.getpid()}"[:APP_NAME_MAX]


def connection_params(connection: BaseDatabaseWrapper, role: str) -> dict[str, Any]:
    """Django's parameters for ``connection``, made fit for a long-lived helper connection."""
    import psycopg  # noqa: PLC0415 - only PostgreSQL users need it

    params: dict[str, Any] = {
        **CLIENT_KEEPALIVES,
        **connection.get_connection_params(),
        "application_name": application_name(role),
        # No named prepared statements: they break behind PgBouncer's transaction pooling.
        "prepare_threshold": None,
        # Values rendered on the client, never bound: after a statement with bound
        # parameters, PostgreSQL keeps its snapshot until the next one, and a CREATE INDEX
        # CONCURRENTLY in the holder then waits for this idle transaction forever (measured).
        # So every integer is written as (%s)::type: -9223372036854775808::bigint alone
        # would parse as -(9223372036854775808::bigint), out of range.
        "cursor_factory": psycopg.ClientCursor,
    }
    params.setdefault("connect_timeout", 10)
    return params


def limit_connect_time(conn: BaseDatabaseWrapper, connect_timeout: int) -> None:
    """Make ``conn`` (not yet connected) give up connecting after ``connect_timeout`` seconds,
    where the driver takes one; only this wrapper's settings change."""
    if conn.vendor in ("postgresql", "mysql"):
        options = {**conn.settings_dict.get("OPTIONS", {}), "connect_timeout": connect_timeout}
        conn.settings_dict = {**conn.settings_dict, "OPTIONS": options}


def fresh_connection(alias: str, connect_timeout: int) -> BaseDatabaseWrapper:
    """A NEW connection wrapper for ``alias`` (never a possibly broken shared one), with a
    connect timeout; the caller closes it."""
    from django.db import connections  # noqa: PLC0415 - Django is set up by the caller

    conn = connections.create_connection(alias)
    limit_connect_time(conn, connect_timeout)
    return conn
