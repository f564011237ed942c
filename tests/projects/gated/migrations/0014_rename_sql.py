from django.db import migrations


class Migration(migrations.Migration):
    """A table renamed, then indexed under its new name."""

    dependencies = [("gated", "0013_if_not_exists")]
    operations = [
        migrations.RunSQL("ALTER TABLE gated_loose RENAME TO gated_moved"),
        migrations.RunSQL("CREATE INDEX gated_moved_v ON gated_moved (v)"),
    ]
