"""ALTER TABLE, one subcommand at a time, from the lock table of PostgreSQL's ALTER TABLE page.

Each subcommand takes its own mode; the statement holds the strongest of them. Most forms take
ACCESS EXCLUSIVE; the exceptions are listed here. Whether a subcommand rewrites or scans the
table follows the same page (and PostgreSQL 11+: a non-volatile default rewrites nothing).
Without ONLY, each form acts on every partition too (``recurses``).
"""

from __future__ import annotations

from pglast import ast
from pglast.enums import AlterTableType as At
from pglast.enums import ConstrType

from entrypoint.migrate.plan.risk import advice, locks
from entrypoint.migrate.plan.risk.findings import (
    NOT_COMPUTED,
    Findings,
    Relation,
    Retype,
    display,
    items,
    recurses,
    table_name,
)

SHARE_UPDATE_EXCLUSIVE_FORMS = {
    At.AT_SetStatistics,
    At.AT_ClusterOn,
    At.AT_DropCluster,
    At.AT_SetRelOptions,
    At.AT_ResetRelOptions,
    At.AT_ValidateConstraint,
}
SHARE_ROW_EXCLUSIVE_FORMS = {
    At.AT_EnableTrig, At.AT_EnableAlwaysTrig, At.AT_EnableReplicaTrig, At.AT_EnableTrigAll,
    At.AT_EnableTrigUser, At.AT_DisableTrig, At.AT_DisableTrigAll, At.AT_DisableTrigUser,
}  # fmt: skip
REWRITING_FORMS = {At.AT_SetTableSpace, At.AT_SetLogged, At.AT_SetUnLogged, At.AT_SetAccessMethod}
# Functions whose value is fixed for the statement (stable or immutable): a default calling
# them is computed once, so ADD COLUMN rewrites nothing. Any other call is taken as volatile.
SERIALS = {"serial", "bigserial", "smallserial", "serial2", "serial4", "serial8"}
NON_VOLATILE_CALLS = {"now", "statement_timestamp", "transaction_timestamp", "lower", "upper"}
# How pg_attribute stores each type family's modifier (the types' typmodin functions).
VARHDRSZ = 4
INTERVAL_FULL_PRECISION = 0xFFFF
PRECISION_ONLY = {"timestamp", "timestamptz", "time", "timetz", "bit", "varbit"}


def _volatile(expr: ast.Node | None) -> bool:
    """Whether a default expression may differ per row (clock_timestamp(), random(), nextval())."""
    if expr is None or isinstance(expr, (ast.A_Const, ast.SQLValueFunction)):
        return False
    if isinstance(expr, ast.TypeCast):
        return _volatile(expr.arg)
    if isinstance(expr, ast.FuncCall):
        name = str(items(expr.funcname)[-1].sval).lower()
        return name not in NON_VOLATILE_CALLS or any(_volatile(a) for a in items(expr.args))
    return True  # an expression we do not evaluate: assume the worst


def _foreign_key(
    found: Findings, table: Relation, constraint: ast.Constraint, *, checks: bool
) -> None:
    """Both tables take SHARE ROW EXCLUSIVE; existing rows are checked unless NOT VALID."""
    found.touch(table, locks.SHARE_ROW_EXCLUSIVE, scans=checks)
    # The check is one query joining both tables: the referenced one is read too.
    found.touch(table_name(constraint.pktable), locks.SHARE_ROW_EXCLUSIVE, scans=checks)
    if checks:
        found.advise(advice.VALIDATE_LATER)


def add_constraint(found: Findings, table: Relation, constraint: ast.Constraint) -> None:
    kind = constraint.contype
    validates = not constraint.skip_validation
    if kind == ConstrType.CONSTR_FOREIGN:
        _foreign_key(found, table, constraint, checks=validates)
    elif kind == ConstrType.CONSTR_CHECK:
        found.touch(table, locks.ACCESS_EXCLUSIVE, scans=validates)
        if validates:
            found.advise(advice.VALIDATE_LATER)
    elif kind in {ConstrType.CONSTR_PRIMARY, ConstrType.CONSTR_UNIQUE, ConstrType.CONSTR_EXCLUSION}:
        builds = not constraint.indexname  # USING INDEX adopts an index built beforehand
        found.touch(table, locks.ACCESS_EXCLUSIVE, scans=builds)
        if builds:
            found.advise(advice.UNIQUE_CONSTRAINT)
    else:
        found.touch(table, locks.ACCESS_EXCLUSIVE)


def _add_column(found: Findings, table: Relation, column: ast.ColumnDef) -> None:
    constraints = items(column.constraints)
    default = next((c for c in constraints if c.contype == ConstrType.CONSTR_DEFAULT), None)
    # A volatile default, an identity or a stored generated column fills every row: a rewrite.
    rewrites = bool(column.identity and column.identity != "\x00") or any(
        c.contype in {ConstrType.CONSTR_IDENTITY, ConstrType.CONSTR_GENERATED} for c in constraints
    )
    type_name = column.typeName.names[-1].sval if column.typeName and column.typeName.names else ""
    if str(type_name) in SERIALS:  # a nextval() default per row, filled in by a rewrite
        rewrites = True
        found.advise(advice.VOLATILE_DEFAULT)
    if default is not None and _volatile(default.raw_expr):
        rewrites = True
        found.advise(advice.VOLATILE_DEFAULT)
    found.touch(table, locks.ACCESS_EXCLUSIVE, rewrites=rewrites)
    for constraint in constraints:
        if constraint.contype == ConstrType.CONSTR_FOREIGN:
            # Without a default the new column is all NULL: PostgreSQL skips the check.
            _foreign_key(found, table, constraint, checks=default is not None)
        elif constraint.contype in {ConstrType.CONSTR_PRIMARY, ConstrType.CONSTR_UNIQUE}:
            found.touch(table, locks.ACCESS_EXCLUSIVE, scans=True)
            found.advise(advice.UNIQUE_CONSTRAINT)
        elif constraint.contype == ConstrType.CONSTR_CHECK:
            found.touch(table, locks.ACCESS_EXCLUSIVE, scans=True)


