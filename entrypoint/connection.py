"""How the entrypoint opens its own database connections (lock, fence, watcher, probes).

Each is named in ``pg_stat_activity`` after its role and this host, keeps alive through
poolers and idle killers, and never leaves a snapshot behind on the server.

A silent network (a node gone, a partition: no reset ever comes) is noticed within
ENTRYPOINT_DB_NETWORK_TIMEOUT on both ends of every connection: ``use_network_timeout`` puts
the client half (libpq keepalives, TCP user timeout) into each PostgreSQL alias's OPTIONS, so
Django's own connections, the helpers built from them and libpq's cancel requests carry it;
``server_settings`` is the server half, set on each session so that the server drops a
session whose client vanished (and rolls back what it had in flight).

MySQL/MariaDB drivers (mysqlclient, or PyMySQL standing in for it) take no keepalive options:
``use_network_timeout`` gives each MySQL alias a connect timeout, and every socket Django opens
for it gets the same keepalives and TCP user timeout as libpq's (``keep_alive``), set on the
socket itself once connected. A read timeout would also end a statement that is merely long (an
ALTER TABLE copying a big table), so only the helpers, whose statements are all short, get one
(``mysql_params``). The server half there has no per-session setting (MariaDB's TCP keepalives
are server-wide); what stands for it is in lock/mysql.py and lock/mysql_fence.py.
"""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg
    from django.db.backends.base.base import BaseDatabaseWrapper

APP_NAME_MAX = 63  # PostgreSQL truncates application_name to NAMEDATALEN - 1
NETWORK_TIMEOUT = 10.0  # ENTRYPOINT_DB_NETWORK_TIMEOUT's default, in seconds
# libpq's keepalive options and the server settings that mirror them on the server's socket.
KEEPALIVES = {
    "keepalives_idle": "tcp_keepalives_idle",
    "keepalives_interval": "tcp_keepalives_interval",
    "keepalives_count": "tcp_keepalives_count",
}
TCP_USER_TIMEOUT_SINCE = 120000  # the server setting exists from PostgreSQL 12
CONNECTION_CHECK_SINCE = 140000  # client_connection_check_interval, from PostgreSQL 14


@dataclass
class _Network:
    """The network timeout this process was given (``use_network_timeout``): MySQL's options
    cannot carry it, so its sockets and helper connections read it here."""

    timeout: float = NETWORK_TIMEOUT


NETWORK = _Network()


