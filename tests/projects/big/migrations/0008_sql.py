from django.db import migrations


class Migration(migrations.Migration):
    """Two statements in one RunSQL: a bounded UPDATE, then a validating CHECK constraint."""

    dependencies = [("big", "0007_note_index")]
    operations = [
        migrations.RunSQL(
            "UPDATE big_item SET note = 'first' WHERE id < 10;"
            " ALTER TABLE big_item ADD CONSTRAINT big_item_count_positive CHECK (count >= 0);",
            "ALTER TABLE big_item DROP CONSTRAINT big_item_count_positive;",
        ),
    ]
