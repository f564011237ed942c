from django.db import migrations


class Migration(migrations.Migration):
    """A volatile default on a partitioned table: each rewritten."""

    dependencies = [("gated", "0009_partition_index")]
    operations = [
        migrations.RunSQL("ALTER TABLE gated_part ADD COLUMN r float DEFAULT random()"),
    ]
