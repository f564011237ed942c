from django.db import migrations


class Migration(migrations.Migration):
    """Control: a default for new rows only."""

    dependencies = [("gated", "0004_constant_default")]
    operations = [
        migrations.RunSQL("ALTER TABLE gated_item ALTER COLUMN label SET DEFAULT 'x'"),
    ]
