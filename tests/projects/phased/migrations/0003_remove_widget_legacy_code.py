from django.db import migrations
from django_safemigrate import Safe


class Migration(migrations.Migration):
    """Contract: the previous release still reads legacy_code, so it goes after the deploy."""

    safe = Safe.after_deploy()
    dependencies = [("phased", "0002_widget_color")]
    operations = [migrations.RemoveField("widget", "legacy_code")]
