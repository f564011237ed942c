from django.db import migrations


def backfill(apps, schema_editor):
    apps.get_model("big", "Item").objects.filter(note=None, id__lt=100).update(note="filled")


class Migration(migrations.Migration):
    """Python code: what it locks cannot be known before it runs."""

    dependencies = [("big", "0008_sql")]
    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
