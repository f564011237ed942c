from django.db import migrations, models


class Migration(migrations.Migration):
    """RenameModel, then an index on the renamed table."""

    dependencies = [("gated", "0020_refresh")]
    operations = [
        migrations.RenameModel("Item", "Thing"),
        migrations.AddIndex("thing", models.Index(fields=["label"], name="gated_thing_label")),
    ]
