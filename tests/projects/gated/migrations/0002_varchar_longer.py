from django.db import migrations


class Migration(migrations.Migration):
    """Control: a longer varchar changes no row."""

    dependencies = [("gated", "0001_initial")]
    operations = [
        migrations.RunSQL("ALTER TABLE gated_item ALTER COLUMN label TYPE varchar(100)"),
    ]
