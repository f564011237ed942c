from django.db import migrations


class Migration(migrations.Migration):
    """ATTACH PARTITION reads the attached table under ACCESS EXCLUSIVE."""

    dependencies = [("gated", "0011_partition_not_null")]
    operations = [
        migrations.RunSQL(
            "ALTER TABLE gated_part ATTACH PARTITION gated_loose FOR VALUES FROM (50001) TO (100001)"
        ),
    ]
