"""An operation as third-party libraries write them: the default reduces_to_sql = True, and
database_forwards writing through the ORM."""

from typing import Any

from django.db.migrations.operations.base import Operation


class InsertMark(Operation):
    def __init__(self, note: str) -> None:
        self.note = note

    def state_forwards(self, app_label: str, state: Any) -> None:
        pass

    def database_forwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        marks = to_state.apps.get_model(app_label, "Mark").objects
        marks.using(schema_editor.connection.alias).create(note=self.note)

    def database_backwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        marks = to_state.apps.get_model(app_label, "Mark").objects
        marks.using(schema_editor.connection.alias).filter(note=self.note).delete()

    def describe(self) -> str:
        return f"Insert the mark {self.note}"