def typmod(name: str, mods: list[int]) -> int:
    """The modifier as pg_attribute.atttypmod stores it for ``name(mods...)``; -1 if none.

    Per family, as each type's typmodin computes it: varchar/char n + VARHDRSZ, numeric
    ((precision << 16) | scale) + VARHDRSZ, timestamp/time and bit/varbit n, interval
    (range << 16) | precision. Any other type's modifier is NOT_COMPUTED.
    """
    if not mods:
        return -1
    if name in {"varchar", "bpchar"}:
        return mods[0] + VARHDRSZ
    if name == "numeric":
        precision, scale = [*mods, 0][:2]
        return ((precision << 16) | scale) + VARHDRSZ
    if name in PRECISION_ONLY:
        return mods[0]
    if name == "interval":
        fields, precision = [*mods, INTERVAL_FULL_PRECISION][:2]
        return (fields << 16) | precision
    return NOT_COMPUTED


def _retype(found: Findings, table: Relation, cmd: ast.AlterTableCmd) -> None:
    column = cmd.def_
    assert isinstance(column, ast.ColumnDef)
    assert column.typeName is not None
    using = column.raw_default
    plain = using is None or (
        isinstance(using, ast.TypeCast)
        and isinstance(using.arg, ast.ColumnRef)
        and str(items(using.arg.fields)[-1].sval) == cmd.name
    )
    type_name = str(items(column.typeName.names)[-1].sval)
    mods = [
        int(m.val.ival or 0)
        for m in items(column.typeName.typmods)
        if isinstance(m, ast.A_Const) and isinstance(m.val, ast.Integer)
    ]
    modifier = typmod(type_name, mods)
    if len(mods) != len(items(column.typeName.typmods)):
        modifier = NOT_COMPUTED  # a modifier that is not a plain number
    if column.typeName.arrayBounds:
        type_name = "_" + type_name
    collation = str(items(column.collClause.collname)[-1].sval) if column.collClause else None
    new = Retype(str(cmd.name), type_name, modifier, plain, collation)
    found.touch(table, locks.ACCESS_EXCLUSIVE, retype=new)


def _partition(found: Findings, table: Relation, cmd: ast.AlterTableCmd) -> None:
    """ATTACH scans the new partition (and the default one) to check the bound, under ACCESS
    EXCLUSIVE, the parent under SHARE UPDATE EXCLUSIVE; DETACH locks all three exclusively."""
    part = cmd.def_
    assert isinstance(part, ast.PartitionCmd)
    name = table_name(part.name)
    if cmd.subtype == At.AT_AttachPartition:
        found.touch(table, locks.SHARE_UPDATE_EXCLUSIVE, recurses=False)
        found.touch(name, locks.ACCESS_EXCLUSIVE, scans=True)
        found.defaults.append((table, locks.ACCESS_EXCLUSIVE, True))
    else:
        mode = locks.SHARE_UPDATE_EXCLUSIVE if part.concurrent else locks.ACCESS_EXCLUSIVE
        found.touch(table, mode, recurses=False)
        found.touch(name, mode)
        found.defaults.append((table, mode, False))


def alter_table(found: Findings, stmt: ast.AlterTableStmt) -> None:  # noqa: C901, PLR0912 - a form each
    table = table_name(stmt.relation)
    inh = recurses(stmt.relation)
    for cmd in items(stmt.cmds):
        kind = cmd.subtype
        if kind == At.AT_AddColumn:
            _add_column(found, table, cmd.def_)
        elif kind == At.AT_AddConstraint:
            add_constraint(found, table, cmd.def_)
        elif kind == At.AT_AlterColumnType:
            _retype(found, table, cmd)
        elif kind == At.AT_SetNotNull:
            found.touch(table, locks.ACCESS_EXCLUSIVE, scans=True)
            found.advise(advice.NOT_NULL)
        elif kind == At.AT_ValidateConstraint:
            found.touch(table, locks.SHARE_UPDATE_EXCLUSIVE, scans=True)
        elif kind in {At.AT_AttachPartition, At.AT_DetachPartition}:
            _partition(found, table, cmd)
        elif kind in SHARE_UPDATE_EXCLUSIVE_FORMS:
            found.touch(table, locks.SHARE_UPDATE_EXCLUSIVE)
        elif kind in SHARE_ROW_EXCLUSIVE_FORMS:
            found.touch(table, locks.SHARE_ROW_EXCLUSIVE)
        elif kind in REWRITING_FORMS:
            found.touch(table, locks.ACCESS_EXCLUSIVE, rewrites=True)
            found.advise(advice.REWRITE)
        elif kind in {At.AT_DropColumn, At.AT_DropConstraint}:
            # A foreign key's other table is locked too (snapshot: which keys hold the name).
            found.touch(table, locks.ACCESS_EXCLUSIVE).drops.append(str(cmd.name))
        else:  # SET/DROP DEFAULT, DROP NOT NULL, identity, storage...: metadata only
            found.touch(table, locks.ACCESS_EXCLUSIVE)
    if not inh:  # ONLY: the partitions are left alone
        found.touches[display(table)].recurses = False
