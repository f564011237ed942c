from django.db import migrations


class Migration(migrations.Migration):
    """Control: a constant default is stored once, not per row."""

    dependencies = [("gated", "0003_numeric_digits")]
    operations = [
        migrations.RunSQL("ALTER TABLE gated_item ADD COLUMN flag boolean DEFAULT false NOT NULL"),
    ]
