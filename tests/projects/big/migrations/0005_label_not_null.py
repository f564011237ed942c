from django.db import migrations, models


class Migration(migrations.Migration):
    """SET NOT NULL: ACCESS EXCLUSIVE while every row is checked."""

    dependencies = [("big", "0004_note")]
    operations = [migrations.AlterField("item", "label", models.CharField(max_length=50))]
