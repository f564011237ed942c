from django.db import migrations


class Migration(migrations.Migration):
    """An UPDATE whose WHERE matches every row: every row locked."""

    dependencies = [("gated", "0015_not_ascii")]
    operations = [
        migrations.RunSQL("UPDATE gated_item SET label = 'x' WHERE id > 0"),
    ]
