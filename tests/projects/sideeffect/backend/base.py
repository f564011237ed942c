"""PostgreSQL, with a schema editor that writes while it works, as some third-party backends do."""

from typing import Any

from django.db.backends.postgresql import base, schema


class DatabaseSchemaEditor(schema.DatabaseSchemaEditor):
    def add_field(self, model: Any, field: Any) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute("INSERT INTO sideeffect_mark (note) VALUES ('editor')")
        super().add_field(model, field)


class DatabaseWrapper(base.DatabaseWrapper):
    SchemaEditorClass = DatabaseSchemaEditor
