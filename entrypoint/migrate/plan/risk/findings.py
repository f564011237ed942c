"""What one SQL statement does to each table it touches, as read from its parse tree alone.

What only the live catalog can settle (an index's table, partitions, a column's current type,
the foreign keys around it, the planner's row estimates) is asked of the snapshot later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pglast import ast

from entrypoint.migrate.plan.risk import locks

Relation = tuple["str | None", str]  # (schema or None, name), as the statement wrote them
NOT_COMPUTED = -2  # a type modifier we do not compute: compared, any change counts as a rewrite


@dataclass(frozen=True)
class Retype:
    """ALTER COLUMN TYPE: whether it rewrites depends on the column's current type (live)."""

    column: str
    type_name: str  # pg_type.typname of the new type: int8, varchar, numeric, _int4...
    typmod: int  # as pg_attribute.atttypmod: -1 without a modifier, NOT_COMPUTED
    plain_cast: bool  # no USING, or USING just casts the column: nothing else to evaluate
    collation: str | None  # COLLATE given; None: the new type's default


@dataclass
class Touch:
    relation: Relation
    modes: list[str] = field(default_factory=list)
    rewrites: bool = False
    scans: bool = False
    row_locks: bool = False  # UPDATE/DELETE/FOR UPDATE: its rows stay locked until commit
    retypes: list[Retype] = field(default_factory=list)
    recurses: bool = False  # the same on every partition or inheritance child (not ONLY)
    inherited: bool = True  # also on inheritance children (indexes are not: partitions only)
    drops: list[str] = field(default_factory=list)  # columns or constraints dropped: their keys


@dataclass
class Findings:
    """One statement: the tables it touches, what it creates, the safer forms, what is unknown."""

    touches: dict[str, Touch] = field(default_factory=dict)  # by display name
    creates: list[tuple[Relation, bool]] = field(default_factory=list)  # (table, IF NOT EXISTS)
    renames: list[tuple[Relation, Relation]] = field(default_factory=list)  # (old, new)
    column_renames: list[tuple[Relation, str, str]] = field(default_factory=list)
    # ATTACH/DETACH PARTITION: the parent's default partition, locked (and scanned when True)
    defaults: list[tuple[Relation, str, bool]] = field(default_factory=list)
    explain: bool = False  # DML: its rows and scans are the planner's (EXPLAIN, nothing run)
    advice: list[str] = field(default_factory=list)
    unknown: str | None = None

    def touch(  # noqa: PLR0913 - one keyword per thing a statement may do to a table
        self,
        relation: Relation,
        mode: str,
        *,
        rewrites: bool = False,
        scans: bool = False,
        row_locks: bool = False,
        retype: Retype | None = None,
        recurses: bool = True,
    ) -> Touch:
        found = self.touches.setdefault(display(relation), Touch(relation))
        found.modes.append(mode)
        found.rewrites |= rewrites
        found.scans |= scans
        found.row_locks |= row_locks
        found.recurses |= recurses
        if retype is not None:
            found.retypes.append(retype)
        return found

    def advise(self, text: str) -> None:
        if text not in self.advice:
            self.advice.append(text)


def display(relation: Relation) -> str:
    """The name as the statement wrote it, schema-qualified only when it was."""
    schema, name = relation
    return f"{schema}.{name}" if schema else name


def table_name(relation: ast.RangeVar | None) -> Relation:
    if relation is None:  # the parser always fills it where we read it
        raise ValueError("statement without a relation")
    return (str(relation.schemaname) if relation.schemaname else None, str(relation.relname))


def recurses(relation: ast.RangeVar | None) -> bool:
    """Without ONLY, a statement on a table also acts on its partitions and children."""
    return relation is None or relation.inh is not False


def items(nodes: tuple[Any, ...] | None) -> tuple[Any, ...]:
    """pglast leaves an empty list as None."""
    return nodes or ()


def dotted(names: tuple[ast.String, ...]) -> Relation:
    parts = [str(n.sval) for n in names]
    return (parts[-2] if len(parts) > 1 else None, parts[-1])


def lock_of(touch: Touch) -> str:
    return locks.strongest(touch.modes)
