"""Checks on a plan before any of it runs: a rollback must not stop half-way.

Django finds an irreversible operation only while unapplying (IrreversibleError), after it has
unapplied the later migrations: the database is left between two releases. Here every step to
unapply is checked first, and nothing is unapplied when one of them cannot be.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from django.db.migrations import operations

from entrypoint.migrate.naming import describe, label

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.migrations.migration import Migration
    from django.db.migrations.operations.base import Operation

Plan = list[tuple["Migration", bool]]
# Applying these drops a column or a table with its data; unapplying their opposites does too.
DROPS = (operations.RemoveField, operations.DeleteModel)
DROPPED_WHEN_UNDONE = (operations.AddField, operations.CreateModel)


def _run_on_database(operation: Operation) -> Iterator[Operation]:
    """The operation, and what it runs on the database when it only wraps others."""
    yield operation
    if isinstance(operation, operations.SeparateDatabaseAndState):
        for inner in operation.database_operations:
            yield from _run_on_database(inner)


def _why(operation: Operation) -> str:
    if isinstance(operation, operations.RunPython):
        return "a RunPython without reverse_code (use RunPython.noop if nothing needs undoing)"
    if isinstance(operation, operations.RunSQL):
        return "a RunSQL without reverse_sql (use RunSQL.noop if nothing needs undoing)"
    return "an operation whose reversible is False"


def irreversible(migration: Migration) -> list[Operation]:
    return [op for top in migration.operations for op in _run_on_database(top) if not op.reversible]


def operation_reversible(operation: Operation) -> bool:
    return all(op.reversible for op in _run_on_database(operation))


def reversible(migration: Migration) -> bool:
    return not irreversible(migration)


def one_transaction(migration: Migration, connection: BaseDatabaseWrapper) -> bool:
    """Whether a failure of ``migration`` leaves nothing of it behind: all its work, and its
    record, in one transaction.

    Where DDL rolls back, any atomic migration. On MySQL/MariaDB each DDL statement commits by
    itself, so only a data migration is: atomic RunPython operations and nothing else (also
    inside SeparateDatabaseAndState), which the guarded schema editor (run/editor.py) runs in
    one InnoDB transaction where Django would give each operation its own.
    """
    if not migration.atomic:
        return False
    if connection.features.can_rollback_ddl:
        return True
    return connection.vendor == "mysql" and all(
        isinstance(op, operations.SeparateDatabaseAndState)
        or (isinstance(op, operations.RunPython) and op.atomic is not False)
        for top in migration.operations
        for op in _run_on_database(top)
    )


def drops_data(operation: Operation, *, backwards: bool) -> bool:
    return any(
        isinstance(op, DROPPED_WHEN_UNDONE if backwards else DROPS)
        for op in _run_on_database(operation)
    )


def destroyed(plan: Plan) -> list[tuple[Migration, bool, Operation]]:
    """The operations that drop data which existed before the plan: those that drop a column
    or a table, except on a model an earlier step of the same plan creates (a first install
    runs contenttypes 0002, which removes a column of the table 0001 has just made)."""
    created: set[tuple[str, str]] = set()
    found = []
    for migration, backwards in plan:
        for operation in migration.operations:
            model = getattr(operation, "model_name_lower", None) or getattr(
                operation, "name_lower", None
            )
            key = (migration.app_label, str(model))
            if drops_data(operation, backwards=backwards) and key not in created:
                found.append((migration, backwards, operation))
            if not backwards and isinstance(operation, operations.CreateModel):
                created.add(key)
    return found


def data_loss(plan: Plan) -> list[str]:
    """The backward steps' operations whose reversal drops a column or a table."""
    return [
        f"{label(m)}: {describe(op)}"
        for m, backwards in plan
        if backwards
        for op in m.operations
        if drops_data(op, backwards=True)
    ]


def problems(plan: Plan, *, fake: bool = False) -> list[str]:
    """Every operation that would stop the backward phase half-way (none when faking)."""
    if fake:  # --fake only records: no operation runs
        return []
    return [
        f"rollback refused, nothing unapplied: {label(m)} cannot be unapplied, its operation "
        f"{describe(op)} is {_why(op)}; give it a reverse, or choose a target after {label(m)}"
        for m, backwards in plan
        if backwards
        for op in irreversible(m)
    ]
