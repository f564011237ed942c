"""A migration's work and its record in one transaction, inside the guard.

Django runs a migration's deferred SQL (foreign keys, often) and then records it after the
transaction has committed, and records an unapplied migration after its work commits too: a
process killed in between leaves work done but unrecorded, which the next start re-applies.
The guarded editor runs the deferred SQL itself and records before the commit.

On MySQL/MariaDB Django runs no migration in a transaction (DDL commits by itself), and gives
each RunPython one of its own, the record coming after it: a data migration (RunPython only,
``preflight.one_transaction``) runs instead in one transaction with its record.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from django.db.migrations.recorder import MigrationRecorder

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.backends.base.schema import BaseDatabaseSchemaEditor
    from django.db.migrations.migration import Migration


class WorkGuard(Protocol):
    """What the editor asks of the guard (guard.py) around each migration's work."""

    def enter_work(self, *, atomic: bool) -> None: ...
    def before_commit(self, editor: BaseDatabaseSchemaEditor) -> None: ...
    def leave_work(self, *, atomic: bool) -> None: ...
    def unreachable(self) -> bool: ...
    def one_transaction(self) -> bool: ...


class Recorder(MigrationRecorder):
    """Django's recorder, except for what the guarded editor already recorded in-transaction."""

    def __init__(self, connection: BaseDatabaseWrapper) -> None:
        super().__init__(connection)
        self.inside: set[tuple[str, str]] = set()

    def record_inside(self, migration: Migration, *, backwards: bool) -> None:
        own = (migration.app_label, migration.name)
        keys = [*migration.replaces, own] if backwards else list(migration.replaces) or [own]
        for app, name in keys:
            if backwards:
                super().record_unapplied(app, name)
            else:
                super().record_applied(app, name)
        self.inside.update(keys)

    def record_applied(self, app: str, name: str) -> None:
        if (app, name) in self.inside:
            self.inside.discard((app, name))
        else:
            super().record_applied(app, name)

    def record_unapplied(self, app: str, name: str) -> None:
        if (app, name) in self.inside:
            self.inside.discard((app, name))
        else:
            super().record_unapplied(app, name)


def finish_inside(
    editor: BaseDatabaseSchemaEditor, recorder: Recorder, migration: Migration, *, backwards: bool
) -> None:
    """Just before an atomic migration commits: what Django would do after the commit."""
    if backwards or editor.deferred_sql:
        for sql in editor.deferred_sql:
            editor.execute(sql, None)
        editor.deferred_sql = []
        recorder.record_inside(migration, backwards=backwards)


def guarded_editor(base: type[BaseDatabaseSchemaEditor], guard: WorkGuard) -> Any:
    """The connection's schema editor, with every migration's work inside the guard."""

    class GuardedSchemaEditor(base):  # type: ignore[valid-type,misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            atomic = bool(getattr(self, "atomic_migration", False))
            if not self.collect_sql and not atomic and guard.one_transaction():
                self.atomic_migration = True  # a data migration on MySQL: see above

        def __enter__(self) -> Any:
            editor = super().__enter__()
            try:
                guard.enter_work(atomic=self.atomic_migration)
            except BaseException as exc:
                super().__exit__(type(exc), exc, exc.__traceback__)
                raise
            return editor

        def __exit__(
            self,
            exc_type: type[BaseException] | None,
            exc: BaseException | None,
            tb: TracebackType | None,
        ) -> None:
            try:
                if exc_type is None:
                    try:
                        guard.before_commit(self)
                    except BaseException as error:
                        super().__exit__(type(error), error, error.__traceback__)
                        raise
                elif self.atomic_migration and guard.unreachable():
                    # The server rolls the transaction back by itself. Django would try the
                    # rollback, drop the connection and reconnect (set_autocommit) over the
                    # dead network first: as after a close inside the transaction, it won't.
                    self.connection.closed_in_transaction = True
                super().__exit__(exc_type, exc, tb)
            finally:
                guard.leave_work(atomic=self.atomic_migration)

    return GuardedSchemaEditor
