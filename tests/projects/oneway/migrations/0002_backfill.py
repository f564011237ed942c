from django.db import migrations

# A stray print when the migration is loaded: --plan's stdout must still be only its JSON.
print("oneway: loading the backfill migration")


def backfill(apps, schema_editor):
    apps.get_model("oneway", "Note").objects.create(text="seeded")


class Migration(migrations.Migration):
    """A data migration without reverse_code: Django cannot unapply it."""

    dependencies = [("oneway", "0001_initial")]
    operations = [migrations.RunPython(backfill)]
