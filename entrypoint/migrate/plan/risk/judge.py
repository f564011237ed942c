"""Stage 3b of the analysis: each operation judged against the catalog snapshot, in plan order.

Risk levels:
- ``none``: nothing blocks the app's reads or writes of an existing table (CREATE TABLE,
  CONCURRENTLY, an INSERT);
- ``low``: a blocking lock held only briefly (a catalogue change, under the table-lock timeout);
- ``high``: a lock that blocks writes (or reads) held while a table is rewritten or scanned, so
  it lasts as long as the table is big (an UPDATE whose plan reads the whole table, too);
- ``unknown``: what cannot be analysed (RunPython, code that is not Django's, SQL the parser
  rejects, statements not classified).
Names are followed through the plan: a table created earlier in it (not by ``IF NOT EXISTS`` on
one that exists) is empty and unknown to the running app, so nothing on it counts; a table
renamed earlier is the live table under its old name. A statement on a partitioned or inherited
table acts on each partition (an effect each) and lasts as long as all of them together.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from entrypoint.migrate.plan.risk import advice, locks
from entrypoint.migrate.plan.risk.catalog import Column, Snapshot, Table
from entrypoint.migrate.plan.risk.classify import Statement
from entrypoint.migrate.plan.risk.findings import (
    NOT_COMPUTED,
    Findings,
    Relation,
    Retype,
    Touch,
    display,
    lock_of,
)
from entrypoint.migrate.plan.risk.levels import HIGH, LOW, NONE, ORDER, UNKNOWN
from entrypoint.migrate.plan.risk.skip import Idle

# One operation as the judge takes it: its statements, why part of it is unknown, or (instead)
# why it cannot make the app wait.
Parsed = tuple[list[Statement], tuple[str, ...], Idle | None]

# Modifier families (see alter.typmod): a longer limit or more digits change no stored value.
LONGER_IS_SAFE = {"varchar", "varbit"}
PRECISION = {"timestamp", "timestamptz", "time", "timetz"}
MAX_PRECISION = 6
NO_LIMIT_IS_SAFE = {"varchar", "varbit", "numeric", "interval", *PRECISION}
SAME_INDEX_CLASS = {"varchar", "text"}  # indexed with text_ops either way: the index is kept


@dataclass(frozen=True)
class Effect:
    table: str
    lock: str
    rewrites: bool
    scans: bool
    rows: int | None  # the table's rows; for a query, the rows it changes or locks
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


def binary_coercible(old: Column, new: Retype, casts: frozenset[tuple[str, str]]) -> bool:  # noqa: PLR0911 - a rule a return
    """Whether every stored value stays as it is: then no row is rewritten.

    A different type must be a binary-coercible cast (pg_cast) with no new modifier to check;
    the same type keeps its values when its modifier is unchanged, dropped, or widened in a way
    its family allows (varchar/varbit longer, numeric more digits at the same scale, timestamp
    and time more precision). Any modifier we do not compute counts as a change.
    """
    name, mod = old.type_name, old.typmod
    if new.type_name != name:
        return (name, new.type_name) in casts and new.typmod == -1
    if new.typmod == mod:
        return True
    if NOT_COMPUTED in {mod, new.typmod}:
        return False
    if new.typmod == -1:
        return name in NO_LIMIT_IS_SAFE
    if mod == -1:
        return name in PRECISION and new.typmod >= MAX_PRECISION
    if name == "numeric":
        return (mod - 4) & 0xFFFF == (new.typmod - 4) & 0xFFFF and new.typmod >= mod
    return name in LONGER_IS_SAFE | PRECISION and new.typmod >= mod


def _whole(table: Table, mode: str, sql: str, *, scans: bool) -> Effect:
    """An effect on a live table around the statement's own: a key's other end, a view's
    table, a default partition. It blocks the app's writes unless it only reads."""
    blocks = locks.blocks_writes(mode)
    return Effect(table.relname, mode, False, scans, table.rows, table.bytes, sql, blocks, False)  # noqa: FBT003


def _risk(effects: list[Effect]) -> str:
    existing = [e for e in effects if not e.new]
    if any(e.blocks for e in existing):
        return HIGH if any(e.rewrites or e.scans for e in existing) else LOW
    return NONE


