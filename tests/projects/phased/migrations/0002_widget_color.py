from django.db import migrations, models
from django_safemigrate import Safe


class Migration(migrations.Migration):
    """Expand: the new release reads color, so it must exist before the deploy."""

    safe = Safe.before_deploy()
    dependencies = [("phased", "0001_initial")]
    operations = [
        migrations.AddField("widget", "color", models.CharField(max_length=20, default=""))
    ]
