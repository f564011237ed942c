from django.db import migrations


class Migration(migrations.Migration):
    """IF NOT EXISTS on an existing table creates nothing: the index reads it."""

    dependencies = [("gated", "0012_attach")]
    operations = [
        migrations.RunSQL("CREATE TABLE IF NOT EXISTS gated_loose (id integer)"),
        migrations.RunSQL("CREATE INDEX gated_loose_v ON gated_loose (v)"),
    ]
