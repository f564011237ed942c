"""The plan as one JSON document, for CD gates: what would run, in which phase, and why not.

Built without the lock and without writing anything: the migrate step's own plan
(``plan.make``, with each operation's effects), read. Its problems are listed, not raised, so
the document is always printed; ``refuse`` then turns them into exit 78.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import redirect_stdout
from typing import TYPE_CHECKING, Any, Protocol

from django.db import OperationalError, connections

from entrypoint import log
from entrypoint.errors import ConfigError, DatabaseUnavailable, PlanRefused
from entrypoint.migrate.config import MigrateSettings
from entrypoint.migrate.direct import direct_connection, direct_url_for
from entrypoint.migrate.naming import label
from entrypoint.migrate.plan import preflight
from entrypoint.migrate.plan.make import announce, make
from entrypoint.migrate.plan.risk import gate

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.migrations.migration import Migration

Document = dict[str, Any]


class Writable(Protocol):
    def write(self, text: str, /) -> Any: ...


def _step(
    migration: Migration,
    backwards: bool,
    phase: str | None,
    connection: BaseDatabaseWrapper,
    risks: gate.Assessment,
) -> dict[str, Any]:
    return {
        "app": migration.app_label,
        "name": migration.name,
        "backwards": backwards,
        # What a failure leaves: nothing, only when it runs in one transaction.
        "atomic": preflight.one_transaction(migration, connection),
        "reversible": preflight.reversible(migration),
        "operations": [
            {
                "type": type(op).__name__,
                "description": op.describe(),
                "reversible": preflight.operation_reversible(op),
                "drops_data": preflight.drops_data(op, backwards=backwards),
                **risks.fields(migration, index),
            }
            for index, op in enumerate(migration.operations)
        ],
        "phase": None if backwards else phase,
    }


def database_report(alias: str, settings: MigrateSettings) -> tuple[Document, list[Document]]:
    """One alias: its plan to the targets, each step's phase, and what stops it; and the
    operations of the plan that drop data."""
    connection = connections[alias]
    try:
        plan = make(connection, settings, effects=True)
    except ConfigError as exc:  # targets; the graph: conflicts, a missing dependency, history
        return {"plan": [], "problems": list(exc.problems)}, []
    except OperationalError as exc:
        raise DatabaseUnavailable(
            f"database {alias!r} did not answer while planning ({str(exc).strip()[:200]}): "
            "check that it runs and is reachable (django-entrypoint --plan does not wait for it)"
        ) from exc
    announce(plan)
    risks = plan.risks or gate.Assessment({}, connection.vendor)
    report = {
        "plan": [_step(m, b, plan.phase_of.get(label(m)), connection, risks) for m, b in plan.full],
        "problems": list(plan.problems),
    }
    return report, _destructive(list(plan.full))


def _destructive(plan: list[tuple[Migration, bool]]) -> list[Document]:
    """What the plan drops that existed before it, for the top of the document: ``risk`` is
    about locks (a ``DROP TABLE`` is brief, so ``low``), and a gate reading it would miss them."""
    return [
        {
            "migration": label(migration),
            "backwards": backwards,
            "operation": type(operation).__name__,
            "description": operation.describe(),
        }
        for migration, backwards, operation in preflight.destroyed(plan)
    ]


def document(aliases: Sequence[str], settings: MigrateSettings) -> Document:
    """Every alias's report; ``settings`` give the targets, the phase, the direct URL and the
    risk gate."""
    databases: dict[str, Document] = {}
    destructive: list[Document] = []  # at the top: see _destructive
    for alias in aliases:
        with direct_connection(alias, direct_url_for(alias, settings.database_url)):
            databases[alias], dropping = database_report(alias, settings)
        destructive.extend({"database": alias, **entry} for entry in dropping)
    return {"phase": settings.phase, "destructive": destructive, "databases": databases}


def refuse(doc: Document) -> None:
    """Exit 78 (through the one error mapping) when any database's plan cannot be carried out."""
    problems = [
        f"{alias}: {problem}"
        for alias, report in doc["databases"].items()
        for problem in report["problems"]
    ]
    if problems:
        raise PlanRefused(*problems)


def print_plan(aliases: Sequence[str], settings: MigrateSettings, *, out: Writable) -> None:
    """The document on ``out`` (stdout), alone: anything else printed meanwhile becomes events."""
    with redirect_stdout(log.LogStream()):
        doc = document(aliases, settings)
    out.write(json.dumps(doc, indent=2) + "\n")
    refuse(doc)
