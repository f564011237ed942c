from django.db import migrations


class Migration(migrations.Migration):
    """CLUSTER rewrites the table under ACCESS EXCLUSIVE."""

    dependencies = [("gated", "0017_for_update")]
    operations = [
        migrations.RunSQL("CLUSTER gated_item USING gated_item_pkey"),
    ]
