from django.db import migrations


class Migration(migrations.Migration):
    """SELECT ... FOR UPDATE reading the whole table."""

    dependencies = [("gated", "0016_update_all")]
    operations = [
        migrations.RunSQL("SELECT id FROM gated_item WHERE label LIKE 'x%' FOR UPDATE"),
    ]
