from django.db import migrations


class Migration(migrations.Migration):
    """A new collation on an indexed column: its index rebuilt."""

    dependencies = [("gated", "0007_varbit")]
    operations = [
        migrations.RunSQL('ALTER TABLE gated_item ALTER COLUMN tag TYPE varchar(30) COLLATE "C"'),
    ]
