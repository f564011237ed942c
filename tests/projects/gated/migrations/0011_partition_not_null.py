from django.db import migrations


class Migration(migrations.Migration):
    """SET NOT NULL on a partitioned table: each partition read."""

    dependencies = [("gated", "0010_partition_default")]
    operations = [
        migrations.RunSQL("ALTER TABLE gated_part ALTER COLUMN v SET NOT NULL"),
    ]
