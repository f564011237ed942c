from django.db import migrations


class Migration(migrations.Migration):
    """REINDEX rebuilds every index under SHARE."""

    dependencies = [("gated", "0018_cluster")]
    operations = [
        migrations.RunSQL("REINDEX TABLE gated_item"),
    ]
