"""The live catalog of one alias: the columns of the tables asked for, in one query per engine.

Read only, and without a lock: ``to_regclass`` and the system catalogs take none, so a
migration holding ACCESS EXCLUSIVE on a table does not hold the check up. PostgreSQL resolves
each table as the app's own queries do (the quoted name, on the connection's search_path); on
MySQL/MariaDB and SQLite, whose names are case-insensitive, names are compared in lower case.

Types are compared on PostgreSQL only, by family (``family``): what reads and writes alike is
one family, whatever its length, precision or width (varchar(50) and text, integer and bigint,
timestamp and timestamptz); an enum counts as a string; other types (uuid, jsonb, bytea,
ranges, geometric, extension types) are each a family of their own, arrays by their element.
A second query resolves the types the models declare (``to_regtype``), typmods stripped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

# pg_type.typcategory: N numeric, S string, D date/time, B boolean, T timespan, I network
# address, V bit string. Within each, PostgreSQL casts on assignment and the driver reads
# a value the field accepts; E (an enum) is written and read as a string.
LOOSE_CATEGORIES = frozenset("NSDBTIV")
# atthasdef: a default or a generation expression (both in pg_attrdef); an identity has none.
# One index lookup of pg_attribute per table asked for (OFFSET 0 keeps the planner from turning
# it into a scan of every column of the database, which grows with the database, not with us).
PG_COLUMNS = """
SELECT r.name, a.attname, a.attnotnull, a.atthasdef OR a.attidentity <> '',
       format_type(a.atttypid, a.atttypmod), t.oid, t.typcategory, e.oid, e.typcategory
FROM unnest(%s::text[]) AS r(name)
CROSS JOIN LATERAL (
    SELECT * FROM pg_attribute
    WHERE attrelid = to_regclass(r.name) AND attnum > 0 AND NOT attisdropped OFFSET 0
) AS a
JOIN pg_type AS t ON t.oid = a.atttypid
LEFT JOIN pg_type AS e ON e.oid = t.typelem AND t.typcategory = 'A'
"""
PG_TYPES = """
SELECT n.name, t.oid, t.typcategory, e.oid, e.typcategory
FROM unnest(%s::text[]) AS n(name)
JOIN pg_type AS t ON t.oid = to_regtype(n.name)
LEFT JOIN pg_type AS e ON e.oid = t.typelem AND t.typcategory = 'A'
"""
# Every column of this database's tables and views (information_schema is per database);
# auto_increment and VIRTUAL/STORED GENERATED columns are filled by the server. No parameters:
# %% is a wildcard whether the driver interpolates or not.
MYSQL_COLUMNS = """
SELECT table_name, column_name, is_nullable = 'NO', column_default IS NOT NULL
       OR extra LIKE '%%auto_increment%%' OR extra LIKE '%%generated%%'
FROM information_schema.columns WHERE table_schema = DATABASE()
"""
# hidden: 2 and 3 are generated columns (SQLite 3.31+, which Django requires).
SQLITE_COLUMNS = """
SELECT m.name, p.name, p."notnull", p.dflt_value IS NOT NULL OR p.hidden IN (2, 3)
FROM sqlite_master AS m JOIN pragma_table_xinfo(m.name) AS p
WHERE m.type IN ('table', 'view')
"""
# What to_regtype may be given: PostgreSQL before 16 raises on a name it cannot parse, so a
# custom field's exotic db_type is left unresolved (its type is then not compared).
_TYPMOD = re.compile(r"\([^()]*\)")
_TYPE_NAME = re.compile(
    r"(?:[a-z_][a-z0-9_$]*\.)?[a-z_][a-z0-9_$]*"
    r"(?: precision| varying| with time zone| without time zone)?(?:\[\])*",
    re.IGNORECASE | re.ASCII,
)


class Unsupported(Exception):
    """An engine whose catalog this module does not read."""


@dataclass(frozen=True)
class Column:
    name: str
    not_null: bool
    default: bool  # a default, an identity, an auto-increment or a generated expression
    type: str | None = None  # PostgreSQL: as format_type spells it
    family: str | None = None  # PostgreSQL: see LOOSE_CATEGORIES


@dataclass
class Catalog:
    fold: Callable[[str], str]  # how the engine compares names
    tables: dict[str, dict[str, Column]] = field(default_factory=dict)  # folded names
    families: dict[str, str] = field(default_factory=dict)  # a model's declared type: family

    def add(self, table: str, column: Column) -> None:
        self.tables.setdefault(self.fold(table), {})[self.fold(column.name)] = column

    def table(self, name: str) -> dict[str, Column] | None:
        return self.tables.get(self.fold(name))

    def mismatch(self, declared: str | None, column: Column) -> bool:
        """Whether the model's type and the column's are of different families."""
        expected = self.families.get(declared or "")
        return None not in (expected, column.family) and expected != column.family


def family(oid: int, category: str, elem_oid: int | None, elem_category: str | None) -> str:
    if category == "A" and elem_oid is not None and elem_category is not None:
        return "array of " + family(elem_oid, elem_category, None, None)
    if category == "E":
        return "S"
    return category if category in LOOSE_CATEGORIES else f"{category}{oid}"


def read(connection: BaseDatabaseWrapper, tables: Collection[str], types: Iterable[str]) -> Catalog:
    """The columns of ``tables`` that exist (a table absent from the result does not); on
    PostgreSQL also the families of ``types``, those the models declare."""
    vendor = connection.vendor
    with connection.cursor() as cursor:
        if vendor == "postgresql":
            return _postgresql(cursor, connection.ops.quote_name, tables, types)
        if vendor == "mysql":
            return _rows(cursor, MYSQL_COLUMNS, tables)
        if vendor == "sqlite":
            return _rows(cursor, SQLITE_COLUMNS, tables)
    raise Unsupported(f"not checked on {vendor} (PostgreSQL, MySQL/MariaDB and SQLite are)")


def _postgresql(
    cursor: Any, quote: Callable[[str], str], tables: Collection[str], types: Iterable[str]
) -> Catalog:
    catalog = Catalog(fold=str)
    by_quoted = {quote(name): name for name in tables}
    cursor.execute(PG_COLUMNS, [list(by_quoted)])
    for quoted, name, not_null, default, shown, *kind in cursor.fetchall():
        catalog.add(by_quoted[quoted], Column(name, not_null, default, shown, family(*kind)))
    plain = {declared: _plain(declared) for declared in types}
    cursor.execute(PG_TYPES, [sorted({p for p in plain.values() if p})])
    resolved = {name: family(*kind) for name, *kind in cursor.fetchall()}
    catalog.families = {d: resolved[p] for d, p in plain.items() if p in resolved}
    return catalog


def _plain(declared: str) -> str | None:
    """A declared type without its typmods (varchar(20)[] -> varchar[]), if plainly a name."""
    name = " ".join(_TYPMOD.sub("", declared).split()).replace(" []", "[]")
    return name if _TYPE_NAME.fullmatch(name) else None


def _rows(cursor: Any, query: str, tables: Collection[str]) -> Catalog:
    """MySQL/MariaDB and SQLite: every column of the database, those of ``tables`` kept."""
    catalog = Catalog(fold=str.lower)
    wanted = {catalog.fold(name) for name in tables}
    cursor.execute(query)
    for table, name, not_null, default in cursor.fetchall():
        if catalog.fold(table) in wanted:
            catalog.add(table, Column(name, bool(not_null), bool(default)))
    return catalog
