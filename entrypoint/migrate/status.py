"""``--status``: a stuck deploy's first questions, answered from the database itself.

Is someone migrating, who, since when, and what is still pending? One JSON document: per alias,
the migrations pending, who holds the migration lock and (PostgreSQL) the fence, the last
migration applied, and whether the live schema serves this code (``schema``). Read only: no
lock is taken, nothing is written, the database is not waited for. Each alias is read on a
connection of its own, opened with a short connect timeout, in a worker thread the caller gives
up on, so an unreachable database costs seconds, not a hang.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import redirect_stdout
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from entrypoint import log
from entrypoint.bounded import TimedOut, bounded
from entrypoint.connection import limit_connect_time, read_only
from entrypoint.errors import ConfigError, DatabaseUnavailable, PlanRefused
from entrypoint.migrate.config import PRE, MigrateSettings
from entrypoint.migrate.direct import direct_connection, direct_url_for
from entrypoint.migrate.lock import state as lock_state
from entrypoint.migrate.naming import label
from entrypoint.migrate.plan import records
from entrypoint.migrate.plan.make import make
from entrypoint.patience import NotYet, connect_patiently
from entrypoint.schema import check as schema_check
from entrypoint.wait.probe import classify as reason_of

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

Document = dict[str, Any]
CONNECT_TIMEOUT = 5  # seconds: what an unreachable alias costs
LOCK_WAIT = 2.0  # seconds a query may wait for a table lock (django_migrations held)
STATEMENT_TIMEOUT = 4.0  # seconds each query may take (PostgreSQL)
READ_BUDGET = 10.0  # seconds for all the queries once connected: a paused pooler never answers


def print_status(aliases: Sequence[str], settings: MigrateSettings, *, out: TextIO) -> None:
    """The document on ``out`` (stdout), alone; then DatabaseUnavailable (69) naming each alias
    that did not answer, or else PlanRefused (78) naming each whose plan cannot be made (bad
    targets, a broken migration graph: what the migrate step would refuse too)."""
    with redirect_stdout(log.LogStream()):  # what the project prints meanwhile: events
        doc = document(aliases, settings)
    out.write(json.dumps(doc, indent=2) + "\n")
    silent = [alias for alias, report in doc["databases"].items() if "error" in report]
    if silent:
        reports = doc["databases"]
        reasons = "; ".join(f"{a} ({reports[a]['reason']}: {reports[a]['error']})" for a in silent)
        raise DatabaseUnavailable(
            f"the status of database {reasons} could not be read: check that it runs and is "
            f"reachable from here, or end what holds it (--status does not wait: "
            f"{CONNECT_TIMEOUT}s to connect, {READ_BUDGET:g}s for its queries, each waiting at "
            f"most {LOCK_WAIT:g}s for a lock)"
        )
    problems = [f"{a}: {r['problem']}" for a, r in doc["databases"].items() if r.get("problem")]
    if problems:
        raise PlanRefused(*problems)


def document(aliases: Sequence[str], settings: MigrateSettings) -> Document:
    databases: dict[str, Document] = {}
    for alias in aliases:
        # Where the migrate step takes its lock: the direct URL, when there is one.
        with direct_connection(alias, direct_url_for(alias, settings.database_url)):
            opened: list[BaseDatabaseWrapper] = []  # the worker's connection, to look at
            read = partial(_read, alias, settings, opened=opened)
            try:
                databases[alias] = bounded(read, CONNECT_TIMEOUT + READ_BUDGET, "status")
            except Exception as exc:  # noqa: BLE001 - reported in the document, then 69
                databases[alias] = _unanswered(exc, logged_in=any(c.connection for c in opened))
    return {"databases": databases}


def _unanswered(exc: Exception, *, logged_in: bool) -> Document:
    """The entry of an alias whose reads failed: reachable when the login had succeeded (a
    pooler that answered, then held every query: PgBouncer's PAUSE)."""
    if logged_in and isinstance(exc, TimedOut):
        detail = (
            f"logged in, then its queries got no answer within {READ_BUDGET:g}s: a paused "
            "pooler (PgBouncer PAUSE), or a server that stopped answering"
        )
    else:
        detail = log.scrub(f"{type(exc).__name__}: {str(exc).strip()}")[:300]
    return {"reachable": logged_in, "reason": reason_of(exc), "error": detail}


def _read(alias: str, settings: MigrateSettings, *, opened: list[BaseDatabaseWrapper]) -> Document:
    """Everything about one alias, in this (worker) thread, on a connection of its own.

    This thread's own ``connections[alias]``, new since the thread is, so that Django's
    recorder and the phase rules, which look the alias up, all use it, connect timeout included.
    Each query waits at most LOCK_WAIT for a table lock: a session holding django_migrations
    locked is named (``blocked``), and the lock's state is still read.
    """
    from django.db import connections  # noqa: PLC0415 - Django is set up by the caller

    connection = connections[alias]
    limit_connect_time(connection, CONNECT_TIMEOUT)
    _refuse_missing_sqlite_file(connection)
    opened.append(connection)
    try:
        # A server out of slots or starting up is asked again within the connect budget.
        connect_patiently(connection, within=CONNECT_TIMEOUT, give_up=NotYet)
        report: Document = {"reachable": True, "phase": settings.phase}
        with records.bounded(connection, LOCK_WAIT, statement=STATEMENT_TIMEOUT):
            why = read_only(connection)  # the catalog only: no table lock holds these
            report["read_only"] = why is not None
            if why is not None:
                report["read_only_reason"] = why
            report.update(lock_state.state(connection, settings.lock_id))
        try:
            with records.bounded(connection, LOCK_WAIT, statement=STATEMENT_TIMEOUT):
                report.update(_pending(connection, settings))
                report["last_applied"] = _last_applied(connection)
        except records.RecordsLocked as exc:
            report.update(
                {"pending": None, "blocked": {"cause": exc.cause, "by": exc.blockers}},
                reason="blocked",
                error=log.scrub(str(exc))[:300],
            )
        with records.bounded(connection, LOCK_WAIT, statement=STATEMENT_TIMEOUT):
            report.update(schema_check.report(connection, targets=settings.targets))
        return report
    finally:
        connections.close_all()  # this thread's connections die with it


def _refuse_missing_sqlite_file(connection: BaseDatabaseWrapper) -> None:
    """Connecting would create an empty SQLite file: a status must change nothing."""
    name = str(connection.settings_dict["NAME"])
    in_memory = name in ("", ":memory:") or "mode=memory" in name
    if connection.vendor == "sqlite" and not in_memory and not Path(name).exists():
        raise FileNotFoundError(f"the SQLite database {name} does not exist (never migrated?)")


def _pending(connection: BaseDatabaseWrapper, settings: MigrateSettings) -> Document:
    """What migrate would apply (and unapply) to reach the targets; in the pre phase, also what
    django-safemigrate leaves for the post phase."""
    try:
        plan = make(connection, settings)
    except ConfigError as exc:  # bad targets; the graph: conflicts, a missing dependency, history
        return {"pending": None, "problem": str(exc)}
    found: Document = {
        "pending": [label(m) for m, backwards in plan.full if not backwards],
        "unapply": [label(m) for m, backwards in plan.full if backwards],
    }
    if settings.phase == PRE:
        phase_of = plan.phase_of
        found["deferred"] = [name for name in found["pending"] if phase_of.get(name, PRE) != PRE]
    return found


def _last_applied(connection: BaseDatabaseWrapper) -> Document | None:
    from django.db.migrations.recorder import MigrationRecorder  # noqa: PLC0415

    recorder = MigrationRecorder(connection)
    if not recorder.has_table():
        return None
    last = recorder.migration_qs.order_by("-applied", "-id").first()
    if last is None:
        return None
    return {"migration": f"{last.app}.{last.name}", "applied": last.applied.isoformat()}
