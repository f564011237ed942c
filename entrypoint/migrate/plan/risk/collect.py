"""Stage 1 of the analysis: each operation's SQL, written without running anything of the project's.

Django's schema editor writes the SQL with ``collect_sql=True``, as ``sqlmigrate`` does, on the
target database's connection, from the project state at that point of the plan. Unlike
``sqlmigrate`` (which trusts ``reduces_to_sql`` and commits whatever an operation did), only
code that provably writes SQL is called:

- Django's own operations (their ``database_forwards``/``database_backwards`` and every method
  they may call are Django's), ``RunSQL`` included;
- ``SeparateDatabaseAndState``: its ``database_operations`` walked one by one, recursively;
- anything else is not called, and is ``unknown`` with the reason: ``RunPython`` (and its
  subclasses), an ``Operation`` of a third party or the project, a subclass of Django's that
  defines code of its own.

Each call runs inside a savepoint of a transaction that is ``READ ONLY`` and always rolled back
(pipeline.py opens it): a write attempted meanwhile (by a backend's schema editor, say) fails,
is rolled back, and makes that operation ``unknown``; it is never an error of the step. A
forward plan is followed from the applied state, as the executor applies it; a backward step
starts from its own migration's end state, as ``sqlmigrate --backwards`` does. Deferred
statements (foreign keys, indexes) run at the end of their migration and are credited to the
operation that queued them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.db import connections, transaction
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.operations.special import RunPython, RunSQL, SeparateDatabaseAndState

from entrypoint.errors import sqlstate_in
from entrypoint.migrate.plan.risk import advice
from entrypoint.migrate.plan.risk.skip import Idle, Live, Tables

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.backends.base.schema import BaseDatabaseSchemaEditor
    from django.db.migrations.migration import Migration
    from django.db.migrations.operations.base import Operation
    from django.db.migrations.state import ProjectState

Plan = list[tuple["Migration", bool]]
READ_ONLY_VIOLATION = "25006"  # read_only_sql_transaction
# What a class outside Django may define on a subclass of Django's operations and still leave
# every call of database_forwards/backwards to Django's code: how it is built, named, shown,
# and its in-memory state (which Django calls whenever it builds a project state).
INERT = frozenset({
    "__init__", "__repr__", "__eq__", "__hash__", "__module__", "__qualname__", "__doc__",
    "__dict__", "__weakref__", "__annotations__", "__firstlineno__", "__static_attributes__",
    "__slots__", "__orig_bases__", "__parameters__",
    "deconstruct", "describe", "formatted_description", "migration_name_fragment",
    "state_forwards", "reduce", "references_model", "references_field",
})  # fmt: skip


@dataclass
class OperationSQL:
    operation: Operation
    statements: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # why (part of) its SQL is not known
    idle: Idle | None = None  # it cannot make the app wait: not written (skip.py)


def untrusted(kind: type) -> str | None:
    """Why calling ``kind``'s database methods could run code that is not Django's; None if not.

    RunPython is Django's, and runs the project's function: never called. Otherwise every class
    of its MRO outside Django may only hold data and the INERT methods.
    """
    if issubclass(kind, RunPython):
        return advice.RUN_PYTHON
    for cls in kind.__mro__:
        if cls is object or cls.__module__.split(".")[0] == "django":
            continue
        for name, value in vars(cls).items():
            # Functions, properties and other descriptors are code; plain values are data.
            if name not in INERT and (callable(value) or hasattr(value, "__get__")):
                return (
                    f"{cls.__module__}.{cls.__qualname__}.{name} is not Django's own code: "
                    "it is not run before the plan applies, so what it does is not known"
                )
    return None


def _unwritable(exc: Exception) -> str:
    if sqlstate_in(exc, READ_ONLY_VIOLATION):
        return (
            "writing its SQL tried to write to the database: refused (read-only, rolled back), "
            "so what it does is not known before it runs"
        )
    return (
        "Django could not write this operation's SQL before the plan runs "
        f"({type(exc).__name__}: {str(exc).strip()[:200]})"
    )


class _Collector:
    """One migration's operations through one collecting editor, deferred statements included."""

    def __init__(self, editor: BaseDatabaseSchemaEditor, migration: Migration) -> None:
        self.editor = editor
        self.migration = migration
        self.app = migration.app_label
        self.queued: dict[int, OperationSQL] = {}  # id of a deferred statement -> its operation

    def walk(
        self,
        op: Operation,
        states: tuple[ProjectState, ProjectState],
        into: OperationSQL,
        *,
        backwards: bool,
    ) -> None:
        """Write ``op``'s SQL between two states (from, to) if only Django's code runs."""
        frm, to = states
        why = untrusted(type(op))
        if why is not None:
            into.unknown.append(why)
        elif isinstance(op, SeparateDatabaseAndState):
            self._separate(op, states, into, backwards=backwards)
        else:
            method = op.database_backwards if backwards else op.database_forwards
            self._call(op, lambda: method(self.app, self.editor, frm, to), into)

    def _separate(
        self,
        op: SeparateDatabaseAndState,
        states: tuple[ProjectState, ProjectState],
        into: OperationSQL,
        *,
        backwards: bool,
    ) -> None:
        """Its database operations, one by one, as its own database_forwards/backwards walk."""
        frm, to = states
        if not backwards:
            for inner in op.database_operations:
                nxt = frm.clone()
                inner.state_forwards(self.app, nxt)
                self.walk(inner, (frm, nxt), into, backwards=False)
                frm = nxt
            return
        befores = []
        for inner in op.database_operations:
            befores.append(to)
            to = to.clone()
            inner.state_forwards(self.app, to)
        for inner, before in reversed(list(zip(op.database_operations, befores, strict=True))):
            self.walk(inner, (to, before), into, backwards=True)
            to = before

    def _call(self, op: Operation, call: Callable[[], object], into: OperationSQL) -> None:
        editor = self.editor
        before = len(editor.collected_sql)
        known = {id(sql) for sql in editor.deferred_sql}
        try:
            # A savepoint: a failure (a refused write) leaves the transaction usable for the rest.
            with transaction.atomic(using=editor.connection.alias), self._as_applied(op):
                call()
        except Exception as exc:  # noqa: BLE001 - any failure only means "not known"
            into.unknown.append(_unwritable(exc))
        into.statements.extend(editor.collected_sql[before:])
        self.queued.update({id(sql): into for sql in editor.deferred_sql if id(sql) not in known})

    @contextmanager
    def _as_applied(self, op: Operation) -> Iterator[None]:
        """AddIndexConcurrently refuses to run in a transaction; in a non-atomic migration it
        runs in none when applied, so its SQL is written as then (Django's own check, skipped)."""
        check = "_ensure_not_in_transaction"
        if self.migration.atomic or not hasattr(op, check):
            yield
            return
        vars(op)[check] = lambda _editor: None
        try:
            yield
        finally:
            del vars(op)[check]

    def finish(self) -> None:
        """Leaving the editor would run what is still deferred: here it is only written down."""
        for sql in self.editor.deferred_sql:
            if id(sql) in self.queued:
                self.queued[id(sql)].statements.append(str(sql))
        self.editor.deferred_sql = []


