"""Each operation of a plan judged: its effects on each table, its risk, the safer form.

Risk levels:
- ``none``: nothing blocks the app's reads or writes of an existing table (CREATE TABLE,
  CONCURRENTLY, an INSERT);
- ``low``: a blocking lock held only briefly (a catalogue change, under the table-lock timeout);
- ``high``: a lock that blocks writes (or reads) held while a table is rewritten or scanned, so
  it lasts as long as the table is big;
- ``unknown``: what cannot be analysed (RunPython, SQL the parser rejects, statements not
  classified).
A table created earlier in the plan is empty and unknown to the running app: nothing on it counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from entrypoint.migrate.plan.risk import advice, catalog, locks
from entrypoint.migrate.plan.risk.classify import classify
from entrypoint.migrate.plan.risk.collect import OperationSQL, Plan, plan_sql, read_only
from entrypoint.migrate.plan.risk.findings import Findings, Relation, Touch, lock_of
from entrypoint.migrate.plan.risk.levels import HIGH, LOW, NONE, ORDER, UNKNOWN

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper


@dataclass(frozen=True)
class Effect:
    table: str
    lock: str
    rewrites: bool
    scans: bool
    rows: int | None
    bytes: int | None
    sql: str
    blocks: bool  # the app's writes (or reads) on it wait
    new: bool  # created earlier in the plan

    def as_json(self) -> dict[str, Any]:
        keys = ("table", "lock", "rewrites", "scans", "rows", "bytes", "sql")
        return {key: getattr(self, key) for key in keys}


@dataclass
class Judgement:
    """One operation."""

    effects: list[Effect] = field(default_factory=list)
    risk: str = NONE
    advice: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    grows: list[Effect] = field(default_factory=list)  # what the high statements rewrite or scan

    def culprit(self) -> Effect | None:
        """The biggest existing table a high statement of this operation rewrites or scans."""
        return max(self.grows, key=lambda e: e.rows or 0, default=None)


def _risk(effects: list[Effect]) -> str:
    existing = [e for e in effects if not e.new]
    if any(e.blocks for e in existing):
        return HIGH if any(e.rewrites or e.scans for e in existing) else LOW
    return NONE


def _judge_statement(
    connection: BaseDatabaseWrapper,
    statement: tuple[str, Findings],
    created: set[str],
    live: dict[Relation, catalog.Table],
    judgement: Judgement,
) -> str:
    sql, findings = statement
    if findings.unknown:
        judgement.notes.append(f"{sql[:200]}: {findings.unknown}")
        return UNKNOWN
    effects = [
        _effect(connection, (name, touch, sql), created, live)
        for name, touch in findings.touches.items()
    ]
    created.update(findings.creates)
    if any(e.rewrites and findings.touches[e.table].retypes for e in effects):
        findings.advise(advice.RETYPE)
    judgement.effects.extend(effects)
    risk = _risk(effects)
    if risk == HIGH:
        judgement.grows.extend(e for e in effects if (e.rewrites or e.scans) and not e.new)
    if risk != NONE:
        judgement.advice.extend(a for a in findings.advice if a not in judgement.advice)
    return risk


def _effect(
    connection: BaseDatabaseWrapper,
    touched: tuple[str, Touch, str],
    created: set[str],
    live: dict[Relation, catalog.Table],
) -> Effect:
    """One table a statement touches (its name, what it does to it, the statement)."""
    name, touch, sql = touched
    lock = lock_of(touch)
    new = name in created
    table = live.get(touch.relation)
    rewrites = touch.rewrites
    if touch.retypes:  # a table created in this plan is empty: whatever it does is instant
        rewrites |= (
            new
            or table is None
            or any(catalog.rewrites(connection, table, r) for r in touch.retypes)
        )
    rows = 0 if new else (table.rows if table else None)
    size = 0 if new else (table.bytes if table else None)
    blocks = locks.blocks_writes(lock) or touch.row_locks
    shown = table.shown if table and touch.relation[0] is None else name
    return Effect(shown, lock, rewrites, touch.scans, rows, size, sql, blocks, new)


Statements = list[tuple[str, Findings]]


def _judge_operation(
    connection: BaseDatabaseWrapper,
    statements: Statements,
    context: tuple[set[str], dict[Relation, catalog.Table]],
    unknown: tuple[str, ...] = (),
) -> Judgement:
    """One operation's statements, in order; ``context``: the tables created so far, live facts."""
    created, live = context
    judgement = Judgement()
    risks = [UNKNOWN] if unknown else []
    judgement.notes.extend(unknown)
    risks += [_judge_statement(connection, s, created, live, judgement) for s in statements]
    judgement.risk = max(risks, key=ORDER.index, default=NONE)
    return judgement


def _live(
    connection: BaseDatabaseWrapper, parsed: list[Statements]
) -> dict[Relation, catalog.Table]:
    wanted = {t.relation for op in parsed for _, f in op for t in f.touches.values()}
    return catalog.tables(connection, sorted(wanted, key=lambda r: (r[0] or "", r[1])))


def judge_sql(connection: BaseDatabaseWrapper, sql: str) -> Judgement:
    """SQL text judged as one operation against the live database (RunSQL, the tests)."""
    statements = _without_comments(classify(sql))
    return _judge_operation(connection, statements, (set(), _live(connection, [statements])))


def judge(connection: BaseDatabaseWrapper, plan: Plan) -> list[list[Judgement]]:
    """Per step, per operation: what it locks, on how big a table, how risky, the safer form."""
    with read_only(connection):
        collected = plan_sql(connection, plan)
    parsed = [[classify_all(op) for op in step] for step in collected]
    context = (set[str](), _live(connection, [op for step in parsed for op in step]))
    return [
        [
            _judge_operation(connection, statements, context, tuple(op_sql.unknown))
            for op_sql, statements in zip(step_sql, step, strict=True)
        ]
        for step_sql, step in zip(collected, parsed, strict=True)
    ]


def classify_all(op: OperationSQL) -> Statements:
    return _without_comments([pair for sql in op.statements for pair in classify(sql)])


def _without_comments(statements: Statements) -> Statements:
    return [(sql, f) for sql, f in statements if sql and not sql.startswith("--")]
