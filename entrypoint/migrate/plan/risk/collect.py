"""Each operation's SQL, written by Django's schema editor the way ``sqlmigrate`` writes it.

The editor runs with ``collect_sql=True`` on the target database's connection (it may read the
catalog, never writes), from the project state at that point of the plan. A forward plan is
followed from the applied state, as the executor will apply it; a backward step starts from its
own migration's end state, as ``sqlmigrate --backwards`` does. Deferred statements (foreign
keys, indexes) run at the end of their migration and are credited to the operation that
queued them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from django.db import connections
from django.db.migrations.executor import MigrationExecutor

from entrypoint.migrate.plan.risk import advice

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.backends.base.schema import BaseDatabaseSchemaEditor
    from django.db.migrations.migration import Migration
    from django.db.migrations.operations.base import Operation
    from django.db.migrations.state import ProjectState

Plan = list[tuple["Migration", bool]]


@dataclass
class OperationSQL:
    operation: Operation
    statements: list[str]
    unknown: str | None = None  # why its SQL is not known before it runs


class _Recorder:
    """What each operation writes into the editor, its deferred statements included."""

    def __init__(self, editor: BaseDatabaseSchemaEditor) -> None:
        self.editor = editor
        self.queued: dict[int, OperationSQL] = {}  # id of a deferred statement -> its operation

    def run(self, operation: Operation, call: Callable[[], object]) -> OperationSQL:
        result = OperationSQL(operation, [])
        if not operation.reduces_to_sql:  # RunPython
            result.unknown = advice.RUN_PYTHON
            return result
        editor = self.editor
        before = len(editor.collected_sql)
        known = {id(sql) for sql in editor.deferred_sql}
        try:
            call()
        except Exception as exc:  # noqa: BLE001 - any failure only means "not known"
            result.unknown = _unwritable(exc)
        result.statements = list(editor.collected_sql[before:])
        self.queued.update({id(sql): result for sql in editor.deferred_sql if id(sql) not in known})
        return result

    def finish(self) -> None:
        """Leaving the editor would run what is still deferred: here it is only written down."""
        for sql in self.editor.deferred_sql:
            if id(sql) in self.queued:
                self.queued[id(sql)].statements.append(str(sql))
        self.editor.deferred_sql = []


def _forwards(
    migration: Migration, editor: BaseDatabaseSchemaEditor, state: ProjectState
) -> list[OperationSQL]:
    """Migration.apply, one operation at a time, ``state`` moved along in place."""
    recorder = _Recorder(editor)
    found = []
    app = migration.app_label
    for operation in migration.operations:
        old_state = state.clone()
        operation.state_forwards(app, state)
        call = partial(operation.database_forwards, app, editor, old_state, state)
        found.append(recorder.run(operation, call))
    recorder.finish()
    return found


def _backwards(
    migration: Migration, editor: BaseDatabaseSchemaEditor, state: ProjectState
) -> list[OperationSQL]:
    """Migration.unapply, one operation at a time, last operation first."""
    app = migration.app_label
    steps: list[tuple[Operation, ProjectState, ProjectState]] = []
    for operation in migration.operations:
        old_state = state.clone()
        operation.state_forwards(app, state)
        steps.insert(0, (operation, old_state, state.clone()))
    recorder = _Recorder(editor)
    found = [
        recorder.run(operation, partial(operation.database_backwards, app, editor, frm, to))
        for operation, to, frm in steps
    ]
    recorder.finish()
    return found[::-1]  # in the migration's order


def _unwritable(exc: Exception) -> str:
    return (
        "Django could not write this operation's SQL before the plan runs "
        f"({type(exc).__name__}: {str(exc).strip()[:200]})"
    )


def plan_sql(connection: BaseDatabaseWrapper, plan: Plan) -> list[list[OperationSQL]]:
    """Per step of the plan, per operation (in the migration's order), its statements."""
    executor = MigrationExecutor(connection)
    mixed = any(backwards for _, backwards in plan)
    state: ProjectState | None = None
    if not mixed:
        state = executor._create_project_state(with_applied_migrations=True)  # type: ignore[attr-defined] # noqa: SLF001
        state.apps  # noqa: B018 - rendered once up front, as the executor does: then moved along
    found = []
    for migration, backwards in plan:
        key = (migration.app_label, migration.name)
        step_state = (
            state if state is not None else executor.loader.project_state(key, at_end=False)
        )
        # The backend's own editor class: under the lock the guard swaps the connection's for
        # one that records each migration it sees (run/editor.py); this one only writes SQL.
        editor_class = type(connections[connection.alias]).SchemaEditorClass  # not a proxy's
        with editor_class(connection, collect_sql=True, atomic=migration.atomic) as editor:
            run = _backwards if backwards else _forwards
            found.append(run(migration, editor, step_state))
    return found
