"""Each SQL statement parsed by PostgreSQL's own parser (pglast, libpg_query) and classified.

The lock modes are those of PostgreSQL's documentation ("Explicit Locking", table 13.2, and the
pages of ALTER TABLE and CREATE INDEX). What the SQL alone cannot tell (the column's current type
for ALTER COLUMN TYPE, the table an index belongs to, the table's size) is settled later from
the live catalog (catalog.py).
"""

from __future__ import annotations

from collections.abc import Callable

import pglast
from pglast import ast
from pglast.enums import ConstrType, ObjectType

from entrypoint.migrate.plan.risk import advice, locks
from entrypoint.migrate.plan.risk.alter import alter_table
from entrypoint.migrate.plan.risk.findings import Findings, display, dotted, items, table_name

# Statements that lock no table of the app's (session settings, sequences, types, functions...).
NO_TABLES = (
    ast.VariableSetStmt, ast.ConstraintsSetStmt, ast.CreateSeqStmt, ast.AlterSeqStmt,
    ast.CommentStmt, ast.CreateExtensionStmt, ast.CreateFunctionStmt, ast.DefineStmt,
    ast.CreateEnumStmt, ast.AlterEnumStmt, ast.CompositeTypeStmt, ast.CreateSchemaStmt,
    ast.GrantStmt, ast.ViewStmt, ast.SelectStmt, ast.TransactionStmt, ast.CreateDomainStmt,
)  # fmt: skip
RELATIONS = {
    ObjectType.OBJECT_TABLE, ObjectType.OBJECT_INDEX, ObjectType.OBJECT_VIEW,
    ObjectType.OBJECT_MATVIEW, ObjectType.OBJECT_SEQUENCE, ObjectType.OBJECT_FOREIGN_TABLE,
}  # fmt: skip
LOCK_MODES = dict(enumerate(locks.ORDER, start=1))  # LOCK TABLE's mode numbers


def _create_table(found: Findings, stmt: ast.CreateStmt) -> None:
    """A new table: nothing of the app's waits, except on the tables its foreign keys name.

    Its own keys, unique constraints and checks are built on an empty table nobody else can
    see yet: they lock nothing the app uses.
    """
    found.creates.append(display(table_name(stmt.relation)))
    for element in items(stmt.tableElts):
        constraints = element.constraints if isinstance(element, ast.ColumnDef) else (element,)
        for constraint in items(constraints):
            foreign = isinstance(constraint, ast.Constraint) and (
                constraint.contype == ConstrType.CONSTR_FOREIGN
            )
            if foreign:
                found.touch(table_name(constraint.pktable), locks.SHARE_ROW_EXCLUSIVE)


def _create_index(found: Findings, stmt: ast.IndexStmt) -> None:
    table = table_name(stmt.relation)
    if stmt.concurrent:
        found.touch(table, locks.SHARE_UPDATE_EXCLUSIVE, scans=True)
    else:
        found.touch(table, locks.SHARE, scans=True)
        found.advise(advice.CREATE_INDEX)


def _drop(found: Findings, stmt: ast.DropStmt) -> None:
    if stmt.removeType not in RELATIONS:
        return  # functions, types, extensions...
    for names in items(stmt.objects):
        concurrently = stmt.concurrent and stmt.removeType == ObjectType.OBJECT_INDEX
        found.touch(
            dotted(names), locks.SHARE_UPDATE_EXCLUSIVE if concurrently else locks.ACCESS_EXCLUSIVE
        )


def _rename(found: Findings, stmt: ast.RenameStmt) -> None:
    if stmt.relation is None:
        return  # a type, a function, a schema...
    # PostgreSQL 12+ renames an index under SHARE UPDATE EXCLUSIVE; tables and columns need more.
    index = stmt.renameType == ObjectType.OBJECT_INDEX
    mode = locks.SHARE_UPDATE_EXCLUSIVE if index else locks.ACCESS_EXCLUSIVE
    found.touch(table_name(stmt.relation), mode)


def _change_rows(found: Findings, stmt: ast.UpdateStmt | ast.DeleteStmt) -> None:
    everything = stmt.whereClause is None
    found.touch(table_name(stmt.relation), locks.ROW_EXCLUSIVE, scans=everything, row_locks=True)
    if everything:
        found.advise(advice.ALL_ROWS)


def _insert(found: Findings, stmt: ast.InsertStmt) -> None:
    found.touch(table_name(stmt.relation), locks.ROW_EXCLUSIVE)


def _truncate(found: Findings, stmt: ast.TruncateStmt) -> None:
    for relation in items(stmt.relations):
        found.touch(table_name(relation), locks.ACCESS_EXCLUSIVE)


def _trigger(found: Findings, stmt: ast.CreateTrigStmt) -> None:
    found.touch(table_name(stmt.relation), locks.SHARE_ROW_EXCLUSIVE)


def _lock(found: Findings, stmt: ast.LockStmt) -> None:
    for relation in items(stmt.relations):
        found.touch(table_name(relation), LOCK_MODES[stmt.mode or 8])


RULES: dict[type[ast.Node], Callable[[Findings, ast.Node], None]] = {
    ast.AlterTableStmt: alter_table,  # type: ignore[dict-item]
    ast.CreateStmt: _create_table,  # type: ignore[dict-item]
    ast.IndexStmt: _create_index,  # type: ignore[dict-item]
    ast.DropStmt: _drop,  # type: ignore[dict-item]
    ast.RenameStmt: _rename,  # type: ignore[dict-item]
    ast.UpdateStmt: _change_rows,  # type: ignore[dict-item]
    ast.DeleteStmt: _change_rows,  # type: ignore[dict-item]
    ast.InsertStmt: _insert,  # type: ignore[dict-item]
    ast.TruncateStmt: _truncate,  # type: ignore[dict-item]
    ast.CreateTrigStmt: _trigger,  # type: ignore[dict-item]
    ast.LockStmt: _lock,  # type: ignore[dict-item]
}


def classify_node(node: ast.Node) -> Findings:
    found = Findings()
    rule = RULES.get(type(node))
    if rule is not None:
        rule(found, node)
    elif isinstance(node, ast.CreateTableAsStmt) and node.into is not None:
        found.creates.append(display(table_name(node.into.rel)))
    elif not isinstance(node, NO_TABLES):
        name = type(node).__name__
        found.unknown = f"{name} statements are not analysed: what they lock is not known"
    return found


def split(sql: str) -> list[tuple[str, ast.Node]] | str:
    """Each statement's own text and parse tree, or the parser's message when it fails."""
    try:
        parsed = pglast.parse_sql(sql)
    except pglast.parser.ParseError as exc:
        return f"PostgreSQL's parser rejects it: {exc}"
    # Locations are byte offsets into the UTF-8 text; a length of 0 means "to the end".
    data = sql.encode()
    statements: list[tuple[str, ast.Node]] = []
    for raw in parsed:
        start = raw.stmt_location or 0
        end = start + raw.stmt_len if raw.stmt_len else len(data)
        if raw.stmt is not None:
            statements.append((data[start:end].decode().strip(), raw.stmt))
    return statements


def classify(sql: str) -> list[tuple[str, Findings]]:
    """Every statement in ``sql`` with its findings; unparsable SQL is one unknown finding."""
    statements = split(sql)
    if isinstance(statements, str):
        return [(sql.strip(), Findings(unknown=statements))]
    return [(text, classify_node(node)) for text, node in statements]
