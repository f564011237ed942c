from datetime import timedelta

from django.db import migrations, models
from django_safemigrate import Safe


class Migration(migrations.Migration):
    """Safe to run a day after django-safemigrate first saw it, even in a pre phase."""

    safe = Safe.after_deploy(delay=timedelta(days=1))
    initial = True
    dependencies: list[tuple[str, str]] = []
    operations = [
        migrations.CreateModel(
            name="Gizmo",
            fields=[
                ("id", models.AutoField(auto_created=True, primary_key=True, serialize=False)),
                ("size", models.IntegerField(default=0)),
            ],
        ),
    ]