class _Plan:
    """The plan walked in order against the snapshot: names created, renamed, judged."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.created: set[str] = set()
        self.dropped: set[str] = set()
        self.aliases: dict[str, Relation] = {}  # a name given in the plan -> the live one
        self.columns: dict[tuple[str, str], str] = {}  # (live table, name now) -> live name

    def live(self, relation: Relation) -> Relation:
        return self.aliases.get(display(relation), relation)

    def operation(self, parsed: Parsed) -> Judgement:
        statements, unknown, idle = parsed
        if idle is not None:  # nothing the app uses waits: brief at most, on an empty table
            return Judgement(risk=LOW if idle.existing else NONE, notes=[idle.note()])
        judgement = Judgement(notes=list(unknown))
        risks = [UNKNOWN] if unknown else []
        risks += [self.statement(s, judgement) for s in statements]
        judgement.risk = max(risks, key=ORDER.index, default=NONE)
        return judgement

    def statement(self, statement: Statement, judgement: Judgement) -> str:
        sql, found = statement
        if found.unknown:
            judgement.notes.append(f"{sql[:200]}: {found.unknown}")
            return UNKNOWN
        effects = [e for name in found.touches for e in self.touched(sql, found, name)]
        effects += self._defaults(sql, found)
        self._names(found)
        if any(e.rewrites for e in effects) and any(t.retypes for t in found.touches.values()):
            found.advise(advice.RETYPE)
        judgement.effects.extend(effects)
        risk = _risk(effects)
        if risk == HIGH:
            judgement.grows.extend(e for e in effects if (e.rewrites or e.scans) and not e.new)
        if risk != NONE:
            judgement.advice.extend(a for a in found.advice if a not in judgement.advice)
        return risk

    def _names(self, found: Findings) -> None:
        """After the statement: what it created and renamed, for the statements that follow."""
        for name, touch in found.touches.items():
            if "*" in touch.drops:  # dropped: a table made under its name later is new
                self.dropped.add(name)
        # A table that is there already is not new, whatever creates it: IF NOT EXISTS leaves
        # it, --fake-initial adopts it, a plain CREATE fails on it.
        for relation, _ in found.creates:
            there = self.live(relation) in self.snapshot.names
            if not there or display(relation) in self.dropped:
                self.created.add(display(relation))
        for old, new in found.renames:
            self.aliases[display(new)] = self.live(old)
            if display(old) in self.created:
                self.created.add(display(new))
        for renamed, before, after in found.column_renames:
            live = display(self.live(renamed))
            self.columns[live, after] = self.columns.get((live, before), before)

    def touched(self, sql: str, found: Findings, name: str) -> list[Effect]:
        """The effects of one touch: on the table, its partitions, the tables around it."""
        touch = found.touches[name]
        lock = lock_of(touch)
        blocks = locks.blocks_writes(lock) or touch.row_locks
        relation = self.live(touch.relation)
        oid = self.snapshot.names.get(relation)
        if name in self.created or oid is None:
            # Made earlier in the plan (not in the database before it): empty, and unknown to
            # the running app (one a RunPython fills on the way is taken as empty too).
            return [Effect(name, lock, touch.rewrites, touch.scans, 0, 0, sql, blocks, new=True)]
        table = self.snapshot.tables[oid]
        shown = table.relname if relation in self.snapshot.indexes else name
        rewrites, scans = touch.rewrites, touch.scans
        around: list[Effect] = []
        for retype in touch.retypes:
            rewritten, scanned, others = self._retype(sql, (relation, table), retype)
            rewrites, scans, around = rewrites or rewritten, scans or scanned, around + others
        around += self._keys(sql, table, touch)
        recursing = touch.recurses and (touch.inherited or table.kind == "p")
        parts = self.snapshot.descendants(oid) if recursing else []
        plan = self.snapshot.plans.get(sql) if found.explain else None
        effects = []
        for part in [oid, *parts]:
            facts = self.snapshot.tables[part]
            if part == oid and not touch.recurses and facts.kind == "p":
                work = (False, False)  # ONLY on a partitioned table: it holds no rows
            elif found.explain:
                work = (False, plan is None or facts.relname in plan.scanned)
            else:
                work = (rewrites, scans)
            rows = self.snapshot.rows(part) if part == oid and parts else facts.rows
            if touch.row_locks and not work[1]:  # by an index: the rows it changes or locks
                rows = _locked(plan, table.relname, rows)
            size = self.snapshot.size(part) if part == oid and parts else facts.bytes
            label = shown if part == oid else facts.relname
            effects.append(Effect(label, lock, *work, rows, size, sql, blocks, new=False))
        if found.explain and parts:  # the parent reads what its partitions read
            scanned = any(e.scans for e in effects)
            effects[0] = replace(effects[0], scans=scanned)
        return effects + around + self._reads(sql, table)

    def _retype(
        self, sql: str, live: tuple[Relation, Table], retype: Retype
    ) -> tuple[bool, bool, list[Effect]]:
        """ALTER COLUMN TYPE: (rewrites, scans, the effects on the tables its keys join)."""
        relation, table = live
        name = self.columns.get((display(relation), retype.column), retype.column)
        column = self.snapshot.columns.get((table.oid, name))
        if column is None or not retype.plain_cast:
            return True, False, self._keys(sql, table, None, column=name)
        rewrites = not binary_coercible(column, retype, self.snapshot.casts)
        collation = retype.collation or ("default" if column.collation else "")
        retyped = column.type_name != retype.type_name and not (
            {column.type_name, retype.type_name} <= SAME_INDEX_CLASS
        )
        # Kept rows still pass each CHECK again; an index is rebuilt for a new collation.
        rebuilt = column.indexed and (collation != column.collation or retyped)
        scans = not rewrites and (column.checked or rebuilt)  # a rewrite reads them anyway
        return rewrites, scans, self._keys(sql, table, None, column=name, retyped=True)

    def _keys(
        self,
        sql: str,
        table: Table,
        touch: Touch | None,
        *,
        column: str = "",
        retyped: bool = False,
    ) -> list[Effect]:
        """The foreign keys a statement drops or changes lock the table at their other end
        (ACCESS EXCLUSIVE); a referenced column retyped makes the referencing rows checked."""
        dropped = set(touch.drops) if touch else set()
        effects = []
        for key in self.snapshot.keys:
            whole = "*" in dropped
            if key.table == table.oid and (
                whole or key.name in dropped or dropped & set(key.columns) or column in key.columns
            ):  # a retyped referencing column: the key is checked again, reading its target
                effects.append(self._peer(sql, key.target, scans=retyped or bool(column)))
            elif key.target == table.oid and (
                whole or dropped & set(key.target_columns) or column in key.target_columns
            ):
                effects.append(self._peer(sql, key.table, scans=retyped or bool(column)))
        return effects

    def _peer(self, sql: str, oid: int, *, scans: bool) -> Effect:
        return _whole(self.snapshot.tables[oid], locks.ACCESS_EXCLUSIVE, sql, scans=scans)

    def _reads(self, sql: str, table: Table) -> list[Effect]:
        """A view's or materialized view's tables, read (ACCESS SHARE) when it is."""
        read = [self.snapshot.tables[o] for o in self.snapshot.reads.get(table.oid, [])]
        return [_whole(t, locks.ACCESS_SHARE, sql, scans=True) for t in read]

    def _defaults(self, sql: str, found: Findings) -> list[Effect]:
        """ATTACH/DETACH PARTITION, CREATE TABLE ... PARTITION OF: the default partition."""
        effects = []
        for parent, mode, scans in found.defaults:
            oid = self.snapshot.names.get(self.live(parent))
            default = self.snapshot.tables[oid].default if oid is not None else None
            if default is not None and display(parent) not in self.created:
                effects.append(_whole(self.snapshot.tables[default], mode, sql, scans=scans))
        return effects


def _locked(plan: Any, relname: str, rows: int | None) -> int | None:
    """The rows a query changes or locks in ``relname``: the planner's, at most the table's."""
    if plan is None:
        return rows
    estimate = plan.changed.get(relname, plan.locked)
    return rows if estimate is None else min(estimate, rows if rows is not None else estimate)


def questions(statements: list[Statement]) -> tuple[list[Relation], list[Relation], list[str]]:
    """What the snapshot must read for these statements: every relation named (renamed ones by
    each of their names), the tables whose columns are retyped, the queries to plan."""
    names = {t.relation for _, f in statements for t in f.touches.values()}
    names |= {r for _, f in statements for r, _ in f.creates}
    names |= {p for _, f in statements for p, _, _ in f.defaults}
    renamed = {new: old for _, f in statements for old, new in f.renames}
    names |= set(renamed.values())
    retyped = set()
    for _, found in statements:
        for touch in found.touches.values():
            if touch.retypes:
                relation: Relation | None = touch.relation
                while relation is not None and relation not in retyped:
                    retyped.add(relation)
                    relation = renamed.get(relation)
    queries = [sql for sql, f in statements if f.explain and not f.unknown]
    key = lambda r: (r[0] or "", r[1])  # noqa: E731
    return sorted(names, key=key), sorted(retyped, key=key), queries


def judge(operations: list[Parsed], snapshot: Snapshot) -> list[Judgement]:
    """Each operation (its statements, why part of it is unknown, or why it cannot make the
    app wait), in plan order."""
    walk = _Plan(snapshot)
    return [walk.operation(parsed) for parsed in operations]
