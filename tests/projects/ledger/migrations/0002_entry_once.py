from django.conf import settings
from django.db import migrations


def insert_then_pause(apps, schema_editor):
    """A data migration whose row must exist exactly once, however its replicas fare."""
    apps.get_model("ledger", "Entry").objects.create(note="once")
    seconds = getattr(settings, "LEDGER_SECONDS", 0)
    if seconds:
        schema_editor.execute("SELECT pg_sleep(%s)", [seconds])


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]
    operations = [migrations.RunPython(insert_then_pause, migrations.RunPython.noop)]
