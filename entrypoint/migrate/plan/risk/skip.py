"""Which of Django's operations cannot block the app: they need no analysis beyond their tables.

An operation whose every table is new in the plan (not in the database yet) or empty (no page
at all) makes the app wait for nothing, whatever it locks: on a first deploy, every one. Its
tables are read from the project state (model tables, the tables its fields point at, many-to-
many tables, and for the operations that change what others reference, the tables that
reference its model), without rendering the state's models: that rendering is what writing the
SQL costs, and it is spent only on operations that touch a table with rows. Anything else
(RunSQL, RunPython, operations that are not Django's schema operations) goes the usual way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db.backends.utils import strip_quotes, truncate_name
from django.db.migrations import operations as ops
from django.db.migrations.operations.fields import FieldOperation
from django.db.migrations.operations.models import IndexOperation
from django.db.migrations.utils import field_references, resolve_relation

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.migrations.operations.base import Operation
    from django.db.migrations.state import ProjectState

# What changes a model that other tables' foreign keys point at: those tables change too.
REFERENCED = (
    ops.DeleteModel, ops.RenameModel, ops.AlterModelTable, ops.AlterField, ops.RemoveField,
    ops.RenameField,
)  # fmt: skip
MODEL_NAMED = (
    ops.CreateModel, ops.DeleteModel, ops.AlterModelTable, ops.AlterModelTableComment,
    ops.AlterUniqueTogether, ops.AlterIndexTogether, ops.AlterOrderWithRespectTo,
)  # fmt: skip
STATE_ONLY = (ops.AlterModelOptions, ops.AlterModelManagers)
LIVE = """
SELECT c.relname, pg_relation_size(c.oid) > 0 OR c.relkind NOT IN ('r', 'm')
FROM pg_class c
WHERE c.relkind IN ('r', 'p', 'm', 'f') AND pg_table_is_visible(c.oid)
"""


@dataclass(frozen=True)
class Live:
    """The tables a migration's unqualified names reach: which exist, which hold rows."""

    existing: frozenset[str]
    busy: frozenset[str]  # with pages (or partitioned, foreign): they may hold rows

    @classmethod
    def read(cls, connection: BaseDatabaseWrapper) -> Live:
        with connection.cursor() as cursor:
            cursor.execute(LIVE)
            rows = cursor.fetchall()
        return cls(frozenset(n for n, _ in rows), frozenset(n for n, busy in rows if busy))


@dataclass(frozen=True)
class Idle:
    """An operation that cannot make the app wait: its tables, those of them that exist."""

    tables: tuple[str, ...]
    existing: tuple[str, ...]  # empty ones: a lock on them is brief

    def note(self) -> str:
        if not self.tables:
            return "it changes Django's model state only: no SQL"
        which = "empty or new in this plan" if self.existing else "new in this plan"
        return f"not analysed further: its tables are {which} ({', '.join(self.tables)})"


