"""Stage 2 of the analysis: each SQL statement parsed by PostgreSQL's own parser and classified.

pglast (libpg_query) parses; the lock modes are those of PostgreSQL's documentation ("Explicit
Locking", table 13.2, and the pages of ALTER TABLE, CREATE INDEX, CLUSTER, REINDEX, VACUUM and
REFRESH MATERIALIZED VIEW). What the SQL alone cannot tell (an index's table, partitions, the
column's current type, the rows an UPDATE changes) is settled by judge.py against the catalog
snapshot (catalog.py). Every table a query reads is counted (ACCESS SHARE), writable CTEs too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pglast
from pglast import ast
from pglast.enums import ConstrType, ObjectType, OnConflictAction, ReindexObjectType

from entrypoint.migrate.plan.risk import advice, locks
from entrypoint.migrate.plan.risk.alter import alter_table
from entrypoint.migrate.plan.risk.findings import (
    Findings,
    dotted,
    items,
    recurses,
    table_name,
)

# Statements that lock no table of the app's (session settings, sequences, types, functions...).
NO_TABLES = (
    ast.VariableSetStmt, ast.ConstraintsSetStmt, ast.CreateSeqStmt, ast.AlterSeqStmt,
    ast.CreateExtensionStmt, ast.CreateFunctionStmt, ast.DefineStmt,
    ast.CreateEnumStmt, ast.AlterEnumStmt, ast.CompositeTypeStmt, ast.CreateSchemaStmt,
    ast.GrantStmt, ast.TransactionStmt, ast.CreateDomainStmt,
)  # fmt: skip
# Statements that read and write rows: their rows and scans come from the planner (EXPLAIN).
QUERIES = (ast.SelectStmt, ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt, ast.MergeStmt)
RELATIONS = {
    ObjectType.OBJECT_TABLE, ObjectType.OBJECT_INDEX, ObjectType.OBJECT_VIEW,
    ObjectType.OBJECT_MATVIEW, ObjectType.OBJECT_SEQUENCE, ObjectType.OBJECT_FOREIGN_TABLE,
}  # fmt: skip
LOCK_MODES = dict(enumerate(locks.ORDER, start=1))  # LOCK TABLE's mode numbers


def nodes(node: object) -> Iterator[ast.Node]:
    """``node`` and every node below it."""
    if isinstance(node, tuple):
        for child in node:
            yield from nodes(child)
    elif isinstance(node, ast.Node):
        yield node
        for name in node:
            yield from nodes(getattr(node, name))


def _query(found: Findings, stmt: ast.Node | None, *, reads: bool = True) -> None:
    """A query, writable CTEs and subqueries included: what it reads, writes and locks.

    Every table is taken as read whole (``reads``) until the planner's plan says otherwise.
    """
    found.explain = True
    ctes = {str(n.ctename) for n in nodes(stmt) if isinstance(n, ast.CommonTableExpr)}
    for node in nodes(stmt):
        if isinstance(node, ast.RangeVar) and (node.schemaname or node.relname not in ctes):
            found.touch(table_name(node), locks.ACCESS_SHARE, scans=reads, recurses=recurses(node))
        elif isinstance(node, (ast.UpdateStmt, ast.DeleteStmt, ast.MergeStmt)):
            relation = table_name(node.relation)
            found.touch(relation, locks.ROW_EXCLUSIVE, scans=True, row_locks=True)
            found.advise(advice.ALL_ROWS)
        elif isinstance(node, ast.InsertStmt):
            conflict = node.onConflictClause
            updates = conflict is not None and conflict.action == OnConflictAction.ONCONFLICT_UPDATE
            found.touch(table_name(node.relation), locks.ROW_EXCLUSIVE, row_locks=updates)
        elif isinstance(node, ast.SelectStmt) and node.lockingClause:
            named = [r for c in node.lockingClause for r in items(c.lockedRels)]
            locked = named or [n for n in nodes(node.fromClause) if isinstance(n, ast.RangeVar)]
            for relation in locked:
                found.touch(table_name(relation), locks.ROW_SHARE, scans=True, row_locks=True)


def _create_table(found: Findings, stmt: ast.CreateStmt) -> None:
    """A new table: nothing of the app's waits, except on the tables its foreign keys name.

    Its own keys, unique constraints and checks are built on an empty table nobody else can
    see yet: they lock nothing the app uses. A partition of an existing table locks the parent
    and scans its default partition (whose rows may now belong to the new one).
    """
    found.creates.append((table_name(stmt.relation), bool(stmt.if_not_exists)))
    for element in items(stmt.tableElts):
        constraints = element.constraints if isinstance(element, ast.ColumnDef) else (element,)
        for constraint in items(constraints):
            foreign = isinstance(constraint, ast.Constraint) and (
                constraint.contype == ConstrType.CONSTR_FOREIGN
            )
            if foreign:
                found.touch(table_name(constraint.pktable), locks.SHARE_ROW_EXCLUSIVE)
    for parent in items(stmt.inhRelations):
        if stmt.partbound is not None:
            found.touch(table_name(parent), locks.ACCESS_EXCLUSIVE, recurses=False)
            found.defaults.append((table_name(parent), locks.ACCESS_EXCLUSIVE, True))
        else:  # INHERITS
            found.touch(table_name(parent), locks.SHARE_UPDATE_EXCLUSIVE, recurses=False)


def _create_as(found: Findings, stmt: ast.CreateTableAsStmt) -> None:
    _query(found, stmt.query)
    found.explain = False  # the new table's rows lock nothing
    assert stmt.into is not None
    found.creates.append((table_name(stmt.into.rel), bool(stmt.if_not_exists)))


def _create_index(found: Findings, stmt: ast.IndexStmt) -> None:
    table = table_name(stmt.relation)
    inh = recurses(stmt.relation)
    if stmt.concurrent:
        touch = found.touch(table, locks.SHARE_UPDATE_EXCLUSIVE, scans=True, recurses=inh)
    else:
        touch = found.touch(table, locks.SHARE, scans=True, recurses=inh)
        found.advise(advice.CREATE_INDEX)
    touch.inherited = False  # a partitioned table's partitions are indexed, children are not


def _drop(found: Findings, stmt: ast.DropStmt) -> None:
    if stmt.removeType not in RELATIONS:
        return  # functions, types, extensions...
    for names in items(stmt.objects):
        concurrently = stmt.concurrent and stmt.removeType == ObjectType.OBJECT_INDEX
        mode = locks.SHARE_UPDATE_EXCLUSIVE if concurrently else locks.ACCESS_EXCLUSIVE
        # A table's foreign keys go with it: the tables at their other end are locked too.
        found.touch(dotted(names), mode).drops.append("*")


def _rename(found: Findings, stmt: ast.RenameStmt) -> None:
    if stmt.relation is None:
        return  # a type, a function, a schema...
    table = table_name(stmt.relation)
    # PostgreSQL 12+ renames an index under SHARE UPDATE EXCLUSIVE; tables and columns need more.
    index = stmt.renameType == ObjectType.OBJECT_INDEX
    mode = locks.SHARE_UPDATE_EXCLUSIVE if index else locks.ACCESS_EXCLUSIVE
    found.touch(table, mode, recurses=False)
    if stmt.renameType == ObjectType.OBJECT_COLUMN:
        found.column_renames.append((table, str(stmt.subname), str(stmt.newname)))
    elif stmt.renameType in RELATIONS:
        found.renames.append((table, (table[0], str(stmt.newname))))


def _truncate(found: Findings, stmt: ast.TruncateStmt) -> None:
    for relation in items(stmt.relations):
        found.touch(table_name(relation), locks.ACCESS_EXCLUSIVE, recurses=recurses(relation))


def _trigger(found: Findings, stmt: ast.CreateTrigStmt) -> None:
    found.touch(table_name(stmt.relation), locks.SHARE_ROW_EXCLUSIVE)


def _lock(found: Findings, stmt: ast.LockStmt) -> None:
    for relation in items(stmt.relations):
        mode = LOCK_MODES[stmt.mode or 8]
        found.touch(table_name(relation), mode, recurses=recurses(relation))


def _comment(found: Findings, stmt: ast.CommentStmt) -> None:
    names = stmt.object
    if not isinstance(names, tuple):
        return  # a function's, a type's...
    if stmt.objtype == ObjectType.OBJECT_COLUMN:
        found.touch(dotted(names[:-1]), locks.SHARE_UPDATE_EXCLUSIVE, recurses=False)
    elif stmt.objtype in RELATIONS:
        found.touch(dotted(names), locks.SHARE_UPDATE_EXCLUSIVE, recurses=False)


def _cluster(found: Findings, stmt: ast.ClusterStmt) -> None:
    if stmt.relation is None:
        found.unknown = "CLUSTER without a table rewrites every clustered table: not analysed"
        return
    found.touch(table_name(stmt.relation), locks.ACCESS_EXCLUSIVE, rewrites=True)
    found.advise(advice.REWRITE)


def _vacuum(found: Findings, stmt: ast.VacuumStmt) -> None:
    options = {str(o.defname).lower() for o in items(stmt.options)}
    relations = [table_name(r.relation) for r in items(stmt.rels)]
    full = stmt.is_vacuumcmd and "full" in options
    if not relations:
        if full:
            found.unknown = "VACUUM FULL without a table rewrites every table: not analysed"
        return  # a plain VACUUM or ANALYZE of everything: SHARE UPDATE EXCLUSIVE, writes go on
    for relation in relations:
        if full:
            found.touch(relation, locks.ACCESS_EXCLUSIVE, rewrites=True)
            found.advise(advice.REWRITE)
        else:
            found.touch(relation, locks.SHARE_UPDATE_EXCLUSIVE, scans=bool(stmt.is_vacuumcmd))


def _reindex(found: Findings, stmt: ast.ReindexStmt) -> None:
    kinds = {ReindexObjectType.REINDEX_OBJECT_INDEX, ReindexObjectType.REINDEX_OBJECT_TABLE}
    if stmt.kind not in kinds or stmt.relation is None:
        found.unknown = "REINDEX of a schema or database: not analysed"
        return
    concurrently = any(str(p.defname).lower() == "concurrently" for p in items(stmt.params))
    mode = locks.SHARE_UPDATE_EXCLUSIVE if concurrently else locks.SHARE
    found.touch(table_name(stmt.relation), mode, scans=True)  # an index resolves to its table
    if not concurrently:
        found.advise(advice.REINDEX)


def _refresh(found: Findings, stmt: ast.RefreshMatViewStmt) -> None:
    """The view's query reads its tables (the snapshot names them); the view is rebuilt."""
    view = table_name(stmt.relation)
    if stmt.concurrent:
        found.touch(view, locks.EXCLUSIVE, scans=True)
    else:
        found.touch(view, locks.ACCESS_EXCLUSIVE, rewrites=True)
        found.advise(advice.REFRESH)


