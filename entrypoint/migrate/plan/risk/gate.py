"""The plan's risk as the migrate step uses it: the row gate, the warnings, the plan's fields.

ENTRYPOINT_MIGRATE_MAX_BLOCKING_ROWS (unset: no gate): a ``high`` operation whose table has more
estimated rows refuses the whole plan before anything is applied (``refusals``, read into the
plan's problems by plan/make.py). The step checks before the lock, again under it (the plan may
have changed meanwhile), like the rollback preflight, and again before each retry of a
migration rolled back for a table lock (its tables may have grown while it waited).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from entrypoint import log
from entrypoint.migrate.naming import describe, label
from entrypoint.migrate.plan.risk.levels import HIGH, UNKNOWN

if TYPE_CHECKING:
    from collections.abc import Collection

    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.migrations.migration import Migration
    from django.db.migrations.operations.base import Operation

    from entrypoint.migrate.plan.risk.judge import Judgement


Plan = list[tuple["Migration", bool]]
VARIABLE = "ENTRYPOINT_MIGRATE_MAX_BLOCKING_ROWS"


@dataclass(frozen=True)
class Assessment:
    """Per migration (by label): each operation and its judgement; None off PostgreSQL."""

    judged: dict[str, list[tuple[Operation, Judgement]]] | None
    vendor: str
    failed: str = ""  # why the analysis did not run (it always runs on PostgreSQL otherwise)

    def high(self) -> list[tuple[str, Operation, Judgement]]:
        return [
            (where, op, j)
            for where, ops in (self.judged or {}).items()
            for op, j in ops
            if j.risk == HIGH
        ]

    def refusals(self, max_rows: int | None, running: Collection[str]) -> list[str]:
        """Why the gate refuses the plan; ``running``: the migrations this run carries out (a
        migration deferred to the post phase is judged when that phase plans it)."""
        if max_rows is None:
            return []
        problems = []
        for where, operation, judgement in self.high():
            if where not in running:
                continue
            culprit = judgement.culprit()
            if culprit is None or culprit.rows is None or culprit.rows <= max_rows:
                continue
            work = "rewrites" if culprit.rewrites else "scans"
            problems.append(
                f"plan refused, nothing applied: {where} operation {describe(operation)} "
                f"holds {culprit.lock} on {culprit.table} while it {work} its ~{culprit.rows} "
                f"rows, more than {VARIABLE}={max_rows}; "
                + "; ".join([*judgement.advice, f"or raise {VARIABLE} for this deploy"])
            )
        return problems

    def warn(self, migration: Migration, logger: log.Logger) -> None:
        """Before the migration runs: why the app may be about to wait."""
        for operation, judgement in (self.judged or {}).get(label(migration), []):
            culprit = judgement.culprit()
            if judgement.risk == HIGH and culprit is not None:
                logger.warning(
                    "migration_risk",
                    migration=label(migration),
                    operation=describe(operation),
                    table=culprit.table,
                    lock=culprit.lock,
                    rows=culprit.rows,
                    rewrites=culprit.rewrites,
                    advice=judgement.advice,
                )

    def fields(self, migration: Migration, index: int) -> dict[str, Any]:
        """What ``--plan`` shows for one operation."""
        if self.judged is None:
            return {
                "effects": None,
                "risk": UNKNOWN,
                "advice": [],
                "note": self.failed
                or f"the lock analysis covers PostgreSQL only, not {self.vendor}",
            }
        judgement = self.judged[label(migration)][index][1]
        return {
            "effects": [e.as_json() for e in judgement.effects],
            "risk": judgement.risk,
            "advice": judgement.advice,
            "note": "; ".join(judgement.notes) or None,
        }


def assess(connection: BaseDatabaseWrapper, plan: Plan) -> Assessment:
    if connection.vendor != "postgresql" or not plan:
        return Assessment(None if plan else {}, connection.vendor)
    # pglast (PostgreSQL's parser) takes ~45 ms to import: only a replica that analyses a plan
    # pays for it, never one that waits for the lock and finds the work done.
    from entrypoint.migrate.plan.risk.pipeline import analyse  # noqa: PLC0415

    started = time.perf_counter()
    try:
        judged = analyse(connection, plan)
    except Exception as exc:  # noqa: BLE001 - an analysis that fails must not stop a deploy
        log.get().warning(
            "migration_risk_unknown", alias=connection.alias, error=f"{type(exc).__name__}: {exc}"
        )
        return Assessment(None, connection.vendor, f"the lock analysis failed: {exc}")
    log.get().debug(
        "migration_risk_assessed",
        alias=connection.alias,
        steps=len(plan),
        duration_s=round(time.perf_counter() - started, 3),
    )
    return Assessment(
        {
            label(m): list(zip(m.operations, ops, strict=True))
            for (m, _), ops in zip(plan, judged, strict=True)
        },
        connection.vendor,
    )
