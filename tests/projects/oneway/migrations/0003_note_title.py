from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("oneway", "0002_backfill")]
    operations = [
        migrations.AddField("note", "title", models.CharField(max_length=100, default=""))
    ]