def _view(found: Findings, stmt: ast.ViewStmt) -> None:
    _query(found, stmt.query, reads=False)  # its query is planned, not run
    found.explain = False
    found.creates.append((table_name(stmt.view), False))


RULES: dict[type[ast.Node], Callable[[Findings, ast.Node], None]] = {
    ast.AlterTableStmt: alter_table,  # type: ignore[dict-item]
    ast.CreateStmt: _create_table,  # type: ignore[dict-item]
    ast.CreateTableAsStmt: _create_as,  # type: ignore[dict-item]
    ast.IndexStmt: _create_index,  # type: ignore[dict-item]
    ast.DropStmt: _drop,  # type: ignore[dict-item]
    ast.RenameStmt: _rename,  # type: ignore[dict-item]
    ast.TruncateStmt: _truncate,  # type: ignore[dict-item]
    ast.CreateTrigStmt: _trigger,  # type: ignore[dict-item]
    ast.LockStmt: _lock,  # type: ignore[dict-item]
    ast.CommentStmt: _comment,  # type: ignore[dict-item]
    ast.ClusterStmt: _cluster,  # type: ignore[dict-item]
    ast.VacuumStmt: _vacuum,  # type: ignore[dict-item]
    ast.ReindexStmt: _reindex,  # type: ignore[dict-item]
    ast.RefreshMatViewStmt: _refresh,  # type: ignore[dict-item]
    ast.ViewStmt: _view,  # type: ignore[dict-item]
}


def classify_node(node: ast.Node) -> Findings:
    found = Findings()
    rule = RULES.get(type(node))
    if rule is not None:
        rule(found, node)
    elif isinstance(node, QUERIES):
        _query(found, node)
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
    # pglast gives locations in characters of ``sql`` (not libpg_query's bytes); a length of 0
    # means "to the end".
    statements: list[tuple[str, ast.Node]] = []
    for raw in parsed:
        start = raw.stmt_location or 0
        end = start + raw.stmt_len if raw.stmt_len else len(sql)
        if raw.stmt is not None:
            statements.append((sql[start:end].strip(), raw.stmt))
    return statements


Statement = tuple[str, Findings]


def classify(sql: str) -> list[Statement]:
    """Every statement in ``sql`` with its findings; unparsable SQL is one unknown finding."""
    statements = split(sql)
    if isinstance(statements, str):
        return [(sql.strip(), Findings(unknown=statements))]
    return [(text, classify_node(node)) for text, node in statements if text]
