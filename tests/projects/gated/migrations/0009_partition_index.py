from django.db import migrations


class Migration(migrations.Migration):
    """An index on a partitioned table: each partition read."""

    dependencies = [("gated", "0008_collation")]
    operations = [
        migrations.RunSQL("CREATE INDEX gated_part_v ON gated_part (v)"),
    ]
