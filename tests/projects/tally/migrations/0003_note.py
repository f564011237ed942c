from django.db import migrations


class Migration(migrations.Migration):
    """Not atomic: a statement that times out is not retried (earlier ones may have run)."""

    atomic = False
    dependencies = [("tally", "0002_count")]
    operations = [
        migrations.RunSQL(
            "ALTER TABLE tally_counter ADD COLUMN note text",
            "ALTER TABLE tally_counter DROP COLUMN note",
        )
    ]
