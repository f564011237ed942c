"""Live facts about the touched tables, read from the target database's catalog at plan time.

``pg_class.reltuples`` is the planner's row estimate; -1 (PostgreSQL 14+) means never vacuumed
or analysed, and then the planner's own estimate from the table's current pages is used (an
EXPLAIN, which reads no rows). An index name resolves to the table it belongs to.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from entrypoint.migrate.plan.risk.findings import Relation, Retype

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper


@dataclass(frozen=True)
class Table:
    name: str  # the table itself (for an index: the table it indexes), schema-qualified
    shown: str  # the name effects show: as the SQL wrote it, or an index's table
    rows: int | None  # None: not known
    bytes: int | None  # pg_total_relation_size: with indexes and TOAST
    oid: int


LOOKUP = """
WITH wanted(schema, name) AS (SELECT * FROM unnest(%s::text[], %s::text[]))
SELECT w.schema, w.name, t.oid::bigint, quote_ident(n.nspname) || '.' || quote_ident(t.relname),
       i.indexrelid IS NOT NULL, t.relname,
       t.reltuples::float8, pg_relation_size(t.oid), pg_total_relation_size(t.oid)
FROM wanted w
CROSS JOIN LATERAL (SELECT to_regclass(
    CASE WHEN w.schema IS NULL THEN quote_ident(w.name)
         ELSE quote_ident(w.schema) || '.' || quote_ident(w.name) END) AS oid) r
LEFT JOIN pg_index i ON i.indexrelid = r.oid
JOIN pg_class t ON t.oid = coalesce(i.indrelid, r.oid)
JOIN pg_namespace n ON n.oid = t.relnamespace
"""
COLUMN = """
SELECT t.typname, a.atttypmod FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = %s AND a.attname = %s AND NOT a.attisdropped
"""


def _planner_rows(cursor: Any, name: str) -> int:
    cursor.execute(f"EXPLAIN (FORMAT JSON) SELECT 1 FROM ONLY {name}")  # noqa: S608 - quote_ident'ed
    plan = cursor.fetchone()[0]
    return int((json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]["Plan Rows"])


def tables(connection: BaseDatabaseWrapper, relations: list[Relation]) -> dict[Relation, Table]:
    """Each relation that exists, by the (schema, name) the SQL used; absent ones are left out."""
    if not relations:
        return {}
    found: dict[Relation, Table] = {}
    with connection.cursor() as cursor:
        cursor.execute(LOOKUP, [[s for s, _ in relations], [n for _, n in relations]])
        for row in cursor.fetchall():
            schema, name, oid, qualified, index, relname, reltuples, main_bytes, total = row
            if reltuples >= 0:
                rows: int | None = round(reltuples)
            elif main_bytes == 0:
                rows = 0  # no page at all: empty
            else:
                rows = _planner_rows(cursor, qualified)
            found[schema, name] = Table(qualified, relname if index else name, rows, total, oid)
    return found


def rewrites(connection: BaseDatabaseWrapper, table: Table, retype: Retype) -> bool:
    """Whether ALTER COLUMN TYPE rewrites: not when the change is binary-coercible."""
    with connection.cursor() as cursor:
        cursor.execute(COLUMN, [table.oid, retype.column])
        current = cursor.fetchone()
    if current is None or not retype.plain_cast:
        return True
    return not binary_coercible(current[0], current[1], retype.type_name, retype.typmod)


# Types PostgreSQL relabels without touching a row (pg_cast method 'b'); the common ones.
RELABELS = {("varchar", "text"), ("text", "varchar"), ("cidr", "inet")}
LENGTHS = {"varchar", "bit", "varbit"}  # a longer (or no) limit: no row changes


def binary_coercible(old: str, old_mod: int, new: str, new_mod: int) -> bool:
    if (old, new) in RELABELS:
        return new_mod == -1  # text to varchar(n) checks every length: a rewrite
    if old != new:
        return False
    if new_mod in {-1, old_mod}:
        return True
    if old == "numeric" and old_mod != -1:
        # Same scale, no fewer digits: every value still fits unchanged.
        old_precision, old_scale = (old_mod - 4) >> 16, (old_mod - 4) & 0xFFFF
        precision, scale = (new_mod - 4) >> 16, (new_mod - 4) & 0xFFFF
        return scale == old_scale and precision >= old_precision
    return old in LENGTHS and old_mod != -1 and new_mod >= old_mod
