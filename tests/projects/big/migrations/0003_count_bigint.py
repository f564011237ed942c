from django.db import migrations, models


class Migration(migrations.Migration):
    """integer -> bigint: ACCESS EXCLUSIVE while the whole table is rewritten."""

    dependencies = [("big", "0002_label_index")]
    operations = [migrations.AlterField("item", "count", models.BigIntegerField())]
