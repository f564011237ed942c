from django.db import migrations, models


class Migration(migrations.Migration):
    """A nullable column: ACCESS EXCLUSIVE, but only for the catalogue change."""

    dependencies = [("big", "0003_count_bigint")]
    operations = [migrations.AddField("item", "note", models.TextField(null=True))]
