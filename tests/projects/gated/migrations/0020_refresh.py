from django.db import migrations


class Migration(migrations.Migration):
    """REFRESH MATERIALIZED VIEW rewrites the view under ACCESS EXCLUSIVE."""

    dependencies = [("gated", "0019_reindex")]
    operations = [
        migrations.RunSQL("REFRESH MATERIALIZED VIEW gated_view"),
    ]