def _needs_models(op: Operation) -> bool:
    """Whether writing its SQL reads the state's models (which then must be rendered)."""
    if isinstance(op, SeparateDatabaseAndState):
        return any(_needs_models(inner) for inner in op.database_operations)
    return not isinstance(op, (RunSQL, RunPython)) and untrusted(type(op)) is None


def _forwards(
    collector: _Collector, state: ProjectState, tables: Tables | None
) -> list[OperationSQL]:
    """Migration.apply, one operation at a time, ``state`` moved along in place. What cannot
    make the app wait is only moved past: the state's models are rendered (once, then kept
    rendered as the executor does) for the first operation whose SQL needs them."""
    found = []
    for operation in collector.migration.operations:
        idle = tables.idle(operation, collector.app, state) if tables else None
        if idle is not None:
            operation.state_forwards(collector.app, state)
            found.append(OperationSQL(operation, idle=idle))
            continue
        if _needs_models(operation):
            state.apps  # noqa: B018 - rendered in place, so that clones carry the models
        old_state = state.clone()
        operation.state_forwards(collector.app, state)
        found.append(OperationSQL(operation))
        collector.walk(operation, (old_state, state), found[-1], backwards=False)
    return found


def _backwards(collector: _Collector, state: ProjectState) -> list[OperationSQL]:
    """Migration.unapply, one operation at a time, last operation first."""
    steps: list[tuple[Operation, ProjectState, ProjectState]] = []
    for operation in collector.migration.operations:
        old_state = state.clone()
        operation.state_forwards(collector.app, state)
        steps.insert(0, (operation, old_state, state.clone()))
    found = []
    for operation, to, frm in steps:
        found.append(OperationSQL(operation))
        collector.walk(operation, (frm, to), found[-1], backwards=True)
    return found[::-1]  # in the migration's order


def plan_sql(connection: BaseDatabaseWrapper, plan: Plan) -> list[list[OperationSQL]]:
    """Per step of the plan, per operation (in the migration's order), its statements.

    Called inside pipeline.read_only.
    """
    executor = MigrationExecutor(connection)
    mixed = any(backwards for _, backwards in plan)
    state: ProjectState | None = None
    tables: Tables | None = None
    if not mixed:  # followed from the applied state, rendered only when needed
        state = executor._create_project_state(with_applied_migrations=True)  # type: ignore[attr-defined] # noqa: SLF001
        tables = Tables(connection, Live.read(connection))
    found = []
    for migration, backwards in plan:
        key = (migration.app_label, migration.name)
        step_state = (
            state if state is not None else executor.loader.project_state(key, at_end=False)
        )
        # The backend's own editor class: under the lock the guard swaps the connection's for
        # one that records each migration it sees (run/editor.py); this one only writes SQL.
        editor_class = type(connections[connection.alias]).SchemaEditorClass  # not a proxy's
        with editor_class(connection, collect_sql=True, atomic=False) as editor:
            collector = _Collector(editor, migration)
            if backwards:
                found.append(_backwards(collector, step_state))
            else:
                found.append(_forwards(collector, step_state, tables))
            collector.finish()
    return found
