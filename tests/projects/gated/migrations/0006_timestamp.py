from django.db import migrations


class Migration(migrations.Migration):
    """timestamp(6) to timestamp(2): every value rounded, the table rewritten."""

    dependencies = [("gated", "0005_set_default")]
    operations = [
        migrations.RunSQL("ALTER TABLE gated_item ALTER COLUMN stamp TYPE timestamp(2)"),
    ]
