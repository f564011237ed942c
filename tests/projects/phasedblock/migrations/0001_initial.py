from django.db import migrations, models
from django_safemigrate import Safe


class Migration(migrations.Migration):
    """Needed before the deploy, yet behind an after_deploy migration: blocked."""

    safe = Safe.before_deploy()
    initial = True
    dependencies = [("phased", "0003_remove_widget_legacy_code")]
    operations = [
        migrations.CreateModel(
            name="Gadget",
            fields=[
                ("id", models.AutoField(auto_created=True, primary_key=True, serialize=False)),
                ("label", models.CharField(max_length=50)),
            ],
        ),
    ]
