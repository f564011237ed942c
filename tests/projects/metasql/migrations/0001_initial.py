from django.db import migrations


class Migration(migrations.Migration):
    """A RunSQL pasted from a psql script: its meta-commands are no SQL at all."""

    dependencies: list[tuple[str, str]] = []
    operations = [
        migrations.RunSQL(
            "\\set ON_ERROR_STOP on\nCREATE TABLE metasql_note (id integer);",
            "DROP TABLE metasql_note;",
        ),
    ]
