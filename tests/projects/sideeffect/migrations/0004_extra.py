from django.db import migrations, models


class Migration(migrations.Migration):
    """Django's own AddField: with SIDEEFFECT_BACKEND its editor writes a mark while it works."""

    dependencies = [("sideeffect", "0003_custom")]
    operations = [migrations.AddField("mark", "extra", models.IntegerField(null=True))]
