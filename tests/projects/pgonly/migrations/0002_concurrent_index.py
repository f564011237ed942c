from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models
from slowop import slow_step


class Migration(migrations.Migration):
    """CREATE INDEX CONCURRENTLY waits for every transaction holding an older snapshot."""

    atomic = False
    dependencies = [("pgonly", "0001_initial")]
    operations = [
        slow_step(),
        AddIndexConcurrently("thing", models.Index(fields=["name"], name="pgonly_thing_name_idx")),
    ]