class Tables:
    """The tables of Django's schema operations, read from a state as it moves along.

    A name that is not in the database counts as new only when a CreateModel (or an automatic
    many-to-many table) of this plan made it: one a RunSQL or a rename made may hold rows.
    """

    def __init__(self, connection: BaseDatabaseWrapper, live: Live) -> None:
        self.max_length = connection.ops.max_name_length()
        self.live = live
        self.made: set[str] = set()  # by Django's operations earlier in the plan

    def idle(self, op: Operation, app: str, state: ProjectState) -> Idle | None:
        """The tables of ``op`` when none can make the app wait (new or empty); else None.

        Called before ``op`` moves ``state`` along, whether it is skipped or not.
        """
        if isinstance(op, STATE_ONLY):
            return Idle((), ())
        names = self._names(op, app, state)
        self._made(op, app, state, names)
        if names is None:
            return None
        empty = self.live.existing - self.live.busy
        if not names <= self.made | empty:
            return None
        key = (app, str(_model_of(op)).lower())
        if isinstance(op, REFERENCED) and self._referenced_by_busy(state, key):
            return None
        return Idle(tuple(sorted(names)), tuple(sorted(names & self.live.existing)))

    def _names(self, op: Operation, app: str, state: ProjectState) -> set[str] | None:
        model = _model_of(op)
        if model is None:
            return None
        key = (app, model.lower())
        fields = _fields_of(op, state, key)
        if fields is None:
            return None
        names = {self._own(op, state, key)}
        if isinstance(op, ops.RenameModel):
            names.add(self.table(state, (app, op.new_name_lower)))
        if isinstance(op, ops.AlterModelTable) and op.table:
            names.add(str(op.table))
        for name, field in fields:
            related = self._related(state, key, name, field)
            if related is None:
                return None
            names |= related
        return names

    def _made(self, op: Operation, app: str, state: ProjectState, names: set[str] | None) -> None:
        """What ``op`` creates: its model's table and automatic many-to-many tables; a table
        renamed keeps what it was (made in the plan, or holding rows)."""
        if names is None:
            return
        key = (app, str(_model_of(op)).lower())
        own = self._own(op, state, key)
        # A table that is there already with rows stays what it is (--fake-initial adopts it).
        if isinstance(op, ops.CreateModel):
            made = {own} | {self._m2m(own, name, field) for name, field in op.fields}
            self.made |= made - {""} - self.live.busy
        elif isinstance(op, ops.AddField):
            self.made |= {self._m2m(own, op.name, op.field)} - {""} - self.live.busy
        elif isinstance(op, (ops.RenameModel, ops.AlterModelTable)) and own in self.made:
            self.made |= names

    def _own(self, op: Operation, state: ProjectState, key: tuple[str, str]) -> str:
        """The operation's model's table (a CreateModel's from its own options)."""
        if isinstance(op, ops.CreateModel):
            given = op.options.get("db_table")
            return str(given) if given else truncate_name("_".join(key), self.max_length)
        return self.table(state, key)

    def _m2m(self, own: str, name: str, field: Any) -> str:
        """The table Django makes for a many-to-many field without ``through``; "" if none."""
        remote = getattr(field, "remote_field", None)
        if not field.many_to_many or getattr(remote, "through", None) is not None:
            return ""
        made = f"{strip_quotes(own)}_{name}"
        return str(field.db_table or truncate_name(made, self.max_length))

    def table(self, state: ProjectState, key: tuple[str, str]) -> str:
        """A model's table, as Django's Options names it."""
        model = state.models.get(key)
        given = model.options.get("db_table") if model is not None else None
        return str(given) if given else truncate_name("_".join(key), self.max_length)

    def _related(
        self, state: ProjectState, key: tuple[str, str], name: str, field: Any
    ) -> set[str] | None:
        """The tables a field points at; None when one is not in the state."""
        remote = getattr(field, "remote_field", None)
        if remote is None:
            return set()
        found = set()
        targets = [remote.model]
        through = getattr(remote, "through", None)
        if through is not None:
            targets.append(through)
        for target in targets:
            other = resolve_relation(target, *key)
            if other not in state.models:
                return None
            found.add(self.table(state, other))
        return found | {self._m2m(self.table(state, key), name, field)} - {""}

    def _referenced_by_busy(self, state: ProjectState, key: tuple[str, str]) -> bool:
        """Whether a table with rows has a key (or many-to-many) pointing at the model."""
        if not self.live.busy:
            return False
        for other, model in state.models.items():
            if self.table(state, other) in self.live.busy and any(
                field_references(other, field, key) for field in model.fields.values()
            ):
                return True
        return False


def _model_of(op: Operation) -> str | None:
    if isinstance(op, MODEL_NAMED):
        return str(op.name)
    if isinstance(op, ops.RenameModel):
        return str(op.old_name)
    if isinstance(op, (FieldOperation, IndexOperation)):
        name = getattr(op, "model_name", None)  # every index and constraint operation has one
        return str(name) if name else None
    return None


def _fields_of(
    op: Operation, state: ProjectState, key: tuple[str, str]
) -> list[tuple[str, Any]] | None:
    """Every field the operation may touch (by name): the model's, and the one it brings."""
    if isinstance(op, ops.CreateModel):
        return list(op.fields)
    model = state.models.get(key)
    if model is None:
        return None
    fields = list(model.fields.items())
    if isinstance(op, (ops.AddField, ops.AlterField)):
        fields.append((op.name, op.field))
    return fields
