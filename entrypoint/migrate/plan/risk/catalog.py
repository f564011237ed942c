"""Stage 3a of the analysis: a snapshot of what the live database holds, read once.

Read inside the analysis' read-only transaction, for the relations the plan's SQL names: each
one's size (``pg_class.reltuples``, the planner's estimate; -1, never analysed, gives way to the
planner's estimate from its pages), its partitions or inheritance children (a partitioned
parent holds no rows: its partitions do, and autovacuum never analyses the parent), its default
partition, the tables a view reads, the foreign keys at either end, the current type, collation,
indexes and checks of each retyped column, the binary-coercible casts (``pg_cast.castmethod =
'b'``), and for each query the planner's plan (``EXPLAIN`` without ANALYZE: nothing executes).
judge.py then works on this value alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import psycopg
from django.db import DatabaseError as DjangoDatabaseError

from entrypoint.migrate.plan.risk.findings import Relation

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper


@dataclass(frozen=True)
class Table:
    oid: int
    name: str  # schema-qualified, quoted as needed
    relname: str
    kind: str  # pg_class.relkind: r table, p partitioned, m materialized view, v view...
    rows: int | None  # its own rows (estimated); None: not known
    bytes: int  # pg_total_relation_size: with indexes and TOAST
    default: int | None  # a partitioned table's default partition


@dataclass(frozen=True)
class Column:
    type_name: str
    typmod: int
    collation: str  # "" for a type without one
    indexed: bool  # some index uses it: a collation change rebuilds that index
    checked: bool  # some CHECK constraint uses it: a type change re-checks every row


@dataclass(frozen=True)
class ForeignKey:
    name: str
    table: int
    columns: tuple[str, ...]
    target: int
    target_columns: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    """The planner's view of one query."""

    changed: dict[str, int]  # relname -> rows an UPDATE/DELETE/MERGE changes (ModifyTable)
    locked: int | None  # rows SELECT ... FOR UPDATE/SHARE locks (LockRows)
    scanned: frozenset[str]  # relnames read whole (Seq Scan)


@dataclass
class Snapshot:
    names: dict[Relation, int] = field(default_factory=dict)  # as written -> table (or index's)
    indexes: set[Relation] = field(default_factory=set)  # names that were an index's
    tables: dict[int, Table] = field(default_factory=dict)
    children: dict[int, list[int]] = field(default_factory=dict)  # partitions, inheritance
    reads: dict[int, list[int]] = field(default_factory=dict)  # a view's tables
    keys: list[ForeignKey] = field(default_factory=list)
    columns: dict[tuple[int, str], Column] = field(default_factory=dict)
    casts: frozenset[tuple[str, str]] = frozenset()
    plans: dict[str, Plan] = field(default_factory=dict)

    def descendants(self, oid: int) -> list[int]:
        found = []
        for child in self.children.get(oid, []):
            found += [child, *self.descendants(child)]
        return found

    def rows(self, oid: int) -> int | None:
        """A table's rows with those of its partitions or children: what a recursing statement
        goes through while it holds the parent's lock."""
        counts = [self.tables[o].rows for o in [oid, *self.descendants(oid)]]
        return None if None in counts else sum(c or 0 for c in counts)

    def size(self, oid: int) -> int:
        return sum(self.tables[o].bytes for o in [oid, *self.descendants(oid)])


NAMES = """
WITH wanted(schema, name) AS (SELECT * FROM unnest(%s::text[], %s::text[]))
SELECT w.schema, w.name, coalesce(i.indrelid, r.oid)::bigint, i.indexrelid IS NOT NULL
FROM wanted w
CROSS JOIN LATERAL (SELECT to_regclass(
    CASE WHEN w.schema IS NULL THEN quote_ident(w.name)
         ELSE quote_ident(w.schema) || '.' || quote_ident(w.name) END) AS oid) r
LEFT JOIN pg_index i ON i.indexrelid = r.oid
WHERE r.oid IS NOT NULL
"""
TREE = """
WITH RECURSIVE tree(parent, child) AS (
    SELECT inhparent, inhrelid FROM pg_inherits WHERE inhparent = ANY(%s::oid[])
    UNION SELECT i.inhparent, i.inhrelid FROM tree t JOIN pg_inherits i ON i.inhparent = t.child)
SELECT parent::bigint, child::bigint FROM tree
"""
VIEWS = """
SELECT DISTINCT r.ev_class::bigint, d.refobjid::bigint FROM pg_rewrite r
JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
    AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> r.ev_class
WHERE r.ev_class = ANY(%s::oid[])
"""
KEYS = """
SELECT c.conname, c.conrelid::bigint,
       ARRAY(SELECT attname FROM pg_attribute WHERE attrelid = c.conrelid AND attnum = ANY(c.conkey)),
       c.confrelid::bigint,
       ARRAY(SELECT attname FROM pg_attribute WHERE attrelid = c.confrelid AND attnum = ANY(c.confkey))
FROM pg_constraint c
WHERE c.contype = 'f' AND (c.conrelid = ANY(%s::oid[]) OR c.confrelid = ANY(%s::oid[]))
"""  # noqa: E501
FACTS = """
SELECT c.oid::bigint, quote_ident(n.nspname) || '.' || quote_ident(c.relname), c.relname,
       c.relkind::text, c.reltuples::float8, pg_relation_size(c.oid), pg_total_relation_size(c.oid),
       p.partdefid::bigint
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_partitioned_table p ON p.partrelid = c.oid
WHERE c.oid = ANY(%s::oid[])
"""
COLUMNS = """
SELECT a.attrelid::bigint, a.attname, t.typname, a.atttypmod, coalesce(co.collname, ''),
       EXISTS (SELECT FROM pg_depend d JOIN pg_class i ON i.oid = d.objid AND i.relkind IN ('i', 'I')
               WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
                 AND d.refobjid = a.attrelid AND d.refobjsubid = a.attnum),
       EXISTS (SELECT FROM pg_constraint k
               WHERE k.conrelid = a.attrelid AND k.contype = 'c' AND a.attnum = ANY(k.conkey))
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_collation co ON co.oid = a.attcollation
WHERE a.attrelid = ANY(%s::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
"""  # noqa: E501
CASTS = """
SELECT s.typname, t.typname FROM pg_cast c
JOIN pg_type s ON s.oid = c.castsource JOIN pg_type t ON t.oid = c.casttarget
WHERE c.castmethod = 'b'
"""


