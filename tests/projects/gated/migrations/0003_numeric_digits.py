from django.db import migrations


class Migration(migrations.Migration):
    """Control: more digits at the same scale change no row."""

    dependencies = [("gated", "0002_varchar_longer")]
    operations = [
        migrations.RunSQL("ALTER TABLE gated_item ALTER COLUMN price TYPE numeric(12, 2)"),
    ]
