from django.db import migrations


def mark(apps, schema_editor):
    apps.get_model("sideeffect", "Mark").objects.using(schema_editor.connection.alias).create(
        note="separate"
    )


class Migration(migrations.Migration):
    """Code behind SeparateDatabaseAndState, whose reduces_to_sql stays True."""

    dependencies = [("sideeffect", "0001_initial")]
    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(mark, migrations.RunPython.noop)]
        )
    ]