def _explain(cursor: Any, sql: str) -> Any:
    """The planner's plan of ``sql`` (EXPLAIN without ANALYZE executes nothing); None if it
    cannot plan it (a table or column made earlier in the plan), in a savepoint of its own."""
    cursor.execute("SAVEPOINT entrypoint_explain")
    try:
        cursor.execute(f"EXPLAIN (VERBOSE, FORMAT JSON) {sql}")
        plan = cursor.fetchone()[0]
    except (DjangoDatabaseError, psycopg.Error):  # Django's connection, or a bare one
        cursor.execute("ROLLBACK TO SAVEPOINT entrypoint_explain")
        return None
    cursor.execute("RELEASE SAVEPOINT entrypoint_explain")
    return (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]


def _plan(tree: dict[str, Any]) -> Plan:
    changed: dict[str, int] = {}
    scanned: set[str] = set()
    locked: int | None = None
    stack = [tree]
    while stack:
        node = stack.pop()
        children = node.get("Plans", [])
        stack.extend(children)
        kind = node["Node Type"]
        if kind == "ModifyTable":
            outer = [c for c in children if c.get("Parent Relationship") == "Outer"]
            rows = int(outer[0]["Plan Rows"]) if outer else int(node["Plan Rows"])
            changed[node["Relation Name"]] = changed.get(node["Relation Name"], 0) + rows
        elif kind == "LockRows":
            locked = max(locked or 0, int(children[0]["Plan Rows"]))
        elif kind == "Seq Scan":
            scanned.add(node["Relation Name"])
    return Plan(changed, locked, frozenset(scanned))


def _rows(cursor: Any, qualified: str, reltuples: float, main_bytes: int) -> int:
    if reltuples >= 0:
        return round(reltuples)
    if main_bytes == 0:
        return 0  # no page at all: empty
    plan = _explain(cursor, f"SELECT 1 FROM ONLY {qualified}")  # noqa: S608 - quote_ident'ed
    # Without a plan: as many rows as the pages could hold (a row takes 28 bytes at least).
    return int(plan["Plan Rows"]) if plan else main_bytes // 28


def _facts(cursor: Any, found: Snapshot, oids: set[int]) -> None:
    cursor.execute(FACTS, [sorted(oids)])
    for oid, name, relname, kind, reltuples, main_bytes, total, default in cursor.fetchall():
        has_rows = kind not in {"p", "v", "f"}
        rows = _rows(cursor, name, reltuples, main_bytes) if has_rows else 0
        found.tables[oid] = Table(oid, name, relname, kind, rows, total, default or None)


def snapshot(
    connection: BaseDatabaseWrapper,
    relations: list[Relation],
    *,
    retyped: list[Relation],
    queries: list[str],
) -> Snapshot:
    """What the judge needs to know about ``relations``, the columns of ``retyped`` tables and
    the plans of ``queries``."""
    found = Snapshot()
    if not relations:
        return found
    with connection.cursor() as cursor:
        cursor.execute(NAMES, [[s for s, _ in relations], [n for _, n in relations]])
        for schema, name, oid, index in cursor.fetchall():
            found.names[schema, name] = oid
            if index:
                found.indexes.add((schema, name))
        named = sorted(set(found.names.values()))
        cursor.execute(TREE, [named])
        for parent, child in cursor.fetchall():
            found.children.setdefault(parent, []).append(child)
        cursor.execute(VIEWS, [named])
        for view, table in cursor.fetchall():
            found.reads.setdefault(view, []).append(table)
        near = {*named, *(c for cs in found.children.values() for c in cs)}
        cursor.execute(KEYS, [sorted(near), sorted(near)])
        found.keys = [ForeignKey(n, t, tuple(c), g, tuple(gc)) for n, t, c, g, gc in cursor]
        peers = {k.table for k in found.keys} | {k.target for k in found.keys}
        _facts(cursor, found, near | peers | {t for ts in found.reads.values() for t in ts})
        retyped_oids = sorted({found.names[r] for r in retyped if r in found.names})
        if retyped_oids:
            cursor.execute(COLUMNS, [retyped_oids])
            for table, name, *facts in cursor.fetchall():
                found.columns[table, name] = Column(*facts)
            cursor.execute(CASTS)
            found.casts = frozenset((s, t) for s, t in cursor.fetchall())
        for sql in queries:
            tree = _explain(cursor, sql)
            if tree is not None:
                found.plans[sql] = _plan(tree)
    return found
