from django.db import migrations


class Migration(migrations.Migration):
    """varbit(20) to varbit(10): every value checked, the table rewritten."""

    dependencies = [("gated", "0006_timestamp")]
    operations = [
        migrations.RunSQL("ALTER TABLE gated_item ALTER COLUMN mask TYPE varbit(10)"),
    ]
