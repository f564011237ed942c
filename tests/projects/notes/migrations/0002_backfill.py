from django.db import migrations


def backfill(apps, schema_editor):
    apps.get_model("notes", "Note").objects.create(text="seeded")


class Migration(migrations.Migration):
    """A data migration without reverse_code: Django cannot unapply it."""

    dependencies = [("notes", "0001_initial")]
    operations = [migrations.RunPython(backfill)]