def network_options(seconds: float) -> dict[str, int]:
    """libpq options under which a silent server is noticed within about ``seconds``.

    The TCP user timeout bounds how long sent data (a query, a keepalive's ping) may go
    unacknowledged. Keepalive probes cover a connection that only waits (a long statement, an
    idle lock session): they start after half the time and count against the same timeout.
    """
    total = max(1, round(seconds))
    idle = max(1, total // 2)
    interval = max(1, total // 10)
    return {
        "keepalives": 1,
        "keepalives_idle": idle,
        "keepalives_interval": interval,
        "keepalives_count": max(1, math.ceil((total - idle) / interval)),
        "tcp_user_timeout": max(1000, round(seconds * 1000)),
        "connect_timeout": max(2, math.ceil(seconds)),  # libpq's least
    }


def network_timeout_of(params: Mapping[str, Any]) -> float:
    """The network timeout that ``params`` were built with, in seconds (their TCP user timeout)."""
    return int(params.get("tcp_user_timeout") or NETWORK_TIMEOUT * 1000) / 1000


def use_network_timeout(seconds: float) -> None:
    """The client half on every PostgreSQL and MySQL alias (and on PostgreSQL a name for the
    steps' own session); a value the project's OPTIONS set wins.

    Changed in place: the wrappers Django made already, and every thread's, share the dict.
    """
    from django.db import connections  # noqa: PLC0415 - Django is set up by the caller
    from django.db.backends.signals import connection_created  # noqa: PLC0415

    NETWORK.timeout = seconds
    for alias in connections.settings:
        vendor = connections[alias].vendor
        options = connections.settings[alias].setdefault("OPTIONS", {})
        if vendor == "postgresql":
            for key, value in network_options(seconds).items():
                options.setdefault(key, value)
            # Django's own session of the steps, named in pg_stat_activity as the helpers are.
            options.setdefault("application_name", application_name("steps"))
        elif vendor == "mysql":
            options.setdefault("connect_timeout", whole_seconds(seconds))
    connection_created.connect(_mysql_connected, dispatch_uid="django-entrypoint-mysql-network")


def whole_seconds(seconds: float) -> int:
    """What a MySQL driver's timeouts take: whole seconds, at least one."""
    return max(1, math.ceil(seconds))


def _mysql_connected(sender: object, connection: BaseDatabaseWrapper, **_kwargs: object) -> None:
    """Django opened a connection: a MySQL one gets the keepalives on its socket."""
    del sender
    if connection.vendor == "mysql":
        keep_alive(mysql_socket(connection.connection), NETWORK.timeout)


def mysql_socket(raw: Any) -> int | None:
    """The socket descriptor under a MySQL driver's connection, or None once closed.

    PyMySQL keeps its socket in ``_sock``; mysqlclient has ``fileno()``, which refuses while
    another thread uses the connection: ask in the thread that does.
    """
    sock = getattr(raw, "_sock", None)
    try:
        if sock is not None:
            return int(sock.fileno())
        fileno = getattr(raw, "fileno", None)
        return int(fileno()) if callable(fileno) and getattr(raw, "open", True) else None
    except Exception:  # noqa: BLE001 - closed meanwhile: there is no socket
        return None


def keep_alive(fd: int | None, seconds: float) -> None:
    """libpq's keepalives and TCP user timeout (``network_options``), on a connected TCP socket.

    A silent peer then fails a blocked read or write within about ``seconds``, however long the
    statement it waits for is allowed to run. Unix sockets have no peer to lose: left alone.
    """
    if fd is None:
        return
    options = network_options(seconds)
    # A duplicate descriptor: the options act on the socket, closing acts on our duplicate.
    with socket.socket(fileno=os.dup(fd)) as sock:
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in (
            ("TCP_KEEPIDLE", options["keepalives_idle"]),
            ("TCP_KEEPINTVL", options["keepalives_interval"]),
            ("TCP_KEEPCNT", options["keepalives_count"]),
            ("TCP_USER_TIMEOUT", options["tcp_user_timeout"]),
        ):
            if hasattr(socket, name):  # Linux has them all; elsewhere, what there is
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


def mysql_params(connection: BaseDatabaseWrapper) -> dict[str, Any]:
    """Django's parameters for a MySQL helper connection (the lock's, a cancel's): every connect,
    read and write bounded by the network timeout, since each of its statements is short.
    A value the project's OPTIONS set wins."""
    bound = whole_seconds(NETWORK.timeout)
    timeouts = {"connect_timeout": bound, "read_timeout": bound, "write_timeout": bound}
    return {**timeouts, **connection.get_connection_params()}


def mysql_connect(connection: BaseDatabaseWrapper, params: Mapping[str, Any]) -> Any:
    """A raw driver connection (no Django wrapper: it is used from two threads, under a lock of
    the caller's) with the keepalives on its socket."""
    raw = connection.get_new_connection(dict(params))
    keep_alive(mysql_socket(raw), NETWORK.timeout)
    return raw


def server_settings(params: Mapping[str, Any], server_version: int) -> list[tuple[str, str]]:
    """The server half of ``params``' keepalives, for a session on a server of that version.

    With them the server notices a vanished client within the same bound, drops its session
    and rolls back its transaction, freeing the locks it held (the fence above all). From
    PostgreSQL 14 a statement still running is checked too, so a long one ends as well.
    """
    if str(params.get("keepalives", "1")) == "0":
        return []
    found = [
        (server, str(params[client])) for client, server in KEEPALIVES.items() if client in params
    ]
    if "tcp_user_timeout" in params and server_version >= TCP_USER_TIMEOUT_SINCE:
        found.append(("tcp_user_timeout", str(params["tcp_user_timeout"])))
    if found and server_version >= CONNECTION_CHECK_SINCE:
        interval = int(params.get("keepalives_interval", 1))
        found.append(("client_connection_check_interval", str(max(interval, 1) * 1000)))
    return found


def set_configs(settings: Sequence[tuple[str, str]], *, local: bool) -> tuple[str, list[str]]:
    """``SELECT set_config(...), ...`` for ``settings`` and its parameters: one round trip."""
    scope = "true" if local else "false"
    calls = ", ".join(f"set_config(%s, %s, {scope})" for _ in settings)
    return f"SELECT {calls}", [value for pair in settings for value in pair]


def application_name(role: str = "migrate") -> str:
    # The host name is the pod name on Kubernetes: what an operator looks for in pg_stat_activity.
    return f"django-entrypoint {role} {socket.gethostname()} pid={os.getpid()}"[:APP_NAME_MAX]


def options_of(connection: BaseDatabaseWrapper) -> dict[str, Any]:
    """What ``connection`` connects with; the network timeout's default where none was set."""
    return {**network_options(NETWORK_TIMEOUT), **connection.get_connection_params()}


def setup_session(
    conn: psycopg.Connection[Any], params: Mapping[str, Any], *extra: tuple[str, str]
) -> None:
    """The server half (and ``extra``) on a helper connection's session, in one round trip."""
    settings = [*extra, *server_settings(params, conn.info.server_version)]
    if settings:
        conn.execute(*set_configs(settings, local=False))


def open_session(connection: BaseDatabaseWrapper, role: str) -> psycopg.Connection[Any]:
    """A helper session (the watcher's, the fence's) in autocommit, named and set up."""
    import psycopg  # noqa: PLC0415 - only PostgreSQL users need it

    params = connection_params(connection, role)
    conn = psycopg.connect(**params, autocommit=True)
    try:
        setup_session(conn, params)
    except BaseException:
        conn.close()
        raise
    return conn


def migrating_session(connection: BaseDatabaseWrapper) -> tuple[str, list[str]]:
    """SQL naming Django's migrating session in pg_stat_activity, with the server half on it.

    Session settings: behind PgBouncer's transaction pooling they land on whichever server
    connection runs them, where they do no harm, and PgBouncer's own keepalives then do the
    server half's work for the client side (docs/migrations.md: fencing).
    """
    connection.ensure_connection()
    version = int(getattr(connection, "pg_version", 0))
    settings = [("application_name", application_name("migrating"))]
    return set_configs([*settings, *server_settings(options_of(connection), version)], local=False)


# Why a server takes no writes from a session, or NULL: a hot standby (PostgreSQL in recovery, a
# MySQL/MariaDB replica's read_only, which binds every user without SUPER: whoever has it must
# not write to a replica either), or transactions read-only by default (a role's or a
# database's default_transaction_read_only).
READ_ONLY = {
    "postgresql": "CASE WHEN pg_is_in_recovery() THEN 'in recovery (a hot standby)'"
    " WHEN current_setting('transaction_read_only') = 'on'"
    " THEN 'read-only for this session (default_transaction_read_only)' END",
    "mysql": "CASE WHEN @@global.read_only THEN 'read-only (read_only: a replica)' END",
}


def read_only(connection: BaseDatabaseWrapper) -> str | None:
    """Why ``connection``'s server takes no writes from it, or None (SQLite: always None)."""
    expression = READ_ONLY.get(connection.vendor)
    if expression is None:
        return None
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {expression}")
        row = cursor.fetchone()
    return str(row[0]) if row and row[0] is not None else None


def probe_sql(connection: BaseDatabaseWrapper, *, writes: bool = False) -> tuple[str, list[str]]:
    """The wait's check on PostgreSQL: a SELECT that also sets the server half on its session,
    which a link cut mid-check would otherwise leave open on the server for hours; its last
    column says why the server takes no writes (``READ_ONLY``) when ``writes`` will follow."""
    connection.ensure_connection()
    server = server_settings(options_of(connection), int(getattr(connection, "pg_version", 0)))
    last = READ_ONLY["postgresql"] if writes else "1"
    if not server:
        return f"SELECT {last}", []
    sql, values = set_configs(server, local=False)
    return f"{sql}, {last}", values


def connection_params(connection: BaseDatabaseWrapper, role: str) -> dict[str, Any]:
    """Django's parameters for ``connection``, made fit for a long-lived helper connection."""
    import psycopg  # noqa: PLC0415 - only PostgreSQL users need it

    params: dict[str, Any] = {
        **options_of(connection),
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


def is_closed(raw: Any) -> bool:
    """Whether a driver's connection is gone: psycopg's ``closed`` or ``broken``, a MySQL
    driver's ``open`` (PyMySQL closes its side once a read or write failed)."""
    if raw is None:
        return True
    if hasattr(raw, "closed"):
        return bool(raw.closed) or bool(getattr(raw, "broken", False))
    return not getattr(raw, "open", True)
