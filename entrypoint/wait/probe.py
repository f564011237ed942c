"""One bounded check of a database: does it answer, and if not, why not.

The check runs on a brand-new connection in a worker thread (``entrypoint.bounded``) that the
caller waits for only up to its budget, so a driver call that ignores its own timeout cannot
hold us.
"""

from __future__ import annotations

from entrypoint.bounded import TimedOut
from entrypoint.connection import READ_ONLY, fresh_connection, probe_sql
from entrypoint.errors import ReadOnlyDatabase
from entrypoint.patience import NOT_YET, chain_text

MAX_CONNECT_TIMEOUT = 10

# Substrings of libpq / MySQL / SQLite messages, checked in order; first match wins.
REASONS = {
    # A refused slot ('too many connections for role "x"') names a role, as a login problem
    # does: first.
    "too_many_clients": NOT_YET["too_many_clients"],
    # 'role "x" does not exist' is a login problem: it must win over database_does_not_exist.
    "authentication_failed": (
        "authentication failed",
        "access denied",
        "no password supplied",
        'role "',
    ),
    # Before tls_error: the message names the encryption the connection (did not) use.
    "host_not_allowed": (
        "no pg_hba.conf entry",
        "pg_hba.conf rejects",
        "is not allowed to connect",
    ),
    # Not "SSL SYSCALL error": a server that went away under a TLS connection (a restart).
    "tls_error": (
        "server does not support ssl",
        "ssl error",
        "ssl connection error",
        "certificate",
        "insecure transport",
        "sslmode",
    ),
    "database_does_not_exist": ("does not exist", "unknown database"),
    "server_starting_up": NOT_YET["server_starting_up"],
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
UNREACHABLE = "check that it runs and is reachable from here, or raise ENTRYPOINT_WAIT_TIMEOUT"


class ServerReadOnly(Exception):
    """The server answered, but takes no writes, and a later step writes: not ready yet."""


def classify(exc: BaseException) -> str:
    """Name the reason of a failed check from the whole exception chain."""
    if isinstance(exc, TimedOut):
        return "timed_out"
    if isinstance(exc, ServerReadOnly):
        return "read_only"
    text = chain_text(exc)
    for reason, needles in REASONS.items():
        if any(n in text for n in needles):
            return reason
    return "other"


def select_one(alias: str, connect_timeout: int, *, writes: bool = False) -> None:
    """Open a NEW connection (never a possibly broken shared one), run SELECT 1, close it.

    ``writes``: a later step writes, so a server that takes no writes (a standby) is not
    ready either: ServerReadOnly, asked in the same round trip.
    """
    conn = fresh_connection(alias, connect_timeout)
    try:
        with conn.cursor() as cursor:
            if conn.vendor == "postgresql":
                cursor.execute(*probe_sql(conn, writes=writes))
            elif writes and conn.vendor in READ_ONLY:
                cursor.execute(f"SELECT {READ_ONLY[conn.vendor]}")
            else:
                cursor.execute("SELECT 1 FROM DUAL" if conn.vendor == "oracle" else "SELECT 1")
            row = cursor.fetchone()
    finally:
        conn.close()
    if writes and row and isinstance(row[-1], str):
        raise ServerReadOnly(f"the server is {row[-1]}")


def advice(reason: str | None, alias: str) -> str:
    """What to fix for ``reason``, naming what the settings give the alias (never a password).

    Only the reasons a restart of the server cannot cure get advice of their own; the others
    (refused, not resolved, timed out, starting up) say to check that it runs and is reachable.
    """
    from django.db import connections  # noqa: PLC0415 - Django is set up by the caller

    params = connections.settings[alias]
    user, name = params.get("USER") or "(none given)", params.get("NAME") or ""
    where = f"DATABASES[{alias!r}] (DATABASE_URL, or wherever the settings read it)"
    advices = {
        "authentication_failed": f"the server refused the login for user {user!r}: check the "
        f"user and password of {where}",
        "database_does_not_exist": f"the server has no database {name!r}: create it (CREATE "
        f"DATABASE, or createdb on PostgreSQL, as a role allowed to) or fix the name in {where}",
        "host_not_allowed": f"the server's rules (pg_hba.conf; MySQL: the user's host) do not "
        f"let user {user!r} in from here to {name!r}: add a rule, or, if the server only "
        "allows TLS (hostssl), set sslmode=require (?sslmode=require in DATABASE_URL)",
        "tls_error": "the client and the server disagree on TLS (one requires it, the other "
        "does not offer it, or the certificate is not trusted): set sslmode in "
        f"{where}, e.g. ?sslmode=require, or verify-full with sslrootcert",
        "too_many_clients": "the server has no connection slot free for this role (its "
        "max_connections, or the role's CONNECTION LIMIT): see docs/steps.md#connection-slots",
        "read_only": ReadOnlyDatabase.ADVICE,
        "migrations_pending": "another process applies them (a migration Job, another pod): "
        "check that it runs and succeeds, or raise ENTRYPOINT_WAIT_TIMEOUT",
    }
    return advices.get(reason or "", UNREACHABLE)
