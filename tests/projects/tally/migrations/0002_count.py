from django.db import migrations
from django.db.models import F


def count(apps, schema_editor):
    """Row locks, not DDL: the table-lock timeout must cover a data migration's queries too."""
    apps.get_model("tally", "Counter").objects.update(n=F("n") + 1)


class Migration(migrations.Migration):
    dependencies = [("tally", "0001_initial")]
    operations = [migrations.RunPython(count, migrations.RunPython.noop)]
